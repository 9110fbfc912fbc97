//! bystack-engine: Bytom 1.x consensus, byte-compatible with the real chain. It will hold the
//! encodings, entries and IDs, merkle roots, difficulty and seed epochs, the VM, the staged
//! block and transaction validation, and PSWV (parallel sliding-window validation).
//!
//! It depends on `bystack-kernels` for the proof of work and never on the node or the miner.
//! The PoW formulas it needs (compact bits, retarget, header ID) already live in
//! [`bystack_kernels::pow`]; this crate adds the chain context around them.
//!
//! Modules so far: [`consensus`] (constants, networks, subsidy, retarget/seed/median-time
//! rules), [`encoding`] (varints, varstrs, extensible strings), [`block`] and [`tx`]
//! (the wire formats), [`entries`] (entry IDs, `MapTx`, asset IDs, sighashes, block hash),
//! [`merkle`] (transaction and status roots), [`genesis`] (every network's genesis block),
//! [`vm`] (the Bytom VM: every opcode, gas, CHECKPREDICATE, standard programs) and [`ed25519`]
//! (verification with exactly Bytom's ref10 acceptance rule), [`validation`] (staged
//! transaction and block validation, the UTXO view) and [`pswv`] (parallel sliding-window
//! validation, with the sequential oracle it must agree with).
//! [`devnet`] holds test tooling: a deterministic wallet and a chain generator with
//! adversarial injections.
//!
//! Feature flags: none.

pub mod block;
pub mod consensus;
pub mod devnet;
pub mod ed25519;
pub mod encoding;
pub mod entries;
pub mod genesis;
pub mod hash;
pub mod merkle;
pub mod pswv;
pub mod tx;
pub mod validation;
pub mod vm;

pub use block::{Block, BlockHeader};
pub use encoding::{DecodeError, EncodeError, Reader};
pub use entries::{map_tx, EntryType, MappedTx};
pub use hash::{AssetId, Hash, BTM_ASSET_ID};
pub use tx::{Transaction, TxData, TxInput, TxOutput};

pub use bystack_kernels::pow;
