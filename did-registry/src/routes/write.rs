//! `POST /operations`, `POST /trust`, `POST /anchors`: submit a signed ledger object; the
//! answer (201) comes once it is durable, sealed and covered by a signed checkpoint.

use axum::Json;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use civitas_core::api::{AnchorHead, SubmitReceipt};
use civitas_core::civ::MAX_OPERATION_BYTES;
use civitas_core::did::DidUrl;
use civitas_core::document::Relationship;
use civitas_core::ledger::{Entry, OpSigner};
use civitas_core::problem;

use crate::AppState;
use crate::error::ApiError;
use crate::state::State as LedgerState;

/// Largest trust entry or anchor body.
pub(crate) const MAX_ENTRY_BYTES: usize = 16 * 1024;

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/anchors/head", get(anchor_head))
        .route(
            "/operations",
            post(operations).layer(DefaultBodyLimit::max(MAX_OPERATION_BYTES)),
        )
        .route(
            "/trust",
            post(trust).layer(DefaultBodyLimit::max(MAX_ENTRY_BYTES)),
        )
        .route(
            "/anchors",
            post(anchors).layer(DefaultBodyLimit::max(MAX_ENTRY_BYTES)),
        )
}

fn parse(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
    expected: &'static str,
) -> Result<Entry, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                problem::PAYLOAD_TOO_LARGE,
                format!("expected at most {limit} bytes"),
            )
        } else {
            ApiError::new(problem::MALFORMED_JSON, e.body_text())
        }
    })?;
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return Err(ApiError::new(
            problem::MALFORMED_JSON,
            "the body is not JSON",
        ));
    }
    let entry = Entry::parse(&body)?;
    if entry.type_name() != expected {
        return Err(ApiError::new(
            problem::INVALID_ENTRY,
            format!("expected a {expected} object, found {}", entry.type_name()),
        ));
    }
    Ok(entry)
}

type Created = (StatusCode, Json<SubmitReceipt>);

/// Checks the entry's signature against the key the committed state says it names, so the
/// check runs here, on any core, and the writer finds it done (`Signed` remembers the key).
/// The outcome decides nothing: the writer validates the entry in full.
fn warm_signature(entry: &Entry, state: &LedgerState) {
    let current = |url: &DidUrl, relationship: Relationship| {
        let record = state.did(url.did())?;
        record
            .document_at(record.chain.len().checked_sub(1)?)
            .key_for(url, relationship)
    };
    match entry {
        Entry::Operation(op) => {
            let body = op.body();
            let key = match (&body.signer, &body.did, &body.prev) {
                (OpSigner::RotationKey(i), None, _) => {
                    body.rotation_keys.get(usize::from(*i)).copied()
                }
                (OpSigner::RotationKey(i), Some(did), Some(prev)) => {
                    state.did(did).and_then(|record| {
                        let pos = record.position(prev)?;
                        record.chain[pos]
                            .op
                            .rotation_keys
                            .get(usize::from(*i))
                            .copied()
                    })
                }
                (OpSigner::ControllerKey(url), _, _) => {
                    current(url, Relationship::CapabilityInvocation)
                }
                _ => None,
            };
            if let Some(key) = key {
                let _ = op.verify(&key);
            }
        }
        Entry::Trust(trust) => {
            if let Some(key) = current(&trust.body().signer, Relationship::CapabilityInvocation) {
                let _ = trust.verify(&key);
            }
        }
        Entry::Anchor(anchor) => {
            if let Some(key) = current(&anchor.body().signer, Relationship::AssertionMethod) {
                let _ = anchor.verify(&key);
            }
        }
        _ => {}
    }
}

async fn operations(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Created, ApiError> {
    let entry = parse(body, MAX_OPERATION_BYTES, "civ.op.v1")?;
    warm_signature(&entry, app.ledger.state());
    let receipt = app.ledger.submit(entry).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

async fn trust(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Created, ApiError> {
    let entry = parse(body, MAX_ENTRY_BYTES, "civ.trust.v1")?;
    warm_signature(&entry, app.ledger.state());
    let receipt = app.ledger.submit(entry).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

async fn anchors(
    State(app): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Created, ApiError> {
    let entry = parse(body, MAX_ENTRY_BYTES, "civ.anchor.v1")?;
    if let (Entry::Anchor(anchor), Some(limits)) = (&entry, &app.limits) {
        limits.check_anchor(anchor.body().signer.did())?;
    }
    warm_signature(&entry, app.ledger.state());
    let receipt = app.ledger.submit(entry).await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

#[derive(Debug, serde::Deserialize)]
struct HeadQuery {
    stream: String,
}

/// `GET /anchors/head?stream=S`: where a stream stands, so that its owner can continue it
/// (for example after a crash between submitting an anchor and recording it).
async fn anchor_head(
    State(app): State<AppState>,
    query: Result<Query<HeadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AnchorHead>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(problem::INVALID_QUERY, e.body_text()))?;
    let head = app.ledger.state().stream(&query.stream).ok_or_else(|| {
        ApiError::new(problem::NOT_FOUND, format!("no stream {:?}", query.stream))
    })?;
    let time = chrono::DateTime::from_timestamp_millis(i64::try_from(head.time_ms).unwrap_or(0))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(Json(AnchorHead {
        stream: query.stream,
        seq: head.seq,
        id: head.id,
        index: head.index,
        time,
    }))
}
