//! Attested-TLS connection set-up on loopback with the INSECURE simulated
//! SNP chip: connections per second and latency of a full attested
//! handshake, and its cost split into the TLS 1.3 handshake, evidence
//! generation and evidence verification.
//!
//! `cargo bench -p accord-guest --bench atls` (a plain binary, not
//! criterion: the parts are timed separately and reported side by side).

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::crypto::default_provider;
use accord_core::evidence::{self, ReferenceValues};
use accord_guest::atls::{
    Acceptor, ClientAuth, Clock, Connector, Identity, PeerPolicy, Timeouts, binding, system_now,
    tls,
};
use accord_guest::tee::TeeProvider;
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use tokio::net::{TcpListener, TcpStream};

const ROUNDS: usize = 300;

struct Stats {
    samples: Vec<Duration>,
}

impl Stats {
    fn new() -> Self {
        Self {
            samples: Vec::with_capacity(ROUNDS),
        }
    }

    fn report(&mut self, name: &str) {
        self.samples.sort();
        let total: Duration = self.samples.iter().sum();
        let n = self.samples.len().max(1);
        let mean = total / u32::try_from(n).unwrap_or(u32::MAX);
        let at = |q: f64| self.samples[((n as f64 - 1.0) * q) as usize];
        println!(
            "{name:<44} mean {:>9.1} µs  p50 {:>9.1} µs  p99 {:>9.1} µs  ({:>7.0}/s sequential)",
            mean.as_secs_f64() * 1e6,
            at(0.5).as_secs_f64() * 1e6,
            at(0.99).as_secs_f64() * 1e6,
            1.0 / mean.as_secs_f64()
        );
    }
}

/// Connects with Nagle's algorithm off, as every caller should: with it on,
/// the last small segment of the evidence frame waits for a delayed ACK
/// (about 40 ms on Linux).
async fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let chip = SimulatedSnp::ephemeral(&SimulatedConfig::default()).unwrap();
    let reference = ReferenceValues {
        snp: vec![chip.reference_values()],
        tdx: Vec::new(),
    };
    let tee: Arc<dyn TeeProvider> = Arc::new(chip);
    let policy = PeerPolicy {
        reference,
        expected_policy_hashes: None,
        at: Clock::System,
    };
    println!("INSECURE SIMULATION: simulated SEV-SNP chip, loopback, {ROUNDS} rounds each");

    // Evidence generation alone.
    let crypto = default_provider();
    let mut generation = Stats::new();
    let mut sample = None;
    for round in 0..ROUNDS {
        let data = binding::report_data(
            crypto,
            binding::Role::Server,
            &[u8::try_from(round % 256).unwrap(); 32],
            b"spki",
        );
        let start = Instant::now();
        let evidence = tee.evidence(&data).unwrap();
        generation.samples.push(start.elapsed());
        sample = Some(evidence);
    }
    generation.report("evidence generation (simulated chip)");

    // Verification alone.
    let sample = sample.unwrap();
    let mut verification = Stats::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        evidence::verify(&sample, &policy.reference, system_now(), crypto).unwrap();
        verification.samples.push(start.elapsed());
    }
    verification.report("evidence verification (core, full chain)");

    runtime.block_on(async {
        // The TLS 1.3 handshake alone, with the same configurations.
        let server_identity = Identity::ephemeral().unwrap();
        let client_identity = Identity::ephemeral().unwrap();
        let server_tls = tokio_rustls::TlsAcceptor::from(Arc::new(
            tls::server_config(&server_identity, true).unwrap(),
        ));
        let client_tls = tokio_rustls::TlsConnector::from(Arc::new(
            tls::client_config(Some(&client_identity)).unwrap(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let _ = tcp.set_nodelay(true);
                let server_tls = server_tls.clone();
                tokio::spawn(async move {
                    let _ = server_tls.accept(tcp).await;
                });
            }
        });
        let mut handshake = Stats::new();
        for _ in 0..ROUNDS {
            let start = Instant::now();
            let tcp = connect(addr).await;
            client_tls
                .connect(tls::server_name(), tcp)
                .await
                .unwrap();
            handshake.samples.push(start.elapsed());
        }
        handshake.report("TLS 1.3 handshake only (mutual raw keys)");
        server.abort();

        for (name, mutual) in [
            ("full attested: server-attested", false),
            ("full attested: mutual", true),
        ] {
            let client_auth = if mutual {
                ClientAuth::Attested(policy.clone())
            } else {
                ClientAuth::KeyOptional
            };
            let acceptor = Arc::new(
                Acceptor::new(
                    Arc::clone(&tee),
                    Identity::ephemeral().unwrap(),
                    client_auth,
                    Timeouts::default(),
                )
                .unwrap(),
            );
            let connector = Arc::new(
                Connector::new(
                    policy.clone(),
                    mutual.then(|| Arc::clone(&tee)),
                    None,
                    Timeouts::default(),
                )
                .unwrap(),
            );
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = Arc::clone(&acceptor);
                    tokio::spawn(async move {
                        let _ = acceptor.accept(tcp).await;
                    });
                }
            });
            let mut full = Stats::new();
            for _ in 0..ROUNDS {
                let start = Instant::now();
                let tcp = connect(addr).await;
                connector.connect(tcp).await.unwrap();
                full.samples.push(start.elapsed());
            }
            full.report(&format!("{name} (sequential)"));

            // Throughput with concurrent clients.
            let concurrency = 8;
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let connector = Arc::clone(&connector);
                tasks.push(tokio::spawn(async move {
                    for _ in 0..ROUNDS / concurrency {
                        let tcp = connect(addr).await;
                        connector.connect(tcp).await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let done = (ROUNDS / concurrency) * concurrency;
            println!(
                "{:<44} {:>7.0} connections/s ({concurrency} concurrent clients, {done} connections)",
                format!("{name} (concurrent)"),
                done as f64 / start.elapsed().as_secs_f64()
            );
            server.abort();
        }
    });
}
