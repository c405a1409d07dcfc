//! What the `accord` binary tests share: reading a finished command's
//! output, and asserting its exit status and what it said; and the
//! generated pod set of `accord generate`'s test and benchmark
//! ([`pod_set`]), and what the `accord generate` tests share ([`generated`]).

// Each test binary uses its own subset.
#![allow(dead_code)]

pub mod generated;
pub mod pod_set;

use std::process::Output;

use sha2::{Digest, Sha256};

/// The command's stdout, lossily as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The command's stderr, lossily as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts success and returns stdout (both streams shown otherwise).
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// Asserts exit status `code` and that stderr contains every `needle`.
pub fn fails(output: &Output, code: i32, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        stdout(output)
    );
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in stderr:\n{err}");
    }
}

/// Lower-case hex of SHA-256 over `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
