//! One handler per endpoint. Each parses its body with [`Args`], runs the node call on the
//! blocking pool ([`on_node`]) and answers with an envelope.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bystack_engine::consensus::Network;
use bystack_engine::{Block, BlockHeader, Transaction};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::metrics::{self, MetricsSnapshot, PROMETHEUS_CONTENT_TYPE};
use super::types::*;
use super::MAX_BODY_BYTES;
use crate::chain::BlockStatus;
use crate::service::{BlockSelector, Node, NodeError};
use crate::store::KvStore;

/// The shared node every handler gets.
pub type SharedNode<K> = State<Arc<Node<K>>>;

/// A `success` envelope around `T`.
#[derive(Debug, Clone)]
pub struct Success<T>(pub T);

impl<T: Serialize> IntoResponse for Success<T> {
    fn into_response(self) -> Response {
        Json(SuccessEnvelope {
            status: "success",
            data: self.0,
        })
        .into_response()
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<Success<T>, ApiError>;

/// A JSON request body as Bytom reads it: an object, where an empty body means `{}`. The
/// content type is not looked at. Bad bodies become [`ApiError::BadRequest`], bodies over
/// [`MAX_BODY_BYTES`] [`ApiError::BodyTooLarge`].
#[derive(Debug, Clone)]
pub struct Args<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Args<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge {
                    limit: MAX_BODY_BYTES,
                }
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        parse_body(&bytes).map(Args)
    }
}

/// Parses a request body; an empty (or all-whitespace) body reads as `{}`.
///
/// # Errors
/// [`ApiError::BadRequest`] with serde's message (position, expected type).
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The body of endpoints without parameters: any JSON object.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct NoArgs {}

/// Runs `call` on Tokio's blocking pool: node calls take locks, validate and touch the store.
///
/// # Errors
/// `call`'s error, or [`ApiError::Internal`] when the task did not finish (it panicked or the
/// runtime is shutting down).
pub async fn on_node<K, T, E, F>(node: Arc<Node<K>>, call: F) -> Result<T, ApiError>
where
    K: KvStore + 'static,
    T: Send + 'static,
    E: Into<ApiError>,
    F: FnOnce(&Node<K>) -> Result<T, E> + Send + 'static,
{
    tokio::task::spawn_blocking(move || call(&node).map_err(Into::<ApiError>::into))
        .await
        .map_err(|e| ApiError::Internal(format!("node task did not finish: {e}")))?
}

/// The block `selector` names, or [`NodeError::BlockNotFound`].
fn find_block<K: KvStore>(node: &Node<K>, selector: BlockSelector) -> Result<Block, NodeError> {
    let (found, what) = match selector {
        BlockSelector::Hash(hash) => (node.block_by_hash(&hash)?, hash.to_hex()),
        BlockSelector::Height(height) => {
            (node.block_by_height(height)?, format!("at height {height}"))
        }
    };
    found.ok_or(NodeError::BlockNotFound { what })
}

/// `/get-work`.
pub async fn get_work<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(NoArgs {}): Args<NoArgs>,
) -> ApiResult<GetWorkResponse> {
    let work = on_node(node, |n| n.get_work()).await?;
    let block_header = work
        .header
        .to_hex()
        .map_err(|e| ApiError::Internal(format!("encoding the template header: {e}")))?;
    Ok(Success(GetWorkResponse {
        block_header,
        seed: work.seed.to_hex(),
    }))
}

/// `/get-work-json`.
pub async fn get_work_json<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(NoArgs {}): Args<NoArgs>,
) -> ApiResult<GetWorkJsonResponse> {
    let work = on_node(node, |n| n.get_work()).await?;
    Ok(Success(GetWorkJsonResponse {
        block_header: HeaderJson::from_header(&work.header),
        seed: work.seed.to_hex(),
    }))
}

async fn submit_header<K: KvStore + 'static>(
    node: Arc<Node<K>>,
    header: BlockHeader,
) -> ApiResult<bool> {
    on_node(node, move |n| n.submit_work(&header)).await?;
    Ok(Success(true))
}

/// `/submit-work`: `{"block_header": "<hex>"}`.
pub async fn submit_work<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<SubmitWorkRequest>,
) -> ApiResult<bool> {
    let header = BlockHeader::from_hex(&request.block_header)
        .map_err(|e| ApiError::BadRequest(format!("block_header: {e}")))?;
    submit_header(node, header).await
}

/// `/submit-work-json`: `{"block_header": {…}}`.
pub async fn submit_work_json<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<SubmitWorkJsonRequest>,
) -> ApiResult<bool> {
    let header = request.block_header.to_header()?;
    submit_header(node, header).await
}

/// `/submit-block`: `{"raw_block": "<hex>"}`; an orphan is refused with Bytom's "block
/// submitted is orphan" (the node keeps it in its orphan pool all the same).
pub async fn submit_block<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<SubmitBlockRequest>,
) -> ApiResult<bool> {
    let block = Block::from_hex(&request.raw_block)
        .map_err(|e| ApiError::BadRequest(format!("raw_block: {e}")))?;
    let outcome = on_node(node, move |n| n.submit_block(block)).await?;
    if outcome.status == BlockStatus::Orphan {
        return Err(NodeError::OrphanBlock.into());
    }
    Ok(Success(true))
}

/// `/get-block-count`: the tip height.
pub async fn get_block_count<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(NoArgs {}): Args<NoArgs>,
) -> ApiResult<BlockCountResponse> {
    let tip = on_node(node, |n| Ok::<_, ApiError>(n.tip())).await?;
    Ok(Success(BlockCountResponse {
        block_count: tip.height,
    }))
}

/// `/get-block-hash`: the tip hash.
pub async fn get_block_hash<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(NoArgs {}): Args<NoArgs>,
) -> ApiResult<BlockHashResponse> {
    let tip = on_node(node, |n| Ok::<_, ApiError>(n.tip())).await?;
    Ok(Success(BlockHashResponse {
        block_hash: tip.hash.to_hex(),
    }))
}

/// `/get-block`: `{block_height | block_hash}` (neither: genesis, as Bytom).
pub async fn get_block<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<BlockRequest>,
) -> ApiResult<BlockResponse> {
    let selector = request.selector(0)?;
    let (block, statuses) = on_node(node, move |n| {
        let block = find_block(n, selector)?;
        let statuses = n
            .with_chain(|chain| chain.store().statuses(&block.hash()))??
            .unwrap_or_default();
        Ok::<_, NodeError>((block, statuses))
    })
    .await?;
    Ok(Success(BlockResponse::new(&block, &statuses)?))
}

/// `/get-block-header`: `{block_height | block_hash}`.
pub async fn get_block_header<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<BlockRequest>,
) -> ApiResult<BlockHeaderResponse> {
    let selector = request.selector(0)?;
    let block = on_node(node, move |n| find_block(n, selector)).await?;
    Ok(Success(BlockHeaderResponse::new(&block)?))
}

/// `/get-difficulty`: `{block_height | block_hash}`.
pub async fn get_difficulty<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<BlockRequest>,
) -> ApiResult<DifficultyResponse> {
    let selector = request.selector(0)?;
    let difficulty = on_node(node, move |n| n.difficulty(Some(selector))).await?;
    Ok(Success(DifficultyResponse {
        hash: difficulty.hash.to_hex(),
        height: difficulty.height,
        bits: difficulty.bits,
        difficulty: difficulty.difficulty.to_string(),
    }))
}

/// `/get-hash-rate`: `{block_height | block_hash}`; no height (or height 0) means the tip, as
/// Bytom.
pub async fn get_hash_rate<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<BlockRequest>,
) -> ApiResult<HashRateResponse> {
    let rate = on_node(node, move |n| {
        let tip = n.tip().height;
        let selector = match request.selector(tip)? {
            BlockSelector::Height(0) => BlockSelector::Height(tip),
            selector => selector,
        };
        n.hash_rate(selector).map_err(ApiError::from)
    })
    .await?;
    Ok(Success(HashRateResponse {
        hash: rate.hash.to_hex(),
        height: rate.height,
        // Saturates where Bytom's `big.Int.Uint64` would wrap.
        hash_rate: u64::try_from(rate.hash_rate).unwrap_or(u64::MAX),
    }))
}

/// `/submit-transaction`: `{"raw_transaction": "<hex>"}`.
pub async fn submit_transaction<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(request): Args<SubmitTransactionRequest>,
) -> ApiResult<SubmitTransactionResponse> {
    let tx = Transaction::from_hex(&request.raw_transaction)
        .map_err(|e| ApiError::BadRequest(format!("raw_transaction: {e}")))?;
    let id = on_node(node, move |n| n.submit_transaction(tx)).await?;
    Ok(Success(SubmitTransactionResponse { tx_id: id.to_hex() }))
}

/// `/list-unconfirmed-transactions`.
pub async fn list_unconfirmed_transactions<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(NoArgs {}): Args<NoArgs>,
) -> ApiResult<UnconfirmedTransactionsResponse> {
    let transactions = on_node(node, |n| Ok::<_, ApiError>(n.mempool_transactions())).await?;
    Ok(Success(UnconfirmedTransactionsResponse {
        total: transactions.len() as u64,
        tx_ids: transactions.iter().map(|(id, _)| id.to_hex()).collect(),
    }))
}

/// The network name net-info reports (Bytom calls its testnet `wisdom`).
pub fn network_id(network: Network) -> &'static str {
    match network {
        Network::Testnet => "wisdom",
        other => other.params().name,
    }
}

/// `/net-info`. The node does not track the p2p listener or peers' heights yet: `listening`
/// and `mining` are false, `highest_block` is the tip, `syncing` false.
pub async fn net_info<K: KvStore + 'static>(
    State(node): SharedNode<K>,
    Args(NoArgs {}): Args<NoArgs>,
) -> ApiResult<NetInfoResponse> {
    let (network, tip, counters) = on_node(node, |n| {
        Ok::<_, ApiError>((n.network(), n.tip(), n.metrics().snapshot()))
    })
    .await?;
    Ok(Success(NetInfoResponse {
        listening: counters.listening,
        syncing: counters.best_peer_height > tip.height,
        mining: false,
        peer_count: counters.peers,
        current_block: tip.height,
        highest_block: tip.height.max(counters.best_peer_height),
        network_id: network_id(network).to_string(),
        version_info: VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            update: 0,
            new_version: String::new(),
        },
    }))
}

/// `/metrics` (GET): Prometheus text.
pub async fn metrics<K: KvStore + 'static>(
    State(node): SharedNode<K>,
) -> Result<Response, ApiError> {
    let snapshot = on_node(node, |n| Ok::<_, ApiError>(MetricsSnapshot::of(n))).await?;
    Ok((
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        metrics::render(&snapshot),
    )
        .into_response())
}

/// Any path without an endpoint.
pub async fn unknown_endpoint(uri: Uri) -> ApiError {
    ApiError::UnknownEndpoint {
        path: uri.path().to_string(),
    }
}

/// A known path with the wrong method (Bytom's endpoints take POST, `/metrics` GET).
pub async fn wrong_method(uri: Uri) -> Response {
    let error = ApiError::BadRequest(format!("{} does not take this method", uri.path()));
    let mut response = error.into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_means_no_arguments() {
        let request: BlockRequest = parse_body(b"").unwrap();
        assert_eq!(request.block_height, None);
        let request: BlockRequest = parse_body(b" \r\n\t").unwrap();
        assert_eq!(request.block_hash, None);
        assert!(parse_body::<NoArgs>(b"{}").is_ok());
        assert!(matches!(
            parse_body::<SubmitBlockRequest>(b""),
            Err(ApiError::BadRequest(detail)) if detail.contains("raw_block")
        ));
        assert!(matches!(
            parse_body::<NoArgs>(b"{"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
