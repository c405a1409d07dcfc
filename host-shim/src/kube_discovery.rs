//! Kubernetes peer discovery: the ready pods of the coordinator
//! StatefulSet, followed with a watch.
//!
//! As in Contrast's discovery, a peer is a pod in the
//! namespace labelled `app.kubernetes.io/name=coordinator`, annotated
//! `accord.dev/pod-role: coordinator`, not this replica, with condition
//! `Ready=True` and a pod IP; its mesh API is `<podIP>:<mesh port>`. Unlike
//! Contrast, which lists the pods every round, this follows them with a
//! watch (`kube::runtime::watcher`), re-established with backoff on errors,
//! and publishes a new [`PeerList`] (version + 1) only when the sorted list
//! changes. The first list, once the initial listing is done, is version 1;
//! until then the channel holds version 0 and no peers.
//!
//! RBAC needed: pods list, watch.

use std::collections::BTreeMap;
use std::time::Duration;

use accord_core::protocol::MESH_API_PORT;
use accord_core::protocol::shim::Peer;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt as _, watcher as watch_pods};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::discovery::{Discovery, PeerList};

/// The label selecting the coordinator pods.
pub const POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "coordinator");
/// The annotation marking a coordinator replica, and its value.
pub const ROLE_ANNOTATION: (&str, &str) = ("accord.dev/pod-role", "coordinator");

/// Discovery of the coordinator pods.
pub struct KubeDiscovery {
    tx: watch::Sender<PeerList>,
    task: JoinHandle<()>,
}

impl Drop for KubeDiscovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeDiscovery {
    /// Follows the coordinator pods in `namespace`, leaving out `own_name`
    /// (this replica's pod, `$HOSTNAME`); peers' mesh APIs are on
    /// [`MESH_API_PORT`].
    pub fn new(client: kube::Client, namespace: &str, own_name: &str) -> Self {
        Self::with_mesh_port(client, namespace, own_name, MESH_API_PORT)
    }

    /// [`KubeDiscovery::new`] with another mesh API port.
    pub fn with_mesh_port(
        client: kube::Client,
        namespace: &str,
        own_name: &str,
        mesh_port: u16,
    ) -> Self {
        let (tx, _) = watch::channel(PeerList::default());
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let task = tokio::spawn(follow(api, own_name.to_owned(), mesh_port, tx.clone()));
        Self { tx, task }
    }
}

impl Discovery for KubeDiscovery {
    fn watch_peers(&self) -> watch::Receiver<PeerList> {
        self.tx.subscribe()
    }
}

/// The peer a pod is, if it is one.
pub fn peer_of(pod: &Pod, own_name: &str, mesh_port: u16) -> Option<Peer> {
    let name = pod.metadata.name.as_deref()?;
    if name == own_name {
        return None;
    }
    let role = pod.metadata.annotations.as_ref()?.get(ROLE_ANNOTATION.0)?;
    if role != ROLE_ANNOTATION.1 {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    if !ready {
        return None;
    }
    let mesh_api = if ip.contains(':') {
        format!("[{ip}]:{mesh_port}")
    } else {
        format!("{ip}:{mesh_port}")
    };
    Some(Peer {
        name: name.to_owned(),
        mesh_api,
    })
}

async fn follow(api: Api<Pod>, own_name: String, mesh_port: u16, tx: watch::Sender<PeerList>) {
    let config = watcher::Config::default().labels(&format!("{}={}", POD_LABEL.0, POD_LABEL.1));
    loop {
        follow_once(&api, &config, &own_name, mesh_port, &tx).await;
        // The watcher retries by itself and should never end; if it does,
        // start over after a pause.
        tracing::info!("kube discovery: the pod watch ended; restarting");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn follow_once(
    api: &Api<Pod>,
    config: &watcher::Config,
    own_name: &str,
    mesh_port: u16,
    tx: &watch::Sender<PeerList>,
) {
    let mut stream = watch_pods(api.clone(), config.clone())
        .default_backoff()
        .boxed();
    // Pod name → the peer it is (None: a coordinator pod but not a peer).
    let mut pods: BTreeMap<String, Option<Peer>> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, Option<Peer>>> = None;
    let mut listed_once = false;
    let name_of = |pod: &Pod| pod.metadata.name.clone().unwrap_or_default();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => {
                listing = Some(BTreeMap::new());
                continue;
            }
            Ok(Event::InitApply(pod)) => {
                listing
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name_of(&pod), peer_of(&pod, own_name, mesh_port));
                continue;
            }
            Ok(Event::InitDone) => {
                pods = listing.take().unwrap_or_default();
                listed_once = true;
            }
            Ok(Event::Apply(pod)) => {
                pods.insert(name_of(&pod), peer_of(&pod, own_name, mesh_port));
            }
            Ok(Event::Delete(pod)) => {
                pods.remove(&name_of(&pod));
            }
            Err(e) => {
                // The backoff wrapper delays the next attempt.
                tracing::warn!("kube discovery: pod watch: {e}; retrying");
                continue;
            }
        }
        if !listed_once {
            continue;
        }
        // BTreeMap order: sorted by pod name.
        let peers: Vec<Peer> = pods.values().flatten().cloned().collect();
        tx.send_if_modified(|list| {
            if list.version > 0 && list.peers == peers {
                return false;
            }
            list.version += 1;
            list.peers = peers;
            true
        });
    }
}
