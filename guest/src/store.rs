//! The coordinator's store on the local filesystem, under `DIR/store/`.
//!
//! A key `<dir>/<name>` (both `[A-Za-z0-9-]+`) is the file
//! `DIR/store/<dir>/<name>`. Keys of any other shape are refused, so a key
//! can never leave the store directory or collide with a temporary file
//! (those start with a dot).
//!
//! - [`FsStore::put`] is atomic: the value goes to a temporary file in the
//!   same directory, which is fsynced, renamed over the key, and the
//!   directory fsynced.
//! - [`FsStore::compare_and_swap`] holds a process-wide mutex and an
//!   exclusive `flock` on `DIR/store/.lock` (so two processes sharing the
//!   directory serialize too), re-reads the latest record, and writes the
//!   new one only if the old one matches ([`StoreError::Conflict`]
//!   otherwise).
//! - [`FsStore::snapshot`] reads every key.
//! - [`FsStore::apply`] executes one [`WriteBatch`]: puts, then the
//!   compare-and-swap.
//!
//! The store is untrusted by design: the state machine re-hashes every
//! object it reads, so this module only has to be crash-safe, not
//! tamper-proof.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use accord_core::coordinator::store::{LATEST_KEY, StoreSnapshot};
use accord_core::coordinator::{StoreError, WriteBatch};

/// Serializes compare-and-swaps within this process (`flock` locks are per
/// open file description, so two threads of one process would each get
/// their own lock on separate opens).
static CAS_LOCK: Mutex<()> = Mutex::new(());

/// Distinguishes temporary files of concurrent puts in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name of the lock file inside the store directory.
const LOCK_FILE: &str = ".lock";

/// A filesystem store rooted at one directory.
#[derive(Clone, Debug)]
pub struct FsStore {
    root: PathBuf,
}

fn failed(action: &str, path: &Path, err: &io::Error) -> StoreError {
    StoreError::Failed(format!("{action} {}: {err}", path.display()))
}

fn valid_component(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Splits a key into its directory and name, refusing any other shape.
pub fn split_key(key: &str) -> Result<(&str, &str), StoreError> {
    match key.split_once('/') {
        Some((dir, name)) if valid_component(dir) && valid_component(name) => Ok((dir, name)),
        _ => Err(StoreError::Failed(format!(
            "invalid store key {key:?} (expected <dir>/<name>, both [A-Za-z0-9-]+)"
        ))),
    }
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

    /// Writes `value` under `key` atomically (temporary file, fsync,
    /// rename, fsync of the directory).
    pub fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let (dir, file) = self.path_of(key)?;
        fs::create_dir_all(&dir).map_err(|e| failed("creating", &dir, &e))?;
        let (_, name) = split_key(key)?;
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

    /// Replaces the latest record with `new` if it currently is
    /// `latest_old` (`None`: it must not exist).
    pub fn compare_and_swap(
        &self,
        latest_old: Option<&[u8]>,
        new: &[u8],
    ) -> Result<(), StoreError> {
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
        let result = (|| {
            let current = self.get(LATEST_KEY)?;
            if current.as_deref() != latest_old {
                return Err(StoreError::Conflict);
            }
            self.put(LATEST_KEY, new)
        })();
        let _ = lock.unlock();
        result
    }

    /// Executes a batch: every put, then the compare-and-swap.
    pub fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        for (key, value) in &batch.puts {
            self.put(key, value)?;
        }
        self.compare_and_swap(batch.latest_old.as_deref(), &batch.latest_new)
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
            if !valid_component(&dir_name) || !dir.path().is_dir() {
                continue;
            }
            let path = dir.path();
            for entry in fs::read_dir(&path).map_err(|e| failed("listing", &path, &e))? {
                let entry = entry.map_err(|e| failed("listing", &path, &e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if !valid_component(&name) {
                    continue;
                }
                let file = entry.path();
                let bytes = fs::read(&file).map_err(|e| failed("reading", &file, &e))?;
                snapshot.objects.insert(format!("{dir_name}/{name}"), bytes);
            }
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "accord-store-{tag}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn put_is_atomic_and_leaves_no_temporary_files() {
        let dir = temp_dir("atomic");
        let store = FsStore::open(&dir).unwrap();
        store.put("manifests/abc", b"one").unwrap();
        store.put("manifests/abc", b"two").unwrap();
        assert_eq!(store.get("manifests/abc").unwrap().unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.join("manifests"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["abc".to_string()]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn compare_and_swap_detects_conflicts() {
        let dir = temp_dir("cas");
        let store = FsStore::open(&dir).unwrap();
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
        let other = FsStore::open(&dir).unwrap();
        assert_eq!(
            other.compare_and_swap(Some(b"v1"), b"v3"),
            Err(StoreError::Conflict)
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrent_compare_and_swaps_have_one_winner() {
        let dir = temp_dir("race");
        let store = FsStore::open(&dir).unwrap();
        store.compare_and_swap(None, b"base").unwrap();
        let winners: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|i| {
                    // Separate handles, as two processes would have.
                    let store = FsStore::open(&dir).unwrap();
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
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_keys_are_refused() {
        let dir = temp_dir("keys");
        let store = FsStore::open(&dir).unwrap();
        for key in [
            "", "a", "/a", "a/", "../a", "a/../b", "a/b/c", "a/.b", "a/b.c", "a b/c", "ä/b",
        ] {
            assert!(
                matches!(store.put(key, b"x"), Err(StoreError::Failed(_))),
                "{key:?}"
            );
            assert!(store.get(key).is_err(), "{key:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = temp_dir("snapshot");
        let store = FsStore::open(&dir).unwrap();
        let batch = WriteBatch {
            id: 1,
            puts: vec![
                ("manifests/aa".into(), b"m".to_vec()),
                ("policies/bb".into(), b"p".to_vec()),
            ],
            latest_old: None,
            latest_new: b"latest".to_vec(),
        };
        store.apply(&batch).unwrap();
        // Foreign files are not keys.
        fs::write(dir.join("manifests/.junk.tmp"), b"x").unwrap();
        let snapshot = store.snapshot().unwrap();
        let keys: Vec<_> = snapshot.objects.keys().cloned().collect();
        assert_eq!(
            keys,
            vec!["manifests/aa", "policies/bb", "transitions/latest"]
        );
        assert_eq!(snapshot.objects["transitions/latest"], b"latest");
        assert_eq!(
            store.apply(&batch),
            Err(StoreError::Conflict),
            "replaying a batch loses its compare-and-swap"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
