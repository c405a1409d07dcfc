//! Peer recovery: what a Ready replica hands out, to whom, and what a
//! recovering replica accepts.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;

use super::tests::*;
use super::*;
use crate::crypto::CryptoProvider;
use crate::crypto::rustcrypto::PROVIDER;

fn peer_request(generation: u64, policy: &[u8]) -> Request {
    Request::PeerRecover(PeerRecover {
        generation,
        claims: claims_for(policy),
    })
}

fn secrets_from(h: &mut Harness) -> PeerSecrets {
    let generation = h.machine.generation();
    match h.call(peer_request(generation, COORD_POLICY)) {
        Ok(Response::PeerSecrets(secrets)) => secrets,
        other => panic!("PeerRecover: {other:?}"),
    }
}

#[test]
fn a_restarted_replica_adopts_a_peers_secrets_and_mesh_ca() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let mut b = Harness::with_store(a.store.clone(), 7);
    assert_eq!(b.machine.state(), StateName::Recovery);

    let target = b.machine.peer_target().expect("a target in recovery");
    assert_eq!(
        target.coordinator_policies,
        vec![PROVIDER.sha256(&[COORD_POLICY])]
    );
    assert_eq!(target.latest_transition, a.latest());
    assert!(a.machine.peer_target().is_none(), "Ready has no target");

    let secrets = secrets_from(&mut a);
    b.feed(Input::PeerSecrets(secrets));
    assert_eq!(b.machine.state(), StateName::Ready, "{:?}", b.warnings);
    assert_eq!(b.machine.generation(), a.machine.generation());
    let (ma, mb) = (a.manifests(), b.manifests());
    assert_eq!(key_of(&ma.mesh_ca), key_of(&mb.mesh_ca), "same mesh CA key");
    assert_eq!(key_of(&ma.root_ca), key_of(&mb.root_ca));
    assert_eq!(ma.signed_tree_head.head, mb.signed_tree_head.head);
    assert_eq!(ma.history_public_key, mb.history_public_key);
    // B issues certificates under the shared mesh CA.
    let generation = b.machine.generation();
    assert_eq!(code(&b.call(mesh_request(generation, WEB_POLICY))), "ok");
}

#[test]
fn only_coordinators_of_the_current_generation_receive_the_secrets() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let generation = a.machine.generation();
    let web = a.call(peer_request(generation, WEB_POLICY));
    assert_eq!(code(&web), "permission_denied");
    assert!(format!("{}", web.unwrap_err()).contains("coordinator role"));
    let unknown = a.call(peer_request(generation, b"not in the manifest"));
    assert_eq!(code(&unknown), "permission_denied");
    assert_eq!(
        code(&a.call(peer_request(generation + 1, COORD_POLICY))),
        "manifest_conflict"
    );
    // Nobody gets secrets from a replica that has none.
    a.restart();
    assert_eq!(
        code(&a.call(peer_request(generation, COORD_POLICY))),
        "needs_recovery"
    );
    let mut empty = Harness::new();
    assert_eq!(
        code(&empty.call(peer_request(0, COORD_POLICY))),
        "no_manifest"
    );
}

#[test]
fn secrets_of_another_deployment_are_refused() {
    let people = People::new();
    let (a, _) = ready(&people, 1);
    // Same manifest, another seed: its secrets cannot sign our history.
    let mut other = Harness::with_store(BTreeMap::new(), 99);
    set_ok(other.call(first_set(people.manifest(0, 1))));
    let mut secrets = secrets_from(&mut other);
    let mut b = Harness::with_store(a.store.clone(), 8);
    // Claim our transition so the mismatch is the key's, not the history's.
    secrets.latest_transition = a.latest();
    b.feed(Input::PeerSecrets(secrets));
    assert_eq!(b.machine.state(), StateName::Recovery);
    assert!(
        b.warnings.iter().any(|w| w.contains("does not sign")),
        "{:?}",
        b.warnings
    );
}

#[test]
fn secrets_for_another_history_reload_the_store_first() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let mut b = Harness::with_store(a.store.clone(), 9);
    // A moves on after B read the store; B's harness store is still old.
    set_ok(a.call(a.signed_update(people.manifest(1, 1), a.latest(), &people.owner)));
    let secrets = secrets_from(&mut a);
    b.feed(Input::PeerSecrets(secrets.clone()));
    assert_eq!(b.machine.state(), StateName::Recovery);
    assert!(
        b.warnings
            .iter()
            .any(|w| w.contains("re-reading the store")),
        "{:?}",
        b.warnings
    );
    // Once B's store has caught up, the same secrets work.
    b.store = a.store.clone();
    b.feed(Input::LatestChanged(a.store[store::LATEST_KEY].clone()));
    b.feed(Input::PeerSecrets(secrets));
    assert_eq!(b.machine.state(), StateName::Ready, "{:?}", b.warnings);
    assert_eq!(b.machine.generation(), 2);
}

#[test]
fn a_ready_replica_ignores_peer_secrets() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let secrets = secrets_from(&mut a);
    let before = a.manifests().mesh_ca;
    a.feed(Input::PeerSecrets(secrets));
    assert_eq!(a.machine.state(), StateName::Ready);
    assert!(a.warnings.iter().any(|w| w.contains("not in recovery")));
    assert_eq!(a.manifests().mesh_ca, before);
}

// Scheduling: the machine asks for attempts, driven by peer counts, the
// history it reads and ticks (no clock of its own, no sleeps here).

fn tick(h: &mut Harness, seconds_after_now: i64) {
    h.feed(Input::Tick(UnixTime(NOW.0 + seconds_after_now)));
}

#[test]
fn a_recovering_replica_asks_for_an_attempt_when_peers_appear() {
    let people = People::new();
    let (a, _) = ready(&people, 1);
    let mut b = Harness::with_store(a.store.clone(), 10);
    // No peers: ticks ask for nothing.
    tick(&mut b, 1);
    tick(&mut b, 5);
    assert!(b.peer_attempts.is_empty());
    // A peer appears: an attempt at once, for the history B read.
    b.feed(Input::ReadyPeers(1));
    assert_eq!(b.peer_attempts.len(), 1);
    let attempt = &b.peer_attempts[0];
    assert_eq!(attempt.latest_transition, a.latest());
    assert_eq!(
        attempt.coordinator_policies,
        vec![PROVIDER.sha256(&[COORD_POLICY])]
    );
    let target = b.machine.peer_target().expect("a target");
    assert_eq!(&attempt.reference, target.reference);
}

#[test]
fn one_attempt_at_a_time_and_a_retry_a_second_after_the_last() {
    let people = People::new();
    let (a, _) = ready(&people, 1);
    let mut b = Harness::with_store(a.store.clone(), 11);
    tick(&mut b, 10);
    b.feed(Input::ReadyPeers(2));
    assert_eq!(b.peer_attempts.len(), 1);
    // In flight: neither ticks nor a new peer list start another.
    tick(&mut b, 20);
    b.feed(Input::ReadyPeers(3));
    assert_eq!(b.peer_attempts.len(), 1);
    // It fails; the peer list changed meanwhile: the next starts at once.
    b.feed(Input::PeerRecoveryFailed);
    assert_eq!(b.peer_ended, vec![false]);
    assert_eq!(b.peer_attempts.len(), 2);
    // That one fails too; nothing changed: wait for the retry interval.
    b.feed(Input::PeerRecoveryFailed);
    assert_eq!(b.peer_attempts.len(), 2);
    tick(&mut b, 20);
    assert_eq!(b.peer_attempts.len(), 2, "not within the same second");
    tick(&mut b, 20 + PEER_RETRY_SECS);
    assert_eq!(b.peer_attempts.len(), 3);
    assert_eq!(b.peer_ended, vec![false, false]);
    // The peers went away: the attempt in flight ends, no more start.
    b.feed(Input::ReadyPeers(0));
    b.feed(Input::PeerRecoveryFailed);
    tick(&mut b, 60);
    assert_eq!(b.peer_attempts.len(), 3);
}

#[test]
fn adopted_secrets_end_the_attempts() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let mut b = Harness::with_store(a.store.clone(), 12);
    b.feed(Input::ReadyPeers(1));
    assert_eq!(b.peer_attempts.len(), 1);
    b.feed(Input::PeerSecrets(secrets_from(&mut a)));
    assert_eq!(b.machine.state(), StateName::Ready);
    assert_eq!(b.peer_ended, vec![true]);
    // Ready: no more attempts, whatever the peers and the clock do.
    b.feed(Input::ReadyPeers(2));
    tick(&mut b, 30);
    assert_eq!(b.peer_attempts.len(), 1);
    // Ready replicas never ask, even with peers from the start.
    a.feed(Input::ReadyPeers(1));
    tick(&mut a, 30);
    assert!(a.peer_attempts.is_empty());
}

#[test]
fn refused_secrets_end_the_attempt_unrecovered_and_a_new_history_is_tried_at_once() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let mut b = Harness::with_store(a.store.clone(), 13);
    b.feed(Input::ReadyPeers(1));
    // A moves on: its secrets are for a history B has not read yet.
    set_ok(a.call(a.signed_update(people.manifest(1, 1), a.latest(), &people.owner)));
    b.feed(Input::PeerSecrets(secrets_from(&mut a)));
    assert_eq!(b.peer_ended, vec![false]);
    assert_eq!(b.machine.state(), StateName::Recovery);
    // B re-read its (old) store: same target, within the same second: no
    // new attempt yet.
    assert_eq!(b.peer_attempts.len(), 1);
    // B's store catches up: the new history is tried without waiting.
    b.store = a.store.clone();
    b.feed(Input::LatestChanged(a.store[store::LATEST_KEY].clone()));
    assert_eq!(b.peer_attempts.len(), 2);
    assert_eq!(b.peer_attempts[1].latest_transition, a.latest());
}

#[test]
fn an_uninitialized_replica_never_asks() {
    let mut empty = Harness::new();
    empty.feed(Input::ReadyPeers(1));
    tick(&mut empty, 10);
    assert!(empty.peer_attempts.is_empty());
}
