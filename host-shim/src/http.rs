//! The probes and Prometheus metrics on port [`PROBE_PORT`](crate::PROBE_PORT),
//! served from the agent's last report and connections ([`StatusBoard`]).
//!
//! HTTP/1.1 by hyper (its `http1` server, one connection per task):
//! `GET` (and `HEAD`) only, one request per connection (keep-alive off,
//! `Connection: close`), the request head bounded to [`MAX_HEAD`] bytes
//! (`431` beyond) and to [`Probes::read_timeout`] from the connection's
//! start (then the connection is closed unanswered). hyper answers heads
//! it cannot parse with `400`; a target that is not a path gets `400`,
//! another method `405` ([`routes`]). Nothing a client sends can make it
//! panic. After its answer a connection is shut down for writing and what
//! the client still sends is read and dropped (at most 64 KiB, for at
//! most the read timeout), so that closing does not reset the connection
//! before the client has read the answer.
//!
//! - [`STARTUP`]: `200` once the agent has reported with both listeners
//!   up, else `503`.
//! - [`LIVENESS`]: `503` only on evidence that the agent is dead
//!   ([`StatusBoard::liveness`]): it had channel connections and all of
//!   them have been closed for longer than [`Probes::liveness_grace`]
//!   (15 s) without a new one, or it never connected in the
//!   [`Probes::boot_grace`] (60 s) after the shim started. Otherwise
//!   `200` — in particular while any of its connections is open, however
//!   late its reports are and however slow the shim or the store is. (The
//!   channel closes a connection the agent leaves silent for 5 minutes,
//!   so a hung agent is found too, just not quickly.)
//! - [`READINESS`]: `200` iff the last report is younger than
//!   [`Probes::report_timeout`] and says `Ready`, and the connection it
//!   came on is still open (a killed agent is not ready a moment later,
//!   whatever it last said).
//! - [`METRICS`]: Prometheus text format 0.0.4 ([`metrics::render`]).
//!
//! **Connections are evicted, not refused** ([`evict`]). The accept loop
//! is the shim's own, so that it sees every connection. At most
//! [`MAX_CONNECTIONS`] are open at once. A connection accepted beyond
//! that evicts (closes) the oldest open connection that has not yet
//! delivered a complete request head *and has no unread bytes waiting in
//! its socket*, else the oldest without a complete head, else the oldest
//! of all; the new one is always served. So idle or trickling clients,
//! however many, cannot starve the kubelet's probes: a probe sends its
//! whole request at once, so until hyper has read it, its bytes wait in
//! the socket (checked with a non-blocking `peek` on a duplicate of the
//! connection's descriptor) and it is passed over; once read, it is no
//! longer a candidate while any idle connection is left.
//! Evictions are counted (`accord_shim_probe_connections_evicted_total`)
//! and logged on stderr, at most one line every [`EVICTION_LOG_EVERY`].

mod evict;
pub mod metrics;
mod routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::status::{BOOT_GRACE, LIVENESS_GRACE, REPORT_TIMEOUT, StatusBoard};
use evict::{Entry, EvictionLog, Registry};

/// The startup probe's path.
pub const STARTUP: &str = "/probe/startup";
/// The liveness probe's path.
pub const LIVENESS: &str = "/probe/liveness";
/// The readiness probe's path.
pub const READINESS: &str = "/probe/readiness";
/// The Prometheus metrics' path.
pub const METRICS: &str = "/metrics";

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most connections open at once; one more evicts an older one (see the
/// module docs).
pub const MAX_CONNECTIONS: usize = 64;

/// At most one eviction line on stderr per this interval (it counts the
/// evictions since the previous line).
pub const EVICTION_LOG_EVERY: Duration = Duration::from_secs(10);

/// Most bytes read and dropped after an answer (see the module docs).
const MAX_DRAIN: usize = 64 * 1024;

/// The server's tunables (the defaults are the production values).
#[derive(Clone, Copy, Debug)]
pub struct Probes {
    /// How old the last report may be for readiness.
    pub report_timeout: Duration,
    /// How long the agent may be without an open channel connection, after
    /// it had one, before liveness fails.
    pub liveness_grace: Duration,
    /// How long after the shim started the agent may take to connect
    /// first before liveness fails.
    pub boot_grace: Duration,
    /// How long a client may take to send its request head (and to take
    /// the answer).
    pub read_timeout: Duration,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            report_timeout: REPORT_TIMEOUT,
            liveness_grace: LIVENESS_GRACE,
            boot_grace: BOOT_GRACE,
            read_timeout: Duration::from_secs(5),
        }
    }
}

/// Serves the probes and metrics on `listener` with the default
/// [`Probes`] until `shutdown` becomes `true` (or its sender goes away).
pub async fn serve(
    listener: TcpListener,
    board: Arc<StatusBoard>,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, board, shutdown, Probes::default()).await;
}

/// What the connections share.
struct Server {
    board: Arc<StatusBoard>,
    config: Probes,
    connections: Arc<Registry>,
    http: http1::Builder,
}

/// [`serve`] with explicit tunables.
pub async fn serve_with(
    listener: TcpListener,
    board: Arc<StatusBoard>,
    mut shutdown: watch::Receiver<bool>,
    config: Probes,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.read_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_HEAD)
        .keep_alive(false)
        // A client may half-close once it has sent its request, and still
        // be answered.
        .half_close(true)
        .title_case_headers(true)
        .auto_date_header(false);
    let server = Arc::new(Server {
        board,
        config,
        connections: Arc::default(),
        http,
    });
    let mut log = EvictionLog::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let due = log.due();
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                log.flush();
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of descriptors and the like: back off briefly.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (entry, eviction) = server.connections.admit(&stream, peer);
        let evicted = eviction.is_some();
        if let Some(eviction) = eviction {
            log.record(eviction);
        }
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            tokio::select! {
                biased;
                // Dropping the stream closes the connection.
                () = entry.evicted() => {}
                () = connection(stream, &server, &entry) => {}
            }
            drop(entry);
        });
        if evicted {
            // Under a flood, let the connections just accepted read their
            // heads before more are accepted (a probe's head arrives with
            // its connection, and then it is no longer a candidate).
            tokio::task::yield_now().await;
        }
    }
}

/// Serves one connection: hyper reads the request and writes the answer,
/// then the connection is shut down and drained (see the module docs).
async fn connection(stream: TcpStream, server: &Arc<Server>, entry: &Entry) {
    let read_timeout = server.config.read_timeout;
    let service = {
        let (server, head) = (Arc::clone(server), entry.head());
        service_fn(move |request| {
            head.store(true, Ordering::SeqCst);
            std::future::ready(Ok::<_, Infallible>(routes::answer(&request, &server)))
        })
    };
    let mut http = server.http.serve_connection(TokioIo::new(stream), service);
    // hyper times the head out itself (from the connection's start); this
    // bounds taking the answer too. Its errors (a malformed head, already
    // answered; a timeout; the client gone) end the connection all alike.
    let _ = tokio::time::timeout(
        read_timeout.saturating_mul(2),
        std::future::poll_fn(|cx| http.poll_without_shutdown(cx)),
    )
    .await;
    let mut stream = http.into_parts().io.into_inner();
    let _ = tokio::time::timeout(read_timeout, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let mut left = MAX_DRAIN;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}
