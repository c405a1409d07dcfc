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
//! never panic. The free functions that produce roots and proofs ([`root`],
//! [`inclusion_proof`], [`consistency_proof`]) recompute every subtree from
//! the leaves, O(n) hashes per call; they follow the RFC's recursive
//! definitions word for word and are the reference. [`MerkleLog`] gives the
//! same outputs from stored subtree hashes: each push stores the O(log n)
//! complete subtrees it finishes, and a root or proof of any prefix costs
//! O(log n) node lookups and O(log n) hashes (O(log² n) at most for a
//! proof) instead of O(n).
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
/// The log keeps, besides its leaves, the hash of every complete subtree
/// aligned on its own size: `levels[h][i]` is the root of leaves
/// `i·2^h .. (i+1)·2^h`. [`push`](Self::push) adds one leaf and the
/// O(log n) subtrees it completes. Every subtree of the RFC's recursion
/// whose size is a power of two is such an aligned subtree (the left part
/// of a split always is, and a right part starts at a multiple of the split
/// above it), so roots and proofs look those nodes up and hash only along
/// the right edge of a prefix: O(log n) hashes for a root, O(log² n) at
/// most for a proof. The outputs are those of the free functions, which
/// stay the reference (the tests compare both for every size and index).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleLog {
    /// `levels[0]` holds the leaf hashes; `levels[h][i]` the root of the
    /// `i`-th aligned subtree of `2^h` leaves. Level `h` has
    /// `⌊n / 2^h⌋` entries.
    levels: Vec<Vec<Hash>>,
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log over the given leaf hashes, oldest first (O(n) hashes).
    pub fn from_leaf_hashes(provider: &dyn CryptoProvider, leaves: Vec<Hash>) -> Self {
        let mut log = Self::new();
        for leaf in leaves {
            log.push(provider, leaf);
        }
        log
    }

    /// Appends a leaf hash and the subtrees it completes; returns its index.
    pub fn push(&mut self, provider: &dyn CryptoProvider, leaf_hash: Hash) -> u64 {
        let index = self.size();
        let mut node = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let Some(row) = self.levels.get_mut(level) else {
                break;
            };
            row.push(node);
            // An odd count: the new node waits for a right sibling.
            if row.len() % 2 == 1 {
                break;
            }
            let pair = row.len().checked_sub(2).and_then(|at| row.get(at..));
            let Some([left, right]) = pair else {
                break;
            };
            node = node_hash(provider, left, right);
            level += 1;
        }
        index
    }

    /// Appends a leaf (hashing it with [`leaf_hash`]); returns its index.
    pub fn append(&mut self, provider: &dyn CryptoProvider, leaf: &[u8]) -> u64 {
        let hash = leaf_hash(provider, leaf);
        self.push(provider, hash)
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        to_u64(self.leaf_hashes().len())
    }

    /// The leaf hashes, oldest first.
    pub fn leaf_hashes(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The number of leaves of the first `size`, checked against the log.
    fn prefix_len(&self, size: u64) -> Result<usize, ProofError> {
        usize::try_from(size)
            .ok()
            .filter(|n| *n <= self.leaf_hashes().len())
            .ok_or(ProofError::SizeOutOfRange {
                size,
                available: self.size(),
            })
    }

    /// The first `n` leaves (`n` checked by [`prefix_len`](Self::prefix_len)).
    fn prefix(&self, n: usize) -> &[Hash] {
        self.leaf_hashes().get(..n).unwrap_or(&[])
    }

    /// The stored root of the aligned subtree of leaves `start..start + len`,
    /// for `len` a power of two dividing `start`.
    fn node(&self, start: usize, len: usize) -> Option<Hash> {
        if !len.is_power_of_two() || !start.is_multiple_of(len) {
            return None;
        }
        let level = usize::try_from(len.trailing_zeros()).ok()?;
        self.levels.get(level)?.get(start >> level).copied()
    }

    /// `MTH(D[start:end])` for a range of the RFC's recursion (its start a
    /// multiple of the largest power of two below its length). `None`
    /// only if a stored node is missing, which `push` rules out.
    fn range_root(&self, provider: &dyn CryptoProvider, start: usize, end: usize) -> Option<Hash> {
        let len = end.checked_sub(start)?;
        if len == 0 {
            return Some(empty_root(provider));
        }
        if len.is_power_of_two() {
            return self.node(start, len);
        }
        let k = split_point(len);
        let middle = start.checked_add(k)?;
        let left = self.node(start, k)?;
        let right = self.range_root(provider, middle, end)?;
        Some(node_hash(provider, &left, &right))
    }

    /// `PATH(m, D[start:end])`, appended to `out` bottom-up.
    fn path(
        &self,
        provider: &dyn CryptoProvider,
        m: usize,
        start: usize,
        end: usize,
        out: &mut Vec<Hash>,
    ) -> Option<()> {
        let n = end.checked_sub(start)?;
        if n <= 1 {
            return Some(());
        }
        let k = split_point(n);
        let middle = start.checked_add(k)?;
        if m < k {
            self.path(provider, m, start, middle, out)?;
            out.push(self.range_root(provider, middle, end)?);
        } else {
            self.path(provider, m.checked_sub(k)?, middle, end, out)?;
            out.push(self.node(start, k)?);
        }
        Some(())
    }

    /// `SUBPROOF(m, D[start:end], b)`, appended to `out`, for `m ≤ n`.
    fn subproof(
        &self,
        provider: &dyn CryptoProvider,
        m: usize,
        start: usize,
        end: usize,
        b: bool,
        out: &mut Vec<Hash>,
    ) -> Option<()> {
        let n = end.checked_sub(start)?;
        if m >= n {
            if !b {
                out.push(self.range_root(provider, start, end)?);
            }
            return Some(());
        }
        let k = split_point(n);
        let middle = start.checked_add(k)?;
        if m <= k {
            self.subproof(provider, m, start, middle, b, out)?;
            out.push(self.range_root(provider, middle, end)?);
        } else {
            self.subproof(provider, m.checked_sub(k)?, middle, end, false, out)?;
            out.push(self.node(start, k)?);
        }
        Some(())
    }

    /// The root of the whole log.
    pub fn root(&self, provider: &dyn CryptoProvider) -> Hash {
        let n = self.leaf_hashes().len();
        self.range_root(provider, 0, n)
            .unwrap_or_else(|| root(provider, self.leaf_hashes()))
    }

    /// The root of the log's first `size` leaves.
    pub fn root_at(&self, provider: &dyn CryptoProvider, size: u64) -> Result<Hash, ProofError> {
        let n = self.prefix_len(size)?;
        Ok(self
            .range_root(provider, 0, n)
            .unwrap_or_else(|| root(provider, self.prefix(n))))
    }

    /// The inclusion proof of leaf `index` in the log's first `size` leaves.
    pub fn inclusion_proof(
        &self,
        provider: &dyn CryptoProvider,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, ProofError> {
        let n = self.prefix_len(size)?;
        let m = usize::try_from(index)
            .ok()
            .filter(|m| *m < n)
            .ok_or(ProofError::IndexOutOfRange { index, size })?;
        let mut out = Vec::new();
        match self.path(provider, m, 0, n, &mut out) {
            Some(()) => Ok(out),
            None => inclusion_proof(provider, self.prefix(n), index),
        }
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
        let n = self.prefix_len(new_size)?;
        let m = self.prefix_len(old_size)?;
        let mut out = Vec::new();
        if m == 0 {
            return Ok(out);
        }
        match self.subproof(provider, m, 0, n, true, &mut out) {
            Some(()) => Ok(out),
            None => consistency_proof(provider, self.prefix(n), old_size),
        }
    }
}
