//! `accord-demo bench setup` and `accord-demo bench attest --json` against
//! coordinators running in this test process (INSECURE simulated chip,
//! loopback): the load generator gets certificates without errors and its
//! JSON has the fields issue 5 fixes; with two `-c` it really attests at
//! both (round robin); with `--rate` (open loop) it issues about rate ×
//! duration certificates; with `--tee insecure-simulated-tdx` (setup and
//! attest) the workloads and the coordinator are on the simulated TDX, and
//! a TDX load at a SEV-SNP coordinator gets nothing. No latency
//! thresholds.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_guest::tee::simulated::SimulatedConfig;
use accord_guest::tee::{self, TeeOptions, TeeProvider};

const WAIT: Duration = Duration::from_secs(60);

/// A loopback address with a port that was free a moment ago.
fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Starts the coordinator in a background thread (it lives until the test
/// process exits) and waits until both APIs accept connections.
fn start_coordinator(state: &Path) -> (String, String) {
    start_coordinator_with_chip(state, &state.join("chip"))
}

/// As [`start_coordinator`], with the simulated chip in `chip` (several
/// coordinators may share one chip, so one workload chip fits them all).
fn start_coordinator_with_chip(state: &Path, chip: &Path) -> (String, String) {
    start_coordinator_on(state, chip, "insecure-simulated")
}

/// As [`start_coordinator_with_chip`], on the simulated TEE `tee`.
fn start_coordinator_on(state: &Path, chip: &Path, tee: &str) -> (String, String) {
    let user = free_addr();
    let mesh = free_addr();
    // Launched with the bench coordinator policy, which `bench attest`
    // checks the coordinator's HOST_DATA against by default.
    let options = TeeOptions {
        simulated_state: chip.to_path_buf(),
        simulated: SimulatedConfig {
            host_data: accord_core::crypto::default_provider()
                .sha256(&[accord_demo::bench::BENCH_COORDINATOR_POLICY]),
            ..SimulatedConfig::default()
        },
        ..TeeOptions::default()
    };
    // The chip is created here, before anything else opens it.
    let provider: Arc<dyn TeeProvider> = tee::open(tee, &options).unwrap().into();
    let (state_dir, user_addr, mesh_addr) = (state.to_path_buf(), user.clone(), mesh.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(accord_guest::coordinator::run(
                provider,
                accord_guest::coordinator::StoreLocation::Dir(state_dir.clone()),
                &user_addr,
                &mesh_addr,
            ))
            .unwrap();
    });
    let start = Instant::now();
    for addr in [&user, &mesh] {
        while TcpStream::connect(addr.as_str()).is_err() {
            assert!(start.elapsed() < WAIT, "the coordinator does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (user, mesh)
}

fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord-demo"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bench_attest_gets_certificates_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (user, mesh) = start_coordinator(&state);
    let chip = state.join("chip");
    let chip = chip.to_str().unwrap();

    bench_setup(&user, chip);

    let output = accord(&[
        "bench",
        "attest",
        "-c",
        &mesh,
        "--concurrency",
        "2",
        "--duration",
        "2",
        "--state",
        chip,
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    // Exactly one JSON object.
    let json: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("not one JSON object ({err}): {stdout:?}; stderr: {stderr}"));
    assert_eq!(json["errors"], 0, "{json}");
    assert!(json["attestations_per_s"].as_f64().unwrap() > 0.0, "{json}");
    for field in ["p50_ms", "p90_ms", "p99_ms", "max_ms"] {
        assert!(json[field].as_f64().is_some(), "{field} missing: {json}");
    }
    assert!(json["total_ok"].as_u64().unwrap() > 0, "{json}");
    // --json prints no progress.
    assert!(!stderr.contains("certificates ("), "{stderr}");

    // The workloads verify the coordinator: pinned to another coordinator
    // policy, they get nothing.
    let output = accord(&[
        "bench",
        "attest",
        "-c",
        &mesh,
        "--concurrency",
        "1",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--state",
        chip,
        "--coordinator-policy",
        &"ab".repeat(32),
        "--json",
    ]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["total_ok"], 0, "{json}");
    assert!(json["errors"].as_u64().unwrap() > 0, "{json}");
    let first = json["first_errors"][0].as_str().unwrap();
    assert!(first.contains("policy hash"), "{json}");
}

#[test]
fn bench_attest_without_a_coordinator_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let chip = dir.path().join("chip");
    let addr = free_addr();
    let output = accord(&[
        "bench",
        "attest",
        "-c",
        &addr,
        "--concurrency",
        "1",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--state",
        chip.to_str().unwrap(),
        "--json",
    ]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(json["errors"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(json["attestations_per_s"], 0.0, "{json}");
    assert!(
        json["first_errors"][0]
            .as_str()
            .unwrap()
            .contains("connecting"),
        "{json}"
    );
}

/// `accord-demo bench setup` against the coordinator at `user` (must succeed).
fn bench_setup(user: &str, chip: &str) {
    bench_setup_on(user, chip, "insecure-simulated");
}

/// [`bench_setup`] with `--tee tee`.
fn bench_setup_on(user: &str, chip: &str, tee: &str) {
    let output = accord(&["bench", "setup", "-u", user, "--state", chip, "--tee", tee]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `accord` and parses its one JSON object (the run must succeed).
fn accord_json(args: &[&str]) -> serde_json::Value {
    let output = accord(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|err| panic!("not one JSON object ({err}): {stdout:?}; stderr: {stderr}"))
}

#[test]
fn bench_attest_round_robin_attests_at_every_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let chip = dir.path().join("chip");
    let (user_a, mesh_a) = start_coordinator_with_chip(&dir.path().join("a"), &chip);
    let (user_b, mesh_b) = start_coordinator_with_chip(&dir.path().join("b"), &chip);
    let chip = chip.to_str().unwrap();
    for user in [&user_a, &user_b] {
        bench_setup(user, chip);
    }

    let json = accord_json(&[
        "bench",
        "attest",
        "-c",
        &mesh_a,
        "-c",
        &mesh_b,
        "--concurrency",
        "3",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--state",
        chip,
        "--json",
    ]);
    assert_eq!(json["errors"], 0, "{json}");
    assert_eq!(json["coordinators"], 2, "{json}");
    assert_eq!(json["rate"], serde_json::Value::Null, "{json}");
    let counts: Vec<u64> = json["per_coordinator_ok"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{json}");
    assert!(
        counts.iter().all(|&n| n > 0),
        "a coordinator was not used: {json}"
    );
    assert_eq!(
        counts.iter().sum::<u64>(),
        json["total_ok"].as_u64().unwrap()
    );
    // One shared counter: the picks alternate, and without errors the
    // counts differ by at most one.
    assert!(counts[0].abs_diff(counts[1]) <= 1, "{json}");

    // Round robin over a live and a dead address fails every other
    // attestation: the picks really go to both addresses.
    let dead = free_addr();
    let json = accord_json(&[
        "bench",
        "attest",
        "-c",
        &mesh_a,
        "-c",
        &dead,
        "--concurrency",
        "1",
        "--duration",
        "1",
        "--warmup",
        "0",
        "--state",
        chip,
        "--json",
    ]);
    let ok = json["total_ok"].as_u64().unwrap();
    let errors = json["errors"].as_u64().unwrap();
    assert!(ok > 0 && errors > 0 && ok.abs_diff(errors) <= 1, "{json}");
}

#[test]
fn bench_attest_open_loop_issues_rate_times_duration() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (user, mesh) = start_coordinator(&state);
    let chip = state.join("chip");
    let chip = chip.to_str().unwrap();
    bench_setup(&user, chip);

    // 20/s for 0.5 s warm-up + 2 s: 50 scheduled starts.
    let json = accord_json(&[
        "bench",
        "attest",
        "-c",
        &mesh,
        "--rate",
        "20",
        "--concurrency",
        "4",
        "--duration",
        "2",
        "--warmup",
        "0.5",
        "--state",
        chip,
        "--json",
    ]);
    assert_eq!(json["errors"], 0, "{json}");
    assert_eq!(json["rate"], 20.0, "{json}");
    assert_eq!(json["coordinators"], 1, "{json}");
    assert!(json["late"].as_u64().is_some(), "{json}");
    let total = json["total_ok"].as_u64().unwrap();
    assert!((48..=50).contains(&total), "not about 20/s × 2.5 s: {json}");
    // The measured window holds about 40 (those ending after the deadline
    // are not counted).
    let measured = json["measured"].as_u64().unwrap();
    assert!((30..=41).contains(&measured), "{json}");
    let rate = json["attestations_per_s"].as_f64().unwrap();
    assert!((15.0..=20.5).contains(&rate), "{json}");

    // The text output names the mode.
    let output = accord(&[
        "bench",
        "attest",
        "-c",
        &mesh,
        "--rate",
        "10",
        "--duration",
        "0.5",
        "--warmup",
        "0",
        "--state",
        chip,
    ]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("open loop"), "{stdout}");
    assert!(stdout.contains("late starts"), "{stdout}");
}

#[test]
fn bench_attest_on_the_simulated_tdx() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("tdx");
    let chip = state.join("chip");
    let (user, mesh) = start_coordinator_on(&state, &chip, "insecure-simulated-tdx");
    let chip = chip.to_str().unwrap();
    bench_setup_on(&user, chip, "insecure-simulated-tdx");

    let attest = |mesh: &str, chip: &str, tee: &str| {
        accord_json(&[
            "bench",
            "attest",
            "-c",
            mesh,
            "--concurrency",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--state",
            chip,
            "--tee",
            tee,
            "--json",
        ])
    };
    let json = attest(&mesh, chip, "insecure-simulated-tdx");
    assert_eq!(json["errors"], 0, "{json}");
    assert!(json["total_ok"].as_u64().unwrap() > 0, "{json}");

    // The flag really changes the TEE: without it, the workloads are the
    // simulated SEV-SNP chip (in its own state directory), which the TDX
    // coordinator's manifest does not admit and whose reference values
    // the TDX coordinator's evidence does not meet.
    let snp_chip = dir.path().join("snp-chip");
    let json = attest(&mesh, snp_chip.to_str().unwrap(), "insecure-simulated");
    assert_eq!(json["total_ok"], 0, "{json}");
    assert!(json["errors"].as_u64().unwrap() > 0, "{json}");

    // And TDX workloads at a SEV-SNP coordinator get nothing either.
    let snp_state = dir.path().join("snp");
    let (snp_user, snp_mesh) = start_coordinator(&snp_state);
    let snp_chip = snp_state.join("chip");
    bench_setup(&snp_user, snp_chip.to_str().unwrap());
    let json = attest(&snp_mesh, chip, "insecure-simulated-tdx");
    assert_eq!(json["total_ok"], 0, "{json}");
    assert!(json["errors"].as_u64().unwrap() > 0, "{json}");
}

#[test]
fn bench_floor_times_the_chosen_tee() {
    for tee in ["insecure-simulated", "insecure-simulated-tdx"] {
        let json = accord_json(&["bench", "floor", "--rounds", "2", "--tee", tee, "--json"]);
        assert_eq!(json["tee"], tee, "{json}");
        for part in [
            "evidence_generation",
            "verify_full_chain",
            "verify_cached_chain",
        ] {
            assert!(json[part]["cpu_us"].as_f64().is_some(), "{part}: {json}");
        }
    }
    let output = accord(&["bench", "floor", "--tee", "sev-guest"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("sev-guest"));
}
