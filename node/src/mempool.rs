//! The transaction pool (Bytom's `protocol/txpool.go`): transactions validated for the next
//! block, waiting to be mined.
//!
//! Admission ([`precheck`] then [`Mempool::admit`]):
//! 1. the stateless rules of the next block ([`validate_tx`] at the next height, no coinbase
//!    allowed): a transaction whose gas never became valid is refused; one that fails after
//!    (a "status fail" transaction, included with its fee charged) is admitted as such;
//! 2. every output it consumes (all of them; only the BTM ones for a status-fail transaction)
//!    must be unspent in the UTXO set (a coinbase output mature at the next height) **or** an
//!    output of a pooled transaction, and not claimed by another pooled transaction (no
//!    replacement: the first spend wins, [`MempoolError::DoubleSpend`]);
//! 3. the pool has a cap in transactions and in serialized bytes: when full, the transactions
//!    with the lowest fee per gas (and their descendants) are evicted, but only if they pay
//!    less per gas than the newcomer, never an ancestor of it; otherwise it is refused.
//!
//! Chain updates: [`Mempool::remove_block`] drops a new main-chain block's transactions and
//! every pooled transaction that spends an output the block consumed (with its
//! descendants); [`Mempool::drop_expired`] drops transactions whose time range the next
//! height passes; [`Mempool::reorganize`] rebuilds the pool after a reorganisation: the
//! transactions of the detached blocks first (oldest block first), then the pooled ones, each
//! re-admitted against the new UTXO set, so the ones still valid come back.
//!
//! Block templates take [`Mempool::block_candidates`]: every pooled transaction, best fee per
//! gas first, each after the pooled transactions it spends from.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use bystack_engine::consensus::COINBASE_PENDING_BLOCK_NUMBER;
use bystack_engine::entries::{EntryType, InputEntry};
use bystack_engine::validation::{validate_tx, BlockContext, TxError, UtxoError, UtxoStore};
use bystack_engine::{Block, Hash, Transaction, TxInput, BTM_ASSET_ID};

use crate::template::{Candidate, TxFacts};

/// Pool limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most serialized bytes held (the sum of the transactions' sizes).
    pub max_bytes: u64,
}

impl Default for MempoolConfig {
    /// 10,000 transactions (Bytom's pool cap) and 64 MiB.
    fn default() -> Self {
        MempoolConfig {
            max_txs: 10_000,
            max_bytes: 64 << 20,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// Already pooled.
    #[error("transaction {id} is already in the pool")]
    AlreadyInPool {
        /// The transaction.
        id: Hash,
    },
    /// Coinbase transactions only exist inside blocks.
    #[error("coinbase transaction {id} cannot enter the pool")]
    Coinbase {
        /// The transaction.
        id: Hash,
    },
    /// Invalid under the next block's rules (its gas never became valid).
    #[error("transaction {id} is invalid: {error}")]
    Invalid {
        /// The transaction.
        id: Hash,
        /// The engine's verdict.
        #[source]
        error: TxError,
    },
    /// It spends an output that neither the UTXO set nor the pool holds (unknown, or spent
    /// already on the chain).
    #[error("transaction {id} spends missing output {output}")]
    MissingInput {
        /// The transaction.
        id: Hash,
        /// The output.
        output: Hash,
    },
    /// It spends a coinbase output before its 100 blocks of maturity.
    #[error(
        "transaction {id} spends coinbase output {output} of height {created} at height {height}"
    )]
    ImmatureCoinbase {
        /// The transaction.
        id: Hash,
        /// The output.
        output: Hash,
        /// The coinbase's height.
        created: u64,
        /// The next block's height.
        height: u64,
    },
    /// Another pooled transaction spends the same output (or the transaction spends it twice).
    #[error("transaction {id} double-spends output {output}, already spent by {spent_by}")]
    DoubleSpend {
        /// The transaction.
        id: Hash,
        /// The output.
        output: Hash,
        /// The pooled transaction that spends it (the transaction itself when it spends it
        /// twice).
        spent_by: Hash,
    },
    /// One transaction larger than the whole pool.
    #[error("transaction {id} of {size} bytes exceeds the pool's {max_bytes} bytes")]
    TooLarge {
        /// The transaction.
        id: Hash,
        /// Its size.
        size: u64,
        /// The pool's byte cap.
        max_bytes: u64,
    },
    /// The pool is full of transactions paying at least as much per gas.
    #[error("pool full: transaction {id} pays {fee} neu for {gas} gas, no less-paying transaction to evict")]
    Full {
        /// The transaction.
        id: Hash,
        /// Its fee.
        fee: u64,
        /// Its gas.
        gas: u64,
    },
    /// The UTXO store failed.
    #[error("utxo store: {message}")]
    Store {
        /// The store's error.
        message: String,
    },
}

/// Result alias for the pool.
pub type MempoolResult<T> = Result<T, MempoolError>;

/// A fee per gas, compared exactly (cross-multiplied, no division).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeRate {
    /// The fee in neu (the BTM left in the transaction's mux).
    pub fee: u64,
    /// The gas used (VM and storage gas; at least 1).
    pub gas: u64,
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        let lhs = u128::from(self.fee) * u128::from(other.gas.max(1));
        let rhs = u128::from(other.fee) * u128::from(self.gas.max(1));
        lhs.cmp(&rhs)
    }
}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A transaction that passed the stateless rules of the next block ([`precheck`]).
#[derive(Debug, Clone)]
pub struct Checked {
    tx: Arc<Transaction>,
    id: Hash,
    rate: FeeRate,
    status_fail: bool,
    height: u64,
}

impl Checked {
    /// The transaction.
    pub fn tx(&self) -> &Arc<Transaction> {
        &self.tx
    }

    /// Its ID.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// Its fee and gas.
    pub fn rate(&self) -> FeeRate {
        self.rate
    }

    /// Whether it is a status-fail transaction at the checked height.
    pub fn status_fail(&self) -> bool {
        self.status_fail
    }
}

/// The stateless half of admission: [`validate_tx`] for a block at `next_height` (it needs no
/// lock on the chain or the pool, so callers run it before taking them).
///
/// # Errors
/// [`MempoolError::Coinbase`], [`MempoolError::Invalid`].
pub fn precheck(tx: Arc<Transaction>, next_height: u64) -> MempoolResult<Checked> {
    let id = tx.id();
    if tx
        .data
        .inputs
        .iter()
        .any(|i| matches!(i, TxInput::Coinbase(_)))
    {
        return Err(MempoolError::Coinbase { id });
    }
    let context = BlockContext {
        version: 1,
        height: next_height,
        tx_index: None,
    };
    let outcome = validate_tx(&tx, &context);
    if let (false, Some(error)) = (outcome.gas_valid, &outcome.error) {
        return Err(MempoolError::Invalid {
            id,
            error: error.clone(),
        });
    }
    Ok(Checked {
        rate: FeeRate {
            fee: outcome.btm_value,
            gas: u64::try_from(outcome.gas_used).unwrap_or(0).max(1),
        },
        status_fail: outcome.status_fail(),
        tx,
        id,
        height: next_height,
    })
}

/// The outputs `tx` consumes when applied (all spends; only the BTM ones when status fail).
fn consumed_outputs(tx: &Transaction, status_fail: bool) -> Vec<Hash> {
    tx.mapped
        .inputs
        .iter()
        .filter_map(|entry| match *entry {
            InputEntry::Spend {
                spent_output_id,
                asset_id,
                ..
            } if !status_fail || asset_id == BTM_ASSET_ID => Some(spent_output_id),
            _ => None,
        })
        .collect()
}

/// The outputs `tx` creates when applied (retirements never; only BTM when status fail).
fn created_outputs(tx: &Transaction, status_fail: bool) -> Vec<Hash> {
    tx.mapped
        .results
        .iter()
        .zip(&tx.data.outputs)
        .filter(|(result, out)| {
            result.kind == EntryType::Output
                && (!status_fail || (out.asset_version == 1 && out.asset_id == BTM_ASSET_ID))
        })
        .map(|(result, _)| result.id)
        .collect()
}

/// One pooled transaction.
#[derive(Debug, Clone)]
struct Entry {
    tx: Arc<Transaction>,
    rate: FeeRate,
    size: u64,
    status_fail: bool,
    /// The height it was validated for.
    height: u64,
    /// Arrival order.
    seq: u64,
    consumed: Vec<Hash>,
    created: Vec<Hash>,
    /// Pooled transactions it spends outputs of.
    parents: HashSet<Hash>,
    /// Pooled transactions spending its outputs.
    children: HashSet<Hash>,
}

/// What [`Mempool::admit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The transaction.
    pub id: Hash,
    /// Its fee and gas.
    pub rate: FeeRate,
    /// Whether it will be included as status fail.
    pub status_fail: bool,
    /// Transactions evicted to make room, if any.
    pub evicted: Vec<Hash>,
}

/// What a chain update did to the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolUpdate {
    /// Pooled transactions now in a main-chain block.
    pub mined: Vec<Hash>,
    /// Pooled transactions dropped: conflicts with the chain, their descendants, expired
    /// time ranges, and (after a reorganisation) transactions that no longer validate.
    pub dropped: Vec<Hash>,
    /// Transactions of detached blocks admitted back.
    pub readmitted: Vec<Hash>,
}

/// The transaction pool; see the module docs.
#[derive(Debug, Clone)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Hash, Entry>,
    /// Output ID → the pooled transaction consuming it.
    spent_by: HashMap<Hash, Hash>,
    /// Output ID → the pooled transaction creating it.
    created_by: HashMap<Hash, Hash>,
    bytes: u64,
    next_seq: u64,
    generation: u64,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            entries: HashMap::new(),
            spent_by: HashMap::new(),
            created_by: HashMap::new(),
            bytes: 0,
            next_seq: 0,
            generation: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> MempoolConfig {
        self.config
    }

    /// Pooled transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Serialized bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bumped by every change: templates are rebuilt when it moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether `id` is pooled.
    pub fn contains(&self, id: &Hash) -> bool {
        self.entries.contains_key(id)
    }

    /// The pooled transaction `id`.
    pub fn get(&self, id: &Hash) -> Option<&Arc<Transaction>> {
        self.entries.get(id).map(|e| &e.tx)
    }

    /// The fee and gas of pooled transaction `id`.
    pub fn rate(&self, id: &Hash) -> Option<FeeRate> {
        self.entries.get(id).map(|e| e.rate)
    }

    /// Whether pooled transaction `id` was admitted as status fail (included with its fee
    /// charged, its non-BTM effects dropped).
    pub fn is_status_fail(&self, id: &Hash) -> Option<bool> {
        self.entries.get(id).map(|e| e.status_fail)
    }

    /// The pooled transaction spending output `output`, if any.
    pub fn spender(&self, output: &Hash) -> Option<Hash> {
        self.spent_by.get(output).copied()
    }

    /// Every pooled transaction in arrival order.
    pub fn transactions(&self) -> Vec<(Hash, Arc<Transaction>)> {
        let mut all: Vec<&Entry> = self.entries.values().collect();
        all.sort_by_key(|e| e.seq);
        all.into_iter().map(|e| (e.tx.id(), e.tx.clone())).collect()
    }

    /// Every pooled transaction in block order: repeatedly the best fee per gas (earliest
    /// arrival on a tie) among those whose pooled parents are already listed.
    ///
    /// Each comes with the facts of its admission, so that a template for the same height
    /// does not validate it again.
    pub fn block_candidates(&self) -> Vec<Candidate> {
        let mut waiting: HashMap<Hash, usize> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for (id, entry) in &self.entries {
            if entry.parents.is_empty() {
                ready.push((entry.rate, Reverse(entry.seq), *id));
            } else {
                waiting.insert(*id, entry.parents.len());
            }
        }
        let mut out = Vec::with_capacity(self.entries.len());
        while let Some((_, _, id)) = ready.pop() {
            let entry = &self.entries[&id];
            out.push(Candidate {
                tx: entry.tx.clone(),
                facts: Some(TxFacts {
                    height: entry.height,
                    fee: entry.rate.fee,
                    gas: entry.rate.gas,
                    status_fail: entry.status_fail,
                }),
            });
            for child in &entry.children {
                if let Some(left) = waiting.get_mut(child) {
                    *left -= 1;
                    if *left == 0 {
                        waiting.remove(child);
                        let c = &self.entries[child];
                        ready.push((c.rate, Reverse(c.seq), *child));
                    }
                }
            }
        }
        out
    }

    /// Admits a transaction that passed [`precheck`] for the block at `next_height`, against
    /// the UTXO set `utxo` (the chain's state at height `next_height − 1`) and the pool.
    ///
    /// # Errors
    /// See [`MempoolError`]; nothing changes on an error.
    pub fn admit(
        &mut self,
        checked: Checked,
        utxo: &dyn UtxoStore,
        next_height: u64,
    ) -> MempoolResult<Admitted> {
        // A tx checked for another height is checked again (time ranges, BLOCKHEIGHT).
        let checked = if checked.height == next_height {
            checked
        } else {
            precheck(checked.tx, next_height)?
        };
        let Checked {
            tx,
            id,
            rate,
            status_fail,
            height,
        } = checked;
        if self.entries.contains_key(&id) {
            return Err(MempoolError::AlreadyInPool { id });
        }
        let consumed = consumed_outputs(&tx, status_fail);
        let mut parents = HashSet::new();
        let mut seen = HashSet::new();
        for output in &consumed {
            if !seen.insert(*output) {
                return Err(MempoolError::DoubleSpend {
                    id,
                    output: *output,
                    spent_by: id,
                });
            }
            if let Some(spent_by) = self.spent_by.get(output) {
                return Err(MempoolError::DoubleSpend {
                    id,
                    output: *output,
                    spent_by: *spent_by,
                });
            }
            if let Some(parent) = self.created_by.get(output) {
                parents.insert(*parent);
                continue;
            }
            check_chain_output(utxo, id, *output, next_height)?;
        }
        let size = tx.serialized_size;
        let evicted = self.make_room(id, size, rate, &parents)?;
        for victim in &evicted {
            self.remove_entry(victim);
        }
        let created = created_outputs(&tx, status_fail);
        for output in &consumed {
            self.spent_by.insert(*output, id);
        }
        for output in &created {
            self.created_by.insert(*output, id);
        }
        for parent in &parents {
            if let Some(p) = self.entries.get_mut(parent) {
                p.children.insert(id);
            }
        }
        self.entries.insert(
            id,
            Entry {
                tx,
                rate,
                size,
                status_fail,
                height,
                seq: self.next_seq,
                consumed,
                created,
                parents,
                children: HashSet::new(),
            },
        );
        self.next_seq += 1;
        self.bytes += size;
        self.generation += 1;
        Ok(Admitted {
            id,
            rate,
            status_fail,
            evicted,
        })
    }

    /// The transactions to evict so that one more of `size` bytes paying `rate` fits: the
    /// cheapest per gas first, each with its descendants, never `parents`' ancestry.
    fn make_room(
        &self,
        id: Hash,
        size: u64,
        rate: FeeRate,
        parents: &HashSet<Hash>,
    ) -> MempoolResult<Vec<Hash>> {
        let max_bytes = self.config.max_bytes;
        if size > max_bytes {
            return Err(MempoolError::TooLarge {
                id,
                size,
                max_bytes,
            });
        }
        let fits = |count: usize, bytes: u64| {
            count < self.config.max_txs.max(1) && bytes.saturating_add(size) <= max_bytes
        };
        let (mut count, mut bytes) = (self.entries.len(), self.bytes);
        if fits(count, bytes) {
            return Ok(Vec::new());
        }
        let protected = self.ancestry(parents);
        let mut cheapest: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|(h, _)| !protected.contains(*h))
            .map(|(_, e)| e)
            .collect();
        cheapest.sort_by(|a, b| a.rate.cmp(&b.rate).then(b.seq.cmp(&a.seq)));
        let mut evicted = Vec::new();
        let mut gone = HashSet::new();
        for victim in cheapest {
            if fits(count, bytes) {
                break;
            }
            let victim_id = victim.tx.id();
            if gone.contains(&victim_id) {
                continue;
            }
            if victim.rate >= rate {
                break;
            }
            for h in self.descendants(victim_id) {
                if gone.insert(h) {
                    count -= 1;
                    bytes -= self.entries[&h].size;
                    evicted.push(h);
                }
            }
        }
        if !fits(count, bytes) {
            return Err(MempoolError::Full {
                id,
                fee: rate.fee,
                gas: rate.gas,
            });
        }
        Ok(evicted)
    }

    /// `roots` and every pooled ancestor of them.
    fn ancestry(&self, roots: &HashSet<Hash>) -> HashSet<Hash> {
        let mut out = HashSet::new();
        let mut stack: Vec<Hash> = roots.iter().copied().collect();
        while let Some(h) = stack.pop() {
            if out.insert(h) {
                if let Some(e) = self.entries.get(&h) {
                    stack.extend(e.parents.iter().copied());
                }
            }
        }
        out
    }

    /// `root` and every pooled descendant, parents before children.
    fn descendants(&self, root: Hash) -> Vec<Hash> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = std::collections::VecDeque::from([root]);
        while let Some(h) = queue.pop_front() {
            if !seen.insert(h) {
                continue;
            }
            if let Some(e) = self.entries.get(&h) {
                out.push(h);
                queue.extend(e.children.iter().copied());
            }
        }
        out
    }

    /// Removes one entry and every link to it (its children stay, now spending chain
    /// outputs or nothing).
    fn remove_entry(&mut self, id: &Hash) -> Option<Entry> {
        let entry = self.entries.remove(id)?;
        for output in &entry.consumed {
            if self.spent_by.get(output) == Some(id) {
                self.spent_by.remove(output);
            }
        }
        for output in &entry.created {
            if self.created_by.get(output) == Some(id) {
                self.created_by.remove(output);
            }
        }
        for parent in &entry.parents {
            if let Some(p) = self.entries.get_mut(parent) {
                p.children.remove(id);
            }
        }
        for child in &entry.children {
            if let Some(c) = self.entries.get_mut(child) {
                c.parents.remove(id);
            }
        }
        self.bytes -= entry.size;
        self.generation += 1;
        Some(entry)
    }

    /// Removes `root` and its descendants; returns their IDs.
    fn remove_with_descendants(&mut self, root: Hash) -> Vec<Hash> {
        let doomed = self.descendants(root);
        for h in &doomed {
            self.remove_entry(h);
        }
        doomed
    }

    /// Applies a block that joined the main chain (statuses as validated): its transactions
    /// leave the pool, and so does every pooled transaction spending an output the block
    /// consumed, with its descendants.
    pub fn remove_block(&mut self, block: &Block, status_fail: &[bool], update: &mut PoolUpdate) {
        for (index, tx) in block.transactions.iter().enumerate() {
            let id = tx.id();
            if self.remove_entry(&id).is_some() {
                update.mined.push(id);
                continue;
            }
            let fail = status_fail.get(index).copied().unwrap_or(false);
            for output in consumed_outputs(tx, fail) {
                if let Some(conflict) = self.spent_by.get(&output).copied() {
                    update
                        .dropped
                        .extend(self.remove_with_descendants(conflict));
                }
            }
        }
    }

    /// Drops transactions whose time range ends before `next_height`, with their
    /// descendants.
    pub fn drop_expired(&mut self, next_height: u64, update: &mut PoolUpdate) {
        let expired: Vec<Hash> = self
            .entries
            .iter()
            .filter(|(_, e)| e.tx.data.time_range != 0 && e.tx.data.time_range < next_height)
            .map(|(h, _)| *h)
            .collect();
        for id in expired {
            update.dropped.extend(self.remove_with_descendants(id));
        }
    }

    /// Rebuilds the pool after a reorganisation: `detached` (the blocks taken off the main
    /// chain, oldest first) give their non-coinbase transactions back first, then the pooled
    /// transactions follow in arrival order; each is admitted again for the block at
    /// `next_height` against `utxo` (the new main chain's state), skipping those in
    /// `attached_ids` (mined on the new branch). Those that fail are dropped.
    pub fn reorganize(
        &mut self,
        detached: &[Block],
        attached_ids: &HashSet<Hash>,
        utxo: &dyn UtxoStore,
        next_height: u64,
        update: &mut PoolUpdate,
    ) {
        let pooled = self.transactions();
        let was_pooled: HashSet<Hash> = pooled.iter().map(|(h, _)| *h).collect();
        self.entries.clear();
        self.spent_by.clear();
        self.created_by.clear();
        self.bytes = 0;
        self.generation += 1;
        let from_blocks = detached
            .iter()
            .flat_map(|b| b.transactions.iter().skip(1))
            .map(|tx| (tx.id(), Arc::new(tx.clone()), true));
        let from_pool = pooled.into_iter().map(|(h, tx)| (h, tx, false));
        for (id, tx, from_block) in from_blocks.chain(from_pool) {
            if attached_ids.contains(&id) {
                if was_pooled.contains(&id) && !from_block {
                    update.mined.push(id);
                }
                continue;
            }
            if self.entries.contains_key(&id) {
                continue;
            }
            let result = precheck(tx, next_height).and_then(|c| self.admit(c, utxo, next_height));
            match result {
                Ok(admitted) => {
                    update.dropped.extend(admitted.evicted);
                    if from_block && !was_pooled.contains(&id) {
                        update.readmitted.push(id);
                    }
                }
                Err(_) => {
                    if was_pooled.contains(&id) && !from_block {
                        update.dropped.push(id);
                    }
                }
            }
        }
    }
}

/// Checks that the chain output `output` can be spent by a block at `height`.
fn check_chain_output(
    utxo: &dyn UtxoStore,
    id: Hash,
    output: Hash,
    height: u64,
) -> MempoolResult<()> {
    let entry = utxo.get(&output).map_err(|e| match e {
        UtxoError::Store { message } => MempoolError::Store { message },
        other => MempoolError::Store {
            message: other.to_string(),
        },
    })?;
    match entry {
        None => Err(MempoolError::MissingInput { id, output }),
        Some(e) if e.spent => Err(MempoolError::MissingInput { id, output }),
        Some(e)
            if e.is_coinbase
                && e.block_height.saturating_add(COINBASE_PENDING_BLOCK_NUMBER) > height =>
        {
            Err(MempoolError::ImmatureCoinbase {
                id,
                output,
                created: e.block_height,
                height,
            })
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fee_rates_compare_exactly_without_overflow() {
        let rate = |fee, gas| FeeRate { fee, gas };
        assert!(rate(3, 2) > rate(1, 1));
        assert!(rate(1, 3) < rate(1, 2));
        assert_eq!(rate(2, 4).cmp(&rate(1, 2)), Ordering::Equal);
        assert!(rate(u64::MAX, 1) > rate(u64::MAX - 1, 1));
        assert!(rate(u64::MAX, u64::MAX) < rate(2, 1));
        // Zero gas never divides: it counts as one.
        assert_eq!(rate(5, 0).cmp(&rate(5, 1)), Ordering::Equal);
    }
}
