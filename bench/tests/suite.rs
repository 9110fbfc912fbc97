//! `bystack-bench suite --quick` end to end, through the real binary: every benchmark family
//! runs, `report.json` follows its schema (checked here on the raw JSON, not through the
//! crate's own types), `report.md` and at least three SVG plots are written; a doctored
//! baseline that makes this run look 20% slower is flagged by `compare` and by
//! `suite --baseline` (exit 1), while the run against itself passes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const UNITS: &[&str] = &[
    "H/s",
    "MB/s",
    "ms",
    "blocks/s",
    "tx/s",
    "requests/s",
    "shares/s",
    "rejections/s",
];

fn bench(args: &[&str]) -> Output {
    let runtime = tempfile::tempdir().expect("runtime dir");
    Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .args(args)
        // lavapipe wants a private runtime directory when listing Vulkan devices.
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("bystack-bench runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x} is not positive");
    x
}

/// The schema, rule by rule, on the raw JSON.
fn check_schema(report: &Value) {
    assert_eq!(report["schema"], "bystack-bench-report/1");
    for key in ["date", "command"] {
        assert!(report[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    assert!(report["date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(report["quick"], true);
    positive(&report["duration_seconds"], "duration_seconds");

    let machine = &report["machine"];
    for key in ["cpu_model", "os", "arch"] {
        assert!(
            machine[key].as_str().is_some_and(|s| !s.is_empty()),
            "machine.{key}"
        );
    }
    assert!(machine["cpu_features"].is_array());
    assert!(machine["gpus"].is_array());
    assert!(machine["cores"].as_u64().is_some_and(|c| c >= 1));
    if let Some(m) = machine["memory_bytes"].as_u64() {
        assert!(m > 0);
    }
    let versions = &report["versions"];
    for key in ["bystack", "git_commit", "rustc", "profile"] {
        assert!(
            versions[key].as_str().is_some_and(|s| !s.is_empty()),
            "versions.{key}"
        );
    }

    assert_eq!(report["failures"], Value::Array(vec![]), "every family ran");
    let benchmarks = report["benchmarks"].as_array().expect("benchmarks");
    let mut ids = std::collections::HashSet::new();
    for b in benchmarks {
        let id = b["id"].as_str().expect("id");
        assert!(ids.insert(id.to_string()), "duplicate id {id}");
        assert!(b["group"].as_str().is_some_and(|g| !g.is_empty()), "{id}");
        let unit = b["unit"].as_str().expect("unit");
        assert!(UNITS.contains(&unit), "{id}: unit {unit}");
        assert!(b["higher_is_better"].is_boolean(), "{id}");
        assert!(b["params"].is_object(), "{id}");
        let samples = b["samples"].as_array().expect("samples");
        assert_eq!(b["repeats"].as_u64(), Some(samples.len() as u64), "{id}");
        assert!(!samples.is_empty(), "{id}");
        for s in samples {
            positive(s, &format!("{id} sample"));
        }
        let min = positive(&b["min"], &format!("{id} min"));
        let median = positive(&b["median"], &format!("{id} median"));
        let max = positive(&b["max"], &format!("{id} max"));
        assert!(min <= median && median <= max, "{id}");
        assert_eq!(b["ok"], true, "{id}: wrong result");
        if b["group"] == "tensority" {
            let sum = &b["checksum"];
            assert_eq!(sum["ok"], true, "{id}");
            assert_eq!(sum["matched"], 12, "{id}");
            assert_eq!(sum["value"], sum["expected"], "{id}");
        }
    }
    for prefix in [
        "probe/sha3-1-thread",
        "tensority/",
        "seed/",
        "decode/",
        "pswv/memory/pswv/",
        "pswv/memory/per-block",
        "pswv/rocksdb/pswv/",
        "pswv/rocksdb/per-block",
        "relay/",
        "get-work/latency",
        "get-work/throughput",
        "stratum/verified",
        "stratum/cheap-rejections",
    ] {
        assert!(
            ids.iter().any(|id| id.starts_with(prefix)),
            "no {prefix} figure in {ids:?}"
        );
    }
}

/// `report` with every figure scaled so that the original is `slowdown` slower than it
/// (rates up, latencies down); `only` limits the change to one id.
fn doctored(report: &Value, slowdown: f64, only: Option<&str>) -> Value {
    let mut out = report.clone();
    for b in out["benchmarks"].as_array_mut().unwrap() {
        if only.is_some_and(|id| b["id"] != id) {
            continue;
        }
        let factor = if b["higher_is_better"] == true {
            1.0 / (1.0 - slowdown)
        } else {
            1.0 - slowdown
        };
        for key in ["min", "median", "max"] {
            b[key] = Value::from(b[key].as_f64().unwrap() * factor);
        }
        for s in b["samples"].as_array_mut().unwrap() {
            *s = Value::from(s.as_f64().unwrap() * factor);
        }
    }
    out
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

#[test]
fn quick_suite_writes_a_valid_report_and_plots_and_baselines_catch_a_slowdown() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let run = bench(&["suite", "--quick", "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));

    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    let report: Value = serde_json::from_str(&json).unwrap();
    check_schema(&report);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for needle in [
        "# bystack benchmark report",
        "## tensority",
        "## pswv",
        "| `relay/",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle}");
    }
    let svgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert!(svgs.len() >= 3, "plots: {svgs:?}");
    for svg in &svgs {
        let body = std::fs::read_to_string(svg).unwrap();
        assert!(body.starts_with("<svg") && body.trim_end().ends_with("</svg>"));
        assert!(body.matches("<text").count() >= 5, "{}", svg.display());
        assert!(md.contains(svg.file_name().unwrap().to_str().unwrap()));
    }

    // The same report renders again elsewhere, plots and all.
    let rendered = dir.path().join("rendered");
    let render = bench(&[
        "render",
        out.join("report.json").to_str().unwrap(),
        "--out",
        rendered.to_str().unwrap(),
    ]);
    assert!(render.status.success(), "{}", text(&render));
    for svg in &svgs {
        assert!(rendered.join(svg.file_name().unwrap()).exists());
    }
    assert_eq!(
        std::fs::read_to_string(rendered.join("report.md")).unwrap(),
        md
    );

    // Against itself: nothing regressed.
    let current = out.join("report.json");
    let same = bench(&[
        "compare",
        current.to_str().unwrap(),
        current.to_str().unwrap(),
    ]);
    assert!(same.status.success(), "{}", text(&same));

    // A baseline 20% faster everywhere: every figure regressed, exit 1.
    let base = dir.path().join("faster-baseline.json");
    write_json(&base, &doctored(&report, 0.20, None));
    let slow = bench(&["compare", base.to_str().unwrap(), current.to_str().unwrap()]);
    assert_eq!(slow.status.code(), Some(1), "{}", text(&slow));
    let figures = report["benchmarks"].as_array().unwrap().len();
    let stdout = String::from_utf8_lossy(&slow.stdout);
    assert_eq!(stdout.matches("Regression").count(), figures, "{stdout}");
    // ... but not with a threshold above 20%.
    let lenient = bench(&[
        "compare",
        base.to_str().unwrap(),
        current.to_str().unwrap(),
        "--threshold",
        "0.25",
    ]);
    assert!(lenient.status.success(), "{}", text(&lenient));

    // A 20% slowdown injected into one figure is that figure's regression only.
    let one = "get-work/throughput";
    write_json(&base, &doctored(&report, 0.20, Some(one)));
    let slow = bench(&["compare", base.to_str().unwrap(), current.to_str().unwrap()]);
    assert_eq!(slow.status.code(), Some(1), "{}", text(&slow));
    let stdout = String::from_utf8_lossy(&slow.stdout);
    let regressed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.ends_with("Regression"))
        .collect();
    assert_eq!(regressed.len(), 1, "{stdout}");
    assert!(regressed[0].starts_with(one), "{stdout}");
    assert!(String::from_utf8_lossy(&slow.stderr).contains(one));

    // `suite --baseline` runs, compares and fails the same way (one cheap family, against a
    // baseline ten times faster so that noise cannot hide it).
    write_json(&base, &doctored(&report, 0.90, None));
    let out2 = dir.path().join("again");
    let skip = "tensority,pswv,pswv-rocksdb,relay,get-work,stratum";
    let rerun = bench(&[
        "suite",
        "--quick",
        "--skip",
        skip,
        "--out",
        out2.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
    ]);
    assert_eq!(rerun.status.code(), Some(1), "{}", text(&rerun));
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("report.json")).unwrap()).unwrap();
    let rows = again["comparison"]["rows"].as_array().unwrap();
    let decode_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["id"].as_str().unwrap().starts_with("decode/"))
        .collect();
    assert!(!decode_rows.is_empty());
    assert!(decode_rows.iter().all(|r| r["verdict"] == "regression"));
    // The families left out this time are listed as missing, not as regressions.
    assert!(rows
        .iter()
        .any(|r| r["id"] == "relay/nodes=3" && r["verdict"] == "missing"));
    let md = std::fs::read_to_string(out2.join("report.md")).unwrap();
    assert!(md.contains("## Against the baseline") && md.contains("regression"));
}

#[test]
fn bad_options_and_bad_baselines_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let out = out.to_str().unwrap();
    let bad_skip = bench(&["suite", "--quick", "--skip", "teleport", "--out", out]);
    assert_eq!(bad_skip.status.code(), Some(2), "{}", text(&bad_skip));
    assert!(String::from_utf8_lossy(&bad_skip.stderr).contains("teleport"));

    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"schema\": \"something-else\"}").unwrap();
    let bad_base = bench(&[
        "suite",
        "--quick",
        "--skip",
        "tensority,pswv,pswv-rocksdb,relay,get-work,stratum",
        "--baseline",
        junk.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert_eq!(bad_base.status.code(), Some(2), "{}", text(&bad_base));
    assert!(String::from_utf8_lossy(&bad_base.stderr).contains("not a bystack-bench report"));

    // Aliases of one kernel (`auto` and `cpu` open the best CPU kernel) are measured once.
    let aliases = dir.path().join("aliases");
    let run = bench(&[
        "suite",
        "--quick",
        "--backend",
        "auto,cpu",
        "--threads",
        "1",
        "--skip",
        "decode,pswv,pswv-rocksdb,relay,get-work,stratum",
        "--out",
        aliases.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(aliases.join("report.json")).unwrap())
            .unwrap();
    let tensority: Vec<&Value> = report["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["group"] == "tensority")
        .collect();
    assert_eq!(tensority.len(), 1, "{tensority:?}");
    assert_eq!(tensority[0]["checksum"]["ok"], true);

    let missing = bench(&["compare", "/nonexistent/a.json", junk.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let threshold = bench(&[
        "compare",
        junk.to_str().unwrap(),
        junk.to_str().unwrap(),
        "--threshold",
        "1.5",
    ]);
    assert_eq!(threshold.status.code(), Some(2), "{}", text(&threshold));
}
