//! The initializer's files: the workload's certificate chain and key, and
//! the mesh CA. Every error names the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The directory under the initializer's output that holds the TLS files.
pub const TLS_DIR: &str = "tls-config";
/// The workload's certificate chain (leaf, then intermediate).
pub const CERT_CHAIN: &str = "certChain.pem";
/// The workload's private key (PKCS#8 `PRIVATE KEY`).
pub const KEY: &str = "key.pem";
/// The mesh CA certificate: the trust anchor of the mesh.
pub const MESH_CA: &str = "mesh-ca.pem";

/// A workload's identity: its certificate chain and private key.
#[derive(Debug)]
pub struct Identity {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

/// `DIR/tls-config/NAME`.
pub fn tls_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(TLS_DIR).join(name)
}

fn unreadable(path: &Path, err: rustls::pki_types::pem::Error) -> anyhow::Error {
    let hint = match &err {
        rustls::pki_types::pem::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            " (the initializer writes it: has it run with --out on this directory?)"
        }
        _ => "",
    };
    anyhow!("{}: {err}{hint}", path.display())
}

/// Reads the identity the initializer wrote into `dir`
/// (`tls-config/certChain.pem` and `tls-config/key.pem`).
pub fn identity(dir: &Path) -> anyhow::Result<Identity> {
    let chain_path = tls_file(dir, CERT_CHAIN);
    let chain = CertificateDer::pem_file_iter(&chain_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| unreadable(&chain_path, e))?;
    if chain.is_empty() {
        bail!("{}: no CERTIFICATE in it", chain_path.display());
    }
    let key_path = tls_file(dir, KEY);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| unreadable(&key_path, e))?;
    Ok(Identity { chain, key })
}

/// Reads the mesh CA the initializer wrote into `dir`
/// (`tls-config/mesh-ca.pem`): the only trust anchor of the mesh.
pub fn roots(dir: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let path = tls_file(dir, MESH_CA);
    let ca = CertificateDer::from_pem_file(&path).map_err(|e| unreadable(&path, e))?;
    let mut roots = RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| anyhow!("{}: not a usable CA certificate: {e}", path.display()))?;
    Ok(Arc::new(roots))
}
