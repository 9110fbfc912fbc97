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
//! **The two timed paths**, over the whole measured range:
//! * PSWV: [`validate_and_commit`] per window of `window` consecutive blocks, carrying the
//!   context and the store from window to window (one write batch per window).
//! * sequential: [`sequential::validate_and_apply`] one block at a time (one batch per block).
//!   This is the engine's oracle: it validates the transactions *of one block serially*
//!   (`validation::validate_txs` is a plain loop), whereas Bytom runs the stateless checks of
//!   one block's transactions in parallel. The bench cannot parallelise inside the oracle
//!   without changing the engine; the Bytom-like baseline ("parallel only within one block,
//!   one commit per block") is PSWV with `--window 1`, reported as its own row.
//!
//! **Transactions counted** are every transaction of the measured blocks, coinbases included
//! (`measured_txs`); `tx/s = measured_txs / median seconds`.
//!
//! **Equality check, outside the timings**: after the runs, both paths must have accepted
//! every block and end with the same UTXO entries, the same transaction statuses and the same
//! chain context; `states_equal` reports it.
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
use bystack_engine::pswv::{sequential, validate_and_commit, ChainContext, WindowFailure};
use bystack_engine::validation::{
    BlockResult, MemoryUtxoStore, PowCheck, SkipPow, TensorityPow, UtxoError, UtxoView,
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
    /// Both paths accepted every block and ended with equal entries, statuses and context.
    pub states_equal: bool,
    /// Seconds of every PSWV run.
    pub pswv_repeats_seconds: Vec<f64>,
    /// Seconds of every sequential run (shared by all window sizes of one invocation).
    pub sequential_repeats_seconds: Vec<f64>,
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
    /// The measured blocks.
    pub blocks: Vec<Block>,
    /// Blocks validated before them.
    pub warmup_blocks: usize,
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
        blocks: measured,
        warmup_blocks: warmup.len(),
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

/// One PSWV run over the whole range, windows of `window` blocks. Returns the elapsed
/// seconds (the store clone is made before the clock starts) and the end state.
///
/// # Errors
/// [`PswvBenchError::Rejected`] or [`PswvBenchError::Store`].
pub fn run_pswv(
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

/// One sequential run (the engine's oracle, one block and one batch at a time).
///
/// # Errors
/// [`PswvBenchError::Rejected`].
pub fn run_sequential(chain: &PreparedChain, pow: &dyn PowCheck) -> Result<(f64, EndState)> {
    let mut store = chain.store.clone();
    let start = Instant::now();
    let outcome =
        sequential::validate_and_apply(&chain.blocks, &mut store, &chain.context, chain.now, pow);
    let seconds = start.elapsed().as_secs_f64();
    if let Some(failure) = &outcome.failure {
        return Err(rejected("sequential", &chain.blocks, failure));
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

/// Generates the chain once, then for each repeat times the sequential path and PSWV at every
/// window size (interleaved, so that load on a shared machine hits both alike), all inside one
/// rayon pool of `config.threads`. Calls `report` once per window size.
///
/// # Errors
/// A bad configuration, a pool or backend that cannot be built, or a rejected block.
pub fn run(config: &PswvConfig, mut report: impl FnMut(&PswvResult)) -> Result<Vec<PswvResult>> {
    config.validate()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .map_err(|source| PswvBenchError::Pool {
            threads: config.threads,
            source,
        })?;
    let pow: Box<dyn PowCheck + Sync> = match config.pow {
        PowMode::None => Box::new(SkipPow),
        PowMode::Cpu => Box::new(MeasureOnlyPow::open("cpu")?),
    };
    let chain = prepare_chain(config.blocks, config.txs_per_block, config.seed)?;
    let txs = chain.txs();
    let (sequential_seconds, pswv_seconds, equal) = pool.install(|| {
        let mut sequential_seconds = Vec::with_capacity(config.repeats);
        let mut pswv_seconds = vec![Vec::with_capacity(config.repeats); config.windows.len()];
        let mut equal = vec![true; config.windows.len()];
        for _ in 0..config.repeats {
            let (s, reference) = run_sequential(&chain, pow.as_ref())?;
            sequential_seconds.push(s);
            for (i, &window) in config.windows.iter().enumerate() {
                let (p, state) = run_pswv(&chain, window, pow.as_ref())?;
                pswv_seconds[i].push(p);
                equal[i] &= state == reference;
            }
        }
        Ok::<_, PswvBenchError>((sequential_seconds, pswv_seconds, equal))
    })?;
    let seq = crate::median(&sequential_seconds).unwrap_or(f64::NAN);
    let rate = |count: usize, seconds: f64| count as f64 / seconds;
    let mut results = Vec::with_capacity(config.windows.len());
    for ((&window, seconds), states_equal) in config.windows.iter().zip(pswv_seconds).zip(equal) {
        let p = crate::median(&seconds).unwrap_or(f64::NAN);
        let result = PswvResult {
            window,
            blocks: chain.blocks.len(),
            txs_per_block: config.txs_per_block,
            measured_txs: txs,
            warmup_blocks: chain.warmup_blocks,
            threads: config.threads,
            pow: config.pow.name(),
            repeats: config.repeats,
            pswv_blocks_per_second: rate(chain.blocks.len(), p),
            pswv_tx_per_second: rate(txs, p),
            sequential_blocks_per_second: rate(chain.blocks.len(), seq),
            sequential_tx_per_second: rate(txs, seq),
            ratio: seq / p,
            states_equal,
            pswv_repeats_seconds: seconds,
            sequential_repeats_seconds: sequential_seconds.clone(),
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
        assert!(chain.warmup_blocks >= WARMUP_BLOCKS);
        assert_eq!(
            chain.blocks[0].transactions.len(),
            4,
            "the first measured block is full"
        );
        let (_, reference) = run_sequential(&chain, &SkipPow).unwrap();
        for window in [1, 5, 12, 64] {
            let (_, state) = run_pswv(&chain, window, &SkipPow).unwrap();
            assert!(state == reference, "window {window}");
        }
        assert_ne!(reference.store, chain.store, "the range changes the state");
    }
}
