//! An in-memory backend: the same semantics as the durable ones
//! (compare-and-swap of the latest record, a watch on it) and nothing
//! kept after the process ends. For tests and hostile-shim experiments:
//! [`MemStore::tamper`] rewrites any object behind the agent's back.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::store::{LATEST_KEY, Store, StoreError, WriteBatch, valid_key};

/// Objects in a map.
pub struct MemStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    latest: watch::Sender<Option<Vec<u8>>>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self {
            objects: Mutex::new(BTreeMap::new()),
            latest: watch::channel(None).0,
        }
    }
}

impl MemStore {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces (or, with `None`, deletes) an object without any check,
    /// as a hostile host would.
    pub fn tamper(&self, key: &str, value: Option<Vec<u8>>) {
        let mut objects = self.objects();
        match value {
            Some(value) => objects.insert(key.to_string(), value),
            None => objects.remove(key),
        };
        if key == LATEST_KEY {
            self.latest.send_replace(objects.get(LATEST_KEY).cloned());
        }
    }

    /// A copy of every object.
    pub fn dump(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects().clone()
    }
}

impl Store for MemStore {
    fn snapshot(&self) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send {
        let objects = self.dump().into_iter().collect();
        async move { Ok(objects) }
    }

    fn apply(&self, batch: WriteBatch) -> impl Future<Output = Result<(), StoreError>> + Send {
        let WriteBatch {
            puts,
            latest_old,
            latest_new,
            ..
        } = batch;
        let result = (|| {
            if let Some((key, _)) = puts.iter().find(|(key, _)| !valid_key(key)) {
                return Err(StoreError::Failed(format!("invalid store key {key:?}")));
            }
            let mut objects = self.objects();
            for (key, value) in puts {
                objects.insert(key, value);
            }
            if objects.get(LATEST_KEY) != latest_old.as_ref() {
                return Err(StoreError::Conflict);
            }
            objects.insert(LATEST_KEY.to_string(), latest_new.clone());
            self.latest.send_replace(Some(latest_new));
            Ok(())
        })();
        async move { result }
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        self.latest.subscribe()
    }
}
