//! Content-addressed history objects: manifests, policies and transitions.
//!
//! Every object is stored under the SHA-256 of its exact bytes
//! ([`ObjectHash`]), so a reader that re-hashes what it got
//! ([`verify_object`]) detects any tampering by the store.
//!
//! A [`Transition`] links a manifest to the transition before it; the chain
//! of transitions is the history of manifests. Its encoding is fixed
//! (see [`Transition::encode`]):
//!
//! ```text
//! offset  len  field
//! 0       32   manifest hash    SHA-256 of the manifest bytes
//! 32      32   previous hash    SHA-256 of the previous transition's
//!                               64-byte encoding, or 32 zero bytes for the
//!                               first transition
//! ```
//!
//! Exactly 64 bytes; shorter or longer input is refused.

use core::fmt;

use crate::codec::{CodecError, Reader};
use crate::crypto::CryptoProvider;
use crate::hex::Hex;

/// The kind of a content-addressed object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A manifest, as the exact bytes it was set with.
    Manifest,
    /// A policy (initdata) referenced by a manifest.
    Policy,
    /// A [`Transition`] in its 64-byte encoding.
    Transition,
    /// The seed-share record: the salt and the public Feldman commitments
    /// of the seed shares.
    SeedShares,
}

impl ObjectKind {
    /// The store directory of the kind (`manifests`, `policies`,
    /// `transitions`, `seedshares`).
    pub const fn dir(self) -> &'static str {
        match self {
            Self::Manifest => "manifests",
            Self::Policy => "policies",
            Self::Transition => "transitions",
            Self::SeedShares => "seedshares",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Manifest => "manifest",
            Self::Policy => "policy",
            Self::Transition => "transition",
            Self::SeedShares => "seed-share record",
        })
    }
}

/// The SHA-256 of an object's exact bytes: its address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectHash(pub [u8; 32]);

impl ObjectHash {
    /// The all-zero hash, which stands for "no previous transition" in the
    /// transition encoding.
    pub const ZERO: Self = Self([0; 32]);

    /// The address of `bytes`.
    pub fn of(provider: &dyn CryptoProvider, bytes: &[u8]) -> Self {
        Self(provider.sha256(&[bytes]))
    }

    /// The raw hash.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Hex(&self.0), f)
    }
}

impl fmt::Debug for ObjectHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectHash({})", Hex(&self.0))
    }
}

/// Why an object was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectError {
    /// The bytes do not hash to the address they were stored under.
    HashMismatch {
        /// What kind of object it was.
        kind: ObjectKind,
        /// The address asked for.
        expected: ObjectHash,
        /// The hash of the bytes received.
        actual: ObjectHash,
    },
    /// A transition is not exactly 64 bytes.
    Malformed {
        /// What kind of object it was.
        kind: ObjectKind,
        /// What the reader found.
        error: CodecError,
    },
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashMismatch {
                kind,
                expected,
                actual,
            } => write!(f, "{kind} hash mismatch: expected {expected}, got {actual}"),
            Self::Malformed { kind, error } => write!(f, "malformed {kind}: {error}"),
        }
    }
}

impl core::error::Error for ObjectError {}

/// Re-hashes `bytes` and refuses them unless they hash to `expected`.
pub fn verify_object(
    provider: &dyn CryptoProvider,
    kind: ObjectKind,
    expected: &ObjectHash,
    bytes: &[u8],
) -> Result<(), ObjectError> {
    let actual = ObjectHash::of(provider, bytes);
    if actual != *expected {
        return Err(ObjectError::HashMismatch {
            kind,
            expected: *expected,
            actual,
        });
    }
    Ok(())
}

/// One step of the manifest history: this manifest replaced the state
/// reached by `previous`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The address of the manifest set by this transition.
    pub manifest: ObjectHash,
    /// The address of the previous transition; `None` for the first.
    pub previous: Option<ObjectHash>,
}

impl Transition {
    /// The length of the encoding.
    pub const ENCODED_LEN: usize = 64;

    /// `manifest ‖ previous`, with 32 zero bytes for no previous transition.
    ///
    /// `previous: Some(ObjectHash::ZERO)` encodes like `None`; no transition
    /// hashes to zero, so the ambiguity is only theoretical, and
    /// [`Transition::decode`] reads zero as `None`.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let previous = self.previous.unwrap_or(ObjectHash::ZERO);
        let (left, right) = out.split_at_mut(32);
        left.copy_from_slice(&self.manifest.0);
        right.copy_from_slice(&previous.0);
        out
    }

    /// Parses exactly 64 bytes; refuses short or trailing input.
    pub fn decode(bytes: &[u8]) -> Result<Self, ObjectError> {
        let malformed = |error| ObjectError::Malformed {
            kind: ObjectKind::Transition,
            error,
        };
        let mut reader = Reader::new(bytes);
        let manifest = ObjectHash(*reader.take_array::<32>().map_err(malformed)?);
        let previous = ObjectHash(*reader.take_array::<32>().map_err(malformed)?);
        reader.finish().map_err(malformed)?;
        Ok(Self {
            manifest,
            previous: (previous != ObjectHash::ZERO).then_some(previous),
        })
    }

    /// The address of this transition: SHA-256 of its encoding.
    pub fn hash(&self, provider: &dyn CryptoProvider) -> ObjectHash {
        ObjectHash::of(provider, &self.encode())
    }

    /// Checks `bytes` against their address, then parses them.
    pub fn decode_verified(
        provider: &dyn CryptoProvider,
        expected: &ObjectHash,
        bytes: &[u8],
    ) -> Result<Self, ObjectError> {
        verify_object(provider, ObjectKind::Transition, expected, bytes)?;
        Self::decode(bytes)
    }
}
