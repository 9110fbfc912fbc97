//! The chain manager on a real RocksDB in a temporary directory: the sequential and PSWV
//! paths against the engine's in-memory oracle, reopening, reorganisations of depth 1 and
//! 30, orphans, and invalid blocks.

#![cfg(feature = "rocksdb")]

mod common;

use std::sync::Arc;

use bystack_engine::devnet::{Adversity, FlaggedPow, Injection};
use bystack_engine::validation::{BlockError, UtxoError};
use bystack_engine::Block;
use bystack_node::chain::{BlockStatus, ChainError, Tip};
use common::*;

/// Every valid adversarial feature now and then, so that the chains hold status-fail
/// transactions, retirements, duplicate coinbases and coinbase spends at maturity.
fn valid_mix() -> Adversity {
    Adversity::random(
        &[
            Injection::StatusFail,
            Injection::Retirement,
            Injection::DuplicateCoinbase,
            Injection::CoinbaseSpendAtMaturity,
        ],
        0.08,
    )
}

fn tip_of(blocks: &[Block]) -> Tip {
    let last = blocks.last().expect("blocks");
    Tip {
        height: last.header.height,
        hash: last.hash(),
    }
}

#[test]
fn block_by_block_and_windows_match_the_engine_and_survive_reopen() {
    let mut generator = generator(7, 4, valid_mix());
    let genesis = generator.genesis().clone();
    let blocks = blocks(&mut generator, 140);
    let expected = memory_digest(&genesis, &blocks);

    let (dir_seq, dir_win) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    {
        let mut chain = open_chain(dir_seq.path(), &genesis);
        for block in &blocks {
            let outcome = chain.process_block(block.clone()).expect("valid block");
            assert_eq!(outcome.status, BlockStatus::MainChain);
        }
        assert_eq!(chain.tip(), tip_of(&blocks));
        assert_eq!(chain.utxo_digest().unwrap(), expected);
    }
    {
        let mut chain = open_chain(dir_win.path(), &genesis);
        for window in blocks.chunks(16) {
            let report = chain.process_window(window).expect("store works");
            assert_eq!(report.rejected, None);
            assert_eq!(report.accepted, window.len());
        }
        assert_eq!(chain.tip(), tip_of(&blocks));
        assert_eq!(chain.utxo_digest().unwrap(), expected);
    }

    // Reopened, both hold the same tip, UTXO set, statuses and undo data.
    let seq = open_chain(dir_seq.path(), &genesis);
    let win = open_chain(dir_win.path(), &genesis);
    for chain in [&seq, &win] {
        assert_eq!(chain.tip(), tip_of(&blocks));
        assert_eq!(chain.utxo_digest().unwrap(), expected);
        assert_eq!(chain.index().len(), blocks.len() + 1);
    }
    for block in &blocks {
        let hash = block.hash();
        assert_eq!(
            seq.store().statuses(&hash).unwrap(),
            win.store().statuses(&hash).unwrap()
        );
        assert_eq!(
            seq.store().undo(&hash).unwrap(),
            win.store().undo(&hash).unwrap()
        );
        assert_eq!(seq.store().block(&hash).unwrap().as_ref(), Some(block));
        assert_eq!(
            seq.store().main_chain_hash(block.header.height).unwrap(),
            Some(hash)
        );
    }
}

/// A main chain of `prefix + depth` blocks, then a competing branch of `depth + 1` blocks from
/// the end of the prefix: the branch wins with its last block, `depth` blocks are detached.
/// The digest must be the one of a store that only ever saw the prefix and the branch.
fn reorg(depth: usize, prefix: usize, branch_of: impl Fn(&common::Fork) -> Vec<Block>) {
    let mut generator = generator(11, 3, valid_mix());
    let genesis = generator.genesis().clone();
    let common_blocks = blocks(&mut generator, prefix);
    let fork = common::Fork {
        generator: generator.clone(),
        parent: common_blocks.last().map_or(genesis.hash(), Block::hash),
    };
    let main = blocks(&mut generator, depth);
    let branch = branch_of(&fork);
    assert_eq!(branch.len(), depth + 1);
    assert_ne!(branch[0].hash(), main[0].hash());

    let dir = tempfile::tempdir().unwrap();
    let mut chain = open_chain(dir.path(), &genesis);
    let report = chain.process_window(&common_blocks).unwrap();
    assert_eq!(report.accepted, prefix);
    for block in &main {
        assert_eq!(
            chain.process_block(block.clone()).unwrap().status,
            BlockStatus::MainChain
        );
    }
    let main_tip = tip_of(&main);
    for (i, block) in branch[..depth].iter().enumerate() {
        let outcome = chain.process_block(block.clone()).unwrap();
        // Lower, then as high with as much work: a tie in height never switches.
        assert_eq!(outcome.status, BlockStatus::SideChain, "branch block {i}");
        assert_eq!(outcome.tip, main_tip);
    }
    let outcome = chain.process_block(branch[depth].clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    assert_eq!(outcome.tip, tip_of(&branch));
    let mut detached: Vec<_> = main.iter().map(Block::hash).collect();
    detached.reverse();
    assert_eq!(outcome.detached, detached);
    assert_eq!(
        outcome.attached,
        branch.iter().map(Block::hash).collect::<Vec<_>>()
    );

    let winner: Vec<Block> = common_blocks.iter().chain(&branch).cloned().collect();
    let expected = memory_digest(&genesis, &winner);
    assert_eq!(chain.utxo_digest().unwrap(), expected);

    // A store that only saw the winning branch, block by block.
    let fresh_dir = tempfile::tempdir().unwrap();
    let mut fresh = open_chain(fresh_dir.path(), &genesis);
    for block in &winner {
        fresh.process_block(block.clone()).unwrap();
    }
    assert_eq!(fresh.utxo_digest().unwrap(), expected);

    // The losing blocks stay stored on their side branch; reopening changes nothing.
    drop(chain);
    let chain = open_chain(dir.path(), &genesis);
    assert_eq!(chain.tip(), tip_of(&branch));
    assert_eq!(chain.utxo_digest().unwrap(), expected);
    assert!(main.iter().all(|b| chain.index().contains(&b.hash())));
    assert!(main.iter().all(|b| !chain.index().is_main(&b.hash())));
    for block in &main {
        assert_eq!(chain.store().undo(&block.hash()).unwrap(), None);
    }
}

#[test]
fn reorg_of_depth_1_to_the_same_transactions_under_other_coinbases() {
    // The branch re-spends what the detached block spent: detach must restore it exactly.
    reorg(1, 112, |fork| {
        let mut generator = fork.generator.clone();
        let same = blocks(&mut generator, 2);
        relabel_coinbases(&same, fork.parent, b"fork")
    });
}

#[test]
fn reorg_of_depth_1_to_a_branch_of_other_blocks() {
    // The detached block's spends come back as they were (undo data), its outputs go.
    reorg(1, 115, |fork| {
        let program = fork.generator.wallet().p2wpkh_program(3);
        coinbase_branch(fork.generator.headers(), 2, b"fork", &program)
    });
}

#[test]
fn reorg_of_depth_30_to_a_longer_branch_of_other_blocks() {
    reorg(30, 110, |fork| {
        let program = fork.generator.wallet().p2wpkh_program(1);
        coinbase_branch(fork.generator.headers(), 31, b"fork", &program)
    });
}

#[test]
fn orphans_connect_when_their_parent_arrives_and_can_trigger_a_reorg() {
    let mut generator = generator(5, 2, Adversity::none());
    let genesis = generator.genesis().clone();
    let prefix = blocks(&mut generator, 20);
    let base = generator.headers().clone();
    let main = blocks(&mut generator, 5);
    let branch = coinbase_branch(&base, 8, b"orphan", &generator.wallet().p2wpkh_program(2));

    let dir = tempfile::tempdir().unwrap();
    let mut chain = open_chain(dir.path(), &genesis);
    chain.process_window(&prefix).unwrap();
    // The main blocks in reverse: all orphans until the first one arrives.
    for block in main[1..].iter().rev() {
        assert_eq!(
            chain.process_block(block.clone()).unwrap().status,
            BlockStatus::Orphan
        );
    }
    assert_eq!(chain.orphan_count(), 4);
    let outcome = chain.process_block(main[0].clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    assert_eq!(outcome.tip, tip_of(&main));
    assert_eq!(outcome.attached.len(), 5);
    assert_eq!(chain.orphan_count(), 0);

    // The heavier branch, also in reverse: its first block adopts the rest and reorganises.
    for block in branch[1..].iter().rev() {
        chain.process_block(block.clone()).unwrap();
    }
    let outcome = chain.process_block(branch[0].clone()).unwrap();
    assert_eq!(outcome.tip, tip_of(&branch));
    assert_eq!(outcome.detached.len(), 5);
    assert_eq!(outcome.attached.len(), 8);
    assert_eq!(chain.orphan_count(), 0);
    let winner: Vec<Block> = prefix.iter().chain(&branch).cloned().collect();
    assert_eq!(
        chain.utxo_digest().unwrap(),
        memory_digest(&genesis, &winner)
    );
    // Known blocks are not processed twice.
    assert_eq!(
        chain.process_block(main[2].clone()).unwrap().status,
        BlockStatus::AlreadyKnown
    );
}

/// A chain with `kind` injected at `height`, applied up to `height − 1`; then the bad block
/// must be rejected with an error `check` accepts, by both paths, leaving the state as it was.
fn rejects(kind: Injection, height: u64, check: impl Fn(&ChainError) -> bool) {
    let mut generator = generator(3, 4, Adversity::only(height, kind));
    let genesis = generator.genesis().clone();
    let generated = generator.generate(height as usize + 2);
    let bad = &generated[height as usize - 1];
    assert!(bad.injection(kind).is_some(), "{kind:?} was injected");
    let blocks: Vec<Block> = generated.iter().map(|g| g.block.clone()).collect();
    let pow = Arc::new(FlaggedPow::from_blocks(&generated));
    let good = &blocks[..height as usize - 1];
    let expected = memory_digest(&genesis, good);

    // Sequential path.
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open_chain_with(dir.path(), &genesis, pow.clone());
    chain.process_window(good).unwrap();
    let before = chain.tip();
    let bad_block = &blocks[height as usize - 1];
    let error = chain.process_block(bad_block.clone()).unwrap_err();
    assert!(check(&error), "{kind:?}: unexpected {error:?}");
    assert_eq!(chain.tip(), before);
    assert_eq!(chain.utxo_digest().unwrap(), expected);
    assert!(!chain.store().has_block(&bad_block.hash()).unwrap());
    assert!(!chain.index().contains(&bad_block.hash()));
    assert_eq!(
        chain.process_block(bad_block.clone()).unwrap_err(),
        ChainError::KnownInvalid {
            hash: bad_block.hash()
        }
    );
    let child = &blocks[height as usize];
    assert_eq!(
        chain.process_block(child.clone()).unwrap_err(),
        ChainError::InvalidAncestor {
            hash: child.hash(),
            ancestor: bad_block.hash()
        }
    );
    drop(chain);
    let chain = open_chain_with(dir.path(), &genesis, pow.clone());
    assert_eq!(chain.tip(), before);
    assert_eq!(chain.utxo_digest().unwrap(), expected);

    // PSWV path: a window with the bad block in the middle commits the prefix before it.
    let dir = tempfile::tempdir().unwrap();
    let mut chain = open_chain_with(dir.path(), &genesis, pow);
    let start = height as usize - 6;
    chain.process_window(&blocks[..start]).unwrap();
    let report = chain.process_window(&blocks[start..]).unwrap();
    assert_eq!(report.accepted, 5);
    let (index, error) = report.rejected.expect("rejected");
    assert_eq!(index, 5);
    assert!(check(&error), "{kind:?} (window): unexpected {error:?}");
    assert_eq!(chain.tip(), before);
    assert_eq!(chain.utxo_digest().unwrap(), expected);
    assert!(!chain.store().has_block(&bad_block.hash()).unwrap());
}

#[test]
fn bad_merkle_root_is_rejected_and_changes_nothing() {
    rejects(Injection::BadMerkleRoot, 30, |e| {
        matches!(
            e,
            ChainError::Block {
                error: BlockError::MismatchedTxRoot { .. },
                ..
            }
        )
    });
}

#[test]
fn bad_proof_of_work_is_rejected_and_changes_nothing() {
    rejects(Injection::BadPow, 12, |e| {
        matches!(
            e,
            ChainError::Block {
                error: BlockError::WorkProof { .. },
                ..
            }
        )
    });
}

#[test]
fn double_spend_in_a_block_is_rejected_and_changes_nothing() {
    rejects(Injection::DoubleSpendInBlock, 110, |e| {
        matches!(
            e,
            ChainError::Utxo {
                error: UtxoError::AlreadySpent { .. },
                ..
            }
        )
    });
}

#[test]
fn double_spend_across_blocks_is_rejected_and_changes_nothing() {
    rejects(Injection::DoubleSpendAcrossBlocks, 112, |e| {
        matches!(
            e,
            ChainError::Utxo {
                error: UtxoError::NotFound { .. },
                ..
            }
        )
    });
}

#[test]
fn a_database_of_another_network_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = bystack_engine::genesis::genesis_block(bystack_engine::consensus::Network::Devnet);
    let mainnet =
        bystack_engine::genesis::genesis_block(bystack_engine::consensus::Network::Mainnet);
    drop(open_chain(dir.path(), &devnet));
    let store = bystack_node::store::Store::open_rocksdb(dir.path(), Default::default()).unwrap();
    let error = bystack_node::chain::Chain::open(
        store,
        &mainnet,
        Arc::new(bystack_engine::validation::SkipPow),
        bystack_node::chain::ChainConfig::with_fixed_clock(NOW),
    )
    .unwrap_err();
    assert!(
        matches!(error, ChainError::GenesisMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn a_heavier_branch_that_does_not_connect_is_dropped_and_the_tip_stays() {
    // The branch's second block re-spends an output spent earlier: it passes block
    // validation when stored on the side, and fails only when the reorganisation connects it.
    let mut generator = generator(
        3,
        4,
        Adversity::only(114, Injection::DoubleSpendAcrossBlocks),
    );
    let genesis = generator.genesis().clone();
    let prefix = blocks(&mut generator, 112);
    let main = coinbase_branch(
        generator.headers(),
        2,
        b"main",
        &generator.wallet().p2wpkh_program(0),
    );
    let generated = generator.generate(3);
    assert!(generated[1]
        .injection(Injection::DoubleSpendAcrossBlocks)
        .is_some());
    let branch: Vec<Block> = generated.into_iter().map(|g| g.block).collect();

    let dir = tempfile::tempdir().unwrap();
    let mut chain = open_chain(dir.path(), &genesis);
    chain.process_window(&prefix).unwrap();
    chain.process_window(&main).unwrap();
    let tip = tip_of(&main);
    let digest = chain.utxo_digest().unwrap();
    for block in &branch[..2] {
        assert_eq!(
            chain.process_block(block.clone()).unwrap().status,
            BlockStatus::SideChain
        );
    }
    let error = chain.process_block(branch[2].clone()).unwrap_err();
    assert!(
        matches!(
            &error,
            ChainError::Utxo { hash, error: UtxoError::NotFound { .. } } if *hash == branch[1].hash()
        ),
        "{error:?}"
    );
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.utxo_digest().unwrap(), digest);
    assert!(chain.index().contains(&branch[0].hash()));
    for bad in &branch[1..] {
        assert!(!chain.index().contains(&bad.hash()));
        assert!(!chain.store().has_block(&bad.hash()).unwrap());
        assert!(chain.is_known_invalid(&bad.hash()));
    }
    drop(chain);
    let chain = open_chain(dir.path(), &genesis);
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.utxo_digest().unwrap(), digest);
    assert_eq!(chain.index().len(), 1 + 112 + 2 + 1);
}
