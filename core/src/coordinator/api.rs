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
    /// Signatures over [`update_message`] by keys of the current manifest's
    /// `WorkloadOwnerPubKeys`. Not needed for the first manifest.
    pub signatures: Vec<OwnerSignature>,
    /// Re-share the seed to the new manifest's `SeedshareOwnerPubKeys`
    /// with its `SeedshareThreshold` (the seed and salt stay; the old
    /// shares stop working). An update that changes either is refused
    /// without it.
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
    /// The owner's key, if the transport authenticated one; otherwise the
    /// share's index names its owner (the share, checked against the
    /// commitments, is the proof of possession).
    pub owner: Option<SeedshareKey>,
    /// The owner's decrypted share.
    pub share: Share,
    /// Recover even though ready peers exist (this rotates the mesh CA and
    /// splits the deployment from those peers).
    pub force: bool,
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

/// The domain-separation label of [`update_message`].
pub const UPDATE_LABEL: &[u8; 27] = b"accord/v1 manifest update\n\0";

/// The transition that setting `manifest` on top of `latest` creates, and
/// its address: what an owner signs (offline) for an update.
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

/// The exact bytes a workload owner signs to authorize an update:
/// [`UPDATE_LABEL`] ‖ the next transition's address. The address commits to
/// the new manifest and to the latest transition, so a signature is good for
/// exactly one update at exactly one point in the history (no replay).
pub fn update_message(next_transition: &ObjectHash) -> [u8; 59] {
    let mut out = [0u8; 59];
    let (label, hash) = out.split_at_mut(UPDATE_LABEL.len());
    label.copy_from_slice(UPDATE_LABEL);
    hash.copy_from_slice(next_transition.as_bytes());
    out
}
