//! Conformance with Bytom v1.1.1 on `chain.json`: the three genesis blocks, the serialized
//! blocks, headers and transactions from Bytom's own tests (with their negative cases), the
//! independent-implementation transactions and the constants. Every vector is counted so none
//! is skipped silently.

mod common;

use std::collections::BTreeSet;

use bystack_engine::block::{Block, BlockHeader};
use bystack_engine::encoding::DecodeError;
use bystack_engine::entries::EntryType;
use bystack_engine::hash::{sha3, Hash, BTM_ASSET_ID};
use bystack_engine::merkle;
use bystack_engine::tx::{Transaction, TxInput};
use bystack_kernels::hex;
use common::{bytes, h, hashes, list, load, s, u};
use serde_json::Value;

fn entry_type(name: &str) -> EntryType {
    match name {
        "mux1" => EntryType::Mux,
        "spend1" => EntryType::Spend,
        "output1" => EntryType::Output,
        "issuance1" => EntryType::Issuance,
        "coinbase1" => EntryType::Coinbase,
        "retirement1" => EntryType::Retirement,
        "txheader" => EntryType::TxHeader,
        "blockheader" => EntryType::BlockHeader,
        other => panic!("unknown entry type {other:?} in vectors"),
    }
}

fn sorted(ids: &[Hash]) -> Vec<Hash> {
    let mut v = ids.to_vec();
    v.sort();
    v
}

/// Checks a decoded transaction against a vector's `decoded` / `txs[i]` object: every field the
/// vector carries.
fn check_tx(want: &Value, tx: &Transaction, ctx: &str) {
    let raw = bytes(want, "hex");
    assert_eq!(
        tx.encode().expect("encodes"),
        raw,
        "{ctx}: re-encode byte-exact"
    );
    assert_eq!(tx.id(), h(want, "tx_id"), "{ctx}: tx id");
    assert_eq!(
        tx.serialized_size,
        u(want, "serialized_size"),
        "{ctx}: serialized size"
    );
    assert_eq!(tx.data.version, u(want, "version"), "{ctx}: version");
    assert_eq!(
        tx.data.time_range,
        u(want, "time_range"),
        "{ctx}: time range"
    );
    let m = &tx.mapped;
    assert_eq!(m.mux_id, h(want, "mux_id"), "{ctx}: mux id");
    assert_eq!(m.input_ids, hashes(want, "input_ids"), "{ctx}: input ids");
    assert_eq!(
        m.result_ids(),
        hashes(want, "result_ids"),
        "{ctx}: result ids"
    );
    assert_eq!(
        m.sighashes(),
        hashes(want, "sighash_per_input"),
        "{ctx}: sighashes"
    );
    // Bytom lists spent outputs in Go map order: compare as sets.
    assert_eq!(
        sorted(&m.spent_output_ids),
        sorted(&hashes(want, "spent_output_ids")),
        "{ctx}: spent output ids"
    );
    // The entry map, as a set of (type, id).
    let want_entries: BTreeSet<(EntryType, Hash)> = list(want, "entries")
        .iter()
        .map(|e| (entry_type(s(e, "type")), h(e, "id")))
        .collect();
    let got_entries: BTreeSet<(EntryType, Hash)> =
        m.entries.iter().map(|e| (e.kind, e.id)).collect();
    assert_eq!(got_entries, want_entries, "{ctx}: entries");
    assert_eq!(
        m.entries.len(),
        want_entries.len(),
        "{ctx}: entries distinct"
    );

    let inputs = list(want, "inputs");
    assert_eq!(tx.data.inputs.len(), inputs.len(), "{ctx}: input count");
    for (i, (got, want)) in tx.data.inputs.iter().zip(inputs).enumerate() {
        let ctx = format!("{ctx} input {i}");
        assert_eq!(got.kind(), s(want, "type"), "{ctx}: kind");
        let args: Vec<Vec<u8>> = list(want, "arguments")
            .iter()
            .map(|a| hex::decode(a.as_str().expect("hex")).expect("hex"))
            .collect();
        match got {
            TxInput::Spend(sp) => {
                assert_eq!(sp.asset_id, h(want, "asset_id"), "{ctx}: asset");
                assert_eq!(sp.amount, u(want, "amount"), "{ctx}: amount");
                assert_eq!(sp.source_id, h(want, "source_id"), "{ctx}: source id");
                let pos = want.get("source_position").and_then(Value::as_u64);
                assert_eq!(sp.source_position, pos.unwrap_or(0), "{ctx}: position");
                assert_eq!(
                    sp.control_program,
                    bytes(want, "control_or_issuance_program"),
                    "{ctx}: program"
                );
                assert_eq!(sp.arguments, args, "{ctx}: arguments");
                assert_eq!(
                    m.inputs[i].spent_output_id(),
                    Some(h(want, "spent_output_id")),
                    "{ctx}: spent output id"
                );
            }
            TxInput::Issuance(is) => {
                assert_eq!(is.asset_id(), h(want, "asset_id"), "{ctx}: asset");
                assert_eq!(is.amount, u(want, "amount"), "{ctx}: amount");
                assert_eq!(is.nonce, bytes(want, "nonce"), "{ctx}: nonce");
                assert_eq!(
                    is.asset_definition,
                    bytes(want, "asset_definition"),
                    "{ctx}: definition"
                );
                assert_eq!(
                    is.issuance_program,
                    bytes(want, "control_or_issuance_program"),
                    "{ctx}: program"
                );
                assert_eq!(is.arguments, args, "{ctx}: arguments");
            }
            TxInput::Coinbase(cb) => {
                assert_eq!(cb.arbitrary, bytes(want, "arbitrary"), "{ctx}: arbitrary");
            }
            TxInput::Opaque(_) => panic!("{ctx}: no opaque inputs in the vectors"),
        }
    }

    let outputs = list(want, "outputs");
    assert_eq!(tx.data.outputs.len(), outputs.len(), "{ctx}: output count");
    for (j, (got, want)) in tx.data.outputs.iter().zip(outputs).enumerate() {
        assert_eq!(got.asset_id, h(want, "asset_id"), "{ctx} output {j}: asset");
        assert_eq!(got.amount, u(want, "amount"), "{ctx} output {j}: amount");
        assert_eq!(
            got.control_program,
            bytes(want, "control_program"),
            "{ctx} output {j}: program"
        );
    }

    // The standalone decoder agrees with the in-block one.
    let alone = Transaction::decode(&raw).expect("decodes on its own");
    assert_eq!(&alone, tx, "{ctx}: standalone decode");
}

/// Header fields the vectors carry at the top level of a block or header object.
fn check_header_fields(want: &Value, header: &BlockHeader, ctx: &str) {
    assert_eq!(header.hash(), h(want, "hash"), "{ctx}: hash");
    assert_eq!(header.height, u(want, "height"), "{ctx}: height");
    assert_eq!(
        header.previous_block_hash,
        h(want, "previous_block_hash"),
        "{ctx}: previous"
    );
    assert_eq!(header.timestamp, u(want, "timestamp"), "{ctx}: timestamp");
    assert_eq!(header.nonce, u(want, "nonce"), "{ctx}: nonce");
    assert_eq!(header.bits, u(want, "bits"), "{ctx}: bits");
    if want.get("version").is_some() {
        assert_eq!(header.version, u(want, "version"), "{ctx}: version");
    }
    if let Some(bits_hex) = want.get("bits_hex").and_then(Value::as_str) {
        assert_eq!(format!("{:016x}", header.bits), bits_hex, "{ctx}: bits hex");
    }
    if want.get("transactions_merkle_root").is_some() {
        assert_eq!(
            header.transactions_merkle_root,
            h(want, "transactions_merkle_root"),
            "{ctx}: tx root"
        );
        assert_eq!(
            header.transaction_status_hash,
            h(want, "transaction_status_hash"),
            "{ctx}: status root"
        );
    }
}

/// Decodes a full block vector (`block_hex`/`hex` plus `header_hex`) and checks everything.
/// Returns how many transactions were checked.
fn check_block(want: &Value, hex_key: &str, ctx: &str) -> usize {
    let raw = bytes(want, hex_key);
    let block = Block::decode(&raw).unwrap_or_else(|e| panic!("{ctx}: block decode: {e}"));
    assert_eq!(
        block.encode().expect("encodes"),
        raw,
        "{ctx}: block re-encode"
    );
    assert_eq!(
        Block::from_hex(s(want, hex_key)).expect("hex"),
        block,
        "{ctx}: from_hex"
    );
    check_header_fields(want, &block.header, ctx);
    if let Some(size) = want.get("block_size_bytes").and_then(Value::as_u64) {
        assert_eq!(raw.len() as u64, size, "{ctx}: block size");
    }

    // The header on its own, and the header read from the full block.
    let header_raw = bytes(want, "header_hex");
    let header = BlockHeader::decode(&header_raw).expect("header decodes");
    assert_eq!(header, block.header, "{ctx}: header_hex = block header");
    assert_eq!(
        header.encode().expect("encodes"),
        header_raw,
        "{ctx}: header re-encode"
    );
    assert_eq!(
        BlockHeader::decode(&raw).expect("header of a full block"),
        block.header,
        "{ctx}: header from block bytes"
    );

    assert_eq!(block.tx_ids(), hashes(want, "tx_ids"), "{ctx}: tx ids");
    let all_ok = vec![false; block.transactions.len()];
    let tx_root = block.compute_tx_merkle_root();
    let status_root = merkle::tx_status_merkle_root(&all_ok);
    if want.get("computed_tx_merkle_root").is_some() {
        assert_eq!(
            tx_root,
            h(want, "computed_tx_merkle_root"),
            "{ctx}: tx root"
        );
        assert_eq!(
            status_root,
            h(want, "computed_status_root_if_all_ok"),
            "{ctx}: status root"
        );
        assert_eq!(
            tx_root == block.header.transactions_merkle_root,
            want["tx_merkle_root_matches"]
                .as_bool()
                .expect("tx_merkle_root_matches"),
            "{ctx}: tx root matches"
        );
    } else {
        // Genesis: the header's roots are the recomputed ones.
        assert_eq!(tx_root, block.header.transactions_merkle_root, "{ctx}");
        assert_eq!(status_root, block.header.transaction_status_hash, "{ctx}");
    }

    let txs = list(want, "txs");
    assert_eq!(block.transactions.len(), txs.len(), "{ctx}: tx count");
    for (i, (tx, want_tx)) in block.transactions.iter().zip(txs).enumerate() {
        check_tx(want_tx, tx, &format!("{ctx} tx {i}"));
    }
    txs.len()
}

#[test]
fn genesis_blocks() {
    let v = load("chain.json");
    let genesis = v["genesis"].as_object().expect("genesis object");
    let mut checked = Vec::new();
    for (network, g) in genesis {
        let txs = check_block(g, "block_hex", &format!("genesis {network}"));
        assert_eq!(txs, 1, "genesis {network} has the coinbase only");
        let coinbase = &Block::from_hex(s(g, "block_hex")).unwrap().transactions[0];
        assert_eq!(coinbase.mapped.gas_input_ids, coinbase.mapped.input_ids);
        checked.push(network.as_str());
    }
    checked.sort();
    assert_eq!(checked, ["mainnet", "solonet", "testnet"]);
}

#[test]
fn bytom_test_file_vectors() {
    let v = load("chain.json");
    let section = &v["bytom_test_file_vectors"];
    let vectors = list(section, "vectors");
    assert_eq!(vectors.len() as u64, u(section, "count"));
    assert_eq!(vectors.len(), 23);

    let (mut txs, mut headers, mut blocks, mut block_txs) = (0, 0, 0, 0);
    for (i, vec) in vectors.iter().enumerate() {
        let ctx = format!("vector {i} ({})", s(vec, "source"));
        let kind = s(vec, "kind");
        if let Some(ok) = vec.get("roundtrip_ok").and_then(Value::as_bool) {
            assert!(ok, "{ctx}: every vector re-encodes in Go");
        }
        match kind {
            "tx" => {
                let tx = Transaction::from_hex(s(vec, "hex"))
                    .unwrap_or_else(|e| panic!("{ctx}: decode: {e}"));
                assert_eq!(s(&vec["decoded"], "hex"), s(vec, "hex"));
                check_tx(&vec["decoded"], &tx, &ctx);
                txs += 1;
            }
            "block" => {
                let decoded = &vec["decoded"];
                assert_eq!(s(decoded, "hex"), s(vec, "hex"));
                block_txs += check_block(decoded, "hex", &ctx);
                blocks += 1;
            }
            k if k.starts_with("block_header") => {
                let raw = bytes(vec, "hex");
                let header =
                    BlockHeader::decode(&raw).unwrap_or_else(|e| panic!("{ctx}: decode: {e}"));
                check_header_fields(vec, &header, &ctx);
                assert_eq!(header.encode().unwrap(), raw, "{ctx}: re-encode");
                // Read as a block it has no transactions (Bytom stops after a 0x01 header).
                let block = Block::decode(&raw).expect("header-only block");
                assert!(block.transactions.is_empty());
                headers += 1;
            }
            other => panic!("{ctx}: unknown kind {other:?}"),
        }
    }
    assert_eq!((txs, headers, blocks, block_txs), (16, 4, 3, 4));
}

/// Which error a Go message corresponds to, as a predicate on our error.
fn expected_error(go: &str) -> (&'static str, fn(&DecodeError, &str) -> bool) {
    fn serflags(e: &DecodeError, go: &str) -> bool {
        let digits = go.rsplit("0x").next().unwrap_or("");
        let want = u8::from_str_radix(digits, 16).expect("flags in the Go message");
        matches!(e, DecodeError::BadSerflags { got, .. } if *got == want)
    }
    if go.starts_with("unsupported serialization flags") || go.starts_with("unsupported serflags") {
        ("BadSerflags", serflags)
    } else if go.contains("odd length hex") {
        ("Hex(Length)", |e, _| {
            matches!(
                e,
                DecodeError::Hex(bystack_kernels::hex::HexError::Length { .. })
            )
        })
    } else if go.contains("varint overflows") {
        ("VarintOverflow", |e, _| {
            matches!(e, DecodeError::VarintOverflow)
        })
    } else if go == "EOF" || go.contains("unexpected EOF") {
        ("UnexpectedEof", |e, _| {
            matches!(e, DecodeError::UnexpectedEof { .. })
        })
    } else if go.contains("value out of range") {
        (
            "VarintRange",
            |e, _| matches!(e, DecodeError::VarintRange { max, .. } if *max == i64::MAX as u64),
        )
    } else if go.contains("asset ID does not match") {
        (
            "BadAssetId",
            |e, _| matches!(e, DecodeError::BadAssetId { committed, computed } if committed != computed),
        )
    } else {
        panic!("no mapping for Go error {go:?}")
    }
}

#[test]
fn negative_cases_fail_with_the_right_error() {
    let v = load("chain.json");
    let cases = list(&v["bytom_test_file_vectors"], "negative_cases");
    assert_eq!(cases.len(), 6);
    let mut checked = 0;
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(s(case, "expected"), "decode error");
        let text = s(case, "hex");
        let go = list(case, "go_errors_block_tx_header");
        assert_eq!(go.len(), 3, "case {i}: block, tx and header errors");
        let results = [
            ("block", Block::from_hex(text).map(|_| ())),
            ("tx", Transaction::from_hex(text).map(|_| ())),
            ("header", BlockHeader::from_hex(text).map(|_| ())),
        ];
        for ((what, result), go) in results.into_iter().zip(go) {
            let go = go.as_str().expect("Go error string");
            let (name, matches) = expected_error(go);
            let err = result.expect_err(&format!("case {i} as {what} must fail ({go})"));
            assert!(
                matches(&err, go),
                "case {i} as {what}: Go says {go:?}, expected {name}, got {err:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 18);
}

#[test]
fn independent_implementation_txs() {
    let v = load("chain.json");
    let vectors = list(&v["independent_impl_tx_vectors"], "vectors");
    assert_eq!(vectors.len(), 4);
    let mut agreeing = 0;
    for (i, vec) in vectors.iter().enumerate() {
        let ctx = format!("independent {i} ({})", s(vec, "source"));
        let raw = bytes(vec, "hex");
        let tx = Transaction::decode(&raw).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(tx.encode().unwrap(), raw, "{ctx}: re-encode");
        assert_eq!(tx.id(), h(vec, "bytom_v111_tx_id"), "{ctx}: tx id");
        assert_eq!(
            tx.mapped.sighashes(),
            hashes(vec, "bytom_v111_sighashes"),
            "{ctx}: sighashes"
        );
        assert_eq!(tx.serialized_size, u(vec, "serialized_size"), "{ctx}: size");
        let stated_match = tx.id() == h(vec, "stated_tx_id")
            && tx.mapped.sighashes() == hashes(vec, "stated_sighashes");
        assert_eq!(
            stated_match,
            vec["matches"].as_bool().expect("matches"),
            "{ctx}: agreement with the independent implementation"
        );
        agreeing += usize::from(stated_match);
    }
    assert_eq!(agreeing, 3, "the vapor-format tx is the one that differs");
}

#[test]
fn constants() {
    let v = load("chain.json");
    let c = &v["constants"];
    assert_eq!(
        merkle::empty_root(),
        h(c, "empty_merkle_root_sha3_256_of_empty_string")
    );
    assert_eq!(merkle::tx_merkle_root(&[]), merkle::empty_root());
    assert_eq!(merkle::tx_status_merkle_root(&[]), merkle::empty_root());
    assert_eq!(BTM_ASSET_ID, h(c, "btm_asset_id"));
    assert_eq!(sha3(&[0; 32]), h(c, "initial_seed"));
}
