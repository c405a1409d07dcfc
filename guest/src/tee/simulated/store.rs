//! The simulated chip's persisted state: six files in one directory.
//!
//! | file | content |
//! |---|---|
//! | `ark.key`, `ask.key` | RSA-4096 private keys, PKCS#8 DER |
//! | `vcek.key` | P-384 private key, PKCS#8 DER |
//! | `ark.pem`, `ask.pem`, `vcek.pem` | the certificates, PEM |
//!
//! Files are created with mode 0600 inside a 0700 directory. A new chip is
//! written completely into a sibling temporary directory which is then
//! renamed onto the state directory, so a crash or a concurrent creator
//! never leaves a half-written chip: the loser of a race loads the
//! winner's chip. When the state directory exists already (empty, e.g. a
//! mounted volume) and cannot be replaced, each file is written to a
//! temporary name and renamed into place.
//!
//! Loading validates everything: each key parses, each certificate's public
//! key is its key file's, and the chain verifies with the same code as real
//! evidence (which also yields the chip's product, TCB and hardware id).
//! Every error names the file at fault.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use accord_core::evidence::snp::{Certs, Product, TcbVersion, TrustRoots, VerifiedChain};
use accord_core::time::UnixTime;
use accord_core::x509::{Certificate, pem as core_pem};
use p384::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

use super::SimulatedError;
use super::pki;
use accord_core::der::write::pem;

/// The files of a chip, in the order they are written.
pub const FILES: [&str; 6] = [
    "ark.key", "ask.key", "vcek.key", "ark.pem", "ask.pem", "vcek.pem",
];

/// A chip's keys and certificates, validated.
pub struct ChipState {
    /// The ARK's key.
    pub ark_key: rsa::PrivateKey,
    /// The ASK's key (kept to issue VCEKs for other TCBs).
    pub ask_key: rsa::PrivateKey,
    /// The VCEK's key.
    pub vcek_key: p384::ecdsa::SigningKey,
    /// ARK certificate, DER.
    pub ark: Vec<u8>,
    /// ASK certificate, DER.
    pub ask: Vec<u8>,
    /// VCEK certificate, DER.
    pub vcek: Vec<u8>,
    /// The product the VCEK names.
    pub product: Product,
    /// The TCB the VCEK was issued for.
    pub tcb: TcbVersion,
    /// CHIP_ID (the VCEK's hwID, zero-padded to 64 bytes).
    pub chip_id: [u8; 64],
}

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

/// Generates a new chip: RSA-4096 ARK and ASK (slow), a P-384 VCEK and a
/// random CHIP_ID (Turin: 8 random bytes, then zeros).
pub fn generate(product: Product, tcb: TcbVersion) -> Result<ChipState, SimulatedError> {
    let crypto = |what: &str| {
        let what = what.to_string();
        move |err: rsa::Error| SimulatedError::Crypto(format!("{what}: {err}"))
    };
    let ark_key = rsa::PrivateKey::new(&mut getrandom::SysRng, pki::RSA_BITS)
        .map_err(crypto("generating the ARK key"))?;
    let ask_key = rsa::PrivateKey::new(&mut getrandom::SysRng, pki::RSA_BITS)
        .map_err(crypto("generating the ASK key"))?;
    let vcek_key = loop {
        if let Ok(key) = p384::ecdsa::SigningKey::from_slice(&random::<48>()?) {
            break key;
        }
    };
    let mut chip_id = random::<64>()?;
    if let Some(tail) = chip_id.get_mut(product.hw_id_len()..) {
        tail.fill(0);
    }
    let hw_id = chip_id.get(..product.hw_id_len()).unwrap_or(&chip_id);
    let ark = pki::issue_ark(product, &serial()?, &ark_key).map_err(SimulatedError::Crypto)?;
    let ask =
        pki::issue_ask(product, &serial()?, &ark_key, &ask_key).map_err(SimulatedError::Crypto)?;
    let vcek = pki::issue_vcek(product, &serial()?, tcb, hw_id, &ask_key, &vcek_key)
        .map_err(SimulatedError::Crypto)?;
    validate(
        Path::new("<new chip>"),
        ark_key,
        ask_key,
        vcek_key,
        ark,
        ask,
        vcek,
    )
}

/// The serial number of the VCEK reissued for `tcb`: derived from the chip
/// and the TCB, so that every process (the chip, the simulated KDS) issues
/// the certificate for one TCB under one serial, which a CRL can revoke.
/// (AMD's own VCEKs all have serial 0.)
pub fn vcek_serial(state: &ChipState, tcb: TcbVersion) -> [u8; 16] {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(b"accord INSECURE SIMULATION VCEK serial");
    hash.update(state.chip_id);
    hash.update(tcb.encode(state.product).to_le_bytes());
    let digest = hash.finalize();
    let mut serial = [0u8; 16];
    for (slot, byte) in serial.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

/// Issues a VCEK certificate for another TCB (same key and chip), as a
/// firmware update would, with the serial [`vcek_serial`]. Not persisted.
pub fn reissue_vcek(state: &ChipState, tcb: TcbVersion) -> Result<Vec<u8>, SimulatedError> {
    let hw_id = state
        .chip_id
        .get(..state.product.hw_id_len())
        .unwrap_or(&state.chip_id);
    pki::issue_vcek(
        state.product,
        &vcek_serial(state, tcb),
        tcb,
        hw_id,
        &state.ask_key,
        &state.vcek_key,
    )
    .map_err(SimulatedError::Crypto)
}

fn corrupt(path: &Path, problem: impl Into<String>) -> SimulatedError {
    SimulatedError::Corrupt {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// Checks keys against certificates and the chain, and reads the chip's
/// product, TCB and hardware id from the VCEK. `dir` names the files in
/// errors.
fn validate(
    dir: &Path,
    ark_key: rsa::PrivateKey,
    ask_key: rsa::PrivateKey,
    vcek_key: p384::ecdsa::SigningKey,
    ark: Vec<u8>,
    ask: Vec<u8>,
    vcek: Vec<u8>,
) -> Result<ChipState, SimulatedError> {
    for (file, der, spki) in [
        ("ark", &ark, pki::rsa_spki(&ark_key)),
        ("ask", &ask, pki::rsa_spki(&ask_key)),
        ("vcek", &vcek, pki::ec_spki(&vcek_key)),
    ] {
        let cert_path = dir.join(format!("{file}.pem"));
        let cert = Certificate::from_der(der)
            .map_err(|err| corrupt(&cert_path, format!("not a certificate: {err}")))?;
        if cert.spki_der() != spki.as_slice() {
            return Err(corrupt(
                &dir.join(format!("{file}.key")),
                format!("the key does not belong to the certificate {file}.pem"),
            ));
        }
    }
    let provider = accord_core::crypto::default_provider();
    let chain = VerifiedChain::verify(
        &Certs { leaf: &vcek },
        None,
        &TrustRoots::custom(&ark, &ask),
        None,
        now(),
        provider,
    )
    .map_err(|err| {
        corrupt(
            dir,
            format!("ark.pem → ask.pem → vcek.pem is not a valid chain: {err}"),
        )
    })?;
    let mut chip_id = [0u8; 64];
    let hw_id = chain.hw_id();
    if let Some(dst) = chip_id.get_mut(..hw_id.len()) {
        dst.copy_from_slice(hw_id);
    }
    Ok(ChipState {
        ark_key,
        ask_key,
        vcek_key,
        ark,
        ask,
        vcek,
        product: chain.product(),
        tcb: chain.tcb(),
        chip_id,
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

fn read_rsa_key(path: &Path) -> Result<rsa::PrivateKey, SimulatedError> {
    rsa::PrivateKey::from_pkcs8_der(&read(path)?)
        .map_err(|err| corrupt(path, format!("not a PKCS#8 DER RSA private key: {err}")))
}

fn read_ec_key(path: &Path) -> Result<p384::ecdsa::SigningKey, SimulatedError> {
    let secret = p384::SecretKey::from_pkcs8_der(&read(path)?)
        .map_err(|err| corrupt(path, format!("not a PKCS#8 DER P-384 private key: {err}")))?;
    Ok(p384::ecdsa::SigningKey::from(secret))
}

/// Which of the chip's files exist in `dir`.
fn present(dir: &Path) -> Vec<&'static str> {
    FILES
        .iter()
        .copied()
        .filter(|file| dir.join(file).exists())
        .collect()
}

/// Loads the chip in `dir`; `Ok(None)` when `dir` holds none of its files.
pub fn load(dir: &Path) -> Result<Option<ChipState>, SimulatedError> {
    let found = present(dir);
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
                "incomplete simulated chip (missing {}); delete the directory to create a new chip",
                missing.join(", ")
            ),
        ));
    }
    let state = validate(
        dir,
        read_rsa_key(&dir.join("ark.key"))?,
        read_rsa_key(&dir.join("ask.key"))?,
        read_ec_key(&dir.join("vcek.key"))?,
        read_cert(&dir.join("ark.pem"))?,
        read_cert(&dir.join("ask.pem"))?,
        read_cert(&dir.join("vcek.pem"))?,
    )?;
    Ok(Some(state))
}

fn encode(state: &ChipState) -> Result<Vec<(&'static str, Vec<u8>)>, SimulatedError> {
    let der = |result: Result<_, String>| result.map_err(SimulatedError::Crypto);
    let ark_key = der(state
        .ark_key
        .to_pkcs8_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|e| format!("encoding the ARK key: {e}")))?;
    let ask_key = der(state
        .ask_key
        .to_pkcs8_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|e| format!("encoding the ASK key: {e}")))?;
    let vcek_secret = p384::SecretKey::from(&state.vcek_key);
    let vcek_key = der(vcek_secret
        .to_pkcs8_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|e| format!("encoding the VCEK key: {e}")))?;
    Ok(vec![
        ("ark.key", ark_key),
        ("ask.key", ask_key),
        ("vcek.key", vcek_key),
        ("ark.pem", pem("CERTIFICATE", &state.ark).into_bytes()),
        ("ask.pem", pem("CERTIFICATE", &state.ask).into_bytes()),
        ("vcek.pem", pem("CERTIFICATE", &state.vcek).into_bytes()),
    ])
}

pub(crate) fn io(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> SimulatedError {
    let path = path.to_path_buf();
    move |source| SimulatedError::Io {
        action,
        path,
        source,
    }
}

/// Writes `bytes` to `path` with mode 0600, atomically
/// ([`accord_fs_store::write_atomic`]).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SimulatedError> {
    accord_fs_store::write_atomic(path, bytes, 0o600).map_err(io("writing", path))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn make_dir(path: &Path) -> Result<(), SimulatedError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io("creating directory", path))
}

/// Persists a newly generated chip into `dir`, or, if another process
/// created a chip there meanwhile, loads and returns that one instead.
pub fn save_new(dir: &Path, state: ChipState) -> Result<ChipState, SimulatedError> {
    let files = encode(&state)?;
    save_staged(dir, &files, "chip", state, load)
}

/// Writes `files` into the new directory `dir` all at once (staged in a
/// sibling directory, then renamed) and returns `state`; if the rename
/// fails because another creator won, returns what `load` finds there
/// instead (or, for an existing empty directory `load` finds nothing in,
/// writes the files into it). Shared by the simulated TEEs' stores.
pub(crate) fn save_staged<T>(
    dir: &Path,
    files: &[(&'static str, Vec<u8>)],
    fallback_name: &str,
    state: T,
    load: impl FnOnce(&Path) -> Result<Option<T>, SimulatedError>,
) -> Result<T, SimulatedError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    make_dir(&parent)?;
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| fallback_name.to_string());
    let temp = parent.join(format!(".{base}.tmp-{}", hex(&random::<6>()?)));
    let staged = (|| {
        make_dir(&temp)?;
        for (name, bytes) in files {
            write_file(&temp.join(name), bytes)?;
        }
        Ok::<(), SimulatedError>(())
    })();
    if let Err(err) = staged {
        let _ = fs::remove_dir_all(&temp);
        return Err(err);
    }
    match fs::rename(&temp, dir) {
        Ok(()) => return Ok(state),
        Err(_) => {
            let _ = fs::remove_dir_all(&temp);
        }
    }
    // The rename failed: another creator won, or `dir` is an existing
    // directory that cannot be replaced (non-empty or a mount point).
    if let Some(existing) = load(dir)? {
        return Ok(existing);
    }
    make_dir(dir)?;
    for (name, bytes) in files {
        write_file(&dir.join(name), bytes)?;
    }
    Ok(state)
}
