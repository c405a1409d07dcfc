//! `cargo xtask qemu-test`: boots the guest image under QEMU and drives a
//! deployment against it from the host.
//!
//! 1. `cargo xtask image`, plus the host tools (`accord`, `accord-shim`)
//!    built the same way in `target/image`;
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
//! 6. SIGTERM to QEMU; boot 2: the coordinator comes back in recovery
//!    (history on the host's shim, secrets gone with the VM's memory);
//!    `accord recover`, `accord verify` again;
//! 7. prints the timings (QEMU start → first init line → listening).

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
const RECOVERY: &str = "accord-guest coordinator: state recovery";
/// The configfs-tsm probe line of the init.
const CONFIGFS_TSM: &str = "accord-guest init: configfs-tsm: ";

/// A Kata init-data document naming `who` (as `accord demo` writes).
fn policy_toml(who: &str) -> String {
    format!(
        "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"policy.rego\" = \"\"\"\npackage agent_policy\n\n# accord qemu-test: the {who} pod's policy\ndefault CreateContainerRequest := true\ndefault ExecProcessRequest := false\n\"\"\"\n"
    )
}

struct Options {
    accel: String,
    timeout: Duration,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        accel: "tcg".to_string(),
        timeout: Duration::from_secs(180),
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
            other => bail!("qemu-test: unknown argument `{other}`"),
        }
    }
    Ok(options)
}

/// A free loopback port (bound and released).
fn free_port() -> anyhow::Result<u16> {
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

/// Runs a host tool in `dir`; returns its stdout; fails with its output.
fn tool(program: &Path, args: &[&str], dir: &Path) -> anyhow::Result<String> {
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

    /// SIGTERM to QEMU, then wait (SIGKILL after 10 s).
    fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.qemu.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(10) {
            if self.qemu.0.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("QEMU did not stop on SIGTERM within 10 s; killing it");
        Ok(())
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

/// Polls the shim's readiness probe until it answers 200.
fn wait_ready(probes: u16, timeout: Duration) -> anyhow::Result<Duration> {
    use std::io::Write;
    let began = Instant::now();
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", probes)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(
                b"GET /probe/readiness HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            );
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                return Ok(began.elapsed());
            }
        }
        if began.elapsed() > timeout {
            bail!("the shim's readiness probe did not answer 200 within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The `web` workload's initializer on the host (same chip as the VM,
/// launched with web-policy.toml) against the VM's mesh API.
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
        ],
        work,
    )?;
    if !work.join(out).join("tls-config/certChain.pem").exists() {
        bail!("the initializer wrote no {out}/tls-config/certChain.pem");
    }
    Ok(())
}

/// Runs the whole test.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let total = Instant::now();
    let built = image::build()?;
    let bin = image::build_agent(&["accord-cli", "accord-shim"])?;
    let (accord, shim, guest) = (
        bin.join("accord"),
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
            "        accord.dev/role: coordinator\n",
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
    let timeout = "60";
    tool(&accord, &["set", "-c", &user, "--timeout", timeout], &work)?;
    let ready = wait_ready(probes, Duration::from_secs(60))?;
    timings.push(format!(
        "boot-1: Ready {:.2} s after `accord set`",
        ready.as_secs_f64()
    ));
    initialize(&guest, &mesh, "web", &work)?;
    tool(
        &accord,
        &["verify", "-c", &user, "--timeout", timeout],
        &work,
    )?;

    // Power-cycle: boot 2 comes up in recovery.
    vm.stop()?;
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
    tool(
        &accord,
        &["verify", "-c", &user, "--timeout", timeout],
        &work,
    )?;
    vm.stop()?;

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
