//! `bystack-bench verify`, run for real (smoke sizes).

use std::process::{Command, Output};

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .arg("verify")
        .args(args)
        .output()
        .expect("spawn bystack-bench")
}

#[test]
fn verify_json_reports_both_paths_and_their_ratio() {
    for backend in ["auto", "float"] {
        let out = verify(&[
            "--backend",
            backend,
            "--blocks",
            "2",
            "--threads",
            "2",
            "--repeats",
            "1",
            "--json",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{backend}: {stderr}");
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        if backend == "float" {
            assert_eq!(v["backend"], "float");
        }
        assert_eq!(v["blocks"], 2);
        assert_eq!(v["threads"], 2);
        assert_eq!(v["results_equal"], true);
        let batch = v["batch_blocks_per_second"].as_f64().unwrap();
        let single = v["single_blocks_per_second"].as_f64().unwrap();
        let ratio = v["ratio"].as_f64().unwrap();
        assert!(batch > 0.0 && single > 0.0, "{v}");
        assert!((ratio - batch / single).abs() <= 1e-9 * ratio, "{v}");
        assert_eq!(v["repeats_batch_seconds"].as_array().unwrap().len(), 1);
        assert_eq!(v["repeats_single_seconds"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn verify_table_and_bad_options() {
    let out = verify(&["--backend", "auto", "--blocks", "1", "--repeats", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("batch blk/s") && stdout.lines().count() == 2,
        "{stdout}"
    );
    for args in [
        &["--blocks", "0"][..],
        &["--repeats", "0"][..],
        &["--backend", "no-such-backend", "--blocks", "1"][..],
    ] {
        let out = verify(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
}
