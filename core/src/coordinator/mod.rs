//! The coordinator as a sans-IO state machine.
//!
//! [`Coordinator`] holds the state (Uninitialized, Recovery or Ready; the
//! API each allows is in `docs/protocol.md`) and turns [`Input`]s — API
//! requests, storage results, store snapshots, watch events, peer counts,
//! peer-recovery results and clock ticks — into [`Output`]s — replies,
//! storage writes, requests to reload the store and peer-recovery attempts
//! (scheduled here, in the private module `peer`).
//! It does no I/O and reads no clock: the driver (the guest agent) executes
//! the outputs and feeds back their results, so every decision here can be
//! tested exhaustively.
//!
//! # States and APIs
//!
//! | API | Uninitialized | Recovery | Ready |
//! |---|---|---|---|
//! | `SetManifest` | accepted (first manifest, trust on first use) | `NeedsRecovery` | needs a workload owner's signature |
//! | `GetManifests` | `NoManifest` | `NeedsRecovery` | OK |
//! | `Recover` | `NoManifest` ("no state to recover from") | proceeds | `AlreadyRecovered` |
//! | `NewMeshCert` | `NoManifest` | `NeedsRecovery` | OK |
//! | `PeerRecover` | `NoManifest` | `NeedsRecovery` | OK, to a peer with the coordinator role |
//! | `GetRecoveryState` | `NoManifest` | the history it would recover to | the history it serves |
//!
//! - **Uninitialized**: the store has no history.
//! - **Recovery**: the store has a history but this replica has no secrets
//!   (fresh start), or another writer moved the history past this replica
//!   (stale: a snapshot whose chain extends this replica's, or a lost
//!   compare-and-swap whose winner is a genuine newer history). Seed
//!   shares ([`Request::Recover`]) or a ready peer bring it back.
//! - **Ready**: seed, salt and mesh CA key in memory, history verified.
//!
//! # Persistence
//!
//! A `SetManifest` is answered only after its [`WriteBatch`] succeeded:
//! content-addressed objects first, then a compare-and-swap of the latest
//! record. While a batch is in flight, further updates get
//! `ManifestConflict`; reads and certificates are served from the state
//! before it. A lost compare-and-swap means another writer got there first
//! (or the host says so): the update is refused with `ManifestConflict`
//! and the replica reloads the store, judging what it finds as below.
//!
//! # A Ready replica keeps its secrets
//!
//! The store is the host's. A Ready replica gives up its secrets only for a
//! history it has checked with its own history key: the store's tree head
//! must verify under that key and extend the replica's own head (its
//! transition is in the new chain and the log's root at the replica's size
//! is the replica's root). Anything else — a longer history with any other
//! signature, a fork, a rollback — is refused with [`Output::Forged`] (or
//! a warning) and the replica keeps serving.
//!
//! # Invariants
//!
//! - Ready always has the secrets (the state carries them by type).
//! - The generation of a replica never decreases, and a verified tree head
//!   is never replaced by an older or inconsistent one: snapshots whose
//!   history does not extend the one held are ignored (and reported).

mod api;
mod peer;
mod recovery;
mod set_manifest;
pub mod store;

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod peer_tests;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use api::*;
pub use peer::{PEER_RETRY_SECS, PeerAttempt, PeerTarget};

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::SigningKey as HistoryKey;

use crate::ca::{Ca, WorkloadCertRequest};
use crate::crypto::{CryptoProvider, SecureRandom};
use crate::evidence::ReferenceValues;
use crate::history::tree_head::TreeHead;
use crate::kdf::SeedEngine;
use crate::time::UnixTime;
use store::{LoadedHistory, StoreSnapshot};

/// How often (seconds) a replica without secrets re-reads the store to
/// learn of a history written elsewhere.
pub const RELOAD_INTERVAL_SECS: i64 = 5;

/// Most inclusion proofs one `GetManifests` may ask for.
pub const MAX_INCLUSION_PROOFS: usize = 64;

/// What a Ready replica makes of a stored history other than its own.
enum Judgement {
    /// Signed with this deployment's history key and extending this
    /// replica's history.
    Newer,
    /// Signed with this deployment's history key, and this replica's
    /// history extends it: the store was rolled back.
    Behind,
    /// Anything else: why.
    Forged(String),
}

/// Checks `loaded` with what only a Ready replica has: its history key
/// and its own verified head.
fn judge(provider: &dyn CryptoProvider, ready: &Ready<'_>, loaded: &LoadedHistory) -> Judgement {
    let ours = &ready.loaded.latest.head.head;
    let head = loaded.latest.head.head;
    if loaded
        .latest
        .head
        .verify(&ready.history_key.verifying_key())
        .is_err()
    {
        return Judgement::Forged(format!(
            "the store's latest record (transition {}, size {}) carries a tree head this deployment's history key did not sign; refusing it and serving on",
            loaded.latest.transition, head.size
        ));
    }
    if head.size < ours.size || head.generation < ours.generation {
        return if ready.loaded.contains(&loaded.latest.transition) {
            Judgement::Behind
        } else {
            Judgement::Forged(format!(
                "the store's history (size {}) is older than this replica's (size {}) and not part of it",
                head.size, ours.size
            ))
        };
    }
    let extends = loaded.contains(&ready.loaded.latest.transition)
        && loaded
            .history
            .log()
            .root_at(provider, ours.size)
            .is_ok_and(|root| root == ours.root);
    if !extends {
        return Judgement::Forged(format!(
            "FORK: the store's latest transition {} does not extend this replica's history at size {}; refusing it",
            loaded.latest.transition, ours.size
        ));
    }
    if head.size == ours.size {
        // Same history, another record (a re-signed head or another
        // seed-share record with a valid signature): nothing moved on.
        return Judgement::Forged(format!(
            "the store's latest record differs from this replica's at the same size {}",
            head.size
        ));
    }
    Judgement::Newer
}

/// Who can know the seed of the history in `loaded`: every distinct
/// sharing of its manifests (oldest first) and the current workload owners.
fn deployment_facts(loaded: &LoadedHistory) -> DeploymentFacts {
    let mut sharings: Vec<SharingFacts> = Vec::new();
    for manifest in &loaded.manifests {
        let doc = manifest.doc();
        let owners = doc.seedshare_keys();
        if owners.is_empty() {
            continue;
        }
        let sharing = SharingFacts {
            threshold: u8::try_from(doc.seedshare_threshold).unwrap_or(u8::MAX),
            owners,
        };
        if !sharings.contains(&sharing) {
            sharings.push(sharing);
        }
    }
    DeploymentFacts {
        sharings,
        workload_owners: loaded
            .current()
            .map(|m| {
                m.doc()
                    .workload_owner_pub_keys
                    .iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default(),
        generation: loaded.history.generation(),
    }
}

/// The three states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateName {
    /// No history.
    Uninitialized,
    /// A history, but no secrets (or stale ones).
    Recovery,
    /// Serving.
    Ready,
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uninitialized => "uninitialized",
            Self::Recovery => "recovery",
            Self::Ready => "ready",
        })
    }
}

/// A storage operation's failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The compare-and-swap of the latest record found another value.
    Conflict,
    /// Anything else (I/O, timeout); the text is for logs.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict => f.write_str("the latest record has changed since last read"),
            Self::Failed(why) => write!(f, "storage failed: {why}"),
        }
    }
}

/// What the driver feeds the machine.
pub enum Input {
    /// An API request (already authenticated by the transport).
    Request {
        /// Echoed in the reply.
        id: RequestId,
        /// The request.
        request: Request,
    },
    /// The result of a [`WriteBatch`].
    WriteDone {
        /// [`WriteBatch::id`].
        batch: u64,
        /// Whether the whole batch was applied.
        result: Result<(), StoreError>,
    },
    /// A fresh snapshot of the store (after [`Output::LoadSnapshot`]).
    Snapshot(Result<StoreSnapshot, StoreError>),
    /// The store's watch saw a new latest record.
    LatestChanged(Vec<u8>),
    /// How many ready peers the driver can currently reach.
    ReadyPeers(usize),
    /// Secrets from a peer the driver attested against
    /// [`Output::StartPeerRecovery`]'s [`PeerAttempt`] (peer recovery):
    /// the attempt ended with them.
    PeerSecrets(PeerSecrets),
    /// The peer-recovery attempt ended without secrets (no peer could be
    /// reached or attested, or none had any).
    PeerRecoveryFailed,
    /// The clock.
    Tick(UnixTime),
}

/// What the machine asks of the driver.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // replies are the common case; boxing them buys nothing
pub enum Output {
    /// Answer a request.
    Reply {
        /// [`Input::Request::id`].
        id: RequestId,
        /// The answer.
        result: Result<Response, ApiError>,
    },
    /// Write these objects, then compare-and-swap the latest record, and
    /// report with [`Input::WriteDone`].
    Write(WriteBatch),
    /// Read the whole store and report with [`Input::Snapshot`].
    LoadSnapshot,
    /// The state changed (for probes, metrics and logs).
    StateChanged(StateName),
    /// Something the operator must hear of (a rollback attempt, a store
    /// behind this replica).
    Warning(String),
    /// The store holds a history this replica can prove forged (a tree
    /// head its history key did not sign, or one that does not extend its
    /// own): refused, and the replica keeps serving. Drivers log it loudly
    /// (`FORGED: …`) and count it.
    Forged(String),
    /// Dial the ready peers now, attest them against the attempt, and
    /// report with [`Input::PeerSecrets`] (the first secrets received) or
    /// [`Input::PeerRecoveryFailed`]. At most one attempt is in flight.
    StartPeerRecovery(PeerAttempt),
    /// A peer-recovery attempt ended (for metrics and logs): `recovered`
    /// once its secrets made this replica Ready.
    PeerRecoveryEnded {
        /// Whether the replica adopted the secrets.
        recovered: bool,
    },
}

/// One `SetManifest`'s writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteBatch {
    /// Echo in [`Input::WriteDone`].
    pub id: u64,
    /// The request whose writes these are (for logs: the driver carries
    /// the id from the connection to the store); `None` when no request
    /// caused them.
    pub request: Option<RequestId>,
    /// Content-addressed objects (idempotent puts), to write first.
    pub puts: Vec<(String, Vec<u8>)>,
    /// The latest record the update builds on (`None`: the key must not
    /// exist).
    pub latest_old: Option<Vec<u8>>,
    /// The new latest record.
    pub latest_new: Vec<u8>,
}

/// Where the machine gets its cryptography and randomness.
#[derive(Clone, Copy)]
pub struct Env<'p> {
    /// Hashes, signature checks, HKDF.
    pub provider: &'p dyn CryptoProvider,
    /// Seeds, salts, mesh CA keys, serials.
    pub rng: &'p dyn SecureRandom,
}

/// The secrets and the verified history of a Ready replica.
struct Ready<'p> {
    engine: SeedEngine<'p>,
    history_key: HistoryKey,
    ca: Ca,
    loaded: LoadedHistory,
    /// What every mesh certificate states about the deployment, derived
    /// once from `loaded` (not per request).
    facts: DeploymentFacts,
}

impl<'p> Ready<'p> {
    fn new(engine: SeedEngine<'p>, history_key: HistoryKey, ca: Ca, loaded: LoadedHistory) -> Self {
        let facts = deployment_facts(&loaded);
        Self {
            engine,
            history_key,
            ca,
            loaded,
            facts,
        }
    }
}

enum Phase<'p> {
    Uninitialized,
    Recovery(Box<recovery::Recovering>),
    Ready(Box<Ready<'p>>),
}

struct Pending<'p> {
    batch: u64,
    request: RequestId,
    next: Box<Ready<'p>>,
    reply: ManifestSet,
}

/// The coordinator's state machine. See the [module docs](self).
pub struct Coordinator<'p> {
    env: Env<'p>,
    now: UnixTime,
    phase: Phase<'p>,
    pending: Option<Pending<'p>>,
    next_batch: u64,
    ready_peers: usize,
    /// When to ask the driver for a peer-recovery attempt.
    peer_schedule: peer::PeerSchedule,
    /// The newest tree head this replica has verified or written.
    highest: Option<TreeHead>,
    loading: bool,
    last_load: UnixTime,
}

impl<'p> Coordinator<'p> {
    /// Starts a replica from what the store held at boot.
    pub fn new(
        env: Env<'p>,
        now: UnixTime,
        snapshot: Result<StoreSnapshot, StoreError>,
    ) -> (Self, Vec<Output>) {
        let mut machine = Self {
            env,
            now,
            phase: Phase::Uninitialized,
            pending: None,
            next_batch: 1,
            ready_peers: 0,
            peer_schedule: peer::PeerSchedule::default(),
            highest: None,
            loading: false,
            last_load: now,
        };
        let mut out = Vec::new();
        machine.on_snapshot(snapshot, &mut out);
        out.push(Output::StateChanged(machine.state()));
        (machine, out)
    }

    /// The current state.
    pub fn state(&self) -> StateName {
        match self.phase {
            Phase::Uninitialized => StateName::Uninitialized,
            Phase::Recovery(_) => StateName::Recovery,
            Phase::Ready(_) => StateName::Ready,
        }
    }

    /// The manifest generation this replica serves (0 unless Ready).
    pub fn generation(&self) -> u64 {
        match &self.phase {
            Phase::Ready(ready) => ready.loaded.history.generation(),
            _ => 0,
        }
    }

    /// The newest tree head this replica has verified or written.
    pub fn highest_tree_head(&self) -> Option<TreeHead> {
        self.highest
    }

    /// The deployment's Ed25519 history public key (what owners' update
    /// signatures name as [`UpdateIntent::deployment`]); `None` unless
    /// Ready.
    pub fn history_public_key(&self) -> Option<[u8; 32]> {
        match &self.phase {
            Phase::Ready(ready) => Some(ready.history_key.verifying_key().to_bytes()),
            _ => None,
        }
    }

    /// What this replica would recover to: `None` unless in Recovery with
    /// a readable history.
    pub fn recovery_target(&self) -> Option<RecoveryTarget> {
        let Phase::Recovery(recovering) = &self.phase else {
            return None;
        };
        let loaded = recovering.loaded().ok()?;
        Some(RecoveryTarget {
            latest_transition: loaded.latest.transition,
            seedshares: loaded.latest.seedshares(),
        })
    }

    /// What the mesh transport verifies workloads against: the generation
    /// (to echo in [`NewMeshCert::generation`]) and the current manifest's
    /// reference values. `None` unless Ready.
    pub fn mesh_reference(&self) -> Option<(u64, &ReferenceValues)> {
        match &self.phase {
            Phase::Ready(ready) => Some((
                ready.loaded.history.generation(),
                &ready.loaded.current()?.doc().reference_values,
            )),
            _ => None,
        }
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let before = self.state();
        let mut out = Vec::new();
        match input {
            Input::Request { id, request } => {
                let reply = self.on_request(id, request, &mut out);
                if let Some(result) = reply {
                    out.push(Output::Reply { id, result });
                }
            }
            Input::WriteDone { batch, result } => self.on_write_done(batch, result, &mut out),
            Input::Snapshot(snapshot) => {
                self.loading = false;
                self.on_snapshot(snapshot, &mut out);
            }
            Input::LatestChanged(bytes) => self.on_latest_changed(&bytes, &mut out),
            Input::ReadyPeers(n) => self.on_ready_peers(n),
            Input::PeerSecrets(secrets) => self.on_peer_attempt_secrets(secrets, &mut out),
            Input::PeerRecoveryFailed => self.on_peer_attempt_failed(&mut out),
            Input::Tick(now) => self.on_tick(now, &mut out),
        }
        let after = self.state();
        if after != before {
            out.push(Output::StateChanged(after));
        }
        self.schedule_peer_recovery(&mut out);
        out
    }

    /// `None`: the reply comes later (after a write).
    fn on_request(
        &mut self,
        id: RequestId,
        request: Request,
        out: &mut Vec<Output>,
    ) -> Option<Result<Response, ApiError>> {
        match request {
            Request::SetManifest(set) => self.set_manifest(id, set, out),
            Request::GetManifests(get) => Some(self.get_manifests(&get)),
            Request::Recover(recover) => Some(self.recover(recover)),
            Request::NewMeshCert(request) => Some(self.new_mesh_cert(&request)),
            Request::PeerRecover(request) => Some(self.peer_recover(&request)),
            Request::GetRecoveryState(get) => Some(self.recovery_state(&get)),
        }
    }

    fn ready(&self) -> Result<&Ready<'p>, ApiError> {
        match &self.phase {
            Phase::Ready(ready) => Ok(ready),
            Phase::Recovery(_) => Err(ApiError::NeedsRecovery),
            Phase::Uninitialized => Err(ApiError::NoManifest(
                "set a manifest first (`accord set`)".into(),
            )),
        }
    }

    fn get_manifests(&self, get: &GetManifests) -> Result<Response, ApiError> {
        let ready = self.ready()?;
        let provider = self.env.provider;
        let loaded = &ready.loaded;
        let log = loaded.history.log();
        let size = log.size();
        let consistency_proof = match get.consistency_from {
            None => None,
            Some(old) => Some(log.consistency_proof(provider, old, size).map_err(|e| {
                ApiError::InvalidArgument(format!(
                    "no consistency proof from size {old} to {size}: {e}"
                ))
            })?),
        };
        if get.inclusion_of.len() > MAX_INCLUSION_PROOFS {
            return Err(ApiError::InvalidArgument(format!(
                "{} inclusion proofs asked for, at most {MAX_INCLUSION_PROOFS} per request",
                get.inclusion_of.len()
            )));
        }
        let mut indices = get.inclusion_of.clone();
        indices.sort_unstable();
        indices.dedup();
        let mut inclusion_proofs = Vec::with_capacity(indices.len());
        for index in indices {
            let proof = log.inclusion_proof(provider, index, size).map_err(|e| {
                ApiError::InvalidArgument(format!("no inclusion proof for index {index}: {e}"))
            })?;
            inclusion_proofs.push((index, proof));
        }
        Ok(Response::Manifests(Manifests {
            manifests: loaded.manifests.iter().map(|m| m.raw().to_vec()).collect(),
            policies: loaded
                .policy_order
                .iter()
                .filter_map(|hash| loaded.policies.get(hash).cloned())
                .collect(),
            root_ca: ready.ca.root_cert().to_vec(),
            mesh_ca: ready.ca.mesh_ca_cert().to_vec(),
            latest_transition: loaded.latest.transition,
            signed_tree_head: loaded.latest.head,
            history_public_key: ready.history_key.verifying_key().to_bytes(),
            consistency_proof,
            inclusion_proofs,
            seedshare_record: loaded.seedshares.encode(),
        }))
    }

    /// The Ready state and the current manifest's policy for evidence
    /// verified against `generation` with `claims`: refused if the
    /// manifest moved on, or the policy hash is missing or unknown.
    fn attested_policy(
        &self,
        generation: u64,
        claims: &crate::evidence::Claims,
    ) -> Result<(&Ready<'p>, &crate::manifest::PolicyEntry, [u8; 32]), ApiError> {
        let ready = self.ready()?;
        let current = ready.loaded.history.generation();
        if generation != current {
            return Err(ApiError::ManifestConflict(format!(
                "the evidence was verified against generation {generation}, the manifest is now at generation {current}: reconnect"
            )));
        }
        let manifest = ready
            .loaded
            .current()
            .ok_or_else(|| ApiError::Internal("ready without a manifest".into()))?;
        let policy_hash = claims.policy_hash().ok_or_else(|| {
            ApiError::PermissionDenied("the evidence carries no policy hash".into())
        })?;
        let policy = manifest.doc().policy(&policy_hash).ok_or_else(|| {
            ApiError::PermissionDenied(format!(
                "policy hash {} is not in the manifest's Policies",
                crate::hex::Hex(&policy_hash)
            ))
        })?;
        Ok((ready, policy, policy_hash))
    }

    fn new_mesh_cert(&self, request: &NewMeshCert) -> Result<Response, ApiError> {
        let (ready, policy, _) = self.attested_policy(request.generation, &request.claims)?;
        let secret_id = Some(policy.workload_secret_id.as_str()).filter(|id| !id.is_empty());
        let leaf = ready
            .ca
            .issue(
                &WorkloadCertRequest {
                    public_key_spki: &request.public_key_spki,
                    sans: &policy.sans,
                    workload_secret_id: secret_id,
                    claims: Some(&request.claims),
                },
                self.now,
                self.env.rng,
            )
            .map_err(|e| ApiError::InvalidArgument(format!("cannot issue the certificate: {e}")))?;
        let workload_secret = match secret_id {
            Some(id) => Some(
                ready
                    .engine
                    .workload_secret(id)
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Response::MeshCert(MeshCert {
            cert_chain: alloc::vec![leaf, ready.ca.intermediate_cert().to_vec()],
            mesh_ca: ready.ca.mesh_ca_cert().to_vec(),
            root_ca: ready.ca.root_cert().to_vec(),
            workload_secret,
            deployment: ready.facts.clone(),
        }))
    }

    fn on_write_done(&mut self, batch: u64, result: Result<(), StoreError>, out: &mut Vec<Output>) {
        let Some(pending) = self.pending.take_if(|p| p.batch == batch) else {
            out.push(Output::Warning(format!(
                "storage reported on write batch {batch}, which is not in flight"
            )));
            return;
        };
        let reply = match result {
            Ok(()) => {
                self.highest = Some(pending.next.loaded.latest.head.head);
                self.phase = Phase::Ready(pending.next);
                Ok(Response::ManifestSet(pending.reply))
            }
            Err(StoreError::Conflict) => {
                // Someone else wrote the latest record — or the host claims
                // so. Keep serving; the snapshot decides whether a genuine
                // newer history exists (then this replica is stale).
                self.request_snapshot(out);
                Err(ApiError::ManifestConflict(
                    "the history changed while this update was being stored; fetch it and retry"
                        .into(),
                ))
            }
            Err(StoreError::Failed(why)) => Err(ApiError::Internal(format!(
                "could not store the update: {why}"
            ))),
        };
        out.push(Output::Reply {
            id: pending.request,
            result: reply,
        });
    }

    /// Drops the secrets. Uses `loaded` as the history to recover, or asks
    /// for a snapshot when there is none.
    fn enter_recovery(&mut self, loaded: Option<LoadedHistory>, out: &mut Vec<Output>) {
        let reload = loaded.is_none();
        self.phase = Phase::Recovery(Box::new(recovery::Recovering::new(
            loaded.ok_or_else(|| "waiting for the store to be read".to_string()),
        )));
        if reload {
            self.request_snapshot(out);
        }
    }

    /// Asks for a snapshot unless one is already on its way.
    fn request_snapshot(&mut self, out: &mut Vec<Output>) {
        if !self.loading {
            self.loading = true;
            self.last_load = self.now;
            out.push(Output::LoadSnapshot);
        }
    }

    fn on_latest_changed(&mut self, bytes: &[u8], out: &mut Vec<Output>) {
        if let Phase::Ready(ready) = &self.phase
            && ready.loaded.latest_bytes == bytes
        {
            return;
        }
        self.request_snapshot(out);
    }

    fn on_tick(&mut self, now: UnixTime, out: &mut Vec<Output>) {
        if now > self.now {
            self.now = now;
        }
        let waiting = !matches!(self.phase, Phase::Ready(_));
        if waiting && !self.loading && self.now.0 - self.last_load.0 >= RELOAD_INTERVAL_SECS {
            self.loading = true;
            self.last_load = self.now;
            out.push(Output::LoadSnapshot);
        }
    }

    fn on_snapshot(&mut self, snapshot: Result<StoreSnapshot, StoreError>, out: &mut Vec<Output>) {
        let loaded = snapshot
            .map_err(|e| e.to_string())
            .and_then(|s| store::load(self.env.provider, &s).map_err(|e| e.to_string()));
        match (&mut self.phase, loaded) {
            (_, Err(why)) => {
                out.push(Output::Warning(format!("the store cannot be read: {why}")));
                if let Phase::Recovery(recovering) = &mut self.phase {
                    recovering.replace(Err(why));
                } else if matches!(self.phase, Phase::Uninitialized) {
                    // Fail closed: an unreadable store is not an empty one.
                    self.phase = Phase::Recovery(Box::new(recovery::Recovering::new(Err(why))));
                }
                // Ready: keep serving what was verified.
            }
            (Phase::Uninitialized, Ok(None)) => {}
            (Phase::Uninitialized, Ok(Some(loaded))) => {
                self.phase = Phase::Recovery(Box::new(recovery::Recovering::new(Ok(loaded))));
            }
            (Phase::Recovery(recovering), Ok(None)) => {
                if self.highest.is_some() {
                    out.push(Output::Warning(
                        "the store lost its history (no latest record); refusing to start over"
                            .into(),
                    ));
                    recovering.replace(Err("the store has no history any more".into()));
                } else {
                    self.phase = Phase::Uninitialized;
                }
            }
            (Phase::Recovery(recovering), Ok(Some(loaded))) => {
                if let Some(seen) = &self.highest
                    && loaded.latest.head.head.size < seen.size
                {
                    let why = format!(
                        "the store's history (size {}) is older than one this replica has seen (size {}): rollback refused",
                        loaded.latest.head.head.size, seen.size
                    );
                    out.push(Output::Warning(why.clone()));
                    recovering.replace(Err(why));
                } else {
                    recovering.replace(Ok(loaded));
                }
            }
            (Phase::Ready(_), Ok(None)) => out.push(Output::Warning(
                "the store has no history but this replica serves one; keeping it".into(),
            )),
            (Phase::Ready(ready), Ok(Some(loaded))) => {
                let ours = ready.loaded.latest.transition;
                if loaded.latest.transition == ours
                    && loaded.latest_bytes == ready.loaded.latest_bytes
                {
                    return;
                }
                match judge(self.env.provider, ready, &loaded) {
                    Judgement::Newer => {
                        // A genuine newer history (signed with this
                        // deployment's key): another replica moved on.
                        // Its head is verified: nothing older is accepted
                        // from now on, even while recovering.
                        self.highest = Some(loaded.latest.head.head);
                        self.enter_recovery(Some(loaded), out);
                    }
                    Judgement::Forged(why) => out.push(Output::Forged(why)),
                    Judgement::Behind => out.push(Output::Warning(
                        "the store's history is behind this replica's (a rollback); ignoring it"
                            .into(),
                    )),
                }
            }
        }
    }

    /// Records the tree head of a verified history, refusing one that is
    /// older than, or forks from, the newest this replica has seen.
    fn accept_head(&mut self, loaded: &LoadedHistory) -> Result<(), String> {
        let head = loaded.latest.head.head;
        if let Some(seen) = &self.highest {
            if head.size < seen.size || head.generation < seen.generation {
                return Err(format!(
                    "the history (size {}) is older than one this replica has seen (size {})",
                    head.size, seen.size
                ));
            }
            let root = loaded
                .history
                .log()
                .root_at(self.env.provider, seen.size)
                .map_err(|e| e.to_string())?;
            if root != seen.root {
                return Err(format!(
                    "the history forks from the one this replica has seen at size {}",
                    seen.size
                ));
            }
        }
        self.highest = Some(head);
        Ok(())
    }
}
