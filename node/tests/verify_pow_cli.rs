//! `bystack-node verify-pow`, run for real on the genesis blocks of ../shared/vectors/chain.json
//! (mainnet's meets its bits under the initial seed; testnet's and solonet's do not) and on
//! malformed input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const INITIAL_SEED: &str = "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e";

fn vectors() -> Value {
    let dir = std::env::var("BYSTACK_VECTORS")
        .unwrap_or_else(|_| format!("{}/../../shared/vectors", env!("CARGO_MANIFEST_DIR")));
    let text = std::fs::read_to_string(format!("{dir}/chain.json"))
        .unwrap_or_else(|e| panic!("cannot read {dir}/chain.json ({e}); set BYSTACK_VECTORS"));
    serde_json::from_str(&text).expect("valid JSON")
}

fn verify_pow(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bystack-node"))
        .arg("verify-pow")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bystack-node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn genesis(v: &Value, network: &str, key: &str) -> String {
    format!(
        "{} {INITIAL_SEED}\n",
        v["genesis"][network][key].as_str().unwrap()
    )
}

#[test]
fn mainnet_genesis_is_valid_on_the_cpu_and_the_float_backend() {
    let v = vectors();
    let g = &v["genesis"]["mainnet"];
    for backend in ["auto", "float"] {
        // The block and its header alone, in one batch.
        let input = genesis(&v, "mainnet", "block_hex") + &genesis(&v, "mainnet", "header_hex");
        let out = verify_pow(&["--pow-backend", backend], &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{backend}: {stderr}");
        let got = lines(&out);
        assert_eq!(got.len(), 2);
        for line in &got {
            assert_eq!(line["height"], 0);
            assert_eq!(line["hash"], g["hash"]);
            assert_eq!(line["pow_hash"], g["tensority_hash_with_initial_seed"]);
            assert_eq!(line["valid"], true);
            assert_eq!(line.as_object().unwrap().len(), 4, "{line}");
        }
    }
}

#[test]
fn a_batch_with_an_invalid_block_exits_1_with_every_verdict_in_order() {
    let v = vectors();
    let networks = ["testnet", "mainnet", "solonet"];
    let input: String = networks
        .iter()
        .map(|n| genesis(&v, n, "block_hex"))
        .collect::<Vec<_>>()
        .join("\n"); // blank lines between blocks are skipped
    for backend in ["auto", "float"] {
        let out = verify_pow(&["--pow-backend", backend, "--threads", "2"], &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
        let got = lines(&out);
        assert_eq!(got.len(), 3);
        for (line, network) in got.iter().zip(networks) {
            let g = &v["genesis"][network];
            assert_eq!(line["hash"], g["hash"], "{network}");
            assert_eq!(line["valid"], g["pow_valid_with_initial_seed"], "{network}");
        }
        assert_eq!(got[0]["pow_hash"], got[2]["pow_hash"], "same header ID");
    }
}

#[test]
fn bad_input_is_a_typed_error_naming_the_line_with_exit_code_2() {
    let v = vectors();
    let good = genesis(&v, "mainnet", "block_hex");
    let block = v["genesis"]["mainnet"]["block_hex"].as_str().unwrap();
    let tx = v["genesis"]["mainnet"]["txs"][0]["hex"].as_str().unwrap();
    let cases = [
        (
            format!("{block}\n"),
            "line 2: expected `BLOCK_HEX SEED_HEX`, got 1",
        ),
        (format!("{block} {INITIAL_SEED} extra\n"), "got 3 field(s)"),
        (format!("zz {INITIAL_SEED}\n"), "line 2: block is not hex"),
        (
            format!("{tx} {INITIAL_SEED}\n"),
            "line 2: serialization flag 0x07",
        ),
        (
            format!("{} {INITIAL_SEED}\n", &block[..block.len() - 2]),
            "line 2: malformed block",
        ),
        (format!("{block} abcd\n"), "line 2: seed"),
    ];
    for (bad, expected) in &cases {
        let out = verify_pow(&[], &format!("{good}{bad}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(out.stdout.is_empty(), "nothing verified on bad input");
    }
    let out = verify_pow(&["--pow-backend", "no-such-backend"], &good);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-backend"));
}

#[test]
fn decode_computes_the_pow_on_the_chosen_backend() {
    let v = vectors();
    let g = &v["genesis"]["mainnet"];
    let out = Command::new(env!("CARGO_BIN_EXE_bystack-node"))
        .args(["--pow-backend", "float", "decode", "--seed", INITIAL_SEED])
        .arg(g["block_hex"].as_str().unwrap())
        .output()
        .expect("run bystack-node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["pow"]["tensority"],
        g["tensority_hash_with_initial_seed"]
    );
    assert_eq!(got["pow"]["valid"], true);
}
