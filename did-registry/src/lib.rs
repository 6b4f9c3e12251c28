//! The Civitas registry node: the ledger of did:civ operations, trust entries and anchors,
//! sealed into blocks, logged in an RFC 9162 Merkle tree with signed checkpoints, and
//! served over HTTP with proofs.
//!
//! ```text
//!  POST /operations ─┐                      ┌─▶ civitas-store Log (fdatasync, one per block)
//!  POST /trust ──────┼─▶ Ledger::submit ─▶ writer ─▶ sled state ─▶ Head { tree, map, checkpoint }
//!  POST /anchors ────┘   (bounded queue)    └─▶ receipts (after the checkpoint is signed)
//!  GET  /1.0/identifiers/{did}, /log/*, /checkpoint, /trust/issuers ◀── Head + state
//! ```
//!
//! `app()` builds the router used by the binary and by tests; `serve()` runs it.

pub mod cli;
mod error;
mod ledger;
mod limits;
mod node_keys;
mod routes;
mod state;
mod time;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use crate::error::ApiError;
pub use crate::ledger::{DEFAULT_RECOVERY_WINDOW, Head, Ledger, LedgerOptions, OpenError};
pub use crate::limits::Limits;
pub use crate::node_keys::{NodeKeyError, NodeKeys};

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// Rate limits; `None` when off.
    pub limits: Option<Arc<Limits>>,
}

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
        .merge(routes::resolve::routes())
        .merge(routes::log::routes())
        .merge(routes::write::routes())
        .merge(routes::trust::routes())
        .merge(routes::ops::routes())
        .fallback(|| async { ApiError::new(civitas_core::problem::NOT_FOUND, "no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            limits::limit_writes,
        ))
        .layer(middleware)
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
