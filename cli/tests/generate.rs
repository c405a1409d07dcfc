//! `accord generate` end to end: the real binary on plain Kubernetes YAML
//! in a temporary directory. Image facts come from `--image-facts` files,
//! or, in `the_registry_path_…`, from an in-test HTTP server on
//! 127.0.0.1 that speaks the OCI distribution API's real wire format
//! (`GET /v2/`, `HEAD`/`GET /v2/<name>/manifests/<reference>` with
//! `Docker-Content-Digest` and the manifest media type, `GET
//! /v2/<name>/blobs/<digest>`), so no registry package is needed.
//!
//! The policy itself is the policy module's business (its own tests);
//! here the init-data is checked for what `accord generate` puts around
//! it: the hash in the manifest is the SHA-256 of the decompressed TOML
//! in the annotation, and the TOML carries `policy.rego` and accord's
//! keys.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

mod common;
use common::generated::{Yaml, accord_in as accord, docs, init_data, template};
use common::{fails, ok, sha256_hex, stderr};

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, contents).unwrap();
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn app(n: u8) -> String {
    format!("registry.example/app{n}@{}", digest(n))
}

fn init_image() -> String {
    format!("registry.example/accord-guest@{}", digest(0xee))
}

/// Facts for app1..app9, the initializer, and an image by tag
/// (`accord-shim`, with the digest `--pin-images` writes).
fn facts() -> Value {
    let mut map = serde_json::Map::new();
    for n in 1..=9u8 {
        map.insert(
            app(n),
            json!({"Entrypoint": ["/bin/app"], "Cmd": [format!("--n={n}")], "Env": ["PATH=/bin"],
                   "User": "1000", "WorkingDir": "/", "Layers": [digest(0x40 + n)]}),
        );
    }
    map.insert(init_image(), json!({"Entrypoint": ["/accord-guest"]}));
    map.insert(
        "accord-shim".into(),
        json!({"Digest": digest(0xa2), "Entrypoint": ["/accord-shim"]}),
    );
    Value::Object(map)
}

fn snp_reference_values() -> Value {
    json!({"snp": [{
        "ProductName": "Milan",
        "TrustedMeasurement": "05c5".repeat(24),
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
    }]})
}

const COORDINATOR: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: coordinator
spec:
  template:
    metadata:
      annotations:
        accord.dev/pod-role: coordinator
    spec:
      runtimeClassName: accord-cc
      containers:
      - name: agent
        image: @APP9@
";

/// One object of every pod-bearing kind, a ConfigMap, and a Deployment
/// under another runtime class (left alone).
fn workloads_yaml() -> String {
    let template = |n: u8, extra: &str| {
        format!(
            "    metadata:\n      labels: {{app: w{n}}}\n    spec:\n      runtimeClassName: accord-cc\n{extra}      containers:\n      - name: app\n        image: {}\n        envFrom:\n        - configMapRef: {{name: settings}}\n",
            app(n)
        )
    };
    let indent = |text: String, by: usize| -> String {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(by)))
            .collect()
    };
    let mut out = String::new();
    out.push_str(&format!(
        "# the pod\napiVersion: v1\nkind: Pod\nmetadata:\n  name: pod\n  namespace: shop\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - name: app\n    image: {}\n---\n",
        app(1)
    ));
    for (n, kind, api) in [
        (2u8, "Deployment", "apps/v1"),
        (3, "StatefulSet", "apps/v1"),
        (4, "DaemonSet", "apps/v1"),
        (5, "ReplicaSet", "apps/v1"),
        (6, "Job", "batch/v1"),
    ] {
        out.push_str(&format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: w{n}\nspec:\n  template:\n{}---\n",
            template(n, "")
        ));
    }
    out.push_str(&format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: w7\nspec:\n  schedule: \"* * * * *\"\n  jobTemplate:\n    spec:\n      template:\n{}---\n",
        indent(template(7, "      initContainers:\n      - name: prep\n        image: IMG8\n").replace("IMG8", &app(8)), 4)
    ));
    out.push_str(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  MODE: fast\n---\n",
    );
    out.push_str(&format!(
        "# not ours\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: other\nspec:\n  template:\n    spec:\n      runtimeClassName: kata-other\n      containers:\n      - name: app\n        image: {}   # comment kept\n",
        app(1)
    ));
    out
}

/// A directory with the inputs, facts, reference values and a
/// seed-share owner key.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "deploy/coordinator.yaml",
        COORDINATOR.replace("@APP9@", &app(9)),
    );
    write(d, "deploy/workloads.yaml", workloads_yaml());
    write(d, "facts.json", facts().to_string());
    write(d, "refvals.json", snp_reference_values().to_string());
    ok(&accord(d, &["keys", "new", "--seedshare-owner"]));
    ok(&accord(d, &["keys", "new", "--workload-owner"]));
    dir
}

fn base_args(init: &str) -> Vec<String> {
    [
        "generate",
        "--reference-values",
        "refvals.json",
        "--image-facts",
        "facts.json",
        "--initializer-image",
        init,
        "--add-seedshare-owner-key",
        "seedshare-owner.pem",
        "--add-workload-owner-key",
        "workload-owner.pem",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(d: &Path, extra: &[&str]) -> Output {
    let init = init_image();
    let mut args = base_args(&init);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    accord(d, &refs)
}

fn manifest(d: &Path) -> Value {
    serde_json::from_str(&read(d, "manifest.json")).unwrap()
}

fn names(list: &Yaml) -> Vec<String> {
    list.as_sequence()
        .map(|s| {
            s.iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn generate_rewrites_every_kind_injects_the_initializer_and_writes_the_manifest() {
    let dir = setup();
    let d = dir.path();
    let out = ok(&run(d, &["deploy"]));
    let m = manifest(d);
    let policies = m["Policies"].as_object().unwrap();
    assert_eq!(policies.len(), 8, "{m:#}");
    // One line per workload: hash, role, SANs; the coordinator first.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 8, "{out}");
    let first: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(first[1], "coordinator");
    let coordinator_hash = first[0].to_string();
    assert_eq!(policies[&coordinator_hash]["Role"], "coordinator");
    for line in &lines[1..] {
        let parts: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(parts[1], "workload", "{line}");
        assert!(policies.contains_key(parts[0]), "{line}");
        assert_eq!(
            parts[2],
            policies[parts[0]]["SANs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    // Keys and reference values.
    assert_eq!(m["ReferenceValues"], snp_reference_values());
    assert_eq!(m["SeedshareOwnerPubKeys"].as_array().unwrap().len(), 1);
    assert_eq!(m["WorkloadOwnerPubKeys"].as_array().unwrap().len(), 1);
    let seedshare = m["SeedshareOwnerPubKeys"][0].as_str().unwrap().to_string();
    let workload_owner = m["WorkloadOwnerPubKeys"][0].as_str().unwrap().to_string();

    // The coordinator: a policy and no initializer.
    let coord = &docs(&read(d, "deploy/coordinator.yaml"))[0];
    let t = template(coord);
    assert_eq!(t["spec"]["runtimeClassName"], "kata-qemu-snp");
    assert!(t["spec"].get("initContainers").is_none());
    let toml = init_data(t);
    assert_eq!(sha256_hex(toml.as_bytes()), coordinator_hash);
    assert!(toml.contains("\"policy.rego\" = "), "{toml}");
    assert!(
        toml.contains("pod-role = \\\"coordinator\\\"")
            || toml.contains("pod-role = \"coordinator\""),
        "{toml}"
    );

    let text = read(d, "deploy/workloads.yaml");
    let all = docs(&text);
    let kinds: Vec<&str> = all.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "Pod",
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "Job",
            "CronJob",
            "ConfigMap",
            "Deployment"
        ]
    );
    for (i, doc) in all.iter().enumerate().take(7) {
        let t = template(doc);
        let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = doc["metadata"]["name"].as_str().unwrap();
        assert_eq!(t["spec"]["runtimeClassName"], "kata-qemu-snp", "{name}");
        // The initializer comes first, pinned, pointed at the namespace's
        // coordinator and pinning it.
        let inits = &t["spec"]["initContainers"];
        let init = &inits[0];
        assert_eq!(init["name"], "accord-initializer");
        assert_eq!(init["image"].as_str().unwrap(), init_image());
        // Root without capabilities, not privileged, whatever the pod's
        // own security context says (the report interfaces are root's).
        let sc = &init["securityContext"];
        assert_eq!(sc["runAsUser"], 0, "{name}");
        assert_eq!(sc["runAsGroup"], 0, "{name}");
        assert_eq!(sc["runAsNonRoot"], false, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_yaml_ng::from_str::<Yaml>("[ALL]").unwrap(),
            "{name}"
        );
        assert!(sc.get("privileged").is_none(), "{name}");
        let args: Vec<&str> = init["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        // CAP_CHOWN only to give the files to the containers' user.
        if args.contains(&"--owner") {
            assert_eq!(
                sc["capabilities"]["add"],
                serde_yaml_ng::from_str::<Yaml>("[CHOWN]").unwrap(),
                "{name}"
            );
        } else {
            assert!(sc["capabilities"].get("add").is_none(), "{name}");
        }
        let after = |flag: &str| {
            args.iter()
                .position(|a| *a == flag)
                .map(|p| args[p + 1])
                .unwrap_or_else(|| panic!("{flag} not in {args:?}"))
        };
        assert_eq!(args[0], "initializer");
        assert_eq!(
            after("--coordinator"),
            format!("coordinator-ready.{ns}:7777")
        );
        assert_eq!(after("--out"), "/accord");
        assert_eq!(after("--coordinator-policy"), coordinator_hash);
        assert_eq!(after("--seedshare-owner"), seedshare);
        assert_eq!(after("--seedshare-threshold"), "1");
        assert_eq!(after("--workload-owner"), workload_owner);
        let rv: Value = serde_json::from_str(after("--coordinator-reference-values")).unwrap();
        assert_eq!(rv, snp_reference_values());
        // The shared volume, mounted everywhere.
        assert!(names(&t["spec"]["volumes"]).contains(&"accord-shared".to_string()));
        for list in ["initContainers", "containers"] {
            for c in t["spec"][list].as_sequence().unwrap_or(&vec![]) {
                let mounts = c["volumeMounts"].as_sequence().unwrap();
                assert!(
                    mounts
                        .iter()
                        .any(|m| m["name"] == "accord-shared" && m["mountPath"] == "/accord"),
                    "{name}/{}",
                    c["name"].as_str().unwrap()
                );
            }
        }
        if doc["kind"] == "CronJob" {
            assert_eq!(names(inits), ["accord-initializer", "prep"]);
        }
        // The annotation is the policy the manifest names.
        let toml = init_data(t);
        let hash = sha256_hex(toml.as_bytes());
        let entry = &policies[&hash];
        assert!(entry.get("Role").is_none(), "{i}: {entry}");
        let kind = doc["kind"].as_str().unwrap();
        let api = doc["apiVersion"].as_str().unwrap();
        assert_eq!(
            entry["WorkloadSecretID"],
            format!("{api}/{kind}/{ns}/{name}")
        );
        assert_eq!(
            entry["SANs"],
            json!([
                name,
                format!("{name}.{ns}"),
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}.svc.cluster.local")
            ])
        );
        assert!(
            toml.contains(&format!("name = \\\"{name}\\\""))
                || toml.contains(&format!("name = \"{name}\"")),
            "{toml}"
        );
    }
    // The other runtime class: untouched, comments and all.
    assert!(text.contains("# not ours\n"));
    assert!(text.contains("runtimeClassName: kata-other\n"));
    assert!(text.contains("   # comment kept\n"));
    assert!(text.starts_with("# the pod\n"));
    assert!(
        stderr(&run(d, &["deploy"]))
            .contains("runtime class \"kata-other\" is not accord-cc: left alone")
    );
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for name in [
        "manifest.json",
        "deploy/coordinator.yaml",
        "deploy/workloads.yaml",
    ] {
        out.push((PathBuf::from(name), read(dir, name)));
    }
    out
}

#[test]
fn a_second_run_on_its_own_output_changes_no_byte() {
    let dir = setup();
    let d = dir.path();
    let first_out = ok(&run(d, &["deploy"]));
    let first = snapshot(d);
    let second_out = ok(&run(d, &["deploy"]));
    for ((name, a), (_, b)) in snapshot(d).iter().zip(&first) {
        assert!(
            a == b,
            "{} changed on the second run:\n{a}\n---- was ----\n{b}",
            name.display()
        );
    }
    assert_eq!(first_out, second_out);
    // And with -o DIR: the output, fed back, reproduces itself.
    ok(&run(d, &["-o", "out1", "deploy"]));
    ok(&run(d, &["-o", "out2", "out1"]));
    for f in ["coordinator.yaml", "workloads.yaml"] {
        assert_eq!(
            read(d, &format!("out1/{f}")),
            read(d, &format!("out2/{f}")),
            "{f}"
        );
        assert_eq!(
            read(d, &format!("out1/{f}")),
            read(d, &format!("deploy/{f}")),
            "{f}"
        );
    }
}

#[test]
fn skip_annotations_and_the_mount_path_are_honoured() {
    let dir = setup();
    let d = dir.path();
    let pods = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: skipped\n  annotations:\n    accord.dev/skip-initializer: \"true\"\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - {{name: app, image: {a}}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: contrast\n  annotations:\n    contrast.edgeless.systems/skip-initializer: \"true\"\nspec:\n  runtimeClassName: contrast-cc\n  containers:\n  - {{name: app, image: {a}}}\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: moved\n  annotations:\n    accord.dev/mount-path: /etc/accord\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - {{name: app, image: {a}}}\n",
        a = app(1)
    );
    write(d, "deploy/workloads.yaml", pods);
    ok(&run(d, &["deploy"]));
    let all = docs(&read(d, "deploy/workloads.yaml"));
    assert!(all[0]["spec"].get("initContainers").is_none());
    assert!(all[1]["spec"].get("initContainers").is_none());
    assert_eq!(all[1]["spec"]["runtimeClassName"], "kata-qemu-snp");
    init_data(&all[1]);
    let moved = &all[2]["spec"];
    assert_eq!(
        moved["initContainers"][0]["volumeMounts"][0]["mountPath"],
        "/accord"
    );
    assert_eq!(
        moved["containers"][0]["volumeMounts"][0]["mountPath"],
        "/etc/accord"
    );

    // --skip-initializer: no initializer anywhere, no image needed for it;
    // and it removes the one an earlier run injected.
    let out = accord(
        d,
        &[
            "generate",
            "--image-facts",
            "facts.json",
            "--skip-initializer",
            "--runtime-class",
            "kata-qemu-snp",
            "deploy",
        ],
    );
    ok(&out);
    let all = docs(&read(d, "deploy/workloads.yaml"));
    assert_eq!(
        names(&all[2]["spec"]["initContainers"]),
        Vec::<String>::new()
    );
    assert!(names(&all[2]["spec"]["volumes"]).is_empty());
}

#[test]
fn the_policy_data_keys_are_sorted_whatever_serde_json_s_features() {
    // In the workspace's test build another crate turns on serde_json's
    // `preserve_order`; the released `accord` has it off. The policy's
    // bytes (the pod's identity) must not depend on it.
    let dir = setup();
    let d = dir.path();
    ok(&run(d, &["deploy"]));
    let all = docs(&read(d, "deploy/workloads.yaml"));
    let toml = init_data(template(&all[0]));
    let data = toml
        .split("policy_data := {\n")
        .nth(1)
        .expect("no policy_data");
    let top: Vec<&str> = data
        .lines()
        .take_while(|l| *l != "}")
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .filter_map(|l| l.trim().split('"').nth(1))
        .collect();
    assert!(top.len() > 5, "{top:?}");
    let mut sorted = top.clone();
    sorted.sort();
    assert_eq!(top, sorted);
}

#[test]
fn a_policy_line_too_long_for_older_kata_agents_is_warned_about_by_name() {
    let dir = setup();
    let d = dir.path();
    let long = "x".repeat(1500);
    let pod = |name: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - name: app\n    image: {}\n    env:\n    - {{name: LONG, value: {value}}}\n",
            app(1)
        )
    };
    write(d, "deploy/workloads.yaml", pod("cuda", &long));
    let out = run(d, &["deploy"]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("warning: deploy/workloads.yaml, document 0, Pod default/cuda: line ")
            && err.contains("characters (starting `\"LONG=xxx")
            && err.contains("1024"),
        "{err}"
    );
    // The policy is written all the same, with the value pinned whole.
    let all = docs(&read(d, "deploy/workloads.yaml"));
    assert!(init_data(&all[0]).contains(&long));

    // A short value: no warning.
    write(d, "deploy/workloads.yaml", pod("short", "x"));
    let out = run(d, &["deploy"]);
    ok(&out);
    assert!(
        !stderr(&out).contains("of its policy has"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn refusals_name_the_resource_and_the_container_and_write_nothing() {
    let dir = setup();
    let d = dir.path();
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      runtimeClassName: accord-cc\n      containers:\n      - name: app\n        image: registry.example/app:1.0\n";
    write(d, "deploy/workloads.yaml", yaml);
    let out = run(d, &["deploy"]);
    fails(
        &out,
        1,
        &[
            "Deployment shop/web, container app: image registry.example/app:1.0 is not pinned by digest",
            "--pin-images",
            "nothing written",
        ],
    );
    assert_eq!(read(d, "deploy/workloads.yaml"), yaml);
    assert!(!d.join("manifest.json").exists());

    // An image the facts do not know.
    let unknown = format!("registry.example/nope@{}", digest(0x77));
    write(
        d,
        "deploy/workloads.yaml",
        yaml.replace("registry.example/app:1.0", &unknown),
    );
    fails(
        &run(d, &["deploy"]),
        1,
        &["Deployment shop/web, container app", "is not in facts.json"],
    );

    // The initializer image must be pinned too.
    write(
        d,
        "deploy/workloads.yaml",
        yaml.replace("registry.example/app:1.0", &app(1)),
    );
    let mut args = base_args("registry.example/accord-guest:latest");
    args.push("deploy".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(
        &accord(d, &refs),
        2,
        &["--initializer-image", "pinned by digest"],
    );

    // Without a coordinator anywhere, the initializers have nothing to pin.
    std::fs::remove_file(d.join("deploy/coordinator.yaml")).unwrap();
    fails(&run(d, &["deploy"]), 1, &["no coordinator policy"]);

    // A ConfigMap the pod needs but the inputs lack.
    write(
        d,
        "deploy/coordinator.yaml",
        COORDINATOR.replace("@APP9@", &app(9)),
    );
    write(
        d,
        "deploy/workloads.yaml",
        yaml.replace(
            "registry.example/app:1.0",
            &format!(
                "{}\n        envFrom: [{{configMapRef: {{name: missing}}}}]",
                app(1)
            ),
        ),
    );
    fails(
        &run(d, &["deploy"]),
        1,
        &["Deployment shop/web, container app: ConfigMap shop/missing is not among the inputs"],
    );

    // Nothing under accord-cc at all.
    std::fs::remove_file(d.join("deploy/coordinator.yaml")).unwrap();
    write(
        d,
        "deploy/workloads.yaml",
        yaml.replace("accord-cc", "runc"),
    );
    fails(&run(d, &["deploy"]), 1, &["nothing to generate"]);
}

#[test]
fn pin_images_writes_digests_from_the_facts_file() {
    let dir = setup();
    let d = dir.path();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - name: app\n    image: accord-shim\n";
    write(d, "deploy/workloads.yaml", yaml);
    ok(&run(d, &["--pin-images", "deploy"]));
    let all = docs(&read(d, "deploy/workloads.yaml"));
    assert_eq!(
        all[0]["spec"]["containers"][0]["image"].as_str().unwrap(),
        format!("accord-shim@{}", digest(0xa2))
    );
}

#[test]
fn the_shipped_coordinator_yaml_is_already_generated() {
    // host-shim/deploy/coordinator.yaml is `accord generate --coordinator`'s
    // output (cli/tests/generate_coordinator.rs): run through `accord
    // generate` again it changes no byte, and its hash goes into the
    // manifest as the coordinator's.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host-shim/deploy");
    let original = std::fs::read_to_string(deploy.join("coordinator.yaml")).unwrap();
    write(d, "coordinator.yaml", &original);
    write(
        d,
        "images.json",
        std::fs::read(deploy.join("images.json")).unwrap(),
    );
    write(d, "refvals.json", snp_reference_values().to_string());
    let out = accord(
        d,
        &[
            "generate",
            "--images",
            "images.json",
            "--reference-values",
            "refvals.json",
            "--disable-updates",
            "-o",
            "rendered",
            "coordinator.yaml",
        ],
    );
    let printed = ok(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    let parts: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(parts[1], "coordinator");
    assert_eq!(
        parts[2],
        "coordinator,coordinator.default,coordinator.default.svc,coordinator.default.svc.cluster.local"
    );
    let m = manifest(d);
    assert_eq!(m["Policies"][parts[0]]["Role"], "coordinator");
    assert_eq!(read(d, "rendered/coordinator.yaml"), original);
    let sts = docs(&original)
        .into_iter()
        .find(|v| v["kind"] == "StatefulSet")
        .unwrap();
    assert_eq!(sha256_hex(init_data(template(&sts)).as_bytes()), parts[0]);
}

#[test]
fn manifest_generate_reads_the_old_role_name_with_a_deprecation_note() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let toml = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"policy.rego\" = \"package agent_policy\"\n";
    write(d, "policy.toml", toml);
    let value = ok(&accord(d, &["policy", "annotate", "policy.toml"]));
    write(d, "refvals.json", snp_reference_values().to_string());
    for (key, note) in [
        ("accord.dev/pod-role", false),
        ("accord.dev/role", true),
        ("contrast.edgeless.systems/pod-role", false),
    ] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: c\n  annotations:\n    \
             io.katacontainers.config.hypervisor.cc_init_data: {}\n    {key}: coordinator\n",
            value.trim()
        );
        write(d, "pod.yaml", yaml);
        let out = accord(
            d,
            &[
                "manifest",
                "generate",
                "pod.yaml",
                "--reference-values",
                "refvals.json",
            ],
        );
        let printed = ok(&out);
        assert!(printed.contains("coordinator  "), "{key}: {printed}");
        assert_eq!(
            stderr(&out).contains("accord.dev/role is deprecated; write accord.dev/pod-role"),
            note,
            "{key}: {}",
            stderr(&out)
        );
    }
}

/// A minimal OCI distribution registry on 127.0.0.1: serves the given
/// manifests (by tag and by digest) and blobs, counts the requests it
/// answers, and can be told to lie (serve other bytes under a digest).
struct Registry {
    port: u16,
    requests: Arc<AtomicUsize>,
}

fn start_registry(
    repo: &str,
    tag: &str,
    manifest: Vec<u8>,
    blobs: Vec<(String, Vec<u8>)>,
    lie_manifest: Option<Vec<u8>>,
) -> Registry {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let repo = repo.to_string();
    let tag = tag.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let manifests = format!("/v2/{repo}/manifests/");
            let blobs_prefix = format!("/v2/{repo}/blobs/");
            let (status, content_type, body, digest_header): (&str, &str, Vec<u8>, Option<String>) =
                if path == "/v2/" {
                    ("200 OK", "application/json", b"{}".to_vec(), None)
                } else if let Some(reference) = path.strip_prefix(&manifests) {
                    if reference == tag || reference == manifest_digest {
                        let body = lie_manifest.clone().unwrap_or_else(|| manifest.clone());
                        (
                            "200 OK",
                            "application/vnd.oci.image.manifest.v1+json",
                            body,
                            Some(manifest_digest.clone()),
                        )
                    } else {
                        (
                            "404 Not Found",
                            "application/json",
                            br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec(),
                            None,
                        )
                    }
                } else if let Some(d) = path.strip_prefix(&blobs_prefix) {
                    match blobs.iter().find(|(bd, _)| bd == d) {
                        Some((bd, b)) => (
                            "200 OK",
                            "application/octet-stream",
                            b.clone(),
                            Some(bd.clone()),
                        ),
                        None => (
                            "404 Not Found",
                            "application/json",
                            br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_vec(),
                            None,
                        ),
                    }
                } else {
                    ("404 Not Found", "application/json", b"{}".to_vec(), None)
                };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(d) = digest_header {
                head.push_str(&format!("Docker-Content-Digest: {d}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            if method != "HEAD" {
                let _ = stream.write_all(&body);
            }
            let _ = stream.flush();
        }
    });
    Registry { port, requests }
}

fn image_parts() -> (Vec<u8>, String, Vec<u8>) {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/bin/web"], "Cmd": ["--port", "80"], "Env": ["PATH=/bin", "MODE=prod"],
                   "User": "101:101", "WorkingDir": "/srv", "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": [digest(0x51)]}
    }))
    .unwrap();
    let config_digest = format!("sha256:{}", sha256_hex(&config));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(0x61), "size": 1}]
    }))
    .unwrap();
    (config, config_digest, manifest)
}

const REGISTRY_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    accord.dev/pod-role: coordinator\nspec:\n  runtimeClassName: accord-cc\n  containers:\n  - name: web\n    image: IMAGE\n";

#[test]
fn the_registry_path_pins_tags_fetches_checked_facts_and_caches_them() {
    let (config, config_digest, manifest) = image_parts();
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    let registry = start_registry(
        "shop/web",
        "1.0",
        manifest,
        vec![(config_digest, config)],
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host = format!("127.0.0.1:{}", registry.port);
    write(
        d,
        "pod.yaml",
        REGISTRY_POD.replace("IMAGE", &format!("{host}/shop/web:1.0")),
    );
    write(d, "refvals.json", snp_reference_values().to_string());
    let args = [
        "generate",
        "--reference-values",
        "refvals.json",
        "--disable-updates",
        "--pin-images",
        "--insecure-registry",
        &host,
        "--image-cache",
        "cache",
        "pod.yaml",
    ];
    ok(&accord(d, &args));
    let pod = &docs(&read(d, "pod.yaml"))[0];
    assert_eq!(
        pod["spec"]["containers"][0]["image"].as_str().unwrap(),
        format!("{host}/shop/web:1.0@{manifest_digest}")
    );
    // The facts, as fetched and checked, are in the cache under the digest.
    let cached: Value = serde_json::from_str(&read(
        d,
        &format!("cache/{}.json", manifest_digest.replace(':', "-")),
    ))
    .unwrap();
    assert_eq!(cached["Entrypoint"], json!(["/bin/web"]));
    assert_eq!(cached["Cmd"], json!(["--port", "80"]));
    assert_eq!(cached["Env"], json!(["PATH=/bin", "MODE=prod"]));
    assert_eq!(cached["User"], "101:101");
    assert_eq!(cached["WorkingDir"], "/srv");
    assert_eq!(cached["Volumes"], json!(["/data"]));
    assert_eq!(cached["Layers"], json!([digest(0x61)]));
    let before = std::fs::read(d.join("pod.yaml")).unwrap();
    let asked = registry.requests.load(Ordering::SeqCst);
    assert!(asked >= 2, "{asked}");
    // A second run: pinned already, facts from the cache, no request,
    // no byte changed.
    ok(&accord(d, &args));
    assert_eq!(registry.requests.load(Ordering::SeqCst), asked);
    assert_eq!(std::fs::read(d.join("pod.yaml")).unwrap(), before);
}

#[test]
fn a_registry_serving_other_bytes_under_a_digest_is_refused() {
    let (config, config_digest, manifest) = image_parts();
    let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
    // The registry answers a different manifest (another config) for the
    // pinned digest.
    let mut other: Value = serde_json::from_slice(&manifest).unwrap();
    other["layers"][0]["digest"] = json!(digest(0x66));
    let lie = serde_json::to_vec(&other).unwrap();
    let registry = start_registry(
        "shop/web",
        "1.0",
        manifest,
        vec![(config_digest, config)],
        Some(lie),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host = format!("127.0.0.1:{}", registry.port);
    let image = format!("{host}/shop/web@{manifest_digest}");
    write(d, "pod.yaml", REGISTRY_POD.replace("IMAGE", &image));
    write(d, "refvals.json", snp_reference_values().to_string());
    let out = accord(
        d,
        &[
            "generate",
            "--reference-values",
            "refvals.json",
            "--disable-updates",
            "--insecure-registry",
            &host,
            "--image-cache",
            "cache",
            "pod.yaml",
        ],
    );
    fails(
        &out,
        1,
        &["Pod default/web, container web", "fetching the image facts"],
    );
    assert!(!d.join("manifest.json").exists());
    assert!(
        !d.join("cache").exists() || std::fs::read_dir(d.join("cache")).unwrap().next().is_none()
    );
}
