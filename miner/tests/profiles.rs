//! Every file in hw-profiles/ parses against the schema, and `--profile` applies one with
//! flags winning.

use std::path::PathBuf;

use bystack_miner::config::{Cli, MinerConfig};
use bystack_miner::profile::{Profile, ProvenanceKind};
use clap::Parser;

fn profiles_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles")
}

#[test]
fn every_hw_profile_parses_and_states_its_provenance() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(profiles_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(profile.name.as_str()),
            path.file_stem().and_then(|s| s.to_str()),
            "a profile's name is its file name"
        );
        if profile.provenance.kind == ProvenanceKind::Measured {
            assert!(!profile.provenance.source.is_empty());
        }
        names.push(profile.name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "cpu-avx512",
            "cpu-generic",
            "h200",
            "raspberry-pi-5",
            "rtx-4090",
            "xeon-amx-2vcpu-vm"
        ]
    );
}

#[test]
fn a_profile_is_applied_and_flags_override_it() {
    let pi = profiles_dir().join("raspberry-pi-5.toml");
    let pi = pi.to_str().unwrap();
    let parse = |args: &[&str]| {
        MinerConfig::from_cli(
            &Cli::try_parse_from(std::iter::once("bystack-miner").chain(args.iter().copied()))
                .unwrap(),
        )
        .unwrap()
    };
    let c = parse(&["--profile", pi]);
    assert_eq!((c.backend.as_str(), c.threads, c.duty), ("cpu", 3, 50));
    assert_eq!(c.profile.as_ref().unwrap().name, "raspberry-pi-5");
    let c = parse(&[
        "--profile",
        pi,
        "--duty",
        "80",
        "--threads",
        "1",
        "--backend",
        "reference",
    ]);
    assert_eq!(
        (c.backend.as_str(), c.threads, c.duty),
        ("reference", 1, 80)
    );
    let h200 = profiles_dir().join("h200.toml");
    let c = parse(&["--profile", h200.to_str().unwrap()]);
    assert_eq!(
        (c.backend.as_str(), c.batch, c.devices.clone()),
        ("cuda-wgmma", 4224, vec![0])
    );
    let c = parse(&["--profile", h200.to_str().unwrap(), "--devices", "0,1"]);
    assert_eq!(c.devices, vec![0, 1]);
}

/// A profile as `bystack-bench tune` writes it: every optional provenance field filled in.
const TUNED: &str = r#"# written by the test, in the shape of a tuned profile
name = "tuned-test"
description = "test CPU: cpu, 2 threads, 8 nonces per search call"
backend = "cpu"
threads = 2
batch = 8
duty = 100

[provenance]
kind = "measured"
source = "bystack-bench tune on Test CPU (2026-11-29T02:18:00Z)"
hash_rate = 120.5
default_hash_rate = 110.25
date = "2026-11-29T02:18:00Z"
notes = "the tuned settings beat the defaults by 9.3%"

[provenance.machine]
cpu_model = "Test CPU"
cpu_features = ["avx2"]
cores = 2
memory_bytes = 8589934592
gpus = []
os = "Linux"
kernel = "6.1.0"
arch = "x86_64"

[provenance.versions]
bystack = "0.1.0"
git_commit = "0000000000000000000000000000000000000000"
rustc = "rustc 1.89.0"
profile = "release"

[[provenance.trials]]
backend = "cpu"
threads = 2
batch = 8
hash_rate = 120.5
spread = 0.04

[[provenance.trials]]
backend = "cpu"
threads = 1
batch = 0
hash_rate = 61.0
spread = 0.02
"#;

#[test]
fn the_miner_binary_mines_a_block_with_a_tuned_profile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuned-test.toml");
    std::fs::write(&path, TUNED).unwrap();
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(profile.provenance.trials.len(), 2);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bystack-miner"))
        .arg("--profile")
        .arg(&path)
        .args(["--blocks", "1"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{:?}", output.status);
    assert!(
        stdout.lines().any(|l| l.starts_with("block found: #1")),
        "one block mined"
    );
}
