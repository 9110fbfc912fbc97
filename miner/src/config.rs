//! The miner's configuration: command-line flags ([`Cli`]), a TOML file (`--config`,
//! [`ConfigFile`]) and a hardware profile (`--profile`, [`crate::profile::Profile`]), merged
//! into one [`MinerConfig`]: a flag wins over the file, the file over the profile, the profile
//! over the defaults. Every bad value is a typed [`ConfigError`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::profile::Profile;

/// One stratum pool, as given by `--pool URL --user ACCOUNT.WORKER [--pass X]`; pools are
/// tried in the order given (failover).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct PoolConfig {
    /// `stratum+tcp://HOST:PORT`.
    pub url: String,
    /// The login, `ACCOUNT.WORKER` (a missing worker defaults to `0` on the pool's side).
    pub user: String,
    /// The password (pools generally ignore it).
    #[serde(default)]
    pub pass: String,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid TOML for its schema.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value out of range or malformed.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The flag or key.
        field: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Options that cannot go together.
    #[error("conflicting options: {0}")]
    Conflict(String),
}

/// Result alias for configuration.
pub type ConfigResult<T> = Result<T, ConfigError>;

/// `bystack-miner`: mines Bytom 1.x blocks (Tensority proof of work). With no source option it
/// starts an embedded devnet node and mines on it.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "bystack-miner", version, about)]
pub struct Cli {
    /// A TOML file with any of the options below (flags win over it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Solo mining against a node's HTTP API (get-work-json / submit-work-json).
    #[arg(long, value_name = "http://HOST:PORT")]
    pub node: Option<String>,
    /// A stratum pool; repeat for failover, in order.
    #[arg(long = "pool", value_name = "stratum+tcp://HOST:PORT")]
    pub pools: Vec<String>,
    /// The pool login ACCOUNT.WORKER: one for every pool, or one per --pool.
    #[arg(long = "user", value_name = "ACCOUNT.WORKER")]
    pub users: Vec<String>,
    /// The pool password: one for every pool, or one per --pool.
    #[arg(long = "pass", value_name = "X")]
    pub passes: Vec<String>,
    /// Tensority backend: auto, reference, cpu, cpu-avx2, cuda, wgpu, ...
    #[arg(long)]
    pub backend: Option<String>,
    /// GPU device indices, comma-separated (one worker per device).
    #[arg(long, value_name = "LIST")]
    pub devices: Option<String>,
    /// CPU worker threads (0 = one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Hashes per device launch for batched backends (0 = the backend's default).
    #[arg(long)]
    pub batch: Option<usize>,
    /// A hardware profile (hw-profiles/NAME.toml); flags override it.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Mine only this percent of each second (1-100), to cap heat and power.
    #[arg(long, value_name = "PERCENT")]
    pub duty: Option<u8>,
    /// Stop after this many blocks found.
    #[arg(long)]
    pub blocks: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Seconds between stats lines.
    #[arg(long, value_name = "SECONDS")]
    pub log_interval: Option<f64>,
    /// Serve /stats (JSON) and /metrics (Prometheus) on this address.
    #[arg(long, value_name = "ADDR")]
    pub api: Option<String>,
    /// Milliseconds between get-work polls in --node mode.
    #[arg(long, value_name = "MS")]
    pub poll_ms: Option<u64>,
}

/// The `--config` file: the same options as the flags, `pools` as a table array.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// As `--node`.
    pub node: Option<String>,
    /// As `--pool`/`--user`/`--pass`, in failover order.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// As `--backend`.
    pub backend: Option<String>,
    /// As `--devices`.
    pub devices: Option<Vec<usize>>,
    /// As `--threads`.
    pub threads: Option<usize>,
    /// As `--batch`.
    pub batch: Option<usize>,
    /// As `--profile` (relative to the current directory).
    pub profile: Option<PathBuf>,
    /// As `--duty`.
    pub duty: Option<u8>,
    /// As `--blocks`.
    pub blocks: Option<u64>,
    /// As `--seconds`.
    pub seconds: Option<f64>,
    /// As `--log-interval`.
    pub log_interval: Option<f64>,
    /// As `--api`.
    pub api: Option<String>,
    /// As `--poll-ms`.
    pub poll_ms: Option<u64>,
}

impl ConfigFile {
    /// Reads and parses a config file.
    ///
    /// # Errors
    /// [`ConfigError::Read`], [`ConfigError::Parse`].
    pub fn load(path: &Path) -> ConfigResult<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Where work comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// An embedded devnet node in this process.
    Embedded,
    /// Solo against a node's HTTP API at this URL.
    Node(String),
    /// Stratum pools, in failover order.
    Pools(Vec<PoolConfig>),
}

/// Everything a run needs, merged and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerConfig {
    /// The work source.
    pub mode: Mode,
    /// The backend name.
    pub backend: String,
    /// GPU device indices (empty: device 0 / the CPU).
    pub devices: Vec<usize>,
    /// CPU threads (0 = one per core).
    pub threads: usize,
    /// Batch size (0 = the backend's default).
    pub batch: usize,
    /// Duty cycle in percent.
    pub duty: u8,
    /// Stop after this many blocks.
    pub blocks: Option<u64>,
    /// Stop after this many seconds.
    pub seconds: Option<f64>,
    /// Between stats lines.
    pub log_interval: Duration,
    /// The stats API address.
    pub api: Option<SocketAddr>,
    /// Between get-work polls (node mode).
    pub poll_interval: Duration,
    /// The profile applied, if any.
    pub profile: Option<Profile>,
}

/// Default seconds between stats lines.
pub const DEFAULT_LOG_INTERVAL_S: f64 = 10.0;
/// Default milliseconds between get-work polls.
pub const DEFAULT_POLL_MS: u64 = 500;

impl MinerConfig {
    /// Merges flags, the `--config` file and the profile.
    ///
    /// # Errors
    /// Any [`ConfigError`]: unreadable files, bad values, conflicting sources.
    pub fn from_cli(cli: &Cli) -> ConfigResult<Self> {
        let file = match &cli.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        let profile_path = cli.profile.clone().or(file.profile.clone());
        let profile = profile_path.as_deref().map(Profile::load).transpose()?;

        let cli_pools = pools_from_flags(cli)?;
        let node = cli.node.clone().or(file.node.clone());
        let pools = if cli_pools.is_empty() {
            file.pools.clone()
        } else {
            cli_pools
        };
        let mode = match (node, pools.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::Conflict(
                    "--node and --pool are different work sources; give one".into(),
                ))
            }
            (Some(url), true) => Mode::Node(url),
            (None, false) => Mode::Pools(pools),
            (None, true) => Mode::Embedded,
        };

        let devices = match &cli.devices {
            Some(list) => parse_devices(list)?,
            None => file
                .devices
                .clone()
                .or_else(|| profile.as_ref().map(|p| p.devices.clone()))
                .unwrap_or_default(),
        };
        let duty = cli
            .duty
            .or(file.duty)
            .or(profile.as_ref().map(|p| p.duty))
            .unwrap_or(100);
        if !(1..=100).contains(&duty) {
            return Err(invalid("duty", duty, "must be 1-100 percent"));
        }
        let seconds = cli.seconds.or(file.seconds);
        if let Some(s) = seconds {
            if !(s.is_finite() && s > 0.0) {
                return Err(invalid("seconds", s, "must be a positive number"));
            }
        }
        let blocks = cli.blocks.or(file.blocks);
        if blocks == Some(0) {
            return Err(invalid("blocks", 0, "must be at least 1"));
        }
        let log_interval = cli
            .log_interval
            .or(file.log_interval)
            .unwrap_or(DEFAULT_LOG_INTERVAL_S);
        if !(log_interval.is_finite() && (0.1..=86_400.0).contains(&log_interval)) {
            return Err(invalid(
                "log-interval",
                log_interval,
                "must be 0.1 to 86400 seconds",
            ));
        }
        let api = cli
            .api
            .clone()
            .or(file.api.clone())
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map_err(|e| invalid("api", &a, &e.to_string()))
            })
            .transpose()?;
        let poll_ms = cli.poll_ms.or(file.poll_ms).unwrap_or(DEFAULT_POLL_MS);
        if !(10..=60_000).contains(&poll_ms) {
            return Err(invalid("poll-ms", poll_ms, "must be 10 to 60000"));
        }
        let backend = cli
            .backend
            .clone()
            .or(file.backend.clone())
            .or(profile.as_ref().map(|p| p.backend.clone()))
            .unwrap_or_else(|| "auto".to_string());
        if backend.trim().is_empty() {
            return Err(invalid("backend", &backend, "empty"));
        }
        Ok(Self {
            mode,
            backend,
            devices,
            threads: cli
                .threads
                .or(file.threads)
                .or(profile.as_ref().map(|p| p.threads))
                .unwrap_or(0),
            batch: cli
                .batch
                .or(file.batch)
                .or(profile.as_ref().map(|p| p.batch))
                .unwrap_or(0),
            duty,
            blocks,
            seconds,
            log_interval: Duration::from_secs_f64(log_interval),
            api,
            poll_interval: Duration::from_millis(poll_ms),
            profile,
        })
    }
}

fn invalid(field: &'static str, value: impl std::fmt::Display, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// `--pool`, `--user`, `--pass` paired by position; a single `--user` or `--pass` applies to
/// every pool.
fn pools_from_flags(cli: &Cli) -> ConfigResult<Vec<PoolConfig>> {
    if cli.pools.is_empty() {
        if !cli.users.is_empty() || !cli.passes.is_empty() {
            return Err(ConfigError::Conflict("--user/--pass without --pool".into()));
        }
        return Ok(Vec::new());
    }
    let pick = |values: &[String], i: usize, flag: &'static str| -> ConfigResult<String> {
        match values.len() {
            0 => Ok(String::new()),
            1 => Ok(values[0].clone()),
            n if n == cli.pools.len() => Ok(values[i].clone()),
            n => Err(ConfigError::Conflict(format!(
                "{n} {flag} values for {} pools: give one, or one per --pool",
                cli.pools.len()
            ))),
        }
    };
    cli.pools
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let user = pick(&cli.users, i, "--user")?;
            if user.is_empty() {
                return Err(invalid("user", url, "every --pool needs a --user"));
            }
            if !url.starts_with("stratum+tcp://") {
                return Err(invalid("pool", url, "expected stratum+tcp://HOST:PORT"));
            }
            Ok(PoolConfig {
                url: url.clone(),
                user,
                pass: pick(&cli.passes, i, "--pass")?,
            })
        })
        .collect()
}

/// `0,1,3` → `[0, 1, 3]`.
fn parse_devices(list: &str) -> ConfigResult<Vec<usize>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|e| invalid("devices", list, &format!("{s:?}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("bystack-miner").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn no_arguments_mean_the_embedded_devnet_with_defaults() {
        let c = MinerConfig::from_cli(&cli(&[])).unwrap();
        assert_eq!(c.mode, Mode::Embedded);
        assert_eq!(c.backend, "auto");
        assert_eq!(c.duty, 100);
        assert_eq!(c.poll_interval, Duration::from_millis(500));
    }

    #[test]
    fn pools_pair_users_and_passes_by_position_or_share_one() {
        let c = MinerConfig::from_cli(&cli(&[
            "--pool",
            "stratum+tcp://a:1",
            "--pool",
            "stratum+tcp://b:2",
            "--user",
            "acct.w1",
        ]))
        .unwrap();
        let Mode::Pools(pools) = c.mode else {
            panic!("pools")
        };
        assert_eq!(pools.len(), 2);
        assert!(pools
            .iter()
            .all(|p| p.user == "acct.w1" && p.pass.is_empty()));
        let c = MinerConfig::from_cli(&cli(&[
            "--pool",
            "stratum+tcp://a:1",
            "--user",
            "u1",
            "--pass",
            "p1",
            "--pool",
            "stratum+tcp://b:2",
            "--user",
            "u2",
            "--pass",
            "p2",
        ]))
        .unwrap();
        let Mode::Pools(pools) = c.mode else {
            panic!("pools")
        };
        assert_eq!(pools[1].user, "u2");
        assert_eq!(pools[1].pass, "p2");
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let err = |args: &[&str]| MinerConfig::from_cli(&cli(args)).unwrap_err();
        assert!(matches!(
            err(&["--duty", "0"]),
            ConfigError::Invalid { field: "duty", .. }
        ));
        assert!(matches!(
            err(&["--duty", "101"]),
            ConfigError::Invalid { field: "duty", .. }
        ));
        assert!(matches!(
            err(&["--seconds=-1"]),
            ConfigError::Invalid {
                field: "seconds",
                ..
            }
        ));
        assert!(matches!(
            err(&["--blocks", "0"]),
            ConfigError::Invalid {
                field: "blocks",
                ..
            }
        ));
        assert!(matches!(
            err(&["--api", "nope"]),
            ConfigError::Invalid { field: "api", .. }
        ));
        assert!(matches!(
            err(&["--devices", "0,x"]),
            ConfigError::Invalid {
                field: "devices",
                ..
            }
        ));
        assert!(matches!(
            err(&["--pool", "http://a:1", "--user", "u"]),
            ConfigError::Invalid { field: "pool", .. }
        ));
        assert!(matches!(
            err(&["--pool", "stratum+tcp://a:1"]),
            ConfigError::Invalid { field: "user", .. }
        ));
        assert!(matches!(err(&["--user", "u"]), ConfigError::Conflict(_)));
        assert!(matches!(
            err(&[
                "--node",
                "http://a:1",
                "--pool",
                "stratum+tcp://a:1",
                "--user",
                "u"
            ]),
            ConfigError::Conflict(_)
        ));
        assert!(matches!(
            err(&["--config", "/nonexistent/miner.toml"]),
            ConfigError::Read { .. }
        ));
    }

    #[test]
    fn the_config_file_fills_in_what_flags_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("miner.toml");
        std::fs::write(
            &path,
            "backend = \"reference\"\nthreads = 3\nduty = 40\nseconds = 2.5\n\
             [[pools]]\nurl = \"stratum+tcp://p:9119\"\nuser = \"a.b\"\n",
        )
        .unwrap();
        let path_str = path.to_str().unwrap();
        let c = MinerConfig::from_cli(&cli(&["--config", path_str, "--threads", "1"])).unwrap();
        assert_eq!(c.backend, "reference");
        assert_eq!(c.threads, 1, "the flag wins");
        assert_eq!(c.duty, 40);
        assert_eq!(c.seconds, Some(2.5));
        assert_eq!(
            c.mode,
            Mode::Pools(vec![PoolConfig {
                url: "stratum+tcp://p:9119".into(),
                user: "a.b".into(),
                pass: String::new()
            }])
        );
        std::fs::write(&path, "speed = 3\n").unwrap();
        assert!(matches!(
            MinerConfig::from_cli(&cli(&["--config", path_str])),
            Err(ConfigError::Parse { .. })
        ));
    }
}
