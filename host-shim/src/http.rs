//! The probes and Prometheus metrics on port [`PROBE_PORT`](crate::PROBE_PORT),
//! served from the agent's last report and connections ([`StatusBoard`]).
//!
//! A deliberately small HTTP/1.1 server: `GET` (and `HEAD`) only, one
//! request per connection (`Connection: close`), the request head bounded
//! to [`MAX_HEAD`] bytes and [`Probes::read_timeout`]. Malformed requests
//! get `400`, oversized heads `431`, slow clients `408`; nothing a client
//! sends can make it panic.
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
//! **Connections are evicted, not refused.** At most [`MAX_CONNECTIONS`]
//! are open at once. A connection accepted beyond that evicts (closes)
//! the oldest open connection that has not yet delivered a complete
//! request head *and has no unread bytes waiting in its socket*, else the
//! oldest without a complete head, else the oldest of all; the new one is
//! always served. So idle or trickling clients, however many, cannot
//! starve the kubelet's probes: a probe sends its whole request at once,
//! so until its task has read it, its bytes wait in the socket (checked
//! with a non-blocking `peek` on a duplicate of the connection's
//! descriptor) and it is passed over; once read, it is no longer a
//! candidate while any idle connection is left.
//! Evictions are counted (`accord_shim_probe_connections_evicted_total`)
//! and logged on stderr, at most one line every [`EVICTION_LOG_EVERY`].

pub mod metrics;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::protocol::shim::AgentState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

use crate::status::{BOOT_GRACE, LIVENESS_GRACE, REPORT_TIMEOUT, StatusBoard};

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

/// One open connection, as the accept loop sees it.
struct Slot {
    peer: SocketAddr,
    accepted: Instant,
    /// Set once the client delivered a complete request head.
    head: Arc<AtomicBool>,
    /// Notified to evict the connection.
    evict: Arc<Notify>,
    /// A duplicate of the connection's descriptor (non-blocking), to see
    /// whether bytes wait unread (`None` if it could not be made).
    socket: Option<std::net::TcpStream>,
}

impl Slot {
    /// Whether the client sent bytes the connection's task has not read
    /// yet (a request on its way in, not an idle client).
    fn has_unread_bytes(&self) -> bool {
        let mut byte = [0u8; 1];
        self.socket
            .as_ref()
            .is_some_and(|socket| matches!(socket.peek(&mut byte), Ok(n) if n > 0))
    }
}

/// A non-blocking duplicate of `stream`'s descriptor.
fn duplicate(stream: &TcpStream) -> Option<std::net::TcpStream> {
    use std::os::fd::AsFd;
    let socket = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned().ok()?);
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

/// What the connections share.
struct Server {
    board: Arc<StatusBoard>,
    config: Probes,
    /// The open connections by id; ids grow, so this is oldest first.
    open: Mutex<BTreeMap<u64, Slot>>,
    evicted: AtomicU64,
}

impl Server {
    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Which connection to evict, given (id, delivered a complete head, has
/// unread bytes) oldest first: the oldest without a complete head and
/// without unread bytes, else the oldest without a complete head, else
/// the oldest.
///
/// One pass: each slot is looked at (and its socket peeked at) once.
fn victim(slots: impl Iterator<Item = (u64, bool, bool)>) -> Option<u64> {
    let (mut headless, mut oldest) = (None, None);
    for (id, head, unread) in slots {
        if !head && !unread {
            return Some(id);
        }
        if !head {
            headless = headless.or(Some(id));
        }
        oldest = oldest.or(Some(id));
    }
    headless.or(oldest)
}

/// Removes its connection from the table when the connection's task ends
/// (answered, failed or evicted).
struct Leave {
    server: Arc<Server>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.server.open().remove(&self.id);
    }
}

/// Rate-limited eviction lines on stderr.
#[derive(Default)]
struct EvictionLog {
    /// Evictions not yet logged, and the last of them.
    pending: u64,
    last: Option<(SocketAddr, Duration, bool)>,
    /// When the last line was written.
    written: Option<Instant>,
}

impl EvictionLog {
    fn record(&mut self, peer: SocketAddr, age: Duration, head: bool, total: u64) {
        self.pending += 1;
        self.last = Some((peer, age, head));
        if self
            .written
            .is_none_or(|at| at.elapsed() >= EVICTION_LOG_EVERY)
        {
            self.flush(total);
        }
    }

    /// When the pending evictions are due to be logged.
    fn due(&self) -> Option<Instant> {
        match (self.pending, self.written) {
            (0, _) | (_, None) => None,
            (_, Some(at)) => Some(at + EVICTION_LOG_EVERY),
        }
    }

    fn flush(&mut self, total: u64) {
        let Some((peer, age, head)) = self.last.take() else {
            return;
        };
        eprintln!(
            "accord-shim: probes: at the limit of {MAX_CONNECTIONS} connections: evicted {} \
             connection(s) to serve newer ones (the last from {peer}, open {:.1} s, {}); \
             {total} evicted in all",
            self.pending,
            age.as_secs_f64(),
            if head {
                "being answered"
            } else {
                "no complete request yet"
            },
        );
        self.pending = 0;
        self.written = Some(Instant::now());
    }
}

/// [`serve`] with explicit tunables.
pub async fn serve_with(
    listener: TcpListener,
    board: Arc<StatusBoard>,
    mut shutdown: watch::Receiver<bool>,
    config: Probes,
) {
    let server = Arc::new(Server {
        board,
        config,
        open: Mutex::new(BTreeMap::new()),
        evicted: AtomicU64::new(0),
    });
    let mut next_id = 0u64;
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
                log.flush(server.evicted.load(Ordering::Relaxed));
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
        next_id += 1;
        let id = next_id;
        let head = Arc::new(AtomicBool::new(false));
        let evict = Arc::new(Notify::new());
        let evicted = {
            let mut open = server.open();
            let evicted = if open.len() >= MAX_CONNECTIONS {
                victim(open.iter().map(|(id, slot)| {
                    let head = slot.head.load(Ordering::SeqCst);
                    // Only candidates are peeked at.
                    (*id, head, !head && slot.has_unread_bytes())
                }))
                .and_then(|id| open.remove(&id))
            } else {
                None
            };
            open.insert(
                id,
                Slot {
                    peer,
                    accepted: Instant::now(),
                    head: Arc::clone(&head),
                    evict: Arc::clone(&evict),
                    socket: duplicate(&stream),
                },
            );
            evicted
        };
        if let Some(slot) = &evicted {
            // A stored permit: the connection ends even if its task has
            // not started waiting yet.
            slot.evict.notify_one();
            let total = server.evicted.fetch_add(1, Ordering::Relaxed) + 1;
            log.record(
                slot.peer,
                slot.accepted.elapsed(),
                slot.head.load(Ordering::SeqCst),
                total,
            );
        }
        let leave = Leave {
            server: Arc::clone(&server),
            id,
        };
        tokio::spawn(async move {
            let server = Arc::clone(&leave.server);
            tokio::select! {
                biased;
                // Dropping the stream closes the connection.
                () = evict.notified() => {}
                _ = connection(stream, &server, &head) => {}
            }
            drop(leave);
        });
        if evicted.is_some() {
            // Under a flood, let the connections just accepted read their
            // heads before more are accepted (a probe's head arrives with
            // its connection, and then it is no longer a candidate).
            tokio::task::yield_now().await;
        }
    }
}

/// A request as far as this server cares.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `GET` or `HEAD` (`head`: no body in the answer) of a path.
    Get { path: String, head: bool },
    /// Another method.
    OtherMethod,
}

/// Why a request head was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// `400`.
    Malformed,
    /// `431`.
    TooLarge,
}

/// An answer.
struct Response {
    status: u16,
    content_type: &'static str,
    extra_header: Option<&'static str>,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_header: None,
            body: format!("{body}\n"),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

async fn connection(
    mut stream: TcpStream,
    server: &Server,
    complete: &AtomicBool,
) -> std::io::Result<()> {
    let config = &server.config;
    let (response, head) =
        match tokio::time::timeout(config.read_timeout, read_head(&mut stream, complete)).await {
            Err(_) => (Response::text(408, "request timeout"), false),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(Err(Refused::Malformed)))) => (Response::text(400, "bad request"), false),
            Ok(Ok(Some(Err(Refused::TooLarge)))) => (
                Response::text(431, "request header fields too large"),
                false,
            ),
            Ok(Ok(Some(Ok(Request::OtherMethod)))) => {
                let mut response = Response::text(405, "method not allowed");
                response.extra_header = Some("Allow: GET, HEAD\r\n");
                (response, false)
            }
            Ok(Ok(Some(Ok(Request::Get { path, head })))) => (route(&path, server), head),
        };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        response.extra_header.unwrap_or(""),
    );
    if !head {
        out.push_str(&response.body);
    }
    tokio::time::timeout(config.read_timeout, async {
        stream.write_all(out.as_bytes()).await?;
        stream.shutdown().await?;
        // Drain what the client still sends (bounded), so that closing
        // with unread data does not reset the connection before the
        // answer is read.
        let mut sink = [0u8; 1024];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        Ok(())
    })
    .await
    .unwrap_or(Ok(()))
}

/// Reads the request head; `None` if the client closed before sending
/// anything. Sets `complete` once the head's end arrived.
async fn read_head(
    stream: &mut TcpStream,
    complete: &AtomicBool,
) -> std::io::Result<Option<Result<Request, Refused>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(if buf.is_empty() {
                None
            } else {
                Some(Err(Refused::Malformed))
            });
        }
        // Only search where the terminator can newly appear.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf[from..], b"\r\n\r\n") {
            complete.store(true, Ordering::SeqCst);
            let end = from + end;
            if end + 4 > MAX_HEAD {
                return Ok(Some(Err(Refused::TooLarge)));
            }
            return Ok(Some(parse_head(&buf[..end])));
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Some(Err(Refused::TooLarge)));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a request head (without the final empty line).
fn parse_head(head: &[u8]) -> Result<Request, Refused> {
    let head = std::str::from_utf8(head).map_err(|_| Refused::Malformed)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().ok_or(Refused::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refused::Malformed);
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(method)
        || !target.starts_with('/')
        || target.bytes().any(|b| b.is_ascii_control())
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return Err(Refused::Malformed);
    }
    for line in lines {
        match line.split_once(':') {
            Some((name, _)) if token(name) => {}
            _ => return Err(Refused::Malformed),
        }
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Ok(Request::OtherMethod),
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(Request::Get {
        path: path.to_owned(),
        head,
    })
}

fn probe(ok: bool, what: &str) -> Response {
    if ok {
        Response::text(200, "ok")
    } else {
        Response::text(503, what)
    }
}

fn route(path: &str, server: &Server) -> Response {
    let config = &server.config;
    let board = &server.board;
    let latest = board.latest();
    match path {
        STARTUP => probe(
            latest.as_ref().is_some_and(|(status, _)| status.listening),
            "the agent's listeners are not up",
        ),
        LIVENESS => {
            let liveness = board.liveness(config.liveness_grace, config.boot_grace);
            probe(liveness.is_alive(), &liveness.to_string())
        }
        READINESS => probe(
            board.status_connection_open()
                && latest.as_ref().is_some_and(|(status, age)| {
                    *age < config.report_timeout && status.state == Some(AgentState::Ready)
                }),
            "the agent is not ready",
        ),
        METRICS => {
            let shim = metrics::ShimCounters {
                probe_connections: server.open().len() as u64,
                probe_connections_evicted: server.evicted.load(Ordering::Relaxed),
                agent_connections: board.open_connections() as u64,
            };
            Response {
                status: 200,
                content_type: metrics::CONTENT_TYPE,
                extra_header: None,
                body: metrics::render(latest.as_ref().map(|(status, age)| (status, *age)), &shim),
            }
        }
        _ => Response::text(404, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_victim_is_the_oldest_idle_else_the_oldest() {
        let pick = |slots: &[(u64, bool, bool)]| victim(slots.iter().copied());
        assert_eq!(pick(&[]), None);
        assert_eq!(
            pick(&[(1, true, false), (2, false, false), (3, false, false)]),
            Some(2)
        );
        assert_eq!(pick(&[(1, false, false), (2, true, false)]), Some(1));
        assert_eq!(pick(&[(4, true, false), (9, true, false)]), Some(4));
        // A connection whose request waits unread is passed over while an
        // idle one is left, and taken only when every other one has a
        // complete head.
        assert_eq!(
            pick(&[(1, false, true), (2, false, false), (3, true, false)]),
            Some(2)
        );
        assert_eq!(pick(&[(1, false, true), (3, true, false)]), Some(1));
    }

    #[test]
    fn heads_parse() {
        assert_eq!(
            parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*"),
            Ok(Request::Get {
                path: "/metrics".into(),
                head: false
            })
        );
        assert_eq!(
            parse_head(b"HEAD / HTTP/1.0"),
            Ok(Request::Get {
                path: "/".into(),
                head: true
            })
        );
        assert_eq!(parse_head(b"POST / HTTP/1.1"), Ok(Request::OtherMethod));
        for bad in [
            &b""[..],
            b"GET",
            b"GET /",
            b"GET / HTTP/2",
            b"GET  / HTTP/1.1",
            b"GET x HTTP/1.1",
            b"GET / HTTP/1.1 x",
            b"G(T / HTTP/1.1",
            b"GET / HTTP/1.1\r\nno colon",
            b"GET / HTTP/1.1\r\n: empty name",
            b"GET /\x7f HTTP/1.1",
            b"GET /\xff HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), Err(Refused::Malformed), "{bad:?}");
        }
    }
}
