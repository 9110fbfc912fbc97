//! `bystack-bench decode`, run for real.

use std::process::{Command, Output};

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .arg("decode")
        .args(args)
        .output()
        .expect("spawn bystack-bench")
}

#[test]
fn decode_json_has_the_promised_fields() {
    let out = decode(&[
        "--txs",
        "1,10",
        "--seconds",
        "0.2",
        "--repeats",
        "1",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(objects.len(), 2, "one object per block size: {stdout}");
    for (v, txs) in objects.iter().zip([1u64, 10]) {
        assert_eq!(v["txs_per_block"], txs);
        assert_eq!(v["repeats"], 1);
        let blocks = v["blocks_per_second"].as_f64().unwrap();
        let tx = v["tx_per_second"].as_f64().unwrap();
        assert!(blocks > 0.0, "{v}");
        assert!((tx - blocks * txs as f64).abs() <= 1e-6 * tx, "{v}");
        assert!(v["block_bytes"].as_u64().unwrap() > 100, "{v}");
        assert!(v["inputs_per_block"].as_u64().unwrap() >= txs, "{v}");
        assert_eq!(v["repeats_blocks_per_second"].as_array().unwrap().len(), 1);
    }
    // A coinbase alone is smaller than ten transactions; the generator is deterministic.
    assert!(objects[0]["block_bytes"].as_u64() < objects[1]["block_bytes"].as_u64());
    let again = decode(&["--txs", "10", "--seconds", "0.01", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&again.stdout).trim()).unwrap();
    assert_eq!(v["block_bytes"], objects[1]["block_bytes"]);
    assert_eq!(v["repeats"], 3, "three repeats by default");
}

#[test]
fn decode_table_and_smoke_mode_run() {
    let out = decode(&["--smoke"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two sizes: {stdout}");
    assert!(lines[0].contains("blocks/s") && lines[0].contains("tx/s"));
    assert_eq!(lines[1].split_whitespace().next(), Some("1"));
    assert_eq!(lines[2].split_whitespace().next(), Some("10"));
}

#[test]
fn decode_rejects_bad_arguments_without_panicking() {
    for (args, message) in [
        (&["--seconds", "0"][..], "--seconds"),
        (&["--seconds=-1"], "--seconds"),
        (&["--seconds", "nan"], "--seconds"),
        (&["--seconds", "inf"], "--seconds"),
        (&["--txs", "0"], "--txs"),
        (&["--txs", "1,0"], "--txs"),
        (&["--txs", "5000000"], "--txs"),
        (&["--txs", "x"], "--txs"),
        (&["--repeats", "0"], "--repeats"),
        (&["--repeats=-2"], "--repeats"),
    ] {
        let out = decode(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing measured");
    }
}
