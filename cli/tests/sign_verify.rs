//! `accord sign` end to end: the real binary prepares a sign request and
//! signs it offline with Ed25519 and P-384 owner keys; the signatures are
//! checked independently (ed25519-dalek, p384) over the update intent
//! (deployment, next transition, re-share flag), and every refusal is
//! exercised.

use std::path::Path;
use std::process::{Command, Output};

use accord_cli::sign::load_signature_file;
use accord_cli::workspace::{TrustState, Workspace};
use accord_core::coordinator::{UPDATE_LABEL, UpdateIntent, next_transition};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::history::objects::ObjectHash;
use serde_json::Value;
use sha2::{Digest, Sha256};

const MANIFEST: &str = r#"{
  "Policies": {},
  "ReferenceValues": {},
  "WorkloadOwnerPubKeys": [],
  "SeedshareOwnerPubKeys": [],
  "SeedshareThreshold": 0
}
"#;

const LATEST: [u8; 32] = [0x5a; 32];

/// The deployment (history public key) the updates are for.
const DEPLOYMENT: [u8; 32] = [0x3c; 32];

/// The message a signature must cover, built independently of the CLI.
fn expected_message(reshare: bool) -> Vec<u8> {
    let mut message = UPDATE_LABEL.to_vec();
    message.extend_from_slice(&DEPLOYMENT);
    message.extend_from_slice(expected_next().as_bytes());
    message.push(u8::from(reshare));
    assert_eq!(
        message,
        UpdateIntent {
            deployment: DEPLOYMENT,
            next_transition: expected_next(),
            reshare,
        }
        .message()
    );
    message
}

fn accord(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn fails(output: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "{needle:?} not in stderr:\n{err}");
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A workspace with manifest.json, an Ed25519, a P-384 and an X25519 key,
/// and a prepared sign request on top of [`LATEST`].
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("manifest.json"), MANIFEST).unwrap();
    ok(&accord(
        d,
        &["keys", "new", "--workload-owner", "-o", "ed.pem"],
    ));
    ok(&accord(
        d,
        &[
            "keys",
            "new",
            "--workload-owner",
            "--p384",
            "-o",
            "p384.pem",
        ],
    ));
    ok(&accord(
        d,
        &["keys", "new", "--seedshare-owner", "-o", "ss.pem"],
    ));
    let out = ok(&accord(
        d,
        &[
            "sign",
            "--prepare",
            "-m",
            "manifest.json",
            "--latest-transition",
            &hex::encode(&LATEST),
            "--deployment",
            &hex::encode(&DEPLOYMENT),
            "-o",
            "update.request",
        ],
    ));
    assert!(out.contains("next transition:"), "{out}");
    assert!(out.contains("re-share:          no"), "{out}");
    dir
}

/// The next transition computed independently of the CLI.
fn expected_next() -> ObjectHash {
    next_transition(
        default_provider(),
        MANIFEST.as_bytes(),
        Some(ObjectHash(LATEST)),
    )
    .1
}

fn public_hex(dir: &Path, key: &str) -> String {
    ok(&accord(dir, &["keys", "public", key]))
        .trim()
        .to_string()
}

#[test]
fn prepare_writes_the_request_fields() {
    let dir = workspace();
    let request = json(&dir.path().join("update.request"));
    let manifest_sha: String = Sha256::digest(MANIFEST.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(request["manifest_sha256"], manifest_sha);
    assert_eq!(request["latest_transition"], hex::encode(&LATEST));
    let next = expected_next();
    assert_eq!(request["next_transition"], hex::encode(next.as_bytes()));
    assert_eq!(request["deployment"], hex::encode(&DEPLOYMENT));
    assert_eq!(request["reshare"], false);
    assert_eq!(request["message"], hex::encode(&expected_message(false)));
    assert_eq!(request.as_object().unwrap().len(), 6);
}

#[test]
fn a_reshare_is_signed_as_one() {
    let dir = workspace();
    let d = dir.path();
    let out = ok(&accord(
        d,
        &[
            "sign",
            "--prepare",
            "--latest-transition",
            &hex::encode(&LATEST),
            "--deployment",
            &hex::encode(&DEPLOYMENT),
            "--reshare",
            "-o",
            "reshare.request",
        ],
    ));
    assert!(out.contains("re-share:          yes"), "{out}");
    let out = ok(&accord(
        d,
        &[
            "sign",
            "--key",
            "ed.pem",
            "--request",
            "reshare.request",
            "-m",
            "manifest.json",
            "-o",
            "reshare.sig",
        ],
    ));
    assert!(
        out.contains("re-share:          YES, to 0 seed-share owner(s)"),
        "{out}"
    );
    let sig = json(&d.join("reshare.sig"));
    assert_eq!(sig["reshare"], true);
    assert_eq!(sig["deployment"], hex::encode(&DEPLOYMENT));
    let owner = load_signature_file(&d.join("reshare.sig")).unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&owner.public_key[12..].try_into().unwrap())
        .unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&owner.signature).unwrap();
    key.verify_strict(&expected_message(true), &signature)
        .unwrap();
    assert!(
        key.verify_strict(&expected_message(false), &signature)
            .is_err(),
        "a re-share signature does not authorize the update without it, nor the reverse"
    );
}

#[test]
fn ed25519_signature_from_accord_sign_verifies() {
    let dir = workspace();
    let d = dir.path();
    let out = ok(&accord(
        d,
        &[
            "sign",
            "--key",
            "ed.pem",
            "--request",
            "update.request",
            "-m",
            "manifest.json",
            "-o",
            "update.sig",
        ],
    ));
    let next_hex = hex::encode(expected_next().as_bytes());
    assert!(out.contains(&next_hex), "prints what it signs: {out}");

    let sig = json(&d.join("update.sig"));
    assert_eq!(sig["next_transition"], next_hex);
    assert_eq!(sig["public_key"], public_hex(d, "ed.pem"));

    let owner = load_signature_file(&d.join("update.sig")).unwrap();
    let spki = owner.public_key;
    assert_eq!(spki.len(), 44);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&spki[12..].try_into().unwrap()).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&owner.signature).unwrap();
    key.verify_strict(&expected_message(false), &signature)
        .unwrap();
}

#[test]
fn p384_signature_from_accord_sign_verifies() {
    use p384::ecdsa::signature::Verifier;
    use p384::pkcs8::DecodePublicKey;
    let dir = workspace();
    let d = dir.path();
    ok(&accord(
        d,
        &["sign", "--key", "p384.pem", "--request", "update.request"],
    ));
    // Default output file.
    let owner = load_signature_file(&d.join("update.sig")).unwrap();
    assert_eq!(hex::encode(&owner.public_key), public_hex(d, "p384.pem"));
    assert_eq!(owner.signature.len(), 96, "fixed-width r ‖ s");
    let key = p384::ecdsa::VerifyingKey::from_public_key_der(&owner.public_key).unwrap();
    let signature = p384::ecdsa::Signature::from_slice(&owner.signature).unwrap();
    key.verify(&expected_message(false), &signature).unwrap();
}

#[test]
fn a_seed_share_key_is_refused() {
    let dir = workspace();
    let out = accord(
        dir.path(),
        &["sign", "--key", "ss.pem", "--request", "update.request"],
    );
    fails(&out, 1, "a seed-share key cannot sign updates");
    assert!(!dir.path().join("update.sig").exists());
}

#[test]
fn an_inconsistent_request_is_refused() {
    let dir = workspace();
    let d = dir.path();
    let mut request = json(&d.join("update.request"));
    // Claims another latest transition but keeps the old next transition.
    request["latest_transition"] = Value::String(hex::encode(&[0x11; 32]));
    std::fs::write(d.join("bad.request"), serde_json::to_vec(&request).unwrap()).unwrap();
    let out = accord(d, &["sign", "--key", "ed.pem", "--request", "bad.request"]);
    fails(&out, 1, "is not the transition");

    let mut request = json(&d.join("update.request"));
    request["message"] = Value::String(hex::encode(b"something else"));
    std::fs::write(d.join("bad.request"), serde_json::to_vec(&request).unwrap()).unwrap();
    let out = accord(d, &["sign", "--key", "ed.pem", "--request", "bad.request"]);
    fails(&out, 1, "update label");
    assert!(!d.join("update.sig").exists());
}

#[test]
fn another_manifest_than_the_request_is_refused() {
    let dir = workspace();
    let d = dir.path();
    std::fs::write(d.join("other.json"), MANIFEST.replace("0\n", "1\n")).unwrap();
    let out = accord(
        d,
        &[
            "sign",
            "--key",
            "ed.pem",
            "--request",
            "update.request",
            "-m",
            "other.json",
        ],
    );
    fails(&out, 1, "but the request is for manifest");
}

#[test]
fn prepare_takes_the_latest_transition_and_deployment_from_the_trust_state() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("manifest.json"), MANIFEST).unwrap();
    let out = accord(d, &["sign", "--prepare"]);
    fails(&out, 2, "run `accord verify` first");

    let ws = Workspace::new(d);
    TrustState {
        size: 1,
        root: [1; 32],
        generation: 1,
        signature: [2; 64],
        history_public_key: DEPLOYMENT,
        latest_transition: LATEST,
        seedshares: [4; 32],
    }
    .save(&ws.trust_state())
    .unwrap();
    ok(&accord(d, &["sign", "--prepare"]));
    let request = json(&d.join("update.request"));
    assert_eq!(request["latest_transition"], hex::encode(&LATEST));
    assert_eq!(request["deployment"], hex::encode(&DEPLOYMENT));
    assert_eq!(request["message"], hex::encode(&expected_message(false)));
    assert_eq!(
        request["next_transition"],
        hex::encode(expected_next().as_bytes())
    );

    // A workspace without a manifest says what to run.
    let empty = tempfile::tempdir().unwrap();
    let out = accord(
        empty.path(),
        &[
            "sign",
            "--prepare",
            "--latest-transition",
            &hex::encode(&LATEST),
            "--deployment",
            &hex::encode(&DEPLOYMENT),
        ],
    );
    fails(&out, 2, "accord manifest generate");
}
