//! Reading the files a user points the CLI at, with errors that name the file.

use std::path::{Path, PathBuf};

use accord_core::time::UnixTime;
use accord_core::x509::pem;
use anyhow::Context;

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a certificate file in DER or PEM and returns DER.
pub fn read_certificate(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path)?;
    pem::der_or_pem(&bytes, "CERTIFICATE")
        .map_err(|err| anyhow::anyhow!("{}: not a DER or single-PEM certificate ({err})", path.display()))
}

/// Reads the first certificate of a DER file or PEM bundle (AMD ships the
/// ASVK and ARK in one PEM file).
pub fn read_first_certificate(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path)?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{}: neither DER nor PEM", path.display()))?;
    let mut blocks = pem::decode_all(text, "CERTIFICATE")
        .map_err(|err| anyhow::anyhow!("{}: no PEM certificate ({err})", path.display()))?;
    Ok(blocks.remove(0))
}

/// Reads a CRL in DER or PEM (`X509 CRL`) and returns DER.
pub fn read_crl(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = read(path)?;
    pem::der_or_pem(&bytes, "X509 CRL")
        .map_err(|err| anyhow::anyhow!("{}: not a DER or PEM CRL ({err})", path.display()))
}

/// The first of `names` that exists beside `file`.
pub fn sibling(file: &Path, names: &[&str]) -> Option<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new("."));
    names.iter().map(|name| dir.join(name)).find(|candidate| candidate.is_file())
}

/// `--at`: an RFC 3339 instant, or now.
pub fn instant(at: Option<&str>) -> anyhow::Result<UnixTime> {
    match at {
        Some(text) => UnixTime::parse_rfc3339(text)
            .map_err(|err| anyhow::anyhow!("--at {text}: {err}")),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("system clock is before 1970")?;
            Ok(UnixTime(i64::try_from(now.as_secs()).context("system clock out of range")?))
        }
    }
}
