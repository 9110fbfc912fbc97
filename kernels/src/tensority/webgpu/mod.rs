//! The wgpu backend: Tensority as WebGPU compute shaders (Vulkan, Metal, DX12; Mesa lavapipe
//! on machines without a GPU).
//!
//! Many chains are in flight at once: the four chains of every hash of a batch. Each of the 64
//! steps is one dispatch over all of them (grid z = chain) that computes
//! `A ← reduce8(A · Mᵀ)` with reduce8 fused into the epilogue, the state packed four int8 to a
//! word in ping-pong buffers. On GPUs a step runs in output tiles staged through workgroup
//! memory, in one of three variants ([`TileShape`], chosen with `BYSTACK_WGPU_TILE`); on CPU
//! adapters in row strips ([`Layout`]). An init dispatch sets `A = I`; a last dispatch sums
//! each hash's four chains mod 256 and FNV-folds them on the device, so only 256 bytes per
//! hash come back for the final SHA3 on the host.
//!
//! Kernels ([`Kernel`]): `wgpu` runs int8 operands with `dot4I8Packed` (or a plain
//! unpack-multiply fallback where the WGSL language feature is missing); `wgpu-f16` is the
//! exact float path: f16 operands, f32 products and sums (needs `SHADER_F16`).
//! Every nonce a search reports is recomputed on the CPU first ([`batch::CpuConfirm`]).

mod context;
mod tiled;

use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

pub use context::{DeviceMatrices, WgpuContext, CHECKED_ENV};

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
    /// Output tiles per workgroup staged through workgroup memory, 8×8 outputs per
    /// invocation, in the variant given: the layout for GPUs.
    Tiled(Tile),
    /// Strips of 8 full rows per workgroup, 4 columns × 8 rows per invocation, A read at
    /// workgroup-uniform addresses, no workgroup memory: the layout for CPU adapters
    /// (lavapipe), where it runs about twice as fast as the tiled one.
    Strip,
}

impl Layout {
    /// The layout's name: `strip`, or `tiled-` and the variant (`tiled-b`; `tiled-b-single`
    /// when single-buffered).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Strip => "strip",
            Layout::Tiled(tile) => tile.name(),
        }
    }

    /// The layout for an adapter of this type: strips on a CPU, the default tiles
    /// ([`Tile::default`]) everywhere else. [`WgpuContext::new`] also reads
    /// `BYSTACK_WGPU_TILE` ([`Tile::from_env`]).
    pub fn for_device_type(device_type: wgpu::DeviceType) -> Layout {
        match device_type {
            wgpu::DeviceType::Cpu => Layout::Strip,
            _ => Layout::Tiled(Tile::default()),
        }
    }
}

/// The environment variable that picks the tiled variant on GPUs: `a`, `b` or `c`
/// ([`TileShape`]); unset or empty for the default ([`Tile::default`]). CPU adapters keep
/// strips whatever it says, and a layout passed to [`WgpuBackend::with_layout`] wins over it.
pub const TILE_ENV: &str = "BYSTACK_WGPU_TILE";

/// The tiled step variants. Every one gives each invocation an 8×8 block of outputs (64
/// accumulators, with the 8 A and 8 M operands of one K unit read as four 16-byte
/// workgroup-memory loads), keeps the workgroup tiles K-major with an XOR swizzle (no bank
/// conflicts, no padding), and loads the next K chunk from global memory into registers in
/// 16-byte loads while the current one is multiplied. They differ in how many invocations
/// share a tile, which trades registers and workgroup memory per SM against the number of
/// times each operand is read from L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileShape {
    /// `a`: 64×64 outputs, 64 invocations (the shape of the earlier single tiled kernel).
    /// K chunks of 32 int8 values (4 KiB of tiles, 8 KiB double-buffered) or of 16 f32 values
    /// (8 KiB, 16 KiB). Small workgroups: fine-grained occupancy whatever the register count;
    /// each operand is read from L2 4 times per step.
    A,
    /// `b` (the default): 128×128 outputs, 256 invocations. K chunks of 64 int8 values or 16
    /// f32 values: 16 KiB of tiles, 32 KiB double-buffered. Each operand is read twice per
    /// step (half the L2 traffic of `a`); two workgroups per SM need at most 128 registers
    /// per invocation.
    B,
    /// `c`: 128 rows × 64 columns, 128 invocations. K chunks of 64 int8 values or 16 f32
    /// values: 12 KiB of tiles, 24 KiB double-buffered. Between `a` and `b`: A is read 4
    /// times per step, M twice.
    C,
}

impl TileShape {
    /// Every variant, in the order listings show them.
    pub const ALL: [TileShape; 3] = [TileShape::A, TileShape::B, TileShape::C];

    /// The variant's name in `BYSTACK_WGPU_TILE`: `a`, `b` or `c`.
    pub fn name(self) -> &'static str {
        match self {
            TileShape::A => "a",
            TileShape::B => "b",
            TileShape::C => "c",
        }
    }

    /// The variant called `name` (`a`, `b` or `c`, any case).
    pub fn from_name(name: &str) -> Option<TileShape> {
        TileShape::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// One tiled step variant as built: its shape, and whether each operand has two workgroup
/// buffers (the next K chunk is stored into one while the other is read: one barrier per
/// chunk) or one (two barriers per chunk, half the workgroup memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    /// Outputs and invocations per workgroup.
    pub shape: TileShape,
    /// Two workgroup buffers per operand. A device whose workgroup storage cannot hold them
    /// gets one instead ([`WgpuContext::layout`] reports what was built).
    pub double_buffer: bool,
}

impl Default for Tile {
    /// `b`, double-buffered: the best f16 variant on an H200 (see [`Tile::default_for`]).
    fn default() -> Self {
        Tile {
            shape: TileShape::B,
            double_buffer: true,
        }
    }
}

impl Tile {
    /// `tiled-a` … `tiled-c`, with `-single` when single-buffered.
    pub fn name(self) -> &'static str {
        match (self.shape, self.double_buffer) {
            (TileShape::A, true) => "tiled-a",
            (TileShape::B, true) => "tiled-b",
            (TileShape::C, true) => "tiled-c",
            (TileShape::A, false) => "tiled-a-single",
            (TileShape::B, false) => "tiled-b-single",
            (TileShape::C, false) => "tiled-c-single",
        }
    }

    /// The measured best variant for `kernel` on a discrete GPU. On an NVIDIA H200 over Vulkan
    /// (batch 2048, `bench/README.md`): int8 `a` 7,053 H/s, `c` 6,890, `b` 6,610; f16 `b`
    /// 3,699, `c` 3,579, `a` 3,076.
    pub fn default_for(kernel: Kernel) -> Tile {
        Tile {
            shape: match kernel {
                Kernel::F16 => TileShape::B,
                Kernel::Dot4I8Packed | Kernel::I32 => TileShape::A,
            },
            double_buffer: true,
        }
    }

    /// The variant `BYSTACK_WGPU_TILE` asks for (double-buffered where the device allows), or
    /// [`Tile::default_for`] `kernel` when it is unset or empty.
    ///
    /// # Errors
    /// [`BackendError::Config`] for any other value.
    pub fn from_env(kernel: Kernel) -> Result<Tile> {
        let value = std::env::var(TILE_ENV).unwrap_or_default();
        if value.trim().is_empty() {
            return Ok(Tile::default_for(kernel));
        }
        let shape = TileShape::from_name(&value).ok_or_else(|| {
            BackendError::Config(format!(
                "{TILE_ENV}={value:?}: expected one of a, b, c (tiled step variants)"
            ))
        })?;
        Ok(Tile {
            shape,
            double_buffer: true,
        })
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
/// `options.batch` hashes per batch (0 = 2 on a CPU adapter, 2048 on a GPU).
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
        if matches!(self.ctx.layout(), Layout::Tiled(_)) && !self.ctx.step_checked() {
            capabilities.push("step-runtime-checks-off".into());
        }
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
