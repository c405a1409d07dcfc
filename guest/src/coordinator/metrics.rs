//! The coordinator's counters: requests by API, method and outcome with
//! their latency histogram, attestation failures by reason, peer
//! recovery attempts, forged histories refused, store contents read and
//! judged, connections and frames
//! refused by the admission limits ([`super::limits`]) and the request
//! body bytes in flight. The shim turns them into Prometheus metrics
//! ([`AgentStatus`]); nothing here is secret.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accord_core::coordinator::Request;
use accord_core::protocol::shim::{AgentStatus, LATENCY_BUCKETS, RefusalStats, RequestStats};

/// The API and method name of a request.
pub fn request_name(request: &Request) -> (&'static str, &'static str) {
    match request {
        Request::SetManifest(_) => ("user", "SetManifest"),
        Request::GetManifests(_) => ("user", "GetManifests"),
        Request::Recover(_) => ("user", "Recover"),
        Request::NewMeshCert(_) => ("mesh", "NewMeshCert"),
        Request::PeerRecover(_) => ("mesh", "PeerRecover"),
        Request::GetRecoveryState(_) => ("user", "GetRecoveryState"),
    }
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(&'static str, &'static str, &'static str), RequestStats>,
    attestation_failures: BTreeMap<&'static str, u64>,
    peer_recovery_attempts: u64,
    peer_recovery_successes: u64,
    forged_histories: u64,
    store_reads: u64,
    latest_read: Option<[u8; 32]>,
    refused_connections: BTreeMap<(&'static str, &'static str), u64>,
    refused_frames: BTreeMap<(&'static str, &'static str), u64>,
}

/// Shared by the servers and the driver.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
    /// A gauge, set by the body budget under its own lock.
    body_bytes_in_flight: AtomicU64,
}

fn refusals(counts: &BTreeMap<(&'static str, &'static str), u64>) -> Vec<RefusalStats> {
    counts
        .iter()
        .map(|((api, reason), count)| RefusalStats {
            api: (*api).to_string(),
            reason: (*reason).to_string(),
            count: *count,
        })
        .collect()
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Counters) -> R) -> R {
        // A poisoned lock only means a panic elsewhere while counting:
        // counters are still usable.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut inner)
    }

    /// Counts one request that ended with `outcome` (`ok` or an error
    /// code) after `took`.
    pub fn request(
        &self,
        api: &'static str,
        method: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        let seconds = took.as_secs_f64();
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.with(|c| {
            let stats = c
                .requests
                .entry((api, method, outcome))
                .or_insert_with(|| RequestStats {
                    api: api.into(),
                    method: method.into(),
                    outcome: outcome.into(),
                    buckets: vec![0; LATENCY_BUCKETS.len()],
                    ..RequestStats::default()
                });
            stats.count += 1;
            stats.sum_micros = stats.sum_micros.saturating_add(micros);
            for (bucket, edge) in stats.buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if seconds <= edge {
                    *bucket += 1;
                }
            }
        });
    }

    /// Counts one failed attestation on the mesh API.
    pub fn attestation_failure(&self, reason: &'static str) {
        self.with(|c| *c.attestation_failures.entry(reason).or_default() += 1);
    }

    /// Counts one peer recovery attempt.
    pub fn peer_recovery(&self, succeeded: bool) {
        self.with(|c| {
            c.peer_recovery_attempts += 1;
            if succeeded {
                c.peer_recovery_successes += 1;
            }
        });
    }

    /// Counts one store content refused as forged.
    pub fn forged_history(&self) {
        self.with(|c| c.forged_histories += 1);
    }

    /// Counts one store content read and judged by the machine: a
    /// snapshot (`latest`: the SHA-256 of its latest record), or a latest
    /// record from the store's watch.
    pub fn store_read(&self, latest: Option<[u8; 32]>) {
        self.with(|c| {
            c.store_reads += 1;
            if latest.is_some() {
                c.latest_read = latest;
            }
        });
    }

    /// Counts one connection refused at accept on `api` (`user`, `mesh`).
    pub fn connection_refused(&self, api: &'static str, reason: &'static str) {
        self.with(|c| *c.refused_connections.entry((api, reason)).or_default() += 1);
    }

    /// Counts one request frame refused before it was decoded.
    pub fn frame_refused(&self, api: &'static str, reason: &'static str) {
        self.with(|c| *c.refused_frames.entry((api, reason)).or_default() += 1);
    }

    /// Sets the request body bytes in flight.
    pub fn set_body_bytes_in_flight(&self, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.body_bytes_in_flight.store(bytes, Ordering::Relaxed);
    }

    /// Fills the counters of a status report.
    pub fn fill(&self, status: &mut AgentStatus) {
        self.with(|c| {
            status.requests = c.requests.values().cloned().collect();
            status.attestation_failures = c
                .attestation_failures
                .iter()
                .map(|(reason, n)| ((*reason).to_string(), *n))
                .collect();
            status.peer_recovery_attempts = c.peer_recovery_attempts;
            status.peer_recovery_successes = c.peer_recovery_successes;
            status.forged_histories = c.forged_histories;
            status.store_reads = c.store_reads;
            status.latest_read = c.latest_read;
            status.refused_connections = refusals(&c.refused_connections);
            status.refused_frames = refusals(&c.refused_frames);
        });
        status.body_bytes_in_flight = self.body_bytes_in_flight.load(Ordering::Relaxed);
        fill_collateral(status);
    }
}

/// The process-wide verifier's numbers (`crate::atls::collateral`):
/// refusals by reason, offers kept and refused, what it holds and the age
/// of the oldest collateral in use.
fn fill_collateral(status: &mut AgentStatus) {
    let verifier = crate::atls::collateral::verifier();
    let counters = verifier.counters();
    status.collateral_refusals = vec![
        ("stale".into(), counters.refused_stale),
        ("revoked".into(), counters.refused_revoked),
        ("older".into(), counters.refused_older),
        ("missing".into(), counters.refused_missing),
    ];
    status.collateral_offers = vec![
        ("kept".into(), counters.offers_kept),
        ("refused".into(), counters.offers_refused),
    ];
    let now = crate::atls::system_now();
    status.oldest_collateral_age_secs = verifier.oldest_in_use(now).map(|held| held.age_secs(now));
    status.collateral_held = u64::try_from(verifier.held_count()).unwrap_or(u64::MAX);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.request("mesh", "NewMeshCert", "ok", Duration::from_micros(700));
        metrics.request("mesh", "NewMeshCert", "ok", Duration::from_millis(30));
        metrics.request(
            "mesh",
            "NewMeshCert",
            "permission_denied",
            Duration::from_millis(1),
        );
        metrics.attestation_failure("evidence");
        metrics.peer_recovery(false);
        metrics.peer_recovery(true);
        metrics.connection_refused("user", "per_source_limit");
        metrics.connection_refused("user", "per_source_limit");
        metrics.frame_refused("mesh", "busy");
        metrics.set_body_bytes_in_flight(7);
        metrics.store_read(None);
        metrics.store_read(Some([9; 32]));
        metrics.store_read(None);
        let mut status = AgentStatus::default();
        metrics.fill(&mut status);
        let ok = status.requests.iter().find(|s| s.outcome == "ok").unwrap();
        assert_eq!(ok.count, 2);
        assert_eq!(ok.sum_micros, 30_700);
        // Edges: 0.1 ms, 0.5 ms, 1 ms, 5 ms, 10 ms, 50 ms, …
        assert_eq!(ok.buckets, vec![0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!(status.requests.len(), 2);
        assert_eq!(status.attestation_failures, vec![("evidence".into(), 1)]);
        assert_eq!(
            (
                status.peer_recovery_attempts,
                status.peer_recovery_successes
            ),
            (2, 1)
        );
        assert_eq!((status.store_reads, status.latest_read), (3, Some([9; 32])));
        let refusal = |api: &str, reason: &str, count| RefusalStats {
            api: api.into(),
            reason: reason.into(),
            count,
        };
        assert_eq!(
            status.refused_connections,
            vec![refusal("user", "per_source_limit", 2)]
        );
        assert_eq!(status.refused_frames, vec![refusal("mesh", "busy", 1)]);
        assert_eq!(status.body_bytes_in_flight, 7);
    }
}
