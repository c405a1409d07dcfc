//! The storage interface every backend implements.
//!
//! Keys are `<dir>/<name>`, both `[A-Za-z0-9-]+` ([`valid_key`]); every key
//! but [`LATEST_KEY`] is content-addressed and written once. The latest
//! record is the only mutable key: [`Store::apply`] writes the batch's
//! objects, then replaces it by compare-and-swap. The error and the batch
//! are the agent's own ([`StoreError`], [`WriteBatch`], from accord-core),
//! and the key rule is the filesystem store's ([`valid_key`], from
//! accord-fs-store), so every backend and the agent agree on them.

use std::future::Future;

use tokio::sync::watch;

pub use accord_core::coordinator::store::LATEST_KEY;
pub use accord_core::coordinator::{StoreError, WriteBatch};
pub use accord_fs_store::valid_key;

/// The batch of a shim `Apply` request: `puts`, then the compare-and-swap
/// of the latest record. The channel carries no batch id (replies come in
/// request order on the agent's connection), so it is 0.
pub fn batch(
    puts: Vec<(String, Vec<u8>)>,
    latest_old: Option<Vec<u8>>,
    latest_new: Vec<u8>,
) -> WriteBatch {
    WriteBatch {
        id: 0,
        request: None,
        puts,
        latest_old,
        latest_new,
    }
}

/// A storage backend.
pub trait Store: Send + Sync + 'static {
    /// Every object, as (key, value).
    fn snapshot(&self) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send;

    /// Writes the batch's puts (idempotent), then replaces the latest
    /// record with `latest_new` if it is `latest_old` (`None`: it must not
    /// exist). The batch's id is not used.
    fn apply(&self, batch: WriteBatch) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest record as the backend last saw it, updated whenever it
    /// changes (by this shim or by another writer).
    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>>;
}

/// Several shims (tests, or replicas on one host) can share one backend.
impl<T: Store> Store for std::sync::Arc<T> {
    fn snapshot(&self) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send {
        T::snapshot(self)
    }

    fn apply(&self, batch: WriteBatch) -> impl Future<Output = Result<(), StoreError>> + Send {
        T::apply(self, batch)
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        T::watch_latest(self)
    }
}
