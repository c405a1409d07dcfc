//! A tiny DER writer (and PEM encoder), used by the CA ([`crate::ca`]) and
//! by the guest's simulated chip to build certificates.
//!
//! Only what X.509 certificate building needs: definite-length TLVs,
//! SEQUENCE/SET, OBJECT IDENTIFIER, non-negative INTEGER, BOOLEAN, the
//! string types, UTCTime/GeneralizedTime, BIT STRING with no unused bits,
//! and context tags. Every function returns a complete encoding; composite
//! values are built by passing the encodings of their parts. Nothing here
//! panics; everything works with `alloc` alone.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::time::UnixTime;

/// DER tags: the reader's table, so reader and writer agree.
pub use super::tag;

/// `tag ‖ length ‖ content` with a minimal definite length.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded parts.
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// A SET of already encoded parts (the caller orders them; DER wants them
/// sorted, which a single element trivially is).
pub fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SET, &parts.concat())
}

/// A context-specific constructed tag `[n]` around `content`.
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | (n & 0x1f), content)
}

fn base128(out: &mut Vec<u8>, value: u64) {
    let mut groups = [0u8; 10];
    let mut count = 0;
    let mut rest = value;
    loop {
        if let Some(slot) = groups.get_mut(count) {
            *slot = (rest & 0x7f) as u8;
        }
        count += 1;
        rest >>= 7;
        if rest == 0 || count == groups.len() {
            break;
        }
    }
    for i in (0..count).rev() {
        let group = groups.get(i).copied().unwrap_or(0);
        out.push(if i == 0 { group } else { group | 0x80 });
    }
}

/// An OBJECT IDENTIFIER from its arcs. The first two arcs are combined as
/// X.690 requires; fewer than two arcs give an empty (invalid) OID, which
/// no caller here produces.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    if let [first, second, rest @ ..] = arcs {
        base128(&mut body, first.saturating_mul(40).saturating_add(*second));
        for arc in rest {
            base128(&mut body, *arc);
        }
    }
    tlv(tag::OID, &body)
}

/// A non-negative INTEGER from big-endian magnitude bytes (leading zeros are
/// trimmed, a zero byte is prepended when the top bit is set).
pub fn uint(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let trimmed = magnitude.get(skip..).unwrap_or(&[]);
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| *b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &body)
}

/// A small non-negative INTEGER.
pub fn small_uint(n: u64) -> Vec<u8> {
    uint(&n.to_be_bytes())
}

/// A UTF8String.
pub fn utf8(text: &str) -> Vec<u8> {
    tlv(tag::UTF8_STRING, text.as_bytes())
}

/// An IA5String (the caller passes ASCII).
pub fn ia5(text: &str) -> Vec<u8> {
    tlv(tag::IA5_STRING, text.as_bytes())
}

/// An OCTET STRING.
pub fn octets(bytes: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, bytes)
}

/// A BIT STRING with no unused bits.
pub fn bits(bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 1);
    body.push(0);
    body.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &body)
}

/// NULL.
pub fn null() -> Vec<u8> {
    vec![tag::NULL, 0]
}

/// BOOLEAN TRUE.
pub fn true_() -> Vec<u8> {
    boolean(true)
}

/// A BOOLEAN (DER: `0xff` for TRUE, `0x00` for FALSE).
pub fn boolean(value: bool) -> Vec<u8> {
    vec![tag::BOOLEAN, 1, if value { 0xff } else { 0x00 }]
}

/// A context-specific primitive tag `[n]` around `content` (implicit
/// tagging of a primitive, e.g. a GeneralName's dNSName).
pub fn implicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(tag::context_primitive(n), content)
}

/// A UTCTime `YYMMDDHHMMSSZ` from its digits (`"491231235959"`).
pub fn utc_time(digits: &str) -> Vec<u8> {
    tlv(tag::UTC_TIME, format!("{digits}Z").as_bytes())
}

/// A `Time` as RFC 5280 §4.1.2.5 wants it: UTCTime for years 1950–2049,
/// GeneralizedTime otherwise (always `Z`, no fractional seconds).
pub fn time(at: UnixTime) -> Vec<u8> {
    let (year, month, day, hour, minute, second) = at.to_civil();
    if (1950..2050).contains(&year) {
        let digits = format!(
            "{:02}{month:02}{day:02}{hour:02}{minute:02}{second:02}",
            year % 100
        );
        utc_time(&digits)
    } else {
        let text = format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z");
        tlv(tag::GENERALIZED_TIME, text.as_bytes())
    }
}

/// PEM armour (RFC 7468) around `der`, with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    let mut buffer = vec![0u8; Base64::encoded_len(der)];
    // The buffer has exactly the encoded length, so encoding cannot fail.
    let encoded = Base64::encode(der, &mut buffer).unwrap_or("");
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = encoded;
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lengths_integers_and_oids() {
        assert_eq!(tlv(0x04, &[]), [0x04, 0x00]);
        assert_eq!(tlv(0x04, &[0; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[0; 0x1234])[..4], [0x04, 0x82, 0x12, 0x34]);
        assert_eq!(small_uint(0), [0x02, 0x01, 0x00]);
        assert_eq!(small_uint(0x80), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(small_uint(48), [0x02, 0x01, 0x30]);
        // 1.3.6.1.4.1.3704.1.3.1 as OpenSSL writes it.
        assert_eq!(
            oid(&[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1]),
            [
                0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x01
            ]
        );
        assert_eq!(oid(&[2, 5, 4, 3]), [0x06, 0x03, 0x55, 0x04, 0x03]);
    }

    #[test]
    fn picks_utc_or_generalized_time() {
        let before = UnixTime::from_civil(2049, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(time(before), utc_time("491231235959"));
        let after = UnixTime::from_civil(2050, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(time(after), tlv(tag::GENERALIZED_TIME, b"20500101000000Z"));
        for at in [before, after, UnixTime(1_772_323_200)] {
            let encoded = time(at);
            let tlv = crate::der::DerReader::new(&encoded).read().unwrap();
            assert_eq!(crate::der::time(&tlv), Ok(at));
        }
        assert_eq!(boolean(false), [0x01, 0x01, 0x00]);
    }

    #[test]
    fn pem_round_trips_through_the_core_decoder() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 100, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = pem("CERTIFICATE", &der);
            assert!(text.lines().all(|line| line.len() <= 64));
            let back = crate::x509::pem::der_or_pem(text.as_bytes(), "CERTIFICATE");
            if len == 0 {
                continue;
            }
            assert_eq!(back.unwrap(), der, "len {len}");
        }
    }
}
