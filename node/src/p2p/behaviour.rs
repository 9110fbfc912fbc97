//! The libp2p behaviour of a node: gossipsub for relay, request-response for sync, identify,
//! and a block list for banned peers; and the swarm built over TCP + noise + yamux.

use std::convert::Infallible;
use std::time::Duration;

use bystack_engine::Hash;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, gossipsub, identify, identity, noise, request_response, tcp, yamux, Swarm,
};

use super::wire::{
    gossip_message_id, SyncCodec, SyncRequest, SyncResponse, MAX_GOSSIP_BYTES, SYNC_PROTOCOL,
};
use super::P2pError;

/// The identify protocol version: peers of another protocol are still identified, but their
/// status (genesis) decides whether they stay.
const IDENTIFY_PROTOCOL: &str = "/bystack/1.0.0";

/// Every protocol a node speaks.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "Event")]
pub struct Behaviour {
    /// Refuses connections of banned peers.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Block and transaction relay.
    pub gossipsub: gossipsub::Behaviour,
    /// Status, headers and blocks by height range.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Exchanges agent and listen addresses.
    pub identify: identify::Behaviour,
}

/// What the behaviour reports to the swarm's owner.
#[derive(Debug)]
pub enum Event {
    /// A gossipsub event (relayed messages, subscriptions).
    Gossipsub(gossipsub::Event),
    /// A sync request, response or failure.
    Sync(request_response::Event<SyncRequest, SyncResponse>),
    /// An identify exchange.
    Identify(Box<identify::Event>),
}

impl From<Infallible> for Event {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

impl From<gossipsub::Event> for Event {
    fn from(event: gossipsub::Event) -> Self {
        Event::Gossipsub(event)
    }
}

impl From<request_response::Event<SyncRequest, SyncResponse>> for Event {
    fn from(event: request_response::Event<SyncRequest, SyncResponse>) -> Self {
        Event::Sync(event)
    }
}

impl From<identify::Event> for Event {
    fn from(event: identify::Event) -> Self {
        Event::Identify(Box::new(event))
    }
}

/// The gossip topics of one chain (named after its genesis, so that networks never mix).
#[derive(Debug, Clone)]
pub struct Topics {
    /// New blocks.
    pub blocks: gossipsub::IdentTopic,
    /// New transactions.
    pub transactions: gossipsub::IdentTopic,
}

impl Topics {
    /// The topics of the chain starting at `genesis`.
    pub fn new(genesis: &Hash) -> Self {
        let tag = &genesis.to_hex()[..16];
        Topics {
            blocks: gossipsub::IdentTopic::new(format!("/bystack/{tag}/blocks/1")),
            transactions: gossipsub::IdentTopic::new(format!("/bystack/{tag}/txs/1")),
        }
    }
}

/// Gossipsub tuned for small meshes as well as large ones: a mesh of 1–3 peers is enough, the
/// publisher floods its own messages to every subscribed peer, and messages are forwarded only
/// after the node validated them (so invalid blocks stop at the first honest node).
fn gossipsub_config() -> Result<gossipsub::Config, P2pError> {
    gossipsub::ConfigBuilder::default()
        .mesh_n_low(1)
        .mesh_n(3)
        .mesh_n_high(6)
        .mesh_outbound_min(1)
        .gossip_lazy(3)
        .heartbeat_initial_delay(Duration::from_millis(100))
        .heartbeat_interval(Duration::from_millis(500))
        .flood_publish(true)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(MAX_GOSSIP_BYTES)
        .duplicate_cache_time(Duration::from_secs(120))
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::from(gossip_message_id(&message.data))
        })
        .build()
        .map_err(|e| P2pError::Config(format!("gossipsub: {e}")))
}

impl Behaviour {
    fn new(keypair: &identity::Keypair, request_timeout: Duration) -> Result<Self, P2pError> {
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossipsub_config()?,
        )
        .map_err(|e| P2pError::Config(format!("gossipsub: {e}")))?;
        let sync = request_response::Behaviour::with_codec(
            SyncCodec,
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(request_timeout),
        );
        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.to_string(),
            keypair.public(),
        ));
        Ok(Behaviour {
            blocked: allow_block_list::Behaviour::default(),
            gossipsub,
            sync,
            identify,
        })
    }
}

/// A swarm over TCP (no Nagle) + noise + yamux with [`Behaviour`], subscribed to `topics`.
///
/// # Errors
/// [`P2pError::Config`] when the transport or gossipsub cannot be set up.
pub fn build_swarm(
    keypair: identity::Keypair,
    topics: &Topics,
    request_timeout: Duration,
) -> Result<Swarm<Behaviour>, P2pError> {
    let behaviour = Behaviour::new(&keypair, request_timeout)?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| P2pError::Config(format!("transport: {e}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| P2pError::Config(format!("behaviour: {e:?}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for topic in [&topics.blocks, &topics.transactions] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(topic)
            .map_err(|e| P2pError::Config(format!("subscribe: {e}")))?;
    }
    Ok(swarm)
}
