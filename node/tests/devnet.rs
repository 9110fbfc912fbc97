//! A 4-node devnet on loopback, each node started the way `bystack-node` starts it
//! ([`run::start_with`]: RocksDB in a temp dir, HTTP API, libp2p): blocks mined through
//! `get-work-json`/`submit-work-json` on one node (real Tensority proofs checked by every
//! node) reach all others within 2 s, and a transaction submitted over HTTP to one node
//! reaches every mempool and then the next block everywhere.

#![cfg(feature = "rocksdb")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bystack_engine::devnet::Adversity;
use bystack_engine::validation::{PowCheck, SkipPow, TensorityPow};
use bystack_engine::{BlockHeader, Hash};
use bystack_node::api::types::HeaderJson;
use bystack_node::chain::ChainConfig;
use bystack_node::config::RawSettings;
use bystack_node::run::{self, RunningNode};
use common::{blocks, generator, solve_header, NOW};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RELAY_BOUND: Duration = Duration::from_secs(2);

/// One HTTP/1.1 POST (`Connection: close`); the success envelope's `data`.
async fn ok(addr: SocketAddr, path: &str, body: &str) -> Value {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("reply in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    let (_, body) = text.split_once("\r\n\r\n").expect("HTTP reply");
    let json: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(json["status"], "success", "{path}: {json}");
    json["data"].clone()
}

/// Starts `n` nodes in `dir`, each dialling the ones before it, all serving the API.
async fn devnet(
    dir: &std::path::Path,
    n: usize,
    pow: impl Fn() -> Arc<dyn PowCheck + Send + Sync>,
    clock: impl Fn() -> ChainConfig,
) -> Vec<RunningNode> {
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 0..n {
        let mut peers = Vec::new();
        for node in &nodes {
            let p2p = node.p2p.as_ref().expect("p2p");
            let addr = p2p.listen_addrs().await.expect("listen addrs")[0].clone();
            peers.push(format!("{addr}/p2p/{}", p2p.local_peer_id()));
        }
        let settings = RawSettings {
            network: Some("devnet".into()),
            data_dir: Some(dir.join(format!("node{i}"))),
            api: Some("127.0.0.1:0".into()),
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            peers,
            ..RawSettings::default()
        }
        .resolve()
        .expect("settings");
        nodes.push(
            run::start_with(&settings, pow(), clock())
                .await
                .expect("node starts"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while nodes
        .iter()
        .any(|node| node.p2p.as_ref().map_or(0, |p| p.peer_count()) < n - 1)
    {
        assert!(Instant::now() < deadline, "the devnet did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes
}

/// Polls `check` until it holds or `bound` passes.
async fn within(bound: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The header of a `get-work-json` reply.
fn header_of(work: &Value) -> BlockHeader {
    serde_json::from_value::<HeaderJson>(work["block_header"].clone())
        .expect("header JSON")
        .to_header()
        .expect("header")
}

fn submission(header: &BlockHeader) -> String {
    json!({ "block_header": HeaderJson::from_header(header) }).to_string()
}

/// get-work-json on `api`, a nonce found with the CPU backend (off the async threads),
/// submit-work-json; returns the new block's hash.
async fn mine_over_http(api: SocketAddr) -> Hash {
    let work = ok(api, "get-work-json", "{}").await;
    let mut header = header_of(&work);
    let seed = Hash::from_hex(work["seed"].as_str().expect("seed")).expect("seed");
    header = tokio::task::spawn_blocking(move || solve_header(header, &seed))
        .await
        .expect("solver");
    assert_eq!(
        ok(api, "submit-work-json", &submission(&header)).await,
        Value::Bool(true)
    );
    header.hash()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_mined_through_submit_work_reach_all_four_nodes_within_2_s() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = devnet(
        dir.path(),
        4,
        || Arc::new(TensorityPow::open("cpu", 1).expect("cpu backend")),
        ChainConfig::default,
    )
    .await;
    for round in 0..3 {
        // Alternate the miner: node 0, then 3, then 0.
        let miner = if round == 1 { 3 } else { 0 };
        let hash = mine_over_http(nodes[miner].api_addr.expect("api")).await;
        let mined = Instant::now();
        let relayed = within(RELAY_BOUND, || {
            nodes.iter().all(|n| n.node.tip().hash == hash)
        })
        .await;
        assert!(
            relayed,
            "round {round}: tips {:?} after {:?}",
            nodes.iter().map(|n| n.node.tip()).collect::<Vec<_>>(),
            mined.elapsed()
        );
    }
    for node in &nodes {
        let api = node.api_addr.expect("api");
        assert_eq!(ok(api, "get-block-count", "{}").await["block_count"], 3);
        let info = ok(api, "net-info", "{}").await;
        assert_eq!(info["listening"], true, "{info}");
        assert_eq!(info["peer_count"], 3, "{info}");
        assert_eq!(info["current_block"], 3, "{info}");
        assert_eq!(info["highest_block"], 3, "{info}");
        assert_eq!(info["syncing"], false, "{info}");
    }
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_submitted_over_http_reaches_every_mempool_and_the_next_block() {
    // A generated chain gives the wallet mature coins; its blocks are not mined, so these
    // nodes skip proof of work and run on the generator's clock.
    let mut generator = generator(23, 2, Adversity::none());
    let chain = blocks(&mut generator, 104);
    let dir = tempfile::tempdir().expect("temp dir");
    let nodes = devnet(
        dir.path(),
        4,
        || Arc::new(SkipPow),
        || ChainConfig::with_fixed_clock(NOW),
    )
    .await;
    let prefix = chain[..103].to_vec();
    let node = nodes[0].node.clone();
    tokio::task::spawn_blocking(move || node.submit_window(prefix))
        .await
        .expect("joins")
        .expect("prefix accepted");
    let tip = nodes[0].node.tip();
    let synced = within(Duration::from_secs(30), || {
        nodes.iter().all(|n| n.node.tip() == tip)
    })
    .await;
    assert!(synced, "the prefix reaches every node");

    // A transaction of block 104 (its inputs are unspent at 103), as raw hex over HTTP to
    // node 2.
    let api = nodes[2].api_addr.expect("api");
    let tx = &chain[103].transactions[1];
    let body = json!({ "raw_transaction": tx.to_hex().expect("hex") }).to_string();
    let data = ok(api, "submit-transaction", &body).await;
    let id = Hash::from_hex(data["tx_id"].as_str().expect("tx_id")).expect("id");
    assert_eq!(id, tx.id());
    let relayed = within(RELAY_BOUND, || {
        nodes.iter().all(|n| n.node.mempool_contains(&id))
    })
    .await;
    assert!(relayed, "the transaction reaches every mempool");

    // Node 1 mines the next block over HTTP: it carries the transaction, every node takes it,
    // and every mempool is empty again.
    let miner = nodes[1].api_addr.expect("api");
    let work = ok(miner, "get-work-json", "{}").await;
    let header = header_of(&work);
    assert_eq!(
        ok(miner, "submit-work-json", &submission(&header)).await,
        Value::Bool(true)
    );
    let hash = header.hash();
    let relayed = within(RELAY_BOUND, || {
        nodes
            .iter()
            .all(|n| n.node.tip().hash == hash && !n.node.mempool_contains(&id))
    })
    .await;
    assert!(relayed, "the block with the transaction reaches every node");
    let block = nodes[3]
        .node
        .block_by_hash(&hash)
        .expect("store")
        .expect("block");
    assert!(block.transactions.iter().any(|tx| tx.id() == id));
    for node in nodes {
        node.stop().await;
    }
}
