//! The `bystack-bench` binary.

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use anyhow::Context;
use bystack_bench::decode::{self, DecodeConfig, DecodeResult};
use bystack_bench::pswv::{self, PowMode, PswvConfig, PswvResult};
use bystack_bench::pswv_rocks::{self, RocksPswvResult, StoreKind};
use bystack_bench::tensority::{TensorityConfig, TensorityResult};
use bystack_kernels::list_backends;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bystack-bench",
    version,
    about = "Benchmarks and conformance tools for bystack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reads `HEADER_HASH_HEX SEED_HEX` lines on stdin, prints `HEADER SEED RESULT` for each.
    Hash {
        /// Backend: auto, reference, cpu, portable, avx2, avx512-vnni (see `list`).
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Worker threads (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Measures Tensority hash rate and seed build time per backend and thread count.
    Tensority {
        /// A backend name, a comma-separated list, or `all` (every available backend).
        #[arg(long, default_value = "auto")]
        backend: String,
        /// Thread counts, comma-separated (default: 1 and every core).
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// Seconds per repeat.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Repeats per configuration (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Fresh seeds built and timed per configuration.
        #[arg(long, default_value_t = 3)]
        seed_builds: usize,
        /// Hashes per launch for batched (GPU) backends, comma-separated (0 = the backend's
        /// default); CPU backends ignore it.
        #[arg(long, value_delimiter = ',', default_values_t = [0usize])]
        batch: Vec<usize>,
        /// Print one JSON object per configuration instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Checks backends against the scalar reference bit for bit: the Tensority vectors, random
    /// single products (extreme operands included) and random full hashes. Exits 1 on any
    /// mismatch.
    Conformance {
        /// A backend name, a comma-separated list, or `all` (every available backend).
        #[arg(long, default_value = "all")]
        backend: String,
        /// Random single products per backend.
        #[arg(long, default_value_t = 1000)]
        products: usize,
        /// Random full hashes per backend.
        #[arg(long, default_value_t = 64)]
        hashes: usize,
        /// The shared `tensority.json` vectors file (skipped when absent).
        #[arg(long)]
        vectors: Option<std::path::PathBuf>,
        /// Hashes per launch for batched backends (0 = default).
        #[arg(long, default_value_t = 0)]
        batch: usize,
        /// Generator seed for the random cases.
        #[arg(long, default_value_t = 2024)]
        seed: u64,
        /// Print one JSON object per backend instead of a line.
        #[arg(long)]
        json: bool,
    },
    /// Measures the int8 multiply-accumulate ceiling (a `vpdpbusd` throughput loop) per
    /// thread count: the bound the Tensority kernels are compared against.
    Peak {
        /// Thread counts, comma-separated (default: 1 and every core).
        #[arg(long, value_delimiter = ',')]
        threads: Vec<usize>,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Print one JSON object per thread count.
        #[arg(long)]
        json: bool,
    },
    /// Measures block decoding with every ID (tx entries, block hash, merkle root) per block
    /// size, on deterministic generated blocks.
    Decode {
        /// Block sizes in transactions (coinbase included), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 100, 1000])]
        txs: Vec<usize>,
        /// Seconds per repeat.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Repeats per block size (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Quick run for CI: sizes 1 and 10, 0.05 s, one repeat (overrides the other options).
        #[arg(long)]
        smoke: bool,
        /// Print one JSON object per block size instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Compares PSWV (window by window) with the sequential path (block by block) on one
    /// generated devnet chain: blocks/s, tx/s and their ratio per window size, after checking
    /// that both paths end in the same state.
    Pswv {
        /// Measured blocks (generated after a warm-up prefix of coinbase-only blocks).
        #[arg(long, default_value_t = 1000)]
        blocks: usize,
        /// Ordinary transactions per block (the coinbase comes on top).
        #[arg(long, default_value_t = 3)]
        txs_per_block: usize,
        /// Window sizes in blocks, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64, 256])]
        window: Vec<usize>,
        /// Rayon pool size (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Proof of work: `none` (skipped) or `cpu` (hashed on the CPU, verdict ignored:
        /// generated blocks are not mined).
        #[arg(long, default_value = "none")]
        pow: PowMode,
        /// Timed runs per path (medians are reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Quick run for CI: 20 blocks × 3 txs, window 8, one repeat (overrides the sizes).
        #[arg(long)]
        smoke: bool,
        /// Where the state lives: `memory` (the engine's UTXO set) or `rocksdb` (the node's
        /// chain database in a fresh temporary directory per run: `Chain::process_window`
        /// against `Chain::process_block`).
        #[arg(long, default_value = "memory")]
        store: StoreKind,
        /// Print one JSON object per window size instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Batched proof-of-work verification against one-by-one on one backend: N block IDs
    /// under one seed through one `hash_batch` vs N `hash` calls; blocks/s and the ratio.
    Verify(bystack_bench::verify::VerifyArgs),
    /// Load on the node's stratum server over loopback: verified shares/s against the
    /// verification backend's standalone rate, and cheap rejections/s.
    Stratum(bystack_bench::stratum::StratumArgs),
    /// Block relay latency across N in-process nodes on loopback (full mesh, RocksDB, real
    /// Tensority checks): ms from submit-work on node 0 until each other node connected it.
    Relay(bystack_bench::net::RelayArgs),
    /// get-work-json round trip over loopback HTTP (keep-alive clients) against one node.
    GetWork(bystack_bench::net::GetWorkArgs),
    /// Every benchmark in one run: report.json, report.md and SVG plots in `--out`;
    /// `--baseline` compares with an earlier report.json. Exit 1 on wrong results,
    /// benchmarks that did not run, or regressions.
    Suite(bystack_bench::suite::SuiteArgs),
    /// Compares two saved report.json files; exit 1 when a figure regressed.
    Compare(bystack_bench::suite::CompareArgs),
    /// Writes report.md and the plots again from a saved report.json.
    Render(bystack_bench::suite::RenderArgs),
    /// Searches backend, threads and batch on this machine for the best stable hash rate,
    /// measures it against the miner's defaults, and writes a measured hardware profile.
    Tune(bystack_bench::tune::TuneArgs),
    /// Lists the backends this build knows, with availability on this machine.
    List {
        /// One JSON object per backend.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Wrong results and regressions exit 1; a run that could not go on exits 2.
            if e.downcast_ref::<bystack_bench::suite::Verdict>().is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Hash { backend, threads } => {
            let backend = bystack_kernels::open_backend(&backend, threads)?;
            if io::stdin().is_terminal() {
                eprintln!("reading `HEADER_HASH_HEX SEED_HEX` lines from stdin (Ctrl-D ends)");
            }
            bystack_bench::hashcmd::run(backend.as_ref(), io::stdin().lock(), io::stdout().lock())?;
            Ok(())
        }
        Command::Tensority {
            backend,
            threads,
            seconds,
            repeats,
            seed_builds,
            batch,
            json,
        } => {
            anyhow::ensure!(
                seconds > 0.0 && seconds.is_finite(),
                "--seconds must be positive"
            );
            anyhow::ensure!(!threads.contains(&0), "--threads values must be at least 1");
            let backends = backend_names(&backend);
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            let threads = if threads.is_empty() {
                if cores > 1 {
                    vec![1, cores]
                } else {
                    vec![1]
                }
            } else {
                threads
            };
            let config = TensorityConfig {
                backends,
                threads,
                seconds,
                repeats,
                seed_builds,
                batches: batch,
            };
            if !json {
                println!(
                    "{:<18} {:>7} {:>12} {:>10} {:>12} {:>12} {:>10}  repeats (H/s)",
                    "backend",
                    "threads",
                    "H/s median",
                    "GMAC/s",
                    "1-hash time",
                    "seed build",
                    "peak MiB"
                );
            }
            bystack_bench::tensority::run(&config, |r| print_result(r, json))
                .context("tensority benchmark")?;
            Ok(())
        }
        Command::Peak {
            threads,
            seconds,
            json,
        } => {
            anyhow::ensure!(
                seconds > 0.0 && seconds.is_finite(),
                "--seconds must be positive"
            );
            anyhow::ensure!(!threads.contains(&0), "--threads values must be at least 1");
            for t in default_threads(threads) {
                let macs = bystack_bench::peak::vnni_macs_per_second(t, seconds)?;
                let ceiling = macs / bystack_kernels::tensority::MACS_PER_HASH as f64;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "probe": "vpdpbusd-zmm",
                            "threads": t,
                            "gmac_per_second": macs / 1e9,
                            "ceiling_hashes_per_second": ceiling,
                        })
                    );
                } else {
                    println!(
                        "vpdpbusd zmm, {t} thread(s): {:.1} GMAC/s, Tensority ceiling {:.1} H/s",
                        macs / 1e9,
                        ceiling
                    );
                }
            }
            Ok(())
        }
        Command::Decode {
            txs,
            seconds,
            repeats,
            smoke,
            json,
        } => {
            let config = if smoke {
                DecodeConfig {
                    txs: vec![1, 10],
                    seconds: 0.05,
                    repeats: 1,
                    seed: decode::DEFAULT_SEED,
                }
            } else {
                DecodeConfig {
                    txs,
                    seconds,
                    repeats,
                    seed: decode::DEFAULT_SEED,
                }
            };
            config.validate()?;
            if !json {
                println!(
                    "{:>8} {:>10} {:>12} {:>12} {:>10} {:>12}  repeats (blocks/s)",
                    "txs", "bytes", "blocks/s", "tx/s", "MiB/s", "block time"
                );
            }
            decode::run(&config, |r| print_decode_result(r, json)).context("decode benchmark")?;
            Ok(())
        }
        Command::Pswv {
            blocks,
            txs_per_block,
            window,
            threads,
            pow,
            repeats,
            smoke,
            store,
            json,
        } => {
            let threads = threads.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            });
            let config = if smoke {
                PswvConfig::smoke(threads, pow)
            } else {
                PswvConfig {
                    blocks,
                    txs_per_block,
                    windows: window,
                    threads,
                    pow,
                    repeats,
                    seed: pswv::DEFAULT_SEED,
                }
            };
            config.validate()?;
            if !json {
                println!(
                    "{:>7} {:>7} {:>9} {:>7} {:>12} {:>12} {:>12} {:>12} {:>7}  states",
                    "window",
                    "blocks",
                    "txs",
                    "threads",
                    "pswv blk/s",
                    "pswv tx/s",
                    "seq blk/s",
                    "seq tx/s",
                    "ratio"
                );
            }
            let unequal: Vec<usize> = match store {
                StoreKind::Memory => pswv::run(&config, |r| print_pswv_result(r, json))
                    .context("pswv benchmark")?
                    .iter()
                    .filter(|r| !r.states_equal)
                    .map(|r| r.window)
                    .collect(),
                StoreKind::Rocksdb => pswv_rocks::run(&config, |r| print_rocks_result(r, json))
                    .context("pswv benchmark on rocksdb")?
                    .iter()
                    .filter(|r| !r.states_equal)
                    .map(|r| r.window)
                    .collect(),
            };
            anyhow::ensure!(
                unequal.is_empty(),
                "PSWV and the sequential path ended in different states for windows {unequal:?}"
            );
            Ok(())
        }
        Command::Conformance {
            backend,
            products,
            hashes,
            vectors,
            batch,
            seed,
            json,
        } => {
            let config = bystack_bench::conformance::ConformanceConfig {
                backends: backend_names(&backend),
                products,
                hashes,
                vectors,
                batch,
                seed,
            };
            let results = bystack_bench::conformance::run(&config, |r| {
                if json {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                } else {
                    println!(
                        "{:<16} {} vectors {}/{} products {}/{} hashes {}/{} ({:.1} s) {}",
                        r.backend,
                        if r.ok { "PASS" } else { "FAIL" },
                        r.vectors_passed,
                        r.vectors,
                        r.products_passed,
                        r.products,
                        r.hashes_passed,
                        r.hashes,
                        r.seconds,
                        r.failures.join("; ")
                    );
                }
            })
            .context("conformance")?;
            anyhow::ensure!(
                results.iter().all(|r| r.ok),
                "mismatches against the reference: {}",
                results
                    .iter()
                    .filter(|r| !r.ok)
                    .map(|r| r.backend.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
        Command::Verify(args) => bystack_bench::verify::main(&args),
        Command::Stratum(args) => bystack_bench::stratum::main(&args),
        Command::Relay(args) => bystack_bench::net::relay_main(&args),
        Command::GetWork(args) => bystack_bench::net::get_work_main(&args),
        Command::Suite(args) => bystack_bench::suite::main(&args),
        Command::Compare(args) => bystack_bench::suite::compare_main(&args),
        Command::Render(args) => bystack_bench::suite::render_main(&args),
        Command::Tune(args) => bystack_bench::tune::main(&args),
        Command::List { json } => {
            if json {
                for b in list_backends() {
                    println!(
                        "{}",
                        serde_json::json!({
                            "name": b.name,
                            "available": b.available,
                            "device": b.device,
                            "kernel": b.kernel,
                            "capabilities": b.capabilities,
                            "description": b.description,
                        })
                    );
                }
                return Ok(());
            }
            for b in list_backends() {
                println!(
                    "{:<18} {:<10} {:<28} {:<40} {}",
                    b.name,
                    if b.available { "available" } else { "missing" },
                    b.capabilities.join(","),
                    b.description,
                    b.device
                );
            }
            Ok(())
        }
    }
}

/// `all` → every backend available here; otherwise the comma-separated names.
fn backend_names(backend: &str) -> Vec<String> {
    if backend == "all" {
        list_backends()
            .into_iter()
            .filter(|b| b.available)
            .map(|b| b.name)
            .collect()
    } else {
        backend.split(',').map(str::to_string).collect()
    }
}

/// The thread counts given, or 1 and every core.
fn default_threads(threads: Vec<usize>) -> Vec<usize> {
    if !threads.is_empty() {
        return threads;
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cores > 1 {
        vec![1, cores]
    } else {
        vec![1]
    }
}

/// Prints one result as a JSON line.
fn print_json_line(r: &impl serde::Serialize) {
    match serde_json::to_string(r) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("error: cannot serialise result: {e}"),
    }
}

fn print_result(r: &TensorityResult, json: bool) {
    if json {
        return print_json_line(r);
    }
    let repeats: Vec<String> = r
        .repeats_hashes_per_second
        .iter()
        .map(|h| format!("{h:.2}"))
        .collect();
    let threads = if r.batch > 0 {
        format!("b={}", r.batch)
    } else {
        r.threads.to_string()
    };
    println!(
        "{:<18} {:>7} {:>12.2} {:>10.1} {:>10.1}ms {:>10.1}ms {:>10.1}  {}",
        r.backend,
        threads,
        r.hashes_per_second,
        r.gmac_per_second,
        r.hash_latency_seconds * 1e3,
        r.seed_build_seconds * 1e3,
        r.peak_memory_bytes.unwrap_or(0) as f64 / (1024.0 * 1024.0),
        repeats.join(" ")
    );
}

fn print_decode_result(r: &DecodeResult, json: bool) {
    if json {
        return print_json_line(r);
    }
    let repeats: Vec<String> = r
        .repeats_blocks_per_second
        .iter()
        .map(|b| format!("{b:.1}"))
        .collect();
    println!(
        "{:>8} {:>10} {:>12.1} {:>12.0} {:>10.1} {:>10.1}us  {}",
        r.txs_per_block,
        r.block_bytes,
        r.blocks_per_second,
        r.tx_per_second,
        r.mib_per_second,
        r.block_latency_us,
        repeats.join(" ")
    );
}

fn print_rocks_result(r: &RocksPswvResult, json: bool) {
    if json {
        return print_json_line(r);
    }
    print_pswv_row(
        [r.window, r.blocks, r.measured_txs, r.threads],
        [
            r.pswv_blocks_per_second,
            r.pswv_tx_per_second,
            r.sequential_blocks_per_second,
            r.sequential_tx_per_second,
        ],
        r.ratio,
        r.states_equal,
    );
}

fn print_pswv_result(r: &PswvResult, json: bool) {
    if json {
        return print_json_line(r);
    }
    print_pswv_row(
        [r.window, r.blocks, r.measured_txs, r.threads],
        [
            r.pswv_blocks_per_second,
            r.pswv_tx_per_second,
            r.sequential_blocks_per_second,
            r.sequential_tx_per_second,
        ],
        r.ratio,
        r.states_equal,
    );
}

/// One table row of `pswv`: window, blocks, txs, threads; PSWV blocks/s and tx/s, sequential
/// blocks/s and tx/s; the ratio; the state check.
fn print_pswv_row(counts: [usize; 4], rates: [f64; 4], ratio: f64, states_equal: bool) {
    let [window, blocks, txs, threads] = counts;
    let [pswv_blocks, pswv_txs, seq_blocks, seq_txs] = rates;
    println!(
        "{window:>7} {blocks:>7} {txs:>9} {threads:>7} {pswv_blocks:>12.1} {pswv_txs:>12.0} \
         {seq_blocks:>12.1} {seq_txs:>12.0} {ratio:>6.2}x  {}",
        if states_equal { "equal" } else { "DIFFERENT" }
    );
}
