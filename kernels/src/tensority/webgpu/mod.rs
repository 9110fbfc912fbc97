//! The wgpu backend: Tensority as WebGPU compute shaders (Vulkan, Metal, DX12; Mesa lavapipe
//! on machines without a GPU).
//!
//! Many chains are in flight at once: the four chains of every hash of a batch. Each of the 64
//! steps is one dispatch over all of them (grid z = chain) that computes
//! `A ← reduce8(A · Mᵀ)` with reduce8 fused into the epilogue, the state packed four int8 to a
//! word in ping-pong buffers. On GPUs a step runs in 64×64 output tiles staged through
//! workgroup memory; on CPU adapters in row strips ([`Layout`]). An init dispatch sets
//! `A = I`; a last dispatch sums each hash's four chains mod 256 and FNV-folds them on the
//! device, so only 256 bytes per hash come back for the final SHA3 on the host.
//!
//! Kernels ([`Kernel`]): `wgpu` runs int8 operands with `dot4I8Packed` (or a plain
//! unpack-multiply fallback where the WGSL language feature is missing); `wgpu-f16` is the
//! exact float path: f16 operands, f32 products and sums (needs `SHADER_F16`).
//! Every nonce a search reports is recomputed on the CPU first ([`batch::CpuConfirm`]).

mod context;

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

pub use context::{DeviceMatrices, WgpuContext};

use super::batch::{self, CpuConfirm};
use super::seed::shared_matrices;
use crate::backend::{
    BackendError, BackendInfo, BackendOptions, PreparedSeed, Result, SearchOutcome,
    TensorityBackend,
};
use crate::pow::{HeaderTemplate, Target};

/// Seeds whose matrices a backend keeps on the device (the current epoch and the last one).
const RESIDENT_SEEDS: usize = 2;

/// The shader variant a [`WgpuContext`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// int8 operands, `dot4I8Packed` (WGSL language feature `packed_4x8_integer_dot_product`).
    Dot4I8Packed,
    /// int8 operands, sign-extended and multiplied as i32: the fallback for any WGSL device.
    I32,
    /// f16 operands, f32 products and accumulation (device feature `SHADER_F16`).
    F16,
}

impl Kernel {
    /// Every kernel, in the order listings show them.
    pub const ALL: [Kernel; 3] = [Kernel::Dot4I8Packed, Kernel::I32, Kernel::F16];

    /// The kernel's name: `dot4I8Packed`, `i32` or `f16`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Dot4I8Packed => "dot4I8Packed",
            Kernel::I32 => "i32",
            Kernel::F16 => "f16",
        }
    }

    /// The backend name that runs it: `wgpu` (int8 kernels) or `wgpu-f16`.
    pub fn backend_name(self) -> &'static str {
        match self {
            Kernel::Dot4I8Packed | Kernel::I32 => "wgpu",
            Kernel::F16 => "wgpu-f16",
        }
    }

    /// The int8 kernel for this build: `dot4I8Packed` when the WGSL front end offers the
    /// packed dot product (naga lowers it to `OpSDot` where the device has it, to shifts and
    /// multiplies elsewhere), the plain i32 kernel otherwise.
    pub fn best_int8() -> Kernel {
        if wgsl_has_packed_dot() {
            Kernel::Dot4I8Packed
        } else {
            Kernel::I32
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kernel::Dot4I8Packed => {
                "WebGPU compute, int8 dot4I8Packed, every chain of a batch in one dispatch per step"
            }
            Kernel::I32 => {
                "WebGPU compute, int8 unpacked to i32, every chain of a batch in one dispatch per step"
            }
            Kernel::F16 => {
                "WebGPU compute, exact float path: f16 operands, f32 products and sums, batched"
            }
        }
    }
}

/// How one chain step maps onto workgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// 64×64 output tiles per workgroup staged through workgroup memory, 8×8 outputs per
    /// invocation: the layout for GPUs.
    Tiled,
    /// Strips of 8 full rows per workgroup, 4 columns × 8 rows per invocation, A read at
    /// workgroup-uniform addresses, no workgroup memory: the layout for CPU adapters
    /// (lavapipe), where it runs about twice as fast as the tiled one.
    Strip,
}

impl Layout {
    /// The layout's name: `tiled` or `strip`.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Tiled => "tiled",
            Layout::Strip => "strip",
        }
    }

    /// The layout for an adapter of this type: strips on a CPU, tiles everywhere else.
    pub fn for_device_type(device_type: wgpu::DeviceType) -> Layout {
        match device_type {
            wgpu::DeviceType::Cpu => Layout::Strip,
            _ => Layout::Tiled,
        }
    }
}

/// Whether this build's WGSL front end accepts `dot4I8Packed` (asked once per process).
fn wgsl_has_packed_dot() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        if wgpu::Instance::enabled_backend_features().is_empty() {
            return false;
        }
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        instance
            .wgsl_language_features()
            .contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct)
    })
}

fn capabilities(adapter: &wgpu::Adapter) -> Vec<String> {
    let info = adapter.get_info();
    let mut caps = vec![
        format!("{:?}", info.backend).to_lowercase(),
        format!("{:?}", info.device_type).to_lowercase(),
    ];
    if wgsl_has_packed_dot() {
        caps.push("packed_4x8_integer_dot_product".into());
    }
    if adapter.features().contains(wgpu::Features::SHADER_F16) {
        caps.push("shader-f16".into());
    }
    caps
}

/// The `wgpu` and `wgpu-f16` entries for the first adapter (best first: discrete GPU,
/// integrated, virtual, other, CPU), with availability on this machine.
pub fn list() -> Vec<BackendInfo> {
    let adapters = context::adapters();
    [Kernel::best_int8(), Kernel::F16]
        .into_iter()
        .map(|kernel| match adapters.first() {
            Some(adapter) => BackendInfo {
                name: kernel.backend_name().to_string(),
                device: context::describe(&adapter.get_info()),
                kernel: kernel.name().to_string(),
                parallelism: context::default_batch(&adapter.get_info()),
                capabilities: capabilities(adapter),
                available: context::unsupported_reason(adapter, kernel).is_none(),
                description: kernel.description().to_string(),
            },
            None => BackendInfo {
                name: kernel.backend_name().to_string(),
                device: "no WebGPU adapter".to_string(),
                kernel: kernel.name().to_string(),
                parallelism: 0,
                capabilities: Vec::new(),
                available: false,
                description: kernel.description().to_string(),
            },
        })
        .collect()
}

/// Opens `wgpu` (the best int8 kernel) or `wgpu-f16` on adapter `options.device` with
/// `options.batch` hashes per batch (0 = 2 on a CPU adapter, 512 on a GPU).
///
/// # Errors
/// [`BackendError::Unknown`] for another name; [`BackendError::Unsupported`] when there is no
/// adapter or it lacks `SHADER_F16`; [`BackendError::Device`] when the device fails to open.
pub fn open(name: &str, options: &BackendOptions) -> Result<Box<dyn TensorityBackend>> {
    let kernel = match name {
        "wgpu" => Kernel::best_int8(),
        "wgpu-f16" => Kernel::F16,
        other => {
            return Err(BackendError::Unknown {
                name: other.to_string(),
                available: "wgpu, wgpu-f16".into(),
            })
        }
    };
    Ok(Box::new(WgpuBackend::new(kernel, options)?))
}

/// A seed resident on the device, with the CPU kernel that confirms its hits.
struct ResidentSeed {
    mats: DeviceMatrices,
    confirm: CpuConfirm,
}

/// The wgpu backend: one device context and the matrices of the last two seeds.
pub struct WgpuBackend {
    ctx: Arc<WgpuContext>,
    seeds: Mutex<Vec<Arc<ResidentSeed>>>,
}

impl WgpuBackend {
    /// Opens `kernel` on adapter `options.device` with `options.batch` hashes per batch
    /// (0 = the adapter's default). `options.threads` is not used.
    ///
    /// # Errors
    /// As [`WgpuContext::new`].
    pub fn new(kernel: Kernel, options: &BackendOptions) -> Result<Self> {
        Self::with_layout(kernel, None, options)
    }

    /// As [`WgpuBackend::new`], with the step layout forced when `layout` is given.
    ///
    /// # Errors
    /// As [`WgpuContext::new`].
    pub fn with_layout(
        kernel: Kernel,
        layout: Option<Layout>,
        options: &BackendOptions,
    ) -> Result<Self> {
        Ok(Self {
            ctx: Arc::new(WgpuContext::with_layout(
                kernel,
                layout,
                options.device,
                options.batch,
            )?),
            seeds: Mutex::new(Vec::new()),
        })
    }

    /// The device context (pipelines and buffers), e.g. for [`WgpuContext::product`].
    pub fn context(&self) -> &WgpuContext {
        &self.ctx
    }
}

impl TensorityBackend for WgpuBackend {
    fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        if a.len() != super::MATRIX_BYTES || m.len() != super::MATRIX_BYTES {
            return Err(BackendError::Config(
                "operands must be 256×256 bytes".into(),
            ));
        }
        self.ctx.product(a, m)
    }

    fn info(&self) -> BackendInfo {
        let kernel = self.ctx.kernel();
        let info = self.ctx.adapter_info();
        let mut capabilities = vec![
            format!("{:?}", info.backend).to_lowercase(),
            format!("{:?}", info.device_type).to_lowercase(),
        ];
        if kernel == Kernel::Dot4I8Packed {
            capabilities.push("packed_4x8_integer_dot_product".into());
        }
        if kernel == Kernel::F16 {
            capabilities.push("shader-f16".into());
        }
        capabilities.push(format!("layout-{}", self.ctx.layout().name()));
        BackendInfo {
            name: kernel.backend_name().to_string(),
            device: self.ctx.device_name(),
            kernel: kernel.name().to_string(),
            parallelism: self.ctx.batch(),
            capabilities,
            available: true,
            description: kernel.description().to_string(),
        }
    }

    fn prepare(&self, seed: &[u8; 32]) -> Result<Arc<dyn PreparedSeed>> {
        let mut seeds = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
        let resident = match seeds.iter().position(|s| s.mats.seed() == seed) {
            Some(i) => {
                // Most recently used last.
                let entry = seeds.remove(i);
                seeds.push(Arc::clone(&entry));
                entry
            }
            None => {
                let mats = self.ctx.upload(&shared_matrices(seed))?;
                let entry = Arc::new(ResidentSeed {
                    mats,
                    confirm: CpuConfirm::new(seed)?,
                });
                if seeds.len() >= RESIDENT_SEEDS {
                    seeds.remove(0);
                }
                seeds.push(Arc::clone(&entry));
                entry
            }
        };
        Ok(Arc::new(WgpuPrepared {
            seed: *seed,
            ctx: Arc::clone(&self.ctx),
            resident,
        }))
    }
}

struct WgpuPrepared {
    seed: [u8; 32],
    ctx: Arc<WgpuContext>,
    resident: Arc<ResidentSeed>,
}

impl PreparedSeed for WgpuPrepared {
    fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    fn hash(&self, header_hash: &[u8; 32]) -> Result<[u8; 32]> {
        let mut out = self.hash_batch(std::slice::from_ref(header_hash))?;
        out.pop().ok_or_else(|| BackendError::Device {
            device: self.ctx.device_name(),
            message: "no result for a batch of one".into(),
        })
    }

    fn hash_batch(&self, header_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        self.ctx.hash_batch(&self.resident.mats, header_hashes)
    }

    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: Range<u64>,
        target: &Target,
        stop: &AtomicBool,
    ) -> Result<SearchOutcome> {
        batch::batched_search(
            &self.ctx.device_name(),
            self.ctx.batch(),
            &|headers| self.hash_batch(headers),
            &self.resident.confirm,
            template,
            nonces,
            target,
            stop,
        )
    }
}
