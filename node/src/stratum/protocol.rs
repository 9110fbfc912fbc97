//! BTM stratum wire format (spec protocols.md §B): request parsing, replies, the job object
//! and the 4-byte share-target encoding.

use bystack_engine::Hash;
use serde::Deserialize;
use serde_json::{json, Value};

/// The stratum error codes (btmcpool `stratum/message.go`, spec §B.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 20: anything else (a verifier failure, a malformed request).
    Unknown = 20,
    /// 21: the job id is not in the session's recent jobs.
    JobNotFound = 21,
    /// 22: the share was already submitted.
    DuplicateShare = 22,
    /// 23: the share does not meet the session's target.
    LowDifficulty = 23,
    /// 24: submit before login, or `params.id` is not the login.
    UnauthorizedWorker = 24,
    /// 31: bad login parameters.
    InvalidAuthorizeFormat = 31,
    /// 32: bad submit parameters, or a stale share.
    InvalidSubmitFormat = 32,
    /// 34: a method other than `login` and `submit`.
    UnsupportedMethod = 34,
    /// 40: a second login on one session.
    MultipleAuthorization = 40,
}

/// A parsed client request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `login`.
    Login(LoginParams),
    /// `submit`.
    Submit(SubmitParams),
}

/// `login` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoginParams {
    /// "account.worker".
    pub login: String,
    /// Ignored.
    #[serde(default)]
    pub pass: Option<String>,
    /// Miner name and version.
    #[serde(default)]
    pub agent: Option<String>,
}

/// `submit` parameters, unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SubmitParams {
    /// Must equal the login string.
    pub id: String,
    /// A job id the pool sent (decimal).
    pub job_id: String,
    /// 1–16 lowercase hex digits, big-endian.
    pub nonce: String,
    /// The miner's Tensority result (64 hex), optional.
    #[serde(default)]
    pub result: Option<String>,
}

/// Why a line is not a usable request. Every variant ends the session.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest {
    /// The request id, when one could be read.
    pub id: Value,
    /// The code to answer with.
    pub code: ErrorCode,
    /// The reason.
    pub message: String,
}

/// A request whose parameters parsed, or the code and reason they did not.
pub type ParsedParams = Result<Request, (ErrorCode, String)>;

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Value,
    method: Option<String>,
    #[serde(default)]
    params: Value,
}

/// Parses one line. A well-formed `login` or `submit` gives its id and request; parameters
/// of the wrong shape give [`ErrorCode::InvalidAuthorizeFormat`] or
/// [`ErrorCode::InvalidSubmitFormat`] in `Ok(Err(..))` (the session continues); anything that
/// is not a JSON-RPC object, or another method, is a [`BadRequest`] (the session ends).
pub fn parse_request(line: &[u8]) -> Result<(Value, ParsedParams), BadRequest> {
    let envelope: Envelope = serde_json::from_slice(line).map_err(|e| BadRequest {
        id: Value::Null,
        code: ErrorCode::Unknown,
        message: format!("malformed request: {e}"),
    })?;
    let id = envelope.id;
    let request = match envelope.method.as_deref() {
        Some("login") => serde_json::from_value::<LoginParams>(envelope.params)
            .map(Request::Login)
            .map_err(|e| {
                (
                    ErrorCode::InvalidAuthorizeFormat,
                    format!("invalid login: {e}"),
                )
            }),
        Some("submit") => serde_json::from_value::<SubmitParams>(envelope.params)
            .map(Request::Submit)
            .map_err(|e| {
                (
                    ErrorCode::InvalidSubmitFormat,
                    format!("invalid submit: {e}"),
                )
            }),
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            return Err(BadRequest {
                id,
                code: ErrorCode::UnsupportedMethod,
                message: format!("unsupported method {shown:?}"),
            });
        }
        None => {
            return Err(BadRequest {
                id,
                code: ErrorCode::Unknown,
                message: "malformed request: no method".into(),
            })
        }
    };
    Ok((id, request))
}

/// A success reply.
pub fn reply_ok(id: &Value, result: Value) -> Value {
    json!({"id": id, "jsonrpc": "2.0", "result": result, "error": null})
}

/// An error reply.
pub fn reply_error(id: &Value, code: ErrorCode, message: &str) -> Value {
    json!({
        "id": id,
        "jsonrpc": "2.0",
        "result": null,
        "error": {"code": code as i64, "message": message},
    })
}

/// A `job` notification.
pub fn job_notification(job: &Value) -> Value {
    json!({"jsonrpc": "2.0", "method": "job", "params": job})
}

/// A u64 as 16 hex digits of its little-endian bytes (Go's `ToLittleEndianHex`).
pub fn le_hex(value: u64) -> String {
    bystack_kernels::hex::encode(&value.to_le_bytes())
}

/// The fields of a job object (spec §B.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFields {
    /// Job id.
    pub job_id: u64,
    /// Header version.
    pub version: u64,
    /// Height.
    pub height: u64,
    /// Parent hash.
    pub previous_block_hash: Hash,
    /// Timestamp (fixed by the pool).
    pub timestamp: u64,
    /// Transactions merkle root.
    pub transactions_merkle_root: Hash,
    /// Transaction status hash.
    pub transaction_status_hash: Hash,
    /// The session's start nonce (its prefix).
    pub nonce: u64,
    /// Network compact target.
    pub bits: u64,
    /// Tensority seed.
    pub seed: Hash,
    /// Share target ([`ShareTarget::to_hex`]).
    pub target: ShareTarget,
}

impl JobFields {
    /// The JSON job object: every field a string.
    pub fn to_json(&self) -> Value {
        json!({
            "job_id": self.job_id.to_string(),
            "version": le_hex(self.version),
            "height": le_hex(self.height),
            "previous_block_hash": self.previous_block_hash.to_hex(),
            "timestamp": le_hex(self.timestamp),
            "transactions_merkle_root": self.transactions_merkle_root.to_hex(),
            "transaction_status_hash": self.transaction_status_hash.to_hex(),
            "nonce": le_hex(self.nonce),
            "bits": le_hex(self.bits),
            "seed": self.seed.to_hex(),
            "target": self.target.to_hex(),
        })
    }
}

/// A share target as the wire carries it: the top 32 bits of a 256-bit bound whose other
/// bits are zero. A Tensority result (read little-endian) meets it when it is at most
/// `top << 224`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareTarget {
    /// The bound's top 32 bits (never 0).
    pub top: u32,
}

impl ShareTarget {
    /// The target for `difficulty` (≥ 1): the top 32 bits of `(2^256 − 1) / difficulty`.
    pub fn from_difficulty(difficulty: u64) -> Self {
        let top = (u64::from(u32::MAX) / difficulty.max(1)).max(1);
        ShareTarget {
            top: u32::try_from(top).unwrap_or(u32::MAX),
        }
    }

    /// The difficulty a miner meets on average: expected hashes per share, `2^32 / top`.
    pub fn difficulty(&self) -> f64 {
        4_294_967_296.0 / f64::from(self.top.max(1))
    }

    /// The 8 hex digits: the bound's top 4 bytes, big-endian, reversed.
    pub fn to_hex(&self) -> String {
        bystack_kernels::hex::encode(&self.top.to_le_bytes())
    }

    /// Decodes [`ShareTarget::to_hex`]'s form; `None` unless 8 hex digits with a non-zero
    /// value.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = bystack_kernels::hex::decode(text).ok()?;
        let bytes: [u8; 4] = bytes.try_into().ok()?;
        let top = u32::from_le_bytes(bytes);
        (top != 0).then_some(ShareTarget { top })
    }

    /// Whether a Tensority result meets the target.
    pub fn is_met_by(&self, pow_hash: &[u8; 32]) -> bool {
        let high = u32::from_le_bytes([pow_hash[28], pow_hash[29], pow_hash[30], pow_hash[31]]);
        high < self.top || (high == self.top && pow_hash[..28].iter().all(|&b| b == 0))
    }
}

/// Parses a submitted nonce: 1–16 lowercase hex digits, big-endian, below 2^63 (a header's
/// nonce is a varint63: a larger one could never be part of a block).
pub fn parse_nonce(text: &str) -> Option<u64> {
    let valid = (1..=16).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return None;
    }
    u64::from_str_radix(text, 16).ok().filter(|&n| n < 1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_targets_match_the_documented_examples() {
        assert_eq!(ShareTarget::from_difficulty(1024).to_hex(), "ffff3f00");
        assert_eq!(ShareTarget::from_difficulty(65536).to_hex(), "ffff0000");
        let t = ShareTarget::from_hex("ffff3f00").unwrap();
        assert_eq!(t.top, 0x003f_ffff);
        assert!((t.difficulty() - 1024.0).abs() < 0.01);
        assert_eq!(ShareTarget::from_hex("00000000"), None);
        assert_eq!(ShareTarget::from_hex("ffff3f"), None);
    }

    #[test]
    fn share_target_compares_the_result_read_little_endian() {
        let t = ShareTarget { top: 0x0040_0000 };
        let mut hash = [0xffu8; 32];
        hash[31] = 0x00;
        hash[30] = 0x3f;
        assert!(t.is_met_by(&hash));
        hash[30] = 0x40;
        hash[29] = 0;
        hash[28] = 0;
        assert!(!t.is_met_by(&hash));
        hash[..28].fill(0);
        assert!(t.is_met_by(&hash));
    }

    #[test]
    fn nonces_are_lowercase_big_endian_hex() {
        assert_eq!(parse_nonce("0c04000001000000"), Some(0x0c04_0000_0100_0000));
        assert_eq!(parse_nonce("1f"), Some(31));
        assert_eq!(parse_nonce("7fffffffffffffff"), Some(i64::MAX as u64));
        // A header's nonce is a varint63: 2^63 and above can never be in a block.
        for bad in [
            "",
            "1F",
            "0x1f",
            "00000000000000000",
            "zz",
            "-1",
            "1 ",
            "8000000000000000",
            "ffffffffffffffff",
        ] {
            assert_eq!(parse_nonce(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn requests_parse_or_say_why_not() {
        let (id, req) =
            parse_request(br#"{"id":3,"method":"login","params":{"login":"a.b","pass":"x"}}"#)
                .unwrap();
        assert_eq!(id, json!(3));
        assert!(matches!(req, Ok(Request::Login(p)) if p.login == "a.b"));
        let (_, req) = parse_request(br#"{"id":1,"method":"submit","params":{"id":"a"}}"#).unwrap();
        assert_eq!(req.unwrap_err().0, ErrorCode::InvalidSubmitFormat);
        let bad = parse_request(br#"{"id":1,"method":"getjob"}"#).unwrap_err();
        assert_eq!(bad.code, ErrorCode::UnsupportedMethod);
        assert_eq!(
            parse_request(b"{not json").unwrap_err().code,
            ErrorCode::Unknown
        );
        assert_eq!(
            parse_request(b"[1,2]").unwrap_err().code,
            ErrorCode::Unknown
        );
    }
}
