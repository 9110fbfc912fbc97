//! The task that owns the swarm: it reacts to network events, node events, commands from the
//! handle, and the results of the blocking work and sync tasks it started.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bystack_engine::{Block, Hash, Transaction};
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identity, Multiaddr, PeerId, Swarm};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::behaviour::{build_swarm, Behaviour, Event as BehaviourEvent, Topics};
use super::score::{Misbehaviour, PeerScores, Verdict};
use super::sync::{
    self, invalid_block_error, Requester, SyncCounters, SyncError, SyncPlan, SyncSummary,
};
use super::wire::{self, Status, SyncRequest, SyncResponse, MAX_RESPONSE_BYTES};
use super::{Command, P2pConfig, P2pError, PeerInfo};
use crate::chain::{BlockStatus, ProcessOutcome, Tip};
use crate::mempool::MempoolError;
use crate::service::{Node, NodeError, NodeEvent};
use crate::store::KvStore;

/// How long [`Driver::start`] waits for the listen addresses to be bound.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Sync responses built at once for one peer, at most.
const MAX_SERVING_PER_PEER: usize = 4;
/// Encoded bytes of a block header and transaction count, at most (for response sizing).
const BLOCK_OVERHEAD_BYTES: usize = 256;

/// Results that the swarm task's helpers send back to it.
pub(super) enum Internal {
    /// A sync task's request to its peer.
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, String>>,
    },
    /// A response built on a blocking thread.
    Respond {
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    },
    /// The node's verdict on a relayed block.
    Block {
        source: PeerId,
        message_id: MessageId,
        height: u64,
        result: Result<ProcessOutcome, NodeError>,
    },
    /// The node's verdict on a relayed transaction.
    Transaction {
        source: PeerId,
        message_id: MessageId,
        result: Result<Hash, NodeError>,
    },
    /// A sync task ended.
    SyncFinished {
        peer: PeerId,
        result: Result<SyncSummary, SyncError>,
    },
    /// The node's tip, read after missed events.
    Tip(Tip),
}

/// What an outbound request was for.
enum Pending {
    /// A status exchange started by this task.
    Status,
    /// A sync task's request.
    Sync(oneshot::Sender<Result<SyncResponse, String>>),
}

/// A connected peer.
#[derive(Debug, Default)]
struct PeerState {
    /// Its last status.
    status: Option<Status>,
    /// Whether it subscribed to the block topic.
    relays: bool,
    /// Our tip when a sync from it last made no progress: it is not asked again until one of
    /// the two tips moves.
    stalled_at: Option<(Hash, Hash)>,
}

/// Counts the responses being built for each peer, up to [`MAX_SERVING_PER_PEER`].
#[derive(Debug, Default)]
struct ServingLimit {
    in_flight: HashMap<PeerId, usize>,
}

impl ServingLimit {
    /// Takes a slot for `peer`; false when it has none left.
    fn try_acquire(&mut self, peer: PeerId) -> bool {
        let n = self.in_flight.entry(peer).or_insert(0);
        if *n >= MAX_SERVING_PER_PEER {
            return false;
        }
        *n += 1;
        true
    }

    /// Gives `peer`'s slot back.
    fn release(&mut self, peer: &PeerId) {
        if let Some(n) = self.in_flight.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(peer);
            }
        }
    }
}

/// The swarm task's state.
pub(super) struct Driver<K: KvStore> {
    node: Arc<Node<K>>,
    config: P2pConfig,
    swarm: Swarm<Behaviour>,
    topics: Topics,
    genesis: Hash,
    tip: Tip,
    commands: mpsc::UnboundedSender<Command>,
    receiver: mpsc::UnboundedReceiver<Command>,
    events: Option<broadcast::Receiver<NodeEvent>>,
    peers: HashMap<PeerId, PeerState>,
    peer_count: Arc<AtomicUsize>,
    sync_counters: Arc<SyncCounters>,
    scores: PeerScores,
    pending: HashMap<OutboundRequestId, Pending>,
    /// Responses being built, per peer.
    serving: ServingLimit,
    /// The address of every open connection this node dialled.
    dialled: HashMap<ConnectionId, Multiaddr>,
    sync: Option<(PeerId, JoinHandle<()>)>,
}

impl<K: KvStore + 'static> Driver<K> {
    /// Builds the swarm, binds every listen address and dials the configured peers.
    pub(super) async fn start(
        node: Arc<Node<K>>,
        config: P2pConfig,
        keypair: identity::Keypair,
        commands: mpsc::UnboundedSender<Command>,
        receiver: mpsc::UnboundedReceiver<Command>,
        peer_count: Arc<AtomicUsize>,
        sync_counters: Arc<SyncCounters>,
    ) -> Result<Self, P2pError> {
        let genesis = node.genesis_hash();
        let topics = Topics::new(&genesis);
        let mut swarm = build_swarm(keypair, &topics, config.request_timeout)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| P2pError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        wait_for_listeners(&mut swarm, config.listen.len()).await?;
        node.metrics().set_listening(!config.listen.is_empty());
        for addr in &config.peers {
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial peer");
            }
        }
        let events = node.subscribe();
        let tip = {
            let node = node.clone();
            tokio::task::spawn_blocking(move || node.tip())
                .await
                .map_err(|e| P2pError::Config(format!("reading the tip: {e}")))?
        };
        Ok(Driver {
            scores: PeerScores::new(config.ban_duration),
            node,
            config,
            swarm,
            topics,
            genesis,
            tip,
            commands,
            receiver,
            events: Some(events),
            peers: HashMap::new(),
            peer_count,
            sync_counters,
            pending: HashMap::new(),
            serving: ServingLimit::default(),
            dialled: HashMap::new(),
            sync: None,
        })
    }

    /// Runs until [`Command::Shutdown`].
    pub(super) async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.config.status_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.receiver.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                event = next_event(&mut self.events) => self.on_node_event(event),
                _ = ticker.tick() => self.on_tick(),
            }
        }
        if let Some((_, task)) = self.sync.take() {
            task.abort();
        }
        self.node.metrics().set_peers(0);
        self.node.metrics().set_listening(false);
        self.peer_count.store(0, Ordering::Relaxed);
        tracing::info!("p2p stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Dial(addr, reply) => {
                let result = self.swarm.dial(addr.clone()).map_err(|e| P2pError::Dial {
                    addr,
                    reason: e.to_string(),
                });
                let _ = reply.send(result);
            }
            Command::Peers(reply) => {
                let peers = self
                    .peers
                    .iter()
                    .map(|(peer, state)| PeerInfo {
                        peer_id: *peer,
                        status: state.status,
                        relays: state.relays,
                        score: self.scores.score(peer),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::IsBanned(peer, reply) => {
                let _ = reply.send(self.scores.is_banned(&peer, Instant::now()));
            }
            Command::Internal(internal) => self.on_internal(internal),
            // Handled by the loop.
            Command::Shutdown => {}
        }
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::Request {
                peer,
                request,
                reply,
            } => {
                if !self.swarm.is_connected(&peer) {
                    let _ = reply.send(Err("not connected".to_string()));
                    return;
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, Pending::Sync(reply));
            }
            Internal::Respond {
                peer,
                channel,
                response,
            } => {
                self.serving.release(&peer);
                // The peer may have gone: nothing to do then.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response);
            }
            Internal::Block {
                source,
                message_id,
                height,
                result,
            } => self.on_block_verdict(source, message_id, height, result),
            Internal::Transaction {
                source,
                message_id,
                result,
            } => self.on_tx_verdict(source, message_id, result),
            Internal::SyncFinished { peer, result } => self.on_sync_finished(peer, result),
            Internal::Tip(tip) => {
                self.tip = tip;
                self.maybe_sync();
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = endpoint {
                    self.dialled.insert(connection_id, address);
                }
                if self.scores.is_banned(&peer_id, Instant::now()) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if num_established.get() == 1 {
                    tracing::debug!(peer = %peer_id, "connected");
                    self.peers.insert(peer_id, PeerState::default());
                    self.send_status(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.dialled.remove(&connection_id);
                if num_established > 0 {
                    return;
                }
                tracing::debug!(peer = %peer_id, "disconnected");
                self.peers.remove(&peer_id);
                self.scores.forget(&peer_id);
                self.update_peer_count();
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                if let libp2p::identify::Event::Received { peer_id, info, .. } = *event {
                    tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    /// Adds a penalty; a peer that crossed the limit is disconnected and banned.
    fn penalise(&mut self, peer: PeerId, what: Misbehaviour) {
        match self.scores.penalise(peer, what, Instant::now()) {
            Verdict::Keep(score) => {
                tracing::info!(%peer, ?what, score, "peer penalised");
            }
            Verdict::Ban(_) => {
                tracing::warn!(%peer, ?what, "peer banned");
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                let _ = self.swarm.disconnect_peer_id(peer);
                self.peers.remove(&peer);
                self.update_peer_count();
            }
        }
    }

    fn update_peer_count(&mut self) {
        let count = self.peers.values().filter(|p| p.status.is_some()).count();
        self.peer_count.store(count, Ordering::Relaxed);
        self.node.metrics().set_peers(count as u64);
        self.node
            .metrics()
            .set_best_peer_height(self.best_peer_height());
    }

    fn our_status(&self) -> Status {
        Status {
            genesis: self.genesis,
            tip_height: self.tip.height,
            tip_hash: self.tip.hash,
        }
    }

    fn send_status(&mut self, peer: PeerId) {
        let request = SyncRequest::Status(self.our_status());
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending.insert(id, Pending::Status);
    }

    /// A peer's status, from its request or its response.
    fn on_status(&mut self, peer: PeerId, status: Status) {
        if status.genesis != self.genesis {
            tracing::info!(%peer, genesis = %status.genesis, "peer of another chain");
            self.penalise(peer, Misbehaviour::WrongGenesis);
            return;
        }
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        state.status = Some(status);
        self.update_peer_count();
        self.maybe_sync();
    }

    /// The highest tip any peer announced, leaving out peers whose chain could not be synced
    /// (a peer announcing a tip it does not serve must not silence this node's relay).
    fn best_peer_height(&self) -> u64 {
        self.peers
            .values()
            .filter(|p| p.stalled_at.is_none())
            .filter_map(|p| p.status.map(|s| s.tip_height))
            .max()
            .unwrap_or(0)
    }

    /// Starts a sync from the best peer when one is ahead and none runs.
    fn maybe_sync(&mut self) {
        if self.sync.is_some() {
            return;
        }
        let tip = self.tip;
        let best = self
            .peers
            .iter()
            .filter_map(|(peer, state)| {
                let status = state.status?;
                let stalled = state.stalled_at == Some((tip.hash, status.tip_hash));
                (status.tip_height > tip.height && !stalled).then_some((*peer, status.tip_height))
            })
            .max_by_key(|&(_, height)| height);
        if let Some((peer, target)) = best {
            self.start_sync(peer, target);
        }
    }

    fn start_sync(&mut self, peer: PeerId, target: u64) {
        let requester = Requester {
            peer,
            genesis: self.genesis,
            commands: self.commands.clone(),
        };
        let plan = SyncPlan {
            target,
            window: self.config.window,
            near_tip: self.config.near_tip,
            counters: self.sync_counters.clone(),
        };
        let node = self.node.clone();
        let commands = self.commands.clone();
        let task = tokio::spawn(async move {
            let result = sync::run(node, requester, plan).await;
            let _ = commands.send(Command::Internal(Internal::SyncFinished { peer, result }));
        });
        self.sync = Some((peer, task));
    }

    fn on_sync_finished(&mut self, peer: PeerId, result: Result<SyncSummary, SyncError>) {
        self.sync = None;
        let progressed = match &result {
            Ok(summary) => {
                tracing::info!(%peer, accepted = summary.accepted, height = summary.tip.height, "sync done");
                self.tip = summary.tip;
                summary.accepted > 0
            }
            Err(error) => {
                tracing::warn!(%peer, %error, "sync failed");
                if let Some(what) = error.misbehaviour() {
                    self.penalise(peer, what);
                }
                false
            }
        };
        if !progressed {
            let tip = self.tip.hash;
            if let Some(state) = self.peers.get_mut(&peer) {
                state.stalled_at = state.status.map(|s| (tip, s.tip_hash));
            }
        }
        self.maybe_sync();
    }

    fn on_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => match self.pending.remove(&request_id) {
                    Some(Pending::Status) => match response {
                        SyncResponse::Status(status) => self.on_status(peer, status),
                        _ => self.penalise(peer, Misbehaviour::Malformed),
                    },
                    Some(Pending::Sync(reply)) => {
                        let _ = reply.send(Ok(response));
                    }
                    None => {}
                },
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "request failed");
                if let Some(Pending::Sync(reply)) = self.pending.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
                match error {
                    OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        self.penalise(peer, Misbehaviour::Malformed)
                    }
                    OutboundFailure::Timeout => self.penalise(peer, Misbehaviour::Unresponsive),
                    _ => {}
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound request failed");
                if let request_response::InboundFailure::Io(e) = &error {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        self.penalise(peer, Misbehaviour::Malformed);
                    }
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        match request {
            SyncRequest::Status(status) => {
                let ours = SyncResponse::Status(self.our_status());
                let _ = self.swarm.behaviour_mut().sync.send_response(channel, ours);
                self.on_status(peer, status);
            }
            SyncRequest::Headers { from_height, max } => {
                self.respond_blocking(peer, channel, move |node| {
                    SyncResponse::Headers(
                        node.main_headers(from_height, max as usize)
                            .unwrap_or_else(|e| {
                                tracing::warn!(error = %e, "cannot read headers");
                                Vec::new()
                            }),
                    )
                });
            }
            SyncRequest::Blocks { from_height, max } => {
                self.respond_blocking(peer, channel, move |node| {
                    let blocks = node
                        .main_blocks(from_height, max as usize)
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "cannot read blocks");
                            Vec::new()
                        });
                    SyncResponse::Blocks(fit_response(blocks))
                });
            }
        }
    }

    /// Builds a response on a blocking thread and sends it back through the swarm task. A
    /// peer with [`MAX_SERVING_PER_PEER`] responses in the making gets none (its request
    /// fails), so that no peer can keep every blocking thread reading the database.
    fn respond_blocking(
        &mut self,
        peer: PeerId,
        channel: ResponseChannel<SyncResponse>,
        build: impl FnOnce(&Node<K>) -> SyncResponse + Send + 'static,
    ) {
        if !self.serving.try_acquire(peer) {
            tracing::debug!(%peer, "too many requests in flight: one dropped");
            return;
        }
        let node = self.node.clone();
        let commands = self.commands.clone();
        tokio::task::spawn_blocking(move || {
            let response = build(&node);
            let _ = commands.send(Command::Internal(Internal::Respond {
                peer,
                channel,
                response,
            }));
        });
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let (source, message_id, message) = match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => (propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                if topic == self.topics.blocks.hash() {
                    if let Some(state) = self.peers.get_mut(&peer_id) {
                        state.relays = true;
                    }
                }
                return;
            }
            _ => return,
        };
        if message.topic == self.topics.blocks.hash() {
            match wire::decode_block_gossip(&message.data) {
                Ok(envelope) => {
                    self.observe_latency(envelope.sent_at_micros);
                    self.submit_relayed_block(source, message_id, envelope.item);
                }
                Err(error) => {
                    tracing::info!(peer = %source, %error, "malformed block message");
                    self.report(&message_id, &source, MessageAcceptance::Reject);
                    self.penalise(source, Misbehaviour::Malformed);
                }
            }
        } else if message.topic == self.topics.transactions.hash() {
            match wire::decode_tx_gossip(&message.data) {
                Ok(envelope) => self.submit_relayed_tx(source, message_id, envelope.item),
                Err(error) => {
                    tracing::info!(peer = %source, %error, "malformed transaction message");
                    self.report(&message_id, &source, MessageAcceptance::Reject);
                    self.penalise(source, Misbehaviour::Malformed);
                }
            }
        } else {
            self.report(&message_id, &source, MessageAcceptance::Ignore);
        }
    }

    fn observe_latency(&self, sent_at_micros: u64) {
        let latency = wire::now_micros().saturating_sub(sent_at_micros);
        self.node
            .metrics()
            .observe_relay_latency(Duration::from_micros(latency));
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }

    fn submit_relayed_block(&self, source: PeerId, message_id: MessageId, block: Block) {
        let node = self.node.clone();
        let commands = self.commands.clone();
        let height = block.header.height;
        tokio::task::spawn_blocking(move || {
            let result = node.submit_block(block);
            let _ = commands.send(Command::Internal(Internal::Block {
                source,
                message_id,
                height,
                result,
            }));
        });
    }

    fn submit_relayed_tx(&self, source: PeerId, message_id: MessageId, tx: Transaction) {
        let node = self.node.clone();
        let commands = self.commands.clone();
        tokio::task::spawn_blocking(move || {
            let result = node.submit_transaction(tx);
            let _ = commands.send(Command::Internal(Internal::Transaction {
                source,
                message_id,
                result,
            }));
        });
    }

    fn on_block_verdict(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        height: u64,
        result: Result<ProcessOutcome, NodeError>,
    ) {
        match result {
            Ok(outcome) => match outcome.status {
                BlockStatus::MainChain | BlockStatus::SideChain => {
                    self.report(&message_id, &source, MessageAcceptance::Accept);
                }
                BlockStatus::Orphan => {
                    self.report(&message_id, &source, MessageAcceptance::Ignore);
                    // The sender has the parents: learn that it is at least this high, and
                    // fetch them from it.
                    if let Some(status) = self
                        .peers
                        .get_mut(&source)
                        .and_then(|state| state.status.as_mut())
                    {
                        status.tip_height = status.tip_height.max(height);
                    }
                    self.update_peer_count();
                    if self.sync.is_none() {
                        tracing::debug!(peer = %source, height, "orphan: syncing from its sender");
                        self.start_sync(source, height);
                    }
                }
                BlockStatus::AlreadyKnown => {
                    self.report(&message_id, &source, MessageAcceptance::Ignore);
                }
            },
            Err(error) => {
                if invalid_block_error(&error).is_some() {
                    tracing::warn!(peer = %source, %error, "invalid relayed block");
                    self.report(&message_id, &source, MessageAcceptance::Reject);
                    self.penalise(source, Misbehaviour::InvalidBlock);
                } else {
                    tracing::warn!(%error, "cannot process a relayed block");
                    self.report(&message_id, &source, MessageAcceptance::Ignore);
                }
            }
        }
    }

    fn on_tx_verdict(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        result: Result<Hash, NodeError>,
    ) {
        let invalid = match &result {
            Ok(_) => {
                self.report(&message_id, &source, MessageAcceptance::Accept);
                return;
            }
            Err(NodeError::Mempool(e)) => matches!(
                e,
                MempoolError::Invalid { .. } | MempoolError::Coinbase { .. }
            ),
            Err(_) => false,
        };
        if invalid {
            self.report(&message_id, &source, MessageAcceptance::Reject);
            self.penalise(source, Misbehaviour::InvalidTransaction);
        } else {
            // Already pooled, conflicting or not yet connectable here: not the sender's fault.
            self.report(&message_id, &source, MessageAcceptance::Ignore);
        }
    }

    fn on_node_event(&mut self, event: Result<NodeEvent, broadcast::error::RecvError>) {
        match event {
            Ok(NodeEvent::BlockConnected { block, height, .. }) => {
                // Blocks far below what peers already have (a sync in progress) are not news.
                if height + self.config.near_tip >= self.best_peer_height() {
                    match wire::encode_block_gossip(&block, wire::now_micros()) {
                        Ok(data) => self.publish(true, data),
                        Err(error) => tracing::warn!(%error, "cannot relay block"),
                    }
                }
            }
            Ok(NodeEvent::TipChanged { tip }) => self.tip = tip,
            Ok(NodeEvent::TxAdmitted { tx, .. }) => {
                match wire::encode_tx_gossip(&tx.data, wire::now_micros()) {
                    Ok(data) => self.publish(false, data),
                    Err(error) => tracing::warn!(%error, "cannot relay transaction"),
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "missed node events: reading the tip");
                let node = self.node.clone();
                let commands = self.commands.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = commands.send(Command::Internal(Internal::Tip(node.tip())));
                });
            }
            Err(broadcast::error::RecvError::Closed) => self.events = None,
        }
    }

    fn publish(&mut self, block: bool, data: Vec<u8>) {
        let topic = if block {
            self.topics.blocks.clone()
        } else {
            self.topics.transactions.clone()
        };
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) => {}
            // Received from a peer before (then it was forwarded), or nobody to tell.
            Err(PublishError::Duplicate)
            | Err(PublishError::NoPeersSubscribedToTopic)
            | Err(PublishError::AllQueuesFull(_)) => {}
            Err(error) => tracing::warn!(%error, "cannot publish"),
        }
    }

    fn on_tick(&mut self) {
        for peer in self.scores.expire_bans(Instant::now()) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.send_status(peer);
        }
        self.redial();
    }

    /// Dials again the configured peers that this node is not connected to (they restarted,
    /// or were not up yet).
    fn redial(&mut self) {
        let missing: Vec<Multiaddr> = self
            .config
            .peers
            .iter()
            .filter(|addr| !self.dialled.values().any(|a| a == *addr))
            .cloned()
            .collect();
        for addr in missing {
            tracing::debug!(%addr, "dialling a configured peer again");
            if let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, error = %e, "cannot dial peer");
            }
        }
    }
}

/// The next node event, or never once the channel closed.
async fn next_event(
    events: &mut Option<broadcast::Receiver<NodeEvent>>,
) -> Result<NodeEvent, broadcast::error::RecvError> {
    match events {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Drives the swarm until `count` listen addresses are bound.
async fn wait_for_listeners(swarm: &mut Swarm<Behaviour>, count: usize) -> Result<(), P2pError> {
    let mut bound = 0;
    let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
    while bound < count {
        let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
            .await
            .map_err(|_| P2pError::Config("listen addresses not bound in time".to_string()))?;
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                bound += 1;
            }
            SwarmEvent::ListenerError { error, .. } => {
                return Err(P2pError::Config(format!("listener: {error}")));
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                let addr = addresses
                    .into_iter()
                    .next()
                    .unwrap_or_else(Multiaddr::empty);
                let reason = match reason {
                    Ok(()) => "closed".to_string(),
                    Err(e) => e.to_string(),
                };
                return Err(P2pError::Listen { addr, reason });
            }
            _ => {}
        }
    }
    Ok(())
}

/// Cuts `blocks` so that the response stays under [`MAX_RESPONSE_BYTES`] (one block at
/// least: a single block is never above [`wire::MAX_BLOCK_BYTES`]).
fn fit_response(mut blocks: Vec<Block>) -> Vec<Block> {
    let mut total = 0usize;
    let mut keep = 0;
    for block in &blocks {
        let size = BLOCK_OVERHEAD_BYTES
            + block
                .transactions
                .iter()
                .map(|tx| usize::try_from(tx.serialized_size).unwrap_or(usize::MAX))
                .fold(0usize, usize::saturating_add);
        total = total.saturating_add(size);
        if keep > 0 && total > MAX_RESPONSE_BYTES {
            break;
        }
        keep += 1;
    }
    blocks.truncate(keep);
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_a_bounded_number_of_responses_at_once() {
        let mut limit = ServingLimit::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        for _ in 0..MAX_SERVING_PER_PEER {
            assert!(limit.try_acquire(a));
        }
        assert!(!limit.try_acquire(a));
        assert!(limit.try_acquire(b), "another peer is still served");
        limit.release(&a);
        assert!(limit.try_acquire(a));
        assert!(!limit.try_acquire(a));
        for _ in 0..=MAX_SERVING_PER_PEER {
            limit.release(&a);
        }
        assert!(!limit.in_flight.contains_key(&a));
    }

    #[test]
    fn responses_are_cut_to_the_size_limit() {
        let blocks: Vec<Block> = bystack_engine::devnet::ChainGenerator::new(
            bystack_engine::devnet::GeneratorConfig::default(),
        )
        .generate(3)
        .into_iter()
        .map(|g| g.block)
        .collect();
        assert_eq!(fit_response(blocks.clone()).len(), 3);
        // One huge block first: it is sent alone.
        let mut huge = blocks[0].clone();
        huge.transactions[0].serialized_size = MAX_RESPONSE_BYTES as u64;
        let cut = fit_response(vec![huge, blocks[1].clone(), blocks[2].clone()]);
        assert_eq!(cut.len(), 1);
    }
}
