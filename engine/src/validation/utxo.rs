//! The UTXO view (Bytom's `state.UtxoViewpoint`, spec §5.2.6 and §7): the entries a block
//! touches, loaded from a [`UtxoStore`], updated by [`UtxoView::apply_block`] or
//! [`UtxoView::detach_block`], and written back with Bytom's storage rule (spent non-coinbase
//! entries deleted, spent coinbase entries kept with `spent = true`).

use std::collections::{BTreeMap, HashMap};

use crate::block::Block;
use crate::consensus::COINBASE_PENDING_BLOCK_NUMBER;
use crate::entries::{EntryType, InputEntry};
use crate::hash::{Hash, BTM_ASSET_ID};
use crate::tx::Transaction;

use super::block::ValidatedBlock;
use super::errors::{UtxoError, UtxoResult};

/// One UTXO record (Bytom's `storage.UtxoEntry`), keyed by output ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtxoEntry {
    /// Created by a block's first transaction.
    pub is_coinbase: bool,
    /// Height of the creating block.
    pub block_height: u64,
    /// Spent (only kept in storage for coinbase outputs).
    pub spent: bool,
}

/// A write to the UTXO store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtxoWrite {
    /// Store `entry` under the output ID.
    Put(Hash, UtxoEntry),
    /// Remove the output ID.
    Delete(Hash),
}

/// Persistent UTXO storage.
pub trait UtxoStore {
    /// The entry of `id`, if stored.
    ///
    /// # Errors
    /// [`UtxoError::Store`] when the store fails.
    fn get(&self, id: &Hash) -> UtxoResult<Option<UtxoEntry>>;

    /// Applies `writes` atomically.
    ///
    /// # Errors
    /// [`UtxoError::Store`] when the store fails.
    fn write_batch(&mut self, writes: &[UtxoWrite]) -> UtxoResult<()>;
}

/// An in-memory [`UtxoStore`] (tests, devnet, PSWV overlays).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryUtxoStore {
    entries: BTreeMap<Hash, UtxoEntry>,
}

impl MemoryUtxoStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// All entries, ordered by ID.
    pub fn entries(&self) -> &BTreeMap<Hash, UtxoEntry> {
        &self.entries
    }
}

impl UtxoStore for MemoryUtxoStore {
    fn get(&self, id: &Hash) -> UtxoResult<Option<UtxoEntry>> {
        Ok(self.entries.get(id).copied())
    }

    fn write_batch(&mut self, writes: &[UtxoWrite]) -> UtxoResult<()> {
        for write in writes {
            match *write {
                UtxoWrite::Put(id, entry) => {
                    self.entries.insert(id, entry);
                }
                UtxoWrite::Delete(id) => {
                    self.entries.remove(&id);
                }
            }
        }
        Ok(())
    }
}

/// The UTXO entries one or more blocks touch. On an error from `apply_*`/`detach_*` the view
/// is partly updated (as Bytom's): discard it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UtxoView {
    entries: HashMap<Hash, UtxoEntry>,
}

/// The checks on one spent output, shared by the sequential apply and PSWV's per-ID folds: it
/// must exist, be unspent, and a coinbase output needs 100 blocks of maturity at `height`.
/// Marks it spent.
///
/// # Errors
/// [`UtxoError::NotFound`], [`UtxoError::AlreadySpent`], [`UtxoError::CoinbaseNotMature`].
pub(crate) fn spend_entry(entry: Option<&mut UtxoEntry>, id: Hash, height: u64) -> UtxoResult<()> {
    let entry = entry.ok_or(UtxoError::NotFound { id })?;
    if entry.spent {
        return Err(UtxoError::AlreadySpent { id });
    }
    if entry.is_coinbase
        && entry
            .block_height
            .saturating_add(COINBASE_PENDING_BLOCK_NUMBER)
            > height
    {
        return Err(UtxoError::CoinbaseNotMature {
            id,
            created: entry.block_height,
            height,
        });
    }
    entry.spent = true;
    Ok(())
}

/// The asset a spent output holds, by output ID.
pub(crate) fn spent_asset(tx: &Transaction, id: &Hash) -> Option<Hash> {
    tx.mapped.inputs.iter().find_map(|e| match *e {
        InputEntry::Spend {
            spent_output_id,
            asset_id,
            ..
        } if spent_output_id == *id => Some(asset_id),
        _ => None,
    })
}

/// The outputs (not retirements) a transaction creates, with their asset.
pub(crate) fn created_outputs(tx: &Transaction) -> impl Iterator<Item = (Hash, Hash)> + '_ {
    tx.mapped
        .results
        .iter()
        .zip(&tx.data.outputs)
        .filter(|(r, _)| r.kind == EntryType::Output)
        .map(|(r, out)| {
            let asset = if out.asset_version == 1 {
                out.asset_id
            } else {
                Hash::ZERO
            };
            (r.id, asset)
        })
}

impl UtxoView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads from `store` the entries of every output `block` spends (Bytom's
    /// `GetTransactionsUtxo`). Outputs created earlier in the view stay as they are.
    ///
    /// # Errors
    /// [`UtxoError::Store`].
    pub fn load_for_block(&mut self, store: &dyn UtxoStore, block: &Block) -> UtxoResult<()> {
        for tx in &block.transactions {
            for id in &tx.mapped.spent_output_ids {
                if self.entries.contains_key(id) {
                    continue;
                }
                if let Some(entry) = store.get(id)? {
                    self.entries.insert(*id, entry);
                }
            }
        }
        Ok(())
    }

    /// The entry of `id` in the view.
    pub fn get(&self, id: &Hash) -> Option<&UtxoEntry> {
        self.entries.get(id)
    }

    /// Sets the entry of `id` (tests, bootstrapping).
    pub fn insert(&mut self, id: Hash, entry: UtxoEntry) {
        self.entries.insert(id, entry);
    }

    /// Whether `id` exists and is unspent (`CanSpend`).
    pub fn can_spend(&self, id: &Hash) -> bool {
        self.entries.get(id).is_some_and(|e| !e.spent)
    }

    /// Every entry in the view.
    pub fn entries(&self) -> &HashMap<Hash, UtxoEntry> {
        &self.entries
    }

    /// Applies one transaction of a block at `height` (`ApplyTransaction`): consumes its spent
    /// outputs, then adds its outputs. A status-fail transaction touches only BTM.
    /// `is_coinbase_tx`: the transaction's ID equals the block's first transaction's.
    ///
    /// # Errors
    /// [`UtxoError::NotFound`], [`UtxoError::AlreadySpent`], [`UtxoError::CoinbaseNotMature`].
    pub fn apply_transaction(
        &mut self,
        tx: &Transaction,
        height: u64,
        is_coinbase_tx: bool,
        status_fail: bool,
    ) -> UtxoResult<()> {
        for id in &tx.mapped.spent_output_ids {
            if status_fail && spent_asset(tx, id) != Some(BTM_ASSET_ID) {
                continue;
            }
            spend_entry(self.entries.get_mut(id), *id, height)?;
        }
        for (id, asset) in created_outputs(tx) {
            if status_fail && asset != BTM_ASSET_ID {
                continue;
            }
            self.entries.insert(
                id,
                UtxoEntry {
                    is_coinbase: is_coinbase_tx,
                    block_height: height,
                    spent: false,
                },
            );
        }
        Ok(())
    }

    /// Applies a validated block (`ApplyBlock`), transaction by transaction.
    ///
    /// # Errors
    /// As [`UtxoView::apply_transaction`].
    pub fn apply_block(&mut self, validated: &ValidatedBlock) -> UtxoResult<()> {
        self.apply_block_with_status(validated.block(), validated.status_fail())
    }

    /// Applies a block whose statuses are already known (a stored block re-applied during a
    /// reorg). Prefer [`UtxoView::apply_block`] for new blocks.
    ///
    /// # Errors
    /// As [`UtxoView::apply_transaction`], plus [`UtxoError::MissingStatus`].
    pub fn apply_block_with_status(
        &mut self,
        block: &Block,
        status_fail: &[bool],
    ) -> UtxoResult<()> {
        let first = block.transactions.first().map(Transaction::id);
        for (index, tx) in block.transactions.iter().enumerate() {
            let fail = *status_fail
                .get(index)
                .ok_or(UtxoError::MissingStatus { index })?;
            self.apply_transaction(tx, block.header.height, first == Some(tx.id()), fail)?;
        }
        Ok(())
    }

    /// Reverts one transaction (`DetachTransaction`). A spent output missing from the view
    /// (a spent non-coinbase output, deleted from storage) comes back as a non-coinbase entry
    /// at height 0, as in Bytom (the height of a non-coinbase output is never read). Created
    /// outputs are marked spent, non-coinbase, so that [`UtxoView::writes`] deletes them.
    ///
    /// # Errors
    /// [`UtxoError::RevertUnspent`].
    pub fn detach_transaction(&mut self, tx: &Transaction, status_fail: bool) -> UtxoResult<()> {
        for id in &tx.mapped.spent_output_ids {
            if status_fail && spent_asset(tx, id) != Some(BTM_ASSET_ID) {
                continue;
            }
            match self.entries.get_mut(id) {
                Some(entry) if !entry.spent => return Err(UtxoError::RevertUnspent { id: *id }),
                Some(entry) => entry.spent = false,
                None => {
                    self.entries.insert(
                        *id,
                        UtxoEntry {
                            is_coinbase: false,
                            block_height: 0,
                            spent: false,
                        },
                    );
                }
            }
        }
        for (id, asset) in created_outputs(tx) {
            if status_fail && asset != BTM_ASSET_ID {
                continue;
            }
            self.entries.insert(
                id,
                UtxoEntry {
                    is_coinbase: false,
                    block_height: 0,
                    spent: true,
                },
            );
        }
        Ok(())
    }

    /// Reverts a block (`DetachBlock`), last transaction first.
    ///
    /// # Errors
    /// As [`UtxoView::detach_transaction`], plus [`UtxoError::MissingStatus`].
    pub fn detach_block(&mut self, block: &Block, status_fail: &[bool]) -> UtxoResult<()> {
        for (index, tx) in block.transactions.iter().enumerate().rev() {
            let fail = *status_fail
                .get(index)
                .ok_or(UtxoError::MissingStatus { index })?;
            self.detach_transaction(tx, fail)?;
        }
        Ok(())
    }

    /// The store writes for this view (`saveUtxoView`): spent non-coinbase entries are
    /// deleted, everything else (spent coinbase entries included) is put. Ordered by ID.
    pub fn writes(&self) -> Vec<UtxoWrite> {
        let mut writes: Vec<UtxoWrite> = self
            .entries
            .iter()
            .map(|(id, entry)| {
                if entry.spent && !entry.is_coinbase {
                    UtxoWrite::Delete(*id)
                } else {
                    UtxoWrite::Put(*id, *entry)
                }
            })
            .collect();
        writes.sort_by_key(|w| match w {
            UtxoWrite::Put(id, _) | UtxoWrite::Delete(id) => *id,
        });
        writes
    }

    /// Writes the view to `store` in one batch.
    ///
    /// # Errors
    /// [`UtxoError::Store`].
    pub fn save(&self, store: &mut dyn UtxoStore) -> UtxoResult<()> {
        store.write_batch(&self.writes())
    }
}
