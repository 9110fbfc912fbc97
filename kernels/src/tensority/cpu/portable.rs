//! The portable kernel: safe Rust shaped for auto-vectorisation, with no intrinsics and no
//! `unsafe`, so that the baseline target vectorises it (SSE2 on x86-64, NEON on aarch64).
//!
//! Dot-product form: `P[r][c] = Σ_k A[r][k]·M[c][k]` reads both operands along `k`, so a tile
//! of 4 state rows × 2 matrix rows keeps 8 accumulators of 8 int16 lanes (lane `l` sums the
//! `k ≡ l mod 8` terms) and needs no broadcast at all: per 8 values of `k` it loads 6 vectors and
//! issues 8 `pmullw` + 8 `paddw` (NEON: `mla`). The 8 accumulators are summed across lanes
//! once per tile, which LLVM turns into a transposing shuffle tree. Everything wraps mod 2^16,
//! which is exact for Tensority because `reduce8` reads only `v mod 2^16` (spec §3.1, §6.3).
//!
//! Both operands are stored as int16 so the inner loop does no widening: the state as int16
//! row-major (the output is written straight back in that layout, the output column being the
//! next step's `k`), and the seed matrices widened once per seed ([`WideSet`], 32 MiB, row-major
//! like the int8 originals). The AVX2 kernel reads the same [`WideSet`].
//!
//! All indexing goes through fixed-size arrays (`[i16; 8]` lanes, `[Lanes; 32]` rows), so the
//! hot loop has no bounds checks.

use crate::tensority::seed::{FromSeed, MatrixSet};
use crate::tensority::{reduce8, MATRIX_BYTES, MATRIX_COUNT, SIDE};

/// int16 values per lane block (one 128-bit vector).
pub const LANES: usize = 8;
/// One block of 8 consecutive int16 values of a row.
pub type Lanes = [i16; LANES];
/// Lane blocks in one 256×256 int16 matrix (or state).
pub const MATRIX_LANES: usize = MATRIX_BYTES / LANES;

/// Lane blocks per row.
const ROW_LANES: usize = SIDE / LANES;
/// State rows per tile.
const TILE_ROWS: usize = 4;
/// Matrix rows (output columns) per tile.
const TILE_COLS: usize = 2;
/// Output columns per panel: the panel's widened matrix rows (16 KiB) stay in L1 while all
/// state rows stream past them.
const PANEL_COLS: usize = 32;

const _: () = assert!(SIDE / PANEL_COLS * PANEL_COLS == SIDE);
const _: () = assert!(PANEL_COLS / TILE_COLS * TILE_COLS == PANEL_COLS);
const _: () = assert!(SIDE / TILE_ROWS * TILE_ROWS == SIDE && SIDE / LANES * LANES == SIDE);

/// One row of a widened matrix or state.
type Row = [Lanes; ROW_LANES];

/// The seed's matrices sign-extended to int16, row-major: lane `l` of block `32·r + b` of
/// matrix `i` is `M_i[r][8b + l]`.
pub struct WideSet {
    lanes: Vec<Lanes>,
}

impl WideSet {
    /// Widens every matrix of `mats`.
    pub fn build(mats: &MatrixSet) -> Self {
        let mut lanes = vec![[0i16; LANES]; MATRIX_COUNT * MATRIX_LANES];
        widen(mats.as_bytes(), &mut lanes);
        Self { lanes }
    }

    /// Widened matrix `index` ([`MATRIX_LANES`] blocks).
    pub fn matrix(&self, index: u8) -> &[Lanes] {
        let start = usize::from(index) * MATRIX_LANES;
        &self.lanes[start..start + MATRIX_LANES]
    }
}

impl FromSeed for WideSet {
    fn from_seed(seed: &[u8; 32]) -> Self {
        Self::build(&crate::tensority::seed::shared_matrices(seed))
    }
}

/// Sign-extends the int8 bytes of `src` into int16 lane blocks.
///
/// # Panics
/// If `dst` does not hold exactly `src.len()` values.
pub fn widen(src: &[u8], dst: &mut [Lanes]) {
    assert_eq!(src.len(), dst.len() * LANES);
    for (d, s) in dst.iter_mut().zip(src.chunks_exact(LANES)) {
        *d = std::array::from_fn(|l| i16::from(s[l] as i8));
    }
}

/// A zeroed state (or matrix) in the int16 layout.
pub fn state() -> Vec<Lanes> {
    vec![[0i16; LANES]; MATRIX_LANES]
}

/// Converts a row-major int8 matrix into the int16 state layout.
///
/// # Panics
/// If `rowmajor` is not 65,536 bytes or `out` not [`MATRIX_LANES`] blocks.
pub fn to_layout(rowmajor: &[u8], out: &mut [Lanes]) {
    assert!(rowmajor.len() == MATRIX_BYTES && out.len() == MATRIX_LANES);
    widen(rowmajor, out);
}

/// Converts the int16 state layout back to a row-major int8 matrix (the low byte of each
/// value; the kernel only ever stores int8 values).
///
/// # Panics
/// If `layout` is not [`MATRIX_LANES`] blocks or `out` not 65,536 bytes.
pub fn from_layout(layout: &[Lanes], out: &mut [u8]) {
    assert!(layout.len() == MATRIX_LANES && out.len() == MATRIX_BYTES);
    for (o, block) in out.chunks_exact_mut(LANES).zip(layout) {
        for (b, &v) in o.iter_mut().zip(block) {
            *b = v as u8;
        }
    }
}

/// The identity matrix in the state layout (the start of every chain).
///
/// # Panics
/// If `out` is not [`MATRIX_LANES`] blocks.
pub fn identity(out: &mut [Lanes]) {
    assert_eq!(out.len(), MATRIX_LANES);
    out.fill([0; LANES]);
    for i in 0..SIDE {
        out[i * ROW_LANES + i / LANES][i % LANES] = 1;
    }
}

/// Row `r` of a matrix or state in the int16 layout.
#[inline(always)]
fn row(m: &[Lanes; MATRIX_LANES], r: usize) -> &Row {
    m[r * ROW_LANES..(r + 1) * ROW_LANES]
        .try_into()
        .expect("one row")
}

/// The tile's dot products mod 2^16: `out[i][j] = Σ_k a[i][k]·m[j][k]`.
#[inline(always)]
fn tile(a: &[&Row; TILE_ROWS], m: &[&Row; TILE_COLS]) -> [[i16; TILE_COLS]; TILE_ROWS] {
    let mut acc = [[[0i16; LANES]; TILE_COLS]; TILE_ROWS];
    for kb in 0..ROW_LANES {
        let x: [Lanes; TILE_ROWS] = std::array::from_fn(|i| a[i][kb]);
        let y: [Lanes; TILE_COLS] = std::array::from_fn(|j| m[j][kb]);
        for (acc_row, x_row) in acc.iter_mut().zip(&x) {
            for (acc_v, y_v) in acc_row.iter_mut().zip(&y) {
                for l in 0..LANES {
                    acc_v[l] = acc_v[l].wrapping_add(x_row[l].wrapping_mul(y_v[l]));
                }
            }
        }
    }
    let mut sums = [[0i16; TILE_COLS]; TILE_ROWS];
    for (sums_row, acc_row) in sums.iter_mut().zip(&acc) {
        for (s, v) in sums_row.iter_mut().zip(acc_row) {
            *s = v.iter().fold(0i16, |x, &y| x.wrapping_add(y));
        }
    }
    sums
}

/// One product in the int16 layout: `out = reduce8(a · mᵀ)`, where `m` is a [`WideSet`]
/// matrix (row-major, so `mᵀ` is read along its rows).
///
/// # Panics
/// If a slice is not [`MATRIX_LANES`] blocks long.
pub fn step(a: &[Lanes], m: &[Lanes], out: &mut [Lanes]) {
    let a: &[Lanes; MATRIX_LANES] = a.try_into().expect("state is 8192 blocks");
    let m: &[Lanes; MATRIX_LANES] = m.try_into().expect("matrix is 8192 blocks");
    let out: &mut [Lanes; MATRIX_LANES] = out.try_into().expect("output is 8192 blocks");
    for panel in (0..SIDE).step_by(PANEL_COLS) {
        for r0 in (0..SIDE).step_by(TILE_ROWS) {
            let a_rows: [&Row; TILE_ROWS] = std::array::from_fn(|i| row(a, r0 + i));
            for c0 in (panel..panel + PANEL_COLS).step_by(TILE_COLS) {
                let m_rows: [&Row; TILE_COLS] = std::array::from_fn(|j| row(m, c0 + j));
                let sums = tile(&a_rows, &m_rows);
                for (i, sums_row) in sums.iter().enumerate() {
                    let block = &mut out[(r0 + i) * ROW_LANES + c0 / LANES];
                    let dst = &mut block[c0 % LANES..c0 % LANES + TILE_COLS];
                    for (d, &s) in dst.iter_mut().zip(sums_row) {
                        *d = i16::from(reduce8(i32::from(s)));
                    }
                }
            }
        }
    }
}

/// Runs one chain (identity, then 64 products) and returns the final state, row-major.
pub fn chain(wide: &WideSet, sequence: &[u8; 32]) -> crate::tensority::ChainResult {
    let (mut a, mut next) = (state(), state());
    identity(&mut a);
    for &index in sequence.iter().chain(sequence) {
        step(&a, wide.matrix(index), &mut next);
        std::mem::swap(&mut a, &mut next);
    }
    let mut out = crate::tensority::zero_matrix();
    from_layout(&a, &mut out[..]);
    out
}

/// One product on row-major int8 matrices through this kernel's layout (for conformance tests).
pub fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
    let (mut a_l, mut m_l, mut o_l) = (state(), state(), state());
    to_layout(a, &mut a_l);
    widen(m, &mut m_l);
    step(&a_l, &m_l, &mut o_l);
    let mut out = vec![0u8; MATRIX_BYTES];
    from_layout(&o_l, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensority::reference;

    /// xorshift64* (deterministic, no dependencies).
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// 0x7f or 0x80 from the low bit of `v`.
    fn extreme(v: u64) -> u8 {
        if v & 1 == 0 {
            0x7f
        } else {
            0x80
        }
    }

    #[test]
    fn products_match_the_reference() {
        let mut rng = Rng(0xC0FF_EE00_1234_5679);
        let mut expected = vec![0u8; MATRIX_BYTES];
        for case in 0..24 {
            let mut a = vec![0u8; MATRIX_BYTES];
            let mut m = vec![0u8; MATRIX_BYTES];
            for (x, y) in a.iter_mut().zip(m.iter_mut()) {
                let v = rng.next_u64();
                (*x, *y) = match case {
                    0 => (0x80, 0x80),
                    1 => (0x7f, 0x80),
                    2 => (0x7f, 0x7f),
                    3 => (extreme(v), extreme(v >> 1)),
                    _ => (v as u8, (v >> 8) as u8),
                };
            }
            reference::product(&a, &m, &mut expected);
            let (mut a_l, mut m_l, mut o_l) = (state(), state(), state());
            to_layout(&a, &mut a_l);
            widen(&m, &mut m_l);
            step(&a_l, &m_l, &mut o_l);
            let mut got = vec![0u8; MATRIX_BYTES];
            from_layout(&o_l, &mut got);
            assert!(got == expected, "case {case}");
        }
    }

    #[test]
    fn identity_and_layout_round_trip() {
        let mut id = vec![0u8; MATRIX_BYTES];
        for i in 0..SIDE {
            id[i * SIDE + i] = 1;
        }
        let mut l = state();
        identity(&mut l);
        let mut back = vec![0u8; MATRIX_BYTES];
        from_layout(&l, &mut back);
        assert_eq!(back, id);
        let bytes: Vec<u8> = (0..=255u8).cycle().take(MATRIX_BYTES).collect();
        to_layout(&bytes, &mut l);
        assert!(l
            .iter()
            .flatten()
            .zip(&bytes)
            .all(|(&v, &b)| v == i16::from(b as i8)));
        from_layout(&l, &mut back);
        assert_eq!(back, bytes);
    }
}
