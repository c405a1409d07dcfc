//! The tests' mesh: accord's own CA (accord-core) issues the workloads'
//! certificates, written as the initializer writes them
//! (`DIR/tls-config/certChain.pem` leaf then intermediate, `key.pem`,
//! `mesh-ca.pem`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use accord_core::ca::{Ca, WorkloadCertRequest};
use accord_core::crypto::{CryptoError, SecureRandom, default_provider};
use accord_core::der::write;
use accord_core::kdf::{MeshCaKey, Salt, SecretSeed, SeedEngine};
use accord_core::time::UnixTime;
use accord_core::x509::oid;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(dest).map_err(|_| CryptoError::RandomFailed)
    }
}

fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UnixTime(i64::try_from(secs).unwrap())
}

/// A mesh CA of its own (a fresh seed, a fresh mesh key).
pub fn new_ca() -> Ca {
    let root = SeedEngine::new(
        SecretSeed::generate(&OsRandom).unwrap(),
        Salt::generate(&OsRandom).unwrap(),
        default_provider(),
    )
    .root_ca_key()
    .unwrap();
    Ca::new(
        &root,
        MeshCaKey::random(&OsRandom).unwrap(),
        now(),
        &OsRandom,
    )
    .unwrap()
}

/// Writes a workload's files under `base/NAME`, its certificate (for
/// `sans`) issued by `ca`, the mesh CA `trusted` (which may be another
/// CA's); returns the directory.
pub fn workload(base: &Path, name: &str, ca: &Ca, sans: &[&str], trusted: &Ca) -> PathBuf {
    let dir = base.join(name);
    let tls = dir.join("tls-config");
    std::fs::create_dir_all(&tls).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let spki = write::seq(&[
        &write::seq(&[&write::oid(oid::EC_PUBLIC_KEY), &write::oid(oid::P256)]),
        &write::bits(pair.public_key().as_ref()),
    ]);
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let leaf = ca
        .issue(
            &WorkloadCertRequest {
                public_key_spki: &spki,
                sans: &sans,
                workload_secret_id: None,
                claims: None,
            },
            now(),
            &OsRandom,
        )
        .unwrap();
    let chain =
        write::pem("CERTIFICATE", &leaf) + &write::pem("CERTIFICATE", ca.intermediate_cert());
    std::fs::write(tls.join("certChain.pem"), chain).unwrap();
    std::fs::write(
        tls.join("key.pem"),
        write::pem("PRIVATE KEY", pkcs8.as_ref()),
    )
    .unwrap();
    std::fs::write(
        tls.join("mesh-ca.pem"),
        write::pem("CERTIFICATE", trusted.mesh_ca_cert()),
    )
    .unwrap();
    dir
}
