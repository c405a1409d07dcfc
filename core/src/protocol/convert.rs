//! Conversions between the wire messages and the state machine's API
//! types ([`crate::coordinator`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use super::messages::{
    DeploymentStatement, ErrorCode, ErrorReply, GetManifests, GetManifestsReply, GetRecoveryState,
    GetRecoveryStateReply, ManifestSet, Manifests, MeshCert, MeshRequest, NewMeshCertReply,
    OwnerSignature, PeerRecoverReply, PeerSecrets, Recover, RecoverReply, RecoveryState,
    ReplicaState, SetManifest, SetManifestReply, ShareAccepted, Sharing, UserRequest,
};
use crate::coordinator::{self as api, ApiError, RecoveryProgress, Response, StateName};
use crate::evidence::Claims;
use crate::history::objects::ObjectHash;
use crate::kdf::{MeshCaKey, Salt, SecretSeed};
use crate::manifest::SeedshareKey;
use crate::seedshare::submission::{
    RecoveryKey, SealedSubmission, SubmissionBinding, open_submission,
};

/// What a user-API connection knows for `Recover`: the recovery key it
/// sent in its `RecoveryState` reply, and its TLS exporter value under
/// [`super::RECOVERY_EXPORTER_LABEL`].
pub struct RecoverySession<'a> {
    /// The session's recovery key.
    pub key: &'a RecoveryKey,
    /// The session's exporter value.
    pub session: [u8; 32],
}

impl UserRequest {
    /// The state machine's request. `Recover` is opened here with the
    /// connection's `recovery` session (refused without one): the HPKE
    /// Auth-mode submission proves the owner's key and the binding.
    pub fn into_request(
        self,
        recovery: Option<&RecoverySession<'_>>,
    ) -> Result<api::Request, ApiError> {
        Ok(match self {
            Self::SetManifest(SetManifest {
                manifest,
                policies,
                expected_previous_transition,
                signatures,
                reshare,
            }) => api::Request::SetManifest(api::SetManifest {
                manifest,
                policies,
                expected_previous_transition,
                signatures: signatures
                    .into_iter()
                    .map(|s| api::OwnerSignature {
                        public_key: s.public_key,
                        signature: s.signature,
                    })
                    .collect(),
                reshare,
            }),
            Self::GetManifests(GetManifests {
                consistency_from,
                inclusion_of,
            }) => api::Request::GetManifests(api::GetManifests {
                consistency_from,
                inclusion_of,
            }),
            Self::Recover(Recover {
                owner,
                encapsulated_key,
                ciphertext,
                latest_transition,
                seedshares,
                force,
            }) => {
                let recovery = recovery.ok_or_else(|| {
                    ApiError::InvalidArgument(
                        "no recovery key on this connection: ask GetRecoveryState first and seal the share to its recovery key".into(),
                    )
                })?;
                let binding = SubmissionBinding {
                    session: recovery.session,
                    latest_transition,
                    seedshares,
                    force,
                };
                let sealed = SealedSubmission {
                    owner: SeedshareKey(owner),
                    encapsulated_key,
                    ciphertext,
                };
                let share = open_submission(&sealed, recovery.key, &binding).map_err(|e| {
                    ApiError::PermissionDenied(format!(
                        "the share submission does not open as sent by seed-share owner key {} for this session and target ({e}): only the owner's own key, in this session, can submit its share",
                        crate::hex::Hex(&owner)
                    ))
                })?;
                api::Request::Recover(api::Recover {
                    owner: SeedshareKey(owner),
                    share,
                    target: api::RecoveryTarget {
                        latest_transition: ObjectHash(latest_transition),
                        seedshares: ObjectHash(seedshares),
                    },
                    force,
                })
            }
            Self::GetRecoveryState(GetRecoveryState { consistency_from }) => {
                api::Request::GetRecoveryState(api::GetRecoveryState { consistency_from })
            }
        })
    }
}

impl MeshRequest {
    /// The state machine's request, with what the attested TLS session
    /// proved: the `generation` whose reference values verified the
    /// client's evidence, its `claims`, and its key (`spki`, which only a
    /// certificate needs).
    pub fn into_request(self, generation: u64, claims: Claims, spki: Vec<u8>) -> api::Request {
        match self {
            Self::NewMeshCert => api::Request::NewMeshCert(api::NewMeshCert {
                generation,
                claims,
                public_key_spki: spki,
            }),
            Self::PeerRecover => api::Request::PeerRecover(api::PeerRecover { generation, claims }),
        }
    }
}

impl From<&api::OwnerSignature> for OwnerSignature {
    fn from(s: &api::OwnerSignature) -> Self {
        Self {
            public_key: s.public_key.clone(),
            signature: s.signature.clone(),
        }
    }
}

impl From<&ApiError> for ErrorReply {
    fn from(error: &ApiError) -> Self {
        let code = match error {
            ApiError::NoManifest(_) => ErrorCode::NoManifest,
            ApiError::NeedsRecovery => ErrorCode::NeedsRecovery,
            ApiError::AlreadyRecovered => ErrorCode::AlreadyRecovered,
            ApiError::ManifestConflict(_) => ErrorCode::ManifestConflict,
            ApiError::InvalidSignature(_) => ErrorCode::InvalidSignature,
            ApiError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            ApiError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        };
        Self {
            code,
            message: format!("{error}"),
        }
    }
}

impl ErrorReply {
    /// The error as the client reports it.
    pub fn into_api_error(self) -> ApiError {
        let m = self.message;
        match self.code {
            ErrorCode::NoManifest => ApiError::NoManifest(m),
            ErrorCode::NeedsRecovery => ApiError::NeedsRecovery,
            ErrorCode::AlreadyRecovered => ApiError::AlreadyRecovered,
            ErrorCode::ManifestConflict => ApiError::ManifestConflict(m),
            ErrorCode::InvalidSignature => ApiError::InvalidSignature(m),
            ErrorCode::PermissionDenied => ApiError::PermissionDenied(m),
            ErrorCode::InvalidArgument => ApiError::InvalidArgument(m),
            ErrorCode::Internal | ErrorCode::Protocol => ApiError::Internal(m),
        }
    }

    /// A refusal of the frame itself.
    pub fn protocol(message: String) -> Self {
        Self {
            code: ErrorCode::Protocol,
            message,
        }
    }
}

/// The reply to `SetManifest` for a state-machine result.
pub fn set_manifest_reply(result: Result<Response, ApiError>) -> SetManifestReply {
    match result {
        Err(error) => SetManifestReply::Error(ErrorReply::from(&error)),
        Ok(Response::ManifestSet(set)) => SetManifestReply::ManifestSet(ManifestSet {
            transition: set.transition.0,
            generation: set.generation,
            root_ca: set.root_ca,
            mesh_ca: set.mesh_ca,
            seed_share_document: set.seed_share_document,
        }),
        Ok(_) => SetManifestReply::Error(not_this_reply("SetManifest")),
    }
}

/// The reply to `GetManifests` for a state-machine result.
pub fn get_manifests_reply(result: Result<Response, ApiError>) -> GetManifestsReply {
    match result {
        Err(error) => GetManifestsReply::Error(ErrorReply::from(&error)),
        Ok(Response::Manifests(m)) => GetManifestsReply::Manifests(Manifests {
            manifests: m.manifests,
            policies: m.policies,
            root_ca: m.root_ca,
            mesh_ca: m.mesh_ca,
            latest_transition: m.latest_transition.0,
            signed_tree_head: m.signed_tree_head.encode().to_vec(),
            history_public_key: m.history_public_key,
            consistency_proof: m.consistency_proof,
            inclusion_proofs: m.inclusion_proofs,
            seedshare_record: m.seedshare_record,
        }),
        Ok(_) => GetManifestsReply::Error(not_this_reply("GetManifests")),
    }
}

/// The reply to `Recover` for a state-machine result.
pub fn recover_reply(result: Result<Response, ApiError>) -> RecoverReply {
    match result {
        Err(error) => RecoverReply::Error(ErrorReply::from(&error)),
        Ok(Response::Recovery(RecoveryProgress::ShareAccepted { have, need })) => {
            RecoverReply::Recovery(ShareAccepted {
                have: u32::try_from(have).unwrap_or(u32::MAX),
                need,
                recovered: None,
            })
        }
        Ok(Response::Recovery(RecoveryProgress::Recovered { generation })) => {
            RecoverReply::Recovery(ShareAccepted {
                have: 0,
                need: 0,
                recovered: Some(generation),
            })
        }
        Ok(_) => RecoverReply::Error(not_this_reply("Recover")),
    }
}

/// The reply to `GetRecoveryState` for a state-machine result.
/// `recovery_key` is the connection's recovery key, sent with the state
/// (an internal error without one).
pub fn get_recovery_state_reply(
    result: Result<Response, ApiError>,
    recovery_key: Option<&SeedshareKey>,
) -> GetRecoveryStateReply {
    match result {
        Err(error) => GetRecoveryStateReply::Error(ErrorReply::from(&error)),
        Ok(Response::RecoveryState(state)) => match recovery_key {
            Some(key) => GetRecoveryStateReply::RecoveryState(RecoveryState {
                state: match state.state {
                    StateName::Uninitialized => ReplicaState::Uninitialized,
                    StateName::Recovery => ReplicaState::Recovery,
                    StateName::Ready => ReplicaState::Ready,
                },
                latest_transition: state.latest_transition.0,
                transition_manifest: state.transition.manifest.0,
                transition_previous: state.transition.previous.map(|p| p.0),
                signed_tree_head: state.signed_tree_head.encode().to_vec(),
                seedshare_record: state.seedshare_record,
                manifest: state.manifest,
                consistency_proof: state.consistency_proof,
                have: u32::try_from(state.have).unwrap_or(u32::MAX),
                need: state.need,
                ready_peers: u32::try_from(state.ready_peers).unwrap_or(u32::MAX),
                recovery_key: key.0,
            }),
            None => GetRecoveryStateReply::Error(ErrorReply {
                code: ErrorCode::Internal,
                message: "the recovery state needs the connection's recovery key".into(),
            }),
        },
        Ok(_) => GetRecoveryStateReply::Error(not_this_reply("GetRecoveryState")),
    }
}

/// The reply to `NewMeshCert` for a state-machine result.
pub fn new_mesh_cert_reply(result: Result<Response, ApiError>) -> NewMeshCertReply {
    match result {
        Err(error) => NewMeshCertReply::Error(ErrorReply::from(&error)),
        Ok(Response::MeshCert(cert)) => NewMeshCertReply::MeshCert(MeshCert {
            cert_chain: cert.cert_chain,
            mesh_ca: cert.mesh_ca,
            root_ca: cert.root_ca,
            workload_secret: cert
                .workload_secret
                .map(|s| Zeroizing::new(s.as_bytes().to_vec())),
            deployment: DeploymentStatement::from(&cert.deployment),
        }),
        Ok(_) => NewMeshCertReply::Error(not_this_reply("NewMeshCert")),
    }
}

/// The reply to `PeerRecover` for a state-machine result.
pub fn peer_recover_reply(result: Result<Response, ApiError>) -> PeerRecoverReply {
    match result {
        Err(error) => PeerRecoverReply::Error(ErrorReply::from(&error)),
        Ok(Response::PeerSecrets(secrets)) => PeerRecoverReply::PeerSecrets(PeerSecrets {
            seed: Zeroizing::new(secrets.seed.as_bytes().to_vec()),
            salt: *secrets.salt.as_bytes(),
            mesh_key: Zeroizing::new(secrets.mesh_key.scalar_bytes().to_vec()),
            latest_transition: secrets.latest_transition.0,
        }),
        Ok(_) => PeerRecoverReply::Error(not_this_reply("PeerRecover")),
    }
}

fn not_this_reply(request: &str) -> ErrorReply {
    ErrorReply {
        code: ErrorCode::Internal,
        message: format!("the state machine answered {request} with another reply"),
    }
}

impl PeerSecrets {
    /// The state machine's secrets ([`api::Input::PeerSecrets`]), checked
    /// for length and for a valid mesh CA key.
    pub fn into_secrets(self) -> Result<api::PeerSecrets, ApiError> {
        let Self {
            seed,
            salt,
            mesh_key,
            latest_transition,
        } = self;
        peer_secrets(&seed, salt, &mesh_key, latest_transition)
    }
}

fn peer_secrets(
    seed: &[u8],
    salt: [u8; 32],
    mesh_key: &[u8],
    latest_transition: [u8; 32],
) -> Result<api::PeerSecrets, ApiError> {
    let seed: [u8; crate::kdf::SEED_LEN] = seed.try_into().map_err(|_| {
        ApiError::InvalidArgument(format!("the peer sent a {}-byte seed", seed.len()))
    })?;
    let scalar: [u8; crate::kdf::P384_SCALAR_LEN] = mesh_key.try_into().map_err(|_| {
        ApiError::InvalidArgument(format!(
            "the peer sent a {}-byte mesh CA key",
            mesh_key.len()
        ))
    })?;
    let mesh_key = MeshCaKey::from_scalar_bytes(scalar)
        .map_err(|e| ApiError::InvalidArgument(format!("the peer's mesh CA key: {e}")))?;
    Ok(api::PeerSecrets {
        seed: SecretSeed::from_bytes(seed),
        salt: Salt::from_bytes(salt),
        mesh_key,
        latest_transition: ObjectHash(latest_transition),
    })
}

impl From<&api::DeploymentFacts> for DeploymentStatement {
    fn from(facts: &api::DeploymentFacts) -> Self {
        Self {
            sharings: facts
                .sharings
                .iter()
                .map(|s| Sharing {
                    threshold: s.threshold,
                    owners: s.owners.iter().map(|o| o.0).collect(),
                })
                .collect(),
            workload_owners: facts.workload_owners.clone(),
            generation: facts.generation,
        }
    }
}
