//! Value encodings of the chain database (layouts in [`super::keys`]). Every decoder checks
//! lengths and flag bits and returns a [`CodecError`]: corrupt bytes never panic.

use bystack_engine::validation::UtxoEntry;
use bystack_engine::Hash;

/// Why a stored value does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The value has the wrong length.
    #[error("length {got}, expected {expected}")]
    Length {
        /// Bytes present.
        got: usize,
        /// Bytes the layout needs.
        expected: usize,
    },
    /// A flag or tag byte has a value the layout does not define.
    #[error("bad {field} byte {value:#04x}")]
    BadByte {
        /// Which byte.
        field: &'static str,
        /// Its value.
        value: u8,
    },
}

type Result<T> = std::result::Result<T, CodecError>;

const COINBASE: u8 = 1;
const SPENT: u8 = 2;

/// Bytes of an encoded [`UtxoEntry`].
pub const UTXO_ENTRY_LEN: usize = 9;

/// `u8 flags (1 coinbase, 2 spent) ‖ u64 BE block height`.
pub fn encode_utxo(entry: &UtxoEntry) -> [u8; UTXO_ENTRY_LEN] {
    let mut out = [0u8; UTXO_ENTRY_LEN];
    out[0] = if entry.is_coinbase { COINBASE } else { 0 } | if entry.spent { SPENT } else { 0 };
    out[1..].copy_from_slice(&entry.block_height.to_be_bytes());
    out
}

/// Inverse of [`encode_utxo`].
///
/// # Errors
/// [`CodecError`] on a wrong length or unknown flag bits.
pub fn decode_utxo(bytes: &[u8]) -> Result<UtxoEntry> {
    let bytes: &[u8; UTXO_ENTRY_LEN] = bytes.try_into().map_err(|_| CodecError::Length {
        got: bytes.len(),
        expected: UTXO_ENTRY_LEN,
    })?;
    let flags = bytes[0];
    if flags & !(COINBASE | SPENT) != 0 {
        return Err(CodecError::BadByte {
            field: "utxo flags",
            value: flags,
        });
    }
    let mut height = [0u8; 8];
    height.copy_from_slice(&bytes[1..]);
    Ok(UtxoEntry {
        is_coinbase: flags & COINBASE != 0,
        block_height: u64::from_be_bytes(height),
        spent: flags & SPENT != 0,
    })
}

/// `u32 BE count ‖ bitmap`, bit i (LSB first in each byte) = `status_fail[i]`.
pub fn encode_statuses(status_fail: &[bool]) -> Vec<u8> {
    let count = status_fail.len();
    let mut out = Vec::with_capacity(4 + count.div_ceil(8));
    out.extend_from_slice(&(count as u32).to_be_bytes());
    out.resize(4 + count.div_ceil(8), 0);
    for (i, &fail) in status_fail.iter().enumerate() {
        if fail {
            out[4 + i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// Inverse of [`encode_statuses`].
///
/// # Errors
/// [`CodecError`] on a length that does not match the count, or set padding bits.
pub fn decode_statuses(bytes: &[u8]) -> Result<Vec<bool>> {
    let count = read_u32(bytes)? as usize;
    let expected = 4 + count.div_ceil(8);
    if bytes.len() != expected {
        return Err(CodecError::Length {
            got: bytes.len(),
            expected,
        });
    }
    let bitmap = &bytes[4..];
    if !count.is_multiple_of(8) {
        let last = bitmap[bitmap.len() - 1];
        if last >> (count % 8) != 0 {
            return Err(CodecError::BadByte {
                field: "status padding",
                value: last,
            });
        }
    }
    Ok((0..count)
        .map(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
        .collect())
}

/// The UTXO entries a block touched (spent or created), as they were before the block:
/// `None` for an output that did not exist. Detaching the block restores exactly these.
pub type Undo = Vec<(Hash, Option<UtxoEntry>)>;

const UNDO_ABSENT: u8 = 0;
const UNDO_PRESENT: u8 = 1;

/// `u32 BE count ‖ count × ([32] id ‖ u8 tag (0 absent, 1 present) ‖ [entry if present])`.
pub fn encode_undo(undo: &[(Hash, Option<UtxoEntry>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + undo.len() * (33 + UTXO_ENTRY_LEN));
    out.extend_from_slice(&(undo.len() as u32).to_be_bytes());
    for (id, entry) in undo {
        out.extend_from_slice(id.as_bytes());
        match entry {
            None => out.push(UNDO_ABSENT),
            Some(entry) => {
                out.push(UNDO_PRESENT);
                out.extend_from_slice(&encode_utxo(entry));
            }
        }
    }
    out
}

/// Inverse of [`encode_undo`].
///
/// # Errors
/// [`CodecError`] on truncation, trailing bytes or an unknown tag.
pub fn decode_undo(bytes: &[u8]) -> Result<Undo> {
    let count = read_u32(bytes)? as usize;
    let mut rest = &bytes[4..];
    // Every record takes at least 33 bytes: a count larger than that is corrupt, and must
    // not size an allocation.
    if count > rest.len() / 33 {
        return Err(CodecError::Length {
            got: bytes.len(),
            expected: 4 + count.saturating_mul(33),
        });
    }
    let mut undo = Vec::with_capacity(count);
    for _ in 0..count {
        let truncated = |need: usize| CodecError::Length {
            got: bytes.len(),
            expected: bytes.len() - rest.len() + need,
        };
        if rest.len() < 33 {
            return Err(truncated(33));
        }
        let id = Hash(rest[..32].try_into().map_err(|_| truncated(33))?);
        let tag = rest[32];
        rest = &rest[33..];
        let entry = match tag {
            UNDO_ABSENT => None,
            UNDO_PRESENT => {
                if rest.len() < UTXO_ENTRY_LEN {
                    return Err(truncated(UTXO_ENTRY_LEN));
                }
                let entry = decode_utxo(&rest[..UTXO_ENTRY_LEN])?;
                rest = &rest[UTXO_ENTRY_LEN..];
                Some(entry)
            }
            value => {
                return Err(CodecError::BadByte {
                    field: "undo tag",
                    value,
                })
            }
        };
        undo.push((id, entry));
    }
    if !rest.is_empty() {
        return Err(CodecError::Length {
            got: bytes.len(),
            expected: bytes.len() - rest.len(),
        });
    }
    Ok(undo)
}

/// `u64 BE height ‖ [32] hash`.
pub fn encode_tip(height: u64, hash: &Hash) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&height.to_be_bytes());
    out[8..].copy_from_slice(hash.as_bytes());
    out
}

/// Inverse of [`encode_tip`].
///
/// # Errors
/// [`CodecError::Length`].
pub fn decode_tip(bytes: &[u8]) -> Result<(u64, Hash)> {
    if bytes.len() != 40 {
        return Err(CodecError::Length {
            got: bytes.len(),
            expected: 40,
        });
    }
    let mut height = [0u8; 8];
    height.copy_from_slice(&bytes[..8]);
    Ok((u64::from_be_bytes(height), decode_hash(&bytes[8..])?))
}

/// A bare 32-byte hash.
///
/// # Errors
/// [`CodecError::Length`].
pub fn decode_hash(bytes: &[u8]) -> Result<Hash> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| CodecError::Length {
        got: bytes.len(),
        expected: 32,
    })?;
    Ok(Hash(bytes))
}

/// A `u32 BE` at the start of `bytes`.
fn read_u32(bytes: &[u8]) -> Result<u32> {
    let head: [u8; 4] =
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(CodecError::Length {
                got: bytes.len(),
                expected: 4,
            })?;
    Ok(u32::from_be_bytes(head))
}

/// A format version value.
///
/// # Errors
/// [`CodecError::Length`].
pub fn decode_version(bytes: &[u8]) -> Result<u32> {
    if bytes.len() != 4 {
        return Err(CodecError::Length {
            got: bytes.len(),
            expected: 4,
        });
    }
    read_u32(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(is_coinbase: bool, block_height: u64, spent: bool) -> UtxoEntry {
        UtxoEntry {
            is_coinbase,
            block_height,
            spent,
        }
    }

    #[test]
    fn utxo_entries_round_trip_and_reject_bad_flags() {
        for e in [entry(false, 0, false), entry(true, u64::MAX, true)] {
            assert_eq!(decode_utxo(&encode_utxo(&e)), Ok(e));
        }
        let mut bad = encode_utxo(&entry(true, 3, false));
        bad[0] = 4;
        assert!(matches!(decode_utxo(&bad), Err(CodecError::BadByte { .. })));
        assert!(matches!(
            decode_utxo(&bad[..8]),
            Err(CodecError::Length { .. })
        ));
    }

    #[test]
    fn statuses_round_trip_and_reject_corruption() {
        for n in [0usize, 1, 7, 8, 9, 17] {
            let s: Vec<bool> = (0..n).map(|i| i % 3 == 1).collect();
            assert_eq!(decode_statuses(&encode_statuses(&s)).as_ref(), Ok(&s));
        }
        let mut padded = encode_statuses(&[true, false, true]);
        padded[4] |= 0x80;
        assert!(decode_statuses(&padded).is_err());
        assert!(decode_statuses(&[0, 0, 0, 9, 1]).is_err());
        assert!(decode_statuses(&[0, 0]).is_err());
    }

    #[test]
    fn undo_round_trips_and_rejects_truncation() {
        let undo = vec![
            (Hash([1; 32]), None),
            (Hash([2; 32]), Some(entry(true, 5, true))),
        ];
        let bytes = encode_undo(&undo);
        assert_eq!(decode_undo(&bytes), Ok(undo));
        for cut in 0..bytes.len() {
            assert!(decode_undo(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode_undo(&extra).is_err());
        let mut bad_tag = bytes;
        bad_tag[4 + 32] = 9;
        assert!(decode_undo(&bad_tag).is_err());
        assert!(
            decode_undo(&[0xff, 0xff, 0xff, 0xff]).is_err(),
            "huge count"
        );
    }

    #[test]
    fn tip_round_trips() {
        let h = Hash([9; 32]);
        assert_eq!(decode_tip(&encode_tip(42, &h)), Ok((42, h)));
        assert!(decode_tip(&[0; 39]).is_err());
    }
}
