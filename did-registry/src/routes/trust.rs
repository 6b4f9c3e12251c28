//! `GET /trust/issuers?vct=T[&at=TIME]`: the accreditations for a credential type, each
//! with its log entry, inclusion proof and state proof.

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::get;
use civitas_core::api::{Accreditation, Accreditations, TrustHistory, TrustHistoryItem};
use civitas_core::did::Did;
use civitas_core::ledger::Signed;
use civitas_core::ledger::TrustAction;
use civitas_core::problem::INVALID_QUERY;
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::state::map_key_trust;
use crate::time::{parse_time_ms, rfc3339};

pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/trust/issuers", get(issuers))
        .route("/trust/history", get(trust_history))
}

#[derive(Debug, Deserialize)]
struct IssuersQuery {
    vct: String,
    at: Option<String>,
}

async fn issuers(
    State(app): State<AppState>,
    query: Result<Query<IssuersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Accreditations>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(INVALID_QUERY, e.body_text()))?;
    let at = match &query.at {
        Some(text) => Some(parse_time_ms(text).ok_or_else(|| {
            ApiError::new(
                INVALID_QUERY,
                format!("expected an RFC 3339 time for at, found {text:?}"),
            )
        })?),
        None => None,
    };
    let head = app.ledger.head().await;
    let mut issuers = Vec::new();
    for (issuer, record) in app.ledger.state().trust_for_vct(&query.vct) {
        let entry = match at {
            Some(ms) => record.accredited_at(ms),
            None => record.current(),
        };
        let Some(entry) = entry else { continue };
        let sig: [u8; 64] = civitas_core::encoding::b64url_decode(&entry.sig)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ApiError::internal("a stored trust entry has a malformed signature"))?;
        let signed = Signed::from_signature(entry.entry.clone(), sig);
        issuers.push(Accreditation {
            issuer: issuer.to_string(),
            vct: query.vct.clone(),
            entry: head.leaf_proof(entry.index, signed.bytes())?,
            state: head
                .state_proof(&map_key_trust(&issuer, &query.vct))
                .ok_or_else(|| ApiError::internal("an accreditation has no state proof"))?,
        });
    }
    Ok(Json(Accreditations {
        vct: query.vct,
        checkpoint: head.checkpoint.clone(),
        seal: head.seal_proof(),
        issuers,
    }))
}

#[derive(Debug, Deserialize)]
struct HistoryQuery {
    issuer: String,
    vct: String,
}

async fn trust_history(
    State(app): State<AppState>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TrustHistory>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(INVALID_QUERY, e.body_text()))?;
    let issuer: Did = query
        .issuer
        .parse()
        .map_err(|e: civitas_core::did::ParseDidError| {
            ApiError::new(INVALID_QUERY, e.to_string())
        })?;
    let record = app
        .ledger
        .state()
        .trust(&issuer, &query.vct)
        .unwrap_or_default();
    Ok(Json(TrustHistory {
        issuer: issuer.to_string(),
        vct: query.vct,
        entries: record
            .entries
            .iter()
            .map(|h| TrustHistoryItem {
                id: h.id,
                action: match h.entry.action {
                    TrustAction::Accredit => "accredit",
                    TrustAction::Withdraw => "withdraw",
                    TrustAction::AddRoot => "add-root",
                    _ => "remove-root",
                }
                .to_owned(),
                time: rfc3339(h.time_ms),
                index: h.index,
            })
            .collect(),
    }))
}
