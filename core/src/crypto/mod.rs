//! The cryptographic primitives the core needs, behind a provider.
//!
//! In the style of rustls's `CryptoProvider`, the hardware-evidence and X.509
//! verification in the core takes a `&dyn CryptoProvider` instead of naming a
//! crypto library, so the fast provider can be swapped in. Two providers
//! ship:
//!
//! - [`rustcrypto::PROVIDER`]: pure Rust (RustCrypto), `no_std`, always there.
//! - `awslc::PROVIDER` (feature `aws-lc-rs`): the fast one, for the binaries.
//!
//! Randomness is not part of the provider; operations that need it take a
//! [`SecureRandom`] from the caller.
//!
//! Not everything goes through the provider. Where the algorithm is part of
//! a format accord defines, the core names its pure-Rust implementation
//! directly: SHA-256/SHA-384 (`sha2`) for history objects, certificates and
//! launch measurements, Ed25519 (`ed25519-dalek`) for owner and history
//! signatures and derived keys, P-384 (`p384`) for the CA's signatures,
//! Ristretto255 (`curve25519-dalek`) and HPKE (`hpke`) for the seed shares
//! ([`crate::seedshare`]). HKDF and the verification of vendor evidence go
//! through the provider.
//!
//! Conventions: ECDSA public keys are SEC1 uncompressed points
//! (`04 ‖ X ‖ Y`); ECDSA signatures are fixed-size big-endian `r ‖ s`
//! (callers convert from DER or from AMD's little-endian layout); the message
//! form of an ECDSA check hashes with the curve's own hash (P-256/SHA-256,
//! P-384/SHA-384).

use core::fmt;

pub mod rustcrypto;

#[cfg(feature = "aws-lc-rs")]
pub mod awslc;

/// An elliptic curve the core verifies signatures on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcCurve {
    /// NIST P-256, paired with SHA-256 (Intel DCAP).
    P256,
    /// NIST P-384, paired with SHA-384 (AMD SEV-SNP).
    P384,
}

impl EcCurve {
    /// Length in bytes of one coordinate / scalar.
    pub const fn field_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    /// Length of a fixed-size `r ‖ s` signature.
    pub const fn signature_len(self) -> usize {
        2 * self.field_len()
    }

    /// Length of an uncompressed SEC1 point.
    pub const fn point_len(self) -> usize {
        1 + 2 * self.field_len()
    }
}

/// Why a primitive operation failed. Deliberately uninformative: a signature
/// either verifies or it does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// The signature does not verify under the key.
    BadSignature,
    /// The public key is malformed or not on the curve.
    BadPublicKey,
    /// An input has the wrong length (signature, digest, output buffer).
    BadLength,
    /// The key size is outside what the operation supports.
    UnsupportedKeySize,
    /// Randomness could not be produced.
    RandomFailed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadSignature => "signature does not verify",
            Self::BadPublicKey => "malformed public key",
            Self::BadLength => "input of the wrong length",
            Self::UnsupportedKeySize => "unsupported key size",
            Self::RandomFailed => "randomness unavailable",
        })
    }
}

impl core::error::Error for CryptoError {}

/// An RSA public key as big-endian modulus and exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsaPublicKey<'a> {
    /// Big-endian modulus, without leading zero bytes.
    pub modulus: &'a [u8],
    /// Big-endian public exponent, without leading zero bytes.
    pub exponent: &'a [u8],
}

/// The primitive operations of the core. Implementations must be
/// constant-time where secrets are involved and must never panic.
pub trait CryptoProvider: Send + Sync {
    /// A short name for logs and benchmark labels.
    fn name(&self) -> &'static str;

    /// SHA-256 over the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32];

    /// SHA-384 over the concatenation of `parts`.
    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48];

    /// SHA-512 over the concatenation of `parts`.
    fn sha512(&self, parts: &[&[u8]]) -> [u8; 64];

    /// Verifies an ECDSA signature over `message`, hashed with the curve's
    /// own hash.
    fn verify_ecdsa(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;

    /// Verifies an ECDSA signature over a digest the caller computed. The
    /// digest must have the curve's hash length.
    fn verify_ecdsa_prehash(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;

    /// Verifies an RSASSA-PSS signature with SHA-384, MGF1-SHA-384 and a
    /// 48-byte salt (AMD's certificate signatures). Moduli of 2048 to 8192
    /// bits are accepted.
    fn verify_rsa_pss_sha384(
        &self,
        key: RsaPublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;

    /// HKDF-SHA256 (RFC 5869) extract-and-expand into `out`.
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError>;
}

/// A source of cryptographically secure randomness, supplied by the caller.
pub trait SecureRandom {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError>;
}

/// Every provider compiled into this build, for tests and benchmarks that
/// must run against each of them.
pub fn all_providers() -> &'static [&'static dyn CryptoProvider] {
    static ALL: &[&dyn CryptoProvider] = &[
        &rustcrypto::PROVIDER,
        #[cfg(feature = "aws-lc-rs")]
        &awslc::PROVIDER,
    ];
    ALL
}

/// The fastest provider compiled into this build.
pub fn default_provider() -> &'static dyn CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    {
        &awslc::PROVIDER
    }
    #[cfg(not(feature = "aws-lc-rs"))]
    {
        &rustcrypto::PROVIDER
    }
}

#[cfg(test)]
mod tests;
