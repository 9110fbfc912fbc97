//! Request and response bodies, with Bytom's field names. Hashes travel as 64 hex characters
//! (the 32 bytes in order), serialized headers, blocks and transactions as hex.

use bystack_engine::entries::EntryType;
use bystack_engine::{Block, BlockHeader, Hash, Transaction, TxInput};
use bystack_kernels::hex;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::service::BlockSelector;

/// The `success` envelope: `{"status": "success", "data": …}`.
#[derive(Debug, Clone, Serialize)]
pub struct SuccessEnvelope<T> {
    /// Always `success`.
    pub status: &'static str,
    /// The payload.
    pub data: T,
}

/// The `fail` envelope: `{"status": "fail", "code", "msg", "error_detail"}`.
#[derive(Debug, Clone, Serialize)]
pub struct FailEnvelope {
    /// Always `fail`.
    pub status: &'static str,
    /// Bytom's error code, e.g. `BTM002`.
    pub code: &'static str,
    /// The code's fixed message.
    pub msg: &'static str,
    /// What went wrong in this call.
    pub error_detail: String,
}

/// Parses a 64-hex hash from a request field.
///
/// # Errors
/// [`ApiError::BadRequest`] naming `field`.
pub fn parse_hash(field: &str, text: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(text).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

/// Hex of an encodable value; an encoding failure (a field beyond its varint range) is the
/// node's fault, never the caller's.
fn hex_or_internal<E: std::fmt::Display>(
    what: &str,
    encoded: Result<String, E>,
) -> Result<String, ApiError> {
    encoded.map_err(|e| ApiError::Internal(format!("encoding {what}: {e}")))
}

/// `{block_height | block_hash}`: the block selector of get-block, get-block-header,
/// get-difficulty and get-hash-rate. A hash wins over a height.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BlockRequest {
    /// Main-chain height.
    #[serde(default)]
    pub block_height: Option<u64>,
    /// Block hash (64 hex).
    #[serde(default)]
    pub block_hash: Option<String>,
}

impl BlockRequest {
    /// The block asked for; `default_height` when neither field is given.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a hash that is not 64 hex characters.
    pub fn selector(&self, default_height: u64) -> Result<BlockSelector, ApiError> {
        match (&self.block_hash, self.block_height) {
            (Some(hash), _) if !hash.is_empty() => {
                Ok(BlockSelector::Hash(parse_hash("block_hash", hash)?))
            }
            (_, Some(height)) => Ok(BlockSelector::Height(height)),
            _ => Ok(BlockSelector::Height(default_height)),
        }
    }
}

/// submit-work: `{"block_header": "<hex>"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SubmitWorkRequest {
    /// The serialized header (serflag 0x01).
    pub block_header: String,
}

/// submit-work-json: `{"block_header": {…}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SubmitWorkJsonRequest {
    /// The header as get-work-json returns it.
    pub block_header: HeaderJson,
}

/// submit-block: `{"raw_block": "<hex>"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SubmitBlockRequest {
    /// The serialized block (serflag 0x03).
    pub raw_block: String,
}

/// submit-transaction: `{"raw_transaction": "<hex>"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SubmitTransactionRequest {
    /// The serialized transaction (serflag 0x07).
    pub raw_transaction: String,
}

/// A block commitment in JSON (`types.BlockCommitment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentJson {
    /// Merkle root of the transaction IDs (singular "transaction", as Bytom spells it here).
    pub transaction_merkle_root: String,
    /// Merkle root of the transaction statuses.
    pub transaction_status_hash: String,
}

/// A block header in JSON (`api.BlockHeaderJSON`): get-work-json and submit-work-json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderJson {
    /// Block version.
    pub version: u64,
    /// Height.
    pub height: u64,
    /// Parent hash (64 hex).
    pub previous_block_hash: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// Proof-of-work nonce.
    pub nonce: u64,
    /// Compact target.
    pub bits: u64,
    /// The two merkle roots.
    pub block_commitment: CommitmentJson,
}

impl HeaderJson {
    /// The JSON form of `header`.
    pub fn from_header(header: &BlockHeader) -> Self {
        HeaderJson {
            version: header.version,
            height: header.height,
            previous_block_hash: header.previous_block_hash.to_hex(),
            timestamp: header.timestamp,
            nonce: header.nonce,
            bits: header.bits,
            block_commitment: CommitmentJson {
                transaction_merkle_root: header.transactions_merkle_root.to_hex(),
                transaction_status_hash: header.transaction_status_hash.to_hex(),
            },
        }
    }

    /// The header this JSON describes.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a hash that is not 64 hex characters.
    pub fn to_header(&self) -> Result<BlockHeader, ApiError> {
        Ok(BlockHeader {
            version: self.version,
            height: self.height,
            previous_block_hash: parse_hash("previous_block_hash", &self.previous_block_hash)?,
            timestamp: self.timestamp,
            transactions_merkle_root: parse_hash(
                "transaction_merkle_root",
                &self.block_commitment.transaction_merkle_root,
            )?,
            transaction_status_hash: parse_hash(
                "transaction_status_hash",
                &self.block_commitment.transaction_status_hash,
            )?,
            nonce: self.nonce,
            bits: self.bits,
            commitment_suffix: Vec::new(),
        })
    }
}

/// get-work: the serialized template header and its seed.
#[derive(Debug, Clone, Serialize)]
pub struct GetWorkResponse {
    /// The header, serialized (serflag 0x01), hex.
    pub block_header: String,
    /// The Tensority seed, 64 hex.
    pub seed: String,
}

/// get-work-json: the template header as JSON and its seed.
#[derive(Debug, Clone, Serialize)]
pub struct GetWorkJsonResponse {
    /// The header.
    pub block_header: HeaderJson,
    /// The Tensority seed, 64 hex.
    pub seed: String,
}

/// get-block-count: the main chain's tip height (Bytom's name; not a count of blocks).
#[derive(Debug, Clone, Serialize)]
pub struct BlockCountResponse {
    /// Height of the best block.
    pub block_count: u64,
}

/// get-block-hash: the best block's hash.
#[derive(Debug, Clone, Serialize)]
pub struct BlockHashResponse {
    /// Hash of the best block.
    pub block_hash: String,
}

/// One input of a transaction in get-block (a subset of `query.AnnotatedInput`).
#[derive(Debug, Clone, Serialize)]
pub struct InputJson {
    /// `spend`, `issue`, `coinbase` or `opaque`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The input's entry ID.
    pub input_id: Option<String>,
    /// The asset moved (absent for coinbase and opaque inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// The amount moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// The spent output's control program (spend) or the issuance program (issue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_program: Option<String>,
    /// The output a spend consumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spent_output_id: Option<String>,
    /// A coinbase's arbitrary data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arbitrary: Option<String>,
    /// Witness arguments, hex.
    pub witness_arguments: Vec<String>,
}

/// One output of a transaction in get-block (a subset of `query.AnnotatedOutput`).
#[derive(Debug, Clone, Serialize)]
pub struct OutputJson {
    /// `control`, or `retire` for a retirement.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The output's (or retirement's) entry ID.
    pub id: String,
    /// Index in the transaction's outputs.
    pub position: usize,
    /// The asset.
    pub asset_id: String,
    /// The amount.
    pub amount: u64,
    /// The control program, hex.
    pub control_program: String,
}

/// One transaction in get-block (`api.BlockTx`).
#[derive(Debug, Clone, Serialize)]
pub struct BlockTxJson {
    /// Transaction ID.
    pub id: String,
    /// Version.
    pub version: u64,
    /// Serialized size in bytes.
    pub size: u64,
    /// Time range.
    pub time_range: u64,
    /// Inputs.
    pub inputs: Vec<InputJson>,
    /// Outputs.
    pub outputs: Vec<OutputJson>,
    /// Whether the block kept it as a gas-only ("status fail") transaction.
    pub status_fail: bool,
    /// The mux entry's ID.
    pub mux_id: String,
}

impl BlockTxJson {
    /// The JSON form of `tx` with its status.
    pub fn new(tx: &Transaction, status_fail: bool) -> Self {
        let mapped = &tx.mapped;
        let inputs = tx
            .data
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let mut json = InputJson {
                    kind: match input {
                        TxInput::Issuance(_) => "issue",
                        other => other.kind(),
                    },
                    input_id: mapped.input_ids.get(i).map(Hash::to_hex),
                    asset_id: None,
                    amount: None,
                    control_program: None,
                    spent_output_id: None,
                    arbitrary: None,
                    witness_arguments: input.arguments().iter().map(|a| hex::encode(a)).collect(),
                };
                match input {
                    TxInput::Spend(spend) => {
                        json.asset_id = Some(spend.asset_id.to_hex());
                        json.amount = Some(spend.amount);
                        json.control_program = Some(hex::encode(&spend.control_program));
                        json.spent_output_id = mapped
                            .inputs
                            .get(i)
                            .and_then(|e| e.spent_output_id())
                            .map(|h| h.to_hex());
                    }
                    TxInput::Issuance(issuance) => {
                        json.asset_id = Some(issuance.asset_id().to_hex());
                        json.amount = Some(issuance.amount);
                        json.control_program = Some(hex::encode(&issuance.issuance_program));
                    }
                    TxInput::Coinbase(coinbase) => {
                        json.arbitrary = Some(hex::encode(&coinbase.arbitrary));
                    }
                    TxInput::Opaque(_) => {}
                }
                json
            })
            .collect();
        let outputs = tx
            .data
            .outputs
            .iter()
            .zip(&mapped.results)
            .enumerate()
            .map(|(position, (output, result))| OutputJson {
                kind: if result.kind == EntryType::Retirement {
                    "retire"
                } else {
                    "control"
                },
                id: result.id.to_hex(),
                position,
                asset_id: output.asset_id.to_hex(),
                amount: output.amount,
                control_program: hex::encode(&output.control_program),
            })
            .collect();
        BlockTxJson {
            id: tx.id().to_hex(),
            version: tx.data.version,
            size: tx.serialized_size,
            time_range: tx.data.time_range,
            inputs,
            outputs,
            status_fail,
            mux_id: mapped.mux_id.to_hex(),
        }
    }
}

/// get-block (`api.GetBlockResp`), plus the serialized block as `raw_block`.
#[derive(Debug, Clone, Serialize)]
pub struct BlockResponse {
    /// Block hash.
    pub hash: String,
    /// Serialized size in bytes.
    pub size: u64,
    /// Version.
    pub version: u64,
    /// Height.
    pub height: u64,
    /// Parent hash.
    pub previous_block_hash: String,
    /// Unix seconds.
    pub timestamp: u64,
    /// Nonce.
    pub nonce: u64,
    /// Compact target.
    pub bits: u64,
    /// The work the target stands for (`CalcWork(bits)`), decimal.
    pub difficulty: String,
    /// Merkle root of the transaction IDs.
    pub transaction_merkle_root: String,
    /// Merkle root of the statuses.
    pub transaction_status_hash: String,
    /// The transactions.
    pub transactions: Vec<BlockTxJson>,
    /// The whole block serialized (serflag 0x03), hex.
    pub raw_block: String,
}

impl BlockResponse {
    /// The JSON form of `block`; `statuses[i]` says whether transaction `i` is status fail
    /// (missing entries read as false).
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the block cannot be re-encoded.
    pub fn new(block: &Block, statuses: &[bool]) -> Result<Self, ApiError> {
        let raw_block = hex_or_internal("block", block.to_hex())?;
        let header = &block.header;
        Ok(BlockResponse {
            hash: block.hash().to_hex(),
            size: (raw_block.len() / 2) as u64,
            version: header.version,
            height: header.height,
            previous_block_hash: header.previous_block_hash.to_hex(),
            timestamp: header.timestamp,
            nonce: header.nonce,
            bits: header.bits,
            difficulty: bystack_kernels::pow::calc_work(header.bits).to_string(),
            transaction_merkle_root: header.transactions_merkle_root.to_hex(),
            transaction_status_hash: header.transaction_status_hash.to_hex(),
            transactions: block
                .transactions
                .iter()
                .enumerate()
                .map(|(i, tx)| BlockTxJson::new(tx, statuses.get(i).copied().unwrap_or(false)))
                .collect(),
            raw_block,
        })
    }
}

/// get-block-header (`api.GetBlockHeaderResp`).
#[derive(Debug, Clone, Serialize)]
pub struct BlockHeaderResponse {
    /// The serialized header (serflag 0x01), hex: Bytom marshals `types.BlockHeader` as text.
    pub block_header: String,
    /// The coinbase's first output amount (subsidy plus fees).
    pub reward: u64,
}

impl BlockHeaderResponse {
    /// The response for `block`.
    ///
    /// # Errors
    /// [`ApiError::Internal`] when the header cannot be re-encoded.
    pub fn new(block: &Block) -> Result<Self, ApiError> {
        Ok(BlockHeaderResponse {
            block_header: hex_or_internal("block header", block.header.to_hex())?,
            reward: block
                .transactions
                .first()
                .and_then(|coinbase| coinbase.data.outputs.first())
                .map_or(0, |output| output.amount),
        })
    }
}

/// get-difficulty (`api.GetDifficultyResp`).
#[derive(Debug, Clone, Serialize)]
pub struct DifficultyResponse {
    /// Block hash.
    pub hash: String,
    /// Block height.
    pub height: u64,
    /// Compact target.
    pub bits: u64,
    /// `CalcWork(bits)`, decimal.
    pub difficulty: String,
}

/// get-hash-rate (`api.getHashRateResp`): the network hash rate the block's difficulty and
/// its distance in time from its parent imply.
#[derive(Debug, Clone, Serialize)]
pub struct HashRateResponse {
    /// Block hash.
    pub hash: String,
    /// Block height.
    pub height: u64,
    /// `CalcWork(bits) / (timestamp − parent timestamp)`, hashes per second.
    pub hash_rate: u64,
}

/// submit-transaction (`api.SubmitTxResp`).
#[derive(Debug, Clone, Serialize)]
pub struct SubmitTransactionResponse {
    /// The admitted transaction's ID.
    pub tx_id: String,
}

/// list-unconfirmed-transactions.
#[derive(Debug, Clone, Serialize)]
pub struct UnconfirmedTransactionsResponse {
    /// How many transactions the mempool holds.
    pub total: u64,
    /// Their IDs.
    pub tx_ids: Vec<String>,
}

/// net-info's `version_info`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// This node's version.
    pub version: String,
    /// Bytom's update flag: 0 = no newer version seen.
    pub update: u16,
    /// The newer version seen from peers (empty: none).
    pub new_version: String,
}

/// net-info (`api.NetInfo`).
#[derive(Debug, Clone, Serialize)]
pub struct NetInfoResponse {
    /// Whether the p2p layer accepts inbound connections.
    pub listening: bool,
    /// Whether the node is behind its best peer.
    pub syncing: bool,
    /// Whether a built-in miner runs.
    pub mining: bool,
    /// Connected peers.
    pub peer_count: u64,
    /// The tip height.
    pub current_block: u64,
    /// The highest height known (tip or best peer).
    pub highest_block: u64,
    /// The network's name as Bytom reports it (`mainnet`, `wisdom`, `solonet`, `devnet`).
    pub network_id: String,
    /// Version information.
    pub version_info: VersionInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_wins_over_a_height_and_an_empty_hash_is_absent() {
        let hash = Hash([7; 32]);
        let both = BlockRequest {
            block_height: Some(3),
            block_hash: Some(hash.to_hex()),
        };
        assert_eq!(both.selector(0), Ok(BlockSelector::Hash(hash)));
        let empty_hash = BlockRequest {
            block_height: Some(3),
            block_hash: Some(String::new()),
        };
        assert_eq!(empty_hash.selector(0), Ok(BlockSelector::Height(3)));
        assert_eq!(
            BlockRequest::default().selector(9),
            Ok(BlockSelector::Height(9))
        );
        let short = BlockRequest {
            block_height: None,
            block_hash: Some("ab".into()),
        };
        assert!(matches!(short.selector(0), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn header_json_round_trips() {
        let header = BlockHeader {
            version: 1,
            height: 42,
            previous_block_hash: Hash([1; 32]),
            timestamp: 1_795_824_150,
            transactions_merkle_root: Hash([2; 32]),
            transaction_status_hash: Hash([3; 32]),
            nonce: 99,
            bits: 0x2000_0000_0004_0000,
            commitment_suffix: Vec::new(),
        };
        let json = HeaderJson::from_header(&header);
        assert_eq!(
            json.block_commitment.transaction_merkle_root,
            "02".repeat(32)
        );
        assert_eq!(json.to_header(), Ok(header));
    }
}
