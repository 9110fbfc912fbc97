//! bystack-node: the lean node. It will keep the chain in RocksDB, manage forks and reorgs,
//! keep a mempool, build block templates, serve Bytom's `get-work`/`submit-work` HTTP API and a
//! BTM stratum server, and relay and sync blocks over libp2p. Its binary is `bystack-node`.
//!
//! Today: [`decode`], the `bystack-node decode` command that turns serialized Bytom data into
//! JSON with every computed ID, and [`verify`], the `bystack-node verify-pow` command that
//! verifies the proofs of work of many blocks in one batch on any Tensority backend
//! (`--pow-backend`), never rejecting a block on a device's word alone. Consensus comes from
//! `bystack-engine`, proof of work from `bystack-kernels`. Feature flags: none.

pub mod decode;
pub mod verify;

pub use bystack_engine as engine;
