//! `SetManifest`: the first manifest (which creates every secret) and
//! authorized updates (which need a workload owner's signature over the
//! [`UpdateIntent`]: this deployment, the next transition, the re-share
//! flag).
//!
//! An update is authorized before its manifest is parsed, and the number
//! of signatures is bounded by the number of owner keys (one per key), so
//! an unauthorized request costs at most a few signature checks.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ed25519_dalek::{Signature, VerifyingKey};

use super::store::{self, LatestRecord, LoadedHistory, SeedShareRecord};
use super::{
    ApiError, Coordinator, ManifestSet, Output, OwnerSignature, Pending, Phase, Ready, RequestId,
    Response, SetManifest, UpdateIntent, WriteBatch, next_transition,
};
use crate::ca::Ca;
use crate::crypto::EcCurve;
use crate::history::History;
use crate::history::objects::{ObjectHash, ObjectKind};
use crate::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};
use crate::manifest::{Manifest, OwnerKey};
use crate::seedshare::{self, SeedShareDocument};

fn internal(what: &str, e: impl core::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what}: {e}"))
}

/// A manifest and its policies, checked.
struct Checked {
    manifest: Manifest,
    policies: BTreeMap<[u8; 32], Vec<u8>>,
    order: Vec<[u8; 32]>,
}

impl<'p> Coordinator<'p> {
    fn check_request(&self, set: &SetManifest) -> Result<Checked, ApiError> {
        let provider = self.env.provider;
        let manifest = Manifest::from_json(&set.manifest)
            .map_err(|e| ApiError::InvalidArgument(format!("manifest: {e}")))?;
        if let Err(errors) = manifest.validate() {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(ApiError::InvalidArgument(format!(
                "the manifest is invalid: {}",
                text.join("; ")
            )));
        }
        let mut given = BTreeMap::new();
        for policy in &set.policies {
            given.insert(provider.sha256(&[policy]), policy.clone());
        }
        let mut policies = BTreeMap::new();
        let mut order = Vec::new();
        for hash in store::manifest_policy_hashes(&manifest).map_err(ApiError::InvalidArgument)? {
            let policy = given.remove(&hash).ok_or_else(|| {
                ApiError::InvalidArgument(format!(
                    "no policy provided for hash {}",
                    crate::hex::Hex(&hash)
                ))
            })?;
            policies.insert(hash, policy);
            order.push(hash);
        }
        if let Some(extra) = given.keys().next() {
            return Err(ApiError::InvalidArgument(format!(
                "policy {} is not named in the manifest's Policies",
                crate::hex::Hex(extra)
            )));
        }
        Ok(Checked {
            manifest,
            policies,
            order,
        })
    }

    pub(super) fn set_manifest(
        &mut self,
        id: RequestId,
        set: SetManifest,
        out: &mut Vec<Output>,
    ) -> Option<Result<Response, ApiError>> {
        if self.pending.is_some() {
            return Some(Err(ApiError::ManifestConflict(
                "another manifest update is being stored; retry".into(),
            )));
        }
        let prepared = match &self.phase {
            Phase::Recovery(_) => Err(ApiError::NeedsRecovery),
            Phase::Uninitialized => self.prepare_first(&set),
            Phase::Ready(ready) => self.prepare_update(ready, &set),
        };
        match prepared {
            Err(e) => Some(Err(e)),
            Ok((next, reply, puts, latest_old)) => {
                let batch = self.next_batch;
                self.next_batch += 1;
                out.push(Output::Write(WriteBatch {
                    id: batch,
                    request: Some(id),
                    puts,
                    latest_old,
                    latest_new: next.loaded.latest_bytes.clone(),
                }));
                self.pending = Some(Pending {
                    batch,
                    request: id,
                    next,
                    reply,
                });
                None
            }
        }
    }

    fn prepare_first(&self, set: &SetManifest) -> Result<Prepared<'p>, ApiError> {
        if set
            .expected_previous_transition
            .is_some_and(|t| t != [0; 32])
        {
            return Err(ApiError::ManifestConflict(
                "no manifest is set yet, but the request expects a previous transition".into(),
            ));
        }
        let checked = self.check_request(set)?;
        let (rng, provider) = (self.env.rng, self.env.provider);
        let seed = SecretSeed::generate(rng).map_err(|e| internal("seed", e))?;
        let salt = Salt::generate(rng).map_err(|e| internal("salt", e))?;
        let engine = SeedEngine::new(seed, salt, provider);
        let (record, document) = self.share_seed(&engine, &checked.manifest)?;
        self.build(
            engine,
            History::new(),
            Vec::new(),
            checked,
            record,
            document,
            None,
        )
    }

    fn prepare_update(
        &self,
        ready: &Ready<'p>,
        set: &SetManifest,
    ) -> Result<Prepared<'p>, ApiError> {
        let provider = self.env.provider;
        let current = ready
            .loaded
            .current()
            .ok_or_else(|| ApiError::Internal("ready without a manifest".into()))?;
        let latest = ready.loaded.latest.transition;
        if let Some(expected) = set.expected_previous_transition
            && expected != latest.0
        {
            return Err(ApiError::ManifestConflict(format!(
                "expected previous transition {}, but the latest is {latest}",
                crate::hex::Hex(&expected)
            )));
        }
        let owners = current.doc().owner_keys();
        if owners.is_empty() {
            return Err(ApiError::PermissionDenied(
                "the current manifest has no WorkloadOwnerPubKeys: the deployment is immutable"
                    .into(),
            ));
        }
        let (_, next) = next_transition(provider, &set.manifest, Some(latest));
        let intent = UpdateIntent {
            deployment: ready.history_key.verifying_key().to_bytes(),
            next_transition: next,
            reshare: set.reshare,
        };
        authorize(self, &owners, &set.signatures, &intent)?;
        let checked = self.check_request(set)?;
        let (old, new) = (current.doc(), checked.manifest.doc());
        let changed = old.seedshare_keys() != new.seedshare_keys()
            || old.seedshare_threshold != new.seedshare_threshold;
        if changed && !set.reshare {
            return Err(ApiError::PermissionDenied(
                "the update changes SeedshareOwnerPubKeys or SeedshareThreshold: re-share explicitly (`accord set --reshare`) to hand the seed to the new owners"
                    .into(),
            ));
        }
        let engine = SeedEngine::new(
            ready.engine.seed().clone(),
            ready.engine.salt().clone(),
            provider,
        );
        let (record, document) = if set.reshare {
            self.share_seed(&engine, &checked.manifest)?
        } else {
            (ready.loaded.seedshares.clone(), None)
        };
        self.build(
            engine,
            ready.loaded.history.clone(),
            ready.loaded.manifests.clone(),
            checked,
            record,
            document,
            Some(&ready.loaded),
        )
    }

    /// Splits the engine's seed among `manifest`'s seed-share owners (no
    /// document without owners) and the record that goes with it.
    fn share_seed(
        &self,
        engine: &SeedEngine<'p>,
        manifest: &Manifest,
    ) -> Result<(SeedShareRecord, Option<SeedShareDocument>), ApiError> {
        let doc = manifest.doc();
        let owners = doc.seedshare_keys();
        let document = if owners.is_empty() {
            None
        } else {
            let threshold = u8::try_from(doc.seedshare_threshold)
                .map_err(|_| ApiError::InvalidArgument("SeedshareThreshold is above 255".into()))?;
            Some(
                seedshare::split(
                    engine.seed(),
                    engine.salt(),
                    &owners,
                    threshold,
                    self.env.provider,
                    self.env.rng,
                )
                .map_err(|e| ApiError::InvalidArgument(format!("seed shares: {e}")))?,
            )
        };
        let record = match &document {
            Some(document) => SeedShareRecord::from_document(document),
            None => SeedShareRecord::salt_only(*engine.salt().as_bytes()),
        };
        Ok((record, document))
    }

    /// Builds the next Ready state and the writes that persist it.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        engine: SeedEngine<'p>,
        mut history: History,
        mut manifests: Vec<Manifest>,
        checked: Checked,
        seedshares: SeedShareRecord,
        document: Option<SeedShareDocument>,
        previous: Option<&LoadedHistory>,
    ) -> Result<Prepared<'p>, ApiError> {
        let provider = self.env.provider;
        let manifest_hash = ObjectHash::of(provider, checked.manifest.raw());
        let (transition, address) = history.append(provider, manifest_hash);
        let history_key = engine
            .history_signing_key()
            .map_err(|e| internal("history key", e))?;
        let root_key = engine
            .root_ca_key()
            .map_err(|e| internal("root CA key", e))?;
        let mesh_key = MeshCaKey::random(self.env.rng).map_err(|e| internal("mesh CA key", e))?;
        let ca = Ca::new(&root_key, mesh_key, self.now, self.env.rng)
            .map_err(|e| internal("certificate authority", e))?;
        let seedshares_bytes = seedshares.encode();
        let seedshares_hash = ObjectHash::of(provider, &seedshares_bytes);
        let latest = LatestRecord {
            transition: address,
            head: history
                .tree_head(provider, &seedshares_hash)
                .sign(&history_key),
        };

        let mut puts = Vec::new();
        let mut policies = previous.map(|p| p.policies.clone()).unwrap_or_default();
        let mut policy_order = previous.map(|p| p.policy_order.clone()).unwrap_or_default();
        for hash in &checked.order {
            if let Some(bytes) = checked.policies.get(hash) {
                puts.push((
                    store::object_key(ObjectKind::Policy, &ObjectHash(*hash)),
                    bytes.clone(),
                ));
                if policies.insert(*hash, bytes.clone()).is_none() {
                    policy_order.push(*hash);
                }
            }
        }
        puts.push((
            store::object_key(ObjectKind::Manifest, &manifest_hash),
            checked.manifest.raw().to_vec(),
        ));
        puts.push((
            store::object_key(ObjectKind::Transition, &address),
            transition.encode().to_vec(),
        ));
        puts.push((
            store::object_key(ObjectKind::SeedShares, &seedshares_hash),
            seedshares_bytes,
        ));
        let mut transitions = previous.map(|p| p.transitions.clone()).unwrap_or_default();
        transitions.push(address);
        manifests.push(checked.manifest);
        let generation = history.generation();
        let loaded = LoadedHistory {
            latest_bytes: latest.encode(),
            latest,
            transitions,
            manifests,
            policies,
            policy_order,
            seedshares,
            history,
        };
        let reply = ManifestSet {
            transition: address,
            generation,
            root_ca: ca.root_cert().to_vec(),
            mesh_ca: ca.mesh_ca_cert().to_vec(),
            seed_share_document: document,
        };
        let next = Box::new(Ready::new(engine, history_key, ca, loaded));
        Ok((next, reply, puts, previous.map(|p| p.latest_bytes.clone())))
    }
}

type Prepared<'a> = (
    Box<Ready<'a>>,
    ManifestSet,
    Vec<(String, Vec<u8>)>,
    Option<Vec<u8>>,
);

/// Accepts the update if at least one signature by a current owner key
/// verifies over the intent's message. Refuses, before checking any
/// signature, more signatures than owner keys and two signatures by one key.
fn authorize(
    machine: &Coordinator<'_>,
    owners: &[OwnerKey],
    signatures: &[OwnerSignature],
    intent: &UpdateIntent,
) -> Result<(), ApiError> {
    if signatures.is_empty() {
        return Err(ApiError::PermissionDenied(
            "updating the manifest needs a signature by a key of the current WorkloadOwnerPubKeys (`accord set --workload-owner-key` or `accord sign`)".into(),
        ));
    }
    if signatures.len() > owners.len() {
        return Err(ApiError::InvalidArgument(format!(
            "{} signatures, but the current manifest has {} workload owner key(s): at most one signature per key",
            signatures.len(),
            owners.len()
        )));
    }
    let mut keys = Vec::with_capacity(signatures.len());
    for (index, signature) in signatures.iter().enumerate() {
        if keys.contains(&&signature.public_key) {
            return Err(ApiError::InvalidArgument(format!(
                "signature {index} repeats the key of an earlier signature"
            )));
        }
        keys.push(&signature.public_key);
    }
    let message = intent.message();
    let mut reasons = Vec::new();
    for (index, signature) in signatures.iter().enumerate() {
        let key = match OwnerKey::from_spki(&signature.public_key) {
            Ok(key) => key,
            Err(e) => {
                reasons.push(format!("signature {index}: public key: {e}"));
                continue;
            }
        };
        if !owners.contains(&key) {
            reasons.push(format!(
                "signature {index}: the key is not a workload owner of the current manifest"
            ));
            continue;
        }
        let ok = match &key {
            OwnerKey::Ed25519(public) => {
                let Ok(signature) = <[u8; 64]>::try_from(signature.signature.as_slice()) else {
                    reasons.push(format!(
                        "signature {index}: Ed25519 signatures are 64 bytes"
                    ));
                    continue;
                };
                VerifyingKey::from_bytes(public).is_ok_and(|k| {
                    k.verify_strict(&message, &Signature::from_bytes(&signature))
                        .is_ok()
                })
            }
            OwnerKey::P384(point) => machine
                .env
                .provider
                .verify_ecdsa(EcCurve::P384, point, &message, &signature.signature)
                .is_ok(),
        };
        if ok {
            return Ok(());
        }
        reasons.push(format!(
            "signature {index}: does not verify over the update of deployment {} to transition {}{}",
            crate::hex::Hex(&intent.deployment),
            intent.next_transition,
            if intent.reshare {
                " with re-share"
            } else {
                " without re-share"
            }
        ));
    }
    Err(ApiError::InvalidSignature(reasons.join("; ")))
}
