//! The proof-of-work rule (spec §5), without chain knowledge beyond the header ID preimage:
//! 64-bit compact `bits` ↔ target, `CalcWork`, the retarget formula, the little-endian
//! comparison, and the block-header ID that a nonce search hashes.
//!
//! Big-integer parts follow Bytom v1.1.1's `consensus/difficulty` exactly, including its corner
//! cases (exponent overflow in `BigToCompact`, `Rsh` rounding toward −∞ on negative values,
//! Euclidean division and no clamping in the retarget).

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Signed, Zero};

use crate::tensority::sha3_256;

/// Blocks between retargets.
pub const BLOCKS_PER_RETARGET: u64 = 2016;
/// Target block interval in seconds.
pub const TARGET_SECONDS_PER_BLOCK: u64 = 150;

const SIGN_BIT: u64 = 0x0080_0000_0000_0000;
const MANTISSA_MASK: u64 = 0x007f_ffff_ffff_ffff;

/// `CompactToBig`: exponent in the top byte, sign at bit 55, a 55-bit mantissa.
pub fn compact_to_big(bits: u64) -> BigInt {
    let mantissa = bits & MANTISSA_MASK;
    let negative = bits & SIGN_BIT != 0;
    let exponent = bits >> 56;
    let magnitude = if exponent <= 3 {
        BigInt::from(mantissa >> (8 * (3 - exponent)))
    } else {
        BigInt::from(mantissa) << (8 * (exponent - 3)) as usize
    };
    if negative {
        -magnitude
    } else {
        magnitude
    }
}

/// `BigToCompact`, bit-compatible with Go's, including the exponent wrapping past 255 bytes.
pub fn big_to_compact(n: &BigInt) -> u64 {
    if n.is_zero() {
        return 0;
    }
    let magnitude = n.magnitude();
    let mut exponent = magnitude.to_bytes_be().len() as u64;
    let mut mantissa = if exponent <= 3 {
        low_word(magnitude) << (8 * (3 - exponent))
    } else {
        let shift = (8 * (exponent - 3)) as usize;
        // Go's Rsh on a negative big.Int rounds toward −∞, i.e. the magnitude rounds up.
        let shifted = if n.is_negative() {
            let (q, r) = magnitude.div_rem(&(BigUint::one() << shift));
            if r.is_zero() {
                q
            } else {
                q + 1u32
            }
        } else {
            magnitude >> shift
        };
        low_word(&shifted)
    };
    if mantissa & SIGN_BIT != 0 {
        mantissa >>= 8;
        exponent += 1;
    }
    let mut compact = exponent.wrapping_shl(56) | mantissa;
    if n.is_negative() {
        compact |= SIGN_BIT;
    }
    compact
}

fn low_word(n: &BigUint) -> u64 {
    n.iter_u64_digits().next().unwrap_or(0)
}

/// `HashToBig`: the 32 bytes read as a little-endian unsigned integer.
pub fn hash_to_big(hash: &[u8; 32]) -> BigUint {
    BigUint::from_bytes_le(hash)
}

/// `CalcWork`: `2^256 / (target + 1)`, or 0 when the target is not positive.
pub fn calc_work(bits: u64) -> BigUint {
    let target = compact_to_big(bits);
    match target.to_biguint() {
        Some(t) if !t.is_zero() => (BigUint::one() << 256usize) / (t + 1u32),
        _ => BigUint::zero(),
    }
}

/// `CalcNextRequiredDifficulty`: every 2016 blocks, `old · int64(last_ts − cmp_ts) / (2016·150)`
/// with Euclidean division and no clamping; otherwise the last bits unchanged.
pub fn calc_next_required_difficulty(
    last_height: u64,
    last_timestamp: u64,
    last_bits: u64,
    compare_timestamp: u64,
) -> u64 {
    if !last_height.is_multiple_of(BLOCKS_PER_RETARGET) || last_height == 0 {
        return last_bits;
    }
    let target_span = BigInt::from(BLOCKS_PER_RETARGET * TARGET_SECONDS_PER_BLOCK);
    let actual_span = BigInt::from(last_timestamp.wrapping_sub(compare_timestamp) as i64);
    let product = compact_to_big(last_bits) * actual_span;
    // Euclidean division by a positive divisor is floor division.
    big_to_compact(&product.div_floor(&target_span))
}

/// A decoded target for fast repeated checks: `LE256(hash) <= target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The target is negative: no hash passes.
    Never,
    /// Hashes whose little-endian value is at most this bound pass (bound stored little-endian).
    AtMost([u8; 32]),
    /// The target is at least 2^256 − 1: every hash passes.
    Always,
}

impl Target {
    /// The target encoded by compact `bits`.
    pub fn from_bits(bits: u64) -> Self {
        let value = compact_to_big(bits);
        if value.sign() == Sign::Minus {
            return Target::Never;
        }
        let bytes = value.magnitude().to_bytes_le();
        if bytes.len() > 32 {
            return Target::Always;
        }
        let mut bound = [0u8; 32];
        bound[..bytes.len()].copy_from_slice(&bytes);
        Target::AtMost(bound)
    }

    /// A target from a 256-bit little-endian bound (as pools hand out share targets).
    pub fn from_le_bytes(bound: [u8; 32]) -> Self {
        Target::AtMost(bound)
    }

    /// Whether `hash`, read as a little-endian 256-bit integer, meets the target.
    pub fn is_met_by(&self, hash: &[u8; 32]) -> bool {
        match self {
            Target::Never => false,
            Target::Always => true,
            Target::AtMost(bound) => {
                for i in (0..32).rev() {
                    if hash[i] != bound[i] {
                        return hash[i] < bound[i];
                    }
                }
                true
            }
        }
    }
}

/// `CheckProofOfWork` on an already computed Tensority result.
pub fn meets_bits(pow_hash: &[u8; 32], bits: u64) -> bool {
    Target::from_bits(bits).is_met_by(pow_hash)
}

/// The block-header fields that fix a block's ID except the nonce (spec §5.1). The ID is
/// `SHA3("entryid:blockheader:" || SHA3(inner))` with `inner` the fields below in this order
/// (`bits` before `nonce`, unlike the wire format), integers as u64 little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTemplate {
    inner: [u8; HeaderTemplate::INNER_LEN],
}

impl HeaderTemplate {
    const PREFIX_LEN: usize = 8 + 8 + 32 + 8 + 32 + 32 + 8;
    const INNER_LEN: usize = Self::PREFIX_LEN + 8;

    /// A template from the header fields.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        version: u64,
        height: u64,
        previous_block_id: &[u8; 32],
        timestamp: u64,
        transactions_merkle_root: &[u8; 32],
        transaction_status_hash: &[u8; 32],
        bits: u64,
    ) -> Self {
        let mut inner = [0u8; Self::INNER_LEN];
        let mut at = 0;
        for part in [
            &version.to_le_bytes()[..],
            &height.to_le_bytes(),
            previous_block_id,
            &timestamp.to_le_bytes(),
            transactions_merkle_root,
            transaction_status_hash,
            &bits.to_le_bytes(),
        ] {
            inner[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Self { inner }
    }

    /// The compact target in the template.
    pub fn bits(&self) -> u64 {
        u64::from_le_bytes(
            self.inner[Self::PREFIX_LEN - 8..Self::PREFIX_LEN]
                .try_into()
                .unwrap_or([0; 8]),
        )
    }

    /// The block ID (the Tensority input) for `nonce`.
    pub fn header_hash(&self, nonce: u64) -> [u8; 32] {
        let mut inner = self.inner;
        inner[Self::PREFIX_LEN..].copy_from_slice(&nonce.to_le_bytes());
        let mut outer = [0u8; 20 + 32];
        outer[..20].copy_from_slice(b"entryid:blockheader:");
        outer[20..].copy_from_slice(&sha3_256(&inner));
        sha3_256(&outer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;

    #[test]
    fn mainnet_genesis_id() {
        let t = HeaderTemplate::new(
            1,
            0,
            &[0; 32],
            1_524_549_600,
            &hex::decode32("58e45ceb675a0b3d7ad3ab9d4288048789de8194e9766b26d8f42fdb624d4390")
                .unwrap(),
            &hex::decode32("c9c377e5192668bc0a367e4a4764f11e7c725ecced1d7b6a492974fab1b6d5bc")
                .unwrap(),
            2_161_727_821_137_910_632,
        );
        assert_eq!(
            hex::encode(&t.header_hash(9_253_507_043_297)),
            "a75483474799ea1aa6bb910a1a5025b4372bf20bef20f246a2c2dc5e12e8a053"
        );
        assert_eq!(t.bits(), 2_161_727_821_137_910_632);
    }

    #[test]
    fn target_comparison_is_little_endian_and_inclusive() {
        let bits = 0x1e00_0000_0001_1b68u64;
        let t = Target::from_bits(bits);
        let mut bound = [0u8; 32];
        bound[27..30].copy_from_slice(&[0x68, 0x1b, 0x01]);
        assert_eq!(t, Target::AtMost(bound));
        assert!(t.is_met_by(&bound), "equal passes");
        let mut above = bound;
        above[0] = 1;
        assert!(!t.is_met_by(&above));
        let mut below = bound;
        below[27] = 0x67;
        below[0] = 0xff;
        assert!(t.is_met_by(&below));
        assert_eq!(
            Target::from_bits(0x0180_0000_0001_0000),
            Target::Never,
            "-1"
        );
        assert_eq!(Target::from_bits(0xff00_0000_0000_0001), Target::Always);
        assert!(Target::from_bits(0).is_met_by(&[0; 32]));
        assert!(!Target::from_bits(0).is_met_by(&[1; 32]));
    }
}
