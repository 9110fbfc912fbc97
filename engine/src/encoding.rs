//! Bytom's primitive encodings (spec §1), sans I/O: a [`Reader`] over a byte slice that counts
//! what it consumed, and writer functions that append to a `Vec<u8>`.
//!
//! | name | bytes |
//! |---|---|
//! | varint63 / varint31 | unsigned LEB128, 7 bits per byte, low group first; value ≤ 2^63−1 / 2^31−1 |
//! | varstr31 | varint31 length, then the bytes |
//! | varstr list | varint31 count, then that many varstr31 |
//! | extensible string | a varstr31 whose content holds fields; unparsed content is a kept "suffix" |
//! | hash | 32 raw bytes |
//!
//! Decoding mirrors Go's `binary.ReadUvarint`: non-minimal encodings (`80 00` = 0) are accepted,
//! more than 10 bytes or a value past 64 bits is an overflow. Nothing here panics on untrusted
//! input and no allocation is sized from a claimed length beyond the bytes actually present.

use bystack_kernels::hex::HexError;
use thiserror::Error;

use crate::hash::{AssetId, Hash};

/// Largest value a varint63 may carry (`math.MaxInt64`).
pub const VARINT63_MAX: u64 = i64::MAX as u64;
/// Largest value a varint31 may carry (`math.MaxInt32`).
pub const VARINT31_MAX: u64 = i32::MAX as u64;
/// Longest LEB128 encoding of a u64 that Go's reader accepts.
pub const MAX_VARINT_LEN: usize = 10;

/// Why bytes could not be decoded into a chain structure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("unexpected end of input: needed {needed} bytes, {remaining} remaining")]
    UnexpectedEof {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint is longer than 10 bytes or does not fit in 64 bits.
    #[error("varint overflows a 64-bit integer")]
    VarintOverflow,
    /// A varint decoded to a value above its limit (2^63−1 or 2^31−1).
    #[error("varint value {value} out of range (max {max})")]
    VarintRange {
        /// The decoded value.
        value: u64,
        /// The limit for this field.
        max: u64,
    },
    /// The leading serialization-flags byte is not one this structure accepts.
    #[error("unsupported serialization flags {got:#04x} (expected {expected})")]
    BadSerflags {
        /// The flags byte found.
        got: u8,
        /// What the reader accepts, in words.
        expected: &'static str,
    },
    /// Bytes were left over after a complete structure.
    #[error("{count} trailing bytes after the encoding")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A spend or output commitment of asset version 1 names a VM version other than 1.
    #[error("unsupported vm version {got} for asset version 1 (expected 1)")]
    UnsupportedVmVersion {
        /// The VM version found.
        got: u64,
    },
    /// An asset-version-1 input commitment starts with an unknown type byte.
    #[error(
        "unsupported input type {got:#04x} (expected 0x00 issuance, 0x01 spend or 0x02 coinbase)"
    )]
    UnknownInputType {
        /// The type byte found.
        got: u8,
    },
    /// An issuance commits to an asset ID that its program and definition do not produce.
    #[error("issuance asset id {committed} does not match {computed} derived from its program and definition")]
    BadAssetId {
        /// The asset ID in the input commitment.
        committed: AssetId,
        /// The asset ID recomputed from the witness.
        computed: AssetId,
    },
    /// A transaction with a coinbase input has no output to take the coinbase value from
    /// (Bytom's mapper indexes `outputs[0]` and would crash).
    #[error("coinbase transaction has no outputs")]
    CoinbaseWithoutOutputs,
    /// The hex text form could not be decoded.
    #[error("invalid hex: {0}")]
    Hex(#[from] HexError),
}

/// Result alias for decoding.
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Why a structure could not be encoded (Go's writers refuse these values too).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A varint63 value above 2^63−1, or a varint31 count or length above 2^31−1.
    #[error("value {value} out of range for a varint (max {max})")]
    VarintRange {
        /// The value that was to be written.
        value: u64,
        /// The limit for this field.
        max: u64,
    },
}

/// A cursor over untrusted bytes that tracks how many it consumed.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unconsumed bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Consumes and returns the unconsumed bytes.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos = self.buf.len();
        rest
    }

    /// Errors unless every byte was consumed.
    ///
    /// # Errors
    /// [`DecodeError::TrailingBytes`] with the number of bytes left.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// Reads exactly `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] when fewer than `n` bytes remain.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::UnexpectedEof {
                needed: n,
                remaining,
            });
        }
        let out = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or(DecodeError::UnexpectedEof {
                needed: n,
                remaining,
            })?;
        self.pos += n;
        Ok(out)
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] at the end of input.
    pub fn read_u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::UnexpectedEof {
            needed: 1,
            remaining: 0,
        })?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads 32 raw bytes as a hash or asset ID.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] when fewer than 32 bytes remain.
    pub fn read_hash(&mut self) -> Result<Hash> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.read_bytes(32)?);
        Ok(Hash(out))
    }

    /// Reads an unsigned LEB128 value with Go's `ReadUvarint` rules: non-minimal encodings are
    /// accepted; an 11th byte or bits past 2^64 are an overflow.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEof`] inside the varint, [`DecodeError::VarintOverflow`].
    pub fn read_uvarint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let b = self.read_u8()?;
            let group = u64::from(b & 0x7f);
            if b < 0x80 {
                // The 10th byte may only contribute bit 63.
                if i == MAX_VARINT_LEN - 1 && b > 1 {
                    return Err(DecodeError::VarintOverflow);
                }
                return Ok(value | group << (7 * i));
            }
            value |= group << (7 * i);
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads a varint63 (≤ 2^63−1).
    ///
    /// # Errors
    /// As [`Reader::read_uvarint`], plus [`DecodeError::VarintRange`].
    pub fn read_varint63(&mut self) -> Result<u64> {
        let value = self.read_uvarint()?;
        if value > VARINT63_MAX {
            return Err(DecodeError::VarintRange {
                value,
                max: VARINT63_MAX,
            });
        }
        Ok(value)
    }

    /// Reads a varint31 (≤ 2^31−1).
    ///
    /// # Errors
    /// As [`Reader::read_uvarint`], plus [`DecodeError::VarintRange`].
    pub fn read_varint31(&mut self) -> Result<u32> {
        let value = self.read_uvarint()?;
        u32::try_from(value)
            .ok()
            .filter(|&v| u64::from(v) <= VARINT31_MAX)
            .ok_or(DecodeError::VarintRange {
                value,
                max: VARINT31_MAX,
            })
    }

    /// Reads a varint31 count or length as a `usize`.
    fn read_len(&mut self) -> Result<usize> {
        let n = self.read_varint31()?;
        // A u32 always fits in usize on the 32- and 64-bit targets we build for; saturating
        // keeps a hypothetical 16-bit target safe (the following read then fails with EOF).
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Reads a varstr31: a varint31 length then that many bytes.
    ///
    /// # Errors
    /// As [`Reader::read_varint31`], plus [`DecodeError::UnexpectedEof`] for a length past the end.
    pub fn read_varstr31(&mut self) -> Result<&'a [u8]> {
        let n = self.read_len()?;
        self.read_bytes(n)
    }

    /// Reads a varstr list: a varint31 count then that many varstr31.
    ///
    /// # Errors
    /// As [`Reader::read_varstr31`].
    pub fn read_varstr_list(&mut self) -> Result<Vec<Vec<u8>>> {
        let count = self.read_len()?;
        // Every element takes at least one byte, so the input bounds the allocation.
        let mut items = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            items.push(self.read_varstr31()?.to_vec());
        }
        Ok(items)
    }

    /// Reads an extensible string: a varstr31 whose content `parse` reads from a nested reader.
    /// Returns what `parse` returned and the content it left unread (the suffix).
    ///
    /// # Errors
    /// Errors from reading the varstr31 or from `parse`.
    pub fn read_extensible<T>(
        &mut self,
        parse: impl FnOnce(&mut Reader<'a>) -> Result<T>,
    ) -> Result<(T, Vec<u8>)> {
        let content = self.read_varstr31()?;
        let mut inner = Reader::new(content);
        let value = parse(&mut inner)?;
        Ok((value, inner.rest().to_vec()))
    }

    /// Reads the next `n`-element sequence with `item`, capping the up-front allocation by the
    /// remaining input (each element takes at least `min_item_len` bytes).
    ///
    /// # Errors
    /// The first error from `item`.
    pub fn read_seq<T>(
        &mut self,
        count: usize,
        min_item_len: usize,
        mut item: impl FnMut(&mut Reader<'a>, usize) -> Result<T>,
    ) -> Result<Vec<T>> {
        let cap = count.min(self.remaining() / min_item_len.max(1));
        let mut items = Vec::with_capacity(cap);
        for i in 0..count {
            items.push(item(self, i)?);
        }
        Ok(items)
    }

    /// Reads a varint31 count followed by that many elements (see [`Reader::read_seq`]).
    ///
    /// # Errors
    /// Errors from the count or from `item`.
    pub fn read_counted<T>(
        &mut self,
        min_item_len: usize,
        item: impl FnMut(&mut Reader<'a>, usize) -> Result<T>,
    ) -> Result<Vec<T>> {
        let count = self.read_len()?;
        self.read_seq(count, min_item_len, item)
    }
}

/// Appends the minimal unsigned LEB128 encoding of `value` (no range check: used for hashing).
pub fn write_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a varint63.
///
/// # Errors
/// [`EncodeError::VarintRange`] for a value above 2^63−1.
pub fn write_varint63(out: &mut Vec<u8>, value: u64) -> Result<(), EncodeError> {
    if value > VARINT63_MAX {
        return Err(EncodeError::VarintRange {
            value,
            max: VARINT63_MAX,
        });
    }
    write_uvarint(out, value);
    Ok(())
}

/// Appends a varint31.
///
/// # Errors
/// [`EncodeError::VarintRange`] for a value above 2^31−1.
pub fn write_varint31(out: &mut Vec<u8>, value: u64) -> Result<(), EncodeError> {
    if value > VARINT31_MAX {
        return Err(EncodeError::VarintRange {
            value,
            max: VARINT31_MAX,
        });
    }
    write_uvarint(out, value);
    Ok(())
}

/// Appends a varint31 count or length.
///
/// # Errors
/// [`EncodeError::VarintRange`] above 2^31−1.
pub fn write_len(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    write_varint31(out, u64::try_from(len).unwrap_or(u64::MAX))
}

/// Appends a varstr31.
///
/// # Errors
/// [`EncodeError::VarintRange`] for data longer than 2^31−1 bytes.
pub fn write_varstr31(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    write_len(out, data.len())?;
    out.extend_from_slice(data);
    Ok(())
}

/// Appends a varstr list.
///
/// # Errors
/// [`EncodeError::VarintRange`] for a count or an element length above 2^31−1.
pub fn write_varstr_list(out: &mut Vec<u8>, items: &[Vec<u8>]) -> Result<(), EncodeError> {
    write_len(out, items.len())?;
    for item in items {
        write_varstr31(out, item)?;
    }
    Ok(())
}

/// Appends 32 raw bytes.
pub fn write_hash(out: &mut Vec<u8>, hash: &Hash) {
    out.extend_from_slice(&hash.0);
}

/// Appends an extensible string: the content written by `fields`, then `suffix`, as one varstr31.
///
/// Bytom's own writer emits the suffix of spend and output commitments twice; that only differs
/// for non-empty suffixes (never seen in chain data) and we emit it once so that re-encoding
/// reproduces the bytes that were read.
///
/// # Errors
/// Errors from `fields`, or [`EncodeError::VarintRange`] for content above 2^31−1 bytes.
pub fn write_extensible(
    out: &mut Vec<u8>,
    suffix: &[u8],
    fields: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut content = Vec::new();
    fields(&mut content)?;
    content.extend_from_slice(suffix);
    write_varstr31(out, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uvarint(bytes: &[u8]) -> Result<u64> {
        Reader::new(bytes).read_uvarint()
    }

    #[test]
    fn varint_go_rules() {
        assert_eq!(uvarint(&[0x00]), Ok(0));
        assert_eq!(uvarint(&[0x80, 0x00]), Ok(0), "non-minimal accepted");
        assert_eq!(uvarint(&[0xac, 0x02]), Ok(300));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(uvarint(&max), Ok(u64::MAX));
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(uvarint(&over), Err(DecodeError::VarintOverflow));
        assert_eq!(uvarint(&[0x80; 11]), Err(DecodeError::VarintOverflow));
        let mut ten_zero = vec![0x80; 9];
        ten_zero.push(0x00);
        assert_eq!(uvarint(&ten_zero), Ok(0), "10-byte non-minimal zero");
        assert_eq!(
            uvarint(&[0x80]),
            Err(DecodeError::UnexpectedEof {
                needed: 1,
                remaining: 0
            })
        );
        assert_eq!(
            Reader::new(&max).read_varint63(),
            Err(DecodeError::VarintRange {
                value: u64::MAX,
                max: VARINT63_MAX
            })
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x08]).read_varint31(),
            Err(DecodeError::VarintRange {
                value: 1 << 31,
                max: VARINT31_MAX
            })
        );
    }

    #[test]
    fn writers_round_trip_and_refuse_out_of_range() {
        for v in [0, 1, 127, 128, 300, VARINT63_MAX] {
            let mut out = Vec::new();
            write_varint63(&mut out, v).unwrap();
            let mut r = Reader::new(&out);
            assert_eq!(r.read_varint63(), Ok(v));
            assert!(r.is_empty());
        }
        assert!(write_varint63(&mut Vec::new(), VARINT63_MAX + 1).is_err());
        assert!(write_varint31(&mut Vec::new(), VARINT31_MAX + 1).is_err());
    }

    #[test]
    fn varstr_and_extensible() {
        let mut out = Vec::new();
        write_varstr_list(&mut out, &[b"ab".to_vec(), vec![]]).unwrap();
        assert_eq!(out, [2, 2, b'a', b'b', 0]);
        let mut r = Reader::new(&out);
        assert_eq!(r.read_varstr_list().unwrap(), vec![b"ab".to_vec(), vec![]]);

        let mut out = Vec::new();
        write_extensible(&mut out, &[9, 9], |w| {
            w.push(7);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [3, 7, 9, 9]);
        let mut r = Reader::new(&out);
        let (first, suffix) = r.read_extensible(|r| r.read_u8()).unwrap();
        assert_eq!((first, suffix), (7, vec![9, 9]));
        assert_eq!(r.consumed(), 4);

        // A claimed huge length does not allocate or panic.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        assert!(matches!(
            r.read_varstr31(),
            Err(DecodeError::UnexpectedEof { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        assert!(r.read_varstr_list().is_err());
    }
}
