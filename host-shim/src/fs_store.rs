//! The shim's embedded default backend: the store on the local filesystem.
//!
//! A key `<dir>/<name>` (both `[A-Za-z0-9-]+`, [`valid_key`]) is the file
//! `ROOT/<dir>/<name>`. Keys of any other shape are refused, so a key can
//! never leave the store directory or collide with a temporary file (those
//! start with a dot).
//!
//! - Puts are atomic: the value goes to a temporary file in the same
//!   directory, which is fsynced, renamed over the key, and the directory
//!   fsynced.
//! - The compare-and-swap of the latest record holds a process-wide mutex
//!   and an exclusive `flock` on `ROOT/.lock`, so several shim processes
//!   sharing the directory serialize too; it re-reads the latest record and
//!   writes the new one only if the old one matches
//!   ([`StoreError::Conflict`] otherwise).
//! - The snapshot reads every key, skipping temporary and foreign files.
//! - [`Store::watch_latest`] is updated right after this store's own
//!   successful apply, and by a background task that re-reads the latest
//!   record every [`POLL_INTERVAL`] to see other processes' writes.
//!
//! All file work runs on tokio's blocking pool. The store is untrusted by
//! design: the agent re-hashes every object it reads, so this module only
//! has to be crash-safe, not tamper-proof.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{LATEST_KEY, Store, StoreError, valid_key};

/// How often the background task re-reads the latest record.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Serializes compare-and-swaps (and the watch updates) within this
/// process: `flock` locks belong to open file descriptions, so two threads
/// of one process opening the lock file separately would not exclude each
/// other.
static CAS_LOCK: Mutex<()> = Mutex::new(());

/// Distinguishes the temporary files of concurrent puts in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name of the lock file inside the store directory.
const LOCK_FILE: &str = ".lock";

/// A filesystem store rooted at one directory.
///
/// Dropping it stops its background poll.
pub struct FsStore {
    dir: Arc<Dir>,
    latest: Arc<watch::Sender<Option<Vec<u8>>>>,
    poller: JoinHandle<()>,
}

/// The synchronous part: paths and file operations.
#[derive(Debug)]
struct Dir {
    root: PathBuf,
}

fn failed(action: &str, path: &Path, err: &io::Error) -> StoreError {
    StoreError::Failed(format!("{action} {}: {err}", path.display()))
}

fn join_failed(err: tokio::task::JoinError) -> StoreError {
    StoreError::Failed(format!("store task failed: {err}"))
}

fn valid_component(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Dir {
    /// The directory and file of `key`, refusing malformed keys.
    fn path_of<'k>(&self, key: &'k str) -> Result<(PathBuf, &'k str), StoreError> {
        match key.split_once('/') {
            Some((dir, name)) if valid_key(key) => Ok((self.root.join(dir), name)),
            _ => Err(StoreError::Failed(format!(
                "invalid store key {key:?} (expected <dir>/<name>, both [A-Za-z0-9-]+)"
            ))),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (dir, name) = self.path_of(key)?;
        let file = dir.join(name);
        match fs::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(failed("reading", &file, &err)),
        }
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (dir, name) = self.path_of(key)?;
        let file = dir.join(name);
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| failed("creating", &dir, &e))?;
            // Make the new directory's entry durable too.
            File::open(&self.root)
                .and_then(|root| root.sync_all())
                .map_err(|e| failed("syncing", &self.root, &e))?;
        }
        let temp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| -> io::Result<()> {
            let mut out = File::create(&temp)?;
            out.write_all(value)?;
            out.sync_all()?;
            drop(out);
            fs::rename(&temp, &file)?;
            File::open(&dir)?.sync_all()
        })();
        if let Err(err) = result {
            let _ = fs::remove_file(&temp);
            return Err(failed("writing", &file, &err));
        }
        Ok(())
    }

    /// Runs `f` holding the process mutex and the directory's `flock`.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        // A poisoned mutex only means another thread panicked while holding
        // it; the guarded state is the filesystem, which the flock and the
        // atomic put keep consistent, so carry on.
        let _guard = CAS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let lock_path = self.root.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| failed("opening", &lock_path, &e))?;
        lock.lock().map_err(|e| failed("locking", &lock_path, &e))?;
        let result = f();
        let _ = lock.unlock();
        result
    }

    fn apply(
        &self,
        puts: &[(String, Vec<u8>)],
        latest_old: Option<&[u8]>,
        latest_new: &[u8],
        latest: &watch::Sender<Option<Vec<u8>>>,
    ) -> Result<(), StoreError> {
        for (key, _) in puts {
            self.path_of(key)?;
            if key == LATEST_KEY {
                return Err(StoreError::Failed(format!(
                    "{LATEST_KEY} is only written by compare-and-swap"
                )));
            }
        }
        for (key, value) in puts {
            self.put(key, value)?;
        }
        self.locked(|| {
            if self.get(LATEST_KEY)?.as_deref() != latest_old {
                return Err(StoreError::Conflict);
            }
            self.put(LATEST_KEY, latest_new)?;
            publish(latest, Some(latest_new.to_vec()));
            Ok(())
        })
    }

    /// Re-reads the latest record and publishes it if it changed.
    fn refresh(&self, latest: &watch::Sender<Option<Vec<u8>>>) -> Result<(), StoreError> {
        // Under the process mutex, so that a read made before one of our own
        // applies is never published after it.
        let _guard = CAS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.get(LATEST_KEY)?;
        publish(latest, current);
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut objects = Vec::new();
        let dirs = fs::read_dir(&self.root).map_err(|e| failed("listing", &self.root, &e))?;
        for dir in dirs {
            let dir = dir.map_err(|e| failed("listing", &self.root, &e))?;
            let Some(dir_name) = dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let path = dir.path();
            if !valid_component(&dir_name) || !path.is_dir() {
                continue;
            }
            for entry in fs::read_dir(&path).map_err(|e| failed("listing", &path, &e))? {
                let entry = entry.map_err(|e| failed("listing", &path, &e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let file = entry.path();
                if !valid_component(&name) || !file.is_file() {
                    continue;
                }
                match fs::read(&file) {
                    Ok(bytes) => objects.push((format!("{dir_name}/{name}"), bytes)),
                    // Removed behind our back: not an object any more.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(failed("reading", &file, &err)),
                }
            }
        }
        objects.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(objects)
    }
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
        let dir = Arc::new(Dir { root: root.into() });
        let initial = {
            let dir = Arc::clone(&dir);
            tokio::task::spawn_blocking(move || {
                fs::create_dir_all(&dir.root).map_err(|e| failed("creating", &dir.root, &e))?;
                dir.get(LATEST_KEY)
            })
            .await
            .map_err(join_failed)??
        };
        let (tx, _) = watch::channel(initial);
        let latest = Arc::new(tx);
        let poller = tokio::spawn(poll(Arc::clone(&dir), Arc::clone(&latest)));
        Ok(Self {
            dir,
            latest,
            poller,
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.dir.root
    }

    /// The value of `key`, `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let dir = Arc::clone(&self.dir);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || dir.get(&key))
            .await
            .map_err(join_failed)?
    }
}

/// The background poll: re-reads the latest record every
/// [`POLL_INTERVAL`] (read errors are retried at the next tick).
async fn poll(dir: Arc<Dir>, latest: Arc<watch::Sender<Option<Vec<u8>>>>) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = Arc::clone(&dir);
        let latest = Arc::clone(&latest);
        // Errors (a vanished directory, a transient read failure) are
        // retried at the next tick; the agent learns of failures on its
        // own calls.
        let _ = tokio::task::spawn_blocking(move || dir.refresh(&latest)).await;
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
            .field("root", &self.dir.root)
            .finish_non_exhaustive()
    }
}

impl Store for FsStore {
    async fn snapshot(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let dir = Arc::clone(&self.dir);
        tokio::task::spawn_blocking(move || dir.snapshot())
            .await
            .map_err(join_failed)?
    }

    async fn apply(
        &self,
        puts: Vec<(String, Vec<u8>)>,
        latest_old: Option<Vec<u8>>,
        latest_new: Vec<u8>,
    ) -> Result<(), StoreError> {
        let dir = Arc::clone(&self.dir);
        let latest = Arc::clone(&self.latest);
        tokio::task::spawn_blocking(move || {
            dir.apply(&puts, latest_old.as_deref(), &latest_new, &latest)
        })
        .await
        .map_err(join_failed)?
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        self.latest.subscribe()
    }
}
