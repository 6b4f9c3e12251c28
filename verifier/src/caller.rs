//! [`VerifiedCaller`]: what a handler behind the layer knows about who is asking. Only the
//! layer makes one; a handler that extracts it cannot run without it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use civitas_core::did::{Did, DidUrl};
use civitas_core::problem;
use serde_json::{Map, Value};

use crate::denial::Denial;

/// The credential a verified caller presented.
#[derive(Debug, Clone)]
pub struct PresentedCredential {
    id: String,
    vct: String,
    issuer: Did,
    claims: Map<String, Value>,
    disclosed: Vec<String>,
}

impl PresentedCredential {
    pub(crate) fn new(
        id: String,
        vct: String,
        issuer: Did,
        claims: Map<String, Value>,
        disclosed: Vec<String>,
    ) -> Self {
        Self {
            id,
            vct,
            issuer,
            claims,
            disclosed,
        }
    }

    /// The credential id (base32 of SHA-256 over the issuer-signed JWT).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its type.
    pub fn vct(&self) -> &str {
        &self.vct
    }

    /// Its issuer, accredited for the type when it issued it.
    pub fn issuer(&self) -> &Did {
        &self.issuer
    }

    /// The claims disclosed (and the plain claims the route requires), top-level names.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The paths of the disclosed claims (`address/region` for nested ones).
    pub fn disclosed(&self) -> &[String] {
        &self.disclosed
    }
}

/// A caller whose request signature, credential and route policy all checked out.
#[derive(Debug, Clone)]
pub struct VerifiedCaller {
    did: Did,
    key_id: DidUrl,
    /// Shared: the extractor clones the caller for each handler that asks.
    credential: Option<Arc<PresentedCredential>>,
    purpose: Option<String>,
    purpose_note: Option<String>,
    subject: Option<String>,
    request_id: String,
    route: String,
    audit_seq: u64,
}

impl VerifiedCaller {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        did: Did,
        key_id: DidUrl,
        credential: Option<Arc<PresentedCredential>>,
        purpose: Option<String>,
        purpose_note: Option<String>,
        subject: Option<String>,
        request_id: String,
        route: String,
    ) -> Self {
        Self {
            did,
            key_id,
            credential,
            purpose,
            purpose_note,
            subject,
            request_id,
            route,
            audit_seq: 0,
        }
    }

    pub(crate) fn set_audit_seq(&mut self, seq: u64) {
        self.audit_seq = seq;
    }

    /// The caller's DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The key that signed the request.
    pub fn key_id(&self) -> &DidUrl {
        &self.key_id
    }

    /// The credential presented (`None` on `credential = "none"` routes).
    pub fn credential(&self) -> Option<&PresentedCredential> {
        self.credential.as_deref()
    }

    /// The purpose code.
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }

    /// The free-text purpose note, if the caller gave one.
    pub fn purpose_note(&self) -> Option<&str> {
        self.purpose_note.as_deref()
    }

    /// The data subject the route names.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The request id (also in the audit record).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The matched route, `METHOD PATTERN`.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The sequence number of the request's audit record.
    pub fn audit_seq(&self) -> u64 {
        self.audit_seq
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedCaller {
    type Rejection = Denial;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a handler asked for a verified caller, but the route is not behind the verifier layer");
            Denial::new(
                problem::INTERNAL,
                "this route is not protected by the verifier; the request is refused",
            )
        })
    }
}
