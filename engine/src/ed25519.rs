//! Ed25519 with exactly the acceptance rule of Bytom v1.1.1.
//!
//! Bytom verifies every `CHECKSIG` / `CHECKMULTISIG` signature with its vendored copy of the
//! old `golang.org/x/crypto/ed25519`, a port of SUPERCOP's `ref10`. That verifier predates
//! RFC 8032's strict decoding rules and ZIP-215, and differs from both; a node that accepts or
//! rejects a different set of signatures forks off the chain. [`verify`] reproduces it bit for
//! bit, built on `curve25519-dalek` primitives.
//!
//! # The acceptance rule, step by step
//!
//! `verify(A_bytes, M, sig)` returns `true` exactly when all of these hold:
//!
//! 1. **Length.** `sig` is exactly 64 bytes: `R_bytes = sig[..32]`, `S_bytes = sig[32..]`.
//!    Any other length is rejected (Go: `len(sig) != SignatureSize`). The public key is
//!    always 32 bytes here; Bytom's `CHECKSIG` pushes false for other lengths before it
//!    calls the verifier (Go would panic).
//! 2. **The "S is small" check.** `sig[63] & 0xE0 == 0`, i.e. `S < 2^253` as a little-endian
//!    integer. There is **no** `S < L` check: any `S` in `[L, 2^253)` goes on to the equation.
//! 3. **Public key decoding** (`ge_frombytes_negate_vartime` / Go `FromBytes`):
//!    * `y` = the low 255 bits of `A_bytes`, taken **mod p without rejecting `y >= p`**
//!      (the 19 non-canonical encodings `p..2^255-1` decode as `y - p`);
//!    * `u = y² − 1`, `v = d·y² + 1`, `x = u·v³·(u·v⁷)^((p−5)/8)`; if `v·x² = u` keep `x`,
//!      else if `v·x² = −u` use `x·√−1`, else **reject** (`u/v` is not a square);
//!    * if the parity of `x` differs from the sign bit (`A_bytes[31] >> 7`) then `x = −x`.
//!      When `x = 0` the sign bit is ignored: `(0, y)` with sign bit 1 is **accepted** as
//!      `(0, y)` (RFC 8032 would reject it). This applies to the identity (`y = 1`) and the
//!      point of order 2 (`y = −1`).
//!    * No check on the order of `A`: small-order and mixed-order keys are accepted.
//! 4. `k = SHA-512(R_bytes ‖ A_bytes ‖ M) mod L`, hashing the **raw** 32-byte key as given
//!    (a non-canonical encoding is hashed as written, not re-encoded).
//! 5. `R' = [S]B + [k](−A)` (`ge_double_scalarmult_vartime` on the negated key), where `S` is
//!    the raw 253-bit integer and `k` is already reduced. This is the **cofactorless**
//!    equation: a torsion component in `A` (or in the signer's `R`) is not multiplied away.
//! 6. `encode(R') == R_bytes` byte for byte, with `encode` the canonical encoding
//!    (`y` fully reduced, sign bit = parity of `x`). `R` is never decoded, so a non-canonical or
//!    invalid `R_bytes` can never match; an `R` of small order can.
//!
//! # Why the dalek primitives give the same answer
//!
//! * `CompressedEdwardsY::decompress` (dalek 4.x) is the same computation as step 3: it
//!   loads the low 255 bits without a canonicity check (arithmetic is mod p, so `y >= p` acts
//!   as `y − p`), computes the same candidate root through `sqrt_ratio_i`, fails exactly when
//!   `u/v` is not a square (`v` is never 0 because `−1/d` is not a square), takes the
//!   non-negative root and conditionally negates it by the sign bit, which for `x = 0` is a
//!   no-op. The resulting point is the same affine point ref10 builds. The integration tests
//!   check this against a literal big-integer transcription of ref10 on every non-canonical
//!   encoding and on the `x = 0` encodings.
//! * Step 5 with raw `S`: ref10's `slide` recodes all 256 bits of `S`, so it really computes
//!   `[S]B` for the integer `S < 2^253`. `B` has order exactly `L`, so `[S]B = [S mod L]B`
//!   for **every** `S`, and `Scalar::from_bytes_mod_order(S)` therefore yields the same point.
//!   The torsion question never arises for `S`: it only ever multiplies `B`. The scalar that
//!   multiplies the possibly-torsioned `A` is `k`, which ref10 reduces mod `L` (`sc_reduce`)
//!   before use, exactly like `Scalar::from_bytes_mod_order_wide`. So `[k]A` is the same
//!   point in both (the group law is the complete twisted Edwards law in both libraries).
//!   Consequence: `(R, S + L)` is accepted whenever `(R, S)` is and `S + L < 2^253`
//!   (signature malleability that Bytom has); `ed25519-dalek`'s `verify` rejects it.
//! * Step 6: `EdwardsPoint::compress` is ref10's `ge_tobytes` (canonical `y`, parity of `x`).
//!
//! This is deliberately **not** `ed25519_dalek::VerifyingKey::verify_strict` (which rejects
//! small-order `A` and `R`) nor its `verify` (which rejects `S >= L`), nor a ZIP-215 verifier
//! (cofactored equation, accepts non-canonical `R`).
//!
//! [`SigningKey`] is plain RFC 8032 key generation and signing (identical to Go's
//! `NewKeyFromSeed` / `Sign`); it is for tests and the devnet wallet, not consensus.

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};

/// Length of an Ed25519 signature in bytes (`R ‖ S`).
pub const SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 seed (RFC 8032 "private key") in bytes.
pub const SEED_LEN: usize = 32;

/// Verifies `signature` over `message` under `public_key` with Bytom v1.1.1's rule (see the
/// module docs for every step).
///
/// Accepts any signature length and never panics: wrong lengths, undecodable keys and
/// non-matching equations all return `false`.
#[must_use]
pub fn verify(public_key: &[u8; PUBLIC_KEY_LEN], message: &[u8], signature: &[u8]) -> bool {
    // Step 1.
    let Ok(signature) = <&[u8; SIGNATURE_LEN]>::try_from(signature) else {
        return false;
    };
    let (r_bytes, s_bytes) = signature.split_at(32);
    // Step 2: only the top three bits; S in [L, 2^253) passes.
    if s_bytes[31] & 0xE0 != 0 {
        return false;
    }
    // Step 3.
    let Some(a) = decode_point_ref10(public_key) else {
        return false;
    };
    // Step 4.
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(public_key)
            .chain_update(message)
            .finalize()
            .into(),
    );
    // Step 5: S only multiplies B (order L), so reducing it mod L gives ref10's [S]B.
    let mut s = [0u8; 32];
    s.copy_from_slice(s_bytes);
    let s = Scalar::from_bytes_mod_order(s);
    let r_check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &s);
    // Step 6: compare encodings, so a non-canonical R never matches.
    r_check.compress().as_bytes()[..] == *r_bytes
}

/// ref10's public-key decoding (`ge_frombytes`): `y` mod p with no canonicity check, `None`
/// only when `x² = (y² − 1)/(d·y² + 1)` has no root; the sign bit is ignored when `x = 0`.
/// dalek's `decompress` performs exactly this computation (see the module docs).
fn decode_point_ref10(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    CompressedEdwardsY(*bytes).decompress()
}

/// An Ed25519 signing key derived from a 32-byte seed as in RFC 8032 §5.1.5 (Go's
/// `NewKeyFromSeed`). For tests and the devnet wallet; signing is deterministic (§5.1.6).
#[derive(Clone)]
pub struct SigningKey {
    /// The clamped secret scalar `a` (reduced mod L; `[a]B` is unchanged by the reduction).
    scalar: Scalar,
    /// The upper half of `SHA-512(seed)`, hashed with the message to derive the nonce.
    prefix: [u8; 32],
    public_key: [u8; PUBLIC_KEY_LEN],
}

impl SigningKey {
    /// Derives the key pair from `seed`: `h = SHA-512(seed)`, `a = clamp(h[..32])`,
    /// `A = [a]B`, nonce prefix `h[32..]`.
    #[must_use]
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let h: [u8; 64] = Sha512::digest(seed).into();
        let mut a = [0u8; 32];
        a.copy_from_slice(&h[..32]);
        // RFC 8032 clamping: clear the cofactor bits, set bit 254, clear bit 255.
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let scalar = Scalar::from_bytes_mod_order(a);
        let mut prefix = [0u8; 32];
        prefix.copy_from_slice(&h[32..]);
        let public_key = (&scalar * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        Self {
            scalar,
            prefix,
            public_key,
        }
    }

    /// The 32-byte encoded public key `A`.
    #[must_use]
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public_key
    }

    /// Signs `message`: `r = SHA-512(prefix ‖ M) mod L`, `R = [r]B`,
    /// `S = r + SHA-512(R ‖ A ‖ M)·a mod L`; returns `R ‖ S`.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        let r = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(self.prefix)
                .chain_update(message)
                .finalize()
                .into(),
        );
        let r_bytes = (&r * ED25519_BASEPOINT_TABLE).compress().to_bytes();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r_bytes)
                .chain_update(self.public_key)
                .chain_update(message)
                .finalize()
                .into(),
        );
        let s = r + k * self.scalar;
        let mut signature = [0u8; SIGNATURE_LEN];
        signature[..32].copy_from_slice(&r_bytes);
        signature[32..].copy_from_slice(s.as_bytes());
        signature
    }
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret scalar or the nonce prefix.
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = SigningKey::from_seed(&[7u8; 32]);
        let msg = b"bystack";
        let sig = key.sign(msg);
        assert!(verify(&key.public_key(), msg, &sig));
        assert!(!verify(&key.public_key(), b"bystacK", &sig));
        for i in 0..SIGNATURE_LEN {
            let mut bad = sig;
            bad[i] ^= 0x01;
            assert!(!verify(&key.public_key(), msg, &bad), "byte {i} flipped");
        }
    }

    #[test]
    fn any_length_never_panics() {
        let key = SigningKey::from_seed(&[1u8; 32]);
        let sig = key.sign(b"m");
        for len in 0..=128 {
            let mut v = sig.to_vec();
            v.resize(len, 0);
            assert_eq!(verify(&key.public_key(), b"m", &v), len == 64);
        }
    }

    #[test]
    fn high_bits_of_s_reject_before_anything_else() {
        let key = SigningKey::from_seed(&[2u8; 32]);
        let mut sig = key.sign(b"m");
        for bit in [0x20u8, 0x40, 0x80] {
            let mut bad = sig;
            bad[63] |= bit;
            assert!(!verify(&key.public_key(), b"m", &bad));
        }
        sig[63] &= 0x1F;
        assert!(verify(&key.public_key(), b"m", &sig));
    }

    #[test]
    fn decoding_keeps_x_zero_with_sign_bit_set() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut signed = identity;
        signed[31] |= 0x80;
        let a = decode_point_ref10(&identity).expect("identity decodes");
        let b = decode_point_ref10(&signed).expect("ref10 ignores the sign bit of x = 0");
        assert_eq!(a, b);
        assert_eq!(a, EdwardsPoint::default());
    }

    #[test]
    fn debug_hides_secrets() {
        let key = SigningKey::from_seed(&[3u8; 32]);
        let text = format!("{key:?}");
        assert!(text.starts_with("SigningKey"));
        assert!(!text.contains("scalar") && !text.contains("prefix"));
    }
}
