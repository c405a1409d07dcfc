//! The initializer (contrast notes §5.1): it runs before the workload,
//! attests to the coordinator's mesh API with a fresh P-256 key, and
//! writes the certificate, the key, the CA certificates and the workload
//! secret where the workload expects them.
//!
//! Under `DIR`:
//!
//! | file | mode |
//! |---|---|
//! | `tls-config/mesh-ca.pem` | 0444 |
//! | `tls-config/certChain.pem` (leaf, then intermediate) | 0444 |
//! | `tls-config/key.pem` (PKCS#8 `PRIVATE KEY`) | 0400 |
//! | `tls-config/coordinator-root-ca.pem` | 0444 |
//! | `secrets/workload-secret-seed` (hex, if the policy names a secret) | 0400 |
//!
//! Each file is written atomically (temporary file, fsync, rename). Failed
//! attempts are retried with exponential backoff (1 s doubling to 10 s),
//! each failure printed on one line.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accord_core::der::write::pem;
use accord_core::hex;
use accord_core::protocol::MeshResponse;
use anyhow::{Context, bail};
use zeroize::Zeroizing;

use crate::atls::Identity;
use crate::client::MeshClient;
use crate::tee::TeeProvider;

/// What the initializer needs.
#[derive(Clone, Debug)]
pub struct InitializerConfig {
    /// The mesh API (`HOST:PORT`).
    pub coordinator: String,
    /// Where to write `tls-config/` and `secrets/`.
    pub out: std::path::PathBuf,
    /// Give up after this many attempts (`None`: never).
    pub max_attempts: Option<u32>,
}

/// The first retry delay.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest retry delay.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// What the coordinator issued.
struct Issued {
    cert_chain: Vec<Vec<u8>>,
    mesh_ca: Vec<u8>,
    root_ca: Vec<u8>,
    workload_secret: Option<Zeroizing<Vec<u8>>>,
}

/// A fresh P-256 key (PKCS#8 DER) and a self-signed certificate for it.
fn identity() -> anyhow::Result<(Identity, Zeroizing<Vec<u8>>)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the workload key")?;
    let params = rcgen::CertificateParams::new(vec!["accord-initializer".to_string()])
        .context("certificate parameters")?;
    let cert = params
        .self_signed(&key)
        .context("self-signing the certificate")?;
    let pkcs8 = Zeroizing::new(key.serialize_der());
    let identity = Identity::from_der(cert.der().to_vec(), pkcs8.to_vec())?;
    Ok((identity, pkcs8))
}

async fn attempt(
    config: &InitializerConfig,
    tee: &Arc<dyn TeeProvider>,
    identity: &Identity,
) -> anyhow::Result<Issued> {
    let mut client =
        MeshClient::connect(&config.coordinator, Arc::clone(tee), identity.clone()).await?;
    match client.new_mesh_cert().await? {
        MeshResponse::MeshCert {
            cert_chain,
            mesh_ca,
            root_ca,
            workload_secret,
            ..
        } => Ok(Issued {
            cert_chain,
            mesh_ca,
            root_ca,
            workload_secret,
        }),
        MeshResponse::Error(error) => Err(error.into_api_error().into()),
        MeshResponse::PeerSecrets { .. } => {
            anyhow::bail!("the coordinator answered NewMeshCert with peer secrets")
        }
    }
}

/// Gets a certificate from the coordinator and writes the files.
pub async fn run(tee: Arc<dyn TeeProvider>, config: &InitializerConfig) -> anyhow::Result<()> {
    let (identity, pkcs8) = identity()?;
    let mut delay = FIRST_DELAY;
    let mut tries: u32 = 0;
    let issued = loop {
        tries = tries.saturating_add(1);
        match attempt(config, &tee, &identity).await {
            Ok(issued) => break issued,
            Err(err) => {
                let line = format!("{err:#}").replace('\n', " ");
                eprintln!("accord-guest initializer: attempt {tries} failed: {line}");
                if config.max_attempts.is_some_and(|max| tries >= max) {
                    bail!("no certificate after {tries} attempt(s): {line}");
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_DELAY);
            }
        }
    };
    write_files(&config.out, &issued, &pkcs8)?;
    eprintln!(
        "accord-guest initializer: certificate written to {}",
        config.out.join("tls-config").display()
    );
    Ok(())
}

fn write_files(out: &Path, issued: &Issued, pkcs8: &[u8]) -> anyhow::Result<()> {
    let tls = out.join("tls-config");
    fs::create_dir_all(&tls).with_context(|| format!("creating {}", tls.display()))?;
    let chain: String = issued
        .cert_chain
        .iter()
        .map(|der| pem("CERTIFICATE", der))
        .collect();
    write_atomic(
        &tls,
        "mesh-ca.pem",
        pem("CERTIFICATE", &issued.mesh_ca).as_bytes(),
        0o444,
    )?;
    write_atomic(&tls, "certChain.pem", chain.as_bytes(), 0o444)?;
    let key = Zeroizing::new(pem("PRIVATE KEY", pkcs8));
    write_atomic(&tls, "key.pem", key.as_bytes(), 0o400)?;
    write_atomic(
        &tls,
        "coordinator-root-ca.pem",
        pem("CERTIFICATE", &issued.root_ca).as_bytes(),
        0o444,
    )?;
    if let Some(secret) = &issued.workload_secret {
        let secrets = out.join("secrets");
        fs::create_dir_all(&secrets).with_context(|| format!("creating {}", secrets.display()))?;
        let text = Zeroizing::new(hex::encode(secret));
        write_atomic(&secrets, "workload-secret-seed", text.as_bytes(), 0o400)?;
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` with `mode` through a temporary file, an
/// fsync and a rename (then fsyncs the directory).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let target = dir.join(name);
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let _ = fs::remove_file(&temp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &target)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(err) = result {
        let _ = fs::remove_file(&temp);
        bail!("writing {}: {err}", target.display());
    }
    Ok(())
}
