//! The sliding pipeline of the design: a run of blocks cut into consecutive windows, each
//! validated with the PSWV stages and committed in one batch, with window k+1's stages 0–3
//! (which need no UTXO state) running while window k's stage 4 folds and its batch is
//! written. The only hand-off between the two is stage 0's context after window k, which is
//! what window k+1 starts from whenever window k is accepted whole; when it is not, the
//! pipeline stops there and the speculative work is dropped.

use crate::block::Block;
use crate::validation::{PowCheck, UtxoStore};

use super::profile::{span, Stage};
use super::window::{check, resolve, Checked};
use super::{ChainContext, WindowError, WindowFailure, WindowOutcome};

/// Validates `blocks` (linked, on top of `context` and `store`) in consecutive windows of
/// `window` blocks (at least 1), committing each window's batch to `store` with one
/// [`UtxoStore::write_batch`], and returns the decision over the whole run: the same as
/// [`validate_and_commit`](super::validate_and_commit) window after window, and so the same
/// as [`sequential::validate_and_apply`](super::sequential::validate_and_apply) on `blocks`.
/// Stops at the first invalid block: the blocks of its window before it are committed,
/// nothing after it is.
///
/// A batch that cannot be written is reported as the failure of the first block of its
/// window ([`WindowError::Utxo`] with
/// [`UtxoError::Store`](crate::validation::UtxoError::Store)): the windows before it are
/// committed, nothing of it is.
pub fn validate_and_commit_windows<S: UtxoStore + Sync + Send>(
    blocks: &[Block],
    window: usize,
    store: &mut S,
    context: &ChainContext,
    now: u64,
    pow: &(dyn PowCheck + Sync),
) -> WindowOutcome {
    let mut windows = blocks.chunks(window.max(1));
    let mut statuses = Vec::with_capacity(blocks.len());
    let mut start = context.clone();
    let mut offset = 0;
    let mut current: Option<(&[Block], Checked)> = windows
        .next()
        .map(|first| (first, check(first, context, now, pow)));
    while let Some((blocks, checked)) = current.take() {
        // Window k+1 starts from stage 0's context after window k: right whenever window k
        // is accepted whole, which stages 0–3 passing makes likely.
        let upcoming = windows.next().filter(|_| checked.passed());
        let ahead = upcoming.map(|_| checked.chain().clone());
        let (result, prepared) = rayon::join(
            || {
                let result = resolve(blocks, checked, &*store, &start, now, pow);
                let _t = span(Stage::Commit);
                let written = store.write_batch(&result.writes);
                (result, written)
            },
            || {
                upcoming
                    .zip(ahead)
                    .map(|(b, c)| (b, check(b, &c, now, pow)))
            },
        );
        let (result, written) = result;
        if let Err(error) = written {
            return WindowOutcome {
                statuses,
                failure: Some(WindowFailure {
                    index: offset,
                    error: WindowError::Utxo(error),
                }),
                next: start,
            };
        }
        let outcome = result.outcome;
        statuses.extend(outcome.statuses);
        if let Some(failure) = outcome.failure {
            return WindowOutcome {
                statuses,
                failure: Some(WindowFailure {
                    index: offset + failure.index,
                    error: failure.error,
                }),
                next: outcome.next,
            };
        }
        offset += blocks.len();
        start = outcome.next;
        current = prepared;
    }
    WindowOutcome {
        statuses,
        failure: None,
        next: start,
    }
}
