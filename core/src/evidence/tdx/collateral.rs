//! DCAP collateral: the inputs that endorse a quote, fetched by the caller
//! (never by the core) from Intel PCS or a PCCS.
//!
//! [`Collateral`] holds the raw inputs in the shape of Phala dcap-qvl's
//! `QuoteCollateralV3` JSON (`pck_crl_issuer_chain`, `root_ca_crl` hex DER,
//! `pck_crl` hex DER, `tcb_info_issuer_chain`, `tcb_info` = the exact signed
//! JSON text, `tcb_info_signature` hex `r ‖ s`, `qe_identity_issuer_chain`,
//! `qe_identity`, `qe_identity_signature`). [`Collateral::from_pcs_parts`]
//! builds the same from raw Intel PCS v4 responses, whose signed bytes are
//! the exact text between `{"tcbInfo":` (or `{"enclaveIdentity":`) and
//! `,"signature"`; nothing is ever re-serialized.
//!
//! [`TcbInfo`] and [`QeIdentity`] are the parsed, checked forms of the signed
//! documents (TCB info v3 with id `TDX`, enclave identity v2 with id
//! `TD_QE`); any other id or version is rejected.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::hex;
use crate::time::UnixTime;

use super::error::CollateralError;
use super::tcb::TcbStatus;

/// The raw collateral for one FMSPC, as the caller obtained it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collateral {
    /// PEM chain of the PCK CRL issuer: PCK Platform/Processor CA, Root CA.
    pub pck_crl_issuer_chain: String,
    /// DER of the Root CA CRL.
    pub root_ca_crl: Vec<u8>,
    /// DER of the PCK CRL.
    pub pck_crl: Vec<u8>,
    /// PEM chain of the TCB info signer: TCB Signing cert, Root CA.
    pub tcb_info_issuer_chain: String,
    /// The exact signed text of the `tcbInfo` object.
    pub tcb_info: String,
    /// ECDSA P-256 `r ‖ s` over [`Collateral::tcb_info`].
    pub tcb_info_signature: [u8; 64],
    /// PEM chain of the QE identity signer: TCB Signing cert, Root CA.
    pub qe_identity_issuer_chain: String,
    /// The exact signed text of the `enclaveIdentity` object.
    pub qe_identity: String,
    /// ECDSA P-256 `r ‖ s` over [`Collateral::qe_identity`].
    pub qe_identity_signature: [u8; 64],
}

/// The JSON form, with binary fields as hex strings.
#[derive(Deserialize, Serialize)]
struct CollateralJson {
    pck_crl_issuer_chain: String,
    root_ca_crl: String,
    pck_crl: String,
    tcb_info_issuer_chain: String,
    tcb_info: String,
    tcb_info_signature: String,
    qe_identity_issuer_chain: String,
    qe_identity: String,
    qe_identity_signature: String,
}

fn field(field: &'static str) -> CollateralError {
    CollateralError::Field {
        document: "collateral",
        field,
    }
}

/// Splits a PCS response `{"<key>":<signed>,"signature":"<hex>"}` into the
/// exact signed text and the decoded signature.
fn split_pcs<'t>(text: &'t str, key: &'static str) -> Result<(&'t str, [u8; 64]), CollateralError> {
    #[derive(Deserialize)]
    struct Envelope {
        signature: String,
    }
    let envelope_err = CollateralError::PcsEnvelope { key };
    let trimmed = text.trim();
    let after_brace = trimmed.strip_prefix('{').ok_or(envelope_err)?;
    let after_key = after_brace
        .trim_start()
        .strip_prefix('"')
        .and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('"'))
        .ok_or(envelope_err)?
        .trim_start()
        .strip_prefix(':')
        .ok_or(envelope_err)?;
    let end = after_key.rfind(",\"signature\"").ok_or(envelope_err)?;
    let signed = after_key.get(..end).ok_or(envelope_err)?;
    // The whole envelope must be valid JSON with exactly these two members.
    let mut value: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(trimmed).map_err(|_| envelope_err)?;
    if value.len() != 2 || value.remove(key).is_none() {
        return Err(envelope_err);
    }
    let envelope: Envelope =
        serde_json::from_value(serde_json::Value::Object(value)).map_err(|_| envelope_err)?;
    let signature = hex::decode_array(&envelope.signature).map_err(|_| envelope_err)?;
    Ok((signed, signature))
}

impl Collateral {
    /// Parses the `QuoteCollateralV3` JSON form. Unknown members (such as
    /// dcap-qvl's optional `pck_certificate_chain`) are ignored.
    pub fn from_json(text: &[u8]) -> Result<Self, CollateralError> {
        let raw: CollateralJson =
            serde_json::from_slice(text).map_err(|_| CollateralError::Json)?;
        Ok(Self {
            pck_crl_issuer_chain: raw.pck_crl_issuer_chain,
            root_ca_crl: hex::decode(&raw.root_ca_crl).map_err(|_| field("root_ca_crl"))?,
            pck_crl: hex::decode(&raw.pck_crl).map_err(|_| field("pck_crl"))?,
            tcb_info_issuer_chain: raw.tcb_info_issuer_chain,
            tcb_info: raw.tcb_info,
            tcb_info_signature: hex::decode_array(&raw.tcb_info_signature)
                .map_err(|_| field("tcb_info_signature"))?,
            qe_identity_issuer_chain: raw.qe_identity_issuer_chain,
            qe_identity: raw.qe_identity,
            qe_identity_signature: hex::decode_array(&raw.qe_identity_signature)
                .map_err(|_| field("qe_identity_signature"))?,
        })
    }

    /// The `QuoteCollateralV3` JSON form (binary fields as lowercase hex).
    pub fn to_json(&self) -> String {
        let raw = CollateralJson {
            pck_crl_issuer_chain: self.pck_crl_issuer_chain.clone(),
            root_ca_crl: hex::encode(&self.root_ca_crl),
            pck_crl: hex::encode(&self.pck_crl),
            tcb_info_issuer_chain: self.tcb_info_issuer_chain.clone(),
            tcb_info: self.tcb_info.clone(),
            tcb_info_signature: hex::encode(&self.tcb_info_signature),
            qe_identity_issuer_chain: self.qe_identity_issuer_chain.clone(),
            qe_identity: self.qe_identity.clone(),
            qe_identity_signature: hex::encode(&self.qe_identity_signature),
        };
        serde_json::to_string(&raw).unwrap_or_default()
    }

    /// Builds collateral from raw Intel PCS v4 responses: the TCB info and QE
    /// identity response bodies, the issuer chains from the
    /// `TCB-Info-Issuer-Chain` / `SGX-Enclave-Identity-Issuer-Chain` /
    /// `SGX-PCK-CRL-Issuer-Chain` headers (URL-decoded PEM), and the DER CRLs.
    pub fn from_pcs_parts(
        tcb_info_response: &str,
        tcb_info_issuer_chain: &str,
        qe_identity_response: &str,
        qe_identity_issuer_chain: &str,
        pck_crl_der: &[u8],
        pck_crl_issuer_chain: &str,
        root_ca_crl_der: &[u8],
    ) -> Result<Self, CollateralError> {
        let (tcb_info, tcb_info_signature) = split_pcs(tcb_info_response, "tcbInfo")?;
        let (qe_identity, qe_identity_signature) =
            split_pcs(qe_identity_response, "enclaveIdentity")?;
        Ok(Self {
            pck_crl_issuer_chain: pck_crl_issuer_chain.into(),
            root_ca_crl: root_ca_crl_der.to_vec(),
            pck_crl: pck_crl_der.to_vec(),
            tcb_info_issuer_chain: tcb_info_issuer_chain.into(),
            tcb_info: tcb_info.into(),
            tcb_info_signature,
            qe_identity_issuer_chain: qe_identity_issuer_chain.into(),
            qe_identity: qe_identity.into(),
            qe_identity_signature,
        })
    }

    /// Replaces the TCB info with the one of a PCS response body.
    pub fn with_pcs_tcb_info(mut self, tcb_info_response: &str) -> Result<Self, CollateralError> {
        let (text, signature) = split_pcs(tcb_info_response, "tcbInfo")?;
        self.tcb_info = text.into();
        self.tcb_info_signature = signature;
        Ok(self)
    }
}

// ---------------------------------------------------------------------------
// TCB info (v3, TDX)

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbInfo {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    fmspc: String,
    pce_id: String,
    tcb_type: u32,
    tcb_evaluation_data_number: u32,
    tdx_module: Option<RawTdxModule>,
    #[serde(default)]
    tdx_module_identities: Vec<RawTdxModuleIdentity>,
    tcb_levels: Vec<RawTcbLevel>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTdxModule {
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTdxModuleIdentity {
    id: String,
    mrsigner: String,
    attributes: String,
    attributes_mask: String,
    tcb_levels: Vec<RawIsvTcbLevel>,
}

#[derive(Deserialize)]
struct RawSvn {
    svn: u8,
}

#[derive(Deserialize)]
struct RawTcb {
    sgxtcbcomponents: Vec<RawSvn>,
    pcesvn: u16,
    tdxtcbcomponents: Vec<RawSvn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTcbLevel {
    tcb: RawTcb,
    tcb_date: String,
    tcb_status: TcbStatus,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawIsvTcb {
    isvsvn: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawIsvTcbLevel {
    tcb: RawIsvTcb,
    tcb_date: String,
    tcb_status: TcbStatus,
    #[serde(rename = "advisoryIDs", default)]
    advisory_ids: Vec<String>,
}

/// One platform TCB level of the TCB info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcbLevel {
    /// Minimum SGX TCB component SVNs (compared with the PCK certificate).
    pub sgx_components: [u8; 16],
    /// Minimum PCESVN.
    pub pce_svn: u16,
    /// Minimum TDX TCB component SVNs (compared with TEE_TCB_SVN).
    pub tdx_components: [u8; 16],
    /// Date of the TCB level.
    pub tcb_date: UnixTime,
    /// Status of platforms at this level.
    pub status: TcbStatus,
    /// Intel security advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// A TCB level keyed by a single ISVSVN (TDX module or QE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsvTcbLevel {
    /// Minimum ISVSVN.
    pub isv_svn: u16,
    /// Date of the TCB level.
    pub tcb_date: UnixTime,
    /// Status at this level.
    pub status: TcbStatus,
    /// Intel security advisories that apply.
    pub advisory_ids: Vec<String>,
}

/// The signer and attributes expected of the TDX module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxModule {
    /// Expected MRSIGNERSEAM.
    pub mr_signer: [u8; 48],
    /// Expected SEAMATTRIBUTES under the mask.
    pub attributes: [u8; 8],
    /// Mask applied to SEAMATTRIBUTES.
    pub attributes_mask: [u8; 8],
}

/// A TDX module identity (`TDX_01`, `TDX_03`, …) with its own TCB levels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdxModuleIdentity {
    /// The id, `TDX_` and two hex digits of the module major version.
    pub id: String,
    /// Module signer and attributes.
    pub module: TdxModule,
    /// Levels keyed by the module ISVSVN (`tee_tcb_svn[0]`).
    pub tcb_levels: Vec<IsvTcbLevel>,
}

/// A checked TCB info document (version 3, id `TDX`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcbInfo {
    /// Issue date.
    pub issue_date: UnixTime,
    /// Next update: the TCB info must not be used after it.
    pub next_update: UnixTime,
    /// The FMSPC the document applies to.
    pub fmspc: [u8; 6],
    /// The PCE id the document applies to.
    pub pce_id: [u8; 2],
    /// TCB type (0).
    pub tcb_type: u32,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// The base TDX module signer/attributes.
    pub tdx_module: TdxModule,
    /// Per-version TDX module identities.
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    /// Platform TCB levels, in the document's order.
    pub tcb_levels: Vec<TcbLevel>,
}

fn bad(document: &'static str, field: &'static str) -> CollateralError {
    CollateralError::Field { document, field }
}

fn date(
    document: &'static str,
    name: &'static str,
    text: &str,
) -> Result<UnixTime, CollateralError> {
    UnixTime::parse_rfc3339(text).map_err(|_| bad(document, name))
}

fn hex_field<const N: usize>(
    document: &'static str,
    name: &'static str,
    text: &str,
) -> Result<[u8; N], CollateralError> {
    hex::decode_array(text).map_err(|_| bad(document, name))
}

fn components(
    document: &'static str,
    name: &'static str,
    raw: &[RawSvn],
) -> Result<[u8; 16], CollateralError> {
    let mut out = [0u8; 16];
    if raw.len() != out.len() {
        return Err(bad(document, name));
    }
    for (slot, c) in out.iter_mut().zip(raw) {
        *slot = c.svn;
    }
    Ok(out)
}

fn module(document: &'static str, raw: &RawTdxModule) -> Result<TdxModule, CollateralError> {
    Ok(TdxModule {
        mr_signer: hex_field(document, "mrsigner", &raw.mrsigner)?,
        attributes: hex_field(document, "attributes", &raw.attributes)?,
        attributes_mask: hex_field(document, "attributesMask", &raw.attributes_mask)?,
    })
}

fn isv_levels(
    document: &'static str,
    raw: Vec<RawIsvTcbLevel>,
) -> Result<Vec<IsvTcbLevel>, CollateralError> {
    raw.into_iter()
        .map(|l| {
            Ok(IsvTcbLevel {
                isv_svn: l.tcb.isvsvn,
                tcb_date: date(document, "tcbDate", &l.tcb_date)?,
                status: l.tcb_status,
                advisory_ids: l.advisory_ids,
            })
        })
        .collect()
}

impl TcbInfo {
    /// Parses and checks the signed `tcbInfo` text. Only version 3 with id
    /// `TDX` is accepted.
    pub fn parse(text: &str) -> Result<Self, CollateralError> {
        const DOC: &str = "tcbInfo";
        let raw: RawTcbInfo = serde_json::from_str(text).map_err(|_| bad(DOC, "(document)"))?;
        if raw.id != "TDX" || raw.version != 3 {
            return Err(CollateralError::Unsupported { document: DOC });
        }
        let tdx_module = module(DOC, raw.tdx_module.as_ref().ok_or(bad(DOC, "tdxModule"))?)?;
        let tdx_module_identities = raw
            .tdx_module_identities
            .into_iter()
            .map(|m| {
                Ok(TdxModuleIdentity {
                    module: module(
                        DOC,
                        &RawTdxModule {
                            mrsigner: m.mrsigner,
                            attributes: m.attributes,
                            attributes_mask: m.attributes_mask,
                        },
                    )?,
                    id: m.id,
                    tcb_levels: isv_levels(DOC, m.tcb_levels)?,
                })
            })
            .collect::<Result<Vec<_>, CollateralError>>()?;
        let tcb_levels = raw
            .tcb_levels
            .into_iter()
            .map(|l| {
                Ok(TcbLevel {
                    sgx_components: components(DOC, "sgxtcbcomponents", &l.tcb.sgxtcbcomponents)?,
                    pce_svn: l.tcb.pcesvn,
                    tdx_components: components(DOC, "tdxtcbcomponents", &l.tcb.tdxtcbcomponents)?,
                    tcb_date: date(DOC, "tcbDate", &l.tcb_date)?,
                    status: l.tcb_status,
                    advisory_ids: l.advisory_ids,
                })
            })
            .collect::<Result<Vec<_>, CollateralError>>()?;
        Ok(Self {
            issue_date: date(DOC, "issueDate", &raw.issue_date)?,
            next_update: date(DOC, "nextUpdate", &raw.next_update)?,
            fmspc: hex_field(DOC, "fmspc", &raw.fmspc)?,
            pce_id: hex_field(DOC, "pceId", &raw.pce_id)?,
            tcb_type: raw.tcb_type,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            tdx_module,
            tdx_module_identities,
            tcb_levels,
        })
    }
}

// ---------------------------------------------------------------------------
// QE identity (enclave identity v2, TD_QE)

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQeIdentity {
    id: String,
    version: u32,
    issue_date: String,
    next_update: String,
    tcb_evaluation_data_number: u32,
    miscselect: String,
    miscselect_mask: String,
    attributes: String,
    attributes_mask: String,
    mrsigner: String,
    isvprodid: u16,
    tcb_levels: Vec<RawIsvTcbLevel>,
}

/// A checked QE identity document (enclave identity version 2, id `TD_QE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QeIdentity {
    /// Issue date.
    pub issue_date: UnixTime,
    /// Next update.
    pub next_update: UnixTime,
    /// TCB evaluation data number.
    pub tcb_evaluation_data_number: u32,
    /// Expected MISCSELECT under the mask (as the little-endian u32 of the report).
    pub misc_select: u32,
    /// Mask applied to MISCSELECT.
    pub misc_select_mask: u32,
    /// Expected ATTRIBUTES under the mask.
    pub attributes: [u8; 16],
    /// Mask applied to ATTRIBUTES.
    pub attributes_mask: [u8; 16],
    /// Expected MRSIGNER.
    pub mr_signer: [u8; 32],
    /// Expected ISVPRODID.
    pub isv_prod_id: u16,
    /// Levels keyed by the QE ISVSVN.
    pub tcb_levels: Vec<IsvTcbLevel>,
}

impl QeIdentity {
    /// Parses and checks the signed `enclaveIdentity` text. Only version 2
    /// with id `TD_QE` is accepted.
    pub fn parse(text: &str) -> Result<Self, CollateralError> {
        const DOC: &str = "enclaveIdentity";
        let raw: RawQeIdentity = serde_json::from_str(text).map_err(|_| bad(DOC, "(document)"))?;
        if raw.id != "TD_QE" || raw.version != 2 {
            return Err(CollateralError::Unsupported { document: DOC });
        }
        // MISCSELECT is printed as the big-endian hex of the u32 value.
        let misc: [u8; 4] = hex_field(DOC, "miscselect", &raw.miscselect)?;
        let misc_mask: [u8; 4] = hex_field(DOC, "miscselectMask", &raw.miscselect_mask)?;
        Ok(Self {
            issue_date: date(DOC, "issueDate", &raw.issue_date)?,
            next_update: date(DOC, "nextUpdate", &raw.next_update)?,
            tcb_evaluation_data_number: raw.tcb_evaluation_data_number,
            misc_select: u32::from_be_bytes(misc),
            misc_select_mask: u32::from_be_bytes(misc_mask),
            attributes: hex_field(DOC, "attributes", &raw.attributes)?,
            attributes_mask: hex_field(DOC, "attributesMask", &raw.attributes_mask)?,
            mr_signer: hex_field(DOC, "mrsigner", &raw.mrsigner)?,
            isv_prod_id: raw.isvprodid,
            tcb_levels: isv_levels(DOC, raw.tcb_levels)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pcs_envelopes_exactly() {
        let body = r#"{"tcbInfo":{"a":1,"b":"x"},"signature":"0011"}"#;
        assert_eq!(
            split_pcs(body, "tcbInfo"),
            Err(CollateralError::PcsEnvelope { key: "tcbInfo" })
        );
        let sig = "ab".repeat(64);
        let body = alloc::format!(r#"{{"tcbInfo":{{"a":1,"b":"x"}},"signature":"{sig}"}}"#);
        let (signed, s) = split_pcs(&body, "tcbInfo").unwrap();
        assert_eq!(signed, r#"{"a":1,"b":"x"}"#);
        assert_eq!(s, [0xab; 64]);
        assert!(split_pcs(&body, "enclaveIdentity").is_err());
        let extra = alloc::format!(r#"{{"tcbInfo":{{}},"signature":"{sig}","x":1}}"#);
        assert!(split_pcs(&extra, "tcbInfo").is_err());
    }

    #[test]
    fn rejects_unknown_ids_and_versions() {
        let qe = r#"{"id":"QE","version":2,"issueDate":"2025-01-01T00:00:00Z","nextUpdate":"2025-01-01T00:00:00Z","tcbEvaluationDataNumber":1,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"00000000000000000000000000000000","attributesMask":"00000000000000000000000000000000","mrsigner":"0000000000000000000000000000000000000000000000000000000000000000","isvprodid":2,"tcbLevels":[]}"#;
        assert_eq!(
            QeIdentity::parse(qe),
            Err(CollateralError::Unsupported {
                document: "enclaveIdentity"
            })
        );
        let ok = qe.replace("\"QE\"", "\"TD_QE\"");
        assert!(QeIdentity::parse(&ok).is_ok());
        let v3 = ok.replace("\"version\":2", "\"version\":3");
        assert!(QeIdentity::parse(&v3).is_err());
        assert!(TcbInfo::parse(r#"{"id":"SGX","version":3}"#).is_err());
    }
}
