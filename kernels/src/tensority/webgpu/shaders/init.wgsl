// A = I for every chain. Grid: x covers the MATRIX_WORDS words of a chain, y = chain.
@compute @workgroup_size(INIT_WG_SIZE)
fn init_identity(@builtin(global_invocation_id) gid: vec3<u32>) {
    let w = gid.x;
    let r = w / ROW_WORDS;
    var v = 0u;
    if (w % ROW_WORDS == r / 4u) {
        v = 1u << (8u * (r % 4u));
    }
    state_out[gid.y * MATRIX_WORDS + w] = v;
}
