//! Hex decoding with typed errors (inputs come from users, files and the network).

use thiserror::Error;

/// Why a hex string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    /// The string has the wrong number of characters.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Characters expected.
        expected: usize,
        /// Characters found.
        got: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex character {found:?} at position {position}")]
    Character {
        /// The offending character.
        found: char,
        /// Its character index in the input.
        position: usize,
    },
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes a hex string of any even length into bytes.
///
/// # Errors
/// [`HexError::Length`] for an odd length, [`HexError::Character`] for a non-hex character.
pub fn decode(s: &str) -> Result<Vec<u8>, HexError> {
    if let Some((position, found)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let position = s[..position].chars().count();
        return Err(HexError::Character { found, position });
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(HexError::Length {
            expected: bytes.len() + 1,
            got: bytes.len(),
        });
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|p| (nibble(p[0]).unwrap_or(0) << 4) | nibble(p[1]).unwrap_or(0))
        .collect())
}

/// Decodes exactly 32 bytes (64 hex characters).
///
/// # Errors
/// [`HexError::Length`] unless the string has 64 characters; [`HexError::Character`] for a
/// non-hex character.
pub fn decode32(s: &str) -> Result<[u8; 32], HexError> {
    if let Some((position, found)) = s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let position = s[..position].chars().count();
        return Err(HexError::Character { found, position });
    }
    if s.len() != 64 {
        return Err(HexError::Length {
            expected: 64,
            got: s.len(),
        });
    }
    let mut out = [0u8; 32];
    for (o, p) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *o = (nibble(p[0]).unwrap_or(0) << 4) | nibble(p[1]).unwrap_or(0);
    }
    Ok(out)
}

/// Encodes bytes as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let h = "00ff10Ab";
        assert_eq!(decode(h).unwrap(), vec![0, 255, 16, 171]);
        assert_eq!(encode(&decode(h).unwrap()), "00ff10ab");
        assert_eq!(
            decode("abc"),
            Err(HexError::Length {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(
            decode("zz"),
            Err(HexError::Character {
                found: 'z',
                position: 0
            })
        );
        assert_eq!(
            decode32("00"),
            Err(HexError::Length {
                expected: 64,
                got: 2
            })
        );
        let s = "é".repeat(32);
        assert_eq!(
            decode32(&s),
            Err(HexError::Character {
                found: 'é',
                position: 0
            })
        );
        assert_eq!(decode32(&"1".repeat(64)).unwrap(), [0x11; 32]);
    }
}
