//! History tests: RFC 6962/9162 reference vectors, exhaustive properties of
//! the Merkle proofs over every tree up to 64 leaves, content addressing and
//! signed tree heads. Every hashing test runs against every provider.

use alloc::vec::Vec;

use ed25519_dalek::SigningKey;

use super::merkle::{self, Hash, MerkleLog, ProofError};
use super::objects::{ObjectError, ObjectHash, ObjectKind, Transition, verify_object};
use super::tree_head::{SignedTreeHead, TREE_HEAD_LABEL, TreeHead, TreeHeadError, check_newer};
use super::{ChainError, History, transition_leaf_hash};
use crate::crypto::{CryptoProvider, all_providers};
use crate::hex;

fn h(text: &str) -> Hash {
    hex::decode_array::<32>(text).unwrap()
}

// ---------------------------------------------------------------------------
// Reference vectors.
//
// The Certificate Transparency reference leaves and the roots, inclusion and
// consistency proofs over them, as pinned by transparency-dev/merkle
// `proof/verify_test.go` (commit 02194e9afb6c1d95b5381350007963aa70fff472;
// the same values as google/certificate-transparency's C++ merkle tests).
// Leaf numbers in that file are 1-based; below they are 0-based indices.
// ---------------------------------------------------------------------------

const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `ROOTS[n - 1]` is the root of the first `n` leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (0-based leaf index, tree size, audit path).
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, consistency proof).
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn reference_leaves(p: &dyn CryptoProvider) -> Vec<Hash> {
    LEAVES
        .iter()
        .map(|leaf| merkle::leaf_hash(p, &hex::decode(leaf).unwrap()))
        .collect()
}

fn reference_root(size: u64) -> Hash {
    h(ROOTS[usize::try_from(size).unwrap() - 1])
}

fn hashes(texts: &[&str]) -> Vec<Hash> {
    texts.iter().map(|t| h(t)).collect()
}

#[test]
fn empty_tree_and_leaf_hashing_match_rfc() {
    for &p in all_providers() {
        assert_eq!(merkle::empty_root(p), h(EMPTY_ROOT), "{}", p.name());
        assert_eq!(merkle::root(p, &[]), h(EMPTY_ROOT), "{}", p.name());
        // The root of the one-leaf tree over "" is its leaf hash SHA-256(0x00).
        assert_eq!(merkle::leaf_hash(p, b""), h(ROOTS[0]), "{}", p.name());
        assert_eq!(MerkleLog::new().root(p), h(EMPTY_ROOT));
    }
}

#[test]
fn reference_roots_for_every_size() {
    for &p in all_providers() {
        let leaves = reference_leaves(p);
        let log = MerkleLog::from_leaf_hashes(p, leaves.clone());
        for size in 1..=8u64 {
            let n = usize::try_from(size).unwrap();
            assert_eq!(
                merkle::root(p, &leaves[..n]),
                reference_root(size),
                "{} size {size}",
                p.name()
            );
            assert_eq!(log.root_at(p, size).unwrap(), reference_root(size));
        }
        assert_eq!(log.root_at(p, 0).unwrap(), h(EMPTY_ROOT));
        assert_eq!(
            log.root_at(p, 9),
            Err(ProofError::SizeOutOfRange {
                size: 9,
                available: 8
            })
        );
    }
}

#[test]
fn reference_inclusion_proofs_are_produced_and_verified() {
    for &p in all_providers() {
        let leaves = reference_leaves(p);
        let log = MerkleLog::from_leaf_hashes(p, leaves.clone());
        for &(index, size, proof) in INCLUSION {
            let proof = hashes(proof);
            let root = reference_root(size);
            let leaf = leaves[usize::try_from(index).unwrap()];
            assert_eq!(
                log.inclusion_proof(p, index, size).unwrap(),
                proof,
                "{} {index}/{size}",
                p.name()
            );
            merkle::verify_inclusion(p, &leaf, index, size, &proof, &root).unwrap();
            assert_inclusion_tampering_refused(p, &leaf, index, size, &proof, &root);
        }
    }
}

#[test]
fn reference_consistency_proofs_are_produced_and_verified() {
    for &p in all_providers() {
        let log = MerkleLog::from_leaf_hashes(p, reference_leaves(p));
        for &(old_size, new_size, proof) in CONSISTENCY {
            let proof = hashes(proof);
            let (old_root, new_root) = (reference_root(old_size), reference_root(new_size));
            assert_eq!(
                log.consistency_proof(p, old_size, new_size).unwrap(),
                proof,
                "{} {old_size}->{new_size}",
                p.name()
            );
            merkle::verify_consistency(p, old_size, new_size, &old_root, &new_root, &proof)
                .unwrap();
            assert_consistency_tampering_refused(
                p, old_size, new_size, &old_root, &new_root, &proof,
            );
        }
    }
}

/// (old size, new size, old root, new root, proof, accepted).
type ConsistencyCase<'a> = (u64, u64, Hash, Hash, &'a [Hash], bool);

/// The edge cases of transparency-dev/merkle's `TestVerifyInclusion` and
/// `TestVerifyConsistency`.
#[test]
fn reference_edge_cases() {
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    let empty = h(EMPTY_ROOT);
    let (root1, root2) = ([1u8; 32], [2u8; 32]);
    for &p in all_providers() {
        for (index, size) in [(0, 0), (1, 0), (2, 1)] {
            assert_eq!(
                merkle::verify_inclusion(p, &some, index, size, &[], &empty),
                Err(ProofError::IndexOutOfRange { index, size })
            );
        }
        assert!(merkle::verify_inclusion(p, &some, 0, 1, &[], &empty).is_err());
        // A one-leaf tree's root is its leaf hash, with an empty proof.
        let leaf = merkle::leaf_hash(p, b"data");
        merkle::verify_inclusion(p, &leaf, 0, 1, &[], &leaf).unwrap();
        assert!(merkle::verify_inclusion(p, &leaf, 0, 1, &[], &empty).is_err());

        let cases: &[ConsistencyCase<'_>] = &[
            (0, 0, root1, root2, &[], false),
            (1, 1, root1, root2, &[], false),
            // Sizes that are always consistent.
            (0, 0, root1, root1, &[], true),
            (0, 1, root1, root2, &[], true),
            (1, 1, root2, root2, &[], true),
            // Time travel to the past.
            (1, 0, root1, root2, &[], false),
            (2, 1, root1, root2, &[], false),
            // Empty proof.
            (1, 2, root1, root2, &[], false),
            // Roots don't match.
            (0, 0, empty, root2, &[], false),
            (1, 1, empty, root2, &[], false),
            // Roots match but the proof is not empty.
            (0, 0, empty, empty, &[empty], false),
            (0, 1, empty, empty, &[empty], false),
            (1, 1, empty, empty, &[empty], false),
        ];
        for &(old_size, new_size, old_root, new_root, proof, ok) in cases {
            let result =
                merkle::verify_consistency(p, old_size, new_size, &old_root, &new_root, proof);
            assert_eq!(result.is_ok(), ok, "{old_size}->{new_size}: {result:?}");
        }
        assert_eq!(
            merkle::verify_consistency(p, 2, 1, &root1, &root2, &[]),
            Err(ProofError::SizesOutOfOrder {
                old_size: 2,
                new_size: 1
            })
        );
    }
}

// ---------------------------------------------------------------------------
// Exhaustive properties over every tree of 1..=64 leaves.
// ---------------------------------------------------------------------------

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[bit / 8 % 32] ^= 1 << (bit % 8);
    out
}

fn assert_inclusion_tampering_refused(
    p: &dyn CryptoProvider,
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) {
    let refused = |leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash, what: &str| {
        assert!(
            merkle::verify_inclusion(p, leaf, index, size, proof, root).is_err(),
            "{} accepted {what} for leaf {index} of {size}",
            p.name()
        );
    };
    refused(&flip(leaf, 3), index, size, proof, root, "a tampered leaf");
    refused(
        leaf,
        index,
        size,
        proof,
        &flip(root, 100),
        "a tampered root",
    );
    refused(leaf, index, size, proof, &h(EMPTY_ROOT), "the empty root");
    for i in 0..proof.len() {
        for bit in [0, 131, 255] {
            let mut tampered = proof.to_vec();
            tampered[i] = flip(&tampered[i], bit);
            refused(leaf, index, size, &tampered, root, "a tampered proof node");
        }
    }
    if let Some((_, shorter)) = proof.split_last() {
        refused(leaf, index, size, shorter, root, "a truncated proof");
    }
    let mut longer = proof.to_vec();
    longer.push(*root);
    refused(
        leaf,
        index,
        size,
        &longer,
        root,
        "a proof with a trailing node",
    );
    let mut prefixed = Vec::from([*root]);
    prefixed.extend_from_slice(proof);
    refused(
        leaf,
        index,
        size,
        &prefixed,
        root,
        "a proof with a leading node",
    );
    // A different index changes the path's directions, so the root.
    for other in [index.wrapping_sub(1), index + 1, index ^ 2] {
        if other != index {
            refused(leaf, other, size, proof, root, "a tampered index");
        }
    }
    // Sizes that change the tree's shape (RFC 9162 alone does not bind the
    // size to the root; the signed tree head does).
    refused(leaf, index, size * 2, proof, root, "a doubled size");
    if size / 2 != size {
        refused(leaf, index, size / 2, proof, root, "a halved size");
    }
}

fn assert_consistency_tampering_refused(
    p: &dyn CryptoProvider,
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) {
    let refused = |old_size: u64,
                   new_size: u64,
                   old_root: &Hash,
                   new_root: &Hash,
                   proof: &[Hash],
                   what: &str| {
        assert!(
            merkle::verify_consistency(p, old_size, new_size, old_root, new_root, proof).is_err(),
            "{} accepted {what} for {old_size}->{new_size}",
            p.name()
        );
    };
    // An empty tree is a prefix of every tree: its proof binds no root.
    if old_size != 0 {
        refused(
            old_size,
            new_size,
            &flip(old_root, 7),
            new_root,
            proof,
            "a tampered old root",
        );
        refused(
            old_size,
            new_size,
            old_root,
            &flip(new_root, 200),
            proof,
            "a tampered new root",
        );
    }
    if proof.is_empty() {
        refused(
            old_size,
            new_size,
            old_root,
            new_root,
            &[*old_root],
            "a trailing node",
        );
        return;
    }
    if old_root != new_root {
        refused(
            old_size,
            new_size,
            new_root,
            old_root,
            proof,
            "swapped roots",
        );
    }
    refused(
        old_size,
        new_size,
        old_root,
        new_root,
        &[],
        "an empty proof",
    );
    for i in 0..proof.len() {
        for bit in [4, 130, 255] {
            let mut tampered = proof.to_vec();
            tampered[i] = flip(&tampered[i], bit);
            refused(
                old_size,
                new_size,
                old_root,
                new_root,
                &tampered,
                "a tampered proof node",
            );
        }
    }
    if let Some((_, shorter)) = proof.split_last() {
        refused(
            old_size,
            new_size,
            old_root,
            new_root,
            shorter,
            "a truncated proof",
        );
    }
    for extra in [*old_root, *new_root] {
        let mut longer = proof.to_vec();
        longer.push(extra);
        refused(
            old_size,
            new_size,
            old_root,
            new_root,
            &longer,
            "a trailing node",
        );
        let mut prefixed = Vec::from([extra]);
        prefixed.extend_from_slice(proof);
        refused(
            old_size,
            new_size,
            old_root,
            new_root,
            &prefixed,
            "a leading node",
        );
    }
    refused(
        old_size,
        new_size * 2,
        old_root,
        new_root,
        proof,
        "a doubled new size",
    );
    refused(
        old_size,
        new_size / 2,
        old_root,
        new_root,
        proof,
        "a halved new size",
    );
    for other in [old_size - 1, old_size + 1, old_size ^ 2] {
        if other != old_size {
            refused(
                other,
                new_size,
                old_root,
                new_root,
                proof,
                "a tampered old size",
            );
        }
    }
}

fn synthetic_leaves(p: &dyn CryptoProvider, n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| merkle::leaf_hash(p, &u32::try_from(i).unwrap().to_be_bytes()))
        .collect()
}

const MAX_SIZE: u64 = 64;

#[test]
fn every_inclusion_proof_verifies_and_tampering_is_refused() {
    for &p in all_providers() {
        let leaves = synthetic_leaves(p, 64);
        let log = MerkleLog::from_leaf_hashes(p, leaves.clone());
        for size in 1..=MAX_SIZE {
            let root = log.root_at(p, size).unwrap();
            for index in 0..size {
                let proof = log.inclusion_proof(p, index, size).unwrap();
                let leaf = leaves[usize::try_from(index).unwrap()];
                merkle::verify_inclusion(p, &leaf, index, size, &proof, &root)
                    .unwrap_or_else(|e| panic!("{} leaf {index} of {size}: {e}", p.name()));
                assert_inclusion_tampering_refused(p, &leaf, index, size, &proof, &root);
            }
            assert_eq!(
                log.inclusion_proof(p, size, size),
                Err(ProofError::IndexOutOfRange { index: size, size })
            );
        }
    }
}

#[test]
fn every_prefix_is_consistent_with_every_longer_log() {
    for &p in all_providers() {
        let log = MerkleLog::from_leaf_hashes(p, synthetic_leaves(p, 64));
        let roots: Vec<Hash> = (0..=MAX_SIZE).map(|n| log.root_at(p, n).unwrap()).collect();
        for new_size in 0..=MAX_SIZE {
            let new_root = &roots[usize::try_from(new_size).unwrap()];
            for old_size in 0..=new_size {
                let old_root = &roots[usize::try_from(old_size).unwrap()];
                let proof = log.consistency_proof(p, old_size, new_size).unwrap();
                merkle::verify_consistency(p, old_size, new_size, old_root, new_root, &proof)
                    .unwrap_or_else(|e| panic!("{} {old_size}->{new_size}: {e}", p.name()));
                assert_consistency_tampering_refused(
                    p, old_size, new_size, old_root, new_root, &proof,
                );
            }
            assert_eq!(
                log.consistency_proof(p, new_size + 1, new_size),
                Err(ProofError::SizesOutOfOrder {
                    old_size: new_size + 1,
                    new_size
                })
            );
        }
    }
}

#[test]
fn a_log_that_rewrote_history_is_inconsistent() {
    for &p in all_providers() {
        let honest = synthetic_leaves(p, 20);
        for changed in 0..20 {
            let mut forked = honest.clone();
            forked[changed] = merkle::leaf_hash(p, b"rewritten");
            let forked = MerkleLog::from_leaf_hashes(p, forked);
            let honest_log = MerkleLog::from_leaf_hashes(p, honest.clone());
            for old_size in u64::try_from(changed).unwrap() + 1..=20 {
                let old_root = honest_log.root_at(p, old_size).unwrap();
                let proof = forked.consistency_proof(p, old_size, 20).unwrap();
                assert!(
                    merkle::verify_consistency(p, old_size, 20, &old_root, &forked.root(p), &proof)
                        .is_err()
                );
            }
        }
    }
}

#[test]
fn proof_errors_display() {
    let text = alloc::format!("{}", ProofError::IndexOutOfRange { index: 3, size: 2 });
    assert_eq!(text, "leaf index 3 is out of range for tree size 2");
    let text = alloc::format!("{}", ProofError::WrongProofLength { len: 4 });
    assert!(text.contains("4 nodes"), "{text}");
}

// ---------------------------------------------------------------------------
// Content-addressed objects.
// ---------------------------------------------------------------------------

#[test]
fn transition_encoding_is_fixed() {
    for &p in all_providers() {
        let manifest = ObjectHash::of(p, b"{\"Policies\":{}}");
        let first = Transition {
            manifest,
            previous: None,
        };
        let bytes = first.encode();
        assert_eq!(&bytes[..32], manifest.as_bytes());
        assert_eq!(&bytes[32..], &[0u8; 32]);
        assert_eq!(Transition::decode(&bytes).unwrap(), first);
        assert_eq!(first.hash(p), ObjectHash::of(p, &bytes));

        let second = Transition {
            manifest: ObjectHash::of(p, b"m2"),
            previous: Some(first.hash(p)),
        };
        let bytes = second.encode();
        assert_eq!(&bytes[32..], first.hash(p).as_bytes());
        assert_eq!(Transition::decode(&bytes).unwrap(), second);
        assert_eq!(
            Transition::decode_verified(p, &second.hash(p), &bytes).unwrap(),
            second
        );
    }
}

#[test]
fn transition_decoding_refuses_wrong_lengths() {
    let bytes = [5u8; 65];
    for len in [0, 1, 32, 63, 65] {
        assert!(
            matches!(
                Transition::decode(&bytes[..len]),
                Err(ObjectError::Malformed {
                    kind: ObjectKind::Transition,
                    ..
                })
            ),
            "{len}"
        );
    }
    Transition::decode(&bytes[..64]).unwrap();
}

#[test]
fn tampered_objects_are_detected_by_their_hash() {
    for &p in all_providers() {
        let manifest = b"{\"Policies\":{\"abc\":{}}}".to_vec();
        let address = ObjectHash::of(p, &manifest);
        verify_object(p, ObjectKind::Manifest, &address, &manifest).unwrap();
        for i in 0..manifest.len() {
            let mut tampered = manifest.clone();
            tampered[i] ^= 0x20;
            let err = verify_object(p, ObjectKind::Manifest, &address, &tampered).unwrap_err();
            assert_eq!(
                err,
                ObjectError::HashMismatch {
                    kind: ObjectKind::Manifest,
                    expected: address,
                    actual: ObjectHash::of(p, &tampered),
                }
            );
        }
        let mut longer = manifest.clone();
        longer.push(b' ');
        assert!(verify_object(p, ObjectKind::Manifest, &address, &longer).is_err());

        let policy = b"initdata";
        let err = verify_object(p, ObjectKind::Policy, &address, policy).unwrap_err();
        let text = alloc::format!("{err}");
        assert!(
            text.starts_with("policy hash mismatch: expected "),
            "{text}"
        );
        assert!(text.contains(&hex::encode(address.as_bytes())), "{text}");
        assert!(
            text.contains(&hex::encode(ObjectHash::of(p, policy).as_bytes())),
            "{text}"
        );

        let transition = Transition {
            manifest: address,
            previous: None,
        };
        let mut bytes = transition.encode();
        bytes[40] ^= 1;
        assert!(matches!(
            Transition::decode_verified(p, &transition.hash(p), &bytes),
            Err(ObjectError::HashMismatch {
                kind: ObjectKind::Transition,
                ..
            })
        ));
    }
}

#[test]
fn object_kinds_name_their_store_directory() {
    assert_eq!(ObjectKind::Manifest.dir(), "manifests");
    assert_eq!(ObjectKind::Policy.dir(), "policies");
    assert_eq!(ObjectKind::Transition.dir(), "transitions");
}

// ---------------------------------------------------------------------------
// Signed tree heads.
// ---------------------------------------------------------------------------

fn history_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn sample_head() -> TreeHead {
    TreeHead {
        size: 0x0102_0304_0506_0708,
        root: [0xab; 32],
        generation: 9,
        seedshares: [0xcd; 32],
    }
}

#[test]
fn tree_head_encoding_is_fixed() {
    let head = sample_head();
    let bytes = head.encode();
    assert_eq!(bytes.len(), 100);
    assert_eq!(&bytes[..20], b"accord tree head v2\0");
    assert_eq!(&bytes[..20], TREE_HEAD_LABEL);
    assert_eq!(&bytes[20..28], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&bytes[28..60], &[0xab; 32]);
    assert_eq!(&bytes[60..68], &[0, 0, 0, 0, 0, 0, 0, 9]);
    assert_eq!(&bytes[68..], &[0xcd; 32]);
    assert_eq!(TreeHead::decode(&bytes).unwrap(), head);

    let mut wrong_label = bytes;
    wrong_label[0] ^= 1;
    assert_eq!(
        TreeHead::decode(&wrong_label),
        Err(TreeHeadError::WrongLabel)
    );
    assert!(matches!(
        TreeHead::decode(&bytes[..99]),
        Err(TreeHeadError::Malformed(_))
    ));
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(
        TreeHead::decode(&longer),
        Err(TreeHeadError::Malformed(_))
    ));
}

#[test]
fn signed_tree_head_round_trips() {
    let key = history_key();
    let signed = sample_head().sign(&key);
    assert_eq!(signed.verify(&key.verifying_key()).unwrap(), sample_head());
    let bytes = signed.encode();
    assert_eq!(bytes.len(), 164);
    assert_eq!(&bytes[..100], &sample_head().encode());
    let decoded = SignedTreeHead::decode(&bytes).unwrap();
    assert_eq!(decoded, signed);
    assert_eq!(decoded.verify(&key.verifying_key()).unwrap(), sample_head());
    assert!(SignedTreeHead::decode(&bytes[..163]).is_err());
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(SignedTreeHead::decode(&longer).is_err());
}

#[test]
fn signed_tree_head_refuses_wrong_key_and_tampering() {
    let key = history_key();
    let public = key.verifying_key();
    let signed = sample_head().sign(&key);
    let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
    assert_eq!(signed.verify(&other), Err(TreeHeadError::BadSignature));

    let mut tampered = signed;
    tampered.head.size += 1;
    assert_eq!(tampered.verify(&public), Err(TreeHeadError::BadSignature));
    let mut tampered = signed;
    tampered.head.generation -= 1;
    assert_eq!(tampered.verify(&public), Err(TreeHeadError::BadSignature));
    let mut tampered = signed;
    tampered.head.root[31] ^= 1;
    assert_eq!(tampered.verify(&public), Err(TreeHeadError::BadSignature));
    // The seed-share record it names cannot be swapped.
    let mut tampered = signed;
    tampered.head.seedshares[0] ^= 1;
    assert_eq!(tampered.verify(&public), Err(TreeHeadError::BadSignature));
    for i in [0, 31, 32, 63] {
        let mut tampered = signed;
        tampered.signature[i] ^= 1;
        assert_eq!(tampered.verify(&public), Err(TreeHeadError::BadSignature));
    }
    // Every bit of the encoding is covered by the signature.
    let bytes = signed.encode();
    for i in 20..164 {
        let mut tampered = bytes;
        tampered[i] ^= 0x80;
        let decoded = SignedTreeHead::decode(&tampered).unwrap();
        assert_eq!(
            decoded.verify(&public),
            Err(TreeHeadError::BadSignature),
            "{i}"
        );
    }
}

#[test]
fn check_newer_accepts_only_forward_consistent_heads() {
    for &p in all_providers() {
        let log = MerkleLog::from_leaf_hashes(p, synthetic_leaves(p, 12));
        let head = |size: u64, generation: u64| TreeHead {
            size,
            root: log.root_at(p, size).unwrap(),
            generation,
            seedshares: [1; 32],
        };
        let proof = |old: u64, new: u64| log.consistency_proof(p, old, new).unwrap();

        // The same head again, and every extension.
        check_newer(p, &head(5, 5), &head(5, 5), &[]).unwrap();
        for new in 5..=12 {
            check_newer(p, &head(5, 5), &head(new, new), &proof(5, new)).unwrap();
        }
        check_newer(p, &head(0, 0), &head(12, 12), &[]).unwrap();

        // Older generation.
        assert_eq!(
            check_newer(p, &head(5, 5), &head(7, 4), &proof(5, 7)),
            Err(TreeHeadError::OlderGeneration {
                seen: 5,
                offered: 4
            })
        );
        // Smaller log.
        assert_eq!(
            check_newer(p, &head(7, 7), &head(5, 7), &[]),
            Err(TreeHeadError::SmallerLog {
                seen: 7,
                offered: 5
            })
        );
        // Same size, different root.
        let mut forked = head(7, 8);
        forked.root[0] ^= 1;
        assert!(matches!(
            check_newer(p, &head(7, 7), &forked, &[]),
            Err(TreeHeadError::Inconsistent(ProofError::RootMismatch))
        ));
        // A log that does not extend the old one.
        let mut other = synthetic_leaves(p, 12);
        other[2] = merkle::leaf_hash(p, b"rewritten");
        let other = MerkleLog::from_leaf_hashes(p, other);
        let rewritten = TreeHead {
            size: 9,
            root: other.root_at(p, 9).unwrap(),
            generation: 9,
            seedshares: [1; 32],
        };
        assert!(matches!(
            check_newer(
                p,
                &head(5, 5),
                &rewritten,
                &other.consistency_proof(p, 5, 9).unwrap()
            ),
            Err(TreeHeadError::Inconsistent(_))
        ));
        // A proof for other sizes.
        assert!(matches!(
            check_newer(p, &head(5, 5), &head(9, 9), &proof(4, 9)),
            Err(TreeHeadError::Inconsistent(_))
        ));
    }
}

// ---------------------------------------------------------------------------
// The history: transitions and the log together.
// ---------------------------------------------------------------------------

#[test]
fn history_chains_transitions_and_logs_them() {
    for &p in all_providers() {
        let manifests: Vec<ObjectHash> = (0..5u8).map(|i| ObjectHash::of(p, &[i])).collect();
        let mut history = History::new();
        let records = ObjectHash([4; 32]);
        assert_eq!(history.tree_head(p, &records).root, h(EMPTY_ROOT));
        let mut previous = None;
        let mut heads = Vec::new();
        for (i, manifest) in manifests.iter().enumerate() {
            let (transition, address) = history.append(p, *manifest);
            assert_eq!(transition.manifest, *manifest);
            assert_eq!(transition.previous, previous);
            assert_eq!(address, transition.hash(p));
            assert_eq!(history.latest(), Some(address));
            assert_eq!(history.generation(), u64::try_from(i).unwrap() + 1);
            // The transition is the log's newest leaf, provably included.
            let head = history.tree_head(p, &records);
            let index = head.size - 1;
            let leaf = transition_leaf_hash(p, &address);
            let proof = history.log().inclusion_proof(p, index, head.size).unwrap();
            merkle::verify_inclusion(p, &leaf, index, head.size, &proof, &head.root).unwrap();
            previous = Some(address);
            heads.push(head);
        }
        // A client that rebuilds the history from the manifests agrees.
        let rebuilt = History::from_manifests(p, &manifests);
        assert_eq!(rebuilt, history);
        // Every head it saw is followed consistently by every later one.
        for (i, old) in heads.iter().enumerate() {
            for new in &heads[i..] {
                let proof = history
                    .log()
                    .consistency_proof(p, old.size, new.size)
                    .unwrap();
                check_newer(p, old, new, &proof).unwrap();
            }
        }
        // Signed by the history key, verified by a client.
        let key = history_key();
        let signed = history.tree_head(p, &records).sign(&key);
        assert_eq!(
            signed.verify(&key.verifying_key()).unwrap(),
            history.tree_head(p, &records)
        );
    }
}

#[test]
fn stored_transitions_must_form_a_chain() {
    for &p in all_providers() {
        let manifests: Vec<ObjectHash> = (0..4u8).map(|i| ObjectHash::of(p, &[i])).collect();
        let mut history = History::new();
        let transitions: Vec<Transition> =
            manifests.iter().map(|m| history.append(p, *m).0).collect();
        assert_eq!(History::from_transitions(p, &transitions).unwrap(), history);
        assert_eq!(History::from_transitions(p, &[]).unwrap(), History::new());

        // Dropped, reordered and re-pointed transitions are refused.
        let mut dropped = transitions.clone();
        dropped.remove(1);
        assert!(matches!(
            History::from_transitions(p, &dropped),
            Err(ChainError::BrokenLink { index: 1, .. })
        ));
        let mut swapped = transitions.clone();
        swapped.swap(2, 3);
        assert!(History::from_transitions(p, &swapped).is_err());
        let mut rooted = transitions.clone();
        rooted[0].previous = Some(ObjectHash([1; 32]));
        let err = History::from_transitions(p, &rooted).unwrap_err();
        assert_eq!(
            err,
            ChainError::BrokenLink {
                index: 0,
                expected: None,
                found: Some(ObjectHash([1; 32])),
            }
        );
        let text = alloc::format!("{err}");
        assert!(
            text.starts_with("transition 0 breaks the chain: previous should be none, is 0101"),
            "{text}"
        );
    }
}

/// A small deterministic fuzz run of the `history` fuzz target's entry
/// point, including extreme sizes: nothing panics or hangs.
#[test]
fn hostile_inputs_do_not_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..4000u64 {
        let len = usize::try_from(next() % 300).unwrap();
        let mut data: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        if let Some(first) = data.first_mut() {
            *first = u8::try_from(round % 4).unwrap();
        }
        // Extreme sizes half of the time.
        if round % 2 == 0 && data.len() >= 17 {
            data[1..17].copy_from_slice(&[0xff; 16]);
        }
        crate::internal::fuzz_history(&data);
    }
    for &p in all_providers() {
        let nodes = [[3u8; 32]; 64];
        for (a, b) in [
            (u64::MAX - 1, u64::MAX),
            (u64::MAX, u64::MAX),
            (1, u64::MAX),
            (0, u64::MAX),
        ] {
            assert!(merkle::verify_inclusion(p, &[0; 32], a, b, &nodes, &[1; 32]).is_err());
            assert!(merkle::verify_consistency(p, a, b, &[0; 32], &[1; 32], &nodes).is_err());
        }
    }
}

/// RFC 9162 proofs do not bind the tree size to the root (documented in
/// `merkle`): the proof for leaf 0 of 3 also checks out for 4 leaves against
/// the 3-leaf root. The signed tree head is what binds them.
#[test]
fn the_signed_head_binds_the_size_the_proof_does_not() {
    for &p in all_providers() {
        let log = MerkleLog::from_leaf_hashes(p, synthetic_leaves(p, 4));
        let root3 = log.root_at(p, 3).unwrap();
        let proof = log.inclusion_proof(p, 0, 3).unwrap();
        let leaf = log.leaf_hashes()[0];
        merkle::verify_inclusion(p, &leaf, 0, 3, &proof, &root3).unwrap();
        merkle::verify_inclusion(p, &leaf, 0, 4, &proof, &root3).unwrap();

        let key = history_key();
        let mut signed = TreeHead {
            size: 3,
            root: root3,
            generation: 3,
            seedshares: [1; 32],
        }
        .sign(&key);
        signed.head.size = 4;
        assert_eq!(
            signed.verify(&key.verifying_key()),
            Err(TreeHeadError::BadSignature)
        );
    }
}
