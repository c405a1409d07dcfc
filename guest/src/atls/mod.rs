//! Session-bound attested TLS: TLS 1.3 with RFC 7250 raw public keys,
//! followed by an evidence exchange that binds each attested side's
//! hardware evidence to this very session and to its TLS key.
//!
//! # Protocol
//!
//! 1. TLS 1.3 handshake (rustls, aws-lc-rs), ALPN `accord-atls/2` (the
//!    evidence exchange's version, [`PROTOCOL_VERSION`]; a peer that
//!    negotiates version 1's `accord-atls/1` is refused by version). Both
//!    sides present a raw public key (an SPKI, no certificate) and accept
//!    any key that signed the handshake ([`tls`]); the server asks for the
//!    client's key (required when the client must be attested or present
//!    a key).
//! 2. Server → client: `Evidence { version, evidence }` whose report data is
//!    `SHA-512("accord attested TLS v1" ‖ "server" ‖ exporter ‖
//!    SHA-256(server SPKI))` ([`binding`]); the exporter is 32 bytes of
//!    `EXPORTER-accord-attested-tls`.
//! 3. The client verifies it (core verifier, caller's reference values and
//!    policy hashes, report data recomputed from its own view of the
//!    session), then sends `Evidence` with role `client` (mutual mode) or
//!    `NoEvidence` (the client is not attested) — or `Refused { reason }`
//!    and closes.
//! 4. The server checks the client likewise and answers `Verified` or
//!    `Refused { reason }`.
//!
//! Frames are postcard [`frame::Frame`]s in the protocol's framing (a u32
//! big-endian length, then the body; `accord_core::protocol`, read and
//! written by [`crate::wire`]), at most [`frame::MAX_FRAME`] bytes
//! ([`frame::MAX_FRAME_WITHOUT_EVIDENCE`] from a client of a server that
//! takes no client evidence); a frame's buffer grows with the bytes that
//! arrive. Nothing is read from or written to the application stream
//! before both directions are settled: [`accept`] and [`connect`] return
//! an [`AttestedStream`] only afterwards. The TLS handshake and the
//! evidence exchange each have a timeout
//! ([`Timeouts`]).
//!
//! Callers should turn Nagle's algorithm off on TCP streams
//! (`TcpStream::set_nodelay(true)`): with it on, the last segment of the
//! evidence frame waits for the peer's delayed ACK, about 40 ms per
//! connection on Linux.
//!
//! # Modes
//!
//! The server is always attested. The client is attested ([`ClientAuth::Attested`],
//! the mesh API and peer recovery), presents only a key
//! ([`ClientAuth::KeyRequired`], e.g. a CLI owner key), or may present a
//! key ([`ClientAuth::KeyOptional`], the user API).

pub mod binding;
pub mod collateral;
mod error;
pub mod frame;
pub mod tls;

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use accord_core::crypto::default_provider;
use accord_core::evidence::{Claims, Evidence, ReferenceValues, ServiceVerifier};
use accord_core::hex;
use accord_core::time::UnixTime;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsStream;

use crate::tee::TeeProvider;

pub use binding::Role;
pub use collateral::CollateralSource;
pub use error::AtlsError;
pub use frame::{MAX_FRAME, PROTOCOL_VERSION};
pub use tls::Identity;

use binding::{EXPORTER_LABEL, EXPORTER_LEN, report_data};
use frame::{Frame, MAX_FRAME_WITHOUT_EVIDENCE, read_frame, read_frame_limited, write_frame};

/// Where the verification instant comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system clock, read when the evidence is verified.
    System,
    /// A fixed instant (tests, replay of a past decision).
    Fixed(UnixTime),
}

impl Clock {
    /// The instant to verify at.
    pub fn now(self) -> UnixTime {
        match self {
            Self::System => system_now(),
            Self::Fixed(at) => at,
        }
    }
}

/// The system clock as a [`UnixTime`] (0 if the clock is before 1970).
pub fn system_now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// What the peer's evidence must satisfy.
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    /// Reference values (from the manifest) the evidence must match.
    pub reference: ReferenceValues,
    /// If set, the evidence's policy hash (SNP HOST_DATA, TDX MRCONFIGID)
    /// must be one of these (e.g. the coordinator's pinned policy hash).
    pub expected_policy_hashes: Option<Vec<[u8; 32]>>,
    /// The verification instant.
    pub at: Clock,
}

/// Who the peer turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifiedPeer {
    /// Its evidence verified and is bound to this session and `spki`.
    Attested {
        /// The authenticated claims.
        claims: Box<Claims>,
        /// The SubjectPublicKeyInfo (DER) of its TLS key.
        spki: Vec<u8>,
    },
    /// Not attested; it holds the private key of `spki` (that key signed
    /// the handshake).
    Key {
        /// The SubjectPublicKeyInfo (DER) of its TLS key.
        spki: Vec<u8>,
    },
    /// Not attested and presented no key.
    Anonymous,
}

impl VerifiedPeer {
    /// The claims, if the peer is attested.
    pub fn claims(&self) -> Option<&Claims> {
        match self {
            Self::Attested { claims, .. } => Some(claims),
            _ => None,
        }
    }

    /// The peer's TLS key, if it presented one.
    pub fn spki(&self) -> Option<&[u8]> {
        match self {
            Self::Attested { spki, .. } | Self::Key { spki } => Some(spki),
            Self::Anonymous => None,
        }
    }
}

/// What the server demands of clients.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// Mutual attestation: the client's evidence must satisfy the policy.
    Attested(PeerPolicy),
    /// The client is not attested but must present a key.
    KeyRequired,
    /// The client is not attested and may present a key.
    KeyOptional,
}

/// Limits for the two phases of connection set-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// The TLS handshake.
    pub handshake: Duration,
    /// The evidence exchange, including producing and verifying evidence.
    pub evidence: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            evidence: Duration::from_secs(30),
        }
    }
}

/// How long a refusal may take to be written before the connection is
/// dropped anyway.
const REFUSAL_WRITE_LIMIT: Duration = Duration::from_secs(1);

/// The server end: its TEE, its key, what it wants of clients.
pub struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
    identity: Identity,
    tee: Arc<dyn TeeProvider>,
    client: Arc<ClientAuth>,
    timeouts: Timeouts,
    collateral: Option<Arc<dyn CollateralSource>>,
}

impl Acceptor {
    /// Fetches the collateral the verifier needs for clients' evidence,
    /// and what this side's own evidence lacks, through `source` (see
    /// [`collateral`]).
    pub fn with_collateral(mut self, source: Arc<dyn CollateralSource>) -> Self {
        self.collateral = Some(source);
        self
    }

    /// A server that attests with `tee`, presents `identity` and treats
    /// clients as `client` says.
    pub fn new(
        tee: Arc<dyn TeeProvider>,
        identity: Identity,
        client: ClientAuth,
        timeouts: Timeouts,
    ) -> Result<Self, AtlsError> {
        let key_required = !matches!(client, ClientAuth::KeyOptional);
        let config = tls::server_config(&identity, key_required)?;
        Ok(Self {
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            identity,
            tee,
            client: Arc::new(client),
            timeouts,
            collateral: None,
        })
    }

    /// Runs the TLS handshake and the evidence exchange on `stream`.
    pub async fn accept<S>(&self, stream: S) -> Result<AttestedStream<S>, AtlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut tls = tokio::time::timeout(self.timeouts.handshake, self.tls.accept(stream))
            .await
            .map_err(|_| timeout("TLS handshake", self.timeouts.handshake))?
            .map_err(AtlsError::Handshake)?;
        let exchange = self.server_exchange(&mut tls);
        let result = tokio::time::timeout(self.timeouts.evidence, exchange)
            .await
            .map_err(|_| timeout("evidence exchange", self.timeouts.evidence))
            .and_then(|inner| inner);
        finish(TlsStream::from(tls), result).await
    }

    async fn server_exchange<S>(
        &self,
        tls: &mut tokio_rustls::server::TlsStream<S>,
    ) -> Result<VerifiedPeer, AtlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (_, conn) = tls.get_ref();
        if conn.alpn_protocol() == Some(tls::ALPN_V1) {
            return Err(AtlsError::Protocol(old_peer("client")));
        }
        if conn.alpn_protocol() != Some(tls::ALPN) {
            return Err(AtlsError::Protocol(format!(
                "the client did not negotiate ALPN {}; it is not an accord attested-TLS client",
                String::from_utf8_lossy(tls::ALPN)
            )));
        }
        let exporter = exporter(conn, EXPORTER_LABEL)?;
        let peer_spki = tls::peer_spki(conn);

        let own = produce_evidence(
            &self.tee,
            Role::Server,
            &exporter,
            self.identity.spki(),
            self.collateral.as_deref(),
        )
        .await?;
        write_frame(
            tls,
            &Frame::Evidence {
                version: PROTOCOL_VERSION,
                evidence: own,
            },
        )
        .await?;

        // A client that may not send evidence has no use for a large frame.
        let max = match &*self.client {
            ClientAuth::Attested(_) => MAX_FRAME,
            ClientAuth::KeyRequired | ClientAuth::KeyOptional => MAX_FRAME_WITHOUT_EVIDENCE,
        };
        let peer = match read_frame_limited(tls, max).await? {
            Frame::Refused { reason } => return Err(AtlsError::PeerRefused(reason)),
            Frame::Verified => {
                return Err(AtlsError::Protocol(
                    "the client sent Verified instead of Evidence or NoEvidence".to_string(),
                ));
            }
            Frame::Evidence { version, evidence } => {
                check_version(version)?;
                let ClientAuth::Attested(policy) = &*self.client else {
                    return Err(AtlsError::Protocol(
                        "the client sent evidence but this endpoint takes none".to_string(),
                    ));
                };
                let spki = peer_spki.ok_or(AtlsError::KeyRequired)?;
                verify_peer(
                    policy.clone(),
                    evidence,
                    Role::Client,
                    exporter,
                    spki,
                    self.identity.spki().to_vec(),
                    self.collateral.as_deref(),
                    None,
                )
                .await?
            }
            Frame::NoEvidence { version } => {
                check_version(version)?;
                match (&*self.client, peer_spki) {
                    (ClientAuth::Attested(_), _) => return Err(AtlsError::EvidenceRequired),
                    (_, Some(spki)) => VerifiedPeer::Key { spki },
                    (ClientAuth::KeyRequired, None) => return Err(AtlsError::KeyRequired),
                    (ClientAuth::KeyOptional, None) => VerifiedPeer::Anonymous,
                }
            }
        };
        write_frame(tls, &Frame::Verified).await?;
        Ok(peer)
    }
}

/// The client end: what it demands of the server, and how (if at all) it
/// proves itself.
pub struct Connector {
    tls: tokio_rustls::TlsConnector,
    identity: Option<Identity>,
    tee: Option<Arc<dyn TeeProvider>>,
    /// What the server's evidence must satisfy.
    server: Arc<PeerPolicy>,
    timeouts: Timeouts,
    collateral: Option<Arc<dyn CollateralSource>>,
    verifier: Option<Arc<Mutex<ServiceVerifier>>>,
}

impl Connector {
    /// Fetches the collateral the verifier needs for the server's
    /// evidence, and what this side's own evidence lacks, through `source`
    /// (see [`collateral`]).
    pub fn with_collateral(mut self, source: Arc<dyn CollateralSource>) -> Self {
        self.collateral = Some(source);
        self
    }

    /// Verifies the server's evidence with `verifier` (its collateral and
    /// freshness marks) instead of the process-wide
    /// [`collateral::VERIFIER`]: for a process that acts for several
    /// parties (the CLI's workspaces in the demo and the tests), each
    /// with its own marks.
    pub fn with_verifier(mut self, verifier: Arc<Mutex<ServiceVerifier>>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// A client that verifies the server against `server`, attests with
    /// `tee` if given (mutual mode) and presents `identity` if given (an
    /// ephemeral one is made when `tee` is given without an identity).
    pub fn new(
        server: PeerPolicy,
        tee: Option<Arc<dyn TeeProvider>>,
        identity: Option<Identity>,
        timeouts: Timeouts,
    ) -> Result<Self, AtlsError> {
        let identity = match (identity, &tee) {
            (Some(identity), _) => Some(identity),
            (None, Some(_)) => Some(Identity::ephemeral()?),
            (None, None) => None,
        };
        let config = tls::client_config(identity.as_ref())?;
        Ok(Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            identity,
            tee,
            server: Arc::new(server),
            timeouts,
            collateral: None,
            verifier: None,
        })
    }

    /// Runs the TLS handshake and the evidence exchange on `stream`.
    pub async fn connect<S>(&self, stream: S) -> Result<AttestedStream<S>, AtlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let handshake = self.tls.connect(tls::server_name(), stream);
        let mut tls = tokio::time::timeout(self.timeouts.handshake, handshake)
            .await
            .map_err(|_| timeout("TLS handshake", self.timeouts.handshake))?
            .map_err(AtlsError::Handshake)?;
        let exchange = self.client_exchange(&mut tls);
        let result = tokio::time::timeout(self.timeouts.evidence, exchange)
            .await
            .map_err(|_| timeout("evidence exchange", self.timeouts.evidence))
            .and_then(|inner| inner);
        finish(TlsStream::from(tls), result).await
    }

    async fn client_exchange<S>(
        &self,
        tls: &mut tokio_rustls::client::TlsStream<S>,
    ) -> Result<VerifiedPeer, AtlsError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let (_, conn) = tls.get_ref();
        if conn.alpn_protocol() == Some(tls::ALPN_V1) {
            // Refused (and told so: a server of an earlier release reads
            // the refusal where it waits for this side's frame).
            return Err(AtlsError::Protocol(old_peer("server")));
        }
        if conn.alpn_protocol() != Some(tls::ALPN) {
            return Err(AtlsError::Protocol(format!(
                "the server did not negotiate ALPN {}",
                String::from_utf8_lossy(tls::ALPN)
            )));
        }
        let exporter = exporter(conn, EXPORTER_LABEL)?;
        let server_spki = tls::peer_spki(conn)
            .ok_or_else(|| AtlsError::Protocol("the server presented no key".to_string()))?;
        let own_spki = self.identity.as_ref().map(|id| id.spki().to_vec());

        let evidence = match read_frame(tls).await? {
            Frame::Evidence { version, evidence } => {
                check_version(version)?;
                evidence
            }
            Frame::Refused { reason } => return Err(AtlsError::PeerRefused(reason)),
            Frame::NoEvidence { .. } => return Err(AtlsError::EvidenceRequired),
            other => {
                return Err(AtlsError::Protocol(format!(
                    "the server sent {} instead of Evidence",
                    other.name()
                )));
            }
        };
        let server = verify_peer(
            (*self.server).clone(),
            evidence,
            Role::Server,
            exporter,
            server_spki,
            own_spki.clone().unwrap_or_default(),
            self.collateral.as_deref(),
            self.verifier.clone(),
        )
        .await?;

        let reply = match (&self.tee, &own_spki) {
            (Some(tee), Some(spki)) => Frame::Evidence {
                version: PROTOCOL_VERSION,
                evidence: produce_evidence(
                    tee,
                    Role::Client,
                    &exporter,
                    spki,
                    self.collateral.as_deref(),
                )
                .await?,
            },
            _ => Frame::NoEvidence {
                version: PROTOCOL_VERSION,
            },
        };
        write_frame(tls, &reply).await?;
        match read_frame(tls).await? {
            Frame::Verified => Ok(server),
            Frame::Refused { reason } => Err(AtlsError::PeerRefused(reason)),
            other => Err(AtlsError::Protocol(format!(
                "the server sent {} instead of Verified",
                other.name()
            ))),
        }
    }
}

/// Convenience: [`Acceptor::accept`].
pub async fn accept<S>(stream: S, acceptor: &Acceptor) -> Result<AttestedStream<S>, AtlsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    acceptor.accept(stream).await
}

/// Convenience: [`Connector::connect`].
pub async fn connect<S>(stream: S, connector: &Connector) -> Result<AttestedStream<S>, AtlsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    connector.connect(stream).await
}

fn timeout(stage: &'static str, limit: Duration) -> AtlsError {
    AtlsError::Timeout {
        stage,
        limit_ms: limit.as_millis(),
    }
}

/// Why a `peer` of version 1 (ALPN `accord-atls/1`) is refused.
fn old_peer(peer: &str) -> String {
    format!(
        "the {peer} speaks attested-TLS protocol version 1 (ALPN {}), this endpoint version \
         {PROTOCOL_VERSION} (ALPN {}): SEV-SNP evidence frames changed (they carry the CRL); \
         upgrade the {peer}",
        String::from_utf8_lossy(tls::ALPN_V1),
        String::from_utf8_lossy(tls::ALPN)
    )
}

fn check_version(version: u16) -> Result<(), AtlsError> {
    if version == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(AtlsError::Protocol(format!(
            "the peer speaks attested-TLS protocol version {version}, this endpoint {PROTOCOL_VERSION}"
        )))
    }
}

/// The session's exporter value under `label` (`EXPORTER_LEN` bytes, no
/// context): [`EXPORTER_LABEL`] for the evidence binding.
fn exporter<C>(conn: &C, label: &[u8]) -> Result<[u8; EXPORTER_LEN], AtlsError>
where
    C: std::ops::Deref,
    C::Target: Exporter,
{
    conn.export([0u8; EXPORTER_LEN], label)
        .map_err(|err| AtlsError::Protocol(format!("TLS exporter: {err}")))
}

/// A 32-byte TLS exporter value (RFC 8446 §7.5, no context) of an
/// established session, for bindings of application protocols (e.g. the
/// recovery submissions of the user API).
pub fn export_32<S>(tls: &TlsStream<S>, label: &[u8]) -> Result<[u8; EXPORTER_LEN], AtlsError> {
    match tls {
        TlsStream::Client(s) => exporter(s.get_ref().1, label),
        TlsStream::Server(s) => exporter(s.get_ref().1, label),
    }
}

trait Exporter {
    fn export(
        &self,
        out: [u8; EXPORTER_LEN],
        label: &[u8],
    ) -> Result<[u8; EXPORTER_LEN], rustls::Error>;
}

impl<D> Exporter for rustls::ConnectionCommon<D> {
    fn export(
        &self,
        out: [u8; EXPORTER_LEN],
        label: &[u8],
    ) -> Result<[u8; EXPORTER_LEN], rustls::Error> {
        self.export_keying_material(out, label, None)
    }
}

/// Calls the blocking TEE on the blocking pool, and attaches the
/// collateral the process's verifier holds for it, fetched through
/// `source` when the platform attached none ([`collateral::refresh_own`]).
async fn produce_evidence(
    tee: &Arc<dyn TeeProvider>,
    role: Role,
    exporter: &[u8; EXPORTER_LEN],
    own_spki: &[u8],
    source: Option<&dyn CollateralSource>,
) -> Result<Evidence, AtlsError> {
    let data = report_data(default_provider(), role, exporter, own_spki);
    let tee = Arc::clone(tee);
    let mut evidence = tokio::task::spawn_blocking(move || tee.evidence(&data))
        .await
        .map_err(|err| AtlsError::Config(format!("evidence task failed: {err}")))?
        .map_err(AtlsError::Tee)?;
    collateral::refresh_own(&mut evidence, source).await;
    Ok(evidence)
}

/// Checks the peer's evidence: the collateral the verifier (`verifier`,
/// else the process-wide one) needs is fetched through `source` first
/// ([`collateral::prepare_with`]), then, on the blocking pool (certificate
/// chains cost milliseconds): report data (cheap, names relay and
/// reflection), the verifier, the policy hash.
#[allow(clippy::too_many_arguments)]
async fn verify_peer(
    policy: PeerPolicy,
    evidence: Evidence,
    peer_role: Role,
    exporter: [u8; EXPORTER_LEN],
    peer_spki: Vec<u8>,
    own_spki: Vec<u8>,
    source: Option<&dyn CollateralSource>,
    verifier: Option<Arc<Mutex<ServiceVerifier>>>,
) -> Result<VerifiedPeer, AtlsError> {
    let at = policy.at.now();
    // Evidence not bound to this session is refused before anything is
    // fetched for it.
    check_binding(&evidence, peer_role, &exporter, &peer_spki, &own_spki)?;
    let shared = verifier.as_deref().unwrap_or(&collateral::VERIFIER);
    collateral::prepare_with(
        shared,
        &evidence,
        &policy.reference,
        at,
        source,
        default_provider(),
    )
    .await;
    let policy = PeerPolicy {
        at: Clock::Fixed(at),
        ..policy
    };
    tokio::task::spawn_blocking(move || {
        let shared = verifier.as_deref().unwrap_or(&collateral::VERIFIER);
        verify_peer_blocking(
            shared, &policy, &evidence, peer_role, &exporter, peer_spki, &own_spki,
        )
    })
    .await
    .map_err(|err| AtlsError::Config(format!("verification task failed: {err}")))?
}

fn verify_peer_blocking(
    verifier: &Mutex<ServiceVerifier>,
    policy: &PeerPolicy,
    evidence: &Evidence,
    peer_role: Role,
    exporter: &[u8; EXPORTER_LEN],
    peer_spki: Vec<u8>,
    own_spki: &[u8],
) -> Result<VerifiedPeer, AtlsError> {
    let crypto = default_provider();
    let expected = check_binding(evidence, peer_role, exporter, &peer_spki, own_spki)?;
    let role = peer_role.as_str();
    let claims = verifier
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .verify(evidence, &policy.reference, policy.at.now(), crypto)
        .map_err(AtlsError::Evidence)?;
    if claims.report_data() != expected {
        return Err(AtlsError::NotBound { role });
    }
    if let Some(allowed) = &policy.expected_policy_hashes {
        let actual = claims.policy_hash();
        if !actual.is_some_and(|hash| allowed.contains(&hash)) {
            return Err(AtlsError::PolicyHashNotAllowed {
                actual: actual.map(|hash| hex::encode(&hash)),
            });
        }
    }
    Ok(VerifiedPeer::Attested {
        claims: Box::new(claims),
        spki: peer_spki,
    })
}

/// The report data `evidence` must carry (returned), checked against what
/// it carries: another value is evidence reflected from this side or
/// relayed from another session.
fn check_binding(
    evidence: &Evidence,
    peer_role: Role,
    exporter: &[u8; EXPORTER_LEN],
    peer_spki: &[u8],
    own_spki: &[u8],
) -> Result<[u8; 64], AtlsError> {
    let crypto = default_provider();
    let expected = report_data(crypto, peer_role, exporter, peer_spki);
    let ours = report_data(crypto, peer_role.peer(), exporter, own_spki);
    let role = peer_role.as_str();
    let carried = evidence.report_data().map_err(AtlsError::Evidence)?;
    if carried != expected {
        return Err(if carried == ours {
            AtlsError::Reflected { role }
        } else {
            AtlsError::NotBound { role }
        });
    }
    Ok(expected)
}

/// On success wraps the stream; on failure tells the peer why (unless the
/// peer itself refused or the connection is gone) and closes it.
async fn finish<S>(
    mut tls: TlsStream<S>,
    result: Result<VerifiedPeer, AtlsError>,
) -> Result<AttestedStream<S>, AtlsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match result {
        Ok(peer) => Ok(AttestedStream { inner: tls, peer }),
        Err(err) => {
            let tell_peer = !matches!(
                err,
                AtlsError::PeerRefused(_) | AtlsError::Io { .. } | AtlsError::Handshake(_)
            );
            let _ = tokio::time::timeout(REFUSAL_WRITE_LIMIT, async {
                if tell_peer {
                    let _ = write_frame(&mut tls, &Frame::refused(&err.to_string())).await;
                }
                let _ = tls.shutdown().await;
            })
            .await;
            Err(err)
        }
    }
}

/// A TLS stream whose peer has been verified; application data flows
/// through its `AsyncRead` / `AsyncWrite`.
pub struct AttestedStream<S> {
    inner: TlsStream<S>,
    /// Who the peer is.
    pub peer: VerifiedPeer,
}

impl<S> AttestedStream<S> {
    /// The TLS stream underneath.
    pub fn get_ref(&self) -> &TlsStream<S> {
        &self.inner
    }

    /// The TLS stream and the peer.
    pub fn into_parts(self) -> (TlsStream<S>, VerifiedPeer) {
        (self.inner, self.peer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for AttestedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for AttestedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
