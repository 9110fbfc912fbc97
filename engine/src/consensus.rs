//! Consensus parameters and the chain-context rules of Bytom 1.x (spec chain.md §4): constants,
//! networks, the subsidy schedule, the retarget and seed rules, the median-time rule.
//!
//! The PoW formulas themselves (compact bits, targets, work, the retarget arithmetic) live in
//! [`bystack_kernels::pow`]; this module says *which* values they are applied to.

use bystack_kernels::pow;

use crate::hash::Hash;

/// Most gas a block may use.
pub const MAX_BLOCK_GAS: u64 = 10_000_000;
/// neu of BTM per unit of gas.
pub const VM_GAS_RATE: i64 = 200;
/// Gas per serialized byte of a transaction.
pub const STORAGE_GAS_RATE: i64 = 1;
/// Most gas one transaction may use.
pub const MAX_GAS_AMOUNT: i64 = 200_000;
/// Gas a transaction may use before its BTM inputs have paid for it.
pub const DEFAULT_GAS_CREDIT: i64 = 30_000;
/// Blocks before a coinbase output may be spent.
pub const COINBASE_PENDING_BLOCK_NUMBER: u64 = 100;
/// Blocks between subsidy halvings.
pub const SUBSIDY_REDUCTION_INTERVAL: u64 = 840_000;
/// Subsidy of every block before the first halving, in neu (412.5 BTM).
pub const BASE_SUBSIDY: u64 = 41_250_000_000;
/// The genesis block's coinbase amount, in neu.
pub const INITIAL_BLOCK_SUBSIDY: u64 = 140_700_041_250_000_000;
/// Blocks between difficulty retargets.
pub const BLOCKS_PER_RETARGET: u64 = pow::BLOCKS_PER_RETARGET;
/// Target seconds per block.
pub const TARGET_SECONDS_PER_BLOCK: u64 = pow::TARGET_SECONDS_PER_BLOCK;
/// Blocks per PoW seed epoch.
pub const SEED_PER_RETARGET: u64 = 256;
/// How far in the future (wall clock) a block timestamp may be.
pub const MAX_TIME_OFFSET_SECONDS: u64 = 3600;
/// Timestamps in the median-time rule: the parent and up to 10 further ancestors.
pub const MEDIAN_TIME_BLOCKS: usize = 11;
/// Largest coinbase arbitrary data, in bytes.
pub const COINBASE_ARBITRARY_SIZE_LIMIT: usize = 128;
/// From this height an input that maps to no entry (zero input ID) makes a tx non-standard.
pub const RULE_AA_HEIGHT: u64 = 142_500;

/// The PoW seed of blocks 1..=256: `SHA3-256(32 zero bytes)`.
pub fn initial_seed() -> Hash {
    Hash(bystack_kernels::tensority::sha3_256(&[0u8; 32]))
}

/// The block subsidy at `height`, in neu: the genesis amount at 0, then 412.5 BTM halving every
/// 840,000 blocks.
pub fn block_subsidy(height: u64) -> u64 {
    if height == 0 {
        return INITIAL_BLOCK_SUBSIDY;
    }
    BASE_SUBSIDY
        .checked_shr((height / SUBSIDY_REDUCTION_INTERVAL) as u32)
        .unwrap_or(0)
}

/// `CalcNextBits` of a parent block: the bits its child must carry. `ancestor_timestamp` is the
/// timestamp of the block at `parent_height − 2016` (ignored unless `parent_height` is a
/// positive multiple of 2016). No clamping, exactly as Bytom.
pub fn next_bits(
    parent_height: u64,
    parent_timestamp: u64,
    parent_bits: u64,
    ancestor_timestamp: u64,
) -> u64 {
    pow::calc_next_required_difficulty(
        parent_height,
        parent_timestamp,
        parent_bits,
        ancestor_timestamp,
    )
}

/// `CalcNextSeed` of a parent block: the seed its child is mined against. Epochs of 256 blocks
/// with a one-block lag: the child of block 0 uses the initial seed, the child of a block at a
/// multiple of 256 uses that block's ID, every other child inherits the parent's seed.
pub fn next_seed(parent_height: u64, parent_id: &Hash, parent_seed: &Hash) -> Hash {
    if parent_height == 0 {
        initial_seed()
    } else if parent_height.is_multiple_of(SEED_PER_RETARGET) {
        *parent_id
    } else {
        *parent_seed
    }
}

/// The height whose block ID seeds block `height` (≥ 1), or `None` for the initial seed: the
/// closed form of [`next_seed`], `256·⌊(h−1)/256⌋`.
pub fn seed_height(height: u64) -> Option<u64> {
    let epoch_start = height.saturating_sub(1) / SEED_PER_RETARGET * SEED_PER_RETARGET;
    (epoch_start != 0).then_some(epoch_start)
}

/// The median-time-past of the given timestamps (the parent's and up to 10 further
/// ancestors'): sorted ascending, the element at index `len / 2`. `None` for no timestamps.
/// A block's timestamp must be strictly greater than this.
pub fn median_time_past(timestamps: &[u64]) -> Option<u64> {
    if timestamps.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = timestamps
        .iter()
        .take(MEDIAN_TIME_BLOCKS)
        .copied()
        .collect();
    sorted.sort_unstable();
    Some(sorted[sorted.len() / 2])
}

/// The networks this node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// Bytom mainnet.
    Mainnet,
    /// Bytom testnet ("wisdom").
    Testnet,
    /// Bytom's single-node test network.
    Solonet,
    /// bystack's development network: Bytom's rules with a genesis difficulty low enough that
    /// one CPU core with the AVX-512 kernel (≈ 55 H/s) finds a block in about a second.
    Devnet,
}

/// Parameters that differ between networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkParams {
    /// The network's name (`mainnet`, `testnet`, `solonet`, `devnet`).
    pub name: &'static str,
    /// The bech32 human-readable part of its addresses.
    pub bech32_hrp: &'static str,
    /// The default p2p port.
    pub default_p2p_port: u16,
    /// Genesis block timestamp (unix seconds).
    pub genesis_timestamp: u64,
    /// Genesis block nonce.
    pub genesis_nonce: u64,
    /// Genesis block bits (the difficulty of the first 2016 blocks).
    pub genesis_bits: u64,
}

/// The genesis coinbase's arbitrary data on every Bytom network.
pub const GENESIS_COINBASE_ARBITRARY: &[u8] =
    b"Information is power. -- Jan/11/2013. Computing is power. -- Apr/24/2018.";
/// The genesis coinbase output's control program on every Bytom network (P2WPKH).
pub const GENESIS_CONTROL_PROGRAM: [u8; 22] = [
    0x00, 0x14, 0x8c, 0x9d, 0x06, 0x3f, 0xf7, 0x4e, 0xe6, 0xd9, 0xff, 0xa8, 0x8d, 0x83, 0xae, 0xb0,
    0x38, 0x06, 0x83, 0x66, 0xc4, 0xc4,
];

/// Devnet genesis bits: target 2^250, so a hash wins with probability 1/64.
pub const DEVNET_BITS: u64 = 0x2000_0000_0004_0000;

impl Network {
    /// Every network.
    pub const ALL: [Network; 4] = [
        Network::Mainnet,
        Network::Testnet,
        Network::Solonet,
        Network::Devnet,
    ];

    /// The network's parameters.
    pub fn params(self) -> NetworkParams {
        match self {
            Network::Mainnet => NetworkParams {
                name: "mainnet",
                bech32_hrp: "bm",
                default_p2p_port: 46657,
                genesis_timestamp: 1_524_549_600,
                genesis_nonce: 9_253_507_043_297,
                genesis_bits: 0x1e00_0000_0001_1b68,
            },
            Network::Testnet => NetworkParams {
                name: "testnet",
                bech32_hrp: "tm",
                default_p2p_port: 46656,
                genesis_timestamp: 1_528_945_000,
                genesis_nonce: 9_253_507_043_297,
                genesis_bits: 0x2000_0000_000c_cccc,
            },
            Network::Solonet => NetworkParams {
                name: "solonet",
                bech32_hrp: "sm",
                default_p2p_port: 46658,
                genesis_timestamp: 1_528_945_000,
                genesis_nonce: 9_253_507_043_297,
                genesis_bits: 0x2000_0000_000c_cccc,
            },
            Network::Devnet => NetworkParams {
                name: "devnet",
                bech32_hrp: "dm",
                default_p2p_port: 46659,
                // 2026-11-28T00:00:00Z.
                genesis_timestamp: 1_795_824_000,
                // Mined once against the initial seed; checked by a test in `genesis`.
                genesis_nonce: 144,
                genesis_bits: DEVNET_BITS,
            },
        }
    }

    /// Parses a network name.
    pub fn from_name(name: &str) -> Option<Network> {
        Self::ALL.into_iter().find(|n| n.params().name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_schedule() {
        assert_eq!(block_subsidy(0), INITIAL_BLOCK_SUBSIDY);
        assert_eq!(block_subsidy(1), 41_250_000_000);
        assert_eq!(block_subsidy(839_999), 41_250_000_000);
        assert_eq!(block_subsidy(840_000), 20_625_000_000);
        assert_eq!(block_subsidy(2_520_000), 5_156_250_000);
        assert_eq!(block_subsidy(840_000 * 64), 0, "no shift overflow");
        assert_eq!(block_subsidy(u64::MAX), 0);
    }

    #[test]
    fn seed_epochs_have_a_one_block_lag() {
        let (a, b) = (Hash([1u8; 32]), Hash([2u8; 32]));
        assert_eq!(next_seed(0, &a, &b), initial_seed());
        assert_eq!(next_seed(255, &a, &b), b);
        assert_eq!(next_seed(256, &a, &b), a);
        assert_eq!(next_seed(257, &a, &b), b);
        for (h, want) in [
            (1, None),
            (256, None),
            (257, Some(256)),
            (512, Some(256)),
            (513, Some(512)),
        ] {
            assert_eq!(seed_height(h), want, "height {h}");
        }
        assert_eq!(
            initial_seed().to_hex(),
            "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e"
        );
    }

    #[test]
    fn median_time_uses_index_len_over_two() {
        assert_eq!(median_time_past(&[]), None);
        assert_eq!(median_time_past(&[5]), Some(5));
        assert_eq!(median_time_past(&[9, 1]), Some(9));
        assert_eq!(median_time_past(&[3, 1, 2]), Some(2));
        let eleven: Vec<u64> = (0..11).rev().collect();
        assert_eq!(median_time_past(&eleven), Some(5));
    }

    #[test]
    fn devnet_target_is_two_to_the_250() {
        let target = pow::compact_to_big(DEVNET_BITS);
        // 2^250 in decimal.
        assert_eq!(
            target.to_string(),
            "1809251394333065553493296640760748560207343510400633813116524750123642650624"
        );
        assert_eq!(pow::big_to_compact(&target), DEVNET_BITS);
        assert_eq!(Network::from_name("devnet"), Some(Network::Devnet));
        assert_eq!(Network::Mainnet.params().bech32_hrp, "bm");
    }
}
