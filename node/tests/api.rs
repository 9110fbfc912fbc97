//! The HTTP API on a real loopback port, over real HTTP/1.1 (a small client on a Tokio
//! `TcpStream`): mining through get-work / submit-work with the CPU Tensority backend, stale
//! work, every endpoint's success and its malformed bodies, the body cap and `/metrics`.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bystack_engine::consensus::Network;
use bystack_engine::devnet::{Adversity, ChainGenerator, GeneratorConfig, Injection};
use bystack_engine::genesis::genesis_block;
use bystack_engine::pow::{calc_work, Target};
use bystack_engine::validation::{PowCheck, SkipPow, TensorityPow};
use bystack_engine::{Block, BlockHeader, Hash, Transaction};
use bystack_kernels::backend::open_backend;
use bystack_node::api::{self, types::HeaderJson};
use bystack_node::chain::{BlockStatus, Chain, ChainConfig};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{MemoryKv, Store};
use num_bigint::BigUint;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A reply as the client saw it on the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "reply is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits a raw HTTP/1.1 response into status, headers and body (content-length or chunked).
fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header block");
    let head = std::str::from_utf8(&raw[..split]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at
                + rest[at..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .expect("chunk size line");
            let size_text = std::str::from_utf8(&rest[at..line_end]).expect("ascii size");
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .expect("hex chunk size");
            at = line_end + 2;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        body
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// How long a test waits for a reply before it fails (instead of hanging).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads one reply from `stream` without waiting for the connection to close: the head, then
/// `Content-Length` bytes of body (none for an interim `1xx` reply).
async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut buf))
            .await
            .expect("a reply in time")
            .expect("read reply");
        assert!(n > 0, "connection closed before a complete reply");
        raw.extend_from_slice(&buf[..n]);
        let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = parse_reply(&raw[..split + 4]);
        let length: usize = if head.status < 200 {
            0
        } else {
            head.header("content-length")
                .and_then(|v| v.parse().ok())
                .expect("a content length")
        };
        if raw.len() >= split + 4 + length {
            return parse_reply(&raw[..split + 4 + length]);
        }
    }
}

/// One request on a fresh connection (`Connection: close`, so the reply ends at EOF).
async fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    tokio::time::timeout(REPLY_TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .expect("a reply in time")
        .expect("read reply");
    parse_reply(&raw)
}

/// The API served on 127.0.0.1:0 until dropped or stopped.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    async fn start(node: Arc<Node<MemoryKv>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(api::serve(node, listener, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        request(self.addr, "POST", path, body.as_bytes()).await
    }

    /// POSTs `body` and returns `data` of the success envelope.
    async fn ok(&self, path: &str, body: &str) -> Value {
        let reply = self.post(path, body).await;
        let json = reply.json();
        assert_eq!(reply.status, 200, "{path} {body}: {json}");
        assert_eq!(json["status"], "success", "{path} {body}: {json}");
        json["data"].clone()
    }

    /// POSTs `body` and returns the HTTP status and the fail envelope, checking its shape.
    async fn fail(&self, path: &str, body: &str) -> (u16, Value) {
        let reply = self.post(path, body).await;
        let json = reply.json();
        assert_eq!(json["status"], "fail", "{path} {body}: {json}");
        for key in ["code", "msg", "error_detail"] {
            assert!(json[key].is_string(), "{path} {body}: no {key} in {json}");
        }
        (reply.status, json)
    }

    /// Asserts that `body` is refused as a bad request (HTTP 400, BTM002).
    async fn bad_request(&self, path: &str, body: &str) -> Value {
        let (status, json) = self.fail(path, body).await;
        assert_eq!(status, 400, "{path} {body}: {json}");
        assert_eq!(json["code"], "BTM002", "{path} {body}: {json}");
        assert_eq!(json["msg"], "Invalid request body");
        json
    }

    /// Asserts that the node refused `body` (HTTP 200, fail) and returns `error_detail`.
    async fn refused(&self, path: &str, body: &str) -> String {
        let (status, json) = self.fail(path, body).await;
        assert_eq!(status, 200, "{path} {body}: {json}");
        json["error_detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server io");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A chain tall enough for ordinary transactions: the generator's first spends need coinbase
/// outputs 100 blocks deep.
const TALL: usize = 106;

/// The validation clock of every node here: far past any generated timestamp.
const NOW: u64 = 4_000_000_000;

/// A generator of devnet blocks with `txs` ordinary transactions each and `adversity`.
fn generator(seed: u64, txs: usize, adversity: Adversity) -> ChainGenerator {
    ChainGenerator::new(GeneratorConfig {
        seed,
        txs_per_block: txs,
        adversity,
    })
}

/// A node on an in-memory store over `genesis` and `blocks` (connected before it starts),
/// with the validation clock at [`NOW`].
fn memory_node(
    genesis: &Block,
    blocks: &[Block],
    pow: Arc<dyn PowCheck + Send + Sync>,
) -> Arc<Node<MemoryKv>> {
    let mut chain = Chain::open(
        Store::in_memory(),
        genesis,
        pow,
        ChainConfig::with_fixed_clock(NOW),
    )
    .expect("open chain");
    for block in blocks {
        let outcome = chain.process_block(block.clone()).expect("valid block");
        assert_eq!(outcome.status, BlockStatus::MainChain);
    }
    Node::new(chain, NodeConfig::new(Network::Devnet))
}

/// The devnet genesis and `n` generated blocks on it with `txs` ordinary transactions each
/// (once coinbases mature); proof of work not mined.
fn devnet_chain(seed: u64, txs: usize, n: usize) -> (Block, Vec<Block>) {
    let mut generator = generator(seed, txs, Adversity::none());
    let genesis = generator.genesis().clone();
    let blocks = generator.generate(n).into_iter().map(|g| g.block).collect();
    (genesis, blocks)
}

fn hex_of(hash: &Hash) -> Value {
    Value::String(hash.to_hex())
}

/// Finds a nonce for `header` with the CPU Tensority backend, on the blocking pool.
async fn solve(mut header: BlockHeader, seed: Hash) -> BlockHeader {
    tokio::task::spawn_blocking(move || {
        let backend = open_backend("cpu", 1).expect("cpu backend");
        let prepared = backend.prepare(seed.as_bytes()).expect("seed");
        let template = header.template();
        let target = Target::from_bits(header.bits);
        let stop = AtomicBool::new(false);
        let mut start = 0u64;
        loop {
            let outcome = prepared
                .search(&template, start..start + 16, &target, &stop)
                .expect("search");
            if let Some(hit) = outcome.hits.first() {
                header.nonce = hit.nonce;
                return header;
            }
            start += 16;
            assert!(start < 1 << 16, "no nonce found for a devnet target");
        }
    })
    .await
    .expect("solver")
}

async fn block_count(server: &Server) -> u64 {
    server.ok("/get-block-count", "{}").await["block_count"]
        .as_u64()
        .expect("block_count is a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_solved_work_is_accepted_and_stale_work_is_refused() {
    let genesis = genesis_block(Network::Devnet);
    let pow = TensorityPow::open("cpu", 1).expect("cpu tensority");
    let node = memory_node(&genesis, &[], Arc::new(pow));
    let server = Server::start(node.clone()).await;
    assert_eq!(block_count(&server).await, 0);

    // Compact form: hex header and seed.
    let work = server.ok("/get-work", "").await;
    let header = BlockHeader::from_hex(work["block_header"].as_str().expect("hex header"))
        .expect("a serialized header");
    let seed = Hash::from_hex(work["seed"].as_str().expect("seed")).expect("64 hex");
    assert_eq!(header.height, 1);
    assert_eq!(header.previous_block_hash, genesis.hash());
    let solved = solve(header, seed).await;
    let body = json!({ "block_header": solved.to_hex().unwrap() }).to_string();
    assert_eq!(server.ok("/submit-work", &body).await, json!(true));
    assert_eq!(block_count(&server).await, 1);
    let tip = server.ok("/get-block-hash", "{}").await;
    assert_eq!(tip["block_hash"], hex_of(&solved.hash()));

    // The same work again: its parent is no longer the template's.
    let detail = server.refused("/submit-work", &body).await;
    assert_eq!(detail, "pending mining block has been changed");

    // JSON form.
    let work = server.ok("/get-work-json", "{}").await;
    let h = &work["block_header"];
    assert_eq!(h["height"], 2);
    assert_eq!(h["previous_block_hash"], hex_of(&solved.hash()));
    let header = BlockHeader {
        version: h["version"].as_u64().unwrap(),
        height: h["height"].as_u64().unwrap(),
        previous_block_hash: Hash::from_hex(h["previous_block_hash"].as_str().unwrap()).unwrap(),
        timestamp: h["timestamp"].as_u64().unwrap(),
        transactions_merkle_root: Hash::from_hex(
            h["block_commitment"]["transaction_merkle_root"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
        transaction_status_hash: Hash::from_hex(
            h["block_commitment"]["transaction_status_hash"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
        nonce: h["nonce"].as_u64().unwrap(),
        bits: h["bits"].as_u64().unwrap(),
        commitment_suffix: Vec::new(),
    };
    let seed = Hash::from_hex(work["seed"].as_str().unwrap()).unwrap();
    let solved_json = solve(header, seed).await;
    let mut submitted = h.clone();
    submitted["nonce"] = json!(solved_json.nonce);
    let body = json!({ "block_header": submitted }).to_string();
    assert_eq!(server.ok("/submit-work-json", &body).await, json!(true));
    assert_eq!(block_count(&server).await, 2);
    let detail = server.refused("/submit-work-json", &body).await;
    assert_eq!(detail, "pending mining block has been changed");

    // A nonce that misses the target is refused by the chain, not taken.
    let work = server.ok("/get-work", "{}").await;
    let mut header = BlockHeader::from_hex(work["block_header"].as_str().unwrap()).unwrap();
    let seed = Hash::from_hex(work["seed"].as_str().unwrap()).unwrap();
    let header = tokio::task::spawn_blocking(move || {
        let prepared = open_backend("cpu", 1)
            .unwrap()
            .prepare(seed.as_bytes())
            .unwrap();
        let target = Target::from_bits(header.bits);
        while target.is_met_by(&prepared.hash(&header.hash().0).unwrap()) {
            header.nonce += 1;
        }
        header
    })
    .await
    .unwrap();
    let body = json!({ "block_header": header.to_hex().unwrap() }).to_string();
    let detail = server.refused("/submit-work", &body).await;
    assert!(detail.contains("proof of work"), "{detail}");
    assert_eq!(block_count(&server).await, 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_queries_describe_the_main_chain() {
    // Ordinary transactions start once the first coinbases mature (100 blocks).
    let mut generator = generator(11, 3, Adversity::random(&[Injection::StatusFail], 0.5));
    let genesis = generator.genesis().clone();
    let generated = generator.generate(TALL);
    let blocks: Vec<Block> = generated.iter().map(|g| g.block.clone()).collect();
    let node = memory_node(&genesis, &blocks, Arc::new(SkipPow));
    let server = Server::start(node).await;

    assert_eq!(block_count(&server).await, TALL as u64);
    let best = server.ok("/get-block-hash", "").await;
    assert_eq!(best["block_hash"], hex_of(&blocks[TALL - 1].hash()));

    let checked: Vec<usize> = [0, 1].into_iter().chain(TALL - 5..TALL).collect();
    for &i in &checked {
        let g = &generated[i];
        let block = &g.block;
        let by_height = server
            .ok("/get-block", &json!({ "block_height": i + 1 }).to_string())
            .await;
        let by_hash = server
            .ok(
                "/get-block",
                &json!({ "block_hash": block.hash().to_hex() }).to_string(),
            )
            .await;
        assert_eq!(by_height, by_hash);
        let raw = by_hash["raw_block"].as_str().expect("raw_block");
        assert_eq!(&Block::from_hex(raw).expect("raw block decodes"), block);
        assert_eq!(by_hash["size"], raw.len() / 2);
        assert_eq!(by_hash["hash"], hex_of(&block.hash()));
        assert_eq!(by_hash["height"], block.header.height);
        assert_eq!(by_hash["version"], block.header.version);
        assert_eq!(
            by_hash["previous_block_hash"],
            hex_of(&block.header.previous_block_hash)
        );
        assert_eq!(by_hash["timestamp"], block.header.timestamp);
        assert_eq!(by_hash["nonce"], block.header.nonce);
        assert_eq!(by_hash["bits"], block.header.bits);
        assert_eq!(
            by_hash["difficulty"],
            calc_work(block.header.bits).to_string()
        );
        assert_eq!(
            by_hash["transaction_merkle_root"],
            hex_of(&block.header.transactions_merkle_root)
        );
        assert_eq!(
            by_hash["transaction_status_hash"],
            hex_of(&block.header.transaction_status_hash)
        );
        let txs = by_hash["transactions"].as_array().expect("transactions");
        assert_eq!(txs.len(), block.transactions.len());
        for ((json, tx), fail) in txs.iter().zip(&block.transactions).zip(&g.status_fail) {
            assert_eq!(json["id"], hex_of(&tx.id()));
            assert_eq!(json["size"], tx.serialized_size);
            assert_eq!(json["status_fail"], *fail);
            assert_eq!(json["mux_id"], hex_of(&tx.mapped.mux_id));
            assert_eq!(
                json["inputs"].as_array().unwrap().len(),
                tx.data.inputs.len()
            );
            assert_eq!(
                json["outputs"].as_array().unwrap().len(),
                tx.data.outputs.len()
            );
        }
        assert_eq!(txs[0]["inputs"][0]["type"], "coinbase");

        let header = server
            .ok(
                "/get-block-header",
                &json!({ "block_height": i + 1 }).to_string(),
            )
            .await;
        let decoded =
            BlockHeader::from_hex(header["block_header"].as_str().unwrap()).expect("header hex");
        assert_eq!(decoded, block.header);
        assert_eq!(
            header["reward"],
            block.transactions[0].data.outputs[0].amount
        );

        let difficulty = server
            .ok(
                "/get-difficulty",
                &json!({ "block_hash": block.hash().to_hex() }).to_string(),
            )
            .await;
        assert_eq!(
            difficulty,
            json!({
                "hash": block.hash().to_hex(),
                "height": block.header.height,
                "bits": block.header.bits,
                "difficulty": calc_work(block.header.bits).to_string(),
            })
        );
    }
    assert!(
        checked
            .iter()
            .any(|&i| generated[i].status_fail.iter().any(|f| *f)),
        "a checked block holds a status-fail transaction"
    );
    assert!(
        checked
            .iter()
            .any(|&i| generated[i].block.transactions.len() > 2),
        "a checked block holds ordinary transactions"
    );

    // No selector: genesis for get-block, the tip for get-hash-rate.
    let first = server.ok("/get-block", "{}").await;
    assert_eq!(first["hash"], hex_of(&genesis.hash()));
    let rate = server.ok("/get-hash-rate", "").await;
    let (tip, parent) = (&blocks[TALL - 1].header, &blocks[TALL - 2].header);
    let expected = calc_work(tip.bits) / BigUint::from(tip.timestamp - parent.timestamp);
    assert_eq!(
        rate,
        json!({
            "hash": blocks[TALL - 1].hash().to_hex(),
            "height": TALL,
            "hash_rate": u64::try_from(expected).unwrap(),
        })
    );
    let at_zero = server
        .ok("/get-hash-rate", &json!({ "block_height": 0 }).to_string())
        .await;
    assert_eq!(at_zero, rate, "height 0 means the tip");
    let rate = server
        .ok("/get-hash-rate", &json!({ "block_height": 3 }).to_string())
        .await;
    assert_eq!(rate["hash"], hex_of(&blocks[2].hash()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_blocks_extend_the_chain_and_orphans_and_invalid_blocks_are_refused() {
    let (genesis, blocks) = devnet_chain(21, 2, 6);
    let node = memory_node(&genesis, &blocks[..3], Arc::new(SkipPow));
    let server = Server::start(node).await;
    let raw = |b: &Block| json!({ "raw_block": b.to_hex().unwrap() }).to_string();

    assert_eq!(
        server.ok("/submit-block", &raw(&blocks[3])).await,
        json!(true)
    );
    assert_eq!(block_count(&server).await, 4);

    // Block 6 before block 5: an orphan.
    let detail = server.refused("/submit-block", &raw(&blocks[5])).await;
    assert_eq!(detail, "block submitted is orphan");
    assert_eq!(block_count(&server).await, 4);

    // A block whose merkle root does not match its transactions.
    let mut bad = blocks[4].clone();
    bad.header.transactions_merkle_root = Hash::default();
    let detail = server.refused("/submit-block", &raw(&bad)).await;
    assert!(detail.contains("merkle root"), "{detail}");
    assert_eq!(block_count(&server).await, 4);

    // Block 5 connects, and takes the orphan with it.
    assert_eq!(
        server.ok("/submit-block", &raw(&blocks[4])).await,
        json!(true)
    );
    assert_eq!(block_count(&server).await, 6);

    let metrics = request(server.addr, "GET", "/metrics", b"").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = metrics.text();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(value("bystack_chain_height"), 6);
    assert!(value("bystack_blocks_accepted_total") >= 2);
    assert!(value("bystack_blocks_rejected_total") >= 1);
    assert_eq!(value("bystack_mempool_transactions"), 0);
    assert_eq!(value("bystack_peers"), 0);
    assert!(text.contains("bystack_relay_latency_seconds_bucket{le=\"+Inf\"} 0"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_transactions_are_listed_unconfirmed() {
    let (genesis, blocks) = devnet_chain(5, 3, TALL);
    let node = memory_node(&genesis, &blocks[..TALL - 1], Arc::new(SkipPow));
    let server = Server::start(node).await;
    assert_eq!(
        server.ok("/list-unconfirmed-transactions", "{}").await,
        json!({ "total": 0, "tx_ids": [] })
    );

    // The next block's first ordinary transaction spends only outputs of the chain so far.
    let next = &blocks[TALL - 1];
    let tx: &Transaction = next.transactions.get(1).expect("an ordinary transaction");
    let body = json!({ "raw_transaction": tx.to_hex().unwrap() }).to_string();
    let admitted = server.ok("/submit-transaction", &body).await;
    assert_eq!(admitted, json!({ "tx_id": tx.id().to_hex() }));
    assert_eq!(
        server.ok("/list-unconfirmed-transactions", "").await,
        json!({ "total": 1, "tx_ids": [tx.id().to_hex()] })
    );

    // Twice: the pool refuses it.
    let detail = server.refused("/submit-transaction", &body).await;
    assert!(detail.contains("already"), "{detail}");
    // More out than in.
    let mut data = next.transactions[2].data.clone();
    data.outputs[0].amount += 1;
    let tampered = Transaction::new(data).unwrap();
    let body = json!({ "raw_transaction": tampered.to_hex().unwrap() }).to_string();
    let (status, json) = server.fail("/submit-transaction", &body).await;
    assert_eq!(status, 200);
    // The signatures no longer match: Bytom's "False result for executing VM".
    assert_eq!(json["code"], "BTM766", "{json}");
    assert_eq!(
        server.ok("/list-unconfirmed-transactions", "").await["total"],
        1
    );
    // A coinbase never enters the pool.
    let coinbase = &next.transactions[0];
    let body = json!({ "raw_transaction": coinbase.to_hex().unwrap() }).to_string();
    server.refused("/submit-transaction", &body).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_are_all_answered() {
    let (genesis, blocks) = devnet_chain(4, 1, 8);
    let node = memory_node(&genesis, &blocks, Arc::new(SkipPow));
    let server = Server::start(node).await;
    let replies = futures::future::join_all((0..32u64).map(|i| {
        let addr = server.addr;
        async move {
            let body = json!({ "block_height": i % 9 }).to_string();
            (
                i,
                request(addr, "POST", "/get-block-header", body.as_bytes()).await,
            )
        }
    }))
    .await;
    for (i, reply) in replies {
        let json = reply.json();
        assert_eq!(reply.status, 200, "{json}");
        let header = BlockHeader::from_hex(json["data"]["block_header"].as_str().unwrap()).unwrap();
        assert_eq!(header.height, i % 9);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn net_info_reports_the_node() {
    let (genesis, blocks) = devnet_chain(3, 1, 2);
    let node = memory_node(&genesis, &blocks, Arc::new(SkipPow));
    node.metrics().set_peers(3);
    let server = Server::start(node).await;
    let info = server.ok("/net-info", "{}").await;
    assert_eq!(info["network_id"], "devnet");
    assert_eq!(info["current_block"], 2);
    assert_eq!(info["highest_block"], 2);
    assert_eq!(info["peer_count"], 3);
    assert_eq!(info["syncing"], false);
    assert_eq!(info["mining"], false);
    assert!(info["listening"].is_boolean());
    assert_eq!(info["version_info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["version_info"]["update"], 0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_fail_envelopes() {
    let (genesis, blocks) = devnet_chain(9, 1, 3);
    let node = memory_node(&genesis, &blocks, Arc::new(SkipPow));
    let server = Server::start(node).await;

    let no_args = [
        "/get-work",
        "/get-work-json",
        "/get-block-count",
        "/get-block-hash",
        "/list-unconfirmed-transactions",
        "/net-info",
    ];
    for path in no_args {
        for body in ["\"text\"", "[1]", "42"] {
            server.bad_request(path, body).await;
        }
    }
    // Invalid JSON, everywhere.
    let with_args = [
        "/submit-work",
        "/submit-work-json",
        "/submit-block",
        "/get-block",
        "/get-block-header",
        "/get-difficulty",
        "/get-hash-rate",
        "/submit-transaction",
    ];
    for path in no_args.iter().chain(&with_args) {
        for body in ["{", "nul", "{\"a\":}", "{\"block_height\": 1,}", "\u{0}"] {
            let json = server.bad_request(path, body).await;
            assert!(
                json["error_detail"].as_str().unwrap().contains("line 1"),
                "{path} {body:?}: serde's position in {json}"
            );
        }
    }

    let selectors = [
        "/get-block",
        "/get-block-header",
        "/get-difficulty",
        "/get-hash-rate",
    ];
    let unknown = Hash([0xab; 32]).to_hex();
    for path in selectors {
        for body in [
            "{\"block_height\":",
            "{\"block_height\": \"2\"}",
            "{\"block_height\": -1}",
            "{\"block_height\": 1.5}",
            "{\"block_hash\": 7}",
            "{\"block_hash\": \"zz\"}",
            "{\"block_hash\": \"abcd\"}",
        ] {
            server.bad_request(path, body).await;
        }
        let detail = server
            .refused(path, &json!({ "block_height": 99 }).to_string())
            .await;
        assert!(detail.contains("99"), "{path}: {detail}");
        let detail = server
            .refused(path, &json!({ "block_hash": unknown }).to_string())
            .await;
        assert!(detail.contains(&unknown), "{path}: {detail}");
    }
    // Genesis has no parent to measure a hash rate from.
    server
        .refused(
            "/get-hash-rate",
            &json!({ "block_hash": genesis.hash().to_hex() }).to_string(),
        )
        .await;

    let header_hex = blocks[0].header.to_hex().unwrap();
    for body in [
        "".to_string(),
        "{}".to_string(),
        "{\"block_header\": 5}".to_string(),
        "{\"block_header\": \"xyz\"}".to_string(),
        "{\"block_header\": \"01\"}".to_string(),
        json!({ "block_header": &header_hex[..header_hex.len() - 2] }).to_string(),
        json!({ "block_header": header_hex.clone() + "00" }).to_string(),
    ] {
        server.bad_request("/submit-work", &body).await;
    }
    let mut good = serde_json::to_value(HeaderJson::from_header(&blocks[0].header)).unwrap();
    for (field, bad) in [
        ("version", json!("1")),
        ("nonce", json!(-3)),
        ("previous_block_hash", json!("00")),
        (
            "block_commitment",
            json!({ "transaction_merkle_root": "00" }),
        ),
    ] {
        let mut header = good.clone();
        header[field] = bad;
        let body = json!({ "block_header": header }).to_string();
        server.bad_request("/submit-work-json", &body).await;
    }
    good.as_object_mut().unwrap().remove("bits");
    let body = json!({ "block_header": good }).to_string();
    server.bad_request("/submit-work-json", &body).await;
    server.bad_request("/submit-work-json", "[]").await;

    for body in [
        "{}",
        "{\"raw_block\": []}",
        "{\"raw_block\": \"0\"}",
        "{\"raw_block\": \"03\"}",
        "{\"raw_block\": \"0zz3\"}",
    ] {
        server.bad_request("/submit-block", body).await;
    }
    for body in [
        "{}",
        "{\"raw_transaction\": true}",
        "{\"raw_transaction\": \"gg\"}",
        "{\"raw_transaction\": \"07\"}",
    ] {
        server.bad_request("/submit-transaction", body).await;
    }
    // A header where a transaction belongs.
    let body = json!({ "raw_transaction": header_hex }).to_string();
    server.bad_request("/submit-transaction", &body).await;

    // Wrong method, unknown path.
    let reply = request(server.addr, "GET", "/get-work", b"").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["status"], "fail");
    let reply = request(server.addr, "POST", "/metrics", b"{}").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.json()["status"], "fail");
    let (status, json) = server.fail("/no-such-endpoint", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(json["code"], "BTM000");

    // Bytom's clients do not always send a content type, nor a body.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /get-block-count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["data"]["block_count"], 3);

    // The node still answers after all that.
    assert_eq!(block_count(&server).await, 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_cap_are_refused_with_an_envelope() {
    let (genesis, blocks) = devnet_chain(2, 1, 1);
    let node = memory_node(&genesis, &blocks, Arc::new(SkipPow));
    let server = Server::start(node).await;

    let over = api::MAX_BODY_BYTES + 1;
    let assert_too_large = |reply: Reply| {
        assert_eq!(reply.status, 413);
        let json = reply.json();
        assert_eq!(json["status"], "fail");
        assert_eq!(json["code"], "BTM002");
        assert!(json["error_detail"]
            .as_str()
            .unwrap()
            .contains(&api::MAX_BODY_BYTES.to_string()));
    };

    // A declared length over the cap, sent only when the server asks for it
    // (`Expect: 100-continue`, as curl does for large bodies), so that the client never
    // writes into a connection the server has closed.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /submit-block HTTP/1.1\r\nHost: x\r\nContent-Length: {over}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = read_reply(&mut stream).await;
    if reply.status == 100 {
        // Asked for the body: the server reads it up to the cap.
        stream.write_all(&vec![b' '; over]).await.unwrap();
        reply = read_reply(&mut stream).await;
    }
    assert_too_large(reply);

    // A chunked body is read up to the cap, then refused (the server has read every byte
    // sent, so it closes cleanly).
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /submit-block HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(format!("{over:x}\r\n").as_bytes())
        .await
        .unwrap();
    stream.write_all(&vec![b' '; over]).await.unwrap();
    assert_too_large(read_reply(&mut stream).await);

    // A body just under the cap is read (and refused for what it says, not for its size).
    let mut padded = b"{\"raw_block\": \"zz\"}".to_vec();
    padded.resize(api::MAX_BODY_BYTES - 16, b' ');
    let reply = request(server.addr, "POST", "/submit-block", &padded).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error_detail"]
        .as_str()
        .unwrap()
        .contains("raw_block"));
    server.shutdown().await;
}
