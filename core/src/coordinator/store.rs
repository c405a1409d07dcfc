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
//! | `seedshares/<sha256>` | the [`SeedShareRecord`]: salt, Feldman commitments, sealed shares |
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
use crate::manifest::{Manifest, SeedshareKey};
use crate::seedshare::{Commitments, SealedShare, SeedShareDocument};

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
/// `transition (32) ‖ signed tree head (164)`. The tree head names the
/// seed-share record in force ([`TreeHead::seedshares`]).
///
/// [`TreeHead::seedshares`]: crate::history::tree_head::TreeHead::seedshares
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatestRecord {
    /// The latest transition's address.
    pub transition: ObjectHash,
    /// The tree head over all transitions, signed by the history key.
    pub head: SignedTreeHead,
}

impl LatestRecord {
    /// The length of the encoding.
    pub const ENCODED_LEN: usize = 32 + SignedTreeHead::ENCODED_LEN;

    /// The address of the seed-share record in force (as the tree head
    /// names it).
    pub fn seedshares(&self) -> ObjectHash {
        ObjectHash(self.head.head.seedshares)
    }

    /// The fixed-length encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_LEN);
        out.extend_from_slice(self.transition.as_bytes());
        out.extend_from_slice(&self.head.encode());
        out
    }

    /// Parses exactly [`Self::ENCODED_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::new(bytes);
        let transition = ObjectHash(*reader.take_array::<32>().map_err(|e| e.to_string())?);
        let head = reader
            .take(SignedTreeHead::ENCODED_LEN)
            .map_err(|e| e.to_string())?;
        reader.finish().map_err(|e| e.to_string())?;
        let head = SignedTreeHead::decode(head).map_err(|e| e.to_string())?;
        Ok(Self { transition, head })
    }
}

/// The version byte of the [`SeedShareRecord`] encoding.
pub const SEEDSHARE_RECORD_VERSION: u8 = 2;

/// The length of a sealed share in a record: owner key, index,
/// encapsulated key, ciphertext of the share with its tag.
const SEALED_SHARE_LEN: usize = 32 + 1 + 32 + SEALED_CIPHERTEXT_LEN;

/// An HPKE ciphertext of one share: the share and the AEAD tag.
const SEALED_CIPHERTEXT_LEN: usize = crate::seedshare::SHARE_LEN + 16;

/// The seed-share record: the salt and, if the manifest names seed-share
/// owners, the sharing (Feldman commitments and every sealed share). It is
/// public (the shares are ciphertext) and the signed tree head names its
/// address, so the store can neither swap it nor hide a re-share from the
/// owners, who fetch it with `GetManifests`.
///
/// Encoding (all fixed-size fields, no padding):
///
/// ```text
/// version (1, = 2) ‖ salt (32) ‖ n (1, sealed shares; 0 = no sharing)
/// if n > 0: commitments (2 + 128·k, seedshare::Commitments::encode)
///           ‖ n × (owner X25519 key (32) ‖ index (1) ‖ encapsulated key (32) ‖ ciphertext (145))
/// ```
///
/// Sealed share `i` (0-based) must have index `i + 1`, owners are
/// distinct, and the threshold `k` is at most `n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedShareRecord {
    /// The salt of the seed engine (not secret).
    pub salt: [u8; 32],
    /// The commitments and sealed shares; `None` if the manifest named no
    /// seed-share owners (then only peers can recover a replica).
    pub sharing: Option<Sharing>,
}

/// The public part of one sharing of the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sharing {
    /// The Feldman commitments (they name the threshold).
    pub commitments: Commitments,
    /// One sealed share per owner, in owner order.
    pub shares: Vec<SealedShare>,
}

impl SeedShareRecord {
    /// The record of `document` (the seed-share document a sharing
    /// produced).
    pub fn from_document(document: &SeedShareDocument) -> Self {
        Self {
            salt: document.salt,
            sharing: Some(Sharing {
                commitments: document.commitments.clone(),
                shares: document.shares.clone(),
            }),
        }
    }

    /// The record of a deployment without seed-share owners.
    pub fn salt_only(salt: [u8; 32]) -> Self {
        Self {
            salt,
            sharing: None,
        }
    }

    /// The commitments, if there is a sharing.
    pub fn commitments(&self) -> Option<&Commitments> {
        self.sharing.as_ref().map(|s| &s.commitments)
    }

    /// The seed-share document owners keep (`seed-shares.json`), if there
    /// is a sharing.
    pub fn document(&self) -> Option<SeedShareDocument> {
        self.sharing.as_ref().map(|sharing| SeedShareDocument {
            version: u32::from(crate::seedshare::VERSION),
            salt: self.salt,
            commitments: sharing.commitments.clone(),
            shares: sharing.shares.clone(),
        })
    }

    /// The encoding described on [`SeedShareRecord`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(SEEDSHARE_RECORD_VERSION);
        out.extend_from_slice(&self.salt);
        match &self.sharing {
            None => out.push(0),
            Some(sharing) => {
                out.push(u8::try_from(sharing.shares.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(&sharing.commitments.encode());
                for share in &sharing.shares {
                    out.extend_from_slice(&share.owner.0);
                    out.push(share.index);
                    out.extend_from_slice(&share.encapsulated_key);
                    out.extend_from_slice(&share.ciphertext);
                }
            }
        }
        out
    }

    /// The record's address: SHA-256 of [`Self::encode`].
    pub fn address(&self, provider: &dyn CryptoProvider) -> ObjectHash {
        ObjectHash::of(provider, &self.encode())
    }

    /// Parses the encoding strictly: the version, the share count, the
    /// commitments, each share's index and owner, and no trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8().map_err(|e| e.to_string())?;
        if version != SEEDSHARE_RECORD_VERSION {
            return Err(format!(
                "seed-share record version {version}, expected {SEEDSHARE_RECORD_VERSION}"
            ));
        }
        let salt = *reader.take_array::<32>().map_err(|e| e.to_string())?;
        let count = usize::from(reader.u8().map_err(|e| e.to_string())?);
        if count == 0 {
            reader.finish().map_err(|e| e.to_string())?;
            return Ok(Self::salt_only(salt));
        }
        let k = usize::from(*reader.rest().get(1).ok_or("commitments truncated")?);
        let commitments = reader
            .take(2 + crate::seedshare::CHUNKS * 32 * k)
            .map_err(|e| format!("commitments: {e}"))?;
        let commitments =
            Commitments::decode(commitments).map_err(|e| format!("commitments: {e}"))?;
        if usize::from(commitments.threshold) > count {
            return Err(format!(
                "threshold {} is above the number of sealed shares ({count})",
                commitments.threshold
            ));
        }
        let mut shares: Vec<SealedShare> = Vec::with_capacity(count);
        for position in 0..count {
            let bytes = reader
                .take(SEALED_SHARE_LEN)
                .map_err(|e| format!("sealed share {position}: {e}"))?;
            let mut share = Reader::new(bytes);
            let owner = SeedshareKey(*share.take_array::<32>().map_err(|e| e.to_string())?);
            let index = share.u8().map_err(|e| e.to_string())?;
            let encapsulated_key = *share.take_array::<32>().map_err(|e| e.to_string())?;
            let ciphertext = share.rest().to_vec();
            if usize::from(index) != position + 1 {
                return Err(format!(
                    "sealed share {position} has index {index}, expected {}",
                    position + 1
                ));
            }
            if shares.iter().any(|s| s.owner == owner) {
                return Err(format!("sealed share {position} repeats an owner"));
            }
            shares.push(SealedShare {
                owner,
                index,
                encapsulated_key,
                ciphertext,
            });
        }
        reader.finish().map_err(|e| e.to_string())?;
        Ok(Self {
            salt,
            sharing: Some(Sharing {
                commitments,
                shares,
            }),
        })
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

    let seedshares_key = object_key(ObjectKind::SeedShares, &latest.seedshares());
    let seedshares = SeedShareRecord::decode(get_object(
        provider,
        snapshot,
        ObjectKind::SeedShares,
        &latest.seedshares(),
    )?)
    .map_err(|e| corrupt(&seedshares_key, e))?;

    let transitions: Vec<Transition> = chain.iter().map(|(_, t)| *t).collect();
    let history =
        History::from_transitions(provider, &transitions).map_err(|e| corrupt(LATEST_KEY, e))?;
    if history.tree_head(provider, &latest.seedshares()) != latest.head.head {
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
