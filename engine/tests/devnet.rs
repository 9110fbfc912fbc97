//! The devnet wallet and chain generator: generated chains validate with the sequential path,
//! the wallet's view equals the UTXO set, each adversarial feature gives the expected first
//! invalid block or status, and generation is deterministic.

use bystack_engine::devnet::{
    validate_sequentially, Adversity, ChainGenerator, FlaggedPow, GeneratedBlock, GeneratorConfig,
    Injection, SequentialError, SequentialOutcome,
};
use bystack_engine::hash::Hash;
use bystack_engine::validation::{BlockError, SkipPow, TxError, UtxoEntry, UtxoError};
use bystack_engine::vm::VmError;
use std::collections::BTreeMap;

fn generate(
    seed: u64,
    txs: usize,
    n: usize,
    adversity: Adversity,
) -> (ChainGenerator, Vec<GeneratedBlock>) {
    let mut g = ChainGenerator::new(GeneratorConfig {
        seed,
        txs_per_block: txs,
        adversity,
    });
    let blocks = g.generate(n);
    (g, blocks)
}

fn run(g: &ChainGenerator, blocks: &[GeneratedBlock]) -> SequentialOutcome {
    let raw: Vec<_> = blocks.iter().map(|b| b.block.clone()).collect();
    validate_sequentially(g.genesis(), &raw, g.now(), &FlaggedPow::from_blocks(blocks))
}

/// The unspent entries of the store, minus the genesis output, equal the wallet's UTXOs.
fn assert_wallet_matches(g: &ChainGenerator, outcome: &SequentialOutcome) {
    let genesis_out = g.genesis().transactions[0].mapped.results[0].id;
    let store: BTreeMap<Hash, UtxoEntry> = outcome
        .store
        .entries()
        .iter()
        .filter(|(id, e)| !e.spent && **id != genesis_out)
        .map(|(id, e)| (*id, *e))
        .collect();
    let wallet: BTreeMap<Hash, UtxoEntry> = g
        .wallet()
        .utxos()
        .values()
        .map(|u| {
            (
                u.output_id,
                UtxoEntry {
                    is_coinbase: u.coinbase,
                    block_height: u.height,
                    spent: false,
                },
            )
        })
        .collect();
    assert_eq!(store, wallet);
}

#[test]
fn valid_chain_of_300_blocks_validates_and_matches_the_wallet() {
    let (g, blocks) = generate(7, 5, 300, Adversity::none());
    let outcome = run(&g, &blocks);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.connected, 300);
    // Blocks after maturity are full, and the statuses are what the generator committed to.
    let txs: usize = blocks.iter().map(|b| b.block.transactions.len()).sum();
    assert!(txs > 300 + 150 * 5, "only {txs} transactions");
    for (b, s) in blocks.iter().zip(&outcome.statuses) {
        assert_eq!(&b.status_fail, s);
    }
    assert_wallet_matches(&g, &outcome);
    // The chain spends assets, retires, and spends outputs of the same block.
    let retirements = blocks
        .iter()
        .flat_map(|b| &b.block.transactions)
        .flat_map(|t| &t.mapped.results)
        .filter(|r| r.kind == bystack_engine::EntryType::Retirement)
        .count();
    assert!(retirements > 0);
    let same_block = blocks.iter().any(|b| {
        let created: Vec<Hash> = b
            .block
            .transactions
            .iter()
            .flat_map(|t| t.mapped.result_ids())
            .collect();
        b.block
            .transactions
            .iter()
            .flat_map(|t| &t.mapped.spent_output_ids)
            .any(|id| created.contains(id))
    });
    assert!(same_block, "no chain of spends inside a block");
}

#[test]
fn valid_injections_keep_the_chain_valid() {
    let adversity = Adversity {
        random: vec![(Injection::StatusFail, 0.3), (Injection::Retirement, 0.3)],
        at: vec![
            (103, Injection::DuplicateCoinbase),
            (104, Injection::CoinbaseSpendAtMaturity),
            (105, Injection::DuplicateCoinbase),
            (110, Injection::CoinbaseSpendAtMaturity),
        ],
    };
    let (g, blocks) = generate(3, 2, 130, adversity);
    let outcome = run(&g, &blocks);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(blocks.iter().all(|b| !b.intended_invalid()));
    let fails = outcome.statuses.iter().flatten().filter(|s| **s).count();
    assert!(fails > 0, "no status-fail transaction");
    for h in [103, 104, 105, 110] {
        assert!(
            !blocks[h - 1].injected.is_empty(),
            "nothing injected at {h}"
        );
    }
    // Blocks 103 and 105 have the same coinbase output ID.
    assert_eq!(
        blocks[102].block.transactions[0].mapped.results[0].id,
        blocks[104].block.transactions[0].mapped.results[0].id
    );
    assert_wallet_matches(&g, &outcome);
}

/// Generates a 115-block chain with `feature` at height 112 and returns the first error.
fn first_error(feature: Injection) -> (usize, SequentialError, GeneratedBlock) {
    let (g, blocks) = generate(11, 3, 115, Adversity::only(112, feature));
    let b = &blocks[111];
    assert!(
        b.injection(feature).is_some(),
        "{feature:?} was not injected"
    );
    assert!(b.intended_invalid());
    let outcome = run(&g, &blocks);
    let (index, error) = outcome.error.expect("an invalid block");
    assert_eq!(outcome.connected, 111);
    (index, error, b.clone())
}

#[test]
fn each_invalid_injection_gives_its_error_at_its_block() {
    for feature in Injection::ALL.into_iter().filter(|f| f.invalidates_block()) {
        let (index, error, b) = first_error(feature);
        assert_eq!(index, 111, "{feature:?}");
        let injected = b.injection(feature).unwrap().clone();
        let id = injected.output_id;
        match feature {
            Injection::CoinbaseSpendBeforeMaturity => assert!(
                matches!(error, SequentialError::Utxo(UtxoError::CoinbaseNotMature { id: e, created: 13, height: 112 }) if Some(e) == id),
                "{error:?}"
            ),
            Injection::DoubleSpendInBlock => assert!(
                matches!(error, SequentialError::Utxo(UtxoError::AlreadySpent { id: e }) if Some(e) == id),
                "{error:?}"
            ),
            Injection::DoubleSpendAcrossBlocks | Injection::SpendBeforeCreation => assert!(
                matches!(error, SequentialError::Utxo(UtxoError::NotFound { id: e }) if Some(e) == id),
                "{feature:?}: {error:?}"
            ),
            Injection::BadBtmSignature => assert!(
                matches!(
                    error,
                    SequentialError::Block(BlockError::Tx {
                        index,
                        error: TxError::Vm { error: VmError::FalseVmResult, .. },
                        ..
                    }) if Some(index) == injected.tx_index
                ),
                "{error:?}"
            ),
            Injection::BadMerkleRoot => assert!(
                matches!(
                    error,
                    SequentialError::Block(BlockError::MismatchedTxRoot { .. })
                ),
                "{error:?}"
            ),
            Injection::BadCoinbaseAmount => assert!(
                matches!(error, SequentialError::Block(BlockError::CoinbaseAmount { expected, got }) if got == expected + 1),
                "{error:?}"
            ),
            Injection::BadPow => assert_eq!(
                error,
                SequentialError::Block(BlockError::WorkProof {
                    hash: b.block.hash()
                })
            ),
            _ => unreachable!(),
        }
    }
}

#[test]
fn bad_pow_is_only_bad_under_the_flagging_double() {
    let (g, blocks) = generate(11, 1, 105, Adversity::only(104, Injection::BadPow));
    let raw: Vec<_> = blocks.iter().map(|b| b.block.clone()).collect();
    let outcome = validate_sequentially(g.genesis(), &raw, g.now(), &SkipPow);
    assert!(outcome.error.is_none());
}

#[test]
fn chain_crosses_a_seed_epoch() {
    let (g, _) = generate(5, 0, 260, Adversity::none());
    let h = g.headers();
    assert_eq!(h.seed(256), h.seed(1));
    assert_eq!(h.seed(257), h.hash(256));
    assert_eq!(h.seed(260), h.hash(256));
}

#[test]
fn same_seed_same_bytes() {
    let adversity = Adversity::random(&Injection::ALL, 0.05);
    let encode = |seed| {
        let (_, blocks) = generate(seed, 3, 130, adversity.clone());
        blocks
            .iter()
            .map(|b| b.block.encode().unwrap())
            .collect::<Vec<_>>()
    };
    let a = encode(42);
    assert_eq!(a, encode(42));
    assert_ne!(a, encode(43));
}
