//! The embedded devnet: a full node in this process (RocksDB in a temporary directory, real
//! Tensority proof-of-work checks) paying to a freshly generated key, and the [`WorkSource`]
//! that mines on it through the node's own `get-work` / `submit-work`.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use bystack_engine::consensus::Network;
use bystack_engine::devnet::Wallet;
use bystack_engine::genesis::genesis_block;
use bystack_engine::validation::TensorityPow;
use bystack_node::chain::{BlockStatus, Chain, ChainConfig};
use bystack_node::service::{Node, NodeConfig, NodeError, NodeEvent};
use bystack_node::store::{RocksKv, RocksOptions, Store};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use crate::work::{
    block_share_target, Job, Share, SourceError, SourceEvent, WorkSource, NONCE_LIMIT,
};

/// Jobs remembered for late shares.
const RECENT_JOBS: usize = 8;

/// The key the embedded node pays its coinbases to.
pub struct MiningKey {
    /// The 32 random bytes the key was derived from (keep them to spend the rewards).
    pub seed: [u8; 32],
    /// The P2WPKH control program.
    pub program: Vec<u8>,
    /// Its devnet address (`dm1q…`).
    pub address: String,
}

impl MiningKey {
    /// A fresh key from the OS's random source: an ed25519 key (the devnet wallet's first key
    /// of a random wallet seed) and its P2WPKH program.
    ///
    /// # Errors
    /// [`SourceError::Node`] when `/dev/urandom` cannot be read or the address not encoded.
    pub fn generate() -> Result<Self, SourceError> {
        let mut seed = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .map_err(|e| SourceError::Node(format!("reading /dev/urandom: {e}")))?;
        Self::from_seed(seed)
    }

    /// The key of a given seed.
    ///
    /// # Errors
    /// [`SourceError::Node`] if the address cannot be encoded.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, SourceError> {
        let program = Wallet::new(&seed).p2wpkh_program(0);
        let address = bystack_node::address::encode_address(Network::Devnet, &program)
            .map_err(|e| SourceError::Node(format!("encoding the mining address: {e}")))?;
        Ok(Self {
            seed,
            program,
            address,
        })
    }
}

/// Opens a devnet node over RocksDB in `dir` paying to `program`, checking proofs of work with
/// the CPU backend on `pow_threads` threads.
///
/// # Errors
/// [`SourceError::Node`] when the store, the chain or the backend cannot be opened.
pub fn open_devnet_node(
    dir: &Path,
    program: Vec<u8>,
    pow_threads: usize,
) -> Result<Arc<Node<RocksKv>>, SourceError> {
    let genesis = genesis_block(Network::Devnet);
    let pow = TensorityPow::open("cpu", pow_threads)
        .map_err(|e| SourceError::Node(format!("proof-of-work backend: {e}")))?;
    let store = Store::open_rocksdb(dir, RocksOptions::default())
        .map_err(|e| SourceError::Node(format!("opening {}: {e}", dir.display())))?;
    let chain = Chain::open(store, &genesis, Arc::new(pow), ChainConfig::default())
        .map_err(|e| SourceError::Node(format!("opening the chain: {e}")))?;
    Ok(Node::new(
        chain,
        NodeConfig {
            mining_program: Some(program),
            ..NodeConfig::new(Network::Devnet)
        },
    ))
}

/// Mines on an in-process [`Node`].
pub struct EmbeddedSource {
    node: Arc<Node<RocksKv>>,
}

impl EmbeddedSource {
    /// A source over `node`.
    pub fn new(node: Arc<Node<RocksKv>>) -> Self {
        Self { node }
    }
}

const ENDPOINT: &str = "embedded devnet";

impl WorkSource for EmbeddedSource {
    fn name(&self) -> String {
        ENDPOINT.to_string()
    }

    fn run(
        self: Box<Self>,
        jobs: watch::Sender<Option<Job>>,
        shares: mpsc::Receiver<Share>,
        events: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        run_embedded(self.node, jobs, shares, events, shutdown).boxed()
    }
}

async fn run_embedded(
    node: Arc<Node<RocksKv>>,
    jobs: watch::Sender<Option<Job>>,
    mut shares: mpsc::Receiver<Share>,
    events: mpsc::Sender<SourceEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let mut node_events = node.subscribe();
    let mut recent: VecDeque<Job> = VecDeque::new();
    let _ = events
        .send(SourceEvent::Connected {
            endpoint: ENDPOINT.to_string(),
        })
        .await;
    publish(&node, &jobs, &mut recent).await?;
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return Ok(());
                }
            }
            event = node_events.recv() => match event {
                Ok(NodeEvent::TipChanged { .. }) | Err(RecvError::Lagged(_)) => {
                    publish(&node, &jobs, &mut recent).await?;
                }
                Ok(_) => {}
                Err(RecvError::Closed) => return Err(SourceError::Node("event stream closed".into())),
            },
            share = shares.recv() => {
                let Some(share) = share else { return Ok(()) };
                let event = submit(&node, &recent, share).await?;
                let _ = events.send(event).await;
            }
        }
    }
}

/// Fetches work and publishes it as a new job when its parent differs from the current one.
async fn publish(
    node: &Arc<Node<RocksKv>>,
    jobs: &watch::Sender<Option<Job>>,
    recent: &mut VecDeque<Job>,
) -> Result<(), SourceError> {
    let worker = node.clone();
    let work = tokio::task::spawn_blocking(move || worker.get_work())
        .await
        .map_err(|e| SourceError::Node(format!("get-work task: {e}")))?
        .map_err(|e| SourceError::Node(format!("get-work: {e}")))?;
    if recent
        .back()
        .is_some_and(|j| j.header.previous_block_hash == work.header.previous_block_hash)
    {
        return Ok(());
    }
    let job = Job {
        id: format!(
            "{}-{}",
            work.header.height,
            &work.header.previous_block_hash.to_hex()[..8]
        ),
        share_target: block_share_target(ENDPOINT, work.header.bits)?,
        header: work.header,
        seed: work.seed,
        nonce_start: 0,
        nonce_end: NONCE_LIMIT,
        clean: true,
    };
    recent.push_back(job.clone());
    while recent.len() > RECENT_JOBS {
        recent.pop_front();
    }
    jobs.send_replace(Some(job));
    Ok(())
}

/// Submits a share's header; the node's verdict as an event.
async fn submit(
    node: &Arc<Node<RocksKv>>,
    recent: &VecDeque<Job>,
    share: Share,
) -> Result<SourceEvent, SourceError> {
    let Some(job) = recent.iter().find(|j| j.id == share.job_id) else {
        return Ok(SourceEvent::Stale {
            job_id: share.job_id,
        });
    };
    let header = job.solved_header(share.nonce);
    let worker = node.clone();
    let verdict = tokio::task::spawn_blocking(move || worker.submit_work(&header))
        .await
        .map_err(|e| SourceError::Node(format!("submit-work task: {e}")))?;
    Ok(match verdict {
        Ok(outcome) => match outcome.status {
            BlockStatus::MainChain | BlockStatus::SideChain => SourceEvent::Accepted {
                job_id: share.job_id,
                block: true,
            },
            other => SourceEvent::Rejected {
                job_id: share.job_id,
                reason: format!("block status {other:?}"),
            },
        },
        Err(NodeError::StaleWork) => SourceEvent::Stale {
            job_id: share.job_id,
        },
        Err(e) => SourceEvent::Rejected {
            job_id: share.job_id,
            reason: e.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_give_devnet_addresses_that_decode_to_their_program() {
        let key = MiningKey::generate().unwrap();
        assert!(key.address.starts_with("dm1q"), "{}", key.address);
        let decoded = bystack_node::address::decode_address(Network::Devnet, &key.address).unwrap();
        assert_eq!(decoded, key.program);
        assert_eq!(key.program.len(), 22);
        let other = MiningKey::generate().unwrap();
        assert_ne!(other.seed, key.seed, "two fresh keys");
        let again = MiningKey::from_seed(key.seed).unwrap();
        assert_eq!(again.address, key.address);
    }
}
