//! The real `bystack-miner` binary: `--blocks 3` on the embedded devnet, `/stats` and
//! `/metrics` over real HTTP, SIGINT ending a run with a summary and exit 0, `--seconds`
//! with `--duty`, and bad flags refused with a typed message and exit 2.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MINER: &str = env!("CARGO_BIN_EXE_bystack-miner");

fn miner(args: &[&str]) -> Command {
    let mut command = Command::new(MINER);
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Forwards the child's stdout lines to a channel (and echoes them for the test log).
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("| {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<String>, within: Duration, what: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if what(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("no expected line within {within:?}: {e}"),
        }
    }
}

/// A plain HTTP/1.1 GET; returns the status code and body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the miner did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn blocks_3_mines_three_devnet_blocks_on_the_embedded_node_and_exits_0() {
    let started = Instant::now();
    let output = miner(&["--blocks", "3", "--backend", "cpu", "--threads", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{:?}", output.status);
    let address = stdout
        .lines()
        .find_map(|l| l.strip_prefix("mining address: "))
        .expect("address printed");
    assert!(address.starts_with("dm1q"), "{address}");
    assert!(stdout.contains("memory at start: RSS "));
    assert!(stdout.contains("prepared in"), "seed memory figure");
    let found: Vec<_> = stdout
        .lines()
        .filter(|l| l.starts_with("block found: #"))
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    for (i, line) in found.iter().enumerate() {
        // Each block was accepted by the node at the next height (job ids start with it).
        assert!(
            line.starts_with(&format!("block found: #{} accepted (job {}-", i + 1, i + 1)),
            "{line}"
        );
    }
    assert!(stdout.contains("summary: stopped (Blocks)"));
    assert!(stdout.contains(": 3 blocks, "));
    println!("3 blocks in {:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn sigint_stops_the_miner_with_a_summary_after_stats_and_metrics_were_served() {
    let mut child = miner(&[
        "--api",
        "127.0.0.1:0",
        "--log-interval",
        "1",
        "--backend",
        "cpu",
    ])
    .spawn()
    .unwrap();
    let rx = lines(&mut child);
    let api = wait_for(&rx, Duration::from_secs(30), |l| {
        l.starts_with("stats api listening on http://")
    });
    let addr = api
        .trim_start_matches("stats api listening on http://")
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    wait_for(&rx, Duration::from_secs(60), |l| {
        l.starts_with("block found: #1")
    });

    let (status, body) = get(&addr, "/stats");
    assert_eq!(status, 200, "{body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(stats["blocks"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["accepted"].as_u64().unwrap() >= 1);
    assert!(stats["hashes"].as_u64().unwrap() > 0);
    assert!(stats["total"]["h10s"].as_f64().unwrap() > 0.0, "{stats}");
    assert!(stats["devices"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("cpu"));
    let (status, metrics) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE bystack_miner_hashes_total counter"),
        "{metrics}"
    );
    assert!(metrics.contains("bystack_miner_blocks_total "));
    let (status, _) = get(&addr, "/nope");
    assert_eq!(status, 404);

    let interrupted = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child, Duration::from_secs(15));
    let took = interrupted.elapsed();
    assert!(status.success(), "{status:?}");
    let summary = wait_for(&rx, Duration::from_secs(5), |l| {
        l.starts_with("summary: stopped")
    });
    assert!(summary.contains("(Interrupted)"), "{summary}");
    println!("stopped {:.0} ms after SIGINT", took.as_secs_f64() * 1000.0);
}

#[test]
fn seconds_with_half_duty_exits_0_with_a_summary() {
    let output = miner(&[
        "--seconds",
        "2",
        "--duty",
        "50",
        "--backend",
        "cpu",
        "--threads",
        "1",
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success());
    assert!(stdout.contains("duty cycle: mining 50% of each second"));
    assert!(
        stdout.contains("summary: stopped (Seconds) after 2."),
        "{stdout}"
    );
}

#[test]
fn bad_options_are_refused_with_exit_2_and_no_panic() {
    for (args, expect) in [
        (vec!["--duty", "0"], "invalid duty"),
        (vec!["--api", "not-an-address"], "invalid api"),
        (vec!["--node", "ftp://x:1"], "node url"),
        (
            vec!["--backend", "quantum", "--seconds", "1"],
            "unknown backend",
        ),
        (
            vec!["--profile", "/nonexistent.toml"],
            "reading /nonexistent.toml",
        ),
    ] {
        let output = miner(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
