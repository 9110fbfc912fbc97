//! `bystack-bench tune`: searches the miner's settings on this machine for the best stable hash
//! rate and writes a measured hardware profile (schema in hw-profiles/README.md) that
//! `bystack-miner --profile` loads.
//!
//! What is timed is what the miner does: every configuration is opened with the miner's own
//! [`open_devices`] (so `--batch` becomes the per-call nonce chunk exactly as it does there),
//! one seed is prepared outside the timed loop, and each repeat runs `search` calls of
//! [`Device::chunk`] nonces with an unreachable target until a stop flag is raised after
//! `--seconds`; the rate is hashes over the wall time until the last call returns.
//!
//! The search, for each device (the CPU; each GPU that a GPU backend reports):
//! 1. **correctness**: every candidate backend hashes the 12 real vectors
//!    ([`crate::checksum`]); one that fails is reported and never chosen;
//! 2. **backend**: each candidate at its defaults (CPU: one thread per core; GPU: the
//!    backend's batch);
//! 3. **threads** (CPU): the two best kernels at 1, 2, 4, … threads, the core count, and one
//!    less than it above two cores;
//! 4. **batch**: the best so far with larger search calls (CPU: 4× and 16× the thread count
//!    of nonces per call, against the miner's 2×; GPU: launch sizes around the default and
//!    1024–8192, leaving out any whose single launch would take more than half a repeat,
//!    since a launch cannot be stopped part-way).
//!
//! Each trial's figure is the median of its repeats; it is *stable* when `(max − min) /
//! median` is at most `--max-spread`. A device's fastest trial, if unstable, is re-measured
//! once with twice the repeats; then the trial with the highest dependable rate wins: the
//! median of a stable trial, the slowest repeat of an unstable one. (Plain "fastest stable"
//! would hand a noisy machine's win to a kernel ten times slower that happened to be steady.)
//! The profile holds one backend, so the winner over all devices is taken.
//!
//! Finally the winner and the miner's defaults (`auto`, threads 0, batch 0, duty 100) are
//! measured interleaved, default–tuned then tuned–default, so that drift in a shared
//! machine's speed falls on both. Should the defaults come out ahead, the defaults are written
//! and the notes say so: a profile from `tune` is never slower than no profile in the run that
//! made it.
//!
//! Candidates by default: every CPU kernel this machine supports (`cpu-*`; `auto` and `cpu`
//! are the best of these and are measured as the defaults), and every available GPU backend
//! except on a software adapter (Mesa lavapipe / llvmpipe, a Vulkan driver running on the
//! CPU, far slower than the CPU kernels): name such a backend, `reference` or `float` with
//! `--backend` to measure it. Other miners' "intensity" is the GPU launch size here
//! (`batch`); the duty cycle is not searched (below 100 % it only lowers the rate) and is
//! written as `--duty` gives it. GPU backends are tuned on device 0 and the profile lists
//! `devices = [0]`.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bystack_kernels::backend::PreparedSeed;
use bystack_kernels::list_backends;
use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_miner::backends::open_devices;
use bystack_miner::device::Device;
use bystack_miner::profile::{self, MachineInfo, Profile, Provenance, ProvenanceKind};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::machine;
use crate::tensority::is_batched;

/// The `tune` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneArgs {
    /// Where to write the profile, e.g. hw-profiles/NAME.toml.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// The profile's name (default: the file name without `.toml`).
    #[arg(long)]
    pub name: Option<String>,
    /// Only these backends, comma-separated (`list` names; software Vulkan, `reference` and
    /// `float` only when named here).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub backend: Vec<String>,
    /// Seconds per repeat [default: 3, or 0.3 with --quick].
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Repeats per trial [default: 3, or 2 with --quick].
    #[arg(long)]
    pub repeats: Option<usize>,
    /// The largest `(max - min) / median` of a trial's repeats that counts as stable.
    #[arg(long, default_value_t = 0.15)]
    pub max_spread: f64,
    /// Smoke run for CI (a few seconds): one backend (the first of --backend, else the best CPU
    /// kernel), two settings, short repeats, then the comparison with the defaults.
    #[arg(long)]
    pub quick: bool,
    /// The duty cycle to write, 1-100 percent (not searched: below 100 it only lowers the rate).
    #[arg(long, default_value_t = 100)]
    pub duty: u8,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
    /// Print the result as one JSON object on stdout (the summary then goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// Miner settings: what a profile sets and a trial measures.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Settings {
    /// The backend (`--backend`).
    pub backend: String,
    /// CPU worker threads, 0 = one per core (`--threads`).
    pub threads: usize,
    /// Nonces per search call (GPU: hashes per launch), 0 = the default (`--batch`).
    pub batch: usize,
}

impl Settings {
    /// The miner's settings without a profile or flags.
    pub fn defaults() -> Self {
        Self {
            backend: "auto".into(),
            threads: 0,
            batch: 0,
        }
    }
}

impl std::fmt::Display for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} threads {} batch {}",
            self.backend, self.threads, self.batch
        )
    }
}

/// One measured configuration.
#[derive(Debug, Clone, Serialize)]
pub struct TrialResult {
    /// The device searched (`cpu`, or the GPU's name as its backend reports it).
    pub device: String,
    /// The search step: `backend`, `threads`, `batch` or `remeasure`.
    pub phase: String,
    /// What was measured.
    pub settings: Settings,
    /// The device as the miner names it once opened (e.g. `cpu-amx`, `cuda:0`).
    pub opened: String,
    /// Nonces per search call in effect.
    pub chunk: u64,
    /// Median hashes per second over the repeats.
    pub hash_rate: f64,
    /// `(max - min) / median` of the repeats.
    pub spread: f64,
    /// Whether the spread is within `--max-spread`.
    pub stable: bool,
    /// Every repeat's hashes per second.
    pub repeats: Vec<f64>,
}

/// A backend left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Excluded {
    /// The backend or configuration.
    pub backend: String,
    /// Why.
    pub reason: String,
}

/// What a tuning run found and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct TuneResult {
    /// The profile written.
    pub path: PathBuf,
    /// Its name.
    pub name: String,
    /// The settings written to the profile: `tuned`, or the defaults when they measured faster.
    pub written: Settings,
    /// The best stable settings the search found.
    pub tuned: Settings,
    /// Whether the defaults were written because they beat `tuned` in the final phase.
    pub defaults_written: bool,
    /// The profile's `provenance.hash_rate`: the final-phase median of what was written.
    pub hash_rate: f64,
    /// Final-phase median of `tuned`, H/s.
    pub tuned_hash_rate: f64,
    /// Final-phase median of the defaults, H/s (`provenance.default_hash_rate`).
    pub default_hash_rate: f64,
    /// Final-phase repeats of `tuned`, H/s.
    pub tuned_repeats: Vec<f64>,
    /// Final-phase repeats of the defaults, H/s.
    pub default_repeats: Vec<f64>,
    /// Every device's best trial.
    pub best_per_device: Vec<TrialResult>,
    /// Every trial of the search, in order.
    pub trials: Vec<TrialResult>,
    /// Backends and configurations left out (failed checksum, software adapter, errors).
    pub excluded: Vec<Excluded>,
    /// Seconds per repeat.
    pub seconds: f64,
    /// Repeats per trial.
    pub repeats: usize,
    /// Wall time of the whole run, seconds.
    pub elapsed_seconds: f64,
    /// `/proc/loadavg`'s 1-minute load when the search started and when the final phase
    /// ended: other work on the machine shows here (it includes this run's own threads).
    pub load_1m: [Option<f64>; 2],
}

/// Runs `tune` and prints its summary (and JSON with `--json`).
///
/// # Errors
/// As [`tune`].
pub fn main(args: &TuneArgs) -> anyhow::Result<()> {
    let result = tune(args)?;
    let summary = summary(&result);
    if args.json {
        eprintln!("{summary}");
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

/// Searches this machine's settings, measures them against the defaults and writes the
/// profile to `args.out`.
///
/// # Errors
/// Bad options (an unknown or unavailable `--backend`, a value out of range), an existing
/// `--out` without `--force`, no candidate that passes the checksum and measures, a default
/// configuration that cannot be opened, a profile the miner would refuse, or I/O.
pub fn tune(args: &TuneArgs) -> anyhow::Result<TuneResult> {
    let started = Instant::now();
    let load_at_start = load_1m();
    let plan = Plan::from_args(args)?;
    let name = profile_name(args)?;
    ensure!(
        args.force || !args.out.exists(),
        "{} exists; pass --force to overwrite it",
        args.out.display()
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let (candidates, excluded) = candidates(&args.backend, args.quick)?;
    let mut tuner = Tuner::new(plan, cores, excluded);
    let groups = tuner.check(candidates)?;
    ensure!(
        !groups.is_empty(),
        "no backend passed the correctness checksum: {}",
        describe_excluded(&tuner.excluded)
    );

    let planned = tuner.planned_trials(&groups);
    let final_repeats = 2 * plan.repeats;
    let estimate = (planned * plan.repeats + final_repeats) as f64 * plan.seconds
        + (planned + 2) as f64 * plan.warm_up();
    tuner.progress.start(
        (planned * plan.repeats + final_repeats) as u64,
        &format!(
            "plan: {planned} trials x {} repeats x {} s, then {} interleaved repeats against \
             the defaults: about {:.0} s plus seed preparation",
            plan.repeats, plan.seconds, final_repeats, estimate
        ),
    );

    let mut best_per_device = Vec::new();
    for group in &groups {
        tuner.search(group);
        if let Some(best) = tuner.choose(&group.device) {
            best_per_device.push(tuner.trials[best].clone());
        }
    }
    let Some(winner) = best_per_device
        .iter()
        .max_by(|a, b| a.hash_rate.total_cmp(&b.hash_rate))
        .cloned()
    else {
        bail!(
            "no configuration could be measured: {}",
            describe_excluded(&tuner.excluded)
        );
    };

    let default_ok = tuner.default_passes_checksum()?;
    let (tuned_repeats, default_repeats) = tuner.final_phase(&winner.settings)?;
    tuner.progress.finish();
    let tuned_hash_rate = crate::median(&tuned_repeats).unwrap_or(0.0);
    let default_hash_rate = crate::median(&default_repeats).unwrap_or(0.0);
    let defaults_written = default_ok && tuned_hash_rate < default_hash_rate;
    let (written, hash_rate) = if defaults_written {
        (Settings::defaults(), default_hash_rate)
    } else {
        (winner.settings.clone(), tuned_hash_rate)
    };

    let mut result = TuneResult {
        path: args.out.clone(),
        name,
        written,
        tuned: winner.settings.clone(),
        defaults_written,
        hash_rate,
        tuned_hash_rate,
        default_hash_rate,
        tuned_repeats,
        default_repeats,
        best_per_device,
        trials: tuner.trials,
        excluded: tuner.excluded,
        seconds: plan.seconds,
        repeats: plan.repeats,
        elapsed_seconds: 0.0,
        load_1m: [load_at_start, load_1m()],
    };
    let notes = notes(&result, &winner, default_ok, args.duty);
    let gpu = is_batched(&winner.opened);
    let text = profile_text(&result, &winner, args.duty, gpu && !defaults_written, notes)?;
    write_profile(&args.out, &text, args.force)?;
    result.elapsed_seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

/// Seconds, repeats and the stability bar, checked.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seconds: f64,
    repeats: usize,
    max_spread: f64,
    quick: bool,
}

impl Plan {
    fn from_args(args: &TuneArgs) -> anyhow::Result<Self> {
        let seconds = args.seconds.unwrap_or(if args.quick { 0.3 } else { 3.0 });
        let repeats = args.repeats.unwrap_or(if args.quick { 2 } else { 3 });
        ensure!(
            seconds.is_finite() && seconds > 0.0,
            "--seconds must be positive, got {seconds}"
        );
        ensure!(repeats >= 1, "--repeats must be at least 1");
        ensure!(
            args.max_spread.is_finite() && args.max_spread > 0.0,
            "--max-spread must be positive, got {}",
            args.max_spread
        );
        ensure!(
            (1..=100).contains(&args.duty),
            "--duty must be 1-100 percent, got {}",
            args.duty
        );
        Ok(Self {
            seconds,
            repeats,
            max_spread: args.max_spread,
            quick: args.quick,
        })
    }

    /// An untimed run before the first repeat of a configuration, so thread start-up and page
    /// faults stay out of the figures.
    fn warm_up(&self) -> f64 {
        self.seconds.min(1.0) / 2.0
    }
}

fn profile_name(args: &TuneArgs) -> anyhow::Result<String> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .out
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string(),
    };
    ensure!(
        !name.trim().is_empty(),
        "the profile needs a name: give --name or an --out file name"
    );
    Ok(name)
}

/// The candidates of one device, all passing the checksum.
#[derive(Debug, Clone)]
struct Group {
    /// `cpu` or the GPU's name.
    device: String,
    gpu: bool,
    backends: Vec<String>,
    /// Hashes per launch of each GPU backend at its default batch (0 for CPU backends).
    default_batches: Vec<usize>,
}

/// Whether a GPU backend's device is a CPU in disguise (Mesa's software Vulkan).
pub(crate) fn software_adapter(info: &bystack_kernels::BackendInfo) -> bool {
    let device = info.device.to_lowercase();
    device.contains("llvmpipe")
        || device.contains("lavapipe")
        || info.capabilities.iter().any(|c| c == "cpu")
}

/// The backends to search: `requested` (each must exist and be available here), else every
/// available CPU kernel and every GPU backend not on a software adapter. `quick` keeps one.
fn candidates(requested: &[String], quick: bool) -> anyhow::Result<(Vec<String>, Vec<Excluded>)> {
    let listed = list_backends();
    let mut excluded = Vec::new();
    let mut chosen = Vec::new();
    if requested.is_empty() {
        for info in &listed {
            if !info.available || matches!(info.name.as_str(), "reference" | "float") {
                continue;
            }
            if is_batched(&info.name) && software_adapter(info) {
                excluded.push(Excluded {
                    backend: info.name.clone(),
                    reason: format!(
                        "software adapter ({}), far slower than the CPU kernels; name it with \
                         --backend to measure it",
                        info.device
                    ),
                });
                continue;
            }
            chosen.push(info.name.clone());
        }
        if quick {
            // The kernel `cpu` picks: the one the miner's defaults use on a CPU-only machine.
            let best = open_devices("cpu", &[], 0, 0)
                .ok()
                .and_then(|d| d.first().map(|d| d.backend.info().name));
            chosen = vec![best.unwrap_or_else(|| "cpu".into())];
        }
    } else {
        for name in requested.iter().map(|n| n.trim()) {
            ensure!(!name.is_empty(), "--backend has an empty name");
            if !matches!(name, "auto" | "cpu") {
                let Some(info) = listed.iter().find(|b| b.name == name) else {
                    bail!(
                        "unknown backend {name:?} in --backend; known: auto, cpu, {}",
                        listed
                            .iter()
                            .map(|b| b.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                ensure!(
                    info.available,
                    "backend {name} in --backend is not available here: {}",
                    info.device
                );
            }
            chosen.push(name.to_string());
        }
        if quick {
            chosen.truncate(1);
        }
    }
    Ok((chosen, excluded))
}

/// Shows progress: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new() -> Self {
        Self { bar: None }
    }

    fn start(&mut self, steps: u64, plan: &str) {
        self.line(plan);
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(steps);
            if let Ok(style) =
                ProgressStyle::with_template("tune {bar:40} {pos}/{len} repeats (eta {eta}) {msg}")
            {
                bar.set_style(style);
            }
            self.bar = Some(bar);
        }
    }

    fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn doing(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
        }
    }

    fn step(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn add_steps(&self, steps: usize) {
        if let Some(bar) = &self.bar {
            bar.inc_length(steps as u64);
        }
    }

    fn drop_steps(&self, steps: usize) {
        if let Some(bar) = &self.bar {
            bar.dec_length(steps as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One opened configuration with its seed prepared: the thing a repeat times.
struct Timed {
    device: Device,
    prepared: Arc<dyn PreparedSeed>,
}

impl Timed {
    fn open(settings: &Settings, seed: &[u8; 32]) -> anyhow::Result<Self> {
        let mut devices = open_devices(&settings.backend, &[], settings.threads, settings.batch)
            .with_context(|| format!("opening {settings}"))?;
        ensure!(
            devices.len() == 1,
            "{settings} opened {} devices, expected one",
            devices.len()
        );
        let device = devices.remove(0);
        let prepared = device
            .backend
            .prepare(seed)
            .with_context(|| format!("preparing a seed on {}", device.name))?;
        Ok(Self { device, prepared })
    }

    /// Hashes per second of the miner's search loop over about `seconds`; `salt` picks a
    /// fresh header and nonce range.
    fn run(&self, seconds: f64, salt: u64) -> anyhow::Result<f64> {
        let template = HeaderTemplate::new(1, salt, &[7; 32], 1_700_000_000, &[1; 32], &[2; 32], 0);
        let stop = AtomicBool::new(false);
        let chunk = self.device.chunk.max(1);
        let started = Instant::now();
        let hashes = std::thread::scope(|s| -> anyhow::Result<u64> {
            let (done, done_rx) = mpsc::channel::<()>();
            let stop = &stop;
            s.spawn(move || {
                // Wakes at the deadline, or at once when the loop below ends early.
                let _ = done_rx.recv_timeout(Duration::from_secs_f64(seconds));
                stop.store(true, Ordering::SeqCst);
            });
            let mut hashes = 0;
            let mut next = (salt & 0xff_ffff) << 40;
            while !stop.load(Ordering::SeqCst) {
                let outcome = self
                    .prepared
                    .search(&template, next..next + chunk, &Target::Never, stop)
                    .with_context(|| format!("searching on {}", self.device.name))?;
                hashes += outcome.hashes;
                next += chunk;
            }
            drop(done);
            Ok(hashes)
        })?;
        let elapsed = started.elapsed().as_secs_f64();
        ensure!(
            hashes > 0,
            "{} finished no hash within {seconds} s",
            self.device.name
        );
        Ok(hashes as f64 / elapsed)
    }
}

/// The search's state: trials so far, exclusions, progress.
struct Tuner {
    plan: Plan,
    cores: usize,
    seed: [u8; 32],
    salt: u64,
    trials: Vec<TrialResult>,
    excluded: Vec<Excluded>,
    progress: Progress,
}

impl Tuner {
    fn new(plan: Plan, cores: usize, excluded: Vec<Excluded>) -> Self {
        Self {
            plan,
            cores,
            seed: bystack_kernels::tensority::sha3_256(b"bystack-bench tune"),
            salt: 0,
            trials: Vec::new(),
            excluded,
            progress: Progress::new(),
        }
    }

    /// Opens every candidate at its defaults, drops aliases of one kernel (`cpu` and
    /// `cpu-amx`), runs the checksum, and groups what passes by device.
    fn check(&mut self, candidates: Vec<String>) -> anyhow::Result<Vec<Group>> {
        let mut groups: Vec<Group> = Vec::new();
        let mut kernels = HashSet::new();
        for name in candidates {
            let opened = match open_devices(&name, &[], 0, 0) {
                Ok(mut devices) if !devices.is_empty() => devices.remove(0),
                Ok(_) => {
                    self.exclude(&name, "opened no device".into());
                    continue;
                }
                Err(e) => {
                    self.exclude(&name, format!("cannot open: {e}"));
                    continue;
                }
            };
            let info = opened.backend.info();
            let gpu = is_batched(&info.name);
            if !kernels.insert((gpu, info.device.clone(), info.kernel.clone())) {
                self.exclude(
                    &name,
                    format!("the same kernel ({}) as another candidate", info.kernel),
                );
                continue;
            }
            match crate::checksum::compute(opened.backend.as_ref()) {
                Ok(sum) if sum.ok => self.progress.line(&format!(
                    "checksum {name}: ok ({}/{} vectors)",
                    sum.matched, sum.vectors
                )),
                Ok(sum) => {
                    self.exclude(
                        &name,
                        format!(
                            "checksum failed: {}/{} vectors matched ({} != {})",
                            sum.matched, sum.vectors, sum.value, sum.expected
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    self.exclude(&name, format!("checksum could not run: {e:#}"));
                    continue;
                }
            }
            let device = if gpu {
                info.device.clone()
            } else {
                "cpu".into()
            };
            let default_batch = if gpu { info.parallelism } else { 0 };
            match groups.iter_mut().find(|g| g.device == device) {
                Some(group) => {
                    group.backends.push(name);
                    group.default_batches.push(default_batch);
                }
                None => groups.push(Group {
                    device,
                    gpu,
                    backends: vec![name],
                    default_batches: vec![default_batch],
                }),
            }
        }
        Ok(groups)
    }

    fn exclude(&mut self, backend: &str, reason: String) {
        self.progress.line(&format!("excluded {backend}: {reason}"));
        self.excluded.push(Excluded {
            backend: backend.into(),
            reason,
        });
    }

    /// The trials [`Self::search`] will run at most (the GPU batch sweep may skip some).
    fn planned_trials(&self, groups: &[Group]) -> usize {
        groups
            .iter()
            .map(|g| {
                let n = g.backends.len();
                match (self.plan.quick, g.gpu) {
                    (true, _) => 2,
                    (false, false) => n + n.min(2) * (thread_counts(self.cores).len() - 1) + 2,
                    (false, true) => n + GPU_BATCHES.len() + 3,
                }
            })
            .sum()
    }

    /// Runs one trial; `None` (recorded as excluded) when the configuration fails.
    fn trial(
        &mut self,
        device: &str,
        phase: &str,
        settings: Settings,
        repeats: usize,
    ) -> Option<usize> {
        self.progress.doing(&settings.to_string());
        match self.measure(&settings, repeats) {
            Ok((timed, rates)) => {
                let (hash_rate, spread) = median_and_spread(&rates);
                let trial = TrialResult {
                    device: device.into(),
                    phase: phase.into(),
                    opened: timed.device.name.clone(),
                    chunk: timed.device.chunk,
                    stable: spread <= self.plan.max_spread,
                    settings,
                    hash_rate,
                    spread,
                    repeats: rates,
                };
                self.progress.line(&format!(
                    "{:<9} {:<34} chunk {:>6}: {:>10.2} H/s  spread {:>5.1}%{}",
                    trial.phase,
                    trial.settings.to_string(),
                    trial.chunk,
                    trial.hash_rate,
                    trial.spread * 100.0,
                    if trial.stable { "" } else { "  (unstable)" }
                ));
                self.trials.push(trial);
                Some(self.trials.len() - 1)
            }
            Err(e) => {
                self.exclude(&settings.to_string(), format!("{e:#}"));
                None
            }
        }
    }

    fn measure(
        &mut self,
        settings: &Settings,
        repeats: usize,
    ) -> anyhow::Result<(Timed, Vec<f64>)> {
        let timed = Timed::open(settings, &self.seed)?;
        self.salt += 1;
        timed.run(self.plan.warm_up(), self.salt)?;
        let mut rates = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            self.salt += 1;
            rates.push(timed.run(self.plan.seconds, self.salt)?);
            self.progress.step();
        }
        Ok((timed, rates))
    }

    /// The search steps for one device (module docs).
    fn search(&mut self, group: &Group) {
        let repeats = self.plan.repeats;
        let cores = self.cores;
        let device = group.device.as_str();
        let first = |gpu: bool, backend: &str| Settings {
            backend: backend.into(),
            threads: if gpu { 0 } else { cores },
            batch: 0,
        };
        if self.plan.quick {
            let backend = &group.backends[0];
            let Some(at_default) =
                self.trial(device, "backend", first(group.gpu, backend), repeats)
            else {
                return;
            };
            let larger = if group.gpu {
                2 * group.default_batches[0].max(1)
            } else {
                4 * cores
            };
            if !group.gpu || self.launch_fits(larger, at_default) {
                let mut settings = first(group.gpu, backend);
                settings.batch = larger;
                self.trial(device, "batch", settings, repeats);
            }
            return;
        }
        let mut by_rate: Vec<usize> = group
            .backends
            .iter()
            .filter_map(|b| self.trial(device, "backend", first(group.gpu, b), repeats))
            .collect();
        by_rate.sort_by(|&a, &b| {
            self.trials[b]
                .hash_rate
                .total_cmp(&self.trials[a].hash_rate)
        });
        let Some(&best_backend) = by_rate.first() else {
            return;
        };
        if group.gpu {
            let backend = self.trials[best_backend].settings.backend.clone();
            let default_batch = group
                .backends
                .iter()
                .position(|b| *b == backend)
                .map(|i| group.default_batches[i])
                .unwrap_or(0);
            for batch in gpu_batches(default_batch) {
                if !self.launch_fits(batch, best_backend) {
                    self.progress.line(&format!(
                        "skipped {backend} batch {batch}: one launch would take more than half \
                         a repeat at {:.2} H/s",
                        self.trials[best_backend].hash_rate
                    ));
                    self.progress.drop_steps(repeats);
                    continue;
                }
                let settings = Settings {
                    backend: backend.clone(),
                    threads: 0,
                    batch,
                };
                self.trial(device, "batch", settings, repeats);
            }
            return;
        }
        for &index in by_rate.iter().take(2) {
            let backend = self.trials[index].settings.backend.clone();
            for threads in thread_counts(cores).into_iter().filter(|&t| t != cores) {
                let settings = Settings {
                    backend: backend.clone(),
                    threads,
                    batch: 0,
                };
                self.trial(device, "threads", settings, repeats);
            }
        }
        let Some(best) = self.best_in(device) else {
            return;
        };
        let base = self.trials[best].settings.clone();
        let threads = if base.threads == 0 {
            cores
        } else {
            base.threads
        };
        for factor in [4, 16] {
            let settings = Settings {
                batch: factor * threads,
                ..base.clone()
            };
            self.trial(device, "batch", settings, repeats);
        }
    }

    /// Whether one launch of `batch` hashes fits in half a repeat at the rate of trial `at`.
    fn launch_fits(&self, batch: usize, at: usize) -> bool {
        batch as f64 / self.trials[at].hash_rate.max(f64::MIN_POSITIVE) <= self.plan.seconds / 2.0
    }

    /// The index of `device`'s fastest trial, counting only the latest measurement of each
    /// configuration.
    fn best_in(&self, device: &str) -> Option<usize> {
        self.latest(device).into_iter().max_by(|&a, &b| {
            self.trials[a]
                .hash_rate
                .total_cmp(&self.trials[b].hash_rate)
        })
    }

    fn latest(&self, device: &str) -> Vec<usize> {
        let mut seen = HashSet::new();
        let mut latest: Vec<usize> = (0..self.trials.len())
            .rev()
            .filter(|&i| self.trials[i].device == device)
            .filter(|&i| seen.insert(self.trials[i].settings.clone()))
            .collect();
        latest.reverse();
        latest
    }

    /// `device`'s winner: the fastest trial if stable; an unstable fastest is re-measured once
    /// with twice the repeats; then the highest [`dependable_rate`].
    fn choose(&mut self, device: &str) -> Option<usize> {
        let best = self.best_in(device)?;
        if self.trials[best].stable {
            return Some(best);
        }
        let settings = self.trials[best].settings.clone();
        let repeats = 2 * self.plan.repeats;
        self.progress.add_steps(repeats);
        self.trial(device, "remeasure", settings, repeats);
        self.latest(device).into_iter().max_by(|&a, &b| {
            dependable_rate(&self.trials[a]).total_cmp(&dependable_rate(&self.trials[b]))
        })
    }

    /// Whether the backend the defaults open passes the checksum (if not, the defaults are
    /// only a yardstick and are never written).
    fn default_passes_checksum(&mut self) -> anyhow::Result<bool> {
        let defaults = Settings::defaults();
        let devices = open_devices(&defaults.backend, &[], 0, 0)
            .with_context(|| format!("opening the defaults ({defaults})"))?;
        let device = devices.first().context("the defaults opened no device")?;
        let sum = crate::checksum::compute(device.backend.as_ref())?;
        if !sum.ok {
            self.exclude(
                &format!("defaults ({})", device.name),
                format!(
                    "checksum failed: {}/{} vectors matched",
                    sum.matched, sum.vectors
                ),
            );
        }
        Ok(sum.ok)
    }

    /// The chosen settings and the defaults, interleaved: default then tuned in even rounds,
    /// tuned then default in odd ones. Returns (tuned, default) repeats.
    fn final_phase(&mut self, tuned: &Settings) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
        let defaults = Settings::defaults();
        self.progress
            .doing(&format!("final: {tuned} against the defaults"));
        let tuned_timed = Timed::open(tuned, &self.seed)?;
        let default_timed = Timed::open(&defaults, &self.seed)?;
        let warm_up = self.plan.warm_up();
        self.salt += 1;
        tuned_timed.run(warm_up, self.salt)?;
        default_timed.run(warm_up, self.salt)?;
        let (mut tuned_rates, mut default_rates) = (Vec::new(), Vec::new());
        for round in 0..self.plan.repeats {
            let mut pair = [
                (&default_timed, &mut default_rates),
                (&tuned_timed, &mut tuned_rates),
            ];
            if round % 2 == 1 {
                pair.reverse();
            }
            for (timed, rates) in pair {
                self.salt += 1;
                rates.push(timed.run(self.plan.seconds, self.salt)?);
                self.progress.step();
            }
        }
        let (t, ts) = median_and_spread(&tuned_rates);
        let (d, ds) = median_and_spread(&default_rates);
        self.progress.line(&format!(
            "final     tuned {tuned}: {t:.2} H/s (spread {:.1}%); defaults ({defaults}, opened \
             as {}): {d:.2} H/s (spread {:.1}%)",
            ts * 100.0,
            default_timed.device.name,
            ds * 100.0
        ));
        Ok((tuned_rates, default_rates))
    }
}

/// Launch sizes tried on a GPU besides its default.
const GPU_BATCHES: [usize; 4] = [1024, 2048, 4096, 8192];

/// Half, twice and four times the default launch, and [`GPU_BATCHES`]; without the default.
fn gpu_batches(default_batch: usize) -> Vec<usize> {
    let mut batches: Vec<usize> = [default_batch / 2, 2 * default_batch, 4 * default_batch]
        .into_iter()
        .chain(GPU_BATCHES)
        .filter(|&b| b > 0 && b != default_batch)
        .collect();
    batches.sort_unstable();
    batches.dedup();
    batches
}

/// 1, 2, 4, … below `cores`, `cores`, and `cores - 1` above two cores.
fn thread_counts(cores: usize) -> Vec<usize> {
    let cores = cores.max(1);
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |t| t.checked_mul(2))
        .take_while(|&t| t < cores)
        .collect();
    counts.push(cores);
    if cores > 2 {
        counts.push(cores - 1);
    }
    counts.sort_unstable();
    counts.dedup();
    counts
}

/// What a trial can be counted on for: its median when stable, else its slowest repeat. A
/// plain "fastest stable" rule would let a far slower kernel win on a noisy machine where every
/// fast configuration is unstable; this one picks an unstable configuration only when even
/// its worst repeat beats every stable median.
fn dependable_rate(trial: &TrialResult) -> f64 {
    if trial.stable {
        trial.hash_rate
    } else {
        trial.repeats.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// The median and `(max - min) / median` of `rates`.
fn median_and_spread(rates: &[f64]) -> (f64, f64) {
    let median = crate::median(rates).unwrap_or(0.0);
    let max = rates.iter().copied().fold(f64::MIN, f64::max);
    let min = rates.iter().copied().fold(f64::MAX, f64::min);
    let spread = if median > 0.0 {
        (max - min) / median
    } else {
        0.0
    };
    (median, spread)
}

/// The 1-minute load average, where the OS reports it.
fn load_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
}

/// Two decimals for rates (enough for H/s; keeps profiles readable), more below 1 H/s.
fn round_rate(rate: f64) -> f64 {
    let scale = if rate >= 1.0 { 100.0 } else { 1e6 };
    (rate * scale).round() / scale
}

fn describe_excluded(excluded: &[Excluded]) -> String {
    if excluded.is_empty() {
        return "no candidates".into();
    }
    excluded
        .iter()
        .map(|e| format!("{}: {}", e.backend, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn notes(result: &TuneResult, winner: &TrialResult, default_ok: bool, duty: u8) -> String {
    let mut notes = Vec::new();
    let gain = (result.tuned_hash_rate / result.default_hash_rate - 1.0) * 100.0;
    notes.push(if result.defaults_written {
        format!(
            "The defaults (auto, threads 0, batch 0) measured {:.2} H/s against {:.2} H/s for \
             the tuned {} in the interleaved final phase, so the defaults are written.",
            result.default_hash_rate, result.tuned_hash_rate, result.tuned
        )
    } else {
        format!(
            "Tuned {} against the defaults (auto, threads 0, batch 0), interleaved, {} x {} s \
             each: {:.2} vs {:.2} H/s ({gain:+.1}%).",
            result.tuned,
            result.repeats,
            result.seconds,
            result.tuned_hash_rate,
            result.default_hash_rate
        )
    });
    if let [Some(start), Some(end)] = result.load_1m {
        notes.push(format!(
            "1-minute load average {start:.2} at the start, {end:.2} at the end (this run's \
             threads included)."
        ));
    }
    if duty < 100 {
        notes.push(format!(
            "The rates are at full duty; at duty {duty} the miner averages about {duty}% of them."
        ));
    }
    if !default_ok {
        notes.push("The defaults' backend failed the checksum and was only a yardstick.".into());
    }
    if !winner.stable {
        notes.push(format!(
            "The winner's repeats spread {:.1}% (unstable); it was ranked by its slowest repeat, \
             {:.2} H/s, and still beat every stable configuration.",
            winner.spread * 100.0,
            dependable_rate(winner)
        ));
    }
    if result.best_per_device.len() > 1 {
        let bests: Vec<String> = result
            .best_per_device
            .iter()
            .map(|t| format!("{}: {} {:.2} H/s", t.device, t.settings, t.hash_rate))
            .collect();
        notes.push(format!("Best per device: {}.", bests.join("; ")));
    }
    if !result.excluded.is_empty() {
        notes.push(format!(
            "Left out: {}.",
            describe_excluded(&result.excluded)
        ));
    }
    notes.join(" ")
}

fn to_profile_machine(m: &machine::Machine) -> profile::Machine {
    profile::Machine {
        cpu_model: m.cpu_model.clone(),
        cpu_features: m.cpu_features.clone(),
        cores: Some(m.cores),
        memory_bytes: m.memory_bytes,
        gpus: m.gpus.clone(),
        os: Some(m.os.clone()),
        kernel: m.kernel.clone(),
        arch: Some(m.arch.clone()),
    }
}

/// The profile as TOML, with a comment header; checked by the miner's own parser.
fn profile_text(
    result: &TuneResult,
    winner: &TrialResult,
    duty: u8,
    gpu: bool,
    notes: String,
) -> anyhow::Result<String> {
    let machine = machine::describe();
    let versions = machine::versions();
    let date = machine::utc_now();
    let written = &result.written;
    let hardware = if gpu {
        format!("{} (GPU)", winner.device)
    } else {
        format!("{}, {} logical CPUs", machine.cpu_model, machine.cores)
    };
    let settings = if result.defaults_written {
        "the miner's defaults (auto, one thread per core, default batch)".to_string()
    } else if gpu {
        format!("{}, batch {}", written.backend, written.batch)
    } else {
        format!(
            "{}, {} threads, {} nonces per search call",
            written.backend,
            written.threads,
            if written.batch == 0 {
                "default".to_string()
            } else {
                written.batch.to_string()
            }
        )
    };
    let profile = Profile {
        name: result.name.clone(),
        description: format!("{hardware}: {settings}"),
        backend: written.backend.clone(),
        threads: written.threads,
        batch: written.batch,
        duty,
        devices: if gpu { vec![0] } else { Vec::new() },
        provenance: Provenance {
            kind: ProvenanceKind::Measured,
            source: format!("bystack-bench tune on {hardware} ({date})"),
            hash_rate: Some(round_rate(result.hash_rate)),
            default_hash_rate: Some(round_rate(result.default_hash_rate)),
            date: Some(date.clone()),
            notes,
            machine: Some(MachineInfo::Table(to_profile_machine(&machine))),
            versions: Some(profile::Versions {
                bystack: versions.bystack,
                git_commit: Some(versions.git_commit),
                rustc: Some(versions.rustc),
                profile: Some(versions.profile),
            }),
            trials: result
                .trials
                .iter()
                .map(|t| profile::Trial {
                    backend: t.settings.backend.clone(),
                    threads: t.settings.threads,
                    batch: t.settings.batch,
                    hash_rate: round_rate(t.hash_rate),
                    spread: (t.spread * 1e4).round() / 1e4,
                })
                .collect(),
        },
    };
    let header = if result.defaults_written {
        format!(
            "# Written by `bystack-bench tune` ({date}). The miner's defaults measured faster\n\
             # here than the best settings the search found (interleaved, same run), so they\n\
             # are written. Trials are in the order measured; rerun tune to refresh\n\
             # (bench/README.md).\n"
        )
    } else {
        format!(
            "# Written by `bystack-bench tune` ({date}): the fastest stable settings found on\n\
             # this machine, measured against the miner's defaults in the same run. Trials are\n\
             # in the order measured; rerun tune to refresh (bench/README.md).\n"
        )
    };
    let text = header + &toml::to_string(&profile).context("serialising the profile")?;
    let parsed = Profile::parse(&result.path, &text)
        .context("the generated profile does not parse as bystack-miner reads it")?;
    ensure!(
        parsed == profile,
        "the generated profile reads back differently from what was measured"
    );
    Ok(text)
}

fn write_profile(path: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Refuse a file that appeared while measuring, too.
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The human-readable summary of a run.
pub fn summary(result: &TuneResult) -> String {
    let mut lines = vec![format!(
        "wrote {} (profile {}): {}{}",
        result.path.display(),
        result.name,
        result.written,
        if result.defaults_written {
            " (the defaults: they measured faster)"
        } else {
            ""
        }
    )];
    lines.push(format!(
        "tuned {}: {:.2} H/s; defaults (auto, threads 0, batch 0): {:.2} H/s; {} x {} s \
         interleaved",
        result.tuned,
        result.tuned_hash_rate,
        result.default_hash_rate,
        result.repeats,
        result.seconds
    ));
    let load = match result.load_1m {
        [Some(start), Some(end)] => format!(", 1-minute load {start:.2} -> {end:.2}"),
        _ => String::new(),
    };
    lines.push(format!(
        "{} trials, {} left out, {:.0} s{load}",
        result.trials.len(),
        result.excluded.len(),
        result.elapsed_seconds
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_cover_powers_of_two_the_cores_and_one_less() {
        assert_eq!(thread_counts(1), [1]);
        assert_eq!(thread_counts(2), [1, 2]);
        assert_eq!(thread_counts(6), [1, 2, 4, 5, 6]);
        assert_eq!(thread_counts(8), [1, 2, 4, 7, 8]);
    }

    #[test]
    fn gpu_batches_leave_out_the_default_and_zero() {
        assert_eq!(gpu_batches(2048), [1024, 4096, 8192]);
        assert_eq!(gpu_batches(2), [1, 4, 8, 1024, 2048, 4096, 8192]);
        assert_eq!(gpu_batches(0), [1024, 2048, 4096, 8192]);
    }

    #[test]
    fn an_unstable_trial_counts_at_its_slowest_repeat() {
        let trial = |repeats: Vec<f64>, stable| TrialResult {
            device: "cpu".into(),
            phase: "backend".into(),
            settings: Settings::defaults(),
            opened: "cpu-x".into(),
            chunk: 4,
            hash_rate: crate::median(&repeats).unwrap(),
            spread: 0.0,
            stable,
            repeats,
        };
        assert_eq!(dependable_rate(&trial(vec![10.0, 12.0, 11.0], true)), 11.0);
        assert_eq!(
            dependable_rate(&trial(vec![300.0, 150.0, 280.0], false)),
            150.0
        );
    }

    #[test]
    fn spread_is_range_over_median() {
        let (median, spread) = median_and_spread(&[90.0, 100.0, 110.0]);
        assert_eq!(median, 100.0);
        assert!((spread - 0.2).abs() < 1e-12);
        assert_eq!(median_and_spread(&[5.0]), (5.0, 0.0));
        assert_eq!(round_rate(462.4851), 462.49);
        assert_eq!(round_rate(0.1234567), 0.123457);
    }
}
