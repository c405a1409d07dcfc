//! Reference values for SEV-SNP (the "expect" step) and their comparison
//! with [`SnpClaims`] (the "compare" step).
//!
//! [`SnpReferenceValues`] reads the JSON of a manifest's
//! `ReferenceValues.snp[]` entry with the field names of the system accord
//! is modelled on (`ProductName`, `TrustedMeasurement`, `MinimumTCB`,
//! `GuestPolicy`, `PlatformInfo`, `AllowedChipIDs`,
//! `MinimumMitigationVector`), plus accord's additions (`HostData`,
//! `ReportData`, `VMPL`, `TrustedIDKeyDigests`, `TrustedAuthorKeyDigests`,
//! `MinimumGuestSVN`, `MinimumCommittedTCB`, `MinimumLaunchTCB`). Unknown
//! fields are refused, so a misspelt field cannot silently disable a check.
//! An absent field is not checked, except the two below, which fail closed.
//!
//! # Defaults
//!
//! - **`VMPL` absent means `0`.** A report requested at VMPL 1–3 is
//!   refused with [`SnpMismatch::Vmpl`]; an entry that trusts a guest
//!   running under a paravisor or SVSM names its VMPL explicitly.
//! - **`GuestPolicy` absent means `{"SMT": true}`** ([`ReferencePolicy::ABSENT`]):
//!   the report may allow SMT and nothing else. Refused, each by name and
//!   bit: DEBUG (bit 19, [`SnpMismatch::PolicyDebug`]), MIGRATE_MA (bit 18,
//!   [`SnpMismatch::PolicyMigrateMa`]), CXL_ALLOW (bit 21,
//!   [`SnpMismatch::PolicyFlag`] `CXLAllowed`) and any reserved or unknown
//!   bit 26–63 ([`SnpMismatch::PolicyUnknownBits`], which lists the bits).
//!   No restriction (SINGLE_SOCKET, MEM_AES_256_XTS, …) is required and any
//!   ABI version is accepted. Bit 17, which must be one, is checked by the
//!   report parser for every report.
//!
//! [`SnpReferenceValues::check`] reports **every** mismatch, not just the
//! first, as a list of [`SnpMismatch`]; each names the field, the expected
//! value and the actual one.
//!
//! Semantics:
//! - `MinimumTCB` applies to REPORTED_TCB; `MinimumCommittedTCB` and
//!   `MinimumLaunchTCB` (default: `MinimumTCB`) to COMMITTED_TCB and
//!   LAUNCH_TCB. Each component must be at least the minimum.
//! - `GuestPolicy`: the report may not be more permissive. SMT, MigrateMA,
//!   Debug and CXLAllowed may be set in the report only if set in the
//!   reference; SingleSocket, MemAES256XTS, RAPLDis, CipherTextHidingDRAM and
//!   PageSwapDisable set in the reference must be set in the report; the
//!   report's ABI major.minor must be at least the reference's; policy bits
//!   accord does not know are refused.
//! - `PlatformInfo`: every flag set to true is required in PLATFORM_INFO;
//!   false means "not required". (go-sev-guest instead treats these as the
//!   set of permitted features; accord requires them.)
//! - `MinimumMitigationVector`: every bit set must be set in both
//!   LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR; a report without mitigation
//!   vectors (before version 5) fails a non-zero requirement.
//! - `AllowedChipIDs`, `TrustedIDKeyDigests`, `TrustedAuthorKeyDigests`:
//!   when non-empty, the report's value must be listed (author key: and
//!   AUTHOR_KEY_EN must be set).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::evidence::BitList;
use crate::hex;

use super::claims::{HexBytes, SnpClaims};
use super::policy::GuestPolicy;
use super::roots::TrustRoots;
use super::tcb::{Product, TcbComponent, TcbVersion};

/// Minimum TCB component versions (`MinimumTCB`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct MinimumTcb {
    #[serde(rename = "BootloaderVersion")]
    pub bootloader: u8,
    #[serde(rename = "TEEVersion")]
    pub tee: u8,
    #[serde(rename = "SNPVersion")]
    pub snp: u8,
    #[serde(rename = "MicrocodeVersion")]
    pub microcode: u8,
    /// Turin's FMC; ignored for Milan/Genoa.
    #[serde(
        rename = "FMCVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub fmc: Option<u8>,
}

/// The most permissive guest policy accepted (`GuestPolicy`).
///
/// An entry without one is checked against [`ReferencePolicy::ABSENT`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct ReferencePolicy {
    #[serde(rename = "ABIMinor")]
    pub abi_minor: u8,
    #[serde(rename = "ABIMajor")]
    pub abi_major: u8,
    #[serde(rename = "SMT")]
    pub smt: bool,
    #[serde(rename = "MigrateMA")]
    pub migrate_ma: bool,
    #[serde(rename = "Debug")]
    pub debug: bool,
    #[serde(rename = "SingleSocket")]
    pub single_socket: bool,
    #[serde(rename = "CXLAllowed")]
    pub cxl_allowed: bool,
    #[serde(rename = "MemAES256XTS")]
    pub mem_aes_256_xts: bool,
    #[serde(rename = "RAPLDis")]
    pub rapl_dis: bool,
    #[serde(rename = "CipherTextHidingDRAM")]
    pub ciphertext_hiding_dram: bool,
    #[serde(rename = "PageSwapDisable")]
    pub page_swap_disable: bool,
}

impl ReferencePolicy {
    /// What an entry without `GuestPolicy` is checked against:
    /// `{"SMT": true}`. SMT may be allowed; DEBUG, MIGRATE_MA and CXL_ALLOW
    /// may not; no restriction is required; any ABI version is accepted.
    /// (Unknown and reserved policy bits are refused whatever the reference.)
    pub const ABSENT: Self = Self {
        abi_minor: 0,
        abi_major: 0,
        smt: true,
        migrate_ma: false,
        debug: false,
        single_socket: false,
        cxl_allowed: false,
        mem_aes_256_xts: false,
        rapl_dis: false,
        ciphertext_hiding_dram: false,
        page_swap_disable: false,
    };
}

/// Platform features that must be present (`PlatformInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct RequiredPlatformInfo {
    #[serde(rename = "SMTEnabled")]
    pub smt_enabled: bool,
    #[serde(rename = "TSMEEnabled")]
    pub tsme_enabled: bool,
    #[serde(rename = "ECCEnabled")]
    pub ecc_enabled: bool,
    #[serde(rename = "RAPLDisabled")]
    pub rapl_disabled: bool,
    #[serde(rename = "CiphertextHidingDRAMEnabled")]
    pub ciphertext_hiding_dram_enabled: bool,
    #[serde(rename = "AliasCheckComplete")]
    pub alias_check_complete: bool,
    #[serde(rename = "TIOEnabled")]
    pub tio_enabled: bool,
}

/// One `ReferenceValues.snp[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[allow(missing_docs)]
pub struct SnpReferenceValues {
    /// A free-form platform marker; not checked.
    #[serde(rename = "Platform", skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(rename = "ProductName", skip_serializing_if = "Option::is_none")]
    pub product_name: Option<Product>,
    #[serde(rename = "TrustedMeasurement", skip_serializing_if = "Option::is_none")]
    pub trusted_measurement: Option<HexBytes<48>>,
    #[serde(rename = "MinimumTCB", skip_serializing_if = "Option::is_none")]
    pub minimum_tcb: Option<MinimumTcb>,
    #[serde(
        rename = "MinimumCommittedTCB",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_committed_tcb: Option<MinimumTcb>,
    #[serde(rename = "MinimumLaunchTCB", skip_serializing_if = "Option::is_none")]
    pub minimum_launch_tcb: Option<MinimumTcb>,
    #[serde(rename = "GuestPolicy", skip_serializing_if = "Option::is_none")]
    pub guest_policy: Option<ReferencePolicy>,
    #[serde(rename = "PlatformInfo", skip_serializing_if = "Option::is_none")]
    pub platform_info: Option<RequiredPlatformInfo>,
    #[serde(rename = "AllowedChipIDs", skip_serializing_if = "Vec::is_empty")]
    pub allowed_chip_ids: Vec<HexBytes<64>>,
    #[serde(
        rename = "MinimumMitigationVector",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum_mitigation_vector: Option<u64>,
    #[serde(rename = "HostData", skip_serializing_if = "Option::is_none")]
    pub host_data: Option<HexBytes<32>>,
    #[serde(rename = "ReportData", skip_serializing_if = "Option::is_none")]
    pub report_data: Option<HexBytes<64>>,
    #[serde(rename = "VMPL", skip_serializing_if = "Option::is_none")]
    pub vmpl: Option<u8>,
    #[serde(rename = "TrustedIDKeyDigests", skip_serializing_if = "Vec::is_empty")]
    pub trusted_id_key_digests: Vec<HexBytes<48>>,
    #[serde(
        rename = "TrustedAuthorKeyDigests",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trusted_author_key_digests: Vec<HexBytes<48>>,
    #[serde(rename = "MinimumGuestSVN", skip_serializing_if = "Option::is_none")]
    pub minimum_guest_svn: Option<u32>,
    /// Replaces AMD's genuine roots with these (the INSECURE simulated TEE).
    /// Absent means genuine AMD roots only; evidence from a simulated chip
    /// verifies only when its root is listed here explicitly.
    #[serde(
        rename = "InsecureTrustedRoot",
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_trusted_root: Option<TrustedRoot>,
}

/// A caller-chosen ARK and ASK (hex of DER), and optionally an ASVK, that
/// replace AMD's roots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedRoot {
    /// The root key certificate (self-signed), hex of DER.
    #[serde(rename = "ARK", with = "crate::hex::serde_bytes")]
    pub ark: Vec<u8>,
    /// The intermediate that signs VCEKs, hex of DER.
    #[serde(rename = "ASK", with = "crate::hex::serde_bytes")]
    pub ask: Vec<u8>,
    /// The intermediate that signs VLEKs, hex of DER. Absent: VLEK-signed
    /// reports are refused under this root (the simulated chip has no
    /// VLEK).
    #[serde(
        rename = "ASVK",
        with = "crate::hex::serde_bytes::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub asvk: Option<Vec<u8>>,
}

impl TrustedRoot {
    /// These certificates as verification anchors.
    pub fn trust_roots(&self) -> TrustRoots<'_> {
        match &self.asvk {
            Some(asvk) => TrustRoots::custom_with_asvk(&self.ark, &self.ask, asvk),
            None => TrustRoots::custom(&self.ark, &self.ask),
        }
    }

    /// The anchors of an entry: `root`'s, or AMD's genuine ones.
    pub fn roots_or_genuine(root: Option<&Self>) -> TrustRoots<'_> {
        root.map_or(TrustRoots::genuine(), Self::trust_roots)
    }
}

/// Which TCB of the report a minimum applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcbField {
    /// REPORTED_TCB (`MinimumTCB`).
    Reported,
    /// COMMITTED_TCB (`MinimumCommittedTCB`).
    Committed,
    /// LAUNCH_TCB (`MinimumLaunchTCB`).
    Launch,
}

impl fmt::Display for TcbField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcbField::Reported => "reported_tcb",
            TcbField::Committed => "committed_tcb",
            TcbField::Launch => "launch_tcb",
        })
    }
}

/// One way the claims differ from the reference values.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnpMismatch {
    /// `ProductName`.
    ProductName {
        /// Reference.
        expected: Product,
        /// Report.
        actual: Product,
    },
    /// `TrustedMeasurement`.
    Measurement {
        /// Reference, hex.
        expected: String,
        /// Report, hex.
        actual: String,
    },
    /// `HostData`.
    HostData {
        /// Reference, hex.
        expected: String,
        /// Report, hex.
        actual: String,
    },
    /// `ReportData`.
    ReportData {
        /// Reference, hex.
        expected: String,
        /// Report, hex.
        actual: String,
    },
    /// `VMPL` (0 when the entry does not name one).
    Vmpl {
        /// Reference.
        expected: u8,
        /// Report.
        actual: u32,
    },
    /// `MinimumGuestSVN`.
    GuestSvn {
        /// Reference minimum.
        minimum: u32,
        /// Report.
        actual: u32,
    },
    /// A TCB component below its minimum.
    Tcb {
        /// Which TCB.
        field: TcbField,
        /// Which component.
        component: TcbComponent,
        /// Reference minimum.
        minimum: u8,
        /// Report.
        actual: u8,
    },
    /// Policy ABI major.minor below the reference.
    PolicyAbi {
        /// Reference minimum (major, minor).
        minimum: (u8, u8),
        /// Report (major, minor).
        actual: (u8, u8),
    },
    /// Debugging (bit 19) allowed by the report but not by the reference
    /// (or the entry has no `GuestPolicy`).
    PolicyDebug {
        /// Reference.
        expected: bool,
        /// Report.
        actual: bool,
    },
    /// Migration agent (bit 18) allowed by the report but not by the
    /// reference (or the entry has no `GuestPolicy`).
    PolicyMigrateMa {
        /// Reference.
        expected: bool,
        /// Report.
        actual: bool,
    },
    /// SMT allowed by the report but not by the reference.
    PolicySmt {
        /// Reference.
        expected: bool,
        /// Report.
        actual: bool,
    },
    /// Single socket required by the reference but not by the report.
    PolicySingleSocket {
        /// Reference.
        expected: bool,
        /// Report.
        actual: bool,
    },
    /// Another policy flag looser than the reference.
    PolicyFlag {
        /// The flag's reference-value name.
        name: &'static str,
        /// Reference.
        expected: bool,
        /// Report.
        actual: bool,
    },
    /// Reserved policy bits (26–63), which accord does not know, are set.
    PolicyUnknownBits {
        /// The unknown bits (a mask of the raw policy).
        bits: u64,
    },
    /// A required PLATFORM_INFO flag is clear.
    PlatformInfo {
        /// The flag's reference-value name.
        name: &'static str,
    },
    /// CHIP_ID not in `AllowedChipIDs`.
    ChipIdNotAllowed {
        /// Report, hex.
        actual: String,
    },
    /// ID_KEY_DIGEST not in `TrustedIDKeyDigests`.
    IdKeyDigestNotTrusted {
        /// Report, hex.
        actual: String,
    },
    /// AUTHOR_KEY_DIGEST not in `TrustedAuthorKeyDigests` (or no author key).
    AuthorKeyDigestNotTrusted {
        /// Report, hex (empty when AUTHOR_KEY_EN is clear).
        actual: String,
    },
    /// A mitigation vector lacks required bits.
    MitigationVector {
        /// `launch_mit_vector` or `current_mit_vector`.
        field: &'static str,
        /// Reference: required bits.
        required: u64,
        /// Report (`None` before version 5).
        actual: Option<u64>,
    },
}

impl fmt::Display for SnpMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProductName { expected, actual } => {
                write!(f, "product: expected {expected}, got {actual}")
            }
            Self::Measurement { expected, actual } => {
                write!(f, "measurement: expected {expected}, got {actual}")
            }
            Self::HostData { expected, actual } => {
                write!(f, "host_data: expected {expected}, got {actual}")
            }
            Self::ReportData { expected, actual } => {
                write!(f, "report_data: expected {expected}, got {actual}")
            }
            Self::Vmpl { expected, actual } => write!(f, "vmpl: expected {expected}, got {actual}"),
            Self::GuestSvn { minimum, actual } => {
                write!(f, "guest_svn: expected at least {minimum}, got {actual}")
            }
            Self::Tcb {
                field,
                component,
                minimum,
                actual,
            } => {
                write!(
                    f,
                    "{field}.{component}: expected at least {minimum}, got {actual}"
                )
            }
            Self::PolicyAbi { minimum, actual } => write!(
                f,
                "policy.abi: expected at least {}.{}, got {}.{}",
                minimum.0, minimum.1, actual.0, actual.1
            ),
            Self::PolicyDebug { expected, actual } => {
                write!(
                    f,
                    "policy.debug (bit 19): expected {expected}, got {actual}"
                )
            }
            Self::PolicyMigrateMa { expected, actual } => write!(
                f,
                "policy.migrate_ma (bit 18): expected {expected}, got {actual}"
            ),
            Self::PolicySmt { expected, actual } => {
                write!(f, "policy.smt (bit 16): expected {expected}, got {actual}")
            }
            Self::PolicySingleSocket { expected, actual } => write!(
                f,
                "policy.single_socket (bit 20): expected {expected}, got {actual}"
            ),
            Self::PolicyFlag {
                name,
                expected,
                actual,
            } => match policy_flag_bit(name) {
                Some(bit) => write!(
                    f,
                    "policy.{name} (bit {bit}): expected {expected}, got {actual}"
                ),
                None => write!(f, "policy.{name}: expected {expected}, got {actual}"),
            },
            Self::PolicyUnknownBits { bits } => write!(
                f,
                "policy: expected reserved bits clear, got bit(s) {} set ({bits:#x})",
                BitList(*bits)
            ),
            Self::PlatformInfo { name } => {
                write!(f, "platform_info.{name}: expected true, got false")
            }
            Self::ChipIdNotAllowed { actual } => {
                write!(f, "chip_id: expected one of AllowedChipIDs, got {actual}")
            }
            Self::IdKeyDigestNotTrusted { actual } => {
                write!(
                    f,
                    "id_key_digest: expected one of TrustedIDKeyDigests, got {actual}"
                )
            }
            Self::AuthorKeyDigestNotTrusted { actual } => {
                write!(
                    f,
                    "author_key_digest: expected one of TrustedAuthorKeyDigests, got {actual:?}"
                )
            }
            Self::MitigationVector {
                field,
                required,
                actual,
            } => match actual {
                Some(actual) => write!(
                    f,
                    "{field}: expected bits {required:#x} set, got {actual:#x}"
                ),
                None => write!(
                    f,
                    "{field}: expected bits {required:#x} set, got none (report before version 5)"
                ),
            },
        }
    }
}

#[cfg(feature = "std")]
impl core::error::Error for SnpMismatch {}

/// The bit of a policy flag reported through [`SnpMismatch::PolicyFlag`].
fn policy_flag_bit(name: &str) -> Option<u32> {
    match name {
        "CXLAllowed" => Some(21),
        "MemAES256XTS" => Some(22),
        "RAPLDis" => Some(23),
        "CipherTextHidingDRAM" => Some(24),
        "PageSwapDisable" => Some(25),
        _ => None,
    }
}

fn check_tcb(
    out: &mut Vec<SnpMismatch>,
    field: TcbField,
    minimum: &MinimumTcb,
    actual: &TcbVersion,
) {
    let pairs = [
        (
            TcbComponent::Bootloader,
            minimum.bootloader,
            actual.bootloader,
        ),
        (TcbComponent::Tee, minimum.tee, actual.tee),
        (TcbComponent::Snp, minimum.snp, actual.snp),
        (TcbComponent::Microcode, minimum.microcode, actual.microcode),
    ];
    let fmc = match (minimum.fmc, actual.fmc) {
        (Some(min), Some(act)) => Some((TcbComponent::Fmc, min, act)),
        _ => None,
    };
    for (component, minimum, actual) in fmc.into_iter().chain(pairs) {
        if actual < minimum {
            out.push(SnpMismatch::Tcb {
                field,
                component,
                minimum,
                actual,
            });
        }
    }
}

fn check_policy(out: &mut Vec<SnpMismatch>, reference: &ReferencePolicy, actual: GuestPolicy) {
    if (actual.abi_major(), actual.abi_minor()) < (reference.abi_major, reference.abi_minor) {
        out.push(SnpMismatch::PolicyAbi {
            minimum: (reference.abi_major, reference.abi_minor),
            actual: (actual.abi_major(), actual.abi_minor()),
        });
    }
    // Permissions: the report may not allow what the reference does not.
    if actual.debug() && !reference.debug {
        out.push(SnpMismatch::PolicyDebug {
            expected: reference.debug,
            actual: true,
        });
    }
    if actual.migrate_ma() && !reference.migrate_ma {
        out.push(SnpMismatch::PolicyMigrateMa {
            expected: reference.migrate_ma,
            actual: true,
        });
    }
    if actual.smt() && !reference.smt {
        out.push(SnpMismatch::PolicySmt {
            expected: reference.smt,
            actual: true,
        });
    }
    if actual.cxl_allowed() && !reference.cxl_allowed {
        out.push(SnpMismatch::PolicyFlag {
            name: "CXLAllowed",
            expected: false,
            actual: true,
        });
    }
    // Restrictions: what the reference requires, the report must require.
    if reference.single_socket && !actual.single_socket() {
        out.push(SnpMismatch::PolicySingleSocket {
            expected: true,
            actual: false,
        });
    }
    for (name, required, present) in [
        (
            "MemAES256XTS",
            reference.mem_aes_256_xts,
            actual.mem_aes_256_xts(),
        ),
        ("RAPLDis", reference.rapl_dis, actual.rapl_dis()),
        (
            "CipherTextHidingDRAM",
            reference.ciphertext_hiding_dram,
            actual.ciphertext_hiding_dram(),
        ),
        (
            "PageSwapDisable",
            reference.page_swap_disable,
            actual.page_swap_disable(),
        ),
    ] {
        if required && !present {
            out.push(SnpMismatch::PolicyFlag {
                name,
                expected: true,
                actual: false,
            });
        }
    }
    if actual.unknown_bits() != 0 {
        out.push(SnpMismatch::PolicyUnknownBits {
            bits: actual.unknown_bits(),
        });
    }
}

impl SnpReferenceValues {
    /// Parses one entry from JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Compares `claims` with these reference values; returns every
    /// mismatch (in the order of the fields above), or `Ok` when none.
    pub fn check(&self, claims: &SnpClaims) -> Result<(), Vec<SnpMismatch>> {
        let mut out = Vec::new();
        if let Some(expected) = self.product_name
            && expected != claims.product
        {
            out.push(SnpMismatch::ProductName {
                expected,
                actual: claims.product,
            });
        }
        if let Some(expected) = &self.trusted_measurement
            && *expected != claims.measurement
        {
            out.push(SnpMismatch::Measurement {
                expected: hex::encode(&expected.0),
                actual: hex::encode(&claims.measurement.0),
            });
        }
        if let Some(expected) = &self.host_data
            && *expected != claims.host_data
        {
            out.push(SnpMismatch::HostData {
                expected: hex::encode(&expected.0),
                actual: hex::encode(&claims.host_data.0),
            });
        }
        if let Some(expected) = &self.report_data
            && *expected != claims.report_data
        {
            out.push(SnpMismatch::ReportData {
                expected: hex::encode(&expected.0),
                actual: hex::encode(&claims.report_data.0),
            });
        }
        let expected = self.vmpl.unwrap_or(0);
        if u32::from(expected) != claims.vmpl {
            out.push(SnpMismatch::Vmpl {
                expected,
                actual: claims.vmpl,
            });
        }
        if let Some(minimum) = self.minimum_guest_svn
            && claims.guest_svn < minimum
        {
            out.push(SnpMismatch::GuestSvn {
                minimum,
                actual: claims.guest_svn,
            });
        }
        if let Some(minimum) = &self.minimum_tcb {
            check_tcb(
                &mut out,
                TcbField::Reported,
                minimum,
                &claims.reported_tcb.parts,
            );
        }
        if let Some(minimum) = self
            .minimum_committed_tcb
            .as_ref()
            .or(self.minimum_tcb.as_ref())
        {
            check_tcb(
                &mut out,
                TcbField::Committed,
                minimum,
                &claims.committed_tcb.parts,
            );
        }
        if let Some(minimum) = self
            .minimum_launch_tcb
            .as_ref()
            .or(self.minimum_tcb.as_ref())
        {
            check_tcb(
                &mut out,
                TcbField::Launch,
                minimum,
                &claims.launch_tcb.parts,
            );
        }
        let reference = self.guest_policy.unwrap_or(ReferencePolicy::ABSENT);
        check_policy(&mut out, &reference, claims.guest_policy());
        if let Some(required) = &self.platform_info {
            let p = claims.platform();
            for (name, req, present) in [
                ("SMTEnabled", required.smt_enabled, p.smt_enabled()),
                ("TSMEEnabled", required.tsme_enabled, p.tsme_enabled()),
                ("ECCEnabled", required.ecc_enabled, p.ecc_enabled()),
                ("RAPLDisabled", required.rapl_disabled, p.rapl_disabled()),
                (
                    "CiphertextHidingDRAMEnabled",
                    required.ciphertext_hiding_dram_enabled,
                    p.ciphertext_hiding_dram_enabled(),
                ),
                (
                    "AliasCheckComplete",
                    required.alias_check_complete,
                    p.alias_check_complete(),
                ),
                ("TIOEnabled", required.tio_enabled, p.tio_enabled()),
            ] {
                if req && !present {
                    out.push(SnpMismatch::PlatformInfo { name });
                }
            }
        }
        if !self.allowed_chip_ids.is_empty() && !self.allowed_chip_ids.contains(&claims.chip_id) {
            out.push(SnpMismatch::ChipIdNotAllowed {
                actual: hex::encode(&claims.chip_id.0),
            });
        }
        if !self.trusted_id_key_digests.is_empty()
            && !self.trusted_id_key_digests.contains(&claims.id_key_digest)
        {
            out.push(SnpMismatch::IdKeyDigestNotTrusted {
                actual: hex::encode(&claims.id_key_digest.0),
            });
        }
        let author_trusted = claims.author_key_en
            && self
                .trusted_author_key_digests
                .contains(&claims.author_key_digest);
        if !self.trusted_author_key_digests.is_empty() && !author_trusted {
            let actual = if claims.author_key_en {
                hex::encode(&claims.author_key_digest.0)
            } else {
                String::new()
            };
            out.push(SnpMismatch::AuthorKeyDigestNotTrusted { actual });
        }
        if let Some(required) = self.minimum_mitigation_vector
            && required != 0
        {
            for (field, actual) in [
                ("launch_mit_vector", claims.launch_mit_vector),
                ("current_mit_vector", claims.current_mit_vector),
            ] {
                if actual.is_none_or(|v| v & required != required) {
                    out.push(SnpMismatch::MitigationVector {
                        field,
                        required,
                        actual,
                    });
                }
            }
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }
}

/// The policy used when no reference values are given: authenticity only,
/// but debug-enabled guests are refused unless `allow_debug`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultPolicy {
    /// Accept guests whose policy allows debugging (their memory is readable
    /// by the host). Off by default.
    pub allow_debug: bool,
}

impl DefaultPolicy {
    /// Applies the policy.
    pub fn check(&self, claims: &SnpClaims) -> Result<(), Vec<SnpMismatch>> {
        if claims.policy.debug && !self.allow_debug {
            return Err(alloc::vec![SnpMismatch::PolicyDebug {
                expected: false,
                actual: true
            }]);
        }
        Ok(())
    }
}
