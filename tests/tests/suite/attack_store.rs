//! The host writes the store (issue 13, attacks 1–4), on both backends:
//! the shim's filesystem store and ConfigMaps on the in-test Kubernetes
//! API server (there is no real API server on the build machines; the
//! in-test one speaks the real wire format, and the shim process talks to
//! it over HTTP with `--backend kube --kube-api URL`).
//!
//! Real processes: `accord-shim` and `accord-guest coordinator --shim`
//! (INSECURE simulated chip), restarted by the test as a hostile host
//! would; the hostile network client and the owner's `accord recover`
//! (the CLI's library entry point) talk attested TLS to the agent. The
//! test is the host: it reads and overwrites the store directly (files, or
//! ConfigMaps through the API server), bypassing the shim.
//!
//! 2. An unsigned (or attacker-signed) longer history: the Ready agent
//!    refuses it (`FORGED` in its log, `accord_forged_histories_total` on
//!    the shim), keeps its PID, its generation and serves certificates.
//! 4. An owner's update signed without re-share, submitted with
//!    `reshare: true`: refused (`invalid_signature`); the honest one works.
//! 3. Rollback by recovery: the agent restarted on the generation-1 store
//!    with no peers; the owner's `accord recover` refuses (ROLLBACK) and
//!    the replica stays in Recovery.
//! 1. A forged seed-share record (the host's salt and commitments) under a
//!    tree head signed with the host's seed's history key, the agent
//!    restarted: the host's `Recover` with `force` from an unauthenticated
//!    client is refused (its key is no owner; an owner's key it does not
//!    hold does not open), and the owner's `accord recover` refuses
//!    (FORGED; without a trust state: a record that is not the owner's).
//!    Then the genuine store back: the owner recovers generation 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::process::{Killed, binary, free_port, start_until};
use crate::support::*;
use accord_cli::keys::{PrivateKey, X25519Secret, write_private_key};
use accord_cli::net::{CoordinatorOptions, Failure};
use accord_cli::recover_cmd::{self, RecoverArgs, RecoverStatus};
use accord_cli::set_payload::seed_share_document_save;
use accord_cli::verify_cmd::{self, VerifyArgs};
use accord_core::coordinator::store::{self, LatestRecord, SeedShareRecord, StoreSnapshot};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::history::objects::{ObjectHash, ObjectKind};
use accord_core::history::tree_head::SignedTreeHead;
use accord_core::kdf::{Salt, SecretSeed, SeedEngine};
use accord_core::manifest::SeedshareKey;
use accord_core::protocol::{
    ErrorCode, GetManifestsReply, GetRecoveryState, GetRecoveryStateReply, ManifestSet, Manifests,
    NewMeshCertReply, RECOVERY_EXPORTER_LABEL, Recover, RecoverReply, RecoveryState, ReplicaState,
    SetManifestReply, UserCall, UserReply,
};
use accord_core::seedshare::submission::{SubmissionBinding, seal_submission};
use accord_core::seedshare::{self, SeedShareDocument};
use accord_guest::atls::Identity;
use accord_guest::client::{MeshClient, UserClient};
use accord_guest::coordinator::OsRandom;
use accord_shim::test_apiserver::{Resource, TestApiServer};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const NS: &str = "accord";
const WAIT: Duration = Duration::from_secs(20);

/// The store as the host sees it, and how the shim reaches it.
enum HostStore {
    /// The shim's filesystem store directory.
    Fs(PathBuf),
    /// ConfigMaps on the in-test API server.
    Kube(TestApiServer),
}

impl HostStore {
    fn shim_args(&self) -> Vec<String> {
        match self {
            Self::Fs(dir) => vec!["--store".into(), dir.display().to_string()],
            Self::Kube(server) => vec![
                "--backend".into(),
                "kube".into(),
                "--kube-api".into(),
                server.url(),
                "--namespace".into(),
                NS.into(),
            ],
        }
    }

    /// Every key and value.
    fn read(&self) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        match self {
            Self::Fs(root) => {
                for dir in std::fs::read_dir(root).unwrap() {
                    let dir = dir.unwrap();
                    if !dir.file_type().unwrap().is_dir() {
                        continue;
                    }
                    let dir_name = dir.file_name().into_string().unwrap();
                    for file in std::fs::read_dir(dir.path()).unwrap() {
                        let file = file.unwrap();
                        let name = file.file_name().into_string().unwrap();
                        if name.starts_with('.') {
                            continue;
                        }
                        out.insert(
                            format!("{dir_name}/{name}"),
                            std::fs::read(file.path()).unwrap(),
                        );
                    }
                }
            }
            Self::Kube(server) => {
                for cm in server.config_maps(NS) {
                    let name = cm.metadata.name.unwrap();
                    let Some(rest) = name.strip_prefix("accord-store-") else {
                        continue;
                    };
                    let (dir, key) = rest.split_once('-').unwrap();
                    let value = cm.binary_data.unwrap().remove(key).unwrap();
                    out.insert(format!("{dir}/{key}"), value.0);
                }
            }
        }
        out
    }

    /// Overwrites (or creates) `key`, as only the host can.
    fn write(&self, key: &str, value: &[u8]) {
        let (dir, name) = key.split_once('/').unwrap();
        match self {
            Self::Fs(root) => {
                std::fs::create_dir_all(root.join(dir)).unwrap();
                let temp = root.join(dir).join(format!(".host-{name}"));
                std::fs::write(&temp, value).unwrap();
                std::fs::rename(&temp, root.join(dir).join(name)).unwrap();
            }
            Self::Kube(server) => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(format!("accord-store-{dir}-{name}")),
                        labels: Some(BTreeMap::from([
                            ("app.kubernetes.io/managed-by".into(), "accord".into()),
                            ("accord.dev/store-dir".into(), dir.into()),
                        ])),
                        ..Default::default()
                    },
                    binary_data: Some(BTreeMap::from([(
                        name.to_string(),
                        ByteString(value.to_vec()),
                    )])),
                    ..Default::default()
                };
                server.put_raw(Resource::ConfigMaps, NS, serde_json::to_value(cm).unwrap());
            }
        }
    }

    fn write_all(&self, puts: &[(String, Vec<u8>)]) {
        // Objects first, the latest record last (as a shim would).
        for (key, value) in puts.iter().filter(|(k, _)| k != store::LATEST_KEY) {
            self.write(key, value);
        }
        for (key, value) in puts.iter().filter(|(k, _)| k == store::LATEST_KEY) {
            self.write(key, value);
        }
    }
}

/// One replica: the shim process and the agent process.
struct Replica {
    user: String,
    mesh: String,
    probes: String,
    log: PathBuf,
    _shim: Killed,
    agent: Option<Killed>,
    channel: String,
}

impl Replica {
    fn start(d: &Deployment, host: &HostStore, tag: &str) -> Self {
        let channel = format!("127.0.0.1:{}", free_port());
        let probes = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(binary("accord-shim"));
        command
            .args(["--listen", &channel])
            .args(["--probes", &probes])
            .args(host.shim_args());
        let shim = start_until(
            command,
            "agent channel on",
            &d.dir.join(format!("shim-{tag}.log")),
        )
        .0;
        let mut replica = Self {
            user: format!("127.0.0.1:{}", free_port()),
            mesh: format!("127.0.0.1:{}", free_port()),
            probes,
            log: d.dir.join(format!("agent-{tag}.log")),
            _shim: shim,
            agent: None,
            channel,
        };
        replica.start_agent(d);
        replica
    }

    /// (Re)starts the agent: its secrets are gone.
    fn start_agent(&mut self, d: &Deployment) {
        if let Some(mut old) = self.agent.take() {
            old.kill();
        }
        let mut command = Command::new(binary("accord-guest"));
        command
            .args(["coordinator", "--tee", "insecure-simulated"])
            .args(["--host-data", &hex::encode(&sha256(COORD_POLICY))])
            .arg("--state")
            .arg(&d.dir)
            .args(["--shim", &self.channel])
            .args(["--user-api", &self.user])
            .args(["--mesh-api", &self.mesh]);
        self.agent = Some(start_until(command, "user API on", &self.log).0);
    }

    fn pid(&self) -> u32 {
        self.agent.as_ref().unwrap().0.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn call<C: UserCall>(&self, d: &Deployment, request: C) -> C::Reply {
        let mut client = UserClient::connect(&self.user, d.user_policy())
            .await
            .unwrap();
        client.call(request).await.unwrap()
    }

    async fn recovery_state(&self, d: &Deployment) -> GetRecoveryStateReply {
        self.call(
            d,
            GetRecoveryState {
                consistency_from: None,
            },
        )
        .await
    }

    /// Waits until the agent says it is in `state`.
    async fn wait_state(&self, d: &Deployment, state: ReplicaState) {
        let started = Instant::now();
        loop {
            if let GetRecoveryStateReply::RecoveryState(RecoveryState { state: now, .. }) =
                self.recovery_state(d).await
                && now == state
            {
                return;
            }
            assert!(started.elapsed() < WAIT, "never {state:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The shim's Prometheus text.
    async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&self.probes).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    /// A workload attests and gets a certificate (`"ok"`), or why not.
    async fn mesh(&self, d: &Deployment) -> String {
        match MeshClient::connect(
            &self.mesh,
            d.user_policy(),
            d.tee(WEB_POLICY),
            Identity::ephemeral().unwrap(),
        )
        .await
        {
            Err(e) => format!("{e:#}"),
            Ok(mut client) => match client.new_mesh_cert().await.unwrap() {
                NewMeshCertReply::MeshCert(cert) if cert.cert_chain.len() == 2 => "ok".into(),
                other => format!("{other:?}"),
            },
        }
    }
}

fn code_of<R: UserReply>(response: &R) -> Option<ErrorCode> {
    response.error().map(|e| e.code)
}

fn message_of<R: UserReply>(response: &R) -> String {
    match response.error() {
        Some(e) => e.message.clone(),
        None => format!("{response:?}"),
    }
}

/// A store that extends the one in `objects` with `manifest`, under a
/// tree head signed by `key` (a garbled signature when `None`): the
/// objects to write.
fn longer_history(
    objects: &BTreeMap<String, Vec<u8>>,
    manifest: &[u8],
    key: Option<&ed25519_dalek::SigningKey>,
) -> Vec<(String, Vec<u8>)> {
    let provider = default_provider();
    let loaded = store::load(
        provider,
        &StoreSnapshot {
            objects: objects.clone(),
        },
    )
    .unwrap()
    .unwrap();
    let mut history = loaded.history.clone();
    let manifest_hash = ObjectHash::of(provider, manifest);
    let (transition, address) = history.append(provider, manifest_hash);
    let head = history.tree_head(provider, &loaded.latest.seedshares());
    let signed = match key {
        Some(key) => head.sign(key),
        None => SignedTreeHead {
            head,
            signature: [0x5a; 64],
        },
    };
    vec![
        (
            store::object_key(ObjectKind::Manifest, &manifest_hash),
            manifest.to_vec(),
        ),
        (
            store::object_key(ObjectKind::Transition, &address),
            transition.encode().to_vec(),
        ),
        (
            store::LATEST_KEY.into(),
            LatestRecord {
                transition: address,
                head: signed,
            }
            .encode(),
        ),
    ]
}

/// The host's own seed and salt.
fn attacker_engine() -> (SecretSeed, Salt) {
    (
        SecretSeed::from_bytes([0xa7; 64]),
        Salt::from_bytes([0xa8; 32]),
    )
}

/// The forged record (the host's seed shared among `owners`) in force
/// over the genuine chain, under a head signed with the host's history
/// key: the objects to write, and the forged document.
fn forged_record(
    objects: &BTreeMap<String, Vec<u8>>,
    owners: &[SeedshareKey],
) -> (Vec<(String, Vec<u8>)>, SeedShareDocument) {
    let provider = default_provider();
    let (seed, salt) = attacker_engine();
    let document = seedshare::split(&seed, &salt, owners, 1, provider, &OsRandom).unwrap();
    let record = SeedShareRecord::from_document(&document).encode();
    let address = ObjectHash::of(provider, &record);
    let latest = LatestRecord::decode(&objects[store::LATEST_KEY]).unwrap();
    let mut head = latest.head.head;
    head.seedshares = address.0;
    let key = SeedEngine::new(seed, salt, provider)
        .history_signing_key()
        .unwrap();
    let forged = LatestRecord {
        transition: latest.transition,
        head: head.sign(&key),
    };
    (
        vec![
            (store::object_key(ObjectKind::SeedShares, &address), record),
            (store::LATEST_KEY.into(), forged.encode()),
        ],
        document,
    )
}

/// The host's own `Recover`, with `force`, from an unauthenticated
/// client: its share of `document`, sealed with `sender_secret`, claiming
/// to come from `claimed` (the sender's own key when `None`).
async fn hostile_recover(
    replica: &Replica,
    d: &Deployment,
    document: &SeedShareDocument,
    share_secret: &[u8; 32],
    sender_secret: &[u8; 32],
    claimed: Option<SeedshareKey>,
) -> RecoverReply {
    let mut client = UserClient::connect(&replica.user, d.user_policy())
        .await
        .unwrap();
    let GetRecoveryStateReply::RecoveryState(RecoveryState {
        latest_transition,
        signed_tree_head,
        recovery_key,
        ..
    }) = client
        .call(GetRecoveryState {
            consistency_from: None,
        })
        .await
        .unwrap()
    else {
        panic!("no recovery state")
    };
    let seedshares = SignedTreeHead::decode(&signed_tree_head)
        .unwrap()
        .head
        .seedshares;
    let share = seedshare::open(
        &document.shares[0],
        &document.commitments,
        share_secret,
        default_provider(),
    )
    .unwrap();
    let binding = SubmissionBinding {
        session: client.exporter(RECOVERY_EXPORTER_LABEL).unwrap(),
        latest_transition,
        seedshares,
        force: true,
    };
    let sealed = seal_submission(
        &share,
        sender_secret,
        &SeedshareKey(recovery_key),
        &binding,
        &OsRandom,
    )
    .unwrap();
    client
        .call(Recover {
            owner: claimed.unwrap_or(sealed.owner).0,
            encapsulated_key: sealed.encapsulated_key,
            ciphertext: sealed.ciphertext,
            latest_transition,
            seedshares,
            force: true,
        })
        .await
        .unwrap()
}

/// The seed-share owner's workspace: manifest.json, seed-shares.json, the
/// owner's key.
struct Owner {
    dir: PathBuf,
    key: PathBuf,
}

impl Owner {
    fn new(root: &Path, document: &SeedShareDocument) -> Self {
        Self::in_dir(root.join("owner"), document)
    }

    /// The same owner in a workspace where nothing was verified.
    fn elsewhere(&self, document: &SeedShareDocument) -> Self {
        Self::in_dir(
            self.dir.with_file_name("owner-without-trust-state"),
            document,
        )
    }

    fn in_dir(dir: PathBuf, document: &SeedShareDocument) -> Self {
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("seedshare-owner.pem");
        write_private_key(
            &key,
            &PrivateKey::X25519(X25519Secret::new(SEEDSHARE_SECRET)),
            true,
        )
        .unwrap();
        seed_share_document_save(&dir.join("seed-shares.json"), document).unwrap();
        Self { dir, key }
    }

    fn options(&self, replica: &Replica, manifest: &[u8]) -> CoordinatorOptions {
        std::fs::write(self.dir.join("manifest.json"), manifest).unwrap();
        // The manifest trusts the simulated chip: --insecure-simulation.
        // The simulated chip's evidence carries its collateral: no vendor.
        let mut options = CoordinatorOptions::new(replica.user.clone())
            .in_workspace(&self.dir)
            .accepting_insecure_simulation()
            .offline();
        options.timeout = 20;
        options
    }

    async fn verify(&self, replica: &Replica, manifest: &[u8]) {
        let args = VerifyArgs {
            options: self.options(replica, manifest),
        };
        verify_cmd::verify(&args).await.unwrap();
    }

    async fn recover(
        &self,
        replica: &Replica,
        manifest: &[u8],
        no_trust_state: bool,
    ) -> Result<recover_cmd::RecoverOutcome, Failure> {
        let args = RecoverArgs {
            options: self.options(replica, manifest),
            seedshare_key: self.key.clone(),
            seed_shares: None,
            force: false,
            no_trust_state,
        };
        recover_cmd::recover(&args).await
    }
}

#[track_caller]
fn refused(result: Result<recover_cmd::RecoverOutcome, Failure>) -> String {
    match result {
        Err(Failure::Refused(why)) => why,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(outcome) => panic!("expected a refusal, got {outcome:?}"),
    }
}

/// The whole sequence on one backend.
async fn the_host_cannot_take_the_secrets(d: &Deployment, host: &HostStore, tag: &str) {
    let mut replica = Replica::start(d, host, tag);
    let first = replica.call(d, set_request(d.manifest(0), None)).await;
    let SetManifestReply::ManifestSet(ManifestSet {
        seed_share_document: Some(document),
        ..
    }) = first
    else {
        panic!("{first:?}")
    };
    let owner = Owner::new(&d.dir, &document);
    owner.verify(&replica, &d.manifest(0)).await;
    let genuine_gen1 = host.read();

    // Attack 2: a longer history, unsigned and attacker-signed, while
    // Ready.
    let pid = replica.pid();
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
    for (n, key) in [None, Some(&attacker)].into_iter().enumerate() {
        host.write_all(&longer_history(&genuine_gen1, &d.manifest(7), key));
        let started = Instant::now();
        while replica.log().matches("FORGED").count() <= n {
            assert!(started.elapsed() < WAIT, "no FORGED: {}", replica.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(replica.log().contains("did not sign"), "{}", replica.log());
        assert_eq!(replica.pid(), pid, "not restarted");
        assert!(
            matches!(
                replica.call(d, get()).await,
                GetManifestsReply::Manifests(Manifests { ref manifests, .. }) if manifests.len() == 1
            ),
            "still serving generation 1"
        );
        assert_eq!(replica.mesh(d).await, "ok", "still issuing certificates");
    }
    let started = Instant::now();
    while !replica
        .metrics()
        .await
        .lines()
        .any(|l| l.starts_with("accord_forged_histories_total ") && !l.ends_with(" 0"))
    {
        assert!(started.elapsed() < WAIT, "{}", replica.metrics().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The host puts the genuine record back.
    host.write(store::LATEST_KEY, &genuine_gen1[store::LATEST_KEY]);

    // Attack 4: an update signed without re-share, submitted with it.
    let base = Base::of(&replica.call(d, get()).await);
    let mut replayed = set_request(d.manifest(1), Some(base));
    replayed.reshare = true;
    let refusal = replica.call(d, replayed).await;
    assert_eq!(
        code_of(&refusal),
        Some(ErrorCode::InvalidSignature),
        "{refusal:?}"
    );
    assert!(
        message_of(&refusal).contains("with re-share"),
        "{refusal:?}"
    );
    let honest = replica
        .call(d, set_request(d.manifest(1), Some(base)))
        .await;
    assert!(
        matches!(
            honest,
            SetManifestReply::ManifestSet(ManifestSet { generation: 2, .. })
        ),
        "{honest:?}"
    );
    owner.verify(&replica, &d.manifest(1)).await;
    let genuine_gen2 = host.read();

    // Attack 3: the agent restarted on the saved generation-1 store, no
    // peers. The owner is told to recover and refuses.
    host.write(store::LATEST_KEY, &genuine_gen1[store::LATEST_KEY]);
    replica.start_agent(d);
    replica.wait_state(d, ReplicaState::Recovery).await;
    let why = refused(owner.recover(&replica, &d.manifest(1), false).await);
    assert!(why.contains("ROLLBACK"), "{why}");
    assert!(why.contains("generation 1"), "{why}");
    assert_eq!(
        code_of(&replica.call(d, get()).await),
        Some(ErrorCode::NeedsRecovery)
    );

    // Attack 1: the host's own seed-share record over the generation-2
    // chain, signed with its own seed's history key; the agent restarted.
    let attacker_secret = [0x99u8; 32];
    let attacker_key = seedshare::owner_public_key(&attacker_secret);
    let (puts, own) = forged_record(&genuine_gen2, &[attacker_key]);
    host.write_all(&puts);
    replica.start_agent(d);
    replica.wait_state(d, ReplicaState::Recovery).await;
    // Its own key: not an owner of the manifest.
    let response =
        hostile_recover(&replica, d, &own, &attacker_secret, &attacker_secret, None).await;
    assert_eq!(
        code_of(&response),
        Some(ErrorCode::PermissionDenied),
        "{response:?}"
    );
    assert!(
        message_of(&response).contains("not a seed-share owner"),
        "{response:?}"
    );
    // The owner's public key, without the owner's secret: does not open.
    let response = hostile_recover(
        &replica,
        d,
        &own,
        &attacker_secret,
        &attacker_secret,
        Some(seedshare::owner_public_key(&SEEDSHARE_SECRET)),
    )
    .await;
    assert_eq!(
        code_of(&response),
        Some(ErrorCode::PermissionDenied),
        "{response:?}"
    );
    assert!(
        message_of(&response).contains("does not open"),
        "{response:?}"
    );
    // The owner checks before sending anything.
    let why = refused(owner.recover(&replica, &d.manifest(1), false).await);
    assert!(why.contains("FORGED"), "{why}");
    let fresh = owner.elsewhere(&document);
    let why = refused(fresh.recover(&replica, &d.manifest(1), false).await);
    assert!(why.contains("no trust state"), "{why}");
    let why = refused(fresh.recover(&replica, &d.manifest(1), true).await);
    assert!(why.contains("is none of"), "{why}");
    assert_eq!(
        code_of(&replica.call(d, get()).await),
        Some(ErrorCode::NeedsRecovery),
        "no secret was adopted"
    );
    assert!(replica.mesh(d).await.contains("not ready"));

    // The genuine store back: the owner recovers generation 2, same
    // deployment (history key).
    host.write(store::LATEST_KEY, &genuine_gen2[store::LATEST_KEY]);
    replica.start_agent(d);
    replica.wait_state(d, ReplicaState::Recovery).await;
    let outcome = owner
        .recover(&replica, &d.manifest(1), false)
        .await
        .unwrap();
    assert_eq!(outcome.status, RecoverStatus::Recovered);
    assert_eq!(outcome.generation, Some(2));
    owner.verify(&replica, &d.manifest(1)).await;
    assert_eq!(replica.mesh(d).await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_cannot_take_the_secrets_through_the_filesystem_store() {
    let _heavy = heavy().await;
    let d = Deployment::new("attack-store-fs");
    let host = HostStore::Fs(d.dir.join("store"));
    the_host_cannot_take_the_secrets(&d, &host, "fs").await;
    let _ = std::fs::remove_dir_all(&d.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_cannot_take_the_secrets_through_configmaps() {
    let _heavy = heavy().await;
    let d = Deployment::new("attack-store-kube");
    let server = TestApiServer::start().await.unwrap();
    let host = HostStore::Kube(server);
    the_host_cannot_take_the_secrets(&d, &host, "kube").await;
    let _ = std::fs::remove_dir_all(&d.dir);
}
