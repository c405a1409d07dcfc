//! The binary as the container test runs it: `accord-mesh-echo serve`
//! on a loopback port, `accord-mesh-echo call` to it, with the
//! initializer's file layout (certificates from accord's own CA).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{new_ca, workload};

const BIN: &str = env!("CARGO_BIN_EXE_accord-mesh-echo");

/// Kills the server if a test fails before it exits.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve --count N` on a loopback port; returns it and its port
/// (read from its first line).
fn serve(
    dir: &std::path::Path,
    count: u64,
) -> (Server, BufReader<std::process::ChildStdout>, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--count"])
        .arg(count.to_string())
        .arg("--tls")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    (Server(child), out, addr)
}

fn call(dir: &std::path::Path, addr: &str, name: &str) -> std::process::Output {
    Command::new(BIN)
        .args([
            "call",
            "--connect",
            addr,
            "--server-name",
            name,
            "--retry-for",
            "5",
        ])
        .args(["--message", "web here"])
        .arg("--tls")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn serve_and_call() {
    let base = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let db = workload(base.path(), "db", &ca, &["db"], &ca);
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    let (mut server, mut out, addr) = serve(&db, 1);

    let called = call(&web, &addr, "db");
    assert!(called.status.success(), "{called:?}");
    assert_eq!(
        String::from_utf8(called.stdout).unwrap(),
        "accord-mesh-echo here: got your 9 byte(s) over mutual TLS (you presented 2 certificate(s) chaining to the mesh CA)\n"
    );
    // --count 1: the server exits after the one exchange, having said so.
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("exchange 1: 127.0.0.1:"), "{line}");
    assert!(
        line.ends_with("presented 2 certificate(s) and sent \"web here\"\n"),
        "{line}"
    );
    assert!(server.0.wait().unwrap().success());
}

#[test]
fn a_refused_exchange_fails_the_call_and_does_not_count() {
    let base = tempfile::tempdir().unwrap();
    let (ca, other) = (new_ca(), new_ca());
    let db = workload(base.path(), "db", &ca, &["db"], &ca);
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    let stranger = workload(base.path(), "stranger", &other, &["web"], &ca);
    let (mut server, mut out, addr) = serve(&db, 1);

    let refused = call(&stranger, &addr, "db");
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(refused.stdout.is_empty());
    let err = String::from_utf8(refused.stderr).unwrap();
    assert!(
        err.starts_with("accord-mesh-echo call: reading the answer of db at"),
        "{err}"
    );

    // The server is still there for a good client, and only that counts.
    let called = call(&web, &addr, "db");
    assert!(called.status.success(), "{called:?}");
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("exchange 1: "), "{line}");
    let status = server.0.wait().unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(server.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.starts_with("refused: TLS handshake with the client 127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn missing_files_fail_clearly() {
    let base = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "call",
            "--connect",
            "127.0.0.1:1",
            "--server-name",
            "db",
            "--tls",
        ])
        .arg(base.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("tls-config/certChain.pem"), "{err}");
    let out = Command::new(BIN)
        .args(["serve", "--tls", "x"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing --listen is a usage error"
    );
}
