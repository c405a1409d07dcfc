//! What the agent last reported ([`AgentStatus`]) and when: the state
//! behind the probes and the metrics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The connection the last report came on (0: none, or it closed).
    /// It closes when the agent dies, and readiness must not outlive it by
    /// a report interval.
    connection: AtomicU64,
}

/// The connection id of reports made through [`StatusBoard::report`].
const UNNAMED: u64 = u64::MAX;

impl StatusBoard {
    /// Records a report.
    pub fn report(&self, status: AgentStatus) {
        self.report_on(UNNAMED, status);
    }

    /// Records a report that came on connection `connection` (nonzero).
    pub fn report_on(&self, connection: u64, status: AgentStatus) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner = Some((status, Instant::now()));
        self.connection.store(connection, Ordering::SeqCst);
    }

    /// Connection `connection` closed: if the last report came on it, the
    /// agent is gone (or reconnecting, after which it reports again).
    pub fn disconnected(&self, connection: u64) {
        let _ = self
            .connection
            .compare_exchange(connection, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Whether the connection of the last report is still open.
    pub fn connected(&self) -> bool {
        self.connection.load(Ordering::SeqCst) != 0
    }

    /// The latest report and its age, if any came.
    pub fn latest(&self) -> Option<(AgentStatus, Duration)> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .as_ref()
            .map(|(status, at)| (status.clone(), at.elapsed()))
    }
}
