//! bystack-node: the lean node. It will keep the chain in RocksDB, manage forks and reorgs,
//! keep a mempool, build block templates, serve Bytom's `get-work`/`submit-work` HTTP API and a
//! BTM stratum server, and relay and sync blocks over libp2p. Its binary is `bystack-node`.
//!
//! Today: [`store`], the chain database (blocks, header index, main chain, transaction
//! statuses, UTXO set, undo data, tip) under one key scheme, over RocksDB or memory, every
//! block or PSWV window committed in one atomic batch; [`chain`], the chain manager (block
//! index with cumulative work, Bytom's fork choice, orphan pool, reorganisations, the
//! sequential path for single blocks and PSWV for sync windows); [`decode`], the
//! `bystack-node decode` command that turns serialized Bytom data into JSON with every
//! computed ID; and [`verify`], the `bystack-node verify-pow` command that verifies the
//! proofs of work of many blocks in one batch on any Tensority backend (`--pow-backend`),
//! never rejecting a block on a device's word alone; [`mempool`], the transaction pool
//! (admission against the UTXO set and the pool, fee-per-gas order, a size cap with
//! eviction, reorganisations); [`template`], block templates for miners; [`address`], Bytom's
//! bech32 addresses; and [`service`], the [`service::Node`] facade every front-end shares
//! (chain, pool and template behind one API, events, metrics, `get-work`/`submit-work`).
//! Consensus comes from `bystack-engine`,
//! proof of work from `bystack-kernels`.
//!
//! Feature flags: `rocksdb` (default) builds the RocksDB backend
//! ([`store::RocksKv`]); without it only the in-memory store ([`store::MemoryKv`]) exists,
//! and nothing of RocksDB (a long C++ build) is compiled.

pub mod address;
pub mod api;
pub mod chain;
pub mod config;
pub mod decode;
pub mod mempool;
pub mod p2p;
#[cfg(feature = "rocksdb")]
pub mod run;
pub mod service;
pub mod store;
pub mod stratum;
pub mod template;
pub mod verify;

pub use bystack_engine as engine;
