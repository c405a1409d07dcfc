//! `accord-demo bench exhaust`: the memory-exhaustion attack on the user API
//! (issue 13), for the test that shows the coordinator survives it and
//! for `cargo xtask bench-exhaustion`.
//!
//! Each of N hostile connections, from its own loopback source address
//! (`127.1.x.y`: Linux routes all of 127.0.0.0/8 to the loopback
//! interface), completes attested TLS with the coordinator's user API as
//! an anonymous client (verifying the coordinator, as any client would),
//! says `Hello`, then announces a frame of `MAX_USER_FRAME` bytes whose
//! first body byte is `0x00` (`SetManifest`, the one request that may be
//! that large) and streams it: zeros after the tag, or (one in
//! [`AttackConfig::well_formed_every`]) a well-formed `SetManifest` filling
//! the frame, which decodes and reaches the state machine; as fast as the
//! coordinator reads, or (one in [`AttackConfig::slow_every`]) slowly, 16
//! KiB every 100 ms. When
//! the coordinator answers (busy, or malformed once a whole body arrived)
//! or closes the connection, the client connects again. It never stops on
//! its own; [`Attack::stop`] ends it.
//!
//! The counters ([`AttackStats`]) say what the coordinator did with the
//! frames: how many were refused as busy, read whole and refused as
//! malformed, or cut off (the coordinator's body time limit).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accord_core::protocol::{
    Api, ErrorCode, Hello, HelloReply, MAX_USER_FRAME, SET_MANIFEST_TAG, SetManifestReply, VERSION,
};
use accord_guest::atls::{Connector, PeerPolicy, Timeouts};
use accord_guest::wire::{self, ReadLimits};
use anyhow::{Context, bail};
use clap::Args;
use tokio::io::{AsyncWriteExt, split};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How a slow connection paces its body.
const SLOW_CHUNK: usize = 16 * 1024;
const SLOW_EVERY: Duration = Duration::from_millis(100);

/// How long a client waits before connecting again after a failure.
const BACKOFF: Duration = Duration::from_millis(100);

/// What to attack, and how hard.
#[derive(Clone)]
pub struct AttackConfig {
    /// The coordinator's user API.
    pub user_api: SocketAddr,
    /// What the coordinator's evidence must satisfy.
    pub policy: PeerPolicy,
    /// Hostile connections kept open.
    pub connections: usize,
    /// Loopback source addresses they are spread over (round robin).
    pub sources: usize,
    /// Every `slow_every`-th connection streams slowly (16 KiB every
    /// 100 ms), the others as fast as the coordinator reads (0: none is
    /// slow).
    pub slow_every: usize,
    /// Every `well_formed_every`-th connection sends a well-formed
    /// `SetManifest` (a manifest of zeros filling the frame, no signature)
    /// that decodes and reaches the state machine, the others zeros after
    /// the tag (0: none is well-formed).
    pub well_formed_every: usize,
}

/// Whether connection `i` is one of every `every` (never when 0).
fn every(i: usize, every: usize) -> bool {
    every > 0 && i % every == every - 1
}

/// The attack's counters, shared by its tasks.
#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    connect_failures: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
    frames: AtomicU64,
    bytes_sent: AtomicU64,
    busy: AtomicU64,
    too_large: AtomicU64,
    malformed: AtomicU64,
    decoded: AtomicU64,
    other_replies: AtomicU64,
    closed: AtomicU64,
}

/// What the attack did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttackStats {
    /// Connections that completed attested TLS and `Hello`.
    pub connected: u64,
    /// Connections that failed before that (refused at accept, handshake
    /// failures).
    pub connect_failures: u64,
    /// Connections streaming now.
    pub open: u64,
    /// The most connections streaming at once.
    pub max_open: u64,
    /// Frames announced.
    pub frames: u64,
    /// Body bytes written (into the socket: the coordinator may not have
    /// read them all).
    pub bytes_sent: u64,
    /// Frames refused because the body budget had no room.
    pub busy: u64,
    /// Frames refused as too large.
    pub too_large: u64,
    /// Frames read whole, then refused as malformed.
    pub malformed: u64,
    /// Frames read whole, decoded and answered by the state machine (with
    /// an error: they carry no owner signature).
    pub decoded: u64,
    /// Other replies.
    pub other_replies: u64,
    /// Connections the coordinator closed without a reply (time limits).
    pub closed: u64,
}

impl Counters {
    fn snapshot(&self) -> AttackStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AttackStats {
            connected: get(&self.connected),
            connect_failures: get(&self.connect_failures),
            open: get(&self.open),
            max_open: get(&self.max_open),
            frames: get(&self.frames),
            bytes_sent: get(&self.bytes_sent),
            busy: get(&self.busy),
            too_large: get(&self.too_large),
            malformed: get(&self.malformed),
            decoded: get(&self.decoded),
            other_replies: get(&self.other_replies),
            closed: get(&self.closed),
        }
    }
}

/// A running attack (its tasks run on the caller's runtime).
pub struct Attack {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    counters: Arc<Counters>,
}

impl Attack {
    /// Starts `config.connections` hostile clients.
    pub fn start(config: AttackConfig) -> anyhow::Result<Self> {
        if config.connections == 0 || config.sources == 0 || config.sources > 250 * 250 {
            bail!("connections must be positive and sources between 1 and 62500");
        }
        let connector = Arc::new(
            Connector::new(config.policy.clone(), None, None, Timeouts::default())
                .context("the attested-TLS client")?,
        );
        let (stop, stopped) = watch::channel(false);
        let counters = Arc::new(Counters::default());
        let bodies = [Arc::new(frame_body(false)), Arc::new(frame_body(true))];
        let mut tasks = JoinSet::new();
        for i in 0..config.connections {
            let source = source_address(i % config.sources);
            let slow = every(i, config.slow_every);
            // The well-formed connections are the others when both are
            // one in two.
            let well_formed = every(i + 1, config.well_formed_every);
            let (connector, counters) = (Arc::clone(&connector), Arc::clone(&counters));
            let (target, mut stopped) = (config.user_api, stopped.clone());
            let body = Arc::clone(&bodies[usize::from(well_formed)]);
            tasks.spawn(async move {
                while !*stopped.borrow() {
                    tokio::select! {
                        () = hostile(&connector, source, target, slow, &body, &counters) => {}
                        _ = stopped.changed() => break,
                    }
                }
            });
        }
        Ok(Self {
            stop,
            tasks,
            counters,
        })
    }

    /// The counters now.
    pub fn stats(&self) -> AttackStats {
        self.counters.snapshot()
    }

    /// Stops every client and returns the final counters.
    pub async fn stop(mut self) -> AttackStats {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.counters.snapshot()
    }
}

/// The `k`-th loopback source address: 127.1.x.y with y in 1..=250.
pub fn source_address(k: usize) -> IpAddr {
    let (high, low) = (k / 250, k % 250 + 1);
    IpAddr::V4(Ipv4Addr::new(
        127,
        1,
        u8::try_from(high).unwrap_or(u8::MAX),
        u8::try_from(low).unwrap_or(u8::MAX),
    ))
}

/// The body every hostile frame carries (`MAX_USER_FRAME` bytes, starting
/// with the `SetManifest` tag): zeros after the tag (an empty
/// `SetManifest` and trailing bytes), or a well-formed `SetManifest`
/// whose manifest fills the frame.
pub fn frame_body(well_formed: bool) -> Vec<u8> {
    let mut body = vec![0u8; MAX_USER_FRAME];
    if well_formed {
        // tag, varint(manifest length) = 4 bytes, the manifest, then
        // policies [], expected None, signatures [], reshare false.
        let manifest_len = MAX_USER_FRAME - 1 - 4 - 4;
        let mut varint = Vec::new();
        let mut n = manifest_len;
        while n >= 0x80 {
            varint.push(u8::try_from(n & 0x7f).unwrap_or(0) | 0x80);
            n >>= 7;
        }
        varint.push(u8::try_from(n).unwrap_or(0));
        if let Some(slot) = body.get_mut(1..1 + varint.len()) {
            slot.copy_from_slice(&varint);
        }
    }
    if let Some(first) = body.first_mut() {
        *first = SET_MANIFEST_TAG;
    }
    body
}

/// Keeps `counters.open` right while a connection streams.
struct Open<'a>(&'a Counters);

impl<'a> Open<'a> {
    fn new(counters: &'a Counters) -> Self {
        let now = counters.open.fetch_add(1, Ordering::Relaxed) + 1;
        counters.max_open.fetch_max(now, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One hostile connection, from connect to the coordinator's answer.
async fn hostile(
    connector: &Connector,
    source: IpAddr,
    target: SocketAddr,
    slow: bool,
    body: &[u8],
    counters: &Counters,
) {
    let Ok(stream) = connect(connector, source, target).await else {
        counters.connect_failures.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(BACKOFF).await;
        return;
    };
    counters.connected.fetch_add(1, Ordering::Relaxed);
    let _open = Open::new(counters);
    let (mut reader, mut writer) = split(stream);
    let stream_body = async {
        let prefix = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
        writer.write_all(&prefix).await?;
        let (first, rest) = body.split_at(1.min(body.len()));
        writer.write_all(first).await?;
        writer.flush().await?;
        counters.frames.fetch_add(1, Ordering::Relaxed);
        for chunk in rest.chunks(SLOW_CHUNK) {
            writer.write_all(chunk).await?;
            counters
                .bytes_sent
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if slow {
                writer.flush().await?;
                tokio::time::sleep(SLOW_EVERY).await;
            }
        }
        writer.flush().await?;
        // The whole frame is out: wait for the verdict.
        std::future::pending::<std::io::Result<()>>().await
    };
    let limits = ReadLimits {
        max: 64 * 1024,
        idle: Duration::from_secs(120),
        body: Duration::from_secs(120),
    };
    let reply = tokio::select! {
        reply = wire::read_message::<SetManifestReply, _>(&mut reader, limits) => reply.ok(),
        _ = stream_body => {
            // Writing failed (the coordinator closed): its reply may be
            // waiting.
            tokio::time::timeout(
                Duration::from_secs(1),
                wire::read_message::<SetManifestReply, _>(&mut reader, limits),
            )
            .await
            .ok()
            .and_then(Result::ok)
        }
    };
    let counter = match &reply {
        Some(SetManifestReply::Error(error)) if error.message.contains("is busy") => &counters.busy,
        Some(SetManifestReply::Error(error)) if error.code != ErrorCode::Protocol => {
            &counters.decoded
        }
        Some(SetManifestReply::Error(error)) if error.message.contains("exceeds") => {
            &counters.too_large
        }
        Some(SetManifestReply::Error(error))
            if error.message.contains("malformed") || error.message.contains("trailing") =>
        {
            &counters.malformed
        }
        Some(_) => &counters.other_replies,
        None => &counters.closed,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A user-API connection after `Hello`.
pub type UserStream = tokio_rustls::TlsStream<tokio::net::TcpStream>;

/// An anonymous user-API connection to `target` from the local address
/// `source`, through attested TLS (`connector`) and `Hello`.
pub async fn connect(
    connector: &Connector,
    source: IpAddr,
    target: SocketAddr,
) -> anyhow::Result<UserStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), socket.connect(target))
        .await
        .context("connect timed out")??;
    tcp.set_nodelay(true)?;
    let (mut tls, _) = connector.connect(tcp).await?.into_parts();
    let hello = Hello {
        versions: vec![VERSION],
        api: Api::User,
    };
    wire::write_message(&mut tls, &hello, 1024, Duration::from_secs(10)).await?;
    let limits = ReadLimits {
        max: 4096,
        idle: Duration::from_secs(10),
        body: Duration::from_secs(10),
    };
    match wire::read_message::<HelloReply, _>(&mut tls, limits).await? {
        HelloReply::Accepted { .. } => Ok(tls),
        HelloReply::Refused { reason } => bail!("Hello refused: {reason}"),
    }
}

/// `accord-demo bench exhaust`
#[derive(Debug, Args)]
pub struct ExhaustArgs {
    /// The coordinator's user API (on loopback: the sources are loopback
    /// addresses).
    #[arg(short = 'u', long = "user-api", value_name = "HOST:PORT")]
    user_api: SocketAddr,

    /// The coordinator's simulated chip (`STATE/chip`), whose evidence the
    /// hostile clients verify.
    #[arg(long, value_name = "CHIPDIR")]
    state: std::path::PathBuf,

    /// Hostile connections.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    connections: usize,

    /// Loopback source addresses (127.1.x.y) they come from.
    #[arg(long, value_name = "N", default_value_t = 64)]
    sources: usize,

    /// How long to attack, in seconds.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    duration: f64,

    /// One connection in N streams slowly (16 KiB every 100 ms), the
    /// others as fast as the coordinator reads (0: none is slow).
    #[arg(long, value_name = "N", default_value_t = 0)]
    slow_every: usize,

    /// One connection in N sends a well-formed SetManifest (it decodes
    /// and reaches the state machine), the others zeros after the tag (0:
    /// none).
    #[arg(long, value_name = "N", default_value_t = 2)]
    well_formed_every: usize,
}

/// Runs `accord-demo bench exhaust`: prints `ready: N connections streaming`
/// on stdout once 90% of the connections stream (or after 60 s), progress
/// on stderr every 5 s, and, after `--duration` or at SIGTERM / Ctrl-C,
/// the final counters as one JSON object.
pub fn run_cli(args: &ExhaustArgs) -> anyhow::Result<()> {
    use std::io::Write;

    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    let chip = accord_guest::tee::simulated::SimulatedSnp::open(
        &args.state,
        &accord_guest::tee::simulated::SimulatedConfig::default(),
    )
    .with_context(|| format!("opening the simulated chip in {}", args.state.display()))?;
    let mut snp = chip.reference_values();
    snp.host_data = None;
    let policy = PeerPolicy {
        reference: accord_core::evidence::ReferenceValues {
            snp: vec![snp],
            tdx: Vec::new(),
        },
        expected_policy_hashes: None,
        at: accord_guest::atls::Clock::System,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let stats = runtime.block_on(async {
        let attack = Attack::start(AttackConfig {
            user_api: args.user_api,
            policy,
            connections: args.connections,
            sources: args.sources,
            slow_every: args.slow_every,
            well_formed_every: args.well_formed_every,
        })?;
        let started = std::time::Instant::now();
        let end = started + Duration::from_secs_f64(args.duration);
        let mut ready = false;
        let mut last_progress = started;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        while std::time::Instant::now() < end {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
            let stats = attack.stats();
            if !ready
                && (stats.open * 10 >= args.connections as u64 * 9
                    || started.elapsed() > Duration::from_secs(60))
            {
                ready = true;
                let mut out = std::io::stdout().lock();
                writeln!(out, "ready: {} connections streaming", stats.open)?;
                out.flush()?;
            }
            if last_progress.elapsed() >= Duration::from_secs(5) {
                last_progress = std::time::Instant::now();
                eprintln!(
                    "{:>4.0} s  open {}  busy {}  malformed {}  decoded {}  closed {}  connect failures {}",
                    started.elapsed().as_secs_f64(),
                    stats.open,
                    stats.busy,
                    stats.malformed,
                    stats.decoded,
                    stats.closed,
                    stats.connect_failures
                );
            }
        }
        anyhow::Ok(attack.stop().await)
    })?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bodies_are_set_manifests_of_the_maximum_size() {
        use accord_core::protocol::{SetManifest, UserRequest, decode};
        let zeros = frame_body(false);
        assert_eq!(zeros.len(), MAX_USER_FRAME);
        assert!(decode::<UserRequest>(&zeros).is_err(), "trailing bytes");
        let well_formed = frame_body(true);
        assert_eq!(well_formed.len(), MAX_USER_FRAME);
        let Ok(UserRequest::SetManifest(SetManifest {
            manifest,
            signatures,
            ..
        })) = decode::<UserRequest>(&well_formed)
        else {
            panic!("not a SetManifest")
        };
        assert_eq!(manifest.len(), MAX_USER_FRAME - 9);
        assert!(signatures.is_empty());
    }

    #[test]
    fn one_in_n() {
        let picked: Vec<usize> = (0..6).filter(|i| every(*i, 2)).collect();
        assert_eq!(picked, [1, 3, 5]);
        let others: Vec<usize> = (0..6).filter(|i| every(i + 1, 2)).collect();
        assert_eq!(others, [0, 2, 4]);
        assert!(!(0..6).any(|i| every(i, 0)));
    }

    #[test]
    fn sources_are_distinct_loopback_addresses() {
        let addresses: std::collections::BTreeSet<IpAddr> = (0..1000).map(source_address).collect();
        assert_eq!(addresses.len(), 1000);
        assert!(addresses.iter().all(IpAddr::is_loopback));
        assert_eq!(source_address(0).to_string(), "127.1.0.1");
        assert_eq!(source_address(250).to_string(), "127.1.1.1");
    }
}
