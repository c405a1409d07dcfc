//! A bounds-checked reader over a byte slice, shared by every binary parser.
//!
//! All reads are fallible and return borrowed views into the input; nothing
//! here allocates or panics. A parser finishes with [`Reader::finish`], which
//! rejects trailing bytes.

use core::fmt;

/// Why a read failed. Offsets are relative to the start of the reader's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before `needed` more bytes could be read at `offset`.
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes were wanted.
        needed: usize,
    },
    /// Bytes were left over after the parser was done.
    TrailingBytes {
        /// Where the unread bytes start.
        offset: usize,
        /// How many bytes were left.
        count: usize,
    },
    /// A region that must be zero was not.
    NonZero {
        /// Offset of the first non-zero byte.
        offset: usize,
    },
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset, needed } => {
                write!(
                    f,
                    "input truncated: needed {needed} more bytes at offset {offset:#x}"
                )
            }
            Self::TrailingBytes { offset, count } => {
                write!(f, "{count} trailing bytes at offset {offset:#x}")
            }
            Self::NonZero { offset } => {
                write!(f, "reserved byte at offset {offset:#x} is not zero")
            }
        }
    }
}

impl core::error::Error for CodecError {}

/// Reads fields front to back from a borrowed byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, offset: 0 }
    }

    /// The current offset from the start of the input.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.offset)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.input.get(self.offset..).unwrap_or(&[])
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.offset.checked_add(n).ok_or(CodecError::Truncated {
            offset: self.offset,
            needed: n,
        })?;
        let bytes = self
            .input
            .get(self.offset..end)
            .ok_or(CodecError::Truncated {
                offset: self.offset,
                needed: n,
            })?;
        self.offset = end;
        Ok(bytes)
    }

    /// Takes the next `N` bytes as a fixed-size array reference.
    pub fn take_array<const N: usize>(&mut self) -> Result<&'a [u8; N], CodecError> {
        let offset = self.offset;
        let bytes = self.take(N)?;
        bytes
            .try_into()
            .map_err(|_| CodecError::Truncated { offset, needed: N })
    }

    /// Takes a sub-reader over the next `n` bytes.
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, CodecError> {
        Ok(Reader::new(self.take(n)?))
    }

    /// Skips `n` bytes that must all be zero.
    pub fn skip_zero(&mut self, n: usize) -> Result<(), CodecError> {
        let start = self.offset;
        let bytes = self.take(n)?;
        match bytes.iter().position(|b| *b != 0) {
            Some(i) => Err(CodecError::NonZero { offset: start + i }),
            None => Ok(()),
        }
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take_array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16_le(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(*self.take_array()?))
    }

    /// Reads a little-endian `u32`.
    pub fn u32_le(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(*self.take_array()?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64_le(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(*self.take_array()?))
    }

    /// Succeeds only if every byte has been read.
    pub fn finish(self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(CodecError::TrailingBytes {
                offset: self.offset,
                count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_overruns() {
        let data = [1u8, 2, 0, 3, 0, 0, 0, 0, 0, 9];
        let mut r = Reader::new(&data);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16_le(), Ok(2));
        assert_eq!(r.u32_le(), Ok(3));
        assert_eq!(r.skip_zero(2), Ok(()));
        assert_eq!(r.remaining(), 1);
        assert_eq!(
            r.u16_le(),
            Err(CodecError::Truncated {
                offset: 9,
                needed: 2
            })
        );
        assert_eq!(
            r.clone().finish(),
            Err(CodecError::TrailingBytes {
                offset: 9,
                count: 1
            })
        );
        assert_eq!(r.skip_zero(1), Err(CodecError::NonZero { offset: 9 }));
        assert_eq!(
            r.take(usize::MAX),
            Err(CodecError::Truncated {
                offset: 10,
                needed: usize::MAX
            })
        );
    }
}

/// The fields written one after the other into a fixed-size array (the
/// fixed encodings of signed messages and AADs). The lengths are the
/// caller's constants: fields that would overrun the array are cut off,
/// and a shorter total leaves zeros (both caught by the encodings' tests).
pub fn concat<const N: usize>(fields: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut rest: &mut [u8] = &mut out;
    for field in fields {
        let take = field.len().min(rest.len());
        let (dst, tail) = core::mem::take(&mut rest).split_at_mut(take);
        dst.copy_from_slice(field.get(..take).unwrap_or_default());
        rest = tail;
    }
    out
}

#[cfg(test)]
mod concat_tests {
    #[test]
    fn fields_follow_each_other() {
        assert_eq!(super::concat::<5>(&[b"ab", b"", b"cde"]), *b"abcde");
        assert_eq!(super::concat::<3>(&[b"ab", b"cd"]), *b"abc");
        assert_eq!(super::concat::<4>(&[b"ab"]), [b'a', b'b', 0, 0]);
    }
}
