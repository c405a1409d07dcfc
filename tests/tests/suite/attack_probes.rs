//! Attack 6: starving the probes into a restart. A hostile network client
//! holds a few hundred idle (or trickling) TCP connections to a replica's
//! probe port. When the shim refused connections beyond its limit, the
//! kubelet's liveness probe went unanswered, the agent container was
//! restarted and lost its secrets.
//!
//! Real processes, as a replica runs: `accord-shim` (filesystem store)
//! and `accord-guest coordinator --shim` on the INSECURE simulated chip.
//! The test sets a manifest, then attacks the probe port for a while
//! (`ACCORD_ATTACK_SECONDS`; default 10 s, 30 s with `ACCORD_SOAK=1`,
//! and at least until 20 probes were answered), re-opening every connection the
//! shim closes, while it plays the kubelet: liveness and readiness every
//! 250 ms with the kubelet's default 1 s timeout. A restart takes
//! `failureThreshold` (3, as `host-shim/deploy/` sets for liveness)
//! failures in a row: no probe path may fail that often in a row, and at
//! most one probe in 20 may fail at all (under a flood on a loaded
//! machine, a probe's connect can time out in the kernel's accept queue
//! before the shim sees it; a real kubelet retries at its next period,
//! and so does this one); the evictions must be named in `/metrics` and the shim's log; and
//! the agent must be the same process, still Ready, still issuing
//! certificates.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::process::{Killed, binary, free_port, start_until};
use crate::support::*;
use accord_core::hex;
use accord_core::protocol::{
    GetManifestsReply, ManifestSet, Manifests, NewMeshCertReply, SetManifestReply,
};
use accord_guest::atls::Identity;
use accord_guest::client::{MeshClient, UserClient};
use accord_shim::discovery::is_ready;
use accord_shim::http::{LIVENESS, MAX_CONNECTIONS, METRICS, READINESS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How many connections the attacker keeps open.
const ATTACKERS: usize = 300;

/// Failures in a row that make the kubelet restart the agent
/// (`failureThreshold` of the liveness probe in `host-shim/deploy/`).
const FAILURE_THRESHOLD: usize = 3;

/// The kubelet's default probe timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `GET path` on the probe port: the status code and the body, or why
/// there was none within [`PROBE_TIMEOUT`]. The probe runs on a thread
/// of its own, as the kubelet is a process of its own: on this test's
/// runtime, among the attackers' hundreds of tasks, its request could
/// wait to be written long after it connected, which no kubelet does.
async fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || probe(port, &path))
        .await
        .unwrap()
}

fn probe(port: u16, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let late = || format!("no answer within {PROBE_TIMEOUT:?}");
    let target: std::net::SocketAddr = addr(port).parse().unwrap();
    let mut stream = std::net::TcpStream::connect_timeout(&target, PROBE_TIMEOUT)
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .map_err(|e| format!("{e}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: kubelet\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(late)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("{e}"))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(late());
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((code, body.to_owned()))
}

/// The value of an unlabelled sample in `/metrics`.
async fn metric(port: u16, name: &str) -> f64 {
    let (code, body) = http_get(port, METRICS).await.expect("/metrics answers");
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
}

/// One hostile connection, re-opened whenever the shim closes it: idle,
/// or (odd `i`) an endless request head. Counts the connections made and
/// the ones the shim closed.
async fn attacker(
    i: usize,
    port: u16,
    mut stop: watch::Receiver<bool>,
    opened: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
) {
    while !*stop.borrow() {
        let Ok(mut stream) = TcpStream::connect(addr(port)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        opened.fetch_add(1, Ordering::Relaxed);
        if i % 2 == 1 {
            let _ = stream
                .write_all(b"GET /probe/liveness HTTP/1.1\r\nX-Slow: ")
                .await;
        }
        let mut buf = [0u8; 512];
        tokio::select! {
            // Evicted, or timed out: the shim let go.
            _ = stream.read(&mut buf) => {
                closed.fetch_add(1, Ordering::Relaxed);
            }
            _ = stop.wait_for(|stop| *stop) => return,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_probes_into_a_restart() {
    let _heavy = crate::support::heavy().await;
    let d = Deployment::new("attack-probes");
    let run_for = Duration::from_secs(
        std::env::var("ACCORD_ATTACK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if soak() { 30 } else { 10 }),
    );
    let (user_port, mesh_port, channel_port, probe_port) =
        (free_port(), free_port(), free_port(), free_port());

    let shim_log = d.dir.join("shim.log");
    let mut shim = Command::new(binary("accord-shim"));
    shim.args(["--listen", &addr(channel_port)])
        .args(["--probes", &addr(probe_port)])
        .arg("--store")
        .arg(d.dir.join("store"));
    let (_shim, _) = start_until(shim, "agent channel on", &shim_log);
    let mut agent = Command::new(binary("accord-guest"));
    agent
        .args(["coordinator", "--tee", "insecure-simulated"])
        .args(["--host-data", &hex::encode(&sha256(COORD_POLICY))])
        .arg("--state")
        .arg(&d.dir)
        .args(["--shim", &addr(channel_port)])
        .args(["--user-api", &addr(user_port)])
        .args(["--mesh-api", &addr(mesh_port)]);
    let (mut agent, _): (Killed, _) = start_until(agent, "user API on", &d.dir.join("agent.log"));

    // A deployment: the agent holds the seed from here on.
    let mut client = UserClient::connect(&addr(user_port), d.user_policy())
        .await
        .unwrap();
    let set = client.call(set_request(d.manifest(0), None)).await.unwrap();
    assert!(
        matches!(set, SetManifestReply::ManifestSet(ManifestSet { .. })),
        "{set:?}"
    );
    wait_for("the replica to be ready", async || {
        is_ready(&addr(probe_port)).await.then_some(())
    })
    .await;
    let latest_before = latest_transition(user_port, &d).await;

    // The attack.
    let (stop, stopped) = watch::channel(false);
    let opened = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for i in 0..ATTACKERS {
        attackers.push(tokio::spawn(attacker(
            i,
            probe_port,
            stopped.clone(),
            Arc::clone(&opened),
            Arc::clone(&closed),
        )));
    }
    // Let the attacker fill the port before the first probe.
    wait_for("every attacker connected", async || {
        (opened.load(Ordering::Relaxed) >= ATTACKERS as u64).then_some(())
    })
    .await;

    // The kubelet, meanwhile (every 250 ms: pacing, as the kubelet's
    // period), for the attack's length and at least 20 answers.
    let began = Instant::now();
    let mut failures = Vec::new();
    // Per path: the current and the longest run of failures in a row.
    let mut in_a_row = [(0usize, 0usize); 2];
    let (mut answered, mut slowest) = (0, Duration::ZERO);
    let mut evicted_during = 0.0;
    while began.elapsed() < run_for || answered + failures.len() < 20 {
        for (n, path) in [LIVENESS, READINESS].into_iter().enumerate() {
            let asked = Instant::now();
            let failed = match http_get(probe_port, path).await {
                Ok((200, _)) => {
                    answered += 1;
                    None
                }
                Ok((code, body)) => Some(format!("{path}: {code} {body}")),
                Err(why) => Some(format!("{path}: {why}")),
            };
            let (run, longest) = &mut in_a_row[n];
            match failed {
                Some(failure) => {
                    failures.push(failure);
                    *run += 1;
                    *longest = (*longest).max(*run);
                }
                None => *run = 0,
            }
            slowest = slowest.max(asked.elapsed());
        }
        if answered % 20 == 0 {
            evicted_during =
                metric(probe_port, "accord_shim_probe_connections_evicted_total").await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let evicted = metric(probe_port, "accord_shim_probe_connections_evicted_total").await;
    let open = metric(probe_port, "accord_shim_probe_connections").await;
    let _ = stop.send(true);
    for task in attackers {
        task.await.unwrap();
    }
    println!(
        "probe attack: {} connections by {ATTACKERS} attackers in {:?}, {} closed by the shim, \
         {evicted} evicted; {answered} probes answered 200, the slowest in {slowest:?}",
        opened.load(Ordering::Relaxed),
        began.elapsed(),
        closed.load(Ordering::Relaxed),
    );

    // No path failed often enough in a row to restart the agent (or take
    // the replica out of service), and hardly any probe failed at all.
    let asked = answered + failures.len();
    assert!(
        in_a_row
            .iter()
            .all(|&(_, longest)| longest < FAILURE_THRESHOLD),
        "{FAILURE_THRESHOLD} probes failed in a row (longest runs: liveness {}, readiness {}): \
         {failures:#?}",
        in_a_row[0].1,
        in_a_row[1].1
    );
    assert!(
        failures.len() * 20 <= asked,
        "{} of {asked} probes failed: {failures:#?}",
        failures.len()
    );
    if !failures.is_empty() {
        println!(
            "probe attack: {} of {asked} probes failed: {failures:?}",
            failures.len()
        );
    }

    // The evictions are named: counted in the metrics, logged by the shim.
    assert!(
        evicted_during > 0.0,
        "no eviction counted during the attack"
    );
    assert!(
        evicted >= ATTACKERS as f64 - MAX_CONNECTIONS as f64,
        "{evicted}"
    );
    assert!(open <= MAX_CONNECTIONS as f64, "{open} connections open");
    let log = std::fs::read_to_string(&shim_log).unwrap();
    assert!(
        log.contains(&format!(
            "probes: at the limit of {MAX_CONNECTIONS} connections: evicted"
        )),
        "the shim did not log the evictions:\n{log}"
    );
    // Rate-limited: at most one line per 10 s (and the first at once).
    let lines = log.lines().filter(|l| l.contains("evicted")).count();
    let allowed = 2 + began.elapsed().as_secs() as usize / 10;
    assert!(
        (1..=allowed).contains(&lines),
        "{lines} eviction lines:\n{log}"
    );

    // The agent was never restarted: the process started above is still
    // running, Ready, with the same history and its secrets (it still
    // issues certificates, which a restarted agent could not before a
    // recovery).
    assert!(agent.0.try_wait().unwrap().is_none(), "the agent exited");
    assert!(is_ready(&addr(probe_port)).await);
    assert_eq!(latest_transition(user_port, &d).await, latest_before);
    let mut mesh = MeshClient::connect(
        &addr(mesh_port),
        d.user_policy(),
        d.tee(WEB_POLICY),
        Identity::ephemeral().unwrap(),
    )
    .await
    .unwrap();
    let cert = mesh.new_mesh_cert().await.unwrap();
    assert!(matches!(cert, NewMeshCertReply::MeshCert(_)), "{cert:?}");
    agent.kill();
}

async fn latest_transition(user_port: u16, d: &Deployment) -> [u8; 32] {
    let mut client = UserClient::connect(&addr(user_port), d.user_policy())
        .await
        .unwrap();
    match client.call(get()).await.unwrap() {
        GetManifestsReply::Manifests(Manifests {
            latest_transition, ..
        }) => latest_transition,
        other => panic!("not Ready: {other:?}"),
    }
}
