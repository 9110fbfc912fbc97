//! `bystack-bench decode`: block decoding and ID computation throughput per block size.
//!
//! Blocks of realistic shape are generated once per size from a seeded xorshift (so every run
//! measures the same bytes), built through the engine's own types and encoded with a valid
//! header (merkle roots from the transactions). Each block is checked once, outside the timings:
//! decoding its bytes gives back the block, and re-encoding is byte-exact.
//!
//! The timed work is what a node does with a block off the wire before validation proper:
//! [`Block::decode`] (which maps every transaction into entries, i.e. computes its tx ID, mux
//! ID, input IDs, spent output IDs and result IDs), the block hash, and the transactions merkle
//! root recomputed from the tx IDs and compared with the header's. Signature hashes are not
//! included: they are derived on demand from IDs already computed.

use std::hint::black_box;
use std::time::Instant;

use bystack_engine::merkle::tx_status_merkle_root;
use bystack_engine::tx::{CoinbaseInput, IssuanceInput, SpendInput};
use bystack_engine::{
    AssetId, Block, BlockHeader, DecodeError, EncodeError, Hash, Transaction, TxData, TxInput,
    TxOutput, BTM_ASSET_ID,
};
use serde::Serialize;
use thiserror::Error;

/// The largest block size (in transactions) the command accepts; far above any real block.
pub const MAX_TXS_PER_BLOCK: usize = 1_000_000;

/// The seed of the block generator (fixed so that every run measures the same bytes).
pub const DEFAULT_SEED: u64 = 0x6279_7374_6163_6b31; // "bystack1"

/// Why the decode benchmark stopped.
#[derive(Debug, Error)]
pub enum DecodeBenchError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A generated transaction could not be built.
    #[error("building transaction {index} of a {txs}-transaction block: {source}")]
    Build {
        /// Transactions in the block.
        txs: usize,
        /// Index of the transaction.
        index: usize,
        /// The engine's error.
        source: DecodeError,
    },
    /// A generated block could not be encoded.
    #[error("encoding a {txs}-transaction block: {source}")]
    Encode {
        /// Transactions in the block.
        txs: usize,
        /// The engine's error.
        source: EncodeError,
    },
    /// The encoded block did not decode.
    #[error("decoding a block of {bytes} bytes: {source}")]
    Decode {
        /// Size of the encoding.
        bytes: usize,
        /// The engine's error.
        source: DecodeError,
    },
    /// The block did not survive an encode/decode round trip unchanged.
    #[error("round trip of a {txs}-transaction block: {reason}")]
    RoundTrip {
        /// Transactions in the block.
        txs: usize,
        /// What differed.
        reason: String,
    },
    /// The merkle root recomputed after decoding is not the header's.
    #[error("merkle root mismatch: header {header}, computed {computed}")]
    MerkleRoot {
        /// The root in the header.
        header: Hash,
        /// The root recomputed from the decoded transactions.
        computed: Hash,
    },
}

/// Result alias of this module.
pub type Result<T, E = DecodeBenchError> = std::result::Result<T, E>;

/// What to measure.
#[derive(Debug, Clone)]
pub struct DecodeConfig {
    /// Block sizes, in transactions (coinbase included).
    pub txs: Vec<usize>,
    /// Seconds per repeat.
    pub seconds: f64,
    /// Repeats per block size (the median is reported).
    pub repeats: usize,
    /// Generator seed.
    pub seed: u64,
}

impl DecodeConfig {
    /// Checks the ranges: at least one size, every size in `1..=MAX_TXS_PER_BLOCK`, a positive
    /// finite duration, at least one repeat.
    ///
    /// # Errors
    /// [`DecodeBenchError::Config`] naming the bad value.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(DecodeBenchError::Config(msg));
        if self.txs.is_empty() {
            return bad("--txs needs at least one block size".into());
        }
        if let Some(&n) = self.txs.iter().find(|&&n| n == 0 || n > MAX_TXS_PER_BLOCK) {
            return bad(format!(
                "--txs values must be in 1..={MAX_TXS_PER_BLOCK}, got {n}"
            ));
        }
        if !(self.seconds > 0.0 && self.seconds.is_finite()) {
            return bad(format!(
                "--seconds must be positive and finite, got {}",
                self.seconds
            ));
        }
        if self.repeats == 0 {
            return bad("--repeats must be at least 1, got 0".into());
        }
        Ok(())
    }
}

/// One measured block size.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeResult {
    /// Transactions per block (coinbase included).
    pub txs_per_block: usize,
    /// Inputs over all transactions of the block.
    pub inputs_per_block: usize,
    /// Outputs over all transactions of the block.
    pub outputs_per_block: usize,
    /// Size of the block's encoding.
    pub block_bytes: usize,
    /// Median over the repeats of blocks decoded and hashed per second.
    pub blocks_per_second: f64,
    /// `blocks_per_second × txs_per_block`.
    pub tx_per_second: f64,
    /// `blocks_per_second × block_bytes / 2^20`.
    pub mib_per_second: f64,
    /// Median time of one block, microseconds.
    pub block_latency_us: f64,
    /// Every repeat's blocks per second.
    pub repeats_blocks_per_second: Vec<f64>,
    /// Number of repeats.
    pub repeats: usize,
    /// Seconds per repeat.
    pub seconds_per_repeat: f64,
    /// Threads used (the work is single-threaded).
    pub threads: usize,
    /// Generator seed.
    pub seed: u64,
}

/// xorshift64* (Vigna): small, deterministic, good enough to vary the block contents.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (a zero seed is replaced, xorshift never leaves zero).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A random 32-byte hash.
    pub fn hash(&mut self) -> Hash {
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.bytes(32));
        Hash(h)
    }
}

/// Compact bits of mainnet block 10000 (any plausible difficulty will do).
const BITS: u64 = 2_305_843_009_214_532_812;

/// Pay-to-witness-pubkey-hash: `OP_0 PUSH20 <hash160>`.
fn p2wpkh(rng: &mut XorShift) -> Vec<u8> {
    let mut p = vec![0x00, 0x14];
    p.extend(rng.bytes(20));
    p
}

/// Pay-to-witness-script-hash: `OP_0 PUSH32 <sha3 of the script>`.
fn p2wsh(rng: &mut XorShift) -> Vec<u8> {
    let mut p = vec![0x00, 0x20];
    p.extend(rng.bytes(32));
    p
}

/// A P2WPKH program three times out of four, else P2WSH.
fn standard_program(rng: &mut XorShift) -> Vec<u8> {
    if rng.one_in(4) {
        p2wsh(rng)
    } else {
        p2wpkh(rng)
    }
}

/// A retirement program: `OP_FAIL` followed by a short data push.
fn retirement_program(rng: &mut XorShift) -> Vec<u8> {
    let len = rng.range(1, 40) as u8;
    let mut p = vec![0x6a, len];
    p.extend(rng.bytes(len as usize));
    p
}

/// Witness arguments of a single-key spend: a 64-byte ed25519 signature and a 32-byte key.
fn signature_arguments(rng: &mut XorShift) -> Vec<Vec<u8>> {
    vec![rng.bytes(64), rng.bytes(32)]
}

fn amount(rng: &mut XorShift) -> u64 {
    // Up to 10^5 BTM (10^13 neu), never zero.
    rng.range(1, 10_000_000_000_000)
}

fn coinbase(rng: &mut XorShift, height: u64) -> TxData {
    // Bytom's miner writes 0x00 then the height; pools append their tag.
    let mut arbitrary = vec![0x00];
    arbitrary.extend_from_slice(height.to_string().as_bytes());
    let tag_len = rng.below(24) as usize;
    arbitrary.extend(rng.bytes(tag_len));
    TxData {
        version: 1,
        time_range: 0,
        inputs: vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary,
            ..CoinbaseInput::default()
        })],
        outputs: vec![TxOutput::new(
            BTM_ASSET_ID,
            41_250_000_000 + rng.below(100_000_000),
            p2wpkh(rng),
        )],
    }
}

fn issuance(rng: &mut XorShift) -> IssuanceInput {
    // A single-key issuance program: `TXSIGHASH PUSH32 <key> 1 1 CHECKMULTISIG`.
    let mut issuance_program = vec![0xae, 0x20];
    issuance_program.extend(rng.bytes(32));
    issuance_program.extend_from_slice(&[0x51, 0x51, 0xad]);
    let asset_definition = format!(
        "{{\"decimals\":8,\"name\":\"TOKEN{}\",\"symbol\":\"T{}\"}}",
        rng.below(100_000),
        rng.below(1000)
    )
    .into_bytes();
    IssuanceInput {
        nonce: rng.bytes(8),
        amount: amount(rng),
        asset_definition,
        vm_version: 1,
        issuance_program,
        arguments: vec![rng.bytes(64)],
        ..IssuanceInput::default()
    }
}

fn spend(rng: &mut XorShift, assets: &[AssetId]) -> SpendInput {
    // Four spends in five move BTM.
    let asset_id = if rng.one_in(5) {
        assets[rng.below(assets.len() as u64) as usize]
    } else {
        BTM_ASSET_ID
    };
    SpendInput {
        source_id: rng.hash(),
        asset_id,
        amount: amount(rng),
        source_position: rng.below(3),
        control_program: standard_program(rng),
        arguments: signature_arguments(rng),
        ..SpendInput::default()
    }
}

fn transfer(rng: &mut XorShift, assets: &[AssetId]) -> TxData {
    let n_inputs = rng.range(1, 3) as usize;
    let mut inputs = Vec::with_capacity(n_inputs);
    // About one transaction in thirty issues an asset (in its first input).
    if rng.one_in(30) {
        inputs.push(TxInput::Issuance(issuance(rng)));
    }
    while inputs.len() < n_inputs {
        inputs.push(TxInput::Spend(spend(rng, assets)));
    }
    let (asset_id, total) = match &inputs[0] {
        TxInput::Issuance(i) => (i.asset_id(), i.amount),
        TxInput::Spend(s) => (s.asset_id, s.amount),
        _ => (BTM_ASSET_ID, 1),
    };
    let n_outputs = rng.range(1, 3) as usize;
    let outputs = (0..n_outputs)
        .map(|_| {
            let program = if rng.one_in(25) {
                retirement_program(rng)
            } else {
                standard_program(rng)
            };
            TxOutput::new(asset_id, rng.range(1, total.max(1)), program)
        })
        .collect();
    TxData {
        version: 1,
        time_range: if rng.one_in(10) {
            rng.below(1 << 20)
        } else {
            0
        },
        inputs,
        outputs,
    }
}

/// Generates a block of `txs` transactions (a coinbase, then transfers) from `seed`, with its
/// merkle roots filled in.
///
/// # Errors
/// [`DecodeBenchError::Config`] for `txs == 0`, [`DecodeBenchError::Build`] if the engine
/// refuses a transaction.
pub fn generate_block(txs: usize, seed: u64) -> Result<Block> {
    if txs == 0 {
        return Err(DecodeBenchError::Config(
            "a block needs at least its coinbase".into(),
        ));
    }
    let mut rng = XorShift::new(seed ^ (txs as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let assets: Vec<AssetId> = (0..8).map(|_| rng.hash()).collect();
    let height = rng.range(100_000, 1_000_000);
    let mut transactions = Vec::with_capacity(txs);
    for index in 0..txs {
        let data = if index == 0 {
            coinbase(&mut rng, height)
        } else {
            transfer(&mut rng, &assets)
        };
        transactions.push(
            Transaction::new(data).map_err(|source| DecodeBenchError::Build {
                txs,
                index,
                source,
            })?,
        );
    }
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            height,
            previous_block_hash: rng.hash(),
            timestamp: 1_600_000_000 + rng.below(100_000_000),
            transactions_merkle_root: Hash::ZERO,
            transaction_status_hash: tx_status_merkle_root(&vec![false; txs]),
            nonce: rng.below(1 << 63),
            bits: BITS,
            commitment_suffix: Vec::new(),
        },
        transactions,
    };
    block.header.transactions_merkle_root = block.compute_tx_merkle_root();
    Ok(block)
}

/// Encodes `block` and checks, once, that the bytes decode back to the same block (IDs and
/// sizes included) and re-encode byte for byte. Returns the bytes.
///
/// # Errors
/// [`DecodeBenchError::Encode`], [`DecodeBenchError::Decode`] or
/// [`DecodeBenchError::RoundTrip`] naming the first difference.
pub fn encode_and_verify(block: &Block) -> Result<Vec<u8>> {
    let txs = block.transactions.len();
    let bytes = block
        .encode()
        .map_err(|source| DecodeBenchError::Encode { txs, source })?;
    let decoded = Block::decode(&bytes).map_err(|source| DecodeBenchError::Decode {
        bytes: bytes.len(),
        source,
    })?;
    let round_trip = |reason: String| DecodeBenchError::RoundTrip { txs, reason };
    if decoded != *block {
        if decoded.header != block.header {
            return Err(round_trip("the decoded header differs".into()));
        }
        if decoded.transactions.len() != txs {
            return Err(round_trip(format!(
                "decoded {} transactions",
                decoded.transactions.len()
            )));
        }
        let index = decoded
            .transactions
            .iter()
            .zip(&block.transactions)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(round_trip(format!("transaction {index} differs")));
    }
    let again = decoded
        .encode()
        .map_err(|source| DecodeBenchError::Encode { txs, source })?;
    if again != bytes {
        let at = again
            .iter()
            .zip(&bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(again.len().min(bytes.len()));
        return Err(round_trip(format!(
            "re-encoding differs at byte {at} ({} bytes vs {})",
            again.len(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The timed work on one block: decode (which maps every transaction to its entries and IDs),
/// the block hash, and the transactions merkle root checked against the header. Returns the
/// block hash.
///
/// # Errors
/// [`DecodeBenchError::Decode`], [`DecodeBenchError::MerkleRoot`].
pub fn decode_and_hash(bytes: &[u8]) -> Result<Hash> {
    let block = Block::decode(bytes).map_err(|source| DecodeBenchError::Decode {
        bytes: bytes.len(),
        source,
    })?;
    let computed = block.compute_tx_merkle_root();
    if computed != block.header.transactions_merkle_root {
        return Err(DecodeBenchError::MerkleRoot {
            header: block.header.transactions_merkle_root,
            computed,
        });
    }
    Ok(block.hash())
}

/// Blocks per second over one run of about `seconds`.
fn measure(bytes: &[u8], seconds: f64) -> Result<f64> {
    let start = Instant::now();
    let mut blocks = 0u64;
    loop {
        black_box(decode_and_hash(black_box(bytes))?);
        blocks += 1;
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return Ok(blocks as f64 / elapsed);
        }
    }
}

/// Measures every block size, calling `report` after each.
///
/// # Errors
/// A bad configuration, or a generated block that fails its round trip or its timed decode.
pub fn run(
    config: &DecodeConfig,
    mut report: impl FnMut(&DecodeResult),
) -> Result<Vec<DecodeResult>> {
    config.validate()?;
    let mut results = Vec::new();
    for &txs in &config.txs {
        let block = generate_block(txs, config.seed)?;
        let bytes = encode_and_verify(&block)?;
        let inputs_per_block = block.transactions.iter().map(|t| t.data.inputs.len()).sum();
        let outputs_per_block = block
            .transactions
            .iter()
            .map(|t| t.data.outputs.len())
            .sum();
        drop(block);
        // Warm-up: caches and the allocator, outside the timings.
        black_box(decode_and_hash(&bytes)?);
        let mut rates = Vec::with_capacity(config.repeats);
        for _ in 0..config.repeats {
            rates.push(measure(&bytes, config.seconds)?);
        }
        let blocks_per_second = crate::median(&rates).unwrap_or(0.0);
        let result = DecodeResult {
            txs_per_block: txs,
            inputs_per_block,
            outputs_per_block,
            block_bytes: bytes.len(),
            blocks_per_second,
            tx_per_second: blocks_per_second * txs as f64,
            mib_per_second: blocks_per_second * bytes.len() as f64 / (1024.0 * 1024.0),
            block_latency_us: if blocks_per_second > 0.0 {
                1e6 / blocks_per_second
            } else {
                0.0
            },
            repeats_blocks_per_second: rates,
            repeats: config.repeats,
            seconds_per_repeat: config.seconds,
            threads: 1,
            seed: config.seed,
        };
        report(&result);
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_round_trips() {
        let a = generate_block(50, 7).unwrap();
        let b = generate_block(50, 7).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, generate_block(50, 8).unwrap());
        let bytes = encode_and_verify(&a).unwrap();
        assert_eq!(decode_and_hash(&bytes).unwrap(), a.hash());
    }

    #[test]
    fn blocks_have_the_promised_shape() {
        let block = generate_block(1000, DEFAULT_SEED).unwrap();
        assert_eq!(block.transactions.len(), 1000);
        let first = &block.transactions[0].data;
        assert!(matches!(first.inputs[..], [TxInput::Coinbase(_)]));
        assert_eq!(first.outputs.len(), 1);
        assert_eq!(&first.outputs[0].control_program[..2], &[0x00, 0x14]);
        assert_eq!(first.outputs[0].asset_id, BTM_ASSET_ID);

        let rest = &block.transactions[1..];
        let inputs = rest.iter().flat_map(|t| &t.data.inputs);
        let (mut spends, mut issuances, mut other_assets) = (0, 0, 0);
        for input in inputs {
            match input {
                TxInput::Spend(s) => {
                    spends += 1;
                    other_assets += usize::from(s.asset_id != BTM_ASSET_ID);
                    assert_eq!(s.arguments.len(), 2);
                    assert_eq!((s.arguments[0].len(), s.arguments[1].len()), (64, 32));
                    assert!(matches!(
                        s.control_program[..2],
                        [0x00, 0x14] | [0x00, 0x20]
                    ));
                }
                TxInput::Issuance(_) => issuances += 1,
                other => panic!("unexpected {} input", other.kind()),
            }
        }
        assert!(spends > 1000 && issuances > 5 && other_assets > 50);
        for tx in rest {
            assert!((1..=3).contains(&tx.data.inputs.len()));
            assert!((1..=3).contains(&tx.data.outputs.len()));
        }
        let outputs = || rest.iter().flat_map(|t| &t.data.outputs);
        assert!(outputs().any(|o| o.control_program[0] == 0x6a));
        assert!(outputs().any(|o| o.control_program[..2] == [0x00, 0x20]));
        // Issued assets are spent by the outputs of their own transaction.
        for tx in rest {
            if let TxInput::Issuance(i) = &tx.data.inputs[0] {
                assert_eq!(tx.data.outputs[0].asset_id, i.asset_id());
            }
        }
    }

    #[test]
    fn a_wrong_merkle_root_is_reported() {
        let mut block = generate_block(3, 1).unwrap();
        block.header.transactions_merkle_root = Hash::ZERO;
        let bytes = block.encode().unwrap();
        assert!(matches!(
            decode_and_hash(&bytes),
            Err(DecodeBenchError::MerkleRoot { .. })
        ));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let good = DecodeConfig {
            txs: vec![1],
            seconds: 0.01,
            repeats: 1,
            seed: 1,
        };
        assert!(good.validate().is_ok());
        for bad in [
            DecodeConfig {
                txs: vec![],
                ..good.clone()
            },
            DecodeConfig {
                txs: vec![1, 0],
                ..good.clone()
            },
            DecodeConfig {
                txs: vec![MAX_TXS_PER_BLOCK + 1],
                ..good.clone()
            },
            DecodeConfig {
                seconds: 0.0,
                ..good.clone()
            },
            DecodeConfig {
                seconds: f64::NAN,
                ..good.clone()
            },
            DecodeConfig {
                repeats: 0,
                ..good.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(DecodeBenchError::Config(_))));
        }
    }

    #[test]
    fn run_reports_every_size() {
        let config = DecodeConfig {
            txs: vec![1, 4],
            seconds: 0.01,
            repeats: 2,
            seed: 3,
        };
        let mut seen = Vec::new();
        let results = run(&config, |r| seen.push(r.txs_per_block)).unwrap();
        assert_eq!(seen, vec![1, 4]);
        for r in results {
            assert!(r.blocks_per_second > 0.0 && r.block_bytes > 100);
            assert_eq!(r.repeats_blocks_per_second.len(), 2);
        }
    }
}
