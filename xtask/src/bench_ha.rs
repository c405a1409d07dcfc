//! `cargo xtask bench-ha`: three coordinator replicas under load (issue 6)
//! and the open-loop latency of one coordinator (issue 5).
//!
//! Builds the release binaries and starts three replicas on loopback, each
//! an `accord-shim` (filesystem backend on one shared temporary store,
//! `--peer` for the two others with their probe addresses) and an
//! `accord-guest coordinator --tee insecure-simulated --shim` whose
//! `--state` is one shared directory (so all share one simulated chip, one
//! measurement) and whose HOST_DATA is the bench coordinator policy's hash
//! (`--policy`; the peers check it when they recover from each other). It
//! sets the manifest through replica 0 (`accord-demo bench setup`), waits until
//! all three readiness probes answer 200, then measures:
//!
//! - closed-loop throughput and latency at concurrency 16 and 64 with
//!   `accord-demo bench attest` round robin over the three replicas, and against
//!   replica 0 alone, with each agent's CPU seconds during the phase
//!   (`/proc/PID/stat`);
//! - open-loop latency against replica 0 alone, `--concurrency 64 --rate R`
//!   for several R: the arrival rate up to which p99 stays under 20 ms;
//! - restart to Ready: `--restarts` rounds of SIGKILL replica (round % 3)'s
//!   agent, confirm its probe fails, restart it and time from the spawn
//!   until its probe answers 200 (the peers are up: it recovers from them).
//!
//! Prints a markdown report. Every process is stopped (SIGTERM, then
//! SIGKILL) when its guard drops, on success and on error.
//!
//! Options: `--duration S` (per phase, default 10), `--restarts N`
//! (default 20).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench_proc::{TempDir, clock_ticks, cpu_seconds, demo_json, f, positive_options};
use crate::build_bins;

/// The bench coordinator policy (must equal `BENCH_COORDINATOR_POLICY` in
/// cli/demo/src/bench.rs: the manifest `accord-demo bench setup` sets names its hash
/// with the coordinator role, and replicas check each other against it).
pub(crate) const BENCH_COORDINATOR_POLICY: &[u8] =
    b"accord bench coordinator policy (INSECURE simulation)\n";

/// The open-loop arrival rates (attestations per second).
const RATES: [u32; 6] = [100, 200, 300, 400, 600, 800];

/// Options of the task.
struct Options {
    duration: f64,
    restarts: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let [duration, restarts] = positive_options(
        "bench-ha",
        args,
        [("--duration", 10.0), ("--restarts", 20.0)],
    )?;
    Ok(Options {
        duration,
        restarts: restarts as usize,
    })
}

/// A child process, stopped on drop: SIGTERM, up to 3 s to exit, then
/// SIGKILL; always waited for.
struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Starts `command` (stdout piped and forwarded line by line to the
    /// returned receiver, stderr appended to `log`).
    fn spawn(
        mut command: Command,
        name: &str,
        log: &Path,
    ) -> anyhow::Result<(Self, Receiver<String>)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The receiver may be gone: keep draining regardless.
                let _ = tx.send(line);
            }
        });
        Ok((
            Self {
                child,
                name: name.to_string(),
            },
            rx,
        ))
    }

    /// Starts `command` and waits (30 s) for a stdout line containing
    /// `marker`.
    fn start(
        command: Command,
        name: &str,
        log: &Path,
        marker: &str,
    ) -> anyhow::Result<(Self, String)> {
        let (proc, rx) = Self::spawn(command, name, log)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(marker) => return Ok((proc, line)),
                Ok(_) => {}
                Err(_) => bail!(
                    "{name}: no line with {marker:?} within 30 s; log {}:\n{}",
                    log.display(),
                    std::fs::read_to_string(log).unwrap_or_default()
                ),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and wait.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // (Drop finds it gone.)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("bench-ha: {} ignored SIGTERM for 3 s: SIGKILL", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One replica's addresses.
#[derive(Clone)]
struct Ports {
    user: String,
    mesh: String,
    channel: String,
    probes: String,
}

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> anyhow::Result<String> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

/// One replica: its agent (dropped first) and its shim.
struct Replica {
    agent: Option<Proc>,
    _shim: Proc,
    ports: Ports,
}

/// What the replicas share.
struct Setup {
    guest: PathBuf,
    shim: PathBuf,
    dir: PathBuf,
    policy: PathBuf,
}

impl Setup {
    fn shim_command(&self, ports: &[Ports], i: usize) -> Command {
        let mut command = Command::new(&self.shim);
        command
            .args(["--listen", &ports[i].channel])
            .args(["--probes", &ports[i].probes])
            .arg("--store")
            .arg(self.dir.join("store"));
        for (j, other) in ports.iter().enumerate() {
            if j != i {
                command
                    .arg("--peer")
                    .arg(format!("replica-{j}={},{}", other.mesh, other.probes));
            }
        }
        command
    }

    fn agent_command(&self, ports: &Ports) -> Command {
        let mut command = Command::new(&self.guest);
        command
            .args(["coordinator", "--tee", "insecure-simulated", "--policy"])
            .arg(&self.policy)
            .arg("--state")
            .arg(self.dir.join("state"))
            .args(["--shim", &ports.channel])
            .args(["--user-api", &ports.user])
            .args(["--mesh-api", &ports.mesh]);
        command
    }

    fn log(&self, what: &str, i: usize) -> PathBuf {
        self.dir.join(format!("{what}-{i}.log"))
    }

    fn start_agent(&self, ports: &Ports, i: usize) -> anyhow::Result<Proc> {
        Ok(Proc::start(
            self.agent_command(ports),
            &format!("agent {i}"),
            &self.log("agent", i),
            "user API on",
        )?
        .0)
    }
}

/// `GET /probe/readiness` answered 200 (500 ms timeouts).
fn is_ready(addr: &str) -> bool {
    let check = || -> std::io::Result<bool> {
        let addr = addr
            .parse()
            .map_err(|_| std::io::Error::other("bad address"))?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_millis(500)))?;
        stream.set_write_timeout(Some(Duration::from_millis(500)))?;
        stream.write_all(
            b"GET /probe/readiness HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
        )?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    check().unwrap_or(false)
}

/// Polls the probe every 5 ms until it answers 200; the time it took.
fn wait_ready(probes: &str, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !is_ready(probes) {
        if started.elapsed() > limit {
            bail!("the replica with probes on {probes} is not ready after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(started.elapsed())
}

/// One `accord-demo bench attest` run and each agent's CPU seconds during it.
struct Phase {
    label: String,
    command: String,
    result: serde_json::Value,
    cpu_s: Vec<f64>,
}

fn load(
    demo: &Path,
    replicas: &[Replica],
    targets: &[usize],
    chip: &str,
    label: String,
    extra: &[String],
    ticks: f64,
) -> anyhow::Result<Phase> {
    let pids: Vec<u32> = replicas
        .iter()
        .map(|r| r.agent.as_ref().map_or(0, Proc::pid))
        .collect();
    let before: Vec<f64> = pids
        .iter()
        .map(|&pid| cpu_seconds(pid, ticks))
        .collect::<anyhow::Result<_>>()?;
    let mut args: Vec<String> = vec!["bench".into(), "attest".into()];
    for &t in targets {
        args.push("-c".into());
        args.push(replicas[t].ports.mesh.clone());
    }
    args.extend(extra.iter().cloned());
    // 64 in flight from one address would meet each coordinator's
    // per-source limit (32).
    args.extend(["--state".into(), chip.into(), "--json".into()]);
    args.extend(["--sources".into(), "8".into()]);
    let result = demo_json(demo, &args)?;
    let cpu_s = pids
        .iter()
        .zip(&before)
        .map(|(&pid, before)| Ok(cpu_seconds(pid, ticks)? - before))
        .collect::<anyhow::Result<_>>()?;
    eprintln!("{label}: {result}");
    let command = format!(
        "accord-demo {}",
        args.iter()
            .map(|a| if a.starts_with("127.0.0.1:") {
                "M".to_string()
            } else if a == chip {
                "CHIP".to_string()
            } else {
                a.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(Phase {
        label,
        command,
        result,
        cpu_s,
    })
}

/// The nearest-rank quantile of sorted samples, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// What the restart rounds measured.
struct Restarts {
    /// Spawn to readiness 200, per round.
    ready: Vec<Duration>,
    /// SIGKILL to the probe failing, per round.
    unready: Vec<Duration>,
}

fn restarts(setup: &Setup, replicas: &mut [Replica], rounds: usize) -> anyhow::Result<Restarts> {
    let mut out = Restarts {
        ready: Vec::new(),
        unready: Vec::new(),
    };
    for round in 0..rounds {
        let victim = round % replicas.len();
        let ports = replicas[victim].ports.clone();
        if let Some(agent) = replicas[victim].agent.take() {
            let killed = Instant::now();
            agent.kill();
            loop {
                if !is_ready(&ports.probes) {
                    out.unready.push(killed.elapsed());
                    break;
                }
                if killed.elapsed() > Duration::from_secs(5) {
                    bail!("replica {victim}'s probe still answers 200 5 s after SIGKILL");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let spawned = Instant::now();
        // Not `Setup::start_agent`: the clock runs from the spawn, and
        // only the probe says when it is ready.
        let (agent, _stdout) = Proc::spawn(
            setup.agent_command(&ports),
            &format!("agent {victim}"),
            &setup.log("agent", victim),
        )?;
        replicas[victim].agent = Some(agent);
        wait_ready(&ports.probes, Duration::from_secs(30))?;
        let took = spawned.elapsed();
        eprintln!("restart {round}: replica {victim} Ready {took:?} after the spawn");
        out.ready.push(took);
        std::thread::sleep(Duration::from_millis(500));
    }
    out.ready.sort();
    out.unready.sort();
    Ok(out)
}

/// Runs the whole measurement and prints the markdown report.
pub fn run_all(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let release = build_bins(true, &["accord-guest", "accord-shim", "accord-demo"])?;
    let demo = release.join("accord-demo");
    let dir = TempDir::new("bench-ha")?;
    let policy = dir.0.join("coordinator-policy");
    std::fs::write(&policy, BENCH_COORDINATOR_POLICY)?;
    let setup = Setup {
        guest: release.join("accord-guest"),
        shim: release.join("accord-shim"),
        dir: dir.0.clone(),
        policy,
    };
    let chip_dir = dir.0.join("state").join("chip");
    let chip = chip_dir.to_str().context("temporary path is not UTF-8")?;
    let ticks = clock_ticks();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let ports: Vec<Ports> = (0..3)
        .map(|_| {
            Ok(Ports {
                user: free_addr()?,
                mesh: free_addr()?,
                channel: free_addr()?,
                probes: free_addr()?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut replicas = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let (shim, _) = Proc::start(
            setup.shim_command(&ports, i),
            &format!("shim {i}"),
            &setup.log("shim", i),
            "agent channel on",
        )?;
        // Replica 0 creates the chip before the others open it.
        let agent = setup.start_agent(p, i)?;
        replicas.push(Replica {
            agent: Some(agent),
            _shim: shim,
            ports: p.clone(),
        });
    }
    eprintln!(
        "$ accord-demo bench setup -u {} --state {chip}",
        ports[0].user
    );
    let status = Command::new(&demo)
        .args(["bench", "setup", "-u", &ports[0].user, "--state", chip])
        .status()?;
    if !status.success() {
        bail!("accord-demo bench setup failed with {status}");
    }
    let ready_started = Instant::now();
    for p in &ports {
        wait_ready(&p.probes, Duration::from_secs(30))?;
    }
    let initial_ready = ready_started.elapsed();
    eprintln!("all three replicas Ready {initial_ready:?} after the manifest was set");

    let duration = options.duration.to_string();
    let mut closed = Vec::new();
    for concurrency in [16u32, 64] {
        for (targets, name) in [
            (&[0usize, 1, 2][..], "3 replicas, round robin"),
            (&[0][..], "replica 0 only"),
        ] {
            let extra: Vec<String> = vec![
                "--concurrency".into(),
                concurrency.to_string(),
                "--duration".into(),
                duration.clone(),
                "--warmup".into(),
                "1".into(),
            ];
            closed.push(load(
                &demo,
                &replicas,
                targets,
                chip,
                format!("{name}, concurrency {concurrency}"),
                &extra,
                ticks,
            )?);
        }
    }

    let mut open = Vec::new();
    for rate in RATES {
        let extra: Vec<String> = vec![
            "--concurrency".into(),
            "64".into(),
            "--rate".into(),
            rate.to_string(),
            "--duration".into(),
            duration.clone(),
            "--warmup".into(),
            "1".into(),
        ];
        open.push(load(
            &demo,
            &replicas,
            &[0],
            chip,
            format!("{rate}/s"),
            &extra,
            ticks,
        )?);
    }

    let restarted = restarts(&setup, &mut replicas, options.restarts)?;
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    drop(replicas);

    report(
        &options,
        (&load_before, &load_after),
        initial_ready,
        &closed,
        &open,
        &restarted,
    );
    Ok(())
}

fn report(
    options: &Options,
    (load_before, load_after): (&str, &str),
    initial_ready: Duration,
    closed: &[Phase],
    open: &[Phase],
    restarted: &Restarts,
) {
    println!(
        "Machine: {} CPUs (shared), load average before the run {}, after {}; three replicas (agent + shim each) and the load generator on the same machine, loopback.",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_before.trim(),
        load_after.trim()
    );
    println!();
    println!(
        "Replicas 1 and 2 Ready {:.0} ms after the manifest was set through replica 0 (peer recovery).",
        initial_ready.as_secs_f64() * 1e3
    );
    println!();
    println!(
        "### Closed loop: three replicas round robin vs one ({} s per phase)",
        options.duration
    );
    println!();
    println!(
        "| load | attestations/s | p50 ms | p90 ms | p99 ms | max ms | errors | CPU s replica 0 / 1 / 2 | agents' CPU / attestation |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for phase in closed {
        let r = &phase.result;
        let total_cpu: f64 = phase.cpu_s.iter().sum();
        let issued = r["total_ok"].as_u64().unwrap_or(0).max(1);
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} µs |",
            phase.label,
            f(r, "attestations_per_s"),
            f(r, "p50_ms"),
            f(r, "p90_ms"),
            f(r, "p99_ms"),
            f(r, "max_ms"),
            r["errors"].as_u64().unwrap_or(u64::MAX),
            phase
                .cpu_s
                .iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
            total_cpu * 1e6 / issued as f64,
        );
    }
    println!();
    println!(
        "### Open loop against replica 0: `--concurrency 64 --rate R` ({} s per rate)",
        options.duration
    );
    println!();
    println!(
        "| arrival rate /s | achieved /s | p50 ms | p90 ms | p99 ms | max ms | late starts | errors | replica 0 CPU use | p99 < 20 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let wall = options.duration + 1.0;
    for phase in open {
        let r = &phase.result;
        let p99 = f(r, "p99_ms");
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} of {} | {} | {:.2} cores | {} |",
            phase.label.trim_end_matches("/s"),
            f(r, "attestations_per_s"),
            f(r, "p50_ms"),
            f(r, "p90_ms"),
            p99,
            f(r, "max_ms"),
            r["late"].as_u64().unwrap_or(u64::MAX),
            r["measured"].as_u64().unwrap_or(0),
            r["errors"].as_u64().unwrap_or(u64::MAX),
            phase.cpu_s.first().copied().unwrap_or(f64::NAN) / wall,
            if p99 < 20.0 { "yes" } else { "NO" },
        );
    }
    println!();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let max = restarted.ready.last().map_or(f64::NAN, ms);
    println!(
        "### Restart to Ready with peers present ({} rounds, SIGKILL of replica round % 3's agent)",
        restarted.ready.len()
    );
    println!();
    println!("| measure | p50 ms | p90 ms | max ms | target | met |");
    println!("|---|---:|---:|---:|---|---|");
    println!(
        "| spawn of the agent → its readiness probe answers 200 | {:.0} | {:.0} | {max:.0} | < 1 s | {} |",
        quantile_ms(&restarted.ready, 0.5),
        quantile_ms(&restarted.ready, 0.9),
        if max < 1000.0 { "yes" } else { "NO" }
    );
    println!(
        "| SIGKILL → the probe stops answering 200 | {:.0} | {:.0} | {:.0} | | |",
        quantile_ms(&restarted.unready, 0.5),
        quantile_ms(&restarted.unready, 0.9),
        restarted.unready.last().map_or(f64::NAN, ms),
    );
    println!();
    println!("Commands (M = a replica's mesh API, CHIP = the shared `STATE/chip`):");
    println!();
    println!("```text");
    for phase in closed.iter().chain(open) {
        println!("{}", phase.command);
    }
    println!("```");
}
