//! The key scheme of the chain database, in one place: every key starts with one [`Prefix`]
//! byte, followed by a fixed-width suffix. One keyspace (RocksDB's default column family) keeps
//! every block's writes in one atomic write batch and the scheme independent of the backend.
//!
//! ```text
//! Version   01                         → u32 BE format version
//! Tip       02                         → u64 BE height ‖ [32] hash
//! Block     03 ‖ [32] block hash       → block, Bytom wire format (serflags 0x03)
//! Header    04 ‖ u64 BE height ‖ [32]  → header, Bytom wire format; every stored block, main
//!                                        chain or not, ordered by height (the index rebuild)
//! MainChain 05 ‖ u64 BE height         → [32] hash of the main-chain block at that height
//! TxStatus  06 ‖ [32] block hash       → u32 BE count ‖ status_fail bitmap (LSB first)
//! Utxo      07 ‖ [32] output ID        → u8 flags (1 coinbase, 2 spent) ‖ u64 BE block height
//! Undo      08 ‖ [32] block hash       → the UTXO entries the block touched, as they were
//!                                        before it (main-chain blocks only)
//! ```
//! Big-endian heights make a prefix scan return blocks in height order, so parents come
//! before their children when the index is rebuilt.

use bystack_engine::Hash;

/// The first byte of every key. The numbering is part of the on-disk format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Prefix {
    /// The format version (one key).
    Version = 0x01,
    /// The main chain's tip (one key).
    Tip = 0x02,
    /// Blocks by hash.
    Block = 0x03,
    /// Headers by height and hash: every stored block.
    Header = 0x04,
    /// The main chain: block hash by height.
    MainChain = 0x05,
    /// Transaction statuses (`status_fail` per transaction) by block hash.
    TxStatus = 0x06,
    /// UTXO entries by output ID.
    Utxo = 0x07,
    /// Undo data by block hash.
    Undo = 0x08,
}

impl Prefix {
    /// The prefix byte.
    pub const fn byte(self) -> u8 {
        self as u8
    }

    /// The one-byte key of a singleton record, or the scan prefix of a table.
    pub const fn key(self) -> [u8; 1] {
        [self as u8]
    }
}

/// `prefix ‖ hash`.
pub fn hash_key(prefix: Prefix, hash: &Hash) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[0] = prefix.byte();
    key[1..].copy_from_slice(hash.as_bytes());
    key
}

/// `Header ‖ height ‖ hash`.
pub fn header_key(height: u64, hash: &Hash) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[0] = Prefix::Header.byte();
    key[1..9].copy_from_slice(&height.to_be_bytes());
    key[9..].copy_from_slice(hash.as_bytes());
    key
}

/// `MainChain ‖ height`.
pub fn main_chain_key(height: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = Prefix::MainChain.byte();
    key[1..].copy_from_slice(&height.to_be_bytes());
    key
}

/// The height and hash of a [`header_key`], `None` if `key` is not one.
pub fn parse_header_key(key: &[u8]) -> Option<(u64, Hash)> {
    if key.len() != 41 || key[0] != Prefix::Header.byte() {
        return None;
    }
    let height = u64::from_be_bytes(key[1..9].try_into().ok()?);
    let hash = Hash(key[9..].try_into().ok()?);
    Some((height, hash))
}

/// The height of a [`main_chain_key`], `None` if `key` is not one.
pub fn parse_main_chain_key(key: &[u8]) -> Option<u64> {
    if key.len() != 9 || key[0] != Prefix::MainChain.byte() {
        return None;
    }
    Some(u64::from_be_bytes(key[1..].try_into().ok()?))
}

/// The hash of a [`hash_key`] under `prefix`, `None` if `key` is not one.
pub fn parse_hash_key(prefix: Prefix, key: &[u8]) -> Option<Hash> {
    if key.len() != 33 || key[0] != prefix.byte() {
        return None;
    }
    Some(Hash(key[1..].try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_height() {
        let h = Hash([7; 32]);
        assert_eq!(parse_header_key(&header_key(5, &h)), Some((5, h)));
        assert_eq!(parse_main_chain_key(&main_chain_key(9)), Some(9));
        assert_eq!(
            parse_hash_key(Prefix::Utxo, &hash_key(Prefix::Utxo, &h)),
            Some(h)
        );
        assert_eq!(
            parse_hash_key(Prefix::Block, &hash_key(Prefix::Utxo, &h)),
            None
        );
        assert!(header_key(255, &Hash([0xff; 32])) < header_key(256, &Hash([0; 32])));
    }

    #[test]
    fn prefixes_are_distinct() {
        let all = [
            Prefix::Version,
            Prefix::Tip,
            Prefix::Block,
            Prefix::Header,
            Prefix::MainChain,
            Prefix::TxStatus,
            Prefix::Utxo,
            Prefix::Undo,
        ];
        let mut bytes: Vec<u8> = all.iter().map(|p| p.byte()).collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), all.len());
    }
}
