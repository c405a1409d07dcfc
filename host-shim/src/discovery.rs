//! Peer discovery: which other replicas are ready, as a watch channel of
//! [`PeerList`]s.
//!
//! [`StaticPeers`] serves a fixed list; the Kubernetes discovery
//! ([`crate::kube_discovery`]) follows the coordinator StatefulSet's pods.
//! The agent attests every peer before it says anything to it.

use accord_core::protocol::shim::Peer;
use tokio::sync::watch;

/// The peers at one moment; `version` changes whenever the list does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerList {
    /// Starts at 1 for the first list.
    pub version: u64,
    /// Ready peers, never this replica.
    pub peers: Vec<Peer>,
}

/// A source of peer lists.
pub trait Discovery: Send + Sync + 'static {
    /// The current list, updated as peers come and go.
    fn watch_peers(&self) -> watch::Receiver<PeerList>;
}

/// A fixed list of peers (`--peer NAME=HOST:PORT`, repeated).
pub struct StaticPeers {
    tx: watch::Sender<PeerList>,
}

impl StaticPeers {
    /// Serves `peers` forever.
    pub fn new(peers: Vec<Peer>) -> Self {
        let (tx, _) = watch::channel(PeerList { version: 1, peers });
        Self { tx }
    }
}

impl Discovery for StaticPeers {
    fn watch_peers(&self) -> watch::Receiver<PeerList> {
        self.tx.subscribe()
    }
}

/// A peer list the caller changes at will (tests, and the CLI's
/// multi-replica demo, which knows its replicas' addresses).
#[derive(Clone)]
pub struct ManualPeers {
    tx: std::sync::Arc<watch::Sender<PeerList>>,
}

impl Default for ManualPeers {
    fn default() -> Self {
        let (tx, _) = watch::channel(PeerList::default());
        Self {
            tx: std::sync::Arc::new(tx),
        }
    }
}

impl ManualPeers {
    /// Replaces the list (the version moves on only if it changed).
    pub fn set(&self, peers: Vec<Peer>) {
        self.tx.send_if_modified(|list| {
            if list.peers == peers && list.version != 0 {
                return false;
            }
            list.version += 1;
            list.peers = peers;
            true
        });
    }
}

impl Discovery for ManualPeers {
    fn watch_peers(&self) -> watch::Receiver<PeerList> {
        self.tx.subscribe()
    }
}
