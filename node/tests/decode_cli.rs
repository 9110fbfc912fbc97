//! `bystack-node decode`, run for real on every serialized vector of
//! ../shared/vectors/chain.json and on malformed input.

use std::process::{Command, Output};

use serde_json::Value;

fn vectors() -> Value {
    let dir = std::env::var("BYSTACK_VECTORS")
        .unwrap_or_else(|_| format!("{}/../../shared/vectors", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(format!("{dir}/chain.json"))
        .unwrap_or_else(|e| panic!("cannot read {dir}/chain.json ({e}); set BYSTACK_VECTORS"));
    serde_json::from_str(&text).expect("valid JSON")
}

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bystack-node"))
        .arg("decode")
        .args(args)
        .output()
        .expect("run bystack-node")
}

fn decode_ok(args: &[&str]) -> Value {
    let out = decode(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// A list of strings; a field the vector leaves out (e.g. spent outputs of a coinbase tx) is
/// an empty list.
fn strings(v: &Value) -> Vec<String> {
    if v.is_null() {
        return Vec::new();
    }
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

/// Checks a decoded transaction against a vector's `decoded` object (Bytom's own output).
fn check_tx(got: &Value, want: &Value) {
    assert_eq!(got["kind"], "transaction");
    assert_eq!(got["id"], want["tx_id"]);
    assert_eq!(got["serialized_size"], want["serialized_size"]);
    assert_eq!(got["version"], want["version"]);
    assert_eq!(got["time_range"], want["time_range"]);
    let inputs = got["inputs"].as_array().unwrap();
    let input_ids: Vec<String> = inputs
        .iter()
        .map(|i| i["input_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(input_ids, strings(&want["input_ids"]));
    let sighashes: Vec<String> = inputs
        .iter()
        .map(|i| i["sighash"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sighashes, strings(&want["sighash_per_input"]));
    let mut spent: Vec<String> = inputs
        .iter()
        .filter_map(|i| i["spent_output_id"].as_str().map(str::to_string))
        .collect();
    spent.sort();
    spent.dedup();
    let mut want_spent = strings(&want["spent_output_ids"]);
    want_spent.sort();
    assert_eq!(
        spent, want_spent,
        "spent outputs (Bytom's order is a map's)"
    );
    let output_ids: Vec<String> = got["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(output_ids, strings(&want["result_ids"]));
    assert_eq!(got["mux_id"], want["mux_id"]);
}

fn check_header(got: &Value, want: &Value) {
    for key in [
        "hash",
        "previous_block_hash",
        "version",
        "height",
        "timestamp",
        "nonce",
    ] {
        if !want[key].is_null() {
            assert_eq!(
                got[key].to_string().trim_matches('"'),
                want[key].to_string().trim_matches('"'),
                "{key}"
            );
        }
    }
    if !want["bits"].is_null() {
        assert_eq!(
            got["bits"].to_string(),
            want["bits"].to_string().trim_matches('"')
        );
    }
}

#[test]
fn genesis_blocks_with_proof_of_work() {
    let v = vectors();
    let seed = "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e";
    for name in ["mainnet", "testnet", "solonet"] {
        let g = &v["genesis"][name];
        let got = decode_ok(&["--seed", seed, g["block_hex"].as_str().unwrap()]);
        assert_eq!(got["kind"], "block");
        check_header(&got, g);
        assert_eq!(
            got["transactions_merkle_root"],
            g["transactions_merkle_root"]
        );
        assert_eq!(
            got["computed_transactions_merkle_root"],
            g["transactions_merkle_root"]
        );
        assert_eq!(got["transaction_status_hash"], g["transaction_status_hash"]);
        assert_eq!(
            got["pow"]["valid"], g["pow_valid_with_initial_seed"],
            "{name}"
        );
        assert_eq!(got["pow"]["target"], g["target_from_bits_hex"]);
        if let Some(t) = g["tensority_hash_with_initial_seed"].as_str() {
            assert_eq!(got["pow"]["tensority"], t);
        }
        for (tx, want) in got["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .zip(g["txs"].as_array().unwrap())
        {
            check_tx(tx, want);
        }
        let header = decode_ok(&[g["header_hex"].as_str().unwrap()]);
        assert_eq!(header["kind"], "block_header");
        assert_eq!(header["hash"], g["hash"]);
        assert!(header.get("pow").is_none(), "no seed, no pow");
    }
}

#[test]
fn every_bytom_test_file_vector() {
    let v = vectors();
    let list = v["bytom_test_file_vectors"]["vectors"].as_array().unwrap();
    let mut checked = 0;
    for vector in list {
        let hex = vector["hex"].as_str().unwrap();
        let got = decode_ok(&[hex]);
        let kind = vector["kind"].as_str().unwrap();
        if kind == "tx" {
            check_tx(&got, &vector["decoded"]);
        } else if kind.starts_with("block_header") {
            assert_eq!(got["kind"], "block_header");
            check_header(&got, vector);
        } else {
            assert_eq!(kind, "block");
            let want = &vector["decoded"];
            assert_eq!(got["kind"], "block");
            check_header(&got, want);
            let txs = got["transactions"].as_array().unwrap();
            let want_txs = want["txs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            assert_eq!(txs.len(), want_txs.len());
            for (tx, w) in txs.iter().zip(want_txs) {
                check_tx(tx, w);
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 23);
}

#[test]
fn malformed_input_is_a_typed_error_with_exit_code_2() {
    let v = vectors();
    let mut cases: Vec<String> = v["bytom_test_file_vectors"]["negative_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["hex"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cases.len(), 6);
    let genesis = v["genesis"]["mainnet"]["block_hex"].as_str().unwrap();
    cases.extend([
        String::new(),
        "zz".into(),
        "abc".into(),
        "05".into(),
        "02".into(),
        genesis[..genesis.len() - 2].to_string(),
        format!("{genesis}00"),
        "07".into(),
        "01".into(),
        "03ffffffffffffffffffff01".into(),
    ]);
    for hex in &cases {
        let out = decode(&[hex]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "input {hex:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = decode(&["--seed", "xyz", genesis]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seed"));
}
