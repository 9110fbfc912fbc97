//! Shared helpers for the kernels' integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The shared vectors directory: `$BYSTACK_VECTORS`, else `../shared/vectors` beside the repo.
pub fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BYSTACK_VECTORS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors")
}

/// Parses a vectors file; panics with a clear message if it is missing.
pub fn load(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set BYSTACK_VECTORS to the shared vectors dir",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("vectors file is valid JSON")
}

pub fn hex32(v: &serde_json::Value) -> [u8; 32] {
    bystack_kernels::hex::decode32(v.as_str().expect("hex string")).expect("32-byte hex")
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.fill(&mut b);
        b
    }
}

/// Operand families: uniform random bytes, all −128, all 127, and rows mixing both extremes
/// (the largest |Σ| = 2^22 comes from −128·−128 over a full row).
pub fn operand(rng: &mut Rng, family: u64) -> Vec<u8> {
    let mut m = vec![0u8; bystack_kernels::tensority::MATRIX_BYTES];
    match family {
        0 => m.fill(0x80),
        1 => m.fill(0x7f),
        2 => {
            for b in m.iter_mut() {
                *b = if rng.next_u64() & 1 == 0 { 0x80 } else { 0x7f };
            }
        }
        3 => {
            rng.fill(&mut m);
            for b in m.iter_mut() {
                if rng.next_u64().is_multiple_of(4) {
                    *b = 0x80;
                }
            }
        }
        _ => rng.fill(&mut m),
    }
    m
}
