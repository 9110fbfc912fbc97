//! VM conformance tests. Cases marked "Go:" carry the inputs and expected results of Bytom
//! v1.1.1's `protocol/vm/*_test.go` (the data only; the harness is ours).

use bystack_engine::hash::{sha3, Hash};
use bystack_engine::vm::{
    self, as_int64, int64_bytes, multisig_program, multisig_program_with_height, op, opcode_name,
    p2wpkh_program, p2wsh_program, parse_op, push_data_bytes, push_int64, run_raw, verify,
    verify_raw, Builder, EmptyContext, Outcome, Program, SignatureVerifier, VmContext, VmError,
};
use proptest::prelude::*;
use ripemd::Digest as _;

// ---------------------------------------------------------------------------------------------
// Harness

/// Deterministic stand-in for ed25519: a signature is `SHA3(pk || msg) || SHA3(msg || pk)`.
struct FakeVerifier;

fn fake_sign(pk: &[u8; 32], msg: &[u8; 32]) -> Vec<u8> {
    let mut a = pk.to_vec();
    a.extend_from_slice(msg);
    let mut b = msg.to_vec();
    b.extend_from_slice(pk);
    let mut sig = sha3(&a).0.to_vec();
    sig.extend_from_slice(&sha3(&b).0);
    sig
}

impl SignatureVerifier for FakeVerifier {
    fn verify(&self, pubkey: &[u8; 32], message: &[u8; 32], signature: &[u8]) -> bool {
        signature == fake_sign(pubkey, message).as_slice()
    }
}

/// (index, amount, asset, vm_version, code) of a destination.
type Destination = (u64, u64, Vec<u8>, u64, Vec<u8>);

/// A context with every field present.
#[derive(Clone, Default)]
struct TestContext {
    tx_version: Option<u64>,
    block_height: Option<u64>,
    sighash: Option<Hash>,
    entry_id: Option<Hash>,
    spent_output_id: Option<Hash>,
    asset_id: Option<Hash>,
    amount: Option<u64>,
    dest_pos: Option<u64>,
    /// (index, amount, asset, vm_version, code) of the one destination, or none.
    output: Option<Destination>,
}

impl VmContext for TestContext {
    fn tx_version(&self) -> Option<u64> {
        self.tx_version
    }
    fn block_height(&self) -> Option<u64> {
        self.block_height
    }
    fn tx_sighash(&self) -> Option<Hash> {
        self.sighash
    }
    fn entry_id(&self) -> Option<Hash> {
        self.entry_id
    }
    fn spent_output_id(&self) -> Option<Hash> {
        self.spent_output_id
    }
    fn asset_id(&self) -> Option<Hash> {
        self.asset_id
    }
    fn amount(&self) -> Option<u64> {
        self.amount
    }
    fn dest_pos(&self) -> Option<u64> {
        self.dest_pos
    }
    fn check_output(
        &self,
        index: u64,
        amount: u64,
        asset_id: &[u8],
        vm_version: u64,
        code: &[u8],
        _expansion: bool,
    ) -> Result<bool, VmError> {
        let Some((i, a, asset, v, c)) = &self.output else {
            return Err(VmError::Context);
        };
        if index != *i {
            return Err(VmError::BadValue);
        }
        Ok(*a == amount && asset == asset_id && *v == vm_version && c == code)
    }
}

fn full_context() -> TestContext {
    TestContext {
        tx_version: Some(1),
        block_height: Some(100),
        sighash: Some(Hash([0x22; 32])),
        entry_id: Some(Hash([0x33; 32])),
        spent_output_id: Some(Hash([0x44; 32])),
        asset_id: Some(Hash([0x55; 32])),
        amount: Some(5),
        dest_pos: Some(0),
        output: Some((0, 5, vec![0x55; 32], 1, vec![0x51])),
    }
}

/// Assembles Bytom's text syntax: op names, decimal integers, `0x` hex data, `'text'` data,
/// `$label` definitions and `JUMP:target` / `JUMPIF:target` with a number or a `$label`.
fn asm(src: &str) -> Vec<u8> {
    let mut b = Builder::new();
    let mut labels = std::collections::HashMap::new();
    let mut label = |b: &mut Builder, name: &str| -> usize {
        *labels
            .entry(name.to_string())
            .or_insert_with(|| b.new_jump_target())
    };
    for tok in src.split_whitespace() {
        if let Some((jump, target)) = tok.split_once(':') {
            let opcode = if jump == "JUMP" { op::JUMP } else { op::JUMPIF };
            if let Some(name) = target.strip_prefix('$') {
                let t = label(&mut b, name);
                if opcode == op::JUMP {
                    b.add_jump(t);
                } else {
                    b.add_jump_if(t);
                }
            } else {
                let addr: u32 = target.parse().expect("jump address");
                b.add_op(opcode).add_raw_bytes(&addr.to_le_bytes());
            }
        } else if let Some(name) = tok.strip_prefix('$') {
            let t = label(&mut b, name);
            b.set_jump_target(t);
        } else if let Some(hex) = tok.strip_prefix("0x") {
            b.add_data(&unhex(hex));
        } else if tok.starts_with('\'') {
            b.add_data(tok.trim_matches('\'').as_bytes());
        } else if let Ok(n) = tok.parse::<i64>() {
            b.add_int64(n);
        } else {
            let name = match tok {
                "TRUE" => "1",
                other => other,
            };
            let opcode = (0..=255u8)
                .find(|&o| opcode_name(o) == Some(name))
                .unwrap_or_else(|| panic!("unknown op {tok}"));
            b.add_op(opcode);
        }
    }
    b.build().expect("labels resolved")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn stack_cost(stack: &[Vec<u8>]) -> i64 {
    stack.iter().map(|i| 8 + i.len() as i64).sum()
}

fn run_with(ctx: &dyn VmContext, code: &[u8], args: &[Vec<u8>], gas: i64) -> Outcome {
    run_raw(
        ctx,
        &FakeVerifier,
        &Program {
            vm_version: 1,
            code,
        },
        args,
        gas,
    )
}

fn run(code: &[u8], args: &[Vec<u8>], gas: i64) -> Outcome {
    run_with(&EmptyContext, code, args, gas)
}

/// Runs one op as Bytom's op tests do: the start stack is given as arguments with exactly the
/// gas to push them on top of `run_limit`, so what is left equals Go's `runLimit` after the op
/// minus its `deferredCost`.
fn op_case(ctx: &dyn VmContext, code: &[u8], stack: &[Vec<u8>], run_limit: i64) -> Outcome {
    run_with(ctx, code, stack, run_limit + stack_cost(stack))
}

fn v(items: &[&[u8]]) -> Vec<Vec<u8>> {
    items.iter().map(|i| i.to_vec()).collect()
}

/// Expects success of one op: stack and gas (`want_run_limit - want_deferred`).
fn expect_op(code: &[u8], start: &[&[u8]], want: &[&[u8]], want_run_limit: i64, deferred: i64) {
    let out = op_case(&EmptyContext, code, &v(start), 50000);
    assert!(
        matches!(out.result, Ok(()) | Err(VmError::FalseVmResult)),
        "{code:02x?} {start:?}: {:?}",
        out.result
    );
    assert_eq!(out.data_stack, v(want), "{code:02x?} {start:?}");
    assert_eq!(
        out.gas_left,
        want_run_limit - deferred,
        "{code:02x?} {start:?}"
    );
}

fn expect_op_err(code: &[u8], start: &[&[u8]], run_limit: i64, err: VmError) {
    let out = op_case(&EmptyContext, code, &v(start), run_limit);
    assert_eq!(out.result, Err(err), "{code:02x?} {start:?}");
}

fn i(n: i64) -> Vec<u8> {
    int64_bytes(n)
}

// ---------------------------------------------------------------------------------------------
// Whole programs

/// Go: TestProgramOK / TestProgramNotOK (every case, both polarities).
#[test]
fn go_program_ok_and_not_ok() {
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("TRUE", vec![]),
        ("INVERT 0xfef0 EQUAL", vec![vec![0x01, 0x0f]]),
        ("AND 0x02 EQUAL", vec![vec![0x03], vec![0x06]]),
        ("AND 0x02 EQUAL", vec![vec![0x03, 0xff], vec![0x06]]),
        ("OR 0x07 EQUAL", vec![vec![0x03], vec![0x06]]),
        ("OR 0x07ff EQUAL", vec![vec![0x03, 0xff], vec![0x06]]),
        ("XOR 0x05 EQUAL", vec![vec![0x03], vec![0x06]]),
        ("XOR 0x05ff EQUAL", vec![vec![0x03, 0xff], vec![0x06]]),
        ("1ADD 2 NUMEQUAL", vec![i(1)]),
        ("1ADD 0 NUMEQUAL", vec![i(-1)]),
        ("1SUB 1 NUMEQUAL", vec![i(2)]),
        ("1SUB -1 NUMEQUAL", vec![i(0)]),
        ("2MUL 2 NUMEQUAL", vec![i(1)]),
        ("2MUL 0 NUMEQUAL", vec![i(0)]),
        ("2MUL -2 NUMEQUAL", vec![i(-1)]),
        ("2DIV 1 NUMEQUAL", vec![i(2)]),
        ("2DIV 0 NUMEQUAL", vec![i(1)]),
        ("2DIV 0 NUMEQUAL", vec![i(0)]),
        ("2DIV -1 NUMEQUAL", vec![i(-1)]),
        ("2DIV -1 NUMEQUAL", vec![i(-2)]),
        ("NEGATE -1 NUMEQUAL", vec![i(1)]),
        ("NEGATE 1 NUMEQUAL", vec![i(-1)]),
        ("NEGATE 0 NUMEQUAL", vec![i(0)]),
        ("ABS 1 NUMEQUAL", vec![i(1)]),
        ("ABS 1 NUMEQUAL", vec![i(-1)]),
        ("ABS 0 NUMEQUAL", vec![i(0)]),
        ("0NOTEQUAL", vec![i(1)]),
        ("0NOTEQUAL NOT", vec![i(0)]),
        ("ADD 5 NUMEQUAL", vec![i(2), i(3)]),
        ("SUB 2 NUMEQUAL", vec![i(5), i(3)]),
        ("MUL 6 NUMEQUAL", vec![i(2), i(3)]),
        ("DIV 2 NUMEQUAL", vec![i(6), i(3)]),
        ("MOD 0 NUMEQUAL", vec![i(6), i(2)]),
        ("MOD 0 NUMEQUAL", vec![i(-6), i(2)]),
        ("MOD 0 NUMEQUAL", vec![i(6), i(-2)]),
        ("MOD 0 NUMEQUAL", vec![i(-6), i(-2)]),
        ("MOD 2 NUMEQUAL", vec![i(12), i(10)]),
        ("MOD 8 NUMEQUAL", vec![i(-12), i(10)]),
        ("MOD -8 NUMEQUAL", vec![i(12), i(-10)]),
        ("MOD -2 NUMEQUAL", vec![i(-12), i(-10)]),
        ("LSHIFT 2 NUMEQUAL", vec![i(1), i(1)]),
        ("LSHIFT 4 NUMEQUAL", vec![i(1), i(2)]),
        ("LSHIFT -2 NUMEQUAL", vec![i(-1), i(1)]),
        ("LSHIFT -4 NUMEQUAL", vec![i(-1), i(2)]),
        ("1 1 BOOLAND", vec![]),
        ("1 0 BOOLAND NOT", vec![]),
        ("0 1 BOOLAND NOT", vec![]),
        ("0 0 BOOLAND NOT", vec![]),
        ("1 1 BOOLOR", vec![]),
        ("1 0 BOOLOR", vec![]),
        ("0 1 BOOLOR", vec![]),
        ("0 0 BOOLOR NOT", vec![]),
        ("1 2 OR 3 EQUAL", vec![]),
        ("0 CATPUSHDATA 0x0000 EQUAL", vec![vec![0x00]]),
        ("0 0xff CATPUSHDATA 0x01ff EQUAL", vec![]),
        ("CATPUSHDATA 0x050105 EQUAL", vec![vec![0x05], vec![0x05]]),
        ("CATPUSHDATA 0xff01ff EQUAL", vec![vec![0xff], vec![0xff]]),
        ("0 0xcccccc CATPUSHDATA 0x03cccccc EQUAL", vec![]),
        (
            "0x05 0x05 SWAP 0xdeadbeef CATPUSHDATA DROP 0x05 EQUAL",
            vec![],
        ),
        ("1 JUMP:7 0 1 EQUAL", vec![]),
        ("1 JUMP:$target 0 $target 1 EQUAL", vec![]),
        ("1 1 JUMPIF:8 0 1 EQUAL", vec![]),
        ("1 1 JUMPIF:$target 0 $target 1 EQUAL", vec![]),
        ("1 0 JUMPIF:8 0 1 EQUAL NOT", vec![]),
        ("1 0 JUMPIF:$target 0 $target 1 EQUAL NOT", vec![]),
        ("1 0 JUMPIF:1", vec![]),
        ("1 $target 0 JUMPIF:$target", vec![]),
        ("4 1 JUMPIF:14 5 EQUAL JUMP:16 4 EQUAL", vec![]),
        (
            "4 1 JUMPIF:$true 5 EQUAL JUMP:$end $true 4 EQUAL $end",
            vec![],
        ),
        ("5 0 JUMPIF:14 5 EQUAL JUMP:16 4 EQUAL", vec![]),
        (
            "5 0 JUMPIF:$true 5 EQUAL JUMP:$end $true 4 $test EQUAL $end",
            vec![],
        ),
        (
            "0 1 2 3 4 5 6 JUMP:13 DROP DUP 0 NUMNOTEQUAL JUMPIF:12 1",
            vec![],
        ),
        (
            "0 1 2 3 4 5 6 JUMP:$dup $drop DROP $dup DUP 0 NUMNOTEQUAL JUMPIF:$drop 1",
            vec![],
        ),
        ("0 JUMP:7 1ADD DUP 10 LESSTHAN JUMPIF:6 10 NUMEQUAL", vec![]),
        (
            "0 JUMP:$dup $add 1ADD $dup DUP 10 LESSTHAN JUMPIF:$add 10 NUMEQUAL",
            vec![],
        ),
    ];
    for (src, args) in &cases {
        // Go runs these with the arguments already on the stack; give their push cost back.
        let gas = 10000 + stack_cost(args);
        let ok = run(&asm(src), args, gas);
        assert_eq!(ok.result, Ok(()), "{src}");
        let not_ok = run(&asm(&format!("{src} NOT")), args, gas);
        assert_eq!(not_ok.result, Err(VmError::FalseVmResult), "{src} NOT");
    }
}

/// Go: TestVerifyTxInput.
#[test]
fn go_verify_tx_input() {
    let code = [op::ADD, op::OP_1 + 4, op::NUMEQUAL];
    let ok = verify_raw(
        &EmptyContext,
        &FakeVerifier,
        &Program {
            vm_version: 1,
            code: &code,
        },
        &[vec![2], vec![3]],
        10000,
    );
    assert_eq!(ok, Ok(9986));

    let out = run_raw(
        &EmptyContext,
        &FakeVerifier,
        &Program {
            vm_version: 2,
            code: &[],
        },
        &[],
        10000,
    );
    assert_eq!(out.result, Err(VmError::UnsupportedVm { version: 2 }));
    assert_eq!(out.gas_left, 10000);

    let out = run(&code, &[vec![0; 50001]], 10000);
    assert_eq!(out.result, Err(VmError::RunLimitExceeded));
    assert_eq!(out.gas_left, 0);
}

/// Go: TestRun and TestStep (the cases that start at pc 0).
#[test]
fn go_run_and_step() {
    assert_eq!(run(&[op::TRUE], &[], 50000).result, Ok(()));
    assert_eq!(
        run(&[op::ADD], &[], 50000).result,
        Err(VmError::DataStackUnderflow)
    );
    // TRUE: 1 + push 9.
    let out = run(&[op::TRUE], &[], 50000);
    assert_eq!((out.gas_left, out.data_stack), (49990, vec![vec![1]]));
    // Expansion opcode: a 1-gas NOP unless reserved.
    let out = run(&[0xff], &[], 50000);
    assert_eq!(
        (out.result, out.gas_left),
        (Err(VmError::FalseVmResult), 49999)
    );
    let ctx = TestContext {
        tx_version: Some(1),
        ..TestContext::default()
    };
    assert_eq!(
        run_with(&ctx, &[0xff], &[], 100).result,
        Err(VmError::DisallowedOpcode { opcode: 0xff })
    );
    let ctx = TestContext {
        dest_pos: Some(0),
        ..TestContext::default()
    };
    assert_eq!(
        run_with(&ctx, &[op::INDEX], &[], 1).result,
        Err(VmError::RunLimitExceeded)
    );
    // TRUE JUMP:255 lands past the end: success, 49990 - 1.
    let out = run(&[op::TRUE, op::JUMP, 0xff, 0, 0, 0], &[], 50000);
    assert_eq!((out.result, out.gas_left), (Ok(()), 49989));
    // TRUE JUMPIF:0 loops until the gas runs out.
    let out = run(&[op::TRUE, op::JUMPIF, 0, 0, 0, 0], &[], 50000);
    assert_eq!(
        (out.result, out.gas_left),
        (Err(VmError::RunLimitExceeded), 0)
    );
    // FALSE JUMPIF:0 falls through: 49991 - 1 + 8.
    let out = run(&[op::FALSE, op::JUMPIF, 0, 0, 0, 0], &[], 50000);
    assert_eq!(
        (out.result, out.gas_left),
        (Err(VmError::FalseVmResult), 49998)
    );
}

// ---------------------------------------------------------------------------------------------
// Op tests with Bytom's gas figures (runLimit and deferredCost after the op)

/// Go: TestNumericOps (representative cases, plus the overflow table).
#[test]
fn go_numeric_ops() {
    let unary = [
        (op::ADD1, 2, 3),
        (op::SUB1, 2, 1),
        (op::MUL2, 2, 4),
        (op::DIV2, 2, 1),
        (op::DIV2, -2, -1),
        (op::DIV2, -1, -1),
        (op::NEGATE, 2, -2),
        (op::ABS, 2, 2),
        (op::ABS, -2, 2),
    ];
    for (o, x, want) in unary {
        let start = i(x);
        let want_item = i(want);
        let deferred = -(8 + start.len() as i64) + 8 + want_item.len() as i64;
        expect_op(&[o], &[&start], &[&want_item], 49998, deferred);
    }
    // NOT / 0NOTEQUAL push bools.
    expect_op(&[op::NOT], &[&[2]], &[&[]], 49998, -1);
    expect_op(&[op::NOTEQUAL0], &[&[2]], &[&[1]], 49998, 0);
    let binary = [
        (op::ADD, 2, 1, 3, 2),
        (op::SUB, 2, 1, 1, 2),
        (op::MUL, 2, 1, 2, 8),
        (op::DIV, 2, 1, 2, 8),
        (op::DIV, 2, -1, -2, 8),
        (op::MOD, 2, 1, 0, 8),
        (op::MOD, -12, 10, 8, 8),
        (op::LSHIFT, 2, 1, 4, 8),
        (op::LSHIFT, -2, 1, -4, 8),
        (op::RSHIFT, 2, 1, 1, 8),
        (op::RSHIFT, -2, 1, -1, 8),
        (op::MIN, 2, 1, 1, 2),
        (op::MIN, -2, -1, -2, 2),
        (op::MAX, 2, 1, 2, 2),
        (op::MAX, -2, -1, -1, 2),
    ];
    for (o, x, y, want, cost) in binary {
        let (a, b, w) = (i(x), i(y), i(want));
        let deferred = -(16 + (a.len() + b.len()) as i64) + 8 + w.len() as i64;
        expect_op(&[o], &[&a, &b], &[&w], 50000 - cost, deferred);
    }
    // Comparisons: Go lists BOOLAND/BOOLOR/NUMEQUAL/... on {2},{1} with -9 deferred.
    let cmp = [
        (op::BOOLAND, true),
        (op::BOOLOR, true),
        (op::NUMEQUAL, false),
        (op::NUMNOTEQUAL, true),
        (op::LESSTHAN, false),
        (op::LESSTHANOREQUAL, false),
        (op::GREATERTHAN, true),
        (op::GREATERTHANOREQUAL, true),
    ];
    for (o, want) in cmp {
        let w: &[u8] = if want { &[1] } else { &[] };
        expect_op(
            &[o],
            &[&[2], &[1]],
            &[w],
            49998,
            if want { -9 } else { -10 },
        );
    }
    expect_op(&[op::NUMEQUALVERIFY], &[&[2], &[2]], &[], 49998, -18);
    expect_op_err(
        &[op::NUMEQUALVERIFY],
        &[&[1], &[2]],
        50000,
        VmError::VerifyFailed,
    );
    expect_op(&[op::WITHIN], &[&[1], &[1], &[2]], &[&[1]], 49996, -18);
    expect_op(&[op::WITHIN], &[&[2], &[1], &[2]], &[&[]], 49996, -19);

    // Errors (Go: the error table of TestNumericOps and TestRangeErrs).
    expect_op_err(&[op::DIV], &[&[1], &[]], 50000, VmError::DivZero);
    expect_op_err(&[op::MOD], &[&[1], &[]], 50000, VmError::DivZero);
    expect_op_err(&[op::LSHIFT], &[&[1], &i(-1)], 50000, VmError::BadValue);
    expect_op_err(&[op::RSHIFT], &[&[1], &i(-1)], 50000, VmError::BadValue);
    expect_op_err(&[op::ADD1], &[&[0; 9]], 50000, VmError::BadValue);
    let range_errs: [(&str, bool); 24] = [
        ("0 1ADD", false),
        ("-1 1ADD", false),
        ("9223372036854775807 1ADD", true),
        ("0 1SUB", false),
        ("-9223372036854775808 1SUB", true),
        ("0 2MUL", false),
        ("4611686018427387903 2MUL", false),
        ("4611686018427387904 2MUL", true),
        ("-4611686018427387904 2MUL", false),
        ("-4611686018427387905 2MUL", true),
        ("0 NEGATE", false),
        ("-9223372036854775808 NEGATE", true),
        ("-9223372036854775808 ABS", true),
        ("2 3 ADD", false),
        ("9223372036854775807 1 ADD", true),
        ("2 3 SUB", false),
        ("-9223372036854775808 1 SUB", true),
        ("2 3 MUL", false),
        ("4611686018427387904 2 MUL", true),
        ("-9223372036854775808 -1 DIV", true),
        ("-9223372036854775808 -1 MOD", true),
        ("1 62 LSHIFT", false),
        ("1 63 LSHIFT", true),
        ("-1 64 LSHIFT", true),
    ];
    for (src, is_range) in range_errs {
        let out = run(&asm(src), &[], 10000);
        if is_range {
            assert_eq!(out.result, Err(VmError::Range), "{src}");
        } else {
            assert_ne!(out.result, Err(VmError::Range), "{src}");
        }
    }
    // Shifts at the edges.
    let out = run(&asm("-1 63 LSHIFT"), &[], 10000);
    assert_eq!(out.data_stack, vec![i(i64::MIN)]);
    let out = run(&asm("-9223372036854775808 100 RSHIFT"), &[], 10000);
    assert_eq!(out.data_stack, vec![i(-1)]);
    let out = run(&asm("5 100 RSHIFT"), &[], 10000);
    assert_eq!(out.data_stack, vec![Vec::<u8>::new()]);
    let out = run(&asm("0 100 LSHIFT"), &[], 10000);
    assert_eq!(out.data_stack, vec![Vec::<u8>::new()]);
}

/// Go: TestStackOps (representative cases).
#[test]
fn go_stack_ops() {
    expect_op(&[op::TOALTSTACK], &[&[1]], &[], 49998, 0);
    expect_op(&[op::DROP2], &[&[1], &[1]], &[], 50016, 0);
    expect_op(
        &[op::DUP2],
        &[&[2], &[1]],
        &[&[2], &[1], &[2], &[1]],
        49980,
        0,
    );
    expect_op(
        &[op::DUP3],
        &[&[3], &[2], &[1]],
        &[&[3], &[2], &[1], &[3], &[2], &[1]],
        49970,
        0,
    );
    expect_op(
        &[op::OVER2],
        &[&[4], &[3], &[2], &[1]],
        &[&[4], &[3], &[2], &[1], &[4], &[3]],
        49980,
        0,
    );
    expect_op(
        &[op::ROT2],
        &[&[6], &[5], &[4], &[3], &[2], &[1]],
        &[&[4], &[3], &[2], &[1], &[6], &[5]],
        49998,
        0,
    );
    expect_op(
        &[op::SWAP2],
        &[&[4], &[3], &[2], &[1]],
        &[&[2], &[1], &[4], &[3]],
        49998,
        0,
    );
    expect_op(&[op::IFDUP], &[&[1]], &[&[1], &[1]], 49990, 0);
    expect_op(&[op::IFDUP], &[&[]], &[&[]], 49999, 0);
    expect_op(&[op::DEPTH], &[&[1]], &[&[1], &[1]], 49990, 0);
    expect_op(&[op::DROP], &[&[1]], &[], 50008, 0);
    expect_op(&[op::DUP], &[&[1]], &[&[1], &[1]], 49990, 0);
    expect_op(&[op::NIP], &[&[2], &[1]], &[&[1]], 50008, 0);
    expect_op(&[op::OVER], &[&[2], &[1]], &[&[2], &[1], &[2]], 49990, 0);
    expect_op(
        &[op::PICK],
        &[&[3], &[2], &[1], &[2]],
        &[&[3], &[2], &[1], &[3]],
        49998,
        0,
    );
    expect_op_err(
        &[op::PICK],
        &[&[0xff, 0xff], &[2], &[1], &[2]],
        2,
        VmError::RunLimitExceeded,
    );
    expect_op(
        &[op::ROLL],
        &[&[3], &[2], &[1], &[2]],
        &[&[2], &[1], &[3]],
        50007,
        0,
    );
    expect_op(
        &[op::ROT],
        &[&[3], &[2], &[1]],
        &[&[2], &[1], &[3]],
        49998,
        0,
    );
    expect_op(&[op::SWAP], &[&[2], &[1]], &[&[1], &[2]], 49999, 0);
    expect_op(&[op::TUCK], &[&[2], &[1]], &[&[1], &[2], &[1]], 49990, 0);

    expect_op_err(&[op::FROMALTSTACK], &[], 50000, VmError::AltStackUnderflow);
    expect_op_err(
        &[op::PICK],
        &[&[3], &[2], &[1], &[3]],
        50000,
        VmError::DataStackUnderflow,
    );
    expect_op_err(&[op::PICK], &[&[1], &i(-1)], 50000, VmError::BadValue);
    expect_op_err(&[op::PICK], &[&[1], &i(i64::MAX)], 50000, VmError::BadValue);
    expect_op_err(
        &[op::ROLL],
        &[&[3], &[2], &[1], &[3]],
        50000,
        VmError::DataStackUnderflow,
    );
    expect_op_err(&[op::ROLL], &[&[1], &i(-1)], 50000, VmError::BadValue);
    expect_op_err(&[op::ROLL], &[&[1], &i(i64::MAX)], 50000, VmError::BadValue);
    // Every stack op underflows on an empty stack and runs out of gas with none (Go's loops).
    let ops = [
        op::DROP2,
        op::DUP2,
        op::DUP3,
        op::OVER2,
        op::ROT2,
        op::SWAP2,
        op::IFDUP,
        op::DROP,
        op::DUP,
        op::NIP,
        op::OVER,
        op::PICK,
        op::ROLL,
        op::ROT,
        op::SWAP,
        op::TUCK,
        op::TOALTSTACK,
    ];
    for o in ops {
        expect_op_err(&[o], &[], 50000, VmError::DataStackUnderflow);
        expect_op_err(&[o], &[], 0, VmError::RunLimitExceeded);
    }
    expect_op_err(&[op::DEPTH], &[], 0, VmError::RunLimitExceeded);
    expect_op_err(&[op::FROMALTSTACK], &[], 0, VmError::RunLimitExceeded);
}

/// Go: TestSpliceOps (representative cases).
#[test]
fn go_splice_ops() {
    expect_op(
        &[op::CAT],
        &[b"hello", b"world"],
        &[b"helloworld"],
        49986,
        -18,
    );
    expect_op(
        &[op::SUBSTR],
        &[b"helloworld", &[3], &[5]],
        &[b"lowor"],
        49991,
        -28,
    );
    expect_op(&[op::LEFT], &[b"helloworld", &[5]], &[b"hello"], 49991, -19);
    expect_op(
        &[op::RIGHT],
        &[b"helloworld", &[5]],
        &[b"world"],
        49991,
        -19,
    );
    expect_op(
        &[op::SIZE],
        &[b"helloworld"],
        &[b"helloworld", &[10]],
        49999,
        9,
    );
    expect_op(
        &[op::CATPUSHDATA],
        &[&[0xff], &[0xab, 0xcd]],
        &[&[0xff, 0x02, 0xab, 0xcd]],
        49993,
        -10,
    );

    expect_op_err(
        &[op::SUBSTR],
        &[b"helloworld", &[3], &i(-1)],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::SUBSTR],
        &[b"helloworld", &i(-1), &[5]],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::SUBSTR],
        &[b"helloworld", &[6], &[5]],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::SUBSTR],
        &[b"helloworld", &[3], &[5]],
        4,
        VmError::RunLimitExceeded,
    );
    expect_op_err(
        &[op::LEFT],
        &[b"helloworld", &i(-1)],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::LEFT],
        &[b"helloworld", &[11]],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::LEFT],
        &[b"helloworld", &[5]],
        4,
        VmError::RunLimitExceeded,
    );
    expect_op_err(
        &[op::RIGHT],
        &[b"helloworld", &i(-1)],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::RIGHT],
        &[b"helloworld", &[11]],
        50000,
        VmError::BadValue,
    );
    expect_op_err(
        &[op::RIGHT],
        &[b"helloworld", &[5]],
        4,
        VmError::RunLimitExceeded,
    );
    expect_op_err(
        &[op::CAT],
        &[b"hello", b"world"],
        4,
        VmError::RunLimitExceeded,
    );
    expect_op_err(
        &[op::CATPUSHDATA],
        &[&[0xff], &[0xab, 0xcd]],
        4,
        VmError::RunLimitExceeded,
    );
    for o in [
        op::CAT,
        op::SUBSTR,
        op::LEFT,
        op::RIGHT,
        op::SIZE,
        op::CATPUSHDATA,
    ] {
        expect_op_err(&[o], &[], 50000, VmError::DataStackUnderflow);
        expect_op_err(&[o], &[], 0, VmError::RunLimitExceeded);
    }
}

/// Go: TestBitwiseOps (representative cases).
#[test]
fn go_bitwise_ops() {
    expect_op(&[op::INVERT], &[&[0xff]], &[&[0x00]], 49998, 0);
    expect_op(&[op::INVERT], &[&[0xff, 0]], &[&[0, 0xff]], 49997, 0);
    expect_op(&[op::AND], &[&[0xff], &[0x80]], &[&[0x80]], 49998, -9);
    expect_op(
        &[op::AND],
        &[&[0xff], &[0x80, 0xff]],
        &[&[0x80]],
        49998,
        -10,
    );
    expect_op(&[op::OR], &[&[0xff], &[0x80]], &[&[0xff]], 49998, -9);
    expect_op(
        &[op::OR],
        &[&[0xff], &[0x80, 0x10]],
        &[&[0xff, 0x10]],
        49997,
        -9,
    );
    expect_op(&[op::XOR], &[&[0xff], &[0x80]], &[&[0x7f]], 49998, -9);
    expect_op(
        &[op::XOR],
        &[&[0xff], &[0x80, 0x10]],
        &[&[0x7f, 0x10]],
        49997,
        -9,
    );
    expect_op(&[op::EQUAL], &[&[0xff], &[0xff]], &[&[1]], 49998, -9);
    expect_op(&[op::EQUAL], &[&[0xff, 0], &[0xff]], &[&[]], 49998, -11);
    expect_op(&[op::EQUALVERIFY], &[&[0xff], &[0xff]], &[], 49998, -18);
    expect_op_err(
        &[op::EQUALVERIFY],
        &[&[0xff, 0], &[0xff]],
        50000,
        VmError::VerifyFailed,
    );
    for o in [
        op::INVERT,
        op::AND,
        op::OR,
        op::XOR,
        op::EQUAL,
        op::EQUALVERIFY,
    ] {
        expect_op_err(&[o], &[], 50000, VmError::DataStackUnderflow);
        expect_op_err(&[o], &[], 0, VmError::RunLimitExceeded);
    }
    expect_op_err(&[op::INVERT], &[&[0xff; 10]], 1, VmError::RunLimitExceeded);
}

/// Go: TestControlOps (every CHECKPREDICATE case, VERIFY, FAIL, JUMPs).
#[test]
fn go_control_ops() {
    expect_op(&[op::VERIFY], &[&[1]], &[], 49999, -9);
    expect_op(&[op::VERIFY], &[&[1, 1]], &[], 49999, -10);
    expect_op_err(&[op::VERIFY], &[&[]], 50000, VmError::VerifyFailed);
    expect_op_err(&[op::FAIL], &[], 50000, VmError::Return);
    // JUMP to 0x00000001 from a 5-byte program: lands on the address bytes.
    let out = op_case(&EmptyContext, &[op::JUMP, 0xff, 0, 0, 0], &[], 50000);
    assert_eq!(out.gas_left, 49999);

    let cp = [op::CHECKPREDICATE];
    expect_op(&cp, &[&[], &[op::TRUE], &[]], &[&[1]], 0, -49951);
    expect_op(&cp, &[&[], &[], &[]], &[&[]], 0, -49952);
    expect_op(&cp, &[&[], &[op::FAIL], &[]], &[&[]], 0, -49952);
    expect_op_err(&cp, &[&[], &[], &i(-1)], 50000, VmError::BadValue);
    expect_op_err(
        &cp,
        &[&[], &[], &i(50000)],
        50000,
        VmError::RunLimitExceeded,
    );
    expect_op(
        &cp,
        &[
            &[5],
            &[7],
            &[2],
            &[op::ADD, op::OP_1 + 11, op::NUMEQUAL],
            &[],
        ],
        &[&[1]],
        0,
        -49968,
    );
    // Stack underflow in the child (its DATA_12 is truncated) gives false, not an error.
    expect_op(
        &cp,
        &[&[5], &[7], &[1], &[op::ADD, 0x0c, op::NUMEQUAL], &[]],
        &[&[5], &[]],
        0,
        -49954,
    );
    for o in [op::CHECKPREDICATE, op::VERIFY, op::FAIL] {
        expect_op_err(&[o], &[], 0, VmError::RunLimitExceeded);
    }
}

#[test]
fn check_predicate_quirks() {
    // Expansion is reserved at top level but not inside a predicate: 0x50 is a NOP there.
    let ctx = TestContext {
        tx_version: Some(1),
        ..TestContext::default()
    };
    let top = run_with(&ctx, &[0x50, op::TRUE], &[], 10000);
    assert_eq!(top.result, Err(VmError::DisallowedOpcode { opcode: 0x50 }));
    let nested = asm("0 0x5051 0 CHECKPREDICATE");
    assert_eq!(run_with(&ctx, &nested, &[], 10000).result, Ok(()));

    // A failing predicate pushes false; the parent can go on.
    assert_eq!(
        run(&asm("0 0x6a 0 CHECKPREDICATE NOT"), &[], 10000).result,
        Ok(())
    );
    // A predicate that runs out of its own gas limit also just pushes false.
    assert_eq!(
        run(&asm("0 0x51 1 CHECKPREDICATE NOT"), &[], 10000).result,
        Ok(())
    );
    // n = -1 hands over the whole stack; the child sees 3 items.
    let prog = asm("7 8 9 -1 0x74539c 0 CHECKPREDICATE");
    let out = run(&prog, &[], 10000);
    assert_eq!(out.result, Ok(()));
    assert_eq!(out.data_stack, vec![vec![1]]);
    // n larger than the stack underflows in the parent.
    assert_eq!(
        run(&asm("7 5 0x51 0 CHECKPREDICATE"), &[], 10000).result,
        Err(VmError::DataStackUnderflow)
    );
    // Nested three deep: each level checks its child.
    let inner = asm("0 0x51 0 CHECKPREDICATE");
    let middle = {
        let mut b = Builder::new();
        b.add_int64(0)
            .add_data(&inner)
            .add_int64(0)
            .add_op(op::CHECKPREDICATE);
        b.build().unwrap()
    };
    let mut b = Builder::new();
    b.add_int64(0)
        .add_data(&middle)
        .add_int64(0)
        .add_op(op::CHECKPREDICATE);
    assert_eq!(run(&b.build().unwrap(), &[], 10000).result, Ok(()));
    // Deep self-recursion is bounded by gas, not by the native stack: each level copies the
    // predicate and spawns itself with all remaining gas.
    // predicate P: DUP 1 SWAP 0 CHECKPREDICATE (stack: P) -> child gets [P], runs P again.
    let p = [op::DUP, op::OP_1, op::SWAP, op::FALSE, op::CHECKPREDICATE];
    let mut b = Builder::new();
    b.add_data(&p)
        .add_op(op::DUP)
        .add_int64(1)
        .add_op(op::SWAP)
        .add_int64(0);
    b.add_op(op::CHECKPREDICATE).add_op(op::NOT);
    let out = run(&b.build().unwrap(), &[], 200_000);
    assert_eq!(
        out.result,
        Ok(()),
        "the innermost runs out of gas; every level pushes false"
    );
}

/// Go: TestPushdataBytes / TestPushdataInt64 / TestParseOp edges.
#[test]
fn go_pushdata_and_parse() {
    assert_eq!(push_data_bytes(&[]), vec![0x00]);
    assert_eq!(push_data_bytes(&[1]), vec![0x01, 1]);
    let d75 = vec![0x7; 75];
    assert_eq!(push_data_bytes(&d75)[0], 0x4b);
    let d76 = vec![0x7; 76];
    assert_eq!(&push_data_bytes(&d76)[..2], &[0x4c, 76]);
    let d256 = vec![0x7; 256];
    assert_eq!(&push_data_bytes(&d256)[..3], &[0x4d, 0, 1]);
    let d65536 = vec![0x7; 65536];
    assert_eq!(&push_data_bytes(&d65536)[..5], &[0x4e, 0, 0, 1, 0]);
    assert_eq!(push_int64(0), vec![0x00]);
    assert_eq!(push_int64(1), vec![0x51]);
    assert_eq!(push_int64(16), vec![0x60]);
    assert_eq!(push_int64(17), vec![0x01, 17]);
    assert_eq!(push_int64(-1), [vec![0x08], vec![0xff; 8]].concat());
    assert_eq!(push_int64(i64::MAX), [vec![0x08], i(i64::MAX)].concat());

    // Every push form round-trips through the VM.
    for data in [vec![], vec![1], d75, d76, d256] {
        let mut prog = push_data_bytes(&data);
        prog.push(op::TRUE);
        let out = run(&prog, &[], 100_000);
        assert_eq!(out.data_stack, vec![data, vec![1]]);
    }
    // 1NEGATE pushes -1.
    assert_eq!(run(&[op::NEGATE1], &[], 100).data_stack, vec![i(-1)]);

    // Truncated immediates.
    let short: [&[u8]; 9] = [
        &[0x01],
        &[0x4b, 0, 0],
        &[0x4c],
        &[0x4c, 2, 0],
        &[0x4d, 1],
        &[0x4d, 2, 0, 0],
        &[0x4e, 1, 0, 0],
        &[0x4e, 2, 0, 0, 0, 0],
        &[op::JUMP, 0, 0, 0],
    ];
    for prog in short {
        assert_eq!(
            run(prog, &[], 1000).result,
            Err(VmError::ShortProgram),
            "{prog:02x?}"
        );
    }
    assert_eq!(parse_op(&[0x51], 1), Err(VmError::ShortProgram));
    assert_eq!(
        run(&[0x4e, 0xff, 0xff, 0xff, 0xff], &[], 1000).result,
        Err(VmError::Overflow)
    );
    assert_eq!(
        run(&[0x4e, 0xfa, 0xff, 0xff, 0xff], &[], 1000).result,
        Err(VmError::ShortProgram)
    );
    let inst = parse_op(&[0x4c, 1, 9], 0).unwrap();
    assert_eq!((inst.op, inst.len, inst.data), (0x4c, 3, &[9u8][..]));
}

// ---------------------------------------------------------------------------------------------
// Crypto

/// Go: TestCryptoOps (hash figures).
#[test]
fn go_crypto_hashes() {
    // SHA256 of 1 byte: pop refund 9, cost 64, push 40 -> 50000 + 9 - 64 - 40.
    let out = op_case(&EmptyContext, &[op::SHA256], &[vec![1]], 50000);
    assert_eq!(out.gas_left, 49905);
    assert_eq!(
        hexs(&out.data_stack[0]),
        "4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a"
    );
    let out = op_case(&EmptyContext, &[op::SHA256], &[vec![0; 65]], 50000);
    assert_eq!(out.gas_left, 49968);
    let out = op_case(&EmptyContext, &[op::SHA3], &[vec![1]], 50000);
    assert_eq!(out.gas_left, 49905);
    assert_eq!(
        hexs(&out.data_stack[0]),
        "2767f15c8af2f2c7225d5273fdd683edc714110a987d1054697c348aed4e6cc7"
    );
    let out = op_case(&EmptyContext, &[op::SHA3], &[vec![0; 65]], 50000);
    assert_eq!(out.gas_left, 49968);
    // HASH160 is RIPEMD-160 alone: cost len + 64.
    let out = op_case(&EmptyContext, &[op::HASH160], &[b"abc".to_vec()], 50000);
    assert_eq!(
        hexs(&out.data_stack[0]),
        "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc"
    );
    assert_eq!(out.gas_left, 50000 + 11 - 67 - 28);
    for o in [op::SHA256, op::SHA3, op::HASH160] {
        expect_op_err(&[o], &[], 50000, VmError::DataStackUnderflow);
        expect_op_err(&[o], &[&[1]], 0, VmError::RunLimitExceeded);
    }
    expect_op_err(&[op::TXSIGHASH], &[], 50000, VmError::Context);
    let ctx = full_context();
    let out = op_case(&ctx, &[op::TXSIGHASH], &[], 50000);
    assert_eq!(out.gas_left, 50000 - 256 - 40);
    assert_eq!(out.data_stack, vec![vec![0x22; 32]]);
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key(n: u8) -> [u8; 32] {
    [n; 32]
}

#[test]
fn checksig() {
    let msg = [7u8; 32];
    let pk = key(1);
    let sig = fake_sign(&pk, &msg);
    let cs = [op::CHECKSIG];
    // Gas: 1024, refunds 72 + 40 + 40, push 9.
    expect_op(&cs, &[&sig, &msg, &pk], &[&[1]], 50000 - 1024, -152 + 9);
    expect_op(&cs, &[&sig, &msg, &key(2)], &[&[]], 50000 - 1024, -152 + 8);
    // Public key of the wrong size: false. Message of the wrong size: an error.
    expect_op(
        &cs,
        &[&sig, &msg, &pk[..31]],
        &[&[]],
        50000 - 1024,
        -151 + 8,
    );
    expect_op_err(&cs, &[&sig, &msg[..31], &pk], 50000, VmError::BadValue);
    expect_op_err(&cs, &[&msg, &pk], 50000, VmError::DataStackUnderflow);
    expect_op_err(&cs, &[&sig, &msg, &pk], 1023, VmError::RunLimitExceeded);
}

#[test]
fn checkmultisig() {
    let msg = [9u8; 32];
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let (s1, s2, s3) = (
        fake_sign(&k1, &msg),
        fake_sign(&k2, &msg),
        fake_sign(&k3, &msg),
    );
    let cms = [op::CHECKMULTISIG];
    let n = |x: i64| i(x);
    // 2-of-3 with sigs in key order: ok. Gas: 3 × 1024, pops deferred, push 9.
    let start = vec![
        s1.clone(),
        s2.clone(),
        msg.to_vec(),
        k1.to_vec(),
        k2.to_vec(),
        k3.to_vec(),
        n(2),
        n(3),
    ];
    let out = op_case(&EmptyContext, &cms, &start, 50000);
    assert_eq!(out.data_stack, vec![vec![1]]);
    assert_eq!(out.gas_left, 50000 - 3072 + stack_cost(&start) - 9);
    // Sigs out of key order fail (ordered matching).
    let swapped = vec![
        s2.clone(),
        s1.clone(),
        msg.to_vec(),
        k1.to_vec(),
        k2.to_vec(),
        k3.to_vec(),
        n(2),
        n(3),
    ];
    assert_eq!(
        op_case(&EmptyContext, &cms, &swapped, 50000).data_stack,
        vec![Vec::<u8>::new()]
    );
    // Skipping a key is fine: sigs for k1 and k3.
    let skip = vec![
        s1.clone(),
        s3.clone(),
        msg.to_vec(),
        k1.to_vec(),
        k2.to_vec(),
        k3.to_vec(),
        n(2),
        n(3),
    ];
    assert_eq!(
        op_case(&EmptyContext, &cms, &skip, 50000).data_stack,
        vec![vec![1]]
    );
    // The same signature twice cannot satisfy 2 keys.
    let dup = vec![
        s1.clone(),
        s1.clone(),
        msg.to_vec(),
        k1.to_vec(),
        k1.to_vec(),
        k3.to_vec(),
        n(2),
        n(3),
    ];
    assert_eq!(
        op_case(&EmptyContext, &cms, &dup, 50000).data_stack,
        vec![vec![1]],
        "k1 listed twice"
    );
    let dup = vec![
        s1.clone(),
        s1.clone(),
        msg.to_vec(),
        k1.to_vec(),
        k2.to_vec(),
        k3.to_vec(),
        n(2),
        n(3),
    ];
    assert_eq!(
        op_case(&EmptyContext, &cms, &dup, 50000).data_stack,
        vec![Vec::<u8>::new()]
    );
    // A bad public key length anywhere: false, after all pops.
    let bad_pk = vec![
        s1.clone(),
        msg.to_vec(),
        k1.to_vec(),
        k2[..31].to_vec(),
        n(1),
        n(2),
    ];
    assert_eq!(
        op_case(&EmptyContext, &cms, &bad_pk, 50000).data_stack,
        vec![Vec::<u8>::new()]
    );
    // Message of the wrong size: error.
    let bad_msg = vec![s1.clone(), msg[..31].to_vec(), k1.to_vec(), n(1), n(1)];
    assert_eq!(
        op_case(&EmptyContext, &cms, &bad_msg, 50000).result,
        Err(VmError::BadValue)
    );
    // Bad counts (Go: the CHECKMULTISIG error table).
    for (m, k) in [(-1, 1), (2, 1), (0, 1), (1, -1)] {
        let s = vec![s1.clone(), msg.to_vec(), k1.to_vec(), n(m), n(k)];
        assert_eq!(
            op_case(&EmptyContext, &cms, &s, 50000).result,
            Err(VmError::BadValue),
            "{m} {k}"
        );
    }
    let s = vec![msg.to_vec(), n(0), n(i64::MAX)];
    assert_eq!(
        op_case(&EmptyContext, &cms, &s, 50000).result,
        Err(VmError::BadValue)
    );
    // 0-of-0 is true.
    let s = vec![msg.to_vec(), n(0), n(0)];
    assert_eq!(
        op_case(&EmptyContext, &cms, &s, 50000).data_stack,
        vec![vec![1]]
    );
    // Not enough gas for the keys.
    let s = vec![s1.clone(), msg.to_vec(), k1.to_vec(), n(1), n(1)];
    assert_eq!(
        op_case(&EmptyContext, &cms, &s, 1023).result,
        Err(VmError::RunLimitExceeded)
    );
    // Underflow while popping keys.
    let s = vec![n(1), n(3)];
    assert_eq!(
        op_case(&EmptyContext, &cms, &s, 50000).result,
        Err(VmError::DataStackUnderflow)
    );
}

// ---------------------------------------------------------------------------------------------
// Introspection

/// Go: TestIntrospectionOps (representative cases).
#[test]
fn go_introspection_ops() {
    let ctx = full_context();
    let o = |code: &[u8], stack: &[Vec<u8>]| op_case(&ctx, code, stack, 50000);
    // CHECKOUTPUT: index amount asset version code.
    let args = vec![vec![], vec![5], vec![0x55; 32], vec![1], vec![0x51]];
    let out = o(&[op::CHECKOUTPUT], &args);
    assert_eq!(out.data_stack, vec![vec![1]]);
    assert_eq!(out.gas_left, 50000 - 16 + stack_cost(&args) - 9);
    let mut wrong = args.clone();
    wrong[1] = vec![6];
    assert_eq!(
        o(&[op::CHECKOUTPUT], &wrong).data_stack,
        vec![Vec::<u8>::new()]
    );
    let mut wrong = args.clone();
    wrong[0] = vec![1];
    assert_eq!(o(&[op::CHECKOUTPUT], &wrong).result, Err(VmError::BadValue));
    for at in [0, 1, 3] {
        let mut neg = args.clone();
        neg[at] = i(-1);
        assert_eq!(
            o(&[op::CHECKOUTPUT], &neg).result,
            Err(VmError::BadValue),
            "{at}"
        );
    }
    assert_eq!(
        op_case(&EmptyContext, &[op::CHECKOUTPUT], &args, 50000).result,
        Err(VmError::Context)
    );
    assert_eq!(
        o(&[op::CHECKOUTPUT], &args[1..]).result,
        Err(VmError::DataStackUnderflow)
    );
    assert_eq!(
        op_case(&ctx, &[op::CHECKOUTPUT], &args, 15).result,
        Err(VmError::RunLimitExceeded)
    );

    let out = o(&[op::ASSET], &[]);
    assert_eq!(
        (out.data_stack, out.gas_left),
        (vec![vec![0x55; 32]], 49959)
    );
    let out = o(&[op::AMOUNT], &[]);
    assert_eq!((out.data_stack, out.gas_left), (vec![vec![5]], 49990));
    let out = o(&[op::PROGRAM], &[]);
    assert_eq!(
        (out.data_stack, out.gas_left),
        (vec![vec![op::PROGRAM]], 49990)
    );
    let out = o(&[op::INDEX], &[]);
    assert_eq!((out.data_stack, out.gas_left), (vec![vec![]], 49991));
    let out = o(&[op::ENTRYID], &[]);
    assert_eq!(
        (out.data_stack, out.gas_left),
        (vec![vec![0x33; 32]], 49959)
    );
    let out = o(&[op::OUTPUTID], &[]);
    assert_eq!(
        (out.data_stack, out.gas_left),
        (vec![vec![0x44; 32]], 49959)
    );
    let out = o(&[op::BLOCKHEIGHT], &[]);
    assert_eq!((out.data_stack, out.gas_left), (vec![vec![100]], 49990));
    // Absent fields.
    for code in [
        op::ASSET,
        op::AMOUNT,
        op::INDEX,
        op::OUTPUTID,
        op::BLOCKHEIGHT,
    ] {
        assert_eq!(
            op_case(&EmptyContext, &[code], &[], 50000).result,
            Err(VmError::Context),
            "{code:02x}"
        );
        assert_eq!(
            op_case(&ctx, &[code], &[], 0).result,
            Err(VmError::RunLimitExceeded),
            "{code:02x}"
        );
    }
    // Absent entry ID pushes the empty string (Go's nil slice).
    let out = op_case(&EmptyContext, &[op::ENTRYID], &[], 50000);
    assert_eq!(out.data_stack, vec![Vec::<u8>::new()]);
    // PROGRAM inside a predicate still pushes the top-level program.
    let prog = asm("0 0xc4 0 CHECKPREDICATE");
    assert_eq!(run(&prog, &[], 10000).result, Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Expansion opcodes

#[test]
fn expansion_opcodes() {
    let reserved = TestContext {
        tx_version: Some(1),
        ..TestContext::default()
    };
    let free = TestContext {
        tx_version: Some(2),
        ..TestContext::default()
    };
    let mut count = 0;
    for o in 0..=255u8 {
        if !vm::is_expansion(o) {
            continue;
        }
        count += 1;
        let prog = [o, op::TRUE];
        assert_eq!(
            run_with(&reserved, &prog, &[], 100).result,
            Err(VmError::DisallowedOpcode { opcode: o })
        );
        let out = run_with(&free, &prog, &[], 100);
        assert_eq!((out.result, out.gas_left), (Ok(()), 89), "{o:02x}");
    }
    // 256 - 1 (FALSE) - 75 DATA - 3 PUSHDATA - 1NEGATE - 16 ints - 66 named ops.
    assert_eq!(count, 256 - 1 - 75 - 3 - 1 - 16 - 78);
}

// ---------------------------------------------------------------------------------------------
// Standard programs, end to end

fn ripemd160(data: &[u8]) -> [u8; 20] {
    ripemd::Ripemd160::digest(data).into()
}

#[test]
fn p2wpkh_end_to_end() {
    let ctx = full_context();
    let pk = key(0xab);
    let msg = ctx.sighash.unwrap().0;
    let sig = fake_sign(&pk, &msg);
    let control = p2wpkh_program(&ripemd160(&pk));
    assert_eq!(control.len(), 22);
    assert_eq!(&control[..2], &[0x00, 0x14]);
    assert!(vm::is_p2wpkh_script(&control));
    let prog = Program {
        vm_version: 1,
        code: &control,
    };
    // DUP 41, HASH160 84, DATA_20 29, EQUALVERIFY -35, TXSIGHASH 296, SWAP 1, CHECKSIG 881,
    // plus 112 for the two arguments.
    let left = verify(
        &ctx,
        &FakeVerifier,
        &prog,
        &[sig.clone(), pk.to_vec()],
        10000,
    );
    assert_eq!(left, Ok(10000 - 1409));
    // Wrong key, wrong signature.
    let other = key(0xac);
    assert_eq!(
        verify(
            &ctx,
            &FakeVerifier,
            &prog,
            &[sig.clone(), other.to_vec()],
            10000
        ),
        Err(VmError::VerifyFailed)
    );
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert_eq!(
        verify(&ctx, &FakeVerifier, &prog, &[bad, pk.to_vec()], 10000),
        Err(VmError::FalseVmResult)
    );
    // Run raw, the control program is just two pushes: anyone can spend.
    assert_eq!(
        verify_raw(&ctx, &FakeVerifier, &prog, &[], 10000),
        Ok(10000 - 2 - 8 - 28)
    );
    // Version 1 is standard-shaped but not converted.
    let mut v1 = control.clone();
    v1[0] = op::OP_1;
    let prog1 = Program {
        vm_version: 1,
        code: &v1,
    };
    assert_eq!(
        verify(&ctx, &FakeVerifier, &prog1, &[], 10000),
        Ok(10000 - 10 - 29)
    );
    // Not enough gas.
    assert_eq!(
        verify(&ctx, &FakeVerifier, &prog, &[sig, pk.to_vec()], 1408),
        Err(VmError::RunLimitExceeded)
    );
}

#[test]
fn p2wsh_multisig_end_to_end() {
    let ctx = full_context();
    let msg = ctx.sighash.unwrap().0;
    let keys = [key(1), key(2), key(3)];
    let script = multisig_program(&keys, 2).unwrap();
    let mut expected = vec![op::TXSIGHASH];
    for k in &keys {
        expected.push(0x20);
        expected.extend_from_slice(k);
    }
    expected.extend_from_slice(&[op::OP_1 + 1, op::OP_1 + 2, op::CHECKMULTISIG]);
    assert_eq!(script, expected);
    let control = p2wsh_program(&sha3(&script).0);
    assert!(vm::is_p2wsh_script(&control));
    let prog = Program {
        vm_version: 1,
        code: &control,
    };
    let s1 = fake_sign(&keys[0], &msg);
    let s3 = fake_sign(&keys[2], &msg);
    let left = verify(
        &ctx,
        &FakeVerifier,
        &prog,
        &[s1.clone(), s3.clone(), script.clone()],
        200_000,
    );
    let left = left.expect("2-of-3 spends");
    assert!(left > 200_000 - 5000, "{left}");
    // One signature short: the predicate fails, which makes CHECKPREDICATE push false.
    assert_eq!(
        verify(
            &ctx,
            &FakeVerifier,
            &prog,
            &[s1.clone(), script.clone()],
            200_000
        ),
        Err(VmError::FalseVmResult)
    );
    // Wrong order.
    assert_eq!(
        verify(
            &ctx,
            &FakeVerifier,
            &prog,
            &[s3.clone(), s1.clone(), script.clone()],
            200_000
        ),
        Err(VmError::FalseVmResult)
    );
    // Wrong script.
    let other = multisig_program(&keys, 1).unwrap();
    assert_eq!(
        verify(&ctx, &FakeVerifier, &prog, &[s1.clone(), other], 200_000),
        Err(VmError::VerifyFailed)
    );
    // The height-locked variant.
    let locked = multisig_program_with_height(&keys[..1], 1, 150).unwrap();
    assert_eq!(
        &locked[..5],
        &[0x01, 150, op::BLOCKHEIGHT, op::GREATERTHAN, op::VERIFY]
    );
    let control = p2wsh_program(&sha3(&locked).0);
    let prog = Program {
        vm_version: 1,
        code: &control,
    };
    assert!(verify(
        &ctx,
        &FakeVerifier,
        &prog,
        &[s1.clone(), locked.clone()],
        200_000
    )
    .is_ok());
    let late = TestContext {
        block_height: Some(150),
        ..ctx.clone()
    };
    assert_eq!(
        verify(&late, &FakeVerifier, &prog, &[s1, locked], 200_000),
        Err(VmError::FalseVmResult)
    );
    assert!(multisig_program(&keys, 4).is_err());
    assert!(multisig_program(&keys, 0).is_err());
    assert!(multisig_program(&[], 0).is_ok());
}

#[test]
fn builder_jumps_and_standard_shapes() {
    let mut b = Builder::new();
    let t = b.new_jump_target();
    b.add_jump(t);
    assert!(b.build().is_err());
    b.add_op(op::FAIL).set_jump_target(t).add_op(op::TRUE);
    let prog = b.build().unwrap();
    assert_eq!(prog, vec![op::JUMP, 6, 0, 0, 0, op::FAIL, op::TRUE]);
    assert_eq!(run(&prog, &[], 100).result, Ok(()));
    assert!(vm::is_straightforward(&[op::TRUE]));
    assert!(vm::is_straightforward(&[op::FAIL]));
    assert!(!vm::is_straightforward(&[op::FAIL, 0x00]));
    assert!(!vm::is_p2wpkh_script(&[0x00, 0x14]));
    // A PUSHDATA1 of 20 bytes is not DATA_20.
    let mut p = vec![0x00, 0x4c, 20];
    p.extend_from_slice(&[0; 20]);
    assert!(!vm::is_p2wpkh_script(&p));
    assert_eq!(as_int64(&i(-5)), Ok(-5));
}

// ---------------------------------------------------------------------------------------------
// Fuzz-like properties

fn arb_program() -> impl Strategy<Value = Vec<u8>> {
    // Half the bytes from a pool of real opcodes so programs get somewhere.
    let pool: Vec<u8> = (0u8..=255)
        .filter(|&o| !vm::is_expansion(o) && !(0x05..=0x4b).contains(&o))
        .collect();
    prop::collection::vec(prop_oneof![any::<u8>(), prop::sample::select(pool)], 0..48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_programs_never_panic(
        code in arb_program(),
        args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 0..6),
        gas in 0i64..20_000,
        reserved in any::<bool>(),
    ) {
        let ctx = TestContext { tx_version: Some(if reserved { 1 } else { 2 }), ..full_context() };
        let out = run_with(&ctx, &code, &args, gas);
        prop_assert!(out.gas_left >= 0);
        prop_assert!(out.gas_left <= gas + stack_cost(&out.data_stack) + 64 * 1024);
        // And through the conversion path.
        let _ = verify(&ctx, &FakeVerifier, &Program { vm_version: 1, code: &code }, &args, gas);
    }

    #[test]
    fn int64_encoding_round_trips(n in any::<i64>()) {
        prop_assert_eq!(as_int64(&int64_bytes(n)), Ok(n));
        prop_assert!(int64_bytes(n).last() != Some(&0));
    }
}
