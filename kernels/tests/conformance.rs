//! The conformance suite: every fast kernel against the scalar reference, bit for bit, on
//! random single products (with the extreme values −128 and 127) and random full hashes.
//! A kernel that this CPU cannot run is reported on stderr; the reference always runs.

mod common;

use bystack_kernels::tensority::cpu::{CpuKernel, KernelSeed};
use bystack_kernels::tensority::{reference, MATRIX_BYTES};
use common::{operand, Rng};

fn fast_kernels() -> Vec<CpuKernel> {
    let kernels: Vec<CpuKernel> = CpuKernel::ALL
        .into_iter()
        .filter(|k| *k != CpuKernel::Reference)
        .filter(|k| {
            let ok = k.is_supported();
            if !ok {
                eprintln!(
                    "kernel {} not supported on this CPU: not tested here",
                    k.name()
                );
            }
            ok
        })
        .collect();
    assert!(
        kernels.contains(&CpuKernel::Portable),
        "the portable kernel runs everywhere"
    );
    kernels
}

#[test]
fn random_products_match_the_reference() {
    const CASES: usize = 1000;
    let kernels = fast_kernels();
    let mut rng = Rng::new(2024);
    let mut reference_out = vec![0u8; MATRIX_BYTES];
    for case in 0..CASES {
        // The first 25 cases pair every operand family with every other; later ones are
        // random bytes, with one in ten drawn from the mixed-extreme families.
        let family = |rng: &mut Rng| match rng.next_u64() % 20 {
            0 => 2,
            1 => 3,
            _ => 4,
        };
        let (fa, fm) = if case < 25 {
            ((case / 5) as u64, (case % 5) as u64)
        } else {
            (family(&mut rng), family(&mut rng))
        };
        let a = operand(&mut rng, fa);
        let m = operand(&mut rng, fm);
        reference::product(&a, &m, &mut reference_out);
        for &k in &kernels {
            let got = k.product(&a, &m).unwrap();
            if got != reference_out {
                let at = got
                    .iter()
                    .zip(&reference_out)
                    .position(|(x, y)| x != y)
                    .unwrap();
                panic!(
                    "kernel {} differs from the reference in case {case} at byte {at}",
                    k.name()
                );
            }
        }
    }
}

#[test]
fn random_full_hashes_match_the_reference() {
    const SEEDS: usize = 10;
    const HEADERS_PER_SEED: usize = 5;
    let kernels = fast_kernels();
    let mut rng = Rng::new(77);
    for _ in 0..SEEDS {
        let seed = rng.bytes32();
        let reference_seed = KernelSeed::new(CpuKernel::Reference, &seed).unwrap();
        let prepared: Vec<KernelSeed> = kernels
            .iter()
            .map(|&k| KernelSeed::new(k, &seed).unwrap())
            .collect();
        for _ in 0..HEADERS_PER_SEED {
            let header = rng.bytes32();
            let want = reference_seed.hash(&header);
            for p in &prepared {
                assert_eq!(
                    p.hash(&header),
                    want,
                    "kernel {} on a random header",
                    p.kernel().name()
                );
            }
        }
    }
}

#[test]
fn backend_search_finds_exactly_the_reference_hits() {
    use bystack_kernels::pow::{HeaderTemplate, Target};
    use std::sync::atomic::AtomicBool;

    let template = HeaderTemplate::new(1, 7, &[9; 32], 1_700_000_000, &[1; 32], &[2; 32], 0);
    let seed = [5u8; 32];
    // A target that roughly a quarter of hashes meet: top byte of the LE value below 0x40.
    let mut bound = [0xffu8; 32];
    bound[31] = 0x3f;
    let target = Target::from_le_bytes(bound);
    let nonces = 1000..1016;
    let reference = KernelSeed::new(CpuKernel::Reference, &seed).unwrap();
    let expected: Vec<u64> = nonces
        .clone()
        .filter(|&n| target.is_met_by(&reference.hash(&template.header_hash(n))))
        .collect();
    assert!(
        !expected.is_empty() && expected.len() < 16,
        "the test target must split the range"
    );
    let backend = bystack_kernels::open_backend("auto", 2).unwrap();
    let prepared = backend.prepare(&seed).unwrap();
    let outcome = prepared
        .search(&template, nonces.clone(), &target, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(outcome.hashes, 16);
    assert!(!outcome.stopped);
    assert_eq!(
        outcome.hits.iter().map(|h| h.nonce).collect::<Vec<_>>(),
        expected
    );
    for hit in &outcome.hits {
        assert_eq!(hit.header_hash, template.header_hash(hit.nonce));
        assert_eq!(hit.pow_hash, reference.hash(&hit.header_hash));
    }
    // A raised stop flag ends the search before any hash.
    let stopped = prepared
        .search(&template, nonces, &target, &AtomicBool::new(true))
        .unwrap();
    assert!(stopped.stopped && stopped.hashes == 0 && stopped.hits.is_empty());
}
