//! Stage timers for PSWV and the sequential path, for finding where validation time goes
//! (`perf` is not always at hand). Off by default: a disabled timer is one relaxed atomic load.
//! Enable with [`set_enabled`] (the bench's `--profile`) or by setting the environment
//! variable `BYSTACK_PSWV_PROFILE` to anything but `0` before the first validation.
//!
//! Each [`Stage`] accumulates wall-clock nanoseconds and a call count over every thread; stages
//! that run side by side on the rayon pool (stage 1 beside stages 2–3) each report their own
//! wall time, so the per-stage sums may exceed the elapsed time.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

/// A timed part of validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Stage {
    /// PSWV stage 0: the header chain (sequential).
    Headers,
    /// PSWV stage 1: the proofs of work of the window (one batch).
    Pow,
    /// PSWV stages 2–3: every transaction of the window through `validate_tx`.
    Txs,
    /// PSWV stage 3: the per-block reductions (gas, coinbase amount, merkle roots).
    Reduce,
    /// PSWV stage 4, preparation: events collected, grouped by output ID, base entries read.
    Events,
    /// PSWV stage 4: the per-ID folds and the min-reduction.
    Fold,
    /// PSWV: the batch ordered and the next context derived.
    Finish,
    /// PSWV stage 5: the window's batch written to the store.
    Commit,
    /// Sequential path: the header checks of a block.
    SeqHeader,
    /// Sequential path: the transactions of a block through `validate_tx`.
    SeqTxs,
    /// Sequential path: the block's body reductions.
    SeqReduce,
    /// Sequential path: load the spent outputs, apply the block, write its batch.
    SeqConnect,
}

impl Stage {
    /// Every stage, in report order.
    pub const ALL: [Stage; 12] = [
        Stage::Headers,
        Stage::Pow,
        Stage::Txs,
        Stage::Reduce,
        Stage::Events,
        Stage::Fold,
        Stage::Finish,
        Stage::Commit,
        Stage::SeqHeader,
        Stage::SeqTxs,
        Stage::SeqReduce,
        Stage::SeqConnect,
    ];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Headers => "pswv.headers",
            Stage::Pow => "pswv.pow",
            Stage::Txs => "pswv.txs",
            Stage::Reduce => "pswv.reduce",
            Stage::Events => "pswv.events",
            Stage::Fold => "pswv.fold",
            Stage::Finish => "pswv.finish",
            Stage::Commit => "pswv.commit",
            Stage::SeqHeader => "seq.header",
            Stage::SeqTxs => "seq.txs",
            Stage::SeqReduce => "seq.reduce",
            Stage::SeqConnect => "seq.connect",
        }
    }
}

const STAGES: usize = Stage::ALL.len();

/// 0 = not yet decided (read the environment), 1 = off, 2 = on.
static ENABLED: AtomicU8 = AtomicU8::new(0);
static NANOS: [AtomicU64; STAGES] = [const { AtomicU64::new(0) }; STAGES];
static CALLS: [AtomicU64; STAGES] = [const { AtomicU64::new(0) }; STAGES];

/// Turns the timers on or off.
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether the timers run.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var_os("BYSTACK_PSWV_PROFILE").is_some_and(|v| v != "0");
            set_enabled(on);
            on
        }
        state => state == 2,
    }
}

/// One stage's totals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageTime {
    /// The stage.
    pub stage: Stage,
    /// Wall-clock seconds summed over its calls.
    pub seconds: f64,
    /// How many times it ran.
    pub calls: u64,
}

/// The totals since the last call (stages that never ran are left out), and resets them.
pub fn take() -> Vec<StageTime> {
    Stage::ALL
        .iter()
        .filter_map(|&stage| {
            let nanos = NANOS[stage as usize].swap(0, Ordering::Relaxed);
            let calls = CALLS[stage as usize].swap(0, Ordering::Relaxed);
            (calls > 0).then_some(StageTime {
                stage,
                seconds: nanos as f64 * 1e-9,
                calls,
            })
        })
        .collect()
}

/// Times its stage until dropped (nothing when the timers are off).
#[derive(Debug)]
#[must_use = "the stage is timed until the span is dropped"]
pub(crate) struct Span(Option<(Stage, Instant)>);

/// Starts timing `stage`.
pub(crate) fn span(stage: Stage) -> Span {
    Span(enabled().then(|| (stage, Instant::now())))
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((stage, start)) = self.0 {
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            NANOS[stage as usize].fetch_add(nanos, Ordering::Relaxed);
            CALLS[stage as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}
