//! **INSECURE**: a simulated TDX platform in Intel's shapes, shared by the
//! guest's simulated TDX (`--tee insecure-simulated-tdx`, which persists
//! the keys) and core's tests (`core/tests/vectors/tdx_pki.rs`, fixed
//! keys). Hidden, not a stable API, no trust decision: whatever it signs
//! verifies only under a reference entry naming its root.
//!
//! - **PKI** (ECDSA P-256 with SHA-256, as Intel's): a self-signed root
//!   CA, a PCK Platform or Processor CA, a PCK certificate carrying the
//!   SGX extension (PPID, TCB components, PCESVN, CPUSVN, PCE-ID, FMSPC,
//!   SGX type, platform instance id and configuration: what
//!   `evidence::tdx::pck` parses), a TCB Signing certificate, and CRLs.
//!   Every name has the organisation [`ORGANISATION`], and the root's
//!   common name says INSECURE SIMULATION; the other common names are
//!   Intel's, because the verifier checks each role by its common name.
//! - **Collateral** ([`PcsResponses`]): the bodies and issuer-chain header
//!   values Intel's PCS API v4 (and a PCCS) answers with: TCB info and QE
//!   identity in their signed envelopes, the PCK CRL of the platform's
//!   CA, the root CA CRL. An [`Issue`] says their dates, the CRLs' number
//!   and the revoked PCK certificates.
//! - **Quotes** ([`quote`]): v4 (TD report 1.0) or v5 (TD report 1.5),
//!   laid out by [`super::tdx_quote_signed_part`] and
//!   [`super::tdx_quote_finish`]; the attestation key signs header and
//!   body, the QE report's REPORTDATA is SHA-256(attestation key ‖ QE
//!   authentication data) ‖ 32 zero bytes and the PCK key signs the QE
//!   report; the PCK chain (PCK, PCK CA, root) follows as PEM.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use serde_json::json;

use crate::der::write::{
    bits, boolean, explicit, octets, oid, pem, seq, small_uint, time, tlv, uint, utc_time,
};
use crate::evidence::collateral::TdxCa;
use crate::evidence::tdx::quote::{QE_REPORT_LEN, TD_REPORT10_LEN, TD_REPORT15_LEN};
use crate::evidence::tdx::{Collateral, CollateralError};
use crate::hex;
use crate::time::UnixTime;
use crate::x509::Certificate;

pub use super::SIMULATION_ORGANISATION as ORGANISATION;
use super::simulation_name as name;

/// Common name of the simulated root CA.
pub const ROOT_COMMON_NAME: &str = "Intel SGX Root CA (accord INSECURE SIMULATION)";

/// Common name of the PCK Platform CA (the simulated TDX's).
pub const PCK_CA_COMMON_NAME: &str = "Intel SGX PCK Platform CA";
/// The PCK leaf's common name.
pub const PCK_COMMON_NAME: &str = "Intel SGX PCK Certificate";
/// The TCB signing certificate's common name.
pub const TCB_SIGNING_COMMON_NAME: &str = "Intel SGX TCB Signing";

/// The common name of the PCK CA `ca`.
pub fn pck_ca_common_name(ca: TdxCa) -> &'static str {
    match ca {
        TdxCa::Platform => PCK_CA_COMMON_NAME,
        TdxCa::Processor => "Intel SGX PCK Processor CA",
    }
}

/// Validity of every simulated certificate (UTCTime digits).
const NOT_BEFORE: &str = "240101000000";
const NOT_AFTER: &str = "491231235959";

/// The SGX extension's OID arcs (1.2.840.113741.1.13.1).
const SGX_ARC: [u64; 7] = [1, 2, 840, 113_741, 1, 13, 1];

const DAY: i64 = 86_400;

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

/// MRSEAM of the simulated TDX module.
pub const MR_SEAM: [u8; 48] = [0x5e; 48];
/// XFAM of the simulated TD (x87, SSE, AVX, AVX-512, PKRU, AMX: what real
/// TDs report).
pub const XFAM: [u8; 8] = [0xe7, 0x1a, 0x06, 0, 0, 0, 0, 0];
/// TDATTRIBUTES of the simulated TD: SEPT_VE_DISABLE only.
pub const TD_ATTRIBUTES: [u8; 8] = [0, 0, 0, 0x10, 0, 0, 0, 0];
/// RTMR0..3 of the simulated TD (nothing extended).
pub const RTMRS: [[u8; 48]; 4] = [[0; 48]; 4];
/// The QE authentication data (as Intel's QE: 0, 1, …, 31).
const AUTH_DATA: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];

/// What the PCK certificate says about the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlatformIds {
    /// PPID.
    pub ppid: [u8; 16],
    /// The 16 SGX TCB component SVNs.
    pub sgx_components: [u8; 16],
    /// PCESVN.
    pub pce_svn: u16,
    /// CPUSVN.
    pub cpu_svn: [u8; 16],
    /// PCE-ID.
    pub pce_id: [u8; 2],
    /// FMSPC.
    pub fmspc: [u8; 6],
    /// Platform instance id.
    pub piid: [u8; 16],
}

/// A platform's keys and certificates.
pub struct Platform {
    /// The simulated root CA's key.
    pub root_key: SigningKey,
    /// The PCK CA's key (signs the PCK CRL).
    pub pck_ca_key: SigningKey,
    /// The PCK key (signs QE reports).
    pub pck_key: SigningKey,
    /// The TCB Signing key (signs TCB info and QE identity).
    pub tcb_signing_key: SigningKey,
    /// The QE's attestation key (signs quotes).
    pub attestation_key: SigningKey,
    /// Root CA certificate, DER.
    pub root: Vec<u8>,
    /// PCK CA certificate (Platform or Processor), DER.
    pub pck_ca: Vec<u8>,
    /// PCK certificate, DER.
    pub pck: Vec<u8>,
    /// TCB Signing certificate, DER.
    pub tcb_signing: Vec<u8>,
    /// What the PCK certificate says of the platform.
    pub ids: PlatformIds,
}

/// AlgorithmIdentifier ecdsa-with-SHA256.
fn ecdsa_sha256() -> Vec<u8> {
    seq(&[&oid(&[1, 2, 840, 10045, 4, 3, 2])])
}

/// The uncompressed SEC1 point (`04 ‖ X ‖ Y`) of a P-256 key.
pub fn point(key: &SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_point(false).as_bytes().to_vec()
}

/// SubjectPublicKeyInfo of a P-256 key.
pub fn spki(key: &SigningKey) -> Vec<u8> {
    seq(&[
        &seq(&[
            &oid(&[1, 2, 840, 10045, 2, 1]),
            &oid(&[1, 2, 840, 10045, 3, 1, 7]),
        ]),
        &bits(&point(key)),
    ])
}

/// Critical basicConstraints cA = TRUE.
fn ca_extension() -> Vec<u8> {
    seq(&[
        &oid(&[2, 5, 29, 19]),
        &boolean(true),
        &octets(&seq(&[&boolean(true)])),
    ])
}

/// Signs `tbs` and wraps it: the outer SEQUENCE of a certificate or CRL.
fn sign(tbs: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let signature: p256::ecdsa::Signature = key.sign(&tbs);
    seq(&[&tbs, &ecdsa_sha256(), &bits(signature.to_der().as_bytes())])
}

/// ECDSA P-256 `r ‖ s` over `message` (SHA-256), as quotes and Intel's
/// signed JSON carry it.
pub fn sign_raw(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let signature: p256::ecdsa::Signature = key.sign(message);
    let mut out = [0u8; 64];
    out.copy_from_slice(&signature.to_bytes());
    out
}

fn certificate(
    serial: &[u8],
    issuer: &str,
    subject: &str,
    subject_key: &SigningKey,
    extensions: &[Vec<u8>],
    issuer_key: &SigningKey,
) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = vec![
        explicit(0, &small_uint(2)),
        uint(serial),
        ecdsa_sha256(),
        name(issuer),
        seq(&[&utc_time(NOT_BEFORE), &utc_time(NOT_AFTER)]),
        name(subject),
        spki(subject_key),
    ];
    if !extensions.is_empty() {
        parts.push(explicit(3, &tlv(0x30, &extensions.concat())));
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    sign(seq(&refs), issuer_key)
}

/// The self-signed root CA.
pub fn issue_root(serial: &[u8], root_key: &SigningKey) -> Vec<u8> {
    certificate(
        serial,
        ROOT_COMMON_NAME,
        ROOT_COMMON_NAME,
        root_key,
        &[ca_extension()],
        root_key,
    )
}

/// The PCK CA `ca`, signed by the root.
pub fn issue_pck_ca(
    serial: &[u8],
    ca: TdxCa,
    root_key: &SigningKey,
    ca_key: &SigningKey,
) -> Vec<u8> {
    certificate(
        serial,
        ROOT_COMMON_NAME,
        pck_ca_common_name(ca),
        ca_key,
        &[ca_extension()],
        root_key,
    )
}

/// The TCB Signing certificate, signed by the root.
pub fn issue_tcb_signing(
    serial: &[u8],
    root_key: &SigningKey,
    signing_key: &SigningKey,
) -> Vec<u8> {
    certificate(
        serial,
        ROOT_COMMON_NAME,
        TCB_SIGNING_COMMON_NAME,
        signing_key,
        &[],
        root_key,
    )
}

/// `SEQUENCE { OID sgx.<tail>, value }`.
fn member(tail: &[u64], value: &[u8]) -> Vec<u8> {
    seq(&[&oid(&[&SGX_ARC[..], tail].concat()), value])
}

/// The SGX extension value for `ids` (Intel's PCK certificate profile,
/// with platform instance id and configuration: not dynamic, cached keys,
/// SMT disabled).
pub fn sgx_extension(ids: &PlatformIds) -> Vec<u8> {
    let mut tcb: Vec<Vec<u8>> = (1u64..)
        .zip(ids.sgx_components)
        .map(|(arc, svn)| member(&[2, arc], &small_uint(svn.into())))
        .collect();
    tcb.push(member(&[2, 17], &small_uint(ids.pce_svn.into())));
    tcb.push(member(&[2, 18], &octets(&ids.cpu_svn)));
    let tcb_refs: Vec<&[u8]> = tcb.iter().map(Vec::as_slice).collect();
    let configuration = seq(&[
        &member(&[7, 1], &boolean(false)),
        &member(&[7, 2], &boolean(true)),
        &member(&[7, 3], &boolean(false)),
    ]);
    seq(&[
        &member(&[1], &octets(&ids.ppid)),
        &member(&[2], &seq(&tcb_refs)),
        &member(&[3], &octets(&ids.pce_id)),
        &member(&[4], &octets(&ids.fmspc)),
        // SGX type: ENUMERATED 1 (Scalable), as TDX platforms report.
        &member(&[5], &tlv(0x0a, &[1])),
        &member(&[6], &octets(&ids.piid)),
        &member(&[7], &configuration),
    ])
}

/// The PCK certificate for `ids`, signed by the PCK CA `ca`.
pub fn issue_pck(
    serial: &[u8],
    ids: &PlatformIds,
    ca: TdxCa,
    ca_key: &SigningKey,
    pck_key: &SigningKey,
) -> Vec<u8> {
    let extension = seq(&[&oid(&SGX_ARC), &octets(&sgx_extension(ids))]);
    certificate(
        serial,
        pck_ca_common_name(ca),
        PCK_COMMON_NAME,
        pck_key,
        &[extension],
        ca_key,
    )
}

/// A v2 CRL by `issuer_cn` (key `issuer_key`) valid `this_update ..=
/// next_update`, revoking `revoked` serials, with CRL number `number`.
pub fn issue_crl(
    issuer_cn: &str,
    issuer_key: &SigningKey,
    this_update: UnixTime,
    next_update: UnixTime,
    revoked: &[Vec<u8>],
    number: u64,
) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = revoked
        .iter()
        .map(|serial| seq(&[&uint(serial), &time(this_update)]))
        .collect();
    let entry_refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let crl_number = seq(&[&oid(&[2, 5, 29, 20]), &octets(&small_uint(number))]);
    let mut parts: Vec<Vec<u8>> = vec![
        small_uint(1),
        ecdsa_sha256(),
        name(issuer_cn),
        time(this_update),
        time(next_update),
    ];
    if !entries.is_empty() {
        parts.push(seq(&entry_refs));
    }
    parts.push(explicit(0, &seq(&[&crl_number])));
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    sign(seq(&refs), issuer_key)
}

/// The responses of a PCS for a simulated platform.
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
    /// `SGX-PCK-CRL-Issuer-Chain` (PEM: PCK CA, root).
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

fn svns(values: &[u8; 16]) -> serde_json::Value {
    values.iter().map(|svn| json!({ "svn": svn })).collect()
}

/// `{"<key>":<text>,"signature":"<hex r‖s>"}` with `text` signed by
/// `signer`: the exact bytes the verifier checks.
fn signed_response(key: &str, text: &str, signer: &SigningKey) -> String {
    let signature = sign_raw(signer, text.as_bytes());
    format!(
        "{{\"{key}\":{text},\"signature\":\"{}\"}}",
        hex::encode(&signature)
    )
}

/// The signed TCB info text for the platform `ids`.
fn tcb_info(ids: &PlatformIds, issued: UnixTime, next: UnixTime, evaluation: u32) -> String {
    let tcb_date = issued.to_string();
    let zero_signer = hex::encode(&[0u8; 48]);
    json!({
        "id": "TDX",
        "version": 3,
        "issueDate": issued.to_string(),
        "nextUpdate": next.to_string(),
        "fmspc": hex::encode(&ids.fmspc),
        "pceId": hex::encode(&ids.pce_id),
        "tcbType": 0,
        "tcbEvaluationDataNumber": evaluation,
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
                "tcb": {"isvsvn": TEE_TCB_SVN.first()},
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
fn qe_identity(issued: UnixTime, next: UnixTime, evaluation: u32) -> String {
    json!({
        "id": "TD_QE",
        "version": 2,
        "issueDate": issued.to_string(),
        "nextUpdate": next.to_string(),
        "tcbEvaluationDataNumber": evaluation,
        "miscselect": "00000000",
        "miscselectMask": "FFFFFFFF",
        "attributes": hex::encode(&QE_ATTRIBUTES),
        "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": hex::encode(&QE_MRSIGNER),
        "isvprodid": QE_ISV_PROD_ID,
        "tcbLevels": [{
            "tcb": {"isvsvn": QE_ISV_SVN},
            "tcbDate": issued.to_string(),
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
        Self::at(issue_instant(now), revoked_pcks)
    }

    /// The issue of `issued`, valid [`VALIDITY_DAYS`], numbered by its day,
    /// revoking `revoked_pcks`.
    pub fn at(issued: UnixTime, revoked_pcks: &[Vec<u8>]) -> Self {
        Self {
            issued,
            next_update: UnixTime(issued.0 + VALIDITY_DAYS * DAY),
            crl_number: u64::try_from(issued.0 / DAY).unwrap_or(0),
            revoked_pcks: revoked_pcks.to_vec(),
        }
    }
}

impl Platform {
    /// The common name of this platform's PCK CA (Platform or Processor),
    /// read from its certificate.
    fn pck_ca_name(&self) -> String {
        Certificate::from_der(&self.pck_ca)
            .ok()
            .and_then(|cert| cert.subject_common_name().map(String::from))
            .unwrap_or_else(|| String::from(PCK_CA_COMMON_NAME))
    }

    /// The collateral as `what` says, with the TCB info's and QE
    /// identity's `tcbEvaluationDataNumber` [`TCB_EVALUATION_DATA_NUMBER`].
    pub fn pcs_responses(&self, what: &Issue) -> PcsResponses {
        self.pcs_responses_evaluated(what, TCB_EVALUATION_DATA_NUMBER)
    }

    /// [`pcs_responses`](Self::pcs_responses) with `tcbEvaluationDataNumber`
    /// `evaluation`.
    pub fn pcs_responses_evaluated(&self, what: &Issue, evaluation: u32) -> PcsResponses {
        let (issued, next) = (what.issued, what.next_update);
        let root_pem = pem("CERTIFICATE", &self.root);
        let signer_chain = format!("{}{root_pem}", pem("CERTIFICATE", &self.tcb_signing));
        PcsResponses {
            tcb_info: signed_response(
                "tcbInfo",
                &tcb_info(&self.ids, issued, next, evaluation),
                &self.tcb_signing_key,
            ),
            tcb_info_issuer_chain: signer_chain.clone(),
            qe_identity: signed_response(
                "enclaveIdentity",
                &qe_identity(issued, next, evaluation),
                &self.tcb_signing_key,
            ),
            qe_identity_issuer_chain: signer_chain,
            pck_crl: issue_crl(
                &self.pck_ca_name(),
                &self.pck_ca_key,
                issued,
                next,
                &what.revoked_pcks,
                what.crl_number,
            ),
            pck_crl_issuer_chain: format!("{}{root_pem}", pem("CERTIFICATE", &self.pck_ca)),
            root_ca_crl: issue_crl(
                ROOT_COMMON_NAME,
                &self.root_key,
                issued,
                next,
                &[],
                what.crl_number,
            ),
            issued,
            next_update: next,
        }
    }

    /// A signed quote over `report_data` as `fields` say.
    pub fn quote(&self, fields: &TdFields, report_data: &[u8; 64]) -> Vec<u8> {
        let body_type = if fields.version == 5 { 3 } else { 2 };
        let mut quote =
            super::tdx_quote_signed_part(fields.version, body_type, &body(fields, report_data));
        let signature = sign_raw(&self.attestation_key, &quote);
        let point = point(&self.attestation_key);
        let mut attestation_key = [0u8; 64];
        if let Some(xy) = point.get(1..65) {
            attestation_key.copy_from_slice(xy);
        }
        let qe_report = qe_report(&attestation_key, &self.ids.cpu_svn);
        let qe_report_signature = sign_raw(&self.pck_key, &qe_report);
        let chain = format!(
            "{}{}{}",
            pem("CERTIFICATE", &self.pck),
            pem("CERTIFICATE", &self.pck_ca),
            pem("CERTIFICATE", &self.root)
        );
        super::tdx_quote_finish(
            &mut quote,
            &super::TdxSignatureData {
                signature: &signature,
                attestation_key: &attestation_key,
                qe_report: &qe_report,
                qe_report_signature: &qe_report_signature,
                auth_data: &AUTH_DATA,
                pck_chain_pem: chain.as_bytes(),
            },
        );
        quote
    }
}

/// What the TD report body says apart from REPORTDATA.
#[derive(Clone, Copy, Debug)]
pub struct TdFields {
    /// Quote version: 4 (TD report 1.0) or 5 (TD report 1.5).
    pub version: u16,
    /// MRTD.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
}

fn put(body: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = body.get_mut(at..at + bytes.len()) {
        slot.copy_from_slice(bytes);
    }
}

/// The TD report body (1.0 for v4, 1.5 for v5).
fn body(fields: &TdFields, report_data: &[u8; 64]) -> Vec<u8> {
    let len = if fields.version == 5 {
        TD_REPORT15_LEN
    } else {
        TD_REPORT10_LEN
    };
    let mut body = vec![0u8; len];
    put(&mut body, 0, &TEE_TCB_SVN);
    put(&mut body, 16, &MR_SEAM);
    // MRSIGNERSEAM (64) and SEAMATTRIBUTES (112) stay zero: Intel's module.
    put(&mut body, 120, &TD_ATTRIBUTES);
    put(&mut body, 128, &XFAM);
    put(&mut body, 136, &fields.mr_td);
    put(&mut body, 184, &fields.mr_config_id);
    // MROWNER (232), MROWNERCONFIG (280) zero.
    for (i, rtmr) in RTMRS.iter().enumerate() {
        put(&mut body, 328 + 48 * i, rtmr);
    }
    put(&mut body, 520, report_data);
    if fields.version == 5 {
        // TEE_TCB_SVN2 = TEE_TCB_SVN (no TD-preserving update); MRSERVICETD
        // zero (no service TD).
        put(&mut body, 584, &TEE_TCB_SVN);
    }
    body
}

/// The QE report: the simulated QE's identity, REPORTDATA binding the
/// attestation key.
fn qe_report(attestation_key: &[u8; 64], cpu_svn: &[u8; 16]) -> [u8; QE_REPORT_LEN] {
    let mut report = [0u8; QE_REPORT_LEN];
    put(&mut report, 0, cpu_svn);
    put(&mut report, 48, &QE_ATTRIBUTES);
    put(&mut report, 64, &[0x3e; 32]); // MRENCLAVE
    put(&mut report, 128, &QE_MRSIGNER);
    put(&mut report, 256, &QE_ISV_PROD_ID.to_le_bytes());
    put(&mut report, 258, &QE_ISV_SVN.to_le_bytes());
    let binding = crate::crypto::default_provider().sha256(&[attestation_key, &AUTH_DATA]);
    put(&mut report, 320, &binding);
    report
}
