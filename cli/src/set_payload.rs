//! The offline half of `accord set`: the request payload (the manifest's
//! exact bytes and every policy it names, checked against their hashes),
//! the workload owner's signature over an update, and the seed-share
//! document the first `set` returns.
//!
//! What an owner signs is the [`UpdateIntent`]'s message: `UPDATE_LABEL ‖
//! deployment (the history public key) ‖ next ‖ reshare`, where `next` is
//! the address of the transition the update creates
//! ([`next_transition`]`(manifest, latest)`). Ed25519 signs those 92 bytes
//! (RFC 8032); ECDSA P-384 signs their SHA-384 and the signature is the
//! fixed-width `r ‖ s` (96 bytes).

use std::path::Path;

use accord_core::coordinator::store::manifest_policy_hashes;
use accord_core::coordinator::{UpdateIntent, next_transition};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::history::objects::ObjectHash;
use accord_core::manifest::Manifest;
use accord_core::protocol::OwnerSignature;
use accord_core::seedshare::SeedShareDocument;
use anyhow::{Context, bail};

use crate::input;
use crate::keys::PrivateKey;
use crate::workspace::write_atomic_mode;

/// Reads the manifest's exact bytes (which must parse and validate) and
/// every policy it names from
/// `policies_dir/<sha256 lower-case hex>.toml`, checking that each file's
/// SHA-256 is its name. Returns `(manifest, policies)` in the manifest's
/// policy order, ready for a `SetManifest` request.
pub fn load_set_request(
    manifest_path: &Path,
    policies_dir: &Path,
) -> anyhow::Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let provider = default_provider();
    let manifest_bytes = input::read(manifest_path)?;
    let manifest = Manifest::from_json(&manifest_bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a manifest: {e}", manifest_path.display()))?;
    if let Err(errors) = manifest.validate() {
        let details: Vec<String> = errors.iter().map(ToString::to_string).collect();
        bail!(
            "{} does not validate (`accord manifest validate` explains):\n  {}",
            manifest_path.display(),
            details.join("\n  ")
        );
    }
    let hashes = manifest_policy_hashes(&manifest)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let mut policies = Vec::with_capacity(hashes.len());
    for hash in hashes {
        let name = format!("{}.toml", hex::encode(&hash));
        let path = policies_dir.join(&name);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "the manifest names policy {} but {} does not exist: did you run `accord manifest generate` with this policies directory?",
                hex::encode(&hash),
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let actual = provider.sha256(&[&bytes]);
        if actual != hash {
            bail!(
                "{} has SHA-256 {}, not the {} its name and the manifest say: the policy was changed after `accord manifest generate`; regenerate the manifest",
                path.display(),
                hex::encode(&actual),
                hex::encode(&hash)
            );
        }
        policies.push(bytes);
    }
    Ok((manifest_bytes, policies))
}

/// The address of the transition that setting `manifest` on top of
/// `latest_transition` creates (`None` or all-zero: the first manifest).
pub fn next_transition_of(manifest: &[u8], latest_transition: Option<[u8; 32]>) -> ObjectHash {
    let latest = latest_transition.map(ObjectHash);
    next_transition(default_provider(), manifest, latest).1
}

/// Signs the update of `deployment` (its history public key) that sets
/// `manifest` on top of `latest_transition`, with or without re-share,
/// with a workload owner's key.
pub fn sign_update(
    key: &PrivateKey,
    manifest: &[u8],
    latest_transition: Option<[u8; 32]>,
    deployment: [u8; 32],
    reshare: bool,
) -> anyhow::Result<OwnerSignature> {
    sign_intent(
        key,
        &UpdateIntent {
            deployment,
            next_transition: next_transition_of(manifest, latest_transition),
            reshare,
        },
    )
}

/// Signs [`UpdateIntent::message`]: Ed25519 over the message, ECDSA P-384
/// over its SHA-384 as `r ‖ s`. Refuses seed-share (X25519) keys.
pub fn sign_intent(key: &PrivateKey, intent: &UpdateIntent) -> anyhow::Result<OwnerSignature> {
    let message = intent.message();
    let signature = match key {
        PrivateKey::Ed25519(key) => {
            use ed25519_dalek::Signer;
            key.sign(&message).to_bytes().to_vec()
        }
        PrivateKey::P384(key) => {
            use p384::ecdsa::signature::Signer;
            let signing = p384::ecdsa::SigningKey::from(key);
            let signature: p384::ecdsa::Signature = signing.sign(&message);
            signature.to_bytes().to_vec()
        }
        PrivateKey::X25519(_) => bail!(
            "a seed-share key cannot sign updates: use a workload owner key (`accord keys new --workload-owner`)"
        ),
    };
    Ok(OwnerSignature {
        public_key: key.public_spki_der(),
        signature,
    })
}

/// Writes the seed-share document as pretty JSON with mode 0600.
pub fn seed_share_document_save(path: &Path, document: &SeedShareDocument) -> anyhow::Result<()> {
    let mut json =
        serde_json::to_string_pretty(document).context("serializing the seed-share document")?;
    json.push('\n');
    write_atomic_mode(path, json.as_bytes(), 0o600)
}

/// Reads a seed-share document written by [`seed_share_document_save`].
pub fn seed_share_document_load(path: &Path) -> anyhow::Result<SeedShareDocument> {
    let bytes = input::read(path)?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a seed-share document", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn write_workspace(dir: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
        let people = testkit::People::new();
        let manifest = people.manifest(0);
        std::fs::write(dir.join("manifest.json"), &manifest).unwrap();
        let policies = testkit::policies();
        std::fs::create_dir_all(dir.join("policies")).unwrap();
        for p in &policies {
            let name = format!("{}.toml", hex::encode(&default_provider().sha256(&[p])));
            std::fs::write(dir.join("policies").join(name), p).unwrap();
        }
        (manifest, policies)
    }

    #[test]
    fn loads_exact_bytes_and_every_named_policy() {
        let dir = tempfile::tempdir().unwrap();
        let (manifest, policies) = write_workspace(dir.path());
        let (got_manifest, got_policies) = load_set_request(
            &dir.path().join("manifest.json"),
            &dir.path().join("policies"),
        )
        .unwrap();
        assert_eq!(got_manifest, manifest);
        let mut got = got_policies.clone();
        got.sort();
        let mut want = policies;
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_missing_policy_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_workspace(dir.path());
        let hash = hex::encode(&default_provider().sha256(&[testkit::DB_POLICY]));
        std::fs::remove_file(dir.path().join(format!("policies/{hash}.toml"))).unwrap();
        let err = load_set_request(
            &dir.path().join("manifest.json"),
            &dir.path().join("policies"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("{hash}.toml does not exist")),
            "{err}"
        );
    }

    #[test]
    fn a_changed_policy_file_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        write_workspace(dir.path());
        let hash = hex::encode(&default_provider().sha256(&[testkit::WEB_POLICY]));
        let path = dir.path().join(format!("policies/{hash}.toml"));
        std::fs::write(&path, b"tampered").unwrap();
        let err = load_set_request(
            &dir.path().join("manifest.json"),
            &dir.path().join("policies"),
        )
        .unwrap_err()
        .to_string();
        let actual = hex::encode(&default_provider().sha256(&[b"tampered"]));
        assert!(
            err.contains(&format!("{hash}.toml has SHA-256 {actual}")),
            "{err}"
        );
        assert!(err.contains("regenerate"), "{err}");
    }

    #[test]
    fn not_a_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest.json"), b"{\"Nope\": 1}").unwrap();
        let err = load_set_request(&dir.path().join("manifest.json"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a manifest"), "{err}");
    }

    #[test]
    fn ed25519_signature_verifies_over_the_update_message() {
        let people = testkit::People::new();
        let manifest = people.manifest(1);
        let latest = [9u8; 32];
        let sig = sign_update(&people.owner_key(), &manifest, Some(latest), [3; 32], true).unwrap();
        let (_, next) = next_transition(default_provider(), &manifest, Some(ObjectHash(latest)));
        let message = UpdateIntent {
            deployment: [3; 32],
            next_transition: next,
            reshare: true,
        }
        .message();
        assert_eq!(sig.public_key, testkit::ed25519_spki(&people.owner));
        let signature = ed25519_dalek::Signature::from_slice(&sig.signature).unwrap();
        people
            .owner
            .verifying_key()
            .verify_strict(&message, &signature)
            .unwrap();
    }

    #[test]
    fn p384_signature_is_r_s_over_sha384() {
        use p384::ecdsa::signature::Verifier;
        let people = testkit::People::new();
        let manifest = people.manifest(1);
        let sig = sign_update(
            &people.p384_key(),
            &manifest,
            Some([9u8; 32]),
            [3; 32],
            false,
        )
        .unwrap();
        assert_eq!(sig.signature.len(), 96);
        let next = next_transition_of(&manifest, Some([9u8; 32]));
        let message = UpdateIntent {
            deployment: [3; 32],
            next_transition: next,
            reshare: false,
        }
        .message();
        let signature = p384::ecdsa::Signature::from_slice(&sig.signature).unwrap();
        let verifying = p384::ecdsa::VerifyingKey::from(&people.p384_owner.public_key());
        verifying.verify(&message, &signature).unwrap();
        // The core's provider (what the coordinator uses) agrees.
        let point = people.p384_owner.public_key().to_sec1_bytes();
        default_provider()
            .verify_ecdsa(
                accord_core::crypto::EcCurve::P384,
                &point,
                &message,
                &sig.signature,
            )
            .unwrap();
    }

    #[test]
    fn a_seed_share_key_cannot_sign() {
        let key = PrivateKey::X25519(crate::keys::X25519Secret::new([5; 32]));
        let err = sign_update(&key, b"{}", None, [0; 32], false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a seed-share key cannot sign updates"),
            "{err}"
        );
    }

    #[test]
    fn seed_share_document_round_trips_with_mode_0600() {
        let people = testkit::People::new();
        let mut harness = testkit::Harness::new(1);
        let set = harness.set_first(people.manifest(0));
        let document = set.seed_share_document.expect("the manifest names owners");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed-shares.json");
        seed_share_document_save(&path, &document).unwrap();
        assert_eq!(seed_share_document_load(&path).unwrap(), document);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_invalid_manifest_is_refused_before_the_coordinator_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        write_workspace(dir.path());
        let manifest = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        let broken = manifest.replace("\"SeedshareThreshold\": 1", "\"SeedshareThreshold\": 5");
        assert_ne!(broken, manifest);
        std::fs::write(dir.path().join("manifest.json"), broken).unwrap();
        let err = load_set_request(
            &dir.path().join("manifest.json"),
            &dir.path().join("policies"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("does not validate"), "{err}");
    }
}
