//! The ConfigMap store against the in-test API server
//! (`accord_shim::test_apiserver`): there is no real Kubernetes API server
//! on the build machines, so these check the wire behaviour `kube` sees
//! from a faithful fake, not a real cluster.

use std::sync::Arc;
use std::time::Duration;

use accord_shim::kube_store::{DIR_LABEL, KubeStore, MANAGED_BY_LABEL, config_map_name};
use accord_shim::store::{LATEST_KEY, Store, StoreError, batch};
use accord_shim::test_apiserver::{Resource, TestApiServer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;

const NS: &str = "accord";

/// The owner reference older shims put on every ConfigMap.
fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: "coordinator".into(),
        uid: "11111111-2222-4333-8444-555555555555".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

async fn setup() -> (TestApiServer, KubeStore) {
    let server = TestApiServer::start().await.unwrap();
    let store = KubeStore::new(server.client().unwrap(), NS).await.unwrap();
    (server, store)
}

fn hex(i: usize) -> String {
    format!("{i:064x}")
}

/// Waits until the receiver holds `want`, for at most 5 s.
async fn wait_for(rx: &mut tokio::sync::watch::Receiver<Option<Vec<u8>>>, want: &[u8]) {
    let seen = tokio::time::timeout(
        Duration::from_secs(5),
        rx.wait_for(|v| v.as_deref() == Some(want)),
    )
    .await
    .is_ok();
    assert!(seen, "watch did not see {want:?}; has {:?}", rx.borrow());
}

#[tokio::test]
async fn objects_are_configmaps_with_labels_binary_data_and_no_owner() {
    let (server, store) = setup().await;
    let key = format!("manifests/{}", hex(7));
    store
        .apply(batch(
            vec![(key.clone(), b"manifest\0bytes".to_vec())],
            None,
            b"latest-1".to_vec(),
        ))
        .await
        .unwrap();

    let name = format!("accord-store-manifests-{}", hex(7));
    assert_eq!(config_map_name(&key).unwrap(), name);
    let cm = server.config_map(NS, &name).expect("object stored");
    let labels = cm.metadata.labels.clone().unwrap();
    assert_eq!(
        labels.get(MANAGED_BY_LABEL.0).map(String::as_str),
        Some("accord")
    );
    assert_eq!(labels.get(DIR_LABEL).map(String::as_str), Some("manifests"));
    let data = cm.binary_data.clone().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[&hex(7)].0, b"manifest\0bytes");
    assert!(cm.data.is_none());

    // On the wire, binaryData is base64.
    let raw = server.get_raw(Resource::ConfigMaps, NS, &name).unwrap();
    assert_eq!(raw["binaryData"][hex(7)], json!("bWFuaWZlc3QAYnl0ZXM="));

    let latest = server
        .config_map(NS, "accord-store-transitions-latest")
        .unwrap();
    assert_eq!(latest.binary_data.unwrap()["latest"].0, b"latest-1");
    assert_eq!(
        latest
            .metadata
            .labels
            .unwrap()
            .get(DIR_LABEL)
            .map(String::as_str),
        Some("transitions")
    );
    assert_eq!(server.config_maps(NS).len(), 2);

    // Nothing owns the history: deleting the StatefulSet leaves it alone.
    // The latest record keeps having none after an update.
    store
        .apply(batch(
            vec![],
            Some(b"latest-1".to_vec()),
            b"latest-2".to_vec(),
        ))
        .await
        .unwrap();
    for raw in server.list_raw(Resource::ConfigMaps, NS) {
        assert!(
            raw["metadata"].get("ownerReferences").is_none(),
            "{}",
            raw["metadata"]
        );
    }
}

#[tokio::test]
async fn compare_and_swap_of_the_latest_record() {
    let (server, store) = setup().await;
    // First create.
    store
        .apply(batch(vec![], None, b"one".to_vec()))
        .await
        .unwrap();
    // Creating again is a conflict.
    assert_eq!(
        store.apply(batch(vec![], None, b"two".to_vec())).await,
        Err(StoreError::Conflict)
    );
    // Wrong old.
    assert_eq!(
        store
            .apply(batch(vec![], Some(b"zero".to_vec()), b"two".to_vec()))
            .await,
        Err(StoreError::Conflict)
    );
    let latest = || {
        server
            .config_map(NS, "accord-store-transitions-latest")
            .unwrap()
            .binary_data
            .unwrap()["latest"]
            .0
            .clone()
    };
    assert_eq!(latest(), b"one");
    // Right old.
    store
        .apply(batch(vec![], Some(b"one".to_vec()), b"two".to_vec()))
        .await
        .unwrap();
    assert_eq!(latest(), b"two");
    assert_eq!(*store.watch_latest().borrow(), Some(b"two".to_vec()));
    // A conflict writes nothing of the CAS but the puts went first
    // (content-addressed, harmless).
    assert_eq!(
        store
            .apply(batch(
                vec![("policies/p1".into(), b"x".to_vec())],
                Some(b"one".to_vec()),
                b"3".to_vec()
            ))
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(latest(), b"two");
}

#[tokio::test]
async fn cas_against_a_missing_latest_is_a_conflict() {
    let (_server, store) = setup().await;
    assert_eq!(
        store
            .apply(batch(vec![], Some(b"one".to_vec()), b"two".to_vec()))
            .await,
        Err(StoreError::Conflict)
    );
}

#[tokio::test]
async fn racing_writers_exactly_one_wins() {
    let (server, first) = setup().await;
    first
        .apply(batch(vec![], None, b"base".to_vec()))
        .await
        .unwrap();
    let mut stores = Vec::new();
    for _ in 0..8 {
        stores.push(Arc::new(
            KubeStore::new(server.client().unwrap(), NS).await.unwrap(),
        ));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let put = (format!("transitions/t{i}"), vec![i as u8]);
            barrier.wait().await;
            store
                .apply(batch(
                    vec![put],
                    Some(b"base".to_vec()),
                    format!("new-{i}").into_bytes(),
                ))
                .await
        }));
    }
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => winners.push(i),
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    // The losers read the same old value, so at least one lost at the
    // resourceVersion-guarded PUT (in practice all 7: the tasks interleave
    // GET, GET, ..., PUT, PUT, ...), not only at the compare.
    assert!(server.error_count(409, "Conflict") >= 1);
    let latest = server
        .config_map(NS, "accord-store-transitions-latest")
        .unwrap();
    assert_eq!(
        latest.binary_data.unwrap()["latest"].0,
        format!("new-{}", winners[0]).into_bytes()
    );
}

#[tokio::test]
async fn puts_are_idempotent_but_never_overwrite() {
    let (server, store) = setup().await;
    let put = ("policies/aa".to_string(), b"policy".to_vec());
    store
        .apply(batch(vec![put.clone()], None, b"1".to_vec()))
        .await
        .unwrap();
    let rv_before = server
        .config_map(NS, "accord-store-policies-aa")
        .unwrap()
        .metadata
        .resource_version;
    // The same bytes again: fine, untouched.
    store
        .apply(batch(vec![put], Some(b"1".to_vec()), b"2".to_vec()))
        .await
        .unwrap();
    let cm = server.config_map(NS, "accord-store-policies-aa").unwrap();
    assert_eq!(cm.metadata.resource_version, rv_before);
    // Different bytes: refused, the latest record untouched.
    let err = store
        .apply(batch(
            vec![("policies/aa".into(), b"other".to_vec())],
            Some(b"2".to_vec()),
            b"3".to_vec(),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Failed("stored object policies/aa differs from the one being written".into())
    );
    assert_eq!(
        server
            .config_map(NS, "accord-store-policies-aa")
            .unwrap()
            .binary_data
            .unwrap()["aa"]
            .0,
        b"policy"
    );
    let latest = server
        .config_map(NS, "accord-store-transitions-latest")
        .unwrap();
    assert_eq!(latest.binary_data.unwrap()["latest"].0, b"2");
}

#[tokio::test]
async fn colliding_names_are_not_mixed_up() {
    // `a-b/c` and `a/b-c` are both ConfigMap `accord-store-a-b-c`.
    let (server, store) = setup().await;
    store
        .apply(batch(
            vec![("a-b/c".into(), b"v".to_vec())],
            None,
            b"1".to_vec(),
        ))
        .await
        .unwrap();
    let err = store
        .apply(batch(
            vec![("a/b-c".into(), b"v".to_vec())],
            Some(b"1".to_vec()),
            b"2".to_vec(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Failed(ref m) if m.contains("a/b-c")),
        "{err}"
    );
    let snap = store.snapshot().await.unwrap();
    assert!(snap.contains(&("a-b/c".into(), b"v".to_vec())));
    assert!(!snap.iter().any(|(k, _)| k == "a/b-c"));
    drop(server);
}

#[tokio::test]
async fn snapshot_round_trip_with_pagination() {
    let (server, mut store) = setup().await;
    store.set_page_size(7);
    let mut puts: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| {
            (
                format!("manifests/{}", hex(i)),
                format!("value {i}").into_bytes(),
            )
        })
        .collect();
    puts.push(("policies/p".into(), vec![0, 255, 1]));
    store
        .apply(batch(puts.clone(), None, b"latest".to_vec()))
        .await
        .unwrap();
    // Foreign and malformed ConfigMaps are ignored.
    server.put_raw(
        Resource::ConfigMaps,
        NS,
        json!({"metadata": {"name": "unrelated"}, "data": {"a": "b"}}),
    );
    server.put_raw(
        Resource::ConfigMaps,
        NS,
        json!({"metadata": {"name": "accord-store-manifests-bad", "labels": {MANAGED_BY_LABEL.0: "accord", DIR_LABEL: "manifests"}},
               "binaryData": {"bad": "AA==", "extra": "AA=="}}),
    );
    let requests_before = server.request_count();
    let mut snap = store.snapshot().await.unwrap();
    // 52 objects in pages of 7: 8 requests.
    assert_eq!(server.request_count() - requests_before, 8);
    puts.push((LATEST_KEY.into(), b"latest".to_vec()));
    puts.sort();
    snap.sort();
    assert_eq!(snap, puts);
}

#[tokio::test]
async fn invalid_keys_are_refused() {
    let (server, store) = setup().await;
    let long = format!("manifests/{}", "a".repeat(240));
    for key in [
        "Manifests/abc",
        "manifests/ABC",
        "noslash",
        "a/b/c",
        "-x/y",
        "x/y-",
        "a_b/c",
        long.as_str(),
    ] {
        let err = store
            .apply(batch(
                vec![(key.into(), b"v".to_vec())],
                None,
                b"l".to_vec(),
            ))
            .await
            .unwrap_err();
        match err {
            StoreError::Failed(m) => assert!(m.contains(key), "{key}: {m}"),
            StoreError::Conflict => panic!("{key}: conflict"),
        }
    }
    // Nothing written, not even the latest record.
    assert!(server.config_maps(NS).is_empty());
    // 253 characters in all is still fine.
    let name = "b".repeat(253 - "accord-store-manifests-".len());
    store
        .apply(batch(
            vec![(format!("manifests/{name}"), b"v".to_vec())],
            None,
            b"l".to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(server.config_maps(NS).len(), 2);
}

#[tokio::test]
async fn another_writer_reaches_the_watch() {
    let (server, store) = setup().await;
    let mut rx = store.watch_latest();
    assert_eq!(*rx.borrow(), None);
    let other = KubeStore::new(server.client().unwrap(), NS).await.unwrap();
    other
        .apply(batch(vec![], None, b"from other".to_vec()))
        .await
        .unwrap();
    wait_for(&mut rx, b"from other").await;
    other
        .apply(batch(
            vec![],
            Some(b"from other".to_vec()),
            b"second".to_vec(),
        ))
        .await
        .unwrap();
    wait_for(&mut rx, b"second").await;
    // A store started later reads the current value at once.
    let late = KubeStore::new(server.client().unwrap(), NS).await.unwrap();
    assert_eq!(*late.watch_latest().borrow(), Some(b"second".to_vec()));
}

#[tokio::test]
async fn watch_survives_dropped_connections() {
    let (server, store) = setup().await;
    let mut rx = store.watch_latest();
    let other = KubeStore::new(server.client().unwrap(), NS).await.unwrap();
    other
        .apply(batch(vec![], None, b"v1".to_vec()))
        .await
        .unwrap();
    wait_for(&mut rx, b"v1").await;

    // Clean end of the stream, then a write.
    let watches = server.watch_count();
    server.end_watches();
    other
        .apply(batch(vec![], Some(b"v1".to_vec()), b"v2".to_vec()))
        .await
        .unwrap();
    wait_for(&mut rx, b"v2").await;

    // Broken connection, with failing requests meanwhile.
    server.break_watches();
    server.fail_next(3);
    // The faults hit the watcher's retries or this write; retry it.
    let mut tries = 0;
    loop {
        match other
            .apply(batch(vec![], Some(b"v2".to_vec()), b"v3".to_vec()))
            .await
        {
            Ok(()) => break,
            Err(StoreError::Failed(_)) if tries < 5 => tries += 1,
            Err(e) => panic!("{e}"),
        }
    }
    wait_for(&mut rx, b"v3").await;

    // History compacted while disconnected: the watcher re-lists.
    server.compact();
    server.end_watches();
    other
        .apply(batch(vec![], Some(b"v3".to_vec()), b"v4".to_vec()))
        .await
        .unwrap();
    wait_for(&mut rx, b"v4").await;
    assert!(
        server.watch_count() >= watches + 3,
        "the watch was re-established"
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_failures() {
    let server = TestApiServer::start().await.unwrap();
    let store = KubeStore::with_timeout(server.client().unwrap(), NS, Duration::from_millis(500))
        .await
        .unwrap();
    // Let the background watch settle first, so that the faults hit the
    // calls under test.
    while server.watch_count() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.fail_next(1);
    let err = store
        .apply(batch(
            vec![("a/b".into(), b"v".to_vec())],
            None,
            b"l".to_vec(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Failed(ref m) if m.contains("accord-store-a-b")),
        "{err}"
    );
    server.hang_next(1);
    let started = std::time::Instant::now();
    let err = store.snapshot().await.unwrap_err();
    assert!(
        matches!(err, StoreError::Failed(ref m) if m.contains("timed out")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // Healthy again.
    store
        .apply(batch(
            vec![("a/b".into(), b"v".to_vec())],
            None,
            b"l".to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(store.snapshot().await.unwrap().len(), 2);
}

/// A ConfigMap as an older shim wrote it: owned by the StatefulSet.
fn owned_config_map(key: &str, value: &[u8], extra_owner: bool) -> serde_json::Value {
    let (dir, entry) = key.split_once('/').unwrap();
    let mut owners = vec![serde_json::to_value(owner()).unwrap()];
    if extra_owner {
        owners.push(json!({"apiVersion": "example.com/v1", "kind": "Backup",
            "name": "nightly", "uid": "99999999-2222-4333-8444-555555555555"}));
    }
    json!({
        "metadata": {
            "name": config_map_name(key).unwrap(),
            "labels": {MANAGED_BY_LABEL.0: MANAGED_BY_LABEL.1, DIR_LABEL: dir},
            "ownerReferences": owners,
        },
        "binaryData": {entry: k8s_openapi::ByteString(value.to_vec())},
    })
}

#[tokio::test]
async fn owned_config_maps_of_older_shims_keep_working_and_are_released() {
    let server = TestApiServer::start().await.unwrap();
    let objects = [
        ("manifests/aa", &b"m"[..], false),
        ("policies/bb", b"p", true),
        (LATEST_KEY, b"v1", false),
    ];
    for (key, value, extra) in objects {
        server.put_raw(
            Resource::ConfigMaps,
            NS,
            owned_config_map(key, value, extra),
        );
    }
    // Someone else's ConfigMap, owned by a StatefulSet: not ours to touch.
    server.put_raw(
        Resource::ConfigMaps,
        NS,
        json!({"metadata": {"name": "unrelated", "ownerReferences": [owner()]},
               "data": {"a": "b"}}),
    );
    let store = KubeStore::new(server.client().unwrap(), NS).await.unwrap();

    // Read as any other, and the latest record is swapped as before
    // (keeping its owner for now: owned all together or not at all).
    let mut snapshot = store.snapshot().await.unwrap();
    snapshot.sort();
    assert_eq!(
        snapshot,
        [
            ("manifests/aa".to_owned(), b"m".to_vec()),
            ("policies/bb".to_owned(), b"p".to_vec()),
            (LATEST_KEY.to_owned(), b"v1".to_vec()),
        ]
    );
    store
        .apply(batch(
            vec![("manifests/cc".into(), b"n".to_vec())],
            Some(b"v1".to_vec()),
            b"v2".to_vec(),
        ))
        .await
        .unwrap();
    let latest = server
        .config_map(NS, &config_map_name(LATEST_KEY).unwrap())
        .unwrap();
    assert_eq!(latest.metadata.owner_references, Some(vec![owner()]));

    // Released: no StatefulSet owns any of accord's ConfigMaps; other
    // owners, labels and values stay.
    assert_eq!(store.release_owner_references().await.unwrap(), 3);
    for cm in server.config_maps(NS) {
        let name = cm.metadata.name.clone().unwrap();
        let owners = cm.metadata.owner_references.clone().unwrap_or_default();
        match name.as_str() {
            "unrelated" => assert_eq!(owners, [owner()]),
            "accord-store-policies-bb" => {
                assert_eq!(owners.len(), 1);
                assert_eq!(owners[0].kind, "Backup");
            }
            _ => assert!(owners.is_empty(), "{name}: {owners:?}"),
        }
        if name != "unrelated" {
            let labels = cm.metadata.labels.clone().unwrap();
            assert_eq!(labels[MANAGED_BY_LABEL.0], MANAGED_BY_LABEL.1);
        }
    }
    let mut after = store.snapshot().await.unwrap();
    after.sort();
    assert_eq!(
        after,
        [
            ("manifests/aa".to_owned(), b"m".to_vec()),
            ("manifests/cc".to_owned(), b"n".to_vec()),
            ("policies/bb".to_owned(), b"p".to_vec()),
            (LATEST_KEY.to_owned(), b"v2".to_vec()),
        ]
    );
    // Idempotent, and the store works on.
    assert_eq!(store.release_owner_references().await.unwrap(), 0);
    store
        .apply(batch(vec![], Some(b"v2".to_vec()), b"v3".to_vec()))
        .await
        .unwrap();
}

#[tokio::test]
async fn releasing_survives_concurrent_updates_and_paging() {
    let server = TestApiServer::start().await.unwrap();
    for i in 0..7 {
        server.put_raw(
            Resource::ConfigMaps,
            NS,
            owned_config_map(&format!("transitions/t{i}"), &[i], false),
        );
    }
    server.put_raw(
        Resource::ConfigMaps,
        NS,
        owned_config_map(LATEST_KEY, b"v1", false),
    );
    let mut first = KubeStore::new(server.client().unwrap(), NS).await.unwrap();
    first.set_page_size(3);
    let second = KubeStore::new(server.client().unwrap(), NS).await.unwrap();
    // Two replicas start at once, while the latest record changes: the
    // swap is not refused for a change of metadata only.
    let (a, b, swap) = tokio::join!(
        first.release_owner_references(),
        second.release_owner_references(),
        second.apply(batch(vec![], Some(b"v1".to_vec()), b"v2".to_vec())),
    );
    swap.unwrap();
    assert!(
        second
            .snapshot()
            .await
            .unwrap()
            .contains(&(LATEST_KEY.to_owned(), b"v2".to_vec()))
    );
    assert_eq!(a.unwrap() + b.unwrap(), 8);
    for cm in server.config_maps(NS) {
        assert_eq!(cm.metadata.owner_references, None, "{:?}", cm.metadata.name);
    }
    assert_eq!(first.snapshot().await.unwrap().len(), 8);
}
