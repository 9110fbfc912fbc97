//! The BTM stratum client (spec protocols.md §B): a [`WorkSource`] that logs in to the first
//! pool that answers, turns `job` pushes into [`Job`]s and submits shares, and on losing a
//! pool fails over to the next one in the configured order.
//!
//! * Jobs: every field is decoded from its wire form (integers as 8-byte little-endian hex);
//!   the 4-byte `target` becomes a 256-bit little-endian bound ([`share_bound`]), made no
//!   harder than the block's own target so that a block is never missed. The nonce range is
//!   the session's prefix range: from the job's `nonce` up to (not including) the next
//!   multiple of its lowest set bit, so the high bits the pool assigned never change.
//! * Failover: pools are tried in order each round; a pool that refuses the connection or the
//!   login is skipped at once, so a dead first pool costs at most its connect timeout. A
//!   session that was up and then drops starts a new round at once; a round in which no pool
//!   worked waits a back-off (doubling up to [`StratumOptions::max_backoff`]).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use bystack_engine::{BlockHeader, Hash};
use bystack_kernels::pow::Target;
use futures::future::BoxFuture;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::config::PoolConfig;
use crate::work::{Job, Share, SourceError, SourceEvent, WorkSource};

/// The agent string sent at login.
pub const AGENT: &str = concat!("bystack-miner/", env!("CARGO_PKG_VERSION"));

/// Job ids remembered for submitting shares (btmcpool keeps 8 per session).
const RECENT_JOBS: usize = 16;

/// Stratum timing and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StratumOptions {
    /// Give up on connecting to a pool after this long.
    pub connect_timeout: Duration,
    /// Give up on a login reply after this long.
    pub login_timeout: Duration,
    /// First wait after a round in which no pool worked.
    pub initial_backoff: Duration,
    /// Longest wait between rounds.
    pub max_backoff: Duration,
    /// Longest line accepted from a pool.
    pub max_line: usize,
    /// Rounds without any working pool before [`WorkSource::run`] gives up (`None`: never).
    pub max_failed_rounds: Option<u32>,
    /// A pool silent for this long is dropped (its jobs may be stale); the pool's own idle
    /// timeout is 5 minutes, and jobs arrive on every new block.
    pub silence_timeout: Duration,
}

impl Default for StratumOptions {
    fn default() -> Self {
        StratumOptions {
            connect_timeout: Duration::from_secs(3),
            login_timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_line: 64 * 1024,
            max_failed_rounds: None,
            silence_timeout: Duration::from_secs(600),
        }
    }
}

/// The BTM stratum [`WorkSource`] over pools in failover order.
#[derive(Debug, Clone)]
pub struct StratumSource {
    pools: Vec<PoolConfig>,
    options: StratumOptions,
}

impl StratumSource {
    /// A source over `pools` (tried in this order).
    ///
    /// # Errors
    /// [`SourceError::Config`] without pools, or for a URL that is not
    /// `stratum+tcp://HOST:PORT`.
    pub fn new(pools: Vec<PoolConfig>, options: StratumOptions) -> Result<Self, SourceError> {
        if pools.is_empty() {
            return Err(SourceError::Config("no stratum pool configured".into()));
        }
        for pool in &pools {
            address_of(&pool.url)?;
        }
        Ok(StratumSource { pools, options })
    }
}

/// `HOST:PORT` of a `stratum+tcp://HOST:PORT` URL.
fn address_of(url: &str) -> Result<&str, SourceError> {
    let address = url
        .strip_prefix("stratum+tcp://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| {
            a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        })
        .ok_or_else(|| {
            SourceError::Config(format!(
                "pool url {url:?}: expected stratum+tcp://HOST:PORT"
            ))
        })?;
    Ok(address)
}

/// Decodes a job's 4-byte `target` (spec §B.2: the top 4 bytes of a 256-bit big-endian
/// bound, reversed) into a 256-bit little-endian bound; `None` unless 8 hex digits.
pub fn share_bound(target_hex: &str) -> Option<[u8; 32]> {
    let bytes = bystack_kernels::hex::decode(target_hex).ok()?;
    let top: [u8; 4] = bytes.try_into().ok()?;
    // Reversed on the wire, so the wire bytes are already the bound's top 4 bytes in
    // little-endian order.
    let mut bound = [0u8; 32];
    bound[28..].copy_from_slice(&top);
    Some(bound)
}

/// The easier (numerically larger) of two little-endian bounds.
fn easier(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    if a.iter().rev().cmp(b.iter().rev()).is_ge() {
        a
    } else {
        b
    }
}

/// The end (exclusive) of the nonce range a session prefix `start` leaves to the miner.
pub fn nonce_range_end(start: u64) -> u64 {
    if start == 0 {
        return u64::MAX;
    }
    start.saturating_add(1 << start.trailing_zeros())
}

fn field<'a>(job: &'a Value, name: &str) -> Result<&'a str, String> {
    job.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("job field {name:?} missing or not a string"))
}

fn le_u64(job: &Value, name: &str) -> Result<u64, String> {
    let bytes =
        bystack_kernels::hex::decode(field(job, name)?).map_err(|e| format!("{name}: {e}"))?;
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("{name}: expected 8 little-endian bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

fn hash(job: &Value, name: &str) -> Result<Hash, String> {
    Hash::from_hex(field(job, name)?).map_err(|e| format!("{name}: {e}"))
}

/// Decodes a job object (spec §B.2). `clean` is left `true`; the caller decides.
///
/// # Errors
/// What is wrong with the object.
pub fn decode_job(job: &Value) -> Result<Job, String> {
    let header = BlockHeader {
        version: le_u64(job, "version")?,
        height: le_u64(job, "height")?,
        previous_block_hash: hash(job, "previous_block_hash")?,
        timestamp: le_u64(job, "timestamp")?,
        transactions_merkle_root: hash(job, "transactions_merkle_root")?,
        transaction_status_hash: hash(job, "transaction_status_hash")?,
        nonce: 0,
        bits: le_u64(job, "bits")?,
        commitment_suffix: Vec::new(),
    };
    let target = field(job, "target")?;
    let share =
        share_bound(target).ok_or_else(|| format!("target {target:?}: expected 8 hex digits"))?;
    let block = match Target::from_bits(header.bits) {
        Target::AtMost(bound) => bound,
        Target::Always => [0xff; 32],
        Target::Never => [0; 32],
    };
    let nonce_start = le_u64(job, "nonce")?;
    let id = field(job, "job_id")?;
    if id.is_empty() || id.len() > 64 {
        return Err(format!("job_id {id:?}: expected 1-64 characters"));
    }
    Ok(Job {
        id: id.to_string(),
        seed: hash(job, "seed")?,
        header,
        share_target: easier(share, block),
        nonce_start,
        nonce_end: nonce_range_end(nonce_start),
        clean: true,
    })
}

/// How one pool session ended.
enum SessionEnd {
    /// The miner is stopping.
    Shutdown,
    /// The pool was working, then went away.
    Lost(String),
}

/// The channels a source owns.
struct Channels {
    jobs: watch::Sender<Option<Job>>,
    shares: mpsc::Receiver<Share>,
    events: mpsc::Sender<SourceEvent>,
    shutdown: watch::Receiver<bool>,
}

impl WorkSource for StratumSource {
    fn name(&self) -> String {
        self.pools
            .iter()
            .map(|p| p.url.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn run(
        self: Box<Self>,
        jobs: watch::Sender<Option<Job>>,
        shares: mpsc::Receiver<Share>,
        events: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        let channels = Channels {
            jobs,
            shares,
            events,
            shutdown,
        };
        Box::pin(self.run_pools(channels))
    }
}

impl StratumSource {
    async fn run_pools(self, mut ch: Channels) -> Result<(), SourceError> {
        let mut backoff = self.options.initial_backoff;
        let mut failed_rounds = 0u32;
        loop {
            let mut worked = false;
            let mut last = String::new();
            for pool in &self.pools {
                if *ch.shutdown.borrow() {
                    return Ok(());
                }
                match self.session(pool, &mut ch).await {
                    Ok(SessionEnd::Shutdown) => {
                        ch.jobs.send_replace(None);
                        return Ok(());
                    }
                    Ok(SessionEnd::Lost(reason)) => {
                        worked = true;
                        last = format!("{}: {reason}", pool.url);
                        let _ = ch.events.try_send(SourceEvent::Disconnected {
                            endpoint: pool.url.clone(),
                            reason,
                        });
                        ch.jobs.send_replace(None);
                        break; // back to the first pool
                    }
                    Err(e) => {
                        tracing::debug!(pool = %pool.url, error = %e, "stratum: pool unavailable");
                        last = e.to_string();
                    }
                }
            }
            if worked {
                backoff = self.options.initial_backoff;
                failed_rounds = 0;
                continue;
            }
            failed_rounds += 1;
            if self
                .options
                .max_failed_rounds
                .is_some_and(|max| failed_rounds >= max)
            {
                return Err(SourceError::Exhausted { last });
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopped(&mut ch.shutdown) => return Ok(()),
            }
            backoff = (backoff * 2).min(self.options.max_backoff);
        }
    }

    /// Connects and logs in to `pool`, then mines on it until it goes away (`Ok(Lost)`) or
    /// the miner stops. An error means the pool never worked (connect or login failed).
    async fn session(
        &self,
        pool: &PoolConfig,
        ch: &mut Channels,
    ) -> Result<SessionEnd, SourceError> {
        let endpoint = pool.url.clone();
        let io_error = |source| SourceError::Io {
            endpoint: endpoint.clone(),
            source,
        };
        let address = address_of(&pool.url)?;
        let stream =
            tokio::time::timeout(self.options.connect_timeout, TcpStream::connect(address))
                .await
                .map_err(|_| SourceError::Timeout {
                    endpoint: endpoint.clone(),
                    millis: self.options.connect_timeout.as_millis() as u64,
                })?
                .map_err(io_error)?;
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let (lines_tx, mut lines) = mpsc::channel(64);
        let reader = tokio::spawn(read_lines(read, self.options.max_line, lines_tx));
        let _reader = AbortOnDrop(reader);

        let login = json!({"id": 1, "jsonrpc": "2.0", "method": "login",
            "params": {"login": pool.user, "pass": pool.pass, "agent": AGENT}});
        send(&mut write, &login).await.map_err(io_error)?;
        let reply = tokio::time::timeout(self.options.login_timeout, async {
            loop {
                match lines.recv().await {
                    Some(Ok(message)) if message.get("id") == Some(&json!(1)) => {
                        return Ok(message)
                    }
                    Some(Ok(_)) => continue, // the job push may come first
                    Some(Err(reason)) => return Err(reason),
                    None => return Err("connection closed".to_string()),
                }
            }
        })
        .await
        .map_err(|_| SourceError::Timeout {
            endpoint: endpoint.clone(),
            millis: self.options.login_timeout.as_millis() as u64,
        })?
        .map_err(|reason| SourceError::Protocol {
            endpoint: endpoint.clone(),
            reason,
        })?;
        if !reply["error"].is_null() || reply["result"]["status"] != "OK" {
            return Err(SourceError::Refused {
                endpoint,
                request: "login".into(),
                reason: reply["error"].to_string(),
            });
        }
        let mut state = PoolState {
            login: pool.user.clone(),
            recent: VecDeque::new(),
            pending: HashMap::new(),
            next_id: 2,
            current: None,
        };
        state
            .take_job(&reply["result"]["job"], &ch.jobs)
            .map_err(|reason| SourceError::Protocol {
                endpoint: endpoint.clone(),
                reason,
            })?;
        let _ = ch.events.try_send(SourceEvent::Connected {
            endpoint: endpoint.clone(),
        });
        tracing::info!(pool = %endpoint, "stratum: logged in");

        loop {
            tokio::select! {
                message = tokio::time::timeout(self.options.silence_timeout, lines.recv()) => {
                    let message = match message {
                        Err(_) => return Ok(SessionEnd::Lost("pool silent".into())),
                        Ok(None) => return Ok(SessionEnd::Lost("connection closed".into())),
                        Ok(Some(Err(reason))) => return Ok(SessionEnd::Lost(reason)),
                        Ok(Some(Ok(message))) => message,
                    };
                    if let Err(reason) = state.handle(&message, &ch.jobs, &ch.events) {
                        return Ok(SessionEnd::Lost(reason));
                    }
                }
                share = ch.shares.recv() => {
                    let Some(share) = share else {
                        return Ok(SessionEnd::Shutdown);
                    };
                    if let Some(request) = state.submit(share, &ch.events) {
                        if let Err(e) = send(&mut write, &request).await {
                            return Ok(SessionEnd::Lost(format!("write: {e}")));
                        }
                    }
                }
                _ = stopped(&mut ch.shutdown) => return Ok(SessionEnd::Shutdown),
            }
        }
    }
}

/// Completes once the miner asks the source to stop.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One logged-in session's bookkeeping.
struct PoolState {
    login: String,
    /// Job ids of this session, oldest first.
    recent: VecDeque<String>,
    /// Submit request id → (job id, whether the share is a block).
    pending: HashMap<u64, (String, bool)>,
    next_id: u64,
    /// Height and parent of the newest job (a change is a clean job).
    current: Option<(u64, Hash)>,
}

impl PoolState {
    fn take_job(&mut self, raw: &Value, jobs: &watch::Sender<Option<Job>>) -> Result<(), String> {
        let mut job = decode_job(raw)?;
        let key = (job.header.height, job.header.previous_block_hash);
        job.clean = self.current != Some(key);
        self.current = Some(key);
        self.recent.push_back(job.id.clone());
        while self.recent.len() > RECENT_JOBS {
            self.recent.pop_front();
        }
        jobs.send_replace(Some(job));
        Ok(())
    }

    /// Handles a pool message; an error ends the session.
    fn handle(
        &mut self,
        message: &Value,
        jobs: &watch::Sender<Option<Job>>,
        events: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), String> {
        if message["method"] == "job" {
            return self.take_job(&message["params"], jobs);
        }
        let Some((job_id, block)) = message["id"]
            .as_u64()
            .and_then(|id| self.pending.remove(&id))
        else {
            return Ok(()); // a reply we did not ask for
        };
        let event = if message["error"].is_null() && message["result"]["status"] == "OK" {
            SourceEvent::Accepted { job_id, block }
        } else {
            let code = message["error"]["code"].as_i64().unwrap_or(0);
            let text = message["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let lowered = text.to_ascii_lowercase();
            if code == 21 || lowered.contains("stale") || lowered.contains("expired") {
                SourceEvent::Stale { job_id }
            } else {
                SourceEvent::Rejected {
                    job_id,
                    reason: format!("code {code}: {text}"),
                }
            }
        };
        let _ = events.try_send(event);
        Ok(())
    }

    /// The submit request for `share`, or `None` (reported stale) when its job is not one of
    /// this session's.
    fn submit(&mut self, share: Share, events: &mpsc::Sender<SourceEvent>) -> Option<Value> {
        if !self.recent.contains(&share.job_id) {
            let _ = events.try_send(SourceEvent::Stale {
                job_id: share.job_id,
            });
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "jsonrpc": "2.0", "method": "submit", "params": {
            "id": self.login,
            "job_id": share.job_id,
            "nonce": format!("{:016x}", share.nonce),
            "result": bystack_kernels::hex::encode(&share.hash),
        }});
        self.pending
            .insert(id, (share.job_id, share.meets_block_target));
        if self.pending.len() > 4096 {
            // A pool that never answers: forget the oldest.
            if let Some(&oldest) = self.pending.keys().min() {
                self.pending.remove(&oldest);
            }
        }
        Some(request)
    }
}

async fn send(write: &mut OwnedWriteHalf, message: &Value) -> std::io::Result<()> {
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    write.write_all(&line).await
}

/// Reads JSON lines from the pool; a line over `max_line`, bad JSON or a read error is sent
/// as an error and ends the reader.
async fn read_lines(
    read: OwnedReadHalf,
    max_line: usize,
    lines: mpsc::Sender<Result<Value, String>>,
) {
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let result = (&mut reader)
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut line)
            .await;
        let message = match result {
            Ok(0) => return,
            Err(e) => Err(format!("read: {e}")),
            Ok(_) if line.last() != Some(&b'\n') && line.len() > max_line => {
                Err(format!("line over {max_line} bytes"))
            }
            Ok(_) if line.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(_) => serde_json::from_slice(&line).map_err(|e| format!("bad json from pool: {e}")),
        };
        let fatal = message.is_err();
        if lines.send(message).await.is_err() || fatal {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_bounds_decode_the_documented_targets() {
        let bound = share_bound("ffff3f00").unwrap();
        assert_eq!(&bound[28..], &[0xff, 0xff, 0x3f, 0x00]);
        assert!(bound[..28].iter().all(|&b| b == 0));
        // A result just under 2^246 (difficulty 1024) meets it, 2^246 + 2^224 does not.
        let mut result = [0u8; 32];
        result[30] = 0x3f;
        result[29] = 0xff;
        assert!(Target::from_le_bytes(bound).is_met_by(&result));
        result[30] = 0x40;
        result[29] = 0;
        result[28] = 1;
        assert!(!Target::from_le_bytes(bound).is_met_by(&result));
        assert_eq!(share_bound("ffff3f"), None);
        assert_eq!(share_bound("zzzzzzzz"), None);
    }

    #[test]
    fn nonce_ranges_never_touch_the_prefix_bits() {
        assert_eq!(nonce_range_end(0), u64::MAX);
        assert_eq!(
            nonce_range_end(0x0c04_0000_0100_0000),
            0x0c04_0000_0200_0000
        );
        assert_eq!(nonce_range_end(1 << 63), u64::MAX);
        assert_eq!(nonce_range_end(3 << 48), (3 << 48) + (1 << 48));
    }

    #[test]
    fn jobs_decode_and_keep_the_easier_target() {
        let job = json!({
            "job_id": "42", "version": "0100000000000000", "height": "0200000000000000",
            "previous_block_hash": "11".repeat(32), "timestamp": "0010000000000000",
            "transactions_merkle_root": "22".repeat(32), "transaction_status_hash": "33".repeat(32),
            "nonce": "0000000000000010", "bits": "0000040000000020", "seed": "44".repeat(32),
            "target": "ffffff00",
        });
        let decoded = decode_job(&job).unwrap();
        assert_eq!(decoded.id, "42");
        assert_eq!(decoded.header.height, 2);
        assert_eq!(decoded.header.timestamp, 0x1000);
        assert_eq!(decoded.header.bits, 0x2000_0000_0004_0000);
        assert_eq!(decoded.nonce_start, 0x1000_0000_0000_0000);
        assert_eq!(decoded.nonce_end, 0x2000_0000_0000_0000);
        // Share difficulty 256 is harder than a devnet block (64 hashes): the block bound wins.
        assert_eq!(decoded.share_target(), decoded.block_target());
        let mut easy = job.clone();
        easy["target"] = json!("ffffffff");
        let decoded = decode_job(&easy).unwrap();
        assert_eq!(&decoded.share_target[28..], &[0xff; 4]);
        let mut bad = job;
        bad["height"] = json!("01");
        assert!(decode_job(&bad).is_err());
    }

    #[test]
    fn pool_urls_must_be_stratum_tcp_host_port() {
        assert_eq!(
            address_of("stratum+tcp://127.0.0.1:9119").unwrap(),
            "127.0.0.1:9119"
        );
        for bad in [
            "tcp://a:1",
            "stratum+tcp://a",
            "stratum+tcp://:1",
            "stratum+tcp://a:x",
        ] {
            assert!(address_of(bad).is_err(), "{bad}");
        }
        assert!(StratumSource::new(Vec::new(), StratumOptions::default()).is_err());
    }
}
