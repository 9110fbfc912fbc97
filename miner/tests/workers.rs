//! The mining run with test doubles: a scripted work source, a faulty backend whose bad
//! nonces the CPU re-check must catch, a slow backend that shows a new job preempting work
//! within one hash. (The duty cycle is measured alone, in tests/duty.rs.)

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bystack_engine::consensus::{initial_seed, DEVNET_BITS};
use bystack_engine::{BlockHeader, Hash};
use bystack_kernels::backend::{
    BackendInfo, Hit, PreparedSeed, Result as BackendResult, SearchOutcome, TensorityBackend,
};
use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_kernels::{open_backend, tensority};
use bystack_miner::device::Device;
use bystack_miner::run::{run, RunOptions, StopReason, Summary};
use bystack_miner::work::{block_share_target, Job, Share, SourceError, SourceEvent, WorkSource};
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{mpsc, watch};

/// Publishes each job after its delay, records every share and accepts it.
struct ScriptedSource {
    script: Vec<(Duration, Job)>,
    shares: Arc<Mutex<Vec<Share>>>,
    published: Arc<Mutex<Vec<Instant>>>,
}

impl WorkSource for ScriptedSource {
    fn name(&self) -> String {
        "scripted".into()
    }

    fn run(
        self: Box<Self>,
        jobs: watch::Sender<Option<Job>>,
        mut shares: mpsc::Receiver<Share>,
        events: mpsc::Sender<SourceEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        async move {
            let mut script = self.script.into_iter();
            let mut next = script.next();
            loop {
                let delay = next.as_ref().map(|(d, _)| *d).unwrap_or(Duration::from_secs(3600));
                tokio::select! {
                    _ = shutdown.changed() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {
                        if let Some((_, job)) = next.take() {
                            self.published.lock().unwrap().push(Instant::now());
                            jobs.send_replace(Some(job));
                            next = script.next();
                        }
                    }
                    share = shares.recv() => {
                        let Some(share) = share else { return Ok(()) };
                        let event = SourceEvent::Accepted { job_id: share.job_id.clone(), block: share.meets_block_target };
                        self.shares.lock().unwrap().push(share);
                        let _ = events.send(event).await;
                    }
                }
            }
        }
        .boxed()
    }
}

fn job(id: &str, height: u64, share_target: [u8; 32], nonce_start: u64) -> Job {
    Job {
        id: id.into(),
        header: BlockHeader {
            version: 1,
            height,
            previous_block_hash: Hash([height as u8; 32]),
            timestamp: 1_700_000_000 + height,
            bits: DEVNET_BITS,
            ..BlockHeader::default()
        },
        seed: initial_seed(),
        share_target,
        nonce_start,
        nonce_end: u64::MAX, // the devices clamp it to NONCE_LIMIT
        clean: true,
    }
}

fn devnet_target() -> [u8; 32] {
    block_share_target("test", DEVNET_BITS).unwrap()
}

async fn mine(
    script: Vec<(Duration, Job)>,
    devices: Vec<Device>,
    options: RunOptions,
) -> (Summary, Vec<Share>, Vec<Instant>) {
    let shares = Arc::new(Mutex::new(Vec::new()));
    let published = Arc::new(Mutex::new(Vec::new()));
    let source = ScriptedSource {
        script,
        shares: shares.clone(),
        published: published.clone(),
    };
    let summary = run(
        Box::new(source),
        devices,
        options,
        futures::future::pending(),
    )
    .await
    .unwrap();
    let shares = shares.lock().unwrap().clone();
    let published = published.lock().unwrap().clone();
    (summary, shares, published)
}

/// Wraps the real CPU backend and also claims every nonce ≡ 5 (mod 16) as a hit with an
/// all-zero result, which meets any target: a device that lies.
struct FaultyBackend(Box<dyn TensorityBackend>);
struct FaultyPrepared(Arc<dyn PreparedSeed>);

impl TensorityBackend for FaultyBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "faulty".into(),
            ..self.0.info()
        }
    }
    fn prepare(&self, seed: &[u8; 32]) -> BackendResult<Arc<dyn PreparedSeed>> {
        Ok(Arc::new(FaultyPrepared(self.0.prepare(seed)?)))
    }
}

fn is_faulty_nonce(nonce: u64) -> bool {
    nonce % 16 == 5
}

impl PreparedSeed for FaultyPrepared {
    fn seed(&self) -> &[u8; 32] {
        self.0.seed()
    }
    fn hash(&self, header_hash: &[u8; 32]) -> BackendResult<[u8; 32]> {
        self.0.hash(header_hash)
    }
    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: Range<u64>,
        target: &Target,
        stop: &AtomicBool,
    ) -> BackendResult<SearchOutcome> {
        let mut outcome = self.0.search(template, nonces.clone(), target, stop)?;
        let hashed_end = nonces.start + outcome.hashes;
        for nonce in nonces.start..hashed_end {
            if is_faulty_nonce(nonce) && !outcome.hits.iter().any(|h| h.nonce == nonce) {
                outcome.hits.push(Hit {
                    nonce,
                    header_hash: template.header_hash(nonce),
                    pow_hash: [0; 32],
                });
            }
        }
        outcome.hits.sort_by_key(|h| h.nonce);
        Ok(outcome)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_devices_bad_nonces_are_caught_by_the_cpu_recheck_and_never_submitted() {
    let device = Device {
        name: "faulty".into(),
        backend: Arc::new(FaultyBackend(open_backend("cpu", 2).unwrap())),
        chunk: 16,
    };
    let the_job = job("j1", 1, devnet_target(), 0);
    let template = the_job.template();
    let (summary, shares, _) = mine(
        vec![(Duration::ZERO, the_job.clone())],
        vec![device],
        RunOptions {
            seconds: Some(3.0),
            ..RunOptions::default()
        },
    )
    .await;
    let stats = &summary.stats;
    println!("{}", summary.report());
    assert_eq!(summary.reason, StopReason::Seconds);
    assert!(stats.hashes >= 32, "hashed {}", stats.hashes);
    // Every faulty nonce hashed was claimed as a hit and refused, except those that truly
    // meet the target (the device then reports the true hit: a genuine share) and those of
    // the last chunk, cut short by the shutdown.
    let faulty_hashed = stats.hashes / 16;
    assert!(
        stats.device_errors + shares.len() as u64 + 1 >= faulty_hashed,
        "{} device errors and {} shares for {} hashes",
        stats.device_errors,
        shares.len(),
        stats.hashes
    );
    assert!(stats.device_errors <= faulty_hashed + 1);
    assert_eq!(stats.devices[0].device_errors, stats.device_errors);
    // What was submitted is exactly the truth: the scalar reference (the spec in code, slow)
    // for the first shares, the fast CPU kernel (conformance-tested against it) for the rest.
    let target = Target::from_le_bytes(devnet_target());
    let fast = open_backend("cpu", 2)
        .unwrap()
        .prepare(&initial_seed().0)
        .unwrap();
    assert!(!shares.is_empty(), "the device's true hits went through");
    for (i, share) in shares.iter().enumerate() {
        let header_hash = template.header_hash(share.nonce);
        let truth = if i < 2 {
            tensority(&header_hash, &initial_seed().0)
        } else {
            fast.hash(&header_hash).unwrap()
        };
        assert_eq!(share.hash, truth, "nonce {}", share.nonce);
        assert!(target.is_met_by(&truth));
        assert!(share.meets_block_target);
        assert_eq!(share.job_id, "j1");
    }
    assert_eq!(stats.accepted as usize, shares.len());
    println!(
        "{} hashes, {} device errors caught, {} true shares submitted",
        stats.hashes,
        stats.device_errors,
        shares.len()
    );
}

/// A device that takes `HASH_TIME` per nonce, honours the stop flag before each, and logs
/// when each hash of which job started.
struct SlowBackend {
    device: usize,
    log: Arc<Mutex<Vec<HashStart>>>,
}
struct SlowPrepared {
    seed: [u8; 32],
    device: usize,
    log: Arc<Mutex<Vec<HashStart>>>,
}
/// When a slow device started hashing: (when, device, job key, nonce).
type HashStart = (Instant, usize, u64, u64);
const HASH_TIME: Duration = Duration::from_millis(25);

impl TensorityBackend for SlowBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "slow".into(),
            device: "test double".into(),
            kernel: "sleep".into(),
            parallelism: 1,
            capabilities: Vec::new(),
            available: true,
            description: "a slow test double".into(),
        }
    }
    fn prepare(&self, seed: &[u8; 32]) -> BackendResult<Arc<dyn PreparedSeed>> {
        Ok(Arc::new(SlowPrepared {
            seed: *seed,
            device: self.device,
            log: self.log.clone(),
        }))
    }
}

impl PreparedSeed for SlowPrepared {
    fn seed(&self) -> &[u8; 32] {
        &self.seed
    }
    fn hash(&self, header_hash: &[u8; 32]) -> BackendResult<[u8; 32]> {
        Ok(tensority(header_hash, &self.seed))
    }
    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: Range<u64>,
        _target: &Target,
        stop: &AtomicBool,
    ) -> BackendResult<SearchOutcome> {
        let mut outcome = SearchOutcome::default();
        for nonce in nonces {
            if stop.load(Ordering::Relaxed) {
                outcome.stopped = true;
                break;
            }
            let job_key = template.bits() ^ template.header_hash(0)[0] as u64;
            self.log
                .lock()
                .unwrap()
                .push((Instant::now(), self.device, job_key, nonce));
            std::thread::sleep(HASH_TIME);
            outcome.hashes += 1;
        }
        Ok(outcome)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_job_preempts_every_device_within_one_hash() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let devices = (0..2)
        .map(|i| Device {
            name: format!("slow:{i}"),
            backend: Arc::new(SlowBackend {
                device: i,
                log: log.clone(),
            }),
            // A chunk far longer than the test: only the stop flag can end it.
            chunk: 1_000_000,
        })
        .collect();
    let a = job("a", 1, [0; 32], 0);
    let b = job("b", 2, [0; 32], 1 << 40);
    let key = |j: &Job| j.template().bits() ^ j.template().header_hash(0)[0] as u64;
    let (key_a, key_b) = (key(&a), key(&b));
    assert_ne!(key_a, key_b);
    let (summary, _, published) = mine(
        vec![(Duration::ZERO, a), (Duration::from_millis(600), b)],
        devices,
        RunOptions {
            seconds: Some(1.4),
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(published.len(), 2);
    let switch = published[1];
    let log = log.lock().unwrap().clone();
    let a_after: Vec<_> = log
        .iter()
        .filter(|(t, _, k, _)| *k == key_a && *t > switch)
        .collect();
    let b_hashes: Vec<_> = log.iter().filter(|(_, _, k, _)| *k == key_b).collect();
    println!(
        "{} hashes of A before the switch, {} after; {} of B; {}",
        log.iter()
            .filter(|(t, _, k, _)| *k == key_a && *t <= switch)
            .count(),
        a_after.len(),
        b_hashes.len(),
        summary.report()
    );
    // Within one hash per device: a device may start at most one more hash of A in the moment
    // between the publication and the interrupt reaching it, never a second.
    for device in 0..2 {
        let late = a_after.iter().filter(|(_, d, _, _)| *d == device).count();
        assert!(
            late <= 1,
            "device {device} started {late} hashes of A after B: {a_after:?}"
        );
    }
    let first_b = b_hashes
        .iter()
        .map(|(t, _, _, _)| *t)
        .min()
        .expect("B was mined");
    assert!(
        first_b.duration_since(switch) < HASH_TIME * 4,
        "B started {:?} after publication",
        first_b.duration_since(switch)
    );
    // Both devices moved, each to its own half of B's range.
    let b_nonces: Vec<u64> = b_hashes.iter().map(|(_, _, _, n)| *n).collect();
    assert!(
        b_nonces.contains(&(1 << 40)),
        "device 0 starts at B's nonce_start"
    );
    assert!(
        b_nonces.iter().any(|&n| n > 1 << 62),
        "device 1 took the upper half"
    );
}

/// Drops its event sender and share receiver at once, then waits for the shutdown.
struct Mute;

impl WorkSource for Mute {
    fn name(&self) -> String {
        "mute".into()
    }

    fn run(
        self: Box<Self>,
        _jobs: watch::Sender<Option<Job>>,
        shares: mpsc::Receiver<Share>,
        events: mpsc::Sender<SourceEvent>,
        mut shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        drop((shares, events));
        async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            Ok(())
        }
        .boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_a_source_that_drops_its_event_sender_does_not_hang_the_run() {
    let device = Device {
        name: "reference".into(),
        backend: Arc::from(open_backend("reference", 1).unwrap()),
        chunk: 1,
    };
    let summary = tokio::time::timeout(
        Duration::from_secs(10),
        run(
            Box::new(Mute),
            vec![device],
            RunOptions {
                seconds: Some(0.3),
                ..RunOptions::default()
            },
            futures::future::pending(),
        ),
    )
    .await
    .expect("the run ends at its deadline")
    .unwrap();
    assert_eq!(summary.reason, StopReason::Seconds);
}
