//! No secret reaches the logs, at any level, in either format (issue 14).
//!
//! One process (its own test binary, so that its global subscriber sees
//! only this deployment): `accord-log`'s text and JSON layers capture
//! every event at `trace` while a deployment runs through everything that
//! handles a secret. A coordinator (in this process, INSECURE simulated
//! chip) with three seed-share owners (two needed) gets its manifest
//! (`accord set`: the seed is drawn, split and sealed), is verified, a
//! workload initializes (its key and workload secret are written), the
//! coordinator restarts and two owners recover it (shares opened and sent,
//! the seed rebuilt), and a second workload initializes.
//!
//! Then every secret is rebuilt from the files the owners and workloads
//! hold: the seed-share owners' and the workload owner's private keys, the
//! shares (opened with the owners' keys), the seed and the salt (rebuilt
//! from the shares), the secrets derived from the seed (pod-state secret,
//! history signing key, the workloads' secrets) and the workloads' private
//! keys. None may appear in the captured output as hex (either case), as
//! base64 (for the key files: any line of their PEM), or as a Rust
//! `Debug` list of bytes, not even 12 bytes of it.
//!
//! The capture is checked to be real first: the JSON lines parse, the
//! request spans with their ids are there, the store writes of
//! `SetManifest` are logged inside its request span.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use accord_cli::keys::{PrivateKey, load_private_key};
use accord_cli::net::CoordinatorOptions;
use accord_cli::recover_cmd::{self, RecoverArgs, RecoverStatus};
use accord_cli::set_cmd::{self, SetArgs};
use accord_cli::set_payload::seed_share_document_load;
use accord_cli::verify_cmd::{self, VerifyArgs};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::kdf::{Salt, SeedEngine};
use accord_core::seedshare;
use accord_demo::demo::Deployment;
use accord_log::tracing_subscriber::fmt::MakeWriter;
use accord_log::tracing_subscriber::layer::SubscriberExt;
use accord_log::{Format, LevelFilter, tracing_subscriber};
use base64ct::{Base64, Encoding};

/// A shared buffer the layers write into.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the text and JSON layers at `trace` for the whole process.
fn capture() -> (Capture, Capture) {
    let (text, json) = (Capture::default(), Capture::default());
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::TRACE)
        .with(accord_log::layer(Format::Text, text.clone()))
        .with(accord_log::layer(Format::Json, json.clone()));
    accord_log::tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber of this test binary");
    (text, json)
}

/// A named secret and its bytes.
struct Secret {
    name: String,
    bytes: Vec<u8>,
}

fn secret(name: impl Into<String>, bytes: &[u8]) -> Secret {
    Secret {
        name: name.into(),
        bytes: bytes.to_vec(),
    }
}

/// Every form of a 12-byte run of `secret` that a log line could carry.
fn forms(secret: &Secret) -> Vec<String> {
    let mut out = Vec::new();
    let window = 12.min(secret.bytes.len());
    for run in secret.bytes.windows(window) {
        let lower = hex::encode(run);
        out.push(lower.to_uppercase());
        out.push(lower);
        let listed: Vec<String> = run.iter().map(u8::to_string).collect();
        out.push(listed.join(", "));
    }
    out.push(Base64::encode_string(&secret.bytes));
    out
}

/// Asserts that no secret appears in `output`.
fn assert_clean(output: &str, what: &str, secrets: &[Secret]) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !output.contains(&form),
                "{} appears in the {what} logs as {form:?}",
                secret.name
            );
        }
    }
}

/// The base64 lines of a PEM file (each one a run of the key's DER).
fn pem_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
        .map(str::to_string)
        .collect()
}

fn options(user: std::net::SocketAddr, dir: &Path) -> CoordinatorOptions {
    // The simulated chip's evidence carries its collateral: no vendor.
    CoordinatorOptions::new(user.to_string())
        .in_workspace(dir)
        .accepting_insecure_simulation()
        .offline()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_any_level() {
    let (text, json) = capture();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("owner");
    std::fs::create_dir_all(&dir).unwrap();
    let deployment = Deployment::open(&dir)
        .unwrap()
        .with_seedshare_owners(3, 2)
        .prepared()
        .unwrap();

    // The seed is drawn, split, sealed and stored; a workload gets its
    // key, certificate and secret.
    let coordinator = deployment.start_coordinator().await.unwrap();
    let set = set_cmd::set(&SetArgs {
        options: options(coordinator.user_addr, &dir),
        workload_owner_key: None,
        signature: Vec::new(),
        atomic: true,
        reshare: false,
    })
    .await
    .unwrap();
    verify_cmd::verify(&VerifyArgs {
        options: options(coordinator.user_addr, &dir),
    })
    .await
    .unwrap();
    let web = deployment
        .initialize("web", &coordinator.mesh_addr.to_string())
        .await
        .unwrap();
    coordinator.stop().await.unwrap();

    // Restarted: two owners open their shares and send them; the seed is
    // rebuilt inside the coordinator.
    let coordinator = deployment.start_coordinator().await.unwrap();
    let keys = deployment.seedshare_keys();
    let mut last = None;
    for key in &keys[..2] {
        let outcome = recover_cmd::recover(&RecoverArgs {
            options: options(coordinator.user_addr, &dir),
            seedshare_key: key.clone(),
            seed_shares: None,
            force: false,
            no_trust_state: false,
        })
        .await
        .unwrap();
        last = Some(outcome.status);
    }
    assert_eq!(last, Some(RecoverStatus::Recovered));
    let db = deployment
        .initialize("db", &coordinator.mesh_addr.to_string())
        .await
        .unwrap();
    coordinator.stop().await.unwrap();

    // The capture is real: both formats hold the run, with request ids.
    let text = text.text();
    let json = json.text();
    assert!(text.contains("state ready"), "{text}");
    assert!(text.contains("request{id="), "no request span: {text}");
    assert!(
        text.lines()
            .any(|line| line.contains("request{id=") && line.contains("store write")),
        "SetManifest's store write is not in its request span: {text}"
    );
    let mut request_spans = 0;
    for line in json.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if event["spans"].as_array().is_some_and(|spans| {
            spans
                .iter()
                .any(|s| s["name"] == "request" && s["id"].is_u64())
        }) {
            request_spans += 1;
        }
    }
    assert!(request_spans > 0, "no JSON event in a request span: {json}");

    // Every secret, rebuilt from what the owners and workloads hold.
    let provider = default_provider();
    let document = seed_share_document_load(set.seed_shares.as_ref().unwrap()).unwrap();
    let mut secrets = Vec::new();
    let mut shares = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let PrivateKey::X25519(owner) = load_private_key(key).unwrap() else {
            panic!("{} is not a seed-share key", key.display())
        };
        secrets.push(secret(
            format!("seed-share owner {i}'s key"),
            owner.as_bytes(),
        ));
        let share = seedshare::open(
            &document.shares[i],
            &document.commitments,
            owner.as_bytes(),
            provider,
        )
        .unwrap();
        secrets.push(secret(format!("share {i}"), &share.to_bytes()[..]));
        shares.push(share);
    }
    let seed = seedshare::reconstruct(&document.commitments, &shares).unwrap();
    secrets.push(secret("the seed", seed.as_bytes()));
    secrets.push(secret("the salt", &document.salt));
    let engine = SeedEngine::new(seed, Salt::from_bytes(document.salt), provider);
    secrets.push(secret(
        "the pod-state secret",
        engine.pod_state_secret().unwrap().as_bytes(),
    ));
    secrets.push(secret(
        "the history signing key",
        &engine.history_signing_key().unwrap().to_bytes(),
    ));
    match load_private_key(&deployment.owner_key()).unwrap() {
        PrivateKey::Ed25519(key) => {
            secrets.push(secret("the workload owner's key", &key.to_bytes()))
        }
        other => panic!("unexpected owner key {other:?}"),
    }
    let mut pem_runs = Vec::new();
    for (name, out) in [("web", &web), ("db", &db)] {
        let workload_secret =
            std::fs::read_to_string(out.join("secrets/workload-secret-seed")).unwrap();
        let workload_secret = hex::decode(workload_secret.trim()).unwrap();
        secrets.push(secret(
            format!("{name}'s workload secret"),
            &workload_secret,
        ));
        pem_runs.extend(
            pem_lines(&out.join("tls-config/key.pem"))
                .into_iter()
                .map(|line| (format!("{name}'s private key"), line)),
        );
    }
    for key in keys.iter().chain([&deployment.owner_key()]) {
        pem_runs.extend(
            pem_lines(key)
                .into_iter()
                .map(|line| (format!("{}", key.display()), line)),
        );
    }
    assert!(secrets.len() >= 13 && !pem_runs.is_empty());

    for (output, what) in [(&text, "text"), (&json, "JSON")] {
        assert_clean(output, what, &secrets);
        for (name, line) in &pem_runs {
            assert!(
                !output.contains(line.as_str()),
                "{name} appears in the {what} logs"
            );
        }
    }
}
