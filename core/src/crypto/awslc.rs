//! The fast provider: aws-lc-rs (AWS-LC, C and assembly). Chosen over ring
//! because it verifies P-384 faster here and can verify a prehashed ECDSA
//! digest (see BENCHMARKS.md for the comparison).

use aws_lc_rs::{digest, hkdf, signature};

use super::{CryptoError, CryptoProvider, EcCurve, RsaPublicKey};

/// The aws-lc-rs provider.
pub static PROVIDER: AwsLc = AwsLc;

/// aws-lc-rs implementation of [`CryptoProvider`].
#[derive(Debug)]
pub struct AwsLc;

fn digest_parts(algorithm: &'static digest::Algorithm, parts: &[&[u8]], out: &mut [u8]) {
    let mut context = digest::Context::new(algorithm);
    for part in parts {
        context.update(part);
    }
    let value = context.finish();
    for (slot, byte) in out.iter_mut().zip(value.as_ref()) {
        *slot = *byte;
    }
}

fn ecdsa_algorithm(curve: EcCurve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
        EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
    }
}

struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl CryptoProvider for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut out = [0u8; 32];
        digest_parts(&digest::SHA256, parts, &mut out);
        out
    }

    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48] {
        let mut out = [0u8; 48];
        digest_parts(&digest::SHA384, parts, &mut out);
        out
    }

    fn sha512(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut out = [0u8; 64];
        digest_parts(&digest::SHA512, parts, &mut out);
        out
    }

    fn verify_ecdsa(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if public_key.len() != curve.point_len() {
            return Err(CryptoError::BadPublicKey);
        }
        if signature.len() != curve.signature_len() {
            return Err(CryptoError::BadLength);
        }
        signature::UnparsedPublicKey::new(ecdsa_algorithm(curve), public_key)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn verify_ecdsa_prehash(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        digest_value: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if public_key.len() != curve.point_len() {
            return Err(CryptoError::BadPublicKey);
        }
        if signature.len() != curve.signature_len() {
            return Err(CryptoError::BadLength);
        }
        let algorithm = match curve {
            EcCurve::P256 => &digest::SHA256,
            EcCurve::P384 => &digest::SHA384,
        };
        let imported = digest::Digest::import_less_safe(digest_value, algorithm)
            .map_err(|_| CryptoError::BadLength)?;
        signature::UnparsedPublicKey::new(ecdsa_algorithm(curve), public_key)
            .verify_digest(&imported, signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn verify_rsa_pss_sha384(
        &self,
        key: RsaPublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let bits = key.modulus.len().saturating_mul(8);
        if !(2048..=8192).contains(&bits) {
            return Err(CryptoError::UnsupportedKeySize);
        }
        signature::RsaPublicKeyComponents {
            n: key.modulus,
            e: key.exponent,
        }
        .verify(&signature::RSA_PSS_2048_8192_SHA384, message, signature)
        .map_err(|_| CryptoError::BadSignature)
    }

    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
        let okm = prk
            .expand(info, OkmLen(out.len()))
            .map_err(|_| CryptoError::BadLength)?;
        okm.fill(out).map_err(|_| CryptoError::BadLength)
    }
}
