//! `cargo xtask qemu-test`: boots the guest image under QEMU and drives a
//! deployment against it from the host.
//!
//! 1. the TEST image ([`image::build_test`]: the production recipe, but
//!    an agent built with the `insecure-simulation` feature and
//!    `accord.tee=insecure-simulated` on the command line; hashes printed
//!    as `test-…`, output in `target/image/test-out/`), plus the host
//!    tools (`accord`, `accord-shim`, `accord-guest`) from the workspace's
//!    dev build (`target/debug`, the one `cargo test` makes);
//! 2. on the host: an INSECURE simulated chip (`accord-guest
//!    reference-values --state WORK/chip`), policies, keys, resources and
//!    `accord manifest generate` trusting that chip;
//! 3. a test initramfs: the image's initramfs followed by a second gzip'd
//!    cpio carrying the chip as `/etc/accord/insecure-simulated-chip/`
//!    (the kernel unpacks concatenated archives in order). The VM's
//!    coordinator and the host's initializer thus share one simulated chip,
//!    the same on every boot; the image itself carries no chip;
//! 4. `accord-shim --listen 127.0.0.1:P` (filesystem store in WORK/store);
//!    the VM reaches it at 10.0.2.2:P through QEMU user networking;
//! 5. boot 1: QEMU (`-accel tcg -cpu max`, serial console to
//!    WORK/boot-N.log), wait for the coordinator's listening line, check
//!    the configfs-tsm line; `accord set`, `accord-guest initializer` on
//!    the host against the VM's mesh API, `accord verify`;
//! 6. Ctrl-Alt-Del through QEMU's monitor: init stops the coordinator and
//!    powers off, and QEMU must exit by itself; boot 2: the coordinator
//!    comes back in recovery (history on the host's shim, secrets gone with
//!    the VM's memory); `accord recover`, an initializer, `accord verify`
//!    again; with `--attestations N`, N attestations from the host
//!    (`accord-demo bench attest`) and the agent's RSS before and after; Ctrl-Alt-Del;
//! 7. prints the timings (QEMU start → first init line → listening →
//!    Ready, shutdown) and the agent's RSS.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::image::{self, Entry};

/// The listening line of the coordinator (guest/src/coordinator).
const LISTENING: &str = "accord-guest coordinator: user API on";
/// The first line of the init.
const INIT_START: &str = "accord-guest init: starting";
/// The coordinator's log line when it starts without secrets.
const RECOVERY: &str = "state recovery";
/// The configfs-tsm provider's error when the kernel has no TSM provider.
const NO_TSM_PROVIDER: &str = "TEE provider configfs-tsm unavailable: no TSM provider: creating /sys/kernel/config/tsm/report/";
/// The init's line when the coordinator has stopped cleanly.
const POWER_OFF: &str = "accord-guest init: the coordinator stopped; powering off";
/// The configfs-tsm probe line of the init.
const CONFIGFS_TSM: &str = "accord-guest init: configfs-tsm: ";

/// A Kata init-data document naming `who` (as `accord-demo demo` writes).
fn policy_toml(who: &str) -> String {
    format!(
        "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"policy.rego\" = \"\"\"\npackage agent_policy\n\n# accord qemu-test: the {who} pod's policy\ndefault CreateContainerRequest := true\ndefault ExecProcessRequest := false\n\"\"\"\n"
    )
}

struct Options {
    accel: String,
    timeout: Duration,
    /// Attestations to run against the VM before the last shutdown (with
    /// the agent's RSS before and after); 0: none.
    attestations: u64,
    /// Take `accord`, `accord-shim` and `accord-guest` from here instead
    /// of building them (CI: the build `cargo test` just made).
    host_tools: Option<PathBuf>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        accel: "tcg".to_string(),
        timeout: Duration::from_secs(180),
        attestations: 0,
        host_tools: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--accel" => {
                options.accel = it.next().context("--accel needs tcg or kvm")?.clone();
                if options.accel != "tcg" && options.accel != "kvm" {
                    bail!("--accel: tcg or kvm, not `{}`", options.accel);
                }
            }
            "--timeout" => {
                let secs: u64 = it
                    .next()
                    .context("--timeout needs seconds")?
                    .parse()
                    .context("--timeout: not a number")?;
                options.timeout = Duration::from_secs(secs);
            }
            "--attestations" => {
                options.attestations = it
                    .next()
                    .context("--attestations needs a count")?
                    .parse()
                    .context("--attestations: not a number")?;
            }
            "--host-tools" => {
                options.host_tools = Some(PathBuf::from(
                    it.next().context("--host-tools needs a directory")?,
                ));
            }
            other => bail!(
                "qemu-test: unknown argument `{other}` (flags: --accel tcg|kvm, --timeout SECONDS, --attestations N, --host-tools DIR)"
            ),
        }
    }
    Ok(options)
}

/// A free loopback port (bound and released).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child killed (SIGKILL) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.monitor);
    }
}

/// Runs a host tool in `dir`; returns its stdout; fails with its output.
pub(crate) fn tool(program: &Path, args: &[&str], dir: &Path) -> anyhow::Result<String> {
    let name = program
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    eprintln!("$ {name} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", program.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "`{name} {}` failed ({}):\n{stdout}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for line in stdout.lines().take(6) {
        eprintln!("    {line}");
    }
    Ok(stdout)
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A booted VM: QEMU and its console log.
struct Vm {
    qemu: Killed,
    log: PathBuf,
    monitor: PathBuf,
    started: Instant,
}

impl Vm {
    /// Waits until the log has a line containing `marker`; returns the
    /// time since QEMU started.
    fn wait_for(
        &mut self,
        marker: &str,
        timeout: Duration,
        accel: &str,
    ) -> anyhow::Result<Duration> {
        loop {
            let text = std::fs::read(&self.log).unwrap_or_default();
            if String::from_utf8_lossy(&text).contains(marker) {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.qemu.0.try_wait()? {
                bail!(
                    "QEMU exited ({status}) before `{marker}`; last 40 lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 40)
                );
            }
            if self.started.elapsed() > timeout {
                let hint = if accel == "kvm" {
                    " (with --accel kvm: this machine's /dev/kvm may not run a normal guest kernel; the default is TCG)"
                } else {
                    ""
                };
                bail!(
                    "no `{marker}` on the console within {timeout:?}{hint}; last 40 lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Shuts the VM down the way an operator would: Ctrl-Alt-Del through
    /// QEMU's monitor, which the guest's init turns into a graceful stop
    /// of the coordinator and a power-off. Fails (with the console's tail)
    /// unless QEMU exits by itself within `timeout` after the init's
    /// power-off line; adds the time it took to `timings`, as `boot`'s.
    fn shut_down(
        mut self,
        timeout: Duration,
        boot: &str,
        timings: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        use std::io::Write;
        let began = Instant::now();
        let mut monitor = std::os::unix::net::UnixStream::connect(&self.monitor)
            .with_context(|| format!("connecting to QEMU's monitor {}", self.monitor.display()))?;
        monitor.write_all(b"sendkey ctrl-alt-delete\n")?;
        while began.elapsed() < timeout {
            if let Some(status) = self.qemu.0.try_wait()? {
                let console = std::fs::read_to_string(&self.log).unwrap_or_default();
                if !console.contains(POWER_OFF) {
                    bail!(
                        "QEMU exited ({status}) without the init's `{POWER_OFF}` line; last 40 lines of {}:\n{}",
                        self.log.display(),
                        tail(&self.log, 40)
                    );
                }
                timings.push(format!(
                    "{boot}: Ctrl-Alt-Del → powered off {:.2} s",
                    began.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "the VM did not power off within {timeout:?} of Ctrl-Alt-Del; last 40 lines of {}:\n{}",
            self.log.display(),
            tail(&self.log, 40)
        )
    }
}

struct Ports {
    user: u16,
    mesh: u16,
}

fn boot(
    kernel: &Path,
    initrd: &Path,
    cmdline: &str,
    ports: &Ports,
    log: &Path,
    accel: &str,
) -> anyhow::Result<Vm> {
    let nic = format!(
        "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{}-10.0.2.15:1313,hostfwd=tcp:127.0.0.1:{}-10.0.2.15:7777",
        ports.user, ports.mesh
    );
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    // A Unix socket path is limited to 108 bytes: keep it short.
    let monitor = std::env::temp_dir().join(format!(
        "accord-qemu-{}-{}.monitor",
        std::process::id(),
        log.file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    ));
    let _ = std::fs::remove_file(&monitor);
    let mut command = Command::new("qemu-system-x86_64");
    command.args(["-accel", accel]);
    if accel == "tcg" {
        command.args(["-cpu", "max"]);
    } else {
        command.args(["-cpu", "host"]);
    }
    command
        .args(["-m", "512", "-smp", "1", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", cmdline])
        .args(["-nic", &nic])
        .arg("-monitor")
        .arg(format!("unix:{},server=on,wait=off", monitor.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone()?))
        .stderr(Stdio::from(file));
    eprintln!("$ {command:?}");
    let started = Instant::now();
    let child = command
        .spawn()
        .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    Ok(Vm {
        qemu: Killed(child),
        log: log.to_path_buf(),
        monitor,
        started,
    })
}

/// Boots and waits for the coordinator; prints the timings.
fn boot_until_listening(
    image: (&Path, &Path, &str),
    ports: &Ports,
    log: &Path,
    options: &Options,
    timings: &mut Vec<String>,
) -> anyhow::Result<Vm> {
    let mut vm = boot(image.0, image.1, image.2, ports, log, &options.accel)?;
    let first = vm.wait_for(INIT_START, options.timeout, &options.accel)?;
    let listening = vm.wait_for(LISTENING, options.timeout, &options.accel)?;
    let line = format!(
        "{}: QEMU start → first init line {:.2} s → coordinator listening {:.2} s",
        log.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        first.as_secs_f64(),
        listening.as_secs_f64()
    );
    eprintln!("{line}");
    timings.push(line);
    Ok(vm)
}

/// One HTTP/1.1 GET to the shim's probes port; returns the whole answer.
pub(crate) fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Polls the shim's readiness probe until it answers 200.
pub(crate) fn wait_ready(probes: u16, timeout: Duration) -> anyhow::Result<Duration> {
    let began = Instant::now();
    loop {
        if let Ok(answer) = http_get(probes, "/probe/readiness")
            && (answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"))
        {
            return Ok(began.elapsed());
        }
        if began.elapsed() > timeout {
            bail!("the shim's readiness probe did not answer 200 within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `web` workload's initializer on the host (same chip as the VM,
/// launched with web-policy.toml) against the VM's mesh API, pinning the
/// coordinator and the deployment as the manifest names them.
fn initialize(guest: &Path, mesh: &str, out: &str, work: &Path) -> anyhow::Result<()> {
    tool(
        guest,
        &[
            "initializer",
            "--coordinator",
            mesh,
            "--out",
            out,
            "--max-attempts",
            "5",
            "--tee",
            "insecure-simulated",
            "--state",
            "chip",
            "--policy",
            "web-policy.toml",
            "--trust-manifest",
            "manifest.json",
        ],
        work,
    )?;
    if !work.join(out).join("tls-config/certChain.pem").exists() {
        bail!("the initializer wrote no {out}/tls-config/certChain.pem");
    }
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// The agent's RSS as its last status report to the shim gave it
/// (`accord_agent_resident_bytes` on the shim's `/metrics`).
fn resident_bytes(probes: u16) -> anyhow::Result<u64> {
    let metrics = http_get(probes, "/metrics")?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("accord_agent_resident_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .filter(|&bytes| bytes > 0)
        .with_context(|| {
            format!("no accord_agent_resident_bytes on the shim's /metrics:\n{metrics}")
        })
}

/// [`resident_bytes`] once the agent has reported at all.
fn wait_resident_bytes(probes: u16, timeout: Duration) -> anyhow::Result<u64> {
    let began = Instant::now();
    loop {
        match resident_bytes(probes) {
            Ok(bytes) => return Ok(bytes),
            Err(err) if began.elapsed() > timeout => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `n` attestations from the host (`accord-demo bench attest`, 16 simulated
/// workloads) against the VM's mesh API; then the agent's RSS once its
/// next status report is in.
fn attest_load(
    demo: &Path,
    mesh: &str,
    probes: u16,
    n: u64,
    work: &Path,
) -> anyhow::Result<String> {
    let stop_after = n.to_string();
    let began = Instant::now();
    let report = tool(
        demo,
        &[
            "bench",
            "attest",
            "-c",
            mesh,
            "--state",
            "chip",
            "--policy",
            "web-policy.toml",
            "--coordinator-policy",
            &image::sha256_hex(policy_toml("coordinator").as_bytes()),
            "--concurrency",
            "16",
            "--warmup",
            "0",
            "--duration",
            "36000",
            "--stop-after",
            &stop_after,
            "--json",
        ],
        work,
    )?;
    let took = began.elapsed();
    let json: serde_json::Value =
        serde_json::from_str(report.trim()).context("`accord-demo bench attest --json` output")?;
    let number = |key: &str| json[key].as_f64().unwrap_or(f64::NAN);
    if json["errors"].as_u64() != Some(0) || json["total_ok"].as_u64().unwrap_or(0) < n {
        bail!("the attestation load failed: {report}");
    }
    // The agent reports every 2 s: wait for a report made after the load.
    std::thread::sleep(Duration::from_secs(5));
    let after = resident_bytes(probes)?;
    Ok(format!(
        "boot-2: agent RSS {:.1} MiB after {n} more attestations ({:.0} s, {:.1}/s, p50 {:.0} ms, p99 {:.0} ms, 16 workloads, TCG)",
        mib(after),
        took.as_secs_f64(),
        number("attestations_per_s"),
        number("p50_ms"),
        number("p99_ms"),
    ))
}

/// Runs the whole test.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let total = Instant::now();
    let built = image::build_test()?;
    let bin = match &options.host_tools {
        Some(dir) => {
            for tool in ["accord", "accord-demo", "accord-shim", "accord-guest"] {
                if !dir.join(tool).is_file() {
                    bail!("--host-tools {}: no {tool} there", dir.display());
                }
            }
            std::fs::canonicalize(dir)?
        }
        // The workspace's dev build, the one `cargo test` makes.
        None => crate::build_bins(
            false,
            &["accord-cli", "accord-demo", "accord-guest", "accord-shim"],
        )?,
    };
    let (accord, demo, shim, guest) = (
        bin.join("accord"),
        bin.join("accord-demo"),
        bin.join("accord-shim"),
        bin.join("accord-guest"),
    );

    let work = image::image_dir().join("qemu-test");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("resources"))?;
    eprintln!("work directory: {}", work.display());

    // The chip and the deployment files.
    let refvals = tool(
        &guest,
        &[
            "reference-values",
            "--tee",
            "insecure-simulated",
            "--state",
            "chip",
        ],
        &work,
    )?;
    std::fs::write(work.join("refvals.json"), refvals)?;
    for who in ["coordinator", "web"] {
        std::fs::write(work.join(format!("{who}-policy.toml")), policy_toml(who))?;
    }
    for (who, kind, role) in [
        (
            "coordinator",
            "StatefulSet",
            "        accord.dev/pod-role: coordinator\n",
        ),
        ("web", "Deployment", ""),
    ] {
        let annotation = tool(
            &accord,
            &["policy", "annotate", &format!("{who}-policy.toml")],
            &work,
        )?;
        let service = if kind == "StatefulSet" {
            format!("  serviceName: {who}\n")
        } else {
            String::new()
        };
        let yaml = format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {who}\n  namespace: default\nspec:\n{service}  replicas: 1\n  selector:\n    matchLabels:\n      app: {who}\n  template:\n    metadata:\n      labels:\n        app: {who}\n      annotations:\n        io.katacontainers.config.hypervisor.cc_init_data: \"{}\"\n{role}    spec:\n      runtimeClassName: kata-cc\n      containers:\n        - name: {who}\n          image: registry.example/accord-qemu-test/{who}:1.0\n",
            annotation.trim()
        );
        std::fs::write(work.join(format!("resources/{who}.yaml")), yaml)?;
    }
    tool(&accord, &["keys", "new", "--workload-owner"], &work)?;
    tool(&accord, &["keys", "new", "--seedshare-owner"], &work)?;
    tool(
        &accord,
        &[
            "manifest",
            "generate",
            "resources",
            "--reference-values",
            "refvals.json",
            "--workload-owner-key",
            "workload-owner.pem",
            "--seedshare-owner-key",
            "seedshare-owner.pem",
        ],
        &work,
    )?;

    // The test initramfs: the image's, then the chip.
    let mut overlay = std::collections::BTreeMap::new();
    let mut path = String::new();
    for part in ["etc", "accord", "insecure-simulated-chip"] {
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
        overlay.insert(path.clone(), Entry::Dir { mode: 0o755 });
    }
    for entry in std::fs::read_dir(work.join("chip"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            overlay.insert(
                format!("{path}/{}", entry.file_name().to_string_lossy()),
                Entry::File {
                    mode: 0o600,
                    data: std::fs::read(entry.path())?,
                },
            );
        }
    }
    let mut initrd = std::fs::read(&built.initramfs)?;
    initrd.extend_from_slice(&image::gzip(&image::cpio(&overlay, 0))?);
    let initrd_path = work.join("initramfs-test.cpio.gz");
    std::fs::write(&initrd_path, initrd)?;

    // The shim on the host.
    let (channel, probes) = (free_port()?, free_port()?);
    let shim_log = std::fs::File::create(work.join("shim.log"))?;
    let mut shim_command = Command::new(&shim);
    shim_command
        .args(["--listen", &format!("127.0.0.1:{channel}")])
        .args(["--probes", &format!("127.0.0.1:{probes}")])
        .arg("--store")
        .arg(work.join("store"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(shim_log.try_clone()?))
        .stderr(Stdio::from(shim_log));
    let _shim = Killed(shim_command.spawn().context("starting accord-shim")?);

    let host_data = image::sha256_hex(policy_toml("coordinator").as_bytes());
    let cmdline = format!(
        "{} accord.shim=10.0.2.2:{channel} accord.host-data={host_data}",
        built.cmdline
    );
    println!("test cmdline: {cmdline}");
    let ports = Ports {
        user: free_port()?,
        mesh: free_port()?,
    };
    let user = format!("127.0.0.1:{}", ports.user);
    let mesh = format!("127.0.0.1:{}", ports.mesh);
    let mut timings = Vec::new();
    let img = (
        built.kernel.as_path(),
        initrd_path.as_path(),
        cmdline.as_str(),
    );

    // Boot 1: set, attest, verify.
    let log1 = work.join("boot-1.log");
    let vm = boot_until_listening(img, &ports, &log1, &options, &mut timings)?;
    let console = std::fs::read_to_string(&log1).unwrap_or_default();
    let tsm_line = console
        .lines()
        .find(|l| l.contains(CONFIGFS_TSM))
        .with_context(|| {
            format!(
                "no `{CONFIGFS_TSM}` line on the console ({})",
                log1.display()
            )
        })?;
    println!("console: {}", tsm_line.trim());
    // No SEV-SNP or TDX here: the provider must have failed with its own
    // clear error on the real /sys/kernel/config/tsm/report.
    if !tsm_line.contains(NO_TSM_PROVIDER) {
        bail!("the configfs-tsm probe did not fail with `{NO_TSM_PROVIDER}`: {tsm_line}");
    }
    let fresh = wait_resident_bytes(probes, Duration::from_secs(30))?;
    timings.push(format!(
        "boot-1: agent RSS {:.1} MiB (listening, uninitialized)",
        mib(fresh)
    ));
    let timeout = "60";
    // The manifest trusts the simulated chip: --insecure-simulation. Its
    // evidence carries its collateral (VCEK, CRL): --offline, no vendor.
    let insecure = "--insecure-simulation";
    let offline = "--offline";
    let verify = [
        "verify",
        "-c",
        &user,
        "--timeout",
        timeout,
        insecure,
        offline,
    ];
    tool(
        &accord,
        &["set", "-c", &user, "--timeout", timeout, insecure, offline],
        &work,
    )?;
    let ready = wait_ready(probes, Duration::from_secs(60))?;
    timings.push(format!(
        "boot-1: Ready {:.2} s after `accord set`, {:.2} s after QEMU start",
        ready.as_secs_f64(),
        vm.started.elapsed().as_secs_f64()
    ));
    initialize(&guest, &mesh, "web", &work)?;
    tool(&accord, &verify, &work)?;

    // Shut down and boot again: boot 2 comes up in recovery.
    vm.shut_down(options.timeout, "boot-1", &mut timings)?;
    let log2 = work.join("boot-2.log");
    let mut vm = boot_until_listening(img, &ports, &log2, &options, &mut timings)?;
    vm.wait_for(RECOVERY, Duration::from_secs(60), &options.accel)?;
    if wait_ready(probes, Duration::ZERO).is_ok() {
        bail!("the shim reports Ready before `accord recover`: the VM kept its secrets?");
    }
    println!("boot 2: the coordinator is in recovery, as expected");
    tool(
        &accord,
        &[
            "recover",
            "-c",
            &user,
            "--timeout",
            timeout,
            "--seedshare-key",
            "seedshare-owner.pem",
            "--seed-shares",
            "seed-shares.json",
            insecure,
            offline,
        ],
        &work,
    )?;
    let ready = wait_ready(probes, Duration::from_secs(60))?;
    timings.push(format!(
        "boot-2: Ready {:.2} s after `accord recover`",
        ready.as_secs_f64()
    ));
    // The mesh API works again (under the new mesh CA).
    initialize(&guest, &mesh, "web-2", &work)?;
    tool(&accord, &verify, &work)?;
    let idle = resident_bytes(probes)?;
    timings.push(format!(
        "boot-2: agent RSS {:.1} MiB (Ready, after two initializers)",
        mib(idle)
    ));
    if options.attestations > 0 {
        timings.push(attest_load(
            &demo,
            &mesh,
            probes,
            options.attestations,
            &work,
        )?);
    }
    vm.shut_down(options.timeout, "boot-2", &mut timings)?;

    println!(
        "qemu-test passed ({:.1} s in all, accel {})",
        total.elapsed().as_secs_f64(),
        options.accel
    );
    for line in timings {
        println!("  {line}");
    }
    println!("  logs: {}", work.display());
    Ok(())
}
