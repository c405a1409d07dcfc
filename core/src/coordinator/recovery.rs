//! User recovery: seed-share owners submit their shares one by one; at the
//! threshold the seed is reconstructed, checked against the history's
//! signed tree head, and the replica becomes Ready with a new mesh CA key.
//!
//! Nothing the store holds can choose the seed:
//!
//! - each share arrives authenticated by its owner's X25519 key (the
//!   transport opens an HPKE Auth-mode submission), and that key must be a
//!   seed-share owner of the manifest this replica will serve;
//! - the share is bound to the latest transition and seed-share record the
//!   owner checked (`GetRecoveryState`) against its own trust state and
//!   `seed-shares.json`;
//! - the stored sharing must name exactly the manifest's owners and
//!   threshold;
//! - the rebuilt seed's history key must verify the stored tree head,
//!   which names the seed-share record, so a record the store swapped in
//!   fails even when the shares check out against it.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::store::LoadedHistory;
use super::{
    ApiError, Coordinator, GetRecoveryState, Phase, Ready, Recover, RecoveryProgress,
    RecoveryState, RecoveryTarget, Response,
};
use crate::ca::Ca;
use crate::hex::Hex;
use crate::history::objects::{ObjectHash, Transition};
use crate::kdf::{MeshCaKey, Salt, SeedEngine};
use crate::manifest::SeedshareKey;
use crate::seedshare::{self, Share};

/// A replica in Recovery: the history it read (or why it could not), and
/// the shares submitted so far.
pub(super) struct Recovering {
    loaded: Result<LoadedHistory, String>,
    shares: Vec<(SeedshareKey, Share)>,
}

impl Recovering {
    pub(super) fn new(loaded: Result<LoadedHistory, String>) -> Self {
        Self {
            loaded,
            shares: Vec::new(),
        }
    }

    /// The history read from the store, or why it cannot be used.
    pub(super) fn loaded(&self) -> Result<&LoadedHistory, &str> {
        self.loaded.as_ref().map_err(String::as_str)
    }

    /// A new reading of the store. Shares submitted for another latest
    /// transition are dropped.
    pub(super) fn replace(&mut self, loaded: Result<LoadedHistory, String>) {
        let same = match (&self.loaded, &loaded) {
            (Ok(old), Ok(new)) => old.latest_bytes == new.latest_bytes,
            _ => false,
        };
        if !same {
            self.shares.clear();
        }
        self.loaded = loaded;
    }
}

impl<'p> Coordinator<'p> {
    /// What this replica would recover to (and, when Ready, what it
    /// serves), for the owner to check before sending a share.
    pub(super) fn recovery_state(&self, get: &GetRecoveryState) -> Result<Response, ApiError> {
        let (state, loaded, have) = match &self.phase {
            Phase::Uninitialized => {
                return Err(ApiError::NoManifest("no state to recover from".into()));
            }
            Phase::Ready(ready) => (super::StateName::Ready, &ready.loaded, 0),
            Phase::Recovery(recovering) => {
                let loaded = recovering.loaded.as_ref().map_err(|why| {
                    ApiError::Internal(format!("the stored history cannot be used: {why}"))
                })?;
                (super::StateName::Recovery, loaded, recovering.shares.len())
            }
        };
        let provider = self.env.provider;
        let log = loaded.history.log();
        let size = log.size();
        // No proof when the owner trusts a larger log than the one stored:
        // the owner sees the sizes and refuses the rollback by name.
        let consistency_proof = get
            .consistency_from
            .and_then(|old| log.consistency_proof(provider, old, size).ok());
        let manifest = loaded
            .current()
            .ok_or_else(|| ApiError::Internal("the history has no manifest".into()))?;
        Ok(Response::RecoveryState(RecoveryState {
            state,
            latest_transition: loaded.latest.transition,
            transition: Transition {
                manifest: ObjectHash::of(provider, manifest.raw()),
                previous: loaded.transitions.iter().rev().nth(1).copied(),
            },
            signed_tree_head: loaded.latest.head,
            seedshare_record: loaded.seedshares.encode(),
            manifest: manifest.raw().to_vec(),
            consistency_proof,
            have,
            need: loaded
                .seedshares
                .commitments()
                .map_or(0, |commitments| commitments.threshold),
            ready_peers: self.ready_peers,
        }))
    }

    pub(super) fn recover(&mut self, recover: Recover) -> Result<Response, ApiError> {
        let recovering = match &mut self.phase {
            Phase::Uninitialized => {
                return Err(ApiError::NoManifest("no state to recover from".into()));
            }
            Phase::Ready(_) => return Err(ApiError::AlreadyRecovered),
            Phase::Recovery(recovering) => recovering,
        };
        if !recover.force && self.ready_peers > 0 {
            return Err(ApiError::PermissionDenied(format!(
                "rejecting user recovery because {} ready peers are available (it would rotate the mesh CA and split the deployment); retry with --force to override",
                self.ready_peers
            )));
        }
        let loaded = recovering.loaded.as_ref().map_err(|why| {
            ApiError::Internal(format!("the stored history cannot be used: {why}"))
        })?;
        // The owner bound the share to what it checked: nothing else.
        let target = RecoveryTarget {
            latest_transition: loaded.latest.transition,
            seedshares: loaded.latest.seedshares(),
        };
        if recover.target != target {
            return Err(ApiError::ManifestConflict(format!(
                "the share is bound to transition {} with seed-share record {}, but this replica would recover to transition {} with seed-share record {}: run `accord recover` again to check what it would recover to",
                recover.target.latest_transition,
                recover.target.seedshares,
                target.latest_transition,
                target.seedshares
            )));
        }
        let manifest = loaded
            .current()
            .ok_or_else(|| ApiError::Internal("the history has no manifest".into()))?;
        let doc = manifest.doc();
        let owners = doc.seedshare_keys();
        // The transport authenticated the owner's key (HPKE Auth mode over
        // this session); it must be a seed-share owner of the manifest this
        // replica will serve, which is what clients verify.
        let position = owners
            .iter()
            .position(|k| *k == recover.owner)
            .ok_or_else(|| {
                ApiError::PermissionDenied(format!(
                    "X25519 key {} is not a seed-share owner of the current manifest ({} owner(s))",
                    Hex(&recover.owner.0),
                    owners.len()
                ))
            })?;
        let sharing = loaded.seedshares.sharing.as_ref().ok_or_else(|| {
            ApiError::PermissionDenied(
                "the manifest was set without seed-share owners: only a peer can recover this replica".into(),
            )
        })?;
        // The stored sharing must be the manifest's: same owners in the
        // same order, same threshold.
        let stored_owners: Vec<_> = sharing.shares.iter().map(|s| s.owner).collect();
        if stored_owners != owners {
            return Err(ApiError::PermissionDenied(format!(
                "the stored seed-share record names {} owner(s) that differ from the manifest's SeedshareOwnerPubKeys ({}): the store was tampered with",
                stored_owners.len(),
                owners.len()
            )));
        }
        let commitments = &sharing.commitments;
        if u32::from(commitments.threshold) != doc.seedshare_threshold {
            return Err(ApiError::PermissionDenied(format!(
                "the stored commitments have threshold {}, the manifest's SeedshareThreshold is {}: the store was tampered with",
                commitments.threshold, doc.seedshare_threshold
            )));
        }
        let owner_name = format!("seed-share owner {position}");
        let expected_index = u8::try_from(position + 1)
            .map_err(|_| ApiError::Internal("more than 255 seed-share owners".into()))?;
        if recover.share.index != expected_index {
            return Err(ApiError::InvalidArgument(format!(
                "{owner_name} submitted share {} but owns share {expected_index}",
                recover.share.index
            )));
        }
        seedshare::verify_share(commitments, &recover.share).map_err(|e| {
            ApiError::InvalidArgument(format!(
                "the share of {owner_name} does not match the commitments: {e}"
            ))
        })?;
        let owner = recover.owner;
        recovering.shares.retain(|(held, _)| *held != owner);
        recovering.shares.push((owner, recover.share));
        let need = commitments.threshold;
        let have = recovering.shares.len();
        if have < usize::from(need) {
            return Ok(Response::Recovery(RecoveryProgress::ShareAccepted {
                have,
                need,
            }));
        }

        // Threshold reached: reconstruct, check, and take the state.
        let shares: Vec<Share> = core::mem::take(&mut recovering.shares)
            .into_iter()
            .map(|(_, share)| share)
            .collect();
        let seed = seedshare::reconstruct(commitments, &shares).map_err(|e| {
            ApiError::InvalidArgument(format!("the shares do not reconstruct the seed: {e}"))
        })?;
        let salt = Salt::from_bytes(loaded.seedshares.salt);
        let loaded = loaded.clone();
        let engine = SeedEngine::new(seed, salt, self.env.provider);
        let ready = self.ready_from_engine(engine, loaded, None)?;
        let generation = ready.loaded.history.generation();
        self.accept_head(&ready.loaded)
            .map_err(|why| ApiError::PermissionDenied(format!("refusing to recover: {why}")))?;
        self.phase = Phase::Ready(Box::new(ready));
        Ok(Response::Recovery(RecoveryProgress::Recovered {
            generation,
        }))
    }

    /// Checks the history's signed tree head with the key derived from the
    /// seed, and builds a Ready state with `mesh_key` (a peer's) or a new
    /// random mesh CA key.
    pub(super) fn ready_from_engine(
        &self,
        engine: SeedEngine<'p>,
        loaded: LoadedHistory,
        mesh_key: Option<MeshCaKey>,
    ) -> Result<Ready<'p>, ApiError> {
        let history_key = engine
            .history_signing_key()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        loaded
            .latest
            .head
            .verify(&history_key.verifying_key())
            .map_err(|_| {
                ApiError::InvalidArgument(
                    "the seed does not sign the stored history: wrong shares or secrets, or the store was tampered with"
                        .into(),
                )
            })?;
        let root_key = engine
            .root_ca_key()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mesh_key = match mesh_key {
            Some(key) => key,
            None => {
                MeshCaKey::random(self.env.rng).map_err(|e| ApiError::Internal(e.to_string()))?
            }
        };
        let ca = Ca::new(&root_key, mesh_key, self.now, self.env.rng)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Ready::new(engine, history_key, ca, loaded))
    }
}
