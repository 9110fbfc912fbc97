//! Block validation (Bytom's `ValidateBlockHeader` and `ValidateBlock`, spec §5.1–§5.2), as
//! stages chained with `?`: header checks in Bytom's order (the proof of work last, through a
//! [`PowCheck`]), then every transaction, the coinbase amount, the block gas, and the two merkle
//! roots. Success yields a [`ValidatedBlock`], the only form the UTXO view applies.

use std::sync::{Arc, Mutex};

use bystack_kernels::{open_backend, PreparedSeed, TensorityBackend};

use crate::block::Block;
use crate::consensus::{block_subsidy, MAX_BLOCK_GAS, MAX_TIME_OFFSET_SECONDS};
use crate::entries::EntryType;
use crate::hash::Hash;
use crate::merkle::{tx_merkle_root, tx_status_merkle_root};
use crate::pow::meets_bits;

use super::errors::{BlockError, BlockResult};
use super::tx::{validate_tx, BlockContext, TxOutcome};

/// What a block is checked against: facts about its parent (Bytom's `BlockNode` methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentInfo {
    /// The parent's height.
    pub height: u64,
    /// The parent's hash.
    pub hash: Hash,
    /// The bits the child must carry (`CalcNextBits`, see [`crate::consensus::next_bits`]).
    pub bits_expected: u64,
    /// The median time past of the parent and its 10 ancestors
    /// ([`crate::consensus::median_time_past`]).
    pub median_time: u64,
    /// The seed the child is mined against (`CalcNextSeed`, see
    /// [`crate::consensus::next_seed`]).
    pub seed: Hash,
}

/// The proof-of-work check of the last header stage.
pub trait PowCheck {
    /// Whether Tensority(`block_hash`, `seed`) meets `bits`.
    ///
    /// # Errors
    /// [`BlockError::PowBackend`] when the backend fails.
    fn check(&self, block_hash: &Hash, seed: &Hash, bits: u64) -> BlockResult<bool>;
}

/// The real proof of work: a Tensority backend from [`bystack_kernels::open_backend`], with the
/// prepared data of the two most recent seeds kept (seeds change every 256 blocks, and a PSWV
/// window checked in parallel spans at most two).
pub struct TensorityPow {
    backend: Box<dyn TensorityBackend>,
    prepared: Mutex<Vec<Arc<dyn PreparedSeed>>>,
}

impl std::fmt::Debug for TensorityPow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorityPow")
            .field("backend", &self.backend.info().name)
            .finish_non_exhaustive()
    }
}

impl TensorityPow {
    /// Uses `backend`.
    pub fn new(backend: Box<dyn TensorityBackend>) -> Self {
        TensorityPow {
            backend,
            prepared: Mutex::new(Vec::new()),
        }
    }

    /// Opens the backend `name` (`auto`, `reference`, `cpu`, …) with `threads` workers.
    ///
    /// # Errors
    /// [`BlockError::PowBackend`] when the backend does not exist or cannot run here.
    pub fn open(name: &str, threads: usize) -> BlockResult<Self> {
        let backend = open_backend(name, threads).map_err(|e| BlockError::PowBackend {
            message: e.to_string(),
        })?;
        Ok(TensorityPow::new(backend))
    }

    fn prepared(&self, seed: &Hash) -> BlockResult<Arc<dyn PreparedSeed>> {
        let mut cache = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = cache.iter().find(|p| p.seed() == seed.as_bytes()) {
            return Ok(Arc::clone(p));
        }
        // Built under the lock: other workers need the same seed and would wait anyway.
        let p = self
            .backend
            .prepare(seed.as_bytes())
            .map_err(|e| BlockError::PowBackend {
                message: e.to_string(),
            })?;
        if cache.len() == 2 {
            cache.remove(0);
        }
        cache.push(Arc::clone(&p));
        Ok(p)
    }

    /// The Tensority result of `block_hash` under `seed`.
    ///
    /// # Errors
    /// [`BlockError::PowBackend`] when the backend fails.
    pub fn tensority(&self, block_hash: &Hash, seed: &Hash) -> BlockResult<[u8; 32]> {
        self.prepared(seed)?
            .hash(block_hash.as_bytes())
            .map_err(|e| BlockError::PowBackend {
                message: e.to_string(),
            })
    }
}

impl PowCheck for TensorityPow {
    fn check(&self, block_hash: &Hash, seed: &Hash, bits: u64) -> BlockResult<bool> {
        Ok(meets_bits(&self.tensority(block_hash, seed)?, bits))
    }
}

/// Accepts every proof of work. **For tests and devnet tooling only**: a node must use
/// [`TensorityPow`]. It exists as an explicit type so that skipping PoW is visible at the
/// call site.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkipPow;

impl PowCheck for SkipPow {
    fn check(&self, _block_hash: &Hash, _seed: &Hash, _bits: u64) -> BlockResult<bool> {
        Ok(true)
    }
}

/// A block that passed [`validate_block`], with the status of every transaction. Only this
/// module builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedBlock {
    block: Block,
    outcomes: Vec<TxOutcome>,
    status_fail: Vec<bool>,
    fees: u64,
    gas_used: u64,
}

impl ValidatedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The validation outcome of every transaction, in block order.
    pub fn outcomes(&self) -> &[TxOutcome] {
        &self.outcomes
    }

    /// `status_fail` per transaction (what the status merkle root commits to).
    pub fn status_fail(&self) -> &[bool] {
        &self.status_fail
    }

    /// The sum of the fees (BTM left in each transaction's mux).
    pub fn fees(&self) -> u64 {
        self.fees
    }

    /// The block's gas.
    pub fn gas_used(&self) -> u64 {
        self.gas_used
    }

    /// The block and its statuses.
    pub fn into_parts(self) -> (Block, Vec<bool>) {
        (self.block, self.status_fail)
    }
}

/// Header stage 1: `errVersionRegression`.
fn check_version(block: &Block) -> BlockResult<()> {
    if block.header.version != 1 {
        return Err(BlockError::VersionRegression {
            version: block.header.version,
        });
    }
    Ok(())
}

/// Header stage 2: `errMisorderedBlockHeight`.
fn check_height(block: &Block, parent: &ParentInfo) -> BlockResult<()> {
    if Some(block.header.height) != parent.height.checked_add(1) {
        return Err(BlockError::MisorderedBlockHeight {
            parent: parent.height,
            height: block.header.height,
        });
    }
    Ok(())
}

/// Header stage 3: `errBadBits`.
fn check_bits(block: &Block, parent: &ParentInfo) -> BlockResult<()> {
    if block.header.bits != parent.bits_expected {
        return Err(BlockError::BadBits {
            expected: parent.bits_expected,
            got: block.header.bits,
        });
    }
    Ok(())
}

/// Header stage 4: `errMismatchedBlock`.
fn check_prev_hash(block: &Block, parent: &ParentInfo) -> BlockResult<()> {
    if block.header.previous_block_hash != parent.hash {
        return Err(BlockError::MismatchedBlock {
            expected: parent.hash,
            got: block.header.previous_block_hash,
        });
    }
    Ok(())
}

/// Header stage 5: `errBadTimestamp` (`checkBlockTime`).
fn check_block_time(block: &Block, parent: &ParentInfo, now: u64) -> BlockResult<()> {
    let timestamp = block.header.timestamp;
    let max_time = now.saturating_add(MAX_TIME_OFFSET_SECONDS);
    if timestamp > max_time || timestamp <= parent.median_time {
        return Err(BlockError::BadTimestamp {
            timestamp,
            median_time: parent.median_time,
            max_time,
        });
    }
    Ok(())
}

/// Header stage 6: `errWorkProof`.
fn check_pow(block: &Block, parent: &ParentInfo, pow: &dyn PowCheck) -> BlockResult<()> {
    let hash = block.hash();
    if !pow.check(&hash, &parent.seed, block.header.bits)? {
        return Err(BlockError::WorkProof { hash });
    }
    Ok(())
}

/// `ValidateBlockHeader`: the header stages in Bytom's order. `now` is the local clock (Unix
/// seconds).
///
/// # Errors
/// The first failing stage's [`BlockError`].
pub fn validate_block_header(
    block: &Block,
    parent: &ParentInfo,
    now: u64,
    pow: &dyn PowCheck,
) -> BlockResult<()> {
    check_version(block)?;
    check_height(block, parent)?;
    check_bits(block, parent)?;
    check_prev_hash(block, parent)?;
    check_block_time(block, parent, now)?;
    check_pow(block, parent, pow)
}

/// Validates every transaction (by index, as Bytom's parallel `ValidateTxs` collects them).
pub fn validate_txs(block: &Block) -> Vec<TxOutcome> {
    block
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            let context = BlockContext {
                version: block.header.version,
                height: block.header.height,
                tx_index: Some(i),
            };
            validate_tx(tx, &context)
        })
        .collect()
}

/// Folds the outcomes in order: gas-invalid → block invalid; fees and gas summed, the gas
/// limit checked after each transaction. Returns (status_fail, fees, gas).
fn check_tx_outcomes(outcomes: &[TxOutcome]) -> BlockResult<(Vec<bool>, u64, u64)> {
    let mut status_fail = Vec::with_capacity(outcomes.len());
    let mut fees = 0u64;
    let mut gas = 0u64;
    for (index, outcome) in outcomes.iter().enumerate() {
        if !outcome.gas_valid {
            return Err(BlockError::Tx {
                index,
                count: outcomes.len(),
                error: outcome
                    .error
                    .clone()
                    .unwrap_or(super::TxError::GasCalculate {
                        reason: "gas never became valid",
                    }),
            });
        }
        status_fail.push(outcome.error.is_some());
        // Go sums in uint64 without checks.
        fees = fees.wrapping_add(outcome.btm_value);
        gas = gas.wrapping_add(outcome.gas_used as u64);
        if gas > MAX_BLOCK_GAS {
            return Err(BlockError::OverBlockLimit { gas, index });
        }
    }
    Ok((status_fail, fees, gas))
}

/// `checkCoinbaseAmount`: tx 0 has exactly one result, an output paying subsidy + fees.
fn check_coinbase_amount(block: &Block, fees: u64) -> BlockResult<()> {
    let Some(tx) = block.transactions.first() else {
        return Err(BlockError::EmptyBlock);
    };
    let [result] = tx.mapped.results.as_slice() else {
        return Err(BlockError::CoinbaseOutputCount {
            count: tx.mapped.results.len(),
        });
    };
    if result.kind != EntryType::Output {
        return Err(BlockError::CoinbaseNotOutput { id: result.id });
    }
    let out = &tx.data.outputs[0];
    let got = if out.asset_version == 1 {
        out.amount
    } else {
        0
    };
    let expected = block_subsidy(block.header.height).wrapping_add(fees);
    if got != expected {
        return Err(BlockError::CoinbaseAmount { expected, got });
    }
    Ok(())
}

/// `errMismatchedMerkleRoot` for the transaction IDs.
fn check_tx_root(block: &Block) -> BlockResult<()> {
    let computed = tx_merkle_root(&block.tx_ids());
    let header = block.header.transactions_merkle_root;
    if computed != header {
        return Err(BlockError::MismatchedTxRoot { computed, header });
    }
    Ok(())
}

/// `errMismatchedMerkleRoot` for the statuses.
fn check_status_root(block: &Block, status_fail: &[bool]) -> BlockResult<()> {
    let computed = tx_status_merkle_root(status_fail);
    let header = block.header.transaction_status_hash;
    if computed != header {
        return Err(BlockError::MismatchedStatusRoot { computed, header });
    }
    Ok(())
}

/// `ValidateBlock`: the header stages, then the body in Bytom's order. `now` is the local
/// clock (Unix seconds) for the "not more than an hour ahead" rule.
///
/// Spent-output existence is not checked here; [`UtxoView::apply_block`](super::UtxoView::apply_block)
/// does it when the block is connected.
///
/// # Errors
/// The first failing stage's [`BlockError`].
pub fn validate_block(
    block: &Block,
    parent: &ParentInfo,
    now: u64,
    pow: &dyn PowCheck,
) -> BlockResult<ValidatedBlock> {
    validate_block_header(block, parent, now, pow)?;
    let outcomes = validate_txs(block);
    let BodySummary {
        status_fail,
        fees,
        gas_used,
    } = reduce_block_body(block, &outcomes)?;
    Ok(ValidatedBlock {
        block: block.clone(),
        outcomes,
        status_fail,
        fees,
        gas_used,
    })
}

/// What the body stages of a block add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySummary {
    /// Per transaction: whether it is a gas-only ("status fail") transaction.
    pub status_fail: Vec<bool>,
    /// The fees (BTM left in the muxes), summed.
    pub fees: u64,
    /// The gas used by the block.
    pub gas_used: u64,
}

/// The body stages of `ValidateBlock` once every transaction's outcome is known (in block
/// order), in Bytom's order: gas-invalid transactions and the block gas limit, the coinbase
/// amount, the transaction merkle root, the status merkle root. [`validate_block`] and PSWV
/// (which validates the transactions of a whole window at once) share it.
///
/// # Errors
/// The first failing check's [`BlockError`].
pub fn reduce_block_body(block: &Block, outcomes: &[TxOutcome]) -> BlockResult<BodySummary> {
    let (status_fail, fees, gas_used) = check_tx_outcomes(outcomes)?;
    check_coinbase_amount(block, fees)?;
    check_tx_root(block)?;
    check_status_root(block, &status_fail)?;
    Ok(BodySummary {
        status_fail,
        fees,
        gas_used,
    })
}
