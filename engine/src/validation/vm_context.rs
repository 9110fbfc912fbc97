//! The VM's view of a transaction entry (Bytom's `NewTxVMContext` and `entryContext`): what
//! `TXSIGHASH`, `ENTRYID`, `OUTPUTID`, `ASSET`, `AMOUNT`, `INDEX`, `BLOCKHEIGHT` and
//! `CHECKOUTPUT` read while a spend's control program or an issuance program runs.

use crate::ed25519;
use crate::entries::{sighash, EntryType, InputEntry};
use crate::hash::{AssetId, Hash};
use crate::tx::{Transaction, TxOutput};
use crate::vm::{Result as VmResult, SignatureVerifier, VmContext, VmError};

/// The production [`SignatureVerifier`]: [`ed25519::verify`] with Bytom's acceptance rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519Verifier;

impl SignatureVerifier for Ed25519Verifier {
    fn verify(&self, pubkey: &[u8; 32], message: &[u8; 32], signature: &[u8]) -> bool {
        ed25519::verify(pubkey, message, signature)
    }
}

/// The context of one spend or issuance entry of a transaction being validated.
///
/// The entry's destination is always the transaction's mux, whose destinations are the
/// transaction's results in output order, so `CHECKOUTPUT index` looks at output `index`.
#[derive(Debug, Clone, Copy)]
pub struct TxVmContext<'a> {
    tx: &'a Transaction,
    block_height: u64,
    entry_id: Hash,
    asset_id: AssetId,
    amount: u64,
    dest_pos: u64,
    spent_output_id: Option<Hash>,
}

impl<'a> TxVmContext<'a> {
    /// The context of `entry` (a spend or issuance of `tx`) whose destination is mux source
    /// `dest_pos`, in a block at `block_height`. `None` for a coinbase or opaque input, which
    /// run no program.
    pub fn new(
        tx: &'a Transaction,
        entry: &InputEntry,
        dest_pos: u64,
        block_height: u64,
    ) -> Option<Self> {
        let (entry_id, asset_id, amount, spent_output_id) = match *entry {
            InputEntry::Spend {
                spend_id,
                spent_output_id,
                asset_id,
                amount,
            } => (spend_id, asset_id, amount, Some(spent_output_id)),
            InputEntry::Issuance {
                issuance_id,
                asset_id,
                amount,
            } => (issuance_id, asset_id, amount, None),
            InputEntry::Coinbase { .. } | InputEntry::None => return None,
        };
        Some(TxVmContext {
            tx,
            block_height,
            entry_id,
            asset_id,
            amount,
            dest_pos,
            spent_output_id,
        })
    }

    /// The kind of the entry: [`EntryType::Spend`] or [`EntryType::Issuance`].
    pub fn kind(&self) -> EntryType {
        if self.spent_output_id.is_some() {
            EntryType::Spend
        } else {
            EntryType::Issuance
        }
    }
}

/// `(vm_version, program, asset, amount)` of an output as Bytom maps it.
fn mapped_output(out: &TxOutput) -> (u64, &[u8], AssetId, u64) {
    if out.asset_version == 1 {
        (
            out.vm_version(),
            &out.control_program,
            out.asset_id,
            out.amount,
        )
    } else {
        (0, &[], Hash::ZERO, 0)
    }
}

impl VmContext for TxVmContext<'_> {
    fn tx_version(&self) -> Option<u64> {
        Some(self.tx.data.version)
    }

    fn block_height(&self) -> Option<u64> {
        Some(self.block_height)
    }

    fn tx_sighash(&self) -> Option<Hash> {
        Some(sighash(&self.entry_id, &self.tx.mapped.tx_id))
    }

    fn entry_id(&self) -> Option<Hash> {
        Some(self.entry_id)
    }

    fn spent_output_id(&self) -> Option<Hash> {
        self.spent_output_id
    }

    fn asset_id(&self) -> Option<AssetId> {
        Some(self.asset_id)
    }

    fn amount(&self) -> Option<u64> {
        Some(self.amount)
    }

    fn dest_pos(&self) -> Option<u64> {
        Some(self.dest_pos)
    }

    fn check_output(
        &self,
        index: u64,
        amount: u64,
        asset_id: &[u8],
        vm_version: u64,
        code: &[u8],
        expansion: bool,
    ) -> VmResult<bool> {
        let results = &self.tx.mapped.results;
        let i = usize::try_from(index).map_err(|_| VmError::BadValue)?;
        let (Some(result), Some(out)) = (results.get(i), self.tx.data.outputs.get(i)) else {
            return Err(VmError::BadValue);
        };
        let (out_vm, out_code, out_asset, out_amount) = mapped_output(out);
        let (prog_vm, prog_code): (u64, &[u8]) = match result.kind {
            EntryType::Output => (out_vm, out_code),
            // A retirement's program is the empty version-0 program; with expansion Bytom
            // lets any code match.
            EntryType::Retirement => (0, if expansion { code } else { &[] }),
            _ => return Err(VmError::Context),
        };
        Ok(prog_vm == vm_version
            && prog_code == code
            && out_asset.0.as_slice() == asset_id
            && out_amount == amount)
    }
}
