//! What a measurement ran on: the machine (CPU model and features, cores, memory, GPUs, OS)
//! and the software (bystack version, git commit, compiler, build profile), plus the date.
//! Reports and tuned profiles carry both, so a figure can always be traced to its source.

use serde::{Deserialize, Serialize};

/// The hardware and operating system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// The CPU features that matter to the kernels, as the OS names them (e.g. `avx2`,
    /// `avx512_vnni`, `amx_int8`, `asimddp`).
    pub cpu_features: Vec<String>,
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// Installed memory in bytes, if the OS reports it.
    pub memory_bytes: Option<u64>,
    /// GPUs found: Tensority GPU backends that can run here (`backend: device`), and NVIDIA
    /// driver entries.
    pub gpus: Vec<String>,
    /// Operating system (`/etc/os-release` `PRETTY_NAME`, else the target OS).
    pub os: String,
    /// Kernel release (`/proc/sys/kernel/osrelease`), if known.
    pub kernel: Option<String>,
    /// Target architecture.
    pub arch: String,
}

/// The software that measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versions {
    /// The bystack workspace version.
    pub bystack: String,
    /// The git commit the binary was built from (`unknown` outside a checkout), with
    /// `-dirty` when tracked files had changes.
    pub git_commit: String,
    /// `rustc --version` at build time.
    pub rustc: String,
    /// `release` or `debug`.
    pub profile: String,
}

/// CPU feature flags worth recording (x86 and Arm names as `/proc/cpuinfo` spells them).
const INTERESTING_FEATURES: &[&str] = &[
    "sse4_1",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
    "sve2",
];

/// Describes this machine. Never fails: what cannot be read is `unknown` or `None`.
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    describe_from(&cpuinfo, &read("/proc/meminfo"), &read("/etc/os-release"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// [`describe`] from the text of `/proc/cpuinfo`, `/proc/meminfo` and `/etc/os-release`.
fn describe_from(cpuinfo: &str, meminfo: &str, os_release: &str) -> Machine {
    let field = |names: &[&str]| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            names
                .contains(&key.trim())
                .then(|| value.trim().to_string())
        })
    };
    let cpu_model = field(&["model name", "Model", "Hardware", "cpu model"])
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let flags = field(&["flags", "Features"]).unwrap_or_default();
    let present: Vec<&str> = flags.split_whitespace().collect();
    let cpu_features = INTERESTING_FEATURES
        .iter()
        .filter(|f| present.contains(f))
        .map(|f| f.to_string())
        .collect();
    let memory_bytes = meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemTotal:")?;
        let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    });
    let os = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    Machine {
        cpu_model,
        cpu_features,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes,
        gpus: gpus(),
        os,
        kernel,
        arch: std::env::consts::ARCH.to_string(),
    }
}

/// GPU backends that can run here and NVIDIA driver entries.
fn gpus() -> Vec<String> {
    let mut found: Vec<String> = bystack_kernels::list_backends()
        .into_iter()
        .filter(|b| b.available && crate::tensority::is_batched(&b.name))
        .map(|b| format!("{}: {}", b.name, b.device))
        .collect();
    if let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") {
        for entry in entries.flatten() {
            let info =
                std::fs::read_to_string(entry.path().join("information")).unwrap_or_default();
            if let Some(model) = info.lines().find_map(|l| l.strip_prefix("Model:")) {
                found.push(format!("nvidia driver: {}", model.trim()));
            }
        }
    }
    found
}

/// The software versions of this binary.
pub fn versions() -> Versions {
    Versions {
        bystack: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: git_commit(),
        rustc: env!("BYSTACK_RUSTC_VERSION").to_string(),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_string(),
    }
}

/// The checkout's commit (asked at run time, since the binary may be older than the
/// checkout's last build script run), else the one recorded at build time, else `unknown`.
fn git_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty()) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => option_env!("BYSTACK_GIT_COMMIT")
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown")
            .to_string(),
    }
}

/// The current UTC time as RFC 3339 (`2026-11-29T02:18:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the UNIX epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let rem = unix_seconds % 86_400;
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by 400-year eras
/// (146,097 days each) counted from 0000-03-01, so that the leap day ends a year.
fn civil_date(days_since_epoch: i64) -> (i64, u32, u32) {
    const DAYS_PER_ERA: i64 = 146_097;
    // 1970-01-01 is day 719,468 counted from 0000-03-01.
    let days = days_since_epoch + 719_468;
    let era = days.div_euclid(DAYS_PER_ERA);
    let day_of_era = days.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March: 153 days per five months.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn cpuinfo_meminfo_and_os_release_are_parsed() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Test CPU 9000\n\
                       flags\t\t: fpu sse4_1 avx2 avx512_vnni amx_int8 foo\n";
        let m = describe_from(
            cpuinfo,
            "MemTotal:       24000000 kB\nMemFree: 1 kB\n",
            "NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n",
        );
        assert_eq!(m.cpu_model, "Test CPU 9000");
        assert_eq!(
            m.cpu_features,
            ["sse4_1", "avx2", "avx512_vnni", "amx_int8"]
        );
        assert_eq!(m.memory_bytes, Some(24_000_000 * 1024));
        assert_eq!(m.os, "Debian GNU/Linux 12");
        assert!(m.cores >= 1);
        let arm = describe_from(
            "Features\t: fp asimd asimddp\nModel\t: Raspberry Pi 5\n",
            "",
            "",
        );
        assert_eq!(arm.cpu_model, "Raspberry Pi 5");
        assert_eq!(arm.cpu_features, ["asimd", "asimddp"]);
        assert_eq!(arm.memory_bytes, None);
    }

    #[test]
    fn this_machine_and_build_are_described() {
        let m = describe();
        assert!(m.cores >= 1);
        let v = versions();
        assert_eq!(v.bystack, env!("CARGO_PKG_VERSION"));
        assert!(v.rustc.starts_with("rustc "), "{}", v.rustc);
        assert!(!v.git_commit.is_empty());
    }
}
