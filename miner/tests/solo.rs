//! Solo mining over real loopback HTTP: an in-process devnet node (RocksDB, real Tensority
//! checks) serving Bytom's API with `bystack_node::api::serve`, the miner's `NodeSource`
//! polling `get-work-json` and posting `submit-work-json`, while another miner finds a block
//! on the same node mid-run (a template change the miner must follow).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bystack_kernels::open_backend;
use bystack_kernels::pow::Target;
use bystack_miner::backends::open_devices;
use bystack_miner::embedded::{open_devnet_node, MiningKey};
use bystack_miner::run::{run, RunOptions, StopReason};
use bystack_miner::solo::NodeSource;
use bystack_node::service::{Node, NodeError};
use bystack_node::store::RocksKv;

/// Nonces the other miner uses: far above the solo miner's, so blocks can be told apart.
const OTHER_NONCES: u64 = 1 << 62;

/// Mines one block on `node` directly (get-work, CPU search, submit-work), retrying while
/// its work goes stale.
fn mine_one_directly(node: &Node<RocksKv>) -> u64 {
    let backend = open_backend("cpu", 1).unwrap();
    loop {
        let work = node.get_work().unwrap();
        let prepared = backend.prepare(&work.seed.0).unwrap();
        let template = work.header.template();
        let target = Target::from_bits(work.header.bits);
        let stop = AtomicBool::new(false);
        let mut start = OTHER_NONCES;
        let nonce = loop {
            let outcome = prepared
                .search(&template, start..start + 4, &target, &stop)
                .unwrap();
            if let Some(hit) = outcome.hits.first() {
                break hit.nonce;
            }
            start += 4;
        };
        let mut header = work.header.clone();
        header.nonce = nonce;
        match node.submit_work(&header) {
            Ok(outcome) => return outcome.tip.height,
            Err(NodeError::StaleWork) => continue,
            Err(e) => panic!("direct submit: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solo_mining_over_http_grows_the_nodes_chain_by_three_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let key = MiningKey::from_seed([7; 32]).unwrap();
    let node = open_devnet_node(dir.path(), key.program.clone(), 2).unwrap();
    let start_height = node.tip().height;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(bystack_node::api::serve(
        node.clone(),
        listener,
        async move {
            let _ = api_stopped.await;
        },
    ));

    // Another miner takes one block on the same node once the solo miner has found its
    // first: the solo miner's template changes under it.
    let other = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while node.tip().height < start_height + 1 {
                assert!(Instant::now() < deadline, "the solo miner found nothing");
                std::thread::sleep(Duration::from_millis(20));
            }
            mine_one_directly(&node)
        })
    };

    let source = NodeSource::new(&format!("http://{addr}"), Duration::from_millis(100)).unwrap();
    let devices = open_devices("cpu", &[], 2, 0).unwrap();
    let started = Instant::now();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        run(
            Box::new(source),
            devices,
            RunOptions {
                blocks: Some(3),
                log_interval: Duration::from_secs(5),
                ..RunOptions::default()
            },
            futures::future::pending(),
        ),
    )
    .await
    .expect("3 blocks within 2 minutes")
    .unwrap();
    let elapsed = started.elapsed();
    let other_height = other.await.unwrap();
    println!(
        "{}\nin {:.1} s; the other miner's block at height {other_height}",
        summary.report(),
        elapsed.as_secs_f64()
    );

    assert_eq!(summary.reason, StopReason::Blocks);
    assert_eq!(summary.stats.blocks, 3);
    assert_eq!(summary.stats.rejected, 0);
    let tip = node.tip().height;
    assert_eq!(
        tip,
        start_height + 4,
        "3 solo blocks and the other miner's one"
    );
    let mut solo = 0;
    let mut others = 0;
    for height in start_height + 1..=tip {
        let block = node.block_by_height(height).unwrap().unwrap();
        assert_eq!(
            block.transactions[0].data.outputs[0].control_program,
            key.program
        );
        if block.header.nonce >= OTHER_NONCES {
            others += 1;
        } else {
            solo += 1;
        }
    }
    assert_eq!((solo, others), (3, 1));

    let _ = stop_api.send(());
    api.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_node_is_retried_without_hanging_the_miner() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let source = NodeSource::new(&format!("http://{addr}"), Duration::from_millis(50)).unwrap();
    let devices = open_devices("reference", &[], 1, 0).unwrap();
    let started = Instant::now();
    let summary = run(
        Box::new(source),
        devices,
        RunOptions {
            seconds: Some(1.0),
            ..RunOptions::default()
        },
        futures::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.reason, StopReason::Seconds);
    assert_eq!(summary.stats.hashes, 0, "no work, no hashing");
    assert!(started.elapsed() < Duration::from_secs(5));
}
