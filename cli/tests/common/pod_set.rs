//! A set of N pod templates for `accord generate`, the same for the test
//! (`tests/generate_many.rs`) and the benchmark (`benches/generate.rs`,
//! which includes this file by path): one coordinator StatefulSet and
//! N - 1 workloads of every pod-bearing kind in four namespaces, with one
//! to three containers (and sometimes an init container), environment
//! from literals, `fieldRef`, ConfigMaps and Secrets (`configMapKeyRef`,
//! `secretKeyRef`, `envFrom`), emptyDir, ConfigMap and Secret volumes,
//! exec probes and security contexts; the ConfigMaps and Secrets they
//! reference; and the image facts of their images (pinned by digest), as
//! an `--image-facts` file and as an image cache directory.
//!
//! Deterministic: the same N gives the same bytes.

// The test and the benchmark each use a subset.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

/// The namespaces the workloads rotate through.
pub const NAMESPACES: [&str; 4] = ["default", "shop", "bank", "ops"];

/// The kinds the workloads rotate through.
pub const KINDS: [&str; 7] = [
    "Deployment",
    "StatefulSet",
    "Pod",
    "Job",
    "CronJob",
    "DaemonSet",
    "ReplicaSet",
];

/// How many distinct application images the set uses.
const IMAGES: usize = 12;

/// `sha256:` and 64 hex digits made of `n`.
pub fn digest(n: usize) -> String {
    format!("sha256:{}", format!("{:02x}", n % 256).repeat(32))
}

/// Application image `k`, pinned by digest.
pub fn image(k: usize) -> String {
    format!("registry.example/team/app{k}:1.{k}@{}", digest(0x10 + k))
}

/// The initializer's image, pinned.
pub fn initializer_image() -> String {
    format!("registry.example/accord-guest:0.1@{}", digest(0xee))
}

/// One YAML file of the set: its name and its documents.
pub struct SetFile {
    /// The file name, relative to the set's directory.
    pub name: String,
    /// The YAML documents, each one object.
    pub docs: Vec<String>,
}

impl SetFile {
    /// The file's text: the documents joined with `---`.
    pub fn text(&self) -> String {
        self.docs.join("---\n")
    }
}

/// The pod set: its YAML files.
pub struct PodSet {
    /// The files (the coordinator, the workloads in files of ten, the
    /// ConfigMaps and Secrets).
    pub files: Vec<SetFile>,
}

/// Workload `i`'s name.
pub fn workload_name(i: usize) -> String {
    format!("w{i:03}")
}

/// Workload `i`'s kind.
pub fn workload_kind(i: usize) -> &'static str {
    KINDS[i % KINDS.len()]
}

/// Workload `i`'s namespace.
pub fn workload_namespace(i: usize) -> &'static str {
    NAMESPACES[i % NAMESPACES.len()]
}

/// How many (regular) containers workload `i` has: 1, 2 or 3.
pub fn container_count(i: usize) -> usize {
    1 + i % 3
}

/// Whether workload `i` mounts its own ConfigMap `wNNN-files`.
pub fn has_files_config_map(i: usize) -> bool {
    i.is_multiple_of(5)
}

/// The `n`-pod set: the coordinator and workloads 1..n.
pub fn pod_set(n: usize) -> PodSet {
    assert!(
        n >= 2,
        "a set has the coordinator and at least one workload"
    );
    let mut files = vec![SetFile {
        name: "coordinator.yaml".into(),
        docs: vec![yaml(&coordinator())],
    }];
    let mut config = Vec::new();
    for ns in NAMESPACES {
        config.push(yaml(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns},
            "data": {"MODE": format!("{ns}-mode"), "LOG_LEVEL": "info", "REGION": "eu-1", "RETRIES": "3"},
        })));
        config.push(yaml(&json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "credentials", "namespace": ns},
            "stringData": {"username": format!("{ns}-user"), "password": format!("{ns}-secret")},
        })));
    }
    for i in 1..n {
        if has_files_config_map(i) {
            config.push(yaml(&json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("{}-files", workload_name(i)), "namespace": workload_namespace(i)},
                "data": {"app.conf": format!("listen 80\nname {}\n", workload_name(i))},
            })));
        }
    }
    let workloads: Vec<usize> = (1..n).collect();
    for (f, chunk) in workloads.chunks(10).enumerate() {
        files.push(SetFile {
            name: format!("workloads-{f:02}.yaml"),
            docs: chunk.iter().map(|&i| yaml(&workload(i))).collect(),
        });
    }
    files.push(SetFile {
        name: "config.yaml".into(),
        docs: config,
    });
    PodSet { files }
}

impl PodSet {
    /// Writes the YAML files into `dir` (created).
    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for f in &self.files {
            std::fs::write(dir.join(&f.name), f.text()).unwrap();
        }
    }

    /// The document of object `name` (and its file), to change it.
    pub fn doc_mut(&mut self, name: &str) -> &mut String {
        let needle = format!("\n  name: {name}\n");
        self.files
            .iter_mut()
            .flat_map(|f| f.docs.iter_mut())
            .find(|d| d.contains(&needle))
            .unwrap_or_else(|| panic!("no object {name}"))
    }

    /// Removes object `name`.
    pub fn remove(&mut self, name: &str) {
        let needle = format!("\n  name: {name}\n");
        for f in &mut self.files {
            f.docs.retain(|d| !d.contains(&needle));
        }
    }
}

fn yaml(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap()
}

/// The image facts of every image in the set, as `--image-facts` reads
/// them (reference → facts).
pub fn facts() -> Value {
    let mut map = serde_json::Map::new();
    for k in 0..IMAGES {
        map.insert(image(k), image_facts(k));
    }
    map.insert(
        initializer_image(),
        json!({"Entrypoint": ["/accord-guest"], "Env": ["PATH=/bin"], "Layers": [digest(0xef)]}),
    );
    Value::Object(map)
}

fn image_facts(k: usize) -> Value {
    json!({
        "Entrypoint": [format!("/usr/local/bin/app{k}")],
        "Cmd": ["--config", "/etc/app/app.conf"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                format!("APP_VERSION=1.{k}"), "LANG=C.UTF-8"],
        "User": if k.is_multiple_of(2) { "1000:1000" } else { "" },
        "WorkingDir": "/srv",
        "Volumes": if k % 4 == 3 { json!(["/data"]) } else { json!([]) },
        "Layers": [digest(0x40 + k), digest(0x80 + k), digest(0xc0 + k)],
    })
}

/// The image cache as `accord generate` keeps it (`--image-cache DIR`):
/// one `sha256-<hex>.json` per image, the facts with their digest.
pub fn write_image_cache(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let Value::Object(map) = facts() else {
        unreachable!()
    };
    for (reference, mut f) in map {
        let d = reference.rsplit_once('@').unwrap().1.to_string();
        f["Digest"] = json!(d);
        std::fs::write(
            dir.join(format!("{}.json", d.replace(':', "-"))),
            serde_json::to_vec_pretty(&f).unwrap(),
        )
        .unwrap();
    }
}

fn coordinator() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "coordinator", "namespace": "default"},
        "spec": {
            "serviceName": "coordinator", "replicas": 3,
            "selector": {"matchLabels": {"app": "coordinator"}},
            "template": {
                "metadata": {"labels": {"app": "coordinator"}, "annotations": {"accord.dev/pod-role": "coordinator"}},
                "spec": {
                    "runtimeClassName": "accord-cc",
                    "containers": [{
                        "name": "coordinator", "image": image(0),
                        "args": ["coordinator"],
                        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "volumeMounts": [{"name": "state", "mountPath": "/var/lib/accord"}],
                    }],
                    "volumes": [{"name": "state", "emptyDir": {}}],
                },
            },
        },
    })
}

/// Container `c` (0, 1 or 2) of workload `i`.
fn container(i: usize, c: usize) -> Value {
    let img = image(1 + (i + c) % (IMAGES - 1));
    match c {
        0 => json!({
            "name": "main", "image": img,
            "ports": [{"containerPort": 8080}],
            "env": [
                {"name": "LISTEN", "value": ":8080"},
                {"name": "WORKLOAD", "value": workload_name(i)},
                {"name": "URL", "value": "http://$(LISTEN)/$(WORKLOAD)"},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "credentials", "key": "password"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "TEAM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['example.com/team']"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
            "readinessProbe": {"exec": {"command": ["/usr/local/bin/health", "--ready"]}},
            "volumeMounts": volume_mounts(i),
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        }),
        1 => json!({
            "name": "sidecar", "image": img,
            "args": ["--proxy", "--upstream", "127.0.0.1:8080"],
            "envFrom": [{"secretRef": {"name": "credentials"}}, {"configMapRef": {"name": "settings"}}],
            "securityContext": {"runAsUser": 2000, "runAsGroup": 2000, "allowPrivilegeEscalation": false},
            "livenessProbe": {"exec": {"command": ["/bin/true"]}},
        }),
        _ => json!({
            "name": "metrics", "image": img,
            "command": ["/usr/local/bin/exporter"], "args": ["--port", "9100"],
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "securityContext": {
                "runAsUser": 65534, "runAsGroup": 65534, "readOnlyRootFilesystem": true,
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            },
            "volumeMounts": [{"name": "cache", "mountPath": "/tmp"}],
        }),
    }
}

fn volume_mounts(i: usize) -> Value {
    let mut m = vec![
        json!({"name": "cache", "mountPath": "/cache"}),
        json!({"name": "creds", "mountPath": "/etc/creds", "readOnly": true}),
    ];
    if has_files_config_map(i) {
        m.push(json!({"name": "files", "mountPath": "/etc/app", "readOnly": true}));
    }
    Value::Array(m)
}

fn volumes(i: usize) -> Value {
    let mut v = vec![
        json!({"name": "cache", "emptyDir": {}}),
        json!({"name": "creds", "secret": {"secretName": "credentials"}}),
    ];
    if has_files_config_map(i) {
        v.push(
            json!({"name": "files", "configMap": {"name": format!("{}-files", workload_name(i))}}),
        );
    }
    Value::Array(v)
}

/// Workload `i`'s pod template.
fn template(i: usize) -> Value {
    let name = workload_name(i);
    let mut spec = json!({
        "runtimeClassName": "accord-cc",
        "securityContext": {"fsGroup": 3000, "supplementalGroups": [4000]},
        "containers": (0..container_count(i)).map(|c| container(i, c)).collect::<Vec<_>>(),
        "volumes": volumes(i),
    });
    if i % 4 == 1 {
        spec["initContainers"] = json!([{
            "name": "migrate", "image": image(1 + i % (IMAGES - 1)),
            "command": ["/usr/local/bin/migrate", "--once"],
            "envFrom": [{"secretRef": {"name": "credentials"}}],
        }]);
    }
    if matches!(workload_kind(i), "Job" | "CronJob" | "Pod") {
        spec["restartPolicy"] = json!("OnFailure");
    }
    json!({
        "metadata": {"labels": {"app": name, "example.com/team": format!("team-{}", i % 3)}},
        "spec": spec,
    })
}

/// Workload `i`: its kind around its pod template.
fn workload(i: usize) -> Value {
    let name = workload_name(i);
    let ns = workload_namespace(i);
    let kind = workload_kind(i);
    let metadata = json!({"name": name, "namespace": ns});
    let selector = json!({"matchLabels": {"app": name}});
    let t = template(i);
    match kind {
        "Pod" => {
            let mut pod =
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": t["spec"]});
            pod["metadata"]["labels"] = t["metadata"]["labels"].clone();
            pod
        }
        "Job" => json!({"apiVersion": "batch/v1", "kind": kind, "metadata": metadata,
                        "spec": {"backoffLimit": 2, "template": t}}),
        "CronJob" => json!({"apiVersion": "batch/v1", "kind": kind, "metadata": metadata,
                            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": t}}}}),
        "StatefulSet" => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                                "spec": {"serviceName": name, "replicas": 2, "selector": selector, "template": t}}),
        "DaemonSet" => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                              "spec": {"selector": selector, "template": t}}),
        _ => json!({"apiVersion": "apps/v1", "kind": kind, "metadata": metadata,
                    "spec": {"replicas": 2, "selector": selector, "template": t}}),
    }
}
