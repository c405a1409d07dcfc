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
//!
//! # Scheduling
//!
//! The machine decides when the driver dials its peers: after every input,
//! a replica in Recovery with a readable history, ready peers
//! ([`Input::ReadyPeers`](super::Input::ReadyPeers)) and no attempt in
//! flight asks for one ([`Output::StartPeerRecovery`]) when the peer list
//! changed, when the history to recover changed (the replica just went
//! stale, or re-read the store), or [`PEER_RETRY_SECS`] after the last
//! attempt (the clock is [`Input::Tick`](super::Input::Tick)). The driver
//! reports the attempt's end with
//! [`Input::PeerSecrets`](super::Input::PeerSecrets) or
//! [`Input::PeerRecoveryFailed`](super::Input::PeerRecoveryFailed), and
//! the machine says how it ended ([`Output::PeerRecoveryEnded`]).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{ApiError, Coordinator, Output, PeerRecover, PeerSecrets, Phase, Response, StateName};
use crate::evidence::ReferenceValues;
use crate::hex::Hex;
use crate::history::objects::ObjectHash;
use crate::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};
use crate::time::UnixTime;

/// Seconds between peer-recovery attempts while peers exist but none
/// could help.
pub const PEER_RETRY_SECS: i64 = 1;

/// One peer-recovery attempt for the driver to make
/// ([`Output::StartPeerRecovery`]): what to attest the peers against
/// (an owned [`PeerTarget`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAttempt {
    /// The reference values of the current manifest of the stored history.
    pub reference: ReferenceValues,
    /// The policy hashes with the coordinator role in that manifest.
    pub coordinator_policies: Vec<[u8; 32]>,
    /// The latest transition of the stored history: the secrets of this
    /// very history are wanted.
    pub latest_transition: ObjectHash,
}

/// When the last attempt was, and whether one is in flight.
#[derive(Debug, Default)]
pub(super) struct PeerSchedule {
    /// An attempt was asked for and has not been reported yet.
    in_flight: bool,
    /// The peer list changed since the last attempt started.
    peers_changed: bool,
    /// When the last attempt started.
    last_attempt: Option<UnixTime>,
    /// The latest transition the last attempt was for: a new one is tried
    /// at once.
    last_target: Option<ObjectHash>,
}

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

    /// The peer list changed: `count` ready peers now.
    pub(super) fn on_ready_peers(&mut self, count: usize) {
        self.ready_peers = count;
        self.peer_schedule.peers_changed = true;
    }

    /// The attempt in flight ended with `secrets`: adopt them (or not)
    /// and say how it ended.
    pub(super) fn on_peer_attempt_secrets(&mut self, secrets: PeerSecrets, out: &mut Vec<Output>) {
        self.peer_schedule.in_flight = false;
        self.on_peer_secrets(secrets, out);
        out.push(Output::PeerRecoveryEnded {
            recovered: self.state() == StateName::Ready,
        });
    }

    /// The attempt in flight ended without secrets.
    pub(super) fn on_peer_attempt_failed(&mut self, out: &mut Vec<Output>) {
        self.peer_schedule.in_flight = false;
        out.push(Output::PeerRecoveryEnded { recovered: false });
    }

    /// After every input: asks for an attempt if one is due (see the
    /// [module docs](self)).
    pub(super) fn schedule_peer_recovery(&mut self, out: &mut Vec<Output>) {
        if self.peer_schedule.in_flight || self.ready_peers == 0 {
            return;
        }
        let Some(target) = self.peer_target() else {
            return;
        };
        let schedule = &self.peer_schedule;
        let due = schedule.peers_changed
            || schedule.last_target != Some(target.latest_transition)
            || schedule
                .last_attempt
                .is_none_or(|at| self.now.0.saturating_sub(at.0) >= PEER_RETRY_SECS);
        if !due {
            return;
        }
        let attempt = PeerAttempt {
            reference: target.reference.clone(),
            coordinator_policies: target.coordinator_policies,
            latest_transition: target.latest_transition,
        };
        self.peer_schedule = PeerSchedule {
            in_flight: true,
            peers_changed: false,
            last_attempt: Some(self.now),
            last_target: Some(attempt.latest_transition),
        };
        out.push(Output::StartPeerRecovery(attempt));
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
    fn on_peer_secrets(&mut self, secrets: PeerSecrets, out: &mut Vec<Output>) {
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
