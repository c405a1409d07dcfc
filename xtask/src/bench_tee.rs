//! `cargo xtask bench-attest --tdx-vs-snp`: the coordinator's CPU per
//! attestation on the INSECURE simulated TDX next to the INSECURE
//! simulated SEV-SNP chip (issue 15).
//!
//! Builds the release binaries and starts two coordinators on loopback,
//! one per simulated TEE (`accord-guest coordinator --tee
//! insecure-simulated` and `--tee insecure-simulated-tdx`, each with the
//! bench coordinator policy over its own temporary state), sets the bench
//! manifest on each (`accord-demo bench setup --tee …`) and warms each up
//! (collateral authenticated and held, as in production, before anything
//! is counted). Then it runs `accord-demo bench attest --tee …` phases
//! interleaved, SNP then TDX, `--pairs` times, so that the machine's noise
//! hits both alike. A phase's figure is the coordinator's CPU time (user +
//! system, `/proc/PID/stat`) over the certificates it issued; each pair
//! gives a ratio TDX ÷ SNP. It prints a markdown table: each pair with the
//! load average before it, the minimum and median ratio, the ratio of the
//! minima, and the verdict against the target (median ratio ≤ 1.2).
//!
//! The coordinator's CPU includes producing its own (simulated) evidence
//! per connection (SEV-SNP: one P-384 signature; TDX: two P-256), which
//! real hardware does outside the guest (the AMD secure processor, the
//! host's quoting enclave). After the pairs, `accord-demo bench floor --tee
//! …` prices that generation alone on each TEE, and the report also gives
//! each pair's ratio with it subtracted from both sides.
//!
//! Options: `--pairs N` (default 5), `--duration S` (per phase, default
//! 10), `--concurrency N` (default 16).

use std::path::Path;

use anyhow::Context;

use crate::bench_attest::Coordinator;
use crate::bench_proc::{
    SIMULATED_SNP, SIMULATED_TDX, TempDir, attest_load, bench_setup_on, clock_ticks, demo_json, f,
    positive_options,
};
use crate::build_bins;

/// The target of issue 15: TDX's in-service CPU per attestation at most
/// this many times SEV-SNP's.
const TARGET_RATIO: f64 = 1.2;

/// Options of the task.
struct Options {
    pairs: usize,
    duration: f64,
    concurrency: u32,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let [pairs, duration, concurrency] = positive_options(
        "bench-attest --tdx-vs-snp",
        args,
        [
            ("--pairs", 5.0),
            ("--duration", 10.0),
            ("--concurrency", 16.0),
        ],
    )?;
    Ok(Options {
        pairs: pairs as usize,
        duration,
        concurrency: concurrency as u32,
    })
}

/// A coordinator on one simulated TEE, ready for load.
struct Side {
    tee: &'static str,
    coordinator: Coordinator,
    chip: String,
}

/// One load phase: the coordinator's CPU µs per issued certificate, the
/// certificates, the errors.
struct Phase {
    cpu_us: f64,
    issued: u64,
    errors: u64,
}

fn phase(
    demo: &Path,
    side: &Side,
    concurrency: u32,
    duration: f64,
    ticks: f64,
) -> anyhow::Result<Phase> {
    let (n, secs) = (concurrency.to_string(), duration.to_string());
    let (result, cpu_s, _) = attest_load(
        demo,
        side.coordinator.pid(),
        &side.coordinator.mesh,
        &side.chip,
        &[
            "--tee",
            side.tee,
            "--concurrency",
            &n,
            "--duration",
            &secs,
            "--warmup",
            "0",
        ],
        ticks,
    )?;
    let issued = result["total_ok"].as_u64().unwrap_or(0);
    let errors = result["errors"].as_u64().unwrap_or(u64::MAX);
    if issued == 0 {
        anyhow::bail!(
            "{}: no certificate issued: {}",
            side.tee,
            result["first_errors"]
        );
    }
    eprintln!(
        "{}: {:.0} µs CPU per attestation ({issued} certificates, {errors} errors, {:.0}/s)",
        side.tee,
        cpu_s * 1e6 / issued as f64,
        f(&result, "attestations_per_s")
    );
    Ok(Phase {
        cpu_us: cpu_s * 1e6 / issued as f64,
        issued,
        errors,
    })
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The CPUs this process may run on (`taskset` is inherited).
fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .map_or_else(|| "?".to_string(), |list| list.trim().to_string())
}

/// Runs the comparison and prints the markdown report.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let release = build_bins(true, &["accord-guest", "accord-demo"])?;
    let guest = release.join("accord-guest");
    let demo = release.join("accord-demo");
    let dir = TempDir::new("bench-tdx-vs-snp")?;
    let ticks = clock_ticks();
    let load_before = loadavg();

    let mut sides = Vec::new();
    for tee in [SIMULATED_SNP, SIMULATED_TDX] {
        let state = dir.0.join(tee);
        let coordinator =
            Coordinator::start_on(&guest, &state, &dir.0.join(format!("{tee}.log")), tee)?;
        let chip = state
            .join("chip")
            .to_str()
            .context("temporary path is not UTF-8")?
            .to_string();
        bench_setup_on(&demo, &coordinator.user, &chip, tee)?;
        let side = Side {
            tee,
            coordinator,
            chip,
        };
        // Warm-up, not counted: the first attestations authenticate the
        // collateral the coordinator then holds.
        phase(&demo, &side, options.concurrency, 2.0, ticks)?;
        sides.push(side);
    }

    let mut rows = Vec::new();
    for _ in 0..options.pairs {
        let load = loadavg();
        let snp = phase(
            &demo,
            &sides[0],
            options.concurrency,
            options.duration,
            ticks,
        )?;
        let tdx = phase(
            &demo,
            &sides[1],
            options.concurrency,
            options.duration,
            ticks,
        )?;
        rows.push((load, snp, tdx));
    }
    let load_after = loadavg();
    drop(sides);
    // The simulated evidence generation, priced alone on each TEE.
    let mut generation = Vec::new();
    for tee in [SIMULATED_SNP, SIMULATED_TDX] {
        let floor = demo_json(
            &demo,
            &["bench", "floor", "--rounds", "500", "--json", "--tee", tee],
        )?;
        generation.push(f(&floor["evidence_generation"], "cpu_us"));
    }
    let (snp_generation, tdx_generation) = (generation[0], generation[1]);

    println!(
        "Machine: {} CPUs (shared), this run allowed on CPUs {}; load average {load_before} before, {load_after} after; coordinators and load generator on the same machine.",
        std::thread::available_parallelism().map_or(0, usize::from),
        cpus_allowed(),
    );
    println!(
        "Phases of {} s at concurrency {}, SNP then TDX in each pair; coordinator CPU (user + system) per issued certificate.",
        options.duration, options.concurrency
    );
    println!();
    println!(
        "| pair | load average before | SNP µs / attestation | TDX µs / attestation | TDX ÷ SNP | TDX ÷ SNP without the simulated evidence generation |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    let mut net_ratios = Vec::new();
    for (i, (load, snp, tdx)) in rows.iter().enumerate() {
        let ratio = tdx.cpu_us / snp.cpu_us;
        ratios.push(ratio);
        let net = (tdx.cpu_us - tdx_generation) / (snp.cpu_us - snp_generation);
        net_ratios.push(net);
        let errors = if snp.errors + tdx.errors > 0 {
            format!(" ({} + {} errors)", snp.errors, tdx.errors)
        } else {
            String::new()
        };
        println!(
            "| {} | {load} | {:.0} ({} certs) | {:.0} ({} certs) | {ratio:.2}{errors} | {net:.2} |",
            i + 1,
            snp.cpu_us,
            snp.issued,
            tdx.cpu_us,
            tdx.issued,
        );
    }
    let snp: Vec<f64> = rows.iter().map(|(_, s, _)| s.cpu_us).collect();
    let tdx: Vec<f64> = rows.iter().map(|(_, _, t)| t.cpu_us).collect();
    println!();
    println!(
        "TDX ÷ SNP: min {:.2}, median {:.2}; minima {:.0} µs (SNP) and {:.0} µs (TDX), ratio {:.2}.",
        min(&ratios),
        median(&ratios),
        min(&snp),
        min(&tdx),
        min(&tdx) / min(&snp),
    );
    println!(
        "Simulated evidence generation (`accord-demo bench floor`, CPU per evidence): SNP {snp_generation:.0} µs, TDX {tdx_generation:.0} µs; without it, TDX ÷ SNP min {:.2}, median {:.2}.",
        min(&net_ratios),
        median(&net_ratios),
    );
    println!();
    println!("| target | measured | met |");
    println!("|---|---|---|");
    let median_ratio = median(&ratios);
    let yes = |ok: bool| if ok { "yes" } else { "NO" };
    println!(
        "| in-service coordinator CPU per attestation, TDX ≤ {TARGET_RATIO} × SNP | median {median_ratio:.2} × over {} pairs | {} |",
        ratios.len(),
        yes(median_ratio <= TARGET_RATIO)
    );
    let median_net = median(&net_ratios);
    println!(
        "| the same without the simulated evidence generation | median {median_net:.2} × | {} |",
        yes(median_net <= TARGET_RATIO)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(&[4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < 1e-12);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn options_default_and_parse() {
        let options = parse(&[]).unwrap();
        assert_eq!(
            (options.pairs, options.duration, options.concurrency),
            (5, 10.0, 16)
        );
        let args: Vec<String> = ["--pairs", "3", "--concurrency", "4"]
            .iter()
            .map(ToString::to_string)
            .collect();
        let options = parse(&args).unwrap();
        assert_eq!((options.pairs, options.concurrency), (3, 4));
        assert!(parse(&["--tee".to_string(), "x".to_string()]).is_err());
    }
}
