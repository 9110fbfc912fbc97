//! Transaction validation (Bytom's `ValidateTx`, spec §5.3), in Bytom's order: the cheap
//! stateless checks (version, size, time range, standardness), then the walk over the entry
//! graph from the transaction header, with the gas state that decides whether a failure
//! invalidates the block or only marks the transaction "status fail".
//!
//! No UTXO state is needed: a spend carries the full content of the output it consumes.

use std::collections::HashMap;

use crate::consensus::{
    COINBASE_ARBITRARY_SIZE_LIMIT, DEFAULT_GAS_CREDIT, MAX_GAS_AMOUNT, RULE_AA_HEIGHT,
    STORAGE_GAS_RATE, VM_GAS_RATE,
};
use crate::entries::{compute_asset_id, EntryType, InputEntry, ValueSource};
use crate::hash::{AssetId, Hash, BTM_ASSET_ID};
use crate::tx::{Transaction, TxInput, VM_VERSION};
use crate::vm::{self, is_p2wpkh_script, is_p2wsh_script, is_straightforward, Program};

use super::errors::{TxError, TxResult};
use super::vm_context::{Ed25519Verifier, TxVmContext};

/// What a transaction is validated against: the block that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockContext {
    /// The block version (1 requires transaction version 1).
    pub version: u64,
    /// The block height (time range, rule-AA height, `BLOCKHEIGHT`).
    pub height: u64,
    /// The transaction's index in the block; only index 0 may hold a coinbase input. `None`
    /// outside a block (the mempool), where a coinbase is always wrong.
    pub tx_index: Option<usize>,
}

/// The result of [`validate_tx`] (Bytom's `GasState` plus the error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Whether the gas became valid (`setGasValid` was reached). An error with `gas_valid`
    /// false invalidates the block; with `gas_valid` true the transaction is only "status
    /// fail" (kept, fee charged, non-BTM effects dropped).
    pub gas_valid: bool,
    /// The first error, if any.
    pub error: Option<TxError>,
    /// Gas used (VM runs plus storage gas); counts towards the block gas limit.
    pub gas_used: i64,
    /// Gas left.
    pub gas_left: i64,
    /// The BTM left in the mux: the fee paid to the coinbase.
    pub btm_value: u64,
    /// Storage gas (the serialized size; 0 for a coinbase transaction).
    pub storage_gas: i64,
}

impl TxOutcome {
    /// Whether the transaction is included as "status fail": an error after the gas became
    /// valid.
    pub fn status_fail(&self) -> bool {
        self.gas_valid && self.error.is_some()
    }

    /// Whether the transaction makes its block invalid: an error before the gas became valid.
    pub fn invalidates_block(&self) -> bool {
        !self.gas_valid && self.error.is_some()
    }
}

/// Bytom's `GasState`.
#[derive(Debug, Clone, Copy, Default)]
struct GasState {
    btm_value: u64,
    gas_left: i64,
    gas_used: i64,
    gas_valid: bool,
    storage_gas: i64,
}

impl GasState {
    fn set_gas(&mut self, btm_value: i64, tx_size: i64) -> TxResult<()> {
        if btm_value < 0 {
            return Err(TxError::GasCalculate {
                reason: "input BTM is negative",
            });
        }
        self.btm_value = btm_value as u64;
        self.gas_left = (btm_value / VM_GAS_RATE).min(MAX_GAS_AMOUNT);
        self.storage_gas = tx_size
            .checked_mul(STORAGE_GAS_RATE)
            .ok_or(TxError::GasCalculate {
                reason: "setGas calc tx storage gas",
            })?;
        Ok(())
    }

    fn set_gas_valid(&mut self) -> TxResult<()> {
        self.gas_left = match self.gas_left.checked_sub(self.storage_gas) {
            Some(left) if left >= 0 => left,
            _ => {
                return Err(TxError::GasCalculate {
                    reason: "setGasValid calc gasLeft",
                })
            }
        };
        self.gas_used =
            self.gas_used
                .checked_add(self.storage_gas)
                .ok_or(TxError::GasCalculate {
                    reason: "setGasValid calc gasUsed",
                })?;
        self.gas_valid = true;
        Ok(())
    }

    fn update_usage(&mut self, gas_left: i64) -> TxResult<()> {
        if gas_left < 0 {
            return Err(TxError::GasCalculate {
                reason: "updateUsage input negative gas",
            });
        }
        let used = self
            .gas_left
            .checked_sub(gas_left)
            .ok_or(TxError::GasCalculate {
                reason: "updateUsage calc gas diff",
            })?;
        // Go adds without a check here; the sum is bounded by the gas limit in practice.
        self.gas_used = self.gas_used.wrapping_add(used);
        self.gas_left = gas_left;
        if !self.gas_valid
            && (self.gas_used > DEFAULT_GAS_CREDIT || self.storage_gas > self.gas_left)
        {
            return Err(TxError::OverGasCredit {
                gas_used: self.gas_used,
                gas_left: self.gas_left,
                storage_gas: self.storage_gas,
            });
        }
        Ok(())
    }
}

/// An entry of the graph Bytom's `MapTx` builds, with the witness fields validation reads.
/// Value sources and destinations share [`ValueSource`] (ref, asset, amount, position).
#[derive(Debug)]
enum Node<'a> {
    /// A spent output (prevout) or a result output.
    Output {
        source: ValueSource,
        vm_version: u64,
        code: &'a [u8],
    },
    Retirement {
        source: ValueSource,
    },
    Spend {
        spent_output_id: Hash,
        input: usize,
        dest: ValueSource,
    },
    Issuance {
        input: usize,
        dest: ValueSource,
    },
    Coinbase {
        arbitrary: &'a [u8],
        /// Go takes the coinbase's destination value from mux source 0 (nil for an opaque
        /// input 0, on which Go crashes).
        dest: Option<ValueSource>,
    },
    Mux {
        sources: Vec<Option<ValueSource>>,
        dests: Vec<ValueSource>,
    },
}

impl Node<'_> {
    fn kind(&self) -> EntryType {
        match self {
            Node::Output { .. } => EntryType::Output,
            Node::Retirement { .. } => EntryType::Retirement,
            Node::Spend { .. } => EntryType::Spend,
            Node::Issuance { .. } => EntryType::Issuance,
            Node::Coinbase { .. } => EntryType::Coinbase,
            Node::Mux { .. } => EntryType::Mux,
        }
    }
}

fn same_value(a: &ValueSource, b: &ValueSource) -> bool {
    a.asset_id == b.asset_id && a.amount == b.amount
}

/// Rebuilds Bytom's entry map from the transaction and its already computed IDs. Like Go's
/// `addEntry`, a later input mapping to the same ID replaces the earlier entry.
fn build_graph(tx: &Transaction) -> HashMap<Hash, Node<'_>> {
    let m = &tx.mapped;
    let mux_id = m.mux_id;
    let mut nodes = HashMap::with_capacity(m.entries.len());
    let mut sources = Vec::with_capacity(tx.data.inputs.len());
    let mut coinbase_ids = Vec::new();
    for (i, (input, entry)) in tx.data.inputs.iter().zip(&m.inputs).enumerate() {
        let source = match (*entry, input) {
            (
                InputEntry::Spend {
                    spend_id,
                    spent_output_id,
                    asset_id,
                    amount,
                },
                TxInput::Spend(s),
            ) => {
                nodes.insert(
                    spent_output_id,
                    Node::Output {
                        source: ValueSource {
                            ref_id: s.source_id,
                            asset_id,
                            amount,
                            position: s.source_position,
                        },
                        vm_version: VM_VERSION,
                        code: &s.control_program,
                    },
                );
                let dest = ValueSource {
                    ref_id: mux_id,
                    asset_id,
                    amount,
                    position: i as u64,
                };
                nodes.insert(
                    spend_id,
                    Node::Spend {
                        spent_output_id,
                        input: i,
                        dest,
                    },
                );
                Some((spend_id, asset_id, amount))
            }
            (
                InputEntry::Issuance {
                    issuance_id,
                    asset_id,
                    amount,
                },
                TxInput::Issuance(_),
            ) => {
                let dest = ValueSource {
                    ref_id: mux_id,
                    asset_id,
                    amount,
                    position: i as u64,
                };
                nodes.insert(issuance_id, Node::Issuance { input: i, dest });
                Some((issuance_id, asset_id, amount))
            }
            (InputEntry::Coinbase { coinbase_id }, TxInput::Coinbase(c)) => {
                coinbase_ids.push((coinbase_id, c.arbitrary.as_slice()));
                let first = tx.data.outputs.first();
                let (asset_id, amount) = first
                    .filter(|o| o.asset_version == 1)
                    .map_or((Hash::ZERO, 0), |o| (o.asset_id, o.amount));
                Some((coinbase_id, asset_id, amount))
            }
            _ => None,
        };
        sources.push(source.map(|(ref_id, asset_id, amount)| ValueSource {
            ref_id,
            asset_id,
            amount,
            position: 0,
        }));
    }
    for (id, arbitrary) in coinbase_ids {
        let dest = sources[0].map(|s| ValueSource {
            ref_id: mux_id,
            asset_id: s.asset_id,
            amount: s.amount,
            position: 0,
        });
        nodes.insert(id, Node::Coinbase { arbitrary, dest });
    }
    let mut dests = Vec::with_capacity(m.results.len());
    for (j, (result, out)) in m.results.iter().zip(&tx.data.outputs).enumerate() {
        let (asset_id, amount, code): (AssetId, u64, &[u8]) = if out.asset_version == 1 {
            (out.asset_id, out.amount, &out.control_program)
        } else {
            (Hash::ZERO, 0, &[])
        };
        let source = ValueSource {
            ref_id: mux_id,
            asset_id,
            amount,
            position: j as u64,
        };
        let node = if result.kind == EntryType::Retirement {
            Node::Retirement { source }
        } else {
            Node::Output {
                source,
                vm_version: out.vm_version(),
                code,
            }
        };
        nodes.insert(result.id, node);
        dests.push(ValueSource {
            ref_id: result.id,
            asset_id,
            amount,
            position: 0,
        });
    }
    nodes.insert(mux_id, Node::Mux { sources, dests });
    nodes
}

/// The walk over the entry graph (Go's `validationState` + `checkValid`).
struct Walk<'a> {
    tx: &'a Transaction,
    block: &'a BlockContext,
    nodes: HashMap<Hash, Node<'a>>,
    gas: GasState,
    cache: HashMap<Hash, TxResult<()>>,
}

impl<'a> Walk<'a> {
    fn node(&self, id: &Hash) -> TxResult<&Node<'a>> {
        self.nodes.get(id).ok_or(TxError::MissingEntry { id: *id })
    }

    /// `checkValid`, memoised per entry ID (the result of the first check is reused whatever
    /// the positions of later callers, as in Go).
    fn check_valid(&mut self, id: Hash) -> TxResult<()> {
        if let Some(result) = self.cache.get(&id) {
            return result.clone();
        }
        let result = self.check_entry(id);
        self.cache.insert(id, result.clone());
        result
    }

    fn check_entry(&mut self, id: Hash) -> TxResult<()> {
        match self.node(&id)? {
            Node::Output { source, .. } | Node::Retirement { source } => {
                let source = *source;
                self.check_valid_src(id, 0, &source)
            }
            Node::Mux { .. } => self.check_mux(id),
            Node::Spend {
                spent_output_id,
                input,
                dest,
            } => {
                let (spent_output_id, input, dest) = (*spent_output_id, *input, *dest);
                self.check_spend(id, spent_output_id, input, dest)
            }
            Node::Issuance { input, dest } => {
                let (input, dest) = (*input, *dest);
                self.check_issuance(id, input, dest)
            }
            Node::Coinbase { arbitrary, dest } => {
                let (size, dest) = (arbitrary.len(), *dest);
                self.check_coinbase(id, size, dest)
            }
        }
    }

    fn check_mux(&mut self, mux_id: Hash) -> TxResult<()> {
        let Node::Mux { sources, dests } = self.node(&mux_id)? else {
            unreachable!("check_mux is called on the mux");
        };
        let (sources, dests) = (sources.clone(), dests.clone());

        // Per-asset balance in first-seen order (Go iterates a map: when several assets are
        // wrong at once, which error it reports is unspecified).
        let mut parity: Vec<(AssetId, i64)> = Vec::new();
        let slot = |parity: &mut Vec<(AssetId, i64)>, asset: AssetId| {
            parity
                .iter()
                .position(|(a, _)| *a == asset)
                .unwrap_or_else(|| {
                    parity.push((asset, 0));
                    parity.len() - 1
                })
        };
        for src in &sources {
            let src = src.ok_or(TxError::MissingField {
                what: "mux source of an input that maps to no entry",
            })?;
            let overflow = TxError::Overflow {
                asset_id: src.asset_id,
                amount: src.amount,
            };
            let amount = i64::try_from(src.amount).map_err(|_| overflow.clone())?;
            let k = slot(&mut parity, src.asset_id);
            parity[k].1 = parity[k].1.checked_add(amount).ok_or(overflow)?;
        }
        for (index, dest) in dests.iter().enumerate() {
            let Some(k) = parity.iter().position(|(a, _)| *a == dest.asset_id) else {
                return Err(TxError::NoSource {
                    index,
                    asset_id: dest.asset_id,
                });
            };
            let overflow = TxError::Overflow {
                asset_id: dest.asset_id,
                amount: dest.amount,
            };
            let amount = i64::try_from(dest.amount).map_err(|_| overflow.clone())?;
            parity[k].1 = parity[k].1.checked_sub(amount).ok_or(overflow)?;
        }
        for &(asset_id, balance) in &parity {
            if asset_id == BTM_ASSET_ID {
                self.gas.set_gas(balance, self.tx.serialized_size as i64)?;
            } else if balance != 0 {
                return Err(TxError::Unbalanced { asset_id, balance });
            }
        }

        for id in self.tx.mapped.gas_input_ids.clone() {
            self.node(&id)?;
            self.check_valid(id)?;
        }
        for (pos, dest) in dests.iter().enumerate() {
            self.check_valid_dest(mux_id, pos as u64, dest)?;
        }
        self.gas.set_gas_valid()?;
        for (pos, src) in sources.iter().enumerate() {
            // Every source is `Some` (checked above).
            if let Some(src) = src {
                self.check_valid_src(mux_id, pos as u64, src)?;
            }
        }
        Ok(())
    }

    fn run_program(
        &mut self,
        id: Hash,
        input: usize,
        dest_pos: u64,
        program: Program<'_>,
    ) -> TxResult<()> {
        let tx = self.tx;
        let entry = &tx.mapped.inputs[input];
        let context = TxVmContext::new(tx, entry, dest_pos, self.block.height)
            .expect("spends and issuances have a VM context");
        let kind = context.kind();
        let arguments = tx.data.inputs[input].arguments();
        let left = vm::verify(
            &context,
            &Ed25519Verifier,
            &program,
            arguments,
            self.gas.gas_left,
        )
        .map_err(|error| TxError::Vm {
            kind,
            entry: id,
            error,
        })?;
        self.gas.update_usage(left)
    }

    fn check_spend(
        &mut self,
        id: Hash,
        spent_output_id: Hash,
        input: usize,
        dest: ValueSource,
    ) -> TxResult<()> {
        let (prevout, vm_version, code) = match self.node(&spent_output_id)? {
            Node::Output {
                source,
                vm_version,
                code,
            } => (*source, *vm_version, *code),
            other => {
                return Err(TxError::EntryType {
                    id: spent_output_id,
                    kind: other.kind(),
                })
            }
        };
        self.run_program(id, input, dest.position, Program { vm_version, code })?;
        if !same_value(&prevout, &dest) {
            return Err(TxError::MismatchedValue { entry: id });
        }
        self.check_valid_dest(id, 0, &dest)
    }

    fn check_issuance(&mut self, id: Hash, input: usize, dest: ValueSource) -> TxResult<()> {
        let TxInput::Issuance(issuance) = &self.tx.data.inputs[input] else {
            unreachable!("issuance entries come from issuance inputs");
        };
        let computed = compute_asset_id(
            issuance.vm_version,
            &issuance.issuance_program,
            &issuance.asset_definition,
        );
        if computed != dest.asset_id {
            return Err(TxError::MismatchedAssetId {
                computed,
                wanted: dest.asset_id,
            });
        }
        let program = Program {
            vm_version: issuance.vm_version,
            code: &issuance.issuance_program,
        };
        self.run_program(id, input, dest.position, program)?;
        self.check_valid_dest(id, 0, &dest)
    }

    fn check_coinbase(
        &mut self,
        id: Hash,
        arbitrary_len: usize,
        dest: Option<ValueSource>,
    ) -> TxResult<()> {
        if self.block.tx_index != Some(0) {
            return Err(TxError::WrongCoinbaseTransaction);
        }
        let dest = dest.ok_or(TxError::MissingField {
            what: "coinbase destination value (input 0 maps to no entry)",
        })?;
        if dest.asset_id != BTM_ASSET_ID {
            return Err(TxError::WrongCoinbaseAsset {
                asset_id: dest.asset_id,
            });
        }
        if arbitrary_len > COINBASE_ARBITRARY_SIZE_LIMIT {
            return Err(TxError::CoinbaseArbitraryOversize {
                size: arbitrary_len,
                limit: COINBASE_ARBITRARY_SIZE_LIMIT,
            });
        }
        self.check_valid_dest(id, 0, &dest)?;
        self.gas.storage_gas = 0;
        Ok(())
    }

    /// `checkValidSrc`: `src` feeds entry `entry` at `source_pos`.
    fn check_valid_src(&mut self, entry: Hash, source_pos: u64, src: &ValueSource) -> TxResult<()> {
        self.node(&src.ref_id)?;
        self.check_valid(src.ref_id)?;
        let dest = match self.node(&src.ref_id)? {
            Node::Coinbase { dest, .. } => {
                if src.position != 0 {
                    return Err(TxError::Position {
                        position: src.position,
                    });
                }
                dest.ok_or(TxError::MissingField {
                    what: "coinbase destination value",
                })?
            }
            Node::Issuance { dest, .. } | Node::Spend { dest, .. } => {
                if src.position != 0 {
                    return Err(TxError::Position {
                        position: src.position,
                    });
                }
                *dest
            }
            Node::Mux { dests, .. } => *usize::try_from(src.position)
                .ok()
                .and_then(|p| dests.get(p))
                .ok_or(TxError::Position {
                    position: src.position,
                })?,
            other => {
                return Err(TxError::EntryType {
                    id: src.ref_id,
                    kind: other.kind(),
                })
            }
        };
        if dest.ref_id != entry {
            return Err(TxError::MismatchedReference {
                entry,
                found: dest.ref_id,
            });
        }
        if dest.position != source_pos {
            return Err(TxError::MismatchedPosition {
                expected: source_pos,
                found: dest.position,
            });
        }
        if !same_value(&dest, src) {
            return Err(TxError::MismatchedValue { entry });
        }
        Ok(())
    }

    /// `checkValidDest`: entry `entry` sends `vd` from its destination `dest_pos`.
    fn check_valid_dest(&self, entry: Hash, dest_pos: u64, vd: &ValueSource) -> TxResult<()> {
        let src = match self.node(&vd.ref_id)? {
            Node::Output { source, .. } | Node::Retirement { source } => {
                if vd.position != 0 {
                    return Err(TxError::Position {
                        position: vd.position,
                    });
                }
                *source
            }
            Node::Mux { sources, .. } => usize::try_from(vd.position)
                .ok()
                .and_then(|p| sources.get(p))
                .ok_or(TxError::Position {
                    position: vd.position,
                })?
                .ok_or(TxError::MissingField {
                    what: "mux source of an input that maps to no entry",
                })?,
            other => {
                return Err(TxError::EntryType {
                    id: vd.ref_id,
                    kind: other.kind(),
                })
            }
        };
        if src.ref_id != entry {
            return Err(TxError::MismatchedReference {
                entry,
                found: src.ref_id,
            });
        }
        if src.position != dest_pos {
            return Err(TxError::MismatchedPosition {
                expected: dest_pos,
                found: src.position,
            });
        }
        if !same_value(&src, vd) {
            return Err(TxError::MismatchedValue { entry });
        }
        Ok(())
    }
}

/// Stage 1: `ErrTxVersion`.
fn check_version(tx: &Transaction, block: &BlockContext) -> TxResult<()> {
    if block.version == 1 && tx.data.version != 1 {
        return Err(TxError::TxVersion {
            block_version: block.version,
            tx_version: tx.data.version,
        });
    }
    Ok(())
}

/// Stage 2: `ErrWrongTransactionSize`.
fn check_size(tx: &Transaction) -> TxResult<()> {
    if tx.serialized_size == 0 {
        return Err(TxError::WrongTransactionSize);
    }
    Ok(())
}

/// Stage 3: `ErrBadTimeRange`.
fn check_time_range(tx: &Transaction, block: &BlockContext) -> TxResult<()> {
    let time_range = tx.data.time_range;
    if time_range != 0 && time_range < block.height {
        return Err(TxError::BadTimeRange {
            time_range,
            height: block.height,
        });
    }
    Ok(())
}

/// Bytom's `segwit.IsP2WScript`.
fn is_p2w_script(program: &[u8]) -> bool {
    is_p2wpkh_script(program) || is_p2wsh_script(program) || is_straightforward(program)
}

/// Stage 4: `checkStandardTx` (rule AA, then BTM spends' prevout programs, then BTM output
/// programs; retirements are skipped).
pub fn check_standard_tx(tx: &Transaction, height: u64) -> TxResult<()> {
    if height >= RULE_AA_HEIGHT {
        if let Some(index) = tx.mapped.input_ids.iter().position(Hash::is_zero) {
            return Err(TxError::EmptyInputIds { index });
        }
    }
    for (index, (input, entry)) in tx.data.inputs.iter().zip(&tx.mapped.inputs).enumerate() {
        if let (
            TxInput::Spend(s),
            InputEntry::Spend {
                asset_id: BTM_ASSET_ID,
                ..
            },
        ) = (input, entry)
        {
            if !is_p2w_script(&s.control_program) {
                return Err(TxError::NotStandardTx {
                    kind: "input",
                    index,
                });
            }
        }
    }
    for (index, (result, out)) in tx.mapped.results.iter().zip(&tx.data.outputs).enumerate() {
        let btm = out.asset_version == 1 && out.asset_id == BTM_ASSET_ID;
        if result.kind == EntryType::Output && btm && !is_p2w_script(&out.control_program) {
            return Err(TxError::NotStandardTx {
                kind: "output",
                index,
            });
        }
    }
    Ok(())
}

/// The stages before the entry graph, chained in Bytom's order.
fn check_stateless(tx: &Transaction, block: &BlockContext) -> TxResult<()> {
    check_version(tx, block)?;
    check_size(tx)?;
    check_time_range(tx, block)?;
    check_standard_tx(tx, block.height)
}

/// Validates `tx` as part of `block` (Bytom's `ValidateTx`).
///
/// Never fails as a function: the error, if any, is in [`TxOutcome::error`], and
/// [`TxOutcome::gas_valid`] says whether it invalidates the block.
pub fn validate_tx(tx: &Transaction, block: &BlockContext) -> TxOutcome {
    let mut walk = Walk {
        tx,
        block,
        nodes: HashMap::new(),
        gas: GasState::default(),
        cache: HashMap::new(),
    };
    let result = check_stateless(tx, block).and_then(|()| {
        walk.nodes = build_graph(tx);
        // The tx header: every result, then `ErrEmptyResults` (a tx without results checks
        // nothing else).
        for result in &tx.mapped.results {
            walk.check_valid(result.id)?;
        }
        if tx.data.version == 1 && tx.mapped.results.is_empty() {
            return Err(TxError::EmptyResults);
        }
        Ok(())
    });
    let gas = walk.gas;
    TxOutcome {
        gas_valid: gas.gas_valid,
        error: result.err(),
        gas_used: gas.gas_used,
        gas_left: gas.gas_left,
        btm_value: gas.btm_value,
        storage_gas: gas.storage_gas,
    }
}
