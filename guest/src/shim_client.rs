//! The agent's end of the local channel to its host shim
//! (`accord_core::protocol::shim`): storage calls, the watch on the latest
//! record, the peer list, status reports, and vendor collateral for the
//! verifier ([`CollateralSource`]).
//!
//! The channel is plain TCP (the shim is on the same host or in the same
//! pod; it is untrusted whatever the transport, so TLS would add nothing).
//! Storage calls share one connection, re-opened after any failure; each
//! long poll ([`watch_latest`], [`watch_peers`]) has a connection of its
//! own so that storage never waits behind it.
//!
//! Everything the shim returns is checked where it is used: objects by
//! the state machine (re-hashed, chain walked, tree head verified), peers
//! by attestation. Here, replies are only bounds-checked: frames at most
//! [`MAX_SHIM_FRAME`], keys of the store's shape, no duplicate keys.

use std::collections::BTreeMap;
use std::time::Duration;

use accord_core::coordinator::store::StoreSnapshot;
use accord_core::coordinator::{StoreError, WriteBatch};
use accord_core::evidence::collateral::CollateralRequest;
use accord_core::protocol::shim::SHIM_VERSION;
use accord_core::protocol::shim::{AgentStatus, MAX_SHIM_FRAME, Peer, ShimRequest, ShimResponse};
use accord_core::protocol::{Api, Hello, HelloReply};
use accord_fs_store::split_key;
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc, watch};

use crate::atls::collateral::{CollateralSource, Fetch};
use crate::wire::{self, ReadLimits};

/// How long connecting may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// How long a storage reply may take (a Kubernetes backend retries).
const REPLY_WAIT: Duration = Duration::from_secs(60);

/// How long writing a request may take.
const WRITE_WAIT: Duration = Duration::from_secs(30);

/// How long one long poll asks the shim to wait.
const POLL: Duration = Duration::from_secs(20);

/// Pause after a failed long poll before the next.
const RETRY: Duration = Duration::from_millis(500);

/// A connection to the shim for request/reply calls.
pub struct ShimClient {
    addr: String,
    conn: Mutex<Option<TcpStream>>,
}

fn failed(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(format!("shim: {what}: {err}"))
}

async fn connect(addr: &str) -> Result<TcpStream, StoreError> {
    let mut stream = tokio::time::timeout(CONNECT_WAIT, TcpStream::connect(addr))
        .await
        .map_err(|_| failed(&format!("connecting to {addr}"), "timed out"))?
        .map_err(|e| failed(&format!("connecting to {addr}"), e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| failed("setting TCP_NODELAY", e))?;
    let hello = Hello {
        versions: vec![SHIM_VERSION],
        api: Api::Shim,
    };
    wire::write_message(&mut stream, &hello, 1024, WRITE_WAIT)
        .await
        .map_err(|e| failed("saying hello", e))?;
    let limits = ReadLimits {
        max: 4096,
        idle: REPLY_WAIT,
        body: REPLY_WAIT,
    };
    match wire::read_message::<HelloReply, _>(&mut stream, limits)
        .await
        .map_err(|e| failed("reading its hello", e))?
    {
        HelloReply::Accepted { .. } => Ok(stream),
        HelloReply::Refused { reason } => Err(failed("it refused the channel", reason)),
    }
}

impl ShimClient {
    /// A client for the shim at `addr` (connects on first use).
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_string(),
            conn: Mutex::new(None),
        }
    }

    /// Where the shim listens.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one request and reads its reply, waiting at most `wait` for
    /// it. The connection is dropped after any failure.
    async fn call(
        &self,
        request: &ShimRequest,
        wait: Duration,
    ) -> Result<ShimResponse, StoreError> {
        let mut guard = self.conn.lock().await;
        let stream = match guard.as_mut() {
            Some(stream) => stream,
            None => guard.insert(connect(&self.addr).await?),
        };
        let result = async {
            wire::write_message(stream, request, MAX_SHIM_FRAME, WRITE_WAIT)
                .await
                .map_err(|e| failed("sending a request", e))?;
            let limits = ReadLimits {
                max: MAX_SHIM_FRAME,
                idle: wait,
                body: REPLY_WAIT,
            };
            wire::read_message::<ShimResponse, _>(stream, limits)
                .await
                .map_err(|e| failed("reading a reply", e))
        }
        .await;
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// Every stored object.
    pub async fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        match self.call(&ShimRequest::Snapshot, REPLY_WAIT).await? {
            ShimResponse::Snapshot { objects } => {
                let mut map = BTreeMap::new();
                for (key, value) in objects {
                    split_key(&key)?;
                    if map.insert(key.clone(), value).is_some() {
                        return Err(failed("its snapshot", format!("key {key} appears twice")));
                    }
                }
                Ok(StoreSnapshot { objects: map })
            }
            ShimResponse::Failed { reason } => Err(StoreError::Failed(format!("shim: {reason}"))),
            other => Err(unexpected("Snapshot", &other)),
        }
    }

    /// Executes one write batch.
    pub async fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let request = ShimRequest::Apply {
            puts: batch.puts.clone(),
            latest_old: batch.latest_old.clone(),
            latest_new: batch.latest_new.clone(),
        };
        match self.call(&request, REPLY_WAIT).await? {
            ShimResponse::Applied => Ok(()),
            ShimResponse::Conflict => Err(StoreError::Conflict),
            ShimResponse::Failed { reason } => Err(StoreError::Failed(format!("shim: {reason}"))),
            other => Err(unexpected("Apply", &other)),
        }
    }

    /// Reports the agent's status.
    pub async fn report(&self, status: AgentStatus) -> Result<(), StoreError> {
        match self
            .call(&ShimRequest::ReportStatus(status), REPLY_WAIT)
            .await?
        {
            ShimResponse::StatusAccepted => Ok(()),
            other => Err(unexpected("ReportStatus", &other)),
        }
    }
}

/// Vendor collateral through the shim (`ShimRequest::Collateral`). Use a
/// client of its own, so that fetches never queue behind storage calls.
impl CollateralSource for ShimClient {
    fn fetch<'a>(&'a self, request: &'a CollateralRequest) -> Fetch<'a> {
        Box::pin(async move {
            match self
                .call(&ShimRequest::Collateral(request.clone()), REPLY_WAIT)
                .await
                .map_err(|err| err.to_string())?
            {
                ShimResponse::Collateral { bytes, .. } => Ok(bytes),
                ShimResponse::Failed { reason } => Err(format!("shim: {reason}")),
                other => Err(unexpected("Collateral", &other).to_string()),
            }
        })
    }
}

fn unexpected(request: &str, reply: &ShimResponse) -> StoreError {
    let name = match reply {
        ShimResponse::Snapshot { .. } => "Snapshot",
        ShimResponse::Applied => "Applied",
        ShimResponse::Conflict => "Conflict",
        ShimResponse::Failed { .. } => "Failed",
        ShimResponse::Latest { .. } => "Latest",
        ShimResponse::Peers { .. } => "Peers",
        ShimResponse::StatusAccepted => "StatusAccepted",
        ShimResponse::Collateral { .. } => "Collateral",
    };
    failed(request, format!("answered with {name}"))
}

/// Long-polls the shim for the latest record, sending every new value on
/// `changes`, until `changes` is closed.
pub async fn watch_latest(addr: String, changes: mpsc::UnboundedSender<Vec<u8>>) {
    let client = ShimClient::new(&addr);
    let mut known: Option<Vec<u8>> = None;
    let timeout_ms = u32::try_from(POLL.as_millis()).unwrap_or(u32::MAX);
    while !changes.is_closed() {
        let request = ShimRequest::WatchLatest {
            known: known.clone(),
            timeout_ms,
        };
        match client.call(&request, POLL + REPLY_WAIT).await {
            Ok(ShimResponse::Latest { latest }) => {
                if latest != known {
                    if let Some(bytes) = &latest
                        && changes.send(bytes.clone()).is_err()
                    {
                        return;
                    }
                    known = latest;
                }
            }
            Ok(_) | Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

/// Long-polls the shim for the peer list, publishing every new list on
/// `peers`, until every receiver is gone.
pub async fn watch_peers(addr: String, peers: watch::Sender<Vec<Peer>>) {
    let client = ShimClient::new(&addr);
    let mut known_version = 0;
    let timeout_ms = u32::try_from(POLL.as_millis()).unwrap_or(u32::MAX);
    while !peers.is_closed() {
        let request = ShimRequest::WatchPeers {
            known_version,
            timeout_ms,
        };
        match client.call(&request, POLL + REPLY_WAIT).await {
            Ok(ShimResponse::Peers {
                version,
                peers: list,
            }) => {
                if version != known_version {
                    known_version = version;
                    peers.send_replace(list);
                }
            }
            Ok(_) | Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}
