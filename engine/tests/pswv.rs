//! PSWV against the sequential oracle: both run on the same windows (chains grown from the
//! devnet genesis with real P2WPKH signatures and the proof of work skipped through
//! `SkipPow`), and must agree on the first invalid block, its error, the statuses and every
//! UTXO entry of the final store.

mod common;

use bystack_engine::block::Block;
use bystack_engine::consensus::{block_subsidy, Network};
use bystack_engine::ed25519::SigningKey;
use bystack_engine::genesis::genesis_block;
use bystack_engine::hash::{sha3, AssetId, Hash, BTM_ASSET_ID};
use bystack_engine::merkle::tx_merkle_root;
use bystack_engine::pswv::{
    sequential, validate_and_commit, validate_and_commit_windows, validate_window, ChainContext,
    Overlay, WindowError, WindowOutcome,
};
use bystack_engine::tx::{CoinbaseInput, SpendInput, Transaction, TxData, TxInput, TxOutput};
use bystack_engine::validation::{
    validate_tx, BlockContext, BlockError, MemoryUtxoStore, ParentInfo, SkipPow, UtxoEntry,
    UtxoError, UtxoStore, UtxoView, UtxoWrite,
};
use bystack_engine::vm::p2wpkh_program;
use ripemd::Digest as _;

const NOW: u64 = 2_000_000_000;
const COIN: u64 = 100_000_000;
const FEE: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Builders (after engine/tests/validation.rs)

fn key() -> SigningKey {
    SigningKey::from_seed(&[1; 32])
}

fn p2wpkh(k: &SigningKey) -> Vec<u8> {
    let hash: [u8; 20] = ripemd::Ripemd160::digest(k.public_key()).into();
    p2wpkh_program(&hash)
}

/// A spend of a made-up output (fund it in the base store with [`Chain::fund`]).
fn outside(seed: &str, asset: AssetId, amount: u64) -> TxInput {
    TxInput::Spend(SpendInput {
        source_id: sha3(seed.as_bytes()),
        asset_id: asset,
        amount,
        source_position: 0,
        control_program: p2wpkh(&key()),
        ..SpendInput::default()
    })
}

/// A spend of output `position` of `tx`.
fn spend_of(tx: &Transaction, position: usize) -> TxInput {
    let out = &tx.data.outputs[position];
    TxInput::Spend(SpendInput {
        source_id: tx.mapped.mux_id,
        asset_id: out.asset_id,
        amount: out.amount,
        source_position: position as u64,
        control_program: out.control_program.clone(),
        ..SpendInput::default()
    })
}

fn amount_of(input: &TxInput) -> u64 {
    match input {
        TxInput::Spend(s) => s.amount,
        _ => unreachable!(),
    }
}

/// Signs every input with the test key; inputs listed in `bad` sign the wrong message.
fn tx_signed(inputs: Vec<TxInput>, outputs: Vec<TxOutput>, bad: &[usize]) -> Transaction {
    let k = key();
    let mut data = TxData {
        version: 1,
        time_range: 0,
        inputs,
        outputs,
    };
    let unsigned = Transaction::new(data.clone()).unwrap();
    for (i, input) in data.inputs.iter_mut().enumerate() {
        let msg = if bad.contains(&i) {
            [7; 32]
        } else {
            unsigned.sighash(i).unwrap().0
        };
        if let TxInput::Spend(s) = input {
            s.arguments = vec![k.sign(&msg).to_vec(), k.public_key().to_vec()];
        }
    }
    Transaction::new(data).unwrap()
}

/// BTM inputs to `outputs` BTM outputs of equal share, paying [`FEE`].
fn btm_tx(inputs: Vec<TxInput>, outputs: usize) -> Transaction {
    let total: u64 = inputs.iter().map(amount_of).sum::<u64>() - FEE;
    let each = total / outputs as u64;
    let mut outs: Vec<TxOutput> = (0..outputs)
        .map(|_| TxOutput::new(BTM_ASSET_ID, each, p2wpkh(&key())))
        .collect();
    outs[0].amount += total - each * outputs as u64;
    tx_signed(inputs, outs, &[])
}

fn coinbase(height: u64, amount: u64) -> Transaction {
    Transaction::new(TxData {
        version: 1,
        time_range: 0,
        inputs: vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary: height.to_le_bytes().to_vec(),
            ..CoinbaseInput::default()
        })],
        outputs: vec![TxOutput::new(BTM_ASSET_ID, amount, p2wpkh(&key()))],
    })
    .unwrap()
}

/// A block on `parent`: a coinbase paying subsidy + fees, then `txs`, with correct roots.
fn block_on(parent: &ParentInfo, txs: Vec<Transaction>) -> Block {
    let height = parent.height + 1;
    let fees: u64 = txs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let context = BlockContext {
                version: 1,
                height,
                tx_index: Some(i + 1),
            };
            validate_tx(t, &context).btm_value
        })
        .sum();
    let mut all = vec![coinbase(height, block_subsidy(height) + fees)];
    all.extend(txs);
    common::assemble(parent, all)
}

/// A base store and context (genesis applied) and the window grown on top of it.
struct Chain {
    base: MemoryUtxoStore,
    start: ChainContext,
    tip: ChainContext,
    blocks: Vec<Block>,
}

impl Chain {
    fn new() -> Self {
        let genesis = genesis_block(Network::Devnet);
        let mut view = UtxoView::new();
        view.apply_block_with_status(&genesis, &[false]).unwrap();
        let mut base = MemoryUtxoStore::new();
        view.save(&mut base).unwrap();
        let start = ChainContext::genesis(&genesis);
        Chain {
            base,
            tip: start.clone(),
            start,
            blocks: Vec::new(),
        }
    }

    /// Puts the output `input` spends into the base store.
    fn fund_entry(&mut self, input: &TxInput, entry: UtxoEntry) {
        let probe = Transaction::new(TxData {
            version: 1,
            time_range: 0,
            inputs: vec![input.clone()],
            outputs: vec![TxOutput::new(BTM_ASSET_ID, 1, p2wpkh(&key()))],
        })
        .unwrap();
        let id = probe.mapped.spent_output_ids[0];
        self.base.write_batch(&[UtxoWrite::Put(id, entry)]).unwrap();
    }

    /// A funded BTM spend of `amount`.
    fn fund(&mut self, seed: &str, amount: u64) -> TxInput {
        let input = outside(seed, BTM_ASSET_ID, amount);
        self.fund_entry(
            &input,
            UtxoEntry {
                is_coinbase: false,
                block_height: 0,
                spent: false,
            },
        );
        input
    }

    fn next_parent(&self) -> ParentInfo {
        *self.tip.parent().unwrap()
    }

    /// Appends a block holding `txs` (after the coinbase).
    fn push(&mut self, txs: Vec<Transaction>) -> &Block {
        let block = block_on(&self.next_parent(), txs);
        self.push_block(block)
    }

    fn push_block(&mut self, block: Block) -> &Block {
        self.tip.advance(&block.header);
        self.blocks.push(block);
        self.blocks.last().unwrap()
    }
}

/// Runs both paths on the window and demands identical outcomes and final stores.
fn compare(chain: &Chain) -> WindowOutcome {
    compare_window(&chain.base, &chain.start, &chain.blocks)
}

fn compare_window(base: &MemoryUtxoStore, start: &ChainContext, blocks: &[Block]) -> WindowOutcome {
    let mut seq_store = base.clone();
    let seq = sequential::validate_and_apply(blocks, &mut seq_store, start, NOW, &SkipPow);
    let mut par_store = base.clone();
    let par = validate_and_commit(blocks, &mut par_store, start, NOW, &SkipPow).unwrap();
    assert_eq!(par, seq, "window outcome");
    assert_eq!(par_store.entries().len(), seq_store.entries().len());
    for (id, entry) in seq_store.entries() {
        assert_eq!(par_store.entries().get(id), Some(entry), "entry {id}");
    }
    for (block, status) in blocks.iter().zip(&seq.statuses) {
        assert_eq!(block.transactions.len(), status.len());
    }
    // The same path with every transaction on one thread.
    let mut serial_store = base.clone();
    let serial =
        sequential::validate_and_apply_serial(blocks, &mut serial_store, start, NOW, &SkipPow);
    assert_eq!(serial, seq, "serial outcome");
    assert_eq!(serial_store, seq_store, "serial store");
    // The sliding pipeline over windows of several sizes.
    for window in [1, 2, 5] {
        let mut store = base.clone();
        let piped = validate_and_commit_windows(blocks, window, &mut store, start, NOW, &SkipPow);
        assert_eq!(piped, seq, "pipelined outcome, windows of {window}");
        assert_eq!(store, seq_store, "pipelined store, windows of {window}");
    }
    seq
}

fn failure(outcome: &WindowOutcome) -> (usize, WindowError) {
    let f = outcome.failure.clone().expect("a failure");
    (f.index, f.error)
}

fn output_id(tx: &Transaction, position: usize) -> Hash {
    tx.mapped.results[position].id
}

// ---------------------------------------------------------------------------------------------
// Windows with known answers

/// 50 blocks: a spend chain across blocks, create-then-spend in the same block, fresh funds.
fn valid_chain(blocks: usize) -> Chain {
    let mut chain = Chain::new();
    let mut carried = chain.fund("carry", 1_000 * COIN);
    for b in 0..blocks {
        let fresh = chain.fund(&format!("fresh{b}"), 10 * COIN);
        let t1 = btm_tx(vec![fresh], 2);
        let t2 = btm_tx(vec![spend_of(&t1, 1)], 1);
        let t3 = btm_tx(vec![carried], 1);
        carried = spend_of(&t3, 0);
        chain.push(vec![t1, t2, t3]);
    }
    chain
}

#[test]
fn valid_chain_of_50_blocks() {
    let chain = valid_chain(50);
    let outcome = compare(&chain);
    assert_eq!(outcome.failure, None);
    assert_eq!(outcome.accepted(), 50);
    assert!(outcome.statuses.iter().flatten().all(|s| !s));
    assert_eq!(outcome.next, chain.tip);
}

#[test]
fn outputs_created_and_spent_inside_the_window_write_nothing() {
    let chain = valid_chain(5);
    let result = validate_window(&chain.blocks, &chain.base, &chain.start, NOW, &SkipPow);
    assert_eq!(result.outcome.failure, None);
    let written: Vec<Hash> = result
        .writes
        .iter()
        .map(|w| match w {
            UtxoWrite::Put(id, _) | UtxoWrite::Delete(id) => *id,
        })
        .collect();
    for block in &chain.blocks {
        // t1 output 1 is spent by t2 in the same block.
        assert!(!written.contains(&output_id(&block.transactions[1], 1)));
    }
    // t3 output 0 of block k is spent in block k+1: only the last one survives.
    for block in &chain.blocks[..4] {
        assert!(!written.contains(&output_id(&block.transactions[3], 0)));
    }
    assert!(written.contains(&output_id(&chain.blocks[4].transactions[3], 0)));
}

#[test]
fn window_of_one_block() {
    let chain = valid_chain(1);
    assert_eq!(compare(&chain).accepted(), 1);
}

#[test]
fn pipelined_windows_over_an_overlay_match_one_sequential_run() {
    let chain = valid_chain(30);
    let seq = compare(&chain);
    let mut store = chain.base.clone();
    let mut context = chain.start.clone();
    for window in chain.blocks.chunks(7) {
        let first = validate_window(window, &store, &context, NOW, &SkipPow);
        assert_eq!(first.outcome.failure, None);
        context = first.outcome.next.clone();
        store.write_batch(&first.writes).unwrap();
    }
    assert_eq!(context, seq.next);
    let mut seq_store = chain.base.clone();
    sequential::validate_and_apply(&chain.blocks, &mut seq_store, &chain.start, NOW, &SkipPow);
    assert_eq!(store, seq_store);

    // Two windows, the second validated over the first's overlay.
    let (a, b) = chain.blocks.split_at(13);
    let ra = validate_window(a, &chain.base, &chain.start, NOW, &SkipPow);
    let overlay = Overlay::with_writes(&chain.base, &ra.writes);
    let rb = validate_window(b, &overlay, &ra.outcome.next, NOW, &SkipPow);
    assert_eq!(rb.outcome.failure, None);
    let mut store = chain.base.clone();
    store.write_batch(&ra.writes).unwrap();
    store.write_batch(&rb.writes).unwrap();
    assert_eq!(store, seq_store);
}

#[test]
fn double_spend_in_one_block() {
    let mut chain = Chain::new();
    let input = chain.fund("a", 10 * COIN);
    chain.push(vec![]);
    let t1 = btm_tx(vec![input.clone()], 1);
    let t2 = btm_tx(vec![input], 2);
    let id = t1.mapped.spent_output_ids[0];
    chain.push(vec![t1, t2]);
    chain.push(vec![]);
    let outcome = compare(&chain);
    assert_eq!(
        failure(&outcome),
        (1, WindowError::Utxo(UtxoError::AlreadySpent { id }))
    );
}

#[test]
fn double_spend_across_blocks() {
    let mut chain = Chain::new();
    let input = chain.fund("a", 10 * COIN);
    let t1 = btm_tx(vec![input.clone()], 1);
    let t2 = btm_tx(vec![input], 2);
    let id = t1.mapped.spent_output_ids[0];
    chain.push(vec![t1]);
    chain.push(vec![]);
    chain.push(vec![t2]);
    let outcome = compare(&chain);
    // A spent non-coinbase output is deleted at the block boundary.
    assert_eq!(
        failure(&outcome),
        (2, WindowError::Utxo(UtxoError::NotFound { id }))
    );
    assert_eq!(outcome.accepted(), 2);
}

#[test]
fn create_then_spend_across_blocks_and_spend_before_creation() {
    let mut chain = Chain::new();
    let a = chain.fund("a", 10 * COIN);
    let t1 = btm_tx(vec![a], 2);
    let t2 = btm_tx(vec![spend_of(&t1, 0)], 1);
    let early = btm_tx(vec![spend_of(&t2, 0)], 1);
    chain.push(vec![t1.clone()]);
    chain.push(vec![early]);
    chain.push(vec![t2.clone()]);
    let outcome = compare(&chain);
    assert_eq!(
        failure(&outcome),
        (
            1,
            WindowError::Utxo(UtxoError::NotFound {
                id: output_id(&t2, 0)
            })
        )
    );

    // Inside one block: tx 1 spends what tx 2 creates.
    let mut chain = Chain::new();
    let a = chain.fund("a", 10 * COIN);
    let t1 = btm_tx(vec![a], 2);
    let t2 = btm_tx(vec![spend_of(&t1, 0)], 1);
    chain.push(vec![t2, t1]);
    let outcome = compare(&chain);
    assert!(matches!(
        failure(&outcome),
        (0, WindowError::Utxo(UtxoError::NotFound { .. }))
    ));
}

#[test]
fn coinbase_maturity_99_vs_100_blocks() {
    for (depth, mature) in [(99u64, false), (100, true)] {
        let mut chain = Chain::new();
        let cb = chain.push(vec![]).transactions[0].clone();
        for _ in 1..depth {
            chain.push(vec![]);
        }
        let spend = btm_tx(vec![spend_of(&cb, 0)], 1);
        chain.push(vec![spend]);
        chain.push(vec![]);
        let outcome = compare(&chain);
        if mature {
            assert_eq!(outcome.failure, None);
        } else {
            assert_eq!(
                failure(&outcome),
                (
                    99,
                    WindowError::Utxo(UtxoError::CoinbaseNotMature {
                        id: output_id(&cb, 0),
                        created: 1,
                        height: 100
                    })
                )
            );
        }
    }
}

#[test]
fn spent_coinbase_stays_marked_spent() {
    let mut chain = Chain::new();
    let cb = chain.push(vec![]).transactions[0].clone();
    for _ in 1..100 {
        chain.push(vec![]);
    }
    chain.push(vec![btm_tx(vec![spend_of(&cb, 0)], 1)]);
    chain.push(vec![]);
    chain.push(vec![btm_tx(vec![spend_of(&cb, 0)], 2)]);
    let outcome = compare(&chain);
    assert_eq!(
        failure(&outcome),
        (
            102,
            WindowError::Utxo(UtxoError::AlreadySpent {
                id: output_id(&cb, 0)
            })
        )
    );
}

#[test]
fn status_fail_tx_with_a_non_btm_asset() {
    let mut chain = Chain::new();
    let gold = sha3(b"gold");
    let btm = chain.fund("btm", COIN);
    let gold_in = outside("gold", gold, 500);
    chain.fund_entry(
        &gold_in,
        UtxoEntry {
            is_coinbase: false,
            block_height: 0,
            spent: false,
        },
    );
    let failing = tx_signed(
        vec![btm, gold_in.clone()],
        vec![
            TxOutput::new(BTM_ASSET_ID, COIN - 2 * FEE, p2wpkh(&key())),
            TxOutput::new(gold, 500, p2wpkh(&key())),
        ],
        &[1],
    );
    chain.push(vec![failing.clone()]);
    // The gold input was not consumed: spending it validly works.
    let fee_in = chain.fund("fee", COIN);
    let good = tx_signed(
        vec![fee_in, gold_in],
        vec![
            TxOutput::new(BTM_ASSET_ID, COIN - FEE, p2wpkh(&key())),
            TxOutput::new(gold, 500, p2wpkh(&key())),
        ],
        &[],
    );
    chain.push(vec![good]);
    // The gold output of the failed tx was never created; its BTM output was.
    let fee_in = chain.fund("fee2", COIN);
    chain.push(vec![btm_tx(vec![spend_of(&failing, 0), fee_in], 1)]);
    let fee_in = chain.fund("fee3", COIN);
    let ghost = tx_signed(
        vec![fee_in, spend_of(&failing, 1)],
        vec![
            TxOutput::new(BTM_ASSET_ID, COIN - FEE, p2wpkh(&key())),
            TxOutput::new(gold, 500, p2wpkh(&key())),
        ],
        &[],
    );
    chain.push(vec![ghost]);
    let outcome = compare(&chain);
    assert_eq!(outcome.statuses[0], vec![false, true]);
    assert_eq!(
        failure(&outcome),
        (
            3,
            WindowError::Utxo(UtxoError::NotFound {
                id: output_id(&failing, 1)
            })
        )
    );
}

#[derive(Clone, Copy, Debug)]
enum Corruption {
    MerkleRoot,
    CoinbaseAmount,
    BtmSignature,
}

fn corrupt(chain: &mut Chain, how: Corruption, seed: &str) {
    let parent = chain.next_parent();
    let input = chain.fund(seed, 10 * COIN);
    let block = match how {
        Corruption::MerkleRoot => {
            let mut b = block_on(&parent, vec![btm_tx(vec![input], 1)]);
            b.header.transactions_merkle_root = Hash::ZERO;
            b
        }
        Corruption::CoinbaseAmount => {
            let t = btm_tx(vec![input], 1);
            let mut b = block_on(&parent, vec![t]);
            b.transactions[0] = coinbase(parent.height + 1, block_subsidy(parent.height + 1));
            b.header.transactions_merkle_root = tx_merkle_root(&b.tx_ids());
            b
        }
        Corruption::BtmSignature => {
            let total = amount_of(&input) - FEE;
            let t = tx_signed(
                vec![input],
                vec![TxOutput::new(BTM_ASSET_ID, total, p2wpkh(&key()))],
                &[0],
            );
            block_on(&parent, vec![t])
        }
    };
    chain.push_block(block);
}

#[test]
fn bad_block_in_the_middle() {
    for how in [
        Corruption::MerkleRoot,
        Corruption::CoinbaseAmount,
        Corruption::BtmSignature,
    ] {
        let mut chain = valid_chain(5);
        corrupt(&mut chain, how, "bad");
        for _ in 0..4 {
            chain.push(vec![]);
        }
        let outcome = compare(&chain);
        let (index, error) = failure(&outcome);
        assert_eq!(index, 5, "{how:?}");
        let expected = matches!(
            (how, &error),
            (
                Corruption::MerkleRoot,
                WindowError::Block(BlockError::MismatchedTxRoot { .. })
            ) | (
                Corruption::CoinbaseAmount,
                WindowError::Block(BlockError::CoinbaseAmount { .. })
            ) | (
                Corruption::BtmSignature,
                WindowError::Block(BlockError::Tx { index: 1, .. })
            )
        );
        assert!(expected, "{how:?}: {error:?}");
        assert_eq!(outcome.accepted(), 5);
    }
}

// ---------------------------------------------------------------------------------------------
// Random windows

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A window of 1–12 blocks mixing valid spends with adversarial ones.
fn random_window(rng: &mut Rng, case: usize) -> Chain {
    let mut chain = Chain::new();
    let mut pool: Vec<TxInput> = (0..4)
        .map(|i| chain.fund(&format!("{case}-base{i}"), 50 * COIN))
        .collect();
    // Coinbase-like entries in the base, near maturity.
    for i in 0..usize::from(rng.chance(30)) {
        let input = outside(&format!("{case}-cb{i}"), BTM_ASSET_ID, 50 * COIN);
        chain.fund_entry(
            &input,
            UtxoEntry {
                is_coinbase: true,
                block_height: rng.below(4) as u64,
                spent: rng.chance(20),
            },
        );
        pool.push(input);
    }
    let mut spent: Vec<TxInput> = Vec::new();
    let blocks = 1 + rng.below(12);
    for b in 0..blocks {
        if rng.chance(8) {
            let how = [
                Corruption::MerkleRoot,
                Corruption::CoinbaseAmount,
                Corruption::BtmSignature,
            ][rng.below(3)];
            corrupt(&mut chain, how, &format!("{case}-bad{b}"));
            continue;
        }
        let mut txs = Vec::new();
        let mut later = Vec::new();
        for t in 0..rng.below(4) {
            let input = match rng.below(40) {
                0 if !spent.is_empty() => spent[rng.below(spent.len())].clone(),
                1 => outside(&format!("{case}-ghost{b}-{t}"), BTM_ASSET_ID, COIN),
                _ if !pool.is_empty() => pool.swap_remove(rng.below(pool.len())),
                _ => chain.fund(&format!("{case}-f{b}-{t}"), 10 * COIN),
            };
            spent.push(input.clone());
            let tx = btm_tx(vec![input], 1 + rng.below(2));
            for p in 0..tx.data.outputs.len() {
                if rng.chance(50) {
                    later.push(spend_of(&tx, p));
                } else {
                    pool.push(spend_of(&tx, p));
                }
            }
            txs.push(tx);
        }
        if rng.chance(10) && !txs.is_empty() {
            let i = rng.below(txs.len());
            let j = rng.below(txs.len());
            txs.swap(i, j);
        }
        let block = chain.push(txs);
        if rng.chance(5) {
            pool.push(spend_of(&block.transactions[0], 0));
        }
        pool.extend(later);
    }
    chain
}

#[test]
fn random_windows_agree_with_the_sequential_path() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut failures = 0;
    for case in 0..120 {
        let chain = random_window(&mut rng, case);
        if compare(&chain).failure.is_some() {
            failures += 1;
        }
    }
    assert!(
        failures > 10 && failures < 110,
        "mix of outcomes: {failures}"
    );
}
