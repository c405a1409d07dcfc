//! Repository rules, runnable as `cargo xtask tidy` and as `#[test]`s (so
//! `cargo test --workspace` enforces them).

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace_root;

/// Runs every rule.
pub fn run_all() -> anyhow::Result<()> {
    core_builds_without_std()?;
    every_module_has_docs()?;
    eprintln!("tidy: all rules hold");
    Ok(())
}

/// `accord-core` builds with `--no-default-features`, and in that build no
/// crate in its dependency graph has its `std` feature enabled. (The bare
/// `x86_64-unknown-none` target is not installed here, so the graph is
/// checked instead.)
pub fn core_builds_without_std() -> anyhow::Result<()> {
    let root = workspace_root();
    let target_dir = root.join("target/tidy-no-std");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "accord-core",
            "--no-default-features",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&root)
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!("accord-core does not build with --no-default-features");
    }
    // The unit graph (nightly, read-only: nothing is built) lists every
    // compilation unit with its resolved features. Walk it from the
    // accord-core library through library edges only: build scripts and
    // proc-macros run on the host and may use std.
    let output = Command::new("cargo")
        .args([
            "+nightly",
            "build",
            "-p",
            "accord-core",
            "--no-default-features",
            "--unit-graph",
            "-Z",
            "unstable-options",
        ])
        .current_dir(&root)
        .output()
        .context("could not run `cargo +nightly build --unit-graph`")?;
    if !output.status.success() {
        bail!(
            "cargo --unit-graph failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let offenders = std_units(&output.stdout)?;
    if !offenders.is_empty() {
        bail!(
            "the no_std build of accord-core enables std in: {}",
            offenders.join(", ")
        );
    }
    Ok(())
}

/// The package ids, reachable from accord-core's library through
/// target-code edges, that have the `std` feature on.
fn std_units(unit_graph_json: &[u8]) -> anyhow::Result<Vec<String>> {
    let graph: serde_json::Value =
        serde_json::from_slice(unit_graph_json).context("unit graph is not JSON")?;
    let units = graph["units"]
        .as_array()
        .context("unit graph without units")?;
    let is_host_only = |unit: &serde_json::Value| {
        unit["target"]["kind"].as_array().is_some_and(|kinds| {
            kinds
                .iter()
                .any(|k| k == "proc-macro" || k == "custom-build")
        })
    };
    let start = units
        .iter()
        .position(|u| {
            u["pkg_id"]
                .as_str()
                .is_some_and(|id| id.contains("accord-core"))
                && !is_host_only(u)
        })
        .context("accord-core not in the unit graph")?;
    let mut seen = vec![false; units.len()];
    let mut stack = vec![start];
    let mut offenders = Vec::new();
    while let Some(index) = stack.pop() {
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        let unit = &units[index];
        if unit["features"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "std"))
        {
            offenders.push(unit["pkg_id"].as_str().unwrap_or("?").to_string());
        }
        for dep in unit["dependencies"].as_array().into_iter().flatten() {
            if let Some(next) = dep["index"].as_u64().and_then(|i| usize::try_from(i).ok())
                && units.get(next).is_some_and(|u| !is_host_only(u))
            {
                stack.push(next);
            }
        }
    }
    Ok(offenders)
}

/// Every `.rs` file under a crate's `src/` starts with `//!` module docs.
pub fn every_module_has_docs() -> anyhow::Result<()> {
    let root = workspace_root();
    let mut missing = Vec::new();
    for krate in [
        "core",
        "guest",
        "host-shim",
        "host-shim/collateral",
        "cli",
        "cli/demo",
        "tests",
        "xtask",
    ] {
        visit(&root.join(krate).join("src"), &mut |path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let first_code_line = text.lines().find(|line| !line.trim().is_empty());
            if !first_code_line.is_some_and(|line| line.starts_with("//!")) {
                missing.push(
                    path.strip_prefix(&root)
                        .unwrap_or(path)
                        .display()
                        .to_string(),
                );
            }
            Ok(())
        })?;
    }
    if !missing.is_empty() {
        bail!("modules without //! docs:\n{}", missing.join("\n"));
    }
    Ok(())
}

fn visit(dir: &Path, each: &mut dyn FnMut(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            visit(&path, each)?;
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            each(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn core_builds_without_std() {
        super::core_builds_without_std().unwrap();
    }

    #[test]
    fn std_detection_sees_std_when_it_is_on() {
        // Positive control: with default features core *does* enable std, so
        // the same walk must report it (otherwise the check proves nothing).
        let output = std::process::Command::new("cargo")
            .args([
                "+nightly",
                "build",
                "-p",
                "accord-core",
                "--unit-graph",
                "-Z",
                "unstable-options",
            ])
            .current_dir(crate::workspace_root())
            .output()
            .unwrap();
        let offenders = super::std_units(&output.stdout).unwrap();
        assert!(
            offenders.iter().any(|id| id.contains("serde")),
            "{offenders:?}"
        );
    }

    #[test]
    fn every_module_has_docs() {
        super::every_module_has_docs().unwrap();
    }
}
