//! The wgpu backend against the scalar reference, bit for bit. The configurations the registry
//! opens (`wgpu`, `wgpu-f16` where the adapter has `SHADER_F16`) run the real vectors, random
//! single products including the extreme operand families, random full hashes, and a nonce
//! search with a target everything meets. Every other kernel (the i32 fallback) and every other
//! step layout (each tiled variant, double-buffered and one single-buffered, on a CPU adapter;
//! strips and the other tiled variants on a GPU) run the products, and a full hash where
//! `forced_layouts` says.
//!
//! Without an adapter the tests print why and pass, except under `CI`, where they must run
//! (on Mesa lavapipe: `mesa-vulkan-drivers`, see scripts/test.sh).
#![cfg(feature = "wgpu")]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use bystack_kernels::backend::{BackendError, BackendOptions, TensorityBackend};
use bystack_kernels::hex;
use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_kernels::tensority::cpu::{CpuKernel, KernelSeed};
use bystack_kernels::tensority::seed::shared_matrices;
use bystack_kernels::tensority::webgpu::{Kernel, Layout, Tile, TileShape, WgpuBackend};
use bystack_kernels::tensority::{reference, MATRIX_BYTES};
use common::{hex32, load, operand, Rng};

/// Hashes per batch: small, so that batches in the tests end partly filled.
const BATCH: usize = 2;
/// Products (cases of `random_products_match_the_reference`) for the registry's
/// configurations: the 25 pairs of operand families, then random ones (one in five from the
/// mixed-extreme families).
const REGISTRY_PRODUCTS: Range<usize> = 0..200;
/// Products for every other configuration: the family pairs and a few random ones.
const OTHER_PRODUCTS: Range<usize> = 0..30;
/// Products for the single-buffered tiles that only a device with little workgroup storage
/// builds (the shader differs from the double-buffered one in two constants): random ones.
const FALLBACK_PRODUCTS: Range<usize> = 25..31;

/// One kernel in one step layout, opened once for the whole file.
struct Variant {
    backend: WgpuBackend,
    /// `kernel/layout`, for messages.
    label: String,
    /// Cases of `random_products_match_the_reference` this configuration runs.
    products: Range<usize>,
    /// Whether `other_kernels_and_layouts_hash_the_genesis_vector` runs a full hash in it.
    hash: bool,
    /// Whether this is what the registry opens for `wgpu` or `wgpu-f16` on this adapter: those
    /// run the whole suite; the other kernels and layouts run the products and one hash.
    registry: bool,
}

/// The layouts every kernel also runs in, besides the one the adapter picks, with their
/// products and whether they hash: strips, each tiled variant double-buffered, and each
/// single-buffered. The step itself is checked in every configuration by the products; a full
/// hash adds the chain and matrix offsets (which depend on the kernel's load units, not on
/// the tile shape or the buffering) and the dispatch grid (which depends on the shape), so
/// the best int8 kernel hashes in every double-buffered shape and the others in strips and
/// the default tile.
fn forced_layouts(kernel: Kernel) -> Vec<(Layout, Range<usize>, bool)> {
    let int8 = kernel == Kernel::best_int8();
    let mut layouts = vec![(Layout::Strip, OTHER_PRODUCTS, true)];
    for shape in TileShape::ALL {
        let tile = Tile {
            shape,
            double_buffer: true,
        };
        layouts.push((
            Layout::Tiled(tile),
            OTHER_PRODUCTS,
            int8 || tile == Tile::default(),
        ));
        let single = Tile {
            double_buffer: false,
            ..tile
        };
        let products = if shape == Tile::default().shape {
            OTHER_PRODUCTS
        } else {
            FALLBACK_PRODUCTS
        };
        layouts.push((Layout::Tiled(single), products, false));
    }
    layouts
}

/// Every kernel the adapter runs, in every layout. Empty (after a note on stderr) when there
/// is no adapter and `CI` is unset; a missing adapter under `CI` fails.
fn variants() -> &'static [Variant] {
    static VARIANTS: OnceLock<Vec<Variant>> = OnceLock::new();
    VARIANTS.get_or_init(|| {
        let options = BackendOptions {
            batch: BATCH,
            ..BackendOptions::default()
        };
        let mut open = Vec::new();
        for kernel in [Kernel::best_int8(), Kernel::F16, Kernel::I32] {
            if kernel == Kernel::I32 && Kernel::best_int8() == Kernel::I32 {
                continue;
            }
            let auto = match WgpuBackend::new(kernel, &options) {
                Ok(b) => b,
                Err(BackendError::Unsupported { reason, .. }) if kernel == Kernel::F16 => {
                    eprintln!("wgpu kernel f16 not tested here: {reason}");
                    continue;
                }
                Err(e) => {
                    let message = format!("wgpu kernel {} cannot open: {e}", kernel.name());
                    let no_adapter = matches!(e, BackendError::Unsupported { .. });
                    if no_adapter && std::env::var_os("CI").is_none() {
                        // Straight to stderr, past the test harness's capture: a skipped GPU
                        // suite should be seen.
                        let _ = writeln!(
                            std::io::stderr(),
                            "skipping the wgpu conformance tests: {message}"
                        );
                        return Vec::new();
                    }
                    panic!("{message} (CI must run these, on Mesa lavapipe without a GPU)");
                }
            };
            let auto_layout = auto.context().layout();
            let registry = kernel != Kernel::I32;
            let mut backends = vec![(
                auto,
                if registry {
                    REGISTRY_PRODUCTS
                } else {
                    OTHER_PRODUCTS
                },
                !registry,
                registry,
            )];
            for (layout, products, hash) in forced_layouts(kernel) {
                if layout == auto_layout {
                    continue;
                }
                let forced = WgpuBackend::with_layout(kernel, Some(layout), &options)
                    .unwrap_or_else(|e| {
                        panic!("{} in the {} layout: {e}", kernel.name(), layout.name())
                    });
                backends.push((forced, products, hash, false));
            }
            for (backend, products, hash, registry) in backends {
                // As built: `-single` where the adapter could not hold two buffers.
                let label = format!("{}/{}", kernel.name(), backend.context().layout().name());
                open.push(Variant {
                    backend,
                    label,
                    products,
                    hash,
                    registry,
                });
            }
        }
        open
    })
}

/// The variants the registry opens (`wgpu`, `wgpu-f16`).
fn registry_variants() -> impl Iterator<Item = &'static Variant> {
    variants().iter().filter(|v| v.registry)
}

#[test]
fn random_products_match_the_reference() {
    let variants = variants();
    let mut rng = Rng::new(4242);
    let mut expected = vec![0u8; MATRIX_BYTES];
    for case in REGISTRY_PRODUCTS {
        // The first 25 cases pair every operand family with every other; later ones are
        // random bytes, with one in five drawn from the mixed-extreme families.
        let (fa, fm) = if case < 25 {
            ((case / 5) as u64, (case % 5) as u64)
        } else {
            let mut family = || match rng.next_u64() % 10 {
                0 => 2,
                1 => 3,
                _ => 4,
            };
            (family(), family())
        };
        let a = operand(&mut rng, fa);
        let m = operand(&mut rng, fm);
        reference::product(&a, &m, &mut expected);
        for v in variants.iter().filter(|v| v.products.contains(&case)) {
            let got = v.backend.context().product(&a, &m).expect("device product");
            if let Some(i) = (0..MATRIX_BYTES).find(|&i| got[i] != expected[i]) {
                panic!(
                    "{} case {case} (families {fa}/{fm}): first difference at row {} \
                     column {}: got {} expected {}",
                    v.label,
                    i / 256,
                    i % 256,
                    got[i] as i8,
                    expected[i] as i8
                );
            }
        }
    }
}

#[test]
fn every_vector_on_the_wgpu_backends() {
    let vectors = load("tensority.json");
    let list = vectors["tensority"].as_array().expect("tensority list");
    assert_eq!(list.len(), 12);
    // Vectors that share a seed go through one hash_batch (BATCH at a time); the matrix sets
    // stay alive for every backend.
    let mut by_seed: BTreeMap<[u8; 32], Vec<([u8; 32], String)>> = BTreeMap::new();
    for v in list {
        by_seed.entry(hex32(&v["seed"])).or_default().push((
            hex32(&v["header_hash"]),
            v["expected"].as_str().expect("hex").to_string(),
        ));
    }
    let _matrices: Vec<_> = by_seed.keys().map(shared_matrices).collect();
    for v in registry_variants() {
        for (seed, cases) in &by_seed {
            let prepared = v.backend.prepare(seed).expect("prepare");
            let headers: Vec<[u8; 32]> = cases.iter().map(|c| c.0).collect();
            let got = prepared.hash_batch(&headers).expect("hash_batch");
            assert_eq!(got.len(), headers.len());
            for ((header, expected), got) in cases.iter().zip(&got) {
                assert_eq!(
                    &hex::encode(got),
                    expected,
                    "{}, header {}",
                    v.label,
                    hex::encode(header)
                );
            }
        }
    }
}

#[test]
fn other_kernels_and_layouts_hash_the_genesis_vector() {
    let vectors = load("tensority.json");
    let v = &vectors["tensority"][10];
    let (seed, header) = (hex32(&v["seed"]), hex32(&v["header_hash"]));
    let expected = v["expected"].as_str().expect("hex");
    for variant in variants().iter().filter(|v| v.hash) {
        let prepared = variant.backend.prepare(&seed).expect("prepare");
        let got = prepared.hash(&header).expect("hash");
        assert_eq!(hex::encode(&got), expected, "{}", variant.label);
    }
}

#[test]
fn random_hashes_match_the_reference() {
    // Each reference hash costs about 2 s of CPU; the vectors already cover 12 full hashes.
    const HASHES: usize = 4;
    if variants().is_empty() {
        return;
    }
    let mut rng = Rng::new(77);
    let seed = rng.bytes32();
    let headers: Vec<[u8; 32]> = (0..HASHES).map(|_| rng.bytes32()).collect();
    let mats = shared_matrices(&seed);
    let expected: Vec<[u8; 32]> = headers.iter().map(|h| reference::hash(&mats, h)).collect();
    for v in registry_variants() {
        let prepared = v.backend.prepare(&seed).expect("prepare");
        let got = prepared.hash_batch(&headers).expect("hash_batch");
        assert_eq!(got, expected, "{}", v.label);
    }
}

#[test]
fn search_with_an_everything_target_returns_every_nonce() {
    if variants().is_empty() {
        return;
    }
    let seed = [0x5a; 32];
    let template = HeaderTemplate::new(1, 300, &[1; 32], 1_700_000_000, &[2; 32], &[3; 32], 0);
    let everything = Target::from_le_bytes([0xff; 32]);
    // One full batch and one partial.
    let nonces = 1000..1000 + BATCH as u64 + 1;
    // The search confirms every hit on the CPU; check against a CPU kernel once more (the
    // kernels are checked against the reference by tests/conformance.rs).
    let cpu = KernelSeed::new(CpuKernel::best(), &seed).expect("cpu kernel");
    for v in registry_variants() {
        let prepared = v.backend.prepare(&seed).expect("prepare");
        let stop = AtomicBool::new(false);
        let out = prepared
            .search(&template, nonces.clone(), &everything, &stop)
            .expect("search");
        assert!(!out.stopped, "{}", v.label);
        assert_eq!(out.hashes, nonces.end - nonces.start, "{}", v.label);
        assert_eq!(
            out.hits.iter().map(|h| h.nonce).collect::<Vec<_>>(),
            nonces.clone().collect::<Vec<_>>(),
            "{}",
            v.label
        );
        for hit in &out.hits {
            assert_eq!(hit.header_hash, template.header_hash(hit.nonce));
            assert_eq!(hit.pow_hash, cpu.hash(&hit.header_hash), "{}", v.label);
        }
    }
}

#[test]
fn the_registry_opens_and_lists_wgpu() {
    if variants().is_empty() {
        return;
    }
    let listed = bystack_kernels::list_backends();
    let wgpu = listed
        .iter()
        .find(|b| b.name == "wgpu")
        .expect("wgpu listed");
    assert!(wgpu.available, "{wgpu:?}");
    let f16 = listed
        .iter()
        .find(|b| b.name == "wgpu-f16")
        .expect("wgpu-f16 listed");
    let options = BackendOptions {
        batch: 1,
        ..BackendOptions::default()
    };
    let backend = bystack_kernels::open_backend_with("wgpu", &options).expect("open wgpu");
    let info = backend.info();
    assert_eq!(info.name, "wgpu");
    assert_eq!(info.kernel, Kernel::best_int8().name());
    assert_eq!(info.parallelism, 1);
    match bystack_kernels::open_backend_with("wgpu-f16", &options) {
        Ok(b) => {
            assert!(f16.available);
            assert_eq!(b.info().kernel, "f16");
        }
        Err(e) => {
            assert!(!f16.available);
            assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
        }
    }
}

/// Hash rate of `wgpu` and `wgpu-f16` at the adapter's default batch (or
/// `BYSTACK_WGPU_BATCH`) for about `BYSTACK_WGPU_SECONDS` (default 5) each, and the latency of
/// one hash. Not a conformance check: run by hand with `-- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_of_the_wgpu_backends() {
    if variants().is_empty() {
        return;
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let options = BackendOptions {
        batch: env("BYSTACK_WGPU_BATCH", 0) as usize,
        ..BackendOptions::default()
    };
    let seconds = env("BYSTACK_WGPU_SECONDS", 5) as f64;
    let seed = [0x42; 32];
    let _mats = shared_matrices(&seed);
    for name in ["wgpu", "wgpu-f16"] {
        let backend = match bystack_kernels::open_backend_with(name, &options) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        let info = backend.info();
        let prepared = backend.prepare(&seed).expect("prepare");
        let headers: Vec<[u8; 32]> = (0..info.parallelism as u64)
            .map(|i| bystack_kernels::tensority::sha3_256(&i.to_le_bytes()))
            .collect();
        prepared.hash_batch(&headers).expect("warm-up");
        let start = std::time::Instant::now();
        let mut hashes = 0;
        while start.elapsed().as_secs_f64() < seconds {
            hashes += prepared.hash_batch(&headers).expect("hash_batch").len();
        }
        let rate = hashes as f64 / start.elapsed().as_secs_f64();
        let one = std::time::Instant::now();
        prepared.hash(&headers[0]).expect("hash");
        eprintln!(
            "{name} [{} on {}, {:?}]: batch {}: {rate:.1} H/s; one hash {:?}",
            info.kernel,
            info.device,
            info.capabilities,
            info.parallelism,
            one.elapsed()
        );
    }
}
