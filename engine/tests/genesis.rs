//! The genesis builders against Bytom's real genesis blocks (../shared/vectors/chain.json).

mod common;

use bystack_engine::consensus::{initial_seed, Network};
use bystack_engine::genesis::genesis_block;

#[test]
fn built_genesis_blocks_equal_bytoms_byte_for_byte() {
    let vectors = common::load("chain.json");
    for (name, network) in [
        ("mainnet", Network::Mainnet),
        ("testnet", Network::Testnet),
        ("solonet", Network::Solonet),
    ] {
        let v = &vectors["genesis"][name];
        let block = genesis_block(network);
        assert_eq!(
            block.to_hex().unwrap(),
            v["block_hex"].as_str().unwrap(),
            "{name} block"
        );
        assert_eq!(
            block.header.to_hex().unwrap(),
            v["header_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            block.hash().to_hex(),
            v["hash"].as_str().unwrap(),
            "{name} hash"
        );
        assert_eq!(block.header.bits, v["bits"].as_u64().unwrap());
        // The PoW flag of the vectors, recomputed with the reference Tensority.
        let pow = bystack_kernels::tensority(block.hash().as_bytes(), initial_seed().as_bytes());
        assert_eq!(
            bystack_kernels::pow::meets_bits(&pow, block.header.bits),
            v["pow_valid_with_initial_seed"].as_bool().unwrap(),
            "{name} pow"
        );
    }
}

#[test]
fn devnet_genesis_is_distinct_and_round_trips() {
    let block = genesis_block(Network::Devnet);
    let mainnet = genesis_block(Network::Mainnet);
    assert_ne!(block.hash(), mainnet.hash());
    let bytes = block.encode().unwrap();
    assert_eq!(bystack_engine::Block::decode(&bytes).unwrap(), block);
}

#[test]
fn subsidy_samples_and_constants() {
    let vectors = common::load("chain.json");
    let c = &vectors["constants"];
    let samples = c["block_subsidy_samples"].as_array().unwrap();
    assert_eq!(samples.len(), 7);
    for s in samples {
        let height = s["height"].as_u64().unwrap();
        assert_eq!(
            bystack_engine::consensus::block_subsidy(height),
            s["subsidy"].as_u64().unwrap(),
            "height {height}"
        );
    }
    assert_eq!(initial_seed().to_hex(), c["initial_seed"].as_str().unwrap());
    assert_eq!(
        bystack_engine::BTM_ASSET_ID.to_hex(),
        c["btm_asset_id"].as_str().unwrap()
    );
}

#[test]
fn next_bits_follows_the_retarget_vectors() {
    let vectors = common::load("tensority.json");
    let cases = vectors["difficulty"]["calc_next_required_difficulty"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 24);
    for case in cases {
        let u = |k: &str| case[k].as_u64().unwrap();
        assert_eq!(
            bystack_engine::consensus::next_bits(
                u("last_height"),
                u("last_timestamp"),
                u("last_bits"),
                u("compare_timestamp")
            ),
            u("want_bits"),
            "{case}"
        );
    }
}
