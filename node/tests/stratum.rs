//! The stratum server on loopback TCP against an in-process node with real Tensority proof
//! of work (devnet: one hash in 64 is a block): the protocol's answers and error codes, a
//! block found through a share and accepted by the chain, stale and duplicate shares, and
//! hostile clients (malformed JSON, unknown methods, a 20 KB line, idle and slowloris
//! connections, per-IP limits, 500 concurrent sessions) that never hurt valid sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bystack_engine::consensus::Network;
use bystack_engine::genesis::genesis_block;
use bystack_engine::pow::{meets_bits, HeaderTemplate};
use bystack_engine::validation::TensorityPow;
use bystack_kernels::hex;
use bystack_kernels::{open_backend, PreparedSeed};
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{MemoryKv, Store};
use bystack_node::stratum::{ShareTarget, StratumConfig, StratumServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(20);

/// A devnet node on the memory store, checking proof of work with the CPU backend.
fn devnet_node() -> Arc<Node<MemoryKv>> {
    let genesis = genesis_block(Network::Devnet);
    let pow = Arc::new(TensorityPow::open("cpu", 1).expect("cpu backend"));
    let chain = Chain::open(Store::in_memory(), &genesis, pow, ChainConfig::default()).unwrap();
    Node::new(chain, NodeConfig::new(Network::Devnet))
}

struct Running {
    server: Arc<StratumServer<MemoryKv>>,
    node: Arc<Node<MemoryKv>>,
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start(config: StratumConfig) -> Running {
    let node = devnet_node();
    let server = StratumServer::new(
        node.clone(),
        StratumConfig {
            verify_backend: "cpu".into(),
            verify_threads: 1,
            ..config
        },
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        server,
        node,
        addr,
        _stop: stop,
    }
}

/// A fixed easy difficulty, no vardiff during the test.
fn fixed(difficulty: u64) -> StratumConfig {
    StratumConfig {
        initial_difficulty: difficulty,
        retarget_window: Duration::from_secs(3600),
        target_share_interval: Duration::from_secs(3600),
        ..StratumConfig::default()
    }
}

struct Client {
    lines: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    /// Job notifications seen while waiting for replies.
    jobs: Vec<Value>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
        Client {
            lines: BufReader::new(read),
            write,
            jobs: Vec::new(),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write.write_all(bytes).await
    }

    async fn send(&mut self, message: &Value) {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.send_raw(&line).await.unwrap();
    }

    /// The next message; `None` at end of stream.
    async fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.lines.read_line(&mut line))
            .await
            .expect("no message in time")
            .ok()?;
        if n == 0 {
            return None;
        }
        Some(serde_json::from_str(&line).expect("server sent JSON"))
    }

    /// The reply to the last request (job notifications before it are kept).
    async fn reply(&mut self) -> Value {
        loop {
            let message = self
                .next()
                .await
                .expect("connection closed before the reply");
            if message["method"] == "job" {
                self.jobs.push(message["params"].clone());
                continue;
            }
            return message;
        }
    }

    async fn request(&mut self, message: Value) -> Value {
        self.send(&message).await;
        self.reply().await
    }

    /// Logs in; returns the job of the reply.
    async fn login(&mut self, login: &str) -> Value {
        let reply = self
            .request(json!({"id": 1, "method": "login", "params": {"login": login, "pass": "x", "agent": "test/1"}}))
            .await;
        assert_eq!(reply["result"]["status"], "OK", "{reply}");
        assert_eq!(reply["result"]["id"], login);
        let job = reply["result"]["job"].clone();
        // The separate notification of the same job.
        let pushed = self.next().await.unwrap();
        assert_eq!(pushed["method"], "job");
        assert_eq!(pushed["params"], job);
        job
    }

    async fn submit(&mut self, login: &str, job: &Value, nonce: u64) -> Value {
        self.request(json!({"id": 7, "method": "submit", "params": {
            "id": login, "job_id": job["job_id"], "nonce": format!("{nonce:016x}")}}))
            .await
    }

    /// The next job notification (already seen or still to come).
    async fn next_job(&mut self) -> Value {
        if !self.jobs.is_empty() {
            return self.jobs.remove(0);
        }
        loop {
            let message = self.next().await.expect("closed while waiting for a job");
            if message["method"] == "job" {
                return message["params"].clone();
            }
        }
    }

    /// Whether the server closed the connection (after any pending messages).
    async fn closed(&mut self) -> bool {
        loop {
            match self.next().await {
                None => return true,
                Some(m) if m["method"] == "job" => continue,
                Some(m) => panic!("unexpected message {m}"),
            }
        }
    }
}

fn le_u64(text: &Value) -> u64 {
    let bytes = hex::decode(text.as_str().unwrap()).unwrap();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

fn h32(text: &Value) -> [u8; 32] {
    hex::decode32(text.as_str().unwrap()).unwrap()
}

/// What a miner needs from a job object.
struct Work {
    header: HeaderTemplate,
    start: u64,
    bits: u64,
    target: ShareTarget,
    prepared: Arc<dyn PreparedSeed>,
}

fn work(job: &Value) -> Work {
    let header = HeaderTemplate::new(
        le_u64(&job["version"]),
        le_u64(&job["height"]),
        &h32(&job["previous_block_hash"]),
        le_u64(&job["timestamp"]),
        &h32(&job["transactions_merkle_root"]),
        &h32(&job["transaction_status_hash"]),
        le_u64(&job["bits"]),
    );
    let backend = open_backend("cpu", 1).unwrap();
    Work {
        header,
        start: le_u64(&job["nonce"]),
        bits: le_u64(&job["bits"]),
        target: ShareTarget::from_hex(job["target"].as_str().unwrap()).unwrap(),
        prepared: backend.prepare(&h32(&job["seed"])).unwrap(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// Meets the share target, not the block's bits.
    Share,
    /// Meets the block's bits.
    Block,
    /// Misses the share target.
    Low,
}

/// The first nonce from the job's start (skipping `used`) of the wanted kind.
fn find(work: &Work, kind: Kind, used: &[u64]) -> u64 {
    (work.start..work.start + 100_000)
        .filter(|n| !used.contains(n))
        .find(|&n| {
            let pow = work.prepared.hash(&work.header.header_hash(n)).unwrap();
            let got = if meets_bits(&pow, work.bits) {
                Kind::Block
            } else if work.target.is_met_by(&pow) {
                Kind::Share
            } else {
                Kind::Low
            };
            got == kind
        })
        .expect("no nonce of that kind")
}

fn error_code(reply: &Value) -> i64 {
    assert!(reply["result"].is_null(), "{reply}");
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no code in {reply}"))
}

fn ok(reply: &Value) -> bool {
    reply["result"]["status"] == "OK" && reply["error"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_checks_answer_with_btmcpool_codes_and_a_block_share_extends_the_chain() {
    let run = start(fixed(2)).await;
    let mut miner = Client::connect(run.addr).await;

    // Before login.
    let early = miner
        .request(json!({"id": 5, "method": "submit", "params": {"id": "acct.w1", "job_id": "1", "nonce": "00"}}))
        .await;
    assert_eq!(early["id"], 5);
    assert_eq!(error_code(&early), 24);

    let job = miner.login("acct.w1").await;
    assert_eq!(job["height"], "0100000000000000");
    assert_eq!(job["target"], ShareTarget::from_difficulty(2).to_hex());
    for field in ["version", "height", "timestamp", "nonce", "bits"] {
        assert_eq!(job[field].as_str().unwrap().len(), 16, "{field}");
    }
    let w = work(&job);
    assert_eq!(w.start, run.server.nonce_prefix(0));

    // A second login on the same session.
    let again = miner
        .request(json!({"id": 2, "method": "login", "params": {"login": "acct.w1"}}))
        .await;
    assert_eq!(error_code(&again), 40);

    let share = find(&w, Kind::Share, &[]);
    let low = find(&w, Kind::Low, &[]);
    // Wrong worker id, unknown job, bad nonce formats, low difficulty.
    let wrong_id = miner
        .request(json!({"id": 3, "method": "submit", "params": {"id": "other", "job_id": job["job_id"], "nonce": format!("{share:016x}")}}))
        .await;
    assert_eq!(error_code(&wrong_id), 24);
    for job_id in ["12345", "not-a-number", ""] {
        let reply = miner
            .request(json!({"id": 3, "method": "submit", "params": {"id": "acct.w1", "job_id": job_id, "nonce": "01"}}))
            .await;
        assert_eq!(error_code(&reply), 21, "{job_id}");
    }
    for nonce in ["", "XYZ", "0123456789abcdef0", "ABCDEF", "0x12"] {
        let reply = miner
            .request(json!({"id": 3, "method": "submit", "params": {"id": "acct.w1", "job_id": job["job_id"], "nonce": nonce}}))
            .await;
        assert_eq!(error_code(&reply), 32, "{nonce:?}");
    }
    let missing = miner
        .request(json!({"id": 3, "method": "submit", "params": {"id": "acct.w1"}}))
        .await;
    assert_eq!(error_code(&missing), 32);
    assert_eq!(error_code(&miner.submit("acct.w1", &job, low).await), 23);
    // A miner that says its own result misses the target is refused without hashing.
    let verified_before = run
        .server
        .counters()
        .verified
        .load(std::sync::atomic::Ordering::Relaxed);
    let claimed = miner
        .request(
            json!({"id": 3, "method": "submit", "params": {"id": "acct.w1", "job_id": job["job_id"],
            "nonce": format!("{share:016x}"), "result": "ff".repeat(32)}}),
        )
        .await;
    assert_eq!(error_code(&claimed), 23);
    assert_eq!(
        run.server
            .counters()
            .verified
            .load(std::sync::atomic::Ordering::Relaxed),
        verified_before
    );

    // A valid share, then the same share again.
    let accepted = miner.submit("acct.w1", &job, share).await;
    assert_eq!(accepted["id"], 7);
    assert_eq!(accepted["jsonrpc"], "2.0");
    assert!(ok(&accepted), "{accepted}");
    assert_eq!(error_code(&miner.submit("acct.w1", &job, share).await), 22);

    // A share that is also a block: accepted, the chain grows, a new job is pushed and the
    // old job's shares are stale.
    let block = find(&w, Kind::Block, &[share]);
    assert!(ok(&miner.submit("acct.w1", &job, block).await));
    let mut next = miner.next_job().await;
    while next["height"] != "0200000000000000" {
        assert_eq!(next["height"], "0100000000000000");
        next = miner.next_job().await;
    }
    assert_eq!(run.node.tip().height, 1);
    let mined = run.node.block_by_height(1).unwrap().unwrap();
    assert_eq!(mined.header.nonce, block);
    let stale_nonce = find(&w, Kind::Share, &[share, block]);
    let stale = miner.submit("acct.w1", &job, stale_nonce).await;
    assert_eq!(error_code(&stale), 32);
    assert_eq!(stale["error"]["message"], "Stale share");

    // The session still works on the new job.
    let w2 = work(&next);
    let share2 = find(&w2, Kind::Share, &[]);
    assert!(ok(&miner.submit("acct.w1", &next, share2).await));

    let stats = run.server.sessions();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].login.as_deref(), Some("acct.w1"));
    assert_eq!(stats[0].agent.as_deref(), Some("test/1"));
    assert_eq!(stats[0].accepted, 3);
    assert_eq!(stats[0].blocks, 1);
    assert!(stats[0].hash_rate > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_are_answered_or_dropped_and_valid_sessions_keep_working() {
    let run = start(fixed(2)).await;
    let mut good = Client::connect(run.addr).await;
    let job = good.login("good.0").await;

    // Malformed JSON: code 20, then the session ends.
    let mut bad = Client::connect(run.addr).await;
    bad.send_raw(b"{\"id\": 1, \"method\": \"login\", \n")
        .await
        .unwrap();
    assert_eq!(error_code(&bad.reply().await), 20);
    assert!(bad.closed().await);

    // Not an object, or no method.
    for line in [
        &b"[1,2,3]\n"[..],
        b"\"login\"\n",
        b"{\"id\":1}\n",
        b"\xff\xfe\n",
    ] {
        let mut c = Client::connect(run.addr).await;
        c.send_raw(line).await.unwrap();
        assert_eq!(error_code(&c.reply().await), 20);
        assert!(c.closed().await);
    }

    // Unknown methods: 34, then the session ends.
    for method in ["getjob", "mining.subscribe", "eth_submitLogin"] {
        let mut c = Client::connect(run.addr).await;
        let reply = c
            .request(json!({"id": 9, "method": method, "params": []}))
            .await;
        assert_eq!(reply["id"], 9);
        assert_eq!(error_code(&reply), 34, "{method}");
        assert!(c.closed().await);
    }

    // Bad login formats: 31, the session stays.
    let mut c = Client::connect(run.addr).await;
    for params in [
        json!({"login": ""}),
        json!({"login": ".w"}),
        json!({"pass": "x"}),
        json!("x"),
    ] {
        let reply = c
            .request(json!({"id": 4, "method": "login", "params": params}))
            .await;
        assert_eq!(error_code(&reply), 31, "{params}");
    }
    c.login("late.1").await;

    // A 20 KB line: dropped without a reply.
    let mut flood = Client::connect(run.addr).await;
    let mut line = vec![b'a'; 20 * 1024];
    line.push(b'\n');
    let _ = flood.send_raw(&line).await;
    assert!(flood.closed().await);
    // ... also without any newline at all.
    let mut flood = Client::connect(run.addr).await;
    let _ = flood.send_raw(&[b'{'; 20 * 1024]).await;
    assert!(flood.closed().await);

    // A flood of junk shares on one session, answered in order; the good session still works.
    let w = work(&job);
    let mut spam = Client::connect(run.addr).await;
    let spam_job = spam.login("spam.1").await;
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let m = json!({"id": i, "method": "submit", "params": {"id": "spam.1", "job_id": "1", "nonce": "00"}});
        burst.extend_from_slice(m.to_string().as_bytes());
        burst.push(b'\n');
    }
    spam.send_raw(&burst).await.unwrap();
    for i in 0..2000u32 {
        let reply = spam.reply().await;
        assert_eq!(reply["id"], i);
        assert_eq!(error_code(&reply), 21);
    }
    assert_ne!(
        spam_job["nonce"], job["nonce"],
        "sessions share a nonce prefix"
    );
    let share = find(&w, Kind::Share, &[]);
    let reply = good.submit("good.0", &job, share).await;
    assert!(ok(&reply), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_sessions_at_once_each_get_their_own_prefix_and_answers() {
    const SESSIONS: usize = 500;
    let run = start(StratumConfig {
        max_sessions_per_ip: SESSIONS + 10,
        ..fixed(2)
    })
    .await;
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let addr = run.addr;
            tokio::spawn(async move {
                let mut c = Client::connect(addr).await;
                let login = format!("load.{i}");
                let job = c.login(&login).await;
                let reply = c
                    .request(json!({"id": 2, "method": "submit", "params": {"id": login, "job_id": "0", "nonce": "0"}}))
                    .await;
                assert_eq!(error_code(&reply), 21);
                (c, le_u64(&job["nonce"]))
            })
        })
        .collect();
    let mut clients = Vec::new();
    let mut prefixes = std::collections::HashSet::new();
    for task in tasks {
        let (c, prefix) = task.await.unwrap();
        assert!(prefixes.insert(prefix), "prefix {prefix:x} given twice");
        clients.push(c);
    }
    assert_eq!(run.server.sessions().len(), SESSIONS);
    // All of them still answer.
    for (i, c) in clients.iter_mut().enumerate().step_by(50) {
        let reply = c
            .request(json!({"id": 3, "method": "submit", "params": {"id": format!("load.{i}"), "job_id": "0", "nonce": "0"}}))
            .await;
        assert_eq!(error_code(&reply), 21);
    }
    drop(clients);
    for _ in 0..100 {
        if run.server.sessions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        run.server.sessions().is_empty(),
        "closed sessions not released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_ip_limit_are_refused() {
    let run = start(StratumConfig {
        max_sessions_per_ip: 2,
        ..fixed(2)
    })
    .await;
    let mut a = Client::connect(run.addr).await;
    let mut b = Client::connect(run.addr).await;
    a.login("a.1").await;
    b.login("b.1").await;
    let mut refused = Client::connect(run.addr).await;
    assert!(refused.closed().await);
    drop(a);
    // The slot comes back once the first session has gone.
    let mut admitted = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut c = Client::connect(run.addr).await;
        c.send(&json!({"id": 1, "method": "login", "params": {"login": "c.1"}}))
            .await;
        if c.next().await.is_some() {
            admitted = true;
            break;
        }
    }
    assert!(admitted);
    let reply = b
        .request(json!({"id": 3, "method": "submit", "params": {"id": "b.1", "job_id": "0", "nonce": "0"}}))
        .await;
    assert_eq!(error_code(&reply), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_connections_are_dropped() {
    let run = start(StratumConfig {
        idle_timeout: Duration::from_millis(1500),
        ..fixed(2)
    })
    .await;
    let mut idle = Client::connect(run.addr).await;
    let mut slow = Client::connect(run.addr).await;
    // A slowloris client: a byte every 100 ms, never a whole line.
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            if slow.send_raw(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    let t0 = std::time::Instant::now();
    assert!(idle.closed().await);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let mut slow = trickle.await.unwrap();
    assert!(slow.closed().await);
    assert!(run.server.sessions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vardiff_lowers_a_silent_sessions_difficulty_and_raises_a_flooding_ones() {
    let run = start(StratumConfig {
        initial_difficulty: 32,
        target_share_interval: Duration::from_millis(200),
        retarget_window: Duration::from_millis(800),
        ..StratumConfig::default()
    })
    .await;
    let difficulty = |job: &Value| {
        ShareTarget::from_hex(job["target"].as_str().unwrap())
            .unwrap()
            .difficulty()
    };

    // Silent: a quarter of the difficulty after one window.
    let mut silent = Client::connect(run.addr).await;
    let first = silent.login("quiet.1").await;
    assert!((difficulty(&first) - 32.0).abs() < 0.01);
    let lowered = silent.next_job().await;
    assert!((difficulty(&lowered) - 8.0).abs() < 0.01, "{lowered}");
    assert_ne!(lowered["job_id"], first["job_id"]);
    assert_ne!(
        lowered["timestamp"], first["timestamp"],
        "a vardiff job repeats a header"
    );

    // Flooding: at difficulty 1 every hash is a share; sixty of them, over twice the 25 a
    // window expects, raise it at the next look without waiting for the window's end.
    let run = start(StratumConfig {
        initial_difficulty: 1,
        target_share_interval: Duration::from_millis(200),
        retarget_window: Duration::from_secs(5),
        ..StratumConfig::default()
    })
    .await;
    let mut busy = Client::connect(run.addr).await;
    let job = busy.login("busy.1").await;
    let w = work(&job);
    let mut used = Vec::new();
    for _ in 0..60 {
        let nonce = find(&w, Kind::Share, &used);
        used.push(nonce);
        assert!(ok(&busy.submit("busy.1", &job, nonce).await));
    }
    let raised = busy.next_job().await;
    assert!(difficulty(&raised) > 1.0, "{raised}");
    // Never above the block's own difficulty (64 hashes on devnet).
    assert!(difficulty(&raised) <= 64.1, "{raised}");
    assert_eq!(run.server.sessions()[0].accepted, 60);
}
