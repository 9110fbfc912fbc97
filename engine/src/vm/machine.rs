//! The interpreter: frames, gas accounting and every opcode.
//!
//! `CHECKPREDICATE` runs its child program on an explicit frame stack instead of recursing, so
//! nesting depth is bounded by gas alone and never by the native stack.
//!
//! Gas rules (Bytom `vm.go`): each op pays its base cost up front; a push costs `8 + len` and a
//! pop refunds `8 + len`, either at once or "deferred", i.e. summed and applied after the op
//! succeeds. Running out sets the remaining gas to 0 and fails with `RunLimitExceeded`. The
//! arithmetic wraps like Go's `int64`, which the conservation of gas keeps from happening.

use std::borrow::Cow;

use sha2::Digest as _;

use super::ops::{is_expansion, op, parse_op};
use super::{
    as_bool, as_int64, bool_bytes, int64_bytes, push_data_bytes, Outcome, Result,
    SignatureVerifier, VmContext, VmError,
};
use crate::hash::sha3;

/// Cost of a stack item: `8 + len`.
fn item_cost(item: &[u8]) -> i64 {
    8i64.wrapping_add(item.len() as i64)
}

/// Bytom's `stackCost`: the summed item costs of a stack.
fn stack_cost(stack: &[Vec<u8>]) -> i64 {
    stack
        .iter()
        .fold(0i64, |acc, item| acc.wrapping_add(item_cost(item)))
}

/// One VM: the top-level program or a `CHECKPREDICATE` child.
struct Frame<'a> {
    program: Cow<'a, [u8]>,
    pc: u32,
    next_pc: u32,
    run_limit: i64,
    deferred_cost: i64,
    expansion_reserved: bool,
    data_stack: Vec<Vec<u8>>,
    alt_stack: Vec<Vec<u8>>,
}

impl<'a> Frame<'a> {
    fn new(program: Cow<'a, [u8]>, run_limit: i64, expansion_reserved: bool) -> Self {
        Frame {
            program,
            pc: 0,
            next_pc: 0,
            run_limit,
            deferred_cost: 0,
            expansion_reserved,
            data_stack: Vec::new(),
            alt_stack: Vec::new(),
        }
    }

    fn finished(&self) -> bool {
        self.pc as usize >= self.program.len()
    }

    /// Empty stack or false top item.
    fn false_result(&self) -> bool {
        self.data_stack.last().is_none_or(|top| !as_bool(top))
    }

    /// Positive `n` spends gas, negative `n` refunds it.
    fn apply_cost(&mut self, n: i64) -> Result<()> {
        if n > self.run_limit {
            self.run_limit = 0;
            return Err(VmError::RunLimitExceeded);
        }
        self.run_limit = self.run_limit.wrapping_sub(n);
        Ok(())
    }

    fn defer_cost(&mut self, n: i64) {
        self.deferred_cost = self.deferred_cost.wrapping_add(n);
    }

    fn push(&mut self, item: Vec<u8>, deferred: bool) -> Result<()> {
        let cost = item_cost(&item);
        if deferred {
            self.defer_cost(cost);
        } else {
            self.apply_cost(cost)?;
        }
        self.data_stack.push(item);
        Ok(())
    }

    fn push_bool(&mut self, b: bool, deferred: bool) -> Result<()> {
        self.push(bool_bytes(b), deferred)
    }

    fn push_int(&mut self, n: i64, deferred: bool) -> Result<()> {
        self.push(int64_bytes(n), deferred)
    }

    fn pop(&mut self, deferred: bool) -> Result<Vec<u8>> {
        let item = self.data_stack.pop().ok_or(VmError::DataStackUnderflow)?;
        let cost = item_cost(&item);
        if deferred {
            self.defer_cost(cost.wrapping_neg());
        } else {
            self.run_limit = self.run_limit.wrapping_add(cost);
        }
        Ok(item)
    }

    fn pop_int(&mut self, deferred: bool) -> Result<i64> {
        let item = self.pop(deferred)?;
        as_int64(&item)
    }

    fn top(&self) -> Result<&Vec<u8>> {
        self.data_stack.last().ok_or(VmError::DataStackUnderflow)
    }

    /// The item `depth_from_top` below the top (0 = top), without popping.
    fn peek(&self, depth_from_top: usize) -> Result<&Vec<u8>> {
        let len = self.data_stack.len();
        if depth_from_top >= len {
            return Err(VmError::DataStackUnderflow);
        }
        Ok(&self.data_stack[len - 1 - depth_from_top])
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.data_stack.len() < n {
            return Err(VmError::DataStackUnderflow);
        }
        Ok(())
    }

    /// Moves the item `n - 1` below the top to the top (Bytom's `rot`).
    fn rot(&mut self, n: i64) -> Result<()> {
        if n < 1 {
            return Err(VmError::BadValue);
        }
        let len = self.data_stack.len();
        if (len as u64) < n as u64 {
            return Err(VmError::DataStackUnderflow);
        }
        let index = len - n as usize;
        let item = self.data_stack.remove(index);
        self.data_stack.push(item);
        Ok(())
    }

    fn n_dup(&mut self, n: usize) -> Result<()> {
        self.apply_cost(n as i64)?;
        self.need(n)?;
        for _ in 0..n {
            let item = self.data_stack[self.data_stack.len() - n].clone();
            self.push(item, false)?;
        }
        Ok(())
    }
}

/// A whole verification: the shared context plus the frame stack (`frames[0]` is the
/// top-level program).
pub(super) struct Run<'a> {
    ctx: &'a dyn VmContext,
    verifier: &'a dyn SignatureVerifier,
    /// The context's code: what `PROGRAM` pushes, also inside predicates.
    code: &'a [u8],
    frames: Vec<Frame<'a>>,
}

/// What one step asks the driver to do next.
enum Next<'a> {
    Continue,
    Spawn(Frame<'a>),
}

impl<'a> Run<'a> {
    pub(super) fn new(
        ctx: &'a dyn VmContext,
        verifier: &'a dyn SignatureVerifier,
        code: &'a [u8],
        gas_limit: i64,
    ) -> Self {
        let expansion_reserved = ctx.tx_version() == Some(1);
        Run {
            ctx,
            verifier,
            code,
            frames: vec![Frame::new(
                Cow::Borrowed(code),
                gas_limit,
                expansion_reserved,
            )],
        }
    }

    /// Bytom's `Verify` after the context is built: version check, argument pushes, run,
    /// result check.
    pub(super) fn verify(&mut self, vm_version: u64, arguments: &[Vec<u8>]) -> Outcome {
        let result = self.verify_inner(vm_version, arguments);
        let top = &mut self.frames[0];
        Outcome {
            result,
            gas_left: top.run_limit,
            data_stack: std::mem::take(&mut top.data_stack),
            alt_stack: std::mem::take(&mut top.alt_stack),
        }
    }

    fn verify_inner(&mut self, vm_version: u64, arguments: &[Vec<u8>]) -> Result<()> {
        if vm_version != 1 {
            return Err(VmError::UnsupportedVm {
                version: vm_version,
            });
        }
        for arg in arguments {
            self.frames[0].push(arg.clone(), false)?;
        }
        self.execute()?;
        if self.frames[0].false_result() {
            return Err(VmError::FalseVmResult);
        }
        Ok(())
    }

    /// Runs until the top-level frame finishes; child frames report back to their parent's
    /// `CHECKPREDICATE`, which then completes.
    fn execute(&mut self) -> Result<()> {
        loop {
            let Some(frame) = self.frames.last_mut() else {
                return Err(VmError::Unexpected);
            };
            let mut finished = if frame.finished() {
                Some(Ok(()))
            } else {
                match self.step() {
                    Ok(Next::Continue) => None,
                    Ok(Next::Spawn(child)) => {
                        self.frames.push(child);
                        None
                    }
                    Err(e) => Some(Err(e)),
                }
            };
            while let Some(result) = finished.take() {
                if self.frames.len() <= 1 {
                    return result;
                }
                let Some(child) = self.frames.pop() else {
                    return Err(VmError::Unexpected);
                };
                let Some(parent) = self.frames.last_mut() else {
                    return Err(VmError::Unexpected);
                };
                let success = result.is_ok() && !child.false_result();
                if let Err(e) = complete_check_predicate(parent, &child, success) {
                    finished = Some(Err(e));
                }
            }
        }
    }

    /// Executes one instruction of the innermost frame.
    fn step(&mut self) -> Result<Next<'a>> {
        let ctx = self.ctx;
        let verifier = self.verifier;
        let code = self.code;
        let Some(f) = self.frames.last_mut() else {
            return Err(VmError::Unexpected);
        };

        let (opcode, push_data, jump_target) = {
            let inst = parse_op(&f.program, f.pc)?;
            f.next_pc = f.pc.wrapping_add(inst.len);
            let opcode = inst.op;
            let push_data = (inst.is_pushdata() && opcode != op::FALSE).then(|| inst.data.to_vec());
            let jump_target = if matches!(opcode, op::JUMP | op::JUMPIF) {
                let mut b = [0u8; 4];
                b.copy_from_slice(inst.data);
                u32::from_le_bytes(b)
            } else {
                0
            };
            (opcode, push_data, jump_target)
        };

        if is_expansion(opcode) {
            if f.expansion_reserved {
                return Err(VmError::DisallowedOpcode { opcode });
            }
            f.pc = f.next_pc;
            f.apply_cost(1)?;
            return Ok(Next::Continue);
        }

        f.deferred_cost = 0;
        if let Some(data) = push_data {
            f.apply_cost(1)?;
            f.push(data, false)?;
        } else if opcode == op::CHECKPREDICATE {
            return start_check_predicate(f).map(Next::Spawn);
        } else {
            exec(f, opcode, jump_target, ctx, verifier, code)?;
        }
        let deferred = f.deferred_cost;
        f.apply_cost(deferred)?;
        f.pc = f.next_pc;
        Ok(Next::Continue)
    }
}

/// First half of `CHECKPREDICATE`: pops the operands, reserves the child's gas and builds the
/// child frame. The child does not inherit expansion-reserved (Bytom quirk).
fn start_check_predicate<'a>(f: &mut Frame<'a>) -> Result<Frame<'a>> {
    f.apply_cost(256)?;
    f.defer_cost(-256 + 64);
    let mut limit = f.pop_int(true)?;
    let predicate = f.pop(true)?;
    let mut n = f.pop_int(true)?;
    if limit < 0 {
        return Err(VmError::BadValue);
    }
    let l = f.data_stack.len() as i64;
    if n < 0 {
        n = l;
    }
    if n > l {
        return Err(VmError::DataStackUnderflow);
    }
    if limit == 0 {
        limit = f.run_limit;
    }
    f.apply_cost(limit)?;
    let mut child = Frame::new(Cow::Owned(predicate), limit, false);
    child.data_stack = f.data_stack.split_off((l - n) as usize);
    Ok(child)
}

/// Second half of `CHECKPREDICATE`, after the child stopped: refunds the child's unused gas and
/// its stacks, pushes whether it succeeded (a failing child is not an error), settles the
/// deferred cost and moves on.
fn complete_check_predicate(
    parent: &mut Frame<'_>,
    child: &Frame<'_>,
    success: bool,
) -> Result<()> {
    parent.defer_cost(child.run_limit.wrapping_neg());
    parent.defer_cost(stack_cost(&child.data_stack).wrapping_neg());
    parent.defer_cost(stack_cost(&child.alt_stack).wrapping_neg());
    parent.push_bool(success, true)?;
    let deferred = parent.deferred_cost;
    parent.apply_cost(deferred)?;
    parent.pc = parent.next_pc;
    Ok(())
}

/// Executes every opcode except pushes, expansions and `CHECKPREDICATE`.
fn exec(
    f: &mut Frame<'_>,
    opcode: u8,
    jump_target: u32,
    ctx: &dyn VmContext,
    verifier: &dyn SignatureVerifier,
    code: &[u8],
) -> Result<()> {
    use op::*;
    match opcode {
        FALSE => {
            f.apply_cost(1)?;
            f.push_bool(false, false)
        }
        NEGATE1 => {
            f.apply_cost(1)?;
            f.push_int(-1, false)
        }
        NOP => f.apply_cost(1),

        // control
        JUMP => {
            f.apply_cost(1)?;
            f.next_pc = jump_target;
            Ok(())
        }
        JUMPIF => {
            f.apply_cost(1)?;
            if as_bool(&f.pop(true)?) {
                f.next_pc = jump_target;
            }
            Ok(())
        }
        VERIFY => {
            f.apply_cost(1)?;
            if as_bool(&f.pop(true)?) {
                Ok(())
            } else {
                Err(VmError::VerifyFailed)
            }
        }
        FAIL => {
            f.apply_cost(1)?;
            Err(VmError::Return)
        }

        // stack (alt-stack moves have no memory accounting in Bytom)
        TOALTSTACK => {
            f.apply_cost(2)?;
            let item = f.data_stack.pop().ok_or(VmError::DataStackUnderflow)?;
            f.alt_stack.push(item);
            Ok(())
        }
        FROMALTSTACK => {
            f.apply_cost(2)?;
            let item = f.alt_stack.pop().ok_or(VmError::AltStackUnderflow)?;
            f.data_stack.push(item);
            Ok(())
        }
        DROP2 => {
            f.apply_cost(2)?;
            f.pop(false)?;
            f.pop(false)?;
            Ok(())
        }
        DUP2 => f.n_dup(2),
        DUP3 => f.n_dup(3),
        OVER2 => {
            f.apply_cost(2)?;
            f.need(4)?;
            for _ in 0..2 {
                let item = f.peek(3)?.clone();
                f.push(item, false)?;
            }
            Ok(())
        }
        ROT2 => {
            f.apply_cost(2)?;
            f.need(6)?;
            let at = f.data_stack.len() - 6;
            f.data_stack[at..].rotate_left(2);
            Ok(())
        }
        SWAP2 => {
            f.apply_cost(2)?;
            f.need(4)?;
            let at = f.data_stack.len() - 4;
            f.data_stack[at..].rotate_left(2);
            Ok(())
        }
        IFDUP => {
            f.apply_cost(1)?;
            let top = f.top()?;
            if as_bool(top) {
                let item = top.clone();
                f.push(item, false)?;
            }
            Ok(())
        }
        DEPTH => {
            f.apply_cost(1)?;
            let depth = f.data_stack.len() as i64;
            f.push_int(depth, false)
        }
        DROP => {
            f.apply_cost(1)?;
            f.pop(false).map(drop)
        }
        DUP => f.n_dup(1),
        NIP => {
            f.apply_cost(1)?;
            // The top item moves without accounting; only the second one is popped.
            // On underflow the top item stays removed, as in Bytom (the stack left behind
            // matters: a failed predicate's stack is refunded to its parent).
            let top = f.data_stack.pop().ok_or(VmError::DataStackUnderflow)?;
            f.pop(false)?;
            f.data_stack.push(top);
            Ok(())
        }
        OVER => {
            f.apply_cost(1)?;
            f.need(2)?;
            let item = f.peek(1)?.clone();
            f.push(item, false)
        }
        PICK => {
            f.apply_cost(2)?;
            let n = f.pop_int(false)?;
            if n < 0 {
                return Err(VmError::BadValue);
            }
            let off = n.checked_add(1).ok_or(VmError::BadValue)?;
            if (f.data_stack.len() as u64) < off as u64 {
                return Err(VmError::DataStackUnderflow);
            }
            let item = f.data_stack[f.data_stack.len() - off as usize].clone();
            f.push(item, false)
        }
        ROLL => {
            f.apply_cost(2)?;
            let n = f.pop_int(false)?;
            if n < 0 {
                return Err(VmError::BadValue);
            }
            let off = n.checked_add(1).ok_or(VmError::BadValue)?;
            f.rot(off)
        }
        ROT => {
            f.apply_cost(2)?;
            f.rot(3)
        }
        SWAP => {
            f.apply_cost(1)?;
            f.need(2)?;
            let len = f.data_stack.len();
            f.data_stack.swap(len - 1, len - 2);
            Ok(())
        }
        TUCK => {
            f.apply_cost(1)?;
            f.need(2)?;
            // The two top items move without accounting; only the copy is paid for.
            let top = f.data_stack.pop().ok_or(VmError::DataStackUnderflow)?;
            let second = f.data_stack.pop().ok_or(VmError::DataStackUnderflow)?;
            // If the copy cannot be paid for, both items stay removed, as in Bytom.
            f.push(top.clone(), false)?;
            f.data_stack.push(second);
            f.data_stack.push(top);
            Ok(())
        }

        // splice
        CAT => {
            f.apply_cost(4)?;
            let b = f.pop(true)?;
            let mut a = f.pop(true)?;
            let lens = (a.len() as i64).wrapping_add(b.len() as i64);
            f.apply_cost(lens)?;
            f.defer_cost(lens.wrapping_neg());
            a.extend_from_slice(&b);
            f.push(a, true)
        }
        SUBSTR => {
            f.apply_cost(4)?;
            let size = f.pop_int(true)?;
            if size < 0 {
                return Err(VmError::BadValue);
            }
            f.apply_cost(size)?;
            f.defer_cost(size.wrapping_neg());
            let offset = f.pop_int(true)?;
            if offset < 0 {
                return Err(VmError::BadValue);
            }
            let s = f.pop(true)?;
            let end = offset.checked_add(size).ok_or(VmError::BadValue)?;
            if end > s.len() as i64 {
                return Err(VmError::BadValue);
            }
            f.push(s[offset as usize..end as usize].to_vec(), true)
        }
        LEFT | RIGHT => {
            f.apply_cost(4)?;
            let size = f.pop_int(true)?;
            if size < 0 {
                return Err(VmError::BadValue);
            }
            f.apply_cost(size)?;
            f.defer_cost(size.wrapping_neg());
            let mut s = f.pop(true)?;
            if size > s.len() as i64 {
                return Err(VmError::BadValue);
            }
            let size = size as usize;
            if opcode == LEFT {
                s.truncate(size);
            } else {
                s.drain(..s.len() - size);
            }
            f.push(s, true)
        }
        SIZE => {
            f.apply_cost(1)?;
            let len = f.top()?.len() as i64;
            f.push_int(len, true)
        }
        CATPUSHDATA => {
            f.apply_cost(4)?;
            let b = f.pop(true)?;
            let mut a = f.pop(true)?;
            let lens = (a.len() as i64).wrapping_add(b.len() as i64);
            f.apply_cost(lens)?;
            f.defer_cost(lens.wrapping_neg());
            a.extend_from_slice(&push_data_bytes(&b));
            f.push(a, true)
        }

        // bitwise
        INVERT => {
            f.apply_cost(1)?;
            let len = f.top()?.len() as i64;
            f.apply_cost(len)?;
            if let Some(top) = f.data_stack.last_mut() {
                top.iter_mut().for_each(|b| *b = !*b);
            }
            Ok(())
        }
        AND => {
            f.apply_cost(1)?;
            let b = f.pop(true)?;
            let a = f.pop(true)?;
            f.apply_cost(a.len().min(b.len()) as i64)?;
            let res = a.iter().zip(&b).map(|(x, y)| x & y).collect();
            f.push(res, true)
        }
        OR | XOR => {
            f.apply_cost(1)?;
            let b = f.pop(true)?;
            let a = f.pop(true)?;
            let max = a.len().max(b.len());
            f.apply_cost(max as i64)?;
            let res = (0..max)
                .map(|i| {
                    let x = a.get(i).copied().unwrap_or(0);
                    let y = b.get(i).copied().unwrap_or(0);
                    if opcode == XOR {
                        x ^ y
                    } else {
                        x | y
                    }
                })
                .collect();
            f.push(res, true)
        }
        EQUAL | EQUALVERIFY => {
            f.apply_cost(1)?;
            let b = f.pop(true)?;
            let a = f.pop(true)?;
            f.apply_cost(a.len().min(b.len()) as i64)?;
            let eq = a == b;
            if opcode == EQUAL {
                f.push_bool(eq, true)
            } else if eq {
                Ok(())
            } else {
                Err(VmError::VerifyFailed)
            }
        }

        // numeric: unary
        ADD1 | SUB1 | MUL2 | DIV2 | NEGATE | ABS | NOT | NOTEQUAL0 => {
            f.apply_cost(2)?;
            let n = f.pop_int(true)?;
            match opcode {
                NOT => return f.push_bool(n == 0, true),
                NOTEQUAL0 => return f.push_bool(n != 0, true),
                _ => {}
            }
            let res = match opcode {
                ADD1 => n.checked_add(1),
                SUB1 => n.checked_sub(1),
                MUL2 => n.checked_mul(2),
                DIV2 => Some(n >> 1),
                NEGATE => n.checked_neg(),
                _ => n.checked_abs(),
            }
            .ok_or(VmError::Range)?;
            f.push_int(res, true)
        }

        // numeric: binary
        ADD | SUB | MIN | MAX => {
            f.apply_cost(2)?;
            let y = f.pop_int(true)?;
            let x = f.pop_int(true)?;
            let res = match opcode {
                ADD => x.checked_add(y),
                SUB => x.checked_sub(y),
                MIN => Some(x.min(y)),
                _ => Some(x.max(y)),
            }
            .ok_or(VmError::Range)?;
            f.push_int(res, true)
        }
        MUL | DIV | MOD => {
            f.apply_cost(8)?;
            let y = f.pop_int(true)?;
            let x = f.pop_int(true)?;
            let res = match opcode {
                MUL => x.checked_mul(y).ok_or(VmError::Range)?,
                _ if y == 0 => return Err(VmError::DivZero),
                DIV => x.checked_div(y).ok_or(VmError::Range)?,
                _ => {
                    // Truncated remainder, then moved to the divisor's sign (floored modulo).
                    let mut r = x.checked_rem(y).ok_or(VmError::Range)?;
                    if r != 0 && (x >= 0) != (y >= 0) {
                        r += y;
                    }
                    r
                }
            };
            f.push_int(res, true)
        }
        LSHIFT => {
            f.apply_cost(8)?;
            let y = f.pop_int(true)?;
            if y < 0 {
                return Err(VmError::BadValue);
            }
            let x = f.pop_int(true)?;
            if x == 0 || y == 0 {
                return f.push_int(x, true);
            }
            if y >= 64 || (x >= 0 && x > i64::MAX >> y) || (x < 0 && x < i64::MIN >> y) {
                return Err(VmError::Range);
            }
            f.push_int(x << y, true)
        }
        RSHIFT => {
            f.apply_cost(8)?;
            let y = f.pop_int(true)?;
            let x = f.pop_int(true)?;
            if y < 0 {
                return Err(VmError::BadValue);
            }
            f.push_int(x >> y.min(63), true)
        }
        BOOLAND | BOOLOR => {
            f.apply_cost(2)?;
            let b = as_bool(&f.pop(true)?);
            let a = as_bool(&f.pop(true)?);
            f.push_bool(if opcode == BOOLAND { a && b } else { a || b }, true)
        }
        NUMEQUAL | NUMNOTEQUAL | LESSTHAN | GREATERTHAN | LESSTHANOREQUAL | GREATERTHANOREQUAL => {
            f.apply_cost(2)?;
            let y = f.pop_int(true)?;
            let x = f.pop_int(true)?;
            let res = match opcode {
                NUMEQUAL => x == y,
                NUMNOTEQUAL => x != y,
                LESSTHAN => x < y,
                GREATERTHAN => x > y,
                LESSTHANOREQUAL => x <= y,
                _ => x >= y,
            };
            f.push_bool(res, true)
        }
        NUMEQUALVERIFY => {
            f.apply_cost(2)?;
            let y = f.pop_int(true)?;
            let x = f.pop_int(true)?;
            if x == y {
                Ok(())
            } else {
                Err(VmError::VerifyFailed)
            }
        }
        WITHIN => {
            f.apply_cost(4)?;
            let max = f.pop_int(true)?;
            let min = f.pop_int(true)?;
            let x = f.pop_int(true)?;
            f.push_bool(x >= min && x < max, true)
        }

        // crypto
        SHA256 | SHA3 => {
            let x = f.pop(false)?;
            f.apply_cost((x.len() as i64).max(64))?;
            let digest = if opcode == SHA256 {
                sha2::Sha256::digest(&x).to_vec()
            } else {
                sha3(&x).0.to_vec()
            };
            f.push(digest, false)
        }
        HASH160 => {
            let x = f.pop(false)?;
            f.apply_cost((x.len() as i64).wrapping_add(64))?;
            f.push(ripemd::Ripemd160::digest(&x).to_vec(), false)
        }
        CHECKSIG => {
            f.apply_cost(1024)?;
            let pubkey = f.pop(true)?;
            let msg = f.pop(true)?;
            let sig = f.pop(true)?;
            let msg: [u8; 32] = msg.as_slice().try_into().map_err(|_| VmError::BadValue)?;
            let ok = match <[u8; 32]>::try_from(pubkey.as_slice()) {
                Ok(pk) => verifier.verify(&pk, &msg, &sig),
                Err(_) => false,
            };
            f.push_bool(ok, true)
        }
        CHECKMULTISIG => check_multisig(f, verifier),
        TXSIGHASH => {
            f.apply_cost(256)?;
            let hash = ctx.tx_sighash().ok_or(VmError::Context)?;
            f.push(hash.0.to_vec(), false)
        }

        // introspection
        CHECKOUTPUT => {
            f.apply_cost(16)?;
            let prog = f.pop(true)?;
            let vm_version = f.pop_int(true)?;
            if vm_version < 0 {
                return Err(VmError::BadValue);
            }
            let asset_id = f.pop(true)?;
            let amount = f.pop_int(true)?;
            if amount < 0 {
                return Err(VmError::BadValue);
            }
            let index = f.pop_int(true)?;
            if index < 0 {
                return Err(VmError::BadValue);
            }
            let ok = ctx.check_output(
                index as u64,
                amount as u64,
                &asset_id,
                vm_version as u64,
                &prog,
                f.expansion_reserved,
            )?;
            f.push_bool(ok, true)
        }
        ASSET => {
            f.apply_cost(1)?;
            let asset = ctx.asset_id().ok_or(VmError::Context)?;
            f.push(asset.0.to_vec(), true)
        }
        AMOUNT => {
            f.apply_cost(1)?;
            let amount = ctx.amount().ok_or(VmError::Context)?;
            // Go converts with int64(amount): values above i64::MAX wrap negative.
            f.push_int(amount as i64, true)
        }
        PROGRAM => {
            f.apply_cost(1)?;
            f.push(code.to_vec(), true)
        }
        INDEX => {
            f.apply_cost(1)?;
            let pos = ctx.dest_pos().ok_or(VmError::Context)?;
            f.push_int(pos as i64, true)
        }
        ENTRYID => {
            f.apply_cost(1)?;
            let id = ctx.entry_id().map(|h| h.0.to_vec()).unwrap_or_default();
            f.push(id, true)
        }
        OUTPUTID => {
            f.apply_cost(1)?;
            let id = ctx.spent_output_id().ok_or(VmError::Context)?;
            f.push(id.0.to_vec(), true)
        }
        BLOCKHEIGHT => {
            f.apply_cost(1)?;
            let height = ctx.block_height().ok_or(VmError::Context)?;
            f.push_int(height as i64, true)
        }
        // Pushes, expansions and CHECKPREDICATE are dispatched before `exec`.
        _ => Err(VmError::Unexpected),
    }
}

/// `CHECKMULTISIG`: `sig_1..sig_M msg pk_1..pk_N M N` → bool. No base cost: it pays 1024 per
/// public key. Signatures must match public keys in order, each key used at most once.
fn check_multisig(f: &mut Frame<'_>, verifier: &dyn SignatureVerifier) -> Result<()> {
    let num_pubkeys = f.pop_int(true)?;
    let pub_cost = num_pubkeys.checked_mul(1024);
    let pub_cost = match pub_cost {
        Some(c) if num_pubkeys >= 0 => c,
        _ => return Err(VmError::BadValue),
    };
    f.apply_cost(pub_cost)?;
    let num_sigs = f.pop_int(true)?;
    if num_sigs < 0 || num_sigs > num_pubkeys || (num_pubkeys > 0 && num_sigs == 0) {
        return Err(VmError::BadValue);
    }
    // Popped top first: pubkeys = [pk_N, ..., pk_1], sigs = [sig_M, ..., sig_1].
    let mut pubkeys = Vec::new();
    for _ in 0..num_pubkeys {
        pubkeys.push(f.pop(true)?);
    }
    let msg = f.pop(true)?;
    let msg: [u8; 32] = msg.as_slice().try_into().map_err(|_| VmError::BadValue)?;
    let mut sigs = Vec::new();
    for _ in 0..num_sigs {
        sigs.push(f.pop(true)?);
    }
    let mut keys = Vec::with_capacity(pubkeys.len());
    for pk in &pubkeys {
        match <[u8; 32]>::try_from(pk.as_slice()) {
            Ok(k) => keys.push(k),
            Err(_) => return f.push_bool(false, true),
        }
    }
    let mut sigs = sigs.iter().peekable();
    for key in &keys {
        let Some(sig) = sigs.peek() else { break };
        if verifier.verify(key, &msg, sig) {
            sigs.next();
        }
    }
    let all_matched = sigs.peek().is_none();
    f.push_bool(all_matched, true)
}
