//! Peer-to-peer relay and sync over libp2p (TCP + noise + yamux).
//!
//! - **Relay** (gossipsub, one topic for blocks and one for transactions, named after the
//!   genesis): every block the node connects ([`NodeEvent::BlockConnected`], mined or
//!   submitted) and every transaction it admits ([`NodeEvent::TxAdmitted`]) is published;
//!   relayed blocks and transactions go to [`Node::submit_block`] /
//!   [`Node::submit_transaction`] and are forwarded only once the node accepted them. Each
//!   message carries its send time, so the node records the relay latency.
//! - **Sync** (request-response, [`wire::SYNC_PROTOCOL`]): peers exchange their status
//!   (genesis, tip) on connect and every [`P2pConfig::status_interval`]; a node behind its
//!   best peer asks it for headers from its tip (backing off until the headers link to a
//!   block it has), checks their linkage, then fetches the blocks in windows of
//!   [`P2pConfig::window`] and commits each with PSWV ([`Node::submit_window`]), switching to
//!   the sequential path ([`Node::submit_block`]) within [`P2pConfig::near_tip`] blocks of the
//!   peer's tip. A relayed orphan starts a sync from the peer that sent it.
//! - **Peer scores** ([`score`]): malformed messages, broken header chains and invalid blocks
//!   or transactions cost points; an invalid block (bad proof of work, merkle root, double
//!   spend…) or another genesis disconnects the peer and bans it for
//!   [`P2pConfig::ban_duration`]. Message sizes are bounded ([`wire`]).
//!
//! Everything runs on the tokio runtime of the caller of [`spawn`]: one task owns the swarm,
//! node calls that validate or read storage run on `spawn_blocking`, and a sync runs as its
//! own task that talks to the swarm task through commands.

pub mod behaviour;
pub mod score;
mod swarm;
mod sync;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::{identity, Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::service::Node;
use crate::store::KvStore;

#[cfg(doc)]
use crate::service::NodeEvent;

pub use sync::{SyncError, SyncStats};

/// Settings of the p2p layer.
#[derive(Debug, Clone)]
pub struct P2pConfig {
    /// Addresses to listen on (e.g. `/ip4/0.0.0.0/tcp/46657`; port 0 picks a free one).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, and again every [`P2pConfig::status_interval`] while no
    /// connection to them is open.
    pub peers: Vec<Multiaddr>,
    /// The node's identity; a fresh ed25519 key when `None`.
    pub keypair: Option<identity::Keypair>,
    /// Blocks per PSWV sync window (1–256).
    pub window: usize,
    /// Within this many blocks of the best peer's tip, sync goes block by block.
    pub near_tip: u64,
    /// How long a peer that sent an invalid block stays banned.
    pub ban_duration: Duration,
    /// How long a sync request may take.
    pub request_timeout: Duration,
    /// How often peers' statuses are asked again (and lost configured peers dialled again).
    pub status_interval: Duration,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: Vec::new(),
            peers: Vec::new(),
            keypair: None,
            window: 128,
            near_tip: 4,
            ban_duration: Duration::from_secs(600),
            request_timeout: Duration::from_secs(30),
            status_interval: Duration::from_secs(10),
        }
    }
}

/// Why the p2p layer could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The transport or a behaviour could not be set up.
    #[error("p2p setup: {0}")]
    Config(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A dial failed at once (bad address, banned peer).
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The window size is out of range.
    #[error("sync window of {got} blocks, expected 1..={max}")]
    Window {
        /// The configured size.
        got: usize,
        /// The largest allowed.
        max: u32,
    },
    /// A text is not a multiaddress.
    #[error("{text:?} is not a multiaddress: {reason}")]
    Address {
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// The node key file cannot be read, decoded or written.
    #[error("node key {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The p2p task has stopped.
    #[error("the p2p task has stopped")]
    Stopped,
}

/// Parses multiaddresses given as text (`--p2p-listen`, `--peer`, repeatable).
///
/// # Errors
/// [`P2pError::Address`] naming the first text that does not parse.
pub fn parse_multiaddrs<S: AsRef<str>>(texts: &[S]) -> Result<Vec<Multiaddr>, P2pError> {
    texts
        .iter()
        .map(|text| {
            let text = text.as_ref();
            text.parse()
                .map_err(|e: libp2p::multiaddr::Error| P2pError::Address {
                    text: text.to_string(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// The node key kept at `path` (libp2p's protobuf encoding), so that the peer ID survives
/// restarts; a new ed25519 key is written there (readable by the owner only, on Unix) when
/// the file does not exist.
///
/// # Errors
/// [`P2pError::Key`] when the file cannot be read or written, or does not hold a key.
pub fn load_or_create_keypair(path: &Path) -> Result<identity::Keypair, P2pError> {
    let fail = |reason: String| P2pError::Key {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => identity::Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| fail(format!("not a key: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = identity::Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| fail(e.to_string()))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| fail(e.to_string()))?;
            std::io::Write::write_all(&mut file, &bytes).map_err(|e| fail(e.to_string()))?;
            Ok(keypair)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// What the node knows about a connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer.
    pub peer_id: PeerId,
    /// Its last status (`None` until it answered one).
    pub status: Option<wire::Status>,
    /// Whether it subscribed to block relay.
    pub relays: bool,
    /// Its misbehaviour score.
    pub score: u32,
}

/// Requests from a [`P2pHandle`] or from this module's tasks to the swarm task.
enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), P2pError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    IsBanned(PeerId, oneshot::Sender<bool>),
    Internal(swarm::Internal),
    Shutdown,
}

/// The running p2p layer. Dropping it does not stop it: call [`P2pHandle::shutdown`].
#[derive(Debug)]
pub struct P2pHandle {
    local_peer_id: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    peers: Arc<AtomicUsize>,
    sync_counters: Arc<sync::SyncCounters>,
    task: JoinHandle<()>,
}

impl P2pHandle {
    /// This node's peer ID.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Connected peers that answered a status of this chain.
    pub fn peer_count(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// What sync did so far (windows committed with PSWV, blocks taken one by one).
    pub fn sync_stats(&self) -> SyncStats {
        self.sync_counters.snapshot()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// The addresses the node listens on, with the actual ports (after `…/tcp/0`).
    ///
    /// # Errors
    /// [`P2pError::Stopped`] after shutdown.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, P2pError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Dials `addr` (the connection completes in the background).
    ///
    /// # Errors
    /// [`P2pError::Dial`] when the dial cannot start, [`P2pError::Stopped`] after shutdown.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), P2pError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// The connected peers.
    ///
    /// # Errors
    /// [`P2pError::Stopped`] after shutdown.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, P2pError> {
        self.ask(Command::Peers).await
    }

    /// Whether `peer` is banned now.
    ///
    /// # Errors
    /// [`P2pError::Stopped`] after shutdown.
    pub async fn is_banned(&self, peer: PeerId) -> Result<bool, P2pError> {
        self.ask(|tx| Command::IsBanned(peer, tx)).await
    }

    /// Stops the p2p layer: closes every connection and waits for its task to end.
    pub async fn shutdown(self) {
        // A send error means the task already ended.
        let _ = self.commands.send(Command::Shutdown);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "p2p task ended abnormally");
        }
    }
}

/// Starts the p2p layer of `node`: listens, dials [`P2pConfig::peers`], relays and syncs
/// until [`P2pHandle::shutdown`]. Returns once every listen address is bound.
///
/// # Errors
/// [`P2pError::Config`] / [`P2pError::Window`] for bad settings, [`P2pError::Listen`] when an
/// address cannot be bound. Peers that cannot be dialled are only logged.
pub async fn spawn<K: KvStore + 'static>(
    node: Arc<Node<K>>,
    config: P2pConfig,
) -> Result<P2pHandle, P2pError> {
    if config.window == 0 || config.window > wire::MAX_BLOCKS_PER_REQUEST as usize {
        return Err(P2pError::Window {
            got: config.window,
            max: wire::MAX_BLOCKS_PER_REQUEST,
        });
    }
    let keypair = config
        .keypair
        .clone()
        .unwrap_or_else(identity::Keypair::generate_ed25519);
    let local_peer_id = keypair.public().to_peer_id();
    let (commands, receiver) = mpsc::unbounded_channel();
    let peers = Arc::new(AtomicUsize::new(0));
    let sync_counters = Arc::new(sync::SyncCounters::default());
    let driver = swarm::Driver::start(
        node,
        config,
        keypair,
        commands.clone(),
        receiver,
        peers.clone(),
        sync_counters.clone(),
    )
    .await?;
    let task = tokio::spawn(driver.run());
    Ok(P2pHandle {
        local_peer_id,
        commands,
        peers,
        sync_counters,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiaddrs_parse_or_name_the_bad_one() {
        let addrs = parse_multiaddrs(&["/ip4/127.0.0.1/tcp/46657", "/ip6/::1/tcp/0"])
            .expect("valid addresses");
        assert_eq!(addrs.len(), 2);
        assert!(matches!(
            parse_multiaddrs(&["/ip4/127.0.0.1/tcp/1", "127.0.0.1:46657"]),
            Err(P2pError::Address { text, .. }) if text == "127.0.0.1:46657"
        ));
    }

    #[test]
    fn the_node_key_survives_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("node.key");
        let first = load_or_create_keypair(&path).expect("created");
        let again = load_or_create_keypair(&path).expect("read back");
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        std::fs::write(&path, b"garbage").expect("write");
        assert!(matches!(
            load_or_create_keypair(&path),
            Err(P2pError::Key { .. })
        ));
    }
}
