//! The miner's configuration: command-line flags, a TOML file (`--config`), and a hardware
//! profile (`--profile`), merged with flags winning over the file and the file over the
//! profile.

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
