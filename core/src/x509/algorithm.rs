//! Signature and public-key algorithms: parsing AlgorithmIdentifiers and
//! SubjectPublicKeyInfo, converting DER ECDSA signatures, and checking a
//! signature through the provider.

use crate::crypto::{CryptoProvider, EcCurve, RsaPublicKey};
use crate::der::{self, DerReader, tag};

use super::X509Error;
use super::oid;

/// The signature algorithms accord accepts on certificates and CRLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256 (Intel).
    EcdsaSha256,
    /// ecdsa-with-SHA384.
    EcdsaSha384,
    /// RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48, trailer 1 (AMD).
    RsaPssSha384,
}

/// A subject public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// An EC key: its curve and uncompressed SEC1 point.
    Ec {
        /// The named curve.
        curve: EcCurve,
        /// `04 ‖ X ‖ Y`.
        point: &'a [u8],
    },
    /// An RSA key.
    Rsa(RsaPublicKey<'a>),
}

/// Parses a hash AlgorithmIdentifier that must be SHA-384 (parameters absent
/// or NULL).
fn expect_sha384(contents: &[u8]) -> Result<(), X509Error> {
    let mut r = DerReader::new(contents);
    if !der::oid_is(r.expect(tag::OID)?, oid::SHA384) {
        return Err(X509Error::UnsupportedAlgorithm);
    }
    if r.optional(tag::NULL)?.is_some_and(|null| !null.is_empty()) {
        return Err(X509Error::UnsupportedAlgorithm);
    }
    r.finish()?;
    Ok(())
}

/// Checks RSASSA-PSS-params for exactly SHA-384 / MGF1-SHA-384 / salt 48 /
/// trailer 1.
fn expect_pss_sha384_params(contents: &[u8]) -> Result<(), X509Error> {
    let mut r = DerReader::new(contents);
    let hash = r.expect(tag::context_constructed(0))?;
    expect_sha384(der::single(hash, tag::SEQUENCE)?.contents)?;
    let mgf = r.expect(tag::context_constructed(1))?;
    let mut mgf = DerReader::new(der::single(mgf, tag::SEQUENCE)?.contents);
    if !der::oid_is(mgf.expect(tag::OID)?, oid::MGF1) {
        return Err(X509Error::UnsupportedAlgorithm);
    }
    expect_sha384(mgf.expect(tag::SEQUENCE)?)?;
    mgf.finish()?;
    let salt = r.expect(tag::context_constructed(2))?;
    if der::uint_u64(der::single(salt, tag::INTEGER)?.contents)? != 48 {
        return Err(X509Error::UnsupportedAlgorithm);
    }
    if let Some(trailer) = r.optional(tag::context_constructed(3))?
        && der::uint_u64(der::single(trailer, tag::INTEGER)?.contents)? != 1
    {
        return Err(X509Error::UnsupportedAlgorithm);
    }
    r.finish()?;
    Ok(())
}

impl SignatureAlgorithm {
    /// Parses the contents of a signature AlgorithmIdentifier.
    pub(crate) fn from_der(contents: &[u8]) -> Result<Self, X509Error> {
        let mut r = DerReader::new(contents);
        let algorithm = r.expect(tag::OID)?;
        let parsed = if der::oid_is(algorithm, oid::ECDSA_SHA256) {
            Self::EcdsaSha256
        } else if der::oid_is(algorithm, oid::ECDSA_SHA384) {
            Self::EcdsaSha384
        } else if der::oid_is(algorithm, oid::RSASSA_PSS) {
            expect_pss_sha384_params(r.expect(tag::SEQUENCE)?)?;
            Self::RsaPssSha384
        } else {
            return Err(X509Error::UnsupportedAlgorithm);
        };
        r.finish()?;
        Ok(parsed)
    }
}

impl<'a> PublicKey<'a> {
    /// Parses the contents of a SubjectPublicKeyInfo.
    pub(crate) fn from_spki(contents: &'a [u8]) -> Result<Self, X509Error> {
        let mut r = DerReader::new(contents);
        let mut algorithm = DerReader::new(r.expect(tag::SEQUENCE)?);
        let key_bits = der::bit_string_bytes(r.expect(tag::BIT_STRING)?)?;
        r.finish()?;
        let algorithm_oid = algorithm.expect(tag::OID)?;
        if der::oid_is(algorithm_oid, oid::EC_PUBLIC_KEY) {
            let curve_oid = algorithm.expect(tag::OID)?;
            algorithm.finish()?;
            let curve = if der::oid_is(curve_oid, oid::P256) {
                EcCurve::P256
            } else if der::oid_is(curve_oid, oid::P384) {
                EcCurve::P384
            } else {
                return Err(X509Error::UnsupportedAlgorithm);
            };
            if key_bits.len() != curve.point_len() || key_bits.first() != Some(&0x04) {
                return Err(X509Error::BadPublicKey);
            }
            Ok(Self::Ec {
                curve,
                point: key_bits,
            })
        } else if der::oid_is(algorithm_oid, oid::RSA_ENCRYPTION)
            || der::oid_is(algorithm_oid, oid::RSASSA_PSS)
        {
            // rsaEncryption carries NULL; id-RSASSA-PSS may carry parameters
            // that restrict the key's use, which we enforce at signature time
            // anyway (only PSS/SHA-384 is accepted).
            let mut key = DerReader::new(der::single(key_bits, tag::SEQUENCE)?.contents);
            let modulus = der::uint_bytes(key.expect(tag::INTEGER)?)?;
            let exponent = der::uint_bytes(key.expect(tag::INTEGER)?)?;
            key.finish()?;
            Ok(Self::Rsa(RsaPublicKey { modulus, exponent }))
        } else {
            Err(X509Error::UnsupportedAlgorithm)
        }
    }

    /// Verifies `signature` (as found in a certificate's signatureValue) over
    /// `message` with this key under `algorithm`.
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
        provider: &dyn CryptoProvider,
    ) -> Result<(), X509Error> {
        match (self, algorithm) {
            (
                Self::Ec { curve, point },
                SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384,
            ) => {
                let mut fixed = [0u8; 96];
                let fixed = der_ecdsa_to_fixed(signature, *curve, &mut fixed)?;
                match (curve, algorithm) {
                    (EcCurve::P256, SignatureAlgorithm::EcdsaSha256)
                    | (EcCurve::P384, SignatureAlgorithm::EcdsaSha384) => {
                        provider.verify_ecdsa(*curve, point, message, fixed)
                    }
                    (EcCurve::P256, _) => {
                        // ecdsa-with-SHA384 on P-256: truncation rules differ; refuse.
                        return Err(X509Error::KeyAlgorithmMismatch);
                    }
                    (EcCurve::P384, _) => {
                        // ecdsa-with-SHA256 on P-384: a 32-byte digest; refuse.
                        return Err(X509Error::KeyAlgorithmMismatch);
                    }
                }
                .map_err(|_| X509Error::BadSignature)
            }
            (Self::Rsa(key), SignatureAlgorithm::RsaPssSha384) => provider
                .verify_rsa_pss_sha384(*key, message, signature)
                .map_err(|_| X509Error::BadSignature),
            _ => Err(X509Error::KeyAlgorithmMismatch),
        }
    }
}

/// Converts a DER `ECDSA-Sig-Value` into fixed big-endian `r ‖ s` for
/// `curve`, written into `out`; returns the used prefix of `out`.
pub fn der_ecdsa_to_fixed<'o>(
    der_sig: &[u8],
    curve: EcCurve,
    out: &'o mut [u8; 96],
) -> Result<&'o [u8], X509Error> {
    let n = curve.field_len();
    let mut seq = DerReader::new(
        der::single(der_sig, tag::SEQUENCE)
            .map_err(|_| X509Error::BadSignature)?
            .contents,
    );
    let r = der::uint_bytes(seq.expect(tag::INTEGER)?).map_err(|_| X509Error::BadSignature)?;
    let s = der::uint_bytes(seq.expect(tag::INTEGER)?).map_err(|_| X509Error::BadSignature)?;
    seq.finish().map_err(|_| X509Error::BadSignature)?;
    if r.len() > n || s.len() > n {
        return Err(X509Error::BadSignature);
    }
    *out = [0u8; 96];
    let (r_out, rest) = out.split_at_mut(n);
    let s_out = rest.get_mut(..n).ok_or(X509Error::BadSignature)?;
    r_out
        .get_mut(n - r.len()..)
        .ok_or(X509Error::BadSignature)?
        .copy_from_slice(r);
    s_out
        .get_mut(n - s.len()..)
        .ok_or(X509Error::BadSignature)?
        .copy_from_slice(s);
    out.get(..2 * n).ok_or(X509Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_der_signatures() {
        // SEQUENCE { INTEGER 0x00ff (positive, needs padding), INTEGER 0x01 }
        let sig = [0x30, 0x07, 0x02, 0x02, 0x00, 0xff, 0x02, 0x01, 0x01];
        let mut out = [0u8; 96];
        let fixed = der_ecdsa_to_fixed(&sig, EcCurve::P256, &mut out).unwrap();
        assert_eq!(fixed.len(), 64);
        assert_eq!(fixed[31], 0xff);
        assert_eq!(fixed[63], 0x01);
        assert!(fixed[..31].iter().all(|b| *b == 0));
        // Trailing garbage, negative integer, oversize integer.
        assert!(
            der_ecdsa_to_fixed(
                &[0x30, 0x03, 0x02, 0x01, 0x01, 0x00],
                EcCurve::P256,
                &mut out
            )
            .is_err()
        );
        assert!(
            der_ecdsa_to_fixed(
                &[0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x01],
                EcCurve::P256,
                &mut out
            )
            .is_err()
        );
        let mut big = alloc::vec![0x30, 0x25, 0x02, 0x21];
        big.extend_from_slice(&[0x01; 33]);
        big.extend_from_slice(&[0x02, 0x01, 0x01]);
        assert!(der_ecdsa_to_fixed(&big, EcCurve::P256, &mut out).is_err());
    }
}
