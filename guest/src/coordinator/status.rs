//! Status reporting: the coordinator's state, generation and counters go
//! to the host shim (for its probes and `/metrics`) on every change and
//! every [`REPORT_EVERY`].

use std::sync::Arc;
use std::time::Duration;

use accord_core::coordinator::StateName;
use accord_core::protocol::shim::{AgentState, AgentStatus};
use tokio::sync::watch;

use super::metrics::Metrics;
use crate::shim_client::ShimClient;

/// How often the status goes to the shim when nothing changes (its
/// readiness probe fails when reports stop).
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// This process's resident set size (`VmRSS` in `/proc/self/status`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Reports the state and the counters to the shim on every change and
/// every [`REPORT_EVERY`]. Both listeners are up before this starts.
pub(super) async fn report_status(
    client: Arc<ShimClient>,
    mut state: watch::Receiver<(StateName, u64)>,
    metrics: Arc<Metrics>,
) {
    let mut failing = false;
    loop {
        let (name, generation) = *state.borrow_and_update();
        let mut status = AgentStatus {
            state: Some(match name {
                StateName::Uninitialized => AgentState::Uninitialized,
                StateName::Recovery => AgentState::Recovery,
                StateName::Ready => AgentState::Ready,
            }),
            listening: true,
            generation,
            resident_bytes: resident_bytes().unwrap_or(0),
            ..AgentStatus::default()
        };
        metrics.fill(&mut status);
        match client.report(status).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("the shim at {} is reachable again", client.addr());
            }
            Ok(()) => {}
            Err(err) if !failing => {
                failing = true;
                tracing::warn!("cannot report to the shim: {err}");
            }
            Err(_) => {}
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(REPORT_EVERY) => {}
        }
    }
}
