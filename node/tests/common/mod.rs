//! Helpers shared by the chain-store tests: devnet chains, forks built on a common prefix,
//! the engine's in-memory digests, and chains on a real RocksDB in a temporary directory.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use bystack_engine::consensus::block_subsidy;
use bystack_engine::devnet::{
    genesis_store, Adversity, ChainGenerator, GeneratorConfig, HeaderChain,
};
use bystack_engine::merkle::{tx_merkle_root, tx_status_merkle_root};
use bystack_engine::pswv::{sequential, ChainContext};
use bystack_engine::tx::CoinbaseInput;
use bystack_engine::validation::{MemoryUtxoStore, PowCheck, SkipPow};
use bystack_engine::{
    Block, BlockHeader, Hash, Transaction, TxData, TxInput, TxOutput, BTM_ASSET_ID,
};
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::store::{utxo_digest, RocksKv, RocksOptions, Store};

/// The validation clock of every test: far past any generated timestamp.
pub const NOW: u64 = 4_000_000_000;

/// A generator with `txs` ordinary transactions per block and the given adversity.
pub fn generator(seed: u64, txs: usize, adversity: Adversity) -> ChainGenerator {
    ChainGenerator::new(GeneratorConfig {
        seed,
        txs_per_block: txs,
        adversity,
    })
}

/// `n` blocks from `generator`.
pub fn blocks(generator: &mut ChainGenerator, n: usize) -> Vec<Block> {
    generator.generate(n).into_iter().map(|g| g.block).collect()
}

/// The engine's sequential path over `blocks` from the devnet genesis, in memory: the digest
/// of the UTXO set after each prefix (`digests[h]` after `h` blocks).
pub fn memory_digests(genesis: &Block, blocks: &[Block]) -> Vec<Hash> {
    let mut store = genesis_store(genesis);
    let mut context = ChainContext::genesis(genesis);
    let mut digests = vec![digest_of(&store)];
    for block in blocks {
        let outcome = sequential::validate_and_apply(
            std::slice::from_ref(block),
            &mut store,
            &context,
            NOW,
            &SkipPow,
        );
        assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
        context = outcome.next;
        digests.push(digest_of(&store));
    }
    digests
}

/// The digest of the engine's in-memory UTXO set after `blocks` (all valid).
pub fn memory_digest(genesis: &Block, blocks: &[Block]) -> Hash {
    let mut store = genesis_store(genesis);
    let outcome = sequential::validate_and_apply(
        blocks,
        &mut store,
        &ChainContext::genesis(genesis),
        NOW,
        &SkipPow,
    );
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    digest_of(&store)
}

/// [`utxo_digest`] of a memory store.
pub fn digest_of(store: &MemoryUtxoStore) -> Hash {
    utxo_digest(store.entries())
}

/// A chain on a RocksDB in `dir`, proof of work skipped, clock at [`NOW`].
pub fn open_chain(dir: &Path, genesis: &Block) -> Chain<RocksKv> {
    open_chain_with(dir, genesis, Arc::new(SkipPow))
}

/// [`open_chain`] with another proof-of-work check.
pub fn open_chain_with(
    dir: &Path,
    genesis: &Block,
    pow: Arc<dyn PowCheck + Send + Sync>,
) -> Chain<RocksKv> {
    let store = Store::open_rocksdb(dir, RocksOptions::default()).expect("open rocksdb");
    Chain::open(store, genesis, pow, ChainConfig::with_fixed_clock(NOW)).expect("open chain")
}

/// `n` coinbase-only blocks on top of `base`'s tip, paying `program`; `tag` makes the
/// coinbases (and so the blocks) differ from any other branch's.
pub fn coinbase_branch(base: &HeaderChain, n: usize, tag: &[u8], program: &[u8]) -> Vec<Block> {
    let mut headers = base.clone();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let parent = headers.tip_info();
        let height = parent.height + 1;
        let coinbase = coinbase_tx(height, [tag, &height.to_le_bytes()].concat(), program);
        let header = BlockHeader {
            version: 1,
            height,
            previous_block_hash: parent.hash,
            timestamp: headers.tip().timestamp.max(parent.median_time) + 150,
            transactions_merkle_root: tx_merkle_root(&[coinbase.id()]),
            transaction_status_hash: tx_status_merkle_root(&[false]),
            nonce: 0,
            bits: parent.bits_expected,
            commitment_suffix: Vec::new(),
        };
        headers.push(header.clone());
        out.push(Block {
            header,
            transactions: vec![coinbase],
        });
    }
    out
}

fn coinbase_tx(height: u64, arbitrary: Vec<u8>, program: &[u8]) -> Transaction {
    Transaction::new(TxData {
        version: 1,
        time_range: 0,
        inputs: vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary,
            ..CoinbaseInput::default()
        })],
        outputs: vec![TxOutput::new(
            BTM_ASSET_ID,
            block_subsidy(height),
            program.to_vec(),
        )],
    })
    .expect("a well-formed coinbase")
}

/// `blocks` (a linked branch whose first block's parent is `parent`) with every coinbase's
/// arbitrary data extended by `tag`, merkle roots recomputed and the branch re-linked: the
/// same transactions, other blocks, other coinbase outputs.
pub fn relabel_coinbases(blocks: &[Block], parent: Hash, tag: &[u8]) -> Vec<Block> {
    let mut prev = parent;
    blocks
        .iter()
        .map(|block| {
            let mut block = block.clone();
            let mut data = block.transactions[0].data.clone();
            if let TxInput::Coinbase(c) = &mut data.inputs[0] {
                c.arbitrary.extend_from_slice(tag);
            }
            block.transactions[0] = Transaction::new(data).expect("a well-formed coinbase");
            block.header.transactions_merkle_root = tx_merkle_root(&block.tx_ids());
            block.header.previous_block_hash = prev;
            prev = block.hash();
            block
        })
        .collect()
}

/// A generator positioned at the end of a common prefix, and the prefix's last block.
pub struct Fork {
    /// The generator after the prefix.
    pub generator: ChainGenerator,
    /// The hash of the prefix's last block (the branches' parent).
    pub parent: Hash,
}

/// `header` with a nonce that meets its bits under `seed`, found with the CPU backend (devnet
/// difficulty: 1 hash in 64 on average).
pub fn solve_header(mut header: BlockHeader, seed: &Hash) -> BlockHeader {
    let backend = bystack_kernels::open_backend("cpu", 1).expect("cpu backend");
    let prepared = backend.prepare(&seed.0).expect("seed");
    let template = header.template();
    let target = bystack_engine::pow::Target::from_bits(header.bits);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut start = 0;
    loop {
        let outcome = prepared
            .search(&template, start..start + 16, &target, &stop)
            .expect("search");
        if let Some(hit) = outcome.hits.first() {
            header.nonce = hit.nonce;
            return header;
        }
        start += 16;
        assert!(start < 1 << 16, "no nonce in 65,536 at devnet difficulty");
    }
}
