//! The filesystem store: atomic puts, compare-and-swap semantics within and
//! across processes, the watch on the latest record, key validation.

use std::path::Path;
use std::time::Duration;

use accord_shim::fs_store::FsStore;
use accord_shim::store::{LATEST_KEY, Store, StoreError, batch};

/// Set in the child of [`two_processes_lose_no_update`]: the store
/// directory it increments in.
const CHILD_DIR_ENV: &str = "ACCORD_FS_STORE_TEST_CHILD_DIR";

/// Increments per process in [`two_processes_lose_no_update`].
const INCREMENTS: u64 = 200;

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn put_is_atomic_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    store
        .apply(batch(
            vec![("manifests/abc".into(), b"one".to_vec())],
            None,
            b"l1".to_vec(),
        ))
        .await
        .unwrap();
    store
        .apply(batch(
            vec![
                ("manifests/abc".into(), b"two".to_vec()),
                ("manifests/def".into(), b"three".to_vec()),
            ],
            Some(b"l1".to_vec()),
            b"l2".to_vec(),
        ))
        .await
        .unwrap();
    assert_eq!(store.get("manifests/abc").await.unwrap().unwrap(), b"two");
    assert_eq!(names_in(&dir.path().join("manifests")), ["abc", "def"]);
    assert_eq!(names_in(&dir.path().join("transitions")), ["latest"]);
    assert_eq!(names_in(dir.path()), [".lock", "manifests", "transitions"]);
}

#[tokio::test]
async fn snapshot_skips_temporary_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    store
        .apply(batch(
            vec![
                ("policies/bb".into(), b"p".to_vec()),
                ("manifests/aa".into(), b"m".to_vec()),
            ],
            None,
            b"latest".to_vec(),
        ))
        .await
        .unwrap();
    std::fs::write(dir.path().join("manifests/.aa.tmp-1-2"), b"x").unwrap();
    std::fs::write(dir.path().join("manifests/a.b"), b"x").unwrap();
    std::fs::create_dir(dir.path().join("manifests/sub")).unwrap();
    std::fs::write(dir.path().join("stray"), b"x").unwrap();
    std::fs::create_dir(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join(".hidden/x"), b"x").unwrap();
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(
        snapshot,
        vec![
            ("manifests/aa".to_string(), b"m".to_vec()),
            ("policies/bb".to_string(), b"p".to_vec()),
            (LATEST_KEY.to_string(), b"latest".to_vec()),
        ]
    );
}

#[tokio::test]
async fn compare_and_swap_detects_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    let cas = |old: Option<&[u8]>, new: &[u8]| {
        store.apply(batch(vec![], old.map(<[u8]>::to_vec), new.to_vec()))
    };
    cas(None, b"v1").await.unwrap();
    assert_eq!(cas(None, b"v2").await, Err(StoreError::Conflict));
    assert_eq!(cas(Some(b"v0"), b"v2").await, Err(StoreError::Conflict));
    cas(Some(b"v1"), b"v2").await.unwrap();
    assert_eq!(store.get(LATEST_KEY).await.unwrap().unwrap(), b"v2");

    // A second handle on the same directory sees the same record.
    let other = FsStore::open(dir.path()).await.unwrap();
    assert_eq!(
        other
            .apply(batch(vec![], Some(b"v1".to_vec()), b"v3".to_vec()))
            .await,
        Err(StoreError::Conflict)
    );
    // A losing batch's puts may land (they are content-addressed), its
    // latest record does not.
    assert_eq!(other.get(LATEST_KEY).await.unwrap().unwrap(), b"v2");
    other
        .apply(batch(vec![], Some(b"v2".to_vec()), b"v3".to_vec()))
        .await
        .unwrap();
    assert_eq!(store.get(LATEST_KEY).await.unwrap().unwrap(), b"v3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_compare_and_swaps_from_separate_stores_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    store
        .apply(batch(vec![], None, b"base".to_vec()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        // Separate instances, as separate shims would have.
        let store = FsStore::open(dir.path()).await.unwrap();
        tasks.push(tokio::spawn(async move {
            store
                .apply(batch(
                    vec![(format!("objects/o{i}"), vec![i])],
                    Some(b"base".to_vec()),
                    vec![i],
                ))
                .await
        }));
    }
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(()) => winners.push(i),
            Err(StoreError::Conflict) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = u8::try_from(winners[0]).unwrap();
    assert_eq!(store.get(LATEST_KEY).await.unwrap().unwrap(), [winner]);
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    for key in [
        "", "a", "/a", "a/", "../a", "a/../b", "a/b/c", "a/.b", "a/b.c", "a b/c", "ä/b", ".lock",
    ] {
        assert!(
            matches!(
                store
                    .apply(batch(
                        vec![(key.into(), b"x".to_vec())],
                        None,
                        b"l".to_vec()
                    ))
                    .await,
                Err(StoreError::Failed(_))
            ),
            "{key:?}"
        );
        assert!(store.get(key).await.is_err(), "{key:?}");
    }
    // The latest record is written by compare-and-swap only.
    assert!(matches!(
        store
            .apply(batch(
                vec![(LATEST_KEY.into(), b"x".to_vec())],
                None,
                b"l".to_vec()
            ))
            .await,
        Err(StoreError::Failed(_))
    ));
    // Nothing of a refused batch was written.
    assert_eq!(store.snapshot().await.unwrap(), vec![]);
}

#[tokio::test]
async fn watch_sees_own_writes_at_once_and_others_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let ours = FsStore::open(dir.path()).await.unwrap();
    let theirs = FsStore::open(dir.path()).await.unwrap();
    let mut watch = ours.watch_latest();
    assert_eq!(*watch.borrow_and_update(), None);

    ours.apply(batch(vec![], None, b"v1".to_vec()))
        .await
        .unwrap();
    assert!(watch.has_changed().unwrap(), "own write published at once");
    assert_eq!(watch.borrow_and_update().as_deref(), Some(&b"v1"[..]));

    // The other instance's own watch is fed by its poll only.
    let mut their_watch = theirs.watch_latest();
    tokio::time::timeout(
        Duration::from_secs(1),
        their_watch.wait_for(|v| v.is_some()),
    )
    .await
    .expect("the other instance sees the write within 1 s")
    .unwrap();

    let written = std::time::Instant::now();
    theirs
        .apply(batch(vec![], Some(b"v1".to_vec()), b"v2".to_vec()))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .expect("another instance's write seen within 1 s")
        .unwrap();
    assert_eq!(watch.borrow_and_update().as_deref(), Some(&b"v2"[..]));
    assert!(written.elapsed() < Duration::from_secs(1));

    // Unchanged bytes are not re-sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!watch.has_changed().unwrap());
}

/// Increments the counter in the latest record [`INCREMENTS`] times, by
/// read + compare-and-swap, retrying on conflict; returns the conflicts.
async fn increment(store: &FsStore) -> u64 {
    let mut conflicts = 0;
    for _ in 0..INCREMENTS {
        loop {
            let old = store.get(LATEST_KEY).await.unwrap();
            let n: u64 = old
                .as_deref()
                .map_or(0, |b| std::str::from_utf8(b).unwrap().parse().unwrap());
            let new = (n + 1).to_string().into_bytes();
            match store.apply(batch(vec![], old, new)).await {
                Ok(()) => break,
                Err(StoreError::Conflict) => conflicts += 1,
                Err(other) => panic!("{other}"),
            }
        }
    }
    conflicts
}

/// Two processes (this test binary, re-executed as the child) race
/// read + compare-and-swap increments on one directory: none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_lose_no_update() {
    if let Ok(dir) = std::env::var(CHILD_DIR_ENV) {
        let store = FsStore::open(&dir).await.unwrap();
        // Tell the parent to start, so that both really race.
        std::fs::write(Path::new(&dir).join("child-ready"), b"").unwrap();
        let conflicts = increment(&store).await;
        println!("child: {conflicts} conflicts");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::open(dir.path()).await.unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "two_processes_lose_no_update", "--nocapture"])
        .env(CHILD_DIR_ENV, dir.path())
        .spawn()
        .unwrap();
    let ready = dir.path().join("child-ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ready.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let conflicts = increment(&store).await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "child failed: {status}");
    let last = store.get(LATEST_KEY).await.unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&last).unwrap(),
        (2 * INCREMENTS).to_string()
    );
    println!("parent: {conflicts} conflicts");
}
