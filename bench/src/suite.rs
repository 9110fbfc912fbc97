//! `bystack-bench suite`: every benchmark in one run, written as `report.json`, `report.md`
//! and SVG plots, optionally compared with a baseline report.
//!
//! The families, in order: Tensority per backend and thread count (each figure with its
//! correctness checksum) and seed preparation; block decoding; PSWV against the per-block
//! path in memory and on RocksDB; block relay across local nodes; the get-work round trip;
//! stratum load. A family that cannot run is recorded as a failure and the run goes on.
//! `--quick` shrinks every input so the whole suite runs in seconds (CI runs it).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bystack_kernels::{list_backends, open_backend_with, BackendOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::checksum;
use crate::decode::{self, DecodeConfig};
use crate::pswv::{self, PowMode, PswvConfig};
use crate::report::{self, Benchmark, Failure, Report};
use crate::tensority::{self, TensorityConfig};

/// The `suite` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Tiny inputs and short repeats: every benchmark runs, in seconds (for CI).
    #[arg(long)]
    pub quick: bool,
    /// Where to write report.json, report.md and the plots (created if missing).
    #[arg(long, default_value = "bench-report")]
    pub out: PathBuf,
    /// A previous report.json: print each figure's speed relative to it and exit 1 when one
    /// is slower by more than `--threshold`.
    #[arg(long, value_name = "REPORT_JSON")]
    pub baseline: Option<PathBuf>,
    /// The fraction slower than the baseline that counts as a regression.
    #[arg(long, default_value_t = 0.10)]
    pub threshold: f64,
    /// Tensority backends, comma-separated (default: every CPU kernel and every GPU backend
    /// available here, without `reference` and software-Vulkan devices).
    #[arg(long)]
    pub backend: Option<String>,
    /// Tensority thread counts, comma-separated (default: 1 and every core).
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Seconds per Tensority repeat (default 3, quick 0.3).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Repeats per figure (default 3, quick 2).
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Benchmark families to leave out, comma-separated: tensority, decode, pswv,
    /// pswv-rocksdb, relay, get-work, stratum.
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

/// Every family `--skip` accepts.
pub const FAMILIES: &[&str] = &[
    "tensority",
    "decode",
    "pswv",
    "pswv-rocksdb",
    "relay",
    "get-work",
    "stratum",
];

/// A run whose results are wrong or slower than the baseline: the binary exits 1 (errors
/// that stop a run exit 2).
#[derive(Debug)]
pub struct Verdict(pub String);

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Verdict {}

/// What the suite measures, after `--quick` and the defaults are applied.
#[derive(Debug, Clone)]
struct Plan {
    backends: Vec<String>,
    threads: Vec<usize>,
    seconds: f64,
    repeats: usize,
    decode: DecodeConfig,
    pswv: PswvConfig,
    relay: crate::net::RelayArgs,
    get_work: crate::net::GetWorkArgs,
    stratum: crate::stratum::StratumArgs,
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn default_backends(quick: bool) -> anyhow::Result<Vec<String>> {
    if quick {
        // The kernel a miner gets by default, and the portable one for a second bar.
        let best = bystack_kernels::open_backend("auto", 1)?.info().name;
        let mut names = vec![best];
        if !names.contains(&"cpu-portable".to_string()) {
            names.push("cpu-portable".into());
        }
        return Ok(names);
    }
    Ok(list_backends()
        .into_iter()
        .filter(|b| {
            b.available
                && b.name != "reference"
                && !(tensority::is_batched(&b.name) && crate::tune::software_adapter(b))
        })
        .map(|b| b.name)
        .collect())
}

impl Plan {
    fn new(args: &SuiteArgs) -> anyhow::Result<Self> {
        let quick = args.quick;
        let backends = match &args.backend {
            Some(list) => list.split(',').map(|s| s.trim().to_string()).collect(),
            None => default_backends(quick)?,
        };
        let cores = cores();
        let threads = if !args.threads.is_empty() {
            anyhow::ensure!(
                !args.threads.contains(&0),
                "--threads values must be at least 1"
            );
            args.threads.clone()
        } else if cores > 1 {
            vec![1, cores]
        } else {
            vec![1]
        };
        let seconds = args.seconds.unwrap_or(if quick { 0.3 } else { 3.0 });
        anyhow::ensure!(
            seconds > 0.0 && seconds.is_finite(),
            "--seconds must be positive"
        );
        let repeats = args.repeats.unwrap_or(if quick { 2 } else { 3 });
        anyhow::ensure!(repeats > 0, "--repeats must be at least 1");
        anyhow::ensure!(
            args.threshold > 0.0 && args.threshold < 1.0,
            "--threshold must be between 0 and 1"
        );
        for s in &args.skip {
            anyhow::ensure!(
                FAMILIES.contains(&s.as_str()),
                "--skip {s:?} is not one of {}",
                FAMILIES.join(", ")
            );
        }
        let decode = if quick {
            DecodeConfig {
                txs: vec![1, 10],
                seconds: 0.05,
                repeats,
                seed: decode::DEFAULT_SEED,
            }
        } else {
            DecodeConfig {
                txs: vec![1, 100, 1000],
                seconds: 1.0,
                repeats,
                seed: decode::DEFAULT_SEED,
            }
        };
        let pswv = if quick {
            PswvConfig {
                windows: vec![1, 4, 16],
                repeats,
                ..PswvConfig::smoke(cores, PowMode::None)
            }
        } else {
            PswvConfig {
                blocks: 2000,
                txs_per_block: 2,
                windows: vec![1, 16, 64, 256],
                threads: cores,
                pow: PowMode::None,
                repeats,
                seed: pswv::DEFAULT_SEED,
            }
        };
        let relay = crate::net::RelayArgs {
            nodes: if quick { 3 } else { 4 },
            blocks: if quick { 3 } else { 20 },
            timeout_secs: 30,
            smoke: false,
            json: false,
        };
        let get_work = crate::net::GetWorkArgs {
            requests: if quick { 50 } else { 2000 },
            concurrency: 1,
            smoke: false,
            json: false,
        };
        let stratum = crate::stratum::StratumArgs {
            sessions: 1000,
            seconds: 10.0,
            backend: "auto".into(),
            threads: 0,
            cheap_per_session: 0,
            smoke: quick,
            json: false,
        };
        Ok(Plan {
            backends,
            threads,
            seconds,
            repeats,
            decode,
            pswv,
            relay,
            get_work,
            stratum,
        })
    }
}

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// Tensority per backend and thread count (batch size for GPUs), each with its checksum,
/// and the seed preparation time.
fn run_tensority(plan: &Plan) -> anyhow::Result<Vec<Benchmark>> {
    let mut out = Vec::new();
    let mut measured: Vec<String> = Vec::new();
    for name in &plan.backends {
        // Aliases (`cpu`, `auto`, `cuda`) open one of the named kernels: measure each once.
        let kernel = open_backend_with(
            name,
            &BackendOptions {
                threads: 1,
                ..BackendOptions::default()
            },
        )
        .with_context(|| format!("backend {name}"))?
        .info()
        .name;
        if measured.contains(&kernel) {
            continue;
        }
        measured.push(kernel);
        let config = TensorityConfig {
            backends: vec![name.clone()],
            threads: plan.threads.clone(),
            seconds: plan.seconds,
            repeats: plan.repeats,
            seed_builds: plan.repeats,
            batches: vec![0],
        };
        let results =
            tensority::run(&config, |_| {}).with_context(|| format!("tensority on {name}"))?;
        for r in results {
            let batched = tensority::is_batched(name);
            let backend = open_backend_with(
                name,
                &BackendOptions {
                    threads: if batched { 0 } else { r.threads },
                    batch: 0,
                    device: 0,
                },
            )?;
            let sum = checksum::compute(backend.as_ref())?;
            let (suffix, config_params) = if batched {
                (
                    format!("batch={}", r.batch),
                    params(&[
                        ("backend", json!(r.backend)),
                        ("batch", json!(r.batch)),
                        ("kernel", json!(r.kernel)),
                    ]),
                )
            } else {
                (
                    format!("threads={}", r.threads),
                    params(&[
                        ("backend", json!(r.backend)),
                        ("threads", json!(r.threads)),
                        ("kernel", json!(r.kernel)),
                    ]),
                )
            };
            let mut rate = Benchmark::new(
                format!("tensority/{}/{suffix}", r.backend),
                "tensority",
                "Tensority hash rate: the real nonce search (block-ID SHA3s, Tensority, \
                 target check) for a fixed time per repeat; every figure carries the checksum \
                 of the backend's results on 12 real-chain vectors.",
                config_params.clone(),
                "H/s",
                true,
                r.repeats_hashes_per_second.clone(),
            )?;
            rate.ok = sum.ok;
            rate.checksum = Some(sum);
            out.push(rate);
            out.push(Benchmark::new(
                format!("seed/{}/{suffix}", r.backend),
                "seed",
                "Seed preparation: the 256 × 256 matrix set (and any kernel data) built \
                 from a fresh seed, as at every epoch change.",
                config_params,
                "ms",
                false,
                r.seed_build_samples.iter().map(|s| s * 1e3).collect(),
            )?);
        }
    }
    Ok(out)
}

fn run_decode(plan: &Plan) -> anyhow::Result<Vec<Benchmark>> {
    plan.decode.validate()?;
    let results = decode::run(&plan.decode, |_| {})?;
    results
        .into_iter()
        .map(|r| {
            Benchmark::new(
                format!("decode/txs={}", r.txs_per_block),
                "decode",
                "Block decoding with every ID (transaction entries, block hash, merkle root) \
                 on generated blocks.",
                params(&[
                    ("txs", json!(r.txs_per_block)),
                    ("block_bytes", json!(r.block_bytes)),
                ]),
                "blocks/s",
                true,
                r.repeats_blocks_per_second.clone(),
            )
        })
        .collect()
}

const PSWV_DESCRIPTION: &str = "Validation throughput of one generated devnet chain: PSWV \
    window by window against the per-block path (Bytom's), both ending in the same state.";

/// One window size's timings, from either store.
struct PswvRow {
    window: usize,
    txs: usize,
    pswv_seconds: Vec<f64>,
    per_block_seconds: Vec<f64>,
    states_equal: bool,
}

/// PSWV and the per-block path per window, transactions per second per repeat.
fn run_pswv(plan: &Plan, store: &str) -> anyhow::Result<Vec<Benchmark>> {
    plan.pswv.validate()?;
    let rows: Vec<PswvRow> = if store == "memory" {
        pswv::run(&plan.pswv, |_| {})?
            .into_iter()
            .map(|r| PswvRow {
                window: r.window,
                txs: r.measured_txs,
                pswv_seconds: r.pswv_repeats_seconds,
                per_block_seconds: r.sequential_repeats_seconds,
                states_equal: r.states_equal,
            })
            .collect()
    } else {
        crate::pswv_rocks::run(&plan.pswv, |_| {})?
            .into_iter()
            .map(|r| PswvRow {
                window: r.window,
                txs: r.measured_txs,
                pswv_seconds: r.pswv_repeats_seconds,
                per_block_seconds: r.sequential_repeats_seconds,
                states_equal: r.states_equal,
            })
            .collect()
    };
    let mut out = Vec::new();
    let figure = |id: String, path: &str, window: Option<usize>, samples: Vec<f64>, equal| {
        let mut config = params(&[
            ("store", json!(store)),
            ("path", json!(path)),
            ("blocks", json!(plan.pswv.blocks)),
            ("txs_per_block", json!(plan.pswv.txs_per_block)),
            ("threads", json!(plan.pswv.threads)),
        ]);
        if let Some(w) = window {
            config.insert("window".into(), json!(w));
        }
        let mut b = Benchmark::new(id, "pswv", PSWV_DESCRIPTION, config, "tx/s", true, samples)?;
        b.ok = equal;
        anyhow::Ok(b)
    };
    let all_equal = rows.iter().all(|r| r.states_equal);
    // The per-block path does not depend on the window: it is timed once per run.
    if let Some(first) = rows.first() {
        out.push(figure(
            format!("pswv/{store}/per-block"),
            "per-block",
            None,
            first
                .per_block_seconds
                .iter()
                .map(|s| first.txs as f64 / s)
                .collect(),
            all_equal,
        )?);
    }
    for r in rows {
        out.push(figure(
            format!("pswv/{store}/pswv/window={}", r.window),
            "pswv",
            Some(r.window),
            r.pswv_seconds.iter().map(|s| r.txs as f64 / s).collect(),
            r.states_equal,
        )?);
    }
    Ok(out)
}

fn run_relay(plan: &Plan) -> anyhow::Result<Vec<Benchmark>> {
    let r = crate::net::relay(&plan.relay)?;
    Ok(vec![Benchmark::new(
        format!("relay/nodes={}", r.nodes),
        "relay",
        "Block relay: a block submitted to node 0 (real Tensority proof, RocksDB, libp2p over \
         loopback TCP) until each other node has connected it; one sample per block and node.",
        params(&[("nodes", json!(r.nodes)), ("blocks", json!(r.blocks))]),
        "ms",
        false,
        r.latencies_ms,
    )?])
}

fn run_get_work(plan: &Plan) -> anyhow::Result<Vec<Benchmark>> {
    let r = crate::net::get_work(&plan.get_work)?;
    let config = params(&[
        ("requests", json!(r.requests)),
        ("concurrency", json!(r.concurrency)),
    ]);
    Ok(vec![
        Benchmark::new(
            "get-work/latency",
            "get-work",
            "get-work-json round trips to a node's HTTP API over loopback, as a solo miner \
             polls it.",
            config.clone(),
            "ms",
            false,
            r.latencies_ms,
        )?,
        Benchmark::new(
            "get-work/throughput",
            "get-work",
            "",
            config,
            "requests/s",
            true,
            vec![r.requests_per_second],
        )?,
    ])
}

fn run_stratum(plan: &Plan) -> anyhow::Result<Vec<Benchmark>> {
    let r = crate::stratum::run(&plan.stratum)?;
    let config = params(&[
        ("sessions", json!(r.sessions)),
        ("backend", json!(r.backend)),
    ]);
    let mut verified = Benchmark::new(
        "stratum/verified",
        "stratum",
        "The node's stratum server under many sessions on loopback: valid shares verified \
         per second, and cheap rejections (malformed, unknown job, duplicate, stale) per \
         second.",
        config.clone(),
        "shares/s",
        true,
        vec![r.verified_per_s],
    )?;
    verified.ok = r.accepted == r.verified;
    Ok(vec![
        verified,
        Benchmark::new(
            "stratum/cheap-rejections",
            "stratum",
            "",
            config,
            "rejections/s",
            true,
            vec![r.cheap_per_s],
        )?,
    ])
}

/// One step of the run: its family name and what it measures.
type Step = (&'static str, &'static str);

const STEPS: [Step; 7] = [
    ("tensority", "Tensority hash rate and seed build"),
    ("decode", "block decoding"),
    ("pswv", "PSWV in memory"),
    ("pswv-rocksdb", "PSWV on RocksDB"),
    ("relay", "block relay across local nodes"),
    ("get-work", "get-work round trip"),
    ("stratum", "stratum load"),
];

/// Runs the suite, writes the report files and returns the report.
///
/// # Errors
/// Bad options, an unreadable baseline or an unwritable output directory. Benchmarks that
/// fail are recorded in the report, not returned.
pub fn run(args: &SuiteArgs) -> anyhow::Result<(Report, Vec<PathBuf>)> {
    let plan = Plan::new(args)?;
    let baseline = args
        .baseline
        .as_deref()
        .map(load_report)
        .transpose()
        .context("--baseline")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let started = Instant::now();
    let date = crate::machine::utc_now();
    let steps: Vec<Step> = STEPS
        .iter()
        .copied()
        .filter(|(name, _)| !args.skip.iter().any(|s| s == name))
        .collect();
    let bar = progress(steps.len() as u64);
    let mut benchmarks = Vec::new();
    let mut failures = Vec::new();
    let probe_seconds = if args.quick { 0.05 } else { 0.3 };
    let mut probe = Vec::new();
    for (i, (name, what)) in steps.iter().enumerate() {
        probe.push(sha3_probe(probe_seconds));
        match &bar {
            Some(bar) => bar.set_message(*what),
            None => eprintln!("[{}/{}] {what}", i + 1, steps.len()),
        }
        let result = match *name {
            "tensority" => run_tensority(&plan),
            "decode" => run_decode(&plan),
            "pswv" => run_pswv(&plan, "memory"),
            "pswv-rocksdb" => run_pswv(&plan, "rocksdb"),
            "relay" => run_relay(&plan),
            "get-work" => run_get_work(&plan),
            _ => run_stratum(&plan),
        };
        match result {
            Ok(mut figures) => benchmarks.append(&mut figures),
            Err(e) => {
                let error = format!("{e:#}");
                match &bar {
                    Some(bar) => bar.println(format!("{name} failed: {error}")),
                    None => eprintln!("{name} failed: {error}"),
                }
                failures.push(Failure {
                    group: name.to_string(),
                    error,
                });
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    probe.push(sha3_probe(probe_seconds));
    benchmarks.insert(
        0,
        Benchmark::new(
            report::PROBE_ID,
            "probe",
            "The machine's own speed: one thread hashing 64 KiB blocks with SHA3-256, before \
             every family and at the end. Its spread shows how steady the machine was during \
             the run; against a baseline it tells a slower machine from slower code.",
            params(&[("threads", json!(1)), ("seconds", json!(probe_seconds))]),
            "MB/s",
            true,
            probe,
        )?,
    );
    let mut report = Report {
        schema: report::SCHEMA.into(),
        date,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        quick: args.quick,
        duration_seconds: started.elapsed().as_secs_f64(),
        machine: crate::machine::describe(),
        versions: crate::machine::versions(),
        benchmarks,
        failures,
        comparison: None,
    };
    report.comparison = baseline.map(|b| report::compare(&b, &report, args.threshold));
    report
        .validate()
        .context("the report breaks its own rules")?;
    let plots = write_report(&report, &args.out)?;
    Ok((report, plots))
}

/// SHA3-256 throughput of one thread over `seconds`, in MB/s.
fn sha3_probe(seconds: f64) -> f64 {
    let block = vec![0x5au8; 64 * 1024];
    let mut digest = [0u8; 32];
    let mut bytes = 0u64;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..8 {
            let mut input = block.clone();
            input[..32].copy_from_slice(&digest);
            digest = bystack_kernels::tensority::sha3_256(std::hint::black_box(&input));
            bytes += block.len() as u64;
        }
    }
    bytes as f64 / start.elapsed().as_secs_f64() / 1e6
}

/// Writes `report.json`, the plots and `report.md` into `dir`; returns the plot files.
///
/// # Errors
/// A file that cannot be written.
pub fn write_report(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(dir.join("report.json"), json + "\n")
        .with_context(|| format!("cannot write {}", dir.join("report.json").display()))?;
    write_plots_and_markdown(report, dir)
}

/// Writes the plots and `report.md` (which links them) into `dir`; returns the plot files.
fn write_plots_and_markdown(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let plots = crate::plots::write_all(report, dir)?;
    let names: Vec<String> = plots
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    std::fs::write(dir.join("report.md"), report::markdown(report, &names))
        .with_context(|| format!("cannot write {}", dir.join("report.md").display()))?;
    Ok(plots)
}

/// Reads a report.json.
///
/// # Errors
/// An unreadable file, or JSON that is not a report of this schema.
pub fn load_report(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a bystack-bench report", path.display()))?;
    anyhow::ensure!(
        report.schema == report::SCHEMA,
        "{} has schema {:?}, this version reads {:?}",
        path.display(),
        report.schema,
        report::SCHEMA
    );
    Ok(report)
}

fn progress(steps: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(steps);
    let style = ProgressStyle::with_template("suite {bar:30} {pos}/{len} {elapsed} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

/// Red when printing to a terminal.
fn red(text: &str) -> String {
    if std::io::stdout().is_terminal() {
        format!("\x1b[1;31m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The summary printed after a run or a comparison.
pub fn summary(report: &Report) -> String {
    let mut lines = Vec::new();
    for b in &report.benchmarks {
        let line = format!(
            "{:<44} {:>12} {:<12} (min {}, max {}, {} repeats){}",
            b.id,
            report::human(b.median),
            b.unit,
            report::human(b.min),
            report::human(b.max),
            b.repeats,
            match &b.checksum {
                Some(c) if c.ok => format!(" checksum ok {}/{}", c.matched, c.vectors),
                Some(c) => format!(" CHECKSUM WRONG {}/{}", c.matched, c.vectors),
                None => String::new(),
            }
        );
        lines.push(if b.ok {
            line
        } else {
            red(&format!("{line}  <- WRONG RESULT"))
        });
    }
    for f in &report.failures {
        lines.push(red(&format!("{:<44} did not run: {}", f.group, f.error)));
    }
    if let Some(c) = &report.comparison {
        lines.push(format!("\nagainst baseline {}:", c.baseline));
        if let Some(warning) = c.machine_warning() {
            lines.push(red(&format!("warning: {warning}")));
        }
        for r in &c.rows {
            let speed = r
                .speed
                .map(|s| format!("{s:.3}x"))
                .unwrap_or_else(|| "-".into());
            let line = format!("{:<44} {:>8}  {:?}", r.id, speed, r.verdict);
            lines.push(if r.verdict == report::Verdict::Regression {
                red(&line)
            } else {
                line
            });
        }
    }
    lines.join("\n")
}

/// Exit status rule: wrong results, benchmarks that did not run, and regressions fail.
///
/// # Errors
/// A [`Verdict`] naming what failed.
pub fn verdict(report: &Report) -> Result<(), Verdict> {
    let mut problems = Vec::new();
    let wrong: Vec<&str> = report.wrong().iter().map(|b| b.id.as_str()).collect();
    if !wrong.is_empty() {
        problems.push(format!("wrong results: {}", wrong.join(", ")));
    }
    if !report.failures.is_empty() {
        let groups: Vec<&str> = report.failures.iter().map(|f| f.group.as_str()).collect();
        problems.push(format!("did not run: {}", groups.join(", ")));
    }
    if let Some(c) = &report.comparison {
        let slow: Vec<String> = c
            .regressions()
            .iter()
            .map(|r| format!("{} ({:.3}x)", r.id, r.speed.unwrap_or(0.0)))
            .collect();
        if !slow.is_empty() {
            problems.push(format!(
                "slower than the baseline by more than {:.0}%: {}",
                c.threshold * 100.0,
                slow.join(", ")
            ));
            if let Some(warning) = c.machine_warning() {
                problems.push(warning);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Verdict(problems.join("; ")))
    }
}

/// `suite`: runs, writes, prints the summary and where the files are.
///
/// # Errors
/// As [`run`], or a [`Verdict`].
pub fn main(args: &SuiteArgs) -> anyhow::Result<()> {
    let (report, plots) = run(args)?;
    println!("{}", summary(&report));
    println!(
        "\nwrote {} , {} and {} plot(s) in {:.1} s",
        args.out.join("report.json").display(),
        args.out.join("report.md").display(),
        plots.len(),
        report.duration_seconds
    );
    verdict(&report)?;
    Ok(())
}

/// The `compare` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline report.json.
    pub baseline: PathBuf,
    /// The report.json to judge.
    pub current: PathBuf,
    /// The fraction slower than the baseline that counts as a regression.
    #[arg(long, default_value_t = 0.10)]
    pub threshold: f64,
}

/// `compare`: two saved reports, without running anything; exit 1 on a regression.
///
/// # Errors
/// Unreadable reports, or a [`Verdict`].
pub fn compare_main(args: &CompareArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.threshold > 0.0 && args.threshold < 1.0,
        "--threshold must be between 0 and 1"
    );
    let baseline = load_report(&args.baseline)?;
    let mut current = load_report(&args.current)?;
    current.comparison = Some(report::compare(&baseline, &current, args.threshold));
    println!("{}", summary(&current));
    verdict(&current)?;
    Ok(())
}

/// The `render` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct RenderArgs {
    /// A report.json.
    pub report: PathBuf,
    /// Where to write report.md and the plots (default: the report's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `render`: report.md and the plots again from a saved report.json (after an upgrade, or
/// for a report copied from another machine).
///
/// # Errors
/// An unreadable report or an unwritable directory.
pub fn render_main(args: &RenderArgs) -> anyhow::Result<()> {
    let report = load_report(&args.report)?;
    report
        .validate()
        .with_context(|| format!("{}", args.report.display()))?;
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => args
            .report
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let plots = write_plots_and_markdown(&report, &dir)?;
    println!(
        "wrote {} and {} plot(s)",
        dir.join("report.md").display(),
        plots.len()
    );
    Ok(())
}
