//! The cached [`MerkleLog`] against the reference free functions of
//! [`merkle`]: byte-identical roots and proofs for every prefix, index and
//! old size of logs up to 300 leaves, a property test over larger logs, and
//! the number of hashes each operation costs (counted, not timed).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::merkle::{self, Hash, MerkleLog, ProofError};
use crate::crypto::rustcrypto::PROVIDER;
use crate::crypto::{CryptoError, CryptoProvider, EcCurve, RsaPublicKey};

fn leaves(p: &dyn CryptoProvider, n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(p, &u64::try_from(i).unwrap().to_le_bytes()))
        .collect()
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap()
}

/// Every root and proof of the log's prefixes equals the reference
/// computed over the same prefix of leaves.
fn assert_matches_reference(p: &dyn CryptoProvider, log: &MerkleLog, all: &[Hash]) {
    let size = log.size();
    assert_eq!(log.leaf_hashes(), all);
    assert_eq!(log.root(p), merkle::root(p, all));
    for n in 0..=all.len() {
        let prefix = &all[..n];
        let new_size = to_u64(n);
        assert_eq!(
            log.root_at(p, new_size),
            Ok(merkle::root(p, prefix)),
            "root at {n} of {size}"
        );
        for index in 0..=new_size {
            assert_eq!(
                log.inclusion_proof(p, index, new_size),
                merkle::inclusion_proof(p, prefix, index),
                "inclusion of {index} in {n} of {size}"
            );
        }
        for old_size in 0..=new_size {
            assert_eq!(
                log.consistency_proof(p, old_size, new_size),
                merkle::consistency_proof(p, prefix, old_size),
                "consistency {old_size} -> {n} of {size}"
            );
        }
    }
    // Sizes beyond the log.
    let beyond = size + 1;
    let out_of_range = ProofError::SizeOutOfRange {
        size: beyond,
        available: size,
    };
    assert_eq!(log.root_at(p, beyond), Err(out_of_range));
    assert_eq!(log.inclusion_proof(p, 0, beyond), Err(out_of_range));
    assert_eq!(log.consistency_proof(p, 0, beyond), Err(out_of_range));
    assert_eq!(
        log.consistency_proof(p, beyond, size),
        Err(ProofError::SizesOutOfOrder {
            old_size: beyond,
            new_size: size
        })
    );
}

#[test]
fn every_prefix_index_and_old_size_up_to_300_leaves_matches_the_reference() {
    let p: &dyn CryptoProvider = &PROVIDER;
    let all = leaves(p, 300);
    let mut log = MerkleLog::new();
    assert_matches_reference(p, &log, &[]);
    // Built one push at a time, the whole log agrees at every size...
    for (i, leaf) in all.iter().enumerate() {
        assert_eq!(log.push(p, *leaf), to_u64(i));
        assert_eq!(log.size(), to_u64(i + 1));
        assert_eq!(
            log.root(p),
            merkle::root(p, &all[..=i]),
            "root of {}",
            i + 1
        );
    }
    // ...and every prefix, index and old size of the full log agrees.
    assert_matches_reference(p, &log, &all);
    assert_eq!(MerkleLog::from_leaf_hashes(p, all.clone()), log);
}

#[test]
fn small_logs_match_the_reference_with_every_provider() {
    for &p in crate::crypto::all_providers() {
        for n in 0..=33 {
            let all = leaves(p, n);
            assert_matches_reference(p, &MerkleLog::from_leaf_hashes(p, all.clone()), &all);
        }
    }
}

#[test]
fn append_hashes_the_leaf_then_pushes_it() {
    let p: &dyn CryptoProvider = &PROVIDER;
    let mut appended = MerkleLog::new();
    let mut pushed = MerkleLog::new();
    for i in 0u32..20 {
        let data = i.to_be_bytes();
        assert_eq!(appended.append(p, &data), u64::from(i));
        pushed.push(p, merkle::leaf_hash(p, &data));
    }
    assert_eq!(appended, pushed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_prefixes_indices_and_old_sizes_match_the_reference(
        size in 1usize..2_500,
        picks in proptest::collection::vec((any::<u64>(), any::<u64>()), 1..6),
    ) {
        let p: &dyn CryptoProvider = &PROVIDER;
        let all = leaves(p, size);
        let log = MerkleLog::from_leaf_hashes(p, all.clone());
        prop_assert_eq!(log.root(p), merkle::root(p, &all));
        for (a, b) in picks {
            let n = usize::try_from(a % to_u64(size + 1)).unwrap();
            let prefix = &all[..n];
            let new_size = to_u64(n);
            let other = b % (new_size + 1);
            prop_assert_eq!(log.root_at(p, new_size), Ok(merkle::root(p, prefix)));
            prop_assert_eq!(
                log.inclusion_proof(p, other, new_size),
                merkle::inclusion_proof(p, prefix, other)
            );
            prop_assert_eq!(
                log.consistency_proof(p, other, new_size),
                merkle::consistency_proof(p, prefix, other)
            );
        }
    }
}

/// Counts SHA-256 calls and forwards everything to the pure-Rust provider.
struct Counting(AtomicUsize);

impl Counting {
    fn take(&self) -> usize {
        self.0.swap(0, Ordering::Relaxed)
    }
}

impl CryptoProvider for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        self.0.fetch_add(1, Ordering::Relaxed);
        PROVIDER.sha256(parts)
    }
    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48] {
        PROVIDER.sha384(parts)
    }
    fn sha512(&self, parts: &[&[u8]]) -> [u8; 64] {
        PROVIDER.sha512(parts)
    }
    fn verify_ecdsa(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        PROVIDER.verify_ecdsa(curve, public_key, message, signature)
    }
    fn verify_ecdsa_prehash(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        PROVIDER.verify_ecdsa_prehash(curve, public_key, digest, signature)
    }
    fn verify_rsa_pss_sha384(
        &self,
        key: RsaPublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        PROVIDER.verify_rsa_pss_sha384(key, message, signature)
    }
    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        PROVIDER.hkdf_sha256(salt, ikm, info, out)
    }
}

#[test]
fn operations_hash_logarithmically_many_nodes() {
    // 2^14 − 1 leaves: every level of the right edge is incomplete, the
    // worst case for hashing along it.
    let counting = Counting(AtomicUsize::new(0));
    let p: &dyn CryptoProvider = &counting;
    let n: u64 = (1 << 14) - 1;
    let mut log = MerkleLog::new();
    let mut most_per_push = 0;
    for i in 0..n {
        counting.take();
        log.push(p, [u8::try_from(i % 251).unwrap(); 32]);
        most_per_push = most_per_push.max(counting.take());
    }
    // A push completes at most one subtree per level.
    assert_eq!(most_per_push, 13);
    // The root: one hash per incomplete level of the right edge, where the
    // reference hashes every interior node.
    counting.take();
    let root = log.root(p);
    assert_eq!(counting.take(), 13);
    assert_eq!(merkle::root(p, log.leaf_hashes()), root);
    assert_eq!(counting.take(), usize::try_from(n).unwrap() - 1);
    // Proofs and roots of every kind of prefix stay within 14² hashes.
    let bound = 14 * 14;
    for size in [1, 2, 3, 1000, 4096, 4097, 8191, n] {
        log.root_at(p, size).unwrap();
        assert!(counting.take() <= 14, "root at {size}");
        for index in [0, size / 2, size - 1] {
            log.inclusion_proof(p, index, size).unwrap();
            assert!(counting.take() <= bound, "inclusion {index} of {size}");
        }
        for old in [1, size / 3, size - 1] {
            log.consistency_proof(p, old, size).unwrap();
            assert!(counting.take() <= bound, "consistency {old} -> {size}");
        }
    }
}
