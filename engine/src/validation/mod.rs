//! Transaction and block validation (Bytom's `protocol/validation`, spec §5) and the UTXO view
//! (`protocol/state/utxo_view.go`, spec §5.2.6 and §7), as typed stages:
//!
//! * [`validate_tx`] (`tx.rs`): version, size, time range, standardness, then the entry-graph
//!   walk with balances, gas and the VM (through [`TxVmContext`] and [`Ed25519Verifier`]).
//!   Its [`TxOutcome`] separates errors that invalidate the block (before the gas became
//!   valid) from "status fail" transactions (after).
//! * [`validate_block`] (`block.rs`): header stages (version, height, bits, previous hash,
//!   timestamp, proof of work through a [`PowCheck`]), the transactions, coinbase amount,
//!   block gas and merkle roots; returns the checked [`ValidatedBlock`].
//! * [`UtxoView`] (`utxo.rs`): applies a [`ValidatedBlock`] (spent outputs must exist, be
//!   unspent and, for coinbase outputs, be 100 blocks deep) and detaches blocks for reorgs,
//!   over a [`UtxoStore`] ([`MemoryUtxoStore`] in memory).
//!
//! Errors: [`TxError`], [`BlockError`], [`UtxoError`] (`errors.rs`), one variant per Bytom
//! error.

mod block;
mod errors;
mod tx;
pub(crate) mod utxo;
mod vm_context;

pub use block::{
    reduce_block_body, validate_block, validate_block_header, validate_txs, BodySummary,
    ParentInfo, PowCheck, SkipPow, TensorityPow, ValidatedBlock,
};
pub use errors::{BlockError, BlockResult, TxError, TxResult, UtxoError, UtxoResult};
pub use tx::{check_standard_tx, validate_tx, BlockContext, TxOutcome};
pub use utxo::{MemoryUtxoStore, UtxoEntry, UtxoStore, UtxoView, UtxoWrite};
pub use vm_context::{Ed25519Verifier, TxVmContext};
