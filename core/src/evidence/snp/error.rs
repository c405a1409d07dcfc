//! Errors of SEV-SNP verification, grouped by cause: malformed report
//! ([`ReportError`]), failed authentication or chain checks ([`SnpError`]),
//! and reference-value mismatches ([`SnpMismatch`](super::reference::SnpMismatch),
//! in `reference.rs`).

use alloc::string::String;
use core::fmt;

use crate::time::UnixTime;
use crate::x509::X509Error;

use super::policy::SigningKey;
use super::tcb::{Product, TcbComponent};

/// Why a report's bytes were refused before any signature check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// A report is exactly 1184 bytes.
    WrongLength {
        /// Bytes received.
        actual: usize,
    },
    /// VERSION is not 2, 3 or 5.
    UnsupportedVersion(u32),
    /// SIGNATURE_ALGO is not 1 (ECDSA P-384 with SHA-384).
    UnsupportedSignatureAlgo(u32),
    /// POLICY bit 17 (reserved, must be one) is clear.
    PolicyBit17Clear {
        /// The policy.
        policy: u64,
    },
    /// SIGNING_KEY (flags bits 4:2) is neither 0 (VCEK) nor 1 (VLEK).
    UnknownSigningKey(u8),
    /// Reserved flag bits (31:5) are set.
    ReservedFlags {
        /// The flags word.
        flags: u32,
    },
    /// A reserved byte is not zero.
    ReservedNonZero {
        /// Offset of the first offending byte.
        offset: usize,
    },
    /// The input ended early (cannot happen for 1184 bytes; kept for safety).
    Truncated {
        /// Offset of the field.
        offset: usize,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongLength { actual } => write!(f, "report must be 1184 bytes, got {actual}"),
            Self::UnsupportedVersion(v) => {
                write!(f, "unsupported report version {v} (accepted: 2, 3, 5)")
            }
            Self::UnsupportedSignatureAlgo(a) => {
                write!(
                    f,
                    "unsupported signature algorithm {a} (expected 1, ECDSA P-384 with SHA-384)"
                )
            }
            Self::PolicyBit17Clear { policy } => {
                write!(
                    f,
                    "guest policy {policy:#x} has reserved bit 17 clear (must be one)"
                )
            }
            Self::UnknownSigningKey(k) => write!(
                f,
                "unknown signing key {k} in flags (expected 0 = VCEK or 1 = VLEK)"
            ),
            Self::ReservedFlags { flags } => write!(f, "reserved flag bits set in {flags:#x}"),
            Self::ReservedNonZero { offset } => {
                write!(f, "reserved byte at offset {offset:#x} is not zero")
            }
            Self::Truncated { offset } => write!(f, "report truncated at offset {offset:#x}"),
        }
    }
}

/// A certificate in the SEV-SNP chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// AMD Root Key (self-signed, per product).
    Ark,
    /// AMD SEV Key: intermediate that signs VCEKs.
    Ask,
    /// AMD SEV VLEK Key: intermediate that signs VLEKs.
    Asvk,
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
}

impl CertRole {
    /// The leaf role of a signing key.
    pub const fn leaf(key: SigningKey) -> Self {
        match key {
            SigningKey::Vcek => CertRole::Vcek,
            SigningKey::Vlek => CertRole::Vlek,
        }
    }

    /// The intermediate that issues a signing key.
    pub const fn intermediate(key: SigningKey) -> Self {
        match key {
            SigningKey::Vcek => CertRole::Ask,
            SigningKey::Vlek => CertRole::Asvk,
        }
    }
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertRole::Ark => "ARK",
            CertRole::Ask => "ASK",
            CertRole::Asvk => "ASVK",
            CertRole::Vcek => "VCEK",
            CertRole::Vlek => "VLEK",
        })
    }
}

/// Why SEV-SNP evidence was not authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnpError {
    /// The report is malformed.
    Report(ReportError),
    /// The report's signature does not verify under the leaf's key.
    ReportSignature {
        /// The key that was tried.
        key: CertRole,
    },
    /// The product is neither given, nor derivable from the report's CPUID,
    /// nor named by the leaf certificate.
    UnknownProduct,
    /// The report's CPUID family/model (version 3+) names no known product.
    UnknownCpuid {
        /// CPUID_FAM_ID.
        family: u8,
        /// CPUID_MOD_ID.
        model: u8,
    },
    /// Two sources disagree about the product.
    ProductMismatch {
        /// What the caller (or the first source) said.
        expected: Product,
        /// What the other source says.
        found: Product,
        /// The other source (`report CPUID`, `VCEK productName`, ...).
        source: &'static str,
    },
    /// The leaf's `productName` extension names no known product.
    UnknownProductName {
        /// The leaf.
        role: CertRole,
        /// The name.
        name: String,
    },
    /// A TCB field has non-zero reserved bytes for the product's layout.
    TcbReserved {
        /// Which TCB (`REPORTED_TCB`, ...).
        field: &'static str,
        /// The raw value.
        raw: u64,
        /// The product whose layout was applied.
        product: Product,
    },
    /// A certificate is malformed or unacceptable.
    Certificate {
        /// Which certificate.
        role: CertRole,
        /// Why.
        error: X509Error,
    },
    /// A certificate is not valid at the instant.
    CertificateNotValidAt {
        /// Which certificate.
        role: CertRole,
        /// Start of validity.
        not_before: UnixTime,
        /// End of validity.
        not_after: UnixTime,
        /// The instant checked.
        at: UnixTime,
    },
    /// A certificate is not correctly signed by its issuer.
    ChainSignature {
        /// The certificate.
        role: CertRole,
        /// The issuer it was checked against.
        issuer: CertRole,
        /// Why.
        error: X509Error,
    },
    /// The trust roots hold no certificate with this role for the product
    /// (custom roots without an ASVK, for example).
    MissingRoot {
        /// Which certificate.
        role: CertRole,
        /// Which product.
        product: Product,
    },
    /// An embedded root does not hash to its pinned fingerprint (a build
    /// defect).
    RootPin {
        /// Which certificate.
        role: CertRole,
        /// Which product.
        product: Product,
    },
    /// The report's SIGNING_KEY and the leaf certificate disagree (a VLEK
    /// report with a VCEK, or the other way round).
    SigningKeyMismatch {
        /// What the report's flags say.
        report: SigningKey,
        /// What the certificate is (by common name).
        certificate: CertRole,
    },
    /// The leaf's common name is neither `SEV-VCEK` nor `SEV-VLEK`.
    UnknownLeaf {
        /// The common name, if any.
        common_name: Option<String>,
    },
    /// A leaf certificate's public key is not a P-384 point.
    LeafKey {
        /// The leaf.
        role: CertRole,
    },
    /// An AMD extension is missing or malformed.
    Extension {
        /// The certificate.
        role: CertRole,
        /// The extension's name (`blSPL`, `hwID`, ...).
        name: &'static str,
        /// `missing` or `malformed`.
        problem: &'static str,
    },
    /// A TCB component in the leaf certificate differs from REPORTED_TCB.
    TcbMismatch {
        /// The leaf.
        role: CertRole,
        /// The component.
        component: TcbComponent,
        /// The certificate's value.
        certificate: u8,
        /// The report's value.
        report: u8,
    },
    /// The VCEK's `hwID` differs from the report's CHIP_ID.
    HwIdMismatch {
        /// The certificate's hwID, hex.
        certificate: String,
        /// The report's CHIP_ID prefix, hex.
        report: String,
    },
    /// A certificate is on the CRL.
    Revoked {
        /// Which certificate.
        role: CertRole,
        /// Its serial, hex.
        serial: String,
    },
    /// The CRL is malformed, badly signed or outside its validity window.
    Crl(X509Error),
    /// A chain verified earlier is used outside its validity window.
    ChainNotValidAt {
        /// Start of the chain's common validity.
        not_before: UnixTime,
        /// End of the chain's common validity.
        not_after: UnixTime,
        /// The instant checked.
        at: UnixTime,
    },
}

impl From<ReportError> for SnpError {
    fn from(err: ReportError) -> Self {
        Self::Report(err)
    }
}

impl fmt::Display for SnpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Report(err) => write!(f, "malformed SNP report: {err}"),
            Self::ReportSignature { key } => write!(f, "report signature does not verify under the {key}"),
            Self::UnknownProduct => f.write_str(
                "unknown SNP product: not given, not in the report's CPUID, not named by the certificate",
            ),
            Self::UnknownCpuid { family, model } => {
                write!(f, "report CPUID family {family:#x} model {model:#x} names no known SNP product")
            }
            Self::ProductMismatch { expected, found, source } => {
                write!(f, "product: expected {expected}, but {source} says {found}")
            }
            Self::UnknownProductName { role, name } => write!(f, "{role} productName {name:?} names no known product"),
            Self::TcbReserved { field, raw, product } => {
                write!(f, "{field} {raw:#018x} has reserved bytes set for the {product} layout")
            }
            Self::Certificate { role, error } => write!(f, "{role} certificate: {error}"),
            Self::CertificateNotValidAt { role, not_before, not_after, at } => {
                let state = if at < not_before { "not yet valid" } else { "expired" };
                write!(f, "{role} certificate {state}: valid {not_before} .. {not_after}, checked at {at}")
            }
            Self::ChainSignature { role, issuer, error } => {
                write!(f, "{role} certificate is not signed by the {issuer}: {error}")
            }
            Self::MissingRoot { role, product } => write!(f, "no {product} {role} in the trust roots"),
            Self::RootPin { role, product } => {
                write!(f, "embedded {product} {role} does not match its pinned fingerprint")
            }
            Self::SigningKeyMismatch { report, certificate } => {
                write!(f, "report is signed with a {report} but the certificate is a {certificate}")
            }
            Self::UnknownLeaf { common_name } => match common_name {
                Some(cn) => write!(f, "leaf certificate CN {cn:?} is neither SEV-VCEK nor SEV-VLEK"),
                None => f.write_str("leaf certificate has no common name"),
            },
            Self::LeafKey { role } => write!(f, "{role} public key is not an ECDSA P-384 key"),
            Self::Extension { role, name, problem } => write!(f, "{role} extension {name} is {problem}"),
            Self::TcbMismatch { role, component, certificate, report } => write!(
                f,
                "{role} {component} SPL: certificate says {certificate}, report REPORTED_TCB says {report}"
            ),
            Self::HwIdMismatch { certificate, report } => {
                write!(f, "VCEK hwID: expected {report} (report CHIP_ID), got {certificate}")
            }
            Self::Revoked { role, serial } => write!(f, "{role} certificate (serial {serial}) is revoked"),
            Self::Crl(err) => write!(f, "AMD CRL: {err}"),
            Self::ChainNotValidAt { not_before, not_after, at } => {
                write!(f, "verified chain used outside its validity {not_before} .. {not_after} (at {at})")
            }
        }
    }
}

#[cfg(feature = "std")]
impl core::error::Error for ReportError {}

#[cfg(feature = "std")]
impl core::error::Error for SnpError {}
