//! The pure-Rust provider: RustCrypto crates, `no_std`, no C.

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{CryptoError, CryptoProvider, EcCurve, RsaPublicKey};

/// The RustCrypto provider.
pub static PROVIDER: RustCrypto = RustCrypto;

/// Pure-Rust implementation of [`CryptoProvider`].
#[derive(Debug)]
pub struct RustCrypto;

fn digest_parts<D: Digest>(parts: &[&[u8]]) -> sha2::digest::Output<D> {
    let mut hasher = D::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

fn ecdsa_verify<C>(public_key: &[u8], digest: &[u8], signature: &[u8]) -> Result<(), CryptoError>
where
    C: ecdsa::EcdsaCurve + elliptic_curve::CurveArithmetic,
    ecdsa::SignatureSize<C>: elliptic_curve::array::ArraySize,
    elliptic_curve::AffinePoint<C>:
        elliptic_curve::sec1::FromSec1Point<C> + elliptic_curve::sec1::ToSec1Point<C>,
    elliptic_curve::FieldBytesSize<C>: elliptic_curve::sec1::ModulusSize,
{
    use ecdsa::signature::hazmat::PrehashVerifier;
    let key = ecdsa::VerifyingKey::<C>::from_sec1_bytes(public_key)
        .map_err(|_| CryptoError::BadPublicKey)?;
    let signature =
        ecdsa::Signature::<C>::from_slice(signature).map_err(|_| CryptoError::BadSignature)?;
    key.verify_prehash(digest, &signature)
        .map_err(|_| CryptoError::BadSignature)
}

impl CryptoProvider for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; 32] {
        digest_parts::<Sha256>(parts).into()
    }

    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48] {
        digest_parts::<Sha384>(parts).into()
    }

    fn sha512(&self, parts: &[&[u8]]) -> [u8; 64] {
        digest_parts::<Sha512>(parts).into()
    }

    fn verify_ecdsa(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        match curve {
            EcCurve::P256 => {
                self.verify_ecdsa_prehash(curve, public_key, &self.sha256(&[message]), signature)
            }
            EcCurve::P384 => {
                self.verify_ecdsa_prehash(curve, public_key, &self.sha384(&[message]), signature)
            }
        }
    }

    fn verify_ecdsa_prehash(
        &self,
        curve: EcCurve,
        public_key: &[u8],
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        if digest.len() != curve.field_len() || signature.len() != curve.signature_len() {
            return Err(CryptoError::BadLength);
        }
        match curve {
            EcCurve::P256 => ecdsa_verify::<p256::NistP256>(public_key, digest, signature),
            EcCurve::P384 => ecdsa_verify::<p384::NistP384>(public_key, digest, signature),
        }
    }

    fn verify_rsa_pss_sha384(
        &self,
        key: RsaPublicKey<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        use rsa::BoxedUint;
        use rsa::signature::Verifier;
        let bits = key.modulus.len().saturating_mul(8);
        if !(2048..=8192).contains(&bits) {
            return Err(CryptoError::UnsupportedKeySize);
        }
        let precision = u32::try_from(bits).map_err(|_| CryptoError::UnsupportedKeySize)?;
        let n = BoxedUint::from_be_slice(key.modulus, precision)
            .map_err(|_| CryptoError::BadPublicKey)?;
        let e = BoxedUint::from_be_slice_vartime(key.exponent);
        let public = rsa::PublicKey::new(n, e).map_err(|_| CryptoError::BadPublicKey)?;
        let verifier = rsa::pss::VerifyingKey::<Sha384>::new(public);
        let signature =
            rsa::pss::Signature::try_from(signature).map_err(|_| CryptoError::BadSignature)?;
        verifier
            .verify(message, &signature)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn hkdf_sha256(
        &self,
        salt: &[u8],
        ikm: &[u8],
        info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand_multi_info(info, out)
            .map_err(|_| CryptoError::BadLength)
    }
}
