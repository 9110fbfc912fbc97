//! The Bytom 1.x virtual machine (`protocol/vm` at v1.1.1): a gas-metered stack machine that
//! runs control and issuance programs against their witness arguments.
//!
//! * [`verify`] is what validation calls: it converts the standard P2WPKH/P2WSH forms into the
//!   programs they stand for (as Bytom's `NewTxVMContext` does) and runs the result.
//! * [`verify_raw`] runs a program as given (Bytom's `vm.Verify`).
//! * The transaction facts that opcodes read come from a [`VmContext`]; signatures are checked
//!   through a [`SignatureVerifier`], so the ed25519 rules live in one place elsewhere.
//!
//! Known divergence from Go: `CAT`/`CATPUSHDATA` in Go use `append`, which can write into the
//! spare capacity of a slice shared with other stack items; this VM gives every item its own
//! bytes, i.e. the "intended" semantics. Reproducing Go needs slice capacities modelled
//! (including Go's allocation size classes); not done yet.

mod builder;
mod machine;
mod ops;

pub use builder::{
    is_p2wpkh_script, is_p2wsh_script, is_straightforward, multisig_program,
    multisig_program_with_height, p2pkh_sig_program, p2sh_program, p2wpkh_program, p2wsh_program,
    push_data_bytes, push_int64, witness_program, Builder,
};
pub use ops::{is_expansion, op, opcode_name, parse_op, parse_program, Instruction};

use crate::hash::{AssetId, Hash};

/// A VM error; one variant per error Bytom's VM can return. Messages are Bytom's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    /// `FROMALTSTACK` on an empty alt stack.
    #[error("alt stack underflow")]
    AltStackUnderflow,
    /// A malformed operand: an integer longer than 8 bytes, a negative count, a message that is
    /// not 32 bytes, an out-of-range substring, ...
    #[error("bad value")]
    BadValue,
    /// An opcode needed a context field that this context does not have.
    #[error("wrong context")]
    Context,
    /// An op needed more items than the data stack holds.
    #[error("data stack underflow")]
    DataStackUnderflow,
    /// An unassigned opcode while expansion is reserved (transaction version 1).
    #[error("disallowed opcode {opcode:#04x}")]
    DisallowedOpcode {
        /// The opcode byte.
        opcode: u8,
    },
    /// `DIV` or `MOD` by zero.
    #[error("division by zero")]
    DivZero,
    /// The program finished with an empty stack or a false top item.
    #[error("false VM result")]
    FalseVmResult,
    /// The program is longer than `i32::MAX` bytes.
    ///
    /// Not reachable from wire data: programs are varstr31 (at most `i32::MAX` bytes), and a
    /// `CHECKPREDICATE` program built on the stack is bounded far lower by the gas limit.
    #[error("program size exceeds maxint32")]
    LongProgram,
    /// Integer overflow in a numeric op.
    #[error("range error")]
    Range,
    /// `FAIL` executed.
    #[error("RETURN executed")]
    Return,
    /// The gas ("run limit") ran out.
    #[error("run limit exceeded")]
    RunLimitExceeded,
    /// Truncated immediate data, or parsing past the end of the program.
    #[error("unexpected end of program")]
    ShortProgram,
    /// An unknown token (Bytom's assembler; kept for parity).
    ///
    /// Never returned: this crate has no assembler, and nothing in consensus assembles text.
    #[error("unrecognized token")]
    Token,
    /// An internal error (Bytom's recovered panic; kept for parity, never returned here).
    ///
    /// Only guards that cannot fire return it: an empty frame stack, or an opcode that reaches
    /// the general dispatcher although pushes, expansions and `CHECKPREDICATE` are handled
    /// before it.
    #[error("unexpected error")]
    Unexpected,
    /// The program's VM version is not 1.
    #[error("unsupported VM version {version}")]
    UnsupportedVm {
        /// The version found.
        version: u64,
    },
    /// `VERIFY`, `EQUALVERIFY` or `NUMEQUALVERIFY` on a false value.
    #[error("VERIFY failed")]
    VerifyFailed,
    /// A `PUSHDATA4` length or a program offset overflowed 32 bits (Go's `checked.ErrOverflow`,
    /// returned by its `ParseOp`).
    #[error("arithmetic overflow: data length exceeds max program size")]
    Overflow,
}

/// An error building a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A jump whose target was never set.
    #[error("unresolved jump target {target}")]
    UnresolvedJump {
        /// The target number.
        target: usize,
    },
    /// A multisig quorum that is too big, or empty with a non-empty key list.
    #[error("bad multisig program format: {required} of {keys} keys")]
    BadMultisig {
        /// Signatures required (M).
        required: usize,
        /// Public keys (N).
        keys: usize,
    },
    /// A lock height that does not fit an `i64`.
    #[error("bad block height {height}")]
    BadHeight {
        /// The height given.
        height: u64,
    },
}

/// Result alias for the VM.
pub type Result<T, E = VmError> = std::result::Result<T, E>;

/// A program to run: VM version and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program<'a> {
    /// Must be 1 for the program to run.
    pub vm_version: u64,
    /// The bytecode.
    pub code: &'a [u8],
}

/// What the VM can learn about the transaction entry being verified (Bytom's `vm.Context`).
///
/// Every method has a default that reports the field as absent; an opcode that needs an absent
/// field fails with [`VmError::Context`].
pub trait VmContext {
    /// The transaction version; `Some(1)` reserves the expansion opcodes.
    fn tx_version(&self) -> Option<u64> {
        None
    }
    /// Height of the block being validated (`BLOCKHEIGHT`).
    fn block_height(&self) -> Option<u64> {
        None
    }
    /// The signature hash of the entry being verified (`TXSIGHASH`).
    fn tx_sighash(&self) -> Option<Hash> {
        None
    }
    /// The ID of the entry being verified (`ENTRYID`); absent pushes an empty string, as Go's
    /// nil slice does.
    fn entry_id(&self) -> Option<Hash> {
        None
    }
    /// The output ID a spend consumes (`OUTPUTID`).
    fn spent_output_id(&self) -> Option<Hash> {
        None
    }
    /// The asset of the current entry (`ASSET`).
    fn asset_id(&self) -> Option<AssetId> {
        None
    }
    /// The amount of the current entry (`AMOUNT`).
    fn amount(&self) -> Option<u64> {
        None
    }
    /// The destination position of the current entry (`INDEX`).
    fn dest_pos(&self) -> Option<u64> {
        None
    }
    /// `CHECKOUTPUT`: whether destination `index` pays `amount` of `asset_id` to the program
    /// (`vm_version`, `code`). `expansion` is the calling VM's expansion-reserved flag.
    ///
    /// # Errors
    /// [`VmError::BadValue`] for an index out of range, [`VmError::Context`] when the entry has
    /// no such check (the default).
    fn check_output(
        &self,
        index: u64,
        amount: u64,
        asset_id: &[u8],
        vm_version: u64,
        code: &[u8],
        expansion: bool,
    ) -> Result<bool> {
        let _ = (index, amount, asset_id, vm_version, code, expansion);
        Err(VmError::Context)
    }
}

/// A context with every field absent; enough for programs that read nothing from the
/// transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyContext;

impl VmContext for EmptyContext {}

/// Signature verification for `CHECKSIG` and `CHECKMULTISIG` (ed25519 with Bytom's acceptance
/// rules in production).
pub trait SignatureVerifier {
    /// Whether `signature` is valid for `message` under `pubkey`. Must not panic on any input.
    fn verify(&self, pubkey: &[u8; 32], message: &[u8; 32], signature: &[u8]) -> bool;
}

/// Runs `program` with `arguments` as the initial data stack (first argument at the bottom),
/// after the standard-program conversion of [`witness_program`]: what Bytom's validation does
/// for every spend and issuance. `PROGRAM` pushes the converted code.
///
/// Returns the gas left.
///
/// # Errors
/// Any [`VmError`]; [`VmError::FalseVmResult`] when the program ends with an empty stack or a
/// false top item.
pub fn verify(
    context: &dyn VmContext,
    verifier: &dyn SignatureVerifier,
    program: &Program<'_>,
    arguments: &[Vec<u8>],
    gas_limit: i64,
) -> Result<i64> {
    let code = witness_program(program.code);
    let converted = Program {
        vm_version: program.vm_version,
        code: &code,
    };
    verify_raw(context, verifier, &converted, arguments, gas_limit)
}

/// Runs `program` exactly as given (Bytom's `vm.Verify`): no standard-program conversion.
///
/// Returns the gas left.
///
/// # Errors
/// As [`verify`].
pub fn verify_raw(
    context: &dyn VmContext,
    verifier: &dyn SignatureVerifier,
    program: &Program<'_>,
    arguments: &[Vec<u8>],
    gas_limit: i64,
) -> Result<i64> {
    let mut run = machine::Run::new(context, verifier, program.code, gas_limit);
    let outcome = run.verify(program.vm_version, arguments);
    outcome.result.map(|()| outcome.gas_left)
}

/// The full outcome of a run: the result, the gas left (also on failure, as Bytom's `Verify`
/// reports it) and the final data stack. Mostly for tests and tooling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Ok(())` when the program succeeded with a true top item.
    pub result: Result<()>,
    /// Gas left when the run stopped.
    pub gas_left: i64,
    /// The data stack when the run stopped (bottom first).
    pub data_stack: Vec<Vec<u8>>,
    /// The alt stack when the run stopped (bottom first).
    pub alt_stack: Vec<Vec<u8>>,
}

/// Like [`verify_raw`] but returns the whole [`Outcome`].
pub fn run_raw(
    context: &dyn VmContext,
    verifier: &dyn SignatureVerifier,
    program: &Program<'_>,
    arguments: &[Vec<u8>],
    gas_limit: i64,
) -> Outcome {
    let mut run = machine::Run::new(context, verifier, program.code, gas_limit);
    run.verify(program.vm_version, arguments)
}

/// Whether `bytes` is a true value: any non-zero byte.
pub fn as_bool(bytes: &[u8]) -> bool {
    bytes.iter().any(|&b| b != 0)
}

/// The VM encoding of a bool: `01` or the empty string.
pub fn bool_bytes(b: bool) -> Vec<u8> {
    if b {
        vec![1]
    } else {
        Vec::new()
    }
}

/// The VM encoding of an integer: 8 little-endian two's-complement bytes with trailing zero
/// bytes stripped (0 is the empty string, -1 is `ff` × 8).
pub fn int64_bytes(n: i64) -> Vec<u8> {
    let bytes = n.to_le_bytes();
    let len = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..len].to_vec()
}

/// Decodes a VM integer: up to 8 little-endian bytes, zero-padded (so `ff` is 255, not -1).
///
/// # Errors
/// [`VmError::BadValue`] for more than 8 bytes.
pub fn as_int64(bytes: &[u8]) -> Result<i64> {
    if bytes.len() > 8 {
        return Err(VmError::BadValue);
    }
    let mut padded = [0u8; 8];
    padded[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(padded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_round_trip() {
        for n in [0, 1, -1, 255, 256, i64::MAX, i64::MIN, 0x0100_0000, -256] {
            assert_eq!(as_int64(&int64_bytes(n)), Ok(n), "{n}");
        }
        assert_eq!(int64_bytes(0), Vec::<u8>::new());
        assert_eq!(int64_bytes(-1), vec![0xff; 8]);
        assert_eq!(int64_bytes(0x100), vec![0, 1]);
        assert_eq!(as_int64(&[0xff]), Ok(255));
        assert_eq!(as_int64(&[0; 9]), Err(VmError::BadValue));
        assert_eq!(as_int64(&[1, 0, 0]), Ok(1));
    }

    #[test]
    fn bools() {
        assert!(!as_bool(&[]));
        assert!(!as_bool(&[0, 0]));
        assert!(as_bool(&[0, 0x80]));
        assert_eq!(bool_bytes(true), vec![1]);
        assert!(bool_bytes(false).is_empty());
    }
}
