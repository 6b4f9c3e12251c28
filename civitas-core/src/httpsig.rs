//! HTTP Message Signatures (RFC 9421) over `Content-Digest` (RFC 9530), and the Civitas
//! profile that binds every data request to an accountable identity.
//!
//! The module is transport-agnostic: a [`Request`] is a method, an absolute target URI and
//! the header lines as `(name, value)` pairs, so the wallet (reqwest) and the verifier
//! middleware (axum / http) use the same code. Structured fields (RFC 8941) are parsed and
//! serialized with the `sfv` crate.
//!
//! Two layers:
//! - RFC 9421 itself: [`SignatureSet`] parses `Signature-Input` + `Signature` into labelled
//!   signatures, [`signature_base`] rebuilds the signature base (derived components `@method`,
//!   `@target-uri`, `@authority`, `@scheme`, `@request-target`, `@path`, `@query`, and header
//!   fields), [`verify`] checks an Ed25519 signature over it with
//!   [`PublicKey::verify`](crate::keys::PublicKey::verify); [`content_digest`] and
//!   [`verify_content_digest`] handle RFC 9530 `sha-256`.
//! - The Civitas profile (tag [`TAG`]): [`sign_request`] for the wallet, [`check_profile`]
//!   for the verifier, [`accept_signature`] for the `Accept-Signature` of a 401, and
//!   [`Origin`] (parsed once) or [`target_uri`] to build `@target-uri` from the service's
//!   configured public origin.
//!
//! ```text
//!  wallet: sign_request ──Content-Digest, Signature-Input, Signature──▶ verifier:
//!    Request::at_origin(method, &origin, path, headers)
//!    SignatureSet::from_request ─▶ into_tagged(TAG) ─▶ check_profile (params, components, time)
//!    ─▶ Request::verify_content_digest(body) ─▶ resolve keyid ─▶ signature_base ─▶ verify
//! ```
//!
//! Decisions this module takes:
//! - Unknown signature parameters are kept: they are part of `@signature-params`, so the base
//!   is rebuilt exactly as signed. The Civitas profile refuses them ([`check_profile`]).
//! - Component parameters (`;sf`, `;key`, `;bs`, `;req`, `;tr`, `;name`), `@query-param` and
//!   `@status` are not supported: a signature that uses them is refused when it is selected.
//! - Duplicate dictionary keys or parameters in `Signature-Input`, `Signature` and
//!   `Content-Digest` are refused, although RFC 8941 would keep the last one.
//! - `@target-uri` and `@authority` are normalized as RFC 9110 §4.2.3 allows: scheme and host in
//!   lower case, the default port removed, an empty path written as `/`. Path and query are
//!   used as received, without decoding.
//! - Sizes are bounded ([`MAX_SIGNATURE_FIELD_BYTES`], [`MAX_SIGNATURES`],
//!   [`MAX_COMPONENTS`], [`MAX_PARAMETERS`], [`MAX_CONTENT_DIGEST_BYTES`],
//!   [`MAX_FIELD_BYTES`], [`MAX_TARGET_URI_BYTES`]).
//!
//! ```
//! use civitas_core::did::Did;
//! use civitas_core::httpsig::{self, Request, RequestToSign, Requirements, SignatureSet, Window};
//! use civitas_core::keys::SecretKey;
//!
//! // Wallet side.
//! let key = SecretKey::generate();
//! let key_id = Did::key_from_public_key(&key.public_key()).with_fragment("key-1");
//! let body = br#"{"q":"310000"}"#;
//! let headers = [("content-type", "application/json")];
//! let nonce = httpsig::generate_nonce();
//! let signed = httpsig::sign_request(
//!     &RequestToSign {
//!         method: "POST",
//!         target_uri: "https://data.example.gov/records?page=2",
//!         fields: &headers,
//!         body,
//!         key_id: &key_id,
//!         created: 1_700_000_000,
//!         nonce: &nonce,
//!     },
//!     &key,
//! )?;
//!
//! // Verifier side: the target URI comes from the configured public origin.
//! let mut received = headers.to_vec();
//! received.extend(signed.fields());
//! let target = httpsig::target_uri("https://data.example.gov", "/records?page=2")?;
//! let request = Request::new("POST", &target, &received)?;
//! let signature = SignatureSet::from_request(&request)?.into_tagged(httpsig::TAG)?;
//! let requirements = Requirements { presentation: false, purpose: false, body: true };
//! let checked = httpsig::check_profile(&signature, requirements, 1_700_000_010, Window::default())?;
//! request.verify_content_digest(body)?;
//! // ... resolve checked.key_id() to its current key, then:
//! let base = httpsig::signature_base(&request, &signature)?;
//! httpsig::verify(&signature, &base, &key.public_key())?;
//! # Ok::<(), httpsig::HttpSigError>(())
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use sfv::visitor::{
    DictionaryVisitor, EntryVisitor, InnerListVisitor, ItemVisitor, ParameterVisitor,
};
use sfv::{
    BareItem, BareItemFromInput, DictSerializer, Dictionary, InnerList, Item, KeyRef, ListEntry,
    ListSerializer, Parameters, Parser, Version,
};

use crate::encoding;
use crate::keys::PublicKey;
use crate::problem::{self, ProblemType};

mod profile;

pub use profile::{
    ALG, CALLER_HEADER_PREFIX, CheckedSignature, GATEWAY_TAG, LABEL, MIN_NONCE_BYTES,
    PRESENTATION_HEADER, PURPOSE_HEADER, RequestToSign, Requirements, SignedHeaders, TAG, Window,
    accept_signature, check_profile, generate_nonce, sign_forwarded, sign_request, target_uri,
};

/// The `Signature-Input` field name.
pub const SIGNATURE_INPUT: &str = "signature-input";
/// The `Signature` field name.
pub const SIGNATURE: &str = "signature";
/// The `Content-Digest` field name.
pub const CONTENT_DIGEST: &str = "content-digest";
/// The `Accept-Signature` field name.
pub const ACCEPT_SIGNATURE: &str = "accept-signature";

/// Largest `Signature-Input` or `Signature` value accepted, all field lines combined.
pub const MAX_SIGNATURE_FIELD_BYTES: usize = 8 * 1024;
/// Most signatures (labels) accepted in one message.
pub const MAX_SIGNATURES: usize = 8;
/// Most covered components accepted in one signature.
pub const MAX_COMPONENTS: usize = 32;
/// Most signature parameters accepted in one signature.
pub const MAX_PARAMETERS: usize = 16;
/// Largest `Content-Digest` value accepted, all field lines combined.
pub const MAX_CONTENT_DIGEST_BYTES: usize = 1024;
/// Largest value of any covered header field, all field lines combined.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Largest target URI accepted.
pub const MAX_TARGET_URI_BYTES: usize = 8 * 1024;

/// Most members accepted in a `Content-Digest` dictionary.
const MAX_DIGESTS: usize = 8;
/// Longest method name accepted.
const MAX_METHOD_BYTES: usize = 64;
/// The one digest algorithm Civitas computes and requires.
const SHA_256: &KeyRef = KeyRef::constant("sha-256");

/// Why a request signature or content digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSigError {
    /// There is no signature with the label or tag looked for.
    #[error("expected a signature with {0}, found none")]
    SignatureMissing(String),
    /// A structured field does not parse.
    #[error("expected {field} to be a structured-field dictionary, found a syntax error: {detail}")]
    Syntax {
        /// The field name.
        field: &'static str,
        /// What the parser reported.
        detail: String,
    },
    /// A dictionary key or parameter name appears twice.
    #[error("expected unique keys and parameter names in {field}, found {key:?} twice")]
    DuplicateKey {
        /// The field name.
        field: &'static str,
        /// The repeated key.
        key: String,
    },
    /// A field value is too long.
    #[error("expected {field} of at most {max} bytes, found {found} bytes")]
    FieldTooLarge {
        /// The field name.
        field: String,
        /// The limit.
        max: usize,
        /// The size found.
        found: usize,
    },
    /// Too many signatures, components or parameters.
    #[error("expected at most {max} {what}, found {found}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The limit.
        max: usize,
        /// The number found.
        found: usize,
    },
    /// A label is in one of `Signature-Input` and `Signature` but not in the other.
    #[error("expected label {label:?} of {present} in {absent} too, found it missing")]
    UnmatchedLabel {
        /// The label.
        label: String,
        /// The field that has it.
        present: &'static str,
        /// The field that lacks it.
        absent: &'static str,
    },
    /// A dictionary member has the wrong shape.
    #[error("expected {field} member {label:?} to be {expected}")]
    InvalidMember {
        /// The field name.
        field: &'static str,
        /// The member's label.
        label: String,
        /// The shape it must have.
        expected: &'static str,
    },
    /// Two signatures carry the tag looked for.
    #[error("expected one signature with tag {0:?}, found several")]
    DuplicateTag(String),
    /// A covered component identifier that is malformed, unsupported or repeated.
    #[error(
        "expected a supported, lower-case, unique component identifier, found {component:?}: {reason}"
    )]
    InvalidComponent {
        /// The identifier as found.
        component: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature parameter with the wrong type or value.
    #[error("expected signature parameter {name} to be {expected}")]
    InvalidParameter {
        /// The parameter name.
        name: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A covered header field is not in the message.
    #[error("expected covered header field {0:?} in the message, found none")]
    MissingField(String),
    /// A header field value holds control characters.
    #[error("expected header field {0:?} to hold no control characters other than tab")]
    InvalidFieldValue(String),
    /// The method is not an HTTP token.
    #[error("expected an http method token, found {0:?}")]
    InvalidMethod(String),
    /// The target URI is not an absolute http(s) URI without user info or fragment.
    #[error("expected {expected}, found {found:?}")]
    InvalidTargetUri {
        /// What the URI must be.
        expected: &'static str,
        /// The URI as found (shortened).
        found: String,
    },
    /// A parameter the Civitas profile requires is missing.
    #[error("expected signature parameter {0} required by the civitas profile, found none")]
    MissingParameter(&'static str),
    /// A parameter the Civitas profile does not define.
    #[error("expected only the civitas profile parameters, found {0:?}")]
    UnexpectedParameter(String),
    /// `alg` names an algorithm other than Ed25519.
    #[error("expected alg \"ed25519\", found {0:?}")]
    UnsupportedAlg(String),
    /// A component the Civitas profile requires here is not covered.
    #[error("expected the signature to cover {0:?}, found it not covered")]
    MissingComponent(&'static str),
    /// A component the Civitas profile does not allow.
    #[error("expected only the civitas profile components, found {0:?}")]
    UnexpectedComponent(String),
    /// The nonce is not canonical base64url of enough random bytes.
    #[error("expected a nonce of {min} to {max} bytes in canonical base64url, found {found:?}")]
    InvalidNonce {
        /// Fewest bytes.
        min: usize,
        /// Most bytes.
        max: usize,
        /// The nonce as found (shortened).
        found: String,
    },
    /// `keyid` is not a DID URL with a fragment and neither path nor query.
    #[error("expected keyid to be a did url with a fragment and no path or query, found {0:?}")]
    InvalidKeyId(String),
    /// `created` lies outside the accepted window.
    #[error("expected created within [{oldest}, {latest}], found {created}")]
    OutsideWindow {
        /// The signature's `created`.
        created: i64,
        /// The oldest accepted.
        oldest: i64,
        /// The latest accepted.
        latest: i64,
    },
    /// `expires` has passed.
    #[error("expected expires after now ({now}), found {expires}")]
    Expired {
        /// The signature's `expires`.
        expires: i64,
        /// The verifier's time.
        now: i64,
    },
    /// The message has no `Content-Digest`.
    #[error("expected a content-digest field, found none")]
    ContentDigestMissing,
    /// `Content-Digest` is malformed or has no usable `sha-256` member.
    #[error("expected content-digest with a sha-256 byte sequence of 32 bytes: {0}")]
    InvalidContentDigest(String),
    /// `Content-Digest`'s `sha-256` is not the digest of the body.
    #[error("expected content-digest sha-256 to match the body, found a different digest")]
    ContentDigestMismatch,
    /// The signer was asked to sign a body without a `Content-Type`.
    #[error("expected a content-type header with a non-empty body, found none")]
    BodyWithoutContentType,
    /// The signer was given a `Content-Digest`; it computes that itself.
    #[error("expected no content-digest among the headers to sign, found one")]
    ContentDigestSupplied,
    /// The signature does not verify over the signature base.
    #[error(
        "expected an ed25519 signature that verifies over the signature base, found one that does not"
    )]
    BadSignature,
}

impl HttpSigError {
    /// The stable problem type of this error.
    pub fn problem(&self) -> ProblemType {
        match self {
            Self::SignatureMissing(_) => problem::SIGNATURE_MISSING,
            Self::OutsideWindow { .. } | Self::Expired { .. } => problem::SIGNATURE_EXPIRED,
            Self::ContentDigestMissing
            | Self::InvalidContentDigest(_)
            | Self::ContentDigestMismatch => problem::CONTENT_DIGEST_MISMATCH,
            Self::BadSignature => problem::INVALID_REQUEST_SIGNATURE,
            Self::Syntax { .. }
            | Self::DuplicateKey { .. }
            | Self::FieldTooLarge { .. }
            | Self::TooMany { .. }
            | Self::UnmatchedLabel { .. }
            | Self::InvalidMember { .. }
            | Self::DuplicateTag(_)
            | Self::InvalidComponent { .. }
            | Self::InvalidParameter { .. }
            | Self::MissingField(_)
            | Self::InvalidFieldValue(_)
            | Self::InvalidMethod(_)
            | Self::InvalidTargetUri { .. }
            | Self::MissingParameter(_)
            | Self::UnexpectedParameter(_)
            | Self::UnsupportedAlg(_)
            | Self::MissingComponent(_)
            | Self::UnexpectedComponent(_)
            | Self::InvalidNonce { .. }
            | Self::InvalidKeyId(_)
            | Self::BodyWithoutContentType
            | Self::ContentDigestSupplied => problem::INVALID_SIGNATURE_INPUT,
        }
    }
}

/// At most 120 characters of `text`, for error messages.
fn shown(text: &str) -> String {
    text.chars().take(120).collect()
}

// --- the message ---

/// An HTTP request as RFC 9421 sees it: method, target URI and header field lines.
///
/// Header names are matched without regard to case; a field with several lines is combined
/// as RFC 9421 §2.1 says (each value trimmed, joined with `", "`).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    method: &'a str,
    target: Target,
    fields: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    /// A request with `method`, the absolute `target_uri` and the header `fields` in the
    /// order received.
    pub fn new(
        method: &'a str,
        target_uri: &str,
        fields: &'a [(&'a str, &'a str)],
    ) -> Result<Self, HttpSigError> {
        Self::with_target(method, Target::parse(target_uri)?, fields)
    }

    /// A request received by the service at `origin` for `path_and_query` (the request
    /// line's target): the same as [`new`](Self::new) with
    /// [`origin.target_uri(path_and_query)`](Origin::target_uri), without parsing the origin
    /// again for every request.
    pub fn at_origin(
        method: &'a str,
        origin: &Origin,
        path_and_query: &str,
        fields: &'a [(&'a str, &'a str)],
    ) -> Result<Self, HttpSigError> {
        Self::with_target(method, origin.join(path_and_query)?, fields)
    }

    fn with_target(
        method: &'a str,
        target: Target,
        fields: &'a [(&'a str, &'a str)],
    ) -> Result<Self, HttpSigError> {
        if method.is_empty() || method.len() > MAX_METHOD_BYTES || !method.bytes().all(is_tchar) {
            return Err(HttpSigError::InvalidMethod(shown(method)));
        }
        Ok(Self {
            method,
            target,
            fields,
        })
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The normalized target URI (the value of `@target-uri`).
    pub fn target_uri(&self) -> &str {
        &self.target.uri
    }

    /// The combined value of header field `name` (RFC 9421 §2.1), or `None` if the message has
    /// no line of that field. A field of one line is borrowed, not copied.
    pub fn field(&self, name: &str) -> Result<Option<Cow<'a, str>>, HttpSigError> {
        let mut combined: Option<Cow<'a, str>> = None;
        for (_, value) in self
            .fields
            .iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
        {
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return Err(HttpSigError::InvalidFieldValue(shown(name)));
            }
            let value = value.trim_matches([' ', '\t']);
            let length = match &mut combined {
                Some(text) => {
                    let text = text.to_mut();
                    text.push_str(", ");
                    text.push_str(value);
                    text.len()
                }
                None => {
                    combined = Some(Cow::Borrowed(value));
                    value.len()
                }
            };
            if length > MAX_FIELD_BYTES {
                return Err(HttpSigError::FieldTooLarge {
                    field: shown(name),
                    max: MAX_FIELD_BYTES,
                    found: length,
                });
            }
        }
        Ok(combined)
    }

    /// Checks this request's `Content-Digest` against `body` (see [`verify_content_digest`]).
    pub fn verify_content_digest(&self, body: &[u8]) -> Result<(), HttpSigError> {
        let value = self
            .field(CONTENT_DIGEST)
            .map_err(|e| HttpSigError::InvalidContentDigest(e.to_string()))?
            .ok_or(HttpSigError::ContentDigestMissing)?;
        verify_content_digest(&value, body)
    }

    /// Appends the value of one covered component to `out`.
    fn write_component(&self, component: &Component, out: &mut String) -> Result<(), HttpSigError> {
        let target = &self.target;
        match component {
            Component::Method => out.push_str(self.method),
            Component::TargetUri => out.push_str(&target.uri),
            Component::Authority => out.push_str(target.authority()),
            Component::Scheme => out.push_str(target.scheme()),
            Component::RequestTarget => out.push_str(target.request_target()),
            Component::Path => out.push_str(target.path()),
            Component::Query => out.push_str(target.query_with_mark()),
            Component::Field(name) => out.push_str(
                &self
                    .field(name)?
                    .ok_or_else(|| HttpSigError::MissingField(name.clone()))?,
            ),
        }
        Ok(())
    }

    /// The value of one covered component, on its own.
    #[cfg(test)]
    fn component(&self, component: &Component) -> Result<String, HttpSigError> {
        let mut value = String::new();
        self.write_component(component, &mut value)?;
        Ok(value)
    }

    /// The bytes the header lines take, a bound for a signature base over them.
    fn fields_len(&self) -> usize {
        self.fields
            .iter()
            .map(|(name, value)| name.len() + value.len() + 6)
            .sum()
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An absolute http(s) target URI, normalized, with where its parts are.
#[derive(Debug, Clone)]
struct Target {
    /// `scheme://authority` + path (`/` if empty) + `?query` if any.
    uri: String,
    /// `uri[..scheme_end]` is the scheme, in lower case.
    scheme_end: usize,
    /// `uri[scheme_end + 3..authority_end]` is the authority: the host in lower case, the
    /// default port removed. The path starts here.
    authority_end: usize,
    /// Where the `?` of the query is, if the URI has one (`Some` for a bare `?`).
    query_at: Option<usize>,
}

impl Target {
    fn parse(uri: &str) -> Result<Self, HttpSigError> {
        let invalid = |expected| HttpSigError::InvalidTargetUri {
            expected,
            found: shown(uri),
        };
        check_uri_text(uri)?;
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("an absolute http or https uri"))?;
        let mut normalized = String::with_capacity(uri.len() + 1);
        normalized.push_str(scheme);
        normalized.make_ascii_lowercase();
        let default_port = match normalized.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(invalid("an absolute http or https uri")),
        };
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let authority = normalize_authority(authority, default_port)
            .ok_or_else(|| invalid("an authority of host and optional port, without user info"))?;
        normalized.push_str("://");
        normalized.push_str(&authority);
        let authority_end = normalized.len();
        normalized.push_str(if path.is_empty() { "/" } else { path });
        let query_at = query.map(|query| {
            let at = normalized.len();
            normalized.push('?');
            normalized.push_str(query);
            at
        });
        Ok(Self {
            uri: normalized,
            scheme_end: scheme.len(),
            authority_end,
            query_at,
        })
    }

    fn scheme(&self) -> &str {
        &self.uri[..self.scheme_end]
    }

    fn authority(&self) -> &str {
        &self.uri[self.scheme_end + 3..self.authority_end]
    }

    /// The value of `@path`: an empty path is `/`.
    fn path(&self) -> &str {
        &self.uri[self.authority_end..self.query_at.unwrap_or(self.uri.len())]
    }

    /// The value of `@request-target`: the path and the query, if any.
    fn request_target(&self) -> &str {
        &self.uri[self.authority_end..]
    }

    /// The value of `@query`: `?` and the query (`?` alone when there is none).
    fn query_with_mark(&self) -> &str {
        self.query_at.map_or("?", |at| &self.uri[at..])
    }
}

/// The length and character checks every target URI passes.
fn check_uri_text(uri: &str) -> Result<(), HttpSigError> {
    let invalid = |expected| HttpSigError::InvalidTargetUri {
        expected,
        found: shown(uri),
    };
    if uri.len() > MAX_TARGET_URI_BYTES {
        return Err(invalid("a target uri of at most 8192 bytes"));
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("a target uri of visible ascii characters"));
    }
    if uri.contains('#') {
        return Err(invalid("a target uri without a fragment"));
    }
    Ok(())
}

/// A service's public origin (`https://data.example.gov`), parsed and normalized once: the
/// base of the `@target-uri` of every request the service receives.
#[derive(Debug, Clone)]
pub struct Origin(Target);

impl Origin {
    /// Parses `public_origin`: scheme and authority only (one trailing `/` is allowed).
    pub fn parse(public_origin: &str) -> Result<Self, HttpSigError> {
        let origin = public_origin.strip_suffix('/').unwrap_or(public_origin);
        let parsed = Target::parse(origin)?;
        // Parsed, so it has `://`: nothing may follow the authority.
        let after_scheme = origin.split_once("://").map_or("", |(_, rest)| rest);
        if after_scheme.contains(['/', '?']) {
            return Err(HttpSigError::InvalidTargetUri {
                expected: "a public origin of scheme and authority only",
                found: shown(public_origin),
            });
        }
        Ok(Self(parsed))
    }

    /// The origin, normalized (`https://data.example.gov`).
    pub fn as_str(&self) -> &str {
        &self.0.uri[..self.0.authority_end]
    }

    /// The normalized `@target-uri` of a request for `path_and_query` (which starts with
    /// `/`) at this origin.
    pub fn target_uri(&self, path_and_query: &str) -> Result<String, HttpSigError> {
        Ok(self.join(path_and_query)?.uri)
    }

    fn join(&self, path_and_query: &str) -> Result<Target, HttpSigError> {
        if !path_and_query.starts_with('/') {
            return Err(HttpSigError::InvalidTargetUri {
                expected: "a path starting with /",
                found: shown(path_and_query),
            });
        }
        let base = self.as_str();
        let mut uri = String::with_capacity(base.len() + path_and_query.len());
        uri.push_str(base);
        uri.push_str(path_and_query);
        check_uri_text(&uri)?;
        Ok(Target {
            query_at: path_and_query.find('?').map(|at| base.len() + at),
            uri,
            scheme_end: self.0.scheme_end,
            authority_end: self.0.authority_end,
        })
    }
}

/// Lower-cases the host and removes an empty or default port; `None` if malformed.
fn normalize_authority(authority: &str, default_port: u16) -> Option<String> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        let inner = &host[1..host.len() - 1];
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b":.".contains(&b))
        {
            return None;
        }
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=[]:".contains(&b))
        && (host.starts_with('[') || !host.contains([':', '[', ']']));
    if !host_ok {
        return None;
    }
    let host = host.to_ascii_lowercase();
    match port {
        None | Some("") => Some(host),
        Some(port) => {
            if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let number: u16 = port.parse().ok()?;
            if number == default_port {
                Some(host)
            } else {
                Some(format!("{host}:{number}"))
            }
        }
    }
}

// --- components and parameters ---

/// A covered component this module can compute.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Component {
    Method,
    TargetUri,
    Authority,
    Scheme,
    RequestTarget,
    Path,
    Query,
    /// A header field, by its lower-case name.
    Field(String),
}

impl Component {
    fn parse(item: &Item) -> Result<Self, HttpSigError> {
        let Some(name) = item.bare_item.as_string() else {
            return Err(HttpSigError::InvalidComponent {
                component: format!("{:?}", item.bare_item),
                reason: "component identifiers are strings",
            });
        };
        let name = name.as_str();
        let invalid = |reason| HttpSigError::InvalidComponent {
            component: shown(name),
            reason,
        };
        if !item.params.is_empty() {
            return Err(invalid("component parameters are not supported"));
        }
        Ok(match name {
            "@method" => Self::Method,
            "@target-uri" => Self::TargetUri,
            "@authority" => Self::Authority,
            "@scheme" => Self::Scheme,
            "@request-target" => Self::RequestTarget,
            "@path" => Self::Path,
            "@query" => Self::Query,
            "@signature-params" => return Err(invalid("@signature-params cannot be covered")),
            _ if name.starts_with('@') => return Err(invalid("unsupported derived component")),
            _ if name.is_empty() || !name.bytes().all(is_tchar) => {
                return Err(invalid("field names are http tokens"));
            }
            _ if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                return Err(invalid("field names must be lower case"));
            }
            _ => Self::Field(name.to_owned()),
        })
    }

    /// The component identifier's name.
    fn name(&self) -> &str {
        match self {
            Self::Method => "@method",
            Self::TargetUri => "@target-uri",
            Self::Authority => "@authority",
            Self::Scheme => "@scheme",
            Self::RequestTarget => "@request-target",
            Self::Path => "@path",
            Self::Query => "@query",
            Self::Field(name) => name,
        }
    }
}

/// The signature parameters RFC 9421 §2.3 defines, typed, and the names of any others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Params {
    created: Option<i64>,
    expires: Option<i64>,
    nonce: Option<String>,
    keyid: Option<String>,
    alg: Option<String>,
    tag: Option<String>,
    others: Vec<String>,
}

impl Params {
    fn parse(params: &Parameters) -> Result<Self, HttpSigError> {
        if params.len() > MAX_PARAMETERS {
            return Err(HttpSigError::TooMany {
                what: "signature parameters",
                max: MAX_PARAMETERS,
                found: params.len(),
            });
        }
        let mut parsed = Self::default();
        for (key, value) in params {
            let name = key.as_str();
            let integer = || {
                value
                    .as_integer()
                    .map(i64::from)
                    .ok_or_else(|| HttpSigError::InvalidParameter {
                        name: name.to_owned(),
                        expected: "an integer",
                    })
            };
            let string = || {
                value
                    .as_string()
                    .map(|s| s.as_str().to_owned())
                    .ok_or_else(|| HttpSigError::InvalidParameter {
                        name: name.to_owned(),
                        expected: "a string",
                    })
            };
            match name {
                "created" => parsed.created = Some(integer()?),
                "expires" => parsed.expires = Some(integer()?),
                "nonce" => parsed.nonce = Some(string()?),
                "keyid" => parsed.keyid = Some(string()?),
                "alg" => parsed.alg = Some(string()?),
                "tag" => parsed.tag = Some(string()?),
                other => parsed.others.push(other.to_owned()),
            }
        }
        Ok(parsed)
    }
}

// --- Signature-Input and Signature ---

/// One labelled signature: its covered components, its parameters and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    label: String,
    components: Vec<Component>,
    params: Params,
    /// The `Signature-Input` member as parsed, serialized again for `@signature-params`.
    input: InnerList,
    value: Vec<u8>,
}

impl Signature {
    /// Parses the `Signature-Input` member `input` with the signature bytes `value`.
    fn parse(label: String, input: InnerList, value: Vec<u8>) -> Result<Self, HttpSigError> {
        if input.items.len() > MAX_COMPONENTS {
            return Err(HttpSigError::TooMany {
                what: "covered components",
                max: MAX_COMPONENTS,
                found: input.items.len(),
            });
        }
        let mut components: Vec<Component> = Vec::with_capacity(input.items.len());
        for item in &input.items {
            let component = Component::parse(item)?;
            if components.contains(&component) {
                return Err(HttpSigError::InvalidComponent {
                    component: component.name().to_owned(),
                    reason: "covered twice",
                });
            }
            components.push(component);
        }
        Ok(Self {
            label,
            components,
            params: Params::parse(&input.params)?,
            input,
            value,
        })
    }

    /// The label (dictionary key) of the signature.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The covered component identifiers, in order.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.components.iter().map(Component::name)
    }

    /// `created`, if present.
    pub fn created(&self) -> Option<i64> {
        self.params.created
    }

    /// `expires`, if present.
    pub fn expires(&self) -> Option<i64> {
        self.params.expires
    }

    /// `nonce`, if present.
    pub fn nonce(&self) -> Option<&str> {
        self.params.nonce.as_deref()
    }

    /// `keyid`, if present.
    pub fn keyid(&self) -> Option<&str> {
        self.params.keyid.as_deref()
    }

    /// `alg`, if present.
    pub fn alg(&self) -> Option<&str> {
        self.params.alg.as_deref()
    }

    /// `tag`, if present.
    pub fn tag(&self) -> Option<&str> {
        self.params.tag.as_deref()
    }

    /// Names of parameters RFC 9421 does not define, in order.
    pub fn other_parameters(&self) -> impl Iterator<Item = &str> {
        self.params.others.iter().map(String::as_str)
    }

    /// The signature bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// The value of `@signature-params`: the serialized inner list with its parameters.
    pub fn signature_params(&self) -> String {
        serialize_inner_list(&self.input)
    }
}

/// The signatures of a message: the members of `Signature-Input` and `Signature`, matched by
/// label. Only the structure is checked here; a signature's components and parameters are
/// checked when it is picked with [`by_label`](Self::by_label) or [`into_tagged`](Self::into_tagged),
/// so a foreign signature this module cannot handle does not spoil the one it looks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureSet {
    members: Vec<(String, InnerList, Vec<u8>)>,
}

impl SignatureSet {
    /// Parses the combined values of `Signature-Input` and `Signature`.
    pub fn parse(signature_input: &str, signature: &str) -> Result<Self, HttpSigError> {
        let inputs = parse_dictionary(
            SIGNATURE_INPUT,
            signature_input,
            MAX_SIGNATURE_FIELD_BYTES,
            MAX_SIGNATURES,
        )?;
        let mut values = parse_dictionary(
            SIGNATURE,
            signature,
            MAX_SIGNATURE_FIELD_BYTES,
            MAX_SIGNATURES,
        )?;
        let mut members = Vec::with_capacity(inputs.len());
        for (label, entry) in inputs {
            let ListEntry::InnerList(input) = entry else {
                return Err(HttpSigError::InvalidMember {
                    field: SIGNATURE_INPUT,
                    label: label.as_str().to_owned(),
                    expected: "an inner list of component identifiers",
                });
            };
            let value = match values.swap_remove(label.as_str()) {
                Some(ListEntry::Item(Item {
                    bare_item: BareItem::ByteSequence(bytes),
                    params,
                })) if params.is_empty() => bytes,
                Some(_) => {
                    return Err(HttpSigError::InvalidMember {
                        field: SIGNATURE,
                        label: label.as_str().to_owned(),
                        expected: "a byte sequence without parameters",
                    });
                }
                None => {
                    return Err(HttpSigError::UnmatchedLabel {
                        label: label.as_str().to_owned(),
                        present: SIGNATURE_INPUT,
                        absent: SIGNATURE,
                    });
                }
            };
            members.push((String::from(label), input, value));
        }
        // Every label of `Signature-Input` took its value out: what is left has no input.
        if let Some(label) = values.keys().next() {
            return Err(HttpSigError::UnmatchedLabel {
                label: label.as_str().to_owned(),
                present: SIGNATURE,
                absent: SIGNATURE_INPUT,
            });
        }
        Ok(Self { members })
    }

    /// Parses the `Signature-Input` and `Signature` fields of `request`; a missing field counts
    /// as empty.
    pub fn from_request(request: &Request<'_>) -> Result<Self, HttpSigError> {
        let input = request.field(SIGNATURE_INPUT)?.unwrap_or_default();
        let signature = request.field(SIGNATURE)?.unwrap_or_default();
        Self::parse(&input, &signature)
    }

    /// The labels, in order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(label, _, _)| label.as_str())
    }

    /// The signature with `label`.
    pub fn by_label(&self, label: &str) -> Result<Signature, HttpSigError> {
        let (label, input, value) = self
            .members
            .iter()
            .find(|(found, _, _)| found == label)
            .ok_or_else(|| HttpSigError::SignatureMissing(format!("label {label:?}")))?;
        Signature::parse(label.clone(), input.clone(), value.clone())
    }

    /// The one signature whose `tag` parameter is `tag`, taken out of the set; two such
    /// signatures are an error.
    pub fn into_tagged(mut self, tag: &str) -> Result<Signature, HttpSigError> {
        let mut tagged = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, (_, input, _))| {
                input
                    .params
                    .get("tag")
                    .and_then(BareItem::as_string)
                    .is_some_and(|found| found.as_str() == tag)
            });
        let (index, _) = tagged
            .next()
            .ok_or_else(|| HttpSigError::SignatureMissing(format!("tag {tag:?}")))?;
        if tagged.next().is_some() {
            return Err(HttpSigError::DuplicateTag(tag.to_owned()));
        }
        let (label, input, value) = self.members.swap_remove(index);
        Signature::parse(label, input, value)
    }
}

/// The signature base of `signature` over `request` (RFC 9421 §2.5), without a trailing
/// newline.
pub fn signature_base(
    request: &Request<'_>,
    signature: &Signature,
) -> Result<String, HttpSigError> {
    build_base(request, &signature.components, &signature.input)
}

fn build_base(
    request: &Request<'_>,
    components: &[Component],
    input: &InnerList,
) -> Result<String, HttpSigError> {
    let mut base = String::with_capacity(request.target.uri.len() + request.fields_len() + 256);
    for component in components {
        base.push('"');
        base.push_str(component.name());
        base.push_str("\": ");
        request.write_component(component, &mut base)?;
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&serialize_inner_list(input));
    Ok(base)
}

/// Verifies `signature` over `base` with the Ed25519 `key`. An `alg` other than `ed25519` is
/// refused.
pub fn verify(signature: &Signature, base: &str, key: &PublicKey) -> Result<(), HttpSigError> {
    if let Some(alg) = signature.alg()
        && alg != ALG
    {
        return Err(HttpSigError::UnsupportedAlg(shown(alg)));
    }
    key.verify(base.as_bytes(), signature.value())
        .map_err(|_| HttpSigError::BadSignature)
}

/// Serializes an inner list with its parameters, as a one-member list is serialized.
fn serialize_inner_list(input: &InnerList) -> String {
    let mut list = ListSerializer::new();
    {
        let mut inner = list.inner_list();
        inner.items(&input.items);
        let _ = inner.finish().parameters(&input.params);
    }
    // A list with one member always serializes to Some.
    list.finish().unwrap_or_default()
}

// --- Content-Digest (RFC 9530) ---

/// The `Content-Digest` value for `body`: `sha-256=:<base64>:`. An empty body gets the digest
/// of empty content.
pub fn content_digest(body: &[u8]) -> String {
    let digest = encoding::sha256(body);
    let mut dict = DictSerializer::new();
    let _ = dict.bare_item(SHA_256, &digest[..]);
    // A dictionary with one member always serializes to Some.
    dict.finish().unwrap_or_default()
}

/// Checks a `Content-Digest` value against `body`: it must have a `sha-256` member equal to
/// the SHA-256 of `body`; members for other algorithms are ignored.
pub fn verify_content_digest(field_value: &str, body: &[u8]) -> Result<(), HttpSigError> {
    let dict = parse_dictionary(
        CONTENT_DIGEST,
        field_value,
        MAX_CONTENT_DIGEST_BYTES,
        MAX_DIGESTS,
    )
    .map_err(|e| HttpSigError::InvalidContentDigest(e.to_string()))?;
    let digest = match dict.get(SHA_256.as_str()) {
        Some(ListEntry::Item(Item {
            bare_item: BareItem::ByteSequence(bytes),
            ..
        })) if bytes.len() == 32 => bytes,
        Some(_) => {
            return Err(HttpSigError::InvalidContentDigest(
                "found a sha-256 member that is not 32 bytes".to_owned(),
            ));
        }
        None => {
            return Err(HttpSigError::InvalidContentDigest(
                "found no sha-256 member".to_owned(),
            ));
        }
    };
    if digest.as_slice() != encoding::sha256(body) {
        return Err(HttpSigError::ContentDigestMismatch);
    }
    Ok(())
}

// --- structured-field dictionaries ---

/// Parses an RFC 8941 dictionary of at most `max_bytes` and `max_members`, refusing repeated
/// keys and parameter names.
fn parse_dictionary(
    field: &'static str,
    value: &str,
    max_bytes: usize,
    max_members: usize,
) -> Result<Dictionary, HttpSigError> {
    if value.len() > max_bytes {
        return Err(HttpSigError::FieldTooLarge {
            field: field.to_owned(),
            max: max_bytes,
            found: value.len(),
        });
    }
    let repeated = Cell::new(None);
    let dict = Parser::new(value)
        .with_version(Version::Rfc8941)
        .parse_dictionary_with_visitor(Strict::new(Dictionary::new(), &repeated))
        .map_err(|e| match repeated.take() {
            Some(key) => HttpSigError::DuplicateKey { field, key },
            None => HttpSigError::Syntax {
                field,
                detail: e.to_string(),
            },
        })?;
    if dict.len() > max_members {
        return Err(HttpSigError::TooMany {
            what: "dictionary members",
            max: max_members,
            found: dict.len(),
        });
    }
    Ok(dict)
}

/// A key or parameter name seen twice; the name is put in the shared cell.
#[derive(Debug)]
struct Repeated;

impl fmt::Display for Repeated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("repeated key")
    }
}

impl std::error::Error for Repeated {}

/// Builds a dictionary as sfv's own parser does, but fails at the first repeated key or
/// parameter name (putting it in the shared cell) where RFC 8941 would keep the last.
struct Strict<'c, T> {
    into: T,
    repeated: &'c Cell<Option<String>>,
}

impl<'c, T> Strict<'c, T> {
    fn new(into: T, repeated: &'c Cell<Option<String>>) -> Self {
        Self { into, repeated }
    }

    fn repeated(&self, key: &KeyRef) -> Repeated {
        self.repeated.set(Some(key.as_str().to_owned()));
        Repeated
    }
}

impl<'de, 'c> DictionaryVisitor<'de> for Strict<'c, Dictionary> {
    type Out = Dictionary;
    type Error = Repeated;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        if self.into.contains_key(key.as_str()) {
            return Err(self.repeated(key));
        }
        Ok(Strict::new((&mut self.into, key), self.repeated))
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self.into)
    }
}

/// A new dictionary member: its key, and the dictionary it goes into.
type NewMember<'a, 'de> = (&'a mut Dictionary, &'de KeyRef);

impl<'de> EntryVisitor<'de> for Strict<'_, NewMember<'_, 'de>> {
    type Error = Repeated;

    fn item(self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(self)
    }

    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        let (dict, key) = self.into;
        let (index, _) = dict.insert_full(key.to_owned(), InnerList::default().into());
        match dict.get_index_mut(index) {
            Some((_, ListEntry::InnerList(list))) => Ok(Strict::new(list, self.repeated)),
            // The entry just inserted is an inner list.
            _ => Err(Repeated),
        }
    }
}

impl<'de> ItemVisitor<'de> for Strict<'_, NewMember<'_, 'de>> {
    type Out = ();
    type Error = Repeated;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = Self::Out>, Self::Error> {
        let (dict, key) = self.into;
        let (index, _) = dict.insert_full(key.to_owned(), Item::new(bare_item).into());
        match dict.get_index_mut(index) {
            Some((_, ListEntry::Item(item))) => Ok(Strict::new(&mut item.params, self.repeated)),
            // The entry just inserted is an item.
            _ => Err(Repeated),
        }
    }
}

impl<'de> InnerListVisitor<'de> for Strict<'_, &mut InnerList> {
    type Error = Repeated;

    fn item(&mut self) -> Result<impl ItemVisitor<'de>, Self::Error> {
        Ok(Strict::new(&mut self.into.items, self.repeated))
    }

    fn finish(self) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        Ok(Strict::new(&mut self.into.params, self.repeated))
    }
}

impl<'de> ItemVisitor<'de> for Strict<'_, &mut Vec<Item>> {
    type Out = ();
    type Error = Repeated;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de, Out = Self::Out>, Self::Error> {
        let items = self.into;
        items.push(Item::new(bare_item));
        match items.last_mut() {
            Some(item) => Ok(Strict::new(&mut item.params, self.repeated)),
            // The item was just pushed.
            None => Err(Repeated),
        }
    }
}

impl<'de> ParameterVisitor<'de> for Strict<'_, &mut Parameters> {
    type Out = ();
    type Error = Repeated;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        if self.into.contains_key(key.as_str()) {
            return Err(self.repeated(key));
        }
        self.into.insert(key.to_owned(), value.into());
        Ok(())
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
