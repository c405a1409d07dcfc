//! What the agent last reported ([`AgentStatus`]) and when, and which of
//! its channel connections are open: the state behind the probes and the
//! metrics.
//!
//! Liveness ([`StatusBoard::liveness`]) is judged on the agent's channel
//! connections, not on the age of its reports: reports travel on the
//! storage connection and queue behind slow store calls, so a late report
//! proves nothing, while a closed connection on loopback means the process
//! on the other end let go of it. A hung agent that keeps its sockets
//! open is cut off by the channel's own idle limit (5 minutes of silence on
//! a connection, `channel.rs`), which then counts as a close.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::protocol::shim::AgentStatus;

use crate::collateral::CollateralService;

/// How old the last report may be for the readiness probe (the agent
/// reports at least every [`REPORT_INTERVAL`]).
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the agent may be without any open channel connection, after
/// it had one, before the liveness probe fails (it reconnects within a
/// second or two after a dropped connection).
pub const LIVENESS_GRACE: Duration = Duration::from_secs(15);

/// How long after the shim starts the agent may take to connect for the
/// first time before the liveness probe fails (on Kubernetes the startup
/// probe's 60 s come first; this covers a shim restarted on its own).
pub const BOOT_GRACE: Duration = Duration::from_secs(60);

/// How often the agent reports when nothing changes.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(2);

/// The liveness verdict and its evidence ([`StatusBoard::liveness`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// At least one of the agent's channel connections is open (however
    /// old its last report is).
    Connected,
    /// The agent's connections all closed `since` ago, within the grace:
    /// it may be reconnecting.
    Reconnecting {
        /// Since the last one closed.
        since: Duration,
    },
    /// The agent has not connected yet; the shim started `up` ago, within
    /// the boot grace.
    Booting {
        /// Since the shim started.
        up: Duration,
    },
    /// Dead: the agent's connections all closed `since` ago, longer than
    /// the grace, and none came back.
    Gone {
        /// Since the last one closed.
        since: Duration,
    },
    /// Dead: the agent never connected in the `up` since the shim started,
    /// longer than the boot grace.
    NeverConnected {
        /// Since the shim started.
        up: Duration,
    },
}

impl Liveness {
    /// Whether the liveness probe answers `200`.
    pub fn is_alive(self) -> bool {
        matches!(
            self,
            Self::Connected | Self::Reconnecting { .. } | Self::Booting { .. }
        )
    }
}

impl std::fmt::Display for Liveness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connected => write!(f, "the agent is connected"),
            Self::Reconnecting { since } => write!(
                f,
                "the agent's connections closed {} s ago; waiting for it to reconnect",
                since.as_secs()
            ),
            Self::Booting { up } => write!(
                f,
                "the agent has not connected yet ({} s since the shim started)",
                up.as_secs()
            ),
            Self::Gone { since } => write!(
                f,
                "the agent's connections closed {} s ago and it has not come back",
                since.as_secs()
            ),
            Self::NeverConnected { up } => write!(
                f,
                "the agent has not connected in the {} s since the shim started",
                up.as_secs()
            ),
        }
    }
}

/// The latest report and the agent's connections, shared between the
/// channel and the HTTP server.
pub struct StatusBoard {
    /// When the board (the shim) started.
    started: Instant,
    inner: Mutex<Inner>,
    /// The shim's collateral service, for its counters in `/metrics`.
    collateral: Mutex<Option<Arc<CollateralService>>>,
}

#[derive(Default)]
struct Inner {
    latest: Option<(AgentStatus, Instant)>,
    /// The connection the last report came on (0: none, or it closed).
    /// It closes when the agent dies, and readiness must not outlive it by
    /// a report interval.
    status_connection: u64,
    /// The agent's channel connections that are open.
    open: BTreeSet<u64>,
    /// When the last open connection closed (`None` while one is open, or
    /// before the first).
    all_closed_at: Option<Instant>,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
            collateral: Mutex::new(None),
        }
    }
}

/// The connection id of reports made through [`StatusBoard::report`]: a
/// connection that never closes.
const UNNAMED: u64 = u64::MAX;

impl StatusBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows `service`'s counters in the metrics.
    pub fn set_collateral(&self, service: Arc<CollateralService>) {
        *self.collateral.lock().unwrap_or_else(|p| p.into_inner()) = Some(service);
    }

    /// The collateral service whose counters the metrics show.
    pub fn collateral(&self) -> Option<Arc<CollateralService>> {
        self.collateral
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records a report that came on no connection (tests, in-process
    /// callers): it counts as a connection that stays open.
    pub fn report(&self, status: AgentStatus) {
        self.report_on(UNNAMED, status);
    }

    /// Records a report that came on connection `connection` (nonzero).
    pub fn report_on(&self, connection: u64, status: AgentStatus) {
        let mut inner = self.lock();
        inner.latest = Some((status, Instant::now()));
        inner.status_connection = connection;
    }

    /// The agent opened channel connection `connection` (nonzero; its
    /// hello was accepted).
    pub fn opened(&self, connection: u64) {
        let mut inner = self.lock();
        inner.open.insert(connection);
        inner.all_closed_at = None;
    }

    /// Connection `connection` closed. If the last report came on it, the
    /// agent is gone (or reconnecting, after which it reports again); if
    /// it was the last open one, the liveness grace starts.
    pub fn closed(&self, connection: u64) {
        let mut inner = self.lock();
        if inner.status_connection == connection {
            inner.status_connection = 0;
        }
        if inner.open.remove(&connection) && inner.open.is_empty() {
            inner.all_closed_at = Some(Instant::now());
        }
    }

    /// Whether the connection of the last report is still open.
    pub fn status_connection_open(&self) -> bool {
        self.lock().status_connection != 0
    }

    /// How many of the agent's channel connections are open.
    pub fn open_connections(&self) -> usize {
        self.lock().open.len()
    }

    /// The latest report and its age, if any came.
    pub fn latest(&self) -> Option<(AgentStatus, Duration)> {
        let inner = self.lock();
        inner
            .latest
            .as_ref()
            .map(|(status, at)| (status.clone(), at.elapsed()))
    }

    /// The liveness verdict: dead only on evidence that the agent is gone
    /// — it had channel connections and all of them have been closed for
    /// longer than `grace`, or it never connected in the `boot_grace`
    /// after the shim started. An open connection is alive however late
    /// its reports are.
    pub fn liveness(&self, grace: Duration, boot_grace: Duration) -> Liveness {
        let inner = self.lock();
        if !inner.open.is_empty() || inner.status_connection == UNNAMED {
            return Liveness::Connected;
        }
        match inner.all_closed_at {
            Some(at) => {
                let since = at.elapsed();
                if since < grace {
                    Liveness::Reconnecting { since }
                } else {
                    Liveness::Gone { since }
                }
            }
            None => {
                let up = self.started.elapsed();
                if up < boot_grace {
                    Liveness::Booting { up }
                } else {
                    Liveness::NeverConnected { up }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn liveness_follows_the_connections() {
        let board = StatusBoard::default();
        assert!(matches!(
            board.liveness(LONG, LONG),
            Liveness::Booting { .. }
        ));
        assert!(matches!(
            board.liveness(LONG, Duration::ZERO),
            Liveness::NeverConnected { .. }
        ));
        board.opened(1);
        board.opened(2);
        assert_eq!(
            board.liveness(Duration::ZERO, Duration::ZERO),
            Liveness::Connected
        );
        board.report_on(2, AgentStatus::default());
        board.closed(2);
        // One connection is left: alive, though the report's is gone.
        assert!(!board.status_connection_open());
        assert_eq!(
            board.liveness(Duration::ZERO, Duration::ZERO),
            Liveness::Connected
        );
        board.closed(1);
        assert!(matches!(
            board.liveness(LONG, Duration::ZERO),
            Liveness::Reconnecting { .. }
        ));
        assert!(matches!(
            board.liveness(Duration::ZERO, LONG),
            Liveness::Gone { .. }
        ));
        // Closing twice, or an unknown id, changes nothing.
        board.closed(1);
        board.closed(7);
        board.opened(3);
        assert_eq!(
            board.liveness(Duration::ZERO, Duration::ZERO),
            Liveness::Connected
        );
        assert_eq!(board.open_connections(), 1);
    }

    #[test]
    fn unnamed_reports_count_as_an_open_connection() {
        let board = StatusBoard::default();
        board.report(AgentStatus::default());
        assert!(board.status_connection_open());
        assert_eq!(
            board.liveness(Duration::ZERO, Duration::ZERO),
            Liveness::Connected
        );
    }

    #[test]
    fn verdicts_say_why() {
        let dead = Liveness::Gone {
            since: Duration::from_secs(20),
        };
        assert!(!dead.is_alive());
        assert_eq!(
            dead.to_string(),
            "the agent's connections closed 20 s ago and it has not come back"
        );
        assert!(
            !Liveness::NeverConnected {
                up: Duration::from_secs(61)
            }
            .is_alive()
        );
        assert!(Liveness::Connected.is_alive());
    }
}
