//! Known-answer tests run against every provider.

use super::*;
use crate::hex;

fn h(text: &str) -> alloc::vec::Vec<u8> {
    hex::decode(text).unwrap()
}

#[test]
fn hashes_match_known_answers() {
    for p in all_providers() {
        assert_eq!(
            p.sha256(&[b"a", b"bc"]).to_vec(),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            "{}",
            p.name()
        );
        assert_eq!(
            p.sha384(&[b"abc"]).to_vec(),
            h(
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
            ),
            "{}",
            p.name()
        );
        assert_eq!(
            p.sha512(&[b"ab", b"c"]).to_vec(),
            h(
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
            ),
            "{}",
            p.name()
        );
    }
}

#[test]
fn hkdf_matches_rfc5869_case_1() {
    let ikm = h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    let salt = h("000102030405060708090a0b0c");
    let info = h("f0f1f2f3f4f5f6f7f8f9");
    let expected =
        h("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    for p in all_providers() {
        let mut out = [0u8; 42];
        let (a, b) = info.split_at(3);
        p.hkdf_sha256(&salt, &ikm, &[a, b], &mut out).unwrap();
        assert_eq!(out.to_vec(), expected, "{}", p.name());
        let mut too_long = alloc::vec![0u8; 255 * 32 + 1];
        assert_eq!(
            p.hkdf_sha256(&salt, &ikm, &[], &mut too_long),
            Err(CryptoError::BadLength),
            "{}",
            p.name()
        );
    }
}

#[test]
fn ecdsa_rejects_malformed_inputs_without_panicking() {
    for p in all_providers() {
        for curve in [EcCurve::P256, EcCurve::P384] {
            let key = alloc::vec![4u8; curve.point_len()];
            let sig = alloc::vec![1u8; curve.signature_len()];
            assert!(
                p.verify_ecdsa(curve, &key, b"m", &sig).is_err(),
                "{}",
                p.name()
            );
            assert!(
                p.verify_ecdsa(curve, &[], b"m", &sig).is_err(),
                "{}",
                p.name()
            );
            assert!(
                p.verify_ecdsa(curve, &key, b"m", &sig[1..]).is_err(),
                "{}",
                p.name()
            );
            assert!(
                p.verify_ecdsa_prehash(curve, &key, b"short", &sig).is_err(),
                "{}",
                p.name()
            );
        }
        let tiny = RsaPublicKey {
            modulus: &[0xff; 128],
            exponent: &[1, 0, 1],
        };
        assert_eq!(
            p.verify_rsa_pss_sha384(tiny, b"m", &[0; 128]),
            Err(CryptoError::UnsupportedKeySize)
        );
    }
}
