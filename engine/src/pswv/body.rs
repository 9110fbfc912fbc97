//! Stages 2–3 reductions: after every transaction of the window went through
//! [`validate_tx`](crate::validation::validate_tx) in parallel, each block is reduced in
//! Bytom's order: gas-invalid transactions, fees and the block gas limit, the coinbase
//! amount, the transaction merkle root, the status merkle root.
//!
//! MIRROR: these four checks replicate the private helpers of `validation/block.rs`
//! (`check_tx_outcomes`, `check_coinbase_amount`, `check_tx_root`, `check_status_root`)
//! line for line, because `validation` offers no public "body from outcomes" entry point.
//! Replace them with that entry point once it exists; until then the differential tests
//! (`engine/tests/pswv.rs`) hold the two copies together.

use crate::block::Block;
use crate::consensus::{block_subsidy, MAX_BLOCK_GAS};
use crate::entries::EntryType;
use crate::merkle::{tx_merkle_root, tx_status_merkle_root};
use crate::validation::{BlockError, BlockResult, TxError, TxOutcome};

/// Reduces one block's transaction outcomes (in block order) to its statuses, or the block's
/// error exactly as [`validate_block`](crate::validation::validate_block) reports it after
/// the header stages.
pub(super) fn reduce_block(block: &Block, outcomes: &[TxOutcome]) -> BlockResult<Vec<bool>> {
    let (status_fail, fees) = check_tx_outcomes(outcomes)?;
    check_coinbase_amount(block, fees)?;
    check_tx_root(block)?;
    check_status_root(block, &status_fail)?;
    Ok(status_fail)
}

fn check_tx_outcomes(outcomes: &[TxOutcome]) -> BlockResult<(Vec<bool>, u64)> {
    let mut status_fail = Vec::with_capacity(outcomes.len());
    let mut fees = 0u64;
    let mut gas = 0u64;
    for (index, outcome) in outcomes.iter().enumerate() {
        if !outcome.gas_valid {
            return Err(BlockError::Tx {
                index,
                count: outcomes.len(),
                error: outcome.error.clone().unwrap_or(TxError::GasCalculate {
                    reason: "gas never became valid",
                }),
            });
        }
        status_fail.push(outcome.error.is_some());
        // Go sums in uint64 without checks.
        fees = fees.wrapping_add(outcome.btm_value);
        gas = gas.wrapping_add(outcome.gas_used as u64);
        if gas > MAX_BLOCK_GAS {
            return Err(BlockError::OverBlockLimit { gas, index });
        }
    }
    Ok((status_fail, fees))
}

fn check_coinbase_amount(block: &Block, fees: u64) -> BlockResult<()> {
    let Some(tx) = block.transactions.first() else {
        return Err(BlockError::EmptyBlock);
    };
    let [result] = tx.mapped.results.as_slice() else {
        return Err(BlockError::CoinbaseOutputCount {
            count: tx.mapped.results.len(),
        });
    };
    if result.kind != EntryType::Output {
        return Err(BlockError::CoinbaseNotOutput { id: result.id });
    }
    let out = &tx.data.outputs[0];
    let got = if out.asset_version == 1 {
        out.amount
    } else {
        0
    };
    let expected = block_subsidy(block.header.height).wrapping_add(fees);
    if got != expected {
        return Err(BlockError::CoinbaseAmount { expected, got });
    }
    Ok(())
}

fn check_tx_root(block: &Block) -> BlockResult<()> {
    let computed = tx_merkle_root(&block.tx_ids());
    let header = block.header.transactions_merkle_root;
    if computed != header {
        return Err(BlockError::MismatchedTxRoot { computed, header });
    }
    Ok(())
}

fn check_status_root(block: &Block, status_fail: &[bool]) -> BlockResult<()> {
    let computed = tx_status_merkle_root(status_fail);
    let header = block.header.transaction_status_hash;
    if computed != header {
        return Err(BlockError::MismatchedStatusRoot { computed, header });
    }
    Ok(())
}
