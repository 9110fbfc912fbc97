//! The `bystack-bench` binary, run for real.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
}

fn hash_with_input(args: &[&str], input: &str) -> Output {
    let mut child = bench()
        .arg("hash")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bystack-bench");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn vectors() -> Vec<(String, String, String)> {
    let dir = std::env::var("BYSTACK_VECTORS")
        .unwrap_or_else(|_| format!("{}/../../shared/vectors", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(format!("{dir}/tensority.json"))
        .unwrap_or_else(|e| panic!("cannot read {dir}/tensority.json ({e}); set BYSTACK_VECTORS"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["tensority"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            (s("header_hash"), s("seed"), s("expected"))
        })
        .collect()
}

#[test]
fn hash_command_reproduces_the_vectors_in_order() {
    let vectors = vectors();
    let input: String = vectors
        .iter()
        .map(|(h, s, _)| format!("{h} {s}\n"))
        .collect();
    for backend in ["auto", "portable"] {
        let out = hash_with_input(&["--backend", backend], &input);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), vectors.len());
        for (line, (h, s, e)) in lines.iter().zip(&vectors) {
            assert_eq!(*line, format!("{h} {s} {e}"));
        }
    }
}

#[test]
fn hash_command_rejects_bad_input_without_panicking() {
    let good = format!("{} {}\n", "00".repeat(32), "11".repeat(32));
    let cases = [
        ("abcd 00\n", "header hash must be 64 hex characters"),
        (
            &format!("{} {}\n", "0".repeat(63), "0".repeat(64)),
            "got 63",
        ),
        (
            &format!("{} {}\n", "0".repeat(64), "0".repeat(66)),
            "seed must be 64 hex characters",
        ),
        (
            &format!("{}zz {}\n", "0".repeat(62), "0".repeat(64)),
            "invalid hex character 'z'",
        ),
        ("\n", "empty line"),
        (
            &format!("{} {} extra\n", "0".repeat(64), "0".repeat(64)),
            "expected 2 fields",
        ),
        (&format!("{good}\n"), "line 2: empty line"),
    ];
    for (input, message) in cases {
        let out = hash_with_input(&[], input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "input {input:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "input {input:?}: stderr {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Lines before a bad one are still answered.
    let out = hash_with_input(&[], &format!("{good}nonsense\n"));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn unknown_backend_is_a_clear_error() {
    let out = hash_with_input(&["--backend", "tpu9000"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend \"tpu9000\""));
}

#[test]
fn tensority_json_has_the_promised_fields() {
    let out = bench()
        .args([
            "tensority",
            "--threads",
            "1",
            "--seconds",
            "0.3",
            "--repeats",
            "2",
            "--seed-builds",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one object per configuration: {stdout}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert!(v["backend"].as_str().unwrap().starts_with("cpu-"));
    assert_eq!(v["threads"], 1);
    assert!(v["hashes_per_second"].as_f64().unwrap() > 0.0);
    assert!(v["seed_build_seconds"].as_f64().unwrap() > 0.0);
    assert!(v["hash_latency_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(v["repeats_hashes_per_second"].as_array().unwrap().len(), 2);
    assert!(
        v["peak_memory_bytes"].as_u64().unwrap() >= 16 << 20,
        "the matrix set is resident"
    );
}

#[test]
fn tensority_rejects_bad_arguments() {
    for args in [
        &["tensority", "--seconds", "0"][..],
        &["tensority", "--threads", "0"],
        &["tensority", "--backend", "nope"],
    ] {
        let out = bench().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn list_shows_the_reference_and_portable_backends() {
    let out = bench().arg("list").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout
        .lines()
        .any(|l| l.starts_with("reference") && l.contains("available")));
    assert!(stdout
        .lines()
        .any(|l| l.starts_with("cpu-portable") && l.contains("available")));
}
