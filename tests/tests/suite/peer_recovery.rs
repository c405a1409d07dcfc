//! Peer recovery and stale detection through the host shim, in one
//! process: each coordinator replica (`spawn_at` with
//! `StoreLocation::Shim`) talks to its own shim channel
//! (`accord_shim::channel::serve`), and the shims share one in-memory
//! store, as replicas share a Kubernetes namespace. Peers are set by the
//! test (`ManualPeers`), as the Kubernetes discovery would list them.
//! The coordinators attest each other with the INSECURE simulated chip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use accord_core::protocol::shim::{AgentState, Peer};
use accord_core::protocol::{ErrorCode, GetManifestsReply, Manifests};
use accord_guest::coordinator::InProcess;
use accord_shim::mem_store::MemStore;

fn peer(name: &str, c: &InProcess) -> Peer {
    Peer {
        name: name.into(),
        mesh_api: c.mesh_addr.to_string(),
    }
}

/// Waits until `c` answers GetManifests (Ready); returns how long it took.
async fn until_ready(c: &InProcess, d: &Deployment) -> Duration {
    let started = Instant::now();
    wait_for("the replica to serve GetManifests", async || {
        (outcome(&call(c, d, get()).await) == "ok").then_some(())
    })
    .await;
    started.elapsed()
}

/// (latest transition, generation-independent mesh CA public key bytes).
async fn view(c: &InProcess, d: &Deployment) -> ([u8; 32], Vec<u8>, Vec<u8>) {
    match call(c, d, get()).await {
        GetManifestsReply::Manifests(Manifests {
            latest_transition,
            mesh_ca,
            signed_tree_head,
            ..
        }) => {
            let cert = accord_core::x509::Certificate::from_der(&mesh_ca).unwrap();
            (
                latest_transition,
                cert.spki_der().to_vec(),
                signed_tree_head[..100].to_vec(),
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_recovers_from_a_ready_peer() {
    let d = Deployment::new("peer-recovery");
    let store = Arc::new(MemStore::default());
    let shim_a = start_shim(&store).await;
    let a = d.start_with_shim(&shim_a.addr).await;
    let set = call(&a, &d, set_request(d.manifest(0), None)).await;
    assert_eq!(outcome(&set), "ok", "{set:?}");

    // B boots on the same store: Recovery, with no peer known yet.
    let shim_b = start_shim(&store).await;
    let b = d.start_with_shim(&shim_b.addr).await;
    report_where(&shim_b, "B in Recovery after reading the store", |s| {
        s.state == Some(AgentState::Recovery) && s.store_reads >= 1
    })
    .await;
    let response = call(&b, &d, get()).await;
    assert!(
        matches!(&response, GetManifestsReply::Error(e) if e.code == ErrorCode::NeedsRecovery),
        "{response:?}"
    );

    // B learns of A: it recovers from it (at once: the new peer list
    // starts an attempt; the time is printed, not asserted).
    shim_b.peers.set(vec![peer("a", &a)]);
    let took = until_ready(&b, &d).await;
    println!("peer recovery took {took:?}");
    assert_eq!(
        view(&a, &d).await,
        view(&b, &d).await,
        "same history and mesh CA"
    );
    // B issues certificates.
    assert_eq!(mesh(&b, &d).await, "ok");

    // B's shim saw its reports: Ready, with the peer recovery that made it
    // so counted (the count precedes the state change it reports).
    let status = report_where(&shim_b, "B Ready", |s| s.state == Some(AgentState::Ready)).await;
    assert_eq!(status.peer_recovery_successes, 1, "{status:?}");
    // A served the secrets: its shim counts the PeerRecover request (the
    // status goes out every 2 s when the state does not change).
    report_where(&shim_a, "A's PeerRecover counted", |s| {
        s.requests
            .iter()
            .any(|r| r.api == "mesh" && r.method == "PeerRecover" && r.outcome == "ok")
    })
    .await;

    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_sees_a_newer_history_goes_stale_and_catches_up() {
    let d = Deployment::new("stale");
    let store = Arc::new(MemStore::default());
    let (shim_a, shim_b) = (start_shim(&store).await, start_shim(&store).await);
    let a = d.start_with_shim(&shim_a.addr).await;
    assert_eq!(
        outcome(&call(&a, &d, set_request(d.manifest(0), None)).await),
        "ok"
    );
    let b = d.start_with_shim(&shim_b.addr).await;
    shim_b.peers.set(vec![peer("a", &a)]);
    shim_a.peers.set(vec![peer("b", &b)]);
    until_ready(&b, &d).await;

    // An update through A: B sees the new latest record through its
    // shim's watch, goes stale, and recovers the new generation from A.
    let latest_before = latest(&a, &d).await;
    let update = call(&a, &d, set_request(d.manifest(1), Some(latest_before))).await;
    assert_eq!(outcome(&update), "ok", "{update:?}");
    wait_for("B to catch up with generation 2", async || {
        match call(&b, &d, get()).await {
            GetManifestsReply::Manifests(Manifests { manifests, .. }) if manifests.len() == 2 => {
                Some(())
            }
            _ => None,
        }
    })
    .await;
    assert_eq!(view(&a, &d).await, view(&b, &d).await);

    // Concurrent updates on both replicas: exactly one wins; both end on
    // the same history.
    race_updates_then_converge(&a, &b, &d, 3).await;
    assert_eq!(view(&a, &d).await, view(&b, &d).await, "same mesh CA too");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
