//! The on-disk cache: one file per item, at the path of what it covers
//! ([`Item::cache_key`](crate::Item::cache_key), e.g.
//! `kds/vcek/Milan/<hwid>/<tcb>.der`, `kds/crl/vcek/Milan.der`,
//! `pcs/tdx/<fmspc>/tcbinfo.json`), with two side files:
//! `<key>.issuer-chain.pem` (the PCS response header, URL-decoded) and
//! `<key>.fetched` (when it was fetched, Unix seconds).
//!
//! Files are replaced with `accord_fs_store::write_atomic`, side files
//! first and the body last, so a reader never pairs a new body with a
//! missing chain. The cache holds only what the vendors signed; whether an
//! entry may be served is decided by [`Fetcher`](crate::Fetcher) from the
//! entry's own dates, and whether it is genuine by core.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One cached item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The normalized body.
    pub body: Vec<u8>,
    /// The issuer chain from the response header, if the item has one.
    pub issuer_chain: Option<String>,
    /// When it was fetched from the vendor.
    pub fetched_at: SystemTime,
}

/// A cache directory.
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

const CHAIN_SUFFIX: &str = ".issuer-chain.pem";
const FETCHED_SUFFIX: &str = ".fetched";

impl Cache {
    /// The cache under `root` (created on the first store).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        key.split('/')
            .fold(self.root.clone(), |path, part| path.join(part))
    }

    fn side(&self, key: &str, suffix: &str) -> PathBuf {
        let mut path = self.path(key).into_os_string();
        path.push(suffix);
        PathBuf::from(path)
    }

    /// The entry of `key`, if there is one.
    pub fn load(&self, key: &str) -> io::Result<Option<Entry>> {
        let body = match std::fs::read(self.path(key)) {
            Ok(body) => body,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        let issuer_chain = match std::fs::read_to_string(self.side(key, CHAIN_SUFFIX)) {
            Ok(chain) => Some(chain),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        let fetched_at = std::fs::read_to_string(self.side(key, FETCHED_SUFFIX))
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
            .or_else(|| {
                std::fs::metadata(self.path(key))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .unwrap_or(UNIX_EPOCH);
        Ok(Some(Entry {
            body,
            issuer_chain,
            fetched_at,
        }))
    }

    /// Stores `entry` under `key`, replacing what was there.
    pub fn store(&self, key: &str, entry: &Entry) -> io::Result<()> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let chain_path = self.side(key, CHAIN_SUFFIX);
        match &entry.issuer_chain {
            Some(chain) => accord_fs_store::write_atomic(&chain_path, chain.as_bytes(), 0o644)?,
            None => match std::fs::remove_file(&chain_path) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                _ => {}
            },
        }
        let secs = entry
            .fetched_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        accord_fs_store::write_atomic(
            &self.side(key, FETCHED_SUFFIX),
            format!("{secs}\n").as_bytes(),
            0o644,
        )?;
        accord_fs_store::write_atomic(&path, &entry.body, 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_with_side_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.load("pcs/tdx/00/tcbinfo.json").unwrap(), None);
        let entry = Entry {
            body: b"{}".to_vec(),
            issuer_chain: Some("-----BEGIN CERTIFICATE-----".into()),
            fetched_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        cache.store("pcs/tdx/00/tcbinfo.json", &entry).unwrap();
        assert_eq!(
            cache.load("pcs/tdx/00/tcbinfo.json").unwrap(),
            Some(entry.clone())
        );
        assert!(
            dir.path()
                .join("pcs/tdx/00/tcbinfo.json.issuer-chain.pem")
                .is_file()
        );
        let plain = Entry {
            issuer_chain: None,
            ..entry
        };
        cache.store("pcs/tdx/00/tcbinfo.json", &plain).unwrap();
        assert_eq!(cache.load("pcs/tdx/00/tcbinfo.json").unwrap(), Some(plain));
    }
}
