//! The scalar reference: safe, integer-only, the spec in code. Every other backend is tested
//! against it bit for bit.

use super::seed::MatrixSet;
use super::{
    accumulate_chain, chain_sequence, finish, reduce8, zero_matrix, ChainResult, CHAINS,
    MATRIX_BYTES, SIDE,
};

/// One product of the chain: `out[r][c] = reduce8(Σ_j a[r][j] · m[c][j])` (spec §3).
///
/// Both operands are row-major 256×256 int8 (raw two's-complement bytes); `m` is the seed matrix
/// and enters transposed, so both are read along rows. `|Σ| ≤ 2^22`, so i32 is exact.
///
/// # Panics
/// If a slice is not 65,536 bytes long.
pub fn product(a: &[u8], m: &[u8], out: &mut [u8]) {
    assert!(a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    for r in 0..SIDE {
        let a_row = &a[r * SIDE..(r + 1) * SIDE];
        for c in 0..SIDE {
            let m_row = &m[c * SIDE..(c + 1) * SIDE];
            let dot: i32 = a_row
                .iter()
                .zip(m_row)
                .map(|(&x, &y)| i32::from(x as i8) * i32::from(y as i8))
                .sum();
            out[r * SIDE + c] = reduce8(dot) as u8;
        }
    }
}

/// Runs one chain: `A = I`, then 64 products over `sequence` walked twice.
pub fn chain(mats: &MatrixSet, sequence: &[u8; 32]) -> ChainResult {
    let mut a = zero_matrix();
    for i in 0..SIDE {
        a[i * SIDE + i] = 1;
    }
    let mut next = zero_matrix();
    for _ in 0..2 {
        for &index in sequence {
            product(&a[..], mats.matrix(index), &mut next[..]);
            std::mem::swap(&mut a, &mut next);
        }
    }
    a
}

/// Tensority of `header_hash` under the seed of `mats`.
pub fn hash(mats: &MatrixSet, header_hash: &[u8; 32]) -> [u8; 32] {
    let mut sum: Box<[u8; MATRIX_BYTES]> = zero_matrix();
    for k in 0..CHAINS {
        let result = chain(mats, &chain_sequence(header_hash, k));
        accumulate_chain(&mut sum, &result);
    }
    finish(&sum)
}
