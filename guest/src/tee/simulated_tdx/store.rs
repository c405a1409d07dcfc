//! The simulated TDX platform's persisted state: nine files in one
//! directory.
//!
//! | file | content |
//! |---|---|
//! | `root.key`, `pck-ca.key`, `pck.key`, `tcb-signing.key` | P-256 private keys of the simulated PKI, PKCS#8 DER |
//! | `attestation.key` | the quoting enclave's attestation key, PKCS#8 DER |
//! | `root.pem`, `pck-ca.pem`, `pck.pem`, `tcb-signing.pem` | the certificates, PEM |
//!
//! As for the simulated SEV-SNP chip, files are created with mode 0600 in
//! a 0700 directory; a new platform is written completely into a sibling
//! temporary directory which is then renamed onto the state directory, so
//! the loser of a creation race loads the winner's platform. Loading
//! checks that every key belongs to its certificate, that the chain
//! verifies (root self-signed; PCK CA and TCB Signing by the root; PCK by
//! the PCK CA) and reads the platform ids back from the PCK certificate's
//! SGX extension with core's parser. Every error names the file at fault.

use std::fs;
use std::path::Path;

use accord_core::der::write::pem;
use accord_core::evidence::tdx::pck::PckExtension;
use accord_core::x509::{Certificate, pem as core_pem};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

use crate::tee::simulated::SimulatedError;
use crate::tee::simulated::store::save_staged;
use accord_core::evidence::collateral::TdxCa;
use accord_core::internal::tdx_sim::{self as pki, PlatformIds};

/// The files of a platform, in the order they are written.
pub const FILES: [&str; 9] = [
    "root.key",
    "pck-ca.key",
    "pck.key",
    "tcb-signing.key",
    "attestation.key",
    "root.pem",
    "pck-ca.pem",
    "pck.pem",
    "tcb-signing.pem",
];

/// A platform's keys and certificates (validated when loaded).
pub use accord_core::internal::tdx_sim::Platform as PlatformState;

fn random<const N: usize>() -> Result<[u8; N], SimulatedError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|err| SimulatedError::Crypto(format!("getrandom: {err}")))?;
    Ok(out)
}

/// A random positive certificate serial number (16 bytes, top bit clear).
fn serial() -> Result<[u8; 16], SimulatedError> {
    let mut serial = random::<16>()?;
    serial[0] = (serial[0] & 0x7f) | 0x01;
    Ok(serial)
}

fn new_key() -> Result<p256::ecdsa::SigningKey, SimulatedError> {
    loop {
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&random::<32>()?) {
            return Ok(key);
        }
    }
}

/// Generates a new platform: five P-256 keys, its certificates, and
/// random PPID, FMSPC and platform instance id (PCE-ID 0000, plausible
/// TCB component SVNs).
pub fn generate() -> Result<PlatformState, SimulatedError> {
    let root_key = new_key()?;
    let pck_ca_key = new_key()?;
    let pck_key = new_key()?;
    let tcb_signing_key = new_key()?;
    let attestation_key = new_key()?;
    let ids = PlatformIds {
        ppid: random()?,
        sgx_components: [2, 2, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
        pce_svn: 13,
        cpu_svn: [2, 2, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
        pce_id: [0, 0],
        fmspc: random()?,
        piid: random()?,
    };
    let root = pki::issue_root(&serial()?, &root_key);
    let pck_ca = pki::issue_pck_ca(&serial()?, TdxCa::Platform, &root_key, &pck_ca_key);
    let pck = pki::issue_pck(&serial()?, &ids, TdxCa::Platform, &pck_ca_key, &pck_key);
    let tcb_signing = pki::issue_tcb_signing(&serial()?, &root_key, &tcb_signing_key);
    validate(
        Path::new("<new platform>"),
        Keys {
            root_key,
            pck_ca_key,
            pck_key,
            tcb_signing_key,
            attestation_key,
        },
        [root, pck_ca, pck, tcb_signing],
    )
}

struct Keys {
    root_key: p256::ecdsa::SigningKey,
    pck_ca_key: p256::ecdsa::SigningKey,
    pck_key: p256::ecdsa::SigningKey,
    tcb_signing_key: p256::ecdsa::SigningKey,
    attestation_key: p256::ecdsa::SigningKey,
}

fn corrupt(path: &Path, problem: impl Into<String>) -> SimulatedError {
    SimulatedError::Corrupt {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Parses `der` (the certificate `file`.pem) and checks that `key` is its
/// key.
fn parse_cert<'a>(
    dir: &Path,
    file: &str,
    der: &'a [u8],
    key: &p256::ecdsa::SigningKey,
) -> Result<Certificate<'a>, SimulatedError> {
    let path = dir.join(format!("{file}.pem"));
    let cert = Certificate::from_der(der)
        .map_err(|err| corrupt(&path, format!("not a certificate: {err}")))?;
    if cert.spki_der() != pki::spki(key).as_slice() {
        return Err(corrupt(
            &dir.join(format!("{file}.key")),
            format!("the key does not belong to the certificate {file}.pem"),
        ));
    }
    Ok(cert)
}

/// Checks keys against certificates and the chain, and reads the
/// platform ids from the PCK certificate. `dir` names the files in errors.
fn validate(
    dir: &Path,
    keys: Keys,
    [root, pck_ca, pck, tcb_signing]: [Vec<u8>; 4],
) -> Result<PlatformState, SimulatedError> {
    let provider = accord_core::crypto::default_provider();
    let parse = |file, der, key| parse_cert(dir, file, der, key);
    let root_cert = parse("root", &root, &keys.root_key)?;
    let ca_cert = parse("pck-ca", &pck_ca, &keys.pck_ca_key)?;
    let pck_cert = parse("pck", &pck, &keys.pck_key)?;
    let signing_cert = parse("tcb-signing", &tcb_signing, &keys.tcb_signing_key)?;
    for (file, cert, issuer) in [
        ("root.pem", &root_cert, &root_cert),
        ("pck-ca.pem", &ca_cert, &root_cert),
        ("pck.pem", &pck_cert, &ca_cert),
        ("tcb-signing.pem", &signing_cert, &root_cert),
    ] {
        cert.verify_issued_by(issuer, provider).map_err(|err| {
            corrupt(
                &dir.join(file),
                format!("not issued by its simulated issuer: {err}"),
            )
        })?;
    }
    let extension = PckExtension::from_certificate(&pck_cert)
        .map_err(|err| corrupt(&dir.join("pck.pem"), format!("SGX extension: {err}")))?;
    let ids = PlatformIds {
        ppid: extension.ppid,
        sgx_components: extension.sgx_components,
        pce_svn: extension.pce_svn,
        cpu_svn: extension.cpu_svn,
        pce_id: extension.pce_id,
        fmspc: extension.fmspc,
        piid: extension
            .platform_instance_id
            .ok_or_else(|| corrupt(&dir.join("pck.pem"), "no platform instance id"))?,
    };
    Ok(PlatformState {
        root_key: keys.root_key,
        pck_ca_key: keys.pck_ca_key,
        pck_key: keys.pck_key,
        tcb_signing_key: keys.tcb_signing_key,
        attestation_key: keys.attestation_key,
        root,
        pck_ca,
        pck,
        tcb_signing,
        ids,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, SimulatedError> {
    fs::read(path).map_err(|source| SimulatedError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })
}

fn read_cert(path: &Path) -> Result<Vec<u8>, SimulatedError> {
    core_pem::der_or_pem(&read(path)?, "CERTIFICATE")
        .map_err(|err| corrupt(path, format!("not a PEM certificate: {err}")))
}

fn read_key(path: &Path) -> Result<p256::ecdsa::SigningKey, SimulatedError> {
    let secret = p256::SecretKey::from_pkcs8_der(&read(path)?)
        .map_err(|err| corrupt(path, format!("not a PKCS#8 DER P-256 private key: {err}")))?;
    Ok(p256::ecdsa::SigningKey::from(secret))
}

/// Loads the platform in `dir`; `Ok(None)` when `dir` holds none of its
/// files.
pub fn load(dir: &Path) -> Result<Option<PlatformState>, SimulatedError> {
    let found: Vec<&str> = FILES
        .iter()
        .copied()
        .filter(|file| dir.join(file).exists())
        .collect();
    if found.is_empty() {
        return Ok(None);
    }
    if found.len() != FILES.len() {
        let missing: Vec<&str> = FILES
            .iter()
            .copied()
            .filter(|f| !found.contains(f))
            .collect();
        return Err(corrupt(
            dir,
            format!(
                "incomplete simulated TDX platform (missing {}); delete the directory to create a new one",
                missing.join(", ")
            ),
        ));
    }
    let keys = Keys {
        root_key: read_key(&dir.join("root.key"))?,
        pck_ca_key: read_key(&dir.join("pck-ca.key"))?,
        pck_key: read_key(&dir.join("pck.key"))?,
        tcb_signing_key: read_key(&dir.join("tcb-signing.key"))?,
        attestation_key: read_key(&dir.join("attestation.key"))?,
    };
    let certs = [
        read_cert(&dir.join("root.pem"))?,
        read_cert(&dir.join("pck-ca.pem"))?,
        read_cert(&dir.join("pck.pem"))?,
        read_cert(&dir.join("tcb-signing.pem"))?,
    ];
    validate(dir, keys, certs).map(Some)
}

fn encode(state: &PlatformState) -> Result<Vec<(&'static str, Vec<u8>)>, SimulatedError> {
    let key = |name: &str, key: &p256::ecdsa::SigningKey| {
        p256::SecretKey::from(key)
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| SimulatedError::Crypto(format!("encoding {name}: {e}")))
    };
    Ok(vec![
        ("root.key", key("root.key", &state.root_key)?),
        ("pck-ca.key", key("pck-ca.key", &state.pck_ca_key)?),
        ("pck.key", key("pck.key", &state.pck_key)?),
        (
            "tcb-signing.key",
            key("tcb-signing.key", &state.tcb_signing_key)?,
        ),
        (
            "attestation.key",
            key("attestation.key", &state.attestation_key)?,
        ),
        ("root.pem", pem("CERTIFICATE", &state.root).into_bytes()),
        ("pck-ca.pem", pem("CERTIFICATE", &state.pck_ca).into_bytes()),
        ("pck.pem", pem("CERTIFICATE", &state.pck).into_bytes()),
        (
            "tcb-signing.pem",
            pem("CERTIFICATE", &state.tcb_signing).into_bytes(),
        ),
    ])
}

/// Persists a newly generated platform into `dir`, or, if another process
/// created one there meanwhile, loads and returns that one instead.
pub fn save_new(dir: &Path, state: PlatformState) -> Result<PlatformState, SimulatedError> {
    let files = encode(&state)?;
    save_staged(dir, &files, "tdx", state, load)
}
