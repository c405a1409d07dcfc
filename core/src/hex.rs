//! Hex encoding and decoding without surprises: lowercase out, either case in,
//! fixed-size decoding into arrays so that lengths are checked at the edge.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why a hex string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HexError {
    /// The string has an odd number of digits.
    OddLength,
    /// A character at this index is not a hex digit.
    InvalidDigit {
        /// Index of the offending character.
        index: usize,
    },
    /// The decoded length is not the one required.
    WrongLength {
        /// Bytes required.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddLength => f.write_str("odd number of hex digits"),
            Self::InvalidDigit { index } => write!(f, "invalid hex digit at index {index}"),
            Self::WrongLength { expected, actual } => {
                write!(
                    f,
                    "expected {expected} bytes ({} hex digits), got {actual} bytes",
                    expected * 2
                )
            }
        }
    }
}

impl core::error::Error for HexError {}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// A `Display` adapter that writes lowercase hex without allocating.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn nibble(c: u8, index: usize) -> Result<u8, HexError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(HexError::InvalidDigit { index }),
    }
}

/// Decodes hex (either case) into `out`, which must be exactly the decoded size.
pub fn decode_into(text: &str, out: &mut [u8]) -> Result<(), HexError> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(HexError::OddLength);
    }
    if digits.len() / 2 != out.len() {
        return Err(HexError::WrongLength {
            expected: out.len(),
            actual: digits.len() / 2,
        });
    }
    for (i, (pair, slot)) in digits.chunks_exact(2).zip(out.iter_mut()).enumerate() {
        if let [hi, lo] = pair {
            *slot = (nibble(*hi, 2 * i)? << 4) | nibble(*lo, 2 * i + 1)?;
        }
    }
    Ok(())
}

/// Decodes hex (either case) into a fixed-size array.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    decode_into(text, &mut out)?;
    Ok(out)
}

/// Decodes hex (either case) of any even length.
pub fn decode(text: &str) -> Result<Vec<u8>, HexError> {
    if !text.len().is_multiple_of(2) {
        return Err(HexError::OddLength);
    }
    let mut out = alloc::vec![0u8; text.len() / 2];
    decode_into(text, &mut out)?;
    Ok(out)
}

/// Serde (`#[serde(with = "crate::hex::serde_bytes")]`) for
/// variable-length byte strings as hex: lowercase out, either case in.
pub(crate) mod serde_bytes {
    use alloc::string::String;
    use alloc::vec::Vec;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::decode(&text).map_err(serde::de::Error::custom)
    }

    /// The same for an optional field (`None` when absent; give it
    /// `default` and `skip_serializing_if = "Option::is_none"`).
    pub mod option {
        use alloc::vec::Vec;

        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            bytes: &Option<Vec<u8>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(bytes) => super::serialize(bytes, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_input() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode("00ABff"), Ok(alloc::vec![0x00, 0xab, 0xff]));
        assert_eq!(decode("abc"), Err(HexError::OddLength));
        assert_eq!(decode("zz"), Err(HexError::InvalidDigit { index: 0 }));
        assert_eq!(decode_array::<2>("0011"), Ok([0x00, 0x11]));
        assert_eq!(
            decode_array::<2>("00"),
            Err(HexError::WrongLength {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(alloc::format!("{}", Hex(&[1, 2])), "0102");
    }
}
