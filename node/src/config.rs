//! The node's settings: command-line flags, or a TOML file (`--config FILE`) with the same
//! names, flags winning over the file.
//!
//! ```toml
//! network = "devnet"              # mainnet | testnet | solonet | devnet
//! data_dir = "/var/lib/bystack"   # the chain database (RocksDB)
//! api = "127.0.0.1:9888"          # Bytom-compatible HTTP API; omit to serve none
//! listen = ["/ip4/0.0.0.0/tcp/46659"]
//! peers = ["/ip4/10.0.0.2/tcp/46659"]
//! mining_address = "dm1q…"        # or mining_program = "0014…" (hex control program)
//! pow_backend = "auto"            # Tensority backend for proof-of-work checks
//! sync_window = 128               # blocks per PSWV window while syncing
//! stratum = "0.0.0.0:3333"        # BTM stratum server for mining rigs; omit to serve none
//! stratum_share_seconds = 20      # vardiff aims at one share per this many seconds
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bystack_engine::consensus::Network;
use libp2p::Multiaddr;
use serde::Deserialize;

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An unknown network name.
    #[error("unknown network `{0}` (expected mainnet, testnet, solonet or devnet)")]
    Network(String),
    /// A listen or peer address that is not a multiaddr.
    #[error("`{value}` is not a multiaddr: {message}")]
    Multiaddr {
        /// The text given.
        value: String,
        /// The parser's message.
        message: String,
    },
    /// An API address that is not `IP:PORT`.
    #[error("API address `{0}` is not IP:PORT")]
    ApiAddr(String),
    /// A mining program that is not hex.
    #[error("mining program `{0}` is not hex")]
    MiningProgram(String),
    /// Both a mining address and a raw mining program were given.
    #[error("give either a mining address or a mining program, not both")]
    MiningConflict,
    /// No data directory.
    #[error("no data directory: pass --data-dir or set data_dir in the config file")]
    NoDataDir,
    /// A zero sync window.
    #[error("sync window must be at least 1 block")]
    SyncWindow,
    /// A stratum address that is not `IP:PORT`.
    #[error("stratum address `{0}` is not IP:PORT")]
    StratumAddr(String),
    /// A zero share interval.
    #[error("stratum share interval must be at least 1 second")]
    StratumShareSeconds,
}

/// The settings as given: every field optional, from flags or from the file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    /// Network name.
    pub network: Option<String>,
    /// Chain database directory.
    pub data_dir: Option<PathBuf>,
    /// HTTP API address.
    pub api: Option<String>,
    /// p2p listen multiaddrs.
    #[serde(default)]
    pub listen: Vec<String>,
    /// p2p peers to dial.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Coinbase address (bech32 of the network).
    pub mining_address: Option<String>,
    /// Coinbase control program, hex.
    pub mining_program: Option<String>,
    /// Tensority backend for PoW checks.
    pub pow_backend: Option<String>,
    /// Blocks per PSWV window while syncing.
    pub sync_window: Option<usize>,
    /// Stratum server address.
    pub stratum: Option<String>,
    /// Seconds per share that vardiff aims at.
    pub stratum_share_seconds: Option<u64>,
}

impl RawSettings {
    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<RawSettings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RawSettings::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text; the error is the parser's message.
    pub fn from_toml(text: &str) -> Result<RawSettings, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// These settings with every field that `over` sets replaced by `over`'s (lists replace
    /// lists when non-empty).
    pub fn overridden_by(self, over: RawSettings) -> RawSettings {
        RawSettings {
            network: over.network.or(self.network),
            data_dir: over.data_dir.or(self.data_dir),
            api: over.api.or(self.api),
            listen: if over.listen.is_empty() {
                self.listen
            } else {
                over.listen
            },
            peers: if over.peers.is_empty() {
                self.peers
            } else {
                over.peers
            },
            mining_address: over.mining_address.or(self.mining_address),
            mining_program: over.mining_program.or(self.mining_program),
            pow_backend: over.pow_backend.or(self.pow_backend),
            sync_window: over.sync_window.or(self.sync_window),
            stratum: over.stratum.or(self.stratum),
            stratum_share_seconds: over.stratum_share_seconds.or(self.stratum_share_seconds),
        }
    }

    /// Checks every field and fills in defaults.
    pub fn resolve(self) -> Result<Settings, ConfigError> {
        let network = match self.network.as_deref() {
            None => Network::Devnet,
            Some(name) => {
                Network::from_name(name).ok_or_else(|| ConfigError::Network(name.to_string()))?
            }
        };
        let data_dir = self.data_dir.ok_or(ConfigError::NoDataDir)?;
        let api = self
            .api
            .map(|a| a.parse().map_err(|_| ConfigError::ApiAddr(a)))
            .transpose()?;
        let stratum = self
            .stratum
            .map(|a| a.parse().map_err(|_| ConfigError::StratumAddr(a)))
            .transpose()?;
        let stratum_share_seconds = self
            .stratum_share_seconds
            .unwrap_or(DEFAULT_STRATUM_SHARE_SECONDS);
        if stratum_share_seconds == 0 {
            return Err(ConfigError::StratumShareSeconds);
        }
        let parse_all = |list: Vec<String>| -> Result<Vec<Multiaddr>, ConfigError> {
            list.into_iter()
                .map(|value| {
                    value
                        .parse::<Multiaddr>()
                        .map_err(|e| ConfigError::Multiaddr {
                            message: e.to_string(),
                            value,
                        })
                })
                .collect()
        };
        let listen = parse_all(self.listen)?;
        let peers = parse_all(self.peers)?;
        let mining = match (self.mining_address, self.mining_program) {
            (Some(_), Some(_)) => return Err(ConfigError::MiningConflict),
            (Some(address), None) => Some(MiningPayee::Address(address)),
            (None, Some(hex)) => Some(MiningPayee::Program(
                bystack_kernels::hex::decode(&hex).map_err(|_| ConfigError::MiningProgram(hex))?,
            )),
            (None, None) => None,
        };
        let sync_window = self.sync_window.unwrap_or(DEFAULT_SYNC_WINDOW);
        if sync_window == 0 {
            return Err(ConfigError::SyncWindow);
        }
        Ok(Settings {
            network,
            data_dir,
            api,
            listen,
            peers,
            mining,
            pow_backend: self.pow_backend.unwrap_or_else(|| "auto".to_string()),
            sync_window,
            stratum,
            stratum_share_seconds,
        })
    }
}

/// Blocks per PSWV window while syncing, unless configured.
pub const DEFAULT_SYNC_WINDOW: usize = 128;

/// Seconds per share that the stratum server's vardiff aims at, unless configured (about three
/// shares a minute, as production BTM pools do).
pub const DEFAULT_STRATUM_SHARE_SECONDS: u64 = 20;

/// Who the node's block templates pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MiningPayee {
    /// A bech32 address of the node's network (decoded when the node starts).
    Address(String),
    /// A raw control program.
    Program(Vec<u8>),
}

/// Checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The network.
    pub network: Network,
    /// Chain database directory.
    pub data_dir: PathBuf,
    /// HTTP API address, if served.
    pub api: Option<SocketAddr>,
    /// p2p listen addresses.
    pub listen: Vec<Multiaddr>,
    /// p2p peers to dial.
    pub peers: Vec<Multiaddr>,
    /// Coinbase payee.
    pub mining: Option<MiningPayee>,
    /// Tensority backend for PoW checks.
    pub pow_backend: String,
    /// Blocks per PSWV window while syncing.
    pub sync_window: usize,
    /// Stratum server address, if served.
    pub stratum: Option<SocketAddr>,
    /// Seconds per share that vardiff aims at.
    pub stratum_share_seconds: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> RawSettings {
        RawSettings {
            data_dir: Some(PathBuf::from("/tmp/x")),
            ..RawSettings::default()
        }
    }

    #[test]
    fn defaults_are_devnet_without_api() {
        let s = flags().resolve().unwrap();
        assert_eq!(s.network, Network::Devnet);
        assert_eq!(s.api, None);
        assert!(s.listen.is_empty() && s.peers.is_empty());
        assert_eq!(s.pow_backend, "auto");
        assert_eq!(s.sync_window, DEFAULT_SYNC_WINDOW);
        assert_eq!(s.stratum, None);
        assert_eq!(s.stratum_share_seconds, DEFAULT_STRATUM_SHARE_SECONDS);
    }

    #[test]
    fn file_is_parsed_and_flags_win() {
        let file = RawSettings::from_toml(
            r#"
            network = "testnet"
            data_dir = "/data"
            api = "127.0.0.1:9888"
            listen = ["/ip4/0.0.0.0/tcp/46656"]
            peers = ["/ip4/10.0.0.2/tcp/46656", "/ip4/10.0.0.3/tcp/46656"]
            mining_program = "0014aabb"
            sync_window = 64
            stratum = "127.0.0.1:3333"
            stratum_share_seconds = 1
            "#,
        )
        .unwrap();
        let over = RawSettings {
            network: Some("solonet".into()),
            peers: vec!["/ip4/127.0.0.1/tcp/1".into()],
            ..RawSettings::default()
        };
        let s = file.overridden_by(over).resolve().unwrap();
        assert_eq!(s.network, Network::Solonet);
        assert_eq!(s.data_dir, PathBuf::from("/data"));
        assert_eq!(s.api, Some("127.0.0.1:9888".parse().unwrap()));
        assert_eq!(s.listen.len(), 1);
        assert_eq!(s.peers, vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()]);
        assert_eq!(
            s.mining,
            Some(MiningPayee::Program(vec![0x00, 0x14, 0xaa, 0xbb]))
        );
        assert_eq!(s.sync_window, 64);
        assert_eq!(s.stratum, Some("127.0.0.1:3333".parse().unwrap()));
        assert_eq!(s.stratum_share_seconds, 1);
    }

    #[test]
    fn bad_values_are_typed_errors() {
        let bad = |r: RawSettings| r.resolve().unwrap_err();
        assert!(matches!(
            bad(RawSettings {
                network: Some("moonnet".into()),
                ..flags()
            }),
            ConfigError::Network(n) if n == "moonnet"
        ));
        assert!(matches!(
            bad(RawSettings {
                listen: vec!["tcp://1.2.3.4:5".into()],
                ..flags()
            }),
            ConfigError::Multiaddr { value, .. } if value == "tcp://1.2.3.4:5"
        ));
        assert!(matches!(
            bad(RawSettings {
                api: Some("localhost".into()),
                ..flags()
            }),
            ConfigError::ApiAddr(_)
        ));
        assert!(matches!(
            bad(RawSettings {
                mining_program: Some("zz".into()),
                ..flags()
            }),
            ConfigError::MiningProgram(_)
        ));
        assert!(matches!(
            bad(RawSettings {
                mining_program: Some("00".into()),
                mining_address: Some("dm1q".into()),
                ..flags()
            }),
            ConfigError::MiningConflict
        ));
        assert!(matches!(
            bad(RawSettings {
                sync_window: Some(0),
                ..flags()
            }),
            ConfigError::SyncWindow
        ));
        assert!(matches!(
            bad(RawSettings::default()),
            ConfigError::NoDataDir
        ));
        assert!(matches!(
            bad(RawSettings {
                stratum: Some("3333".into()),
                ..flags()
            }),
            ConfigError::StratumAddr(_)
        ));
        assert!(matches!(
            bad(RawSettings {
                stratum_share_seconds: Some(0),
                ..flags()
            }),
            ConfigError::StratumShareSeconds
        ));
    }

    #[test]
    fn unknown_or_mistyped_keys_are_rejected_with_position() {
        let e = RawSettings::from_toml("netwrok = \"devnet\"").unwrap_err();
        assert!(e.contains("netwrok"), "{e}");
        let e = RawSettings::from_toml("sync_window = \"big\"").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        assert!(RawSettings::from_toml("listen = [").is_err());
    }

    #[test]
    fn unreadable_file_is_a_read_error() {
        let e = RawSettings::from_file(Path::new("/nonexistent/bystack.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    }
}
