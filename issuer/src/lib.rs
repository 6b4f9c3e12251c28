//! The Civitas credential issuer: a department's OpenID4VCI Credential Issuer of SD-JWT VCs.
//!
//! It holds one key — an `assertionMethod` key of the department's did:civ, whose rotation
//! keys stay in the operator's wallet — and the department's schemas. Operators create offers
//! and change statuses through the admin API with RFC 9421 signed requests; holders redeem
//! offers with the pre-authorized code flow. Every state change is durable (group-committed
//! log) before it is relied on; status lists are published on a cadence and anchored.
//!
//! ```text
//!  operator wallet ──signed POST /admin/offers──▶ admin (accreditation, level, constraints, schema)
//!  holder wallet ──/token──/nonce──/credential──▶ oid4vci ──▶ issue (plan, conceal, sign)
//!                                                    │            ▲ accreditation + key at iat
//!                                                    ▼            │ (civitas-client → registry)
//!                                          store (log + sled) ◀── status publisher ──▶ /anchors
//! ```

pub mod admin;
pub mod cli;
pub mod error;
pub mod issue;
pub mod keys;
pub mod offers;
pub mod oid4vci;
pub mod schemas;
pub mod status;
pub mod store;
mod trust;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use civitas_client::RegistryClient;
use civitas_core::did::{Did, DidUrl};
use civitas_core::keys::SecretKey;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use crate::error::ApiError;
use crate::schemas::Schemas;
use crate::status::Changes;
use crate::store::Store;

/// Shared state of the HTTP handlers and background tasks.
#[derive(Clone)]
pub struct AppState {
    /// Durable state.
    pub store: Store,
    /// The issuer's signing key.
    pub key: Arc<SecretKey>,
    /// The department DID (`iss`).
    pub did: Did,
    /// The DID URL of the signing key (`kid`).
    pub kid: DidUrl,
    /// The Credential Issuer Identifier (no trailing slash).
    pub public_url: String,
    /// The registry, with pinned keys.
    pub registry: Arc<RegistryClient>,
    /// The credential types this issuer serves.
    pub schemas: Arc<Schemas>,
    /// DIDs allowed to use the admin API.
    pub operators: Arc<Vec<Did>>,
    /// Status list cadence.
    pub status_interval: Duration,
    /// Wakes the status publisher.
    pub changes: Arc<Changes>,
    /// Short-lived protocol state (nonces, replay, caches).
    pub ephemeral: Arc<oid4vci::Ephemeral>,
    /// Accreditation answers for issuance.
    pub(crate) trust: Arc<trust::TrustCache>,
    /// Who may use the admin API.
    pub admin: Arc<admin::AdminGate>,
    /// The audit trail of admin decisions.
    pub audit: Arc<verifier::audit::AuditLog>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("did", &self.did)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// What an issuer needs to start.
#[derive(Debug)]
pub struct IssuerOptions {
    /// Durable state.
    pub store: Store,
    /// The signing key.
    pub key: SecretKey,
    /// The department DID.
    pub did: Did,
    /// The Credential Issuer Identifier.
    pub public_url: String,
    /// The registry client.
    pub registry: RegistryClient,
    /// The schemas.
    pub schemas: Schemas,
    /// Operator DIDs.
    pub operators: Vec<Did>,
    /// Status list cadence.
    pub status_interval: Duration,
    /// The audit trail of admin decisions (its service DID is the department's).
    pub audit: Arc<verifier::audit::AuditLog>,
}

/// Why the issuer cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The signing key is not an `assertionMethod` key of the DID.
    #[error(
        "the issuer key {key} is not an assertionMethod key of {did}; make the DID with 'wallet did create --assertion-key {key} --service OID4VCI={url}'"
    )]
    KeyNotInDid {
        /// The key.
        key: String,
        /// The DID.
        did: String,
        /// The public URL.
        url: String,
    },
    /// The DID does not list the public URL as its OID4VCI service.
    #[error(
        "{did} does not list {url} as an OID4VCI service; the wallet checks it, so holders would refuse this issuer"
    )]
    ServiceMissing {
        /// The DID.
        did: String,
        /// The URL.
        url: String,
    },
    /// The public URL is not https (or http on loopback).
    #[error("expected an https:// public URL (http:// only on loopback), found {0:?}")]
    InsecureUrl(String),
    /// The admin API's policy could not be built.
    #[error("the admin API policy: {0}")]
    AdminPolicy(String),
    /// The registry could not be asked.
    #[error("resolving {did} at the registry: {detail}")]
    Registry {
        /// The DID.
        did: String,
        /// Why.
        detail: String,
    },
}

impl AppState {
    /// Checks the options against the registry (the key is the DID's assertion key, the
    /// public URL its OID4VCI service) and builds the state.
    pub async fn start(options: IssuerOptions) -> Result<Self, StartError> {
        let public_url = options.public_url.trim_end_matches('/').to_owned();
        if !civitas_client::credential::acceptable_issuer_url(&public_url) {
            return Err(StartError::InsecureUrl(public_url));
        }
        let resolved = options
            .registry
            .resolve(&options.did, &civitas_client::Version::Current)
            .await
            .map_err(|e| StartError::Registry {
                did: options.did.to_string(),
                detail: e.to_string(),
            })?;
        let public = options.key.public_key();
        let document = &resolved.document;
        let kid = document
            .assertion_method
            .iter()
            .find(|url| {
                document.key_for(url, civitas_core::document::Relationship::AssertionMethod)
                    == Some(public)
            })
            .cloned()
            .ok_or_else(|| StartError::KeyNotInDid {
                key: public.to_multibase(),
                did: options.did.to_string(),
                url: public_url.clone(),
            })?;
        if !document
            .service_endpoints(oid4vci::ISSUER_SERVICE_TYPE)
            .any(|e| e.trim_end_matches('/') == public_url)
        {
            return Err(StartError::ServiceMissing {
                did: options.did.to_string(),
                url: public_url,
            });
        }
        let registry = Arc::new(options.registry);
        let schema_set = options
            .schemas
            .to_set()
            .map_err(|e| StartError::AdminPolicy(e.to_string()))?;
        let admin = admin::AdminGate::new(
            &options.operators,
            &options.did,
            &public_url,
            &schema_set,
            Arc::clone(&registry),
            Arc::clone(&options.audit),
        )
        .map_err(|e| StartError::AdminPolicy(e.to_string()))?;
        Ok(Self {
            store: options.store,
            key: Arc::new(options.key),
            did: options.did,
            kid,
            public_url,
            registry,
            schemas: Arc::new(options.schemas),
            operators: Arc::new(options.operators),
            status_interval: options.status_interval,
            changes: Arc::new(Changes::default()),
            ephemeral: Arc::new(oid4vci::Ephemeral::default()),
            trust: Arc::new(trust::TrustCache::default()),
            admin: Arc::new(admin),
            audit: options.audit,
        })
    }
}

/// How often the admin audit trail is anchored.
const AUDIT_ANCHOR_INTERVAL: Duration = Duration::from_secs(1);

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    Router::new()
        .merge(oid4vci::routes())
        .merge(admin::routes(state.clone()))
        .fallback(|| async { ApiError::new(civitas_core::problem::NOT_FOUND, "no such route") })
        .layer(middleware)
        .with_state(state)
}

/// Serves the issuer on `listener` until `shutdown`; the status publisher runs alongside.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let publisher = tokio::spawn(status::publisher(state.clone(), state.changes.clone()));
    let anchoring = tokio::spawn(verifier::audit::anchor_loop(
        Arc::clone(&state.audit),
        Arc::clone(&state.registry),
        Arc::clone(&state.key),
        state.kid.clone(),
        AUDIT_ANCHOR_INTERVAL,
    ));
    let result = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    publisher.abort();
    anchoring.abort();
    result
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// Seconds since the Unix epoch.
pub fn now_s() -> i64 {
    i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX)
}
