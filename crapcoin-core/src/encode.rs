//! The canonical binary encoding: fixed-width big-endian integers and raw
//! byte arrays in a fixed field order. Hashes and signatures are computed over
//! these bytes, never over JSON, so every node derives the same ones.
//!
//! [`Encode`] writes a value; [`Decode`] reads one back from untrusted bytes
//! and never panics: short input, trailing bytes and bad tags are
//! [`DecodeError`]s.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("input ended early: needed {needed} more bytes")]
    UnexpectedEnd {
        /// Bytes missing.
        needed: usize,
    },
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A one-byte tag had a value the format does not define.
    #[error("bad {what} tag {tag}")]
    BadTag {
        /// Which tag.
        what: &'static str,
        /// The value read.
        tag: u8,
    },
    /// The input is longer than any valid value.
    #[error("input is {size} bytes, at most {max} allowed")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The largest valid encoding.
        max: usize,
    },
}

/// A value with a canonical encoding.
pub trait Encode {
    /// Appends the canonical bytes to `out`.
    fn encode_to(&self, out: &mut Vec<u8>);

    /// The canonical bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_to(&mut out);
        out
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// The largest valid encoding, checked before anything is read.
    const MAX_ENCODED_LEN: usize;

    /// Reads one value from the front of `r`.
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`] when the bytes are not a valid encoding.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes exactly one value from `bytes`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] before reading oversize input, and any error
    /// of [`Decode::decode_from`], and [`DecodeError::TrailingBytes`].
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > Self::MAX_ENCODED_LEN {
            return Err(DecodeError::TooLarge {
                size: bytes.len(),
                max: Self::MAX_ENCODED_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let value = Self::decode_from(&mut r)?;
        match r.remaining() {
            0 => Ok(value),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// A cursor over untrusted bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// Reads `N` bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] when fewer remain.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(DecodeError::UnexpectedEnd {
                needed: N - self.bytes.len(),
            });
        };
        self.bytes = rest;
        Ok(*head)
    }

    /// Reads a big-endian `u64`.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] when fewer than 8 bytes remain.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    /// Reads one byte.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] at the end of input.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array::<1>().map(|[b]| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_short_input() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u64(), Err(DecodeError::UnexpectedEnd { needed: 5 }));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.remaining(), 2);
    }
}
