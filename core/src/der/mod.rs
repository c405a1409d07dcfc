//! Strict DER reading over borrowed bytes, and (in [`write`](mod@write)) the small
//! DER writer the CA and the simulated chip build certificates with.
//!
//! Only what X.509 certificates, CRLs and vendor extensions need:
//! single-byte tags (low tag numbers), definite minimal lengths up to 4 length
//! bytes, and a few primitive decoders. Anything else is refused. Nothing
//! allocates and nothing panics.

use core::fmt;

use crate::time::{TimeError, UnixTime};

pub mod write;

/// Tag bytes used by accord's parsers.
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// ENUMERATED
    pub const ENUMERATED: u8 = 0x0a;
    /// UTF8String
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// IA5String
    pub const IA5_STRING: u8 = 0x16;
    /// UTCTime
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed)
    pub const SET: u8 = 0x31;

    /// `[n]` context-specific, constructed (explicit tagging).
    pub const fn context_constructed(n: u8) -> u8 {
        0xa0 | (n & 0x1f)
    }

    /// `[n]` context-specific, primitive (implicit tagging of a primitive).
    pub const fn context_primitive(n: u8) -> u8 {
        0x80 | (n & 0x1f)
    }
}

/// Why DER input was refused. Offsets are relative to the reader's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DerError {
    /// The input ended inside a tag, length or value.
    Truncated {
        /// Where the element started.
        offset: usize,
    },
    /// Multi-byte tags, indefinite or non-minimal lengths.
    NonCanonical {
        /// Where the element started.
        offset: usize,
    },
    /// A different tag was found than the one required.
    UnexpectedTag {
        /// Tag required.
        expected: u8,
        /// Tag found (0 when the input ended).
        actual: u8,
        /// Where the element started.
        offset: usize,
    },
    /// Bytes left over inside a structure that should have ended.
    TrailingData {
        /// Where the extra bytes start.
        offset: usize,
    },
    /// An INTEGER that is negative, non-minimal, or too large for its use.
    BadInteger,
    /// An OBJECT IDENTIFIER that is not minimally encoded.
    BadOid,
    /// A BOOLEAN other than 0x00 / 0xff, or a malformed BIT STRING.
    BadPrimitive,
    /// A time value of the wrong shape or out of range.
    BadTime,
    /// A string that is not valid for its type.
    BadString,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset } => write!(f, "DER truncated at offset {offset}"),
            Self::NonCanonical { offset } => write!(f, "non-canonical DER at offset {offset}"),
            Self::UnexpectedTag {
                expected,
                actual,
                offset,
            } => {
                write!(
                    f,
                    "expected DER tag {expected:#04x}, found {actual:#04x} at offset {offset}"
                )
            }
            Self::TrailingData { offset } => {
                write!(f, "unexpected trailing DER data at offset {offset}")
            }
            Self::BadInteger => f.write_str("malformed or out-of-range INTEGER"),
            Self::BadOid => f.write_str("malformed OBJECT IDENTIFIER"),
            Self::BadPrimitive => f.write_str("malformed BOOLEAN or BIT STRING"),
            Self::BadTime => f.write_str("malformed UTCTime/GeneralizedTime"),
            Self::BadString => f.write_str("malformed string"),
        }
    }
}

impl core::error::Error for DerError {}

/// One element: its tag, its contents, and its whole encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The value bytes.
    pub contents: &'a [u8],
    /// Tag, length and value together (what a signature covers).
    pub raw: &'a [u8],
}

/// Reads DER elements one after another from a borrowed slice.
#[derive(Clone, Debug)]
pub struct DerReader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> DerReader<'a> {
    /// A reader over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, offset: 0 }
    }

    /// Whether every element has been read.
    pub fn is_empty(&self) -> bool {
        self.offset >= self.input.len()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.input.get(self.offset).copied()
    }

    /// Reads the next element.
    pub fn read(&mut self) -> Result<Tlv<'a>, DerError> {
        let start = self.offset;
        let truncated = DerError::Truncated { offset: start };
        let tag = *self.input.get(start).ok_or(truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::NonCanonical { offset: start });
        }
        let first = *self.input.get(start + 1).ok_or(truncated)?;
        let (length, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(DerError::NonCanonical { offset: start });
            }
            let bytes = self
                .input
                .get(start + 2..start + 2 + count)
                .ok_or(truncated)?;
            let mut length = 0usize;
            for b in bytes {
                length = (length << 8) | usize::from(*b);
            }
            // Minimal: long form only for >= 128, and no leading zero byte.
            if length < 0x80 || bytes.first() == Some(&0) {
                return Err(DerError::NonCanonical { offset: start });
            }
            (length, 2 + count)
        };
        let value_start = start + header;
        let end = value_start.checked_add(length).ok_or(truncated)?;
        let contents = self.input.get(value_start..end).ok_or(truncated)?;
        let raw = self.input.get(start..end).ok_or(truncated)?;
        self.offset = end;
        Ok(Tlv { tag, contents, raw })
    }

    /// Reads the next element, which must have `tag`, and returns its contents.
    pub fn expect(&mut self, tag: u8) -> Result<&'a [u8], DerError> {
        Ok(self.expect_tlv(tag)?.contents)
    }

    /// Like [`expect`](Self::expect) but returns the whole element.
    pub fn expect_tlv(&mut self, tag: u8) -> Result<Tlv<'a>, DerError> {
        let offset = self.offset;
        match self.peek_tag() {
            Some(actual) if actual == tag => self.read(),
            actual => Err(DerError::UnexpectedTag {
                expected: tag,
                actual: actual.unwrap_or(0),
                offset,
            }),
        }
    }

    /// Reads the next element if it has `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(|tlv| Some(tlv.contents))
        } else {
            Ok(None)
        }
    }

    /// Succeeds only if every element has been read.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData {
                offset: self.offset,
            })
        }
    }
}

/// Reads exactly one element with `tag` from `input`, rejecting trailing bytes.
pub fn single(input: &[u8], tag: u8) -> Result<Tlv<'_>, DerError> {
    let mut reader = DerReader::new(input);
    let tlv = reader.expect_tlv(tag)?;
    reader.finish()?;
    Ok(tlv)
}

/// The big-endian magnitude of a non-negative, minimally encoded INTEGER.
pub fn uint_bytes(contents: &[u8]) -> Result<&[u8], DerError> {
    match contents {
        [] => Err(DerError::BadInteger),
        [first, ..] if *first & 0x80 != 0 => Err(DerError::BadInteger),
        [0, second, ..] if *second & 0x80 == 0 => Err(DerError::BadInteger),
        [0, rest @ ..] if !rest.is_empty() => Ok(rest),
        _ => Ok(contents),
    }
}

/// A non-negative INTEGER that fits in a `u64`.
pub fn uint_u64(contents: &[u8]) -> Result<u64, DerError> {
    let magnitude = uint_bytes(contents)?;
    if magnitude.len() > 8 {
        return Err(DerError::BadInteger);
    }
    Ok(magnitude
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A BOOLEAN's value (DER: 0x00 or 0xff only).
pub fn boolean(contents: &[u8]) -> Result<bool, DerError> {
    match contents {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err(DerError::BadPrimitive),
    }
}

/// The bytes of a BIT STRING that has no unused bits.
pub fn bit_string_bytes(contents: &[u8]) -> Result<&[u8], DerError> {
    match contents {
        [0, rest @ ..] => Ok(rest),
        _ => Err(DerError::BadPrimitive),
    }
}

/// Iterates the arcs of an OBJECT IDENTIFIER's contents. Yields `None` on a
/// malformed encoding.
fn oid_arcs(contents: &[u8]) -> impl Iterator<Item = Option<u64>> + '_ {
    let mut index = 0usize;
    let mut pending_second: Option<u64> = None;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed {
            return None;
        }
        if let Some(second) = pending_second.take() {
            return Some(Some(second));
        }
        if index >= contents.len() {
            return None;
        }
        let first_subidentifier = index == 0;
        let mut value = 0u64;
        let mut started = false;
        loop {
            let Some(byte) = contents.get(index).copied() else {
                failed = true;
                return Some(None);
            };
            index += 1;
            if !started && byte == 0x80 {
                failed = true;
                return Some(None);
            }
            started = true;
            if value > (u64::MAX >> 7) {
                failed = true;
                return Some(None);
            }
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                break;
            }
        }
        if first_subidentifier {
            let (first, second) = match value {
                0..=39 => (0, value),
                40..=79 => (1, value - 40),
                _ => (2, value - 80),
            };
            pending_second = Some(second);
            Some(Some(first))
        } else {
            Some(Some(value))
        }
    })
}

/// Whether an OBJECT IDENTIFIER's contents encode exactly `arcs`.
pub fn oid_is(contents: &[u8], arcs: &[u64]) -> bool {
    let mut expected = arcs.iter();
    for arc in oid_arcs(contents) {
        match (arc, expected.next()) {
            (Some(a), Some(e)) if a == *e => {}
            _ => return false,
        }
    }
    expected.next().is_none() && !contents.is_empty()
}

/// Checks that an OBJECT IDENTIFIER's contents are well formed.
pub fn oid_valid(contents: &[u8]) -> Result<(), DerError> {
    if contents.is_empty() || oid_arcs(contents).any(|arc| arc.is_none()) {
        return Err(DerError::BadOid);
    }
    Ok(())
}

fn two_digits(bytes: &[u8], at: usize) -> Result<u32, DerError> {
    match bytes.get(at..at + 2) {
        Some([a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
            Ok(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => Err(DerError::BadTime),
    }
}

/// Decodes a `Time` element (UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, the only forms RFC 5280 allows).
pub fn time(tlv: &Tlv<'_>) -> Result<UnixTime, DerError> {
    let text = tlv.contents;
    let (year, rest) = match (tlv.tag, text.len()) {
        (tag::UTC_TIME, 13) => {
            let yy = i64::from(two_digits(text, 0)?);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (tag::GENERALIZED_TIME, 15) => {
            let cc = i64::from(two_digits(text, 0)?);
            let yy = i64::from(two_digits(text, 2)?);
            (cc * 100 + yy, 4)
        }
        _ => return Err(DerError::BadTime),
    };
    if text.last() != Some(&b'Z') {
        return Err(DerError::BadTime);
    }
    let field = |i: usize| two_digits(text, rest + 2 * i);
    UnixTime::from_civil(year, field(0)?, field(1)?, field(2)?, field(3)?, field(4)?)
        .map_err(|_: TimeError| DerError::BadTime)
}

/// A string element's text (UTF8String, PrintableString, IA5String).
pub fn string<'a>(tlv: &Tlv<'a>) -> Result<&'a str, DerError> {
    match tlv.tag {
        tag::UTF8_STRING | tag::PRINTABLE_STRING | tag::IA5_STRING => {
            let text = core::str::from_utf8(tlv.contents).map_err(|_| DerError::BadString)?;
            if tlv.tag != tag::UTF8_STRING && !text.is_ascii() {
                return Err(DerError::BadString);
            }
            Ok(text)
        }
        _ => Err(DerError::BadString),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_strictly() {
        let mut r = DerReader::new(&[0x02, 0x01, 0x05, 0x04, 0x00]);
        assert_eq!(r.expect(tag::INTEGER), Ok(&[5u8][..]));
        assert_eq!(r.expect(tag::OCTET_STRING), Ok(&[][..]));
        assert!(r.finish().is_ok());
        // Non-minimal long-form length.
        assert_eq!(
            DerReader::new(&[0x04, 0x81, 0x01, 0x00]).read(),
            Err(DerError::NonCanonical { offset: 0 })
        );
        // Indefinite length.
        assert_eq!(
            DerReader::new(&[0x30, 0x80, 0, 0]).read(),
            Err(DerError::NonCanonical { offset: 0 })
        );
        // Truncated value.
        assert_eq!(
            DerReader::new(&[0x04, 0x05, 0x00]).read(),
            Err(DerError::Truncated { offset: 0 })
        );
        assert_eq!(
            DerReader::new(&[0x05, 0x00]).expect(tag::INTEGER),
            Err(DerError::UnexpectedTag {
                expected: tag::INTEGER,
                actual: tag::NULL,
                offset: 0
            })
        );
        assert!(single(&[0x05, 0x00, 0x00], tag::NULL).is_err());
    }

    #[test]
    fn decodes_primitives() {
        assert_eq!(uint_u64(&[0x00, 0x80]), Ok(128));
        assert_eq!(uint_u64(&[0x00, 0x01]), Err(DerError::BadInteger));
        assert_eq!(uint_u64(&[0x80]), Err(DerError::BadInteger));
        assert_eq!(uint_bytes(&[0x00]), Ok(&[0u8][..]));
        // 1.3.6.1.4.1.3704.1.3.1 (AMD blSPL)
        let oid = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x9c, 0x78, 0x01, 0x03, 0x01];
        assert!(oid_is(&oid, &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1]));
        assert!(!oid_is(&oid, &[1, 3, 6, 1, 4, 1, 3704, 1, 3]));
        assert!(!oid_is(&oid, &[1, 3, 6, 1, 4, 1, 3704, 1, 3, 1, 0]));
        assert!(oid_valid(&[0x2b, 0x80, 0x01]).is_err());
        assert!(oid_valid(&[0x2b, 0x86]).is_err());
        let utc = Tlv {
            tag: tag::UTC_TIME,
            contents: b"260301000000Z",
            raw: &[],
        };
        assert_eq!(time(&utc), Ok(UnixTime(1_772_323_200)));
        let gen_time = Tlv {
            tag: tag::GENERALIZED_TIME,
            contents: b"20491231235959Z",
            raw: &[],
        };
        assert_eq!(time(&gen_time).map(|t| t.0), Ok(2_524_607_999));
        let bad = Tlv {
            tag: tag::UTC_TIME,
            contents: b"261301000000Z",
            raw: &[],
        };
        assert_eq!(time(&bad), Err(DerError::BadTime));
    }
}
