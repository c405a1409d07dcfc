//! The coordinator's user API and mesh API servers.
//!
//! Both accept TCP connections (Nagle off), run attested TLS in a task per
//! connection (so a slow or hostile client never blocks the accept loop or
//! another client), then speak `accord_core::protocol`: a `Hello`, then
//! requests and replies in order.
//!
//! - User API: the server is attested, the client may present a key
//!   (`ClientAuth::KeyOptional`). Requests go to the driver; a frame that
//!   is too large or does not decode gets a `Protocol` error reply and the
//!   connection is closed. The first `GetRecoveryState` of a connection
//!   makes its recovery key (X25519, sent in the reply); a `Recover` on
//!   that connection is an HPKE Auth-mode submission to that key, bound to
//!   the connection's exporter (`EXPORTER-accord-recovery`), which proves
//!   the seed-share owner's key (`seedshare::submission`).
//! - Mesh API: mutual attestation against the current manifest's reference
//!   values. The acceptor is rebuilt when the published generation changes;
//!   a connection keeps the generation its acceptor had, and the state
//!   machine refuses it if the manifest moved on meanwhile. While the
//!   coordinator is not Ready, connections get a TLS handshake and then an
//!   attested-TLS `Refused` frame saying why.
//!
//! Every read has a time limit. On shutdown the servers stop accepting,
//! idle connections close, and requests in flight get [`GRACE`] to finish.
//!
//! Admission ([`super::limits`]): at most [`MAX_CONNECTIONS`] connections
//! per API and [`super::limits::Limits::connections_per_source`] per source
//! address, refused at accept; request bodies take their announced length
//! from the process-wide body budget before they are read and keep it
//! until answered; on the user API only `SetManifest` may be larger than
//! `MAX_USER_SMALL_FRAME`, checked on the body's first byte.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::protocol::{
    self, Api, ErrorReply, Hello, HelloReply, MAX_MESH_FRAME, MAX_USER_FRAME, MeshRequest, Message,
    NewMeshCertReply, PeerRecoverReply, RecoverySession, UserError, UserRequest,
};
use accord_core::seedshare::submission::RecoveryKey;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::limits::{
    Admission, BodyError, BodyTicket, ConnectionRefusal, LineLimiter, REFUSAL_LOG_EVERY,
    RefusalLog, RequestReader, Sources, api_name,
};
use super::{Handle, MeshState, new_request_id};
use crate::atls::frame::{Frame, write_frame};
use crate::atls::{
    Acceptor, ClientAuth, Clock, CollateralSource, Identity, PeerPolicy, Timeouts, VerifiedPeer,
    tls,
};
use crate::tee::TeeProvider;
use crate::wire::{self, ReadLimits, WireError};
use tracing::Instrument;

/// How long requests in flight may take to finish after shutdown began.
pub const GRACE: Duration = Duration::from_secs(5);

/// How long a connection may sit idle between requests.
pub const IDLE: Duration = Duration::from_secs(60);

/// How long a frame body may take to arrive once its length did.
pub const BODY: Duration = Duration::from_secs(30);

/// How long writing a reply may take.
pub const WRITE: Duration = Duration::from_secs(30);

/// Most connections served at once per API; more are dropped on accept.
pub const MAX_CONNECTIONS: usize = 1024;

/// Largest `Hello` accepted.
const MAX_HELLO: usize = 1024;

/// How long the client has to say `Hello` after the handshake.
const HELLO_WAIT: Duration = Duration::from_secs(10);

/// A flag that turns true once shutdown begins.
pub type Shutdown = watch::Receiver<bool>;

async fn shutting_down(shutdown: &mut Shutdown) {
    // An error means the sender is gone: treat as shutdown too.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One connection's work, as the accept loop spawns it.
type Connection = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Accepts connections until shutdown and spawns what `serve` makes of
/// each (`None`: nothing to do); then waits up to [`GRACE`] for the
/// connections to finish. A connection over [`MAX_CONNECTIONS`] or over
/// its source's share is closed at once, counted and logged (at most one
/// line per [`REFUSAL_LOG_EVERY`]).
async fn accept_loop<F>(
    listener: TcpListener,
    mut shutdown: Shutdown,
    api: Api,
    admission: &Admission,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Option<Connection>,
{
    let name = api_name(api);
    let per_source = admission.limits.connections_per_source;
    let sources = Arc::new(Sources::new(per_source));
    let mut refusals = RefusalLog::new(name, REFUSAL_LOG_EVERY, per_source);
    let mut tasks = JoinSet::new();
    loop {
        let due = refusals.due();
        tokio::select! {
            () = shutting_down(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let slot = if tasks.len() >= MAX_CONNECTIONS {
                        Err(ConnectionRefusal::Total)
                    } else {
                        sources.admit(peer.ip()).ok_or(ConnectionRefusal::PerSource)
                    };
                    let slot = match slot {
                        Ok(slot) => slot,
                        Err(why) => {
                            drop(stream);
                            admission.metrics().connection_refused(name, why.reason());
                            if let Some(line) = refusals.refused(Instant::now(), why, peer.ip()) {
                                tracing::warn!("{line}");
                            }
                            continue;
                        }
                    };
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::warn!("{name} API: TCP_NODELAY on {peer}: {err}");
                    }
                    if let Some(connection) = serve(stream, peer) {
                        let span = tracing::debug_span!(
                            "connection",
                            id = new_connection_id(),
                            api = name,
                            %peer
                        );
                        tasks.spawn(
                            async move {
                                tracing::debug!("accepted");
                                connection.await;
                                tracing::debug!("closed");
                                drop(slot);
                            }
                            .instrument(span),
                        );
                    }
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off a bit.
                    tracing::warn!("{name} API: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = sleep_until(due), if due.is_some() => {
                if let Some(line) = refusals.flush(Instant::now()) {
                    tracing::warn!("{line}");
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    if let Some(line) = refusals.flush(Instant::now()) {
        tracing::warn!("{line}");
    }
    let drained =
        tokio::time::timeout(GRACE, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            "{name} API: {} connection(s) still busy after {} s; closing them",
            tasks.len(),
            GRACE.as_secs()
        );
        tasks.shutdown().await;
    }
}

/// A fresh connection id, unique in this process (the `connection` span's
/// `id` in the logs).
fn new_connection_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Sleeps until `at` (forever when `None`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Reads the client's `Hello` and answers it; `Err` means the connection
/// is over.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, api: Api) -> Result<(), String> {
    let limits = ReadLimits {
        max: MAX_HELLO,
        idle: HELLO_WAIT,
        body: HELLO_WAIT,
    };
    let reply = match wire::read_message::<Hello, _>(stream, limits).await {
        Ok(hello) => protocol::negotiate(&hello, api),
        Err(WireError::Protocol(err)) => HelloReply::Refused {
            reason: err.to_string(),
        },
        Err(err) => return Err(format!("no Hello: {err}")),
    };
    let refused = match &reply {
        HelloReply::Refused { reason } => Some(reason.clone()),
        HelloReply::Accepted { .. } => None,
    };
    wire::write_message(stream, &reply, MAX_HELLO, WRITE)
        .await
        .map_err(|e| format!("writing HelloReply: {e}"))?;
    match refused {
        Some(reason) => Err(format!("Hello refused: {reason}")),
        None => Ok(()),
    }
}

/// What reading the next request produced.
enum Next<M> {
    /// A request, and its body's bytes in the budget: keep the ticket
    /// until the request has been answered.
    Request(M, BodyTicket),
    /// Close quietly (EOF, idle timeout, shutdown).
    Close,
    /// Refuse the frame (too large, busy, malformed): reply, then close.
    Refuse(String),
}

async fn next_request<M: protocol::Message, S: AsyncRead + Unpin>(
    stream: &mut S,
    reader: &RequestReader,
    shutdown: &mut Shutdown,
) -> Next<M> {
    let max = match reader.api() {
        Api::User => MAX_USER_FRAME,
        Api::Mesh | Api::Shim => MAX_MESH_FRAME,
    };
    let limits = ReadLimits {
        max,
        idle: IDLE,
        body: BODY,
    };
    let len = tokio::select! {
        biased;
        () = shutting_down(shutdown) => return Next::Close,
        len = wire::read_len(stream, limits) => len,
    };
    let len = match len {
        Ok(len) => len,
        Err(WireError::Protocol(err)) => {
            reader.count_refusal("too_large");
            return Next::Refuse(err.to_string());
        }
        Err(_) => return Next::Close,
    };
    // Once a request has started to arrive it is read and served even if
    // shutdown begins (bounded by BODY and GRACE). BODY covers the wait
    // for room in the budget too.
    let (body, ticket) = match tokio::time::timeout(BODY, reader.read_body(stream, len)).await {
        Ok(Ok(read)) => read,
        Ok(Err(BodyError::Refused { reason, message })) => {
            reader.count_refusal(reason);
            return Next::Refuse(message);
        }
        Ok(Err(BodyError::Closed(_))) | Err(_) => return Next::Close,
    };
    let decoded = protocol::decode::<M>(&body);
    // The body is not needed once decoded; the ticket stays with the
    // request.
    drop(body);
    match decoded {
        Ok(message) => Next::Request(message, ticket),
        Err(err) => {
            reader.count_refusal("malformed");
            Next::Refuse(err.to_string())
        }
    }
}

/// Serves the user API on `listener` until shutdown.
pub async fn serve_user(
    listener: TcpListener,
    tee: Arc<dyn TeeProvider>,
    handle: Handle,
    admission: Arc<Admission>,
    shutdown: Shutdown,
    collateral: Option<Arc<dyn CollateralSource>>,
) -> anyhow::Result<()> {
    let acceptor = Acceptor::new(
        tee,
        Identity::ephemeral()?,
        ClientAuth::KeyOptional,
        Timeouts::default(),
    )?;
    // The coordinator's own collateral comes through its shim, to travel
    // with its evidence to the CLI.
    let acceptor = Arc::new(match collateral {
        Some(source) => acceptor.with_collateral(source),
        None => acceptor,
    });
    let conn_shutdown = shutdown.clone();
    let readers = Arc::clone(&admission);
    let lines = Arc::new(LineLimiter::new(REFUSAL_LOG_EVERY));
    let serve = move |stream, peer: SocketAddr| -> Option<Connection> {
        let acceptor = Arc::clone(&acceptor);
        let handle = handle.clone();
        let shutdown = conn_shutdown.clone();
        let reader = readers.reader(Api::User);
        let lines = Arc::clone(&lines);
        Some(Box::pin(async move {
            let served = user_connection(&acceptor, stream, &handle, &reader, shutdown).await;
            if let Err(why) = served
                && let Some(line) = lines.admit(Instant::now(), &format!("user API: {peer}: {why}"))
            {
                tracing::info!("{line}");
            }
        }))
    };
    accept_loop(listener, shutdown, Api::User, &admission, serve).await;
    Ok(())
}

async fn user_connection(
    acceptor: &Acceptor,
    stream: TcpStream,
    handle: &Handle,
    reader: &RequestReader,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    let attested = acceptor
        .accept(stream)
        .await
        .map_err(|e| format!("attested TLS: {e}"))?;
    let (mut tls, _peer) = attested.into_parts();
    hello(&mut tls, Api::User).await?;
    // Made on the first GetRecoveryState: the key owners seal their shares
    // to, and this session's exporter value they are bound to.
    let mut recovery: Option<(RecoveryKey, [u8; 32])> = None;
    loop {
        // `_body` holds the request's bytes in the budget until the reply
        // is written (the end of this iteration).
        let (request, _body) =
            match next_request::<UserRequest, _>(&mut tls, reader, &mut shutdown).await {
                Next::Request(request, body) => (request, body),
                Next::Close => break,
                Next::Refuse(why) => {
                    // The request is unknown: a `UserError` has the bytes
                    // of the `Error` of every user reply type.
                    let reply = UserError::Error(ErrorReply::protocol(why.clone()));
                    let _ = wire::write_message(&mut tls, &reply, MAX_USER_FRAME, WRITE).await;
                    let _ = tokio::time::timeout(WRITE, tls.shutdown()).await;
                    return Err(format!("refused a frame: {why}"));
                }
            };
        if matches!(request, UserRequest::GetRecoveryState(_)) && recovery.is_none() {
            recovery = Some(recovery_session(&tls)?);
        }
        let session = recovery.as_ref().map(|(key, session)| RecoverySession {
            key,
            session: *session,
        });
        let recovery_key = recovery.as_ref().map(|(key, _)| key.public());
        // The reply is encoded by the function for this request's own
        // reply type.
        let written = match request {
            UserRequest::SetManifest(_) => {
                let result = user_call(handle, request, session.as_ref()).await;
                write_user_reply(&mut tls, &protocol::set_manifest_reply(result)).await
            }
            UserRequest::GetManifests(_) => {
                let result = user_call(handle, request, session.as_ref()).await;
                write_user_reply(&mut tls, &protocol::get_manifests_reply(result)).await
            }
            UserRequest::Recover(_) => {
                let result = user_call(handle, request, session.as_ref()).await;
                write_user_reply(&mut tls, &protocol::recover_reply(result)).await
            }
            UserRequest::GetRecoveryState(_) => {
                let result = user_call(handle, request, session.as_ref()).await;
                let reply = protocol::get_recovery_state_reply(result, recovery_key.as_ref());
                write_user_reply(&mut tls, &reply).await
            }
        };
        written?;
    }
    let _ = tokio::time::timeout(WRITE, tls.shutdown()).await;
    Ok(())
}

/// The state machine's result for a user `request`. `Recover` is opened
/// with this session's key (`session`): it proves which seed-share owner
/// key sent the share, for which target.
async fn user_call(
    handle: &Handle,
    request: UserRequest,
    session: Option<&RecoverySession<'_>>,
) -> Result<accord_core::coordinator::Response, accord_core::coordinator::ApiError> {
    let request = request.into_request(session)?;
    let id = new_request_id();
    handle
        .call(id, request)
        .instrument(tracing::debug_span!("request", id))
        .await
}

/// Writes a user-API reply; one that cannot be sent (too large) is
/// replaced by a `Protocol` error, which every reply type encodes alike.
async fn write_user_reply<R: Message>(
    tls: &mut tokio_rustls::TlsStream<TcpStream>,
    reply: &R,
) -> Result<(), String> {
    match wire::write_message(tls, reply, MAX_USER_FRAME, WRITE).await {
        Ok(()) => Ok(()),
        Err(WireError::Protocol(err)) => {
            let reply = UserError::Error(ErrorReply::protocol(format!(
                "the reply cannot be sent: {err}"
            )));
            wire::write_message(tls, &reply, MAX_USER_FRAME, WRITE)
                .await
                .map_err(|e| format!("writing a reply: {e}"))
        }
        Err(err) => Err(format!("writing a reply: {err}")),
    }
}

/// A fresh recovery key for this connection and its exporter value under
/// [`protocol::RECOVERY_EXPORTER_LABEL`].
fn recovery_session(
    tls: &tokio_rustls::TlsStream<TcpStream>,
) -> Result<(RecoveryKey, [u8; 32]), String> {
    let key = RecoveryKey::generate(&super::OsRandom)
        .map_err(|e| format!("making a recovery key: {e}"))?;
    let session = crate::atls::export_32(tls, protocol::RECOVERY_EXPORTER_LABEL)
        .map_err(|e| e.to_string())?;
    Ok((key, session))
}

/// Serves the mesh API on `listener` until shutdown.
pub async fn serve_mesh(
    listener: TcpListener,
    tee: Arc<dyn TeeProvider>,
    handle: Handle,
    mesh: watch::Receiver<MeshState>,
    admission: Arc<Admission>,
    shutdown: Shutdown,
    collateral: Option<Arc<dyn CollateralSource>>,
) -> anyhow::Result<()> {
    // For refusals while not Ready: a plain TLS handshake (no evidence),
    // then an attested-TLS `Refused` frame the client reports verbatim.
    let refusal_identity = Identity::ephemeral()?;
    let refusal =
        tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(&refusal_identity, false)?));
    let mut current: Option<(u64, Arc<Acceptor>)> = None;
    let conn_shutdown = shutdown.clone();
    let readers = Arc::clone(&admission);
    let lines = Arc::new(LineLimiter::new(REFUSAL_LOG_EVERY));
    let serve = move |stream, peer: SocketAddr| -> Option<Connection> {
        let state = mesh.borrow().clone();
        match state {
            MeshState::NotReady(reason) => {
                let refusal = refusal.clone();
                Some(Box::pin(async move {
                    refuse(&refusal, stream, &reason).await;
                }))
            }
            MeshState::Ready {
                generation,
                reference,
            } => {
                let acceptor = match &current {
                    Some((g, acceptor)) if *g == generation => Arc::clone(acceptor),
                    _ => match mesh_acceptor(&tee, &reference, collateral.as_ref()) {
                        Ok(acceptor) => {
                            current = Some((generation, Arc::clone(&acceptor)));
                            acceptor
                        }
                        Err(err) => {
                            tracing::error!("mesh API: cannot build the acceptor: {err}");
                            return None;
                        }
                    },
                };
                let handle = handle.clone();
                let shutdown = conn_shutdown.clone();
                let reader = readers.reader(Api::Mesh);
                let lines = Arc::clone(&lines);
                Some(Box::pin(async move {
                    let served =
                        mesh_connection(&acceptor, generation, stream, &handle, &reader, shutdown)
                            .await;
                    if let Err(why) = served
                        && let Some(line) =
                            lines.admit(Instant::now(), &format!("mesh API: {peer}: {why}"))
                    {
                        tracing::info!("{line}");
                    }
                }))
            }
        }
    };
    accept_loop(listener, shutdown, Api::Mesh, &admission, serve).await;
    Ok(())
}

/// The mesh API's acceptor for one generation: workloads (and peers) are
/// verified against `reference` by the process-wide verifier, with the
/// collateral it needs fetched through `collateral` (the shim's).
fn mesh_acceptor(
    tee: &Arc<dyn TeeProvider>,
    reference: &accord_core::evidence::ReferenceValues,
    collateral: Option<&Arc<dyn CollateralSource>>,
) -> anyhow::Result<Arc<Acceptor>> {
    let acceptor = Acceptor::new(
        Arc::clone(tee),
        Identity::ephemeral()?,
        ClientAuth::Attested(PeerPolicy {
            reference: reference.clone(),
            expected_policy_hashes: None,
            at: Clock::System,
        }),
        Timeouts::default(),
    )?;
    Ok(Arc::new(match collateral {
        Some(source) => acceptor.with_collateral(Arc::clone(source)),
        None => acceptor,
    }))
}

async fn refuse(acceptor: &tokio_rustls::TlsAcceptor, stream: TcpStream, reason: &str) {
    let limits = Timeouts::default();
    let _ = tokio::time::timeout(limits.handshake, async {
        if let Ok(mut tls) = acceptor.accept(stream).await {
            let reason = format!("the coordinator is not ready: {reason}");
            let _ = write_frame(&mut tls, &Frame::refused(&reason)).await;
            let _ = tls.shutdown().await;
        }
    })
    .await;
}

async fn mesh_connection(
    acceptor: &Acceptor,
    generation: u64,
    stream: TcpStream,
    handle: &Handle,
    reader: &RequestReader,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    let attested = match acceptor.accept(stream).await {
        Ok(attested) => attested,
        Err(err) => {
            handle.metrics().attestation_failure(err.reason());
            return Err(format!("attested TLS: {err}"));
        }
    };
    let (mut tls, peer) = attested.into_parts();
    let VerifiedPeer::Attested { claims, spki } = peer else {
        return Err("the workload is not attested".into());
    };
    hello(&mut tls, Api::Mesh).await?;
    loop {
        // `_body` holds the request's bytes in the budget until the reply
        // is written.
        let (request, _body) =
            match next_request::<MeshRequest, _>(&mut tls, reader, &mut shutdown).await {
                Next::Request(request, body) => (request, body),
                Next::Close => break,
                Next::Refuse(why) => {
                    // The request is unknown: an `Error` has the same bytes
                    // in every mesh reply type.
                    let reply = NewMeshCertReply::Error(ErrorReply::protocol(why.clone()));
                    let _ = wire::write_message(&mut tls, &reply, MAX_MESH_FRAME, WRITE).await;
                    let _ = tokio::time::timeout(WRITE, tls.shutdown()).await;
                    return Err(format!("refused a frame: {why}"));
                }
            };
        let id = new_request_id();
        let result = handle
            .call(
                id,
                request.into_request(generation, (*claims).clone(), spki.clone()),
            )
            .instrument(tracing::debug_span!("request", id))
            .await;
        let written = match request {
            MeshRequest::NewMeshCert => {
                let reply = protocol::new_mesh_cert_reply(result);
                wire::write_message(&mut tls, &reply, MAX_MESH_FRAME, WRITE).await
            }
            MeshRequest::PeerRecover => {
                let reply: PeerRecoverReply = protocol::peer_recover_reply(result);
                wire::write_message(&mut tls, &reply, MAX_MESH_FRAME, WRITE).await
            }
        };
        written.map_err(|e| format!("writing a reply: {e}"))?;
    }
    let _ = tokio::time::timeout(WRITE, tls.shutdown()).await;
    Ok(())
}
