//! The acceptance differential test of PSWV (issue 4, pswv.md "Goal and contract"): on
//! more than 1,000 random windows (1 to 300 blocks) cut from generated devnet chains carrying
//! every adversarial feature of [`Injection`], PSWV ([`validate_window`] /
//! [`validate_and_commit`]) and the sequential oracle ([`sequential::validate_and_apply`])
//! must give the same first invalid block, the same error, the same statuses, the same next
//! context and the same final UTXO store, entry by entry.
//!
//! A few long chains are generated once. Each is replayed block by block to record every
//! block's chain context and UTXO delta: a block the sequential path accepts contributes its
//! real writes; an invalid block (the generator keeps building on its *intended* state) is
//! applied leniently (spends of missing or spent outputs are skipped, maturity is not
//! checked), so that the blocks after it are valid again on top of that state. The base of a
//! window starting at height h is the genesis store plus the deltas of blocks 1 … h − 1, grown
//! incrementally while windows are visited in order of their start. Both paths then run on
//! the same base, context, clock and proof-of-work check ([`FlaggedPow`], which rejects the
//! blocks carrying [`Injection::BadPow`]).
//!
//! A third of the windows are also run through the sliding pipeline
//! ([`validate_and_commit_windows`]) cut into sub-windows of random size, and an eighth
//! through the serial variant of the sequential path; both must match too.
//!
//! Set `PSWV_DIFF_SEED` to explore other seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bystack_engine::block::Block;
use bystack_engine::consensus::MAX_TIME_OFFSET_SECONDS;
use bystack_engine::devnet::{
    Adversity, ChainGenerator, FlaggedPow, GeneratedBlock, GeneratorConfig, Injection, XorShift,
};
use bystack_engine::entries::InputEntry;
use bystack_engine::pswv::{
    sequential, validate_and_commit, validate_and_commit_windows, validate_window, ChainContext,
    Overlay, WindowOutcome,
};
use bystack_engine::validation::{MemoryUtxoStore, UtxoEntry, UtxoStore, UtxoView, UtxoWrite};
use bystack_engine::{EntryType, Hash, BTM_ASSET_ID};

/// Chains generated per run.
const CHAINS: usize = 4;
/// Blocks per chain (heights 1 … 600: the seed epochs change after 256 and 512).
const CHAIN_BLOCKS: usize = 600;
/// Windows cut from each chain.
const WINDOWS_PER_CHAIN: usize = 260;
/// Heights whose block and the next one are validated against different seeds.
const EPOCH_ENDS: [u64; 2] = [256, 512];

/// A generated chain, replayed: what a window starting anywhere needs.
struct Chain {
    seed: u64,
    generated: Vec<GeneratedBlock>,
    blocks: Vec<Block>,
    pow: FlaggedPow,
    now: u64,
    /// The UTXO store with only the genesis block applied.
    genesis_store: MemoryUtxoStore,
    /// `contexts[i]`: the context `blocks[i]` is validated against (its parent's).
    contexts: Vec<ChainContext>,
    /// `deltas[i]`: the UTXO writes of `blocks[i]` in the replay.
    deltas: Vec<Vec<UtxoWrite>>,
    /// `valid[i]`: whether the sequential path accepted `blocks[i]` in the replay.
    valid: Vec<bool>,
}

/// A random adversity using every feature: the valid ones often, the invalid ones rarely
/// enough that windows have valid stretches before their first bad block. `calm` chains get
/// far fewer invalid blocks, so that long windows are also accepted whole.
fn adversity(rng: &mut XorShift, calm: bool) -> Adversity {
    let random = Injection::ALL
        .iter()
        .map(|&f| {
            let p = if f.invalidates_block() {
                if calm {
                    0.0005 + rng.below(10) as f64 / 10_000.0
                } else {
                    0.003 + rng.below(8) as f64 / 1000.0
                }
            } else {
                0.04 + rng.below(120) as f64 / 1000.0
            };
            (f, p)
        })
        .collect();
    Adversity {
        random,
        at: Vec::new(),
    }
}

/// The writes of `gb` applied leniently to `store`, in the shape the sequential path gives
/// (spent non-coinbase outputs deleted, spent coinbase outputs kept marked spent): a spend of
/// a missing or spent output is skipped and coinbase maturity is not checked.
fn lenient_writes(store: &MemoryUtxoStore, gb: &GeneratedBlock) -> Vec<UtxoWrite> {
    let height = gb.block.header.height;
    let mut touched: BTreeMap<Hash, UtxoEntry> = BTreeMap::new();
    for (index, (tx, &fail)) in gb
        .block
        .transactions
        .iter()
        .zip(&gb.status_fail)
        .enumerate()
    {
        for input in &tx.mapped.inputs {
            if let InputEntry::Spend {
                spent_output_id: id,
                asset_id,
                ..
            } = *input
            {
                if fail && asset_id != BTM_ASSET_ID {
                    continue;
                }
                let current = match touched.get(&id) {
                    Some(e) => Some(*e),
                    None => store.get(&id).expect("a memory store"),
                };
                if let Some(mut entry) = current {
                    if !entry.spent {
                        entry.spent = true;
                        touched.insert(id, entry);
                    }
                }
            }
        }
        for (result, output) in tx.mapped.results.iter().zip(&tx.data.outputs) {
            if result.kind != EntryType::Output || (fail && output.asset_id != BTM_ASSET_ID) {
                continue;
            }
            touched.insert(
                result.id,
                UtxoEntry {
                    is_coinbase: index == 0,
                    block_height: height,
                    spent: false,
                },
            );
        }
    }
    touched
        .into_iter()
        .map(|(id, entry)| {
            if entry.spent && !entry.is_coinbase {
                UtxoWrite::Delete(id)
            } else {
                UtxoWrite::Put(id, entry)
            }
        })
        .collect()
}

/// Generates chain `index` of the run and replays it (see the module docs).
fn build_chain(master: u64, index: usize) -> Chain {
    let seed = master
        .wrapping_mul(0x9E37_79B9)
        .wrapping_add(index as u64 * 7919 + 1);
    let mut rng = XorShift::new(seed ^ 0xD1FF);
    let mut g = ChainGenerator::new(GeneratorConfig {
        seed,
        txs_per_block: 2 + index % 2,
        adversity: adversity(&mut rng, index == 0),
    });
    let generated = g.generate(CHAIN_BLOCKS);
    let blocks: Vec<Block> = generated.iter().map(|b| b.block.clone()).collect();
    let pow = FlaggedPow::from_blocks(&generated);
    let now = g.now();
    let genesis = g.genesis().clone();

    let mut genesis_store = MemoryUtxoStore::new();
    let mut view = UtxoView::new();
    view.apply_block_with_status(&genesis, &vec![false; genesis.transactions.len()])
        .expect("the genesis block applies");
    view.save(&mut genesis_store).expect("a memory store");

    let mut store = genesis_store.clone();
    let mut context = ChainContext::genesis(&genesis);
    let mut contexts = Vec::with_capacity(blocks.len());
    let mut deltas = Vec::with_capacity(blocks.len());
    let mut valid = Vec::with_capacity(blocks.len());
    for gb in &generated {
        contexts.push(context.clone());
        let (ok, writes) = {
            let mut overlay = Overlay::new(&store);
            let outcome = sequential::validate_and_apply(
                std::slice::from_ref(&gb.block),
                &mut overlay,
                &context,
                now,
                &pow,
            );
            if outcome.failure.is_none() {
                (true, overlay.writes().expect("a memory store"))
            } else {
                (false, lenient_writes(&store, gb))
            }
        };
        assert_eq!(
            ok,
            !gb.intended_invalid(),
            "seed {seed}: replay of height {} disagrees with the generator ({:?})",
            gb.block.header.height,
            gb.injected
        );
        store.write_batch(&writes).expect("a memory store");
        deltas.push(writes);
        valid.push(ok);
        context.advance(&gb.block.header);
    }
    Chain {
        seed,
        generated,
        blocks,
        pow,
        now,
        genesis_store,
        contexts,
        deltas,
        valid,
    }
}

/// A window: `len` blocks from index `start` (heights `start + 1` …), validated at `now`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: usize,
    len: usize,
    now: u64,
    /// Validate through [`validate_and_commit`] rather than [`validate_window`].
    commit: bool,
    /// Also run the pipeline with sub-windows of this size.
    pipeline: Option<usize>,
    /// Also run the serial sequential path.
    serial: bool,
}

/// Mostly small windows, some medium, ~5% of 100–300 blocks.
fn window_len(rng: &mut XorShift) -> usize {
    let r = rng.below(100);
    let (lo, hi) = match r {
        0..=44 => (1, 8),
        45..=74 => (9, 32),
        75..=94 => (33, 99),
        _ => (100, 300),
    };
    (lo + rng.below(hi - lo + 1)) as usize
}

fn windows(chain: &Chain, rng: &mut XorShift) -> Vec<Window> {
    let mut out = Vec::with_capacity(WINDOWS_PER_CHAIN);
    // The pipeline and serial choices draw from their own generator, so that the windows
    // themselves stay those of `rng`.
    let mut extra = XorShift::new(chain.seed ^ 0x0919_E11E);
    for _ in 0..WINDOWS_PER_CHAIN {
        let mut len = window_len(rng);
        let start = if rng.chance(0.05) {
            // Straddle an epoch change: the window holds heights e and e + 1 (indices e − 1
            // and e).
            len = len.max(2);
            let e = EPOCH_ENDS[rng.below(2) as usize] as usize;
            let lo = (e + 1).saturating_sub(len);
            let hi = (e - 1).min(CHAIN_BLOCKS - len);
            lo + rng.below((hi - lo + 1) as u64) as usize
        } else {
            rng.below((CHAIN_BLOCKS - len + 1) as u64) as usize
        };
        // Now and then a clock that makes a block of the window too far in the future.
        let now = if rng.chance(0.04) {
            let victim = start + rng.below(len as u64) as usize;
            chain.blocks[victim].header.timestamp - MAX_TIME_OFFSET_SECONDS - 1
        } else {
            chain.now
        };
        let commit = rng.chance(0.5);
        let pipeline = extra
            .chance(1.0 / 3.0)
            .then(|| 1 + extra.below(len as u64) as usize);
        out.push(Window {
            start,
            len,
            now,
            commit,
            pipeline,
            serial: extra.chance(0.125),
        });
    }
    out.sort_by_key(|w| w.start);
    out
}

/// The first differing entries of two stores, for the failure message.
fn store_diff(a: &MemoryUtxoStore, b: &MemoryUtxoStore) -> String {
    let keys: BTreeSet<&Hash> = a.entries().keys().chain(b.entries().keys()).collect();
    keys.into_iter()
        .filter(|k| a.entries().get(*k) != b.entries().get(*k))
        .take(8)
        .map(|k| {
            format!(
                "\n  {k:?}: pswv {:?} / sequential {:?}",
                a.entries().get(k),
                b.entries().get(k)
            )
        })
        .collect()
}

#[derive(Default)]
struct Counts {
    windows: usize,
    failing: usize,
    crossing_epoch: usize,
    clock_failures: usize,
    blocks: usize,
    /// Windows of 100 blocks or more accepted whole.
    long_accepted: usize,
    /// Windows also run through the pipeline, with more than one sub-window.
    pipelined: usize,
    /// Windows also run through the serial path.
    serial: usize,
    by_size: BTreeMap<&'static str, usize>,
    kinds_reached: BTreeSet<Injection>,
    failure_kinds: BTreeMap<String, usize>,
}

fn size_bucket(len: usize) -> &'static str {
    match len {
        1 => "1",
        2..=8 => "2-8",
        9..=32 => "9-32",
        33..=99 => "33-99",
        _ => "100-300",
    }
}

/// Runs both paths on one window over `base` and asserts they agree.
fn check_window(chain: &Chain, base: &MemoryUtxoStore, w: Window, counts: &mut Counts) {
    let blocks = &chain.blocks[w.start..w.start + w.len];
    let context = &chain.contexts[w.start];
    let first_height = w.start + 1;
    let label = format!(
        "seed {} window heights {}..={} ({} blocks, now {}, commit {})",
        chain.seed,
        first_height,
        first_height + w.len - 1,
        w.len,
        w.now,
        w.commit
    );

    let mut pswv_store = base.clone();
    let pswv: WindowOutcome = if w.commit {
        validate_and_commit(blocks, &mut pswv_store, context, w.now, &chain.pow)
            .expect("a memory store")
    } else {
        let result = validate_window(blocks, base, context, w.now, &chain.pow);
        pswv_store
            .write_batch(&result.writes)
            .expect("a memory store");
        result.outcome
    };
    let mut seq_store = base.clone();
    let seq = sequential::validate_and_apply(blocks, &mut seq_store, context, w.now, &chain.pow);

    assert_eq!(
        pswv.failure, seq.failure,
        "{label}: first invalid block / error differ"
    );
    assert_eq!(pswv.statuses, seq.statuses, "{label}: statuses differ");
    assert_eq!(pswv.next, seq.next, "{label}: next context differs");
    assert!(
        pswv_store.entries() == seq_store.entries(),
        "{label}: final UTXO stores differ ({} vs {} entries):{}",
        pswv_store.entries().len(),
        seq_store.entries().len(),
        store_diff(&pswv_store, &seq_store)
    );

    if let Some(sub) = w.pipeline {
        let mut store = base.clone();
        let piped =
            validate_and_commit_windows(blocks, sub, &mut store, context, w.now, &chain.pow);
        assert_eq!(
            piped, seq,
            "{label}: pipelined (sub-windows of {sub}) outcome differs"
        );
        assert!(
            store.entries() == seq_store.entries(),
            "{label}: pipelined (sub-windows of {sub}) store differs:{}",
            store_diff(&store, &seq_store)
        );
        if sub < w.len {
            counts.pipelined += 1;
        }
    }
    if w.serial {
        let mut store = base.clone();
        let serial =
            sequential::validate_and_apply_serial(blocks, &mut store, context, w.now, &chain.pow);
        assert_eq!(serial, seq, "{label}: serial outcome differs");
        assert!(store == seq_store, "{label}: serial store differs");
        counts.serial += 1;
    }

    // The oracle itself behaves as the replay predicts (so the comparison is not vacuous).
    if w.now == chain.now {
        let expected = (w.start..w.start + w.len)
            .find(|&i| !chain.valid[i])
            .map(|i| i - w.start);
        assert_eq!(
            seq.failure.as_ref().map(|f| f.index),
            expected,
            "{label}: the sequential path does not stop where the replay did"
        );
    }

    counts.windows += 1;
    counts.blocks += w.len;
    *counts.by_size.entry(size_bucket(w.len)).or_default() += 1;
    let last_height = (first_height + w.len - 1) as u64;
    if EPOCH_ENDS
        .iter()
        .any(|&e| first_height as u64 <= e && e < last_height)
    {
        counts.crossing_epoch += 1;
    }
    let reached = seq.failure.as_ref().map_or(w.len, |f| f.index + 1);
    for gb in &chain.generated[w.start..w.start + reached] {
        counts
            .kinds_reached
            .extend(gb.injected.iter().map(|i| i.kind));
    }
    if seq.failure.is_none() && w.len >= 100 {
        counts.long_accepted += 1;
    }
    if let Some(f) = &seq.failure {
        counts.failing += 1;
        if w.now != chain.now {
            counts.clock_failures += 1;
        }
        let debug = format!("{:?}", f.error);
        let name = debug
            .split([' ', '{'])
            .next()
            .unwrap_or_default()
            .to_string();
        *counts.failure_kinds.entry(name).or_default() += 1;
    }
}

#[test]
fn pswv_agrees_with_the_sequential_path_on_random_adversarial_windows() {
    let started = Instant::now();
    let master: u64 = std::env::var("PSWV_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let mut counts = Counts::default();
    let mut chain_time = std::time::Duration::ZERO;
    for index in 0..CHAINS {
        let t = Instant::now();
        let chain = build_chain(master, index);
        chain_time += t.elapsed();
        let mut rng = XorShift::new(chain.seed ^ 0x05EE_D0F5_12E5);
        let mut base = chain.genesis_store.clone();
        let mut at = 0;
        for w in windows(&chain, &mut rng) {
            while at < w.start {
                base.write_batch(&chain.deltas[at]).expect("a memory store");
                at += 1;
            }
            check_window(&chain, &base, w, &mut counts);
        }
    }

    eprintln!(
        "pswv differential (master seed {master}): {} windows ({} blocks), {} failing ({} by the clock), \
         {} crossing a seed epoch, {} of 100+ blocks accepted whole, {} pipelined, {} serial; sizes {:?}; failures {:?}; \
         injections reached {:?}; chains built in {:.1?}, total {:.1?}",
        counts.windows,
        counts.blocks,
        counts.failing,
        counts.clock_failures,
        counts.crossing_epoch,
        counts.long_accepted,
        counts.pipelined,
        counts.serial,
        counts.by_size,
        counts.failure_kinds,
        counts.kinds_reached,
        chain_time,
        started.elapsed()
    );
    assert!(counts.windows >= 1_000, "only {} windows", counts.windows);
    assert!(
        counts.failing >= 100,
        "only {} failing windows",
        counts.failing
    );
    assert!(
        counts.by_size.get("100-300").copied().unwrap_or(0) >= 20,
        "only {:?} windows of 100 blocks or more",
        counts.by_size.get("100-300")
    );
    assert!(
        counts.long_accepted >= 1,
        "no window of 100 blocks or more accepted whole"
    );
    assert!(
        counts.pipelined >= 200,
        "only {} windows through the pipeline",
        counts.pipelined
    );
    assert!(counts.serial >= 50, "only {} serial runs", counts.serial);
    assert!(
        counts.by_size.get("1").copied().unwrap_or(0) >= 1,
        "no window of one block"
    );
    assert!(
        counts.crossing_epoch >= 10,
        "only {} windows cross a seed epoch",
        counts.crossing_epoch
    );
    for kind in Injection::ALL {
        assert!(
            counts.kinds_reached.contains(&kind),
            "{kind:?} never reached in a window"
        );
    }
}
