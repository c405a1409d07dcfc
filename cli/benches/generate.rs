//! `accord generate` and the Kata agent policy it writes, measured
//! (BENCHMARKS.md, "accord generate and the Kata agent policy"), on the
//! 100-pod set of `tests/common/pod_set.rs` (the set `tests/generate_many.rs`
//! checks):
//!
//! 1. sizes: `policy.rego`, the init-data TOML, its gzip and the base64
//!    annotation of the set's three-container pods (as `accord generate`
//!    writes them, the initializer included), and the largest annotation
//!    of the set;
//! 2. regorus, as the kata-agent runs it: loading the policy (parse, add
//!    data, first evaluation), then one `CreateContainerRequest` (input
//!    JSON in, query, result out) allowed and denied, beside the same
//!    request against an allow-all policy in the same engine (the floor:
//!    no upstream Kata `rules.rego` is at hand to compare with);
//! 3. the wall time of the `accord` binary (this profile's build) on the
//!    100 pods, image facts from `--image-facts` and from a warm
//!    `--image-cache`.
//!
//! `cargo bench -p accord-cli --bench generate` (a plain timing binary).
//! `-- --write DIR` only writes the set, its facts, cache and keys to DIR
//! and prints the commands, for `hyperfine`.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use serde_json::{Value, json};

#[path = "../tests/common/pod_set.rs"]
mod pod_set;
// Running `accord`, reading its YAML: as the generate tests do.
#[path = "../tests/common/generated.rs"]
#[allow(dead_code)]
mod generated;
use generated::{accord_in as accord, docs, template};

const PODS: usize = 100;
const LOADS: usize = 30;
const EVALS: usize = 300;
const RUNS: usize = 10;

/// Samples of one measurement, reported as median and spread.
struct Stats(Vec<Duration>);

impl Stats {
    fn at(&self, q: f64) -> Duration {
        let n = self.0.len();
        self.0[((n as f64 - 1.0) * q).round() as usize]
    }

    fn median(&mut self) -> Duration {
        self.0.sort();
        self.at(0.5)
    }

    fn report(&mut self, name: &str, unit: &str) {
        self.0.sort();
        let scale = match unit {
            "ms" => 1e3,
            _ => 1e6,
        };
        let f = |d: Duration| d.as_secs_f64() * scale;
        println!(
            "{name:<52} p50 {:>9.1} {unit}  p10 {:>9.1}  p90 {:>9.1}  p99 {:>9.1}  min {:>9.1}  max {:>9.1}  (n={})",
            f(self.at(0.5)),
            f(self.at(0.1)),
            f(self.at(0.9)),
            f(self.at(0.99)),
            f(self.0[0]),
            f(self.0[self.0.len() - 1]),
            self.0.len()
        );
    }
}

/// The directory with the set (`deploy/`), facts, cache, reference values
/// and a seed-share owner key.
fn prepare(dir: &Path) {
    pod_set::pod_set(PODS).write(&dir.join("deploy"));
    std::fs::write(dir.join("facts.json"), pod_set::facts().to_string()).unwrap();
    pod_set::write_image_cache(&dir.join("cache"));
    let refvals = json!({"snp": [{
        "ProductName": "Milan",
        "TrustedMeasurement": "05c5".repeat(24),
        "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213}
    }]});
    std::fs::write(dir.join("refvals.json"), refvals.to_string()).unwrap();
    let _ = std::fs::remove_file(dir.join("seedshare-owner.pem"));
    let out = accord(dir, &["keys", "new", "--seedshare-owner"]);
    assert!(out.status.success(), "{out:?}");
}

/// `accord generate`'s arguments on the set, into `-o out`; facts from the
/// file or from the cache.
fn generate_args(from_cache: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "generate",
        "--reference-values",
        "refvals.json",
        "--initializer-image",
        &pod_set::initializer_image(),
        "--add-seedshare-owner-key",
        "seedshare-owner.pem",
        "--disable-updates",
        "-o",
        "out",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if from_cache {
        args.extend(["--image-cache".into(), "cache".into()]);
    } else {
        args.extend(["--image-facts".into(), "facts.json".into()]);
    }
    args.push("deploy".into());
    args
}

/// One generated pod template, decoded.
struct Generated {
    name: String,
    namespace: String,
    kind: String,
    containers: usize,
    annotation: usize,
    gzip: usize,
    toml: usize,
    policy: String,
}

fn generated(out: &Path) -> Vec<Generated> {
    let mut all = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        for doc in docs(&std::fs::read_to_string(&path).unwrap()) {
            let t = template(&doc);
            let Some(a) =
                t["metadata"]["annotations"]["io.katacontainers.config.hypervisor.cc_init_data"]
                    .as_str()
            else {
                continue;
            };
            let gz = Base64::decode_vec(a).unwrap();
            let mut toml = String::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_string(&mut toml)
                .unwrap();
            let parsed: toml::Table = toml::from_str(&toml).unwrap();
            let policy = parsed["data"]["policy.rego"].as_str().unwrap().to_string();
            all.push(Generated {
                name: doc["metadata"]["name"].as_str().unwrap().into(),
                namespace: doc["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .into(),
                kind: doc["kind"].as_str().unwrap().into(),
                containers: t["spec"]["containers"].as_sequence().unwrap().len(),
                annotation: a.len(),
                gzip: gz.len(),
                toml: toml.len(),
                policy,
            });
        }
    }
    all
}

// ------------------------------------------------------------ requests

const BUNDLE: &str = "5f0c6e4a9d1b2c3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f80912";
const SANDBOX: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

/// The `policy_data` document at the end of a generated policy.
fn policy_data(policy: &str) -> Value {
    let at = policy.rfind("policy_data := ").unwrap();
    serde_json::from_str(&policy[at + "policy_data := ".len()..]).unwrap()
}

fn shared(name: &str) -> String {
    format!("/run/kata-containers/shared/containers/{BUNDLE}-0123456789abcdef-{name}")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The `CreateContainerRequest` the Kata runtime sends for container
/// `name` of pod `sandbox_name`: built from what the policy pins (so it is
/// allowed), with values for what only the cluster knows, the kernel
/// mounts, the runtime's files and the service-link variables a real
/// namespace adds.
fn create_request(data: &Value, name: &str, sandbox_name: &str, namespace: &str) -> Value {
    let c = &data["containers"][name];
    let mut env = strings(&c["env_exact"]);
    for r in strings(&c["env_regex"]) {
        let var = r.trim_start_matches('^').split('=').next().unwrap();
        let value = match var {
            "POD_NAME" => sandbox_name.to_string(),
            "POD_IP" => "10.244.1.17".into(),
            "NODE" => "node-1".into(),
            other => panic!("no value for the cluster-only variable {other}"),
        };
        env.push(format!("{var}={value}"));
    }
    env.push(format!("HOSTNAME={sandbox_name}"));
    for (svc, ip, port) in [
        ("KUBERNETES", "10.96.0.1", 443),
        ("BACKEND", "10.96.14.2", 8080),
    ] {
        env.extend([
            format!("{svc}_SERVICE_HOST={ip}"),
            format!("{svc}_SERVICE_PORT={port}"),
            format!("{svc}_PORT=tcp://{ip}:{port}"),
            format!("{svc}_PORT_{port}_TCP=tcp://{ip}:{port}"),
            format!("{svc}_PORT_{port}_TCP_PROTO=tcp"),
            format!("{svc}_PORT_{port}_TCP_PORT={port}"),
            format!("{svc}_PORT_{port}_TCP_ADDR={ip}"),
        ]);
    }
    let caps = c["caps"].clone();
    let mut mounts = vec![
        json!({"destination": "/proc", "type_": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type_": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type_": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type_": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type_": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type_": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/shm", "type_": "bind", "source": "/run/kata-containers/sandbox/shm", "options": ["rbind"]}),
        json!({"destination": "/etc/hosts", "type_": "bind", "source": shared("hosts"), "options": ["rbind", "rprivate", "rw"]}),
        json!({"destination": "/dev/termination-log", "type_": "bind", "source": shared("termination-log"), "options": ["rbind", "rprivate", "rw"]}),
        json!({"destination": "/etc/hostname", "type_": "bind", "source": shared("hostname"), "options": ["rbind", "rprivate", "rw"]}),
        json!({"destination": "/etc/resolv.conf", "type_": "bind", "source": shared("resolv.conf"), "options": ["rbind", "rprivate", "rw"]}),
        json!({"destination": "/var/run/secrets/kubernetes.io/serviceaccount", "type_": "bind", "source": shared("serviceaccount"), "options": ["rbind", "rprivate", "ro"]}),
    ];
    let mut storages = vec![json!({
        "driver": "image_guest_pull",
        "source": format!("registry.example/team/app@{}", c["image_digest"].as_str().unwrap()),
        "fstype": "overlay", "options": [],
        "mount_point": format!("/run/kata-containers/{BUNDLE}/rootfs"),
        "driver_options": [format!("image_guest_pull={}", json!({"metadata": {
            "io.kubernetes.cri.container-type": "container",
            "io.katacontainers.pkg.oci.container_type": "pod_container",
        }}))],
        "fs_group": null,
    })];
    for (n, m) in c["mounts"].as_array().unwrap().iter().enumerate() {
        let dest = m["destination"].as_str().unwrap();
        let rw = if m["readonly"] == true { "ro" } else { "rw" };
        match m["kind"].as_str().unwrap() {
            "emptydir" => {
                let point = format!(
                    "/run/kata-containers/sandbox/storage/{}",
                    Base64::encode_string(format!("253/{n}").as_bytes())
                );
                mounts.push(json!({"destination": dest, "type_": "bind", "source": point, "options": ["rbind", "rprivate", rw]}));
                storages.push(json!({
                    "driver": "blk", "source": format!("253/{n}"), "fstype": "ext4", "options": [],
                    "mount_point": point, "driver_options": ["encryption_key=ephemeral", "create_filesystem"],
                    "fs_group": data["fs_group"].as_u64().map(|g| json!({"group_id": g, "group_change_policy": 0})),
                }));
            }
            _ => {
                let file = dest.trim_start_matches('/').replace('/', "-");
                mounts.push(json!({"destination": dest, "type_": "bind", "source": shared(&file), "options": ["rbind", "rprivate", rw]}));
            }
        }
    }
    let settings = &data["settings"];
    json!({
        "container_id": BUNDLE,
        "exec_id": BUNDLE,
        "OCI": {
            "Version": "1.1.0",
            "Annotations": {
                "io.katacontainers.pkg.oci.bundle_path": format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{BUNDLE}"),
                "io.katacontainers.pkg.oci.container_type": "pod_container",
                "io.kubernetes.cri.container-type": "container",
                "io.kubernetes.cri.container-name": name,
                "io.kubernetes.cri.image-name": format!("registry.example/team/app@{}", c["image_digest"].as_str().unwrap()),
                "io.kubernetes.cri.sandbox-id": SANDBOX,
                "io.kubernetes.cri.sandbox-name": sandbox_name,
                "io.kubernetes.cri.sandbox-namespace": namespace,
                "io.kubernetes.cri.sandbox-uid": "6c1b2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
            },
            "Hostname": "",
            "Root": {"Path": format!("/run/kata-containers/{BUNDLE}/rootfs"), "Readonly": c["readonly_root"]},
            "Process": {
                "Terminal": false,
                "User": {"UID": c["uid"], "GID": c["gid"], "AdditionalGids": c["additional_gids"], "Username": ""},
                "Args": c["args"],
                "Env": env,
                "Cwd": c["cwd"],
                "Capabilities": {"Bounding": caps, "Effective": caps, "Permitted": caps, "Inheritable": [], "Ambient": []},
                "Rlimits": [],
                "NoNewPrivileges": c["no_new_privileges"],
                "ApparmorProfile": "cri-containerd.apparmor.d",
                "OOMScoreAdj": 1000,
                "SelinuxLabel": "",
            },
            "Mounts": mounts,
            "Hooks": null,
            "Linux": {
                "UIDMappings": [], "GIDMappings": [],
                "Sysctl": c["sysctls"],
                "Resources": {"Devices": [], "Memory": {"Limit": 268435456}, "CPU": {"Shares": 512, "Quota": 50000, "Period": 100000}},
                "CgroupsPath": format!("kubepods-burstable-pod6c1b2d3e.slice:cri-containerd:{BUNDLE}"),
                "Namespaces": [
                    {"Type": "ipc", "Path": ""}, {"Type": "uts", "Path": ""}, {"Type": "mount", "Path": ""},
                    {"Type": "network", "Path": "/run/netns/cni-5f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8"},
                ],
                "Devices": [],
                "Seccomp": null,
                "RootfsPropagation": "",
                "MaskedPaths": settings["masked_paths"],
                "ReadonlyPaths": settings["readonly_paths"],
                "MountLabel": "",
                "IntelRdt": null,
            },
        },
        "devices": [],
        "storages": storages,
        "sandbox_pidns": false,
        "shared_mounts": [],
        "string_user": null,
    })
}

/// The policy state after the sandbox and another container were created.
fn running_state(sandbox_name: &str) -> Value {
    json!({"pstate": {
        "sandbox_name": sandbox_name,
        "netns": "/run/netns/cni-5f1c2a3b-4d5e-6f70-8192-a3b4c5d6e7f8",
        "containers": {SANDBOX: "", "0f".repeat(32): "accord-initializer"},
    }})
}

/// A policy in regorus, loaded as the kata-agent loads it.
fn load(policy: &str, state: &Value) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("policy.rego".into(), policy.into())
        .expect("the policy compiles");
    engine.add_data_json(&state.to_string()).unwrap();
    engine
}

/// One decision as the agent makes it: the request's JSON in, the query,
/// the result out as JSON (allowed: `true` or `{"allowed": true, ...}`).
fn decide(engine: &mut regorus::Engine, request: &str) -> bool {
    engine.set_input_json(request).unwrap();
    let results = engine
        .eval_query("data.agent_policy.CreateContainerRequest".into(), false)
        .unwrap();
    let Some(value) = results
        .result
        .first()
        .and_then(|r| r.expressions.first())
        .map(|e| &e.value)
    else {
        return false;
    };
    let value: Value = serde_json::from_str(&value.to_json_str().unwrap()).unwrap();
    value == Value::Bool(true) || value.get("allowed") == Some(&Value::Bool(true))
}

/// Which of the `CreateContainerRequest` rule's conditions a request
/// fails (for a request this benchmark built wrong).
fn explain(engine: &mut regorus::Engine, request: &str) -> Vec<String> {
    engine.set_input_json(request).unwrap();
    let pre = "oci := input.OCI; anns := data.agent_policy.get(oci, \"Annotations\", {}); \
               bundle := data.agent_policy.bundle_id(anns); c := data.agent_policy.policy_container(anns)";
    let checks = [
        "data.agent_policy.sandbox_name_ok(anns)",
        "data.agent_policy.namespaces_ok(oci)",
        "data.agent_policy.root_ok(c, oci, bundle)",
        "data.agent_policy.process_ok(c, data.agent_policy.get(oci, \"Process\", null))",
        "data.agent_policy.linux_ok(c, data.agent_policy.get(oci, \"Linux\", {}))",
        "data.agent_policy.mounts_ok(c, anns, data.agent_policy.list(oci, \"Mounts\"), bundle)",
        "data.agent_policy.storages_ok(c, anns, data.agent_policy.list(input, \"storages\"), bundle)",
        "data.agent_policy.devices_ok(c, anns, data.agent_policy.list(input, \"devices\"))",
    ];
    checks
        .iter()
        .filter(|check| {
            engine
                .eval_query(format!("{pre}; {check}"), false)
                .map_or(true, |r| r.result.is_empty())
        })
        .map(|c| c.to_string())
        .collect()
}

fn time_decisions(engine: &mut regorus::Engine, request: &str, expect: bool) -> Stats {
    for _ in 0..10 {
        assert_eq!(decide(engine, request), expect);
    }
    let mut s = Stats(Vec::with_capacity(EVALS));
    for _ in 0..EVALS {
        let t = Instant::now();
        let d = decide(engine, request);
        s.0.push(t.elapsed());
        assert_eq!(d, expect);
    }
    s
}

const ALLOW_ALL: &str = "package agent_policy\n\ndefault CreateContainerRequest := true\n";

fn bench_regorus(pod: &Generated) {
    let policy = &pod.policy;
    let data = policy_data(policy);
    // The pod's name as its kind's controller makes it.
    let sandbox_name = match pod.kind.as_str() {
        "Pod" => pod.name.clone(),
        "StatefulSet" => format!("{}-0", pod.name),
        "Deployment" => format!("{}-7c9d8f6b5-x2k4q", pod.name),
        "CronJob" => format!("{}-29012345-x2k4q", pod.name),
        _ => format!("{}-x2k4q", pod.name),
    };
    let state = running_state(&sandbox_name);
    println!(
        "\n== regorus 0.14: the policy of {} {}/{} ({} containers + the initializer), container \"main\"",
        pod.kind, pod.namespace, pod.name, pod.containers
    );

    // Loading: parse, data, and the first evaluation (regorus prepares
    // the modules then).
    let request = create_request(&data, "main", &sandbox_name, &pod.namespace);
    let allowed = request.to_string();
    let (mut parse, mut add_data, mut first) = (Stats(vec![]), Stats(vec![]), Stats(vec![]));
    let mut total = Stats(vec![]);
    for _ in 0..LOADS {
        let t0 = Instant::now();
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("policy.rego".into(), policy.clone())
            .unwrap();
        let t1 = Instant::now();
        engine.add_data_json(&state.to_string()).unwrap();
        let t2 = Instant::now();
        let allowed_now = decide(&mut engine, &allowed);
        let t3 = Instant::now();
        assert!(allowed_now, "denied: {:?}", explain(&mut engine, &allowed));
        parse.0.push(t1 - t0);
        add_data.0.push(t2 - t1);
        first.0.push(t3 - t2);
        total.0.push(t3 - t0);
    }
    parse.report("load: Engine::new + add_policy (parse)", "ms");
    add_data.report("load: add_data (policy state)", "ms");
    first.report("load: first CreateContainerRequest", "ms");
    total.report("load: total, to the first decision", "ms");

    // Per request: allowed, and denied late and early.
    let mut engine = load(policy, &state);
    let mut denied_env = request.clone();
    denied_env["OCI"]["Process"]["Env"]
        .as_array_mut()
        .unwrap()
        .push(json!("LD_PRELOAD=/tmp/x.so"));
    let mut denied_image = request.clone();
    denied_image["storages"][0]["source"] = json!(format!(
        "registry.example/team/app@{}",
        pod_set::digest(0x99)
    ));
    let mut denied_args = request.clone();
    denied_args["OCI"]["Process"]["Args"]
        .as_array_mut()
        .unwrap()
        .push(json!("--debug"));
    println!(
        "request: {} bytes of JSON, {} env, {} mounts, {} storages",
        allowed.len(),
        request["OCI"]["Process"]["Env"].as_array().unwrap().len(),
        request["OCI"]["Mounts"].as_array().unwrap().len(),
        request["storages"].as_array().unwrap().len()
    );
    let mut allow = time_decisions(&mut engine, &allowed, true);
    allow.report("CreateContainerRequest allowed", "µs");
    let mut deny = time_decisions(&mut engine, &denied_env.to_string(), false);
    deny.report("CreateContainerRequest denied: + LD_PRELOAD", "µs");
    time_decisions(&mut engine, &denied_args.to_string(), false)
        .report("CreateContainerRequest denied: changed args", "µs");
    time_decisions(&mut engine, &denied_image.to_string(), false)
        .report("CreateContainerRequest denied: other image digest", "µs");

    // The floor: the same request, an allow-all policy, the same engine.
    let mut floor_engine = load(ALLOW_ALL, &state);
    let mut floor = time_decisions(&mut floor_engine, &allowed, true);
    floor.report("floor: allow-all policy, same request", "µs");
    // Input parsing alone.
    let mut input = Stats(Vec::with_capacity(EVALS));
    for _ in 0..EVALS {
        let t = Instant::now();
        engine.set_input_json(&allowed).unwrap();
        input.0.push(t.elapsed());
    }
    input.report("of which set_input_json (the request's JSON)", "µs");
    println!(
        "ratio allowed / floor: {:.1}; denied (+ LD_PRELOAD) / floor: {:.1}",
        allow.median().as_secs_f64() / floor.median().as_secs_f64(),
        deny.median().as_secs_f64() / floor.median().as_secs_f64()
    );
}

fn bench_sizes(all: &[Generated]) -> &Generated {
    println!("\n== sizes (bytes), as accord generate wrote them, the initializer included");
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "pod template", "containers", "policy", "init-data", "gzip", "annotation"
    );
    let mut three: Vec<&Generated> = all.iter().filter(|g| g.containers == 3).collect();
    three.sort_by_key(|g| g.annotation);
    let row = |g: &Generated| {
        println!(
            "{:<28} {:>10} {:>10} {:>10} {:>10} {:>10}",
            format!("{} {}/{}", g.kind, g.namespace, g.name),
            g.containers,
            g.policy.len(),
            g.toml,
            g.gzip,
            g.annotation
        );
    };
    let smallest = three[0];
    let largest = three[three.len() - 1];
    let median = three[three.len() / 2];
    println!("three-container pods: {} of {}", three.len(), all.len());
    row(smallest);
    row(median);
    row(largest);
    let biggest = all.iter().max_by_key(|g| g.annotation).unwrap();
    println!("largest annotation of the set:");
    row(biggest);
    let total: usize = all.iter().map(|g| g.annotation).sum();
    println!(
        "all {} annotations together: {total} bytes (mean {})",
        all.len(),
        total / all.len()
    );
    largest
}

fn bench_wall(dir: &Path) {
    println!(
        "\n== accord generate on {PODS} pods ({}), {RUNS} runs after 2 warm-ups",
        env!("CARGO_BIN_EXE_accord")
    );
    for (from_cache, what) in [
        (false, "image facts from --image-facts facts.json"),
        (true, "image facts from a warm --image-cache"),
    ] {
        let args = generate_args(from_cache);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut s = Stats(Vec::with_capacity(RUNS));
        for run in 0..RUNS + 2 {
            let t = Instant::now();
            let out = accord(dir, &refs);
            let elapsed = t.elapsed();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), PODS);
            if run >= 2 {
                s.0.push(elapsed);
            }
        }
        s.report(&format!("wall, {what}"), "ms");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut write_to = None;
    while let Some(a) = args.next() {
        if a == "--write" {
            write_to = args.next();
        }
    }
    if let Some(dir) = write_to {
        let dir = Path::new(&dir);
        prepare(dir);
        println!("wrote the {PODS}-pod set to {}; from there:", dir.display());
        for from_cache in [false, true] {
            println!(
                "hyperfine --warmup 2 --runs 20 '{} {}'",
                env!("CARGO_BIN_EXE_accord"),
                generate_args(from_cache).join(" ")
            );
        }
        return;
    }
    let tmp = std::env::temp_dir().join(format!("accord-bench-generate-{}", std::process::id()));
    prepare(&tmp);

    // One run for the sizes and the policy to evaluate.
    let args = generate_args(false);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = accord(&tmp, &refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = generated(&tmp.join("out"));
    assert_eq!(all.len(), PODS);
    let three = bench_sizes(&all);
    bench_regorus(three);
    bench_wall(&tmp);
    std::fs::remove_dir_all(&tmp).unwrap();
    std::io::stdout().flush().unwrap();
}
