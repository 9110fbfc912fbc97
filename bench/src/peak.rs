//! The int8 multiply-accumulate ceiling of this CPU, measured with a throughput loop, so that
//! kernel figures can be reported as a fraction of what the hardware does.

use std::time::{Duration, Instant};

use bystack_kernels::tensority::cpu::avx512::{vnni_peak_probe, PEAK_PROBE_MACS_PER_ITERATION};

/// Total `vpdpbusd` multiply-accumulates per second over `threads` threads, each running the
/// probe for about `seconds`.
///
/// # Errors
/// When the CPU lacks AVX-512 VNNI.
pub fn vnni_macs_per_second(threads: usize, seconds: f64) -> anyhow::Result<f64> {
    const CHUNK: u64 = 1 << 20;
    vnni_peak_probe(1)?;
    let deadline = Duration::from_secs_f64(seconds);
    let per_thread: Vec<anyhow::Result<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let start = Instant::now();
                    let mut iterations = 0u64;
                    while start.elapsed() < deadline {
                        std::hint::black_box(vnni_peak_probe(CHUNK)?);
                        iterations += CHUNK;
                    }
                    let macs = (iterations * PEAK_PROBE_MACS_PER_ITERATION) as f64;
                    Ok(macs / start.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("probe thread panicked")))
            })
            .collect()
    });
    per_thread.into_iter().sum()
}
