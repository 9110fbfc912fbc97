//! The 32-byte hash type used for entry IDs, asset IDs and block hashes.
//!
//! Bytom prints and serializes a hash as the 32 bytes in the order SHA3 emits them; there is no
//! byte reversal anywhere except inside the PoW comparison (which lives in `bystack_kernels`).

use std::fmt;
use std::str::FromStr;

use bystack_kernels::hex::{self, HexError};

/// A SHA3-256 output: an entry ID, a block hash, a merkle root or an asset ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; 32]);

/// An asset ID has the same shape as a hash (Bytom's `bc.AssetID`).
pub type AssetId = Hash;

/// BTM, the native asset: the constant 32 × `0xff`, not derived from an issuance program.
pub const BTM_ASSET_ID: AssetId = Hash([0xff; 32]);

impl Hash {
    /// The all-zero hash (what Bytom writes for a missing hash pointer).
    pub const ZERO: Hash = Hash([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether all 32 bytes are zero.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    /// Lowercase hex of the 32 bytes in natural order (Bytom's `bc.Hash.String()`).
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses 64 hex characters.
    ///
    /// # Errors
    /// A [`HexError`] for a wrong length or a non-hex character.
    pub fn from_hex(s: &str) -> Result<Self, HexError> {
        hex::decode32(s).map(Hash)
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Hash(bytes)
    }
}

impl From<Hash> for [u8; 32] {
    fn from(hash: Hash) -> Self {
        hash.0
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl FromStr for Hash {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hash::from_hex(s)
    }
}

/// SHA3-256 (FIPS 202, not Keccak) of `data`.
pub fn sha3(data: &[u8]) -> Hash {
    Hash(bystack_kernels::tensority::sha3_256(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_natural_order_hex() {
        let mut b = [0u8; 32];
        b[0] = 0xab;
        b[31] = 0x01;
        let h = Hash(b);
        let s = h.to_string();
        assert!(s.starts_with("ab00") && s.ends_with("0001"));
        assert_eq!(s.parse::<Hash>().unwrap(), h);
        assert_eq!(
            sha3(b"").to_hex(),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
    }
}
