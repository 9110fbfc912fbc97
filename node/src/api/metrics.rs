//! `/metrics`: the node's counters and gauges in Prometheus' text exposition format (0.0.4).

use std::fmt::Write;

use crate::service::Node;
use crate::store::KvStore;

/// The content type of the exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A latency histogram: cumulative counts per upper bound, in seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LatencyHistogram {
    /// `(upper bound in seconds, observations ≤ bound)`, bounds ascending; the `+Inf` bucket
    /// is [`count`](Self::count).
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

/// One reading of the node's metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsSnapshot {
    /// Main-chain tip height.
    pub height: u64,
    /// Connected peers.
    pub peers: u64,
    /// Transactions in the mempool.
    pub mempool_size: u64,
    /// Blocks accepted (main or side chain) since start.
    pub blocks_accepted: u64,
    /// Blocks rejected since start.
    pub blocks_rejected: u64,
    /// Transactions admitted to the mempool since start.
    pub txs_admitted: u64,
    /// Transactions refused by the mempool since start.
    pub txs_rejected: u64,
    /// Time from a block's arrival to its relay to peers.
    pub relay_latency: LatencyHistogram,
}

impl MetricsSnapshot {
    /// The node's metrics now: its counters, tip height and mempool size.
    pub fn of<K: KvStore>(node: &Node<K>) -> Self {
        let counters = node.metrics().snapshot();
        MetricsSnapshot {
            height: node.tip().height,
            peers: counters.peers,
            mempool_size: node.mempool_len() as u64,
            blocks_accepted: counters.blocks_accepted,
            blocks_rejected: counters.blocks_rejected,
            txs_admitted: counters.txs_admitted,
            txs_rejected: counters.txs_rejected,
            relay_latency: LatencyHistogram::from_millis(
                &counters.relay_latency,
                counters.relay_latency_sum_ms,
            ),
        }
    }
}

impl LatencyHistogram {
    /// The histogram of per-bucket counts with upper bounds in milliseconds (`None`: the
    /// unbounded last bucket), as the node's metrics keep them.
    pub fn from_millis(buckets: &[(Option<u64>, u64)], sum_ms: u64) -> Self {
        let mut cumulative = 0u64;
        let mut bounded = Vec::with_capacity(buckets.len());
        for (bound_ms, count) in buckets {
            cumulative = cumulative.saturating_add(*count);
            if let Some(bound_ms) = bound_ms {
                bounded.push((*bound_ms as f64 / 1000.0, cumulative));
            }
        }
        LatencyHistogram {
            buckets: bounded,
            sum_seconds: sum_ms as f64 / 1000.0,
            count: cumulative,
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Renders `snapshot` in the text exposition format: `bystack_chain_height`, `bystack_peers`,
/// `bystack_mempool_transactions` (gauges), `bystack_blocks_accepted_total`,
/// `bystack_blocks_rejected_total`, `bystack_transactions_admitted_total`,
/// `bystack_transactions_rejected_total` (counters) and `bystack_relay_latency_seconds`
/// (histogram).
pub fn render(snapshot: &MetricsSnapshot) -> String {
    let mut out = String::new();
    sample(
        &mut out,
        "bystack_chain_height",
        "gauge",
        "Height of the main chain's tip.",
        snapshot.height,
    );
    sample(
        &mut out,
        "bystack_peers",
        "gauge",
        "Connected peers.",
        snapshot.peers,
    );
    sample(
        &mut out,
        "bystack_mempool_transactions",
        "gauge",
        "Transactions in the mempool.",
        snapshot.mempool_size,
    );
    sample(
        &mut out,
        "bystack_blocks_accepted_total",
        "counter",
        "Blocks accepted since start.",
        snapshot.blocks_accepted,
    );
    sample(
        &mut out,
        "bystack_blocks_rejected_total",
        "counter",
        "Blocks rejected since start.",
        snapshot.blocks_rejected,
    );
    sample(
        &mut out,
        "bystack_transactions_admitted_total",
        "counter",
        "Transactions admitted to the mempool since start.",
        snapshot.txs_admitted,
    );
    sample(
        &mut out,
        "bystack_transactions_rejected_total",
        "counter",
        "Transactions refused by the mempool since start.",
        snapshot.txs_rejected,
    );
    let name = "bystack_relay_latency_seconds";
    let latency = &snapshot.relay_latency;
    family(
        &mut out,
        name,
        "histogram",
        "Time from a block's arrival to its relay to peers.",
    );
    for (bound, count) in &latency.buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", latency.count);
    let _ = writeln!(out, "{name}_sum {}", latency.sum_seconds);
    let _ = writeln!(out, "{name}_count {}", latency.count);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_become_cumulative_seconds() {
        let h = LatencyHistogram::from_millis(&[(Some(5), 2), (Some(250), 1), (None, 4)], 1500);
        assert_eq!(h.buckets, vec![(0.005, 2), (0.25, 3)]);
        assert_eq!(h.count, 7);
        assert_eq!(h.sum_seconds, 1.5);
    }

    #[test]
    fn renders_every_family_with_values() {
        let text = render(&MetricsSnapshot {
            height: 12,
            peers: 3,
            mempool_size: 7,
            blocks_accepted: 11,
            blocks_rejected: 2,
            txs_admitted: 9,
            txs_rejected: 1,
            relay_latency: LatencyHistogram {
                buckets: vec![(0.005, 1), (0.25, 4)],
                sum_seconds: 0.5,
                count: 5,
            },
        });
        for line in [
            "# TYPE bystack_chain_height gauge",
            "bystack_chain_height 12",
            "bystack_peers 3",
            "bystack_mempool_transactions 7",
            "# TYPE bystack_blocks_accepted_total counter",
            "bystack_blocks_accepted_total 11",
            "bystack_blocks_rejected_total 2",
            "bystack_transactions_admitted_total 9",
            "bystack_transactions_rejected_total 1",
            "# TYPE bystack_relay_latency_seconds histogram",
            "bystack_relay_latency_seconds_bucket{le=\"0.005\"} 1",
            "bystack_relay_latency_seconds_bucket{le=\"0.25\"} 4",
            "bystack_relay_latency_seconds_bucket{le=\"+Inf\"} 5",
            "bystack_relay_latency_seconds_sum 0.5",
            "bystack_relay_latency_seconds_count 5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
