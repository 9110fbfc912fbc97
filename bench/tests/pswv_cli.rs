//! `bystack-bench pswv`, run for real.

use std::process::{Command, Output};

fn pswv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .arg("pswv")
        .args(args)
        .output()
        .expect("spawn bystack-bench")
}

#[test]
fn smoke_json_has_the_promised_fields() {
    let out = pswv(&["--smoke", "--json", "--threads", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(objects.len(), 1, "one object per window size: {stdout}");
    let v = &objects[0];
    assert_eq!(v["window"], 8);
    assert_eq!(v["blocks"], 20);
    assert_eq!(v["txs_per_block"], 3);
    assert_eq!(v["threads"], 2);
    assert_eq!(v["repeats"], 1);
    assert_eq!(v["pow"], "none");
    assert_eq!(v["states_equal"], true);
    // The measured blocks are full: a coinbase plus three transactions each.
    assert_eq!(v["measured_txs"], 80, "{v}");
    for key in [
        "pswv_tx_per_second",
        "sequential_tx_per_second",
        "pswv_blocks_per_second",
        "sequential_blocks_per_second",
        "ratio",
    ] {
        let x = v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key}: {v}");
    }
    let ratio =
        v["pswv_tx_per_second"].as_f64().unwrap() / v["sequential_tx_per_second"].as_f64().unwrap();
    assert!(
        (ratio - v["ratio"].as_f64().unwrap()).abs() <= 1e-9 * ratio,
        "{v}"
    );
}

#[test]
fn table_mode_runs_several_windows() {
    let out = pswv(&[
        "--blocks",
        "6",
        "--txs-per-block",
        "2",
        "--window",
        "1,4",
        "--repeats",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 3, "a header and two rows: {stdout}");
    assert!(stdout.contains("equal"), "{stdout}");
}

#[test]
fn bad_arguments_fail_cleanly() {
    for args in [
        &["--window", "0"][..],
        &["--window", "8,0"],
        &["--blocks", "0"],
        &["--repeats", "0"],
        &["--threads", "0"],
        &["--pow", "gpu"],
    ] {
        let out = pswv(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.is_empty(), "{args:?} says why");
    }
}

#[test]
fn rocksdb_mode_matches_the_engine_state() {
    let out = pswv(&[
        "--store",
        "rocksdb",
        "--blocks",
        "30",
        "--txs-per-block",
        "3",
        "--window",
        "1,16",
        "--repeats",
        "1",
        "--threads",
        "2",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(objects.len(), 2, "one object per window size: {stdout}");
    for (v, (window, windows)) in objects.iter().zip([(1, 30), (16, 2)]) {
        assert_eq!(v["store"], "rocksdb", "{v}");
        assert_eq!(v["window"], window, "{v}");
        assert_eq!(v["pswv_windows"], windows, "{v}");
        assert_eq!(v["blocks"], 30, "{v}");
        assert_eq!(v["measured_txs"], 120, "{v}");
        assert_eq!(v["sync"], true, "{v}");
        assert_eq!(v["states_equal"], true, "{v}");
        assert_eq!(v["utxo_digest"].as_str().map(str::len), Some(64), "{v}");
        for key in [
            "pswv_tx_per_second",
            "sequential_tx_per_second",
            "pswv_blocks_per_second",
            "sequential_blocks_per_second",
            "ratio",
        ] {
            let x = v[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} missing: {v}"));
            assert!(x > 0.0 && x.is_finite(), "{key}: {v}");
        }
    }
    assert_eq!(
        objects[0]["sequential_repeats_seconds"], objects[1]["sequential_repeats_seconds"],
        "one per-block baseline per invocation"
    );
}

#[test]
fn an_unknown_store_is_refused() {
    let out = pswv(&["--store", "sled"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sled"));
}
