//! Share verification off the async runtime: one dispatcher thread takes every waiting
//! request from a channel, groups them by seed and hashes each group with one
//! [`PreparedSeed::hash_batch`] call (the CPU backend spreads a batch over its own thread
//! pool; GPU backends run it as one launch).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;

use bystack_kernels::{open_backend_with, BackendOptions, PreparedSeed, TensorityBackend};
use tokio::sync::oneshot;

/// Prepared seeds kept (the seed changes every 256 blocks; two cover a change).
const SEED_CACHE: usize = 2;

/// A Tensority result, or the device's failure.
pub type VerifyResult = Result<[u8; 32], String>;

struct Request {
    seed: [u8; 32],
    header_hash: [u8; 32],
    reply: oneshot::Sender<VerifyResult>,
}

/// Handle to the verification thread; cloning shares it. The thread ends when every handle is
/// dropped.
#[derive(Clone)]
pub struct Verifier {
    requests: mpsc::Sender<Request>,
    backend_name: Arc<str>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("backend", &self.backend_name)
            .finish_non_exhaustive()
    }
}

/// Opens the backend for share verification: `name`, or for `"auto"` the CUDA backend where
/// one is present and the best CPU kernel otherwise.
///
/// # Errors
/// The backend's error when `name` cannot be opened.
pub fn open_verify_backend(
    name: &str,
    threads: usize,
) -> bystack_kernels::backend::Result<Box<dyn TensorityBackend>> {
    let options = BackendOptions {
        threads,
        ..BackendOptions::default()
    };
    if name == "auto" {
        if let Ok(gpu) = open_backend_with("cuda", &options) {
            return Ok(gpu);
        }
    }
    open_backend_with(name, &options)
}

impl Verifier {
    /// Starts the dispatcher thread over `backend`; at most `max_batch` hashes per call.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(backend: Box<dyn TensorityBackend>, max_batch: usize) -> std::io::Result<Self> {
        let backend_name: Arc<str> = backend.info().name.into();
        let (requests, incoming) = mpsc::channel();
        std::thread::Builder::new()
            .name("stratum-verify".into())
            .spawn(move || dispatch(backend, incoming, max_batch.max(1)))?;
        Ok(Verifier {
            requests,
            backend_name,
        })
    }

    /// The backend's name.
    pub fn backend_name(&self) -> &str {
        &self.backend_name
    }

    /// Tensority of `header_hash` under `seed`, computed on the dispatcher thread.
    ///
    /// # Errors
    /// The device's failure, or "verifier stopped".
    pub async fn verify(&self, seed: [u8; 32], header_hash: [u8; 32]) -> VerifyResult {
        let (reply, result) = oneshot::channel();
        self.requests
            .send(Request {
                seed,
                header_hash,
                reply,
            })
            .map_err(|_| "verifier stopped".to_string())?;
        result.await.map_err(|_| "verifier stopped".to_string())?
    }
}

fn dispatch(
    backend: Box<dyn TensorityBackend>,
    incoming: mpsc::Receiver<Request>,
    max_batch: usize,
) {
    let mut seeds: Vec<Arc<dyn PreparedSeed>> = Vec::new();
    while let Ok(first) = incoming.recv() {
        let mut by_seed: HashMap<[u8; 32], Vec<Request>> = HashMap::new();
        by_seed.entry(first.seed).or_default().push(first);
        let mut taken = 1;
        while taken < max_batch {
            match incoming.try_recv() {
                Ok(request) => {
                    by_seed.entry(request.seed).or_default().push(request);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        for (seed, group) in by_seed {
            let prepared = match prepared_seed(&*backend, &mut seeds, &seed) {
                Ok(p) => p,
                Err(e) => {
                    for request in group {
                        let _ = request.reply.send(Err(e.clone()));
                    }
                    continue;
                }
            };
            let hashes: Vec<[u8; 32]> = group.iter().map(|r| r.header_hash).collect();
            match prepared.hash_batch(&hashes) {
                Ok(results) if results.len() == group.len() => {
                    for (request, result) in group.into_iter().zip(results) {
                        let _ = request.reply.send(Ok(result));
                    }
                }
                Ok(results) => {
                    let message = format!(
                        "backend returned {} results for {} hashes",
                        results.len(),
                        group.len()
                    );
                    for request in group {
                        let _ = request.reply.send(Err(message.clone()));
                    }
                }
                Err(e) => {
                    for request in group {
                        let _ = request.reply.send(Err(e.to_string()));
                    }
                }
            }
        }
    }
}

fn prepared_seed(
    backend: &dyn TensorityBackend,
    cache: &mut Vec<Arc<dyn PreparedSeed>>,
    seed: &[u8; 32],
) -> Result<Arc<dyn PreparedSeed>, String> {
    if let Some(found) = cache.iter().find(|p| p.seed() == seed) {
        return Ok(found.clone());
    }
    let prepared = backend.prepare(seed).map_err(|e| e.to_string())?;
    cache.push(prepared.clone());
    if cache.len() > SEED_CACHE {
        cache.remove(0);
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifier_matches_the_reference() {
        let backend = open_verify_backend("cpu", 1).unwrap();
        let verifier = Verifier::start(backend, 8).unwrap();
        let seed = [7u8; 32];
        let tasks: Vec<_> = (0..4u8)
            .map(|i| {
                let v = verifier.clone();
                tokio::spawn(async move { v.verify(seed, [i; 32]).await })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let got = task.await.unwrap().unwrap();
            assert_eq!(got, bystack_kernels::tensority(&[i as u8; 32], &seed));
        }
    }
}
