//! `bystack-bench tune --quick`, run for real: the profile it writes is one the miner loads and
//! mines with, its provenance is complete and the tuned rate is at least the defaults'; an
//! existing file is kept without `--force`; a bad `--backend` is a clear error.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_miner::backends::open_devices;
use bystack_miner::config::{Cli, MinerConfig};
use bystack_miner::profile::{MachineInfo, Profile, ProvenanceKind};

fn tune(args: &[&str], out: &Path) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .arg("tune")
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .expect("spawn bystack-bench");
    println!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Hashes the miner's devices for these settings do in about `seconds` of search calls.
fn mine_for(config: &MinerConfig, seconds: f64) -> u64 {
    let devices = open_devices(
        &config.backend,
        &config.devices,
        config.threads,
        config.batch,
    )
    .expect("the profile's devices open");
    let device = &devices[0];
    let prepared = device.backend.prepare(&[9; 32]).unwrap();
    let template = HeaderTemplate::new(1, 1, &[7; 32], 1_700_000_000, &[1; 32], &[2; 32], 0);
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (mut hashes, mut next) = (0, 0);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let outcome = prepared
            .search(&template, next..next + device.chunk, &Target::Never, &stop)
            .unwrap();
        hashes += outcome.hashes;
        next += device.chunk;
    }
    hashes
}

#[test]
fn quick_tune_writes_a_measured_profile_the_miner_loads_and_mines_with() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.toml");
    let output = tune(&["--quick", "--json"], &path);
    assert!(output.status.success(), "{:?}", output.status);
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("--json prints one JSON object");
    assert_eq!(result["path"].as_str(), path.to_str());
    assert!(result["trials"].as_array().unwrap().len() >= 2, "{result}");

    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(profile.name, "x");
    assert_eq!(profile.duty, 100);
    let provenance = &profile.provenance;
    assert_eq!(provenance.kind, ProvenanceKind::Measured);
    assert!(provenance.source.starts_with("bystack-bench tune on "));
    assert!(provenance.date.as_deref().is_some_and(|d| d.ends_with('Z')));
    let Some(MachineInfo::Table(machine)) = &provenance.machine else {
        panic!("a machine table")
    };
    assert!(machine.cores.is_some_and(|c| c >= 1));
    let versions = provenance.versions.as_ref().expect("versions");
    assert_eq!(versions.bystack, env!("CARGO_PKG_VERSION"));
    let tuned = provenance.hash_rate.expect("hash_rate");
    let default = provenance.default_hash_rate.expect("default_hash_rate");
    assert!(tuned > 0.0 && default > 0.0);
    assert!(tuned >= default, "tuned {tuned} < default {default}");
    assert_eq!(
        provenance.trials.len(),
        result["trials"].as_array().unwrap().len()
    );
    let written = &result["written"];
    assert_eq!(written["backend"].as_str(), Some(profile.backend.as_str()));
    assert_eq!(written["threads"].as_u64(), Some(profile.threads as u64));
    assert_eq!(written["batch"].as_u64(), Some(profile.batch as u64));

    // The miner applies it (`--profile FILE`) and mines with those settings.
    let config = MinerConfig::from_cli(&Cli {
        profile: Some(path.clone()),
        ..Cli::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (config.backend.as_str(), config.threads, config.batch),
        (profile.backend.as_str(), profile.threads, profile.batch)
    );
    assert!(mine_for(&config, 1.0) > 0);
}

#[test]
fn an_existing_profile_is_kept_without_force_and_replaced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kept.toml");
    std::fs::write(&path, "keep me\n").unwrap();
    let output = tune(&["--quick"], &path);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me\n");

    let output = tune(&["--quick", "--force"], &path);
    assert!(output.status.success(), "{:?}", output.status);
    Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_bad_backend_name_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.toml");
    let output = tune(&["--quick", "--backend", "quantum"], &path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown backend \"quantum\"") && stderr.contains("cpu-portable"),
        "{stderr}"
    );
    assert!(!path.exists());
}
