//! `cargo xtask`: repository tasks that cargo alone cannot do.
//!
//! ```text
//! cargo xtask tidy                 repository rules (no std in core, module docs)
//! cargo xtask fuzz-smoke [SECS]    build every fuzz target with nightly and run each SECS seconds (default 60)
//! cargo xtask ci                   the whole CI sequence, as .ci/run runs it
//! ```

mod fuzz;
mod tidy;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => tidy::run_all(),
        Some("fuzz-smoke") => {
            let seconds = match args.get(1) {
                Some(text) => text
                    .parse()
                    .with_context(|| format!("fuzz-smoke: `{text}` is not a number of seconds"))?,
                None => 60,
            };
            fuzz::smoke(seconds)
        }
        Some("ci") => ci(),
        Some("-h" | "--help") | None => {
            print!("{}", HELP);
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{HELP}"),
    }
}

const HELP: &str = "\
cargo xtask TASK

Tasks:
  tidy                 repository rules: accord-core builds without std and nothing in its
                       dependency graph enables std; every module has //! docs
  fuzz-smoke [SECS]    build the cargo-fuzz targets (nightly) and run each for SECS seconds
                       (default 60) on the committed corpus
  ci                   fmt check, clippy -D warnings, the test command, fuzz smoke runs
";

/// The workspace root (the parent of this crate).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Runs a command in the workspace root, failing on a non-zero exit.
pub(crate) fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("could not start `{program}`"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace"])?;
    fuzz::smoke(60)
}
