//! The node service: ONE [`Node`] shared (`Arc<Node<K>>`) by every front-end — the HTTP API,
//! the libp2p relay and sync, the stratum server, the built-in miner. It owns the chain
//! manager, the mempool and the block template, keeps them consistent with each other, and
//! tells the front-ends what happened through a broadcast channel of [`NodeEvent`]s and a set
//! of [`Metrics`].
//!
//! # Calling it
//! Every method is synchronous and may block: the chain, the pool and the template each sit
//! behind a `std::sync::Mutex` (always taken in that order). Async callers wrap anything that
//! validates or touches the database in `tokio::task::spawn_blocking`:
//! ```ignore
//! let node = node.clone();
//! let outcome = tokio::task::spawn_blocking(move || node.submit_block(block)).await??;
//! ```
//!
//! # API
//! * Queries: [`Node::network`], [`Node::tip`], [`Node::genesis_hash`], [`Node::main_hash`],
//!   [`Node::block_by_height`], [`Node::block_by_hash`], [`Node::header_by_hash`],
//!   [`Node::header_by_height`], [`Node::main_headers`], [`Node::main_blocks`],
//!   [`Node::has_block`], [`Node::block_locator`], [`Node::utxo_digest`],
//!   [`Node::difficulty`] (`get-difficulty`), [`Node::hash_rate`] (`get-hash-rate`), and
//!   [`Node::with_chain`] for anything else (under the chain lock).
//! * Blocks: [`Node::submit_block`] (relay, `submit-block`: the sequential path; an orphan
//!   comes back as `Ok` with [`BlockStatus::Orphan`] so that sync can fetch its parents, and
//!   the HTTP API answers it with [`NodeError::OrphanBlock`]'s text "block submitted is
//!   orphan"), [`Node::submit_window`] (sync: PSWV).
//! * Transactions: [`Node::submit_transaction`], [`Node::mempool_transactions`],
//!   [`Node::mempool_len`], [`Node::mempool_contains`].
//! * Mining (spec protocols.md §A.1–A.6): [`Node::get_work`] returns the cached template's
//!   header with the timestamp refreshed to now (the chain's clock, never below the median
//!   time past + 1, so that the block stays valid), and its seed; the template is rebuilt when
//!   the tip, the pool or the mining settings changed. [`Node::submit_work`] takes a solved
//!   header: its previous hash must be the template's, else [`NodeError::StaleWork`]
//!   ("pending mining block has been changed"); only its nonce and timestamp are copied into
//!   the node's own template block, which then goes through [`Node::submit_block`]'s path
//!   ([`NodeError::OrphanWork`], "submit result is orphan", if it somehow is one). Templates
//!   of the same parent built before a pool change stay valid for submission (the header's
//!   commitment picks the template; a commitment no template has is stale work too), so work
//!   in flight is not lost when a transaction arrives. [`Node::block_template`] gives the whole template (stratum, tests).
//! * Mining settings: [`Node::mining_program`] / [`Node::set_mining_program`] (the coinbase
//!   control program; default [`DEFAULT_COINBASE_PROGRAM`], `OP_TRUE`),
//!   [`Node::coinbase_arbitrary`] / [`Node::set_coinbase_arbitrary`].
//! * Events: [`Node::subscribe`]: [`NodeEvent::BlockConnected`] for every block put on the
//!   main chain, in chain order (reorganisations and windows included), then one
//!   [`NodeEvent::TipChanged`]; [`NodeEvent::TxAdmitted`] for each transaction admitted
//!   through [`Node::submit_transaction`] (not for transactions of detached blocks that a
//!   reorganisation puts back). A slow receiver gets `RecvError::Lagged`, never blocks the node.
//! * Metrics: [`Node::metrics`], atomics; the p2p layer sets [`Metrics::set_peers`] and feeds
//!   [`Metrics::observe_relay_latency`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bystack_engine::consensus::{Network, MAX_BLOCK_GAS};
use bystack_engine::pow::calc_work;
use bystack_engine::{Block, BlockHeader, Hash, Transaction};
use num_bigint::BigUint;
use tokio::sync::broadcast;

use crate::chain::{Chain, ChainError};
use crate::mempool::{precheck, Mempool, MempoolConfig, MempoolError, PoolUpdate};
use crate::store::{KvStore, StoreError};
use crate::template::{build_template, BlockTemplate, TemplateError, TemplateSpec};

pub use crate::chain::{BlockStatus, ProcessOutcome, Tip, WindowReport};
pub use crate::template::DEFAULT_COINBASE_PROGRAM;

/// Capacity of the event channel.
pub const EVENT_CAPACITY: usize = 1024;

/// Templates of the current parent kept for [`Node::submit_work`] besides the newest.
const RECENT_TEMPLATES: usize = 8;

/// Node settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// The network (its genesis must be the chain's).
    pub network: Network,
    /// Pool limits.
    pub mempool: MempoolConfig,
    /// The coinbase control program of templates; `None` = [`DEFAULT_COINBASE_PROGRAM`]
    /// (`OP_TRUE`). Use [`crate::address::parse_mining_target`] for `--mining-address`.
    pub mining_program: Option<Vec<u8>>,
    /// Extra coinbase arbitrary data (after the height prefix), Bytom's
    /// `set-coinbase-arbitrary`.
    pub coinbase_arbitrary: Vec<u8>,
}

impl NodeConfig {
    /// Defaults for `network`.
    pub fn new(network: Network) -> Self {
        NodeConfig {
            network,
            mempool: MempoolConfig::default(),
            mining_program: None,
            coinbase_arbitrary: Vec::new(),
        }
    }
}

/// What happened, for the front-ends ([`Node::subscribe`]).
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A block was put on the main chain (in chain order; also for reorganisations and sync
    /// windows).
    BlockConnected {
        /// Its hash.
        hash: Hash,
        /// Its height.
        height: u64,
        /// The block.
        block: Arc<Block>,
    },
    /// The main chain's tip moved (after the `BlockConnected` events of the change).
    TipChanged {
        /// The new tip.
        tip: Tip,
    },
    /// A transaction entered the mempool through [`Node::submit_transaction`] (API or peer).
    TxAdmitted {
        /// Its ID.
        id: Hash,
        /// The transaction.
        tx: Arc<Transaction>,
    },
}

/// Why a node call failed. Texts are Bytom's where protocols.md gives them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The chain refused the block, or failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The mempool refused the transaction.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// No template could be built.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `submit-work` for a template that is no longer current.
    #[error("pending mining block has been changed")]
    StaleWork,
    /// Submitted work whose nonce or timestamp no block header can hold (both are varint63).
    #[error("invalid work: {field} {value} is above 2^63 - 1")]
    InvalidWork {
        /// `nonce` or `timestamp`.
        field: &'static str,
        /// The value submitted.
        value: u64,
    },
    /// `submit-work` produced an orphan.
    #[error("submit result is orphan")]
    OrphanWork,
    /// `submit-block` of an orphan (for the HTTP API; [`Node::submit_block`] itself returns
    /// `Ok` with [`BlockStatus::Orphan`]).
    #[error("block submitted is orphan")]
    OrphanBlock,
    /// No such block on the main chain or in the index.
    #[error("can't find block {what}")]
    BlockNotFound {
        /// The height or hash asked for.
        what: String,
    },
    /// `get-hash-rate` of a block without a parent or with its parent's timestamp.
    #[error("no hash rate for block {hash}: {reason}")]
    NoHashRate {
        /// The block.
        hash: Hash,
        /// Why.
        reason: &'static str,
    },
    /// A thread panicked while holding the node's state.
    #[error("node state poisoned: {what}")]
    Poisoned {
        /// Which lock.
        what: &'static str,
    },
}

/// Result alias for the node.
pub type NodeResult<T> = Result<T, NodeError>;

/// A block by height or by hash (`get-block-header`, `get-hash-rate`, `get-difficulty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSelector {
    /// The main chain's block at this height.
    Height(u64),
    /// The indexed block of this hash.
    Hash(Hash),
}

/// Work for a miner (`get-work`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// The template header, timestamp refreshed, nonce 0.
    pub header: BlockHeader,
    /// The seed to mine it against.
    pub seed: Hash,
}

/// `get-difficulty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difficulty {
    /// The block.
    pub hash: Hash,
    /// Its height.
    pub height: u64,
    /// Its bits.
    pub bits: u64,
    /// `CalcWork(bits)`.
    pub difficulty: BigUint,
}

/// `get-hash-rate`: the network hash rate a block's difficulty and time imply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashRate {
    /// The block.
    pub hash: Hash,
    /// Its height.
    pub height: u64,
    /// `CalcWork(bits) / (timestamp − parent timestamp)`, hashes per second.
    pub hash_rate: BigUint,
}

/// Upper bounds (ms) of the relay latency histogram's buckets; one more bucket counts the
/// rest.
pub const RELAY_LATENCY_BUCKETS_MS: [u64; 11] =
    [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];

/// Node counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Submitted blocks stored (main or side chain).
    pub blocks_accepted: AtomicU64,
    /// Blocks refused as invalid (submitted, in windows, or orphans that connected and failed).
    pub blocks_rejected: AtomicU64,
    /// Submitted blocks held as orphans.
    pub blocks_orphaned: AtomicU64,
    /// Blocks put on the main chain (reorganisations count every attached block).
    pub blocks_connected: AtomicU64,
    /// Transactions admitted by [`Node::submit_transaction`].
    pub txs_admitted: AtomicU64,
    /// Transactions refused by [`Node::submit_transaction`].
    pub txs_rejected: AtomicU64,
    /// Connected peers (set by the p2p layer).
    pub peers: AtomicU64,
    /// Whether the p2p layer accepts connections (set by the p2p layer).
    pub listening: AtomicBool,
    /// The highest tip a peer announced (set by the p2p layer; 0 without peers).
    pub best_peer_height: AtomicU64,
    /// Relay latencies by [`RELAY_LATENCY_BUCKETS_MS`], plus the overflow bucket.
    pub relay_latency: [AtomicU64; RELAY_LATENCY_BUCKETS_MS.len() + 1],
    /// Sum of the observed relay latencies, ms.
    pub relay_latency_sum_ms: AtomicU64,
}

/// A copy of the [`Metrics`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetricsSnapshot {
    /// [`Metrics::blocks_accepted`].
    pub blocks_accepted: u64,
    /// [`Metrics::blocks_rejected`].
    pub blocks_rejected: u64,
    /// [`Metrics::blocks_orphaned`].
    pub blocks_orphaned: u64,
    /// [`Metrics::blocks_connected`].
    pub blocks_connected: u64,
    /// [`Metrics::txs_admitted`].
    pub txs_admitted: u64,
    /// [`Metrics::txs_rejected`].
    pub txs_rejected: u64,
    /// [`Metrics::peers`].
    pub peers: u64,
    /// [`Metrics::listening`].
    pub listening: bool,
    /// [`Metrics::best_peer_height`].
    pub best_peer_height: u64,
    /// `(upper bound in ms, count)` per bucket; `None` is the overflow bucket.
    pub relay_latency: Vec<(Option<u64>, u64)>,
    /// [`Metrics::relay_latency_sum_ms`].
    pub relay_latency_sum_ms: u64,
}

impl Metrics {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the peer count.
    pub fn set_peers(&self, peers: u64) {
        self.peers.store(peers, Ordering::Relaxed);
    }

    /// Says whether the p2p layer accepts connections.
    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Relaxed);
    }

    /// Sets the highest tip height a peer announced.
    pub fn set_best_peer_height(&self, height: u64) {
        self.best_peer_height.store(height, Ordering::Relaxed);
    }

    /// Records one block relay latency (first announcement to connection, or whatever the
    /// p2p layer measures).
    pub fn observe_relay_latency(&self, latency: Duration) {
        let ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let bucket = RELAY_LATENCY_BUCKETS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(RELAY_LATENCY_BUCKETS_MS.len());
        Self::add(&self.relay_latency[bucket], 1);
        self.relay_latency_sum_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some(s.saturating_add(ms))
            })
            .ok();
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            blocks_accepted: get(&self.blocks_accepted),
            blocks_rejected: get(&self.blocks_rejected),
            blocks_orphaned: get(&self.blocks_orphaned),
            blocks_connected: get(&self.blocks_connected),
            txs_admitted: get(&self.txs_admitted),
            txs_rejected: get(&self.txs_rejected),
            peers: get(&self.peers),
            listening: self.listening.load(Ordering::Relaxed),
            best_peer_height: get(&self.best_peer_height),
            relay_latency: self
                .relay_latency
                .iter()
                .enumerate()
                .map(|(i, c)| (RELAY_LATENCY_BUCKETS_MS.get(i).copied(), get(c)))
                .collect(),
            relay_latency_sum_ms: get(&self.relay_latency_sum_ms),
        }
    }
}

/// The coinbase settings.
#[derive(Debug, Clone)]
struct MiningSettings {
    program: Vec<u8>,
    arbitrary: Vec<u8>,
    /// Bumped on every change (templates are rebuilt).
    version: u64,
}

/// A built template and what it was built from.
#[derive(Debug, Clone)]
struct CachedTemplate {
    template: BlockTemplate,
    pool_generation: u64,
    settings_version: u64,
}

/// The current template and older ones of the same parent.
#[derive(Debug, Default)]
struct TemplateCache {
    current: Option<CachedTemplate>,
    recent: Vec<CachedTemplate>,
}

/// The node service; see the module docs.
pub struct Node<K: KvStore> {
    network: Network,
    genesis: Hash,
    chain: Mutex<Chain<K>>,
    pool: Mutex<Mempool>,
    templates: Mutex<TemplateCache>,
    mining: Mutex<MiningSettings>,
    events: broadcast::Sender<NodeEvent>,
    metrics: Metrics,
}

impl<K: KvStore> std::fmt::Debug for Node<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("network", &self.network)
            .field("genesis", &self.genesis)
            .finish_non_exhaustive()
    }
}

fn lock<'a, T>(mutex: &'a Mutex<T>, what: &'static str) -> NodeResult<MutexGuard<'a, T>> {
    mutex.lock().map_err(|_| NodeError::Poisoned { what })
}

impl<K: KvStore> Node<K> {
    /// The service over an opened chain.
    pub fn new(chain: Chain<K>, config: NodeConfig) -> Arc<Self> {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Arc::new(Node {
            network: config.network,
            genesis: chain.genesis_hash(),
            chain: Mutex::new(chain),
            pool: Mutex::new(Mempool::new(config.mempool)),
            templates: Mutex::new(TemplateCache::default()),
            mining: Mutex::new(MiningSettings {
                program: config
                    .mining_program
                    .unwrap_or_else(|| DEFAULT_COINBASE_PROGRAM.to_vec()),
                arbitrary: config.coinbase_arbitrary,
                version: 0,
            }),
            events,
            metrics: Metrics::default(),
        })
    }

    fn chain(&self) -> NodeResult<MutexGuard<'_, Chain<K>>> {
        lock(&self.chain, "chain")
    }

    fn pool(&self) -> NodeResult<MutexGuard<'_, Mempool>> {
        lock(&self.pool, "mempool")
    }

    fn emit(&self, event: NodeEvent) {
        // No receiver is not an error: front-ends subscribe when they start.
        let _ = self.events.send(event);
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The genesis block's hash.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis
    }

    /// The main chain's tip (the genesis block's if the chain lock is poisoned: the tip is
    /// then unknown, and every other call reports [`NodeError::Poisoned`]).
    pub fn tip(&self) -> Tip {
        match self.chain() {
            Ok(chain) => chain.tip(),
            Err(_) => Tip {
                height: 0,
                hash: self.genesis,
            },
        }
    }

    /// Runs `f` on the chain manager under the chain lock (reads the front-ends need that
    /// the node does not wrap).
    ///
    /// # Errors
    /// [`NodeError::Poisoned`].
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain<K>) -> R) -> NodeResult<R> {
        Ok(f(&*self.chain()?))
    }

    /// The main chain's block hash at `height`.
    pub fn main_hash(&self, height: u64) -> Option<Hash> {
        self.chain().ok()?.index().main_hash(height)
    }

    /// Whether `hash` is indexed (main or side chain) or held as an orphan.
    pub fn has_block(&self, hash: &Hash) -> bool {
        self.chain()
            .is_ok_and(|c| c.index().contains(hash) || c.is_orphan(hash))
    }

    /// The main chain's block at `height`.
    ///
    /// # Errors
    /// [`NodeError::Store`], [`NodeError::Poisoned`].
    pub fn block_by_height(&self, height: u64) -> NodeResult<Option<Block>> {
        let chain = self.chain()?;
        match chain.index().main_hash(height) {
            Some(hash) => Ok(chain.store().block(&hash)?),
            None => Ok(None),
        }
    }

    /// A stored block (main or side chain; not orphans).
    ///
    /// # Errors
    /// [`NodeError::Store`], [`NodeError::Poisoned`].
    pub fn block_by_hash(&self, hash: &Hash) -> NodeResult<Option<Block>> {
        Ok(self.chain()?.store().block(hash)?)
    }

    /// A stored block's header.
    ///
    /// # Errors
    /// As [`Node::block_by_hash`].
    pub fn header_by_hash(&self, hash: &Hash) -> NodeResult<Option<BlockHeader>> {
        Ok(self.block_by_hash(hash)?.map(|b| b.header))
    }

    /// The main chain's header at `height`.
    ///
    /// # Errors
    /// As [`Node::block_by_height`].
    pub fn header_by_height(&self, height: u64) -> NodeResult<Option<BlockHeader>> {
        Ok(self.block_by_height(height)?.map(|b| b.header))
    }

    /// Up to `max` main-chain headers from `from_height` up.
    ///
    /// # Errors
    /// As [`Node::main_blocks`].
    pub fn main_headers(&self, from_height: u64, max: usize) -> NodeResult<Vec<BlockHeader>> {
        Ok(self
            .main_blocks(from_height, max)?
            .into_iter()
            .map(|b| b.header)
            .collect())
    }

    /// Up to `max` main-chain blocks from `from_height` up, read under one chain lock (a
    /// consistent run of the chain).
    ///
    /// # Errors
    /// [`NodeError::Store`] (a main-chain block missing from the database included),
    /// [`NodeError::Poisoned`].
    pub fn main_blocks(&self, from_height: u64, max: usize) -> NodeResult<Vec<Block>> {
        let chain = self.chain()?;
        let mut out = Vec::new();
        let mut height = from_height;
        while out.len() < max {
            let Some(hash) = chain.index().main_hash(height) else {
                break;
            };
            let block = chain.store().block(&hash)?.ok_or(StoreError::Missing {
                what: "main-chain block",
                key: hash.to_hex(),
            })?;
            out.push(block);
            height += 1;
        }
        Ok(out)
    }

    /// A block locator of the main chain: the tip, then back by 1, 1, …, 2, 4, 8, … blocks
    /// (ten steps of one, then doubling), always ending at the genesis block.
    pub fn block_locator(&self) -> Vec<Hash> {
        let Ok(chain) = self.chain() else {
            return vec![self.genesis];
        };
        let index = chain.index();
        let mut out = Vec::new();
        let mut height = index.tip().height;
        let mut step = 1u64;
        loop {
            if let Some(hash) = index.main_hash(height) {
                out.push(hash);
            }
            if height == 0 {
                break;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            height = height.saturating_sub(step);
        }
        out
    }

    /// The digest of the UTXO set ([`crate::store::utxo_digest`]).
    ///
    /// # Errors
    /// [`NodeError::Chain`] when the store fails, [`NodeError::Poisoned`].
    pub fn utxo_digest(&self) -> NodeResult<Hash> {
        Ok(self.chain()?.utxo_digest()?)
    }

    fn resolve(chain: &Chain<K>, at: BlockSelector) -> NodeResult<Hash> {
        match at {
            BlockSelector::Height(h) => {
                chain
                    .index()
                    .main_hash(h)
                    .ok_or_else(|| NodeError::BlockNotFound {
                        what: format!("at height {h}"),
                    })
            }
            BlockSelector::Hash(hash) if chain.index().contains(&hash) => Ok(hash),
            BlockSelector::Hash(hash) => Err(NodeError::BlockNotFound {
                what: hash.to_hex(),
            }),
        }
    }

    /// `get-difficulty`: the bits and work of a block (the tip for `None`).
    ///
    /// # Errors
    /// [`NodeError::BlockNotFound`], [`NodeError::Poisoned`].
    pub fn difficulty(&self, at: Option<BlockSelector>) -> NodeResult<Difficulty> {
        let chain = self.chain()?;
        let hash = match at {
            Some(at) => Self::resolve(&chain, at)?,
            None => chain.tip().hash,
        };
        let node = chain
            .index()
            .get(&hash)
            .ok_or_else(|| NodeError::BlockNotFound {
                what: hash.to_hex(),
            })?;
        Ok(Difficulty {
            hash,
            height: node.height,
            bits: node.bits,
            difficulty: calc_work(node.bits),
        })
    }

    /// `get-hash-rate`: `CalcWork(bits) / (timestamp − parent's timestamp)` of a block.
    ///
    /// # Errors
    /// [`NodeError::BlockNotFound`], [`NodeError::NoHashRate`] for the genesis block or a
    /// block not younger than its parent, [`NodeError::Poisoned`].
    pub fn hash_rate(&self, at: BlockSelector) -> NodeResult<HashRate> {
        let chain = self.chain()?;
        let hash = Self::resolve(&chain, at)?;
        let index = chain.index();
        let not_found = |h: Hash| NodeError::BlockNotFound { what: h.to_hex() };
        let node = index.get(&hash).ok_or_else(|| not_found(hash))?;
        let parent = node.parent.ok_or(NodeError::NoHashRate {
            hash,
            reason: "the genesis block has no parent",
        })?;
        let parent = index.get(&parent).ok_or_else(|| not_found(parent))?;
        let seconds = node
            .timestamp
            .checked_sub(parent.timestamp)
            .filter(|&s| s > 0)
            .ok_or(NodeError::NoHashRate {
                hash,
                reason: "its timestamp is not after its parent's",
            })?;
        Ok(HashRate {
            hash,
            height: node.height,
            hash_rate: calc_work(node.bits) / BigUint::from(seconds),
        })
    }

    /// Processes one block (relay, `submit-block`, mined): the chain's sequential path, then
    /// the mempool follows the new tip, events go out and counters move. An orphan is `Ok`
    /// with [`BlockStatus::Orphan`].
    ///
    /// # Errors
    /// [`NodeError::Chain`] with the chain's verdict, [`NodeError::Store`],
    /// [`NodeError::Poisoned`].
    pub fn submit_block(&self, block: Block) -> NodeResult<ProcessOutcome> {
        let mut chain = self.chain()?;
        self.process_locked(&mut chain, block)
    }

    fn process_locked(&self, chain: &mut Chain<K>, block: Block) -> NodeResult<ProcessOutcome> {
        let outcome = match chain.process_block(block) {
            Ok(outcome) => outcome,
            Err(e) => {
                if !matches!(e, ChainError::Store(_)) {
                    Metrics::add(&self.metrics.blocks_rejected, 1);
                }
                return Err(e.into());
            }
        };
        match outcome.status {
            BlockStatus::MainChain | BlockStatus::SideChain => {
                Metrics::add(&self.metrics.blocks_accepted, 1)
            }
            BlockStatus::Orphan => Metrics::add(&self.metrics.blocks_orphaned, 1),
            BlockStatus::AlreadyKnown => {}
        }
        Metrics::add(
            &self.metrics.blocks_rejected,
            outcome.orphans_rejected.len() as u64,
        );
        self.follow_tip(chain, &outcome.detached, &outcome.attached, &[])?;
        Ok(outcome)
    }

    /// Processes a sync window (linked blocks from a child of the tip) with PSWV; the valid
    /// prefix is committed, the mempool follows, events go out.
    ///
    /// # Errors
    /// [`NodeError::Chain`] when the store fails (invalid blocks are reported in
    /// [`WindowReport::rejected`]), [`NodeError::Poisoned`].
    pub fn submit_window(&self, blocks: Vec<Block>) -> NodeResult<WindowReport> {
        let mut chain = self.chain()?;
        let report = chain.process_window(&blocks)?;
        Metrics::add(&self.metrics.blocks_accepted, report.accepted as u64);
        if report.rejected.is_some() {
            Metrics::add(&self.metrics.blocks_rejected, 1);
        }
        self.follow_tip(&mut chain, &report.detached, &report.attached, &blocks)?;
        Ok(report)
    }

    /// After a chain change: the mempool drops what the new blocks mined or conflict with
    /// (or is rebuilt after a reorganisation), then the events. Blocks are read from the
    /// database unless `known` (the blocks just submitted) holds them.
    fn follow_tip(
        &self,
        chain: &mut Chain<K>,
        detached: &[Hash],
        attached: &[Hash],
        known: &[Block],
    ) -> NodeResult<PoolUpdate> {
        let mut update = PoolUpdate::default();
        if attached.is_empty() && detached.is_empty() {
            return Ok(update);
        }
        let known: HashMap<Hash, &Block> = known.iter().map(|b| (b.hash(), b)).collect();
        let load = |hash: &Hash| -> NodeResult<(Block, Vec<bool>)> {
            let missing = |what| StoreError::Missing {
                what,
                key: hash.to_hex(),
            };
            let block = match known.get(hash) {
                Some(block) => Block::clone(block),
                None => chain.store().block(hash)?.ok_or_else(|| missing("block"))?,
            };
            let statuses = chain
                .store()
                .statuses(hash)?
                .ok_or_else(|| missing("tx statuses"))?;
            Ok((block, statuses))
        };
        let attached_blocks = attached.iter().map(load).collect::<NodeResult<Vec<_>>>()?;
        let next_height = chain.tip().height + 1;
        {
            let mut pool = self.pool()?;
            if detached.is_empty() {
                for (block, statuses) in &attached_blocks {
                    pool.remove_block(block, statuses, &mut update);
                }
                pool.drop_expired(next_height, &mut update);
            } else {
                // `detached` is newest first; blocks give their transactions back oldest first.
                let mut detached_blocks = detached
                    .iter()
                    .map(|h| load(h).map(|(b, _)| b))
                    .collect::<NodeResult<Vec<_>>>()?;
                detached_blocks.reverse();
                let attached_ids: HashSet<Hash> = attached_blocks
                    .iter()
                    .flat_map(|(b, _)| b.transactions.iter().map(Transaction::id))
                    .collect();
                pool.reorganize(
                    &detached_blocks,
                    &attached_ids,
                    chain.store(),
                    next_height,
                    &mut update,
                );
            }
        }
        Metrics::add(&self.metrics.blocks_connected, attached.len() as u64);
        for (hash, (block, _)) in attached.iter().zip(attached_blocks) {
            self.emit(NodeEvent::BlockConnected {
                hash: *hash,
                height: block.header.height,
                block: Arc::new(block),
            });
        }
        self.emit(NodeEvent::TipChanged { tip: chain.tip() });
        Ok(update)
    }

    /// Admits a transaction to the mempool (API or peer) and announces it with
    /// [`NodeEvent::TxAdmitted`]. Returns its ID.
    ///
    /// # Errors
    /// [`NodeError::Mempool`] with the reason, [`NodeError::Poisoned`].
    pub fn submit_transaction(&self, tx: Transaction) -> NodeResult<Hash> {
        let tx = Arc::new(tx);
        let result = self.admit(tx.clone());
        match &result {
            Ok(id) => {
                Metrics::add(&self.metrics.txs_admitted, 1);
                self.emit(NodeEvent::TxAdmitted { id: *id, tx });
            }
            Err(NodeError::Mempool(_)) => Metrics::add(&self.metrics.txs_rejected, 1),
            Err(_) => {}
        }
        result
    }

    fn admit(&self, tx: Arc<Transaction>) -> NodeResult<Hash> {
        // The signatures and the VM run before any lock is taken.
        let checked = precheck(tx, self.tip().height + 1)?;
        let chain = self.chain()?;
        let mut pool = self.pool()?;
        let admitted = pool.admit(checked, chain.store(), chain.tip().height + 1)?;
        Ok(admitted.id)
    }

    /// Every pooled transaction, in arrival order.
    pub fn mempool_transactions(&self) -> Vec<(Hash, Transaction)> {
        self.pool().map_or_else(
            |_| Vec::new(),
            |pool| {
                pool.transactions()
                    .into_iter()
                    .map(|(id, tx)| (id, Transaction::clone(&tx)))
                    .collect()
            },
        )
    }

    /// Pooled transactions.
    pub fn mempool_len(&self) -> usize {
        self.pool().map_or(0, |pool| pool.len())
    }

    /// Whether transaction `id` is pooled.
    pub fn mempool_contains(&self, id: &Hash) -> bool {
        self.pool().is_ok_and(|pool| pool.contains(id))
    }

    /// The coinbase control program of templates.
    pub fn mining_program(&self) -> Vec<u8> {
        lock(&self.mining, "mining settings")
            .map_or_else(|_| DEFAULT_COINBASE_PROGRAM.to_vec(), |m| m.program.clone())
    }

    /// Sets the coinbase control program (the next template pays it).
    ///
    /// # Errors
    /// [`NodeError::Template`] with [`TemplateError::BadProgram`] for a program a coinbase may
    /// not pay to (nothing changes), [`NodeError::Poisoned`].
    pub fn set_mining_program(&self, program: Vec<u8>) -> NodeResult<()> {
        if !crate::address::is_standard_program(&program) {
            return Err(TemplateError::BadProgram {
                program: bystack_kernels::hex::encode(&program),
                reason: "not P2WPKH, P2WSH, TRUE or FAIL".to_string(),
            }
            .into());
        }
        let mut mining = lock(&self.mining, "mining settings")?;
        mining.program = program;
        mining.version += 1;
        Ok(())
    }

    /// The extra coinbase arbitrary data.
    pub fn coinbase_arbitrary(&self) -> Vec<u8> {
        lock(&self.mining, "mining settings").map_or_else(|_| Vec::new(), |m| m.arbitrary.clone())
    }

    /// Sets the extra coinbase arbitrary data (Bytom's `set-coinbase-arbitrary`).
    ///
    /// # Errors
    /// [`NodeError::Poisoned`].
    pub fn set_coinbase_arbitrary(&self, arbitrary: Vec<u8>) -> NodeResult<()> {
        let mut mining = lock(&self.mining, "mining settings")?;
        mining.arbitrary = arbitrary;
        mining.version += 1;
        Ok(())
    }

    /// The current block template (rebuilt when the tip, the pool or the mining settings
    /// changed), timestamp not refreshed.
    ///
    /// # Errors
    /// [`NodeError::Template`] (e.g. a mining program a coinbase may not pay to),
    /// [`NodeError::Chain`] for an index inconsistency, [`NodeError::Poisoned`].
    pub fn block_template(&self) -> NodeResult<BlockTemplate> {
        let chain = self.chain()?;
        self.current_template(&chain)
    }

    fn current_template(&self, chain: &Chain<K>) -> NodeResult<BlockTemplate> {
        let pool = self.pool()?;
        let mut cache = lock(&self.templates, "templates")?;
        let settings = lock(&self.mining, "mining settings")?.clone();
        let tip = chain.tip();
        if let Some(current) = &cache.current {
            let same_parent = current.template.block.header.previous_block_hash == tip.hash;
            if same_parent
                && current.pool_generation == pool.generation()
                && current.settings_version == settings.version
            {
                return Ok(current.template.clone());
            }
        }
        let parent = chain
            .index()
            .parent_info(&tip.hash)
            .map_err(ChainError::from)?;
        let spec = TemplateSpec {
            parent,
            timestamp: chain.now(),
            program: &settings.program,
            arbitrary: &settings.arbitrary,
            max_gas: MAX_BLOCK_GAS,
        };
        let template = build_template(&spec, &pool.block_candidates(), chain.store())?;
        let fresh = CachedTemplate {
            template: template.clone(),
            pool_generation: pool.generation(),
            settings_version: settings.version,
        };
        if let Some(old) = cache.current.replace(fresh) {
            if old.template.block.header.previous_block_hash == tip.hash {
                cache.recent.push(old);
                if cache.recent.len() > RECENT_TEMPLATES {
                    cache.recent.remove(0);
                }
            } else {
                cache.recent.clear();
            }
        }
        Ok(template)
    }

    /// `get-work`: the current template's header with its timestamp set to now (never below
    /// the median time past + 1), and the seed.
    ///
    /// # Errors
    /// As [`Node::block_template`].
    pub fn get_work(&self) -> NodeResult<Work> {
        let chain = self.chain()?;
        let template = self.current_template(&chain)?;
        let mut header = template.block.header;
        let parent = chain
            .index()
            .parent_info(&header.previous_block_hash)
            .map_err(ChainError::from)?;
        header.timestamp = chain.now().max(parent.median_time.saturating_add(1));
        Ok(Work {
            header,
            seed: template.seed,
        })
    }

    /// `submit-work`: a solved header of a template. Its previous hash must be the current
    /// template's (else [`NodeError::StaleWork`]); its commitment picks which of the
    /// current parent's templates it solves; only its nonce and timestamp are copied into
    /// that template block, which is then processed as [`Node::submit_block`] does.
    ///
    /// # Errors
    /// [`NodeError::StaleWork`], [`NodeError::OrphanWork`], [`NodeError::Chain`] (e.g. a
    /// nonce that does not meet the target), [`NodeError::Poisoned`].
    pub fn submit_work(&self, header: &BlockHeader) -> NodeResult<ProcessOutcome> {
        for (field, value) in [("nonce", header.nonce), ("timestamp", header.timestamp)] {
            if value > i64::MAX as u64 {
                return Err(NodeError::InvalidWork { field, value });
            }
        }
        let mut chain = self.chain()?;
        let block = {
            let cache = lock(&self.templates, "templates")?;
            let current = cache.current.as_ref().ok_or(NodeError::StaleWork)?;
            let tip = chain.tip().hash;
            if header.previous_block_hash != current.template.block.header.previous_block_hash
                || header.previous_block_hash != tip
            {
                return Err(NodeError::StaleWork);
            }
            let solved = std::iter::once(current)
                .chain(cache.recent.iter().rev())
                .find(|c| {
                    let h = &c.template.block.header;
                    h.transactions_merkle_root == header.transactions_merkle_root
                        && h.transaction_status_hash == header.transaction_status_hash
                })
                .ok_or(NodeError::StaleWork)?;
            let mut block = solved.template.block.clone();
            block.header.nonce = header.nonce;
            block.header.timestamp = header.timestamp;
            block
        };
        let outcome = self.process_locked(&mut chain, block)?;
        if outcome.status == BlockStatus::Orphan {
            return Err(NodeError::OrphanWork);
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainConfig;
    use crate::store::{MemoryKv, Store};
    use bystack_engine::devnet::{ChainGenerator, GeneratorConfig};
    use bystack_engine::validation::SkipPow;

    fn send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn nodes_can_be_shared_across_threads() {
        send_sync::<Node<MemoryKv>>();
        send_sync::<NodeEvent>();
    }

    /// The intended async use: calls through `spawn_blocking`, events received with `await`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_callers_submit_through_spawn_blocking_and_await_events() {
        let mut generator = ChainGenerator::new(GeneratorConfig {
            seed: 4,
            txs_per_block: 0,
            ..GeneratorConfig::default()
        });
        let genesis = generator.genesis().clone();
        let blocks: Vec<Block> = generator.generate(5).into_iter().map(|g| g.block).collect();
        let chain = Chain::open(
            Store::in_memory(),
            &genesis,
            Arc::new(SkipPow),
            ChainConfig::with_fixed_clock(4_000_000_000),
        )
        .unwrap();
        let node = Node::new(chain, NodeConfig::new(Network::Devnet));
        let mut events = node.subscribe();
        let submitter = node.clone();
        let window = blocks.clone();
        let report = tokio::task::spawn_blocking(move || submitter.submit_window(window))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.accepted, 5);
        for block in &blocks {
            match events.recv().await.unwrap() {
                NodeEvent::BlockConnected { hash, .. } => assert_eq!(hash, block.hash()),
                other => panic!("unexpected {other:?}"),
            }
        }
        match events.recv().await.unwrap() {
            NodeEvent::TipChanged { tip } => assert_eq!(tip.hash, blocks[4].hash()),
            other => panic!("unexpected {other:?}"),
        }
        let miner = node.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let work = miner.get_work()?;
            miner.submit_work(&work.header)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(outcome.tip.height, 6);
        assert_eq!(node.tip(), outcome.tip);
    }
}
