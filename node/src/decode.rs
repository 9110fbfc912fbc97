//! `bystack-node decode`: a serialized block header, block or transaction (hex) → one JSON
//! object with every field and every computed ID. The serflag byte decides what it is.

use bystack_engine::block::{Block, BlockHeader};
use bystack_engine::entries::EntryType;
use bystack_engine::tx::{Transaction, TxInput};
use bystack_engine::validation::{BlockError, TensorityPow};
use bystack_engine::{DecodeError, Hash};
use bystack_kernels::hex::{self, HexError};
use bystack_kernels::pow;
use serde_json::{json, Value};
use thiserror::Error;

/// Serflag of a header-only serialization.
pub const SERFLAG_HEADER: u8 = 0x01;
/// Serflag of a full block.
pub const SERFLAG_BLOCK: u8 = 0x03;
/// Serflag of a transaction.
pub const SERFLAG_TX: u8 = 0x07;

/// Why a `decode` failed.
#[derive(Debug, Error)]
pub enum DecodeCommandError {
    /// The input is not hex.
    #[error("input is not hex: {0}")]
    Hex(#[from] HexError),
    /// The input is empty.
    #[error("input is empty")]
    Empty,
    /// The first byte is no known serflag.
    #[error(
        "unknown serialization flag {got:#04x}: expected 0x01 (header), 0x03 (block) or 0x07 (transaction)"
    )]
    UnknownSerflag {
        /// The byte found.
        got: u8,
    },
    /// The bytes are not a valid Bytom structure.
    #[error("malformed {kind}: {source}")]
    Malformed {
        /// What was being decoded.
        kind: &'static str,
        /// The decoder's error.
        source: DecodeError,
    },
    /// The PoW backend failed.
    #[error("proof-of-work backend: {0}")]
    Backend(#[from] bystack_kernels::backend::BackendError),
    /// The PoW backend could not be opened or failed during the check.
    #[error("proof of work: {0}")]
    Pow(#[from] BlockError),
}

/// Decodes `text` (hex; surrounding whitespace ignored) and describes it as JSON. With a seed,
/// headers and blocks also get their Tensority result and PoW verdict (on the `auto` backend).
///
/// # Errors
/// A [`DecodeCommandError`] for bad hex, an unknown serflag or malformed bytes.
pub fn decode_hex(text: &str, seed: Option<&Hash>) -> Result<Value, DecodeCommandError> {
    decode_hex_with_backend(text, seed, "auto")
}

/// [`decode_hex`] with the proof of work computed on the backend `pow_backend` (`auto`,
/// `cpu`, `float`, `wgpu`, `cuda`, …); a device backend's failing result is re-checked on
/// the CPU (see [`TensorityPow`]).
///
/// # Errors
/// A [`DecodeCommandError`] for bad hex, an unknown serflag, malformed bytes or a backend
/// that cannot be opened.
pub fn decode_hex_with_backend(
    text: &str,
    seed: Option<&Hash>,
    pow_backend: &str,
) -> Result<Value, DecodeCommandError> {
    let bytes = hex::decode(text.trim())?;
    let Some(&flag) = bytes.first() else {
        return Err(DecodeCommandError::Empty);
    };
    match flag {
        SERFLAG_HEADER => {
            let header =
                BlockHeader::decode(&bytes).map_err(|source| DecodeCommandError::Malformed {
                    kind: "block header",
                    source,
                })?;
            let mut value = header_json(&header, "block_header");
            add_pow(&mut value, &header, seed, pow_backend)?;
            Ok(value)
        }
        SERFLAG_BLOCK => {
            let block = Block::decode(&bytes).map_err(|source| DecodeCommandError::Malformed {
                kind: "block",
                source,
            })?;
            let mut value = header_json(&block.header, "block");
            value["transactions"] = block.transactions.iter().map(tx_json).collect();
            value["computed_transactions_merkle_root"] =
                json!(block.compute_tx_merkle_root().to_hex());
            add_pow(&mut value, &block.header, seed, pow_backend)?;
            Ok(value)
        }
        SERFLAG_TX => {
            let tx =
                Transaction::decode(&bytes).map_err(|source| DecodeCommandError::Malformed {
                    kind: "transaction",
                    source,
                })?;
            Ok(tx_json(&tx))
        }
        got => Err(DecodeCommandError::UnknownSerflag { got }),
    }
}

fn header_json(header: &BlockHeader, kind: &str) -> Value {
    json!({
        "kind": kind,
        "version": header.version,
        "height": header.height,
        "previous_block_hash": header.previous_block_hash.to_hex(),
        "timestamp": header.timestamp,
        "nonce": header.nonce,
        "bits": header.bits,
        "transactions_merkle_root": header.transactions_merkle_root.to_hex(),
        "transaction_status_hash": header.transaction_status_hash.to_hex(),
        "hash": header.hash().to_hex(),
    })
}

fn add_pow(
    value: &mut Value,
    header: &BlockHeader,
    seed: Option<&Hash>,
    pow_backend: &str,
) -> Result<(), DecodeCommandError> {
    let Some(seed) = seed else {
        return Ok(());
    };
    let pow = TensorityPow::open(pow_backend, 0)?;
    let (result, valid) = pow
        .verify_batch(&[(header.hash(), *seed, header.bits)])
        .pop()
        .expect("one result per item")?;
    value["pow"] = json!({
        "tensority": hex::encode(&result),
        "target": format!("{:x}", pow::compact_to_big(header.bits)),
        "valid": valid,
    });
    Ok(())
}

fn tx_json(tx: &Transaction) -> Value {
    let mapped = &tx.mapped;
    let inputs: Vec<Value> = tx
        .data
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let mut v = json!({
                "type": input.kind(),
                "input_id": mapped.input_ids.get(i).map(Hash::to_hex),
                "sighash": mapped.sighash(i).map(|h| h.to_hex()),
            });
            match input {
                TxInput::Spend(spend) => {
                    v["spent_output_id"] = json!(mapped
                        .inputs
                        .get(i)
                        .and_then(|e| e.spent_output_id())
                        .map(|h| h.to_hex()));
                    v["source_id"] = json!(spend.source_id.to_hex());
                    v["source_position"] = json!(spend.source_position);
                    v["asset_id"] = json!(spend.asset_id.to_hex());
                    v["amount"] = json!(spend.amount);
                    v["control_program"] = json!(hex::encode(&spend.control_program));
                    v["arguments"] = arguments(&spend.arguments);
                }
                TxInput::Issuance(issuance) => {
                    v["asset_id"] = json!(issuance.asset_id().to_hex());
                    v["amount"] = json!(issuance.amount);
                    v["nonce"] = json!(hex::encode(&issuance.nonce));
                    v["issuance_program"] = json!(hex::encode(&issuance.issuance_program));
                    v["asset_definition"] = json!(hex::encode(&issuance.asset_definition));
                    v["arguments"] = arguments(&issuance.arguments);
                }
                TxInput::Coinbase(coinbase) => {
                    v["arbitrary"] = json!(hex::encode(&coinbase.arbitrary));
                }
                TxInput::Opaque(opaque) => {
                    v["asset_version"] = json!(opaque.asset_version);
                }
            }
            v
        })
        .collect();
    let outputs: Vec<Value> = tx
        .data
        .outputs
        .iter()
        .zip(&mapped.results)
        .map(|(output, result)| {
            json!({
                "id": result.id.to_hex(),
                "asset_id": output.asset_id.to_hex(),
                "amount": output.amount,
                "control_program": hex::encode(&output.control_program),
                "retirement": result.kind == EntryType::Retirement,
            })
        })
        .collect();
    json!({
        "kind": "transaction",
        "id": tx.id().to_hex(),
        "version": tx.data.version,
        "time_range": tx.data.time_range,
        "serialized_size": tx.serialized_size,
        "mux_id": mapped.mux_id.to_hex(),
        "inputs": inputs,
        "outputs": outputs,
    })
}

fn arguments(args: &[Vec<u8>]) -> Value {
    args.iter().map(|a| Value::String(hex::encode(a))).collect()
}
