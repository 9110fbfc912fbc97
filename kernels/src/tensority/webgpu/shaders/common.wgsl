// Bindings and helpers shared by the init, fold and strip-step pipelines (the tiled step is a
// module of its own: tiled_common.wgsl). The host prepends the constants (SIDE, ROW_WORDS,
// MATRIX_WORDS, SEQ_LEN, INIT_WG_SIZE, STRIP_ROWS) from the Rust side, so dispatch sizes and
// shader sizes come from one place.
//
// Layout of a chain state: 256×256 int8, row-major, 4 int8 per u32 along the row
// (byte c%4 of word 64·r + c/4 is A[r][c], two's complement, little-endian byte order).
// Chain z of the batch starts at word z·MATRIX_WORDS. Chains 4h..4h+3 belong to hash h.

struct StepParams {
    index: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> state_in: array<u32>;
@group(0) @binding(1) var<storage, read_write> state_out: array<u32>;
// Matrix indices: byte 32·z + t is the index chain z uses at step t (mod 32).
@group(0) @binding(2) var<storage, read> seqs: array<u32>;
@group(0) @binding(3) var<uniform> step: StepParams;
// 64 folded words per hash (spec §4), SHA3 on the host.
@group(0) @binding(4) var<storage, read_write> folded: array<u32>;

// The matrix chain `chain` multiplies by at the current step.
fn matrix_index(chain: u32) -> u32 {
    let pos = chain * SEQ_LEN + step.index % SEQ_LEN;
    return (seqs[pos / 4u] >> (8u * (pos % 4u))) & 0xffu;
}

// Sign-extends the four int8 lanes of a packed word (byte 0 → x).
fn unpack_i8(w: u32) -> vec4<i32> {
    return (vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

// reduce8 (spec §3.1) of four sums, packed into one state word: (lo byte + next byte) mod 256.
// Bits 8..15 are the same after an arithmetic or a logical shift, so u32 arithmetic is exact.
fn reduce8_pack(v: vec4<i32>) -> u32 {
    let u = bitcast<vec4<u32>>(v);
    let b = ((u & vec4<u32>(0xffu)) + ((u >> vec4<u32>(8u)) & vec4<u32>(0xffu))) & vec4<u32>(0xffu);
    return b.x | (b.y << 8u) | (b.z << 16u) | (b.w << 24u);
}
