//! The host's attacks on the state machine (issue 13), each refused: a
//! forged seed-share record, an unsigned longer history, a replayed or
//! flipped update, another deployment's signature, and requests that ask
//! for unbounded work. The store here is the host's: the tests write into
//! it whatever a host could.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::store::{self, LatestRecord, SeedShareRecord};
use super::tests::*;
use super::*;
use crate::crypto::rustcrypto::PROVIDER;
use crate::history::objects::{ObjectHash, ObjectKind};
use crate::kdf::{Salt, SecretSeed};
use crate::manifest::SeedshareKey;
use crate::seedshare::{self, SeedShareDocument};

/// What a store writer can make: its own seed, salt and sharing.
struct Forger {
    seed: SecretSeed,
    salt: Salt,
}

impl Forger {
    fn new(byte: u8) -> Self {
        Self {
            seed: SecretSeed::from_bytes([byte; 64]),
            salt: Salt::from_bytes([byte; 32]),
        }
    }

    /// A sharing of the forger's seed among `owners`.
    fn share_to(&self, owners: &[SeedshareKey], threshold: u8) -> SeedShareDocument {
        let rng = env(77).rng;
        seedshare::split(&self.seed, &self.salt, owners, threshold, &PROVIDER, rng).unwrap()
    }

    /// `store` with `record` in force: the genuine chain, a tree head that
    /// names the record, signed with the forger's history key.
    fn rewrite(
        &self,
        store: &BTreeMap<String, Vec<u8>>,
        record: &SeedShareRecord,
    ) -> BTreeMap<String, Vec<u8>> {
        let mut store = store.clone();
        let latest = LatestRecord::decode(&store[store::LATEST_KEY]).unwrap();
        let bytes = record.encode();
        let address = ObjectHash::of(&PROVIDER, &bytes);
        store.insert(store::object_key(ObjectKind::SeedShares, &address), bytes);
        let engine = crate::kdf::SeedEngine::new(self.seed.clone(), self.salt.clone(), &PROVIDER);
        let key = engine.history_signing_key().unwrap();
        let mut head = latest.head.head;
        head.seedshares = address.0;
        let forged = LatestRecord {
            transition: latest.transition,
            head: head.sign(&key),
        };
        store.insert(store::LATEST_KEY.into(), forged.encode());
        store
    }
}

fn recover_as(h: &Harness, owner: SeedshareKey, share: seedshare::Share) -> Request {
    Request::Recover(Recover {
        owner,
        share,
        target: h.target(),
        force: true,
    })
}

/// Attack 1: the store writer adds its own seed-share record (its salt,
/// its commitments) and signs the genuine tree head with the history key
/// of its own seed, then restarts a replica.
#[test]
fn a_forged_seedshare_record_cannot_choose_the_seed() {
    let people = People::new();
    let (h, document) = ready(&people, 1);
    let forger = Forger::new(0xee);
    let attacker_secret = [0x99u8; 32];
    let attacker_key = seedshare::owner_public_key(&attacker_secret);

    // (a) Threshold 1, shared to the attacker's own key, submitted with
    // force from an unauthenticated client: the transport authenticates
    // the attacker's key, which the manifest does not name.
    let own = forger.share_to(&[attacker_key], 1);
    let store = forger.rewrite(&h.store, &SeedShareRecord::from_document(&own));
    let mut t = Harness::with_store(store, 200);
    assert_eq!(t.machine.state(), StateName::Recovery);
    let share = seedshare::open(
        &own.shares[0],
        &own.commitments,
        &attacker_secret,
        &PROVIDER,
    )
    .unwrap();
    let result = t.call(recover_as(&t, attacker_key, share));
    assert_eq!(code(&result), "permission_denied", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("not a seed-share owner"));
    assert_eq!(t.machine.state(), StateName::Recovery);

    // (b) The forged sharing names the manifest's owners and threshold
    // (the forger seals shares of its own seed to them). An owner who sends
    // the share from its own seed-shares.json: it does not match the forged
    // commitments.
    let owners: Vec<SeedshareKey> = (0..3).map(|i| people.seedshare_key(i)).collect();
    let mimic = forger.share_to(&owners, 1);
    let store = forger.rewrite(&h.store, &SeedShareRecord::from_document(&mimic));
    let mut t = Harness::with_store(store, 201);
    let result = t.call(t.recover_request(&people, &document, 0));
    assert_eq!(code(&result), "invalid_argument", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("does not match the commitments"));
    assert_eq!(t.machine.state(), StateName::Recovery);

    // (c) Another threshold than the manifest's.
    let (h2, document2) = ready(&people, 2);
    let lower = forger.share_to(&owners, 1);
    let store = forger.rewrite(&h2.store, &SeedShareRecord::from_document(&lower));
    let mut t = Harness::with_store(store, 202);
    let result = t.call(t.recover_request(&people, &document2, 0));
    assert_eq!(code(&result), "permission_denied", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("threshold 1"));

    // (d) Other owners than the manifest's (the attacker in place of one).
    let replaced = forger.share_to(&[owners[0], owners[1], attacker_key], 1);
    let store = forger.rewrite(&h.store, &SeedShareRecord::from_document(&replaced));
    let mut t = Harness::with_store(store, 203);
    let result = t.call(t.recover_request(&people, &document, 0));
    assert_eq!(code(&result), "permission_denied", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("differ from the manifest"));

    // (e) The record swapped under the genuine signed head: the head names
    // another record, so the store does not load at all.
    let mut store = h.store.clone();
    let genuine = LatestRecord::decode(&h.store[store::LATEST_KEY]).unwrap();
    let key = store::object_key(ObjectKind::SeedShares, &genuine.seedshares());
    store.insert(key, SeedShareRecord::from_document(&mimic).encode());
    let mut t = Harness::with_store(store, 204);
    let result = t.call(t.recover_request(&people, &document, 0));
    assert_ne!(code(&result), "ok", "{result:?}");
    assert_eq!(t.machine.state(), StateName::Recovery);
}

/// The last line: shares that do match the record in force, but rebuild a
/// seed whose history key did not sign the head (here: another
/// deployment's record with the same owners, under a head the forger
/// signed). The replica stays in Recovery.
#[test]
fn a_seed_that_does_not_sign_the_history_is_refused() {
    let people = People::new();
    let (h, _) = ready(&people, 1);
    // Another deployment with the same manifest, hence the same owners.
    let mut other = Harness::with_store(BTreeMap::new(), 99);
    let set = set_ok(other.call(first_set(people.manifest(0, 1))));
    let other_document = set.seed_share_document.unwrap();
    let forger = Forger::new(0x42);
    let store = forger.rewrite(&h.store, &SeedShareRecord::from_document(&other_document));
    let mut t = Harness::with_store(store, 100);
    let result = t.call(t.recover_request(&people, &other_document, 0));
    assert_eq!(code(&result), "invalid_argument", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("does not sign"));
    assert_eq!(t.machine.state(), StateName::Recovery);
}

/// A store that extends the Ready replica's history with `manifest`, under
/// a head signed by `key` (or with a garbled signature when `None`).
fn longer_history(
    h: &Harness,
    manifest: &[u8],
    key: Option<&ed25519_dalek::SigningKey>,
) -> BTreeMap<String, Vec<u8>> {
    let mut store = h.store.clone();
    let latest = LatestRecord::decode(&store[store::LATEST_KEY]).unwrap();
    let manifest_hash = ObjectHash::of(&PROVIDER, manifest);
    store.insert(
        store::object_key(ObjectKind::Manifest, &manifest_hash),
        manifest.to_vec(),
    );
    let transitions: Vec<_> = {
        let snapshot = store::StoreSnapshot {
            objects: store.clone(),
        };
        let loaded = store::load(&PROVIDER, &snapshot).unwrap().unwrap();
        loaded.transitions
    };
    let mut history = crate::history::History::new();
    for address in &transitions {
        let key = store::object_key(ObjectKind::Transition, address);
        let transition = crate::history::objects::Transition::decode(&store[&key]).unwrap();
        history.append(&PROVIDER, transition.manifest);
    }
    let (transition, address) = history.append(&PROVIDER, manifest_hash);
    store.insert(
        store::object_key(ObjectKind::Transition, &address),
        transition.encode().to_vec(),
    );
    let head = history.tree_head(&PROVIDER, &latest.seedshares());
    let signed = match key {
        Some(key) => head.sign(key),
        None => crate::history::tree_head::SignedTreeHead {
            head,
            signature: [7; 64],
        },
    };
    store.insert(
        store::LATEST_KEY.into(),
        LatestRecord {
            transition: address,
            head: signed,
        }
        .encode(),
    );
    store
}

/// Attack 2: the store writer appends a transition with any signature.
/// A Ready replica checks it with its own history key and keeps serving.
#[test]
fn a_ready_replica_keeps_its_secrets_against_a_forged_longer_history() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[0x66; 32]);
    for (name, store) in [
        ("garbled", longer_history(&h, &people.manifest(9, 1), None)),
        (
            "attacker-signed",
            longer_history(&h, &people.manifest(9, 1), Some(&attacker)),
        ),
    ] {
        let latest = store[store::LATEST_KEY].clone();
        h.store = store.clone();
        h.feed(Input::LatestChanged(latest));
        assert_eq!(h.machine.state(), StateName::Ready, "{name}");
        assert_eq!(h.machine.generation(), 1, "{name}");
        assert!(
            h.forged.iter().any(|w| w.contains("did not sign")),
            "{name}: {:?}",
            h.forged
        );
        // Still serving certificates.
        assert_eq!(code(&h.call(mesh_request(1, WEB_POLICY))), "ok", "{name}");
        // A compare-and-swap the host fails on purpose leads to the same
        // check, not to recovery.
        h.fail_next_write = Some(StoreError::Conflict);
        let result =
            h.call(h.signed_update(people.manifest(1, 1), h.latest_served(), &people.owner));
        assert_eq!(code(&result), "manifest_conflict", "{name}");
        assert_eq!(h.machine.state(), StateName::Ready, "{name}");
        h.forged.clear();
    }
    // A fork signed with the deployment's own key (two writers with the
    // same secrets diverged) is refused too, by name.
    let key = {
        let Phase::Ready(ready) = &h.machine.phase else {
            unreachable!()
        };
        ready.history_key.clone()
    };
    let genuine_store = {
        let mut s = h.store.clone();
        // Back to the genuine latest record the replica serves.
        s.insert(store::LATEST_KEY.into(), h.machine_latest_bytes());
        s
    };
    h.store = genuine_store.clone();
    let longer = longer_history(&h, &people.manifest(8, 1), Some(&key));
    h.feed(Input::Snapshot(Ok(store::StoreSnapshot {
        objects: longer,
    })));
    assert_eq!(
        h.machine.state(),
        StateName::Recovery,
        "a genuine longer history (same key) makes the replica stale"
    );
    // The newer head was verified: the host cannot now roll the store back
    // to the history the replica served before and have it recover there.
    h.warnings.clear();
    h.feed(Input::Snapshot(Ok(store::StoreSnapshot {
        objects: genuine_store,
    })));
    assert_eq!(h.machine.recovery_target(), None, "{:?}", h.warnings);
    assert!(
        h.warnings.iter().any(|w| w.contains("rollback refused")),
        "{:?}",
        h.warnings
    );
}

/// Attack 4 (the reshare flag is covered: see
/// `an_explicit_reshare_hands_the_seed_to_new_owners`) and the deployment
/// binding: a signature made for one deployment does not apply to another
/// with the very same history.
#[test]
fn an_update_signature_names_its_deployment() {
    let people = People::new();
    let (mut a, _) = ready(&people, 1);
    let mut b = Harness::with_store(BTreeMap::new(), 31);
    set_ok(b.call(first_set(people.manifest(0, 1))));
    assert_eq!(a.latest(), b.latest(), "the same history");
    assert_ne!(
        a.machine.history_public_key(),
        b.machine.history_public_key()
    );
    let for_a = a.signed_update(people.manifest(1, 1), a.latest(), &people.owner);
    let Request::SetManifest(copy) = &for_a else {
        unreachable!()
    };
    let copy = copy.clone();
    let result = b.call(Request::SetManifest(copy));
    assert_eq!(code(&result), "invalid_signature", "{result:?}");
    assert!(
        format!("{}", result.unwrap_err())
            .contains("does not verify over the update of deployment")
    );
    assert_eq!(set_ok(a.call(for_a)).generation, 2);
}

/// Attack 5, in the state machine: no request makes it do unbounded work.
#[test]
fn requests_are_bounded() {
    let people = People::new();
    let (mut h, _) = ready(&people, 1);
    // Inclusion proofs: at most 64 per request, duplicates answered once.
    let many = h.call(Request::GetManifests(GetManifests {
        consistency_from: None,
        inclusion_of: vec![0; 16_000_000 / 1_000],
    }));
    assert_eq!(code(&many), "invalid_argument");
    assert!(format!("{}", many.unwrap_err()).contains("at most 64"));
    match h.call(Request::GetManifests(GetManifests {
        consistency_from: None,
        inclusion_of: vec![0; 64],
    })) {
        Ok(Response::Manifests(m)) => assert_eq!(m.inclusion_proofs.len(), 1),
        other => panic!("{other:?}"),
    }
    // Signatures: at most one per owner key, checked before any is
    // verified.
    let Request::SetManifest(signed) =
        h.signed_update(people.manifest(1, 1), h.latest(), &people.owner)
    else {
        unreachable!()
    };
    let mut flood = signed.clone();
    flood.signatures = vec![signed.signatures[0].clone(); 10_000];
    let result = h.call(Request::SetManifest(flood));
    assert_eq!(code(&result), "invalid_argument", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("at most one signature per key"));
    let mut twice = signed.clone();
    twice.signatures = vec![signed.signatures[0].clone(); 2];
    let result = h.call(Request::SetManifest(twice));
    assert_eq!(code(&result), "invalid_argument", "{result:?}");
    assert!(format!("{}", result.unwrap_err()).contains("repeats the key"));
    assert_eq!(set_ok(h.call(Request::SetManifest(signed))).generation, 2);
}

/// What a replica says it would recover to, and what a workload learns of
/// who can know the seed.
#[test]
fn recovery_state_and_deployment_facts() {
    let people = People::new();
    let (mut h, document) = ready(&people, 2);
    let served = h.manifests();
    // The facts a workload gets with its certificate.
    let facts = match h.call(mesh_request(1, WEB_POLICY)) {
        Ok(Response::MeshCert(cert)) => cert.deployment,
        other => panic!("{other:?}"),
    };
    assert_eq!(facts.generation, 1);
    assert_eq!(
        facts.sharings,
        vec![SharingFacts {
            threshold: 2,
            owners: (0..3).map(|i| people.seedshare_key(i)).collect()
        }]
    );
    assert_eq!(facts.workload_owners.len(), 2);
    // A re-share adds a sharing: the old owners can still rebuild the seed.
    set_ok(h.call(h.signed_reshare(
        people.manifest_with(1, 1, true, 2),
        h.latest(),
        &people.owner,
    )));
    let facts = match h.call(mesh_request(2, WEB_POLICY)) {
        Ok(Response::MeshCert(cert)) => cert.deployment,
        other => panic!("{other:?}"),
    };
    assert_eq!(facts.sharings.len(), 2);
    assert_eq!(facts.sharings[1].threshold, 1);
    assert_eq!(facts.sharings[1].owners.len(), 2);
    // The stored record holds the new sealed shares, fetchable by owners.
    let m = h.manifests();
    let record = SeedShareRecord::decode(&m.seedshare_record).unwrap();
    assert_eq!(
        ObjectHash::of(&PROVIDER, &m.seedshare_record).0,
        m.signed_tree_head.head.seedshares
    );
    assert_eq!(record.sharing.unwrap().shares.len(), 2);

    // Ready: the state says so.
    match h.call(Request::GetRecoveryState(GetRecoveryState::default())) {
        Ok(Response::RecoveryState(state)) => assert_eq!(state.state, StateName::Ready),
        other => panic!("{other:?}"),
    }
    // In Recovery: the stored head, record and manifest, and a consistency
    // proof from what the owner trusts.
    let (mut h, _) = ready(&people, 2);
    let first = h.manifests().signed_tree_head.head;
    set_ok(h.call(h.signed_update(people.manifest(3, 2), h.latest(), &people.owner)));
    h.restart();
    let state = match h.call(Request::GetRecoveryState(GetRecoveryState {
        consistency_from: Some(first.size),
    })) {
        Ok(Response::RecoveryState(state)) => state,
        other => panic!("{other:?}"),
    };
    assert_eq!(state.state, StateName::Recovery);
    assert_eq!(state.latest_transition, h.latest());
    assert_eq!(state.transition.hash(&PROVIDER), h.latest());
    assert_eq!(state.manifest, people.manifest(3, 2));
    assert_eq!((state.have, state.need), (0, 2));
    crate::history::tree_head::check_newer(
        &PROVIDER,
        &first,
        &state.signed_tree_head.head,
        state.consistency_proof.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(
        ObjectHash::of(&PROVIDER, &state.seedshare_record).0,
        state.signed_tree_head.head.seedshares
    );
    let _ = (served, document);
    // Uninitialized: nothing to recover.
    let mut empty = Harness::new();
    assert_eq!(
        code(&empty.call(Request::GetRecoveryState(GetRecoveryState::default()))),
        "no_manifest"
    );
}
