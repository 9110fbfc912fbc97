//! The contract between the miner's devices and wherever work comes from: the embedded devnet
//! node, a node's HTTP API (`get-work-json` / `submit-work-json`), or a stratum pool.
//!
//! # Channels
//! A [`WorkSource`] runs as its own Tokio task ([`WorkSource::run`]) and talks to the miner only
//! through four channels:
//!
//! * `jobs` (`watch`, source → miner): the newest [`Job`], newest wins. `None` means "no work"
//!   (not connected yet, or the upstream is gone): devices idle. Publishing a job whose header
//!   differs from the previous one preempts every device within one hash per device; the
//!   devices then count nonces from the new job's [`Job::nonce_start`].
//! * `shares` (`mpsc`, miner → source): every [`Share`] a device found, already re-checked on the
//!   CPU against the job's share target. The source submits it upstream, looking the job up by
//!   [`Share::job_id`] (it keeps as many recent jobs as its protocol allows).
//! * `events` (`mpsc`, source → miner): what happened upstream ([`SourceEvent`]), for the
//!   accepted / rejected / stale counters and the log.
//! * `shutdown` (`watch`, miner → source): becomes `true` when the miner stops; the source then
//!   returns from `run` promptly (closing its connections).
//!
//! A share found for a job that has since been replaced is still sent when the new job had
//! `clean == false`, and dropped by the miner when it had `clean == true`.
//!
//! `run` returns `Ok(())` after a shutdown request and an error when the source gives up (e.g.
//! every configured pool failed); the miner then stops with that error.
//!
//! # Targets
//! [`Job::share_target`] is a 256-bit bound stored **little-endian**, exactly the bound of
//! [`bystack_kernels::pow::Target::AtMost`]: a Tensority result `r` (32 bytes as the hash
//! returns them) meets it when `r` read as a little-endian integer is `<=` the bound — the
//! comparison Bytom's `CheckProofOfWork` makes against the block's `bits`. Solo sources use the
//! block target ([`block_share_target`]); pools hand out an easier one. Whether a share also
//! meets the block target (the header's `bits`) is reported in [`Share::meets_block_target`].
//!
//! # Stratum
//! `crate::stratum::StratumSource` implements this trait for BTM stratum (spec protocols.md
//! §B) over the pools the user configured (`crate::config::PoolConfig`, in failover order).

use bystack_engine::{BlockHeader, Hash};
use bystack_kernels::pow::{HeaderTemplate, Target};
use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

/// One past the largest nonce a block can carry: headers serialize the nonce as a varint63,
/// so a nonce of 2^63 or more cannot even be encoded.
pub const NONCE_LIMIT: u64 = 1 << 63;

/// One unit of work from any source (embedded node, node HTTP API, stratum pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The source's job id (`""` where the source has none).
    pub id: String,
    /// The header to solve; the miner varies only `nonce`. The timestamp is used as given.
    pub header: BlockHeader,
    /// The Tensority seed for this header's height.
    pub seed: Hash,
    /// The share target: a little-endian 256-bit bound (see the module docs, "Targets").
    pub share_target: [u8; 32],
    /// First nonce this miner may use (a stratum session's nonce prefix; 0 otherwise).
    pub nonce_start: u64,
    /// End (exclusive) of the nonce range this miner may use ([`NONCE_LIMIT`] for the full
    /// range; the devices never go beyond [`NONCE_LIMIT`] whatever this says).
    pub nonce_end: u64,
    /// `true`: shares still in flight for the previous job are dropped.
    pub clean: bool,
}

impl Job {
    /// The header ID template the devices hash (every field except the nonce).
    pub fn template(&self) -> HeaderTemplate {
        self.header.template()
    }

    /// The share target as the kernels compare it.
    pub fn share_target(&self) -> Target {
        Target::from_le_bytes(self.share_target)
    }

    /// The block target (the header's `bits`).
    pub fn block_target(&self) -> Target {
        Target::from_bits(self.header.bits)
    }

    /// Whether the Tensority result `pow_hash` meets the share target.
    pub fn meets_share_target(&self, pow_hash: &[u8; 32]) -> bool {
        self.share_target().is_met_by(pow_hash)
    }

    /// The header with `nonce` filled in, ready to submit.
    pub fn solved_header(&self, nonce: u64) -> BlockHeader {
        let mut header = self.header.clone();
        header.nonce = nonce;
        header
    }
}

/// The share target of a solo job: the block target of `bits` as a little-endian bound.
///
/// # Errors
/// [`SourceError::Protocol`] when `bits` encodes a negative target (no hash can meet it).
pub fn block_share_target(endpoint: &str, bits: u64) -> Result<[u8; 32], SourceError> {
    match Target::from_bits(bits) {
        Target::AtMost(bound) => Ok(bound),
        Target::Always => Ok([0xff; 32]),
        Target::Never => Err(SourceError::Protocol {
            endpoint: endpoint.to_string(),
            reason: format!("bits {bits:#018x} encode a negative target"),
        }),
    }
}

/// A found nonce for a job, already re-checked on the CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The [`Job::id`] it solves.
    pub job_id: String,
    /// The nonce.
    pub nonce: u64,
    /// The Tensority result (as the CPU computed it).
    pub hash: [u8; 32],
    /// Whether the result also meets the block target (the job header's `bits`).
    pub meets_block_target: bool,
}

/// What a source reports back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// Connected (or reconnected) to `endpoint`.
    Connected {
        /// The upstream, e.g. `stratum+tcp://host:port` or `http://host:port`.
        endpoint: String,
    },
    /// Lost `endpoint`; the source retries or fails over on its own.
    Disconnected {
        /// The upstream.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A share was accepted; `block` when it made a block (as far as the source knows).
    Accepted {
        /// The job.
        job_id: String,
        /// Whether it was a block.
        block: bool,
    },
    /// A share was refused.
    Rejected {
        /// The job.
        job_id: String,
        /// The upstream's reason.
        reason: String,
    },
    /// A share came too late: its job had already been replaced upstream.
    Stale {
        /// The job.
        job_id: String,
    },
}

/// A work source runs as its own task: it publishes jobs (newest wins) and takes shares.
pub trait WorkSource: Send + 'static {
    /// A short name for logs, e.g. `embedded devnet` or `http://127.0.0.1:9888`.
    fn name(&self) -> String;

    /// Runs until `shutdown` becomes `true` (then `Ok(())`) or the source gives up (an error).
    /// See the module docs for what each channel carries.
    fn run(
        self: Box<Self>,
        jobs: watch::Sender<Option<Job>>,
        shares: mpsc::Receiver<Share>,
        events: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>>;
}

/// Why a work source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A socket failed (connect, read, write).
    #[error("i/o error with {endpoint}: {source}")]
    Io {
        /// The upstream.
        endpoint: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The upstream did not answer in time.
    #[error("{endpoint} did not answer within {millis} ms")]
    Timeout {
        /// The upstream.
        endpoint: String,
        /// The limit.
        millis: u64,
    },
    /// An HTTP reply with a status other than 200, or not HTTP/1.x at all.
    #[error("http error from {endpoint}: {reason}")]
    Http {
        /// The upstream.
        endpoint: String,
        /// The status line or what was wrong with the reply.
        reason: String,
    },
    /// A reply that does not follow the protocol (bad JSON, missing field, bad hex, ...).
    #[error("protocol error from {endpoint}: {reason}")]
    Protocol {
        /// The upstream.
        endpoint: String,
        /// What was wrong.
        reason: String,
    },
    /// The upstream refused a request the source cannot do without (e.g. a stratum login, a
    /// `get-work` that fails).
    #[error("{endpoint} refused {request}: {reason}")]
    Refused {
        /// The upstream.
        endpoint: String,
        /// The request, e.g. `login`.
        request: String,
        /// The upstream's message.
        reason: String,
    },
    /// The embedded node failed.
    #[error("embedded node: {0}")]
    Node(String),
    /// A source's configuration cannot work (e.g. a malformed URL, no pools).
    #[error("invalid source configuration: {0}")]
    Config(String),
    /// Every upstream failed and the source gave up.
    #[error("every upstream failed; last: {last}")]
    Exhausted {
        /// The last failure.
        last: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_bits_give_a_little_endian_bound_that_matches_the_kernels_target() {
        let bits = 0x2000_0000_0004_0000u64;
        let bound = block_share_target("test", bits).unwrap();
        let job = Job {
            id: String::new(),
            header: BlockHeader {
                bits,
                ..BlockHeader::default()
            },
            seed: Hash::ZERO,
            share_target: bound,
            nonce_start: 0,
            nonce_end: NONCE_LIMIT,
            clean: true,
        };
        assert_eq!(job.share_target(), job.block_target());
        // 0x40000 · 256^29: the top byte of the little-endian bound is 0x04.
        assert_eq!(bound[31], 0x04);
        assert!(bound[..31].iter().all(|&b| b == 0));
        let mut at = [0u8; 32];
        at[31] = 0x04;
        assert!(job.meets_share_target(&at));
        at[0] = 1;
        assert!(!job.meets_share_target(&at));
        assert_eq!(job.solved_header(7).nonce, 7);
    }

    #[test]
    fn negative_bits_are_a_protocol_error() {
        let err = block_share_target("node", 0x0180_0000_0001_0000).unwrap_err();
        assert!(matches!(err, SourceError::Protocol { .. }), "{err}");
    }
}
