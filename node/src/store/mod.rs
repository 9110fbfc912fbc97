//! The chain database: blocks, the header index, the main chain by height, transaction
//! statuses, the UTXO set, per-block undo data and the tip, under the one key scheme of
//! [`keys`], over any [`KvStore`] ([`RocksKv`] for the node, [`MemoryKv`] for tests).
//!
//! Writes go through a [`StoreBatch`]: the chain manager puts everything one block (or one
//! PSWV window, or one reorganisation) changes into one batch, which lands atomically, so the
//! database is always at a committed tip. [`Store`] also implements the engine's
//! [`UtxoStore`], so validation reads the UTXO set straight from disk.

pub mod codec;
pub mod keys;
pub mod kv;
#[cfg(feature = "rocksdb")]
mod rocks;

use bystack_engine::validation::{UtxoEntry, UtxoError, UtxoResult, UtxoStore, UtxoWrite};
use bystack_engine::{Block, BlockHeader, DecodeError, EncodeError, Hash};
use sha3::{Digest, Sha3_256};

pub use codec::{CodecError, Undo};
pub use keys::Prefix;
pub use kv::{KvBatch, KvOp, KvStore, MemoryKv, Visitor};
#[cfg(feature = "rocksdb")]
pub use rocks::{RocksKv, RocksOptions};

use keys::{hash_key, header_key, main_chain_key};

/// The on-disk format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Why the chain database failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend (RocksDB) failed.
    #[error("database: {message}")]
    Backend {
        /// The backend's message.
        message: String,
    },
    /// A stored value does not decode.
    #[error("corrupt {what} at key {key}: {reason}")]
    Corrupt {
        /// What the value is.
        what: &'static str,
        /// The key, in hex.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// A record the database must hold is missing.
    #[error("missing {what} at key {key}")]
    Missing {
        /// What the record is.
        what: &'static str,
        /// The key, in hex.
        key: String,
    },
    /// The stored records contradict each other.
    #[error("inconsistent database: {reason}")]
    Inconsistent {
        /// What contradicts what.
        reason: String,
    },
    /// The database was written in another format.
    #[error("database format version {found}, this node reads {expected}")]
    Version {
        /// The stored version.
        found: u32,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// A block or header cannot be serialized.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        reason: String,
    },
}

/// Result alias for the store.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

fn hex_key(key: &[u8]) -> String {
    bystack_kernels::hex::encode(key)
}

fn corrupt(what: &'static str, key: &[u8], reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        key: hex_key(key),
        reason: reason.to_string(),
    }
}

fn encode_error(what: &'static str, e: EncodeError) -> StoreError {
    StoreError::Encode {
        what,
        reason: e.to_string(),
    }
}

impl From<StoreError> for UtxoError {
    fn from(e: StoreError) -> Self {
        UtxoError::Store {
            message: e.to_string(),
        }
    }
}

/// SHA3-256 over UTXO entries in ascending output-ID order, each as
/// `[32] id ‖ u8 is_coinbase ‖ u64 BE block height ‖ u8 spent`: what [`Store::utxo_digest`]
/// computes from disk, for comparing with any other UTXO set (such as a
/// [`MemoryUtxoStore`](bystack_engine::validation::MemoryUtxoStore)'s entries). The entries
/// must come sorted by ID for the digest to be canonical (a `BTreeMap`'s iteration order is).
pub fn utxo_digest<'a>(entries: impl IntoIterator<Item = (&'a Hash, &'a UtxoEntry)>) -> Hash {
    let mut hasher = UtxoDigest::default();
    for (id, entry) in entries {
        hasher.add(id, entry);
    }
    hasher.finish()
}

/// The running state of [`utxo_digest`].
#[derive(Default)]
struct UtxoDigest {
    hasher: Sha3_256,
}

impl UtxoDigest {
    fn add(&mut self, id: &Hash, entry: &UtxoEntry) {
        self.hasher.update(id.as_bytes());
        self.hasher.update([u8::from(entry.is_coinbase)]);
        self.hasher.update(entry.block_height.to_be_bytes());
        self.hasher.update([u8::from(entry.spent)]);
    }

    fn finish(self) -> Hash {
        Hash(self.hasher.finalize().into())
    }
}

/// The main chain's tip as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredTip {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
}

/// The typed chain database over a [`KvStore`].
#[derive(Debug)]
pub struct Store<K> {
    kv: K,
}

#[cfg(feature = "rocksdb")]
impl Store<RocksKv> {
    /// Opens (or creates) the RocksDB database in `path`.
    ///
    /// # Errors
    /// As [`RocksKv::open`].
    pub fn open_rocksdb(path: &std::path::Path, options: RocksOptions) -> StoreResult<Self> {
        Ok(Store::new(RocksKv::open(path, options)?))
    }
}

impl Store<MemoryKv> {
    /// An empty in-memory database.
    pub fn in_memory() -> Self {
        Store::new(MemoryKv::new())
    }
}

impl<K: KvStore> Store<K> {
    /// The typed database over `kv`.
    pub fn new(kv: K) -> Self {
        Store { kv }
    }

    /// The backend.
    pub fn kv(&self) -> &K {
        &self.kv
    }

    /// Applies `batch` atomically.
    ///
    /// # Errors
    /// [`StoreError::Backend`]; nothing of the batch is then applied.
    pub fn commit(&self, batch: StoreBatch) -> StoreResult<()> {
        self.kv.write(batch.kv)
    }

    fn get_decoded<T>(
        &self,
        key: &[u8],
        what: &'static str,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> StoreResult<Option<T>> {
        match self.kv.get(key)? {
            None => Ok(None),
            Some(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|reason| corrupt(what, key, reason)),
        }
    }

    /// Whether the database holds nothing yet (no format version written).
    ///
    /// # Errors
    /// [`StoreError`] from the backend.
    pub fn is_empty(&self) -> StoreResult<bool> {
        Ok(self.kv.get(&Prefix::Version.key())?.is_none())
    }

    /// Checks the stored format version (an empty database passes).
    ///
    /// # Errors
    /// [`StoreError::Version`], or a corrupt version record.
    pub fn check_version(&self) -> StoreResult<()> {
        let key = Prefix::Version.key();
        match self.get_decoded(&key, "format version", |b| {
            codec::decode_version(b).map_err(|e| e.to_string())
        })? {
            None => Ok(()),
            Some(FORMAT_VERSION) => Ok(()),
            Some(found) => Err(StoreError::Version {
                found,
                expected: FORMAT_VERSION,
            }),
        }
    }

    /// The stored tip.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt record.
    pub fn tip(&self) -> StoreResult<Option<StoredTip>> {
        self.get_decoded(&Prefix::Tip.key(), "tip", |b| {
            codec::decode_tip(b)
                .map(|(height, hash)| StoredTip { height, hash })
                .map_err(|e| e.to_string())
        })
    }

    /// The block `hash`.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a block that does not decode.
    pub fn block(&self, hash: &Hash) -> StoreResult<Option<Block>> {
        let key = hash_key(Prefix::Block, hash);
        self.get_decoded(&key, "block", |b| {
            Block::decode(b).map_err(|e: DecodeError| e.to_string())
        })
    }

    /// Whether the block `hash` is stored.
    ///
    /// # Errors
    /// [`StoreError`] from the backend.
    pub fn has_block(&self, hash: &Hash) -> StoreResult<bool> {
        Ok(self.kv.get(&hash_key(Prefix::Block, hash))?.is_some())
    }

    /// The transaction statuses (`status_fail` per transaction) of the block `hash`.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt record.
    pub fn statuses(&self, hash: &Hash) -> StoreResult<Option<Vec<bool>>> {
        self.get_decoded(&hash_key(Prefix::TxStatus, hash), "tx statuses", |b| {
            codec::decode_statuses(b).map_err(|e| e.to_string())
        })
    }

    /// The undo data of the main-chain block `hash`.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt record.
    pub fn undo(&self, hash: &Hash) -> StoreResult<Option<Undo>> {
        self.get_decoded(&hash_key(Prefix::Undo, hash), "undo data", |b| {
            codec::decode_undo(b).map_err(|e| e.to_string())
        })
    }

    /// The hash of the main-chain block at `height`.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt record.
    pub fn main_chain_hash(&self, height: u64) -> StoreResult<Option<Hash>> {
        self.get_decoded(&main_chain_key(height), "main chain entry", |b| {
            codec::decode_hash(b).map_err(|e| e.to_string())
        })
    }

    /// Every stored header in height order (parents before children), with its hash.
    ///
    /// # Errors
    /// [`StoreError`] from the backend, a header that does not decode, or one whose hash or
    /// height is not its key's.
    pub fn headers(&self) -> StoreResult<Vec<(Hash, BlockHeader)>> {
        let mut out = Vec::new();
        self.kv
            .scan_prefix(&Prefix::Header.key(), &mut |key, value| {
                let (height, hash) = keys::parse_header_key(key)
                    .ok_or_else(|| corrupt("header key", key, "bad length"))?;
                let header = BlockHeader::decode(value).map_err(|e| corrupt("header", key, e))?;
                if header.height != height || header.hash() != hash {
                    return Err(corrupt(
                        "header",
                        key,
                        format!("holds height {} hash {}", header.height, header.hash()),
                    ));
                }
                out.push((hash, header));
                Ok(true)
            })?;
        Ok(out)
    }

    /// The main chain as stored: `(height, hash)` in height order.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt record.
    pub fn main_chain(&self) -> StoreResult<Vec<(u64, Hash)>> {
        let mut out = Vec::new();
        self.kv
            .scan_prefix(&Prefix::MainChain.key(), &mut |key, value| {
                let height = keys::parse_main_chain_key(key)
                    .ok_or_else(|| corrupt("main chain key", key, "bad length"))?;
                let hash = codec::decode_hash(value).map_err(|e| corrupt("main chain", key, e))?;
                out.push((height, hash));
                Ok(true)
            })?;
        Ok(out)
    }

    /// Calls `visit` with every UTXO entry in ascending output-ID order.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt entry.
    pub fn for_each_utxo(&self, mut visit: impl FnMut(&Hash, &UtxoEntry)) -> StoreResult<()> {
        self.kv.scan_prefix(&Prefix::Utxo.key(), &mut |key, value| {
            let id = keys::parse_hash_key(Prefix::Utxo, key)
                .ok_or_else(|| corrupt("utxo key", key, "bad length"))?;
            let entry = codec::decode_utxo(value).map_err(|e| corrupt("utxo entry", key, e))?;
            visit(&id, &entry);
            Ok(true)
        })
    }

    /// How many UTXO entries are stored (spent coinbase entries included).
    ///
    /// # Errors
    /// As [`Store::for_each_utxo`].
    pub fn utxo_count(&self) -> StoreResult<u64> {
        let mut n = 0;
        self.for_each_utxo(|_, _| n += 1)?;
        Ok(n)
    }

    /// [`utxo_digest`] of the stored UTXO set.
    ///
    /// # Errors
    /// As [`Store::for_each_utxo`].
    pub fn utxo_digest(&self) -> StoreResult<Hash> {
        let mut digest = UtxoDigest::default();
        self.for_each_utxo(|id, entry| digest.add(id, entry))?;
        Ok(digest.finish())
    }

    /// The UTXO entry of `id`.
    ///
    /// # Errors
    /// [`StoreError`] from the backend or a corrupt entry.
    pub fn utxo(&self, id: &Hash) -> StoreResult<Option<UtxoEntry>> {
        self.get_decoded(&hash_key(Prefix::Utxo, id), "utxo entry", |b| {
            codec::decode_utxo(b).map_err(|e| e.to_string())
        })
    }
}

impl<K: KvStore> UtxoStore for Store<K> {
    fn get(&self, id: &Hash) -> UtxoResult<Option<UtxoEntry>> {
        Ok(self.utxo(id)?)
    }

    fn write_batch(&mut self, writes: &[UtxoWrite]) -> UtxoResult<()> {
        let mut batch = StoreBatch::new();
        batch.utxo_writes(writes);
        Ok(self.commit(batch)?)
    }
}

/// The typed writes of one atomic commit.
#[derive(Debug, Default)]
pub struct StoreBatch {
    kv: KvBatch,
}

impl StoreBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many key writes the batch holds.
    pub fn len(&self) -> usize {
        self.kv.len()
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.kv.is_empty()
    }

    /// Writes the format version.
    pub fn put_version(&mut self) {
        self.kv
            .put(&Prefix::Version.key(), &FORMAT_VERSION.to_be_bytes());
    }

    /// Stores `block` (under `hash`, its hash), its header in the header index, and its
    /// transaction statuses.
    ///
    /// # Errors
    /// [`StoreError::Encode`] when the block cannot be serialized.
    pub fn put_block(
        &mut self,
        hash: &Hash,
        block: &Block,
        status_fail: &[bool],
    ) -> StoreResult<()> {
        let bytes = block.encode().map_err(|e| encode_error("block", e))?;
        let header = block
            .header
            .encode()
            .map_err(|e| encode_error("header", e))?;
        self.kv.put(&hash_key(Prefix::Block, hash), &bytes);
        self.kv.put(&header_key(block.header.height, hash), &header);
        self.kv.put(
            &hash_key(Prefix::TxStatus, hash),
            &codec::encode_statuses(status_fail),
        );
        Ok(())
    }

    /// Removes the block `hash` at `height`: the block, its header index entry, its statuses
    /// and its undo data.
    pub fn delete_block(&mut self, height: u64, hash: &Hash) {
        self.kv.delete(&hash_key(Prefix::Block, hash));
        self.kv.delete(&header_key(height, hash));
        self.kv.delete(&hash_key(Prefix::TxStatus, hash));
        self.kv.delete(&hash_key(Prefix::Undo, hash));
    }

    /// Makes `hash` the main-chain block at `height`, with its undo data.
    pub fn put_main(&mut self, height: u64, hash: &Hash, undo: &[(Hash, Option<UtxoEntry>)]) {
        self.kv.put(&main_chain_key(height), hash.as_bytes());
        self.kv
            .put(&hash_key(Prefix::Undo, hash), &codec::encode_undo(undo));
    }

    /// Takes the block `hash` at `height` off the main chain (its undo data goes: it is
    /// recomputed if the block is attached again).
    pub fn delete_main(&mut self, height: u64, hash: &Hash) {
        self.kv.delete(&main_chain_key(height));
        self.kv.delete(&hash_key(Prefix::Undo, hash));
    }

    /// Sets the tip.
    pub fn put_tip(&mut self, height: u64, hash: &Hash) {
        self.kv
            .put(&Prefix::Tip.key(), &codec::encode_tip(height, hash));
    }

    /// UTXO writes from the engine.
    pub fn utxo_writes(&mut self, writes: &[UtxoWrite]) {
        for write in writes {
            match write {
                UtxoWrite::Put(id, entry) => self
                    .kv
                    .put(&hash_key(Prefix::Utxo, id), &codec::encode_utxo(entry)),
                UtxoWrite::Delete(id) => self.kv.delete(&hash_key(Prefix::Utxo, id)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bystack_engine::consensus::Network;
    use bystack_engine::genesis::genesis_block;

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let store = Store::in_memory();
        let genesis = genesis_block(Network::Devnet);
        let hash = genesis.hash();
        let mut batch = StoreBatch::new();
        batch.put_block(&hash, &genesis, &[false]).unwrap();
        batch.put_tip(0, &hash);
        store.commit(batch).unwrap();
        assert_eq!(store.block(&hash).unwrap().as_ref(), Some(&genesis));

        let mut kv = KvBatch::new();
        kv.put(&hash_key(Prefix::Block, &hash), &[0x03, 0x01]);
        kv.put(&Prefix::Tip.key(), &[1, 2, 3]);
        kv.put(&hash_key(Prefix::Utxo, &hash), &[9; 9]);
        kv.put(&header_key(7, &hash), &genesis.header.encode().unwrap());
        store.kv().write(kv).unwrap();
        assert!(matches!(
            store.block(&hash),
            Err(StoreError::Corrupt { what: "block", .. })
        ));
        assert!(matches!(
            store.tip(),
            Err(StoreError::Corrupt { what: "tip", .. })
        ));
        assert!(matches!(
            store.utxo_digest(),
            Err(StoreError::Corrupt {
                what: "utxo entry",
                ..
            })
        ));
        assert!(matches!(
            UtxoStore::get(&store, &hash),
            Err(UtxoError::Store { .. })
        ));
        // A header stored under the wrong height.
        assert!(matches!(
            store.headers(),
            Err(StoreError::Corrupt { what: "header", .. })
        ));
    }

    #[test]
    fn digest_is_canonical_and_matches_a_memory_set() {
        let e = UtxoEntry {
            is_coinbase: false,
            block_height: 1,
            spent: false,
        };
        let store = Store::in_memory();
        let mut batch = StoreBatch::new();
        batch.utxo_writes(&[
            UtxoWrite::Put(Hash([2; 32]), e),
            UtxoWrite::Put(Hash([1; 32]), e),
        ]);
        store.commit(batch).unwrap();
        let map: std::collections::BTreeMap<Hash, UtxoEntry> =
            [(Hash([1; 32]), e), (Hash([2; 32]), e)].into();
        assert_eq!(store.utxo_digest().unwrap(), utxo_digest(&map));
        assert_ne!(utxo_digest(&map), utxo_digest(std::iter::empty()));
    }
}
