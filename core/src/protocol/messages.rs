//! The messages of the user and mesh APIs.
//!
//! Field order is the wire order (postcard encodes structs as their fields
//! in sequence and enums as a varint variant index): never reorder fields
//! or variants; add new variants only at the end.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Message;
use crate::seedshare::SeedShareDocument;

/// Which API a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Api {
    /// User API (port 1313): manifests, history, recovery.
    User,
    /// Mesh API (port 7777): workload certificates and peer recovery.
    Mesh,
    /// The agent's local channel to its host shim ([`super::shim`]).
    Shim,
}

/// The client's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol versions the client speaks, at most 16.
    pub versions: Vec<u16>,
    /// The API it wants.
    pub api: Api,
}

/// The server's answer to [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// The version both speak (the highest common one).
    Accepted {
        /// The version.
        version: u16,
    },
    /// No common version, or the wrong API on this port.
    Refused {
        /// Why, for the client's error message.
        reason: String,
    },
}

/// A workload owner's signature over an update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerSignature {
    /// SubjectPublicKeyInfo DER of the signer.
    pub public_key: Vec<u8>,
    /// The signature (Ed25519: 64 bytes; ECDSA P-384: r ‖ s, 96 bytes).
    pub signature: Vec<u8>,
}

/// `SetManifest`: set or update the manifest (answered by
/// [`SetManifestReply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetManifest {
    /// The manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// Every policy the manifest names.
    pub policies: Vec<Vec<u8>>,
    /// Compare-and-swap on the latest transition.
    pub expected_previous_transition: Option<[u8; 32]>,
    /// Owner signatures over the next transition.
    pub signatures: Vec<OwnerSignature>,
    /// Split the seed anew among the new manifest's seed-share owners.
    pub reshare: bool,
}

/// `GetManifests`: read the history (answered by [`GetManifestsReply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetManifests {
    /// Log size of the last tree head the client saw.
    pub consistency_from: Option<u64>,
    /// Log indices to prove inclusion of.
    pub inclusion_of: Vec<u64>,
}

/// `Recover`: submit a seed share, sealed by its owner in HPKE Auth mode
/// to the recovery key of this session's [`RecoveryState`] reply
/// (`seedshare::submission`; answered by [`RecoverReply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recover {
    /// The owner's X25519 public key (the HPKE sender).
    pub owner: [u8; 32],
    /// The HPKE encapsulated key.
    pub encapsulated_key: [u8; 32],
    /// The HPKE ciphertext of the 129-byte share.
    pub ciphertext: Vec<u8>,
    /// The latest transition the owner agreed to recover.
    pub latest_transition: [u8; 32],
    /// The seed-share record address the owner agreed to.
    pub seedshares: [u8; 32],
    /// Recover even though ready peers exist.
    pub force: bool,
}

/// `GetRecoveryState`: what the replica would recover to; also makes this
/// session's recovery key (answered by [`GetRecoveryStateReply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetRecoveryState {
    /// Log size of the tree head the owner trusts (for a consistency
    /// proof).
    pub consistency_from: Option<u64>,
}

/// A request on the user API: one variant per request, in wire-index
/// order (`0` SetManifest, `1` GetManifests, `2` Recover, `3`
/// GetRecoveryState). Each request has a reply type of its own
/// ([`UserCall::Reply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserRequest {
    /// Set or update the manifest.
    SetManifest(SetManifest),
    /// Read the history.
    GetManifests(GetManifests),
    /// Submit a seed share.
    Recover(Recover),
    /// What the replica would recover to.
    GetRecoveryState(GetRecoveryState),
}

impl UserRequest {
    /// The request's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SetManifest(_) => SetManifest::NAME,
            Self::GetManifests(_) => GetManifests::NAME,
            Self::Recover(_) => Recover::NAME,
            Self::GetRecoveryState(_) => GetRecoveryState::NAME,
        }
    }
}

/// A user-API request paired with its reply type: a client sending a `C`
/// decodes only a `C::Reply`, so a variant that cannot answer the request
/// is refused by the decoder.
pub trait UserCall: Into<UserRequest> {
    /// The reply type.
    type Reply: UserReply;
    /// The request's name, for errors and logs.
    const NAME: &'static str;
}

/// A user-API reply type: one per request, each with an `Error` variant
/// at index 3.
pub trait UserReply: Message + fmt::Debug {
    /// The variant's name, for logs.
    fn variant(&self) -> &'static str;
    /// The refusal, if the reply is one.
    fn error(&self) -> Option<&ErrorReply>;
}

macro_rules! user_call {
    ($($request:ident => $reply:ident,)+) => {
        $(
            impl From<$request> for UserRequest {
                fn from(request: $request) -> Self {
                    Self::$request(request)
                }
            }

            impl UserCall for $request {
                type Reply = $reply;
                const NAME: &'static str = stringify!($request);
            }

            impl UserReply for $reply {
                fn variant(&self) -> &'static str {
                    self.variant()
                }
                fn error(&self) -> Option<&ErrorReply> {
                    match self {
                        Self::Error(e) => Some(e),
                        _ => None,
                    }
                }
            }

            impl Message for $reply {
                const NAME: &'static str = stringify!($reply);
            }
        )+
    };
}

user_call! {
    SetManifest => SetManifestReply,
    GetManifests => GetManifestsReply,
    Recover => RecoverReply,
    GetRecoveryState => GetRecoveryStateReply,
}

/// The replica's state in [`RecoveryState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaState {
    /// No history.
    Uninitialized,
    /// A history, no secrets.
    Recovery,
    /// Serving.
    Ready,
}

/// Error codes (the table in `docs/protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// `no_manifest`.
    NoManifest,
    /// `needs_recovery`.
    NeedsRecovery,
    /// `already_recovered`.
    AlreadyRecovered,
    /// `manifest_conflict`.
    ManifestConflict,
    /// `invalid_signature`.
    InvalidSignature,
    /// `permission_denied`.
    PermissionDenied,
    /// `invalid_argument`.
    InvalidArgument,
    /// `internal`.
    Internal,
    /// The frame itself was refused (malformed, too large, wrong order).
    Protocol,
}

/// A refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
}

/// The manifest was set: the success of [`SetManifestReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSet {
    /// The new latest transition.
    pub transition: [u8; 32],
    /// The new generation.
    pub generation: u64,
    /// Root CA certificate (DER).
    pub root_ca: Vec<u8>,
    /// Mesh CA certificate (DER).
    pub mesh_ca: Vec<u8>,
    /// The sealed seed shares (first manifest only).
    pub seed_share_document: Option<SeedShareDocument>,
}

/// The history: the success of [`GetManifestsReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifests {
    /// Every manifest, oldest first.
    pub manifests: Vec<Vec<u8>>,
    /// Every policy.
    pub policies: Vec<Vec<u8>>,
    /// Root CA certificate (DER).
    pub root_ca: Vec<u8>,
    /// Mesh CA certificate (DER).
    pub mesh_ca: Vec<u8>,
    /// The latest transition.
    pub latest_transition: [u8; 32],
    /// The signed tree head (164 bytes, `history::tree_head`).
    pub signed_tree_head: Vec<u8>,
    /// The Ed25519 history key.
    pub history_public_key: [u8; 32],
    /// Consistency proof, if asked.
    pub consistency_proof: Option<Vec<[u8; 32]>>,
    /// Inclusion proofs, if asked.
    pub inclusion_proofs: Vec<(u64, Vec<[u8; 32]>)>,
    /// The seed-share record the tree head names (salt, commitments,
    /// sealed shares; `coordinator::store::SeedShareRecord`).
    pub seedshare_record: Vec<u8>,
}

/// A seed share was accepted (`recovered` is set once the coordinator
/// recovered, with the generation): the success of [`RecoverReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareAccepted {
    /// Valid shares held.
    pub have: u32,
    /// The threshold.
    pub need: u8,
    /// The recovered generation, once recovered.
    pub recovered: Option<u64>,
}

/// What the replica would recover to: the success of
/// [`GetRecoveryStateReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryState {
    /// The replica's state.
    pub state: ReplicaState,
    /// The latest transition of the stored history.
    pub latest_transition: [u8; 32],
    /// The manifest hash the latest transition names.
    pub transition_manifest: [u8; 32],
    /// The transition before it.
    pub transition_previous: Option<[u8; 32]>,
    /// The stored signed tree head (164 bytes; unverified by the
    /// replica, which has no seed).
    pub signed_tree_head: Vec<u8>,
    /// The seed-share record the tree head names.
    pub seedshare_record: Vec<u8>,
    /// The current manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// Consistency proof from `consistency_from`, if asked.
    pub consistency_proof: Option<Vec<[u8; 32]>>,
    /// Valid shares held for this history.
    pub have: u32,
    /// The threshold (0 without seed-share owners).
    pub need: u8,
    /// Ready peers the replica can reach.
    pub ready_peers: u32,
    /// This session's X25519 recovery key: seal the share to it.
    pub recovery_key: [u8; 32],
}

/// One sharing of the seed, as a coordinator states it to a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharing {
    /// The threshold.
    pub threshold: u8,
    /// The owners' X25519 keys, in manifest order.
    pub owners: Vec<[u8; 32]>,
}

/// What a coordinator states about its deployment to a workload, inside
/// the attested session (`coordinator::DeploymentFacts`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentStatement {
    /// Every distinct sharing of the seed in the coordinator's history,
    /// oldest first.
    pub sharings: Vec<Sharing>,
    /// The current manifest's workload owner keys (hex SPKI, lower case).
    pub workload_owners: Vec<String>,
    /// The manifest generation.
    pub generation: u64,
}

/// A request on the mesh API. The workload's evidence and key come from
/// the attested TLS session, not from the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MeshRequest {
    /// Issue a certificate for the session's client key.
    NewMeshCert,
    /// Peer recovery: hand the secrets to the session's client, an attested
    /// coordinator.
    PeerRecover,
}

/// A certificate for the session's client key: the reply to
/// [`MeshRequest::NewMeshCert`] (inside [`NewMeshCertReply::MeshCert`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshCert {
    /// Workload certificate, then intermediate CA certificate (DER).
    pub cert_chain: Vec<Vec<u8>>,
    /// Mesh CA certificate (DER).
    pub mesh_ca: Vec<u8>,
    /// Root CA certificate (DER).
    pub root_ca: Vec<u8>,
    /// The 64-byte workload secret, if the policy names an id (zeroized
    /// when dropped).
    pub workload_secret: Option<Zeroizing<Vec<u8>>>,
    /// Who can know the deployment's seed: the workload checks it against
    /// what its measured init-data pins before writing anything.
    pub deployment: DeploymentStatement,
}

/// The secrets, for an attested peer coordinator: the reply to
/// [`MeshRequest::PeerRecover`] (inside [`PeerRecoverReply::PeerSecrets`];
/// zeroized when dropped). `protocol::peer_secrets` checks their shape.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSecrets {
    /// The 64-byte secret seed.
    pub seed: Zeroizing<Vec<u8>>,
    /// The 32-byte salt.
    pub salt: [u8; 32],
    /// The mesh CA key's 48-byte P-384 scalar (big-endian).
    pub mesh_key: Zeroizing<Vec<u8>>,
    /// The latest transition the serving peer holds.
    pub latest_transition: [u8; 32],
}

/// An enum whose variants keep fixed wire indices (postcard writes the
/// index as a varint, then the variant's one field, exactly as for a
/// struct variant with that field's fields). Each API's replies were one
/// enum (mesh: `0` MeshCert, `1` Error, `2` PeerSecrets; user: `0`
/// ManifestSet, `1` Manifests, `2` Recovery, `3` Error, `4`
/// RecoveryState); each request now has its own reply type with the
/// indices it had there, so the bytes on the wire are unchanged and a
/// client decoding the reply to its request refuses a variant that cannot
/// answer it.
macro_rules! indexed_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $index:literal, )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )+
        }

        impl $name {
            /// The variant's name, for logs.
            pub fn variant(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => stringify!($variant), )+
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(v) => {
                        s.serialize_newtype_variant(stringify!($name), $index, stringify!($variant), v)
                    } )+
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl<'de> serde::de::Visitor<'de> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($name)))
                    }
                    fn visit_enum<A: serde::de::EnumAccess<'de>>(
                        self,
                        data: A,
                    ) -> Result<$name, A::Error> {
                        use serde::de::VariantAccess;
                        let (index, variant): (u32, A::Variant) = data.variant()?;
                        match index {
                            $( $index => variant.newtype_variant().map($name::$variant), )+
                            other => Err(serde::de::Error::custom(alloc::format!(
                                concat!("variant {} is not a ", stringify!($name)),
                                other
                            ))),
                        }
                    }
                }
                d.deserialize_enum(stringify!($name), &[$(stringify!($variant)),+], Visit)
            }
        }
    };
}

indexed_enum! {
    /// The reply to [`MeshRequest::NewMeshCert`].
    #[derive(Clone, PartialEq, Eq)]
    pub enum NewMeshCertReply {
        /// The certificate.
        MeshCert(MeshCert) = 0,
        /// The request was refused.
        Error(ErrorReply) = 1,
    }
}

indexed_enum! {
    /// The reply to [`MeshRequest::PeerRecover`].
    #[derive(Clone, PartialEq, Eq)]
    pub enum PeerRecoverReply {
        /// The request was refused.
        Error(ErrorReply) = 1,
        /// The secrets.
        PeerSecrets(PeerSecrets) = 2,
    }
}

indexed_enum! {
    /// The reply to [`SetManifest`].
    // A reply is built once and written at once: boxing buys nothing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum SetManifestReply {
        /// The manifest was set.
        ManifestSet(ManifestSet) = 0,
        /// The request was refused.
        Error(ErrorReply) = 3,
    }
}

indexed_enum! {
    /// The reply to [`GetManifests`].
    // A reply is built once and written at once: boxing buys nothing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum GetManifestsReply {
        /// The history.
        Manifests(Manifests) = 1,
        /// The request was refused.
        Error(ErrorReply) = 3,
    }
}

indexed_enum! {
    /// The reply to [`Recover`].
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum RecoverReply {
        /// The share was accepted.
        Recovery(ShareAccepted) = 2,
        /// The request was refused.
        Error(ErrorReply) = 3,
    }
}

indexed_enum! {
    /// The reply to [`GetRecoveryState`].
    // A reply is built once and written at once: boxing buys nothing.
    #[allow(clippy::large_enum_variant)]
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum GetRecoveryStateReply {
        /// The request was refused.
        Error(ErrorReply) = 3,
        /// What the replica would recover to.
        RecoveryState(RecoveryState) = 4,
    }
}

indexed_enum! {
    /// The refusal of a user-API frame whose request is not known (too
    /// large, malformed, the server busy): `Error` has index 3 in every
    /// user reply type, so this frame decodes as the `Error` of whichever
    /// reply the client expects.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum UserError {
        /// The frame was refused.
        Error(ErrorReply) = 3,
    }
}

impl Message for UserError {
    const NAME: &'static str = "UserError";
}

impl fmt::Debug for MeshCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshCert")
            .field("cert_chain", &self.cert_chain.len())
            .field(
                "workload_secret",
                &self.workload_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PeerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSecrets")
            .field(
                "latest_transition",
                &crate::hex::Hex(&self.latest_transition),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for NewMeshCertReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MeshCert(cert) => f.debug_tuple("MeshCert").field(cert).finish(),
            Self::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

impl fmt::Debug for PeerRecoverReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Self::PeerSecrets(s) => f.debug_tuple("PeerSecrets").field(s).finish(),
        }
    }
}

impl Message for Hello {
    const NAME: &'static str = "Hello";
}
impl Message for HelloReply {
    const NAME: &'static str = "HelloReply";
}
impl Message for UserRequest {
    const NAME: &'static str = "UserRequest";
}
impl Message for MeshRequest {
    const NAME: &'static str = "MeshRequest";
}
impl Message for NewMeshCertReply {
    const NAME: &'static str = "NewMeshCertReply";
}
impl Message for PeerRecoverReply {
    const NAME: &'static str = "PeerRecoverReply";
}

/// The version a server speaks with a client offering `versions`, or why
/// there is none.
pub fn negotiate(hello: &Hello, api: Api) -> HelloReply {
    if hello.api != api {
        return HelloReply::Refused {
            reason: alloc::format!(
                "this port serves the {api:?} API, not the {:?} API",
                hello.api
            ),
        };
    }
    if hello.versions.len() > 16 {
        return HelloReply::Refused {
            reason: "more than 16 protocol versions offered".into(),
        };
    }
    // The shim channel has a version of its own (`shim::SHIM_VERSION`).
    let ours = match api {
        Api::Shim => super::shim::SHIM_VERSION,
        Api::User | Api::Mesh => super::VERSION,
    };
    match hello.versions.iter().copied().filter(|v| *v == ours).max() {
        Some(version) => HelloReply::Accepted { version },
        None if api == Api::Shim => HelloReply::Refused {
            reason: alloc::format!(
                "no common shim-channel version: the agent speaks {:?}, this shim speaks {ours}; \
                 run an agent and a shim of the same release",
                hello.versions
            ),
        },
        None => HelloReply::Refused {
            reason: alloc::format!(
                "no common protocol version: the client speaks {:?}, this coordinator speaks {ours}",
                hello.versions
            ),
        },
    }
}
