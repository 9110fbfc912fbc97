// One chain step for every chain of the batch: A ← reduce8(A · Mᵀ) (spec §3), in the tiled
// layout for GPUs.
//
// Grid: x = column tile, y = row tile, z = chain. A workgroup owns a TILE×TILE output tile;
// its WG_SIZE = 8×8 invocations each own an 8×8 block: rows 4·ty + {0..3} and
// TILE/2 + 4·ty + {0..3}, columns likewise with tx. Four adjacent columns pack into one state
// word; the two halves keep workgroup-memory reads on distinct banks. K runs in chunks of
// K_WORDS packed words (four K values each) staged in workgroup memory, rows padded by one
// element.
//
// The kernel prelude defines the element and operand types and `stage_a`, `a_operand`,
// `m_elem`, `m_operand`, `operand`, `dot4`, `settle`: int8 with `dot4I8Packed`, int8 unpacked to i32, or f16
// operands with f32 products.

const PAD: u32 = K_WORDS + 1u;
const HALF: u32 = TILE / 2u;
const THREADS_X: u32 = HALF / 4u;

var<workgroup> a_tile: array<Elem, TILE * PAD>;
var<workgroup> m_tile: array<Elem, TILE * PAD>;

struct Pair {
    lo: Acc,
    hi: Acc,
}

// One output row of the block: columns 4·tx.. (lo) and HALF + 4·tx.. (hi).
fn row(acc: Pair, a: Operand, m0: Operand, m1: Operand, m2: Operand, m3: Operand,
       m4: Operand, m5: Operand, m6: Operand, m7: Operand) -> Pair {
    return Pair(
        acc.lo + Acc(dot4(a, m0), dot4(a, m1), dot4(a, m2), dot4(a, m3)),
        acc.hi + Acc(dot4(a, m4), dot4(a, m5), dot4(a, m6), dot4(a, m7)),
    );
}

fn store_row(base: u32, acc: Pair) {
    state_out[base] = reduce8_pack(settle(acc.lo));
    state_out[base + HALF / 4u] = reduce8_pack(settle(acc.hi));
}

@compute @workgroup_size(WG_SIZE)
fn chain_step(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let chain = wg.z;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let a_base = chain * MATRIX_WORDS + row0 * ROW_WORDS;
    let m_base = matrix_index(chain) * MATRIX_WORDS + col0 * ROW_WORDS;
    let tx = lid % THREADS_X;
    let ty = lid / THREADS_X;
    let ra0 = 4u * ty * PAD;
    let ra1 = (HALF + 4u * ty) * PAD;
    let rm0 = 4u * tx * PAD;
    let rm1 = (HALF + 4u * tx) * PAD;

    var r0 = Pair(Acc(), Acc());
    var r1 = Pair(Acc(), Acc());
    var r2 = Pair(Acc(), Acc());
    var r3 = Pair(Acc(), Acc());
    var r4 = Pair(Acc(), Acc());
    var r5 = Pair(Acc(), Acc());
    var r6 = Pair(Acc(), Acc());
    var r7 = Pair(Acc(), Acc());
    for (var k0 = 0u; k0 < ROW_WORDS; k0 += K_WORDS) {
        for (var i = lid; i < TILE * K_WORDS; i += WG_SIZE) {
            let r = i / K_WORDS;
            let k = i % K_WORDS;
            a_tile[r * PAD + k] = stage_a(state_in[a_base + r * ROW_WORDS + k0 + k]);
            m_tile[r * PAD + k] = m_elem(m_base + r * ROW_WORDS + k0 + k);
        }
        workgroupBarrier();
        for (var k = 0u; k < K_WORDS; k += 1u) {
            let m0 = operand(m_tile[rm0 + k]);
            let m1 = operand(m_tile[rm0 + PAD + k]);
            let m2 = operand(m_tile[rm0 + 2u * PAD + k]);
            let m3 = operand(m_tile[rm0 + 3u * PAD + k]);
            let m4 = operand(m_tile[rm1 + k]);
            let m5 = operand(m_tile[rm1 + PAD + k]);
            let m6 = operand(m_tile[rm1 + 2u * PAD + k]);
            let m7 = operand(m_tile[rm1 + 3u * PAD + k]);
            r0 = row(r0, operand(a_tile[ra0 + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r1 = row(r1, operand(a_tile[ra0 + PAD + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r2 = row(r2, operand(a_tile[ra0 + 2u * PAD + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r3 = row(r3, operand(a_tile[ra0 + 3u * PAD + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r4 = row(r4, operand(a_tile[ra1 + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r5 = row(r5, operand(a_tile[ra1 + PAD + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r6 = row(r6, operand(a_tile[ra1 + 2u * PAD + k]), m0, m1, m2, m3, m4, m5, m6, m7);
            r7 = row(r7, operand(a_tile[ra1 + 3u * PAD + k]), m0, m1, m2, m3, m4, m5, m6, m7);
        }
        workgroupBarrier();
    }

    let out0 = chain * MATRIX_WORDS + (row0 + 4u * ty) * ROW_WORDS + col0 / 4u + tx;
    let out1 = out0 + HALF * ROW_WORDS;
    store_row(out0, r0);
    store_row(out0 + ROW_WORDS, r1);
    store_row(out0 + 2u * ROW_WORDS, r2);
    store_row(out0 + 3u * ROW_WORDS, r3);
    store_row(out1, r4);
    store_row(out1 + ROW_WORDS, r5);
    store_row(out1 + 2u * ROW_WORDS, r6);
    store_row(out1 + 3u * ROW_WORDS, r7);
}
