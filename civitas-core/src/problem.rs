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
