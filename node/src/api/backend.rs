//! What the HTTP API needs from a node: [`ApiBackend`], synchronous calls that the handlers run
//! on Tokio's blocking pool.

use bystack_engine::consensus::Network;
use bystack_engine::{Block, BlockHeader, Hash, Transaction};

use super::error::ApiError;
use super::metrics::MetricsSnapshot;
use crate::chain::Tip;

/// A block template to mine: the header (timestamp refreshed) and its Tensority seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiningWork {
    /// The header to find a nonce for.
    pub header: BlockHeader,
    /// The seed of the header's epoch.
    pub seed: Hash,
}

/// The network side of net-info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStatus {
    /// Whether the p2p layer accepts inbound connections.
    pub listening: bool,
    /// Whether a built-in miner runs.
    pub mining: bool,
    /// Connected peers.
    pub peer_count: u64,
    /// The best height a peer announced (0: none known).
    pub best_peer_height: u64,
}

/// The node calls behind the endpoints. Every method may block (locks, the store, block
/// validation); the server calls them from `spawn_blocking`. Refusals come back as
/// [`ApiError::Rejected`] with Bytom's code and the node's message.
pub trait ApiBackend: Send + Sync + 'static {
    /// The network the node runs.
    fn network(&self) -> Network;

    /// The main chain's tip.
    fn tip(&self) -> Tip;

    /// The main-chain block at `height`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the store fails.
    fn block_by_height(&self, height: u64) -> Result<Option<Block>, ApiError>;

    /// The block `hash` on any branch.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the store fails.
    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, ApiError>;

    /// Per transaction of block `hash`: whether it is status fail (gas only).
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the store fails.
    fn block_statuses(&self, hash: &Hash) -> Result<Option<Vec<bool>>, ApiError>;

    /// The current mining template with its timestamp set to now.
    ///
    /// # Errors
    /// [`ApiError::Rejected`] when no template can be built.
    fn get_work(&self) -> Result<MiningWork, ApiError>;

    /// A solved template: only its nonce and timestamp are taken.
    ///
    /// # Errors
    /// [`ApiError::Rejected`] with "pending mining block has been changed" for stale work, or
    /// the chain's verdict.
    fn submit_work(&self, header: &BlockHeader) -> Result<(), ApiError>;

    /// A whole block built by the caller.
    ///
    /// # Errors
    /// [`ApiError::Rejected`] with "block submitted is orphan", or the chain's verdict.
    fn submit_block(&self, block: Block) -> Result<(), ApiError>;

    /// A transaction for the mempool; returns its ID.
    ///
    /// # Errors
    /// [`ApiError::Rejected`] with the mempool's verdict (BTM73x codes for validation).
    fn submit_transaction(&self, tx: Transaction) -> Result<Hash, ApiError>;

    /// The IDs of the mempool's transactions.
    fn unconfirmed_transaction_ids(&self) -> Vec<Hash>;

    /// Peers and listening state.
    fn net_status(&self) -> NetStatus;

    /// The counters and gauges `/metrics` shows.
    fn metrics(&self) -> MetricsSnapshot;
}
