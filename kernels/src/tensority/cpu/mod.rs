//! The CPU backend: runtime dispatch between SIMD kernels, work split across nonces on a rayon
//! pool, and across the four chains when a single hash must be fast.
//!
//! Kernels, fastest first: `amx` (Intel AMX-INT8 tiles, Linux; Sapphire Rapids and later),
//! `avx512-vnni` (x86-64 with AVX-512 F/BW/VNNI), `avx-vnni` (x86-64
//! with AVX-VNNI, e.g. Intel client cores without AVX-512), `avx2`, `portable` (safe
//! auto-vectorised Rust; SSE2 on x86-64, NEON on aarch64), and `reference` (the scalar oracle).
//! Every kernel keeps the chain state in its own layout for all 64 products and is checked bit
//! for bit against the reference by the conformance suite.

pub mod amx;
pub mod avx2;
pub mod avx512;
pub mod avxvnni;
pub mod portable;
pub mod vnni;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::seed::{shared_matrices, FromSeed, MatrixSet, SeedCache};
use super::{accumulate_chain, chain_sequence, finish, zero_matrix, ChainResult, CHAINS};
use super::{reference, MATRIX_BYTES};
use crate::backend::{
    BackendError, BackendInfo, Hit, PreparedSeed, Result, SearchOutcome, TensorityBackend,
};
use crate::pow::{HeaderTemplate, Target};

/// A CPU kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuKernel {
    /// The scalar reference (the oracle; slow).
    Reference,
    /// Safe auto-vectorised Rust with wrapping 16-bit accumulators.
    Portable,
    /// AVX2 `vpmaddwd` on int16 pairs, register-blocked.
    Avx2,
    /// AVX-VNNI `vpdpbusd` on ymm.
    AvxVnni,
    /// AVX-512 VNNI `vpdpbusd` on zmm.
    Avx512Vnni,
    /// Intel AMX `tdpbssd` int8 tiles with an AVX-512 epilogue.
    Amx,
}

#[cfg(target_arch = "x86_64")]
fn has(feature: &str) -> bool {
    match feature {
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "avxvnni" => std::arch::is_x86_feature_detected!("avxvnni"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        "avx512bw" => std::arch::is_x86_feature_detected!("avx512bw"),
        "avx512vnni" => std::arch::is_x86_feature_detected!("avx512vnni"),
        _ => false,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn has(_feature: &str) -> bool {
    false
}

impl CpuKernel {
    /// Every kernel this build contains, fastest first.
    pub const ALL: [CpuKernel; 6] = [
        CpuKernel::Amx,
        CpuKernel::Avx512Vnni,
        CpuKernel::AvxVnni,
        CpuKernel::Avx2,
        CpuKernel::Portable,
        CpuKernel::Reference,
    ];

    /// The kernel's name (`amx`, `avx512-vnni`, `avx-vnni`, `avx2`, `portable`, `reference`).
    pub fn name(self) -> &'static str {
        match self {
            CpuKernel::Reference => "reference",
            CpuKernel::Portable => "portable",
            CpuKernel::Avx2 => "avx2",
            CpuKernel::AvxVnni => "avx-vnni",
            CpuKernel::Avx512Vnni => "avx512-vnni",
            CpuKernel::Amx => "amx",
        }
    }

    /// The instruction-set features the kernel needs.
    pub fn required_features(self) -> &'static [&'static str] {
        match self {
            CpuKernel::Reference | CpuKernel::Portable => &[],
            CpuKernel::Avx2 => &["avx2"],
            CpuKernel::AvxVnni => &["avx2", "avxvnni"],
            CpuKernel::Avx512Vnni => &["avx512f", "avx512bw", "avx512vnni"],
            CpuKernel::Amx => &["amx-tile", "amx-int8", "avx512f", "avx512bw", "avx512vbmi"],
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            // AMX also needs the OS to grant this process the tile state.
            CpuKernel::Amx => amx::is_supported(),
            _ => self.required_features().iter().all(|f| has(f)),
        }
    }

    /// The fastest kernel this CPU supports.
    pub fn best() -> CpuKernel {
        Self::ALL
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(CpuKernel::Portable)
    }

    /// Parses a kernel name.
    pub fn from_name(name: &str) -> Option<CpuKernel> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// One product `reduce8(a · mᵀ)` on row-major int8 matrices, through this kernel's own
    /// layout conversion and step. For conformance tests of the kernels themselves.
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] if the CPU cannot run the kernel.
    ///
    /// # Panics
    /// If an operand is not 65,536 bytes long.
    pub fn product(self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        self.ensure_supported()?;
        assert!(
            a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES,
            "64 KiB operands"
        );
        Ok(match self {
            CpuKernel::Reference => {
                let mut out = vec![0u8; MATRIX_BYTES];
                reference::product(a, m, &mut out);
                out
            }
            CpuKernel::Portable => portable::product(a, m),
            CpuKernel::Amx => amx::product(a, m),
            #[cfg(target_arch = "x86_64")]
            CpuKernel::Avx2 => {
                // SAFETY: `ensure_supported` confirmed the kernel's CPU features above.
                unsafe { avx2::product(a, m) }
            }
            #[cfg(target_arch = "x86_64")]
            CpuKernel::AvxVnni => {
                // SAFETY: `ensure_supported` confirmed the kernel's CPU features above.
                unsafe { avxvnni::product(a, m) }
            }
            #[cfg(target_arch = "x86_64")]
            CpuKernel::Avx512Vnni => {
                // SAFETY: `ensure_supported` confirmed the kernel's CPU features above.
                unsafe { avx512::product(a, m) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            CpuKernel::Avx2 | CpuKernel::AvxVnni | CpuKernel::Avx512Vnni => {
                unreachable!("x86 kernels are never supported off x86-64")
            }
        })
    }

    fn ensure_supported(self) -> Result<()> {
        if self.is_supported() {
            Ok(())
        } else {
            Err(BackendError::Unsupported {
                name: format!("cpu-{}", self.name()),
                reason: format!("needs CPU features {}", self.required_features().join(", ")),
            })
        }
    }
}

/// A process-wide cache of per-seed kernel data of type `T`.
fn cache<T: FromSeed>(cell: &'static OnceLock<SeedCache<T>>) -> &'static SeedCache<T> {
    cell.get_or_init(SeedCache::new)
}

static WIDE: OnceLock<SeedCache<portable::WideSet>> = OnceLock::new();
static CORRECTIONS: OnceLock<SeedCache<vnni::Corrections>> = OnceLock::new();
static AMX_TILES: OnceLock<SeedCache<amx::AmxMatrices>> = OnceLock::new();

/// Seed data each kernel needs beyond the row-major matrices (shared through the caches).
enum KernelData {
    Reference,
    Portable(Arc<portable::WideSet>),
    Avx2(Arc<portable::WideSet>),
    AvxVnni(Arc<vnni::Corrections>),
    Avx512Vnni(Arc<vnni::Corrections>),
    Amx(Arc<amx::AmxMatrices>),
}

/// A kernel with everything it needs for one seed; runs chains and whole hashes on the
/// calling thread. Only constructed for a kernel the CPU supports.
pub struct KernelSeed {
    kernel: CpuKernel,
    mats: Arc<MatrixSet>,
    data: KernelData,
}

impl KernelSeed {
    /// Prepares `kernel` for `seed` (matrix set and kernel data come from the shared caches).
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] if the CPU cannot run the kernel.
    pub fn new(kernel: CpuKernel, seed: &[u8; 32]) -> Result<Self> {
        kernel.ensure_supported()?;
        let mats = shared_matrices(seed);
        let data = match kernel {
            CpuKernel::Reference => KernelData::Reference,
            CpuKernel::Portable => KernelData::Portable(cache(&WIDE).get(seed)),
            CpuKernel::Avx2 => KernelData::Avx2(cache(&WIDE).get(seed)),
            CpuKernel::AvxVnni => KernelData::AvxVnni(cache(&CORRECTIONS).get(seed)),
            CpuKernel::Avx512Vnni => KernelData::Avx512Vnni(cache(&CORRECTIONS).get(seed)),
            CpuKernel::Amx => KernelData::Amx(cache(&AMX_TILES).get(seed)),
        };
        Ok(Self { kernel, mats, data })
    }

    /// The kernel.
    pub fn kernel(&self) -> CpuKernel {
        self.kernel
    }

    /// Runs one chain over `sequence` and returns the final state, row-major.
    pub fn chain(&self, sequence: &[u8; 32]) -> ChainResult {
        match &self.data {
            KernelData::Reference => reference::chain(&self.mats, sequence),
            KernelData::Portable(wide) => portable::chain(wide, sequence),
            KernelData::Amx(tiles) => amx::chain(&self.mats, tiles, sequence),
            #[cfg(target_arch = "x86_64")]
            KernelData::Avx2(wide) => {
                // SAFETY: a `KernelSeed` exists only for a kernel whose CPU features
                // `ensure_supported` confirmed in `new`.
                unsafe { avx2::chain(wide, sequence) }
            }
            #[cfg(target_arch = "x86_64")]
            KernelData::AvxVnni(corr) => {
                // SAFETY: as above.
                unsafe { avxvnni::chain(&self.mats, corr, sequence) }
            }
            #[cfg(target_arch = "x86_64")]
            KernelData::Avx512Vnni(corr) => {
                // SAFETY: as above.
                unsafe { avx512::chain(&self.mats, corr, sequence) }
            }
            #[cfg(not(target_arch = "x86_64"))]
            KernelData::Avx2(_) | KernelData::AvxVnni(_) | KernelData::Avx512Vnni(_) => {
                unreachable!("x86 kernels are never supported off x86-64")
            }
        }
    }

    /// Tensority of `header_hash`, all four chains on the calling thread.
    pub fn hash(&self, header_hash: &[u8; 32]) -> [u8; 32] {
        let mut sum = zero_matrix();
        for k in 0..CHAINS {
            accumulate_chain(&mut sum, &self.chain(&chain_sequence(header_hash, k)));
        }
        finish(&sum)
    }

    /// Tensority of `header_hash` with the four chains spread over the current rayon pool.
    pub fn hash_parallel_chains(&self, header_hash: &[u8; 32]) -> [u8; 32] {
        let chains: Vec<ChainResult> = (0..CHAINS)
            .into_par_iter()
            .map(|k| self.chain(&chain_sequence(header_hash, k)))
            .collect();
        let mut sum = zero_matrix();
        for c in &chains {
            accumulate_chain(&mut sum, c);
        }
        finish(&sum)
    }
}

/// The CPU backend: one kernel and a pool of worker threads.
pub struct CpuBackend {
    kernel: CpuKernel,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

impl CpuBackend {
    /// A backend running `kernel` on `threads` workers (0 = one per available core).
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] if the CPU cannot run the kernel;
    /// [`BackendError::Config`] if the thread pool cannot be built.
    pub fn new(kernel: CpuKernel, threads: usize) -> Result<Self> {
        kernel.ensure_supported()?;
        let threads = if threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("tensority-{}-{i}", kernel.name()))
            .build()
            .map_err(|e| BackendError::Config(format!("thread pool: {e}")))?;
        Ok(Self {
            kernel,
            threads,
            pool: Arc::new(pool),
        })
    }

    /// The kernel in use.
    pub fn kernel(&self) -> CpuKernel {
        self.kernel
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

fn info_for(kernel: CpuKernel, threads: usize) -> BackendInfo {
    let name = if kernel == CpuKernel::Reference {
        "reference".to_string()
    } else {
        format!("cpu-{}", kernel.name())
    };
    BackendInfo {
        name,
        device: cpu_model(),
        kernel: kernel.name().to_string(),
        parallelism: threads,
        capabilities: kernel
            .required_features()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        available: kernel.is_supported(),
        description: match kernel {
            CpuKernel::Reference => "scalar reference (oracle, slow)",
            CpuKernel::Portable => {
                "auto-vectorised safe Rust, int16 dot products with 16-bit wrapping accumulators"
            }
            CpuKernel::Avx2 => "AVX2 vpmaddwd on int16 pairs, 16x6 register-blocked tiles",
            CpuKernel::AvxVnni => "AVX-VNNI vpdpbusd on ymm with +128 bias and row correction",
            CpuKernel::Avx512Vnni => "AVX-512 VNNI vpdpbusd with +128 bias and row correction",
            CpuKernel::Amx => "Intel AMX tdpbssd int8 tiles, AVX-512 reduce8 epilogue",
        }
        .to_string(),
    }
}

impl TensorityBackend for CpuBackend {
    fn info(&self) -> BackendInfo {
        info_for(self.kernel, self.threads)
    }

    fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        if a.len() != MATRIX_BYTES || m.len() != MATRIX_BYTES {
            return Err(BackendError::Config(
                "operands must be 256×256 bytes".into(),
            ));
        }
        self.kernel.product(a, m)
    }

    fn prepare(&self, seed: &[u8; 32]) -> Result<Arc<dyn PreparedSeed>> {
        let kernel_seed = self.pool.install(|| KernelSeed::new(self.kernel, seed))?;
        Ok(Arc::new(CpuPrepared {
            seed: *seed,
            kernel_seed,
            pool: Arc::clone(&self.pool),
            threads: self.threads,
        }))
    }
}

struct CpuPrepared {
    seed: [u8; 32],
    kernel_seed: KernelSeed,
    pool: Arc<rayon::ThreadPool>,
    threads: usize,
}

impl PreparedSeed for CpuPrepared {
    fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    fn hash(&self, header_hash: &[u8; 32]) -> Result<[u8; 32]> {
        if self.threads == 1 {
            return Ok(self.kernel_seed.hash(header_hash));
        }
        Ok(self
            .pool
            .install(|| self.kernel_seed.hash_parallel_chains(header_hash)))
    }

    fn hash_batch(&self, header_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        Ok(self.pool.install(|| {
            header_hashes
                .par_iter()
                .map(|h| self.kernel_seed.hash(h))
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
        let cursor = AtomicU64::new(nonces.start);
        let hashes = AtomicU64::new(0);
        let hits = Mutex::new(Vec::new());
        // Each worker claims one nonce at a time, so a stop request is honoured within one hash
        // per worker and no nonce is hashed twice.
        self.pool.broadcast(|_| loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let nonce = cursor.fetch_add(1, Ordering::Relaxed);
            if nonce >= nonces.end || nonce < nonces.start {
                break;
            }
            let header_hash = template.header_hash(nonce);
            let pow_hash = self.kernel_seed.hash(&header_hash);
            hashes.fetch_add(1, Ordering::Relaxed);
            if target.is_met_by(&pow_hash) {
                hits.lock().unwrap_or_else(|e| e.into_inner()).push(Hit {
                    nonce,
                    header_hash,
                    pow_hash,
                });
            }
            if nonce == u64::MAX {
                break;
            }
        });
        let mut hits = hits.into_inner().unwrap_or_else(|e| e.into_inner());
        hits.sort_by_key(|h| h.nonce);
        let hashes = hashes.into_inner();
        let total = nonces.end.saturating_sub(nonces.start);
        Ok(SearchOutcome {
            hits,
            hashes,
            stopped: hashes < total,
        })
    }
}

/// The CPU model string from the OS, or the architecture when unknown.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Every CPU backend name with its availability.
pub fn list() -> Vec<BackendInfo> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    CpuKernel::ALL
        .into_iter()
        .map(|k| info_for(k, threads))
        .collect()
}

/// Opens a CPU backend by name: `auto`/`cpu` (best kernel), `reference`, `portable`, `avx2`,
/// `avx512-vnni`, each also accepted with a `cpu-` prefix.
///
/// # Errors
/// [`BackendError::Unknown`] for other names, [`BackendError::Unsupported`] when the CPU lacks
/// the kernel's features.
pub fn open(name: &str, threads: usize) -> Result<Box<dyn crate::backend::TensorityBackend>> {
    let kernel = match name {
        "auto" | "cpu" => CpuKernel::best(),
        other => {
            let bare = other.strip_prefix("cpu-").unwrap_or(other);
            CpuKernel::from_name(bare).ok_or_else(|| BackendError::Unknown {
                name: other.to_string(),
                available: std::iter::once("auto".to_string())
                    .chain(std::iter::once("cpu".to_string()))
                    .chain(list().into_iter().map(|b| b.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?
        }
    };
    Ok(Box::new(CpuBackend::new(kernel, threads)?))
}
