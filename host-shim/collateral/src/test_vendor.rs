//! A loopback stand-in for AMD's KDS and Intel's PCS v4, for tests (feature
//! `test-vendor`): it answers the vendors' URL shapes and response headers
//! with the bytes it is given (real vendor data in the tests), counts the
//! requests, and can misbehave on demand (an error status, garbage,
//! tampered bytes, no answer at all, a late answer) or stop listening.
//!
//! Its routing is written from the vendors' documentation independently of
//! [`Item::url`](crate::Item::url), so a wrong URL on the client side is a
//! 404 here. A VCEK is found by the product, hwID and SPLs in its own
//! certificate extensions, not by what the client computed (or issued on
//! demand by a [`VcekIssuer`], as the INSECURE simulated vendor does). It also acts as
//! a plain-HTTP proxy: an absolute-form request is served (and counted as
//! proxied) as if it had come directly. [`VendorServer::start_tls`] serves
//! HTTPS with a given certificate, and [`ConnectProxy`] is a `CONNECT`
//! proxy, for the client's TLS and tunnel paths.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use accord_core::der::{self, tag};
use accord_core::evidence::collateral::TdxCa;
use accord_core::evidence::tdx::Collateral;
use accord_core::hex;
use accord_core::x509::{Certificate, pem};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const OID_PRODUCT_NAME: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 2];
const OID_HW_ID: &[u64] = &[1, 3, 6, 1, 4, 1, 3704, 1, 4];
const SPL_OIDS: [(&str, &[u64]); 5] = [
    ("blSPL", &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1]),
    ("teeSPL", &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 2]),
    ("snpSPL", &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 3]),
    ("ucodeSPL", &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 8]),
    ("fmcSPL", &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 9]),
];

/// A response with a PCS issuer-chain header.
#[derive(Clone, Debug)]
struct Signed {
    body: Vec<u8>,
    chain: String,
}

#[derive(Clone, Debug)]
struct Vcek {
    product: String,
    hw_id: String,
    spl: BTreeMap<String, String>,
    der: Vec<u8>,
}

/// A routed answer: body and headers.
type Answer = (Vec<u8>, Vec<(&'static str, String)>);

/// Issues a VCEK on demand for a KDS request none of the added VCEKs
/// answers: given the product segment, the hwID (hex, as requested) and
/// the SPL query parameters, the certificate's DER, or `None` (404).
pub type VcekIssuer =
    Arc<dyn Fn(&str, &str, &BTreeMap<String, String>) -> Option<Vec<u8>> + Send + Sync>;

#[derive(Clone, Default)]
struct Issuer(Option<VcekIssuer>);

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// What the server serves.
#[derive(Clone, Debug, Default)]
pub struct Vendor {
    vcek_issuer: Issuer,
    vceks: Vec<Vcek>,
    kds: HashMap<String, Vec<u8>>,
    tcb_infos: HashMap<String, Signed>,
    qe_identity: Option<Signed>,
    pck_crls: HashMap<String, Signed>,
    root_crl: Option<Vec<u8>>,
}

fn extension<'a>(cert: &Certificate<'a>, arcs: &[u64]) -> Option<&'a [u8]> {
    cert.extension(arcs).ok().flatten().map(|ext| ext.value)
}

impl Vendor {
    /// Serves a VCEK (DER) at the KDS URL of the product, hwID and TCB its
    /// extensions name.
    pub fn add_vcek(&mut self, der: &[u8]) -> Result<(), String> {
        let cert = Certificate::from_der(der).map_err(|err| err.to_string())?;
        let name = extension(&cert, OID_PRODUCT_NAME)
            .and_then(|v| der::single(v, tag::IA5_STRING).ok())
            .and_then(|tlv| std::str::from_utf8(tlv.contents).ok())
            .ok_or("no productName")?;
        let product = name.split('-').next().unwrap_or(name).to_owned();
        let hw_id = hex::encode(extension(&cert, OID_HW_ID).ok_or("no hwID")?);
        let mut spl = BTreeMap::new();
        for (param, arcs) in SPL_OIDS {
            if let Some(value) = extension(&cert, arcs) {
                let n = der::single(value, tag::INTEGER)
                    .ok()
                    .and_then(|tlv| der::uint_u64(tlv.contents).ok())
                    .ok_or("bad SPL")?;
                spl.insert(param.to_owned(), n.to_string());
            }
        }
        self.vceks.push(Vcek {
            product,
            hw_id,
            spl,
            der: der.to_vec(),
        });
        Ok(())
    }

    /// Answers VCEK requests that no added VCEK matches with `issuer` (a
    /// simulated KDS issuing VCEKs for any TCB).
    pub fn set_vcek_issuer(&mut self, issuer: VcekIssuer) {
        self.vcek_issuer = Issuer(Some(issuer));
    }

    /// Serves `/{vcek|vlek}/v1/{product}/crl`.
    pub fn set_crl(&mut self, key: &str, product: &str, der: &[u8]) {
        self.kds
            .insert(format!("/{key}/v1/{product}/crl"), der.to_vec());
    }

    /// Serves `/{vcek|vlek}/v1/{product}/cert_chain`.
    pub fn set_cert_chain(&mut self, key: &str, product: &str, pem: &[u8]) {
        self.kds
            .insert(format!("/{key}/v1/{product}/cert_chain"), pem.to_vec());
    }

    /// Serves a TCB info response body for `fmspc` (hex, any case) with
    /// its issuer chain (PEM) in `TCB-Info-Issuer-Chain`.
    pub fn set_tcb_info(&mut self, fmspc: &str, body: &[u8], chain: &str) {
        self.tcb_infos.insert(
            fmspc.to_ascii_lowercase(),
            Signed {
                body: body.to_vec(),
                chain: chain.to_owned(),
            },
        );
    }

    /// Serves the QE identity response body with its issuer chain in
    /// `SGX-Enclave-Identity-Issuer-Chain`.
    pub fn set_qe_identity(&mut self, body: &[u8], chain: &str) {
        self.qe_identity = Some(Signed {
            body: body.to_vec(),
            chain: chain.to_owned(),
        });
    }

    /// Serves the PCK CRL (DER) of `ca` (`platform` or `processor`) with
    /// its issuer chain in `SGX-PCK-CRL-Issuer-Chain`.
    pub fn set_pck_crl(&mut self, ca: &str, der: &[u8], chain: &str) {
        self.pck_crls.insert(
            ca.to_owned(),
            Signed {
                body: der.to_vec(),
                chain: chain.to_owned(),
            },
        );
    }

    /// Serves the Root CA CRL (DER) at `/sgx/certification/v4/rootcacrl`.
    pub fn set_root_crl(&mut self, der: &[u8]) {
        self.root_crl = Some(der.to_vec());
    }

    /// Serves all of TDX `collateral` as Intel's PCS v4 would: the TCB
    /// info for its FMSPC and the QE identity in their response envelopes
    /// around the exact signed text, the PCK CRL of the CA its issuer chain
    /// starts with (`platform` or `processor`), the Root CA CRL, each with
    /// its issuer-chain header.
    pub fn set_tdx_collateral(&mut self, collateral: &Collateral) -> Result<(), String> {
        let envelope = |key: &str, signed: &str, signature: &[u8; 64]| {
            format!(
                r#"{{"{key}":{signed},"signature":"{}"}}"#,
                hex::encode(signature)
            )
        };
        let tcb_info: serde_json::Value =
            serde_json::from_str(&collateral.tcb_info).map_err(|err| format!("tcbInfo: {err}"))?;
        let fmspc = tcb_info["fmspc"].as_str().ok_or("tcbInfo has no fmspc")?;
        self.set_tcb_info(
            fmspc,
            envelope(
                "tcbInfo",
                &collateral.tcb_info,
                &collateral.tcb_info_signature,
            )
            .as_bytes(),
            &collateral.tcb_info_issuer_chain,
        );
        self.set_qe_identity(
            envelope(
                "enclaveIdentity",
                &collateral.qe_identity,
                &collateral.qe_identity_signature,
            )
            .as_bytes(),
            &collateral.qe_identity_issuer_chain,
        );
        let first = pem::decode_all(&collateral.pck_crl_issuer_chain, "CERTIFICATE")
            .ok()
            .and_then(|chain| chain.into_iter().next())
            .ok_or("the PCK CRL issuer chain has no certificate")?;
        let ca = Certificate::from_der(&first)
            .ok()
            .and_then(|cert| cert.subject_common_name().and_then(TdxCa::from_common_name))
            .ok_or("the PCK CRL issuer is not a PCK Platform or Processor CA")?;
        self.set_pck_crl(
            ca.as_query(),
            &collateral.pck_crl,
            &collateral.pck_crl_issuer_chain,
        );
        self.set_root_crl(&collateral.root_ca_crl);
        Ok(())
    }

    /// The body and headers for a path and query, or `None` (404).
    fn route(&self, path: &str, query: &BTreeMap<String, String>) -> Option<Answer> {
        let plain = |body: &Vec<u8>| Some((body.clone(), Vec::new()));
        let signed = |s: &Signed, header: &'static str| {
            let encoded =
                percent_encoding::utf8_percent_encode(&s.chain, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            Some((s.body.clone(), vec![(header, encoded)]))
        };
        if let Some(body) = self.kds.get(path) {
            return if query.is_empty() { plain(body) } else { None };
        }
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["", "vcek", "v1", product, hw_id] => {
                let vcek = self.vceks.iter().find(|v| {
                    v.product == *product && v.hw_id.eq_ignore_ascii_case(hw_id) && v.spl == *query
                });
                match (vcek, &self.vcek_issuer.0) {
                    (Some(vcek), _) => plain(&vcek.der),
                    (None, Some(issuer)) => Some((issuer(product, hw_id, query)?, Vec::new())),
                    (None, None) => None,
                }
            }
            ["", "tdx", "certification", "v4", "tcb"] => {
                let fmspc = query.get("fmspc")?.to_ascii_lowercase();
                (query.len() == 1).then_some(())?;
                signed(self.tcb_infos.get(&fmspc)?, "TCB-Info-Issuer-Chain")
            }
            ["", "tdx", "certification", "v4", "qe", "identity"] if query.is_empty() => signed(
                self.qe_identity.as_ref()?,
                "SGX-Enclave-Identity-Issuer-Chain",
            ),
            ["", "sgx", "certification", "v4", "pckcrl"] => {
                (query.get("encoding").map(String::as_str) == Some("der") && query.len() == 2)
                    .then_some(())?;
                signed(
                    self.pck_crls.get(query.get("ca")?)?,
                    "SGX-PCK-CRL-Issuer-Chain",
                )
            }
            ["", "sgx", "certification", "v4", "rootcacrl"] if query.is_empty() => {
                plain(self.root_crl.as_ref()?)
            }
            _ => None,
        }
    }
}

/// How the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// What it was given.
    Serve,
    /// This status with an empty body, to every request.
    Status(u16),
    /// 200 with an HTML page.
    Garbage,
    /// What it was given, with one byte changed: a hex digit of a PCS
    /// signature, or the last byte (in the signature) of DER.
    Tamper,
    /// Never answers.
    Hang,
    /// What it was given, after this delay (a slow vendor).
    Delay(std::time::Duration),
}

struct State {
    vendor: Mutex<Vendor>,
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<String>>,
    proxied: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Stopper = (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
);

/// Runs `serve` for every connection accepted on `listener`, on a thread
/// of its own, until the returned sender fires (or is dropped).
fn spawn_accept_loop<F, Fut>(listener: std::net::TcpListener, serve: F) -> io::Result<Stopper>
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => accepted,
                };
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(serve(stream));
                }
            }
        });
    });
    Ok((stop, thread))
}

/// A `CONNECT` proxy on 127.0.0.1: it tunnels every request to
/// `127.0.0.1:<requested port>` (whatever host was asked for) and counts the
/// tunnels.
pub struct ConnectProxy {
    addr: SocketAddr,
    tunnels: Arc<AtomicUsize>,
    stop: Option<Stopper>,
}

impl std::fmt::Debug for ConnectProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn tunnel(mut client: tokio::net::TcpStream, tunnels: Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let mut words = line.split_whitespace();
    let (Some("CONNECT"), Some(authority)) = (words.next(), words.next()) else {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return;
    };
    let Some(port) = authority
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    };
    let Ok(mut upstream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    tunnels.fetch_add(1, Ordering::SeqCst);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

impl ConnectProxy {
    /// Starts the proxy on a free port.
    pub fn start() -> io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let tunnels = Arc::new(AtomicUsize::new(0));
        let counted = tunnels.clone();
        let stop = spawn_accept_loop(listener, move |stream| tunnel(stream, counted.clone()))?;
        Ok(Self {
            addr,
            tunnels,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many tunnels it opened.
    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.stop.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// The running server.
pub struct VendorServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for VendorServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VendorServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn tamper(mut body: Vec<u8>) -> Vec<u8> {
    if body.first() == Some(&b'{') {
        if let Some(digit) = body.iter_mut().rev().find(|b| b.is_ascii_hexdigit()) {
            *digit = if *digit == b'0' { b'1' } else { b'0' };
        }
    } else if let Some(last) = body.last_mut() {
        *last ^= 0x01;
    }
    body
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let uri = request.uri();
    if uri.scheme().is_some() {
        state.proxied.fetch_add(1, Ordering::SeqCst);
    }
    let path = uri.path().to_owned();
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    lock(&state.requests).push(
        uri.path_and_query()
            .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned()),
    );
    let behavior = *lock(&state.behavior);
    let respond = |status: u16, body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let mut builder = Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        Ok(builder
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
    };
    match behavior {
        Behavior::Status(code) => return respond(code, Vec::new(), Vec::new()),
        Behavior::Garbage => {
            return respond(
                200,
                b"<html><body>maintenance</body></html>".to_vec(),
                Vec::new(),
            );
        }
        Behavior::Hang => std::future::pending::<()>().await,
        Behavior::Delay(delay) => tokio::time::sleep(delay).await,
        Behavior::Serve | Behavior::Tamper => {}
    }
    let routed = lock(&state.vendor).route(&path, &query);
    match routed {
        Some((body, headers)) if behavior == Behavior::Tamper => {
            respond(200, tamper(body), headers)
        }
        Some((body, headers)) => respond(200, body, headers),
        None => respond(404, Vec::new(), Vec::new()),
    }
}

impl VendorServer {
    /// Starts serving `vendor` over plain HTTP on 127.0.0.1 (a free port),
    /// on its own thread.
    pub fn start(vendor: Vendor) -> io::Result<Self> {
        Self::start_with(vendor, None)
    }

    /// Starts serving `vendor` over HTTPS with this certificate chain and
    /// PKCS#8 key (DER).
    pub fn start_tls(vendor: Vendor, chain: Vec<Vec<u8>>, key_pkcs8: Vec<u8>) -> io::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                chain
                    .into_iter()
                    .map(rustls::pki_types::CertificateDer::from)
                    .collect(),
                rustls::pki_types::PrivateKeyDer::Pkcs8(key_pkcs8.into()),
            )
            .map_err(io::Error::other)?;
        Self::start_with(
            vendor,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn start_with(vendor: Vendor, tls: Option<tokio_rustls::TlsAcceptor>) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            vendor: Mutex::new(vendor),
            behavior: Mutex::new(Behavior::Serve),
            requests: Mutex::new(Vec::new()),
            proxied: AtomicUsize::new(0),
        });
        let served = state.clone();
        let thread = spawn_accept_loop(listener, move |stream| {
            let state = served.clone();
            let tls = tls.clone();
            async move {
                let service =
                    hyper::service::service_fn(move |request| handle(state.clone(), request));
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        })?;
        Ok(Self {
            addr,
            state,
            stop: Some(thread.0),
            thread: Some(thread.1),
        })
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes how it answers from now on.
    pub fn set_behavior(&self, behavior: Behavior) {
        *lock(&self.state.behavior) = behavior;
    }

    /// Changes what it serves.
    pub fn update(&self, change: impl FnOnce(&mut Vendor)) {
        change(&mut lock(&self.state.vendor));
    }

    /// Every request so far (path and query), in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }

    /// How many requests so far asked for `path` (without the query).
    pub fn count(&self, path: &str) -> usize {
        lock(&self.state.requests)
            .iter()
            .filter(|request| request.split('?').next() == Some(path))
            .count()
    }

    /// How many requests came in absolute form (through it as a proxy).
    pub fn proxied(&self) -> usize {
        self.state.proxied.load(Ordering::SeqCst)
    }

    /// Stops listening (later connections are refused) and ends every
    /// connection.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for VendorServer {
    fn drop(&mut self) {
        self.stop();
    }
}
