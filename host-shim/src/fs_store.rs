//! The shim's embedded default backend: the store on the local filesystem.
//!
//! The files, keys, atomic puts and the compare-and-swap across processes
//! (a process mutex and a `flock` on `ROOT/.lock`) are
//! [`accord_fs_store::FsStore`]'s, the same store the agent uses on its own
//! (`accord-guest coordinator --state DIR`). This module adds what only
//! the shim needs:
//!
//! - the async [`Store`] interface, with all file work on tokio's blocking
//!   pool;
//! - [`Store::watch_latest`], updated right after this store's own
//!   successful apply (still under the process mutex), and by a background
//!   task that re-reads the latest record every [`POLL_INTERVAL`] to see
//!   other processes' writes.
//!
//! The store is untrusted by design: the agent re-hashes every object it
//! reads, so this module only has to be crash-safe, not tamper-proof.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{LATEST_KEY, Store, StoreError, WriteBatch};

/// How often the background task re-reads the latest record.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A filesystem store rooted at one directory, with a watch on its latest
/// record.
///
/// Dropping it stops its background poll.
pub struct FsStore {
    files: accord_fs_store::FsStore,
    latest: Arc<watch::Sender<Option<Vec<u8>>>>,
    poller: JoinHandle<()>,
}

fn join_failed(err: tokio::task::JoinError) -> StoreError {
    StoreError::Failed(format!("store task failed: {err}"))
}

/// Sends `value` to the watchers if it differs from what they have.
fn publish(latest: &watch::Sender<Option<Vec<u8>>>, value: Option<Vec<u8>>) {
    latest.send_if_modified(|have| {
        if *have == value {
            false
        } else {
            *have = value;
            true
        }
    });
}

impl FsStore {
    /// Opens (creating if needed) the store at `root`, and starts the
    /// background poll of the latest record on the current tokio runtime.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        let (files, initial) = tokio::task::spawn_blocking(move || {
            let files = accord_fs_store::FsStore::open(&root)?;
            let initial = files.get(LATEST_KEY)?;
            Ok::<_, StoreError>((files, initial))
        })
        .await
        .map_err(join_failed)??;
        let (tx, _) = watch::channel(initial);
        let latest = Arc::new(tx);
        let poller = tokio::spawn(poll(files.clone(), Arc::clone(&latest)));
        Ok(Self {
            files,
            latest,
            poller,
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        self.files.root()
    }

    /// The value of `key`, `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let files = self.files.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || files.get(&key))
            .await
            .map_err(join_failed)?
    }
}

/// The background poll: re-reads the latest record every
/// [`POLL_INTERVAL`] (read errors are retried at the next tick).
async fn poll(files: accord_fs_store::FsStore, latest: Arc<watch::Sender<Option<Vec<u8>>>>) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let files = files.clone();
        let latest = Arc::clone(&latest);
        // Errors (a vanished directory, a transient read failure) are
        // retried at the next tick; the agent learns of failures on its
        // own calls. The read and the publication happen under the process
        // mutex, so a read made before one of our own applies is never
        // published after it.
        let _ = tokio::task::spawn_blocking(move || {
            files.read_latest_then(|current| publish(&latest, current))
        })
        .await;
    }
}

impl Drop for FsStore {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl std::fmt::Debug for FsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsStore")
            .field("root", &self.files.root())
            .finish_non_exhaustive()
    }
}

impl Store for FsStore {
    async fn snapshot(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let files = self.files.clone();
        let snapshot = tokio::task::spawn_blocking(move || files.snapshot())
            .await
            .map_err(join_failed)??;
        // In key order (the snapshot is a sorted map).
        Ok(snapshot.objects.into_iter().collect())
    }

    async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let files = self.files.clone();
        let latest = Arc::clone(&self.latest);
        tokio::task::spawn_blocking(move || {
            files.apply_then(&batch, || {
                publish(&latest, Some(batch.latest_new.clone()));
            })
        })
        .await
        .map_err(join_failed)?
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        self.latest.subscribe()
    }
}
