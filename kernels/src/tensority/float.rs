//! The exact float path (`float`, alias `cpu-float`): Tensority as f32 GEMMs with f32
//! accumulation, the computation "AI chips" (tensor cores, matrix engines) do natively.
//!
//! Why it is exact (spec §3): every int8 value is exact in f16, bf16 and f32, every product of
//! two is an integer of magnitude ≤ 2^14, and every partial sum of a 256-term dot product is an
//! integer of magnitude ≤ 2^22 < 2^24, so no f32 addition ever rounds, in any summation order
//! and with or without fused multiply-adds. Converting the f32 result to i32 is therefore the
//! exact integer product, and [`reduce8`] follows as in every other backend.
//!
//! This is the CPU version of that path, with `ndarray`'s f32 GEMM (`matrixmultiply` sgemm):
//! the 256 matrices of a seed are kept as f32 (64 MiB, shared per seed through a
//! [`SeedCache`]), each chain step is `P = A · Mᵀ` on a 256×256 f32 state, then `A = reduce8(P)`.
//! A rayon pool spreads the four chains of one hash (`hash`) or many hashes (`hash_batch`);
//! `search` is the shared [`batched_search`] with every hit re-checked on the CPU integer
//! kernel ([`CpuConfirm`]).

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::batch::{batched_search, CpuConfirm};
use super::seed::{shared_matrices, FromSeed, SeedCache};
use super::{
    accumulate_chain, chain_sequence, finish, reduce8, zero_matrix, ChainResult, CHAINS,
    MATRIX_BYTES, SIDE,
};
use crate::backend::{
    BackendError, BackendInfo, BackendOptions, PreparedSeed, Result, SearchOutcome,
    TensorityBackend,
};
use crate::pow::{HeaderTemplate, Target};

/// The backend's name in listings and reports.
pub const NAME: &str = "float";
/// The kernel variant reported in [`BackendInfo::kernel`].
pub const KERNEL: &str = "ndarray-f32";

/// The 256 matrices of one seed as f32 (row-major, matrix after matrix; 64 MiB).
pub struct FloatMatrices {
    seed: [u8; 32],
    values: Vec<f32>,
}

impl FloatMatrices {
    /// Converts the (shared) int8 matrix set of `seed` to f32.
    pub fn build(seed: &[u8; 32]) -> Self {
        let mats = shared_matrices(seed);
        Self {
            seed: *seed,
            values: to_f32(mats.as_bytes()),
        }
    }

    /// The seed these matrices come from.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// Matrix `index` as a 256×256 row-major view: element `[c, j]` is `M[c][j]`.
    pub fn matrix(&self, index: u8) -> ArrayView2<'_, f32> {
        let start = usize::from(index) * MATRIX_BYTES;
        view(&self.values[start..start + MATRIX_BYTES])
    }
}

impl FromSeed for FloatMatrices {
    fn from_seed(seed: &[u8; 32]) -> Self {
        Self::build(seed)
    }
}

impl std::fmt::Debug for FloatMatrices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloatMatrices")
            .field("seed", &crate::hex::encode(&self.seed))
            .finish()
    }
}

/// The process-wide cache of f32 matrix sets.
fn float_matrices(seed: &[u8; 32]) -> Arc<FloatMatrices> {
    static CACHE: OnceLock<SeedCache<FloatMatrices>> = OnceLock::new();
    CACHE.get_or_init(SeedCache::new).get(seed)
}

/// Two's-complement bytes → f32 values (exact).
fn to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&b| f32::from(b as i8)).collect()
}

/// A 65,536-element slice as a 256×256 row-major view.
fn view(values: &[f32]) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((SIDE, SIDE), values).expect("a 256×256 slice")
}

/// One chain step on f32 operands: `p = a · mᵀ` (f32 accumulation, exact, see the module
/// docs), then `a = reduce8(p)` element-wise. `p` is scratch space.
#[inline]
fn step(a: &mut Array2<f32>, m: ArrayView2<'_, f32>, p: &mut Array2<f32>) {
    general_mat_mul(1.0, &*a, &m.t(), 0.0, p);
    for (x, &y) in a.iter_mut().zip(p.iter()) {
        // `y` is an integer of magnitude ≤ 2^22, so the cast is exact.
        *x = f32::from(reduce8(y as i32));
    }
}

/// One product `reduce8(a · mᵀ)` through the f32 GEMM, on row-major two's-complement int8
/// operands (`m` is the seed matrix, entering transposed as in spec §3). For conformance tests
/// against [`super::reference::product`].
///
/// # Panics
/// If an operand is not 65,536 bytes long.
pub fn product(a: &[u8], m: &[u8]) -> Vec<u8> {
    assert!(
        a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES,
        "64 KiB operands"
    );
    let m = to_f32(m);
    let mut a = Array2::from_shape_vec((SIDE, SIDE), to_f32(a)).expect("a 256×256 matrix");
    let mut p = Array2::<f32>::zeros((SIDE, SIDE));
    step(&mut a, view(&m), &mut p);
    a.iter().map(|&x| x as i8 as u8).collect()
}

/// Runs one chain over `sequence` and returns the final state, row-major bytes.
pub fn chain(mats: &FloatMatrices, sequence: &[u8; 32]) -> ChainResult {
    // The first product is I · Mᵀ = Mᵀ, so A₁ = reduce8(Mᵀ) needs no GEMM.
    let first = mats.matrix(sequence[0]);
    let mut a = Array2::from_shape_fn((SIDE, SIDE), |(r, c)| {
        f32::from(reduce8(first[[c, r]] as i32))
    });
    let mut p = Array2::<f32>::zeros((SIDE, SIDE));
    for &index in sequence.iter().chain(sequence).skip(1) {
        step(&mut a, mats.matrix(index), &mut p);
    }
    let mut out = zero_matrix();
    for (o, &x) in out.iter_mut().zip(a.iter()) {
        *o = x as i8 as u8;
    }
    out
}

/// Tensority of `header_hash`, all four chains on the calling thread.
pub fn hash(mats: &FloatMatrices, header_hash: &[u8; 32]) -> [u8; 32] {
    let mut sum = zero_matrix();
    for k in 0..CHAINS {
        accumulate_chain(&mut sum, &chain(mats, &chain_sequence(header_hash, k)));
    }
    finish(&sum)
}

/// Tensority of `header_hash` with the four chains spread over the current rayon pool.
fn hash_parallel_chains(mats: &FloatMatrices, header_hash: &[u8; 32]) -> [u8; 32] {
    let chains: Vec<ChainResult> = (0..CHAINS)
        .into_par_iter()
        .map(|k| chain(mats, &chain_sequence(header_hash, k)))
        .collect();
    let mut sum = zero_matrix();
    for c in &chains {
        accumulate_chain(&mut sum, c);
    }
    finish(&sum)
}

fn resolve_threads(threads: usize) -> usize {
    if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    }
}

/// What the float backend is, with `threads` workers (0 = one per core).
pub fn info(threads: usize) -> BackendInfo {
    BackendInfo {
        name: NAME.to_string(),
        device: super::cpu::cpu_model(),
        kernel: KERNEL.to_string(),
        parallelism: resolve_threads(threads),
        capabilities: vec!["f32-gemm".to_string(), "f32-accumulate".to_string()],
        available: true,
        description: "exact f32 GEMM with f32 accumulation (ndarray/matrixmultiply), \
                      the CPU twin of the tensor-core path"
            .to_string(),
    }
}

/// Opens the float backend with `options.threads` workers (0 = one per core); `options.batch`
/// sets the hashes per batch of `search` (0 = two per worker).
///
/// # Errors
/// [`BackendError::Config`] when the thread pool cannot be built.
pub fn open(options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    Ok(Box::new(FloatBackend::new(options)?))
}

/// The float backend: f32 GEMMs on a pool of worker threads.
pub struct FloatBackend {
    threads: usize,
    batch: usize,
    pool: Arc<rayon::ThreadPool>,
}

impl FloatBackend {
    /// A backend with `options.threads` workers (0 = one per core).
    ///
    /// # Errors
    /// [`BackendError::Config`] when the thread pool cannot be built.
    pub fn new(options: &BackendOptions) -> Result<Self> {
        let threads = resolve_threads(options.threads);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tensority-float-{i}"))
            .build()
            .map_err(|e| BackendError::Config(format!("thread pool: {e}")))?;
        let batch = if options.batch == 0 {
            2 * threads
        } else {
            options.batch
        };
        Ok(Self {
            threads,
            batch,
            pool: Arc::new(pool),
        })
    }
}

impl TensorityBackend for FloatBackend {
    fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        if a.len() != MATRIX_BYTES || m.len() != MATRIX_BYTES {
            return Err(BackendError::Config(
                "operands must be 256×256 bytes".into(),
            ));
        }
        Ok(product(a, m))
    }

    fn info(&self) -> BackendInfo {
        info(self.threads)
    }

    fn prepare(&self, seed: &[u8; 32]) -> Result<Arc<dyn PreparedSeed>> {
        let mats = self.pool.install(|| float_matrices(seed));
        Ok(Arc::new(FloatPrepared {
            mats,
            pool: Arc::clone(&self.pool),
            threads: self.threads,
            batch: self.batch,
            confirm: OnceLock::new(),
        }))
    }
}

struct FloatPrepared {
    mats: Arc<FloatMatrices>,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
    batch: usize,
    /// Built on the first search: verification never needs it.
    confirm: OnceLock<CpuConfirm>,
}

impl FloatPrepared {
    fn confirm(&self) -> Result<&CpuConfirm> {
        if let Some(c) = self.confirm.get() {
            return Ok(c);
        }
        let built = CpuConfirm::new(self.mats.seed())?;
        Ok(self.confirm.get_or_init(|| built))
    }
}

impl PreparedSeed for FloatPrepared {
    fn seed(&self) -> &[u8; 32] {
        self.mats.seed()
    }

    fn hash(&self, header_hash: &[u8; 32]) -> Result<[u8; 32]> {
        if self.threads == 1 {
            return Ok(hash(&self.mats, header_hash));
        }
        Ok(self
            .pool
            .install(|| hash_parallel_chains(&self.mats, header_hash)))
    }

    fn hash_batch(&self, header_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        // Hashes across the pool, and each hash's chains too: a batch smaller than the pool
        // still keeps every worker busy (rayon steals the nested chain jobs).
        Ok(self.pool.install(|| {
            header_hashes
                .par_iter()
                .map(|h| hash_parallel_chains(&self.mats, h))
                .collect()
        }))
    }

    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: Range<u64>,
        target: &Target,
        stop: &AtomicBool,
    ) -> Result<SearchOutcome> {
        let confirm = self.confirm()?;
        batched_search(
            NAME,
            self.batch,
            &|headers| self.hash_batch(headers),
            confirm,
            template,
            nonces,
            target,
            stop,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensority::reference;

    #[test]
    fn extreme_product_is_exact() {
        // All −128 against all −128: every dot product is 256 · 2^14 = 2^22, the largest sum.
        let a = vec![0x80u8; MATRIX_BYTES];
        let mut want = vec![0u8; MATRIX_BYTES];
        reference::product(&a, &a, &mut want);
        assert_eq!(product(&a, &a), want);
    }

    #[test]
    fn chain_matches_the_reference() {
        let seed = [3u8; 32];
        let mats = float_matrices(&seed);
        let int_mats = shared_matrices(&seed);
        let seq = chain_sequence(&[9u8; 32], 2);
        assert_eq!(chain(&mats, &seq), reference::chain(&int_mats, &seq));
    }
}
