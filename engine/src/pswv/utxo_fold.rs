//! Stage 4, UTXO resolution: every spend and every created output of the window becomes an
//! event at position (block, tx, phase, slot) — phase 0 spends, phase 1 creates, the order
//! of `UtxoView::apply_transaction` — the events are grouped by output ID, and each ID's
//! events are folded in order with the sequential rules and the block-boundary rule.
//!
//! The events are collected and grouped before the statuses are known (beside stages 2–3):
//! each carries whether it moves BTM, and the fold drops the non-BTM events of status-fail
//! transactions. Which spends and outputs a transaction touches (status-fail transactions
//! keep only BTM, retirements create nothing) and the checks on a spend come from
//! `validation/utxo.rs`, so the two paths share one copy of each rule.

use rayon::prelude::*;

use crate::block::Block;
use crate::hash::{Hash, BTM_ASSET_ID};
use crate::tx::Transaction;
use crate::validation::utxo::{created_outputs, spend_entry, spent_asset};
use crate::validation::{UtxoEntry, UtxoError, UtxoResult, UtxoStore, UtxoWrite};

/// Where an event happens, ordered as the sequential apply meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position {
    pub block: usize,
    pub tx: usize,
    /// 0 = spend, 1 = create.
    pub phase: u8,
    pub slot: usize,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    /// A spend by a block at this height.
    Spend { height: u64 },
    /// A new unspent entry.
    Create(UtxoEntry),
}

#[derive(Debug, Clone, Copy)]
struct Event {
    id: Hash,
    pos: Position,
    action: Action,
    /// Whether it moves BTM (kept in a status-fail transaction).
    btm: bool,
}

/// The events of the window, grouped by output ID, each group in position order.
#[derive(Debug)]
pub(super) struct Events {
    events: Vec<Event>,
    /// Start of each ID's run in `events`, plus `events.len()`.
    runs: Vec<usize>,
}

/// The UTXO events of one block: spends (phase 0) then creates (phase 1) per transaction,
/// whatever the transactions' statuses.
fn block_events(index: usize, block: &Block, events: &mut Vec<Event>) {
    let height = block.header.height;
    let first = block.transactions.first().map(Transaction::id);
    for (t, tx) in block.transactions.iter().enumerate() {
        for (slot, id) in tx.mapped.spent_output_ids.iter().enumerate() {
            events.push(Event {
                id: *id,
                pos: Position {
                    block: index,
                    tx: t,
                    phase: 0,
                    slot,
                },
                action: Action::Spend { height },
                btm: spent_asset(tx, id) == Some(BTM_ASSET_ID),
            });
        }
        let is_coinbase = first == Some(tx.id());
        for (slot, (id, asset)) in created_outputs(tx).enumerate() {
            events.push(Event {
                id,
                pos: Position {
                    block: index,
                    tx: t,
                    phase: 1,
                    slot,
                },
                action: Action::Create(UtxoEntry {
                    is_coinbase,
                    block_height: height,
                    spent: false,
                }),
                btm: asset == BTM_ASSET_ID,
            });
        }
    }
}

impl Events {
    /// The events of `blocks`, grouped by output ID. Needs no statuses: the fold applies them.
    pub fn collect(blocks: &[Block]) -> Events {
        let mut events: Vec<Event> = blocks
            .par_iter()
            .enumerate()
            .fold(Vec::new, |mut events, (i, block)| {
                block_events(i, block, &mut events);
                events
            })
            .flatten_iter()
            .collect();
        events.par_sort_unstable_by_key(|e| (e.id, e.pos));
        let mut runs: Vec<usize> = (0..events.len())
            .into_par_iter()
            .filter(|&i| i == 0 || events[i].id != events[i - 1].id)
            .collect();
        runs.push(events.len());
        Events { events, runs }
    }

    /// Folds every ID over the blocks before `cutoff`, in parallel; `statuses` holds the
    /// `status_fail` flags of (at least) those blocks.
    ///
    /// Returns the first failure (position and the sequential path's error) and the writes
    /// of the blocks before `cutoff`, ordered by output ID; the writes are only meaningful
    /// when there is no failure.
    ///
    /// # Errors
    /// [`UtxoError::Store`] from `base`.
    #[allow(clippy::type_complexity)]
    pub fn fold<S: UtxoStore + Sync + ?Sized>(
        &self,
        base: &S,
        cutoff: usize,
        statuses: &[Vec<bool>],
    ) -> UtxoResult<(Option<(Position, UtxoError)>, Vec<UtxoWrite>)> {
        let folded: Vec<Folded> = self
            .runs
            .par_windows(2)
            .map(|w| fold_id(&self.events[w[0]..w[1]], base, cutoff, statuses))
            .filter(|f| {
                !matches!(
                    f,
                    Ok(Folded {
                        failure: None,
                        write: None
                    })
                )
            })
            .collect::<UtxoResult<_>>()?;
        let failure = folded
            .iter()
            .filter_map(|f| f.failure.clone())
            .min_by_key(|(pos, _)| *pos);
        let writes = folded.into_iter().filter_map(|f| f.write).collect();
        Ok((failure, writes))
    }
}

#[derive(Debug)]
struct Folded {
    failure: Option<(Position, UtxoError)>,
    write: Option<UtxoWrite>,
}

/// What the per-block commit does to an entry: a spent non-coinbase entry is deleted, a
/// spent coinbase entry stays, marked spent (Bytom's storage quirk).
fn block_boundary(state: &mut Option<UtxoEntry>) {
    if state.is_some_and(|e| e.spent && !e.is_coinbase) {
        *state = None;
    }
}

fn fold_id<S: UtxoStore + ?Sized>(
    run: &[Event],
    base: &S,
    cutoff: usize,
    statuses: &[Vec<bool>],
) -> UtxoResult<Folded> {
    let live = run.partition_point(|e| e.pos.block < cutoff);
    // A status-fail transaction keeps only its BTM spends and outputs.
    let mut run = run[..live]
        .iter()
        .filter(|e| e.btm || !statuses[e.pos.block][e.pos.tx])
        .peekable();
    let Some(first) = run.peek() else {
        return Ok(Folded {
            failure: None,
            write: None,
        });
    };
    let id = first.id;
    // Only an ID whose first event is a spend needs the base state to fold.
    let spend_first = matches!(first.action, Action::Spend { .. });
    let stored = if spend_first { base.get(&id)? } else { None };
    let mut state = stored;
    let mut block = first.pos.block;
    for event in run {
        if event.pos.block != block {
            block_boundary(&mut state);
            block = event.pos.block;
        }
        match event.action {
            Action::Spend { height } => {
                if let Err(error) = spend_entry(state.as_mut(), id, height) {
                    return Ok(Folded {
                        failure: Some((event.pos, error)),
                        write: None,
                    });
                }
            }
            Action::Create(entry) => state = Some(entry),
        }
    }
    block_boundary(&mut state);
    let write = match state {
        Some(entry) if !(spend_first && stored == Some(entry)) => Some(UtxoWrite::Put(id, entry)),
        Some(_) => None,
        None if spend_first => Some(UtxoWrite::Delete(id)),
        // Created and gone inside the window: a write only if the base held the same ID.
        None => base.get(&id)?.map(|_| UtxoWrite::Delete(id)),
    };
    Ok(Folded {
        failure: None,
        write,
    })
}
