//! `bystack-bench tensority`: hash rate per backend and thread count (median over repeats),
//! seed preparation time, peak memory.
//!
//! Each repeat runs the backend's real nonce search (block-ID SHA3s, Tensority, target check)
//! for a fixed time with an unreachable target, so the figure is what a miner gets. The seed
//! build is timed on fresh seeds, so no cache hides it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_kernels::tensority::MACS_PER_HASH;
use bystack_kernels::{open_backend_with, BackendOptions, TensorityBackend};
use serde::Serialize;

/// One measured configuration.
#[derive(Debug, Clone, Serialize)]
pub struct TensorityResult {
    /// Backend name.
    pub backend: String,
    /// Kernel variant.
    pub kernel: String,
    /// Device description.
    pub device: String,
    /// Worker threads.
    pub threads: usize,
    /// Hashes per launch in effect (batched backends; 0 for CPU backends).
    pub batch: usize,
    /// Median hashes per second over the repeats.
    pub hashes_per_second: f64,
    /// Every repeat's hashes per second.
    pub repeats_hashes_per_second: Vec<f64>,
    /// Median multiply-accumulates per second (2^32 per hash).
    pub gmac_per_second: f64,
    /// Median time of one `hash()` call (verification latency: the four chains spread over the
    /// threads), seconds.
    pub hash_latency_seconds: f64,
    /// Median time to prepare a fresh seed (matrix set plus kernel data), seconds.
    pub seed_build_seconds: f64,
    /// Every seed preparation time, seconds.
    pub seed_build_samples: Vec<f64>,
    /// Peak resident memory of the process so far, bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Seconds per repeat.
    pub seconds_per_repeat: f64,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct TensorityConfig {
    /// Backend names (`all` expanded by the caller).
    pub backends: Vec<String>,
    /// Thread counts.
    pub threads: Vec<usize>,
    /// Seconds per repeat.
    pub seconds: f64,
    /// Repeats per configuration.
    pub repeats: usize,
    /// Seed builds timed per configuration.
    pub seed_builds: usize,
    /// Hashes per launch for batched backends (0 = default); CPU backends run once.
    pub batches: Vec<usize>,
}

/// Whether `name` is a batched device backend (threads do not apply, batch sizes do).
pub fn is_batched(name: &str) -> bool {
    name.starts_with("cuda") || name.starts_with("wgpu")
}

fn fresh_seed(counter: &mut u64) -> [u8; 32] {
    *counter += 1;
    let mut material = b"bystack-bench-seed".to_vec();
    material.extend_from_slice(&counter.to_le_bytes());
    material.extend_from_slice(&std::process::id().to_le_bytes());
    bystack_kernels::tensority::sha3_256(&material)
}

/// Hashes per second of `backend` over one timed search of about `seconds`.
///
/// # Errors
/// A backend failure.
pub fn measure_rate(
    backend: &dyn TensorityBackend,
    seed: &[u8; 32],
    seconds: f64,
    repeat: u64,
) -> anyhow::Result<f64> {
    let prepared = backend.prepare(seed)?;
    let template = HeaderTemplate::new(1, repeat, &[7; 32], 1_700_000_000, &[1; 32], &[2; 32], 0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs_f64(seconds));
            stop.store(true, Ordering::Relaxed);
        });
        // Nonce space far larger than any run, target no hash meets.
        prepared.search(
            &template,
            repeat << 40..(repeat + 1) << 40,
            &Target::Never,
            &stop,
        )
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(outcome.hashes as f64 / elapsed)
}

/// Runs every configuration, calling `report` after each.
///
/// # Errors
/// An unknown or unsupported backend, or a backend failure.
pub fn run(
    config: &TensorityConfig,
    mut report: impl FnMut(&TensorityResult),
) -> anyhow::Result<Vec<TensorityResult>> {
    let mut results = Vec::new();
    let mut seed_counter = 0;
    for name in &config.backends {
        // Device backends: one run per batch size; CPU backends: one per thread count.
        let runs: Vec<(usize, usize)> = if is_batched(name) {
            let batches = if config.batches.is_empty() {
                vec![0]
            } else {
                config.batches.clone()
            };
            batches.into_iter().map(|b| (0, b)).collect()
        } else {
            config.threads.iter().map(|&t| (t, 0)).collect()
        };
        for (threads, batch) in runs {
            let backend = open_backend_with(
                name,
                &BackendOptions {
                    threads,
                    batch,
                    device: 0,
                },
            )?;
            let info = backend.info();
            let mut seed_build_samples = Vec::new();
            for _ in 0..config.seed_builds.max(1) {
                let seed = fresh_seed(&mut seed_counter);
                let start = Instant::now();
                let prepared = backend.prepare(&seed)?;
                seed_build_samples.push(start.elapsed().as_secs_f64());
                drop(prepared);
            }
            let seed = fresh_seed(&mut seed_counter);
            let prepared = backend.prepare(&seed)?;
            // One warm-up hash so page faults and thread start-up stay out of the timings.
            prepared.hash(&[0; 32])?;
            let mut latencies = Vec::new();
            for i in 0..config.repeats.max(1) {
                let start = Instant::now();
                prepared.hash(&[i as u8 + 1; 32])?;
                latencies.push(start.elapsed().as_secs_f64());
            }
            let mut rates = Vec::new();
            for repeat in 0..config.repeats.max(1) {
                rates.push(measure_rate(
                    backend.as_ref(),
                    &seed,
                    config.seconds,
                    repeat as u64,
                )?);
            }
            let hps = crate::median(&rates).unwrap_or(0.0);
            let result = TensorityResult {
                backend: info.name.clone(),
                kernel: info.kernel.clone(),
                device: info.device.clone(),
                threads: if is_batched(name) {
                    1
                } else {
                    info.parallelism
                },
                batch: if is_batched(name) {
                    info.parallelism
                } else {
                    batch
                },
                hashes_per_second: hps,
                repeats_hashes_per_second: rates,
                gmac_per_second: hps * MACS_PER_HASH as f64 / 1e9,
                hash_latency_seconds: crate::median(&latencies).unwrap_or(0.0),
                seed_build_seconds: crate::median(&seed_build_samples).unwrap_or(0.0),
                seed_build_samples,
                peak_memory_bytes: crate::peak_memory_bytes(),
                seconds_per_repeat: config.seconds,
            };
            report(&result);
            results.push(result);
        }
    }
    Ok(results)
}
