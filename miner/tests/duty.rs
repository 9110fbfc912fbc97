//! `--duty`: mining half of each second roughly halves the hashes, measured on the real CPU
//! backend. Alone in its test binary so that no other test's hashing skews the comparison;
//! full duty is measured before and after the half-duty run and averaged, so that a change of
//! load from elsewhere on the machine during the test shows up in neither direction alone.

use std::sync::Arc;
use std::time::Duration;

use bystack_engine::consensus::{initial_seed, DEVNET_BITS};
use bystack_engine::{BlockHeader, Hash};
use bystack_kernels::open_backend;
use bystack_miner::device::Device;
use bystack_miner::run::{run, RunOptions, StopReason};
use bystack_miner::work::{Job, Share, SourceError, SourceEvent, WorkSource, NONCE_LIMIT};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};

/// Publishes one job nothing can solve (share target 0) and waits for the shutdown.
struct OneJob;

impl WorkSource for OneJob {
    fn name(&self) -> String {
        "one job".into()
    }

    fn run(
        self: Box<Self>,
        jobs: watch::Sender<Option<Job>>,
        _shares: mpsc::Receiver<Share>,
        _events: mpsc::Sender<SourceEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        async move {
            jobs.send_replace(Some(Job {
                id: "duty".into(),
                header: BlockHeader {
                    version: 1,
                    height: 1,
                    previous_block_hash: Hash([9; 32]),
                    timestamp: 1_700_000_000,
                    bits: DEVNET_BITS,
                    ..BlockHeader::default()
                },
                seed: initial_seed(),
                share_target: [0; 32],
                nonce_start: 0,
                nonce_end: NONCE_LIMIT,
                clean: true,
            }));
            let _ = shutdown.wait_for(|stop| *stop).await;
            Ok(())
        }
        .boxed()
    }
}

async fn hashes_at(duty: u8, seconds: f64) -> u64 {
    let device = Device {
        name: "cpu".into(),
        backend: Arc::from(open_backend("cpu", 1).unwrap()),
        chunk: 2,
    };
    let summary = run(
        Box::new(OneJob),
        vec![device],
        RunOptions {
            seconds: Some(seconds),
            duty_percent: duty,
            log_interval: Duration::from_secs(60),
            ..RunOptions::default()
        },
        futures::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.reason, StopReason::Seconds);
    summary.stats.hashes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_duty_roughly_halves_the_hash_count() {
    // Warm the seed cache so that no run pays for building the matrices.
    hashes_at(100, 0.5).await;
    let before = hashes_at(100, 3.0).await;
    let half = hashes_at(50, 3.0).await;
    let after = hashes_at(100, 3.0).await;
    let full = (before + after) as f64 / 2.0;
    let ratio = half as f64 / full;
    println!(
        "3 s each, 1 thread: duty 100% {before} then {after} hashes, duty 50% {half} hashes; ratio {ratio:.2}"
    );
    assert!(full >= 20.0, "too few hashes to compare: {full}");
    assert!((0.3..=0.7).contains(&ratio), "ratio {ratio:.2}");
}
