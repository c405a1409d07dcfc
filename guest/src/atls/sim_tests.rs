//! End-to-end attested-TLS tests on loopback with the INSECURE simulated
//! SNP chip: real evidence, verified by the core verifier against the
//! chip's reference values (its simulated root named explicitly).

use std::sync::{Arc, OnceLock};

use accord_core::evidence::ReferenceValues;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{Frame, read_frame, write_frame};
use super::tests::{listen, raw_client, serve_one, short};
use super::*;
use crate::tee::simulated::{SimulatedConfig, SimulatedSnp};

const SERVER_HOST_DATA: [u8; 32] = [0x11; 32];
const CLIENT_HOST_DATA: [u8; 32] = [0x22; 32];

/// One in-memory chip for the whole test binary (RSA-4096 key generation
/// is slow), configured as the coordinator (server).
fn server_chip() -> &'static SimulatedSnp {
    static CHIP: OnceLock<SimulatedSnp> = OnceLock::new();
    CHIP.get_or_init(|| {
        SimulatedSnp::ephemeral(&SimulatedConfig {
            measurement: [0xaa; 48],
            host_data: SERVER_HOST_DATA,
            ..SimulatedConfig::default()
        })
        .unwrap()
    })
}

/// The same chip launched as a workload (other measurement and policy).
fn client_chip() -> SimulatedSnp {
    server_chip()
        .reconfigured(&SimulatedConfig {
            measurement: [0xbb; 48],
            host_data: CLIENT_HOST_DATA,
            ..SimulatedConfig::default()
        })
        .unwrap()
}

fn policy_for(chip: &SimulatedSnp, hashes: Option<Vec<[u8; 32]>>) -> PeerPolicy {
    PeerPolicy {
        reference: ReferenceValues {
            snp: vec![chip.reference_values()],
            tdx: Vec::new(),
        },
        expected_policy_hashes: hashes,
        at: Clock::System,
    }
}

fn server_tee() -> Arc<dyn TeeProvider> {
    Arc::new(
        server_chip()
            .reconfigured(&server_chip().config().clone())
            .unwrap(),
    )
}

fn mutual_acceptor(identity: Identity) -> Arc<Acceptor> {
    let client = client_chip();
    Arc::new(
        Acceptor::new(
            server_tee(),
            identity,
            ClientAuth::Attested(policy_for(&client, Some(vec![CLIENT_HOST_DATA]))),
            short(),
        )
        .unwrap(),
    )
}

fn mutual_connector() -> Connector {
    Connector::new(
        policy_for(server_chip(), Some(vec![SERVER_HOST_DATA])),
        Some(Arc::new(client_chip())),
        None,
        short(),
    )
    .unwrap()
}

#[tokio::test]
async fn mutual_attestation_succeeds_and_carries_application_data() {
    let (listener, addr) = listen().await;
    let server_identity = Identity::ephemeral().unwrap();
    let server_spki = server_identity.spki().to_vec();
    let server = serve_one(listener, mutual_acceptor(server_identity));
    let connector = mutual_connector();
    let mut client = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let mut server = server.await.unwrap().unwrap();

    let server_claims = client.peer.claims().unwrap();
    assert_eq!(server_claims.policy_hash(), Some(SERVER_HOST_DATA));
    assert_eq!(client.peer.spki(), Some(&server_spki[..]));
    let client_claims = server.peer.claims().unwrap();
    assert_eq!(client_claims.policy_hash(), Some(CLIENT_HOST_DATA));
    assert_eq!(
        server.peer.spki(),
        connector.identity.as_ref().map(Identity::spki)
    );

    client.write_all(b"ping").await.unwrap();
    client.flush().await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").await.unwrap();
    server.flush().await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn server_attested_modes_report_the_client_key() {
    let server_policy = policy_for(server_chip(), Some(vec![SERVER_HOST_DATA]));
    for (client_auth, with_key) in [
        (ClientAuth::KeyOptional, false),
        (ClientAuth::KeyOptional, true),
        (ClientAuth::KeyRequired, true),
    ] {
        let (listener, addr) = listen().await;
        let acceptor = Arc::new(
            Acceptor::new(
                server_tee(),
                Identity::ephemeral().unwrap(),
                client_auth,
                short(),
            )
            .unwrap(),
        );
        let server = serve_one(listener, acceptor);
        let identity = with_key.then(|| Identity::ephemeral().unwrap());
        let expected = identity.as_ref().map(|id| id.spki().to_vec());
        let connector = Connector::new(server_policy.clone(), None, identity, short()).unwrap();
        let client = connector
            .connect(TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        assert!(client.peer.claims().is_some());
        let server = server.await.unwrap().unwrap();
        match expected {
            Some(spki) => assert_eq!(server.peer, VerifiedPeer::Key { spki }),
            None => assert_eq!(server.peer, VerifiedPeer::Anonymous),
        }
    }
}

#[tokio::test]
async fn a_keyless_client_is_refused_where_a_key_is_required() {
    let (listener, addr) = listen().await;
    let acceptor = Arc::new(
        Acceptor::new(
            server_tee(),
            Identity::ephemeral().unwrap(),
            ClientAuth::KeyRequired,
            short(),
        )
        .unwrap(),
    );
    let server = serve_one(listener, acceptor);
    let connector = Connector::new(policy_for(server_chip(), None), None, None, short()).unwrap();
    assert!(
        connector
            .connect(TcpStream::connect(addr).await.unwrap())
            .await
            .is_err()
    );
    let err = server.await.unwrap().err().unwrap();
    assert!(matches!(err, AtlsError::Handshake(_)), "{err}");
}

#[tokio::test]
async fn an_unattested_client_is_refused_where_attestation_is_required() {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    let connector = Connector::new(
        policy_for(server_chip(), None),
        None,
        Some(Identity::ephemeral().unwrap()),
        short(),
    )
    .unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    let AtlsError::PeerRefused(reason) = &err else {
        panic!("{err}")
    };
    assert!(reason.contains("must be attested"), "{reason}");
    let err = server.await.unwrap().err().unwrap();
    assert!(matches!(err, AtlsError::EvidenceRequired), "{err}");
}

#[tokio::test]
async fn a_server_with_the_wrong_measurement_is_rejected() {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    // The client expects the workload's measurement from the coordinator.
    let connector = Connector::new(
        policy_for(&client_chip(), None),
        Some(Arc::new(client_chip())),
        None,
        short(),
    )
    .unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AtlsError::Evidence(_)), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("measurement"),
        "{err}"
    );
    let err = server.await.unwrap().err().unwrap();
    let AtlsError::PeerRefused(reason) = &err else {
        panic!("{err}")
    };
    assert!(reason.to_lowercase().contains("measurement"), "{reason}");
}

#[tokio::test]
async fn a_client_with_the_wrong_measurement_is_rejected() {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    // The client runs the coordinator's image, not the workload's.
    let connector = Connector::new(
        policy_for(server_chip(), None),
        Some(server_tee()),
        None,
        short(),
    )
    .unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    let AtlsError::PeerRefused(reason) = &err else {
        panic!("{err}")
    };
    assert!(reason.to_lowercase().contains("measurement"), "{reason}");
    let err = server.await.unwrap().err().unwrap();
    assert!(matches!(err, AtlsError::Evidence(_)), "{err}");
}

#[tokio::test]
async fn a_policy_hash_outside_the_pinned_set_is_rejected() {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    let connector = Connector::new(
        policy_for(server_chip(), Some(vec![[0x33; 32]])),
        Some(Arc::new(client_chip())),
        None,
        short(),
    )
    .unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, AtlsError::PolicyHashNotAllowed { actual: Some(hash) } if hash == &"11".repeat(32)),
        "{err}"
    );
    assert!(matches!(
        server.await.unwrap(),
        Err(AtlsError::PeerRefused(_))
    ));
}

/// A relay: the attacker holds the server's TLS key (worst case),
/// fetches genuine evidence from the real server in one session and
/// replays it to a client in another. Only the exporter differs.
#[tokio::test]
async fn evidence_relayed_from_another_session_is_rejected() {
    let (listener, addr) = listen().await;
    let server_identity = Identity::ephemeral().unwrap();
    let _real = serve_one(listener, mutual_acceptor(server_identity.clone()));
    let attacker_identity = Identity::ephemeral().unwrap();
    let mut upstream = raw_client(addr, Some(&attacker_identity), true).await;
    let Ok(genuine @ Frame::Evidence { .. }) = read_frame(&mut upstream).await else {
        panic!("no evidence from the real server")
    };

    let (fake_listener, fake_addr) = listen().await;
    let config = Arc::new(tls::server_config(&server_identity, false).unwrap());
    let fake = tokio::spawn(async move {
        let (tcp, _) = fake_listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .unwrap();
        write_frame(&mut tls, &genuine).await.unwrap();
        read_frame(&mut tls).await
    });
    let err = mutual_connector()
        .connect(TcpStream::connect(fake_addr).await.unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, AtlsError::NotBound { role: "server" }),
        "{err}"
    );
    let Ok(Frame::Refused { reason }) = fake.await.unwrap() else {
        panic!("no refusal")
    };
    assert!(reason.contains("relayed"), "{reason}");
}

/// A reflection: the attacker (again holding the server's key, so that
/// only the role differs) sends the server's own evidence back as client
/// evidence.
#[tokio::test]
async fn server_evidence_reflected_as_client_evidence_is_rejected() {
    let (listener, addr) = listen().await;
    let server_identity = Identity::ephemeral().unwrap();
    let server = serve_one(listener, mutual_acceptor(server_identity.clone()));
    let mut attacker = raw_client(addr, Some(&server_identity), true).await;
    let Ok(evidence @ Frame::Evidence { .. }) = read_frame(&mut attacker).await else {
        panic!("no evidence")
    };
    write_frame(&mut attacker, &evidence).await.unwrap();
    let err = server.await.unwrap().err().unwrap();
    assert!(
        matches!(err, AtlsError::Reflected { role: "client" }),
        "{err}"
    );
    let Ok(Frame::Refused { reason }) = read_frame(&mut attacker).await else {
        panic!("no refusal")
    };
    assert!(reason.contains("reflected"), "{reason}");
}

/// The policy's clock is what the evidence is checked at: far in the
/// future the simulated VCEK has expired.
#[tokio::test]
async fn evidence_is_checked_at_the_policy_clock() {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    let mut policy = policy_for(server_chip(), None);
    policy.at = Clock::Fixed(UnixTime(4_102_444_800 * 4)); // year ~2500
    let connector = Connector::new(policy, Some(Arc::new(client_chip())), None, short()).unwrap();
    let err = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, AtlsError::Evidence(_)), "{err}");
    assert!(matches!(
        server.await.unwrap(),
        Err(AtlsError::PeerRefused(_))
    ));
}

/// The initializer's case: the client presents its own key (the one its
/// certificate will be issued for), attests, and verifies the server.
#[tokio::test]
async fn a_client_with_its_own_key_attests_and_verifies_the_server() {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    let identity = Identity::ephemeral().unwrap();
    let spki = identity.spki().to_vec();
    let connector = Connector::new(
        policy_for(server_chip(), Some(vec![SERVER_HOST_DATA])),
        Some(Arc::new(client_chip())),
        Some(identity),
        short(),
    )
    .unwrap();
    let client = connector
        .connect(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        client.peer.claims().and_then(|c| c.policy_hash()),
        Some(SERVER_HOST_DATA)
    );
    let server = server.await.unwrap().unwrap();
    assert_eq!(server.peer.spki(), Some(&spki[..]));
    assert_eq!(
        server.peer.claims().and_then(|c| c.policy_hash()),
        Some(CLIENT_HOST_DATA)
    );
}

/// A collateral source answering every request with fixed bytes (a
/// hostile shim: tampered, older or revoking CRLs).
struct Fixed(Vec<u8>);

impl CollateralSource for Fixed {
    fn fetch<'a>(
        &'a self,
        _request: &'a accord_core::evidence::collateral::CollateralRequest,
    ) -> collateral::Fetch<'a> {
        let bytes = self.0.clone();
        Box::pin(async move { Ok(bytes) })
    }
}

fn reference_of(chip: &SimulatedSnp) -> ReferenceValues {
    ReferenceValues {
        snp: vec![chip.reference_values()],
        tdx: Vec::new(),
    }
}

async fn judge(
    verifier: &std::sync::Mutex<accord_core::evidence::ServiceVerifier>,
    evidence: &Evidence,
    source: Option<&dyn CollateralSource>,
) -> Result<Claims, accord_core::evidence::EvidenceError> {
    let reference = reference_of(server_chip());
    let now = system_now();
    collateral::prepare_with(
        verifier,
        evidence,
        &reference,
        now,
        source,
        default_provider(),
    )
    .await;
    verifier
        .lock()
        .unwrap()
        .verify(evidence, &reference, now, default_provider())
}

/// The verifier caches a chain verified once (same claims the second
/// time), and the chip's attached ARK-signed CRL passes the revocation
/// check without any source.
#[tokio::test]
async fn the_verifier_reuses_chains_and_takes_the_attached_crl() {
    let verifier = std::sync::Mutex::new(accord_core::evidence::ServiceVerifier::new());
    let evidence = server_chip().evidence(&[3; 64]).unwrap();
    let first = judge(&verifier, &evidence, None).await.unwrap();
    assert_eq!(verifier.lock().unwrap().chains_cached(), 1);
    let second = judge(&verifier, &evidence, None).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(verifier.lock().unwrap().chains_cached(), 1);
}

/// No CRL carried, none held, no source: refused naming the missing CRL;
/// a source answering garbage changes nothing.
#[tokio::test]
async fn without_a_crl_attestation_is_refused_naming_it() {
    let verifier = std::sync::Mutex::new(accord_core::evidence::ServiceVerifier::new());
    let mut evidence = server_chip().evidence(&[3; 64]).unwrap();
    let Evidence::Snp(snp) = &mut evidence else {
        unreachable!()
    };
    let mut tampered = snp.crl.take().unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    for source in [None, Some(&Fixed(tampered) as &dyn CollateralSource)] {
        let err = judge(&verifier, &evidence, source).await.unwrap_err();
        assert!(
            matches!(err, accord_core::evidence::EvidenceError::MissingCrl { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("VCEK CRL"), "{err}");
    }
}

/// A source's CRL revoking the VCEK wins over the older one the chip
/// attaches, and a hostile source then serving an older CRL cannot undo
/// it: refused by name.
#[tokio::test]
async fn a_revoked_vcek_stays_refused_whatever_older_crl_comes() {
    use crate::tee::simulated::CrlSpec;
    let chip = server_chip();
    let verifier = std::sync::Mutex::new(accord_core::evidence::ServiceVerifier::new());
    let evidence = chip.evidence(&[3; 64]).unwrap();
    let now = system_now();
    let spec = |number, revoked: Vec<(Vec<u8>, UnixTime)>| CrlSpec {
        number,
        this_update: UnixTime(now.0 - 3600),
        next_update: UnixTime(now.0 + 7 * 86_400),
        revoked,
    };
    let revoking = chip
        .issue_crl(&spec(5, vec![(chip.vcek_serial(), UnixTime(now.0 - 7200))]))
        .unwrap();
    let err = judge(&verifier, &evidence, Some(&Fixed(revoking)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    let older = chip.issue_crl(&spec(4, Vec::new())).unwrap();
    let err = judge(&verifier, &evidence, Some(&Fixed(older)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    assert!(verifier.lock().unwrap().counters().refused_revoked >= 2);
}

/// A server whose TLS handshake is signed by `presented` but whose
/// (genuine, this-session) evidence names `bound`; returns what a mutual
/// client makes of it and what the server heard back.
async fn server_binding(
    bound: &Identity,
    presented: &Identity,
) -> (Result<AttestedStream<TcpStream>, AtlsError>, Frame) {
    let (listener, addr) = listen().await;
    let config = Arc::new(tls::server_config(presented, false).unwrap());
    let bound_spki = bound.spki().to_vec();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .unwrap();
        let exporter = exporter(tls.get_ref().1, EXPORTER_LABEL).unwrap();
        let data = report_data(default_provider(), Role::Server, &exporter, &bound_spki);
        let evidence = server_tee().evidence(&data).unwrap();
        write_frame(
            &mut tls,
            &Frame::Evidence {
                version: PROTOCOL_VERSION,
                evidence,
            },
        )
        .await
        .unwrap();
        let heard = read_frame(&mut tls).await.unwrap();
        if matches!(heard, Frame::Evidence { .. }) {
            write_frame(&mut tls, &Frame::Verified).await.unwrap();
        }
        heard
    });
    let outcome = mutual_connector()
        .connect(TcpStream::connect(addr).await.unwrap())
        .await;
    (outcome, server.await.unwrap())
}

/// The key that signed the handshake must be the one the evidence names:
/// genuine evidence of this very session, bound to another key, is
/// refused (and the same evidence bound to the presented key passes).
#[tokio::test]
async fn a_server_presenting_another_key_than_its_evidence_binds_is_rejected() {
    let presented = Identity::ephemeral().unwrap();
    let (outcome, heard) = server_binding(&presented, &presented).await;
    assert!(outcome.is_ok(), "{:?}", outcome.err());
    assert!(matches!(heard, Frame::Evidence { .. }), "{heard:?}");

    let bound = Identity::ephemeral().unwrap();
    let (outcome, heard) = server_binding(&bound, &presented).await;
    let err = outcome.err().unwrap();
    assert!(
        matches!(err, AtlsError::NotBound { role: "server" }),
        "{err}"
    );
    let Frame::Refused { reason } = heard else {
        panic!("no refusal: {heard:?}")
    };
    assert!(reason.contains("key"), "{reason}");
}

/// A client whose TLS key is `presented` sends genuine evidence of this
/// session naming `bound`; returns the server's outcome.
async fn client_binding(
    bound: &Identity,
    presented: &Identity,
) -> Result<AttestedStream<TcpStream>, AtlsError> {
    let (listener, addr) = listen().await;
    let server = serve_one(listener, mutual_acceptor(Identity::ephemeral().unwrap()));
    let mut client = raw_client(addr, Some(presented), true).await;
    let Ok(Frame::Evidence { .. }) = read_frame(&mut client).await else {
        panic!("no evidence from the server")
    };
    let exporter = exporter(client.get_ref().1, EXPORTER_LABEL).unwrap();
    let data = report_data(default_provider(), Role::Client, &exporter, bound.spki());
    let evidence = client_chip().evidence(&data).unwrap();
    let frame = Frame::Evidence {
        version: PROTOCOL_VERSION,
        evidence,
    };
    write_frame(&mut client, &frame).await.unwrap();
    let outcome = server.await.unwrap();
    let reply = read_frame(&mut client).await.unwrap();
    assert_eq!(
        matches!(reply, Frame::Verified),
        outcome.is_ok(),
        "{reply:?}"
    );
    outcome
}

/// The same for a client: its evidence must name the key that signed its
/// side of the handshake.
#[tokio::test]
async fn a_client_presenting_another_key_than_its_evidence_binds_is_rejected() {
    let presented = Identity::ephemeral().unwrap();
    let outcome = client_binding(&presented, &presented).await;
    assert!(outcome.is_ok(), "{:?}", outcome.err());

    let bound = Identity::ephemeral().unwrap();
    let err = client_binding(&bound, &presented).await.err().unwrap();
    assert!(
        matches!(err, AtlsError::NotBound { role: "client" }),
        "{err}"
    );
}
