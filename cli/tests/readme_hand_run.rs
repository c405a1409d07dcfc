//! README.md's "A deployment by hand", run as written: its shell block is
//! read from README.md (so the README cannot rot), and its `accord
//! generate` and `accord keys` lines run with the real `accord` binary in
//! an empty temporary directory, in order. The block's `accord-guest
//! reference-values` line is stood in for by a reference-values file
//! (`accord-guest` is another package's binary); the `$(awk …)` commands
//! that pick the policy hashes out of `accord generate`'s output run with
//! `sh` on that output.
//!
//! Checked: `--example` writes the example into the empty directory and
//! refuses a second time, naming the files; `accord generate` writes the
//! init-data annotation into every pod, `manifest.json` and `policies/`,
//! prints one line per pod; the awk commands find the coordinator's and
//! web's hashes; a second run changes no byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

mod common;
use common::{fails, ok, sha256_hex, stdout};

/// The hand-run's shell block, continuation lines joined.
fn hand_run_lines() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let section = readme
        .split_once("### A deployment by hand\n")
        .expect("README.md has the section \"A deployment by hand\"")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("the section has a ```sh block")
        .0;
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head.trim_end());
                current.push(' ');
            }
            None => {
                current.push_str(line.trim());
                lines.push(std::mem::take(&mut current).trim().to_string());
            }
        }
    }
    lines
}

/// A command line of the block: `accord ARGS [> FILE]`, ARGS split on
/// whitespace (the test refuses quoting or expansions in what it runs,
/// so that what it runs is what the README says).
struct AccordLine {
    text: String,
    args: Vec<String>,
    stdout_to: Option<String>,
}

fn accord_lines(lines: &[String]) -> Vec<AccordLine> {
    let mut out = Vec::new();
    for line in lines {
        for command in line.split("; ") {
            let command = command.trim();
            let Some(rest) = command.strip_prefix("accord ") else {
                continue;
            };
            let (args, stdout_to) = match rest.split_once(" > ") {
                Some((args, file)) => (args, Some(file.trim().to_string())),
                None => (rest, None),
            };
            assert!(
                !args.contains(['"', '\'', '$', '`', '|', '&', '*']),
                "the test runs README lines without a shell: {command}"
            );
            out.push(AccordLine {
                text: command.to_string(),
                args: args.split_whitespace().map(String::from).collect(),
                stdout_to,
            });
        }
    }
    out
}

fn accord(dir: &Path, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .current_dir(dir)
        // No registry, no user cache: the block is offline.
        .env("XDG_CACHE_HOME", dir.join(".no-cache"))
        .args(args)
        .output()
        .unwrap()
}

/// The `$(awk …)` commands of the block.
fn awk_commands(lines: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for line in lines {
        let mut rest = line.as_str();
        while let Some((_, after)) = rest.split_once("\"$(") {
            let (command, tail) = after.split_once(")\"").expect("a closed $(…)");
            if command.starts_with("awk ") {
                found.push(command.to_string());
            }
            rest = tail;
        }
    }
    found
}

/// Every file under `dir` (relative path, bytes), sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The decompressed init-data of the pod template in `yaml`.
fn init_data(yaml: &str) -> Vec<u8> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    let value = doc["spec"]["template"]["metadata"]["annotations"]
        ["io.katacontainers.config.hypervisor.cc_init_data"]
        .as_str()
        .expect("the init-data annotation");
    let gz = Base64::decode_vec(value).unwrap();
    let mut toml = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut toml).unwrap();
    toml
}

#[test]
fn the_readme_hand_run_goes_through_accord_generate_from_an_empty_directory() {
    let lines = hand_run_lines();
    let commands = accord_lines(&lines);
    let texts: Vec<&str> = commands.iter().map(|c| c.text.as_str()).collect();
    assert!(
        lines.iter().any(
            |l| l.starts_with("accord-guest reference-values") && l.ends_with("> refvals.json")
        ),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("deployment.yaml") || l.contains("coordinator-policy.toml")),
        "the hand-run names files a newcomer does not have: {lines:#?}"
    );
    let generate: Vec<&AccordLine> = commands
        .iter()
        .filter(|c| c.args.first().map(String::as_str) == Some("generate"))
        .collect();
    assert_eq!(generate.len(), 2, "{texts:#?}");
    assert_eq!(generate[0].args, ["generate", "--example", "."]);

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    // Reference values in the manifest's format (the README's come from
    // the simulated chip; what generate does with them is the same).
    let refvals = json!({"snp": [{
        "ProductName": "Milan",
        "TrustedMeasurement": "05c5".repeat(24),
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
    }]});

    let mut generated = None;
    for command in &commands {
        match command.args.first().map(String::as_str) {
            Some("generate" | "keys") => {}
            _ => continue,
        }
        if command.args[..] == ["generate", "--example", "."] {
            assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "not empty");
        }
        let output = accord(dir, &command.args);
        let printed = ok(&output);
        if let Some(file) = &command.stdout_to {
            std::fs::write(dir.join(file), &printed).unwrap();
        }
        if command.args[..] == ["generate", "--example", "."] {
            for file in [
                "coordinator.yaml",
                "web.yaml",
                "db.yaml",
                "image-facts.json",
            ] {
                assert!(dir.join(file).is_file(), "{file}");
            }
            // The reference values the next README line writes.
            std::fs::write(dir.join("refvals.json"), refvals.to_string()).unwrap();
            // A second --example refuses, naming the files, and keeps them.
            let before = snapshot(dir);
            fails(
                &accord(dir, &command.args),
                1,
                &["web.yaml", "image-facts.json", "nothing written"],
            );
            assert_eq!(snapshot(dir), before);
        }
        if std::ptr::eq(command, generate[1]) {
            generated = Some((command, printed));
        }
    }
    let (command, printed) = generated.expect("the README's accord generate ran");

    // One line per pod: hash, role, SANs; the manifest pins exactly those.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let policies = manifest["Policies"].as_object().unwrap();
    assert_eq!(policies.len(), 3, "{manifest}");
    assert_eq!(printed.lines().count(), 3, "{printed}");
    for line in printed.lines() {
        let hash = line.split_whitespace().next().unwrap();
        assert!(policies.contains_key(hash), "{line}");
    }
    // Every pod carries its generated init-data; its SHA-256 is in the
    // manifest and the document is in policies/.
    for (name, role) in [("coordinator", "coordinator"), ("web", ""), ("db", "")] {
        let toml = init_data(&std::fs::read_to_string(dir.join(format!("{name}.yaml"))).unwrap());
        let hash = sha256_hex(&toml);
        assert_eq!(
            policies[&hash]
                .get("Role")
                .and_then(Value::as_str)
                .unwrap_or(""),
            role,
            "{name}"
        );
        assert_eq!(
            std::fs::read(dir.join(format!("policies/{hash}.toml"))).unwrap(),
            toml
        );
        assert!(String::from_utf8(toml).unwrap().contains("\"policy.rego\""));
    }
    assert_eq!(
        manifest["WorkloadOwnerPubKeys"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        manifest["SeedshareOwnerPubKeys"].as_array().unwrap().len(),
        1
    );

    // The README's awk commands pick the coordinator's and web's hashes.
    let awk = awk_commands(&lines);
    assert!(!awk.is_empty(), "{lines:#?}");
    for script in awk {
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(dir)
            .output()
            .unwrap();
        let hash = stdout(&out).trim().to_string();
        assert!(policies.contains_key(&hash), "{script} printed {hash:?}");
        let role = policies[&hash].get("Role").and_then(Value::as_str);
        assert_eq!(
            role == Some("coordinator"),
            script.contains("coordinator"),
            "{script}"
        );
    }

    // Idempotent: the same command again changes no byte.
    let before = snapshot(dir);
    let again = ok(&accord(dir, &command.args));
    std::fs::write(dir.join(command.stdout_to.as_deref().unwrap()), &again).unwrap();
    assert_eq!(again, printed);
    assert_eq!(snapshot(dir), before);
}
