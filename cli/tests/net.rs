//! `accord set`, `accord verify`, `accord get-manifests` and
//! `accord recover` end to end: a coordinator runs in this test process
//! (the demo's deployment, `accord_demo::demo::Deployment`, INSECURE
//! simulated chip), and the real `accord` binary talks to it over loopback.
//! Every command runs `--offline` or fetches from the INSECURE simulated
//! vendor on loopback (`--kds-url`/`--pcs-url`), never from AMD or Intel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use accord_cli::net::coordinator_policy;
use accord_core::evidence::snp::Product;
use accord_core::manifest::Manifest;
use accord_core::protocol::{
    GetManifests, GetManifestsReply, HelloReply, MAX_USER_FRAME, UserRequest, VERSION, negotiate,
};
use accord_demo::demo::Deployment;
use accord_guest::atls::{Acceptor, ClientAuth, Identity, Timeouts};
use accord_guest::client::UserClient;
use accord_guest::coordinator::InProcess;
use accord_guest::tee::TeeProvider;
use accord_guest::tee::bare::Bare;
use accord_guest::wire::{self, ReadLimits};
use accord_simulated_vendor::SimulatedVendor;

const BIN: &str = env!("CARGO_BIN_EXE_accord");
/// Accepts the demo's manifest, which trusts the simulated chip.
const INSECURE: &str = "--insecure-simulation";
const WAIT: Duration = Duration::from_secs(30);

/// A prepared workspace and a coordinator serving in this process.
struct Harness {
    _temp: tempfile::TempDir,
    dir: PathBuf,
    deployment: Deployment,
    rt: tokio::runtime::Runtime,
    coordinator: Option<InProcess>,
    user: String,
}

/// Copies this test process's simulated chip into `dest` (where the
/// demo's helpers open it): the chip is generated once (two RSA-4096 key
/// generations), by the first harness, in a deployment of its own.
fn install_process_chip(dest: &Path) {
    static CHIP: OnceLock<PathBuf> = OnceLock::new();
    let chip = CHIP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("accord-cli-net-chip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Deployment::open(&dir).unwrap();
        dir.join("coordinator/chip")
    });
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(chip).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
    }
}

impl Harness {
    fn new() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("accord-cli-net-")
            .tempdir()
            .unwrap();
        let dir = temp.path().join("ws");
        std::fs::create_dir_all(&dir).unwrap();
        install_process_chip(&dir.join("coordinator/chip"));
        let deployment = Deployment::prepare(&dir).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let coordinator = rt.block_on(deployment.start_coordinator()).unwrap();
        let user = coordinator.user_addr.to_string();
        Self {
            _temp: temp,
            dir,
            deployment,
            rt,
            coordinator: Some(coordinator),
            user,
        }
    }

    fn ws(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Runs `accord ARGS -c USER --workspace DIR --insecure-simulation`
    /// (the demo's manifest trusts the simulated chip).
    fn accord(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.push(INSECURE);
        self.accord_without_simulation(&all)
    }

    /// Runs `accord ARGS -c USER --workspace DIR`.
    fn accord_without_simulation(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-c", &self.user, "--workspace", self.ws()]);
        accord(&all)
    }

    /// Stops the coordinator and starts it again over the same store (it
    /// comes up needing recovery).
    fn restart(&mut self) {
        if let Some(coordinator) = self.coordinator.take() {
            self.rt.block_on(coordinator.stop()).unwrap();
        }
        let coordinator = self
            .rt
            .block_on(self.deployment.start_coordinator())
            .unwrap();
        self.user = coordinator.user_addr.to_string();
        self.coordinator = Some(coordinator);
    }

    /// The manifest with a new SAN for web (regenerated in place).
    fn update_manifest(&self, san: &str) {
        self.deployment.write_resources(Some(san)).unwrap();
        self.deployment.generate_manifest().unwrap();
    }

    /// The raw GetManifests reply, attested against `manifest.json`.
    fn get_manifests(&self) -> GetManifestsReply {
        let bytes = std::fs::read(self.dir.join("manifest.json")).unwrap();
        let policy = coordinator_policy(&Manifest::from_json(&bytes).unwrap());
        self.rt.block_on(async {
            let mut client = UserClient::connect(&self.user, policy).await.unwrap();
            client
                .call(GetManifests {
                    consistency_from: None,
                    inclusion_of: Vec::new(),
                })
                .await
                .unwrap()
        })
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(coordinator) = self.coordinator.take() {
            let _ = self.rt.block_on(coordinator.stop());
        }
    }
}

/// Runs `accord ARGS`. A network command that names no collateral source
/// gets `--offline`: no test reaches AMD or Intel (the simulated chip's
/// evidence carries its VCEK and CRL).
fn accord(args: &[&str]) -> Output {
    let network = matches!(
        args.first(),
        Some(&"set" | &"verify" | &"get-manifests" | &"recover")
    );
    let named = args.iter().any(|a| *a == "--offline" || *a == "--kds-url");
    let mut command = Command::new(BIN);
    command.args(args);
    if network && !named {
        command.arg("--offline");
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn set_then_verify_write_the_files() {
    let h = Harness::new();
    let set = h.accord(&["set", "--json"]);
    assert_exit(&set, 0);
    let json: serde_json::Value = serde_json::from_slice(&set.stdout).unwrap();
    assert_eq!(json["generation"], 1, "{json}");
    assert_eq!(json["first"], true, "{json}");
    assert_eq!(mode(&h.dir.join("seed-shares.json")), 0o600);
    for file in ["coordinator-root-ca.pem", "mesh-ca.pem"] {
        let pem = std::fs::read_to_string(h.dir.join(file)).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{file}");
    }

    // `accord set` verified what it set and wrote the trust state.
    assert!(h.dir.join("verify/last-tree-head.json").is_file());
    let verify = h.accord(&["verify"]);
    assert_exit(&verify, 0);
    let out = text(&verify.stdout);
    assert!(out.contains("history verified: generation 1"), "{out}");
    assert!(out.contains("unchanged since last verified"), "{out}");
    for file in [
        "last-tree-head.json",
        "history.json",
        "root-ca.pem",
        "mesh-ca.pem",
        "manifests/manifest-0.json",
    ] {
        assert!(h.dir.join("verify").join(file).is_file(), "{file}");
    }
    assert_eq!(
        std::fs::read(h.dir.join("verify/manifests/manifest-0.json")).unwrap(),
        std::fs::read(h.dir.join("manifest.json")).unwrap()
    );

    // get-manifests prints the history and leaves the trust state alone.
    let before = std::fs::read(h.dir.join("verify/last-tree-head.json")).unwrap();
    let history = h.accord(&["get-manifests", "--json"]);
    assert_exit(&history, 0);
    let entries: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    assert_eq!(entries[0]["generation"], 1);
    assert_eq!(
        std::fs::read(h.dir.join("verify/last-tree-head.json")).unwrap(),
        before
    );
}

#[test]
fn verify_against_another_manifest_fails_naming_the_mismatch() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);

    // Same coordinator policy, another web SAN: attestation passes, the
    // history does not end in this manifest.
    let trust = std::fs::read(h.dir.join("verify/last-tree-head.json")).unwrap();
    h.update_manifest("web.example.com");
    let verify = h.accord(&["verify"]);
    assert_exit(&verify, 1);
    let err = text(&verify.stderr);
    assert!(err.contains("verification FAILED"), "{err}");
    assert!(err.contains("differs from manifest.json"), "{err}");
    assert_eq!(
        std::fs::read(h.dir.join("verify/last-tree-head.json")).unwrap(),
        trust,
        "a failed verification leaves the trust state alone"
    );

    // Another coordinator policy: the coordinator fails attestation.
    let manifest = std::fs::read_to_string(h.dir.join("manifest.json")).unwrap();
    let parsed = Manifest::from_json(manifest.as_bytes()).unwrap();
    let coordinator_hash = accord_core::hex::encode(&parsed.doc().coordinator_policy_hashes()[0]);
    let other = h.dir.join("other-manifest.json");
    std::fs::write(
        &other,
        manifest.replace(&coordinator_hash, &"ab".repeat(32)),
    )
    .unwrap();
    let verify = h.accord(&["verify", "-m", other.to_str().unwrap()]);
    assert_exit(&verify, 1);
    let err = text(&verify.stderr);
    assert!(err.contains("failed attestation"), "{err}");
}

#[test]
fn updates_need_a_signature_and_move_the_trust_state() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    assert_exit(&h.accord(&["verify"]), 0);

    h.update_manifest("web.example.com");
    let unsigned = h.accord(&["set"]);
    assert_exit(&unsigned, 1);
    let err = text(&unsigned.stderr);
    assert!(err.contains("permission_denied"), "{err}");
    assert!(
        err.contains(
            "pass --workload-owner-key with a key listed in the current manifest's WorkloadOwnerPubKeys"
        ),
        "{err}"
    );

    let key = h.deployment.owner_key();
    let signed = h.accord(&[
        "set",
        "--atomic",
        "--workload-owner-key",
        key.to_str().unwrap(),
    ]);
    assert_exit(&signed, 0);
    assert!(
        text(&signed.stdout).contains("manifest set: generation 2"),
        "{}",
        text(&signed.stdout)
    );
    let verify = h.accord(&["verify", "--json"]);
    assert_exit(&verify, 0);
    let json: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(json["generation"], 2, "{json}");
    // `accord set` already moved the trust state to what it set.
    assert_eq!(json["previous_size"], 2, "{json}");

    // A third generation signed offline: `accord sign`, then `set
    // --signature`.
    h.update_manifest("web.example.org");
    let request = h.dir.join("update.request");
    let sig = h.dir.join("update.sig");
    assert_exit(
        &accord(&[
            "sign",
            "--prepare",
            "--workspace",
            h.ws(),
            "-o",
            request.to_str().unwrap(),
        ]),
        0,
    );
    assert_exit(
        &accord(&[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--request",
            request.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ]),
        0,
    );
    let with_sig = h.accord(&["set", "--signature", sig.to_str().unwrap()]);
    assert_exit(&with_sig, 0);
    assert!(text(&with_sig.stdout).contains("generation 3"));
    // The same signature does not authorize another update.
    h.update_manifest("web.example.net");
    let stale = h.accord(&["set", "--signature", sig.to_str().unwrap()]);
    assert_exit(&stale, 1);
    assert!(
        text(&stale.stderr).contains("accord sign --prepare"),
        "{}",
        text(&stale.stderr)
    );
    // Back to the manifest that was set, verify moves to generation 3.
    h.update_manifest("web.example.org");
    let verify = h.accord(&["verify"]);
    assert_exit(&verify, 0);
    assert!(
        text(&verify.stdout).contains("generation 3"),
        "{}",
        text(&verify.stdout)
    );
}

#[test]
fn a_restarted_coordinator_needs_recovery_and_says_so() {
    let mut h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    h.restart();
    for command in ["set", "verify"] {
        let output = h.accord(&[command]);
        assert_exit(&output, 1);
        let err = text(&output.stderr);
        assert!(err.contains("needs_recovery"), "{command}: {err}");
        assert!(
            err.contains("the coordinator is in recovery: run `accord recover`"),
            "{command}: {err}"
        );
    }
}

#[test]
fn recover_brings_a_restarted_coordinator_back() {
    let mut h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    assert_exit(&h.accord(&["verify"]), 0);
    let key = h.dir.join("keys/seedshare-owner-2.pem");
    let key = key.to_str().unwrap();

    // Ready: nothing to recover.
    let ready = h.accord(&["recover", "--seedshare-key", key]);
    assert_exit(&ready, 1);
    let err = text(&ready.stderr);
    assert!(err.contains("already_recovered"), "{err}");

    // Restarted: the demo's manifest needs one of its two owners.
    h.restart();
    let recovered = h.accord(&["recover", "--seedshare-key", key, "--json"]);
    assert_exit(&recovered, 0);
    let json: serde_json::Value = serde_json::from_slice(&recovered.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"status": "recovered", "have": 1, "need": 1, "generation": 1})
    );
    assert!(
        text(&recovered.stderr).contains("opened share 2 of 2 (threshold 1)"),
        "{}",
        text(&recovered.stderr)
    );
    let verify = h.accord(&["verify"]);
    assert_exit(&verify, 0);
    assert!(text(&verify.stdout).contains("unchanged since last verified"));

    // A damaged document is refused before anything is sent.
    let shares = h.dir.join("seed-shares.json");
    let mut document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&shares).unwrap()).unwrap();
    let ciphertext = document["shares"][1]["ciphertext"].as_str().unwrap();
    let flipped = if ciphertext.starts_with('0') {
        "1"
    } else {
        "0"
    };
    document["shares"][1]["ciphertext"] = format!("{flipped}{}", &ciphertext[1..]).into();
    let damaged = h.dir.join("damaged.json");
    std::fs::write(&damaged, serde_json::to_vec(&document).unwrap()).unwrap();
    let output = h.accord(&[
        "recover",
        "--seedshare-key",
        key,
        "--seed-shares",
        damaged.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    let err = text(&output.stderr);
    assert!(err.contains("does not decrypt"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
}

/// The refusal of a manifest that trusts the simulated root: exit 1,
/// naming the file (`file`, as the command calls it) and the entry's JSON
/// path, why, and the flag; nothing accepted, no warning.
#[track_caller]
fn assert_refuses_simulation(output: &Output, file: &str) {
    assert_exit(output, 1);
    let err = text(&output.stderr);
    let named = format!(
        "REFUSED: {file}: ReferenceValues.snp[0].InsecureTrustedRoot trusts the INSECURE simulated SEV-SNP root"
    );
    for needle in [
        named.as_str(),
        "proves nothing about hardware",
        "pass --insecure-simulation to accept it for testing",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
    assert!(!err.contains("WARNING"), "{err}");
    assert!(text(&output.stdout).is_empty(), "{}", text(&output.stdout));
}

/// Exactly one loud warning line on stderr.
#[track_caller]
fn assert_warns_once(output: &Output) {
    let err = text(&output.stderr);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|line| line.contains("INSECURE SIMULATION"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    let warning = warnings[0];
    assert!(
        warning.starts_with("WARNING: INSECURE SIMULATION: "),
        "{warning}"
    );
    for needle in [
        "ReferenceValues.snp[0].InsecureTrustedRoot",
        "accepted because of --insecure-simulation",
        "proves nothing about hardware",
    ] {
        assert!(
            warning.contains(needle),
            "{needle:?} missing from {warning}"
        );
    }
}

/// The demo's manifest without its InsecureTrustedRoot: trusts AMD's
/// roots only.
fn secure_manifest(h: &Harness) -> PathBuf {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.dir.join("manifest.json")).unwrap()).unwrap();
    let entry = json["ReferenceValues"]["snp"][0].as_object_mut().unwrap();
    assert!(entry.remove("InsecureTrustedRoot").is_some());
    let path = h.dir.join("secure-manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    path
}

#[test]
fn the_simulated_root_is_refused_without_insecure_simulation() {
    let mut h = Harness::new();
    let manifest = h.dir.join("manifest.json");
    let manifest = manifest.to_str().unwrap();

    // set: refused before connecting, nothing set or written.
    let set = h.accord_without_simulation(&["set"]);
    assert_refuses_simulation(&set, manifest);
    assert!(!h.dir.join("seed-shares.json").exists());
    assert!(!h.dir.join("verify").exists());
    assert!(matches!(
        h.get_manifests(),
        GetManifestsReply::Error(ref reply) if reply.code == accord_core::protocol::ErrorCode::NoManifest
    ));
    // With the flag: set, and one warning.
    let set = h.accord(&["set"]);
    assert_exit(&set, 0);
    assert_warns_once(&set);

    for command in ["verify", "get-manifests"] {
        let refused = h.accord_without_simulation(&[command]);
        assert_refuses_simulation(&refused, manifest);
        let accepted = h.accord(&[command, "--json"]);
        assert_exit(&accepted, 0);
        assert_warns_once(&accepted);
        serde_json::from_slice::<serde_json::Value>(&accepted.stdout)
            .expect("the warning stays off stdout");
    }

    // A secure manifest needs no flag: it passes the check, and the
    // simulated chip then fails attestation against AMD's roots.
    let secure = secure_manifest(&h);
    let verify = h.accord_without_simulation(&["verify", "-m", secure.to_str().unwrap()]);
    assert_exit(&verify, 1);
    let err = text(&verify.stderr);
    assert!(err.contains("failed attestation"), "{err}");
    assert!(!err.contains("INSECURE SIMULATION"), "{err}");
    assert!(!err.contains("--insecure-simulation"), "{err}");
    // `accord set` of that secure manifest still attests against the
    // workspace's current manifest, which trusts the simulated root.
    let update = h.accord_without_simulation(&["set", "-m", secure.to_str().unwrap()]);
    let current = format!(
        "{} (this workspace's current manifest, which the coordinator is attested against)",
        h.dir.join("verify/manifests/manifest-0.json").display()
    );
    assert_refuses_simulation(&update, &current);
    let err = text(&update.stderr);
    assert!(!err.contains("secure-manifest.json"), "{err}");

    // recover: refused before anything is sent; with the flag it
    // recovers.
    h.restart();
    let key = h.dir.join("keys/seedshare-owner-1.pem");
    let key = key.to_str().unwrap();
    let refused = h.accord_without_simulation(&["recover", "--seedshare-key", key]);
    assert_refuses_simulation(&refused, manifest);
    let recovered = h.accord(&["recover", "--seedshare-key", key]);
    assert_exit(&recovered, 0);
    assert_warns_once(&recovered);
    assert!(
        text(&recovered.stdout).starts_with("recovered: generation 1"),
        "{}",
        text(&recovered.stdout)
    );
}

/// Copies the workspace files (not the coordinator's state) of `from`.
fn copy_workspace(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "coordinator" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_workspace(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn an_atomic_update_on_a_stale_view_is_a_conflict() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    assert_exit(&h.accord(&["verify"]), 0);
    // A second owner's workspace, as of generation 1.
    let other = h.dir.parent().unwrap().join("other");
    copy_workspace(&h.dir, &other);

    h.update_manifest("web.example.com");
    let key = h.deployment.owner_key();
    let key = key.to_str().unwrap();
    assert_exit(
        &h.accord(&["set", "--atomic", "--workload-owner-key", key]),
        0,
    );

    // The other owner still believes generation 1 is current.
    let stale = accord(&[
        "set",
        "--atomic",
        "--workload-owner-key",
        key,
        "-c",
        &h.user,
        "--workspace",
        other.to_str().unwrap(),
        INSECURE,
    ]);
    assert_exit(&stale, 1);
    let err = text(&stale.stderr);
    assert!(err.contains("manifest_conflict"), "{err}");
    assert!(
        err.contains("someone else updated the manifest: run `accord verify` and retry"),
        "{err}"
    );
}

/// A fake coordinator: attests with the simulated chip as launched with
/// the coordinator's policy, and answers every request with `reply`.
async fn replay(
    listener: tokio::net::TcpListener,
    tee: Arc<dyn accord_guest::tee::TeeProvider>,
    reply: GetManifestsReply,
) {
    let acceptor = Acceptor::new(
        tee,
        Identity::ephemeral().unwrap(),
        ClientAuth::KeyOptional,
        Timeouts::default(),
    )
    .unwrap();
    let limits = ReadLimits {
        max: MAX_USER_FRAME,
        idle: WAIT,
        body: WAIT,
    };
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok(attested) = acceptor.accept(tcp).await else {
            continue;
        };
        let (mut tls, _) = attested.into_parts();
        let Ok(hello) = wire::read_message(&mut tls, limits).await else {
            continue;
        };
        let answer = negotiate(&hello, accord_core::protocol::Api::User);
        assert!(matches!(answer, HelloReply::Accepted { version: VERSION }));
        wire::write_message(&mut tls, &answer, 4096, WAIT)
            .await
            .unwrap();
        while let Ok(_request) = wire::read_message::<UserRequest, _>(&mut tls, limits).await {
            wire::write_message(&mut tls, &reply, MAX_USER_FRAME, WAIT)
                .await
                .unwrap();
        }
    }
}

#[test]
fn verify_refuses_a_coordinator_serving_an_older_history() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    // What the coordinator said at generation 1.
    let old = h.get_manifests();
    assert!(matches!(old, GetManifestsReply::Manifests(_)), "{old:?}");

    h.update_manifest("web.example.com");
    let key = h.deployment.owner_key();
    assert_exit(
        &h.accord(&["set", "--workload-owner-key", key.to_str().unwrap()]),
        0,
    );
    assert_exit(&h.accord(&["verify"]), 0);
    let trust = std::fs::read(h.dir.join("verify/last-tree-head.json")).unwrap();

    // A coordinator (same chip, same policy, same history key) that
    // replays the generation-1 history.
    let listener =
        h.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
    let fake = listener.local_addr().unwrap().to_string();
    let tee = h.deployment.tee("coordinator").unwrap();
    let server = h.rt.spawn(replay(listener, tee, old));

    // Expecting the generation-1 manifest: the rollback is refused.
    let first = h.dir.join("verify/manifests/manifest-0.json");
    let verify = accord(&[
        "verify",
        "-c",
        &fake,
        "-m",
        first.to_str().unwrap(),
        "--workspace",
        h.ws(),
        INSECURE,
    ]);
    server.abort();
    assert_exit(&verify, 1);
    let err = text(&verify.stderr);
    assert!(err.contains("ROLLBACK"), "{err}");
    assert_eq!(
        std::fs::read(h.dir.join("verify/last-tree-head.json")).unwrap(),
        trust,
        "the trust state is untouched"
    );
}

#[test]
fn an_unreachable_coordinator_is_a_network_error_after_waiting() {
    let temp = tempfile::tempdir().unwrap();
    let manifest = temp.path().join("manifest.json");
    std::fs::write(
        &manifest,
        br#"{"Policies": {}, "ReferenceValues": {"snp": [], "tdx": []}, "WorkloadOwnerPubKeys": [], "SeedshareOwnerPubKeys": [], "SeedshareThreshold": 0}"#,
    )
    .unwrap();
    // Port 1 on loopback: nothing listens.
    let verify = accord(&[
        "verify",
        "-c",
        "127.0.0.1:1",
        "-m",
        manifest.to_str().unwrap(),
        "--timeout",
        "1",
        "--workspace",
        temp.path().to_str().unwrap(),
    ]);
    assert_exit(&verify, 2);
    let err = text(&verify.stderr);
    assert!(
        err.contains("waiting for the coordinator at 127.0.0.1:1"),
        "{err}"
    );
    // A usage error is 2 as well.
    assert_exit(&accord(&["set"]), 2);
}

// ---------------------------------------------------------------------
// Collateral for the coordinator's evidence (issue 15, "in service").

/// The product of the simulated chip the vendor serves.
fn served_product(vendor: &SimulatedVendor) -> Product {
    [Product::Milan, Product::Genoa, Product::Turin]
        .into_iter()
        .find(|p| vendor.snp_crl_number(*p).is_some())
        .expect("the vendor serves the deployment's chip")
}

/// The coordinator's own collateral travels in aTLS: `accord verify
/// --offline` verifies it (VCEK and CRL carried by its evidence) without a
/// single request to the vendor, and with the vendor's port closed.
#[test]
fn offline_verify_uses_the_collateral_the_coordinator_carries() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    let mut vendor = h.deployment.start_vendor().unwrap();
    let url = vendor.url();
    let offline = ["verify", "--offline", "--kds-url", &url, "--pcs-url", &url];
    let verify = h.accord(&offline);
    assert_exit(&verify, 0);
    assert_eq!(vendor.requests(), Vec::<String>::new(), "nothing fetched");
    vendor.stop();
    let closed = h.accord(&offline);
    assert_exit(&closed, 0);
    assert!(
        !text(&closed.stderr).contains("collateral:"),
        "no fetch was attempted: {}",
        text(&closed.stderr)
    );

    // Online with the vendor down: one line says so, and the collateral
    // the evidence carries is used.
    let online = h.accord(&["verify", "--kds-url", &url, "--pcs-url", &url]);
    assert_exit(&online, 0);
    let err = text(&online.stderr);
    let said: Vec<&str> = err
        .lines()
        .filter(|line| line.starts_with("collateral: "))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(
        said[0].contains("cannot fetch the VCEK CRL of")
            && said[0].ends_with("; using the collateral the coordinator's evidence carries"),
        "{err}"
    );
}

/// A coordinator whose evidence carries no CRL is refused offline, naming
/// the CRL that is missing; online, the vendor's CRL is fetched and it
/// passes.
#[test]
fn offline_verify_refuses_evidence_without_a_crl_by_name() {
    let h = Harness::new();
    let tee: Arc<dyn TeeProvider> = Arc::new(Bare(h.deployment.tee("coordinator").unwrap()));
    let bare =
        h.rt.block_on(accord_guest::coordinator::spawn(
            tee,
            &h.dir.join("bare-coordinator"),
            "127.0.0.1:0",
            "127.0.0.1:0",
        ))
        .unwrap();
    let addr = bare.user_addr.to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["verify", "-c", &addr, "--workspace", h.ws(), INSECURE];
        args.extend_from_slice(extra);
        accord(&args)
    };
    let refused = run(&["--offline"]);
    assert_exit(&refused, 1);
    let err = text(&refused.stderr);
    assert!(err.contains("failed attestation"), "{err}");
    assert!(
        err.contains("VCEK CRL of") && err.contains("is not held: revocation cannot be checked"),
        "{err}"
    );

    // Online, the vendor's CRL is fetched: attestation passes (the
    // coordinator has no manifest yet, which is another matter).
    let vendor = h.deployment.start_vendor().unwrap();
    let product = served_product(&vendor);
    let url = vendor.url();
    let online = run(&["--kds-url", &url, "--pcs-url", &url]);
    let err = text(&online.stderr);
    assert!(!err.contains("failed attestation"), "{err}");
    assert!(
        vendor.count(&format!("/vcek/v1/{}/crl", product.name())) >= 1,
        "{:?}",
        vendor.requests()
    );
    h.rt.block_on(bare.stop()).unwrap();
}

/// Freshness across runs: once the workspace has seen the vendor's newer
/// CRL (a revocation raised its number), the older CRL the coordinator
/// attaches is refused offline, naming newest-seen and offered.
#[test]
fn a_workspace_refuses_a_crl_older_than_it_has_seen() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    let vendor = h.deployment.start_vendor().unwrap();
    let product = served_product(&vendor);
    let number = vendor.revoke_snp(product, &[0x01, 0x23, 0x45]).unwrap();
    assert!(number >= 2, "{number}");
    let url = vendor.url();
    let online = h.accord(&["verify", "--kds-url", &url, "--pcs-url", &url]);
    assert_exit(&online, 0);
    assert!(
        vendor.count(&format!("/vcek/v1/{}/crl", product.name())) >= 1,
        "{:?}",
        vendor.requests()
    );
    let marks = h.dir.join("collateral/freshness-marks");
    assert!(marks.is_file());
    assert!(h.dir.join("collateral/cache").is_dir(), "the default cache");

    let offline = h.accord(&["verify", "--offline"]);
    assert_exit(&offline, 1);
    let err = text(&offline.stderr);
    assert!(
        err.contains(&format!(
            "is older than the newest seen (CRL number {number} of"
        )),
        "newest seen: {err}"
    );
    assert!(
        err.contains(": CRL number 0 (or none) of"),
        "offered: {err}"
    );

    // With the cache given, the newer CRL it holds is used offline.
    let cache = h.dir.join("collateral/cache");
    let cached = h.accord(&["verify", "--offline", "--cache", cache.to_str().unwrap()]);
    assert_exit(&cached, 0);
    // The marks never went down.
    let after = h.accord(&["verify", "--offline"]);
    assert_exit(&after, 1);
}

/// A marks file that is not marks is an error naming it (fail closed).
#[test]
fn a_corrupt_marks_file_is_refused_by_name() {
    let h = Harness::new();
    assert_exit(&h.accord(&["set"]), 0);
    let marks = h.dir.join("collateral/freshness-marks");
    assert!(marks.is_file(), "set recorded the marks");
    let mut bytes = std::fs::read(&marks).unwrap();
    bytes.push(0);
    std::fs::write(&marks, &bytes).unwrap();
    for command in ["verify", "set", "get-manifests"] {
        let output = h.accord(&[command]);
        assert_exit(&output, 2);
        let err = text(&output.stderr);
        assert!(
            err.contains(marks.to_str().unwrap()) && err.contains("not valid freshness marks"),
            "{command}: {err}"
        );
    }
    std::fs::write(&marks, b"accord-marks\x02").unwrap();
    let err = text(&h.accord(&["verify"]).stderr);
    assert!(err.contains("version 2"), "{err}");
}
