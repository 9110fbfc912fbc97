//! The node service on a real RocksDB: `get-work` → mining with the CPU Tensority backend at
//! devnet difficulty → `submit-work` grows the chain (real proof-of-work checks), the
//! timestamp refresh, stale work and bad nonces refused, difficulty and hash rate; and the
//! chain-backed queries, windows, orphans, events and metrics.

#![cfg(feature = "rocksdb")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bystack_engine::consensus::{initial_seed, Network, DEVNET_BITS};
use bystack_engine::devnet::Adversity;
use bystack_engine::genesis::genesis_block;
use bystack_engine::pow::{calc_work, Target};
use bystack_engine::validation::{BlockError, TensorityPow};
use bystack_engine::{Block, Hash};
use bystack_kernels::{open_backend, TensorityBackend};
use bystack_node::address::{encode_address, parse_mining_target};
use bystack_node::chain::{BlockStatus, Chain, ChainConfig, ChainError};
use bystack_node::service::{BlockSelector, Node, NodeConfig, NodeError, NodeEvent, Work};
use bystack_node::store::{RocksKv, RocksOptions, Store};

/// Nonces per search call: small, so that the search stops soon after the first hit.
const NONCE_CHUNK: u64 = 8;

/// A node over a fresh RocksDB with real Tensority checks on the CPU and a clock the test
/// sets.
fn mining_node(dir: &std::path::Path, program: Vec<u8>) -> (Arc<Node<RocksKv>>, Arc<AtomicU64>) {
    let genesis = genesis_block(Network::Devnet);
    let time = Arc::new(AtomicU64::new(genesis.header.timestamp + 100));
    let clock_time = time.clone();
    let config = ChainConfig {
        clock: Arc::new(move || clock_time.load(Ordering::SeqCst)),
        ..ChainConfig::default()
    };
    let pow = Arc::new(TensorityPow::open("cpu", 2).expect("cpu backend"));
    let store = Store::open_rocksdb(dir, RocksOptions::default()).unwrap();
    let chain = Chain::open(store, &genesis, pow, config).unwrap();
    let node = Node::new(
        chain,
        NodeConfig {
            mining_program: Some(program),
            ..NodeConfig::new(Network::Devnet)
        },
    );
    (node, time)
}

/// Finds a nonce meeting the work's target; returns it and the hashes computed.
fn solve(backend: &dyn TensorityBackend, work: &Work) -> (u64, u64) {
    let prepared = backend.prepare(&work.seed.0).unwrap();
    let template = work.header.template();
    let target = Target::from_bits(work.header.bits);
    let stop = AtomicBool::new(false);
    let mut start = 0;
    let mut hashes = 0;
    loop {
        let outcome = prepared
            .search(&template, start..start + NONCE_CHUNK, &target, &stop)
            .unwrap();
        hashes += outcome.hashes;
        if let Some(hit) = outcome.hits.first() {
            return (hit.nonce, hashes);
        }
        start += NONCE_CHUNK;
        assert!(start < 1 << 16, "no nonce in 65,536 at devnet difficulty");
    }
}

/// A nonce whose Tensority result does NOT meet the target.
fn failing_nonce(backend: &dyn TensorityBackend, work: &Work) -> u64 {
    let prepared = backend.prepare(&work.seed.0).unwrap();
    let template = work.header.template();
    let target = Target::from_bits(work.header.bits);
    (0..)
        .find(|&n| {
            let pow = prepared.hash(&template.header_hash(n)).unwrap();
            !target.is_met_by(&pow)
        })
        .unwrap()
}

#[test]
fn get_work_mine_submit_work_round_trip_grows_the_chain_and_refuses_stale_work() {
    let dir = tempfile::tempdir().unwrap();
    let wallet = bystack_engine::devnet::Wallet::new(b"miner");
    let address = encode_address(Network::Devnet, &wallet.p2wpkh_program(0)).unwrap();
    assert!(address.starts_with("dm1q"));
    let program = parse_mining_target(Network::Devnet, &address).unwrap();
    let (node, time) = mining_node(dir.path(), program.clone());
    let backend = open_backend("cpu", 2).unwrap();
    let genesis = node.genesis_hash();
    let t0 = time.load(Ordering::SeqCst);

    // Nothing to submit against yet.
    let mut unrequested = genesis_block(Network::Devnet).header;
    unrequested.height = 1;
    unrequested.previous_block_hash = genesis;
    assert_eq!(node.submit_work(&unrequested), Err(NodeError::StaleWork));

    let first = node.get_work().unwrap();
    assert_eq!(first.header.height, 1);
    assert_eq!(first.header.previous_block_hash, genesis);
    assert_eq!(first.header.timestamp, t0);
    assert_eq!(first.header.bits, DEVNET_BITS);
    assert_eq!(first.header.nonce, 0);
    assert_eq!(first.seed, initial_seed());

    // A later get-work: same template, timestamp refreshed to now.
    time.store(t0 + 5, Ordering::SeqCst);
    let work = node.get_work().unwrap();
    assert_eq!(work.header.timestamp, t0 + 5);
    assert_eq!(
        work.header.transactions_merkle_root,
        first.header.transactions_merkle_root
    );

    let mut events = node.subscribe();
    let started = Instant::now();
    let (nonce, hashes) = solve(&*backend, &work);
    let elapsed = started.elapsed();
    println!(
        "block 1: nonce {nonce} after {hashes} hashes in {:.2} s (seed preparation included)",
        elapsed.as_secs_f64()
    );
    let mut solved = work.header.clone();
    solved.nonce = nonce;
    let outcome = node.submit_work(&solved).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    assert_eq!(outcome.tip.height, 1);
    assert_eq!(outcome.tip.hash, solved.hash());
    let block = node.block_by_height(1).unwrap().unwrap();
    assert_eq!(block.header, solved);
    assert_eq!(
        block.transactions[0].data.outputs[0].control_program,
        program
    );
    match events.try_recv() {
        Ok(NodeEvent::BlockConnected { hash, height, .. }) => {
            assert_eq!((hash, height), (solved.hash(), 1));
        }
        other => panic!("expected BlockConnected, got {other:?}"),
    }

    // The same solution again: its parent is no longer the tip.
    assert_eq!(node.submit_work(&solved), Err(NodeError::StaleWork));
    assert_eq!(
        NodeError::StaleWork.to_string(),
        "pending mining block has been changed"
    );
    // The first get-work's header (same parent as the stale one) is stale too.
    assert_eq!(node.submit_work(&first.header), Err(NodeError::StaleWork));

    // Height 2, 150 s later: a nonce that misses the target is refused by the chain.
    time.store(t0 + 155, Ordering::SeqCst);
    let work = node.get_work().unwrap();
    assert_eq!(work.header.height, 2);
    assert_eq!(work.header.previous_block_hash, solved.hash());
    let mut bad = work.header.clone();
    bad.nonce = failing_nonce(&*backend, &work);
    match node.submit_work(&bad) {
        Err(NodeError::Chain(ChainError::Block {
            error: BlockError::WorkProof { .. },
            ..
        })) => {}
        other => panic!("expected a proof-of-work rejection, got {other:?}"),
    }
    // A nonce or timestamp no header can encode (varint63) is refused before anything else.
    let mut huge = work.header.clone();
    huge.nonce = 1 << 63;
    assert_eq!(
        node.submit_work(&huge),
        Err(NodeError::InvalidWork {
            field: "nonce",
            value: 1 << 63
        })
    );
    huge.nonce = 0;
    huge.timestamp = u64::MAX;
    assert!(matches!(
        node.submit_work(&huge),
        Err(NodeError::InvalidWork {
            field: "timestamp",
            ..
        })
    ));
    assert_eq!(node.tip().height, 1);
    // A header whose commitment is no template of this parent.
    let mut foreign = work.header.clone();
    foreign.transactions_merkle_root = Hash([7; 32]);
    assert_eq!(node.submit_work(&foreign), Err(NodeError::StaleWork));

    let started = Instant::now();
    let (nonce, hashes) = solve(&*backend, &work);
    println!(
        "block 2: nonce {nonce} after {hashes} hashes in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let mut solved_2 = work.header.clone();
    solved_2.nonce = nonce;
    assert_eq!(node.submit_work(&solved_2).unwrap().tip.height, 2);

    // get-difficulty and get-hash-rate.
    let difficulty = node.difficulty(None).unwrap();
    assert_eq!(
        (difficulty.hash, difficulty.height, difficulty.bits),
        (solved_2.hash(), 2, DEVNET_BITS)
    );
    assert_eq!(difficulty.difficulty, calc_work(DEVNET_BITS));
    let rate = node.hash_rate(BlockSelector::Height(2)).unwrap();
    assert_eq!(rate.hash_rate, calc_work(DEVNET_BITS) / 150u32);
    assert_eq!(
        node.hash_rate(BlockSelector::Hash(solved.hash()))
            .unwrap()
            .height,
        1
    );
    assert!(matches!(
        node.hash_rate(BlockSelector::Height(0)),
        Err(NodeError::NoHashRate { .. })
    ));
    assert!(matches!(
        node.hash_rate(BlockSelector::Height(9)),
        Err(NodeError::BlockNotFound { .. })
    ));

    let m = node.metrics().snapshot();
    assert_eq!(
        (m.blocks_accepted, m.blocks_rejected, m.blocks_connected),
        (2, 1, 2)
    );
}

fn tip_event_after(events: &mut tokio::sync::broadcast::Receiver<NodeEvent>) -> Vec<Hash> {
    let mut connected = Vec::new();
    loop {
        match events.try_recv() {
            Ok(NodeEvent::BlockConnected {
                hash,
                block,
                height,
            }) => {
                assert_eq!(block.hash(), hash);
                assert_eq!(block.header.height, height);
                connected.push(hash);
            }
            Ok(NodeEvent::TipChanged { .. }) => return connected,
            other => panic!("unexpected event {other:?}"),
        }
    }
}

#[test]
fn chain_queries_windows_orphans_events_and_metrics() {
    let mut generator = common::generator(5, 2, Adversity::none());
    let genesis = generator.genesis().clone();
    let blocks = common::blocks(&mut generator, 120);
    let extra = common::blocks(&mut generator, 2);
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(
        common::open_chain(dir.path(), &genesis),
        NodeConfig::new(Network::Devnet),
    );
    assert_eq!(node.network(), Network::Devnet);
    assert_eq!(node.genesis_hash(), genesis.hash());
    let mut events = node.subscribe();

    for window in blocks.chunks(64) {
        let report = node.submit_window(window.to_vec()).unwrap();
        assert_eq!((report.accepted, report.rejected), (window.len(), None));
        let connected = tip_event_after(&mut events);
        assert_eq!(
            connected,
            window.iter().map(Block::hash).collect::<Vec<_>>()
        );
    }
    let tip = node.tip();
    assert_eq!((tip.height, tip.hash), (120, blocks[119].hash()));
    assert_eq!(
        node.utxo_digest().unwrap(),
        common::memory_digest(&genesis, &blocks)
    );

    assert_eq!(node.block_by_height(0).unwrap().unwrap(), genesis);
    assert_eq!(node.block_by_height(57).unwrap().unwrap(), blocks[56]);
    assert_eq!(node.block_by_height(121).unwrap(), None);
    assert_eq!(node.main_hash(120), Some(blocks[119].hash()));
    assert_eq!(node.main_hash(121), None);
    let hash = blocks[9].hash();
    assert_eq!(node.block_by_hash(&hash).unwrap().unwrap(), blocks[9]);
    assert_eq!(
        node.header_by_hash(&hash).unwrap().unwrap(),
        blocks[9].header
    );
    assert_eq!(
        node.header_by_height(10).unwrap().unwrap(),
        blocks[9].header
    );
    assert_eq!(node.block_by_hash(&Hash([3; 32])).unwrap(), None);
    assert!(node.has_block(&hash));
    assert!(!node.has_block(&Hash([3; 32])));
    let run = node.main_blocks(10, 5).unwrap();
    assert_eq!(run, blocks[9..14].to_vec());
    let headers = node.main_headers(100, 1000).unwrap();
    assert_eq!(headers.len(), 21);
    assert_eq!(headers[20], blocks[119].header);
    assert!(node.main_headers(121, 10).unwrap().is_empty());

    let locator = node.block_locator();
    assert_eq!(locator.first(), Some(&blocks[119].hash()));
    assert_eq!(locator.last(), Some(&genesis.hash()));
    assert_eq!(locator[9], blocks[110].hash());
    assert!(locator.len() < 20);

    // An orphan waits, then connects with its parent.
    let outcome = node.submit_block(extra[1].clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::Orphan);
    assert!(node.has_block(&extra[1].hash()));
    assert_eq!(
        NodeError::OrphanBlock.to_string(),
        "block submitted is orphan"
    );
    let outcome = node.submit_block(extra[0].clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    assert_eq!(outcome.tip.hash, extra[1].hash());
    assert_eq!(
        tip_event_after(&mut events),
        vec![extra[0].hash(), extra[1].hash()]
    );
    // Known blocks change nothing.
    let outcome = node.submit_block(extra[0].clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::AlreadyKnown);

    // An invalid block: one byte of the merkle root flipped.
    let mut bad = common::blocks(&mut generator, 1).remove(0);
    bad.header.transactions_merkle_root.0[0] ^= 1;
    assert!(matches!(
        node.submit_block(bad),
        Err(NodeError::Chain(ChainError::Block {
            error: BlockError::MismatchedTxRoot { .. },
            ..
        }))
    ));
    assert!(events.try_recv().is_err(), "no event for a rejected block");

    node.metrics().set_peers(3);
    node.metrics()
        .observe_relay_latency(Duration::from_millis(7));
    node.metrics()
        .observe_relay_latency(Duration::from_secs(60));
    let m = node.metrics().snapshot();
    assert_eq!(m.blocks_accepted, 120 + 1);
    assert_eq!(m.blocks_orphaned, 1);
    assert_eq!(m.blocks_rejected, 1);
    assert_eq!(m.blocks_connected, 122);
    assert_eq!(m.peers, 3);
    assert_eq!(m.relay_latency[1], (Some(10), 1));
    assert_eq!(m.relay_latency.last(), Some(&(None, 1)));
    assert_eq!(m.relay_latency_sum_ms, 60_007);
    assert!(serde_json::to_string(&m).unwrap().contains("\"peers\":3"));
}

/// Transactions arrive while a miner polls `get-work` and submits, and readers query: every
/// submission succeeds (work on a template rebuilt for new transactions is still accepted),
/// the events follow the chain block by block, every transaction ends up mined, and a node
/// that only replays the resulting chain holds the same UTXO set.
#[test]
fn concurrent_transactions_mining_and_queries_stay_consistent() {
    const TXS: usize = 40;
    let mut generator = common::generator(9, 0, Adversity::none());
    let genesis = generator.genesis().clone();
    let prefix = common::blocks(&mut generator, 150);
    let wallet = generator.wallet().clone();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::new(
        common::open_chain(dir.path(), &genesis),
        NodeConfig::new(Network::Devnet),
    );
    node.submit_window(prefix).unwrap();
    let txs: Vec<bystack_engine::Transaction> = wallet
        .spendable(151)
        .into_iter()
        .take(TXS)
        .map(|coin| {
            let data = bystack_engine::TxData {
                version: 1,
                time_range: 0,
                inputs: vec![coin.spend_input()],
                outputs: vec![bystack_engine::TxOutput::new(
                    bystack_engine::BTM_ASSET_ID,
                    coin.amount - 2_000_000,
                    wallet.p2wpkh_program(1),
                )],
            };
            wallet.sign(data, &[])
        })
        .collect();
    assert_eq!(txs.len(), TXS);
    let mut events = node.subscribe();
    let done = AtomicBool::new(false);

    std::thread::scope(|scope| {
        scope.spawn(|| {
            for tx in &txs {
                node.submit_transaction(tx.clone()).unwrap();
            }
        });
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let tip = node.tip();
                let headers = node.main_headers(tip.height.saturating_sub(3), 4).unwrap();
                assert!(!headers.is_empty());
                let template = node.block_template().unwrap();
                assert!(template.block.header.height > tip.height);
                node.mempool_len();
            }
        });
        scope.spawn(|| {
            for _ in 0..12 {
                let work = node.get_work().unwrap();
                std::thread::sleep(Duration::from_millis(5));
                let outcome = node.submit_work(&work.header).unwrap();
                assert_eq!(outcome.status, BlockStatus::MainChain);
            }
            // Whatever is left.
            while node.mempool_len() > 0 {
                let work = node.get_work().unwrap();
                node.submit_work(&work.header).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
    });

    let tip = node.tip();
    let mut height = 150;
    loop {
        match events.try_recv() {
            Ok(NodeEvent::BlockConnected { height: h, .. }) => {
                height += 1;
                assert_eq!(h, height);
            }
            Ok(NodeEvent::TipChanged { tip: t }) => assert_eq!(t.height, height),
            Ok(NodeEvent::TxAdmitted { .. }) => {}
            Err(_) => break,
        }
    }
    assert_eq!(height, tip.height);
    let mined: std::collections::HashSet<Hash> = node
        .main_blocks(151, usize::MAX)
        .unwrap()
        .iter()
        .flat_map(|b| b.transactions.iter().map(bystack_engine::Transaction::id))
        .collect();
    assert!(txs.iter().all(|tx| mined.contains(&tx.id())));

    let replay_dir = tempfile::tempdir().unwrap();
    let replay = Node::new(
        common::open_chain(replay_dir.path(), &genesis),
        NodeConfig::new(Network::Devnet),
    );
    let report = replay
        .submit_window(node.main_blocks(1, usize::MAX).unwrap())
        .unwrap();
    assert_eq!(report.rejected, None);
    assert_eq!(replay.tip(), tip);
    assert_eq!(replay.utxo_digest().unwrap(), node.utxo_digest().unwrap());
}
