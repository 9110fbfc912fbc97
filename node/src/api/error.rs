//! The API's error type and Bytom's error codes (`api/errors.go`): every failure leaves the
//! server as a `fail` envelope with a code, a message and the detail.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bystack_engine::validation::TxError;
use bystack_engine::vm::VmError;

use super::types::FailEnvelope;
use crate::chain::ChainError;
use crate::mempool::MempoolError;
use crate::service::NodeError;

/// A Bytom error code and its fixed message, as `api/errors.go` pairs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The code, e.g. `BTM000`.
    pub code: &'static str,
    /// The fixed message for the code.
    pub msg: &'static str,
}

impl ErrorInfo {
    const fn new(code: &'static str, msg: &'static str) -> Self {
        ErrorInfo { code, msg }
    }
}

/// Any error without a code of its own (`ErrDefault`).
pub const DEFAULT_ERROR: ErrorInfo = ErrorInfo::new("BTM000", "Bytom API Error");
/// A body that is not the JSON the endpoint takes (`httpjson.ErrBadRequest`).
pub const BAD_REQUEST: ErrorInfo = ErrorInfo::new("BTM002", "Invalid request body");

/// The code of a transaction the mempool refused for a validation error (the BTM73x–BTM74x
/// namespace of `api/errors.go`, BTM76x–BTM77x for the VM); errors without a Bytom
/// counterpart get [`DEFAULT_ERROR`].
pub fn tx_error_info(error: &TxError) -> ErrorInfo {
    match error {
        TxError::TxVersion { .. } => ErrorInfo::new("BTM730", "Invalid transaction version"),
        TxError::WrongTransactionSize => ErrorInfo::new("BTM731", "Invalid transaction size"),
        TxError::BadTimeRange { .. } => ErrorInfo::new("BTM732", "Invalid transaction time range"),
        TxError::NotStandardTx { .. } => ErrorInfo::new("BTM733", "Not standard transaction"),
        TxError::WrongCoinbaseTransaction => {
            ErrorInfo::new("BTM734", "Invalid coinbase transaction")
        }
        TxError::WrongCoinbaseAsset { .. } => ErrorInfo::new("BTM735", "Invalid coinbase assetID"),
        TxError::CoinbaseArbitraryOversize { .. } => {
            ErrorInfo::new("BTM736", "Invalid coinbase arbitrary size")
        }
        TxError::EmptyResults => ErrorInfo::new("BTM737", "No results in the transaction"),
        TxError::MismatchedAssetId { .. } => ErrorInfo::new("BTM738", "Mismatched assetID"),
        TxError::MismatchedPosition { .. } => {
            ErrorInfo::new("BTM739", "Mismatched value source/dest position")
        }
        TxError::MismatchedReference { .. } => ErrorInfo::new("BTM740", "Mismatched reference"),
        TxError::MismatchedValue { .. } => ErrorInfo::new("BTM741", "Mismatched value"),
        TxError::MissingField { .. } => ErrorInfo::new("BTM742", "Missing required field"),
        TxError::NoSource { .. } => ErrorInfo::new("BTM743", "No source for value"),
        TxError::Overflow { .. } => ErrorInfo::new("BTM744", "Arithmetic overflow/underflow"),
        TxError::Position { .. } => {
            ErrorInfo::new("BTM745", "Invalid source or destination position")
        }
        TxError::Unbalanced { .. } => {
            ErrorInfo::new("BTM746", "Unbalanced asset amount between input and output")
        }
        TxError::OverGasCredit { .. } => ErrorInfo::new("BTM747", "Gas credit has been spent"),
        TxError::GasCalculate { .. } => {
            ErrorInfo::new("BTM748", "Gas usage calculate got a math error")
        }
        TxError::Vm { error, .. } => vm_error_info(error),
        _ => DEFAULT_ERROR,
    }
}

/// The code of a program that failed in the VM (the BTM76x–BTM77x namespace).
pub fn vm_error_info(error: &VmError) -> ErrorInfo {
    match error {
        VmError::AltStackUnderflow => ErrorInfo::new("BTM760", "Alt stack underflow"),
        VmError::BadValue => ErrorInfo::new("BTM761", "Bad value"),
        VmError::Context => ErrorInfo::new("BTM762", "Wrong context"),
        VmError::DataStackUnderflow => ErrorInfo::new("BTM763", "Data stack underflow"),
        VmError::DisallowedOpcode { .. } => ErrorInfo::new("BTM764", "Disallowed opcode"),
        VmError::DivZero => ErrorInfo::new("BTM765", "Division by zero"),
        VmError::FalseVmResult => ErrorInfo::new("BTM766", "False result for executing VM"),
        VmError::LongProgram => ErrorInfo::new("BTM767", "Program size exceeds max int32"),
        VmError::Range => ErrorInfo::new("BTM768", "Arithmetic range error"),
        VmError::Return => ErrorInfo::new("BTM769", "RETURN executed"),
        VmError::RunLimitExceeded => ErrorInfo::new(
            "BTM770",
            "Run limit exceeded because the BTM Fee is insufficient",
        ),
        VmError::ShortProgram => ErrorInfo::new("BTM771", "Unexpected end of program"),
        VmError::Token => ErrorInfo::new("BTM772", "Unrecognized token"),
        VmError::Unexpected => ErrorInfo::new("BTM773", "Unexpected error"),
        VmError::UnsupportedVm { .. } => ErrorInfo::new(
            "BTM774",
            "Unsupported VM because the version of VM is mismatched",
        ),
        VmError::VerifyFailed => ErrorInfo::new("BTM775", "VERIFY failed"),
        _ => DEFAULT_ERROR,
    }
}

/// Why an API call failed. Each variant leaves as a `fail` envelope (see
/// [`IntoResponse`]); none of them is a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not the JSON the endpoint takes: invalid JSON, a field of the wrong type,
    /// bad hex, bytes that do not decode (BTM002, HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the server accepts (BTM002, HTTP 413).
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No endpoint at this path (BTM000, HTTP 404).
    #[error("no endpoint {path}")]
    UnknownEndpoint {
        /// The path asked for.
        path: String,
    },
    /// The request was understood and the node refused it or could not answer it (an unknown
    /// block, stale work, an invalid block or transaction); HTTP 200 as in Bytom.
    #[error("{detail}")]
    Rejected {
        /// The Bytom code and message.
        info: ErrorInfo,
        /// The node's explanation (`error_detail`).
        detail: String,
    },
    /// The node failed while answering (its store, or a task that did not finish); HTTP 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A refusal with the default code and `detail`.
    pub fn rejected(detail: impl Into<String>) -> Self {
        ApiError::Rejected {
            info: DEFAULT_ERROR,
            detail: detail.into(),
        }
    }

    /// The Bytom code and message of this error.
    pub fn info(&self) -> ErrorInfo {
        match self {
            ApiError::BadRequest(_) | ApiError::BodyTooLarge { .. } => BAD_REQUEST,
            ApiError::Rejected { info, .. } => *info,
            ApiError::UnknownEndpoint { .. } | ApiError::Internal(_) => DEFAULT_ERROR,
        }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnknownEndpoint { .. } => StatusCode::NOT_FOUND,
            ApiError::Rejected { .. } => StatusCode::OK,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::warn!(%detail, "api: internal error"),
            other => tracing::debug!(error = %other, "api: request refused"),
        }
        let info = self.info();
        let body = FailEnvelope {
            status: "fail",
            code: info.code,
            msg: info.msg,
            error_detail: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}

impl From<NodeError> for ApiError {
    /// The node's failures ([`NodeError::Store`], [`NodeError::Poisoned`], a store error in
    /// the chain) are internal; everything else is a refusal with the node's text, coded
    /// BTM73x–BTM77x for invalid transactions and BTM000 otherwise.
    fn from(error: NodeError) -> Self {
        match &error {
            NodeError::Store(_)
            | NodeError::Poisoned { .. }
            | NodeError::Chain(ChainError::Store(_)) => ApiError::Internal(error.to_string()),
            NodeError::Mempool(MempoolError::Invalid {
                error: tx_error, ..
            }) => ApiError::Rejected {
                info: tx_error_info(tx_error),
                detail: error.to_string(),
            },
            _ => ApiError::rejected(error.to_string()),
        }
    }
}
