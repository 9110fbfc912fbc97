//! `bystack-node verify-pow`: the proofs of work of many blocks, verified in one batch.
//!
//! Input: one `BLOCK_HEX SEED_HEX` pair per line (a serialized block, serflag 0x03, or a
//! header, serflag 0x01, as `decode` reads them; blank lines are skipped). Every line is
//! parsed before anything is hashed, so bad input is reported (naming its line) without
//! partial output. All proofs of work then go to [`TensorityPow::verify_batch`] at once: one
//! `hash_batch` per seed on the chosen backend, with every failing result of a device
//! backend recomputed on the CPU. Output: one JSON line per block, in input order.

use std::io::BufRead;

use bystack_engine::block::{Block, BlockHeader};
use bystack_engine::validation::{BlockError, TensorityPow};
use bystack_engine::{DecodeError, Hash};
use bystack_kernels::hex::{self, HexError};
use serde_json::{json, Value};
use thiserror::Error;

use crate::decode::{SERFLAG_BLOCK, SERFLAG_HEADER};

/// Why `verify-pow` could not produce verdicts.
#[derive(Debug, Error)]
pub enum VerifyPowError {
    /// A line does not have exactly two fields.
    #[error("line {line}: expected `BLOCK_HEX SEED_HEX`, got {fields} field(s)")]
    Fields {
        /// The line number (1-based).
        line: usize,
        /// Fields found.
        fields: usize,
    },
    /// The block field is not hex.
    #[error("line {line}: block is not hex: {source}")]
    BlockHex {
        /// The line number (1-based).
        line: usize,
        /// The hex error.
        source: HexError,
    },
    /// The block field is neither a block nor a header.
    #[error(
        "line {line}: serialization flag {got:#04x} is not a block (0x03) or a block header (0x01)"
    )]
    NotABlock {
        /// The line number (1-based).
        line: usize,
        /// The first byte found (0 for empty input).
        got: u8,
    },
    /// The block bytes do not decode.
    #[error("line {line}: malformed {kind}: {source}")]
    Malformed {
        /// The line number (1-based).
        line: usize,
        /// `block` or `block header`.
        kind: &'static str,
        /// The decoder's error.
        source: DecodeError,
    },
    /// The seed field is not 32 bytes of hex.
    #[error("line {line}: seed: {source}")]
    Seed {
        /// The line number (1-based).
        line: usize,
        /// The hex error.
        source: HexError,
    },
    /// Reading the input failed.
    #[error("line {line}: cannot read input: {source}")]
    Read {
        /// The line number (1-based) being read.
        line: usize,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The proof-of-work backend failed (on the CPU re-check too, for a device backend).
    #[error("line {line}: proof-of-work backend: {source}")]
    Backend {
        /// The line number (1-based) of the block whose verification failed.
        line: usize,
        /// The backend's error.
        source: BlockError,
    },
}

/// One block to verify: its header, its seed and the input line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowRequest {
    /// The input line number (1-based).
    pub line: usize,
    /// The block's header.
    pub header: BlockHeader,
    /// The seed the block was mined against.
    pub seed: Hash,
}

/// One verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowVerdict {
    /// The block's height.
    pub height: u64,
    /// The block's hash (the Tensority input).
    pub hash: Hash,
    /// The Tensority result the verdict rests on.
    pub pow_hash: [u8; 32],
    /// Whether it meets the block's bits.
    pub valid: bool,
}

impl PowVerdict {
    /// The output line: `{"height":…,"hash":…,"pow_hash":…,"valid":…}`.
    pub fn to_json(&self) -> Value {
        json!({
            "height": self.height,
            "hash": self.hash.to_hex(),
            "pow_hash": hex::encode(&self.pow_hash),
            "valid": self.valid,
        })
    }
}

/// Parses one `BLOCK_HEX SEED_HEX` line (`line` is its 1-based number, for errors).
///
/// # Errors
/// A [`VerifyPowError`] naming the line.
pub fn parse_line(line: usize, text: &str) -> Result<PowRequest, VerifyPowError> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [block_hex, seed_hex] = fields[..] else {
        return Err(VerifyPowError::Fields {
            line,
            fields: fields.len(),
        });
    };
    let bytes =
        hex::decode(block_hex).map_err(|source| VerifyPowError::BlockHex { line, source })?;
    let header = match bytes.first().copied() {
        Some(SERFLAG_BLOCK) => {
            Block::decode(&bytes)
                .map_err(|source| VerifyPowError::Malformed {
                    line,
                    kind: "block",
                    source,
                })?
                .header
        }
        Some(SERFLAG_HEADER) => {
            BlockHeader::decode(&bytes).map_err(|source| VerifyPowError::Malformed {
                line,
                kind: "block header",
                source,
            })?
        }
        got => {
            return Err(VerifyPowError::NotABlock {
                line,
                got: got.unwrap_or(0),
            })
        }
    };
    let seed = Hash::from_hex(seed_hex).map_err(|source| VerifyPowError::Seed { line, source })?;
    Ok(PowRequest { line, header, seed })
}

/// Reads every request from `input` (blank lines skipped).
///
/// # Errors
/// The first bad line's [`VerifyPowError`], or a read error.
pub fn read_requests(input: impl BufRead) -> Result<Vec<PowRequest>, VerifyPowError> {
    let mut requests = Vec::new();
    for (i, text) in input.lines().enumerate() {
        let line = i + 1;
        let text = text.map_err(|source| VerifyPowError::Read { line, source })?;
        if text.trim().is_empty() {
            continue;
        }
        requests.push(parse_line(line, &text)?);
    }
    Ok(requests)
}

/// Verifies every request's proof of work in one batch on `pow`'s backend, in input order.
///
/// # Errors
/// [`VerifyPowError::Backend`] naming the first line whose verification failed.
pub fn verify(
    requests: &[PowRequest],
    pow: &TensorityPow,
) -> Result<Vec<PowVerdict>, VerifyPowError> {
    let items: Vec<(Hash, Hash, u64)> = requests
        .iter()
        .map(|r| (r.header.hash(), r.seed, r.header.bits))
        .collect();
    pow.verify_batch(&items)
        .into_iter()
        .zip(requests.iter().zip(&items))
        .map(|(result, (request, (hash, _, _)))| {
            let (pow_hash, valid) = result.map_err(|source| VerifyPowError::Backend {
                line: request.line,
                source,
            })?;
            Ok(PowVerdict {
                height: request.header.height,
                hash: *hash,
                pow_hash,
                valid,
            })
        })
        .collect()
}
