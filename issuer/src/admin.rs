//! The admin API, for the department's operators: `POST /admin/offers`,
//! `GET /admin/credentials/{id}` and `POST /admin/credentials/{id}/status`, behind the
//! verifier layer's checks (see [`AdminGate`]): an RFC 9421 signed request (the Civitas
//! profile) by one of the `--operator` DIDs, or one presenting an `OfficialRole` with role
//! `issuer-operator` issued by this department. Every decision is in the issuer's audit
//! trail, anchored in the stream `<department DID>/audit`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use civitas_client::RegistryClient;
use civitas_core::did::Did;
use civitas_core::httpsig;
use civitas_core::problem;
use civitas_core::schema::SchemaSet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use verifier::audit::AuditLog;
use verifier::policy::PolicyError;
use verifier::{Checker, Denial, Policy, Settings, Verifier};

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
/// The role an `OfficialRole` must carry to use the admin API.
pub const OPERATOR_ROLE: &str = "issuer-operator";

/// The operator a request was signed by.
#[derive(Debug, Clone)]
pub struct Operator(pub Did);

/// Who may use the admin API, through the verifier layer's checks (and its audit trail):
/// the `--operator` DIDs with a signed request alone (bootstrap and break-glass; restart
/// without the flag to retire them), and holders of an `OfficialRole` issued by this
/// issuer's department with role `issuer-operator`, presented in the signed request.
#[derive(Debug)]
pub struct AdminGate {
    operators: Option<Verifier>,
    officials: Option<Verifier>,
}

/// The admin routes, each with `rule` (TOML keys of a policy route).
fn admin_policy(rule: &str) -> String {
    [
        ("POST", "/admin/offers"),
        ("GET", "/admin/credentials/{id}"),
        ("POST", "/admin/credentials/{id}/status"),
    ]
    .iter()
    .map(|(method, path)| format!("[[route]]\nmethod = \"{method}\"\npath = \"{path}\"\n{rule}\n"))
    .collect()
}

/// A TOML string (JSON string syntax is TOML basic-string syntax for these values).
fn toml_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

impl AdminGate {
    /// The gate for `department`'s issuer at `public_url`.
    pub fn new(
        operators: &[Did],
        department: &Did,
        public_url: &str,
        schemas: &SchemaSet,
        registry: Arc<RegistryClient>,
        audit: Arc<AuditLog>,
    ) -> Result<Self, PolicyError> {
        let http = reqwest::Client::new();
        let make = |policy: Policy| {
            Verifier::new(
                Checker::new(
                    policy,
                    schemas.clone(),
                    Settings::new(public_url),
                    Arc::clone(&registry),
                    http.clone(),
                ),
                Arc::clone(&audit),
            )
        };
        let operators = if operators.is_empty() {
            None
        } else {
            let callers: Vec<String> = operators.iter().map(|d| toml_string(d.as_str())).collect();
            let rule = format!("credential = \"none\"\ncallers = [{}]", callers.join(", "));
            Some(make(Policy::from_toml(&admin_policy(&rule), schemas)?))
        };
        let officials = if schemas.by_type("OfficialRole").is_some() {
            let rule = format!(
                "credential = \"OfficialRole\"\ndisclose = [\"role\"]\nconstraints = ['role == \"{OPERATOR_ROLE}\"']\nmax_classification = \"internal\"\nissuers = [{}]",
                toml_string(department.as_str())
            );
            Some(make(Policy::from_toml(&admin_policy(&rule), schemas)?))
        } else {
            None
        };
        Ok(Self {
            operators,
            officials,
        })
    }
}

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

/// Checks the signed request (and the presentation, if any) and records the decision.
async fn require_operator(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            problem::PAYLOAD_TOO_LARGE,
            format!("expected a body of at most {MAX_BODY} bytes"),
        )
        .into_response();
    };
    let presented = parts.headers.contains_key(httpsig::PRESENTATION_HEADER);
    let gate = if presented {
        app.admin.officials.as_ref()
    } else {
        app.admin.operators.as_ref()
    };
    let Some(gate) = gate else {
        return Denial::new(
            problem::NOT_AUTHORIZED,
            if presented {
                "this issuer has no OfficialRole schema, so it recognises no issuer-operator credential"
            } else {
                "present an OfficialRole with role issuer-operator issued by this department"
            },
        )
        .into_response();
    };
    let id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    match gate.decide(&parts, &bytes, &id).await {
        Ok(caller) => {
            parts.extensions.insert(Operator(caller.did().clone()));
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(denial) => denial.into_response(),
    }
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
