//! The process's resident memory, for the figure printed at start (the per-seed matrix set,
//! 16 MiB, should be the main cost).

/// Resident set size in bytes: `/proc/self/statm`'s resident pages times the page size
/// (taken from `VmRSS` in `/proc/self/status` when both are readable, so no page size is
/// assumed). `None` where `/proc` is absent (not Linux).
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let status_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        });
    // The two reads are a moment apart: take the usual page size nearest to their ratio.
    let page = status_kib
        .filter(|_| pages > 0)
        .map(|kib| {
            let ratio = (kib * 1024 / pages) as i64;
            [4096i64, 16384, 65536]
                .into_iter()
                .min_by_key(|p| (p - ratio).abs())
                .unwrap_or(4096) as u64
        })
        .unwrap_or(4096);
    Some(pages * page)
}

/// `bytes` in MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_grows_when_memory_is_touched() {
        let before = rss_bytes().expect("linux /proc");
        let block = vec![1u8; 64 << 20];
        let during = rss_bytes().unwrap();
        assert!(
            during >= before + (48 << 20),
            "{} -> {}",
            mib(before),
            mib(during)
        );
        assert_eq!(block.iter().map(|&b| b as u64).sum::<u64>(), 64 << 20);
    }
}
