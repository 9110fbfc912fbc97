//! Headers-first sync from one peer, as a task of its own.
//!
//! 1. Ask the peer for main-chain headers from our tip on; when the first one does not build
//!    on a block we have, ask again from further back (8, 32, 128… blocks) until it does: the
//!    fork point. The headers must link (consecutive heights, each naming its predecessor).
//! 2. Fetch the blocks of the new headers in windows of the configured size; each block must
//!    be the one its header announced. Blocks more than `near_tip` below the target are
//!    validated and committed a window at a time with PSWV ([`Node::submit_window`]), the last
//!    ones go one by one through the sequential path ([`Node::submit_block`]).
//! 3. When our tip reaches the target, ask the peer's status again and continue while it is
//!    ahead.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bystack_engine::{Block, BlockHeader, Hash};
use indicatif::{ProgressBar, ProgressStyle};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use super::score::Misbehaviour;
use super::swarm::Internal;
use super::wire::{Status, SyncRequest, SyncResponse, MAX_HEADERS_PER_REQUEST};
use super::Command;
use crate::chain::{BlockStatus, ChainError, Tip};
use crate::service::{Node, NodeError};
use crate::store::KvStore;

/// Why a sync from a peer stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A request failed (timeout, closed connection, undecodable response).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The peer answered with another kind of response than the one asked for.
    #[error("{peer} answered a {expected} request with another kind of response")]
    WrongResponse {
        /// The peer.
        peer: PeerId,
        /// The kind asked for.
        expected: &'static str,
    },
    /// The peer's headers do not form a chain from a block we have.
    #[error("headers from {peer} do not link: {reason}")]
    BrokenChain {
        /// The peer.
        peer: PeerId,
        /// How.
        reason: String,
    },
    /// The peer's main chain changed under the sync, or it did not serve the blocks of its
    /// headers.
    #[error("{peer} did not serve block {height} of its headers")]
    Missing {
        /// The peer.
        peer: PeerId,
        /// The height.
        height: u64,
    },
    /// The peer served a block that fails validation.
    #[error("{peer} served an invalid block: {error}")]
    InvalidBlock {
        /// The peer.
        peer: PeerId,
        /// The chain manager's verdict.
        #[source]
        error: Box<ChainError>,
    },
    /// The node failed (storage): not the peer's fault.
    #[error("node: {0}")]
    Node(#[source] Box<NodeError>),
    /// The p2p layer or the runtime is shutting down.
    #[error("the p2p task has stopped")]
    Stopped,
}

impl SyncError {
    /// What the peer did wrong, when the failure is its fault.
    pub fn misbehaviour(&self) -> Option<Misbehaviour> {
        match self {
            SyncError::WrongResponse { .. } => Some(Misbehaviour::Malformed),
            SyncError::BrokenChain { .. } => Some(Misbehaviour::BrokenChain),
            SyncError::InvalidBlock { .. } => Some(Misbehaviour::InvalidBlock),
            SyncError::Missing { .. } => Some(Misbehaviour::Unresponsive),
            // Failed requests are scored where they fail (in the swarm task).
            SyncError::Request { .. } | SyncError::Node(_) | SyncError::Stopped => None,
        }
    }
}

/// Whether a chain manager rejection means that the block (so its sender) is at fault.
pub(super) fn block_is_invalid(error: &ChainError) -> bool {
    matches!(
        error,
        ChainError::Block { .. }
            | ChainError::Utxo { .. }
            | ChainError::KnownInvalid { .. }
            | ChainError::InvalidAncestor { .. }
    )
}

/// The chain error of a node error, when the block is at fault.
pub(super) fn invalid_block_error(error: &NodeError) -> Option<&ChainError> {
    match error {
        NodeError::Chain(e) if block_is_invalid(e) => Some(e),
        _ => None,
    }
}

/// What the syncs of a p2p layer did so far ([`super::P2pHandle::sync_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Windows committed with PSWV.
    pub windows: u64,
    /// Blocks accepted in those windows.
    pub window_blocks: u64,
    /// Blocks accepted one by one on the sequential path (near the peer's tip).
    pub sequential_blocks: u64,
}

/// The live counters behind [`SyncStats`].
#[derive(Debug, Default)]
pub(super) struct SyncCounters {
    windows: AtomicU64,
    window_blocks: AtomicU64,
    sequential_blocks: AtomicU64,
}

impl SyncCounters {
    /// The counters now.
    pub(super) fn snapshot(&self) -> SyncStats {
        SyncStats {
            windows: self.windows.load(Ordering::Relaxed),
            window_blocks: self.window_blocks.load(Ordering::Relaxed),
            sequential_blocks: self.sequential_blocks.load(Ordering::Relaxed),
        }
    }
}

/// What a finished sync achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SyncSummary {
    /// Blocks accepted.
    pub accepted: usize,
    /// Our tip afterwards.
    pub tip: Tip,
}

/// Sends sync requests to one peer through the swarm task.
#[derive(Debug, Clone)]
pub(super) struct Requester {
    pub peer: PeerId,
    pub genesis: Hash,
    pub commands: mpsc::UnboundedSender<Command>,
}

impl Requester {
    async fn request(&self, request: SyncRequest) -> Result<SyncResponse, SyncError> {
        let (reply, response) = oneshot::channel();
        self.commands
            .send(Command::Internal(Internal::Request {
                peer: self.peer,
                request,
                reply,
            }))
            .map_err(|_| SyncError::Stopped)?;
        response
            .await
            .map_err(|_| SyncError::Stopped)?
            .map_err(|reason| SyncError::Request {
                peer: self.peer,
                reason,
            })
    }

    async fn status(&self, tip: Tip) -> Result<Status, SyncError> {
        let ours = Status {
            genesis: self.genesis,
            tip_height: tip.height,
            tip_hash: tip.hash,
        };
        match self.request(SyncRequest::Status(ours)).await? {
            SyncResponse::Status(status) if status.genesis == self.genesis => Ok(status),
            SyncResponse::Status(_) => Err(SyncError::BrokenChain {
                peer: self.peer,
                reason: "its genesis changed".to_string(),
            }),
            _ => Err(self.wrong("status")),
        }
    }

    async fn headers(&self, from_height: u64, max: u32) -> Result<Vec<BlockHeader>, SyncError> {
        match self
            .request(SyncRequest::Headers { from_height, max })
            .await?
        {
            SyncResponse::Headers(headers) if headers.len() <= max as usize => Ok(headers),
            _ => Err(self.wrong("headers")),
        }
    }

    async fn blocks(&self, from_height: u64, max: u32) -> Result<Vec<Block>, SyncError> {
        match self
            .request(SyncRequest::Blocks { from_height, max })
            .await?
        {
            SyncResponse::Blocks(blocks) if blocks.len() <= max as usize => Ok(blocks),
            _ => Err(self.wrong("blocks")),
        }
    }

    fn wrong(&self, expected: &'static str) -> SyncError {
        SyncError::WrongResponse {
            peer: self.peer,
            expected,
        }
    }
}

/// Runs `f` on the node on a blocking thread.
async fn blocking<K, T, F>(node: &Arc<Node<K>>, f: F) -> Result<T, SyncError>
where
    K: KvStore + 'static,
    T: Send + 'static,
    F: FnOnce(&Node<K>) -> T + Send + 'static,
{
    let node = node.clone();
    tokio::task::spawn_blocking(move || f(&node))
        .await
        .map_err(|_| SyncError::Stopped)
}

/// Sync settings.
#[derive(Debug, Clone)]
pub(super) struct SyncPlan {
    /// The peer's announced tip height.
    pub target: u64,
    /// Blocks per window.
    pub window: usize,
    /// Sequential path within this many blocks of the target.
    pub near_tip: u64,
    /// Where to count what was done.
    pub counters: Arc<SyncCounters>,
}

/// Syncs from `peer` until our tip reaches its tip; see the module docs.
pub(super) async fn run<K: KvStore + 'static>(
    node: Arc<Node<K>>,
    peer: Requester,
    plan: SyncPlan,
) -> Result<SyncSummary, SyncError> {
    let mut target = plan.target;
    let start = blocking(&node, |n| n.tip()).await?;
    let mut progress = Progress::new(peer.peer, start.height, target);
    let mut accepted = 0;
    loop {
        let tip = blocking(&node, |n| n.tip()).await?;
        if tip.height >= target {
            let status = peer.status(tip).await?;
            if status.tip_height <= tip.height {
                break;
            }
            target = status.tip_height;
            progress.retarget(target);
        }
        let headers = new_headers(&node, &peer, tip).await?;
        if headers.is_empty() {
            break;
        }
        // Heights up to here go in PSWV windows, the rest one by one.
        let far_end = target.saturating_sub(plan.near_tip);
        for chunk in headers.chunks(plan.window) {
            let mut blocks = fetch_blocks(&peer, chunk).await?;
            let last = chunk[chunk.len() - 1].height;
            let split = blocks
                .iter()
                .position(|b| b.header.height > far_end)
                .unwrap_or(blocks.len());
            let near = blocks.split_off(split);
            let mut count = 0;
            if !blocks.is_empty() {
                count += submit_window(&node, &peer, blocks, &plan.counters).await?;
            }
            if !near.is_empty() {
                count += submit_blocks(&node, &peer, near, &plan.counters).await?;
            }
            accepted += count;
            progress.advance(last, count);
        }
    }
    let tip = blocking(&node, |n| n.tip()).await?;
    progress.finish(tip.height);
    Ok(SyncSummary { accepted, tip })
}

/// The peer's main-chain headers after the last block we share with it (empty when it has
/// nothing new).
async fn new_headers<K: KvStore + 'static>(
    node: &Arc<Node<K>>,
    peer: &Requester,
    tip: Tip,
) -> Result<Vec<BlockHeader>, SyncError> {
    let mut back = 0u64;
    loop {
        let from = tip.height.saturating_sub(back) + 1;
        let mut headers = peer.headers(from, MAX_HEADERS_PER_REQUEST).await?;
        let Some(first) = headers.first() else {
            return Ok(headers);
        };
        let hashes = check_linked(peer.peer, &headers, from)?;
        let parent = first.previous_block_hash;
        // Indexed blocks only: an orphan we hold is not a place to build on.
        let (parent_known, known) = blocking(node, move |n| {
            n.with_chain(|chain| {
                let index = chain.index();
                let known = hashes.iter().take_while(|h| index.contains(h)).count();
                (index.contains(&parent), known)
            })
        })
        .await?
        .map_err(|e| SyncError::Node(Box::new(e)))?;
        if parent_known {
            return Ok(headers.split_off(known));
        }
        if from == 1 {
            return Err(SyncError::BrokenChain {
                peer: peer.peer,
                reason: "its height 1 does not build on our genesis".to_string(),
            });
        }
        back = if back == 0 { 8 } else { back.saturating_mul(4) }.min(tip.height);
    }
}

/// Checks that `headers` are consecutive from `from` and each names its predecessor; returns
/// their hashes.
fn check_linked(peer: PeerId, headers: &[BlockHeader], from: u64) -> Result<Vec<Hash>, SyncError> {
    let mut hashes: Vec<Hash> = Vec::with_capacity(headers.len());
    for (i, header) in headers.iter().enumerate() {
        let height = from + i as u64;
        if header.height != height {
            return Err(SyncError::BrokenChain {
                peer,
                reason: format!("header {i} has height {}, expected {height}", header.height),
            });
        }
        if let Some(previous) = hashes.last() {
            if header.previous_block_hash != *previous {
                return Err(SyncError::BrokenChain {
                    peer,
                    reason: format!(
                        "header {height} does not name header {} as parent",
                        height - 1
                    ),
                });
            }
        }
        hashes.push(header.hash());
    }
    Ok(hashes)
}

/// The blocks of `headers` (a linked run), in as many requests as the peer needs.
async fn fetch_blocks(peer: &Requester, headers: &[BlockHeader]) -> Result<Vec<Block>, SyncError> {
    let mut blocks: Vec<Block> = Vec::with_capacity(headers.len());
    while blocks.len() < headers.len() {
        let wanted = &headers[blocks.len()..];
        let max = u32::try_from(wanted.len()).unwrap_or(u32::MAX);
        let got = peer.blocks(wanted[0].height, max).await?;
        if got.is_empty() {
            return Err(SyncError::Missing {
                peer: peer.peer,
                height: wanted[0].height,
            });
        }
        for (block, header) in got.iter().zip(wanted) {
            if block.header != *header {
                return Err(SyncError::Missing {
                    peer: peer.peer,
                    height: header.height,
                });
            }
        }
        blocks.extend(got);
    }
    Ok(blocks)
}

/// Commits `blocks` as one PSWV window (counted, with its valid prefix, in `counters`);
/// returns how many were accepted.
async fn submit_window<K: KvStore + 'static>(
    node: &Arc<Node<K>>,
    peer: &Requester,
    blocks: Vec<Block>,
    counters: &SyncCounters,
) -> Result<usize, SyncError> {
    let report = blocking(node, move |n| n.submit_window(blocks))
        .await?
        .map_err(|e| node_error(peer.peer, e))?;
    counters.windows.fetch_add(1, Ordering::Relaxed);
    counters
        .window_blocks
        .fetch_add(report.accepted as u64, Ordering::Relaxed);
    match report.rejected {
        None => Ok(report.accepted),
        Some((_, error)) if block_is_invalid(&error) => Err(SyncError::InvalidBlock {
            peer: peer.peer,
            error: Box::new(error),
        }),
        Some((_, error)) => Err(SyncError::Node(Box::new(NodeError::Chain(error)))),
    }
}

/// Submits `blocks` one by one on the sequential path (each one connected, to the main chain
/// or a side branch, counted in `counters`); returns how many were connected.
async fn submit_blocks<K: KvStore + 'static>(
    node: &Arc<Node<K>>,
    peer: &Requester,
    blocks: Vec<Block>,
    counters: &SyncCounters,
) -> Result<usize, SyncError> {
    let mut accepted = 0;
    for block in blocks {
        let outcome = blocking(node, move |n| n.submit_block(block))
            .await?
            .map_err(|e| node_error(peer.peer, e))?;
        if matches!(
            outcome.status,
            BlockStatus::MainChain | BlockStatus::SideChain
        ) {
            accepted += 1;
            counters.sequential_blocks.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(accepted)
}

fn node_error(peer: PeerId, error: NodeError) -> SyncError {
    match invalid_block_error(&error) {
        Some(e) => SyncError::InvalidBlock {
            peer,
            error: Box::new(e.clone()),
        },
        None => SyncError::Node(Box::new(error)),
    }
}

/// Sync progress: a bar on a terminal, log lines otherwise.
enum Progress {
    Bar(ProgressBar),
    Log { peer: PeerId, last: Instant },
}

impl Progress {
    fn new(peer: PeerId, from: u64, target: u64) -> Self {
        tracing::info!(%peer, from, target, "syncing");
        if !std::io::stderr().is_terminal() {
            return Progress::Log {
                peer,
                last: Instant::now(),
            };
        }
        let bar = ProgressBar::new(target);
        if let Ok(style) =
            ProgressStyle::with_template("sync {bar:40} {pos}/{len} blocks ({per_sec}, eta {eta})")
        {
            bar.set_style(style);
        }
        bar.set_position(from);
        Progress::Bar(bar)
    }

    fn retarget(&mut self, target: u64) {
        if let Progress::Bar(bar) = self {
            bar.set_length(target);
        }
    }

    fn advance(&mut self, height: u64, accepted: usize) {
        match self {
            Progress::Bar(bar) => bar.set_position(height),
            Progress::Log { peer, last } => {
                if last.elapsed() >= Duration::from_secs(2) {
                    tracing::info!(%peer, height, accepted, "sync progress");
                    *last = Instant::now();
                }
            }
        }
    }

    fn finish(&mut self, height: u64) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
        tracing::info!(height, "sync finished");
    }
}
