//! Crash consistency on a real RocksDB: a child process (this test binary, re-executed with
//! [`CHILD_ENV`] set, running only [`crash_child`]) commits a devnet chain into the database,
//! by PSWV windows and single blocks, and is killed with SIGKILL at a random moment. The
//! parent then reopens the database: it must open cleanly at some committed tip `h` whose
//! UTXO digest is the engine's in-memory digest after `h` blocks. The next child resumes from
//! there, so later kills also land on a database that has been through crashes.

#![cfg(feature = "rocksdb")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bystack_engine::devnet::{Adversity, XorShift};
use bystack_engine::Block;
use common::*;

/// Set in the child: the work directory (blocks file and database).
const CHILD_ENV: &str = "BYSTACK_CRASH_CHILD_DIR";
/// Overrides the random seed of the kill delays.
const SEED_ENV: &str = "BYSTACK_CRASH_SEED";
/// Kills (each followed by a reopen and a check).
const KILLS: usize = 40;
const BLOCKS: usize = 260;

fn write_blocks(path: &Path, blocks: &[Block]) {
    let mut out = Vec::new();
    for block in blocks {
        let bytes = block.encode().expect("encodable");
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    std::fs::write(path, out).expect("write blocks");
}

fn read_blocks(path: &Path) -> Vec<Block> {
    let bytes = std::fs::read(path).expect("read blocks");
    let mut rest = bytes.as_slice();
    let mut blocks = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest.split_at(4);
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let (block, tail) = tail.split_at(len);
        blocks.push(Block::decode(block).expect("decodable"));
        rest = tail;
    }
    blocks
}

/// The child: resume from the stored tip and commit the rest of the chain, alternating PSWV
/// windows of 1–12 blocks with single blocks. Does nothing in an ordinary test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let blocks = read_blocks(&dir.join("blocks.bin"));
    let genesis =
        bystack_engine::genesis::genesis_block(bystack_engine::consensus::Network::Devnet);
    let mut chain = open_chain(&dir.join("db"), &genesis);
    let mut next = chain.tip().height as usize;
    let mut step = next;
    while next < blocks.len() {
        step += 1;
        if step.is_multiple_of(3) {
            chain
                .process_block(blocks[next].clone())
                .expect("valid block");
            next += 1;
        } else {
            let end = (next + 1 + step * 7 % 12).min(blocks.len());
            let report = chain
                .process_window(&blocks[next..end])
                .expect("store works");
            assert_eq!(report.rejected, None);
            next = end;
        }
    }
    std::process::exit(0);
}

/// Runs the child until it finishes or `kill_after` passes; returns whether it was killed.
fn run_child(dir: &Path, kill_after: Option<Duration>) -> bool {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "child failed: {status}");
            return false;
        }
        if kill_after.is_some_and(|d| started.elapsed() >= d) {
            // SIGKILL on Unix.
            child.kill().expect("kill");
            child.wait().expect("reap");
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn kill_9_at_random_moments_leaves_a_committed_prefix() {
    let started = Instant::now();
    let mut generator = generator(
        21,
        5,
        Adversity::random(&[bystack_engine::devnet::Injection::StatusFail], 0.1),
    );
    let genesis = generator.genesis().clone();
    let blocks = blocks(&mut generator, BLOCKS);
    let digests = memory_digests(&genesis, &blocks);
    let work = tempfile::tempdir().unwrap();
    write_blocks(&work.path().join("blocks.bin"), &blocks);
    let db = work.path().join("db");

    let check = |label: &str| -> usize {
        let chain = open_chain(&db, &genesis);
        let tip = chain.tip();
        let h = tip.height as usize;
        let expected = if h == 0 {
            genesis.hash()
        } else {
            blocks[h - 1].hash()
        };
        assert_eq!(tip.hash, expected, "{label}: tip at height {h}");
        assert_eq!(
            chain.utxo_digest().unwrap(),
            digests[h],
            "{label}: digest at {h}"
        );
        h
    };

    // One uninterrupted run: the time a whole sync takes bounds the kill delays. A second
    // run, with nothing left to do, measures the child's start (exec, reading the blocks,
    // opening the database).
    let t = Instant::now();
    assert!(!run_child(work.path(), None));
    let full = t.elapsed();
    assert_eq!(check("uninterrupted"), BLOCKS);
    let t = Instant::now();
    assert!(!run_child(work.path(), None));
    let start = t.elapsed().min(full);
    std::fs::remove_dir_all(&db).unwrap();

    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!(
        "crash test: seed {seed} ({SEED_ENV} to repeat), full sync {full:?}, start {start:?}"
    );
    let mut rng = XorShift::new(seed);
    let mut heights = Vec::new();
    for run in 0..KILLS {
        // One kill in four anywhere (start and WAL recovery included), the others while
        // blocks are being committed.
        let (from, to) = if run.is_multiple_of(4) {
            (0, full.as_micros() as u64)
        } else {
            (start.as_micros() as u64, full.as_micros() as u64)
        };
        let micros = from + rng.below(to - from + 1);
        let killed = run_child(work.path(), Some(Duration::from_micros(micros)));
        let h = check(&format!(
            "run {run} (seed {seed}, killed after {micros} µs)"
        ));
        heights.push((h, killed));
        if h == BLOCKS {
            std::fs::remove_dir_all(&db).unwrap();
        }
    }
    eprintln!(
        "crash test: {} kills, tips after each (height, killed): {heights:?}, {:?} in all",
        KILLS,
        started.elapsed()
    );
    let mid_sync = heights
        .iter()
        .filter(|&&(h, killed)| killed && h > 0 && h < BLOCKS)
        .count();
    assert!(mid_sync > 0, "no kill landed mid-sync: {heights:?}");
}
