//! Running accord's binaries as separate processes (so they can be killed
//! with SIGKILL): the binaries are built once per test run with the same
//! cargo that runs the tests, then found in its target directory.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a started process may take to print the line it is waited for.
const START_WAIT: Duration = Duration::from_secs(120);

/// `target/debug` (or whichever profile directory runs these tests).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/test-binary → target/debug
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// The path of workspace binary `name`, built if needed.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = profile_dir().ends_with("release");
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "-q",
            "-p",
            "accord-guest",
            "-p",
            "accord-shim",
            "-p",
            "accord-cli",
            "--bins",
            // The agent runs on the INSECURE simulated chip.
            "--features",
            "insecure-simulation",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    let path = profile_dir().join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A child process that is killed (SIGKILL) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound and released: good enough on loopback).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `command` with stdout piped and waits (up to 30 s) for a stdout
/// line containing `marker`; returns the child and that line. Stderr goes
/// to `log` (appended).
pub fn start_until(mut command: Command, marker: &str, log: &std::path::Path) -> (Killed, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("starting a process");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A wait for the line, not a timing: a start on a loaded machine took
    // over 30 s (load average 7 on 2 cores).
    let deadline = Instant::now() + START_WAIT;
    let marker = marker.to_string();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(&marker) => {
                // Keep draining stdout so the child never blocks on it.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return (Killed(child), line);
            }
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("no line with {marker:?} on stdout within {START_WAIT:?}");
            }
        }
    }
}

/// The `ADDR` after `label` in a line like `user API on ADDR, ...`.
pub fn addr_after(line: &str, label: &str) -> String {
    let rest = &line[line.find(label).unwrap() + label.len()..];
    rest.split([',', ' ']).next().unwrap().to_string()
}
