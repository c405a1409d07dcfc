//! Peer discovery: which other replicas are ready, as a watch channel of
//! [`PeerList`]s.
//!
//! [`StaticPeers`] serves a fixed list; the Kubernetes discovery
//! ([`crate::kube_discovery`]) follows the coordinator StatefulSet's pods.
//! The agent attests every peer before it says anything to it.

use std::time::Duration;

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

/// A fixed list of peers (`--peer NAME=MESH_ADDR[,PROBE_ADDR]`,
/// repeated). A peer with a probe address is listed only while its
/// readiness probe (`GET /probe/readiness` on PROBE_ADDR) answers 200,
/// checked every [`PROBE_EVERY`]; one without is always listed.
pub struct StaticPeers {
    tx: std::sync::Arc<watch::Sender<PeerList>>,
    prober: Option<tokio::task::JoinHandle<()>>,
}

/// One statically configured peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticPeer {
    /// The peer (name and mesh API address).
    pub peer: Peer,
    /// Where its shim serves probes (`HOST:PORT`), if known.
    pub probe: Option<String>,
}

/// How often static peers' readiness is checked.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How long one readiness check may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

impl StaticPeers {
    /// Serves `peers` (those with a probe address while they are ready).
    /// Must be called within a tokio runtime if any peer has a probe.
    pub fn new(peers: Vec<StaticPeer>) -> Self {
        let always: Vec<Peer> = peers
            .iter()
            .filter(|p| p.probe.is_none())
            .map(|p| p.peer.clone())
            .collect();
        let probed: Vec<StaticPeer> = peers.into_iter().filter(|p| p.probe.is_some()).collect();
        let (tx, _) = watch::channel(PeerList {
            version: 1,
            peers: always.clone(),
        });
        let tx = std::sync::Arc::new(tx);
        let prober = (!probed.is_empty()).then(|| {
            let tx = std::sync::Arc::clone(&tx);
            tokio::spawn(probe_forever(tx, always, probed))
        });
        Self { tx, prober }
    }
}

impl Drop for StaticPeers {
    fn drop(&mut self) {
        if let Some(prober) = &self.prober {
            prober.abort();
        }
    }
}

impl Discovery for StaticPeers {
    fn watch_peers(&self) -> watch::Receiver<PeerList> {
        self.tx.subscribe()
    }
}

async fn probe_forever(
    tx: std::sync::Arc<watch::Sender<PeerList>>,
    always: Vec<Peer>,
    probed: Vec<StaticPeer>,
) {
    loop {
        let mut peers = always.clone();
        for candidate in &probed {
            if let Some(addr) = &candidate.probe
                && is_ready(addr).await
            {
                peers.push(candidate.peer.clone());
            }
        }
        tx.send_if_modified(|list| {
            if list.peers == peers {
                return false;
            }
            list.version += 1;
            list.peers = peers;
            true
        });
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Whether `GET /probe/readiness` on `addr` answers 200.
pub async fn is_ready(addr: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /probe/readiness HTTP/1.1\r\nHost: peer\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.") && head.get(9..12) == Some(b"200".as_slice()))
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, check).await,
        Ok(Some(true))
    )
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
