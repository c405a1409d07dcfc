//! The rustls side: TLS 1.3 only, aws-lc-rs, ephemeral self-signed
//! certificates, and certificate verifiers that accept any certificate
//! whose key signed the handshake.
//!
//! Trust does not come from the certificate: it comes from the evidence,
//! which names the certificate's key and the session (see
//! [`binding`](super::binding)). The verifiers here check only what TLS
//! itself needs: that the certificate parses far enough to name a key and
//! that this key made the TLS 1.3 `CertificateVerify` signature.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::AtlsError;
use super::binding::spki_of;

/// The ALPN protocol both ends require; a client without it is not an
/// accord attested-TLS client and is refused.
pub const ALPN: &[u8] = b"accord-atls/1";

/// The server name the client sends. It is not checked by anyone: the
/// server is identified by its evidence.
pub const SERVER_NAME: &str = "accord.invalid";

/// A certificate and its private key, presented in the handshake.
#[derive(Debug)]
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    spki: Vec<u8>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            spki: self.spki.clone(),
        }
    }
}

impl Identity {
    /// A fresh ECDSA P-256 key and a self-signed certificate for it.
    pub fn ephemeral() -> Result<Self, AtlsError> {
        let key = rcgen::KeyPair::generate()
            .map_err(|err| AtlsError::Config(format!("generating an ephemeral key: {err}")))?;
        let params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .map_err(|err| AtlsError::Config(format!("certificate parameters: {err}")))?;
        let cert = params
            .self_signed(&key)
            .map_err(|err| AtlsError::Config(format!("self-signing the certificate: {err}")))?;
        Self::from_der(cert.der().to_vec(), key.serialize_der())
    }

    /// A caller's certificate (DER) and PKCS#8 private key (DER), e.g. a
    /// key the CLI presents to the user API.
    pub fn from_der(cert: Vec<u8>, pkcs8_key: Vec<u8>) -> Result<Self, AtlsError> {
        let spki =
            spki_of(&cert).map_err(|err| AtlsError::Config(format!("own certificate: {err}")))?;
        Ok(Self {
            cert: CertificateDer::from(cert),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8_key)),
            spki,
        })
    }

    /// The certificate's SubjectPublicKeyInfo (DER): what the report data
    /// binds.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// The certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        self.cert.as_ref()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls server configuration: TLS 1.3, our certificate, client
/// certificates accepted from anyone and required if `client_key_required`.
pub fn server_config(
    identity: &Identity,
    client_key_required: bool,
) -> Result<rustls::ServerConfig, AtlsError> {
    let provider = provider();
    let verifier = Arc::new(AnyClientCert {
        algorithms: provider.signature_verification_algorithms,
        mandatory: client_key_required,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| AtlsError::Config(format!("TLS 1.3 server: {err}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(|err| AtlsError::Config(format!("server certificate: {err}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // Every connection is a full handshake: each side proves possession of
    // its certificate key in this session, never through a resumed one.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// The rustls client configuration: TLS 1.3, any server certificate,
/// our certificate if we have one.
pub fn client_config(identity: Option<&Identity>) -> Result<rustls::ClientConfig, AtlsError> {
    let provider = provider();
    let verifier = Arc::new(AnyServerCert {
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| AtlsError::Config(format!("TLS 1.3 client: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())
            .map_err(|err| AtlsError::Config(format!("client certificate: {err}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
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

fn check_parses(end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
    spki_of(end_entity.as_ref())
        .map(|_| ())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
}

/// Accepts any server certificate that names a key; checks the TLS 1.3
/// handshake signature with that key.
#[derive(Debug)]
struct AnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_parses(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "accord attested TLS speaks TLS 1.3 only".to_string(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts any client certificate that names a key; checks the TLS 1.3
/// handshake signature with that key.
#[derive(Debug)]
struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_parses(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "accord attested TLS speaks TLS 1.3 only".to_string(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
