//! bystack-engine: Bytom 1.x consensus, byte-compatible with the real chain. It will hold the
//! encodings, entries and IDs, merkle roots, difficulty and seed epochs, the VM, the staged
//! block and transaction validation, and PSWV (parallel sliding-window validation).
//!
//! It depends on `bystack-kernels` for the proof of work and never on the node or the miner.
//! The PoW formulas it needs (compact bits, retarget, header ID) already live in
//! [`bystack_kernels::pow`]; this crate adds the chain context around them.

pub mod consensus;

pub use bystack_kernels::pow;
