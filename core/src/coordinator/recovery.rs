//! User recovery: seed-share owners submit their shares one by one; at the
//! threshold the seed is reconstructed, checked against the history's
//! signed tree head, and the replica becomes Ready with a new mesh CA key.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::store::LoadedHistory;
use super::{ApiError, Coordinator, Phase, Ready, Recover, RecoveryProgress, Response};
use crate::ca::Ca;
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
        let manifest = loaded
            .current()
            .ok_or_else(|| ApiError::Internal("the history has no manifest".into()))?;
        let owners = manifest.doc().seedshare_keys();
        // Owner `i` (manifest order) holds the share at index `i + 1`. A
        // transport that authenticated the owner's key names it; otherwise
        // the share's index names the owner, and the share itself — which
        // only that owner's key could unseal, and which must match the
        // public commitments — is the proof.
        let position = match &recover.owner {
            Some(key) => owners.iter().position(|k| k == key).ok_or_else(|| {
                ApiError::PermissionDenied(
                    "the key is not a seed-share owner of the current manifest".into(),
                )
            })?,
            None => usize::from(recover.share.index)
                .checked_sub(1)
                .filter(|p| *p < owners.len())
                .ok_or_else(|| {
                    ApiError::InvalidArgument(format!(
                        "share {} belongs to no seed-share owner of the current manifest ({} owners)",
                        recover.share.index,
                        owners.len()
                    ))
                })?,
        };
        let owner = *owners
            .get(position)
            .ok_or_else(|| ApiError::Internal("seed-share owner out of range".into()))?;
        let commitments = loaded.seedshares.commitments.as_ref().ok_or_else(|| {
            ApiError::PermissionDenied(
                "the manifest was set without seed-share owners: only a peer can recover this replica".into(),
            )
        })?;
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
        Ok(Ready {
            engine,
            history_key,
            ca,
            loaded,
        })
    }
}
