//! The simulated platform's collateral, in the shapes Intel's PCS API v4
//! (and a PCCS) answers with, signed under the simulated root:
//!
//! | PCS v4 path | body | issuer chain header |
//! |---|---|---|
//! | `/tdx/certification/v4/tcb?fmspc=…` | `{"tcbInfo":{…},"signature":"…"}` | `TCB-Info-Issuer-Chain` |
//! | `/tdx/certification/v4/qe/identity` | `{"enclaveIdentity":{…},"signature":"…"}` | `SGX-Enclave-Identity-Issuer-Chain` |
//! | `/sgx/certification/v4/pckcrl?ca=platform&encoding=der` | DER CRL | `SGX-PCK-CRL-Issuer-Chain` |
//! | root CA CRL (the URL in the root's CRL distribution point) | DER CRL | – |
//!
//! [`PcsResponses`] holds exactly those bodies and (URL-decoded) header
//! values, so that a simulated PCS can serve them as they are; its
//! [`PcsResponses::collateral`] is what the quote carries for now
//! (`TdxEvidence::collateral`), built with core's
//! `Collateral::from_pcs_parts` from the same bytes.
//!
//! Windows: everything is issued at the start of the previous UTC day and
//! is valid for [`VALIDITY_DAYS`] days, so every process that simulates
//! the platform on one day issues documents with the same dates and
//! numbers. CRL numbers are the issue day (days since 1970). An [`Issue`]
//! with other dates, numbers or revocations is what a simulated PCS
//! re-issues when a test revokes a PCK certificate.

use accord_core::der::write::pem;
use accord_core::evidence::tdx::{Collateral, CollateralError};
use accord_core::hex;
use accord_core::time::UnixTime;
use serde_json::json;

use super::pki;
use super::store::PlatformState;

/// The TCB evaluation data number of the simulated TCB info and QE
/// identity.
pub const TCB_EVALUATION_DATA_NUMBER: u32 = 17;

/// How long the collateral is valid, in days from its issue.
pub const VALIDITY_DAYS: i64 = 30;

/// MRSIGNER of the simulated quoting enclave.
pub const QE_MRSIGNER: [u8; 32] = [0x5e; 32];
/// ISVPRODID of the simulated quoting enclave (Intel's TD QE's).
pub const QE_ISV_PROD_ID: u16 = 2;
/// ISVSVN of the simulated quoting enclave.
pub const QE_ISV_SVN: u16 = 4;
/// ATTRIBUTES of the simulated quoting enclave.
pub const QE_ATTRIBUTES: [u8; 16] = [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// TEE_TCB_SVN of the simulated TDX module: ISVSVN 3 of module version 1.
pub const TEE_TCB_SVN: [u8; 16] = [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

const DAY: i64 = 86_400;

/// The responses of a PCS for the simulated platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcsResponses {
    /// The TCB info response body.
    pub tcb_info: String,
    /// `TCB-Info-Issuer-Chain` (PEM: TCB Signing, root).
    pub tcb_info_issuer_chain: String,
    /// The QE identity response body.
    pub qe_identity: String,
    /// `SGX-Enclave-Identity-Issuer-Chain` (PEM: TCB Signing, root).
    pub qe_identity_issuer_chain: String,
    /// The PCK CRL (DER).
    pub pck_crl: Vec<u8>,
    /// `SGX-PCK-CRL-Issuer-Chain` (PEM: PCK Platform CA, root).
    pub pck_crl_issuer_chain: String,
    /// The root CA CRL (DER).
    pub root_ca_crl: Vec<u8>,
    /// When all of it was issued.
    pub issued: UnixTime,
    /// When all of it must be replaced.
    pub next_update: UnixTime,
}

impl PcsResponses {
    /// The collateral a quote carries, from these responses.
    pub fn collateral(&self) -> Result<Collateral, CollateralError> {
        Collateral::from_pcs_parts(
            &self.tcb_info,
            &self.tcb_info_issuer_chain,
            &self.qe_identity,
            &self.qe_identity_issuer_chain,
            &self.pck_crl,
            &self.pck_crl_issuer_chain,
            &self.root_ca_crl,
        )
    }
}

/// The issue instant of the collateral produced at `now`: the start of the
/// previous UTC day.
pub fn issue_instant(now: UnixTime) -> UnixTime {
    UnixTime(now.0.div_euclid(DAY) * DAY - DAY)
}

fn rfc3339(at: UnixTime) -> String {
    let (year, month, day, hour, minute, second) = at.to_civil();
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

fn svns(values: &[u8; 16]) -> serde_json::Value {
    values.iter().map(|svn| json!({ "svn": svn })).collect()
}

/// `{"<key>":<text>,"signature":"<hex r‖s>"}` with `text` signed by the
/// TCB signing key: the exact bytes the verifier checks.
fn signed_response(key: &str, text: &str, signer: &p256::ecdsa::SigningKey) -> String {
    let signature = pki::sign_raw(signer, text.as_bytes());
    format!(
        "{{\"{key}\":{text},\"signature\":\"{}\"}}",
        hex::encode(&signature)
    )
}

/// The signed TCB info text for the platform.
fn tcb_info(state: &PlatformState, issued: UnixTime, next: UnixTime) -> String {
    let ids = &state.ids;
    let tcb_date = rfc3339(issued);
    let zero_signer = hex::encode(&[0u8; 48]);
    json!({
        "id": "TDX",
        "version": 3,
        "issueDate": rfc3339(issued),
        "nextUpdate": rfc3339(next),
        "fmspc": hex::encode(&ids.fmspc),
        "pceId": hex::encode(&ids.pce_id),
        "tcbType": 0,
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "tdxModule": {
            "mrsigner": zero_signer,
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
        },
        "tdxModuleIdentities": [{
            "id": "TDX_01",
            "mrsigner": zero_signer,
            "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF",
            "tcbLevels": [{
                "tcb": {"isvsvn": TEE_TCB_SVN[0]},
                "tcbDate": tcb_date,
                "tcbStatus": "UpToDate",
            }],
        }],
        "tcbLevels": [{
            "tcb": {
                "sgxtcbcomponents": svns(&ids.sgx_components),
                "pcesvn": ids.pce_svn,
                "tdxtcbcomponents": svns(&TEE_TCB_SVN),
            },
            "tcbDate": tcb_date,
            "tcbStatus": "UpToDate",
        }],
    })
    .to_string()
}

/// The signed QE identity text.
fn qe_identity(issued: UnixTime, next: UnixTime) -> String {
    json!({
        "id": "TD_QE",
        "version": 2,
        "issueDate": rfc3339(issued),
        "nextUpdate": rfc3339(next),
        "tcbEvaluationDataNumber": TCB_EVALUATION_DATA_NUMBER,
        "miscselect": "00000000",
        "miscselectMask": "FFFFFFFF",
        "attributes": hex::encode(&QE_ATTRIBUTES),
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": hex::encode(&QE_MRSIGNER),
        "isvprodid": QE_ISV_PROD_ID,
        "tcbLevels": [{
            "tcb": {"isvsvn": QE_ISV_SVN},
            "tcbDate": rfc3339(issued),
            "tcbStatus": "UpToDate",
        }],
    })
    .to_string()
}

/// What one issue of the collateral says: its dates, the CRLs' number and
/// the revoked PCK certificates. [`Issue::of_day`] is the default issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// issueDate of the TCB info and QE identity, thisUpdate of the CRLs.
    pub issued: UnixTime,
    /// Their nextUpdate.
    pub next_update: UnixTime,
    /// The cRLNumber of both CRLs.
    pub crl_number: u64,
    /// The PCK certificate serials on the PCK CRL.
    pub revoked_pcks: Vec<Vec<u8>>,
}

impl Issue {
    /// The issue every process makes at `now`: at the start of the
    /// previous UTC day, valid [`VALIDITY_DAYS`], numbered by the issue
    /// day, revoking `revoked_pcks`.
    pub fn of_day(now: UnixTime, revoked_pcks: &[Vec<u8>]) -> Self {
        let issued = issue_instant(now);
        Self {
            issued,
            next_update: UnixTime(issued.0 + VALIDITY_DAYS * DAY),
            crl_number: u64::try_from(issued.0 / DAY).unwrap_or(0),
            revoked_pcks: revoked_pcks.to_vec(),
        }
    }
}

/// Issues the platform's collateral as of `now`, with `revoked_pcks`
/// (serials) on the PCK CRL.
pub fn issue(state: &PlatformState, now: UnixTime, revoked_pcks: &[Vec<u8>]) -> PcsResponses {
    issue_as(state, &Issue::of_day(now, revoked_pcks))
}

/// Issues the platform's collateral as `what` says.
pub fn issue_as(state: &PlatformState, what: &Issue) -> PcsResponses {
    let issued = what.issued;
    let next = what.next_update;
    let number = what.crl_number;
    let revoked_pcks = what.revoked_pcks.as_slice();
    let root_pem = pem("CERTIFICATE", &state.root);
    let signer_chain = format!("{}{root_pem}", pem("CERTIFICATE", &state.tcb_signing));
    PcsResponses {
        tcb_info: signed_response(
            "tcbInfo",
            &tcb_info(state, issued, next),
            &state.tcb_signing_key,
        ),
        tcb_info_issuer_chain: signer_chain.clone(),
        qe_identity: signed_response(
            "enclaveIdentity",
            &qe_identity(issued, next),
            &state.tcb_signing_key,
        ),
        qe_identity_issuer_chain: signer_chain,
        pck_crl: pki::issue_crl(
            pki::PCK_CA_COMMON_NAME,
            &state.pck_ca_key,
            issued,
            next,
            revoked_pcks,
            number,
        ),
        pck_crl_issuer_chain: format!("{}{root_pem}", pem("CERTIFICATE", &state.pck_ca)),
        root_ca_crl: pki::issue_crl(
            pki::ROOT_COMMON_NAME,
            &state.root_key,
            issued,
            next,
            &[],
            number,
        ),
        issued,
        next_update: next,
    }
}
