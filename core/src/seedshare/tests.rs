//! Seed share tests: threshold behaviour over every subset for n ≤ 5, the
//! Feldman check naming bad shares, HPKE sealing bound to owner, index and
//! commitments, strict encodings, serde round trips and secret hygiene.

use alloc::format;
use alloc::vec::Vec;
use core::cell::Cell;

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hpke::{Deserializable, Kem as _, Serializable};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{
    CHUNK_LEN, Commitments, SHARE_LEN, SeedShareDocument, SeedShareError, Share,
    interpolate_at_zero, open, owner_public_key, reconstruct, seed_from_secrets, split,
    verify_share,
};
use crate::crypto::{CryptoError, CryptoProvider, SecureRandom, default_provider};
use crate::hex;
use crate::kdf::{Salt, SecretSeed};
use crate::manifest::SeedshareKey;

/// A deterministic byte stream: SHA-256(label ‖ block counter) blocks.
/// Not random; reproducible, and distinct per label.
struct TestRng {
    label: u64,
    counter: Cell<u64>,
    /// Fills left before every fill fails (`None`: never fails).
    fails_after: Cell<Option<usize>>,
}

impl TestRng {
    fn new(label: u64) -> Self {
        Self {
            label,
            counter: Cell::new(0),
            fails_after: Cell::new(None),
        }
    }

    fn failing_after(label: u64, fills: usize) -> Self {
        let rng = Self::new(label);
        rng.fails_after.set(Some(fills));
        rng
    }
}

impl SecureRandom for TestRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        match self.fails_after.get() {
            Some(0) => return Err(CryptoError::RandomFailed),
            Some(n) => self.fails_after.set(Some(n - 1)),
            None => {}
        }
        for block in dest.chunks_mut(32) {
            let n = self.counter.get();
            self.counter.set(n + 1);
            let out = provider().sha256(&[
                b"seedshare test rng",
                &self.label.to_le_bytes(),
                &n.to_le_bytes(),
            ]);
            block.copy_from_slice(&out[..block.len()]);
        }
        Ok(())
    }
}

fn provider() -> &'static dyn CryptoProvider {
    default_provider()
}

fn test_seed(label: u8) -> SecretSeed {
    let mut bytes = [0u8; 64];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = label.wrapping_mul(31).wrapping_add(i as u8).wrapping_mul(7);
    }
    SecretSeed::from_bytes(bytes)
}

fn salt() -> Salt {
    Salt::from_bytes([0x5a; 32])
}

/// The X25519 secret key of test owner `i`.
fn owner_secret(i: usize) -> [u8; 32] {
    provider().sha256(&[b"seedshare test owner", &(i as u64).to_le_bytes()])
}

fn owners(n: usize) -> Vec<SeedshareKey> {
    (0..n).map(|i| owner_public_key(&owner_secret(i))).collect()
}

/// Splits `test_seed(1)` k-of-n and opens every share.
fn split_and_open(n: usize, k: u8, rng_label: u64) -> (SeedShareDocument, Vec<Share>) {
    let doc = split(
        &test_seed(1),
        &salt(),
        &owners(n),
        k,
        provider(),
        &TestRng::new(rng_label),
    )
    .unwrap();
    let shares = doc
        .shares
        .iter()
        .enumerate()
        .map(|(i, sealed)| open(sealed, &doc.commitments, &owner_secret(i), provider()).unwrap())
        .collect();
    (doc, shares)
}

fn subset(shares: &[Share], mask: u32) -> Vec<Share> {
    shares
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, s)| s.clone())
        .collect()
}

#[test]
fn every_k_subset_reconstructs_and_no_smaller_one_does() {
    let seed = test_seed(1);
    for n in 1..=5usize {
        for k in 1..=n as u8 {
            let (doc, shares) = split_and_open(n, k, (n * 10) as u64 + u64::from(k));
            assert_eq!(doc.version, 1);
            assert_eq!(doc.salt, [0x5a; 32]);
            assert_eq!(doc.commitments.threshold, k);
            assert_eq!(doc.shares.len(), n);
            for (i, (sealed, share)) in doc.shares.iter().zip(&shares).enumerate() {
                assert_eq!(usize::from(sealed.index), i + 1);
                assert_eq!(usize::from(share.index), i + 1);
                assert_eq!(sealed.owner, owner_public_key(&owner_secret(i)));
                assert_eq!(sealed.ciphertext.len(), SHARE_LEN + 16);
            }
            for mask in 0u32..(1 << n) {
                let mut chosen = subset(&shares, mask);
                let size = chosen.len();
                if size == usize::from(k) {
                    let got = reconstruct(&doc.commitments, &chosen).unwrap();
                    assert_eq!(got.as_bytes(), seed.as_bytes(), "n={n} k={k} mask={mask:b}");
                    chosen.reverse();
                    let got = reconstruct(&doc.commitments, &chosen).unwrap();
                    assert_eq!(got.as_bytes(), seed.as_bytes(), "reversed, mask={mask:b}");
                } else if size + 1 == usize::from(k) {
                    assert_eq!(
                        reconstruct(&doc.commitments, &chosen).unwrap_err(),
                        SeedShareError::NotEnoughShares {
                            have: size,
                            need: k
                        },
                    );
                    if k >= 2 {
                        // Interpolating k − 1 shares gives unrelated scalars:
                        // no chunk of the seed comes out.
                        let secrets = interpolate_at_zero(&chosen).unwrap();
                        for (secret, chunk) in
                            secrets.iter().zip(seed.as_bytes().chunks_exact(CHUNK_LEN))
                        {
                            assert_ne!(&secret.to_bytes()[..CHUNK_LEN], chunk);
                        }
                        assert!(!matches!(
                            seed_from_secrets(&secrets),
                            Ok(s) if s.as_bytes() == seed.as_bytes()
                        ));
                    }
                }
            }
        }
    }
}

#[test]
fn more_than_k_shares_use_the_first_k() {
    let (doc, shares) = split_and_open(5, 3, 7);
    let got = reconstruct(&doc.commitments, &shares).unwrap();
    assert_eq!(got.as_bytes(), test_seed(1).as_bytes());
}

#[test]
fn threshold_one_lets_each_owner_recover_alone() {
    let (doc, shares) = split_and_open(4, 1, 8);
    for share in &shares {
        let got = reconstruct(&doc.commitments, core::slice::from_ref(share)).unwrap();
        assert_eq!(got.as_bytes(), test_seed(1).as_bytes());
    }
}

#[test]
fn no_shares_are_not_enough() {
    let (doc, _) = split_and_open(2, 1, 9);
    assert_eq!(
        reconstruct(&doc.commitments, &[]).unwrap_err(),
        SeedShareError::NotEnoughShares { have: 0, need: 1 }
    );
}

#[test]
fn a_corrupted_value_is_named() {
    let (doc, shares) = split_and_open(5, 3, 11);
    for chunk in 0..4 {
        for byte in [0, 15, 16, 30] {
            let mut bad = shares[1].clone();
            bad.values[chunk][byte] ^= 0x01;
            assert_eq!(
                verify_share(&doc.commitments, &bad).unwrap_err(),
                SeedShareError::BadShare { index: 2 }
            );
            let given = [shares[0].clone(), bad.clone(), shares[2].clone()];
            assert_eq!(
                reconstruct(&doc.commitments, &given).unwrap_err(),
                SeedShareError::BadShare { index: 2 }
            );
            // Also when the bad share is beyond the first k.
            let given = [shares[0].clone(), shares[2].clone(), shares[3].clone(), bad];
            assert_eq!(
                reconstruct(&doc.commitments, &given).unwrap_err(),
                SeedShareError::BadShare { index: 2 }
            );
        }
    }
    for share in &shares {
        verify_share(&doc.commitments, share).unwrap();
    }
}

#[test]
fn a_changed_index_is_named() {
    let (doc, shares) = split_and_open(5, 3, 12);
    for new_index in [0u8, 1, 3, 6, 255] {
        let mut moved = shares[1].clone();
        moved.index = new_index;
        assert_eq!(
            verify_share(&doc.commitments, &moved).unwrap_err(),
            SeedShareError::BadShare { index: new_index }
        );
        let given = [shares[3].clone(), shares[4].clone(), moved];
        assert_eq!(
            reconstruct(&doc.commitments, &given).unwrap_err(),
            SeedShareError::BadShare { index: new_index }
        );
    }
}

#[test]
fn duplicate_indices_are_refused() {
    let (doc, shares) = split_and_open(3, 2, 13);
    let given = [shares[0].clone(), shares[0].clone(), shares[1].clone()];
    assert_eq!(
        reconstruct(&doc.commitments, &given).unwrap_err(),
        SeedShareError::DuplicateIndex(1)
    );
}

#[test]
fn shares_from_another_sharing_fail_the_check() {
    let (doc_a, shares_a) = split_and_open(3, 2, 14);
    let (doc_b, _) = split_and_open(3, 2, 15);
    assert_ne!(doc_a.commitments, doc_b.commitments);
    assert_eq!(
        verify_share(&doc_b.commitments, &shares_a[0]).unwrap_err(),
        SeedShareError::BadShare { index: 1 }
    );
}

#[test]
fn nonzero_padding_is_refused() {
    // A hand-made sharing (k = 1) whose secret scalars have byte 31 = 1.
    let mut values = [[0u8; 32]; 4];
    for (j, value) in values.iter_mut().enumerate() {
        *value = [j as u8 + 1; 32];
        value[31] = 1;
    }
    let commitments = Commitments {
        threshold: 1,
        points: values.map(|v| {
            alloc::vec![
                RistrettoPoint::mul_base(&Scalar::from_canonical_bytes(v).unwrap())
                    .compress()
                    .to_bytes()
            ]
        }),
    };
    let share = Share { index: 1, values };
    verify_share(&commitments, &share).unwrap();
    assert_eq!(
        reconstruct(&commitments, &[share]).unwrap_err(),
        SeedShareError::PaddingNotZero
    );
}

#[test]
fn the_committed_secret_is_padded_with_fresh_randomness() {
    let seed = test_seed(1);
    let (doc_a, _) = split_and_open(2, 2, 16);
    let (doc_b, _) = split_and_open(2, 2, 17);
    for ((a, b), chunk) in doc_a
        .commitments
        .points
        .iter()
        .zip(&doc_b.commitments.points)
        .zip(seed.as_bytes().chunks_exact(CHUNK_LEN))
    {
        // Same seed, different padding: different commitments to the secret.
        assert_ne!(a[0], b[0]);
        // And not the commitment to the bare 16 seed bytes.
        let mut bare = [0u8; 32];
        bare[..CHUNK_LEN].copy_from_slice(chunk);
        let bare = RistrettoPoint::mul_base(&Scalar::from_canonical_bytes(bare).unwrap());
        assert_ne!(a[0], bare.compress().to_bytes());
    }
}

#[test]
fn split_refuses_bad_owner_lists_and_thresholds() {
    let split_with = |owners: &[SeedshareKey], k: u8| {
        split(
            &test_seed(2),
            &salt(),
            owners,
            k,
            provider(),
            &TestRng::new(1),
        )
        .unwrap_err()
    };
    assert_eq!(split_with(&[], 1), SeedShareError::NoOwners);
    assert_eq!(
        split_with(&owners(3), 0),
        SeedShareError::ThresholdOutOfRange {
            threshold: 0,
            owners: 3
        }
    );
    assert_eq!(
        split_with(&owners(3), 4),
        SeedShareError::ThresholdOutOfRange {
            threshold: 4,
            owners: 3
        }
    );
    let mut dup = owners(3);
    dup.push(dup[1]);
    assert_eq!(
        split_with(&dup, 2),
        SeedShareError::DuplicateOwner { position: 3 }
    );
    let many: Vec<SeedshareKey> = (0..256u32)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            SeedshareKey(key)
        })
        .collect();
    assert_eq!(split_with(&many, 2), SeedShareError::TooManyOwners(256));
    // A low-order X25519 point (here 0) gives no shared secret.
    let mut low = owners(2);
    low.push(SeedshareKey([0; 32]));
    assert_eq!(
        split_with(&low, 2),
        SeedShareError::BadOwnerKey { position: 2 }
    );
}

#[test]
fn the_maximum_owner_count_is_accepted() {
    // 255 owners, threshold 1: the indices 1..=255 all fit.
    let owners: Vec<SeedshareKey> = (0..255)
        .map(|i| owner_public_key(&owner_secret(i)))
        .collect();
    let doc = split(
        &test_seed(3),
        &salt(),
        &owners,
        1,
        provider(),
        &TestRng::new(2),
    )
    .unwrap();
    assert_eq!(doc.shares.last().unwrap().index, 255);
    let share = open(
        doc.shares.last().unwrap(),
        &doc.commitments,
        &owner_secret(254),
        provider(),
    )
    .unwrap();
    assert_eq!(
        reconstruct(&doc.commitments, &[share]).unwrap().as_bytes(),
        test_seed(3).as_bytes()
    );
}

#[test]
fn randomness_failure_is_reported_not_ignored() {
    // Every fill fails: the padding draw fails.
    let rng = TestRng::failing_after(3, 0);
    let err = split(&test_seed(1), &salt(), &owners(2), 1, provider(), &rng).unwrap_err();
    assert_eq!(err, SeedShareError::Random);
    // The 4 padding fills succeed (k = 1: no coefficients); the first draw
    // HPKE makes through the rand_core adapter fails.
    let rng = TestRng::failing_after(3, 4);
    let err = split(&test_seed(1), &salt(), &owners(2), 1, provider(), &rng).unwrap_err();
    assert_eq!(err, SeedShareError::Random);
    // A failure in the coefficient draw.
    let rng = TestRng::failing_after(3, 5);
    let err = split(&test_seed(1), &salt(), &owners(2), 2, provider(), &rng).unwrap_err();
    assert_eq!(err, SeedShareError::Random);
}

#[test]
fn open_round_trips_for_each_owner() {
    let (doc, shares) = split_and_open(4, 2, 20);
    for (i, sealed) in doc.shares.iter().enumerate() {
        let share = open(sealed, &doc.commitments, &owner_secret(i), provider()).unwrap();
        assert_eq!(share.index, sealed.index);
        assert_eq!(*share.to_bytes(), *shares[i].to_bytes());
    }
}

#[test]
fn open_with_the_wrong_key_fails() {
    let (doc, _) = split_and_open(3, 2, 21);
    for (i, sealed) in doc.shares.iter().enumerate() {
        for j in 0..4 {
            if j != i {
                assert_eq!(
                    open(sealed, &doc.commitments, &owner_secret(j), provider()).unwrap_err(),
                    SeedShareError::Open
                );
                // Relabelled to the wrong key's owner, so that the HPKE
                // decryption itself is what refuses.
                let mut relabelled = sealed.clone();
                relabelled.owner = owner_public_key(&owner_secret(j));
                assert_eq!(
                    open(&relabelled, &doc.commitments, &owner_secret(j), provider()).unwrap_err(),
                    SeedShareError::Open
                );
            }
        }
    }
}

#[test]
fn open_refuses_tampering() {
    let (doc, _) = split_and_open(3, 2, 22);
    let c = &doc.commitments;
    let secret = owner_secret(1);
    let sealed = &doc.shares[1];
    open(sealed, c, &secret, provider()).unwrap();
    for position in [0, 1, 64, SHARE_LEN - 1, SHARE_LEN, SHARE_LEN + 15] {
        let mut bad = sealed.clone();
        bad.ciphertext[position] ^= 0x80;
        assert_eq!(
            open(&bad, c, &secret, provider()).unwrap_err(),
            SeedShareError::Open
        );
    }
    let mut truncated = sealed.clone();
    truncated.ciphertext.pop();
    assert_eq!(
        open(&truncated, c, &secret, provider()).unwrap_err(),
        SeedShareError::Open
    );
    for position in [0, 17, 31] {
        let mut bad = sealed.clone();
        bad.encapsulated_key[position] ^= 0x04;
        assert_eq!(
            open(&bad, c, &secret, provider()).unwrap_err(),
            SeedShareError::Open
        );
    }
    // Relabelled as another owner's.
    let mut relabelled = sealed.clone();
    relabelled.owner = doc.shares[0].owner;
    assert_eq!(
        open(&relabelled, c, &secret, provider()).unwrap_err(),
        SeedShareError::Open
    );
    // Moved to another index (the aad binds it).
    for index in [1u8, 3, 4, 0] {
        let mut moved = sealed.clone();
        moved.index = index;
        assert_eq!(
            open(&moved, c, &secret, provider()).unwrap_err(),
            SeedShareError::Open
        );
    }
    // Under other commitments: another sharing, or the same points with
    // one changed.
    let (other, _) = split_and_open(3, 2, 23);
    assert_eq!(
        open(sealed, &other.commitments, &secret, provider()).unwrap_err(),
        SeedShareError::Open
    );
    let mut changed = c.clone();
    changed.points[3][1] = other.commitments.points[3][1];
    assert_eq!(
        open(sealed, &changed, &secret, provider()).unwrap_err(),
        SeedShareError::Open
    );
}

#[test]
fn owner_public_key_is_the_hpke_public_key() {
    type Kem = hpke::kem::X25519HkdfSha256;
    for i in 0..4 {
        let secret = owner_secret(i);
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret).unwrap();
        let pk = Kem::sk_to_pk(&sk);
        assert_eq!(owner_public_key(&secret).0, pk.to_bytes().as_slice());
    }
}

#[test]
fn commitments_encode_and_decode_strictly() {
    let (doc, _) = split_and_open(3, 3, 30);
    let c = &doc.commitments;
    let encoded = c.encode();
    assert_eq!(encoded.len(), 2 + 4 * 3 * 32);
    assert_eq!(encoded[..2], [1, 3]);
    assert_eq!(Commitments::decode(&encoded).unwrap(), *c);
    assert_eq!(c.hash(provider()), provider().sha256(&[&encoded]));

    let malformed = |bytes: &[u8]| {
        assert!(
            matches!(
                Commitments::decode(bytes),
                Err(SeedShareError::Malformed(_))
            ),
            "accepted {}",
            hex::encode(bytes)
        );
    };
    let mut trailing = encoded.clone();
    trailing.push(0);
    malformed(&trailing);
    malformed(&encoded[..encoded.len() - 1]);
    malformed(&encoded[..encoded.len() - 32]);
    malformed(&encoded[..2]);
    malformed(&encoded[..1]);
    malformed(&[]);
    let mut version = encoded.clone();
    version[0] = 2;
    malformed(&version);
    let mut zero = encoded.clone();
    zero[1] = 0;
    malformed(&zero);
    malformed(&[1, 0]);
    let mut wrong_k = encoded.clone();
    wrong_k[1] = 2;
    malformed(&wrong_k);
    // Not canonical field elements / not valid Ristretto encodings.
    for bad_point in [[0xff; 32], {
        let mut p = [0u8; 32];
        p[0] = 1; // s = 1 is "negative" (odd): refused
        p
    }] {
        for slot in [0, 5, 11] {
            let mut bad = encoded.clone();
            bad[2 + 32 * slot..2 + 32 * (slot + 1)].copy_from_slice(&bad_point);
            malformed(&bad);
        }
    }
    // A point whose encoding has the top bit set (non-canonical).
    let mut high = encoded.clone();
    high[2 + 31] |= 0x80;
    malformed(&high);
}

#[test]
fn inconsistent_commitments_are_refused() {
    let (doc, shares) = split_and_open(3, 2, 31);
    let mut short = doc.commitments.clone();
    short.points[2].pop();
    assert!(matches!(
        verify_share(&short, &shares[0]),
        Err(SeedShareError::Malformed(_))
    ));
    assert!(matches!(
        reconstruct(&short, &shares),
        Err(SeedShareError::Malformed(_))
    ));
    let mut zero = doc.commitments.clone();
    zero.threshold = 0;
    assert!(matches!(
        verify_share(&zero, &shares[0]),
        Err(SeedShareError::Malformed(_))
    ));
}

#[test]
fn document_round_trips_through_json_and_postcard() {
    let (doc, _) = split_and_open(3, 2, 40);
    let json = serde_json::to_string(&doc).unwrap();
    assert!(json.contains(&hex::encode(&doc.salt)), "{json}");
    assert!(json.contains(&hex::encode(&doc.shares[0].ciphertext)));
    assert!(json.contains(&hex::encode(&doc.shares[2].owner.0)));
    assert!(json.contains(&hex::encode(&doc.commitments.points[3][1])));
    let back: SeedShareDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(back, doc);

    let bytes = postcard::to_allocvec(&doc).unwrap();
    let back: SeedShareDocument = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, doc);

    // A document that went through JSON still opens.
    let share = open(
        &back.shares[0],
        &back.commitments,
        &owner_secret(0),
        provider(),
    )
    .unwrap();
    assert_eq!(share.index, 1);
}

#[test]
fn document_deserialization_is_strict() {
    let (doc, _) = split_and_open(2, 1, 41);
    let json: serde_json::Value = serde_json::to_value(&doc).unwrap();
    let refused = |value: &serde_json::Value| {
        assert!(
            serde_json::from_value::<SeedShareDocument>(value.clone()).is_err(),
            "accepted {value}"
        );
    };
    let mut v = json.clone();
    v["version"] = 2.into();
    refused(&v);
    let mut v = json.clone();
    v["extra"] = 1.into();
    refused(&v);
    let mut v = json.clone();
    v["commitments"]["points"].as_array_mut().unwrap().pop();
    refused(&v);
    let mut v = json.clone();
    v["commitments"]["points"][0][0] = hex::encode(&[0xff; 32]).into();
    refused(&v);
    let mut v = json.clone();
    v["commitments"]["threshold"] = 2.into();
    refused(&v);
    let mut v = json.clone();
    v["salt"] = "00".into();
    refused(&v);
    let mut v = json.clone();
    v["shares"][0]["ciphertext"] = "0g".into();
    refused(&v);
    let mut v = json;
    v["shares"][0]["owner"] = hex::encode(&[1; 31]).into();
    refused(&v);
}

#[test]
fn share_bytes_round_trip_strictly() {
    let (_, shares) = split_and_open(3, 2, 50);
    let bytes = shares[2].to_bytes();
    assert_eq!(bytes[0], 3);
    let back = Share::from_bytes(bytes.as_slice()).unwrap();
    assert_eq!(back.index, 3);
    assert_eq!(back.values, shares[2].values);
    let malformed = |b: &[u8]| {
        assert!(matches!(
            Share::from_bytes(b),
            Err(SeedShareError::Malformed(_))
        ));
    };
    malformed(&bytes[..SHARE_LEN - 1]);
    let mut long = bytes.to_vec();
    long.push(0);
    malformed(&long);
    malformed(&[]);
    let mut zero = *bytes;
    zero[0] = 0;
    malformed(&zero);
    let mut non_canonical = *bytes;
    non_canonical[1 + 32 * 2..1 + 32 * 3].copy_from_slice(&[0xff; 32]);
    malformed(&non_canonical);
}

fn assert_zeroize_on_drop<T: Zeroize + ZeroizeOnDrop>() {}

#[test]
fn share_zeroizes() {
    assert_zeroize_on_drop::<Share>();
    let (_, shares) = split_and_open(2, 2, 60);
    let mut share = shares[1].clone();
    assert_ne!(share.values, [[0; 32]; 4]);
    share.zeroize();
    assert_eq!(share.values, [[0; 32]; 4]);
    assert_eq!(share.index, 0);
}

#[test]
fn share_debug_prints_no_secret() {
    let (_, shares) = split_and_open(2, 2, 61);
    for share in &shares {
        for printed in [format!("{share:?}"), format!("{share:#?}")] {
            assert_eq!(
                printed,
                format!("Share {{ index: {}, values: <redacted> }}", share.index)
            );
            for value in &share.values {
                let secret = hex::encode(value);
                for window in secret.as_bytes().chunks(8) {
                    let window = core::str::from_utf8(window).unwrap();
                    assert!(!printed.contains(window), "{printed} leaks {window}");
                }
            }
        }
    }
}

#[test]
fn errors_display() {
    let cases = [
        (SeedShareError::BadShare { index: 7 }, "seed share 7 fails"),
        (
            SeedShareError::NotEnoughShares { have: 1, need: 2 },
            "1 seed shares given, 2 needed",
        ),
        (SeedShareError::DuplicateIndex(3), "index 3"),
        (SeedShareError::Open, "cannot open"),
        (
            SeedShareError::Malformed("x"),
            "malformed seed share data: x",
        ),
    ];
    for (err, text) in cases {
        assert!(format!("{err}").contains(text), "{err}");
    }
}
