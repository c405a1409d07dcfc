//! Replicas on the Kubernetes backend and discovery. There is no real
//! Kubernetes API server on the build machines: the shims talk to the
//! in-test API server (`accord_shim::test_apiserver`), which speaks the
//! real wire format (JSON over HTTP, resourceVersion conflicts, watch
//! streams). The test plays the kubelet: it creates the coordinator pods
//! and marks a pod Ready once its replica's probe would say so.
//!
//! Each replica's mesh API listens on its own loopback address
//! (127.0.0.2, 127.0.0.3) on one port, as pods have their own IPs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::process::free_port;
use crate::support::*;
use accord_core::protocol::shim::AgentState;
use accord_core::protocol::{GetManifestsReply, Manifests};
use accord_guest::coordinator::InProcess;
use accord_shim::discovery::ManualPeers;
use accord_shim::kube_discovery::KubeDiscovery;
use accord_shim::kube_store::KubeStore;
use accord_shim::test_apiserver::TestApiServer;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const NS: &str = "accord";

fn pod(name: &str, ip: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".into(),
                "coordinator".into(),
            )])),
            annotations: Some(BTreeMap::from([(
                "accord.dev/pod-role".into(),
                "coordinator".into(),
            )])),
            ..Default::default()
        },
        status: Some(PodStatus {
            pod_ip: Some(ip.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "False".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct KubeReplica {
    shim: ShimHandle,
    coordinator: InProcess,
    name: String,
}

async fn start_replica(
    d: &Deployment,
    server: &TestApiServer,
    name: &str,
    ip: &str,
    mesh_port: u16,
) -> KubeReplica {
    server.put_pod(NS, &pod(name, ip));
    let client = server.client().unwrap();
    let store = KubeStore::new(client.clone(), NS).await.unwrap();
    let discovery = KubeDiscovery::with_mesh_port(client, NS, name, mesh_port);
    let shim = start_shim_with(store, discovery, ManualPeers::default()).await;
    let coordinator = d
        .start_with_shim_at(&shim.addr, &format!("{ip}:{mesh_port}"))
        .await;
    KubeReplica {
        shim,
        coordinator,
        name: name.into(),
    }
}

/// Waits until the replica reports Ready to its shim (what its readiness
/// probe serves), then marks its pod Ready as the kubelet would.
async fn kubelet_marks_ready(server: &TestApiServer, replica: &KubeReplica) -> Duration {
    let started = Instant::now();
    report_where(&replica.shim, &format!("{} Ready", replica.name), |s| {
        s.state == Some(AgentState::Ready)
    })
    .await;
    assert!(server.set_pod_ready(NS, &replica.name, true));
    started.elapsed()
}

async fn manifests(c: &InProcess, d: &Deployment) -> (usize, Base) {
    let reply = call(c, d, get()).await;
    match &reply {
        GetManifestsReply::Manifests(Manifests { manifests, .. }) => {
            (manifests.len(), Base::of(&reply))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_configmaps_and_recover_from_pods() {
    let d = Deployment::new("kube-replicas");
    let server = TestApiServer::start().await.unwrap();
    let mesh_port = free_port();

    let a = start_replica(&d, &server, "coordinator-0", "127.0.0.2", mesh_port).await;
    let set = call(&a.coordinator, &d, set_request(d.manifest(0), None)).await;
    assert_eq!(outcome(&set), "ok", "{set:?}");
    // The history is in ConfigMaps: manifest, policies, transition, seed
    // shares, and the latest record.
    let names: Vec<String> = server
        .config_maps(NS)
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(
        names.contains(&"accord-store-transitions-latest".to_string()),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("accord-store-manifests-"))
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("accord-store-policies-"))
    );
    kubelet_marks_ready(&server, &a).await;

    // B starts: Recovery, finds coordinator-0 through the pod watch, and
    // recovers from it.
    let b = start_replica(&d, &server, "coordinator-1", "127.0.0.3", mesh_port).await;
    let took = kubelet_marks_ready(&server, &b).await;
    println!("kube: coordinator-1 ready {took:?} after start");
    assert_eq!(
        manifests(&a.coordinator, &d).await,
        manifests(&b.coordinator, &d).await
    );

    // An update through A reaches B through the ConfigMap watch; B goes
    // stale and recovers the new generation from A.
    let (_, base) = manifests(&a.coordinator, &d).await;
    let update = call(&a.coordinator, &d, set_request(d.manifest(1), Some(base))).await;
    assert_eq!(outcome(&update), "ok", "{update:?}");
    wait_for("B to catch up with generation 2", async || {
        match call(&b.coordinator, &d, get()).await {
            GetManifestsReply::Manifests(Manifests { manifests, .. }) if manifests.len() == 2 => {
                Some(())
            }
            _ => None,
        }
    })
    .await;

    // Concurrent updates: the resourceVersion compare-and-swap lets one
    // through; the other is a conflict; both end on the same history.
    race_updates_then_converge(&a.coordinator, &b.coordinator, &d, 3).await;
    let conflicts = server.error_count(409, "Conflict") + server.error_count(409, "AlreadyExists");
    println!("kube: {conflicts} conflict answers from the API server");
    a.coordinator.stop().await.unwrap();
    b.coordinator.stop().await.unwrap();
}
