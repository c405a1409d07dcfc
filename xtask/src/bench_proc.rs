//! What the load benchmarks (`bench-attest`, `bench-ha`) share: their
//! option parsing, reading a process's CPU time and memory from `/proc`,
//! running `accord … --json`, and a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// Parses `--NAME VALUE` pairs of positive numbers: `known` lists each
/// flag with its default, in the order of the returned values.
pub fn positive_options<const N: usize>(
    task: &str,
    args: &[String],
    known: [(&str, f64); N],
) -> anyhow::Result<[f64; N]> {
    let mut values = known.map(|(_, default)| default);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{task}: {flag} needs a value"))?;
        let slot = known
            .iter()
            .position(|(name, _)| name == flag)
            .with_context(|| format!("{task}: unknown option {flag}"))?;
        values[slot] = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .with_context(|| format!("{task}: {flag} {value}: not a positive number"))?;
    }
    Ok(values)
}

/// User + system CPU time of `pid`, in seconds.
pub fn cpu_seconds(pid: u32, ticks_per_s: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces): field 3
    // (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("/proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("/proc/PID/stat: too few fields")?
            .parse::<f64>()?)
    };
    Ok((field(11)? + field(12)?) / ticks_per_s)
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let value = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/PID/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("VmRSS value")?
            .parse()?)
    };
    Ok((value("VmRSS:")?, value("VmHWM:")?))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 if unknown).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs `accord-demo` with `args` and parses its one JSON object.
pub fn demo_json<S: AsRef<str>>(bin: &Path, args: &[S]) -> anyhow::Result<serde_json::Value> {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    eprintln!("$ accord-demo {}", args.join(" "));
    let output = Command::new(bin)
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {}", bin.display()))?;
    if !output.status.success() {
        bail!(
            "`accord-demo {}` failed with {}",
            args.join(" "),
            output.status
        );
    }
    serde_json::from_slice(&output.stdout).context("accord-demo printed no JSON object")
}

/// `accord-demo bench setup -u USER --state CHIP`: the bench manifest set on
/// the coordinator at `user`.
pub fn bench_setup(demo: &Path, user: &str, chip: &str) -> anyhow::Result<()> {
    bench_setup_on(demo, user, chip, SIMULATED_SNP)
}

/// The INSECURE simulated SEV-SNP chip's `--tee` name.
pub const SIMULATED_SNP: &str = "insecure-simulated";

/// The INSECURE simulated TDX's `--tee` name.
pub const SIMULATED_TDX: &str = "insecure-simulated-tdx";

/// [`bench_setup`] for a coordinator on the simulated TEE `tee`
/// (`--tee`).
pub fn bench_setup_on(demo: &Path, user: &str, chip: &str, tee: &str) -> anyhow::Result<()> {
    eprintln!("$ accord-demo bench setup -u {user} --state {chip} --tee {tee}");
    let status = Command::new(demo)
        .args(["bench", "setup", "-u", user, "--state", chip, "--tee", tee])
        // Its "manifest set" line goes with the log, not the report.
        .stdout(Stdio::from(std::io::stderr()))
        .status()?;
    if !status.success() {
        bail!("accord-demo bench setup failed with {status}");
    }
    Ok(())
}

/// `accord-demo bench attest -c MESH --state CHIP --json EXTRA…` against the
/// coordinator process `pid`: the JSON result, the CPU seconds the
/// coordinator spent meanwhile, and the wall seconds.
pub fn attest_load(
    demo: &Path,
    pid: u32,
    mesh: &str,
    chip: &str,
    extra: &[&str],
    ticks: f64,
) -> anyhow::Result<(serde_json::Value, f64, f64)> {
    let cpu_before = cpu_seconds(pid, ticks)?;
    let started = std::time::Instant::now();
    let mut args = vec!["bench", "attest", "-c", mesh, "--state", chip, "--json"];
    args.extend_from_slice(extra);
    let result = demo_json(demo, &args)?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds(pid, ticks)? - cpu_before;
    Ok((result, cpu_s, wall_s))
}

/// A number field of a JSON object (NaN if missing).
pub fn f(value: &serde_json::Value, key: &str) -> f64 {
    value[key].as_f64().unwrap_or(f64::NAN)
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `$TMPDIR/accord-TAG-PID`, emptied first.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("accord-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
