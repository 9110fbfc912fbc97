//! Block templates (Bytom's `mining.NewBlockTemplate`): the next block on a parent, holding a
//! coinbase and the best-paying pooled transactions that fit the block gas limit, with the
//! merkle and status roots, bits and seed the chain's own validation expects. Only the nonce
//! (and, as Bytom's `get-work` does, the timestamp) is left for the miner.
//!
//! Every candidate is checked again for the template's height and position: [`validate_tx`]
//! (a transaction whose gas never became valid is skipped; a status-fail one is included and
//! marked so in the status root), the gas limit, and the UTXO rules on a view of the parent's
//! state plus the transactions already taken (a transaction spending an output that is
//! missing, spent or immature — for instance because its pooled parent was skipped — is
//! skipped too). The coinbase pays the subsidy plus every fee to the mining program.

use bystack_engine::consensus::{
    block_subsidy, COINBASE_ARBITRARY_SIZE_LIMIT, COINBASE_PENDING_BLOCK_NUMBER, MAX_BLOCK_GAS,
};
use bystack_engine::merkle::{tx_merkle_root, tx_status_merkle_root};
use bystack_engine::tx::CoinbaseInput;
use bystack_engine::validation::{
    check_standard_tx, validate_tx, BlockContext, ParentInfo, UtxoError, UtxoStore, UtxoView,
};
use bystack_engine::{
    Block, BlockHeader, DecodeError, Hash, Transaction, TxData, TxInput, TxOutput, BTM_ASSET_ID,
};
use std::sync::Arc;

/// The coinbase program when none is configured: `OP_TRUE` (Bytom's default coinbase
/// program), anyone can spend the reward.
pub const DEFAULT_COINBASE_PROGRAM: [u8; 1] = [0x51];

/// Why a template could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The coinbase arbitrary data (height prefix included) is over 128 bytes.
    #[error("coinbase arbitrary data of {size} bytes exceeds {COINBASE_ARBITRARY_SIZE_LIMIT}")]
    ArbitraryTooLong {
        /// Its size.
        size: usize,
    },
    /// The coinbase cannot pay to the mining program (not standard).
    #[error("coinbase cannot pay to control program {program}: {reason}")]
    BadProgram {
        /// The program, in hex.
        program: String,
        /// Why.
        reason: String,
    },
    /// Subsidy plus fees overflow.
    #[error("coinbase amount overflows: subsidy {subsidy} + fees {fees}")]
    AmountOverflow {
        /// The subsidy.
        subsidy: u64,
        /// The fees.
        fees: u64,
    },
    /// The coinbase transaction cannot be built.
    #[error("cannot build the coinbase: {0}")]
    Coinbase(#[from] DecodeError),
    /// The UTXO store failed.
    #[error("utxo store: {message}")]
    Store {
        /// The store's error.
        message: String,
    },
}

/// Result alias for templates.
pub type TemplateResult<T> = Result<T, TemplateError>;

/// What goes into a template besides the candidates.
#[derive(Debug, Clone)]
pub struct TemplateSpec<'a> {
    /// Facts about the parent (the tip): bits, seed, median time.
    pub parent: ParentInfo,
    /// The header timestamp (raised to the median time past + 1 if lower).
    pub timestamp: u64,
    /// The coinbase's control program.
    pub program: &'a [u8],
    /// Extra coinbase arbitrary data (after Bytom's `0x00 ‖ decimal height` prefix).
    pub arbitrary: &'a [u8],
    /// Most gas the transactions may use; never above [`MAX_BLOCK_GAS`] (the consensus
    /// limit, what the node uses).
    pub max_gas: u64,
}

/// What validating a transaction for a block at `height` found ([`validate_tx`]'s outcome
/// when the gas became valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxFacts {
    /// The height it was validated for.
    pub height: u64,
    /// Its fee (the BTM left in the mux).
    pub fee: u64,
    /// Its gas.
    pub gas: u64,
    /// Whether it fails after the gas became valid (included as status fail).
    pub status_fail: bool,
}

/// A transaction offered to a template.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The transaction.
    pub tx: Arc<Transaction>,
    /// What the pool found when it validated it: reused when validated for the template's
    /// height (the outcome only depends on the height, a pooled transaction is never a
    /// coinbase), so that a template does not verify every signature again.
    pub facts: Option<TxFacts>,
}

impl Candidate {
    /// A candidate validated by the template itself.
    pub fn new(tx: Arc<Transaction>) -> Self {
        Candidate { tx, facts: None }
    }
}

/// A block template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockTemplate {
    /// The block (nonce 0).
    pub block: Block,
    /// The seed it is mined against.
    pub seed: Hash,
    /// Per transaction: status fail (what the status root commits to).
    pub status_fail: Vec<bool>,
    /// The fees the coinbase collects.
    pub fees: u64,
    /// Gas used by the transactions.
    pub gas_used: u64,
}

/// The coinbase arbitrary data of a block at `height`: `0x00`, the height in decimal, then
/// `extra` (Bytom's layout).
pub fn coinbase_arbitrary(height: u64, extra: &[u8]) -> Vec<u8> {
    let mut data = vec![0u8];
    data.extend_from_slice(height.to_string().as_bytes());
    data.extend_from_slice(extra);
    data
}

/// The coinbase transaction of a block at `height` paying `amount` to `program`.
///
/// # Errors
/// [`TemplateError::ArbitraryTooLong`], [`TemplateError::BadProgram`],
/// [`TemplateError::Coinbase`].
pub fn coinbase_transaction(
    height: u64,
    amount: u64,
    program: &[u8],
    extra: &[u8],
) -> TemplateResult<Transaction> {
    let arbitrary = coinbase_arbitrary(height, extra);
    if arbitrary.len() > COINBASE_ARBITRARY_SIZE_LIMIT {
        return Err(TemplateError::ArbitraryTooLong {
            size: arbitrary.len(),
        });
    }
    let tx = Transaction::new(TxData {
        version: 1,
        time_range: 0,
        inputs: vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary,
            ..CoinbaseInput::default()
        })],
        outputs: vec![TxOutput::new(BTM_ASSET_ID, amount, program.to_vec())],
    })?;
    check_standard_tx(&tx, height).map_err(|e| TemplateError::BadProgram {
        program: bystack_kernels::hex::encode(program),
        reason: e.to_string(),
    })?;
    Ok(tx)
}

fn store_error(e: UtxoError) -> TemplateError {
    TemplateError::Store {
        message: e.to_string(),
    }
}

/// Whether every output `tx` consumes (status fail: BTM only) is spendable at `height` in
/// `view`, loading missing entries from `utxo`.
fn spendable(
    tx: &Transaction,
    status_fail: bool,
    height: u64,
    view: &mut UtxoView,
    utxo: &dyn UtxoStore,
) -> TemplateResult<bool> {
    let mut seen = std::collections::HashSet::new();
    for entry in &tx.mapped.inputs {
        let bystack_engine::entries::InputEntry::Spend {
            spent_output_id,
            asset_id,
            ..
        } = *entry
        else {
            continue;
        };
        if status_fail && asset_id != BTM_ASSET_ID {
            continue;
        }
        if !seen.insert(spent_output_id) {
            return Ok(false);
        }
        if view.get(&spent_output_id).is_none() {
            match utxo.get(&spent_output_id).map_err(store_error)? {
                Some(e) => view.insert(spent_output_id, e),
                None => return Ok(false),
            }
        }
        match view.get(&spent_output_id) {
            Some(e)
                if !e.spent
                    && (!e.is_coinbase
                        || e.block_height.saturating_add(COINBASE_PENDING_BLOCK_NUMBER)
                            <= height) => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Builds the template on `spec.parent` from `candidates` (best first, pooled parents before
/// children, as [`Mempool::block_candidates`](crate::mempool::Mempool::block_candidates)
/// lists them) over the parent's UTXO state `utxo`.
///
/// # Errors
/// [`TemplateError`] for a bad coinbase configuration or a failing store; a candidate that
/// does not fit is skipped, never an error.
pub fn build_template(
    spec: &TemplateSpec<'_>,
    candidates: &[Candidate],
    utxo: &dyn UtxoStore,
) -> TemplateResult<BlockTemplate> {
    let parent = &spec.parent;
    let height = parent.height + 1;
    // Check the coinbase configuration before doing any work.
    coinbase_transaction(height, block_subsidy(height), spec.program, spec.arbitrary)?;

    let max_gas = spec.max_gas.min(MAX_BLOCK_GAS);
    let mut view = UtxoView::new();
    let mut taken: Vec<Transaction> = Vec::new();
    let mut status_fail = vec![false];
    let (mut fees, mut gas_used) = (0u64, 0u64);
    for candidate in candidates {
        let tx = &candidate.tx;
        let facts = match candidate.facts {
            Some(facts) if facts.height == height => facts,
            _ => {
                let context = BlockContext {
                    version: 1,
                    height,
                    tx_index: Some(taken.len() + 1),
                };
                let outcome = validate_tx(tx, &context);
                if outcome.invalidates_block() {
                    continue;
                }
                TxFacts {
                    height,
                    fee: outcome.btm_value,
                    gas: u64::try_from(outcome.gas_used).unwrap_or(u64::MAX),
                    status_fail: outcome.status_fail(),
                }
            }
        };
        let Some(total_gas) = gas_used.checked_add(facts.gas).filter(|&g| g <= max_gas) else {
            continue;
        };
        let Some(total_fees) = fees.checked_add(facts.fee) else {
            continue;
        };
        let fail = facts.status_fail;
        if !spendable(tx, fail, height, &mut view, utxo)? {
            continue;
        }
        view.apply_transaction(tx, height, false, fail)
            .map_err(|e| TemplateError::Store {
                message: format!("view refused a checked transaction: {e}"),
            })?;
        taken.push(Transaction::clone(tx));
        status_fail.push(fail);
        gas_used = total_gas;
        fees = total_fees;
    }

    let subsidy = block_subsidy(height);
    let amount = subsidy
        .checked_add(fees)
        .ok_or(TemplateError::AmountOverflow { subsidy, fees })?;
    let coinbase = coinbase_transaction(height, amount, spec.program, spec.arbitrary)?;
    let mut transactions = Vec::with_capacity(taken.len() + 1);
    transactions.push(coinbase);
    transactions.extend(taken);
    let ids: Vec<Hash> = transactions.iter().map(Transaction::id).collect();
    let header = BlockHeader {
        version: 1,
        height,
        previous_block_hash: parent.hash,
        timestamp: spec.timestamp.max(parent.median_time.saturating_add(1)),
        transactions_merkle_root: tx_merkle_root(&ids),
        transaction_status_hash: tx_status_merkle_root(&status_fail),
        nonce: 0,
        bits: parent.bits_expected,
        commitment_suffix: Vec::new(),
    };
    Ok(BlockTemplate {
        block: Block {
            header,
            transactions,
        },
        seed: parent.seed,
        status_fail,
        fees,
        gas_used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bystack_engine::devnet::{
        validate_sequentially, ChainGenerator, GeneratorConfig, Utxo, Wallet, Witness,
    };
    use bystack_engine::validation::{validate_block, MemoryUtxoStore, SkipPow};

    const FEE: u64 = 2_000_000;

    /// A devnet chain of 105 coinbase-only blocks: its wallet, UTXO set and tip facts.
    struct Fixture {
        wallet: Wallet,
        store: MemoryUtxoStore,
        parent: ParentInfo,
        now: u64,
    }

    fn fixture() -> Fixture {
        let mut generator = ChainGenerator::new(GeneratorConfig {
            seed: 3,
            txs_per_block: 0,
            ..GeneratorConfig::default()
        });
        let blocks: Vec<Block> = generator
            .generate(105)
            .into_iter()
            .map(|g| g.block)
            .collect();
        let outcome =
            validate_sequentially(generator.genesis(), &blocks, generator.now(), &SkipPow);
        assert_eq!(outcome.connected, 105);
        Fixture {
            wallet: generator.wallet().clone(),
            store: outcome.store,
            parent: generator.headers().tip_info(),
            now: generator.now() + 150,
        }
    }

    impl Fixture {
        fn coins(&self, n: usize) -> Vec<Utxo> {
            let coins: Vec<Utxo> = self
                .wallet
                .spendable(self.parent.height + 1)
                .into_iter()
                .take(n)
                .cloned()
                .collect();
            assert_eq!(coins.len(), n);
            coins
        }

        fn pay(&self, coin: &Utxo, fee: u64) -> Arc<Transaction> {
            let data = TxData {
                version: 1,
                time_range: 0,
                inputs: vec![coin.spend_input()],
                outputs: vec![TxOutput::new(
                    BTM_ASSET_ID,
                    coin.amount - fee,
                    self.wallet.p2wpkh_program(1),
                )],
            };
            Arc::new(self.wallet.sign(data, &[]))
        }

        fn spec(&self, max_gas: u64) -> TemplateSpec<'_> {
            TemplateSpec {
                parent: self.parent,
                timestamp: self.now,
                program: &DEFAULT_COINBASE_PROGRAM,
                arbitrary: b"test",
                max_gas,
            }
        }

        /// The chain's own checks: header and body validation, then the UTXO rules.
        fn check(&self, template: &BlockTemplate) {
            let validated = validate_block(&template.block, &self.parent, self.now, &SkipPow)
                .expect("the template validates");
            assert_eq!(validated.status_fail(), template.status_fail);
            assert_eq!(validated.fees(), template.fees);
            let mut view = UtxoView::new();
            view.load_for_block(&self.store, &template.block).unwrap();
            view.apply_block(&validated).expect("the template connects");
        }
    }

    fn gas_of(tx: &Transaction, height: u64) -> u64 {
        let context = BlockContext {
            version: 1,
            height,
            tx_index: Some(1),
        };
        validate_tx(tx, &context).gas_used as u64
    }

    #[test]
    fn the_best_paying_transactions_that_fit_the_gas_limit_are_taken() {
        let f = fixture();
        let coins = f.coins(4);
        let (low, mid, high) = (
            f.pay(&coins[0], FEE),
            f.pay(&coins[1], 2 * FEE),
            f.pay(&coins[2], 3 * FEE),
        );
        let gas = gas_of(&high, f.parent.height + 1);
        let candidates: Vec<Candidate> = [&high, &mid, &low]
            .into_iter()
            .map(|tx| Candidate::new(tx.clone()))
            .collect();
        let template = build_template(&f.spec(2 * gas + gas / 2), &candidates, &f.store).unwrap();
        let ids: Vec<Hash> = template
            .block
            .transactions
            .iter()
            .map(Transaction::id)
            .collect();
        assert_eq!(ids[1..], [high.id(), mid.id()]);
        assert_eq!(template.fees, 5 * FEE);
        assert_eq!(template.gas_used, gas_of(&high, 106) + gas_of(&mid, 106));
        let coinbase = &template.block.transactions[0];
        assert_eq!(
            coinbase.data.outputs[0].amount,
            block_subsidy(106) + 5 * FEE
        );
        assert_eq!(
            coinbase.data.outputs[0].control_program,
            DEFAULT_COINBASE_PROGRAM
        );
        match &coinbase.data.inputs[0] {
            TxInput::Coinbase(c) => assert_eq!(c.arbitrary, b"\x00106test"),
            other => panic!("not a coinbase input: {other:?}"),
        }
        let header = &template.block.header;
        assert_eq!(header.height, 106);
        assert_eq!(header.previous_block_hash, f.parent.hash);
        assert_eq!(header.bits, f.parent.bits_expected);
        assert_eq!(header.timestamp, f.now);
        assert_eq!(template.seed, f.parent.seed);
        f.check(&template);

        // The consensus limit holds whatever the spec asks.
        let all = build_template(&f.spec(u64::MAX), &candidates, &f.store).unwrap();
        assert_eq!(all.block.transactions.len(), 4);
        f.check(&all);
    }

    #[test]
    fn candidates_that_do_not_connect_or_validate_are_skipped() {
        let f = fixture();
        let coins = f.coins(3);
        let first = f.pay(&coins[0], FEE);
        let double = f.pay(&coins[0], 2 * FEE);
        let mut ghost = coins[1].clone();
        ghost.amount -= 1;
        let missing = f.pay(&ghost, FEE);
        let bad_signature = Arc::new(
            f.wallet
                .sign(f.pay(&coins[1], FEE).data.clone(), &[Witness::BadSignature]),
        );
        let immature_coin = f
            .wallet
            .utxos()
            .values()
            .max_by_key(|u| u.height)
            .unwrap()
            .clone();
        let immature = f.pay(&immature_coin, FEE);
        let good = f.pay(&coins[2], FEE);
        let mut candidates: Vec<Candidate> = [
            first.clone(),
            double,
            missing,
            bad_signature,
            immature,
            good.clone(),
        ]
        .into_iter()
        .map(Candidate::new)
        .collect();
        // Facts for another height are not trusted: the bad signature is still found.
        candidates[3].facts = Some(TxFacts {
            height: 1,
            fee: FEE,
            gas: 1_000,
            status_fail: false,
        });
        let template = build_template(&f.spec(MAX_BLOCK_GAS), &candidates, &f.store).unwrap();
        let ids: Vec<Hash> = template.block.transactions[1..]
            .iter()
            .map(Transaction::id)
            .collect();
        assert_eq!(ids, [first.id(), good.id()]);
        f.check(&template);
    }

    #[test]
    fn a_status_fail_transaction_is_included_and_committed_as_such() {
        let f = fixture();
        let coin = &f.coins(1)[0];
        let (issuance, asset) = f.wallet.issuance_input(0, 1_000, b"nonce");
        let data = TxData {
            version: 1,
            time_range: 0,
            inputs: vec![coin.spend_input(), issuance],
            outputs: vec![
                TxOutput::new(BTM_ASSET_ID, coin.amount - FEE, f.wallet.p2wpkh_program(1)),
                TxOutput::new(asset, 1_000, f.wallet.p2wpkh_program(2)),
            ],
        };
        let tx = Arc::new(f.wallet.sign(data, &[Witness::Sign, Witness::BadSignature]));
        let template =
            build_template(&f.spec(MAX_BLOCK_GAS), &[Candidate::new(tx)], &f.store).unwrap();
        assert_eq!(template.status_fail, [false, true]);
        assert_eq!(
            template.block.header.transaction_status_hash,
            tx_status_merkle_root(&[false, true])
        );
        assert_eq!(template.fees, FEE);
        f.check(&template);
    }

    #[test]
    fn bad_coinbase_settings_are_typed_errors_and_old_timestamps_are_raised() {
        let f = fixture();
        let mut spec = f.spec(MAX_BLOCK_GAS);
        spec.program = &[0x52];
        assert!(matches!(
            build_template(&spec, &[], &f.store),
            Err(TemplateError::BadProgram { .. })
        ));
        let long = [7u8; COINBASE_ARBITRARY_SIZE_LIMIT];
        let mut spec = f.spec(MAX_BLOCK_GAS);
        spec.arbitrary = &long;
        assert_eq!(
            build_template(&spec, &[], &f.store),
            Err(TemplateError::ArbitraryTooLong {
                size: COINBASE_ARBITRARY_SIZE_LIMIT + 4
            })
        );
        let mut spec = f.spec(MAX_BLOCK_GAS);
        spec.timestamp = 0;
        let template = build_template(&spec, &[], &f.store).unwrap();
        assert_eq!(template.block.header.timestamp, f.parent.median_time + 1);
        f.check(&template);
    }
}
