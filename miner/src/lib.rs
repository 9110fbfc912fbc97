//! bystack-miner: the miner. It will mine solo against a node, in a pool over BTM stratum, or
//! on an embedded devnet by default, with per-device backends from `bystack-kernels`, honest
//! hash-rate reporting and failover. Its binary is `bystack-miner`.

pub use bystack_kernels as kernels;
