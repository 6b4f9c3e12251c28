//! RFC 9457 problem types: one stable `type` URI for every kind of rejection, shared by
//! every Civitas service, so clients and tests branch on the type and never on the text.

use serde::{Deserialize, Serialize};

/// The prefix of every Civitas problem type URI.
pub const PROBLEM_BASE: &str = "urn:civitas:problem:";

/// A kind of rejection: its stable type URI suffix, a title, and the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProblemType {
    slug: &'static str,
    title: &'static str,
    status: u16,
}

impl ProblemType {
    const fn new(slug: &'static str, title: &'static str, status: u16) -> Self {
        Self {
            slug,
            title,
            status,
        }
    }

    /// The full type URI, e.g. `urn:civitas:problem:fork-refused`.
    pub fn uri(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug)
    }

    /// The last part of the URI.
    pub fn slug(&self) -> &'static str {
        self.slug
    }

    /// A short, fixed summary.
    pub fn title(&self) -> &'static str {
        self.title
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// A problem body of this type with `detail`.
    pub fn with_detail(&self, detail: impl Into<String>) -> Problem {
        Problem {
            kind: self.uri(),
            title: self.title.to_owned(),
            status: self.status,
            detail: detail.into(),
        }
    }
}

/// The request body is not JSON.
pub const MALFORMED_JSON: ProblemType = ProblemType::new("malformed-json", "malformed json", 400);
/// The body is JSON but not its RFC 8785 canonical form.
pub const NON_CANONICAL_JSON: ProblemType = ProblemType::new(
    "non-canonical-json",
    "body is not rfc 8785 canonical json",
    400,
);
/// The object does not have the members its type requires.
pub const INVALID_ENTRY: ProblemType =
    ProblemType::new("invalid-entry", "invalid ledger object", 400);
/// The body is larger than allowed.
pub const PAYLOAD_TOO_LARGE: ProblemType =
    ProblemType::new("payload-too-large", "request body too large", 413);
/// A signature does not verify.
pub const INVALID_SIGNATURE: ProblemType =
    ProblemType::new("invalid-signature", "signature does not verify", 400);
/// The signer is not allowed to sign this.
pub const INVALID_SIGNER: ProblemType =
    ProblemType::new("invalid-signer", "signer not allowed", 403);
/// The signing key was marked compromised.
pub const COMPROMISED_KEY: ProblemType =
    ProblemType::new("compromised-key", "signing key is marked compromised", 403);
/// The operation's document state is invalid.
pub const INVALID_OPERATION: ProblemType =
    ProblemType::new("invalid-operation", "invalid did operation", 400);
/// A create for a DID that exists.
pub const DID_EXISTS: ProblemType = ProblemType::new("did-exists", "did already exists", 409);
/// A DID that is not on the ledger.
pub const DID_NOT_FOUND: ProblemType = ProblemType::new("did-not-found", "did not found", 404);
/// The DID is deactivated.
pub const DID_DEACTIVATED: ProblemType =
    ProblemType::new("did-deactivated", "did deactivated", 410);
/// `prev` is not in the DID's history.
pub const UNKNOWN_PREV: ProblemType =
    ProblemType::new("unknown-prev", "prev is not in the history", 409);
/// A fork the recovery rules refuse.
pub const FORK_REFUSED: ProblemType = ProblemType::new("fork-refused", "fork refused", 409);
/// A controller operation is pending.
pub const CONTROLLER_PENDING: ProblemType =
    ProblemType::new("controller-pending", "controller operation pending", 409);
/// The controller is unusable or did not countersign.
pub const INVALID_CONTROLLER: ProblemType =
    ProblemType::new("invalid-controller", "invalid controller", 400);
/// The keys leaving the document are not listed exactly.
pub const INVALID_KEY_RETIREMENT: ProblemType =
    ProblemType::new("invalid-key-retirement", "invalid key retirement", 400);
/// The signer of a trust entry is not a root authority.
pub const NOT_ROOT_AUTHORITY: ProblemType =
    ProblemType::new("not-root-authority", "signer is not a root authority", 403);
/// `prev` of a trust entry or anchor is not the latest of its chain.
pub const STALE_PREV: ProblemType =
    ProblemType::new("stale-prev", "prev is not the latest entry", 409);
/// A trust entry that is malformed for its action.
pub const INVALID_TRUST_ENTRY: ProblemType =
    ProblemType::new("invalid-trust-entry", "invalid trust entry", 400);
/// Withdrawal of something not accredited.
pub const NOTHING_TO_WITHDRAW: ProblemType =
    ProblemType::new("nothing-to-withdraw", "nothing to withdraw", 409);
/// An anchor that does not continue its stream, or names a foreign stream.
pub const INVALID_ANCHOR: ProblemType = ProblemType::new("invalid-anchor", "invalid anchor", 400);
/// Only the node writes seals and the genesis config.
pub const NODE_ENTRY: ProblemType = ProblemType::new(
    "node-entry",
    "seals and config are written by the node",
    400,
);
/// Too many requests from this client.
pub const RATE_LIMITED: ProblemType = ProblemType::new("rate-limited", "rate limit exceeded", 429);
/// The node is at capacity.
pub const OVERLOADED: ProblemType = ProblemType::new("overloaded", "node at capacity", 503);
/// A query parameter is invalid.
pub const INVALID_QUERY: ProblemType = ProblemType::new("invalid-query", "invalid query", 400);
/// No such resource.
pub const NOT_FOUND: ProblemType = ProblemType::new("not-found", "not found", 404);
/// Something went wrong inside the service.
pub const INTERNAL: ProblemType = ProblemType::new("internal", "internal error", 500);

// --- credentials (SD-JWT VC) ---

/// The text is not an SD-JWT (or its issuer-signed JWT is not a compact JWS).
pub const MALFORMED_CREDENTIAL: ProblemType =
    ProblemType::new("malformed-credential", "malformed sd-jwt", 400);
/// `alg` is missing, `none`, unsupported, or does not match the key.
pub const UNSUPPORTED_ALG: ProblemType =
    ProblemType::new("unsupported-alg", "unsupported signature algorithm", 400);
/// The JOSE `typ` header is not the one this token must carry.
pub const INVALID_TYP: ProblemType = ProblemType::new("invalid-typ", "wrong token type", 400);
/// The credential type is not one the verifier knows (or the route accepts).
pub const UNKNOWN_VCT: ProblemType =
    ProblemType::new("unknown-vct", "unknown credential type", 403);
/// `vct#integrity` does not match the schema the verifier holds for `vct`.
pub const VCT_INTEGRITY_MISMATCH: ProblemType = ProblemType::new(
    "vct-integrity-mismatch",
    "vct#integrity does not match the schema",
    403,
);
/// `kid` is not a key of `iss` usable for credentials at the time of `iat`.
pub const INVALID_ISSUER_KEY: ProblemType = ProblemType::new(
    "invalid-issuer-key",
    "issuer key not valid for credentials",
    403,
);
/// The issuer was not accredited for this credential type at the time of `iat`.
pub const ISSUER_NOT_ACCREDITED: ProblemType = ProblemType::new(
    "issuer-not-accredited",
    "issuer not accredited for this credential type",
    403,
);
/// The issuer's accreditation was withdrawn with retroactive effect.
pub const ACCREDITATION_WITHDRAWN: ProblemType = ProblemType::new(
    "accreditation-withdrawn",
    "accreditation withdrawn retroactively",
    403,
);
/// The claims break a claim constraint of the issuer's accreditation or of the route.
pub const CONSTRAINT_VIOLATED: ProblemType =
    ProblemType::new("constraint-violated", "claim constraint violated", 403);
/// The credential type's classification is above the accredited level.
pub const LEVEL_EXCEEDED: ProblemType = ProblemType::new(
    "level-exceeded",
    "classification above the accredited level",
    403,
);
/// The claims do not validate against the credential type's schema.
pub const SCHEMA_VIOLATION: ProblemType =
    ProblemType::new("schema-violation", "claims do not match the schema", 422);
/// `iat` lies in the future.
pub const ISSUED_IN_FUTURE: ProblemType =
    ProblemType::new("issued-in-future", "credential issued in the future", 403);
/// `exp` has passed.
pub const CREDENTIAL_EXPIRED: ProblemType =
    ProblemType::new("credential-expired", "credential expired", 403);
/// `nbf` has not come yet.
pub const CREDENTIAL_NOT_YET_VALID: ProblemType =
    ProblemType::new("credential-not-yet-valid", "credential not yet valid", 403);
/// A disclosure carries a claim that must never be selectively disclosable.
pub const UNDISCLOSABLE_CLAIM: ProblemType = ProblemType::new(
    "undisclosable-claim",
    "claim may not be selectively disclosed",
    400,
);
/// A disclosure whose digest the credential does not reference.
pub const UNREFERENCED_DISCLOSURE: ProblemType = ProblemType::new(
    "unreferenced-disclosure",
    "disclosure not referenced by the credential",
    400,
);
/// The same disclosure or digest appears twice.
pub const DUPLICATE_DISCLOSURE: ProblemType = ProblemType::new(
    "duplicate-disclosure",
    "duplicate disclosure or digest",
    400,
);
/// A disclosure is malformed, would overwrite a plain claim, or `_sd` / `...` are misused.
pub const INVALID_DISCLOSURE: ProblemType =
    ProblemType::new("invalid-disclosure", "invalid disclosure", 400);
/// The status list says the credential is revoked.
pub const CREDENTIAL_REVOKED: ProblemType =
    ProblemType::new("credential-revoked", "credential revoked", 403);
/// The status list says the credential is suspended.
pub const CREDENTIAL_SUSPENDED: ProblemType =
    ProblemType::new("credential-suspended", "credential suspended", 403);
/// The status list token is invalid (type, subject, signer, expiry, age or index).
pub const INVALID_STATUS_LIST: ProblemType =
    ProblemType::new("invalid-status-list", "invalid status list token", 403);
/// The status list could not be fetched.
pub const STATUS_UNAVAILABLE: ProblemType =
    ProblemType::new("status-unavailable", "status list unavailable", 503);
/// A key-binding JWT is required and missing.
pub const KB_JWT_MISSING: ProblemType =
    ProblemType::new("kb-jwt-missing", "key binding jwt missing", 401);
/// The key-binding JWT is invalid (type, audience, nonce, sd_hash, age or signature).
pub const INVALID_KB_JWT: ProblemType =
    ProblemType::new("invalid-kb-jwt", "invalid key binding jwt", 401);
/// The presentation's holder is not the signer.
pub const HOLDER_BINDING: ProblemType =
    ProblemType::new("holder-binding", "holder binding failed", 403);
/// A claim to disclose is not in the credential, or not disclosable.
pub const UNKNOWN_CLAIM: ProblemType = ProblemType::new("unknown-claim", "unknown claim", 400);

// --- signed requests (RFC 9421 profile) ---

/// The request carries no signature with the Civitas tag.
pub const SIGNATURE_MISSING: ProblemType =
    ProblemType::new("signature-missing", "request signature missing", 401);
/// The signature headers do not follow the profile (components, parameters, syntax).
pub const INVALID_SIGNATURE_INPUT: ProblemType = ProblemType::new(
    "invalid-signature-input",
    "request signature does not follow the profile",
    401,
);
/// `created` lies outside the accepted window.
pub const SIGNATURE_EXPIRED: ProblemType = ProblemType::new(
    "signature-expired",
    "request signature outside its time window",
    401,
);
/// `Content-Digest` is missing or does not match the body.
pub const CONTENT_DIGEST_MISMATCH: ProblemType = ProblemType::new(
    "content-digest-mismatch",
    "content-digest does not match the body",
    400,
);
/// The request signature does not verify.
pub const INVALID_REQUEST_SIGNATURE: ProblemType = ProblemType::new(
    "invalid-request-signature",
    "request signature does not verify",
    401,
);
/// The (signer, nonce) pair was seen before.
pub const REPLAYED_REQUEST: ProblemType =
    ProblemType::new("replayed-request", "request replayed", 401);
/// The signer may not use this route.
pub const NOT_AUTHORIZED: ProblemType = ProblemType::new("not-authorized", "not authorized", 403);

/// The registry could not be asked (an issuer or verifier depends on it).
pub const REGISTRY_UNAVAILABLE: ProblemType =
    ProblemType::new("registry-unavailable", "registry unavailable", 503);

// --- the verifier: requests bound to an accountable identity ---

/// No route of the policy matches the method and path.
pub const ROUTE_NOT_ALLOWED: ProblemType =
    ProblemType::new("route-not-allowed", "route not allowed", 403);
/// The path is not in canonical form (encoded `/` or `\`, dot or empty segments, `;`).
pub const NON_CANONICAL_PATH: ProblemType =
    ProblemType::new("non-canonical-path", "non-canonical path", 400);
/// The request carries a header only the gateway may set (`Civitas-Caller-*`).
pub const FORBIDDEN_HEADER: ProblemType =
    ProblemType::new("forbidden-header", "forbidden header", 400);
/// The route requires a credential presentation and there is none.
pub const PRESENTATION_REQUIRED: ProblemType = ProblemType::new(
    "presentation-required",
    "credential presentation required",
    401,
);
/// The route requires a purpose code and there is none.
pub const PURPOSE_REQUIRED: ProblemType =
    ProblemType::new("purpose-required", "purpose required", 403);
/// The purpose code is not one the route allows.
pub const PURPOSE_NOT_ALLOWED: ProblemType =
    ProblemType::new("purpose-not-allowed", "purpose not allowed", 403);
/// The credential type is not one the route accepts.
pub const VCT_NOT_ACCEPTED: ProblemType =
    ProblemType::new("vct-not-accepted", "credential type not accepted", 403);
/// The caller's DID method is not one the route allows.
pub const CALLER_METHOD_NOT_ALLOWED: ProblemType = ProblemType::new(
    "caller-method-not-allowed",
    "caller did method not allowed",
    403,
);
/// The caller's DID does not resolve.
pub const UNKNOWN_CALLER: ProblemType = ProblemType::new("unknown-caller", "unknown caller", 401);
/// The caller's DID is deactivated.
pub const CALLER_DEACTIVATED: ProblemType =
    ProblemType::new("caller-deactivated", "caller did deactivated", 401);
/// The signing key is not a current `authentication` key of the caller's DID.
pub const CALLER_KEY_NOT_CURRENT: ProblemType =
    ProblemType::new("caller-key-not-current", "signing key not current", 401);
/// The key-binding JWT is addressed to another audience.
pub const WRONG_AUDIENCE: ProblemType =
    ProblemType::new("wrong-audience", "presentation for another audience", 401);
/// A claim the route requires is not disclosed.
pub const CLAIM_NOT_DISCLOSED: ProblemType =
    ProblemType::new("claim-not-disclosed", "required claim not disclosed", 403);
/// The presentation discloses a claim above the route's highest classification.
pub const OVER_DISCLOSURE: ProblemType = ProblemType::new(
    "over-disclosure",
    "more disclosed than the route allows",
    403,
);
/// A disclosed claim breaks a constraint of the route.
pub const POLICY_CONSTRAINT: ProblemType =
    ProblemType::new("policy-constraint", "route constraint not met", 403);
/// The audit record could not be written, so the request is not served.
pub const AUDIT_UNAVAILABLE: ProblemType =
    ProblemType::new("audit-unavailable", "audit store unavailable", 503);
/// The upstream data service could not be reached.
pub const UPSTREAM_UNAVAILABLE: ProblemType =
    ProblemType::new("upstream-unavailable", "upstream unavailable", 502);

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// The title of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What exactly was wrong.
    pub detail: String,
}

/// The media type of problem bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
