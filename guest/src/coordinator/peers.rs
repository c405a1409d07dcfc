//! Peer recovery, the driver's side: the state machine decides when to
//! try ([`Output::StartPeerRecovery`], see `accord_core::coordinator`'s
//! `peer` module); this dials the ready peers the shim knows of, one after
//! the other, over mutual attested TLS (the peer must run a coordinator
//! policy of the history the machine read; it checks this replica against
//! its own manifest), and reports the first secrets received
//! ([`Input::PeerSecrets`]), which the machine checks against the signed
//! tree head before adopting them, or the failure
//! ([`Input::PeerRecoveryFailed`]).
//!
//! [`Output::StartPeerRecovery`]: accord_core::coordinator::Output::StartPeerRecovery

use std::sync::Arc;
use std::time::Instant;

use accord_core::coordinator::{Input, PeerAttempt, PeerSecrets};
use accord_core::history::objects::ObjectHash;
use accord_core::protocol::shim::Peer;
use tokio::sync::mpsc;

use super::driver::Done;
use super::metrics::Metrics;
use crate::atls::{Clock, PeerPolicy};
use crate::client::recover_from_peer;
use crate::tee::TeeProvider;

/// Dials peers for the attempts the machine asks for.
pub(super) struct PeerDialer {
    tee: Arc<dyn TeeProvider>,
    metrics: Arc<Metrics>,
    /// The ready peers, as the shim last listed them.
    peers: Vec<Peer>,
    /// When the attempt in flight started.
    started: Option<Instant>,
    /// The peer whose secrets went to the machine, and when the attempt
    /// started (for the log line once the machine decided).
    adopting: Option<(String, Instant)>,
}

impl PeerDialer {
    pub(super) fn new(tee: Arc<dyn TeeProvider>, metrics: Arc<Metrics>) -> Self {
        Self {
            tee,
            metrics,
            peers: Vec::new(),
            started: None,
            adopting: None,
        }
    }

    /// A peer list from the shim: how many peers there are now, or `None`
    /// when the list did not change.
    pub(super) fn set_peers(&mut self, peers: Vec<Peer>) -> Option<usize> {
        if peers == self.peers {
            return None;
        }
        self.peers = peers;
        Some(self.peers.len())
    }

    /// Executes [`Output::StartPeerRecovery`]: asks the peers in a task;
    /// its result comes back as [`Done::Peer`].
    ///
    /// [`Output::StartPeerRecovery`]: accord_core::coordinator::Output::StartPeerRecovery
    pub(super) fn start(&mut self, attempt: PeerAttempt, done: &mpsc::UnboundedSender<Done>) {
        self.started = Some(Instant::now());
        let PeerAttempt {
            reference,
            coordinator_policies,
            latest_transition,
        } = attempt;
        let policy = PeerPolicy {
            reference,
            expected_policy_hashes: Some(coordinator_policies),
            at: Clock::System,
        };
        tracing::info!(
            "peer recovery: asking {} peer(s) for the secrets of transition {latest_transition}",
            self.peers.len(),
        );
        let peers = self.peers.clone();
        let tee = Arc::clone(&self.tee);
        let done = done.clone();
        tokio::spawn(async move {
            let result = recover_from_any(&peers, tee, policy, latest_transition).await;
            let _ = done.send(Done::Peer(Box::new(result)));
        });
    }

    /// An attempt ended: the input that reports it to the machine.
    pub(super) fn finished(&mut self, result: Result<(String, PeerSecrets), String>) -> Input {
        let started = self.started.take().unwrap_or_else(Instant::now);
        match result {
            Ok((peer, secrets)) => {
                self.adopting = Some((peer, started));
                Input::PeerSecrets(secrets)
            }
            Err(why) => {
                tracing::warn!("peer recovery failed: {why}");
                Input::PeerRecoveryFailed
            }
        }
    }

    /// Executes [`Output::PeerRecoveryEnded`]: counts the attempt.
    ///
    /// [`Output::PeerRecoveryEnded`]: accord_core::coordinator::Output::PeerRecoveryEnded
    pub(super) fn ended(&mut self, recovered: bool) {
        self.metrics.peer_recovery(recovered);
        let adopted = self.adopting.take();
        if recovered && let Some((peer, started)) = adopted {
            tracing::info!(
                "recovered from peer {peer} in {} ms",
                started.elapsed().as_millis()
            );
        }
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
