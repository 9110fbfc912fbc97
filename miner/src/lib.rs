//! bystack-miner: the miner. It mines on an embedded devnet node by default, solo against any
//! Bytom-compatible node's HTTP API, or in a pool over BTM stratum, with per-device backends
//! from `bystack-kernels`, every device result re-checked on the CPU, honest hash-rate
//! reporting, a duty cycle for light (edge) mining, and hardware profiles. Its binary is
//! `bystack-miner` (usage in miner/README.md).
//!
//! * [`work`]: the contract every work source implements (channels of jobs, shares, events).
//! * [`embedded`]: the in-process devnet node and its source; [`solo`]: a node's HTTP API
//!   (`get-work-json` / `submit-work-json`) over [`http`], a minimal HTTP/1.1 client;
//!   [`stratum`]: BTM stratum pools in failover order.
//! * [`device`]: one worker thread per device, preemption, the CPU re-check.
//! * [`run`]: one mining run (stop conditions, duty cycle, logging); [`stats`] and [`api`]
//!   (`/stats`, `/metrics`).
//! * [`config`] (flags, TOML file) and [`profile`] (hw-profiles/*.toml); [`memory`] (RSS).
//!
//! No feature flags of its own; the kernels' `wgpu` and `cuda` features decide which GPU
//! backends exist.

pub mod api;
pub mod backends;
pub mod config;
pub mod device;
pub mod embedded;
pub mod http;
pub mod memory;
pub mod profile;
pub mod run;
pub mod solo;
pub mod stats;
pub mod stratum;
pub mod work;

pub use bystack_kernels as kernels;
