//! The real `bystack-miner --pool` binary against the node's BTM stratum server on loopback
//! (an in-process devnet node, real Tensority checks): `--blocks 2` exits 0 after two
//! block-meeting shares accepted by the pool, whose node's chain grew; a dead first pool
//! fails over.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bystack_engine::consensus::Network;
use bystack_engine::genesis::genesis_block;
use bystack_engine::validation::TensorityPow;
use bystack_node::chain::{Chain, ChainConfig};
use bystack_node::service::{Node, NodeConfig};
use bystack_node::store::{MemoryKv, Store};
use bystack_node::stratum::{StratumConfig, StratumServer};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_mines_two_blocks_through_a_stratum_pool_after_failing_over() {
    let genesis = genesis_block(Network::Devnet);
    let pow = Arc::new(TensorityPow::open("cpu", 1).unwrap());
    let chain = Chain::open(Store::in_memory(), &genesis, pow, ChainConfig::default()).unwrap();
    let node: Arc<Node<MemoryKv>> = Node::new(chain, NodeConfig::new(Network::Devnet));
    let server = StratumServer::new(
        node.clone(),
        StratumConfig {
            verify_backend: "cpu".into(),
            verify_threads: 1,
            ..StratumConfig::default()
        },
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("stratum+tcp://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("stratum+tcp://{}", dead.local_addr().unwrap());
    drop(dead);

    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_bystack-miner"))
            .args(["--pool", &dead_url, "--pool", &url, "--user", "acct.rig1"])
            .args([
                "--blocks",
                "2",
                "--seconds",
                "120",
                "--backend",
                "cpu",
                "--threads",
                "1",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{:?}", output.status);
    assert!(stdout.contains("summary: stopped (Blocks)"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("block found: #"))
            .count(),
        2
    );
    // The pool answers a share before its node has processed the block; and two block shares
    // of one job make one block at that height (the other goes stale at the node).
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.tip().height < 1 {
        assert!(
            Instant::now() < deadline,
            "the pool's node never took a block"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "2 blocks through the pool in {:.1} s; node height {}",
        started.elapsed().as_secs_f64(),
        node.tip().height
    );
    let _ = stop.send(());
    std::thread::sleep(Duration::from_millis(10));
}
