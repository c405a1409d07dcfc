//! `cargo xtask bench-exhaustion`: honest attestations while the user API
//! is under the memory-exhaustion attack of issue 13, next to the same
//! load without it.
//!
//! Builds the release binaries, starts `accord-guest coordinator --tee
//! insecure-simulated` on loopback (its default limits), sets the bench
//! manifest (`accord-demo bench setup`), then runs two loads of honest
//! simulated workloads (`accord-demo bench attest`): a closed loop at
//! concurrency 16 and an open loop of 100 attestations/s (at most 32 in
//! flight: the load comes from one address), first alone and then while
//! `accord-demo bench exhaust` holds 1,024 hostile connections (64 loopback
//! source addresses) continuously streaming frames that announce
//! `MAX_USER_FRAME` with tag `0x00`, half of them well-formed
//! `SetManifest`s (the attack of `tests/tests/suite/attack_exhaustion.rs`).
//! For every phase it reports throughput, p50/p99, errors, the
//! coordinator's CPU use and its largest `VmRSS` (sampled every 50 ms),
//! then the ratios attack / none and what the attack's clients saw (busy
//! refusals, whole bodies read).
//!
//! Options: `--duration S` (per phase, default 15), `--connections N`
//! (default 1024).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench_attest::Coordinator;
use crate::bench_proc::{
    TempDir, attest_load, bench_setup, clock_ticks, cpu_seconds, f, memory_kib,
};
use crate::build_bins;

/// The honest loads: (label, extra `accord-demo bench attest` arguments). The
/// load generator connects from one address, so it keeps at most 32
/// attestations in flight: more would meet the coordinator's per-source
/// limit (`MAX_CONNECTIONS_PER_SOURCE`), not the attack.
const LOADS: [(&str, &[&str]); 2] = [
    ("closed loop, concurrency 16", &["--concurrency", "16"]),
    (
        "open loop, 100/s (≤ 32 in flight)",
        &["--concurrency", "32", "--rate", "100"],
    ),
];

/// Samples a process's `VmRSS` every 50 ms and keeps the largest.
struct RssSampler {
    running: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let max_kib = Arc::new(AtomicU64::new(0));
        let thread = {
            let (running, max_kib) = (Arc::clone(&running), Arc::clone(&max_kib));
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    if let Ok((rss, _)) = memory_kib(pid) {
                        max_kib.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            running,
            max_kib,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the largest `VmRSS` seen, in KiB.
    fn stop(mut self) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

/// One measured load.
struct Phase {
    label: String,
    attack: bool,
    result: serde_json::Value,
    cpu_cores: f64,
    max_rss_kib: u64,
}

fn phase(
    demo: &Path,
    coordinator: &Coordinator,
    chip: &str,
    (label, extra): (&str, &[&str]),
    duration: &str,
    attack: bool,
) -> anyhow::Result<Phase> {
    let pid = coordinator.pid();
    let sampler = RssSampler::start(pid);
    let mut args = vec!["--duration", duration, "--warmup", "1"];
    args.extend_from_slice(extra);
    let (result, cpu_s, wall_s) =
        attest_load(demo, pid, &coordinator.mesh, chip, &args, clock_ticks())?;
    let cpu_cores = cpu_s / wall_s.max(1e-9);
    let max_rss_kib = sampler.stop();
    eprintln!("{label}, attack {attack}: {result}");
    Ok(Phase {
        label: label.to_string(),
        attack,
        result,
        cpu_cores,
        max_rss_kib,
    })
}

/// `accord-demo bench exhaust` running in the background.
struct Exhaust {
    child: Child,
    stdout: BufReader<ChildStdout>,
    ready_line: String,
}

impl Exhaust {
    fn start(demo: &Path, user: &str, chip: &str, connections: &str) -> anyhow::Result<Self> {
        let args = [
            "bench",
            "exhaust",
            "-u",
            user,
            "--state",
            chip,
            "--connections",
            connections,
            "--sources",
            "64",
            "--duration",
            "3600",
        ];
        eprintln!("$ accord-demo {}", args.join(" "));
        let mut child = Command::new(demo)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting accord-demo bench exhaust")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut ready_line = String::new();
        stdout.read_line(&mut ready_line)?;
        if !ready_line.starts_with("ready") {
            let _ = child.kill();
            bail!("accord-demo bench exhaust printed {ready_line:?}");
        }
        Ok(Self {
            child,
            stdout,
            ready_line: ready_line.trim().to_string(),
        })
    }

    /// SIGTERM, then the attack's final counters.
    fn stop(mut self) -> anyhow::Result<serde_json::Value> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut out)?;
        let status = self.child.wait()?;
        if !status.success() {
            bail!("accord-demo bench exhaust failed with {status}");
        }
        serde_json::from_str(out.trim()).context("accord-demo bench exhaust printed no JSON")
    }
}

/// Runs the whole measurement and prints the markdown report.
pub fn run_all(args: &[String]) -> anyhow::Result<()> {
    let [duration, connections] = crate::bench_proc::positive_options(
        "bench-exhaustion",
        args,
        [("--duration", 15.0), ("--connections", 1024.0)],
    )?;
    let duration = duration.to_string();
    let connections = (connections as u64).to_string();
    let release = build_bins(true, &["accord-guest", "accord-demo"])?;
    let guest = release.join("accord-guest");
    let demo = release.join("accord-demo");
    let dir = TempDir::new("bench-exhaustion")?;
    let state = dir.0.join("state");
    let chip_dir = state.join("chip");
    let chip = chip_dir.to_str().context("temporary path is not UTF-8")?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let coordinator = Coordinator::start(&guest, &state, &dir.0.join("coordinator.log"))?;
    bench_setup(&demo, &coordinator.user, chip)?;
    let (rss_ready, _) = memory_kib(coordinator.pid())?;

    let mut phases = Vec::new();
    for load in LOADS {
        phases.push(phase(&demo, &coordinator, chip, load, &duration, false)?);
    }
    let attack_started = Instant::now();
    let sampler = RssSampler::start(coordinator.pid());
    let exhaust = Exhaust::start(&demo, &coordinator.user, chip, &connections)?;
    let ramp_up = attack_started.elapsed();
    eprintln!("{} after {ramp_up:.1?}", exhaust.ready_line);
    for load in LOADS {
        phases.push(phase(&demo, &coordinator, chip, load, &duration, true)?);
    }
    let attacker_cpu = cpu_seconds(exhaust.child.id(), clock_ticks())?;
    let attack_secs = attack_started.elapsed().as_secs_f64();
    let attack = exhaust.stop()?;
    let attack_rss_kib = sampler.stop();
    let (rss_end, hwm) = memory_kib(coordinator.pid())?;
    drop(coordinator);

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "Machine: {} CPUs (shared), load average before the run {}; coordinator, honest load and attack on the same machine.",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_before.trim()
    );
    println!();
    println!(
        "| honest load | attack | attestations/s | p50 ms | p99 ms | max ms | errors | coordinator CPU | coordinator max RSS |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for p in &phases {
        let r = &p.result;
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2} cores | {:.1} MiB |",
            p.label,
            if p.attack {
                format!("{connections} connections")
            } else {
                "none".to_string()
            },
            f(r, "attestations_per_s"),
            f(r, "p50_ms"),
            f(r, "p99_ms"),
            f(r, "max_ms"),
            r["errors"].as_u64().unwrap_or(u64::MAX),
            p.cpu_cores,
            mib(p.max_rss_kib),
        );
    }
    println!();
    println!("| honest load | attestations/s, attack ÷ none | p99, attack ÷ none |");
    println!("|---|---:|---:|");
    for (i, (label, _)) in LOADS.iter().enumerate() {
        if let (Some(none), Some(under)) = (phases.get(i), phases.get(i + LOADS.len())) {
            println!(
                "| {label} | {:.2} | {:.2} |",
                f(&under.result, "attestations_per_s") / f(&none.result, "attestations_per_s"),
                f(&under.result, "p99_ms") / f(&none.result, "p99_ms"),
            );
        }
    }
    println!();
    let count = |key: &str| attack[key].as_u64().unwrap_or(0);
    println!(
        "Attack ({attack_secs:.0} s, the attacking process used {:.2} cores; {connections} connections streaming after {:.1} s): {} connections made \
         ({} failed before Hello), at most {} at once; {} frames announced: {} refused busy, \
         {} read whole and refused as malformed, {} read whole, decoded and refused by the state machine, \
         {} cut off by the coordinator's time limit, {} too large, {} other.",
        attacker_cpu / attack_secs.max(1e-9),
        ramp_up.as_secs_f64(),
        count("connected"),
        count("connect_failures"),
        count("max_open"),
        count("frames"),
        count("busy"),
        count("malformed"),
        count("decoded"),
        count("closed"),
        count("too_large"),
        count("other_replies"),
    );
    println!(
        "Coordinator RSS: {:.1} MiB with the manifest set, at most {:.1} MiB during the attack, \
         {:.1} MiB at the end (peak over the whole run {:.1} MiB).",
        mib(rss_ready),
        mib(attack_rss_kib),
        mib(rss_end),
        mib(hwm),
    );
    Ok(())
}
