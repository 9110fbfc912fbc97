//! Pieces shared by the `vpdpbusd` kernels (AVX-512 VNNI on zmm, AVX-VNNI on ymm): the biased
//! "blocked quads" state layout and the per-row corrections of the seed matrices.
//!
//! `vpdpbusd` multiplies unsigned bytes by signed bytes. The state `A` is signed, so it is
//! stored as `A + 128` and each accumulator starts at `−128·Σ_k M[c][k]`:
//! `Σ_k (A[r][k] + 128)·M[c][k] − 128·Σ_k M[c][k] = P[r][c]`, exact in i32.

use crate::tensority::seed::{AlignedBytes, FromSeed, MatrixSet};
use crate::tensority::{MATRIX_BYTES, SIDE};

/// The biased blocked-quad layout with blocks of `BLOCK_ROWS` rows: byte
/// `(r / B)·B·256 + (k / 4)·B·4 + (r % B)·4 + k % 4` holds `A[r][k] + 128`. One vector lane is one
/// row's four consecutive `k`; a block of `B` rows is contiguous.
pub struct QuadLayout<const BLOCK_ROWS: usize>;

impl<const BLOCK_ROWS: usize> QuadLayout<BLOCK_ROWS> {
    /// Bytes of one block.
    pub const BLOCK_BYTES: usize = BLOCK_ROWS * SIDE;

    /// Index of `A[r][k]`.
    #[inline(always)]
    pub fn index(r: usize, k: usize) -> usize {
        (r / BLOCK_ROWS) * Self::BLOCK_BYTES
            + (k / 4) * (BLOCK_ROWS * 4)
            + (r % BLOCK_ROWS) * 4
            + k % 4
    }

    /// Converts a row-major int8 matrix into the layout.
    pub fn to_layout(rowmajor: &[u8], out: &mut [u8]) {
        for r in 0..SIDE {
            for k in 0..SIDE {
                out[Self::index(r, k)] = rowmajor[r * SIDE + k] ^ 0x80;
            }
        }
    }

    /// Converts the layout back to a row-major int8 matrix.
    pub fn from_layout(layout: &[u8], out: &mut [u8]) {
        for r in 0..SIDE {
            for k in 0..SIDE {
                out[r * SIDE + k] = layout[Self::index(r, k)] ^ 0x80;
            }
        }
    }

    /// The identity matrix (the start of every chain).
    pub fn identity(out: &mut [u8]) {
        out.fill(0x80);
        for i in 0..SIDE {
            out[Self::index(i, i)] = 0x81;
        }
    }
}

/// Per-matrix row corrections `−128·Σ_k M[c][k]`, one i32 per row of every matrix.
pub struct Corrections {
    values: Vec<i32>,
}

impl Corrections {
    /// Computes the corrections of every matrix in `mats`.
    pub fn build(mats: &MatrixSet) -> Self {
        Self {
            values: corrections_of(mats.as_bytes()),
        }
    }

    /// Corrections of one matrix (256 values).
    pub fn matrix(&self, index: u8) -> &[i32] {
        let start = usize::from(index) * SIDE;
        &self.values[start..start + SIDE]
    }
}

impl FromSeed for Corrections {
    fn from_seed(seed: &[u8; 32]) -> Self {
        Self::build(&crate::tensority::seed::shared_matrices(seed))
    }
}

/// `−128 · Σ_k row[k]` for every 256-byte row of `m`.
pub fn corrections_of(m: &[u8]) -> Vec<i32> {
    m.chunks_exact(SIDE)
        .map(|row| -128 * row.iter().map(|&b| i32::from(b as i8)).sum::<i32>())
        .collect()
}

/// A pair of 64 KiB aligned state buffers for one chain.
pub fn state_buffers() -> (AlignedBytes, AlignedBytes) {
    (
        AlignedBytes::zeroed(MATRIX_BYTES),
        AlignedBytes::zeroed(MATRIX_BYTES),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_and_identity() {
        let src: Vec<u8> = (0..MATRIX_BYTES).map(|i| (i * 7 + i / 256) as u8).collect();
        let mut layout = vec![0u8; MATRIX_BYTES];
        let mut back = vec![0u8; MATRIX_BYTES];
        QuadLayout::<64>::to_layout(&src, &mut layout);
        QuadLayout::<64>::from_layout(&layout, &mut back);
        assert_eq!(back, src);
        QuadLayout::<16>::to_layout(&src, &mut layout);
        QuadLayout::<16>::from_layout(&layout, &mut back);
        assert_eq!(back, src);
        QuadLayout::<16>::identity(&mut layout);
        QuadLayout::<16>::from_layout(&layout, &mut back);
        assert!(back
            .iter()
            .enumerate()
            .all(|(i, &b)| b == u8::from(i / 256 == i % 256)));
    }

    #[test]
    fn corrections_cancel_the_bias() {
        let row: Vec<u8> = (0..SIDE).map(|i| (i as u8).wrapping_mul(37)).collect();
        let sum: i32 = row.iter().map(|&b| i32::from(b as i8)).sum();
        assert_eq!(corrections_of(&row), vec![-128 * sum]);
    }
}
