//! A small HTTP/1.1 GET client for the vendors' collateral services: plain
//! `http://` and `https://` (rustls with the aws-lc-rs provider and
//! Mozilla's roots), optionally through an HTTP proxy (absolute-form
//! requests for `http://`, `CONNECT` for `https://`).
//!
//! Every request is bounded: a connect timeout (TCP, proxy `CONNECT` and TLS
//! handshake), a timeout on the whole exchange and a cap on the body size.
//! TLS here authenticates the server only for privacy and to fail early;
//! what the client returns is still verified by core against the pinned
//! roots.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Uri;
use hyper::header::{HOST, HeaderMap, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Limits and the proxy of an [`HttpClient`].
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Bound on connecting: TCP, the proxy's `CONNECT` and the TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on the whole request, from connecting to the last body byte.
    pub total_timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_body: usize,
    /// An HTTP proxy (`http://host:port`) all requests go through.
    pub proxy: Option<Uri>,
    /// TLS roots (DER) trusted besides Mozilla's: a PCCS or mirror with its
    /// own certificate authority.
    pub extra_roots: Vec<Vec<u8>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_body: 4 * 1024 * 1024,
            proxy: None,
            extra_roots: Vec::new(),
        }
    }
}

/// A response: status, headers and the whole body.
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` with a host.
    BadUrl(String),
    /// Connecting failed (refused, unreachable, name not resolved).
    Connect(String),
    /// Connecting took longer than the connect timeout.
    ConnectTimeout(Duration),
    /// The whole exchange took longer than the total timeout.
    Timeout(Duration),
    /// The proxy refused the `CONNECT` or answered garbage.
    Proxy(String),
    /// The TLS handshake failed.
    Tls(String),
    /// The HTTP exchange failed.
    Http(String),
    /// The body is larger than the cap.
    TooLarge(usize),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(url) => write!(f, "{url}: not an http:// or https:// URL"),
            Self::Connect(err) => write!(f, "cannot connect: {err}"),
            Self::ConnectTimeout(d) => write!(f, "no connection within {} s", d.as_secs_f32()),
            Self::Timeout(d) => write!(f, "no complete answer within {} s", d.as_secs_f32()),
            Self::Proxy(err) => write!(f, "proxy: {err}"),
            Self::Tls(err) => write!(f, "TLS: {err}"),
            Self::Http(err) => write!(f, "HTTP: {err}"),
            Self::TooLarge(max) => write!(f, "answer larger than {max} bytes"),
        }
    }
}

impl std::error::Error for HttpError {}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The HTTP/1.1 client.
#[derive(Clone)]
pub struct HttpClient {
    config: HttpConfig,
    tls: tokio_rustls::TlsConnector,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Host, port and whether TLS is used, from an absolute URL.
struct Target {
    https: bool,
    host: String,
    port: u16,
}

fn target(uri: &Uri) -> Option<Target> {
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return None,
    };
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Some(Target {
        https,
        host: host.to_owned(),
        port,
    })
}

impl HttpClient {
    /// A client with `config`, trusting Mozilla's roots (and the extra
    /// ones) for `https://`.
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        for der in &config.extra_roots {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|err| HttpError::Tls(format!("an extra root is unusable: {err}")))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| HttpError::Tls(err.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// GETs `url`. Any status is returned as a [`Response`]; only failing to
    /// get an answer is an error.
    pub async fn get(&self, url: &str) -> Result<Response, HttpError> {
        let uri: Uri = url.parse().map_err(|_| HttpError::BadUrl(url.to_owned()))?;
        let total = self.config.total_timeout;
        match tokio::time::timeout(total, self.exchange(&uri, url)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(total)),
        }
    }

    async fn exchange(&self, uri: &Uri, url: &str) -> Result<Response, HttpError> {
        let target = target(uri).ok_or_else(|| HttpError::BadUrl(url.to_owned()))?;
        let proxy = match &self.config.proxy {
            Some(proxy) => Some(target_of_proxy(proxy)?),
            None => None,
        };
        let connect_timeout = self.config.connect_timeout;
        let stream = tokio::time::timeout(connect_timeout, self.connect(&target, proxy.as_ref()))
            .await
            .map_err(|_| HttpError::ConnectTimeout(connect_timeout))??;
        // Through a proxy, plain HTTP uses the absolute form; otherwise the
        // origin form.
        let request_uri = if proxy.is_some() && !target.https {
            url.to_owned()
        } else {
            uri.path_and_query()
                .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
        };
        let host = if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        };
        let host_header = match uri.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| HttpError::Http(err.to_string()))?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = hyper::Request::get(request_uri)
            .header(HOST, host_header)
            .header(
                USER_AGENT,
                concat!("accord-collateral/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|err| HttpError::Http(err.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| HttpError::Http(err.to_string()))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let max = self.config.max_body;
        let body = Limited::new(response.into_body(), max)
            .collect()
            .await
            .map_err(|err| {
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    HttpError::TooLarge(max)
                } else {
                    HttpError::Http(err.to_string())
                }
            })?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn connect(
        &self,
        target: &Target,
        proxy: Option<&Target>,
    ) -> Result<Pin<Box<dyn Io>>, HttpError> {
        let (host, port) = match proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (target.host.as_str(), target.port),
        };
        let mut tcp = TcpStream::connect((host, port))
            .await
            .map_err(|err| HttpError::Connect(format!("{host}:{port}: {err}")))?;
        let _ = tcp.set_nodelay(true);
        if !target.https {
            return Ok(Box::pin(tcp));
        }
        if proxy.is_some() {
            connect_tunnel(&mut tcp, &target.host, target.port).await?;
        }
        let name = ServerName::try_from(target.host.clone())
            .map_err(|_| HttpError::Tls(format!("{}: not a valid server name", target.host)))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|err| HttpError::Tls(err.to_string()))?;
        Ok(Box::pin(tls))
    }
}

fn target_of_proxy(proxy: &Uri) -> Result<Target, HttpError> {
    match target(proxy) {
        Some(t) if !t.https => Ok(t),
        _ => Err(HttpError::Proxy(format!(
            "{proxy}: only http:// proxies are supported"
        ))),
    }
}

/// Asks the proxy for a tunnel to `host:port` and reads its answer up to the
/// end of the headers (bounded).
async fn connect_tunnel(tcp: &mut TcpStream, host: &str, port: u16) -> Result<(), HttpError> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .map_err(|err| HttpError::Proxy(err.to_string()))?;
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 {
            return Err(HttpError::Proxy("CONNECT answer too long".into()));
        }
        let n = tcp
            .read(&mut byte)
            .await
            .map_err(|err| HttpError::Proxy(err.to_string()))?;
        if n == 0 {
            return Err(HttpError::Proxy("closed during CONNECT".into()));
        }
        head.extend_from_slice(&byte);
    }
    let status_line = head
        .split(|b| *b == b'\r')
        .next()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if code == "200" {
        Ok(())
    } else {
        Err(HttpError::Proxy(format!(
            "CONNECT {authority} refused: {status_line}"
        )))
    }
}
