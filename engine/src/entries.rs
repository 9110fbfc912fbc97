//! Entries and their IDs (spec §3): how a transaction maps into Bytom's entry graph
//! (`MapTx`), the entry-ID hash, asset IDs, signature hashes and the block hash.
//!
//! ```text
//! EntryID(e) = SHA3("entryid:" || type || ":" || SHA3(body(e)))
//! ```
//! Bodies follow Bytom's `writeForHash`: u64 fields as 8 bytes little-endian, byte strings as
//! varstr31, lists as a varint31 count then the elements, hashes as 32 raw bytes.
//!
//! | entry | body |
//! |---|---|
//! | `mux1` | n, n × ValueSource (opaque inputs contribute nothing), Program(1, `51`) |
//! | `spend1` | spent_output_id |
//! | `output1` | ValueSource, Program |
//! | `retirement1` | ValueSource |
//! | `issuance1` | SHA3(nonce), asset_id, u64 amount |
//! | `coinbase1` | varstr(arbitrary) |
//! | `txheader` | u64 version, u64 time_range, n, n × result_id |
//!
//! with `ValueSource = ref[32] asset_id[32] u64 amount u64 position` and
//! `Program = u64 vm_version varstr(code)`.

use std::collections::{HashMap, HashSet};

use bystack_kernels::pow::HeaderTemplate;

use crate::block::BlockHeader;
use crate::encoding::{write_uvarint, DecodeError, Result};
use crate::hash::{sha3, AssetId, Hash, BTM_ASSET_ID};
use crate::tx::{TxData, TxInput, TxOutput};

/// `OP_TRUE`: the mux program.
const OP_TRUE: u8 = 0x51;
/// `OP_FAIL`: a control program starting with it makes the output a retirement.
const OP_FAIL: u8 = 0x6a;

/// The kinds of entry, each with the type string hashed into its ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryType {
    /// `mux1`: gathers all input values and distributes them to the results.
    Mux,
    /// `spend1`: consumes an output.
    Spend,
    /// `output1`: a spendable result (and the form of a spent prevout).
    Output,
    /// `issuance1`: creates asset units.
    Issuance,
    /// `coinbase1`: the block reward source.
    Coinbase,
    /// `retirement1`: an unspendable result (program starting with `OP_FAIL`).
    Retirement,
    /// `txheader`: the transaction ID entry.
    TxHeader,
    /// `blockheader`: the block ID entry.
    BlockHeader,
}

impl EntryType {
    /// The type string hashed into the entry ID.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::Mux => "mux1",
            EntryType::Spend => "spend1",
            EntryType::Output => "output1",
            EntryType::Issuance => "issuance1",
            EntryType::Coinbase => "coinbase1",
            EntryType::Retirement => "retirement1",
            EntryType::TxHeader => "txheader",
            EntryType::BlockHeader => "blockheader",
        }
    }
}

impl std::fmt::Display for EntryType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `SHA3("entryid:" || type || ":" || SHA3(body))`.
pub fn entry_id(kind: EntryType, body: &[u8]) -> Hash {
    let inner = sha3(body);
    let mut outer = Vec::with_capacity(8 + 12 + 1 + 32);
    outer.extend_from_slice(b"entryid:");
    outer.extend_from_slice(kind.as_str().as_bytes());
    outer.push(b':');
    outer.extend_from_slice(&inner.0);
    sha3(&outer)
}

/// A hash body under construction, with the `writeForHash` encodings.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn hash(&mut self, h: &Hash) -> &mut Self {
        self.0.extend_from_slice(&h.0);
        self
    }
    fn count(&mut self, n: usize) -> &mut Self {
        write_uvarint(&mut self.0, n as u64);
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.count(b.len());
        self.0.extend_from_slice(b);
        self
    }
    fn program(&mut self, vm_version: u64, code: &[u8]) -> &mut Self {
        self.u64(vm_version).bytes(code)
    }
    fn value_source(&mut self, s: &ValueSource) -> &mut Self {
        self.hash(&s.ref_id)
            .hash(&s.asset_id)
            .u64(s.amount)
            .u64(s.position)
    }
}

/// Where a value comes from: an entry, the asset and amount, and the position among that
/// entry's destinations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValueSource {
    /// The entry providing the value.
    pub ref_id: Hash,
    /// The asset.
    pub asset_id: AssetId,
    /// The amount.
    pub amount: u64,
    /// The position among the source entry's destinations.
    pub position: u64,
}

/// ID of an `output1` entry: a result, or the prevout a spend consumes (its UTXO key).
pub fn output_id(source: &ValueSource, vm_version: u64, control_program: &[u8]) -> Hash {
    let mut b = Body::default();
    b.value_source(source).program(vm_version, control_program);
    entry_id(EntryType::Output, &b.0)
}

/// ID of a `retirement1` entry.
pub fn retirement_id(source: &ValueSource) -> Hash {
    let mut b = Body::default();
    b.value_source(source);
    entry_id(EntryType::Retirement, &b.0)
}

/// ID of a `spend1` entry.
pub fn spend_id(spent_output_id: &Hash) -> Hash {
    entry_id(EntryType::Spend, &spent_output_id.0)
}

/// ID of an `issuance1` entry (`nonce_hash` = SHA3 of the nonce).
pub fn issuance_id(nonce_hash: &Hash, asset_id: &AssetId, amount: u64) -> Hash {
    let mut b = Body::default();
    b.hash(nonce_hash).hash(asset_id).u64(amount);
    entry_id(EntryType::Issuance, &b.0)
}

/// ID of a `coinbase1` entry.
pub fn coinbase_id(arbitrary: &[u8]) -> Hash {
    let mut b = Body::default();
    b.bytes(arbitrary);
    entry_id(EntryType::Coinbase, &b.0)
}

/// ID of the `mux1` entry. `sources` has one slot per input; `None` (an opaque input)
/// contributes nothing but is counted.
pub fn mux_id(sources: &[Option<ValueSource>]) -> Hash {
    let mut b = Body::default();
    b.count(sources.len());
    for s in sources.iter().flatten() {
        b.value_source(s);
    }
    b.program(1, &[OP_TRUE]);
    entry_id(EntryType::Mux, &b.0)
}

/// ID of the `txheader` entry: the transaction ID.
pub fn tx_header_id(version: u64, time_range: u64, result_ids: &[Hash]) -> Hash {
    let mut b = Body::default();
    b.u64(version).u64(time_range).count(result_ids.len());
    for id in result_ids {
        b.hash(id);
    }
    entry_id(EntryType::TxHeader, &b.0)
}

/// Asset ID (spec §3.5): `SHA3(u64le(vm_version) || varstr(issuance_program) ||
/// SHA3(asset_definition))`, without the entry-ID prefix.
pub fn compute_asset_id(
    vm_version: u64,
    issuance_program: &[u8],
    asset_definition: &[u8],
) -> AssetId {
    let mut b = Body::default();
    b.program(vm_version, issuance_program)
        .hash(&sha3(asset_definition));
    sha3(&b.0)
}

/// The message signed for an input: `SHA3(input_id || tx_id)` (spec §3.6).
pub fn sighash(input_id: &Hash, tx_id: &Hash) -> Hash {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&input_id.0);
    buf[32..].copy_from_slice(&tx_id.0);
    sha3(&buf)
}

/// The PoW template of a header (the block-ID preimage without the nonce).
pub fn header_template(h: &BlockHeader) -> HeaderTemplate {
    HeaderTemplate::new(
        h.version,
        h.height,
        &h.previous_block_hash.0,
        h.timestamp,
        &h.transactions_merkle_root.0,
        &h.transaction_status_hash.0,
        h.bits,
    )
}

/// The block hash: the `blockheader` entry ID, computed by the one header-ID implementation in
/// [`bystack_kernels::pow::HeaderTemplate`].
pub fn block_hash(h: &BlockHeader) -> Hash {
    Hash(header_template(h).header_hash(h.nonce))
}

/// An entry of a mapped transaction: its kind and ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntryRef {
    /// The kind.
    pub kind: EntryType,
    /// The ID.
    pub id: Hash,
}

/// What one input mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputEntry {
    /// A `spend1` entry and the `output1` prevout it consumes.
    Spend {
        /// The spend entry ID.
        spend_id: Hash,
        /// The consumed output's ID (its UTXO key).
        spent_output_id: Hash,
        /// Asset and amount of the consumed output.
        asset_id: AssetId,
        /// The consumed amount.
        amount: u64,
    },
    /// An `issuance1` entry.
    Issuance {
        /// The issuance entry ID.
        issuance_id: Hash,
        /// The issued asset.
        asset_id: AssetId,
        /// The issued amount.
        amount: u64,
    },
    /// A `coinbase1` entry.
    Coinbase {
        /// The coinbase entry ID.
        coinbase_id: Hash,
    },
    /// An opaque input (asset version ≠ 1): no entry.
    None,
}

impl InputEntry {
    /// The entry ID of this input, if it mapped to an entry. Unlike
    /// [`MappedTx::input_ids`], this is never zeroed for a duplicate.
    pub fn entry_id(&self) -> Option<Hash> {
        match *self {
            InputEntry::Spend { spend_id, .. } => Some(spend_id),
            InputEntry::Issuance { issuance_id, .. } => Some(issuance_id),
            InputEntry::Coinbase { coinbase_id } => Some(coinbase_id),
            InputEntry::None => None,
        }
    }

    /// The consumed output of a spend.
    pub fn spent_output_id(&self) -> Option<Hash> {
        match *self {
            InputEntry::Spend {
                spent_output_id, ..
            } => Some(spent_output_id),
            _ => None,
        }
    }
}

/// What one output mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultEntry {
    /// [`EntryType::Output`] or [`EntryType::Retirement`].
    pub kind: EntryType,
    /// The entry ID (for an output: its future UTXO key).
    pub id: Hash,
}

/// A transaction mapped into entries (Bytom's `bc.Tx`, less the entry bodies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedTx {
    /// The transaction ID (the `txheader` entry ID).
    pub tx_id: Hash,
    /// The `mux1` entry ID.
    pub mux_id: Hash,
    /// Bytom's `InputIDs`, one per input, including its quirks: zero for an opaque input; when
    /// several inputs map to the same entry (a duplicated spend or issuance), only the last of
    /// them gets the ID and the earlier ones stay zero; a coinbase entry is recorded at index 0.
    pub input_ids: Vec<Hash>,
    /// What each input mapped to, in input order.
    pub inputs: Vec<InputEntry>,
    /// The outputs consumed, without duplicates, in input order (Bytom's order is a Go map's,
    /// i.e. unspecified).
    pub spent_output_ids: Vec<Hash>,
    /// The results (outputs and retirements), in output order.
    pub results: Vec<ResultEntry>,
    /// Inputs that can pay gas: BTM spends and the coinbase, without duplicates, in input order.
    pub gas_input_ids: Vec<Hash>,
    /// Every distinct entry: per input its prevout/spend, issuance or coinbase, then the mux,
    /// the results and the tx header.
    pub entries: Vec<EntryRef>,
}

impl MappedTx {
    /// The result IDs in output order.
    pub fn result_ids(&self) -> Vec<Hash> {
        self.results.iter().map(|r| r.id).collect()
    }

    /// The signature hash of input `index`: `SHA3(input_ids[index] || tx_id)`. `None` out of
    /// range.
    pub fn sighash(&self, index: usize) -> Option<Hash> {
        self.input_ids
            .get(index)
            .map(|input_id| sighash(input_id, &self.tx_id))
    }

    /// The signature hashes of all inputs.
    pub fn sighashes(&self) -> Vec<Hash> {
        self.input_ids
            .iter()
            .map(|input_id| sighash(input_id, &self.tx_id))
            .collect()
    }
}

/// The asset and amount Bytom maps an output with (zero for asset version ≠ 1).
fn output_value(out: &TxOutput) -> (AssetId, u64) {
    if out.asset_version == 1 {
        (out.asset_id, out.amount)
    } else {
        (Hash::ZERO, 0)
    }
}

fn output_program(out: &TxOutput) -> &[u8] {
    if out.asset_version == 1 {
        &out.control_program
    } else {
        &[]
    }
}

/// Distinct entries in first-seen order.
#[derive(Default)]
struct EntrySet {
    seen: HashSet<Hash>,
    list: Vec<EntryRef>,
}

impl EntrySet {
    fn add(&mut self, kind: EntryType, id: Hash) -> Hash {
        if self.seen.insert(id) {
            self.list.push(EntryRef { kind, id });
        }
        id
    }
}

/// Maps a transaction into entries and computes its IDs (Bytom's `MapTx`).
///
/// # Errors
/// [`DecodeError::CoinbaseWithoutOutputs`]: a coinbase input takes its value from output 0
/// (Bytom's mapper would crash on such a transaction).
pub fn map_tx(tx: &TxData) -> Result<MappedTx> {
    let mut set = EntrySet::default();
    let mut sources: Vec<Option<ValueSource>> = Vec::with_capacity(tx.inputs.len());
    let mut inputs = Vec::with_capacity(tx.inputs.len());

    for input in &tx.inputs {
        let (entry, source) = match input {
            TxInput::Spend(s) => {
                let prevout = ValueSource {
                    ref_id: s.source_id,
                    asset_id: s.asset_id,
                    amount: s.amount,
                    position: s.source_position,
                };
                let spent_output_id = set.add(
                    EntryType::Output,
                    output_id(&prevout, crate::tx::VM_VERSION, &s.control_program),
                );
                let id = set.add(EntryType::Spend, spend_id(&spent_output_id));
                (
                    InputEntry::Spend {
                        spend_id: id,
                        spent_output_id,
                        asset_id: s.asset_id,
                        amount: s.amount,
                    },
                    Some((id, s.asset_id, s.amount)),
                )
            }
            TxInput::Issuance(i) => {
                let asset_id = i.asset_id();
                let id = set.add(
                    EntryType::Issuance,
                    issuance_id(&sha3(&i.nonce), &asset_id, i.amount),
                );
                (
                    InputEntry::Issuance {
                        issuance_id: id,
                        asset_id,
                        amount: i.amount,
                    },
                    Some((id, asset_id, i.amount)),
                )
            }
            TxInput::Coinbase(c) => {
                let first = tx
                    .outputs
                    .first()
                    .ok_or(DecodeError::CoinbaseWithoutOutputs)?;
                let (asset_id, amount) = output_value(first);
                let id = set.add(EntryType::Coinbase, coinbase_id(&c.arbitrary));
                (
                    InputEntry::Coinbase { coinbase_id: id },
                    Some((id, asset_id, amount)),
                )
            }
            TxInput::Opaque(_) => (InputEntry::None, None),
        };
        inputs.push(entry);
        sources.push(source.map(|(ref_id, asset_id, amount)| ValueSource {
            ref_id,
            asset_id,
            amount,
            position: 0,
        }));
    }

    let mux = set.add(EntryType::Mux, mux_id(&sources));

    let mut results = Vec::with_capacity(tx.outputs.len());
    for (position, out) in tx.outputs.iter().enumerate() {
        let (asset_id, amount) = output_value(out);
        let source = ValueSource {
            ref_id: mux,
            asset_id,
            amount,
            position: position as u64,
        };
        let program = output_program(out);
        let (kind, id) = if program.first() == Some(&OP_FAIL) {
            (EntryType::Retirement, retirement_id(&source))
        } else {
            (
                EntryType::Output,
                output_id(&source, out.vm_version(), program),
            )
        };
        set.add(kind, id);
        results.push(ResultEntry { kind, id });
    }

    let result_ids: Vec<Hash> = results.iter().map(|r| r.id).collect();
    let tx_id = set.add(
        EntryType::TxHeader,
        tx_header_id(tx.version, tx.time_range, &result_ids),
    );

    Ok(MappedTx {
        tx_id,
        mux_id: mux,
        input_ids: input_ids(&inputs),
        spent_output_ids: distinct(inputs.iter().filter_map(InputEntry::spent_output_id)),
        gas_input_ids: distinct(inputs.iter().filter_map(|e| match *e {
            InputEntry::Spend {
                spend_id, asset_id, ..
            } if asset_id == BTM_ASSET_ID => Some(spend_id),
            InputEntry::Coinbase { coinbase_id } => Some(coinbase_id),
            _ => None,
        })),
        inputs,
        results,
        entries: set.list,
    })
}

/// Bytom fills `InputIDs` by walking its entry map (keyed by ID, so a later input with the same
/// entry replaces an earlier one) and writing each spend/issuance ID at its ordinal and the
/// coinbase ID at 0. Where that walk's order would matter (a coinbase that is not input 0), we
/// let the coinbase win.
fn input_ids(inputs: &[InputEntry]) -> Vec<Hash> {
    let mut ordinal: HashMap<Hash, usize> = HashMap::new();
    let mut order: Vec<Hash> = Vec::new();
    for (i, entry) in inputs.iter().enumerate() {
        let (id, ord) = match *entry {
            InputEntry::Spend { spend_id, .. } => (spend_id, i),
            InputEntry::Issuance { issuance_id, .. } => (issuance_id, i),
            InputEntry::Coinbase { coinbase_id } => (coinbase_id, 0),
            InputEntry::None => continue,
        };
        if ordinal.insert(id, ord).is_none() {
            order.push(id);
        }
    }
    let mut ids = vec![Hash::ZERO; inputs.len()];
    for id in order {
        if let Some(slot) = ordinal.get(&id).and_then(|&ord| ids.get_mut(ord)) {
            *slot = id;
        }
    }
    ids
}

fn distinct(ids: impl Iterator<Item = Hash>) -> Vec<Hash> {
    let mut seen = HashSet::new();
    ids.filter(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::{CoinbaseInput, SpendInput};

    #[test]
    fn duplicate_spends_leave_earlier_input_ids_zero() {
        let spend = SpendInput {
            asset_id: BTM_ASSET_ID,
            amount: 5,
            control_program: vec![OP_TRUE],
            ..SpendInput::default()
        };
        let tx = TxData {
            version: 1,
            time_range: 0,
            inputs: vec![TxInput::Spend(spend.clone()), TxInput::Spend(spend)],
            outputs: vec![TxOutput::new(BTM_ASSET_ID, 10, vec![OP_TRUE])],
        };
        let m = map_tx(&tx).unwrap();
        assert!(m.input_ids[0].is_zero());
        assert!(!m.input_ids[1].is_zero());
        assert_eq!(m.spent_output_ids.len(), 1);
        assert_eq!(m.gas_input_ids.len(), 1);
        assert_eq!(m.inputs[0], m.inputs[1]);
        // prevout, spend, mux, output, txheader
        assert_eq!(m.entries.len(), 5);
    }

    #[test]
    fn coinbase_without_outputs_is_an_error() {
        let tx = TxData {
            version: 1,
            time_range: 0,
            inputs: vec![TxInput::Coinbase(CoinbaseInput::default())],
            outputs: vec![],
        };
        assert_eq!(map_tx(&tx), Err(DecodeError::CoinbaseWithoutOutputs));
    }

    #[test]
    fn retirement_is_chosen_by_op_fail() {
        let tx = TxData {
            version: 1,
            time_range: 0,
            inputs: vec![],
            outputs: vec![
                TxOutput::new(BTM_ASSET_ID, 1, vec![OP_FAIL, 1, 2]),
                TxOutput::new(BTM_ASSET_ID, 1, vec![]),
            ],
        };
        let m = map_tx(&tx).unwrap();
        assert_eq!(m.results[0].kind, EntryType::Retirement);
        assert_eq!(m.results[1].kind, EntryType::Output);
    }
}
