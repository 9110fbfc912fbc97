//! Merkle roots of a block's transactions and transaction statuses (spec §3.4).
//!
//! Leaves are `SHA3(0x00 || data)`, interior nodes `SHA3(0x01 || left || right)`. A list of
//! n > 1 items splits at k, the largest power of two strictly below n (RFC 6962); the empty
//! list's root is `SHA3("")`.

use crate::hash::{sha3, Hash};

const LEAF_PREFIX: u8 = 0x00;
const INTERIOR_PREFIX: u8 = 0x01;

/// Leaf data of a transaction that succeeded: the JSON text `{}`.
pub const STATUS_OK_JSON: &[u8] = b"{}";
/// Leaf data of a gas-only (status-fail) transaction: the JSON text `{"status_fail":true}`.
pub const STATUS_FAIL_JSON: &[u8] = b"{\"status_fail\":true}";

/// The root of the empty tree, `SHA3("")`.
pub fn empty_root() -> Hash {
    sha3(&[])
}

fn leaf(data: &[u8]) -> Hash {
    let mut buf = Vec::with_capacity(1 + data.len());
    buf.push(LEAF_PREFIX);
    buf.extend_from_slice(data);
    sha3(&buf)
}

fn interior(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = INTERIOR_PREFIX;
    buf[1..33].copy_from_slice(&left.0);
    buf[33..].copy_from_slice(&right.0);
    sha3(&buf)
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The merkle root over the given leaf data items.
pub fn merkle_root<T: AsRef<[u8]>>(items: &[T]) -> Hash {
    match items {
        [] => empty_root(),
        [one] => leaf(one.as_ref()),
        _ => {
            let (left, right) = items.split_at(split_point(items.len()));
            interior(&merkle_root(left), &merkle_root(right))
        }
    }
}

/// The transactions merkle root: leaves are the 32-byte transaction IDs.
pub fn tx_merkle_root(tx_ids: &[Hash]) -> Hash {
    merkle_root(tx_ids)
}

/// The transaction-status root: one leaf per transaction, `{}` for success and
/// `{"status_fail":true}` for a gas-only transaction.
pub fn tx_status_merkle_root(status_fail: &[bool]) -> Hash {
    let leaves: Vec<&[u8]> = status_fail
        .iter()
        .map(|&fail| {
            if fail {
                STATUS_FAIL_JSON
            } else {
                STATUS_OK_JSON
            }
        })
        .collect();
    merkle_root(&leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rule() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        let ids: Vec<Hash> = (0..3u8).map(|i| Hash([i; 32])).collect();
        let expected = interior(
            &interior(&leaf(&ids[0].0), &leaf(&ids[1].0)),
            &leaf(&ids[2].0),
        );
        assert_eq!(tx_merkle_root(&ids), expected);
    }

    #[test]
    fn single_ok_status_root() {
        assert_eq!(
            tx_status_merkle_root(&[false]).to_hex(),
            "c9c377e5192668bc0a367e4a4764f11e7c725ecced1d7b6a492974fab1b6d5bc"
        );
        assert_eq!(
            empty_root().to_hex(),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
    }
}
