//! The `bystack-node` binary.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use bystack_engine::validation::TensorityPow;
use bystack_engine::Hash;
use bystack_node::config::RawSettings;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bystack-node",
    version,
    about = "The bystack Bytom node",
    long_about = "The bystack Bytom node. Without a subcommand it runs the node: the chain \
                  database under --data-dir, the Bytom-compatible HTTP API on --api, libp2p \
                  relay and sync on --listen / --peer, the BTM stratum server on --stratum. Settings may come from a TOML file \
                  (--config); flags win over the file."
)]
struct Cli {
    /// Tensority backend for proof-of-work checks: auto, reference, cpu, float, wgpu, cuda, …
    /// A device backend's failing results are re-checked on the CPU. [default: auto]
    #[arg(long, global = true, value_name = "NAME")]
    pow_backend: Option<String>,
    #[command(flatten)]
    run: RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The flags of the node itself (no subcommand).
#[derive(Args)]
struct RunArgs {
    /// TOML settings file (same names as the flags, with `_`: data_dir, mining_address, …).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// mainnet, testnet, solonet or devnet. [default: devnet]
    #[arg(long, value_name = "NAME")]
    network: Option<String>,
    /// Directory of the chain database (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve the Bytom-compatible HTTP API on this address (e.g. 127.0.0.1:9888).
    #[arg(long, value_name = "IP:PORT")]
    api: Option<String>,
    /// libp2p listen address (repeatable), e.g. /ip4/0.0.0.0/tcp/46659.
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// libp2p peer to dial (repeatable), e.g. /ip4/10.0.0.2/tcp/46659.
    #[arg(long, value_name = "MULTIADDR")]
    peer: Vec<String>,
    /// Coinbase address of block templates (bech32 of the network: bm, tm, sm, dm).
    #[arg(long, value_name = "ADDRESS")]
    mining_address: Option<String>,
    /// Coinbase control program of block templates, hex (instead of --mining-address).
    #[arg(long, value_name = "HEX")]
    mining_program: Option<String>,
    /// Blocks per PSWV window while syncing. [default: 128]
    #[arg(long, value_name = "BLOCKS")]
    sync_window: Option<usize>,
    /// Serve the BTM stratum protocol to mining rigs on this address (e.g. 0.0.0.0:3333).
    #[arg(long, value_name = "IP:PORT")]
    stratum: Option<String>,
    /// Vardiff aims at one share per this many seconds per session. [default: 20]
    #[arg(long, value_name = "SECONDS")]
    stratum_share_seconds: Option<u64>,
}

impl RunArgs {
    fn raw(self, pow_backend: Option<String>) -> RawSettings {
        RawSettings {
            network: self.network,
            data_dir: self.data_dir,
            api: self.api,
            listen: self.listen,
            peers: self.peer,
            mining_address: self.mining_address,
            mining_program: self.mining_program,
            pow_backend,
            sync_window: self.sync_window,
            stratum: self.stratum,
            stratum_share_seconds: self.stratum_share_seconds,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Decodes a serialized block header, block or transaction (hex; the first byte, the
    /// serflag, decides) and prints one JSON object with its fields and computed IDs.
    Decode {
        /// PoW seed (64 hex characters): adds the Tensority result and verdict for headers and
        /// blocks.
        #[arg(long, value_name = "SEED_HEX")]
        seed: Option<String>,
        /// The serialized structure, in hex.
        #[arg(value_name = "HEX")]
        hex: String,
    },
    /// Reads `BLOCK_HEX SEED_HEX` lines from stdin (serialized blocks or headers), verifies
    /// every proof of work in one batch and prints one JSON line per block. Exits 0 if all
    /// are valid, 1 if any is invalid, 2 on bad input.
    VerifyPow {
        /// Worker threads of the backend (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let backend = cli
        .pow_backend
        .clone()
        .unwrap_or_else(|| "auto".to_string());
    match cli.command {
        None => run_node(cli.run, cli.pow_backend),
        Some(Command::Decode { seed, hex }) => {
            let seed = match seed.as_deref().map(Hash::from_hex).transpose() {
                Ok(seed) => seed,
                Err(e) => {
                    eprintln!("error: --seed: {e}");
                    return ExitCode::from(2);
                }
            };
            match bystack_node::decode::decode_hex_with_backend(&hex, seed.as_ref(), &backend) {
                Ok(value) => {
                    println!("{value}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Command::VerifyPow { threads }) => verify_pow(&backend, threads),
    }
}

/// Without RocksDB there is no chain database to run on.
#[cfg(not(feature = "rocksdb"))]
fn run_node(_args: RunArgs, _pow_backend: Option<String>) -> ExitCode {
    eprintln!(
        "error: this bystack-node was built without the `rocksdb` feature and cannot run a node"
    );
    ExitCode::from(2)
}

/// Runs the node until Ctrl-C or SIGTERM. Exit status 2 for bad settings, 1 for a failure to
/// start or run.
#[cfg(feature = "rocksdb")]
fn run_node(args: RunArgs, pow_backend: Option<String>) -> ExitCode {
    init_logging();
    let file = match &args.config {
        Some(path) => match RawSettings::from_file(path) {
            Ok(file) => file,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => RawSettings::default(),
    };
    let settings = match file.overridden_by(args.raw(pow_backend)).resolve() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let running = match bystack_node::run::start(&settings).await {
            Ok(running) => running,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        wait_for_signal().await;
        tracing::info!("stopping");
        running.stop().await;
        ExitCode::SUCCESS
    })
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

fn verify_pow(backend: &str, threads: usize) -> ExitCode {
    use bystack_node::verify;
    if io::stdin().is_terminal() {
        eprintln!("reading `BLOCK_HEX SEED_HEX` lines from stdin (Ctrl-D ends)");
    }
    let requests = match verify::read_requests(io::stdin().lock()) {
        Ok(requests) => requests,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let pow = match TensorityPow::open(backend, threads) {
        Ok(pow) => pow,
        Err(e) => {
            eprintln!("error: --pow-backend {backend}: {e}");
            return ExitCode::from(2);
        }
    };
    let verdicts = match verify::verify(&requests, &pow) {
        Ok(verdicts) => verdicts,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for v in &verdicts {
        println!("{}", v.to_json());
    }
    if verdicts.iter().all(|v| v.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
