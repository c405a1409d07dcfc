//! Every API in every state, over the wire: a coordinator runs in this
//! process (`accord_guest::coordinator::spawn`) on loopback with the
//! INSECURE simulated chip, and the real clients (`UserClient`,
//! `MeshClient`) talk attested TLS and the wire protocol to it. The table
//! is the state/API matrix of Contrast's coordinator, with accord's typed
//! errors (`docs/protocol.md`):
//!
//! | API | Uninitialized | Recovery | Ready |
//! |---|---|---|---|
//! | SetManifest | ok | needs_recovery | ok with an owner signature |
//! | GetManifests | no_manifest | needs_recovery | ok |
//! | GetRecoveryState | no_manifest | ok (what it would recover to) | ok (state Ready) |
//! | Recover | no_manifest | ok (the share is taken) | already_recovered |
//! | NewMeshCert (mesh API) | refused: not ready | refused: not ready | ok |
//!
//! A `Recover` that was not sealed to the connection's recovery key (no
//! `GetRecoveryState` before it on the connection) is refused as
//! `invalid_argument` in every state.

use crate::support::*;
use accord_core::protocol::{
    ErrorCode, GetRecoveryState, GetRecoveryStateReply, ManifestSet, Recover, RecoverReply,
    RecoveryState, ReplicaState, SetManifestReply, ShareAccepted,
};
use accord_core::seedshare;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_in_every_state_over_the_wire() {
    let d = Deployment::new("table");
    let mut table: Vec<(&str, &str, String)> = Vec::new();

    // Uninitialized.
    let c = d.start().await;
    table.push((
        "Uninitialized",
        "GetManifests",
        outcome(&call(&c, &d, get()).await),
    ));
    let dummy = Recover {
        owner: [1; 32],
        encapsulated_key: [2; 32],
        ciphertext: vec![3; seedshare::SHARE_LEN + 16],
        latest_transition: [4; 32],
        seedshares: [5; 32],
        force: false,
    };
    // A Recover without a GetRecoveryState on its connection has no key to
    // open it with.
    table.push((
        "Uninitialized",
        "Recover (unsealed)",
        outcome(&call(&c, &d, dummy.clone()).await),
    ));
    table.push((
        "Uninitialized",
        "GetRecoveryState",
        outcome(&call(&c, &d, recovery_state()).await),
    ));
    table.push((
        "Uninitialized",
        "Recover",
        outcome(&recover(&c, &d, &placeholder_document(), false).await),
    ));
    table.push(("Uninitialized", "NewMeshCert", mesh(&c, &d).await));
    let set = call(&c, &d, set_request(d.manifest(0), None)).await;
    table.push(("Uninitialized", "SetManifest", outcome(&set)));
    let SetManifestReply::ManifestSet(ManifestSet {
        seed_share_document: Some(document),
        ..
    }) = set
    else {
        panic!("{set:?}")
    };

    // Ready.
    table.push(("Ready", "GetManifests", outcome(&call(&c, &d, get()).await)));
    let state = call(&c, &d, recovery_state()).await;
    assert!(
        matches!(
            state,
            GetRecoveryStateReply::RecoveryState(RecoveryState {
                state: ReplicaState::Ready,
                ..
            })
        ),
        "{state:?}"
    );
    table.push(("Ready", "GetRecoveryState", outcome(&state)));
    table.push((
        "Ready",
        "Recover",
        outcome(&recover(&c, &d, &document, false).await),
    ));
    table.push(("Ready", "NewMeshCert", mesh(&c, &d).await));
    let base = latest(&c, &d).await;
    let update = call(&c, &d, set_request(d.manifest(1), Some(base))).await;
    table.push(("Ready", "SetManifest", outcome(&update)));
    c.stop().await.unwrap();

    // Recovery: a restart on the same store.
    let c = d.start().await;
    table.push((
        "Recovery",
        "GetManifests",
        outcome(&call(&c, &d, get()).await),
    ));
    table.push((
        "Recovery",
        "SetManifest",
        outcome(&call(&c, &d, set_request(d.manifest(2), None)).await),
    ));
    table.push(("Recovery", "NewMeshCert", mesh(&c, &d).await));
    let state = call(&c, &d, recovery_state()).await;
    assert!(
        matches!(
            state,
            GetRecoveryStateReply::RecoveryState(RecoveryState {
                state: ReplicaState::Recovery,
                have: 0,
                need: 1,
                ..
            })
        ),
        "{state:?}"
    );
    table.push(("Recovery", "GetRecoveryState", outcome(&state)));
    table.push((
        "Recovery",
        "Recover (unsealed)",
        outcome(&call(&c, &d, dummy).await),
    ));
    let recovered = recover(&c, &d, &document, false).await;
    table.push(("Recovery", "Recover", outcome(&recovered)));
    assert!(
        matches!(
            recovered,
            RecoverReply::Recovery(ShareAccepted {
                recovered: Some(2),
                ..
            })
        ),
        "threshold 1: the one share recovers generation 2: {recovered:?}"
    );
    // And it serves again, under a new mesh CA but the same root key.
    table.push(("Recovery → Ready", "NewMeshCert", mesh(&c, &d).await));
    c.stop().await.unwrap();

    let expected = [
        (
            "Uninitialized",
            "GetManifests",
            format!("{:?}", ErrorCode::NoManifest),
        ),
        (
            "Uninitialized",
            "Recover (unsealed)",
            format!("{:?}", ErrorCode::InvalidArgument),
        ),
        (
            "Uninitialized",
            "GetRecoveryState",
            format!("{:?}", ErrorCode::NoManifest),
        ),
        (
            "Uninitialized",
            "Recover",
            format!("{:?}", ErrorCode::NoManifest),
        ),
        ("Uninitialized", "NewMeshCert", "not ready".into()),
        ("Uninitialized", "SetManifest", "ok".into()),
        ("Ready", "GetManifests", "ok".into()),
        ("Ready", "GetRecoveryState", "ok".into()),
        (
            "Ready",
            "Recover",
            format!("{:?}", ErrorCode::AlreadyRecovered),
        ),
        ("Ready", "NewMeshCert", "ok".into()),
        ("Ready", "SetManifest", "ok".into()),
        (
            "Recovery",
            "GetManifests",
            format!("{:?}", ErrorCode::NeedsRecovery),
        ),
        (
            "Recovery",
            "SetManifest",
            format!("{:?}", ErrorCode::NeedsRecovery),
        ),
        ("Recovery", "NewMeshCert", "not ready".into()),
        ("Recovery", "GetRecoveryState", "ok".into()),
        (
            "Recovery",
            "Recover (unsealed)",
            format!("{:?}", ErrorCode::InvalidArgument),
        ),
        ("Recovery", "Recover", "ok".into()),
        ("Recovery → Ready", "NewMeshCert", "ok".into()),
    ];
    for ((state, api, got), (s, a, want)) in table.iter().zip(expected.iter()) {
        assert_eq!((*state, *api), (*s, *a));
        assert_eq!(got, want, "{api} in {state}");
    }
    assert_eq!(table.len(), expected.len());
    let _ = std::fs::remove_dir_all(&d.dir);
}

fn recovery_state() -> GetRecoveryState {
    GetRecoveryState {
        consistency_from: None,
    }
}

/// A seed-share document for a coordinator that has none yet (never
/// opened: `GetRecoveryState` refuses first).
fn placeholder_document() -> accord_core::seedshare::SeedShareDocument {
    let rng = accord_guest::coordinator::OsRandom;
    accord_core::seedshare::split(
        &accord_core::kdf::SecretSeed::from_bytes([1; 64]),
        &accord_core::kdf::Salt::from_bytes([2; 32]),
        &[accord_core::seedshare::owner_public_key(&SEEDSHARE_SECRET)],
        1,
        accord_core::crypto::default_provider(),
        &rng,
    )
    .unwrap()
}
