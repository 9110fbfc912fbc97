//! [`ApiBackend`] for the node service [`Node`]: the API's calls mapped onto the facade, and
//! [`NodeError`]s onto Bytom's error codes.

use bystack_engine::consensus::Network;
use bystack_engine::{Block, BlockHeader, Hash, Transaction};

use super::backend::{ApiBackend, MiningWork, NetStatus};
use super::error::{tx_error_info, ApiError};
use super::metrics::{LatencyHistogram, MetricsSnapshot};
use crate::chain::{BlockStatus, ChainError, Tip};
use crate::mempool::MempoolError;
use crate::service::{Node, NodeError};
use crate::store::KvStore;

impl From<NodeError> for ApiError {
    fn from(error: NodeError) -> Self {
        match &error {
            NodeError::Store(_)
            | NodeError::Poisoned { .. }
            | NodeError::Chain(ChainError::Store(_)) => ApiError::Internal(error.to_string()),
            NodeError::Mempool(MempoolError::Invalid {
                error: tx_error, ..
            }) => ApiError::Rejected {
                info: tx_error_info(tx_error),
                detail: error.to_string(),
            },
            _ => ApiError::rejected(error.to_string()),
        }
    }
}

/// Per-bucket counts in milliseconds (the last bucket unbounded) as a cumulative histogram in
/// seconds.
fn latency_histogram(buckets: &[(Option<u64>, u64)], sum_ms: u64) -> LatencyHistogram {
    let mut cumulative = 0u64;
    let mut histogram = LatencyHistogram {
        buckets: Vec::with_capacity(buckets.len()),
        sum_seconds: sum_ms as f64 / 1000.0,
        count: 0,
    };
    for (bound_ms, count) in buckets {
        cumulative = cumulative.saturating_add(*count);
        if let Some(bound_ms) = bound_ms {
            histogram
                .buckets
                .push((*bound_ms as f64 / 1000.0, cumulative));
        }
    }
    histogram.count = cumulative;
    histogram
}

impl<K: KvStore + 'static> ApiBackend for Node<K> {
    fn network(&self) -> Network {
        Node::network(self)
    }

    fn tip(&self) -> Tip {
        Node::tip(self)
    }

    fn block_by_height(&self, height: u64) -> Result<Option<Block>, ApiError> {
        Ok(Node::block_by_height(self, height)?)
    }

    fn block_by_hash(&self, hash: &Hash) -> Result<Option<Block>, ApiError> {
        Ok(Node::block_by_hash(self, hash)?)
    }

    fn block_statuses(&self, hash: &Hash) -> Result<Option<Vec<bool>>, ApiError> {
        self.with_chain(|chain| chain.store().statuses(hash))?
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    fn get_work(&self) -> Result<MiningWork, ApiError> {
        let work = Node::get_work(self)?;
        Ok(MiningWork {
            header: work.header,
            seed: work.seed,
        })
    }

    fn submit_work(&self, header: &BlockHeader) -> Result<(), ApiError> {
        Node::submit_work(self, header)?;
        Ok(())
    }

    fn submit_block(&self, block: Block) -> Result<(), ApiError> {
        let outcome = Node::submit_block(self, block)?;
        if outcome.status == BlockStatus::Orphan {
            return Err(NodeError::OrphanBlock.into());
        }
        Ok(())
    }

    fn submit_transaction(&self, tx: Transaction) -> Result<Hash, ApiError> {
        Ok(Node::submit_transaction(self, tx)?)
    }

    fn unconfirmed_transaction_ids(&self) -> Vec<Hash> {
        self.mempool_transactions()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    fn net_status(&self) -> NetStatus {
        NetStatus {
            peer_count: self.metrics().snapshot().peers,
            ..NetStatus::default()
        }
    }

    fn metrics(&self) -> MetricsSnapshot {
        let counters = Node::metrics(self).snapshot();
        MetricsSnapshot {
            height: Node::tip(self).height,
            peers: counters.peers,
            mempool_size: self.mempool_len() as u64,
            blocks_accepted: counters.blocks_accepted,
            blocks_rejected: counters.blocks_rejected,
            txs_admitted: counters.txs_admitted,
            txs_rejected: counters.txs_rejected,
            relay_latency: latency_histogram(
                &counters.relay_latency,
                counters.relay_latency_sum_ms,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_become_cumulative_seconds() {
        let h = latency_histogram(&[(Some(5), 2), (Some(250), 1), (None, 4)], 1500);
        assert_eq!(h.buckets, vec![(0.005, 2), (0.25, 3)]);
        assert_eq!(h.count, 7);
        assert_eq!(h.sum_seconds, 1.5);
    }
}
