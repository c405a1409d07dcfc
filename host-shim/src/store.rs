//! The storage interface every backend implements.
//!
//! Keys are `<dir>/<name>`, both `[A-Za-z0-9-]+` ([`valid_key`]); every key
//! but [`LATEST_KEY`] is content-addressed and written once. The latest
//! record is the only mutable key: [`Store::apply`] writes the batch's
//! objects, then replaces it by compare-and-swap.

use std::future::Future;

use tokio::sync::watch;

pub use accord_core::coordinator::store::LATEST_KEY;

/// A storage failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The latest record was not the expected one; nothing of the
    /// compare-and-swap was written.
    Conflict,
    /// Anything else; the text says what and where.
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict => f.write_str("the latest record has changed since last read"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StoreError {}

/// Whether `key` has the shape `<dir>/<name>`, both `[A-Za-z0-9-]+`.
pub fn valid_key(key: &str) -> bool {
    fn part(p: &str) -> bool {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }
    matches!(key.split_once('/'), Some((dir, name)) if part(dir) && part(name))
}

/// A storage backend.
pub trait Store: Send + Sync + 'static {
    /// Every object, as (key, value).
    fn snapshot(&self) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send;

    /// Writes `puts` (idempotent), then replaces the latest record with
    /// `latest_new` if it is `latest_old` (`None`: it must not exist).
    fn apply(
        &self,
        puts: Vec<(String, Vec<u8>)>,
        latest_old: Option<Vec<u8>>,
        latest_new: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest record as the backend last saw it, updated whenever it
    /// changes (by this shim or by another writer).
    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>>;
}

/// Several shims (tests, or replicas on one host) can share one backend.
impl<T: Store> Store for std::sync::Arc<T> {
    fn snapshot(&self) -> impl Future<Output = Result<Vec<(String, Vec<u8>)>, StoreError>> + Send {
        T::snapshot(self)
    }

    fn apply(
        &self,
        puts: Vec<(String, Vec<u8>)>,
        latest_old: Option<Vec<u8>>,
        latest_new: Vec<u8>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        T::apply(self, puts, latest_old, latest_new)
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        T::watch_latest(self)
    }
}
