//! `bystack-bench verify`: batched proof-of-work verification against one-by-one, on the same
//! backend in one run: N block IDs under one seed (a PSWV window's worth of blocks), hashed
//! once with a single `hash_batch` call and once with N `hash` calls. Reports blocks/s for
//! both (medians over repeats) and their ratio, and checks that both give the same results.
//!
//! The block IDs and the prepared seed are built outside the timed region; the seed
//! preparation is timed separately.

use std::time::Instant;

use anyhow::Context;
use bystack_kernels::pow::HeaderTemplate;
use bystack_kernels::{open_backend_with, BackendOptions};
use serde::Serialize;

/// The `verify` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Backend: auto, reference, cpu, float, wgpu, cuda, … (see `list`).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Blocks (header hashes under one seed) per batch.
    #[arg(long, default_value_t = 64)]
    pub blocks: usize,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Hashes per launch for batched (GPU) backends (0 = the backend's default).
    #[arg(long, default_value_t = 0)]
    pub batch: usize,
    /// Timed runs of each path (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyResult {
    /// Backend name.
    pub backend: String,
    /// Kernel variant.
    pub kernel: String,
    /// Device description.
    pub device: String,
    /// Worker threads (or streams) the backend reports.
    pub threads: usize,
    /// Blocks per batch.
    pub blocks: usize,
    /// Repeats per path.
    pub repeats: usize,
    /// Median blocks/s of one `hash_batch` over all blocks.
    pub batch_blocks_per_second: f64,
    /// Median blocks/s of one `hash` call per block.
    pub single_blocks_per_second: f64,
    /// `batch_blocks_per_second / single_blocks_per_second`.
    pub ratio: f64,
    /// Seconds of every batched run.
    pub repeats_batch_seconds: Vec<f64>,
    /// Seconds of every one-by-one run.
    pub repeats_single_seconds: Vec<f64>,
    /// Seconds to prepare the seed (matrix set plus backend data).
    pub seed_build_seconds: f64,
    /// Whether both paths gave identical results (always checked; a mismatch is an error).
    pub results_equal: bool,
}

/// The block IDs of `n` consecutive nonces of a fixed devnet-like header (what a window of
/// blocks under one seed looks like to the proof of work).
pub fn block_ids(n: usize) -> Vec<[u8; 32]> {
    let template = HeaderTemplate::new(1, 1000, &[7; 32], 1_700_000_000, &[1; 32], &[2; 32], 0);
    (0..n as u64)
        .map(|nonce| template.header_hash(nonce))
        .collect()
}

/// Runs the measurement.
///
/// # Errors
/// Bad options, an unknown or unsupported backend, a backend failure, or results that differ
/// between the two paths.
pub fn run(args: &VerifyArgs) -> anyhow::Result<VerifyResult> {
    anyhow::ensure!(args.blocks > 0, "--blocks must be at least 1");
    anyhow::ensure!(args.repeats > 0, "--repeats must be at least 1");
    let backend = open_backend_with(
        &args.backend,
        &BackendOptions {
            threads: args.threads,
            batch: args.batch,
            ..BackendOptions::default()
        },
    )?;
    let info = backend.info();
    let seed = bystack_kernels::tensority::sha3_256(b"bystack-bench verify seed");
    let ids = block_ids(args.blocks);
    let start = Instant::now();
    let prepared = backend.prepare(&seed)?;
    let seed_build_seconds = start.elapsed().as_secs_f64();
    // Warm-up (page faults, thread start-up, device pipelines) outside the timings.
    prepared.hash(&ids[0])?;
    let mut batch_seconds = Vec::new();
    let mut single_seconds = Vec::new();
    for repeat in 0..args.repeats {
        // The paths alternate which goes first, so that neither always runs on a warmer cache
        // or a quieter machine.
        let mut batched = Vec::new();
        let mut singles = Vec::new();
        for path in [repeat % 2, 1 - repeat % 2] {
            let start = Instant::now();
            if path == 0 {
                batched = prepared.hash_batch(&ids).context("hash_batch")?;
                batch_seconds.push(start.elapsed().as_secs_f64());
            } else {
                singles = ids
                    .iter()
                    .map(|id| prepared.hash(id))
                    .collect::<Result<Vec<_>, _>>()
                    .context("hash")?;
                single_seconds.push(start.elapsed().as_secs_f64());
            }
        }
        anyhow::ensure!(
            batched == singles,
            "backend {}: hash_batch and hash disagree",
            info.name
        );
    }
    let rate = |seconds: &[f64]| {
        let median = crate::median(seconds).unwrap_or(f64::INFINITY);
        args.blocks as f64 / median
    };
    let batch = rate(&batch_seconds);
    let single = rate(&single_seconds);
    Ok(VerifyResult {
        backend: info.name,
        kernel: info.kernel,
        device: info.device,
        threads: info.parallelism,
        blocks: args.blocks,
        repeats: args.repeats,
        batch_blocks_per_second: batch,
        single_blocks_per_second: single,
        ratio: batch / single,
        repeats_batch_seconds: batch_seconds,
        repeats_single_seconds: single_seconds,
        seed_build_seconds,
        results_equal: true,
    })
}

/// The subcommand: runs and prints a table line (or a JSON object with `--json`).
///
/// # Errors
/// As [`run`].
pub fn main(args: &VerifyArgs) -> anyhow::Result<()> {
    let r = run(args).context("verify benchmark")?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{:<18} {:>7} {:>7} {:>14} {:>14} {:>7} {:>11}",
            "backend", "threads", "blocks", "batch blk/s", "single blk/s", "ratio", "seed build"
        );
        println!(
            "{:<18} {:>7} {:>7} {:>14.2} {:>14.2} {:>6.2}x {:>9.1}ms",
            r.backend,
            r.threads,
            r.blocks,
            r.batch_blocks_per_second,
            r.single_blocks_per_second,
            r.ratio,
            r.seed_build_seconds * 1e3
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_are_distinct_and_deterministic() {
        let ids = block_ids(4);
        assert_eq!(ids, block_ids(4));
        assert!(ids.windows(2).all(|w| w[0] != w[1]));
    }
}
