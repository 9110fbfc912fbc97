//! Conformance tests for `bystack_engine::ed25519` against Bytom v1.1.1's verifier (the ref10
//! port in `golang.org/x/crypto/ed25519`).
//!
//! Two oracles back the edge cases:
//! * [`oracle`], a literal big-integer transcription of ref10's `Verify` (`FromBytes`, raw-`S`
//!   `GeDoubleScalarMultVartime`, `ToBytes`, byte comparison). It shares nothing with the code
//!   under test except SHA-512, so it checks that the dalek-based verifier really reproduces
//!   ref10 on the inputs where libraries disagree.
//! * `ed25519-dalek`'s `verify` / `verify_strict`, to show where Bytom's rule differs from them.

use bystack_engine::ed25519::{verify, SigningKey};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, IsIdentity};
use num_bigint::BigUint;
use sha2::{Digest, Sha512};

/// A literal big-integer transcription of ref10's verifier, slow and obviously correct.
mod oracle {
    use super::*;

    use std::sync::OnceLock;

    pub fn p() -> &'static BigUint {
        static P: OnceLock<BigUint> = OnceLock::new();
        P.get_or_init(|| (BigUint::from(1u8) << 255u32) - 19u32)
    }

    pub fn l() -> BigUint {
        (BigUint::from(1u8) << 252u32)
            + "27742317777372353535851937790883648493"
                .parse::<BigUint>()
                .expect("decimal literal")
    }

    fn inv(x: &BigUint) -> BigUint {
        let p = p();
        x.modpow(&(p - 2u32), p)
    }

    fn d() -> &'static BigUint {
        static D: OnceLock<BigUint> = OnceLock::new();
        D.get_or_init(|| {
            let p = p();
            (p - BigUint::from(121_665u32)) * inv(&BigUint::from(121_666u32)) % p
        })
    }

    fn d2() -> &'static BigUint {
        static D2: OnceLock<BigUint> = OnceLock::new();
        D2.get_or_init(|| d() * 2u32 % p())
    }

    fn sqrt_m1() -> BigUint {
        let p = p();
        BigUint::from(2u8).modpow(&((p - 1u32) >> 2u32), p)
    }

    fn sub(a: &BigUint, b: &BigUint) -> BigUint {
        let p = p();
        (a + p - (b % p)) % p
    }

    /// Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, xy = T/Z.
    #[derive(Clone, Debug)]
    pub struct Point {
        x: BigUint,
        y: BigUint,
        z: BigUint,
        t: BigUint,
    }

    fn affine(x: BigUint, y: BigUint) -> Point {
        let t = &x * &y % p();
        Point {
            x,
            y,
            z: BigUint::from(1u8),
            t,
        }
    }

    fn identity() -> Point {
        affine(BigUint::ZERO, BigUint::from(1u8))
    }

    /// The complete twisted Edwards addition law for a = −1 (also valid for doubling).
    fn add(p1: &Point, p2: &Point) -> Point {
        let p = p();
        let a = sub(&p1.y, &p1.x) * sub(&p2.y, &p2.x) % p;
        let b = (&p1.y + &p1.x) * (&p2.y + &p2.x) % p;
        let c = &p1.t * d2() % p * &p2.t % p;
        let dd = &p1.z * &p2.z * 2u32 % p;
        let e = sub(&b, &a);
        let f = sub(&dd, &c);
        let g = (&dd + &c) % p;
        let h = (&b + &a) % p;
        Point {
            x: &e * &f % p,
            y: &g * &h % p,
            z: &f * &g % p,
            t: &e * &h % p,
        }
    }

    /// `[n]P` for the raw integer `n`, no reduction of any kind.
    fn mul(n: &BigUint, pt: &Point) -> Point {
        let mut acc = identity();
        for i in (0..n.bits()).rev() {
            acc = add(&acc, &acc);
            if n.bit(i) {
                acc = add(&acc, pt);
            }
        }
        acc
    }

    fn neg(pt: &Point) -> Point {
        Point {
            x: sub(&BigUint::ZERO, &pt.x),
            y: pt.y.clone(),
            z: pt.z.clone(),
            t: sub(&BigUint::ZERO, &pt.t),
        }
    }

    /// ref10 `ge_tobytes`: canonical y, sign bit = parity of x.
    pub fn encode(pt: &Point) -> [u8; 32] {
        let p = p();
        let zi = inv(&pt.z);
        let x = &pt.x * &zi % p;
        let y = &pt.y * &zi % p;
        let mut out = [0u8; 32];
        let le = y.to_bytes_le();
        out[..le.len()].copy_from_slice(&le);
        if x.bit(0) {
            out[31] |= 0x80;
        }
        out
    }

    /// ref10 `FromBytes`, line by line: y from the low 255 bits (not checked against p),
    /// x = u·v³·(u·v⁷)^((p−5)/8), the two square checks, then the sign fix-up
    /// `if isnegative(x) != s[31] >> 7 { x = −x }` (a no-op for x = 0).
    pub fn decode(s: &[u8; 32]) -> Option<Point> {
        let p = p();
        let mut low = *s;
        low[31] &= 0x7F;
        let y = BigUint::from_bytes_le(&low) % p;
        let one = BigUint::from(1u8);
        let yy = &y * &y % p;
        let u = sub(&yy, &one);
        let v = (&yy * d() + &one) % p;
        let v3 = &v * &v * &v % p;
        let uv7 = &u * &v3 % p * &v3 % p * &v % p;
        let mut x = &u * &v3 % p * uv7.modpow(&((p - 5u32) >> 3u32), p) % p;
        let vxx = &v * &x % p * &x % p;
        if vxx != u {
            if (&vxx + &u) % p != BigUint::ZERO {
                return None;
            }
            x = x * sqrt_m1() % p;
        }
        if x.bit(0) != (s[31] >> 7 == 1) {
            x = sub(&BigUint::ZERO, &x);
        }
        Some(affine(x, y))
    }

    pub fn basepoint() -> Point {
        let mut b = [0x66u8; 32];
        b[0] = 0x58;
        decode(&b).expect("basepoint decodes")
    }

    /// ref10 / Bytom `Verify`.
    pub fn verify(public_key: &[u8; 32], message: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 64 || sig[63] & 0xE0 != 0 {
            return false;
        }
        let Some(a) = decode(public_key) else {
            return false;
        };
        let digest = Sha512::new()
            .chain_update(&sig[..32])
            .chain_update(public_key)
            .chain_update(message)
            .finalize();
        let k = BigUint::from_bytes_le(&digest) % l();
        let s = BigUint::from_bytes_le(&sig[32..]); // raw, < 2^253, NOT reduced
        let r = add(&mul(&s, &basepoint()), &mul(&k, &neg(&a)));
        encode(&r)[..] == sig[..32]
    }
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn arr32(v: &[u8]) -> [u8; 32] {
    v.try_into().expect("32 bytes")
}

fn dalek_verify(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<bool> {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).ok()?;
    Some(
        vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok(),
    )
}

fn dalek_verify_legacy(pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<bool> {
    use ed25519_dalek::Verifier;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).ok()?;
    Some(
        vk.verify(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok(),
    )
}

/// Asserts the code under test and the ref10 oracle agree, and returns the verdict.
fn both(pk: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    checked(pk, msg, sig, true)
}

/// [`verify`], cross-checked with the (slow, unoptimised in debug) oracle when `with_oracle`.
/// Grinding loops consult the oracle on every hit and on the first few misses.
fn checked(pk: &[u8; 32], msg: &[u8], sig: &[u8], with_oracle: bool) -> bool {
    let ours = verify(pk, msg, sig);
    if with_oracle {
        assert_eq!(
            ours,
            oracle::verify(pk, msg, sig),
            "disagreement with the ref10 oracle"
        );
    }
    ours
}

fn h(parts: &[&[u8]]) -> [u8; 64] {
    let mut hasher = Sha512::new();
    for p in parts {
        hasher.update(p);
    }
    hasher.finalize().into()
}

fn scalar_from(label: &[u8], i: u32) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&h(&[label, &i.to_le_bytes()]))
}

fn challenge(r: &[u8; 32], pk: &[u8; 32], msg: &[u8]) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&h(&[r, pk, msg]))
}

fn sig(r: &[u8; 32], s: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(r);
    out[32..].copy_from_slice(s);
    out
}

/// k mod 8, read off the low byte of the reduced challenge.
fn k_mod8(k: &Scalar) -> u8 {
    k.as_bytes()[0] & 7
}

/// A point of exact order 8, found as `[L]P` (the torsion part of a random point) without
/// relying on dalek's hidden torsion table.
fn order8_point() -> EdwardsPoint {
    for i in 0u32.. {
        let candidate = CompressedEdwardsY(arr32(&h(&[b"torsion", &i.to_le_bytes()])[..32]));
        let Some(p) = candidate.decompress() else {
            continue;
        };
        let minus_one = Scalar::ZERO - Scalar::ONE; // L − 1
        let t = p * minus_one + p; // [L]P
        if !(Scalar::from(4u8) * t).is_identity() {
            assert!((Scalar::from(8u8) * t).is_identity());
            return t;
        }
    }
    unreachable!()
}

/// p + n as a (non-canonical when n < 19) little-endian encoding with the given sign bit.
fn p_plus(n: u32, sign: bool) -> [u8; 32] {
    let v = oracle::p() + n;
    let mut out = [0u8; 32];
    let le = v.to_bytes_le();
    out[..le.len()].copy_from_slice(&le);
    if sign {
        out[31] |= 0x80;
    }
    out
}

fn add_l(s: &[u8]) -> [u8; 32] {
    let v = BigUint::from_bytes_le(s) + oracle::l();
    let mut out = [0u8; 32];
    let le = v.to_bytes_le();
    assert!(le.len() <= 32);
    out[..le.len()].copy_from_slice(&le);
    out
}

// ---------------------------------------------------------------------------------------------
// RFC 8032 §7.1 vectors
// ---------------------------------------------------------------------------------------------

const TEST_1024_MSG: &str = concat!(
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1",
    "e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d",
    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a",
    "7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e",
    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10",
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1",
    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d",
    "502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270",
    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b",
    "eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba",
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b",
    "e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7",
    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d",
    "cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df",
    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7",
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4",
    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09",
    "43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f",
    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161",
    "0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d",
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca",
    "c60c905c15fc910840b94c00a0b9d0",
);

/// (name, seed, public key, message, signature)
const RFC8032: [(&str, &str, &str, &str, &str); 4] = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        TEST_1024_MSG,
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
];

#[test]
fn rfc8032_vectors_sign_and_verify() {
    for (name, seed, pk, msg, expected) in RFC8032 {
        let key = SigningKey::from_seed(&arr32(&hex(seed)));
        let pk = arr32(&hex(pk));
        let msg = hex(msg);
        let expected = hex(expected);
        assert_eq!(key.public_key(), pk, "{name}: public key");
        assert_eq!(key.sign(&msg)[..], expected[..], "{name}: signature");
        assert!(both(&pk, &msg, &expected), "{name}: verify");
        let mut wrong = msg.clone();
        wrong.push(0);
        assert!(!both(&pk, &wrong, &expected), "{name}: other message");
    }
    assert_eq!(hex(TEST_1024_MSG).len(), 1023);
}

#[test]
fn sign_verify_round_trips_match_ed25519_dalek() {
    for i in 0u32..24 {
        let seed = arr32(&h(&[b"seed", &i.to_le_bytes()])[..32]);
        let msg: Vec<u8> = h(&[b"msg", &i.to_le_bytes()])
            .iter()
            .copied()
            .cycle()
            .take(i as usize * 7)
            .collect();
        let key = SigningKey::from_seed(&seed);
        let theirs = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(key.public_key(), theirs.verifying_key().to_bytes());
        let s = key.sign(&msg);
        use ed25519_dalek::Signer;
        assert_eq!(s, theirs.sign(&msg).to_bytes());
        assert!(verify(&key.public_key(), &msg, &s));
        if i < 4 {
            assert!(oracle::verify(&key.public_key(), &msg, &s));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Where Bytom's rule differs from strict / ZIP-215 verifiers
// ---------------------------------------------------------------------------------------------

/// S' = S + L (< 2^253). ref10 checks only `sig[63] & 0xE0`, then runs the double-scalar
/// multiplication on the raw 253-bit S'. [S']B = [S]B + [L]B = [S]B because B has order L, so
/// the equation still holds: Bytom ACCEPTS the malleated signature. ed25519-dalek (both verify
/// and verify_strict) rejects it because S' is not canonical. S + 2L is always ≥ 2^253, so it
/// is rejected by the high-bits check.
#[test]
fn s_plus_l_is_accepted_like_ref10() {
    for i in 0u32..3 {
        let key = SigningKey::from_seed(&arr32(&h(&[b"malleate", &i.to_le_bytes()])[..32]));
        let msg = b"malleable";
        let good = key.sign(msg);
        let s1 = add_l(&good[32..]);
        assert_eq!(s1[31] & 0xE0, 0, "S + L stays below 2^253");
        let mal = sig(&arr32(&good[..32]), &s1);
        assert!(both(&key.public_key(), msg, &mal), "ref10 accepts S + L");
        assert_eq!(
            dalek_verify_legacy(&key.public_key(), msg, &mal),
            Some(false)
        );
        assert_eq!(dalek_verify(&key.public_key(), msg, &mal), Some(false));

        let s2 = add_l(&s1);
        assert_ne!(s2[31] & 0xE0, 0, "S + 2L reaches 2^253");
        assert!(!both(
            &key.public_key(),
            msg,
            &sig(&arr32(&good[..32]), &s2)
        ));
    }
}

/// Any of the top three bits of sig[63] set: ref10 returns false before decoding anything,
/// even when S mod L would make the equation hold.
#[test]
fn high_bits_of_s_are_rejected() {
    let key = SigningKey::from_seed(&[9u8; 32]);
    let good = key.sign(b"m");
    for bit in [0x20u8, 0x40, 0x80] {
        let mut bad = good;
        bad[63] |= bit;
        assert!(!both(&key.public_key(), b"m", &bad));
    }
}

/// Mixed-order key A' = [a]B + T (T of order 8) and an honest-looking signature R = [r]B,
/// S = r + k·a. Then [S]B − [k]A' = R − [k]T, so the cofactored equation
/// [8]([S]B − [k]A' − R) = 0 always holds, but ref10's cofactorless comparison holds only when
/// [k]T = 0, i.e. k ≡ 0 (mod 8). Bytom rejects the other 7/8 (a ZIP-215 verifier accepts them).
#[test]
fn mixed_order_key_uses_the_cofactorless_equation() {
    let t = order8_point();
    let a = scalar_from(b"mixed", 0);
    let pk = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
    let (mut accepted, mut rejected) = (0, 0);
    for i in 0u32..24 {
        let msg = i.to_le_bytes();
        let r = scalar_from(b"nonce", i);
        let r_bytes = EdwardsPoint::mul_base(&r).compress().to_bytes();
        let k = challenge(&r_bytes, &pk, &msg);
        let s = r + k * a;
        let sg = sig(&r_bytes, s.as_bytes());
        let big_a = CompressedEdwardsY(pk).decompress().expect("decodes");
        let big_r = CompressedEdwardsY(r_bytes).decompress().expect("decodes");
        let cofactored = (EdwardsPoint::mul_base(&s) - k * big_a - big_r)
            .mul_by_cofactor()
            .is_identity();
        assert!(cofactored, "valid under the cofactored equation");
        let expected = k_mod8(&k) == 0;
        assert_eq!(
            checked(&pk, &msg, &sg, expected || i < 8),
            expected,
            "message {i}"
        );
        // ed25519-dalek is cofactorless too, and A' is not of small order.
        assert_eq!(dalek_verify_legacy(&pk, &msg, &sg), Some(expected));
        assert_eq!(dalek_verify(&pk, &msg, &sg), Some(expected));
        if expected {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(accepted > 0 && rejected > 0, "{accepted} / {rejected}");
}

/// The torsion can also sit in R: R = [r]B − [k]T with k ≡ j (mod 8) ground out. The
/// cofactorless equation then holds exactly, and ref10 accepts.
#[test]
fn mixed_order_key_with_torsioned_r_is_accepted() {
    let t = order8_point();
    let a = scalar_from(b"mixed-r", 0);
    let pk = (EdwardsPoint::mul_base(&a) + t).compress().to_bytes();
    let msg = b"torsion in R";
    let mut found = 0;
    for i in 0u32..32 {
        let j = (i % 8) as u8;
        let r = scalar_from(b"nonce-r", i);
        let r_bytes = (EdwardsPoint::mul_base(&r) - Scalar::from(j) * t)
            .compress()
            .to_bytes();
        let k = challenge(&r_bytes, &pk, msg);
        let sg = sig(&r_bytes, (r + k * a).as_bytes());
        let expected = k_mod8(&k) == j;
        assert_eq!(checked(&pk, msg, &sg, expected || i < 8), expected);
        found += usize::from(expected);
    }
    assert!(found > 0);
}

/// Small-order keys. ref10 never checks the order of A. For A = T (order 8) and S = r, the
/// equation is [r]B − [k]T = R; grinding R = [r]B − [j]T until k ≡ j (mod 8) makes it hold,
/// and ref10 accepts. verify_strict rejects the weak key; ed25519-dalek's verify accepts.
#[test]
fn small_order_key_is_accepted_when_the_equation_holds() {
    let t = order8_point();
    let pk = t.compress().to_bytes();
    assert!(CompressedEdwardsY(pk).decompress().is_some());
    let msg = b"weak key";
    let mut found = 0;
    for i in 0u32..32 {
        let j = (i % 8) as u8;
        let r = scalar_from(b"weak", i);
        let r_bytes = (EdwardsPoint::mul_base(&r) - Scalar::from(j) * t)
            .compress()
            .to_bytes();
        let k = challenge(&r_bytes, &pk, msg);
        let sg = sig(&r_bytes, r.as_bytes());
        let expected = k_mod8(&k) == j;
        assert_eq!(checked(&pk, msg, &sg, expected || i < 8), expected);
        if expected {
            found += 1;
            assert_eq!(dalek_verify_legacy(&pk, msg, &sg), Some(true));
            assert_eq!(dalek_verify(&pk, msg, &sg), Some(false), "strict: weak key");
        }
    }
    assert!(found > 0);
}

/// The identity as public key (`01 00…00`). −A = identity, so R' = [S]B for every message:
/// (enc([r]B), r) is a valid signature on anything, and so is (enc(identity), 0). ref10 has no
/// weak-key check, so Bytom accepts; verify_strict rejects. The sign bit of x = 0 is ignored by
/// ref10's decoder (`01 00…80` decodes to the same identity; RFC 8032 would reject it), and the
/// non-canonical y = p + 1 encodings (`ee ff…7f`, `ee ff…ff`) decode to it as well. The key
/// bytes are hashed raw, which does not matter here because [k]·identity = identity.
#[test]
fn identity_key_accepts_forgeries_in_every_encoding() {
    let mut canonical = [0u8; 32];
    canonical[0] = 1;
    let mut signed = canonical;
    signed[31] |= 0x80;
    let encodings = [canonical, signed, p_plus(1, false), p_plus(1, true)];
    let id_bytes = EdwardsPoint::identity().compress().to_bytes();
    assert_eq!(id_bytes, canonical);
    for pk in encodings {
        assert!(oracle::decode(&pk).is_some());
        let point = CompressedEdwardsY(pk).decompress().expect("ref10 accepts");
        assert!(point.is_identity());
        for (i, msg) in [&b""[..], b"anything", b"at all"].into_iter().enumerate() {
            let r = scalar_from(b"id", i as u32);
            let forged = sig(
                &EdwardsPoint::mul_base(&r).compress().to_bytes(),
                r.as_bytes(),
            );
            assert!(both(&pk, msg, &forged));
            assert!(both(&pk, msg, &sig(&id_bytes, &[0u8; 32])));
        }
    }
    assert_eq!(
        dalek_verify(&canonical, b"", &sig(&id_bytes, &[0u8; 32])),
        Some(false)
    );
}

/// Non-canonical public keys y ∈ [p, 2^255). ref10's `FeFromBytes` masks bit 255 and the field
/// arithmetic works mod p, so y ≥ p decodes as y − p (RFC 8032 would reject). The key bytes
/// still enter the hash as written. Here A = enc(p) = the order-4 point (x = ±√−1, y = 0): a
/// forged signature ground for the non-canonical bytes verifies; the same (R, S) under the
/// canonical bytes of the same point verifies only if its own challenge happens to agree mod 4.
#[test]
fn non_canonical_key_is_reduced_mod_p_and_hashed_raw() {
    for sign in [false, true] {
        let pk_nc = p_plus(0, sign);
        let a = CompressedEdwardsY(pk_nc)
            .decompress()
            .expect("y = p decodes as y = 0");
        let pk_c = a.compress().to_bytes();
        assert_ne!(pk_c, pk_nc);
        assert_eq!(CompressedEdwardsY(pk_c).decompress(), Some(a));
        assert!((Scalar::from(4u8) * a).is_identity() && !(Scalar::from(2u8) * a).is_identity());
        let msg = b"non-canonical key";
        let mut found = 0;
        for i in 0u32..16 {
            let j = (i % 4) as u8;
            let r = scalar_from(b"nc", i);
            let r_bytes = (EdwardsPoint::mul_base(&r) - Scalar::from(j) * a)
                .compress()
                .to_bytes();
            let k = challenge(&r_bytes, &pk_nc, msg);
            let sg = sig(&r_bytes, r.as_bytes());
            let expected = k.as_bytes()[0] & 3 == j;
            assert_eq!(checked(&pk_nc, msg, &sg, expected || i < 4), expected);
            if expected {
                found += 1;
                let k_c = challenge(&r_bytes, &pk_c, msg);
                assert_eq!(both(&pk_c, msg, &sg), k_c.as_bytes()[0] & 3 == j);
            }
        }
        assert!(found > 0);
    }
}

/// ref10's decoder and dalek's `decompress` agree on every non-canonical encoding (y = p … p+18,
/// both sign bits), on the x = 0 encodings with the sign bit set (y = 1 and y = −1), and on
/// small and random y. Agreement means: both reject, or both return the same affine point.
#[test]
fn decoder_matches_ref10_on_edge_encodings() {
    let mut inputs: Vec<[u8; 32]> = Vec::new();
    for n in 0..19 {
        inputs.push(p_plus(n, false));
        inputs.push(p_plus(n, true));
    }
    for y in 0u8..24 {
        let mut e = [0u8; 32];
        e[0] = y;
        inputs.push(e);
        e[31] = 0x80;
        inputs.push(e);
    }
    // y = p − 1 = −1: the point of order 2, x = 0.
    let mut m1 = p_plus(0, false);
    m1[0] -= 1;
    inputs.push(m1);
    m1[31] |= 0x80;
    inputs.push(m1);
    for i in 0u32..64 {
        inputs.push(arr32(&h(&[b"rand", &i.to_le_bytes()])[..32]));
    }
    let (mut ok, mut bad) = (0, 0);
    for e in inputs {
        let ours = CompressedEdwardsY(e).decompress();
        let theirs = oracle::decode(&e);
        match (ours, theirs) {
            (None, None) => bad += 1,
            (Some(p), Some(q)) => {
                assert_eq!(p.compress().to_bytes(), oracle::encode(&q), "{e:02x?}");
                ok += 1;
            }
            (p, q) => panic!("decoders disagree on {e:02x?}: {p:?} vs {q:?}"),
        }
    }
    assert!(ok > 0 && bad > 0, "both outcomes exercised: {ok} / {bad}");
}

/// An undecodable key (u/v not a square): ref10 returns false, whatever the signature.
#[test]
fn undecodable_key_is_rejected() {
    let pk = (2u8..)
        .map(|y| {
            let mut e = [0u8; 32];
            e[0] = y;
            e
        })
        .find(|e| oracle::decode(e).is_none())
        .expect("some small y has no x");
    let key = SigningKey::from_seed(&[5u8; 32]);
    let s = key.sign(b"m");
    assert!(!both(&pk, b"m", &s));
    assert!(!both(&pk, b"m", &sig(&[0u8; 32], &[0u8; 32])));
}

/// Non-canonical R. ref10 never decodes R: it compares enc(R') with the 32 signature bytes, and
/// enc is canonical, so an R with y ≥ p can never match even when it names the right point.
/// Key A = the order-4 point, S = 0: R' = −[k]A, which is the identity when k ≡ 0 (mod 4).
/// With R_bytes = enc(p + 1) (a non-canonical identity) the points agree, yet ref10 rejects;
/// a verifier that decompresses R and compares points would accept.
#[test]
fn non_canonical_r_is_rejected() {
    let pk = {
        let mut e = [0u8; 32];
        e[31] = 0x80; // y = 0, x = −√−1 branch: the order-4 point
        e
    };
    let a = CompressedEdwardsY(pk).decompress().expect("decodes");
    let mut point_equal = 0;
    for i in 0u32..16 {
        let msg = i.to_le_bytes();
        for r_bytes in [p_plus(1, false), p_plus(1, true)] {
            let sg = sig(&r_bytes, &[0u8; 32]);
            let k = challenge(&r_bytes, &pk, &msg);
            let r_prime = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-a, &Scalar::ZERO);
            let r_decoded = CompressedEdwardsY(r_bytes).decompress().expect("decodes");
            let same_point = r_prime == r_decoded;
            point_equal += usize::from(same_point);
            assert!(
                !checked(&pk, &msg, &sg, same_point || i < 2),
                "non-canonical R must not match"
            );
            assert_eq!(dalek_verify_legacy(&pk, &msg, &sg), Some(false));
        }
        // The canonical identity encoding does match when k ≡ 0 (mod 4).
        let id = EdwardsPoint::identity().compress().to_bytes();
        let k = challenge(&id, &pk, &msg);
        let expected = k.as_bytes()[0] & 3 == 0;
        assert_eq!(
            checked(&pk, &msg, &sig(&id, &[0u8; 32]), expected || i < 2),
            expected
        );
    }
    assert!(point_equal > 0, "some case had R' equal to the decoded R");
}

#[test]
fn wrong_signature_lengths_are_rejected() {
    let key = SigningKey::from_seed(&[4u8; 32]);
    let good = key.sign(b"m");
    for len in [0usize, 1, 32, 63, 65, 96, 128] {
        let mut v = good.to_vec();
        v.resize(len, 0);
        assert!(!both(&key.public_key(), b"m", &v), "length {len}");
    }
    let mut long = good.to_vec();
    long.push(0);
    assert!(!verify(&key.public_key(), b"m", &long));
}

/// Random mutations of valid signatures and keys: the dalek-based verifier and the ref10 oracle
/// agree everywhere (mostly on `false`, plus the S + L and torsion cases that stay `true`).
#[test]
fn agrees_with_the_ref10_oracle_on_mutations() {
    let t = order8_point();
    for i in 0u32..12 {
        let key = SigningKey::from_seed(&arr32(&h(&[b"mut", &i.to_le_bytes()])[..32]));
        let msg = h(&[b"m", &i.to_le_bytes()]);
        let good = key.sign(&msg);
        let pk = key.public_key();
        assert!(both(&pk, &msg, &good));
        let byte = (i as usize * 5) % 64;
        let mut flipped = good;
        flipped[byte] ^= 1 << (i % 8);
        both(&pk, &msg, &flipped);
        let torsioned = (CompressedEdwardsY(pk).decompress().expect("valid") + t)
            .compress()
            .to_bytes();
        both(&torsioned, &msg, &good);
        let mut pk_flip = pk;
        pk_flip[31] ^= 0x80;
        both(&pk_flip, &msg, &good);
    }
}
