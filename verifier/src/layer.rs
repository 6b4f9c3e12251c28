//! The tower layer: checks every request (see [`crate::check`]), writes its audit record —
//! durably before the inner service runs for an allowed request — and either answers with
//! the denial or hands the request, with its [`VerifiedCaller`], to the inner service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use civitas_core::encoding;
use civitas_core::httpsig::Requirements;
use civitas_core::problem;
use rand::RngCore as _;
use tower::{Layer, Service};

use crate::audit::{AuditLog, Draft};
use crate::caller::VerifiedCaller;
use crate::check::{Checker, Facts};
use crate::denial::Denial;

/// The request id header (set by the layer when the client sent none).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Largest request body the layer reads.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// A checker and the audit store it records to.
#[derive(Debug)]
pub struct Verifier {
    checker: Checker,
    audit: Arc<AuditLog>,
    max_body: usize,
    record_allowed: bool,
}

impl Verifier {
    /// A verifier recording to `audit`.
    pub fn new(checker: Checker, audit: Arc<AuditLog>) -> Self {
        Self {
            checker,
            audit,
            max_body: DEFAULT_MAX_BODY,
            record_allowed: true,
        }
    }

    /// A verifier that records only denials: for callers reading their own audit records,
    /// whose every read would otherwise add a record to what they read.
    pub fn recording_denials_only(mut self) -> Self {
        self.record_allowed = false;
        self
    }

    /// The checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The audit store.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Checks one request and records the decision: the verified caller, or the denial.
    pub async fn decide(
        &self,
        parts: &axum::http::request::Parts,
        body: &[u8],
        request_id: &str,
    ) -> Result<VerifiedCaller, Denial> {
        let mut facts = Facts::default();
        // Boxed: the check's state is large, and inline it would be moved with every future
        // that holds this one.
        let outcome = Box::pin(self.checker.check(parts, body, request_id, &mut facts)).await;
        let method = parts.method.as_str();
        let path = parts.uri.path();
        match outcome {
            Ok(caller) if !self.record_allowed => Ok(caller),
            Ok(mut caller) => {
                let draft = draft(&facts, request_id, method, path, None);
                match self.audit.append(draft).await {
                    Ok(seq) => {
                        caller.set_audit_seq(seq);
                        Ok(caller)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the audit store cannot write: refusing requests");
                        Err(Denial::new(
                            problem::AUDIT_UNAVAILABLE,
                            "the request cannot be recorded, so it is not served; try again later",
                        ))
                    }
                }
            }
            Err(denial) => {
                let reason = denial.kind().uri();
                if facts.caller.is_some() {
                    let draft = draft(&facts, request_id, method, path, Some(reason));
                    if let Err(e) = self.audit.append(draft).await {
                        tracing::error!(error = %e, "the audit store cannot write a denial");
                    }
                } else {
                    let route = facts.route.as_deref().unwrap_or(path);
                    self.audit.note_unverified(
                        facts.claimed_key_id.as_deref(),
                        &reason,
                        method,
                        route,
                    );
                }
                Err(if denial.status() == StatusCode::UNAUTHORIZED {
                    denial.asking(facts.requirements.unwrap_or(Requirements {
                        presentation: false,
                        purpose: false,
                        body: false,
                    }))
                } else {
                    denial
                })
            }
        }
    }
}

fn draft(
    facts: &Facts,
    request_id: &str,
    method: &str,
    path: &str,
    reason: Option<String>,
) -> Draft {
    Draft {
        request_id: request_id.to_owned(),
        caller: facts.caller.as_ref().map(ToString::to_string),
        credential: facts.credential.clone(),
        issuer: facts.issuer.clone(),
        vct: facts.vct.clone(),
        disclosed: facts.disclosed.clone(),
        method: method.to_owned(),
        path: path.to_owned(),
        purpose: facts.purpose.clone(),
        subject: facts.subject.clone(),
        reason,
    }
}

/// A request id: the client's `x-request-id` if it is short and printable, else a new one.
pub(crate) fn request_id(parts: &axum::http::request::Parts) -> String {
    parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(
            || {
                let mut bytes = [0u8; 12];
                rand::thread_rng().fill_bytes(&mut bytes);
                encoding::b64url(&bytes)
            },
            str::to_owned,
        )
}

/// The layer: put it in front of any axum router whose handlers take a [`VerifiedCaller`].
#[derive(Debug, Clone)]
pub struct VerifierLayer {
    verifier: Arc<Verifier>,
}

impl VerifierLayer {
    /// A layer deciding with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for VerifierLayer {
    type Service = VerifierService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifierService {
            inner,
            verifier: Arc::clone(&self.verifier),
        }
    }
}

/// The service the layer makes.
#[derive(Debug, Clone)]
pub struct VerifierService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S> Service<Request<Body>> for VerifierService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The service that was polled ready handles this request; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let id = request_id(&parts);
            let Ok(bytes) = axum::body::to_bytes(body, verifier.max_body).await else {
                verifier.audit.note_unverified(
                    None,
                    &problem::PAYLOAD_TOO_LARGE.uri(),
                    parts.method.as_str(),
                    parts.uri.path(),
                );
                return Ok(Denial::new(
                    problem::PAYLOAD_TOO_LARGE,
                    format!("expected a body of at most {} bytes", verifier.max_body),
                )
                .into_response());
            };
            match verifier.decide(&parts, &bytes, &id).await {
                Ok(caller) => {
                    parts.extensions.insert(caller);
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        parts.headers.insert(REQUEST_ID_HEADER, v);
                    }
                    inner
                        .call(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
                Err(denial) => {
                    let mut response = denial.into_response();
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        response.headers_mut().insert(REQUEST_ID_HEADER, v);
                    }
                    Ok(response)
                }
            }
        })
    }
}
