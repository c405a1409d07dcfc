//! The in-test Kubernetes API server (`accord_shim::test_apiserver`)
//! itself, through `kube`'s plain `Api`: the statuses, selectors,
//! pagination and watch semantics the backends rely on. (There is no real
//! API server on the build machines to compare with.)

use std::collections::BTreeMap;
use std::time::Duration;

use accord_shim::test_apiserver::TestApiServer;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

const NS: &str = "ns";

fn cm(name: &str, label: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("l".into(), label.into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".into(), name.into())])),
        ..Default::default()
    }
}

fn api_status(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason),
        e => panic!("not an API status: {e}"),
    }
}

#[tokio::test]
async fn statuses_and_resource_versions() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), NS);
    let pp = PostParams::default();

    let a = api.create(&pp, &cm("a", "x")).await.unwrap();
    let rv_a: u64 = a
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(a.metadata.uid.is_some());
    assert_eq!(
        api_status(api.create(&pp, &cm("a", "x")).await.unwrap_err()),
        (409, "AlreadyExists".into())
    );
    assert_eq!(
        api_status(api.get("nope").await.unwrap_err()),
        (404, "NotFound".into())
    );
    assert!(api.get_opt("nope").await.unwrap().is_none());

    // Replace with the current version, then with the stale one.
    let mut changed = a.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "v2".into())]));
    let b = api.replace("a", &pp, &changed).await.unwrap();
    let rv_b: u64 = b.metadata.resource_version.unwrap().parse().unwrap();
    assert!(rv_b > rv_a);
    assert_eq!(b.metadata.uid, a.metadata.uid);
    assert_eq!(
        api_status(api.replace("a", &pp, &changed).await.unwrap_err()),
        (409, "Conflict".into())
    );
    assert_eq!(
        api_status(
            api.replace("nope", &pp, &cm("nope", "x"))
                .await
                .unwrap_err()
        ),
        (404, "NotFound".into())
    );

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("a").await.unwrap().is_none());
    assert_eq!(
        api_status(api.delete("a", &DeleteParams::default()).await.unwrap_err()).0,
        404
    );

    server.fail_next(1);
    assert_eq!(
        api_status(api.get_opt("a").await.unwrap_err()),
        (500, "InternalError".into())
    );
    assert!(api.get_opt("a").await.unwrap().is_none());
}

#[tokio::test]
async fn selectors_and_pagination() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), NS);
    for i in 0..10 {
        api.create(
            &PostParams::default(),
            &cm(&format!("c{i}"), if i % 2 == 0 { "even" } else { "odd" }),
        )
        .await
        .unwrap();
    }
    let other: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), "other");
    other
        .create(&PostParams::default(), &cm("c0", "even"))
        .await
        .unwrap();

    let names = |l: &kube::core::ObjectList<ConfigMap>| {
        l.items
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect::<Vec<_>>()
    };
    let even = api
        .list(&ListParams::default().labels("l=even"))
        .await
        .unwrap();
    assert_eq!(names(&even), ["c0", "c2", "c4", "c6", "c8"]);
    let not_even = api
        .list(&ListParams::default().labels("l!=even"))
        .await
        .unwrap();
    assert_eq!(not_even.items.len(), 5);
    let one = api
        .list(&ListParams::default().fields("metadata.name=c3"))
        .await
        .unwrap();
    assert_eq!(names(&one), ["c3"]);
    let none = api
        .list(
            &ListParams::default()
                .labels("l=even")
                .fields("metadata.name=c3"),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty());

    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(3);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        assert!(page.items.len() <= 3);
        all.extend(names(&page));
        pages += 1;
        token = page.metadata.continue_.clone();
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(all.len(), 10);
}

#[tokio::test]
async fn watch_streams_events() {
    let server = TestApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(server.client().unwrap(), NS);
    let pp = PostParams::default();
    let a = api.create(&pp, &cm("a", "x")).await.unwrap();
    api.create(&pp, &cm("b", "y")).await.unwrap();

    // From "0": the current objects as ADDED, then changes.
    let wp = WatchParams::default().labels("l=x");
    let mut stream = api.watch(&wp, "0").await.unwrap().boxed();
    let next =
        async |s: &mut futures::stream::BoxStream<'_, kube::Result<WatchEvent<ConfigMap>>>| {
            tokio::time::timeout(Duration::from_secs(5), s.try_next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        };
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("a"))
    );
    let mut moved = api.get("b").await.unwrap();
    moved.metadata.labels = Some(BTreeMap::from([("l".into(), "x".into())]));
    api.replace("b", &pp, &moved).await.unwrap();
    // b entering the selector is ADDED.
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("b"))
    );
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(
        matches!(next(&mut stream).await, WatchEvent::Deleted(c) if c.metadata.name.as_deref() == Some("a"))
    );

    // From a resource version: only what came after it.
    let rv = a.metadata.resource_version.unwrap();
    let mut replay = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(
        matches!(next(&mut replay).await, WatchEvent::Added(c) if c.metadata.name.as_deref() == Some("b"))
    );
    assert!(
        matches!(next(&mut replay).await, WatchEvent::Modified(c) if c.metadata.name.as_deref() == Some("b"))
    );
    assert!(
        matches!(next(&mut replay).await, WatchEvent::Deleted(c) if c.metadata.name.as_deref() == Some("a"))
    );

    // Too old after compaction: a 410 ERROR event.
    server.compact();
    let mut old = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next(&mut old).await, WatchEvent::Error(s) if s.code == 410));

    // timeoutSeconds ends the stream.
    let mut short = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while short.try_next().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the watch did not end at its timeout");
}
