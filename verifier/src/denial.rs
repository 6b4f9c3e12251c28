//! Denials: RFC 9457 problem+json with civitas-core's stable types. 401 when the caller is
//! not authenticated (with `Accept-Signature` naming the profile), 403 when an authenticated
//! or identifiable caller is not allowed; the type's own status for malformed input (400),
//! size (413) and service trouble (502/503).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civitas_core::httpsig::{self, Requirements};
use civitas_core::problem::{self, ProblemType};

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    kind: ProblemType,
    detail: String,
    /// What the 401's `Accept-Signature` asks for.
    accept: Option<Requirements>,
}

impl Denial {
    /// A denial of type `kind` saying `detail` (nothing secret in it).
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            accept: None,
        }
    }

    /// The same denial, telling an unauthenticated client what to sign.
    pub(crate) fn asking(mut self, requirements: Requirements) -> Self {
        self.accept = Some(requirements);
        self
    }

    /// The problem type.
    pub fn kind(&self) -> ProblemType {
        self.kind
    }

    /// What was wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        let status = self.kind.status();
        let mapped = match status {
            // Client-side faults of the credential layer are authorization failures here.
            400 | 404 | 409 | 410 | 422
                if !matches!(
                    self.kind,
                    problem::NON_CANONICAL_PATH
                        | problem::FORBIDDEN_HEADER
                        | problem::CONTENT_DIGEST_MISMATCH
                        | problem::MALFORMED_JSON
                ) =>
            {
                403
            }
            other => other,
        };
        StatusCode::from_u16(mapped).unwrap_or(StatusCode::FORBIDDEN)
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)
    }
}

impl IntoResponse for Denial {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = self.kind.with_detail(self.detail);
        body.status = status.as_u16();
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(problem::PROBLEM_CONTENT_TYPE),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED
            && let Some(requirements) = self.accept
            && let Ok(value) = HeaderValue::from_str(&httpsig::accept_signature(requirements))
        {
            headers.insert(httpsig::ACCEPT_SIGNATURE, value);
        }
        response
    }
}
