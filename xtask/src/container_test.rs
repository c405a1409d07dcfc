//! `cargo xtask container-test [--host-tools DIR] [--keep]`: the
//! deployment `accord generate` writes, run in real containers pulled by
//! digest from a registry, end to end.
//!
//! 1. `cargo xtask oci --insecure-simulation --push` to a loopback
//!    `docker-registry` ([`LoopbackRegistry`]): the TEST images (the agent
//!    with the INSECURE simulated chip, the shim, and the mesh test
//!    workload `accord-test-mesh-echo`), tagged `VERSION-insecure-simulation`;
//! 2. the simulated chip, made once by the agent image itself
//!    (`reference-values`), in the test node's directory (the generated
//!    YAML mounts it as the `hostPath` `/var/lib/accord/insecure-simulated-chip`);
//!    owner keys; `accord generate --example`'s web and db with their
//!    images replaced by the mesh test workload (db serves, web calls db);
//!    `accord generate --coordinator --insecure-simulation --images
//!    images.json` on them, image facts fetched from the registry;
//! 3. every pod of the generated YAML run with `podman run` (runtime
//!    `runc`), its arguments derived from the YAML ([`kube_pod`]): one
//!    replica of the coordinator (agent and shim), then db and web, each
//!    behind its initializer. The test stands in for what Kubernetes and
//!    Kata add: the Services' names resolve to 127.0.0.1 (every container
//!    shares the host's network namespace, so the coordinator's fixed
//!    ports allow one replica), the shim's API access is a kubeconfig for
//!    the in-test API server (`accord-test-apiserver`) in place of the
//!    service account token, and HOST_DATA, which the hypervisor would set
//!    from the init-data annotation, is passed in
//!    `ACCORD_INSECURE_SIMULATED_HOST_DATA` (SHA-256 of the pod's init-data);
//! 4. `accord set` and `accord verify` from the host; the initializers
//!    write their files, web and db talk mutual TLS through them;
//! 5. `podman restart` of the agent: it comes back in Recovery, `accord
//!    recover` makes it Ready, `accord verify` passes again; recovery
//!    made a new mesh CA, so a new web and the old db refuse each other
//!    until both have attested again, and then talk;
//! 6. teardown: every container (its logs saved in
//!    `target/container-test/logs/`), the pulled images, the API server
//!    and the registry; it checks that none is left.
//!
//! Prints the images' sizes and the timings (`podman run` to the
//! coordinator listening, `accord set` to Ready, restart to listening,
//! `accord recover` to Ready). Needs podman, runc and docker-registry
//! (`.ci/run` installs them) and root (podman's containers and the chip).

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;

use crate::kube_pod::{self, ContainerRun, Launch, Pod};
use crate::loopback_registry::LoopbackRegistry;
use crate::qemu_test::{http_get, tool, wait_ready};
use crate::workspace_root;

/// The label on every container of a run.
const LABEL: &str = "dev.accord.container-test";
/// The coordinator's listening line (guest/src/coordinator).
const LISTENING: &str = "accord-guest coordinator: user API on";
/// The simulated chip's directory, as the generated YAML mounts it.
const CHIP_PATH: &str = "/var/lib/accord/insecure-simulated-chip";
/// Where the kubeconfig goes in a container with API access.
const KUBECONFIG_PATH: &str = "/var/run/accord-container-test/kubeconfig";
/// The ports of the generated coordinator (user API, mesh API, probes).
const USER_API: &str = "127.0.0.1:1313";
const PROBES: u16 = 9102;
/// `podman run`'s options for this machine: podman's default limits
/// (1,048,576 open files) are above what a process without
/// CAP_SYS_RESOURCE may set here, and runc then refuses to start; these
/// are below any machine's.
const RUN_OPTIONS: [&str; 4] = [
    "--ulimit",
    "nofile=4096:4096",
    "--ulimit",
    "nproc=4096:4096",
];
/// The environment variable of the simulated chip's HOST_DATA.
const HOST_DATA_ENV: &str = "ACCORD_INSECURE_SIMULATED_HOST_DATA";

struct Options {
    host_tools: Option<PathBuf>,
    keep: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        host_tools: None,
        keep: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--host-tools" => {
                options.host_tools = Some(PathBuf::from(
                    it.next().context("--host-tools needs a directory")?,
                ));
            }
            "--keep" => options.keep = true,
            other => bail!(
                "container-test: unknown argument `{other}` (expected --host-tools DIR, --keep)"
            ),
        }
    }
    Ok(options)
}

/// `podman` with the runtime this machine needs (crun refuses its
/// cgroups).
fn podman() -> Command {
    let mut command = Command::new("podman");
    command.args(["--runtime", "runc"]);
    command
}

/// Runs podman; returns stdout; fails with its output.
fn podman_ok(args: &[String]) -> anyhow::Result<String> {
    eprintln!("$ podman {}", shown(args));
    let output = podman()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("starting podman (the Debian package `podman`; .ci/run installs it)")?;
    if !output.status.success() {
        bail!(
            "`podman {}` failed ({}):\n{}{}",
            shown(args),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The arguments for a log line, long values cut.
fn shown(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.len() > 120 {
                format!(
                    "{}…",
                    &a[..a.char_indices().nth(100).map_or(a.len(), |(i, _)| i)]
                )
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn strs(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_string()).collect()
}

/// The containers, images, API server and registry of one run: removed
/// on drop, whatever happened.
struct Run {
    id: String,
    /// Where each container's logs are saved before it is removed.
    logs_dir: PathBuf,
    images: Vec<String>,
    /// Every image pulled (still listed after removal, to check).
    pulled: Vec<String>,
    apiserver: Option<Child>,
    registry: Option<LoopbackRegistry>,
}

impl Run {
    fn label(&self) -> String {
        format!("{LABEL}={}", self.id)
    }

    /// The names of this run's containers (all states).
    fn containers(&self) -> anyhow::Result<Vec<String>> {
        let out = podman_ok(&strs(&[
            "ps",
            "--all",
            "--filter",
            &format!("label={}", self.label()),
            "--format",
            "{{.Names}}",
        ]))?;
        Ok(out
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    fn remove_all(&mut self) {
        if let Ok(names) = self.containers()
            && !names.is_empty()
        {
            let _ = std::fs::create_dir_all(&self.logs_dir);
            for name in &names {
                let _ = std::fs::write(self.logs_dir.join(format!("{name}.log")), logs(name));
            }
            let mut args = strs(&["rm", "--force", "--time", "5"]);
            args.extend(names);
            let _ = podman_ok(&args);
        }
        for image in std::mem::take(&mut self.images) {
            let _ = podman_ok(&strs(&["rmi", "--force", &image]));
        }
        if let Some(mut child) = self.apiserver.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        drop(self.registry.take());
    }

    /// Tears down and checks that nothing is left.
    fn tear_down(mut self) -> anyhow::Result<()> {
        if let Some(registry) = self.registry.take() {
            registry.stop()?;
        }
        if let Some(mut child) = self.apiserver.take() {
            // Closing its stdin stops it.
            drop(child.stdin.take());
            let status = child.wait()?;
            if !status.success() {
                bail!("accord-test-apiserver ended with {status}");
            }
        }
        self.remove_all();
        let left = self.containers()?;
        if !left.is_empty() {
            bail!("containers left after teardown: {left:?}");
        }
        let pods = podman_ok(&strs(&[
            "pod",
            "ps",
            "--quiet",
            "--filter",
            &format!("label={}", self.label()),
        ]))?;
        if !pods.trim().is_empty() {
            bail!("podman pods left after teardown: {pods}");
        }
        for image in &self.pulled {
            // `podman images --filter reference=` matches no digest
            // reference; `image exists` does (exit 1: absent).
            let exists = podman()
                .args(["image", "exists", image])
                .status()
                .context("podman image exists")?;
            if exists.success() {
                bail!("image {image} left after teardown");
            }
        }
        Ok(())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// An image of `images.json`.
fn image_reference(images: &serde_json::Value, name: &str) -> anyhow::Result<String> {
    images["images"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["name"] == name))
        .and_then(|e| e["reference"].as_str())
        .map(str::to_string)
        .with_context(|| format!("images.json lists no image {name}"))
}

/// HOST_DATA of a pod: the SHA-256 of its init-data (what Kata's
/// hypervisor sets for SEV-SNP), from the annotation (base64 of gzip).
fn host_data(pod: &Pod) -> anyhow::Result<String> {
    let annotation = pod
        .annotations
        .get(kube_pod::INIT_DATA_ANNOTATION)
        .with_context(|| format!("{}: no init-data annotation", pod.resource))?;
    let compact: String = annotation.split_ascii_whitespace().collect();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .with_context(|| format!("{}: the init-data annotation is not base64", pod.resource))?;
    let mut toml = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut toml)
        .with_context(|| format!("{}: the init-data annotation is not gzip", pod.resource))?;
    Ok(crate::image::sha256_hex(&toml))
}

/// Waits until a TCP connection to `addr` succeeds.
fn wait_listening(addr: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let began = Instant::now();
    loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(began.elapsed());
        }
        if began.elapsed() > timeout {
            bail!("nothing listens on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the agent's state, as its last report to the shim gave it
/// (`accord_state` on the shim's `/metrics`), is `state`.
fn wait_state(state: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let line = format!("accord_state{{state=\"{state}\"}} 1");
    loop {
        let metrics = http_get(PROBES, "/metrics").unwrap_or_default();
        if metrics.lines().any(|l| l.trim() == line) {
            return Ok(began.elapsed());
        }
        if began.elapsed() > timeout {
            bail!("the agent did not report state {state} within {timeout:?}:\n{metrics}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The logs of a container (stdout and stderr), quietly.
fn logs(name: &str) -> String {
    podman()
        .args(["logs", name])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default()
}

/// Waits until the container's logs have `needle` `count` times.
fn wait_log(name: &str, needle: &str, count: usize, timeout: Duration) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        if logs(name).matches(needle).count() >= count {
            return Ok(());
        }
        if began.elapsed() > timeout {
            bail!(
                "{name}: no `{needle}` (#{count}) in its logs after {timeout:?}:\n{}",
                logs(name)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pod launcher: the test's stand-ins for the kubelet and the
/// hypervisor.
struct Node {
    run_id: String,
    root: PathBuf,
    pods: PathBuf,
    kubeconfig: PathBuf,
    hosts: Vec<String>,
}

impl Node {
    fn launch(&self, pod: &Pod) -> anyhow::Result<Launch> {
        let mut env = vec![(HOST_DATA_ENV.to_string(), host_data(pod)?)];
        let mut mounts = Vec::new();
        if pod.has_api_access() {
            env.push(("KUBECONFIG".to_string(), KUBECONFIG_PATH.to_string()));
            mounts.push((self.kubeconfig.clone(), KUBECONFIG_PATH.to_string(), true));
        }
        Ok(Launch {
            prefix: "accord-ct".to_string(),
            label: format!("{LABEL}={}", self.run_id),
            pod_dir: self.pods.join(&pod.name),
            node_root: self.root.clone(),
            hosts: self.hosts.clone(),
            env,
            mounts,
        })
    }

    /// Runs the pod's init containers to completion, then starts its
    /// containers (detached); returns them and when the first started.
    fn start(&self, pod: &Pod) -> anyhow::Result<(Vec<ContainerRun>, Instant)> {
        let launch = self.launch(pod)?;
        for dir in pod.empty_dirs(&launch) {
            std::fs::create_dir_all(&dir)?;
            // The kubelet's emptyDir is world-writable.
            set_mode(&dir, 0o777)?;
        }
        let (init, containers) = pod.runs(&launch)?;
        for c in &init {
            let mut args = strs(&["run"]);
            args.extend(strs(&RUN_OPTIONS));
            args.extend(c.args.iter().cloned());
            let began = Instant::now();
            podman_ok(&args).with_context(|| {
                format!(
                    "{}: init container {} failed:\n{}",
                    pod.name,
                    c.name,
                    logs(&c.podman_name)
                )
            })?;
            println!(
                "  {}: init container {} done in {:.2} s",
                pod.name,
                c.name,
                began.elapsed().as_secs_f64()
            );
        }
        let started = Instant::now();
        for c in &containers {
            let mut args = strs(&["run", "--detach"]);
            args.extend(strs(&RUN_OPTIONS));
            args.extend(c.args.iter().cloned());
            podman_ok(&args)?;
        }
        Ok((containers, started))
    }
}

impl Node {
    /// Removes the pod's containers (init containers too).
    fn remove(&self, pod: &Pod) -> anyhow::Result<()> {
        let (init, containers) = pod.runs(&self.launch(pod)?)?;
        let mut args = strs(&["rm", "--force", "--time", "5"]);
        args.extend(
            init.iter()
                .chain(&containers)
                .map(|c| c.podman_name.clone()),
        );
        podman_ok(&args)?;
        // The pod's emptyDir volumes end with it.
        let dir = self.pods.join(&pod.name);
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
    }
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Makes everything under `dir` readable by every user (the simulated
/// chip: its keys are INSECURE by design; the initializers run as 65532).
fn readable_by_all(dir: &Path) -> anyhow::Result<()> {
    set_mode(dir, 0o755)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            readable_by_all(&entry.path())?;
        } else {
            set_mode(&entry.path(), 0o644)?;
        }
    }
    Ok(())
}

/// Rewrites the example's workload: its synthetic image becomes the mesh
/// test workload, with `args`.
fn use_mesh_image(yaml: &str, image: &str, args: &[&str]) -> anyhow::Result<String> {
    let line = yaml
        .lines()
        .find(|l| l.trim_start().starts_with("image: registry.example/"))
        .context("the example workload has no synthetic image line")?;
    let indent = &line[..line.len() - line.trim_start().len()];
    Ok(yaml.replace(
        line,
        &format!(
            "{indent}image: {image}\n{indent}args: {}",
            serde_json::to_string(args)?
        ),
    ))
}

/// The API server: started, its URL read from its first line.
fn start_apiserver(binary: &Path, log: &Path) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log)?))
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("accord-test-apiserver: serving ")
        .with_context(|| format!("accord-test-apiserver said {line:?}"))?
        .to_string();
    Ok((child, url))
}

/// A kubeconfig for the in-test API server at `url` (plain HTTP), with
/// `ca_pem` as its CA: in a cluster the service account's `ca.crt` is
/// always there, and kube builds its TLS configuration even for HTTP,
/// from the platform's roots when no CA is given (the images have none).
fn kubeconfig_yaml(url: &str, ca_pem: &[u8]) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: container-test\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: container-test\n  user: {{}}\ncontexts:\n- name: container-test\n  context:\n    cluster: container-test\n    user: container-test\n    namespace: default\ncurrent-context: container-test\n"
    )
}

/// `cargo xtask container-test ARGS`.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let total = Instant::now();
    for (tool, package) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("docker-registry", "docker-registry"),
    ] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map_or(true, |s| !s.success())
        {
            bail!("container-test needs `{tool}` (Debian package {package}; .ci/run installs it)");
        }
    }
    let root = workspace_root();
    let work = root.join("target/container-test");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    eprintln!("work directory: {}", work.display());
    let mut run = Run {
        id: format!("{}-{}", std::process::id(), total.elapsed().as_nanos()),
        logs_dir: work.join("logs"),
        images: Vec::new(),
        pulled: Vec::new(),
        apiserver: None,
        registry: None,
    };
    let mut timings = Vec::new();

    // 1. The test images, pushed.
    let registry = LoopbackRegistry::start(&work.join("registry"))?;
    let registry_addr = registry.addr.clone();
    run.registry = Some(registry);
    let oci = work.join("oci");
    crate::oci::run(&strs(&[
        "--insecure-simulation",
        "--out",
        &oci.display().to_string(),
        "--push",
        &registry_addr,
    ]))?;
    let images: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("images.json"))?)?;
    let agent = image_reference(&images, "accord-agent-insecure-simulation")?;
    let shim = image_reference(&images, "accord-shim")?;
    let mesh = image_reference(&images, "accord-test-mesh-echo")?;
    let mut pulls = Vec::new();
    for image in [&agent, &shim, &mesh] {
        let began = Instant::now();
        podman_ok(&strs(&["pull", "--quiet", "--tls-verify=false", image]))?;
        run.images.push(image.clone());
        run.pulled.push(image.clone());
        pulls.push(format!("{:.2} s", began.elapsed().as_secs_f64()));
    }
    timings.push(format!(
        "podman pull by digest (agent, shim, mesh): {}",
        pulls.join(", ")
    ));

    // 2. Host tools, the chip, keys, the plain YAML, generate.
    let bin = match &options.host_tools {
        Some(dir) => {
            std::fs::canonicalize(dir).with_context(|| format!("--host-tools {}", dir.display()))?
        }
        None => crate::build_bins(false, &["accord-cli"])?,
    };
    let accord = bin.join("accord");
    if !accord.is_file() {
        bail!("no accord in {}", bin.display());
    }
    crate::run(
        "cargo",
        &[
            "build",
            "-p",
            "accord-shim",
            "--features",
            "test-apiserver",
            "--bin",
            "accord-test-apiserver",
        ],
    )?;
    let apiserver_bin = root.join("target/debug/accord-test-apiserver");

    let node_root = work.join("node");
    let chip = node_root.join(CHIP_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(&chip)?;
    let mut args = strs(&["run"]);
    args.extend(strs(&RUN_OPTIONS));
    args.extend(strs(&[
        "--rm",
        "--label",
        &run.label(),
        "--network",
        "none",
        "--user",
        "0:0",
        "--volume",
        &format!("{}:{CHIP_PATH}", chip.display()),
        &agent,
        "reference-values",
        "--tee",
        "insecure-simulated",
    ]));
    let refvals = podman_ok(&args)?;
    readable_by_all(&chip)?;
    std::fs::write(work.join("refvals.json"), &refvals)?;
    tool(&accord, &["keys", "new", "--workload-owner"], &work)?;
    tool(&accord, &["keys", "new", "--seedshare-owner"], &work)?;
    tool(&accord, &["generate", "--example", "plain"], &work)?;
    let db_port = crate::qemu_test::free_port()?;
    let db_addr = format!("127.0.0.1:{db_port}");
    let plain = work.join("plain");
    for (who, args) in [
        (
            "db",
            vec!["serve", "--tls", "/accord", "--listen", &db_addr],
        ),
        (
            "web",
            vec![
                "call",
                "--tls",
                "/accord",
                "--connect",
                &db_addr,
                "--server-name",
                "db",
                "--retry-for",
                "60",
            ],
        ),
    ] {
        let path = plain.join(format!("{who}.yaml"));
        let yaml = std::fs::read_to_string(&path)?;
        std::fs::write(&path, use_mesh_image(&yaml, &mesh, &args)?)?;
    }
    let hashes = tool(
        &accord,
        &[
            "generate",
            "--coordinator",
            "--insecure-simulation",
            "--platform",
            "qemu-snp",
            "--images",
            "oci/images.json",
            "--reference-values",
            "refvals.json",
            "--add-workload-owner-key",
            "workload-owner.pem",
            "--add-seedshare-owner-key",
            "seedshare-owner.pem",
            "--insecure-registry",
            &registry_addr,
            "--image-cache",
            "image-cache",
            "-m",
            "manifest.json",
            "-o",
            "deploy",
            "plain/web.yaml",
            "plain/db.yaml",
        ],
        &work,
    )?;
    std::fs::write(work.join("hashes.txt"), &hashes)?;

    // 3. The control plane and the node.
    let (apiserver, api_url) = start_apiserver(&apiserver_bin, &work.join("apiserver.log"))?;
    run.apiserver = Some(apiserver);
    let kubeconfig = work.join("kubeconfig");
    // A throwaway CA (nothing is signed with it: the server is HTTP).
    tool(
        Path::new("openssl"),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "apiserver-ca.key",
            "-subj",
            "/CN=accord container-test API server",
            "-days",
            "1",
            "-out",
            "apiserver-ca.pem",
        ],
        &work,
    )?;
    let ca_pem = std::fs::read(work.join("apiserver-ca.pem"))?;
    std::fs::write(&kubeconfig, kubeconfig_yaml(&api_url, &ca_pem))?;
    set_mode(&kubeconfig, 0o644)?;
    let mut hosts = Vec::new();
    for service in ["coordinator", "coordinator-ready"] {
        hosts.extend([
            service.to_string(),
            format!("{service}.default"),
            format!("{service}.default.svc"),
            format!("{service}.default.svc.cluster.local"),
        ]);
    }
    let node = Node {
        run_id: run.id.clone(),
        root: node_root,
        pods: work.join("pods"),
        kubeconfig,
        hosts,
    };
    let read = |file: &str| -> anyhow::Result<Vec<Pod>> {
        let path = work.join("deploy").join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        kube_pod::pods(&text).with_context(|| format!("{}", path.display()))
    };
    let coordinator = read("coordinator.yaml")?.remove(0);
    let db = read("db.yaml")?.remove(0);
    let web = read("web.yaml")?.remove(0);
    // The hashes generate printed are the ones the annotations carry.
    for pod in [&coordinator, &db, &web] {
        let hash = host_data(pod)?;
        if !hashes.lines().any(|l| l.starts_with(&hash)) {
            bail!(
                "{}: HOST_DATA {hash} is not among generate's hashes:\n{hashes}",
                pod.resource
            );
        }
    }

    // 4. The coordinator, set, verify.
    let (containers, started) = node.start(&coordinator)?;
    let agent_name = containers
        .iter()
        .find(|c| c.name == "agent")
        .map(|c| c.podman_name.clone())
        .context("the coordinator pod has no agent container")?;
    wait_listening(USER_API, Duration::from_secs(60))?;
    let listening = started.elapsed();
    wait_log(&agent_name, LISTENING, 1, Duration::from_secs(10))?;
    timings.push(format!(
        "coordinator: listening {:.3} s after `podman run`",
        listening.as_secs_f64()
    ));
    // The agent may have asked the store before the shim listened (the
    // containers of a pod start together): an unreadable store is not an
    // empty one, so it waits in Recovery and asks again (every 5 s).
    let uninitialized = wait_state("uninitialized", Duration::from_secs(60))?;
    timings.push(format!(
        "coordinator: reported Uninitialized {:.3} s after `podman run` (waited {:.3} s)",
        started.elapsed().as_secs_f64(),
        uninitialized.as_secs_f64()
    ));
    let insecure = "--insecure-simulation";
    let set_began = Instant::now();
    tool(
        &accord,
        &[
            "set",
            "-c",
            USER_API,
            "-m",
            "manifest.json",
            "--timeout",
            "60",
            insecure,
            "--offline",
        ],
        &work,
    )?;
    let set_took = set_began.elapsed();
    wait_ready(PROBES, Duration::from_secs(60))?;
    timings.push(format!(
        "coordinator: Ready {:.3} s after `accord set` began (the command took {:.3} s)",
        set_began.elapsed().as_secs_f64(),
        set_took.as_secs_f64()
    ));
    let verify = [
        "verify",
        "-c",
        USER_API,
        "-m",
        "manifest.json",
        "--timeout",
        "60",
        insecure,
        "--offline",
    ];
    tool(&accord, &verify, &work)?;

    // 5. db and web, each behind its initializer; web calls db.
    let (db_containers, _) = node.start(&db)?;
    let (web_containers, _) = node.start(&web)?;
    let exchange = exchange_result(
        &web_containers[0].podman_name,
        &db_containers[0].podman_name,
    )?;
    println!("  web got: {exchange}");

    // 6. Restart the agent: Recovery, recover, Ready.
    let restart_began = Instant::now();
    podman_ok(&strs(&["restart", "--time", "10", &agent_name]))?;
    wait_log(&agent_name, LISTENING, 2, Duration::from_secs(60))?;
    timings.push(format!(
        "coordinator: listening again {:.3} s after `podman restart` began",
        restart_began.elapsed().as_secs_f64()
    ));
    wait_state("recovery", Duration::from_secs(30))?;
    if let Ok(answer) = http_get(PROBES, "/probe/readiness")
        && answer.starts_with("HTTP/1.1 200")
    {
        bail!("the restarted coordinator is Ready before `accord recover`: it kept its secrets?");
    }
    println!("  the restarted coordinator is in recovery, as expected");
    let recover_began = Instant::now();
    tool(
        &accord,
        &[
            "recover",
            "-c",
            USER_API,
            "--timeout",
            "60",
            "--seedshare-key",
            "seedshare-owner.pem",
            "--seed-shares",
            "seed-shares.json",
            insecure,
            "--offline",
        ],
        &work,
    )?;
    wait_ready(PROBES, Duration::from_secs(60))?;
    timings.push(format!(
        "coordinator: Ready {:.3} s after `accord recover` began",
        recover_began.elapsed().as_secs_f64()
    ));
    tool(&accord, &verify, &work)?;
    // Recovery brings a new mesh CA: a web attesting now is refused by
    // the db of before (and refuses it), until db attests again too.
    node.remove(&web)?;
    let (web_containers, _) = node.start(&web)?;
    let web_name = &web_containers[0].podman_name;
    let code = podman_ok(&strs(&["wait", web_name]))?;
    let out = logs(web_name);
    if code.trim() == "0" || !out.contains("invalid peer certificate") {
        bail!(
            "web of the new mesh CA was not refused by db of the old one (exit {}):\n{out}",
            code.trim()
        );
    }
    println!("  web of the new mesh CA and db of the old one refuse each other, as expected");
    node.remove(&web)?;
    node.remove(&db)?;
    let (db_containers, _) = node.start(&db)?;
    let (web_containers, _) = node.start(&web)?;
    let exchange = exchange_result(
        &web_containers[0].podman_name,
        &db_containers[0].podman_name,
    )?;
    println!("  web (after recovery, both attested again) got: {exchange}");

    // 7. Teardown.
    if options.keep {
        println!(
            "--keep: containers left running; remove them with `podman rm -f $(podman ps -aq --filter label={})`",
            run.label()
        );
        std::mem::forget(run);
    } else {
        run.tear_down()?;
    }
    println!(
        "container-test passed ({:.1} s in all)",
        total.elapsed().as_secs_f64()
    );
    for entry in images["images"].as_array().into_iter().flatten() {
        println!(
            "  image {}: {} bytes compressed, {} uncompressed",
            entry["name"].as_str().unwrap_or("?"),
            entry["compressed_size"],
            entry["uncompressed_size"]
        );
    }
    for line in timings {
        println!("  {line}");
    }
    println!("  files: {}", work.display());
    Ok(())
}

/// Waits for web's container to exit; it must have exited 0 and printed
/// db's answer, over mutual TLS.
fn exchange_result(web: &str, db: &str) -> anyhow::Result<String> {
    let code = podman_ok(&strs(&["wait", web]))?;
    let out = logs(web);
    if code.trim() != "0" {
        bail!(
            "web exited {}:\n{out}\ndb's logs:\n{}",
            code.trim(),
            logs(db)
        );
    }
    let line = out
        .lines()
        .find(|l| l.contains("mutual TLS"))
        .with_context(|| format!("web printed no answer over mutual TLS:\n{out}"))?;
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_workload_gets_the_mesh_image() {
        let yaml = "spec:\n  containers:\n    - name: db\n      image: registry.example/accord-demo/db@sha256:00\n";
        let out =
            use_mesh_image(yaml, "r/m@sha256:11", &["serve", "--listen", "127.0.0.1:1"]).unwrap();
        assert_eq!(
            out,
            "spec:\n  containers:\n    - name: db\n      image: r/m@sha256:11\n      args: [\"serve\",\"--listen\",\"127.0.0.1:1\"]\n"
        );
        assert!(use_mesh_image("image: r/x\n", "m", &[]).is_err());
    }

    #[test]
    fn arguments() {
        let o = parse(&strs(&["--host-tools", "t", "--keep"])).unwrap();
        assert_eq!(o.host_tools, Some(PathBuf::from("t")));
        assert!(o.keep);
        assert!(parse(&strs(&["--nope"])).is_err());
    }
}
