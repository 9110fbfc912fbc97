//! One crafted transaction, block or store per validation error variant that no other test
//! produced, matched on the exact variant and its values.
//!
//! Where a variant is reachable from wire data, the transaction is round-tripped through its
//! encoding first, so the test shows that a peer can send it. Where it is not (the entry-graph
//! checks that `map_tx` always satisfies), the test edits the public `Transaction::mapped`
//! entry map by hand: the one level at which validation can meet such a graph. The doc comment
//! of each such variant says why the wire cannot reach it.

mod common;

use bystack_engine::block::Block;
use bystack_engine::consensus::{block_subsidy, initial_seed, Network};
use bystack_engine::entries::{EntryType, InputEntry, ResultEntry};
use bystack_engine::genesis::genesis_block;
use bystack_engine::hash::{sha3, AssetId, Hash, BTM_ASSET_ID};
use bystack_engine::tx::{
    CoinbaseInput, IssuanceInput, SpendInput, Transaction, TxData, TxInput, TxOutput,
};
use bystack_engine::validation::{
    validate_block, validate_tx, validate_txs, BlockContext, BlockError, MemoryUtxoStore,
    ParentInfo, SkipPow, TxError, TxOutcome, UtxoEntry, UtxoError, UtxoResult, UtxoStore, UtxoView,
    UtxoWrite,
};
use bystack_engine::vm::{
    op, parse_op, parse_program, run_raw, EmptyContext, Program, SignatureVerifier, VmError,
};
use bystack_engine::{DecodeError, EncodeError};
use common::assemble;

// ---------------------------------------------------------------------------------------------
// Builders

/// Below rule AA (142,500), where inputs that share an entry are not yet rejected up front.
const LOW: u64 = 1_000;
const RULE_AA: u64 = 142_500;

fn ctx(height: u64, tx_index: usize) -> BlockContext {
    BlockContext {
        version: 1,
        height,
        tx_index: Some(tx_index),
    }
}

/// A spend locked by a single `TRUE` (standard, needs no witness).
fn true_spend(seed: &str, asset: AssetId, amount: u64) -> SpendInput {
    SpendInput {
        source_id: sha3(seed.as_bytes()),
        asset_id: asset,
        amount,
        source_position: 0,
        control_program: vec![op::TRUE],
        ..SpendInput::default()
    }
}

fn true_output(asset: AssetId, amount: u64) -> TxOutput {
    TxOutput::new(asset, amount, vec![op::TRUE])
}

fn new_tx(inputs: Vec<TxInput>, outputs: Vec<TxOutput>) -> Transaction {
    Transaction::new(TxData {
        version: 1,
        time_range: 0,
        inputs,
        outputs,
    })
    .unwrap()
}

/// `tx` as a peer would send it: encoded, then decoded.
fn over_the_wire(tx: &Transaction) -> Transaction {
    let decoded = Transaction::decode(&tx.encode().unwrap()).unwrap();
    assert_eq!(decoded.id(), tx.id());
    decoded
}

/// A BTM-only transaction that validates: 1,000,000 in, 600,000 out, 400,000 fee.
fn valid_btm_tx() -> Transaction {
    let t = new_tx(
        vec![TxInput::Spend(true_spend("a", BTM_ASSET_ID, 1_000_000))],
        vec![true_output(BTM_ASSET_ID, 600_000)],
    );
    let o = validate_tx(&t, &ctx(LOW, 1));
    assert_eq!(o.error, None, "the base transaction is valid");
    t
}

fn spend_id(t: &Transaction, input: usize) -> Hash {
    t.mapped.inputs[input].entry_id().unwrap()
}

/// Points spend `input` of a mapped transaction at another output ID.
fn retarget_spend(t: &mut Transaction, input: usize, to: Hash) {
    match &mut t.mapped.inputs[input] {
        InputEntry::Spend {
            spent_output_id, ..
        } => *spent_output_id = to,
        other => panic!("input {input} is not a spend: {other:?}"),
    }
}

fn assert_invalidates_block(o: &TxOutcome, expected: TxError) {
    assert_eq!(o.error, Some(expected), "{o:?}");
    assert!(o.invalidates_block(), "{o:?}");
}

fn assert_status_fail(o: &TxOutcome, expected: TxError) {
    assert_eq!(o.error, Some(expected), "{o:?}");
    assert!(o.status_fail(), "{o:?}");
}

// ---------------------------------------------------------------------------------------------
// Reachable from wire data

#[test]
fn overflow_of_an_asset_sum_of_wire_amounts() {
    let gold = sha3(b"gold");
    let max = i64::MAX as u64;
    // Two sources of 2^63 - 1 each: every amount fits a varint63, their sum does not fit an
    // int64.
    let sources = new_tx(
        vec![
            TxInput::Spend(true_spend("fee", BTM_ASSET_ID, 1_000_000)),
            TxInput::Spend(true_spend("g1", gold, max)),
            TxInput::Spend(true_spend("g2", gold, max)),
        ],
        vec![true_output(BTM_ASSET_ID, 600_000), true_output(gold, 1)],
    );
    let o = validate_tx(&over_the_wire(&sources), &ctx(LOW, 1));
    assert_invalidates_block(
        &o,
        TxError::Overflow {
            asset_id: gold,
            amount: max,
        },
    );

    // Destinations: 0 - (2^63 - 1) - (2^63 - 1) underflows.
    let dests = new_tx(
        vec![
            TxInput::Spend(true_spend("fee", BTM_ASSET_ID, 1_000_000)),
            TxInput::Spend(true_spend("g", gold, 0)),
        ],
        vec![
            true_output(BTM_ASSET_ID, 600_000),
            true_output(gold, max),
            true_output(gold, max),
        ],
    );
    let o = validate_tx(&over_the_wire(&dests), &ctx(LOW, 1));
    assert_invalidates_block(
        &o,
        TxError::Overflow {
            asset_id: gold,
            amount: max,
        },
    );

    // One unit less on one side and the sum fits: the balance check takes over.
    let fits = new_tx(
        vec![
            TxInput::Spend(true_spend("fee", BTM_ASSET_ID, 1_000_000)),
            TxInput::Spend(true_spend("g1", gold, max)),
            TxInput::Spend(true_spend("g2", gold, 0)),
        ],
        vec![true_output(BTM_ASSET_ID, 600_000), true_output(gold, 1)],
    );
    assert_eq!(
        validate_tx(&fits, &ctx(LOW, 1)).error,
        Some(TxError::Unbalanced {
            asset_id: gold,
            balance: i64::MAX - 1
        })
    );
}

#[test]
fn overflow_of_a_single_amount_above_int64_needs_a_hand_built_transaction() {
    let gold = sha3(b"gold");
    let data = TxData {
        version: 1,
        time_range: 0,
        inputs: vec![
            TxInput::Spend(true_spend("fee", BTM_ASSET_ID, 1_000_000)),
            TxInput::Spend(true_spend("g", gold, 5)),
        ],
        outputs: vec![true_output(BTM_ASSET_ID, 600_000), true_output(gold, 5)],
    };
    let mut t = Transaction::new(data.clone()).unwrap();
    assert_eq!(validate_tx(&t, &ctx(LOW, 1)).error, None);

    // The wire cannot carry it: amounts are varint63.
    let mut too_big = data;
    too_big.outputs[1].amount = u64::MAX;
    assert!(matches!(
        too_big.encode(),
        Err(EncodeError::VarintRange {
            value: u64::MAX,
            ..
        })
    ));

    t.data.outputs[1].amount = u64::MAX;
    let o = validate_tx(&t, &ctx(LOW, 1));
    assert_invalidates_block(
        &o,
        TxError::Overflow {
            asset_id: gold,
            amount: u64::MAX,
        },
    );
}

/// Two identical spends map to one `spend1` entry, which keeps the ordinal of the last of them
/// (Bytom's `addEntry` overwrites), so mux source 0 meets a destination at position 1. Rule AA
/// rejects such transactions up front from height 142,500.
#[test]
fn mismatched_position_from_a_duplicated_spend_before_rule_aa() {
    let dup = TxInput::Spend(true_spend("dup", BTM_ASSET_ID, 1_000_000));
    let t = over_the_wire(&new_tx(
        vec![dup.clone(), dup],
        vec![true_output(BTM_ASSET_ID, 1_000_000)],
    ));
    assert!(t.mapped.input_ids[0].is_zero());
    assert_eq!(t.mapped.input_ids[1], spend_id(&t, 0));

    let o = validate_tx(&t, &ctx(RULE_AA - 1, 1));
    assert_status_fail(
        &o,
        TxError::MismatchedPosition {
            expected: 0,
            found: 1,
        },
    );
    // The duplicated input counts twice in the mux.
    assert_eq!(o.btm_value, 1_000_000);

    assert_invalidates_block(
        &validate_tx(&t, &ctx(RULE_AA, 1)),
        TxError::EmptyInputIds { index: 0 },
    );
}

/// A coinbase input that is not input 0 takes its destination from mux source 0, which is
/// another entry.
#[test]
fn mismatched_reference_from_a_coinbase_input_behind_a_spend() {
    let t = over_the_wire(&new_tx(
        vec![
            TxInput::Spend(true_spend("a", BTM_ASSET_ID, 1_000_000)),
            TxInput::Coinbase(CoinbaseInput {
                arbitrary: vec![7],
                ..CoinbaseInput::default()
            }),
        ],
        vec![true_output(BTM_ASSET_ID, 500_000)],
    ));
    let (spend, coinbase) = (spend_id(&t, 0), spend_id(&t, 1));
    assert_invalidates_block(
        &validate_tx(&t, &ctx(LOW, 0)),
        TxError::MismatchedReference {
            entry: coinbase,
            found: spend,
        },
    );
    // From rule AA the coinbase takes input ID 0 and leaves input 1 without one.
    assert_invalidates_block(
        &validate_tx(&t, &ctx(RULE_AA, 0)),
        TxError::EmptyInputIds { index: 1 },
    );
}

fn parent_of(block: &Block) -> ParentInfo {
    let h = &block.header;
    ParentInfo {
        height: h.height,
        hash: block.hash(),
        bits_expected: h.bits,
        median_time: h.timestamp,
        seed: initial_seed(),
    }
}

fn coinbase_paying(program: Vec<u8>, amount: u64) -> Transaction {
    new_tx(
        vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary: vec![1],
            ..CoinbaseInput::default()
        })],
        vec![TxOutput::new(BTM_ASSET_ID, amount, program)],
    )
}

#[test]
fn coinbase_paying_a_retirement_is_not_an_output() {
    let genesis = genesis_block(Network::Devnet);
    let parent = parent_of(&genesis);
    let subsidy = block_subsidy(1);

    let retired = over_the_wire(&coinbase_paying(vec![op::FAIL, 1, 2], subsidy));
    assert_eq!(retired.mapped.results[0].kind, EntryType::Retirement);
    let block = assemble(&parent, vec![retired.clone()]);
    // The coinbase transaction itself is valid; the block-level coinbase rule rejects it.
    assert_eq!(validate_txs(&block)[0].error, None);
    assert_eq!(
        validate_block(&block, &parent, 2_000_000_000, &SkipPow).unwrap_err(),
        BlockError::CoinbaseNotOutput {
            id: retired.mapped.results[0].id
        }
    );

    let paid = assemble(&parent, vec![coinbase_paying(vec![op::TRUE], subsidy)]);
    assert!(validate_block(&paid, &parent, 2_000_000_000, &SkipPow).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Only from a hand-built entry map (`map_tx` never produces these graphs)

#[test]
fn wrong_transaction_size_only_for_a_hand_set_size_of_zero() {
    let t = valid_btm_tx();
    // A decoded transaction occupies at least its serflags byte.
    assert!(over_the_wire(&t).serialized_size > 0);
    let mut zero = t;
    zero.serialized_size = 0;
    assert_invalidates_block(
        &validate_tx(&zero, &ctx(LOW, 1)),
        TxError::WrongTransactionSize,
    );
    // The version is checked first.
    zero.data.version = 2;
    assert_eq!(
        validate_tx(&zero, &ctx(LOW, 1)).error,
        Some(TxError::TxVersion {
            block_version: 1,
            tx_version: 2
        })
    );
}

#[test]
fn mismatched_value_when_a_spend_names_a_result_of_its_own_transaction() {
    let mut t = valid_btm_tx();
    let result = t.mapped.results[0].id;
    retarget_spend(&mut t, 0, result);
    // The "prevout" is now the 600,000 result; the spend carries 1,000,000 to the mux.
    assert_invalidates_block(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::MismatchedValue {
            entry: spend_id(&t, 0),
        },
    );
}

#[test]
fn entry_type_when_a_spend_names_a_retirement() {
    let mut t = new_tx(
        vec![TxInput::Spend(true_spend("a", BTM_ASSET_ID, 1_000_000))],
        vec![TxOutput::new(BTM_ASSET_ID, 600_000, vec![op::FAIL])],
    );
    assert_eq!(validate_tx(&t, &ctx(LOW, 1)).error, None);
    let retirement = t.mapped.results[0].id;
    retarget_spend(&mut t, 0, retirement);
    assert_invalidates_block(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::EntryType {
            id: retirement,
            kind: EntryType::Retirement,
        },
    );
}

#[test]
fn missing_entry_for_an_unknown_gas_input_or_result() {
    let ghost = sha3(b"ghost");
    let mut t = valid_btm_tx();
    t.mapped.gas_input_ids.push(ghost);
    assert_invalidates_block(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::MissingEntry { id: ghost },
    );

    // A result ID without an output behind it: found after the first result's walk made the
    // gas valid.
    let mut t = valid_btm_tx();
    t.mapped.results.push(ResultEntry {
        kind: EntryType::Output,
        id: ghost,
    });
    assert_status_fail(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::MissingEntry { id: ghost },
    );
}

/// Spend B's prevout claims to come from spend A at position 5. Validation never walks a
/// prevout of a decoded transaction; listing B's prevout as a gas input makes it do so.
#[test]
fn position_and_reference_of_a_walked_prevout() {
    let a = true_spend("a", BTM_ASSET_ID, 1_000_000);
    let a_id = spend_id(
        &new_tx(
            vec![TxInput::Spend(a.clone())],
            vec![true_output(BTM_ASSET_ID, 1)],
        ),
        0,
    );
    let prevout_from_a = |position: u64| {
        let b = SpendInput {
            source_id: a_id,
            source_position: position,
            ..true_spend("b", BTM_ASSET_ID, 1_000_000)
        };
        let mut t = new_tx(
            vec![TxInput::Spend(a.clone()), TxInput::Spend(b)],
            vec![true_output(BTM_ASSET_ID, 1_500_000)],
        );
        assert_eq!(spend_id(&t, 0), a_id);
        assert_eq!(validate_tx(&t, &ctx(LOW, 1)).error, None);
        let b_prevout = t.mapped.inputs[1].spent_output_id().unwrap();
        t.mapped.gas_input_ids.push(b_prevout);
        (t, b_prevout)
    };

    let (t, _) = prevout_from_a(5);
    assert_invalidates_block(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::Position { position: 5 },
    );

    // At position 0 the position is fine, but A's destination is the mux, not B's prevout.
    let (t, b_prevout) = prevout_from_a(0);
    assert_invalidates_block(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::MismatchedReference {
            entry: b_prevout,
            found: t.mapped.mux_id,
        },
    );
}

#[test]
fn mismatched_asset_id_of_an_issuance_given_another_asset() {
    let issuance = IssuanceInput {
        nonce: vec![1, 2, 3],
        amount: 100,
        asset_definition: b"{}".to_vec(),
        vm_version: 1,
        issuance_program: vec![op::TRUE],
        arguments: Vec::new(),
        commitment_suffix: Vec::new(),
        witness_suffix: Vec::new(),
    };
    let issued = issuance.asset_id();
    let other = sha3(b"other asset");
    let mut t = new_tx(
        vec![
            TxInput::Spend(true_spend("fee", BTM_ASSET_ID, 1_000_000)),
            TxInput::Issuance(issuance),
        ],
        vec![true_output(BTM_ASSET_ID, 600_000), true_output(issued, 100)],
    );
    assert_eq!(validate_tx(&t, &ctx(LOW, 1)).error, None);

    // On the wire the decoder rejects an issuance committing to another asset.
    let mut bytes = t.encode().unwrap();
    let at = bytes
        .windows(32)
        .position(|w| w == issued.0)
        .expect("the issuance commits to its asset");
    bytes[at..at + 32].copy_from_slice(&other.0);
    assert_eq!(
        Transaction::decode(&bytes).unwrap_err(),
        DecodeError::BadAssetId {
            committed: other,
            computed: issued
        }
    );

    // In a hand-built entry map the issuance entry (and, to stay balanced, the output) carry
    // the other asset.
    match &mut t.mapped.inputs[1] {
        InputEntry::Issuance { asset_id, .. } => *asset_id = other,
        e => panic!("not an issuance: {e:?}"),
    }
    t.data.outputs[1].asset_id = other;
    assert_status_fail(
        &validate_tx(&t, &ctx(LOW, 1)),
        TxError::MismatchedAssetId {
            computed: issued,
            wanted: other,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// UTXO view

#[test]
fn missing_status_when_the_status_list_is_short() {
    let genesis = genesis_block(Network::Devnet);
    let parent = parent_of(&genesis);
    let block = assemble(
        &parent,
        vec![
            coinbase_paying(vec![op::TRUE], block_subsidy(1)),
            valid_btm_tx(),
        ],
    );
    assert_eq!(
        UtxoView::new().apply_block_with_status(&block, &[false]),
        Err(UtxoError::MissingStatus { index: 1 })
    );
    // Detach walks the block backwards: the last transaction's status is the first missing.
    assert_eq!(
        UtxoView::new().detach_block(&block, &[false]),
        Err(UtxoError::MissingStatus { index: 1 })
    );
    assert_eq!(
        UtxoView::new().apply_block_with_status(&genesis, &[]),
        Err(UtxoError::MissingStatus { index: 0 })
    );
}

/// A store whose reads or writes fail.
struct BrokenStore {
    reads_fail: bool,
    inner: MemoryUtxoStore,
}

impl UtxoStore for BrokenStore {
    fn get(&self, id: &Hash) -> UtxoResult<Option<UtxoEntry>> {
        if self.reads_fail {
            return Err(UtxoError::Store {
                message: format!("read {id}: disk gone"),
            });
        }
        self.inner.get(id)
    }

    fn write_batch(&mut self, _writes: &[UtxoWrite]) -> UtxoResult<()> {
        Err(UtxoError::Store {
            message: "write: disk full".to_string(),
        })
    }
}

#[test]
fn store_errors_come_back_from_load_and_save() {
    let genesis = genesis_block(Network::Devnet);
    let parent = parent_of(&genesis);
    let t = valid_btm_tx();
    let spent = t.mapped.spent_output_ids[0];
    let block = assemble(
        &parent,
        vec![
            coinbase_paying(vec![op::TRUE], block_subsidy(1) + 400_000),
            t,
        ],
    );

    let broken = BrokenStore {
        reads_fail: true,
        inner: MemoryUtxoStore::new(),
    };
    assert_eq!(
        UtxoView::new().load_for_block(&broken, &block),
        Err(UtxoError::Store {
            message: format!("read {spent}: disk gone")
        })
    );

    let mut readable = BrokenStore {
        reads_fail: false,
        inner: MemoryUtxoStore::new(),
    };
    let mut view = UtxoView::new();
    view.load_for_block(&readable, &block).unwrap();
    view.apply_block_with_status(&genesis, &[false]).unwrap();
    assert_eq!(
        view.save(&mut readable),
        Err(UtxoError::Store {
            message: "write: disk full".to_string()
        })
    );
}

// ---------------------------------------------------------------------------------------------
// VM

#[test]
fn long_program_only_past_i32_max_bytes() {
    // Zeroed and never touched: the length check comes first, so no page is written.
    let len = i32::MAX as usize + 1;
    let huge = vec![0u8; len];
    assert_eq!(parse_op(&huge, 0).unwrap_err(), VmError::LongProgram);
    assert_eq!(parse_program(&huge).unwrap_err(), VmError::LongProgram);
    // i32::MAX bytes is still a program (a varstr31 on the wire holds at most this many).
    let at_limit = &huge[..len - 1];
    assert_eq!(parse_op(at_limit, 0).map(|i| i.op), Ok(op::FALSE));
}

/// Rejects every signature.
struct NoSignatures;

impl SignatureVerifier for NoSignatures {
    fn verify(&self, _: &[u8; 32], _: &[u8; 32], _: &[u8]) -> bool {
        false
    }
}

/// `VmError::Unexpected` stands for Go's recovered panic; our machine returns it only from
/// guards that cannot fire. Every opcode, alone or twice, over stacks of several shapes, ends
/// with some other result.
#[test]
fn no_opcode_ends_in_unexpected() {
    let stacks: [Vec<Vec<u8>>; 4] = [
        vec![],
        vec![vec![1]; 8],
        vec![vec![0xab; 32]; 8],
        vec![
            vec![],
            vec![2],
            vec![0x51],
            vec![1],
            vec![0xff; 8],
            vec![3],
            vec![1],
            vec![0],
        ],
    ];
    for o in 0..=255u8 {
        for code in [vec![o], vec![o, o]] {
            for args in &stacks {
                let program = Program {
                    vm_version: 1,
                    code: &code,
                };
                let out = run_raw(&EmptyContext, &NoSignatures, &program, args, 10_000);
                assert_ne!(
                    out.result,
                    Err(VmError::Unexpected),
                    "opcode {o:#04x}, code {code:02x?}, stack {args:02x?}"
                );
            }
        }
    }
}
