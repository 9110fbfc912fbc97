//! Transactions on the wire (spec §2.4–§2.6): [`TxData`] with its [`TxInput`]s and
//! [`TxOutput`]s, and [`Transaction`], the decoded form with its size and entry IDs.
//!
//! ```text
//! TxData   = u8 serflags (0x07) | varint63 version | varint63 time_range
//!          | varint31 n_inputs, TxInput… | varint31 n_outputs, TxOutput…
//! TxInput  = varint63 asset_version | varstr31 commitment (ext) | varstr31 witness (ext)
//! TxOutput = varint63 asset_version | varstr31 commitment (ext) | varstr31 witness (ignored)
//! ```
//! Only commitments (and the tx header fields) feed the IDs; witnesses hold arguments and the
//! issuance program, so signatures do not change a transaction's ID.

use bystack_kernels::hex;

use crate::encoding::{
    write_extensible, write_hash, write_len, write_varint63, write_varstr31, write_varstr_list,
    DecodeError, EncodeError, Reader, Result,
};
use crate::entries::{self, MappedTx};
use crate::hash::{AssetId, Hash};

/// The only serialization flags a transaction may carry ("all parts").
pub const TX_SERFLAGS: u8 = 0x07;

/// Input commitment type byte of an issuance.
pub const ISSUANCE_INPUT_TYPE: u8 = 0x00;
/// Input commitment type byte of a spend.
pub const SPEND_INPUT_TYPE: u8 = 0x01;
/// Input commitment type byte of a coinbase.
pub const COINBASE_INPUT_TYPE: u8 = 0x02;

/// The VM version that asset-version-1 spend and output commitments must name.
pub const VM_VERSION: u64 = 1;

/// Spends a previous output (type byte 0x01).
///
/// The spend commitment is itself an extensible string nested in the input commitment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpendInput {
    /// The mux (or other entry) that created the spent output.
    pub source_id: Hash,
    /// Asset of the spent output.
    pub asset_id: AssetId,
    /// Amount of the spent output.
    pub amount: u64,
    /// Position of the spent output among its creator's results.
    pub source_position: u64,
    /// The spent output's control program (its VM version is always 1).
    pub control_program: Vec<u8>,
    /// Witness arguments (signatures, public keys, scripts).
    pub arguments: Vec<Vec<u8>>,
    /// Unparsed content of the nested spend commitment.
    pub spend_commitment_suffix: Vec<u8>,
    /// Unparsed content of the input commitment after the spend commitment.
    pub commitment_suffix: Vec<u8>,
    /// Unparsed witness content after the arguments.
    pub witness_suffix: Vec<u8>,
}

/// Issues new units of an asset (type byte 0x00). The committed asset ID is not stored: it is
/// always [`IssuanceInput::asset_id`], derived from the program and definition in the witness.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IssuanceInput {
    /// Nonce making the issuance unique (hashed into the issuance entry).
    pub nonce: Vec<u8>,
    /// Amount issued.
    pub amount: u64,
    /// The asset definition (hashed into the asset ID).
    pub asset_definition: Vec<u8>,
    /// VM version of the issuance program (not restricted at decode time).
    pub vm_version: u64,
    /// The issuance program.
    pub issuance_program: Vec<u8>,
    /// Witness arguments.
    pub arguments: Vec<Vec<u8>>,
    /// Unparsed content of the input commitment after the amount.
    pub commitment_suffix: Vec<u8>,
    /// Unparsed witness content after the arguments.
    pub witness_suffix: Vec<u8>,
}

impl IssuanceInput {
    /// The asset this input issues (spec §3.5).
    pub fn asset_id(&self) -> AssetId {
        entries::compute_asset_id(
            self.vm_version,
            &self.issuance_program,
            &self.asset_definition,
        )
    }
}

/// The block reward input (type byte 0x02); its witness is normally empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoinbaseInput {
    /// Miner-chosen bytes (consensus limits them to 128 bytes, see validation).
    pub arbitrary: Vec<u8>,
    /// Unparsed content of the input commitment after the arbitrary data.
    pub commitment_suffix: Vec<u8>,
    /// The witness content (nothing is parsed from a coinbase witness).
    pub witness_suffix: Vec<u8>,
}

/// An input whose asset version is not 1: both blobs are kept as they are and the input maps
/// to no entry (its input ID is the zero hash).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaqueInput {
    /// The asset version (never 1 for a decoded input).
    pub asset_version: u64,
    /// The whole input-commitment content.
    pub commitment: Vec<u8>,
    /// The whole input-witness content.
    pub witness: Vec<u8>,
}

/// A transaction input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxInput {
    /// Asset version 1, type 0x00.
    Issuance(IssuanceInput),
    /// Asset version 1, type 0x01.
    Spend(SpendInput),
    /// Asset version 1, type 0x02.
    Coinbase(CoinbaseInput),
    /// Any other asset version.
    Opaque(OpaqueInput),
}

impl TxInput {
    /// The input's asset version (1 except for [`TxInput::Opaque`]).
    pub fn asset_version(&self) -> u64 {
        match self {
            TxInput::Opaque(o) => o.asset_version,
            _ => 1,
        }
    }

    /// A short name of the kind: `issuance`, `spend`, `coinbase` or `opaque`.
    pub fn kind(&self) -> &'static str {
        match self {
            TxInput::Issuance(_) => "issuance",
            TxInput::Spend(_) => "spend",
            TxInput::Coinbase(_) => "coinbase",
            TxInput::Opaque(_) => "opaque",
        }
    }

    /// The witness arguments of a spend or issuance (empty otherwise).
    pub fn arguments(&self) -> &[Vec<u8>] {
        match self {
            TxInput::Issuance(i) => &i.arguments,
            TxInput::Spend(s) => &s.arguments,
            _ => &[],
        }
    }

    /// Reads one input.
    ///
    /// # Errors
    /// Truncation and varint errors, [`DecodeError::UnknownInputType`],
    /// [`DecodeError::UnsupportedVmVersion`] in a spend commitment, and
    /// [`DecodeError::BadAssetId`] for an issuance whose committed asset ID is not the derived one.
    pub fn read_from(r: &mut Reader<'_>) -> Result<TxInput> {
        let asset_version = r.read_varint63()?;
        if asset_version != 1 {
            let commitment = r.read_varstr31()?.to_vec();
            let witness = r.read_varstr31()?.to_vec();
            return Ok(TxInput::Opaque(OpaqueInput {
                asset_version,
                commitment,
                witness,
            }));
        }

        // Commitment: a type byte, then the kind's fields.
        let (partial, commitment_suffix) = r.read_extensible(|c| {
            let kind = c.read_u8()?;
            match kind {
                ISSUANCE_INPUT_TYPE => {
                    let nonce = c.read_varstr31()?.to_vec();
                    let asset_id = c.read_hash()?;
                    let amount = c.read_varint63()?;
                    Ok(Partial::Issuance {
                        nonce,
                        asset_id,
                        amount,
                    })
                }
                SPEND_INPUT_TYPE => {
                    let (spend, suffix) = c.read_extensible(read_spend_commitment)?;
                    Ok(Partial::Spend(spend, suffix))
                }
                COINBASE_INPUT_TYPE => Ok(Partial::Coinbase(c.read_varstr31()?.to_vec())),
                got => Err(DecodeError::UnknownInputType { got }),
            }
        })?;

        // Witness: what it holds depends on the kind.
        let input = match partial {
            Partial::Issuance {
                nonce,
                asset_id: committed,
                amount,
            } => {
                let (input, witness_suffix) = r.read_extensible(|w| {
                    let asset_definition = w.read_varstr31()?.to_vec();
                    let vm_version = w.read_varint63()?;
                    let issuance_program = w.read_varstr31()?.to_vec();
                    // Bytom checks the asset ID before it reads the arguments.
                    let computed =
                        entries::compute_asset_id(vm_version, &issuance_program, &asset_definition);
                    if computed != committed {
                        return Err(DecodeError::BadAssetId {
                            committed,
                            computed,
                        });
                    }
                    let arguments = w.read_varstr_list()?;
                    Ok(IssuanceInput {
                        nonce,
                        amount,
                        asset_definition,
                        vm_version,
                        issuance_program,
                        arguments,
                        commitment_suffix,
                        witness_suffix: Vec::new(),
                    })
                })?;
                TxInput::Issuance(IssuanceInput {
                    witness_suffix,
                    ..input
                })
            }
            Partial::Spend(fields, spend_commitment_suffix) => {
                let (arguments, witness_suffix) = r.read_extensible(|w| w.read_varstr_list())?;
                TxInput::Spend(SpendInput {
                    source_id: fields.source_id,
                    asset_id: fields.asset_id,
                    amount: fields.amount,
                    source_position: fields.source_position,
                    control_program: fields.control_program,
                    arguments,
                    spend_commitment_suffix,
                    commitment_suffix,
                    witness_suffix,
                })
            }
            Partial::Coinbase(arbitrary) => {
                let witness_suffix = r.read_varstr31()?.to_vec();
                TxInput::Coinbase(CoinbaseInput {
                    arbitrary,
                    commitment_suffix,
                    witness_suffix,
                })
            }
        };
        Ok(input)
    }

    /// Appends the input's encoding.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_varint63(out, self.asset_version())?;
        match self {
            TxInput::Issuance(i) => {
                write_extensible(out, &i.commitment_suffix, |c| {
                    c.push(ISSUANCE_INPUT_TYPE);
                    write_varstr31(c, &i.nonce)?;
                    write_hash(c, &i.asset_id());
                    write_varint63(c, i.amount)
                })?;
                write_extensible(out, &i.witness_suffix, |w| {
                    write_varstr31(w, &i.asset_definition)?;
                    write_varint63(w, i.vm_version)?;
                    write_varstr31(w, &i.issuance_program)?;
                    write_varstr_list(w, &i.arguments)
                })
            }
            TxInput::Spend(s) => {
                write_extensible(out, &s.commitment_suffix, |c| {
                    c.push(SPEND_INPUT_TYPE);
                    write_extensible(c, &s.spend_commitment_suffix, |sc| {
                        write_hash(sc, &s.source_id);
                        write_hash(sc, &s.asset_id);
                        write_varint63(sc, s.amount)?;
                        write_varint63(sc, s.source_position)?;
                        write_varint63(sc, VM_VERSION)?;
                        write_varstr31(sc, &s.control_program)
                    })
                })?;
                write_extensible(out, &s.witness_suffix, |w| {
                    write_varstr_list(w, &s.arguments)
                })
            }
            TxInput::Coinbase(cb) => {
                write_extensible(out, &cb.commitment_suffix, |c| {
                    c.push(COINBASE_INPUT_TYPE);
                    write_varstr31(c, &cb.arbitrary)
                })?;
                write_varstr31(out, &cb.witness_suffix)
            }
            TxInput::Opaque(o) => {
                write_varstr31(out, &o.commitment)?;
                write_varstr31(out, &o.witness)
            }
        }
    }
}

/// What the input commitment said, before the witness is read.
enum Partial {
    Issuance {
        nonce: Vec<u8>,
        asset_id: AssetId,
        amount: u64,
    },
    Spend(SpendFields, Vec<u8>),
    Coinbase(Vec<u8>),
}

struct SpendFields {
    source_id: Hash,
    asset_id: AssetId,
    amount: u64,
    source_position: u64,
    control_program: Vec<u8>,
}

fn read_spend_commitment(r: &mut Reader<'_>) -> Result<SpendFields> {
    let source_id = r.read_hash()?;
    let asset_id = r.read_hash()?;
    let amount = r.read_varint63()?;
    let source_position = r.read_varint63()?;
    let vm_version = r.read_varint63()?;
    if vm_version != VM_VERSION {
        return Err(DecodeError::UnsupportedVmVersion { got: vm_version });
    }
    let control_program = r.read_varstr31()?.to_vec();
    Ok(SpendFields {
        source_id,
        asset_id,
        amount,
        source_position,
        control_program,
    })
}

/// A transaction output.
///
/// The asset, amount and program are meaningful only for asset version 1; for any other
/// version the whole commitment content is kept in `commitment_suffix`, the fields decode as
/// zero/empty and are not written (Bytom maps such an output with a zero asset, amount 0 and
/// VM version 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutput {
    /// Asset version (1 in practice).
    pub asset_version: u64,
    /// The asset sent.
    pub asset_id: AssetId,
    /// The amount sent.
    pub amount: u64,
    /// The control program that locks the output (VM version 1).
    pub control_program: Vec<u8>,
    /// Unparsed commitment content.
    pub commitment_suffix: Vec<u8>,
}

impl TxOutput {
    /// An asset-version-1 output.
    pub fn new(asset_id: AssetId, amount: u64, control_program: Vec<u8>) -> Self {
        TxOutput {
            asset_version: 1,
            asset_id,
            amount,
            control_program,
            commitment_suffix: Vec::new(),
        }
    }

    /// The VM version of the control program as Bytom maps it: 1 for asset version 1, else 0.
    pub fn vm_version(&self) -> u64 {
        if self.asset_version == 1 {
            VM_VERSION
        } else {
            0
        }
    }

    /// Reads one output; the witness is read and discarded.
    ///
    /// # Errors
    /// Truncation and varint errors, [`DecodeError::UnsupportedVmVersion`].
    pub fn read_from(r: &mut Reader<'_>) -> Result<TxOutput> {
        let asset_version = r.read_varint63()?;
        let ((asset_id, amount, control_program), commitment_suffix) = r.read_extensible(|c| {
            if asset_version != 1 {
                return Ok((Hash::ZERO, 0, Vec::new()));
            }
            let asset_id = c.read_hash()?;
            let amount = c.read_varint63()?;
            let vm_version = c.read_varint63()?;
            if vm_version != VM_VERSION {
                return Err(DecodeError::UnsupportedVmVersion { got: vm_version });
            }
            Ok((asset_id, amount, c.read_varstr31()?.to_vec()))
        })?;
        // The output witness carries nothing; Bytom reads and drops it.
        r.read_varstr31()?;
        Ok(TxOutput {
            asset_version,
            asset_id,
            amount,
            control_program,
            commitment_suffix,
        })
    }

    /// Appends the output's encoding (with an empty witness).
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_varint63(out, self.asset_version)?;
        write_extensible(out, &self.commitment_suffix, |c| {
            if self.asset_version == 1 {
                write_hash(c, &self.asset_id);
                write_varint63(c, self.amount)?;
                write_varint63(c, VM_VERSION)?;
                write_varstr31(c, &self.control_program)?;
            }
            Ok(())
        })?;
        write_varstr31(out, &[])
    }
}

/// The serialized content of a transaction (Bytom's `types.TxData`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxData {
    /// Transaction version (1 in a version-1 block).
    pub version: u64,
    /// 0 for none, otherwise the last block height at which the tx may be included.
    pub time_range: u64,
    /// The inputs.
    pub inputs: Vec<TxInput>,
    /// The outputs.
    pub outputs: Vec<TxOutput>,
}

impl TxData {
    /// Reads a transaction from the serflags byte through the last output.
    ///
    /// # Errors
    /// [`DecodeError::BadSerflags`] unless the first byte is 0x07, then any input or output
    /// error.
    pub fn read_from(r: &mut Reader<'_>) -> Result<TxData> {
        let flags = r.read_u8()?;
        if flags != TX_SERFLAGS {
            return Err(DecodeError::BadSerflags {
                got: flags,
                expected: "0x07",
            });
        }
        let version = r.read_varint63()?;
        let time_range = r.read_varint63()?;
        // An input or an output takes at least 3 bytes.
        let inputs = r.read_counted(3, |r, _| TxInput::read_from(r))?;
        let outputs = r.read_counted(3, |r, _| TxOutput::read_from(r))?;
        Ok(TxData {
            version,
            time_range,
            inputs,
            outputs,
        })
    }

    /// Decodes exactly one transaction from `bytes`.
    ///
    /// # Errors
    /// As [`TxData::read_from`], plus [`DecodeError::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<TxData> {
        let mut r = Reader::new(bytes);
        let tx = TxData::read_from(&mut r)?;
        r.finish()?;
        Ok(tx)
    }

    /// Appends the encoding.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(TX_SERFLAGS);
        write_varint63(out, self.version)?;
        write_varint63(out, self.time_range)?;
        write_len(out, self.inputs.len())?;
        for input in &self.inputs {
            input.write_to(out)?;
        }
        write_len(out, self.outputs.len())?;
        for output in &self.outputs {
            output.write_to(out)?;
        }
        Ok(())
    }

    /// The encoding (Bytom's `MarshalText` before hex).
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }
}

/// A decoded transaction: its data, the number of bytes it occupied on the wire, and its
/// entries and IDs (Bytom's `types.Tx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The serialized content.
    pub data: TxData,
    /// Bytes the reader consumed for this transaction (feeds storage gas). It is measured, not
    /// recomputed, so non-minimal varints count as they were sent.
    pub serialized_size: u64,
    /// Entry IDs, input IDs, spent outputs and results.
    pub mapped: MappedTx,
}

impl Transaction {
    /// Builds a transaction from its data; `serialized_size` is the length of its encoding.
    ///
    /// # Errors
    /// [`DecodeError::VarintRange`] if a field cannot be encoded,
    /// [`DecodeError::CoinbaseWithoutOutputs`].
    pub fn new(data: TxData) -> Result<Transaction> {
        let size = data.encode().map_err(|e| match e {
            EncodeError::VarintRange { value, max } => DecodeError::VarintRange { value, max },
        })?;
        let mapped = entries::map_tx(&data)?;
        Ok(Transaction {
            data,
            serialized_size: size.len() as u64,
            mapped,
        })
    }

    /// Reads a transaction and maps it to entries.
    ///
    /// # Errors
    /// As [`TxData::read_from`], plus [`DecodeError::CoinbaseWithoutOutputs`].
    pub fn read_from(r: &mut Reader<'_>) -> Result<Transaction> {
        let start = r.consumed();
        let data = TxData::read_from(r)?;
        let serialized_size = (r.consumed() - start) as u64;
        let mapped = entries::map_tx(&data)?;
        Ok(Transaction {
            data,
            serialized_size,
            mapped,
        })
    }

    /// Decodes exactly one transaction from `bytes`.
    ///
    /// # Errors
    /// As [`Transaction::read_from`], plus [`DecodeError::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Transaction> {
        let mut r = Reader::new(bytes);
        let tx = Transaction::read_from(&mut r)?;
        r.finish()?;
        Ok(tx)
    }

    /// Decodes the hex text form (Bytom's `UnmarshalText`).
    ///
    /// # Errors
    /// [`DecodeError::Hex`], then as [`Transaction::decode`].
    pub fn from_hex(text: &str) -> Result<Transaction> {
        Transaction::decode(&hex::decode(text)?)
    }

    /// The encoding of the data.
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.data.encode()
    }

    /// The hex text form (Bytom's `MarshalText`).
    ///
    /// # Errors
    /// [`EncodeError::VarintRange`] for a value out of range.
    pub fn to_hex(&self) -> Result<String, EncodeError> {
        Ok(hex::encode(&self.encode()?))
    }

    /// The transaction ID.
    pub fn id(&self) -> Hash {
        self.mapped.tx_id
    }

    /// The message signed for input `index` (see [`MappedTx::sighash`]); `None` out of range.
    pub fn sighash(&self, index: usize) -> Option<Hash> {
        self.mapped.sighash(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{write_uvarint, write_varint63};
    use crate::hash::BTM_ASSET_ID;

    /// The genesis coinbase transaction (mainnet, testnet and solonet share it).
    const GENESIS_TX: &str = "07010001014b0249496e666f726d6174696f6e20697320706f7765722e202d2d204a616e2f31312f323031332e20436f6d707574696e6720697320706f7765722e202d2d204170722f32342f323031382e00010141ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff8099dbd492bef7f901011600148c9d063ff74ee6d9ffa88d83aeb038068366c4c400";

    fn genesis_bytes() -> Vec<u8> {
        hex::decode(GENESIS_TX).unwrap()
    }

    #[test]
    fn non_minimal_varint_keeps_the_id_and_counts_the_bytes_read() {
        let minimal = Transaction::decode(&genesis_bytes()).unwrap();
        assert_eq!(minimal.serialized_size, 151);
        // version 1 written as `81 00`
        let mut padded = genesis_bytes();
        padded.splice(1..2, [0x81, 0x00]);
        let tx = Transaction::decode(&padded).unwrap();
        assert_eq!(tx.id(), minimal.id());
        assert_eq!(tx.serialized_size, 152);
        assert_eq!(
            tx.encode().unwrap(),
            genesis_bytes(),
            "re-encoding is minimal"
        );
    }

    #[test]
    fn typed_errors() {
        let mut bad_flags = genesis_bytes();
        bad_flags[0] = 0x06;
        assert_eq!(
            TxData::decode(&bad_flags),
            Err(DecodeError::BadSerflags {
                got: 0x06,
                expected: "0x07"
            })
        );

        let mut trailing = genesis_bytes();
        trailing.push(0);
        assert_eq!(
            Transaction::decode(&trailing),
            Err(DecodeError::TrailingBytes { count: 1 })
        );

        // The coinbase type byte 0x02 sits at offset 6.
        let mut bad_type = genesis_bytes();
        assert_eq!(bad_type[6], COINBASE_INPUT_TYPE);
        bad_type[6] = 0x03;
        assert_eq!(
            TxData::decode(&bad_type),
            Err(DecodeError::UnknownInputType { got: 3 })
        );

        // The output's VM version byte follows the 32-byte asset and the 9-byte amount.
        let mut bad_vm = genesis_bytes();
        let vm_at = bad_vm.len() - 1 - 22 - 1 - 1;
        assert_eq!(bad_vm[vm_at], 0x01);
        bad_vm[vm_at] = 0x02;
        assert_eq!(
            TxData::decode(&bad_vm),
            Err(DecodeError::UnsupportedVmVersion { got: 2 })
        );

        // Drop the output: a coinbase without outputs maps to an error, not a panic.
        let mut no_outputs = genesis_bytes();
        no_outputs.truncate(6 + 0x4b); // flags..commitment length, then the commitment
        no_outputs.push(0x00); // empty witness
        no_outputs.push(0x00); // zero outputs
        assert!(TxData::decode(&no_outputs).is_ok());
        assert_eq!(
            Transaction::decode(&no_outputs),
            Err(DecodeError::CoinbaseWithoutOutputs)
        );

        for cut in 0..genesis_bytes().len() {
            assert!(matches!(
                TxData::decode(&genesis_bytes()[..cut]),
                Err(DecodeError::UnexpectedEof { .. })
            ));
        }
    }

    #[test]
    fn spend_vm_version_must_be_one() {
        let mut content = Vec::new();
        write_hash(&mut content, &Hash::ZERO);
        write_hash(&mut content, &BTM_ASSET_ID);
        write_varint63(&mut content, 5).unwrap();
        write_varint63(&mut content, 0).unwrap();
        write_varint63(&mut content, 2).unwrap(); // vm version 2
        write_varstr31(&mut content, &[0x51]).unwrap();
        let mut commitment = vec![SPEND_INPUT_TYPE];
        write_varstr31(&mut commitment, &content).unwrap();
        let mut tx = vec![TX_SERFLAGS, 1, 0, 1, 1];
        write_varstr31(&mut tx, &commitment).unwrap();
        tx.extend_from_slice(&[1, 0, 0]); // witness: empty argument list; no outputs
        assert_eq!(
            TxData::decode(&tx),
            Err(DecodeError::UnsupportedVmVersion { got: 2 })
        );
    }

    #[test]
    fn opaque_inputs_and_outputs_round_trip_and_map_to_nothing() {
        let mut raw = vec![TX_SERFLAGS, 1, 0, 1];
        write_uvarint(&mut raw, 2); // input asset version 2
        raw.extend_from_slice(&[3, 9, 9, 9, 1, 7]);
        raw.push(1);
        write_uvarint(&mut raw, 5); // output asset version 5
        raw.extend_from_slice(&[2, 1, 2, 0]);
        let tx = Transaction::decode(&raw).unwrap();
        assert_eq!(
            tx.data.inputs[0],
            TxInput::Opaque(OpaqueInput {
                asset_version: 2,
                commitment: vec![9, 9, 9],
                witness: vec![7],
            })
        );
        assert_eq!(tx.data.outputs[0].commitment_suffix, vec![1, 2]);
        assert_eq!(tx.mapped.input_ids, vec![Hash::ZERO]);
        assert!(tx.mapped.spent_output_ids.is_empty());
        assert_eq!(tx.encode().unwrap(), raw);
    }

    #[test]
    fn issuance_asset_id_is_derived_and_checked() {
        let issuance = IssuanceInput {
            nonce: b"nonce".to_vec(),
            amount: 7,
            asset_definition: b"{}".to_vec(),
            vm_version: 1,
            issuance_program: vec![0x51],
            arguments: vec![b"arg".to_vec()],
            ..IssuanceInput::default()
        };
        let data = TxData {
            version: 1,
            time_range: 0,
            inputs: vec![TxInput::Issuance(issuance.clone())],
            outputs: vec![TxOutput::new(issuance.asset_id(), 7, vec![0x51])],
        };
        let raw = data.encode().unwrap();
        assert_eq!(TxData::decode(&raw).unwrap(), data);
        // Flip a byte of the committed asset ID (after type byte, nonce length and nonce).
        // flags, version, time range, input count, asset version, commitment length, type.
        assert_eq!(raw[6], ISSUANCE_INPUT_TYPE);
        let at = 7 + 1 + 5;
        let mut bad = raw.clone();
        bad[at] ^= 1;
        assert!(matches!(
            TxData::decode(&bad),
            Err(DecodeError::BadAssetId { .. })
        ));
    }
}
