//! How the coordinator's history lies in the (untrusted) store, and how it
//! is read back and checked.
//!
//! Keys are `<dir>/<name>`:
//!
//! | key | value |
//! |---|---|
//! | `manifests/<sha256>` | the manifest's exact bytes |
//! | `policies/<sha256>` | a policy's bytes |
//! | `transitions/<sha256>` | a transition (manifest hash ‖ previous, 64 bytes) |
//! | `seedshares/<sha256>` | the [`SeedShareRecord`]: salt ‖ Feldman commitments |
//! | `transitions/latest` | the [`LatestRecord`], the only mutable key |
//!
//! Every content-addressed object is re-hashed when read. The latest record
//! is written only with compare-and-swap. The signed tree head inside it
//! can only be checked once the seed is known (the history key is derived
//! from it); [`load`] checks everything else: every object's hash, the chain
//! of transitions, and that the (unverified) tree head describes exactly
//! that chain.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::codec::Reader;
use crate::crypto::CryptoProvider;
use crate::history::History;
use crate::history::objects::{ObjectHash, ObjectKind, Transition, verify_object};
use crate::history::tree_head::SignedTreeHead;
use crate::manifest::Manifest;
use crate::seedshare::Commitments;

/// The key of the latest record.
pub const LATEST_KEY: &str = "transitions/latest";

/// The store key of a content-addressed object.
pub fn object_key(kind: ObjectKind, hash: &ObjectHash) -> String {
    format!("{}/{hash}", kind.dir())
}

/// Every key of the store and its value, as the driver read them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreSnapshot {
    /// Key → value.
    pub objects: BTreeMap<String, Vec<u8>>,
}

/// The value of `transitions/latest`:
/// `transition (32) ‖ seed-share record address (32) ‖ signed tree head (132)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatestRecord {
    /// The latest transition's address.
    pub transition: ObjectHash,
    /// The address of the seed-share record in force.
    pub seedshares: ObjectHash,
    /// The tree head over all transitions, signed by the history key.
    pub head: SignedTreeHead,
}

impl LatestRecord {
    /// The length of the encoding.
    pub const ENCODED_LEN: usize = 64 + SignedTreeHead::ENCODED_LEN;

    /// The fixed-length encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(self.transition.as_bytes());
        out.extend_from_slice(self.seedshares.as_bytes());
        out.extend_from_slice(&self.head.encode());
        out
    }

    /// Parses exactly [`Self::ENCODED_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::new(bytes);
        let transition = ObjectHash(*reader.take_array::<32>().map_err(|e| e.to_string())?);
        let seedshares = ObjectHash(*reader.take_array::<32>().map_err(|e| e.to_string())?);
        let head = reader
            .take(SignedTreeHead::ENCODED_LEN)
            .map_err(|e| e.to_string())?;
        reader.finish().map_err(|e| e.to_string())?;
        let head = SignedTreeHead::decode(head).map_err(|e| e.to_string())?;
        Ok(Self {
            transition,
            seedshares,
            head,
        })
    }
}

/// The seed-share record: what recovery needs besides the shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedShareRecord {
    /// The salt of the seed engine (not secret).
    pub salt: [u8; 32],
    /// The Feldman commitments of the shares; `None` if the manifest named
    /// no seed-share owners (then only peers can recover a replica).
    pub commitments: Option<Commitments>,
}

impl SeedShareRecord {
    /// `salt ‖ commitments encoding` (just the salt when there are none).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.salt.to_vec();
        if let Some(commitments) = &self.commitments {
            out.extend_from_slice(&commitments.encode());
        }
        out
    }

    /// Parses the encoding strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::new(bytes);
        let salt = *reader.take_array::<32>().map_err(|e| e.to_string())?;
        let rest = reader.rest();
        let commitments = if rest.is_empty() {
            None
        } else {
            Some(Commitments::decode(rest).map_err(|e| e.to_string())?)
        };
        Ok(Self { salt, commitments })
    }
}

/// Why a stored history was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// A key the history needs is missing.
    Missing(String),
    /// A value is malformed or does not hash to its key.
    Corrupt {
        /// The key.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The tree head in the latest record does not describe the chain.
    TreeHeadMismatch,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(key) => write!(f, "the store has no {key}"),
            Self::Corrupt { key, reason } => write!(f, "the store's {key} is corrupt: {reason}"),
            Self::TreeHeadMismatch => {
                f.write_str("the latest tree head does not match the stored transitions")
            }
        }
    }
}

impl core::error::Error for LoadError {}

/// A stored history, every object checked against its address and the
/// chain checked against the tree head (whose signature is not yet checked).
#[derive(Clone, Debug)]
pub struct LoadedHistory {
    /// The latest record, exactly as stored (the compare-and-swap value).
    pub latest_bytes: Vec<u8>,
    /// The latest record, parsed.
    pub latest: LatestRecord,
    /// The transitions' addresses, oldest first.
    pub transitions: Vec<ObjectHash>,
    /// The manifests, oldest first.
    pub manifests: Vec<Manifest>,
    /// Every policy of every manifest by hash.
    pub policies: BTreeMap<[u8; 32], Vec<u8>>,
    /// Policy hashes in the order first named (for replies).
    pub policy_order: Vec<[u8; 32]>,
    /// The seed-share record.
    pub seedshares: SeedShareRecord,
    /// The chain and its Merkle log.
    pub history: History,
}

impl LoadedHistory {
    /// The current manifest.
    pub fn current(&self) -> Option<&Manifest> {
        self.manifests.last()
    }

    /// Whether `transition` is in this history (ancestor-or-self of latest).
    pub fn contains(&self, transition: &ObjectHash) -> bool {
        self.transitions.contains(transition)
    }
}

fn corrupt(key: &str, reason: impl fmt::Display) -> LoadError {
    LoadError::Corrupt {
        key: key.into(),
        reason: reason.to_string(),
    }
}

fn get<'s>(snapshot: &'s StoreSnapshot, key: &str) -> Result<&'s [u8], LoadError> {
    snapshot
        .objects
        .get(key)
        .map(Vec::as_slice)
        .ok_or_else(|| LoadError::Missing(key.into()))
}

fn get_object<'s>(
    provider: &dyn CryptoProvider,
    snapshot: &'s StoreSnapshot,
    kind: ObjectKind,
    hash: &ObjectHash,
) -> Result<&'s [u8], LoadError> {
    let key = object_key(kind, hash);
    let bytes = get(snapshot, &key)?;
    verify_object(provider, kind, hash, bytes).map_err(|e| corrupt(&key, e))?;
    Ok(bytes)
}

/// Reads and checks the history in `snapshot`; `None` if the store has no
/// latest record (nothing was ever set).
pub fn load(
    provider: &dyn CryptoProvider,
    snapshot: &StoreSnapshot,
) -> Result<Option<LoadedHistory>, LoadError> {
    let Some(latest_bytes) = snapshot.objects.get(LATEST_KEY) else {
        return Ok(None);
    };
    let latest = LatestRecord::decode(latest_bytes).map_err(|e| corrupt(LATEST_KEY, e))?;

    // Walk the chain back from the latest transition. No chain can be longer
    // than the number of stored objects, which bounds a malicious store.
    let mut chain = Vec::new();
    let mut next = Some(latest.transition);
    while let Some(address) = next {
        if chain.len() > snapshot.objects.len() {
            return Err(corrupt(LATEST_KEY, "the transition chain loops"));
        }
        let bytes = get_object(provider, snapshot, ObjectKind::Transition, &address)?;
        let transition = Transition::decode(bytes)
            .map_err(|e| corrupt(&object_key(ObjectKind::Transition, &address), e))?;
        chain.push((address, transition));
        next = transition.previous;
    }
    chain.reverse();

    let mut manifests = Vec::with_capacity(chain.len());
    let mut policies = BTreeMap::new();
    let mut policy_order = Vec::new();
    for (_, transition) in &chain {
        let key = object_key(ObjectKind::Manifest, &transition.manifest);
        let bytes = get_object(
            provider,
            snapshot,
            ObjectKind::Manifest,
            &transition.manifest,
        )?;
        let manifest = Manifest::from_json(bytes).map_err(|e| corrupt(&key, e))?;
        for hash in manifest_policy_hashes(&manifest).map_err(|e| corrupt(&key, e))? {
            if policies.contains_key(&hash) {
                continue;
            }
            let bytes = get_object(provider, snapshot, ObjectKind::Policy, &ObjectHash(hash))?;
            policies.insert(hash, bytes.to_vec());
            policy_order.push(hash);
        }
        manifests.push(manifest);
    }

    let seedshares_key = object_key(ObjectKind::SeedShares, &latest.seedshares);
    let seedshares = SeedShareRecord::decode(get_object(
        provider,
        snapshot,
        ObjectKind::SeedShares,
        &latest.seedshares,
    )?)
    .map_err(|e| corrupt(&seedshares_key, e))?;

    let transitions: Vec<Transition> = chain.iter().map(|(_, t)| *t).collect();
    let history =
        History::from_transitions(provider, &transitions).map_err(|e| corrupt(LATEST_KEY, e))?;
    if history.tree_head(provider) != latest.head.head {
        return Err(LoadError::TreeHeadMismatch);
    }
    Ok(Some(LoadedHistory {
        latest_bytes: latest_bytes.clone(),
        latest,
        transitions: chain.iter().map(|(a, _)| *a).collect(),
        manifests,
        policies,
        policy_order,
        seedshares,
        history,
    }))
}

/// The policy hashes a manifest names, decoded.
pub fn manifest_policy_hashes(manifest: &Manifest) -> Result<Vec<[u8; 32]>, String> {
    manifest
        .doc()
        .policies
        .keys()
        .map(|key| {
            crate::hex::decode_array::<32>(key)
                .map_err(|e| format!("policy key {key:?} is not a 32-byte hex hash: {e}"))
        })
        .collect()
}
