// Tiled-step prelude for int8 operands (`dot4I8Packed` and the i32 fallback). A K unit is one
// packed word (four K values, byte 0 first); the workgroup tiles hold words, and global memory
// is read four words (16 bytes) at a time. The host appends `mac4` (the packed dot product or
// the unpack-and-multiply fallback). Accumulation in i32 is exact: |P| ≤ 2^22.
alias TElem = u32;
alias Acc = vec4<i32>;
alias AUnit = vec4<u32>;
alias MUnit = vec4<u32>;

@group(0) @binding(0) var<storage, read> state_in: array<vec4<u32>>;
@group(1) @binding(0) var<storage, read> mats: array<vec4<u32>>;

fn load_a(i: u32) -> AUnit {
    return state_in[i];
}

fn load_m(i: u32) -> MUnit {
    return mats[i];
}

// The four K units of `u` into tile entries i, i + A_KSTRIDE, … (component `lane`).
fn put_a(i: u32, lane: u32, u: AUnit) {
    a_tile[i][lane] = u.x;
    a_tile[i + A_KSTRIDE][lane] = u.y;
    a_tile[i + 2u * A_KSTRIDE][lane] = u.z;
    a_tile[i + 3u * A_KSTRIDE][lane] = u.w;
}

fn put_m(i: u32, lane: u32, u: MUnit) {
    m_tile[i][lane] = u.x;
    m_tile[i + M_KSTRIDE][lane] = u.y;
    m_tile[i + 2u * M_KSTRIDE][lane] = u.z;
    m_tile[i + 3u * M_KSTRIDE][lane] = u.w;
}

fn settle(acc: Acc) -> vec4<i32> {
    return acc;
}
