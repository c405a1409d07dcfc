//! Peer recovery: a Ready replica hands its secrets to an attested peer
//! coordinator; a replica in Recovery adopts them.
//!
//! Both sides check what the transport proved:
//!
//! - **Serving** ([`Request::PeerRecover`]): the peer's evidence was
//!   verified against this replica's current reference values, and its
//!   policy hash must have the `coordinator` role in the current manifest.
//! - **Recovering** ([`Input::PeerSecrets`](super::Input::PeerSecrets)):
//!   the driver attests the peer against [`PeerTarget`] (the reference
//!   values and coordinator policies of the history this replica read),
//!   and the machine adopts the secrets only if the peer holds the very
//!   same latest transition, the derived history key signs the stored tree
//!   head, and that head is not older than, or forked from, one this
//!   replica has seen. The peer's mesh CA key is adopted, so every replica
//!   issues under the same mesh CA.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{ApiError, Coordinator, Output, PeerRecover, PeerSecrets, Phase, Response};
use crate::evidence::ReferenceValues;
use crate::hex::Hex;
use crate::history::objects::ObjectHash;
use crate::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};

/// What a replica in Recovery attests a peer against.
#[derive(Clone, Debug)]
pub struct PeerTarget<'a> {
    /// The reference values of the current manifest of the stored history.
    pub reference: &'a ReferenceValues,
    /// The policy hashes with the coordinator role in that manifest: the
    /// peer's policy hash must be one of them.
    pub coordinator_policies: Vec<[u8; 32]>,
    /// The latest transition of the stored history.
    pub latest_transition: ObjectHash,
}

impl<'p> Coordinator<'p> {
    /// What to attest a peer against, when this replica is in Recovery
    /// with a readable history (`None` otherwise).
    pub fn peer_target(&self) -> Option<PeerTarget<'_>> {
        let Phase::Recovery(recovering) = &self.phase else {
            return None;
        };
        let loaded = recovering.loaded().ok()?;
        let manifest = loaded.current()?;
        Some(PeerTarget {
            reference: &manifest.doc().reference_values,
            coordinator_policies: manifest.doc().coordinator_policy_hashes(),
            latest_transition: loaded.latest.transition,
        })
    }

    /// Serving side: the secrets, for a peer whose evidence carries a
    /// coordinator policy of the current manifest.
    pub(super) fn peer_recover(&self, request: &PeerRecover) -> Result<Response, ApiError> {
        let (ready, policy, policy_hash) =
            self.attested_policy(request.generation, &request.claims)?;
        if !policy.is_coordinator() {
            return Err(ApiError::PermissionDenied(format!(
                "policy {} does not have the coordinator role: only coordinators receive the secrets",
                Hex(&policy_hash)
            )));
        }
        let mesh_key = MeshCaKey::from_scalar_bytes(*ready.ca.mesh_key().scalar_bytes())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Response::PeerSecrets(PeerSecrets {
            seed: SecretSeed::from_bytes(*ready.engine.seed().as_bytes()),
            salt: Salt::from_bytes(*ready.engine.salt().as_bytes()),
            mesh_key,
            latest_transition: ready.loaded.latest.transition,
        }))
    }

    /// Recovering side: adopt the secrets a peer sent, or say why not.
    pub(super) fn on_peer_secrets(&mut self, secrets: PeerSecrets, out: &mut Vec<Output>) {
        match self.adopt(secrets) {
            Ok(()) => {}
            Err(Refusal::Reload(why)) => {
                out.push(Output::Warning(why));
                self.request_snapshot(out);
            }
            Err(Refusal::Refused(why)) => {
                out.push(Output::Warning(format!("peer recovery refused: {why}")))
            }
        }
    }

    fn adopt(&mut self, secrets: PeerSecrets) -> Result<(), Refusal> {
        let Phase::Recovery(recovering) = &self.phase else {
            return Err(Refusal::Refused(
                "this replica is not in recovery any more".into(),
            ));
        };
        let loaded = recovering.loaded().map_err(|why| {
            Refusal::Reload(format!("peer recovery: the store cannot be used: {why}"))
        })?;
        if secrets.latest_transition != loaded.latest.transition {
            return Err(Refusal::Reload(format!(
                "peer recovery: the peer serves transition {}, the store read here ends at {}: re-reading the store",
                secrets.latest_transition, loaded.latest.transition
            )));
        }
        let loaded = loaded.clone();
        let engine = SeedEngine::new(secrets.seed, secrets.salt, self.env.provider);
        let ready = self
            .ready_from_engine(engine, loaded, Some(secrets.mesh_key))
            .map_err(|e| Refusal::Refused(e.to_string()))?;
        self.accept_head(&ready.loaded).map_err(Refusal::Refused)?;
        self.phase = Phase::Ready(Box::new(ready));
        Ok(())
    }
}

enum Refusal {
    /// The store may have moved on: read it again.
    Reload(String),
    /// The secrets do not fit.
    Refused(String),
}
