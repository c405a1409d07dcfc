//! Public keys of a manifest: hex of SubjectPublicKeyInfo DER, classified
//! by their algorithm identifier.

use alloc::string::String;
use alloc::vec::Vec;

use crate::der::{self, DerReader, tag};
use crate::hex;

/// id-Ed25519 (RFC 8410).
const OID_ED25519: &[u64] = &[1, 3, 101, 112];
/// id-X25519 (RFC 8410).
const OID_X25519: &[u64] = &[1, 3, 101, 110];
/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];
/// secp384r1 (RFC 5480).
const OID_SECP384R1: &[u64] = &[1, 3, 132, 0, 34];

/// A workload owner's signing key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKey {
    /// Ed25519, the 32-byte public key.
    Ed25519([u8; 32]),
    /// ECDSA P-384, the SEC1 uncompressed point (97 bytes).
    P384(Vec<u8>),
}

/// A seed-share owner's X25519 public key (HPKE recipient).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeedshareKey(pub [u8; 32]);

/// The parts of a SubjectPublicKeyInfo: algorithm OID contents, the whole
/// parameters element (if any) and the key bits.
type Spki<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

/// Splits a SubjectPublicKeyInfo into its parts.
fn spki(der_bytes: &[u8]) -> Result<Spki<'_>, String> {
    let bad = |e: der::DerError| alloc::format!("not a SubjectPublicKeyInfo: {e}");
    let outer = der::single(der_bytes, tag::SEQUENCE).map_err(bad)?;
    let mut r = DerReader::new(outer.contents);
    let alg = r.expect(tag::SEQUENCE).map_err(bad)?;
    let bits = r.expect(tag::BIT_STRING).map_err(bad)?;
    r.finish().map_err(bad)?;
    let mut a = DerReader::new(alg);
    let oid = a.expect(tag::OID).map_err(bad)?;
    let params = if a.is_empty() {
        None
    } else {
        Some(a.read().map_err(bad)?.raw)
    };
    a.finish().map_err(bad)?;
    let key = der::bit_string_bytes(bits).map_err(bad)?;
    Ok((oid, params, key))
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| alloc::format!("not hex: {e}"))
}

impl OwnerKey {
    /// Parses hex of SubjectPublicKeyInfo DER; accepts only Ed25519 and
    /// ECDSA P-384 keys (and checks the point is valid).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        Self::from_spki(&decode_hex(text)?)
    }

    /// Parses SubjectPublicKeyInfo DER (see [`from_hex`](Self::from_hex)).
    pub fn from_spki(der_bytes: &[u8]) -> Result<Self, String> {
        let (oid, params, key) = spki(der_bytes)?;
        if der::oid_is(oid, OID_ED25519) {
            if params.is_some() {
                return Err("Ed25519 key must not have algorithm parameters".into());
            }
            let bytes: [u8; 32] = key
                .try_into()
                .map_err(|_| alloc::format!("Ed25519 key must be 32 bytes, got {}", key.len()))?;
            ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| String::from("Ed25519 key is not a valid curve point"))?;
            return Ok(Self::Ed25519(bytes));
        }
        if der::oid_is(oid, OID_EC_PUBLIC_KEY) {
            let curve = params
                .and_then(|p| der::single(p, tag::OID).ok())
                .filter(|t| der::oid_is(t.contents, OID_SECP384R1));
            if curve.is_none() {
                return Err("ECDSA key must be on P-384 (secp384r1)".into());
            }
            if key.len() != 97 || key.first() != Some(&4) {
                return Err("P-384 key must be an uncompressed point (97 bytes)".into());
            }
            p384::PublicKey::from_sec1_bytes(key)
                .map_err(|_| String::from("P-384 key is not a valid curve point"))?;
            return Ok(Self::P384(key.to_vec()));
        }
        Err("unsupported key algorithm (expected Ed25519 or ECDSA P-384)".into())
    }
}

impl SeedshareKey {
    /// Parses hex of SubjectPublicKeyInfo DER; accepts only X25519 keys.
    pub fn from_hex(text: &str) -> Result<Self, String> {
        Self::from_spki(&decode_hex(text)?)
    }

    /// Parses SubjectPublicKeyInfo DER (see [`from_hex`](Self::from_hex)).
    pub fn from_spki(der_bytes: &[u8]) -> Result<Self, String> {
        let (oid, params, key) = spki(der_bytes)?;
        if !der::oid_is(oid, OID_X25519) {
            return Err("unsupported key algorithm (expected X25519)".into());
        }
        if params.is_some() {
            return Err("X25519 key must not have algorithm parameters".into());
        }
        let bytes: [u8; 32] = key
            .try_into()
            .map_err(|_| alloc::format!("X25519 key must be 32 bytes, got {}", key.len()))?;
        if bytes == [0; 32] {
            return Err("X25519 key is all zeros".into());
        }
        Ok(Self(bytes))
    }
}
