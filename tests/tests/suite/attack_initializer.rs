//! Attack 7 of issue 13, a fake coordinator for the initializer. The host
//! routes the workload initializer's connection to `coordinator:7777`
//! wherever it likes; whoever answers would hand the workload its
//! certificates, CAs and workload secret. The real `accord-guest
//! initializer` binary (INSECURE simulated chip, launched with the `web`
//! policy) is pointed at:
//!
//! - (a) fake coordinators in this process, attested TLS servers that are
//!   not genuine: an impostor chip (its own ARK/ASK/VCEK) claiming the
//!   pinned coordinator policy, and the genuine chip launched with a
//!   policy that is not the pinned coordinator's;
//! - (b) a genuine `accord-guest coordinator` of ANOTHER deployment on the
//!   same hardware whose manifest lists the victim's `web` policy: with the
//!   host's own seed-share key; then re-shared (signed by its workload
//!   owner) to the victim's seed-share owner, whose old sharing still
//!   counts; and a third, sharing among the victim's owners from the
//!   start but with the host as its workload owner (it could re-share
//!   later), also refused for its root CA when that is pinned;
//! - (c) the victim's own genuine coordinator: the initializer succeeds and
//!   writes the files.
//!
//! Each refusal must be named (`check NAME`) and leave the output
//! directory (made beforehand, as a pod's volume would be) empty. Without
//! a deployment pin the initializer refuses to start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support::process::{Killed, addr_after, binary, start_until};
use crate::support::*;
use accord_core::ca::Ca;
use accord_core::coordinator::{UpdateIntent, next_transition};
use accord_core::crypto::default_provider;
use accord_core::evidence::ReferenceValues;
use accord_core::hex;
use accord_core::history::objects::ObjectHash;
use accord_core::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};
use accord_core::protocol::{
    Api, Hello, HelloReply, MAX_MESH_FRAME, ManifestSet, MeshCert, MeshRequest, NewMeshCertReply,
    OwnerSignature, SetManifest, SetManifestReply, UserCall,
};
use accord_core::seedshare;
use accord_guest::atls::{Acceptor, ClientAuth, Identity, Timeouts, system_now};
use accord_guest::client::UserClient;
use accord_guest::coordinator::OsRandom;
use accord_guest::tee::TeeProvider;
use accord_guest::tee::simulated::SimulatedSnp;
use accord_guest::wire::{self, ReadLimits};
use ed25519_dalek::Signer;

/// The host's own seed-share key (X25519 secret).
const HOST_SEEDSHARE: [u8; 32] = [0x66; 32];

/// The host's own workload-owner key.
fn host_owner() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x77; 32])
}

fn ed25519_spki(key: &ed25519_dalek::SigningKey) -> Vec<u8> {
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(key.verifying_key().as_bytes());
    spki
}

/// The reference values of the chip (any HOST_DATA), as in the manifest.
fn reference(d: &Deployment) -> ReferenceValues {
    let mut snp = d.chip.reference_values();
    snp.host_data = None;
    ReferenceValues {
        snp: vec![snp],
        tdx: Vec::new(),
    }
}

/// A manifest admitting the coordinator and `web` policies, with
/// `seedshare` owners (X25519 secrets, threshold 1) and `owner` as the
/// workload owner.
fn manifest(d: &Deployment, seedshare: &[u8; 32], owner: &[u8], variant: u32) -> Vec<u8> {
    let public = seedshare::owner_public_key(seedshare);
    serde_json::to_vec_pretty(&serde_json::json!({
        "Policies": {
            hex::encode(&sha256(COORD_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
            hex::encode(&sha256(WEB_POLICY)): {"SANs": [format!("web-{variant}")], "WorkloadSecretID": "web"},
        },
        "ReferenceValues": reference(d),
        "WorkloadOwnerPubKeys": [hex::encode(owner)],
        "SeedshareOwnerPubKeys": [format!("302a300506032b656e032100{}", hex::encode(&public.0))],
        "SeedshareThreshold": 1,
    }))
    .unwrap()
}

/// A first `SetManifest` (no signature).
fn first_set(manifest: Vec<u8>) -> SetManifest {
    SetManifest {
        manifest,
        policies: vec![COORD_POLICY.to_vec(), WEB_POLICY.to_vec()],
        expected_previous_transition: None,
        signatures: Vec::new(),
        reshare: false,
    }
}

/// A re-share to `manifest` on top of `base`, signed by `signer`.
fn reshare(manifest: Vec<u8>, base: Base, signer: &ed25519_dalek::SigningKey) -> SetManifest {
    let (_, next) = next_transition(default_provider(), &manifest, Some(ObjectHash(base.latest)));
    let intent = UpdateIntent {
        deployment: base.deployment,
        next_transition: next,
        reshare: true,
    };
    SetManifest {
        manifest,
        policies: vec![COORD_POLICY.to_vec(), WEB_POLICY.to_vec()],
        expected_previous_transition: None,
        signatures: vec![OwnerSignature {
            public_key: ed25519_spki(signer),
            signature: signer.sign(&intent.message()).to_bytes().to_vec(),
        }],
        reshare: true,
    }
}

/// A genuine `accord-guest coordinator` process (coordinator policy, the
/// victim's chip copied into `state/chip`: the same hardware).
struct Coordinator {
    _process: Killed,
    user: String,
    mesh: String,
}

impl Coordinator {
    fn start(d: &Deployment, state: &Path) -> Self {
        let chip = state.join("chip");
        if chip != d.dir.join("chip") {
            std::fs::create_dir_all(&chip).unwrap();
            for entry in std::fs::read_dir(d.dir.join("chip")).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    std::fs::copy(entry.path(), chip.join(entry.file_name())).unwrap();
                }
            }
        }
        let mut command = Command::new(binary("accord-guest"));
        command
            .args(["coordinator", "--tee", "insecure-simulated"])
            .args(["--host-data", &hex::encode(&sha256(COORD_POLICY))])
            .arg("--state")
            .arg(state)
            .args(["--user-api", "127.0.0.1:0", "--mesh-api", "127.0.0.1:0"]);
        let (process, line) = start_until(command, "user API on", &state.join("agent.log"));
        Self {
            _process: process,
            user: addr_after(&line, "user API on "),
            mesh: addr_after(&line, "mesh API on "),
        }
    }

    async fn call<C: UserCall>(&self, d: &Deployment, request: C) -> C::Reply {
        let mut client = UserClient::connect(&self.user, d.user_policy())
            .await
            .unwrap();
        client.call(request).await.unwrap()
    }

    /// Sets `request`, which must be accepted; returns the reply.
    async fn set(&self, d: &Deployment, request: SetManifest) -> SetManifestReply {
        let reply = self.call(d, request).await;
        assert!(
            matches!(reply, SetManifestReply::ManifestSet(ManifestSet { .. })),
            "{reply:?}"
        );
        reply
    }
}

/// A fake coordinator in this process: attested TLS with `tee`, then
/// whatever a workload asks it answers with a certificate chain and a
/// workload secret of its own. Returns its address.
async fn fake_coordinator(tee: Arc<dyn TeeProvider>, d: &Deployment) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let acceptor = Arc::new(
        Acceptor::new(
            tee,
            Identity::ephemeral().unwrap(),
            ClientAuth::Attested(d.user_policy()),
            Timeouts::default(),
        )
        .unwrap(),
    );
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tcp.set_nodelay(true).unwrap();
            let acceptor = Arc::clone(&acceptor);
            tokio::spawn(async move {
                let Ok(attested) = acceptor.accept(tcp).await else {
                    return;
                };
                let (mut stream, _) = attested.into_parts();
                let limits = ReadLimits {
                    max: MAX_MESH_FRAME,
                    idle: Duration::from_secs(10),
                    body: Duration::from_secs(10),
                };
                let wait = Duration::from_secs(10);
                let Ok(Hello { api: Api::Mesh, .. }) =
                    wire::read_message(&mut stream, limits).await
                else {
                    return;
                };
                let reply = HelloReply::Accepted { version: 1 };
                let _ = wire::write_message(&mut stream, &reply, 1024, wait).await;
                let Ok(MeshRequest::NewMeshCert) = wire::read_message(&mut stream, limits).await
                else {
                    return;
                };
                let own = own_ca();
                let cert = NewMeshCertReply::MeshCert(MeshCert {
                    cert_chain: vec![
                        own.mesh_ca_cert().to_vec(),
                        own.intermediate_cert().to_vec(),
                    ],
                    mesh_ca: own.mesh_ca_cert().to_vec(),
                    root_ca: own.root_cert().to_vec(),
                    workload_secret: Some(vec![0x66; 64].into()),
                    deployment: Default::default(),
                });
                let _ = wire::write_message(&mut stream, &cert, MAX_MESH_FRAME, wait).await;
            });
        }
    });
    addr
}

/// A CA of the fake coordinator's own (from a fresh seed).
fn own_ca() -> Ca {
    let rng = OsRandom;
    let seed = SecretSeed::generate(&rng).unwrap();
    let engine = SeedEngine::new(seed, Salt::generate(&rng).unwrap(), default_provider());
    let root_key = engine.root_ca_key().unwrap();
    let mesh_key = MeshCaKey::random(&rng).unwrap();
    Ca::new(&root_key, mesh_key, system_now(), &rng).unwrap()
}

/// How the workload pins its coordinator.
enum Trust {
    /// `--trust-manifest` of the victim's manifest (its coordinator
    /// policy, reference values, seed-share owner and threshold, workload
    /// owner).
    Manifest,
    /// The explicit flags: coordinator policy, reference values, the
    /// victim's seed-share owner (raw key) and threshold; no workload
    /// owners; the root CA if given.
    Flags { root_ca_sha256: Option<[u8; 32]> },
    /// Only the coordinator's code, no deployment pin.
    CodeOnly,
}

/// What one initializer run did.
struct Outcome {
    success: bool,
    code: Option<i32>,
    stderr: String,
}

/// Runs the real `accord-guest initializer` (the victim's `web` workload
/// on the victim's chip) against `mesh` once, writing into `out`.
async fn initializer(d: &Deployment, mesh: &str, out: &Path, trust: Trust) -> Outcome {
    let mut command = Command::new(binary("accord-guest"));
    command
        .args(["initializer", "--coordinator", mesh, "--max-attempts", "1"])
        .arg("--out")
        .arg(out)
        .args(["--tee", "insecure-simulated", "--state"])
        .arg(d.dir.join("chip"))
        .args(["--host-data", &hex::encode(&sha256(WEB_POLICY))]);
    let reference_values = d.dir.join("coordinator-reference-values.json");
    std::fs::write(
        &reference_values,
        serde_json::to_vec(&reference(d)).unwrap(),
    )
    .unwrap();
    let code_flags = |command: &mut Command| {
        command
            .args(["--coordinator-policy", &hex::encode(&sha256(COORD_POLICY))])
            .arg("--coordinator-reference-values")
            .arg(&reference_values);
    };
    match trust {
        Trust::Manifest => {
            let path = d.dir.join("victim-manifest.json");
            std::fs::write(&path, victim_manifest(d)).unwrap();
            command.arg("--trust-manifest").arg(path);
        }
        Trust::Flags { root_ca_sha256 } => {
            code_flags(&mut command);
            let owner = seedshare::owner_public_key(&SEEDSHARE_SECRET);
            command
                .args(["--seedshare-owner", &hex::encode(&owner.0)])
                .args(["--seedshare-threshold", "1"]);
            if let Some(root) = root_ca_sha256 {
                command.args(["--root-ca-sha256", &hex::encode(&root)]);
            }
        }
        Trust::CodeOnly => code_flags(&mut command),
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("--- initializer at {mesh}:\n{stderr}");
    Outcome {
        success: output.status.success(),
        code: output.status.code(),
        stderr,
    }
}

/// The victim's manifest: its own seed-share owner and workload owner.
fn victim_manifest(d: &Deployment) -> Vec<u8> {
    manifest(d, &SEEDSHARE_SECRET, &owner_spki(), 0)
}

/// Every path under `dir` (empty if nothing was written).
fn written(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// A fresh, empty output directory (the workload's volume).
fn volume(d: &Deployment, name: &str) -> PathBuf {
    let out = d.dir.join("volumes").join(name);
    std::fs::create_dir_all(&out).unwrap();
    out
}

/// The initializer refused the coordinator by the check `check` and wrote
/// nothing.
fn assert_refused(outcome: &Outcome, check: &str, out: &Path) {
    assert!(!outcome.success, "accepted:\n{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("attempt 1 refused the coordinator at"),
        "not named a refusal:\n{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains(&format!("check {check}: ")),
        "not refused by check {check}:\n{}",
        outcome.stderr
    );
    let files = written(out);
    assert!(files.is_empty(), "a refused coordinator left {files:?}");
}

fn spki_sha256(cert_der: &[u8]) -> [u8; 32] {
    let cert = accord_core::x509::Certificate::from_der(cert_der).unwrap();
    sha256(cert.spki_der())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initializer_refuses_fake_coordinators_and_other_deployments() {
    let d = Deployment::new("attack-initializer");

    // Nothing pinned of the deployment: the initializer does not start.
    let out = volume(&d, "unpinned");
    let outcome = initializer(&d, "127.0.0.1:9", &out, Trust::CodeOnly).await;
    assert_eq!(outcome.code, Some(2), "{}", outcome.stderr);
    for flag in ["--seedshare-owner", "--root-ca-sha256", "--trust-manifest"] {
        assert!(outcome.stderr.contains(flag), "{}", outcome.stderr);
    }
    assert!(written(&out).is_empty());

    // (a) Not genuine: an impostor chip claiming the coordinator policy...
    let impostor = SimulatedSnp::open(&d.dir.join("impostor-chip"), &config(COORD_POLICY)).unwrap();
    let fake = fake_coordinator(Arc::new(impostor), &d).await;
    for trust in [
        Trust::Manifest,
        Trust::Flags {
            root_ca_sha256: None,
        },
    ] {
        let out = volume(&d, "impostor");
        let outcome = initializer(&d, &fake, &out, trust).await;
        assert_refused(&outcome, "coordinator-evidence", &out);
    }
    // ...and the genuine chip launched with another policy.
    let fake = fake_coordinator(d.tee(b"the host's coordinator policy"), &d).await;
    let out = volume(&d, "other-policy");
    let outcome = initializer(&d, &fake, &out, Trust::Manifest).await;
    assert_refused(&outcome, "coordinator-policy", &out);
    assert!(
        outcome.stderr.contains(&hex::encode(&sha256(COORD_POLICY))),
        "the pinned policy is named:\n{}",
        outcome.stderr
    );

    // (b) A genuine coordinator of the host's own deployment, listing the
    // victim's web policy with the host's seed-share key: the host could
    // rebuild its seed, hence the workload secret.
    let host = Coordinator::start(&d, &d.dir.join("host-deployment"));
    let host_manifest = manifest(&d, &HOST_SEEDSHARE, &ed25519_spki(&host_owner()), 0);
    host.set(&d, first_set(host_manifest)).await;
    let out = volume(&d, "host-owner");
    let outcome = initializer(&d, &host.mesh, &out, Trust::Manifest).await;
    assert_refused(&outcome, "seedshare-owner", &out);
    let host_key = hex::encode(&seedshare::owner_public_key(&HOST_SEEDSHARE).0);
    assert!(outcome.stderr.contains(&host_key), "{}", outcome.stderr);

    // The host re-shares (signed by its workload owner) to the victim's
    // seed-share owner: the current sharing is the pinned one, but the
    // host still holds a share of the first, which rebuilds the seed.
    let base = Base::of(&host.call(&d, get()).await);
    let moved = manifest(&d, &SEEDSHARE_SECRET, &ed25519_spki(&host_owner()), 1);
    host.set(&d, reshare(moved, base, &host_owner())).await;
    let out = volume(&d, "host-reshared");
    let outcome = initializer(
        &d,
        &host.mesh,
        &out,
        Trust::Flags {
            root_ca_sha256: None,
        },
    )
    .await;
    assert_refused(&outcome, "seedshare-owner", &out);
    assert!(
        outcome.stderr.contains("sharing 0") && outcome.stderr.contains(&host_key),
        "{}",
        outcome.stderr
    );

    // A host deployment sharing among the victim's owners from the start,
    // but with the host as its workload owner (it could re-share the seed
    // to itself after the workload got its secret).
    let other = Coordinator::start(&d, &d.dir.join("host-deployment-2"));
    let shared = manifest(&d, &SEEDSHARE_SECRET, &ed25519_spki(&host_owner()), 0);
    let SetManifestReply::ManifestSet(ManifestSet {
        root_ca: other_root,
        ..
    }) = other.set(&d, first_set(shared)).await
    else {
        unreachable!()
    };
    let out = volume(&d, "host-workload-owner");
    let outcome = initializer(&d, &other.mesh, &out, Trust::Manifest).await;
    assert_refused(&outcome, "workload-owner", &out);

    // (c) The victim's own coordinator: the initializer writes its files.
    let victim = Coordinator::start(&d, &d.dir);
    let SetManifestReply::ManifestSet(ManifestSet { root_ca, .. }) =
        victim.set(&d, first_set(victim_manifest(&d))).await
    else {
        unreachable!()
    };
    let root_pin = spki_sha256(&root_ca);
    assert_ne!(root_pin, spki_sha256(&other_root));
    // Pinning the victim's root CA refuses the other deployment for it.
    let out = volume(&d, "host-root");
    let outcome = initializer(
        &d,
        &other.mesh,
        &out,
        Trust::Flags {
            root_ca_sha256: Some(root_pin),
        },
    )
    .await;
    assert_refused(&outcome, "root-ca-pin", &out);
    assert!(
        outcome.stderr.contains(&hex::encode(&root_pin)),
        "{}",
        outcome.stderr
    );

    for (name, trust) in [
        ("honest-manifest", Trust::Manifest),
        (
            "honest-flags",
            Trust::Flags {
                root_ca_sha256: Some(root_pin),
            },
        ),
    ] {
        let out = volume(&d, name);
        let outcome = initializer(&d, &victim.mesh, &out, trust).await;
        assert!(outcome.success, "{name}:\n{}", outcome.stderr);
        assert!(
            outcome.stderr.contains("certificate written to"),
            "{}",
            outcome.stderr
        );
        for file in [
            "tls-config/certChain.pem",
            "tls-config/key.pem",
            "tls-config/mesh-ca.pem",
            "tls-config/coordinator-root-ca.pem",
            "secrets/workload-secret-seed",
        ] {
            assert!(out.join(file).is_file(), "{name}: no {file}");
        }
        let root = accord_core::x509::pem::der_or_pem(
            &std::fs::read(out.join("tls-config/coordinator-root-ca.pem")).unwrap(),
            "CERTIFICATE",
        )
        .unwrap();
        assert_eq!(spki_sha256(&root), root_pin, "{name}: the victim's root");
    }
}
