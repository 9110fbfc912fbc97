// Bindings and helpers of the tiled step module (GPUs). It is a module of its own: its operand
// bindings are typed in the load units of the kernel prelude (vec4<u32> or vec2<u32>) instead of
// single words, and it is compiled without wgpu's injected bounds checks and loop counters (the
// SAFETY note in context.rs argues that every index stays in range; tiled.rs tests the sizes).
//
// The host prepends the constants (SIDE, ROW_WORDS, MATRIX_WORDS, SEQ_LEN, the tile shape and
// the staging plan). The layout of a chain state is that of common.wgsl: 256×256 int8,
// row-major, 4 int8 per u32 along the row, chain z at word z·MATRIX_WORDS.

struct StepParams {
    index: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Binding 0 (state_in, read) and group 1 (mats) are declared by the kernel prelude.
@group(0) @binding(1) var<storage, read_write> state_out: array<u32>;
// Matrix indices: byte 32·z + t is the index chain z uses at step t (mod 32).
@group(0) @binding(2) var<storage, read> seqs: array<u32>;
@group(0) @binding(3) var<uniform> step: StepParams;

// The matrix chain `chain` multiplies by at the current step.
fn matrix_index(chain: u32) -> u32 {
    let pos = chain * SEQ_LEN + step.index % SEQ_LEN;
    return (seqs[pos / 4u] >> (8u * (pos % 4u))) & 0xffu;
}

// Sign-extends the four int8 lanes of a packed word (byte 0 → x).
fn unpack_i8(w: u32) -> vec4<i32> {
    return (vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

// reduce8 (spec §3.1) of four sums, packed into one state word: byte 0 of
// (bits 0..7) + (bits 8..15) is (lo + hi) mod 256, and a logical shift has the same bits 8..15
// as the arithmetic one, so u32 arithmetic is exact.
fn reduce8_pack(v: vec4<i32>) -> u32 {
    let u = bitcast<vec4<u32>>(v);
    let b = (u + (u >> vec4<u32>(8u))) & vec4<u32>(0xffu);
    return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}
