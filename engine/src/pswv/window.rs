//! The PSWV driver, in two halves. [`check`] needs no UTXO state: stage 0 (the sequential
//! header chain) followed by stage 1 (the proofs of work), side by side on the rayon pool with
//! stages 2–3 (every transaction of the window, then the per-block reductions) and with the
//! collection and grouping of the window's UTXO events. [`resolve`] then folds the events
//! over the UTXO state (stage 4) and takes the min-reduction that picks the first invalid
//! block the way the sequential path would. Keeping them apart lets the pipeline
//! ([`super::validate_and_commit_windows`]) check window k+1 while window k resolves and
//! commits.

use rayon::prelude::*;

use crate::block::Block;
use crate::hash::Hash;
use crate::validation::{
    validate_block_header, validate_tx, BlockContext, BlockError, BlockResult, ParentInfo,
    PowCheck, SkipPow, TxOutcome, UtxoResult, UtxoStore, UtxoWrite,
};

use super::profile::{span, Stage};
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
/// proof of work. Returns the parents of the blocks that pass, the context after them, and
/// the first failure.
fn header_chain(
    blocks: &[Block],
    context: &ChainContext,
    now: u64,
) -> (Vec<ParentInfo>, ChainContext, Option<WindowFailure>) {
    let _t = span(Stage::Headers);
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
            Err(error) => return (parents, chain, Some(WindowFailure { index, error })),
        }
    }
    (parents, chain, None)
}

/// Stage 1: the proof of work of every block that passed stage 0, in ONE
/// [`PowCheck::check_batch`] call so that a batched backend verifies the window together.
/// Stage 0 already ran every other header check of these blocks (with the same parents and
/// clock), so the proof of work is the only header error left, as in
/// [`validate_block_header`]'s order.
fn proofs_of_work(
    blocks: &[Block],
    parents: &[ParentInfo],
    pow: &(dyn PowCheck + Sync),
) -> Vec<BlockResult<()>> {
    let _t = span(Stage::Pow);
    let items: Vec<(Hash, Hash, u64)> = blocks
        .par_iter()
        .zip(parents)
        .map(|(block, parent)| (block.hash(), parent.seed, block.header.bits))
        .collect();
    let mut verdicts = pow.check_batch(&items).into_iter();
    items
        .into_iter()
        .map(|(hash, _, _)| match verdicts.next() {
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) => Err(BlockError::WorkProof { hash }),
            Some(Err(error)) => Err(error),
            None => Err(BlockError::PowBackend {
                message: "the proof-of-work check returned too few verdicts".to_string(),
            }),
        })
        .collect()
}

/// Stages 2–3: every transaction of the window validated in parallel (not block by block),
/// then each block reduced. One result per block.
fn bodies(blocks: &[Block]) -> Vec<BlockResult<Vec<bool>>> {
    let jobs: Vec<(usize, usize)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(b, block)| (0..block.transactions.len()).map(move |t| (b, t)))
        .collect();
    let t = span(Stage::Txs);
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
    drop(t);
    let _t = span(Stage::Reduce);
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

/// What a window's stages 0–3 decided, and its UTXO events: everything that needs no UTXO
/// state.
#[derive(Debug)]
pub(super) struct Checked {
    /// `status_fail` of every block that passed stages 0–3 (a prefix of the window).
    statuses: Vec<Vec<bool>>,
    /// The first block that failed stages 0–3, if any.
    failure: Option<WindowFailure>,
    /// Stage 0's context after the blocks that passed stage 0.
    chain: ChainContext,
    /// How many blocks passed stage 0.
    headers_passed: usize,
    /// The events of every block of the window.
    events: Events,
}

impl Checked {
    /// Whether every block passed stages 0–3.
    pub(super) fn passed(&self) -> bool {
        self.failure.is_none()
    }

    /// The context after every block that passed stage 0 (after the whole window when
    /// [`passed`](Self::passed)).
    pub(super) fn chain(&self) -> &ChainContext {
        &self.chain
    }
}

/// Stages 0–3 of `blocks` on top of `context`, and the window's UTXO events. Stage 0 then
/// stage 1 run beside stages 2–3 and the event grouping; the transactions of blocks after a
/// stage-0 failure are validated for nothing (only a bad peer sends them).
pub(super) fn check(
    blocks: &[Block],
    context: &ChainContext,
    now: u64,
    pow: &(dyn PowCheck + Sync),
) -> Checked {
    let ((parents, chain, header_failure, pows), (bodies, events)) = rayon::join(
        || {
            let (parents, chain, failure) = header_chain(blocks, context, now);
            let pows = proofs_of_work(&blocks[..parents.len()], &parents, pow);
            (parents, chain, failure, pows)
        },
        || {
            rayon::join(
                || bodies(blocks),
                || {
                    let _t = span(Stage::Events);
                    Events::collect(blocks)
                },
            )
        },
    );
    let headers_passed = parents.len();
    let mut statuses = Vec::with_capacity(headers_passed);
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
    Checked {
        statuses,
        failure,
        chain,
        headers_passed,
        events,
    }
}

/// Stage 4 of a [`check`]ed window over the UTXO state `base`, and the decision.
/// `blocks`, `context`, `now` and `pow` are those `checked` came from (the sequential
/// fallback re-runs them when `base` fails).
pub(super) fn resolve<S: UtxoStore + Sync + ?Sized>(
    blocks: &[Block],
    checked: Checked,
    base: &S,
    context: &ChainContext,
    now: u64,
    pow: &(dyn PowCheck + Sync),
) -> WindowResult {
    let Checked {
        mut statuses,
        mut failure,
        chain,
        headers_passed,
        events,
    } = checked;
    let t = span(Stage::Fold);
    let valid = statuses.len();
    let folded = events
        .fold(base, valid, &statuses)
        .and_then(|(utxo_failure, writes)| {
            let Some((pos, error)) = utxo_failure else {
                return Ok((None, writes));
            };
            // Commit only the prefix before the failing block.
            let (_, writes) = events.fold(base, pos.block, &statuses)?;
            Ok((
                Some(WindowFailure {
                    index: pos.block,
                    error: WindowError::Utxo(error),
                }),
                writes,
            ))
        });
    let writes = match folded {
        Ok((None, writes)) => writes,
        Ok((Some(utxo_failure), writes)) => {
            statuses.truncate(utxo_failure.index);
            failure = Some(utxo_failure);
            writes
        }
        Err(_) => return sequential_fallback(blocks, base, context, now, pow),
    };
    drop(t);
    let _t = span(Stage::Finish);
    debug_assert!(writes.is_sorted_by_key(super::overlay::write_id));
    // Stage 0 already advanced over the accepted blocks unless a later stage cut the prefix.
    let next = if statuses.len() == headers_passed {
        chain
    } else {
        let mut next = context.clone();
        for block in &blocks[..statuses.len()] {
            next.advance(&block.header);
        }
        next
    };
    WindowResult {
        outcome: WindowOutcome {
            statuses,
            failure,
            next,
        },
        writes,
    }
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
    let checked = check(blocks, context, now, pow);
    resolve(blocks, checked, base, context, now, pow)
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
    let _t = span(Stage::Commit);
    store.write_batch(&result.writes)?;
    Ok(result.outcome)
}
