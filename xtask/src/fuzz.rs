//! Fuzz smoke runs: build the cargo-fuzz targets in `core/fuzz` with the
//! nightly toolchain and run each one for a bounded time on its committed
//! corpus.

use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace_root;

/// The targets, each with its corpus folder under `core/fuzz/corpus/`.
pub const TARGETS: &[&str] = &[
    "snp_report",
    "tdx_quote",
    "tdx_collateral",
    "history",
    "manifest",
    "protocol",
];

/// Runs every target for `seconds` seconds.
pub fn smoke(seconds: u64) -> anyhow::Result<()> {
    let fuzz_dir = workspace_root().join("core");
    for target in TARGETS {
        let corpus = format!("fuzz/corpus/{target}");
        eprintln!("fuzz-smoke: {target} for {seconds}s");
        // libFuzzer mutates a scratch copy so the committed corpus only
        // changes when someone minimises it on purpose.
        let scratch = workspace_root().join("target/fuzz-scratch").join(target);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", target])
            .arg(&scratch)
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ])
            .current_dir(&fuzz_dir)
            .status()
            .context("could not run `cargo +nightly fuzz` (is cargo-fuzz installed?)")?;
        if !status.success() {
            bail!("fuzz target {target} failed: {status}");
        }
    }
    Ok(())
}
