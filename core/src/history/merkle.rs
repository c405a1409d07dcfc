//! A Merkle log with RFC 9162 hashing, and its inclusion and consistency
//! proofs.
//!
//! Hashing follows RFC 9162 §2.1.1 (unchanged from RFC 6962 §2.1):
//!
//! - the hash of the empty tree is `SHA-256("")`;
//! - a leaf hash is `SHA-256(0x00 ‖ leaf)`;
//! - an interior node is `SHA-256(0x01 ‖ left ‖ right)`, where the left
//!   subtree holds the largest power of two of leaves strictly below `n`.
//!
//! The tree is built over *leaf hashes* ([`Hash`](type@Hash)), which callers compute with
//! [`leaf_hash`]; a proof is a slice of node hashes, bottom-up, exactly as the
//! RFC's `PATH` and `PROOF` produce them.
//!
//! The verification functions ([`verify_inclusion`], [`verify_consistency`])
//! follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step (the comments use the
//! RFC's variable names `fn`, `sn`, `r`, `fr`, `sr`), allocate nothing and
//! never panic. Producing roots and proofs ([`root`], [`inclusion_proof`],
//! [`consistency_proof`], [`MerkleLog`]) allocates and recomputes subtree
//! hashes from the leaves: O(n) hashes per call, which is fine for a history
//! of manifest transitions (tens to thousands of entries). A compact-range or
//! stored-node representation can replace it without changing any output.
//!
//! A proof binds a leaf (or an old root) to a root *for the tree size the
//! caller names*; RFC 9162 alone does not bind the size to the root (a proof
//! for leaf 0 of 3 leaves also checks out for 4 leaves, against the 3-leaf
//! root). The size comes from a signed tree head, whose signature covers it
//! (see [`super::tree_head`]).
//!
//! All hashing goes through a [`CryptoProvider`].

use alloc::vec::Vec;
use core::fmt;

use crate::crypto::CryptoProvider;

/// A SHA-256 node hash of the tree.
pub type Hash = [u8; 32];

/// Domain separator of leaf hashes (RFC 9162 §2.1.1).
const LEAF_PREFIX: [u8; 1] = [0x00];
/// Domain separator of interior nodes (RFC 9162 §2.1.1).
const NODE_PREFIX: [u8; 1] = [0x01];

/// Why a proof was refused, or could not be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The size of the tree.
        size: u64,
    },
    /// A tree size exceeds the number of leaves available.
    SizeOutOfRange {
        /// The size asked for.
        size: u64,
        /// How many leaves the log holds.
        available: u64,
    },
    /// The older tree is larger than the newer one.
    SizesOutOfOrder {
        /// The size of the older tree.
        old_size: u64,
        /// The size of the newer tree.
        new_size: u64,
    },
    /// The proof has too many or too few nodes for the sizes given.
    WrongProofLength {
        /// How many nodes the proof had.
        len: usize,
    },
    /// The proof leads to a different (newer, for consistency) root.
    RootMismatch,
    /// A consistency proof leads to a different root for the older tree.
    OldRootMismatch,
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IndexOutOfRange { index, size } => {
                write!(f, "leaf index {index} is out of range for tree size {size}")
            }
            Self::SizeOutOfRange { size, available } => {
                write!(
                    f,
                    "tree size {size} exceeds the {available} leaves of the log"
                )
            }
            Self::SizesOutOfOrder { old_size, new_size } => write!(
                f,
                "old tree size {old_size} is larger than new tree size {new_size}"
            ),
            Self::WrongProofLength { len } => {
                write!(
                    f,
                    "a proof of {len} nodes has the wrong length for the tree sizes"
                )
            }
            Self::RootMismatch => f.write_str("the proof does not lead to the expected root"),
            Self::OldRootMismatch => {
                f.write_str("the consistency proof does not lead to the old root")
            }
        }
    }
}

impl core::error::Error for ProofError {}

/// The hash of a leaf: `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(provider: &dyn CryptoProvider, leaf: &[u8]) -> Hash {
    provider.sha256(&[&LEAF_PREFIX, leaf])
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(provider: &dyn CryptoProvider, left: &Hash, right: &Hash) -> Hash {
    provider.sha256(&[&NODE_PREFIX, left, right])
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root(provider: &dyn CryptoProvider) -> Hash {
    provider.sha256(&[])
}

/// `k`, the largest power of two strictly below `n` (RFC 9162 §2.1.1), for
/// `n ≥ 2`; 0 otherwise.
fn split_point(n: usize) -> usize {
    match n.checked_sub(1).and_then(usize::checked_ilog2) {
        Some(exponent) => 1 << exponent,
        None => 0,
    }
}

/// `D[0:k]` and `D[k:n]`.
fn split(leaves: &[Hash]) -> (&[Hash], &[Hash]) {
    leaves
        .split_at_checked(split_point(leaves.len()))
        .unwrap_or((leaves, &[]))
}

/// `MTH(D[n])`, the root of a tree over the given leaf hashes.
pub fn root(provider: &dyn CryptoProvider, leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(provider),
        [only] => *only,
        _ => {
            let (left, right) = split(leaves);
            node_hash(provider, &root(provider, left), &root(provider, right))
        }
    }
}

/// `PATH(m, D[n])`, appended to `out` bottom-up (RFC 9162 §2.1.3.1).
fn path(provider: &dyn CryptoProvider, m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    let (left, right) = split(leaves);
    if m < k {
        path(provider, m, left, out);
        out.push(root(provider, right));
    } else {
        path(provider, m.saturating_sub(k), right, out);
        out.push(root(provider, left));
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The inclusion proof (audit path) of leaf `index` in the tree over `leaves`
/// (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(
    provider: &dyn CryptoProvider,
    leaves: &[Hash],
    index: u64,
) -> Result<Vec<Hash>, ProofError> {
    let size = to_u64(leaves.len());
    let m = usize::try_from(index)
        .ok()
        .filter(|m| *m < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let mut out = Vec::new();
    path(provider, m, leaves, &mut out);
    Ok(out)
}

/// `SUBPROOF(m, D[n], b)`, appended to `out` (RFC 9162 §2.1.4.1), for
/// `m ≤ n`.
fn subproof(
    provider: &dyn CryptoProvider,
    m: usize,
    leaves: &[Hash],
    b: bool,
    out: &mut Vec<Hash>,
) {
    let n = leaves.len();
    if m >= n {
        // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}.
        if !b {
            out.push(root(provider, leaves));
        }
        return;
    }
    let k = split_point(n);
    let (left, right) = split(leaves);
    if m <= k {
        subproof(provider, m, left, b, out);
        out.push(root(provider, right));
    } else {
        subproof(provider, m.saturating_sub(k), right, false, out);
        out.push(root(provider, left));
    }
}

/// The consistency proof between the tree of the first `old_size` leaves and
/// the tree over all `leaves` (RFC 9162 §2.1.4.1). Empty when `old_size` is 0
/// or equals the number of leaves: nothing needs proving.
pub fn consistency_proof(
    provider: &dyn CryptoProvider,
    leaves: &[Hash],
    old_size: u64,
) -> Result<Vec<Hash>, ProofError> {
    let new_size = to_u64(leaves.len());
    let m = usize::try_from(old_size)
        .ok()
        .filter(|m| *m <= leaves.len())
        .ok_or(ProofError::SizesOutOfOrder { old_size, new_size })?;
    let mut out = Vec::new();
    if m != 0 {
        subproof(provider, m, leaves, true, &mut out);
    }
    Ok(out)
}

/// Right-shifts `fn` and `sn` together.
fn shift(fn_: &mut u64, sn: &mut u64) {
    *fn_ >>= 1;
    *sn >>= 1;
}

/// Verifies that `leaf_hash` is leaf `index` of the tree of `size` leaves
/// whose root is `root` (RFC 9162 §2.1.3.2). Allocates nothing.
pub fn verify_inclusion(
    provider: &dyn CryptoProvider,
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let wrong_length = ProofError::WrongProofLength { len: proof.len() };
    // 1. If leaf_index is greater than or equal to tree_size, then fail.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // 2. Set fn to leaf_index and sn to tree_size - 1.
    let mut fn_ = index;
    let mut sn = size.saturating_sub(1);
    // 3. Set r to hash.
    let mut r = *leaf_hash;
    // 4. For each value p in the inclusion_path array:
    for p in proof {
        // a. If sn is 0, then stop the iteration and fail the proof
        //    verification.
        if sn == 0 {
            return Err(wrong_length);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn_ & 1 == 1 || fn_ == sn {
            // i. Set r to HASH(0x01 || p || r).
            r = node_hash(provider, p, &r);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn
            //     equally until either LSB(fn) is set or fn is 0.
            while fn_ & 1 == 0 && fn_ != 0 {
                shift(&mut fn_, &mut sn);
            }
        } else {
            // Otherwise: set r to HASH(0x01 || r || p).
            r = node_hash(provider, &r, p);
        }
        // c. Finally, right-shift both fn and sn one time.
        shift(&mut fn_, &mut sn);
    }
    // 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to
    //    0 and r and the root_hash are equal, then the log has proven the
    //    inclusion of hash. Otherwise, fail the proof verification.
    if sn != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `new_size` leaves with root `new_root` extends
/// the tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
/// Allocates nothing.
///
/// Equal sizes need an empty proof and equal roots. An empty old tree is a
/// prefix of every tree and needs an empty proof (its root is not checked,
/// as in the RFC 6962 reference implementations).
pub fn verify_consistency(
    provider: &dyn CryptoProvider,
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let wrong_length = ProofError::WrongProofLength { len: proof.len() };
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(wrong_length);
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(wrong_length);
        }
        return Ok(());
    }
    // 1. If consistency_path is an empty array, stop and fail the proof
    //    verification.
    // 2. If first is an exact power of 2, then prepend first_hash to the
    //    consistency_path array.
    let prefix = old_size.is_power_of_two().then_some(old_root);
    let mut path = prefix.into_iter().chain(proof);
    let Some(first_node) = path.next().filter(|_| !proof.is_empty()) else {
        return Err(wrong_length);
    };
    // 3. Set fn to first - 1 and sn to second - 1.
    let mut fn_ = old_size.saturating_sub(1);
    let mut sn = new_size.saturating_sub(1);
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until
    //    LSB(fn) is not set.
    while fn_ & 1 == 1 {
        shift(&mut fn_, &mut sn);
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    let mut fr = *first_node;
    let mut sr = *first_node;
    // 6. For each subsequent value c in the consistency_path array:
    for c in path {
        // a. If sn is 0, then stop the iteration and fail the proof
        //    verification.
        if sn == 0 {
            return Err(wrong_length);
        }
        // b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn_ & 1 == 1 || fn_ == sn {
            // i. Set fr to HASH(0x01 || c || fr).
            //    Set sr to HASH(0x01 || c || sr).
            fr = node_hash(provider, c, &fr);
            sr = node_hash(provider, c, &sr);
            // ii. If LSB(fn) is not set, then right-shift both fn and sn
            //     equally until either LSB(fn) is set or fn is 0.
            while fn_ & 1 == 0 && fn_ != 0 {
                shift(&mut fn_, &mut sn);
            }
        } else {
            // Otherwise: set sr to HASH(0x01 || sr || c).
            sr = node_hash(provider, &sr, c);
        }
        // c. Finally, right-shift both fn and sn one time.
        shift(&mut fn_, &mut sn);
    }
    // 7. After completing iterating through the consistency_path array as
    //    described above, verify that the fr calculated is equal to the
    //    first_hash supplied, that the sr calculated is equal to the
    //    second_hash supplied, and that sn is 0.
    if sn != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// An append-only log of leaf hashes that produces roots and proofs for any
/// of its prefixes.
///
/// Every root and proof is recomputed from the leaves (O(n) hashes); see the
/// module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleLog {
    leaves: Vec<Hash>,
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log over the given leaf hashes, oldest first.
    pub fn from_leaf_hashes(leaves: Vec<Hash>) -> Self {
        Self { leaves }
    }

    /// Appends a leaf hash; returns its index.
    pub fn push(&mut self, leaf_hash: Hash) -> u64 {
        self.leaves.push(leaf_hash);
        self.size().saturating_sub(1)
    }

    /// Appends a leaf (hashing it with [`leaf_hash`]); returns its index.
    pub fn append(&mut self, provider: &dyn CryptoProvider, leaf: &[u8]) -> u64 {
        self.push(leaf_hash(provider, leaf))
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        to_u64(self.leaves.len())
    }

    /// The leaf hashes, oldest first.
    pub fn leaf_hashes(&self) -> &[Hash] {
        &self.leaves
    }

    /// The first `size` leaves.
    fn prefix(&self, size: u64) -> Result<&[Hash], ProofError> {
        usize::try_from(size)
            .ok()
            .and_then(|n| self.leaves.get(..n))
            .ok_or(ProofError::SizeOutOfRange {
                size,
                available: self.size(),
            })
    }

    /// The root of the whole log.
    pub fn root(&self, provider: &dyn CryptoProvider) -> Hash {
        root(provider, &self.leaves)
    }

    /// The root of the log's first `size` leaves.
    pub fn root_at(&self, provider: &dyn CryptoProvider, size: u64) -> Result<Hash, ProofError> {
        Ok(root(provider, self.prefix(size)?))
    }

    /// The inclusion proof of leaf `index` in the log's first `size` leaves.
    pub fn inclusion_proof(
        &self,
        provider: &dyn CryptoProvider,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofError> {
        inclusion_proof(provider, self.prefix(size)?, index)
    }

    /// The consistency proof from the log's first `old_size` leaves to its
    /// first `new_size` leaves.
    pub fn consistency_proof(
        &self,
        provider: &dyn CryptoProvider,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, ProofError> {
        if old_size > new_size {
            return Err(ProofError::SizesOutOfOrder { old_size, new_size });
        }
        consistency_proof(provider, self.prefix(new_size)?, old_size)
    }
}
