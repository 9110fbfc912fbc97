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
    candidates: &[Arc<Transaction>],
    utxo: &dyn UtxoStore,
) -> TemplateResult<BlockTemplate> {
    let parent = &spec.parent;
    let height = parent.height + 1;
    // Check the coinbase configuration before doing any work.
    coinbase_transaction(height, block_subsidy(height), spec.program, spec.arbitrary)?;

    let mut view = UtxoView::new();
    let mut taken: Vec<Transaction> = Vec::new();
    let mut status_fail = vec![false];
    let (mut fees, mut gas_used) = (0u64, 0u64);
    for tx in candidates {
        let context = BlockContext {
            version: 1,
            height,
            tx_index: Some(taken.len() + 1),
        };
        let outcome = validate_tx(tx, &context);
        if outcome.invalidates_block() {
            continue;
        }
        let gas = u64::try_from(outcome.gas_used).unwrap_or(u64::MAX);
        let Some(total_gas) = gas_used.checked_add(gas).filter(|&g| g <= MAX_BLOCK_GAS) else {
            continue;
        };
        let Some(total_fees) = fees.checked_add(outcome.btm_value) else {
            continue;
        };
        let fail = outcome.status_fail();
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
