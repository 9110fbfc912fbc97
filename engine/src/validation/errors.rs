//! The validation error enums, one per domain: [`TxError`] (Bytom's `validation/tx.go`
//! errors), [`BlockError`] (`validation/block.go`) and [`UtxoError`] (`state/utxo_view.go`).
//! Messages start with Bytom's wording and carry the values involved.

use crate::entries::EntryType;
use crate::hash::{AssetId, Hash};
use crate::vm::VmError;

/// Why a transaction failed [`validate_tx`](super::validate_tx). Whether the failure
/// invalidates the block or only marks the transaction "status fail" depends on where it
/// happened, see [`TxOutcome::gas_valid`](super::TxOutcome::gas_valid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// `ErrTxVersion`: a version-1 block holds a transaction whose version is not 1.
    #[error("invalid transaction version: block version {block_version}, transaction version {tx_version}")]
    TxVersion {
        /// The block version.
        block_version: u64,
        /// The transaction version.
        tx_version: u64,
    },
    /// `ErrWrongTransactionSize`: serialized size 0.
    ///
    /// Not reachable from wire data: a decoded transaction occupies at least its serflags byte
    /// and [`Transaction::new`](crate::tx::Transaction::new) measures a non-empty encoding; only
    /// a hand-set `serialized_size` of 0 meets it.
    #[error("invalid transaction size")]
    WrongTransactionSize,
    /// `ErrBadTimeRange`: a non-zero time range below the block height.
    #[error("invalid transaction time range: time range {time_range} < block height {height}")]
    BadTimeRange {
        /// The transaction's time range.
        time_range: u64,
        /// The block height.
        height: u64,
    },
    /// `ErrEmptyInputIDs`: from height 142,500, an input ID is zero.
    #[error("got the empty InputIDs: input {index}")]
    EmptyInputIds {
        /// The input index.
        index: usize,
    },
    /// `ErrNotStandardTx`: a BTM spend's prevout program or a BTM output program is not
    /// P2WPKH, P2WSH or a single `TRUE`/`FAIL`.
    #[error("not standard transaction: {kind} {index}")]
    NotStandardTx {
        /// `"input"` or `"output"`.
        kind: &'static str,
        /// Its index in the transaction.
        index: usize,
    },
    /// `ErrEmptyResults`: a version-1 transaction without outputs.
    #[error("transaction has no results")]
    EmptyResults,
    /// `ErrOverflow`: an amount above 2^63 − 1 or an int64 overflow in the mux balance.
    ///
    /// The sum overflow is reachable from wire data (two sources of 2^63 − 1 of one asset);
    /// a single amount above 2^63 − 1 is not, since amounts are varint63 on the wire.
    #[error("arithmetic overflow/underflow: asset {asset_id}, amount {amount}")]
    Overflow {
        /// The asset whose balance overflowed.
        asset_id: AssetId,
        /// The amount being added or subtracted.
        amount: u64,
    },
    /// `ErrNoSource`: a mux destination whose asset no input provides.
    #[error("no source for value: mux destination {index}, asset {asset_id}")]
    NoSource {
        /// The destination (output) index.
        index: usize,
        /// Its asset.
        asset_id: AssetId,
    },
    /// `ErrUnbalanced`: a non-BTM asset whose sources minus destinations is not zero.
    #[error("unbalanced asset amount between input and output: asset {asset_id}, sources - destinations = {balance}")]
    Unbalanced {
        /// The asset.
        asset_id: AssetId,
        /// Sources minus destinations.
        balance: i64,
    },
    /// `ErrGasCalculate`: negative BTM balance, or the storage gas exceeds the gas left.
    #[error("gas usage calculate got a math error: {reason}")]
    GasCalculate {
        /// Which computation failed (Bytom's wrap message).
        reason: &'static str,
    },
    /// `ErrOverGasCredit`: before the gas became valid, more than 30,000 gas was used or the
    /// storage gas exceeds what is left.
    #[error("all gas credit has been spend: gas used {gas_used}, gas left {gas_left}, storage gas {storage_gas}")]
    OverGasCredit {
        /// Gas used so far.
        gas_used: i64,
        /// Gas left.
        gas_left: i64,
        /// The storage gas still to pay.
        storage_gas: i64,
    },
    /// `ErrMismatchedValue`: a value that disagrees between two linked entries.
    ///
    /// Not reachable from wire data: both ends of every link take their value from the same
    /// decoded field, and entries that share an ID share their value (the value is hashed into
    /// spend, issuance and output IDs; a coinbase's destination copies mux source 0, which holds
    /// the same output-0 value whenever it refers back to that coinbase). A prevout could share
    /// its ID with a result of its own transaction only through a hash fixed point (its source
    /// would be the mux, whose ID depends on the prevout's). Only a hand-built entry map (a
    /// spend naming another output) meets it.
    #[error("mismatched value at entry {entry}")]
    MismatchedValue {
        /// The entry being checked.
        entry: Hash,
    },
    /// `ErrMismatchedAssetID`: an issuance whose asset ID is not the one its program and
    /// definition hash to.
    ///
    /// Not reachable from wire data: the decoder already rejects such an issuance
    /// ([`DecodeError::BadAssetId`](crate::encoding::DecodeError::BadAssetId)), and the mapper
    /// derives the entry's asset from the same program and definition. Only a hand-built entry
    /// map meets it.
    #[error("mismatched assetID: computed {computed}, issuance wants {wanted}")]
    MismatchedAssetId {
        /// Recomputed from the issuance program and asset definition.
        computed: AssetId,
        /// The issuance's asset.
        wanted: AssetId,
    },
    /// `ErrWrongCoinbaseTransaction`: a coinbase input outside the block's first transaction.
    #[error("wrong coinbase transaction")]
    WrongCoinbaseTransaction,
    /// `ErrWrongCoinbaseAsset`: a coinbase paying something other than BTM.
    #[error("wrong coinbase assetID: {asset_id}")]
    WrongCoinbaseAsset {
        /// The asset paid.
        asset_id: AssetId,
    },
    /// `ErrCoinbaseArbitraryOversize`: coinbase arbitrary data over 128 bytes.
    #[error("coinbase arbitrary size is larger than limit: {size} > {limit}")]
    CoinbaseArbitraryOversize {
        /// The size found.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `ErrMissingField`: a missing value source (an opaque input feeding the mux: Go's
    /// mapper leaves a nil source there, on which Go itself would crash).
    #[error("missing required field: {what}")]
    MissingField {
        /// What is missing.
        what: &'static str,
    },
    /// `bc.ErrMissingEntry`: a reference to an entry that is not in the transaction.
    ///
    /// Not reachable from wire data: the walk follows only references the mapper created to
    /// entries it created (results, the mux, gas inputs, mux sources, a spend's prevout); the
    /// one wire-chosen reference, a prevout's source, is never walked. Only a hand-built entry
    /// map meets it.
    #[error("missing entry {id}")]
    MissingEntry {
        /// The referenced ID.
        id: Hash,
    },
    /// `bc.ErrEntryType`: a reference to an entry of the wrong kind.
    ///
    /// Not reachable from wire data, for the reason given on [`TxError::MissingEntry`]; entry
    /// IDs of different kinds never collide (the kind is hashed into the ID).
    #[error("invalid entry type: {kind} entry {id}")]
    EntryType {
        /// The referenced entry.
        id: Hash,
        /// Its kind.
        kind: EntryType,
    },
    /// `ErrPosition`: a source or destination position out of range.
    ///
    /// Not reachable from wire data: every walked position is an index the mapper assigned
    /// (input or output ordinal, or 0); the wire-chosen `source_position` of a prevout is never
    /// walked. Only a hand-built entry map meets it.
    #[error("invalid source or destination position {position}")]
    Position {
        /// The position.
        position: u64,
    },
    /// `ErrMismatchedReference`: a source/destination whose back reference is another entry.
    ///
    /// Reachable from wire data: a coinbase input that is not input 0 takes its destination
    /// from mux source 0, another entry (blocked up front by rule AA from height 142,500).
    #[error("mismatched reference: entry {entry}, back reference {found}")]
    MismatchedReference {
        /// The entry being checked.
        entry: Hash,
        /// The reference found instead.
        found: Hash,
    },
    /// `ErrMismatchedPosition`: a source/destination pair whose positions disagree.
    ///
    /// Reachable from wire data: two identical spends (or issuances) map to one entry that keeps
    /// the last input's ordinal, so the earlier mux source disagrees; after the gas became
    /// valid, so "status fail" (blocked up front by rule AA from height 142,500).
    #[error("mismatched value source/dest position: {found} disagrees with {expected}")]
    MismatchedPosition {
        /// The position expected.
        expected: u64,
        /// The position found.
        found: u64,
    },
    /// A control program (spend) or issuance program failed in the VM.
    #[error("checking {kind} program of entry {entry}: {error}")]
    Vm {
        /// [`EntryType::Spend`] or [`EntryType::Issuance`].
        kind: EntryType,
        /// The entry whose program ran.
        entry: Hash,
        /// The VM error.
        #[source]
        error: VmError,
    },
}

/// Result alias for transaction validation.
pub type TxResult<T> = std::result::Result<T, TxError>;

/// Why a block failed [`validate_block`](super::validate_block).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// `errVersionRegression`: block version is not 1.
    #[error("version regression: block version {version}")]
    VersionRegression {
        /// The block's version.
        version: u64,
    },
    /// `errMisorderedBlockHeight`: height is not the parent's + 1.
    #[error(
        "misordered block height: previous block height {parent}, current block height {height}"
    )]
    MisorderedBlockHeight {
        /// The parent's height.
        parent: u64,
        /// The block's height.
        height: u64,
    },
    /// `errBadBits`: bits differ from the parent's `CalcNextBits`.
    #[error("block bits is invalid: expected {expected:#018x}, got {got:#018x}")]
    BadBits {
        /// What the retarget rule requires.
        expected: u64,
        /// The block's bits.
        got: u64,
    },
    /// `errMismatchedBlock`: the previous-block hash is not the parent's hash.
    #[error("mismatched block: previous block ID {expected}, current block wants {got}")]
    MismatchedBlock {
        /// The parent's hash.
        expected: Hash,
        /// The block's previous-block hash.
        got: Hash,
    },
    /// `errBadTimestamp`: timestamp not above the median time past, or over an hour ahead of
    /// the local clock.
    #[error(
        "block timestamp is not in the valid range: {timestamp} not in ({median_time}, {max_time}]"
    )]
    BadTimestamp {
        /// The block's timestamp.
        timestamp: u64,
        /// The parent's median time past (exclusive lower bound).
        median_time: u64,
        /// Local clock + 3600 (inclusive upper bound).
        max_time: u64,
    },
    /// `errWorkProof`: the Tensority result does not meet the bits.
    #[error("invalid difficulty proof of work: block {hash}")]
    WorkProof {
        /// The block hash.
        hash: Hash,
    },
    /// The PoW backend failed (not a consensus verdict; the block is neither valid nor invalid).
    #[error("proof of work backend failed: {message}")]
    PowBackend {
        /// The backend's error.
        message: String,
    },
    /// A transaction whose gas never became valid: the block is invalid.
    #[error("validate of transaction {index} of {count}: {error}")]
    Tx {
        /// The transaction's index.
        index: usize,
        /// Transactions in the block.
        count: usize,
        /// Its error.
        #[source]
        error: TxError,
    },
    /// `errOverBlockLimit`: the gas sum passed 10,000,000.
    #[error("block's gas is over the limit: {gas} after transaction {index}")]
    OverBlockLimit {
        /// The sum so far.
        gas: u64,
        /// The transaction that crossed the limit.
        index: usize,
    },
    /// `ErrWrongCoinbaseTransaction` "block is empty".
    #[error("wrong coinbase transaction: block is empty")]
    EmptyBlock,
    /// `ErrWrongCoinbaseTransaction` "have more than 1 output": the first transaction does not
    /// have exactly one result.
    #[error("wrong coinbase transaction: have more than 1 output ({count} results)")]
    CoinbaseOutputCount {
        /// Its number of results.
        count: usize,
    },
    /// The first transaction's only result is a retirement (Go's `tx.Output` type error).
    #[error("wrong coinbase transaction: result {id} is not an output")]
    CoinbaseNotOutput {
        /// The result.
        id: Hash,
    },
    /// `ErrWrongCoinbaseTransaction` "dismatch output amount": not subsidy + fees.
    #[error("wrong coinbase transaction: dismatch output amount: expected {expected}, got {got}")]
    CoinbaseAmount {
        /// Subsidy plus fees.
        expected: u64,
        /// The coinbase output's amount.
        got: u64,
    },
    /// `errMismatchedMerkleRoot` "transaction id merkle root".
    #[error(
        "mismatched merkle root: transaction id merkle root: computed {computed}, header {header}"
    )]
    MismatchedTxRoot {
        /// Recomputed.
        computed: Hash,
        /// In the header.
        header: Hash,
    },
    /// `errMismatchedMerkleRoot` "transaction status merkle root".
    #[error("mismatched merkle root: transaction status merkle root: computed {computed}, header {header}")]
    MismatchedStatusRoot {
        /// Recomputed.
        computed: Hash,
        /// In the header.
        header: Hash,
    },
}

/// Result alias for block validation.
pub type BlockResult<T> = std::result::Result<T, BlockError>;

/// Why a block could not be applied to (or detached from) the UTXO set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UtxoError {
    /// "fail to find utxo entry".
    #[error("fail to find utxo entry {id}")]
    NotFound {
        /// The output ID.
        id: Hash,
    },
    /// "utxo has been spent".
    #[error("utxo has been spent: {id}")]
    AlreadySpent {
        /// The output ID.
        id: Hash,
    },
    /// "coinbase utxo is not ready for use": created at `created`, needs `created + 100 ≤
    /// height`.
    #[error("coinbase utxo is not ready for use: {id} created at {created}, spent at {height}")]
    CoinbaseNotMature {
        /// The output ID.
        id: Hash,
        /// Its block height.
        created: u64,
        /// The spending block's height.
        height: u64,
    },
    /// "try to revert an unspent utxo" (detach).
    #[error("try to revert an unspent utxo: {id}")]
    RevertUnspent {
        /// The output ID.
        id: Hash,
    },
    /// The status list does not cover every transaction of the block.
    ///
    /// [`UtxoView::apply_block`](super::UtxoView::apply_block) takes the statuses from
    /// validation, which always covers the block; only a status list handed in from elsewhere
    /// (a stored record that does not match its block) meets it.
    #[error("transaction status missing for transaction {index}")]
    MissingStatus {
        /// The transaction index.
        index: usize,
    },
    /// The store failed (returned by a [`UtxoStore`](super::UtxoStore) and passed on).
    #[error("utxo store: {message}")]
    Store {
        /// The store's error.
        message: String,
    },
}

/// Result alias for the UTXO view.
pub type UtxoResult<T> = std::result::Result<T, UtxoError>;
