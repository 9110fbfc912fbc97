//! Tensority against the real vectors (../shared/vectors/tensority.json) on every backend this
//! machine offers, and the mainnet-genesis intermediates dump.

mod common;

use bystack_kernels::hex;
use bystack_kernels::tensority::cpu::{CpuKernel, KernelSeed};
use bystack_kernels::tensority::seed::{extend_seed, shared_matrices};
use bystack_kernels::tensority::{chain_sequence, sha3_256, SIDE};
use common::{hex32, load};

fn supported_kernels() -> Vec<CpuKernel> {
    CpuKernel::ALL
        .into_iter()
        .filter(|k| k.is_supported())
        .collect()
}

#[test]
fn every_vector_on_every_available_backend() {
    let vectors = load("tensority.json");
    let list = vectors["tensority"].as_array().expect("tensority list");
    assert_eq!(list.len(), 12);
    let names = bystack_kernels::list_backends().into_iter().map(|b| b.name);
    for name in std::iter::once("auto".to_string()).chain(names) {
        let backend = match bystack_kernels::open_backend(&name, 2) {
            Ok(b) => b,
            Err(e) => {
                // Only a missing CPU feature may skip a named kernel; say so loudly.
                assert!(matches!(
                    e,
                    bystack_kernels::backend::BackendError::Unsupported { .. }
                ));
                eprintln!("skipping {name}: {e}");
                continue;
            }
        };
        for v in list {
            let prepared = backend.prepare(&hex32(&v["seed"])).unwrap();
            let got = prepared.hash(&hex32(&v["header_hash"])).unwrap();
            assert_eq!(
                hex::encode(&got),
                v["expected"].as_str().unwrap(),
                "backend {name}, vector {}",
                v["header_hash"]
            );
        }
    }
}

#[test]
fn genesis_pow_vector_meets_its_bits() {
    let vectors = load("tensority.json");
    let v = &vectors["tensority"][10];
    let bits = v["bits"].as_u64().unwrap();
    let result = hex32(&v["expected"]);
    assert!(bystack_kernels::pow::meets_bits(&result, bits));
    assert_eq!(v["pow_ok"], serde_json::Value::Bool(true));
}

#[test]
fn genesis_intermediates() {
    let vectors = load("tensority.json");
    let d = &vectors["intermediates_mainnet_genesis"];
    let seed = hex32(&d["seed"]);
    let header = hex32(&d["header_hash"]);
    assert_eq!(
        hex::encode(&extend_seed(&seed)),
        d["extended_seed_128B"].as_str().unwrap()
    );

    let mats = shared_matrices(&seed);
    let words = |bytes: &[u8]| -> Vec<String> {
        bytes
            .chunks_exact(4)
            .take(4)
            .map(|w| format!("{:08x}", u32::from_le_bytes(w.try_into().unwrap())))
            .collect()
    };
    // V_0[0] is row 0 of Mat[0] (first half); V_0[1] is row 0 of Mat[1].
    let expect_words = |key: &str| -> Vec<String> {
        d[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        words(&mats.matrix(0)[..16]),
        expect_words("scrypt_X_initial_words_u32")
    );
    assert_eq!(
        words(&mats.matrix(0)[..16]),
        expect_words("after_first_smix_V0_words_u32(=X_initial)")
    );
    assert_eq!(
        words(&mats.matrix(1)[..16]),
        expect_words("after_first_smix_V1_words_u32")
    );

    let ints = |bytes: &[u8]| -> Vec<i64> { bytes.iter().map(|&b| i64::from(b as i8)).collect() };
    let expect_ints = |key: &str| -> Vec<i64> {
        d[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        ints(&mats.matrix(0)[..16]),
        expect_ints("matrix0_row0_first16_int8")
    );
    assert_eq!(
        ints(&mats.matrix(0)[SIDE..SIDE + 16]),
        expect_ints("matrix0_row1_first16_int8")
    );
    assert_eq!(
        ints(&mats.matrix(1)[..16]),
        expect_ints("matrix1_row0_first16_int8")
    );
    assert_eq!(
        ints(&mats.matrix(255)[SIDE * SIDE - 16..]),
        expect_ints("matrix255_row255_last16_int8")
    );
    assert_eq!(
        hex::encode(&sha3_256(mats.as_bytes())),
        d["matrix_sha3_of_all_256x65536_int8_bytes"]
            .as_str()
            .unwrap()
    );
    // The final X of SMix call 0 is the first block written by call 1: row 0 of Mat[2].
    assert_eq!(
        words(&mats.matrix(2)[..16]),
        expect_words("after_first_smix_final_X_words_u32")
    );

    for kernel in supported_kernels() {
        let ks = KernelSeed::new(kernel, &seed).unwrap();
        let mut sum = bystack_kernels::tensority::zero_matrix();
        for k in 0..4 {
            let seq = chain_sequence(&header, k);
            assert_eq!(
                hex::encode(&seq),
                d[format!("chain{k}_sequence_sha3_of_header[{}:{}]", 8 * k, 8 * k + 8)]
                    .as_str()
                    .unwrap()
            );
            let first = kernel.product(&identity(), mats.matrix(seq[0])).unwrap();
            assert_eq!(
                ints(&first[..8]),
                expect_ints(&format!("chain{k}_after_1st_product_row0_first8")),
                "{kernel:?}"
            );
            let result = ks.chain(&seq);
            assert_eq!(
                ints(&result[..8]),
                expect_ints(&format!("chain{k}_final_row0_first8_int8")),
                "{kernel:?}"
            );
            assert_eq!(
                hex::encode(&sha3_256(&result[..])),
                d[format!("chain{k}_final_sha3_of_65536_int8_bytes")]
                    .as_str()
                    .unwrap(),
                "{kernel:?} chain {k}"
            );
            bystack_kernels::tensority::accumulate_chain(&mut sum, &result);
        }
        assert_eq!(
            hex::encode(&sha3_256(&sum[..])),
            d["sum_matrix_sha3_of_65536_uint8_bytes"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(&bystack_kernels::tensority::fnv_fold(&sum)),
            d["fnv_folded_row_256B"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(&ks.hash(&header)),
            d["result"].as_str().unwrap()
        );
    }
}

fn identity() -> Vec<u8> {
    let mut a = vec![0u8; SIDE * SIDE];
    for i in 0..SIDE {
        a[i * SIDE + i] = 1;
    }
    a
}
