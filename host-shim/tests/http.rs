//! The probes and metrics server over real TCP: probe answers before and
//! after reports, staleness, the liveness rule against a fake agent on the
//! real channel, the metrics text parsed back, and hostile clients
//! (idle connections are evicted, probes are always served).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::protocol::shim::{
    AgentState, AgentStatus, LATENCY_BUCKETS, MAX_SHIM_FRAME, RefusalStats, RequestStats,
    ShimRequest, ShimResponse,
};
use accord_core::protocol::{self, Api, Hello, HelloReply};
use accord_shim::channel;
use accord_shim::discovery::ManualPeers;
use accord_shim::http::{self, LIVENESS, MAX_CONNECTIONS, METRICS, Probes, READINESS, STARTUP};
use accord_shim::mem_store::MemStore;
use accord_shim::status::StatusBoard;
use accord_shim::store::{Store, StoreError, WriteBatch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Server {
    addr: std::net::SocketAddr,
    board: Arc<StatusBoard>,
    shutdown: watch::Sender<bool>,
}

async fn start(config: Probes) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let board = Arc::new(StatusBoard::default());
    let (tx, rx) = watch::channel(false);
    tokio::spawn(http::serve_with(listener, Arc::clone(&board), rx, config));
    Server {
        addr,
        board,
        shutdown: tx,
    }
}

/// Sends raw bytes, returns the whole answer (the server closes; empty if
/// it closed without answering).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    // Half-close: the server sees the end of what we send.
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    String::from_utf8(answer).unwrap()
}

fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").unwrap().1
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let answer = raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
    .await;
    (status_of(&answer), answer)
}

async fn probes(addr: std::net::SocketAddr) -> [u16; 3] {
    [
        get(addr, STARTUP).await.0,
        get(addr, LIVENESS).await.0,
        get(addr, READINESS).await.0,
    ]
}

fn status(state: Option<AgentState>, listening: bool) -> AgentStatus {
    AgentStatus {
        state,
        listening,
        ..AgentStatus::default()
    }
}

#[tokio::test]
async fn probes_follow_the_reports() {
    let server = start(Probes::default()).await;
    // Booting: alive (the shim is young), not started, not ready.
    assert_eq!(probes(server.addr).await, [503, 200, 503]);

    server.board.report(status(None, false));
    assert_eq!(probes(server.addr).await, [503, 200, 503]);

    server
        .board
        .report(status(Some(AgentState::Recovery), true));
    assert_eq!(probes(server.addr).await, [200, 200, 503]);

    server
        .board
        .report(status(Some(AgentState::Uninitialized), true));
    assert_eq!(probes(server.addr).await, [200, 200, 503]);

    server.board.report(status(Some(AgentState::Ready), true));
    assert_eq!(probes(server.addr).await, [200, 200, 200]);

    server
        .board
        .report(status(Some(AgentState::Recovery), true));
    assert_eq!(probes(server.addr).await, [200, 200, 503]);
}

#[tokio::test]
async fn stale_reports_fail_readiness_not_liveness() {
    let timeout = Duration::from_millis(500);
    let server = start(Probes {
        report_timeout: timeout,
        ..Probes::default()
    })
    .await;
    server.board.report(status(Some(AgentState::Ready), true));
    assert_eq!(probes(server.addr).await, [200, 200, 200]);
    tokio::time::sleep(timeout + Duration::from_millis(200)).await;
    // Started stays started; a late report is not ready, but it is no
    // evidence that the agent is dead.
    assert_eq!(probes(server.addr).await, [200, 200, 503]);
    server.board.report(status(Some(AgentState::Ready), true));
    assert_eq!(probes(server.addr).await, [200, 200, 200]);
}

/// The agent's end of a channel connection, speaking the real protocol.
struct FakeAgent(TcpStream);

impl FakeAgent {
    async fn connect(addr: &str) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let hello = Hello {
            versions: vec![protocol::shim::SHIM_VERSION],
            api: Api::Shim,
        };
        stream
            .write_all(&protocol::encode(&hello, 1024).unwrap())
            .await
            .unwrap();
        let reply: HelloReply = read_frame(&mut stream).await;
        assert!(matches!(reply, HelloReply::Accepted { .. }), "{reply:?}");
        Self(stream)
    }

    async fn send(&mut self, request: &ShimRequest) {
        let frame = protocol::encode(request, MAX_SHIM_FRAME).unwrap();
        self.0.write_all(&frame).await.unwrap();
    }

    async fn report(&mut self, status: AgentStatus) {
        self.send(&ShimRequest::ReportStatus(status)).await;
        let reply: ShimResponse = read_frame(&mut self.0).await;
        assert_eq!(reply, ShimResponse::StatusAccepted);
    }
}

async fn read_frame<M: protocol::Message>(stream: &mut TcpStream) -> M {
    let mut prefix = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut prefix))
        .await
        .expect("a reply")
        .unwrap();
    let mut body = vec![0u8; protocol::frame_len(prefix, MAX_SHIM_FRAME).unwrap()];
    stream.read_exact(&mut body).await.unwrap();
    protocol::decode(&body).unwrap()
}

/// A store whose snapshots never finish (a hung API server, a full disk).
struct HungStore(MemStore);

impl Store for HungStore {
    async fn snapshot(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        std::future::pending().await
    }

    fn apply(
        &self,
        batch: WriteBatch,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        self.0.apply(batch)
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        self.0.watch_latest()
    }
}

/// A shim as in production: the channel and the probes on one board.
struct Shim {
    probes: Server,
    channel: String,
}

async fn start_shim(config: Probes) -> Shim {
    let probes = start(config).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let channel = listener.local_addr().unwrap().to_string();
    let shim = Arc::new(channel::Shim {
        store: HungStore(MemStore::default()),
        discovery: ManualPeers::default(),
        board: Arc::clone(&probes.board),
        collateral: None,
    });
    tokio::spawn(channel::serve(listener, shim, probes.shutdown.subscribe()));
    Shim { probes, channel }
}

/// An agent of an earlier release (shim channel version 2, a shorter
/// `AgentStatus`) is refused at `Hello`, by version.
#[tokio::test]
async fn an_agent_of_another_shim_channel_version_is_refused_by_version() {
    let shim = start_shim(Probes::default()).await;
    let mut stream = TcpStream::connect(&shim.channel).await.unwrap();
    let hello = Hello {
        versions: vec![2],
        api: Api::Shim,
    };
    stream
        .write_all(&protocol::encode(&hello, 1024).unwrap())
        .await
        .unwrap();
    let reply: HelloReply = read_frame(&mut stream).await;
    assert!(
        matches!(&reply, HelloReply::Refused { reason }
            if reason.contains("no common shim-channel version: the agent speaks [2], this shim speaks 3")),
        "{reply:?}"
    );
}

/// The liveness answer's status and body.
async fn liveness(addr: std::net::SocketAddr) -> (u16, String) {
    let (code, answer) = get(addr, LIVENESS).await;
    (code, body_of(&answer).trim_end().to_owned())
}

#[tokio::test]
async fn liveness_fails_only_when_the_agent_never_connects() {
    let boot_grace = Duration::from_millis(600);
    let shim = start_shim(Probes {
        boot_grace,
        ..Probes::default()
    })
    .await;
    // Booting: not connected yet, within the boot grace.
    assert_eq!(liveness(shim.probes.addr).await.0, 200);
    tokio::time::sleep(boot_grace + Duration::from_millis(100)).await;
    let (code, body) = liveness(shim.probes.addr).await;
    assert_eq!(code, 503);
    assert!(body.contains("has not connected"), "{body}");
    // A late agent is alive the moment it connects, before any report.
    let _agent = FakeAgent::connect(&shim.channel).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(liveness(shim.probes.addr).await.0, 200);
}

#[tokio::test]
async fn late_reports_and_a_slow_shim_do_not_fail_liveness() {
    let report_timeout = Duration::from_millis(300);
    let shim = start_shim(Probes {
        report_timeout,
        liveness_grace: Duration::from_millis(300),
        boot_grace: Duration::from_millis(300),
        ..Probes::default()
    })
    .await;
    let mut agent = FakeAgent::connect(&shim.channel).await;
    agent.report(status(Some(AgentState::Ready), true)).await;
    assert_eq!(probes(shim.probes.addr).await, [200, 200, 200]);

    // The agent asks for a snapshot the store never delivers: its
    // connection is stuck, and its reports (which queue behind the call)
    // stop. Every grace and timeout runs out several times over.
    agent.send(&ShimRequest::Snapshot).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Not ready (no fresh report), but alive: its connection is open.
    assert_eq!(probes(shim.probes.addr).await, [200, 200, 503]);
    let (_, body) = liveness(shim.probes.addr).await;
    assert_eq!(body, "ok");
    // The agent's other connections come and go; it stays alive.
    let other = FakeAgent::connect(&shim.channel).await;
    drop(other);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(liveness(shim.probes.addr).await.0, 200);
}

#[tokio::test]
async fn liveness_fails_when_the_agent_is_gone_for_the_grace() {
    let grace = Duration::from_millis(800);
    let shim = start_shim(Probes {
        liveness_grace: grace,
        boot_grace: Duration::from_millis(100),
        ..Probes::default()
    })
    .await;
    let mut storage = FakeAgent::connect(&shim.channel).await;
    let poll = FakeAgent::connect(&shim.channel).await;
    storage.report(status(Some(AgentState::Ready), true)).await;
    assert_eq!(probes(shim.probes.addr).await, [200, 200, 200]);
    let (samples, _) = scrape(shim.probes.addr).await;
    assert_eq!(
        value(&samples, "accord_shim_agent_connections", &[]),
        Some(2.0)
    );

    // The connection of the reports closes: unready at once, still alive
    // (another connection is open).
    drop(storage);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(probes(shim.probes.addr).await, [200, 200, 503]);

    // The last one closes: alive during the grace (it may reconnect) ...
    drop(poll);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (code, body) = liveness(shim.probes.addr).await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    // ... a reconnect within the grace keeps it alive ...
    let back = FakeAgent::connect(&shim.channel).await;
    tokio::time::sleep(grace + Duration::from_millis(200)).await;
    assert_eq!(liveness(shim.probes.addr).await.0, 200);
    // ... and without one, it is dead after the grace.
    drop(back);
    tokio::time::sleep(Duration::from_millis(grace.as_millis() as u64 / 2)).await;
    assert_eq!(liveness(shim.probes.addr).await.0, 200);
    tokio::time::sleep(grace).await;
    let (code, body) = liveness(shim.probes.addr).await;
    assert_eq!(code, 503);
    assert!(body.contains("has not come back"), "{body}");

    // A new agent (a restarted container) is alive again.
    let mut restarted = FakeAgent::connect(&shim.channel).await;
    restarted
        .report(status(Some(AgentState::Recovery), true))
        .await;
    assert_eq!(probes(shim.probes.addr).await, [200, 200, 503]);
}

#[tokio::test]
async fn other_paths_and_methods() {
    let server = start(Probes::default()).await;
    assert_eq!(get(server.addr, "/").await.0, 404);
    assert_eq!(get(server.addr, "/probe").await.0, 404);
    assert_eq!(get(server.addr, "/probe/startup/x").await.0, 404);
    // A query string does not change the path.
    assert_eq!(get(server.addr, "/probe/liveness?verbose=1").await.0, 200);
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let answer = raw(
            server.addr,
            format!("{method} {LIVENESS} HTTP/1.1\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .await;
        assert_eq!(status_of(&answer), 405, "{method}");
        assert!(answer.contains("\r\nAllow: GET, HEAD\r\n"), "{answer}");
    }
    // HEAD: the headers of GET, no body.
    let answer = raw(
        server.addr,
        format!("HEAD {LIVENESS} HTTP/1.1\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&answer), 200);
    assert!(answer.contains("Content-Length: 3\r\n"), "{answer}");
    assert_eq!(body_of(&answer), "");
    // HTTP/1.0 works too (and is answered in HTTP/1.0).
    let answer = raw(
        server.addr,
        format!("GET {LIVENESS} HTTP/1.0\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    assert_eq!(body_of(&answer), "ok\n");
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused() {
    let server = start(Probes::default()).await;
    for bad in [
        &b"GET\r\n\r\n"[..],
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        // Not a path.
        b"GET * HTTP/1.1\r\n\r\n",
        b"GET http://localhost/metrics HTTP/1.1\r\n\r\n",
    ] {
        let answer = raw(server.addr, bad).await;
        assert_eq!(status_of(&answer), 400, "{bad:?}");
    }
    // No request at all: closed without an answer.
    for none in [
        // Empty lines before a request line are skipped (RFC 9112 2.2).
        &b"\r\n\r\n"[..],
        // Closed before the head ended.
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    ] {
        assert_eq!(raw(server.addr, none).await, "", "{none:?}");
    }

    // A header block over 8 KiB, terminated or not.
    let long = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(status_of(&raw(server.addr, long.as_bytes()).await), 431);
    let endless = format!("GET / HTTP/1.1\r\nX-Long: {}", "a".repeat(64 * 1024));
    assert_eq!(status_of(&raw(server.addr, endless.as_bytes()).await), 431);
    // Just under the limit is fine.
    let fits = format!(
        "GET {LIVENESS} HTTP/1.1\r\nX-Long: {}\r\n\r\n",
        "a".repeat(8000)
    );
    assert_eq!(status_of(&raw(server.addr, fits.as_bytes()).await), 200);

    // Connecting and leaving without a word is no request at all.
    drop(TcpStream::connect(server.addr).await.unwrap());

    // The server is still well.
    assert_eq!(get(server.addr, LIVENESS).await.0, 200);
}

#[tokio::test]
async fn slow_clients_are_timed_out_without_blocking_others() {
    let read_timeout = Duration::from_millis(300);
    let server = start(Probes {
        read_timeout,
        ..Probes::default()
    })
    .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /probe/").await.unwrap();
    let started = Instant::now();
    // Others are served meanwhile.
    assert_eq!(get(server.addr, LIVENESS).await.0, 200);
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("the slow client is cut off")
        .unwrap();
    assert!(started.elapsed() >= read_timeout - Duration::from_millis(50));
    // Closed without an answer.
    assert_eq!(String::from_utf8(answer).unwrap(), "");

    // A client that sends nothing at all is cut off alike.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut answer))
        .await
        .expect("the silent client is cut off")
        .unwrap();
    assert!(started.elapsed() >= read_timeout - Duration::from_millis(50));
    assert!(answer.is_empty());

    // A client trickling bytes is cut off too: the timeout is for the
    // whole head, not per read.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut cut_off = false;
    for _ in 0..40 {
        if trickle.write_all(b"X").await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !cut_off {
        // Closed (unanswered), though the writes were not refused yet.
        let mut rest = Vec::new();
        cut_off = tokio::time::timeout(Duration::from_secs(1), trickle.read_to_end(&mut rest))
            .await
            .is_ok_and(|read| read.is_err() || rest.is_empty());
    }
    assert!(cut_off, "trickling client not cut off");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    let server = tokio::spawn(http::serve(listener, Arc::new(StatusBoard::default()), rx));
    assert_eq!(get(addr, LIVENESS).await.0, 200);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("serve returns on shutdown")
        .unwrap();
}

/// Labels without `le`, sorted: a histogram's identity.
type Labels = Vec<(String, String)>;

/// A parsed sample: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses one sample line of the text format, undoing label escapes.
fn parse_sample(line: &str) -> Sample {
    let (name_labels, value) = line.rsplit_once(' ').unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap(),
    };
    let Some((name, rest)) = name_labels.split_once('{') else {
        return (name_labels.to_string(), BTreeMap::new(), value);
    };
    let rest = rest.strip_suffix('}').unwrap();
    let mut labels = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut value = String::new();
        loop {
            match chars.next().unwrap() {
                '"' => break,
                '\\' => match chars.next().unwrap() {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => panic!("bad escape \\{other} in {line}"),
                },
                '\n' => panic!("raw newline in {line}"),
                c => value.push(c),
            }
        }
        labels.insert(key, value);
        match chars.next() {
            None => break,
            Some(',') => {}
            Some(other) => panic!("unexpected {other:?} in {line}"),
        }
    }
    (name.to_string(), labels, value)
}

/// Fetches `/metrics`, checks the HELP/TYPE structure, returns the samples
/// and the declared types.
async fn scrape(addr: std::net::SocketAddr) -> (Vec<Sample>, BTreeMap<String, String>) {
    let (code, answer) = get(addr, METRICS).await;
    assert_eq!(code, 200);
    assert!(
        answer.contains("\r\nContent-Type: text/plain; version=0.0.4"),
        "{answer}"
    );
    let body = body_of(&answer);
    assert!(body.ends_with('\n'));
    let mut types = BTreeMap::new();
    let mut helped = BTreeMap::new();
    let mut samples = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').unwrap();
            assert!(helped.insert(name.to_string(), ()).is_none(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains_key(name), "TYPE before HELP: {line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let sample = parse_sample(line);
            // Every sample belongs to the family declared last.
            let family = types.keys().next_back().cloned();
            let declared = types.iter().any(|(name, kind)| {
                sample.0 == *name
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| sample.0 == format!("{name}{s}")))
            });
            assert!(
                declared,
                "undeclared sample {line} (last family {family:?})"
            );
            samples.push(sample);
        }
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
}

#[tokio::test]
async fn metrics_before_any_report() {
    let server = start(Probes::default()).await;
    let (samples, types) = scrape(server.addr).await;
    for (name, kind) in [
        ("accord_requests_total", "counter"),
        ("accord_request_duration_seconds", "histogram"),
        ("accord_attestation_failures_total", "counter"),
        ("accord_manifest_generation", "gauge"),
        ("accord_state", "gauge"),
        ("accord_peer_recovery_attempts_total", "counter"),
        ("accord_peer_recovery_successes_total", "counter"),
        ("accord_agent_resident_bytes", "gauge"),
        ("accord_forged_histories_total", "counter"),
        ("accord_store_reads_total", "counter"),
        ("accord_store_latest_read_info", "gauge"),
        ("accord_connections_refused_total", "counter"),
        ("accord_frames_refused_total", "counter"),
        ("accord_request_body_bytes_in_flight", "gauge"),
        ("accord_agent_report_age_seconds", "gauge"),
        ("accord_shim_agent_connections", "gauge"),
        ("accord_shim_probe_connections", "gauge"),
        ("accord_shim_probe_connections_evicted_total", "counter"),
        ("accord_collateral_refusals_total", "counter"),
        ("accord_collateral_offers_total", "counter"),
        ("accord_collateral_held", "gauge"),
        ("accord_collateral_oldest_age_seconds", "gauge"),
        ("accord_shim_collateral_answers_total", "counter"),
        ("accord_shim_collateral_fetches_total", "counter"),
        ("accord_shim_collateral_cache_hits_total", "counter"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    // The shim's own numbers: no agent yet, this scrape, no eviction.
    for (name, want) in [
        ("accord_shim_agent_connections", 0.0),
        ("accord_shim_probe_connections", 1.0),
        ("accord_shim_probe_connections_evicted_total", 0.0),
    ] {
        assert_eq!(value(&samples, name, &[]), Some(want), "{name}");
    }
    for state in ["uninitialized", "recovery", "ready"] {
        assert_eq!(
            value(&samples, "accord_state", &[("state", state)]),
            Some(0.0)
        );
    }
    assert_eq!(
        value(&samples, "accord_manifest_generation", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "accord_agent_report_age_seconds", &[]),
        None
    );
    assert!(
        !samples
            .iter()
            .any(|s| s.0 == "accord_requests_total" || s.0.starts_with("accord_request_duration"))
    );
    assert_eq!(
        value(&samples, "accord_request_body_bytes_in_flight", &[]),
        Some(0.0)
    );
    assert!(!samples.iter().any(|s| s.0.ends_with("_refused_total")));
    // No collateral held: no age sample.
    assert_eq!(
        value(&samples, "accord_collateral_oldest_age_seconds", &[]),
        None
    );
}

#[tokio::test]
async fn metrics_after_a_report() {
    let server = start(Probes::default()).await;
    let weird = "pe\"er\\x\nnew";
    server.board.report(AgentStatus {
        state: Some(AgentState::Ready),
        listening: true,
        generation: 7,
        requests: vec![
            RequestStats {
                api: "user".into(),
                method: "SetManifest".into(),
                outcome: "ok".into(),
                count: 10,
                sum_micros: 2_500_000,
                buckets: vec![0, 1, 1, 3, 3, 5, 8, 9, 9, 10, 10],
            },
            RequestStats {
                api: "mesh".into(),
                method: "NewMeshCert".into(),
                outcome: weird.into(),
                count: 4,
                sum_micros: 40,
                // Malformed (short, decreasing, over the count): clamped.
                buckets: vec![2, 1, 9],
            },
        ],
        attestation_failures: vec![("bad \"report\"".into(), 3), ("expired".into(), 1)],
        peer_recovery_attempts: 5,
        peer_recovery_successes: 2,
        resident_bytes: 12_345_678,
        forged_histories: 3,
        refused_connections: vec![
            RefusalStats {
                api: "user".into(),
                reason: "per_source_limit".into(),
                count: 3,
            },
            // Same labels again: merged.
            RefusalStats {
                api: "user".into(),
                reason: "per_source_limit".into(),
                count: 2,
            },
        ],
        refused_frames: vec![RefusalStats {
            api: "user".into(),
            reason: "busy".into(),
            count: 9,
        }],
        body_bytes_in_flight: 16_777_216,
        store_reads: 6,
        latest_read: Some([0xab; 32]),
        collateral_refusals: vec![
            ("revoked".into(), 2),
            ("missing".into(), 1),
            ("revoked".into(), 1),
        ],
        collateral_offers: vec![("kept".into(), 4), ("refused".into(), 5)],
        oldest_collateral_age_secs: Some(3600),
        collateral_held: 7,
    });
    let (samples, _) = scrape(server.addr).await;
    assert_eq!(
        value(&samples, "accord_forged_histories_total", &[]),
        Some(3.0)
    );
    assert_eq!(value(&samples, "accord_store_reads_total", &[]), Some(6.0));
    for (name, labels, want) in [
        (
            "accord_collateral_refusals_total",
            [("reason", "revoked")],
            3.0,
        ),
        (
            "accord_collateral_refusals_total",
            [("reason", "missing")],
            1.0,
        ),
        (
            "accord_collateral_offers_total",
            [("outcome", "refused")],
            5.0,
        ),
    ] {
        assert_eq!(
            value(&samples, name, &labels),
            Some(want),
            "{name} {labels:?}"
        );
    }
    assert_eq!(value(&samples, "accord_collateral_held", &[]), Some(7.0));
    assert_eq!(
        value(&samples, "accord_collateral_oldest_age_seconds", &[]),
        Some(3600.0)
    );
    let hash = "ab".repeat(32);
    assert_eq!(
        value(
            &samples,
            "accord_store_latest_read_info",
            &[("sha256", hash.as_str())]
        ),
        Some(1.0)
    );
    let ok = [
        ("api", "user"),
        ("method", "SetManifest"),
        ("outcome", "ok"),
    ];
    assert_eq!(value(&samples, "accord_requests_total", &ok), Some(10.0));
    assert_eq!(
        value(&samples, "accord_request_duration_seconds_sum", &ok),
        Some(2.5)
    );
    assert_eq!(
        value(&samples, "accord_request_duration_seconds_count", &ok),
        Some(10.0)
    );

    // Every histogram: one bucket per edge in order, then +Inf; cumulative;
    // +Inf equals _count.
    let mut histograms: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    for (name, labels, v) in &samples {
        if name == "accord_request_duration_seconds_bucket" {
            let mut key: Vec<_> = labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            key.sort();
            let le = match labels["le"].as_str() {
                "+Inf" => f64::INFINITY,
                le => le.parse().unwrap(),
            };
            histograms.entry(key).or_default().push((le, *v));
        }
    }
    assert_eq!(histograms.len(), 2);
    for (key, buckets) in &histograms {
        let edges: Vec<f64> = buckets.iter().map(|b| b.0).collect();
        let mut expected = LATENCY_BUCKETS.to_vec();
        expected.push(f64::INFINITY);
        assert_eq!(edges, expected, "{key:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{key:?}: {buckets:?}"
        );
        let labels: Vec<(&str, &str)> = key.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let count = value(&samples, "accord_request_duration_seconds_count", &labels).unwrap();
        assert_eq!(buckets.last().unwrap().1, count, "{key:?}");
    }
    let user = &histograms[&vec![
        ("api".to_string(), "user".to_string()),
        ("method".to_string(), "SetManifest".to_string()),
        ("outcome".to_string(), "ok".to_string()),
    ]];
    let counts: Vec<f64> = user.iter().map(|b| b.1).collect();
    assert_eq!(counts, [0., 1., 1., 3., 3., 5., 8., 9., 9., 10., 10., 10.]);

    // Label escaping round-trips.
    let weird_labels = [
        ("api", "mesh"),
        ("method", "NewMeshCert"),
        ("outcome", weird),
    ];
    assert_eq!(
        value(&samples, "accord_requests_total", &weird_labels),
        Some(4.0)
    );
    assert_eq!(
        value(
            &samples,
            "accord_attestation_failures_total",
            &[("reason", "bad \"report\"")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &samples,
            "accord_attestation_failures_total",
            &[("reason", "expired")]
        ),
        Some(1.0)
    );

    assert_eq!(
        value(&samples, "accord_manifest_generation", &[]),
        Some(7.0)
    );
    assert_eq!(
        value(&samples, "accord_state", &[("state", "ready")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "accord_state", &[("state", "recovery")]),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "accord_peer_recovery_attempts_total", &[]),
        Some(5.0)
    );
    assert_eq!(
        value(&samples, "accord_peer_recovery_successes_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&samples, "accord_agent_resident_bytes", &[]),
        Some(12_345_678.0)
    );
    assert_eq!(
        value(
            &samples,
            "accord_connections_refused_total",
            &[("api", "user"), ("reason", "per_source_limit")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value(
            &samples,
            "accord_frames_refused_total",
            &[("api", "user"), ("reason", "busy")]
        ),
        Some(9.0)
    );
    assert_eq!(
        value(&samples, "accord_request_body_bytes_in_flight", &[]),
        Some(16_777_216.0)
    );
    let age = value(&samples, "accord_agent_report_age_seconds", &[]).unwrap();
    assert!((0.0..5.0).contains(&age), "{age}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_takes_the_server_down() {
    let server = start(Probes {
        read_timeout: Duration::from_millis(200),
        ..Probes::default()
    })
    .await;
    server.board.report(status(Some(AgentState::Ready), true));
    // Xorshift: reproducible garbage without a dependency.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces: [&[u8]; 8] = [
        b"GET ",
        b"/probe/readiness",
        b" HTTP/1.1",
        b"\r\n",
        b":",
        b"\xff",
        b"\0",
        b" ",
    ];
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let mut request = Vec::new();
        for _ in 0..(next() % 12) {
            match next() % 3 {
                0 => request.extend_from_slice(pieces[(next() % 8) as usize]),
                1 => request.push(next() as u8),
                _ => request.extend(std::iter::repeat_n(b'a', (next() % 3000) as usize)),
            }
        }
        if next() % 2 == 0 {
            request.extend_from_slice(b"\r\n\r\n");
        }
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            let _ = stream.write_all(&request).await;
            let _ = stream.shutdown().await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
                .await
                .expect("every connection ends");
            if !answer.is_empty() {
                let answer = String::from_utf8(answer).expect("answers are text");
                assert!(
                    [200, 400, 404, 405, 431].contains(&status_of(&answer)),
                    "{answer}"
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(probes(server.addr).await, [200, 200, 200]);
}

/// Whether the server closed `stream` without answering (it sent nothing):
/// end of stream or a reset within 2 s.
async fn closed_unanswered(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(n)) => panic!("answered: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => false,
    }
}

/// Whether the server has let go of a connection it already answered (and
/// half-closed): writing to it is refused with a reset.
async fn released(stream: &mut TcpStream) -> bool {
    for _ in 0..10 {
        if stream.write_all(b"x").await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A connection that sent a whole request and holds on: the server
/// answers, then waits for it to close (up to the read timeout).
async fn holder(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {LIVENESS} HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(status_of(&String::from_utf8_lossy(&answer[..n])), 200);
    stream
}

/// Connects `n` clients that send nothing, or half a request head.
async fn idlers(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            stream.write_all(b"GET /probe/liv").await.unwrap();
        }
        out.push(stream);
    }
    // Let the server accept them all, in order.
    tokio::time::sleep(Duration::from_millis(200)).await;
    out
}

#[tokio::test]
async fn idle_connections_are_evicted_and_probes_answered() {
    // Idle clients are never cut off by the read timeout in this test.
    let server = start(Probes {
        read_timeout: Duration::from_secs(60),
        ..Probes::default()
    })
    .await;
    server.board.report(status(Some(AgentState::Ready), true));
    let mut idle = idlers(server.addr, MAX_CONNECTIONS).await;
    // The server is full of idle connections; probes are answered anyway,
    // again and again.
    for _ in 0..20 {
        assert_eq!(probes(server.addr).await, [200, 200, 200]);
    }
    // The oldest idle connection made room, unanswered.
    assert!(closed_unanswered(&mut idle[0]).await);
    // The newest (trickling) one is still served: it finishes its request
    // and is answered.
    let newest = idle.last_mut().unwrap();
    newest.write_all(b"eness HTTP/1.1\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), newest.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status_of(&String::from_utf8(answer).unwrap()), 200);

    // The evictions are counted, and the connections never exceed the
    // limit.
    let (samples, types) = scrape(server.addr).await;
    assert_eq!(
        types
            .get("accord_shim_probe_connections_evicted_total")
            .map(String::as_str),
        Some("counter")
    );
    let evicted = value(&samples, "accord_shim_probe_connections_evicted_total", &[]).unwrap();
    assert!(evicted >= 1.0, "{evicted}");
    let open = value(&samples, "accord_shim_probe_connections", &[]).unwrap();
    assert!(
        (1.0..=MAX_CONNECTIONS as f64).contains(&open),
        "{open} connections open"
    );
}

#[tokio::test]
async fn idle_connections_go_before_ones_being_answered() {
    let server = start(Probes {
        read_timeout: Duration::from_secs(60),
        ..Probes::default()
    })
    .await;
    // The oldest connection delivered its request and holds on; all the
    // others are idle.
    let mut answered = holder(server.addr).await;
    let mut idle = idlers(server.addr, MAX_CONNECTIONS - 1).await;
    assert_eq!(get(server.addr, LIVENESS).await.0, 200);
    // The oldest idle one was evicted, not the older one being answered.
    assert!(closed_unanswered(&mut idle[0]).await);
    assert!(!released(&mut answered).await);
    assert!(!closed_unanswered(&mut idle[1]).await);
}

#[tokio::test]
async fn without_idle_connections_the_oldest_goes() {
    let server = start(Probes {
        read_timeout: Duration::from_secs(60),
        ..Probes::default()
    })
    .await;
    let mut answered = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        answered.push(holder(server.addr).await);
    }
    assert_eq!(get(server.addr, LIVENESS).await.0, 200);
    assert!(released(&mut answered[0]).await, "the oldest was kept");
    assert!(!released(&mut answered[1]).await, "the second was evicted");
}
