//! Clients of the coordinator's APIs.
//!
//! - [`UserClient`]: the user API. The coordinator's evidence is verified
//!   against the caller's [`PeerPolicy`]; the client presents no
//!   certificate.
//! - [`MeshClient`]: the mesh API, mutually attested: the workload proves
//!   itself with its TEE and key, and verifies the coordinator's evidence
//!   against the caller's [`PeerPolicy`] (the coordinator policies and
//!   reference values the workload pins) before any request is sent. The
//!   host routes every connection, so an unverified coordinator could be
//!   anyone. That the coordinator serves the *pinned deployment* is the
//!   initializer's check on the reply ([`crate::initializer`],
//!   `accord_core::pins`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use accord_core::evidence::ServiceVerifier;
use accord_core::protocol::{
    Api, Hello, HelloReply, MAX_MESH_FRAME, MAX_USER_FRAME, MeshRequest, Message, NewMeshCertReply,
    PeerRecoverReply, UserCall, UserReply, UserRequest, VERSION,
};
use anyhow::{Context, bail};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsStream;

use crate::atls::{CollateralSource, Connector, Identity, PeerPolicy, Timeouts, VerifiedPeer};
use crate::tee::TeeProvider;
use crate::wire::{self, ReadLimits};

/// How long a reply may take (SetManifest writes and fsyncs).
const REPLY_WAIT: Duration = Duration::from_secs(120);

/// How long connecting (TCP) may take.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

const WRITE_WAIT: Duration = Duration::from_secs(30);

async fn tcp(addr: &str) -> anyhow::Result<TcpStream> {
    tcp_from(addr, None).await
}

/// Connects to `addr`, from the local address `source` if given (load
/// generators on loopback spread over 127.0.0.0/8 this way, under the
/// coordinator's per-source connection limit).
async fn tcp_from(addr: &str, source: Option<std::net::IpAddr>) -> anyhow::Result<TcpStream> {
    let connect = async {
        let Some(source) = source else {
            return TcpStream::connect(addr).await;
        };
        let target = tokio::net::lookup_host(addr)
            .await?
            .find(|a| a.is_ipv4() == source.is_ipv4())
            .ok_or_else(|| std::io::Error::other("no address of the source's family"))?;
        let socket = if source.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(std::net::SocketAddr::new(source, 0))?;
        socket.connect(target).await
    };
    let stream = tokio::time::timeout(CONNECT_WAIT, connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {addr}: timed out"))?
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn say_hello<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    api: Api,
) -> anyhow::Result<u16> {
    let hello = Hello {
        versions: vec![VERSION],
        api,
    };
    wire::write_message(stream, &hello, 1024, WRITE_WAIT).await?;
    let limits = ReadLimits {
        max: 4096,
        idle: REPLY_WAIT,
        body: REPLY_WAIT,
    };
    match wire::read_message::<HelloReply, _>(stream, limits).await? {
        HelloReply::Accepted { version } => Ok(version),
        HelloReply::Refused { reason } => bail!("the coordinator refused the connection: {reason}"),
    }
}

/// A connection to the user API.
pub struct UserClient {
    stream: TlsStream<TcpStream>,
    /// The coordinator, as verified.
    pub server: VerifiedPeer,
}

impl UserClient {
    /// Connects to `addr`, verifies the coordinator against `policy` and
    /// says `Hello`.
    pub async fn connect(addr: &str, policy: PeerPolicy) -> anyhow::Result<Self> {
        Self::connect_with_collateral(addr, policy, None).await
    }

    /// [`connect`](Self::connect), fetching the collateral the verifier
    /// needs for the coordinator's evidence through `collateral` (a
    /// vendor, a cache: untrusted, see [`crate::atls::collateral`]); with
    /// `None`, only what the evidence carries and the process's verifier
    /// holds are used.
    pub async fn connect_with_collateral(
        addr: &str,
        policy: PeerPolicy,
        collateral: Option<Arc<dyn CollateralSource>>,
    ) -> anyhow::Result<Self> {
        Self::connect_verifying(addr, policy, collateral, None).await
    }

    /// [`connect_with_collateral`](Self::connect_with_collateral), the
    /// coordinator's evidence verified by `verifier` (its collateral and
    /// freshness marks) instead of the process-wide one when given.
    pub async fn connect_verifying(
        addr: &str,
        policy: PeerPolicy,
        collateral: Option<Arc<dyn CollateralSource>>,
        verifier: Option<Arc<Mutex<ServiceVerifier>>>,
    ) -> anyhow::Result<Self> {
        tracing::debug!("connecting to the coordinator's user API at {addr}");
        let mut connector = Connector::new(policy, None, None, Timeouts::default())?;
        if let Some(source) = collateral {
            connector = connector.with_collateral(source);
        }
        if let Some(verifier) = verifier {
            connector = connector.with_verifier(verifier);
        }
        let attested = connector
            .connect(tcp(addr).await?)
            .await
            .with_context(|| format!("attested TLS with the coordinator at {addr}"))?;
        let (mut stream, server) = attested.into_parts();
        tracing::debug!("{addr}: the coordinator's evidence verified; attested TLS established");
        say_hello(&mut stream, Api::User).await?;
        Ok(Self { stream, server })
    }

    /// A 32-byte exporter value of this session under `label` (RFC 8446
    /// §7.5), e.g. `protocol::RECOVERY_EXPORTER_LABEL` for a recovery
    /// submission's binding.
    pub fn exporter(&self, label: &[u8]) -> anyhow::Result<[u8; 32]> {
        Ok(crate::atls::export_32(&self.stream, label)?)
    }

    /// Sends one request and reads its reply, of the request's own reply
    /// type (a variant that cannot answer the request does not decode).
    pub async fn call<C: UserCall>(&mut self, request: C) -> anyhow::Result<C::Reply> {
        let method = C::NAME;
        tracing::debug!("sending {method}");
        let request: UserRequest = request.into();
        wire::write_message(&mut self.stream, &request, MAX_USER_FRAME, WRITE_WAIT).await?;
        let limits = ReadLimits {
            max: MAX_USER_FRAME,
            idle: REPLY_WAIT,
            body: REPLY_WAIT,
        };
        let reply: C::Reply = wire::read_message(&mut self.stream, limits).await?;
        match reply.error() {
            Some(error) => tracing::debug!("{method}: error {:?}: {}", error.code, error.message),
            None => tracing::debug!("{method}: {}", reply.variant()),
        }
        Ok(reply)
    }
}

/// Peer recovery: connects to a peer coordinator's mesh API over mutual
/// attested TLS (this replica attests with `tee`; the peer must satisfy
/// `policy`, the coordinator policies of the history this replica read),
/// asks for the secrets and checks their shape.
pub async fn recover_from_peer(
    addr: &str,
    tee: Arc<dyn TeeProvider>,
    policy: PeerPolicy,
) -> anyhow::Result<accord_core::coordinator::PeerSecrets> {
    let connector = Connector::new(policy, Some(tee), None, Timeouts::default())?;
    let mut client = MeshClient::over(&connector, addr, None, "the peer").await?;
    match client
        .ask::<PeerRecoverReply>(MeshRequest::PeerRecover)
        .await?
    {
        PeerRecoverReply::PeerSecrets(secrets) => secrets
            .into_secrets()
            .map_err(|e| anyhow::anyhow!("the peer's secrets: {e}")),
        PeerRecoverReply::Error(e) => bail!("the peer refused: {}", e.message),
    }
}

/// A connection to the mesh API.
pub struct MeshClient {
    stream: TlsStream<TcpStream>,
}

impl MeshClient {
    /// Connects to `addr`, verifies the coordinator against `coordinator`,
    /// attests with `tee` under `identity` (whose key the certificate will
    /// be issued for) and says `Hello`. A coordinator whose evidence does
    /// not satisfy `coordinator` is refused before our own evidence is
    /// sent; the error chain then holds the [`crate::atls::AtlsError`].
    pub async fn connect(
        addr: &str,
        coordinator: PeerPolicy,
        tee: Arc<dyn TeeProvider>,
        identity: Identity,
    ) -> anyhow::Result<Self> {
        Self::connect_from(addr, None, coordinator, tee, identity).await
    }

    /// [`MeshClient::connect`] from the local address `source`, if given.
    pub async fn connect_from(
        addr: &str,
        source: Option<std::net::IpAddr>,
        coordinator: PeerPolicy,
        tee: Arc<dyn TeeProvider>,
        identity: Identity,
    ) -> anyhow::Result<Self> {
        let connector =
            Connector::new(coordinator, Some(tee), Some(identity), Timeouts::default())?;
        Self::over(&connector, addr, source, "the coordinator").await
    }

    /// Connects to `addr` (from `source`, if given) with `connector`
    /// (`who` names the server in errors) and says `Hello`.
    async fn over(
        connector: &Connector,
        addr: &str,
        source: Option<std::net::IpAddr>,
        who: &str,
    ) -> anyhow::Result<Self> {
        let attested = connector
            .connect(tcp_from(addr, source).await?)
            .await
            .with_context(|| format!("attested TLS with {who} at {addr}"))?;
        let (mut stream, _) = attested.into_parts();
        say_hello(&mut stream, Api::Mesh).await?;
        Ok(Self { stream })
    }

    /// Asks for a certificate for the session's key.
    pub async fn new_mesh_cert(&mut self) -> anyhow::Result<NewMeshCertReply> {
        self.ask(MeshRequest::NewMeshCert).await
    }

    /// Sends one request and reads its reply, of the request's own reply
    /// type `R` (a reply of another type does not decode).
    async fn ask<R: Message>(&mut self, request: MeshRequest) -> anyhow::Result<R> {
        wire::write_message(&mut self.stream, &request, MAX_MESH_FRAME, WRITE_WAIT).await?;
        let limits = ReadLimits {
            max: MAX_MESH_FRAME,
            idle: REPLY_WAIT,
            body: REPLY_WAIT,
        };
        Ok(wire::read_message(&mut self.stream, limits).await?)
    }
}
