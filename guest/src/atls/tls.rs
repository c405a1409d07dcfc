//! The rustls side: TLS 1.3 only, aws-lc-rs, and RFC 7250 raw public keys
//! in both directions: each side's TLS `Certificate` message carries its
//! SubjectPublicKeyInfo (DER) and nothing else.
//!
//! Trust does not come from TLS: it comes from the evidence, which names
//! the key and the session (see [`binding`](super::binding)). The verifier
//! here (`RawKeyVerifier`) accepts any key the peer presents and checks
//! what TLS itself must: that this very key made the TLS 1.3
//! `CertificateVerify` signature (`verify_tls13_signature_with_raw_key`).
//! The bytes it checks the signature with are the bytes
//! [`peer_spki`] hands to the binding: one parser (webpki's) decides which
//! key the session used, and no certificate is made, sent or parsed.
//!
//! Certificate-type negotiation (RFC 7250) fails the handshake with a peer
//! that does not offer raw public keys, e.g. a plain X.509 TLS client.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use zeroize::Zeroizing;

use super::AtlsError;

/// The ALPN protocol both ends require; a client without it is not an
/// accord attested-TLS client and is refused. Its number is the
/// evidence exchange's version ([`super::PROTOCOL_VERSION`]).
pub const ALPN: &[u8] = b"accord-atls/2";

/// The ALPN of version 1 of the evidence exchange (before SEV-SNP evidence
/// carried its CRL), which changed its frames' bytes. Both ends offer it
/// after [`ALPN`] only to recognise a peer of an earlier release and
/// refuse it by version, instead of failing to decode its frames.
pub const ALPN_V1: &[u8] = b"accord-atls/1";

/// The server name the client sends. It is not checked by anyone: the
/// server is identified by its evidence.
pub const SERVER_NAME: &str = "accord.invalid";

/// A private key and its SubjectPublicKeyInfo, presented in the handshake
/// as a raw public key.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The key, with the SPKI as its one "certificate" (how rustls holds a
    /// raw public key).
    key: Arc<CertifiedKey>,
}

impl Identity {
    /// A fresh ECDSA P-256 key.
    pub fn ephemeral() -> Result<Self, AtlsError> {
        Self::from_pkcs8(&generate_p256_pkcs8()?)
    }

    /// A caller's PKCS#8 private key (DER), e.g. a workload key whose
    /// certificate the coordinator is asked for. Its SPKI is the one
    /// aws-lc-rs derives from the key (the one rustls presents).
    pub fn from_pkcs8(pkcs8_key: &[u8]) -> Result<Self, AtlsError> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_key.to_vec()));
        let signer = provider()
            .key_provider
            .load_private_key(der)
            .map_err(|err| AtlsError::Config(format!("own key: {err}")))?;
        let spki = signer
            .public_key()
            .ok_or_else(|| AtlsError::Config("own key: no public key".to_string()))?;
        let spki = CertificateDer::from(spki.as_ref().to_vec());
        Ok(Self {
            key: Arc::new(CertifiedKey::new(vec![spki], signer)),
        })
    }

    /// The key's SubjectPublicKeyInfo (DER): what the handshake presents
    /// and the report data binds.
    pub fn spki(&self) -> &[u8] {
        self.key.cert.first().map_or(&[], |spki| spki.as_ref())
    }
}

/// A fresh ECDSA P-256 private key, PKCS#8 (DER).
pub fn generate_p256_pkcs8() -> Result<Zeroizing<Vec<u8>>, AtlsError> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .map_err(|err| AtlsError::Config(format!("generating a P-256 key: {err}")))?;
    Ok(Zeroizing::new(pkcs8.as_ref().to_vec()))
}

/// The peer's SubjectPublicKeyInfo (DER) of an established session: the
/// raw public key whose signature `RawKeyVerifier` checked. `None` if
/// the peer presented no key (a keyless client).
pub fn peer_spki(conn: &rustls::CommonState) -> Option<Vec<u8>> {
    conn.peer_certificates()
        .and_then(|keys| keys.first())
        .map(|spki| spki.as_ref().to_vec())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls server configuration: TLS 1.3, our raw public key, raw
/// public keys from clients, required if `client_key_required`.
pub fn server_config(
    identity: &Identity,
    client_key_required: bool,
) -> Result<rustls::ServerConfig, AtlsError> {
    let provider = provider();
    let verifier = Arc::new(RawKeyVerifier {
        algorithms: provider.signature_verification_algorithms,
        client_key_mandatory: client_key_required,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| AtlsError::Config(format!("TLS 1.3 server: {err}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(Arc::clone(&identity.key)),
        ));
    config.alpn_protocols = vec![ALPN.to_vec(), ALPN_V1.to_vec()];
    // Every connection is a full handshake: each side proves possession of
    // its key in this session, never through a resumed one.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The rustls client configuration: TLS 1.3, the server's raw public key,
/// ours if we have one.
pub fn client_config(identity: Option<&Identity>) -> Result<rustls::ClientConfig, AtlsError> {
    let provider = provider();
    let verifier = Arc::new(RawKeyVerifier {
        algorithms: provider.signature_verification_algorithms,
        client_key_mandatory: false,
    });
    let resolver: Arc<dyn ResolvesClientCert> = match identity {
        Some(identity) => Arc::new(rustls::client::AlwaysResolvesClientRawPublicKeys::new(
            Arc::clone(&identity.key),
        )),
        None => Arc::new(NoRawPublicKey),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| AtlsError::Config(format!("TLS 1.3 client: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(resolver);
    config.alpn_protocols = vec![ALPN.to_vec(), ALPN_V1.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The server name the client connects to.
pub fn server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from(SERVER_NAME)
            .unwrap_or_else(|_| unreachable!("SERVER_NAME is a valid DNS name"))
            .to_owned(),
    )
}

/// A keyless client: it speaks raw public keys (the server insists on
/// that certificate type) but has none, and answers a certificate request
/// with an empty `Certificate` message.
#[derive(Debug)]
struct NoRawPublicKey;

impl ResolvesClientCert for NoRawPublicKey {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        None
    }

    fn only_raw_public_keys(&self) -> bool {
        true
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Takes any raw public key (trust comes from the evidence that names it)
/// and checks the TLS 1.3 handshake signature with it. Serves both ends:
/// as the client's server verifier and as the server's client verifier.
#[derive(Debug)]
struct RawKeyVerifier {
    algorithms: WebPkiSupportedAlgorithms,
    /// As a client verifier: whether a client without a key is refused.
    client_key_mandatory: bool,
}

impl RawKeyVerifier {
    fn verify_signature(
        &self,
        message: &[u8],
        spki: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = SubjectPublicKeyInfoDer::from(spki.as_ref());
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::General("accord attested TLS speaks TLS 1.3 only".to_string())
}

impl ServerCertVerifier for RawKeyVerifier {
    fn verify_server_cert(
        &self,
        _raw_public_key: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The key is checked by its signature, in `verify_tls13_signature`.
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        raw_public_key: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, raw_public_key, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for RawKeyVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.client_key_mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _raw_public_key: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // The key is checked by its signature, in `verify_tls13_signature`.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        raw_public_key: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_signature(message, raw_public_key, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}
