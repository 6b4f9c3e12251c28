//! OpenID4VCI 1.0 (pre-authorized code flow) and the status list endpoint:
//! `/.well-known/openid-credential-issuer`, `/.well-known/oauth-authorization-server`
//! (RFC 8414), `POST /token`, `POST /nonce`, `POST /credential`, `GET /status/{list}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use civitas_core::problem;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, OAuthCode, OAuthError};
use crate::offers::{self, RedeemCode};
use crate::status::ListId;
use crate::{AppState, now_ms, now_s};

pub use civitas_core::credential::{ISSUER_SERVICE_TYPE, PRE_AUTHORIZED_GRANT, PROOF_TYP};

/// The credential format.
pub const FORMAT: &str = "dc+sd-jwt";
/// How long an access token lives.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// How long a `c_nonce` lives.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Most `c_nonce`s outstanding; beyond it the nonce endpoint answers 503 rather than
/// forgetting live ones.
pub const MAX_NONCES: usize = 100_000;
/// Most proofs (credentials) in one request.
pub const BATCH_SIZE: usize = 5;

/// Nonces issued and not used yet, with their expiry (unix ms).
#[derive(Debug, Default)]
pub struct Ephemeral {
    nonces: Mutex<HashMap<String, u64>>,
    /// Status lists known to have a published version.
    published: Mutex<std::collections::HashSet<ListId>>,
}

impl Ephemeral {
    /// Issues a `c_nonce` (`None` when too many are outstanding).
    pub fn issue_nonce(&self, now: u64) -> Option<String> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        if nonces.len() >= MAX_NONCES {
            nonces.retain(|_, expiry| *expiry > now);
            if nonces.len() >= MAX_NONCES {
                return None;
            }
        }
        let nonce = offers::random_token(16);
        let lifetime = u64::try_from(NONCE_LIFETIME.as_millis()).unwrap_or(u64::MAX);
        nonces.insert(nonce.clone(), now.saturating_add(lifetime));
        Some(nonce)
    }

    pub(crate) fn is_published(&self, list: ListId) -> bool {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&list)
    }

    pub(crate) fn mark_published(&self, list: ListId) {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(list);
    }

    /// Uses up a nonce: `true` when it was issued, is live, and was not used before.
    pub(crate) fn take_nonce(&self, nonce: &str, now: u64) -> bool {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.remove(nonce).is_some_and(|expiry| expiry > now)
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-credential-issuer",
            get(issuer_metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server_metadata),
        )
        .route("/token", post(token))
        .route("/nonce", post(nonce))
        .route("/credential", post(credential))
        .route("/status/{list}", get(status_list))
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn issuer_metadata(State(app): State<AppState>) -> Json<Value> {
    let mut configurations = serde_json::Map::new();
    for entry in app.schemas.iter() {
        let schema = &entry.schema;
        let claims: Vec<Value> = schema
            .claims()
            .iter()
            .map(|claim| {
                let mut c = json!({ "path": claim.path });
                if !claim.display.is_empty() {
                    c["display"] = json!(claim.display);
                }
                c
            })
            .collect();
        configurations.insert(
            entry.name.clone(),
            json!({
                "format": FORMAT,
                "vct": schema.vct(),
                "scope": entry.name,
                "cryptographic_binding_methods_supported": ["did:civ", "did:key", "did:jwk", "jwk"],
                "credential_signing_alg_values_supported": ["EdDSA"],
                "proof_types_supported": {
                    "jwt": { "proof_signing_alg_values_supported": ["EdDSA"] }
                },
                "credential_metadata": {
                    "display": schema.display(),
                    "claims": claims,
                },
            }),
        );
    }
    Json(json!({
        "credential_issuer": app.public_url,
        "authorization_servers": [app.public_url],
        "credential_endpoint": format!("{}/credential", app.public_url),
        "nonce_endpoint": format!("{}/nonce", app.public_url),
        "batch_credential_issuance": { "batch_size": BATCH_SIZE },
        "display": [{ "name": app.did.to_string(), "locale": "en-US" }],
        "credential_configurations_supported": configurations,
    }))
}

async fn authorization_server_metadata(State(app): State<AppState>) -> Json<Value> {
    Json(json!({
        "issuer": app.public_url,
        "token_endpoint": format!("{}/token", app.public_url),
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": true,
    }))
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    #[serde(rename = "pre-authorized_code")]
    pre_authorized_code: Option<String>,
    tx_code: Option<String>,
}

async fn token(
    State(app): State<AppState>,
    form: Result<Form<TokenRequest>, axum::extract::rejection::FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(request) = form.map_err(|e| {
        OAuthError::new(
            OAuthCode::InvalidRequest,
            format!("expected an application/x-www-form-urlencoded token request: {e}"),
        )
    })?;
    match request.grant_type.as_deref() {
        Some(PRE_AUTHORIZED_GRANT) => {}
        Some(other) => {
            return Err(OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                format!("expected grant_type {PRE_AUTHORIZED_GRANT}, found {other:?}"),
            ));
        }
        None => {
            return Err(OAuthError::new(
                OAuthCode::InvalidRequest,
                "grant_type is missing",
            ));
        }
    }
    let code = request.pre_authorized_code.ok_or_else(|| {
        OAuthError::new(OAuthCode::InvalidRequest, "pre-authorized_code is missing")
    })?;
    let (token, redeemed) = redeem(&app, &code, request.tx_code).await?;
    Ok(no_store(
        Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "authorization_details": [{
                "type": "openid_credential",
                "credential_configuration_id": redeemed.config_id,
            }],
        }))
        .into_response(),
    ))
}

/// The token endpoint's logic: exchanges a pre-authorized code (and its tx code) for an
/// access token, durably, once.
pub async fn redeem(
    app: &AppState,
    code: &str,
    tx_code: Option<String>,
) -> Result<(String, offers::Redeemed), OAuthError> {
    let secret = offers::random_token(32);
    let now = now_ms();
    let redeemed = app
        .store
        .run(RedeemCode {
            code_hash: offers::hash_secret(code),
            tx_code,
            token_secret: secret.clone(),
            token_expires_ms: now
                .saturating_add(u64::try_from(TOKEN_LIFETIME.as_millis()).unwrap_or(u64::MAX)),
            now_ms: now,
        })
        .await??;
    tracing::info!(offer = %redeemed.offer, "pre-authorized code redeemed");
    Ok((offers::access_token(&redeemed.offer, &secret), redeemed))
}

async fn nonce(State(app): State<AppState>) -> Result<Response, ApiError> {
    let nonce = app.ephemeral.issue_nonce(now_ms()).ok_or_else(|| {
        ApiError::new(
            problem::OVERLOADED,
            "too many outstanding nonces; try again shortly",
        )
    })?;
    Ok(no_store(Json(json!({ "c_nonce": nonce })).into_response()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialRequest {
    credential_configuration_id: Option<String>,
    credential_identifier: Option<String>,
    proofs: Option<Proofs>,
    proof: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Proofs {
    jwt: Vec<String>,
}

fn bearer(headers: &HeaderMap) -> Result<&str, OAuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| OAuthError::new(OAuthCode::InvalidToken, "no bearer access token"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| OAuthError::new(OAuthCode::InvalidToken, "malformed authorization"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(OAuthError::new(
            OAuthCode::InvalidToken,
            "expected a Bearer access token",
        ));
    }
    Ok(token.trim())
}

async fn credential(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, OAuthError> {
    let token = bearer(&headers)?;
    let request: CredentialRequest = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::new(
            OAuthCode::InvalidCredentialRequest,
            format!("expected a credential request: {e}"),
        )
    })?;
    if request.proof.is_some() {
        return Err(OAuthError::new(
            OAuthCode::InvalidCredentialRequest,
            "expected proofs: {\"jwt\": [...]}, found the pre-final 'proof' member",
        ));
    }
    if request.credential_identifier.is_some() {
        return Err(OAuthError::new(
            OAuthCode::InvalidCredentialRequest,
            "credential_identifier is not used by this issuer; send credential_configuration_id",
        ));
    }
    let config_id = request.credential_configuration_id.ok_or_else(|| {
        OAuthError::new(
            OAuthCode::InvalidCredentialRequest,
            "credential_configuration_id is missing",
        )
    })?;
    let proofs = request
        .proofs
        .ok_or_else(|| OAuthError::new(OAuthCode::InvalidProof, "proofs.jwt is missing"))?
        .jwt;
    if proofs.is_empty() || proofs.len() > BATCH_SIZE {
        return Err(OAuthError::new(
            OAuthCode::InvalidProof,
            format!(
                "expected 1 to {BATCH_SIZE} jwt proofs, found {}",
                proofs.len()
            ),
        ));
    }
    let credentials = crate::issue::issue(&app, token, &config_id, &proofs, now_s()).await?;
    let body = json!({
        "credentials": credentials
            .iter()
            .map(|c| json!({ "credential": c }))
            .collect::<Vec<_>>(),
    });
    Ok(no_store(Json(body).into_response()))
}

#[derive(Debug, Deserialize)]
struct StatusQuery {
    time: Option<String>,
}

async fn status_list(
    State(app): State<AppState>,
    Path(list): Path<String>,
    query: Result<Query<StatusQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(problem::INVALID_QUERY, e.body_text()))?;
    let list: u32 = list
        .parse()
        .map_err(|_| ApiError::new(problem::NOT_FOUND, format!("no status list {list:?}")))?;
    let time = match &query.time {
        None => None,
        Some(text) => Some(parse_time(text).ok_or_else(|| {
            ApiError::new(
                problem::INVALID_QUERY,
                format!("expected time as unix seconds or RFC 3339, found {text:?}"),
            )
        })?),
    };
    let version = crate::status::version_at(&app, ListId(list), time)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                problem::NOT_FOUND,
                match time {
                    Some(t) => format!("status list {list} had no version at {t}"),
                    None => format!("no status list {list}"),
                },
            )
        })?;
    let mut response = version.jws.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/statuslist+jwt"),
    );
    if time.is_none()
        && let Ok(v) =
            HeaderValue::from_str(&format!("max-age={}", app.status_interval.as_secs().max(1)))
    {
        headers.insert(header::CACHE_CONTROL, v);
    }
    Ok(response)
}

/// Unix seconds or RFC 3339.
fn parse_time(text: &str) -> Option<i64> {
    if let Ok(n) = text.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use_and_expire() {
        let e = Ephemeral::default();
        let n = e.issue_nonce(1_000).unwrap_or_default();
        assert!(e.take_nonce(&n, 1_001));
        assert!(!e.take_nonce(&n, 1_002), "a nonce is used once");
        let n = e.issue_nonce(1_000).unwrap_or_default();
        let later = 1_000 + u64::try_from(NONCE_LIFETIME.as_millis()).unwrap_or(0) + 1;
        assert!(!e.take_nonce(&n, later), "an expired nonce is refused");
        assert!(!e.take_nonce("never-issued", 1_000));
    }

    #[test]
    fn status_times_parse() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_time("-5"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
