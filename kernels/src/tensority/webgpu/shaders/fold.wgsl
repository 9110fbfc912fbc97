// Sum of the 4 chains of hash h mod 256, then the FNV fold (spec §4) down to 64 words.
// One workgroup per hash, one invocation per column word j.
//
// W[r][j] packs S[r][j + 64b] into byte b. The fold pairs row r with r + k/2 at each level,
// which is a left-to-right binary tree over the rows taken in 8-bit bit-reversed order, so a
// binary-counter stack of depth 9 replaces the 256-entry working array.
@compute @workgroup_size(ROW_WORDS)
fn fold_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) j: u32) {
    let h = wg.x;
    let shift = 8u * (j % 4u);
    var stack: array<u32, 9>;
    var depth = 0u;
    for (var i = 0u; i < SIDE; i += 1u) {
        let r = reverseBits(i) >> 24u;
        var w = 0u;
        for (var b = 0u; b < 4u; b += 1u) {
            // Column j + 64b lives in word (j + 64b) / 4 = j/4 + 16b, byte j % 4.
            let word = r * ROW_WORDS + j / 4u + (ROW_WORDS / 4u) * b;
            var s = 0u;
            for (var k = 0u; k < 4u; k += 1u) {
                s += (state_in[(4u * h + k) * MATRIX_WORDS + word] >> shift) & 0xffu;
            }
            w |= (s & 0xffu) << (8u * b);
        }
        // Leaf i merges with as many finished subtrees as i has trailing one bits.
        var n = i;
        while ((n & 1u) == 1u) {
            depth -= 1u;
            w = (stack[depth] * 0x01000193u) ^ w;
            n >>= 1u;
        }
        stack[depth] = w;
        depth += 1u;
    }
    folded[h * ROW_WORDS + j] = stack[0];
}
