//! The coordinator's API as the state machine sees it: requests, responses
//! and typed errors, independent of any transport.
//!
//! The transports (user API, mesh API, recovery) are built on top of these
//! types; they authenticate the peer first and pass what they proved in the
//! request (the verified evidence claims, the seed-share owner's key).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::crypto::CryptoProvider;
use crate::evidence::Claims;
use crate::history::merkle::Hash;
use crate::history::objects::{ObjectHash, Transition};
use crate::history::tree_head::SignedTreeHead;
use crate::kdf::{MeshCaKey, Salt, SecretSeed, WorkloadSecret};
use crate::manifest::SeedshareKey;
use crate::seedshare::{SeedShareDocument, Share};

/// The driver's handle for one request; echoed in its reply.
pub type RequestId = u64;

/// What a client asks of the coordinator.
#[allow(clippy::large_enum_variant)]
pub enum Request {
    /// Set the first manifest, or update it with an owner's signature.
    SetManifest(SetManifest),
    /// Read the history.
    GetManifests(GetManifests),
    /// Submit one seed share (user recovery).
    Recover(Recover),
    /// Issue a mesh certificate to an attested workload.
    NewMeshCert(NewMeshCert),
    /// Hand the secrets to an attested peer coordinator (peer recovery).
    PeerRecover(PeerRecover),
    /// What a replica would recover to (user recovery, first step).
    GetRecoveryState(GetRecoveryState),
}

/// `SetManifest`.
#[derive(Clone, Debug, Default)]
pub struct SetManifest {
    /// The manifest's exact JSON bytes.
    pub manifest: Vec<u8>,
    /// Every policy the manifest names, as bytes (their SHA-256 is the key).
    pub policies: Vec<Vec<u8>>,
    /// Compare-and-swap: the update applies only if the latest transition is
    /// this one (`None`: no check). For the first manifest, only `None` or
    /// the zero hash is accepted.
    pub expected_previous_transition: Option<[u8; 32]>,
    /// Signatures over the [`UpdateIntent::message`] of this update by
    /// keys of the current manifest's `WorkloadOwnerPubKeys`, at most one
    /// per key and at most as many as there are keys. Not needed for the
    /// first manifest.
    pub signatures: Vec<OwnerSignature>,
    /// Re-share the seed to the new manifest's `SeedshareOwnerPubKeys`
    /// with its `SeedshareThreshold` (the seed and salt stay; the
    /// coordinator refuses the old shares from then on, but they still
    /// rebuild the seed offline). An update that changes either is refused
    /// without it, and the owners' signatures must cover it
    /// ([`UpdateIntent::reshare`]).
    pub reshare: bool,
}

/// A workload owner's signature over an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerSignature {
    /// The signer's SubjectPublicKeyInfo DER (Ed25519 or ECDSA P-384), as
    /// listed in the current manifest.
    pub public_key: Vec<u8>,
    /// Ed25519: 64 bytes (RFC 8032). ECDSA P-384: `r ‖ s`, 96 bytes, over
    /// SHA-384 of the message.
    pub signature: Vec<u8>,
}

/// `GetManifests`: the history, and the proofs the client asks for.
#[derive(Clone, Debug, Default)]
pub struct GetManifests {
    /// The log size of the tree head the client saw last: the reply then
    /// carries a consistency proof from that size to the current one.
    pub consistency_from: Option<u64>,
    /// Log indices (0-based, oldest first) whose inclusion proofs to return.
    pub inclusion_of: Vec<u64>,
}

/// `Recover`: one seed-share owner's share.
pub struct Recover {
    /// The owner's key, authenticated by the transport: the share arrived
    /// in an HPKE Auth-mode message only the holder of this key's secret
    /// could make ([`crate::seedshare::submission`]).
    pub owner: SeedshareKey,
    /// The owner's decrypted share.
    pub share: Share,
    /// What the owner checked and agreed to recover (bound into the
    /// authenticated message): refused unless it is exactly what this
    /// replica would recover to.
    pub target: RecoveryTarget,
    /// Recover even though ready peers exist (this rotates the mesh CA and
    /// splits the deployment from those peers).
    pub force: bool,
}

/// The history a share is bound to: the latest transition and the
/// seed-share record the replica would recover to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryTarget {
    /// The latest transition of the stored history.
    pub latest_transition: ObjectHash,
    /// The address of the seed-share record its tree head names.
    pub seedshares: ObjectHash,
}

/// `GetRecoveryState`: what a replica would recover to, for the owner to
/// check before sending a share.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetRecoveryState {
    /// The log size of the tree head the owner trusts: the reply then
    /// carries a consistency proof from it to the stored head.
    pub consistency_from: Option<u64>,
}

/// Reply to [`GetRecoveryState`]: the stored history's latest record, as
/// read (its signature cannot be checked without the seed: the owner
/// checks it against the history key it trusts), and the shares held.
#[derive(Clone, Debug)]
pub struct RecoveryState {
    /// The replica's state (`Ready`: nothing to recover).
    pub state: super::StateName,
    /// The latest transition.
    pub latest_transition: ObjectHash,
    /// The latest transition itself (current manifest ‖ previous).
    pub transition: Transition,
    /// The stored signed tree head (unverified here).
    pub signed_tree_head: SignedTreeHead,
    /// The seed-share record the tree head names
    /// ([`super::store::SeedShareRecord`] encoding).
    pub seedshare_record: Vec<u8>,
    /// The current manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// Consistency proof from [`GetRecoveryState::consistency_from`] (`None`
    /// when not asked, or when the stored log is smaller: a rollback).
    pub consistency_proof: Option<Vec<Hash>>,
    /// Valid shares held for this history.
    pub have: usize,
    /// The threshold (0 without seed-share owners).
    pub need: u8,
    /// Ready peers the replica can reach.
    pub ready_peers: usize,
}

/// `NewMeshCert`: an attested workload asks for its certificate.
#[derive(Clone, Debug)]
pub struct NewMeshCert {
    /// The manifest generation whose reference values the transport verified
    /// the evidence against ([`super::Coordinator::mesh_reference`]).
    pub generation: u64,
    /// The verified claims of the workload's evidence.
    pub claims: Claims,
    /// The workload's public key (SubjectPublicKeyInfo DER, ECDSA P-256 or
    /// P-384), bound to the evidence by the transport.
    pub public_key_spki: Vec<u8>,
}

/// `PeerRecover`: an attested peer coordinator asks for the secrets.
#[derive(Clone, Debug)]
pub struct PeerRecover {
    /// The manifest generation whose reference values the transport
    /// verified the peer's evidence against.
    pub generation: u64,
    /// The verified claims of the peer's evidence.
    pub claims: Claims,
}

/// Reply to [`PeerRecover`], and what a recovering replica feeds its
/// machine ([`super::Input::PeerSecrets`]): everything a replica needs to
/// serve the same deployment under the same mesh CA.
#[derive(Clone, Debug)]
pub struct PeerSecrets {
    /// The secret seed.
    pub seed: SecretSeed,
    /// The salt.
    pub salt: Salt,
    /// The mesh CA key of the serving peer's generation.
    pub mesh_key: MeshCaKey,
    /// The latest transition the serving peer holds (the secrets are
    /// adopted only for this very history).
    pub latest_transition: ObjectHash,
}

/// A successful reply.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    /// The manifest was set and persisted.
    ManifestSet(ManifestSet),
    /// The history.
    Manifests(Manifests),
    /// A share was accepted, or the coordinator recovered.
    Recovery(RecoveryProgress),
    /// A mesh certificate.
    MeshCert(MeshCert),
    /// The secrets, for an attested peer coordinator.
    PeerSecrets(PeerSecrets),
    /// What a replica would recover to.
    RecoveryState(RecoveryState),
}

/// Reply to [`SetManifest`].
#[derive(Clone, Debug)]
pub struct ManifestSet {
    /// The new latest transition.
    pub transition: ObjectHash,
    /// The new generation (number of transitions).
    pub generation: u64,
    /// Root CA certificate (DER): stable for the deployment's lifetime.
    pub root_ca: Vec<u8>,
    /// Mesh CA certificate (DER): new for every generation.
    pub mesh_ca: Vec<u8>,
    /// Only on the first manifest (and only if it names seed-share owners):
    /// the sealed seed shares.
    pub seed_share_document: Option<SeedShareDocument>,
}

/// Reply to [`GetManifests`].
#[derive(Clone, Debug)]
pub struct Manifests {
    /// Every manifest, oldest first, as the exact bytes that were set.
    pub manifests: Vec<Vec<u8>>,
    /// Every policy of every manifest, each once, in the order first named.
    pub policies: Vec<Vec<u8>>,
    /// Root CA certificate (DER).
    pub root_ca: Vec<u8>,
    /// Mesh CA certificate (DER) of the current generation.
    pub mesh_ca: Vec<u8>,
    /// The latest transition.
    pub latest_transition: ObjectHash,
    /// The signed tree head over the transitions.
    pub signed_tree_head: SignedTreeHead,
    /// The Ed25519 key that signs tree heads (derived from the seed).
    pub history_public_key: [u8; 32],
    /// Consistency proof from [`GetManifests::consistency_from`], if asked.
    pub consistency_proof: Option<Vec<Hash>>,
    /// `(index, proof)` for each index of [`GetManifests::inclusion_of`].
    pub inclusion_proofs: Vec<(u64, Vec<Hash>)>,
    /// The seed-share record the tree head names
    /// ([`super::store::SeedShareRecord`] encoding): after a re-share,
    /// where owners fetch their new sealed shares.
    pub seedshare_record: Vec<u8>,
}

/// Reply to [`Recover`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryProgress {
    /// The share is valid and kept; more are needed.
    ShareAccepted {
        /// Valid shares held now.
        have: usize,
        /// The threshold.
        need: u8,
    },
    /// The seed was reconstructed and checked against the history: Ready.
    Recovered {
        /// The generation recovered.
        generation: u64,
    },
}

/// Reply to [`NewMeshCert`].
pub struct MeshCert {
    /// The workload certificate, then the intermediate CA certificate (DER).
    pub cert_chain: Vec<Vec<u8>>,
    /// Mesh CA certificate (DER).
    pub mesh_ca: Vec<u8>,
    /// Root CA certificate (DER).
    pub root_ca: Vec<u8>,
    /// The workload secret, if the policy names a workload secret id.
    pub workload_secret: Option<WorkloadSecret>,
    /// Who can know this deployment's seed, and so every workload secret:
    /// for the initializer to check against what it pins.
    pub deployment: DeploymentFacts,
}

/// What a coordinator states about its deployment inside the attested
/// session: every sharing of the seed in its verified history (whoever
/// holds `threshold` of a sharing's owners' keys can rebuild the seed,
/// even after a re-share), and the current workload owners (who may
/// re-share it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// Each distinct sharing, oldest first.
    pub sharings: Vec<SharingFacts>,
    /// The current manifest's `WorkloadOwnerPubKeys` (hex SPKI, lower case).
    pub workload_owners: Vec<String>,
    /// The manifest generation.
    pub generation: u64,
}

/// One sharing of the seed: `threshold` of `owners` rebuild it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharingFacts {
    /// The threshold.
    pub threshold: u8,
    /// The seed-share owners' X25519 keys, in manifest order.
    pub owners: Vec<SeedshareKey>,
}

impl fmt::Debug for MeshCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshCert")
            .field("cert_chain", &self.cert_chain.len())
            .field("workload_secret", &self.workload_secret.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ManifestSet(r) => f.debug_tuple("ManifestSet").field(r).finish(),
            Self::Manifests(r) => f
                .debug_struct("Manifests")
                .field("count", &r.manifests.len())
                .field("head", &r.signed_tree_head.head)
                .finish_non_exhaustive(),
            Self::Recovery(r) => f.debug_tuple("Recovery").field(r).finish(),
            Self::MeshCert(r) => f.debug_tuple("MeshCert").field(r).finish(),
            Self::PeerSecrets(r) => f.debug_tuple("PeerSecrets").field(r).finish(),
            Self::RecoveryState(r) => f
                .debug_struct("RecoveryState")
                .field("state", &r.state)
                .field("latest_transition", &r.latest_transition)
                .finish_non_exhaustive(),
        }
    }
}

/// Why a request was refused. Each variant has a stable [`code`](Self::code)
/// that transports put on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// No manifest has been set (state Uninitialized).
    NoManifest(String),
    /// The coordinator is in Recovery: it has a history but no secrets.
    NeedsRecovery,
    /// `Recover` on a coordinator that is Ready.
    AlreadyRecovered,
    /// The expected previous transition does not match, another update is in
    /// flight, or the store changed under this update.
    ManifestConflict(String),
    /// A signature did not verify.
    InvalidSignature(String),
    /// The caller is not allowed to do this.
    PermissionDenied(String),
    /// The request is malformed or invalid (the text says where).
    InvalidArgument(String),
    /// The coordinator could not serve the request (storage, randomness).
    Internal(String),
}

impl ApiError {
    /// The stable error code (`no_manifest`, `needs_recovery`,
    /// `already_recovered`, `manifest_conflict`, `invalid_signature`,
    /// `permission_denied`, `invalid_argument`, `internal`).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NoManifest(_) => "no_manifest",
            Self::NeedsRecovery => "needs_recovery",
            Self::AlreadyRecovered => "already_recovered",
            Self::ManifestConflict(_) => "manifest_conflict",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::PermissionDenied(_) => "permission_denied",
            Self::InvalidArgument(_) => "invalid_argument",
            Self::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoManifest(why) => write!(f, "no manifest configured: {why}"),
            Self::NeedsRecovery => f.write_str(
                "coordinator is in recovery mode: recover it with the seed shares or from a ready peer",
            ),
            Self::AlreadyRecovered => f.write_str("coordinator is already recovered"),
            Self::ManifestConflict(why) => write!(f, "manifest conflict: {why}"),
            Self::InvalidSignature(why) => write!(f, "invalid signature: {why}"),
            Self::PermissionDenied(why) => write!(f, "permission denied: {why}"),
            Self::InvalidArgument(why) => write!(f, "invalid argument: {why}"),
            Self::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl core::error::Error for ApiError {}

/// The domain-separation label of [`UpdateIntent::message`].
pub const UPDATE_LABEL: &[u8; 27] = b"accord/v2 manifest update\n\0";

/// The transition that setting `manifest` on top of `latest` creates, and
/// its address.
pub fn next_transition(
    provider: &dyn CryptoProvider,
    manifest: &[u8],
    latest: Option<ObjectHash>,
) -> (Transition, ObjectHash) {
    let transition = Transition {
        manifest: ObjectHash::of(provider, manifest),
        previous: latest,
    };
    let address = transition.hash(provider);
    (transition, address)
}

/// What a workload owner authorizes by signing an update (offline): this
/// deployment, this next transition, and whether the seed is re-shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateIntent {
    /// The deployment: its Ed25519 history public key (derived from the
    /// seed, stable for the deployment's life). A signature cannot move
    /// to another deployment, even one with the same history.
    pub deployment: [u8; 32],
    /// The next transition's address. It commits to the new manifest
    /// (and so to its `SeedshareOwnerPubKeys` and `SeedshareThreshold`)
    /// and to the latest transition: no replay at another point.
    pub next_transition: ObjectHash,
    /// Whether the seed is split anew among the new manifest's seed-share
    /// owners with its threshold. Whoever submits the signed update cannot
    /// flip it.
    pub reshare: bool,
}

/// Length of [`UpdateIntent::message`].
pub const UPDATE_MESSAGE_LEN: usize = UPDATE_LABEL.len() + 32 + 32 + 1;

impl UpdateIntent {
    /// The exact bytes a workload owner signs:
    /// `UPDATE_LABEL (27) ‖ deployment (32) ‖ next transition (32) ‖ reshare (1: 0 or 1)`.
    pub fn message(&self) -> [u8; UPDATE_MESSAGE_LEN] {
        crate::codec::concat(&[
            UPDATE_LABEL,
            &self.deployment,
            self.next_transition.as_bytes(),
            &[u8::from(self.reshare)],
        ])
    }
}
