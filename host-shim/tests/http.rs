//! The probes and metrics server over real TCP: probe answers before and
//! after reports, staleness, the metrics text parsed back, and hostile
//! clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::protocol::shim::{
    AgentState, AgentStatus, LATENCY_BUCKETS, RefusalStats, RequestStats,
};
use accord_shim::http::{self, LIVENESS, METRICS, Probes, READINESS, STARTUP};
use accord_shim::status::StatusBoard;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

struct Server {
    addr: std::net::SocketAddr,
    board: Arc<StatusBoard>,
    _shutdown: watch::Sender<bool>,
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
        _shutdown: tx,
    }
}

/// Sends raw bytes, returns the whole answer (the server closes).
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
async fn stale_reports_fail_liveness_and_readiness() {
    let timeout = Duration::from_millis(1000);
    let server = start(Probes {
        liveness_timeout: timeout,
        ..Probes::default()
    })
    .await;
    assert_eq!(get(server.addr, LIVENESS).await.0, 200);
    // Never reported, and the shim is older than the timeout: dead.
    tokio::time::sleep(timeout + Duration::from_millis(200)).await;
    assert_eq!(get(server.addr, LIVENESS).await.0, 503);

    server.board.report(status(Some(AgentState::Ready), true));
    assert_eq!(probes(server.addr).await, [200, 200, 200]);
    tokio::time::sleep(timeout + Duration::from_millis(200)).await;
    // Started stays started; a silent agent is neither live nor ready.
    assert_eq!(probes(server.addr).await, [200, 503, 503]);
    server.board.report(status(Some(AgentState::Ready), true));
    assert_eq!(probes(server.addr).await, [200, 200, 200]);
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
    // HTTP/1.0 works too.
    let answer = raw(
        server.addr,
        format!("GET {LIVENESS} HTTP/1.0\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&answer), 200);
    assert_eq!(body_of(&answer), "ok\n");
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_refused() {
    let server = start(Probes::default()).await;
    for bad in [
        &b"\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        // Closed before the head ended.
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    ] {
        let answer = raw(server.addr, bad).await;
        assert_eq!(status_of(&answer), 400, "{bad:?}");
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
    assert_eq!(status_of(&String::from_utf8(answer).unwrap()), 408);

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
        let mut rest = Vec::new();
        let _ = trickle.read_to_end(&mut rest).await;
        cut_off = String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408");
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
        ("accord_connections_refused_total", "counter"),
        ("accord_frames_refused_total", "counter"),
        ("accord_request_body_bytes_in_flight", "gauge"),
        ("accord_agent_report_age_seconds", "gauge"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
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
    });
    let (samples, _) = scrape(server.addr).await;
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
                    [200, 400, 404, 405, 408, 431].contains(&status_of(&answer)),
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
