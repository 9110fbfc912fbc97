//! The node as a process: `bystack-node` started for real (settings from flags and a TOML
//! file, HTTP API on loopback, mining through get-work/submit-work, SIGTERM, restart on the
//! same data directory), and kill -9 during a sync, many times at random moments: every
//! restart resumes from a committed block and the last run ends with the source's UTXO set.

#![cfg(feature = "rocksdb")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bystack_engine::consensus::Network;
use bystack_engine::devnet::{Adversity, XorShift};
use bystack_engine::validation::SkipPow;
use bystack_engine::{BlockHeader, Hash};
use bystack_node::api::types::HeaderJson;
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::config::RawSettings;
use bystack_node::p2p::{self, P2pConfig};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{RocksOptions, Store};
use common::*;
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_bystack-node");

/// One HTTP/1.1 POST with `Connection: close`; returns the status and the JSON body.
fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read reply");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, serde_json::from_str(body).expect("JSON body"))
}

/// `data` of a success envelope.
fn ok(addr: SocketAddr, path: &str, body: &str) -> Value {
    let (status, json) = post(addr, path, body);
    assert_eq!(status, 200, "{path}: {json}");
    assert_eq!(json["status"], "success", "{path}: {json}");
    json["data"].clone()
}

/// A running `bystack-node` whose stderr is read for the addresses it logs (`… listening
/// addr=IP:PORT`).
struct NodeProcess {
    child: Child,
    api: SocketAddr,
    stratum: Option<SocketAddr>,
}

impl NodeProcess {
    fn start(args: &[&str]) -> NodeProcess {
        let mut child = Command::new(NODE)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bystack-node");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !line.contains("listening") {
                    continue;
                }
                let addr = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse::<SocketAddr>().ok());
                if let Some(addr) = addr {
                    let _ = tx.send((line.contains("stratum"), addr));
                }
            }
        });
        let wants_stratum = args.contains(&"--stratum");
        let (mut api, mut stratum) = (None, None);
        while api.is_none() || (wants_stratum && stratum.is_none()) {
            let (is_stratum, addr) = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the node logs its listening addresses");
            if is_stratum {
                stratum = Some(addr);
            } else {
                api = Some(addr);
            }
        }
        NodeProcess {
            child,
            api: api.expect("API address"),
            stratum,
        }
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the node did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Finds a nonce for `work` (a get-work-json reply) with the CPU backend.
fn solve(work: &Value) -> BlockHeader {
    let header = serde_json::from_value::<HeaderJson>(work["block_header"].clone())
        .expect("header JSON")
        .to_header()
        .expect("header");
    let seed = Hash::from_hex(work["seed"].as_str().expect("seed")).expect("seed");
    solve_header(header, &seed)
}

#[test]
fn the_node_binary_serves_mines_stops_and_restarts_where_it_was() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "network = \"devnet\"\ndata_dir = \"{}\"\napi = \"127.0.0.1:0\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8 path");

    let node = NodeProcess::start(&["--config", config, "--pow-backend", "cpu"]);
    assert_eq!(ok(node.api, "get-block-count", "{}")["block_count"], 0);
    for height in 1..=2u64 {
        let work = ok(node.api, "get-work-json", "{}");
        let header = solve(&work);
        let body =
            serde_json::json!({ "block_header": HeaderJson::from_header(&header) }).to_string();
        assert_eq!(ok(node.api, "submit-work-json", &body), Value::Bool(true));
        assert_eq!(ok(node.api, "get-block-count", "{}")["block_count"], height);
    }
    let tip = ok(node.api, "get-block-hash", "{}");
    assert!(node.terminate().success(), "exit 0 on SIGTERM");

    // Same data directory, flags instead of the file's API address, and a stratum server: the
    // chain is still there, and a rig logging in gets a job on top of it.
    let node = NodeProcess::start(&[
        "--config",
        config,
        "--api",
        "127.0.0.1:0",
        "--stratum",
        "127.0.0.1:0",
        "--pow-backend",
        "cpu",
    ]);
    assert_eq!(ok(node.api, "get-block-count", "{}")["block_count"], 2);
    assert_eq!(ok(node.api, "get-block-hash", "{}"), tip);
    let mut rig = TcpStream::connect(node.stratum.expect("stratum address")).expect("connect");
    rig.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    writeln!(
        rig,
        r#"{{"id":1,"jsonrpc":"2.0","method":"login","params":{{"login":"acct.rig1","pass":"x","agent":"test/1.0"}}}}"#
    )
    .expect("login");
    let mut reply = String::new();
    BufReader::new(&rig)
        .read_line(&mut reply)
        .expect("login reply");
    let reply: Value = serde_json::from_str(&reply).expect("JSON line");
    assert_eq!(reply["id"], 1, "{reply}");
    assert!(reply["error"].is_null(), "{reply}");
    let job = &reply["result"]["job"];
    assert_eq!(
        job["height"], "0300000000000000",
        "job for height 3: {reply}"
    );
    assert!(node.terminate().success());
}

#[test]
fn bad_settings_exit_2_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "netwrok = \"devnet\"\n").expect("write");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--network", "moonnet", "--data-dir", "x"],
            "unknown network",
        ),
        (vec!["--network", "devnet"], "no data directory"),
        (
            vec!["--data-dir", "x", "--listen", "not-a-multiaddr"],
            "not a multiaddr",
        ),
        (
            vec!["--config", bad_toml.to_str().expect("utf-8")],
            "netwrok",
        ),
        (
            vec!["--data-dir", "x", "--mining-address", "bm1qqqq"],
            "mining",
        ),
    ];
    for (args, expected) in cases {
        let out = Command::new(NODE)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("run bystack-node");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Set in the sync child: `DATA_DIR PEER_MULTIADDR`.
const SYNC_CHILD_ENV: &str = "BYSTACK_SYNC_CHILD";
const SYNC_BLOCKS: usize = 500;
const KILLS: usize = 20;

/// The sync child: a node on RocksDB under DATA_DIR, syncing from PEER with proof of work
/// skipped and the tests' stopped clock (the chain is generated, not mined), serving the API
/// on a free port that it prints on stdout. Runs until killed. Does nothing in an ordinary
/// test run.
#[test]
fn sync_child() {
    let Ok(spec) = std::env::var(SYNC_CHILD_ENV) else {
        return;
    };
    let (dir, peer) = spec.split_once(' ').expect("DATA_DIR PEER");
    let settings = RawSettings {
        network: Some("devnet".into()),
        data_dir: Some(dir.into()),
        api: Some("127.0.0.1:0".into()),
        peers: vec![peer.to_string()],
        sync_window: Some(64),
        ..RawSettings::default()
    }
    .resolve()
    .expect("settings");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let running = bystack_node::run::start_with(
            &settings,
            Arc::new(SkipPow),
            ChainConfig::with_fixed_clock(NOW),
        )
        .await
        .expect("start");
        println!("API {}", running.api_addr.expect("API address"));
        std::future::pending::<()>().await;
    });
}

/// Starts the sync child; returns it and its API address.
fn spawn_sync_child(data_dir: &Path, peer: &str) -> (Child, SocketAddr) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["sync_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(SYNC_CHILD_ENV, format!("{} {peer}", data_dir.display()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    // The harness prints "test sync_child ... " before the child's own line, on the same line.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.split("API ").nth(1) {
                let _ = tx.send(addr.trim().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child prints its API address")
        .parse()
        .expect("socket address");
    (child, addr)
}

/// Waits until the child's API reports the whole chain, then kills it.
fn wait_synced(mut child: Child, api: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let count = ok(api, "get-block-count", "{}")["block_count"]
            .as_u64()
            .expect("count");
        if count == SYNC_BLOCKS as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "sync stalled at {count}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
}

/// The UTXO digest of the database under `data_dir`.
fn committed_digest(data_dir: &Path) -> bystack_engine::Hash {
    let store =
        Store::open_rocksdb(&data_dir.join("chain"), RocksOptions::default()).expect("reopen");
    store.utxo_digest().expect("digest")
}

/// The tip height committed in the database under `data_dir`, reopened from scratch.
fn committed_height(data_dir: &Path, genesis: &bystack_engine::Block) -> u64 {
    let store =
        Store::open_rocksdb(&data_dir.join("chain"), RocksOptions::default()).expect("reopen");
    let chain = Chain::open(
        store,
        genesis,
        Arc::new(SkipPow),
        ChainConfig::with_fixed_clock(NOW),
    )
    .expect("the database reopens cleanly after kill -9");
    chain.tip().height
}

#[test]
fn kill_9_during_sync_resumes_and_ends_with_the_sources_utxo_set() {
    if std::env::var(SYNC_CHILD_ENV).is_ok() {
        return;
    }
    let mut generator = generator(7, 8, Adversity::none());
    let blocks = blocks(&mut generator, SYNC_BLOCKS);
    let genesis = generator.genesis().clone();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // The source: an in-process node holding the whole chain, serving it over libp2p.
    let chain = Chain::open(
        Store::in_memory(),
        &genesis,
        Arc::new(SkipPow),
        ChainConfig::with_fixed_clock(NOW),
    )
    .expect("source chain");
    let source = Node::new(chain, NodeConfig::new(Network::Devnet));
    for window in blocks.chunks(100) {
        let report = source
            .submit_window(window.to_vec())
            .expect("source window");
        assert!(report.rejected.is_none(), "{:?}", report.rejected);
    }
    assert_eq!(source.tip().height, SYNC_BLOCKS as u64);
    let source_digest = source.utxo_digest().expect("digest");
    let handle = runtime
        .block_on(p2p::spawn(
            source.clone(),
            P2pConfig {
                listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")],
                ..P2pConfig::default()
            },
        ))
        .expect("source p2p");
    let listen = runtime
        .block_on(handle.listen_addrs())
        .expect("listen addrs");
    let peer = format!("{}/p2p/{}", listen[0], handle.local_peer_id());

    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = XorShift::new(
        std::env::var("BYSTACK_SYNC_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed),
    );

    // One undisturbed sync first: how long a whole one takes, start-up included, sets the
    // range of the kill moments.
    let started = Instant::now();
    let full_sync = dir.path().join("full");
    let (child, api) = spawn_sync_child(&full_sync, &peer);
    wait_synced(child, api);
    let sync_time = started.elapsed();
    assert_eq!(committed_digest(&full_sync), source_digest);

    // Kill -9 at random moments of that span. Every restart must reopen at a committed block
    // at least as high as before; a node that reached the tip is checked against the source
    // and replaced by a fresh one, so that the kills keep landing during syncs.
    let mut round = 0;
    let mut data_dir = dir.path().join(format!("late-{round}"));
    let mut previous = 0;
    let mut heights = Vec::new();
    for _ in 0..KILLS {
        let (mut child, _api) = spawn_sync_child(&data_dir, &peer);
        let delay = rng.below(sync_time.as_millis() as u64 + 1);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let height = committed_height(&data_dir, &genesis);
        assert!(
            height >= previous,
            "a restart lost committed blocks: {previous} -> {height}"
        );
        heights.push(height);
        previous = height;
        if height == SYNC_BLOCKS as u64 {
            assert_eq!(committed_digest(&data_dir), source_digest);
            round += 1;
            data_dir = dir.path().join(format!("late-{round}"));
            previous = 0;
        }
    }
    // The node killed last resumes and finishes.
    let (child, api) = spawn_sync_child(&data_dir, &peer);
    wait_synced(child, api);
    assert_eq!(committed_digest(&data_dir), source_digest);
    eprintln!("full sync {sync_time:?}; committed heights after each kill -9: {heights:?}");
    let mid_sync = heights.iter().filter(|&&h| h < SYNC_BLOCKS as u64).count();
    assert!(
        mid_sync >= KILLS / 2,
        "most kills should land before the tip: {heights:?}"
    );
    runtime.block_on(handle.shutdown());
}
