//! `relay` and `get-work` in smoke mode, through the library and through the binary: real
//! in-process nodes on loopback (RocksDB in a temporary directory, libp2p, the HTTP API).

use std::process::Command;

use bystack_bench::net::{self, GetWorkArgs, RelayArgs};
use serde_json::Value;

fn relay_smoke() -> RelayArgs {
    RelayArgs {
        nodes: 0,
        blocks: 0,
        timeout_secs: 10,
        smoke: true,
        json: true,
    }
}

fn get_work_smoke(concurrency: usize) -> GetWorkArgs {
    GetWorkArgs {
        requests: 0,
        concurrency,
        smoke: true,
        json: true,
    }
}

fn assert_latencies(samples: &[f64]) {
    assert!(
        samples.iter().all(|l| l.is_finite() && *l > 0.0),
        "{samples:?}"
    );
}

#[test]
fn relay_smoke_gives_one_sample_per_block_and_receiving_node() {
    let r = net::relay(&relay_smoke()).expect("relay");
    assert_eq!((r.nodes, r.blocks, r.warmup_blocks), (3, 3, 1));
    assert_eq!(r.latencies_ms.len(), 3 * 2);
    assert_latencies(&r.latencies_ms);
    assert_eq!(r.per_node_median_ms.len(), 2);
    assert!(r.min_ms <= r.median_ms, "{r:?}");
    assert!(r.median_ms <= r.p90_ms && r.p90_ms <= r.max_ms, "{r:?}");
    let largest = r.latencies_ms.iter().copied().fold(0.0, f64::max);
    assert_eq!(r.max_ms, largest);
    // node 0 accepts the block before it can reach anyone else.
    assert!(
        r.submit_median_ms > 0.0 && r.submit_median_ms <= r.max_ms,
        "{r:?}"
    );
    assert!(r.solve_median_ms > 0.0, "{r:?}");
}

#[test]
fn relay_refuses_a_single_node() {
    let args = RelayArgs {
        nodes: 1,
        blocks: 1,
        timeout_secs: 10,
        smoke: false,
        json: false,
    };
    let e = net::relay(&args).unwrap_err();
    assert!(e.to_string().contains("--nodes"), "{e}");
}

#[test]
fn get_work_smoke_times_every_request() {
    for concurrency in [1, 3] {
        let r = net::get_work(&get_work_smoke(concurrency)).expect("get-work");
        assert_eq!((r.requests, r.concurrency), (50, concurrency));
        assert_eq!(r.latencies_ms.len(), 50);
        assert_latencies(&r.latencies_ms);
        assert!(r.min_ms <= r.median_ms, "{r:?}");
        assert!(r.median_ms <= r.p99_ms && r.p99_ms <= r.max_ms, "{r:?}");
        assert!(r.requests_per_second.is_finite() && r.requests_per_second > 0.0);
        // Keep-alive: the node never closed a client's connection.
        assert_eq!(r.reconnects, 0);
    }
}

#[test]
fn get_work_refuses_more_clients_than_requests() {
    let args = GetWorkArgs {
        requests: 2,
        concurrency: 3,
        smoke: false,
        json: false,
    };
    assert!(net::get_work(&args).is_err());
}

/// Runs the binary with `args`; its one line of JSON.
fn cli_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .args(args)
        .output()
        .expect("spawn bystack-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object")
}

fn samples(v: &Value) -> Vec<f64> {
    v["latencies_ms"]
        .as_array()
        .expect("latencies_ms")
        .iter()
        .map(|l| l.as_f64().expect("a number"))
        .collect()
}

#[test]
fn cli_relay_smoke_json() {
    let v = cli_json(&["relay", "--smoke", "--json"]);
    assert_eq!(v["nodes"], 3, "{v}");
    assert_eq!(v["blocks"], 3, "{v}");
    let s = samples(&v);
    assert_eq!(s.len(), 6, "{v}");
    assert_latencies(&s);
    assert!(v["median_ms"].as_f64().unwrap() <= v["max_ms"].as_f64().unwrap());
}

#[test]
fn cli_get_work_smoke_json() {
    let v = cli_json(&["get-work", "--smoke", "--json", "--concurrency", "2"]);
    assert_eq!(v["requests"], 50, "{v}");
    assert_eq!(v["concurrency"], 2, "{v}");
    let s = samples(&v);
    assert_eq!(s.len(), 50, "{v}");
    assert_latencies(&s);
    assert!(v["median_ms"].as_f64().unwrap() <= v["p99_ms"].as_f64().unwrap());
    assert!(v["requests_per_second"].as_f64().unwrap() > 0.0);
}
