//! The simulated TDX platform's certificates and CRLs, all ECDSA P-256 with
//! SHA-256 as Intel's: a self-signed root CA, a PCK Platform CA, a PCK
//! certificate carrying the SGX extension (PPID, TCB components, PCESVN,
//! CPUSVN, PCE-ID, FMSPC, SGX type, platform instance id and
//! configuration: what `accord_core::evidence::tdx::pck` parses) and a TCB
//! Signing certificate; the root CA CRL and the PCK CRL.
//!
//! Every name has the organisation `accord INSECURE SIMULATION`, and the
//! root's common name says INSECURE SIMULATION too. The other common names
//! are Intel's (`Intel SGX PCK Platform CA`, `Intel SGX PCK Certificate`,
//! `Intel SGX TCB Signing`), because the verifier checks each role by its
//! common name; what makes them insecure is that they chain to a root that
//! nobody trusts unless a reference entry names it.

use accord_core::der::write::{
    bits, boolean, explicit, octets, oid, seq, set, small_uint, time, tlv, uint, utc_time, utf8,
};
use accord_core::time::UnixTime;
use p256::ecdsa::signature::Signer;

/// Organisation of every simulated certificate.
pub const ORGANISATION: &str = "accord INSECURE SIMULATION";

/// Common name of the simulated root CA.
pub const ROOT_COMMON_NAME: &str = "Intel SGX Root CA (accord INSECURE SIMULATION)";

/// Common names of the other roles (the ones the verifier requires).
pub const PCK_CA_COMMON_NAME: &str = "Intel SGX PCK Platform CA";
/// The PCK leaf's common name.
pub const PCK_COMMON_NAME: &str = "Intel SGX PCK Certificate";
/// The TCB signing certificate's common name.
pub const TCB_SIGNING_COMMON_NAME: &str = "Intel SGX TCB Signing";

/// Validity of every simulated certificate (UTCTime digits).
const NOT_BEFORE: &str = "240101000000";
const NOT_AFTER: &str = "491231235959";

/// The SGX extension's OID arcs (1.2.840.113741.1.13.1).
const SGX_ARC: [u64; 7] = [1, 2, 840, 113_741, 1, 13, 1];

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

/// A Name with O = [`ORGANISATION`] and the given CN, each in its own RDN.
fn name(common_name: &str) -> Vec<u8> {
    let attribute = |arcs: &[u64], value: &str| {
        let inner = seq(&[&oid(arcs), &utf8(value)]);
        set(&[&inner])
    };
    seq(&[
        &attribute(&[2, 5, 4, 10], ORGANISATION),
        &attribute(&[2, 5, 4, 3], common_name),
    ])
}

/// AlgorithmIdentifier ecdsa-with-SHA256.
fn ecdsa_sha256() -> Vec<u8> {
    seq(&[&oid(&[1, 2, 840, 10045, 4, 3, 2])])
}

/// The uncompressed SEC1 point (`04 ‖ X ‖ Y`) of a P-256 key.
pub fn point(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    key.verifying_key().to_sec1_bytes().to_vec()
}

/// SubjectPublicKeyInfo of a P-256 key.
pub fn spki(key: &p256::ecdsa::SigningKey) -> Vec<u8> {
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
fn sign(tbs: Vec<u8>, key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    let signature: p256::ecdsa::Signature = key.sign(&tbs);
    seq(&[&tbs, &ecdsa_sha256(), &bits(signature.to_der().as_bytes())])
}

fn certificate(
    serial: &[u8],
    issuer: &str,
    subject: &str,
    subject_key: &p256::ecdsa::SigningKey,
    extensions: &[Vec<u8>],
    issuer_key: &p256::ecdsa::SigningKey,
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
pub fn issue_root(serial: &[u8], root_key: &p256::ecdsa::SigningKey) -> Vec<u8> {
    certificate(
        serial,
        ROOT_COMMON_NAME,
        ROOT_COMMON_NAME,
        root_key,
        &[ca_extension()],
        root_key,
    )
}

/// The PCK Platform CA, signed by the root.
pub fn issue_pck_ca(
    serial: &[u8],
    root_key: &p256::ecdsa::SigningKey,
    ca_key: &p256::ecdsa::SigningKey,
) -> Vec<u8> {
    certificate(
        serial,
        ROOT_COMMON_NAME,
        PCK_CA_COMMON_NAME,
        ca_key,
        &[ca_extension()],
        root_key,
    )
}

/// The TCB Signing certificate, signed by the root.
pub fn issue_tcb_signing(
    serial: &[u8],
    root_key: &p256::ecdsa::SigningKey,
    signing_key: &p256::ecdsa::SigningKey,
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

/// The SGX extension value for `ids` (Intel's PCK certificate profile; a
/// Platform-CA-issued certificate, so with platform instance id and
/// configuration: not dynamic, cached keys, SMT disabled).
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

/// The PCK certificate for `ids`, signed by the PCK Platform CA.
pub fn issue_pck(
    serial: &[u8],
    ids: &PlatformIds,
    ca_key: &p256::ecdsa::SigningKey,
    pck_key: &p256::ecdsa::SigningKey,
) -> Vec<u8> {
    let extension = seq(&[&oid(&SGX_ARC), &octets(&sgx_extension(ids))]);
    certificate(
        serial,
        PCK_CA_COMMON_NAME,
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
    issuer_key: &p256::ecdsa::SigningKey,
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

/// ECDSA P-256 `r ‖ s` over `message` (SHA-256), as quotes and Intel's
/// signed JSON carry it.
pub fn sign_raw(key: &p256::ecdsa::SigningKey, message: &[u8]) -> [u8; 64] {
    let signature: p256::ecdsa::Signature = key.sign(message);
    let mut out = [0u8; 64];
    out.copy_from_slice(&signature.to_bytes());
    out
}
