// Tensority on CUDA, compiled at run time by NVRTC (see mod.rs for the host side and the
// layouts). Three kernels:
//   tensority_chains_mma   one CTA per chain; int8 tensor cores (mma.sync m16n8k32 s8*s8->s32);
//                          the chain state lives in registers for all 64 products.
//   tensority_chains_wgmma one CTA per chain; Hopper warpgroup MMA (wgmma, sm_90a), A from
//                          registers, B from shared memory.
//   tensority_chains_dp4a  one CTA per chain; one row per thread with __dp4a (sm_61+).
//   tensority_fold         per hash: the 4-chain byte sum mod 256 and the FNV fold to 64 words.
//
// Matrix index of step t of chain k: seqs[32*k + (t & 31)].

typedef unsigned char u8;
typedef unsigned int u32;

#define SIDE 256
#define MAT_BYTES 65536
// Shared-memory row pitch of a staged matrix: 256 bytes + 64 of padding, so that the eight
// rows a quarter-warp reads with 16-byte loads fall in distinct banks.
#define ROW_PITCH 320
#define STAGE_BYTES (SIDE * ROW_PITCH)

// reduce8 (spec 3.1): (bits 0..7 + bits 8..15) mod 256 of the two's-complement value.
__device__ __forceinline__ u32 reduce8(int v) {
    u32 u = (u32)v;
    return (u + (u >> 8)) & 0xffu;
}

__device__ __forceinline__ u32 pack4(int a, int b, int c, int d) {
    return reduce8(a) | (reduce8(b) << 8) | (reduce8(c) << 16) | (reduce8(d) << 24);
}

// ---------------------------------------------------------------------------------------------
// Tensor-core chain kernel.
//
// Warp w of the 8 owns rows 32w..32w+31 as two 16-row m-tiles. Lane = 4g + q. For m-tile mt
// and k-tile kt (32 columns), the A fragment of mma.m16n8k32 is four registers; register v
// holds row (32w + 16mt + g + 8(v&1)) at fragment slots 16(v>>1) + 4q + e (byte e). Slot s of
// k-tile kt stands for column 32kt + pi(s), pi(16u + 4q + e) = 16u + 2q + (e&1) + 8(e>>1):
// exactly the columns the accumulator layout leaves in this thread after the previous product,
// so reduce8 + packing turns accumulators into the next A fragment with no data movement. The
// seed matrices are pre-permuted on the host the same way along K (see mod.rs), so the sum
// over K pairs matching columns.

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
__device__ __forceinline__ void mma_s8(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void cp_async16(u32 smem_addr, const void* gptr) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr), "l"(gptr));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// Stages one permuted 64 KiB matrix into shared memory (16-byte chunks, padded rows).
__device__ __forceinline__ void stage_matrix(u8* stage, const u8* __restrict__ mat) {
    u32 base = (u32)__cvta_generic_to_shared(stage);
    #pragma unroll
    for (int i = 0; i < 16; i++) {
        int chunk = threadIdx.x + 256 * i;  // 0..4095
        int row = chunk >> 4, col = chunk & 15;
        cp_async16(base + row * ROW_PITCH + col * 16, mat + chunk * 16);
    }
}

// The fragment column (0..255) that byte e of register v of k-tile kt stands for.
__device__ __forceinline__ int frag_col(int kt, int v, int q, int e) {
    return 32 * kt + 16 * (v >> 1) + 2 * q + (e & 1) + 8 * (e >> 1);
}

// mats: permuted matrices (64 KiB each); seqs: 32 indices per chain; init: row-major initial
// states (64 KiB per chain) or null for the identity; out: row-major final states.
extern "C" __global__ void __launch_bounds__(256, 1)
tensority_chains_mma(const u8* __restrict__ mats, const u8* __restrict__ seqs,
                     const u8* __restrict__ init, u8* __restrict__ out, int steps) {
    extern __shared__ __align__(16) u8 smem[];
    const int chain = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, q = lane & 3;
    const u8* seq = seqs + 32 * chain;

    u32 a[2][8][4];
    #pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        #pragma unroll
        for (int kt = 0; kt < 8; kt++) {
            #pragma unroll
            for (int v = 0; v < 4; v++) {
                int row = 32 * warp + 16 * mt + g + 8 * (v & 1);
                u32 word = 0;
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    int col = frag_col(kt, v, q, e);
                    u32 byte = init ? init[(size_t)chain * MAT_BYTES + row * SIDE + col]
                                    : (row == col ? 1u : 0u);
                    word |= byte << (8 * e);
                }
                a[mt][kt][v] = word;
            }
        }
    }

    stage_matrix(smem, mats + (size_t)seq[0] * MAT_BYTES);
    cp_async_commit();
    for (int step = 0; step < steps; step++) {
        if (step + 1 < steps) {
            stage_matrix(smem + ((step + 1) & 1) * STAGE_BYTES,
                         mats + (size_t)seq[(step + 1) & 31] * MAT_BYTES);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const u8* m = smem + (step & 1) * STAGE_BYTES;

        u32 next[2][8][4];
        #pragma unroll
        for (int nc = 0; nc < 8; nc++) {
            int acc[2][4][4];
            #pragma unroll
            for (int mt = 0; mt < 2; mt++)
                #pragma unroll
                for (int i = 0; i < 4; i++)
                    #pragma unroll
                    for (int j = 0; j < 4; j++) acc[mt][i][j] = 0;
            #pragma unroll
            for (int p = 0; p < 4; p++) {
                #pragma unroll
                for (int i = 0; i < 4; i++) {
                    const uint4 b = *reinterpret_cast<const uint4*>(
                        m + (32 * nc + 8 * i + g) * ROW_PITCH + 64 * p + 16 * q);
                    #pragma unroll
                    for (int mt = 0; mt < 2; mt++) {
                        mma_s8(acc[mt][i], a[mt][2 * p], b.x, b.y);
                        mma_s8(acc[mt][i], a[mt][2 * p + 1], b.z, b.w);
                    }
                }
            }
            #pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                next[mt][nc][0] = pack4(acc[mt][0][0], acc[mt][0][1], acc[mt][1][0], acc[mt][1][1]);
                next[mt][nc][1] = pack4(acc[mt][0][2], acc[mt][0][3], acc[mt][1][2], acc[mt][1][3]);
                next[mt][nc][2] = pack4(acc[mt][2][0], acc[mt][2][1], acc[mt][3][0], acc[mt][3][1]);
                next[mt][nc][3] = pack4(acc[mt][2][2], acc[mt][2][3], acc[mt][3][2], acc[mt][3][3]);
            }
        }
        #pragma unroll
        for (int mt = 0; mt < 2; mt++)
            #pragma unroll
            for (int kt = 0; kt < 8; kt++)
                #pragma unroll
                for (int v = 0; v < 4; v++) a[mt][kt][v] = next[mt][kt][v];
        __syncthreads();
    }

    u8* dst = out + (size_t)chain * MAT_BYTES;
    #pragma unroll
    for (int mt = 0; mt < 2; mt++) {
        #pragma unroll
        for (int kt = 0; kt < 8; kt++) {
            #pragma unroll
            for (int v = 0; v < 4; v++) {
                int row = 32 * warp + 16 * mt + g + 8 * (v & 1);
                u32 word = a[mt][kt][v];
                #pragma unroll
                for (int e = 0; e < 4; e++)
                    dst[row * SIDE + frag_col(kt, v, q, e)] = (u8)(word >> (8 * e));
            }
        }
    }
}

#else
// Pre-sm_80 targets have neither mma.m16n8k32 nor cp.async; the host never launches this.
extern "C" __global__ void tensority_chains_mma(const u8*, const u8*, const u8*, u8*, int) {}
#endif

// ---------------------------------------------------------------------------------------------
// Hopper warpgroup kernel (sm_90a): wgmma.mma_async m64n32k32 s8*s8->s32 with A from registers
// and B from shared memory through a matrix descriptor.
//
// Two warpgroups of four warps; warpgroup wg owns rows 128wg..128wg+127 as two 64-row tiles.
// Within a tile, warp wi (0..3) of the group holds rows 16wi..16wi+15 in the same A fragment
// layout as mma.m16n8k32 (so the same pi trick applies: accumulators become the next A with
// no data movement). B is staged in the no-swizzle K-major "core matrix" layout: 8 rows of 16
// bytes contiguous (128 B); core matrices adjacent in K are 128 B apart (LBO), adjacent 8-row
// groups 2048 B apart (SBO). The host writes the seed matrices in exactly that order (with pi
// applied inside each 32-byte k-tile), so staging is a straight 64 KiB copy.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define WG_STAGE_BYTES 65536

__device__ __forceinline__ unsigned long long wg_desc(u32 smem_addr) {
    unsigned long long d = 0;
    d |= (unsigned long long)((smem_addr & 0x3FFFF) >> 4);
    d |= (unsigned long long)(128 >> 4) << 16;   // leading (K) byte offset
    d |= (unsigned long long)(2048 >> 4) << 32;  // stride (N) byte offset
    return d;                                     // base offset 0, no swizzle
}

__device__ __forceinline__ void wgmma_m64n32k32(int (&d)[16], const u32 (&a)[4],
                                                unsigned long long desc, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %21, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k32.s32.s8.s8 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, "
        "{%16,%17,%18,%19}, %20, p;\n}\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]),
          "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]),
          "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(accumulate));
}

// Keeps the compiler from moving register uses across the asynchronous MMA boundaries.
__device__ __forceinline__ void wg_fence_operand(int& r) { asm volatile("" : "+r"(r)::"memory"); }

__device__ __forceinline__ int wg_row(int warp, int mt, int g, int v) {
    return 128 * (warp >> 2) + 64 * mt + 16 * (warp & 3) + g + 8 * (v & 1);
}

extern "C" __global__ void __launch_bounds__(256, 1)
tensority_chains_wgmma(const u8* __restrict__ mats, const u8* __restrict__ seqs,
                       const u8* __restrict__ init, u8* __restrict__ out, int steps) {
    extern __shared__ __align__(1024) u8 smem[];
    const int chain = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, q = lane & 3;
    const u8* seq = seqs + 32 * chain;

    u32 a[2][8][4];
    #pragma unroll
    for (int mt = 0; mt < 2; mt++)
        #pragma unroll
        for (int kt = 0; kt < 8; kt++)
            #pragma unroll
            for (int v = 0; v < 4; v++) {
                int row = wg_row(warp, mt, g, v);
                u32 word = 0;
                #pragma unroll
                for (int e = 0; e < 4; e++) {
                    int col = frag_col(kt, v, q, e);
                    u32 byte = init ? init[(size_t)chain * MAT_BYTES + row * SIDE + col]
                                    : (row == col ? 1u : 0u);
                    word |= byte << (8 * e);
                }
                a[mt][kt][v] = word;
            }

    const u32 smem_base = (u32)__cvta_generic_to_shared(smem);
    auto stage = [&](int buf, const u8* mat) {
        #pragma unroll
        for (int i = 0; i < 16; i++) {
            int chunk = threadIdx.x + 256 * i;
            cp_async16(smem_base + buf * WG_STAGE_BYTES + chunk * 16, mat + chunk * 16);
        }
    };
    stage(0, mats + (size_t)seq[0] * MAT_BYTES);
    cp_async_commit();
    for (int step = 0; step < steps; step++) {
        if (step + 1 < steps) {
            stage((step + 1) & 1, mats + (size_t)seq[(step + 1) & 31] * MAT_BYTES);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        // cp.async wrote through the generic proxy; wgmma reads through the async proxy.
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        __syncthreads();
        const u32 b_base = smem_base + (step & 1) * WG_STAGE_BYTES;

        u32 next[2][8][4];
        #pragma unroll
        for (int nc = 0; nc < 8; nc++) {
            int acc[2][16];
            #pragma unroll
            for (int mt = 0; mt < 2; mt++)
                #pragma unroll
                for (int j = 0; j < 16; j++) {
                    acc[mt][j] = 0;
                    wg_fence_operand(acc[mt][j]);
                }
            asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
            #pragma unroll
            for (int mt = 0; mt < 2; mt++)
                #pragma unroll
                for (int kt = 0; kt < 8; kt++)
                    wgmma_m64n32k32(acc[mt], a[mt][kt],
                                    wg_desc(b_base + 4 * nc * 2048 + 2 * kt * 128), kt);
            asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
            #pragma unroll
            for (int mt = 0; mt < 2; mt++)
                #pragma unroll
                for (int j = 0; j < 16; j++) wg_fence_operand(acc[mt][j]);
            // acc[mt][4i + c]: 8-column group i, c as in mma.m16n8 (row g: c0,c1; g+8: c2,c3).
            #pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                const int* x = acc[mt];
                next[mt][nc][0] = pack4(x[0], x[1], x[4], x[5]);
                next[mt][nc][1] = pack4(x[2], x[3], x[6], x[7]);
                next[mt][nc][2] = pack4(x[8], x[9], x[12], x[13]);
                next[mt][nc][3] = pack4(x[10], x[11], x[14], x[15]);
            }
        }
        #pragma unroll
        for (int mt = 0; mt < 2; mt++)
            #pragma unroll
            for (int kt = 0; kt < 8; kt++)
                #pragma unroll
                for (int v = 0; v < 4; v++) a[mt][kt][v] = next[mt][kt][v];
        __syncthreads();
    }

    u8* dst = out + (size_t)chain * MAT_BYTES;
    #pragma unroll
    for (int mt = 0; mt < 2; mt++)
        #pragma unroll
        for (int kt = 0; kt < 8; kt++)
            #pragma unroll
            for (int v = 0; v < 4; v++) {
                int row = wg_row(warp, mt, g, v);
                u32 word = a[mt][kt][v];
                #pragma unroll
                for (int e = 0; e < 4; e++)
                    dst[row * SIDE + frag_col(kt, v, q, e)] = (u8)(word >> (8 * e));
            }
}
#else
// Only sm_90a has wgmma; the host launches this kernel only on compute capability 9.0.
extern "C" __global__ void tensority_chains_wgmma(const u8*, const u8*, const u8*, u8*, int) {}
#endif

// ---------------------------------------------------------------------------------------------
// DP4A chain kernel: thread r owns row r of the state (64 packed words in registers); every
// thread walks the same matrix row at the same time, so the matrix loads are warp-uniform.
// mats here are in the natural row-major layout.
extern "C" __global__ void __launch_bounds__(256, 1)
tensority_chains_dp4a(const u8* __restrict__ mats, const u8* __restrict__ seqs,
                      const u8* __restrict__ init, u8* __restrict__ out, int steps) {
    const int chain = blockIdx.x, r = threadIdx.x;
    const u8* seq = seqs + 32 * chain;
    u32 a[64];
    #pragma unroll
    for (int j = 0; j < 64; j++) {
        if (init) {
            a[j] = *reinterpret_cast<const u32*>(init + (size_t)chain * MAT_BYTES + r * SIDE + 4 * j);
        } else {
            a[j] = (r >> 2) == j ? (1u << (8 * (r & 3))) : 0u;
        }
    }
    for (int step = 0; step < steps; step++) {
        const uint4* m = reinterpret_cast<const uint4*>(mats + (size_t)seq[step & 31] * MAT_BYTES);
        // Indexed at run time, so it lives in (cached) local memory: 64 stores per 16,384 dp4a.
        u32 next[64];
        #pragma unroll 1
        for (int cw = 0; cw < 64; cw++) {
            u32 word = 0;
            #pragma unroll
            for (int e = 0; e < 4; e++) {
                const uint4* row = m + (4 * cw + e) * 16;
                int acc = 0;
                #pragma unroll
                for (int j = 0; j < 16; j++) {
                    uint4 w = __ldg(row + j);
                    acc = __dp4a((int)a[4 * j], (int)w.x, acc);
                    acc = __dp4a((int)a[4 * j + 1], (int)w.y, acc);
                    acc = __dp4a((int)a[4 * j + 2], (int)w.z, acc);
                    acc = __dp4a((int)a[4 * j + 3], (int)w.w, acc);
                }
                word |= reduce8(acc) << (8 * e);
            }
            next[cw] = word;
        }
        #pragma unroll
        for (int j = 0; j < 64; j++) a[j] = next[j];
    }
    u32* dst = reinterpret_cast<u32*>(out + (size_t)chain * MAT_BYTES + r * SIDE);
    #pragma unroll
    for (int j = 0; j < 64; j++) dst[j] = a[j];
}

// ---------------------------------------------------------------------------------------------
// Sum of the four chains of hash blockIdx.x (mod 256 per byte), packed into words from column
// blocks 0/64/128/192 and FNV-folded (w * 0x01000193 ^ w') from 256 rows down to one (spec 4).
__device__ __forceinline__ u32 summed_word(const u8* __restrict__ chains, int r, int j) {
    u32 w = 0;
    #pragma unroll
    for (int b = 0; b < 4; b++) {
        u32 s = 0;
        #pragma unroll
        for (int k = 0; k < 4; k++) s += chains[(size_t)k * MAT_BYTES + r * SIDE + j + 64 * b];
        w |= (s & 0xffu) << (8 * b);
    }
    return w;
}

extern "C" __global__ void __launch_bounds__(256)
tensority_fold(const u8* __restrict__ chains, u32* __restrict__ folded) {
    __shared__ u32 w[128][64];
    const u8* base = chains + (size_t)blockIdx.x * 4 * MAT_BYTES;
    for (int idx = threadIdx.x; idx < 128 * 64; idx += blockDim.x) {
        int r = idx >> 6, j = idx & 63;
        w[r][j] = summed_word(base, r, j) * 0x01000193u ^ summed_word(base, r + 128, j);
    }
    __syncthreads();
    for (int half = 64; half >= 1; half >>= 1) {
        for (int idx = threadIdx.x; idx < half * 64; idx += blockDim.x) {
            int r = idx >> 6, j = idx & 63;
            w[r][j] = w[r][j] * 0x01000193u ^ w[r + half][j];
        }
        __syncthreads();
    }
    if (threadIdx.x < 64) folded[(size_t)blockIdx.x * 64 + threadIdx.x] = w[0][threadIdx.x];
}
