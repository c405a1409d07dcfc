//! `accord sign`: a workload owner signs a manifest update offline.
//!
//! Two steps, so the key can stay on a machine that never talks to the
//! coordinator:
//!
//! ```text
//! accord sign --prepare -m manifest.json --latest-transition HEX [-o update.request]
//! accord sign --key workload-owner.pem --request update.request [-o update.sig]
//! accord set ... --signature update.sig          (network client, elsewhere)
//! ```
//!
//! The sign request (`update.request`) is JSON:
//! `{"manifest_sha256", "latest_transition", "next_transition",
//! "deployment", "reshare", "message"}` (lower-case hex; `reshare` a
//! boolean). The signer checks everything it can without the coordinator:
//! that `next_transition` is the address of the transition
//! `manifest_sha256 ‖ latest_transition`, that `message` is the update
//! intent `UPDATE_LABEL ‖ deployment ‖ next_transition ‖ reshare`, and,
//! with `-m`, that its own copy of the manifest has that hash. It prints
//! what it signs (with `reshare`, the new seed-share owners and threshold
//! of its manifest copy), then writes the signature file (`update.sig`):
//! `{"public_key": hex SPKI DER, "signature": hex, "next_transition": hex,
//! "deployment": hex, "reshare": bool}`.
//!
//! `deployment` is the deployment's history public key: a signature names
//! the deployment it is for and cannot be replayed on another one. Without
//! `--latest-transition` and `--deployment`, `--prepare` takes both from
//! the workspace's trust state (`verify/last-tree-head.json`, written by
//! `accord verify`). `--reshare` authorizes splitting the seed anew among
//! the new manifest's seed-share owners: without it, whoever submits the
//! update cannot re-share.
//!
//! Exit status 0 on success; 1 when the request is refused (inconsistent,
//! another manifest, a key that cannot sign); 2 when the command line or a
//! file is unusable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use accord_core::coordinator::{UPDATE_LABEL, UpdateIntent};
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::history::objects::{ObjectHash, Transition};
use accord_core::manifest::Manifest;
use accord_core::protocol::OwnerSignature;
use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::input;
use crate::keys::{PrivateKey, load_private_key};
use crate::set_payload::{next_transition_of, sign_intent};
use crate::workspace::{Workspace, write_atomic};

/// Default file of `--prepare`'s output.
pub const REQUEST_FILE: &str = "update.request";
/// Default file of the signature.
pub const SIGNATURE_FILE: &str = "update.sig";

/// Arguments of `accord sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Write a sign request for the manifest instead of signing.
    #[arg(long, conflicts_with_all = ["key", "request"])]
    prepare: bool,

    /// The new manifest. With --prepare: default manifest.json in the
    /// workspace. When signing: optional, checked against the request's
    /// manifest_sha256.
    #[arg(long, short = 'm', value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// With --prepare: the coordinator's latest transition (hex), which the
    /// update builds on. Default: the one `accord verify` saw last.
    #[arg(long, value_name = "HEX", requires = "prepare")]
    latest_transition: Option<String>,

    /// With --prepare: the deployment's history public key (hex, as
    /// `accord verify` prints it in verify/history.json). Default: the one
    /// `accord verify` saw last.
    #[arg(long, value_name = "HEX", requires = "prepare")]
    deployment: Option<String>,

    /// With --prepare: authorize splitting the seed anew among the new
    /// manifest's SeedshareOwnerPubKeys with its SeedshareThreshold
    /// (`accord set --reshare`).
    #[arg(long, requires = "prepare")]
    reshare: bool,

    /// The workload owner's private key (Ed25519 or ECDSA P-384).
    #[arg(long, value_name = "FILE", required_unless_present = "prepare")]
    key: Option<PathBuf>,

    /// The sign request written by --prepare.
    #[arg(long, value_name = "FILE", required_unless_present = "prepare")]
    request: Option<PathBuf>,

    /// Where to write. Default: update.request (--prepare) or update.sig.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,

    /// The workspace directory.
    #[arg(long, value_name = "DIR", default_value = ".")]
    workspace: PathBuf,
}

/// A sign request, as `--prepare` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// SHA-256 of the new manifest's exact bytes (hex).
    pub manifest_sha256: String,
    /// The latest transition the update builds on (hex).
    pub latest_transition: String,
    /// The transition the update creates (hex).
    pub next_transition: String,
    /// The deployment's history public key (hex).
    pub deployment: String,
    /// Whether the update re-shares the seed.
    pub reshare: bool,
    /// The exact bytes to sign (hex): the update intent's message.
    pub message: String,
}

/// A checked sign request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedRequest {
    /// SHA-256 of the new manifest.
    pub manifest_sha256: [u8; 32],
    /// The latest transition.
    pub latest_transition: [u8; 32],
    /// What the signature authorizes.
    pub intent: UpdateIntent,
}

impl SignRequest {
    /// The request for setting `manifest` on top of `latest_transition` in
    /// `deployment`, with or without re-share.
    pub fn new(
        manifest: &[u8],
        latest_transition: [u8; 32],
        deployment: [u8; 32],
        reshare: bool,
    ) -> Self {
        let next = next_transition_of(manifest, Some(latest_transition));
        let intent = UpdateIntent {
            deployment,
            next_transition: next,
            reshare,
        };
        Self {
            manifest_sha256: hex::encode(&default_provider().sha256(&[manifest])),
            latest_transition: hex::encode(&latest_transition),
            next_transition: hex::encode(next.as_bytes()),
            deployment: hex::encode(&deployment),
            reshare,
            message: hex::encode(&intent.message()),
        }
    }

    /// Checks that the fields agree: `next_transition` is the transition
    /// `manifest_sha256 ‖ latest_transition`, `message` is the intent's
    /// message (`UPDATE_LABEL ‖ deployment ‖ next_transition ‖ reshare`).
    pub fn check(&self) -> Result<CheckedRequest, String> {
        let field = |name: &str, text: &str| {
            hex::decode_array::<32>(text).map_err(|e| format!("{name}: {e}"))
        };
        let manifest_sha256 = field("manifest_sha256", &self.manifest_sha256)?;
        let latest_transition = field("latest_transition", &self.latest_transition)?;
        let next_transition = ObjectHash(field("next_transition", &self.next_transition)?);
        let deployment = field("deployment", &self.deployment)?;
        let message = hex::decode(&self.message).map_err(|e| format!("message: {e}"))?;
        let expected = Transition {
            manifest: ObjectHash(manifest_sha256),
            previous: Some(ObjectHash(latest_transition)),
        }
        .hash(default_provider());
        if expected != next_transition {
            return Err(format!(
                "next_transition {next_transition} is not the transition of manifest {} on top of {} (that is {expected})",
                self.manifest_sha256, self.latest_transition
            ));
        }
        let intent = UpdateIntent {
            deployment,
            next_transition,
            reshare: self.reshare,
        };
        if message.as_slice() != intent.message().as_slice() {
            return Err(format!(
                "message is not the update label {:?} followed by deployment, next_transition and reshare",
                String::from_utf8_lossy(UPDATE_LABEL)
            ));
        }
        Ok(CheckedRequest {
            manifest_sha256,
            latest_transition,
            intent,
        })
    }
}

/// A signature file, as `accord sign` writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// The signer's SubjectPublicKeyInfo DER (hex).
    pub public_key: String,
    /// The signature (hex): Ed25519 64 bytes, P-384 `r ‖ s` 96 bytes.
    pub signature: String,
    /// The transition it authorizes (hex).
    pub next_transition: String,
    /// The deployment it is for: its history public key (hex).
    pub deployment: String,
    /// Whether it authorizes a re-share.
    pub reshare: bool,
}

impl SignatureFile {
    /// Reads a signature file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = input::read(path)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an `accord sign` signature file", path.display()))
    }

    /// The signature as `accord set` sends it, and what it authorizes.
    pub fn decode(&self) -> anyhow::Result<(OwnerSignature, UpdateIntent)> {
        let public_key =
            hex::decode(&self.public_key).map_err(|e| anyhow::anyhow!("public_key: {e}"))?;
        let signature =
            hex::decode(&self.signature).map_err(|e| anyhow::anyhow!("signature: {e}"))?;
        let next = hex::decode_array::<32>(&self.next_transition)
            .map_err(|e| anyhow::anyhow!("next_transition: {e}"))?;
        let deployment = hex::decode_array::<32>(&self.deployment)
            .map_err(|e| anyhow::anyhow!("deployment: {e}"))?;
        Ok((
            OwnerSignature {
                public_key,
                signature,
            },
            UpdateIntent {
                deployment,
                next_transition: ObjectHash(next),
                reshare: self.reshare,
            },
        ))
    }
}

/// Reads a signature file for `accord set --signature F`. (The caller
/// should compare the second value of [`SignatureFile::decode`] with the
/// transition it is about to create, to fail early with a clear message;
/// the coordinator checks the signature itself.)
pub fn load_signature_file(path: &Path) -> anyhow::Result<OwnerSignature> {
    let (signature, _) = SignatureFile::load(path)?
        .decode()
        .with_context(|| path.display().to_string())?;
    Ok(signature)
}

/// Why `accord sign` stopped.
enum Failure {
    Refused(String),
    Usage(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Self::Usage(err)
    }
}

/// Runs `accord sign`.
pub fn run(args: SignArgs) -> ExitCode {
    let outcome = if args.prepare {
        prepare(&args)
    } else {
        sign(&args)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused(why)) => {
            eprintln!("REFUSED: {why}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(err)) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn read_manifest(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = input::read(path)?;
    Manifest::from_json(&bytes)
        .map_err(|e| Failure::Refused(format!("{}: not a manifest: {e}", path.display())))?;
    Ok(bytes)
}

fn prepare(args: &SignArgs) -> Result<(), Failure> {
    let workspace = Workspace::new(&args.workspace);
    let manifest_path = match &args.manifest {
        Some(path) => path.clone(),
        None => workspace.require_manifest()?,
    };
    let manifest = read_manifest(&manifest_path)?;
    let trust = workspace.load_trust_state()?;
    let latest = match &args.latest_transition {
        Some(text) => hex::decode_array::<32>(text.trim())
            .map_err(|e| anyhow::anyhow!("--latest-transition: {e} (expected 64 hex digits)"))?,
        None => match &trust {
            Some(trust) => trust.latest_transition,
            None => {
                return Err(anyhow::anyhow!(
                    "no --latest-transition and no {}: pass the coordinator's latest transition or run `accord verify` first",
                    workspace.trust_state().display()
                )
                .into());
            }
        },
    };
    let deployment = match &args.deployment {
        Some(text) => hex::decode_array::<32>(text.trim())
            .map_err(|e| anyhow::anyhow!("--deployment: {e} (expected 64 hex digits)"))?,
        None => match &trust {
            Some(trust) => trust.history_public_key,
            None => {
                return Err(anyhow::anyhow!(
                    "no --deployment and no {}: pass the deployment's history public key or run `accord verify` first",
                    workspace.trust_state().display()
                )
                .into());
            }
        },
    };
    if latest == [0; 32] {
        return Err(Failure::Refused(
            "the latest transition is zero: the first manifest needs no signature (`accord set` it directly)".into(),
        ));
    }
    let request = SignRequest::new(&manifest, latest, deployment, args.reshare);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(REQUEST_FILE));
    let mut json = serde_json::to_string_pretty(&request).context("serializing the request")?;
    json.push('\n');
    write_atomic(&out, json.as_bytes())?;
    println!("wrote {}", out.display());
    println!("manifest sha256:   {}", request.manifest_sha256);
    println!("latest transition: {}", request.latest_transition);
    println!("next transition:   {}", request.next_transition);
    println!("deployment:        {}", request.deployment);
    println!(
        "re-share:          {}",
        if request.reshare { "yes" } else { "no" }
    );
    println!(
        "sign it with: accord sign --key <workload-owner.pem> --request {}",
        out.display()
    );
    Ok(())
}

fn sign(args: &SignArgs) -> Result<(), Failure> {
    let (Some(key_path), Some(request_path)) = (&args.key, &args.request) else {
        return Err(anyhow::anyhow!("--key and --request are required without --prepare").into());
    };
    let bytes = input::read(request_path)?;
    let request: SignRequest = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a sign request (`accord sign --prepare` writes one)",
            request_path.display()
        )
    })?;
    let checked = request
        .check()
        .map_err(|why| Failure::Refused(format!("{}: {why}", request_path.display())))?;
    let mut reshare_to = None;
    if let Some(path) = &args.manifest {
        let manifest = read_manifest(path)?;
        if let Ok(parsed) = Manifest::from_json(&manifest) {
            let doc = parsed.doc();
            reshare_to = Some((
                doc.seedshare_owner_pub_keys.clone(),
                doc.seedshare_threshold,
            ));
        }
        let actual = default_provider().sha256(&[&manifest]);
        if actual != checked.manifest_sha256 {
            return Err(Failure::Refused(format!(
                "{} has sha256 {}, but the request is for manifest {}",
                path.display(),
                hex::encode(&actual),
                request.manifest_sha256
            )));
        }
    }
    let key = load_private_key(key_path)?;
    if matches!(key, PrivateKey::X25519(_)) {
        return Err(Failure::Refused(format!(
            "{}: a seed-share key cannot sign updates: use a workload owner key",
            key_path.display()
        )));
    }
    println!("signing the manifest update:");
    println!("  manifest sha256:   {}", request.manifest_sha256);
    println!("  latest transition: {}", request.latest_transition);
    println!("  next transition:   {}", request.next_transition);
    println!("  deployment:        {}", request.deployment);
    match (request.reshare, &reshare_to) {
        (false, _) => println!("  re-share:          no"),
        (true, Some((owners, threshold))) => {
            println!(
                "  re-share:          YES, to {} seed-share owner(s), threshold {threshold}:",
                owners.len()
            );
            for owner in owners {
                println!("                     {owner}");
            }
        }
        (true, None) => println!(
            "  re-share:          YES, to the new manifest's seed-share owners (pass -m to see them)"
        ),
    }
    println!("  signer ({}):  {}", key.kind(), key.public_hex());
    if args.manifest.is_none() {
        println!(
            "  (the manifest itself was not checked: pass -m manifest.json to compare its hash)"
        );
    }
    let signature = sign_intent(&key, &checked.intent)?;
    let file = SignatureFile {
        public_key: hex::encode(&signature.public_key),
        signature: hex::encode(&signature.signature),
        next_transition: request.next_transition.clone(),
        deployment: request.deployment.clone(),
        reshare: request.reshare,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(SIGNATURE_FILE));
    let mut json = serde_json::to_string_pretty(&file).context("serializing the signature")?;
    json.push('\n');
    write_atomic(&out, json.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_request_checks_and_tampering_is_caught() {
        let request = SignRequest::new(b"{\"Policies\":{}}", [7; 32], [6; 32], false);
        let checked = request.check().unwrap();
        assert_eq!(checked.latest_transition, [7; 32]);
        assert_eq!(
            checked.intent.next_transition,
            next_transition_of(b"{\"Policies\":{}}", Some([7; 32]))
        );
        assert_eq!(checked.intent.deployment, [6; 32]);

        // The re-share flag or the deployment changed after preparing.
        let mut other = request.clone();
        other.reshare = true;
        assert!(other.check().unwrap_err().contains("update label"));
        let mut other = request.clone();
        other.deployment = hex::encode(&[1; 32]);
        assert!(other.check().unwrap_err().contains("update label"));

        let mut other = request.clone();
        other.latest_transition = hex::encode(&[8; 32]);
        assert!(other.check().unwrap_err().contains("is not the transition"));

        let mut other = request.clone();
        other.manifest_sha256 = hex::encode(&[1; 32]);
        assert!(other.check().unwrap_err().contains("is not the transition"));

        // A consistent request whose message is something else.
        let mut other = request.clone();
        other.message = hex::encode(b"sign this instead");
        assert!(other.check().unwrap_err().contains("update label"));
    }

    #[test]
    fn signature_file_decodes_to_the_owner_signature() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("update.sig");
        let file = SignatureFile {
            public_key: "3003".into(),
            signature: "aabb".into(),
            next_transition: hex::encode(&[5; 32]),
            deployment: hex::encode(&[6; 32]),
            reshare: false,
        };
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let sig = load_signature_file(&path).unwrap();
        assert_eq!(sig.public_key, vec![0x30, 0x03]);
        assert_eq!(sig.signature, vec![0xaa, 0xbb]);
        std::fs::write(&path, b"{}").unwrap();
        let err = format!("{:#}", load_signature_file(&path).unwrap_err());
        assert!(err.contains("not an `accord sign` signature file"), "{err}");
    }
}
