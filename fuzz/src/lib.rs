//! bystack-fuzz: the properties the cargo-fuzz targets check, one function per decoder.
//!
//! Each takes arbitrary bytes. Bytes that fail to decode are fine (the decoder must only not
//! panic); bytes that decode must re-encode, and the re-encoding must decode to the same value
//! and re-encode to itself.
//!
//! "The same value" is everything the decoder produced except what it measured on the wire:
//! [`Transaction::serialized_size`] counts the bytes as sent (non-minimal varints, a non-empty
//! output witness that Bytom drops), so after the canonical re-encode it can only shrink, and
//! must then equal the canonical length. The entry IDs must not change.
//!
//! Feature flags: none.

use bystack_engine::{Block, BlockHeader, Transaction};

/// Checks that one re-decoded transaction matches the first decode, given the canonical bytes
/// of the transaction.
fn assert_same_tx(first: &Transaction, second: &Transaction, canonical: &[u8]) {
    assert_eq!(
        first.data, second.data,
        "transaction data changed on re-encode"
    );
    assert_eq!(
        first.mapped, second.mapped,
        "entry IDs changed on re-encode"
    );
    assert_eq!(
        second.serialized_size,
        canonical.len() as u64,
        "size of a canonical transaction"
    );
    assert!(
        first.serialized_size >= second.serialized_size,
        "the canonical encoding is longer than the one decoded: {} > {}",
        second.serialized_size,
        first.serialized_size
    );
}

/// `Transaction::decode`, then encode, decode again and compare.
///
/// # Panics
/// When the property fails (that is the fuzzer's signal).
pub fn check_tx(data: &[u8]) {
    let Ok(first) = Transaction::decode(data) else {
        return;
    };
    let bytes = first
        .encode()
        .expect("a decoded transaction must re-encode");
    let second = Transaction::decode(&bytes).expect("a re-encoded transaction must decode");
    assert_same_tx(&first, &second, &bytes);
    assert_eq!(
        second.encode().expect("re-encode"),
        bytes,
        "canonical encoding is a fixed point"
    );
}

/// `BlockHeader::decode`, then encode (as a header alone), decode again and compare.
///
/// # Panics
/// When the property fails.
pub fn check_header(data: &[u8]) {
    let Ok(first) = BlockHeader::decode(data) else {
        return;
    };
    let bytes = first.encode().expect("a decoded header must re-encode");
    let second = BlockHeader::decode(&bytes).expect("a re-encoded header must decode");
    assert_eq!(first, second, "header changed on re-encode");
    assert_eq!(first.hash(), second.hash());
    assert_eq!(
        second.encode().expect("re-encode"),
        bytes,
        "canonical encoding is a fixed point"
    );
}

/// `Block::decode`, then encode, decode again and compare header, transactions and IDs.
///
/// # Panics
/// When the property fails.
pub fn check_block(data: &[u8]) {
    let Ok(first) = Block::decode(data) else {
        return;
    };
    let bytes = first.encode().expect("a decoded block must re-encode");
    let second = Block::decode(&bytes).expect("a re-encoded block must decode");
    assert_eq!(first.header, second.header, "header changed on re-encode");
    assert_eq!(
        first.transactions.len(),
        second.transactions.len(),
        "transaction count changed on re-encode"
    );
    for (a, b) in first.transactions.iter().zip(&second.transactions) {
        let canonical = b.encode().expect("re-encode a transaction");
        assert_same_tx(a, b, &canonical);
    }
    assert_eq!(first.hash(), second.hash());
    assert_eq!(
        first.compute_tx_merkle_root(),
        second.compute_tx_merkle_root()
    );
    assert_eq!(
        second.encode().expect("re-encode"),
        bytes,
        "canonical encoding is a fixed point"
    );
}
