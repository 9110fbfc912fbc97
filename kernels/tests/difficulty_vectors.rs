//! The PoW rule against Bytom v1.1.1's difficulty vectors (../shared/vectors/tensority.json):
//! 24 retargets, 3 hash-to-big, 56 work, 9 big-to-compact, 9 compact-to-big = 101 cases.

mod common;

use bystack_kernels::pow::{
    big_to_compact, calc_next_required_difficulty, calc_work, compact_to_big, hash_to_big,
};
use common::{hex32, load};
use num_bigint::{BigInt, BigUint};

fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("u64 expected, got {v}"))
}

fn hex_u64(v: &serde_json::Value) -> u64 {
    u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn all_101_difficulty_vectors() {
    let vectors = load("tensority.json");
    let d = &vectors["difficulty"];
    let mut count = 0;

    for case in d["calc_next_required_difficulty"].as_array().unwrap() {
        let got = calc_next_required_difficulty(
            u64_of(&case["last_height"]),
            u64_of(&case["last_timestamp"]),
            u64_of(&case["last_bits"]),
            u64_of(&case["compare_timestamp"]),
        );
        assert_eq!(got, u64_of(&case["want_bits"]), "retarget {case}");
        count += 1;
    }
    for case in d["hash_to_big"].as_array().unwrap() {
        let want = BigUint::parse_bytes(
            case["value_hex"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x")
                .as_bytes(),
            16,
        )
        .unwrap();
        assert_eq!(
            hash_to_big(&hex32(&case["hash"])),
            want,
            "hash_to_big {case}"
        );
        count += 1;
    }
    for case in d["calc_work"].as_array().unwrap() {
        let bits = hex_u64(&case["bits_hex"]);
        assert_eq!(bits, u64_of(&case["bits"]));
        let want: BigUint = case["work"].as_str().unwrap().parse().unwrap();
        assert_eq!(calc_work(bits), want, "calc_work {case}");
        count += 1;
    }
    for case in d["big_to_compact"].as_array().unwrap() {
        let value: BigInt = case["value"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            big_to_compact(&value),
            hex_u64(&case["bits_hex"]),
            "big_to_compact {case}"
        );
        count += 1;
    }
    for case in d["compact_to_big"].as_array().unwrap() {
        let want: BigInt = case["value"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            compact_to_big(hex_u64(&case["bits_hex"])),
            want,
            "compact_to_big {case}"
        );
        count += 1;
    }
    assert_eq!(count, 101);
}

#[test]
fn compact_round_trips_on_canonical_encodings() {
    // Canonical encodings (mantissa normalised to 3 bytes) survive a round trip.
    let mut rng = common::Rng::new(11);
    for _ in 0..2000 {
        let exponent = 4 + rng.next_u64() % 60;
        let mantissa = (rng.next_u64() % 0x7f_ffff).max(0x1_0000);
        let sign = if rng.next_u64() & 1 == 1 {
            0x0080_0000_0000_0000
        } else {
            0
        };
        let bits = exponent << 56 | sign | mantissa;
        assert_eq!(big_to_compact(&compact_to_big(bits)), bits, "{bits:#x}");
    }
}
