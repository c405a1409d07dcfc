//! The one-line exchange over mutual TLS, on blocking std sockets.
//!
//! The client sends one line (at most [`MAX_LINE`] bytes with its
//! newline); the server answers with one line ([`answer`]) and closes
//! (TLS close_notify). The handshake is completed before any data moves,
//! so a refused certificate fails the exchange before a byte of the line
//! is sent or answered. Every socket gets [`IO_TIMEOUT`] for reads and
//! writes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection, StreamOwned};

/// The read and write timeout of every socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// The timeout of one TCP connection attempt.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest line either side accepts, newline included.
pub const MAX_LINE: usize = 64 * 1024;

/// What the server side of one exchange saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The client's line, without its newline.
    pub line: String,
    /// The bytes of the line received, newline included.
    pub bytes: usize,
    /// How many certificates the client presented (its verified chain).
    pub client_certs: usize,
    /// The client's address.
    pub peer: String,
}

/// The server's answer (without the newline): `WHO here: got your N
/// byte(s) over mutual TLS (you presented K certificate(s) chaining to
/// the mesh CA)`.
pub fn answer(who: &str, bytes: usize, client_certs: usize) -> String {
    format!(
        "{who} here: got your {bytes} byte(s) over mutual TLS (you presented {client_certs} certificate(s) chaining to the mesh CA)"
    )
}

fn set_timeouts(tcp: &TcpStream) -> io::Result<()> {
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    tcp.set_nodelay(true)
}

fn peer_of(tcp: &TcpStream) -> String {
    tcp.peer_addr()
        .map_or_else(|_| "an unknown address".to_string(), |a| a.to_string())
}

/// Reads one line (newline included) of at most [`MAX_LINE`] bytes.
fn read_line(tls: &mut impl Read) -> anyhow::Result<String> {
    let mut line = Vec::new();
    BufReader::new(tls.take(MAX_LINE as u64)).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        if line.len() >= MAX_LINE {
            bail!("a line longer than {MAX_LINE} bytes");
        }
        bail!(
            "the connection closed after {} byte(s), before the end of a line",
            line.len()
        );
    }
    String::from_utf8(line).map_err(|_| anyhow!("the line is not UTF-8"))
}

/// Serves one exchange on an accepted connection: completes the mutual
/// TLS handshake (the client's chain must verify against the mesh CA),
/// reads the client's line and answers it as `who` ([`answer`]).
pub fn serve_one(config: &Arc<ServerConfig>, tcp: TcpStream, who: &str) -> anyhow::Result<Served> {
    let peer = peer_of(&tcp);
    set_timeouts(&tcp).with_context(|| format!("setting up the connection of {peer}"))?;
    let conn = ServerConnection::new(Arc::clone(config))?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .with_context(|| format!("TLS handshake with the client {peer}"))?;
    }
    let client_certs = tls.conn.peer_certificates().map_or(0, <[_]>::len);
    let line =
        read_line(&mut tls).with_context(|| format!("reading the line of the client {peer}"))?;
    let mut reply = answer(who, line.len(), client_certs);
    reply.push('\n');
    let sent = tls.write_all(reply.as_bytes()).and_then(|()| {
        tls.conn.send_close_notify();
        tls.flush()
    });
    sent.with_context(|| format!("answering the client {peer}"))?;
    Ok(Served {
        bytes: line.len(),
        line: line.trim_end_matches('\n').to_string(),
        client_certs,
        peer,
    })
}

/// One exchange as the client on a connected socket: completes the
/// mutual TLS handshake (the server's chain must verify against the mesh
/// CA and be for `server_name`), sends `message` as a line and returns
/// the server's answer (without its newline).
pub fn call(
    config: &Arc<ClientConfig>,
    tcp: TcpStream,
    server_name: &str,
    message: &str,
) -> anyhow::Result<String> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| anyhow!("server name `{server_name}`: not a DNS name or IP address"))?;
    if message.contains('\n') {
        bail!("the message must be one line (it has a newline)");
    }
    if message.len() >= MAX_LINE {
        bail!("the message is longer than {} bytes", MAX_LINE - 1);
    }
    let peer = peer_of(&tcp);
    let to = format!("{server_name} at {peer}");
    set_timeouts(&tcp).with_context(|| format!("setting up the connection to {to}"))?;
    let conn = ClientConnection::new(Arc::clone(config), name)?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .with_context(|| format!("TLS handshake with {to}"))?;
    }
    tls.write_all(format!("{message}\n").as_bytes())
        .and_then(|()| tls.flush())
        .with_context(|| format!("sending the line to {to}"))?;
    // In TLS 1.3 the server checks our certificate after our side of the
    // handshake is done: a refusal arrives here, as an alert.
    let answer = read_line(&mut tls).with_context(|| format!("reading the answer of {to}"))?;
    Ok(answer.trim_end_matches('\n').to_string())
}

/// Whether a failed connection attempt may pass if retried (nobody
/// listening yet, a name not in DNS yet).
fn transient(err: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | AddrNotAvailable
    )
}

fn connect_once(target: &str) -> Result<TcpStream, (bool, io::Error)> {
    // A malformed target (no port, a bad port) never passes; a name that
    // does not resolve may, once its service exists.
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .map_err(|e| (e.kind() != io::ErrorKind::InvalidInput, e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    let retry = last.kind() == io::ErrorKind::NotFound || transient(&last);
    Err((retry, last))
}

/// Connects to `target` (`HOST:PORT`), retrying refused connections and
/// names that do not resolve for up to `retry_for` (backing off from
/// 100 ms to 2 s between attempts). Other errors fail at once.
pub fn connect(target: &str, retry_for: Duration) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + retry_for;
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let (retry, err) = match connect_once(target) {
            Ok(tcp) => return Ok(tcp),
            Err(failed) => failed,
        };
        if !retry || Instant::now() + delay > deadline {
            return Err(anyhow!(
                "connecting to {target}: {err} ({attempts} attempt(s) in {} s)",
                retry_for.as_secs()
            ));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
