//! Known-answer vectors for every derivation of the seed engine.
//!
//! Inputs: seed = bytes `0x00..=0x3f`, salt = bytes `0x40..=0x5f`, workload
//! secret id `apps/v1/StatefulSet/default/coordinator`.
//!
//! How they were produced: computed once with this implementation AND
//! independently with Python's `cryptography` 48.0.0 (OpenSSL): HKDF with
//! `cryptography`'s `HKDF(SHA256)`, the Ed25519 public key with
//! `Ed25519PrivateKey.from_private_bytes`, the root CA scalar with Python
//! integers (`d = c % (n - 1) + 1`) and its public point with
//! `derive_private_key(d, SECP384R1())`. Both agreed byte for byte. The
//! script, verbatim:
//!
//! ```text
//! from cryptography.hazmat.primitives.kdf.hkdf import HKDF
//! from cryptography.hazmat.primitives import hashes, serialization
//! from cryptography.hazmat.primitives.asymmetric import ec, ed25519
//! seed = bytes(range(0x00, 0x40)); salt = bytes(range(0x40, 0x60))
//! def hkdf(ikm, info, n): return HKDF(hashes.SHA256(), n, salt, info).derive(ikm)
//! pod = hkdf(seed, b"accord/v1 pod state secret", 64)
//! wid = b"apps/v1/StatefulSet/default/coordinator"
//! wl = hkdf(pod, b"accord/v1 workload secret id:" + wid, 64)
//! hs = hkdf(seed, b"accord/v1 history signing key", 32)
//! hpub = ed25519.Ed25519PrivateKey.from_private_bytes(hs).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
//! c = int.from_bytes(hkdf(seed, b"accord/v1 root CA key", 56), "big")
//! n = 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973
//! d = c % (n - 1) + 1
//! rpub = ec.derive_private_key(d, ec.SECP384R1()).public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
//! for k, v in [("POD_STATE_SECRET", pod), ("WORKLOAD_SECRET", wl), ("HISTORY_SIGNING_SEED", hs), ("HISTORY_SIGNING_PUBLIC", hpub), ("ROOT_CA_SCALAR", d.to_bytes(48, "big")), ("ROOT_CA_PUBLIC", rpub)]:
//!     print(k, v.hex())
//! ```
//!
//! The tests run against every provider in [`crate::crypto::all_providers`].

use super::{
    MeshCaKey, P384_SCALAR_LEN, ROOT_CA_CANDIDATE_LEN, Salt, SecretSeed, SeedEngine,
    reduce_root_scalar,
};
use crate::crypto::{CryptoError, SecureRandom, all_providers};
use crate::hex;

const WORKLOAD_SECRET_ID: &str = "apps/v1/StatefulSet/default/coordinator";
const POD_STATE_SECRET: &str = "1a47b8aaf5623935b6d1ba6dcdff2953d3bf8170b0b559bfd4204e865b5376cd2b2e3988d45a3985951451da5e7172aceb937e0be25399cb9efb3ca79e08cfd7";
const WORKLOAD_SECRET: &str = "a6431f54e1d780c38e060be2a8a3c4fc1726138cd9e3673d7f6447a1315357d4d1cff7c163d99874317639af97a55813d2aa95b9f17901c59a5860cb8feb6ece";
const HISTORY_SIGNING_SEED: &str =
    "15b54b4336a3b617cac0a0e2a79bbb7a4fb293e414e99961da2ed5d36c612770";
const HISTORY_SIGNING_PUBLIC: &str =
    "5c76ae3db2955e3fcec266417cf87222f355934f1c4c36665720e2825e0219b7";
const ROOT_CA_SCALAR: &str = "08191f080dee401d5ec958f751d559eff8b92347c45e994243f4b5c609c03b391c0eafc3b5d8e221f144b7401df25245";
const ROOT_CA_PUBLIC: &str = "04096d837ba74266a2d8a778e428e84a3c5253acb04481eb38943e1a1d4a61a4aafb3bd8aa48beba2de0aa9d60747dc748c5adba3d31022bdfe09ed4452942d2c05d58d5b2ec8085ecb2fd021e45040b450ef464cc4a0956f9f38b6159a5a53e07";

fn seed() -> SecretSeed {
    let mut bytes = [0u8; 64];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8;
    }
    SecretSeed::from_bytes(bytes)
}

fn salt() -> Salt {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = 0x40 + i as u8;
    }
    Salt::from_bytes(bytes)
}

#[test]
fn kat_every_derivation_every_provider() {
    for provider in all_providers() {
        let engine = SeedEngine::new(seed(), salt(), *provider);
        let name = provider.name();
        assert_eq!(
            hex::encode(engine.pod_state_secret().unwrap().as_bytes()),
            POD_STATE_SECRET,
            "{name}"
        );
        assert_eq!(
            hex::encode(
                engine
                    .workload_secret(WORKLOAD_SECRET_ID)
                    .unwrap()
                    .as_bytes()
            ),
            WORKLOAD_SECRET,
            "{name}"
        );
        let history = engine.history_signing_key().unwrap();
        assert_eq!(
            hex::encode(history.as_bytes()),
            HISTORY_SIGNING_SEED,
            "{name}"
        );
        assert_eq!(
            hex::encode(history.verifying_key().as_bytes()),
            HISTORY_SIGNING_PUBLIC,
            "{name}"
        );
        let root = engine.root_ca_key().unwrap();
        assert_eq!(hex::encode(root.scalar_bytes()), ROOT_CA_SCALAR, "{name}");
        assert_eq!(
            hex::encode(root.public_key_sec1()),
            ROOT_CA_PUBLIC,
            "{name}"
        );
    }
}

/// The reduction `d = (c mod (n − 1)) + 1` at its edges (expected values
/// computed with Python integers).
#[test]
fn kat_root_scalar_reduction_edges() {
    const N_MINUS_1: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52972";
    let one = {
        let mut b = [0u8; P384_SCALAR_LEN];
        b[P384_SCALAR_LEN - 1] = 1;
        b
    };
    // c = 0 → 1.
    assert_eq!(reduce_root_scalar(&[0; ROOT_CA_CANDIDATE_LEN]), one);
    // c = n − 2 → n − 1; c = n − 1 → 1.
    let n_minus_1: [u8; P384_SCALAR_LEN] = hex::decode_array(N_MINUS_1).unwrap();
    let mut c = [0u8; ROOT_CA_CANDIDATE_LEN];
    c[ROOT_CA_CANDIDATE_LEN - P384_SCALAR_LEN..].copy_from_slice(&n_minus_1);
    assert_eq!(reduce_root_scalar(&c), one);
    c[ROOT_CA_CANDIDATE_LEN - 1] -= 1;
    assert_eq!(reduce_root_scalar(&c), n_minus_1);
    // c = 2^448 − 1.
    assert_eq!(
        hex::encode(&reduce_root_scalar(&[0xff; ROOT_CA_CANDIDATE_LEN])),
        "00000000000000000000000000000000389cb27e0bc8d220a7e5f24db74f58851313e695333ad68e0000000000000000"
    );
}

/// A deterministic "random" source replaying fixed chunks.
struct Replay(core::cell::RefCell<alloc::vec::Vec<[u8; 48]>>);

impl SecureRandom for Replay {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        let mut chunks = self.0.borrow_mut();
        if chunks.is_empty() {
            return Err(CryptoError::RandomFailed);
        }
        dest.copy_from_slice(&chunks.remove(0));
        Ok(())
    }
}

/// The mesh CA key takes the first draw that is a valid scalar: zero and
/// values ≥ n are skipped. With the root CA scalar replayed, the public
/// point is the pinned root CA point.
#[test]
fn kat_mesh_ca_rejection_sampling() {
    let scalar: [u8; 48] = hex::decode_array(ROOT_CA_SCALAR).unwrap();
    let rng = Replay(core::cell::RefCell::new(alloc::vec![
        [0; 48], [0xff; 48], scalar
    ]));
    let mesh = MeshCaKey::random(&rng).unwrap();
    assert_eq!(hex::encode(mesh.public_key_sec1()), ROOT_CA_PUBLIC);
    assert!(rng.0.borrow().is_empty());
    // A source that only yields invalid scalars runs out.
    let bad = Replay(core::cell::RefCell::new(alloc::vec![[0; 48]; 16]));
    assert!(MeshCaKey::random(&bad).is_err());
}
