//! The RocksDB backend (feature `rocksdb`): one database, the default column family, every
//! [`KvBatch`] one RocksDB `WriteBatch` through the write-ahead log. With
//! [`RocksOptions::sync`] the log is fsynced before a write returns, so a committed block
//! survives a power loss; without it, a process crash (kill -9) still loses nothing that
//! returned, since the log is in the OS page cache.

use std::path::Path;

use rocksdb::{BlockBasedOptions, DBCompressionType, Direction, IteratorMode, WriteBatch};

use super::kv::{KvBatch, KvOp, KvStore, Visitor};
use super::{StoreError, StoreResult};

/// How to open the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RocksOptions {
    /// Fsync the write-ahead log on every batch (every block or window).
    pub sync: bool,
    /// Create the database if the directory holds none.
    pub create_if_missing: bool,
}

impl Default for RocksOptions {
    fn default() -> Self {
        RocksOptions {
            sync: true,
            create_if_missing: true,
        }
    }
}

/// A [`KvStore`] on RocksDB.
pub struct RocksKv {
    db: rocksdb::DB,
    sync: bool,
}

impl std::fmt::Debug for RocksKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKv")
            .field("path", &self.db.path())
            .field("sync", &self.sync)
            .finish()
    }
}

fn backend(e: rocksdb::Error) -> StoreError {
    StoreError::Backend {
        message: e.into_string(),
    }
}

impl RocksKv {
    /// Opens (or creates) the database in the directory `path`.
    ///
    /// # Errors
    /// [`StoreError::Backend`]: the directory is not a database, another process holds it,
    /// or RocksDB finds it corrupt.
    pub fn open(path: &Path, options: RocksOptions) -> StoreResult<Self> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(options.create_if_missing);
        // Built without compression libraries (build time); blocks and hashes compress
        // poorly anyway.
        opts.set_compression_type(DBCompressionType::None);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(4);
        let mut table = BlockBasedOptions::default();
        // Most UTXO reads of a new block's outputs (undo data) miss: a bloom filter answers
        // them without touching the table files.
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        let db = rocksdb::DB::open(&opts, path).map_err(backend)?;
        Ok(RocksKv {
            db,
            sync: options.sync,
        })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.db.path()
    }
}

impl KvStore for RocksKv {
    fn get(&self, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        self.db.get(key).map_err(backend)
    }

    fn scan_prefix(&self, prefix: &[u8], visit: Visitor<'_>) -> StoreResult<()> {
        for item in self
            .db
            .iterator(IteratorMode::From(prefix, Direction::Forward))
        {
            let (key, value) = item.map_err(backend)?;
            if !key.starts_with(prefix) || !visit(&key, &value)? {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: KvBatch) -> StoreResult<()> {
        let mut wb = WriteBatch::default();
        for op in batch.ops() {
            match op {
                KvOp::Put(key, value) => wb.put(key, value),
                KvOp::Delete(key) => wb.delete(key),
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.sync);
        self.db.write_opt(wb, &wo).map_err(backend)
    }
}
