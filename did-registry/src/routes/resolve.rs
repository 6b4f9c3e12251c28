//! `GET /1.0/identifiers/{did}`: W3C DID Resolution (HTTP binding) with proofs, and
//! `GET /history/{did}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use civitas_core::api::{
    DidHistory, DocumentMetadata, HistoryItem, RESOLUTION_CONTENT_TYPE, RESOLUTION_CONTEXT,
    ResolutionMetadata, ResolutionProof, ResolutionResult,
};
use civitas_core::civ::{DidRecord, HistoryOp};
use civitas_core::did::{Did, Method};
use civitas_core::ledger::{ObjectId, OpKind, OpSigner};
use civitas_core::resolve::{ResolutionError, resolve_key_did};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::ledger::Head;
use crate::state::map_key_did;
use crate::time::{parse_time_ms, rfc3339};

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/1.0/identifiers/{did}", get(resolve))
        .route("/history/{did}", get(history))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolveQuery {
    version_id: Option<String>,
    version_time: Option<String>,
}

fn error_result(err: &ResolutionError) -> Response {
    let problem = civitas_core::problem::Problem {
        kind: err.type_uri().to_owned(),
        title: err.type_uri().rsplit('#').next().unwrap_or("").to_owned(),
        status: err.status(),
        detail: err.to_string(),
    };
    let result = ResolutionResult {
        context: RESOLUTION_CONTEXT.to_owned(),
        did_document: None,
        did_resolution_metadata: ResolutionMetadata {
            content_type: None,
            error: Some(problem),
        },
        did_document_metadata: DocumentMetadata::default(),
        proof: None,
    };
    respond(
        StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST),
        &result,
    )
}

fn respond(status: StatusCode, result: &ResolutionResult) -> Response {
    let mut response = (status, Json(result)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RESOLUTION_CONTENT_TYPE),
    );
    response
}

async fn resolve(
    State(app): State<AppState>,
    Path(did_text): Path<String>,
    query: Result<Query<ResolveQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_result(&ResolutionError::InvalidDid(
            "malformed query string".to_owned(),
        ));
    };
    let did: Did = match did_text.parse() {
        Ok(did) => did,
        Err(e) if e.is_unsupported_method() => {
            return error_result(&ResolutionError::MethodNotSupported(e.to_string()));
        }
        Err(e) => return error_result(&ResolutionError::InvalidDid(e.to_string())),
    };
    if query.version_id.is_some() && query.version_time.is_some() {
        return error_result(&ResolutionError::InvalidOptions(
            "give versionId or versionTime, not both".to_owned(),
        ));
    }
    if did.method() != Method::Civ {
        return match resolve_key_did(&did) {
            Ok(doc) => respond(
                StatusCode::OK,
                &ResolutionResult {
                    context: RESOLUTION_CONTEXT.to_owned(),
                    did_document: Some(doc),
                    did_resolution_metadata: ResolutionMetadata {
                        content_type: Some(civitas_core::api::DID_CONTENT_TYPE.to_owned()),
                        error: None,
                    },
                    did_document_metadata: DocumentMetadata::default(),
                    proof: None,
                },
            ),
            Err(e) => error_result(&e),
        };
    }
    let head = app.ledger.head().await;
    let Some(record) = app.ledger.state().did_shared(&did) else {
        return error_result(&ResolutionError::NotFound(format!(
            "{did} is not on the ledger"
        )));
    };
    let rules = app.ledger.rules();
    let pos = if let Some(version) = &query.version_id {
        let Ok(id) = version.parse::<ObjectId>() else {
            return error_result(&ResolutionError::InvalidOptions(format!(
                "versionId {version:?} is not an object id"
            )));
        };
        match record.position(&id) {
            Some(pos) => pos,
            None => {
                return error_result(&ResolutionError::VersionNotFound(format!(
                    "{id} is not a version of {did} (nullified or unknown)"
                )));
            }
        }
    } else if let Some(time) = &query.version_time {
        let Some(ms) = parse_time_ms(time) else {
            return error_result(&ResolutionError::InvalidOptions(format!(
                "versionTime {time:?} is not an RFC 3339 time"
            )));
        };
        match record.position_at(ms, rules) {
            Some(pos) => pos,
            None => {
                return error_result(&ResolutionError::VersionNotFound(format!(
                    "{did} did not exist at {time}"
                )));
            }
        }
    } else {
        match record.effective_len(head.time_ms(), rules).checked_sub(1) {
            Some(pos) => pos,
            None => {
                return error_result(&ResolutionError::NotFound(format!(
                    "{did} has no operation in effect yet"
                )));
            }
        }
    };
    // A controller operation waiting for its window is announced on the current version.
    let effective = record.effective_len(head.time_ms(), rules);
    let pending = effective < record.chain.len() && pos + 1 == effective;
    match build_result(&head, app.ledger.log(), &record, pos, pending) {
        Ok((status, result)) => respond(status, &result),
        Err(e) => e.into_response(),
    }
}

fn build_result(
    head: &Head,
    log: &civitas_store::LogReader,
    record: &DidRecord,
    pos: usize,
    pending: bool,
) -> Result<(StatusCode, ResolutionResult), ApiError> {
    let version = &record.chain[pos];
    let latest = record.chain.last().unwrap_or(version);
    // The leaf bytes come from the log itself (a page-cache read), never re-encoded.
    let leaf = |h: &HistoryOp| -> Result<_, ApiError> {
        let bytes = log.read(h.index).map_err(ApiError::internal)?;
        head.leaf_proof(h.index, &bytes)
    };
    let deactivated = version.op.op == OpKind::Deactivate;
    let next = record.chain.get(pos + 1);
    let proof = ResolutionProof {
        checkpoint: head.checkpoint.clone(),
        seal: head.seal_proof(),
        operation: leaf(version)?,
        latest: if latest.id == version.id {
            None
        } else {
            Some(leaf(latest)?)
        },
        state: head
            .state_proof(&map_key_did(&record.did))
            .ok_or_else(|| ApiError::internal("a DID on the ledger has no state proof"))?,
    };
    let metadata = DocumentMetadata {
        created: record.chain.first().map(|h| rfc3339(h.time_ms)),
        updated: Some(rfc3339(version.time_ms)),
        version_id: Some(version.id.to_string()),
        deactivated,
        next_version_id: next.map(|h| h.id.to_string()),
        next_update: next.map(|h| rfc3339(h.time_ms)),
        compromised_keys: record
            .compromised_keys(record.chain.len())
            .iter()
            .map(ToString::to_string)
            .collect(),
        pending_operation: pending.then(|| latest.id.to_string()),
    };
    let result = ResolutionResult {
        context: RESOLUTION_CONTEXT.to_owned(),
        did_document: Some(record.document_at(pos)),
        did_resolution_metadata: ResolutionMetadata {
            content_type: Some(civitas_core::api::DID_CONTENT_TYPE.to_owned()),
            error: None,
        },
        did_document_metadata: metadata,
        proof: Some(proof),
    };
    let status = if deactivated {
        StatusCode::GONE
    } else {
        StatusCode::OK
    };
    Ok((status, result))
}

fn item(h: &HistoryOp, nullified_by: Option<ObjectId>) -> HistoryItem {
    HistoryItem {
        id: h.id,
        op: match h.op.op {
            OpKind::Create => "create",
            OpKind::Update => "update",
            _ => "deactivate",
        }
        .to_owned(),
        index: h.index,
        time: rfc3339(h.time_ms),
        signer: match &h.op.signer {
            OpSigner::RotationKey(i) => format!("rotationKey {i}"),
            OpSigner::ControllerKey(url) => url.to_string(),
            _ => "unknown".to_owned(),
        },
        canonical: nullified_by.is_none(),
        nullified_by,
    }
}

async fn history(
    State(app): State<AppState>,
    Path(did_text): Path<String>,
) -> Result<Json<DidHistory>, ApiError> {
    let did: Did = did_text
        .parse()
        .map_err(|e: civitas_core::did::ParseDidError| {
            ApiError::new(civitas_core::problem::INVALID_QUERY, e.to_string())
        })?;
    let record = app.ledger.state().did(&did).ok_or_else(|| {
        ApiError::new(
            civitas_core::problem::DID_NOT_FOUND,
            format!("{did} is not on the ledger"),
        )
    })?;
    let mut operations: Vec<HistoryItem> = record.chain.iter().map(|h| item(h, None)).collect();
    operations.extend(record.nullified.iter().map(|(h, by)| item(h, Some(*by))));
    Ok(Json(DidHistory {
        did: did.to_string(),
        operations,
    }))
}
