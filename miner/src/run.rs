//! One mining run: a work source, device workers, the duty cycle, statistics, the optional
//! stats API, and the stop conditions (`--blocks`, `--seconds`, Ctrl-C, the source giving up).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::device::{self, Control, Device, WorkerContext};
use crate::stats::{Snapshot, Stats};
use crate::work::{SourceError, SourceEvent, WorkSource};

/// The duty cycle's period: devices mine `duty` percent of each such period.
pub const DUTY_PERIOD: Duration = Duration::from_secs(1);

/// How long a source gets to finish after the shutdown request.
const SOURCE_GRACE: Duration = Duration::from_secs(5);

/// How a run is tuned and when it ends.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this many blocks found (accepted shares that made blocks).
    pub blocks: Option<u64>,
    /// Stop after this long.
    pub seconds: Option<f64>,
    /// Percent of each [`DUTY_PERIOD`] the devices mine (1–100).
    pub duty_percent: u8,
    /// A stats line every this often.
    pub log_interval: Duration,
    /// Serve `/stats` and `/metrics` here.
    pub api: Option<SocketAddr>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            blocks: None,
            seconds: None,
            duty_percent: 100,
            log_interval: Duration::from_secs(10),
            api: None,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `--blocks` reached.
    Blocks,
    /// `--seconds` elapsed.
    Seconds,
    /// Ctrl-C (or the caller's stop future).
    Interrupted,
    /// The source returned without being asked to.
    SourceEnded,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Why it ended.
    pub reason: StopReason,
    /// The final counters.
    pub stats: Snapshot,
}

impl Summary {
    /// The lines printed at the end of a run.
    pub fn report(&self) -> String {
        let s = &self.stats;
        let mut out = format!(
            "summary: stopped ({:?}) after {:.1} s: {} blocks, {} accepted, {} rejected, {} stale, {} hashes, {:.1} H/s average",
            self.reason, s.uptime_s, s.blocks, s.accepted, s.rejected, s.stale, s.hashes, s.average_rate()
        );
        for d in &s.devices {
            out.push_str(&format!(
                "\nsummary: device {}: {} hashes, {} shares, {} device errors",
                d.name, d.hashes, d.shares_found, d.device_errors
            ));
        }
        out
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The work source gave up.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A worker thread could not start.
    #[error("starting a worker thread: {0}")]
    Spawn(std::io::Error),
    /// The stats API could not listen.
    #[error("stats api on {addr}: {source}")]
    Api {
        /// The address asked for.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// No device to mine on.
    #[error("no device to mine on")]
    NoDevices,
    /// A duty cycle outside 1–100 percent.
    #[error("duty must be 1-100 percent, got {0}")]
    Duty(u8),
}

/// Mines with `devices` on `source` until a stop condition; `stop` is the external stop
/// request (Ctrl-C in the binary). Prints a line for each block found and a stats line every
/// [`RunOptions::log_interval`].
///
/// # Errors
/// [`RunError`]: bad options, a thread or listener that cannot start, the source's failure.
pub async fn run(
    source: Box<dyn WorkSource>,
    devices: Vec<Device>,
    options: RunOptions,
    stop: impl Future<Output = ()>,
) -> Result<Summary, RunError> {
    if devices.is_empty() {
        return Err(RunError::NoDevices);
    }
    if !(1..=100).contains(&options.duty_percent) {
        return Err(RunError::Duty(options.duty_percent));
    }
    let device_count = devices.len();
    let stats = Arc::new(Stats::new(devices.iter().map(|d| d.name.clone()).collect()));
    let control = Arc::new(Control::new(device_count));
    let (jobs_tx, jobs_rx) = watch::channel(None);
    let (shares_tx, shares_rx) = mpsc::channel(256);
    let (events_tx, mut events_rx) = mpsc::channel(256);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let api = match options.api {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Api { addr, source })?;
            let bound = listener
                .local_addr()
                .map_err(|source| RunError::Api { addr, source })?;
            println!("stats api listening on http://{bound} (/stats, /metrics)");
            let stats = stats.clone();
            let mut shutdown = shutdown_rx.clone();
            Some(tokio::spawn(crate::api::serve(
                listener,
                stats,
                async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                },
            )))
        }
        None => None,
    };

    println!(
        "mining on {} with {} device(s): {}",
        source.name(),
        device_count,
        devices
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut source_task = tokio::spawn(source.run(jobs_tx, shares_rx, events_tx, shutdown_rx));

    let mut workers = Vec::with_capacity(device_count);
    for (index, device) in devices.into_iter().enumerate() {
        let context = WorkerContext {
            index,
            devices: device_count,
            device,
            jobs: jobs_rx.clone(),
            shares: shares_tx.clone(),
            control: control.clone(),
            stats: stats.clone(),
        };
        match device::spawn(context) {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                control.stop();
                let _ = shutdown_tx.send(true);
                return Err(RunError::Spawn(e));
            }
        }
    }
    drop(shares_tx);

    // A new job preempts every device.
    let preempt = {
        let control = control.clone();
        let mut jobs = jobs_rx.clone();
        tokio::spawn(async move {
            while jobs.changed().await.is_ok() {
                control.interrupt_all();
            }
        })
    };
    let duty = (options.duty_percent < 100).then(|| {
        let control = control.clone();
        let on = DUTY_PERIOD.mul_f64(f64::from(options.duty_percent) / 100.0);
        let off = DUTY_PERIOD.saturating_sub(on);
        tokio::spawn(async move {
            let mut period_start = Instant::now();
            loop {
                control.paused.store(false, Ordering::SeqCst);
                tokio::time::sleep_until(period_start + on).await;
                control.paused.store(true, Ordering::SeqCst);
                control.interrupt_all();
                tokio::time::sleep_until(period_start + on + off).await;
                period_start += DUTY_PERIOD;
            }
        })
    });
    let sampler = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                stats.sample();
            }
        })
    };

    let deadline = options
        .seconds
        .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let until_deadline = async move {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => futures::future::pending::<()>().await,
        }
    };
    tokio::pin!(until_deadline);
    tokio::pin!(stop);
    let mut log = tokio::time::interval_at(
        Instant::now() + options.log_interval,
        options.log_interval.max(Duration::from_millis(100)),
    );
    let mut source_result: Option<Result<(), SourceError>> = None;
    // A source may drop its event sender and keep running: events then stop being polled,
    // and only the source task ending (or another stop condition) ends the run.
    let mut events_open = true;
    let reason = loop {
        tokio::select! {
            _ = &mut stop => break StopReason::Interrupted,
            _ = &mut until_deadline => break StopReason::Seconds,
            _ = log.tick() => println!("{}", stats.snapshot().log_line()),
            event = events_rx.recv(), if events_open => match event {
                Some(event) => {
                    if record(&stats, event) && options.blocks.is_some_and(|n| stats.blocks.load(Ordering::SeqCst) >= n) {
                        break StopReason::Blocks;
                    }
                }
                None => events_open = false,
            },
            joined = &mut source_task => {
                source_result = Some(flatten(joined));
                break StopReason::SourceEnded;
            }
        }
    };

    control.stop();
    let _ = shutdown_tx.send(true);
    preempt.abort();
    if let Some(duty) = duty {
        duty.abort();
    }
    sampler.abort();
    let joined = tokio::task::spawn_blocking(move || {
        for worker in workers {
            let _ = worker.join();
        }
    });
    let _ = joined.await;
    if source_result.is_none() {
        match tokio::time::timeout(SOURCE_GRACE, &mut source_task).await {
            Ok(joined) => source_result = Some(flatten(joined)),
            Err(_) => {
                source_task.abort();
                tracing::warn!("the work source did not stop within {SOURCE_GRACE:?}");
            }
        }
    }
    // Events that arrived while stopping still count.
    while let Ok(event) = events_rx.try_recv() {
        record(&stats, event);
    }
    if let Some(api) = api {
        let _ = tokio::time::timeout(Duration::from_secs(2), api).await;
    }
    stats.sample();
    if let Some(Err(e)) = source_result {
        return Err(e.into());
    }
    Ok(Summary {
        reason,
        stats: stats.snapshot(),
    })
}

/// The source task's result, a panic or cancellation turned into an error.
fn flatten(
    joined: Result<Result<(), SourceError>, tokio::task::JoinError>,
) -> Result<(), SourceError> {
    joined.unwrap_or_else(|e| Err(SourceError::Config(format!("work source task failed: {e}"))))
}

/// Counts an event and prints what the user should see; `true` when it was a block.
fn record(stats: &Stats, event: SourceEvent) -> bool {
    match event {
        SourceEvent::Connected { endpoint } => {
            println!("connected to {endpoint}");
            false
        }
        SourceEvent::Disconnected { endpoint, reason } => {
            println!("disconnected from {endpoint}: {reason}");
            false
        }
        SourceEvent::Accepted { job_id, block } => {
            stats.accepted.fetch_add(1, Ordering::SeqCst);
            if block {
                let n = stats.blocks.fetch_add(1, Ordering::SeqCst) + 1;
                let s = stats.snapshot();
                println!(
                    "block found: #{n} accepted (job {job_id}); {:.1} H/s (10s)",
                    s.total.h10s
                );
            } else {
                println!("share accepted (job {job_id})");
            }
            block
        }
        SourceEvent::Rejected { job_id, reason } => {
            stats.rejected.fetch_add(1, Ordering::SeqCst);
            println!("share rejected (job {job_id}): {reason}");
            false
        }
        SourceEvent::Stale { job_id } => {
            stats.stale.fetch_add(1, Ordering::SeqCst);
            println!("share stale (job {job_id})");
            false
        }
    }
}
