//! High availability with real processes: three coordinator replicas
//! (`accord-guest coordinator --shim`), each with its own shim process
//! (`accord-shim`, filesystem backend on one shared directory, static
//! peers listed while their readiness probe answers). While workloads
//! attest continuously and an owner updates the manifest, one replica's
//! agent is killed with SIGKILL every few seconds and restarted (for 20 s;
//! for a minute with `ACCORD_SOAK=1`; `ACCORD_HA_SECONDS` sets it); it
//! must come back Ready from its peers. At the end all replicas serve the
//! same tree head and the same mesh CA, and no accepted update is lost.
//! Then all three are killed, and two of the three seed-share owners
//! recover the deployment with `accord recover` (the binary); the other
//! replicas follow from the recovered one. The chip is the INSECURE
//! simulated one (one chip directory shared by all, so the measurement is
//! the same). Every step waits for the state it checks (readiness, the
//! counters on each shim's `/metrics`), never for a fixed time.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::process::{Killed, binary, free_port, start_until};
use crate::support::*;
use accord_core::hex;
use accord_core::pins::CoordinatorPins;
use accord_core::protocol::{
    GetManifestsReply, GetRecoveryStateReply, ManifestSet, Manifests, RecoveryState,
    SetManifestReply, UserCall,
};
use accord_guest::atls::Identity;
use accord_guest::client::UserClient;
use accord_guest::initializer::{self, AttemptError};
use accord_shim::discovery::is_ready;

struct Ports {
    user: u16,
    mesh: u16,
    channel: u16,
    probes: u16,
}

struct Replica {
    ports: Ports,
    _shim: Killed,
    agent: Option<Killed>,
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn start_shim(d: &Deployment, ports: &[Ports], i: usize) -> Killed {
    let mut command = Command::new(binary("accord-shim"));
    command
        .args(["--listen", &addr(ports[i].channel)])
        .args(["--probes", &addr(ports[i].probes)])
        .arg("--store")
        .arg(d.dir.join("store"));
    for (j, other) in ports.iter().enumerate() {
        if j != i {
            command.arg("--peer").arg(format!(
                "replica-{j}={},{}",
                addr(other.mesh),
                addr(other.probes)
            ));
        }
    }
    start_until(
        command,
        "agent channel on",
        &d.dir.join(format!("shim-{i}.log")),
    )
    .0
}

fn start_agent(d: &Deployment, ports: &Ports, i: usize) -> Killed {
    let mut command = Command::new(binary("accord-guest"));
    command
        .args(["coordinator", "--tee", "insecure-simulated"])
        .args(["--host-data", &hex::encode(&sha256(COORD_POLICY))])
        .arg("--state")
        .arg(&d.dir)
        .args(["--shim", &addr(ports.channel)])
        .args(["--user-api", &addr(ports.user)])
        .args(["--mesh-api", &addr(ports.mesh)]);
    start_until(
        command,
        "user API on",
        &d.dir.join(format!("agent-{i}.log")),
    )
    .0
}

/// Waits for the replica's readiness probe to answer; returns how long
/// that took.
async fn wait_ready(ports: &Ports) -> Duration {
    let started = Instant::now();
    let probes = addr(ports.probes);
    wait_for(&format!("{probes} to be ready"), async || {
        is_ready(&probes).await.then_some(())
    })
    .await;
    started.elapsed()
}

/// Waits for the shim at `ports` to report its agent gone or not ready.
async fn wait_not_ready(ports: &Ports, why: &str) {
    let probes = addr(ports.probes);
    wait_for(why, async || (!is_ready(&probes).await).then_some(())).await;
}

/// The value of the sample `series` (name and labels, as printed) in a
/// Prometheus text.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Waits until replica `ports`' `/metrics` satisfies `done`; returns the
/// text.
async fn metrics_where(ports: &Ports, what: &str, done: impl Fn(&str) -> bool) -> String {
    wait_for(
        &format!("{what} in the /metrics of {}", addr(ports.probes)),
        async || {
            let metrics = http_get(ports.probes, "/metrics").await;
            done(&metrics).then_some(metrics)
        },
    )
    .await
}

async fn user<C: UserCall>(port: u16, d: &Deployment, request: C) -> anyhow::Result<C::Reply> {
    let mut client = UserClient::connect(&addr(port), d.user_policy()).await?;
    client.call(request).await
}

/// (latest transition, manifests, mesh CA key) as replica `port` serves.
async fn served(port: u16, d: &Deployment) -> ([u8; 32], usize, Vec<u8>) {
    match user(port, d, get()).await.unwrap() {
        GetManifestsReply::Manifests(Manifests {
            latest_transition,
            manifests,
            mesh_ca,
            ..
        }) => {
            let cert = accord_core::x509::Certificate::from_der(&mesh_ca).unwrap();
            (latest_transition, manifests.len(), cert.spki_der().to_vec())
        }
        other => panic!("{other:?}"),
    }
}

/// One workload's initializer (its checks, pinning `pins`, without the
/// files): tries the replicas in turn until one issues a certificate;
/// returns how long that took. A replica of the pinned deployment is
/// never refused.
async fn attest_once(
    meshes: &[u16],
    tee: &Arc<dyn accord_guest::tee::TeeProvider>,
    pins: &CoordinatorPins,
    start: usize,
) -> Duration {
    let began = Instant::now();
    let mut k = start;
    loop {
        let port = meshes[k % meshes.len()];
        k += 1;
        let identity = Identity::ephemeral().unwrap();
        match initializer::request(&addr(port), pins, Arc::clone(tee), &identity).await {
            Ok(_) => return began.elapsed(),
            Err(refused @ AttemptError::Refused { .. }) => {
                panic!("a workload refused replica {port}: {refused}")
            }
            Err(AttemptError::Failed(_)) => {}
        }
        assert!(
            began.elapsed() < PATIENCE,
            "an initializer got no certificate for {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The body of `GET path` on the shim's probe port.
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr(port)).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: shim\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_survive_kills_and_owners_recover_a_full_outage() {
    let _heavy = crate::support::heavy().await;
    let d = Deployment::new("ha");
    let run_for = Duration::from_secs(
        std::env::var("ACCORD_HA_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if soak() { 60 } else { 20 }),
    );
    let ports: Vec<Ports> = (0..3)
        .map(|_| Ports {
            user: free_port(),
            mesh: free_port(),
            channel: free_port(),
            probes: free_port(),
        })
        .collect();
    let mut replicas: Vec<Replica> = Vec::new();
    for i in 0..3 {
        let shim = start_shim(&d, &ports, i);
        let agent = start_agent(&d, &ports[i], i);
        replicas.push(Replica {
            ports: Ports { ..ports[i] },
            _shim: shim,
            agent: Some(agent),
        });
    }
    let owners = [[0x41; 32], [0x42; 32], [0x43; 32]];
    let first = d.manifest_with_owners(0, &owners, 2);
    let set = user(ports[0].user, &d, set_request(first.clone(), None))
        .await
        .unwrap();
    let SetManifestReply::ManifestSet(ManifestSet {
        seed_share_document: Some(document),
        ..
    }) = set
    else {
        panic!("{set:?}")
    };
    for replica in &replicas {
        wait_ready(&replica.ports).await;
    }

    // Workloads attest continuously.
    let stop = Arc::new(AtomicBool::new(false));
    let issued = Arc::new(AtomicU64::new(0));
    let meshes: Vec<u16> = ports.iter().map(|p| p.mesh).collect();
    let mut workers = Vec::new();
    for w in 0..3 {
        let (stop, issued, meshes) = (Arc::clone(&stop), Arc::clone(&issued), meshes.clone());
        let tee = d.tee(WEB_POLICY);
        let pins = d.pins(&owners, 2);
        workers.push(tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                worst = worst.max(attest_once(&meshes, &tee, &pins, n).await);
                issued.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            worst
        }));
    }

    // Kill one agent every few seconds; an owner updates the manifest now
    // and then through whichever replica answers.
    let began = Instant::now();
    let mut recoveries = Vec::new();
    let mut accepted_updates = 0;
    let mut round = 0usize;
    let mut victim = 0;
    while began.elapsed() < run_for {
        round += 1;
        victim = round % 3;
        replicas[victim].agent.take().unwrap().kill();
        // The shim sees its agent go: not ready, whatever it last reported.
        wait_not_ready(
            &ports[victim],
            "the shim of a killed agent to say not ready",
        )
        .await;
        if round.is_multiple_of(2) {
            let through = ports[(victim + 1) % 3].user;
            if let Ok(reply @ GetManifestsReply::Manifests(Manifests { .. })) =
                user(through, &d, get()).await
            {
                let update = user(
                    through,
                    &d,
                    set_request(
                        d.manifest_with_owners(round as u32, &owners, 2),
                        Some(Base::of(&reply)),
                    ),
                )
                .await;
                if matches!(
                    update,
                    Ok(SetManifestReply::ManifestSet(ManifestSet { .. }))
                ) {
                    accepted_updates += 1;
                }
            }
        }
        let restarted = Instant::now();
        replicas[victim].agent = Some(start_agent(&d, &ports[victim], victim));
        wait_ready(&ports[victim]).await;
        recoveries.push(restarted.elapsed());
        // Pacing: the workloads run against all three for a while before
        // the next kill.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut worst_initializer = Duration::ZERO;
    for worker in workers {
        worst_initializer = worst_initializer.max(worker.await.unwrap());
    }
    assert!(accepted_updates > 0, "no update was accepted");

    // Every replica ends Ready on the same head and the same mesh CA, with
    // every accepted update.
    let started = Instant::now();
    let views = loop {
        let mut views = Vec::new();
        for p in &ports {
            views.push(served(p.user, &d).await);
        }
        if views.windows(2).all(|w| w[0] == w[1]) {
            break views;
        }
        assert!(started.elapsed() < PATIENCE, "replicas did not converge");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(views[0].1, 1 + accepted_updates, "a transition was lost");
    // The shims' /metrics show what the agents did. A replica's counters
    // start again when its agent restarts, so each replica is asked for a
    // certificate now, and its metrics are awaited (the agent reports
    // every two seconds).
    let tee = d.tee(WEB_POLICY);
    let pins = d.pins(&owners, 2);
    for (i, p) in ports.iter().enumerate() {
        let identity = Identity::ephemeral().unwrap();
        if let Err(err) =
            initializer::request(&addr(p.mesh), &pins, Arc::clone(&tee), &identity).await
        {
            panic!("replica {i} issued no certificate: {err}");
        }
        let issued = "accord_requests_total{api=\"mesh\",method=\"NewMeshCert\",outcome=\"ok\"}";
        let timed = "accord_request_duration_seconds_bucket{api=\"mesh\",method=\"NewMeshCert\",outcome=\"ok\",le=\"+Inf\"}";
        let metrics = metrics_where(p, "a NewMeshCert counted", |m| {
            sample(m, issued).is_some_and(|n| n >= 1.0)
        })
        .await;
        assert_eq!(
            sample(&metrics, timed),
            sample(&metrics, issued),
            "{metrics}"
        );
        metrics_where(p, "Ready at the latest generation", |m| {
            sample(m, "accord_state{state=\"ready\"}") == Some(1.0)
                && sample(m, "accord_manifest_generation") == Some((1 + accepted_updates) as f64)
        })
        .await;
    }
    // The replica restarted last came back Ready from its peers (nothing
    // else gives it the secrets), and counted it.
    metrics_where(&ports[victim], "a peer recovery counted", |m| {
        sample(m, "accord_peer_recovery_successes_total").is_some_and(|n| n >= 1.0)
    })
    .await;
    let metrics = http_get(ports[0].probes, "/metrics").await;
    // The agent reports its own resident set size (from /proc/self/status).
    let resident: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("accord_agent_resident_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accord_agent_resident_bytes in /metrics:\n{metrics}"));
    assert!(
        (1 << 20..1 << 30).contains(&resident),
        "agent RSS {resident} bytes"
    );
    recoveries.sort();
    println!(
        "HA: {} kills in {:?}; restart to Ready p50 {:?}, max {:?}; {} certificates issued, slowest initializer {:?}; {} updates accepted",
        recoveries.len(),
        began.elapsed(),
        percentile(&recoveries, 0.5),
        recoveries.last().unwrap(),
        issued.load(Ordering::Relaxed),
        worst_initializer,
        accepted_updates,
    );

    // The seed-share owners verify the deployment while it is healthy:
    // `accord recover` checks what a replica would recover to against
    // this trust state.
    owners_verify(&d, ports[0].user).await;

    // A full outage: every agent killed and restarted. Nobody is ready,
    // so seed-share owners recover one replica; the others follow from it.
    for replica in &mut replicas {
        replica.agent.take().unwrap().kill();
    }
    for p in &ports {
        wait_not_ready(p, "the shims to see their agents gone").await;
    }
    for (i, replica) in replicas.iter_mut().enumerate() {
        replica.agent = Some(start_agent(&d, &ports[i], i));
    }
    // Each new agent has read the store and says it needs recovery; none
    // is ready.
    for p in &ports {
        metrics_where(p, "the new agent in Recovery", |m| {
            sample(m, "accord_state{state=\"recovery\"}") == Some(1.0)
                && sample(m, "accord_store_reads_total").is_some_and(|n| n >= 1.0)
        })
        .await;
        assert!(
            !is_ready(&addr(p.probes)).await,
            "ready without the secrets"
        );
    }
    // The replica the owners recover knows that no peer is ready (its
    // shim has dropped the killed ones): otherwise it refuses user
    // recovery, as it should.
    wait_for("replica 1 to see no ready peer", async || {
        let state = accord_core::protocol::GetRecoveryState {
            consistency_from: None,
        };
        match user(ports[1].user, &d, state).await {
            Ok(GetRecoveryStateReply::RecoveryState(RecoveryState { ready_peers: 0, .. })) => {
                Some(())
            }
            _ => None,
        }
    })
    .await;
    recover_with_cli(&d, ports[1].user, &owners, &document);
    for p in &ports {
        wait_ready(p).await;
    }
    let after: Vec<_> = {
        let mut v = Vec::new();
        for p in &ports {
            v.push(served(p.user, &d).await);
        }
        v
    };
    assert!(after.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(after[0].0, views[0].0, "the same history after the outage");
    assert_ne!(after[0].2, views[0].2, "user recovery rotates the mesh CA");
    drop(replicas);
}

/// Seed-share owners 1 and 3 of 3 run `accord recover` (2 needed).
/// The owners' workspace (`owners/`) with the manifest the deployment
/// serves now, verified with the `accord` binary (the trust state that
/// `accord recover` checks against).
async fn owners_verify(d: &Deployment, user_port: u16) {
    let workspace = d.dir.join("owners");
    std::fs::create_dir_all(&workspace).unwrap();
    let current = match user(user_port, d, get()).await.unwrap() {
        GetManifestsReply::Manifests(Manifests { mut manifests, .. }) => manifests.pop().unwrap(),
        other => panic!("{other:?}"),
    };
    std::fs::write(workspace.join("manifest.json"), current).unwrap();
    let output = Command::new(binary("accord"))
        // The simulated chip's evidence carries its collateral: no vendor.
        .args(["verify", "-c", &addr(user_port), "--insecure-simulation"])
        .arg("--offline")
        .arg("--workspace")
        .arg(&workspace)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "accord verify: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn recover_with_cli(
    d: &Deployment,
    user_port: u16,
    owners: &[[u8; 32]; 3],
    document: &accord_core::seedshare::SeedShareDocument,
) {
    use accord_cli::keys::{PrivateKey, X25519Secret, write_private_key};
    let workspace = d.dir.join("owners");
    accord_cli::set_payload::seed_share_document_save(
        &workspace.join("seed-shares.json"),
        document,
    )
    .unwrap();
    for (n, owner) in [(1, &owners[0]), (3, &owners[2])] {
        let key = workspace.join(format!("seedshare-owner-{n}.pem"));
        write_private_key(&key, &PrivateKey::X25519(X25519Secret::new(*owner)), true).unwrap();
        let output = Command::new(binary("accord"))
            .args(["recover", "-c", &addr(user_port), "--json"])
            .args(["--insecure-simulation", "--offline"])
            .arg("--seedshare-key")
            .arg(&key)
            .arg("--workspace")
            .arg(&workspace)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "accord recover (owner {n}): {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let want = if n == 1 {
            "share_accepted"
        } else {
            "recovered"
        };
        assert_eq!(json["status"], want, "{json}");
    }
}
