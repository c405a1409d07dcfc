//! Loopback tests of the protocol's failure paths that need no verifiable
//! evidence: TEE failures, unverifiable evidence, timeouts, application
//! data before evidence, non-accord TLS clients; own collateral fetched through a source (real
//! vectors). End-to-end tests with the
//! simulated chip are in `sim_tests`.

use std::sync::Arc;
use std::time::Duration;

use accord_core::evidence::{Evidence, ReferenceValues, SnpEvidence};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::frame::{Frame, read_frame, write_frame};
use super::*;
use crate::tee::{TeeError, TeeProvider};

/// A TEE that hands out evidence no verifier accepts.
pub(super) struct JunkTee;

impl TeeProvider for JunkTee {
    fn name(&self) -> &'static str {
        "test-junk"
    }

    fn evidence(&self, _report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        Ok(Evidence::Snp(SnpEvidence {
            report: vec![0; 16],
            ..SnpEvidence::default()
        }))
    }
}

/// A TEE that is not there.
struct FailingTee;

impl TeeProvider for FailingTee {
    fn name(&self) -> &'static str {
        "test-failing"
    }

    fn evidence(&self, _report_data: &[u8; 64]) -> Result<Evidence, TeeError> {
        Err(TeeError::Protocol(
            "the test TEE is switched off".to_string(),
        ))
    }
}

pub(super) fn short() -> Timeouts {
    Timeouts {
        handshake: Duration::from_millis(500),
        evidence: Duration::from_millis(500),
    }
}

fn any_policy() -> PeerPolicy {
    PeerPolicy {
        reference: ReferenceValues::default(),
        expected_policy_hashes: None,
        at: Clock::System,
    }
}

pub(super) async fn listen() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn acceptor(tee: Arc<dyn TeeProvider>, client: ClientAuth) -> Arc<Acceptor> {
    Arc::new(Acceptor::new(tee, Identity::ephemeral().unwrap(), client, short()).unwrap())
}

/// Accepts one connection in a task and returns its outcome.
pub(super) fn serve_one(
    listener: TcpListener,
    acceptor: Arc<Acceptor>,
) -> tokio::task::JoinHandle<Result<AttestedStream<TcpStream>, AtlsError>> {
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        acceptor.accept(stream).await
    })
}

/// A TLS client that speaks our TLS (ALPN, raw public keys) but not the
/// evidence exchange: the raw material for misbehaving peers.
pub(super) async fn raw_client(
    addr: std::net::SocketAddr,
    identity: Option<&Identity>,
    alpn: bool,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = tls::client_config(identity).unwrap();
    if !alpn {
        config.alpn_protocols.clear();
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(tls::server_name(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_server_without_evidence_refuses_with_a_reason() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(FailingTee), ClientAuth::KeyOptional),
    );
    let connector = Connector::new(any_policy(), None, None, short()).unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    let AtlsError::PeerRefused(reason) = &err else {
        panic!("{err}")
    };
    assert!(reason.contains("switched off"), "{reason}");
    assert!(matches!(server.await.unwrap(), Err(AtlsError::Tee(_))));
}

#[tokio::test]
async fn unverifiable_server_evidence_is_refused_and_the_server_learns_why() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let connector = Connector::new(any_policy(), None, None, short()).unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    // The junk report is far too short to carry report data.
    assert!(matches!(err, AtlsError::Evidence(_)), "{err}");
    let server_err = server.await.unwrap().err().unwrap();
    let AtlsError::PeerRefused(reason) = &server_err else {
        panic!("{server_err}")
    };
    assert!(reason.contains("peer evidence refused"), "{reason}");
}

#[tokio::test]
async fn a_silent_tcp_peer_hits_the_handshake_timeout() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let _tcp = TcpStream::connect(addr).await.unwrap();
    let err = server.await.unwrap().err().unwrap();
    assert!(
        matches!(
            err,
            AtlsError::Timeout {
                stage: "TLS handshake",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_client_that_never_answers_hits_the_evidence_timeout() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let mut client = raw_client(addr, None, true).await;
    let err = server.await.unwrap().err().unwrap();
    assert!(
        matches!(
            err,
            AtlsError::Timeout {
                stage: "evidence exchange",
                ..
            }
        ),
        "{err}"
    );
    // The client got the server's evidence, then a refusal naming the timeout.
    assert!(matches!(
        read_frame(&mut client).await,
        Ok(Frame::Evidence { .. })
    ));
    let Ok(Frame::Refused { reason }) = read_frame(&mut client).await else {
        panic!("no refusal")
    };
    assert!(reason.contains("did not finish"), "{reason}");
}

#[tokio::test]
async fn a_server_that_never_sends_evidence_hits_the_client_timeout() {
    let (listener, addr) = listen().await;
    let identity = Identity::ephemeral().unwrap();
    let config = Arc::new(tls::server_config(&identity, false).unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .unwrap();
        // Read until the client gives up.
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
    });
    let connector = Connector::new(any_policy(), None, None, short()).unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            AtlsError::Timeout {
                stage: "evidence exchange",
                ..
            }
        ),
        "{err}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn a_client_sending_application_data_before_evidence_is_cut_off() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let mut client = raw_client(addr, None, true).await;
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let err = server.await.unwrap().err().unwrap();
    assert!(matches!(err, AtlsError::Protocol(_)), "{err}");
    assert!(matches!(
        read_frame(&mut client).await,
        Ok(Frame::Evidence { .. })
    ));
    let Ok(Frame::Refused { reason }) = read_frame(&mut client).await else {
        panic!("no refusal")
    };
    assert!(reason.contains("application data"), "{reason}");
    // Then the connection is closed.
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    assert!(rest.is_empty());
}

/// A server of our TLS (raw keys) negotiating `alpn` that writes `bytes`
/// after the handshake; its task returns the frame it reads then.
async fn raw_server(
    alpn: &[u8],
    bytes: &'static [u8],
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<Frame, AtlsError>>,
) {
    let (listener, addr) = listen().await;
    let identity = Identity::ephemeral().unwrap();
    let mut config = tls::server_config(&identity, false).unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(config))
            .accept(tcp)
            .await
            .unwrap();
        tls.write_all(bytes).await.unwrap();
        tls.flush().await.unwrap();
        read_frame(&mut tls).await
    });
    (addr, server)
}

/// A client without evidence connecting to `addr`: its error (a protocol
/// error) and the refusal the server read.
async fn refused_by_the_client(
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<Result<Frame, AtlsError>>,
) -> (AtlsError, String) {
    let connector = Connector::new(any_policy(), None, None, short()).unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AtlsError::Protocol(_)), "{err}");
    let Ok(Frame::Refused { reason }) = server.await.unwrap() else {
        panic!("no refusal")
    };
    (err, reason)
}

#[tokio::test]
async fn a_server_sending_application_data_before_evidence_is_cut_off() {
    let (addr, server) = raw_server(tls::ALPN, b"HTTP/1.1 200 OK\r\n\r\nhello").await;
    let (_, reason) = refused_by_the_client(addr, server).await;
    assert!(reason.contains("application data"), "{reason}");
}

#[tokio::test]
async fn another_protocol_version_is_refused() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let mut client = raw_client(addr, None, true).await;
    assert!(matches!(
        read_frame(&mut client).await,
        Ok(Frame::Evidence { .. })
    ));
    write_frame(&mut client, &Frame::NoEvidence { version: 99 })
        .await
        .unwrap();
    let err = server.await.unwrap().err().unwrap();
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[tokio::test]
async fn a_plain_rustls_client_without_alpn_is_refused_cleanly() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let mut client = raw_client(addr, None, false).await;
    let err = server.await.unwrap().err().unwrap();
    assert!(err.to_string().contains("ALPN"), "{err}");
    let Ok(Frame::Refused { reason }) = read_frame(&mut client).await else {
        panic!("no refusal")
    };
    assert!(reason.contains("not an accord"), "{reason}");
}

/// A client of version 1 (ALPN `accord-atls/1` only, before SEV-SNP
/// evidence carried its CRL) is refused by version, and told so in a
/// frame it can decode.
#[tokio::test]
async fn a_version_1_client_is_refused_by_version() {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let mut config = tls::client_config(None).unwrap();
    config.alpn_protocols = vec![tls::ALPN_V1.to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut client = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(tls::server_name(), tcp)
        .await
        .unwrap();
    let err = server.await.unwrap().err().unwrap();
    assert!(
        err.to_string()
            .contains("the client speaks attested-TLS protocol version 1"),
        "{err}"
    );
    // Version 1's first frame to read is the server's: a refusal, whose
    // bytes are the same in both versions.
    let Ok(Frame::Refused { reason }) = read_frame(&mut client).await else {
        panic!("no refusal")
    };
    assert!(
        reason.contains("version 1") && reason.contains("this endpoint version 2"),
        "{reason}"
    );
    assert!(reason.contains("upgrade the client"), "{reason}");
}

/// A server of version 1 (ALPN `accord-atls/1` only) sending version 1's
/// SEV-SNP evidence frame: refused by version before the frame is read,
/// and told so.
#[tokio::test]
async fn a_version_1_server_is_refused_by_version() {
    // Evidence { version: 1, Snp { report: [aa], vcek, ask, ark } }.
    let (addr, server) = raw_server(tls::ALPN_V1, &[0, 0, 0, 8, 0, 1, 0, 1, 0xaa, 0, 0, 0]).await;
    let (err, reason) = refused_by_the_client(addr, server).await;
    assert!(
        err.to_string()
            .contains("the server speaks attested-TLS protocol version 1"),
        "{err}"
    );
    assert!(reason.contains("upgrade the server"), "{reason}");
}

/// Runs `openssl s_client` with `args` against a one-shot acceptor and
/// returns the acceptor's outcome; openssl must exit on its own.
async fn openssl_against_acceptor(args: &[&str]) -> AtlsError {
    let (listener, addr) = listen().await;
    let server = serve_one(
        listener,
        acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
    );
    let mut command = std::process::Command::new("openssl");
    command
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let openssl = tokio::task::spawn_blocking(move || command.status());
    let err = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the acceptor hung")
        .unwrap()
        .err()
        .expect("openssl was accepted");
    tokio::time::timeout(Duration::from_secs(10), openssl)
        .await
        .expect("openssl hung")
        .unwrap()
        .unwrap();
    err
}

/// openssl (3.0 here) offers only X.509 certificates: certificate-type
/// negotiation (RFC 7250) fails the handshake, whatever else it offers.
#[tokio::test]
async fn openssl_s_client_is_refused_cleanly() {
    for args in [
        &["-tls1_3"][..],
        &["-tls1_2"],
        &["-tls1_3", "-alpn", "accord-atls/2"],
    ] {
        let err = openssl_against_acceptor(args).await;
        assert!(matches!(err, AtlsError::Handshake(_)), "{args:?}: {err}");
    }
}

/// Hostile frames after the handshake: every one ends in an error, never a
/// panic or a hang.
#[tokio::test]
async fn hostile_frames_end_in_errors() {
    let bodies: &[&[u8]] = &[
        &[0],                                     // Evidence without version
        &[0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f], // a 4 GiB report length
        &[0, 1, 1, 0],                            // Tdx evidence, truncated
        &[0, 1, 0, 0, 0, 0, 0],                   // empty SNP report
        &[1],                                     // NoEvidence without version
        &[2],                                     // Verified out of order
        &[4],                                     // unknown variant
        &[3, 0xff],                               // Refused with a bad length
    ];
    for body in bodies {
        let (listener, addr) = listen().await;
        let server = serve_one(
            listener,
            acceptor(Arc::new(JunkTee), ClientAuth::KeyOptional),
        );
        let mut client = raw_client(addr, None, true).await;
        let mut bytes = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(body);
        client.write_all(&bytes).await.unwrap();
        client.flush().await.unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the acceptor hung")
            .expect("the acceptor panicked");
        assert!(outcome.is_err(), "{body:?} was accepted");
    }
}

/// No session resumption: every connection proves possession of the
/// keys afresh.
#[tokio::test]
async fn every_connection_is_a_full_handshake() {
    let (listener, addr) = listen().await;
    let identity = Identity::ephemeral().unwrap();
    let config = Arc::new(tls::server_config(&identity, true).unwrap());
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(Arc::clone(&config))
                .accept(tcp)
                .await
                .unwrap();
            // Anything the server sends after the handshake (tickets, if
            // it issued any) reaches the client before this byte.
            tls.write_all(b"y").await.unwrap();
            tls.flush().await.unwrap();
            let mut buf = Vec::new();
            let _ = tls.read_to_end(&mut buf).await;
        }
    });
    let client_identity = Identity::ephemeral().unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        tls::client_config(Some(&client_identity)).unwrap(),
    ));
    for _ in 0..2 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector.connect(tls::server_name(), tcp).await.unwrap();
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        tls.shutdown().await.unwrap();
    }
    server.await.unwrap();
}

/// A source answering the VCEK and the CRL from files (the untrusted side
/// of a coordinator whose host has no certificate table).
struct Files {
    vcek: Vec<u8>,
    crl: Vec<u8>,
}

impl super::CollateralSource for Files {
    fn fetch<'a>(
        &'a self,
        request: &'a accord_core::evidence::collateral::CollateralRequest,
    ) -> super::collateral::Fetch<'a> {
        use accord_core::evidence::collateral::CollateralRequest;
        let answer = match request {
            CollateralRequest::SnpVcek { .. } => Ok(self.vcek.clone()),
            CollateralRequest::SnpCrl { .. } => Ok(self.crl.clone()),
            other => Err(format!("no {other}")),
        };
        Box::pin(async move { answer })
    }
}

/// `testdata/snp/<name>` (`$ACCORD_TESTDATA`, else `../shared/testdata`):
/// a reported skip when missing, a failure with `ACCORD_REQUIRE_VECTORS=1`.
fn snp_vector(name: &str) -> Option<Vec<u8>> {
    accord_core::internal::testdata_file(&format!("snp/{name}"))
}

/// Own evidence without VCEK or CRL (a host with no certificate table):
/// both are fetched through the source, authenticated under AMD's pinned
/// roots, and travel with the evidence; a source answering a CRL that
/// does not authenticate attaches nothing.
#[tokio::test]
async fn own_evidence_gets_its_vcek_and_crl_through_the_source() {
    let (Some(report), Some(vcek_pem), Some(crl)) = (
        snp_vector("genoa-report-1.bin"),
        snp_vector("genoa-vcek-1.pem"),
        snp_vector("genoa-vcek-crl-2026-08-19.der"),
    ) else {
        return;
    };
    let vcek = accord_core::x509::pem::der_or_pem(&vcek_pem, "CERTIFICATE").unwrap();
    let at = UnixTime(1_788_220_800); // 2026-09-01, inside the CRL's window
    let bare = Evidence::Snp(SnpEvidence {
        report,
        ..Default::default()
    });

    let verifier = std::sync::Mutex::new(accord_core::evidence::ServiceVerifier::new());
    let mut evidence = bare.clone();
    let source = Files {
        vcek: vcek.clone(),
        crl: crl.clone(),
    };
    super::collateral::refresh_own_with(&verifier, &mut evidence, Some(&source), at).await;
    let Evidence::Snp(snp) = &evidence else {
        unreachable!()
    };
    assert_eq!(snp.vcek.as_deref(), Some(vcek.as_slice()));
    assert_eq!(snp.crl.as_deref(), Some(crl.as_slice()));

    let verifier = std::sync::Mutex::new(accord_core::evidence::ServiceVerifier::new());
    let mut tampered = crl;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut evidence = bare;
    let source = Files {
        vcek: vcek.clone(),
        crl: tampered,
    };
    super::collateral::refresh_own_with(&verifier, &mut evidence, Some(&source), at).await;
    let Evidence::Snp(snp) = &evidence else {
        unreachable!()
    };
    assert_eq!(snp.crl, None);
    assert_eq!(snp.vcek.as_deref(), Some(vcek.as_slice()));
}
