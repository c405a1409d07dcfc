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
//! Absent fields are not checked, with two exceptions that fail closed:
//! without `TdAttributes` the DEBUG bit must be off, and without
//! `AcceptedTcbStatuses` only `UpToDate` is accepted.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// Expected TDATTRIBUTES (default: only require DEBUG off).
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

/// A reference value that the verified quote does not meet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceError {
    /// A measured field differs from its reference value (boxed to keep
    /// the error small; only the failure path allocates).
    Mismatch(Box<Mismatch>),
    /// The TD has DEBUG set but the reference values do not allow it.
    DebugNotAllowed,
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
            Self::DebugNotAllowed => f.write_str("TdAttributes: DEBUG is set but not allowed"),
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
    /// Whether DEBUG is allowed (only when `TdAttributes` says so).
    pub allow_debug: bool,
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
            allow_debug: self.td_attributes.is_some_and(|a| a.0[0] & 1 != 0),
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
        if body.debug() && !self.allow_debug {
            return Err(ReferenceError::DebugNotAllowed);
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
