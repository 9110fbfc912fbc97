// int8 operands packed four to a word; one signed 4×int8 dot product per call (SPIR-V
// OpSDot where the device has it). Accumulation in i32 is exact: |P| ≤ 2^22.
alias Operand = u32;
alias Acc = vec4<i32>;

@group(1) @binding(0) var<storage, read> mats: array<u32>;

// Matrix element i as an operand (strip layout).
fn m_operand(i: u32) -> Operand {
    return operand(mats[i]);
}

// A chain-state word as an operand, without workgroup staging (strip layout).
fn a_operand(w: u32) -> Operand {
    return w;
}

fn operand(e: u32) -> Operand {
    return e;
}

fn dot4(a: Operand, m: Operand) -> i32 {
    return dot4I8Packed(a, m);
}

fn settle(acc: Acc) -> vec4<i32> {
    return acc;
}
