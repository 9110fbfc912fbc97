//! Running a node from [`Settings`]: the chain database on RocksDB under the data directory,
//! the service, and the front-ends the settings ask for (HTTP API, libp2p relay and sync, BTM
//! stratum server).
//! The `bystack-node` binary is [`start`], then Ctrl-C or SIGTERM, then [`RunningNode::stop`];
//! the process tests use the same path.
//!
//! Data directory layout: `chain/` (RocksDB), `p2p.key` (the node's libp2p identity, created
//! on first start so that its peer ID stays the same across restarts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bystack_engine::genesis::genesis_block;
use bystack_engine::validation::{PowCheck, TensorityPow};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::address::parse_mining_target;
use crate::chain::{Chain, ChainConfig};
use crate::config::{MiningPayee, Settings};
use crate::p2p::{self, P2pConfig, P2pHandle};
use crate::service::{Node, NodeConfig};
use crate::store::{RocksKv, RocksOptions, Store};
use crate::stratum::{StratumConfig, StratumServer};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The proof-of-work backend could not be opened.
    #[error("--pow-backend {name}: {message}")]
    PowBackend {
        /// The backend asked for.
        name: String,
        /// Why it failed.
        message: String,
    },
    /// The mining address or program is unusable.
    #[error("mining payee: {0}")]
    Mining(String),
    /// The chain database could not be opened.
    #[error("chain database: {0}")]
    Chain(#[from] crate::chain::ChainError),
    /// The database could not be opened.
    #[error("chain database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The API address could not be bound.
    #[error("API address {addr}: {source}")]
    Api {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A startup task failed unexpectedly.
    #[error("internal: {0}")]
    Internal(String),
    /// The stratum address could not be bound.
    #[error("stratum address {addr}: {source}")]
    StratumBind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stratum server could not start.
    #[error("stratum: {0}")]
    Stratum(#[from] crate::stratum::StratumError),
    /// The p2p layer could not start.
    #[error("p2p: {0}")]
    P2p(#[from] p2p::P2pError),
}

/// A started node and its front-ends.
pub struct RunningNode {
    /// The service.
    pub node: Arc<Node<RocksKv>>,
    /// The HTTP API's bound address, when served.
    pub api_addr: Option<SocketAddr>,
    /// The p2p layer, when any listen address or peer was configured.
    pub p2p: Option<P2pHandle>,
    /// The stratum server and its bound address, when served.
    pub stratum: Option<(Arc<StratumServer<RocksKv>>, SocketAddr)>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<std::io::Result<()>>)>,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode")
            .field("tip", &self.node.tip())
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

/// Opens the chain under `settings.data_dir` and starts the front-ends.
///
/// # Errors
/// [`RunError`] when anything cannot start; what started before is shut down again.
pub async fn start(settings: &Settings) -> Result<RunningNode, RunError> {
    let pow = open_pow(&settings.pow_backend)?;
    start_with(settings, pow, ChainConfig::default()).await
}

/// [`start`] with a given proof-of-work checker and chain settings instead of
/// `settings.pow_backend` and the defaults (tests replaying generated chains: a stopped clock,
/// proof of work skipped).
///
/// # Errors
/// As [`start`].
pub async fn start_with(
    settings: &Settings,
    pow: Arc<dyn PowCheck + Send + Sync>,
    chain_config: ChainConfig,
) -> Result<RunningNode, RunError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| RunError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    let network = settings.network;
    let mining_program = match &settings.mining {
        None => None,
        Some(MiningPayee::Address(address)) => Some(
            parse_mining_target(network, address).map_err(|e| RunError::Mining(e.to_string()))?,
        ),
        Some(MiningPayee::Program(program)) => Some(program.clone()),
    };
    let chain_dir = settings.data_dir.join("chain");
    let genesis = genesis_block(network);
    let chain = tokio::task::spawn_blocking(move || -> Result<_, RunError> {
        let store = Store::open_rocksdb(&chain_dir, RocksOptions::default())?;
        Ok(Chain::open(store, &genesis, pow, chain_config)?)
    })
    .await
    .map_err(|e| RunError::Internal(format!("opening the chain: {e}")))??;
    let node = Node::new(chain, NodeConfig::new(network));
    if let Some(program) = mining_program {
        node.set_mining_program(program)
            .map_err(|e| RunError::Mining(e.to_string()))?;
    }
    let tip = node.tip();
    tracing::info!(
        network = network.params().name,
        height = tip.height,
        tip = %tip.hash,
        "chain opened"
    );

    let (stop, stopped) = watch::channel(false);
    let mut running = RunningNode {
        node: node.clone(),
        api_addr: None,
        p2p: None,
        stratum: None,
        stop,
        tasks: Vec::new(),
    };
    if let Some(addr) = settings.api {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(source) => {
                running.stop().await;
                return Err(RunError::Api { addr, source });
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        running.tasks.push((
            "HTTP API",
            tokio::spawn(crate::api::serve(node.clone(), listener, shutdown)),
        ));
        running.api_addr = Some(bound);
        tracing::info!(addr = %bound, "HTTP API listening");
    }
    if let Some(addr) = settings.stratum {
        let config = StratumConfig {
            target_share_interval: Duration::from_secs(settings.stratum_share_seconds),
            ..StratumConfig::default()
        };
        let server = match StratumServer::new(node.clone(), config) {
            Ok(server) => server,
            Err(e) => {
                running.stop().await;
                return Err(e.into());
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(source) => {
                running.stop().await;
                return Err(RunError::StratumBind { addr, source });
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        running.tasks.push((
            "stratum server",
            tokio::spawn(server.clone().serve(listener, shutdown)),
        ));
        running.stratum = Some((server, bound));
        tracing::info!(addr = %bound, "stratum listening");
    }
    if !settings.listen.is_empty() || !settings.peers.is_empty() {
        let keypair = match p2p::load_or_create_keypair(&settings.data_dir.join("p2p.key")) {
            Ok(keypair) => keypair,
            Err(e) => {
                running.stop().await;
                return Err(e.into());
            }
        };
        let config = P2pConfig {
            listen: settings.listen.clone(),
            peers: settings.peers.clone(),
            keypair: Some(keypair),
            window: settings.sync_window,
            ..P2pConfig::default()
        };
        match p2p::spawn(node.clone(), config).await {
            Ok(handle) => {
                tracing::info!(peer_id = %handle.local_peer_id(), "p2p started");
                running.p2p = Some(handle);
            }
            Err(e) => {
                running.stop().await;
                return Err(e.into());
            }
        }
    }
    Ok(running)
}

impl RunningNode {
    /// Stops the front-ends (requests in flight finish) and closes the database.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(p2p) = self.p2p.take() {
            p2p.shutdown().await;
        }
        for (name, task) in self.tasks.drain(..) {
            match task.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "{name} stopped with an error"),
                Err(e) => tracing::warn!(error = %e, "{name} task failed"),
                Ok(Ok(())) => {}
            }
        }
    }
}

/// The proof-of-work checker for `name` (`auto`, `cpu`, `reference`, a device backend, …).
fn open_pow(name: &str) -> Result<Arc<dyn PowCheck + Send + Sync>, RunError> {
    TensorityPow::open(name, 0)
        .map(|pow| Arc::new(pow) as Arc<dyn PowCheck + Send + Sync>)
        .map_err(|e| RunError::PowBackend {
            name: name.to_string(),
            message: e.to_string(),
        })
}
