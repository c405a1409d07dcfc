//! The high-water marks (`freshness.rs`) as bytes, so that a verifier
//! that does not live long (the CLI) remembers across runs how new the
//! collateral it has seen was.
//!
//! The encoding (version 1; integers little-endian):
//!
//! ```text
//! "accord-marks"            12 bytes
//! version                   u8 = 1
//! crl count                 u32, at most MAX_ENTRIES
//!   stream                  u8: 1 SEV-SNP VCEK CRL, 2 SEV-SNP VLEK CRL,
//!                               3 TDX PCK CRL, 4 TDX root CA CRL
//!   issuer                  32 bytes (the stream's identity hash)
//!   number length           u8, at most MAX_CRL_NUMBER
//!   number                  big-endian, no leading zero byte
//!   thisUpdate              i64 (Unix seconds)
//! root count                u32, at most MAX_ROOTS
//!   root length             u32, at most MAX_ROOT_DER
//!   root                    DER
//!   QE identity present     u8: 0 or 1
//!   QE identity mark        u32 (only when present)
//!   FMSPC count             u32, at most MAX_ENTRIES
//!     fmspc                 6 bytes
//!     tcbEvaluationDataNumber u32
//! ```
//!
//! The bytes are canonical: CRL streams and FMSPCs strictly ascending,
//! roots distinct. [`decode`] refuses another magic, an unknown version or
//! stream, anything out of bounds or out of order, and trailing bytes.
//! The bytes are not authenticated: whoever can write them can lower the
//! marks (or raise them to deny service). The CLI keeps them in the
//! user's own workspace, next to its trust state.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use super::freshness::{CrlVersion, Marks, StreamKey, TdxMarks};
use crate::codec::{CodecError, Reader};
use crate::time::UnixTime;

/// What the encoding starts with.
pub const MAGIC: &[u8; 12] = b"accord-marks";

/// The version written and the only one read.
pub const VERSION: u8 = 1;

/// At most this many CRL streams, and FMSPCs per root.
pub const MAX_ENTRIES: u32 = 4096;

/// At most this many TDX roots.
pub const MAX_ROOTS: u32 = 64;

/// A root certificate is at most this long.
pub const MAX_ROOT_DER: u32 = 16 * 1024;

/// A cRLNumber is at most 20 octets (RFC 5280 §5.2.3); a little more is
/// allowed.
pub const MAX_CRL_NUMBER: u8 = 32;

/// The stream labels and their codes.
const STREAMS: [(u8, &str); 4] = [
    (1, "SEV-SNP VCEK CRL"),
    (2, "SEV-SNP VLEK CRL"),
    (3, "TDX PCK CRL"),
    (4, "TDX root CA CRL"),
];

/// Why bytes are not marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarksError {
    /// They do not start with [`MAGIC`].
    NotMarks,
    /// Another version than [`VERSION`].
    UnknownVersion(u8),
    /// A stream code no version-1 writer uses.
    UnknownStream(u8),
    /// A count or length above its bound.
    TooLarge {
        /// What.
        what: &'static str,
        /// How many or how long.
        value: u64,
        /// The bound.
        max: u64,
    },
    /// Not canonical: out of order, duplicated, a leading zero in a
    /// number, a flag that is neither 0 nor 1.
    NotCanonical(&'static str),
    /// Truncated or trailing bytes.
    Codec(CodecError),
}

impl fmt::Display for MarksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotMarks => write!(f, "not accord freshness marks (no \"accord-marks\" header)"),
            Self::UnknownVersion(v) => {
                write!(f, "freshness marks version {v}, only {VERSION} is known")
            }
            Self::UnknownStream(code) => write!(f, "unknown CRL stream {code}"),
            Self::TooLarge { what, value, max } => {
                write!(f, "{what} {value} is above the limit {max}")
            }
            Self::NotCanonical(what) => write!(f, "not canonical: {what}"),
            Self::Codec(err) => write!(f, "{err}"),
        }
    }
}

impl core::error::Error for MarksError {}

impl From<CodecError> for MarksError {
    fn from(err: CodecError) -> Self {
        Self::Codec(err)
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The marks as bytes (see the module documentation). Marks beyond the
/// bounds are not written (a verifier never holds that many).
pub fn encode(marks: &Marks) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let mut crls: Vec<_> = marks
        .crls
        .iter()
        .filter_map(|((label, issuer), version)| {
            let code = STREAMS.iter().find(|(_, l)| l == label)?.0;
            let number_len = u8::try_from(version.number.len())
                .ok()
                .filter(|n| *n <= MAX_CRL_NUMBER)?;
            Some((code, issuer, number_len, version))
        })
        .take(MAX_ENTRIES as usize)
        .collect();
    // Ascending by (code, issuer), as decode requires.
    crls.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    out.extend_from_slice(&len_u32(crls.len()).to_le_bytes());
    for (code, issuer, number_len, version) in crls {
        out.push(code);
        out.extend_from_slice(issuer);
        out.push(number_len);
        out.extend_from_slice(&version.number);
        out.extend_from_slice(&version.this_update.0.to_le_bytes());
    }
    let roots: Vec<&TdxMarks> = marks
        .tdx
        .iter()
        .filter(|m| m.root.len() <= MAX_ROOT_DER as usize)
        .take(MAX_ROOTS as usize)
        .collect();
    out.extend_from_slice(&len_u32(roots.len()).to_le_bytes());
    for root in roots {
        out.extend_from_slice(&len_u32(root.root.len()).to_le_bytes());
        out.extend_from_slice(&root.root);
        match root.qe_identity {
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_le_bytes());
            }
            None => out.push(0),
        }
        let count = root.tcb_info.len().min(MAX_ENTRIES as usize);
        out.extend_from_slice(&len_u32(count).to_le_bytes());
        for (fmspc, n) in root.tcb_info.iter().take(count) {
            out.extend_from_slice(fmspc);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    out
}

fn bounded(what: &'static str, value: u32, max: u32) -> Result<u32, MarksError> {
    if value > max {
        return Err(MarksError::TooLarge {
            what,
            value: u64::from(value),
            max: u64::from(max),
        });
    }
    Ok(value)
}

/// Marks from bytes [`encode`] wrote (see the module documentation).
pub fn decode(bytes: &[u8]) -> Result<Marks, MarksError> {
    let mut r = Reader::new(bytes);
    if r.take(MAGIC.len()).ok() != Some(&MAGIC[..]) {
        return Err(MarksError::NotMarks);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(MarksError::UnknownVersion(version));
    }
    let mut crls: BTreeMap<StreamKey, CrlVersion> = BTreeMap::new();
    let mut last: Option<(u8, [u8; 32])> = None;
    for _ in 0..bounded("CRL stream count", r.u32_le()?, MAX_ENTRIES)? {
        let code = r.u8()?;
        let label = STREAMS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, label)| *label)
            .ok_or(MarksError::UnknownStream(code))?;
        let issuer = *r.take_array::<32>()?;
        if last.is_some_and(|previous| previous >= (code, issuer)) {
            return Err(MarksError::NotCanonical("CRL streams out of order"));
        }
        last = Some((code, issuer));
        let number_len = r.u8()?;
        if number_len > MAX_CRL_NUMBER {
            return Err(MarksError::TooLarge {
                what: "CRL number length",
                value: u64::from(number_len),
                max: u64::from(MAX_CRL_NUMBER),
            });
        }
        let number = r.take(usize::from(number_len))?;
        if number.first() == Some(&0) {
            return Err(MarksError::NotCanonical("a CRL number with a leading zero"));
        }
        let this_update = i64::from_le_bytes(*r.take_array::<8>()?);
        crls.insert(
            (label, issuer),
            CrlVersion {
                number: number.to_vec(),
                this_update: UnixTime(this_update),
            },
        );
    }
    let mut tdx: Vec<TdxMarks> = Vec::new();
    for _ in 0..bounded("root count", r.u32_le()?, MAX_ROOTS)? {
        let root_len = bounded("root length", r.u32_le()?, MAX_ROOT_DER)?;
        let root = r.take(root_len as usize)?;
        if tdx.iter().any(|m| m.root == root) {
            return Err(MarksError::NotCanonical("a root listed twice"));
        }
        let qe_identity = match r.u8()? {
            0 => None,
            1 => Some(r.u32_le()?),
            _ => return Err(MarksError::NotCanonical("QE identity flag not 0 or 1")),
        };
        let mut tcb_info = BTreeMap::new();
        let mut last: Option<[u8; 6]> = None;
        for _ in 0..bounded("FMSPC count", r.u32_le()?, MAX_ENTRIES)? {
            let fmspc = *r.take_array::<6>()?;
            if last.is_some_and(|previous| previous >= fmspc) {
                return Err(MarksError::NotCanonical("FMSPCs out of order"));
            }
            last = Some(fmspc);
            tcb_info.insert(fmspc, r.u32_le()?);
        }
        tdx.push(TdxMarks {
            root: root.to_vec(),
            tcb_info,
            qe_identity,
        });
    }
    r.finish()?;
    Ok(Marks { crls, tdx })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Marks {
        let mut marks = Marks::default();
        marks.record_crl(
            ("SEV-SNP VCEK CRL", [7; 32]),
            CrlVersion {
                number: vec![1, 0],
                this_update: UnixTime(1_700_000_000),
            },
        );
        marks.record_crl(
            ("TDX PCK CRL", [1; 32]),
            CrlVersion {
                number: vec![1],
                this_update: UnixTime(-5),
            },
        );
        marks.record_crl(
            ("SEV-SNP VLEK CRL", [0; 32]),
            CrlVersion {
                number: Vec::new(),
                this_update: UnixTime(3),
            },
        );
        marks.record_tdx(&[0x30, 1, 2], [1, 2, 3, 4, 5, 6], 17, 18);
        marks.record_tdx(&[0x30, 1, 2], [0, 2, 3, 4, 5, 6], 9, 1);
        marks.record_tdx(&[0x30, 9], [9; 6], 900, 901);
        marks
    }

    #[test]
    fn marks_round_trip_canonically() {
        let marks = sample();
        let bytes = encode(&marks);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.crls, marks.crls);
        assert_eq!(back.tdx, marks.tdx);
        assert_eq!(encode(&back), bytes);
        let empty = encode(&Marks::default());
        assert_eq!(empty.len(), 12 + 1 + 4 + 4);
        let none = decode(&empty).unwrap();
        assert!(none.crls.is_empty() && none.tdx.is_empty());
    }

    #[test]
    fn foreign_truncated_and_trailing_bytes_are_refused() {
        let bytes = encode(&sample());
        assert_eq!(decode(b"{}").unwrap_err(), MarksError::NotMarks);
        let mut v2 = bytes.clone();
        v2[12] = 2;
        assert_eq!(decode(&v2).unwrap_err(), MarksError::UnknownVersion(2));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode(&trailing).unwrap_err(),
            MarksError::Codec(CodecError::TrailingBytes { count: 1, .. })
        ));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn unknown_out_of_bounds_and_non_canonical_bytes_are_refused() {
        let head = |crls: u32| {
            let mut out = MAGIC.to_vec();
            out.push(VERSION);
            out.extend_from_slice(&crls.to_le_bytes());
            out
        };
        let crl = |code: u8, issuer: u8, number: &[u8]| {
            let mut out = vec![code];
            out.extend_from_slice(&[issuer; 32]);
            out.push(u8::try_from(number.len()).unwrap());
            out.extend_from_slice(number);
            out.extend_from_slice(&0i64.to_le_bytes());
            out
        };
        let no_roots = 0u32.to_le_bytes();

        let mut unknown = head(1);
        unknown.extend(crl(9, 0, &[1]));
        unknown.extend(no_roots);
        assert_eq!(decode(&unknown).unwrap_err(), MarksError::UnknownStream(9));

        let mut huge = head(MAX_ENTRIES + 1);
        huge.extend(no_roots);
        assert!(matches!(
            decode(&huge).unwrap_err(),
            MarksError::TooLarge { .. }
        ));

        let mut twice = head(2);
        twice.extend(crl(1, 4, &[1]));
        twice.extend(crl(1, 4, &[2]));
        twice.extend(no_roots);
        assert!(matches!(
            decode(&twice).unwrap_err(),
            MarksError::NotCanonical(_)
        ));

        let mut zero = head(1);
        zero.extend(crl(1, 4, &[0, 1]));
        zero.extend(no_roots);
        assert!(matches!(
            decode(&zero).unwrap_err(),
            MarksError::NotCanonical(_)
        ));

        let mut long = head(1);
        long.extend(crl(1, 4, &[1; 33]));
        long.extend(no_roots);
        assert!(matches!(
            decode(&long).unwrap_err(),
            MarksError::TooLarge { .. }
        ));

        let mut big_root = head(0);
        big_root.extend(1u32.to_le_bytes());
        big_root.extend((MAX_ROOT_DER + 1).to_le_bytes());
        assert!(matches!(
            decode(&big_root).unwrap_err(),
            MarksError::TooLarge { .. }
        ));

        let mut flag = head(0);
        flag.extend(1u32.to_le_bytes());
        flag.extend(1u32.to_le_bytes());
        flag.push(0x30);
        flag.push(2);
        assert!(matches!(
            decode(&flag).unwrap_err(),
            MarksError::NotCanonical(_)
        ));
    }

    #[test]
    fn raising_to_other_marks_never_lowers() {
        let mut mine = Marks::default();
        let key = ("SEV-SNP VCEK CRL", [7; 32]);
        mine.record_crl(
            key,
            CrlVersion {
                number: vec![5],
                this_update: UnixTime(0),
            },
        );
        mine.record_tdx(&[0x30, 1, 2], [1, 2, 3, 4, 5, 6], 20, 20);
        mine.raise_to(&sample());
        // Its own newer marks stay, the other's new ones arrive.
        assert_eq!(mine.tcb_info(&[0x30, 1, 2], [1, 2, 3, 4, 5, 6]), Some(20));
        assert_eq!(mine.tcb_info(&[0x30, 1, 2], [0, 2, 3, 4, 5, 6]), Some(9));
        assert_eq!(mine.tcb_info(&[0x30, 9], [9; 6]), Some(900));
        assert!(mine.check_qe_identity(&[0x30, 1, 2], 19).is_err());
        assert!(
            mine.check_crl(
                &key,
                &CrlVersion {
                    number: vec![0xff],
                    this_update: UnixTime(0)
                }
            )
            .is_err(),
            "raised to 256 by the other's number 1,0"
        );
    }
}
