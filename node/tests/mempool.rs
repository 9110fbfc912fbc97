//! The mempool behind the node service, on a real RocksDB chain (proof of work skipped):
//! admission and its typed refusals, double spends, fee-per-gas order in templates with
//! parents before children, the size cap with eviction, removal of mined, conflicting and
//! expired transactions on a new tip, and re-admission after a depth-1 reorganisation.

#![cfg(feature = "rocksdb")]

mod common;

use std::sync::Arc;

use bystack_engine::consensus::{Network, MAX_BLOCK_GAS};
use bystack_engine::devnet::{Adversity, Utxo, Wallet, Witness};
use bystack_engine::tx::{CoinbaseInput, SpendInput};
use bystack_engine::validation::TxError;
use bystack_engine::{Block, Hash, Transaction, TxData, TxInput, TxOutput, BTM_ASSET_ID};
use bystack_node::chain::BlockStatus;
use bystack_node::mempool::{MempoolConfig, MempoolError};
use bystack_node::service::{Node, NodeConfig, NodeError, NodeEvent};
use bystack_node::store::RocksKv;
use bystack_node::template::{build_template, Candidate, TemplateSpec, DEFAULT_COINBASE_PROGRAM};
use tokio::sync::broadcast::error::TryRecvError;

/// Chain length before the tests start: the first coinbases are mature.
const PREFIX: usize = 110;
/// A fee that pays for the gas of a one-input P2WPKH transfer (10,000 gas at 200 neu).
const BASE_FEE: u64 = 2_000_000;

struct Setup {
    node: Arc<Node<RocksKv>>,
    wallet: Wallet,
    _dir: tempfile::TempDir,
}

fn setup(mempool: MempoolConfig) -> Setup {
    let mut generator = common::generator(21, 0, Adversity::none());
    let genesis = generator.genesis().clone();
    let blocks = common::blocks(&mut generator, PREFIX);
    let dir = tempfile::tempdir().unwrap();
    let chain = common::open_chain(dir.path(), &genesis);
    let node = Node::new(
        chain,
        NodeConfig {
            mempool,
            ..NodeConfig::new(Network::Devnet)
        },
    );
    let report = node.submit_window(blocks).unwrap();
    assert_eq!((report.accepted, report.rejected), (PREFIX, None));
    Setup {
        node,
        wallet: generator.wallet().clone(),
        _dir: dir,
    }
}

impl Setup {
    fn next_height(&self) -> u64 {
        self.node.tip().height + 1
    }

    /// The `n` oldest mature wallet coins.
    fn coins(&self, n: usize) -> Vec<Utxo> {
        let coins: Vec<Utxo> = self
            .wallet
            .spendable(self.next_height())
            .into_iter()
            .take(n)
            .cloned()
            .collect();
        assert_eq!(coins.len(), n);
        coins
    }
}

/// A signed transfer of `amount` (behind `input`) minus `fee` to wallet key `to`.
fn pay(wallet: &Wallet, input: TxInput, amount: u64, fee: u64, to: u32) -> Transaction {
    pay_until(wallet, input, amount, fee, to, 0)
}

fn pay_until(
    wallet: &Wallet,
    input: TxInput,
    amount: u64,
    fee: u64,
    to: u32,
    time_range: u64,
) -> Transaction {
    let data = TxData {
        version: 1,
        time_range,
        inputs: vec![input],
        outputs: vec![TxOutput::new(
            BTM_ASSET_ID,
            amount - fee,
            wallet.p2wpkh_program(to),
        )],
    };
    wallet.sign(data, &[])
}

/// A spend of output `index` of `tx`.
fn spend_output(tx: &Transaction, index: usize) -> (TxInput, u64) {
    let out = &tx.data.outputs[index];
    let input = TxInput::Spend(SpendInput {
        source_id: tx.mapped.mux_id,
        asset_id: out.asset_id,
        amount: out.amount,
        source_position: index as u64,
        control_program: out.control_program.clone(),
        ..SpendInput::default()
    });
    (input, out.amount)
}

fn coin_tx(wallet: &Wallet, coin: &Utxo, fee: u64) -> Transaction {
    pay(wallet, coin.spend_input(), coin.amount, fee, 1)
}

fn mempool_error(result: Result<Hash, NodeError>) -> MempoolError {
    match result {
        Err(NodeError::Mempool(e)) => e,
        other => panic!("expected a mempool error, got {other:?}"),
    }
}

/// The template's transactions after the coinbase.
fn template_ids(node: &Node<RocksKv>) -> Vec<Hash> {
    let template = node.block_template().unwrap();
    template.block.transactions[1..]
        .iter()
        .map(Transaction::id)
        .collect()
}

/// Mines the current template (proof of work skipped) and returns the block.
fn mine(node: &Node<RocksKv>) -> Block {
    let work = node.get_work().unwrap();
    let outcome = node.submit_work(&work.header).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    node.block_by_hash(&outcome.tip.hash).unwrap().unwrap()
}

/// A coinbase block on `parent` holding `txs`, tagged so it differs from the node's.
fn block_on(node: &Node<RocksKv>, parent: &Hash, txs: &[Transaction], tag: &[u8]) -> Block {
    node.with_chain(|chain| {
        let spec = TemplateSpec {
            parent: chain.index().parent_info(parent).unwrap(),
            timestamp: chain.now(),
            program: &DEFAULT_COINBASE_PROGRAM,
            arbitrary: tag,
            max_gas: MAX_BLOCK_GAS,
        };
        let candidates: Vec<Candidate> = txs
            .iter()
            .map(|tx| Candidate::new(Arc::new(tx.clone())))
            .collect();
        let template = build_template(&spec, &candidates, chain.store()).unwrap();
        assert_eq!(template.block.transactions.len(), txs.len() + 1, "all fit");
        template.block
    })
    .unwrap()
}

#[test]
fn admission_refuses_double_spends_missing_immature_invalid_and_coinbase_transactions() {
    let s = setup(MempoolConfig::default());
    let mut events = s.node.subscribe();
    let coins = s.coins(2);
    let a = coin_tx(&s.wallet, &coins[0], BASE_FEE);
    let id = s.node.submit_transaction(a.clone()).unwrap();
    assert_eq!(id, a.id());
    assert!(s.node.mempool_contains(&id));
    match events.try_recv() {
        Ok(NodeEvent::TxAdmitted { id: got, tx }) => {
            assert_eq!(got, id);
            assert_eq!(*tx, a);
        }
        other => panic!("expected TxAdmitted, got {other:?}"),
    }

    assert_eq!(
        mempool_error(s.node.submit_transaction(a.clone())),
        MempoolError::AlreadyInPool { id }
    );
    // The same coin, another fee: a different transaction spending the same output.
    let double = coin_tx(&s.wallet, &coins[0], 2 * BASE_FEE);
    assert_eq!(
        mempool_error(s.node.submit_transaction(double.clone())),
        MempoolError::DoubleSpend {
            id: double.id(),
            output: coins[0].output_id,
            spent_by: id,
        }
    );

    // An output nobody created.
    let mut ghost = coins[1].clone();
    ghost.amount += 1;
    let missing = coin_tx(&s.wallet, &ghost, BASE_FEE);
    assert!(matches!(
        mempool_error(s.node.submit_transaction(missing)),
        MempoolError::MissingInput { .. }
    ));

    // The newest coinbase output: 99 blocks short of maturity.
    let newest = s
        .wallet
        .utxos()
        .values()
        .max_by_key(|u| u.height)
        .unwrap()
        .clone();
    assert!(!newest.mature_at(s.next_height()));
    let immature = coin_tx(&s.wallet, &newest, BASE_FEE);
    assert_eq!(
        mempool_error(s.node.submit_transaction(immature.clone())),
        MempoolError::ImmatureCoinbase {
            id: immature.id(),
            output: newest.output_id,
            created: newest.height,
            height: s.next_height(),
        }
    );

    // A bad signature on the BTM input: the gas never becomes valid.
    let data = coin_tx(&s.wallet, &coins[1], BASE_FEE).data;
    let bad = s.wallet.sign(data, &[Witness::BadSignature]);
    assert!(matches!(
        mempool_error(s.node.submit_transaction(bad)),
        MempoolError::Invalid { .. }
    ));

    // Fees above the inputs: negative BTM balance.
    let overspend = coin_tx(&s.wallet, &coins[1], 0);
    let mut data = overspend.data.clone();
    data.outputs[0].amount = coins[1].amount + 1;
    let overspend = s.wallet.sign(data, &[]);
    assert!(matches!(
        mempool_error(s.node.submit_transaction(overspend)),
        MempoolError::Invalid {
            error: TxError::GasCalculate { .. },
            ..
        }
    ));

    let coinbase = Transaction::new(TxData {
        version: 1,
        time_range: 0,
        inputs: vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary: b"not in a block".to_vec(),
            ..CoinbaseInput::default()
        })],
        outputs: vec![TxOutput::new(BTM_ASSET_ID, 1, vec![0x51])],
    })
    .unwrap();
    assert!(matches!(
        mempool_error(s.node.submit_transaction(coinbase)),
        MempoolError::Coinbase { .. }
    ));

    assert_eq!(s.node.mempool_len(), 1);
    let m = s.node.metrics().snapshot();
    assert_eq!((m.txs_admitted, m.txs_rejected), (1, 7));
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
}

#[test]
fn templates_order_by_fee_per_gas_with_parents_first_and_pass_validation() {
    let s = setup(MempoolConfig::default());
    let coins = s.coins(4);
    let low = coin_tx(&s.wallet, &coins[0], BASE_FEE);
    let high = coin_tx(&s.wallet, &coins[1], 3 * BASE_FEE);
    let mid = coin_tx(&s.wallet, &coins[2], 2 * BASE_FEE);
    // A cheap parent whose child pays the most: the child cannot come first.
    let parent = coin_tx(&s.wallet, &coins[3], BASE_FEE / 2);
    let (input, amount) = spend_output(&parent, 0);
    let child = pay(&s.wallet, input, amount, 10 * BASE_FEE, 2);
    for tx in [&low, &high, &mid, &parent, &child] {
        s.node.submit_transaction(tx.clone()).unwrap();
    }
    assert_eq!(s.node.mempool_len(), 5);
    assert_eq!(
        template_ids(&s.node),
        vec![high.id(), mid.id(), low.id(), parent.id(), child.id()]
    );
    let template = s.node.block_template().unwrap();
    let fees = BASE_FEE * 6 + BASE_FEE / 2 + 10 * BASE_FEE;
    assert_eq!(template.fees, fees);
    assert_eq!(
        template.block.transactions[0].data.outputs[0].amount,
        bystack_engine::consensus::block_subsidy(s.next_height()) + fees
    );
    assert_eq!(
        template.block.transactions[0].data.outputs[0].control_program,
        [0x51]
    );

    // The chain's own validation accepts the template, and the pool empties.
    let mut events = s.node.subscribe();
    let block = mine(&s.node);
    assert_eq!(block.transactions.len(), 6);
    assert_eq!(s.node.mempool_len(), 0);
    match events.try_recv() {
        Ok(NodeEvent::BlockConnected { hash, height, .. }) => {
            assert_eq!((hash, height), (block.hash(), PREFIX as u64 + 1));
        }
        other => panic!("expected BlockConnected, got {other:?}"),
    }
    assert!(matches!(
        events.try_recv(),
        Ok(NodeEvent::TipChanged { .. })
    ));
}

#[test]
fn a_full_pool_evicts_the_cheapest_per_gas_with_descendants_or_refuses() {
    let s = setup(MempoolConfig {
        max_txs: 3,
        ..MempoolConfig::default()
    });
    let coins = s.coins(5);
    let cheap = coin_tx(&s.wallet, &coins[0], BASE_FEE);
    let (input, amount) = spend_output(&cheap, 0);
    let cheap_child = pay(&s.wallet, input, amount, 4 * BASE_FEE, 2);
    let mid = coin_tx(&s.wallet, &coins[1], 2 * BASE_FEE);
    for tx in [&cheap, &cheap_child, &mid] {
        s.node.submit_transaction(tx.clone()).unwrap();
    }
    // Not better than the cheapest: refused, nothing changes.
    let poor = coin_tx(&s.wallet, &coins[2], BASE_FEE / 2);
    assert!(matches!(
        mempool_error(s.node.submit_transaction(poor)),
        MempoolError::Full { .. }
    ));
    assert_eq!(s.node.mempool_len(), 3);
    // Better: the cheapest goes, and its child with it.
    let rich = coin_tx(&s.wallet, &coins[3], 3 * BASE_FEE);
    s.node.submit_transaction(rich.clone()).unwrap();
    let mut left: Vec<Hash> = s
        .node
        .mempool_transactions()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    left.sort();
    let mut want = vec![mid.id(), rich.id()];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn a_new_tip_removes_mined_conflicting_and_expired_transactions() {
    let s = setup(MempoolConfig::default());
    let coins = s.coins(3);
    let tip = s.node.tip().hash;
    let x = coin_tx(&s.wallet, &coins[0], BASE_FEE);
    let (input, amount) = spend_output(&x, 0);
    let x_child = pay(&s.wallet, input, amount, BASE_FEE, 3);
    let expiring = pay_until(
        &s.wallet,
        coins[1].spend_input(),
        coins[1].amount,
        BASE_FEE,
        1,
        s.next_height(),
    );
    for tx in [&x, &x_child, &expiring] {
        s.node.submit_transaction(tx.clone()).unwrap();
    }
    // Someone else mines a block spending x's coin with another transaction.
    let rival = coin_tx(&s.wallet, &coins[0], 5 * BASE_FEE);
    let block = block_on(&s.node, &tip, std::slice::from_ref(&rival), b"rival");
    let outcome = s.node.submit_block(block).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    // x conflicts (with its child); `expiring` is past its time range at the next height.
    assert_eq!(s.node.mempool_len(), 0);
    assert!(matches!(
        mempool_error(s.node.submit_transaction(x.clone())),
        MempoolError::MissingInput { .. }
    ));
    assert!(matches!(
        mempool_error(s.node.submit_transaction(expiring)),
        MempoolError::Invalid {
            error: TxError::BadTimeRange { .. },
            ..
        }
    ));

    // A mined pool transaction leaves and its pooled child now spends a chain output.
    let y = coin_tx(&s.wallet, &coins[2], BASE_FEE);
    let (input, amount) = spend_output(&y, 0);
    let y_child = pay(&s.wallet, input, amount, BASE_FEE, 3);
    s.node.submit_transaction(y.clone()).unwrap();
    s.node.submit_transaction(y_child.clone()).unwrap();
    let tip = s.node.tip().hash;
    let block = block_on(&s.node, &tip, std::slice::from_ref(&y), b"only y");
    s.node.submit_block(block).unwrap();
    assert_eq!(s.node.mempool_len(), 1);
    assert!(s.node.mempool_contains(&y_child.id()));
    let mined = mine(&s.node);
    assert_eq!(mined.transactions[1].id(), y_child.id());
    assert_eq!(s.node.mempool_len(), 0);
}

#[test]
fn a_reorg_gives_back_the_detached_transactions_that_are_still_valid() {
    let s = setup(MempoolConfig::default());
    let coins = s.coins(4);
    let fork_point = s.node.tip().hash;
    let a = coin_tx(&s.wallet, &coins[0], BASE_FEE);
    let b = coin_tx(&s.wallet, &coins[1], 2 * BASE_FEE);
    // The competing branch spends a's coin differently.
    let a_rival = coin_tx(&s.wallet, &coins[0], 3 * BASE_FEE);
    let side_1 = block_on(
        &s.node,
        &fork_point,
        std::slice::from_ref(&a_rival),
        b"side",
    );

    s.node.submit_transaction(a.clone()).unwrap();
    s.node.submit_transaction(b.clone()).unwrap();
    let main_1 = mine(&s.node);
    assert_eq!(main_1.transactions.len(), 3);
    assert_eq!(s.node.mempool_len(), 0);
    // A transaction pooled before the reorganisation, valid on both branches.
    let d = coin_tx(&s.wallet, &coins[2], BASE_FEE);
    s.node.submit_transaction(d.clone()).unwrap();
    // One pooled on main_1 only: it spends b's output, which the side branch lacks... until
    // b comes back to the pool, so it survives as b's child.
    let (input, amount) = spend_output(&b, 0);
    let b_child = pay(&s.wallet, input, amount, BASE_FEE, 2);
    s.node.submit_transaction(b_child.clone()).unwrap();

    let outcome = s.node.submit_block(side_1.clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::SideChain);
    assert_eq!(s.node.mempool_len(), 2);
    let mut events = s.node.subscribe();
    let side_2 = block_on(&s.node, &side_1.hash(), &[], b"side");
    let outcome = s.node.submit_block(side_2.clone()).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    assert_eq!(outcome.detached, vec![main_1.hash()]);
    assert_eq!(outcome.attached, vec![side_1.hash(), side_2.hash()]);

    // a is gone (its coin is spent by a_rival on the new chain); b, d and b's child remain.
    assert!(!s.node.mempool_contains(&a.id()));
    assert!(s.node.mempool_contains(&b.id()));
    assert!(s.node.mempool_contains(&d.id()));
    assert!(s.node.mempool_contains(&b_child.id()));
    assert_eq!(s.node.mempool_len(), 3);

    let mut connected = Vec::new();
    loop {
        match events.try_recv() {
            Ok(NodeEvent::BlockConnected { hash, .. }) => connected.push(hash),
            Ok(NodeEvent::TipChanged { tip }) => {
                assert_eq!(tip.hash, side_2.hash());
                break;
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(connected, vec![side_1.hash(), side_2.hash()]);

    // The next template holds them, b before its child, and the chain accepts it.
    let ids = template_ids(&s.node);
    assert_eq!(ids.len(), 3);
    let position = |id: Hash| ids.iter().position(|h| *h == id).unwrap();
    assert!(position(b.id()) < position(b_child.id()));
    mine(&s.node);
    assert_eq!(s.node.mempool_len(), 0);
}

#[test]
fn a_status_fail_transaction_is_pooled_mined_and_only_its_btm_output_can_be_spent() {
    let s = setup(MempoolConfig::default());
    let coin = &s.coins(1)[0];
    let (issuance, asset) = s.wallet.issuance_input(0, 1_000, b"pool");
    let data = TxData {
        version: 1,
        time_range: 0,
        inputs: vec![coin.spend_input(), issuance],
        outputs: vec![
            TxOutput::new(
                BTM_ASSET_ID,
                coin.amount - BASE_FEE,
                s.wallet.p2wpkh_program(1),
            ),
            TxOutput::new(asset, 1_000, s.wallet.p2wpkh_program(2)),
        ],
    };
    // The issuance signature is bad: the VM fails after the gas became valid.
    let failing = s.wallet.sign(data, &[Witness::Sign, Witness::BadSignature]);
    s.node.submit_transaction(failing.clone()).unwrap();
    let (input, _) = spend_output(&failing, 1);
    let asset_spend = s.wallet.sign(
        TxData {
            version: 1,
            time_range: 0,
            inputs: vec![input, spend_output(&failing, 0).0],
            outputs: vec![
                TxOutput::new(asset, 1_000, s.wallet.p2wpkh_program(3)),
                TxOutput::new(
                    BTM_ASSET_ID,
                    failing.data.outputs[0].amount - BASE_FEE,
                    s.wallet.p2wpkh_program(3),
                ),
            ],
        },
        &[],
    );
    assert!(matches!(
        mempool_error(s.node.submit_transaction(asset_spend)),
        MempoolError::MissingInput { .. }
    ));
    let (input, amount) = spend_output(&failing, 0);
    let btm_spend = pay(&s.wallet, input, amount, BASE_FEE, 3);
    s.node.submit_transaction(btm_spend.clone()).unwrap();

    let template = s.node.block_template().unwrap();
    assert_eq!(template.status_fail, [false, true, false]);
    let block = mine(&s.node);
    assert_eq!(
        block
            .transactions
            .iter()
            .map(Transaction::id)
            .collect::<Vec<_>>()[1..],
        [failing.id(), btm_spend.id()]
    );
    assert_eq!(s.node.mempool_len(), 0);
}

#[test]
fn work_on_a_template_rebuilt_for_new_transactions_is_still_accepted() {
    let s = setup(MempoolConfig::default());
    let coins = s.coins(2);
    let early = coin_tx(&s.wallet, &coins[0], BASE_FEE);
    s.node.submit_transaction(early.clone()).unwrap();
    let old_work = s.node.get_work().unwrap();
    let late = coin_tx(&s.wallet, &coins[1], BASE_FEE);
    s.node.submit_transaction(late.clone()).unwrap();
    let new_work = s.node.get_work().unwrap();
    assert_ne!(
        old_work.header.transactions_merkle_root,
        new_work.header.transactions_merkle_root
    );
    // The miner was still on the old template: its block holds only `early`.
    let outcome = s.node.submit_work(&old_work.header).unwrap();
    assert_eq!(outcome.status, BlockStatus::MainChain);
    let block = s.node.block_by_hash(&outcome.tip.hash).unwrap().unwrap();
    assert_eq!(
        block
            .transactions
            .iter()
            .map(Transaction::id)
            .collect::<Vec<_>>()[1..],
        [early.id()]
    );
    assert!(s.node.mempool_contains(&late.id()));
    // The newer template's parent is gone now.
    assert_eq!(
        s.node.submit_work(&new_work.header),
        Err(NodeError::StaleWork)
    );
}

#[test]
fn mining_settings_change_the_next_template_and_refuse_non_standard_programs() {
    let s = setup(MempoolConfig::default());
    let before = s.node.block_template().unwrap();
    assert_eq!(
        before.block.transactions[0].data.outputs[0].control_program,
        DEFAULT_COINBASE_PROGRAM
    );
    let program = s.wallet.p2wpkh_program(4);
    s.node.set_mining_program(program.clone()).unwrap();
    s.node.set_coinbase_arbitrary(b"pool-7".to_vec()).unwrap();
    assert!(matches!(
        s.node.set_mining_program(vec![0x52]),
        Err(NodeError::Template(_))
    ));
    assert_eq!(s.node.mining_program(), program);
    assert_eq!(s.node.coinbase_arbitrary(), b"pool-7");
    let block = mine(&s.node);
    let coinbase = &block.transactions[0];
    assert_eq!(coinbase.data.outputs[0].control_program, program);
    match &coinbase.data.inputs[0] {
        TxInput::Coinbase(c) => assert!(c.arbitrary.ends_with(b"pool-7")),
        other => panic!("not a coinbase: {other:?}"),
    }
}
