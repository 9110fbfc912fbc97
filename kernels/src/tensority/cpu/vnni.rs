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

/// A kernel's product step: `out = layout(reduce8(A · Mᵀ))` given `a` in the layout, the seed
/// matrix `m` row-major and its corrections. Unsafe because it needs CPU features.
pub type StepFn = unsafe fn(a: &[u8], m: &[u8], corr: &[i32], out: &mut [u8]);

/// Runs one chain with `step` working in `QuadLayout<BLOCK_ROWS>`: identity, then 64 products
/// over `sequence` walked twice; returns the final state row-major.
///
/// # Safety
/// The CPU must support every feature `step` needs.
pub unsafe fn chain<const BLOCK_ROWS: usize>(
    step: StepFn,
    mats: &MatrixSet,
    corr: &Corrections,
    sequence: &[u8; 32],
) -> crate::tensority::ChainResult {
    let (mut a, mut next) = state_buffers();
    QuadLayout::<BLOCK_ROWS>::identity(a.as_mut_slice());
    for &index in sequence.iter().chain(sequence) {
        // SAFETY: the caller guarantees the CPU features; the buffers are 64 KiB and 64-byte
        // aligned, a matrix is 64 KiB and its corrections 256 values.
        unsafe {
            step(
                a.as_slice(),
                mats.matrix(index),
                corr.matrix(index),
                next.as_mut_slice(),
            )
        };
        std::mem::swap(&mut a, &mut next);
    }
    let mut out = crate::tensority::zero_matrix();
    QuadLayout::<BLOCK_ROWS>::from_layout(a.as_slice(), &mut out[..]);
    out
}

/// One product on row-major int8 matrices through `step` and its layout (conformance tests).
///
/// # Safety
/// The CPU must support every feature `step` needs.
pub unsafe fn product<const BLOCK_ROWS: usize>(step: StepFn, a: &[u8], m: &[u8]) -> Vec<u8> {
    let (mut a_l, mut o_l) = state_buffers();
    QuadLayout::<BLOCK_ROWS>::to_layout(a, a_l.as_mut_slice());
    let corr = corrections_of(m);
    // SAFETY: the caller guarantees the CPU features; sizes and alignment as in `chain`.
    unsafe { step(a_l.as_slice(), m, &corr, o_l.as_mut_slice()) };
    let mut out = vec![0u8; MATRIX_BYTES];
    QuadLayout::<BLOCK_ROWS>::from_layout(o_l.as_slice(), &mut out);
    out
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
