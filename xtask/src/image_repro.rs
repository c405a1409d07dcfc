//! `cargo xtask image --check-reproducible`: builds the guest image here
//! and again from a copy of the sources at another path, and fails unless
//! both print the same agent and initramfs SHA-256.
//!
//! The copy holds the files git tracks plus the untracked ones it does not
//! ignore (the working tree as it is), in a fresh temporary directory with
//! its own, cold target directory; it runs its own `cargo xtask image`. So
//! the check covers what a second checkout would do: the path remapping of
//! the agent build, the C flags, and the initramfs writer. It takes a cold
//! build (about 3.5 min on two cores) and is not part of `.ci/run`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::workspace_root;

/// The `agent` and `initramfs` lines of `cargo xtask image`: name → hash.
fn hashes(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let hash = words.next()?;
            (matches!(name, "agent" | "initramfs" | "kernel" | "cmdline") && hash.len() == 64)
                .then(|| (name.to_string(), hash.to_string()))
        })
        .collect()
}

/// Runs `cargo xtask image` in `root`; returns its hashes.
fn build_in(root: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("$ cd {} && cargo xtask image", root.display());
    let output = Command::new(cargo)
        .args(["run", "-q", "-p", "xtask", "--", "image"])
        .current_dir(root)
        .env_remove("CARGO_TARGET_DIR")
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo xtask image")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        bail!("`cargo xtask image` in {} failed", root.display());
    }
    let found = hashes(&stdout);
    if !found.contains_key("agent") || !found.contains_key("initramfs") {
        bail!(
            "`cargo xtask image` in {} printed no agent or initramfs hash",
            root.display()
        );
    }
    Ok(found)
}

/// Copies the working tree's files (tracked, and untracked but not
/// ignored) from `from` to `to`.
fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<usize> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(from)
        .output()
        .context("running git ls-files (the check needs a git checkout)")?;
    if !listed.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
    }
    let mut copied = 0;
    for name in listed.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).context("a file name that is not UTF-8")?;
        let source = from.join(name);
        // Deleted in the working tree but still tracked: not part of it.
        if !source.exists() {
            continue;
        }
        let target = to.join(name);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&source, &target).with_context(|| format!("copying {}", source.display()))?;
        copied += 1;
    }
    Ok(copied)
}

/// The whole check.
pub fn run() -> anyhow::Result<()> {
    let here = workspace_root();
    let ours = build_in(&here)?;
    let scratch: PathBuf =
        std::env::temp_dir().join(format!("accord-image-repro-{}", std::process::id()));
    let copy = scratch.join("elsewhere");
    let _ = std::fs::remove_dir_all(&scratch);
    let files = copy_sources(&here, &copy)?;
    eprintln!("copied {files} files to {}", copy.display());
    let theirs = build_in(&copy)?;
    let mut differ = Vec::new();
    for (name, hash) in &ours {
        let other = theirs.get(name).map_or("(missing)", String::as_str);
        println!("{name:<10} {hash}  {other}");
        if other != hash {
            differ.push(name.as_str());
        }
    }
    if !differ.is_empty() {
        bail!(
            "not reproducible: {} differ between {} and {} (the copy is kept for inspection)",
            differ.join(", "),
            here.display(),
            copy.display()
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "reproducible: {} and {} give the same agent, kernel, initramfs and command line",
        here.display(),
        copy.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::hashes;

    #[test]
    fn the_hash_lines_are_read() {
        let h = "a".repeat(64);
        let text = format!(
            "agent      {h}  /x/accord-guest (1 bytes)\ninitramfs  {h}  /x/i (2 bytes)\nnoise {h}\nkernel short\ntest-agent {}  /x/test (3 bytes)\n",
            "b".repeat(64)
        );
        let found = hashes(&text);
        assert_eq!(found.len(), 2);
        assert_eq!(found["agent"], h);
        assert_eq!(found["initramfs"], h);
        // The QEMU test image's lines are not the production image's.
        assert!(!found.contains_key("test-agent"));
    }
}
