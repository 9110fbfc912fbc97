//! Genesis blocks of every network, built from their parameters rather than stored as bytes, so
//! the vectors check the builder (mainnet, testnet and solonet must come out byte for byte as
//! Bytom's).

use crate::block::{Block, BlockHeader};
use crate::consensus::{
    Network, GENESIS_COINBASE_ARBITRARY, GENESIS_CONTROL_PROGRAM, INITIAL_BLOCK_SUBSIDY,
};
use crate::hash::{Hash, BTM_ASSET_ID};
use crate::merkle::{tx_merkle_root, tx_status_merkle_root};
use crate::tx::{CoinbaseInput, Transaction, TxData, TxInput, TxOutput};

/// The coinbase arbitrary data of the devnet genesis.
pub const DEVNET_COINBASE_ARBITRARY: &[u8] = b"bystack devnet genesis -- Nov/28/2026.";

/// The genesis coinbase transaction of `network`: one coinbase input with the network's
/// arbitrary data, one BTM output of the initial subsidy to the genesis program.
pub fn genesis_transaction(network: Network) -> Transaction {
    let arbitrary = match network {
        Network::Devnet => DEVNET_COINBASE_ARBITRARY,
        _ => GENESIS_COINBASE_ARBITRARY,
    };
    let data = TxData {
        version: 1,
        time_range: 0,
        inputs: vec![TxInput::Coinbase(CoinbaseInput {
            arbitrary: arbitrary.to_vec(),
            ..CoinbaseInput::default()
        })],
        outputs: vec![TxOutput::new(
            BTM_ASSET_ID,
            INITIAL_BLOCK_SUBSIDY,
            GENESIS_CONTROL_PROGRAM.to_vec(),
        )],
    };
    // A one-output coinbase with small integers always maps and encodes.
    Transaction::new(data).expect("the genesis coinbase is well formed")
}

/// The genesis block of `network`.
pub fn genesis_block(network: Network) -> Block {
    let params = network.params();
    let tx = genesis_transaction(network);
    let header = BlockHeader {
        version: 1,
        height: 0,
        previous_block_hash: Hash::ZERO,
        timestamp: params.genesis_timestamp,
        transactions_merkle_root: tx_merkle_root(&[tx.id()]),
        transaction_status_hash: tx_status_merkle_root(&[false]),
        nonce: params.genesis_nonce,
        bits: params.genesis_bits,
        commitment_suffix: Vec::new(),
    };
    Block {
        header,
        transactions: vec![tx],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::initial_seed;

    #[test]
    fn devnet_genesis_meets_its_own_proof_of_work() {
        let block = genesis_block(Network::Devnet);
        let pow = bystack_kernels::tensority(block.hash().as_bytes(), initial_seed().as_bytes());
        assert!(
            bystack_kernels::pow::meets_bits(&pow, block.header.bits),
            "devnet genesis nonce {} does not meet its bits",
            block.header.nonce
        );
        assert_eq!(
            block.transactions[0].data.outputs[0].amount,
            INITIAL_BLOCK_SUBSIDY
        );
    }
}
