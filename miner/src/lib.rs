//! bystack-miner: the miner. It will mine solo against a node, in a pool over BTM stratum, or
//! on an embedded devnet by default, with per-device backends from `bystack-kernels`, honest
//! hash-rate reporting and failover. Its binary is `bystack-miner`.
//!
//! [`work`] is the contract every work source implements (channels of jobs, shares and
//! events); [`config`] holds the configuration.

pub mod config;
pub mod work;

pub use bystack_kernels as kernels;
