//! TDX reference values and their comparison with a verified quote
//! (extract → expect → compare).
//!
//! [`TdxReferenceValues`] uses the JSON names of the manifest format accord
//! is modelled on (`MrTd`, `MrSeam`, `Rtmrs`, `Xfam`, `AllowedPIIDs`,
//! `MinTCBEvaluationDataNumber`, `MemoryIntegrity`, `SMTDisabled`,
//! `StaticPlatform`) plus accord's own fields (`MrConfigId` or
//! `PolicyHash`, `MrSignerSeam`, `TdAttributes`, `AcceptedTcbStatuses`,
//! `ReportData`). [`TdxReferenceValues::expect`] turns them into
//! [`Expected`] values; [`Expected::compare`] checks a
//! [`VerifiedQuote`] and reports the first mismatch, naming the field and
//! both values.
//!
//! Absent fields are not checked, except the ones below, which fail
//! closed.
//!
//! # Defaults
//!
//! - **Without `TdAttributes`**, TDATTRIBUTES must pass
//!   [`check_default_td_attributes`]:
//!   - refused when set, each by name ([`ReferenceError::TdAttributeNotAllowed`]):
//!     DEBUG (bit 0: the host reads and writes the TD's memory and vCPU
//!     state), the profiling bits HGS_PLUS_PROF, PERF_PROF and PMT_PROF
//!     (bits 4–6: the host observes the TD's execution) and MIGRATABLE
//!     (bit 29: a migration TD may move the TD, and its keys, elsewhere);
//!   - required ([`ReferenceError::TdAttributeRequired`]): SEPT_VE_DISABLE
//!     (bit 28: otherwise the host can make the TD take #VE on private
//!     pages it has not accepted);
//!   - allowed either way: ICSSD (16), LASS (27), PKS (30), KL (31), TPA
//!     (62) and PERFMON (63), which only give the TD CPU features or
//!     defences;
//!   - every other bit is reserved and must be zero
//!     ([`ReferenceError::ReservedTdAttributes`], naming the bits).
//!
//!   With `TdAttributes`, TDATTRIBUTES must equal it exactly, so an entry
//!   that trusts a debug TD (or one without SEPT_VE_DISABLE) says so bit
//!   for bit.
//! - **Without `AcceptedTcbStatuses`** only `UpToDate` is accepted.
//! - **`MinTCBEvaluationDataNumber`** is required of manifest entries by
//!   manifest validation; an entry built in code without it accepts any
//!   number.
//! - **Without `InsecureTrustedRoot`** the collateral and the PCK chain must
//!   chain to the pinned Intel SGX Root CA. With it (the INSECURE simulated
//!   TDX), they must chain to the named root instead, for that entry only.
//!
//! The TDATTRIBUTES layout is that of the Intel TDX Module ABI
//! specification (`TD_ATTRIBUTES`), with the bit names Linux uses
//! (`arch/x86/include/asm/shared/tdx.h`): the TUD group (bits 7:0, "TD
//! under debug"; later revisions split off TUP, "TD under profiling", as
//! bits 15:4), the SEC group (bits 31:16 in later revisions, 31:8 before:
//! attributes that affect the TD's security) and the OTHER group (bits
//! 63:32, no effect on the TD's security).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::evidence::BitList;
use crate::hex::{self, Hex};

use super::pck::SgxType;
use super::tcb::TcbStatus;
use super::verify::{TcbStatusSet, VerifiedQuote};

/// A fixed-size byte string written as hex in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Serialize for HexBytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode_array(&text)
            .map(HexBytes)
            .map_err(serde::de::Error::custom)
    }
}

/// Reference values for TDX, as they appear in a manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxReferenceValues {
    /// Free-form platform label (not compared).
    #[serde(rename = "Platform", default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Minimum TCB evaluation data number of the collateral (0 = any).
    #[serde(
        rename = "MinTCBEvaluationDataNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub min_tcb_evaluation_data_number: Option<u32>,
    /// Expected MRTD.
    #[serde(rename = "MrTd", default, skip_serializing_if = "Option::is_none")]
    pub mr_td: Option<HexBytes<48>>,
    /// Expected MRSEAM.
    #[serde(rename = "MrSeam", default, skip_serializing_if = "Option::is_none")]
    pub mr_seam: Option<HexBytes<48>>,
    /// Expected RTMR0..RTMR3.
    #[serde(rename = "Rtmrs", default, skip_serializing_if = "Option::is_none")]
    pub rtmrs: Option<[HexBytes<48>; 4]>,
    /// Expected XFAM.
    #[serde(rename = "Xfam", default, skip_serializing_if = "Option::is_none")]
    pub xfam: Option<HexBytes<8>>,
    /// If non-empty, the PCK certificate's platform instance id must be one of these.
    #[serde(
        rename = "AllowedPIIDs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allowed_piids: Vec<HexBytes<16>>,
    /// Require SGX type "Scalable with integrity".
    #[serde(rename = "MemoryIntegrity", default)]
    pub memory_integrity: bool,
    /// Require SMT to be disabled (PCK platform configuration).
    #[serde(rename = "SMTDisabled", default)]
    pub smt_disabled: bool,
    /// Require a non-dynamic platform (PCK platform configuration).
    #[serde(rename = "StaticPlatform", default)]
    pub static_platform: bool,
    /// Expected MRCONFIGID (48 bytes).
    #[serde(
        rename = "MrConfigId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mr_config_id: Option<HexBytes<48>>,
    /// Policy hash: MRCONFIGID must be this ‖ 16 zero bytes.
    #[serde(
        rename = "PolicyHash",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub policy_hash: Option<HexBytes<32>>,
    /// Expected MRSIGNERSEAM.
    #[serde(
        rename = "MrSignerSeam",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mr_signer_seam: Option<HexBytes<48>>,
    /// Expected TDATTRIBUTES, exactly (default: the module docs' rule,
    /// [`check_default_td_attributes`]).
    #[serde(
        rename = "TdAttributes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub td_attributes: Option<HexBytes<8>>,
    /// Accepted TCB statuses (default `["UpToDate"]`).
    #[serde(
        rename = "AcceptedTcbStatuses",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub accepted_tcb_statuses: Option<Vec<TcbStatus>>,
    /// Expected REPORTDATA.
    #[serde(
        rename = "ReportData",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub report_data: Option<HexBytes<64>>,
    /// Replaces the pinned Intel SGX Root CA with this root for this entry
    /// only (the INSECURE simulated TDX). Absent means Intel's genuine root
    /// only; evidence from the simulated TDX verifies only when its root is
    /// named here explicitly.
    #[serde(
        rename = "InsecureTrustedRoot",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_trusted_root: Option<TrustedRoot>,
}

/// A caller-chosen root CA certificate (hex of DER) that replaces the
/// Intel SGX Root CA: PCK chains, CRLs and TCB signing certificates must
/// chain to it instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedRoot {
    /// The root CA certificate (self-signed), hex of DER.
    #[serde(rename = "RootCA", with = "crate::hex::serde_bytes")]
    pub root_ca: Vec<u8>,
}

/// A reference field that can mismatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceField {
    /// `MrTd`.
    MrTd,
    /// `MrSeam`.
    MrSeam,
    /// `Rtmrs[i]`.
    Rtmr(u8),
    /// `Xfam`.
    Xfam,
    /// `MrConfigId` (or `PolicyHash` ‖ 16 zero bytes).
    MrConfigId,
    /// `MrSignerSeam`.
    MrSignerSeam,
    /// `TdAttributes`.
    TdAttributes,
    /// `ReportData`.
    ReportData,
}

impl fmt::Display for ReferenceField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MrTd => f.write_str("MrTd"),
            Self::MrSeam => f.write_str("MrSeam"),
            Self::Rtmr(i) => write!(f, "Rtmrs[{i}]"),
            Self::Xfam => f.write_str("Xfam"),
            Self::MrConfigId => f.write_str("MrConfigId"),
            Self::MrSignerSeam => f.write_str("MrSignerSeam"),
            Self::TdAttributes => f.write_str("TdAttributes"),
            Self::ReportData => f.write_str("ReportData"),
        }
    }
}

/// Up to 64 bytes, inline.
pub type FieldBytes = heapless::Vec<u8, 64>;

fn bytes(b: &[u8]) -> FieldBytes {
    let mut out = FieldBytes::new();
    // Fields are at most 64 bytes by construction.
    let _ = out.extend_from_slice(b.get(..b.len().min(64)).unwrap_or(&[]));
    out
}

/// A field whose measured value differs from its reference value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The field.
    pub field: ReferenceField,
    /// The reference value.
    pub expected: FieldBytes,
    /// The quote's value.
    pub actual: FieldBytes,
}

/// A named bit of TDATTRIBUTES (Intel TDX Module ABI, `TD_ATTRIBUTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TdAttribute {
    /// Bit 0, DEBUG: off-TD debug; the host can read and write the TD.
    Debug,
    /// Bit 4, HGS_PLUS_PROF: Hardware-Guided Scheduling+ profiling.
    HgsPlusProf,
    /// Bit 5, PERF_PROF: profiling with performance-monitoring counters
    /// that keep counting across TD entries and exits.
    PerfProf,
    /// Bit 6, PMT_PROF: profiling with platform monitoring telemetry.
    PmtProf,
    /// Bit 16, ICSSD: instruction-count based single-step defence.
    Icssd,
    /// Bit 27, LASS: linear address space separation.
    Lass,
    /// Bit 28, SEPT_VE_DISABLE: no #VE when the TD touches a private page
    /// it has not accepted.
    SeptVeDisable,
    /// Bit 29, MIGRATABLE: the TD may be migrated by a migration TD.
    Migratable,
    /// Bit 30, PKS: supervisor protection keys.
    Pks,
    /// Bit 31, KL: Key Locker.
    Kl,
    /// Bit 62, TPA: the TD is a TDX Connect provisioning agent.
    Tpa,
    /// Bit 63, PERFMON: the TD may use performance monitoring.
    Perfmon,
}

impl TdAttribute {
    /// Every named bit, in bit order.
    pub const ALL: [Self; 12] = [
        Self::Debug,
        Self::HgsPlusProf,
        Self::PerfProf,
        Self::PmtProf,
        Self::Icssd,
        Self::Lass,
        Self::SeptVeDisable,
        Self::Migratable,
        Self::Pks,
        Self::Kl,
        Self::Tpa,
        Self::Perfmon,
    ];

    /// The bit's number in TDATTRIBUTES (little-endian, bit 0 = the lowest
    /// bit of byte 0).
    pub const fn bit(self) -> u32 {
        match self {
            Self::Debug => 0,
            Self::HgsPlusProf => 4,
            Self::PerfProf => 5,
            Self::PmtProf => 6,
            Self::Icssd => 16,
            Self::Lass => 27,
            Self::SeptVeDisable => 28,
            Self::Migratable => 29,
            Self::Pks => 30,
            Self::Kl => 31,
            Self::Tpa => 62,
            Self::Perfmon => 63,
        }
    }

    /// The bit's mask in TDATTRIBUTES read as a little-endian `u64`.
    pub const fn mask(self) -> u64 {
        1 << self.bit()
    }

    /// The specification's name (`SEPT_VE_DISABLE`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::HgsPlusProf => "HGS_PLUS_PROF",
            Self::PerfProf => "PERF_PROF",
            Self::PmtProf => "PMT_PROF",
            Self::Icssd => "ICSSD",
            Self::Lass => "LASS",
            Self::SeptVeDisable => "SEPT_VE_DISABLE",
            Self::Migratable => "MIGRATABLE",
            Self::Pks => "PKS",
            Self::Kl => "KL",
            Self::Tpa => "TPA",
            Self::Perfmon => "PERFMON",
        }
    }

    /// What an entry without `TdAttributes` says of this bit: `Some(false)`
    /// refused, `Some(true)` required, `None` either way.
    pub const fn default_rule(self) -> Option<bool> {
        match self {
            Self::Debug | Self::HgsPlusProf | Self::PerfProf | Self::PmtProf | Self::Migratable => {
                Some(false)
            }
            Self::SeptVeDisable => Some(true),
            Self::Icssd | Self::Lass | Self::Pks | Self::Kl | Self::Tpa | Self::Perfmon => None,
        }
    }
}

impl fmt::Display for TdAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (bit {})", self.name(), self.bit())
    }
}

/// Applies the rule for an entry without `TdAttributes` (module docs) to
/// TDATTRIBUTES as it appears in the quote: refused bits first (in bit
/// order), then reserved bits, then required ones. Returns the first
/// violation.
pub fn check_default_td_attributes(td_attributes: &[u8; 8]) -> Result<(), ReferenceError> {
    let attributes = u64::from_le_bytes(*td_attributes);
    for attribute in TdAttribute::ALL {
        if attribute.default_rule() == Some(false) && attributes & attribute.mask() != 0 {
            return Err(ReferenceError::TdAttributeNotAllowed(attribute));
        }
    }
    let named = TdAttribute::ALL
        .iter()
        .fold(0, |mask, attribute| mask | attribute.mask());
    let reserved = attributes & !named;
    if reserved != 0 {
        return Err(ReferenceError::ReservedTdAttributes { bits: reserved });
    }
    for attribute in TdAttribute::ALL {
        if attribute.default_rule() == Some(true) && attributes & attribute.mask() == 0 {
            return Err(ReferenceError::TdAttributeRequired(attribute));
        }
    }
    Ok(())
}

/// A reference value that the verified quote does not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// A measured field differs from its reference value (boxed to keep
    /// the error small; only the failure path allocates).
    Mismatch(Box<Mismatch>),
    /// No `TdAttributes`: a TDATTRIBUTES bit the default refuses is set
    /// (DEBUG, a profiling bit or MIGRATABLE).
    TdAttributeNotAllowed(TdAttribute),
    /// No `TdAttributes`: a TDATTRIBUTES bit the default requires is clear
    /// (SEPT_VE_DISABLE).
    TdAttributeRequired(TdAttribute),
    /// No `TdAttributes`: reserved TDATTRIBUTES bits are set.
    ReservedTdAttributes {
        /// The reserved bits that are set (TDATTRIBUTES as a little-endian
        /// `u64`, masked).
        bits: u64,
    },
    /// The TD is bound to service TDs (non-zero MRSERVICETD); reference
    /// values do not allow that yet.
    ServiceTd,
    /// The TCB status is not among `AcceptedTcbStatuses`.
    TcbStatusNotAccepted(TcbStatus),
    /// The collateral's TCB evaluation data number is below the minimum.
    TcbEvaluationDataNumber {
        /// `MinTCBEvaluationDataNumber`.
        minimum: u32,
        /// The collateral's number.
        actual: u32,
    },
    /// The platform instance id is not in `AllowedPIIDs` (or is absent).
    PiidNotAllowed(Option<[u8; 16]>),
    /// `MemoryIntegrity` is required but the SGX type is another.
    MemoryIntegrity(SgxType),
    /// `SMTDisabled` is required but SMT is enabled or unknown.
    SmtEnabled(Option<bool>),
    /// `StaticPlatform` is required but the platform is dynamic or unknown.
    DynamicPlatform(Option<bool>),
    /// Both `MrConfigId` and `PolicyHash` are set and disagree.
    Conflicting,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mismatch(m) => {
                write!(
                    f,
                    "{} mismatch: expected {}, got {}",
                    m.field,
                    Hex(&m.expected),
                    Hex(&m.actual)
                )
            }
            Self::TdAttributeNotAllowed(attribute) => write!(
                f,
                "TdAttributes: {attribute} is set, which an entry without TdAttributes refuses"
            ),
            Self::TdAttributeRequired(attribute) => write!(
                f,
                "TdAttributes: {attribute} is clear, which an entry without TdAttributes requires"
            ),
            Self::ReservedTdAttributes { bits } => write!(
                f,
                "TdAttributes: reserved bit(s) {} set ({bits:#018x}), expected zero",
                BitList(*bits)
            ),
            Self::ServiceTd => {
                f.write_str("MRSERVICETD is not zero: service-TD binding is not allowed")
            }
            Self::TcbStatusNotAccepted(s) => {
                write!(f, "AcceptedTcbStatuses: TCB status {s} is not accepted")
            }
            Self::TcbEvaluationDataNumber { minimum, actual } => write!(
                f,
                "MinTCBEvaluationDataNumber: expected at least {minimum}, collateral has {actual}"
            ),
            Self::PiidNotAllowed(Some(piid)) => {
                write!(f, "AllowedPIIDs: PIID {} is not allowed", Hex(piid))
            }
            Self::PiidNotAllowed(None) => {
                f.write_str("AllowedPIIDs: the PCK certificate has no PIID")
            }
            Self::MemoryIntegrity(t) => write!(
                f,
                "MemoryIntegrity: SGX type is {t:?}, not ScalableWithIntegrity"
            ),
            Self::SmtEnabled(v) => write!(f, "SMTDisabled: SMT enabled is {v:?}"),
            Self::DynamicPlatform(v) => write!(f, "StaticPlatform: dynamic platform is {v:?}"),
            Self::Conflicting => f.write_str("MrConfigId and PolicyHash disagree"),
        }
    }
}

impl core::error::Error for ReferenceError {}

/// The expectations derived from reference values (the "expect" step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Byte fields that must match exactly.
    pub fields: Vec<(ReferenceField, FieldBytes)>,
    /// Whether TDATTRIBUTES is checked with [`check_default_td_attributes`]
    /// (the entry has no `TdAttributes`; otherwise it is in `fields`).
    pub default_td_attributes: bool,
    /// Accepted TCB statuses.
    pub accepted_tcb_statuses: TcbStatusSet,
    /// Minimum TCB evaluation data number.
    pub min_tcb_evaluation_data_number: u32,
    /// Allowed platform instance ids (empty = any).
    pub allowed_piids: Vec<[u8; 16]>,
    /// Require SGX type "Scalable with integrity".
    pub memory_integrity: bool,
    /// Require SMT disabled.
    pub smt_disabled: bool,
    /// Require a static platform.
    pub static_platform: bool,
}

impl TdxReferenceValues {
    /// Derives the expectations.
    pub fn expect(&self) -> Result<Expected, ReferenceError> {
        let mut fields = Vec::new();
        let mut push = |field, value: &[u8]| fields.push((field, bytes(value)));
        if let Some(v) = &self.mr_td {
            push(ReferenceField::MrTd, &v.0);
        }
        if let Some(v) = &self.mr_seam {
            push(ReferenceField::MrSeam, &v.0);
        }
        if let Some(rtmrs) = &self.rtmrs {
            for (i, v) in (0u8..).zip(rtmrs) {
                push(ReferenceField::Rtmr(i), &v.0);
            }
        }
        if let Some(v) = &self.xfam {
            push(ReferenceField::Xfam, &v.0);
        }
        let from_hash = self.policy_hash.map(|h| {
            let mut id = [0u8; 48];
            if let Some(head) = id.get_mut(..32) {
                head.copy_from_slice(&h.0);
            }
            id
        });
        match (self.mr_config_id, from_hash) {
            (Some(a), Some(b)) if a.0 != b => return Err(ReferenceError::Conflicting),
            (Some(HexBytes(v)), _) | (None, Some(v)) => push(ReferenceField::MrConfigId, &v),
            (None, None) => {}
        }
        if let Some(v) = &self.mr_signer_seam {
            push(ReferenceField::MrSignerSeam, &v.0);
        }
        if let Some(v) = &self.td_attributes {
            push(ReferenceField::TdAttributes, &v.0);
        }
        if let Some(v) = &self.report_data {
            push(ReferenceField::ReportData, &v.0);
        }
        Ok(Expected {
            fields,
            default_td_attributes: self.td_attributes.is_none(),
            accepted_tcb_statuses: match &self.accepted_tcb_statuses {
                Some(list) => TcbStatusSet::of(list),
                None => TcbStatusSet::UP_TO_DATE,
            },
            min_tcb_evaluation_data_number: self.min_tcb_evaluation_data_number.unwrap_or(0),
            allowed_piids: self.allowed_piids.iter().map(|p| p.0).collect(),
            memory_integrity: self.memory_integrity,
            smt_disabled: self.smt_disabled,
            static_platform: self.static_platform,
        })
    }
}

impl Expected {
    /// Compares a verified quote with the expectations (the "compare" step).
    pub fn compare(&self, verified: &VerifiedQuote<'_, '_>) -> Result<(), ReferenceError> {
        let body = &verified.quote.body;
        for (field, expected) in &self.fields {
            let actual: &[u8] = match field {
                ReferenceField::MrTd => body.mr_td,
                ReferenceField::MrSeam => body.mr_seam,
                ReferenceField::Rtmr(i) => {
                    body.rtmrs.get(usize::from(*i)).map_or(&[][..], |r| &r[..])
                }
                ReferenceField::Xfam => body.xfam,
                ReferenceField::MrConfigId => body.mr_config_id,
                ReferenceField::MrSignerSeam => body.mr_signer_seam,
                ReferenceField::TdAttributes => body.td_attributes,
                ReferenceField::ReportData => body.report_data,
            };
            if actual != expected.as_slice() {
                return Err(ReferenceError::Mismatch(Box::new(Mismatch {
                    field: *field,
                    expected: expected.clone(),
                    actual: bytes(actual),
                })));
            }
        }
        if self.default_td_attributes {
            check_default_td_attributes(body.td_attributes)?;
        }
        if body.has_service_td() {
            return Err(ReferenceError::ServiceTd);
        }
        let status = verified.tcb.status;
        if status == TcbStatus::Revoked || !self.accepted_tcb_statuses.contains(status) {
            return Err(ReferenceError::TcbStatusNotAccepted(status));
        }
        let number = verified.collateral.tcb_info().tcb_evaluation_data_number;
        if number < self.min_tcb_evaluation_data_number {
            return Err(ReferenceError::TcbEvaluationDataNumber {
                minimum: self.min_tcb_evaluation_data_number,
                actual: number,
            });
        }
        let pck = &verified.pck;
        if !self.allowed_piids.is_empty() {
            match pck.platform_instance_id {
                Some(piid) if self.allowed_piids.contains(&piid) => {}
                other => return Err(ReferenceError::PiidNotAllowed(other)),
            }
        }
        if self.memory_integrity && pck.sgx_type != SgxType::ScalableWithIntegrity {
            return Err(ReferenceError::MemoryIntegrity(pck.sgx_type));
        }
        let config = pck.configuration.unwrap_or_default();
        if self.smt_disabled && config.smt_enabled != Some(false) {
            return Err(ReferenceError::SmtEnabled(config.smt_enabled));
        }
        if self.static_platform && config.dynamic_platform != Some(false) {
            return Err(ReferenceError::DynamicPlatform(config.dynamic_platform));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::{ReferenceError, TdAttribute, check_default_td_attributes};

    const SEPT_VE_DISABLE: u64 = 1 << 28;

    fn check(attributes: u64) -> Result<(), ReferenceError> {
        check_default_td_attributes(&attributes.to_le_bytes())
    }

    #[test]
    fn default_td_attributes_require_sept_ve_disable_and_nothing_else() {
        // What every real TD but two in the test vectors carries.
        check(SEPT_VE_DISABLE).unwrap();
        assert_eq!(
            check(0),
            Err(ReferenceError::TdAttributeRequired(
                TdAttribute::SeptVeDisable
            ))
        );
        assert_eq!(
            check(0).unwrap_err().to_string(),
            "TdAttributes: SEPT_VE_DISABLE (bit 28) is clear, which an entry without \
             TdAttributes requires"
        );
    }

    #[test]
    fn each_named_bit_follows_its_default_rule() {
        for attribute in TdAttribute::ALL {
            let result = check(SEPT_VE_DISABLE | attribute.mask());
            match attribute.default_rule() {
                Some(false) => {
                    assert_eq!(
                        result,
                        Err(ReferenceError::TdAttributeNotAllowed(attribute)),
                        "{attribute}"
                    );
                    let text = result.unwrap_err().to_string();
                    assert!(
                        text.contains(&alloc::format!(
                            "{} (bit {}) is set",
                            attribute.name(),
                            attribute.bit()
                        )),
                        "{text}"
                    );
                }
                Some(true) | None => assert_eq!(result, Ok(()), "{attribute}"),
            }
        }
        let refused: alloc::vec::Vec<&str> = TdAttribute::ALL
            .iter()
            .filter(|a| a.default_rule() == Some(false))
            .map(|a| a.name())
            .collect();
        assert_eq!(
            refused,
            [
                "DEBUG",
                "HGS_PLUS_PROF",
                "PERF_PROF",
                "PMT_PROF",
                "MIGRATABLE"
            ]
        );
        // The bits are where the TDX module ABI puts them: TDATTRIBUTES of
        // a quote is little-endian, so DEBUG is the low bit of byte 0.
        assert_eq!(TdAttribute::Debug.mask().to_le_bytes()[0], 1);
        assert_eq!(TdAttribute::SeptVeDisable.mask().to_le_bytes()[3], 0x10);
        assert_eq!(TdAttribute::Migratable.mask().to_le_bytes()[3], 0x20);
        assert_eq!(TdAttribute::Perfmon.mask().to_le_bytes()[7], 0x80);
    }

    #[test]
    fn every_unnamed_bit_is_reserved() {
        let named = TdAttribute::ALL.iter().fold(0, |m, a| m | a.mask());
        for bit in (0..64).filter(|bit| named >> bit & 1 == 0) {
            assert_eq!(
                check(SEPT_VE_DISABLE | 1 << bit),
                Err(ReferenceError::ReservedTdAttributes { bits: 1 << bit }),
                "bit {bit}"
            );
        }
        let err = check(SEPT_VE_DISABLE | 1 << 1 | 1 << 40).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TdAttributes: reserved bit(s) 1, 40 set (0x0000010000000002), expected zero"
        );
    }

    #[test]
    fn refused_bits_are_reported_before_reserved_and_missing_ones() {
        // DEBUG, a reserved bit, and no SEPT_VE_DISABLE: DEBUG is named.
        assert_eq!(
            check(1 | 1 << 2),
            Err(ReferenceError::TdAttributeNotAllowed(TdAttribute::Debug))
        );
        // A reserved bit and no SEPT_VE_DISABLE: the reserved bit is named.
        assert_eq!(
            check(1 << 2),
            Err(ReferenceError::ReservedTdAttributes { bits: 1 << 2 })
        );
    }
}
