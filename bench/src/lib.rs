//! bystack-bench: reproducible benchmarks of the kernels and the engine (and later the node),
//! plus `hash`, a line-oriented tool that checks any backend against outside vectors.
//!
//! Figures are medians over repeats, with inputs prepared outside the timed loop.

pub mod checksum;
pub mod conformance;
pub mod decode;
pub mod hashcmd;
pub mod machine;
pub mod net;
pub mod peak;
pub mod plots;
pub mod pswv;
pub mod pswv_rocks;
pub mod report;
pub mod stratum;
pub mod suite;
pub mod tensority;
pub mod tune;
pub mod verify;

/// The process's peak resident memory in bytes (Linux `VmHWM`), if the OS reports it.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn peak_memory_is_reported_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_memory_bytes().unwrap() > 0);
        }
    }
}
