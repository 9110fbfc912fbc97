//! Intel AMX kernel: `tdpbssd` (s8 × s8 → i32 on 16×64 by 64×16 tiles, 16,384 MAC per
//! instruction) with an AVX-512 `reduce8` epilogue.
//!
//! Formulation. The chain computes `P[r][c] = Σ_k A[r][k]·M[c][k]` and `A' = reduce8(P)`. This
//! kernel computes the transpose `Q = Pᵀ`, `Q[c][r] = Σ_k M[c][k]·A[r][k]`, with the seed matrix
//! `M` as the tile A operand (row `c`, `k` contiguous, as in its row-major layout; repacked once
//! per seed only so that every tile is one contiguous KiB) and the state as the tile B operand, which AMX wants in the "VNNI" layout
//! `B[k/4][4·n + k%4]` with `n = r`. Both operands are signed, so no bias is needed.
//!
//! The output tile `Q[c0..c0+16][r0..r0+16]` is, after `reduce8`, exactly four rows of the
//! next state's B tile: `A'[r][c]` goes to `B'[c/4][4·r + c%4]`. Four consecutive int32 rows
//! `c = 4q..4q+4` of a C tile interleave dword-wise into one 64-byte row of the next state,
//! so the state never needs a transpose between steps.
//!
//! Layouts (all tiles 16 rows × 64 bytes, stored contiguously, row stride 64):
//! * seed matrix ([`AmxMatrices`]): tile `(cb, kb)` (rows `16cb..`, columns `64kb..`) at byte
//!   `(4·cb + kb)·1024`, row `c%16` at `64·(c%16)`, byte `k%64`.
//! * state ([`index`]): tile `(nb, kb)` (state rows `16nb..`, columns `64kb..`) at byte
//!   `(4·nb + kb)·1024`; inside it `A[r][k]` is at `64·((k%64)/4) + 4·(r%16) + k%4`.
//!
//! Blocking. 8 tiles: 2 seed tiles × 2 state tiles → 4 int32 accumulators (a 32×32 block of
//! `Q`), 4 `tdpbssd` per 4 tile loads; K = 256 is only 4 tile steps, so every block ends with
//! 4 tile stores (`tilestored` holds up the tile unit for about as long as a `tdpbssd`: it is
//! the main cost after the multiplies themselves). The accumulators go to a double-buffered
//! scratch area, and the AVX-512 `reduce8` of block `i − 1` is interleaved, one 4-row group
//! after each `tdpbssd`, into the asm of block `i`: placed after a whole block it would wait
//! for the tile unit instead of overlapping with it. Four seed blocks (16 KiB) stay in L1
//! while the state streams past; the next step's matrix is prefetched into L2.
//!
//! The first product of a chain multiplies by the identity, so [`first_step`] just applies
//! `reduce8` to the seed matrix and moves it into the state layout.
//!
//! Support. AMX needs CPUID (AMX-TILE, AMX-INT8), AVX-512 F/BW/VBMI for the epilogue, and on
//! Linux the per-process permission `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`,
//! requested once ([`is_supported`]). Each [`step`] loads the tile configuration on the calling
//! thread and releases the tiles when it returns, so no tile state outlives a call.

// Elsewhere only the layout helpers and the reference fallback are compiled.
#![cfg_attr(
    not(all(target_arch = "x86_64", target_os = "linux")),
    allow(dead_code, unused_imports)
)]

use crate::tensority::seed::{FromSeed, MatrixSet};
use crate::tensority::{reference, zero_matrix, ChainResult, MATRIX_BYTES, MATRIX_COUNT, SIDE};

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
use std::arch::x86_64::*;

/// Bytes of one tile (16 rows × 64 bytes).
const TILE_BYTES: usize = 1024;
/// Rows (and int32 columns) of one tile.
const TILE_ROWS: usize = 16;
/// Tiles along the K dimension (256 / 64).
const K_TILES: usize = SIDE / 64;
/// Tile blocks along M or N (256 / 16).
const BLOCKS: usize = SIDE / TILE_ROWS;
/// Bytes of one C block in scratch: 4 int32 tiles.
const BLOCK_SCRATCH: usize = 4 * TILE_BYTES;

const _: () = assert!(MATRIX_COUNT == 256 && SIDE == 256 && BLOCKS == 16 && K_TILES == 4);

/// Whether this CPU and OS can run the AMX kernel: AMX-TILE, AMX-INT8, AVX-512 F/BW/VBMI, and
/// the Linux tile-data permission for this process (requested on the first call, then cached).
/// Never panics; false on other architectures and operating systems.
pub fn is_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::is_x86_feature_detected;
    if !(is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vbmi")
        && is_x86_feature_detected!("xsave"))
    {
        return false;
    }
    // `__cpuid_count` became a safe function in newer Rust; the block keeps older compilers happy.
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 0 is always valid.
    let max_leaf = unsafe { __cpuid_count(0, 0) }.eax;
    if max_leaf < 7 {
        return false;
    }
    #[allow(unused_unsafe)]
    // SAFETY: leaf 7 is within the range reported by leaf 0.
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    let amx_tile = leaf7.edx & (1 << 24) != 0;
    let amx_int8 = leaf7.edx & (1 << 25) != 0;
    if !(amx_tile && amx_int8) {
        return false;
    }
    // Ask Linux for permission to use the tile data state (XFEATURE 18). A kernel without AMX
    // support answers with an error, which covers the OS side too.
    if request_tile_permission() != 0 {
        return false;
    }
    // SAFETY: `xsave` (hence OSXSAVE-enabled XGETBV) was detected above; XCR0 is register 0.
    let xcr0 = unsafe { xgetbv0() };
    // XTILECFG (bit 17) and XTILEDATA (bit 18) must be enabled by the OS.
    xcr0 & (0b11 << 17) == 0b11 << 17
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// Reads XCR0.
///
/// # Safety
/// The CPU must support XSAVE and the OS must have enabled it (OSXSAVE).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller guarantees XGETBV is available; register 0 is XCR0.
    unsafe { _xgetbv(0) }
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`; returns the raw syscall result
/// (0 on success, a negative errno otherwise).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_permission() -> isize {
    const SYS_ARCH_PRCTL: isize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: arch_prctl with ARCH_REQ_XCOMP_PERM only changes this process's permitted XSAVE
    // features; it reads no user memory. The syscall instruction clobbers rcx and r11 and
    // returns in rax, as declared.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Index of `A[r][k]` in the state layout (see the module documentation).
#[inline(always)]
pub fn index(r: usize, k: usize) -> usize {
    ((r / TILE_ROWS) * K_TILES + k / 64) * TILE_BYTES
        + ((k % 64) / 4) * 64
        + (r % TILE_ROWS) * 4
        + k % 4
}

/// Index of `M[c][k]` in the seed-matrix tile layout.
#[inline(always)]
fn matrix_index(c: usize, k: usize) -> usize {
    ((c / TILE_ROWS) * K_TILES + k / 64) * TILE_BYTES + (c % TILE_ROWS) * 64 + k % 64
}

/// Converts a row-major int8 matrix into the state layout.
///
/// # Panics
/// If a slice is not 65,536 bytes long.
pub fn to_layout(rowmajor: &[u8], out: &mut [u8]) {
    assert!(rowmajor.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    for_each_quad(|row_major, layout| {
        out[layout..layout + 4].copy_from_slice(&rowmajor[row_major..row_major + 4]);
    });
}

/// Converts the state layout back to a row-major int8 matrix.
///
/// # Panics
/// If a slice is not 65,536 bytes long.
pub fn from_layout(layout: &[u8], out: &mut [u8]) {
    assert!(layout.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    for_each_quad(|row_major, lay| {
        out[row_major..row_major + 4].copy_from_slice(&layout[lay..lay + 4]);
    });
}

/// [`from_layout`] with AVX-512: every 1 KiB tile is a 16×16 transpose of 4-byte quads.
///
/// # Safety
/// The CPU must support AVX-512 F. Both slices must be 65,536 bytes long, and `layout` 64-byte
/// aligned.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f")]
pub unsafe fn from_layout_avx512(layout: &[u8], out: &mut [u8]) {
    debug_assert!(layout.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    debug_assert!((layout.as_ptr() as usize).is_multiple_of(64));
    let src = layout.as_ptr();
    let dst = out.as_mut_ptr();
    for nb in 0..BLOCKS {
        for kb in 0..K_TILES {
            let tile = (nb * K_TILES + kb) * TILE_BYTES;
            // Row q of the tile holds quads (q, n) for the 16 state rows n.
            // SAFETY: 16 aligned 64-byte rows of one tile inside `layout`.
            let rows: [__m512i; 16] = std::array::from_fn(|q| unsafe {
                _mm512_load_si512(src.add(tile + 64 * q).cast())
            });
            let cols = transpose16(rows);
            for (n, col) in cols.iter().enumerate() {
                let r = TILE_ROWS * nb + n;
                // SAFETY: the 64 bytes A[r][64kb..64kb+64] of `out`.
                unsafe { _mm512_storeu_si512(dst.add(r * SIDE + 64 * kb).cast(), *col) };
            }
        }
    }
}

/// Transposes a 16×16 matrix of dwords held as 16 rows.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    // a[2i] lane L = (r2i[4L], r2i+1[4L], r2i[4L+1], r2i+1[4L+1]); a[2i+1]: columns 4L+2, 4L+3.
    let a: [__m512i; 16] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_epi32(x, y)
        } else {
            _mm512_unpackhi_epi32(x, y)
        }
    });
    // b[4j + c] lane L = column 4L + c of rows 4j..4j+4.
    let b: [__m512i; 16] = std::array::from_fn(|i| {
        let (j, c) = (i / 4, i % 4);
        let (x, y) = (a[4 * j + c / 2], a[4 * j + 2 + c / 2]);
        if c % 2 == 0 {
            _mm512_unpacklo_epi64(x, y)
        } else {
            _mm512_unpackhi_epi64(x, y)
        }
    });
    // Output column 4L + c gathers lane L of b[c], b[4 + c], b[8 + c], b[12 + c].
    let mut out = [_mm512_setzero_si512(); 16];
    for c in 0..4 {
        let (p, q, r, s) = (b[c], b[4 + c], b[8 + c], b[12 + c]);
        let e0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(p, q);
        let e1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(p, q);
        let f0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(r, s);
        let f1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(r, s);
        out[c] = _mm512_shuffle_i32x4::<0b10_00_10_00>(e0, f0);
        out[4 + c] = _mm512_shuffle_i32x4::<0b11_01_11_01>(e0, f0);
        out[8 + c] = _mm512_shuffle_i32x4::<0b10_00_10_00>(e1, f1);
        out[12 + c] = _mm512_shuffle_i32x4::<0b11_01_11_01>(e1, f1);
    }
    out
}

/// Calls `f(row-major index, layout index)` for every aligned quad `A[r][4q..4q+4]`, which is
/// contiguous in both layouts. Walks the layout in order.
#[inline(always)]
fn for_each_quad(mut f: impl FnMut(usize, usize)) {
    for nb in 0..BLOCKS {
        for kb in 0..K_TILES {
            let tile = (nb * K_TILES + kb) * TILE_BYTES;
            for q in 0..TILE_ROWS {
                for n in 0..TILE_ROWS {
                    let r = TILE_ROWS * nb + n;
                    f(r * SIDE + 64 * kb + 4 * q, tile + 64 * q + 4 * n);
                }
            }
        }
    }
}

/// The identity matrix in the state layout (the start of every chain).
///
/// # Panics
/// If `out` is not 65,536 bytes long.
pub fn identity(out: &mut [u8]) {
    assert!(out.len() == MATRIX_BYTES);
    out.fill(0);
    for i in 0..SIDE {
        out[index(i, i)] = 1;
    }
}

/// Converts one row-major seed matrix into the tile layout of [`AmxMatrices`].
///
/// # Panics
/// If a slice is not 65,536 bytes long.
pub fn matrix_to_layout(m: &[u8], out: &mut [u8]) {
    assert!(m.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    for c in 0..SIDE {
        for kb in 0..K_TILES {
            let dst = matrix_index(c, 64 * kb);
            out[dst..dst + 64].copy_from_slice(&m[c * SIDE + 64 * kb..c * SIDE + 64 * kb + 64]);
        }
    }
}

/// The 256 seed matrices repacked so that every 16×64 tile is contiguous (16 MiB, page
/// aligned). Row-major matrices would work as well with a 256-byte tile stride; the contiguous
/// tiles measured about 2 % faster.
pub struct AmxMatrices {
    bytes: PageBytes,
}

impl AmxMatrices {
    /// Repacks every matrix of `mats`.
    pub fn build(mats: &MatrixSet) -> Self {
        let mut bytes = PageBytes::zeroed(MATRIX_COUNT * MATRIX_BYTES);
        for (src, dst) in mats
            .as_bytes()
            .chunks_exact(MATRIX_BYTES)
            .zip(bytes.as_mut_slice().chunks_exact_mut(MATRIX_BYTES))
        {
            matrix_to_layout(src, dst);
        }
        Self { bytes }
    }

    /// Matrix `index` in the tile layout (65,536 bytes, page aligned).
    pub fn matrix(&self, index: u8) -> &[u8] {
        let start = usize::from(index) * MATRIX_BYTES;
        &self.bytes.as_slice()[start..start + MATRIX_BYTES]
    }
}

impl FromSeed for AmxMatrices {
    fn from_seed(seed: &[u8; 32]) -> Self {
        Self::build(&crate::tensority::seed::shared_matrices(seed))
    }
}

/// A zero-initialised byte buffer aligned to 4 KiB. Page alignment keeps every 1 KiB tile
/// inside one page and makes the 4 KiB address aliasing between the state, the scratch and the
/// matrices the same in every process.
pub struct PageBytes {
    pages: Vec<Page>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

impl PageBytes {
    /// A zeroed buffer of `len` bytes, aligned to 4 KiB.
    pub fn zeroed(len: usize) -> Self {
        Self {
            pages: vec![Page([0; 4096]); len.div_ceil(4096)],
            len,
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `pages` is a contiguous allocation of `pages.len() * 4096 >= len` initialised
        // bytes; `Page` is `repr(C)` over a byte array, so it has no padding.
        unsafe { std::slice::from_raw_parts(self.pages.as_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.pages.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// A pair of 64 KiB page-aligned state buffers for one chain.
pub fn state_buffers() -> (PageBytes, PageBytes) {
    (
        PageBytes::zeroed(MATRIX_BYTES),
        PageBytes::zeroed(MATRIX_BYTES),
    )
}

/// The tile configuration: palette 1, tiles 0–7 all 16 rows × 64 bytes.
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    const fn new() -> Self {
        let mut c = [0u8; 64];
        c[0] = 1; // palette 1
        let mut t = 0;
        while t < 8 {
            c[16 + 2 * t] = 64; // colsb (bytes per row), little-endian u16
            c[48 + t] = TILE_ROWS as u8; // rows
            t += 1;
        }
        Self(c)
    }
}

static TILE_CONFIG: TileConfig = TileConfig::new();

/// Cache level the next matrix is prefetched into.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
const PREFETCH_HINT: i32 = _MM_HINT_T1;

/// 32×32 blocks of `Q` per product.
const BLOCK_COUNT: usize = (BLOCKS / 2) * (BLOCKS / 2);

/// Scratch space for the int32 accumulator tiles: two buffers of one 32×32 block each, so the
/// epilogue of block `i − 1` reads one while the tile unit computes block `i` into the other.
#[repr(C, align(4096))]
struct Scratch([u8; 2 * BLOCK_SCRATCH]);

/// AVX-512 `reduce8` of one row group of the previous block (4 int32 rows = 256 bytes at
/// `[{p} + $p]`) into 64 output bytes at `[{$o} + $oo]`; the asm twin of one iteration of
/// [`reduce_tile`]. Uses zmm16–zmm19 and the blend mask k1 (0xAAAAAAAA).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[rustfmt::skip]
macro_rules! reduce_group {
    ($p:literal, $o:literal, $oo:literal) => {
        concat!(
            "vmovdqa64 zmm16, zmmword ptr [{p} + ", $p, "]\n",
            "vmovdqa64 zmm17, zmmword ptr [{p} + ", $p, " + 128]\n",
            "vpslld zmm18, zmmword ptr [{p} + ", $p, " + 64], 16\n",
            "vpslld zmm19, zmmword ptr [{p} + ", $p, " + 192], 16\n",
            "vpblendmw zmm16 {{k1}}, zmm16, zmm18\n",
            "vpblendmw zmm17 {{k1}}, zmm17, zmm19\n",
            "vmovdqa64 zmm18, zmm16\n",
            "vpermt2b zmm18, {lo}, zmm17\n",
            "vpermt2b zmm16, {hi}, zmm17\n",
            "vpaddb zmm16, zmm16, zmm18\n",
            "vmovdqa64 zmmword ptr [{", $o, "} + ", $oo, "], zmm16\n",
        )
    };
}

/// One K step (`$k` = byte offset of the K tile, 1024·kb) of a 32×32 block: loads the seed
/// tiles at `ma + $k` (rows 0–15) and `+ 4 KiB` (rows 16–31) and the state tiles at `sb + $k`
/// and `+ 4 KiB`, and accumulates the four products, with one reduce group of the previous
/// block (`$g0`..`$g3`) after each `tdpbssd`.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[rustfmt::skip]
macro_rules! k_step {
    ($k:literal, $g0:expr, $g1:expr, $g2:expr, $g3:expr) => {
        concat!(
            "tileloadd tmm4, [{ma} + {s}*1 + ", $k, "]\n",
            "tileloadd tmm6, [{sb} + {s}*1 + ", $k, "]\n",
            "tdpbssd tmm0, tmm4, tmm6\n",
            $g0,
            "tileloadd tmm7, [{sb} + {s}*1 + ", $k, " + 4096]\n",
            "tdpbssd tmm1, tmm4, tmm7\n",
            $g1,
            "tileloadd tmm5, [{ma} + {s}*1 + ", $k, " + 4096]\n",
            "tdpbssd tmm2, tmm5, tmm6\n",
            $g2,
            "tdpbssd tmm3, tmm5, tmm7\n",
            $g3,
        )
    };
}

/// Computes one 32×32 block of `Q` (seed tiles `ma`, `ma + 4 KiB`; state tiles `sb`,
/// `sb + 4 KiB`, each over 4 K tiles) into 4 int32 tiles at `c` (row stride 64), and, spread
/// between its 16 `tdpbssd`, reduces the previous block's 4 tiles at `p` into `outs` (256 bytes
/// each). Interleaving matters: the tile unit accepts only a few instructions ahead, so vector
/// work placed after a whole block in program order would wait for the block instead of
/// overlapping with it.
///
/// Tiles: tmm0..3 accumulators C(i, j) = tmm(2i + j); tmm4/5 seed rows i = 0/1; tmm6/7 state
/// rows j = 0/1. Displacements: +4096 is the next 16-row block, +1024 the next K tile.
///
/// # Safety
/// The tile configuration of [`TILE_CONFIG`] must be loaded on this thread and the CPU must
/// support AVX-512 F/BW/VBMI. `ma` and `sb` must be readable for 8 KiB, `c` writable for 4 KiB,
/// `p` readable for 4 KiB and every `outs[t]` writable for 256 bytes; `c`, `p` and `outs` 64-byte
/// aligned, `c` and `p` not overlapping.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_block(
    ma: *const u8,
    sb: *const u8,
    c: *mut u8,
    p: *const u8,
    outs: [*mut u8; 4],
    lo_idx: __m512i,
    hi_idx: __m512i,
) {
    // SAFETY: the caller guarantees the configuration, the CPU features and the memory ranges;
    // the asm touches only the declared registers, the tile registers and that memory.
    unsafe {
        std::arch::asm!(
            "mov {m:e}, 0xAAAAAAAA",
            "kmovd k1, {m:e}",
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            k_step!(
                0,
                reduce_group!(0, "o0", 0),
                reduce_group!(256, "o0", 64),
                reduce_group!(512, "o0", 128),
                reduce_group!(768, "o0", 192)
            ),
            k_step!(
                1024,
                reduce_group!(1024, "o1", 0),
                reduce_group!(1280, "o1", 64),
                reduce_group!(1536, "o1", 128),
                reduce_group!(1792, "o1", 192)
            ),
            k_step!(
                2048,
                reduce_group!(2048, "o2", 0),
                reduce_group!(2304, "o2", 64),
                reduce_group!(2560, "o2", 128),
                reduce_group!(2816, "o2", 192)
            ),
            k_step!(
                3072,
                reduce_group!(3072, "o3", 0),
                reduce_group!(3328, "o3", 64),
                reduce_group!(3584, "o3", 128),
                reduce_group!(3840, "o3", 192)
            ),
            "tilestored [{c} + {s}*1], tmm0",
            "tilestored [{c} + {s}*1 + 1024], tmm1",
            "tilestored [{c} + {s}*1 + 2048], tmm2",
            "tilestored [{c} + {s}*1 + 3072], tmm3",
            ma = in(reg) ma,
            sb = in(reg) sb,
            c = in(reg) c,
            p = in(reg) p,
            o0 = in(reg) outs[0],
            o1 = in(reg) outs[1],
            o2 = in(reg) outs[2],
            o3 = in(reg) outs[3],
            s = in(reg) 64usize,
            lo = in(zmm_reg) lo_idx,
            hi = in(zmm_reg) hi_idx,
            m = out(reg) _,
            out("zmm16") _,
            out("zmm17") _,
            out("zmm18") _,
            out("zmm19") _,
            out("k1") _,
            options(nostack),
        );
    }
}

/// `reduce8` of one int32 tile `Q[c0..c0+16][r0..r0+16]` (row stride 64 bytes) into 256 bytes of
/// the next state: four rows of 64 bytes, byte `4·n + j` of row `g` = `reduce8(Q[4g+j][n])`.
///
/// # Safety
/// AVX-512 F/BW/VBMI must be available; `c` readable and `out` writable for the sizes above,
/// both 64-byte aligned.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[inline]
unsafe fn reduce_tile(c: *const u8, out: *mut u8, lo_idx: __m512i, hi_idx: __m512i) {
    for g in 0..4 {
        // SAFETY: rows 4g..4g+4 of a 16-row tile, 64-byte aligned.
        let v: [__m512i; 4] =
            std::array::from_fn(|j| unsafe { _mm512_load_si512(c.add((4 * g + j) * 64).cast()) });
        // Dword n of w01 = [v0[n] bits 0..16, v1[n] bits 0..16]; likewise w23.
        let w01 = _mm512_mask_blend_epi16(0xAAAA_AAAA, v[0], _mm512_slli_epi32::<16>(v[1]));
        let w23 = _mm512_mask_blend_epi16(0xAAAA_AAAA, v[2], _mm512_slli_epi32::<16>(v[3]));
        // lo byte 4n + j = byte 0 of v_j[n]; hi byte 4n + j = byte 1 of v_j[n].
        let lo = _mm512_permutex2var_epi8(w01, lo_idx, w23);
        let hi = _mm512_permutex2var_epi8(w01, hi_idx, w23);
        // SAFETY: row g of the 4 × 64-byte output, 64-byte aligned.
        unsafe { _mm512_store_si512(out.add(64 * g).cast(), _mm512_add_epi8(lo, hi)) };
    }
}

/// The `vpermt2b` index vectors of [`reduce_tile`].
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f")]
fn reduce_indices() -> (__m512i, __m512i) {
    let mut lo = [0u8; 64];
    for n in 0..16 {
        let base = 4 * n as u8;
        lo[4 * n] = base; // w01: v0 byte 0
        lo[4 * n + 1] = base + 2; // w01: v1 byte 0
        lo[4 * n + 2] = 64 + base; // w23: v2 byte 0
        lo[4 * n + 3] = 64 + base + 2; // w23: v3 byte 0
    }
    let hi = lo.map(|i| i + 1);
    // SAFETY: 64-byte arrays read unaligned.
    unsafe {
        (
            _mm512_loadu_si512(lo.as_ptr().cast()),
            _mm512_loadu_si512(hi.as_ptr().cast()),
        )
    }
}

/// The `i`-th 32×32 block of a product as (seed pair, state pair). Four seed blocks of 64 rows
/// (16 KiB) stay in L1 while the state streams past in 32-row pairs; each state pair is used by
/// two seed pairs back to back.
#[inline(always)]
fn block_order(i: usize) -> (usize, usize) {
    let cbq = i / 16;
    let nbp = (i / 2) % 8;
    (2 * cbq + i % 2, nbp)
}

/// Where the reduced C tile `(cb, nb)` goes in the next state (256 contiguous bytes).
#[inline(always)]
fn out_offset(cb: usize, nb: usize) -> usize {
    (nb * K_TILES + cb / 4) * TILE_BYTES + (cb % 4) * 256
}

/// One product: `out = layout(reduce8(A · Mᵀ))` for the state `a` in the state layout and the
/// seed matrix `m` in the [`AmxMatrices`] tile layout. `prefetch` (any length, may be empty) is
/// pulled towards L2 along the way: pass the next step's matrix. Loads the tile configuration
/// on the calling thread and releases the tiles before returning.
///
/// # Safety
/// [`is_supported`] must have returned true in this process. `a`, `m` and `out` must be
/// 65,536 bytes long and 64-byte aligned.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub unsafe fn step(a: &[u8], m: &[u8], prefetch: &[u8], out: &mut [u8]) {
    debug_assert!(a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    debug_assert!(
        (a.as_ptr() as usize).is_multiple_of(64) && (m.as_ptr() as usize).is_multiple_of(64)
    );
    debug_assert!((out.as_ptr() as usize).is_multiple_of(64));
    let a = a.as_ptr();
    let m = m.as_ptr();
    let out = out.as_mut_ptr();
    let pf = prefetch.as_ptr();
    let pf_lines = prefetch.len() / 64;
    let mut scratch = Scratch([0; 2 * BLOCK_SCRATCH]);
    let scratch = scratch.0.as_mut_ptr();
    let (lo_idx, hi_idx) = reduce_indices();
    // SAFETY: AMX is supported and permitted (caller); the configuration is a valid palette-1
    // layout.
    unsafe {
        std::arch::asm!(
            "ldtilecfg [{0}]",
            in(reg) &TILE_CONFIG as *const TileConfig,
            options(nostack, readonly),
        );
    }
    // Block i is computed into scratch buffer i % 2 while block i − 1 is reduced from the other.
    // Block 0 "reduces" the not yet written buffer 1 into the outputs of block 63, which the
    // final reduce below overwrites.
    let mut previous = block_order(BLOCK_COUNT - 1);
    for i in 0..BLOCK_COUNT {
        let (cbp, nbp) = block_order(i);
        let outs = block_outputs(out, previous);
        // SAFETY: seed tiles (2cbp.., 0..4) are the 8 KiB at 8·cbp KiB ≤ 56 KiB; state tiles
        // likewise; the scratch buffers are distinct 4 KiB halves of `scratch`; every output
        // chunk is 256 bytes inside `out`; the tiles are configured, the features enabled.
        unsafe {
            tile_block(
                m.add(2 * cbp * K_TILES * TILE_BYTES),
                a.add(2 * nbp * K_TILES * TILE_BYTES),
                scratch.add((i % 2) * BLOCK_SCRATCH),
                scratch.add(((i + 1) % 2) * BLOCK_SCRATCH),
                outs,
                lo_idx,
                hi_idx,
            );
        }
        let mut line = i;
        while line < pf_lines {
            // SAFETY: prefetching never faults; the address is inside `prefetch`.
            unsafe { _mm_prefetch::<PREFETCH_HINT>(pf.add(64 * line).cast()) };
            line += BLOCK_COUNT;
        }
        previous = (cbp, nbp);
    }
    // SAFETY: the last block (BLOCK_COUNT − 1 is odd: buffer 1); outputs stay inside `out`.
    unsafe { reduce_block(scratch.add(BLOCK_SCRATCH), out, previous, lo_idx, hi_idx) };
    // SAFETY: tiles are configured; releasing returns them to the init state.
    unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) };
}

/// The first product of a chain, from `A = I`: then `Q = M`, so the next state is `reduce8(M)`
/// (elementwise on int8 values) moved into the state layout; no multiplication is needed. For
/// int8 `x`, `reduce8(x) = x + (x < 0 ? 0xff : 0)` mod 256.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VBMI. `m` (in the [`AmxMatrices`] tile layout) and `out`
/// must be 65,536 bytes long, and `out` 64-byte aligned.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub unsafe fn first_step(m: &[u8], out: &mut [u8]) {
    debug_assert!(m.len() == MATRIX_BYTES && out.len() == MATRIX_BYTES);
    debug_assert!((out.as_ptr() as usize).is_multiple_of(64));
    let m = m.as_ptr();
    let out = out.as_mut_ptr();
    // Byte 4n + j of an output row comes from byte n of seed row j (lane j of the zmm).
    let mut idx = [0u8; 64];
    for (i, x) in idx.iter_mut().enumerate() {
        *x = (16 * (i % 4) + i / 4) as u8;
    }
    // SAFETY: reads the 64-byte array.
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    for cb in 0..BLOCKS {
        for nb in 0..BLOCKS {
            for g in 0..4 {
                // Seed rows c = 16cb + 4g + j (64 bytes apart in a tile), columns r = 16nb + n.
                let src = matrix_index(TILE_ROWS * cb + 4 * g, TILE_ROWS * nb);
                // SAFETY: four 16-byte reads inside one 1 KiB tile of `m`.
                let rows: [__m128i; 4] =
                    std::array::from_fn(|j| unsafe { _mm_loadu_si128(m.add(src + 64 * j).cast()) });
                let x = _mm512_inserti32x4::<3>(
                    _mm512_inserti32x4::<2>(
                        _mm512_inserti32x4::<1>(_mm512_castsi128_si512(rows[0]), rows[1]),
                        rows[2],
                    ),
                    rows[3],
                );
                let y = _mm512_permutexvar_epi8(idx, x);
                let y = _mm512_add_epi8(y, _mm512_movm_epi8(_mm512_movepi8_mask(y)));
                // SAFETY: row g of the tile's 256 output bytes, 64-byte aligned.
                unsafe { _mm512_store_si512(out.add(out_offset(cb, nb) + 64 * g).cast(), y) };
            }
        }
    }
}

/// Where the four reduced tiles of block `(cbp, nbp)` go in the state `out`.
#[inline(always)]
fn block_outputs(out: *mut u8, (cbp, nbp): (usize, usize)) -> [*mut u8; 4] {
    std::array::from_fn(|t| out.wrapping_add(out_offset(2 * cbp + t / 2, 2 * nbp + t % 2)))
}

/// Reduces the four C tiles of block `(cbp, nbp)` from `c` into `out`.
///
/// # Safety
/// AVX-512 F/BW/VBMI; `c` is a 64-byte aligned 4 KiB block, `out` a 64-byte aligned state.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn reduce_block(
    c: *const u8,
    out: *mut u8,
    (cbp, nbp): (usize, usize),
    lo_idx: __m512i,
    hi_idx: __m512i,
) {
    for t in 0..4 {
        let (cb, nb) = (2 * cbp + t / 2, 2 * nbp + t % 2);
        // SAFETY: tile t of the block; out_offset(cb, nb) + 256 ≤ 65,536.
        unsafe {
            reduce_tile(
                c.add(t * TILE_BYTES),
                out.add(out_offset(cb, nb)),
                lo_idx,
                hi_idx,
            )
        };
    }
}

/// Runs one chain with AMX: `A = I`, then 64 products over `sequence` walked twice; returns the
/// final state row-major. Falls back to the scalar reference where AMX is unavailable.
pub fn chain(mats: &MatrixSet, amx: &AmxMatrices, sequence: &[u8; 32]) -> ChainResult {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if is_supported() {
        let (mut a, mut out_buf) = state_buffers();
        let steps: Vec<u8> = sequence.iter().chain(sequence).copied().collect();
        // SAFETY: AVX-512 F/BW/VBMI are part of `is_supported`; sizes and alignment as below.
        unsafe { first_step(amx.matrix(steps[0]), a.as_mut_slice()) };
        for t in 1..steps.len() {
            let next = steps.get(t + 1).map_or(&[][..], |&i| amx.matrix(i));
            // SAFETY: AMX support was checked; state buffers and tile matrices are 64 KiB and
            // page aligned (PageBytes; AmxMatrices' matrices start at multiples of 64 KiB).
            unsafe {
                step(
                    a.as_slice(),
                    amx.matrix(steps[t]),
                    next,
                    out_buf.as_mut_slice(),
                )
            };
            std::mem::swap(&mut a, &mut out_buf);
        }
        let mut out = zero_matrix();
        // SAFETY: AVX-512 F is part of `is_supported`; both buffers are 64 KiB, `a` is page
        // aligned.
        unsafe { from_layout_avx512(a.as_slice(), &mut out[..]) };
        return out;
    }
    let _ = amx;
    reference::chain(mats, sequence)
}

/// One product `reduce8(a · mᵀ)` on row-major int8 matrices through this kernel's layouts (the
/// scalar reference where AMX is unavailable). For tests.
///
/// # Panics
/// If a slice is not 65,536 bytes long.
pub fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
    assert!(
        a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES,
        "64 KiB operands"
    );
    let mut out = vec![0u8; MATRIX_BYTES];
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if is_supported() {
        let (mut a_l, mut o_l) = state_buffers();
        let mut m_l = PageBytes::zeroed(MATRIX_BYTES);
        to_layout(a, a_l.as_mut_slice());
        matrix_to_layout(m, m_l.as_mut_slice());
        // SAFETY: AMX support was checked; all buffers are aligned 64 KiB PageBytes.
        unsafe { step(a_l.as_slice(), m_l.as_slice(), &[], o_l.as_mut_slice()) };
        from_layout(o_l.as_slice(), &mut out);
        return out;
    }
    reference::product(a, m, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;
    use crate::tensority::{accumulate_chain, chain_sequence, finish, CHAINS};

    /// A small xorshift generator for test data.
    struct Rng(u64);

    impl Rng {
        fn bytes(&mut self, out: &mut [u8]) {
            for chunk in out.chunks_mut(8) {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                let w = self.0.to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
        }
    }

    fn reference_product(a: &[u8], m: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; MATRIX_BYTES];
        reference::product(a, m, &mut out);
        out
    }

    #[test]
    fn amx_layouts_round_trip() {
        let mut rng = Rng(7);
        let mut a = vec![0u8; MATRIX_BYTES];
        rng.bytes(&mut a);
        let mut l = vec![0u8; MATRIX_BYTES];
        let mut back = vec![0u8; MATRIX_BYTES];
        to_layout(&a, &mut l);
        from_layout(&l, &mut back);
        assert_eq!(a, back);
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if is_supported() {
            let mut l_al = PageBytes::zeroed(MATRIX_BYTES);
            l_al.as_mut_slice().copy_from_slice(&l);
            let mut fast = PageBytes::zeroed(MATRIX_BYTES);
            // SAFETY: AVX-512 F is part of `is_supported`; page-aligned 64 KiB buffers.
            unsafe { from_layout_avx512(l_al.as_slice(), fast.as_mut_slice()) };
            assert_eq!(fast.as_slice(), &a[..]);
        }
        let mut id = vec![0u8; MATRIX_BYTES];
        identity(&mut id);
        from_layout(&id, &mut back);
        for r in 0..SIDE {
            for c in 0..SIDE {
                assert_eq!(back[r * SIDE + c], u8::from(r == c));
            }
        }
    }

    #[test]
    fn amx_products_match_the_reference() {
        if !is_supported() {
            eprintln!("AMX not supported here; skipping");
            return;
        }
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut a = vec![0u8; MATRIX_BYTES];
        let mut m = vec![0u8; MATRIX_BYTES];
        let extremes: [(u8, u8); 4] = [(0x80, 0x80), (0x7f, 0x7f), (0x80, 0x7f), (0x7f, 0x80)];
        for (x, y) in extremes {
            a.fill(x);
            m.fill(y);
            assert_eq!(
                product(&a, &m),
                reference_product(&a, &m),
                "extremes {x:#x} {y:#x}"
            );
        }
        for i in 0..300 {
            rng.bytes(&mut a);
            rng.bytes(&mut m);
            if i % 50 == 1 {
                // Mix in extreme rows.
                a[..SIDE * 16].fill(0x80);
                m[SIDE * 200..].fill(0x80);
            }
            assert_eq!(
                product(&a, &m),
                reference_product(&a, &m),
                "random product {i}"
            );
        }
    }

    #[test]
    fn amx_first_step_is_the_identity_product() {
        if !is_supported() {
            eprintln!("AMX not supported here; skipping");
            return;
        }
        let mut rng = Rng(99);
        let mut m = vec![0u8; MATRIX_BYTES];
        rng.bytes(&mut m);
        m[..256].copy_from_slice(&std::array::from_fn::<u8, 256, _>(|i| i as u8));
        let mut id = vec![0u8; MATRIX_BYTES];
        for i in 0..SIDE {
            id[i * SIDE + i] = 1;
        }
        let mut m_l = PageBytes::zeroed(MATRIX_BYTES);
        matrix_to_layout(&m, m_l.as_mut_slice());
        let mut out = PageBytes::zeroed(MATRIX_BYTES);
        // SAFETY: AMX (hence AVX-512 F/BW/VBMI) is supported; page-aligned 64 KiB buffers.
        unsafe { first_step(m_l.as_slice(), out.as_mut_slice()) };
        let mut got = vec![0u8; MATRIX_BYTES];
        from_layout(out.as_slice(), &mut got);
        assert_eq!(got, reference_product(&id, &m));
    }

    #[test]
    fn amx_chains_agree_across_threads() {
        if !is_supported() {
            eprintln!("AMX not supported here; skipping");
            return;
        }
        let mats = MatrixSet::build(&[5; 32]);
        let amx = AmxMatrices::build(&mats);
        let seq = chain_sequence(&[1; 32], 2);
        let expected = reference::chain(&mats, &seq);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| (0..5).map(|_| chain(&mats, &amx, &seq)).collect::<Vec<_>>())
                })
                .collect();
            for h in handles {
                for c in h.join().unwrap() {
                    assert!(
                        c == expected,
                        "chain on a worker thread differs from the reference"
                    );
                }
            }
        });
    }

    #[test]
    fn amx_genesis_hash() {
        if !is_supported() {
            eprintln!("AMX not supported here; skipping");
            return;
        }
        let header =
            hex::decode32("a75483474799ea1aa6bb910a1a5025b4372bf20bef20f246a2c2dc5e12e8a053")
                .unwrap();
        let seed =
            hex::decode32("9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e")
                .unwrap();
        let mats = MatrixSet::build(&seed);
        let amx = AmxMatrices::build(&mats);
        let mut sum = zero_matrix();
        for k in 0..CHAINS {
            let seq = chain_sequence(&header, k);
            let c = chain(&mats, &amx, &seq);
            if k == 0 {
                assert_eq!(c, reference::chain(&mats, &seq), "chain 0 vs the reference");
            }
            accumulate_chain(&mut sum, &c);
        }
        assert_eq!(
            hex::encode(&finish(&sum)),
            "3a9d805453ab6d5304b933764d29066e8cf963abf04718cc81fecd6278000000"
        );
    }
}
