//! Tensority, Bytom's matrix-multiplication proof of work (../shared/spec/tensority.md).
//!
//! `tensority(header_hash, seed)`: the seed gives 256 int8 matrices ([`seed`]); each of 4 chains
//! runs 64 dependent products `A ← reduce8(A · Mᵀ)` over a 32-entry matrix sequence taken from
//! the header hash; the four results are summed mod 256, FNV-folded and hashed with SHA3-256.
//!
//! [`reference`] is the spec in code and the oracle for every other backend; [`cpu`] holds the
//! fast SIMD kernels with runtime dispatch; [`float`] the exact f32 path for matmul
//! hardware; `webgpu` and `cuda` the GPU backends (features `wgpu`, `cuda`), which share
//! [`batch`].

pub mod batch;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod float;
pub mod reference;
pub mod seed;
#[cfg(feature = "wgpu")]
pub mod webgpu;

use sha3::{Digest, Sha3_256};

/// Side of every matrix.
pub const SIDE: usize = 256;
/// Bytes in one int8 256×256 matrix.
pub const MATRIX_BYTES: usize = SIDE * SIDE;
/// Matrices per seed.
pub const MATRIX_COUNT: usize = 256;
/// Chains per hash.
pub const CHAINS: usize = 4;
/// Products per chain: the 32-entry sequence is walked twice.
pub const STEPS_PER_CHAIN: usize = 64;
/// Multiply-accumulates per hash: 4 chains × 64 products × 256³ = 2^32.
pub const MACS_PER_HASH: u64 = (CHAINS * STEPS_PER_CHAIN) as u64 * (SIDE * SIDE * SIDE) as u64;

/// FIPS-202 SHA3-256 (padding 0x06, not Keccak's 0x01).
pub fn sha3_256(data: &[u8]) -> [u8; 32] {
    Sha3_256::digest(data).into()
}

/// The int32 → int8 step after every product (spec §3.1): `(lo byte + next byte) mod 256`,
/// read as two's complement. Depends only on `v mod 2^16`.
#[inline(always)]
pub fn reduce8(v: i32) -> i8 {
    let lo = v & 0xff;
    let hi = (v >> 8) & 0xff;
    (lo + hi) as u8 as i8
}

/// The 32 matrix indices that chain `k` (0..4) walks: `SHA3(header_hash[8k..8k+8])`.
pub fn chain_sequence(header_hash: &[u8; 32], chain: usize) -> [u8; 32] {
    sha3_256(&header_hash[8 * chain..8 * chain + 8])
}

/// The 256×256 byte matrix after one chain, row-major (`256·r + c`), as two's-complement bytes.
pub type ChainResult = Box<[u8; MATRIX_BYTES]>;

/// Adds chain results mod 256 (spec §3.2); `sum` starts at zero.
pub fn accumulate_chain(sum: &mut [u8; MATRIX_BYTES], chain: &[u8; MATRIX_BYTES]) {
    for (s, c) in sum.iter_mut().zip(chain.iter()) {
        *s = s.wrapping_add(*c);
    }
}

/// Packs each 256-byte row into 64 words from column blocks 0/64/128/192 and folds the rows
/// pairwise with `w·0x01000193 ^ w'` down to one row of 64 words (spec §4), serialised LE.
pub fn fnv_fold(sum: &[u8; MATRIX_BYTES]) -> [u8; 256] {
    let mut words = vec![[0u32; 64]; SIDE];
    for (r, row) in words.iter_mut().enumerate() {
        let s = &sum[r * SIDE..(r + 1) * SIDE];
        for (j, w) in row.iter_mut().enumerate() {
            *w = u32::from(s[j])
                | u32::from(s[j + 64]) << 8
                | u32::from(s[j + 128]) << 16
                | u32::from(s[j + 192]) << 24;
        }
    }
    let mut k = SIDE;
    while k > 1 {
        let half = k / 2;
        for r in 0..half {
            let other = words[r + half];
            for (w, o) in words[r].iter_mut().zip(other) {
                *w = w.wrapping_mul(0x0100_0193) ^ o;
            }
        }
        k = half;
    }
    let mut out = [0u8; 256];
    for (o, w) in out.chunks_exact_mut(4).zip(words[0]) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The final step shared by every backend: the sum of the four chains → FNV fold → SHA3-256.
pub fn finish(sum: &[u8; MATRIX_BYTES]) -> [u8; 32] {
    sha3_256(&fnv_fold(sum))
}

/// A zeroed 64 KiB byte matrix on the heap.
pub fn zero_matrix() -> ChainResult {
    vec![0u8; MATRIX_BYTES]
        .into_boxed_slice()
        .try_into()
        .expect("MATRIX_BYTES long")
}

/// Tensority with the scalar reference, using the process-wide matrix cache. This is the spec
/// in code; fast callers use a [`crate::backend::TensorityBackend`].
pub fn tensority(header_hash: &[u8; 32], seed: &[u8; 32]) -> [u8; 32] {
    let mats = seed::shared_matrices(seed);
    reference::hash(&mats, header_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduce8_matches_the_spec_examples() {
        assert_eq!(reduce8(0), 0);
        assert_eq!(reduce8(5), 5);
        assert_eq!(reduce8(127), 127);
        assert_eq!(reduce8(-1), -2, "0xffff → 0xff + 0xff = 0x1fe → 0xfe");
        assert_eq!(reduce8(-127), -128);
        assert_eq!(reduce8(-128), 127);
        assert_eq!(reduce8(0x1234), (0x34 + 0x12) as i8);
        // Only v mod 2^16 matters.
        for v in [-70000, -3, 12345, 1 << 22, -(1 << 22)] {
            assert_eq!(reduce8(v), reduce8(v.wrapping_add(1 << 16)));
        }
    }

    #[test]
    fn macs_per_hash_is_two_to_the_32() {
        assert_eq!(MACS_PER_HASH, 1 << 32);
    }
}
