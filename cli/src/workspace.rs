//! The user's workspace directory: where `accord manifest generate`,
//! `accord set`, `accord verify` and `accord recover` read and write their
//! files (default `.`, `--workspace DIR`).
//!
//! ```text
//! DIR/manifest.json             the manifest to set / expected by verify
//! DIR/policies/<sha256>.toml    every policy the manifest names
//! DIR/seed-shares.json          the sealed seed shares (first `set`, 0600)
//! DIR/verify/                   what `accord verify` wrote last
//! DIR/verify/last-tree-head.json  the trust state: the last verified tree head
//! DIR/collateral/freshness-marks  the newest collateral the network commands
//!                               have seen (CRL numbers, tcbEvaluationDataNumbers)
//! DIR/collateral/cache/         collateral they fetched (default --cache)
//! ```
//!
//! Every file is written atomically (temporary file in the same directory,
//! fsync, rename, fsync of the directory), so a crash leaves the old or the
//! new file, never a torn one.

use std::path::{Path, PathBuf};

use accord_core::hex;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the policies directory.
pub const POLICIES_DIR: &str = "policies";
/// Name of the seed-share document.
pub const SEED_SHARES_FILE: &str = "seed-shares.json";
/// Name of the verification output directory.
pub const VERIFY_DIR: &str = "verify";
/// Name of the trust state inside [`VERIFY_DIR`].
pub const TRUST_STATE_FILE: &str = "last-tree-head.json";
/// Name of the collateral directory.
pub const COLLATERAL_DIR: &str = "collateral";
/// Name of the freshness marks inside [`COLLATERAL_DIR`].
pub const MARKS_FILE: &str = "freshness-marks";
/// Name of the default collateral cache inside [`COLLATERAL_DIR`].
pub const CACHE_DIR: &str = "cache";

/// A workspace directory and the paths of its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workspace {
    dir: PathBuf,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new(".")
    }
}

impl Workspace {
    /// The workspace at `dir` (not created or checked).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// `DIR/policies`.
    pub fn policies_dir(&self) -> PathBuf {
        self.dir.join(POLICIES_DIR)
    }

    /// `DIR/seed-shares.json`.
    pub fn seed_shares(&self) -> PathBuf {
        self.dir.join(SEED_SHARES_FILE)
    }

    /// `DIR/verify`.
    pub fn verify_dir(&self) -> PathBuf {
        self.dir.join(VERIFY_DIR)
    }

    /// `DIR/verify/last-tree-head.json`.
    pub fn trust_state(&self) -> PathBuf {
        self.verify_dir().join(TRUST_STATE_FILE)
    }

    /// `DIR/collateral/freshness-marks`: the verifier's high-water marks
    /// ([`crate::freshness`]).
    pub fn freshness_marks(&self) -> PathBuf {
        self.dir.join(COLLATERAL_DIR).join(MARKS_FILE)
    }

    /// `DIR/collateral/cache`: the network commands' default collateral
    /// cache.
    pub fn collateral_cache(&self) -> PathBuf {
        self.dir.join(COLLATERAL_DIR).join(CACHE_DIR)
    }

    /// The manifest's path, or a helpful error if there is none.
    pub fn require_manifest(&self) -> anyhow::Result<PathBuf> {
        let path = self.manifest();
        if !path.is_file() {
            bail!(
                "no {MANIFEST_FILE} in {}: did you run `accord manifest generate`?",
                self.dir.display()
            );
        }
        Ok(path)
    }

    /// The policies directory, or a helpful error if there is none.
    pub fn require_policies_dir(&self) -> anyhow::Result<PathBuf> {
        let path = self.policies_dir();
        if !path.is_dir() {
            bail!(
                "no {POLICIES_DIR}/ directory in {}: did you run `accord manifest generate`?",
                self.dir.display()
            );
        }
        Ok(path)
    }

    /// The trust state, if `accord verify` succeeded here before.
    pub fn load_trust_state(&self) -> anyhow::Result<Option<TrustState>> {
        TrustState::load(&self.trust_state())
    }
}

/// What `accord verify` accepted last: the signed tree head, the key that
/// signed it and the latest transition. The next verification must extend
/// exactly this history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustState {
    /// The number of transitions in the log.
    pub size: u64,
    /// The log's RFC 9162 root.
    pub root: [u8; 32],
    /// The manifest generation.
    pub generation: u64,
    /// The history key's Ed25519 signature over the tree head.
    pub signature: [u8; 64],
    /// The Ed25519 history key (derived from the deployment's seed).
    pub history_public_key: [u8; 32],
    /// The latest transition's address.
    pub latest_transition: [u8; 32],
    /// The address of the seed-share record the tree head names.
    pub seedshares: [u8; 32],
}

/// The version of the trust state file (2: tree heads name the seed-share
/// record).
const TRUST_STATE_VERSION: u32 = 2;

/// The JSON form of [`TrustState`] (hex strings).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustStateFile {
    version: u32,
    size: u64,
    root: String,
    generation: u64,
    signature: String,
    history_public_key: String,
    latest_transition: String,
    seedshares: String,
}

impl TrustState {
    /// The pretty JSON encoding (with a trailing newline).
    pub fn to_json(&self) -> String {
        let file = TrustStateFile {
            version: TRUST_STATE_VERSION,
            size: self.size,
            root: hex::encode(&self.root),
            generation: self.generation,
            signature: hex::encode(&self.signature),
            history_public_key: hex::encode(&self.history_public_key),
            latest_transition: hex::encode(&self.latest_transition),
            seedshares: hex::encode(&self.seedshares),
        };
        let mut json = serde_json::to_string_pretty(&file).unwrap_or_default();
        json.push('\n');
        json
    }

    /// Parses [`Self::to_json`]'s output strictly.
    pub fn from_json(bytes: &[u8]) -> anyhow::Result<Self> {
        let file: TrustStateFile = serde_json::from_slice(bytes)?;
        if file.version != TRUST_STATE_VERSION {
            bail!(
                "unsupported version {} (this accord writes version {TRUST_STATE_VERSION}; version 1 predates tree heads that name the seed-share record: run `accord verify` with a fresh workspace)",
                file.version
            );
        }
        let field = |name: &str, text: &str| -> anyhow::Result<[u8; 32]> {
            hex::decode_array::<32>(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
        };
        Ok(Self {
            size: file.size,
            root: field("root", &file.root)?,
            generation: file.generation,
            signature: hex::decode_array::<64>(&file.signature)
                .map_err(|e| anyhow::anyhow!("signature: {e}"))?,
            history_public_key: field("history_public_key", &file.history_public_key)?,
            latest_transition: field("latest_transition", &file.latest_transition)?,
            seedshares: field("seedshares", &file.seedshares)?,
        })
    }

    /// Reads the trust state; `None` if the file does not exist.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::from_json(&bytes).map(Some).with_context(|| {
            format!(
                "{} is not a valid trust state (delete it only if you know why it is broken)",
                path.display()
            )
        })
    }

    /// Writes the trust state atomically.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// Writes `bytes` to `path` atomically with mode 0644.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// Writes `bytes` to `path` atomically with exactly `mode`
/// ([`accord_fs_store::write_atomic`]: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory). Creates
/// missing parent directories.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    accord_fs_store::write_atomic(path, bytes, mode)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> TrustState {
        TrustState {
            size: 3,
            root: [1; 32],
            generation: 3,
            signature: [2; 64],
            history_public_key: [3; 32],
            latest_transition: [4; 32],
            seedshares: [5; 32],
        }
    }

    #[test]
    fn paths_follow_the_layout() {
        let ws = Workspace::new("/w");
        assert_eq!(ws.manifest(), Path::new("/w/manifest.json"));
        assert_eq!(ws.policies_dir(), Path::new("/w/policies"));
        assert_eq!(ws.seed_shares(), Path::new("/w/seed-shares.json"));
        assert_eq!(ws.verify_dir(), Path::new("/w/verify"));
        assert_eq!(ws.trust_state(), Path::new("/w/verify/last-tree-head.json"));
    }

    #[test]
    fn missing_manifest_says_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let err = ws.require_manifest().unwrap_err().to_string();
        assert!(err.contains("no manifest.json in"), "{err}");
        assert!(err.contains("accord manifest generate"), "{err}");
        let err = ws.require_policies_dir().unwrap_err().to_string();
        assert!(err.contains("policies/"), "{err}");
    }

    #[test]
    fn trust_state_round_trips_and_is_absent_at_first() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        assert_eq!(ws.load_trust_state().unwrap(), None);
        state().save(&ws.trust_state()).unwrap();
        assert_eq!(ws.load_trust_state().unwrap(), Some(state()));
        let text = std::fs::read_to_string(ws.trust_state()).unwrap();
        assert!(text.contains(&"04".repeat(32)), "{text}");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(ws.verify_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(TRUST_STATE_FILE)]);
    }

    #[test]
    fn a_corrupt_trust_state_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        write_atomic(&ws.trust_state(), b"{\"version\":1}").unwrap();
        let err = format!("{:#}", ws.load_trust_state().unwrap_err());
        assert!(err.contains("not a valid trust state"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_mode_sets_the_mode_and_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.json");
        write_atomic_mode(&path, b"one", 0o600).unwrap();
        write_atomic_mode(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
