//! The sequential oracle, as Bytom syncs: for each block in order, `ValidateBlock`, then
//! `connectBlock` (load the spent outputs, apply the block, save the view in one batch per
//! block). Stops at the first invalid block.

use crate::block::Block;
use crate::validation::{validate_block, PowCheck, UtxoResult, UtxoStore, UtxoView};

use super::{ChainContext, WindowFailure, WindowOutcome};

/// Validates and connects `blocks` one at a time on `store`, starting from `context`. `now`
/// is the local clock (Unix seconds). Every accepted block is written to `store` in its own
/// batch; the first invalid block (and everything after it) is not.
///
/// A failure of `store` is reported as the failure of the block being connected
/// ([`WindowError::Utxo`] with [`UtxoError::Store`](crate::validation::UtxoError::Store)).
pub fn validate_and_apply(
    blocks: &[Block],
    store: &mut dyn UtxoStore,
    context: &ChainContext,
    now: u64,
    pow: &dyn PowCheck,
) -> WindowOutcome {
    let mut next = context.clone();
    let mut statuses = Vec::with_capacity(blocks.len());
    for (index, block) in blocks.iter().enumerate() {
        let checked = next.parent().and_then(|parent| {
            let v = validate_block(block, parent, now, pow)?;
            connect(store, &v)?;
            Ok(v)
        });
        match checked {
            Ok(v) => {
                statuses.push(v.status_fail().to_vec());
                next.advance(&block.header);
            }
            Err(error) => {
                return WindowOutcome {
                    statuses,
                    failure: Some(WindowFailure { index, error }),
                    next,
                }
            }
        }
    }
    WindowOutcome {
        statuses,
        failure: None,
        next,
    }
}

fn connect(
    store: &mut dyn UtxoStore,
    validated: &crate::validation::ValidatedBlock,
) -> UtxoResult<()> {
    let mut view = UtxoView::new();
    view.load_for_block(store, validated.block())?;
    view.apply_block(validated)?;
    view.save(store)
}
