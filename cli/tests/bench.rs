//! `accord bench setup` and `accord bench attest --json` against a
//! coordinator running in this test process (INSECURE simulated chip,
//! loopback): the load generator gets certificates without errors and its
//! JSON has the fields issue 5 fixes. No timing thresholds.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let user = free_addr();
    let mesh = free_addr();
    let options = TeeOptions {
        simulated_state: state.join("chip"),
        ..TeeOptions::default()
    };
    // The chip is created here, before anything else opens it.
    let provider: Arc<dyn TeeProvider> = tee::open("insecure-simulated", &options).unwrap().into();
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
    Command::new(env!("CARGO_BIN_EXE_accord"))
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

    let output = accord(&["bench", "setup", "-u", &user, "--state", chip]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

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
