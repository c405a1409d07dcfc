//! What `flow.rs` and `recovery.rs` share: a deployment prepared by the
//! demo's helpers (`accord_demo::demo::Deployment`, INSECURE simulated
//! chip) with its coordinator running in this process, the CLI's
//! arguments for it, and readers for the files the CLI and the
//! initializer write.

use std::path::{Path, PathBuf};

use accord_cli::net::{CoordinatorOptions, Failure};
use accord_cli::set_cmd::{SetArgs, SetOutcome};
use accord_cli::verify_cmd::VerifyArgs;
use accord_cli::workspace::TrustState;
use accord_core::crypto::default_provider;
use accord_core::x509::Certificate;
use accord_demo::demo::Deployment;
use accord_guest::coordinator::InProcess;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A deployment in a temporary directory and its running coordinator.
pub struct Running {
    pub _temp: tempfile::TempDir,
    /// The workload owner's workspace (manifest, keys, policies, …).
    pub dir: PathBuf,
    pub deployment: Deployment,
    pub coordinator: Option<InProcess>,
}

impl Running {
    /// Prepares `deployment(dir)` (keys, resources, manifest) and starts
    /// its coordinator.
    pub async fn start(
        tag: &str,
        deployment: impl FnOnce(&Path) -> anyhow::Result<Deployment>,
    ) -> Self {
        let temp = tempfile::Builder::new()
            .prefix(&format!("accord-tests-{tag}-"))
            .tempdir()
            .unwrap();
        let dir = temp.path().join("owner");
        std::fs::create_dir_all(&dir).unwrap();
        // The demo's helpers open the chip at `coordinator/chip`: this
        // process's chip, generated once for all the tests.
        super::install_process_chip(&dir.join("coordinator/chip"));
        let deployment = deployment(&dir).unwrap();
        let coordinator = deployment.start_coordinator().await.unwrap();
        Self {
            _temp: temp,
            dir,
            deployment,
            coordinator: Some(coordinator),
        }
    }

    pub fn coordinator(&self) -> &InProcess {
        self.coordinator.as_ref().unwrap()
    }

    pub fn user(&self) -> String {
        self.coordinator().user_addr.to_string()
    }

    pub fn mesh(&self) -> String {
        self.coordinator().mesh_addr.to_string()
    }

    /// Stops the coordinator and starts another over the same state
    /// directory (new ports).
    pub async fn restart(&mut self) {
        self.coordinator.take().unwrap().stop().await.unwrap();
        self.coordinator = Some(self.deployment.start_coordinator().await.unwrap());
    }

    /// The connection options for workspace `dir`, with
    /// `--insecure-simulation` (the deployment's manifest trusts the
    /// simulated chip).
    pub fn options(&self, dir: &Path) -> CoordinatorOptions {
        self.options_without_simulation(dir)
            .accepting_insecure_simulation()
    }

    /// The connection options for workspace `dir` without
    /// `--insecure-simulation`, `--offline` (the simulated chip's evidence
    /// carries its collateral; no test reaches AMD or Intel).
    pub fn options_without_simulation(&self, dir: &Path) -> CoordinatorOptions {
        CoordinatorOptions::new(self.user())
            .in_workspace(dir)
            .offline()
    }

    /// `accord set` from the owner's workspace.
    pub fn set_args(&self, key: Option<PathBuf>) -> SetArgs {
        SetArgs {
            options: self.options(&self.dir),
            workload_owner_key: key,
            signature: Vec::new(),
            atomic: true,
            reshare: false,
        }
    }

    /// `accord set` that must work.
    pub async fn set(&self, key: Option<PathBuf>) -> SetOutcome {
        accord_cli::set_cmd::set(&self.set_args(key))
            .await
            .unwrap_or_else(|e| panic!("set: {e}"))
    }

    /// `accord verify` / `get-manifests` from workspace `dir`.
    pub fn verify_args(&self, dir: &Path) -> VerifyArgs {
        VerifyArgs {
            options: self.options(dir),
        }
    }

    pub async fn stop(mut self) {
        if let Some(coordinator) = self.coordinator.take() {
            coordinator.stop().await.unwrap();
        }
    }
}

/// The file's permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every certificate in a PEM file, as DER.
pub fn certs(path: &Path) -> Vec<Vec<u8>> {
    CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|c| c.unwrap().to_vec())
        .collect()
}

/// The one certificate in a PEM file, as DER.
pub fn cert(path: &Path) -> Vec<u8> {
    let mut all = certs(path);
    assert_eq!(all.len(), 1, "{} holds one certificate", path.display());
    all.remove(0)
}

/// The SubjectPublicKeyInfo of a DER certificate.
pub fn spki(der: &[u8]) -> Vec<u8> {
    Certificate::from_der(der).unwrap().spki_der().to_vec()
}

/// Whether `issuer` issued `der` (names and signature).
pub fn issued_by(der: &[u8], issuer: &[u8]) -> bool {
    let cert = Certificate::from_der(der).unwrap();
    let issuer = Certificate::from_der(issuer).unwrap();
    cert.verify_issued_by(&issuer, default_provider()).is_ok()
}

/// The workspace's trust state (`verify/last-tree-head.json`).
pub fn trust_state(dir: &Path) -> TrustState {
    TrustState::load(&dir.join("verify/last-tree-head.json"))
        .unwrap()
        .expect("a trust state")
}

/// SHA-256 of a file.
pub fn sha256_file(path: &Path) -> [u8; 32] {
    default_provider().sha256(&[&std::fs::read(path).unwrap()])
}

/// `result` is the refusal of `file`'s InsecureTrustedRoot (the
/// simulated chip) without `--insecure-simulation`: it names the file
/// and the entry's JSON path, says why, and names the flag.
#[track_caller]
pub fn assert_simulation_refused<T: std::fmt::Debug>(result: Result<T, Failure>, file: &Path) {
    let why = match result {
        Err(Failure::Refused(why)) => why,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(outcome) => panic!("expected a refusal, got {outcome:?}"),
    };
    let named = format!(
        "{}: ReferenceValues.snp[0].InsecureTrustedRoot trusts the INSECURE simulated SEV-SNP root",
        file.display()
    );
    for needle in [
        named.as_str(),
        "proves nothing about hardware",
        "pass --insecure-simulation to accept it for testing",
    ] {
        assert!(why.contains(needle), "{needle:?} missing from: {why}");
    }
}
