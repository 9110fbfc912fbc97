//! `bystack-miner`: see miner/README.md, or `bystack-miner --help`.

use std::process::ExitCode;

use anyhow::Context;
use bystack_miner::backends::open_devices;
use bystack_miner::config::{Cli, MinerConfig, Mode};
use bystack_miner::embedded::{open_devnet_node, EmbeddedSource, MiningKey};
use bystack_miner::memory::{mib, rss_bytes};
use bystack_miner::run::{run, RunOptions};
use bystack_miner::solo::NodeSource;
use bystack_miner::stratum::{StratumOptions, StratumSource};
use bystack_miner::work::WorkSource;
use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,bystack_miner=info")),
        )
        .init();
    let cli = Cli::parse();
    let config = match MinerConfig::from_cli(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mine(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn mine(config: MinerConfig) -> anyhow::Result<()> {
    if let Some(rss) = rss_bytes() {
        println!("memory at start: RSS {}", mib(rss));
    }
    if let Some(profile) = &config.profile {
        println!(
            "profile {}: {} ({:?}: {})",
            profile.name, profile.description, profile.provenance.kind, profile.provenance.source
        );
    }
    let devices = open_devices(
        &config.backend,
        &config.devices,
        config.threads,
        config.batch,
    )
    .with_context(|| format!("opening backend {:?}", config.backend))?;
    // The embedded node's directory lives as long as the run.
    let mut _data_dir = None;
    let source: Box<dyn WorkSource> = match &config.mode {
        Mode::Embedded => {
            let key = MiningKey::generate()?;
            let dir = tempfile::Builder::new()
                .prefix("bystack-miner-devnet-")
                .tempdir()
                .context("creating the devnet data directory")?;
            let node = open_devnet_node(dir.path(), key.program.clone(), 2)?;
            println!("embedded devnet node in {}", dir.path().display());
            println!("mining address: {}", key.address);
            println!(
                "mining key seed (keep it to spend the rewards): {}",
                bystack_miner::kernels::hex::encode(&key.seed)
            );
            _data_dir = Some(dir);
            Box::new(EmbeddedSource::new(node))
        }
        Mode::Node(url) => Box::new(NodeSource::new(url, config.poll_interval)?),
        Mode::Pools(pools) => pool_source(pools)?,
    };
    let options = RunOptions {
        blocks: config.blocks,
        seconds: config.seconds,
        duty_percent: config.duty,
        log_interval: config.log_interval,
        api: config.api,
    };
    if config.duty < 100 {
        println!("duty cycle: mining {}% of each second", config.duty);
    }
    let summary = run(source, devices, options, shutdown_signal()).await?;
    println!("{}", summary.report());
    Ok(())
}

/// Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The stratum source over `pools`, in failover order.
fn pool_source(pools: &[bystack_miner::config::PoolConfig]) -> anyhow::Result<Box<dyn WorkSource>> {
    for (i, pool) in pools.iter().enumerate() {
        println!("pool {}: {} as {}", i + 1, pool.url, pool.user);
    }
    Ok(Box::new(StratumSource::new(
        pools.to_vec(),
        StratumOptions::default(),
    )?))
}
