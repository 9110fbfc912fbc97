//! `bystack-bench stratum --smoke`, run for real: an in-process node and stratum server under
//! a small loopback load.

use std::process::Command;

#[test]
fn stratum_smoke_verifies_every_valid_share_and_answers_every_rejection() {
    let out = Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .args([
            "stratum",
            "--smoke",
            "--json",
            "--backend",
            "cpu",
            "--threads",
            "2",
        ])
        .output()
        .expect("spawn bystack-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["sessions"], 50);
    let valid = v["valid_shares"].as_u64().unwrap();
    assert!(valid >= 50, "{v}");
    // Only valid shares reach the verifier; each is accepted once.
    assert_eq!(v["verified"], valid, "{v}");
    assert_eq!(v["accepted"], valid, "{v}");
    assert_eq!(v["replies"]["ok"], valid, "{v}");
    // 50 sessions × 40 cheap rejections: bad nonce and stale (32), unknown job (21, also the
    // verify phase's filler), duplicate (22), a result that says it is low (23).
    assert_eq!(v["cheap_rejections"], 2000, "{v}");
    assert_eq!(v["replies"]["32"], 800, "{v}");
    assert_eq!(v["replies"]["22"], 400, "{v}");
    assert_eq!(v["replies"]["23"], 400, "{v}");
    assert_eq!(v["replies"]["21"], 400 + valid, "{v}");
    for rate in [
        "standalone_hps",
        "verified_per_s",
        "cheap_per_s",
        "verify_ratio",
    ] {
        assert!(v[rate].as_f64().unwrap() > 0.0, "{rate}: {v}");
    }
}
