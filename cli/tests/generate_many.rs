//! `accord generate` on a 100-pod set (`common/pod_set.rs`, the same
//! set `benches/generate.rs` times): every kind, several containers, the
//! environment from ConfigMaps and Secrets, offline image facts. A second
//! run on its own output changes no byte; unpinned images and missing
//! ConfigMaps are refused, each naming its resource and its container or
//! volume, and nothing is written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Output;

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

mod common;
use common::generated::{accord_in as accord, docs, template};
use common::pod_set::{self, PodSet};
use common::{fails, ok, sha256_hex};

const PODS: usize = 100;

/// A directory with the set under `deploy/`, its image facts and
/// reference values, and a seed-share owner key.
fn setup(set: &PodSet) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    set.write(&d.join("deploy"));
    std::fs::write(d.join("facts.json"), pod_set::facts().to_string()).unwrap();
    let refvals = json!({"snp": [{
        "ProductName": "Milan",
        "TrustedMeasurement": "05c5".repeat(24),
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
    }]});
    std::fs::write(d.join("refvals.json"), refvals.to_string()).unwrap();
    ok(&accord(d, &["keys", "new", "--seedshare-owner"]));
    dir
}

fn generate(d: &Path) -> Output {
    let init = pod_set::initializer_image();
    accord(
        d,
        &[
            "generate",
            "--reference-values",
            "refvals.json",
            "--image-facts",
            "facts.json",
            "--initializer-image",
            &init,
            "--add-seedshare-owner-key",
            "seedshare-owner.pem",
            "deploy",
        ],
    )
}

/// Every file of the set and the manifest, with its bytes.
fn snapshot(d: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(d.join("deploy")).unwrap() {
        let p = e.unwrap().path();
        out.insert(
            p.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read(&p).unwrap(),
        );
    }
    if let Ok(m) = std::fs::read(d.join("manifest.json")) {
        out.insert("manifest.json".into(), m);
    }
    out
}

#[test]
fn a_hundred_pods_generate_and_a_second_run_changes_no_byte() {
    let set = pod_set::pod_set(PODS);
    let dir = setup(&set);
    let d = dir.path();
    let first_out = ok(&generate(d));
    let first = snapshot(d);

    // One line per pod template, one policy each, the coordinator first.
    let lines: Vec<&str> = first_out.lines().collect();
    assert_eq!(lines.len(), PODS, "{first_out}");
    assert!(lines[0].contains("  coordinator  "), "{}", lines[0]);
    let manifest: Value = serde_json::from_slice(&first["manifest.json"]).unwrap();
    let policies = manifest["Policies"].as_object().unwrap();
    assert_eq!(policies.len(), PODS);

    // Every pod template was rewritten and carries the policy the
    // manifest names; every kind and container count is in the set.
    let mut kinds = BTreeSet::new();
    let mut container_counts = BTreeSet::new();
    let mut templates = 0;
    for (name, bytes) in &first {
        if !name.starts_with("workloads-") && name != "coordinator.yaml" {
            continue;
        }
        for doc in docs(std::str::from_utf8(bytes).unwrap()) {
            let t = template(&doc);
            let object = doc["metadata"]["name"].as_str().unwrap();
            assert_eq!(t["spec"]["runtimeClassName"], "kata-qemu-snp", "{object}");
            let annotation =
                t["metadata"]["annotations"]["io.katacontainers.config.hypervisor.cc_init_data"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{object}: no init-data"));
            let mut toml = String::new();
            flate2::read::GzDecoder::new(Base64::decode_vec(annotation).unwrap().as_slice())
                .read_to_string(&mut toml)
                .unwrap();
            let hash = sha256_hex(toml.as_bytes());
            let entry = &policies[&hash];
            assert!(
                entry["SANs"][0] == object,
                "{object}: the manifest's entry for {hash} is {entry}"
            );
            kinds.insert(doc["kind"].as_str().unwrap().to_string());
            container_counts.insert(t["spec"]["containers"].as_sequence().unwrap().len());
            templates += 1;
        }
    }
    assert_eq!(templates, PODS);
    assert_eq!(kinds.len(), pod_set::KINDS.len(), "{kinds:?}");
    assert_eq!(container_counts, BTreeSet::from([1, 2, 3]));

    // The second run, on its own output: no byte changed, same summary.
    let second_out = ok(&generate(d));
    let second = snapshot(d);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &first {
        assert!(
            *bytes == second[name],
            "{name} changed on the second run:\n{}\n---- was ----\n{}",
            String::from_utf8_lossy(&second[name]),
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(first_out, second_out);
}

#[test]
fn refusals_in_a_hundred_pods_name_each_resource_and_write_nothing() {
    let mut set = pod_set::pod_set(PODS);
    // An image by tag only, in the second container of one workload.
    let tagged = 41;
    let kind = pod_set::workload_kind(tagged);
    let name = pod_set::workload_name(tagged);
    let ns = pod_set::workload_namespace(tagged);
    let doc = set.doc_mut(&name);
    let parsed = docs(doc).remove(0);
    let sidecar = &template(&parsed)["spec"]["containers"][1];
    assert_eq!(sidecar["name"], "sidecar");
    let pinned = sidecar["image"].as_str().unwrap().to_string();
    let (by_tag, _) = pinned.rsplit_once('@').unwrap();
    let by_tag = by_tag.to_string();
    assert_eq!(doc.matches(&pinned).count(), 1, "{doc}");
    *doc = doc.replace(&pinned, &by_tag);
    // A workload's own ConfigMap, mounted as a volume, is missing.
    let mounted = 35;
    assert!(pod_set::has_files_config_map(mounted));
    let mounted_name = pod_set::workload_name(mounted);
    set.remove(&format!("{mounted_name}-files"));
    // The ConfigMap "settings" of namespace "ops" is missing: every
    // container reading it in that namespace is named.
    let ops_settings = set
        .files
        .iter_mut()
        .flat_map(|f| f.docs.iter_mut())
        .find(|d| {
            d.contains("kind: ConfigMap")
                && d.contains("namespace: ops\n")
                && d.contains("name: settings\n")
        })
        .unwrap();
    *ops_settings = ops_settings.replace("name: settings\n", "name: settings-renamed\n");

    let dir = setup(&set);
    let d = dir.path();
    let before = snapshot(d);
    let out = generate(d);
    let mut expected = vec![
        format!("{kind} {ns}/{name}, container sidecar: image {by_tag} is not pinned by digest"),
        format!(
            "{} {}/{mounted_name}, volume files: ConfigMap {}/{mounted_name}-files is not among the inputs",
            pod_set::workload_kind(mounted),
            pod_set::workload_namespace(mounted),
            pod_set::workload_namespace(mounted),
        ),
    ];
    let mut problems = 2;
    for i in (1..PODS).filter(|&i| pod_set::workload_namespace(i) == "ops") {
        let at = format!(
            "{} ops/{}",
            pod_set::workload_kind(i),
            pod_set::workload_name(i)
        );
        // "main" reads it by key and by envFrom, "sidecar" by envFrom.
        for (container, present) in [
            ("main", true),
            ("sidecar", pod_set::container_count(i) >= 2),
        ] {
            if present {
                expected.push(format!(
                    "{at}, container {container}: ConfigMap ops/settings is not among the inputs"
                ));
                problems += if container == "main" { 2 } else { 1 };
            }
        }
    }
    expected.push(format!(
        "{problems} problem(s) in the resources (nothing written)"
    ));
    let needles: Vec<&str> = expected.iter().map(String::as_str).collect();
    fails(&out, 1, &needles);
    assert_eq!(snapshot(d), before, "a refused run wrote something");
    assert!(!d.join("manifest.json").exists());
}
