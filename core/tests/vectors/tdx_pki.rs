//! A generated TDX platform under a generated root, the shape of the
//! guest's INSECURE simulated TDX (`guest/src/tee/simulated_tdx`): a
//! self-signed root, PCK Platform CA, PCK certificate with the SGX
//! extension, TCB Signing certificate, the signed TCB info and QE identity,
//! the PCK and root CA CRLs, and a quote signed by the attestation key
//! whose QE report the PCK key signs. Keys are fixed per `seed`, so two
//! seeds are two unrelated roots.

use accord_core::crypto::default_provider;
use accord_core::der::write::{
    bits, boolean, explicit, octets, oid, pem, seq, set, small_uint, time, tlv, uint, utc_time,
    utf8,
};
use accord_core::evidence::tdx::Collateral;
use accord_core::evidence::tdx::quote::{QE_REPORT_LEN, TD_REPORT10_LEN};
use accord_core::hex;
use accord_core::internal::{TdxSignatureData, tdx_quote_finish, tdx_quote_signed_part};
use accord_core::time::UnixTime;
use p256::ecdsa::SigningKey;
use p256::ecdsa::signature::Signer;
use serde_json::json;

const ROOT_CN: &str = "Intel SGX Root CA (accord INSECURE TEST)";
const PCK_CA_CN: &str = "Intel SGX PCK Platform CA";
const PCK_CN: &str = "Intel SGX PCK Certificate";
const TCB_SIGNING_CN: &str = "Intel SGX TCB Signing";
const SGX_ARC: [u64; 7] = [1, 2, 840, 113_741, 1, 13, 1];
const DAY: i64 = 86_400;

const COMPONENTS: [u8; 16] = [2, 2, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
const PCE_SVN: u16 = 13;
const TEE_TCB_SVN: [u8; 16] = [3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const QE_MRSIGNER: [u8; 32] = [0x5e; 32];
const QE_ATTRIBUTES: [u8; 16] = [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const QE_ISV_PROD_ID: u16 = 2;
const QE_ISV_SVN: u16 = 4;

/// The instant the collateral is issued (2026-01-01); it is valid for 30
/// days.
pub const ISSUED: UnixTime = UnixTime(1_767_225_600);

fn key(seed: u8, role: u8) -> SigningKey {
    let mut scalar = [seed; 32];
    scalar[0] = 0x11;
    scalar[31] = role;
    SigningKey::from_slice(&scalar).unwrap()
}

fn name(cn: &str) -> Vec<u8> {
    let attribute = |arcs: &[u64], value: &str| set(&[&seq(&[&oid(arcs), &utf8(value)])]);
    seq(&[
        &attribute(&[2, 5, 4, 10], "accord INSECURE TEST"),
        &attribute(&[2, 5, 4, 3], cn),
    ])
}

fn ecdsa_sha256() -> Vec<u8> {
    seq(&[&oid(&[1, 2, 840, 10045, 4, 3, 2])])
}

fn spki(key: &SigningKey) -> Vec<u8> {
    seq(&[
        &seq(&[
            &oid(&[1, 2, 840, 10045, 2, 1]),
            &oid(&[1, 2, 840, 10045, 3, 1, 7]),
        ]),
        &bits(&key.verifying_key().to_sec1_bytes()),
    ])
}

fn ca_extension() -> Vec<u8> {
    seq(&[
        &oid(&[2, 5, 29, 19]),
        &boolean(true),
        &octets(&seq(&[&boolean(true)])),
    ])
}

fn sign(tbs: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let signature: p256::ecdsa::Signature = key.sign(&tbs);
    seq(&[&tbs, &ecdsa_sha256(), &bits(signature.to_der().as_bytes())])
}

fn sign_raw(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let signature: p256::ecdsa::Signature = key.sign(message);
    let mut out = [0u8; 64];
    out.copy_from_slice(&signature.to_bytes());
    out
}

fn certificate(
    serial: u8,
    issuer: &str,
    subject: &str,
    subject_key: &SigningKey,
    extensions: &[Vec<u8>],
    issuer_key: &SigningKey,
) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = vec![
        explicit(0, &small_uint(2)),
        uint(&[serial]),
        ecdsa_sha256(),
        name(issuer),
        seq(&[&utc_time("240101000000"), &utc_time("491231235959")]),
        name(subject),
        spki(subject_key),
    ];
    if !extensions.is_empty() {
        parts.push(explicit(3, &tlv(0x30, &extensions.concat())));
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    sign(seq(&refs), issuer_key)
}

fn member(tail: &[u64], value: &[u8]) -> Vec<u8> {
    seq(&[&oid(&[&SGX_ARC[..], tail].concat()), value])
}

fn sgx_extension(fmspc: [u8; 6]) -> Vec<u8> {
    let mut tcb: Vec<Vec<u8>> = (1u64..)
        .zip(COMPONENTS)
        .map(|(arc, svn)| member(&[2, arc], &small_uint(svn.into())))
        .collect();
    tcb.push(member(&[2, 17], &small_uint(PCE_SVN.into())));
    tcb.push(member(&[2, 18], &octets(&COMPONENTS)));
    let tcb_refs: Vec<&[u8]> = tcb.iter().map(Vec::as_slice).collect();
    let configuration = seq(&[
        &member(&[7, 1], &boolean(false)),
        &member(&[7, 2], &boolean(true)),
        &member(&[7, 3], &boolean(false)),
    ]);
    seq(&[
        &member(&[1], &octets(&[7; 16])),
        &member(&[2], &seq(&tcb_refs)),
        &member(&[3], &octets(&[0, 0])),
        &member(&[4], &octets(&fmspc)),
        &member(&[5], &tlv(0x0a, &[1])),
        &member(&[6], &octets(&[9; 16])),
        &member(&[7], &configuration),
    ])
}

fn crl(issuer_cn: &str, issuer_key: &SigningKey, issued: UnixTime, number: u64) -> Vec<u8> {
    let crl_number = seq(&[&oid(&[2, 5, 29, 20]), &octets(&small_uint(number))]);
    let parts: Vec<Vec<u8>> = vec![
        small_uint(1),
        ecdsa_sha256(),
        name(issuer_cn),
        time(issued),
        time(UnixTime(issued.0 + 30 * DAY)),
        explicit(0, &seq(&[&crl_number])),
    ];
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    sign(seq(&refs), issuer_key)
}

fn rfc3339(at: UnixTime) -> String {
    let (year, month, day, hour, minute, second) = at.to_civil();
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

fn svns(values: &[u8; 16]) -> serde_json::Value {
    values.iter().map(|svn| json!({ "svn": svn })).collect()
}

fn signed(key_name: &str, text: &str, signer: &SigningKey) -> String {
    let signature = sign_raw(signer, text.as_bytes());
    format!(
        "{{\"{key_name}\":{text},\"signature\":\"{}\"}}",
        hex::encode(&signature)
    )
}

fn put(body: &mut [u8], at: usize, bytes: &[u8]) {
    body[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A generated platform under its own root.
pub struct Platform {
    root_key: SigningKey,
    pck_ca_key: SigningKey,
    pck_key: SigningKey,
    tcb_signing_key: SigningKey,
    attestation_key: SigningKey,
    /// The root certificate (DER).
    pub root: Vec<u8>,
    pck_ca: Vec<u8>,
    pck: Vec<u8>,
    tcb_signing: Vec<u8>,
    /// The platform's FMSPC.
    pub fmspc: [u8; 6],
}

impl Platform {
    /// The platform of `seed` (each seed its own keys and root) with
    /// `fmspc`.
    pub fn new(seed: u8, fmspc: [u8; 6]) -> Self {
        let (root_key, pck_ca_key, pck_key) = (key(seed, 1), key(seed, 2), key(seed, 3));
        let (tcb_signing_key, attestation_key) = (key(seed, 4), key(seed, 5));
        let pck_extension = seq(&[&oid(&SGX_ARC), &octets(&sgx_extension(fmspc))]);
        Self {
            root: certificate(1, ROOT_CN, ROOT_CN, &root_key, &[ca_extension()], &root_key),
            pck_ca: certificate(
                2,
                ROOT_CN,
                PCK_CA_CN,
                &pck_ca_key,
                &[ca_extension()],
                &root_key,
            ),
            pck: certificate(
                3,
                PCK_CA_CN,
                PCK_CN,
                &pck_key,
                &[pck_extension],
                &pck_ca_key,
            ),
            tcb_signing: certificate(4, ROOT_CN, TCB_SIGNING_CN, &tcb_signing_key, &[], &root_key),
            root_key,
            pck_ca_key,
            pck_key,
            tcb_signing_key,
            attestation_key,
            fmspc,
        }
    }

    /// `{"InsecureTrustedRoot":{"RootCA":"<hex>"}}`, a reference entry
    /// trusting this platform's root.
    pub fn entry(&self) -> String {
        format!(
            r#"{{"InsecureTrustedRoot":{{"RootCA":"{}"}}}}"#,
            hex::encode(&self.root)
        )
    }

    /// Collateral JSON issued at `issued` with `tcbEvaluationDataNumber`
    /// `evaluation` (TCB info and QE identity), valid for 30 days.
    pub fn collateral(&self, issued: UnixTime, evaluation: u32) -> Vec<u8> {
        let next = UnixTime(issued.0 + 30 * DAY);
        let zero_signer = hex::encode(&[0u8; 48]);
        let tcb_info = json!({
            "id": "TDX", "version": 3,
            "issueDate": rfc3339(issued), "nextUpdate": rfc3339(next),
            "fmspc": hex::encode(&self.fmspc), "pceId": "0000", "tcbType": 0,
            "tcbEvaluationDataNumber": evaluation,
            "tdxModule": {
                "mrsigner": zero_signer,
                "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
            },
            "tdxModuleIdentities": [{
                "id": "TDX_01", "mrsigner": zero_signer,
                "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
                "tcbLevels": [{
                    "tcb": {"isvsvn": TEE_TCB_SVN[0]},
                    "tcbDate": rfc3339(issued), "tcbStatus": "UpToDate",
                }],
            }],
            "tcbLevels": [{
                "tcb": {
                    "sgxtcbcomponents": svns(&COMPONENTS),
                    "pcesvn": PCE_SVN,
                    "tdxtcbcomponents": svns(&TEE_TCB_SVN),
                },
                "tcbDate": rfc3339(issued), "tcbStatus": "UpToDate",
            }],
        })
        .to_string();
        let qe_identity = json!({
            "id": "TD_QE", "version": 2,
            "issueDate": rfc3339(issued), "nextUpdate": rfc3339(next),
            "tcbEvaluationDataNumber": evaluation,
            "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": hex::encode(&QE_ATTRIBUTES),
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": hex::encode(&QE_MRSIGNER),
            "isvprodid": QE_ISV_PROD_ID,
            "tcbLevels": [{
                "tcb": {"isvsvn": QE_ISV_SVN},
                "tcbDate": rfc3339(issued), "tcbStatus": "UpToDate",
            }],
        })
        .to_string();
        let root_pem = pem("CERTIFICATE", &self.root);
        let signer_chain = format!("{}{root_pem}", pem("CERTIFICATE", &self.tcb_signing));
        let number = u64::try_from(issued.0 / DAY).unwrap();
        let collateral = Collateral::from_pcs_parts(
            &signed("tcbInfo", &tcb_info, &self.tcb_signing_key),
            &signer_chain,
            &signed("enclaveIdentity", &qe_identity, &self.tcb_signing_key),
            &signer_chain,
            &crl(PCK_CA_CN, &self.pck_ca_key, issued, number),
            &format!("{}{root_pem}", pem("CERTIFICATE", &self.pck_ca)),
            &crl(ROOT_CN, &self.root_key, issued, number),
        )
        .unwrap();
        collateral.to_json().into_bytes()
    }

    /// A signed v4 quote over `report_data`.
    pub fn quote(&self, report_data: &[u8; 64]) -> Vec<u8> {
        let mut body = vec![0u8; TD_REPORT10_LEN];
        put(&mut body, 0, &TEE_TCB_SVN);
        put(&mut body, 16, &[0x5e; 48]);
        put(&mut body, 120, &[0, 0, 0, 0x10, 0, 0, 0, 0]);
        put(&mut body, 128, &[0xe7, 0x1a, 0x06, 0, 0, 0, 0, 0]);
        put(&mut body, 520, report_data);
        let mut quote = tdx_quote_signed_part(4, 2, &body);
        let signature = sign_raw(&self.attestation_key, &quote);
        let point = self.attestation_key.verifying_key().to_sec1_bytes();
        let attestation_key: [u8; 64] = point[1..65].try_into().unwrap();
        let auth_data: [u8; 32] = core::array::from_fn(|i| i as u8);
        let mut qe_report = [0u8; QE_REPORT_LEN];
        put(&mut qe_report, 0, &COMPONENTS);
        put(&mut qe_report, 48, &QE_ATTRIBUTES);
        put(&mut qe_report, 64, &[0x3e; 32]);
        put(&mut qe_report, 128, &QE_MRSIGNER);
        put(&mut qe_report, 256, &QE_ISV_PROD_ID.to_le_bytes());
        put(&mut qe_report, 258, &QE_ISV_SVN.to_le_bytes());
        let binding = default_provider().sha256(&[&attestation_key, &auth_data]);
        put(&mut qe_report, 320, &binding);
        let qe_report_signature = sign_raw(&self.pck_key, &qe_report);
        let chain = format!(
            "{}{}{}",
            pem("CERTIFICATE", &self.pck),
            pem("CERTIFICATE", &self.pck_ca),
            pem("CERTIFICATE", &self.root)
        );
        tdx_quote_finish(
            &mut quote,
            &TdxSignatureData {
                signature: &signature,
                attestation_key: &attestation_key,
                qe_report: &qe_report,
                qe_report_signature: &qe_report_signature,
                auth_data: &auth_data,
                pck_chain_pem: chain.as_bytes(),
            },
        );
        quote
    }
}
