//! Device workers: one OS thread per device, each driving one Tensority backend over the
//! current [`Job`], and the flags that stop, preempt and pause them.
//!
//! A worker searches its slice of the job's nonce range in chunks of [`Device::chunk`]
//! nonces with the backend's `search`, which checks an [`AtomicBool`] once per hash (per
//! batch on batched devices). That flag is raised when a new job is published
//! ([`Control::interrupt_all`]), when the duty cycle pauses, and at shutdown: every device
//! leaves its search within one hash. The hot loop inside the backend takes no lock and
//! allocates nothing; the worker only touches the counters once per chunk.
//!
//! Every hit is recomputed on the CPU ([`CpuConfirm`]) before it becomes a [`Share`]: a result
//! that differs, or that does not meet the share target, is logged and counted as a device
//! error and never submitted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bystack_kernels::backend::{PreparedSeed, TensorityBackend};
use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_kernels::tensority::batch::CpuConfirm;
use tokio::sync::{mpsc, watch};

use crate::stats::Stats;
use crate::work::{Job, Share, NONCE_LIMIT};

/// How long an idle or paused worker sleeps between looks at its flags.
const IDLE_POLL: Duration = Duration::from_millis(2);

/// A device: a name for stats and logs, an opened backend, and its search chunk.
pub struct Device {
    /// E.g. `cpu-avx2` or `cuda:0`.
    pub name: String,
    /// The backend that searches on it.
    pub backend: Arc<dyn TensorityBackend>,
    /// Nonces per `search` call: enough to keep every thread or the whole batch busy, few
    /// enough that hits reach the source quickly (they are handed over when a chunk ends;
    /// preemption does not wait for it).
    pub chunk: u64,
}

/// The flags every worker watches.
#[derive(Debug)]
pub struct Control {
    /// Set once: stop for good.
    pub shutdown: AtomicBool,
    /// While set, workers do not hash (the off part of the duty cycle).
    pub paused: AtomicBool,
    interrupts: Vec<Arc<AtomicBool>>,
}

impl Control {
    /// Flags for `devices` workers.
    pub fn new(devices: usize) -> Self {
        Self {
            shutdown: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            interrupts: (0..devices)
                .map(|_| Arc::new(AtomicBool::new(false)))
                .collect(),
        }
    }

    /// Makes every worker leave its current search within one hash.
    pub fn interrupt_all(&self) {
        for flag in &self.interrupts {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Stops every worker for good.
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.interrupt_all();
    }
}

/// What a worker needs.
pub struct WorkerContext {
    /// Its index among the devices (stats, nonce slice).
    pub index: usize,
    /// How many devices share each job's nonce range.
    pub devices: usize,
    /// The device.
    pub device: Device,
    /// The newest job.
    pub jobs: watch::Receiver<Option<Job>>,
    /// Where confirmed shares go.
    pub shares: mpsc::Sender<Share>,
    /// Shared flags.
    pub control: Arc<Control>,
    /// Shared counters.
    pub stats: Arc<Stats>,
}

/// Starts the worker thread of one device.
///
/// # Errors
/// When the OS cannot start a thread.
pub fn spawn(context: WorkerContext) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("miner-{}", context.device.name))
        .spawn(move || Worker::new(context).run())
}

/// A seed prepared on the device and for the CPU re-check.
type PreparedPair = ([u8; 32], Arc<dyn PreparedSeed>, Arc<CpuConfirm>);

/// The job a worker is on, with everything prepared for it.
struct Current {
    job: Job,
    template: HeaderTemplate,
    share_target: Target,
    block_target: Target,
    prepared: Arc<dyn PreparedSeed>,
    confirm: Arc<CpuConfirm>,
    next_nonce: u64,
    end_nonce: u64,
}

struct Worker {
    context: WorkerContext,
    interrupt: Arc<AtomicBool>,
    current: Option<Current>,
    seed_cache: Option<PreparedPair>,
}

impl Worker {
    fn new(context: WorkerContext) -> Self {
        let interrupt = context.control.interrupts[context.index].clone();
        Self {
            context,
            interrupt,
            current: None,
            seed_cache: None,
        }
    }

    fn run(mut self) {
        let control = self.context.control.clone();
        loop {
            if control.shutdown.load(Ordering::SeqCst) {
                return;
            }
            if control.paused.load(Ordering::SeqCst) {
                std::thread::sleep(IDLE_POLL);
                continue;
            }
            // Clear before looking at the job: a job published after this point raises the
            // flag again and ends the search below.
            self.interrupt.store(false, Ordering::SeqCst);
            if self.context.jobs.has_changed().unwrap_or(false) || self.current.is_none() {
                let job = self.context.jobs.borrow_and_update().clone();
                match job {
                    Some(job) => {
                        if let Err(message) = self.switch_to(job) {
                            tracing::error!(device = %self.context.device.name, "{message}");
                            self.current = None;
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    }
                    None => self.current = None,
                }
            }
            if self.current.is_none() {
                std::thread::sleep(IDLE_POLL);
                continue;
            }
            if let Err(message) = self.search_chunk() {
                tracing::error!(device = %self.context.device.name, "{message}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Moves to `job`; the same job again (a repeated publish) keeps the nonce position.
    fn switch_to(&mut self, job: Job) -> Result<(), String> {
        if let Some(current) = &self.current {
            if current.job == job {
                return Ok(());
            }
        }
        let seed = job.seed.0;
        let (prepared, confirm) = match &self.seed_cache {
            Some((cached, prepared, confirm)) if *cached == seed => {
                (prepared.clone(), confirm.clone())
            }
            _ => {
                let started = Instant::now();
                let prepared = self
                    .context
                    .device
                    .backend
                    .prepare(&seed)
                    .map_err(|e| format!("preparing seed: {e}"))?;
                let confirm = Arc::new(
                    CpuConfirm::new(&seed).map_err(|e| format!("preparing CPU re-check: {e}"))?,
                );
                println!(
                    "device {}: seed {} prepared in {} ms; memory: RSS {}",
                    self.context.device.name,
                    &job.seed.to_hex()[..16],
                    started.elapsed().as_millis(),
                    crate::memory::rss_bytes()
                        .map(crate::memory::mib)
                        .unwrap_or_else(|| "unknown".into())
                );
                self.seed_cache = Some((seed, prepared.clone(), confirm.clone()));
                (prepared, confirm)
            }
        };
        let (start, end) = nonce_slice(
            job.nonce_start.min(NONCE_LIMIT),
            job.nonce_end.min(NONCE_LIMIT),
            self.context.index,
            self.context.devices,
        );
        self.current = Some(Current {
            template: job.template(),
            share_target: job.share_target(),
            block_target: job.block_target(),
            job,
            prepared,
            confirm,
            next_nonce: start,
            end_nonce: end,
        });
        Ok(())
    }

    fn search_chunk(&mut self) -> Result<(), String> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        if current.next_nonce >= current.end_nonce {
            // Range exhausted: wait for the next job.
            std::thread::sleep(IDLE_POLL);
            return Ok(());
        }
        let end = current
            .next_nonce
            .saturating_add(self.context.device.chunk.max(1))
            .min(current.end_nonce);
        let outcome = current
            .prepared
            .search(
                &current.template,
                current.next_nonce..end,
                &current.share_target,
                &self.interrupt,
            )
            .map_err(|e| format!("search failed: {e}"));
        let counters = self.context.stats.device(self.context.index);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(message) => {
                // A device that refuses its own answer (batched backends confirm inside the
                // search) is a device error too.
                counters.device_errors.fetch_add(1, Ordering::Relaxed);
                current.next_nonce = end;
                return Err(message);
            }
        };
        counters.hashes.fetch_add(outcome.hashes, Ordering::Relaxed);
        current.next_nonce = if outcome.stopped {
            current.next_nonce.saturating_add(outcome.hashes)
        } else {
            end
        };
        if outcome.hits.is_empty() {
            return Ok(());
        }
        // A clean job published during the search makes these hits worthless.
        let superseded_by_clean = self.context.jobs.has_changed().unwrap_or(false)
            && self
                .context
                .jobs
                .borrow()
                .as_ref()
                .is_none_or(|next| next.clean && next.id != current.job.id);
        for hit in outcome.hits {
            let header_hash = current.template.header_hash(hit.nonce);
            let cpu = current.confirm.hash(&header_hash);
            if cpu != hit.pow_hash || !current.share_target.is_met_by(&cpu) {
                counters.device_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    device = %self.context.device.name,
                    nonce = hit.nonce,
                    device_result = %bystack_kernels::hex::encode(&hit.pow_hash),
                    cpu_result = %bystack_kernels::hex::encode(&cpu),
                    "device error: CPU re-check refused a nonce; not submitted"
                );
                continue;
            }
            if superseded_by_clean {
                continue;
            }
            counters.shares_found.fetch_add(1, Ordering::Relaxed);
            let share = Share {
                job_id: current.job.id.clone(),
                nonce: hit.nonce,
                hash: cpu,
                meets_block_target: current.block_target.is_met_by(&cpu),
            };
            if !hand_over(&self.context.shares, &self.context.control, share) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Gives a share to the source, waiting while its queue is full but never past a shutdown;
/// `false` when the run is ending.
fn hand_over(shares: &mpsc::Sender<Share>, control: &Control, mut share: Share) -> bool {
    loop {
        match shares.try_send(share) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Full(back)) => {
                if control.shutdown.load(Ordering::SeqCst) {
                    return false;
                }
                share = back;
                std::thread::sleep(IDLE_POLL);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The source is gone: the run is ending.
                control.stop();
                return false;
            }
        }
    }
}

/// Device `index` of `devices` gets an equal slice of `start..end` (the last one the rest).
pub fn nonce_slice(start: u64, end: u64, index: usize, devices: usize) -> (u64, u64) {
    let devices = devices.max(1) as u64;
    let index = (index as u64).min(devices - 1);
    let span = end.saturating_sub(start);
    let step = span / devices;
    let from = start + step * index;
    let to = if index + 1 == devices {
        end
    } else {
        from + step
    };
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(nonce: u64) -> Share {
        Share {
            job_id: "j".into(),
            nonce,
            hash: [0; 32],
            meets_block_target: false,
        }
    }

    #[test]
    fn a_full_share_queue_never_blocks_past_shutdown_and_a_closed_one_stops_the_run() {
        let control = Control::new(1);
        let (tx, mut rx) = mpsc::channel(1);
        assert!(hand_over(&tx, &control, share(1)));
        // Full: a shutdown from another thread releases the waiting worker.
        let stopper = std::thread::spawn({
            let control = Arc::new(Control::new(1));
            let waiting = control.clone();
            let tx = tx.clone();
            let handle = std::thread::spawn(move || hand_over(&tx, &waiting, share(2)));
            std::thread::sleep(Duration::from_millis(50));
            control.stop();
            move || handle.join().unwrap()
        });
        assert!(!stopper.join().unwrap());
        assert_eq!(rx.try_recv().unwrap().nonce, 1);
        drop(rx);
        assert!(!hand_over(&tx, &control, share(3)));
        assert!(
            control.shutdown.load(Ordering::SeqCst),
            "a closed queue stops the run"
        );
    }

    #[test]
    fn nonce_slices_cover_the_range_without_overlap() {
        let slices: Vec<_> = (0..3).map(|i| nonce_slice(10, 110, i, 3)).collect();
        assert_eq!(slices, vec![(10, 43), (43, 76), (76, 110)]);
        assert_eq!(nonce_slice(0, u64::MAX, 0, 1), (0, u64::MAX));
        assert_eq!(nonce_slice(5, 5, 1, 2), (5, 5));
    }
}
