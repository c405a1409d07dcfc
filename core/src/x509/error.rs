//! The X.509 error type.

use core::fmt;

use crate::der::DerError;
use crate::time::UnixTime;

/// Why a certificate or CRL was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum X509Error {
    /// The DER structure is malformed.
    Der(DerError),
    /// Only X.509 v3 certificates (and v2 CRLs) are accepted.
    UnsupportedVersion,
    /// A signature or public-key algorithm accord does not accept.
    UnsupportedAlgorithm,
    /// The algorithm inside the signed part differs from the outer one.
    AlgorithmMismatch,
    /// The signature algorithm does not fit the issuer's key type or curve.
    KeyAlgorithmMismatch,
    /// The public key is malformed.
    BadPublicKey,
    /// The signature is malformed or does not verify.
    BadSignature,
    /// The issuer name does not equal the issuing certificate's subject.
    IssuerMismatch,
    /// The issuing certificate is not a CA (basicConstraints).
    IssuerNotCa,
    /// The certificate (or CRL) is not valid yet at the instant.
    NotYetValid {
        /// Start of validity.
        not_before: UnixTime,
        /// The instant checked.
        at: UnixTime,
    },
    /// The certificate (or CRL) has expired at the instant.
    Expired {
        /// End of validity.
        not_after: UnixTime,
        /// The instant checked.
        at: UnixTime,
    },
    /// A CRL without nextUpdate cannot prove freshness.
    MissingNextUpdate,
    /// An extension appears twice.
    DuplicateExtension,
    /// A critical extension accord does not understand.
    UnknownCriticalExtension,
    /// PEM text is malformed or has no block with the wanted label.
    Pem,
    /// A decoded PEM block does not fit the caller's buffer.
    BufferTooSmall,
}

impl fmt::Display for X509Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Der(err) => write!(f, "malformed DER: {err}"),
            Self::UnsupportedVersion => f.write_str("unsupported X.509 version"),
            Self::UnsupportedAlgorithm => f.write_str("unsupported algorithm"),
            Self::AlgorithmMismatch => f.write_str("inner and outer signature algorithms differ"),
            Self::KeyAlgorithmMismatch => {
                f.write_str("signature algorithm does not match the issuer key")
            }
            Self::BadPublicKey => f.write_str("malformed public key"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::IssuerMismatch => {
                f.write_str("issuer name does not match the issuing certificate's subject")
            }
            Self::IssuerNotCa => f.write_str("issuing certificate is not a CA"),
            Self::NotYetValid { not_before, at } => {
                write!(f, "not valid before {not_before} (checked at {at})")
            }
            Self::Expired { not_after, at } => {
                write!(f, "expired at {not_after} (checked at {at})")
            }
            Self::MissingNextUpdate => f.write_str("CRL has no nextUpdate"),
            Self::DuplicateExtension => f.write_str("duplicate extension"),
            Self::UnknownCriticalExtension => f.write_str("unknown critical extension"),
            Self::Pem => f.write_str("malformed PEM or missing block"),
            Self::BufferTooSmall => f.write_str("PEM block larger than the buffer"),
        }
    }
}

impl core::error::Error for X509Error {}

impl From<DerError> for X509Error {
    fn from(err: DerError) -> Self {
        Self::Der(err)
    }
}
