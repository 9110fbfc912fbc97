//! The CUDA backends: Tensority on NVIDIA GPUs through `cudarc`, with the driver and NVRTC
//! loaded at run time, so nothing CUDA is needed to build. `cuda` is the best tensor-core
//! kernel that passes a self-test on the device; `cuda-wgmma` (Hopper warpgroup MMA, sm_90),
//! `cuda-mma` (`mma.sync`, sm_80+) and `cuda-dp4a` (sm_61+) name one kernel each.
//!
//! **Batched formulation.** A batch of header hashes becomes `4 × batch` independent chains,
//! one thread block per chain ([`tensority.cu`](./tensority.cu)). The seed's 256 matrices are
//! uploaded once per seed. The tensor-core kernels keep each chain's 64 KiB state in registers
//! for all 64 dependent products (as MMA A fragments) and stage each step's matrix in shared
//! memory with `cp.async`, double-buffered; `reduce8` is fused into the epilogue and turns the
//! accumulators straight into the next step's operand fragments. `mma.sync.m16n8k32` reads B
//! fragments with 16-byte shared loads from padded rows; `wgmma.mma_async.m64n32k32` reads B
//! through a matrix descriptor from the no-swizzle core-matrix layout ([`wgmma_layout`]). The
//! `cuda-dp4a` kernel (sm_61+) is the fallback for GPUs without int8 MMA. A
//! second kernel sums the four chains of each hash mod 256 and FNV-folds them, so only 256
//! bytes per hash come back; the final SHA3 runs on the host. Two streams alternate, so the
//! host hashes one sub-batch while the GPU runs the next.
//!
//! **Operand layout for the tensor-core kernel.** The accumulator fragment leaves each thread
//! the columns `{2q, 2q+1, 2q+8, 2q+9}` (+16) of every 32-column tile, where the next product
//! wants them as operand "slots" `4q..4q+3` (+16). Rather than shuffle, slot `s` of k-tile `kt`
//! is *defined* to hold column `32·kt + π(s)` with `π(16u + 4q + e) = 16u + 2q + (e & 1) +
//! 8(e >> 1)`, and the seed matrices are permuted along K the same way ([`mma_layout`]), so
//! every dot product pairs matching columns. A CPU emulation of the warp-level algorithm
//! (tests below) checks this layout against the reference without a GPU.
//!
//! Every hit a search finds is confirmed on the CPU before it is returned
//! ([`crate::tensority::batch`]).

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use rayon::prelude::*;

use super::batch::{batched_search, CpuConfirm};
use super::seed::shared_matrices;
use super::{chain_sequence, sha3_256, CHAINS, MATRIX_BYTES, MATRIX_COUNT, SIDE};
use crate::backend::{
    BackendError, BackendInfo, BackendOptions, PreparedSeed, Result, SearchOutcome,
    TensorityBackend,
};
use crate::pow::{HeaderTemplate, Target};

const SOURCE: &str = include_str!("tensority.cu");
/// Shared memory of the `mma.sync` kernel: two staged matrices with 320-byte row pitch.
const MMA_SHARED_BYTES: u32 = 2 * 256 * 320;
/// Shared memory of the `wgmma` kernel: two staged matrices in the core-matrix layout.
const WGMMA_SHARED_BYTES: u32 = 2 * MATRIX_BYTES as u32;
/// Threads per block of every kernel.
const BLOCK_THREADS: u32 = 256;

/// The chain kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CudaKernel {
    /// Hopper warpgroup MMA, `wgmma.mma_async.m64n32k32` with A in registers (compute
    /// capability 9.0 exactly: `sm_90a` instructions).
    Wgmma,
    /// int8 tensor cores, `mma.sync.m16n8k32` (compute capability 8.0 or newer).
    Mma,
    /// `__dp4a` int8 dot products (compute capability 6.1 or newer).
    Dp4a,
}

impl CudaKernel {
    /// The backend name.
    pub fn backend_name(self) -> &'static str {
        match self {
            CudaKernel::Wgmma => "cuda-wgmma",
            CudaKernel::Mma => "cuda-mma",
            CudaKernel::Dp4a => "cuda-dp4a",
        }
    }

    fn function_name(self) -> &'static str {
        match self {
            CudaKernel::Wgmma => "tensority_chains_wgmma",
            CudaKernel::Mma => "tensority_chains_mma",
            CudaKernel::Dp4a => "tensority_chains_dp4a",
        }
    }

    fn min_capability(self) -> (i32, i32) {
        match self {
            CudaKernel::Wgmma => (9, 0),
            CudaKernel::Mma => (8, 0),
            CudaKernel::Dp4a => (6, 1),
        }
    }

    fn shared_bytes(self) -> u32 {
        match self {
            CudaKernel::Wgmma => WGMMA_SHARED_BYTES,
            CudaKernel::Mma => MMA_SHARED_BYTES,
            CudaKernel::Dp4a => 0,
        }
    }

    /// The seed matrices in the layout this kernel reads.
    fn layout(self, mats: &[u8]) -> Vec<u8> {
        match self {
            CudaKernel::Wgmma => wgmma_layout(mats),
            CudaKernel::Mma => mma_layout(mats),
            CudaKernel::Dp4a => mats.to_vec(),
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [CudaKernel::Wgmma, CudaKernel::Mma, CudaKernel::Dp4a]
            .into_iter()
            .find(|k| k.backend_name() == name)
    }
}

/// Permutes every 256-byte row of `mats` (any number of row-major 256×256 matrices) for the
/// tensor-core kernel: byte `64p + 16q + 8h + 4u + e` of a row holds column
/// `32(2p + h) + 16u + 2q + (e & 1) + 8(e >> 1)`. A thread's 16-byte load at `64p + 16q` is then
/// its B fragment for k-tiles `2p` and `2p + 1`.
pub fn mma_layout(mats: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; mats.len()];
    out.par_chunks_mut(SIDE)
        .zip(mats.par_chunks(SIDE))
        .for_each(|(dst, src)| {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[mma_column(i)];
            }
        });
    out
}

/// Lays out every 256×256 matrix of `mats` for the `wgmma` kernel: 8-row × 16-byte core matrices
/// (128 contiguous bytes), the 16 along K of one 8-row group next to each other, then the next
/// group: byte `2048·(n/8) + 128·c + 16·(n%8) + b` holds row `n`, column
/// `32(c/2) + π(16(c%2) + b)` (π as in [`mma_layout`]).
pub fn wgmma_layout(mats: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; mats.len()];
    out.par_chunks_mut(MATRIX_BYTES)
        .zip(mats.par_chunks(MATRIX_BYTES))
        .for_each(|(dst, src)| {
            for (i, d) in dst.iter_mut().enumerate() {
                let (group, chunk, row, b) = (i >> 11, (i >> 7) & 15, (i >> 4) & 7, i & 15);
                let slot = 16 * (chunk & 1) + b;
                *d = src[(8 * group + row) * SIDE + 32 * (chunk >> 1) + slot_column(slot)];
            }
        });
    out
}

/// π: the column (within a 32-column k-tile) that operand slot `s` stands for.
fn slot_column(s: usize) -> usize {
    let (u, q, e) = (s >> 4, (s >> 2) & 3, s & 3);
    16 * u + 2 * q + (e & 1) + 8 * (e >> 1)
}

/// The column that byte `i` of a permuted row holds.
fn mma_column(i: usize) -> usize {
    let (p, q, h, u, e) = (i >> 6, (i >> 4) & 3, (i >> 3) & 1, (i >> 2) & 1, i & 3);
    32 * (2 * p + h) + 16 * u + 2 * q + (e & 1) + 8 * (e >> 1)
}

fn device_error(device: &str, what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Device {
        device: device.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// Whether the CUDA driver and NVRTC libraries can be loaded; `Err` says which is missing.
fn libraries_present() -> std::result::Result<(), String> {
    // SAFETY: these only try to open the shared libraries (cudarc panics on first use when they
    // are missing, so this check must come before any other call).
    let driver = unsafe { cudarc::driver::sys::is_culib_present() };
    // SAFETY: as above.
    let nvrtc = unsafe { cudarc::nvrtc::sys::is_culib_present() };
    match (driver, nvrtc) {
        (true, true) => Ok(()),
        (false, _) => Err("the CUDA driver library (libcuda) is not installed".into()),
        (true, false) => Err("NVRTC (libnvrtc) is not installed or not on the library path".into()),
    }
}

/// An opened GPU with the compiled module.
struct Gpu {
    streams: [Arc<CudaStream>; 2],
    wgmma: Option<CudaFunction>,
    mma: Option<CudaFunction>,
    dp4a: CudaFunction,
    fold: CudaFunction,
    name: String,
    capability: (i32, i32),
    multiprocessors: usize,
}

impl Gpu {
    fn open(ordinal: usize) -> std::result::Result<Gpu, String> {
        libraries_present()?;
        let ctx =
            CudaContext::new(ordinal).map_err(|e| format!("no CUDA device {ordinal}: {e}"))?;
        let name = ctx.name().unwrap_or_else(|_| "NVIDIA GPU".into());
        let capability = ctx
            .compute_capability()
            .map_err(|e| format!("compute capability: {e}"))?;
        if capability < CudaKernel::Dp4a.min_capability() {
            return Err(format!(
                "{name} has compute capability {}.{}; 6.1 or newer is needed",
                capability.0, capability.1
            ));
        }
        let multiprocessors = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| format!("multiprocessor count: {e}"))?
            .max(1) as usize;
        let compile = |arch: Option<&'static str>| {
            compile_ptx_with_opts(
                SOURCE,
                CompileOptions {
                    arch,
                    options: vec!["-std=c++17".into()],
                    name: Some("tensority.cu".into()),
                    ..CompileOptions::default()
                },
            )
            .map_err(|e| format!("NVRTC could not compile the kernels for {arch:?}: {e}"))
        };
        // On compute capability 9.0 the arch-specific target adds the wgmma kernel; an NVRTC
        // too old for it falls back to the portable target.
        let (ptx, has_wgmma) = match capability {
            (9, 0) => match compile(Some("compute_90a")) {
                Ok(ptx) => (ptx, true),
                Err(_) => (compile(arch_option(capability))?, false),
            },
            _ => (compile(arch_option(capability))?, false),
        };
        let module = ctx
            .load_module(ptx)
            .map_err(|e| format!("loading the kernels: {e}"))?;
        let load = |n: &str| {
            module
                .load_function(n)
                .map_err(|e| format!("kernel {n}: {e}"))
        };
        let with_shared = |kernel: CudaKernel| -> std::result::Result<CudaFunction, String> {
            let f = load(kernel.function_name())?;
            let bytes = kernel.shared_bytes();
            f.set_attribute(
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes as i32,
            )
            .map_err(|e| format!("{bytes} bytes of shared memory per block: {e}"))?;
            Ok(f)
        };
        let mma = if capability >= CudaKernel::Mma.min_capability() {
            Some(with_shared(CudaKernel::Mma)?)
        } else {
            None
        };
        let wgmma = if has_wgmma {
            Some(with_shared(CudaKernel::Wgmma)?)
        } else {
            None
        };
        let dp4a = load(CudaKernel::Dp4a.function_name())?;
        let fold = load("tensority_fold")?;
        let streams = [
            ctx.new_stream().map_err(|e| format!("stream: {e}"))?,
            ctx.new_stream().map_err(|e| format!("stream: {e}"))?,
        ];
        Ok(Gpu {
            streams,
            wgmma,
            mma,
            dp4a,
            fold,
            name,
            capability,
            multiprocessors,
        })
    }

    fn function(&self, kernel: CudaKernel) -> Option<&CudaFunction> {
        match kernel {
            CudaKernel::Wgmma => self.wgmma.as_ref(),
            CudaKernel::Mma => self.mma.as_ref(),
            CudaKernel::Dp4a => Some(&self.dp4a),
        }
    }
}

/// NVRTC's virtual architecture for the device, capped at what NVRTC 12.x knows.
fn arch_option(capability: (i32, i32)) -> Option<&'static str> {
    Some(match capability {
        (9, _) => "compute_90",
        (8, 9) => "compute_89",
        (8, 6..) => "compute_86",
        (8, _) => "compute_80",
        (7, 5..) => "compute_75",
        (7, _) => "compute_70",
        (6, _) => "compute_61",
        (c, _) if c >= 10 => "compute_90",
        _ => return None,
    })
}

/// An opened GPU, or why it could not be opened.
type GpuProbe = std::result::Result<Arc<Gpu>, String>;

/// The process-wide GPU handle per device ordinal (a context and compiled module are expensive).
fn gpu(ordinal: usize) -> GpuProbe {
    static GPUS: OnceLock<Mutex<Vec<(usize, GpuProbe)>>> = OnceLock::new();
    let mut gpus = GPUS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, g)) = gpus.iter().find(|(o, _)| *o == ordinal) {
        return g.clone();
    }
    let g = Gpu::open(ordinal).map(Arc::new);
    gpus.push((ordinal, g.clone()));
    g
}

fn info(name: &str, kernel: CudaKernel, ordinal: usize, batch: usize) -> BackendInfo {
    let probe = gpu(ordinal);
    let (device, capabilities, available, parallelism) = match &probe {
        Ok(g) => {
            let ok = g.function(kernel).is_some();
            (
                g.name.clone(),
                vec![
                    format!("sm_{}{}", g.capability.0, g.capability.1),
                    format!("{} SMs", g.multiprocessors),
                    format!("batch {}", effective_batch(batch, g)),
                ],
                ok,
                effective_batch(batch, g),
            )
        }
        Err(reason) => (format!("none ({reason})"), Vec::new(), false, 0),
    };
    BackendInfo {
        name: name.to_string(),
        device,
        kernel: match kernel {
            CudaKernel::Wgmma => "wgmma.m64n32k32.s8".into(),
            CudaKernel::Mma => "mma.sync.m16n8k32.s8".into(),
            CudaKernel::Dp4a => "dp4a".into(),
        },
        // Hashes in flight per launch.
        parallelism,
        capabilities,
        available,
        description: match (name, kernel) {
            ("cuda", _) => {
                "CUDA int8 tensor cores: the fastest kernel that passes its self-test".into()
            }
            (_, CudaKernel::Wgmma) => {
                "CUDA Hopper wgmma, A in registers, B staged in shared memory (sm_90)".into()
            }
            (_, CudaKernel::Mma) => "CUDA int8 mma.sync, chain state in registers (sm_80+)".into(),
            (_, CudaKernel::Dp4a) => "CUDA __dp4a int8 dot products (sm_61+)".into(),
        },
    }
}

/// Default batch: 16 hashes per multiprocessor (4 chains each, one block per chain), a multiple
/// of the SM count so that the last wave is full (measured on an H200: 1056 → 83.3k H/s,
/// 2112 → 84.0k, 4224 → 84.6k with `mma.sync`).
fn effective_batch(batch: usize, gpu: &Gpu) -> usize {
    if batch == 0 {
        16 * gpu.multiprocessors
    } else {
        batch
    }
}

/// Tensor-core kernels in order of preference.
const TENSOR_CORE_KERNELS: [CudaKernel; 2] = [CudaKernel::Wgmma, CudaKernel::Mma];

/// The CUDA backends with their availability on this machine: `cuda` (the best tensor-core
/// kernel) and each kernel by name.
pub fn list() -> Vec<BackendInfo> {
    let best = gpu(0)
        .ok()
        .and_then(|g| {
            TENSOR_CORE_KERNELS
                .into_iter()
                .find(|k| g.function(*k).is_some())
        })
        .unwrap_or(CudaKernel::Mma);
    std::iter::once(info("cuda", best, 0, 0))
        .chain(
            [CudaKernel::Wgmma, CudaKernel::Mma, CudaKernel::Dp4a]
                .into_iter()
                .map(|k| info(k.backend_name(), k, 0, 0)),
        )
        .collect()
}

/// Opens `cuda` (the best tensor-core kernel), `cuda-wgmma`, `cuda-mma` or `cuda-dp4a`.
///
/// # Errors
/// [`BackendError::Unsupported`] without a driver, NVRTC, a device, or a capable device.
pub fn open(name: &str, options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    Ok(Box::new(CudaBackend::open(name, options)?))
}

/// A CUDA Tensority backend on one GPU.
pub struct CudaBackend {
    gpu: Arc<Gpu>,
    name: String,
    kernel: CudaKernel,
    batch: usize,
    ordinal: usize,
    prepared: Mutex<Vec<Arc<CudaPrepared>>>,
}

impl CudaBackend {
    /// Opens `cuda`, `cuda-wgmma`, `cuda-mma` or `cuda-dp4a` on `options.device` with
    /// `options.batch` hashes per launch. Every kernel must first pass a self-test (two
    /// products against the CPU) on this device; `cuda` takes the first tensor-core kernel
    /// that does.
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] when this machine cannot run it.
    pub fn open(name: &str, options: &BackendOptions) -> Result<Self> {
        let candidates: Vec<CudaKernel> = match name {
            "cuda" => TENSOR_CORE_KERNELS.to_vec(),
            other => vec![
                CudaKernel::from_name(other).ok_or_else(|| BackendError::Unknown {
                    name: other.into(),
                    available: "cuda, cuda-wgmma, cuda-mma, cuda-dp4a".into(),
                })?,
            ],
        };
        let unsupported = |reason: String| BackendError::Unsupported {
            name: name.into(),
            reason,
        };
        let gpu = gpu(options.device).map_err(unsupported)?;
        let batch = effective_batch(options.batch, &gpu);
        let mut reasons = Vec::new();
        for kernel in candidates {
            if gpu.function(kernel).is_none() {
                reasons.push(format!(
                    "{} needs compute capability {}.{} (and NVRTC support); {} is sm_{}{}",
                    kernel.backend_name(),
                    kernel.min_capability().0,
                    kernel.min_capability().1,
                    gpu.name,
                    gpu.capability.0,
                    gpu.capability.1
                ));
                continue;
            }
            let backend = Self {
                gpu: Arc::clone(&gpu),
                name: name.to_string(),
                kernel,
                batch,
                ordinal: options.device,
                prepared: Mutex::new(Vec::new()),
            };
            match backend.self_test() {
                Ok(()) => return Ok(backend),
                Err(e) => reasons.push(format!(
                    "{} failed its self-test: {e}",
                    kernel.backend_name()
                )),
            }
        }
        Err(unsupported(reasons.join("; ")))
    }

    /// Two products (random operands, then all −128 against all 127) against the CPU.
    fn self_test(&self) -> Result<()> {
        let mut x = 0x2545_F491_4F6C_DD1D_u64;
        let a: Vec<u8> = (0..MATRIX_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let m: Vec<u8> = a.iter().rev().map(|b| b.wrapping_mul(31)).collect();
        for (a, m) in [(a, m), (vec![0x80; MATRIX_BYTES], vec![0x7f; MATRIX_BYTES])] {
            let want = super::cpu::CpuKernel::best().product(&a, &m)?;
            if self.single_product(&a, &m)? != want {
                return Err(device_error(
                    &self.gpu.name,
                    "self-test",
                    "product differs from the CPU",
                ));
            }
        }
        Ok(())
    }

    /// The chain kernel in use.
    pub fn kernel(&self) -> CudaKernel {
        self.kernel
    }

    /// Hashes per launch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// One product `reduce8(A · Mᵀ)` on the device, with the same kernel the chains use (one
    /// chain, one step, `a` as its initial state): the conformance suite's hook.
    ///
    /// # Errors
    /// [`BackendError::Config`] for operands that are not 64 KiB; [`BackendError::Device`].
    pub fn single_product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        if a.len() != MATRIX_BYTES || m.len() != MATRIX_BYTES {
            return Err(BackendError::Config(
                "operands must be 256×256 bytes".into(),
            ));
        }
        let dev = &self.gpu.name;
        let stream = &self.gpu.streams[0];
        let e = |what: &str| {
            let what = what.to_string();
            move |err: cudarc::driver::DriverError| device_error(dev, &what, err)
        };
        let mats = stream
            .clone_htod(&self.kernel.layout(m))
            .map_err(e("upload"))?;
        let seqs = stream.alloc_zeros::<u8>(32).map_err(e("alloc"))?;
        let init = stream.clone_htod(a).map_err(e("upload"))?;
        let mut out = stream.alloc_zeros::<u8>(MATRIX_BYTES).map_err(e("alloc"))?;
        let steps: i32 = 1;
        let func = self
            .gpu
            .function(self.kernel)
            .ok_or_else(|| device_error(dev, "kernel", "missing"))?;
        let mut launch = stream.launch_builder(func);
        launch
            .arg(&mats)
            .arg(&seqs)
            .arg(&init)
            .arg(&mut out)
            .arg(&steps);
        // SAFETY: the arguments match the kernel's signature (three device byte pointers, an
        // output pointer, an int); every buffer is as large as one chain needs.
        unsafe { launch.launch(chain_config(self.kernel, 1)) }.map_err(e("launch"))?;
        stream.clone_dtoh(&out).map_err(e("download"))
    }
}

fn chain_config(kernel: CudaKernel, chains: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (chains as u32, 1, 1),
        block_dim: (BLOCK_THREADS, 1, 1),
        shared_mem_bytes: kernel.shared_bytes(),
    }
}

impl TensorityBackend for CudaBackend {
    fn info(&self) -> BackendInfo {
        info(&self.name, self.kernel, self.ordinal, self.batch)
    }

    fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        self.single_product(a, m)
    }

    fn prepare(&self, seed: &[u8; 32]) -> Result<Arc<dyn PreparedSeed>> {
        let mut prepared = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = prepared.iter().find(|p| &p.seed == seed) {
            return Ok(Arc::clone(p) as Arc<dyn PreparedSeed>);
        }
        let matrices = shared_matrices(seed);
        let host = self.kernel.layout(matrices.as_bytes());
        debug_assert_eq!(host.len(), MATRIX_COUNT * MATRIX_BYTES);
        let mats = self.gpu.streams[0]
            .clone_htod(&host)
            .map_err(|e| device_error(&self.gpu.name, "uploading the seed matrices", e))?;
        let p = Arc::new(CudaPrepared {
            seed: *seed,
            gpu: Arc::clone(&self.gpu),
            kernel: self.kernel,
            batch: self.batch,
            mats,
            confirm: CpuConfirm::new(seed)?,
            slots: Mutex::new(None),
        });
        // Seeds change every 256 blocks; keep the current and the previous one.
        if prepared.len() >= 2 {
            prepared.remove(0);
        }
        prepared.push(Arc::clone(&p));
        Ok(p)
    }
}

/// Device buffers for one sub-batch in flight.
struct Slot {
    seqs: CudaSlice<u8>,
    chains: CudaSlice<u8>,
    folded: CudaSlice<u32>,
}

struct CudaPrepared {
    seed: [u8; 32],
    gpu: Arc<Gpu>,
    kernel: CudaKernel,
    batch: usize,
    mats: CudaSlice<u8>,
    confirm: CpuConfirm,
    /// Two slots, one per stream; the lock also serialises callers on this seed.
    slots: Mutex<Option<[Slot; 2]>>,
}

impl CudaPrepared {
    fn err(&self, what: &str) -> impl Fn(cudarc::driver::DriverError) -> BackendError + '_ {
        let what = what.to_string();
        move |e| device_error(&self.gpu.name, &what, e)
    }

    fn new_slot(&self, stream: &Arc<CudaStream>) -> Result<Slot> {
        let n = self.batch;
        Ok(Slot {
            seqs: stream
                .alloc_zeros::<u8>(n * CHAINS * 32)
                .map_err(self.err("alloc"))?,
            chains: stream
                .alloc_zeros::<u8>(n * CHAINS * MATRIX_BYTES)
                .map_err(self.err("alloc (lower --batch?)"))?,
            folded: stream
                .alloc_zeros::<u32>(n * 64)
                .map_err(self.err("alloc"))?,
        })
    }

    /// Queues one sub-batch (at most `batch` hashes) on `stream`.
    fn launch(&self, stream: &Arc<CudaStream>, slot: &mut Slot, hashes: &[[u8; 32]]) -> Result<()> {
        let n = hashes.len();
        let mut seqs = vec![0u8; n * CHAINS * 32];
        seqs.par_chunks_mut(CHAINS * 32)
            .zip(hashes.par_iter())
            .for_each(|(dst, h)| {
                for (k, chunk) in dst.chunks_exact_mut(32).enumerate() {
                    chunk.copy_from_slice(&chain_sequence(h, k));
                }
            });
        stream
            .memcpy_htod(&seqs, &mut slot.seqs)
            .map_err(self.err("upload"))?;
        let steps: i32 = super::STEPS_PER_CHAIN as i32;
        let null: u64 = 0;
        let func = self
            .gpu
            .function(self.kernel)
            .ok_or_else(|| device_error(&self.gpu.name, "kernel", "missing"))?;
        let mut chains = stream.launch_builder(func);
        chains
            .arg(&self.mats)
            .arg(&slot.seqs)
            .arg(&null)
            .arg(&mut slot.chains)
            .arg(&steps);
        // SAFETY: argument types match `tensority_chains_*` (the null init pointer selects the
        // identity start); `slot` holds `batch` ≥ n hashes' chains and sequences.
        unsafe { chains.launch(chain_config(self.kernel, n * CHAINS)) }
            .map_err(self.err("chain kernel"))?;
        let mut fold = stream.launch_builder(&self.gpu.fold);
        fold.arg(&slot.chains).arg(&mut slot.folded);
        let cfg = LaunchConfig {
            grid_dim: (n as u32, 1, 1),
            block_dim: (BLOCK_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: `tensority_fold(const u8*, u32*)`, n hashes of 4 chains in, 64 words each out.
        unsafe { fold.launch(cfg) }.map_err(self.err("fold kernel"))?;
        Ok(())
    }

    /// Waits for a sub-batch of `n` hashes and finishes it on the host.
    fn collect(&self, stream: &Arc<CudaStream>, slot: &Slot, n: usize) -> Result<Vec<[u8; 32]>> {
        let mut words = vec![0u32; n * 64];
        stream
            .memcpy_dtoh(&slot.folded.slice(..n * 64), &mut words)
            .map_err(self.err("download"))?;
        Ok(words
            .par_chunks_exact(64)
            .map(|w| {
                let mut bytes = [0u8; 256];
                for (b, x) in bytes.chunks_exact_mut(4).zip(w) {
                    b.copy_from_slice(&x.to_le_bytes());
                }
                sha3_256(&bytes)
            })
            .collect())
    }
}

impl PreparedSeed for CudaPrepared {
    fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    fn hash(&self, header_hash: &[u8; 32]) -> Result<[u8; 32]> {
        Ok(self.hash_batch(std::slice::from_ref(header_hash))?[0])
    }

    fn hash_batch(&self, header_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        let mut guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some([
                self.new_slot(&self.gpu.streams[0])?,
                self.new_slot(&self.gpu.streams[1])?,
            ]);
        }
        let Some(slots) = guard.as_mut() else {
            unreachable!("filled above")
        };
        let chunks: Vec<&[[u8; 32]]> = header_hashes.chunks(self.batch).collect();
        let mut out = Vec::with_capacity(header_hashes.len());
        // Sub-batch i runs on stream i % 2; i + 1 is queued before i is collected.
        for (i, chunk) in chunks.iter().enumerate() {
            let s = i % 2;
            self.launch(&self.gpu.streams[s], &mut slots[s], chunk)?;
            if i > 0 {
                let p = (i - 1) % 2;
                out.extend(self.collect(&self.gpu.streams[p], &slots[p], chunks[i - 1].len())?);
            }
        }
        if let Some(last) = chunks.last() {
            let p = (chunks.len() - 1) % 2;
            out.extend(self.collect(&self.gpu.streams[p], &slots[p], last.len())?);
        }
        Ok(out)
    }

    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: Range<u64>,
        target: &Target,
        stop: &AtomicBool,
    ) -> Result<SearchOutcome> {
        // Four device batches per call keep both streams busy between stop checks.
        batched_search(
            &self.gpu.name,
            4 * self.batch,
            &|h| self.hash_batch(h),
            &self.confirm,
            template,
            nonces,
            target,
            stop,
        )
    }
}

#[cfg(test)]
mod tests {
    //! Without a GPU: the operand layout, checked by emulating the warp-level algorithm of
    //! `tensority_chains_mma` (fragment layouts as the PTX ISA defines them for
    //! `mma.m16n8k32` with s8 operands) against the reference product.
    use super::*;
    use crate::tensority::{reduce8, reference};

    fn rng_bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Column that byte `e` of A-fragment register `v` of k-tile `kt` stands for (lane quad q).
    fn frag_col(kt: usize, v: usize, q: usize, e: usize) -> usize {
        32 * kt + 16 * (v >> 1) + 2 * q + (e & 1) + 8 * (e >> 1)
    }

    /// One product the way the kernel does it, from natural-layout `a` and permuted `m`.
    fn emulate(a: &[u8], permuted: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; MATRIX_BYTES];
        for warp in 0..8 {
            for mt in 0..2 {
                // Fragments of all 32 lanes: areg[lane][kt][v].
                let mut areg = [[[0u32; 4]; 8]; 32];
                for (lane, regs) in areg.iter_mut().enumerate() {
                    let (g, q) = (lane >> 2, lane & 3);
                    for (kt, kregs) in regs.iter_mut().enumerate() {
                        for (v, r) in kregs.iter_mut().enumerate() {
                            let row = 32 * warp + 16 * mt + g + 8 * (v & 1);
                            for e in 0..4 {
                                *r |= u32::from(a[row * SIDE + frag_col(kt, v, q, e)]) << (8 * e);
                            }
                        }
                    }
                }
                for nc in 0..8 {
                    let mut acc = [[[0i32; 4]; 4]; 32];
                    for p in 0..4 {
                        for i in 0..4 {
                            // B loads: lane (g, q) reads 16 bytes of permuted row nc*32+8i+g.
                            let b: Vec<[u32; 4]> = (0..32)
                                .map(|lane| {
                                    let (g, q) = (lane >> 2, lane & 3);
                                    let at = (32 * nc + 8 * i + g) * SIDE + 64 * p + 16 * q;
                                    let w = |o: usize| {
                                        u32::from_le_bytes(
                                            permuted[at + o..at + o + 4].try_into().unwrap(),
                                        )
                                    };
                                    [w(0), w(4), w(8), w(12)]
                                })
                                .collect();
                            for h in 0..2 {
                                // mma.m16n8k32: D[row][n] += Σ_k A[row][k]·B[k][n].
                                let a_el = |row: usize, k: usize| -> i32 {
                                    let (g, rest) = (row & 7, row >> 3);
                                    let (q, e, u) = ((k >> 2) & 3, k & 3, k >> 4);
                                    let v = rest + 2 * u;
                                    (areg[4 * g + q][2 * p + h][v] >> (8 * e)) as u8 as i8 as i32
                                };
                                let b_el = |k: usize, n: usize| -> i32 {
                                    let (q, e, u) = ((k >> 2) & 3, k & 3, k >> 4);
                                    (b[4 * n + q][2 * h + u] >> (8 * e)) as u8 as i8 as i32
                                };
                                for (lane, acc_lane) in acc.iter_mut().enumerate() {
                                    let (g, q) = (lane >> 2, lane & 3);
                                    for (j, d) in acc_lane[i].iter_mut().enumerate() {
                                        let row = g + 8 * (j >> 1);
                                        let n = 2 * q + (j & 1);
                                        *d +=
                                            (0..32).map(|k| a_el(row, k) * b_el(k, n)).sum::<i32>();
                                    }
                                }
                            }
                        }
                    }
                    // Epilogue: pack as the kernel does, then write through frag_col.
                    for (lane, acc_lane) in acc.iter().enumerate() {
                        let (g, q) = (lane >> 2, lane & 3);
                        let r = |i: usize, j: usize| reduce8(acc_lane[i][j]) as u8;
                        let regs = [
                            [r(0, 0), r(0, 1), r(1, 0), r(1, 1)],
                            [r(0, 2), r(0, 3), r(1, 2), r(1, 3)],
                            [r(2, 0), r(2, 1), r(3, 0), r(3, 1)],
                            [r(2, 2), r(2, 3), r(3, 2), r(3, 3)],
                        ];
                        for (v, bytes) in regs.iter().enumerate() {
                            let row = 32 * warp + 16 * mt + g + 8 * (v & 1);
                            for (e, byte) in bytes.iter().enumerate() {
                                out[row * SIDE + frag_col(nc, v, q, e)] = *byte;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// One product the way the wgmma kernel does it: warpgroup `wg` owns rows 128wg.., m64
    /// tiles `mt`, warp `wi` of the group rows 16wi.. of a tile in the mma A-fragment layout;
    /// B read through the no-swizzle K-major descriptor (LBO 128 along K, SBO 2048 along N).
    fn emulate_wgmma(a: &[u8], staged: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; MATRIX_BYTES];
        let row_of = |wg: usize, mt: usize, wi: usize, g: usize, v: usize| {
            128 * wg + 64 * mt + 16 * wi + g + 8 * (v & 1)
        };
        for wg in 0..2 {
            for mt in 0..2 {
                // A slot values of the 64-row tile as the registers hold them.
                let a_slot = |r: usize, kt: usize, s: usize| -> i32 {
                    let (wi, g) = (r >> 4, r & 7);
                    let v = ((r >> 3) & 1) + 2 * (s >> 4);
                    let (q, e) = ((s >> 2) & 3, s & 3);
                    let row = row_of(wg, mt, wi, g, v);
                    a[row * SIDE + frag_col(kt, v, q, e)] as i8 as i32
                };
                for nc in 0..8 {
                    // acc[r][n] for the 64×32 tile.
                    let mut acc = vec![[0i32; 32]; 64];
                    for kt in 0..8 {
                        let start = 4 * nc * 2048 + 2 * kt * 128;
                        for (r, acc_row) in acc.iter_mut().enumerate() {
                            for (n, d) in acc_row.iter_mut().enumerate() {
                                for s in 0..32 {
                                    let at = start
                                        + (n >> 3) * 2048
                                        + (s >> 4) * 128
                                        + (n & 7) * 16
                                        + (s & 15);
                                    *d += a_slot(r, kt, s) * staged[at] as i8 as i32;
                                }
                            }
                        }
                    }
                    // Each thread's 16 accumulators, packed as the kernel packs them.
                    for wi in 0..4 {
                        for g in 0..8 {
                            for q in 0..4 {
                                let x = |j: usize| {
                                    let (i, c) = (j >> 2, j & 3);
                                    acc[16 * wi + g + 8 * (c >> 1)][8 * i + 2 * q + (c & 1)]
                                };
                                let regs = [
                                    [x(0), x(1), x(4), x(5)],
                                    [x(2), x(3), x(6), x(7)],
                                    [x(8), x(9), x(12), x(13)],
                                    [x(10), x(11), x(14), x(15)],
                                ];
                                for (v, vals) in regs.iter().enumerate() {
                                    let row = row_of(wg, mt, wi, g, v);
                                    for (e, val) in vals.iter().enumerate() {
                                        out[row * SIDE + frag_col(nc, v, q, e)] =
                                            reduce8(*val) as u8;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn emulated_wgmma_product_matches_the_reference() {
        for case in 0..2u64 {
            let a = rng_bytes(30 + case, MATRIX_BYTES);
            let mut m = rng_bytes(40 + case, MATRIX_BYTES);
            if case == 1 {
                m.fill(0x80);
            }
            let mut want = vec![0u8; MATRIX_BYTES];
            reference::product(&a, &m, &mut want);
            assert_eq!(emulate_wgmma(&a, &wgmma_layout(&m)), want, "case {case}");
        }
    }

    #[test]
    fn wgmma_layout_holds_every_element_once() {
        // A matrix whose element value encodes its column (mod 256 per row block) survives as
        // a permutation of each row's bytes.
        let m: Vec<u8> = (0..MATRIX_BYTES).map(|i| (i % 251) as u8).collect();
        let laid = wgmma_layout(&m);
        let mut a = m.clone();
        let mut b = laid.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }

    #[test]
    fn mma_layout_is_a_permutation_of_each_row() {
        let mut seen = [false; SIDE];
        for i in 0..SIDE {
            seen[mma_column(i)] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn emulated_tensor_core_product_matches_the_reference() {
        for case in 0..3u64 {
            let mut a = rng_bytes(10 + case, MATRIX_BYTES);
            let m = rng_bytes(20 + case, MATRIX_BYTES);
            if case == 2 {
                a.fill(0x80);
            }
            let mut want = vec![0u8; MATRIX_BYTES];
            reference::product(&a, &m, &mut want);
            assert_eq!(emulate(&a, &mma_layout(&m)), want, "case {case}");
        }
    }

    #[test]
    fn arch_options_cover_supported_devices() {
        assert_eq!(arch_option((9, 0)), Some("compute_90"));
        assert_eq!(arch_option((8, 6)), Some("compute_86"));
        assert_eq!(arch_option((12, 0)), Some("compute_90"));
        assert_eq!(arch_option((5, 0)), None);
    }

    /// Catches a kernel that no longer compiles on any machine with NVRTC (a GPU is not needed;
    /// point LD_LIBRARY_PATH at a libnvrtc to run it). Without NVRTC it says so and passes.
    #[test]
    fn kernels_compile_with_nvrtc_when_present() {
        // SAFETY: only probes for the library.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            eprintln!("NVRTC not found: kernel compilation not checked here");
            return;
        }
        for arch in ["compute_61", "compute_80", "compute_90", "compute_90a"] {
            let ptx = compile_ptx_with_opts(
                SOURCE,
                CompileOptions {
                    arch: Some(arch),
                    options: vec!["-std=c++17".into()],
                    ..CompileOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{arch}: {e}"));
            let text = ptx.to_src();
            for entry in ["tensority_chains_dp4a", "tensority_fold"] {
                assert!(text.contains(entry), "{arch}: {entry} missing");
            }
            // Pre-sm_80 PTX must not contain the tensor-core path, nor anything but sm_90a the
            // wgmma one, or the module would not load there.
            assert_eq!(
                text.contains("mma.sync.aligned.m16n8k32"),
                arch != "compute_61",
                "{arch}"
            );
            assert_eq!(
                text.contains("wgmma.mma_async"),
                arch == "compute_90a",
                "{arch}"
            );
        }
    }

    #[test]
    fn opening_without_a_gpu_is_a_typed_error_not_a_panic() {
        match CudaBackend::open("cuda", &BackendOptions::default()) {
            Ok(b) => eprintln!("a CUDA device is present: {}", b.info().device),
            Err(e) => assert!(matches!(e, BackendError::Unsupported { .. }), "{e}"),
        }
        assert!(matches!(
            CudaBackend::open("cuda-nope", &BackendOptions::default()),
            Err(BackendError::Unknown { .. })
        ));
    }
}
