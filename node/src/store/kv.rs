//! The seam between the chain database and its backend: an ordered key-value store that
//! applies a batch atomically. [`MemoryKv`] backs tests and tools that should not link
//! RocksDB; [`RocksKv`](super::RocksKv) (feature `rocksdb`) is the node's.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::StoreResult;

/// One write of a [`KvBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Store `value` under `key`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key`.
    Delete(Vec<u8>),
}

/// Writes that land together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvBatch {
    ops: Vec<KvOp>,
}

impl KvBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.ops.push(KvOp::Put(key.to_vec(), value.to_vec()));
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &[u8]) {
        self.ops.push(KvOp::Delete(key.to_vec()));
    }

    /// The writes, in order (a later write to the same key wins).
    pub fn ops(&self) -> &[KvOp] {
        &self.ops
    }

    /// How many writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What [`KvStore::scan_prefix`] calls with each key and value: `Ok(false)` stops the scan.
pub type Visitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> StoreResult<bool>;

/// An ordered key-value store with atomic batches. Keys compare bytewise.
pub trait KvStore: Send + Sync {
    /// The value of `key`.
    ///
    /// # Errors
    /// [`StoreError::Backend`](super::StoreError::Backend) when the backend fails.
    fn get(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>>;

    /// Calls `visit` with every entry whose key starts with `prefix`, in key order, until it
    /// returns `Ok(false)` or an error (which is returned).
    ///
    /// # Errors
    /// The backend's, or the first error of `visit`.
    fn scan_prefix(&self, prefix: &[u8], visit: Visitor<'_>) -> StoreResult<()>;

    /// Applies `batch` atomically: after a crash, either every write of it is visible or
    /// none is.
    ///
    /// # Errors
    /// [`StoreError::Backend`](super::StoreError::Backend) when the backend fails (nothing
    /// of the batch is then applied).
    fn write(&self, batch: KvBatch) -> StoreResult<()>;
}

/// A [`KvStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding the lock cannot leave the map half-written: writes replace
        // whole values.
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KvStore for MemoryKv {
    fn get(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.read().get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8], visit: Visitor<'_>) -> StoreResult<()> {
        let map = self.read();
        for (key, value) in map.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) || !visit(key, value)? {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: KvBatch) -> StoreResult<()> {
        let mut map = self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for op in batch.ops {
            match op {
                KvOp::Put(key, value) => {
                    map.insert(key, value);
                }
                KvOp::Delete(key) => {
                    map.remove(&key);
                }
            }
        }
        Ok(())
    }
}
