//! The PSWV driver: stage 0 (sequential header chain), stages 1 and 2–3 side by side on the
//! rayon pool, stage 4 (UTXO folds), and the min-reduction that picks the first invalid block
//! the way the sequential path would.

use rayon::prelude::*;

use crate::block::Block;
use crate::validation::{
    validate_block_header, validate_tx, BlockContext, BlockResult, ParentInfo, PowCheck, SkipPow,
    TxOutcome, UtxoResult, UtxoStore, UtxoWrite,
};

use super::utxo_fold::Events;
use super::{sequential, ChainContext, Overlay, WindowError, WindowFailure, WindowOutcome};

/// A window's decision and its one write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowResult {
    /// The decision (identical to [`sequential::validate_and_apply`]'s).
    pub outcome: WindowOutcome,
    /// The UTXO writes of the accepted prefix, ordered by output ID: what the per-block
    /// batches of the sequential path leave in the store, without the outputs created and
    /// spent inside the window.
    pub writes: Vec<UtxoWrite>,
}

/// Stage 0: derives every block's parent facts and runs the header checks other than the
/// proof of work. Returns the parents of the blocks that pass, and the first failure.
fn header_chain(
    blocks: &[Block],
    context: &ChainContext,
    now: u64,
) -> (Vec<ParentInfo>, Option<WindowFailure>) {
    let mut chain = context.clone();
    let mut parents = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.iter().enumerate() {
        let checked = chain.parent().copied().and_then(|parent| {
            validate_block_header(block, &parent, now, &SkipPow)?;
            Ok(parent)
        });
        match checked {
            Ok(parent) => {
                parents.push(parent);
                chain.advance(&block.header);
            }
            Err(error) => return (parents, Some(WindowFailure { index, error })),
        }
    }
    (parents, None)
}

/// Stages 2–3: every transaction of the window validated in parallel (not block by block),
/// then each block reduced. One result per block.
fn bodies(blocks: &[Block]) -> Vec<BlockResult<Vec<bool>>> {
    let jobs: Vec<(usize, usize)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(b, block)| (0..block.transactions.len()).map(move |t| (b, t)))
        .collect();
    let outcomes: Vec<TxOutcome> = jobs
        .par_iter()
        .map(|&(b, t)| {
            let block = &blocks[b];
            let context = BlockContext {
                version: block.header.version,
                height: block.header.height,
                tx_index: Some(t),
            };
            validate_tx(&block.transactions[t], &context)
        })
        .collect();
    let mut starts = Vec::with_capacity(blocks.len());
    let mut at = 0;
    for block in blocks {
        starts.push(at);
        at += block.transactions.len();
    }
    blocks
        .par_iter()
        .zip(starts)
        .map(|(block, start)| {
            crate::validation::reduce_block_body(
                block,
                &outcomes[start..start + block.transactions.len()],
            )
            .map(|body| body.status_fail)
        })
        .collect()
}

/// Validates `blocks` (a linked window on top of `context` and the UTXO state `base`) with
/// the PSWV stages and returns the sequential path's decision plus the window's one batch.
/// `base` is not written: commit [`WindowResult::writes`], or validate the next window over
/// an [`Overlay`] holding them.
///
/// If `base` fails during stage 4, the window is re-run through the sequential path over an
/// [`Overlay`], so that the failure is attributed to the same block as there; if `base`
/// fails again while the batch is computed, nothing is accepted and the failure is reported
/// at block 0.
pub fn validate_window<S: UtxoStore + Sync + ?Sized>(
    blocks: &[Block],
    base: &S,
    context: &ChainContext,
    now: u64,
    pow: &(dyn PowCheck + Sync),
) -> WindowResult {
    // Stage 0.
    let (parents, header_failure) = header_chain(blocks, context, now);
    let checked = &blocks[..parents.len()];
    // Stage 1 beside stages 2–3.
    let (pows, bodies) = rayon::join(
        || {
            checked
                .par_iter()
                .zip(&parents)
                .map(|(block, parent)| validate_block_header(block, parent, now, pow))
                .collect::<Vec<_>>()
        },
        || bodies(checked),
    );
    let mut statuses = Vec::with_capacity(checked.len());
    let mut failure = header_failure;
    for (index, (pow, body)) in pows.into_iter().zip(bodies).enumerate() {
        match pow.and(body) {
            Ok(status) => statuses.push(status),
            Err(error) => {
                failure = Some(WindowFailure {
                    index,
                    error: WindowError::Block(error),
                });
                break;
            }
        }
    }
    // Stage 4 over the blocks that passed stages 0–3.
    let valid = statuses.len();
    let events = Events::collect(&blocks[..valid], &statuses);
    let folded = events.fold(base, valid).and_then(|(utxo_failure, writes)| {
        let Some((pos, error)) = utxo_failure else {
            return Ok((None, writes));
        };
        // Commit only the prefix before the failing block.
        let (_, writes) = events.fold(base, pos.block)?;
        Ok((
            Some(WindowFailure {
                index: pos.block,
                error: WindowError::Utxo(error),
            }),
            writes,
        ))
    });
    let mut writes = match folded {
        Ok((None, writes)) => writes,
        Ok((Some(utxo_failure), writes)) => {
            statuses.truncate(utxo_failure.index);
            failure = Some(utxo_failure);
            writes
        }
        Err(_) => return sequential_fallback(blocks, base, context, now, pow),
    };
    writes.sort_by_key(super::overlay::write_id);
    let mut next = context.clone();
    for block in &blocks[..statuses.len()] {
        next.advance(&block.header);
    }
    WindowResult {
        outcome: WindowOutcome {
            statuses,
            failure,
            next,
        },
        writes,
    }
}

fn sequential_fallback<S: UtxoStore + Sync + ?Sized>(
    blocks: &[Block],
    base: &S,
    context: &ChainContext,
    now: u64,
    pow: &(dyn PowCheck + Sync),
) -> WindowResult {
    let mut overlay = Overlay::new(base);
    let outcome = sequential::validate_and_apply(blocks, &mut overlay, context, now, pow);
    match overlay.writes() {
        Ok(writes) => WindowResult { outcome, writes },
        Err(error) => WindowResult {
            outcome: WindowOutcome {
                statuses: Vec::new(),
                failure: Some(WindowFailure {
                    index: 0,
                    error: WindowError::Utxo(error),
                }),
                next: context.clone(),
            },
            writes: Vec::new(),
        },
    }
}

/// [`validate_window`], then the window's batch written to `store` in one
/// [`UtxoStore::write_batch`].
///
/// # Errors
/// [`UtxoError::Store`](crate::validation::UtxoError::Store) when the batch cannot be
/// written (nothing of the window is then committed).
pub fn validate_and_commit<S: UtxoStore + Sync>(
    blocks: &[Block],
    store: &mut S,
    context: &ChainContext,
    now: u64,
    pow: &(dyn PowCheck + Sync),
) -> UtxoResult<WindowOutcome> {
    let result = validate_window(blocks, &*store, context, now, pow);
    store.write_batch(&result.writes)?;
    Ok(result.outcome)
}
