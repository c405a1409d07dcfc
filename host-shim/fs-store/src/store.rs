//! The coordinator's store on the local filesystem.
//!
//! A key `<dir>/<name>` ([`crate::key`]) is the file `ROOT/<dir>/<name>`.
//! Keys of any other shape are refused, so a key can never leave the store
//! directory or collide with a temporary file (those start with a dot).
//!
//! - Puts are atomic ([`write_atomic`], mode 0644): the value goes to a
//!   temporary file in the same directory, which is fsynced, renamed over
//!   the key, and the directory fsynced. A key directory created on the way
//!   is made durable by an fsync of the root.
//! - The compare-and-swap of the latest record holds a process-wide mutex
//!   and an exclusive `flock` on `ROOT/.lock`, so several processes sharing
//!   the directory (agents, shims) serialize too; it re-reads the latest
//!   record and writes the new one only if the old one matches
//!   ([`StoreError::Conflict`] otherwise).
//! - [`FsStore::apply`] executes one [`WriteBatch`]: every key checked
//!   first (the latest record is only written by compare-and-swap), the
//!   puts, then the compare-and-swap.
//! - [`FsStore::snapshot`] reads every key, skipping temporary and foreign
//!   files.
//!
//! The store is synchronous; async callers run it on a blocking pool. It
//! has no watch of its own: the shim's backend (`accord_shim::fs_store`)
//! adds one with [`FsStore::apply_then`] and [`FsStore::read_latest_then`],
//! whose callbacks run under the process-wide mutex so that a watcher fed
//! by both never goes back to an older record.
//!
//! The store is untrusted by design: the state machine re-hashes every
//! object it reads, so this module only has to be crash-safe, not
//! tamper-proof.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use accord_core::coordinator::store::{LATEST_KEY, StoreSnapshot};
use accord_core::coordinator::{StoreError, WriteBatch};

use crate::atomic::{sync_dir, write_atomic};
use crate::key::{split_key, valid_component};

/// Serializes compare-and-swaps (and reads of the latest record for a
/// watch) within this process: `flock` locks belong to open file
/// descriptions, so two threads of one process opening the lock file
/// separately would not exclude each other.
static CAS_LOCK: Mutex<()> = Mutex::new(());

/// The name of the lock file inside the store directory.
const LOCK_FILE: &str = ".lock";

/// The mode of every stored object (the store holds nothing secret).
const OBJECT_MODE: u32 = 0o644;

/// A filesystem store rooted at one directory.
#[derive(Clone, Debug)]
pub struct FsStore {
    root: PathBuf,
}

fn failed(action: &str, path: &Path, err: &io::Error) -> StoreError {
    StoreError::Failed(format!("{action} {}: {err}", path.display()))
}

/// The process-wide mutex. A poisoned mutex only means another thread
/// panicked while holding it; the guarded state is the filesystem, which
/// the flock and the atomic puts keep consistent, so carry on.
fn process_lock() -> MutexGuard<'static, ()> {
    CAS_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

impl FsStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(root).map_err(|e| failed("creating", root, &e))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory and file of `key`, refusing malformed keys.
    fn path_of(&self, key: &str) -> Result<(PathBuf, PathBuf), StoreError> {
        let (dir, name) = split_key(key)?;
        let dir = self.root.join(dir);
        let file = dir.join(name);
        Ok((dir, file))
    }

    /// The value of `key`, `None` if it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (_, file) = self.path_of(key)?;
        match fs::read(&file) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(failed("reading", &file, &err)),
        }
    }

    /// Writes `value` under `key` atomically. The latest record is refused:
    /// it is only written by [`Self::compare_and_swap`].
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_put(key)?;
        self.write(key, value)
    }

    /// Writes any valid key atomically.
    fn write(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (dir, file) = self.path_of(key)?;
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(|e| failed("creating", &dir, &e))?;
            // Make the new directory's entry durable too.
            sync_dir(&self.root).map_err(|e| failed("syncing", &self.root, &e))?;
        }
        write_atomic(&file, value, OBJECT_MODE).map_err(|e| failed("writing", &file, &e))
    }

    /// Runs `f` holding the process mutex and the directory's `flock`.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let _guard = process_lock();
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

    /// Replaces the latest record with `new` if it currently is
    /// `latest_old` (`None`: it must not exist).
    pub fn compare_and_swap(
        &self,
        latest_old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), StoreError> {
        self.compare_and_swap_then(latest_old, new, || {})
    }

    /// [`Self::compare_and_swap`], calling `swapped` after a successful
    /// swap while still holding the locks.
    fn compare_and_swap_then(
        &self,
        latest_old: Option<&[u8]>,
        new: &[u8],
        swapped: impl FnOnce(),
    ) -> Result<(), StoreError> {
        self.locked(|| {
            if self.get(LATEST_KEY)?.as_deref() != latest_old {
                return Err(StoreError::Conflict);
            }
            self.write(LATEST_KEY, new)?;
            swapped();
            Ok(())
        })
    }

    /// Executes a batch: every key checked, every put, then the
    /// compare-and-swap.
    pub fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.apply_then(batch, || {})
    }

    /// [`Self::apply`], calling `swapped` after a successful
    /// compare-and-swap under the process-wide mutex (the shim publishes
    /// the new record to its watchers there).
    pub fn apply_then(&self, batch: &WriteBatch, swapped: impl FnOnce()) -> Result<(), StoreError> {
        for (key, _) in &batch.puts {
            check_put(key)?;
        }
        for (key, value) in &batch.puts {
            self.write(key, value)?;
        }
        self.compare_and_swap_then(batch.latest_old.as_deref(), &batch.latest_new, swapped)
    }

    /// Reads the latest record and hands it to `f`, under the process-wide
    /// mutex: a read made before one of this process's swaps is never
    /// handed on after that swap's callback.
    pub fn read_latest_then<T>(
        &self,
        f: impl FnOnce(Option<Vec<u8>>) -> T,
    ) -> Result<T, StoreError> {
        let _guard = process_lock();
        let current = self.get(LATEST_KEY)?;
        Ok(f(current))
    }

    /// Reads every key (temporary and foreign files are skipped).
    pub fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        let mut snapshot = StoreSnapshot::default();
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
                    Ok(bytes) => {
                        snapshot.objects.insert(format!("{dir_name}/{name}"), bytes);
                    }
                    // Removed behind our back: not an object any more.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => return Err(failed("reading", &file, &err)),
                }
            }
        }
        Ok(snapshot)
    }
}

/// Refuses a put of a malformed key or of the latest record.
fn check_put(key: &str) -> Result<(), StoreError> {
    split_key(key)?;
    if key == LATEST_KEY {
        return Err(StoreError::Failed(format!(
            "{LATEST_KEY} is only written by compare-and-swap"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::names_in;

    #[test]
    fn put_is_atomic_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.put("manifests/abc", b"one").unwrap();
        store.put("manifests/abc", b"two").unwrap();
        assert_eq!(store.get("manifests/abc").unwrap().unwrap(), b"two");
        assert_eq!(names_in(&dir.path().join("manifests")), ["abc"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("manifests/abc"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, OBJECT_MODE);
        }
    }

    #[test]
    fn the_latest_record_is_only_swapped() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let err = store.put(LATEST_KEY, b"x").unwrap_err();
        assert!(
            matches!(&err, StoreError::Failed(m) if m.contains("only written by compare-and-swap")),
            "{err:?}"
        );
        let batch = WriteBatch {
            id: 1,
            request: None,
            puts: vec![
                ("manifests/aa".into(), b"m".to_vec()),
                (LATEST_KEY.into(), b"sneaked".to_vec()),
            ],
            latest_old: None,
            latest_new: b"latest".to_vec(),
        };
        assert!(matches!(store.apply(&batch), Err(StoreError::Failed(_))));
        // Refused before anything was written.
        assert_eq!(store.snapshot().unwrap(), StoreSnapshot::default());
    }

    #[test]
    fn compare_and_swap_detects_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.compare_and_swap(None, b"v1").unwrap();
        assert_eq!(
            store.compare_and_swap(None, b"v2"),
            Err(StoreError::Conflict)
        );
        assert_eq!(
            store.compare_and_swap(Some(b"v0"), b"v2"),
            Err(StoreError::Conflict)
        );
        store.compare_and_swap(Some(b"v1"), b"v2").unwrap();
        assert_eq!(store.get(LATEST_KEY).unwrap().unwrap(), b"v2");
        // A second handle on the same directory sees the same record.
        let other = FsStore::open(dir.path()).unwrap();
        assert_eq!(
            other.compare_and_swap(Some(b"v1"), b"v3"),
            Err(StoreError::Conflict)
        );
    }

    #[test]
    fn concurrent_compare_and_swaps_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        store.compare_and_swap(None, b"base").unwrap();
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    // Separate handles, as two processes would have.
                    let store = FsStore::open(dir.path()).unwrap();
                    scope.spawn(move || store.compare_and_swap(Some(b"base"), &[i]).is_ok())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(winners, 1);
        assert_eq!(store.get(LATEST_KEY).unwrap().unwrap().len(), 1);
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        for key in [
            "", "a", "/a", "a/", "../a", "a/../b", "a/b/c", "a/.b", "a/b.c", "a b/c", "ä/b",
        ] {
            assert!(
                matches!(store.put(key, b"x"), Err(StoreError::Failed(_))),
                "{key:?}"
            );
            assert!(store.get(key).is_err(), "{key:?}");
        }
        assert_eq!(names_in(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path()).unwrap();
        let batch = WriteBatch {
            id: 1,
            request: None,
            puts: vec![
                ("manifests/aa".into(), b"m".to_vec()),
                ("policies/bb".into(), b"p".to_vec()),
            ],
            latest_old: None,
            latest_new: b"latest".to_vec(),
        };
        let mut swapped = false;
        store.apply_then(&batch, || swapped = true).unwrap();
        assert!(swapped);
        // Foreign files are not keys.
        fs::write(dir.path().join("manifests/.junk.tmp"), b"x").unwrap();
        fs::create_dir(dir.path().join("manifests/sub")).unwrap();
        let snapshot = store.snapshot().unwrap();
        let keys: Vec<_> = snapshot.objects.keys().cloned().collect();
        assert_eq!(
            keys,
            vec!["manifests/aa", "policies/bb", "transitions/latest"]
        );
        assert_eq!(snapshot.objects["transitions/latest"], b"latest");
        let mut swapped = false;
        assert_eq!(
            store.apply_then(&batch, || swapped = true),
            Err(StoreError::Conflict),
            "replaying a batch loses its compare-and-swap"
        );
        assert!(!swapped);
        assert_eq!(
            store.read_latest_then(|latest| latest).unwrap().as_deref(),
            Some(&b"latest"[..])
        );
    }
}
