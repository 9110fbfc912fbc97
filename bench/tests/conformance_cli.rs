//! `bystack-bench conformance`: passes real backends, catches a faulty one, rejects bad input.

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bystack_bench::conformance::{run_with, ConformanceConfig};
use bystack_kernels::backend::{BackendInfo, PreparedSeed, Result, SearchOutcome};
use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_kernels::{open_backend, TensorityBackend};

fn vectors_file() -> String {
    let dir = std::env::var("BYSTACK_VECTORS")
        .unwrap_or_else(|_| format!("{}/../../shared/vectors", env!("CARGO_MANIFEST_DIR")));
    format!("{dir}/tensority.json")
}

#[test]
fn real_backends_pass_every_check() {
    let out = Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .args([
            "conformance",
            "--backend",
            "cpu-portable,float",
            "--products",
            "6",
        ])
        .args(["--hashes", "5", "--vectors", &vectors_file(), "--json"])
        .output()
        .expect("spawn bystack-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for v in &lines {
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["vectors_passed"], 12, "{v}");
        assert_eq!(v["products_passed"], 6, "{v}");
        assert_eq!(v["hashes_passed"], 5, "{v}");
    }
}

#[test]
fn a_missing_vectors_file_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_bystack-bench"))
        .args([
            "conformance",
            "--backend",
            "cpu-portable",
            "--vectors",
            "/nonexistent.json",
        ])
        .output()
        .expect("spawn bystack-bench");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.json"));
}

/// The portable CPU backend with one flipped byte in every product and in the second result of
/// every batch: what a subtly broken device kernel looks like.
struct Faulty(Box<dyn TensorityBackend>);
struct FaultySeed(Arc<dyn PreparedSeed>);

impl TensorityBackend for Faulty {
    fn info(&self) -> BackendInfo {
        self.0.info()
    }
    fn prepare(&self, seed: &[u8; 32]) -> Result<Arc<dyn PreparedSeed>> {
        Ok(Arc::new(FaultySeed(self.0.prepare(seed)?)))
    }
    fn product(&self, a: &[u8], m: &[u8]) -> Result<Vec<u8>> {
        let mut p = self.0.product(a, m)?;
        p[12345] ^= 1;
        Ok(p)
    }
}

impl PreparedSeed for FaultySeed {
    fn seed(&self) -> &[u8; 32] {
        self.0.seed()
    }
    fn hash(&self, header_hash: &[u8; 32]) -> Result<[u8; 32]> {
        self.0.hash(header_hash)
    }
    fn hash_batch(&self, header_hashes: &[[u8; 32]]) -> Result<Vec<[u8; 32]>> {
        let mut out = self.0.hash_batch(header_hashes)?;
        if let Some(r) = out.get_mut(1) {
            r[0] ^= 0x80;
        }
        Ok(out)
    }
    fn search(
        &self,
        template: &HeaderTemplate,
        nonces: std::ops::Range<u64>,
        target: &Target,
        stop: &AtomicBool,
    ) -> Result<SearchOutcome> {
        self.0.search(template, nonces, target, stop)
    }
}

#[test]
fn a_faulty_backend_is_reported_with_its_mismatches() {
    let config = ConformanceConfig {
        backends: vec!["faulty".into()],
        products: 3,
        hashes: 4,
        vectors: None,
        batch: 0,
        seed: 7,
    };
    let results = run_with(
        &config,
        |_| Ok(Box::new(Faulty(open_backend("cpu-portable", 2)?)) as Box<dyn TensorityBackend>),
        |_| {},
    )
    .unwrap();
    let r = &results[0];
    assert!(!r.ok);
    assert_eq!((r.products, r.products_passed), (3, 0));
    assert_eq!(r.hashes, 4);
    assert!(r.hashes_passed <= 3, "{r:?}");
    assert!(
        r.failures.iter().any(|f| f.contains("byte Some(12345)")),
        "{:?}",
        r.failures
    );
}
