//! accord-fs-store: the filesystem pieces written once.
//!
//! - [`write_atomic`] ([`atomic`]): the one way accord replaces a file so
//!   that a crash leaves the old or the new content, never a mix (the
//!   CLI's workspace, the initializer's `tls-config/`, evidence files, the
//!   simulated chip, the store's objects).
//! - [`key`]: the shape of store keys (`<dir>/<name>`, both
//!   `[A-Za-z0-9-]+`) that every storage backend enforces.
//! - [`FsStore`] ([`store`]): the store on the local filesystem, used by the
//!   agent's standalone mode (`accord-guest coordinator --state DIR`) and,
//!   wrapped with a watch, by the shim's filesystem backend.
//!
//! The crate makes no trust decision: the store is untrusted by design
//! (the agent re-hashes every object it reads), so these modules only have
//! to be crash-safe. It depends on nothing but `std` and accord-core's
//! storage types ([`StoreError`], [`WriteBatch`], [`StoreSnapshot`]), so
//! the static agent can link it without an async runtime or a Kubernetes
//! client.
//!
//! [`StoreError`]: accord_core::coordinator::StoreError
//! [`WriteBatch`]: accord_core::coordinator::WriteBatch
//! [`StoreSnapshot`]: accord_core::coordinator::store::StoreSnapshot
#![forbid(unsafe_code)]

pub mod atomic;
pub mod key;
pub mod store;

pub use atomic::write_atomic;
pub use key::{split_key, valid_key};
pub use store::FsStore;

#[cfg(test)]
mod testing {
    //! What the unit tests share.

    use std::path::Path;

    /// The names in `dir`, sorted.
    pub fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}
