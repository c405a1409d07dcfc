//! Kubernetes peer discovery against the in-test API server
//! (`accord_shim::test_apiserver`): there is no real Kubernetes API server
//! on the build machines, so pods are created and their status set through
//! the fake server's Rust API.

use std::collections::BTreeMap;
use std::time::Duration;

use accord_core::protocol::MESH_API_PORT;
use accord_core::protocol::shim::Peer;
use accord_shim::discovery::{Discovery, PeerList};
use accord_shim::kube_discovery::KubeDiscovery;
use accord_shim::test_apiserver::TestApiServer;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::watch;

const NS: &str = "accord";

fn pod(name: &str, ip: Option<&str>, ready: bool, role: Option<&str>, app: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/name".into(),
                app.into(),
            )])),
            annotations: role
                .map(|r| BTreeMap::from([("accord.dev/pod-role".to_string(), r.to_string())])),
            ..Default::default()
        },
        status: Some(PodStatus {
            pod_ip: ip.map(Into::into),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn coordinator(name: &str, ip: &str, ready: bool) -> Pod {
    pod(name, Some(ip), ready, Some("coordinator"), "coordinator")
}

fn peer(name: &str, ip: &str) -> Peer {
    Peer {
        name: name.into(),
        mesh_api: format!("{ip}:{MESH_API_PORT}"),
    }
}

/// Waits (at most 5 s) for a list different from `last`, and returns it.
async fn next(rx: &mut watch::Receiver<PeerList>, last: &PeerList) -> PeerList {
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|l| l != last))
        .await
        .unwrap_or_else(|_| panic!("no new peer list after {last:?}"))
        .unwrap()
        .clone()
}

/// Checks that nothing is published for a while.
async fn quiet(rx: &mut watch::Receiver<PeerList>) {
    rx.mark_unchanged();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.changed())
            .await
            .is_err(),
        "unexpected update: {:?}",
        rx.borrow()
    );
}

#[tokio::test]
async fn peers_follow_the_pods() {
    let server = TestApiServer::start().await.unwrap();
    server.put_pod(NS, &coordinator("coordinator-0", "10.0.0.10", true));
    server.put_pod(NS, &coordinator("coordinator-1", "10.0.0.11", true));
    let disc = KubeDiscovery::new(server.client().unwrap(), NS, "coordinator-0");
    let mut rx = disc.watch_peers();

    // The first list: itself left out.
    let l1 = next(&mut rx, &PeerList::default()).await;
    assert_eq!(l1.version, 1);
    assert_eq!(l1.peers, vec![peer("coordinator-1", "10.0.0.11")]);

    // A new pod, not ready yet: no change, no new version.
    server.put_pod(NS, &coordinator("coordinator-2", "10.0.0.12", false));
    quiet(&mut rx).await;
    assert_eq!(rx.borrow().version, 1);

    // It becomes ready.
    assert!(server.set_pod_ready(NS, "coordinator-2", true));
    let l2 = next(&mut rx, &l1).await;
    assert_eq!(l2.version, 2);
    assert_eq!(
        l2.peers,
        vec![
            peer("coordinator-1", "10.0.0.11"),
            peer("coordinator-2", "10.0.0.12")
        ]
    );

    // An unrelated change to a peer (a new label): no new version.
    server.update_pod(NS, "coordinator-1", |p| {
        p.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("x".into(), "y".into());
    });
    quiet(&mut rx).await;
    assert_eq!(*rx.borrow(), l2);

    // coordinator-1 becomes unready.
    assert!(server.set_pod_ready(NS, "coordinator-1", false));
    let l3 = next(&mut rx, &l2).await;
    assert_eq!(l3.version, 3);
    assert_eq!(l3.peers, vec![peer("coordinator-2", "10.0.0.12")]);

    // coordinator-2 is deleted.
    assert!(server.delete_pod(NS, "coordinator-2"));
    let l4 = next(&mut rx, &l3).await;
    assert_eq!(l4.version, 4);
    assert!(l4.peers.is_empty());

    // Self becoming unready or ready changes nothing.
    server.set_pod_ready(NS, "coordinator-0", false);
    server.set_pod_ready(NS, "coordinator-0", true);
    quiet(&mut rx).await;
    assert_eq!(rx.borrow().version, 4);

    // All of it through one list and one watch, no polling.
    assert_eq!(server.watch_count(), 1);
    assert_eq!(server.request_count(), 2);
}

#[tokio::test]
async fn only_coordinator_pods_with_an_ip_count() {
    let server = TestApiServer::start().await.unwrap();
    server.put_pod(NS, &coordinator("me", "10.0.0.1", true));
    // Wrong role annotation, no annotation, another app, no IP.
    server.put_pod(
        NS,
        &pod(
            "worker",
            Some("10.0.0.2"),
            true,
            Some("worker"),
            "coordinator",
        ),
    );
    server.put_pod(
        NS,
        &pod("plain", Some("10.0.0.3"), true, None, "coordinator"),
    );
    server.put_pod(
        NS,
        &pod(
            "other-app",
            Some("10.0.0.4"),
            true,
            Some("coordinator"),
            "web",
        ),
    );
    server.put_pod(
        NS,
        &pod("no-ip", None, true, Some("coordinator"), "coordinator"),
    );
    server.put_pod(NS, &coordinator("good", "10.0.0.5", true));
    // Another namespace.
    server.put_pod("elsewhere", &coordinator("foreign", "10.0.0.6", true));
    let disc = KubeDiscovery::with_mesh_port(server.client().unwrap(), NS, "me", 9999);
    let mut rx = disc.watch_peers();
    let l1 = next(&mut rx, &PeerList::default()).await;
    assert_eq!(
        l1,
        PeerList {
            version: 1,
            peers: vec![Peer {
                name: "good".into(),
                mesh_api: "10.0.0.5:9999".into(),
            }],
        }
    );

    // The role annotation fixed: it becomes a peer; the IP arrives: too.
    server.update_pod(NS, "worker", |p| {
        p.metadata.annotations = Some(BTreeMap::from([(
            "accord.dev/pod-role".to_string(),
            "coordinator".to_string(),
        )]));
    });
    let l2 = next(&mut rx, &l1).await;
    assert_eq!(l2.version, 2);
    server.update_pod(NS, "no-ip", |p| {
        p.status.as_mut().unwrap().pod_ip = Some("fd00::7".into());
    });
    let l3 = next(&mut rx, &l2).await;
    assert_eq!(l3.version, 3);
    let names: Vec<_> = l3
        .peers
        .iter()
        .map(|p| (p.name.as_str(), p.mesh_api.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("good", "10.0.0.5:9999"),
            ("no-ip", "[fd00::7]:9999"),
            ("worker", "10.0.0.2:9999")
        ]
    );
    // Leaving the label selector is a removal.
    server.update_pod(NS, "good", |p| {
        p.metadata.labels = Some(BTreeMap::from([(
            "app.kubernetes.io/name".into(),
            "web".into(),
        )]));
    });
    let l4 = next(&mut rx, &l3).await;
    assert_eq!(l4.version, 4);
    assert_eq!(l4.peers.len(), 2);
}

#[tokio::test]
async fn discovery_survives_watch_failures() {
    let server = TestApiServer::start().await.unwrap();
    let disc = KubeDiscovery::new(server.client().unwrap(), NS, "me");
    let mut rx = disc.watch_peers();
    let l1 = next(&mut rx, &PeerList::default()).await;
    assert_eq!((l1.version, l1.peers.len()), (1, 0));

    server.break_watches();
    server.fail_next(2);
    server.put_pod(NS, &coordinator("coordinator-1", "10.0.0.11", true));
    let l2 = next(&mut rx, &l1).await;
    assert_eq!(l2.version, 2);
    assert_eq!(l2.peers, vec![peer("coordinator-1", "10.0.0.11")]);

    // Compacted history: the watcher re-lists; the list is unchanged, so
    // no new version; later changes still arrive.
    server.compact();
    server.end_watches();
    quiet(&mut rx).await;
    assert_eq!(rx.borrow().version, 2);
    server.delete_pod(NS, "coordinator-1");
    let l3 = next(&mut rx, &l2).await;
    assert_eq!(l3.version, 3);
    assert!(l3.peers.is_empty());
}
