//! The sequential oracle from the devnet genesis: every block validated and connected one at a
//! time, as a node's ordinary path does ([`pswv::sequential::validate_and_apply`]), on a fresh
//! [`MemoryUtxoStore`] holding the genesis outputs. PSWV must reproduce its decision exactly.

use crate::block::Block;
use crate::pswv::{self, ChainContext};
use crate::validation::{MemoryUtxoStore, PowCheck, UtxoView};

/// Why the sequential path stopped: the window error type of [`pswv`].
pub type SequentialError = pswv::WindowError;

/// The result of [`validate_sequentially`].
#[derive(Debug, Clone)]
pub struct SequentialOutcome {
    /// Blocks connected (the valid prefix length).
    pub connected: usize,
    /// The first invalid block's index in the input slice and its error.
    pub error: Option<(usize, SequentialError)>,
    /// The UTXO store after the valid prefix (genesis outputs included).
    pub store: MemoryUtxoStore,
    /// The status-fail flags of every connected block.
    pub statuses: Vec<Vec<bool>>,
}

/// A store holding the outputs of `genesis`.
///
/// # Panics
/// If the genesis block's own outputs cannot be applied (never, for a genesis block).
pub fn genesis_store(genesis: &Block) -> MemoryUtxoStore {
    let mut store = MemoryUtxoStore::new();
    let mut view = UtxoView::new();
    view.apply_block_with_status(genesis, &vec![false; genesis.transactions.len()])
        .expect("the genesis block applies");
    view.save(&mut store).expect("a memory store cannot fail");
    store
}

/// Validates and connects `blocks` (heights 1, 2, … on `genesis`) one by one, stopping at the
/// first invalid block. `now` is the validation clock.
///
/// # Panics
/// As [`genesis_store`].
pub fn validate_sequentially(
    genesis: &Block,
    blocks: &[Block],
    now: u64,
    pow: &dyn PowCheck,
) -> SequentialOutcome {
    let mut store = genesis_store(genesis);
    let outcome = pswv::sequential::validate_and_apply(
        blocks,
        &mut store,
        &ChainContext::genesis(genesis),
        now,
        pow,
    );
    SequentialOutcome {
        connected: outcome.accepted(),
        error: outcome.failure.map(|f| (f.index, f.error)),
        store,
        statuses: outcome.statuses,
    }
}
