//! `cargo xtask bench-attest`: the coordinator under load (issue 5).
//!
//! Builds the release binaries, starts `accord-guest coordinator --tee
//! insecure-simulated` on loopback over a temporary state directory
//! (launched with the bench coordinator policy, which the simulated
//! workloads check the coordinator's HOST_DATA against), sets a
//! manifest accepting simulated workloads (`accord-demo bench setup`), measures
//! the cryptographic floor (`accord-demo bench floor`), runs `accord-demo bench
//! attest` at concurrency 1, 16 and 64, then drives the number of issued
//! certificates to 100,000 (or as far as `--max-drive-secs` allows) and
//! prints a markdown table: throughput, latency percentiles, the
//! coordinator's CPU time per attestation (user + system, from
//! `/proc/PID/stat`, over every certificate issued during the phase,
//! warm-up included) and its resident memory (`VmRSS`, `VmHWM` from
//! `/proc/PID/status`).
//!
//! Options: `--duration S` (per concurrency, default 10), `--certs N`
//! (default 100000), `--max-drive-secs S` (default 600), `--tee NAME`
//! (`insecure-simulated`, the simulated SEV-SNP chip, by default, or
//! `insecure-simulated-tdx`: the coordinator, the manifest, the workloads
//! and the floor's evidence part on that TEE).
//!
//! `--tdx-vs-snp` measures instead the coordinator's CPU per attestation
//! on TDX next to SEV-SNP, interleaved ([`crate::bench_tee`]).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use crate::bench_ha::BENCH_COORDINATOR_POLICY;
use crate::bench_proc::{
    SIMULATED_SNP, SIMULATED_TDX, TempDir, attest_load, bench_setup_on, clock_ticks, demo_json, f,
    memory_kib, positive_options,
};
use crate::build_bins;

/// Options of the task.
struct Options {
    duration: f64,
    certs: u64,
    max_drive_secs: f64,
    tee: String,
}

/// Takes `--tee NAME` out of `args` (the simulated SEV-SNP chip when
/// absent); the rest are left for [`positive_options`].
pub(crate) fn take_tee(task: &str, args: &[String]) -> anyhow::Result<(String, Vec<String>)> {
    let mut tee = SIMULATED_SNP.to_string();
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--tee" {
            let value = args
                .next()
                .with_context(|| format!("{task}: --tee needs a value"))?;
            if value != SIMULATED_SNP && value != SIMULATED_TDX {
                bail!("{task}: --tee {value}: not {SIMULATED_SNP} or {SIMULATED_TDX}");
            }
            tee.clone_from(value);
        } else {
            rest.push(arg.clone());
        }
    }
    Ok((tee, rest))
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let (tee, args) = take_tee("bench-attest", args)?;
    let [duration, certs, max_drive_secs] = positive_options(
        "bench-attest",
        &args,
        [
            ("--duration", 10.0),
            ("--certs", 100_000.0),
            ("--max-drive-secs", 600.0),
        ],
    )?;
    Ok(Options {
        duration,
        certs: certs as u64,
        max_drive_secs,
        tee,
    })
}

/// The coordinator process (terminated on drop); `bench-exhaustion` runs
/// it too.
pub(crate) struct Coordinator {
    child: Child,
    pub(crate) user: String,
    pub(crate) mesh: String,
}

impl Coordinator {
    /// Starts a coordinator on the simulated SEV-SNP chip.
    pub(crate) fn start(bin: &Path, state: &Path, log: &Path) -> anyhow::Result<Self> {
        Self::start_on(bin, state, log, SIMULATED_SNP)
    }

    /// Starts a coordinator on the simulated TEE `tee` (`--tee`), its chip
    /// or platform in `STATE/chip`.
    pub(crate) fn start_on(
        bin: &Path,
        state: &Path,
        log: &Path,
        tee: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(state)?;
        let policy = state.join("coordinator-policy");
        std::fs::write(&policy, BENCH_COORDINATOR_POLICY)?;
        let mut child = Command::new(bin)
            .args(["coordinator", "--tee", tee, "--policy"])
            .arg(&policy)
            .arg("--state")
            .arg(state)
            .args(["--user-api", "127.0.0.1:0", "--mesh-api", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let parsed = line
            .trim()
            .strip_prefix("accord-guest coordinator: user API on ")
            .and_then(|rest| rest.split_once(", mesh API on "))
            .and_then(|(user, rest)| Some((user, rest.split_once(", store ")?.0)));
        let Some((user, mesh)) = parsed else {
            let _ = child.kill();
            bail!(
                "the coordinator printed {line:?}; log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        };
        Ok(Self {
            user: user.to_string(),
            mesh: mesh.to_string(),
            child,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// One load phase and the coordinator's costs during it.
struct Phase {
    label: String,
    result: serde_json::Value,
    cpu_s: f64,
    wall_s: f64,
    issued: u64,
    rss_kib: u64,
}

impl Phase {
    fn cpu_per_attestation_us(&self) -> f64 {
        self.cpu_s * 1e6 / (self.issued.max(1) as f64)
    }
}

#[allow(clippy::too_many_arguments)]
fn load(
    demo: &Path,
    coordinator: &Coordinator,
    chip: &str,
    tee: &str,
    label: String,
    extra: &[&str],
    ticks: f64,
) -> anyhow::Result<Phase> {
    let pid = coordinator.pid();
    // 64 in flight from one address would meet the coordinator's
    // per-source limit (32).
    let mut args = vec!["--sources", "8", "--tee", tee];
    args.extend_from_slice(extra);
    let (result, cpu_s, wall_s) = attest_load(demo, pid, &coordinator.mesh, chip, &args, ticks)?;
    let issued = result["total_ok"].as_u64().unwrap_or(0);
    let (rss_kib, _) = memory_kib(pid)?;
    eprintln!("{label}: {result}");
    Ok(Phase {
        label,
        result,
        cpu_s,
        wall_s,
        issued,
        rss_kib,
    })
}

/// Runs the whole measurement and prints the markdown report.
pub fn run_all(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|arg| arg == "--tdx-vs-snp") {
        let rest: Vec<String> = args
            .iter()
            .filter(|arg| *arg != "--tdx-vs-snp")
            .cloned()
            .collect();
        return crate::bench_tee::run(&rest);
    }
    let options = parse(args)?;
    let release = build_bins(true, &["accord-guest", "accord-demo"])?;
    let guest = release.join("accord-guest");
    let demo = release.join("accord-demo");
    let dir = TempDir::new("bench-attest")?;
    let state = dir.0.join("state");
    let chip_dir = state.join("chip");
    let chip = chip_dir.to_str().context("temporary path is not UTF-8")?;
    let ticks = clock_ticks();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let tee = options.tee.as_str();
    let coordinator = Coordinator::start_on(&guest, &state, &dir.0.join("coordinator.log"), tee)?;
    let (rss_idle, _) = memory_kib(coordinator.pid())?;
    bench_setup_on(&demo, &coordinator.user, chip, tee)?;
    let (rss_ready, _) = memory_kib(coordinator.pid())?;

    let floor = demo_json(
        &demo,
        &["bench", "floor", "--rounds", "500", "--json", "--tee", tee],
    )?;

    let duration = options.duration.to_string();
    let mut phases = Vec::new();
    for concurrency in [1u32, 16, 64] {
        let n = concurrency.to_string();
        phases.push(load(
            &demo,
            &coordinator,
            chip,
            tee,
            format!("concurrency {concurrency}"),
            &[
                "--concurrency",
                &n,
                "--duration",
                &duration,
                "--warmup",
                "1",
            ],
            ticks,
        )?);
    }
    let issued_so_far: u64 = phases.iter().map(|p| p.issued).sum();
    let remaining = options.certs.saturating_sub(issued_so_far);
    if remaining > 0 {
        let remaining_text = remaining.to_string();
        let max = options.max_drive_secs.to_string();
        phases.push(load(
            &demo,
            &coordinator,
            chip,
            tee,
            format!("drive to {} (concurrency 64)", options.certs),
            &[
                "--concurrency",
                "64",
                "--duration",
                &max,
                "--warmup",
                "0",
                "--stop-after",
                &remaining_text,
            ],
            ticks,
        )?);
    }
    let issued_total: u64 = phases.iter().map(|p| p.issued).sum();
    let (rss_end, hwm_end) = memory_kib(coordinator.pid())?;
    drop(coordinator);

    if tee != SIMULATED_SNP {
        println!("Coordinator, workloads and floor on the INSECURE simulated TEE `{tee}`.");
        println!();
    }
    report(
        &load_before,
        tee,
        &floor,
        &phases,
        issued_total,
        options.certs,
        (rss_idle, rss_ready, rss_end, hwm_end),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    load_before: &str,
    tee: &str,
    floor: &serde_json::Value,
    phases: &[Phase],
    issued_total: u64,
    wanted: u64,
    (rss_idle, rss_ready, rss_end, hwm_end): (u64, u64, u64, u64),
) {
    let floor_us = f(floor, "floor_us");
    let floor_cached_us = f(floor, "floor_cached_chain_us");
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "Machine: {} CPUs (shared), load average before the run {}; coordinator and load generator on the same machine.",
        std::thread::available_parallelism().map_or(0, usize::from),
        load_before.trim()
    );
    println!();
    println!(
        "| load | attestations/s | p50 ms | p90 ms | p99 ms | max ms | errors | coordinator CPU / attestation | ÷ floor / ÷ coordinator side | coordinator CPU use | RSS after |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for phase in phases {
        let r = &phase.result;
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.0} µs ({} certs) | {:.2} / {:.2} | {:.2} cores | {:.1} MiB |",
            phase.label,
            f(r, "attestations_per_s"),
            f(r, "p50_ms"),
            f(r, "p90_ms"),
            f(r, "p99_ms"),
            f(r, "max_ms"),
            r["errors"].as_u64().unwrap_or(u64::MAX),
            phase.cpu_per_attestation_us(),
            phase.issued,
            phase.cpu_per_attestation_us() / floor_us,
            phase.cpu_per_attestation_us() / f(floor, "coordinator_side_us"),
            phase.cpu_s / phase.wall_s.max(1e-9),
            mib(phase.rss_kib),
        );
    }
    println!();
    println!("| floor part (CPU per operation) | µs |");
    println!("|---|---:|");
    let (full, cached) = if tee == SIMULATED_TDX {
        (
            "TDX quote verification, full (collateral attached)",
            "TDX quote verification, in service (collateral held)",
        )
    } else {
        (
            "SNP evidence verification, full chain",
            "SNP evidence verification, cached chain",
        )
    };
    for (name, value) in [
        (full, f(&floor["verify_full_chain"], "cpu_us")),
        (cached, f(&floor["verify_cached_chain"], "cpu_us")),
        (
            "workload certificate signature (`Ca::issue`, P-384)",
            f(&floor["issue_certificate"], "cpu_us"),
        ),
        (
            "TLS 1.3 handshake, client incl. P-256 key generation",
            f(&floor["tls13_client_with_keygen"], "cpu_us"),
        ),
        ("TLS 1.3 handshake, server", f(floor, "tls13_server_cpu_us")),
        (
            "(not in the floor) simulated evidence generation (SNP: P-384; TDX: 2 × P-256)",
            f(&floor["evidence_generation"], "cpu_us"),
        ),
        ("**floor** (full chain + signature + handshake)", floor_us),
        (
            "floor with the cached chain (TDX: the collateral held)",
            floor_cached_us,
        ),
        (
            "coordinator side alone: TLS server + simulated evidence + full chain + signature",
            f(floor, "coordinator_side_us"),
        ),
    ] {
        println!("| {name} | {value:.0} |");
    }
    println!();
    println!(
        "Coordinator RSS: {:.1} MiB idle, {:.1} MiB with the manifest set, {:.1} MiB after {issued_total} issued certificates (peak {:.1} MiB){}.",
        mib(rss_idle),
        mib(rss_ready),
        mib(rss_end),
        mib(hwm_end),
        if issued_total >= wanted {
            String::new()
        } else {
            format!(" — the target count {wanted} was NOT reached")
        }
    );
    println!();
    println!("| target | measured | met |");
    println!("|---|---|---|");
    let yes = |ok: bool| if ok { "yes" } else { "NO" };
    if let Some(worst) = phases
        .iter()
        .take(3)
        .map(|p| p.cpu_per_attestation_us() / floor_us)
        .reduce(f64::max)
    {
        println!(
            "| coordinator CPU per attestation ≤ 1.5 × floor | worst {worst:.2} × (concurrency 1/16/64) | {} |",
            yes(worst <= 1.5)
        );
    }
    if let Some(p64) = phases.get(2) {
        let p99 = f(&p64.result, "p99_ms");
        println!(
            "| p99 < 20 ms at 64 concurrent workloads | {p99:.2} ms | {} |",
            yes(p99 < 20.0)
        );
    }
    println!(
        "| RSS < 64 MiB after 100,000 certificates | {:.1} MiB after {issued_total} | {} |",
        mib(rss_end),
        if issued_total >= 100_000 {
            yes(rss_end < 64 * 1024)
        } else {
            "not reached"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn tee_defaults_to_the_simulated_chip_and_passes_the_rest() {
        let (tee, rest) = take_tee("t", &strings(&["--duration", "3"])).unwrap();
        assert_eq!(tee, SIMULATED_SNP);
        assert_eq!(rest, strings(&["--duration", "3"]));
        let options = parse(&strings(&["--tee", SIMULATED_TDX, "--certs", "7"])).unwrap();
        assert_eq!(options.tee, SIMULATED_TDX);
        assert_eq!(options.certs, 7);
    }

    #[test]
    fn an_unknown_or_missing_tee_is_refused() {
        let err = take_tee("t", &strings(&["--tee", "sev-guest"])).unwrap_err();
        assert!(err.to_string().contains("sev-guest"), "{err}");
        assert!(take_tee("t", &strings(&["--tee"])).is_err());
    }
}
