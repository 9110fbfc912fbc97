//! Property tests of the wire formats: encode/decode round trips for generated headers,
//! transactions (every input kind, suffixes included) and blocks; and decoding of random,
//! truncated and mutated bytes never panics.

use bystack_engine::block::{Block, BlockHeader};
use bystack_engine::encoding::{DecodeError, VARINT63_MAX};
use bystack_engine::hash::{Hash, BTM_ASSET_ID};
use bystack_engine::tx::{
    CoinbaseInput, IssuanceInput, OpaqueInput, SpendInput, Transaction, TxData, TxInput, TxOutput,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn u63() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..300,
        Just(VARINT63_MAX),
        any::<u64>().prop_map(|v| v >> 1),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

/// Mostly empty, sometimes a few bytes (real data never has suffixes).
fn suffix() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => Just(Vec::new()), 1 => bytes(6)]
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn asset() -> impl Strategy<Value = Hash> {
    prop_oneof![Just(BTM_ASSET_ID), hash()]
}

fn args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(bytes(70), 0..3)
}

fn not_one() -> impl Strategy<Value = u64> {
    u63().prop_filter("asset version other than 1", |v| *v != 1)
}

fn spend() -> impl Strategy<Value = TxInput> {
    (
        (hash(), asset(), u63(), u63(), bytes(40)),
        (args(), suffix(), suffix(), suffix()),
    )
        .prop_map(
            |(
                (source_id, asset_id, amount, source_position, control_program),
                (arguments, spend_commitment_suffix, commitment_suffix, witness_suffix),
            )| {
                TxInput::Spend(SpendInput {
                    source_id,
                    asset_id,
                    amount,
                    source_position,
                    control_program,
                    arguments,
                    spend_commitment_suffix,
                    commitment_suffix,
                    witness_suffix,
                })
            },
        )
}

fn issuance() -> impl Strategy<Value = TxInput> {
    (
        (bytes(12), u63(), bytes(40), u63(), bytes(40)),
        (args(), suffix(), suffix()),
    )
        .prop_map(
            |(
                (nonce, amount, asset_definition, vm_version, issuance_program),
                (arguments, commitment_suffix, witness_suffix),
            )| {
                TxInput::Issuance(IssuanceInput {
                    nonce,
                    amount,
                    asset_definition,
                    vm_version,
                    issuance_program,
                    arguments,
                    commitment_suffix,
                    witness_suffix,
                })
            },
        )
}

fn coinbase() -> impl Strategy<Value = TxInput> {
    (bytes(40), suffix(), suffix()).prop_map(|(arbitrary, commitment_suffix, witness_suffix)| {
        TxInput::Coinbase(CoinbaseInput {
            arbitrary,
            commitment_suffix,
            witness_suffix,
        })
    })
}

fn opaque() -> impl Strategy<Value = TxInput> {
    (not_one(), bytes(20), bytes(20)).prop_map(|(asset_version, commitment, witness)| {
        TxInput::Opaque(OpaqueInput {
            asset_version,
            commitment,
            witness,
        })
    })
}

fn input() -> impl Strategy<Value = TxInput> {
    prop_oneof![3 => spend(), 1 => issuance(), 1 => coinbase(), 1 => opaque()]
}

fn output() -> impl Strategy<Value = TxOutput> {
    prop_oneof![
        4 => (asset(), u63(), bytes(40), suffix()).prop_map(
            |(asset_id, amount, control_program, commitment_suffix)| TxOutput {
                commitment_suffix,
                ..TxOutput::new(asset_id, amount, control_program)
            }
        ),
        1 => (not_one(), bytes(20)).prop_map(|(asset_version, commitment_suffix)| TxOutput {
            asset_version,
            asset_id: Hash::ZERO,
            amount: 0,
            control_program: Vec::new(),
            commitment_suffix,
        }),
    ]
}

fn tx_data() -> impl Strategy<Value = TxData> {
    (u63(), u63(), vec(input(), 0..4), vec(output(), 0..4)).prop_map(
        |(version, time_range, inputs, outputs)| TxData {
            version,
            time_range,
            inputs,
            outputs,
        },
    )
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (
        (u63(), u63(), hash(), u63()),
        (hash(), hash(), u63(), u63(), suffix()),
    )
        .prop_map(
            |(
                (version, height, previous_block_hash, timestamp),
                (transactions_merkle_root, transaction_status_hash, nonce, bits, commitment_suffix),
            )| BlockHeader {
                version,
                height,
                previous_block_hash,
                timestamp,
                transactions_merkle_root,
                transaction_status_hash,
                nonce,
                bits,
                commitment_suffix,
            },
        )
}

/// Transactions that map (a coinbase needs an output).
fn transaction() -> impl Strategy<Value = Transaction> {
    tx_data().prop_filter_map("coinbase without outputs", |d| Transaction::new(d).ok())
}

fn block() -> impl Strategy<Value = Block> {
    (header(), vec(transaction(), 0..3)).prop_map(|(header, transactions)| Block {
        header,
        transactions,
    })
}

/// Decodes `bytes` with every decoder; the point is that none of them panics.
fn decode_all(bytes: &[u8]) {
    let _ = BlockHeader::decode(bytes);
    let _ = TxData::decode(bytes);
    if let Ok(tx) = Transaction::decode(bytes) {
        // Whatever decodes re-encodes, and its normal form is a fixed point.
        let again = Transaction::decode(&tx.encode().expect("decoded values encode"))
            .expect("re-encoding decodes");
        assert_eq!(again.data, tx.data);
        assert_eq!(again.mapped, tx.mapped);
    }
    if let Ok(block) = Block::decode(bytes) {
        let again = Block::decode(&block.encode().expect("decoded values encode"))
            .expect("re-encoding decodes");
        assert_eq!(again.header, block.header);
        assert_eq!(again.tx_ids(), block.tx_ids());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn header_round_trip(h in header()) {
        let raw = h.encode().unwrap();
        prop_assert_eq!(&BlockHeader::decode(&raw).unwrap(), &h);
        prop_assert_eq!(BlockHeader::decode(&raw).unwrap().hash(), h.hash());
    }

    #[test]
    fn tx_round_trip(d in tx_data()) {
        let raw = d.encode().unwrap();
        prop_assert_eq!(&TxData::decode(&raw).unwrap(), &d);
        match Transaction::new(d.clone()) {
            Ok(tx) => {
                prop_assert_eq!(tx.serialized_size, raw.len() as u64);
                prop_assert_eq!(tx.data.inputs.len(), tx.mapped.input_ids.len());
                prop_assert_eq!(tx.data.outputs.len(), tx.mapped.results.len());
                prop_assert_eq!(Transaction::decode(&raw).unwrap(), tx);
            }
            Err(e) => {
                prop_assert_eq!(&e, &DecodeError::CoinbaseWithoutOutputs);
                prop_assert!(d.outputs.is_empty());
                prop_assert!(d.inputs.iter().any(|i| matches!(i, TxInput::Coinbase(_))));
                prop_assert_eq!(Transaction::decode(&raw), Err(e));
            }
        }
    }

    #[test]
    fn block_round_trip(b in block()) {
        let raw = b.encode().unwrap();
        let decoded = Block::decode(&raw).unwrap();
        prop_assert_eq!(&decoded, &b);
        prop_assert_eq!(Block::from_hex(&b.to_hex().unwrap()).unwrap(), b);
    }

    #[test]
    fn truncated_encodings_are_eof(b in block()) {
        let raw = b.encode().unwrap();
        for cut in 0..raw.len() {
            let eof = matches!(Block::decode(&raw[..cut]), Err(DecodeError::UnexpectedEof { .. }));
            prop_assert!(eof, "block cut at {}", cut);
        }
        for tx in &b.transactions {
            let raw = tx.encode().unwrap();
            for cut in 0..raw.len() {
                let eof = matches!(
                    Transaction::decode(&raw[..cut]),
                    Err(DecodeError::UnexpectedEof { .. })
                );
                prop_assert!(eof, "tx cut at {}", cut);
            }
        }
    }

}

// The robustness properties run many more cases: they are what a fuzzer checks, bounded in time
// so CI runs them on every change (the cargo-fuzz targets in fuzz/ explore further).
proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn mutated_encodings_never_panic(b in block(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut raw = b.encode().unwrap();
        let i = at.index(raw.len());
        raw[i] = byte;
        decode_all(&raw);
        // The same mutation inside a lone transaction.
        if let Some(tx) = b.transactions.first() {
            let mut raw = tx.encode().unwrap();
            let i = at.index(raw.len());
            raw[i] = byte;
            decode_all(&raw);
        }
    }

    #[test]
    fn random_bytes_never_panic(flags in prop::sample::select(vec![0x01u8, 0x03, 0x07]), rest in bytes(200)) {
        decode_all(&rest);
        let mut raw = vec![flags];
        raw.extend_from_slice(&rest);
        decode_all(&raw);
    }
}
