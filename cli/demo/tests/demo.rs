//! `accord-demo demo` end to end, as the README runs it: in one process
//! (on the simulated SEV-SNP chip, and with `--tee insecure-simulated-tdx`
//! on the simulated TDX), and on three replica processes (`--replicas 3`)
//! with peer recovery;
//! `accord-demo --help` says what the binary is for.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_accord-demo");

fn accord_demo(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn help_explains_the_demo_binary() {
    let output = accord_demo(&["--help"]);
    assert_exit(&output, 0);
    let overview = text(&output.stdout);
    for needle in ["INSECURE", "simulated", "demo", "bench", "`accord`"] {
        assert!(
            overview.contains(needle),
            "{needle:?} missing from:\n{overview}"
        );
    }
    // The replica process is started by the demo, not by people.
    assert!(!overview.contains("demo-replica"), "{overview}");
    let demo = accord_demo(&["demo", "--help"]);
    assert_exit(&demo, 0);
    let demo = text(&demo.stdout);
    for flag in ["--replicas", "--workspace", "--tee"] {
        assert!(demo.contains(flag), "{flag} missing from:\n{demo}");
    }
    let bench = accord_demo(&["bench", "--help"]);
    assert_exit(&bench, 0);
    let bench = text(&bench.stdout);
    for command in ["attest", "floor"] {
        assert!(bench.contains(command), "{command} missing from:\n{bench}");
    }
}

#[test]
fn the_demo_works_and_leaves_the_documented_files() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let demo = accord_demo(&["demo", "--workspace", dir.to_str().unwrap()]);
    assert_exit(&demo, 0);
    let out = text(&demo.stdout);
    assert!(out.contains("every step worked"), "{out}");
    assert!(out.contains("INSECURE SIMULATION"), "{out}");
    assert!(!out.contains('✘'), "{out}");
    assert!(
        out.contains("simulated vendor (INSECURE SIMULATION): KDS http://127.0.0.1:"),
        "{out}"
    );
    for file in [
        "manifest.json",
        "seed-shares.json",
        "coordinator-root-ca.pem",
        "mesh-ca.pem",
        "keys/workload-owner.pem",
        "resources/web.yaml",
        "resources/db.yaml",
        "resources/coordinator.yaml",
        "reference-values.json",
        "workloads/web/tls-config/certChain.pem",
        "workloads/web/tls-config/key.pem",
        "workloads/db/tls-config/mesh-ca.pem",
        "workloads/db/secrets/workload-secret-seed",
        "verify/last-tree-head.json",
        "verify/manifests/manifest-1.json",
        // The CLI's commands went through the fetch path at the simulated
        // vendor and remember the newest collateral they saw.
        "collateral/freshness-marks",
        "auditor/collateral/freshness-marks",
    ] {
        assert!(dir.join(file).is_file(), "{file}\n{out}");
    }
    generated_policies_are_what_the_manifest_pins(&dir);
    let crls: Vec<_> = std::fs::read_dir(dir.join("collateral/cache/kds/crl/vcek"))
        .expect("the vendor's CRL was fetched into the workspace's cache")
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".der"))
        .collect();
    assert_eq!(crls.len(), 1, "{crls:?}");
    // A second run refuses the used workspace.
    let again = accord_demo(&["demo", "--workspace", dir.to_str().unwrap()]);
    assert_exit(&again, 2);
}

/// The demo's policies are `accord generate`'s: every pod in
/// `resources/` has a generated init-data annotation (a Kata agent policy
/// with accord's keys, not an allow-all one), the runtime class was
/// rewritten, `web` and `db` got the initializer, and the manifest's
/// policies are exactly the hashes of those init-data documents (what the
/// simulated TEEs reported, or the initializers would have got no
/// certificate), each stored in `policies/`.
fn generated_policies_are_what_the_manifest_pins(dir: &std::path::Path) {
    use accord_cli::initdata;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let pinned: std::collections::BTreeSet<String> = manifest["Policies"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut generated = std::collections::BTreeSet::new();
    for (name, role) in [("coordinator", "coordinator"), ("web", ""), ("db", "")] {
        let path = dir.join(format!("resources/{name}.yaml"));
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let template = &yaml["spec"]["template"];
        assert_eq!(
            template["spec"]["runtimeClassName"].as_str(),
            Some("kata-qemu-snp"),
            "{name}"
        );
        let annotation = template["metadata"]["annotations"][initdata::ANNOTATION]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no init-data annotation"));
        let toml = initdata::decode_annotation(annotation).unwrap();
        let text = String::from_utf8(toml.clone()).unwrap();
        assert!(text.contains("\"policy.rego\""), "{name}");
        assert!(text.contains(&format!("name = \"{name}\"")), "{name}");
        assert!(
            !text.contains("default CreateContainerRequest := true"),
            "{name}"
        );
        let hash: String = initdata::policy_hash(&toml)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            manifest["Policies"][&hash]["Role"].as_str().unwrap_or(""),
            role,
            "{name}"
        );
        assert_eq!(
            std::fs::read(dir.join(format!("policies/{hash}.toml"))).unwrap(),
            toml,
            "{name}"
        );
        let init = template["spec"]["initContainers"][0]["name"].as_str();
        assert_eq!(
            init == Some("accord-initializer"),
            role.is_empty(),
            "{name}: the initializer in workloads only"
        );
        generated.insert(hash);
    }
    assert_eq!(generated, pinned);
    // The image facts say the images are synthetic.
    let facts = std::fs::read_to_string(dir.join("image-facts.json")).unwrap();
    assert!(facts.contains("synthetic demo image"), "{facts}");
}

#[test]
fn the_demo_runs_on_the_simulated_tdx() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let demo = accord_demo(&[
        "demo",
        "--tee",
        "insecure-simulated-tdx",
        "--workspace",
        dir.to_str().unwrap(),
    ]);
    assert_exit(&demo, 0);
    let out = text(&demo.stdout);
    assert!(out.contains("every step worked"), "{out}");
    assert!(
        out.contains("start the coordinator (INSECURE simulated TDX)"),
        "{out}"
    );
    assert!(
        out.contains("simulated vendor (INSECURE SIMULATION): KDS http://127.0.0.1:"),
        "{out}"
    );
    assert!(!out.contains('✘'), "{out}");
    // The CLI was told the manifest trusts the simulated TDX root.
    let err = text(&demo.stderr);
    assert!(err.contains("INSECURE simulated TDX root"), "{err}");
    // The manifest trusts only the simulated TDX, by its root.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let reference = &manifest["ReferenceValues"];
    assert!(reference.get("snp").is_none(), "{reference}");
    assert!(
        reference["tdx"][0]["InsecureTrustedRoot"]["RootCA"].is_string(),
        "{reference}"
    );
    for file in [
        "coordinator/tdx/root.pem",
        "workloads/web/tls-config/certChain.pem",
        "workloads/db/tls-config/certChain.pem",
    ] {
        assert!(dir.join(file).is_file(), "{file}\n{out}");
    }
    // Not with replicas (they run on the simulated SEV-SNP chip).
    let replicas = accord_demo(&["demo", "--tee", "insecure-simulated-tdx", "--replicas", "2"]);
    assert_exit(&replicas, 2);
}

#[test]
fn the_demo_on_three_replicas_shows_peer_recovery() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let demo = accord_demo(&[
        "demo",
        "--replicas",
        "3",
        "--workspace",
        dir.to_str().unwrap(),
    ]);
    let out = text(&demo.stdout);
    assert_exit(&demo, 0);
    assert!(out.contains("every step worked"), "{out}");
    assert!(!out.contains('✘'), "{out}");
    for line in [
        "3 replicas at transition",
        "replica 1 killed; its readiness probe fails",
        "replica 1 was Ready",
        "certificates issued by the other replicas meanwhile",
    ] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    // The replicas shared one store and logged to the workspace.
    assert!(dir.join("store/transitions/latest").is_file());
    for i in 0..3 {
        let log = std::fs::read_to_string(dir.join(format!("replica-{i}.log"))).unwrap();
        assert!(log.contains("state"), "replica {i}: {log}");
    }
    let recovered = std::fs::read_to_string(dir.join("replica-1.log")).unwrap();
    assert!(recovered.contains("recovered from peer"), "{recovered}");
    // Zero replicas is a usage error.
    assert_exit(&accord_demo(&["demo", "--replicas", "0"]), 2);
}
