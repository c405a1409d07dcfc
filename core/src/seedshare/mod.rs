//! Seed shares: the 64-byte seed split k-of-n with Shamir secret sharing,
//! public Feldman commitments to check each share, and every share sealed
//! with HPKE to its owner's X25519 key.
//!
//! # Scheme: "accord seed shares v1"
//!
//! **Group.** Ristretto255 (`curve25519-dalek`); scalars are integers mod
//! the prime group order ℓ ≈ 2²⁵²; `G` is the Ristretto base point.
//!
//! **Secrets.** The seed is cut into 4 chunks of 16 bytes. Chunk `j`
//! becomes the secret scalar `s_j` whose 32 little-endian bytes are
//!
//! | bytes | content |
//! |---|---|
//! | 0..16 | seed bytes `16j .. 16j + 16` |
//! | 16..31 | 15 fresh random bytes |
//! | 31 | `0` |
//!
//! so `s_j < 2²⁴⁸ < ℓ` is canonical. The commitment `s_j·G` is public. Were
//! the secret just the 16 seed bytes, `s_j` would lie in a range of size
//! 2¹²⁸ and a kangaroo / baby-step-giant-step search would recover it from
//! `s_j·G` in about 2⁶⁴ group operations. The 120 random padding bits make
//! `s_j` uniform over 2²⁴⁸ values, which leaves only generic discrete-log
//! attacks (≈ 2¹²⁴). Reconstruction keeps bytes 0..16 of each recovered
//! scalar and refuses the result ([`SeedShareError::PaddingNotZero`]) unless
//! byte 31 is zero.
//!
//! **Polynomials.** For each chunk `j`, a random polynomial
//! `f_j(X) = a_{j,0} + a_{j,1}·X + … + a_{j,k−1}·X^{k−1}` of degree `k − 1`
//! with `a_{j,0} = s_j`; every other coefficient is 64 random bytes reduced
//! mod ℓ. Owner `i` (0-based position in the owner list) gets the share with
//! index `x = i + 1` and the four values `f_j(x)`.
//!
//! **Commitments** (Feldman). For each chunk `j`, the `k` points
//! `C_{j,m} = a_{j,m}·G`, compressed (32 bytes each). Encoded canonically
//! ([`Commitments::encode`]) as
//!
//! ```text
//! version (1 byte, = 1) ‖ k (1 byte, ≥ 1) ‖ C_{0,0} … C_{0,k−1} ‖ … ‖ C_{3,0} … C_{3,k−1}
//! ```
//!
//! and hashed with SHA-256 ([`Commitments::hash`]).
//!
//! **Share check.** A share `(x, v_0..v_3)` is valid when, for every `j`,
//! `v_j·G = Σ_m x^m·C_{j,m}` ([`verify_share`]).
//!
//! **Reconstruction.** Every given share is checked first; then the first
//! `k` shares (indices must be distinct) are interpolated at 0 with Lagrange
//! coefficients ([`reconstruct`]).
//!
//! **Share encoding.** `x (1 byte) ‖ v_0 ‖ v_1 ‖ v_2 ‖ v_3` (each a 32-byte
//! little-endian canonical scalar), 129 bytes ([`Share::to_bytes`]).
//!
//! **Sealing.** HPKE (RFC 9180), base mode, suite DHKEM(X25519,
//! HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, to the owner's X25519
//! key, with
//!
//! - `info` = [`HPKE_INFO`] (`"accord/v1 seed share"`),
//! - `aad` = `SHA-256(Commitments::encode()) ‖ x` (33 bytes), so that a
//!   sealed share cannot be moved to another index or to another sharing,
//! - plaintext = the 129-byte share encoding.
//!
//! The sealed share ([`SealedShare`]) carries the 32-byte encapsulated key
//! and the ciphertext (129 + 16 bytes). [`open`] decrypts and then runs the
//! share check.
//!
//! **Document.** [`split`] returns a [`SeedShareDocument`]: version 1, the
//! KDF salt, the commitments and one sealed share per owner, in owner order.
//! In JSON every byte string is lowercase hex; owners are the raw 32-byte
//! X25519 public keys.
//!
//! **Submission.** In user recovery each owner hands its share to the
//! coordinator in an HPKE Auth-mode message from the owner's key
//! ([`submission`]), so the coordinator knows which owner sent it.
//!
//! # Secret hygiene
//!
//! [`Share`] is a secret: it implements `Zeroize` and `ZeroizeOnDrop`, its
//! `Debug` prints the index only, it has no `Serialize`, and its bytes leave
//! only through [`Share::to_bytes`] (a `Zeroizing` buffer). Intermediate
//! scalars and buffers are zeroized on a best-effort basis.

use alloc::vec::Vec;
use core::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use hpke::rand_core::{Infallible, TryCryptoRng, TryRng};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{CryptoProvider, SecureRandom};
use crate::kdf::{SEED_LEN, Salt, SecretSeed};
use crate::manifest::SeedshareKey;

mod serde_hex;
pub mod submission;

/// The most owners a sharing can have (indices are one byte, 1..=255).
pub const MAX_OWNERS: usize = 255;
/// The number of chunks (and polynomials) the seed is cut into.
pub const CHUNKS: usize = 4;
/// Seed bytes per chunk.
pub const CHUNK_LEN: usize = SEED_LEN / CHUNKS;
/// Length of an encoded [`Share`]: index byte and four 32-byte scalars.
pub const SHARE_LEN: usize = 1 + CHUNKS * 32;
/// The version byte of [`Commitments::encode`] and of [`SeedShareDocument`].
pub const VERSION: u8 = 1;
/// The HPKE `info` string.
pub const HPKE_INFO: &[u8] = b"accord/v1 seed share";

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Why splitting, opening, checking or reconstructing failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SeedShareError {
    /// The share with this index fails the commitment check (or its index
    /// is 0).
    BadShare {
        /// The index of the offending share.
        index: u8,
    },
    /// Fewer shares with distinct indices than the threshold.
    NotEnoughShares {
        /// Shares given.
        have: usize,
        /// Shares needed (the threshold).
        need: u8,
    },
    /// Two shares given to [`reconstruct`] have this index.
    DuplicateIndex(u8),
    /// The threshold is not in `1..=owners`.
    ThresholdOutOfRange {
        /// The threshold asked for.
        threshold: u8,
        /// The number of owners.
        owners: usize,
    },
    /// The owner list is empty.
    NoOwners,
    /// More than [`MAX_OWNERS`] owners.
    TooManyOwners(usize),
    /// The owner at this 0-based position repeats an earlier one.
    DuplicateOwner {
        /// 0-based position in the owner list.
        position: usize,
    },
    /// The owner key at this 0-based position is unusable (a low-order
    /// X25519 point: no shared secret).
    BadOwnerKey {
        /// 0-based position in the owner list.
        position: usize,
    },
    /// HPKE decryption failed: wrong key, or the sealed share, its index or
    /// the commitments were tampered with.
    Open,
    /// An encoding is malformed; the text says how.
    Malformed(&'static str),
    /// The randomness source failed.
    Random,
    /// A reconstructed secret scalar has a nonzero byte 31 (the shares or
    /// commitments were not made by this scheme).
    PaddingNotZero,
}

impl fmt::Display for SeedShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadShare { index } => {
                write!(f, "seed share {index} fails the commitment check")
            }
            Self::NotEnoughShares { have, need } => {
                write!(f, "{have} seed shares given, {need} needed")
            }
            Self::DuplicateIndex(index) => write!(f, "two seed shares have index {index}"),
            Self::ThresholdOutOfRange { threshold, owners } => write!(
                f,
                "seed share threshold {threshold} is not in 1..={owners} (the number of owners)"
            ),
            Self::NoOwners => f.write_str("no seed share owners"),
            Self::TooManyOwners(n) => {
                write!(f, "{n} seed share owners, at most {MAX_OWNERS} allowed")
            }
            Self::DuplicateOwner { position } => {
                write!(f, "seed share owner at position {position} is a duplicate")
            }
            Self::BadOwnerKey { position } => {
                write!(f, "seed share owner key at position {position} is unusable")
            }
            Self::Open => {
                f.write_str("cannot open the sealed seed share (wrong key, or tampered with)")
            }
            Self::Malformed(what) => write!(f, "malformed seed share data: {what}"),
            Self::Random => f.write_str("randomness unavailable"),
            Self::PaddingNotZero => f.write_str("reconstructed seed chunk has nonzero padding"),
        }
    }
}

impl core::error::Error for SeedShareError {}

/// The public Feldman commitments of one sharing: for each of the 4
/// chunks, `threshold` compressed Ristretto points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitments {
    /// The threshold `k` (≥ 1): each chunk has `k` points.
    pub threshold: u8,
    /// `points[j][m]` = `a_{j,m}·G`, compressed.
    pub points: [Vec<[u8; 32]>; CHUNKS],
}

impl Commitments {
    /// The canonical encoding: version byte, threshold, then the `4·k`
    /// points chunk by chunk. (Encodes what is there; [`decode`](Self::decode)
    /// is the strict side.)
    pub fn encode(&self) -> Vec<u8> {
        let count: usize = self.points.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(2 + 32 * count);
        out.push(VERSION);
        out.push(self.threshold);
        for chunk in &self.points {
            for point in chunk {
                out.extend_from_slice(point);
            }
        }
        out
    }

    /// Decodes [`encode`](Self::encode)'s output. Refuses another version,
    /// threshold 0, a wrong length (truncated or trailing bytes) and points
    /// that are not canonical Ristretto encodings.
    pub fn decode(bytes: &[u8]) -> Result<Self, SeedShareError> {
        let (header, rest) = bytes
            .split_first_chunk::<2>()
            .ok_or(SeedShareError::Malformed("commitments truncated"))?;
        let [version, threshold] = *header;
        if version != VERSION {
            return Err(SeedShareError::Malformed("unknown commitments version"));
        }
        if threshold == 0 {
            return Err(SeedShareError::Malformed("threshold 0"));
        }
        let k = usize::from(threshold);
        if rest.len() != CHUNKS * k * 32 {
            return Err(SeedShareError::Malformed("commitments of the wrong length"));
        }
        let mut points: [Vec<[u8; 32]>; CHUNKS] = Default::default();
        let mut encoded = rest.chunks_exact(32);
        for chunk in &mut points {
            for _ in 0..k {
                let point: [u8; 32] = encoded
                    .next()
                    .and_then(|p| p.try_into().ok())
                    .ok_or(SeedShareError::Malformed("commitments truncated"))?;
                chunk.push(point);
            }
        }
        let commitments = Self { threshold, points };
        commitments.decompress()?;
        Ok(commitments)
    }

    /// SHA-256 of [`encode`](Self::encode).
    pub fn hash(&self, provider: &dyn CryptoProvider) -> [u8; 32] {
        provider.sha256(&[&self.encode()])
    }

    /// Checks the shape and decompresses every point.
    fn decompress(&self) -> Result<[Vec<RistrettoPoint>; CHUNKS], SeedShareError> {
        if self.threshold == 0 {
            return Err(SeedShareError::Malformed("threshold 0"));
        }
        let k = usize::from(self.threshold);
        let mut out: [Vec<RistrettoPoint>; CHUNKS] = Default::default();
        for (points, compressed) in out.iter_mut().zip(&self.points) {
            if compressed.len() != k {
                return Err(SeedShareError::Malformed(
                    "number of commitment points differs from the threshold",
                ));
            }
            for bytes in compressed {
                let point = CompressedRistretto(*bytes)
                    .decompress()
                    .ok_or(SeedShareError::Malformed("invalid commitment point"))?;
                points.push(point);
            }
        }
        Ok(out)
    }
}

/// One owner's share: the index `x` (1-based) and the four values `f_j(x)`.
/// Secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    /// The share index `x`, 1..=255 (the owner's position + 1).
    pub index: u8,
    values: [[u8; 32]; CHUNKS],
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share {{ index: {}, values: <redacted> }}", self.index)
    }
}

impl Share {
    /// The 129-byte encoding: index ‖ four 32-byte little-endian scalars.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SHARE_LEN]> {
        let mut out = Zeroizing::new([0u8; SHARE_LEN]);
        if let Some((index, rest)) = out.split_first_mut() {
            *index = self.index;
            for (slot, value) in rest.chunks_exact_mut(32).zip(&self.values) {
                slot.copy_from_slice(value);
            }
        }
        out
    }

    /// Decodes [`to_bytes`](Self::to_bytes)'s output: exactly 129 bytes,
    /// index ≥ 1, canonical scalars.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeedShareError> {
        if bytes.len() != SHARE_LEN {
            return Err(SeedShareError::Malformed("share of the wrong length"));
        }
        let (&index, rest) = bytes
            .split_first()
            .ok_or(SeedShareError::Malformed("share of the wrong length"))?;
        if index == 0 {
            return Err(SeedShareError::Malformed("share index 0"));
        }
        let mut share = Self {
            index,
            values: [[0; 32]; CHUNKS],
        };
        for (value, encoded) in share.values.iter_mut().zip(rest.chunks_exact(32)) {
            value.copy_from_slice(encoded);
            if Option::<Scalar>::from(Scalar::from_canonical_bytes(*value)).is_none() {
                return Err(SeedShareError::Malformed(
                    "share value is not a canonical scalar",
                ));
            }
        }
        Ok(share)
    }

    /// The values as scalars (canonical by construction; a value that is not
    /// is reduced, and then fails the commitment check).
    fn scalars(&self) -> [Scalar; CHUNKS] {
        self.values.map(Scalar::from_bytes_mod_order)
    }
}

/// One share sealed with HPKE to its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedShare {
    /// The owner's X25519 public key (raw 32 bytes; hex in JSON).
    #[serde(with = "serde_hex::key")]
    pub owner: SeedshareKey,
    /// The share index (the owner's position + 1).
    pub index: u8,
    /// The HPKE encapsulated key (the sender's ephemeral X25519 key).
    #[serde(with = "serde_hex::array")]
    pub encapsulated_key: [u8; 32],
    /// The HPKE ciphertext of the 129-byte share, with its 16-byte tag.
    #[serde(with = "serde_hex::bytes")]
    pub ciphertext: Vec<u8>,
}

/// What a sharing hands out: the salt, the commitments and every sealed
/// share. Public.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawDocument")]
pub struct SeedShareDocument {
    /// The format version, 1.
    pub version: u32,
    /// The KDF salt (see [`crate::kdf`]).
    #[serde(with = "serde_hex::array")]
    pub salt: [u8; 32],
    /// The Feldman commitments.
    pub commitments: Commitments,
    /// One sealed share per owner, in owner order.
    pub shares: Vec<SealedShare>,
}

/// [`SeedShareDocument`] before its version is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    version: u32,
    #[serde(with = "serde_hex::array")]
    salt: [u8; 32],
    commitments: Commitments,
    shares: Vec<SealedShare>,
}

impl TryFrom<RawDocument> for SeedShareDocument {
    type Error = SeedShareError;

    fn try_from(raw: RawDocument) -> Result<Self, SeedShareError> {
        if raw.version != u32::from(VERSION) {
            return Err(SeedShareError::Malformed(
                "unknown seed share document version",
            ));
        }
        Ok(Self {
            version: raw.version,
            salt: raw.salt,
            commitments: raw.commitments,
            shares: raw.shares,
        })
    }
}

/// The X25519 public key of an owner's secret key (base-point
/// multiplication of the clamped secret).
pub fn owner_public_key(secret: &[u8; 32]) -> SeedshareKey {
    SeedshareKey(MontgomeryPoint::mul_base_clamped(*secret).to_bytes())
}

/// Adapts a [`SecureRandom`] to the `rand_core` traits HPKE wants. Those
/// are infallible, so a failure is recorded in `failed` (and the buffer is
/// left as the source left it); the caller must check [`Self::check`] after
/// every use and discard the output on failure.
struct RngAdapter<'a> {
    rng: &'a dyn SecureRandom,
    failed: bool,
}

impl<'a> RngAdapter<'a> {
    fn new(rng: &'a dyn SecureRandom) -> Self {
        Self { rng, failed: false }
    }

    fn check(&self) -> Result<(), SeedShareError> {
        if self.failed {
            Err(SeedShareError::Random)
        } else {
            Ok(())
        }
    }
}

impl TryRng for RngAdapter<'_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut buf = [0u8; 4];
        self.try_fill_bytes(&mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut buf = [0u8; 8];
        self.try_fill_bytes(&mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if self.rng.fill(dst).is_err() {
            self.failed = true;
        }
        Ok(())
    }
}

impl TryCryptoRng for RngAdapter<'_> {}

/// A scalar from 64 random bytes, reduced mod ℓ.
fn random_scalar(rng: &dyn SecureRandom) -> Result<Scalar, SeedShareError> {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill(wide.as_mut_slice())
        .map_err(|_| SeedShareError::Random)?;
    Ok(Scalar::from_bytes_mod_order_wide(&wide))
}

/// `f(x)` by Horner's rule for the coefficients `a_0..a_{k−1}`.
fn evaluate(coefficients: &[Scalar], x: Scalar) -> Scalar {
    coefficients
        .iter()
        .rev()
        .fold(Scalar::ZERO, |acc, a| acc * x + a)
}

/// `Σ_m x^m·C_m` by Horner's rule (public data: variable time is fine).
fn evaluate_commitments(points: &[RistrettoPoint], x: Scalar) -> RistrettoPoint {
    points
        .iter()
        .rev()
        .fold(RistrettoPoint::identity(), |acc, c| acc * x + c)
}

/// The HPKE `aad`: SHA-256 of the encoded commitments ‖ the share index.
fn aad(commitments_hash: &[u8; 32], index: u8) -> [u8; 33] {
    let mut out = [0u8; 33];
    if let Some((hash, last)) = out.split_first_chunk_mut::<32>() {
        *hash = *commitments_hash;
        if let Some(slot) = last.first_mut() {
            *slot = index;
        }
    }
    out
}

/// Checks the owner list and threshold.
fn check_owners(owners: &[SeedshareKey], threshold: u8) -> Result<(), SeedShareError> {
    if owners.is_empty() {
        return Err(SeedShareError::NoOwners);
    }
    if owners.len() > MAX_OWNERS {
        return Err(SeedShareError::TooManyOwners(owners.len()));
    }
    if threshold == 0 || usize::from(threshold) > owners.len() {
        return Err(SeedShareError::ThresholdOutOfRange {
            threshold,
            owners: owners.len(),
        });
    }
    for (position, owner) in owners.iter().enumerate() {
        if owners
            .get(..position)
            .is_some_and(|before| before.contains(owner))
        {
            return Err(SeedShareError::DuplicateOwner { position });
        }
    }
    Ok(())
}

/// Splits `seed` `threshold`-of-`owners.len()` and seals share `i + 1` to
/// `owners[i]` (see the module docs for the scheme).
pub fn split(
    seed: &SecretSeed,
    salt: &Salt,
    owners: &[SeedshareKey],
    threshold: u8,
    provider: &dyn CryptoProvider,
    rng: &dyn SecureRandom,
) -> Result<SeedShareDocument, SeedShareError> {
    check_owners(owners, threshold)?;
    let k = usize::from(threshold);

    // The polynomials: coefficients[j][0] is the padded secret chunk.
    let mut coefficients: [Vec<Scalar>; CHUNKS] = Default::default();
    let result = fill_polynomials(seed, k, rng, &mut coefficients);
    let document = result.and_then(|()| {
        let commitments = Commitments {
            threshold,
            points: coefficients.each_ref().map(|poly| {
                poly.iter()
                    .map(|a| RistrettoPoint::mul_base(a).compress().to_bytes())
                    .collect()
            }),
        };
        let commitments_hash = commitments.hash(provider);
        let mut shares = Vec::with_capacity(owners.len());
        for (position, owner) in owners.iter().enumerate() {
            // At most MAX_OWNERS = 255 owners: the index fits in a byte.
            let index = u8::try_from(position + 1)
                .map_err(|_| SeedShareError::TooManyOwners(owners.len()))?;
            let x = Scalar::from(index);
            let share = Share {
                index,
                values: coefficients.each_ref().map(|poly| {
                    let mut value = evaluate(poly, x);
                    let bytes = value.to_bytes();
                    value.zeroize();
                    bytes
                }),
            };
            shares.push(seal(&share, owner, position, &commitments_hash, rng)?);
        }
        Ok(SeedShareDocument {
            version: u32::from(VERSION),
            salt: *salt.as_bytes(),
            commitments,
            shares,
        })
    });
    for poly in &mut coefficients {
        poly.zeroize();
    }
    document
}

/// Draws the padded secret scalars and the random coefficients.
fn fill_polynomials(
    seed: &SecretSeed,
    k: usize,
    rng: &dyn SecureRandom,
    coefficients: &mut [Vec<Scalar>; CHUNKS],
) -> Result<(), SeedShareError> {
    for (poly, chunk) in coefficients
        .iter_mut()
        .zip(seed.as_bytes().chunks_exact(CHUNK_LEN))
    {
        let mut secret = Zeroizing::new([0u8; 32]);
        let (low, high) = secret.split_at_mut(CHUNK_LEN);
        low.copy_from_slice(chunk);
        let padding = high
            .get_mut(..15)
            .ok_or(SeedShareError::Malformed("padding"))?;
        rng.fill(padding).map_err(|_| SeedShareError::Random)?;
        // Byte 31 stays 0: the value is below 2^248 < ℓ, hence canonical.
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(*secret))
            .ok_or(SeedShareError::Malformed("secret scalar not canonical"))?;
        poly.reserve_exact(k);
        poly.push(s);
        for _ in 1..k {
            poly.push(random_scalar(rng)?);
        }
    }
    Ok(())
}

/// Seals `share` to `owner` (at `position` in the owner list).
fn seal(
    share: &Share,
    owner: &SeedshareKey,
    position: usize,
    commitments_hash: &[u8; 32],
    rng: &dyn SecureRandom,
) -> Result<SealedShare, SeedShareError> {
    let bad_key = SeedShareError::BadOwnerKey { position };
    let public = <Kem as hpke::Kem>::PublicKey::from_bytes(&owner.0).map_err(|_| bad_key)?;
    let plaintext = share.to_bytes();
    let mut adapter = RngAdapter::new(rng);
    let sealed = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &public,
        HPKE_INFO,
        plaintext.as_slice(),
        &aad(commitments_hash, share.index),
        &mut adapter,
    );
    // The output of a failed randomness source is discarded, whatever it is.
    adapter.check()?;
    let (encapsulated, ciphertext) = sealed.map_err(|_| bad_key)?;
    let encapsulated_key: [u8; 32] = encapsulated
        .to_bytes()
        .as_slice()
        .try_into()
        .map_err(|_| SeedShareError::Malformed("encapsulated key length"))?;
    Ok(SealedShare {
        owner: *owner,
        index: share.index,
        encapsulated_key,
        ciphertext,
    })
}

/// Decrypts `sealed` with the owner's X25519 secret key and checks the share
/// against `commitments`.
pub fn open(
    sealed: &SealedShare,
    commitments: &Commitments,
    owner_secret: &[u8; 32],
    provider: &dyn CryptoProvider,
) -> Result<Share, SeedShareError> {
    // HPKE would refuse too (the recipient key is bound into the key
    // schedule); checking first also refuses a rewritten `owner` field.
    if owner_public_key(owner_secret) != sealed.owner {
        return Err(SeedShareError::Open);
    }
    let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(owner_secret)
        .map_err(|_| SeedShareError::Open)?;
    let encapsulated = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.encapsulated_key)
        .map_err(|_| SeedShareError::Open)?;
    let plaintext = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &secret,
        &encapsulated,
        HPKE_INFO,
        &sealed.ciphertext,
        &aad(&commitments.hash(provider), sealed.index),
    )
    .map_err(|_| SeedShareError::Open)?;
    let plaintext = Zeroizing::new(plaintext);
    let share = Share::from_bytes(&plaintext)?;
    if share.index != sealed.index {
        return Err(SeedShareError::Malformed(
            "sealed share index differs from the index inside",
        ));
    }
    verify_share(commitments, &share)?;
    Ok(share)
}

/// The Feldman check of one share against decompressed commitments.
fn check_share(
    points: &[Vec<RistrettoPoint>; CHUNKS],
    share: &Share,
) -> Result<(), SeedShareError> {
    let bad = SeedShareError::BadShare { index: share.index };
    if share.index == 0 {
        return Err(bad);
    }
    let x = Scalar::from(share.index);
    let mut values = share.scalars();
    let mut ok = true;
    for (value, chunk) in values.iter().zip(points) {
        // Constant-time base-point multiplication: the value is secret.
        let lhs = RistrettoPoint::mul_base(value);
        ok &= lhs == evaluate_commitments(chunk, x);
    }
    values.zeroize();
    if ok { Ok(()) } else { Err(bad) }
}

/// Checks `share` against the commitments: `f_j(x)·G = Σ_m x^m·C_{j,m}`
/// for every chunk `j`.
pub fn verify_share(commitments: &Commitments, share: &Share) -> Result<(), SeedShareError> {
    check_share(&commitments.decompress()?, share)
}

/// Rebuilds the seed from at least `threshold` shares with distinct
/// indices. Every share is checked against the commitments first (the first
/// bad one is named); then the first `threshold` shares are interpolated.
pub fn reconstruct(
    commitments: &Commitments,
    shares: &[Share],
) -> Result<SecretSeed, SeedShareError> {
    let points = commitments.decompress()?;
    for share in shares {
        check_share(&points, share)?;
    }
    for (position, share) in shares.iter().enumerate() {
        if shares
            .get(..position)
            .is_some_and(|before| before.iter().any(|s| s.index == share.index))
        {
            return Err(SeedShareError::DuplicateIndex(share.index));
        }
    }
    let k = usize::from(commitments.threshold);
    let chosen = shares.get(..k).ok_or(SeedShareError::NotEnoughShares {
        have: shares.len(),
        need: commitments.threshold,
    })?;
    let mut secrets = interpolate_at_zero(chosen)?;
    let seed = seed_from_secrets(&secrets);
    secrets.zeroize();
    seed
}

/// Lagrange interpolation at 0 of the shares (indices distinct and nonzero).
fn interpolate_at_zero(shares: &[Share]) -> Result<[Scalar; CHUNKS], SeedShareError> {
    let mut secrets = [Scalar::ZERO; CHUNKS];
    for share in shares {
        let xi = Scalar::from(share.index);
        let mut numerator = Scalar::ONE;
        let mut denominator = Scalar::ONE;
        for other in shares {
            if other.index != share.index {
                let xj = Scalar::from(other.index);
                numerator *= xj;
                denominator *= xj - xi;
            }
        }
        if denominator == Scalar::ZERO {
            return Err(SeedShareError::DuplicateIndex(share.index));
        }
        let lambda = numerator * denominator.invert();
        let mut values = share.scalars();
        for (secret, value) in secrets.iter_mut().zip(&values) {
            *secret += lambda * value;
        }
        values.zeroize();
    }
    Ok(secrets)
}

/// The seed from the four secret scalars: bytes 0..16 of each; byte 31
/// must be 0.
fn seed_from_secrets(secrets: &[Scalar; CHUNKS]) -> Result<SecretSeed, SeedShareError> {
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    for (out, secret) in seed.chunks_exact_mut(CHUNK_LEN).zip(secrets) {
        let bytes = Zeroizing::new(secret.to_bytes());
        if bytes.last() != Some(&0) {
            return Err(SeedShareError::PaddingNotZero);
        }
        let chunk = bytes
            .get(..CHUNK_LEN)
            .ok_or(SeedShareError::Malformed("chunk"))?;
        out.copy_from_slice(chunk);
    }
    Ok(SecretSeed::from_bytes(*seed))
}

/// Serde for [`Commitments`]: hex points in human-readable formats, and the
/// same checks as [`Commitments::decode`] on the way in.
impl Serialize for Commitments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Commitments", 2)?;
        s.serialize_field("threshold", &self.threshold)?;
        s.serialize_field("points", &serde_hex::Points(&self.points))?;
        s.end()
    }
}

/// [`Commitments`] before its checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommitments {
    threshold: u8,
    points: Vec<Vec<serde_hex::Hex32>>,
}

impl<'de> Deserialize<'de> for Commitments {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawCommitments::deserialize(deserializer)?;
        let chunks: [Vec<serde_hex::Hex32>; CHUNKS] = raw
            .points
            .try_into()
            .map_err(|_| serde::de::Error::custom("commitments must have 4 chunks"))?;
        let commitments = Self {
            threshold: raw.threshold,
            points: chunks.map(|chunk| chunk.into_iter().map(|p| p.0).collect()),
        };
        commitments.decompress().map_err(serde::de::Error::custom)?;
        Ok(commitments)
    }
}

#[cfg(test)]
mod tests;
