//! Hash-rate and share statistics: per-device counters the workers bump once per search chunk
//! (atomics, no locks on the hot path), a once-a-second sample history for the 10 s / 60 s /
//! 15 min hash-rate windows, a JSON snapshot for `/stats` and Prometheus text for `/metrics`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The hash-rate windows reported, in seconds.
pub const WINDOWS: [u64; 3] = [10, 60, 900];

/// Samples kept: one a second for the longest window, plus one.
const HISTORY: usize = 901;

/// Per-device rates and their total over one window.
type WindowRates = (Vec<f64>, f64);

/// Counters of one device.
#[derive(Debug, Default)]
pub struct DeviceCounters {
    /// Hashes computed.
    pub hashes: AtomicU64,
    /// Nonces the device reported that the CPU re-check refused (never submitted).
    pub device_errors: AtomicU64,
    /// Shares that passed the CPU re-check and went to the source.
    pub shares_found: AtomicU64,
}

/// Every counter of a mining run.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    device_names: Vec<String>,
    devices: Vec<DeviceCounters>,
    /// Shares the source reported accepted.
    pub accepted: AtomicU64,
    /// Shares the source reported rejected.
    pub rejected: AtomicU64,
    /// Shares the source reported stale.
    pub stale: AtomicU64,
    /// Accepted shares that made blocks.
    pub blocks: AtomicU64,
    history: Mutex<VecDeque<(Instant, Vec<u64>)>>,
}

/// Hash rates of one device or of the total, in hashes per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    /// Over the last 10 s (or since the start, if shorter).
    pub h10s: f64,
    /// Over the last 60 s.
    pub h60s: f64,
    /// Over the last 15 min.
    pub h15m: f64,
}

/// One device in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceSnapshot {
    /// The device's name.
    pub name: String,
    /// Hashes computed.
    pub hashes: u64,
    /// Hash rates.
    pub rates: Rates,
    /// Shares found (CPU-confirmed).
    pub shares_found: u64,
    /// Nonces refused by the CPU re-check.
    pub device_errors: u64,
}

/// Everything `/stats` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Seconds since the run started.
    pub uptime_s: f64,
    /// Every device.
    pub devices: Vec<DeviceSnapshot>,
    /// All devices together.
    pub total: Rates,
    /// Hashes over all devices.
    pub hashes: u64,
    /// Accepted shares.
    pub accepted: u64,
    /// Rejected shares.
    pub rejected: u64,
    /// Stale shares.
    pub stale: u64,
    /// Blocks found (accepted shares that made blocks).
    pub blocks: u64,
    /// Nonces refused by the CPU re-check, over all devices.
    pub device_errors: u64,
}

impl Stats {
    /// Counters for devices named `device_names`, starting now.
    pub fn new(device_names: Vec<String>) -> Self {
        let devices = device_names
            .iter()
            .map(|_| DeviceCounters::default())
            .collect();
        let started = Instant::now();
        let zero = vec![0; device_names.len()];
        Self {
            started,
            device_names,
            devices,
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            history: Mutex::new(VecDeque::from([(started, zero)])),
        }
    }

    /// The counters of device `index`.
    ///
    /// # Panics
    /// If `index` is not a device of this run (a programming error).
    pub fn device(&self, index: usize) -> &DeviceCounters {
        &self.devices[index]
    }

    /// Records the current hash counts; called once a second.
    pub fn sample(&self) {
        self.sample_at(Instant::now());
    }

    fn sample_at(&self, at: Instant) {
        let counts = self.hash_counts();
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push_back((at, counts));
        while history.len() > HISTORY {
            history.pop_front();
        }
    }

    fn hash_counts(&self) -> Vec<u64> {
        self.devices
            .iter()
            .map(|d| d.hashes.load(Ordering::Relaxed))
            .collect()
    }

    /// The rate of each device and of the total over the last `window`, measured from the
    /// oldest sample inside the window to now.
    fn rates_over(&self, window: Duration, now: Instant, counts: &[u64]) -> WindowRates {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let base = history
            .iter()
            .find(|(t, _)| now.saturating_duration_since(*t) <= window)
            .or_else(|| history.back());
        let Some((t0, base_counts)) = base else {
            return (vec![0.0; counts.len()], 0.0);
        };
        let elapsed = now.saturating_duration_since(*t0).as_secs_f64();
        if elapsed <= 0.0 {
            return (vec![0.0; counts.len()], 0.0);
        }
        let per_device: Vec<f64> = counts
            .iter()
            .zip(base_counts)
            .map(|(now, then)| now.saturating_sub(*then) as f64 / elapsed)
            .collect();
        let total = per_device.iter().sum();
        (per_device, total)
    }

    /// A snapshot of every counter and rate.
    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let counts = self.hash_counts();
        let windows: Vec<WindowRates> = WINDOWS
            .iter()
            .map(|&s| self.rates_over(Duration::from_secs(s), now, &counts))
            .collect();
        let rates = |pick: &dyn Fn(&WindowRates) -> f64| Rates {
            h10s: pick(&windows[0]),
            h60s: pick(&windows[1]),
            h15m: pick(&windows[2]),
        };
        let devices = self
            .device_names
            .iter()
            .enumerate()
            .map(|(i, name)| DeviceSnapshot {
                name: name.clone(),
                hashes: counts[i],
                rates: rates(&|w| w.0[i]),
                shares_found: self.devices[i].shares_found.load(Ordering::Relaxed),
                device_errors: self.devices[i].device_errors.load(Ordering::Relaxed),
            })
            .collect::<Vec<_>>();
        Snapshot {
            uptime_s: now.duration_since(self.started).as_secs_f64(),
            total: rates(&|w| w.1),
            hashes: counts.iter().sum(),
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            device_errors: devices.iter().map(|d| d.device_errors).sum(),
            devices,
        }
    }
}

impl Snapshot {
    /// The average hash rate since the start.
    pub fn average_rate(&self) -> f64 {
        if self.uptime_s > 0.0 {
            self.hashes as f64 / self.uptime_s
        } else {
            0.0
        }
    }

    /// One log line: total rates, shares and blocks.
    pub fn log_line(&self) -> String {
        let mut line = format!(
            "hashrate {:.1} H/s (10s) {:.1} H/s (60s) {:.1} H/s (15m) | accepted {} rejected {} stale {} | blocks {}",
            self.total.h10s, self.total.h60s, self.total.h15m, self.accepted, self.rejected, self.stale, self.blocks
        );
        if self.device_errors > 0 {
            let _ = write!(line, " | device errors {}", self.device_errors);
        }
        if self.devices.len() > 1 {
            for d in &self.devices {
                let _ = write!(line, " | {} {:.1} H/s", d.name, d.rates.h10s);
            }
        }
        line
    }

    /// The Prometheus text exposition (format 0.0.4) of the snapshot.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let device_label = |d: &DeviceSnapshot, extra: &str| {
            format!("{{device=\"{}\"{extra}}}", d.name.replace(['\\', '"'], "_"))
        };
        let mut rate_samples = Vec::new();
        for d in &self.devices {
            for (window, value) in [
                ("10s", d.rates.h10s),
                ("60s", d.rates.h60s),
                ("15m", d.rates.h15m),
            ] {
                rate_samples.push((device_label(d, &format!(",window=\"{window}\"")), value));
            }
        }
        metric(
            "bystack_miner_hashrate",
            "gauge",
            "Hashes per second of each device over a window.",
            &rate_samples,
        );
        let per_device = |f: &dyn Fn(&DeviceSnapshot) -> u64| -> Vec<(String, f64)> {
            self.devices
                .iter()
                .map(|d| (device_label(d, ""), f(d) as f64))
                .collect()
        };
        metric(
            "bystack_miner_hashes_total",
            "counter",
            "Hashes computed by each device.",
            &per_device(&|d| d.hashes),
        );
        metric(
            "bystack_miner_device_errors_total",
            "counter",
            "Device results the CPU re-check refused (never submitted).",
            &per_device(&|d| d.device_errors),
        );
        for (name, help, value) in [
            (
                "bystack_miner_shares_accepted_total",
                "Shares accepted by the work source.",
                self.accepted,
            ),
            (
                "bystack_miner_shares_rejected_total",
                "Shares rejected by the work source.",
                self.rejected,
            ),
            (
                "bystack_miner_shares_stale_total",
                "Shares that arrived after their job was replaced.",
                self.stale,
            ),
            (
                "bystack_miner_blocks_total",
                "Accepted shares that made blocks.",
                self.blocks,
            ),
        ] {
            metric(name, "counter", help, &[(String::new(), value as f64)]);
        }
        metric(
            "bystack_miner_uptime_seconds",
            "gauge",
            "Seconds since the miner started.",
            &[(String::new(), self.uptime_s)],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_samples_inside_each_window() {
        let stats = Stats::new(vec!["a".into(), "b".into()]);
        let t0 = stats.started;
        // 100 s of history: device a at 10 H/s, b at 30 H/s until 50 s ago, then idle.
        for s in 1..=100u64 {
            stats.device(0).hashes.store(10 * s, Ordering::Relaxed);
            stats
                .device(1)
                .hashes
                .store(30 * s.min(50), Ordering::Relaxed);
            stats.sample_at(t0 + Duration::from_secs(s));
        }
        let now = t0 + Duration::from_secs(100);
        let counts = stats.hash_counts();
        let (ten, total_ten) = stats.rates_over(Duration::from_secs(10), now, &counts);
        assert!((ten[0] - 10.0).abs() < 1e-9, "{ten:?}");
        assert_eq!(ten[1], 0.0);
        assert!((total_ten - 10.0).abs() < 1e-9);
        let (all, total_all) = stats.rates_over(Duration::from_secs(900), now, &counts);
        assert!((all[0] - 10.0).abs() < 1e-9);
        assert!((all[1] - 15.0).abs() < 1e-9, "{all:?}");
        assert!((total_all - 25.0).abs() < 1e-9);
    }

    #[test]
    fn history_is_bounded() {
        let stats = Stats::new(vec!["a".into()]);
        for s in 0..2000u64 {
            stats.sample_at(stats.started + Duration::from_secs(s));
        }
        assert_eq!(stats.history.lock().unwrap().len(), HISTORY);
    }

    #[test]
    fn prometheus_text_has_every_family_and_label() {
        let stats = Stats::new(vec!["cpu-avx2".into()]);
        stats.device(0).hashes.store(42, Ordering::Relaxed);
        stats.accepted.store(3, Ordering::Relaxed);
        stats.blocks.store(2, Ordering::Relaxed);
        let text = stats.snapshot().prometheus();
        assert!(text.contains("# TYPE bystack_miner_hashrate gauge"));
        assert!(text.contains("bystack_miner_hashes_total{device=\"cpu-avx2\"} 42"));
        assert!(text.contains("bystack_miner_shares_accepted_total 3"));
        assert!(text.contains("bystack_miner_blocks_total 2"));
        assert!(text.contains("bystack_miner_hashrate{device=\"cpu-avx2\",window=\"15m\"}"));
    }
}
