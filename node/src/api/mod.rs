//! The Bytom-compatible HTTP API (bytomd v1.1.x, default port 9888) and `/metrics`.
//!
//! Every endpoint takes `POST` with a JSON object body (an empty body or `{}` means no
//! arguments; the content type is not checked) and answers with Bytom's envelope:
//! `{"status":"success","data":…}` or
//! `{"status":"fail","code":"BTM…","msg":…,"error_detail":…}`. Bodies are capped at
//! [`MAX_BODY_BYTES`]. Node calls are synchronous and run on Tokio's blocking pool.
//!
//! | Endpoint | Request | `data` on success |
//! |---|---|---|
//! | `get-work` | – | `{block_header: hex, seed}` (header serialized, serflag 0x01; timestamp refreshed) |
//! | `get-work-json` | – | `{block_header: {version, height, previous_block_hash, timestamp, nonce, bits, block_commitment: {transaction_merkle_root, transaction_status_hash}}, seed}` |
//! | `submit-work` | `{block_header: hex}` | `true` |
//! | `submit-work-json` | `{block_header: {…as get-work-json}}` | `true` |
//! | `submit-block` | `{raw_block: hex}` | `true` |
//! | `get-block-count` | – | `{block_count}`: the tip **height**, as Bytom |
//! | `get-block-hash` | – | `{block_hash}`: the tip hash |
//! | `get-block` | `{block_height \| block_hash}` | `{hash, size, version, height, previous_block_hash, timestamp, nonce, bits, difficulty, transaction_merkle_root, transaction_status_hash, transactions: [{id, version, size, time_range, inputs, outputs, status_fail, mux_id}], raw_block}` |
//! | `get-block-header` | `{block_height \| block_hash}` | `{block_header: hex, reward}` |
//! | `get-difficulty` | `{block_height \| block_hash}` | `{hash, height, bits, difficulty}` |
//! | `get-hash-rate` | `{block_height \| block_hash}` | `{hash, height, hash_rate}` |
//! | `submit-transaction` | `{raw_transaction: hex}` | `{tx_id}` |
//! | `list-unconfirmed-transactions` | – | `{total, tx_ids}` |
//! | `net-info` | – | `{listening, syncing, mining, peer_count, current_block, highest_block, network_id, version_info: {version, update, new_version}}` |
//! | `GET /metrics` | – | Prometheus text (not an envelope), see [`metrics::render`] |
//!
//! Block selection (`api/block_retrieve.go`): a `block_hash` wins over a `block_height`
//! (a hash that is not 64 hex characters is a bad request, where Bytom would fall back to
//! the height);
//! with neither, get-block, get-block-header and get-difficulty read height 0 (genesis) and
//! get-hash-rate reads the tip (height 0 also means the tip there, since genesis has no
//! parent to measure time from). `difficulty` is `CalcWork(bits)` in decimal;
//! `hash_rate = CalcWork(bits) / (timestamp − parent timestamp)`. Inputs in get-block have
//! `type` `spend`, `issue`, `coinbase` (or `opaque`), outputs `control` or `retire`.
//! net-info's `network_id` is Bytom's chain name (`mainnet`, `wisdom` for testnet,
//! `solonet`), or `devnet`; `peer_count` is the node's peers gauge; `listening` says whether
//! the p2p layer accepts connections; `highest_block` is the highest tip a peer announced (or
//! ours), and `syncing` is true while it is above ours. The node has no built-in miner, so
//! `mining` is false.
//!
//! Errors (`api/errors.go`): the code and message come from a fixed table, the detail is the
//! error's own text.
//!
//! | Failure | HTTP | `code` | `msg` |
//! |---|---|---|---|
//! | invalid JSON, a field of the wrong type or missing, bad hex, bytes that do not decode | 400 | `BTM002` | `Invalid request body` |
//! | body over [`MAX_BODY_BYTES`] | 413 | `BTM002` | `Invalid request body` |
//! | transaction validation (mempool) | 200 | `BTM730`–`BTM748`, VM failures `BTM760`–`BTM775` | e.g. `Unbalanced asset amount between input and output`, `False result for executing VM` (see [`error::tx_error_info`]) |
//! | anything else the node refuses: unknown block, stale work (`pending mining block has been changed`), orphan (`block submitted is orphan` / `submit result is orphan`), an invalid block | 200 | `BTM000` | `Bytom API Error` |
//! | unknown path | 404 | `BTM000` | `Bytom API Error` |
//! | wrong method on a known path | 405 | `BTM002` | `Invalid request body` |
//! | the node's store failed | 500 | `BTM000` | `Bytom API Error` |
//!
//! Handlers call the shared [`Node`] (the service facade) from Tokio's blocking pool.

pub mod error;
pub mod handlers;
pub mod metrics;
pub mod types;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::service::Node;
use crate::store::KvStore;

pub use error::{ApiError, ErrorInfo};
pub use metrics::{LatencyHistogram, MetricsSnapshot};

/// The largest request body accepted (4 MiB); larger ones get a `fail` envelope.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// The API's routes over `node`.
pub fn router<K: KvStore + 'static>(node: Arc<Node<K>>) -> Router {
    use handlers as h;
    Router::new()
        .route("/get-work", post(h::get_work::<K>))
        .route("/get-work-json", post(h::get_work_json::<K>))
        .route("/submit-work", post(h::submit_work::<K>))
        .route("/submit-work-json", post(h::submit_work_json::<K>))
        .route("/submit-block", post(h::submit_block::<K>))
        .route("/get-block-count", post(h::get_block_count::<K>))
        .route("/get-block-hash", post(h::get_block_hash::<K>))
        .route("/get-block", post(h::get_block::<K>))
        .route("/get-block-header", post(h::get_block_header::<K>))
        .route("/get-difficulty", post(h::get_difficulty::<K>))
        .route("/get-hash-rate", post(h::get_hash_rate::<K>))
        .route("/submit-transaction", post(h::submit_transaction::<K>))
        .route(
            "/list-unconfirmed-transactions",
            post(h::list_unconfirmed_transactions::<K>),
        )
        .route("/net-info", post(h::net_info::<K>))
        .route("/metrics", get(h::metrics::<K>))
        .fallback(h::unknown_endpoint)
        .method_not_allowed_fallback(h::wrong_method)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(node)
}

/// Serves the API for `node` on `listener` until `shutdown` completes, then finishes the
/// requests in flight.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve<K: KvStore + 'static>(
    node: Arc<Node<K>>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(node))
        .with_graceful_shutdown(shutdown)
        .await
}
