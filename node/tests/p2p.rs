//! The p2p layer over real loopback TCP, several nodes in one process: relay of blocks and
//! transactions, sync of a late node through PSWV windows (on RocksDB), a sync started by a
//! relayed orphan, a reorganisation arriving by relay, and the penalties: a peer relaying
//! malformed messages and an invalid block, one serving a double spend in a sync window, and
//! one of another genesis are disconnected and banned while honest peers are still served.

#![cfg(feature = "rocksdb")]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bystack_engine::consensus::Network;
use bystack_engine::devnet::{Adversity, Injection};
use bystack_engine::validation::SkipPow;
use bystack_engine::{Block, Hash};
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::p2p::behaviour::{build_swarm, Event as BehaviourEvent, Topics};
use bystack_node::p2p::wire::{self, Status, SyncRequest, SyncResponse};
use bystack_node::p2p::{self, P2pConfig, P2pHandle};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{KvStore, MemoryKv, RocksOptions, Store};
use common::{blocks, coinbase_branch, generator, NOW};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, identity, request_response, Multiaddr, PeerId};

/// How long relayed blocks and transactions may take to reach every node.
const RELAY_BOUND: Duration = Duration::from_secs(2);

/// A node on `chain` holding `blocks` (committed in windows).
fn node_on<K: KvStore>(chain: Chain<K>, blocks: &[Block]) -> Arc<Node<K>> {
    let node = Node::new(chain, NodeConfig::new(Network::Devnet));
    for window in blocks.chunks(128) {
        let report = node.submit_window(window.to_vec()).expect("window");
        assert!(report.rejected.is_none(), "{:?}", report.rejected);
    }
    node
}

/// An in-memory node holding `blocks`, proof of work skipped.
fn memory_node(genesis: &Block, blocks: &[Block]) -> Arc<Node<MemoryKv>> {
    let chain = Chain::open(
        Store::in_memory(),
        genesis,
        Arc::new(SkipPow),
        ChainConfig::with_fixed_clock(NOW),
    )
    .expect("open chain");
    node_on(chain, blocks)
}

fn loopback() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")
}

fn config(peers: Vec<Multiaddr>) -> P2pConfig {
    P2pConfig {
        listen: vec![loopback()],
        peers,
        window: 64,
        status_interval: Duration::from_secs(1),
        request_timeout: Duration::from_secs(10),
        ..P2pConfig::default()
    }
}

async fn start<K: KvStore + 'static>(node: &Arc<Node<K>>, peers: Vec<Multiaddr>) -> P2pHandle {
    p2p::spawn(node.clone(), config(peers))
        .await
        .expect("p2p starts")
}

async fn addr(handle: &P2pHandle) -> Multiaddr {
    let addrs = handle.listen_addrs().await.expect("running");
    assert!(!addrs.is_empty(), "no listen address");
    addrs[0].clone()
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; whether it held.
async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `handle` has `n` peers that answered a status and subscribed to relay.
async fn wait_for_peers(handle: &P2pHandle, n: usize) {
    let ready = eventually(Duration::from_secs(10), || async {
        let peers = handle.peers().await.expect("running");
        peers.len() == n && peers.iter().all(|p| p.status.is_some() && p.relays)
    })
    .await;
    assert!(ready, "{} peers never got ready", n);
    assert_eq!(handle.peer_count(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_relay_blocks_and_transactions() {
    let mut generator = generator(11, 2, Adversity::none());
    let chain = blocks(&mut generator, 104);
    let genesis = generator.genesis().clone();
    let prefix = &chain[..102];

    let nodes: Vec<_> = (0..4).map(|_| memory_node(&genesis, prefix)).collect();
    let mut handles: Vec<P2pHandle> = Vec::new();
    for node in &nodes {
        let mut peers = Vec::new();
        for handle in &handles {
            peers.push(addr(handle).await);
        }
        handles.push(start(node, peers).await);
    }
    for handle in &handles {
        wait_for_peers(handle, 3).await;
    }

    // A block submitted on one node reaches every other one.
    let block = chain[102].clone();
    let hash = block.hash();
    let submitted = tokio::time::Instant::now();
    let node = nodes[0].clone();
    tokio::task::spawn_blocking(move || node.submit_block(block))
        .await
        .expect("joins")
        .expect("valid block");
    let relayed = eventually(RELAY_BOUND, || async {
        nodes.iter().all(|n| n.tip().hash == hash)
    })
    .await;
    assert!(
        relayed,
        "tips after {:?}: {:?}",
        submitted.elapsed(),
        nodes.iter().map(|n| n.tip()).collect::<Vec<_>>()
    );
    for node in &nodes[1..] {
        let snapshot = node.metrics().snapshot();
        assert!(
            snapshot.relay_latency.iter().map(|(_, n)| n).sum::<u64>() >= 1,
            "relay latency recorded"
        );
        assert_eq!(snapshot.peers, 3);
    }

    // A transaction of the next block, submitted to one node, reaches every mempool.
    let mut admitted = None;
    for tx in &chain[103].transactions[1..] {
        let node = nodes[2].clone();
        let tx = tx.clone();
        if let Ok(id) = tokio::task::spawn_blocking(move || node.submit_transaction(tx))
            .await
            .expect("joins")
        {
            admitted = Some(id);
            break;
        }
    }
    let id = admitted.expect("a transaction of block 104 is admissible at height 103");
    let relayed = eventually(RELAY_BOUND, || async {
        nodes.iter().all(|n| n.mempool_contains(&id))
    })
    .await;
    assert!(
        relayed,
        "mempools: {:?}",
        nodes.iter().map(|n| n.mempool_len()).collect::<Vec<_>>()
    );

    for handle in handles {
        handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_node_syncs_500_blocks_in_windows_on_rocksdb() {
    let mut generator = generator(12, 1, Adversity::none());
    let chain = blocks(&mut generator, 500);
    let genesis = generator.genesis().clone();
    let source = memory_node(&genesis, &chain);
    let source_handle = start(&source, Vec::new()).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_rocksdb(dir.path(), RocksOptions::default()).expect("rocksdb");
    let late = Chain::open(
        store,
        &genesis,
        Arc::new(SkipPow),
        ChainConfig::with_fixed_clock(NOW),
    )
    .expect("open chain");
    let late = node_on(late, &[]);
    let started = std::time::Instant::now();
    let late_handle = start(&late, vec![addr(&source_handle).await]).await;

    let target = source.tip();
    // The counters move right after the blocks are committed: wait for both.
    let synced = eventually(Duration::from_secs(120), || async {
        let stats = late_handle.sync_stats();
        late.tip() == target && stats.window_blocks + stats.sequential_blocks == 500
    })
    .await;
    assert!(
        synced,
        "late node at {:?}, source at {target:?}, {:?}",
        late.tip(),
        late_handle.sync_stats()
    );
    eprintln!("synced 500 blocks in {:?}", started.elapsed());
    assert_eq!(
        late.utxo_digest().expect("digest"),
        source.utxo_digest().expect("digest")
    );
    assert_eq!(late.main_hash(250), source.main_hash(250));
    // PSWV windows of 64 for the bulk, the sequential path for the last few blocks.
    let stats = late_handle.sync_stats();
    assert!(stats.windows >= 7, "{stats:?}");
    assert!(stats.window_blocks >= 490, "{stats:?}");
    assert!(stats.sequential_blocks <= 10, "{stats:?}");

    late_handle.shutdown().await;
    source_handle.shutdown().await;
}

/// A bare swarm with the node's behaviour, driven by the test: it announces `status`, serves
/// headers and blocks of `chain` (blocks from height 1 on) and publishes whatever the test
/// asks.
struct RawPeer {
    peer_id: PeerId,
    publish: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    dial: tokio::sync::mpsc::UnboundedSender<Multiaddr>,
    closed: tokio::sync::mpsc::UnboundedReceiver<PeerId>,
    subscribed: tokio::sync::watch::Receiver<bool>,
}

fn raw_peer(genesis: Hash, status: Status, chain: Vec<Block>) -> RawPeer {
    let keypair = identity::Keypair::generate_ed25519();
    let peer_id = keypair.public().to_peer_id();
    let topics = Topics::new(&genesis);
    let mut swarm = build_swarm(keypair, &topics, Duration::from_secs(10)).expect("swarm");
    let (publish, mut to_publish) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let (dial, mut to_dial) = tokio::sync::mpsc::unbounded_channel::<Multiaddr>();
    let (closed_tx, closed) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                event = swarm.select_next_some() => match event {
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                        message: request_response::Message::Request { request, channel, .. },
                        ..
                    })) => {
                        let range = |from: u64, max: u32| {
                            let start = usize::try_from(from.saturating_sub(1)).unwrap_or(usize::MAX);
                            chain.iter().skip(start).take(max as usize)
                        };
                        let response = match request {
                            SyncRequest::Status(_) => SyncResponse::Status(status),
                            SyncRequest::Headers { from_height, max } => SyncResponse::Headers(
                                range(from_height, max).map(|b| b.header.clone()).collect(),
                            ),
                            SyncRequest::Blocks { from_height, max } => {
                                SyncResponse::Blocks(range(from_height, max).cloned().collect())
                            }
                        };
                        let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                        gossipsub::Event::Subscribed { topic, .. },
                    )) if topic == topics.blocks.hash() => {
                        let _ = subscribed_tx.send(true);
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        let _ = subscribed_tx.send(false);
                        let _ = closed_tx.send(peer_id);
                    }
                    _ => {}
                },
                Some(data) = to_publish.recv() => {
                    let result = swarm.behaviour_mut().gossipsub.publish(topics.blocks.clone(), data);
                    assert!(result.is_ok(), "publish: {result:?}");
                }
                Some(addr) = to_dial.recv() => {
                    let _ = swarm.dial(addr);
                }
                else => break,
            }
        }
    });
    RawPeer {
        peer_id,
        publish,
        dial,
        closed,
        subscribed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_relaying_an_invalid_block_is_banned_and_others_still_served() {
    let mut generator = generator(13, 0, Adversity::none());
    let chain = blocks(&mut generator, 12);
    let genesis = generator.genesis().clone();
    let victim = memory_node(&genesis, &chain[..10]);
    let honest = memory_node(&genesis, &chain[..10]);
    let victim_handle = start(&victim, Vec::new()).await;
    let victim_addr = addr(&victim_handle).await;
    let honest_handle = start(&honest, vec![victim_addr.clone()]).await;
    wait_for_peers(&victim_handle, 1).await;

    let tip = victim.tip();
    let mut attacker = raw_peer(
        genesis.hash(),
        Status {
            genesis: genesis.hash(),
            tip_height: tip.height,
            tip_hash: tip.hash,
        },
        Vec::new(),
    );
    attacker
        .dial
        .send(victim_addr.clone())
        .expect("attacker runs");
    wait_for_peers(&victim_handle, 2).await;
    let mut subscribed = attacker.subscribed.clone();
    subscribed
        .wait_for(|s| *s)
        .await
        .expect("the victim subscribes");

    // A malformed message costs points, but one is not enough for a ban.
    attacker
        .publish
        .send(b"\x01not a block at all".to_vec())
        .expect("attacker runs");
    let penalised = eventually(Duration::from_secs(5), || async {
        victim_handle
            .peers()
            .await
            .expect("running")
            .iter()
            .any(|p| p.peer_id == attacker.peer_id && p.score > 0)
    })
    .await;
    assert!(penalised, "malformed message not scored");

    // A block whose merkle root is wrong gets the attacker disconnected and banned.
    let mut bad = chain[10].clone();
    bad.header.transactions_merkle_root.0[0] ^= 1;
    let data = wire::encode_block_gossip(&bad, wire::now_micros()).expect("encodes");
    attacker.publish.send(data).expect("attacker runs");
    let closed = tokio::time::timeout(Duration::from_secs(5), attacker.closed.recv())
        .await
        .expect("the victim disconnects the attacker");
    assert_eq!(closed, Some(victim_handle.local_peer_id()));
    assert!(victim_handle
        .is_banned(attacker.peer_id)
        .await
        .expect("running"));
    assert_eq!(victim.tip(), tip);
    assert!(!victim.has_block(&bad.hash()));

    // The ban holds: the attacker cannot come back.
    attacker.dial.send(victim_addr).expect("attacker runs");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peers = victim_handle.peers().await.expect("running");
    assert!(peers.iter().all(|p| p.peer_id != attacker.peer_id));

    // The honest peer is still served: its next block reaches the victim.
    assert_eq!(victim_handle.peer_count(), 1);
    let block = chain[10].clone();
    let hash = block.hash();
    let node = honest.clone();
    tokio::task::spawn_blocking(move || node.submit_block(block))
        .await
        .expect("joins")
        .expect("valid block");
    let relayed = eventually(RELAY_BOUND, || async { victim.tip().hash == hash }).await;
    assert!(relayed, "victim at {:?}", victim.tip());

    honest_handle.shutdown().await;
    victim_handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavier_fork_arriving_by_relay_replaces_the_tip() {
    let mut generator = generator(14, 0, Adversity::none());
    let prefix = blocks(&mut generator, 8);
    let base = generator.headers().clone();
    let main = blocks(&mut generator, 2);
    let genesis = generator.genesis().clone();
    let fork = coinbase_branch(&base, 3, b"fork", &[0x51]);
    let ours: Vec<Block> = prefix.iter().chain(&main).cloned().collect();

    let a = memory_node(&genesis, &ours);
    let b = memory_node(&genesis, &ours);
    let a_handle = start(&a, Vec::new()).await;
    let b_handle = start(&b, vec![addr(&a_handle).await]).await;
    wait_for_peers(&a_handle, 1).await;
    wait_for_peers(&b_handle, 1).await;
    assert_eq!(b.tip().hash, main[1].hash());

    // The fork's first two blocks stay on a side branch of A; the third outweighs the main
    // chain and A reorganises, then relays the new main chain.
    for block in fork.clone() {
        let node = a.clone();
        tokio::task::spawn_blocking(move || node.submit_block(block))
            .await
            .expect("joins")
            .expect("valid fork block");
    }
    let fork_tip = fork[2].hash();
    assert_eq!(a.tip().hash, fork_tip);
    let replaced = eventually(RELAY_BOUND, || async { b.tip().hash == fork_tip }).await;
    assert!(replaced, "B at {:?}, fork tip {fork_tip}", b.tip());
    assert_eq!(b.main_hash(9), Some(fork[0].hash()));
    assert_eq!(
        b.utxo_digest().expect("digest"),
        a.utxo_digest().expect("digest")
    );

    b_handle.shutdown().await;
    a_handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_orphan_starts_a_sync_from_its_sender() {
    let mut generator = generator(15, 0, Adversity::none());
    let chain = blocks(&mut generator, 15);
    let genesis = generator.genesis().clone();
    let node = memory_node(&genesis, &chain[..10]);
    let handle = start(&node, Vec::new()).await;
    // The peer understates its tip, so that only the orphan can start the sync.
    let tip = node.tip();
    let peer = raw_peer(
        genesis.hash(),
        Status {
            genesis: genesis.hash(),
            tip_height: tip.height,
            tip_hash: tip.hash,
        },
        chain.clone(),
    );
    peer.dial.send(addr(&handle).await).expect("peer runs");
    wait_for_peers(&handle, 1).await;
    peer.subscribed
        .clone()
        .wait_for(|s| *s)
        .await
        .expect("the node subscribes");
    assert_eq!(node.tip(), tip);

    let data = wire::encode_block_gossip(&chain[14], wire::now_micros()).expect("encodes");
    peer.publish.send(data).expect("peer runs");
    let target = chain[14].hash();
    let synced = eventually(Duration::from_secs(10), || async {
        node.tip().hash == target
    })
    .await;
    assert!(synced, "node at {:?}", node.tip());
    let peers = handle.peers().await.expect("running");
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].score, 0, "an honest sender is not penalised");

    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_genesis_is_refused() {
    let mut generator = generator(16, 0, Adversity::none());
    let genesis = generator.genesis().clone();
    let chain = blocks(&mut generator, 3);
    let node = memory_node(&genesis, &chain);
    let handle = start(&node, Vec::new()).await;
    let other = Hash([0x42; 32]);
    let mut stranger = raw_peer(
        genesis.hash(),
        Status {
            genesis: other,
            tip_height: 1000,
            tip_hash: Hash([0x43; 32]),
        },
        Vec::new(),
    );
    stranger.dial.send(addr(&handle).await).expect("peer runs");
    let closed = tokio::time::timeout(Duration::from_secs(5), stranger.closed.recv())
        .await
        .expect("the node disconnects the stranger");
    assert_eq!(closed, Some(handle.local_peer_id()));
    assert!(handle.is_banned(stranger.peer_id).await.expect("running"));
    assert_eq!(handle.peer_count(), 0);
    assert_eq!(node.tip().hash, chain[2].hash());

    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_a_double_spend_in_a_sync_window_is_banned() {
    let mut generator = generator(17, 2, Adversity::only(105, Injection::DoubleSpendInBlock));
    let chain = blocks(&mut generator, 110);
    let genesis = generator.genesis().clone();
    let node = memory_node(&genesis, &[]);
    let handle = start(&node, Vec::new()).await;
    let mut peer = raw_peer(
        genesis.hash(),
        Status {
            genesis: genesis.hash(),
            tip_height: 110,
            tip_hash: chain[109].hash(),
        },
        chain.clone(),
    );
    peer.dial.send(addr(&handle).await).expect("peer runs");

    // The window holding block 105 is cut there: the valid prefix is kept, the peer banned.
    let closed = tokio::time::timeout(Duration::from_secs(30), peer.closed.recv())
        .await
        .expect("the node disconnects the peer");
    assert_eq!(closed, Some(handle.local_peer_id()));
    assert!(handle.is_banned(peer.peer_id).await.expect("running"));
    assert_eq!(node.tip().hash, chain[103].hash());
    assert!(!node.has_block(&chain[104].hash()));
    assert!(handle.sync_stats().windows >= 2);

    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_peer_that_restarts_is_dialled_again() {
    let mut generator = generator(18, 0, Adversity::none());
    let chain = blocks(&mut generator, 6);
    let genesis = generator.genesis().clone();
    let a = memory_node(&genesis, &chain[..5]);
    let b = memory_node(&genesis, &chain[..5]);
    let a_handle = start(&a, Vec::new()).await;
    let a_addr = addr(&a_handle).await;
    let b_handle = start(&b, vec![a_addr.clone()]).await;
    wait_for_peers(&b_handle, 1).await;

    // A goes away and comes back on the same address (and with a new block).
    a_handle.shutdown().await;
    let gone = eventually(Duration::from_secs(5), || async {
        b_handle.peer_count() == 0
    })
    .await;
    assert!(gone, "B still counts A");
    let block = chain[5].clone();
    let node = a.clone();
    tokio::task::spawn_blocking(move || node.submit_block(block))
        .await
        .expect("joins")
        .expect("valid block");
    let a_handle = p2p::spawn(
        a.clone(),
        P2pConfig {
            listen: vec![a_addr],
            ..config(Vec::new())
        },
    )
    .await
    .expect("A restarts on its address");

    let back = eventually(Duration::from_secs(10), || async {
        b.tip().hash == chain[5].hash()
    })
    .await;
    assert!(back, "B at {:?} never reconnected and synced", b.tip());
    assert_eq!(b_handle.peer_count(), 1);

    b_handle.shutdown().await;
    a_handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_shorter_fork_syncs_the_longer_one_from_its_fork_point() {
    let mut generator = generator(19, 0, Adversity::none());
    let prefix = blocks(&mut generator, 5);
    let base = generator.headers().clone();
    let ours = blocks(&mut generator, 15);
    let genesis = generator.genesis().clone();
    let theirs = coinbase_branch(&base, 25, b"longer", &[0x51]);

    let short: Vec<Block> = prefix.iter().chain(&ours).cloned().collect();
    let long: Vec<Block> = prefix.iter().chain(&theirs).cloned().collect();
    let a = memory_node(&genesis, &long);
    let b = memory_node(&genesis, &short);
    let a_handle = start(&a, Vec::new()).await;
    let b_handle = start(&b, vec![addr(&a_handle).await]).await;

    // B asks for headers above its tip (20), then from further back until they build on a
    // block it has (height 5), and reorganises onto the longer branch.
    let target = a.tip();
    let synced = eventually(Duration::from_secs(20), || async { b.tip() == target }).await;
    assert!(synced, "B at {:?}, A at {target:?}", b.tip());
    assert_eq!(b.main_hash(6), Some(theirs[0].hash()));
    assert_eq!(
        b.utxo_digest().expect("digest"),
        a.utxo_digest().expect("digest")
    );
    let peers = b_handle.peers().await.expect("running");
    assert_eq!(peers.len(), 1);
    assert_eq!(
        peers[0].score, 0,
        "an honest peer on a fork is not penalised"
    );

    b_handle.shutdown().await;
    a_handle.shutdown().await;
}

/// A node checking real Tensority proofs on the devnet genesis, on the system clock.
fn pow_checking_node() -> Arc<Node<MemoryKv>> {
    let genesis = bystack_engine::genesis::genesis_block(Network::Devnet);
    let pow = bystack_engine::validation::TensorityPow::open("cpu", 1).expect("cpu backend");
    let chain = Chain::open(
        Store::in_memory(),
        &genesis,
        Arc::new(pow),
        ChainConfig::default(),
    )
    .expect("open chain");
    Node::new(chain, NodeConfig::new(Network::Devnet))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_relaying_a_block_with_bad_proof_of_work_is_banned() {
    let victim = pow_checking_node();
    let victim_handle = start(&victim, Vec::new()).await;
    let victim_addr = addr(&victim_handle).await;
    let genesis = victim.genesis_hash();
    let tip = victim.tip();

    // The victim's own next template with a nonce whose Tensority result misses the target:
    // a well-formed block that only its proof of work makes invalid.
    let template = victim.block_template().expect("template");
    let mut bad = template.block.clone();
    let backend = bystack_kernels::open_backend("cpu", 1).expect("cpu backend");
    let prepared = backend.prepare(&template.seed.0).expect("seed");
    let header_template = bad.header.template();
    let target = bystack_engine::pow::Target::from_bits(bad.header.bits);
    bad.header.nonce = (0..)
        .find(|&n| {
            let pow = prepared
                .hash(&header_template.header_hash(n))
                .expect("hash");
            !target.is_met_by(&pow)
        })
        .expect("a failing nonce");

    let mut attacker = raw_peer(
        genesis,
        Status {
            genesis,
            tip_height: tip.height,
            tip_hash: tip.hash,
        },
        Vec::new(),
    );
    attacker.dial.send(victim_addr).expect("attacker runs");
    wait_for_peers(&victim_handle, 1).await;
    let mut subscribed = attacker.subscribed.clone();
    subscribed
        .wait_for(|s| *s)
        .await
        .expect("the victim subscribes");
    let data = wire::encode_block_gossip(&bad, wire::now_micros()).expect("encodes");
    attacker.publish.send(data).expect("attacker runs");
    let closed = tokio::time::timeout(Duration::from_secs(10), attacker.closed.recv())
        .await
        .expect("the victim disconnects the attacker");
    assert_eq!(closed, Some(victim_handle.local_peer_id()));
    assert!(victim_handle
        .is_banned(attacker.peer_id)
        .await
        .expect("running"));
    assert_eq!(victim.tip(), tip);
    assert!(!victim.has_block(&bad.hash()));
    assert_eq!(victim.metrics().snapshot().blocks_rejected, 1);
    victim_handle.shutdown().await;
}
