//! Seed → matrix set: the per-seed "cache" of Tensority (spec §1–§2).
//!
//! The seed is stretched to 128 bytes with three chained SHA3-256 calls, then 128 scrypt SMix
//! calls (N = 1024, r = 1) run in a chain; each call's 1024-block scratchpad `V` becomes two
//! 256×256 int8 matrices (even blocks, odd blocks). Only the scratchpads are kept, never the
//! SMix outputs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::{sha3_256, MATRIX_BYTES, MATRIX_COUNT, SIDE};

/// Words in one scrypt block with r = 1 (128 bytes).
const BLOCK_WORDS: usize = 32;
/// Scrypt N: blocks in one scratchpad.
const SMIX_N: usize = 1024;
/// Chained SMix calls per seed; each yields two matrices.
const SMIX_CALLS: usize = MATRIX_COUNT / 2;

/// The 128-byte extended seed: `seed || SHA3(seed) || SHA3(SHA3(seed)) || SHA3³(seed)`.
pub fn extend_seed(seed: &[u8; 32]) -> [u8; 128] {
    let mut ext = [0u8; 128];
    ext[..32].copy_from_slice(seed);
    for i in 1..4 {
        let prev: [u8; 32] = ext[32 * (i - 1)..32 * i].try_into().expect("32-byte slice");
        ext[32 * i..32 * (i + 1)].copy_from_slice(&sha3_256(&prev));
    }
    ext
}

/// Salsa20/8 in scrypt's "xor, then core with feed-forward" form: `b = core(b ^ bx) + (b ^ bx)`.
#[inline(always)]
fn salsa_xor(b: &mut [u32; 16], bx: &[u32; 16]) {
    let mut w = [0u32; 16];
    for i in 0..16 {
        w[i] = b[i] ^ bx[i];
    }
    let mut x = w;
    macro_rules! quarter {
        ($a:expr, $b:expr, $c:expr, $d:expr) => {
            x[$b] ^= x[$a].wrapping_add(x[$d]).rotate_left(7);
            x[$c] ^= x[$b].wrapping_add(x[$a]).rotate_left(9);
            x[$d] ^= x[$c].wrapping_add(x[$b]).rotate_left(13);
            x[$a] ^= x[$d].wrapping_add(x[$c]).rotate_left(18);
        };
    }
    for _ in 0..4 {
        // Column round.
        quarter!(0, 4, 8, 12);
        quarter!(5, 9, 13, 1);
        quarter!(10, 14, 2, 6);
        quarter!(15, 3, 7, 11);
        // Row round.
        quarter!(0, 1, 2, 3);
        quarter!(5, 6, 7, 4);
        quarter!(10, 11, 8, 9);
        quarter!(15, 12, 13, 14);
    }
    for i in 0..16 {
        b[i] = x[i].wrapping_add(w[i]);
    }
}

/// BlockMix with r = 1: `lo = salsa(lo ^ hi)`, then `hi = salsa(hi ^ new lo)`; no shuffle.
#[inline(always)]
fn block_mix(x: &mut [u32; BLOCK_WORDS]) {
    let (lo, hi) = x.split_at_mut(16);
    let lo: &mut [u32; 16] = lo.try_into().expect("16 words");
    let hi: &mut [u32; 16] = hi.try_into().expect("16 words");
    salsa_xor(lo, hi);
    salsa_xor(hi, lo);
}

/// Where scratchpad block `j` of SMix call `call` lives in the matrix set (spec §2.3): even
/// blocks fill matrix `2·call`, odd blocks matrix `2·call + 1`; row `j / 4`, half `(j / 2) & 1`.
#[inline(always)]
fn block_offset(call: usize, j: usize) -> usize {
    (2 * call + (j & 1)) * MATRIX_BYTES + (j / 4) * SIDE + ((j >> 1) & 1) * (BLOCK_WORDS * 4)
}

fn store_block(dst: &mut [u8], x: &[u32; BLOCK_WORDS]) {
    for (d, w) in dst.chunks_exact_mut(4).zip(x) {
        d.copy_from_slice(&w.to_le_bytes());
    }
}

fn xor_block(x: &mut [u32; BLOCK_WORDS], src: &[u8]) {
    for (w, s) in x.iter_mut().zip(src.chunks_exact(4)) {
        *w ^= u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    }
}

/// Fills `out` (256 matrices × 65,536 bytes) with the matrix set of `seed`.
///
/// # Panics
/// If `out` is not exactly `MATRIX_COUNT * MATRIX_BYTES` bytes long.
pub fn fill_matrices(seed: &[u8; 32], out: &mut [u8]) {
    assert_eq!(
        out.len(),
        MATRIX_COUNT * MATRIX_BYTES,
        "matrix set buffer size"
    );
    let ext = extend_seed(seed);
    let mut x = [0u32; BLOCK_WORDS];
    for (w, b) in x.iter_mut().zip(ext.chunks_exact(4)) {
        *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    for call in 0..SMIX_CALLS {
        for j in 0..SMIX_N {
            let off = block_offset(call, j);
            store_block(&mut out[off..off + BLOCK_WORDS * 4], &x);
            block_mix(&mut x);
        }
        for _ in 0..SMIX_N {
            let j = (x[16] as usize) & (SMIX_N - 1);
            let off = block_offset(call, j);
            xor_block(&mut x, &out[off..off + BLOCK_WORDS * 4]);
            block_mix(&mut x);
        }
    }
}

/// A 64-byte aligned, zero-initialised byte buffer (SIMD kernels use aligned loads).
pub struct AlignedBytes {
    blocks: Vec<Align64>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

impl AlignedBytes {
    /// A zeroed buffer of `len` bytes, aligned to 64 bytes.
    pub fn zeroed(len: usize) -> Self {
        Self {
            blocks: vec![Align64([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `blocks` is a contiguous allocation of `blocks.len() * 64 >= len` initialised
        // bytes; `Align64` is `repr(C)` over a byte array, so it has no padding.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast::<u8>(), self.len) }
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

/// The 256 int8 matrices (16 MiB) derived from one seed, row-major, 64-byte aligned.
pub struct MatrixSet {
    seed: [u8; 32],
    bytes: AlignedBytes,
}

impl MatrixSet {
    /// Builds the matrix set for `seed` (≈ 0.05 s on one modern core).
    pub fn build(seed: &[u8; 32]) -> Self {
        let mut bytes = AlignedBytes::zeroed(MATRIX_COUNT * MATRIX_BYTES);
        fill_matrices(seed, bytes.as_mut_slice());
        Self { seed: *seed, bytes }
    }

    /// The seed these matrices come from.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// All 256 matrices as raw bytes (two's-complement int8), matrix after matrix.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    /// Matrix `index` as 65,536 raw bytes, row-major: byte `256·r + c` is `M[r][c]`.
    pub fn matrix(&self, index: u8) -> &[u8] {
        let start = usize::from(index) * MATRIX_BYTES;
        &self.bytes.as_slice()[start..start + MATRIX_BYTES]
    }
}

impl std::fmt::Debug for MatrixSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixSet")
            .field("seed", &crate::hex::encode(&self.seed))
            .finish()
    }
}

/// Values that a [`SeedCache`] can build from a seed.
pub trait FromSeed: Send + Sync + 'static {
    /// Builds the value for `seed`.
    fn from_seed(seed: &[u8; 32]) -> Self;
}

impl FromSeed for MatrixSet {
    fn from_seed(seed: &[u8; 32]) -> Self {
        Self::build(seed)
    }
}

/// A per-seed cache shared between threads. Entries are held weakly: a value is released as
/// soon as its last user drops it, so a miner that moved to the next epoch frees the old 16 MiB
/// without any eviction policy. Concurrent requests for the same seed build it only once.
pub struct SeedCache<T: FromSeed> {
    entries: Mutex<HashMap<[u8; 32], Arc<Slot<T>>>>,
}

struct Slot<T> {
    value: Mutex<Weak<T>>,
}

impl<T: FromSeed> Default for SeedCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: FromSeed> SeedCache<T> {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `seed`, built on first use and shared while anyone holds it.
    pub fn get(&self, seed: &[u8; 32]) -> Arc<T> {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            // Drop entries whose value nobody holds any more (and that nobody is building).
            entries.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .value
                        .lock()
                        .map(|w| w.strong_count() > 0)
                        .unwrap_or(false)
            });
            Arc::clone(entries.entry(*seed).or_insert_with(|| {
                Arc::new(Slot {
                    value: Mutex::new(Weak::new()),
                })
            }))
        };
        // The slot's own lock serialises builders of one seed without blocking other seeds.
        let mut weak = slot.value.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = weak.upgrade() {
            return value;
        }
        let value = Arc::new(T::from_seed(seed));
        *weak = Arc::downgrade(&value);
        value
    }

    /// How many seeds currently have a live value.
    pub fn live_seeds(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .filter(|slot| {
                slot.value
                    .lock()
                    .map(|w| w.strong_count() > 0)
                    .unwrap_or(false)
            })
            .count()
    }
}

/// The process-wide matrix-set cache used by every backend.
pub fn shared_matrices(seed: &[u8; 32]) -> Arc<MatrixSet> {
    static CACHE: std::sync::OnceLock<SeedCache<MatrixSet>> = std::sync::OnceLock::new();
    CACHE.get_or_init(SeedCache::new).get(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILDS: AtomicUsize = AtomicUsize::new(0);

    struct Counted([u8; 32]);
    impl FromSeed for Counted {
        fn from_seed(seed: &[u8; 32]) -> Self {
            BUILDS.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(20));
            Counted(*seed)
        }
    }

    #[test]
    fn cache_builds_once_shares_and_releases() {
        let cache = Arc::new(SeedCache::<Counted>::new());
        let seed = [7u8; 32];
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || cache.get(&seed))
            })
            .collect();
        let values: Vec<Arc<Counted>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            BUILDS.load(Ordering::SeqCst),
            1,
            "one build for concurrent users"
        );
        assert!(values
            .iter()
            .all(|v| Arc::ptr_eq(v, &values[0]) && v.0 == seed));
        assert_eq!(cache.live_seeds(), 1);
        drop(values);
        assert_eq!(
            cache.live_seeds(),
            0,
            "released when the last user drops it"
        );
        let again = cache.get(&seed);
        assert_eq!(again.0, seed);
        assert_eq!(BUILDS.load(Ordering::SeqCst), 2, "rebuilt after release");
    }

    #[test]
    fn block_offsets_follow_the_odd_interleave_copy() {
        // Row r of Mat[2i+off] is V_i[4r+off] || V_i[4r+2+off].
        assert_eq!(block_offset(0, 0), 0);
        assert_eq!(block_offset(0, 2), 128);
        assert_eq!(block_offset(0, 1), MATRIX_BYTES);
        assert_eq!(block_offset(0, 3), MATRIX_BYTES + 128);
        assert_eq!(block_offset(0, 4), 256);
        assert_eq!(block_offset(1, 1023), 3 * MATRIX_BYTES + 255 * 256 + 128);
    }
}
