//! End-to-end tests of `accord-guest coordinator` and `accord-guest
//! initializer`: the real binary on loopback with the INSECURE simulated
//! chip. The coordinator and the initializers share one chip state
//! directory, so their evidence chains to the same simulated root, which
//! the manifest's reference values trust explicitly.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use accord_core::crypto::default_provider;
use accord_core::evidence::ReferenceValues;
use accord_core::hex;
use accord_core::protocol::{
    self, Api, ErrorCode, GetManifests, GetManifestsReply, Hello, HelloReply, MAX_USER_FRAME,
    ManifestSet, Manifests, SetManifest, SetManifestReply, UserCall, UserError, UserReply,
    UserRequest, VERSION,
};
use accord_guest::atls::{Clock, Connector, PeerPolicy, Timeouts};
use accord_guest::client::UserClient;
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_guest::wire::{self, ReadLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_accord-guest");
const COORD_POLICY: &[u8] = b"coordinator policy (initdata)";
const WEB_POLICY: &[u8] = b"web policy (initdata)";
const SECRET_ID: &str = "apps/v1/Deployment/default/web";
/// A generous bound for anything the tests wait for.
const WAIT: Duration = Duration::from_secs(60);

/// The workload owner's P-384 key.
fn owner_key() -> p384::ecdsa::SigningKey {
    p384::ecdsa::SigningKey::from_slice(&[7; 48]).unwrap()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    default_provider().sha256(&[bytes])
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "accord-coordinator-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Files of 0400/0444 in writable directories can be removed.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chip_config() -> SimulatedConfig {
    SimulatedConfig {
        host_data: sha256(COORD_POLICY),
        ..SimulatedConfig::default()
    }
}

/// Copies this test process's simulated chip (its keys and certificates,
/// generated once: two RSA-4096 key generations) into `dest`.
fn install_process_chip(dest: &Path) {
    static CHIP: OnceLock<PathBuf> = OnceLock::new();
    let chip = CHIP.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("accord-guest-tests-chip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        SimulatedSnp::open(&dir, &chip_config()).unwrap();
        dir
    });
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(chip).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
}

/// A deployment: a state dir with the chip (this process's), the policy
/// files, the reference values.
struct Deployment {
    dir: TempDir,
    chip: SimulatedSnp,
}

impl Deployment {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        std::fs::write(dir.0.join("coordinator.policy"), COORD_POLICY).unwrap();
        std::fs::write(dir.0.join("web.policy"), WEB_POLICY).unwrap();
        // Put the chip in place before any process uses it (they would
        // race to create it otherwise).
        install_process_chip(&dir.0.join("state/chip"));
        let chip = SimulatedSnp::open(&dir.0.join("state/chip"), &chip_config()).unwrap();
        Self { dir, chip }
    }

    fn state(&self) -> PathBuf {
        self.dir.0.join("state")
    }

    fn chip_dir(&self) -> PathBuf {
        self.state().join("chip")
    }

    /// Reference values for workloads: the chip, any host data (the policy
    /// hash is checked against `Policies`).
    fn workload_reference(&self) -> ReferenceValues {
        let mut snp = self.chip.reference_values();
        snp.host_data = None;
        ReferenceValues {
            snp: vec![snp],
            tdx: Vec::new(),
        }
    }

    /// What a user verifies the coordinator against.
    fn coordinator_policy(&self) -> PeerPolicy {
        PeerPolicy {
            reference: ReferenceValues {
                snp: vec![self.chip.reference_values()],
                tdx: Vec::new(),
            },
            expected_policy_hashes: Some(vec![sha256(COORD_POLICY)]),
            at: Clock::System,
        }
    }

    fn manifest(&self) -> Vec<u8> {
        self.manifest_variant(0)
    }

    /// A manifest; `variant` changes the web SANs so each is distinct.
    fn manifest_variant(&self, variant: u32) -> Vec<u8> {
        let owner = format!(
            "3076301006072a8648ce3d020106052b81040022036200{}",
            hex::encode(&owner_key().verifying_key().to_sec1_bytes())
        );
        let seedshare = accord_core::seedshare::owner_public_key(&[0x31; 32]);
        let doc = serde_json::json!({
            "Policies": {
                hex::encode(&sha256(COORD_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
                hex::encode(&sha256(WEB_POLICY)): {"SANs": ["web", format!("web-{variant}.default.svc")], "WorkloadSecretID": SECRET_ID},
            },
            "ReferenceValues": serde_json::to_value(self.workload_reference()).unwrap(),
            "WorkloadOwnerPubKeys": [owner],
            "SeedshareOwnerPubKeys": [format!("302a300506032b656e032100{}", hex::encode(&seedshare.0))],
            "SeedshareThreshold": 1,
        });
        serde_json::to_vec_pretty(&doc).unwrap()
    }

    fn set_manifest_request(&self) -> SetManifest {
        SetManifest {
            manifest: self.manifest(),
            policies: vec![COORD_POLICY.to_vec(), WEB_POLICY.to_vec()],
            expected_previous_transition: None,
            signatures: Vec::new(),
            reshare: false,
        }
    }

    fn start(&self) -> Coordinator {
        Coordinator::start(&self.state(), &self.dir.0.join("coordinator.policy"))
    }

    /// Runs the initializer pinning [`Self::manifest`] (`--trust-manifest`),
    /// with `extra` (e.g. `--policy FILE`).
    fn initializer(&self, mesh: &str, out: &Path, extra: &[&str]) -> Output {
        // The workload pins the coordinator and the deployment as the
        // manifest names them.
        let trusted = self.dir.0.join("trusted-manifest.json");
        std::fs::write(&trusted, self.manifest()).unwrap();
        let mut command = Command::new(BIN);
        command
            .args([
                "initializer",
                "--tee",
                "insecure-simulated",
                "--coordinator",
                mesh,
            ])
            .arg("--out")
            .arg(out)
            .arg("--state")
            .arg(self.chip_dir())
            .arg("--trust-manifest")
            .arg(&trusted)
            .args(extra);
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, WAIT)
    }
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the process did not finish in {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running coordinator process (killed on drop).
struct Coordinator {
    child: Option<Child>,
    user: String,
    mesh: String,
    log: PathBuf,
}

impl Coordinator {
    fn start(state: &Path, policy: &Path) -> Self {
        std::fs::create_dir_all(state).unwrap();
        static STARTS: AtomicU32 = AtomicU32::new(0);
        let log = state.with_extension(format!(
            "coordinator-{}.log",
            STARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = Command::new(BIN)
            .args(["coordinator", "--tee", "insecure-simulated"])
            .arg("--state")
            .arg(state)
            .args(["--user-api", "127.0.0.1:0", "--mesh-api", "127.0.0.1:0"])
            .arg("--policy")
            .arg(policy)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(WAIT).unwrap_or_default();
        let rest = line
            .trim()
            .strip_prefix("accord-guest coordinator: user API on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; log: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        let (user, rest) = rest.split_once(", mesh API on ").unwrap();
        let (mesh, store_shown) = rest.split_once(", store ").unwrap();
        assert_eq!(store_shown, state.join("store").display().to_string());
        Self {
            child: Some(child),
            user: user.to_string(),
            mesh: mesh.to_string(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    fn sigterm(&self) {
        let child = self.child.as_ref().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.sigterm();
        self.wait()
    }

    /// Waits (bounded) for the process to exit.
    fn wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                panic!("the coordinator did not stop after SIGTERM: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn user_call<C: UserCall>(
    coordinator: &Coordinator,
    deployment: &Deployment,
    request: C,
) -> C::Reply {
    tokio::time::timeout(WAIT, async {
        let mut client = UserClient::connect(&coordinator.user, deployment.coordinator_policy())
            .await
            .unwrap();
        client.call(request).await.unwrap()
    })
    .await
    .expect("the user API answers in time")
}

fn get_manifests() -> GetManifests {
    GetManifests {
        consistency_from: None,
        inclusion_of: Vec::new(),
    }
}

fn error_code<R: UserReply>(response: &R) -> Option<ErrorCode> {
    response.error().map(|e| e.code)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_set_manifest_initialize_restart_tamper() {
    let deployment = Deployment::new("lifecycle");
    let mut coordinator = deployment.start();

    // Before any manifest.
    let response = user_call(&coordinator, &deployment, get_manifests()).await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::NoManifest),
        "{response:?}"
    );

    // The mesh API refuses while not Ready, and says why.
    let out_dir = deployment.dir.0.join("early");
    let output = deployment.initializer(
        &coordinator.mesh,
        &out_dir,
        &[
            "--policy",
            deployment.dir.0.join("web.policy").to_str().unwrap(),
            "--max-attempts",
            "1",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("not ready"), "{stderr}");

    // The first manifest.
    let response = user_call(&coordinator, &deployment, deployment.set_manifest_request()).await;
    let SetManifestReply::ManifestSet(ManifestSet {
        generation,
        root_ca,
        mesh_ca,
        seed_share_document,
        ..
    }) = response
    else {
        panic!("{response:?}; log: {}", coordinator.log())
    };
    assert_eq!(generation, 1);
    assert!(!root_ca.is_empty() && !mesh_ca.is_empty());
    assert!(seed_share_document.is_some());

    let response = user_call(&coordinator, &deployment, get_manifests()).await;
    let GetManifestsReply::Manifests(Manifests { manifests, .. }) = &response else {
        panic!("{response:?}")
    };
    assert_eq!(manifests, &vec![deployment.manifest()]);

    // An initializer with a policy of the manifest gets a certificate.
    let out_dir = deployment.dir.0.join("web");
    let output = deployment.initializer(
        &coordinator.mesh,
        &out_dir,
        &[
            "--policy",
            deployment.dir.0.join("web.policy").to_str().unwrap(),
            "--max-attempts",
            "1",
        ],
    );
    assert!(
        output.status.success(),
        "{}; coordinator log: {}",
        String::from_utf8_lossy(&output.stderr),
        coordinator.log()
    );
    let tls = out_dir.join("tls-config");
    for (name, want) in [
        ("mesh-ca.pem", 0o444),
        ("certChain.pem", 0o444),
        ("key.pem", 0o400),
        ("coordinator-root-ca.pem", 0o444),
    ] {
        assert_eq!(mode(&tls.join(name)), want, "{name}");
    }
    let seed = out_dir.join("secrets/workload-secret-seed");
    assert_eq!(mode(&seed), 0o400);
    let seed = std::fs::read_to_string(&seed).unwrap();
    assert_eq!(hex::decode(seed.trim()).unwrap().len(), 64);
    let key = std::fs::read_to_string(tls.join("key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let root = std::fs::read_to_string(tls.join("coordinator-root-ca.pem")).unwrap();
    assert_eq!(root, accord_core::der::write::pem("CERTIFICATE", &root_ca));
    // With --owner, the files go to the workload's user, modes kept (as
    // root: CAP_CHOWN; otherwise the initializer must fail, naming it).
    let owned_dir = deployment.dir.0.join("web-owned");
    let output = deployment.initializer(
        &coordinator.mesh,
        &owned_dir,
        &[
            "--policy",
            deployment.dir.0.join("web.policy").to_str().unwrap(),
            "--max-attempts",
            "1",
            "--owner",
            "65532",
        ],
    );
    {
        use std::os::unix::fs::MetadataExt as _;
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        if root {
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            for path in [
                owned_dir.join("tls-config"),
                owned_dir.join("tls-config/key.pem"),
                owned_dir.join("tls-config/mesh-ca.pem"),
                owned_dir.join("secrets"),
                owned_dir.join("secrets/workload-secret-seed"),
            ] {
                assert_eq!(
                    std::fs::metadata(&path).unwrap().uid(),
                    65532,
                    "{}",
                    path.display()
                );
            }
            assert_eq!(mode(&owned_dir.join("tls-config/key.pem")), 0o400);
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success() && stderr.contains("CAP_CHOWN"),
                "{stderr}"
            );
        }
    }
    // No temporary files are left behind.
    for entry in std::fs::read_dir(&tls).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "{name}");
    }

    // openssl accepts leaf ← intermediate ← root.
    let chain = std::fs::read_to_string(tls.join("certChain.pem")).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let (leaf, intermediate) = chain.split_at(chain.find(end).unwrap() + end.len());
    assert!(intermediate.starts_with("-----BEGIN CERTIFICATE-----"));
    std::fs::write(out_dir.join("leaf.pem"), leaf).unwrap();
    std::fs::write(out_dir.join("intermediate.pem"), intermediate).unwrap();
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(tls.join("coordinator-root-ca.pem"))
        .arg("-untrusted")
        .arg(out_dir.join("intermediate.pem"))
        .arg(out_dir.join("leaf.pem"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The certificate is for the key the initializer wrote.
    let pubkey = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let leaf_path = out_dir.join("leaf.pem");
    let key_path = tls.join("key.pem");
    assert_eq!(
        pubkey(&[
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            leaf_path.to_str().unwrap()
        ]),
        pubkey(&["pkey", "-pubout", "-in", key_path.to_str().unwrap()])
    );

    // A workload whose policy hash is not in the manifest is refused.
    let output = deployment.initializer(
        &coordinator.mesh,
        &deployment.dir.0.join("stranger"),
        &["--host-data", &"77".repeat(32), "--max-attempts", "1"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("is not in the manifest"), "{stderr}");
    assert!(stderr.contains(&"77".repeat(32)), "{stderr}");

    // SIGTERM: a clean exit.
    let status = coordinator.terminate();
    assert!(status.success(), "{status:?}: {}", coordinator.log());
    drop(coordinator);

    // A restart on the same state comes back in Recovery.
    let mut coordinator = deployment.start();
    let response = user_call(&coordinator, &deployment, get_manifests()).await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::NeedsRecovery),
        "{response:?}"
    );
    assert!(
        coordinator.log().contains("state recovery"),
        "{}",
        coordinator.log()
    );
    assert!(coordinator.terminate().success());
    drop(coordinator);

    // A tampered store object is detected at the next start.
    let manifests = deployment.state().join("store/manifests");
    let entry = std::fs::read_dir(&manifests)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut bytes = std::fs::read(entry.path()).unwrap();
    bytes[0] ^= 1;
    std::fs::write(entry.path(), bytes).unwrap();
    let coordinator = deployment.start();
    let response = user_call(&coordinator, &deployment, get_manifests()).await;
    assert_eq!(
        error_code(&response),
        Some(ErrorCode::NeedsRecovery),
        "{response:?}"
    );
    let log = coordinator.log();
    assert!(log.contains("WARN") && log.contains("corrupt"), "{log}");
}

/// An attested TLS connection to the user API that has said `Hello`.
async fn raw_user_connection(
    coordinator: &Coordinator,
    deployment: &Deployment,
) -> tokio_rustls::TlsStream<TcpStream> {
    let connector = Connector::new(
        deployment.coordinator_policy(),
        None,
        None,
        Timeouts::default(),
    )
    .unwrap();
    let tcp = TcpStream::connect(&coordinator.user).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (mut tls, _) = connector.connect(tcp).await.unwrap().into_parts();
    let hello = Hello {
        versions: vec![VERSION],
        api: Api::User,
    };
    wire::write_message(&mut tls, &hello, 1024, WAIT)
        .await
        .unwrap();
    let limits = ReadLimits {
        max: 4096,
        idle: WAIT,
        body: WAIT,
    };
    let reply: HelloReply = wire::read_message(&mut tls, limits).await.unwrap();
    assert!(
        matches!(reply, HelloReply::Accepted { version: VERSION }),
        "{reply:?}"
    );
    tls
}

/// Reads what the server sends until it closes: the decoded reply (if one
/// came) and whether the connection closed.
async fn read_until_close(tls: &mut tokio_rustls::TlsStream<TcpStream>) -> Option<UserError> {
    let mut all = Vec::new();
    let result = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the server did not close the connection");
    if all.len() < 4 {
        return None;
    }
    let len = protocol::frame_len(all[..4].try_into().unwrap(), MAX_USER_FRAME).unwrap();
    Some(protocol::decode(&all[4..4 + len]).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_clients_are_refused_and_do_not_block_others() {
    let deployment = Deployment::new("frames");
    let coordinator = deployment.start();

    // Slow clients that never finish: a bare TCP connection (stuck before
    // the TLS handshake) and a TLS connection stuck mid-frame.
    let _silent = TcpStream::connect(&coordinator.user).await.unwrap();
    let mut stuck = raw_user_connection(&coordinator, &deployment).await;
    stuck.write_all(&[0, 0, 1, 0, 1, 2]).await.unwrap();
    stuck.flush().await.unwrap();

    // Oversized: refused before the body is read.
    let mut tls = raw_user_connection(&coordinator, &deployment).await;
    tls.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
    tls.flush().await.unwrap();
    let reply = read_until_close(&mut tls).await;
    let Some(UserError::Error(error)) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(error.code, ErrorCode::Protocol);
    assert!(error.message.contains("exceeds"), "{}", error.message);

    // Garbage: a Protocol error, then the connection closes.
    let mut tls = raw_user_connection(&coordinator, &deployment).await;
    tls.write_all(&[0, 0, 0, 3, 0x7f, 0xff, 0xff])
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let reply = read_until_close(&mut tls).await;
    let Some(UserError::Error(error)) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(error.code, ErrorCode::Protocol);

    // Trailing bytes after a valid request.
    let mut frame = protocol::encode(&UserRequest::from(get_manifests()), MAX_USER_FRAME).unwrap();
    frame.push(0);
    let len = u32::try_from(frame.len() - 4).unwrap();
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let mut tls = raw_user_connection(&coordinator, &deployment).await;
    tls.write_all(&frame).await.unwrap();
    tls.flush().await.unwrap();
    let reply = read_until_close(&mut tls).await;
    assert!(
        matches!(reply, Some(UserError::Error(ref e)) if e.code == ErrorCode::Protocol),
        "{reply:?}"
    );

    // Truncated: the client gives up mid-frame; the server just closes.
    let mut tls = raw_user_connection(&coordinator, &deployment).await;
    tls.write_all(&[0, 0, 0, 100, 1, 2, 3]).await.unwrap();
    tls.shutdown().await.unwrap();
    assert!(read_until_close(&mut tls).await.is_none());

    // Not TLS at all.
    let mut tcp = TcpStream::connect(&coordinator.user).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a non-TLS client is not dropped");

    // A wrong Hello (the mesh API on the user port) is refused.
    let connector = Connector::new(
        deployment.coordinator_policy(),
        None,
        None,
        Timeouts::default(),
    )
    .unwrap();
    let (mut tls, _) = connector
        .connect(TcpStream::connect(&coordinator.user).await.unwrap())
        .await
        .unwrap()
        .into_parts();
    let hello = Hello {
        versions: vec![VERSION],
        api: Api::Mesh,
    };
    wire::write_message(&mut tls, &hello, 1024, WAIT)
        .await
        .unwrap();
    let limits = ReadLimits {
        max: 4096,
        idle: WAIT,
        body: WAIT,
    };
    let reply: HelloReply = wire::read_message(&mut tls, limits).await.unwrap();
    assert!(matches!(reply, HelloReply::Refused { .. }), "{reply:?}");

    // Meanwhile, well-behaved clients are served promptly.
    for _ in 0..3 {
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            user_call(&coordinator, &deployment, get_manifests()),
        )
        .await
        .expect("served while others misbehave");
        assert_eq!(error_code(&response), Some(ErrorCode::NoManifest));
    }
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish() {
    let deployment = Deployment::new("shutdown");
    let mut coordinator = deployment.start();
    let mut tls = raw_user_connection(&coordinator, &deployment).await;
    let idle = raw_user_connection(&coordinator, &deployment).await;

    // Half a request: the server has started reading it when the signal
    // arrives, so it must finish reading and answer it.
    let frame = protocol::encode(&UserRequest::from(get_manifests()), MAX_USER_FRAME).unwrap();
    let (head, tail) = frame.split_at(5);
    tls.write_all(head).await.unwrap();
    tls.flush().await.unwrap();
    // (No sign shows that the server has read the head: a second for it.)
    tokio::time::sleep(Duration::from_secs(1)).await;
    coordinator.sigterm();
    let started = Instant::now();
    while !coordinator.log().contains("SIGTERM: shutting down") {
        assert!(
            started.elapsed() < WAIT,
            "no SIGTERM line: {}",
            coordinator.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // New connections are no longer accepted: closed at once (refused, or
    // closed without a byte), once the listener is gone.
    let started = Instant::now();
    loop {
        let refused = tokio::time::timeout(Duration::from_secs(1), async {
            match TcpStream::connect(&coordinator.user).await {
                Err(_) => true,
                Ok(mut tcp) => {
                    let mut buf = [0u8; 1];
                    matches!(tcp.read(&mut buf).await, Ok(0) | Err(_))
                }
            }
        })
        .await
        .unwrap_or(false);
        if refused {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "a new connection was served during shutdown"
        );
    }

    tls.write_all(tail).await.unwrap();
    tls.flush().await.unwrap();
    let limits = ReadLimits {
        max: MAX_USER_FRAME,
        idle: WAIT,
        body: WAIT,
    };
    let reply: GetManifestsReply = wire::read_message(&mut tls, limits).await.unwrap();
    assert_eq!(error_code(&reply), Some(ErrorCode::NoManifest), "{reply:?}");
    drop(idle);
    let status = tokio::task::spawn_blocking(move || {
        let status = coordinator.wait();
        (status, coordinator.log())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{:?}: {}", status.0, status.1);
    assert!(status.1.contains("SIGTERM"), "{}", status.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_update_moves_the_mesh_api_to_the_new_generation() {
    use accord_core::coordinator::{UpdateIntent, next_transition};
    use accord_core::history::objects::ObjectHash;
    use accord_core::protocol::{MeshCert, NewMeshCertReply, OwnerSignature};
    use accord_guest::atls::Identity;
    use accord_guest::client::MeshClient;
    use p384::ecdsa::signature::Signer;
    use std::sync::Arc;

    let deployment = Deployment::new("update");
    let coordinator = deployment.start();
    let response = user_call(&coordinator, &deployment, deployment.set_manifest_request()).await;
    let SetManifestReply::ManifestSet(ManifestSet {
        transition,
        mesh_ca: first_mesh_ca,
        ..
    }) = response
    else {
        panic!("{response:?}")
    };

    let web: Arc<dyn accord_guest::tee::TeeProvider> = Arc::new(
        deployment
            .chip
            .reconfigured(&SimulatedConfig {
                host_data: sha256(WEB_POLICY),
                ..SimulatedConfig::default()
            })
            .unwrap(),
    );
    // A connection made at generation 1 is served at generation 1.
    let mut held = tokio::time::timeout(
        WAIT,
        MeshClient::connect(
            &coordinator.mesh,
            deployment.coordinator_policy(),
            Arc::clone(&web),
            Identity::ephemeral().unwrap(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let response = held.new_mesh_cert().await.unwrap();
    let NewMeshCertReply::MeshCert(MeshCert { mesh_ca, .. }) = &response else {
        panic!("{response:?}")
    };
    assert_eq!(mesh_ca, &first_mesh_ca);

    // An update signed by the workload owner.
    let manifest = deployment.manifest_variant(1);
    let (_, next) = next_transition(default_provider(), &manifest, Some(ObjectHash(transition)));
    let deployment_key = match user_call(
        &coordinator,
        &deployment,
        GetManifests {
            consistency_from: None,
            inclusion_of: Vec::new(),
        },
    )
    .await
    {
        GetManifestsReply::Manifests(Manifests {
            history_public_key, ..
        }) => history_public_key,
        other => panic!("{other:?}"),
    };
    let intent = UpdateIntent {
        deployment: deployment_key,
        next_transition: next,
        reshare: false,
    };
    let signature: p384::ecdsa::Signature = owner_key().sign(&intent.message());
    let owner_spki = hex::decode(&format!(
        "3076301006072a8648ce3d020106052b81040022036200{}",
        hex::encode(&owner_key().verifying_key().to_sec1_bytes())
    ))
    .unwrap();
    let update = SetManifest {
        manifest,
        policies: vec![COORD_POLICY.to_vec(), WEB_POLICY.to_vec()],
        expected_previous_transition: Some(transition),
        signatures: vec![OwnerSignature {
            public_key: owner_spki,
            signature: signature.to_bytes().to_vec(),
        }],
        reshare: false,
    };
    let response = user_call(&coordinator, &deployment, update).await;
    let SetManifestReply::ManifestSet(ManifestSet {
        generation,
        mesh_ca: second_mesh_ca,
        ..
    }) = response
    else {
        panic!("{response:?}; log: {}", coordinator.log())
    };
    assert_eq!(generation, 2);

    // The connection verified at generation 1 is told to reconnect...
    let response = held.new_mesh_cert().await.unwrap();
    let NewMeshCertReply::Error(error) = &response else {
        panic!("{response:?}")
    };
    assert_eq!(error.code, ErrorCode::ManifestConflict);
    assert!(error.message.contains("reconnect"), "{}", error.message);

    // ...and a new connection gets a certificate of generation 2.
    let mut fresh = MeshClient::connect(
        &coordinator.mesh,
        deployment.coordinator_policy(),
        web,
        Identity::ephemeral().unwrap(),
    )
    .await
    .unwrap();
    let response = fresh.new_mesh_cert().await.unwrap();
    let NewMeshCertReply::MeshCert(MeshCert { mesh_ca, .. }) = &response else {
        panic!("{response:?}")
    };
    assert_eq!(mesh_ca, &second_mesh_ca);
}
