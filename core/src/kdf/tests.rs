//! Hygiene and separation tests for the seed engine.

use alloc::format;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{
    KdfError, MeshCaKey, PodStateSecret, RootCaKey, Salt, SecretSeed, SeedEngine, WorkloadSecret,
};
use crate::crypto::{CryptoError, SecureRandom, all_providers, default_provider};
use crate::hex;

fn engine(seed_byte: u8, salt_byte: u8) -> SeedEngine<'static> {
    SeedEngine::new(
        SecretSeed::from_bytes([seed_byte; 64]),
        Salt::from_bytes([salt_byte; 32]),
        default_provider(),
    )
}

/// A counter-based byte source (not random; enough to exercise the API).
struct Counter(core::cell::Cell<u8>);

impl SecureRandom for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        for b in dest {
            let v = self.0.get();
            *b = v;
            self.0.set(v.wrapping_add(1));
        }
        Ok(())
    }
}

fn assert_zeroize_on_drop<T: Zeroize + ZeroizeOnDrop>() {}

#[test]
fn every_secret_type_zeroizes_on_drop() {
    assert_zeroize_on_drop::<SecretSeed>();
    assert_zeroize_on_drop::<Salt>();
    assert_zeroize_on_drop::<PodStateSecret>();
    assert_zeroize_on_drop::<WorkloadSecret>();
    assert_zeroize_on_drop::<RootCaKey>();
    assert_zeroize_on_drop::<MeshCaKey>();
    fn on_drop<T: ZeroizeOnDrop>() {}
    on_drop::<SeedEngine<'static>>();
    // The keys handed out as library types wipe themselves too.
    on_drop::<ed25519_dalek::SigningKey>();
    on_drop::<p384::ecdsa::SigningKey>();
}

#[test]
fn zeroize_clears_the_bytes() {
    let engine = engine(7, 9);
    let mut seed = SecretSeed::from_bytes([0xab; 64]);
    seed.zeroize();
    assert_eq!(seed.as_bytes(), &[0; 64]);
    let mut pod = engine.pod_state_secret().unwrap();
    assert_ne!(pod.as_bytes(), &[0; 64]);
    pod.zeroize();
    assert_eq!(pod.as_bytes(), &[0; 64]);
    let mut workload = engine.workload_secret("w").unwrap();
    assert_ne!(workload.as_bytes(), &[0; 64]);
    workload.zeroize();
    assert_eq!(workload.as_bytes(), &[0; 64]);
    let mut root = engine.root_ca_key().unwrap();
    assert_ne!(root.scalar_bytes(), &[0; 48]);
    root.zeroize();
    assert_eq!(root.scalar_bytes(), &[0; 48]);
    let mut mesh = MeshCaKey::random(&Counter(core::cell::Cell::new(1))).unwrap();
    assert_ne!(mesh.scalar_bytes(), &[0; 48]);
    mesh.zeroize();
    assert_eq!(mesh.scalar_bytes(), &[0; 48]);
}

#[test]
fn debug_prints_no_secret() {
    let engine = engine(0x5a, 0x3c);
    let pod = engine.pod_state_secret().unwrap();
    let workload = engine.workload_secret("apps/v1/x").unwrap();
    let root = engine.root_ca_key().unwrap();
    let mesh = MeshCaKey::random(&Counter(core::cell::Cell::new(3))).unwrap();
    let cases = [
        (
            format!("{:?}", engine.seed()),
            hex::encode(engine.seed().as_bytes()),
        ),
        (
            format!("{:?}", engine.salt()),
            hex::encode(engine.salt().as_bytes()),
        ),
        (format!("{pod:?}"), hex::encode(pod.as_bytes())),
        (format!("{workload:?}"), hex::encode(workload.as_bytes())),
        (format!("{root:?}"), hex::encode(root.scalar_bytes())),
        (format!("{mesh:?}"), hex::encode(mesh.scalar_bytes())),
        (format!("{engine:?}"), hex::encode(engine.seed().as_bytes())),
        (
            format!("{engine:#?}"),
            hex::encode(engine.seed().as_bytes()),
        ),
    ];
    for (printed, secret) in &cases {
        assert!(printed.ends_with("(<redacted>)"), "{printed}");
        // No 4-byte window of the secret appears in hex.
        for window in secret.as_bytes().chunks(8) {
            let window = core::str::from_utf8(window).unwrap();
            assert!(!printed.contains(window), "{printed} leaks {window}");
        }
    }
    assert_eq!(format!("{:?}", engine.seed()), "SecretSeed(<redacted>)");
    assert_eq!(format!("{root:?}"), "RootCaKey(<redacted>)");
}

#[test]
fn empty_workload_secret_id_is_refused() {
    for provider in all_providers() {
        let engine = SeedEngine::new(
            SecretSeed::from_bytes([1; 64]),
            Salt::from_bytes([2; 32]),
            *provider,
        );
        assert_eq!(
            engine.workload_secret("").unwrap_err(),
            KdfError::EmptyWorkloadSecretId
        );
    }
}

#[test]
fn different_ids_give_different_secrets() {
    let engine = engine(1, 2);
    let a = engine.workload_secret("a").unwrap();
    let b = engine.workload_secret("b").unwrap();
    let a2 = engine.workload_secret("a").unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert_eq!(a.as_bytes(), a2.as_bytes());
    // The workload secret is not the pod-state secret.
    assert_ne!(a.as_bytes(), engine.pod_state_secret().unwrap().as_bytes());
}

#[test]
fn different_salts_and_seeds_give_different_keys() {
    let base = engine(1, 2);
    for other in [engine(1, 3), engine(4, 2)] {
        assert_ne!(
            base.pod_state_secret().unwrap().as_bytes(),
            other.pod_state_secret().unwrap().as_bytes()
        );
        assert_ne!(
            base.workload_secret("w").unwrap().as_bytes(),
            other.workload_secret("w").unwrap().as_bytes()
        );
        assert_ne!(
            base.history_signing_key().unwrap().verifying_key(),
            other.history_signing_key().unwrap().verifying_key()
        );
        assert_ne!(
            base.root_ca_key().unwrap().public_key_sec1(),
            other.root_ca_key().unwrap().public_key_sec1()
        );
    }
}

#[test]
fn derivations_are_separated_by_label() {
    let engine = engine(1, 2);
    let pod = engine.pod_state_secret().unwrap();
    let history = engine.history_signing_key().unwrap();
    let root = engine.root_ca_key().unwrap();
    assert_ne!(&pod.as_bytes()[..32], history.as_bytes());
    assert_ne!(&pod.as_bytes()[..48], root.scalar_bytes());
    assert_ne!(&history.as_bytes()[..], &root.scalar_bytes()[..32]);
}

#[test]
fn ca_keys_sign_and_verify() {
    use p384::ecdsa::signature::Signer;
    let root = engine(1, 2).root_ca_key().unwrap();
    let mesh = MeshCaKey::random(&Counter(core::cell::Cell::new(9))).unwrap();
    for (public, signing) in [
        (root.public_key_sec1(), root.signing_key().unwrap()),
        (mesh.public_key_sec1(), mesh.signing_key().unwrap()),
    ] {
        let sig: p384::ecdsa::Signature = signing.sign(b"accord");
        for provider in all_providers() {
            provider
                .verify_ecdsa(
                    crate::crypto::EcCurve::P384,
                    public,
                    b"accord",
                    &sig.to_bytes(),
                )
                .unwrap();
        }
    }
    let again = MeshCaKey::from_scalar_bytes(*mesh.scalar_bytes()).unwrap();
    assert_eq!(again.public_key_sec1(), mesh.public_key_sec1());
    assert_eq!(
        MeshCaKey::from_scalar_bytes([0; 48]).unwrap_err(),
        KdfError::InvalidScalar
    );
}

#[test]
fn generate_uses_the_source() {
    let rng = Counter(core::cell::Cell::new(0));
    let seed = SecretSeed::generate(&rng).unwrap();
    let salt = Salt::generate(&rng).unwrap();
    assert_eq!(seed.as_bytes()[63], 63);
    assert_eq!(salt.as_bytes()[0], 64);
}
