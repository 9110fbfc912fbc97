//! Hardware profiles (hw-profiles/*.toml, schema in hw-profiles/README.md): the backend,
//! threads, batch and duty cycle for a device class, and where those figures come from.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, ConfigResult};

/// Whether a profile's figures were measured on the hardware or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvenanceKind {
    /// Run on the named machine; `source` points at the results.
    Measured,
    /// Not run on such hardware; `source` says what the figures are derived from.
    Estimated,
}

/// Where a profile's figures come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Measured or estimated.
    pub kind: ProvenanceKind,
    /// The machine, results file or reasoning behind the figures.
    pub source: String,
    /// The hash rate expected per device at these settings, in H/s, if known.
    #[serde(default)]
    pub hash_rate: Option<f64>,
    /// Free text.
    #[serde(default)]
    pub notes: String,
}

/// One hardware profile.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    #[serde(default)]
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
        if let Some(rate) = profile.provenance.hash_rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(parse_error(format!(
                    "provenance.hash_rate {rate} is not positive"
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
}
