//! The seed engine: every long-lived secret of a deployment, derived from one
//! 64-byte seed and a 32-byte salt.
//!
//! # Scheme (version 1)
//!
//! All derivations are HKDF-SHA256 (RFC 5869) with `salt` = the 32-byte
//! [`Salt`] and one table of `info` labels ([`labels`]):
//!
//! | output | IKM | info | length |
//! |---|---|---|---|
//! | [`PodStateSecret`] | seed | [`labels::POD_STATE_SECRET`] | 64 |
//! | [`WorkloadSecret`] | pod-state secret | [`labels::WORKLOAD_SECRET_ID`] ‖ id | 64 |
//! | history signing key (Ed25519 seed) | seed | [`labels::HISTORY_SIGNING_KEY`] | 32 |
//! | [`RootCaKey`] candidate `c` | seed | [`labels::ROOT_CA_KEY`] | 56 |
//!
//! The Ed25519 history signing key is the 32-byte HKDF output used as the
//! RFC 8032 private key (seed).
//!
//! The root CA key is an ECDSA P-384 key derived with the FIPS 186-5
//! §A.2.1 "extra random bits" method: the 56-byte (448-bit = 384 + 64 bit)
//! HKDF output is read as a big-endian integer `c`, and the private scalar is
//! `d = (c mod (n − 1)) + 1`, where `n` is the order of P-384. The reduction
//! is constant-time (`crypto-bigint`), the bias is below 2⁻⁶⁴, and `d` is
//! never zero. The public key is `d·G`, exported as an uncompressed SEC1
//! point.
//!
//! The mesh CA key is **not** derived: [`MeshCaKey::random`] draws a fresh
//! P-384 scalar per manifest generation (rejection sampling of 48 random
//! bytes), so that whoever holds the seed cannot forge mesh certificates.
//!
//! Known-answer vectors for every derivation are pinned in `kdf/kat.rs`,
//! with how they were produced.
//!
//! # Secret hygiene
//!
//! Every secret type implements [`Zeroize`] and [`ZeroizeOnDrop`], has a
//! `Debug` that prints only `Name(<redacted>)`, and implements neither
//! `Display` nor `Serialize`. Bytes leave only through explicit `as_bytes` /
//! `scalar_bytes` accessors.

use core::fmt;

use ed25519_dalek::SigningKey as Ed25519SigningKey;
use elliptic_curve::Curve;
use elliptic_curve::bigint::{NonZero, U384, U512};
use elliptic_curve::sec1::ToSec1Point;
use p384::NistP384;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{CryptoError, CryptoProvider, SecureRandom};

/// The table of HKDF `info` labels. Each label is used for exactly one
/// derivation; changing one changes every key derived with it.
pub mod labels {
    /// IKM = seed; output = the 64-byte pod-state secret.
    pub const POD_STATE_SECRET: &[u8] = b"accord/v1 pod state secret";
    /// IKM = seed; output = the 32-byte Ed25519 history signing key seed.
    pub const HISTORY_SIGNING_KEY: &[u8] = b"accord/v1 history signing key";
    /// IKM = seed; output = 56 bytes reduced to the P-384 root CA scalar.
    pub const ROOT_CA_KEY: &[u8] = b"accord/v1 root CA key";
    /// IKM = pod-state secret; info = this label ‖ the workload secret id;
    /// output = the 64-byte workload secret.
    pub const WORKLOAD_SECRET_ID: &[u8] = b"accord/v1 workload secret id:";
}

/// Length of the secret seed.
pub const SEED_LEN: usize = 64;
/// Length of the salt (the SHA-256 output length).
pub const SALT_LEN: usize = 32;
/// Length of the pod-state and workload secrets.
pub const SECRET_LEN: usize = 64;
/// Length of a P-384 scalar.
pub const P384_SCALAR_LEN: usize = 48;
/// Length of an uncompressed SEC1 P-384 point.
pub const P384_POINT_LEN: usize = 97;
/// Length of the HKDF output reduced to the root CA scalar (384 + 64 bits).
const ROOT_CA_CANDIDATE_LEN: usize = 56;
/// Attempts [`MeshCaKey::random`] makes before giving up. A 48-byte draw is
/// refused with probability about 2⁻¹⁹⁰, so running out means the
/// randomness source is broken.
const MESH_CA_MAX_ATTEMPTS: usize = 16;

/// Why a derivation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfError {
    /// A workload secret was requested for an empty id.
    EmptyWorkloadSecretId,
    /// The crypto provider failed.
    Crypto(CryptoError),
    /// A derived or drawn scalar is not a valid P-384 private key (cannot
    /// happen for derived keys; for random keys, the source is broken).
    InvalidScalar,
}

impl fmt::Display for KdfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyWorkloadSecretId => f.write_str("empty workload secret id"),
            Self::Crypto(e) => write!(f, "key derivation failed: {e}"),
            Self::InvalidScalar => f.write_str("invalid P-384 private scalar"),
        }
    }
}

impl core::error::Error for KdfError {}

impl From<CryptoError> for KdfError {
    fn from(e: CryptoError) -> Self {
        Self::Crypto(e)
    }
}

/// Implements a redacting `Debug` for a secret type.
macro_rules! redacted_debug {
    ($t:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    };
}

/// The 64-byte secret seed every derived secret comes from.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretSeed([u8; SEED_LEN]);
redacted_debug!(SecretSeed);

impl SecretSeed {
    /// Wraps seed bytes (from recovery or a seed share).
    pub const fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh seed.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, KdfError> {
        let mut seed = Self([0; SEED_LEN]);
        rng.fill(&mut seed.0)?;
        Ok(seed)
    }

    /// The seed bytes, for sealing into seed shares. Handle with care.
    pub const fn as_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }
}

/// The 32-byte HKDF salt. Not secret (it is handed out with the seed
/// shares), but zeroized all the same.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Salt([u8; SALT_LEN]);
redacted_debug!(Salt);

impl Salt {
    /// Wraps salt bytes.
    pub const fn from_bytes(bytes: [u8; SALT_LEN]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh salt.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, KdfError> {
        let mut salt = Self([0; SALT_LEN]);
        rng.fill(&mut salt.0)?;
        Ok(salt)
    }

    /// The salt bytes.
    pub const fn as_bytes(&self) -> &[u8; SALT_LEN] {
        &self.0
    }
}

/// The 64-byte pod-state secret, from which workload secrets derive.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PodStateSecret([u8; SECRET_LEN]);
redacted_debug!(PodStateSecret);

impl PodStateSecret {
    /// The secret bytes.
    pub const fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

/// A 64-byte workload secret, handed to the workloads that name its id.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WorkloadSecret([u8; SECRET_LEN]);
redacted_debug!(WorkloadSecret);

impl WorkloadSecret {
    /// The secret bytes.
    pub const fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

/// A P-384 CA private key: the scalar (secret) and its public point.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct P384Key {
    scalar: [u8; P384_SCALAR_LEN],
    #[zeroize(skip)]
    public: [u8; P384_POINT_LEN],
}

impl P384Key {
    /// Builds the key from a big-endian scalar in `[1, n)`.
    fn from_scalar(scalar: &[u8; P384_SCALAR_LEN]) -> Result<Self, KdfError> {
        let secret =
            p384::SecretKey::from_bytes(&(*scalar).into()).map_err(|_| KdfError::InvalidScalar)?;
        let point = secret.public_key().as_affine().to_sec1_point(false);
        let public = point
            .as_bytes()
            .try_into()
            .map_err(|_| KdfError::InvalidScalar)?;
        Ok(Self {
            scalar: *scalar,
            public,
        })
    }

    fn signing_key(&self) -> Result<p384::ecdsa::SigningKey, KdfError> {
        p384::ecdsa::SigningKey::from_bytes(&self.scalar.into())
            .map_err(|_| KdfError::InvalidScalar)
    }
}

/// The root CA key, ECDSA P-384, derived deterministically from the seed
/// (see the module docs for the scheme).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RootCaKey(P384Key);
redacted_debug!(RootCaKey);

/// The mesh CA key, ECDSA P-384, random per manifest generation.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MeshCaKey(P384Key);
redacted_debug!(MeshCaKey);

macro_rules! ca_key_accessors {
    ($t:ident) => {
        impl $t {
            /// The public key as an uncompressed SEC1 point (`04 ‖ X ‖ Y`).
            pub const fn public_key_sec1(&self) -> &[u8; P384_POINT_LEN] {
                &self.0.public
            }

            /// The private scalar, big-endian. Secret: for signing only.
            pub const fn scalar_bytes(&self) -> &[u8; P384_SCALAR_LEN] {
                &self.0.scalar
            }

            /// An ECDSA P-384 signing key for this key (zeroized on drop).
            pub fn signing_key(&self) -> Result<p384::ecdsa::SigningKey, KdfError> {
                self.0.signing_key()
            }
        }
    };
}
ca_key_accessors!(RootCaKey);
ca_key_accessors!(MeshCaKey);

impl MeshCaKey {
    /// Draws a fresh key: 48 random bytes, read big-endian, accepted if
    /// nonzero and below the group order (rejection sampling, FIPS 186-5
    /// §A.2.2).
    pub fn random(rng: &dyn SecureRandom) -> Result<Self, KdfError> {
        let mut candidate = [0u8; P384_SCALAR_LEN];
        for _ in 0..MESH_CA_MAX_ATTEMPTS {
            rng.fill(&mut candidate)?;
            if let Ok(key) = P384Key::from_scalar(&candidate) {
                candidate.zeroize();
                return Ok(Self(key));
            }
        }
        candidate.zeroize();
        Err(KdfError::InvalidScalar)
    }

    /// Rebuilds a mesh CA key from its scalar (peer recovery transfers it).
    pub fn from_scalar_bytes(scalar: [u8; P384_SCALAR_LEN]) -> Result<Self, KdfError> {
        let mut scalar = scalar;
        let key = P384Key::from_scalar(&scalar);
        scalar.zeroize();
        key.map(Self)
    }
}

/// `n − 1` for P-384, the modulus of the root CA reduction.
const ORDER_MINUS_ONE: NonZero<U384> =
    NonZero::<U384>::new_unwrap(NistP384::ORDER.as_ref().wrapping_sub(&U384::ONE));

/// FIPS 186-5 §A.2.1: `d = (c mod (n − 1)) + 1` for the 56-byte big-endian
/// `c`, in constant time.
fn reduce_root_scalar(candidate: &[u8; ROOT_CA_CANDIDATE_LEN]) -> [u8; P384_SCALAR_LEN] {
    let mut wide = [0u8; 64];
    let (_, tail) = wide.split_at_mut(64 - ROOT_CA_CANDIDATE_LEN);
    tail.copy_from_slice(candidate);
    let mut c = U512::from_be_slice(&wide);
    wide.zeroize();
    let mut d = c.rem(&ORDER_MINUS_ONE).wrapping_add(&U384::ONE);
    c.zeroize();
    let mut bytes = d.to_be_bytes();
    d.zeroize();
    let mut out = [0u8; P384_SCALAR_LEN];
    out.copy_from_slice(bytes.as_ref());
    bytes.zeroize();
    out
}

/// The seed engine: seed + salt + provider, from which every derived secret
/// comes. Derivations are deterministic and cheap; nothing is cached.
#[derive(ZeroizeOnDrop)]
pub struct SeedEngine<'p> {
    seed: SecretSeed,
    salt: Salt,
    #[zeroize(skip)]
    provider: &'p dyn CryptoProvider,
}

impl fmt::Debug for SeedEngine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedEngine(<redacted>)")
    }
}

impl<'p> SeedEngine<'p> {
    /// Builds the engine.
    pub fn new(seed: SecretSeed, salt: Salt, provider: &'p dyn CryptoProvider) -> Self {
        Self {
            seed,
            salt,
            provider,
        }
    }

    /// The salt (returned alongside seed shares).
    pub const fn salt(&self) -> &Salt {
        &self.salt
    }

    /// The seed (for sealing into seed shares).
    pub const fn seed(&self) -> &SecretSeed {
        &self.seed
    }

    fn hkdf(&self, ikm: &[u8], info: &[&[u8]], out: &mut [u8]) -> Result<(), KdfError> {
        self.provider
            .hkdf_sha256(&self.salt.0, ikm, info, out)
            .map_err(KdfError::from)
    }

    /// The pod-state secret.
    pub fn pod_state_secret(&self) -> Result<PodStateSecret, KdfError> {
        let mut out = PodStateSecret([0; SECRET_LEN]);
        self.hkdf(&self.seed.0, &[labels::POD_STATE_SECRET], &mut out.0)?;
        Ok(out)
    }

    /// The workload secret for `id`. An empty id is refused.
    pub fn workload_secret(&self, id: &str) -> Result<WorkloadSecret, KdfError> {
        if id.is_empty() {
            return Err(KdfError::EmptyWorkloadSecretId);
        }
        let pod_state = self.pod_state_secret()?;
        let mut out = WorkloadSecret([0; SECRET_LEN]);
        self.hkdf(
            &pod_state.0,
            &[labels::WORKLOAD_SECRET_ID, id.as_bytes()],
            &mut out.0,
        )?;
        Ok(out)
    }

    /// The Ed25519 key that signs the history's tree heads.
    pub fn history_signing_key(&self) -> Result<Ed25519SigningKey, KdfError> {
        let mut seed = [0u8; 32];
        let result = self.hkdf(&self.seed.0, &[labels::HISTORY_SIGNING_KEY], &mut seed);
        let key = result.map(|()| Ed25519SigningKey::from_bytes(&seed));
        seed.zeroize();
        key
    }

    /// The root CA key (ECDSA P-384), derived as the module docs describe.
    pub fn root_ca_key(&self) -> Result<RootCaKey, KdfError> {
        let mut candidate = [0u8; ROOT_CA_CANDIDATE_LEN];
        let result = self.hkdf(&self.seed.0, &[labels::ROOT_CA_KEY], &mut candidate);
        let mut scalar = reduce_root_scalar(&candidate);
        candidate.zeroize();
        let key = result.and_then(|()| P384Key::from_scalar(&scalar));
        scalar.zeroize();
        key.map(RootCaKey)
    }
}

#[cfg(test)]
mod kat;
#[cfg(test)]
mod tests;
