//! Fixed-size byte newtypes: [`BlockHash`], [`TxId`], [`Address`] and
//! [`Signature`], shown and parsed as lower-case hex (also in JSON), and the
//! domain-separated SHA-256 every hash in the protocol goes through.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The error of parsing a hex newtype from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexError {
    /// The text is not `2 * len` hex digits long.
    #[error("expected {expected} hex digits, got {got}")]
    Length {
        /// How many hex digits the type needs.
        expected: usize,
        /// How many characters the text had.
        got: usize,
    },
    /// A character is not a lower-case hex digit.
    #[error("not a lower-case hex string")]
    NotHex,
}

macro_rules! hex_newtype {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0; $len]);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The first four bytes as hex, for logs and names.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl FromStr for $name {
            type Err = HexError;

            fn from_str(s: &str) -> Result<Self, HexError> {
                if s.len() != 2 * $len {
                    return Err(HexError::Length { expected: 2 * $len, got: s.len() });
                }
                let mut out = [0u8; $len];
                decode_hex(s.as_bytes(), &mut out)?;
                Ok(Self(out))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Hex on the stack: serving a page of blocks would otherwise
                // allocate a string for every hash, key and signature.
                let mut buf = [0u8; 2 * $len];
                hex::encode_to_slice(self.0, &mut buf).expect("the buffer holds exactly 2 * len digits");
                s.serialize_str(std::str::from_utf8(&buf).expect("hex digits are ASCII"))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(HexVisitor::<Self>(std::marker::PhantomData))
            }
        }
    };
}

/// The value of each byte as a lower-case hex digit, or `0xff`. Upper case
/// is refused: one value has one text, so a hash or a signature in JSON
/// cannot be rewritten into a second form that still parses.
static HEX_DIGITS: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        table[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes `2 * out.len()` hex digits into `out` through a lookup table:
/// parsing a page of blocks decodes about 600 digits a block, and the
/// digit-by-digit matching of the `hex` crate was a measurable part of it.
fn decode_hex(digits: &[u8], out: &mut [u8]) -> Result<(), HexError> {
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = HEX_DIGITS[usize::from(pair[0])];
        let low = HEX_DIGITS[usize::from(pair[1])];
        if (high | low) > 0x0f {
            return Err(HexError::NotHex);
        }
        *byte = (high << 4) | low;
    }
    Ok(())
}

/// Parses a hex newtype from the string a deserializer hands over, without
/// copying it into a `String` first (a page of blocks holds thousands).
struct HexVisitor<T>(std::marker::PhantomData<T>);

impl<T: FromStr<Err = HexError>> serde::de::Visitor<'_> for HexVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hex string")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
        s.parse().map_err(E::custom)
    }
}

hex_newtype!(
    /// The hash of a block header: SHA-256 over the header's canonical encoding.
    BlockHash,
    32
);
hex_newtype!(
    /// The id of a transaction: SHA-256 over its canonical encoding, signature included.
    TxId,
    32
);
hex_newtype!(
    /// An account: the 32-byte ed25519 public key that signs for it.
    Address,
    32
);
hex_newtype!(
    /// An ed25519 signature over a transaction's signing bytes.
    Signature,
    64
);

/// Domain-separation tags: every hash of the protocol starts with one, so a
/// header can never be confused with a transaction or a signing message.
pub(crate) mod tag {
    pub(crate) const HEADER: &[u8] = b"crapcoin/header/v1";
    pub(crate) const TX: &[u8] = b"crapcoin/tx/v1";
    pub(crate) const SIGN: &[u8] = b"crapcoin/sign/v1";
    pub(crate) const EMPTY_TX_ROOT: &[u8] = b"crapcoin/empty-tx-root/v1";
    pub(crate) const GENESIS: &[u8] = b"crapcoin/genesis/v1";
}

/// A SHA-256 hasher that has already absorbed `tag`, length-prefixed so that
/// no tag is a prefix of another's input.
pub(crate) fn tagged(tag: &[u8]) -> Sha256 {
    let mut h = Sha256::new();
    h.update([u8::try_from(tag.len()).expect("tags are short constants")]);
    h.update(tag);
    h
}

/// `SHA-256(len(tag) || tag || data)`.
pub(crate) fn tagged_hash(tag: &[u8], data: &[u8]) -> [u8; 32] {
    let mut h = tagged(tag);
    h.update(data);
    h.finalize().into()
}

/// Leading zero bits of a hash, the measure proof of work is judged by.
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut zeros = 0;
    for byte in hash {
        if *byte == 0 {
            zeros += 8;
        } else {
            zeros += byte.leading_zeros();
            break;
        }
    }
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h = BlockHash([0xab; 32]);
        let s = h.to_string();
        assert_eq!(s.parse::<BlockHash>(), Ok(h));
        assert_eq!(
            "ab".parse::<BlockHash>(),
            Err(HexError::Length {
                expected: 64,
                got: 2
            })
        );
        assert_eq!("zz".repeat(32).parse::<BlockHash>(), Err(HexError::NotHex));
        let json = serde_json::to_string(&h).expect("serialises");
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<BlockHash>(&json).expect("parses"), h);
        assert!(serde_json::from_str::<BlockHash>("12").is_err());
    }

    #[test]
    fn the_digit_table_agrees_with_the_hex_crate() {
        // Every byte value decodes to itself; its upper-case text is refused.
        let bytes: Vec<u8> = (0..=255).collect();
        for chunk in bytes.chunks(32) {
            let lower = hex::encode(chunk);
            let want = BlockHash(chunk.try_into().expect("32 bytes"));
            assert_eq!(lower.parse::<BlockHash>(), Ok(want));
            assert_eq!(
                lower.to_uppercase().parse::<BlockHash>(),
                Err(HexError::NotHex)
            );
        }
        // Any other character, in either place of a pair, is refused.
        for c in (0u8..=127).filter(|c| !matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            for at in [0, 1, 63] {
                let mut text = "0".repeat(64).into_bytes();
                text[at] = c;
                let text = String::from_utf8(text).expect("ascii");
                assert_eq!(
                    text.parse::<BlockHash>(),
                    Err(HexError::NotHex),
                    "{c:#x} at {at}"
                );
            }
        }
        // 64 bytes that are not 64 characters.
        assert_eq!(
            format!("{}é", "0".repeat(62)).parse::<BlockHash>(),
            Err(HexError::NotHex)
        );
        // A JSON string with an escape still parses (the deserializer hands
        // over an unescaped copy instead of a borrow).
        let escaped = format!("\"\\u0061{}\"", "b".repeat(63));
        assert_eq!(
            serde_json::from_str::<BlockHash>(&escaped).expect("parses"),
            format!("a{}", "b".repeat(63)).parse().expect("hex")
        );
    }

    #[test]
    fn leading_zeros_counts_bits() {
        let mut h = [0xffu8; 32];
        assert_eq!(leading_zero_bits(&h), 0);
        h[0] = 0;
        h[1] = 0x1f;
        assert_eq!(leading_zero_bits(&h), 11);
        assert_eq!(leading_zero_bits(&[0; 32]), 256);
    }
}
