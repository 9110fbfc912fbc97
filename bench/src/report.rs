//! The suite's report: what ran where (machine, versions, date), one entry per benchmark
//! figure with its samples, min/median/max and unit, and the comparison with a baseline.
//!
//! `report.json` is this module's [`Report`] serialised; [`Report::validate`] states the
//! rules every report obeys (and `bench/tests/suite.rs` checks them on a real run).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
use crate::machine::{Machine, Versions};

/// The `schema` field of every report this version writes.
pub const SCHEMA: &str = "bystack-bench-report/1";

/// Units a figure may have.
pub const UNITS: &[&str] = &[
    "H/s",
    "MB/s",
    "ms",
    "blocks/s",
    "tx/s",
    "requests/s",
    "shares/s",
    "rejections/s",
];

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    /// Stable identifier, the key for baseline comparisons, e.g.
    /// `tensority/cpu-amx/threads=2`.
    pub id: String,
    /// The benchmark family: `tensority`, `seed`, `decode`, `pswv`, `relay`, `get-work`,
    /// `stratum`.
    pub group: String,
    /// What was measured, in words.
    pub description: String,
    /// The configuration (backend, threads, window, store, …).
    pub params: BTreeMap<String, serde_json::Value>,
    /// The figure's unit (one of [`UNITS`]).
    pub unit: String,
    /// Whether a larger figure is better (rates) or worse (latencies, times).
    pub higher_is_better: bool,
    /// Number of samples.
    pub repeats: usize,
    /// Every sample, in the order measured.
    pub samples: Vec<f64>,
    /// Smallest sample.
    pub min: f64,
    /// Median sample (the figure compared and plotted).
    pub median: f64,
    /// Largest sample.
    pub max: f64,
    /// For Tensority figures: the checksum over the fixed vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// False when the result is wrong (a checksum mismatch, PSWV ending in another state
    /// than the sequential path): a fast wrong answer is a failure, not a figure.
    pub ok: bool,
}

impl Benchmark {
    /// A figure from its samples.
    ///
    /// # Errors
    /// No samples, or a sample that is not a positive finite number.
    pub fn new(
        id: impl Into<String>,
        group: &str,
        description: &str,
        params: BTreeMap<String, serde_json::Value>,
        unit: &str,
        higher_is_better: bool,
        samples: Vec<f64>,
    ) -> anyhow::Result<Self> {
        let id = id.into();
        anyhow::ensure!(!samples.is_empty(), "{id}: no samples");
        anyhow::ensure!(
            samples.iter().all(|s| s.is_finite() && *s > 0.0),
            "{id}: samples must be positive numbers, got {samples:?}"
        );
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let median = crate::median(&samples).unwrap_or(min);
        Ok(Benchmark {
            id,
            group: group.to_string(),
            description: description.to_string(),
            params,
            unit: unit.to_string(),
            higher_is_better,
            repeats: samples.len(),
            samples,
            min,
            median,
            max,
            checksum: None,
            ok: true,
        })
    }
}

/// A benchmark that could not run (its error), so a report always says what is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The benchmark family.
    pub group: String,
    /// The error.
    pub error: String,
}

/// A whole suite run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// The command line.
    pub command: String,
    /// Whether this was the quick (smoke) run: figures are then only a sign of life.
    pub quick: bool,
    /// Wall time of the whole run, seconds.
    pub duration_seconds: f64,
    /// The machine.
    pub machine: Machine,
    /// The software.
    pub versions: Versions,
    /// Every figure.
    pub benchmarks: Vec<Benchmark>,
    /// Benchmarks that could not run.
    pub failures: Vec<Failure>,
    /// The comparison with `--baseline`, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
}

impl Report {
    /// Checks the rules every report obeys: the schema name; unique ids; units from
    /// [`UNITS`]; positive finite samples, `repeats` of them, with `min ≤ median ≤ max`;
    /// Tensority figures carrying a checksum.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.schema == SCHEMA,
            "schema {} is not {SCHEMA}",
            self.schema
        );
        anyhow::ensure!(!self.date.is_empty(), "no date");
        let mut ids = HashSet::new();
        for b in &self.benchmarks {
            anyhow::ensure!(ids.insert(b.id.as_str()), "{}: duplicate id", b.id);
            anyhow::ensure!(
                UNITS.contains(&b.unit.as_str()),
                "{}: unknown unit {:?}",
                b.id,
                b.unit
            );
            anyhow::ensure!(
                b.repeats == b.samples.len() && b.repeats > 0,
                "{}: {} repeats but {} samples",
                b.id,
                b.repeats,
                b.samples.len()
            );
            for (name, v) in [("min", b.min), ("median", b.median), ("max", b.max)]
                .into_iter()
                .chain(b.samples.iter().map(|&s| ("sample", s)))
            {
                anyhow::ensure!(
                    v.is_finite() && v > 0.0,
                    "{}: {name} {v} is not a positive number",
                    b.id
                );
            }
            anyhow::ensure!(
                b.min <= b.median && b.median <= b.max,
                "{}: min {} ≤ median {} ≤ max {} does not hold",
                b.id,
                b.min,
                b.median,
                b.max
            );
            if b.group == "tensority" {
                anyhow::ensure!(b.checksum.is_some(), "{}: no checksum", b.id);
            }
        }
        Ok(())
    }

    /// A quick report of this machine holding `benchmarks`, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(benchmarks: Vec<Benchmark>) -> Self {
        Report {
            schema: SCHEMA.into(),
            date: "2026-11-29T00:00:00Z".into(),
            command: "test".into(),
            quick: true,
            duration_seconds: 1.0,
            machine: crate::machine::describe(),
            versions: crate::machine::versions(),
            benchmarks,
            failures: vec![],
            comparison: None,
        }
    }

    /// Figures whose result was wrong.
    pub fn wrong(&self) -> Vec<&Benchmark> {
        self.benchmarks.iter().filter(|b| !b.ok).collect()
    }
}

/// How one figure compares with the baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Slower than the baseline by more than the threshold.
    Regression,
    /// Within the threshold.
    Same,
    /// Faster than the baseline by more than the threshold.
    Faster,
    /// In the baseline only.
    Missing,
    /// In this run only.
    New,
}

/// One row of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// The benchmark id.
    pub id: String,
    /// The unit.
    pub unit: String,
    /// The baseline's median.
    pub baseline: Option<f64>,
    /// This run's median.
    pub current: Option<f64>,
    /// Speed relative to the baseline (current/baseline for rates, baseline/current for
    /// latencies): below 1 is slower.
    pub speed: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// A report compared with a baseline report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline's date and commit, for the reader.
    pub baseline: String,
    /// A figure more than this fraction slower is a regression.
    pub threshold: f64,
    /// One row per id in either report.
    pub rows: Vec<ComparisonRow>,
    /// The machine's own speed relative to the baseline's, from the probe figure
    /// ([`PROBE_ID`]) both reports carry: far from 1, the machine (its clock, its neighbours)
    /// changed, and the other verdicts say as much about it as about the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_speed: Option<f64>,
}

/// The id of the machine-speed probe: one thread hashing with SHA3-256 before every family.
pub const PROBE_ID: &str = "probe/sha3-1-thread";

impl Comparison {
    /// A warning when the machine's own speed moved by more than the threshold.
    pub fn machine_warning(&self) -> Option<String> {
        let speed = self.machine_speed?;
        (speed < 1.0 - self.threshold || speed > 1.0 + self.threshold).then(|| {
            format!(
                "this machine ran at {speed:.2}x the baseline's speed on the SHA3 probe \
                 ({PROBE_ID}): it, not only the code, changed; rerun both on a quiet machine \
                 before trusting the verdicts"
            )
        })
    }

    /// Rows that are regressions.
    pub fn regressions(&self) -> Vec<&ComparisonRow> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
            .collect()
    }
}

/// Compares `current` with `baseline`: a figure whose speed relative to the baseline is below
/// `1 - threshold` is a regression, above `1 + threshold` faster.
pub fn compare(baseline: &Report, current: &Report, threshold: f64) -> Comparison {
    let old: BTreeMap<&str, &Benchmark> = baseline
        .benchmarks
        .iter()
        .map(|b| (b.id.as_str(), b))
        .collect();
    let mut rows = Vec::new();
    for b in &current.benchmarks {
        let row = match old.get(b.id.as_str()) {
            Some(o) if o.unit == b.unit && o.median > 0.0 && b.median > 0.0 => {
                let speed = if b.higher_is_better {
                    b.median / o.median
                } else {
                    o.median / b.median
                };
                let verdict = if speed < 1.0 - threshold {
                    Verdict::Regression
                } else if speed > 1.0 + threshold {
                    Verdict::Faster
                } else {
                    Verdict::Same
                };
                ComparisonRow {
                    id: b.id.clone(),
                    unit: b.unit.clone(),
                    baseline: Some(o.median),
                    current: Some(b.median),
                    speed: Some(speed),
                    verdict,
                }
            }
            _ => ComparisonRow {
                id: b.id.clone(),
                unit: b.unit.clone(),
                baseline: None,
                current: Some(b.median),
                speed: None,
                verdict: Verdict::New,
            },
        };
        rows.push(row);
    }
    let current_ids: HashSet<&str> = current.benchmarks.iter().map(|b| b.id.as_str()).collect();
    for b in &baseline.benchmarks {
        if !current_ids.contains(b.id.as_str()) {
            rows.push(ComparisonRow {
                id: b.id.clone(),
                unit: b.unit.clone(),
                baseline: Some(b.median),
                current: None,
                speed: None,
                verdict: Verdict::Missing,
            });
        }
    }
    let machine_speed = rows.iter().find(|r| r.id == PROBE_ID).and_then(|r| r.speed);
    Comparison {
        machine_speed,
        baseline: format!(
            "{} at {} ({})",
            baseline.date,
            short_commit(&baseline.versions.git_commit),
            baseline.machine.cpu_model
        ),
        threshold,
        rows,
    }
}

fn short_commit(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// A number for a person: three significant digits, thousands separated.
pub fn human(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return v.to_string();
    }
    let abs = v.abs();
    let decimals = if abs >= 100.0 {
        0
    } else if abs >= 10.0 {
        1
    } else if abs >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

fn params_text(b: &Benchmark) -> String {
    b.params
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `report.md`: the machine, then one table per benchmark family, failures, and the
/// baseline comparison.
pub fn markdown(report: &Report, plots: &[String]) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let v = &report.versions;
    let _ = writeln!(md, "# bystack benchmark report\n");
    if report.quick {
        let _ = writeln!(
            md,
            "> **Quick run** (`--quick`): tiny inputs and short repeats, to prove every \
             benchmark runs. Its figures are not measurements to compare or publish.\n"
        );
    }
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| date | {} |", report.date);
    let _ = writeln!(md, "| command | `{}` |", report.command);
    let _ = writeln!(md, "| CPU | {} ({} logical CPUs) |", m.cpu_model, m.cores);
    let _ = writeln!(md, "| CPU features | {} |", m.cpu_features.join(" "));
    let memory = m
        .memory_bytes
        .map(|b| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)))
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(md, "| memory | {memory} |");
    let gpus = if m.gpus.is_empty() {
        "none".to_string()
    } else {
        m.gpus.join("; ")
    };
    let _ = writeln!(md, "| GPUs | {gpus} |");
    let _ = writeln!(
        md,
        "| OS | {} {} ({}) |",
        m.os,
        m.kernel.as_deref().unwrap_or(""),
        m.arch
    );
    let _ = writeln!(
        md,
        "| bystack | {} at {} ({} build, {}) |",
        v.bystack, v.git_commit, v.profile, v.rustc
    );
    let _ = writeln!(md, "| run time | {:.1} s |", report.duration_seconds);
    let wrong = report.wrong();
    if wrong.is_empty() {
        let _ = writeln!(
            md,
            "\nEvery result checked out (Tensority checksums, PSWV states)."
        );
    } else {
        let _ = writeln!(md, "\n## ❌ WRONG RESULTS\n");
        for b in wrong {
            let _ = writeln!(
                md,
                "- **{}**: the result is wrong; its figure does not count",
                b.id
            );
        }
    }

    let mut groups: Vec<&str> = Vec::new();
    for b in &report.benchmarks {
        if !groups.contains(&b.group.as_str()) {
            groups.push(&b.group);
        }
    }
    for group in groups {
        let _ = writeln!(md, "\n## {group}\n");
        let rows: Vec<&Benchmark> = report
            .benchmarks
            .iter()
            .filter(|b| b.group == group)
            .collect();
        if let Some(first) = rows.first() {
            let _ = writeln!(md, "{}\n", first.description);
        }
        let _ = writeln!(
            md,
            "| benchmark | configuration | median | min | max | unit | repeats | check |\n\
             |---|---|---:|---:|---:|---|---:|---|"
        );
        for b in rows {
            let check = match (&b.checksum, b.ok) {
                (_, false) => "❌ **FAIL**".to_string(),
                (Some(c), true) => format!("✅ {}/{} vectors", c.matched, c.vectors),
                (None, true) => "✅".to_string(),
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | **{}** | {} | {} | {} {} | {} | {} |",
                b.id,
                params_text(b),
                human(b.median),
                human(b.min),
                human(b.max),
                b.unit,
                if b.higher_is_better { "↑" } else { "↓" },
                b.repeats,
                check
            );
        }
    }
    if !report.failures.is_empty() {
        let _ = writeln!(md, "\n## Benchmarks that did not run\n");
        for f in &report.failures {
            let _ = writeln!(md, "- **{}**: {}", f.group, f.error.replace('\n', " "));
        }
    }
    if let Some(c) = &report.comparison {
        let _ = writeln!(
            md,
            "\n## Against the baseline\n\nBaseline: {}. Speed = this run relative to the \
             baseline (above 1 is faster, whatever the unit); below {:.2} is a regression.\n",
            c.baseline,
            1.0 - c.threshold
        );
        if let Some(warning) = c.machine_warning() {
            let _ = writeln!(md, "> ⚠️ {warning}.\n");
        }
        let _ = writeln!(
            md,
            "| benchmark | baseline | this run | unit | speed | verdict |\n|---|---:|---:|---|---:|---|"
        );
        for r in &c.rows {
            let fmt = |v: Option<f64>| v.map(human).unwrap_or_else(|| "–".into());
            let verdict = match r.verdict {
                Verdict::Regression => "❌ **regression**",
                Verdict::Same => "same",
                Verdict::Faster => "faster",
                Verdict::Missing => "missing here",
                Verdict::New => "new",
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | {} |",
                r.id,
                fmt(r.baseline),
                fmt(r.current),
                r.unit,
                r.speed
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_else(|| "–".into()),
                verdict
            );
        }
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "\n## Plots\n");
        for p in plots {
            let _ = writeln!(md, "![{p}]({p})");
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(id: &str, unit: &str, higher: bool, median: f64) -> Benchmark {
        Benchmark::new(id, "g", "d", BTreeMap::new(), unit, higher, vec![median]).unwrap()
    }

    fn report(benchmarks: Vec<Benchmark>) -> Report {
        Report::for_test(benchmarks)
    }

    #[test]
    fn a_twenty_percent_slowdown_is_a_regression_in_either_direction() {
        let base = report(vec![
            figure("rate", "H/s", true, 100.0),
            figure("latency", "ms", false, 10.0),
            figure("steady", "tx/s", true, 50.0),
            figure("gone", "tx/s", true, 50.0),
        ]);
        let now = report(vec![
            figure("rate", "H/s", true, 80.0),
            figure("latency", "ms", false, 12.5),
            figure("steady", "tx/s", true, 48.0),
            figure("new", "tx/s", true, 1.0),
        ]);
        let c = compare(&base, &now, 0.10);
        let verdict = |id: &str| c.rows.iter().find(|r| r.id == id).unwrap().verdict;
        assert_eq!(verdict("rate"), Verdict::Regression);
        assert_eq!(verdict("latency"), Verdict::Regression);
        assert_eq!(verdict("steady"), Verdict::Same);
        assert_eq!(verdict("gone"), Verdict::Missing);
        assert_eq!(verdict("new"), Verdict::New);
        assert_eq!(c.regressions().len(), 2);
        // The same run against itself, and a faster one, are not regressions.
        assert!(compare(&base, &base, 0.10).regressions().is_empty());
        let c = compare(&now, &base, 0.10);
        assert!(c.rows.iter().any(|r| r.verdict == Verdict::Faster));
        assert_eq!(c.machine_speed, None);
        assert_eq!(c.machine_warning(), None);

        // With the probe in both: a machine 30% slower is named, a steady one is not.
        let mut base = base;
        let mut now = now;
        base.benchmarks.push(figure(PROBE_ID, "MB/s", true, 100.0));
        now.benchmarks.push(figure(PROBE_ID, "MB/s", true, 70.0));
        let c = compare(&base, &now, 0.10);
        assert!((c.machine_speed.unwrap() - 0.7).abs() < 1e-9);
        assert!(c.machine_warning().unwrap().contains("0.70x"));
        now.benchmarks.last_mut().unwrap().median = 95.0;
        assert_eq!(compare(&base, &now, 0.10).machine_warning(), None);
    }

    #[test]
    fn validation_refuses_bad_figures() {
        let good = report(vec![figure("a", "H/s", true, 1.0)]);
        // Tensority figures need their checksum; group "g" does not.
        good.validate().unwrap();
        assert!(Benchmark::new("x", "g", "d", BTreeMap::new(), "H/s", true, vec![]).is_err());
        assert!(Benchmark::new("x", "g", "d", BTreeMap::new(), "H/s", true, vec![0.0]).is_err());
        assert!(
            Benchmark::new("x", "g", "d", BTreeMap::new(), "H/s", true, vec![f64::NAN]).is_err()
        );
        let mut dup = good.clone();
        dup.benchmarks.push(figure("a", "H/s", true, 2.0));
        assert!(dup.validate().is_err());
        let mut unit = good.clone();
        unit.benchmarks[0].unit = "furlongs".into();
        assert!(unit.validate().is_err());
        let mut order = good.clone();
        order.benchmarks[0].min = 5.0;
        assert!(order.validate().is_err());
        let mut tensority = good;
        tensority.benchmarks[0].group = "tensority".into();
        assert!(tensority.validate().is_err());
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(human(123_456.7), "123,457");
        assert_eq!(human(1234.0), "1,234");
        assert_eq!(human(12.345), "12.3");
        assert_eq!(human(1.2345), "1.23");
        assert_eq!(human(0.01234), "0.012");
        assert_eq!(human(-1234.0), "-1,234");
    }
}
