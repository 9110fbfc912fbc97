//! The BTM stratum server (spec protocols.md §B), compatible with btmcpool's messages and
//! error codes: `login`, `job` pushes and `submit` over newline-delimited JSON on TCP.
//!
//! * Jobs come from [`Node::block_template`]; a task follows the node's events and publishes
//!   each new template, and every session pushes it at once as a new job. Each session keeps
//!   a ring of its recent jobs and mines under its own nonce prefix
//!   (`server_id << 60 | slot << (60 − ceil(log2(max_sessions)))`).
//! * Shares: cheap checks first on the session's task (authorization, job ring, nonce format,
//!   stale height, duplicate, the miner's own `result` when it says the share is low), then
//!   Tensority on the [`verifier::Verifier`] thread, never on the async runtime. A share that
//!   meets the block's `bits` becomes a block through [`Node::submit_block`] (the job's
//!   template block with the share's nonce and the job's timestamp). Each job carries its own
//!   timestamp (now, and later than the session's previous job of the same template), so a
//!   vardiff job never repeats an earlier job's header.
//! * Vardiff aims at [`StratumConfig::target_share_interval`]; each session's hash rate is
//!   estimated from the difficulty of its accepted shares over time ([`SessionSnapshot`]).
//! * Hostile input: lines over [`StratumConfig::max_line`] and undecodable or unknown requests
//!   end the session; idle sessions and stalled writers are dropped; connections are capped
//!   per IP and in total.

mod protocol;
mod session;
pub mod verifier;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bystack_engine::pow::Target;
use bystack_engine::Block;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

use crate::chain::{BlockStatus, ChainError};
use crate::service::{Node, NodeResult};
use crate::store::KvStore;
use crate::template::BlockTemplate;

pub use protocol::{le_hex, parse_nonce, ErrorCode, JobFields, ShareTarget};
use verifier::Verifier;

/// Stratum server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StratumConfig {
    /// Longest accepted line in bytes; a longer one ends the session (spec: 10 KB).
    pub max_line: usize,
    /// A session that sends nothing and receives no job for this long is dropped (spec: 5 min).
    pub idle_timeout: Duration,
    /// A reply or job the client does not take within this long ends its session.
    pub write_timeout: Duration,
    /// Sessions at once; also sizes the nonce prefix.
    pub max_sessions: usize,
    /// Sessions at once from one IP address.
    pub max_sessions_per_ip: usize,
    /// This server's id (0–7), the top 4 bits of every nonce prefix (the top bit stays 0:
    /// nonces are varint63).
    pub server_id: u8,
    /// Jobs each session remembers.
    pub job_ring: usize,
    /// A new session's share difficulty.
    pub initial_difficulty: u64,
    /// Vardiff floor.
    pub min_difficulty: u64,
    /// Vardiff ceiling (the 4-byte target cannot express more than 2^32).
    pub max_difficulty: u64,
    /// Vardiff aims at one share per this interval (default 20 s: three a minute).
    pub target_share_interval: Duration,
    /// Vardiff looks at the shares of this long before it retargets.
    pub retarget_window: Duration,
    /// Verification backend (`auto`: CUDA where present, else the best CPU kernel).
    pub verify_backend: String,
    /// CPU threads of the verification backend (0 = one per core).
    pub verify_threads: usize,
    /// Most shares hashed in one batch.
    pub verify_batch: usize,
}

impl Default for StratumConfig {
    fn default() -> Self {
        StratumConfig {
            max_line: 10 * 1024,
            idle_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            max_sessions: 4096,
            max_sessions_per_ip: 64,
            server_id: 0,
            job_ring: 8,
            initial_difficulty: 1024,
            min_difficulty: 1,
            max_difficulty: 1 << 32,
            target_share_interval: Duration::from_secs(20),
            retarget_window: Duration::from_secs(120),
            verify_backend: "auto".into(),
            verify_threads: 0,
            verify_batch: 256,
        }
    }
}

/// A template published to the sessions.
#[derive(Debug)]
pub(crate) struct JobTemplate {
    /// The template block (nonce 0).
    block: Block,
    seed: [u8; 32],
    /// The network target of `bits`.
    block_target: Target,
    /// Expected hashes per block at `bits`.
    block_difficulty: f64,
    /// `(job timestamp, nonce)` of the shares submitted against this template, valid or in
    /// verification.
    submitted: Mutex<std::collections::HashSet<(u64, u64)>>,
}

impl JobTemplate {
    fn new(block: Block, seed: [u8; 32]) -> Self {
        let block_target = Target::from_bits(block.header.bits);
        JobTemplate {
            block_difficulty: expected_hashes(&block_target),
            block_target,
            block,
            seed,
            submitted: Mutex::new(Default::default()),
        }
    }

    fn height(&self) -> u64 {
        self.block.header.height
    }

    fn same_work(&self, block: &Block) -> bool {
        let (a, b) = (&self.block.header, &block.header);
        a.previous_block_hash == b.previous_block_hash
            && a.transactions_merkle_root == b.transactions_merkle_root
            && a.transaction_status_hash == b.transaction_status_hash
            && a.bits == b.bits
    }
}

/// Expected hashes to meet `target`: `2^256 / (bound + 1)`.
fn expected_hashes(target: &Target) -> f64 {
    match target {
        Target::Never => f64::INFINITY,
        Target::Always => 1.0,
        Target::AtMost(bound) => {
            let value = bound
                .iter()
                .rev()
                .fold(0.0f64, |acc, &byte| acc * 256.0 + f64::from(byte));
            2f64.powi(256) / (value + 1.0)
        }
    }
}

/// Statistics of one session at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionSnapshot {
    /// Session slot (its nonce prefix index).
    pub slot: usize,
    /// The peer.
    pub peer: SocketAddr,
    /// The login string, once logged in.
    pub login: Option<String>,
    /// The miner's agent string.
    pub agent: Option<String>,
    /// Current share difficulty.
    pub difficulty: f64,
    /// Shares accepted.
    pub accepted: u64,
    /// Shares rejected (any reason).
    pub rejected: u64,
    /// Blocks found by this session's shares.
    pub blocks: u64,
    /// Hashes per second implied by accepted shares since login.
    pub hash_rate: f64,
    /// Seconds since login (0 before).
    pub mining_seconds: f64,
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct StratumCounters {
    /// Sessions accepted.
    pub connections: AtomicU64,
    /// Connections refused (limits).
    pub refused: AtomicU64,
    /// Shares accepted.
    pub accepted: AtomicU64,
    /// Shares rejected before verification (format, job, stale, duplicate, authorization).
    pub cheap_rejections: AtomicU64,
    /// Shares verified with Tensority.
    pub verified: AtomicU64,
    /// Shares rejected after verification (low difficulty).
    pub low_difficulty: AtomicU64,
    /// Shares that met the block target.
    pub blocks_found: AtomicU64,
    /// Blocks that went onto the node's best chain.
    pub blocks_accepted: AtomicU64,
    /// Blocks the node stored but not on its best chain: a share for the previous height that
    /// raced the job update after another block moved the tip makes a sibling of the tip.
    pub blocks_side_chain: AtomicU64,
    /// Blocks the node refused (or could not store).
    pub blocks_refused: AtomicU64,
    /// Lines that ended a session (malformed, unknown method, too long).
    pub protocol_errors: AtomicU64,
}

impl StratumCounters {
    /// Counts what the node made of a block found through a share.
    pub fn count_block(&self, outcome: Option<BlockStatus>) {
        let counter = match outcome {
            Some(BlockStatus::MainChain) => &self.blocks_accepted,
            Some(BlockStatus::SideChain | BlockStatus::Orphan | BlockStatus::AlreadyKnown) => {
                &self.blocks_side_chain
            }
            None => &self.blocks_refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The stratum server over one [`Node`].
pub struct StratumServer<K: KvStore> {
    node: Arc<Node<K>>,
    config: StratumConfig,
    verifier: Verifier,
    jobs: watch::Sender<Option<Arc<JobTemplate>>>,
    shutdown: watch::Sender<bool>,
    slots: Mutex<Slots>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    sessions: Mutex<HashMap<usize, Arc<Mutex<SessionSnapshot>>>>,
    counters: StratumCounters,
    next_job: AtomicU64,
    job_key: u64,
}

impl<K: KvStore> std::fmt::Debug for StratumServer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StratumServer")
            .field("config", &self.config)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// Free session slots.
#[derive(Debug)]
struct Slots {
    used: Vec<bool>,
    cursor: usize,
}

impl Slots {
    fn take(&mut self) -> Option<usize> {
        let n = self.used.len();
        let slot = (0..n)
            .map(|i| (self.cursor + i) % n)
            .find(|&s| !self.used[s])?;
        self.used[slot] = true;
        self.cursor = (slot + 1) % n;
        Some(slot)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic (plain counters and maps).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A bijection on u64 (splitmix64's finaliser): job ids that look random yet never repeat.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Releases a connection's slot and per-IP count.
struct Admission<K: KvStore> {
    server: Arc<StratumServer<K>>,
    slot: usize,
    ip: IpAddr,
}

impl<K: KvStore> Drop for Admission<K> {
    fn drop(&mut self) {
        lock(&self.server.sessions).remove(&self.slot);
        if let Some(slot) = lock(&self.server.slots).used.get_mut(self.slot) {
            *slot = false;
        }
        let mut per_ip = lock(&self.server.per_ip);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StratumError {
    /// The verification backend failed to open.
    #[error("verification backend {name:?}: {source}")]
    Backend {
        /// The backend asked for.
        name: String,
        /// Its error.
        source: bystack_kernels::backend::BackendError,
    },
    /// A bad setting.
    #[error("invalid stratum configuration: {0}")]
    Config(String),
    /// A thread could not start.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl<K: KvStore + 'static> StratumServer<K> {
    /// A server over `node`: opens the verification backend and starts its thread.
    ///
    /// # Errors
    /// [`StratumError::Backend`], [`StratumError::Config`] (no sessions, a server id over 15,
    /// a zero job ring or difficulty bounds out of order), [`StratumError::Io`].
    pub fn new(node: Arc<Node<K>>, config: StratumConfig) -> Result<Arc<Self>, StratumError> {
        if config.max_sessions == 0 || config.server_id > 7 || config.job_ring == 0 {
            return Err(StratumError::Config(
                "max_sessions and job_ring must be positive, server_id at most 7 (nonces stay below 2^63)".into(),
            ));
        }
        if config.min_difficulty == 0
            || config.min_difficulty > config.max_difficulty
            || config.max_difficulty > 1 << 32
        {
            return Err(StratumError::Config(format!(
                "difficulty bounds {}..={} must lie in 1..=2^32",
                config.min_difficulty, config.max_difficulty
            )));
        }
        let backend = verifier::open_verify_backend(&config.verify_backend, config.verify_threads)
            .map_err(|source| StratumError::Backend {
                name: config.verify_backend.clone(),
                source,
            })?;
        let verifier = Verifier::start(backend, config.verify_batch)?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Arc::new(StratumServer {
            node,
            slots: Mutex::new(Slots {
                used: vec![false; config.max_sessions],
                cursor: 0,
            }),
            config,
            verifier,
            jobs: watch::channel(None).0,
            shutdown: watch::channel(false).0,
            per_ip: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            counters: StratumCounters::default(),
            next_job: AtomicU64::new(mix(seed)),
            job_key: mix(seed ^ 0x5eed),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &StratumConfig {
        &self.config
    }

    /// The verification backend's name.
    pub fn verify_backend(&self) -> &str {
        self.verifier.backend_name()
    }

    /// Server-wide counters.
    pub fn counters(&self) -> &StratumCounters {
        &self.counters
    }

    /// Every live session's statistics.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        let sessions = lock(&self.sessions);
        let mut all: Vec<SessionSnapshot> = sessions.values().map(|s| lock(s).clone()).collect();
        all.sort_by_key(|s| s.slot);
        all
    }

    /// The nonce prefix of `slot`.
    pub fn nonce_prefix(&self, slot: usize) -> u64 {
        let bits = usize::BITS - (self.config.max_sessions.max(2) - 1).leading_zeros();
        (u64::from(self.config.server_id) << 60) | ((slot as u64) << (60 - bits))
    }

    fn new_job_id(&self) -> u64 {
        mix(self.next_job.fetch_add(1, Ordering::Relaxed) ^ self.job_key)
    }

    /// Serves `listener` until `shutdown` completes, then ends every session.
    ///
    /// # Errors
    /// Only a fatal listener error; refused connections and failed sessions are not errors.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let follower = tokio::spawn(follow_templates(self.clone()));
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(stream, peer),
                    Err(e) if is_transient(&e) => {
                        tracing::debug!(error = %e, "stratum accept");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => break Err(e),
                },
            }
        };
        self.shutdown.send_replace(true);
        follower.abort();
        result
    }

    fn admit(self: &Arc<Self>, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let ip = peer.ip();
        {
            let mut per_ip = lock(&self.per_ip);
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= self.config.max_sessions_per_ip {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, "stratum: per-IP limit");
                return;
            }
            *count += 1;
        }
        let slot = lock(&self.slots).take();
        let Some(slot) = slot else {
            let mut per_ip = lock(&self.per_ip);
            if let Some(count) = per_ip.get_mut(&ip) {
                *count -= 1;
            }
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let admission = Admission {
            server: self.clone(),
            slot,
            ip,
        };
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        tokio::spawn(session::run(self.clone(), stream, peer, admission));
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e
        .raw_os_error()
        .is_some_and(|code| code == 23 || code == 24) // ENFILE, EMFILE
}

/// Publishes the node's template now and whenever the node reports a change.
async fn follow_templates<K: KvStore + 'static>(server: Arc<StratumServer<K>>) {
    let mut events = server.node.subscribe();
    loop {
        let node = server.node.clone();
        match tokio::task::spawn_blocking(move || current_template(&node)).await {
            Ok(Ok(template)) => {
                let fresh = server
                    .jobs
                    .borrow()
                    .as_ref()
                    .is_none_or(|current| !current.same_work(&template.block));
                if fresh {
                    let job = JobTemplate::new(template.block, template.seed.0);
                    server.jobs.send_replace(Some(Arc::new(job)));
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "stratum: no block template"),
            Err(e) => tracing::warn!(error = %e, "stratum: template task failed"),
        }
        // Wait for a change, then take every event already queued: one rebuild for a burst.
        match events.recv().await {
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = events.try_recv() {}
    }
}

/// The node's template with its timestamp raised, as `get-work` does, above the parent's
/// median time past (a template built in the same second as its parent would not be valid).
fn current_template<K: KvStore>(node: &Node<K>) -> NodeResult<BlockTemplate> {
    let mut template = node.block_template()?;
    let parent = template.block.header.previous_block_hash;
    let median =
        node.with_chain(|chain| chain.index().parent_info(&parent).map(|p| p.median_time))?;
    let median = median.map_err(ChainError::from)?;
    let header = &mut template.block.header;
    header.timestamp = header.timestamp.max(median.saturating_add(1));
    Ok(template)
}

/// Serves stratum for `node` on `listener` until `shutdown` completes (see
/// [`StratumServer::serve`]).
///
/// # Errors
/// [`StratumError`] when the server cannot start; [`StratumError::Io`] for a fatal listener
/// error.
pub async fn serve<K: KvStore + 'static>(
    node: Arc<Node<K>>,
    listener: TcpListener,
    config: StratumConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StratumError> {
    let server = StratumServer::new(node, config)?;
    server.serve(listener, shutdown).await?;
    Ok(())
}

/// Seconds since `start`, as f64.
fn seconds_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_bits_expect_one_block_in_64_hashes() {
        let expected = expected_hashes(&Target::from_bits(0x2000_0000_0004_0000));
        assert!((expected - 64.0).abs() < 1e-9, "{expected}");
        assert_eq!(expected_hashes(&Target::Always), 1.0);
    }

    #[test]
    fn only_blocks_on_the_best_chain_count_as_accepted() {
        let counters = StratumCounters::default();
        for outcome in [
            Some(BlockStatus::MainChain),
            Some(BlockStatus::SideChain),
            Some(BlockStatus::MainChain),
            Some(BlockStatus::AlreadyKnown),
            None,
        ] {
            counters.count_block(outcome);
        }
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!(read(&counters.blocks_accepted), 2);
        assert_eq!(read(&counters.blocks_side_chain), 2);
        assert_eq!(read(&counters.blocks_refused), 1);
    }

    #[test]
    fn session_slots_are_reused_and_job_ids_never_repeat() {
        let slots = |max_sessions| Slots {
            used: vec![false; max_sessions],
            cursor: 0,
        };
        let mut s = slots(3);
        assert_eq!(
            (s.take(), s.take(), s.take(), s.take()),
            (Some(0), Some(1), Some(2), None)
        );
        s.used[1] = false;
        assert_eq!(s.take(), Some(1));
        let ids: std::collections::HashSet<u64> = (0..10_000).map(mix).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
