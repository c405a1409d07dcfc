//! `accord-test-apiserver`: the in-test Kubernetes API server
//! ([`accord_shim::test_apiserver`]) as a process, for tests that run the
//! shim in a container (`cargo xtask container-test`). Built only with the
//! `test-apiserver` feature; never shipped.
//!
//! Serves plain HTTP on `127.0.0.1` (a free port, or `--port N`), prints
//! `accord-test-apiserver: serving http://127.0.0.1:PORT` on stdout once
//! listening, and stops when its standard input closes, so that it cannot
//! outlive the test that started it.

use std::io::Write as _;

use accord_shim::test_apiserver::TestApiServer;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        anyhow::bail!(
            "accord-test-apiserver takes no arguments: it serves on a free loopback port \
             and stops when stdin closes (a test fixture, not a Kubernetes API server)"
        );
    }
    let server = TestApiServer::start().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "accord-test-apiserver: serving {}", server.url())?;
    out.flush()?;
    drop(out);
    // Until stdin closes (EOF or error): the parent is gone or done.
    let _ = tokio::task::spawn_blocking(|| {
        std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
    })
    .await;
    drop(server);
    Ok(())
}
