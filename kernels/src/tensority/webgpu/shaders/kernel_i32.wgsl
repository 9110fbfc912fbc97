// int8 operands packed four to a word, sign-extended once per register load and multiplied as
// i32: the fallback without the packed dot product. Accumulation in i32 is exact.
alias Operand = vec4<i32>;
alias Acc = vec4<i32>;

@group(1) @binding(0) var<storage, read> mats: array<u32>;

// Matrix element i as an operand (strip layout).
fn m_operand(i: u32) -> Operand {
    return operand(mats[i]);
}

// A chain-state word as an operand, without workgroup staging (strip layout).
fn a_operand(w: u32) -> Operand {
    return unpack_i8(w);
}

fn operand(e: u32) -> Operand {
    return unpack_i8(e);
}

fn dot4(a: Operand, m: Operand) -> i32 {
    return dot(a, m);
}

fn settle(acc: Acc) -> vec4<i32> {
    return acc;
}
