//! bystack-kernels: the compute layer. Tensority (Bytom's matrix-multiplication proof of work)
//! with a scalar reference that is the spec in code and fast CPU kernels picked at run time,
//! the backend trait every device implements, and the PoW rule (compact bits, targets, work).
//!
//! No chain knowledge lives here beyond the block-header ID preimage a nonce search needs.
//! Feature flags (both on by default): `wgpu` (WebGPU compute, Mesa lavapipe on CPU-only
//! machines) and `cuda` (cudarc with the driver and NVRTC loaded at run time).

pub mod backend;
pub mod hex;
pub mod pow;
pub mod tensority;

pub use backend::{
    list_backends, open_backend, open_backend_with, BackendInfo, BackendOptions, PreparedSeed,
    TensorityBackend,
};
pub use tensority::tensority;
