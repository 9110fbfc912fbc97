//! PSWV, parallel sliding-window validation (design: `shared/spec/pswv.md`): validates a
//! window of linked blocks with the work regrouped for parallelism, and gives **exactly** the
//! decision of the sequential validator (same first invalid block, same error, same UTXO
//! writes, same transaction statuses), committing the valid prefix in one write batch.
//!
//! * [`sequential::validate_and_apply`]: the oracle, as Bytom does it: per block the checks
//!   of [`validate_block`](crate::validation::validate_block) (the block's transactions
//!   validated concurrently), then the UTXO view, one batch per block.
//! * [`validate_window`] / [`validate_and_commit`]: the stages of the design. Stage 0
//!   ([`ChainContext`], sequential) derives every block's
//!   [`ParentInfo`](crate::validation::ParentInfo) and runs the cheap header checks, then
//!   stage 1 checks the proof of work of every block in one batch; beside them, with rayon,
//!   stages 2–3 (every transaction of the window through
//!   [`validate_tx`](crate::validation::validate_tx), then the per-block reductions) and the
//!   grouping of the window's UTXO events by output ID; stage 4 folds those events over the
//!   UTXO state; stage 5 returns one batch of
//!   [`UtxoWrite`](crate::validation::UtxoWrite)s for the valid prefix.
//! * [`validate_and_commit_windows`]: the sliding pipeline over many windows, window k+1's
//!   stages 0–3 running while window k folds and commits.
//! * [`Overlay`]: a window's delta over a base store, so window k+1 validates before
//!   window k's batch lands.
//! * [`profile`]: stage timers (off unless enabled) for both paths.
//!
//! Both paths share the rule code of [`crate::validation`]: the transaction checks, the
//! per-block body reductions ([`reduce_block_body`](crate::validation::reduce_block_body)) and
//! the per-spend UTXO checks; PSWV only changes the order and grouping of the work.

mod context;
mod overlay;
mod pipeline;
pub mod profile;
pub mod sequential;
mod utxo_fold;
mod window;

pub use context::ChainContext;
pub use overlay::Overlay;
pub use pipeline::validate_and_commit_windows;
pub use window::{validate_and_commit, validate_window, WindowResult};

use crate::validation::{BlockError, UtxoError};

/// Why a block of a window is rejected: by block validation, or when its spent outputs are
/// checked against the UTXO set (connect time in Bytom).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// [`validate_block`](crate::validation::validate_block) failed.
    #[error("block validation: {0}")]
    Block(#[from] BlockError),
    /// Applying the block to the UTXO set failed (or the store failed).
    #[error("utxo: {0}")]
    Utxo(#[from] UtxoError),
    /// The retarget rule needs the timestamp of an ancestor the [`ChainContext`] lacks.
    #[error("missing the timestamp of ancestor at height {height} for the retarget rule")]
    MissingAncestor {
        /// The ancestor's height.
        height: u64,
    },
}

/// The first invalid block of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowFailure {
    /// Its index in the window.
    pub index: usize,
    /// Why.
    pub error: WindowError,
}

/// The decision on a window, the same for both paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowOutcome {
    /// `status_fail` of every transaction of every accepted block (the valid prefix).
    pub statuses: Vec<Vec<bool>>,
    /// The first invalid block, if any; the blocks before it are accepted.
    pub failure: Option<WindowFailure>,
    /// The context after the last accepted block: what the next window starts from.
    pub next: ChainContext,
}

impl WindowOutcome {
    /// How many blocks were accepted.
    pub fn accepted(&self) -> usize {
        self.statuses.len()
    }
}
