//! The sequential oracle: every block validated ([`validate_block`]) against its parent's facts
//! and connected ([`UtxoView::apply_block`]) to a [`MemoryUtxoStore`], one at a time, as a
//! node's ordinary path does. PSWV must reproduce its decision exactly.

use crate::block::Block;
use crate::validation::{
    validate_block, BlockError, MemoryUtxoStore, PowCheck, UtxoError, UtxoView,
};

use super::headers::HeaderChain;

/// Why the sequential path stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequentialError {
    /// [`validate_block`] rejected the block.
    #[error("block validation: {0}")]
    Block(#[from] BlockError),
    /// Connecting the block to the UTXO set failed.
    #[error("utxo apply: {0}")]
    Utxo(#[from] UtxoError),
}

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

/// One block of the sequential path: validate, load, apply, save.
fn connect(
    block: &Block,
    headers: &HeaderChain,
    store: &mut MemoryUtxoStore,
    now: u64,
    pow: &dyn PowCheck,
) -> Result<Vec<bool>, SequentialError> {
    let validated = validate_block(block, &headers.tip_info(), now, pow)?;
    let mut view = UtxoView::new();
    view.load_for_block(store, block)?;
    view.apply_block(&validated)?;
    view.save(store)?;
    Ok(validated.status_fail().to_vec())
}

/// Validates and connects `blocks` (heights 1, 2, … on `genesis`) one by one, stopping at the
/// first invalid block. `now` is the validation clock.
///
/// # Panics
/// If the genesis block's own outputs cannot be applied (never, for a genesis block).
pub fn validate_sequentially(
    genesis: &Block,
    blocks: &[Block],
    now: u64,
    pow: &dyn PowCheck,
) -> SequentialOutcome {
    let mut store = MemoryUtxoStore::new();
    let mut view = UtxoView::new();
    view.apply_block_with_status(genesis, &vec![false; genesis.transactions.len()])
        .expect("the genesis block applies");
    view.save(&mut store).expect("a memory store cannot fail");
    let mut headers = HeaderChain::new(&genesis.header);
    let mut statuses = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        match connect(block, &headers, &mut store, now, pow) {
            Ok(s) => statuses.push(s),
            Err(e) => {
                return SequentialOutcome {
                    connected: index,
                    error: Some((index, e)),
                    store,
                    statuses,
                }
            }
        }
        headers.push(block.header.clone());
    }
    SequentialOutcome {
        connected: blocks.len(),
        error: None,
        store,
        statuses,
    }
}
