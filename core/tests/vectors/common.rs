//! Locating and loading the shared test vectors.

use std::path::PathBuf;

use accord_core::crypto::{CryptoProvider, all_providers};
use accord_core::time::UnixTime;

/// The test-data folder: `$ACCORD_TESTDATA`, else `../shared/testdata`
/// relative to the workspace root.
pub fn testdata_dir() -> PathBuf {
    match std::env::var_os("ACCORD_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
    }
}

fn vectors_required() -> bool {
    std::env::var("ACCORD_REQUIRE_VECTORS").is_ok_and(|v| v == "1")
}

/// Reads `testdata/<relative>`. Returns `None` (and says so on stderr) when
/// the vectors are absent and not required; panics when they are required.
pub fn try_read(relative: &str) -> Option<Vec<u8>> {
    let path = testdata_dir().join(relative);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(err) if vectors_required() => {
            panic!(
                "ACCORD_REQUIRE_VECTORS=1 but test vector {} is unreadable: {err}",
                path.display()
            )
        }
        Err(err) => {
            eprintln!(
                "SKIPPED: test vector {} unavailable ({err}); set ACCORD_TESTDATA",
                path.display()
            );
            None
        }
    }
}

/// Reads a vector, or ends the calling test early (as a loudly reported
/// skip) when vectors are absent and not required.
#[macro_export]
macro_rules! vector {
    ($path:expr) => {
        match $crate::common::try_read($path) {
            Some(bytes) => bytes,
            None => return,
        }
    };
}

/// Parses an RFC 3339 instant; panics on a typo in the test itself.
pub fn at(text: &str) -> UnixTime {
    UnixTime::parse_rfc3339(text).unwrap()
}

/// Every provider compiled in; the tests run against each.
pub fn providers() -> &'static [&'static dyn CryptoProvider] {
    all_providers()
}
