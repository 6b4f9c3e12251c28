//! `ApiError`: every rejection of the HTTP API as an RFC 9457 problem+json body with a
//! stable type from `civitas_core::problem`. This is the one place errors meet the wire.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use civitas_core::anchor::AnchorError;
use civitas_core::civ::OpError;
use civitas_core::ledger::ParseEntryError;
use civitas_core::problem::{self, Problem, ProblemType};
use civitas_core::trust::TrustError;

use crate::state::RuleError;

/// An API rejection.
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
            "the node could not complete the request; see its log",
        )
    }

    /// The problem type.
    pub fn kind(&self) -> ProblemType {
        self.kind
    }

    /// The problem body.
    pub fn problem(&self) -> Problem {
        self.kind.with_detail(self.detail.clone())
    }
}

impl From<ParseEntryError> for ApiError {
    fn from(err: ParseEntryError) -> Self {
        let kind = match err {
            ParseEntryError::NonCanonical(_) => problem::NON_CANONICAL_JSON,
            _ => problem::INVALID_ENTRY,
        };
        Self::new(kind, err.to_string())
    }
}

impl From<&RuleError> for ProblemType {
    fn from(err: &RuleError) -> Self {
        match err {
            RuleError::Operation(op) => match op {
                OpError::TooLarge(_) => problem::PAYLOAD_TOO_LARGE,
                OpError::InvalidState(_) | OpError::Malformed(_) => problem::INVALID_OPERATION,
                OpError::AlreadyExists(_) => problem::DID_EXISTS,
                OpError::NotFound(_) => problem::DID_NOT_FOUND,
                OpError::UnknownPrev { .. } => problem::UNKNOWN_PREV,
                OpError::Deactivated(_) => problem::DID_DEACTIVATED,
                OpError::ControllerPending(_) => problem::CONTROLLER_PENDING,
                OpError::Signer(_) => problem::INVALID_SIGNER,
                OpError::CompromisedKey(_) => problem::COMPROMISED_KEY,
                OpError::BadSignature(_) => problem::INVALID_SIGNATURE,
                OpError::ForkRefused(_) => problem::FORK_REFUSED,
                OpError::Controller(_) => problem::INVALID_CONTROLLER,
                OpError::Retirement(_) => problem::INVALID_KEY_RETIREMENT,
                _ => problem::INVALID_OPERATION,
            },
            RuleError::Trust(trust) => match trust {
                TrustError::NotRoot(_) => problem::NOT_ROOT_AUTHORITY,
                TrustError::SignerKey(_) => problem::INVALID_SIGNER,
                TrustError::BadSignature => problem::INVALID_SIGNATURE,
                TrustError::Prev { .. } => problem::STALE_PREV,
                TrustError::NothingToWithdraw(_) => problem::NOTHING_TO_WITHDRAW,
                _ => problem::INVALID_TRUST_ENTRY,
            },
            RuleError::Anchor(anchor) => match anchor {
                AnchorError::SignerKey(_) => problem::INVALID_SIGNER,
                AnchorError::BadSignature => problem::INVALID_SIGNATURE,
                AnchorError::Sequence { .. } => problem::STALE_PREV,
                _ => problem::INVALID_ANCHOR,
            },
            RuleError::NodeEntry(_) => problem::NODE_ENTRY,
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(err: RuleError) -> Self {
        Self::new(ProblemType::from(&err), err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(problem::PROBLEM_CONTENT_TYPE),
        );
        response
    }
}
