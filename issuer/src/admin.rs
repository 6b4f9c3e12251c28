//! The admin API, for the department's operators: `POST /admin/offers`,
//! `GET /admin/credentials/{id}` and `POST /admin/credentials/{id}/status`. Every request is
//! an RFC 9421 signed request (the Civitas profile) by a key in the `authentication` of one
//! of the `--operator` DIDs.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use civitas_client::Version;
use civitas_core::did::Did;
use civitas_core::document::Relationship;
use civitas_core::httpsig;
use civitas_core::problem;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::offers::{
    CreateOffer, MAX_OFFER_LIFETIME_MS, SetStatus, StatusChangeError, hash_secret, hash_tx_code,
    offer_uri, random_token, random_tx_code,
};
use crate::status::StatusCode as CredentialStatus;
use crate::store::{IssuedCredential, Offer, OfferState, credential_key};
use crate::{ApiError, AppState, now_ms};

/// Largest admin request body.
const MAX_BODY: usize = 256 * 1024;
/// Default credential validity.
const DEFAULT_VALIDITY_S: u64 = 365 * 24 * 3600;
/// Most request nonces remembered; beyond it requests are refused (503) rather than
/// forgetting a live one.
const MAX_REQUEST_NONCES: usize = 100_000;

/// The operator a request was signed by.
#[derive(Debug, Clone)]
pub struct Operator(pub Did);

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/offers", post(create_offer))
        .route("/admin/credentials/{id}", get(credential))
        .route("/admin/credentials/{id}/status", post(set_status))
        .layer(axum::middleware::from_fn_with_state(
            state,
            require_operator,
        ))
}

/// Admin routes need a signed request, no presentation and no purpose.
fn requirements(body: bool) -> httpsig::Requirements {
    httpsig::Requirements {
        presentation: false,
        purpose: false,
        body,
    }
}

fn unsigned(kind: problem::ProblemType, detail: impl Into<String>) -> Response {
    let mut response = ApiError::new(kind, detail).into_response();
    if response.status() == StatusCode::UNAUTHORIZED
        && let Ok(v) = HeaderValue::from_str(&httpsig::accept_signature(requirements(false)))
    {
        response.headers_mut().insert(httpsig::ACCEPT_SIGNATURE, v);
    }
    response
}

/// Verifies the request signature and that its signer is an operator.
async fn require_operator(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            problem::PAYLOAD_TOO_LARGE,
            format!("expected a body of at most {MAX_BODY} bytes"),
        )
        .into_response();
    };
    match verify(&app, &parts, &bytes).await {
        Ok(operator) => {
            parts.extensions.insert(Operator(operator));
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => unsigned(e.kind(), e.detail()),
    }
}

fn sig_error(e: &httpsig::HttpSigError) -> ApiError {
    ApiError::new(e.problem(), e.to_string())
}

async fn verify(
    app: &AppState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Did, ApiError> {
    let fields: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
        .collect();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let target = httpsig::target_uri(&app.public_url, path).map_err(|e| sig_error(&e))?;
    let request = httpsig::Request::new(parts.method.as_str(), &target, &fields)
        .map_err(|e| sig_error(&e))?;
    let signature = httpsig::SignatureSet::from_request(&request)
        .and_then(|set| set.by_tag(httpsig::TAG))
        .map_err(|e| sig_error(&e))?;
    let checked = httpsig::check_profile(
        &signature,
        requirements(!body.is_empty()),
        crate::now_s(),
        httpsig::Window::default(),
    )
    .map_err(|e| sig_error(&e))?;
    request
        .verify_content_digest(body)
        .map_err(|e| sig_error(&e))?;
    let keyid = checked.key_id().clone();
    if !app.operators.iter().any(|o| o == keyid.did()) {
        return Err(ApiError::new(
            problem::NOT_AUTHORIZED,
            format!("{} is not an operator of this issuer", keyid.did()),
        ));
    }
    let resolved = app
        .registry
        .resolve(keyid.did(), &Version::Current)
        .await
        .map_err(|e| {
            ApiError::new(
                problem::REGISTRY_UNAVAILABLE,
                format!("resolving {}: {e}", keyid.did()),
            )
        })?;
    let key = resolved
        .document
        .key_for(&keyid, Relationship::Authentication)
        .ok_or_else(|| {
            ApiError::new(
                problem::INVALID_REQUEST_SIGNATURE,
                format!("{keyid} is not a current authentication key of its DID"),
            )
        })?;
    let base = httpsig::signature_base(&request, &signature).map_err(|e| sig_error(&e))?;
    httpsig::verify(&signature, &base, &key).map_err(|e| sig_error(&e))?;
    // Replay: only now, after the signature verified, kept until the window closes.
    let now_ms = now_ms();
    let until_ms = u64::try_from(checked.replay_until())
        .unwrap_or(0)
        .saturating_mul(1000);
    let mut seen = app
        .ephemeral
        .request_nonces
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.len() >= MAX_REQUEST_NONCES {
        seen.retain(|_, expiry| *expiry > now_ms);
        if seen.len() >= MAX_REQUEST_NONCES {
            return Err(ApiError::new(
                problem::OVERLOADED,
                "too many recent requests; try again shortly",
            ));
        }
    }
    let entry = (keyid.did().to_string(), checked.nonce().to_owned());
    if seen.get(&entry).is_some_and(|expiry| *expiry > now_ms) {
        return Err(ApiError::new(
            problem::REPLAYED_REQUEST,
            "this request nonce was used before",
        ));
    }
    seen.insert(entry, until_ms.max(now_ms));
    Ok(keyid.did().clone())
}

/// `POST /admin/offers`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    /// The credential configuration (type name, e.g. `ResidentIdentity`) or its `vct`.
    pub credential_type: String,
    /// The claims.
    pub claims: Map<String, Value>,
    /// The holder DID the offer is bound to.
    #[serde(default)]
    pub holder: Option<String>,
    /// Credential validity in seconds (default one year).
    #[serde(default)]
    pub valid_for_s: Option<u64>,
}

/// The answer to `POST /admin/offers`.
#[derive(Debug, Serialize, Deserialize)]
pub struct OfferResponse {
    /// The offer id.
    pub offer_id: String,
    /// The `openid-credential-offer://` URI.
    pub credential_offer_uri: String,
    /// The pre-authorized code the URI carries.
    pub pre_authorized_code: String,
    /// The tx code to give the holder by another channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_code: Option<String>,
    /// When the code dies (unix ms).
    pub expires_ms: u64,
}

async fn create_offer(
    State(app): State<AppState>,
    Extension(Operator(operator)): Extension<Operator>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: OfferRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            problem::MALFORMED_JSON,
            format!("expected an offer request: {e}"),
        )
    })?;
    let answer = make_offer(&app, &operator, request).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(answer),
    )
        .into_response())
}

/// Creates an offer for `operator` (already authenticated): the type known, a holder when
/// the type requires one, the claims valid for the schema, the issuer accredited for the
/// type now (read fresh) within its level and claim constraints.
pub async fn make_offer(
    app: &AppState,
    operator: &Did,
    request: OfferRequest,
) -> Result<OfferResponse, ApiError> {
    let entry = app.schemas.find(&request.credential_type).ok_or_else(|| {
        ApiError::new(
            problem::UNKNOWN_VCT,
            format!(
                "this issuer has no credential type {:?}",
                request.credential_type
            ),
        )
    })?;
    let holder = match &request.holder {
        Some(text) => Some(
            text.parse::<Did>()
                .map_err(|e| ApiError::new(problem::INVALID_QUERY, format!("holder: {e}")))?,
        ),
        None if entry.holder_binding_required() => {
            return Err(ApiError::new(
                problem::INVALID_QUERY,
                format!(
                    "{} offers must be bound to the holder the claims describe: give holder",
                    entry.name
                ),
            ));
        }
        None => None,
    };
    entry.validate(&request.claims)?;
    let vct = entry.schema.vct();
    let accreditation = crate::trust::current(app, vct).await?;
    let (highest, all) = entry.planned_summary(&request.claims, crate::now_s())?;
    crate::trust::check_against(&accreditation, vct, highest, || all)?;

    let id = random_token(16);
    let code = random_token(32);
    let tx_code = holder.is_none().then(random_tx_code);
    let now = now_ms();
    let offer = Offer {
        id: id.clone(),
        code_hash: hash_secret(&code),
        config_id: entry.name.clone(),
        claims: request.claims,
        holder: holder.map(|h| h.to_string()),
        tx_code_hash: tx_code.as_deref().map(|t| hash_tx_code(&id, t)),
        created_by: operator.to_string(),
        created_ms: now,
        expires_ms: now + MAX_OFFER_LIFETIME_MS,
        valid_for_s: request.valid_for_s.unwrap_or(DEFAULT_VALIDITY_S),
        state: OfferState::Open { failures: 0 },
    };
    let expires_ms = offer.expires_ms;
    app.store.run(CreateOffer(offer)).await??;
    tracing::info!(offer = %id, %operator, r#type = %entry.name, "offer created");
    let uri = offer_uri(
        &app.public_url,
        &entry.name,
        &code,
        tx_code.is_some(),
        "the code the department gave you",
    );
    Ok(OfferResponse {
        offer_id: id,
        credential_offer_uri: uri,
        pre_authorized_code: code,
        tx_code,
        expires_ms,
    })
}

async fn credential(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IssuedCredential>, ApiError> {
    app.store
        .get_json(&credential_key(&id), "credential")?
        .map(Json)
        .ok_or_else(|| ApiError::new(problem::NOT_FOUND, format!("no credential {id}")))
}

/// `POST /admin/credentials/{id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// The new status.
    pub status: CredentialStatus,
}

async fn set_status(
    State(app): State<AppState>,
    Extension(Operator(operator)): Extension<Operator>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<IssuedCredential>, ApiError> {
    let request: StatusRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            problem::MALFORMED_JSON,
            format!("expected {{\"status\": \"revoked\"|\"suspended\"|\"valid\"}}: {e}"),
        )
    })?;
    let record = app
        .store
        .run(SetStatus {
            credential: id.clone(),
            status: request.status,
            by: operator.to_string(),
            at_ms: now_ms(),
        })
        .await?
        .map_err(|e| match e {
            StatusChangeError::Unknown(_) => ApiError::new(problem::NOT_FOUND, e.to_string()),
            StatusChangeError::Final(_) => {
                ApiError::new(problem::CREDENTIAL_REVOKED, e.to_string())
            }
            StatusChangeError::Storage(e) => ApiError::internal(e),
        })?;
    tracing::info!(credential = %id, status = ?request.status, %operator, "status changed");
    // Served before the answer leaves, so that whoever revoked sees it take effect; the
    // publisher anchors the new version on its next round, which this wakes.
    crate::status::publish(&app, record.list).await?;
    app.changes.changed();
    Ok(Json(record))
}
