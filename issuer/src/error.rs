//! Errors on the wire: RFC 9457 problems (admin API, status lists) and OAuth 2.0 error
//! responses (the OpenID4VCI endpoints speak OAuth: `{"error": "invalid_grant", ...}`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civitas_core::problem::{self, ProblemType};

/// A rejection as an RFC 9457 problem.
#[derive(Debug)]
pub struct ApiError {
    kind: ProblemType,
    detail: String,
}

impl ApiError {
    /// A rejection of type `kind` saying `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// An internal failure: logged in full, answered with a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            problem::INTERNAL,
            "the issuer could not complete the request; see its log",
        )
    }

    /// The problem type.
    pub fn kind(&self) -> ProblemType {
        self.kind
    }

    /// What was wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)
    }
}

impl From<crate::store::StorageError> for ApiError {
    fn from(err: crate::store::StorageError) -> Self {
        Self::internal(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.kind.with_detail(self.detail))).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(problem::PROBLEM_CONTENT_TYPE),
        );
        response
    }
}

/// OAuth 2.0 / OpenID4VCI error codes this issuer answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    /// RFC 6749 `invalid_request`.
    InvalidRequest,
    /// RFC 6749 `invalid_grant` (unknown, used, expired or locked code; wrong tx code).
    InvalidGrant,
    /// RFC 6749 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// RFC 6750 `invalid_token` (401 with `WWW-Authenticate`).
    InvalidToken,
    /// OpenID4VCI `invalid_credential_request`.
    InvalidCredentialRequest,
    /// OpenID4VCI `unknown_credential_configuration`.
    UnknownCredentialConfiguration,
    /// OpenID4VCI `invalid_proof`.
    InvalidProof,
    /// OpenID4VCI `invalid_nonce`.
    InvalidNonce,
    /// OpenID4VCI `credential_request_denied`.
    CredentialRequestDenied,
    /// A failure of the issuer (500).
    ServerError,
}

impl OAuthCode {
    /// The code on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidToken => "invalid_token",
            Self::InvalidCredentialRequest => "invalid_credential_request",
            Self::UnknownCredentialConfiguration => "unknown_credential_configuration",
            Self::InvalidProof => "invalid_proof",
            Self::InvalidNonce => "invalid_nonce",
            Self::CredentialRequestDenied => "credential_request_denied",
            Self::ServerError => "server_error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error response.
#[derive(Debug)]
pub struct OAuthError {
    /// The code.
    pub code: OAuthCode,
    /// `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// An internal failure: logged in full, answered generically.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            OAuthCode::ServerError,
            "the issuer could not complete the request",
        )
    }
}

impl From<crate::store::StorageError> for OAuthError {
    fn from(err: crate::store::StorageError) -> Self {
        Self::internal(err)
    }
}

impl From<ApiError> for OAuthError {
    fn from(err: ApiError) -> Self {
        if err.kind() == problem::INTERNAL {
            return Self::new(OAuthCode::ServerError, err.detail().to_owned());
        }
        Self::new(
            OAuthCode::CredentialRequestDenied,
            format!("{}: {}", err.kind().slug(), err.detail()),
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.code == OAuthCode::InvalidToken {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}
