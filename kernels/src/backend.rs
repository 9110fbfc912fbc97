//! The seam every Tensority backend implements (CPU now; wgpu, CUDA and the float path later),
//! and the registry that lists what this machine offers.
//!
//! A backend is opened once; [`TensorityBackend::prepare`] turns a seed into device-resident
//! data (the seed changes only every 256 blocks); the prepared seed hashes single headers
//! (verification latency) and searches nonce ranges (mining throughput).

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use thiserror::Error;

use crate::pow::{HeaderTemplate, Target};

/// Errors from opening or using a backend.
#[derive(Debug, Error)]
pub enum BackendError {
    /// No backend of that name exists in this build.
    #[error("unknown backend {name:?}; available: {available}")]
    Unknown {
        /// The name asked for.
        name: String,
        /// Comma-separated names that exist.
        available: String,
    },
    /// The backend exists but this machine cannot run it.
    #[error("backend {name:?} is not supported on this machine: {reason}")]
    Unsupported {
        /// The backend.
        name: String,
        /// What is missing.
        reason: String,
    },
    /// A device failed while working.
    #[error("device error on {device}: {message}")]
    Device {
        /// The device.
        device: String,
        /// What went wrong.
        message: String,
    },
    /// A bad parameter such as zero threads.
    #[error("invalid backend configuration: {0}")]
    Config(String),
}

/// Result alias for backend operations.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;

/// What a backend is and can do, for listings and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInfo {
    /// Name accepted by `--backend`, e.g. `cpu` or `cpu-avx512-vnni`.
    pub name: String,
    /// The device, e.g. the CPU model or GPU name.
    pub device: String,
    /// The kernel variant in use, e.g. `avx512-vnni`.
    pub kernel: String,
    /// Worker threads (CPU) or streams (GPU) used by `search`.
    pub parallelism: usize,
    /// Capabilities, e.g. instruction-set features.
    pub capabilities: Vec<String>,
    /// Whether this machine can run it.
    pub available: bool,
    /// A short description.
    pub description: String,
}

/// A nonce that met the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The nonce.
    pub nonce: u64,
    /// The block ID for that nonce (the Tensority input).
    pub header_hash: [u8; 32],
    /// The Tensority result.
    pub pow_hash: [u8; 32],
}

/// What a search did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchOutcome {
    /// Nonces that met the target, in ascending order.
    pub hits: Vec<Hit>,
    /// Hashes computed (the whole range unless stopped early).
    pub hashes: u64,
    /// Whether the stop flag ended the search before the range was exhausted.
    pub stopped: bool,
}

/// A backend whose data for one seed is ready.
pub trait PreparedSeed: Send + Sync {
    /// The seed.
    fn seed(&self) -> &[u8; 32];

    /// Tensority of one header hash, as fast as the backend can return a single result.
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device fails.
    fn hash(&self, header_hash: &[u8; 32]) -> Result<[u8; 32]>;

    /// Tensority of many header hashes at once, in order: the throughput path for verifying a
    /// window of blocks that share a seed. Batched devices run them concurrently; the default
    /// hashes one after another.
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device fails.
    fn hash_batch(&self, header_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        header_hashes.iter().map(|h| self.hash(h)).collect()
    }

    /// Hashes every nonce in `nonces` (IDs from `template`) and returns those whose result meets
    /// `target`. Checks `stop` at least once per hash per worker and returns early when set.
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device fails.
    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: Range<u64>,
        target: &Target,
        stop: &AtomicBool,
    ) -> Result<SearchOutcome>;
}

/// A Tensority backend.
pub trait TensorityBackend: Send + Sync {
    /// What it is.
    fn info(&self) -> BackendInfo;

    /// Builds (or fetches from the shared cache) the data for `seed`.
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device cannot hold the data.
    fn prepare(&self, seed: &[u8; 32]) -> Result<Arc<dyn PreparedSeed>>;

    /// One Tensority step `reduce8(A · Mᵀ)` of two row-major 256×256 int8 operands, computed
    /// with the same kernel the chains use: the conformance suite's hook. Backends without a
    /// single-step path return [`BackendError::Unsupported`].
    ///
    /// # Errors
    /// [`BackendError::Config`] for operands that are not 64 KiB; [`BackendError::Device`].
    fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        let _ = (a, m);
        Err(BackendError::Unsupported {
            name: self.info().name,
            reason: "no single-product hook".into(),
        })
    }
}

/// How to open a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendOptions {
    /// CPU worker threads (0 = one per available core).
    pub threads: usize,
    /// Hashes in flight per device launch for batched backends (0 = the backend's default).
    pub batch: usize,
    /// Device index for GPU backends.
    pub device: usize,
}

/// Every backend this build knows, with availability on this machine: the CPU kernels, the
/// exact float path, and the GPU backends compiled in (`wgpu`, `cuda` features).
pub fn list_backends() -> Vec<BackendInfo> {
    let mut all = crate::tensority::cpu::list();
    all.push(crate::tensority::float::info(0));
    #[cfg(feature = "wgpu")]
    all.extend(crate::tensority::webgpu::list());
    #[cfg(feature = "cuda")]
    all.extend(crate::tensority::cuda::list());
    all
}

/// Opens a backend by name (`auto`, `reference`, `cpu`, `cpu-avx512-vnni`, `float`, `wgpu`,
/// `wgpu-f16`, `cuda`, `cuda-wgmma`, `cuda-mma`, `cuda-dp4a`, …) with `threads` CPU workers
/// (0 = one per core).
///
/// # Errors
/// [`BackendError::Unknown`] or [`BackendError::Unsupported`].
pub fn open_backend(name: &str, threads: usize) -> Result<Box<dyn TensorityBackend>> {
    open_backend_with(
        name,
        &BackendOptions {
            threads,
            ..BackendOptions::default()
        },
    )
}

/// Opens a backend by name with full options.
///
/// # Errors
/// [`BackendError::Unknown`], [`BackendError::Unsupported`] (including a GPU backend left out
/// of this build), or [`BackendError::Config`].
pub fn open_backend_with(
    name: &str,
    options: &BackendOptions,
) -> Result<Box<dyn TensorityBackend>> {
    match name {
        "float" | "cpu-float" => crate::tensority::float::open(options),
        _ if name == "wgpu" || name.starts_with("wgpu-") => open_wgpu(name, options),
        _ if name == "cuda" || name.starts_with("cuda-") => open_cuda(name, options),
        _ => crate::tensority::cpu::open(name, options.threads),
    }
}

#[cfg(feature = "wgpu")]
fn open_wgpu(name: &str, options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    crate::tensority::webgpu::open(name, options)
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu(name: &str, _options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    Err(BackendError::Unsupported {
        name: name.to_string(),
        reason: "this build has no wgpu support (feature `wgpu`)".into(),
    })
}

#[cfg(feature = "cuda")]
fn open_cuda(name: &str, options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    crate::tensority::cuda::open(name, options)
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(name: &str, _options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    Err(BackendError::Unsupported {
        name: name.to_string(),
        reason: "this build has no CUDA support (feature `cuda`)".into(),
    })
}
