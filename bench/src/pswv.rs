//! `bystack-bench pswv`: PSWV (parallel sliding-window validation) against the sequential
//! path, on one generated devnet chain, in one process, on one rayon pool.
//!
//! **Inputs, outside every timing.** A [`ChainGenerator`] (fixed seed, [`Adversity::none`])
//! grows the chain once. Its first [`WARMUP_BLOCKS`] blocks hold only coinbases (the wallet has
//! no mature coins yet), so they form a warm-up prefix; the prefix is extended, by at most
//! [`MAX_EXTRA_WARMUP`] blocks, until a block carries all `txs_per_block` ordinary
//! transactions. The next `blocks` blocks are the measured range. The prefix is validated once
//! (sequential path, [`SkipPow`]) to get the base state: a [`MemoryUtxoStore`] and the
//! [`ChainContext`] at the start of the measured range. Each timed run starts from a fresh
//! clone of that base.
//!
//! **The timed paths**, over the whole measured range:
//! * PSWV: [`validate_and_commit_windows`] over windows of `window` consecutive blocks: one
//!   write batch per window, window k+1's stages 0–3 running while window k's UTXO stage
//!   folds and its batch is written (the design's sliding pipeline).
//! * sequential, the baseline of `ratio`: [`sequential::validate_and_apply`] one block at a
//!   time (one batch per block), as Bytom syncs: the transactions *of one block* are validated
//!   concurrently on the same pool (Bytom's `ValidateTxs`), blocks strictly one after another.
//! * serial: [`sequential::validate_and_apply_serial`], the same path with every transaction
//!   validated on one thread; reported as `serial_tx_per_second` and `serial_ratio` so that
//!   the gain of per-block parallelism is visible.
//!
//! **Transactions counted** are every transaction of the measured blocks, coinbases included
//! (`measured_txs`); `tx/s = measured_txs / median seconds`.
//!
//! **Equality check, outside the timings**: after the runs, every path must have accepted
//! every block and end with the same UTXO entries, the same transaction statuses and the same
//! chain context; `states_equal` reports it.
//!
//! **Stage timers.** With `BYSTACK_PSWV_PROFILE=1` in the environment, the engine's
//! [`profile`] timers run and each result carries `stage_seconds`: per window size, the mean
//! seconds per run of every PSWV stage, and of every sequential stage. The timers cost a few
//! `Instant::now` calls per block; leave them off for the reported figures. The results then
//! also carry `bounds` ([`ParallelismBound`]): from every transaction's validation time alone,
//! how far per-block parallelism falls short of whole-window parallelism at 2–16 threads.
//!
//! **Proof of work.** Generated blocks are not mined (nonce 0), so a real PoW check rejects
//! them. `--pow none` uses [`SkipPow`]; `--pow cpu` uses [`MeasureOnlyPow`], which computes the
//! Tensority hash of every block with a `bystack_kernels` backend but accepts every block: it
//! measures the cost of the proof of work, not its verdict.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bystack_engine::devnet::{Adversity, ChainGenerator, GeneratorConfig};
use bystack_engine::pow::meets_bits;
use bystack_engine::pswv::{
    profile, sequential, validate_and_commit, validate_and_commit_windows, ChainContext,
    WindowFailure, WindowOutcome,
};
use bystack_engine::validation::{
    validate_tx, BlockContext, BlockResult, MemoryUtxoStore, PowCheck, SkipPow, TensorityPow,
    UtxoError, UtxoView,
};
use bystack_engine::{Block, Hash};
use bystack_kernels::backend::BackendError;
use bystack_kernels::{open_backend, TensorityBackend};
use serde::Serialize;
use thiserror::Error;

/// Leading blocks the generator fills with coinbases only (its wallet's coins mature at 100).
pub const WARMUP_BLOCKS: usize = 100;

/// The most blocks added to the warm-up prefix while the wallet cannot yet fund a full block.
pub const MAX_EXTRA_WARMUP: usize = 2_000;

/// The largest `--blocks` the command accepts.
pub const MAX_BLOCKS: usize = 1_000_000;

/// The largest `--txs-per-block` the command accepts.
pub const MAX_TXS_PER_BLOCK: usize = 100_000;

/// The generator seed (fixed so that every run measures the same chain).
pub const DEFAULT_SEED: u64 = 0x7073_7776_2d62_656e; // "pswv-ben"

/// Why the PSWV benchmark stopped.
#[derive(Debug, Error)]
pub enum PswvBenchError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The rayon pool could not be built.
    #[error("building a rayon pool of {threads} threads: {source}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// Rayon's error.
        source: rayon::ThreadPoolBuildError,
    },
    /// The Tensority backend could not be opened.
    #[error("opening the tensority backend {name:?}: {source}")]
    Backend {
        /// The backend name.
        name: String,
        /// The kernels' error.
        source: BackendError,
    },
    /// The genesis outputs could not be stored.
    #[error("storing the genesis outputs: {0}")]
    Genesis(UtxoError),
    /// A path rejected a block of the generated chain (which has no adversarial features).
    #[error("{path} rejected block {height}: {error}")]
    Rejected {
        /// `warm-up`, `pswv` or `sequential`.
        path: &'static str,
        /// The block's height.
        height: u64,
        /// The engine's error, as text.
        error: String,
    },
    /// A window's batch could not be written.
    #[error("pswv: store failure: {0}")]
    Store(UtxoError),
}

/// Result alias of this module.
pub type Result<T, E = PswvBenchError> = std::result::Result<T, E>;

/// Which proof-of-work check the runs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowMode {
    /// [`SkipPow`]: no hash at all.
    None,
    /// [`MeasureOnlyPow`] on the best CPU backend: every hash computed, every block accepted.
    Cpu,
}

impl PowMode {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            PowMode::None => "none",
            PowMode::Cpu => "cpu",
        }
    }
}

impl std::str::FromStr for PowMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(PowMode::None),
            "cpu" => Ok(PowMode::Cpu),
            other => Err(format!("unknown --pow {other:?} (expected cpu or none)")),
        }
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct PswvConfig {
    /// Measured blocks (after the warm-up prefix).
    pub blocks: usize,
    /// Ordinary transactions per generated block (the coinbase comes on top).
    pub txs_per_block: usize,
    /// Window sizes, in blocks.
    pub windows: Vec<usize>,
    /// Rayon pool size.
    pub threads: usize,
    /// Proof-of-work check.
    pub pow: PowMode,
    /// Timed runs per path (medians are reported).
    pub repeats: usize,
    /// Generator seed.
    pub seed: u64,
}

impl PswvConfig {
    /// The `--smoke` configuration: 20 blocks × 3 txs, window 8, one repeat.
    pub fn smoke(threads: usize, pow: PowMode) -> Self {
        PswvConfig {
            blocks: 20,
            txs_per_block: 3,
            windows: vec![8],
            threads,
            pow,
            repeats: 1,
            seed: DEFAULT_SEED,
        }
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`PswvBenchError::Config`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(PswvBenchError::Config(msg));
        if self.blocks == 0 || self.blocks > MAX_BLOCKS {
            return bad(format!(
                "--blocks must be in 1..={MAX_BLOCKS}, got {}",
                self.blocks
            ));
        }
        if self.txs_per_block > MAX_TXS_PER_BLOCK {
            return bad(format!(
                "--txs-per-block must be at most {MAX_TXS_PER_BLOCK}, got {}",
                self.txs_per_block
            ));
        }
        if self.windows.is_empty() {
            return bad("--window needs at least one size".into());
        }
        if let Some(&w) = self.windows.iter().find(|&&w| w == 0) {
            return bad(format!("--window values must be at least 1, got {w}"));
        }
        if self.threads == 0 {
            return bad("--threads must be at least 1, got 0".into());
        }
        if self.repeats == 0 {
            return bad("--repeats must be at least 1, got 0".into());
        }
        Ok(())
    }
}

/// One measured window size.
#[derive(Debug, Clone, Serialize)]
pub struct PswvResult {
    /// Window size, blocks.
    pub window: usize,
    /// Measured blocks.
    pub blocks: usize,
    /// Ordinary transactions per block asked of the generator.
    pub txs_per_block: usize,
    /// Transactions of the measured blocks, coinbases included.
    pub measured_txs: usize,
    /// Blocks validated before the measured range to build the base state.
    pub warmup_blocks: usize,
    /// Rayon pool size.
    pub threads: usize,
    /// `none` or `cpu`.
    pub pow: &'static str,
    /// Timed runs per path.
    pub repeats: usize,
    /// Median PSWV blocks per second.
    pub pswv_blocks_per_second: f64,
    /// Median PSWV transactions per second.
    pub pswv_tx_per_second: f64,
    /// Median sequential blocks per second.
    pub sequential_blocks_per_second: f64,
    /// Median sequential transactions per second.
    pub sequential_tx_per_second: f64,
    /// `pswv_tx_per_second / sequential_tx_per_second`.
    pub ratio: f64,
    /// Median transactions per second of the serial path (one thread for everything).
    pub serial_tx_per_second: f64,
    /// `pswv_tx_per_second / serial_tx_per_second`.
    pub serial_ratio: f64,
    /// Every path accepted every block and ended with equal entries, statuses and context.
    pub states_equal: bool,
    /// Seconds of every PSWV run.
    pub pswv_repeats_seconds: Vec<f64>,
    /// Seconds of every sequential run (shared by all window sizes of one invocation).
    pub sequential_repeats_seconds: Vec<f64>,
    /// Seconds of every serial run (shared by all window sizes of one invocation).
    pub serial_repeats_seconds: Vec<f64>,
    /// With `BYSTACK_PSWV_PROFILE` set: mean seconds per run of each stage (`pswv.*` for this
    /// window size, `seq.*` for the sequential path), else empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stage_seconds: Vec<(String, f64)>,
    /// With `BYSTACK_PSWV_PROFILE` set: the load-balance bounds of the measured chain for
    /// `threads` and [`BOUND_THREADS`] (see [`ParallelismBound`]), else empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bounds: Vec<ParallelismBound>,
    /// Seconds spent generating the chain (not timed work).
    pub generation_seconds: f64,
    /// Generator seed.
    pub seed: u64,
}

/// A [`PowCheck`] that computes the Tensority hash of every block and **accepts every block**:
/// generated devnet blocks are not mined, so the real verdict would reject them. It measures
/// the cost of the proof of work, never its verdict; a node must use
/// [`TensorityPow`](bystack_engine::validation::TensorityPow).
pub struct MeasureOnlyPow {
    pow: TensorityPow,
    hashes: AtomicU64,
    would_pass: AtomicU64,
}

impl std::fmt::Debug for MeasureOnlyPow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeasureOnlyPow")
            .field("pow", &self.pow)
            .field("hashes", &self.hashes())
            .finish_non_exhaustive()
    }
}

impl MeasureOnlyPow {
    /// Wraps `backend` (through the engine's [`TensorityPow`], which keeps the two most recent
    /// seeds prepared).
    pub fn new(backend: Box<dyn TensorityBackend>) -> Self {
        MeasureOnlyPow {
            pow: TensorityPow::new(backend),
            hashes: AtomicU64::new(0),
            would_pass: AtomicU64::new(0),
        }
    }

    /// Opens the kernels backend `name` (`auto`, `cpu`, `reference`, …). Single hashes do not
    /// use the backend's worker threads, so one is asked for.
    ///
    /// # Errors
    /// [`PswvBenchError::Backend`] when the backend is unknown or cannot run here.
    pub fn open(name: &str) -> Result<Self> {
        let backend = open_backend(name, 1).map_err(|source| PswvBenchError::Backend {
            name: name.to_string(),
            source,
        })?;
        Ok(MeasureOnlyPow::new(backend))
    }

    /// Hashes computed so far.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }

    /// Of those, how many met their block's bits (what the real check would have accepted).
    pub fn would_pass(&self) -> u64 {
        self.would_pass.load(Ordering::Relaxed)
    }
}

impl PowCheck for MeasureOnlyPow {
    /// Computes Tensority(`block_hash`, `seed`) and returns `Ok(true)` whatever the result.
    fn check(&self, block_hash: &Hash, seed: &Hash, bits: u64) -> BlockResult<bool> {
        let pow = self.pow.tensority(block_hash, seed)?;
        self.hashes.fetch_add(1, Ordering::Relaxed);
        if meets_bits(black_box(&pow), bits) {
            self.would_pass.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }
}

/// The generated chain and the state at the start of its measured range.
#[derive(Debug, Clone)]
pub struct PreparedChain {
    /// The devnet genesis block the chain grows from.
    pub genesis: Block,
    /// The warm-up prefix: the blocks validated before the measured range.
    pub warmup: Vec<Block>,
    /// The measured blocks.
    pub blocks: Vec<Block>,
    /// The UTXO set after the warm-up prefix.
    pub store: MemoryUtxoStore,
    /// The chain context after the warm-up prefix.
    pub context: ChainContext,
    /// The validation clock.
    pub now: u64,
    /// Seconds spent generating.
    pub generation_seconds: f64,
}

impl PreparedChain {
    /// Transactions of the measured blocks, coinbases included.
    pub fn txs(&self) -> usize {
        self.blocks.iter().map(|b| b.transactions.len()).sum()
    }

    /// How many blocks the warm-up prefix holds.
    pub fn warmup_blocks(&self) -> usize {
        self.warmup.len()
    }
}

fn rejected(path: &'static str, blocks: &[Block], failure: &WindowFailure) -> PswvBenchError {
    PswvBenchError::Rejected {
        path,
        height: blocks
            .get(failure.index)
            .map_or(0, |b: &Block| b.header.height),
        error: failure.error.to_string(),
    }
}

/// Generates the warm-up prefix and `blocks` measured blocks of `txs_per_block` transactions,
/// then validates the prefix once to build the base state.
///
/// # Errors
/// [`PswvBenchError::Genesis`], or [`PswvBenchError::Rejected`] if the prefix does not
/// validate.
pub fn prepare_chain(blocks: usize, txs_per_block: usize, seed: u64) -> Result<PreparedChain> {
    let start = Instant::now();
    let mut generator = ChainGenerator::new(GeneratorConfig {
        seed,
        txs_per_block,
        adversity: Adversity::none(),
    });
    let mut warmup = Vec::with_capacity(WARMUP_BLOCKS);
    let mut measured = Vec::with_capacity(blocks);
    while measured.len() < blocks {
        let block = generator.next_block().block;
        let full = block.transactions.len() > txs_per_block;
        let in_warmup = measured.is_empty()
            && (warmup.len() < WARMUP_BLOCKS
                || (!full && warmup.len() < WARMUP_BLOCKS + MAX_EXTRA_WARMUP));
        if in_warmup {
            warmup.push(block);
        } else {
            measured.push(block);
        }
    }
    let generation_seconds = start.elapsed().as_secs_f64();
    let now = generator.now();
    let genesis = generator.genesis();
    let mut store = MemoryUtxoStore::new();
    let mut view = UtxoView::new();
    view.apply_block_with_status(genesis, &vec![false; genesis.transactions.len()])
        .map_err(PswvBenchError::Genesis)?;
    view.save(&mut store).map_err(PswvBenchError::Genesis)?;
    let outcome = sequential::validate_and_apply(
        &warmup,
        &mut store,
        &ChainContext::genesis(genesis),
        now,
        &SkipPow,
    );
    if let Some(failure) = &outcome.failure {
        return Err(rejected("warm-up", &warmup, failure));
    }
    Ok(PreparedChain {
        genesis: genesis.clone(),
        warmup,
        blocks: measured,
        store,
        context: outcome.next,
        now,
        generation_seconds,
    })
}

/// What one path leaves behind, for the equality check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndState {
    /// The UTXO set.
    pub store: MemoryUtxoStore,
    /// Every block's statuses.
    pub statuses: Vec<Vec<bool>>,
    /// The context after the last block.
    pub context: ChainContext,
}

/// One PSWV run over the whole range, windows of `window` blocks, through the engine's
/// sliding pipeline ([`validate_and_commit_windows`]: one batch per window, window k+1's
/// stages 0–3 beside window k's UTXO stage and commit). Returns the elapsed seconds (the
/// store clone is made before the clock starts) and the end state.
///
/// # Errors
/// [`PswvBenchError::Rejected`].
pub fn run_pswv(
    chain: &PreparedChain,
    window: usize,
    pow: &(dyn PowCheck + Sync),
) -> Result<(f64, EndState)> {
    let mut store = chain.store.clone();
    let start = Instant::now();
    let outcome = validate_and_commit_windows(
        &chain.blocks,
        window,
        &mut store,
        &chain.context,
        chain.now,
        pow,
    );
    let seconds = start.elapsed().as_secs_f64();
    if let Some(failure) = &outcome.failure {
        return Err(rejected("pswv", &chain.blocks, failure));
    }
    Ok((
        seconds,
        EndState {
            store,
            statuses: outcome.statuses,
            context: outcome.next,
        },
    ))
}

/// [`run_pswv`] without the pipeline: [`validate_and_commit`] window after window, each
/// window's stages strictly after the previous window's commit.
///
/// # Errors
/// [`PswvBenchError::Rejected`] or [`PswvBenchError::Store`].
pub fn run_pswv_unpipelined(
    chain: &PreparedChain,
    window: usize,
    pow: &(dyn PowCheck + Sync),
) -> Result<(f64, EndState)> {
    let mut store = chain.store.clone();
    let mut context = chain.context.clone();
    let mut statuses = Vec::with_capacity(chain.blocks.len());
    let start = Instant::now();
    for blocks in chain.blocks.chunks(window.max(1)) {
        let outcome = validate_and_commit(blocks, &mut store, &context, chain.now, pow)
            .map_err(PswvBenchError::Store)?;
        if let Some(failure) = &outcome.failure {
            return Err(rejected("pswv", blocks, failure));
        }
        statuses.extend(outcome.statuses);
        context = outcome.next;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((
        seconds,
        EndState {
            store,
            statuses,
            context,
        },
    ))
}

/// One run of the sequential path (one block and one batch at a time, each block's
/// transactions validated concurrently on the current pool).
///
/// # Errors
/// [`PswvBenchError::Rejected`].
pub fn run_sequential(chain: &PreparedChain, pow: &dyn PowCheck) -> Result<(f64, EndState)> {
    run_blockwise(chain, pow, "sequential", sequential::validate_and_apply)
}

/// One run of the serial path (the sequential path on one thread).
///
/// # Errors
/// [`PswvBenchError::Rejected`].
pub fn run_serial(chain: &PreparedChain, pow: &dyn PowCheck) -> Result<(f64, EndState)> {
    run_blockwise(chain, pow, "serial", sequential::validate_and_apply_serial)
}

type Blockwise = fn(
    &[Block],
    &mut dyn bystack_engine::validation::UtxoStore,
    &ChainContext,
    u64,
    &dyn PowCheck,
) -> WindowOutcome;

fn run_blockwise(
    chain: &PreparedChain,
    pow: &dyn PowCheck,
    path: &'static str,
    validate: Blockwise,
) -> Result<(f64, EndState)> {
    let mut store = chain.store.clone();
    let start = Instant::now();
    let outcome = validate(&chain.blocks, &mut store, &chain.context, chain.now, pow);
    let seconds = start.elapsed().as_secs_f64();
    if let Some(failure) = &outcome.failure {
        return Err(rejected(path, &chain.blocks, failure));
    }
    Ok((
        seconds,
        EndState {
            store,
            statuses: outcome.statuses,
            context: outcome.next,
        },
    ))
}

/// Adds the stage timers' totals since the last call to `into`.
pub(crate) fn add_stages(into: &mut Vec<(String, f64)>) {
    for t in profile::take() {
        let name = t.stage.name();
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, s)) => *s += t.seconds,
            None => into.push((name.to_string(), t.seconds)),
        }
    }
}

/// What per-block parallelism can reach on the measured chain, from the time of every
/// transaction's `validate_tx` measured alone on one thread (the fastest of three runs): with `threads` threads and no
/// overhead at all, the sequential path needs at least the sum over blocks of each block's
/// makespan (its transactions spread over the threads, longest first), and a whole-window
/// path at least the total over `threads`. Their quotient, `cap`, bounds `ratio` from above
/// for the transaction work (both paths run every `validate_tx`; only the grouping differs).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ParallelismBound {
    /// Threads assumed.
    pub threads: usize,
    /// Sum of every transaction's `validate_tx` time, seconds.
    pub tx_seconds: f64,
    /// Sum over blocks of the block's makespan on `threads` threads, seconds.
    pub per_block_makespan_seconds: f64,
    /// `tx_seconds / threads`.
    pub window_makespan_seconds: f64,
    /// `per_block_makespan_seconds / window_makespan_seconds`.
    pub cap: f64,
}

/// Thread counts [`parallelism_bounds`] reports besides the configured one.
pub const BOUND_THREADS: [usize; 4] = [2, 4, 8, 16];

/// Measures [`ParallelismBound`] for `threads` and for every count of [`BOUND_THREADS`], on
/// the calling thread (not timed work).
pub fn parallelism_bounds(chain: &PreparedChain, threads: usize) -> Vec<ParallelismBound> {
    let mut counts: Vec<usize> = BOUND_THREADS.to_vec();
    counts.push(threads.max(1));
    counts.sort_unstable();
    counts.dedup();
    let mut total = 0.0;
    let mut per_block = vec![0.0; counts.len()];
    for block in &chain.blocks {
        let mut times: Vec<f64> = block
            .transactions
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                let context = BlockContext {
                    version: block.header.version,
                    height: block.header.height,
                    tx_index: Some(i),
                };
                // The fastest of three runs: preemption on a shared machine only adds.
                (0..3)
                    .map(|_| {
                        let start = Instant::now();
                        black_box(validate_tx(black_box(tx), &context));
                        start.elapsed().as_secs_f64()
                    })
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        total += times.iter().sum::<f64>();
        // Longest first onto the least loaded thread: optimal for up to threads + 1
        // transactions, within 4/3 of optimal beyond (where it is close to total / threads).
        times.sort_by(|a, b| b.total_cmp(a));
        for (&n, sum) in counts.iter().zip(&mut per_block) {
            let mut loads = vec![0.0f64; n];
            for &t in &times {
                if let Some(least) = loads.iter_mut().min_by(|a, b| a.total_cmp(b)) {
                    *least += t;
                }
            }
            *sum += loads.into_iter().fold(0.0, f64::max);
        }
    }
    counts
        .into_iter()
        .zip(per_block)
        .map(|(threads, per_block)| {
            let window = total / threads as f64;
            ParallelismBound {
                threads,
                tx_seconds: total,
                per_block_makespan_seconds: per_block,
                window_makespan_seconds: window,
                cap: per_block / window,
            }
        })
        .collect()
}

/// The rayon pool every timed path runs in.
pub(crate) fn build_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| PswvBenchError::Pool { threads, source })
}

/// A timed path.
#[derive(Debug, Clone, Copy)]
enum Path {
    Sequential,
    Serial,
    /// PSWV at the window size of this index.
    Pswv(usize),
}

/// Every timing of one invocation.
struct Timings {
    sequential: Vec<f64>,
    serial: Vec<f64>,
    pswv: Vec<Vec<f64>>,
    equal: Vec<bool>,
    seq_stages: Vec<(String, f64)>,
    pswv_stages: Vec<Vec<(String, f64)>>,
}

/// Generates the chain once, then for each repeat times the sequential path, the serial path
/// and PSWV at every window size (interleaved, in an order rotated from repeat to repeat, so
/// that load on a shared machine hits them alike), all inside one rayon pool of
/// `config.threads`. Calls `report` once per window size.
///
/// # Errors
/// A bad configuration, a pool or backend that cannot be built, or a rejected block.
pub fn run(config: &PswvConfig, mut report: impl FnMut(&PswvResult)) -> Result<Vec<PswvResult>> {
    config.validate()?;
    let pool = build_pool(config.threads)?;
    let pow: Box<dyn PowCheck + Sync> = match config.pow {
        PowMode::None => Box::new(SkipPow),
        PowMode::Cpu => Box::new(MeasureOnlyPow::open("cpu")?),
    };
    let chain = prepare_chain(config.blocks, config.txs_per_block, config.seed)?;
    let txs = chain.txs();
    let profiling = profile::enabled();
    let bounds = if profiling {
        parallelism_bounds(&chain, config.threads)
    } else {
        Vec::new()
    };
    let _ = profile::take();
    let timed = pool.install(|| {
        let mut t = Timings {
            sequential: Vec::with_capacity(config.repeats),
            serial: Vec::with_capacity(config.repeats),
            pswv: vec![Vec::with_capacity(config.repeats); config.windows.len()],
            equal: vec![true; config.windows.len()],
            seq_stages: Vec::new(),
            pswv_stages: vec![Vec::new(); config.windows.len()],
        };
        // Every path once per repeat, the order rotated from repeat to repeat so that a drift
        // in the machine's load or state favours none of them.
        let mut paths = vec![Path::Sequential, Path::Serial];
        paths.extend((0..config.windows.len()).map(Path::Pswv));
        for repeat in 0..config.repeats {
            let mut reference: Option<EndState> = None;
            let mut differs = vec![false; paths.len()];
            for k in 0..paths.len() {
                let at = (k + repeat) % paths.len();
                let _ = profile::take();
                let (_, state) = match paths[at] {
                    Path::Sequential => {
                        let run = run_sequential(&chain, pow.as_ref())?;
                        t.sequential.push(run.0);
                        add_stages(&mut t.seq_stages);
                        run
                    }
                    Path::Serial => {
                        let run = run_serial(&chain, pow.as_ref())?;
                        t.serial.push(run.0);
                        run
                    }
                    Path::Pswv(i) => {
                        let run = run_pswv(&chain, config.windows[i], pow.as_ref())?;
                        t.pswv[i].push(run.0);
                        add_stages(&mut t.pswv_stages[i]);
                        run
                    }
                };
                match &reference {
                    Some(r) => differs[at] = *r != state,
                    None => reference = Some(state),
                }
            }
            // Paths 0 and 1 (sequential, serial) underlie every window's comparison.
            let base_differs = differs[0] || differs[1];
            for (i, equal) in t.equal.iter_mut().enumerate() {
                *equal &= !base_differs && !differs[2 + i];
            }
        }
        Ok::<_, PswvBenchError>(t)
    })?;
    let Timings {
        sequential: sequential_seconds,
        serial: serial_seconds,
        pswv: pswv_seconds,
        equal,
        seq_stages,
        pswv_stages,
    } = timed;
    let per_run = |stages: &[(String, f64)]| -> Vec<(String, f64)> {
        stages
            .iter()
            .map(|(n, s)| (n.clone(), s / config.repeats as f64))
            .collect()
    };
    let seq = crate::median(&sequential_seconds).unwrap_or(f64::NAN);
    let serial = crate::median(&serial_seconds).unwrap_or(f64::NAN);
    let rate = |count: usize, seconds: f64| count as f64 / seconds;
    let mut results = Vec::with_capacity(config.windows.len());
    for (((&window, seconds), states_equal), stages) in config
        .windows
        .iter()
        .zip(pswv_seconds)
        .zip(equal)
        .zip(pswv_stages)
    {
        let p = crate::median(&seconds).unwrap_or(f64::NAN);
        let result = PswvResult {
            window,
            blocks: chain.blocks.len(),
            txs_per_block: config.txs_per_block,
            measured_txs: txs,
            warmup_blocks: chain.warmup_blocks(),
            threads: config.threads,
            pow: config.pow.name(),
            repeats: config.repeats,
            pswv_blocks_per_second: rate(chain.blocks.len(), p),
            pswv_tx_per_second: rate(txs, p),
            sequential_blocks_per_second: rate(chain.blocks.len(), seq),
            sequential_tx_per_second: rate(txs, seq),
            ratio: seq / p,
            serial_tx_per_second: rate(txs, serial),
            serial_ratio: serial / p,
            states_equal,
            pswv_repeats_seconds: seconds,
            sequential_repeats_seconds: sequential_seconds.clone(),
            serial_repeats_seconds: serial_seconds.clone(),
            stage_seconds: if profiling {
                per_run(&stages)
                    .into_iter()
                    .chain(per_run(&seq_stages))
                    .collect()
            } else {
                Vec::new()
            },
            bounds: bounds.clone(),
            generation_seconds: chain.generation_seconds,
            seed: config.seed,
        };
        report(&result);
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bystack_kernels::backend::SearchOutcome;
    use bystack_kernels::pow::{HeaderTemplate, Target};
    use bystack_kernels::{BackendInfo, PreparedSeed};
    use std::ops::Range;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// A backend whose "hash" is the header hash itself, counting seed preparations.
    struct EchoBackend {
        prepares: Arc<AtomicU64>,
    }

    struct EchoSeed([u8; 32]);

    impl PreparedSeed for EchoSeed {
        fn seed(&self) -> &[u8; 32] {
            &self.0
        }
        fn hash(&self, header_hash: &[u8; 32]) -> bystack_kernels::backend::Result<[u8; 32]> {
            Ok(*header_hash)
        }
        fn search(
            &self,
            _: &HeaderTemplate,
            _: Range<u64>,
            _: &Target,
            _: &AtomicBool,
        ) -> bystack_kernels::backend::Result<SearchOutcome> {
            Ok(SearchOutcome::default())
        }
    }

    impl TensorityBackend for EchoBackend {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                name: "echo".into(),
                device: String::new(),
                kernel: "echo".into(),
                parallelism: 1,
                capabilities: Vec::new(),
                available: true,
                description: "test double".into(),
            }
        }
        fn prepare(
            &self,
            seed: &[u8; 32],
        ) -> bystack_kernels::backend::Result<Arc<dyn PreparedSeed>> {
            self.prepares.fetch_add(1, Ordering::Relaxed);
            Ok(Arc::new(EchoSeed(*seed)))
        }
    }

    fn echo() -> (MeasureOnlyPow, Arc<AtomicU64>) {
        let prepares = Arc::new(AtomicU64::new(0));
        let pow = MeasureOnlyPow::new(Box::new(EchoBackend {
            prepares: Arc::clone(&prepares),
        }));
        (pow, prepares)
    }

    #[test]
    fn measure_only_pow_hashes_everything_and_rejects_nothing() {
        let (pow, _) = echo();
        let seed = Hash([1; 32]);
        // An all-0xff "result" fails any target; all zeros meets every target.
        assert!(pow.check(&Hash([0xff; 32]), &seed, 0x1d00_ffff).unwrap());
        assert!(pow.check(&Hash([0; 32]), &seed, 0x1d00_ffff).unwrap());
        assert_eq!(pow.hashes(), 2);
        assert_eq!(pow.would_pass(), 1);
    }

    #[test]
    fn measure_only_pow_keeps_two_seeds() {
        let (pow, prepares) = echo();
        let (a, b, c) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]));
        for seed in [a, b, a, b, a] {
            pow.check(&Hash::ZERO, &seed, 0).unwrap();
        }
        assert_eq!(
            prepares.load(Ordering::Relaxed),
            2,
            "a window spans two seeds"
        );
        pow.check(&Hash::ZERO, &c, 0).unwrap();
        pow.check(&Hash::ZERO, &b, 0).unwrap();
        assert_eq!(
            prepares.load(Ordering::Relaxed),
            3,
            "the oldest seed goes first"
        );
        pow.check(&Hash::ZERO, &a, 0).unwrap();
        assert_eq!(prepares.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let good = PswvConfig::smoke(1, PowMode::None);
        assert!(good.validate().is_ok());
        for bad in [
            PswvConfig {
                blocks: 0,
                ..good.clone()
            },
            PswvConfig {
                windows: vec![8, 0],
                ..good.clone()
            },
            PswvConfig {
                windows: Vec::new(),
                ..good.clone()
            },
            PswvConfig {
                threads: 0,
                ..good.clone()
            },
            PswvConfig {
                repeats: 0,
                ..good.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(PswvBenchError::Config(_))));
        }
    }

    #[test]
    fn both_paths_agree_on_a_small_chain() {
        let chain = prepare_chain(12, 3, DEFAULT_SEED).unwrap();
        assert_eq!(chain.blocks.len(), 12);
        assert!(chain.warmup_blocks() >= WARMUP_BLOCKS);
        assert_eq!(
            chain.blocks[0].transactions.len(),
            4,
            "the first measured block is full"
        );
        let (_, reference) = run_sequential(&chain, &SkipPow).unwrap();
        let (_, serial) = run_serial(&chain, &SkipPow).unwrap();
        assert!(serial == reference, "serial");
        for window in [1, 5, 12, 64] {
            let (_, state) = run_pswv(&chain, window, &SkipPow).unwrap();
            assert!(state == reference, "window {window}");
            let (_, state) = run_pswv_unpipelined(&chain, window, &SkipPow).unwrap();
            assert!(state == reference, "window {window}, unpipelined");
        }
        assert_ne!(reference.store, chain.store, "the range changes the state");
    }
}
