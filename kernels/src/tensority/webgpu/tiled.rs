//! The tiled chain step for GPUs: the plan of one [`Tile`] variant for one [`Kernel`] (tile
//! shape, workgroup size, K chunk, staging loads, workgroup memory) and the WGSL module it
//! compiles to (`shaders/step_tiled.wgsl` with the kernel's prelude and the host constants).
//!
//! The module is created with wgpu's runtime checks off (no clamp on every workgroup-memory
//! index, no counter in every loop), which is sound because every index it forms is in range
//! by construction; [`TiledPlan::shader_source`] and the unit tests below check the
//! arithmetic that argument rests on.

use super::context::{MATRIX_WORDS, ROW_WORDS, SEQ_LEN};
use super::{Kernel, Tile, TileShape};
use crate::tensority::SIDE;

const TILED_COMMON_WGSL: &str = include_str!("shaders/tiled_common.wgsl");
const TILED_INT8_WGSL: &str = include_str!("shaders/tiled_int8.wgsl");
const TILED_F16_WGSL: &str = include_str!("shaders/tiled_f16.wgsl");
const STEP_TILED_WGSL: &str = include_str!("shaders/step_tiled.wgsl");

/// `mac4` of the `dot4I8Packed` kernel: one packed dot product per output (SPIR-V `OpSDot`,
/// which NVIDIA runs as `IDP4A`, the add folded into its accumulator).
const MAC4_DOT4: &str = "
// acc[j] += a · m[j] over one K unit (four K values).
fn mac4(acc: Acc, a: TElem, m: vec4<TElem>) -> Acc {
    return acc + vec4<i32>(dot4I8Packed(a, m.x), dot4I8Packed(a, m.y), dot4I8Packed(a, m.z),
        dot4I8Packed(a, m.w));
}
";

/// `mac4` of the i32 fallback: sign-extend, multiply and add as i32.
const MAC4_I32: &str = "
// acc[j] += a · m[j] over one K unit (four K values).
fn mac4(acc: Acc, a: TElem, m: vec4<TElem>) -> Acc {
    let av = unpack_i8(a);
    return acc + vec4<i32>(dot(av, unpack_i8(m.x)), dot(av, unpack_i8(m.y)),
        dot(av, unpack_i8(m.z)), dot(av, unpack_i8(m.w)));
}
";

/// The numbers of one tiled step: a [`Tile`] variant for one [`Kernel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TiledPlan {
    kernel: Kernel,
    /// The variant, with `double_buffer` as actually built.
    pub(super) tile: Tile,
    /// Output rows (A rows) per workgroup.
    rows: u32,
    /// Output columns (M rows) per workgroup.
    cols: u32,
    /// Invocations per workgroup, each owning 8×8 outputs.
    wg_size: u32,
    /// K units per staged chunk (a K unit is a packed word of four int8, or one f32).
    ku: u32,
}

impl TiledPlan {
    /// The plan of `tile` for `kernel`, double-buffered as `tile.double_buffer` says.
    pub(super) fn new(kernel: Kernel, tile: Tile) -> Self {
        let float = kernel == Kernel::F16;
        // (rows, cols, K units per chunk for int8, for f32)
        let (rows, cols, ku_int8, ku_f32) = match tile.shape {
            TileShape::A => (64, 64, 8, 16),
            TileShape::B => (128, 128, 16, 16),
            TileShape::C => (128, 64, 16, 16),
        };
        TiledPlan {
            kernel,
            tile,
            rows,
            cols,
            wg_size: (rows / 8) * (cols / 8),
            ku: if float { ku_f32 } else { ku_int8 },
        }
    }

    /// The same variant with one workgroup buffer per operand.
    pub(super) fn single_buffered(self) -> Self {
        Self::new(
            self.kernel,
            Tile {
                double_buffer: false,
                ..self.tile
            },
        )
    }

    fn nbuf(&self) -> u32 {
        if self.tile.double_buffer {
            2
        } else {
            1
        }
    }

    /// K units per row (64 packed words, or 256 f32).
    fn row_units(&self) -> u32 {
        match self.kernel {
            Kernel::F16 => SIDE as u32,
            Kernel::Dot4I8Packed | Kernel::I32 => ROW_WORDS,
        }
    }

    /// K units per global load of A (a vec4 of packed words, or a vec2 of them for f32) and
    /// of M (a vec4 of packed words, or of binary16 pairs).
    fn kpu(&self) -> (u32, u32) {
        match self.kernel {
            Kernel::F16 => (8, 8),
            Kernel::Dot4I8Packed | Kernel::I32 => (4, 4),
        }
    }

    /// Global loads of A and of M per invocation and chunk.
    fn loads(&self) -> (u32, u32) {
        let (a_kpu, m_kpu) = self.kpu();
        (
            self.rows * (self.ku / a_kpu) / self.wg_size,
            self.cols * (self.ku / m_kpu) / self.wg_size,
        )
    }

    /// Invocations per workgroup.
    pub(super) fn workgroup_size(&self) -> u32 {
        self.wg_size
    }

    /// Bytes of workgroup memory (both operand tiles, every buffer; a K unit is 4 bytes).
    pub(super) fn workgroup_bytes(&self) -> u32 {
        self.nbuf() * (self.rows + self.cols) * self.ku * 4
    }

    /// Workgroups per chain in x (column tiles) and y (row tiles).
    pub(super) fn grid(&self) -> (u32, u32) {
        (SIDE as u32 / self.cols, SIDE as u32 / self.rows)
    }

    /// `fetch` (chunk c's global loads into registers) and `deposit` (those registers into
    /// workgroup buffer `buf`), unrolled over this invocation's loads: load j of an operand
    /// is unit `lid + j·WG_SIZE` of the chunk.
    fn staging_wgsl(&self) -> String {
        let (a_loads, m_loads) = self.loads();
        let fields = |p: &str, n: u32, ty: &str| {
            (0..n)
                .map(|j| format!("    {p}{j}: {ty},\n"))
                .collect::<String>()
        };
        let args = |f: &str, base: &str, n: u32| {
            (0..n)
                .map(|j| format!("        {f}({base}, c, lid + {j}u * WG_SIZE),\n"))
                .collect::<String>()
        };
        let puts = |f: &str, p: &str, n: u32| {
            (0..n)
                .map(|j| format!("    {f}(buf, lid + {j}u * WG_SIZE, p.{p}{j});\n"))
                .collect::<String>()
        };
        format!(
            "struct Prefetch {{\n{}{}}}\n\n\
             fn fetch(a_base: u32, m_base: u32, c: u32, lid: u32) -> Prefetch {{\n    \
             return Prefetch(\n{}{}    );\n}}\n\n\
             fn deposit(p: Prefetch, buf: u32, lid: u32) {{\n{}{}}}\n",
            fields("a", a_loads, "AUnit"),
            fields("m", m_loads, "MUnit"),
            args("fetch_a", "a_base", a_loads),
            args("fetch_m", "m_base", m_loads),
            puts("deposit_a", "a", a_loads),
            puts("deposit_m", "m", m_loads),
        )
    }

    /// The whole WGSL module: host constants, tiled bindings and helpers, the kernel prelude,
    /// the generated staging, and the `chain_step` entry point.
    pub(super) fn shader_source(&self) -> String {
        let (a_kpu, m_kpu) = self.kpu();
        let (directives, prelude, mac4) = match self.kernel {
            Kernel::Dot4I8Packed => (
                "requires packed_4x8_integer_dot_product;\n",
                TILED_INT8_WGSL,
                MAC4_DOT4,
            ),
            Kernel::I32 => ("", TILED_INT8_WGSL, MAC4_I32),
            Kernel::F16 => ("", TILED_F16_WGSL, ""),
        };
        format!(
            "{directives}\
             const SIDE: u32 = {SIDE}u;\n\
             const ROW_WORDS: u32 = {ROW_WORDS}u;\n\
             const MATRIX_WORDS: u32 = {MATRIX_WORDS}u;\n\
             const SEQ_LEN: u32 = {SEQ_LEN}u;\n\
             const TILE_R: u32 = {rows}u;\n\
             const TILE_C: u32 = {cols}u;\n\
             const WG_SIZE: u32 = {wg}u;\n\
             const KU: u32 = {ku}u;\n\
             const ROW_UNITS: u32 = {row_units}u;\n\
             const NBUF: u32 = {nbuf}u;\n\
             const A_KPU: u32 = {a_kpu}u;\n\
             const M_KPU: u32 = {m_kpu}u;\n\
             {TILED_COMMON_WGSL}\n{prelude}\n{mac4}\n{staging}\n{STEP_TILED_WGSL}",
            rows = self.rows,
            cols = self.cols,
            wg = self.wg_size,
            ku = self.ku,
            row_units = self.row_units(),
            nbuf = self.nbuf(),
            staging = self.staging_wgsl(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans() -> Vec<TiledPlan> {
        let mut plans = Vec::new();
        for kernel in Kernel::ALL {
            for shape in TileShape::ALL {
                for double_buffer in [false, true] {
                    plans.push(TiledPlan::new(
                        kernel,
                        Tile {
                            shape,
                            double_buffer,
                        },
                    ));
                }
            }
        }
        plans
    }

    #[test]
    fn variant_names_round_trip() {
        for shape in TileShape::ALL {
            assert_eq!(TileShape::from_name(shape.name()), Some(shape));
            assert_eq!(
                TileShape::from_name(&format!(" {} ", shape.name().to_uppercase())),
                Some(shape)
            );
            let tile = Tile {
                shape,
                double_buffer: true,
            };
            assert_eq!(tile.name(), format!("tiled-{}", shape.name()));
        }
        assert_eq!(TileShape::from_name("d"), None);
        assert_eq!(TileShape::from_name(""), None);
    }

    /// The arithmetic the shader's indexing (and the unchecked module) relies on.
    #[test]
    fn every_plan_splits_evenly_and_stays_in_range() {
        for p in plans() {
            let (a_kpu, m_kpu) = p.kpu();
            let (a_upr, m_upr) = (p.ku / a_kpu, p.ku / m_kpu);
            let label = format!("{p:?}");
            // Tiles cover the matrix; thread grid: TX a multiple of 8, TY of 4 (warp shape),
            // and both powers of two ≥ 8, so the swizzle (< 8 groups) stays inside a half.
            assert_eq!(SIDE as u32 % p.rows, 0, "{label}");
            assert_eq!(SIDE as u32 % p.cols, 0, "{label}");
            let (tx, ty) = (p.cols / 8, p.rows / 8);
            assert_eq!(tx * ty, p.wg_size, "{label}");
            assert!(tx.is_power_of_two() && tx >= 8, "{label}");
            assert!(ty.is_power_of_two() && ty >= 8, "{label}");
            assert_eq!(p.wg_size % 32, 0, "{label}");
            assert!(p.wg_size <= 256, "{label}: the WebGPU default limit");
            // K chunks: whole loads, whole chunks, and units per row dividing a warp.
            assert_eq!(p.ku % a_kpu, 0, "{label}");
            assert_eq!(p.ku % m_kpu, 0, "{label}");
            assert_eq!(p.row_units() % p.ku, 0, "{label}");
            for upr in [a_upr, m_upr] {
                assert!(upr.is_power_of_two() && upr <= 8, "{label}");
                // The largest swizzle, in groups of four rows: below 8 ≤ TX, TY.
                assert!((8 / upr) * (upr - 1) < 8, "{label}");
            }
            // Every invocation does the same whole number of loads per operand.
            let (a_loads, m_loads) = p.loads();
            assert!(a_loads >= 1 && m_loads >= 1, "{label}");
            assert_eq!(a_loads * p.wg_size, p.rows * a_upr, "{label}");
            assert_eq!(m_loads * p.wg_size, p.cols * m_upr, "{label}");
            // Fits the smallest workgroup storage WebGPU guarantees when single-buffered.
            assert!(
                p.single_buffered().workgroup_bytes() <= 16 * 1024,
                "{label}: {} bytes",
                p.workgroup_bytes()
            );
        }
    }

    /// Staging stores of one warp land on 32 distinct banks, and a warp's reads of one K unit
    /// touch 8 distinct column groups (conflict-free 16-byte loads).
    #[test]
    fn the_swizzle_spreads_banks() {
        for p in plans() {
            let (a_kpu, m_kpu) = p.kpu();
            for (kpu, tile_rows) in [(a_kpu, p.rows), (m_kpu, p.cols)] {
                let upr = p.ku / kpu;
                let stride = tile_rows / 4;
                let swizzle = |k: u32| (8 / upr) * (k / kpu);
                for warp in 0..(tile_rows * upr / 32) {
                    for e in 0..kpu {
                        let mut banks: Vec<u32> = (0..32)
                            .map(|lane| {
                                let v = warp * 32 + lane;
                                let (row, k) = (v / upr, (v % upr) * kpu);
                                let entry = (k + e) * stride + ((row / 4) ^ swizzle(k));
                                (4 * entry + row % 4) % 32
                            })
                            .collect();
                        banks.sort_unstable();
                        banks.dedup();
                        assert_eq!(banks.len(), 32, "{p:?} warp {warp} unit {e}");
                    }
                }
                for k in 0..p.ku {
                    for base in (0..tile_rows / 8).step_by(8) {
                        let mut groups: Vec<u32> =
                            (base..base + 8).map(|g| (g ^ swizzle(k)) % 8).collect();
                        groups.sort_unstable();
                        groups.dedup();
                        assert_eq!(groups.len(), 8, "{p:?} k {k}");
                    }
                }
            }
        }
    }
}
