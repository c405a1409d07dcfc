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
