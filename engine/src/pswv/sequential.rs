//! The sequential oracle, as Bytom syncs: for each block in order, `ValidateBlock` (the header
//! checks, then the block's transactions validated **concurrently**, as Bytom's `ValidateTxs`
//! spreads one block's transactions over its workers, then the body reductions), then
//! `connectBlock` (load the spent outputs, apply the block, save the view in one batch per
//! block). Stops at the first invalid block.
//!
//! [`validate_and_apply`] is that path, with the transactions of one block on the current
//! rayon pool; [`validate_and_apply_serial`] runs everything on the calling thread. Both share
//! the rule code of [`crate::validation`] ([`validate_block_header`], [`validate_tx`],
//! [`reduce_block_body`]) and give the same decision.

use rayon::prelude::*;

use crate::block::Block;
use crate::validation::{
    reduce_block_body, validate_block_header, validate_tx, validate_txs, BlockContext, BlockResult,
    ParentInfo, PowCheck, TxOutcome, UtxoResult, UtxoStore, UtxoView,
};

use super::profile::{span, Stage};
use super::{ChainContext, WindowFailure, WindowOutcome};

/// Validates and connects `blocks` one at a time on `store`, starting from `context`, the
/// transactions of each block validated in parallel on the current rayon pool. `now` is the
/// local clock (Unix seconds). Every accepted block is written to `store` in its own batch;
/// the first invalid block (and everything after it) is not.
///
/// A failure of `store` is reported as the failure of the block being connected
/// ([`WindowError::Utxo`](super::WindowError::Utxo) with
/// [`UtxoError::Store`](crate::validation::UtxoError::Store)).
pub fn validate_and_apply(
    blocks: &[Block],
    store: &mut dyn UtxoStore,
    context: &ChainContext,
    now: u64,
    pow: &dyn PowCheck,
) -> WindowOutcome {
    run(blocks, store, context, now, pow, true)
}

/// [`validate_and_apply`] with every transaction validated on the calling thread, one after
/// the other ([`validate_txs`]).
pub fn validate_and_apply_serial(
    blocks: &[Block],
    store: &mut dyn UtxoStore,
    context: &ChainContext,
    now: u64,
    pow: &dyn PowCheck,
) -> WindowOutcome {
    run(blocks, store, context, now, pow, false)
}

fn run(
    blocks: &[Block],
    store: &mut dyn UtxoStore,
    context: &ChainContext,
    now: u64,
    pow: &dyn PowCheck,
    parallel: bool,
) -> WindowOutcome {
    let mut next = context.clone();
    let mut statuses = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.iter().enumerate() {
        let checked = next.parent().and_then(|parent| {
            let status = validate_block(block, parent, now, pow, parallel)?;
            connect(store, block, &status)?;
            Ok(status)
        });
        match checked {
            Ok(status) => {
                statuses.push(status);
                next.advance(&block.header);
            }
            Err(error) => {
                return WindowOutcome {
                    statuses,
                    failure: Some(WindowFailure { index, error }),
                    next,
                }
            }
        }
    }
    WindowOutcome {
        statuses,
        failure: None,
        next,
    }
}

/// `ValidateBlock` in [`validate_block`](crate::validation::validate_block)'s order; returns
/// the statuses.
fn validate_block(
    block: &Block,
    parent: &ParentInfo,
    now: u64,
    pow: &dyn PowCheck,
    parallel: bool,
) -> BlockResult<Vec<bool>> {
    {
        let _t = span(Stage::SeqHeader);
        validate_block_header(block, parent, now, pow)?;
    }
    let outcomes: Vec<TxOutcome> = {
        let _t = span(Stage::SeqTxs);
        if parallel {
            block
                .transactions
                .par_iter()
                .enumerate()
                .map(|(i, tx)| {
                    let context = BlockContext {
                        version: block.header.version,
                        height: block.header.height,
                        tx_index: Some(i),
                    };
                    validate_tx(tx, &context)
                })
                .collect()
        } else {
            validate_txs(block)
        }
    };
    let _t = span(Stage::SeqReduce);
    Ok(reduce_block_body(block, &outcomes)?.status_fail)
}

fn connect(store: &mut dyn UtxoStore, block: &Block, status_fail: &[bool]) -> UtxoResult<()> {
    let _t = span(Stage::SeqConnect);
    let mut view = UtxoView::new();
    view.load_for_block(store, block)?;
    view.apply_block_with_status(block, status_fail)?;
    view.save(store)
}
