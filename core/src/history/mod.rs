//! The verifiable manifest history.
//!
//! Three layers, all pure:
//!
//! - [`objects`]: content-addressed manifests, policies and transitions
//!   (transition = manifest hash ‖ previous transition hash), re-hashed on
//!   every read.
//! - [`merkle`]: an append-only Merkle log over the transitions with RFC 9162
//!   hashing, and its inclusion and consistency proofs.
//! - [`tree_head`]: the signed tree head (size, root, generation,
//!   seed-share record, Ed25519 signature by the history key) and the rule
//!   that a head never moves backwards.
//!
//! The leaf of the log for a transition is the transition's 32-byte address
//! ([`transition_leaf_hash`]); the log's leaf `i` is the `i`-th transition,
//! oldest first. [`History`] keeps the chain and the log in step.

pub mod merkle;
pub mod objects;
pub mod tree_head;

#[cfg(test)]
mod merkle_cache_tests;
#[cfg(test)]
mod tests;

use core::fmt;

use crate::crypto::CryptoProvider;
use merkle::{Hash, MerkleLog};
use objects::{ObjectHash, Transition};
use tree_head::TreeHead;

/// The log's leaf hash for a transition: `SHA-256(0x00 ‖ transition hash)`.
pub fn transition_leaf_hash(provider: &dyn CryptoProvider, transition: &ObjectHash) -> Hash {
    merkle::leaf_hash(provider, transition.as_bytes())
}

/// Why a list of transitions is not a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// Transition `index` does not point at the one before it (or, for the
    /// first, points at something).
    BrokenLink {
        /// The position of the transition, oldest first.
        index: usize,
        /// The address of the transition before it, if any.
        expected: Option<ObjectHash>,
        /// What the transition names as its previous one.
        found: Option<ObjectHash>,
    },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |hash: &Option<ObjectHash>, f: &mut fmt::Formatter<'_>| match hash {
            Some(hash) => write!(f, "{hash}"),
            None => f.write_str("none"),
        };
        match self {
            Self::BrokenLink {
                index,
                expected,
                found,
            } => {
                write!(
                    f,
                    "transition {index} breaks the chain: previous should be "
                )?;
                name(expected, f)?;
                f.write_str(", is ")?;
                name(found, f)
            }
        }
    }
}

impl core::error::Error for ChainError {}

/// The chain of transitions and the Merkle log over them, kept in step.
///
/// The generation is the number of transitions, which is also the size of
/// the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    log: MerkleLog,
    latest: Option<ObjectHash>,
}

impl History {
    /// An empty history (no manifest set yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a history from its manifest addresses, oldest first, as a
    /// client does from the manifests the coordinator returns.
    pub fn from_manifests(provider: &dyn CryptoProvider, manifests: &[ObjectHash]) -> Self {
        let mut history = Self::new();
        for manifest in manifests {
            history.append(provider, *manifest);
        }
        history
    }

    /// Rebuilds a history from stored transitions, oldest first, checking
    /// that each one links to the one before it. (Each transition's bytes
    /// must already have been checked against their address, for instance
    /// with [`Transition::decode_verified`].)
    pub fn from_transitions(
        provider: &dyn CryptoProvider,
        transitions: &[Transition],
    ) -> Result<Self, ChainError> {
        let mut history = Self::new();
        for (index, transition) in transitions.iter().enumerate() {
            if transition.previous != history.latest {
                return Err(ChainError::BrokenLink {
                    index,
                    expected: history.latest,
                    found: transition.previous,
                });
            }
            history.append(provider, transition.manifest);
        }
        Ok(history)
    }

    /// Records that `manifest` was set: builds the transition from the latest
    /// one, appends it to the log, and returns it with its address.
    pub fn append(
        &mut self,
        provider: &dyn CryptoProvider,
        manifest: ObjectHash,
    ) -> (Transition, ObjectHash) {
        let transition = Transition {
            manifest,
            previous: self.latest,
        };
        let address = transition.hash(provider);
        self.log
            .push(provider, transition_leaf_hash(provider, &address));
        self.latest = Some(address);
        (transition, address)
    }

    /// The address of the latest transition, if any.
    pub fn latest(&self) -> Option<ObjectHash> {
        self.latest
    }

    /// The number of transitions.
    pub fn generation(&self) -> u64 {
        self.log.size()
    }

    /// The Merkle log over the transitions.
    pub fn log(&self) -> &MerkleLog {
        &self.log
    }

    /// The current (unsigned) tree head, naming `seedshares` as the
    /// seed-share record in force.
    pub fn tree_head(&self, provider: &dyn CryptoProvider, seedshares: &ObjectHash) -> TreeHead {
        TreeHead {
            size: self.log.size(),
            root: self.log.root(provider),
            generation: self.generation(),
            seedshares: seedshares.0,
        }
    }
}
