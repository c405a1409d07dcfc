//! The initializer (Contrast's initializer init container): it runs before the workload,
//! attests to the coordinator's mesh API with a fresh P-256 key, checks
//! that the coordinator is the one its init-data pins, and only then
//! writes the certificate, the key, the CA certificates and the workload
//! secret where the workload expects them.
//!
//! # What it checks
//!
//! The host routes every connection, this one too: whoever answers would
//! hand the workload its certificates and its workload secret. So the
//! initializer trusts only what its (measured) configuration pins,
//! [`CoordinatorPins`]:
//!
//! 1. in the attested-TLS handshake, the coordinator's evidence must match
//!    the pinned reference values and carry one of the pinned coordinator
//!    policy hashes (checks `coordinator-evidence`, `coordinator-policy`);
//!    our own evidence is sent only after that;
//! 2. the `MeshCert` reply must come from the pinned *deployment*: every
//!    sharing of the coordinator's seed in its history uses only pinned
//!    seed-share owners with at least the pinned threshold, its workload
//!    owners are among the pinned ones (if pinned), and the issued chain
//!    holds together, is for our key and (if pinned) ends in the pinned
//!    root CA. `accord_core::pins` has the checks and their names.
//!
//! With neither seed-share owners nor the root CA pinned the initializer
//! refuses to start ([`CoordinatorPins::check`]).
//!
//! Every check runs before any file is written: a refused coordinator
//! leaves nothing behind. Each attempt prints one line: `attempt N
//! failed: …` for what may pass (network, a coordinator not ready yet, an
//! API error), `attempt N refused the coordinator at ADDR: check NAME: …`
//! for a coordinator that is not the pinned one. Both are retried (the
//! host may route the next connection to the right coordinator, and a
//! restarted init container would do the same), transient failures with
//! exponential backoff (1 s doubling to 10 s), refusals always after the
//! longest delay (10 s); `--max-attempts` bounds both, and the final error
//! names the last refusal.
//!
//! # Files
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
//! Each file is written atomically (temporary file, fsync, rename, fsync
//! of the directory). With `--owner UID` the two directories and their
//! files then belong to UID (the workload's user), so that a workload that
//! does not run as root can read its key; `accord generate` passes the
//! user its pod's first container runs as.

use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accord_core::crypto::default_provider;
use accord_core::der::write::pem;
use accord_core::hex;
use accord_core::pins::{CoordinatorPins, check_mesh_cert};
use accord_core::protocol::{MeshCert, NewMeshCertReply};
use anyhow::{Context, bail};
use zeroize::Zeroizing;

use crate::atls::tls::generate_p256_pkcs8;
use crate::atls::{AtlsError, Clock, Identity, PeerPolicy};
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
    /// What the workload trusts of its coordinator.
    pub pins: CoordinatorPins,
    /// Give the files and their directories to this user (the workload's:
    /// the initializer runs as root for the TEE's report interface, and
    /// the key and secret are 0400). Needs CAP_CHOWN.
    pub owner: Option<u32>,
}

/// The first retry delay.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// The longest retry delay, and the delay after a refusal.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Why an attempt got nothing.
#[derive(Debug)]
pub enum AttemptError {
    /// The coordinator is not the pinned one (or not of the pinned
    /// deployment): `check` names the check, `reason` says expected and
    /// got.
    Refused {
        /// The check's name (`coordinator-policy`, `seedshare-owner`, …).
        check: &'static str,
        /// What was expected and what came.
        reason: String,
    },
    /// Anything else: the network, a coordinator not ready yet, an API
    /// error. May pass.
    Failed(anyhow::Error),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { check, reason } => write!(f, "check {check}: {reason}"),
            Self::Failed(err) => write!(f, "{err:#}"),
        }
    }
}

impl std::error::Error for AttemptError {}

/// What the coordinator's evidence must satisfy under `pins`.
pub fn coordinator_policy(pins: &CoordinatorPins) -> PeerPolicy {
    PeerPolicy {
        reference: pins.reference.clone(),
        expected_policy_hashes: Some(pins.policy_hashes.clone()),
        at: Clock::System,
    }
}

/// A refusal of the coordinator's evidence, if `err` is one.
fn evidence_refusal(err: &anyhow::Error, pins: &CoordinatorPins) -> Option<AttemptError> {
    let atls = err.chain().find_map(|c| c.downcast_ref::<AtlsError>())?;
    let check = match atls {
        AtlsError::PolicyHashNotAllowed { .. } => {
            let pinned: Vec<String> = pins.policy_hashes.iter().map(|h| hex::encode(h)).collect();
            return Some(AttemptError::Refused {
                check: "coordinator-policy",
                reason: format!("{atls}; expected one of [{}]", pinned.join(", ")),
            });
        }
        AtlsError::Evidence(_)
        | AtlsError::NotBound { .. }
        | AtlsError::Reflected { .. }
        | AtlsError::EvidenceRequired => "coordinator-evidence",
        _ => return None,
    };
    Some(AttemptError::Refused {
        check,
        reason: format!("{atls} (checked against the pinned reference values)"),
    })
}

/// One attempt: connects to `addr` as `identity` (attesting with `tee`),
/// verifies the coordinator against `pins`, asks for a certificate and
/// checks the reply against `pins`: the certificate as the coordinator
/// sent it, once every check passed. Writes nothing. Pins that fail
/// [`CoordinatorPins::check`] are refused (check `pins`) before
/// connecting.
pub async fn request(
    addr: &str,
    pins: &CoordinatorPins,
    tee: Arc<dyn TeeProvider>,
    identity: &Identity,
) -> Result<MeshCert, AttemptError> {
    pins.check().map_err(|err| AttemptError::Refused {
        check: "pins",
        reason: err.to_string(),
    })?;
    attempt(addr, pins, tee, identity).await
}

/// [`request`] with pins already checked (the retry loop of [`run`]).
async fn attempt(
    addr: &str,
    pins: &CoordinatorPins,
    tee: Arc<dyn TeeProvider>,
    identity: &Identity,
) -> Result<MeshCert, AttemptError> {
    let connected =
        MeshClient::connect(addr, coordinator_policy(pins), tee, identity.clone()).await;
    let mut client = match connected {
        Ok(client) => client,
        Err(err) => return Err(evidence_refusal(&err, pins).unwrap_or(AttemptError::Failed(err))),
    };
    let response = client.new_mesh_cert().await.map_err(AttemptError::Failed)?;
    let cert = match response {
        NewMeshCertReply::MeshCert(cert) => cert,
        NewMeshCertReply::Error(error) => {
            return Err(AttemptError::Failed(error.into_api_error().into()));
        }
    };
    check_mesh_cert(
        default_provider(),
        &pins.deployment,
        identity.spki(),
        &cert.cert_chain,
        &cert.mesh_ca,
        &cert.root_ca,
        &cert.deployment,
    )
    .map_err(|refusal| AttemptError::Refused {
        check: refusal.check(),
        reason: refusal.reason().to_string(),
    })?;
    Ok(cert)
}

/// A fresh P-256 key (PKCS#8 DER) and the TLS identity that presents it.
fn identity() -> anyhow::Result<(Identity, Zeroizing<Vec<u8>>)> {
    let pkcs8 = generate_p256_pkcs8().context("generating the workload key")?;
    let identity = Identity::from_pkcs8(&pkcs8)?;
    Ok((identity, pkcs8))
}

/// Checks the pins, gets a certificate from the coordinator (retrying as
/// the module docs say) and writes the files.
pub async fn run(tee: Arc<dyn TeeProvider>, config: &InitializerConfig) -> anyhow::Result<()> {
    config
        .pins
        .check()
        .context("refusing to start: the coordinator is not pinned")?;
    let (identity, pkcs8) = identity()?;
    let addr = &config.coordinator;
    let mut delay = FIRST_DELAY;
    let mut tries: u32 = 0;
    let mut refusals: u32 = 0;
    let mut last_refusal: Option<String> = None;
    let cert = loop {
        tries = tries.saturating_add(1);
        let error = match attempt(addr, &config.pins, Arc::clone(&tee), &identity).await {
            Ok(cert) => break cert,
            Err(error) => error,
        };
        let line = error.to_string().replace('\n', " ");
        let wait = match &error {
            AttemptError::Refused { .. } => {
                refusals = refusals.saturating_add(1);
                tracing::warn!("attempt {tries} refused the coordinator at {addr}: {line}");
                last_refusal = Some(line.clone());
                MAX_DELAY
            }
            AttemptError::Failed(_) => {
                tracing::warn!("attempt {tries} failed: {line}");
                delay
            }
        };
        if config.max_attempts.is_some_and(|max| tries >= max) {
            match error {
                AttemptError::Refused { .. } => bail!(
                    "no certificate after {tries} attempt(s), {refusals} refused; the last refused the coordinator at {addr}: {line}"
                ),
                AttemptError::Failed(_) => match &last_refusal {
                    Some(refused) => bail!(
                        "no certificate after {tries} attempt(s), {refusals} refused (the last refused the coordinator at {addr}: {refused}); the last attempt: {line}"
                    ),
                    None => bail!("no certificate after {tries} attempt(s): {line}"),
                },
            }
        }
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY);
    };
    write_files(&config.out, &cert, &pkcs8, config.owner)?;
    tracing::info!(
        "certificate written to {} (deployment generation {})",
        config.out.join("tls-config").display(),
        cert.deployment.generation
    );
    Ok(())
}

fn write_files(
    out: &Path,
    cert: &MeshCert,
    pkcs8: &[u8],
    owner: Option<u32>,
) -> anyhow::Result<()> {
    if owner.is_some() {
        // A run before this one in the same pod gave them away; without
        // CAP_DAC_OVERRIDE root cannot write there until it takes them back.
        give_to(out, 0)?;
    }
    let tls = out.join("tls-config");
    fs::create_dir_all(&tls).with_context(|| format!("creating {}", tls.display()))?;
    let chain: String = cert
        .cert_chain
        .iter()
        .map(|der| pem("CERTIFICATE", der))
        .collect();
    write_atomic(
        &tls,
        "mesh-ca.pem",
        pem("CERTIFICATE", &cert.mesh_ca).as_bytes(),
        0o444,
    )?;
    write_atomic(&tls, "certChain.pem", chain.as_bytes(), 0o444)?;
    let key = Zeroizing::new(pem("PRIVATE KEY", pkcs8));
    write_atomic(&tls, "key.pem", key.as_bytes(), 0o400)?;
    write_atomic(
        &tls,
        "coordinator-root-ca.pem",
        pem("CERTIFICATE", &cert.root_ca).as_bytes(),
        0o444,
    )?;
    if let Some(secret) = &cert.workload_secret {
        let secrets = out.join("secrets");
        fs::create_dir_all(&secrets).with_context(|| format!("creating {}", secrets.display()))?;
        let text = Zeroizing::new(hex::encode(secret));
        write_atomic(&secrets, "workload-secret-seed", text.as_bytes(), 0o400)?;
    }
    if let Some(uid) = owner {
        give_to(out, uid)?;
    }
    Ok(())
}

/// Gives `tls-config/` and `secrets/` and the files in them to `uid`
/// (the group stays).
fn give_to(out: &Path, uid: u32) -> anyhow::Result<()> {
    for dir in ["tls-config", "secrets"] {
        let dir = out.join(dir);
        if !dir.exists() {
            continue;
        }
        let mut paths = vec![dir.clone()];
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            paths.push(entry?.path());
        }
        for path in paths {
            std::os::unix::fs::chown(&path, Some(uid), None).with_context(|| {
                format!(
                    "giving {} to user {uid} (--owner; the initializer needs CAP_CHOWN)",
                    path.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` with `mode`, atomically
/// ([`accord_fs_store::write_atomic`]: temporary file, fsync, rename, fsync
/// of the directory).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let target = dir.join(name);
    accord_fs_store::write_atomic(&target, bytes, mode)
        .map_err(|err| anyhow::anyhow!("writing {}: {err}", target.display()))
}
