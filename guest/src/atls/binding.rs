//! What binds evidence to one TLS session and one key: the report data
//! `SHA-512(REPORT_DATA_LABEL ‖ role ‖ exporter ‖ SHA-256(SPKI))`.
//!
//! The exporter value (RFC 8446 §7.5, label [`EXPORTER_LABEL`], no context)
//! is unique to the session, so evidence relayed from another session does
//! not match; the role (`server` / `client`) stops evidence from being
//! reflected back to its maker; the SPKI hash names the key that signed the
//! handshake (the raw public key of [`tls`](super::tls)), so the attested
//! party is the one holding that key.

use accord_core::crypto::CryptoProvider;

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
/// value is `exporter`, for the key `spki` (its SubjectPublicKeyInfo, DER),
/// must carry.
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

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::crypto::default_provider;

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
