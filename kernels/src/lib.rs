//! bystack-kernels: the compute layer. Tensority (Bytom's matrix-multiplication proof of work)
//! with a scalar reference that is the spec in code and fast CPU kernels picked at run time,
//! the backend trait every device implements, and the PoW rule (compact bits, targets, work).
//!
//! No chain knowledge lives here beyond the block-header ID preimage a nonce search needs.
//! Feature flags: none yet (GPU backends will add `wgpu` and `cuda`).

pub mod backend;
pub mod hex;
pub mod pow;
pub mod tensority;

pub use backend::{list_backends, open_backend, BackendInfo, PreparedSeed, TensorityBackend};
pub use tensority::tensority;
