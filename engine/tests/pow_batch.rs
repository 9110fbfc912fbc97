//! Batched proof-of-work verification: a PSWV window hands its proofs of work to the
//! [`PowCheck`] in one `check_batch` call; [`TensorityPow`] on the exact `float` backend gives
//! the reference's verdicts; and a device that lies or fails never gets a valid block
//! rejected, because every failing result is recomputed on the CPU.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bystack_engine::consensus::{initial_seed, Network, DEVNET_BITS};
use bystack_engine::devnet::{
    genesis_store, work_proof_error, ChainGenerator, FlaggedPow, GeneratorConfig,
};
use bystack_engine::genesis::genesis_block;
use bystack_engine::hash::{sha3, Hash};
use bystack_engine::pswv::{sequential, validate_window, ChainContext};
use bystack_engine::validation::{BlockError, BlockResult, PowCheck, TensorityPow};
use bystack_kernels::backend::{
    BackendError, BackendInfo, PreparedSeed, Result as BackendResult, SearchOutcome,
    TensorityBackend,
};
use bystack_kernels::pow::{big_to_compact, HeaderTemplate, Target};
use bystack_kernels::tensority::batch::CpuConfirm;
use num_bigint::BigInt;

/// A [`PowCheck`] double that counts how it is called; `bad` blocks fail their proof of work.
#[derive(Default)]
struct CountingPow {
    bad: Vec<Hash>,
    singles: AtomicUsize,
    batches: AtomicUsize,
    items: AtomicUsize,
}

impl PowCheck for CountingPow {
    fn check(&self, block_hash: &Hash, _seed: &Hash, _bits: u64) -> BlockResult<bool> {
        self.singles.fetch_add(1, Ordering::SeqCst);
        Ok(!self.bad.contains(block_hash))
    }

    fn check_batch(&self, items: &[(Hash, Hash, u64)]) -> Vec<BlockResult<bool>> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.items.fetch_add(items.len(), Ordering::SeqCst);
        items
            .iter()
            .map(|(hash, _, _)| Ok(!self.bad.contains(hash)))
            .collect()
    }
}

#[test]
fn a_pswv_window_issues_one_batch_and_keeps_the_sequential_decision() {
    let mut generator = ChainGenerator::new(GeneratorConfig::default());
    let blocks: Vec<_> = generator
        .generate(12)
        .into_iter()
        .map(|g| g.block)
        .collect();
    let genesis = generator.genesis().clone();
    let base = genesis_store(&genesis);
    let context = ChainContext::genesis(&genesis);
    let now = generator.now();

    let all_good = CountingPow::default();
    let result = validate_window(&blocks, &base, &context, now, &all_good);
    assert_eq!(result.outcome.accepted(), 12);
    assert!(result.outcome.failure.is_none());
    assert_eq!(all_good.batches.load(Ordering::SeqCst), 1, "one batch");
    assert_eq!(
        all_good.items.load(Ordering::SeqCst),
        12,
        "every block in it"
    );
    assert_eq!(
        all_good.singles.load(Ordering::SeqCst),
        0,
        "no single checks"
    );

    // Block 7 fails its proof of work: the window stops there, exactly as the sequential
    // path (which checks block by block) does, and still issues one batch.
    let one_bad = CountingPow {
        bad: vec![blocks[7].hash()],
        ..CountingPow::default()
    };
    let window = validate_window(&blocks, &base, &context, now, &one_bad);
    assert_eq!(one_bad.batches.load(Ordering::SeqCst), 1);
    assert_eq!(one_bad.singles.load(Ordering::SeqCst), 0);
    let failure = window.outcome.failure.clone().expect("block 7 fails");
    assert_eq!(failure.index, 7);
    assert_eq!(
        failure.error,
        bystack_engine::pswv::WindowError::Block(work_proof_error(&blocks[7]))
    );
    let mut store = genesis_store(&genesis);
    let reference = sequential::validate_and_apply(&blocks, &mut store, &context, now, &one_bad);
    assert_eq!(window.outcome, reference);
    assert_eq!(
        one_bad.singles.load(Ordering::SeqCst),
        8,
        "the sequential path checks blocks 0..=7 one by one"
    );
}

#[test]
fn the_default_check_batch_checks_each_item() {
    let mut generator = ChainGenerator::new(GeneratorConfig::default());
    let generated = generator.generate(3);
    let pow = FlaggedPow::from_blocks(&generated);
    let items: Vec<(Hash, Hash, u64)> = generated
        .iter()
        .map(|g| (g.block.hash(), initial_seed(), g.block.header.bits))
        .collect();
    let verdicts: Vec<bool> = pow
        .check_batch(&items)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(verdicts, [true, true, true]);
}

/// Compact bits of the target 2^255: about half of all results meet it.
fn half_bits() -> u64 {
    big_to_compact(&(BigInt::from(1) << 255))
}

/// The devnet genesis (valid under its own bits and the initial seed) and hashes under two
/// seeds with half-easy bits, so that the batch mixes passing and failing proofs of work.
fn mixed_items() -> Vec<(Hash, Hash, u64)> {
    let genesis = genesis_block(Network::Devnet);
    let other_seed = sha3(b"pow_batch other seed");
    let mut items = vec![(genesis.hash(), initial_seed(), DEVNET_BITS)];
    for i in 0..5u8 {
        let seed = if i % 2 == 0 {
            initial_seed()
        } else {
            other_seed
        };
        items.push((sha3(&[b'h', i]), seed, half_bits()));
    }
    items
}

#[test]
fn float_backend_gives_the_reference_verdicts_on_a_mixed_batch() {
    let items = mixed_items();
    let reference = TensorityPow::open("reference", 2).unwrap();
    assert!(!reference.confirms_on_cpu());
    let want = reference.verify_batch(&items);
    let float = TensorityPow::open("float", 2).unwrap();
    assert!(float.confirms_on_cpu(), "float is a device path");
    let got = float.verify_batch(&items);
    assert_eq!(got, want);
    let verdicts: Vec<bool> = float
        .check_batch(&items)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(
        verdicts,
        want.iter()
            .map(|v| v.as_ref().unwrap().1)
            .collect::<Vec<_>>()
    );
    assert!(verdicts[0], "the devnet genesis meets its bits");
    assert!(verdicts.contains(&false), "some fail: {verdicts:?}");
    assert!(verdicts[1..].contains(&true), "some pass: {verdicts:?}");
    // The float path is exact: the CPU re-check of its rejections never overrules it.
    assert_eq!(float.device_rejections_overruled(), 0);
    assert_eq!(float.device_errors_recovered(), 0);
}

/// What a [`LyingBackend`] does wrong.
#[derive(Clone, Copy)]
enum Lie {
    /// Every result is `ff…ff`, which fails every target.
    WrongHashes,
    /// Every batch fails with a device error.
    DeviceError,
}

/// A test device that lies about every result.
struct LyingBackend(Lie);

struct LyingSeed {
    seed: [u8; 32],
    lie: Lie,
}

impl TensorityBackend for LyingBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "liar".into(),
            device: "test double".into(),
            kernel: "lies".into(),
            parallelism: 1,
            capabilities: Vec::new(),
            available: true,
            description: "returns wrong hashes".into(),
        }
    }

    fn prepare(&self, seed: &[u8; 32]) -> BackendResult<Arc<dyn PreparedSeed>> {
        Ok(Arc::new(LyingSeed {
            seed: *seed,
            lie: self.0,
        }))
    }
}

impl PreparedSeed for LyingSeed {
    fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    fn hash(&self, _header_hash: &[u8; 32]) -> BackendResult<[u8; 32]> {
        match self.lie {
            Lie::WrongHashes => Ok([0xff; 32]),
            Lie::DeviceError => Err(BackendError::Device {
                device: "liar".into(),
                message: "lost".into(),
            }),
        }
    }

    fn search(
        &self,
        _template: &HeaderTemplate,
        _nonces: Range<u64>,
        _target: &Target,
        _stop: &AtomicBool,
    ) -> BackendResult<SearchOutcome> {
        Ok(SearchOutcome::default())
    }
}

/// The devnet genesis (valid) and a header that fails the devnet bits on the CPU.
fn valid_and_invalid() -> [(Hash, Hash, u64); 2] {
    let genesis = genesis_block(Network::Devnet);
    let cpu = CpuConfirm::new(initial_seed().as_bytes()).unwrap();
    let invalid = (0u8..)
        .map(|i| sha3(&[b'x', i]))
        .find(|h| !bystack_kernels::pow::meets_bits(&cpu.hash(h.as_bytes()), DEVNET_BITS))
        .unwrap();
    [
        (genesis.hash(), initial_seed(), DEVNET_BITS),
        (invalid, initial_seed(), DEVNET_BITS),
    ]
}

#[test]
fn a_lying_device_is_overruled_by_the_cpu() {
    let items = valid_and_invalid();
    let pow = TensorityPow::new(Box::new(LyingBackend(Lie::WrongHashes)));
    assert!(pow.confirms_on_cpu());
    let verdicts: Vec<bool> = pow
        .check_batch(&items)
        .into_iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(verdicts, [true, false], "the CPU's verdicts");
    assert_eq!(pow.device_rejections_overruled(), 1);
    // The result reported is the CPU's, not the device's.
    let verified = pow.verify_batch(&items[..1]);
    let (pow_hash, valid) = verified[0].clone().unwrap();
    assert!(valid);
    assert_eq!(
        pow_hash,
        bystack_kernels::tensority(items[0].0.as_bytes(), items[0].1.as_bytes())
    );
    assert_eq!(pow.device_rejections_overruled(), 2);
    // The single check is confirmed too.
    assert!(pow.check(&items[0].0, &items[0].1, items[0].2).unwrap());
    assert_eq!(pow.device_rejections_overruled(), 3);
    // But the device's word is the verdict when it was the CPU's too.
    assert_eq!(pow.check(&items[1].0, &items[1].1, items[1].2), Ok(false));
    assert_eq!(pow.device_rejections_overruled(), 3);
}

#[test]
fn a_failing_device_falls_back_to_the_cpu() {
    let items = valid_and_invalid();
    let pow = TensorityPow::new(Box::new(LyingBackend(Lie::DeviceError)));
    let verdicts: Vec<BlockResult<bool>> = pow.check_batch(&items);
    assert_eq!(verdicts, [Ok(true), Ok(false)]);
    assert_eq!(pow.device_errors_recovered(), 1);
    assert_eq!(pow.device_rejections_overruled(), 0);
}

#[test]
fn an_integer_cpu_backend_is_not_second_guessed() {
    for name in ["reference", "cpu-portable", "auto"] {
        let pow = TensorityPow::open(name, 1).unwrap();
        assert!(!pow.confirms_on_cpu(), "{name}");
    }
    let err = TensorityPow::open("no-such-backend", 1).unwrap_err();
    assert!(matches!(err, BlockError::PowBackend { .. }), "{err}");
}
