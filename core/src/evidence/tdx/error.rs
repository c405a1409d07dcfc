//! Why a TDX quote or its collateral was rejected.
//!
//! Errors are grouped by cause: a malformed quote ([`QuoteError`]),
//! malformed collateral ([`CollateralError`]), a failed authenticity or
//! freshness check ([`TdxError`]), and a policy mismatch against reference
//! values ([`ReferenceError`]). Each names
//! what failed: which signature, which certificate, which field with its
//! expected and actual values. None of them allocates.

use core::fmt;

use crate::codec::CodecError;
use crate::hex::Hex;
use crate::time::UnixTime;
use crate::x509::X509Error;

use super::reference::ReferenceError;
use super::tcb::TcbStatus;

/// The quote bytes are not a well-formed TDX quote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuoteError {
    /// A read ran past the end, or a length field did not add up.
    Codec(CodecError),
    /// The quote version is neither 4 nor 5.
    UnsupportedVersion(u16),
    /// The attestation key type is not 2 (ECDSA P-256).
    UnsupportedAttestationKeyType(u16),
    /// The TEE type is not 0x81 (TDX).
    UnsupportedTeeType(u32),
    /// The QE vendor id is not Intel's.
    UnknownQeVendor([u8; 16]),
    /// A v5 body type other than 2 (TD report 1.0) or 3 (TD report 1.5).
    UnsupportedBodyType(u16),
    /// The v5 body size does not match its type.
    BodySize {
        /// The body type.
        body_type: u16,
        /// The size the type requires.
        expected: usize,
        /// The size in the quote.
        actual: usize,
    },
    /// A certification data block has an unexpected type.
    CertificationDataType {
        /// The type required at this position (6 outer, 5 inner).
        expected: u16,
        /// The type found.
        actual: u16,
    },
    /// Non-zero bytes follow the signature data (see the `quote` module docs).
    TrailingBytes {
        /// Offset of the first non-zero trailing byte.
        offset: usize,
        /// Number of bytes after the signature data.
        count: usize,
    },
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Codec(e) => write!(f, "malformed quote: {e}"),
            Self::UnsupportedVersion(v) => {
                write!(f, "unsupported quote version {v} (expected 4 or 5)")
            }
            Self::UnsupportedAttestationKeyType(t) => {
                write!(
                    f,
                    "unsupported attestation key type {t} (expected 2, ECDSA P-256)"
                )
            }
            Self::UnsupportedTeeType(t) => {
                write!(f, "unsupported TEE type {t:#x} (expected 0x81, TDX)")
            }
            Self::UnknownQeVendor(id) => write!(f, "unknown QE vendor id {}", Hex(id)),
            Self::UnsupportedBodyType(t) => {
                write!(f, "unsupported quote body type {t} (expected 2 or 3)")
            }
            Self::BodySize {
                body_type,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "quote body type {body_type} must be {expected} bytes, is {actual}"
                )
            }
            Self::CertificationDataType { expected, actual } => {
                write!(
                    f,
                    "certification data type {actual} where type {expected} is required"
                )
            }
            Self::TrailingBytes { offset, count } => write!(
                f,
                "{count} unauthenticated bytes after the signature data, non-zero at offset {offset:#x}"
            ),
        }
    }
}

/// The collateral input is malformed (before any signature is checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CollateralError {
    /// The collateral JSON document does not have the expected shape.
    Json,
    /// A field is malformed.
    Field {
        /// Which document (`collateral`, `tcbInfo`, `enclaveIdentity`).
        document: &'static str,
        /// Which field.
        field: &'static str,
    },
    /// `id`/`version` of a TCB info or QE identity is not the supported one.
    Unsupported {
        /// Which document.
        document: &'static str,
    },
    /// A PCS response body is not `{"tcbInfo":…,"signature":"…"}` (or
    /// `enclaveIdentity`).
    PcsEnvelope {
        /// The key that was expected first.
        key: &'static str,
    },
    /// A PEM certificate chain does not hold the expected certificates.
    Chain {
        /// Which chain.
        chain: &'static str,
    },
}

impl fmt::Display for CollateralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json => f.write_str("collateral is not the expected JSON document"),
            Self::Field { document, field } => {
                write!(f, "{document}: field {field} is missing or malformed")
            }
            Self::Unsupported { document } => write!(f, "{document}: unsupported id or version"),
            Self::PcsEnvelope { key } => {
                write!(f, "PCS response is not {{\"{key}\":…,\"signature\":\"…\"}}")
            }
            Self::Chain { chain } => {
                write!(f, "{chain}: not a PEM chain of the expected certificates")
            }
        }
    }
}

/// A certificate in the DCAP trust graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertRole {
    /// The Intel SGX Root CA.
    Root,
    /// The PCK leaf certificate in the quote.
    PckLeaf,
    /// The Intel SGX PCK Platform/Processor CA in the quote.
    PckCa,
    /// The PCK CA that issued the PCK CRL (from the collateral).
    PckCrlIssuer,
    /// The Intel SGX TCB Signing certificate that signs TCB info.
    TcbInfoSigner,
    /// The Intel SGX TCB Signing certificate that signs the QE identity.
    QeIdentitySigner,
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Root => "Intel SGX Root CA certificate",
            Self::PckLeaf => "PCK certificate",
            Self::PckCa => "PCK CA certificate",
            Self::PckCrlIssuer => "PCK CRL issuer certificate",
            Self::TcbInfoSigner => "TCB info signing certificate",
            Self::QeIdentitySigner => "QE identity signing certificate",
        })
    }
}

/// A CRL in the collateral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrlRole {
    /// The Root CA CRL (revokes intermediate CAs and the TCB signer).
    RootCa,
    /// The PCK CRL (revokes PCK certificates).
    Pck,
}

impl fmt::Display for CrlRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RootCa => "Root CA CRL",
            Self::Pck => "PCK CRL",
        })
    }
}

/// A signature DCAP checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureRole {
    /// The attestation key's signature over the quote header and body.
    QuoteBody,
    /// The PCK key's signature over the QE report.
    QeReport,
    /// The TCB signer's signature over the TCB info.
    TcbInfo,
    /// The TCB signer's signature over the QE identity.
    QeIdentity,
}

impl fmt::Display for SignatureRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QuoteBody => "attestation-key signature over the quote header and TD report",
            Self::QeReport => "PCK signature over the QE report",
            Self::TcbInfo => "TCB info signature",
            Self::QeIdentity => "QE identity signature",
        })
    }
}

/// A dated item whose validity window is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dated {
    /// A certificate.
    Certificate(CertRole),
    /// A CRL (`thisUpdate .. nextUpdate`).
    Crl(CrlRole),
    /// The TCB info (`issueDate .. nextUpdate`).
    TcbInfo,
    /// The QE identity (`issueDate .. nextUpdate`).
    QeIdentity,
    /// The intersection of every window of a [`VerifiedCollateral`](super::VerifiedCollateral).
    Collateral,
}

impl fmt::Display for Dated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate(role) => role.fmt(f),
            Self::Crl(role) => role.fmt(f),
            Self::TcbInfo => f.write_str("TCB info"),
            Self::QeIdentity => f.write_str("QE identity"),
            Self::Collateral => f.write_str("verified collateral"),
        }
    }
}

/// A field of the QE identity or TDX module identity that did not match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityField {
    /// QE MRSIGNER.
    QeMrSigner,
    /// QE ISVPRODID.
    QeIsvProdId,
    /// QE MISCSELECT under its mask.
    QeMiscSelect,
    /// QE ATTRIBUTES under their mask.
    QeAttributes,
    /// MRSIGNERSEAM against the TDX module identity.
    MrSignerSeam,
    /// SEAMATTRIBUTES under the TDX module identity's mask.
    SeamAttributes,
}

impl fmt::Display for IdentityField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::QeMrSigner => "QE MRSIGNER",
            Self::QeIsvProdId => "QE ISVPRODID",
            Self::QeMiscSelect => "QE MISCSELECT (masked)",
            Self::QeAttributes => "QE ATTRIBUTES (masked)",
            Self::MrSignerSeam => "MRSIGNERSEAM",
            Self::SeamAttributes => "SEAMATTRIBUTES (masked)",
        })
    }
}

/// Why a TDX quote was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TdxError {
    /// The quote is malformed.
    Quote(QuoteError),
    /// The collateral is malformed.
    Collateral(CollateralError),
    /// A certificate could not be parsed or does not chain to its issuer.
    Certificate {
        /// Which certificate.
        role: CertRole,
        /// What went wrong.
        error: X509Error,
    },
    /// A CRL could not be parsed or is not signed by its issuer.
    Crl {
        /// Which CRL.
        role: CrlRole,
        /// What went wrong.
        error: X509Error,
    },
    /// The root certificate is not the pinned Intel SGX Root CA.
    UntrustedRoot,
    /// A certificate's subject common name is not the one its role requires
    /// (e.g. a PCK CA certificate offered as TCB signer).
    UnexpectedSubject(CertRole),
    /// A certificate is listed in a CRL.
    Revoked(CertRole),
    /// The PCK CA in the quote is not the issuer of the PCK CRL in the collateral.
    PckCrlIssuerMismatch,
    /// A signature does not verify.
    Signature(SignatureRole),
    /// A key has an unexpected algorithm or encoding.
    KeyType(CertRole),
    /// `at` lies outside an item's validity window.
    OutsideValidity {
        /// The item.
        item: Dated,
        /// Start of its window.
        not_before: UnixTime,
        /// End of its window.
        not_after: UnixTime,
        /// The instant of the check.
        at: UnixTime,
    },
    /// QE REPORTDATA is not SHA-256(attestation key ‖ auth data) ‖ 32 zero bytes.
    QeReportData,
    /// The PCK certificate lacks or has a malformed SGX extension.
    PckExtension {
        /// Which part of the extension.
        field: &'static str,
    },
    /// The PCK certificate's FMSPC differs from the TCB info's.
    FmspcMismatch {
        /// FMSPC of the TCB info.
        expected: [u8; 6],
        /// FMSPC of the PCK certificate.
        actual: [u8; 6],
    },
    /// The PCK certificate's PCEID differs from the TCB info's.
    PceIdMismatch {
        /// PCEID of the TCB info.
        expected: [u8; 2],
        /// PCEID of the PCK certificate.
        actual: [u8; 2],
    },
    /// The QE report or TD report does not match its identity in the collateral.
    Identity(IdentityField),
    /// `tee_tcb_svn[1]` names a TDX module with no identity in the TCB info.
    TdxModuleIdentityMissing {
        /// The module major version (`tee_tcb_svn[1]`).
        version: u8,
    },
    /// No platform TCB level matches the quote ("TCB level not supported").
    TcbLevelNotSupported,
    /// No TDX module TCB level matches `tee_tcb_svn[0]`.
    TdxModuleTcbLevelNotSupported,
    /// No QE identity TCB level matches the QE's ISVSVN.
    QeTcbLevelNotSupported,
    /// The TCB status is not accepted by policy.
    TcbStatus(TcbStatus),
    /// The TD runs with DEBUG set and debug TDs are not allowed.
    DebugTd,
    /// The TD is bound to service TDs (non-zero MRSERVICETD) and that is not allowed.
    ServiceTd,
    /// A reference value did not match.
    Reference(ReferenceError),
}

impl fmt::Display for TdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quote(e) => e.fmt(f),
            Self::Collateral(e) => e.fmt(f),
            Self::Certificate { role, error } => write!(f, "{role}: {error}"),
            Self::Crl { role, error } => write!(f, "{role}: {error}"),
            Self::UntrustedRoot => {
                f.write_str("the quote's root certificate is not the pinned Intel SGX Root CA")
            }
            Self::Revoked(role) => write!(f, "{role} is revoked"),
            Self::UnexpectedSubject(role) => write!(f, "{role}: unexpected subject common name"),
            Self::PckCrlIssuerMismatch => {
                f.write_str("the quote's PCK CA is not the issuer of the collateral's PCK CRL")
            }
            Self::Signature(role) => write!(f, "{role} does not verify"),
            Self::KeyType(role) => write!(f, "{role}: key is not an ECDSA P-256 key"),
            Self::OutsideValidity {
                item,
                not_before,
                not_after,
                at,
            } => {
                write!(
                    f,
                    "{item} is not valid at {at} (valid {not_before} .. {not_after})"
                )
            }
            Self::QeReportData => f.write_str(
                "QE report data is not SHA-256(attestation key || auth data) followed by zeros",
            ),
            Self::PckExtension { field } => write!(
                f,
                "PCK certificate SGX extension: {field} missing or malformed"
            ),
            Self::FmspcMismatch { expected, actual } => write!(
                f,
                "FMSPC mismatch: TCB info has {}, PCK certificate has {}",
                Hex(expected),
                Hex(actual)
            ),
            Self::PceIdMismatch { expected, actual } => write!(
                f,
                "PCEID mismatch: TCB info has {}, PCK certificate has {}",
                Hex(expected),
                Hex(actual)
            ),
            Self::Identity(field) => write!(f, "{field} does not match the collateral's identity"),
            Self::TdxModuleIdentityMissing { version } => {
                write!(f, "TCB info has no TDX module identity TDX_{version:02X}")
            }
            Self::TcbLevelNotSupported => {
                f.write_str("TCB level not supported: no platform TCB level matches")
            }
            Self::TdxModuleTcbLevelNotSupported => {
                f.write_str("no TDX module TCB level matches the module SVN")
            }
            Self::QeTcbLevelNotSupported => {
                f.write_str("no QE identity TCB level matches the QE ISVSVN")
            }
            Self::TcbStatus(status) => write!(f, "TCB status {status} is not accepted"),
            Self::ServiceTd => f.write_str(
                "the TD is bound to service TDs (MRSERVICETD is not zero) and that is not allowed",
            ),
            Self::DebugTd => {
                f.write_str("the TD has DEBUG set in TDATTRIBUTES and debug TDs are not allowed")
            }
            Self::Reference(e) => e.fmt(f),
        }
    }
}

impl From<QuoteError> for TdxError {
    fn from(e: QuoteError) -> Self {
        Self::Quote(e)
    }
}

impl From<CollateralError> for TdxError {
    fn from(e: CollateralError) -> Self {
        Self::Collateral(e)
    }
}

impl From<ReferenceError> for TdxError {
    fn from(e: ReferenceError) -> Self {
        Self::Reference(e)
    }
}

impl core::error::Error for QuoteError {}
impl core::error::Error for CollateralError {}
impl core::error::Error for TdxError {}
