//! What every batched (GPU and float) backend shares: the per-chain matrix sequences of a
//! batch of header hashes, a nonce search built on `hash_batch`, and the CPU confirmation of
//! every hit before it leaves the backend.
//!
//! A device answer that fails to confirm is a device error, never a submitted share: the
//! search returns [`BackendError::Device`] naming the nonce.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::cpu::{CpuKernel, KernelSeed};
use super::{chain_sequence, CHAINS};
use crate::backend::{BackendError, Hit, Result, SearchOutcome};
use crate::pow::{HeaderTemplate, Target};

/// The 32-entry matrix sequences of every chain of every header hash, flattened as
/// `[hash][chain][step]` (128 bytes per hash), ready for upload.
pub fn sequences(header_hashes: &[[u8; 32]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_hashes.len() * CHAINS * 32);
    for h in header_hashes {
        for k in 0..CHAINS {
            out.extend_from_slice(&chain_sequence(h, k));
        }
    }
    out
}

/// Recomputes a device result on the fastest CPU kernel of this machine.
pub struct CpuConfirm {
    kernel: KernelSeed,
}

impl CpuConfirm {
    /// Prepares the best CPU kernel for `seed` (shared with any CPU backend through the caches).
    ///
    /// # Errors
    /// Never in practice: the best kernel is always supported.
    pub fn new(seed: &[u8; 32]) -> Result<Self> {
        Ok(Self {
            kernel: KernelSeed::new(CpuKernel::best(), seed)?,
        })
    }

    /// Tensority of `header_hash` on the CPU.
    pub fn hash(&self, header_hash: &[u8; 32]) -> [u8; 32] {
        self.kernel.hash(header_hash)
    }

    /// Checks a device result; a mismatch is a [`BackendError::Device`] on `device`.
    ///
    /// # Errors
    /// When the CPU gives a different result.
    pub fn confirm(
        &self,
        device: &str,
        header_hash: &[u8; 32],
        device_result: &[u8; 32],
    ) -> Result<()> {
        let cpu = self.hash(header_hash);
        if &cpu == device_result {
            Ok(())
        } else {
            Err(BackendError::Device {
                device: device.to_string(),
                message: format!(
                    "result for header {} differs from the CPU ({} vs {})",
                    crate::hex::encode(header_hash),
                    crate::hex::encode(device_result),
                    crate::hex::encode(&cpu)
                ),
            })
        }
    }
}

/// A batched hasher: header hashes in, Tensority results out, in order.
pub type HashBatch<'a> = dyn Fn(&[[u8; 32]]) -> Result<Vec<[u8; 32]>> + 'a;

/// A nonce search over any batched hasher: nonces are hashed `batch` at a time (the stop flag
/// is checked between batches), results are compared with `target`, and every hit is confirmed
/// on the CPU before it is returned.
///
/// # Errors
/// What `hash_batch` returns, or [`BackendError::Device`] when a hit does not confirm.
// The arguments of `PreparedSeed::search` plus the device's name, batch size, hasher and
// confirmer: grouping them in a struct would only move the list.
#[allow(clippy::too_many_arguments)]
pub fn batched_search(
    device: &str,
    batch: usize,
    hash_batch: &HashBatch<'_>,
    confirm: &CpuConfirm,
    template: &HeaderTemplate,
    nonces: Range<u64>,
    target: &Target,
    stop: &AtomicBool,
) -> Result<SearchOutcome> {
    let batch = batch.max(1) as u64;
    let mut outcome = SearchOutcome::default();
    let mut next = nonces.start;
    while next < nonces.end {
        if stop.load(Ordering::Relaxed) {
            outcome.stopped = true;
            break;
        }
        let end = next.saturating_add(batch).min(nonces.end);
        let headers: Vec<[u8; 32]> = (next..end)
            .into_par_iter()
            .map(|n| template.header_hash(n))
            .collect();
        let results = hash_batch(&headers)?;
        if results.len() != headers.len() {
            return Err(BackendError::Device {
                device: device.to_string(),
                message: format!("{} results for {} headers", results.len(), headers.len()),
            });
        }
        for (i, (header_hash, pow_hash)) in headers.iter().zip(&results).enumerate() {
            if target.is_met_by(pow_hash) {
                confirm.confirm(device, header_hash, pow_hash)?;
                outcome.hits.push(Hit {
                    nonce: next + i as u64,
                    header_hash: *header_hash,
                    pow_hash: *pow_hash,
                });
            }
        }
        outcome.hashes += end - next;
        next = end;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensority::seed::shared_matrices;

    #[test]
    fn sequences_are_the_chain_sequences_in_order() {
        let hashes = [[1u8; 32], [2u8; 32]];
        let s = sequences(&hashes);
        assert_eq!(s.len(), 2 * CHAINS * 32);
        assert_eq!(&s[32 * 5..32 * 6], &chain_sequence(&hashes[1], 1));
    }

    #[test]
    fn a_wrong_device_hit_is_an_error_and_a_right_one_is_returned() {
        let seed = [7u8; 32];
        let _ = shared_matrices(&seed);
        let confirm = CpuConfirm::new(&seed).unwrap();
        let template = HeaderTemplate::new(1, 2, &[3; 32], 4, &[5; 32], &[6; 32], 0);
        let everything = Target::from_le_bytes([0xff; 32]);
        let stop = AtomicBool::new(false);
        let honest = |h: &[[u8; 32]]| Ok(h.iter().map(|x| confirm.hash(x)).collect());
        let out = batched_search(
            "test",
            2,
            &honest,
            &confirm,
            &template,
            10..13,
            &everything,
            &stop,
        )
        .unwrap();
        assert_eq!(out.hashes, 3);
        assert_eq!(
            out.hits.iter().map(|h| h.nonce).collect::<Vec<_>>(),
            [10, 11, 12]
        );
        let liar = |h: &[[u8; 32]]| Ok(vec![[0u8; 32]; h.len()]);
        let err = batched_search(
            "test",
            2,
            &liar,
            &confirm,
            &template,
            10..13,
            &everything,
            &stop,
        )
        .unwrap_err();
        assert!(matches!(err, BackendError::Device { .. }), "{err}");
        stop.store(true, Ordering::Relaxed);
        let out = batched_search(
            "test",
            2,
            &honest,
            &confirm,
            &template,
            10..13,
            &everything,
            &stop,
        )
        .unwrap();
        assert!(out.stopped && out.hashes == 0);
    }
}
