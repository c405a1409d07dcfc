//! The heart of `accord verify`, as pure functions: is the history a
//! coordinator returned (`GetManifests`) genuine, does it end in the
//! manifest the user expects, and does it extend the history this
//! workspace verified last?
//!
//! [`check_history`] decides; [`write_verify_dir`] writes what was checked
//! for the user to review, and moves the trust state
//! (`verify/last-tree-head.json`) forward last. The attested TLS session
//! (which proves the reply comes from a coordinator running the expected
//! policy) is the network client's job; nothing here does I/O except
//! [`write_verify_dir`].
//!
//! What is checked, in order:
//!
//! 1. the signed tree head decodes, and, if a trust state exists, the
//!    history key is the one seen before (else: a different deployment or
//!    seed);
//! 2. the tree head's Ed25519 signature verifies under the history key;
//! 3. every manifest parses; the transition chain rebuilt from the
//!    manifests ([`History::from_manifests`]) ends in the reply's latest
//!    transition, and its tree head equals the signed one (size, root,
//!    generation): no manifest was changed, dropped, added or reordered;
//! 4. the last manifest is the expected one, byte for byte;
//! 5. every policy any manifest names is in the reply, with its hash;
//! 6. any inclusion proofs in the reply verify against the signed head;
//! 7. against the trust state: no older generation or smaller log
//!    (rollback), the same root at the same size, and a consistency proof
//!    (asked with `consistency_from = last size`) that the old log is a
//!    prefix of the new one ([`check_newer`]); the rebuilt log must also
//!    have the old root at the old size. Anything else is a fork.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use accord_core::coordinator::store::SeedShareRecord;
use accord_core::crypto::{CryptoProvider, default_provider};
use accord_core::der::write::pem;
use accord_core::hex;
use accord_core::history::objects::ObjectHash;
use accord_core::history::tree_head::{SignedTreeHead, TreeHead, TreeHeadError, check_newer};
use accord_core::history::{History, merkle, transition_leaf_hash};
use accord_core::manifest::Manifest;
use accord_core::protocol::{GetManifests, GetManifestsReply, Manifests};
use anyhow::{Context, bail};
use serde::Serialize;

use crate::workspace::{TRUST_STATE_FILE, TrustState, write_atomic};

/// The history a `GetManifests` reply carries, as the coordinator sent it;
/// a refusal is an error that says the coordinator's code and message.
pub fn manifests_from_reply(reply: GetManifestsReply) -> anyhow::Result<Manifests> {
    match reply {
        GetManifestsReply::Manifests(manifests) => Ok(manifests),
        GetManifestsReply::Error(error) => {
            bail!("the coordinator refused: {}", error.into_api_error())
        }
    }
}

/// The `GetManifests` request `accord verify` sends: with a consistency
/// proof from the size in the trust state, if there is one (the proof
/// [`check_history`] requires).
pub fn manifests_request(last_seen: Option<&TrustState>) -> GetManifests {
    GetManifests {
        consistency_from: last_seen.map(|s| s.size),
        inclusion_of: Vec::new(),
    }
}

/// One generation of the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// SHA-256 of the manifest's exact bytes.
    pub manifest_sha256: [u8; 32],
    /// The address of the transition that set it.
    pub transition: [u8; 32],
}

/// What was verified, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The manifest generation (number of transitions).
    pub generation: u64,
    /// Every generation, oldest first (entry `i` is generation `i + 1`).
    pub history: Vec<HistoryEntry>,
    /// How many distinct policies the manifests name.
    pub policies: usize,
    /// The log size of the trust state this history was checked against;
    /// `None` on first use.
    pub previous_size: Option<u64>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.history.last().map(|e| e.manifest_sha256);
        write!(
            f,
            "history verified: generation {}, current manifest sha256 {}, {} policies",
            self.generation,
            current.map(|h| hex::encode(&h)).unwrap_or_default(),
            self.policies
        )?;
        match self.previous_size {
            None => f.write_str(" (first verification: trusting this history key from now on)"),
            Some(size) if size == self.generation => {
                f.write_str(" (unchanged since last verified)")
            }
            Some(size) => write!(f, " (extends the size-{size} history verified before)"),
        }
    }
}

/// A history that passed [`check_history`]: the trust state to keep and a
/// summary. Only [`check_history`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    trust: TrustState,
    summary: Summary,
}

impl Verified {
    /// The new trust state.
    pub fn trust(&self) -> &TrustState {
        &self.trust
    }

    /// What was verified.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// Why a history was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signed tree head does not decode.
    MalformedTreeHead(String),
    /// The seed-share record is not the one the signed head names, does
    /// not decode, or does not share the seed as the current manifest says.
    SeedShareRecord(String),
    /// The history key is not a valid Ed25519 key.
    BadHistoryKey,
    /// The tree head's signature does not verify under the history key.
    BadSignature,
    /// The history key differs from the one verified before.
    DifferentHistoryKey {
        /// The key in the trust state.
        seen: [u8; 32],
        /// The key offered now.
        offered: [u8; 32],
    },
    /// The reply has no manifests.
    NoManifests,
    /// Manifest `index` does not parse.
    InvalidManifest {
        /// Position, oldest first.
        index: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// The chain rebuilt from the manifests does not end in the reply's
    /// latest transition.
    ChainMismatch {
        /// The rebuilt latest transition.
        rebuilt: [u8; 32],
        /// The one the coordinator claims.
        claimed: [u8; 32],
    },
    /// The chain's tree head is not the signed one.
    TreeHeadMismatch {
        /// The tree head of the rebuilt chain.
        rebuilt: Box<TreeHead>,
        /// The signed one.
        signed: Box<TreeHead>,
    },
    /// The coordinator's current manifest is not the expected one.
    ManifestDiffers {
        /// SHA-256 of the coordinator's current manifest.
        current: [u8; 32],
        /// SHA-256 of the expected manifest.
        expected: [u8; 32],
    },
    /// A policy a manifest names is not in the reply.
    MissingPolicy {
        /// The manifest's position, oldest first.
        manifest_index: usize,
        /// The policy's hash.
        hash: [u8; 32],
    },
    /// A manifest names a policy by something other than a 32-byte hash.
    BadPolicyKey {
        /// The manifest's position.
        manifest_index: usize,
        /// The parser's complaint.
        reason: String,
    },
    /// The root or mesh CA certificate is not a self-signed certificate.
    BadCertificate {
        /// `root CA` or `mesh CA`.
        which: &'static str,
        /// Why.
        reason: String,
    },
    /// An inclusion proof does not verify.
    BadInclusionProof {
        /// The log index.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The history is older than the one verified before.
    Rollback {
        /// Log size verified before.
        seen_size: u64,
        /// Log size offered now.
        offered_size: u64,
        /// Generation verified before.
        seen_generation: u64,
        /// Generation offered now.
        offered_generation: u64,
    },
    /// The reply has no consistency proof from the size verified before.
    MissingConsistencyProof {
        /// The size verified before.
        from: u64,
    },
    /// The history does not extend the one verified before.
    Fork {
        /// The size verified before.
        seen_size: u64,
        /// The size offered now.
        offered_size: u64,
        /// What did not match.
        reason: String,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = |bytes: &[u8]| hex::encode(bytes);
        match self {
            Self::MalformedTreeHead(why) => write!(f, "the signed tree head is malformed: {why}"),
            Self::SeedShareRecord(why) => write!(f, "the seed-share record does not check out: {why}"),
            Self::BadHistoryKey => f.write_str("the history public key is not a valid Ed25519 key"),
            Self::BadSignature => f.write_str(
                "the tree head's signature does not verify under the history key: the history is forged or corrupt",
            ),
            Self::DifferentHistoryKey { seen, offered } => write!(
                f,
                "the history key {} is not the key {} verified before: a different deployment/seed — refusing \
                 (if the deployment was deliberately recreated, move verify/{TRUST_STATE_FILE} aside)",
                h(offered),
                h(seen)
            ),
            Self::NoManifests => f.write_str("the coordinator returned no manifests"),
            Self::InvalidManifest { index, reason } => {
                write!(f, "manifest {index} of the history does not parse: {reason}")
            }
            Self::ChainMismatch { rebuilt, claimed } => write!(
                f,
                "the manifests do not chain to the latest transition the coordinator claims \
                 (rebuilt {}, claimed {}): a manifest was changed, dropped, added or reordered",
                h(rebuilt),
                h(claimed)
            ),
            Self::TreeHeadMismatch { rebuilt, signed } => write!(
                f,
                "the signed tree head (size {}, root {}, generation {}) does not match the manifests \
                 (size {}, root {}, generation {})",
                signed.size,
                h(&signed.root),
                signed.generation,
                rebuilt.size,
                h(&rebuilt.root),
                rebuilt.generation
            ),
            Self::ManifestDiffers { current, expected } => write!(
                f,
                "the coordinator's current manifest differs from manifest.json \
                 (coordinator: sha256 {}, manifest.json: sha256 {}); nothing was written to verify/",
                h(current),
                h(expected)
            ),
            Self::MissingPolicy {
                manifest_index,
                hash,
            } => write!(
                f,
                "manifest {manifest_index} names policy {} but the coordinator did not return it",
                h(hash)
            ),
            Self::BadPolicyKey {
                manifest_index,
                reason,
            } => write!(f, "manifest {manifest_index}: {reason}"),
            Self::BadCertificate { which, reason } => {
                write!(f, "the coordinator's {which} certificate is unusable: {reason}")
            }
            Self::BadInclusionProof { index, reason } => {
                write!(f, "the inclusion proof of log index {index} does not verify: {reason}")
            }
            Self::Rollback {
                seen_size,
                offered_size,
                seen_generation,
                offered_generation,
            } => write!(
                f,
                "ROLLBACK: the coordinator serves a history of size {offered_size} (generation {offered_generation}) \
                 but this workspace verified size {seen_size} (generation {seen_generation}) before — refusing"
            ),
            Self::MissingConsistencyProof { from } => write!(
                f,
                "the reply has no consistency proof from size {from} (ask GetManifests with consistency_from = {from})"
            ),
            Self::Fork {
                seen_size,
                offered_size,
                reason,
            } => write!(
                f,
                "FORK: the coordinator's history (size {offered_size}) does not extend the size-{seen_size} history \
                 this workspace verified before: {reason} — refusing; someone rewrote the deployment's history"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks a `GetManifests` reply (see the [module docs](self)) and returns
/// the trust state to keep. `last_seen` is this workspace's trust state;
/// the reply must then have been asked with `consistency_from =
/// last_seen.size`.
pub fn check_history(
    expected_manifest: &[u8],
    reply: &Manifests,
    last_seen: Option<&TrustState>,
) -> Result<Verified, VerifyError> {
    let provider = default_provider();

    // 1–2. The signed tree head, under the right key.
    let signed = SignedTreeHead::decode(&reply.signed_tree_head)
        .map_err(|e| VerifyError::MalformedTreeHead(e.to_string()))?;
    if let Some(seen) = last_seen
        && seen.history_public_key != reply.history_public_key
    {
        return Err(VerifyError::DifferentHistoryKey {
            seen: seen.history_public_key,
            offered: reply.history_public_key,
        });
    }
    let key = ed25519_dalek::VerifyingKey::from_bytes(&reply.history_public_key)
        .map_err(|_| VerifyError::BadHistoryKey)?;
    let head = signed.verify(&key).map_err(|_| VerifyError::BadSignature)?;

    // 3. The chain.
    if reply.manifests.is_empty() {
        return Err(VerifyError::NoManifests);
    }
    let mut parsed = Vec::with_capacity(reply.manifests.len());
    for (index, bytes) in reply.manifests.iter().enumerate() {
        let manifest = Manifest::from_json(bytes).map_err(|e| VerifyError::InvalidManifest {
            index,
            reason: e.to_string(),
        })?;
        parsed.push(manifest);
    }
    let mut history = History::new();
    let mut entries = Vec::with_capacity(parsed.len());
    for bytes in &reply.manifests {
        let manifest_hash = ObjectHash::of(provider, bytes);
        let (_, address) = history.append(provider, manifest_hash);
        entries.push(HistoryEntry {
            manifest_sha256: manifest_hash.0,
            transition: address.0,
        });
    }
    let rebuilt_latest = history.latest().map(|h| h.0).unwrap_or_default();
    if rebuilt_latest != reply.latest_transition {
        return Err(VerifyError::ChainMismatch {
            rebuilt: rebuilt_latest,
            claimed: reply.latest_transition,
        });
    }
    // The seed-share record is the one the signed head names, and its
    // sharing is the current manifest's.
    let record_address = ObjectHash::of(provider, &reply.seedshare_record);
    if record_address.0 != head.seedshares {
        return Err(VerifyError::SeedShareRecord(format!(
            "the record has SHA-256 {record_address}, the signed tree head names {}",
            hex::encode(&head.seedshares)
        )));
    }
    let record =
        SeedShareRecord::decode(&reply.seedshare_record).map_err(VerifyError::SeedShareRecord)?;
    let rebuilt = history.tree_head(provider, &record_address);
    if rebuilt != head {
        return Err(VerifyError::TreeHeadMismatch {
            rebuilt: Box::new(rebuilt),
            signed: Box::new(head),
        });
    }

    // 4. The current manifest is the expected one.
    let current = entries
        .last()
        .map(|e| e.manifest_sha256)
        .unwrap_or_default();
    if reply.manifests.last().map(Vec::as_slice) != Some(expected_manifest) {
        return Err(VerifyError::ManifestDiffers {
            current,
            expected: provider.sha256(&[expected_manifest]),
        });
    }

    if let Some(current) = parsed.last() {
        let doc = current.doc();
        let owners = doc.seedshare_keys();
        let (stored, threshold) = match &record.sharing {
            Some(sharing) => (
                sharing.shares.iter().map(|s| s.owner).collect(),
                u32::from(sharing.commitments.threshold),
            ),
            None => (Vec::new(), doc.seedshare_threshold),
        };
        if stored != owners || (!owners.is_empty() && threshold != doc.seedshare_threshold) {
            return Err(VerifyError::SeedShareRecord(format!(
                "the record shares the seed among {} owner(s) with threshold {threshold}, the current manifest names {} with threshold {}",
                stored.len(),
                owners.len(),
                doc.seedshare_threshold
            )));
        }
    }

    // 5. Every named policy is there.
    let given = policies_by_hash(provider, &reply.policies);
    let mut named = std::collections::BTreeSet::new();
    for (manifest_index, manifest) in parsed.iter().enumerate() {
        let hashes = accord_core::coordinator::store::manifest_policy_hashes(manifest).map_err(
            |reason| VerifyError::BadPolicyKey {
                manifest_index,
                reason,
            },
        )?;
        for hash in hashes {
            if !given.contains_key(&hash) {
                return Err(VerifyError::MissingPolicy {
                    manifest_index,
                    hash,
                });
            }
            named.insert(hash);
        }
    }

    // The CA certificates are well-formed and self-signed. (Their keys are
    // not pinned: the attested TLS session vouches for them.)
    for (which, der) in [("root CA", &reply.root_ca), ("mesh CA", &reply.mesh_ca)] {
        check_self_signed(provider, der)
            .map_err(|reason| VerifyError::BadCertificate { which, reason })?;
    }

    // 6. Inclusion proofs, if any were asked for.
    for (index, proof) in &reply.inclusion_proofs {
        let entry = usize::try_from(*index)
            .ok()
            .and_then(|i| entries.get(i))
            .ok_or_else(|| VerifyError::BadInclusionProof {
                index: *index,
                reason: format!("the log has only {} entries", entries.len()),
            })?;
        let leaf = transition_leaf_hash(provider, &ObjectHash(entry.transition));
        merkle::verify_inclusion(provider, &leaf, *index, head.size, proof, &head.root).map_err(
            |e| VerifyError::BadInclusionProof {
                index: *index,
                reason: e.to_string(),
            },
        )?;
    }

    // 7. It extends what this workspace verified before.
    if let Some(seen) = last_seen {
        check_extends(provider, &history, seen, &head, reply)?;
    }

    Ok(Verified {
        trust: TrustState {
            size: head.size,
            root: head.root,
            generation: head.generation,
            signature: signed.signature,
            history_public_key: reply.history_public_key,
            latest_transition: reply.latest_transition,
            seedshares: head.seedshares,
        },
        summary: Summary {
            generation: head.generation,
            history: entries,
            policies: named.len(),
            previous_size: last_seen.map(|s| s.size),
        },
    })
}

fn check_extends(
    provider: &dyn CryptoProvider,
    history: &History,
    seen: &TrustState,
    head: &TreeHead,
    reply: &Manifests,
) -> Result<(), VerifyError> {
    let rollback = || VerifyError::Rollback {
        seen_size: seen.size,
        offered_size: head.size,
        seen_generation: seen.generation,
        offered_generation: head.generation,
    };
    if head.size < seen.size || head.generation < seen.generation {
        return Err(rollback());
    }
    let fork = |reason: String| VerifyError::Fork {
        seen_size: seen.size,
        offered_size: head.size,
        reason,
    };
    let previous = TreeHead {
        size: seen.size,
        root: seen.root,
        generation: seen.generation,
        seedshares: seen.seedshares,
    };
    if head.size == seen.size {
        if head.root != seen.root || reply.latest_transition != seen.latest_transition {
            return Err(fork(format!(
                "same size {}, but root {} instead of {}",
                head.size,
                hex::encode(&head.root),
                hex::encode(&seen.root)
            )));
        }
    } else {
        let proof = reply
            .consistency_proof
            .as_ref()
            .ok_or(VerifyError::MissingConsistencyProof { from: seen.size })?;
        check_newer(provider, &previous, head, proof).map_err(|e| match e {
            TreeHeadError::OlderGeneration { .. } | TreeHeadError::SmallerLog { .. } => rollback(),
            other => fork(format!("the consistency proof fails: {other}")),
        })?;
    }
    // Independently of the proof: the manifests themselves must contain the
    // old log as a prefix.
    let old_root = history
        .log()
        .root_at(provider, seen.size)
        .map_err(|e| fork(e.to_string()))?;
    if old_root != seen.root {
        return Err(fork(format!(
            "the first {} manifests have root {}, not the {} verified before",
            seen.size,
            hex::encode(&old_root),
            hex::encode(&seen.root)
        )));
    }
    Ok(())
}

fn check_self_signed(provider: &dyn CryptoProvider, der: &[u8]) -> Result<(), String> {
    let cert = accord_core::x509::Certificate::from_der(der).map_err(|e| e.to_string())?;
    cert.verify_issued_by(&cert, provider)
        .map_err(|e| format!("not self-signed: {e}"))
}

fn policies_by_hash<'a>(
    provider: &dyn CryptoProvider,
    policies: &'a [Vec<u8>],
) -> BTreeMap<[u8; 32], &'a [u8]> {
    policies
        .iter()
        .map(|p| (provider.sha256(&[p]), p.as_slice()))
        .collect()
}

/// Removes the files in `dir` that are not in `keep` (none if `dir` does
/// not exist).
fn remove_stale(
    dir: &Path,
    keep: &std::collections::BTreeSet<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        if path.is_file() && !keep.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove stale {}", path.display()))?;
        }
    }
    Ok(())
}

/// `verify/history.json`.
#[derive(Serialize)]
struct HistoryFile {
    generation: u64,
    history_public_key: String,
    tree_head: TreeHeadJson,
    entries: Vec<HistoryEntryJson>,
}

#[derive(Serialize)]
struct TreeHeadJson {
    size: u64,
    root: String,
    generation: u64,
}

#[derive(Serialize)]
struct HistoryEntryJson {
    generation: u64,
    file: String,
    manifest_sha256: String,
    transition: String,
}

/// Writes what was verified into `dir` (the workspace's `verify/`):
/// `root-ca.pem`, `mesh-ca.pem`, `manifests/manifest-<n>.json` (oldest
/// first, from 0), `policies/<sha256>.toml`, `history.json`,
/// `seed-shares.json` (the sealed shares in force, if the manifest names
/// seed-share owners), and last the trust state `last-tree-head.json`. `reply` must be the reply that
/// `verified` came from.
pub fn write_verify_dir(dir: &Path, reply: &Manifests, verified: &Verified) -> anyhow::Result<()> {
    let provider = default_provider();
    let hashes: Vec<[u8; 32]> = reply
        .manifests
        .iter()
        .map(|m| provider.sha256(&[m]))
        .collect();
    let checked: Vec<[u8; 32]> = verified
        .summary
        .history
        .iter()
        .map(|e| e.manifest_sha256)
        .collect();
    if hashes != checked {
        bail!("internal error: the reply to write is not the one that was verified");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(
        &dir.join("root-ca.pem"),
        pem("CERTIFICATE", &reply.root_ca).as_bytes(),
    )?;
    write_atomic(
        &dir.join("mesh-ca.pem"),
        pem("CERTIFICATE", &reply.mesh_ca).as_bytes(),
    )?;

    let mut entries = Vec::with_capacity(reply.manifests.len());
    let mut written = std::collections::BTreeSet::new();
    let given = policies_by_hash(provider, &reply.policies);
    for (n, (bytes, entry)) in reply
        .manifests
        .iter()
        .zip(&verified.summary.history)
        .enumerate()
    {
        let file = format!("manifests/manifest-{n}.json");
        write_atomic(&dir.join(&file), bytes)?;
        written.insert(dir.join(&file));
        let manifest =
            Manifest::from_json(bytes).map_err(|e| anyhow::anyhow!("manifest {n}: {e}"))?;
        for hash in accord_core::coordinator::store::manifest_policy_hashes(&manifest)
            .map_err(|e| anyhow::anyhow!("manifest {n}: {e}"))?
        {
            let policy = given
                .get(&hash)
                .with_context(|| format!("policy {} missing", hex::encode(&hash)))?;
            let path = dir.join(format!("policies/{}.toml", hex::encode(&hash)));
            write_atomic(&path, policy)?;
            written.insert(path);
        }
        entries.push(HistoryEntryJson {
            generation: n as u64 + 1,
            file,
            manifest_sha256: hex::encode(&entry.manifest_sha256),
            transition: hex::encode(&entry.transition),
        });
    }
    // Files of an earlier verification that are not part of this history
    // would mislead a reviewer.
    for sub in ["manifests", "policies"] {
        remove_stale(&dir.join(sub), &written)?;
    }
    let trust = &verified.trust;
    let history = HistoryFile {
        generation: trust.generation,
        history_public_key: hex::encode(&trust.history_public_key),
        tree_head: TreeHeadJson {
            size: trust.size,
            root: hex::encode(&trust.root),
            generation: trust.generation,
        },
        entries,
    };
    let mut json = serde_json::to_string_pretty(&history).context("serializing history.json")?;
    json.push('\n');
    write_atomic(&dir.join("history.json"), json.as_bytes())?;
    // The seed-share document in force (after a re-share: the new sealed
    // shares), checked against the signed head above.
    let shares_path = dir.join(crate::workspace::SEED_SHARES_FILE);
    match SeedShareRecord::decode(&reply.seedshare_record)
        .map_err(|e| anyhow::anyhow!("seed-share record: {e}"))?
        .document()
    {
        Some(document) => crate::set_payload::seed_share_document_save(&shares_path, &document)?,
        None => match std::fs::remove_file(&shares_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot remove {}", shares_path.display()));
            }
        },
    }
    // Last: only a fully written verify/ moves the trust state forward.
    trust.save(&dir.join(TRUST_STATE_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Harness, People};

    fn sha(bytes: &[u8]) -> [u8; 32] {
        default_provider().sha256(&[bytes])
    }

    /// A coordinator with `n` generations (manifest variants 0..n, updates
    /// signed alternately by the Ed25519 and the P-384 owner).
    fn deployment(seed: u64, people: &People, variants: &[u32]) -> Harness {
        let mut harness = Harness::new(seed);
        harness.set_first(people.manifest(variants[0]));
        for (i, v) in variants[1..].iter().enumerate() {
            let key = if i % 2 == 0 {
                people.owner_key()
            } else {
                people.p384_key()
            };
            harness.update(people.manifest(*v), &key);
        }
        harness
    }

    /// Replaces the first occurrence of `from` with `to` (same length).
    fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
        let at = bytes
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        bytes[at..at + to.len()].copy_from_slice(to);
    }

    #[test]
    fn a_genuine_history_is_accepted() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1, 2]);
        let reply = harness.reply(None);
        let verified = check_history(&people.manifest(2), &reply, None).unwrap();
        let trust = verified.trust();
        assert_eq!((trust.size, trust.generation), (3, 3));
        assert_eq!(trust.latest_transition, harness.latest());
        assert_eq!(trust.history_public_key, reply.history_public_key);
        let summary = verified.summary();
        assert_eq!(summary.generation, 3);
        assert_eq!(summary.previous_size, None);
        assert_eq!(summary.policies, 3);
        let hashes: Vec<_> = summary.history.iter().map(|e| e.manifest_sha256).collect();
        assert_eq!(
            hashes,
            vec![
                sha(&people.manifest(0)),
                sha(&people.manifest(1)),
                sha(&people.manifest(2))
            ]
        );
        assert_eq!(summary.history[2].transition, harness.latest());
        assert!(summary.to_string().contains("generation 3"), "{summary}");
    }

    #[test]
    fn a_different_current_manifest_is_refused_with_both_hashes() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let reply = harness.reply(None);
        let err = check_history(&people.manifest(0), &reply, None).unwrap_err();
        assert_eq!(
            err,
            VerifyError::ManifestDiffers {
                current: sha(&people.manifest(1)),
                expected: sha(&people.manifest(0)),
            }
        );
        let text = err.to_string();
        assert!(text.contains("differs from manifest.json"), "{text}");
        assert!(
            text.contains(&hex::encode(&sha(&people.manifest(1)))),
            "{text}"
        );
        assert!(
            text.contains(&hex::encode(&sha(&people.manifest(0)))),
            "{text}"
        );
    }

    #[test]
    fn a_tampered_manifest_breaks_the_chain() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1, 2]);
        // An old manifest changed.
        let mut reply = harness.reply(None);
        patch(&mut reply.manifests[1], b"web-1", b"web-7");
        let err = check_history(&people.manifest(2), &reply, None).unwrap_err();
        assert!(matches!(err, VerifyError::ChainMismatch { .. }), "{err}");

        // The current manifest swapped for the one the user expects: still
        // caught, the signed history commits to what was really set.
        let mut reply = harness.reply(None);
        let forged = people.manifest(9);
        *reply.manifests.last_mut().unwrap() = forged.clone();
        let err = check_history(&forged, &reply, None).unwrap_err();
        assert!(matches!(err, VerifyError::ChainMismatch { .. }), "{err}");
    }

    #[test]
    fn a_dropped_middle_manifest_is_refused() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1, 2]);
        let mut reply = harness.reply(None);
        reply.manifests.remove(1);
        let err = check_history(&people.manifest(2), &reply, None).unwrap_err();
        assert!(matches!(err, VerifyError::ChainMismatch { .. }), "{err}");
        assert!(err.to_string().contains("dropped"), "{err}");
    }

    #[test]
    fn a_forged_tree_head_signature_is_refused() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let mut reply = harness.reply(None);
        reply.signed_tree_head[100] ^= 1;
        let err = check_history(&people.manifest(1), &reply, None).unwrap_err();
        assert_eq!(err, VerifyError::BadSignature);

        // A self-consistent history signed by another key than the one
        // verified before is a different deployment.
        let genuine = check_history(&people.manifest(1), &harness.reply(None), None).unwrap();
        let mut impostor = deployment(2, &people, &[0, 1]);
        let reply = impostor.reply(Some(2));
        check_history(&people.manifest(1), &reply, None).expect("valid on its own");
        let err = check_history(&people.manifest(1), &reply, Some(genuine.trust())).unwrap_err();
        assert!(
            matches!(err, VerifyError::DifferentHistoryKey { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("a different deployment/seed"),
            "{err}"
        );
    }

    #[test]
    fn a_short_or_mislabelled_tree_head_is_malformed() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0]);
        let mut reply = harness.reply(None);
        reply.signed_tree_head.pop();
        let err = check_history(&people.manifest(0), &reply, None).unwrap_err();
        assert!(matches!(err, VerifyError::MalformedTreeHead(_)), "{err}");
    }

    #[test]
    fn a_missing_policy_is_refused() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let mut reply = harness.reply(None);
        let dropped = reply.policies.remove(1);
        let err = check_history(&people.manifest(1), &reply, None).unwrap_err();
        assert!(
            matches!(err, VerifyError::MissingPolicy { hash, .. } if hash == sha(&dropped)),
            "{err}"
        );
    }

    #[test]
    fn a_rollback_is_refused_naming_both_sizes() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let old_reply = harness.reply(None);
        harness.update(people.manifest(2), &people.owner_key());
        let seen = check_history(&people.manifest(2), &harness.reply(None), None).unwrap();
        // The coordinator (or someone in between) serves generation 2 again.
        let err = check_history(&people.manifest(1), &old_reply, Some(seen.trust())).unwrap_err();
        assert_eq!(
            err,
            VerifyError::Rollback {
                seen_size: 3,
                offered_size: 2,
                seen_generation: 3,
                offered_generation: 2,
            }
        );
        let text = err.to_string();
        assert!(text.contains("size 2") && text.contains("size 3"), "{text}");
    }

    #[test]
    fn a_fork_is_refused() {
        let people = People::new();
        // Two coordinators with the same seed (so the same history key)
        // and the same first manifest, then different second manifests.
        let mut ours = deployment(1, &people, &[0, 1]);
        let mut theirs = deployment(1, &people, &[0, 5]);
        let seen = check_history(&people.manifest(1), &ours.reply(None), None).unwrap();
        let reply = theirs.reply(Some(2));
        assert_eq!(reply.history_public_key, seen.trust().history_public_key);

        // Same size, different root.
        let err = check_history(&people.manifest(5), &reply, Some(seen.trust())).unwrap_err();
        assert!(matches!(err, VerifyError::Fork { .. }), "{err}");
        assert!(err.to_string().contains("FORK"), "{err}");

        // The fork grows: its consistency proof proves its own past, not ours.
        theirs.update(people.manifest(6), &people.owner_key());
        let reply = theirs.reply(Some(2));
        let err = check_history(&people.manifest(6), &reply, Some(seen.trust())).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Fork { seen_size: 2, offered_size: 3, reason } if reason.contains("consistency proof")),
            "{err}"
        );
    }

    #[test]
    fn a_legitimate_extension_is_accepted_and_moves_the_trust_state() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let first = check_history(&people.manifest(1), &harness.reply(None), None).unwrap();

        // Unchanged: same size, same root, empty proof.
        let again = check_history(
            &people.manifest(1),
            &harness.reply(Some(2)),
            Some(first.trust()),
        )
        .unwrap();
        assert_eq!(again.trust(), first.trust());
        assert!(again.summary().to_string().contains("unchanged"));

        harness.update(people.manifest(2), &people.p384_key());
        harness.update(people.manifest(3), &people.owner_key());
        let reply = harness.reply(Some(2));
        assert!(!reply.consistency_proof.as_ref().unwrap().is_empty());
        let next = check_history(&people.manifest(3), &reply, Some(first.trust())).unwrap();
        assert_eq!((next.trust().size, next.trust().generation), (4, 4));
        assert_eq!(next.trust().latest_transition, harness.latest());
        assert_eq!(next.summary().previous_size, Some(2));
        assert!(next.summary().to_string().contains("extends the size-2"));

        // Without the proof the extension is not accepted.
        let mut bare = reply.clone();
        bare.consistency_proof = None;
        let err = check_history(&people.manifest(3), &bare, Some(first.trust())).unwrap_err();
        assert_eq!(err, VerifyError::MissingConsistencyProof { from: 2 });

        // A proof that does not fit is a fork, not an extension.
        let mut wrong = reply.clone();
        wrong.consistency_proof.as_mut().unwrap()[0][0] ^= 1;
        let err = check_history(&people.manifest(3), &wrong, Some(first.trust())).unwrap_err();
        assert!(matches!(err, VerifyError::Fork { .. }), "{err}");
    }

    #[test]
    fn write_verify_dir_writes_everything_then_the_trust_state() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let reply = harness.reply(None);
        let verified = check_history(&people.manifest(1), &reply, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let verify = dir.path().join("verify");
        write_verify_dir(&verify, &reply, &verified).unwrap();

        let root = std::fs::read_to_string(verify.join("root-ca.pem")).unwrap();
        assert!(root.starts_with("-----BEGIN CERTIFICATE-----\n"), "{root}");
        let der = accord_core::x509::pem::der_or_pem(root.as_bytes(), "CERTIFICATE").unwrap();
        assert_eq!(der, reply.root_ca);
        assert!(verify.join("mesh-ca.pem").is_file());
        assert_eq!(
            std::fs::read(verify.join("manifests/manifest-0.json")).unwrap(),
            people.manifest(0)
        );
        assert_eq!(
            std::fs::read(verify.join("manifests/manifest-1.json")).unwrap(),
            people.manifest(1)
        );
        for policy in crate::testkit::policies() {
            let path = verify.join(format!("policies/{}.toml", hex::encode(&sha(&policy))));
            assert_eq!(std::fs::read(path).unwrap(), policy);
        }
        let history: serde_json::Value =
            serde_json::from_slice(&std::fs::read(verify.join("history.json")).unwrap()).unwrap();
        assert_eq!(history["generation"], 2);
        assert_eq!(history["entries"].as_array().unwrap().len(), 2);
        assert_eq!(
            history["entries"][1]["transition"],
            hex::encode(&harness.latest())
        );
        assert_eq!(
            TrustState::load(&verify.join(TRUST_STATE_FILE)).unwrap(),
            Some(*verified.trust())
        );
    }

    #[test]
    fn write_verify_dir_refuses_another_reply_and_keeps_the_trust_state() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let reply = harness.reply(None);
        let verified = check_history(&people.manifest(1), &reply, None).unwrap();
        let mut other = reply.clone();
        other.manifests.pop();
        let dir = tempfile::tempdir().unwrap();
        assert!(write_verify_dir(dir.path(), &other, &verified).is_err());
        assert!(!dir.path().join(TRUST_STATE_FILE).exists());
    }

    #[test]
    fn a_refusal_from_the_coordinator_is_reported() {
        let response = accord_core::protocol::get_manifests_reply(Err(
            accord_core::coordinator::ApiError::NeedsRecovery,
        ));
        let err = manifests_from_reply(response).unwrap_err().to_string();
        assert!(err.contains("recovery"), "{err}");
    }

    #[test]
    fn inclusion_proofs_are_checked_when_present() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1, 2]);
        let reply = harness.reply_with(None, vec![0, 1, 2]);
        assert_eq!(reply.inclusion_proofs.len(), 3);
        check_history(&people.manifest(2), &reply, None).unwrap();

        let mut bad = reply.clone();
        bad.inclusion_proofs[0].1[0][5] ^= 1;
        let err = check_history(&people.manifest(2), &bad, None).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadInclusionProof { index: 0, .. }),
            "{err}"
        );
        let mut bad = reply;
        bad.inclusion_proofs[1].0 = 7;
        let err = check_history(&people.manifest(2), &bad, None).unwrap_err();
        assert!(
            matches!(err, VerifyError::BadInclusionProof { index: 7, .. }),
            "{err}"
        );
    }

    #[test]
    fn manifests_request_asks_for_the_consistency_proof_the_check_needs() {
        assert_eq!(
            manifests_request(None),
            GetManifests {
                consistency_from: None,
                inclusion_of: vec![],
            }
        );
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let seen = check_history(&people.manifest(1), &harness.reply(None), None).unwrap();
        let GetManifests {
            consistency_from, ..
        } = manifests_request(Some(seen.trust()));
        assert_eq!(consistency_from, Some(2));
    }

    #[test]
    fn write_verify_dir_removes_files_of_an_earlier_history() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let reply = harness.reply(None);
        let verified = check_history(&people.manifest(1), &reply, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
        std::fs::create_dir_all(dir.path().join("policies")).unwrap();
        std::fs::write(dir.path().join("manifests/manifest-7.json"), b"old").unwrap();
        std::fs::write(dir.path().join("policies/old.toml"), b"old").unwrap();
        write_verify_dir(dir.path(), &reply, &verified).unwrap();
        assert!(!dir.path().join("manifests/manifest-7.json").exists());
        assert!(!dir.path().join("policies/old.toml").exists());
        assert!(dir.path().join("manifests/manifest-1.json").exists());
    }

    #[test]
    fn a_garbage_ca_certificate_is_refused() {
        let people = People::new();
        let mut harness = deployment(1, &people, &[0]);
        let mut reply = harness.reply(None);
        reply.mesh_ca = b"not a certificate".to_vec();
        let err = check_history(&people.manifest(0), &reply, None).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::BadCertificate {
                    which: "mesh CA",
                    ..
                }
            ),
            "{err}"
        );
        let mut reply = harness.reply(None);
        let last = reply.root_ca.len() - 1;
        reply.root_ca[last] ^= 1;
        let err = check_history(&people.manifest(0), &reply, None).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::BadCertificate {
                    which: "root CA",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_tampered_manifest_with_a_matching_latest_transition_fails_on_the_signed_head() {
        // The claimed latest transition is not what is trusted: the signed
        // tree head (whose leaves are the transitions) is.
        let people = People::new();
        let mut harness = deployment(1, &people, &[0, 1]);
        let mut reply = harness.reply(None);
        let forged = people.manifest(9);
        reply.manifests[1] = forged.clone();
        let provider = default_provider();
        let mut history = History::new();
        for m in &reply.manifests {
            history.append(provider, ObjectHash::of(provider, m));
        }
        reply.latest_transition = history.latest().unwrap().0;
        let err = check_history(&forged, &reply, None).unwrap_err();
        assert!(matches!(err, VerifyError::TreeHeadMismatch { .. }), "{err}");
    }
}
