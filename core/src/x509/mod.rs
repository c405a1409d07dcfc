//! X.509 certificates and CRLs, as far as attestation needs them.
//!
//! Borrowed, allocation-free views over DER ([`Certificate`], [`Crl`]),
//! signature checks through the [`CryptoProvider`](crate::crypto::CryptoProvider)
//! (ECDSA P-256/P-384 with SHA-256/384, RSASSA-PSS with SHA-384), validity
//! checks at an instant the caller passes, and PEM decoding ([`pem`]).
//!
//! This is not a general path builder: the evidence verifiers know their
//! chains (ARK → ASK → VCEK, Intel Root → PCK CA → PCK) and call
//! [`Certificate::verify_issued_by`] link by link.

mod algorithm;
mod cert;
mod crl;
mod error;
pub mod pem;

pub use algorithm::{PublicKey, SignatureAlgorithm, der_ecdsa_to_fixed};
pub use cert::{Certificate, Extension, Extensions};
pub use crl::{Crl, RevokedSerials};
pub use error::X509Error;

/// OIDs used across the X.509 code, as arc lists.
pub mod oid {
    /// id-ecPublicKey
    pub const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
    /// prime256v1 / secp256r1
    pub const P256: &[u64] = &[1, 2, 840, 10045, 3, 1, 7];
    /// secp384r1
    pub const P384: &[u64] = &[1, 3, 132, 0, 34];
    /// rsaEncryption
    pub const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
    /// id-RSASSA-PSS
    pub const RSASSA_PSS: &[u64] = &[1, 2, 840, 113549, 1, 1, 10];
    /// id-mgf1
    pub const MGF1: &[u64] = &[1, 2, 840, 113549, 1, 1, 8];
    /// id-sha384
    pub const SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];
    /// ecdsa-with-SHA256
    pub const ECDSA_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    /// ecdsa-with-SHA384
    pub const ECDSA_SHA384: &[u64] = &[1, 2, 840, 10045, 4, 3, 3];
    /// id-at-commonName
    pub const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    /// id-ce-basicConstraints
    pub const BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    /// id-ce-keyUsage
    pub const KEY_USAGE: &[u64] = &[2, 5, 29, 15];
}
