//! The probes and Prometheus metrics on port [`PROBE_PORT`](crate::PROBE_PORT),
//! served from the agent's last report ([`StatusBoard`]).
//!
//! A deliberately small HTTP/1.1 server: `GET` (and `HEAD`) only, one
//! request per connection (`Connection: close`), the request head bounded
//! to [`MAX_HEAD`] bytes and [`Probes::read_timeout`], at most
//! [`MAX_CONNECTIONS`] connections at once. Malformed requests get `400`,
//! oversized heads `431`, slow clients `408`; nothing a client sends can
//! make it panic.
//!
//! - [`STARTUP`]: `200` once the agent has reported with both listeners
//!   up, else `503`.
//! - [`LIVENESS`]: `200` while the last report is younger than
//!   [`Probes::liveness_timeout`] (before the first report: while the
//!   server is younger than that, so a booting VM is not killed), else
//!   `503`.
//! - [`READINESS`]: `200` iff the last report is fresh and says `Ready`,
//!   and the connection it came on is still open (a killed agent is not
//!   ready a moment later, whatever it last said).
//! - [`METRICS`]: Prometheus text format 0.0.4 ([`metrics::render`]).

pub mod metrics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::protocol::shim::AgentState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::status::{LIVENESS_TIMEOUT, StatusBoard};

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

/// Most connections served at once; more are closed unanswered.
pub const MAX_CONNECTIONS: usize = 64;

/// The server's tunables (the defaults are the production values).
#[derive(Clone, Copy, Debug)]
pub struct Probes {
    /// How old the last report may be for liveness and readiness.
    pub liveness_timeout: Duration,
    /// How long a client may take to send its request head (and to take
    /// the answer).
    pub read_timeout: Duration,
}

impl Default for Probes {
    fn default() -> Self {
        Self {
            liveness_timeout: LIVENESS_TIMEOUT,
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

/// [`serve`] with explicit tunables.
pub async fn serve_with(
    listener: TcpListener,
    board: Arc<StatusBoard>,
    mut shutdown: watch::Receiver<bool>,
    config: Probes,
) {
    let started = Instant::now();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        if *shutdown.borrow() {
            return;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            changed = shutdown.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of descriptors and the like: back off briefly.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let board = Arc::clone(&board);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection(stream, &board, started, &config).await;
        });
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
    board: &StatusBoard,
    started: Instant,
    config: &Probes,
) -> std::io::Result<()> {
    let (response, head) =
        match tokio::time::timeout(config.read_timeout, read_head(&mut stream)).await {
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
            Ok(Ok(Some(Ok(Request::Get { path, head })))) => {
                (route(&path, board, started, config), head)
            }
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
/// anything.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Result<Request, Refused>>> {
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

fn route(path: &str, board: &StatusBoard, started: Instant, config: &Probes) -> Response {
    let latest = board.latest();
    let fresh = |age: Duration| age < config.liveness_timeout;
    match path {
        STARTUP => probe(
            latest.as_ref().is_some_and(|(status, _)| status.listening),
            "the agent's listeners are not up",
        ),
        LIVENESS => probe(
            match &latest {
                Some((_, age)) => fresh(*age),
                None => fresh(started.elapsed()),
            },
            "the agent has stopped reporting",
        ),
        READINESS => probe(
            board.connected()
                && latest.as_ref().is_some_and(|(status, age)| {
                    fresh(*age) && status.state == Some(AgentState::Ready)
                }),
            "the agent is not ready",
        ),
        METRICS => Response {
            status: 200,
            content_type: metrics::CONTENT_TYPE,
            extra_header: None,
            body: metrics::render(latest.as_ref().map(|(status, age)| (status, *age))),
        },
        _ => Response::text(404, "not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
