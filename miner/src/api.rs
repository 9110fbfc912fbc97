//! The miner's own HTTP endpoints (`--api ADDR`): `GET /stats` (JSON, [`Snapshot`]) and
//! `GET /metrics` (Prometheus text).
//!
//! [`Snapshot`]: crate::stats::Snapshot

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;

use crate::stats::Stats;

/// The routes over `stats`.
pub fn router(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/stats", get(stats_json))
        .route("/metrics", get(metrics_text))
        .with_state(stats)
}

async fn stats_json(State(stats): State<Arc<Stats>>) -> impl IntoResponse {
    Json(stats.snapshot())
}

async fn metrics_text(State(stats): State<Arc<Stats>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        stats.snapshot().prometheus(),
    )
}

/// Serves the routes on `listener` until `shutdown` completes.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: TcpListener,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(stats))
        .with_graceful_shutdown(shutdown)
        .await
}
