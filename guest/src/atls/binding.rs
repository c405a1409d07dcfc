//! What binds evidence to one TLS session and one key: the report data
//! `SHA-512(REPORT_DATA_LABEL ‖ role ‖ exporter ‖ SHA-256(SPKI))`.
//!
//! The exporter value (RFC 8446 §7.5, label [`EXPORTER_LABEL`], no context)
//! is unique to the session, so evidence relayed from another session does
//! not match; the role (`server` / `client`) stops evidence from being
//! reflected back to its maker; the SPKI hash names the key that signed the
//! handshake, so the attested party is the one holding that key.

use accord_core::crypto::CryptoProvider;
use accord_core::der::{self, DerReader};

use super::AtlsError;

/// The TLS exporter label.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-accord-attested-tls";

/// Length of the exporter value.
pub const EXPORTER_LEN: usize = 32;

/// The first input of the report-data hash.
pub const REPORT_DATA_LABEL: &[u8] = b"accord attested TLS v1";

/// Which end of the TLS connection made a piece of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The TLS server.
    Server,
    /// The TLS client.
    Client,
}

impl Role {
    /// `"server"` or `"client"`: the bytes hashed into the report data.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }

    /// The other end.
    pub fn peer(self) -> Self {
        match self {
            Self::Server => Self::Client,
            Self::Client => Self::Server,
        }
    }
}

/// The report data evidence made by `role` in the session whose exporter
/// value is `exporter`, for the certificate key `spki`, must carry.
pub fn report_data(
    crypto: &dyn CryptoProvider,
    role: Role,
    exporter: &[u8; EXPORTER_LEN],
    spki: &[u8],
) -> [u8; 64] {
    let key_hash = crypto.sha256(&[spki]);
    crypto.sha512(&[
        REPORT_DATA_LABEL,
        role.as_str().as_bytes(),
        exporter,
        &key_hash,
    ])
}

/// The DER SubjectPublicKeyInfo (whole TLV) of an X.509 certificate.
///
/// Only the structure up to the SPKI is walked; the key's algorithm does
/// not matter here (rustls has already checked that the key signed the
/// handshake).
pub fn spki_of(cert_der: &[u8]) -> Result<Vec<u8>, AtlsError> {
    let bad = |what: &str| AtlsError::Protocol(format!("peer certificate: {what}"));
    let outer = der::single(cert_der, der::tag::SEQUENCE)
        .map_err(|err| bad(&format!("not a DER SEQUENCE ({err})")))?;
    let mut cert = DerReader::new(outer.contents);
    let tbs = cert
        .expect(der::tag::SEQUENCE)
        .map_err(|err| bad(&format!("tbsCertificate: {err}")))?;
    let mut t = DerReader::new(tbs);
    t.optional(der::tag::context_constructed(0))
        .map_err(|err| bad(&format!("version: {err}")))?;
    for field in ["serialNumber", "signature", "issuer", "validity", "subject"] {
        t.read().map_err(|err| bad(&format!("{field}: {err}")))?;
    }
    let spki = t
        .expect_tlv(der::tag::SEQUENCE)
        .map_err(|err| bad(&format!("subjectPublicKeyInfo: {err}")))?;
    Ok(spki.raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::crypto::default_provider;

    #[test]
    fn spki_matches_rcgen_key() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["accord.invalid".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        use rcgen::PublicKeyData;
        assert_eq!(spki_of(cert.der()).unwrap(), key.subject_public_key_info());
    }

    #[test]
    fn garbage_certificates_are_errors_not_panics() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.invalid".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for len in 0..der.len() {
            assert!(spki_of(&der[..len]).is_err(), "prefix {len}");
        }
        assert!(spki_of(b"GET / HTTP/1.1").is_err());
    }

    #[test]
    fn report_data_separates_role_session_and_key() {
        let crypto = default_provider();
        let base = report_data(crypto, Role::Server, &[1; 32], b"key");
        assert_ne!(base, report_data(crypto, Role::Client, &[1; 32], b"key"));
        assert_ne!(base, report_data(crypto, Role::Server, &[2; 32], b"key"));
        assert_ne!(base, report_data(crypto, Role::Server, &[1; 32], b"kez"));
        // Fixed vector: SHA-512("accord attested TLS v1" ‖ "server" ‖ 01×32 ‖ SHA-256("key")).
        let key_hash = crypto.sha256(&[b"key"]);
        let mut input = Vec::new();
        input.extend_from_slice(b"accord attested TLS v1server");
        input.extend_from_slice(&[1; 32]);
        input.extend_from_slice(&key_hash);
        assert_eq!(base, crypto.sha512(&[&input]));
    }
}
