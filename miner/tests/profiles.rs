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
            "rtx-4090"
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
