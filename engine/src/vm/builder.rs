//! Program assembly and the standard programs (Bytom `vm/pushdata.go`, `vmutil`,
//! `consensus/segwit`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::ops::{op, parse_program};
use super::{int64_bytes, BuildError};

/// The shortest push of `data`: `FALSE` for empty, `DATA_n` up to 75 bytes, then
/// `PUSHDATA1/2/4` with a little-endian length (Bytom `PushdataBytes`).
pub fn push_data_bytes(data: &[u8]) -> Vec<u8> {
    let l = data.len();
    let mut out = Vec::with_capacity(l + 5);
    if l == 0 {
        out.push(op::FALSE);
        return out;
    }
    if l <= 75 {
        // Fits: l <= 75.
        out.push(op::DATA_1 + (l as u8) - 1);
    } else if l < 1 << 8 {
        out.push(op::PUSHDATA1);
        out.push(l as u8);
    } else if l < 1 << 16 {
        out.push(op::PUSHDATA2);
        out.extend_from_slice(&(l as u16).to_le_bytes());
    } else {
        // Bytom truncates lengths above u32::MAX the same way.
        out.push(op::PUSHDATA4);
        out.extend_from_slice(&(l as u32).to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// The shortest push of `n`: `FALSE`, `1..16`, or a data push of its VM encoding
/// (Bytom `PushdataInt64`; -1 is pushed as 8 bytes, not as `1NEGATE`).
pub fn push_int64(n: i64) -> Vec<u8> {
    match n {
        0 => vec![op::FALSE],
        // Fits: 1 <= n <= 16.
        1..=16 => vec![op::OP_1 + (n as u8) - 1],
        _ => push_data_bytes(&int64_bytes(n)),
    }
}

/// Builds a program from ops, pushes and jumps (Bytom `vmutil.Builder`).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    program: Vec<u8>,
    jump_counter: usize,
    jump_addr: BTreeMap<usize, u32>,
    jump_placeholders: BTreeMap<usize, Vec<usize>>,
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the shortest push of `n`.
    pub fn add_int64(&mut self, n: i64) -> &mut Self {
        self.program.extend_from_slice(&push_int64(n));
        self
    }

    /// Appends the shortest push of `data`.
    pub fn add_data(&mut self, data: &[u8]) -> &mut Self {
        self.program.extend_from_slice(&push_data_bytes(data));
        self
    }

    /// Appends raw bytes (no push opcode).
    pub fn add_raw_bytes(&mut self, data: &[u8]) -> &mut Self {
        self.program.extend_from_slice(data);
        self
    }

    /// Appends one opcode.
    pub fn add_op(&mut self, opcode: u8) -> &mut Self {
        self.program.push(opcode);
        self
    }

    /// Allocates a jump target number for [`Self::add_jump`] / [`Self::add_jump_if`].
    pub fn new_jump_target(&mut self) -> usize {
        self.jump_counter += 1;
        self.jump_counter
    }

    /// Appends `JUMP` to `target` (resolved by [`Self::build`]).
    pub fn add_jump(&mut self, target: usize) -> &mut Self {
        self.add_jump_op(op::JUMP, target)
    }

    /// Appends `JUMPIF` to `target` (resolved by [`Self::build`]).
    pub fn add_jump_if(&mut self, target: usize) -> &mut Self {
        self.add_jump_op(op::JUMPIF, target)
    }

    fn add_jump_op(&mut self, opcode: u8, target: usize) -> &mut Self {
        self.program.push(opcode);
        self.jump_placeholders
            .entry(target)
            .or_default()
            .push(self.program.len());
        self.program.extend_from_slice(&[0; 4]);
        self
    }

    /// Sets `target` to the current end of the program.
    pub fn set_jump_target(&mut self, target: usize) -> &mut Self {
        self.jump_addr.insert(target, self.program.len() as u32);
        self
    }

    /// The program with every jump address filled in.
    ///
    /// # Errors
    /// [`BuildError::UnresolvedJump`] for a jump whose target was never set.
    pub fn build(&self) -> Result<Vec<u8>, BuildError> {
        let mut program = self.program.clone();
        for (target, places) in &self.jump_placeholders {
            let addr = self
                .jump_addr
                .get(target)
                .ok_or(BuildError::UnresolvedJump { target: *target })?;
            for &at in places {
                program[at..at + 4].copy_from_slice(&addr.to_le_bytes());
            }
        }
        Ok(program)
    }
}

/// `00 14 <hash>`: the P2WPKH control program for a 20-byte RIPEMD-160 of a public key.
pub fn p2wpkh_program(pubkey_hash: &[u8; 20]) -> Vec<u8> {
    let mut p = vec![op::FALSE];
    p.extend_from_slice(&push_data_bytes(pubkey_hash));
    p
}

/// `00 20 <hash>`: the P2WSH control program for a 32-byte SHA3-256 of a witness script.
pub fn p2wsh_program(script_hash: &[u8; 32]) -> Vec<u8> {
    let mut p = vec![op::FALSE];
    p.extend_from_slice(&push_data_bytes(script_hash));
    p
}

/// `DUP HASH160 <hash> EQUALVERIFY TXSIGHASH SWAP CHECKSIG`: what a P2WPKH program runs.
pub fn p2pkh_sig_program(pubkey_hash: &[u8]) -> Vec<u8> {
    let mut b = Builder::new();
    b.add_op(op::DUP)
        .add_op(op::HASH160)
        .add_data(pubkey_hash)
        .add_op(op::EQUALVERIFY)
        .add_op(op::TXSIGHASH)
        .add_op(op::SWAP)
        .add_op(op::CHECKSIG);
    b.program
}

/// `DUP SHA3 <hash> EQUALVERIFY -1 SWAP 0 CHECKPREDICATE`: what a P2WSH program runs.
pub fn p2sh_program(script_hash: &[u8]) -> Vec<u8> {
    let mut b = Builder::new();
    b.add_op(op::DUP)
        .add_op(op::SHA3)
        .add_data(script_hash)
        .add_op(op::EQUALVERIFY)
        .add_int64(-1)
        .add_op(op::SWAP)
        .add_int64(0)
        .add_op(op::CHECKPREDICATE);
    b.program
}

fn check_multisig_params(nrequired: usize, npubkeys: usize) -> Result<(), BuildError> {
    if nrequired > npubkeys || (nrequired == 0 && npubkeys > 0) {
        return Err(BuildError::BadMultisig {
            required: nrequired,
            keys: npubkeys,
        });
    }
    Ok(())
}

/// `TXSIGHASH <pk_1>…<pk_N> <M> <N> CHECKMULTISIG`: the M-of-N witness script.
///
/// # Errors
/// [`BuildError::BadMultisig`] when `M > N`, or `M == 0` with keys.
pub fn multisig_program(pubkeys: &[[u8; 32]], nrequired: usize) -> Result<Vec<u8>, BuildError> {
    multisig_program_with_height(pubkeys, nrequired, 0)
}

/// [`multisig_program`] preceded by `<height> BLOCKHEIGHT GREATERTHAN VERIFY` when
/// `block_height > 0` (spendable only below that height, as Bytom's
/// `P2SPMultiSigProgramWithHeight`).
///
/// # Errors
/// As [`multisig_program`].
pub fn multisig_program_with_height(
    pubkeys: &[[u8; 32]],
    nrequired: usize,
    block_height: u64,
) -> Result<Vec<u8>, BuildError> {
    check_multisig_params(nrequired, pubkeys.len())?;
    let mut b = Builder::new();
    if block_height > 0 {
        let h = i64::try_from(block_height).map_err(|_| BuildError::BadHeight {
            height: block_height,
        })?;
        b.add_int64(h)
            .add_op(op::BLOCKHEIGHT)
            .add_op(op::GREATERTHAN)
            .add_op(op::VERIFY);
    }
    b.add_op(op::TXSIGHASH);
    for pk in pubkeys {
        b.add_data(pk);
    }
    // Counts are bounded by memory, far below i64::MAX.
    b.add_int64(nrequired as i64)
        .add_int64(pubkeys.len() as i64)
        .add_op(op::CHECKMULTISIG);
    b.build()
}

/// Two instructions: a version (any opcode up to `16`) and a push of exactly `len` bytes
/// with `DATA_len`.
fn witness_parts(prog: &[u8], data_op: u8) -> Option<(u8, &[u8])> {
    let insts = parse_program(prog).ok()?;
    match insts.as_slice() {
        [version, push] if version.op <= op::OP_16 && push.op == data_op => {
            Some((version.op, push.data))
        }
        _ => None,
    }
}

/// Whether `prog` has the P2WPKH shape: `<version ≤ 16> DATA_20 <20 bytes>`.
pub fn is_p2wpkh_script(prog: &[u8]) -> bool {
    witness_parts(prog, op::DATA_20).is_some()
}

/// Whether `prog` has the P2WSH shape: `<version ≤ 16> DATA_32 <32 bytes>`.
pub fn is_p2wsh_script(prog: &[u8]) -> bool {
    witness_parts(prog, op::DATA_32).is_some()
}

/// Whether `prog` is the single instruction `TRUE` or `FAIL`.
pub fn is_straightforward(prog: &[u8]) -> bool {
    matches!(parse_program(prog).as_deref(), Ok([inst]) if inst.op == op::TRUE || inst.op == op::FAIL)
}

/// The program the VM actually runs for a control program (Bytom `witnessProgram`): version-0
/// P2WPKH and P2WSH become [`p2pkh_sig_program`] and [`p2sh_program`]; everything else
/// (other versions included) runs as is.
pub fn witness_program(prog: &[u8]) -> Cow<'_, [u8]> {
    if let Some((version, hash)) = witness_parts(prog, op::DATA_20) {
        if version == op::FALSE {
            return Cow::Owned(p2pkh_sig_program(hash));
        }
    } else if let Some((version, hash)) = witness_parts(prog, op::DATA_32) {
        if version == op::FALSE {
            return Cow::Owned(p2sh_program(hash));
        }
    }
    Cow::Borrowed(prog)
}
