//! `bystack-bench relay` and `bystack-bench get-work`: the node's network paths on loopback.
//!
//! * **relay**: block relay latency across N in-process nodes, each started the way the
//!   `bystack-node` binary starts one ([`run::start_with`]: RocksDB in a temporary directory,
//!   libp2p on `127.0.0.1`, real Tensority proof-of-work checks with the CPU backend, the wall
//!   clock). Topology: a full mesh, built by every new node dialling all the nodes before it.
//!   Node 0 mines: work from its service API ([`Node::get_work`]), the nonce found on the CPU
//!   with the kernels' search (outside the timed interval), then [`Node::submit_work`]. One
//!   sample per (block, receiving node): from just before `submit_work` on node 0 until that
//!   node's [`NodeEvent::BlockConnected`] for the block's hash. One warm-up block is relayed
//!   untimed first, so that gossipsub meshes, which form on heartbeats after the connections,
//!   are in place when timing starts.
//! * **get-work**: the round trip of `get-work-json` over real loopback HTTP against one node
//!   (started as above, API on `127.0.0.1:0`, no p2p), with a plain keep-alive HTTP/1.1 client
//!   on tokio per concurrent client, as a miner polling a node holds its connection open
//!   (`bystack-miner`'s `NodeClient` opens a connection per request instead). Every reply is
//!   checked (a success envelope whose header decodes at the next height and whose seed is
//!   a hash) so that a fast error reply cannot count.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bystack_engine::pow::Target;
use bystack_engine::validation::TensorityPow;
use bystack_engine::{BlockHeader, Hash};
use bystack_kernels::TensorityBackend;
use bystack_node::api::types::HeaderJson;
use bystack_node::chain::{BlockStatus, ChainConfig};
use bystack_node::config::RawSettings;
use bystack_node::run::{self, RunningNode};
use bystack_node::service::NodeEvent;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

/// The proof-of-work backend of the nodes (checks) and of the solver.
const POW_BACKEND: &str = "cpu";
/// How long the nodes get to connect to each other.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the untimed warm-up block gets to reach every node.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Nonces searched before the solver gives up (devnet needs about 64).
const MAX_NONCES: u64 = 1 << 20;
/// Nonces per search call.
const SEARCH_CHUNK: u64 = 64;

/// The `relay` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// Nodes, node 0 (the miner) included; at least 2.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Timed blocks (after one untimed warm-up block).
    #[arg(long, default_value_t = 20)]
    pub blocks: usize,
    /// Seconds a block may take to reach every node before the run fails.
    #[arg(long, default_value_t = 10)]
    pub timeout_secs: u64,
    /// Quick run for CI: 3 nodes, 3 blocks (overrides those options).
    #[arg(long)]
    pub smoke: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `relay` measured.
#[derive(Debug, Clone, Serialize)]
pub struct RelayResult {
    /// Nodes, the miner included.
    pub nodes: usize,
    /// Timed blocks.
    pub blocks: usize,
    /// Untimed blocks relayed before the timed ones.
    pub warmup_blocks: usize,
    /// How the nodes are connected.
    pub topology: String,
    /// The proof-of-work backend the nodes check blocks with.
    pub pow_backend: String,
    /// One sample per (block, receiving node), block by block and nodes 1, 2, … within a
    /// block: milliseconds from just before `submit_work` on node 0 until that node reported
    /// the block connected.
    pub latencies_ms: Vec<f64>,
    /// Smallest sample.
    pub min_ms: f64,
    /// Median sample.
    pub median_ms: f64,
    /// 90th percentile (nearest rank).
    pub p90_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Median per receiving node (nodes 1, 2, …).
    pub per_node_median_ms: Vec<f64>,
    /// Median time node 0 took to accept the block (`submit_work`'s return), milliseconds:
    /// part of every sample.
    pub submit_median_ms: f64,
    /// Median time to find a nonce, milliseconds (not part of any sample).
    pub solve_median_ms: f64,
    /// Logical CPUs.
    pub cpus: usize,
}

/// The `get-work` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct GetWorkArgs {
    /// Timed requests over all clients.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Clients in parallel, each on its own keep-alive connection.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Quick run for CI: 50 requests (overrides `--requests`).
    #[arg(long)]
    pub smoke: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `get-work` measured.
#[derive(Debug, Clone, Serialize)]
pub struct GetWorkResult {
    /// Timed requests.
    pub requests: usize,
    /// Clients in parallel.
    pub concurrency: usize,
    /// The client used.
    pub client: String,
    /// One sample per request (client by client, in order): milliseconds from writing the
    /// request to having read the whole reply.
    pub latencies_ms: Vec<f64>,
    /// Smallest sample.
    pub min_ms: f64,
    /// Median sample.
    pub median_ms: f64,
    /// 90th percentile (nearest rank).
    pub p90_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Wall time of the timed requests, seconds.
    pub elapsed_s: f64,
    /// `requests / elapsed_s`.
    pub requests_per_second: f64,
    /// Connections the clients had to open again because the server closed one.
    pub reconnects: u64,
    /// Logical CPUs.
    pub cpus: usize,
}

/// The `p`-th quantile (0 < p ≤ 1) of `values` by nearest rank; `None` when empty.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil().clamp(1.0, v.len() as f64) as usize;
    Some(v[rank - 1])
}

fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

/// Runs `relay` and prints a table or JSON.
///
/// # Errors
/// As [`relay`].
pub fn relay_main(args: &RelayArgs) -> anyhow::Result<()> {
    let r = relay(args)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{}", relay_report(&r));
    }
    Ok(())
}

/// Human-readable lines of a [`RelayResult`].
pub fn relay_report(r: &RelayResult) -> String {
    let per_node: Vec<String> = r
        .per_node_median_ms
        .iter()
        .enumerate()
        .map(|(i, m)| format!("node{} {m:.2}", i + 1))
        .collect();
    format!(
        "relay: {} nodes, {}; {} blocks after {} warm-up, {} samples, pow {} ({} cpus)\n\
         latency ms: min {:.2}  median {:.2}  p90 {:.2}  max {:.2}\n\
         median per receiving node ms: {}\n\
         node 0 submit_work median {:.2} ms (inside the samples); nonce search median {:.1} ms (outside)",
        r.nodes,
        r.topology,
        r.blocks,
        r.warmup_blocks,
        r.latencies_ms.len(),
        r.pow_backend,
        r.cpus,
        r.min_ms,
        r.median_ms,
        r.p90_ms,
        r.max_ms,
        per_node.join(", "),
        r.submit_median_ms,
        r.solve_median_ms,
    )
}

/// Starts the nodes, relays the blocks, stops the nodes. Blocking: builds its own
/// multi-threaded tokio runtime.
///
/// # Errors
/// Fewer than 2 nodes or no blocks; a node that does not start; nodes that do not connect
/// within 30 s; a block that is not accepted by node 0 or does not reach every node within
/// `timeout_secs`. The nodes are stopped in every case.
pub fn relay(args: &RelayArgs) -> anyhow::Result<RelayResult> {
    let mut args = args.clone();
    if args.smoke {
        args.nodes = 3;
        args.blocks = 3;
    }
    ensure!(args.nodes >= 2, "--nodes must be at least 2");
    ensure!(args.blocks >= 1, "--blocks must be at least 1");
    ensure!(args.timeout_secs >= 1, "--timeout-secs must be at least 1");
    let dir = tempfile::tempdir().context("temporary directory")?;
    runtime()?.block_on(relay_async(&args, dir.path()))
}

async fn relay_async(args: &RelayArgs, dir: &Path) -> anyhow::Result<RelayResult> {
    let mut nodes: Vec<RunningNode> = Vec::with_capacity(args.nodes);
    let started = start_mesh(&mut nodes, args.nodes, dir).await;
    let measured = match started {
        Ok(()) => measure_relay(args, &nodes).await,
        Err(e) => Err(e),
    };
    for node in nodes {
        node.stop().await;
    }
    measured
}

fn open_pow() -> anyhow::Result<Arc<TensorityPow>> {
    Ok(Arc::new(
        TensorityPow::open(POW_BACKEND, 1).context("proof-of-work backend")?,
    ))
}

/// Starts `n` nodes into `nodes`, each dialling every node before it, and waits until each
/// has `n - 1` peers. What started stays in `nodes` on error, for the caller to stop.
async fn start_mesh(nodes: &mut Vec<RunningNode>, n: usize, dir: &Path) -> anyhow::Result<()> {
    for i in 0..n {
        let mut peers = Vec::with_capacity(nodes.len());
        for node in nodes.iter() {
            let p2p = node.p2p.as_ref().context("a node without p2p")?;
            let addr = p2p
                .listen_addrs()
                .await?
                .into_iter()
                .next()
                .context("a node without a listen address")?;
            peers.push(format!("{addr}/p2p/{}", p2p.local_peer_id()));
        }
        let settings = RawSettings {
            network: Some("devnet".into()),
            data_dir: Some(dir.join(format!("node{i}"))),
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            peers,
            ..RawSettings::default()
        }
        .resolve()?;
        let node = run::start_with(&settings, open_pow()?, ChainConfig::default())
            .await
            .with_context(|| format!("starting node {i}"))?;
        nodes.push(node);
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        let counts: Vec<usize> = nodes
            .iter()
            .map(|node| node.p2p.as_ref().map_or(0, |p| p.peer_count()))
            .collect();
        if counts.iter().all(|&c| c + 1 >= n) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the nodes did not connect within {} s: peer counts {counts:?}, want {} each",
                CONNECT_TIMEOUT.as_secs(),
                n - 1
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The CPU nonce search, off the async threads.
struct Solver {
    backend: Arc<dyn TensorityBackend>,
}

impl Solver {
    fn open() -> anyhow::Result<Self> {
        Ok(Solver {
            backend: Arc::from(bystack_kernels::open_backend(POW_BACKEND, 1)?),
        })
    }

    /// `header` with a nonce that meets its bits under `seed`, and the search time.
    async fn solve(
        &self,
        mut header: BlockHeader,
        seed: Hash,
    ) -> anyhow::Result<(BlockHeader, Duration)> {
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            // The kernels cache prepared seeds, so this costs once per seed.
            let prepared = backend.prepare(&seed.0)?;
            let template = header.template();
            let target = Target::from_bits(header.bits);
            let stop = std::sync::atomic::AtomicBool::new(false);
            let mut from = 0;
            while from < MAX_NONCES {
                let outcome =
                    prepared.search(&template, from..from + SEARCH_CHUNK, &target, &stop)?;
                if let Some(hit) = outcome.hits.first() {
                    header.nonce = hit.nonce;
                    return Ok((header, start.elapsed()));
                }
                from += SEARCH_CHUNK;
            }
            bail!(
                "no nonce below {MAX_NONCES} meets bits {:#x} at height {}",
                header.bits,
                header.height
            )
        })
        .await
        .context("solver task")?
    }
}

/// One relayed block: when node 0 accepted it, and when each other node connected it.
struct Relayed {
    solve: Duration,
    submit: Duration,
    latencies: Vec<Duration>,
}

async fn measure_relay(args: &RelayArgs, nodes: &[RunningNode]) -> anyhow::Result<RelayResult> {
    let solver = Solver::open()?;
    relay_block(nodes, &solver, WARMUP_TIMEOUT)
        .await
        .context("warm-up block")?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut latencies_ms = Vec::with_capacity(args.blocks * (nodes.len() - 1));
    let mut per_node: Vec<Vec<f64>> = vec![Vec::with_capacity(args.blocks); nodes.len() - 1];
    let mut solves = Vec::with_capacity(args.blocks);
    let mut submits = Vec::with_capacity(args.blocks);
    for b in 0..args.blocks {
        let relayed = relay_block(nodes, &solver, timeout)
            .await
            .with_context(|| format!("timed block {}", b + 1))?;
        solves.push(ms(relayed.solve));
        submits.push(ms(relayed.submit));
        for (i, latency) in relayed.latencies.into_iter().enumerate() {
            latencies_ms.push(ms(latency));
            per_node[i].push(ms(latency));
        }
    }
    let stat = |v: &[f64], p: f64| percentile(v, p).unwrap_or(f64::NAN);
    Ok(RelayResult {
        nodes: nodes.len(),
        blocks: args.blocks,
        warmup_blocks: 1,
        topology: "full mesh: each node dials every earlier one".into(),
        pow_backend: solver.backend.info().name,
        min_ms: latencies_ms.iter().copied().fold(f64::INFINITY, f64::min),
        median_ms: crate::median(&latencies_ms).unwrap_or(f64::NAN),
        p90_ms: stat(&latencies_ms, 0.9),
        max_ms: stat(&latencies_ms, 1.0),
        per_node_median_ms: per_node
            .iter()
            .map(|v| crate::median(v).unwrap_or(f64::NAN))
            .collect(),
        submit_median_ms: crate::median(&submits).unwrap_or(f64::NAN),
        solve_median_ms: crate::median(&solves).unwrap_or(f64::NAN),
        latencies_ms,
        cpus: cpus(),
    })
}

/// Waits for `hash` in `events`; the instant it was seen.
async fn connected(
    mut events: broadcast::Receiver<NodeEvent>,
    hash: Hash,
) -> anyhow::Result<Instant> {
    loop {
        match events.recv().await {
            Ok(NodeEvent::BlockConnected { hash: h, .. }) if h == hash => return Ok(Instant::now()),
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(n)) => {
                bail!("missed {n} node events (the block's may be among them)")
            }
            Err(broadcast::error::RecvError::Closed) => bail!("the node's events ended"),
        }
    }
}

/// Mines one block on node 0 and waits until every other node connected it.
async fn relay_block(
    nodes: &[RunningNode],
    solver: &Solver,
    timeout: Duration,
) -> anyhow::Result<Relayed> {
    let miner = nodes[0].node.clone();
    let work = {
        let miner = miner.clone();
        tokio::task::spawn_blocking(move || miner.get_work())
            .await
            .context("get-work task")??
    };
    let height = work.header.height;
    let (header, solve) = solver.solve(work.header, work.seed).await?;
    let hash = header.hash();

    // Subscribed before the submission, so no event can be missed.
    let waiters: Vec<_> = nodes[1..]
        .iter()
        .map(|n| tokio::spawn(connected(n.node.subscribe(), hash)))
        .collect();
    let start = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || miner.submit_work(&header))
        .await
        .context("submit-work task")?;
    let submit = start.elapsed();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            waiters.iter().for_each(|w| w.abort());
            bail!("node 0 refused block {height} {hash}: {e}");
        }
    };
    if outcome.status != BlockStatus::MainChain {
        waiters.iter().for_each(|w| w.abort());
        bail!(
            "node 0 took block {height} {hash} as {:?}, not onto its main chain",
            outcome.status
        );
    }

    let aborts: Vec<_> = waiters.iter().map(|w| w.abort_handle()).collect();
    let all = async {
        let mut seen = Vec::with_capacity(waiters.len());
        for (i, waiter) in waiters.into_iter().enumerate() {
            let at = waiter
                .await
                .context("waiter task")?
                .with_context(|| format!("node {}", i + 1))?;
            seen.push(at);
        }
        anyhow::Ok(seen)
    };
    let seen = match tokio::time::timeout(timeout, all).await {
        Ok(seen) => seen?,
        Err(_) => {
            aborts.iter().for_each(|a| a.abort());
            let missing: Vec<usize> = (1..nodes.len())
                .filter(|&i| nodes[i].node.main_hash(height) != Some(hash))
                .collect();
            bail!(
                "block {height} {hash} did not reach node(s) {missing:?} within {} s",
                timeout.as_secs_f64()
            );
        }
    };
    Ok(Relayed {
        solve,
        submit,
        latencies: seen
            .into_iter()
            .map(|at| at.saturating_duration_since(start))
            .collect(),
    })
}

/// Runs `get-work` and prints a table or JSON.
///
/// # Errors
/// As [`get_work`].
pub fn get_work_main(args: &GetWorkArgs) -> anyhow::Result<()> {
    let r = get_work(args)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{}", get_work_report(&r));
    }
    Ok(())
}

/// Human-readable lines of a [`GetWorkResult`].
pub fn get_work_report(r: &GetWorkResult) -> String {
    format!(
        "get-work-json: {} requests, {} client(s), {} ({} cpus)\n\
         latency ms: min {:.3}  median {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}\n\
         {:.0} requests/s ({:.2} s), {} reconnects",
        r.requests,
        r.concurrency,
        r.client,
        r.cpus,
        r.min_ms,
        r.median_ms,
        r.p90_ms,
        r.p99_ms,
        r.max_ms,
        r.requests_per_second,
        r.elapsed_s,
        r.reconnects,
    )
}

/// Starts one node with its HTTP API, times `requests` `get-work-json` calls from
/// `concurrency` keep-alive clients, stops the node. Blocking: builds its own multi-threaded
/// tokio runtime. Each client sends one untimed request first (connection set up, the
/// node's template built).
///
/// # Errors
/// No requests or clients; a node that does not start; a transport error, a reply that is
/// not HTTP 200, or a reply that is not valid work. The node is stopped in every case.
pub fn get_work(args: &GetWorkArgs) -> anyhow::Result<GetWorkResult> {
    let mut args = args.clone();
    if args.smoke {
        args.requests = 50;
    }
    ensure!(args.requests >= 1, "--requests must be at least 1");
    ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    ensure!(
        args.concurrency <= args.requests,
        "--concurrency ({}) must not exceed --requests ({})",
        args.concurrency,
        args.requests
    );
    let dir = tempfile::tempdir().context("temporary directory")?;
    runtime()?.block_on(async {
        let settings = RawSettings {
            network: Some("devnet".into()),
            data_dir: Some(dir.path().join("node")),
            api: Some("127.0.0.1:0".into()),
            ..RawSettings::default()
        }
        .resolve()?;
        let node = run::start_with(&settings, open_pow()?, ChainConfig::default())
            .await
            .context("starting the node")?;
        let measured = match node.api_addr {
            Some(api) => {
                let next_height = node.node.tip().height + 1;
                measure_get_work(&args, api, next_height).await
            }
            None => Err(anyhow::anyhow!("the node serves no API")),
        };
        node.stop().await;
        measured
    })
}

async fn measure_get_work(
    args: &GetWorkArgs,
    api: SocketAddr,
    next_height: u64,
) -> anyhow::Result<GetWorkResult> {
    let mut clients = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let mut client = KeepAliveClient::connect(api).await?;
        let reply = client.post("/get-work-json", "{}").await?;
        check_work(&reply, next_height).context("warm-up request")?;
        clients.push(client);
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let n = args.requests / args.concurrency
                + usize::from(i < args.requests % args.concurrency);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(n);
                for _ in 0..n {
                    let sent = Instant::now();
                    let reply = client.post("/get-work-json", "{}").await?;
                    latencies.push(ms(sent.elapsed()));
                    check_work(&reply, next_height)?;
                }
                anyhow::Ok((latencies, client.reconnects))
            })
        })
        .collect();
    let mut latencies_ms = Vec::with_capacity(args.requests);
    let mut reconnects = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let (latencies, r) = task
            .await
            .context("client task")?
            .with_context(|| format!("client {i}"))?;
        latencies_ms.extend(latencies);
        reconnects += r;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stat = |p: f64| percentile(&latencies_ms, p).unwrap_or(f64::NAN);
    Ok(GetWorkResult {
        requests: args.requests,
        concurrency: args.concurrency,
        client: "keep-alive HTTP/1.1 on tokio, one connection per client".into(),
        min_ms: latencies_ms.iter().copied().fold(f64::INFINITY, f64::min),
        median_ms: crate::median(&latencies_ms).unwrap_or(f64::NAN),
        p90_ms: stat(0.9),
        p99_ms: stat(0.99),
        max_ms: stat(1.0),
        elapsed_s: elapsed,
        requests_per_second: args.requests as f64 / elapsed,
        latencies_ms,
        reconnects,
        cpus: cpus(),
    })
}

/// Checks that `reply` is a success envelope holding work at `height`: a header that
/// decodes and a seed that is a hash.
fn check_work(reply: &[u8], height: u64) -> anyhow::Result<()> {
    let envelope: serde_json::Value =
        serde_json::from_slice(reply).context("get-work-json reply is not JSON")?;
    ensure!(
        envelope["status"] == "success",
        "get-work-json failed: {envelope}"
    );
    let data = &envelope["data"];
    let header = serde_json::from_value::<HeaderJson>(data["block_header"].clone())
        .context("get-work-json block_header")?
        .to_header()
        .map_err(|e| anyhow::anyhow!("get-work-json block_header: {e}"))?;
    ensure!(
        header.height == height,
        "get-work-json gave height {}, expected {height}",
        header.height
    );
    let seed = data["seed"]
        .as_str()
        .context("get-work-json without seed")?;
    Hash::from_hex(seed).map_err(|e| anyhow::anyhow!("get-work-json seed {seed:?}: {e}"))?;
    Ok(())
}

/// Largest reply body accepted.
const MAX_BODY: usize = 1 << 20;
/// Per-request limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A minimal HTTP/1.1 client that keeps one connection open across requests (replies framed
/// by `Content-Length`), reconnecting only when the server says `Connection: close`.
struct KeepAliveClient {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
    reconnects: u64,
}

impl KeepAliveClient {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut client = KeepAliveClient {
            addr,
            conn: None,
            reconnects: 0,
        };
        client.conn = Some(client.open().await?);
        Ok(client)
    }

    async fn open(&self) -> anyhow::Result<BufReader<TcpStream>> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        Ok(BufReader::new(stream))
    }

    /// POSTs `body` (JSON) to `path`; the reply body of a 200.
    async fn post(&mut self, path: &str, body: &str) -> anyhow::Result<Vec<u8>> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                self.reconnects += 1;
                self.open().await?
            }
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let (conn, reply, keep) = tokio::time::timeout(REQUEST_TIMEOUT, exchange(conn, request))
            .await
            .with_context(|| format!("{path}: no reply in {} s", REQUEST_TIMEOUT.as_secs()))??;
        if keep {
            self.conn = Some(conn);
        }
        Ok(reply)
    }
}

/// Writes `request` on `conn` and reads one reply: the connection, the body of a 200, and
/// whether the server keeps the connection open.
async fn exchange(
    mut conn: BufReader<TcpStream>,
    request: String,
) -> anyhow::Result<(BufReader<TcpStream>, Vec<u8>, bool)> {
    conn.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    ensure!(!line.is_empty(), "the server closed the connection");
    let status = line
        .split_whitespace()
        .nth(1)
        .context("malformed status line")?
        .to_string();
    let mut length = None;
    let mut keep = true;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            bail!("malformed header line {header:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("content-length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("unsupported transfer-encoding {value:?}");
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            keep = false;
        }
    }
    let length = length.context("a reply without content-length")?;
    ensure!(length <= MAX_BODY, "a {length}-byte reply");
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    ensure!(
        status == "200",
        "status {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(200)])
    );
    Ok((conn, body, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_by_nearest_rank() {
        assert_eq!(percentile(&[], 0.5), None);
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&v, 0.99), Some(10.0));
        assert_eq!(percentile(&v, 1.0), Some(10.0));
        assert_eq!(percentile(&[5.0, 1.0], 0.01), Some(1.0));
    }

    #[test]
    fn check_work_rejects_error_envelopes_and_wrong_heights() {
        let fail = br#"{"status":"fail","code":"BTM000","msg":"x","error_detail":"y"}"#;
        assert!(check_work(fail, 1).is_err());
        let header = HeaderJson::from_header(&BlockHeader {
            version: 1,
            height: 1,
            previous_block_hash: Hash([1; 32]),
            timestamp: 2,
            transactions_merkle_root: Hash([3; 32]),
            transaction_status_hash: Hash([4; 32]),
            nonce: 0,
            bits: 5,
            commitment_suffix: Vec::new(),
        });
        let ok = serde_json::json!({"status": "success", "data": {"block_header": header, "seed": Hash([6; 32]).to_hex()}});
        let ok = serde_json::to_vec(&ok).unwrap();
        check_work(&ok, 1).unwrap();
        assert!(check_work(&ok, 2).is_err());
        let no_seed = serde_json::json!({"status": "success", "data": {"block_header": header}});
        assert!(check_work(&serde_json::to_vec(&no_seed).unwrap(), 1).is_err());
    }
}
