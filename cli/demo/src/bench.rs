//! `accord-demo bench`: load and cost measurements of a coordinator.
//!
//! - `accord-demo bench attest -c HOST:PORT --concurrency N --duration S`: a load
//!   generator of simulated workloads. One attestation is: a fresh P-256
//!   key presented as a raw public key, a mutually attested connection to the
//!   mesh API with the INSECURE simulated chip (one chip, opened once and
//!   shared; the coordinator's evidence is verified against the chip's
//!   reference values and `--coordinator-policy`, by default the bench
//!   coordinator policy), `NewMeshCert`, and a check that the reply is a
//!   certificate for that key. In the closed loop (the default) N tasks each repeat
//!   attestations back to back; with `--rate R` (open loop) a dispatcher
//!   starts one every 1/R s, at most N in flight, and latency counts from
//!   the scheduled start (waiting for a free slot included). With several
//!   `-c` the attestations go round robin over the coordinators. It prints
//!   throughput and latency percentiles of whole attestations (key
//!   generation included); `--json` prints one object with
//!   `attestations_per_s`, `p50_ms`, `p99_ms`, `errors` and more. With
//!   `--tee insecure-simulated-tdx` the workloads are the INSECURE
//!   simulated TDX instead (quotes with their collateral attached), and
//!   the coordinator's evidence is checked against that platform's
//!   reference values: for a coordinator launched on the same simulated
//!   TDX.
//! - `accord-demo bench floor`: the cryptographic floor of one attestation on
//!   the coordinator's side, each part timed alone: one SNP evidence
//!   verification (full chain, and against a cached chain), one workload
//!   certificate signature (`Ca::issue`, P-384), one TLS 1.3 handshake on
//!   loopback with the client's key generation (no attestation). With
//!   `--tee insecure-simulated-tdx` the evidence part is the simulated
//!   TDX's: quote generation, full verification with the collateral
//!   attached, and the in-service verifier with the collateral held.
//! - `accord-demo bench exhaust` (hidden, [`crate::bench_exhaust`]): hostile
//!   connections streaming maximum-size frames to a user API.
//! - `accord-demo bench setup` (hidden): sets a manifest on a fresh coordinator
//!   that accepts workloads of the simulated chip in `--state` (the
//!   coordinator's own `STATE/chip`) whose HOST_DATA is the bench policy's
//!   hash, so `bench attest` has something to attest to; with `--tee
//!   insecure-simulated-tdx`, workloads of the simulated TDX platform in
//!   `--state` (reference values naming its simulated root, MRCONFIGID
//!   carrying the policy hash).
//!
//! Everything here uses a simulated TEE and proves nothing about real
//! hardware; it measures the coordinator's costs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::crypto::default_provider;
use accord_core::evidence::{self, ReferenceValues};
use accord_core::hex;
use accord_core::protocol::{ManifestSet, NewMeshCertReply, SetManifest, SetManifestReply};
use accord_guest::atls::{Clock, Identity, PeerPolicy, system_now};
use accord_guest::client::{MeshClient, UserClient};
use accord_guest::tee::TeeProvider;
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_guest::tee::simulated_tdx::SimulatedTdx;
use accord_guest::tee::{INSECURE_SIMULATED, INSECURE_SIMULATED_TDX};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// The workload policy (init-data) of the simulated bench workloads: their
/// HOST_DATA is its SHA-256 unless `--host-data`/`--policy` say otherwise.
pub const BENCH_WORKLOAD_POLICY: &[u8] = b"accord bench workload policy (INSECURE simulation)\n";

/// The coordinator policy named in the bench manifest: launch the
/// coordinator with it (`accord-guest coordinator --policy`), since the
/// bench's workloads check the coordinator's HOST_DATA against its hash
/// by default (the coordinator does not check its own).
pub const BENCH_COORDINATOR_POLICY: &[u8] =
    b"accord bench coordinator policy (INSECURE simulation)\n";

/// Where the simulated chip lives unless `--state` says otherwise (as in
/// `accord-guest`).
const DEFAULT_CHIP_STATE: &str = "/var/lib/accord/insecure-simulated-chip";

/// How many error messages are kept for the report.
const KEPT_ERRORS: usize = 5;

/// `accord-demo bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load the mesh API with simulated workloads calling NewMeshCert and
    /// report attestations/s and latency percentiles.
    Attest(AttestArgs),
    /// Time the cryptographic floor of one attestation: evidence
    /// verification, certificate signature, TLS 1.3 handshake.
    Floor(FloorArgs),
    /// Set a manifest accepting the bench's simulated workloads (INSECURE;
    /// for benchmarks and tests).
    #[command(hide = true)]
    Setup(SetupArgs),
    /// Attack a coordinator's user API with many connections streaming
    /// maximum-size frames from loopback source addresses (for
    /// benchmarks and tests).
    #[command(hide = true)]
    Exhaust(crate::bench_exhaust::ExhaustArgs),
}

/// Which HOST_DATA the simulated workloads report.
#[derive(Debug, Args)]
pub struct HostDataArgs {
    /// HOST_DATA to report (32 bytes hex) [default: SHA-256 of the bench
    /// workload policy].
    #[arg(long, value_name = "HEX", conflicts_with = "policy")]
    host_data: Option<String>,

    /// Report HOST_DATA = SHA-256 of this policy file.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

impl HostDataArgs {
    fn host_data(&self) -> anyhow::Result<[u8; 32]> {
        if let Some(text) = &self.host_data {
            return hex::decode_array(text.trim())
                .map_err(|err| anyhow::anyhow!("--host-data: {err}"));
        }
        Ok(sha256(&self.policy_bytes()?))
    }

    fn policy_bytes(&self) -> anyhow::Result<Vec<u8>> {
        match &self.policy {
            Some(path) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            }
            None => Ok(BENCH_WORKLOAD_POLICY.to_vec()),
        }
    }
}

/// Which INSECURE simulated TEE the bench's workloads (and the coordinator
/// they attest to) run on.
#[derive(Debug, Args)]
pub struct TeeArgs {
    /// The INSECURE simulated TEE: the SEV-SNP chip or the TDX platform
    /// (its state in `--state`; launch the coordinator with the same
    /// `--tee`).
    #[arg(long, value_name = "NAME", default_value = INSECURE_SIMULATED, value_parser = [INSECURE_SIMULATED, INSECURE_SIMULATED_TDX])]
    tee: String,
}

/// `accord-demo bench attest`
#[derive(Debug, Args)]
pub struct AttestArgs {
    /// The coordinator's mesh API; repeat it to spread the attestations
    /// round robin over several coordinators (replicas).
    #[arg(
        short = 'c',
        long = "coordinator",
        value_name = "HOST:PORT",
        required = true
    )]
    coordinator: Vec<String>,

    /// Simulated workloads running at once (with --rate: at most this many
    /// attestations in flight).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    concurrency: u32,

    /// Open loop: start one attestation every 1/R seconds (R per second)
    /// instead of each worker looping back to back; latency counts from
    /// the scheduled start, so waiting for a free slot is included.
    #[arg(long, value_name = "R")]
    rate: Option<f64>,

    /// Measured seconds (after the warm-up).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    duration: f64,

    /// Seconds of load before measuring (not counted in the percentiles).
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    warmup: f64,

    /// Stop early once this many certificates were issued in all (warm-up
    /// included).
    #[arg(long, value_name = "N")]
    stop_after: Option<u64>,

    /// The simulated chip's state directory (share the coordinator's
    /// `STATE/chip`, so the evidence chains to the root its manifest
    /// trusts, and the coordinator's evidence to the root the workloads
    /// check it against).
    #[arg(long, value_name = "CHIPDIR")]
    state: Option<PathBuf>,

    /// A policy hash (HOST_DATA, 32 bytes hex) the coordinator's evidence
    /// may carry; repeatable [default: SHA-256 of the bench coordinator
    /// policy, which `accord-demo bench setup` names].
    #[arg(long, value_name = "HEX", value_parser = parse_hash)]
    coordinator_policy: Vec<[u8; 32]>,

    #[command(flatten)]
    host: HostDataArgs,

    #[command(flatten)]
    tee: TeeArgs,

    /// Spread the connections over this many loopback source addresses
    /// (127.2.x.y, round robin; for a coordinator on loopback), so that
    /// more than its per-source limit (32) may be in flight [default: 1,
    /// the system's choice].
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=62500))]
    sources: u32,

    /// Print one JSON object instead of a table (and no progress).
    #[arg(long)]
    json: bool,
}

/// `accord-demo bench floor`
#[derive(Debug, Args)]
pub struct FloorArgs {
    /// Rounds of each measurement.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    // The evidence timed: the simulated SEV-SNP chip's (full chain, and a
    // cached chain) or the simulated TDX's (collateral attached, and the
    // in-service verifier with the collateral held).
    #[command(flatten)]
    tee: TeeArgs,

    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// `accord-demo bench setup`
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The coordinator's user API.
    #[arg(short = 'u', long = "user-api", value_name = "HOST:PORT")]
    user_api: String,

    /// The coordinator's simulated chip or TDX platform (`STATE/chip`).
    #[arg(long, value_name = "CHIPDIR")]
    state: PathBuf,

    /// The workload policy to admit [default: the bench workload policy].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,

    #[command(flatten)]
    tee: TeeArgs,
}

/// Runs `accord-demo bench ...`.
pub fn run(command: BenchCommand) -> ExitCode {
    let result = match command {
        BenchCommand::Attest(args) => attest(&args),
        BenchCommand::Floor(args) => floor(&args),
        BenchCommand::Setup(args) => setup(&args),
        BenchCommand::Exhaust(args) => crate::bench_exhaust::run_cli(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    default_provider().sha256(&[bytes])
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The INSECURE simulated TEE of the bench: the workloads' (and, in the
/// same state directory, the coordinator's).
enum Chip {
    /// The simulated SEV-SNP chip.
    Snp(SimulatedSnp),
    /// The simulated TDX platform.
    Tdx(SimulatedTdx),
}

impl Chip {
    /// Opens (creating on first use) the simulated TEE `tee` in `state`,
    /// reporting `host_data` (on TDX in MRCONFIGID). (It prints its
    /// INSECURE banner on stderr.)
    fn open(tee: &str, state: Option<&Path>, host_data: [u8; 32]) -> anyhow::Result<Self> {
        let dir = state.unwrap_or(Path::new(DEFAULT_CHIP_STATE));
        let config = SimulatedConfig {
            host_data,
            ..SimulatedConfig::default()
        };
        Ok(match tee {
            INSECURE_SIMULATED => Self::Snp(
                SimulatedSnp::open(dir, &config)
                    .with_context(|| format!("opening the simulated chip in {}", dir.display()))?,
            ),
            INSECURE_SIMULATED_TDX => {
                Self::Tdx(SimulatedTdx::open(dir, &config).with_context(|| {
                    format!("opening the simulated TDX platform in {}", dir.display())
                })?)
            }
            other => bail!(
                "--tee {other}: the bench runs on {INSECURE_SIMULATED} or {INSECURE_SIMULATED_TDX}"
            ),
        })
    }

    /// Reference values accepting this TEE's evidence with any policy hash
    /// (HOST_DATA or MRCONFIGID; a manifest's Policies or the expected
    /// coordinator policy decide which).
    fn reference_values(&self) -> ReferenceValues {
        match self {
            Self::Snp(chip) => {
                let mut snp = chip.reference_values();
                snp.host_data = None;
                ReferenceValues {
                    snp: vec![snp],
                    tdx: Vec::new(),
                }
            }
            Self::Tdx(platform) => {
                let mut tdx = platform.reference_values();
                tdx.policy_hash = None;
                ReferenceValues {
                    snp: Vec::new(),
                    tdx: vec![tdx],
                }
            }
        }
    }

    fn provider(self) -> Arc<dyn TeeProvider> {
        match self {
            Self::Snp(chip) => Arc::new(chip),
            Self::Tdx(platform) => Arc::new(platform),
        }
    }
}

// ---------------------------------------------------------------------------
// attest

fn parse_hash(text: &str) -> Result<[u8; 32], String> {
    hex::decode_array(text.trim()).map_err(|err| err.to_string())
}

/// What the simulated workloads demand of the coordinator: the TEE's
/// reference values (any policy hash) and one of `policies`.
fn coordinator_policy(chip: &Chip, policies: &[[u8; 32]]) -> PeerPolicy {
    let expected = if policies.is_empty() {
        vec![sha256(BENCH_COORDINATOR_POLICY)]
    } else {
        policies.to_vec()
    };
    PeerPolicy {
        reference: chip.reference_values(),
        expected_policy_hashes: Some(expected),
        at: Clock::System,
    }
}

/// One simulated workload's attempt: fresh key, attested connection (the
/// coordinator's evidence verified against `coordinator`), NewMeshCert,
/// check the certificate is for the key. The deployment is not pinned
/// (the bench measures the coordinator, not the initializer's checks of
/// the reply).
async fn attestation(
    addr: &str,
    coordinator: &PeerPolicy,
    source: Option<std::net::IpAddr>,
    tee: &Arc<dyn TeeProvider>,
) -> anyhow::Result<()> {
    let identity = Identity::ephemeral().context("generating the workload key")?;
    let spki = identity.spki().to_vec();
    let mut client =
        MeshClient::connect_from(addr, source, coordinator.clone(), Arc::clone(tee), identity)
            .await?;
    match client.new_mesh_cert().await? {
        NewMeshCertReply::MeshCert(cert) => {
            let cert_chain = cert.cert_chain;
            let leaf = cert_chain.first().context("the reply has no certificate")?;
            let parsed = accord_core::x509::Certificate::from_der(leaf)
                .map_err(|err| anyhow::anyhow!("the certificate does not parse: {err}"))?;
            if parsed.spki_der() != spki.as_slice() {
                bail!("the certificate is not for the workload's key");
            }
            Ok(())
        }
        NewMeshCertReply::Error(error) => Err(error.into_api_error().into()),
    }
}

/// What the workers share.
struct Shared {
    /// The coordinators, taken round robin.
    addrs: Vec<String>,
    /// What their evidence must satisfy.
    coordinator: PeerPolicy,
    /// The round-robin counter (one for all workers).
    next: AtomicU64,
    /// Loopback source addresses to spread over (1: the system's choice).
    sources: u32,
    /// Certificates issued by each coordinator (same order as `addrs`).
    per_coordinator: Vec<AtomicU64>,
    ok: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
    first_errors: Mutex<Vec<String>>,
    measure_from: Instant,
    deadline: Instant,
    stop_after: Option<u64>,
}

impl Shared {
    /// The next coordinator in the round robin (its index), and the
    /// attestation's number.
    fn pick(&self) -> (usize, u64) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        ((n % self.addrs.len() as u64) as usize, n)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// One attestation at the next coordinator, timed from `start` (its
    /// scheduled start in the open loop), recorded in `window` if it ended
    /// inside the measured window.
    async fn attest_once(&self, tee: &Arc<dyn TeeProvider>, start: Instant, window: &mut Window) {
        let (index, n) = self.pick();
        let source = (self.sources > 1).then(|| {
            let k = n % u64::from(self.sources);
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                127,
                2,
                u8::try_from(k / 250).unwrap_or(u8::MAX),
                u8::try_from(k % 250 + 1).unwrap_or(u8::MAX),
            ))
        });
        let result = attestation(&self.addrs[index], &self.coordinator, source, tee).await;
        let end = Instant::now();
        let in_window = end >= self.measure_from && end <= self.deadline;
        match result {
            Ok(()) => {
                let done = self.ok.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(count) = self.per_coordinator.get(index) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                if in_window {
                    window.latencies.push(end - start);
                }
                if self.stop_after.is_some_and(|n| done >= n) {
                    self.stop.store(true, Ordering::Relaxed);
                }
            }
            Err(err) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                window.errors += u64::from(in_window);
                let mut kept = self.first_errors.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() < KEPT_ERRORS {
                    kept.push(format!("{err:#}").replace('\n', " "));
                }
            }
        }
    }
}

/// Latency samples of attestations that ended inside the measured window.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    errors: u64,
    /// Open loop: attestations scheduled inside the measured window that
    /// started more than [`LATE`] after their scheduled time.
    late: u64,
}

impl Window {
    fn merge(&mut self, other: Window) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.late += other.late;
    }
}

/// How late an open-loop attestation may start before it counts as late.
const LATE: Duration = Duration::from_millis(10);

/// Closed loop: one worker's attestations back to back.
async fn worker(tee: Arc<dyn TeeProvider>, shared: Arc<Shared>) -> Window {
    let mut window = Window::default();
    while Instant::now() < shared.deadline && !shared.stopped() {
        shared.attest_once(&tee, Instant::now(), &mut window).await;
    }
    window
}

/// Open loop: starts attestation k at `started + k / rate` (as soon as one
/// of `concurrency` slots is free), until the deadline.
async fn dispatcher(
    tee: Arc<dyn TeeProvider>,
    shared: Arc<Shared>,
    started: Instant,
    rate: f64,
    concurrency: u32,
) -> anyhow::Result<Window> {
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
    let mut tasks = tokio::task::JoinSet::new();
    let mut window = Window::default();
    let mut k: u64 = 0;
    loop {
        let scheduled = started + Duration::from_secs_f64(k as f64 / rate);
        k += 1;
        if scheduled >= shared.deadline || shared.stopped() {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let permit = Arc::clone(&slots).acquire_owned().await?;
        if Instant::now().saturating_duration_since(scheduled) > LATE
            && scheduled >= shared.measure_from
        {
            window.late += 1;
        }
        let (tee, shared) = (Arc::clone(&tee), Arc::clone(&shared));
        tasks.spawn(async move {
            let mut window = Window::default();
            shared.attest_once(&tee, scheduled, &mut window).await;
            drop(permit);
            window
        });
        // Collect finished tasks as we go (bounded memory on long runs).
        while let Some(done) = tasks.try_join_next() {
            window.merge(done.context("an attestation task panicked")?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        window.merge(done.context("an attestation task panicked")?);
    }
    Ok(window)
}

/// The `q` quantile (nearest rank) of sorted samples, in ms.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn attest(args: &AttestArgs) -> anyhow::Result<()> {
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    if !(args.warmup >= 0.0 && args.warmup.is_finite()) {
        bail!("--warmup must be a number of seconds");
    }
    if let Some(rate) = args.rate
        && !(rate > 0.0 && rate.is_finite())
    {
        bail!("--rate must be a positive number of attestations per second");
    }
    let host_data = args.host.host_data()?;
    let chip = Chip::open(&args.tee.tee, args.state.as_deref(), host_data)?;
    let coordinator = coordinator_policy(&chip, &args.coordinator_policy);
    let tee = chip.provider();
    let runtime = runtime()?;
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(args.warmup);
    let deadline = measure_from + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        addrs: args.coordinator.clone(),
        coordinator,
        next: AtomicU64::new(0),
        sources: args.sources,
        per_coordinator: args.coordinator.iter().map(|_| AtomicU64::new(0)).collect(),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        first_errors: Mutex::new(Vec::new()),
        measure_from,
        deadline,
        stop_after: args.stop_after,
    });

    let window = runtime.block_on(async {
        let progress = (!args.json).then(|| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut last = 0;
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let ok = shared.ok.load(Ordering::Relaxed);
                    eprintln!(
                        "{:>5.0} s  {ok} certificates ({}/s)  {} errors",
                        started.elapsed().as_secs_f64(),
                        ok - last,
                        shared.errors.load(Ordering::Relaxed)
                    );
                    last = ok;
                }
            })
        });
        let mut window = Window::default();
        if let Some(rate) = args.rate {
            window = dispatcher(
                Arc::clone(&tee),
                Arc::clone(&shared),
                started,
                rate,
                args.concurrency,
            )
            .await?;
        } else {
            let mut tasks = Vec::new();
            for _ in 0..args.concurrency {
                tasks.push(tokio::spawn(worker(Arc::clone(&tee), Arc::clone(&shared))));
            }
            for task in tasks {
                window.merge(task.await.context("a worker panicked")?);
            }
        }
        if let Some(progress) = progress {
            progress.abort();
        }
        anyhow::Ok(window)
    })?;
    let elapsed = started.elapsed();

    let mut latencies = window.latencies;
    let window_errors = window.errors;
    latencies.sort();
    // With --stop-after the window may end early: divide by the time the
    // run actually lasted past the warm-up.
    let measured = elapsed
        .saturating_sub(Duration::from_secs_f64(args.warmup))
        .min(Duration::from_secs_f64(args.duration))
        .as_secs_f64()
        .max(1e-9);
    let ok = latencies.len();
    let mean_ms = if ok == 0 {
        0.0
    } else {
        latencies.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / ok as f64
    };
    let errors = shared.errors.load(Ordering::Relaxed);
    let first_errors = shared
        .first_errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let per_coordinator: Vec<u64> = shared
        .per_coordinator
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .collect();
    let json = serde_json::json!({
        "attestations_per_s": ok as f64 / measured,
        "p50_ms": quantile_ms(&latencies, 0.50),
        "p90_ms": quantile_ms(&latencies, 0.90),
        "p99_ms": quantile_ms(&latencies, 0.99),
        "max_ms": latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        "mean_ms": mean_ms,
        "errors": errors,
        "errors_in_window": window_errors,
        "measured": ok,
        "total_ok": shared.ok.load(Ordering::Relaxed),
        "concurrency": args.concurrency,
        "duration_s": measured,
        "warmup_s": args.warmup,
        "first_errors": first_errors,
        "coordinators": args.coordinator.len(),
        "per_coordinator_ok": per_coordinator,
        "rate": args.rate,
        "late": window.late,
    });
    if args.json {
        println!("{json}");
    } else {
        match args.rate {
            None => println!(
                "accord bench attest: closed loop, {} concurrent simulated workloads back to back, {:.1} s measured after {:.1} s warm-up",
                args.concurrency, measured, args.warmup
            ),
            Some(rate) => println!(
                "accord bench attest: open loop, {rate} attestations/s scheduled, at most {} in flight, {:.1} s measured after {:.1} s warm-up",
                args.concurrency, measured, args.warmup
            ),
        }
        if args.coordinator.len() > 1 {
            println!(
                "  coordinators    {} round robin: {}",
                args.coordinator.len(),
                args.coordinator
                    .iter()
                    .zip(&per_coordinator)
                    .map(|(addr, n)| format!("{addr} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        println!(
            "  attestations/s  {:.1}  ({ok} in the window, {} in all)",
            ok as f64 / measured,
            shared.ok.load(Ordering::Relaxed)
        );
        println!(
            "  latency ms      p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
            quantile_ms(&latencies, 0.50),
            quantile_ms(&latencies, 0.90),
            quantile_ms(&latencies, 0.99),
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            mean_ms
        );
        if args.rate.is_some() {
            println!(
                "  late starts     {} (more than {} ms after schedule: every slot busy)",
                window.late,
                LATE.as_millis()
            );
        }
        println!("  errors          {errors}");
        for message in &first_errors {
            println!("    {message}");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// floor

/// Timed rounds: wall time of each, and the thread's CPU time over all of
/// them (robust to preemption on a shared machine).
struct Timing {
    samples: Vec<Duration>,
    cpu: Duration,
}

impl Timing {
    fn new() -> Self {
        Self {
            samples: Vec::new(),
            cpu: Duration::ZERO,
        }
    }

    /// Runs `f` `rounds` times on this thread.
    fn run<T>(
        &mut self,
        rounds: usize,
        mut f: impl FnMut(usize) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let cpu_before = thread_cpu()?;
        let mut last = None;
        for round in 0..rounds {
            let start = Instant::now();
            last = Some(f(round)?);
            self.samples.push(start.elapsed());
        }
        self.cpu += thread_cpu()?.saturating_sub(cpu_before);
        last.context("no rounds")
    }

    /// CPU per round in µs.
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.samples.len().max(1) as f64
    }

    fn p50_us(&self) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort();
        quantile_ms(&sorted, 0.5) * 1e3
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"cpu_us": self.cpu_us(), "p50_us": self.p50_us()})
    }
}

/// The CPU time this thread has used (`/proc/thread-self/schedstat`).
fn thread_cpu() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    let nanos: u64 = text
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()
        .context("schedstat")?;
    Ok(Duration::from_nanos(nanos))
}

/// The evidence part of the floor on one simulated TEE: generation, full
/// verification, verification with what a coordinator keeps (timed
/// rounds), and the claims.
struct EvidenceFloor {
    generation: Timing,
    full: Timing,
    cached: Timing,
    claims: evidence::Claims,
}

/// Times `rounds` evidence generations by `tee` and `rounds` full
/// verifications (`evidence::verify`) of the last one against
/// `reference`: the generation and full timings, the sample and its claims.
fn generate_and_verify(
    tee: &dyn TeeProvider,
    reference: &ReferenceValues,
    rounds: usize,
) -> anyhow::Result<(Timing, Timing, evidence::Evidence, evidence::Claims)> {
    let mut generation = Timing::new();
    let sample = generation.run(rounds, |round| {
        let data = [u8::try_from(round % 251).unwrap_or(0); 64];
        Ok(tee.evidence(&data)?)
    })?;
    let mut full = Timing::new();
    let claims = full.run(rounds, |_| {
        Ok(evidence::verify(
            &sample,
            reference,
            system_now(),
            default_provider(),
        )?)
    })?;
    Ok((generation, full, sample, claims))
}

/// The simulated SEV-SNP chip: full = `evidence::verify` (VCEK ← ASK ← ARK
/// and the report); cached = the report against a chain verified once.
fn snp_floor(rounds: usize) -> anyhow::Result<EvidenceFloor> {
    use accord_core::evidence::snp::{self, Certs, TrustRoots, VerifiedChain};

    let provider = default_provider();
    let chip = SimulatedSnp::ephemeral(&SimulatedConfig::default())?;
    let snp_reference = chip.reference_values();
    let reference = ReferenceValues {
        snp: vec![snp_reference.clone()],
        tdx: Vec::new(),
    };
    eprintln!("INSECURE SIMULATION: simulated SEV-SNP chip; {rounds} rounds each");

    // Evidence generation (the simulated chip's P-384 signature: done by
    // the coordinator process here, by the AMD secure processor on
    // hardware), then full verification, as the coordinator does per
    // connection.
    let (generation, full, sample, claims) = generate_and_verify(&chip, &reference, rounds)?;

    // Verification against a chain verified once.
    let evidence::Evidence::Snp(snp_evidence) = &sample else {
        bail!("the simulated chip gave no SNP evidence");
    };
    let root = chip.trusted_root();
    let vcek = snp_evidence.vcek.as_deref().context("no VCEK")?;
    let chain = VerifiedChain::verify(
        &Certs { leaf: vcek },
        None,
        &TrustRoots::custom(&root.ark, &root.ask),
        None,
        system_now(),
        provider,
    )?;
    let mut cached = Timing::new();
    cached.run(rounds, |_| {
        let verified =
            snp::verify_with_chain(&chain, &snp_evidence.report, system_now(), provider)?;
        let claims = snp::SnpClaims::from(&verified);
        snp_reference
            .check(&claims)
            .map_err(|m| anyhow::anyhow!("reference values: {m:?}"))
    })?;
    Ok(EvidenceFloor {
        generation,
        full,
        cached,
        claims,
    })
}

/// The simulated TDX: full = `evidence::verify` with the collateral the
/// quote carries (collateral signatures and CRLs, PCK chain, QE report,
/// quote); cached = the in-service verifier with that collateral held and
/// the platform remembered, as a coordinator verifies after its first TDX
/// attestation.
fn tdx_floor(rounds: usize) -> anyhow::Result<EvidenceFloor> {
    use accord_core::evidence::ServiceVerifier;

    let provider = default_provider();
    let platform = SimulatedTdx::ephemeral(&SimulatedConfig::default())?;
    let reference = ReferenceValues {
        snp: Vec::new(),
        tdx: vec![platform.reference_values()],
    };
    eprintln!("INSECURE SIMULATION: simulated TDX; {rounds} rounds each");

    // Quote generation (the simulated quoting enclave's two P-256
    // signatures, attestation key and PCK: done on the host's quoting
    // enclave on hardware), then full verification.
    let (generation, full, sample, claims) = generate_and_verify(&platform, &reference, rounds)?;

    let mut service = ServiceVerifier::new();
    service.verify(&sample, &reference, system_now(), provider)?;
    let mut cached = Timing::new();
    cached.run(rounds, |_| {
        Ok(service.verify(&sample, &reference, system_now(), provider)?)
    })?;
    Ok(EvidenceFloor {
        generation,
        full,
        cached,
        claims,
    })
}

fn floor(args: &FloorArgs) -> anyhow::Result<()> {
    use accord_core::ca::{Ca, WorkloadCertRequest};
    use accord_core::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};
    use accord_guest::coordinator::OsRandom;

    let rounds = args.rounds as usize;
    let provider = default_provider();
    let tdx = args.tee.tee == INSECURE_SIMULATED_TDX;
    let EvidenceFloor {
        generation,
        full,
        cached,
        claims,
    } = if tdx {
        tdx_floor(rounds)?
    } else {
        snp_floor(rounds)?
    };

    // One workload certificate, with the claims extensions.
    let rng = OsRandom;
    let engine = SeedEngine::new(SecretSeed::generate(&rng)?, Salt::generate(&rng)?, provider);
    let ca = Ca::new(
        &engine.root_ca_key()?,
        MeshCaKey::random(&rng)?,
        system_now(),
        &rng,
    )?;
    let workload = Identity::ephemeral()?;
    let sans = vec!["bench-workload".to_string()];
    let mut issue = Timing::new();
    issue.run(rounds, |_| {
        Ok(ca.issue(
            &WorkloadCertRequest {
                public_key_spki: workload.spki(),
                sans: &sans,
                workload_secret_id: Some("accord/bench/workload"),
                claims: Some(&claims),
            },
            system_now(),
            &rng,
        )?)
    })?;

    let (handshake, server_cpu) = tls_floor(rounds)?;

    // The floor as issue 5 defines it: verification + signature + one
    // TLS 1.3 handshake with its key generation (both ends' CPU).
    let tls_us = handshake.cpu_us() + server_cpu;
    let floor_us = full.cpu_us() + issue.cpu_us() + tls_us;
    let floor_cached_us = cached.cpu_us() + issue.cpu_us() + tls_us;
    // What the coordinator itself does per attestation, priced alone: the
    // server half of the handshake, its own (simulated) evidence, the
    // client's full verification, the signature.
    let coordinator_side_us = server_cpu + generation.cpu_us() + full.cpu_us() + issue.cpu_us();
    let json = serde_json::json!({
        "tee": args.tee.tee,
        "rounds": rounds,
        "evidence_generation": generation.json(),
        "verify_full_chain": full.json(),
        "verify_cached_chain": cached.json(),
        "issue_certificate": issue.json(),
        "tls13_client_with_keygen": handshake.json(),
        "tls13_server_cpu_us": server_cpu,
        "tls13_handshake_cpu_us": tls_us,
        "floor_us": floor_us,
        "floor_cached_chain_us": floor_cached_us,
        "coordinator_side_us": coordinator_side_us,
    });
    if args.json {
        println!("{json}");
    } else {
        let row = |name: &str, t: &Timing| {
            println!(
                "  {name:<50} CPU {:>8.1} µs  wall p50 {:>8.1} µs",
                t.cpu_us(),
                t.p50_us()
            );
        };
        println!(
            "accord bench floor ({}, {rounds} rounds each, CPU time per round)",
            args.tee.tee
        );
        if tdx {
            row("quote generation (simulated QE, 2 × P-256)", &generation);
            row("quote verification, full (collateral attached)", &full);
            row("quote verification, in service (collateral held)", &cached);
        } else {
            row("evidence generation (simulated chip, P-384)", &generation);
            row("evidence verification, full VCEK<-ASK<-ARK chain", &full);
            row("evidence verification, cached chain", &cached);
        }
        row("workload certificate (Ca::issue, P-384)", &issue);
        row("TLS 1.3 client + P-256 key generation", &handshake);
        println!("  {:<50} CPU {server_cpu:>8.1} µs", "TLS 1.3 server");
        println!(
            "  {:<50} CPU {floor_us:>8.1} µs",
            "floor: full chain + issue + TLS (both ends)"
        );
        println!(
            "  {:<50} CPU {floor_cached_us:>8.1} µs",
            "floor: cached chain + issue + TLS (both ends)"
        );
        println!(
            "  {:<50} CPU {coordinator_side_us:>8.1} µs",
            "coordinator side: TLS server + evidence + full chain + issue"
        );
    }
    Ok(())
}

/// Times `rounds` TLS 1.3 handshakes on loopback (mutual certificates as
/// in aTLS, each client with a fresh P-256 identity, no attestation):
/// the client's timing (wall and CPU, key generation included), and the
/// server thread's CPU per round in µs.
fn tls_floor(rounds: usize) -> anyhow::Result<(Timing, f64)> {
    use accord_guest::atls::tls;

    let server_identity = Identity::ephemeral()?;
    let acceptor =
        tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(&server_identity, true)?));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let server = std::thread::spawn(move || -> anyhow::Result<f64> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let before = thread_cpu()?;
            for _ in 0..rounds {
                let (tcp, _) = listener.accept().await?;
                tcp.set_nodelay(true)?;
                let mut stream = acceptor.accept(tcp).await?;
                // Completes the handshake (the client's Finished).
                let mut byte = [0u8; 1];
                tokio::io::AsyncReadExt::read_exact(&mut stream, &mut byte).await?;
            }
            let spent = thread_cpu()?.saturating_sub(before);
            Ok(spent.as_secs_f64() * 1e6 / rounds as f64)
        })
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut timing = Timing::new();
    let cpu_before = thread_cpu()?;
    runtime.block_on(async {
        for _ in 0..rounds {
            let start = Instant::now();
            let identity = Identity::ephemeral()?;
            let connector =
                tokio_rustls::TlsConnector::from(Arc::new(tls::client_config(Some(&identity))?));
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut stream = connector.connect(tls::server_name(), tcp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut stream, b"x").await?;
            tokio::io::AsyncWriteExt::flush(&mut stream).await?;
            timing.samples.push(start.elapsed());
        }
        anyhow::Ok(())
    })?;
    timing.cpu = thread_cpu()?.saturating_sub(cpu_before);
    let server_cpu = server
        .join()
        .map_err(|_| anyhow::anyhow!("the TLS server thread panicked"))??;
    Ok((timing, server_cpu))
}

// ---------------------------------------------------------------------------
// setup

fn setup(args: &SetupArgs) -> anyhow::Result<()> {
    let workload_policy = HostDataArgs {
        host_data: None,
        policy: args.policy.clone(),
    }
    .policy_bytes()?;
    // The TEE as the coordinator opened it; the reference values accept
    // any policy hash (the manifest's Policies decide which).
    let reference = Chip::open(&args.tee.tee, Some(&args.state), [0; 32])?.reference_values();
    let manifest = serde_json::json!({
        "Policies": {
            hex::encode(&sha256(BENCH_COORDINATOR_POLICY)): {"SANs": ["coordinator"], "Role": "coordinator"},
            hex::encode(&sha256(&workload_policy)): {"SANs": ["bench-workload"], "WorkloadSecretID": "accord/bench/workload"},
        },
        "ReferenceValues": serde_json::to_value(&reference)?,
        "WorkloadOwnerPubKeys": [],
        "SeedshareOwnerPubKeys": [],
        "SeedshareThreshold": 1,
    });
    let request = SetManifest {
        manifest: serde_json::to_vec_pretty(&manifest)?,
        policies: vec![BENCH_COORDINATOR_POLICY.to_vec(), workload_policy],
        expected_previous_transition: None,
        signatures: Vec::new(),
        reshare: false,
    };
    let policy = PeerPolicy {
        reference,
        expected_policy_hashes: None,
        at: Clock::System,
    };
    let response = runtime()?.block_on(async {
        let mut client = UserClient::connect(&args.user_api, policy).await?;
        client.call(request).await
    })?;
    match response {
        SetManifestReply::ManifestSet(ManifestSet { generation, .. }) => {
            println!("manifest set: generation {generation}");
            Ok(())
        }
        SetManifestReply::Error(error) => Err(error.into_api_error().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((quantile_ms(&samples, 0.5) - 50.0).abs() < 1e-9);
        assert!((quantile_ms(&samples, 0.99) - 99.0).abs() < 1e-9);
        assert!((quantile_ms(&samples, 1.0) - 100.0).abs() < 1e-9);
        assert!(quantile_ms(&[], 0.5).abs() < 1e-9);
    }

    #[test]
    fn the_default_host_data_is_the_bench_policy_hash() {
        let args = HostDataArgs {
            host_data: None,
            policy: None,
        };
        assert_eq!(args.host_data().unwrap(), sha256(BENCH_WORKLOAD_POLICY));
    }
}
