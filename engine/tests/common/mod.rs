//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use bystack_engine::Hash;
use serde_json::Value;

/// The shared vectors directory: `$BYSTACK_VECTORS`, else `../shared/vectors` beside the repo.
pub fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BYSTACK_VECTORS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

/// Parses a vectors file; panics with a clear message if it is missing.
pub fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set BYSTACK_VECTORS to the shared vectors dir",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("vectors file is valid JSON")
}

/// A string field.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key:?} is not a string in {v}"))
}

/// An unsigned integer field.
pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("field {key:?} is not a u64 in {v}"))
}

/// A 32-byte hash field.
pub fn h(v: &Value, key: &str) -> Hash {
    Hash::from_hex(s(v, key)).unwrap_or_else(|e| panic!("field {key:?}: {e}"))
}

/// Bytes from a hex field.
pub fn bytes(v: &Value, key: &str) -> Vec<u8> {
    bystack_kernels::hex::decode(s(v, key)).unwrap_or_else(|e| panic!("field {key:?}: {e}"))
}

/// A list of hashes; JSON `null` or a missing key is the empty list.
pub fn hashes(v: &Value, key: &str) -> Vec<Hash> {
    match &v[key] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|x| Hash::from_hex(x.as_str().expect("hash string")).expect("32-byte hex"))
            .collect(),
        other => panic!("field {key:?} is not a list: {other}"),
    }
}

/// A list field; JSON `null` or a missing key is the empty list.
pub fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    match &v[key] {
        Value::Null => &[],
        Value::Array(items) => items,
        other => panic!("field {key:?} is not a list: {other}"),
    }
}

/// A block on `parent` holding `txs` (coinbase included), with correct merkle and status roots.
pub fn assemble(
    parent: &bystack_engine::validation::ParentInfo,
    txs: Vec<bystack_engine::Transaction>,
) -> bystack_engine::block::Block {
    use bystack_engine::block::{Block, BlockHeader};
    use bystack_engine::merkle::{tx_merkle_root, tx_status_merkle_root};
    use bystack_engine::validation::{validate_txs, TxOutcome};
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            height: parent.height + 1,
            previous_block_hash: parent.hash,
            timestamp: parent.median_time + 150,
            transactions_merkle_root: Hash::ZERO,
            transaction_status_hash: Hash::ZERO,
            nonce: 0,
            bits: parent.bits_expected,
            commitment_suffix: Vec::new(),
        },
        transactions: txs,
    };
    block.header.transactions_merkle_root = tx_merkle_root(&block.tx_ids());
    let status: Vec<bool> = validate_txs(&block)
        .iter()
        .map(TxOutcome::status_fail)
        .collect();
    block.header.transaction_status_hash = tx_status_merkle_root(&status);
    block
}
