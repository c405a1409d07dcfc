//! PEM (RFC 7468) decoding: `-----BEGIN LABEL-----`, base64, `-----END LABEL-----`.
//!
//! [`decode_first`] writes into a caller buffer and never allocates, for hot
//! paths such as the PCK chain inside every TDX quote; [`decode_all`] and
//! [`der_or_pem`] are conveniences that allocate.

use alloc::vec::Vec;

use base64ct::{Base64, Encoding};

use super::X509Error;

/// Maximum decoded size of one block accepted by the allocating helpers.
pub const MAX_BLOCK_LEN: usize = 64 * 1024;

/// Finds the next block labelled `label` in `text`: returns the base64 body
/// (with line breaks) and how many bytes of `text` were consumed.
fn next_block<'t>(text: &'t str, label: &str) -> Result<(&'t str, usize), X509Error> {
    const DASHES: &str = "-----";
    let mut search_from = 0usize;
    loop {
        let rest = text.get(search_from..).ok_or(X509Error::Pem)?;
        let begin = rest.find("-----BEGIN ").ok_or(X509Error::Pem)? + search_from;
        let after_begin = begin + "-----BEGIN ".len();
        let label_end = text
            .get(after_begin..)
            .and_then(|t| t.find(DASHES))
            .ok_or(X509Error::Pem)?
            + after_begin;
        let found_label = text.get(after_begin..label_end).ok_or(X509Error::Pem)?;
        let body_start = label_end + DASHES.len();
        if found_label != label {
            search_from = body_start;
            continue;
        }
        let end_marker_start = text
            .get(body_start..)
            .and_then(|t| t.find("-----END "))
            .ok_or(X509Error::Pem)?
            + body_start;
        let end_label_start = end_marker_start + "-----END ".len();
        let end_label_end = text
            .get(end_label_start..)
            .and_then(|t| t.find(DASHES))
            .ok_or(X509Error::Pem)?
            + end_label_start;
        if text.get(end_label_start..end_label_end) != Some(label) {
            return Err(X509Error::Pem);
        }
        let body = text
            .get(body_start..end_marker_start)
            .ok_or(X509Error::Pem)?;
        return Ok((body, end_label_end + DASHES.len()));
    }
}

/// Decodes base64 that may contain line breaks and spaces into `out`.
///
/// The significant characters are gathered into a stack chunk and decoded a
/// chunk at a time (base64ct needs contiguous input); only the last chunk
/// may carry padding.
fn decode_body<'o>(body: &str, out: &'o mut [u8]) -> Result<&'o [u8], X509Error> {
    const CHUNK: usize = 1024; // a multiple of 4
    let mut chunk = [0u8; CHUNK];
    let mut filled = 0usize;
    let mut written = 0usize;
    let mut finished = false;
    let mut flush =
        |chunk: &[u8], written: &mut usize, finished: &mut bool| -> Result<(), X509Error> {
            if *finished {
                return Err(X509Error::Pem);
            }
            let target = out.get_mut(*written..).ok_or(X509Error::BufferTooSmall)?;
            let needed = chunk.len() / 4 * 3;
            let decoded = if target.len() >= needed {
                Base64::decode(chunk, target)
                    .map_err(|_| X509Error::Pem)?
                    .len()
            } else {
                // Padding may make the output fit after all; decode into a
                // scratch buffer to find out.
                let mut scratch = [0u8; CHUNK / 4 * 3];
                let bytes = Base64::decode(chunk, &mut scratch).map_err(|_| X509Error::Pem)?;
                target
                    .get_mut(..bytes.len())
                    .ok_or(X509Error::BufferTooSmall)?
                    .copy_from_slice(bytes);
                bytes.len()
            };
            *finished = decoded < needed;
            *written += decoded;
            Ok(())
        };
    for c in body.bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        *chunk.get_mut(filled).ok_or(X509Error::Pem)? = c;
        filled += 1;
        if filled == CHUNK {
            flush(&chunk, &mut written, &mut finished)?;
            filled = 0;
        }
    }
    if !filled.is_multiple_of(4) {
        return Err(X509Error::Pem);
    }
    if filled > 0 {
        flush(
            chunk.get(..filled).ok_or(X509Error::Pem)?,
            &mut written,
            &mut finished,
        )?;
    }
    if written == 0 {
        return Err(X509Error::Pem);
    }
    out.get(..written).ok_or(X509Error::BufferTooSmall)
}

/// Decodes the first block labelled `label` into `out`. Returns the DER and
/// how many bytes of `text` were consumed, so a caller can walk a bundle.
pub fn decode_first<'o>(
    text: &str,
    label: &str,
    out: &'o mut [u8],
) -> Result<(&'o [u8], usize), X509Error> {
    let (body, consumed) = next_block(text, label)?;
    Ok((decode_body(body, out)?, consumed))
}

/// Decodes every block labelled `label`, in order. At least one is required.
pub fn decode_all(text: &str, label: &str) -> Result<Vec<Vec<u8>>, X509Error> {
    let mut blocks = Vec::new();
    let mut rest = text;
    let mut buffer = alloc::vec![0u8; MAX_BLOCK_LEN];
    while rest.contains("-----BEGIN ") {
        match decode_first(rest, label, &mut buffer) {
            Ok((der, consumed)) => {
                blocks.push(der.to_vec());
                rest = rest.get(consumed..).unwrap_or("");
            }
            Err(X509Error::Pem) if !blocks.is_empty() => break,
            Err(err) => return Err(err),
        }
    }
    if blocks.is_empty() {
        return Err(X509Error::Pem);
    }
    Ok(blocks)
}

/// Accepts either DER or a PEM text with one `label` block, and returns DER.
pub fn der_or_pem(bytes: &[u8], label: &str) -> Result<Vec<u8>, X509Error> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    let text = core::str::from_utf8(bytes).map_err(|_| X509Error::Pem)?;
    let mut blocks = decode_all(text, label)?;
    match (blocks.pop(), blocks.is_empty()) {
        (Some(only), true) => Ok(only),
        _ => Err(X509Error::Pem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "junk\n-----BEGIN CERTIFICATE-----\nAQID\nBA==\n-----END CERTIFICATE-----\n\
                       -----BEGIN OTHER-----\nBQ==\n-----END OTHER-----\n\
                       -----BEGIN CERTIFICATE-----\nBgc=\n-----END CERTIFICATE-----\n";

    #[test]
    fn decodes_blocks_by_label() {
        let all = decode_all(TWO, "CERTIFICATE").unwrap();
        assert_eq!(all, alloc::vec![alloc::vec![1, 2, 3, 4], alloc::vec![6, 7]]);
        assert_eq!(
            decode_all(TWO, "OTHER").unwrap(),
            alloc::vec![alloc::vec![5]]
        );
        let mut small = [0u8; 3];
        assert_eq!(
            decode_first(TWO, "CERTIFICATE", &mut small),
            Err(X509Error::BufferTooSmall)
        );
        assert_eq!(
            der_or_pem(&[0x30, 0x00], "CERTIFICATE").unwrap(),
            alloc::vec![0x30, 0x00]
        );
        assert!(
            der_or_pem(TWO.as_bytes(), "CERTIFICATE").is_err(),
            "two blocks where one was wanted"
        );
    }

    #[test]
    fn decodes_bodies_longer_than_one_chunk() {
        let data: alloc::vec::Vec<u8> = (0..2000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut encoded = alloc::vec![0u8; Base64::encoded_len(&data)];
        let encoded = Base64::encode(&data, &mut encoded).unwrap();
        let mut text = alloc::string::String::from("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            text.push_str(core::str::from_utf8(line).unwrap());
            text.push('\n');
        }
        text.push_str("-----END CERTIFICATE-----\n");
        let mut out = [0u8; 2000];
        assert_eq!(
            decode_first(&text, "CERTIFICATE", &mut out).unwrap().0,
            &data[..]
        );
        let mut short = [0u8; 1999];
        assert_eq!(
            decode_first(&text, "CERTIFICATE", &mut short),
            Err(X509Error::BufferTooSmall)
        );
        // Padding in the first chunk followed by more data is refused.
        let padded_early = text.replacen("A", "=", 1);
        assert!(decode_first(&padded_early, "CERTIFICATE", &mut out).is_err());
    }

    #[test]
    fn rejects_malformed_pem() {
        let mut out = [0u8; 64];
        for bad in [
            "-----BEGIN CERTIFICATE-----\nAQI\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nAQ==AQ==\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nAQID\n-----END OTHER-----",
            "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nAQID",
            "no pem here",
        ] {
            assert!(decode_first(bad, "CERTIFICATE", &mut out).is_err(), "{bad}");
        }
    }
}
