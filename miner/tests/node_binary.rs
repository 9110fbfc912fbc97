//! Two real processes: `bystack-node --network devnet --api ADDR` and
//! `bystack-miner --node http://ADDR --blocks 3`. The node binary belongs to another package,
//! so build it first and run this with `--ignored`:
//!
//! ```sh
//! cargo build -p bystack-node && cargo test -p bystack-miner --test node_binary -- --ignored
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn node_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_bystack-miner")).with_file_name("bystack-node");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p bystack-node` first",
        path.display()
    );
    path
}

/// POSTs `{}` to a node API method; the reply body, or `None` while the node is not up.
fn post(addr: &str, method: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "POST /{method} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

#[test]
#[ignore = "needs the bystack-node binary: cargo build -p bystack-node, then --ignored"]
fn the_miner_binary_mines_three_blocks_on_the_node_binary_over_http() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut node = Command::new(node_binary())
        .args(["--network", "devnet", "--api", &addr, "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while post(&addr, "get-block-count").is_none() {
        assert!(Instant::now() < deadline, "the node's API never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = post(&addr, "get-block-count").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_bystack-miner"))
        .args([
            "--node",
            &format!("http://{addr}"),
            "--blocks",
            "3",
            "--seconds",
            "120",
        ])
        .args(["--backend", "cpu", "--poll-ms", "100"])
        .output()
        .unwrap();
    let after = post(&addr, "get-block-count").unwrap();
    let _ = Command::new("kill")
        .args(["-INT", &node.id().to_string()])
        .status();
    let _ = node.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "{:?}", output.status);
    assert!(stdout.contains("summary: stopped (Blocks)"), "{stdout}");
    assert!(before.contains("\"block_count\":0"), "{before}");
    assert!(after.contains("\"block_count\":3"), "{after}");
}
