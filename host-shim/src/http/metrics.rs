//! The agent's last report as Prometheus text exposition format 0.0.4.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `accord_requests_total` | counter | `api`, `method`, `outcome` |
//! | `accord_request_duration_seconds` | histogram | `api`, `method`, `outcome` (+ `le`) |
//! | `accord_attestation_failures_total` | counter | `reason` |
//! | `accord_manifest_generation` | gauge | |
//! | `accord_state` | gauge (one-hot) | `state` |
//! | `accord_peer_recovery_attempts_total` | counter | |
//! | `accord_peer_recovery_successes_total` | counter | |
//! | `accord_agent_resident_bytes` | gauge | |
//! | `accord_forged_histories_total` | counter | |
//! | `accord_store_reads_total` | counter | |
//! | `accord_store_latest_read_info` | gauge | `sha256` |
//! | `accord_connections_refused_total` | counter | `api`, `reason` |
//! | `accord_frames_refused_total` | counter | `api`, `reason` |
//! | `accord_request_body_bytes_in_flight` | gauge | |
//! | `accord_collateral_refusals_total` | counter | `reason` (`stale`, `revoked`, `older`, `missing`) |
//! | `accord_collateral_offers_total` | counter | `outcome` (`kept`, `refused`) |
//! | `accord_collateral_held` | gauge | |
//! | `accord_collateral_oldest_age_seconds` | gauge | (no sample while none is held) |
//! | `accord_agent_report_age_seconds` | gauge | |
//! | `accord_shim_agent_connections` | gauge | |
//! | `accord_shim_probe_connections` | gauge | |
//! | `accord_shim_probe_connections_evicted_total` | counter | |
//! | `accord_shim_collateral_answers_total` | counter | `kind` (`snp_vcek`, `snp_chain`, `snp_crl`, `tdx_collateral`), `outcome` (`vendor`, `cache`, `cache_vendor_failed`, `failed`) |
//! | `accord_shim_collateral_fetches_total` | counter | `source` (`cache`, `vendor`, `cache_vendor_failed`), `outcome` (`ok`, `failed`): each vendor document (a TDX answer is four) |
//! | `accord_shim_collateral_cache_hits_total` | counter | |
//!
//! The `accord_shim_*` families are the shim's own numbers
//! ([`ShimCounters`]); the others come from the agent's last report.
//! Before the first report every agent family is present with zero
//! samples (`accord_state` all 0), except the report age, which has no
//! sample.
//! The agent's numbers are not trusted to be well-formed: series with the
//! same labels are merged, and the histogram buckets are clamped to be
//! cumulative and at most the count.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use accord_core::protocol::shim::{AgentState, AgentStatus, LATENCY_BUCKETS, RefusalStats};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One merged (api, method, outcome) series.
#[derive(Default)]
struct Series {
    count: u64,
    sum_micros: u64,
    buckets: [u64; LATENCY_BUCKETS.len()],
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family labelled by `api` and `reason` (series with the same
/// labels merged).
fn refusal_counter(out: &mut String, name: &str, help: &str, counts: &[RefusalStats]) {
    header(out, name, "counter", help);
    let mut merged: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for stats in counts {
        let entry = merged.entry((&stats.api, &stats.reason)).or_default();
        *entry = entry.saturating_add(stats.count);
    }
    for ((api, reason), count) in merged {
        let _ = writeln!(
            out,
            "{name}{{api=\"{}\",reason=\"{}\"}} {count}",
            escape_label(api),
            escape_label(reason)
        );
    }
}

/// The shim's own numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShimCounters {
    /// Connections open on the probe port (this scrape's included).
    pub probe_connections: u64,
    /// Probe-port connections evicted to make room for newer ones.
    pub probe_connections_evicted: u64,
    /// The agent's channel connections open.
    pub agent_connections: u64,
    /// The collateral answers to the agent: (kind, outcome, count).
    pub collateral_answers: Vec<(&'static str, &'static str, u64)>,
    /// The fetcher's counters (each vendor document).
    pub collateral_fetches: accord_collateral::FetchCounts,
}

/// Renders `latest` (the agent's last report and its age, if any) and the
/// shim's own counters.
pub fn render(latest: Option<(&AgentStatus, Duration)>, shim: &ShimCounters) -> String {
    let empty = AgentStatus::default();
    let status = latest.map_or(&empty, |(status, _)| status);
    let mut out = String::new();

    let mut series: BTreeMap<(&str, &str, &str), Series> = BTreeMap::new();
    for stats in &status.requests {
        let entry = series
            .entry((&stats.api, &stats.method, &stats.outcome))
            .or_default();
        entry.count = entry.count.saturating_add(stats.count);
        entry.sum_micros = entry.sum_micros.saturating_add(stats.sum_micros);
        // A missing bucket counts as none.
        for (i, merged) in entry.buckets.iter_mut().enumerate() {
            *merged = merged.saturating_add(stats.buckets.get(i).copied().unwrap_or(0));
        }
    }

    header(
        &mut out,
        "accord_requests_total",
        "counter",
        "Requests handled, by API, method and outcome.",
    );
    for ((api, method, outcome), s) in &series {
        let _ = writeln!(
            out,
            "accord_requests_total{{api=\"{}\",method=\"{}\",outcome=\"{}\"}} {}",
            escape_label(api),
            escape_label(method),
            escape_label(outcome),
            s.count
        );
    }

    header(
        &mut out,
        "accord_request_duration_seconds",
        "histogram",
        "Request handling time in seconds, by API, method and outcome.",
    );
    for ((api, method, outcome), s) in &series {
        let labels = format!(
            "api=\"{}\",method=\"{}\",outcome=\"{}\"",
            escape_label(api),
            escape_label(method),
            escape_label(outcome)
        );
        let mut cumulative = 0;
        for (edge, bucket) in LATENCY_BUCKETS.iter().zip(s.buckets) {
            cumulative = bucket.clamp(cumulative, s.count.max(cumulative));
            let _ = writeln!(
                out,
                "accord_request_duration_seconds_bucket{{{labels},le=\"{edge}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "accord_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            s.count.max(cumulative)
        );
        let _ = writeln!(
            out,
            "accord_request_duration_seconds_sum{{{labels}}} {}",
            s.sum_micros as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "accord_request_duration_seconds_count{{{labels}}} {}",
            s.count.max(cumulative)
        );
    }

    header(
        &mut out,
        "accord_attestation_failures_total",
        "counter",
        "Attestation failures on the mesh API, by reason.",
    );
    let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
    for (reason, n) in &status.attestation_failures {
        let entry = failures.entry(reason).or_default();
        *entry = entry.saturating_add(*n);
    }
    for (reason, n) in failures {
        let _ = writeln!(
            out,
            "accord_attestation_failures_total{{reason=\"{}\"}} {n}",
            escape_label(reason)
        );
    }

    header(
        &mut out,
        "accord_manifest_generation",
        "gauge",
        "The manifest generation served (0 unless ready).",
    );
    let _ = writeln!(out, "accord_manifest_generation {}", status.generation);

    header(
        &mut out,
        "accord_state",
        "gauge",
        "The agent's state (one-hot; all 0 before the first report).",
    );
    for (name, state) in [
        ("uninitialized", AgentState::Uninitialized),
        ("recovery", AgentState::Recovery),
        ("ready", AgentState::Ready),
    ] {
        let on = u8::from(status.state == Some(state));
        let _ = writeln!(out, "accord_state{{state=\"{name}\"}} {on}");
    }

    header(
        &mut out,
        "accord_peer_recovery_attempts_total",
        "counter",
        "Peer recovery attempts.",
    );
    let _ = writeln!(
        out,
        "accord_peer_recovery_attempts_total {}",
        status.peer_recovery_attempts
    );
    header(
        &mut out,
        "accord_peer_recovery_successes_total",
        "counter",
        "Peer recoveries that succeeded.",
    );
    let _ = writeln!(
        out,
        "accord_peer_recovery_successes_total {}",
        status.peer_recovery_successes
    );

    header(
        &mut out,
        "accord_agent_resident_bytes",
        "gauge",
        "The agent's resident set size as it reported it (0 before the first report).",
    );
    let _ = writeln!(out, "accord_agent_resident_bytes {}", status.resident_bytes);

    refusal_counter(
        &mut out,
        "accord_connections_refused_total",
        "Connections the agent closed at accept, by API and reason (per_source_limit, connection_limit).",
        &status.refused_connections,
    );
    refusal_counter(
        &mut out,
        "accord_frames_refused_total",
        "Request frames the agent refused before decoding, by API and reason (busy, too_large, malformed).",
        &status.refused_frames,
    );
    header(
        &mut out,
        "accord_request_body_bytes_in_flight",
        "gauge",
        "Request body bytes reserved in the agent's body budget (0 before the first report).",
    );
    let _ = writeln!(
        out,
        "accord_request_body_bytes_in_flight {}",
        status.body_bytes_in_flight
    );

    header(
        &mut out,
        "accord_forged_histories_total",
        "counter",
        "Store contents the agent refused as forged while serving (FORGED in its log).",
    );
    let _ = writeln!(
        out,
        "accord_forged_histories_total {}",
        status.forged_histories
    );

    header(
        &mut out,
        "accord_store_reads_total",
        "counter",
        "Store contents the agent read and judged (at start, on reloads, on each change the store announced).",
    );
    let _ = writeln!(out, "accord_store_reads_total {}", status.store_reads);

    header(
        &mut out,
        "accord_store_latest_read_info",
        "gauge",
        "SHA-256 of the latest record in the store contents the agent last read and judged (no sample before the first).",
    );
    if let Some(hash) = &status.latest_read {
        let _ = writeln!(
            out,
            "accord_store_latest_read_info{{sha256=\"{}\"}} 1",
            accord_core::hex::encode(hash)
        );
    }

    let named = |out: &mut String, name: &str, label: &str, counts: &[(String, u64)]| {
        let mut merged: BTreeMap<&str, u64> = BTreeMap::new();
        for (key, n) in counts {
            let entry = merged.entry(key).or_default();
            *entry = entry.saturating_add(*n);
        }
        for (key, n) in merged {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape_label(key));
        }
    };
    header(
        &mut out,
        "accord_collateral_refusals_total",
        "counter",
        "Attestations and collateral offers the agent's verifier refused for their collateral, by reason (stale, revoked, older than seen, missing).",
    );
    named(
        &mut out,
        "accord_collateral_refusals_total",
        "reason",
        &status.collateral_refusals,
    );
    header(
        &mut out,
        "accord_collateral_offers_total",
        "counter",
        "Collateral offered to the agent's verifier (from the shim or carried by evidence), kept or refused.",
    );
    named(
        &mut out,
        "accord_collateral_offers_total",
        "outcome",
        &status.collateral_offers,
    );
    header(
        &mut out,
        "accord_collateral_held",
        "gauge",
        "Collateral items (CRLs, VCEKs, TDX collateral) the agent's verifier holds.",
    );
    let _ = writeln!(out, "accord_collateral_held {}", status.collateral_held);
    header(
        &mut out,
        "accord_collateral_oldest_age_seconds",
        "gauge",
        "Seconds since the oldest CRL or TDX collateral the agent's verifier uses was issued.",
    );
    if let Some(age) = status.oldest_collateral_age_secs {
        let _ = writeln!(out, "accord_collateral_oldest_age_seconds {age}");
    }

    header(
        &mut out,
        "accord_agent_report_age_seconds",
        "gauge",
        "Seconds since the agent last reported (no sample before the first report).",
    );
    if let Some((_, age)) = latest {
        let _ = writeln!(out, "accord_agent_report_age_seconds {}", age.as_secs_f64());
    }

    for (name, kind, help, value) in [
        (
            "accord_shim_agent_connections",
            "gauge",
            "The agent's channel connections open (liveness fails only after none has been open for the grace period).",
            shim.agent_connections,
        ),
        (
            "accord_shim_probe_connections",
            "gauge",
            "Connections open on the probe and metrics port.",
            shim.probe_connections,
        ),
        (
            "accord_shim_probe_connections_evicted_total",
            "counter",
            "Probe-port connections closed to serve a newer one while at the connection limit (the oldest without a complete request first).",
            shim.probe_connections_evicted,
        ),
    ] {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }

    header(
        &mut out,
        "accord_shim_collateral_answers_total",
        "counter",
        "Collateral requests of the agent answered by the shim, by kind and outcome.",
    );
    for (kind, outcome, n) in &shim.collateral_answers {
        let _ = writeln!(
            out,
            "accord_shim_collateral_answers_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let fetches = &shim.collateral_fetches;
    header(
        &mut out,
        "accord_shim_collateral_fetches_total",
        "counter",
        "Vendor documents obtained by the shim's fetcher, by source and outcome.",
    );
    for (source, outcome, n) in [
        ("cache", "ok", fetches.cache_hits),
        ("vendor", "ok", fetches.vendor_ok),
        (
            "cache_vendor_failed",
            "ok",
            fetches.vendor_failed_cache_served,
        ),
        ("none", "failed", fetches.failed),
    ] {
        let _ = writeln!(
            out,
            "accord_shim_collateral_fetches_total{{source=\"{source}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    header(
        &mut out,
        "accord_shim_collateral_cache_hits_total",
        "counter",
        "Vendor documents the shim served from its cache without asking the vendor.",
    );
    let _ = writeln!(
        out,
        "accord_shim_collateral_cache_hits_total {}",
        fetches.cache_hits
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label("plain"), "plain");
    }
}
