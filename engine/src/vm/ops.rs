//! Opcodes and instruction parsing (Bytom `protocol/vm/ops.go`).

use super::VmError;

/// Opcode byte values. Every byte not named here (and not a `DATA_n` / small-int push) is an
/// "expansion" opcode: a 1-gas NOP, or [`VmError::DisallowedOpcode`] when expansion is reserved.
#[allow(missing_docs)]
pub mod op {
    pub const FALSE: u8 = 0x00;
    pub const DATA_1: u8 = 0x01;
    pub const DATA_20: u8 = 0x14;
    pub const DATA_32: u8 = 0x20;
    pub const DATA_75: u8 = 0x4b;
    pub const PUSHDATA1: u8 = 0x4c;
    pub const PUSHDATA2: u8 = 0x4d;
    pub const PUSHDATA4: u8 = 0x4e;
    pub const NEGATE1: u8 = 0x4f;
    pub const TRUE: u8 = 0x51;
    pub const OP_1: u8 = 0x51;
    pub const OP_16: u8 = 0x60;
    pub const NOP: u8 = 0x61;

    pub const JUMP: u8 = 0x63;
    pub const JUMPIF: u8 = 0x64;
    pub const VERIFY: u8 = 0x69;
    pub const FAIL: u8 = 0x6a;
    pub const CHECKPREDICATE: u8 = 0xc0;

    pub const TOALTSTACK: u8 = 0x6b;
    pub const FROMALTSTACK: u8 = 0x6c;
    pub const DROP2: u8 = 0x6d;
    pub const DUP2: u8 = 0x6e;
    pub const DUP3: u8 = 0x6f;
    pub const OVER2: u8 = 0x70;
    pub const ROT2: u8 = 0x71;
    pub const SWAP2: u8 = 0x72;
    pub const IFDUP: u8 = 0x73;
    pub const DEPTH: u8 = 0x74;
    pub const DROP: u8 = 0x75;
    pub const DUP: u8 = 0x76;
    pub const NIP: u8 = 0x77;
    pub const OVER: u8 = 0x78;
    pub const PICK: u8 = 0x79;
    pub const ROLL: u8 = 0x7a;
    pub const ROT: u8 = 0x7b;
    pub const SWAP: u8 = 0x7c;
    pub const TUCK: u8 = 0x7d;

    pub const CAT: u8 = 0x7e;
    pub const SUBSTR: u8 = 0x7f;
    pub const LEFT: u8 = 0x80;
    pub const RIGHT: u8 = 0x81;
    pub const SIZE: u8 = 0x82;
    pub const CATPUSHDATA: u8 = 0x89;

    pub const INVERT: u8 = 0x83;
    pub const AND: u8 = 0x84;
    pub const OR: u8 = 0x85;
    pub const XOR: u8 = 0x86;
    pub const EQUAL: u8 = 0x87;
    pub const EQUALVERIFY: u8 = 0x88;

    pub const ADD1: u8 = 0x8b;
    pub const SUB1: u8 = 0x8c;
    pub const MUL2: u8 = 0x8d;
    pub const DIV2: u8 = 0x8e;
    pub const NEGATE: u8 = 0x8f;
    pub const ABS: u8 = 0x90;
    pub const NOT: u8 = 0x91;
    pub const NOTEQUAL0: u8 = 0x92;
    pub const ADD: u8 = 0x93;
    pub const SUB: u8 = 0x94;
    pub const MUL: u8 = 0x95;
    pub const DIV: u8 = 0x96;
    pub const MOD: u8 = 0x97;
    pub const LSHIFT: u8 = 0x98;
    pub const RSHIFT: u8 = 0x99;
    pub const BOOLAND: u8 = 0x9a;
    pub const BOOLOR: u8 = 0x9b;
    pub const NUMEQUAL: u8 = 0x9c;
    pub const NUMEQUALVERIFY: u8 = 0x9d;
    pub const NUMNOTEQUAL: u8 = 0x9e;
    pub const LESSTHAN: u8 = 0x9f;
    pub const GREATERTHAN: u8 = 0xa0;
    pub const LESSTHANOREQUAL: u8 = 0xa1;
    pub const GREATERTHANOREQUAL: u8 = 0xa2;
    pub const MIN: u8 = 0xa3;
    pub const MAX: u8 = 0xa4;
    pub const WITHIN: u8 = 0xa5;

    pub const SHA256: u8 = 0xa8;
    pub const SHA3: u8 = 0xaa;
    pub const HASH160: u8 = 0xab;
    pub const CHECKSIG: u8 = 0xac;
    pub const CHECKMULTISIG: u8 = 0xad;
    pub const TXSIGHASH: u8 = 0xae;

    pub const CHECKOUTPUT: u8 = 0xc1;
    pub const ASSET: u8 = 0xc2;
    pub const AMOUNT: u8 = 0xc3;
    pub const PROGRAM: u8 = 0xc4;
    pub const INDEX: u8 = 0xc9;
    pub const ENTRYID: u8 = 0xca;
    pub const OUTPUTID: u8 = 0xcb;
    pub const BLOCKHEIGHT: u8 = 0xcd;
}

/// Whether `opcode` has no assigned meaning (Bytom's `isExpansion`).
pub fn is_expansion(opcode: u8) -> bool {
    opcode_name(opcode).is_none()
}

/// Bytom's name for an assigned opcode (`DATA_n` and small ints included), `None` for the
/// expansion opcodes.
pub fn opcode_name(opcode: u8) -> Option<&'static str> {
    const DATA: [&str; 75] = [
        "DATA_1", "DATA_2", "DATA_3", "DATA_4", "DATA_5", "DATA_6", "DATA_7", "DATA_8", "DATA_9",
        "DATA_10", "DATA_11", "DATA_12", "DATA_13", "DATA_14", "DATA_15", "DATA_16", "DATA_17",
        "DATA_18", "DATA_19", "DATA_20", "DATA_21", "DATA_22", "DATA_23", "DATA_24", "DATA_25",
        "DATA_26", "DATA_27", "DATA_28", "DATA_29", "DATA_30", "DATA_31", "DATA_32", "DATA_33",
        "DATA_34", "DATA_35", "DATA_36", "DATA_37", "DATA_38", "DATA_39", "DATA_40", "DATA_41",
        "DATA_42", "DATA_43", "DATA_44", "DATA_45", "DATA_46", "DATA_47", "DATA_48", "DATA_49",
        "DATA_50", "DATA_51", "DATA_52", "DATA_53", "DATA_54", "DATA_55", "DATA_56", "DATA_57",
        "DATA_58", "DATA_59", "DATA_60", "DATA_61", "DATA_62", "DATA_63", "DATA_64", "DATA_65",
        "DATA_66", "DATA_67", "DATA_68", "DATA_69", "DATA_70", "DATA_71", "DATA_72", "DATA_73",
        "DATA_74", "DATA_75",
    ];
    const SMALL: [&str; 16] = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    ];
    use op::*;
    Some(match opcode {
        FALSE => "FALSE",
        DATA_1..=DATA_75 => DATA[usize::from(opcode - DATA_1)],
        OP_1..=OP_16 => SMALL[usize::from(opcode - OP_1)],
        PUSHDATA1 => "PUSHDATA1",
        PUSHDATA2 => "PUSHDATA2",
        PUSHDATA4 => "PUSHDATA4",
        NEGATE1 => "1NEGATE",
        NOP => "NOP",
        JUMP => "JUMP",
        JUMPIF => "JUMPIF",
        VERIFY => "VERIFY",
        FAIL => "FAIL",
        CHECKPREDICATE => "CHECKPREDICATE",
        TOALTSTACK => "TOALTSTACK",
        FROMALTSTACK => "FROMALTSTACK",
        DROP2 => "2DROP",
        DUP2 => "2DUP",
        DUP3 => "3DUP",
        OVER2 => "2OVER",
        ROT2 => "2ROT",
        SWAP2 => "2SWAP",
        IFDUP => "IFDUP",
        DEPTH => "DEPTH",
        DROP => "DROP",
        DUP => "DUP",
        NIP => "NIP",
        OVER => "OVER",
        PICK => "PICK",
        ROLL => "ROLL",
        ROT => "ROT",
        SWAP => "SWAP",
        TUCK => "TUCK",
        CAT => "CAT",
        SUBSTR => "SUBSTR",
        LEFT => "LEFT",
        RIGHT => "RIGHT",
        SIZE => "SIZE",
        CATPUSHDATA => "CATPUSHDATA",
        INVERT => "INVERT",
        AND => "AND",
        OR => "OR",
        XOR => "XOR",
        EQUAL => "EQUAL",
        EQUALVERIFY => "EQUALVERIFY",
        ADD1 => "1ADD",
        SUB1 => "1SUB",
        MUL2 => "2MUL",
        DIV2 => "2DIV",
        NEGATE => "NEGATE",
        ABS => "ABS",
        NOT => "NOT",
        NOTEQUAL0 => "0NOTEQUAL",
        ADD => "ADD",
        SUB => "SUB",
        MUL => "MUL",
        DIV => "DIV",
        MOD => "MOD",
        LSHIFT => "LSHIFT",
        RSHIFT => "RSHIFT",
        BOOLAND => "BOOLAND",
        BOOLOR => "BOOLOR",
        NUMEQUAL => "NUMEQUAL",
        NUMEQUALVERIFY => "NUMEQUALVERIFY",
        NUMNOTEQUAL => "NUMNOTEQUAL",
        LESSTHAN => "LESSTHAN",
        GREATERTHAN => "GREATERTHAN",
        LESSTHANOREQUAL => "LESSTHANOREQUAL",
        GREATERTHANOREQUAL => "GREATERTHANOREQUAL",
        MIN => "MIN",
        MAX => "MAX",
        WITHIN => "WITHIN",
        SHA256 => "SHA256",
        SHA3 => "SHA3",
        HASH160 => "HASH160",
        CHECKSIG => "CHECKSIG",
        CHECKMULTISIG => "CHECKMULTISIG",
        TXSIGHASH => "TXSIGHASH",
        CHECKOUTPUT => "CHECKOUTPUT",
        ASSET => "ASSET",
        AMOUNT => "AMOUNT",
        PROGRAM => "PROGRAM",
        INDEX => "INDEX",
        ENTRYID => "ENTRYID",
        OUTPUTID => "OUTPUTID",
        BLOCKHEIGHT => "BLOCKHEIGHT",
        _ => return None,
    })
}

/// One parsed instruction: the opcode, its encoded length and its immediate data (the pushed
/// bytes, the small integer for `1..16`, or the 4-byte target of `JUMP`/`JUMPIF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction<'a> {
    /// The opcode byte.
    pub op: u8,
    /// Bytes the instruction occupies in the program, opcode included.
    pub len: u32,
    /// Immediate data; empty for ops without any.
    pub data: &'a [u8],
}

impl Instruction<'_> {
    /// Whether the instruction only pushes data (`FALSE`, `DATA_n`, `PUSHDATA*`, `1..16`), as
    /// Bytom's `IsPushdata`. Note `1NEGATE` does not count.
    pub fn is_pushdata(&self) -> bool {
        self.op <= op::PUSHDATA4 || (op::OP_1..=op::OP_16).contains(&self.op)
    }
}

/// Data of the small-integer ops `1..16`, indexed by `opcode - OP_1`.
const SMALL_INTS: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

/// Parses the instruction at `pc` (Bytom `ParseOp`). Offsets are `u32` as in Bytom.
///
/// # Errors
/// [`VmError::ShortProgram`] when `pc` is past the end or the immediate data is truncated,
/// [`VmError::Overflow`] when a `PUSHDATA4` length overflows 32 bits, and
/// [`VmError::LongProgram`] for programs longer than `i32::MAX` bytes.
pub fn parse_op(prog: &[u8], pc: u32) -> Result<Instruction<'_>, VmError> {
    if prog.len() > i32::MAX as usize {
        return Err(VmError::LongProgram);
    }
    // Fits: checked just above.
    let l = prog.len() as u32;
    if pc >= l {
        return Err(VmError::ShortProgram);
    }
    let opcode = prog[pc as usize];
    let slice = |start: u32, len: u32| -> Result<Instruction<'_>, VmError> {
        let end = pc.checked_add(len).ok_or(VmError::Overflow)?;
        if end > l {
            return Err(VmError::ShortProgram);
        }
        Ok(Instruction {
            op: opcode,
            len,
            data: &prog[start as usize..end as usize],
        })
    };
    match opcode {
        op::OP_1..=op::OP_16 => {
            let i = usize::from(opcode - op::OP_1);
            Ok(Instruction {
                op: opcode,
                len: 1,
                data: &SMALL_INTS[i..=i],
            })
        }
        op::DATA_1..=op::DATA_75 => slice(pc + 1, 1 + u32::from(opcode)),
        op::PUSHDATA1 => {
            if pc == l - 1 {
                return Err(VmError::ShortProgram);
            }
            let n = u32::from(prog[pc as usize + 1]);
            slice(pc + 2, 2 + n)
        }
        op::PUSHDATA2 => {
            if l < 3 || pc > l - 3 {
                return Err(VmError::ShortProgram);
            }
            let p = pc as usize;
            let n = u32::from(u16::from_le_bytes([prog[p + 1], prog[p + 2]]));
            slice(pc + 3, 3 + n)
        }
        op::PUSHDATA4 => {
            if l < 5 || pc > l - 5 {
                return Err(VmError::ShortProgram);
            }
            let p = pc as usize;
            let n = u32::from_le_bytes([prog[p + 1], prog[p + 2], prog[p + 3], prog[p + 4]]);
            let len = n.checked_add(5).ok_or(VmError::Overflow)?;
            slice(pc + 5, len)
        }
        op::JUMP | op::JUMPIF => slice(pc + 1, 5),
        _ => Ok(Instruction {
            op: opcode,
            len: 1,
            data: &[],
        }),
    }
}

/// Parses a whole program into instructions (Bytom `ParseProgram`).
///
/// # Errors
/// The first error [`parse_op`] reports.
pub fn parse_program(prog: &[u8]) -> Result<Vec<Instruction<'_>>, VmError> {
    let mut out = Vec::new();
    let mut pc: u32 = 0;
    while (pc as usize) < prog.len() {
        let inst = parse_op(prog, pc)?;
        pc = pc.checked_add(inst.len).ok_or(VmError::Overflow)?;
        out.push(inst);
    }
    Ok(out)
}
