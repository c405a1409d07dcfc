//! Why an attested-TLS connection was not established.
//!
//! Every variant says which step failed; the `Display` text of the variants
//! that refuse the peer is also what the peer receives in its `Refused`
//! frame, so both ends can log the same reason.

use std::fmt;

use accord_core::evidence::EvidenceError;

use crate::tee::TeeError;

/// Why [`accept`](super::Acceptor::accept) or
/// [`connect`](super::Connector::connect) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum AtlsError {
    /// Building the TLS configuration or the key failed.
    Config(String),
    /// The TLS handshake failed (including a peer that does not speak TLS
    /// 1.3 with raw public keys, or whose key did not sign the handshake).
    Handshake(std::io::Error),
    /// Reading or writing a frame on the TLS stream failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A step took longer than its timeout.
    Timeout {
        /// `"TLS handshake"` or `"evidence exchange"`.
        stage: &'static str,
        /// The limit, in milliseconds.
        limit_ms: u128,
    },
    /// The peer broke the framing protocol (oversized or malformed frame,
    /// a frame out of order, application data before evidence, another
    /// protocol version, no `accord-atls` ALPN).
    Protocol(String),
    /// Our own TEE could not produce evidence.
    Tee(TeeError),
    /// The peer's evidence failed verification by the core verifier.
    Evidence(EvidenceError),
    /// The peer's evidence does not carry the report data of this session
    /// and this peer's key: it was made for another TLS session (relayed)
    /// or for another key.
    NotBound {
        /// The role the evidence was expected for (`server` or `client`).
        role: &'static str,
    },
    /// The peer sent back evidence made for our own role and key
    /// (reflected).
    Reflected {
        /// The role the evidence was expected for.
        role: &'static str,
    },
    /// The evidence verified, but its policy hash is not one the caller
    /// accepts (or the evidence carries none).
    PolicyHashNotAllowed {
        /// The hash the evidence carries, hex; `None` if it carries none.
        actual: Option<String>,
    },
    /// The peer had to be attested but sent no evidence.
    EvidenceRequired,
    /// The client had to present a key but presented none.
    KeyRequired,
    /// The peer refused us; its reason.
    PeerRefused(String),
}

impl AtlsError {
    /// A short label for metrics (`accord_attestation_failures_total`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Handshake(_) => "handshake",
            Self::Io { .. } => "io",
            Self::Timeout { .. } => "timeout",
            Self::Protocol(_) => "protocol",
            Self::Tee(_) => "own_evidence",
            Self::Evidence(_) => "evidence",
            Self::NotBound { .. } => "not_bound",
            Self::Reflected { .. } => "reflected",
            Self::PolicyHashNotAllowed { .. } => "policy_hash",
            Self::EvidenceRequired => "no_evidence",
            Self::KeyRequired => "no_key",
            Self::PeerRefused(_) => "refused",
        }
    }
}

impl fmt::Display for AtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(reason) => write!(f, "attested TLS configuration: {reason}"),
            Self::Handshake(err) => write!(f, "TLS handshake failed: {err}"),
            Self::Io { action, source } => write!(f, "{action}: {source}"),
            Self::Timeout { stage, limit_ms } => {
                write!(f, "{stage} did not finish within {limit_ms} ms")
            }
            Self::Protocol(reason) => write!(f, "attested TLS protocol violation: {reason}"),
            Self::Tee(err) => write!(f, "could not produce own evidence: {err}"),
            Self::Evidence(err) => write!(f, "peer evidence refused: {err}"),
            Self::NotBound { role } => write!(
                f,
                "peer evidence refused: its report data does not bind this TLS session and the {role}'s key (relayed from another session?)"
            ),
            Self::Reflected { role } => write!(
                f,
                "peer evidence refused: it is our own evidence sent back (reflected), not {role} evidence"
            ),
            Self::PolicyHashNotAllowed { actual: Some(hash) } => {
                write!(
                    f,
                    "peer evidence refused: policy hash {hash} is not allowed"
                )
            }
            Self::PolicyHashNotAllowed { actual: None } => {
                write!(f, "peer evidence refused: it carries no policy hash")
            }
            Self::EvidenceRequired => {
                write!(f, "the peer must be attested but sent no evidence")
            }
            Self::KeyRequired => write!(f, "the client must present a key but presented none"),
            Self::PeerRefused(reason) => write!(f, "the peer refused the connection: {reason}"),
        }
    }
}

impl std::error::Error for AtlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handshake(err) => Some(err),
            Self::Io { source, .. } => Some(source),
            Self::Tee(err) => Some(err),
            Self::Evidence(err) => Some(err),
            _ => None,
        }
    }
}
