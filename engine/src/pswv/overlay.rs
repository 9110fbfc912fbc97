//! The hand-off between windows: window k's delta over the base store, so that window k+1
//! runs its stages while window k's batch is still being written.

use std::collections::HashMap;

use crate::hash::Hash;
use crate::validation::{UtxoEntry, UtxoResult, UtxoStore, UtxoWrite};

/// A [`UtxoStore`] that reads through a delta (`Some` = put, `None` = deleted) to a base
/// store and keeps its own writes in the delta; the base is never written.
#[derive(Debug)]
pub struct Overlay<'a, S: ?Sized> {
    base: &'a S,
    delta: HashMap<Hash, Option<UtxoEntry>>,
}

impl<'a, S: UtxoStore + ?Sized> Overlay<'a, S> {
    /// An empty overlay on `base`.
    pub fn new(base: &'a S) -> Self {
        Overlay {
            base,
            delta: HashMap::new(),
        }
    }

    /// An overlay on `base` holding `writes` (a window's batch, not yet committed).
    pub fn with_writes(base: &'a S, writes: &[UtxoWrite]) -> Self {
        let mut overlay = Overlay::new(base);
        overlay.record(writes);
        overlay
    }

    fn record(&mut self, writes: &[UtxoWrite]) {
        for write in writes {
            match *write {
                UtxoWrite::Put(id, entry) => self.delta.insert(id, Some(entry)),
                UtxoWrite::Delete(id) => self.delta.insert(id, None),
            };
        }
    }

    /// The delta as one batch for the base, ordered by ID, without the writes that change
    /// nothing there (a put of the stored entry, a delete of an absent one).
    ///
    /// # Errors
    /// [`UtxoError::Store`](crate::validation::UtxoError::Store) from the base.
    pub fn writes(&self) -> UtxoResult<Vec<UtxoWrite>> {
        let mut writes = Vec::with_capacity(self.delta.len());
        for (id, entry) in &self.delta {
            let base = self.base.get(id)?;
            if base == *entry {
                continue;
            }
            writes.push(match entry {
                Some(e) => UtxoWrite::Put(*id, *e),
                None => UtxoWrite::Delete(*id),
            });
        }
        writes.sort_by_key(write_id);
        Ok(writes)
    }
}

pub(super) fn write_id(write: &UtxoWrite) -> Hash {
    match write {
        UtxoWrite::Put(id, _) | UtxoWrite::Delete(id) => *id,
    }
}

impl<S: UtxoStore + ?Sized> UtxoStore for Overlay<'_, S> {
    fn get(&self, id: &Hash) -> UtxoResult<Option<UtxoEntry>> {
        match self.delta.get(id) {
            Some(entry) => Ok(*entry),
            None => self.base.get(id),
        }
    }

    fn write_batch(&mut self, writes: &[UtxoWrite]) -> UtxoResult<()> {
        self.record(writes);
        Ok(())
    }
}
