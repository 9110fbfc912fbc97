//! The device side of the wgpu backend: adapter selection, the compiled pipelines, the
//! persistent batch buffers, and one batched run (identity init, 64 chain steps, fold, read).
//!
//! Everything is built once per [`WgpuContext`]; a batch only writes its matrix sequences,
//! records one compute pass and maps 256 bytes per hash back.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::tiled::TiledPlan;
use super::{Kernel, Layout, Tile};
use crate::backend::{BackendError, Result};
use crate::tensority::seed::MatrixSet;
use crate::tensority::{
    batch, sha3_256, CHAINS, MATRIX_BYTES, MATRIX_COUNT, SIDE, STEPS_PER_CHAIN,
};

/// Words in one row of a state or matrix packed four int8 to a word.
pub(super) const ROW_WORDS: u32 = (SIDE / 4) as u32;
/// Words in one packed 256×256 int8 matrix (a chain state or a seed matrix).
pub(super) const MATRIX_WORDS: u32 = (MATRIX_BYTES / 4) as u32;
/// Bytes of one packed chain state.
const STATE_BYTES: u64 = MATRIX_BYTES as u64;
/// Rows per workgroup of the strip layout (the shader keeps one accumulator per row).
const STRIP_ROWS: u32 = 8;
/// Invocations of one identity-init workgroup.
const INIT_WG_SIZE: u32 = 256;
/// Entries of one chain's matrix sequence (walked twice).
pub(super) const SEQ_LEN: u32 = 32;
/// Bytes of one folded row read back per hash (64 words, hashed with SHA3 on the host).
const FOLDED_BYTES: u64 = 4 * ROW_WORDS as u64;
/// Bytes of the per-step uniform (`StepParams`).
const STEP_PARAMS_BYTES: u64 = 16;
/// How long a mapped read may take to report after the device went idle.
const MAP_TIMEOUT: Duration = Duration::from_secs(30);
/// Set (to anything but `0` or empty) to compile the tiled step with wgpu's runtime checks
/// (index clamps, loop counters), as every other module is: for measuring what they cost.
pub const CHECKED_ENV: &str = "BYSTACK_WGPU_CHECKED";

const COMMON_WGSL: &str = include_str!("shaders/common.wgsl");
const INIT_WGSL: &str = include_str!("shaders/init.wgsl");
const FOLD_WGSL: &str = include_str!("shaders/fold.wgsl");
const STEP_STRIP_WGSL: &str = include_str!("shaders/step_strip.wgsl");
const KERNEL_DOT4_WGSL: &str = include_str!("shaders/kernel_dot4.wgsl");
const KERNEL_I32_WGSL: &str = include_str!("shaders/kernel_i32.wgsl");
const KERNEL_F16_WGSL: &str = include_str!("shaders/kernel_f16.wgsl");

impl Kernel {
    /// The WGSL module of everything but the tiled step: directives, the host constants, the
    /// shared bindings and helpers, identity init, fold, and the strip step.
    fn shader_source(self) -> String {
        let (directives, prelude) = match self {
            Kernel::Dot4I8Packed => (
                "requires packed_4x8_integer_dot_product;\n",
                KERNEL_DOT4_WGSL,
            ),
            Kernel::I32 => ("", KERNEL_I32_WGSL),
            Kernel::F16 => ("enable f16;\n", KERNEL_F16_WGSL),
        };
        format!(
            "{directives}\
             const SIDE: u32 = {SIDE}u;\n\
             const ROW_WORDS: u32 = {ROW_WORDS}u;\n\
             const MATRIX_WORDS: u32 = {MATRIX_WORDS}u;\n\
             const SEQ_LEN: u32 = {SEQ_LEN}u;\n\
             const INIT_WG_SIZE: u32 = {INIT_WG_SIZE}u;\n\
             const STRIP_ROWS: u32 = {STRIP_ROWS}u;\n\
             {COMMON_WGSL}\n{INIT_WGSL}\n{FOLD_WGSL}\n{prelude}\n{STEP_STRIP_WGSL}"
        )
    }

    /// Device features this kernel needs.
    fn required_features(self) -> wgpu::Features {
        match self {
            Kernel::F16 => wgpu::Features::SHADER_F16,
            Kernel::Dot4I8Packed | Kernel::I32 => wgpu::Features::empty(),
        }
    }

    /// Bytes of one seed matrix on the device.
    fn matrix_bytes(self) -> u64 {
        match self {
            Kernel::Dot4I8Packed | Kernel::I32 => MATRIX_BYTES as u64,
            Kernel::F16 => 2 * MATRIX_BYTES as u64,
        }
    }
}

/// Errors the device reports out of band (validation, out-of-memory, loss), collected so that
/// they come back from the next call as [`BackendError::Device`] instead of a panic.
#[derive(Default)]
struct ErrorSink {
    first: Mutex<Option<String>>,
    lost: Mutex<Option<String>>,
}

impl ErrorSink {
    fn record(&self, message: String) {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(message);
    }

    fn record_lost(&self, message: String) {
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        lost.get_or_insert(message);
    }

    /// The first error since the last call (a lost device stays reported).
    fn take(&self) -> Option<String> {
        if let Some(lost) = self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Some(format!("device lost: {lost}"));
        }
        self.first.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A seed's 256 matrices resident on the device, with the bind group that exposes them.
pub struct DeviceMatrices {
    seed: [u8; 32],
    _buffer: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

impl DeviceMatrices {
    /// The seed they come from.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }
}

/// The buffers one batch works in, sized for the context's batch; reused by every batch.
struct Workspace {
    /// Ping-pong chain states: step t reads `states[t % 2]` and writes the other.
    states: [wgpu::Buffer; 2],
    seqs: wgpu::Buffer,
    folded: wgpu::Buffer,
    /// Mapped for reading: folded rows of a batch, or one state for [`WgpuContext::product`].
    readback: wgpu::Buffer,
    /// `bind_groups[d]` reads `states[d]` and writes `states[1 - d]`.
    bind_groups: [wgpu::BindGroup; 2],
}

/// An opened wgpu device with the Tensority pipelines of one [`Kernel`] compiled, and the
/// persistent buffers for batches of up to [`WgpuContext::batch`] hashes.
pub struct WgpuContext {
    kernel: Kernel,
    layout: Layout,
    /// Step workgroups per chain in x and y.
    grid: (u32, u32),
    /// Whether the step module has wgpu's runtime checks (see [`CHECKED_ENV`]).
    step_checked: bool,
    adapter: wgpu::AdapterInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    errors: Arc<ErrorSink>,
    matrices_layout: wgpu::BindGroupLayout,
    init: wgpu::ComputePipeline,
    step: wgpu::ComputePipeline,
    fold: wgpu::ComputePipeline,
    /// Stride between the per-step uniforms (the device's dynamic-offset alignment).
    step_stride: u32,
    batch: usize,
    workspace: Mutex<Workspace>,
}

/// The adapters of this machine, best first (discrete, integrated, virtual, other, CPU).
pub(super) fn adapters() -> Vec<wgpu::Adapter> {
    if wgpu::Instance::enabled_backend_features().is_empty() {
        return Vec::new();
    }
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let mut adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.sort_by_key(|a| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    });
    adapters
}

/// How an adapter is shown: its name and graphics API.
pub(super) fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?})", info.name, info.backend)
}

/// Why `kernel` cannot run on `adapter`, if it cannot.
pub(super) fn unsupported_reason(adapter: &wgpu::Adapter, kernel: Kernel) -> Option<String> {
    let missing = kernel.required_features() - adapter.features();
    (!missing.is_empty()).then(|| {
        format!(
            "adapter {} lacks {missing:?}",
            describe(&adapter.get_info())
        )
    })
}

/// The default hashes per batch: a CPU adapter (lavapipe) gains nothing from more than a
/// couple in flight; a GPU needs many chains to fill its cores (on an H200 the tiled step
/// runs 3–4 % faster at 2048 hashes than at 512, for every tile variant).
pub(super) fn default_batch(info: &wgpu::AdapterInfo) -> usize {
    match info.device_type {
        wgpu::DeviceType::Cpu => 2,
        _ => 2048,
    }
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl WgpuContext {
    /// Opens adapter `device_index` (best first, see [`super::list`]) for `kernel` with room
    /// for `batch` hashes per run (0 = the adapter's default), in the layout that suits the
    /// adapter ([`Layout::for_device_type`]); on a GPU in the tiled variant that
    /// `BYSTACK_WGPU_TILE` names ([`Tile::from_env`]).
    ///
    /// # Errors
    /// [`BackendError::Unsupported`] when there is no such adapter or it lacks a feature or a
    /// limit the kernel needs; [`BackendError::Config`] for an unknown `BYSTACK_WGPU_TILE`;
    /// [`BackendError::Device`] when the device or the pipelines cannot be made.
    pub fn new(kernel: Kernel, device_index: usize, batch: usize) -> Result<Self> {
        Self::with_layout(kernel, None, device_index, batch)
    }

    /// As [`WgpuContext::new`], with the step layout forced when `layout` is given (tests run
    /// every layout and tiled variant on one adapter; `BYSTACK_WGPU_TILE` is not read then).
    /// A double-buffered tile the device's workgroup storage cannot hold is built
    /// single-buffered ([`WgpuContext::layout`] says which).
    ///
    /// # Errors
    /// As [`WgpuContext::new`].
    pub fn with_layout(
        kernel: Kernel,
        layout: Option<Layout>,
        device_index: usize,
        batch: usize,
    ) -> Result<Self> {
        let unsupported = |reason: String| BackendError::Unsupported {
            name: kernel.backend_name().to_string(),
            reason,
        };
        let adapters = adapters();
        if adapters.is_empty() {
            return Err(unsupported(
                "no WebGPU adapter found (WGPU_BACKEND selects the graphics APIs and \
                 VK_ICD_FILENAMES a Vulkan driver; without a GPU install Mesa lavapipe: \
                 mesa-vulkan-drivers libvulkan1)"
                    .into(),
            ));
        }
        let count = adapters.len();
        let adapter = adapters.into_iter().nth(device_index).ok_or_else(|| {
            unsupported(format!(
                "no adapter {device_index}: this machine has {count}"
            ))
        })?;
        if let Some(reason) = unsupported_reason(&adapter, kernel) {
            return Err(unsupported(reason));
        }
        let info = adapter.get_info();
        let layout = match layout {
            Some(layout) => layout,
            None => match Layout::for_device_type(info.device_type) {
                Layout::Tiled(_) => Layout::Tiled(Tile::from_env(kernel)?),
                Layout::Strip => Layout::Strip,
            },
        };
        let device_name = describe(&info);
        let device_err = |message: String| BackendError::Device {
            device: device_name.clone(),
            message,
        };

        let limits = adapter.limits();
        let plan = match layout {
            Layout::Strip => None,
            Layout::Tiled(tile) => {
                let mut plan = TiledPlan::new(kernel, tile);
                if plan.workgroup_bytes() > limits.max_compute_workgroup_storage_size {
                    plan = plan.single_buffered();
                }
                if plan.workgroup_bytes() > limits.max_compute_workgroup_storage_size
                    || plan.workgroup_size() > limits.max_compute_invocations_per_workgroup
                    || plan.workgroup_size() > limits.max_compute_workgroup_size_x
                {
                    return Err(unsupported(format!(
                        "the {} step needs {} bytes of workgroup storage and {} invocations \
                         per workgroup; the adapter offers {} and {}",
                        tile.name(),
                        plan.workgroup_bytes(),
                        plan.workgroup_size(),
                        limits.max_compute_workgroup_storage_size,
                        limits.max_compute_invocations_per_workgroup
                    )));
                }
                Some(plan)
            }
        };
        let layout = match plan {
            Some(plan) => Layout::Tiled(plan.tile),
            None => Layout::Strip,
        };
        let grid = match plan {
            Some(plan) => plan.grid(),
            None => (SIDE as u32 / STRIP_ROWS, 1),
        };
        // The strip step is built from the checked module in any case.
        let step_checked =
            plan.is_none() || std::env::var(CHECKED_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tensority"),
            required_features: kernel.required_features(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| device_err(format!("request_device: {e}")))?;

        let errors = Arc::new(ErrorSink::default());
        {
            let sink = Arc::clone(&errors);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.record(e.to_string())));
            let sink = Arc::clone(&errors);
            device.set_device_lost_callback(move |reason, message| {
                if reason != wgpu::DeviceLostReason::Destroyed {
                    sink.record_lost(format!("{reason:?}: {message}"));
                }
            });
        }

        // A batch is bounded by the grid (z = chain) and by the largest storage binding.
        let max_by_grid = limits.max_compute_workgroups_per_dimension as usize / CHAINS;
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let max_by_memory = (max_binding / (CHAINS as u64 * STATE_BYTES)) as usize;
        let batch = if batch == 0 {
            default_batch(&info)
        } else {
            batch
        };
        let batch = batch.min(max_by_grid).min(max_by_memory).max(1);
        if limits.max_storage_buffer_binding_size < MATRIX_COUNT as u64 * kernel.matrix_bytes() {
            return Err(unsupported(format!(
                "storage bindings of {} bytes cannot hold the {} byte matrix set",
                limits.max_storage_buffer_binding_size,
                MATRIX_COUNT as u64 * kernel.matrix_bytes()
            )));
        }

        let work_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tensority work"),
            entries: &[
                storage_entry(0, true),
                storage_entry(1, false),
                storage_entry(2, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(STEP_PARAMS_BYTES),
                    },
                    count: None,
                },
                storage_entry(4, false),
            ],
        });
        let matrices_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("tensority matrices"),
            entries: &[storage_entry(0, true)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("tensority"),
            bind_group_layouts: &[Some(&work_layout), Some(&matrices_layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel.name()),
            source: wgpu::ShaderSource::Wgsl(kernel.shader_source().into()),
        });
        let pipeline = |entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    // Every workgroup variable is written before it is read.
                    zero_initialize_workgroup_memory: false,
                    ..Default::default()
                },
                cache: None,
            })
        };
        let init = pipeline("init_identity");
        let fold = pipeline("fold_rows");
        let step = match plan {
            None => pipeline("chain_step_strip"),
            Some(plan) => {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(plan.tile.name()),
                    source: wgpu::ShaderSource::Wgsl(plan.shader_source().into()),
                };
                let tiled = if step_checked {
                    device.create_shader_module(desc)
                } else {
                    // SAFETY: the runtime checks guard against out-of-range indices and endless
                    // loops. Every loop of the tiled module has a constant trip count, and every
                    // index is in range by construction: workgroup-memory indices combine
                    // `local_invocation_index` (< WG_SIZE) with constants, and the plan's unit
                    // tests check that those stay inside the tiles; storage indices combine the
                    // workgroup id (x, y < the tile grid, z < the chains the state buffers
                    // hold, as `run_chains` and `product` dispatch) with a matrix index below
                    // 256 (masked to a byte) into a set of 256 matrices, or index 0 into the
                    // single matrix `product` binds.
                    unsafe {
                        device.create_shader_module_trusted(
                            desc,
                            wgpu::ShaderRuntimeChecks::unchecked(),
                        )
                    }
                };
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("chain_step"),
                    layout: Some(&pipeline_layout),
                    module: &tiled,
                    entry_point: Some("chain_step"),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        // Every workgroup variable is written before it is read.
                        zero_initialize_workgroup_memory: false,
                        ..Default::default()
                    },
                    cache: None,
                })
            }
        };

        let step_stride = limits
            .min_uniform_buffer_offset_alignment
            .max(STEP_PARAMS_BYTES as u32);
        let mut params = vec![0u8; STEPS_PER_CHAIN * step_stride as usize];
        for (t, entry) in params.chunks_exact_mut(step_stride as usize).enumerate() {
            entry[..4].copy_from_slice(&(t as u32).to_le_bytes());
        }
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let chains = (CHAINS * batch) as u64;
        let state_usage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC;
        let states = [
            buffer("tensority state 0", chains * STATE_BYTES, state_usage),
            buffer("tensority state 1", chains * STATE_BYTES, state_usage),
        ];
        let seqs = buffer(
            "tensority sequences",
            chains * u64::from(SEQ_LEN),
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        let step_params = buffer(
            "tensority step params",
            params.len() as u64,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        );
        queue.write_buffer(&step_params, 0, &params);
        let folded = buffer(
            "tensority folded rows",
            batch as u64 * FOLDED_BYTES,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        );
        let readback = buffer(
            "tensority readback",
            (batch as u64 * FOLDED_BYTES).max(STATE_BYTES),
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let work_group = |d: usize| {
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(if d == 0 {
                    "tensority work 0→1"
                } else {
                    "tensority work 1→0"
                }),
                layout: &work_layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: states[d].as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: states[1 - d].as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: seqs.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &step_params,
                            offset: 0,
                            size: wgpu::BufferSize::new(STEP_PARAMS_BYTES),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: folded.as_entire_binding(),
                    },
                ],
            })
        };
        let bind_groups = [work_group(0), work_group(1)];
        // Shader or pipeline errors surface here, not as a panic later.
        if let Some(message) = errors.take() {
            return Err(device_err(format!(
                "building the {} pipelines: {message}",
                kernel.name()
            )));
        }
        Ok(Self {
            kernel,
            layout,
            grid,
            step_checked,
            adapter: info,
            device,
            queue,
            errors,
            matrices_layout,
            init,
            step,
            fold,
            step_stride,
            batch,
            workspace: Mutex::new(Workspace {
                states,
                seqs,
                folded,
                readback,
                bind_groups,
            }),
        })
    }

    /// The kernel the pipelines run.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The step layout, as built (a tiled variant's `double_buffer` is false where the
    /// device could not hold two buffers).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Whether the step pipeline was compiled with wgpu's runtime checks: always for strips;
    /// for tiles only when `BYSTACK_WGPU_CHECKED` asks ([`CHECKED_ENV`]).
    pub fn step_checked(&self) -> bool {
        self.step_checked
    }

    /// The adapter: name, API and type.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.adapter
    }

    /// The device as shown in errors and listings.
    pub fn device_name(&self) -> String {
        describe(&self.adapter)
    }

    /// Hashes per run (the size the buffers were made for).
    pub fn batch(&self) -> usize {
        self.batch
    }

    fn device_error(&self, message: String) -> BackendError {
        BackendError::Device {
            device: self.device_name(),
            message,
        }
    }

    /// Any error the device reported since the last check.
    fn check(&self, what: &str) -> Result<()> {
        match self.errors.take() {
            Some(message) => Err(self.device_error(format!("{what}: {message}"))),
            None => Ok(()),
        }
    }

    fn lock_workspace(&self) -> MutexGuard<'_, Workspace> {
        self.workspace.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Uploads a matrix set in the kernel's operand format (packed int8, or f16).
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device cannot hold it.
    pub fn upload(&self, mats: &MatrixSet) -> Result<DeviceMatrices> {
        self.upload_bytes(*mats.seed(), mats.as_bytes(), "tensority matrix set")
    }

    fn upload_bytes(&self, seed: [u8; 32], int8: &[u8], label: &str) -> Result<DeviceMatrices> {
        let data = match self.kernel {
            Kernel::Dot4I8Packed | Kernel::I32 => std::borrow::Cow::Borrowed(int8),
            Kernel::F16 => std::borrow::Cow::Owned(int8_to_f16_bytes(int8)),
        };
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: data.len() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.check("allocating the matrix buffer")?;
        self.queue.write_buffer(&buffer, 0, &data);
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &self.matrices_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: buffer.as_entire_binding(),
            }],
        });
        self.check("uploading the matrix set")?;
        Ok(DeviceMatrices {
            seed,
            _buffer: buffer,
            bind_group,
        })
    }

    /// Tensority of every header hash under the matrices `mats`, `batch` at a time.
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device fails.
    pub fn hash_batch(
        &self,
        mats: &DeviceMatrices,
        header_hashes: &[[u8; 32]],
    ) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::with_capacity(header_hashes.len());
        for chunk in header_hashes.chunks(self.batch) {
            let folded = self.run_chains(mats, chunk)?;
            out.extend(folded.chunks_exact(FOLDED_BYTES as usize).map(sha3_256));
        }
        Ok(out)
    }

    /// Runs the four chains of each header hash (at most `batch`) and returns their folded
    /// rows, 256 bytes per hash, serialised little-endian.
    fn run_chains(&self, mats: &DeviceMatrices, header_hashes: &[[u8; 32]]) -> Result<Vec<u8>> {
        let hashes = header_hashes.len();
        debug_assert!(hashes <= self.batch);
        if hashes == 0 {
            return Ok(Vec::new());
        }
        let chains = (CHAINS * hashes) as u32;
        let ws = self.lock_workspace();
        self.queue
            .write_buffer(&ws.seqs, 0, &batch::sequences(header_hashes));

        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("tensority batch"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tensority chains"),
                timestamp_writes: None,
            });
            pass.set_bind_group(1, &mats.bind_group, &[]);
            // Identity into states[0]: bind group 1 writes states[0].
            pass.set_pipeline(&self.init);
            pass.set_bind_group(0, &ws.bind_groups[1], &[0]);
            pass.dispatch_workgroups(MATRIX_WORDS / INIT_WG_SIZE, chains, 1);
            pass.set_pipeline(&self.step);
            let grid = self.grid;
            for t in 0..STEPS_PER_CHAIN {
                pass.set_bind_group(0, &ws.bind_groups[t % 2], &[t as u32 * self.step_stride]);
                pass.dispatch_workgroups(grid.0, grid.1, chains);
            }
            // 64 steps end in states[0], which bind group 0 reads.
            pass.set_pipeline(&self.fold);
            pass.set_bind_group(0, &ws.bind_groups[0], &[0]);
            pass.dispatch_workgroups(hashes as u32, 1, 1);
        }
        let bytes = hashes as u64 * FOLDED_BYTES;
        encoder.copy_buffer_to_buffer(&ws.folded, 0, &ws.readback, 0, bytes);
        self.queue.submit([encoder.finish()]);
        self.read_back(&ws.readback, bytes)
    }

    /// One chain step on the device: `reduce8(a · mᵀ)` for row-major int8 operands, through
    /// the same pipeline, layouts and buffers a hash uses. The test hook of the conformance
    /// suite.
    ///
    /// # Errors
    /// [`BackendError::Device`] when the device fails.
    ///
    /// # Panics
    /// If an operand is not 65,536 bytes long.
    pub fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        assert!(
            a.len() == MATRIX_BYTES && m.len() == MATRIX_BYTES,
            "64 KiB operands"
        );
        let mats = self.upload_bytes([0; 32], m, "tensority product operand")?;
        let ws = self.lock_workspace();
        // Chain 0 multiplies by matrix 0 at step 0.
        self.queue
            .write_buffer(&ws.seqs, 0, &[0u8; SEQ_LEN as usize]);
        self.queue.write_buffer(&ws.states[0], 0, a);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("tensority product"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tensority product"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.step);
            pass.set_bind_group(0, &ws.bind_groups[0], &[0]);
            pass.set_bind_group(1, &mats.bind_group, &[]);
            let grid = self.grid;
            pass.dispatch_workgroups(grid.0, grid.1, 1);
        }
        encoder.copy_buffer_to_buffer(&ws.states[1], 0, &ws.readback, 0, STATE_BYTES);
        self.queue.submit([encoder.finish()]);
        self.read_back(&ws.readback, STATE_BYTES)
    }

    /// Waits for the last submission and copies the first `bytes` of `readback` out.
    fn read_back(&self, readback: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        readback.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            // The receiver waits below; if it gave up, nobody needs the answer.
            let _ = tx.send(r);
        });
        let polled = self.device.poll(wgpu::PollType::wait_indefinitely());
        self.check("running the batch")?;
        polled.map_err(|e| self.device_error(format!("waiting for the batch: {e}")))?;
        match rx.recv_timeout(MAP_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.device_error(format!("mapping the results: {e}"))),
            Err(_) => return Err(self.device_error("the results were never mapped".into())),
        }
        let out = readback
            .get_mapped_range(0..bytes)
            .map(|view| view.to_vec())
            .map_err(|e| self.device_error(format!("reading the results: {e}")));
        readback.unmap();
        out
    }
}

/// Converts two's-complement int8 bytes to IEEE binary16 bit patterns (little-endian bytes).
/// Every int8 value is exact in f16: |v| ≤ 128 needs at most 8 significant bits of 11.
fn int8_to_f16_bytes(int8: &[u8]) -> Vec<u8> {
    let table: Vec<[u8; 2]> = (0..=255u8)
        .map(|b| f16_bits(b as i8).to_le_bytes())
        .collect();
    let mut out = Vec::with_capacity(2 * int8.len());
    for &b in int8 {
        out.extend_from_slice(&table[usize::from(b)]);
    }
    out
}

/// The binary16 encoding of a small integer (exact for |v| ≤ 2048).
fn f16_bits(v: i8) -> u16 {
    if v == 0 {
        return 0;
    }
    let sign = if v < 0 { 0x8000 } else { 0 };
    let mag = u16::from(v.unsigned_abs());
    let exp = 15 - mag.leading_zeros() as u16; // floor(log2(mag)), 0..=7
    let mantissa = (mag << (10 - exp)) & 0x3ff;
    sign | ((exp + 15) << 10) | mantissa
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_bits_of_int8_values_are_exact() {
        assert_eq!(f16_bits(0), 0x0000);
        assert_eq!(f16_bits(1), 0x3c00);
        assert_eq!(f16_bits(-1), 0xbc00);
        assert_eq!(f16_bits(2), 0x4000);
        assert_eq!(f16_bits(3), 0x4200);
        assert_eq!(f16_bits(127), 0x57f0);
        assert_eq!(f16_bits(-128), 0xd800);
        // Decode every value back and compare.
        for v in i8::MIN..=i8::MAX {
            let bits = f16_bits(v);
            let exp = i32::from((bits >> 10) & 0x1f);
            let frac = f64::from(bits & 0x3ff);
            let mag = if exp == 0 {
                0.0
            } else {
                (1.0 + frac / 1024.0) * 2f64.powi(exp - 15)
            };
            let value = if bits & 0x8000 != 0 { -mag } else { mag };
            assert_eq!(value, f64::from(v), "{v}");
        }
    }

    #[test]
    fn shader_constants_agree_with_the_grid() {
        assert_eq!(MATRIX_WORDS % INIT_WG_SIZE, 0);
        assert_eq!(SIDE as u32 % STRIP_ROWS, 0);
    }
}
