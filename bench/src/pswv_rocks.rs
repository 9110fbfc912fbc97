//! `bystack-bench pswv --store rocksdb`: the node's two ways of connecting blocks, on a real
//! RocksDB, over the chain that the in-memory benchmark ([`crate::pswv`]) measures.
//!
//! **Inputs, outside every timing.** [`prepare_chain`] generates the warm-up prefix and the
//! measured blocks once. Every timed run then gets a fresh database: a new temporary directory
//! (under `$TMPDIR`, else `/tmp`), [`Store::open_rocksdb`] with [`RocksOptions::default`] (the
//! node's options: write-ahead log fsynced on every commit), a [`Chain`] on it with the devnet
//! genesis and a clock fixed at the generator's, and the warm-up prefix connected in one
//! window with the proof of work skipped. The chain is then closed and opened again with the
//! run's proof-of-work check, and the measured blocks are cloned for the per-block path.
//!
//! **The timed paths**, over the whole measured range, on the same rayon pool:
//! * PSWV: [`Chain::process_window`] over windows of `window` consecutive blocks, each window
//!   validated with PSWV and committed as ONE RocksDB write batch (blocks, statuses, undo data,
//!   main-chain entries, the window's UTXO writes, the tip), one fsync per window.
//! * per-block, the baseline of `ratio`: [`Chain::process_block`] for every block, as the node
//!   connects a block near the tip: the sequential validator (the block's transactions
//!   validated concurrently on the pool), then one write batch and one fsync per block.
//!
//! Both paths write the same records with the same write options; only the grouping into
//! commits and the validation path differ.
//!
//! **Equality check, outside the timings**: after every run, [`Chain::utxo_digest`] of the
//! database must equal the digest of the engine's in-memory sequential path over the same
//! blocks, and the tip must be the last measured block; `states_equal` reports it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bystack_engine::pswv::profile;
use bystack_engine::validation::{PowCheck, SkipPow};
use bystack_engine::{Block, Hash};
use bystack_node::chain::{BlockStatus, Chain, ChainConfig, ChainError};
use bystack_node::store::{utxo_digest, RocksKv, RocksOptions, Store};
use serde::Serialize;
use tempfile::TempDir;

use crate::pswv::{
    add_stages, prepare_chain, run_sequential, MeasureOnlyPow, PowMode, PreparedChain,
    PswvBenchError, PswvConfig, Result,
};

/// Where the chain state lives during the timed runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The engine's in-memory UTXO set ([`crate::pswv::run`]).
    Memory,
    /// The node's chain database on RocksDB ([`run`]).
    Rocksdb,
}

impl StoreKind {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Rocksdb => "rocksdb",
        }
    }
}

impl std::str::FromStr for StoreKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "memory" => Ok(StoreKind::Memory),
            "rocksdb" => Ok(StoreKind::Rocksdb),
            other => Err(format!(
                "unknown --store {other:?} (expected memory or rocksdb)"
            )),
        }
    }
}

/// One measured window size on RocksDB.
#[derive(Debug, Clone, Serialize)]
pub struct RocksPswvResult {
    /// Always `rocksdb`.
    pub store: &'static str,
    /// Window size, blocks.
    pub window: usize,
    /// Measured blocks.
    pub blocks: usize,
    /// Ordinary transactions per block asked of the generator.
    pub txs_per_block: usize,
    /// Transactions of the measured blocks, coinbases included.
    pub measured_txs: usize,
    /// Blocks connected before the measured range (untimed).
    pub warmup_blocks: usize,
    /// Rayon pool size.
    pub threads: usize,
    /// `none` or `cpu`.
    pub pow: &'static str,
    /// Timed runs per path.
    pub repeats: usize,
    /// Whether every commit fsyncs the write-ahead log (the node's default).
    pub sync: bool,
    /// Windows of one PSWV run (`process_window` calls, one commit each).
    pub pswv_windows: usize,
    /// Median PSWV blocks per second.
    pub pswv_blocks_per_second: f64,
    /// Median PSWV transactions per second.
    pub pswv_tx_per_second: f64,
    /// Median per-block blocks per second.
    pub sequential_blocks_per_second: f64,
    /// Median per-block transactions per second.
    pub sequential_tx_per_second: f64,
    /// `pswv_tx_per_second / sequential_tx_per_second`.
    pub ratio: f64,
    /// Every run of both paths accepted every block and ended at the last measured block with
    /// the UTXO digest of the engine's in-memory sequential path.
    pub states_equal: bool,
    /// The expected UTXO digest (hex).
    pub utxo_digest: String,
    /// Seconds of every PSWV run.
    pub pswv_repeats_seconds: Vec<f64>,
    /// Seconds of every per-block run (shared by all window sizes of one invocation).
    pub sequential_repeats_seconds: Vec<f64>,
    /// With `BYSTACK_PSWV_PROFILE` set: mean seconds per PSWV run of the engine's PSWV stages
    /// inside `process_window`, else empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stage_seconds: Vec<(String, f64)>,
    /// Seconds spent generating the chain (not timed work).
    pub generation_seconds: f64,
    /// Generator seed.
    pub seed: u64,
}

fn store_failure(e: impl std::fmt::Display) -> PswvBenchError {
    PswvBenchError::Store(bystack_engine::validation::UtxoError::Store {
        message: e.to_string(),
    })
}

fn chain_failure(path: &'static str, height: u64, error: ChainError) -> PswvBenchError {
    match error {
        ChainError::Store(e) => store_failure(e),
        error => PswvBenchError::Rejected {
            path,
            height,
            error: error.to_string(),
        },
    }
}

/// A fresh database in a new temporary directory, holding the genesis block and the warm-up
/// prefix (connected in one window, proof of work skipped), opened again with `pow`.
///
/// # Errors
/// [`PswvBenchError::Store`] when the directory or the database cannot be made,
/// [`PswvBenchError::Rejected`] if the prefix does not connect.
fn fresh_chain(
    prepared: &PreparedChain,
    pow: &Arc<dyn PowCheck + Send + Sync>,
) -> Result<(TempDir, Chain<RocksKv>)> {
    let dir = tempfile::Builder::new()
        .prefix("bystack-pswv-rocks-")
        .tempdir()
        .map_err(store_failure)?;
    let config = ChainConfig::with_fixed_clock(prepared.now);
    {
        let mut chain = open_chain(dir.path(), prepared, Arc::new(SkipPow), config.clone())?;
        let report = chain
            .process_window(&prepared.warmup)
            .map_err(|e| chain_failure("warm-up", 0, e))?;
        if let Some((index, error)) = report.rejected {
            let height = prepared.warmup.get(index).map_or(0, |b| b.header.height);
            return Err(chain_failure("warm-up", height, error));
        }
    }
    let chain = open_chain(dir.path(), prepared, Arc::clone(pow), config)?;
    Ok((dir, chain))
}

fn open_chain(
    dir: &Path,
    prepared: &PreparedChain,
    pow: Arc<dyn PowCheck + Send + Sync>,
    config: ChainConfig,
) -> Result<Chain<RocksKv>> {
    let store = Store::open_rocksdb(dir, RocksOptions::default()).map_err(store_failure)?;
    Chain::open(store, &prepared.genesis, pow, config).map_err(|e| chain_failure("open", 0, e))
}

/// Whether `chain` ends at the last measured block with the `expected` UTXO digest.
fn ends_as_expected(
    chain: &Chain<RocksKv>,
    prepared: &PreparedChain,
    expected: &Hash,
) -> Result<bool> {
    let last = prepared.blocks.last().map(Block::hash);
    let digest = chain.utxo_digest().map_err(store_failure)?;
    Ok(Some(chain.tip().hash) == last && digest == *expected)
}

/// One PSWV run on a fresh database: [`Chain::process_window`] over windows of `window`
/// blocks. Returns the elapsed seconds and whether the end state is the expected one.
///
/// # Errors
/// [`PswvBenchError::Store`], or [`PswvBenchError::Rejected`] for a rejected block.
pub fn run_pswv_rocks(
    prepared: &PreparedChain,
    window: usize,
    pow: &Arc<dyn PowCheck + Send + Sync>,
    expected: &Hash,
) -> Result<(f64, bool)> {
    let (dir, mut chain) = fresh_chain(prepared, pow)?;
    let start = Instant::now();
    for blocks in prepared.blocks.chunks(window.max(1)) {
        let first = blocks.first().map_or(0, |b| b.header.height);
        let report = chain
            .process_window(blocks)
            .map_err(|e| chain_failure("pswv", first, e))?;
        if let Some((index, error)) = report.rejected {
            return Err(chain_failure("pswv", first + index as u64, error));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let equal = ends_as_expected(&chain, prepared, expected);
    // The database closes before its directory is removed.
    drop(chain);
    drop(dir);
    Ok((seconds, equal?))
}

/// One per-block run on a fresh database: [`Chain::process_block`] for every measured block
/// (cloned before the clock starts, since the chain takes each block by value). Returns the
/// elapsed seconds and whether the end state is the expected one.
///
/// # Errors
/// [`PswvBenchError::Store`], or [`PswvBenchError::Rejected`] for a block that is rejected
/// or does not land on the main chain.
pub fn run_per_block_rocks(
    prepared: &PreparedChain,
    pow: &Arc<dyn PowCheck + Send + Sync>,
    expected: &Hash,
) -> Result<(f64, bool)> {
    let (dir, mut chain) = fresh_chain(prepared, pow)?;
    let blocks = prepared.blocks.clone();
    let start = Instant::now();
    for block in blocks {
        let height = block.header.height;
        let outcome = chain
            .process_block(block)
            .map_err(|e| chain_failure("per-block", height, e))?;
        if outcome.status != BlockStatus::MainChain {
            return Err(PswvBenchError::Rejected {
                path: "per-block",
                height,
                error: format!(
                    "the block ended {:?}, not on the main chain",
                    outcome.status
                ),
            });
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let equal = ends_as_expected(&chain, prepared, expected);
    // The database closes before its directory is removed.
    drop(chain);
    drop(dir);
    Ok((seconds, equal?))
}

/// A timed path.
#[derive(Debug, Clone, Copy)]
enum Timed {
    PerBlock,
    /// PSWV at the window size of this index.
    Pswv(usize),
}

/// Generates the chain once, computes the expected end state with the engine's in-memory
/// sequential path, then for each repeat times the per-block path and PSWV at every window
/// size, each on a fresh database (interleaved, in an order rotated from repeat to repeat),
/// all inside one rayon pool of `config.threads`. Calls `report` once per window size.
///
/// # Errors
/// A bad configuration, a pool, backend or database that cannot be made, or a rejected block.
pub fn run(
    config: &PswvConfig,
    mut report: impl FnMut(&RocksPswvResult),
) -> Result<Vec<RocksPswvResult>> {
    config.validate()?;
    let pool = crate::pswv::build_pool(config.threads)?;
    let pow: Arc<dyn PowCheck + Send + Sync> = match config.pow {
        PowMode::None => Arc::new(SkipPow),
        PowMode::Cpu => Arc::new(MeasureOnlyPow::open("cpu")?),
    };
    let prepared = prepare_chain(config.blocks, config.txs_per_block, config.seed)?;
    let txs = prepared.txs();
    let (_, reference) = pool.install(|| run_sequential(&prepared, &SkipPow))?;
    let expected = utxo_digest(reference.store.entries());
    drop(reference);
    let profiling = profile::enabled();

    let windows = config.windows.len();
    let mut per_block_seconds = Vec::with_capacity(config.repeats);
    let mut pswv_seconds = vec![Vec::with_capacity(config.repeats); windows];
    let mut per_block_equal = true;
    let mut pswv_equal = vec![true; windows];
    let mut stages = vec![Vec::new(); windows];
    let mut paths = vec![Timed::PerBlock];
    paths.extend((0..windows).map(Timed::Pswv));
    pool.install(|| {
        for repeat in 0..config.repeats {
            for k in 0..paths.len() {
                let _ = profile::take();
                match paths[(k + repeat) % paths.len()] {
                    Timed::PerBlock => {
                        let (seconds, equal) = run_per_block_rocks(&prepared, &pow, &expected)?;
                        per_block_seconds.push(seconds);
                        per_block_equal &= equal;
                    }
                    Timed::Pswv(i) => {
                        let (seconds, equal) =
                            run_pswv_rocks(&prepared, config.windows[i], &pow, &expected)?;
                        pswv_seconds[i].push(seconds);
                        pswv_equal[i] &= equal;
                        add_stages(&mut stages[i]);
                    }
                }
            }
        }
        Ok::<_, PswvBenchError>(())
    })?;

    let per_block = crate::median(&per_block_seconds).unwrap_or(f64::NAN);
    let blocks = prepared.blocks.len();
    let rate = |count: usize, seconds: f64| count as f64 / seconds;
    let mut results = Vec::with_capacity(windows);
    for (i, &window) in config.windows.iter().enumerate() {
        let p = crate::median(&pswv_seconds[i]).unwrap_or(f64::NAN);
        let result = RocksPswvResult {
            store: StoreKind::Rocksdb.name(),
            window,
            blocks,
            txs_per_block: config.txs_per_block,
            measured_txs: txs,
            warmup_blocks: prepared.warmup_blocks(),
            threads: config.threads,
            pow: config.pow.name(),
            repeats: config.repeats,
            sync: RocksOptions::default().sync,
            pswv_windows: blocks.div_ceil(window),
            pswv_blocks_per_second: rate(blocks, p),
            pswv_tx_per_second: rate(txs, p),
            sequential_blocks_per_second: rate(blocks, per_block),
            sequential_tx_per_second: rate(txs, per_block),
            ratio: per_block / p,
            states_equal: per_block_equal && pswv_equal[i],
            utxo_digest: expected.to_hex(),
            pswv_repeats_seconds: pswv_seconds[i].clone(),
            sequential_repeats_seconds: per_block_seconds.clone(),
            stage_seconds: if profiling {
                stages[i]
                    .iter()
                    .map(|(n, s)| (n.clone(), s / config.repeats as f64))
                    .collect()
            } else {
                Vec::new()
            },
            generation_seconds: prepared.generation_seconds,
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
    use crate::pswv::DEFAULT_SEED;

    #[test]
    fn both_paths_reach_the_engine_state_and_a_wrong_digest_is_caught() {
        let prepared = prepare_chain(10, 3, DEFAULT_SEED).unwrap();
        let (_, reference) = run_sequential(&prepared, &SkipPow).unwrap();
        let expected = utxo_digest(reference.store.entries());
        let pow: Arc<dyn PowCheck + Send + Sync> = Arc::new(SkipPow);
        let (seconds, equal) = run_per_block_rocks(&prepared, &pow, &expected).unwrap();
        assert!(equal && seconds > 0.0);
        for window in [1, 4, 64] {
            let (seconds, equal) = run_pswv_rocks(&prepared, window, &pow, &expected).unwrap();
            assert!(equal && seconds > 0.0, "window {window}");
        }
        let wrong = Hash([7; 32]);
        assert!(!run_per_block_rocks(&prepared, &pow, &wrong).unwrap().1);
        assert!(!run_pswv_rocks(&prepared, 4, &pow, &wrong).unwrap().1);
    }

    #[test]
    fn store_names_round_trip() {
        for kind in [StoreKind::Memory, StoreKind::Rocksdb] {
            assert_eq!(kind.name().parse::<StoreKind>(), Ok(kind));
        }
        assert!("sled".parse::<StoreKind>().is_err());
    }
}
