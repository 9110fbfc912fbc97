// Tiled-step prelude for the exact float path: f32 products and sums of int8 values (from the
// int8 chain state) and f16 matrix values (binary16, four K-consecutive values per 8 bytes).
// Every operand is converted to f32 once, when it is staged: a K unit is one f32, the
// workgroup tiles hold f32, and the inner loop is plain `fma`. Each partial sum is an integer
// below 2^24, so nothing rounds in any order, and the f32 sum converts to i32 exactly.
alias TElem = f32;
alias Acc = vec4<f32>;
// Eight int8 values of an A row (two packed words).
alias AUnit = vec2<u32>;
// Eight binary16 values of an M row.
alias MUnit = vec4<u32>;

@group(0) @binding(0) var<storage, read> state_in: array<vec2<u32>>;
@group(1) @binding(0) var<storage, read> mats: array<vec4<u32>>;

fn load_a(i: u32) -> AUnit {
    return state_in[i];
}

fn load_m(i: u32) -> MUnit {
    return mats[i];
}

// The eight K units of `u` into tile entries i, i + A_KSTRIDE, … (component `lane`).
fn put_a(i: u32, lane: u32, u: AUnit) {
    let lo = vec4<f32>(unpack_i8(u.x));
    let hi = vec4<f32>(unpack_i8(u.y));
    a_tile[i][lane] = lo.x;
    a_tile[i + A_KSTRIDE][lane] = lo.y;
    a_tile[i + 2u * A_KSTRIDE][lane] = lo.z;
    a_tile[i + 3u * A_KSTRIDE][lane] = lo.w;
    a_tile[i + 4u * A_KSTRIDE][lane] = hi.x;
    a_tile[i + 5u * A_KSTRIDE][lane] = hi.y;
    a_tile[i + 6u * A_KSTRIDE][lane] = hi.z;
    a_tile[i + 7u * A_KSTRIDE][lane] = hi.w;
}

// unpack2x16float is exact for every binary16 value (low half first).
fn put_m(i: u32, lane: u32, u: MUnit) {
    let h0 = unpack2x16float(u.x);
    let h1 = unpack2x16float(u.y);
    let h2 = unpack2x16float(u.z);
    let h3 = unpack2x16float(u.w);
    m_tile[i][lane] = h0.x;
    m_tile[i + M_KSTRIDE][lane] = h0.y;
    m_tile[i + 2u * M_KSTRIDE][lane] = h1.x;
    m_tile[i + 3u * M_KSTRIDE][lane] = h1.y;
    m_tile[i + 4u * M_KSTRIDE][lane] = h2.x;
    m_tile[i + 5u * M_KSTRIDE][lane] = h2.y;
    m_tile[i + 6u * M_KSTRIDE][lane] = h3.x;
    m_tile[i + 7u * M_KSTRIDE][lane] = h3.y;
}

// acc[j] += a · m[j] for one K value and four output columns.
fn mac4(acc: Acc, a: TElem, m: vec4<TElem>) -> Acc {
    return fma(vec4<f32>(a), m, acc);
}

fn settle(acc: Acc) -> vec4<i32> {
    return vec4<i32>(acc);
}
