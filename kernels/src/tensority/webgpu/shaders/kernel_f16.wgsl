// The exact float path: operands stored as f16 (every int8 value is exact in f16), every
// product and the accumulation in f32 (a product of two int8 values is not exact in f16; in
// f32 each partial sum is an integer below 2^24, so nothing rounds in any order). The f32 sum
// converts to i32 exactly before reduce8. The chain state between steps stays packed int8
// (exact, a quarter of the f16 size): widened straight to f32 (this strip
// prelude; the tiled step's is tiled_f16.wgsl).
//
// Matrices are binary16, little-endian, four K-consecutive values per 8 bytes, so the index of
// those 8 bytes equals the packed-word index of the int8 layout. They are read as two u32 and
// widened with `unpack2x16float` (exact): on lavapipe a load of four 16-bit lanes costs twice
// as much, and naga has no u32 → vec2<f16> bitcast.
alias Operand = vec4<f32>;
alias Acc = vec4<f32>;

@group(1) @binding(0) var<storage, read> mats: array<vec2<u32>>;

// Matrix element i as an operand (strip layout).
fn m_operand(i: u32) -> Operand {
    let w = mats[i];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

// A chain-state word as an operand, without workgroup staging (strip layout).
fn a_operand(w: u32) -> Operand {
    return vec4<f32>(unpack_i8(w));
}

fn dot4(a: Operand, m: Operand) -> f32 {
    return dot(a, m);
}

fn settle(acc: Acc) -> vec4<i32> {
    return vec4<i32>(acc);
}
