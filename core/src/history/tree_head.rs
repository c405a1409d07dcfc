//! Signed tree heads of the history log, and the rule that a tree head may
//! only move forward.
//!
//! A [`TreeHead`] commits to the Merkle log of transitions (its size and
//! root), to the manifest generation and to the seed-share record in force
//! (the salt, the Feldman commitments and the sealed shares: see
//! `coordinator::store::SeedShareRecord`). Its signed encoding is fixed:
//!
//! ```text
//! offset  len  field
//! 0       20   label       "accord tree head v2\0" (domain separation)
//! 20      8    size        big-endian u64, number of leaves in the log
//! 28      32   root        RFC 9162 root hash of those leaves
//! 60      8    generation  big-endian u64
//! 68      32   seedshares  SHA-256 address of the seed-share record
//! ```
//!
//! A [`SignedTreeHead`] is that encoding plus a 64-byte Ed25519 signature
//! (RFC 8032) over all 100 bytes by the history key. Its own encoding is
//! the 100 bytes followed by the signature (164 bytes).
//!
//! The seed-share record is inside the signature so that the store cannot
//! swap it: recovery rebuilds the seed from shares checked against that
//! record's commitments, and the seed's history key must then verify a
//! head that names the very record. (Version 1 heads, without the field,
//! are refused by their label.)
//!
//! Signing and verification use `ed25519-dalek` directly and bypass the
//! [`CryptoProvider`]: the provider has no Ed25519 yet. Verification is
//! `verify_strict` (no small-order keys, canonical `S`).
//!
//! [`check_newer`] is how a client or the agent accepts a new head: never an
//! older generation, never a smaller log, and always a consistency proof that
//! the new log extends the old one.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::merkle::{self, Hash, ProofError};
use crate::codec::{CodecError, Reader};
use crate::crypto::CryptoProvider;
use crate::hex::Hex;

/// The domain-separation label that starts the signed encoding.
pub const TREE_HEAD_LABEL: &[u8; 20] = b"accord tree head v2\0";

/// The state of the history log at one moment.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeHead {
    /// The number of transitions in the log.
    pub size: u64,
    /// The RFC 9162 root of the log's first `size` leaves.
    pub root: Hash,
    /// The manifest generation the log has reached.
    pub generation: u64,
    /// The address (SHA-256) of the seed-share record in force.
    pub seedshares: [u8; 32],
}

impl fmt::Debug for TreeHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TreeHead")
            .field("size", &self.size)
            .field("root", &Hex(&self.root))
            .field("generation", &self.generation)
            .field("seedshares", &Hex(&self.seedshares))
            .finish()
    }
}

/// Why a tree head was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeHeadError {
    /// The encoding is malformed (wrong length or label).
    Malformed(CodecError),
    /// The encoding does not start with [`TREE_HEAD_LABEL`].
    WrongLabel,
    /// The signature does not verify under the history key.
    BadSignature,
    /// The new head has an older generation than one already seen.
    OlderGeneration {
        /// The generation already seen.
        seen: u64,
        /// The generation offered.
        offered: u64,
    },
    /// The new head has a smaller log than one already seen.
    SmallerLog {
        /// The size already seen.
        seen: u64,
        /// The size offered.
        offered: u64,
    },
    /// The new log does not extend the old one.
    Inconsistent(ProofError),
}

impl fmt::Display for TreeHeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(error) => write!(f, "malformed tree head: {error}"),
            Self::WrongLabel => f.write_str("tree head does not start with its label"),
            Self::BadSignature => f.write_str("tree head signature does not verify"),
            Self::OlderGeneration { seen, offered } => write!(
                f,
                "tree head generation {offered} is older than the generation {seen} already seen"
            ),
            Self::SmallerLog { seen, offered } => write!(
                f,
                "tree head size {offered} is smaller than the size {seen} already seen"
            ),
            Self::Inconsistent(error) => {
                write!(
                    f,
                    "tree head is not consistent with the one already seen: {error}"
                )
            }
        }
    }
}

impl core::error::Error for TreeHeadError {}

impl From<CodecError> for TreeHeadError {
    fn from(error: CodecError) -> Self {
        Self::Malformed(error)
    }
}

impl TreeHead {
    /// The length of the signed encoding.
    pub const ENCODED_LEN: usize = 20 + 8 + 32 + 8 + 32;

    /// `label ‖ size (BE) ‖ root ‖ generation (BE) ‖ seedshares`: the bytes
    /// that are signed.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        crate::codec::concat(&[
            TREE_HEAD_LABEL,
            &self.size.to_be_bytes(),
            &self.root,
            &self.generation.to_be_bytes(),
            &self.seedshares,
        ])
    }

    /// Parses the 100-byte encoding; refuses a wrong label, short or trailing
    /// input.
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeHeadError> {
        let mut reader = Reader::new(bytes);
        let head = Self::read(&mut reader)?;
        reader.finish()?;
        Ok(head)
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, TreeHeadError> {
        if reader.take_array::<20>()? != TREE_HEAD_LABEL {
            return Err(TreeHeadError::WrongLabel);
        }
        let size = u64::from_be_bytes(*reader.take_array::<8>()?);
        let root = *reader.take_array::<32>()?;
        let generation = u64::from_be_bytes(*reader.take_array::<8>()?);
        let seedshares = *reader.take_array::<32>()?;
        Ok(Self {
            size,
            root,
            generation,
            seedshares,
        })
    }

    /// Signs the encoding with the history key.
    pub fn sign(&self, key: &SigningKey) -> SignedTreeHead {
        SignedTreeHead {
            head: *self,
            signature: key.sign(&self.encode()).to_bytes(),
        }
    }
}

/// A tree head with the history key's Ed25519 signature over its encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head that was signed.
    pub head: TreeHead,
    /// The Ed25519 signature over [`TreeHead::encode`].
    pub signature: [u8; 64],
}

impl fmt::Debug for SignedTreeHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedTreeHead")
            .field("head", &self.head)
            .field("signature", &Hex(&self.signature))
            .finish()
    }
}

impl SignedTreeHead {
    /// The length of the encoding: the tree head, then the signature.
    pub const ENCODED_LEN: usize = TreeHead::ENCODED_LEN + 64;

    /// `tree head encoding ‖ signature`.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        let (head, signature) = out.split_at_mut(TreeHead::ENCODED_LEN);
        head.copy_from_slice(&self.head.encode());
        signature.copy_from_slice(&self.signature);
        out
    }

    /// Parses the 164-byte encoding (does not verify the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, TreeHeadError> {
        let mut reader = Reader::new(bytes);
        let head = TreeHead::read(&mut reader)?;
        let signature = *reader.take_array::<64>()?;
        reader.finish()?;
        Ok(Self { head, signature })
    }

    /// Verifies the signature under the history key and returns the head.
    pub fn verify(&self, key: &VerifyingKey) -> Result<TreeHead, TreeHeadError> {
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.head.encode(), &signature)
            .map_err(|_| TreeHeadError::BadSignature)?;
        Ok(self.head)
    }
}

/// Accepts `next` after `previous` only if it is not older: its generation
/// and size are at least those of `previous`, and `consistency_proof` proves
/// (RFC 9162 §2.1.4.2) that its log extends the previous one. Both heads must
/// already have been verified ([`SignedTreeHead::verify`]).
///
/// Equal sizes need an empty proof and equal roots.
pub fn check_newer(
    provider: &dyn CryptoProvider,
    previous: &TreeHead,
    next: &TreeHead,
    consistency_proof: &[Hash],
) -> Result<(), TreeHeadError> {
    if next.generation < previous.generation {
        return Err(TreeHeadError::OlderGeneration {
            seen: previous.generation,
            offered: next.generation,
        });
    }
    if next.size < previous.size {
        return Err(TreeHeadError::SmallerLog {
            seen: previous.size,
            offered: next.size,
        });
    }
    merkle::verify_consistency(
        provider,
        previous.size,
        next.size,
        &previous.root,
        &next.root,
        consistency_proof,
    )
    .map_err(TreeHeadError::Inconsistent)
}
