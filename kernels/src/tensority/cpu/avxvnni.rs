//! AVX-VNNI kernel: the VEX-encoded `vpdpbusd` on ymm (32 MAC per instruction), for CPUs that
//! have AVX-VNNI but not AVX-512 (Intel client cores from Alder Lake on). Same algorithm as
//! [`super::avx512`] (biased state, per-row corrections, see [`super::vnni`]), sized for 16 ymm
//! registers: a tile of 16 rows (2 ymm) × 4 columns keeps 8 accumulators, 2 state vectors and
//! one broadcast in registers.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::vnni::QuadLayout;
use crate::tensority::{MATRIX_BYTES, SIDE};

/// Rows per block of the state (2 ymm of 8 rows).
const BLOCK_ROWS: usize = 16;
/// Bytes of one block.
const BLOCK_BYTES: usize = BLOCK_ROWS * SIDE;

/// The state layout of this kernel: biased quads in blocks of 16 rows.
pub type Layout = QuadLayout<BLOCK_ROWS>;

/// One product: `out = layout(reduce8(A · Mᵀ))` for `a` in the biased layout.
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI. Slices must be 65,536 bytes (`a`, `m`, `out`) and
/// 256 values (`corr`); `a` and `out` must be 32-byte aligned.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avxvnni")]
pub unsafe fn step(a: &[u8], m: &[u8], corr: &[i32], out: &mut [u8]) {
    assert!(a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    assert!(corr.len() == SIDE);
    assert!((a.as_ptr() as usize).is_multiple_of(32));
    assert!((out.as_ptr() as usize).is_multiple_of(32));
    let a = a.as_ptr();
    let m = m.as_ptr();
    let corr = corr.as_ptr();
    let out = out.as_mut_ptr();
    // Within each dword, bytes [b0 b1 b2 b3] → [b0 b2 b1 b3].
    let swap_mid = _mm256_setr_epi8(
        0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15, 0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11,
        12, 14, 13, 15,
    );
    let bias = _mm256_set1_epi8(-128);
    for rb in 0..SIDE / BLOCK_ROWS {
        // SAFETY: (rb + 1) * BLOCK_BYTES <= MATRIX_BYTES for every block.
        let a_blk = unsafe { a.add(rb * BLOCK_BYTES) };
        // SAFETY: as above, for the output.
        let o_blk = unsafe { out.add(rb * BLOCK_BYTES) };
        for cq in 0..SIDE / 4 {
            let c0 = cq * 4;
            // SAFETY: c0 + 3 < 256 = corr.len().
            let init: [__m256i; 4] =
                std::array::from_fn(|j| _mm256_set1_epi32(unsafe { *corr.add(c0 + j) }));
            let mut acc = [init; 2];
            // SAFETY: rows c0..c0+4 of a 256×256 matrix.
            let m_rows: [*const u8; 4] = std::array::from_fn(|j| unsafe { m.add((c0 + j) * SIDE) });
            for q in 0..SIDE / 4 {
                // SAFETY: q * 64 + 32 + 32 <= BLOCK_BYTES; aligned because a_blk is.
                let av: [__m256i; 2] = std::array::from_fn(|i| unsafe {
                    _mm256_load_si256(a_blk.add(q * BLOCK_ROWS * 4 + i * 32).cast())
                });
                for (j, row) in m_rows.iter().enumerate() {
                    // SAFETY: 4q + 4 <= 256 bytes in the row.
                    let w = unsafe { row.add(4 * q).cast::<i32>().read_unaligned() };
                    let b = _mm256_set1_epi32(w);
                    for (i, a_vec) in av.iter().enumerate() {
                        acc[i][j] = _mm256_dpbusd_avx_epi32(acc[i][j], *a_vec, b);
                    }
                }
            }
            for (i, v) in acc.iter().enumerate() {
                // lo = [v0.b0 v1.b0 v2.b0 v3.b0], hi = [v0.b1 v1.b1 v2.b1 v3.b1], out = lo + hi.
                let p01 = _mm256_blend_epi16::<0xAA>(v[0], _mm256_slli_epi32::<16>(v[1]));
                let p23 = _mm256_blend_epi16::<0xAA>(v[2], _mm256_slli_epi32::<16>(v[3]));
                let p01 = _mm256_shuffle_epi8(p01, swap_mid);
                let p23 = _mm256_shuffle_epi8(p23, swap_mid);
                let lo = _mm256_blend_epi16::<0xAA>(p01, _mm256_slli_epi32::<16>(p23));
                let hi = _mm256_blend_epi16::<0xAA>(_mm256_srli_epi32::<16>(p01), p23);
                let packed = _mm256_add_epi8(_mm256_add_epi8(lo, hi), bias);
                // SAFETY: cq * 64 + i * 32 + 32 <= BLOCK_BYTES; aligned because o_blk is.
                unsafe {
                    _mm256_store_si256(o_blk.add(cq * BLOCK_ROWS * 4 + i * 32).cast(), packed)
                };
            }
        }
    }
}

/// Runs one chain (identity, then 64 products) and returns the final state, row-major.
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI.
#[cfg(target_arch = "x86_64")]
pub unsafe fn chain(
    mats: &crate::tensority::seed::MatrixSet,
    corr: &super::vnni::Corrections,
    sequence: &[u8; 32],
) -> crate::tensority::ChainResult {
    // SAFETY: the caller guarantees the CPU features `step` needs.
    unsafe { super::vnni::chain::<BLOCK_ROWS>(step, mats, corr, sequence) }
}

/// One product on row-major int8 matrices through this kernel's layout (for conformance tests).
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI.
#[cfg(target_arch = "x86_64")]
pub unsafe fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
    // SAFETY: the caller guarantees the CPU features `step` needs.
    unsafe { super::vnni::product::<BLOCK_ROWS>(step, a, m) }
}
