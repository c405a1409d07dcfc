//! Property test of the state machine: random sequences of requests,
//! storage failures, restarts and recoveries, checking after every step
//! that Ready always has its secrets, that a Ready replica serves exactly
//! the stored generation, that the generation never decreases, and that
//! the tree head never goes back (each new one is proven consistent with
//! the last one seen).

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::tests::*;
use super::*;
use crate::crypto::rustcrypto::PROVIDER;
use crate::history::tree_head::{TreeHead, check_newer};

#[derive(Clone, Debug)]
enum Op {
    SetFirst(u32),
    Update {
        variant: u32,
        signed: bool,
        cas: bool,
    },
    Get,
    Mesh,
    FailNextWrite {
        conflict: bool,
    },
    Restart,
    Recover(usize),
    Tick(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..4).prop_map(Op::SetFirst),
        (0u32..6, any::<bool>(), any::<bool>()).prop_map(|(variant, signed, cas)| Op::Update {
            variant,
            signed,
            cas
        }),
        Just(Op::Get),
        Just(Op::Mesh),
        any::<bool>().prop_map(|conflict| Op::FailNextWrite { conflict }),
        Just(Op::Restart),
        (0usize..3).prop_map(Op::Recover),
        any::<u8>().prop_map(Op::Tick),
    ]
}

fn stored_generation(h: &Harness) -> u64 {
    h.store.get(store::LATEST_KEY).map_or(0, |b| {
        store::LatestRecord::decode(b).unwrap().head.head.generation
    })
}

fn run(threshold: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let people = People::new();
    let mut h = Harness::new();
    let mut document = None;
    let mut max_generation = 0u64;
    let mut seen_head: Option<TreeHead> = None;
    let mut now = NOW.0;

    for op in ops {
        match op {
            Op::SetFirst(variant) => {
                let result = h.call(first_set(people.manifest(*variant, threshold)));
                if let Ok(Response::ManifestSet(set)) = result {
                    document = set.seed_share_document;
                }
            }
            Op::Update {
                variant,
                signed,
                cas,
            } => {
                if h.store.contains_key(store::LATEST_KEY) {
                    let latest = h.latest();
                    let Request::SetManifest(mut set) = h.signed_update(
                        people.manifest(*variant + 10, threshold),
                        latest,
                        &people.owner,
                    ) else {
                        unreachable!()
                    };
                    if !signed {
                        set.signatures.clear();
                    }
                    if *cas {
                        set.expected_previous_transition = Some(latest.0);
                    }
                    let before = stored_generation(&h);
                    let ready = h.machine.state() == StateName::Ready;
                    let failing = h.fail_next_write.is_some();
                    let result = h.call(Request::SetManifest(set));
                    if ready && *signed && !failing {
                        prop_assert_eq!(code(&result), "ok");
                        prop_assert_eq!(stored_generation(&h), before + 1);
                    }
                    if result.is_err() {
                        prop_assert_eq!(stored_generation(&h), before);
                    }
                }
            }
            Op::Get => {
                let _ = h.call(Request::GetManifests(GetManifests::default()));
            }
            Op::Mesh => {
                let generation = h.machine.generation();
                let _ = h.call(mesh_request(generation, WEB_POLICY));
            }
            Op::FailNextWrite { conflict } => {
                h.fail_next_write = Some(if *conflict {
                    StoreError::Conflict
                } else {
                    StoreError::Failed("injected".into())
                });
            }
            Op::Restart => h.restart(),
            Op::Recover(i) => {
                if let Some(document) = &document {
                    let _ = h.call(h.recover_request(&people, document, *i));
                }
            }
            Op::Tick(dt) => {
                now += i64::from(*dt);
                h.feed(Input::Tick(UnixTime(now)));
            }
        }

        // Invariants.
        let state = h.machine.state();
        prop_assert!(
            state != StateName::Uninitialized || h.store.is_empty(),
            "uninitialized over a non-empty store"
        );
        if state == StateName::Ready {
            let generation = h.machine.generation();
            prop_assert_eq!(
                generation,
                stored_generation(&h),
                "ready but not in step with the store"
            );
            prop_assert!(generation >= max_generation, "generation went back");
            max_generation = generation;
            // Ready has its secrets: it issues a certificate with a
            // workload secret.
            match h.call(mesh_request(generation, WEB_POLICY)) {
                Ok(Response::MeshCert(cert)) => prop_assert!(cert.workload_secret.is_some()),
                other => prop_assert!(false, "ready replica cannot issue: {:?}", other),
            }
            // The tree head only moves forward, provably.
            let reply = h.call(Request::GetManifests(GetManifests {
                consistency_from: seen_head.map(|s| s.size),
                inclusion_of: vec![],
            }));
            let Ok(Response::Manifests(m)) = reply else {
                return Err(TestCaseError::fail("GetManifests failed while ready"));
            };
            let key = ed25519_dalek::VerifyingKey::from_bytes(&m.history_public_key).unwrap();
            let head = m.signed_tree_head.verify(&key).unwrap();
            if let Some(seen) = &seen_head {
                let proof: Vec<_> = m.consistency_proof.unwrap_or_default();
                prop_assert!(
                    check_newer(&PROVIDER, seen, &head, &proof).is_ok(),
                    "tree head went back"
                );
            }
            seen_head = Some(head);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_invariants(
        threshold in 1u32..=3,
        ops in proptest::collection::vec(op(), 1..24),
    ) {
        run(threshold, &ops)?;
    }
}

#[test]
fn a_long_fixed_sequence() {
    use Op::*;
    let ops = [
        SetFirst(0),
        Update {
            variant: 1,
            signed: true,
            cas: true,
        },
        FailNextWrite { conflict: false },
        Update {
            variant: 2,
            signed: true,
            cas: false,
        },
        Restart,
        Recover(0),
        Recover(1),
        Recover(2),
        Update {
            variant: 3,
            signed: true,
            cas: true,
        },
        FailNextWrite { conflict: true },
        Update {
            variant: 4,
            signed: true,
            cas: true,
        },
        Recover(1),
        Recover(2),
        Update {
            variant: 5,
            signed: false,
            cas: false,
        },
        Get,
        Mesh,
    ];
    run(2, &ops).unwrap();
}
