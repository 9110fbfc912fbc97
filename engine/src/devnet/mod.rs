//! Devnet tooling for tests, benches and PSWV differential testing: a deterministic
//! [`Wallet`] (ed25519 keys from a seed, P2WPKH and 2-of-3 P2WSH, signing, fees), a
//! [`ChainGenerator`] that grows realistic chains on the devnet genesis with optional
//! adversarial [`Injection`]s, a [`HeaderChain`] that yields the [`ParentInfo`] of every block,
//! and [`validate_sequentially`], the sequential oracle (validate + connect, block by block).
//!
//! Nothing here mines: generated blocks carry nonce 0 and are validated with
//! [`SkipPow`](crate::validation::SkipPow) or the [`FlaggedPow`] test double.
//!
//! ```
//! use bystack_engine::devnet::{validate_sequentially, ChainGenerator, GeneratorConfig};
//! use bystack_engine::validation::SkipPow;
//!
//! let mut generator = ChainGenerator::new(GeneratorConfig::default());
//! let blocks: Vec<_> = generator.generate(3).into_iter().map(|g| g.block).collect();
//! let outcome = validate_sequentially(generator.genesis(), &blocks, generator.now(), &SkipPow);
//! assert_eq!(outcome.connected, 3);
//! assert!(outcome.error.is_none());
//! ```

mod chaingen;
mod headers;
mod sequential;
mod wallet;

pub use chaingen::{
    work_proof_error, Adversity, ChainGenerator, FlaggedPow, GeneratedBlock, GeneratorConfig,
    Injected, Injection,
};
pub use headers::HeaderChain;
pub use sequential::{genesis_store, validate_sequentially, SequentialError, SequentialOutcome};
pub use wallet::{
    Owner, Pool, Utxo, Wallet, Witness, GAS_SLACK, MIN_FUNDING, VM_GAS_P2WPKH, VM_GAS_P2WSH,
    WALLET_KEYS, WALLET_MULTISIGS,
};

#[cfg(doc)]
use crate::validation::ParentInfo;

/// A small deterministic PRNG (xorshift64*), so generated chains depend only on the seed.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}
