//! Hidden entry points for the fuzz targets and test fixtures. Not a
//! stable API.
//!
//! Each `fuzz_` function feeds arbitrary bytes to one parser and ignores
//! the result: the fuzzer looks for panics, overflows and hangs.
//! [`synthetic_tdx_quote`] builds the one synthetic quote the tests of
//! core and of the guest's TEE providers share; [`tdx_sim`] is the
//! INSECURE simulated TDX platform (PKI, PCS collateral, quotes) of the
//! guest's `--tee insecure-simulated-tdx` and of core's tests; [`vectors`]
//! names the real test vectors of `../shared/testdata` ([`testdata_dir`]).

pub mod tdx_sim;
pub mod vectors;

/// Organisation of every certificate of the INSECURE simulated TEEs.
pub const SIMULATION_ORGANISATION: &str = "accord INSECURE SIMULATION";

/// A Name with O = [`SIMULATION_ORGANISATION`] and the given CN, each in
/// its own RDN: the names of the simulated TEEs' certificates.
pub fn simulation_name(common_name: &str) -> alloc::vec::Vec<u8> {
    use crate::der::write::{oid, seq, set, utf8};
    let attribute = |arcs: &[u64], value: &str| {
        let inner = seq(&[&oid(arcs), &utf8(value)]);
        set(&[&inner])
    };
    seq(&[
        &attribute(&[2, 5, 4, 10], SIMULATION_ORGANISATION),
        &attribute(&[2, 5, 4, 3], common_name),
    ])
}

/// Parses `data` as a SEV-SNP attestation report.
pub fn fuzz_snp_report(data: &[u8]) {
    crate::evidence::snp::fuzz_parse_report(data);
}

/// Parses `data` as a TDX quote.
pub fn fuzz_tdx_quote(data: &[u8]) {
    crate::evidence::tdx::fuzz_parse_quote(data);
}

/// Parses `data` as a TDX collateral document.
pub fn fuzz_tdx_collateral(data: &[u8]) {
    crate::evidence::tdx::fuzz_parse_collateral(data);
}

/// Parses `data` as history objects and signed tree heads, and checks
/// Merkle proofs built from it: the first byte picks the target; for proofs
/// the next 16 bytes are two big-endian sizes (index and size, or old and new
/// size), then 32-byte hashes (leaf or old root, root or new root, proof).
pub fn fuzz_history(data: &[u8]) {
    use crate::crypto::rustcrypto::PROVIDER;
    use crate::history::{merkle, objects::Transition, tree_head};

    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (sizes, hashes) = rest.split_at_checked(16).unwrap_or((&[], rest));
    let (a, b) = sizes.split_at_checked(8).unwrap_or((&[], &[]));
    let a = <[u8; 8]>::try_from(a).map_or(0, u64::from_be_bytes);
    let b = <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes);
    let nodes: alloc::vec::Vec<merkle::Hash> = hashes
        .chunks_exact(32)
        .filter_map(|chunk| <[u8; 32]>::try_from(chunk).ok())
        .collect();
    let (first, second, proof) = match nodes.as_slice() {
        [first, second, proof @ ..] => (*first, *second, proof),
        _ => ([0; 32], [0; 32], &[][..]),
    };
    match selector % 4 {
        0 => {
            let _ = Transition::decode(rest);
        }
        1 => {
            let _ = tree_head::SignedTreeHead::decode(rest);
            let _ = tree_head::TreeHead::decode(rest);
        }
        2 => {
            let _ = merkle::verify_inclusion(&PROVIDER, &first, a, b, proof, &second);
        }
        _ => {
            let _ = merkle::verify_consistency(&PROVIDER, a, b, &first, &second, proof);
        }
    }
}

/// Parses `data` as manifest JSON; if it parses, validates it and reads
/// every derived view (keys, coordinator policies, reference values).
pub fn fuzz_manifest(data: &[u8]) {
    use crate::coordinator::store;
    use crate::manifest::Manifest;

    let Ok(manifest) = Manifest::from_json(data) else {
        return;
    };
    let _ = manifest.validate();
    let doc = manifest.doc();
    let _ = doc.owner_keys();
    let _ = doc.seedshare_keys();
    let _ = doc.coordinator_policy_hashes();
    let _ = store::manifest_policy_hashes(&manifest);
    let _ = serde_json::to_vec(doc);
}

/// Decodes `data` as a frame of the wire protocol: the first byte picks
/// the API limit, the next four are the length prefix, the rest the body,
/// decoded as every message type (and re-encoded when it decodes).
pub fn fuzz_protocol(data: &[u8]) {
    use crate::protocol::{self, Message};

    fn each<M: Message>(body: &[u8], max: usize) {
        if let Ok(message) = protocol::decode::<M>(body) {
            let _ = protocol::encode(&message, max);
        }
    }
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let max = if selector & 1 == 0 {
        protocol::MAX_USER_FRAME
    } else {
        protocol::MAX_MESH_FRAME
    };
    let Some((prefix, body)) = rest.split_first_chunk::<4>() else {
        return;
    };
    if protocol::frame_len(*prefix, max).is_err() {
        return;
    }
    each::<protocol::Hello>(body, max);
    each::<protocol::HelloReply>(body, max);
    each::<protocol::UserRequest>(body, max);
    each::<protocol::SetManifestReply>(body, max);
    each::<protocol::GetManifestsReply>(body, max);
    each::<protocol::RecoverReply>(body, max);
    each::<protocol::GetRecoveryStateReply>(body, max);
    each::<protocol::UserError>(body, max);
    each::<protocol::MeshRequest>(body, max);
    each::<protocol::NewMeshCertReply>(body, max);
    each::<protocol::PeerRecoverReply>(body, max);
    each::<protocol::shim::ShimRequest>(body, max);
    each::<protocol::shim::ShimResponse>(body, max);
}

/// The signed part of a TDX quote of `version` 4 or 5: the header (ECDSA
/// P-256, TDX, Intel's QE vendor id) and `body`, which for v5 is preceded
/// by `body_type` (2 for a TD report 1.0, 3 for 1.5) and its length. The
/// attestation key signs exactly these bytes; [`tdx_quote_finish`] appends
/// the rest. Shared by [`synthetic_tdx_quote`] and the guest's INSECURE
/// simulated TDX, so that there is one quote layout outside the parser.
pub fn tdx_quote_signed_part(version: u16, body_type: u16, body: &[u8]) -> alloc::vec::Vec<u8> {
    use crate::evidence::tdx::quote::{ATT_KEY_TYPE_ECDSA_P256, INTEL_QE_VENDOR_ID, TEE_TYPE_TDX};
    let mut q = alloc::vec::Vec::new();
    q.extend_from_slice(&version.to_le_bytes());
    q.extend_from_slice(&ATT_KEY_TYPE_ECDSA_P256.to_le_bytes());
    q.extend_from_slice(&TEE_TYPE_TDX.to_le_bytes());
    q.extend_from_slice(&[0; 4]);
    q.extend_from_slice(&INTEL_QE_VENDOR_ID);
    q.extend_from_slice(&[7; 20]);
    if version == 5 {
        q.extend_from_slice(&body_type.to_le_bytes());
        q.extend_from_slice(&len32(body.len()));
    }
    q.extend_from_slice(body);
    q
}

/// What follows the signed part of a TDX quote.
pub struct TdxSignatureData<'a> {
    /// ECDSA P-256 `r ‖ s` by the attestation key over the signed part.
    pub signature: &'a [u8; 64],
    /// The attestation key, raw `X ‖ Y`.
    pub attestation_key: &'a [u8; 64],
    /// The QE report (an SGX report body).
    pub qe_report: &'a [u8; crate::evidence::tdx::quote::QE_REPORT_LEN],
    /// `r ‖ s` by the PCK key over the QE report.
    pub qe_report_signature: &'a [u8; 64],
    /// QE authentication data.
    pub auth_data: &'a [u8],
    /// The PEM PCK chain (leaf, PCK CA, root).
    pub pck_chain_pem: &'a [u8],
}

fn len32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// Appends the signature data (signature, attestation key, QE report
/// certification data with the PCK chain) to a signed part.
pub fn tdx_quote_finish(quote: &mut alloc::vec::Vec<u8>, data: &TdxSignatureData<'_>) {
    use crate::evidence::tdx::quote::{CERT_DATA_PCK_CHAIN, CERT_DATA_QE_REPORT};
    let auth_len = u16::try_from(data.auth_data.len()).unwrap_or(u16::MAX);
    let mut cert = alloc::vec::Vec::new();
    cert.extend_from_slice(data.qe_report);
    cert.extend_from_slice(data.qe_report_signature);
    cert.extend_from_slice(&auth_len.to_le_bytes());
    cert.extend_from_slice(data.auth_data);
    cert.extend_from_slice(&CERT_DATA_PCK_CHAIN.to_le_bytes());
    cert.extend_from_slice(&len32(data.pck_chain_pem.len()));
    cert.extend_from_slice(data.pck_chain_pem);
    let mut sig = alloc::vec::Vec::new();
    sig.extend_from_slice(data.signature);
    sig.extend_from_slice(data.attestation_key);
    sig.extend_from_slice(&CERT_DATA_QE_REPORT.to_le_bytes());
    sig.extend_from_slice(&len32(cert.len()));
    sig.extend_from_slice(&cert);
    quote.extend_from_slice(&len32(sig.len()));
    quote.extend_from_slice(&sig);
}

/// A structurally valid TDX quote of `version` 4 or 5 (v5: body type
/// `body_type`, 2 for a TD report 1.0, 3 for 1.5) whose signatures are
/// garbage: the body is a byte pattern with `report_data` as REPORTDATA
/// (the pattern too when `None`), then `padding` after the signature data.
/// For tests only: it proves nothing.
pub fn synthetic_tdx_quote(
    version: u16,
    body_type: u16,
    report_data: Option<&[u8; 64]>,
    padding: &[u8],
) -> alloc::vec::Vec<u8> {
    use crate::evidence::tdx::quote::{QE_REPORT_LEN, TD_REPORT10_LEN, TD_REPORT15_LEN};
    /// REPORTDATA's offset in a TD report body.
    const REPORT_DATA_AT: usize = 520;
    let body_len = if body_type == 3 {
        TD_REPORT15_LEN
    } else {
        TD_REPORT10_LEN
    };
    let mut body: alloc::vec::Vec<u8> = (0..body_len).map(|i| (i % 251) as u8).collect();
    if let Some(data) = report_data
        && let Some(slot) = body.get_mut(REPORT_DATA_AT..REPORT_DATA_AT + 64)
    {
        slot.copy_from_slice(data);
    }
    let mut q = tdx_quote_signed_part(version, body_type, &body);
    let pem = b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n\0";
    tdx_quote_finish(
        &mut q,
        &TdxSignatureData {
            signature: &[4; 64],
            attestation_key: &[5; 64],
            qe_report: &[1; QE_REPORT_LEN],
            qe_report_signature: &[2; 64],
            auth_data: &[3; 32],
            pck_chain_pem: pem,
        },
    );
    q.extend_from_slice(padding);
    q
}

/// The folder of the real test vectors (`../shared/testdata` beside the
/// repository, or `$ACCORD_TESTDATA`), if it has `snp/` and `tdx/`; the
/// one place every test and benchmark finds it. Without it a test skips
/// with a `SKIPPED:` line, unless `ACCORD_REQUIRE_VECTORS=1`, which makes
/// the absence a failure (a panic naming the folder).
#[cfg(feature = "std")]
pub fn testdata_dir() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("ACCORD_TESTDATA") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
    };
    if dir.join("snp").is_dir() && dir.join("tdx").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("ACCORD_REQUIRE_VECTORS").as_deref() != Ok("1"),
        "ACCORD_REQUIRE_VECTORS=1 but {} has no test vectors (snp/, tdx/)",
        dir.display()
    );
    std::eprintln!("SKIPPED: no test vectors at {}", dir.display());
    None
}

/// The bytes of `relative` in [`testdata_dir`], or `None` (a `SKIPPED:`
/// line) when it cannot be read; with `ACCORD_REQUIRE_VECTORS=1` a missing
/// or unreadable vector is a failure naming it.
#[cfg(feature = "std")]
pub fn testdata_file(relative: &str) -> Option<alloc::vec::Vec<u8>> {
    let path = testdata_dir()?.join(relative);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            assert!(
                std::env::var("ACCORD_REQUIRE_VECTORS").as_deref() != Ok("1"),
                "ACCORD_REQUIRE_VECTORS=1 but test vector {} is unreadable: {err}",
                path.display()
            );
            std::eprintln!(
                "SKIPPED: test vector {} unavailable ({err})",
                path.display()
            );
            None
        }
    }
}
