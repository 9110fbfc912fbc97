//! Block headers and blocks on the wire (spec §2.1–§2.3).
//!
//! ```text
//! header = u8 serflags | varint63 version | varint63 height | [32] previous_block_hash
//!        | varint63 timestamp
//!        | varstr31 block_commitment (ext) = [32] transactions_merkle_root
//!                                          | [32] transaction_status_hash
//!        | varint63 nonce | varint63 bits          (wire order: nonce before bits)
//! block  = header (serflags 0x03) | varint31 tx_count | transaction…
//! ```
//! Storage and p2p carry blocks as hex text ([`Block::from_hex`], [`Block::to_hex`]).

use bystack_kernels::hex;
use bystack_kernels::pow::HeaderTemplate;

use crate::encoding::{
    write_extensible, write_hash, write_len, write_varint63, DecodeError, EncodeError, Reader,
    Result,
};
use crate::entries;
use crate::hash::Hash;
use crate::tx::Transaction;

/// Serialization flags of a header on its own.
pub const SERFLAGS_HEADER: u8 = 0x01;
/// Serialization flags for "transactions only": defined by Bytom, rejected by its reader.
pub const SERFLAGS_TRANSACTIONS: u8 = 0x02;
/// Serialization flags of a full block.
pub const SERFLAGS_BLOCK: u8 = 0x03;

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockHeader {
    /// Block version (1 for validity).
    pub version: u64,
    /// Height (0 for genesis).
    pub height: u64,
    /// Hash of the parent block.
    pub previous_block_hash: Hash,
    /// Unix seconds.
    pub timestamp: u64,
    /// Merkle root of the transaction IDs.
    pub transactions_merkle_root: Hash,
    /// Merkle root of the transaction statuses.
    pub transaction_status_hash: Hash,
    /// PoW nonce.
    pub nonce: u64,
    /// Compact difficulty target.
    pub bits: u64,
    /// Unparsed block-commitment content after the two roots. Kept so that re-encoding is
    /// byte-exact; it never affects the hash (Bytom itself drops it when it re-encodes).
    pub commitment_suffix: Vec<u8>,
}

impl BlockHeader {
    /// Reads a header and returns it with the serialization flags it carried
    /// ([`SERFLAGS_HEADER`] or [`SERFLAGS_BLOCK`]).
    ///
    /// # Errors
    /// [`DecodeError::BadSerflags`] for any other flags, then truncation and varint errors.
    pub fn read_from(r: &mut Reader<'_>) -> Result<(BlockHeader, u8)> {
        let flags = r.read_u8()?;
        if flags != SERFLAGS_HEADER && flags != SERFLAGS_BLOCK {
            return Err(DecodeError::BadSerflags {
                got: flags,
                expected: "0x01 or 0x03",
            });
        }
        let version = r.read_varint63()?;
        let height = r.read_varint63()?;
        let previous_block_hash = r.read_hash()?;
        let timestamp = r.read_varint63()?;
        let ((transactions_merkle_root, transaction_status_hash), commitment_suffix) =
            r.read_extensible(|c| Ok((c.read_hash()?, c.read_hash()?)))?;
        let nonce = r.read_varint63()?;
        let bits = r.read_varint63()?;
        let header = BlockHeader {
            version,
            height,
            previous_block_hash,
            timestamp,
            transactions_merkle_root,
            transaction_status_hash,
            nonce,
            bits,
            commitment_suffix,
        };
        Ok((header, flags))
    }

    /// Decodes a header. With flags 0x01 the bytes must hold the header alone; with flags 0x03
    /// (a full block) the transactions that follow are not parsed.
    ///
    /// # Errors
    /// As [`BlockHeader::read_from`], plus [`DecodeError::TrailingBytes`] after a 0x01 header.
    pub fn decode(bytes: &[u8]) -> Result<BlockHeader> {
        let mut r = Reader::new(bytes);
        let (header, flags) = BlockHeader::read_from(&mut r)?;
        if flags == SERFLAGS_HEADER {
            r.finish()?;
        }
        Ok(header)
    }

    /// Decodes the hex text form.
    ///
    /// # Errors
    /// [`DecodeError::Hex`], then as [`BlockHeader::decode`].
    pub fn from_hex(text: &str) -> Result<BlockHeader> {
        BlockHeader::decode(&hex::decode(text)?)
    }

    /// Appends the header with the given serialization flags byte.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a field above 2^63−1.
    pub fn write_to(&self, out: &mut Vec<u8>, flags: u8) -> Result<(), EncodeError> {
        out.push(flags);
        write_varint63(out, self.version)?;
        write_varint63(out, self.height)?;
        write_hash(out, &self.previous_block_hash);
        write_varint63(out, self.timestamp)?;
        write_extensible(out, &self.commitment_suffix, |c| {
            write_hash(c, &self.transactions_merkle_root);
            write_hash(c, &self.transaction_status_hash);
            Ok(())
        })?;
        write_varint63(out, self.nonce)?;
        write_varint63(out, self.bits)
    }

    /// The header-only encoding (flags 0x01).
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a field above 2^63−1.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.write_to(&mut out, SERFLAGS_HEADER)?;
        Ok(out)
    }

    /// The header-only hex text form.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a field above 2^63−1.
    pub fn to_hex(&self) -> Result<String, EncodeError> {
        Ok(hex::encode(&self.encode()?))
    }

    /// The PoW template of this header (everything but the nonce).
    pub fn template(&self) -> HeaderTemplate {
        entries::header_template(self)
    }

    /// The block hash (spec §3.3), also the Tensority input.
    pub fn hash(&self) -> Hash {
        entries::block_hash(self)
    }
}

/// A block: header and transactions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, coinbase first.
    pub transactions: Vec<Transaction>,
}

impl Block {
    /// Reads a block. Like Bytom, a header with flags 0x01 ends the block: it then has no
    /// transactions.
    ///
    /// # Errors
    /// Header errors, then transaction errors.
    pub fn read_from(r: &mut Reader<'_>) -> Result<Block> {
        let (header, flags) = BlockHeader::read_from(r)?;
        if flags == SERFLAGS_HEADER {
            return Ok(Block {
                header,
                transactions: Vec::new(),
            });
        }
        // A transaction takes at least 5 bytes.
        let transactions = r.read_counted(5, |r, _| Transaction::read_from(r))?;
        Ok(Block {
            header,
            transactions,
        })
    }

    /// Decodes exactly one block from `bytes`.
    ///
    /// # Errors
    /// As [`Block::read_from`], plus [`DecodeError::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Block> {
        let mut r = Reader::new(bytes);
        let block = Block::read_from(&mut r)?;
        r.finish()?;
        Ok(block)
    }

    /// Decodes the hex text form (Bytom's `Block.UnmarshalText`; stored and relayed as such).
    ///
    /// # Errors
    /// [`DecodeError::Hex`], then as [`Block::decode`].
    pub fn from_hex(text: &str) -> Result<Block> {
        Block::decode(&hex::decode(text)?)
    }

    /// Appends the full-block encoding (flags 0x03).
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.header.write_to(out, SERFLAGS_BLOCK)?;
        write_len(out, self.transactions.len())?;
        for tx in &self.transactions {
            tx.data.write_to(out)?;
        }
        Ok(())
    }

    /// The full-block encoding.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// The hex text form.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn to_hex(&self) -> Result<String, EncodeError> {
        Ok(hex::encode(&self.encode()?))
    }

    /// The block hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The IDs of the transactions in order.
    pub fn tx_ids(&self) -> Vec<Hash> {
        self.transactions.iter().map(Transaction::id).collect()
    }

    /// The transaction merkle root recomputed from the transactions.
    pub fn compute_tx_merkle_root(&self) -> Hash {
        crate::merkle::tx_merkle_root(&self.tx_ids())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            version: 1,
            height: 7,
            timestamp: 1_528_945_000,
            nonce: 3,
            bits: 2_305_843_009_214_532_812,
            ..BlockHeader::default()
        }
    }

    #[test]
    fn serflags_and_trailing_bytes() {
        let raw = header().encode().unwrap();
        assert_eq!(raw[0], SERFLAGS_HEADER);
        assert_eq!(BlockHeader::decode(&raw).unwrap(), header());

        let mut trailing = raw.clone();
        trailing.push(0);
        assert_eq!(
            BlockHeader::decode(&trailing),
            Err(DecodeError::TrailingBytes { count: 1 })
        );

        let mut txs_only = raw.clone();
        txs_only[0] = SERFLAGS_TRANSACTIONS;
        assert!(matches!(
            BlockHeader::decode(&txs_only),
            Err(DecodeError::BadSerflags { got: 0x02, .. })
        ));
        assert!(matches!(
            Block::decode(&txs_only),
            Err(DecodeError::BadSerflags { got: 0x02, .. })
        ));

        let block = Block {
            header: header(),
            transactions: Vec::new(),
        };
        let mut full = block.encode().unwrap();
        assert_eq!(full[0], SERFLAGS_BLOCK);
        assert_eq!(Block::decode(&full).unwrap(), block);
        // A full block's header decodes; the body is not the header reader's business.
        assert_eq!(BlockHeader::decode(&full).unwrap(), header());
        full.push(0);
        assert_eq!(
            Block::decode(&full),
            Err(DecodeError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn commitment_suffix_is_kept_but_not_hashed() {
        let mut with_suffix = header();
        with_suffix.commitment_suffix = vec![1, 2, 3];
        let raw = with_suffix.encode().unwrap();
        assert_eq!(BlockHeader::decode(&raw).unwrap(), with_suffix);
        assert_eq!(with_suffix.hash(), header().hash());
    }

    #[test]
    fn out_of_range_fields_are_refused_on_write() {
        let mut h = header();
        h.nonce = u64::MAX;
        assert_eq!(
            h.encode(),
            Err(EncodeError::VarintRange {
                value: u64::MAX,
                max: i64::MAX as u64
            })
        );
    }
}
