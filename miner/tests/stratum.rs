//! The miner's stratum client against the node's stratum server on loopback, with an
//! in-process devnet node (memory store, real Tensority checks; one hash in 64 is a block):
//! shares accepted and blocks found through shares and accepted by the chain; failover from
//! a dead first pool; the server's hash-rate estimate against the miner's own figure.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bystack_engine::consensus::Network;
use bystack_engine::genesis::genesis_block;
use bystack_engine::validation::TensorityPow;
use bystack_kernels::open_backend;
use bystack_miner::config::PoolConfig;
use bystack_miner::device::Device;
use bystack_miner::run::{run, RunOptions, Summary};
use bystack_miner::stratum::{StratumOptions, StratumSource};
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{MemoryKv, Store};
use bystack_node::stratum::{SessionSnapshot, StratumConfig, StratumServer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Pool {
    server: Arc<StratumServer<MemoryKv>>,
    node: Arc<Node<MemoryKv>>,
    url: String,
    _stop: oneshot::Sender<()>,
}

async fn pool(config: StratumConfig) -> Pool {
    let genesis = genesis_block(Network::Devnet);
    let pow = Arc::new(TensorityPow::open("cpu", 1).expect("cpu backend"));
    let chain = Chain::open(Store::in_memory(), &genesis, pow, ChainConfig::default()).unwrap();
    let node = Node::new(chain, NodeConfig::new(Network::Devnet));
    let server = StratumServer::new(
        node.clone(),
        StratumConfig {
            verify_backend: "cpu".into(),
            verify_threads: 1,
            ..config
        },
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("stratum+tcp://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    Pool {
        server,
        node,
        url,
        _stop: stop,
    }
}

fn pool_config(url: &str) -> PoolConfig {
    PoolConfig {
        url: url.to_string(),
        user: "acct.rig1".into(),
        pass: "x".into(),
    }
}

fn cpu_device() -> Device {
    Device {
        name: "cpu".into(),
        backend: Arc::from(open_backend("cpu", 1).unwrap()),
        chunk: 8,
    }
}

/// An address nothing listens on.
async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn mine(
    urls: &[String],
    options: RunOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Summary {
    let pools = urls.iter().map(|u| pool_config(u)).collect();
    let source = StratumSource::new(pools, StratumOptions::default()).unwrap();
    run(Box::new(source), vec![cpu_device()], options, stop)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miner_finds_blocks_through_shares_and_the_chain_accepts_them() {
    let pool = pool(StratumConfig {
        initial_difficulty: 8,
        ..StratumConfig::default()
    })
    .await;
    // Mine until the chain holds two blocks: two block-meeting shares on one job make one
    // block and a stale sibling, so the miner's own block count cannot be the stop rule.
    let options = RunOptions {
        seconds: Some(60.0),
        ..RunOptions::default()
    };
    let node = pool.node.clone();
    let two_blocks = async move {
        while node.tip().height < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let summary = mine(std::slice::from_ref(&pool.url), options, two_blocks).await;
    assert!(summary.stats.blocks >= 2, "{}", summary.report());
    assert!(summary.stats.accepted >= summary.stats.blocks);
    assert_eq!(summary.stats.rejected, 0, "{}", summary.report());
    // The blocks went through the server into the chain.
    let counters = pool.server.counters();
    for _ in 0..100 {
        if counters.blocks_accepted.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(counters.blocks_accepted.load(Ordering::SeqCst) >= 2);
    assert!(pool.node.tip().height >= 2);
    let block = pool.node.block_by_height(1).unwrap().unwrap();
    // The nonce is in session 0's range, above the server's prefix.
    assert_eq!(block.header.nonce >> 60, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_pool_fails_over_to_the_second_within_five_seconds() {
    let alive = pool(StratumConfig {
        initial_difficulty: 4,
        ..StratumConfig::default()
    })
    .await;
    let dead = format!("stratum+tcp://{}", dead_address().await);
    let server = alive.server.clone();
    let (elapsed_tx, elapsed_rx) = oneshot::channel();
    let started = Instant::now();
    let watcher = async move {
        while server.counters().accepted.load(Ordering::SeqCst) == 0 {
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = elapsed_tx.send(started.elapsed());
    };
    let summary = mine(
        &[dead, alive.url.clone()],
        RunOptions {
            seconds: Some(40.0),
            ..RunOptions::default()
        },
        watcher,
    )
    .await;
    let elapsed = elapsed_rx.await.unwrap();
    println!("first share accepted by the second pool after {elapsed:?}");
    assert!(summary.stats.accepted >= 1, "{}", summary.report());
    assert!(
        elapsed < Duration::from_secs(5),
        "first accepted share on the second pool after {elapsed:?}"
    );
}

/// Mines for `seconds` against a server aiming at one share per `interval`; returns the
/// server's estimate (sampled just before the miner stops) and the miner's own average.
async fn hash_rates(seconds: u64, interval: Duration) -> (SessionSnapshot, Summary) {
    let pool = pool(StratumConfig {
        initial_difficulty: 16,
        target_share_interval: interval,
        retarget_window: interval * 4,
        ..StratumConfig::default()
    })
    .await;
    let server = pool.server.clone();
    let seen = Arc::new(Mutex::new(None));
    let sample = seen.clone();
    let stop = async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        *sample.lock().unwrap() = server.sessions().into_iter().next();
    };
    let summary = mine(std::slice::from_ref(&pool.url), RunOptions::default(), stop).await;
    let session = seen.lock().unwrap().take().expect("a session");
    (session, summary)
}

fn assert_within_30_percent(session: &SessionSnapshot, summary: &Summary) {
    let miner = summary.stats.average_rate();
    let ratio = session.hash_rate / miner;
    println!(
        "server estimate {:.1} H/s over {:.1} s ({} shares, difficulty {:.1}), miner {:.1} H/s over {:.1} s: ratio {ratio:.3}",
        session.hash_rate, session.mining_seconds, session.accepted, session.difficulty,
        miner, summary.stats.uptime_s
    );
    assert!(session.accepted >= 10, "too few shares: {session:?}");
    assert!(
        (0.7..=1.3).contains(&ratio),
        "ratio {ratio}: {session:?}\n{}",
        summary.report()
    );
}

/// The default-run variant: 20 s at four shares a second, so that the estimate rests on as
/// many shares as the 60 s run at one a second (the devnet block target, 64 hashes, caps
/// the share difficulty anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_hash_rate_estimate_is_within_30_percent_of_the_miners_over_20_s() {
    let (session, summary) = hash_rates(20, Duration::from_millis(250)).await;
    assert_within_30_percent(&session, &summary);
}

/// The acceptance run: the server aiming at one share a second, for 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_hash_rate_estimate_is_within_30_percent_of_the_miners_over_60_s() {
    let (session, summary) = hash_rates(60, Duration::from_secs(1)).await;
    assert_within_30_percent(&session, &summary);
}
