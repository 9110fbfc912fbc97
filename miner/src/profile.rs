//! Hardware profiles (hw-profiles/*.toml, schema in hw-profiles/README.md): the backend,
//! threads, batch and duty cycle for a device class, and where those figures come from.
//!
//! The types serialise as well as parse, so that a tuner (`bystack-bench tune`) writes its
//! profiles through the same schema the miner reads them with.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ConfigResult};

/// Whether a profile's figures were measured on the hardware or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvenanceKind {
    /// Run on the named machine; `source` points at the results.
    Measured,
    /// Not run on such hardware; `source` says what the figures are derived from.
    Estimated,
}

/// Where a profile's figures come from.
///
/// Everything past `kind` and `source` is optional, so hand-written profiles stay short; a
/// tuned profile fills in the rest. Scalars come before the tables so that the struct
/// serialises to valid TOML in declaration order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Measured or estimated.
    pub kind: ProvenanceKind,
    /// The machine, results file or reasoning behind the figures.
    pub source: String,
    /// The hash rate expected per device at these settings, in H/s, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_rate: Option<f64>,
    /// The hash rate of the miner's default settings (backend `auto`, threads 0, batch 0,
    /// duty 100) measured in the same run, in H/s: what the profile gains over no profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_hash_rate: Option<f64>,
    /// When the figures were measured, RFC 3339 (`2026-11-29T02:18:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// The machine the figures come from.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "machine_or_text"
    )]
    pub machine: Option<MachineInfo>,
    /// The software that measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Versions>,
    /// The configurations a tuner measured, in the order it measured them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trials: Vec<Trial>,
}

/// `provenance.machine`: a one-line description, or the table a tuner writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MachineInfo {
    /// Free text, e.g. `"2 vCPU Xeon VM"`.
    Text(String),
    /// The machine as `bystack-bench` describes it.
    Table(Machine),
}

/// The hardware and operating system behind a profile's figures.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// CPU model name.
    pub cpu_model: String,
    /// The CPU features that matter to the kernels (`avx2`, `avx512_vnni`, `amx_int8`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_features: Vec<String>,
    /// Logical CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<usize>,
    /// Installed memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// GPUs found (`backend: device` and driver entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<String>,
    /// Operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Target architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// The software behind a profile's figures.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Versions {
    /// The bystack workspace version.
    pub bystack: String,
    /// The git commit measured (`-dirty` when tracked files had changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    /// `rustc --version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rustc: Option<String>,
    /// The build profile, `release` or `debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// One configuration a tuner measured: the profile settings it tried and what they gave.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Trial {
    /// The backend (`--backend`).
    pub backend: String,
    /// CPU worker threads, 0 = one per core (`--threads`).
    pub threads: usize,
    /// Hashes per search call, 0 = the default (`--batch`).
    pub batch: usize,
    /// Median hash rate over the repeats, H/s (all devices of the trial together).
    pub hash_rate: f64,
    /// `(max - min) / median` of the repeats: 0 is perfectly steady.
    pub spread: f64,
}

/// A string becomes [`MachineInfo::Text`], a table [`MachineInfo::Table`]; a table with an
/// unknown key is refused with serde's message for it (an untagged enum would only say that
/// nothing matched).
fn machine_or_text<'de, D>(deserializer: D) -> Result<Option<MachineInfo>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    match toml::Value::deserialize(deserializer)? {
        toml::Value::String(text) => Ok(Some(MachineInfo::Text(text))),
        table @ toml::Value::Table(_) => Machine::deserialize(table)
            .map(|m| Some(MachineInfo::Table(m)))
            .map_err(|e| D::Error::custom(format!("provenance.machine: {}", e.message()))),
        other => Err(D::Error::custom(format!(
            "provenance.machine must be a string or a table, not a {}",
            other.type_str()
        ))),
    }
}

/// One hardware profile.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short name, e.g. `cpu-generic`.
    pub name: String,
    /// What hardware it is for.
    pub description: String,
    /// The backend (`--backend`).
    pub backend: String,
    /// CPU worker threads, 0 = one per core (`--threads`).
    pub threads: usize,
    /// Hashes per launch, 0 = the backend's default (`--batch`).
    pub batch: usize,
    /// Percent of each second spent mining, 1-100 (`--duty`).
    pub duty: u8,
    /// GPU device indices (`--devices`); empty means device 0 / the CPU.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<usize>,
    /// Where the figures come from.
    pub provenance: Provenance,
}

impl Profile {
    /// Parses profile text; `path` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for bad TOML or a value out of range.
    pub fn parse(path: &Path, text: &str) -> ConfigResult<Self> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let profile: Profile = toml::from_str(text).map_err(|e| parse_error(e.to_string()))?;
        if !(1..=100).contains(&profile.duty) {
            return Err(parse_error(format!(
                "duty {} is not 1-100 percent",
                profile.duty
            )));
        }
        if profile.name.trim().is_empty() || profile.backend.trim().is_empty() {
            return Err(parse_error("name and backend must not be empty".into()));
        }
        if profile.provenance.source.trim().is_empty() {
            return Err(parse_error(
                "provenance.source must say where the figures come from".into(),
            ));
        }
        let provenance = &profile.provenance;
        for (key, rate) in [
            ("hash_rate", provenance.hash_rate),
            ("default_hash_rate", provenance.default_hash_rate),
        ] {
            if let Some(rate) = rate {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(parse_error(format!(
                        "provenance.{key} {rate} is not positive"
                    )));
                }
            }
        }
        if let Some(date) = &provenance.date {
            if !is_rfc3339(date) {
                return Err(parse_error(format!(
                    "provenance.date {date:?} is not an RFC 3339 time such as 2026-11-29T02:18:00Z"
                )));
            }
        }
        if let Some(MachineInfo::Table(machine)) = &provenance.machine {
            if machine.cpu_model.trim().is_empty() || machine.cores == Some(0) {
                return Err(parse_error(
                    "provenance.machine needs a cpu_model and at least one core".into(),
                ));
            }
        }
        if let Some(versions) = &provenance.versions {
            if versions.bystack.trim().is_empty() {
                return Err(parse_error(
                    "provenance.versions.bystack must not be empty".into(),
                ));
            }
        }
        for (i, trial) in provenance.trials.iter().enumerate() {
            if trial.backend.trim().is_empty()
                || !(trial.hash_rate.is_finite() && trial.hash_rate > 0.0)
                || !(trial.spread.is_finite() && trial.spread >= 0.0)
            {
                return Err(parse_error(format!(
                    "provenance.trials[{i}]: needs a backend, a positive hash_rate and a \
                     spread of 0 or more (got {:?}, {}, {})",
                    trial.backend, trial.hash_rate, trial.spread
                )));
            }
        }
        Ok(profile)
    }

    /// Reads and parses a profile file.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`].
    pub fn load(path: &Path) -> ConfigResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: PathBuf::from(path),
            source,
        })?;
        Self::parse(path, &text)
    }
}

/// Whether `text` is an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then
/// `Z` or `±HH:MM` (`t`/`z` and a space for `T` allowed, as RFC 3339 permits).
fn is_rfc3339(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
            .then(|| text[range].parse::<u32>().unwrap_or(u32::MAX))
    };
    let in_range = |range, low, high| digits(range).is_some_and(|v| (low..=high).contains(&v));
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
        || digits(0..4).is_none()
        || !in_range(5..7, 1, 12)
        || !in_range(8..10, 1, 31)
        || !in_range(11..13, 0, 23)
        || !in_range(14..16, 0, 59)
        // 60: a leap second.
        || !in_range(17..19, 0, 60)
    {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &fraction[digits..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && (h1 - b'0') * 10 + (h2 - b'0') <= 23
                && (m1 - b'0') * 10 + (m2 - b'0') <= 59
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "x"
description = "test"
backend = "cpu"
threads = 2
batch = 0
duty = 50
[provenance]
kind = "estimated"
source = "a guess for the test"
"#;

    #[test]
    fn a_profile_parses_and_bad_ones_are_parse_errors() {
        let p = Profile::parse(Path::new("x.toml"), GOOD).unwrap();
        assert_eq!(p.duty, 50);
        assert_eq!(p.provenance.kind, ProvenanceKind::Estimated);
        for bad in [
            GOOD.replace("duty = 50", "duty = 0"),
            GOOD.replace("duty = 50", "duty = 50\nspeed = 1"),
            GOOD.replace("kind = \"estimated\"", "kind = \"hoped\""),
            GOOD.replace("source = \"a guess for the test\"", "source = \"\""),
            GOOD.replace("threads = 2\n", ""),
        ] {
            assert!(
                matches!(
                    Profile::parse(Path::new("x.toml"), &bad),
                    Err(ConfigError::Parse { .. })
                ),
                "{bad}"
            );
        }
    }

    const MEASURED: &str = r#"
name = "tuned"
description = "test"
backend = "cpu-avx2"
threads = 2
batch = 8
duty = 100
[provenance]
kind = "measured"
source = "bystack-bench tune on a test CPU"
hash_rate = 120.5
default_hash_rate = 110.25
date = "2026-11-29T02:18:00Z"
notes = "n"
[provenance.machine]
cpu_model = "Test CPU"
cpu_features = ["avx2"]
cores = 2
memory_bytes = 8589934592
os = "Linux"
[provenance.versions]
bystack = "0.1.0"
git_commit = "abc"
rustc = "rustc 1.89.0"
profile = "release"
[[provenance.trials]]
backend = "cpu-avx2"
threads = 2
batch = 8
hash_rate = 120.5
spread = 0.04
"#;

    #[test]
    fn measured_provenance_fields_are_optional_checked_and_round_trip() {
        let p = Profile::parse(Path::new("x.toml"), MEASURED).unwrap();
        let provenance = &p.provenance;
        assert_eq!(provenance.default_hash_rate, Some(110.25));
        assert_eq!(provenance.date.as_deref(), Some("2026-11-29T02:18:00Z"));
        let Some(MachineInfo::Table(machine)) = &provenance.machine else {
            panic!("a machine table")
        };
        assert_eq!(
            (machine.cpu_model.as_str(), machine.cores),
            ("Test CPU", Some(2))
        );
        assert_eq!(provenance.versions.as_ref().unwrap().bystack, "0.1.0");
        assert_eq!(provenance.trials.len(), 1);
        // What a tuner serialises reads back as the same profile.
        let written = toml::to_string(&p).unwrap();
        assert_eq!(Profile::parse(Path::new("x.toml"), &written).unwrap(), p);

        let machine_table = "[provenance.machine]\ncpu_model = \"Test CPU\"\n\
                             cpu_features = [\"avx2\"]\ncores = 2\n\
                             memory_bytes = 8589934592\nos = \"Linux\"\n";
        assert!(MEASURED.contains(machine_table));
        let text = MEASURED
            .replace(machine_table, "")
            .replace("notes = \"n\"", "notes = \"n\"\nmachine = \"2 vCPU VM\"");
        let p = Profile::parse(Path::new("x.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.provenance.machine,
            Some(MachineInfo::Text("2 vCPU VM".into()))
        );

        for bad in [
            MEASURED.replace("default_hash_rate = 110.25", "default_hash_rate = 0.0"),
            MEASURED.replace("2026-11-29T02:18:00Z", "29 Nov 2026"),
            MEASURED.replace("2026-11-29T02:18:00Z", "2026-13-29T02:18:00Z"),
            MEASURED.replace("cores = 2", "cores = 0"),
            MEASURED.replace("cores = 2", "cors = 2"),
            MEASURED.replace("cpu_model = \"Test CPU\"\n", ""),
            MEASURED.replace("bystack = \"0.1.0\"", "bystack = \"\""),
            MEASURED.replace("spread = 0.04", "spread = -1.0"),
            MEASURED.replace("hash_rate = 120.5\nspread", "hash_rate = 0.0\nspread"),
            MEASURED.replace("spread = 0.04", "spread = 0.04\nstable = true"),
            MEASURED.replace("notes = \"n\"", "machine = 3"),
        ] {
            assert!(
                matches!(
                    Profile::parse(Path::new("x.toml"), &bad),
                    Err(ConfigError::Parse { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn rfc3339_times_are_recognised() {
        for good in [
            "2026-11-29T02:18:00Z",
            "2026-11-29t02:18:00.123z",
            "2026-11-29 02:18:00+05:30",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2026-11-29",
            "2026-11-29T02:18:00",
            "2026-11-29T24:00:00Z",
            "2026-11-29T02:18:00.Z",
            "2026-11-29T02:18:00+5:30",
            "2026-00-29T02:18:00Z",
            "２026-11-29T02:18:00Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
