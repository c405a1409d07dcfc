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
use accord_core::protocol::shim::Peer;
use accord_core::protocol::{ErrorCode, UserResponse};
use accord_guest::coordinator::InProcess;
use accord_shim::mem_store::MemStore;

fn peer(name: &str, c: &InProcess) -> Peer {
    Peer {
        name: name.into(),
        mesh_api: c.mesh_addr.to_string(),
    }
}

/// Waits until `c` answers GetManifests (Ready); returns how long it took.
async fn until_ready(c: &InProcess, d: &Deployment, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = call(c, d, get()).await;
        if outcome(&response) == "ok" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "not ready after {limit:?}: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (latest transition, generation-independent mesh CA public key bytes).
async fn view(c: &InProcess, d: &Deployment) -> ([u8; 32], Vec<u8>, Vec<u8>) {
    match call(c, d, get()).await {
        UserResponse::Manifests {
            latest_transition,
            mesh_ca,
            signed_tree_head,
            ..
        } => {
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = call(&b, &d, get()).await;
    assert!(
        matches!(&response, UserResponse::Error(e) if e.code == ErrorCode::NeedsRecovery),
        "{response:?}"
    );

    // B learns of A: it recovers from it within a second.
    shim_b.peers.set(vec![peer("a", &a)]);
    let took = until_ready(&b, &d, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(1), "peer recovery took {took:?}");
    assert_eq!(
        view(&a, &d).await,
        view(&b, &d).await,
        "same history and mesh CA"
    );
    // B issues certificates.
    assert_eq!(mesh(&b, &d).await, "ok");

    // B's shim saw its reports: Ready, with a peer recovery counted.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, age) = shim_b.board.latest().expect("a report");
    assert!(age < Duration::from_secs(5));
    assert_eq!(
        status.state,
        Some(accord_core::protocol::shim::AgentState::Ready)
    );
    assert_eq!(status.peer_recovery_successes, 1);
    // A served the secrets: its shim counts the PeerRecover request (the
    // status goes out every 2 s when the state does not change).
    let started = Instant::now();
    loop {
        let served = shim_a.board.latest().is_some_and(|(status, _)| {
            status
                .requests
                .iter()
                .any(|r| r.api == "mesh" && r.method == "PeerRecover" && r.outcome == "ok")
        });
        if served {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "A never reported PeerRecover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

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
    until_ready(&b, &d, Duration::from_secs(5)).await;

    // An update through A: B sees the new latest record through its
    // shim's watch, goes stale, and recovers the new generation from A.
    let latest_before = latest(&a, &d).await;
    let update = call(&a, &d, set_request(d.manifest(1), Some(latest_before))).await;
    assert_eq!(outcome(&update), "ok", "{update:?}");
    let started = Instant::now();
    loop {
        if let UserResponse::Manifests { manifests, .. } = call(&b, &d, get()).await
            && manifests.len() == 2
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(view(&a, &d).await, view(&b, &d).await);

    // Concurrent updates on both replicas: exactly one wins; both end on
    // the same history.
    race_updates_then_converge(&a, &b, &d, 3).await;
    assert_eq!(view(&a, &d).await, view(&b, &d).await, "same mesh CA too");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
