//! Helpers shared by the integration tests: a deployment on the INSECURE
//! simulated chip (one chip, so every replica has the same measurement),
//! its manifest, and calls over the real clients.

pub mod cli;
pub mod process;

/// Held by the tests that run replica processes for many seconds (HA,
/// crash consistency), so that they do not share the two cores with each
/// other; the rest of the suite runs alongside as usual.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use accord_core::coordinator::{UpdateIntent, next_transition};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::history::tree_head::SignedTreeHead;
use accord_core::manifest::SeedshareKey;
use accord_core::pins::CoordinatorPins;
use accord_core::protocol::{
    GetManifests, GetManifestsReply, GetRecoveryState, GetRecoveryStateReply, Manifests,
    NewMeshCertReply, OwnerSignature, RECOVERY_EXPORTER_LABEL, Recover, RecoverReply,
    RecoveryState, SetManifest, UserCall, UserReply,
};
use accord_core::seedshare::submission::{SubmissionBinding, seal_submission};
use accord_core::seedshare::{self, SeedShareDocument};
use accord_guest::atls::{Clock, Identity, PeerPolicy};
use accord_guest::client::{MeshClient, UserClient};
use accord_guest::coordinator::{InProcess, StoreLocation, spawn, spawn_at};
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_guest::tee::{self, TeeOptions, TeeProvider};
use ed25519_dalek::Signer;

/// Whether the long runs were asked for: `ACCORD_SOAK=1` (`.ci/run` sets
/// it). The soaks (HA kills, the 1,024-connection attack) then run for
/// their full length; by default they run long enough to exercise every
/// path, so that `cargo test --workspace` stays quick.
pub fn soak() -> bool {
    std::env::var("ACCORD_SOAK").is_ok_and(|v| v == "1")
}

/// How long a test waits for a state it expects before it fails: long,
/// because the machine may be loaded; a test that passes waits only as
/// long as the state takes.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `check` (every 20 ms) until it yields a value, and returns it;
/// fails after [`PATIENCE`] saying what was awaited. Every test that
/// depends on timing waits this way for the state it then asserts on.
pub async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a status report of the agent behind `shim` that satisfies
/// `done`, and returns it.
pub async fn report_where(
    shim: &ShimHandle,
    what: &str,
    done: impl Fn(&accord_core::protocol::shim::AgentStatus) -> bool,
) -> accord_core::protocol::shim::AgentStatus {
    wait_for(&format!("a report with {what}"), async || {
        shim.board
            .latest()
            .map(|(status, _)| status)
            .filter(|status| done(status))
    })
    .await
}

pub const COORD_POLICY: &[u8] = b"coordinator policy (initdata)";
pub const WEB_POLICY: &[u8] = b"web policy (initdata)";
pub const SEEDSHARE_SECRET: [u8; 32] = [0x31; 32];

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    default_provider().sha256(&[bytes])
}

pub fn owner() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[5; 32])
}

pub fn owner_spki() -> Vec<u8> {
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(owner().verifying_key().as_bytes());
    spki
}

/// The simulated chip of this test process (its persisted state: keys
/// and certificates), generated once (two RSA-4096 key generations) on
/// first use and copied into each deployment that asks.
fn process_chip() -> &'static Path {
    static CHIP: OnceLock<PathBuf> = OnceLock::new();
    CHIP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("accord-tests-chip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        SimulatedSnp::open(&dir, &config(COORD_POLICY)).unwrap();
        dir
    })
}

/// Puts this process's chip at `dest` (a chip state directory, which
/// must not exist yet): every deployment so prepared runs on the same
/// chip, as replicas of one deployment do.
pub fn install_process_chip(dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(process_chip()).unwrap() {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{entry:?}");
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
}

pub struct Deployment {
    pub dir: PathBuf,
    pub chip: SimulatedSnp,
}

impl Deployment {
    /// A deployment in a fresh directory, on this process's chip.
    pub fn new(tag: &str) -> Self {
        let dir = Self::fresh_dir(tag);
        install_process_chip(&dir.join("chip"));
        Self::open(dir)
    }

    /// A deployment on a chip of its own (another root of trust than
    /// every [`Self::new`] deployment's).
    pub fn with_own_chip(tag: &str) -> Self {
        Self::open(Self::fresh_dir(tag))
    }

    fn fresh_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("accord-api-states-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn open(dir: PathBuf) -> Self {
        let chip = SimulatedSnp::open(&dir.join("chip"), &config(COORD_POLICY)).unwrap();
        Self { dir, chip }
    }

    pub fn tee(&self, policy: &[u8]) -> Arc<dyn TeeProvider> {
        let options = TeeOptions {
            simulated_state: self.dir.join("chip"),
            simulated: config(policy),
            ..TeeOptions::default()
        };
        Arc::from(tee::open("insecure-simulated", &options).unwrap())
    }

    /// A coordinator over the shim at `shim` (no local store).
    pub async fn start_with_shim(&self, shim: &str) -> InProcess {
        self.start_with_shim_at(shim, "127.0.0.1:0").await
    }

    /// The same, with the mesh API on `mesh`.
    pub async fn start_with_shim_at(&self, shim: &str, mesh: &str) -> InProcess {
        spawn_at(
            self.tee(COORD_POLICY),
            StoreLocation::Shim(shim.to_string()),
            "127.0.0.1:0",
            mesh,
        )
        .await
        .unwrap()
    }

    pub async fn start(&self) -> InProcess {
        spawn(
            self.tee(COORD_POLICY),
            &self.dir,
            "127.0.0.1:0",
            "127.0.0.1:0",
        )
        .await
        .unwrap()
    }

    pub fn manifest(&self, variant: u32) -> Vec<u8> {
        self.manifest_with_owners(variant, &[SEEDSHARE_SECRET], 1)
    }

    /// A manifest whose seed-share owners hold `owners` (X25519 secrets),
    /// `threshold` of them needed.
    pub fn manifest_with_owners(
        &self,
        variant: u32,
        owners: &[[u8; 32]],
        threshold: u32,
    ) -> Vec<u8> {
        let mut snp = self.chip.reference_values();
        snp.host_data = None;
        let seedshare_keys: Vec<String> = owners
            .iter()
            .map(|secret| {
                let public = seedshare::owner_public_key(secret);
                format!("302a300506032b656e032100{}", hex::encode(&public.0))
            })
            .collect();
        serde_json::to_vec_pretty(&serde_json::json!({
            "Policies": {
                hex::encode(&sha256(COORD_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
                hex::encode(&sha256(WEB_POLICY)): {"SANs": [format!("web-{variant}")], "WorkloadSecretID": "web"},
            },
            "ReferenceValues": {"snp": [snp]},
            "WorkloadOwnerPubKeys": [hex::encode(&owner_spki())],
            "SeedshareOwnerPubKeys": seedshare_keys,
            "SeedshareThreshold": threshold,
        }))
        .unwrap()
    }

    /// What a workload of this deployment pins (as `accord-guest
    /// initializer --trust-manifest` of [`Self::manifest_with_owners`]):
    /// the coordinator policy and reference values, the seed-share owners
    /// `owners` with `threshold`, the workload owner.
    pub fn pins(&self, owners: &[[u8; 32]], threshold: u32) -> CoordinatorPins {
        let manifest = accord_core::manifest::Manifest::from_json(
            &self.manifest_with_owners(0, owners, threshold),
        )
        .unwrap();
        manifest.validate().unwrap();
        CoordinatorPins::from_manifest(manifest.doc())
    }

    pub fn user_policy(&self) -> PeerPolicy {
        PeerPolicy {
            reference: accord_core::evidence::ReferenceValues {
                snp: vec![self.chip.reference_values()],
                tdx: Vec::new(),
            },
            expected_policy_hashes: Some(vec![sha256(COORD_POLICY)]),
            at: Clock::System,
        }
    }
}

pub fn config(policy: &[u8]) -> SimulatedConfig {
    SimulatedConfig {
        host_data: sha256(policy),
        ..SimulatedConfig::default()
    }
}

pub async fn call<C: UserCall>(
    coordinator: &InProcess,
    deployment: &Deployment,
    request: C,
) -> C::Reply {
    let mut client =
        UserClient::connect(&coordinator.user_addr.to_string(), deployment.user_policy())
            .await
            .unwrap();
    client.call(request).await.unwrap()
}

/// `"ok"` or the error code's name, for the table.
pub fn outcome<R: UserReply>(response: &R) -> String {
    match response.error() {
        Some(e) => format!("{:?}", e.code),
        None => "ok".into(),
    }
}

/// What an update builds on: the latest transition and the deployment
/// (its history public key), as a `GetManifests` reply says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Base {
    pub latest: [u8; 32],
    pub deployment: [u8; 32],
}

impl Base {
    /// The base of a `Manifests` reply.
    pub fn of(reply: &GetManifestsReply) -> Self {
        match reply {
            GetManifestsReply::Manifests(Manifests {
                latest_transition,
                history_public_key,
                ..
            }) => Self {
                latest: *latest_transition,
                deployment: *history_public_key,
            },
            other => panic!("not a Manifests reply: {other:?}"),
        }
    }
}

pub fn set_request(manifest: Vec<u8>, base: Option<Base>) -> SetManifest {
    let signatures = match base {
        None => Vec::new(),
        Some(base) => {
            let (_, next) = next_transition(
                default_provider(),
                &manifest,
                Some(accord_core::history::objects::ObjectHash(base.latest)),
            );
            let intent = UpdateIntent {
                deployment: base.deployment,
                next_transition: next,
                reshare: false,
            };
            vec![OwnerSignature {
                public_key: owner_spki(),
                signature: owner().sign(&intent.message()).to_bytes().to_vec(),
            }]
        }
    };
    SetManifest {
        manifest,
        policies: vec![COORD_POLICY.to_vec(), WEB_POLICY.to_vec()],
        expected_previous_transition: None,
        signatures,
        reshare: false,
    }
}

pub fn get() -> GetManifests {
    GetManifests {
        consistency_from: None,
        inclusion_of: Vec::new(),
    }
}

/// User recovery by the first seed-share owner, as `accord recover` does
/// it on the wire (without its checks): `GetRecoveryState`, then the
/// share sealed from the owner's key to the session's recovery key, bound
/// to what the replica said. Returns the refusal of either step (as a
/// `RecoverReply::Error`), or the `Recover` reply.
pub async fn recover_at(
    addr: &str,
    deployment: &Deployment,
    document: &SeedShareDocument,
    force: bool,
) -> anyhow::Result<RecoverReply> {
    let mut client = UserClient::connect(addr, deployment.user_policy()).await?;
    let state = client
        .call(GetRecoveryState {
            consistency_from: None,
        })
        .await?;
    let (latest_transition, signed_tree_head, recovery_key) = match state {
        GetRecoveryStateReply::RecoveryState(RecoveryState {
            latest_transition,
            signed_tree_head,
            recovery_key,
            ..
        }) => (latest_transition, signed_tree_head, recovery_key),
        GetRecoveryStateReply::Error(e) => return Ok(RecoverReply::Error(e)),
    };
    let seedshares = SignedTreeHead::decode(&signed_tree_head)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .head
        .seedshares;
    let share = seedshare::open(
        &document.shares[0],
        &document.commitments,
        &SEEDSHARE_SECRET,
        default_provider(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let binding = SubmissionBinding {
        session: client.exporter(RECOVERY_EXPORTER_LABEL)?,
        latest_transition,
        seedshares,
        force,
    };
    let sealed = seal_submission(
        &share,
        &SEEDSHARE_SECRET,
        &SeedshareKey(recovery_key),
        &binding,
        &accord_guest::coordinator::OsRandom,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    client
        .call(Recover {
            owner: sealed.owner.0,
            encapsulated_key: sealed.encapsulated_key,
            ciphertext: sealed.ciphertext,
            latest_transition,
            seedshares,
            force,
        })
        .await
}

/// [`recover_at`] on an in-process coordinator.
pub async fn recover(
    coordinator: &InProcess,
    deployment: &Deployment,
    document: &SeedShareDocument,
    force: bool,
) -> RecoverReply {
    recover_at(
        &coordinator.user_addr.to_string(),
        deployment,
        document,
        force,
    )
    .await
    .unwrap()
}

/// `"ok"` or why the mesh API refused a workload running `WEB_POLICY`.
pub async fn mesh(coordinator: &InProcess, deployment: &Deployment) -> String {
    let identity = Identity::ephemeral().unwrap();
    let connected = MeshClient::connect(
        &coordinator.mesh_addr.to_string(),
        deployment.user_policy(),
        deployment.tee(WEB_POLICY),
        identity,
    )
    .await;
    match connected {
        Err(e) if format!("{e:#}").contains("not ready") => "not ready".into(),
        Err(e) => format!("connect failed: {e:#}"),
        Ok(mut client) => match client.new_mesh_cert().await.unwrap() {
            NewMeshCertReply::MeshCert(cert) if cert.cert_chain.len() == 2 => "ok".into(),
            other => format!("{other:?}"),
        },
    }
}

pub async fn latest(coordinator: &InProcess, deployment: &Deployment) -> Base {
    Base::of(&call(coordinator, deployment, get()).await)
}

/// One replica's shim channel (in this process): its address, its peer
/// list (set by the test, as discovery would) and its status board.
pub struct ShimHandle {
    pub addr: String,
    pub peers: accord_shim::discovery::ManualPeers,
    pub board: Arc<accord_shim::status::StatusBoard>,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// Serves a shim channel over `store` on an ephemeral loopback port, with
/// peers the test sets.
pub async fn start_shim(store: &Arc<accord_shim::mem_store::MemStore>) -> ShimHandle {
    let peers = accord_shim::discovery::ManualPeers::default();
    start_shim_with(Arc::clone(store), peers.clone(), peers).await
}

/// Serves a shim channel over any backend and discovery (`peers` is only
/// kept in the handle).
pub async fn start_shim_with<S, D>(
    store: S,
    discovery: D,
    peers: accord_shim::discovery::ManualPeers,
) -> ShimHandle
where
    S: accord_shim::store::Store,
    D: accord_shim::discovery::Discovery,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let board = Arc::new(accord_shim::status::StatusBoard::default());
    let shim = Arc::new(accord_shim::channel::Shim {
        store,
        discovery,
        board: Arc::clone(&board),
        collateral: None,
    });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    tokio::spawn(accord_shim::channel::serve(listener, shim, shutdown));
    ShimHandle {
        addr,
        peers,
        board,
        _stop: stop,
    }
}

/// Concurrent updates on two replicas from the same base: exactly one is
/// accepted and the other is a `ManifestConflict`; then both converge on
/// one latest transition with `manifests` manifests.
pub async fn race_updates_then_converge(
    a: &InProcess,
    b: &InProcess,
    d: &Deployment,
    manifests: usize,
) {
    let base = latest(a, d).await;
    let (ra, rb) = tokio::join!(
        call(a, d, set_request(d.manifest(1000), Some(base))),
        call(b, d, set_request(d.manifest(1001), Some(base))),
    );
    let outcomes = [outcome(&ra), outcome(&rb)];
    assert_eq!(
        outcomes.iter().filter(|o| *o == "ok").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| o == "ManifestConflict"),
        "{outcomes:?}"
    );
    let served = wait_for("both replicas on one latest transition", async || {
        let (va, vb) = (call(a, d, get()).await, call(b, d, get()).await);
        match (va, vb) {
            (
                GetManifestsReply::Manifests(Manifests {
                    latest_transition: ta,
                    manifests: ma,
                    ..
                }),
                GetManifestsReply::Manifests(Manifests {
                    latest_transition: tb,
                    ..
                }),
            ) if ta == tb => Some(ma.len()),
            _ => None,
        }
    })
    .await;
    assert_eq!(served, manifests);
}

/// The common name of the mesh certificate the mesh API at `addr` gives a
/// workload on `tee`, or why it gave none.
pub async fn mesh_cert(
    addr: &str,
    d: &Deployment,
    tee: Arc<dyn TeeProvider>,
) -> Result<String, String> {
    let mut client =
        MeshClient::connect(addr, d.user_policy(), tee, Identity::ephemeral().unwrap())
            .await
            .map_err(|e| format!("connect failed: {e:#}"))?;
    match client.new_mesh_cert().await {
        Ok(accord_core::protocol::NewMeshCertReply::MeshCert(cert)) => {
            let leaf = cert.cert_chain.first().ok_or("an empty chain")?;
            let parsed =
                accord_core::x509::Certificate::from_der(leaf).map_err(|e| e.to_string())?;
            Ok(parsed.subject_common_name().unwrap_or_default().to_string())
        }
        other => Err(format!("{other:?}")),
    }
}
