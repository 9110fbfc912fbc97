//! The portable kernel: safe Rust shaped for auto-vectorisation, in row-major layout with the
//! seed matrices stored transposed. It accumulates in wrapping 16-bit lanes, which is exact for
//! Tensority because `reduce8` reads only `v mod 2^16` (spec §3.1, §6.3).
//!
//! The same code is compiled twice: for the baseline target (SSE2 on x86-64, NEON on aarch64)
//! and, through [`step_avx2`], with AVX2 enabled, which turns the 16-lane blocks into ymm code.

use crate::tensority::seed::{AlignedBytes, FromSeed, MatrixSet};
use crate::tensority::{reduce8, MATRIX_BYTES, MATRIX_COUNT, SIDE};

/// Output rows computed together (reuse of each loaded row of `Mᵀ`).
const ROWS: usize = 4;
/// Output columns computed together (one 16-lane i16 vector per row).
const COLS: usize = 16;

/// The seed's matrices transposed: byte `256·k + c` of matrix `m` is `M_m[c][k]`.
pub struct TransposedSet {
    bytes: AlignedBytes,
}

impl TransposedSet {
    /// Transposes every matrix of `mats`.
    pub fn build(mats: &MatrixSet) -> Self {
        let mut bytes = AlignedBytes::zeroed(MATRIX_COUNT * MATRIX_BYTES);
        for (dst, src) in bytes
            .as_mut_slice()
            .chunks_exact_mut(MATRIX_BYTES)
            .zip(mats.as_bytes().chunks_exact(MATRIX_BYTES))
        {
            transpose(src, dst);
        }
        Self { bytes }
    }

    /// Transposed matrix `index`.
    pub fn matrix(&self, index: u8) -> &[u8] {
        let start = usize::from(index) * MATRIX_BYTES;
        &self.bytes.as_slice()[start..start + MATRIX_BYTES]
    }
}

impl FromSeed for TransposedSet {
    fn from_seed(seed: &[u8; 32]) -> Self {
        Self::build(&crate::tensority::seed::shared_matrices(seed))
    }
}

/// Writes the transpose of the 256×256 byte matrix `src` into `dst`, in cache-sized tiles.
pub fn transpose(src: &[u8], dst: &mut [u8]) {
    const TILE: usize = 16;
    for r0 in (0..SIDE).step_by(TILE) {
        for c0 in (0..SIDE).step_by(TILE) {
            for r in r0..r0 + TILE {
                for c in c0..c0 + TILE {
                    dst[c * SIDE + r] = src[r * SIDE + c];
                }
            }
        }
    }
}

/// One product in row-major layout: `out = reduce8(a · mt)` where `mt = Mᵀ`.
#[inline(always)]
fn step_generic(a: &[u8], mt: &[u8], out: &mut [u8]) {
    let a: &[u8; MATRIX_BYTES] = a.try_into().expect("state is 64 KiB");
    let mt: &[u8; MATRIX_BYTES] = mt.try_into().expect("matrix is 64 KiB");
    let out: &mut [u8; MATRIX_BYTES] = out.try_into().expect("output is 64 KiB");
    for r0 in (0..SIDE).step_by(ROWS) {
        for c0 in (0..SIDE).step_by(COLS) {
            let mut acc = [[0i16; COLS]; ROWS];
            for k in 0..SIDE {
                let m_row: &[u8; COLS] =
                    mt[k * SIDE + c0..k * SIDE + c0 + COLS].try_into().expect("COLS bytes");
                let mut m = [0i16; COLS];
                for (w, &b) in m.iter_mut().zip(m_row) {
                    *w = i16::from(b as i8);
                }
                for (i, acc_row) in acc.iter_mut().enumerate() {
                    let x = i16::from(a[(r0 + i) * SIDE + k] as i8);
                    for (s, &w) in acc_row.iter_mut().zip(&m) {
                        *s = s.wrapping_add(x.wrapping_mul(w));
                    }
                }
            }
            for (i, acc_row) in acc.iter().enumerate() {
                let dst = &mut out[(r0 + i) * SIDE + c0..(r0 + i) * SIDE + c0 + COLS];
                for (d, &s) in dst.iter_mut().zip(acc_row) {
                    *d = reduce8(i32::from(s)) as u8;
                }
            }
        }
    }
}

/// One product with the baseline instruction set.
pub fn step_portable(a: &[u8], mt: &[u8], out: &mut [u8]) {
    step_generic(a, mt, out);
}

/// One product compiled for AVX2.
///
/// # Safety
/// The CPU must support AVX2 (checked by the dispatcher with `is_x86_feature_detected!`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn step_avx2(a: &[u8], mt: &[u8], out: &mut [u8]) {
    step_generic(a, mt, out);
}
