//! The exact float backend (`float`) against the scalar reference: the 12 Tensority vectors,
//! random single products with the extreme operand families, random full hashes through
//! `hash_batch`, and a small nonce search whose hits the CPU confirms.

mod common;

use std::sync::atomic::AtomicBool;

use bystack_kernels::backend::{BackendOptions, TensorityBackend};
use bystack_kernels::pow::{HeaderTemplate, Target};
use bystack_kernels::tensority::cpu::{CpuKernel, KernelSeed};
use bystack_kernels::tensority::seed::shared_matrices;
use bystack_kernels::tensority::{float, reference, MATRIX_BYTES};
use bystack_kernels::{hex, open_backend, open_backend_with};
use common::{hex32, load, operand, Rng};

fn float_backend(threads: usize) -> Box<dyn TensorityBackend> {
    open_backend("float", threads).expect("the float backend runs everywhere")
}

#[test]
fn float_is_listed_available_and_opens_under_both_names() {
    let info = bystack_kernels::list_backends()
        .into_iter()
        .find(|b| b.name == "float")
        .expect("float is listed");
    assert!(info.available);
    assert_eq!(info.kernel, float::KERNEL);
    for name in ["float", "cpu-float"] {
        let b = open_backend(name, 2).unwrap();
        assert_eq!(b.info().name, "float");
        assert_eq!(b.info().parallelism, 2);
    }
}

#[test]
fn every_tensority_vector() {
    let vectors = load("tensority.json");
    let list = vectors["tensority"].as_array().expect("tensority list");
    assert_eq!(list.len(), 12);
    let backend = float_backend(2);
    for v in list {
        let prepared = backend.prepare(&hex32(&v["seed"])).unwrap();
        let got = prepared.hash(&hex32(&v["header_hash"])).unwrap();
        assert_eq!(
            hex::encode(&got),
            v["expected"].as_str().unwrap(),
            "vector {}",
            v["header_hash"]
        );
    }
}

#[test]
fn random_products_match_the_reference() {
    const CASES: usize = 250;
    let mut rng = Rng::new(4242);
    let mut want = vec![0u8; MATRIX_BYTES];
    for case in 0..CASES {
        // Every family against every other first, then mostly random with the extremes mixed in.
        let (fa, fm) = if case < 25 {
            ((case / 5) as u64, (case % 5) as u64)
        } else {
            let family = |rng: &mut Rng| match rng.next_u64() % 5 {
                0 => 2,
                1 => 3,
                _ => 4,
            };
            (family(&mut rng), family(&mut rng))
        };
        let a = operand(&mut rng, fa);
        let m = operand(&mut rng, fm);
        reference::product(&a, &m, &mut want);
        let got = float::product(&a, &m);
        if let Some(at) = got.iter().zip(&want).position(|(x, y)| x != y) {
            panic!("case {case} (families {fa}, {fm}) differs from the reference at byte {at}");
        }
    }
}

#[test]
fn random_hash_batches_match_the_reference() {
    let mut rng = Rng::new(99);
    let backend = float_backend(2);
    let seed = rng.bytes32();
    let mats = shared_matrices(&seed);
    let headers: Vec<[u8; 32]> = (0..3).map(|_| rng.bytes32()).collect();
    let prepared = backend.prepare(&seed).unwrap();
    let got = prepared.hash_batch(&headers).unwrap();
    let want: Vec<[u8; 32]> = headers.iter().map(|h| reference::hash(&mats, h)).collect();
    assert_eq!(got, want);
    assert_eq!(prepared.hash(&headers[0]).unwrap(), want[0]);
    assert!(prepared.hash_batch(&[]).unwrap().is_empty());
}

#[test]
fn search_finds_exactly_the_cpu_hits() {
    let seed = [0x5a; 32];
    let backend = open_backend_with(
        "float",
        &BackendOptions {
            threads: 2,
            batch: 3,
            ..BackendOptions::default()
        },
    )
    .unwrap();
    let prepared = backend.prepare(&seed).unwrap();
    let template = HeaderTemplate::new(1, 300, &[4; 32], 1_700_000_000, &[5; 32], &[6; 32], 0);
    // The top byte of a little-endian result is below 0x80 for about half the nonces.
    let mut bound = [0xff; 32];
    bound[31] = 0x7f;
    let target = Target::from_le_bytes(bound);
    let nonces = 40..47;
    let stop = AtomicBool::new(false);
    let out = prepared
        .search(&template, nonces.clone(), &target, &stop)
        .unwrap();
    assert_eq!(out.hashes, 7);
    assert!(!out.stopped);
    // The oracle here is the best CPU integer kernel (itself checked against the reference
    // by `conformance.rs`): seven scalar reference hashes would dominate the suite's time.
    let cpu = KernelSeed::new(CpuKernel::best(), &seed).unwrap();
    let want: Vec<u64> = nonces
        .filter(|&n| target.is_met_by(&cpu.hash(&template.header_hash(n))))
        .collect();
    let got: Vec<u64> = out.hits.iter().map(|h| h.nonce).collect();
    assert_eq!(got, want);
    assert!(
        !got.is_empty() && got.len() < 7,
        "a target that splits the range: {got:?}"
    );
    for hit in &out.hits {
        assert_eq!(hit.header_hash, template.header_hash(hit.nonce));
        assert_eq!(hit.pow_hash, cpu.hash(&hit.header_hash));
    }
}
