// One chain step for every chain of the batch, laid out for CPU adapters (lavapipe). There,
// invocations run as SIMD lanes; a load whose address differs between lanes costs a loop
// over the lanes, while a load whose address is the same for the whole workgroup costs one
// scalar load, and workgroup memory plus barriers buy nothing.
//
// Grid: x = strip of STRIP_ROWS rows, z = chain. Invocation `lid` owns columns 4·lid..4·lid+3
// of every row of the strip (one packed state word per row). Per K word it loads its four
// matrix words once and each strip row's A word (a workgroup-uniform address), then does
// 4·STRIP_ROWS dot products.

fn quad(acc: Acc, a: Operand, m0: Operand, m1: Operand, m2: Operand, m3: Operand) -> Acc {
    return acc + Acc(dot4(a, m0), dot4(a, m1), dot4(a, m2), dot4(a, m3));
}

fn a_at(i: u32) -> Operand {
    return a_operand(state_in[i]);
}

@compute @workgroup_size(ROW_WORDS)
fn chain_step_strip(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let chain = wg.z;
    let row0 = wg.x * STRIP_ROWS;
    let a_base = chain * MATRIX_WORDS + row0 * ROW_WORDS;
    let m_base = matrix_index(chain) * MATRIX_WORDS + 4u * lid * ROW_WORDS;
    var r0 = Acc();
    var r1 = Acc();
    var r2 = Acc();
    var r3 = Acc();
    var r4 = Acc();
    var r5 = Acc();
    var r6 = Acc();
    var r7 = Acc();
    for (var k = 0u; k < ROW_WORDS; k += 1u) {
        let m0 = m_operand(m_base + k);
        let m1 = m_operand(m_base + ROW_WORDS + k);
        let m2 = m_operand(m_base + 2u * ROW_WORDS + k);
        let m3 = m_operand(m_base + 3u * ROW_WORDS + k);
        let a = a_base + k;
        r0 = quad(r0, a_at(a), m0, m1, m2, m3);
        r1 = quad(r1, a_at(a + ROW_WORDS), m0, m1, m2, m3);
        r2 = quad(r2, a_at(a + 2u * ROW_WORDS), m0, m1, m2, m3);
        r3 = quad(r3, a_at(a + 3u * ROW_WORDS), m0, m1, m2, m3);
        r4 = quad(r4, a_at(a + 4u * ROW_WORDS), m0, m1, m2, m3);
        r5 = quad(r5, a_at(a + 5u * ROW_WORDS), m0, m1, m2, m3);
        r6 = quad(r6, a_at(a + 6u * ROW_WORDS), m0, m1, m2, m3);
        r7 = quad(r7, a_at(a + 7u * ROW_WORDS), m0, m1, m2, m3);
    }
    let out = chain * MATRIX_WORDS + row0 * ROW_WORDS + lid;
    state_out[out] = reduce8_pack(settle(r0));
    state_out[out + ROW_WORDS] = reduce8_pack(settle(r1));
    state_out[out + 2u * ROW_WORDS] = reduce8_pack(settle(r2));
    state_out[out + 3u * ROW_WORDS] = reduce8_pack(settle(r3));
    state_out[out + 4u * ROW_WORDS] = reduce8_pack(settle(r4));
    state_out[out + 5u * ROW_WORDS] = reduce8_pack(settle(r5));
    state_out[out + 6u * ROW_WORDS] = reduce8_pack(settle(r6));
    state_out[out + 7u * ROW_WORDS] = reduce8_pack(settle(r7));
}
