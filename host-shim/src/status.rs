//! What the agent last reported ([`AgentStatus`]) and when: the state
//! behind the probes and the metrics.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use accord_core::protocol::shim::AgentStatus;

/// How long the agent may stay silent before the liveness probe fails
/// (it reports at least every [`REPORT_INTERVAL`]).
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(15);

/// How often the agent reports when nothing changes.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The latest report, shared between the channel and the HTTP server.
#[derive(Default)]
pub struct StatusBoard {
    inner: Mutex<Option<(AgentStatus, Instant)>>,
}

impl StatusBoard {
    /// Records a report.
    pub fn report(&self, status: AgentStatus) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner = Some((status, Instant::now()));
    }

    /// The latest report and its age, if any came.
    pub fn latest(&self) -> Option<(AgentStatus, Duration)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .as_ref()
            .map(|(status, at)| (status.clone(), at.elapsed()))
    }
}
