//! The shim's end of the agent channel: accepts the agent's connections
//! (`Hello` with `Api::Shim`, then [`ShimRequest`] → [`ShimResponse`]),
//! and answers from the store, the peer list, the status board and the
//! collateral fetcher.
//!
//! Every connection is served by its own task; long polls block only
//! their own connection. A frame over [`MAX_SHIM_FRAME`] or one that does
//! not decode closes the connection. A connection whose hello was accepted
//! is the agent's on the [`StatusBoard`] until it ends: the liveness probe
//! fails only after all of them have been closed for a while.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accord_core::protocol::shim::{MAX_SHIM_FRAME, ShimRequest, ShimResponse};
use accord_core::protocol::{self, Api, Hello, HelloReply, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::collateral::CollateralService;
use crate::discovery::Discovery;
use crate::status::StatusBoard;
use crate::store::{Store, StoreError, batch};

/// How long the agent may stay silent on a connection (it sends a request
/// at least every 20 s on each). A hung agent's connections are closed
/// after this, which the liveness probe then counts as gone.
const IDLE: Duration = Duration::from_secs(300);

/// How long a frame body or a write may take.
const TRANSFER: Duration = Duration::from_secs(60);

/// Longest long poll granted, whatever the agent asks.
const MAX_POLL: Duration = Duration::from_secs(60);

/// What the channel serves from.
pub struct Shim<S, D> {
    /// The history.
    pub store: S,
    /// The peers.
    pub discovery: D,
    /// The agent's reports.
    pub board: Arc<StatusBoard>,
    /// Where vendor collateral comes from (`None`: every collateral
    /// request is answered `Failed`).
    pub collateral: Option<Arc<CollateralService>>,
}

/// Serves the agent channel on `listener` until `shutdown` turns true.
pub async fn serve<S: Store, D: Discovery>(
    listener: TcpListener,
    shim: Arc<Shim<S, D>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shim = Arc::clone(&shim);
                    tasks.spawn(async move {
                        if let Err(why) = connection(stream, &shim).await {
                            tracing::info!("agent channel {peer}: {why}");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!("accepting on the agent channel: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
}

/// Returns once shutdown begins (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn read_frame<M: Message, R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<M>, String> {
    let mut prefix = [0u8; 4];
    match tokio::time::timeout(IDLE, reader.read_exact(&mut prefix)).await {
        Err(_) => return Err("the agent was idle too long".into()),
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Ok(Err(err)) => return Err(format!("reading: {err}")),
        Ok(Ok(_)) => {}
    }
    let len = protocol::frame_len(prefix, max).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len];
    tokio::time::timeout(TRANSFER, reader.read_exact(&mut body))
        .await
        .map_err(|_| "a frame body took too long".to_string())?
        .map_err(|e| format!("reading: {e}"))?;
    protocol::decode(&body).map(Some).map_err(|e| e.to_string())
}

async fn write_frame<M: Message, W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &M,
    max: usize,
) -> Result<(), String> {
    let frame = protocol::encode(message, max).map_err(|e| e.to_string())?;
    tokio::time::timeout(TRANSFER, writer.write_all(&frame))
        .await
        .map_err(|_| "writing took too long".to_string())?
        .map_err(|e| format!("writing: {e}"))
}

async fn connection<S: Store, D: Discovery>(
    mut stream: TcpStream,
    shim: &Shim<S, D>,
) -> Result<(), String> {
    let Some(hello) = read_frame::<Hello, _>(&mut stream, 1024).await? else {
        return Ok(());
    };
    let reply = protocol::negotiate(&hello, Api::Shim);
    let accepted = matches!(reply, HelloReply::Accepted { .. });
    write_frame(&mut stream, &reply, 1024).await?;
    if !accepted {
        return Err("refused the agent's hello".into());
    }
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    // The agent is connected until this connection ends, however it ends.
    let _open = Opened::new(&shim.board, id);
    while let Some(request) = read_frame::<ShimRequest, _>(&mut stream, MAX_SHIM_FRAME).await? {
        let response = match request {
            ShimRequest::ReportStatus(status) => {
                shim.board.report_on(id, status);
                ShimResponse::StatusAccepted
            }
            other => answer(shim, other).await,
        };
        write_frame(&mut stream, &response, MAX_SHIM_FRAME).await?;
    }
    Ok(())
}

/// Names connections for the [`StatusBoard`] (0 means none).
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// An agent connection the board counts as open until this is dropped.
struct Opened<'a> {
    board: &'a StatusBoard,
    id: u64,
}

impl<'a> Opened<'a> {
    fn new(board: &'a StatusBoard, id: u64) -> Self {
        board.opened(id);
        Self { board, id }
    }
}

impl Drop for Opened<'_> {
    fn drop(&mut self) {
        self.board.closed(self.id);
    }
}

fn poll_limit(timeout_ms: u32) -> Duration {
    Duration::from_millis(u64::from(timeout_ms)).min(MAX_POLL)
}

/// The answer to one request other than a status report (those are
/// recorded on their connection by the caller).
async fn answer<S: Store, D: Discovery>(shim: &Shim<S, D>, request: ShimRequest) -> ShimResponse {
    match request {
        ShimRequest::Snapshot => match shim.store.snapshot().await {
            Ok(objects) => ShimResponse::Snapshot { objects },
            Err(StoreError::Failed(reason)) => ShimResponse::Failed { reason },
            Err(err) => ShimResponse::Failed {
                reason: err.to_string(),
            },
        },
        ShimRequest::Apply {
            puts,
            latest_old,
            latest_new,
        } => match shim.store.apply(batch(puts, latest_old, latest_new)).await {
            Ok(()) => ShimResponse::Applied,
            Err(StoreError::Conflict) => ShimResponse::Conflict,
            Err(StoreError::Failed(reason)) => ShimResponse::Failed { reason },
        },
        ShimRequest::WatchLatest { known, timeout_ms } => {
            let mut latest = shim.store.watch_latest();
            let _ = tokio::time::timeout(
                poll_limit(timeout_ms),
                latest.wait_for(|current| *current != known),
            )
            .await;
            let current = latest.borrow().clone();
            ShimResponse::Latest { latest: current }
        }
        ShimRequest::WatchPeers {
            known_version,
            timeout_ms,
        } => {
            let mut peers = shim.discovery.watch_peers();
            let _ = tokio::time::timeout(
                poll_limit(timeout_ms),
                peers.wait_for(|list| list.version != known_version),
            )
            .await;
            let list = peers.borrow().clone();
            ShimResponse::Peers {
                version: list.version,
                peers: list.peers,
            }
        }
        ShimRequest::Collateral(request) => match &shim.collateral {
            Some(service) => {
                let at = accord_core::time::UnixTime(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                );
                service.answer(&request, at).await
            }
            None => ShimResponse::Failed {
                reason: format!("{request}: this shim fetches no collateral"),
            },
        },
        // Recorded by `connection`, on the connection it came on; were it
        // recorded here, as on no connection, liveness could never fail.
        ShimRequest::ReportStatus(_) => ShimResponse::Failed {
            reason: "status reports are taken on the agent's channel connection".into(),
        },
    }
}
