//! A hostile host shim: it tampers with stored objects, rolls the latest
//! record back, swaps in a forked history, and lists impostors as peers.
//! The agent must detect each, refuse it, keep serving what it verified,
//! and hand its secrets only to attested coordinators of its manifest.
//!
//! Replicas run in this process over shim channels that share one
//! in-memory store (`MemStore::tamper` plays the hostile host); the chip
//! is the INSECURE simulated one.

use std::sync::Arc;

use crate::support::*;
use accord_core::protocol::shim::{AgentState, Peer};
use accord_core::protocol::{
    ErrorCode, GetManifestsReply, ManifestSet, Manifests, RecoverReply, SetManifestReply, UserReply,
};
use accord_core::seedshare::SeedShareDocument;
use accord_guest::client::recover_from_peer;
use accord_guest::coordinator::InProcess;
use accord_shim::mem_store::MemStore;

fn code_of<R: UserReply>(response: &R) -> Option<ErrorCode> {
    response.error().map(|e| e.code)
}

async fn generation(c: &InProcess, d: &Deployment) -> usize {
    match call(c, d, get()).await {
        GetManifestsReply::Manifests(Manifests { manifests, .. }) => manifests.len(),
        other => panic!("{other:?}"),
    }
}

/// A Ready replica A on a fresh store, with the first manifest set.
async fn ready_replica(d: &Deployment) -> (Arc<MemStore>, ShimHandle, InProcess) {
    let (store, shim, a, _) = ready_replica_with_document(d).await;
    (store, shim, a)
}

async fn ready_replica_with_document(
    d: &Deployment,
) -> (Arc<MemStore>, ShimHandle, InProcess, SeedShareDocument) {
    let store = Arc::new(MemStore::default());
    let shim = start_shim(&store).await;
    let a = d.start_with_shim(&shim.addr).await;
    let set = call(&a, d, set_request(d.manifest(0), None)).await;
    let SetManifestReply::ManifestSet(ManifestSet {
        seed_share_document: Some(document),
        ..
    }) = set
    else {
        panic!("{set:?}")
    };
    (store, shim, a, document)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_object_is_detected_and_nothing_recovers_from_it() {
    let d = Deployment::new("hostile-tamper");
    let (store, _shim_a, a, document) = ready_replica_with_document(&d).await;
    let manifest_key = store
        .dump()
        .keys()
        .find(|k| k.starts_with("manifests/"))
        .cloned()
        .unwrap();
    let mut tampered = store.dump()[&manifest_key].clone();
    tampered[10] ^= 1;
    store.tamper(&manifest_key, Some(tampered));

    // A restarted replica cannot use the store: it stays in Recovery, and
    // neither a peer nor seed shares can recover it onto that history.
    let shim_b = start_shim(&store).await;
    shim_b.peers.set(vec![Peer {
        name: "a".into(),
        mesh_api: a.mesh_addr.to_string(),
    }]);
    let b = d.start_with_shim(&shim_b.addr).await;
    report_where(&shim_b, "B in Recovery after reading the store", |s| {
        s.state == Some(AgentState::Recovery) && s.store_reads >= 1
    })
    .await;
    assert_eq!(
        code_of(&call(&b, &d, get()).await),
        Some(ErrorCode::NeedsRecovery)
    );
    // (Forced: A is listed as a ready peer, which otherwise refuses user
    // recovery.)
    let recovered = recover(&b, &d, &document, true).await;
    match &recovered {
        RecoverReply::Error(e) => assert!(
            e.message.contains("cannot be used") && e.message.contains("hash"),
            "{e:?}"
        ),
        other => panic!("recovered onto a tampered history: {other:?}"),
    }
    // Nor does B ask its peer A for secrets: it has no readable history
    // to attest A against (a replica that asked would count an attempt).
    let (status, _) = shim_b.board.latest().expect("B reports");
    assert_eq!(status.peer_recovery_attempts, 0, "{status:?}");
    assert_eq!(status.state, Some(AgentState::Recovery), "{status:?}");
    // A, which verified the history before, keeps serving it.
    assert_eq!(generation(&a, &d).await, 1);
    assert_eq!(mesh(&a, &d).await, "ok");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_or_forked_latest_record_is_refused() {
    use accord_shim::store::LATEST_KEY;
    let d = Deployment::new("hostile-rollback");
    let (store, shim_a, a) = ready_replica(&d).await;
    let first = store.dump();
    let base = latest(&a, &d).await;
    assert_eq!(
        outcome(&call(&a, &d, set_request(d.manifest(1), Some(base))).await),
        "ok"
    );
    // What A had judged when it reached generation 2: every store read
    // counted after this one was read after generation 2 was written.
    let before = report_where(&shim_a, "generation 2", |s| s.generation == 2)
        .await
        .store_reads;

    // Rollback: the shim serves the generation-1 latest record again and
    // announces it through the watch. A reads the store, judges it (the
    // metrics name the latest record it judged last) and keeps
    // generation 2.
    let gen1 = first[LATEST_KEY].clone();
    assert_ne!(gen1, store.dump()[LATEST_KEY]);
    store.tamper(LATEST_KEY, Some(gen1.clone()));
    let status = report_where(&shim_a, "A's judgement of the rolled-back record", |s| {
        s.store_reads > before && s.latest_read == Some(sha256(&gen1))
    })
    .await;
    assert_eq!(generation(&a, &d).await, 2, "A must not roll back");
    assert_eq!(status.forged_histories, 0, "a rollback is not a forgery");

    // Fork: another deployment's history (its own seed) in the same store,
    // its latest record last. A judges it, refuses it as forged, and keeps
    // generation 2.
    let before = status.store_reads;
    let other = Deployment::new("hostile-fork");
    let (other_store, _shim_o, o) = ready_replica(&other).await;
    let mut fork = other_store.dump();
    let fork_latest = fork.remove(LATEST_KEY).unwrap();
    for (key, value) in fork {
        store.tamper(&key, Some(value));
    }
    store.tamper(LATEST_KEY, Some(fork_latest.clone()));
    let status = report_where(&shim_a, "A's judgement of the forked record", |s| {
        s.store_reads > before && s.latest_read == Some(sha256(&fork_latest))
    })
    .await;
    assert_eq!(status.forged_histories, 1, "{status:?}");
    assert_eq!(generation(&a, &d).await, 2, "A must not follow a fork");
    assert_eq!(mesh(&a, &d).await, "ok");
    a.stop().await.unwrap();
    o.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_peers_get_no_secrets_and_give_none() {
    let d = Deployment::new("hostile-impostor");
    let (store, _shim_a, a) = ready_replica(&d).await;

    // An impostor asks A for the secrets: a workload of the manifest (not
    // a coordinator), then a coordinator policy on another chip (whose
    // root the manifest does not trust). Both are refused.
    let policy = d.user_policy();
    let as_workload =
        recover_from_peer(&a.mesh_addr.to_string(), d.tee(WEB_POLICY), policy.clone()).await;
    let why = format!("{:#}", as_workload.expect_err("a workload got the secrets"));
    assert!(why.contains("coordinator role"), "{why}");
    let stranger = Deployment::with_own_chip("hostile-stranger");
    let other_chip =
        recover_from_peer(&a.mesh_addr.to_string(), stranger.tee(COORD_POLICY), policy).await;
    assert!(other_chip.is_err(), "a foreign chip got the secrets");

    // The shim lists impostors as B's peers: a coordinator of another
    // deployment (other chip), and a plain TCP port. B stays in Recovery.
    let (_other_store, _shim_o, impostor) = ready_replica(&stranger).await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shim_b = start_shim(&store).await;
    let b = d.start_with_shim(&shim_b.addr).await;
    shim_b.peers.set(vec![
        Peer {
            name: "impostor".into(),
            mesh_api: impostor.mesh_addr.to_string(),
        },
        Peer {
            name: "garbage".into(),
            mesh_api: silent.local_addr().unwrap().to_string(),
        },
    ]);
    drop(silent);
    // B asks both (one attempt dials each in turn), twice over, and gets
    // nothing.
    let status = report_where(&shim_b, "two failed peer recovery attempts", |s| {
        s.peer_recovery_attempts >= 2
    })
    .await;
    assert_eq!(status.peer_recovery_successes, 0, "{status:?}");
    assert_eq!(status.state, Some(AgentState::Recovery), "{status:?}");
    assert_eq!(
        code_of(&call(&b, &d, get()).await),
        Some(ErrorCode::NeedsRecovery)
    );

    // With the real peer listed, B recovers.
    shim_b.peers.set(vec![Peer {
        name: "a".into(),
        mesh_api: a.mesh_addr.to_string(),
    }]);
    wait_for("B to recover from A", async || {
        (outcome(&call(&b, &d, get()).await) == "ok").then_some(())
    })
    .await;
    let status = report_where(&shim_b, "the peer recovery counted", |s| {
        s.peer_recovery_successes == 1
    })
    .await;
    assert!(status.peer_recovery_attempts >= 3, "{status:?}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    impostor.stop().await.unwrap();
}
