//! Bytom addresses: segwit-style bech32 (BIP-173, checksum constant 1) of a version-0 witness
//! program, with the network's human-readable part (`bm` mainnet, `tm` testnet, `sm`
//! solonet, `dm` devnet). A 20-byte program is a P2WPKH address (control program
//! `00 14 <hash>`), a 32-byte one a P2WSH address (`00 20 <hash>`).
//!
//! [`decode_address`] turns an address into the control program a coinbase or output pays to,
//! [`encode_address`] goes back; [`parse_mining_target`] also accepts a raw control program
//! in hex (what `--mining-address` takes).

use bech32::primitives::hrp::Hrp;
use bech32::Fe32;
use bystack_engine::consensus::Network;
use bystack_engine::vm::{
    is_p2wpkh_script, is_p2wsh_script, is_straightforward, p2wpkh_program, p2wsh_program,
};

/// Length of a P2WPKH witness program (a RIPEMD-160 of the public key).
pub const P2WPKH_LEN: usize = 20;
/// Length of a P2WSH witness program (a SHA3-256 of the witness script).
pub const P2WSH_LEN: usize = 32;

/// Why an address or mining target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a valid segwit bech32 string (bad characters, mixed case, bad checksum, bad
    /// padding, a program length the witness version does not allow, …).
    #[error("invalid bech32 address {address:?}: {reason}")]
    Bech32 {
        /// The input.
        address: String,
        /// The decoder's reason.
        reason: String,
    },
    /// The address belongs to another network.
    #[error("address {address:?} has prefix {found:?}, network {network} expects {expected:?}")]
    WrongNetwork {
        /// The input.
        address: String,
        /// Its human-readable part.
        found: String,
        /// The network's.
        expected: &'static str,
        /// The network's name.
        network: &'static str,
    },
    /// Bytom only knows witness version 0.
    #[error("unsupported witness version {version} (Bytom addresses are version 0)")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// A version-0 program of another length than 20 or 32 bytes.
    #[error(
        "witness program of {len} bytes: expected {P2WPKH_LEN} (P2WPKH) or {P2WSH_LEN} (P2WSH)"
    )]
    ProgramLength {
        /// The length found.
        len: usize,
    },
    /// The control program is not P2WPKH or P2WSH, so it has no address.
    #[error("control program {program} is neither P2WPKH nor P2WSH")]
    NotAddressable {
        /// The program, in hex.
        program: String,
    },
    /// A mining target that is neither an address of the network nor a hex control program.
    #[error("mining target {input:?} is neither a {network} address nor a hex control program")]
    BadMiningTarget {
        /// The input.
        input: String,
        /// The network's name.
        network: &'static str,
    },
    /// A raw control program that a coinbase may not pay to (Bytom's standardness rule:
    /// P2WPKH, P2WSH, or a single `TRUE`/`FAIL`).
    #[error("control program {program} is not standard (P2WPKH, P2WSH, TRUE or FAIL)")]
    NonStandardProgram {
        /// The program, in hex.
        program: String,
    },
}

/// Result alias for addresses.
pub type AddressResult<T> = Result<T, AddressError>;

/// The witness program (the hash) inside a version-0 control program, if it is P2WPKH or
/// P2WSH.
fn witness_hash(program: &[u8]) -> Option<&[u8]> {
    let pkh = program.len() == 2 + P2WPKH_LEN && is_p2wpkh_script(program);
    let sh = program.len() == 2 + P2WSH_LEN && is_p2wsh_script(program);
    // Both shapes are `<version> <push len> <hash>`; only version 0 has an address.
    (program.first() == Some(&0) && (pkh || sh)).then(|| &program[2..])
}

/// The control program of a version-0 witness program (`00 14 <20>` or `00 20 <32>`).
///
/// # Errors
/// [`AddressError::ProgramLength`].
pub fn control_program(witness: &[u8]) -> AddressResult<Vec<u8>> {
    if let Ok(hash) = <&[u8; P2WPKH_LEN]>::try_from(witness) {
        Ok(p2wpkh_program(hash))
    } else if let Ok(hash) = <&[u8; P2WSH_LEN]>::try_from(witness) {
        Ok(p2wsh_program(hash))
    } else {
        Err(AddressError::ProgramLength { len: witness.len() })
    }
}

/// Encodes `program` (P2WPKH or P2WSH, version 0) as a bech32 address with the
/// human-readable part `hrp`.
///
/// # Errors
/// [`AddressError::NotAddressable`] for another program, [`AddressError::Bech32`] for an
/// invalid `hrp`.
pub fn encode_with_hrp(hrp: &str, program: &[u8]) -> AddressResult<String> {
    let witness = witness_hash(program).ok_or_else(|| AddressError::NotAddressable {
        program: bystack_kernels::hex::encode(program),
    })?;
    let bech32_error = |reason: String| AddressError::Bech32 {
        address: hrp.to_string(),
        reason,
    };
    let hrp = Hrp::parse(hrp).map_err(|e| bech32_error(e.to_string()))?;
    bech32::segwit::encode_v0(hrp, witness).map_err(|e| bech32_error(e.to_string()))
}

/// Decodes a version-0 segwit bech32 `address` whatever its human-readable part: returns the
/// part (lowercase) and the control program.
///
/// # Errors
/// [`AddressError::Bech32`], [`AddressError::UnsupportedVersion`],
/// [`AddressError::ProgramLength`].
pub fn decode_any_hrp(address: &str) -> AddressResult<(String, Vec<u8>)> {
    let (hrp, version, witness) =
        bech32::segwit::decode(address).map_err(|e| AddressError::Bech32 {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    if version != Fe32::Q {
        return Err(AddressError::UnsupportedVersion {
            version: version.to_u8(),
        });
    }
    Ok((hrp.to_lowercase(), control_program(&witness)?))
}

/// The address of `program` on `network`.
///
/// # Errors
/// [`AddressError::NotAddressable`] when `program` is not a version-0 P2WPKH or P2WSH program.
pub fn encode_address(network: Network, program: &[u8]) -> AddressResult<String> {
    encode_with_hrp(network.params().bech32_hrp, program)
}

/// The control program `address` pays to, checking that it is an address of `network`.
///
/// # Errors
/// As [`decode_any_hrp`], plus [`AddressError::WrongNetwork`].
pub fn decode_address(network: Network, address: &str) -> AddressResult<Vec<u8>> {
    let (hrp, program) = decode_any_hrp(address)?;
    let params = network.params();
    if hrp != params.bech32_hrp {
        return Err(AddressError::WrongNetwork {
            address: address.to_string(),
            found: hrp,
            expected: params.bech32_hrp,
            network: params.name,
        });
    }
    Ok(program)
}

/// Whether a coinbase may pay to `program` (Bytom's standardness rule for BTM outputs).
pub fn is_standard_program(program: &[u8]) -> bool {
    is_p2wpkh_script(program) || is_p2wsh_script(program) || is_straightforward(program)
}

/// The coinbase control program of a `--mining-address` value: an address of `network`, or a
/// standard control program in hex.
///
/// # Errors
/// [`AddressError::WrongNetwork`] (and the other decoding errors) for a bech32 string of the
/// wrong network or with a bad checksum, [`AddressError::NonStandardProgram`] for a hex
/// program a coinbase may not pay to, [`AddressError::BadMiningTarget`] for anything else.
pub fn parse_mining_target(network: Network, input: &str) -> AddressResult<Vec<u8>> {
    let input = input.trim();
    if let Some(bytes) = decode_hex(input) {
        if !is_standard_program(&bytes) {
            return Err(AddressError::NonStandardProgram {
                program: input.to_ascii_lowercase(),
            });
        }
        return Ok(bytes);
    }
    if input.contains('1') {
        return decode_address(network, input);
    }
    Err(AddressError::BadMiningTarget {
        input: input.to_string(),
        network: network.params().name,
    })
}

/// Even-length hex, any case; `None` otherwise.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bystack_engine::consensus::GENESIS_CONTROL_PROGRAM;

    fn unhex(s: &str) -> Vec<u8> {
        decode_hex(s).expect("hex")
    }

    /// BIP-173's valid version-0 (P2WSH) vectors: Bytom addresses are the same encoding under other
    /// prefixes, so the program bytes must come out exactly.
    #[test]
    fn bip173_version_0_vectors_decode_to_their_programs() {
        for (address, program) in [
            (
                "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
                "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262",
            ),
            (
                "tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
                "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433",
            ),
        ] {
            let (_, decoded) = decode_any_hrp(address).expect(address);
            assert_eq!(decoded, unhex(program), "{address}");
            assert_eq!(encode_with_hrp("tb", &decoded).unwrap(), address);
        }
    }

    #[test]
    fn round_trip_on_every_network_for_both_program_kinds() {
        let pkh = GENESIS_CONTROL_PROGRAM.to_vec();
        let sh = p2wsh_program(&[0xab; 32]);
        for network in Network::ALL {
            let hrp = network.params().bech32_hrp;
            for program in [&pkh, &sh] {
                let address = encode_address(network, program).unwrap();
                assert!(address.starts_with(&format!("{hrp}1q")), "{address}");
                assert_eq!(decode_address(network, &address).unwrap(), *program);
                // Upper case is the same address; mixed case is not.
                assert_eq!(
                    decode_address(network, &address.to_ascii_uppercase()).unwrap(),
                    *program
                );
            }
        }
        let mainnet = encode_address(Network::Mainnet, &pkh).unwrap();
        assert_eq!(mainnet.len(), 42);
        assert_eq!(encode_address(Network::Mainnet, &sh).unwrap().len(), 62);
    }

    #[test]
    fn bad_addresses_get_typed_errors() {
        let program = GENESIS_CONTROL_PROGRAM.to_vec();
        let address = encode_address(Network::Mainnet, &program).unwrap();
        assert!(matches!(
            decode_address(Network::Testnet, &address),
            Err(AddressError::WrongNetwork { expected: "tm", .. })
        ));
        // One character changed: the checksum fails.
        let mut corrupted = address.clone().into_bytes();
        let last = corrupted.len() - 1;
        corrupted[last] = if corrupted[last] == b'q' { b'p' } else { b'q' };
        let corrupted = String::from_utf8(corrupted).unwrap();
        assert!(matches!(
            decode_address(Network::Mainnet, &corrupted),
            Err(AddressError::Bech32 { .. })
        ));
        let mut mixed = address.clone();
        mixed.replace_range(5..6, &address[5..6].to_ascii_uppercase());
        if mixed != address {
            assert!(matches!(
                decode_address(Network::Mainnet, &mixed),
                Err(AddressError::Bech32 { .. })
            ));
        }
        // A version-1 (bech32m) program: valid segwit, not Bytom.
        let hrp = Hrp::parse("bm").unwrap();
        let v1 = bech32::segwit::encode_v1(hrp, &[7u8; 32]).unwrap();
        assert_eq!(
            decode_address(Network::Mainnet, &v1),
            Err(AddressError::UnsupportedVersion { version: 1 })
        );
        assert!(matches!(
            encode_address(Network::Mainnet, &[0x51]),
            Err(AddressError::NotAddressable { .. })
        ));
        assert!(matches!(
            encode_address(Network::Mainnet, &[0x01, 0x14, 0, 0]),
            Err(AddressError::NotAddressable { .. })
        ));
        assert_eq!(
            control_program(&[1u8; 21]),
            Err(AddressError::ProgramLength { len: 21 })
        );
        for junk in ["", "bm1", "not an address", "bm1qqqqqq"] {
            assert!(decode_address(Network::Mainnet, junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn mining_targets_are_addresses_or_standard_hex_programs() {
        let program = GENESIS_CONTROL_PROGRAM.to_vec();
        let address = encode_address(Network::Devnet, &program).unwrap();
        assert_eq!(
            parse_mining_target(Network::Devnet, &address).unwrap(),
            program
        );
        assert_eq!(
            parse_mining_target(Network::Devnet, &bystack_kernels::hex::encode(&program)).unwrap(),
            program
        );
        assert_eq!(
            parse_mining_target(Network::Devnet, "51").unwrap(),
            vec![0x51]
        );
        assert!(matches!(
            parse_mining_target(Network::Devnet, "6a00"),
            Err(AddressError::NonStandardProgram { .. })
        ));
        assert!(matches!(
            parse_mining_target(Network::Mainnet, &address),
            Err(AddressError::WrongNetwork { .. })
        ));
        assert!(matches!(
            parse_mining_target(Network::Devnet, "xyz"),
            Err(AddressError::BadMiningTarget { .. })
        ));
    }
}
