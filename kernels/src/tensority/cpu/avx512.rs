//! AVX-512 VNNI kernel: `vpdpbusd` (u8 × s8 → i32, 64 MAC per instruction) with the +128 bias
//! on the state and a per-column correction (spec §7).
//!
//! Layout. The product is `P[r][c] = Σ_k A[r][k]·M[c][k]`. A zmm lane holds one row `r` of the
//! state, four consecutive `k` as biased bytes `A + 128` (unsigned); the seed matrix is read in
//! its natural row-major layout, one dword `M[c][4q..4q+4]` broadcast to all lanes (signed).
//! `Σ (A+128)·M = P + 128·Σ_k M[c][k]`, so each accumulator starts at `−128·Σ_k M[c][k]`,
//! precomputed per matrix row when the seed is prepared.
//!
//! State layout: [`QuadLayout`] with 64-row blocks. A block is contiguous (16 KiB, stays in L1
//! while the whole 64 KiB matrix streams past it once), and the product's output is written
//! straight back in the same layout, with the output column as the next step's `k`.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::vnni::QuadLayout;
use crate::tensority::{MATRIX_BYTES, MATRIX_COUNT, SIDE};

/// Rows per block of the state (4 zmm of 16 rows).
const BLOCK_ROWS: usize = 64;
/// Bytes of one 64-row block in the state layout.
const BLOCK_BYTES: usize = BLOCK_ROWS * SIDE;

/// The state layout of this kernel: biased quads in blocks of 64 rows.
pub type Layout = QuadLayout<BLOCK_ROWS>;

const _: () = assert!(MATRIX_COUNT == 256 && SIDE == 256);

/// One product: `out = layout(reduce8(A · Mᵀ))` for `a` in the biased layout.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI. Slices must be 65,536 bytes (`a`, `m`, `out`)
/// and 256 values (`corr`); `a` and `out` must be 64-byte aligned.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn step(a: &[u8], m: &[u8], corr: &[i32], out: &mut [u8]) {
    debug_assert!(a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    debug_assert!(corr.len() == SIDE);
    debug_assert!((a.as_ptr() as usize).is_multiple_of(64));
    debug_assert!((out.as_ptr() as usize).is_multiple_of(64));
    let a = a.as_ptr();
    let m = m.as_ptr();
    let corr = corr.as_ptr();
    let out = out.as_mut_ptr();
    // Within each dword, bytes [b0 b1 b2 b3] → [b0 b2 b1 b3].
    let swap_mid = _mm512_broadcast_i32x4(_mm_setr_epi8(
        0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15,
    ));
    let bias = _mm512_set1_epi8(-128);
    for rb in 0..SIDE / BLOCK_ROWS {
        // SAFETY: rb * BLOCK_BYTES + BLOCK_BYTES <= MATRIX_BYTES for every block.
        let a_blk = unsafe { a.add(rb * BLOCK_BYTES) };
        // SAFETY: as above, for the output.
        let o_blk = unsafe { out.add(rb * BLOCK_BYTES) };
        for cq in 0..SIDE / 4 {
            let c0 = cq * 4;
            // SAFETY: c0 + 3 < 256 = corr.len().
            let init: [__m512i; 4] =
                std::array::from_fn(|j| _mm512_set1_epi32(unsafe { *corr.add(c0 + j) }));
            let mut acc = [init; 4];
            // SAFETY: rows c0..c0+4 of a 256×256 matrix.
            let m_rows: [*const u8; 4] = std::array::from_fn(|j| unsafe { m.add((c0 + j) * SIDE) });
            for q in 0..SIDE / 4 {
                // SAFETY: q * 256 + 3 * 64 + 64 <= BLOCK_BYTES; aligned because a_blk is.
                let av: [__m512i; 4] = std::array::from_fn(|i| unsafe {
                    _mm512_load_si512(a_blk.add(q * BLOCK_ROWS * 4 + i * 64).cast())
                });
                for (j, row) in m_rows.iter().enumerate() {
                    // SAFETY: 4q + 4 <= 256 bytes in the row.
                    let w = unsafe { row.add(4 * q).cast::<i32>().read_unaligned() };
                    let b = _mm512_set1_epi32(w);
                    for (i, a_vec) in av.iter().enumerate() {
                        acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], *a_vec, b);
                    }
                }
            }
            for (i, v) in acc.iter().enumerate() {
                // Pack the four columns' reduce8 into one dword per row (lane):
                // lo = [v0.b0 v1.b0 v2.b0 v3.b0], hi = [v0.b1 v1.b1 v2.b1 v3.b1], out = lo + hi.
                let p01 = _mm512_mask_blend_epi16(0xAAAA_AAAA, v[0], _mm512_slli_epi32::<16>(v[1]));
                let p23 = _mm512_mask_blend_epi16(0xAAAA_AAAA, v[2], _mm512_slli_epi32::<16>(v[3]));
                let p01 = _mm512_shuffle_epi8(p01, swap_mid);
                let p23 = _mm512_shuffle_epi8(p23, swap_mid);
                let lo = _mm512_mask_blend_epi16(0xAAAA_AAAA, p01, _mm512_slli_epi32::<16>(p23));
                let hi = _mm512_mask_blend_epi16(0xAAAA_AAAA, _mm512_srli_epi32::<16>(p01), p23);
                let packed = _mm512_add_epi8(_mm512_add_epi8(lo, hi), bias);
                // SAFETY: cq * 256 + i * 64 + 64 <= BLOCK_BYTES; aligned because o_blk is.
                unsafe {
                    _mm512_store_si512(o_blk.add(cq * BLOCK_ROWS * 4 + i * 64).cast(), packed)
                };
            }
        }
    }
}

/// Multiply-accumulates done by [`vnni_peak_probe`] per iteration: 24 independent `vpdpbusd`.
pub const PEAK_PROBE_MACS_PER_ITERATION: u64 = 24 * 64;

/// A `vpdpbusd` throughput loop with no memory traffic: `iterations` rounds of 24 independent
/// instructions. Time it to get the core's int8 MAC ceiling that the kernel is measured against.
/// Returns a value derived from the accumulators so the work cannot be optimised away.
///
/// # Errors
/// [`crate::backend::BackendError::Unsupported`] when the CPU lacks AVX-512 VNNI.
pub fn vnni_peak_probe(iterations: u64) -> crate::backend::Result<i32> {
    if !super::CpuKernel::Avx512Vnni.is_supported() {
        return Err(crate::backend::BackendError::Unsupported {
            name: "vpdpbusd probe".into(),
            reason: "needs AVX-512 VNNI".into(),
        });
    }
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: AVX-512 F/BW/VNNI support was checked above.
        Ok(unsafe { peak_loop(iterations) })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = iterations;
        unreachable!("AVX-512 is never reported as supported off x86-64")
    }
}

/// # Safety
/// The CPU must support AVX-512 F and VNNI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn peak_loop(iterations: u64) -> i32 {
    // Opaque operands: the compiler cannot constant-fold the chain of instructions.
    let a = std::hint::black_box(_mm512_set1_epi8(3));
    let b = std::hint::black_box(_mm512_set1_epi8(-5));
    let mut acc: [__m512i; 24] = std::array::from_fn(|i| _mm512_set1_epi32(i as i32));
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = _mm512_dpbusd_epi32(*x, a, b);
        }
    }
    let mut sum = _mm512_setzero_si512();
    for x in acc {
        sum = _mm512_add_epi32(sum, x);
    }
    _mm512_reduce_add_epi32(sum)
}

/// Runs one chain (identity, then 64 products) and returns the final state, row-major.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI.
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
/// The CPU must support AVX-512 F, BW and VNNI.
#[cfg(target_arch = "x86_64")]
pub unsafe fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
    // SAFETY: the caller guarantees the CPU features `step` needs.
    unsafe { super::vnni::product::<BLOCK_ROWS>(step, a, m) }
}
