//! The verifier's memory across runs: the high-water marks of the
//! collateral the network commands have seen (newest CRL number per
//! stream, newest `tcbEvaluationDataNumber` per root and FMSPC and of the
//! QE identity), kept in the workspace
//! ([`Workspace::freshness_marks`](crate::workspace::Workspace::freshness_marks),
//! core's versioned encoding, `ServiceVerifier::export_marks`).
//!
//! Each connection of a network command verifies with a verifier of its
//! own ([`workspace_verifier`]), not the process-wide one, so that in a
//! process acting for several workspaces (the demo, the tests) one
//! workspace's marks never reach another's.
//!
//! Before connecting, that verifier is raised to the marks in the
//! file ([`raise_from`]): collateral older than what an earlier run saw
//! (a CRL from before a revocation, offered by the coordinator's evidence
//! or by a stale mirror) is refused. After a successful verification the
//! marks are written back atomically ([`save`]), re-reading the file first
//! so that a concurrent run's newer marks are kept: marks only rise.
//!
//! A file that is not valid marks is an error naming it (fail closed: the
//! memory is not silently dropped). Delete it to start afresh.

use std::path::Path;

use std::sync::{Arc, Mutex, MutexGuard};

use accord_core::evidence::ServiceVerifier;
use anyhow::Context;

/// A verifier for one run in one workspace.
pub type Verifier = Arc<Mutex<ServiceVerifier>>;

/// A fresh verifier raised to the marks at `path`.
pub fn workspace_verifier(path: &Path) -> anyhow::Result<Verifier> {
    let verifier = Verifier::default();
    raise_from(path, &verifier)?;
    Ok(verifier)
}

fn lock(verifier: &Verifier) -> MutexGuard<'_, ServiceVerifier> {
    verifier.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the marks at `path` (absent: nothing to do) and raises
/// `verifier` to them.
pub fn raise_from(path: &Path, verifier: &Verifier) -> anyhow::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    lock(verifier).raise_marks(&bytes).map_err(|err| {
        anyhow::anyhow!(
            "{}: not valid freshness marks ({err}); it records the newest collateral this \
             workspace has seen: restore it, or delete it to start afresh",
            path.display()
        )
    })
}

/// Writes `verifier`'s marks to `path` (atomically), raised to what the
/// file holds now; does nothing when that is what it holds.
pub fn save(path: &Path, verifier: &Verifier) -> anyhow::Result<()> {
    raise_from(path, verifier)?;
    let bytes = lock(verifier).export_marks();
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    accord_fs_store::write_atomic(path, &bytes, 0o644)
        .with_context(|| format!("cannot record the freshness marks in {}", path.display()))
}
