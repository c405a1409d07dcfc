//! Where the history is stored: a directory of this machine or the host
//! shim's store, behind one interface for the driver (reads and writes run
//! off the driver's thread).

use std::sync::Arc;

use accord_core::coordinator::store::StoreSnapshot;
use accord_core::coordinator::{StoreError, WriteBatch};

use crate::shim_client::ShimClient;
use accord_fs_store::FsStore;

/// Where the history is stored.
#[derive(Clone)]
pub enum Backend {
    /// A directory of this machine (`--state DIR`).
    Local(FsStore),
    /// The host shim's store (`--shim ADDR`).
    Shim(Arc<ShimClient>),
}

impl Backend {
    pub(super) async fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        match self {
            Self::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.snapshot())
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Failed(format!("reading the store: {e}"))))
            }
            Self::Shim(client) => client.snapshot().await,
        }
    }

    pub(super) async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.apply(&batch))
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Failed(format!("writing the store: {e}"))))
            }
            Self::Shim(client) => client.apply(&batch).await,
        }
    }
}
