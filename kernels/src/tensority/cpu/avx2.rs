//! AVX2 kernel: `vpmaddwd` on int16 pairs (16 exact MACs per instruction) with int32
//! accumulators, register-blocked as 16 state rows × 6 output columns (12 ymm accumulators).
//!
//! The product is `P[r][c] = Σ_k A[r][k]·M[c][k]`. One ymm holds 8 state rows: dword lane `i`
//! holds the int16 pair `(A[r][2q], A[r][2q+1])` of row `r = 8b + i`. The seed matrices, widened
//! once per seed to int16 in their natural row-major order ([`WideSet`], shared with the
//! portable kernel), supply the pair `(M[c][2q], M[c][2q+1])` as one dword, broadcast to every
//! lane by `vpbroadcastd` (a pure load, no shuffle); `vpmaddwd` adds both products of the pair
//! into each lane. Per pair of `k` the microkernel loads 2 state vectors and 6 broadcasts and
//! issues 12 `vpmaddwd` + 12 `vpaddd`, so the only ALU work is the multiply and the accumulate
//! (16 registers: 12 accumulators, 2 state vectors, the broadcast and the product).
//!
//! int32 accumulation is exact (|P| ≤ 2^22). `reduce8` is applied per lane, and the results of
//! columns `c, c+1` are interleaved into int16 pairs: that is the next step's state with
//! `k = c`, so a chain stays in this layout for all 64 steps.
//!
//! State layout ("row-blocked pairs", 128 KiB): int16 `A[r][k]` (little endian, sign extended)
//! at byte `(r/8)·4096 + (k/2)·32 + (r%8)·4 + (k%2)·2`. A 16-row tile is 8 KiB and stays in L1
//! while the widened matrix (128 KiB, from L2) streams past it.
//!
//! [`WideSet`]: super::portable::WideSet

// The layout helpers are used on every target (the dispatcher compiles all kernels); the
// constants of the kernel itself only on x86-64.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::portable::{Lanes, MATRIX_LANES};
use crate::tensority::seed::AlignedBytes;
use crate::tensority::{MATRIX_BYTES, SIDE};

/// Bytes of the state in this kernel's layout (one int16 per element).
pub const STATE_BYTES: usize = 2 * MATRIX_BYTES;

/// State rows per ymm vector (8 dword lanes).
const LANES: usize = 8;
/// Bytes of one block of 8 state rows.
const BLOCK_BYTES: usize = LANES * 2 * SIDE;
/// Bytes of one vector of pairs (8 rows × 2 × int16).
const VEC_BYTES: usize = 32;
/// `k` pairs per row.
const PAIRS: usize = SIDE / 2;
/// Bytes of one widened matrix row.
const WIDE_ROW_BYTES: usize = 2 * SIDE;
/// Row blocks (of 8 rows) per tile.
const TILE_BLOCKS: usize = 2;
/// Output columns per tile (the last tile of a row takes the remaining 4).
const TILE_COLS: usize = 6;

const _: () = assert!(SIDE == 256 && STATE_BYTES == BLOCK_BYTES * 32);
const _: () = assert!(MATRIX_LANES * std::mem::size_of::<Lanes>() == SIDE * WIDE_ROW_BYTES);

/// Byte offset of `A[r][k]` in the state layout.
#[inline(always)]
pub fn index(r: usize, k: usize) -> usize {
    (r / LANES) * BLOCK_BYTES + (k / 2) * VEC_BYTES + (r % LANES) * 4 + (k % 2) * 2
}

/// The int16 little-endian bytes of a two's-complement int8.
#[inline(always)]
fn widen_byte(b: u8) -> [u8; 2] {
    i16::from(b as i8).to_le_bytes()
}

/// Converts a row-major int8 matrix into the state layout.
///
/// # Panics
/// If `rowmajor` is not 65,536 bytes or `out` not [`STATE_BYTES`].
pub fn to_layout(rowmajor: &[u8], out: &mut [u8]) {
    assert!(rowmajor.len() == MATRIX_BYTES && out.len() == STATE_BYTES);
    for (r, row) in rowmajor.chunks_exact(SIDE).enumerate() {
        for (k, &b) in row.iter().enumerate() {
            let i = index(r, k);
            out[i..i + 2].copy_from_slice(&widen_byte(b));
        }
    }
}

/// Converts the state layout back to a row-major int8 matrix (the low byte of each element;
/// the kernel only ever stores sign-extended int8 values).
///
/// # Panics
/// If `layout` is not [`STATE_BYTES`] or `out` not 65,536 bytes.
pub fn from_layout(layout: &[u8], out: &mut [u8]) {
    assert!(layout.len() == STATE_BYTES && out.len() == MATRIX_BYTES);
    for (r, row) in out.chunks_exact_mut(SIDE).enumerate() {
        for (k, o) in row.iter_mut().enumerate() {
            *o = layout[index(r, k)];
        }
    }
}

/// The identity matrix in the state layout (the start of every chain).
///
/// # Panics
/// If `out` is not [`STATE_BYTES`].
pub fn identity(out: &mut [u8]) {
    assert_eq!(out.len(), STATE_BYTES);
    out.fill(0);
    for i in 0..SIDE {
        out[index(i, i)] = 1;
    }
}

/// A pair of 64-byte aligned state buffers for one chain.
pub fn state_buffers() -> (AlignedBytes, AlignedBytes) {
    (
        AlignedBytes::zeroed(STATE_BYTES),
        AlignedBytes::zeroed(STATE_BYTES),
    )
}

/// `reduce8` (spec §3.1) on each int32 lane, sign-extended back to int32: with `u = v << 16`,
/// bits 24..32 of `u + (u << 8)` are `(lo + hi) mod 256`; an arithmetic shift by 24 extends them.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn reduce8_epi32(v: __m256i) -> __m256i {
    let u = _mm256_slli_epi32::<16>(v);
    _mm256_srai_epi32::<24>(_mm256_add_epi32(u, _mm256_slli_epi32::<8>(u)))
}

/// One tile: the 16 state rows at `a` (two 8-row blocks) times the `C` widened matrix rows at
/// `m` (output columns `c0..c0+C`, `c0` even), written as `C/2` pair vectors per block at `out`.
///
/// # Safety
/// AVX2 must be available; `a` must point to two readable state blocks, `m` to `C` readable
/// widened rows, and `out` to the pair vector `c0/2` of the first of two output blocks, with the
/// `C/2` vectors from there writable in both blocks.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn tile<const C: usize>(a: *const u8, m: *const u8, out: *mut u8) {
    let mut acc = [[_mm256_setzero_si256(); C]; TILE_BLOCKS];
    for q in 0..PAIRS {
        // SAFETY: pair vector q of both blocks, readable per the contract.
        let rows: [__m256i; TILE_BLOCKS] = std::array::from_fn(|b| unsafe {
            _mm256_loadu_si256(a.add(b * BLOCK_BYTES + q * VEC_BYTES).cast())
        });
        for j in 0..C {
            // SAFETY: bytes 4q..4q+4 of widened row j, readable per the contract.
            let pair = unsafe {
                m.add(j * WIDE_ROW_BYTES + 4 * q)
                    .cast::<i32>()
                    .read_unaligned()
            };
            let w = _mm256_set1_epi32(pair);
            for (acc_b, rows_b) in acc.iter_mut().zip(&rows) {
                acc_b[j] = _mm256_add_epi32(acc_b[j], _mm256_madd_epi16(*rows_b, w));
            }
        }
    }
    for (b, acc_b) in acc.iter().enumerate() {
        for jp in 0..C / 2 {
            let lo = reduce8_epi32(acc_b[2 * jp]);
            let hi = _mm256_slli_epi32::<16>(reduce8_epi32(acc_b[2 * jp + 1]));
            let pairs = _mm256_blend_epi16::<0xAA>(lo, hi);
            // SAFETY: pair vector c0/2 + jp of output block b, writable per the contract.
            unsafe { _mm256_storeu_si256(out.add(b * BLOCK_BYTES + jp * VEC_BYTES).cast(), pairs) };
        }
    }
}

/// One product: `out = layout(reduce8(A · Mᵀ))` for `a` in the state layout and `m` a
/// [`WideSet`](super::portable::WideSet) matrix.
///
/// # Safety
/// The CPU must support AVX2. `a` and `out` must be [`STATE_BYTES`] long and `m`
/// [`MATRIX_LANES`] blocks (no alignment is required).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn step(a: &[u8], m: &[Lanes], out: &mut [u8]) {
    debug_assert!(a.len() == STATE_BYTES && m.len() == MATRIX_LANES && out.len() == STATE_BYTES);
    let a = a.as_ptr();
    // The widened matrix as raw bytes: `Lanes` is a plain `[i16; 8]`, so row c starts at byte
    // c·WIDE_ROW_BYTES and its int16 values are in native (little-endian) order.
    let m = m.as_ptr().cast::<u8>();
    let out = out.as_mut_ptr();
    const TILE_BYTES: usize = TILE_BLOCKS * BLOCK_BYTES;
    const FULL: usize = SIDE / TILE_COLS * TILE_COLS;
    const _: () = assert!(SIDE - FULL == 4 && TILE_COLS / 2 * 2 == TILE_COLS);
    for t in 0..STATE_BYTES / TILE_BYTES {
        // SAFETY: tile t covers state blocks 2t and 2t+1, inside `a` and `out` (both
        // STATE_BYTES long).
        let (a_t, o_t) = unsafe { (a.add(t * TILE_BYTES), out.add(t * TILE_BYTES)) };
        for c in (0..FULL).step_by(TILE_COLS) {
            // SAFETY: AVX2 is enabled; the tile's two state blocks are readable and writable
            // (above); widened rows c..c+6 <= 256 lie inside `m` (256 rows); pair vectors
            // c/2..c/2+3 <= 128 lie inside each output block.
            unsafe {
                tile::<TILE_COLS>(a_t, m.add(c * WIDE_ROW_BYTES), o_t.add(c / 2 * VEC_BYTES))
            };
        }
        // SAFETY: as above, for the last 4 columns (rows 252..256, pair vectors 126..128).
        unsafe {
            tile::<4>(
                a_t,
                m.add(FULL * WIDE_ROW_BYTES),
                o_t.add(FULL / 2 * VEC_BYTES),
            )
        };
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::tensority::cpu::portable::widen;
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

        fn fill(&mut self, buf: &mut [u8]) {
            for chunk in buf.chunks_mut(8) {
                let x = self.next_u64().to_le_bytes();
                chunk.copy_from_slice(&x[..chunk.len()]);
            }
        }
    }

    fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
        let mut wide = vec![[0i16; 8]; MATRIX_LANES];
        widen(m, &mut wide);
        let (mut a_l, mut o_l) = state_buffers();
        to_layout(a, a_l.as_mut_slice());
        // SAFETY: the test only runs after checking AVX2; the buffers have the sizes `step` needs.
        unsafe { step(a_l.as_slice(), &wide, o_l.as_mut_slice()) };
        let mut out = vec![0u8; MATRIX_BYTES];
        from_layout(o_l.as_slice(), &mut out);
        out
    }

    fn operand(rng: &mut Rng, family: u64) -> Vec<u8> {
        let mut m = vec![0u8; MATRIX_BYTES];
        match family {
            0 => m.fill(0x80),
            1 => m.fill(0x7f),
            2 => m
                .iter_mut()
                .for_each(|b| *b = if rng.next_u64() & 1 == 0 { 0x80 } else { 0x7f }),
            _ => rng.fill(&mut m),
        }
        m
    }

    #[test]
    fn layout_round_trips_and_identity() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut a = vec![0u8; MATRIX_BYTES];
        rng.fill(&mut a);
        let mut l = vec![0u8; STATE_BYTES];
        to_layout(&a, &mut l);
        let mut back = vec![0u8; MATRIX_BYTES];
        from_layout(&l, &mut back);
        assert_eq!(a, back);
        let mut id = vec![0u8; MATRIX_BYTES];
        for i in 0..SIDE {
            id[i * SIDE + i] = 1;
        }
        to_layout(&id, &mut l);
        let mut l2 = vec![0xaau8; STATE_BYTES];
        identity(&mut l2);
        assert_eq!(l, l2);
    }

    #[test]
    fn random_and_extreme_products_match_the_reference() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            eprintln!("AVX2 not available: avx2 kernel not tested");
            return;
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut expected = vec![0u8; MATRIX_BYTES];
        // 16 pairs of the extreme families (all −128, all 127, mixed) and random bytes, then
        // random bytes, with one case in eight drawn from the extreme families.
        for case in 0..216u64 {
            let (fa, fm) = if case < 16 {
                (case / 4, case % 4)
            } else if case % 8 == 0 {
                (rng.next_u64() % 4, rng.next_u64() % 4)
            } else {
                (3, 3)
            };
            let a = operand(&mut rng, fa);
            let m = operand(&mut rng, fm);
            reference::product(&a, &m, &mut expected);
            let got = product(&a, &m);
            if let Some(at) = got.iter().zip(&expected).position(|(x, y)| x != y) {
                panic!("case {case} (families {fa}/{fm}) differs at byte {at}");
            }
        }
    }
}

/// Runs one chain (identity, then 64 products) and returns the final state, row-major.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn chain(
    wide: &super::portable::WideSet,
    sequence: &[u8; 32],
) -> crate::tensority::ChainResult {
    let (mut a, mut next) = state_buffers();
    identity(a.as_mut_slice());
    for &index in sequence.iter().chain(sequence) {
        // SAFETY: the caller guarantees AVX2; both buffers are STATE_BYTES long and a widened
        // matrix is MATRIX_LANES blocks.
        unsafe { step(a.as_slice(), wide.matrix(index), next.as_mut_slice()) };
        std::mem::swap(&mut a, &mut next);
    }
    let mut out = crate::tensority::zero_matrix();
    from_layout(a.as_slice(), &mut out[..]);
    out
}

/// One product on row-major int8 matrices through this kernel's layout (for conformance tests).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
pub unsafe fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
    let (mut a_l, mut o_l) = state_buffers();
    to_layout(a, a_l.as_mut_slice());
    let mut wide = super::portable::state();
    super::portable::widen(m, &mut wide);
    // SAFETY: the caller guarantees AVX2; sizes as in `chain`.
    unsafe { step(a_l.as_slice(), &wide, o_l.as_mut_slice()) };
    let mut out = vec![0u8; MATRIX_BYTES];
    from_layout(o_l.as_slice(), &mut out);
    out
}
