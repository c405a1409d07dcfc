//! The released `accord` links what the user needs and nothing of the
//! demo: no host shim (`accord-shim`), no Kubernetes client (`kube`,
//! `k8s-openapi`), not the demo crate (`accord-demo`) and not the INSECURE
//! simulated vendor (`accord-simulated-vendor`). The demo, its
//! replica processes and the load benchmarks are `accord-demo`
//! (`cli/demo/`). Asked of cargo itself: `cargo tree -p accord-cli -e
//! normal` lists the normal (not dev, not build) dependency graph of the
//! package, which is what the `accord` binary links.

use std::collections::BTreeSet;
use std::process::Command;

/// The package names in `accord`'s normal dependency graph.
fn normal_dependencies() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "tree",
            "-p",
            "accord-cli",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--locked",
            "--offline",
        ])
        .output()
        .expect("running cargo tree");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        // "name vX.Y.Z (path)" or "name vX.Y.Z (*)": the name is the first word.
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn accord_links_no_kubernetes_client_no_shim_and_no_demo() {
    let deps = normal_dependencies();
    // The graph was really read: the crates `accord` does need are there.
    for needed in ["accord-cli", "accord-core", "accord-guest", "clap"] {
        assert!(deps.contains(needed), "{needed} missing from {deps:?}");
    }
    for banned in [
        "kube",
        "kube-client",
        "kube-core",
        "k8s-openapi",
        "accord-shim",
        "accord-demo",
        "accord-simulated-vendor",
    ] {
        assert!(
            !deps.contains(banned),
            "`accord` links {banned} (cargo tree -p accord-cli -e normal)"
        );
    }
}
