//! The transparency-log routes: checkpoint, note key, entries and RFC 9162 proofs.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use civitas_core::api::{ConsistencyProofBody, InclusionProofBody, LogEntries, LogEntry};
use civitas_core::encoding;
use civitas_core::problem::INVALID_QUERY;

use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;

/// Most entries per `GET /log/entries` page.
pub(crate) const MAX_PAGE: u64 = 1000;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/log/key", get(key))
        .route("/log/entries", get(entries))
        .route("/log/proof/inclusion", get(inclusion))
        .route("/log/proof/consistency", get(consistency))
}

const TEXT: &str = "text/plain; charset=utf-8";

async fn checkpoint(State(app): State<AppState>) -> impl IntoResponse {
    let text = app.ledger.head().await.checkpoint.clone();
    (
        [
            (header::CONTENT_TYPE, TEXT),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
}

async fn key(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, TEXT)],
        format!("{}\n", app.ledger.verifier()),
    )
}

fn query_error(err: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(INVALID_QUERY, err.body_text())
}

#[derive(Debug, Deserialize)]
struct EntriesQuery {
    start: u64,
    end: u64,
}

async fn entries(
    State(app): State<AppState>,
    query: Result<Query<EntriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LogEntries>, ApiError> {
    let Query(EntriesQuery { start, end }) = query.map_err(query_error)?;
    let size = app.ledger.head().await.size();
    if start >= end || start >= size {
        return Err(ApiError::new(
            INVALID_QUERY,
            format!(
                "expected start < end and start < tree size {size}, found start={start} end={end}"
            ),
        ));
    }
    let end = end.min(size).min(start + MAX_PAGE);
    let reader = app.ledger.log().clone();
    let records = tokio::task::spawn_blocking(move || reader.read_range(start, end))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(LogEntries {
        start,
        entries: records
            .iter()
            .enumerate()
            .map(|(i, leaf)| LogEntry {
                index: start + i as u64,
                leaf: encoding::b64(leaf),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

async fn inclusion(
    State(app): State<AppState>,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InclusionProofBody>, ApiError> {
    let Query(InclusionQuery { index, size }) = query.map_err(query_error)?;
    let head = app.ledger.head().await;
    if size == 0 || size > head.size() || index >= size {
        return Err(ApiError::new(
            INVALID_QUERY,
            format!(
                "expected index < size <= {} (the checkpoint's size), found index={index} size={size}",
                head.size()
            ),
        ));
    }
    let proof = head
        .tree
        .inclusion_proof(index, size)
        .map_err(|e| ApiError::new(INVALID_QUERY, e.to_string()))?;
    let leaf_hash = head
        .tree
        .leaf(index)
        .ok_or_else(|| ApiError::internal("leaf missing from the tree"))?;
    Ok(Json(InclusionProofBody {
        index,
        tree_size: size,
        leaf_hash: encoding::b64(&leaf_hash),
        proof: proof.iter().map(|h| encoding::b64(h)).collect(),
    }))
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    from: u64,
    to: u64,
}

async fn consistency(
    State(app): State<AppState>,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsistencyProofBody>, ApiError> {
    let Query(ConsistencyQuery { from, to }) = query.map_err(query_error)?;
    let head = app.ledger.head().await;
    if from == 0 || from > to || to > head.size() {
        return Err(ApiError::new(
            INVALID_QUERY,
            format!(
                "expected 0 < from <= to <= {} (the checkpoint's size), found from={from} to={to}",
                head.size()
            ),
        ));
    }
    let proof = head
        .tree
        .consistency_proof(from, to)
        .map_err(|e| ApiError::new(INVALID_QUERY, e.to_string()))?;
    Ok(Json(ConsistencyProofBody {
        from,
        to,
        proof: proof.iter().map(|h| encoding::b64(h)).collect(),
    }))
}
