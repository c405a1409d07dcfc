//! Peer recovery, the driver's side: while the machine is in Recovery with
//! a readable history ([`Coordinator::peer_target`]) and the shim knows of
//! ready peers, dial them one after the other over mutual attested TLS
//! (the peer must run a coordinator policy of the history read here; it
//! checks this replica against its own manifest) and feed the first
//! secrets received to the machine, which checks them against the signed
//! tree head before adopting them.
//!
//! An attempt starts as soon as the peer list changes or the history to
//! recover changes (the replica just went stale, or re-read the store),
//! and again every [`RETRY`] while the replica stays in Recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::coordinator::{Coordinator, PeerSecrets, StateName};
use accord_core::history::objects::ObjectHash;
use accord_core::protocol::shim::Peer;
use tokio::sync::mpsc;

use super::metrics::Metrics;
use super::{Done, log};
use crate::atls::{Clock, PeerPolicy};
use crate::client::recover_from_peer;
use crate::tee::TeeProvider;

/// Pause between attempts while peers exist but none could help.
pub const RETRY: Duration = Duration::from_secs(1);

pub(super) struct PeerRecovery {
    tee: Arc<dyn TeeProvider>,
    metrics: Arc<Metrics>,
    peers: Vec<Peer>,
    changed: bool,
    in_flight: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Secrets went to the machine; count the attempt once it decided.
    adopting: Option<(String, Instant)>,
    /// The latest transition of the history the last attempt was for: a
    /// new one (this replica just went stale, or re-read the store) is
    /// tried at once.
    last_target: Option<ObjectHash>,
}

impl PeerRecovery {
    pub(super) fn new(tee: Arc<dyn TeeProvider>, metrics: Arc<Metrics>) -> Self {
        Self {
            tee,
            metrics,
            peers: Vec::new(),
            changed: false,
            in_flight: None,
            last_attempt: None,
            adopting: None,
            last_target: None,
        }
    }

    /// A new peer list from the shim.
    pub(super) fn set_peers(&mut self, peers: Vec<Peer>) {
        if peers != self.peers {
            self.peers = peers;
            self.changed = true;
        }
    }

    /// How many ready peers there are.
    pub(super) fn count(&self) -> usize {
        self.peers.len()
    }

    /// An attempt ended: the secrets to feed the machine, if any.
    pub(super) fn finished(
        &mut self,
        result: Result<(String, PeerSecrets), String>,
    ) -> Option<PeerSecrets> {
        let started = self.in_flight.take().unwrap_or_else(Instant::now);
        match result {
            Ok((peer, secrets)) => {
                self.adopting = Some((peer, started));
                Some(secrets)
            }
            Err(why) => {
                self.metrics.peer_recovery(false);
                log(&format!("peer recovery failed: {why}"));
                None
            }
        }
    }

    /// After every input, before its outputs are executed (and the state
    /// published): count an adoption the machine just decided.
    pub(super) fn after_input(&mut self, machine: &Coordinator<'_>) {
        if let Some((peer, started)) = self.adopting.take() {
            let ready = machine.state() == StateName::Ready;
            self.metrics.peer_recovery(ready);
            if ready {
                log(&format!(
                    "recovered from peer {peer} in {} ms",
                    started.elapsed().as_millis()
                ));
            }
        }
    }

    /// After every input: start an attempt if one is due.
    pub(super) fn maybe_start(
        &mut self,
        machine: &Coordinator<'_>,
        done: &mpsc::UnboundedSender<Done>,
    ) {
        if self.in_flight.is_some() || self.peers.is_empty() {
            return;
        }
        let Some(target) = machine.peer_target() else {
            return;
        };
        let new_target = self.last_target != Some(target.latest_transition);
        let due =
            self.changed || new_target || self.last_attempt.is_none_or(|at| at.elapsed() >= RETRY);
        if !due {
            return;
        }
        self.changed = false;
        self.last_target = Some(target.latest_transition);
        let now = Instant::now();
        self.last_attempt = Some(now);
        self.in_flight = Some(now);
        let policy = PeerPolicy {
            reference: target.reference.clone(),
            expected_policy_hashes: Some(target.coordinator_policies),
            at: Clock::System,
        };
        log(&format!(
            "peer recovery: asking {} peer(s) for the secrets of transition {}",
            self.peers.len(),
            target.latest_transition
        ));
        let peers = self.peers.clone();
        let tee = Arc::clone(&self.tee);
        let done = done.clone();
        let wanted = target.latest_transition;
        tokio::spawn(async move {
            let result = recover_from_any(&peers, tee, policy, wanted).await;
            let _ = done.send(Done::Peer(Box::new(result)));
        });
    }
}

/// Tries each peer in turn; the first that hands over the secrets of
/// `wanted` (the latest transition of the history read here) wins. A peer
/// on another transition (behind: it has not seen the latest update yet;
/// ahead: this replica's reading of the store is old) is passed over while
/// another peer may still fit; if none does, the secrets of the first such
/// peer go to the machine, which re-reads the store when that peer is
/// ahead.
async fn recover_from_any(
    peers: &[Peer],
    tee: Arc<dyn TeeProvider>,
    policy: PeerPolicy,
    wanted: ObjectHash,
) -> Result<(String, PeerSecrets), String> {
    let mut errors = Vec::new();
    let mut elsewhere = None;
    for peer in peers {
        match recover_from_peer(&peer.mesh_api, Arc::clone(&tee), policy.clone()).await {
            Ok(secrets) if secrets.latest_transition == wanted => {
                return Ok((peer.name.clone(), secrets));
            }
            Ok(secrets) => {
                errors.push(format!(
                    "{} serves transition {}",
                    peer.name, secrets.latest_transition
                ));
                elsewhere.get_or_insert((peer.name.clone(), secrets));
            }
            Err(err) => errors.push(format!("{} ({}): {err:#}", peer.name, peer.mesh_api)),
        }
    }
    elsewhere.ok_or_else(|| errors.join("; "))
}
