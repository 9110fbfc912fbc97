//! Block validation (Bytom's `ValidateBlockHeader` and `ValidateBlock`, spec §5.1–§5.2), as
//! stages chained with `?`: header checks in Bytom's order (the proof of work last, through a
//! [`PowCheck`]), then every transaction, the coinbase amount, the block gas, and the two merkle
//! roots. Success yields a [`ValidatedBlock`], the only form the UTXO view applies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bystack_kernels::backend::BackendError;
use bystack_kernels::tensority::batch::CpuConfirm;
use bystack_kernels::tensority::cpu::CpuKernel;
use bystack_kernels::{
    open_backend_with, BackendInfo, BackendOptions, PreparedSeed, TensorityBackend,
};
use rayon::prelude::*;

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

    /// [`check`](PowCheck::check) of every `(block hash, seed, bits)` item, one verdict per
    /// item in order: PSWV hands the proofs of work of a whole window over in one call, so
    /// that a batched backend can run them together. The default checks each item on its own,
    /// spread over the current rayon pool.
    fn check_batch(&self, items: &[(Hash, Hash, u64)]) -> Vec<BlockResult<bool>>
    where
        Self: Sync,
    {
        items
            .par_iter()
            .map(|(block_hash, seed, bits)| self.check(block_hash, seed, *bits))
            .collect()
    }
}

/// Whether a backend of this name computes Tensority with the integer CPU kernels (or the
/// scalar reference), whose word on a failing proof of work is final. Every other backend
/// (`float`, `wgpu…`, `cuda…`, or anything unknown) is a device whose failing verdicts are
/// re-checked on the CPU.
fn is_integer_cpu_backend(name: &str) -> bool {
    CpuKernel::from_name(name.strip_prefix("cpu-").unwrap_or(name)).is_some()
}

/// One prepared seed and, for device backends, the CPU kernel that re-checks its rejections
/// (built on the first rejection).
struct SeedSlot {
    prepared: Arc<dyn PreparedSeed>,
    confirm: OnceLock<CpuConfirm>,
}

impl SeedSlot {
    fn confirm(&self) -> BlockResult<&CpuConfirm> {
        if let Some(c) = self.confirm.get() {
            return Ok(c);
        }
        let built = CpuConfirm::new(self.prepared.seed()).map_err(backend_error)?;
        Ok(self.confirm.get_or_init(|| built))
    }
}

fn backend_error(e: BackendError) -> BlockError {
    BlockError::PowBackend {
        message: e.to_string(),
    }
}

/// The real proof of work: a Tensority backend from [`bystack_kernels::open_backend`], with the
/// prepared data of the two most recent seeds kept (seeds change every 256 blocks, and a PSWV
/// window checked in parallel spans at most two).
///
/// A block is never rejected on a device's word alone: when the backend is not an integer CPU
/// backend (`float`, `wgpu…`, `cuda…`), every result that fails its target is recomputed on
/// the fastest CPU kernel and the CPU's verdict is returned (counted by
/// [`device_rejections_overruled`](Self::device_rejections_overruled) when it differs), and
/// a device error falls back to the CPU for the whole seed group. A passing result is taken
/// on the device's word (re-checking it would cost the CPU every block the device was meant
/// to take off it); every device backend is tested bit for bit against the reference.
pub struct TensorityPow {
    backend: Box<dyn TensorityBackend>,
    name: String,
    confirm_on_cpu: bool,
    prepared: Mutex<Vec<Arc<SeedSlot>>>,
    overruled: AtomicU64,
    device_errors: AtomicU64,
}

impl std::fmt::Debug for TensorityPow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorityPow")
            .field("backend", &self.name)
            .field("confirm_on_cpu", &self.confirm_on_cpu)
            .finish_non_exhaustive()
    }
}

impl TensorityPow {
    /// Uses `backend`; its failing verdicts are re-checked on the CPU unless it is an integer
    /// CPU backend (`reference`, `cpu-…`).
    pub fn new(backend: Box<dyn TensorityBackend>) -> Self {
        let name = backend.info().name;
        TensorityPow {
            confirm_on_cpu: !is_integer_cpu_backend(&name),
            name,
            backend,
            prepared: Mutex::new(Vec::new()),
            overruled: AtomicU64::new(0),
            device_errors: AtomicU64::new(0),
        }
    }

    /// Opens the backend `name` (`auto`, `reference`, `cpu`, `float`, `wgpu`, `cuda`, …) with
    /// `threads` workers (0 = one per core).
    ///
    /// # Errors
    /// [`BlockError::PowBackend`] when the backend does not exist or cannot run here.
    pub fn open(name: &str, threads: usize) -> BlockResult<Self> {
        Self::open_with(
            name,
            &BackendOptions {
                threads,
                ..BackendOptions::default()
            },
        )
    }

    /// Opens the backend `name` with full options (threads, batch size, device index).
    ///
    /// # Errors
    /// [`BlockError::PowBackend`] when the backend does not exist or cannot run here.
    pub fn open_with(name: &str, options: &BackendOptions) -> BlockResult<Self> {
        let backend = open_backend_with(name, options).map_err(backend_error)?;
        Ok(TensorityPow::new(backend))
    }

    /// What the backend is.
    pub fn backend_info(&self) -> BackendInfo {
        self.backend.info()
    }

    /// Whether failing verdicts are re-checked on the CPU (the backend is a device).
    pub fn confirms_on_cpu(&self) -> bool {
        self.confirm_on_cpu
    }

    /// How many proofs of work the device rejected and the CPU then accepted, so far.
    pub fn device_rejections_overruled(&self) -> u64 {
        self.overruled.load(Ordering::Relaxed)
    }

    /// How many device errors were answered by computing the seed group on the CPU instead.
    pub fn device_errors_recovered(&self) -> u64 {
        self.device_errors.load(Ordering::Relaxed)
    }

    fn prepared(&self, seed: &Hash) -> BlockResult<Arc<SeedSlot>> {
        let mut cache = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = cache.iter().find(|s| s.prepared.seed() == seed.as_bytes()) {
            return Ok(Arc::clone(slot));
        }
        // Built under the lock: other workers need the same seed and would wait anyway.
        let prepared = self
            .backend
            .prepare(seed.as_bytes())
            .map_err(backend_error)?;
        let slot = Arc::new(SeedSlot {
            prepared,
            confirm: OnceLock::new(),
        });
        if cache.len() == 2 {
            cache.remove(0);
        }
        cache.push(Arc::clone(&slot));
        Ok(slot)
    }

    /// The Tensority result of `block_hash` under `seed`, as the backend computes it (no CPU
    /// re-check).
    ///
    /// # Errors
    /// [`BlockError::PowBackend`] when the backend fails.
    pub fn tensority(&self, block_hash: &Hash, seed: &Hash) -> BlockResult<[u8; 32]> {
        self.prepared(seed)?
            .prepared
            .hash(block_hash.as_bytes())
            .map_err(backend_error)
    }

    /// The proof of work of every `(block hash, seed, bits)` item: the Tensority result the
    /// verdict rests on, and whether it meets `bits`, in input order. Each seed's blocks go
    /// to the backend in one `hash_batch`. For a device backend, every failing result is
    /// recomputed on the CPU and the CPU's result and verdict are returned; a device error
    /// makes the CPU compute the whole seed group.
    ///
    /// # Errors
    /// Per item: [`BlockError::PowBackend`] when the backend (an integer CPU backend) or the
    /// CPU re-check fails.
    pub fn verify_batch(&self, items: &[(Hash, Hash, u64)]) -> Vec<BlockResult<([u8; 32], bool)>> {
        let mut out = vec![None; items.len()];
        for (seed, indices) in group_by_seed(items.iter().map(|(_, seed, _)| seed)) {
            let group: Vec<(Hash, u64)> =
                indices.iter().map(|&i| (items[i].0, items[i].2)).collect();
            for (verdict, &i) in self.verify_group(seed, &group).into_iter().zip(&indices) {
                out[i] = Some(verdict);
            }
        }
        out.into_iter()
            .map(|r| r.expect("every item belongs to one seed group"))
            .collect()
    }

    /// [`verify_batch`](Self::verify_batch) of one seed group.
    fn verify_group(
        &self,
        seed: &Hash,
        items: &[(Hash, u64)],
    ) -> Vec<BlockResult<([u8; 32], bool)>> {
        let slot = match self.prepared(seed) {
            Ok(slot) => slot,
            Err(e) => return vec![Err(e); items.len()],
        };
        let headers: Vec<[u8; 32]> = items.iter().map(|(h, _)| *h.as_bytes()).collect();
        let device = slot
            .prepared
            .hash_batch(&headers)
            .map_err(backend_error)
            .and_then(|hashes| {
                check_count(&self.name, hashes.len(), headers.len()).map(|()| hashes)
            });
        let hashes = match device {
            Ok(hashes) => hashes,
            Err(e) if !self.confirm_on_cpu => return vec![Err(e); items.len()],
            Err(_) => {
                // The device's answer is unusable: the CPU computes the whole group.
                self.device_errors.fetch_add(1, Ordering::Relaxed);
                return headers
                    .par_iter()
                    .zip(items)
                    .map(|(h, (_, bits))| {
                        let pow = slot.confirm()?.hash(h);
                        Ok((pow, meets_bits(&pow, *bits)))
                    })
                    .collect();
            }
        };
        hashes
            .into_par_iter()
            .zip(&headers)
            .zip(items)
            .map(|((pow, h), (_, bits))| {
                if meets_bits(&pow, *bits) || !self.confirm_on_cpu {
                    return Ok((pow, meets_bits(&pow, *bits)));
                }
                // Never reject on a device's word alone.
                let cpu = slot.confirm()?.hash(h);
                let valid = meets_bits(&cpu, *bits);
                if valid {
                    self.overruled.fetch_add(1, Ordering::Relaxed);
                }
                Ok((cpu, valid))
            })
            .collect()
    }
}

/// The distinct seeds of `seeds` in order of first appearance, each with the indices that
/// use it.
fn group_by_seed<'a>(seeds: impl Iterator<Item = &'a Hash>) -> Vec<(&'a Hash, Vec<usize>)> {
    let mut groups: Vec<(&Hash, Vec<usize>)> = Vec::new();
    for (i, seed) in seeds.enumerate() {
        match groups.iter_mut().find(|(s, _)| *s == seed) {
            Some((_, indices)) => indices.push(i),
            None => groups.push((seed, vec![i])),
        }
    }
    groups
}

/// A backend that returns the wrong number of results has failed.
fn check_count(backend: &str, got: usize, expected: usize) -> BlockResult<()> {
    if got == expected {
        Ok(())
    } else {
        Err(BlockError::PowBackend {
            message: format!("{backend} returned {got} results for {expected} headers"),
        })
    }
}

impl PowCheck for TensorityPow {
    fn check(&self, block_hash: &Hash, seed: &Hash, bits: u64) -> BlockResult<bool> {
        if !self.confirm_on_cpu {
            // `hash` spreads one result's chains over the workers: the latency path.
            return Ok(meets_bits(&self.tensority(block_hash, seed)?, bits));
        }
        self.verify_group(seed, &[(*block_hash, bits)])
            .pop()
            .expect("one verdict per item")
            .map(|(_, valid)| valid)
    }

    /// One `hash_batch` per seed (a PSWV window spans at most two), then, for a device
    /// backend, the CPU re-check of every failing result (see
    /// [`TensorityPow::verify_batch`]).
    fn check_batch(&self, items: &[(Hash, Hash, u64)]) -> Vec<BlockResult<bool>> {
        self.verify_batch(items)
            .into_iter()
            .map(|r| r.map(|(_, valid)| valid))
            .collect()
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
