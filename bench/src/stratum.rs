//! `bystack-bench stratum`: load on the node's stratum server over loopback TCP.
//!
//! An in-process devnet node (memory store) and stratum server at share difficulty 1; N
//! client sessions log in, then one block moves the chain so every session also holds a
//! stale job. The run, in order:
//! 1. the verification backend's standalone rate (`hash_batch` of the same batch size the
//!    server uses), the ceiling; measured again after step 3, and the mean used;
//! 2. valid shares found beforehand for every session's job (enough to keep the verifier busy
//!    for `--seconds` at that rate; results that would be blocks are left out so that the
//!    template never changes);
//! 3. the verify phase: every session sends its valid shares mixed one-to-one with
//!    unknown-job shares; verified shares/s against the standalone rate;
//! 4. the cheap phase: every session sends rejections only (bad nonce format, unknown job,
//!    duplicate of an accepted share, stale job, a result that says it is low); rejections/s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bystack_engine::consensus::Network;
use bystack_engine::genesis::genesis_block;
use bystack_engine::pow::{HeaderTemplate, Target};
use bystack_engine::validation::SkipPow;
use bystack_kernels::hex;
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{MemoryKv, Store};
use bystack_node::stratum::verifier::open_verify_backend;
use bystack_node::stratum::{StratumConfig, StratumServer};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The `stratum` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct StratumArgs {
    /// Concurrent client sessions.
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Target length of the verify phase (the cheap phase is sized to about the same).
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Verification backend (`auto`: CUDA where present, else the best CPU kernel).
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Verification threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Cheap rejections each session sends in the cheap phase (0 = sized from `--seconds`).
    #[arg(long, default_value_t = 0)]
    pub cheap_per_session: usize,
    /// Quick run for CI: 50 sessions, 1 s, a small cheap phase (overrides those options).
    #[arg(long)]
    pub smoke: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct StratumResult {
    /// Client sessions.
    pub sessions: usize,
    /// Verification backend.
    pub backend: String,
    /// The backend's standalone rate, hashes/s (batches of the server's size): the mean of
    /// the measurements just before and just after the verify phase, so that a machine
    /// shared with other work is compared with itself.
    pub standalone_hps: f64,
    /// The standalone measurement before the verify phase.
    pub standalone_before_hps: f64,
    /// The standalone measurement after the verify phase.
    pub standalone_after_hps: f64,
    /// Valid shares prepared beforehand (all sessions).
    pub valid_shares: u64,
    /// Shares the server verified with Tensority during the verify phase.
    pub verified: u64,
    /// Shares accepted during the verify phase.
    pub accepted: u64,
    /// Verify phase wall time, seconds.
    pub verify_seconds: f64,
    /// Verified shares per second.
    pub verified_per_s: f64,
    /// `verified_per_s / standalone_hps` (the acceptance bar is 0.9).
    pub verify_ratio: f64,
    /// Cheap rejections answered in the cheap phase.
    pub cheap_rejections: u64,
    /// Cheap phase wall time, seconds.
    pub cheap_seconds: f64,
    /// Cheap rejections per second (the acceptance bar is 20,000 on 2 cores).
    pub cheap_per_s: f64,
    /// Replies by error code over both phases (`ok` for accepted shares).
    pub replies: HashMap<String, u64>,
    /// `/proc/loadavg`'s 1-minute load when the run ended.
    pub load_1m: Option<f64>,
    /// Logical CPUs.
    pub cpus: usize,
}

/// Runs the benchmark and prints it.
///
/// # Errors
/// Setup failures (backend, sockets) and protocol surprises (a reply that is not what the
/// load generator expects).
pub fn main(args: &StratumArgs) -> anyhow::Result<()> {
    let result = run(args)?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("{}", report(&result));
    }
    Ok(())
}

/// Human-readable lines.
pub fn report(r: &StratumResult) -> String {
    format!(
        "stratum: {} sessions, backend {} ({} cpus, load {:.2})\n\
         standalone {:.1} H/s ({:.1} before, {:.1} after) | verify phase: {} verified ({} accepted) in {:.2} s = {:.1}/s, {:.1}% of standalone\n\
         cheap phase: {} rejections in {:.2} s = {:.0}/s | replies {:?}",
        r.sessions,
        r.backend,
        r.cpus,
        r.load_1m.unwrap_or(f64::NAN),
        r.standalone_hps,
        r.standalone_before_hps,
        r.standalone_after_hps,
        r.verified,
        r.accepted,
        r.verify_seconds,
        r.verified_per_s,
        100.0 * r.verify_ratio,
        r.cheap_rejections,
        r.cheap_seconds,
        r.cheap_per_s,
        r.replies
    )
}

/// Runs the benchmark on a fresh multi-threaded runtime.
///
/// # Errors
/// As [`main`].
pub fn run(args: &StratumArgs) -> anyhow::Result<StratumResult> {
    let mut args = args.clone();
    if args.smoke {
        args.sessions = 50;
        args.seconds = 1.0;
        args.cheap_per_session = 40;
    }
    ensure!(args.sessions > 0, "--sessions must be positive");
    ensure!(args.seconds > 0.0, "--seconds must be positive");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(bench(args))
}

/// One client session of the load generator.
struct Client {
    login: String,
    lines: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
    /// The job of height 1 (stale after the setup block).
    stale_job: String,
    /// The current job and its header preimage.
    job: String,
    header: Option<HeaderTemplate>,
    start_nonce: u64,
    /// Valid nonces found beforehand.
    valid: Vec<u64>,
}

async fn read_message(lines: &mut BufReader<OwnedReadHalf>) -> anyhow::Result<Value> {
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(60), lines.read_line(&mut line))
        .await
        .context("no message from the server in 60 s")??;
    ensure!(n > 0, "server closed the session");
    Ok(serde_json::from_str(&line)?)
}

fn le_u64(job: &Value, field: &str) -> anyhow::Result<u64> {
    let bytes = hex::decode(job[field].as_str().unwrap_or_default())?;
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("job field {field} is not 8 bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn h32(job: &Value, field: &str) -> anyhow::Result<[u8; 32]> {
    Ok(hex::decode32(job[field].as_str().unwrap_or_default())?)
}

fn header_of(job: &Value) -> anyhow::Result<HeaderTemplate> {
    Ok(HeaderTemplate::new(
        le_u64(job, "version")?,
        le_u64(job, "height")?,
        &h32(job, "previous_block_hash")?,
        le_u64(job, "timestamp")?,
        &h32(job, "transactions_merkle_root")?,
        &h32(job, "transaction_status_hash")?,
        le_u64(job, "bits")?,
    ))
}

impl Client {
    async fn connect(addr: SocketAddr, index: usize) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let mut client = Client {
            login: format!("bench.{index}"),
            lines: BufReader::new(read),
            write,
            stale_job: String::new(),
            job: String::new(),
            header: None,
            start_nonce: 0,
            valid: Vec::new(),
        };
        let login = json!({"id": 1, "method": "login", "params": {"login": client.login, "agent": "bystack-bench"}});
        client.send(&[login]).await?;
        let reply = read_message(&mut client.lines).await?;
        ensure!(reply["result"]["status"] == "OK", "login refused: {reply}");
        client.stale_job = reply["result"]["job"]["job_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(client)
    }

    async fn send(&mut self, messages: &[Value]) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        for m in messages {
            serde_json::to_writer(&mut bytes, m)?;
            bytes.push(b'\n');
        }
        self.write.write_all(&bytes).await?;
        Ok(())
    }

    /// Waits for the pushed job of `height`.
    async fn job_at(&mut self, height: u64) -> anyhow::Result<()> {
        loop {
            let message = read_message(&mut self.lines).await?;
            if message["method"] == "job" && le_u64(&message["params"], "height")? == height {
                let job = &message["params"];
                self.job = job["job_id"].as_str().unwrap_or_default().to_string();
                self.header = Some(header_of(job)?);
                self.start_nonce = le_u64(job, "nonce")?;
                return Ok(());
            }
        }
    }

    fn submit(&self, job: &str, nonce: &str) -> Value {
        json!({"id": 2, "method": "submit", "params": {"id": self.login, "job_id": job, "nonce": nonce}})
    }

    /// Sends `messages` and tallies the replies by code.
    async fn exchange(
        mut self,
        messages: Vec<Value>,
    ) -> anyhow::Result<(Client, HashMap<String, u64>)> {
        let expected = messages.len();
        // Write and read at once, so that neither side's buffers fill up.
        let (read_result, write_result) = {
            let lines = &mut self.lines;
            let write = &mut self.write;
            let reader = async move {
                let mut tally: HashMap<String, u64> = HashMap::new();
                let mut got = 0;
                while got < expected {
                    let reply = read_message(lines).await?;
                    if reply["method"] == "job" {
                        continue;
                    }
                    got += 1;
                    let key = match reply["error"]["code"].as_i64() {
                        Some(code) => code.to_string(),
                        None => "ok".to_string(),
                    };
                    *tally.entry(key).or_insert(0) += 1;
                }
                anyhow::Ok(tally)
            };
            let writer = async move {
                let mut bytes = Vec::new();
                for m in &messages {
                    serde_json::to_writer(&mut bytes, m)?;
                    bytes.push(b'\n');
                }
                write.write_all(&bytes).await?;
                anyhow::Ok(())
            };
            tokio::join!(reader, writer)
        };
        write_result?;
        Ok((self, read_result?))
    }
}

fn merge(into: &mut HashMap<String, u64>, from: HashMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k).or_insert(0) += v;
    }
}

/// Hashes/s of `hash_batch` in batches of `batch` for about `seconds`.
fn standalone_rate(
    backend: &str,
    threads: usize,
    batch: usize,
    seconds: f64,
) -> anyhow::Result<(String, f64)> {
    let backend = open_verify_backend(backend, threads)?;
    let prepared = backend.prepare(&bystack_engine::consensus::initial_seed().0)?;
    let inputs: Vec<[u8; 32]> = (0..batch as u64)
        .map(|i| bystack_engine::hash::sha3(&i.to_le_bytes()).0)
        .collect();
    prepared.hash_batch(&inputs)?; // warm up
    let start = Instant::now();
    let mut hashes = 0u64;
    while start.elapsed().as_secs_f64() < seconds || hashes == 0 {
        hashes += prepared.hash_batch(&inputs)?.len() as u64;
    }
    Ok((
        backend.info().name,
        hashes as f64 / start.elapsed().as_secs_f64(),
    ))
}

async fn bench(args: StratumArgs) -> anyhow::Result<StratumResult> {
    let genesis = genesis_block(Network::Devnet);
    let chain = Chain::open(
        Store::in_memory(),
        &genesis,
        Arc::new(SkipPow),
        ChainConfig::default(),
    )?;
    let node: Arc<Node<MemoryKv>> = Node::new(chain, NodeConfig::new(Network::Devnet));
    let config = StratumConfig {
        initial_difficulty: 1,
        retarget_window: Duration::from_secs(86_400),
        target_share_interval: Duration::from_secs(86_400),
        max_sessions: args.sessions.max(2).next_power_of_two(),
        max_sessions_per_ip: args.sessions,
        verify_backend: args.backend.clone(),
        verify_threads: args.threads,
        ..StratumConfig::default()
    };
    let batch = config.verify_batch;
    let server = StratumServer::new(node.clone(), config)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.clone().serve(listener, async {
        let _ = stop_rx.await;
    }));

    // Sessions, then a block so that each holds a stale job.
    let mut clients = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        clients.push(Client::connect(addr, i).await?);
    }
    {
        let node = node.clone();
        tokio::task::spawn_blocking(move || {
            let work = node.get_work()?;
            node.submit_work(&work.header)
        })
        .await??;
    }
    for c in &mut clients {
        c.job_at(2).await?;
    }

    // 1. The ceiling (measured again after the verify phase).
    let threads = args.threads;
    let standalone_seconds = if args.smoke { 0.5 } else { 3.0 };
    let measure = {
        let backend_name = args.backend.clone();
        move || {
            let backend_name = backend_name.clone();
            tokio::task::spawn_blocking(move || {
                standalone_rate(&backend_name, threads, batch, standalone_seconds)
            })
        }
    };
    let (backend, standalone) = measure().await??;

    // 2. Valid shares, found beforehand with the same backend.
    let per_session = ((standalone * args.seconds) / args.sessions as f64)
        .ceil()
        .max(1.0) as usize;
    let seed = bystack_engine::consensus::initial_seed().0;
    let jobs: Vec<(HeaderTemplate, u64, u64)> = clients
        .iter()
        .map(|c| {
            let header = c.header.clone().context("no job")?;
            let bits = header.bits();
            Ok((header, c.start_nonce, bits))
        })
        .collect::<anyhow::Result<_>>()?;
    let backend_name = args.backend.clone();
    let found: Vec<Vec<u64>> = tokio::task::spawn_blocking(move || {
        find_valid(&backend_name, threads, &seed, &jobs, per_session)
    })
    .await??;
    let valid_shares = found.iter().map(|v| v.len() as u64).sum();
    for (c, nonces) in clients.iter_mut().zip(found) {
        c.valid = nonces;
    }

    // 3. Verify phase: valid shares mixed one-to-one with unknown-job shares.
    let mut replies = HashMap::new();
    let verified_before = server.counters().verified.load(Ordering::SeqCst);
    let accepted_before = server.counters().accepted.load(Ordering::SeqCst);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let mut messages = Vec::with_capacity(2 * c.valid.len());
            for (i, nonce) in c.valid.iter().enumerate() {
                messages.push(c.submit(&c.job, &format!("{nonce:016x}")));
                messages.push(c.submit(&format!("{}", 1_000_000 + i), "01"));
            }
            tokio::spawn(c.exchange(messages))
        })
        .collect();
    let mut clients = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (c, tally) = task.await??;
        merge(&mut replies, tally);
        clients.push(c);
    }
    let verify_seconds = started.elapsed().as_secs_f64();
    let verified = server.counters().verified.load(Ordering::SeqCst) - verified_before;
    let accepted = server.counters().accepted.load(Ordering::SeqCst) - accepted_before;
    if accepted != valid_shares {
        bail!("{accepted} of {valid_shares} valid shares accepted; replies {replies:?}");
    }
    let (_, standalone_after) = measure().await??;
    let ceiling = (standalone + standalone_after) / 2.0;

    // 4. Cheap phase.
    let cheap_per_session = if args.cheap_per_session > 0 {
        args.cheap_per_session
    } else {
        ((25_000.0 * args.seconds) / args.sessions as f64).ceil() as usize
    };
    let cheap_before = server.counters().cheap_rejections.load(Ordering::SeqCst);
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let duplicate = format!("{:016x}", c.valid.first().copied().unwrap_or(c.start_nonce));
            let messages: Vec<Value> = (0..cheap_per_session)
                .map(|i| match i % 5 {
                    0 => c.submit(&c.job, "zz"),
                    1 => c.submit("12345", "01"),
                    2 => c.submit(&c.job, &duplicate),
                    3 => c.submit(&c.stale_job, "02"),
                    _ => json!({"id": 3, "method": "submit", "params": {"id": c.login, "job_id": c.job,
                        "nonce": format!("{:016x}", c.start_nonce + (1 << 40) + i as u64), "result": "ff".repeat(32)}}),
                })
                .collect();
            tokio::spawn(c.exchange(messages))
        })
        .collect();
    for task in tasks {
        let (_c, tally) = task.await??;
        merge(&mut replies, tally);
    }
    let cheap_seconds = started.elapsed().as_secs_f64();
    let cheap_rejections = server.counters().cheap_rejections.load(Ordering::SeqCst) - cheap_before;
    let _ = stop_tx.send(());
    let _ = serving.await;

    Ok(StratumResult {
        sessions: args.sessions,
        backend,
        standalone_hps: ceiling,
        standalone_before_hps: standalone,
        standalone_after_hps: standalone_after,
        valid_shares,
        verified,
        accepted,
        verify_seconds,
        verified_per_s: verified as f64 / verify_seconds,
        verify_ratio: verified as f64 / verify_seconds / ceiling,
        cheap_rejections,
        cheap_seconds,
        cheap_per_s: cheap_rejections as f64 / cheap_seconds,
        replies,
        load_1m: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// `per_session` nonces per job, from its start nonce, whose results are shares at
/// difficulty 1 but not blocks.
fn find_valid(
    backend: &str,
    threads: usize,
    seed: &[u8; 32],
    jobs: &[(HeaderTemplate, u64, u64)],
    per_session: usize,
) -> anyhow::Result<Vec<Vec<u64>>> {
    let backend = open_verify_backend(backend, threads)?;
    let prepared = backend.prepare(seed)?;
    let share = bystack_node::stratum::ShareTarget::from_difficulty(1);
    let mut found = vec![Vec::with_capacity(per_session); jobs.len()];
    let mut next: Vec<u64> = jobs.iter().map(|j| j.1).collect();
    loop {
        let wanted: Vec<usize> = (0..jobs.len())
            .filter(|&i| found[i].len() < per_session)
            .collect();
        if wanted.is_empty() {
            return Ok(found);
        }
        let mut inputs = Vec::new();
        let mut owners = Vec::new();
        for &i in &wanted {
            let missing = per_session - found[i].len();
            for _ in 0..missing {
                inputs.push(jobs[i].0.header_hash(next[i]));
                owners.push((i, next[i]));
                next[i] += 1;
            }
        }
        for (pow, (i, nonce)) in prepared.hash_batch(&inputs)?.into_iter().zip(owners) {
            if share.is_met_by(&pow) && !Target::from_bits(jobs[i].2).is_met_by(&pow) {
                found[i].push(nonce);
            }
        }
    }
}
