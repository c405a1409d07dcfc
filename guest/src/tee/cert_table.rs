//! The SEV-SNP certificate table (GHCB specification, "SNP Extended Guest
//! Request"): what configfs-tsm hands out as `auxblob` for `sev_guest`, and
//! what `SNP_GET_EXT_REPORT` writes into the certificate buffer.
//!
//! The table is a sequence of 24-byte entries — a 16-byte GUID (RFC 4122 byte
//! order, as the GUID's text reads), a little-endian u32 offset and a u32
//! length, both relative to the start of the table — terminated by an
//! all-zero entry. Everything is bounds-checked; unknown GUIDs are skipped.

use super::TeeError;

/// VCEK: the chip- and TCB-specific endorsement key certificate.
pub const VCEK_GUID: [u8; 16] = guid("63da758d-e664-4564-adc5-f4b93be8accd");
/// VLEK: the cloud provider's loaded endorsement key certificate.
pub const VLEK_GUID: [u8; 16] = guid("a8074bc2-a25a-483e-aae6-39c045a0b8a1");
/// ASK: AMD SEV signing key certificate.
pub const ASK_GUID: [u8; 16] = guid("4ab7b379-bbac-4fe4-a02f-05aef327c782");
/// ARK: AMD root key certificate.
pub const ARK_GUID: [u8; 16] = guid("c0b406a4-a803-4952-9743-3fb6014cd0ae");

const ENTRY_LEN: usize = 24;
/// More entries than any platform hands out; bounds the walk.
const MAX_ENTRIES: usize = 64;

/// Parses a GUID's canonical text at compile time (panics only in const
/// evaluation, on a malformed literal).
const fn guid(text: &str) -> [u8; 16] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == 36, "GUID text must be 36 characters");
    let mut out = [0u8; 16];
    let mut i = 0;
    let mut j = 0;
    while i < bytes.len() {
        if bytes[i] == b'-' {
            i += 1;
            continue;
        }
        out[j] = (nibble(bytes[i]) << 4) | nibble(bytes[i + 1]);
        j += 1;
        i += 2;
    }
    assert!(j == 16, "GUID text must hold 16 bytes");
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("invalid hex digit in GUID"),
    }
}

/// The certificates found in a table (DER, as stored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnpCertificates {
    /// VCEK certificate.
    pub vcek: Option<Vec<u8>>,
    /// VLEK certificate.
    pub vlek: Option<Vec<u8>>,
    /// ASK (or ASVK) certificate.
    pub ask: Option<Vec<u8>>,
    /// ARK certificate.
    pub ark: Option<Vec<u8>>,
}

impl SnpCertificates {
    /// The endorsement key certificate: the VCEK, or else the VLEK.
    pub fn leaf(&self) -> Option<&Vec<u8>> {
        self.vcek.as_ref().or(self.vlek.as_ref())
    }
}

fn u32_at(table: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = table.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

/// Parses a certificate table. `source` names where it came from, for
/// errors. An empty table (or one that starts with the terminator) yields
/// no certificates. A table without terminator, an entry pointing outside
/// the buffer, or a GUID listed twice is refused.
pub fn parse(table: &[u8], source: &str) -> Result<SnpCertificates, TeeError> {
    let mut certs = SnpCertificates::default();
    if table.is_empty() {
        return Ok(certs);
    }
    let bad =
        |what: String| TeeError::Protocol(format!("SNP certificate table from {source}: {what}"));
    for index in 0..MAX_ENTRIES {
        let start = index * ENTRY_LEN;
        let entry = table.get(start..start + ENTRY_LEN).ok_or_else(|| {
            bad(format!(
                "entry {index} is cut short (table is {} bytes) and no terminator was found",
                table.len()
            ))
        })?;
        if entry.iter().all(|b| *b == 0) {
            return Ok(certs);
        }
        let guid: [u8; 16] = entry
            .get(..16)
            .and_then(|g| g.try_into().ok())
            .ok_or_else(|| bad(format!("entry {index} has no GUID")))?;
        let offset =
            u32_at(entry, 16).ok_or_else(|| bad(format!("entry {index} has no offset")))?;
        let length =
            u32_at(entry, 20).ok_or_else(|| bad(format!("entry {index} has no length")))?;
        let body = offset
            .checked_add(length)
            .and_then(|end| table.get(offset..end))
            .ok_or_else(|| {
                bad(format!(
                    "entry {index} points at bytes {offset}..{} outside the {}-byte table",
                    offset.saturating_add(length),
                    table.len()
                ))
            })?;
        let slot = match guid {
            VCEK_GUID => &mut certs.vcek,
            VLEK_GUID => &mut certs.vlek,
            ASK_GUID => &mut certs.ask,
            ARK_GUID => &mut certs.ark,
            _ => continue,
        };
        if slot.is_some() {
            return Err(bad(format!("entry {index} repeats a certificate GUID")));
        }
        if length > 0 {
            *slot = Some(body.to_vec());
        }
    }
    Err(bad(format!("more than {MAX_ENTRIES} entries")))
}

/// Builds a certificate table (for tests and emulations): entries in the
/// order given, terminator, then the certificate bodies.
pub fn build(entries: &[([u8; 16], &[u8])]) -> Vec<u8> {
    let header = (entries.len() + 1) * ENTRY_LEN;
    let mut out = Vec::new();
    let mut bodies = Vec::new();
    for (guid, body) in entries {
        out.extend_from_slice(guid);
        let offset = u32::try_from(header + bodies.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        bodies.extend_from_slice(body);
    }
    out.extend_from_slice(&[0; ENTRY_LEN]);
    out.extend_from_slice(&bodies);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_in_text_order() {
        assert_eq!(VCEK_GUID[..4], [0x63, 0xda, 0x75, 0x8d]);
        assert_eq!(ARK_GUID[14..], [0xd0, 0xae]);
    }

    #[test]
    fn parses_all_four_and_skips_unknown() {
        let table = build(&[
            (VCEK_GUID, b"vcek"),
            ([7; 16], b"other"),
            (ASK_GUID, b"ask"),
            (ARK_GUID, b"ark!"),
        ]);
        let certs = parse(&table, "test").unwrap();
        assert_eq!(certs.vcek.as_deref(), Some(&b"vcek"[..]));
        assert_eq!(certs.ask.as_deref(), Some(&b"ask"[..]));
        assert_eq!(certs.ark.as_deref(), Some(&b"ark!"[..]));
        assert_eq!(certs.vlek, None);
        assert_eq!(certs.leaf().map(Vec::as_slice), Some(&b"vcek"[..]));
    }

    #[test]
    fn vlek_is_the_leaf_without_vcek() {
        let certs = parse(&build(&[(VLEK_GUID, b"vlek")]), "test").unwrap();
        assert_eq!(certs.leaf().map(Vec::as_slice), Some(&b"vlek"[..]));
    }

    #[test]
    fn empty_and_terminator_only_tables_hold_nothing() {
        assert_eq!(parse(&[], "t").unwrap(), SnpCertificates::default());
        assert_eq!(parse(&[0; 4096], "t").unwrap(), SnpCertificates::default());
    }

    #[test]
    fn refuses_malformed_tables() {
        let good = build(&[(VCEK_GUID, b"vcek")]);
        // Every truncation either parses to a subset or fails cleanly.
        for len in 1..good.len() {
            let _ = parse(&good[..len], "t");
        }
        // No terminator.
        let mut unterminated = good[..ENTRY_LEN].to_vec();
        unterminated[16..20].copy_from_slice(&0u32.to_le_bytes());
        unterminated[20..24].copy_from_slice(&4u32.to_le_bytes());
        let err = parse(&unterminated, "auxblob").unwrap_err().to_string();
        assert!(
            err.contains("auxblob") && err.contains("terminator"),
            "{err}"
        );
        // Offset outside.
        let mut bad = good.clone();
        bad[16..20].copy_from_slice(&1000u32.to_le_bytes());
        let err = parse(&bad, "t").unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");
        // Offset + length overflowing.
        let mut bad = good.clone();
        bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        bad[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&bad, "t").is_err());
        // Duplicate.
        let dup = build(&[(VCEK_GUID, b"a"), (VCEK_GUID, b"b")]);
        assert!(
            parse(&dup, "t")
                .unwrap_err()
                .to_string()
                .contains("repeats")
        );
        // Too many entries without terminator.
        let many: Vec<u8> = std::iter::repeat_n([9u8; ENTRY_LEN], MAX_ENTRIES + 1)
            .flatten()
            .collect();
        assert!(parse(&many, "t").is_err());
    }
}
