//! `bystack-bench conformance`: a backend against the scalar reference, bit for bit, on the
//! real Tensority vectors, random single products (with the extreme operand families), and
//! random full hashes. This is what the device check runs on a GPU machine, where the test
//! suite cannot be built.

use std::path::Path;

use anyhow::Context;
use bystack_kernels::backend::BackendError;
use bystack_kernels::tensority::cpu::{CpuKernel, KernelSeed};
use bystack_kernels::tensority::seed::shared_matrices;
use bystack_kernels::tensority::{reference, MATRIX_BYTES};
use bystack_kernels::{hex, open_backend_with, BackendOptions, TensorityBackend};
use rayon::prelude::*;
use serde::Serialize;

/// What to check.
#[derive(Debug, Clone)]
pub struct ConformanceConfig {
    /// Backend names.
    pub backends: Vec<String>,
    /// Random single products per backend.
    pub products: usize,
    /// Random full hashes per backend (checked against the fastest CPU kernel, and the first
    /// four also against the reference).
    pub hashes: usize,
    /// `tensority.json` from the shared vectors, if given.
    pub vectors: Option<std::path::PathBuf>,
    /// Hashes per launch for batched backends (0 = default).
    pub batch: usize,
    /// Generator seed.
    pub seed: u64,
}

/// One backend's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ConformanceResult {
    /// Backend name.
    pub backend: String,
    /// Device description.
    pub device: String,
    /// Vectors that matched / were run.
    pub vectors_passed: usize,
    /// Vectors run.
    pub vectors: usize,
    /// Products that matched.
    pub products_passed: usize,
    /// Products run (0 when the backend has no single-product hook).
    pub products: usize,
    /// Full hashes that matched.
    pub hashes_passed: usize,
    /// Full hashes run.
    pub hashes: usize,
    /// Descriptions of the first mismatches.
    pub failures: Vec<String>,
    /// Whether everything run matched and something was run.
    pub ok: bool,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// xorshift64*: deterministic operands, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Operand families: 0 all −128, 1 all 127, 2 a mix of both, 3 random with many −128, else
/// uniform random bytes.
fn operand(rng: &mut Rng, family: u64) -> Vec<u8> {
    let mut m = vec![0u8; MATRIX_BYTES];
    match family {
        0 => m.fill(0x80),
        1 => m.fill(0x7f),
        2 => m
            .iter_mut()
            .for_each(|b| *b = if rng.next_u64() & 1 == 0 { 0x80 } else { 0x7f }),
        3 => {
            rng.fill(&mut m);
            for b in m.iter_mut() {
                if rng.next_u64().is_multiple_of(4) {
                    *b = 0x80;
                }
            }
        }
        _ => rng.fill(&mut m),
    }
    m
}

/// One Tensority vector: header hash, seed, expected result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vector {
    /// The block ID.
    pub header_hash: [u8; 32],
    /// The seed.
    pub seed: [u8; 32],
    /// Tensority(header_hash, seed).
    pub expected: [u8; 32],
}

/// The vectors of `tensority.json`.
///
/// # Errors
/// A missing or malformed file.
pub fn load_vectors(path: &Path) -> anyhow::Result<Vec<Vector>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).context("vectors are not JSON")?;
    let list = json["tensority"]
        .as_array()
        .context("no `tensority` list in the vectors file")?;
    list.iter()
        .map(|v| {
            let field = |k: &str| -> anyhow::Result<[u8; 32]> {
                let s = v[k].as_str().with_context(|| format!("vector field {k}"))?;
                hex::decode32(s).with_context(|| format!("vector field {k}: bad hex"))
            };
            Ok(Vector {
                header_hash: field("header_hash")?,
                seed: field("seed")?,
                expected: field("expected")?,
            })
        })
        .collect()
}

/// Checks every configured backend.
///
/// # Errors
/// A backend that cannot be opened, or an unreadable vectors file. Mismatches are not errors:
/// they are reported in the result.
pub fn run(
    config: &ConformanceConfig,
    report: impl FnMut(&ConformanceResult),
) -> anyhow::Result<Vec<ConformanceResult>> {
    let options = BackendOptions {
        batch: config.batch,
        ..BackendOptions::default()
    };
    run_with(
        config,
        |name| Ok(open_backend_with(name, &options)?),
        report,
    )
}

/// [`run`] with the backends opened by `open` (so tests can check a faulty backend).
///
/// # Errors
/// As [`run`].
pub fn run_with(
    config: &ConformanceConfig,
    open: impl Fn(&str) -> anyhow::Result<Box<dyn TensorityBackend>>,
    mut report: impl FnMut(&ConformanceResult),
) -> anyhow::Result<Vec<ConformanceResult>> {
    let vectors = match &config.vectors {
        Some(p) => load_vectors(p)?,
        None => Vec::new(),
    };
    let mut results = Vec::new();
    for name in &config.backends {
        let start = std::time::Instant::now();
        let backend = open(name)?;
        let info = backend.info();
        let mut failures = Vec::new();
        let mut note = |f: String| {
            if failures.len() < 20 {
                failures.push(f);
            }
        };

        let mut vectors_passed = 0;
        for (i, v) in vectors.iter().enumerate() {
            let got = backend.prepare(&v.seed)?.hash(&v.header_hash)?;
            if got == v.expected {
                vectors_passed += 1;
            } else {
                note(format!("vector {i}: got {}", hex::encode(&got)));
            }
        }

        let mut rng = Rng::new(config.seed);
        let mut products = 0;
        let mut products_passed = 0;
        // Operand pairs in chunks, the reference computed in parallel on the CPU.
        let mut case = 0;
        while case < config.products {
            let n = (config.products - case).min(64);
            let pairs: Vec<(Vec<u8>, Vec<u8>)> = (case..case + n)
                .map(|c| {
                    let family = |rng: &mut Rng| match rng.next_u64() % 20 {
                        0 => 2,
                        1 => 3,
                        _ => 4,
                    };
                    let (fa, fm) = if c < 25 {
                        ((c / 5) as u64, (c % 5) as u64)
                    } else {
                        (family(&mut rng), family(&mut rng))
                    };
                    (operand(&mut rng, fa), operand(&mut rng, fm))
                })
                .collect();
            let wants: Vec<Vec<u8>> = pairs
                .par_iter()
                .map(|(a, m)| {
                    let mut out = vec![0u8; MATRIX_BYTES];
                    reference::product(a, m, &mut out);
                    out
                })
                .collect();
            let mut unsupported = false;
            for (k, ((a, m), want)) in pairs.iter().zip(&wants).enumerate() {
                match backend.product(a, m) {
                    Ok(got) => {
                        products += 1;
                        if &got == want {
                            products_passed += 1;
                        } else {
                            let at = got.iter().zip(want).position(|(x, y)| x != y);
                            note(format!(
                                "product {}: first difference at byte {at:?}",
                                case + k
                            ));
                        }
                    }
                    Err(BackendError::Unsupported { .. }) => {
                        unsupported = true;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if unsupported {
                break;
            }
            case += n;
        }

        let mut hashes_passed = 0;
        let seeds = [[0x5eu8; 32], {
            let mut s = [0u8; 32];
            rng.fill(&mut s);
            s
        }];
        let per_seed = config.hashes.div_ceil(seeds.len());
        let mut hashes = 0;
        for seed in &seeds {
            let n = per_seed.min(config.hashes - hashes);
            if n == 0 {
                break;
            }
            let headers: Vec<[u8; 32]> = (0..n)
                .map(|_| {
                    let mut h = [0u8; 32];
                    rng.fill(&mut h);
                    h
                })
                .collect();
            let got = backend.prepare(seed)?.hash_batch(&headers)?;
            let cpu = KernelSeed::new(CpuKernel::best(), seed)?;
            let mats = shared_matrices(seed);
            let wants: Vec<[u8; 32]> = headers
                .par_iter()
                .enumerate()
                .map(|(i, h)| {
                    if hashes + i < 4 {
                        reference::hash(&mats, h)
                    } else {
                        cpu.hash(h)
                    }
                })
                .collect();
            for (i, (g, w)) in got.iter().zip(&wants).enumerate() {
                if g == w {
                    hashes_passed += 1;
                } else {
                    note(format!(
                        "hash of {}: got {}",
                        hex::encode(&headers[i]),
                        hex::encode(g)
                    ));
                }
            }
            if got.len() != headers.len() {
                note(format!(
                    "{} results for {} headers",
                    got.len(),
                    headers.len()
                ));
            }
            hashes += n;
        }

        let ran = vectors.len() + products + hashes;
        let result = ConformanceResult {
            backend: info.name.clone(),
            device: info.device.clone(),
            vectors_passed,
            vectors: vectors.len(),
            products_passed,
            products,
            hashes_passed,
            hashes,
            ok: failures.is_empty() && ran > 0,
            failures,
            seconds: start.elapsed().as_secs_f64(),
        };
        report(&result);
        results.push(result);
    }
    Ok(results)
}
