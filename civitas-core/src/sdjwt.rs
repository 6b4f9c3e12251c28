//! SD-JWT (RFC 9901): selectively disclosable claims, presentations and key-binding JWTs,
//! processed strictly.
//!
//! ```text
//!  issuer:   SdValue tree ──conceal──▶ payload (_sd, ..., _sd_alg) + disclosures
//!            ──issue──▶ "<issuer-jwt>~<d1>~…~<dN>~"
//!  holder:   SdJwt::parse ──present(paths)──▶ "<issuer-jwt>~<di>~…~" ──create_kb_jwt──▶ + "<kb-jwt>"
//!  verifier: SdJwt::parse ─▶ issuer_jwt().verify(key) ─▶ process(payload, disclosures) ─▶ claims
//!                         └▶ check_kb_jwt / verify_kb_jwt (aud, nonce, iat, sd_hash, cnf key)
//! ```
//!
//! A disclosure is base64url (no padding) of the JSON array `[salt, name, value]` (an object
//! property) or `[salt, value]` (an array element). Its digest is base64url of SHA-256 over
//! the ASCII of that base64url string, so [`Disclosure`] keeps the exact string it was given.
//! Digests sit in an object's `_sd` array, or in an array as `{"...": digest}`. Only
//! `_sd_alg: sha-256` is supported (an absent `_sd_alg` means sha-256).
//!
//! # Strict processing
//!
//! [`process`] rebuilds the claims from the issuer-signed payload and the disclosures,
//! recursively (a disclosed value may hold digests of further disclosures), and drops `_sd`,
//! `_sd_alg` and undisclosed array elements. It refuses, each with its own [`SdJwtError`]
//! variant: another `_sd_alg`; a disclosure whose digest nothing references; a disclosure
//! given twice, or a digest that appears twice; a disclosed name that already exists at its
//! level; an `_sd` that is not an array of SHA-256 digests; a `...` member outside an array
//! element, or next to other members, or not holding a digest; a nested `_sd_alg`; an
//! array-element disclosure referenced from `_sd` or a property disclosure referenced from
//! `...`; a disclosure named `_sd` or `...`; a top-level disclosure of a claim the caller says
//! is never selectively disclosable (for SD-JWT VC, [`NEVER_DISCLOSABLE`]). JSON `null` is a
//! value like any other when processing; Civitas never *emits* one.
//!
//! # Claim paths
//!
//! A claim path names a claim from the top of the payload: object member names and array
//! indices joined by `/`, where a name writes `~` as `~0` and `/` as `~1` (RFC 6901
//! escaping, without the leading `/`): `given_name`, `address/region`, `nationalities/0`.
//! An array index counts every element the issuer put in the array, disclosed or not, so it is
//! the index in the holder's fully disclosed credential; in a verifier's reconstructed claims,
//! where undisclosed elements are gone, the element may sit at a lower index.
//!
//! [`Processed::disclosed`] lists the path of every disclosure that was used, so a verifier can
//! check which classified claims were revealed. [`present`] takes paths the other way round:
//! a path selects the disclosure at that path, **every disclosure beneath it** (disclosing an
//! object or array discloses all of it) and every disclosure above it (needed to reach it).
//! A path with no disclosure at or beneath it is refused with [`SdJwtError::UnknownClaim`]
//! or [`SdJwtError::NotDisclosable`].
//!
//! # Example
//!
//! ```
//! use civitas_core::keys::SecretKey;
//! use civitas_core::sdjwt::{self, SdJwt, SdValue};
//! use serde_json::json;
//!
//! let issuer = SecretKey::generate();
//! let holder = SecretKey::generate();
//! let mut claims = SdValue::from_json(json!({
//!     "iss": "did:civ:issuer",
//!     "iat": 1700000000,
//!     "cnf": {"jwk": holder.public_key().to_jwk()},
//!     "given_name": "Ada",
//!     "address": {"locality": "Utrecht", "region": "UT"},
//! }));
//! claims.make_disclosable("given_name").unwrap();
//! claims.make_disclosable("address/locality").unwrap();
//! claims.make_disclosable("address/region").unwrap();
//! let header = json!({"alg": "EdDSA", "typ": "dc+sd-jwt"});
//! let issued = sdjwt::issue(header.as_object().unwrap(), &claims, &issuer, &mut rand::rngs::OsRng)
//!     .unwrap();
//!
//! // Holder: disclose the region only, and bind the presentation to a verifier's nonce.
//! let credential = SdJwt::parse(&issued).unwrap();
//! let presentation = sdjwt::present(&credential, &["address/region"]).unwrap();
//! let kb = sdjwt::create_kb_jwt(&presentation, "https://verifier.example", "n-0S6", 1700000100, &holder)
//!     .unwrap();
//!
//! // Verifier.
//! let received = SdJwt::parse(&format!("{presentation}{kb}")).unwrap();
//! received.issuer_jwt().verify(&issuer.public_key()).unwrap();
//! let payload = received.issuer_jwt().payload();
//! let processed = sdjwt::process(payload, received.disclosures(), &sdjwt::NEVER_DISCLOSABLE).unwrap();
//! assert_eq!(processed.claims()["address"], json!({"region": "UT"}));
//! assert!(processed.claims().get("given_name").is_none());
//! assert_eq!(processed.disclosed(), ["address/region"]);
//! let cnf = sdjwt::cnf_key(payload).unwrap();
//! sdjwt::verify_kb_jwt(&received, "https://verifier.example", "n-0S6", 1700000105, 300, 60, &cnf)
//!     .unwrap();
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;

use rand::{CryptoRng, Rng as _, RngCore};
use serde_json::{Map, Value};

use crate::encoding::{b64url, b64url_decode, b64url_hash, sha256};
use crate::jcs::JcsError;
use crate::jws::{self, Jws, JwsError, json_type};
use crate::keys::{Jwk, PublicKey, SecretKey};
use crate::problem::{self, ProblemType};

/// The longest SD-JWT (with disclosures and KB-JWT) [`SdJwt::parse`] accepts, in bytes.
pub const MAX_SD_JWT_LEN: usize = 256 * 1024;

/// The most disclosures [`SdJwt::parse`] accepts.
pub const MAX_DISCLOSURES: usize = 256;

/// The deepest nesting of objects and arrays, counted through disclosures, that
/// [`process`] and [`conceal`] accept.
pub const MAX_DEPTH: usize = 64;

/// The only `_sd_alg` supported.
pub const SD_ALG: &str = "sha-256";

/// The `typ` of a key-binding JWT.
pub const KB_JWT_TYP: &str = "kb+jwt";

/// Claims of an SD-JWT VC that are never selectively disclosable (DESIGN.md § Credentials),
/// for the `never_disclosable` argument of [`process`].
pub const NEVER_DISCLOSABLE: [&str; 9] = [
    "iss",
    "iat",
    "exp",
    "nbf",
    "vct",
    "vct#integrity",
    "cnf",
    "status",
    "sub",
];

/// Longest excerpt of a value from the input kept in an error.
const EXCERPT: usize = 64;

/// Why a single disclosure is malformed. Messages never contain the salt or the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureError {
    /// Not canonical base64url without padding.
    #[error("expected canonical base64url without padding")]
    Base64,
    /// The decoded bytes are not UTF-8 JSON without duplicate member names.
    #[error("expected utf-8 json without duplicate member names: {0}")]
    Json(JcsError),
    /// The JSON is not an array.
    #[error("expected a json array, found {found}")]
    NotAnArray {
        /// The JSON type found.
        found: &'static str,
    },
    /// The array does not have 2 or 3 elements.
    #[error("expected an array of 2 or 3 elements, found {found}")]
    Length {
        /// The number of elements.
        found: usize,
    },
    /// The salt is not a string.
    #[error("expected the salt to be a string, found {found}")]
    Salt {
        /// The JSON type found.
        found: &'static str,
    },
    /// The claim name is not a string.
    #[error("expected the claim name to be a string, found {found}")]
    Name {
        /// The JSON type found.
        found: &'static str,
    },
    /// The claim name is `_sd` or `...`.
    #[error("expected a claim name other than _sd and ..., found {name:?}")]
    ReservedName {
        /// The name found.
        name: String,
    },
}

/// Why an SD-JWT could not be parsed, processed, presented or key-bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdJwtError {
    /// The text is longer than [`MAX_SD_JWT_LEN`].
    #[error("sd-jwt too large: expected at most {max} bytes, found {found}")]
    TooLarge {
        /// The limit.
        max: usize,
        /// The length found.
        found: usize,
    },
    /// The text has no `~`.
    #[error("expected an sd-jwt of '~'-separated parts, found no '~'")]
    NotSdJwt,
    /// Two `~` with nothing between them.
    #[error("expected disclosure {index} to be non-empty, found an empty part")]
    EmptyDisclosure {
        /// Position of the disclosure (0-based).
        index: usize,
    },
    /// More disclosures than [`MAX_DISCLOSURES`].
    #[error("too many disclosures: expected at most {max}, found {found}")]
    TooManyDisclosures {
        /// The limit.
        max: usize,
        /// The number found.
        found: usize,
    },
    /// The issuer-signed JWT is malformed, or its signature does not verify.
    #[error("issuer-signed jwt: {0}")]
    IssuerJwt(JwsError),
    /// A disclosure is malformed.
    #[error("disclosure {index}: {source}")]
    Disclosure {
        /// Position of the disclosure (0-based).
        index: usize,
        /// What is wrong with it.
        source: DisclosureError,
    },
    /// `_sd_alg` is not `sha-256`.
    #[error("expected _sd_alg sha-256, found {found}")]
    UnsupportedSdAlg {
        /// The value found (truncated).
        found: String,
    },
    /// The same disclosure is given twice.
    #[error("disclosure {index} repeats disclosure {first}")]
    DuplicateDisclosure {
        /// Position of the repetition.
        index: usize,
        /// Position of the first occurrence.
        first: usize,
    },
    /// A digest appears more than once in the payload and the disclosed values.
    #[error("expected every digest to appear once, found a second one at {path}")]
    DuplicateDigest {
        /// Where the second occurrence is.
        path: String,
    },
    /// A disclosure whose digest the payload and the other disclosures do not reference.
    #[error("disclosure {index} is not referenced by the credential")]
    UnreferencedDisclosure {
        /// Position of the disclosure.
        index: usize,
    },
    /// `_sd` is not an array of SHA-256 digests.
    #[error("expected {path} to be an array of sha-256 digests, found {found}")]
    InvalidSdArray {
        /// Where the `_sd` is.
        path: String,
        /// What was found instead.
        found: String,
    },
    /// A `...` member is misplaced or does not hold a digest.
    #[error("invalid array element digest at {path}: {detail}")]
    InvalidEllipsis {
        /// Where it is.
        path: String,
        /// What is wrong.
        detail: &'static str,
    },
    /// `_sd_alg` below the top level.
    #[error("expected _sd_alg only at the top level, found it at {path}")]
    MisplacedSdAlg {
        /// Where it is.
        path: String,
    },
    /// A property disclosure referenced from `...`, or an array-element disclosure from `_sd`.
    #[error("disclosure {index} at {path}: expected {expected}")]
    WrongDisclosureKind {
        /// Where the digest is.
        path: String,
        /// Position of the disclosure.
        index: usize,
        /// The kind expected there.
        expected: &'static str,
    },
    /// A disclosed claim name already exists at its level.
    #[error("disclosed claim {path} already exists at its level")]
    ClaimExists {
        /// The claim's path.
        path: String,
    },
    /// A top-level disclosure of a claim that is never selectively disclosable.
    #[error("claim {name} must not be selectively disclosable, found a disclosure of it")]
    UndisclosableClaim {
        /// The claim name.
        name: String,
    },
    /// Objects, arrays and disclosures nest deeper than [`MAX_DEPTH`].
    #[error("expected at most {max} levels of nesting, found more")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A path to present names no claim of the credential.
    #[error("expected a claim path of the credential, found {path:?}")]
    UnknownClaim {
        /// The path.
        path: String,
    },
    /// A path to present names a claim that is not selectively disclosable and contains none.
    #[error("expected a selectively disclosable claim, found {path:?}, which always shows")]
    NotDisclosable {
        /// The path.
        path: String,
    },
    /// The presentation has no key-binding JWT.
    #[error("expected a key-binding jwt, found none")]
    KbJwtMissing,
    /// A key-binding JWT was to be added to a presentation that already has one.
    #[error("expected a presentation without a key-binding jwt, found one")]
    KbJwtPresent,
    /// The key-binding JWT is not a well-formed compact JWS.
    #[error("key-binding jwt: {0}")]
    KbJwt(JwsError),
    /// The key-binding JWT's `typ` is not `kb+jwt`.
    #[error("expected key-binding jwt typ kb+jwt, found {found:?}")]
    KbJwtTyp {
        /// The `typ` found (truncated), if any.
        found: Option<String>,
    },
    /// The key-binding JWT's `alg` is not Ed25519.
    #[error("expected key-binding jwt alg EdDSA or Ed25519, found {found:?}")]
    KbJwtAlg {
        /// The `alg` found (truncated).
        found: String,
    },
    /// A key-binding JWT claim is missing or has the wrong type.
    #[error("expected key-binding jwt claim {name} to be {expected}, found {found}")]
    KbJwtClaim {
        /// The claim name.
        name: &'static str,
        /// The type expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// `aud` is not the verifier.
    #[error("expected key-binding jwt aud {expected:?}, found {found:?}")]
    KbJwtAud {
        /// The audience expected.
        expected: String,
        /// The audience found (truncated).
        found: String,
    },
    /// `nonce` is not the expected one.
    #[error("expected key-binding jwt nonce {expected:?}, found {found:?}")]
    KbJwtNonce {
        /// The nonce expected.
        expected: String,
        /// The nonce found (truncated).
        found: String,
    },
    /// `sd_hash` does not match the presentation.
    #[error("expected key-binding jwt sd_hash {expected}, found {found:?}")]
    KbJwtSdHash {
        /// The hash of the presentation.
        expected: String,
        /// The hash found (truncated).
        found: String,
    },
    /// `iat` is older than the allowed age.
    #[error("key-binding jwt too old: iat {iat}, now {now}, expected an age of at most {max_age}s")]
    KbJwtStale {
        /// The `iat` found.
        iat: i64,
        /// The verifier's time.
        now: i64,
        /// The allowed age in seconds.
        max_age: i64,
    },
    /// `iat` is further in the future than the allowed skew.
    #[error("key-binding jwt issued in the future: iat {iat}, now {now}, allowed skew {skew}s")]
    KbJwtFuture {
        /// The `iat` found.
        iat: i64,
        /// The verifier's time.
        now: i64,
        /// The allowed clock skew in seconds.
        skew: i64,
    },
    /// The key-binding JWT's signature does not verify under the `cnf` key.
    #[error("key-binding jwt signature: {0}")]
    KbJwtSignature(JwsError),
    /// The payload has no `cnf`.
    #[error("expected a cnf claim, found none")]
    CnfMissing,
    /// `cnf` is not `{"jwk": <OKP Ed25519 public JWK>}`.
    #[error("expected cnf.jwk to be an okp ed25519 public jwk: {detail}")]
    CnfInvalid {
        /// What is wrong.
        detail: String,
    },
}

impl SdJwtError {
    /// The stable problem type of this error.
    pub fn problem(&self) -> ProblemType {
        match self {
            Self::TooLarge { .. }
            | Self::NotSdJwt
            | Self::EmptyDisclosure { .. }
            | Self::TooManyDisclosures { .. }
            | Self::TooDeep { .. }
            | Self::CnfMissing
            | Self::CnfInvalid { .. } => problem::MALFORMED_CREDENTIAL,
            Self::IssuerJwt(source) => source.problem(),
            Self::UnsupportedSdAlg { .. } => problem::UNSUPPORTED_ALG,
            Self::DuplicateDisclosure { .. } | Self::DuplicateDigest { .. } => {
                problem::DUPLICATE_DISCLOSURE
            }
            Self::UnreferencedDisclosure { .. } => problem::UNREFERENCED_DISCLOSURE,
            Self::Disclosure { .. }
            | Self::InvalidSdArray { .. }
            | Self::InvalidEllipsis { .. }
            | Self::MisplacedSdAlg { .. }
            | Self::WrongDisclosureKind { .. }
            | Self::ClaimExists { .. } => problem::INVALID_DISCLOSURE,
            Self::UndisclosableClaim { .. } => problem::UNDISCLOSABLE_CLAIM,
            Self::UnknownClaim { .. } | Self::NotDisclosable { .. } => problem::UNKNOWN_CLAIM,
            Self::KbJwtMissing => problem::KB_JWT_MISSING,
            Self::KbJwtPresent
            | Self::KbJwt(_)
            | Self::KbJwtTyp { .. }
            | Self::KbJwtAlg { .. }
            | Self::KbJwtClaim { .. }
            | Self::KbJwtAud { .. }
            | Self::KbJwtNonce { .. }
            | Self::KbJwtSdHash { .. }
            | Self::KbJwtStale { .. }
            | Self::KbJwtFuture { .. }
            | Self::KbJwtSignature(_) => problem::INVALID_KB_JWT,
        }
    }
}

/// Why claims could not be concealed or issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConcealError {
    /// The claims are not an [`SdValue::Object`].
    #[error("expected the claims to be an object, found {found}")]
    NotAnObject {
        /// What was found.
        found: &'static str,
    },
    /// A claim is `null`; Civitas never emits null claims.
    #[error("expected no null claims, found one at {path}")]
    NullClaim {
        /// Where the null is.
        path: String,
    },
    /// A claim is named `_sd`, `...` or `_sd_alg`.
    #[error("expected no claim named _sd, ... or _sd_alg, found {path}")]
    ReservedName {
        /// The claim's path.
        path: String,
    },
    /// Two members of an object have the same name.
    #[error("expected unique claim names, found {path} twice")]
    DuplicateName {
        /// The claim's path.
        path: String,
    },
    /// [`SdValue::make_disclosable`] was given a path that is not in the tree.
    #[error("expected a claim path of the tree, found {path:?}")]
    NoSuchClaim {
        /// The path.
        path: String,
    },
    /// The tree nests deeper than [`MAX_DEPTH`].
    #[error("expected at most {max} levels of nesting, found more")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// Signing the issuer JWT failed.
    #[error("signing the issuer-signed jwt: {0}")]
    Sign(JwsError),
}

impl ConcealError {
    /// The stable problem type of this error.
    pub fn problem(&self) -> ProblemType {
        match self {
            Self::Sign(_) => problem::INTERNAL,
            _ => problem::SCHEMA_VIOLATION,
        }
    }
}

/// One disclosure: its exact base64url text, the claim name (for an object property) and the
/// value. Its `Debug` shows only the name and the digest.
#[derive(Clone, PartialEq, Eq)]
pub struct Disclosure {
    encoded: String,
    digest: String,
    name: Option<String>,
    value: Value,
}

impl Disclosure {
    /// Parses a disclosure strictly: canonical base64url of a JSON array (without duplicate
    /// member names anywhere) of a string salt, an optional string claim name other than
    /// `_sd` and `...`, and a value.
    ///
    /// # Errors
    ///
    /// A [`DisclosureError`].
    pub fn parse(encoded: &str) -> Result<Self, DisclosureError> {
        let bytes = b64url_decode(encoded).map_err(|_| DisclosureError::Base64)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            DisclosureError::Json(JcsError::InvalidJson {
                line: 0,
                column: 0,
                detail: "not utf-8".to_owned(),
            })
        })?;
        let items = match jws::parse_json(text).map_err(DisclosureError::Json)? {
            Value::Array(items) => items,
            other => {
                return Err(DisclosureError::NotAnArray {
                    found: json_type(&other),
                });
            }
        };
        let (salt, name, value) = match <[Value; 2]>::try_from(items) {
            Ok([salt, value]) => (salt, None, value),
            Err(items) => match <[Value; 3]>::try_from(items) {
                Ok([salt, name, value]) => (salt, Some(name), value),
                Err(items) => return Err(DisclosureError::Length { found: items.len() }),
            },
        };
        if !salt.is_string() {
            return Err(DisclosureError::Salt {
                found: json_type(&salt),
            });
        }
        let name = match name {
            None => None,
            Some(Value::String(name)) if name == "_sd" || name == "..." => {
                return Err(DisclosureError::ReservedName { name });
            }
            Some(Value::String(name)) => Some(name),
            Some(other) => {
                return Err(DisclosureError::Name {
                    found: json_type(&other),
                });
            }
        };
        Ok(Self {
            encoded: encoded.to_owned(),
            digest: digest_of(encoded),
            name,
            value,
        })
    }

    /// Makes a new disclosure (issuer side).
    fn new(salt: String, name: Option<&str>, value: Value) -> Self {
        // A JSON array of plain data always serializes.
        let json = match name {
            Some(name) => serde_json::to_vec(&(&salt, name, &value)),
            None => serde_json::to_vec(&(&salt, &value)),
        }
        .unwrap_or_default();
        let encoded = b64url(&json);
        Self {
            digest: digest_of(&encoded),
            encoded,
            name: name.map(str::to_owned),
            value,
        }
    }

    /// The exact base64url text.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }

    /// The claim name, or `None` for an array-element disclosure.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The disclosed value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// base64url(SHA-256(ASCII of the base64url text)).
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

impl fmt::Debug for Disclosure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disclosure")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

fn digest_of(encoded: &str) -> String {
    b64url(&sha256(encoded.as_bytes()))
}

/// A parsed SD-JWT or presentation, `<issuer-jwt>~<d1>~…~<dN>~[<kb-jwt>]`, kept exactly as
/// given. Nothing is verified yet. Its `Debug` shows no disclosure content.
#[derive(Clone)]
pub struct SdJwt {
    text: String,
    issuer_jwt: Jws,
    disclosures: Vec<Disclosure>,
    kb_jwt: Option<Jws>,
    /// Byte offset just after the last `~`.
    kb_start: usize,
}

impl SdJwt {
    /// Parses the compact form: a compact JWS, disclosures (none empty, at most
    /// [`MAX_DISCLOSURES`]) and, when the text does not end with `~`, a key-binding JWT.
    ///
    /// # Errors
    ///
    /// [`SdJwtError::TooLarge`], [`SdJwtError::NotSdJwt`], [`SdJwtError::EmptyDisclosure`],
    /// [`SdJwtError::TooManyDisclosures`], [`SdJwtError::IssuerJwt`],
    /// [`SdJwtError::Disclosure`], [`SdJwtError::KbJwt`].
    pub fn parse(text: &str) -> Result<Self, SdJwtError> {
        if text.len() > MAX_SD_JWT_LEN {
            return Err(SdJwtError::TooLarge {
                max: MAX_SD_JWT_LEN,
                found: text.len(),
            });
        }
        let (Some(first), Some(last)) = (text.find('~'), text.rfind('~')) else {
            return Err(SdJwtError::NotSdJwt);
        };
        let count = text.bytes().filter(|&b| b == b'~').count() - 1;
        if count > MAX_DISCLOSURES {
            return Err(SdJwtError::TooManyDisclosures {
                max: MAX_DISCLOSURES,
                found: count,
            });
        }
        let issuer_jwt = Jws::parse(&text[..first]).map_err(SdJwtError::IssuerJwt)?;
        let mut disclosures = Vec::with_capacity(count);
        if last > first {
            for (index, part) in text[first + 1..last].split('~').enumerate() {
                if part.is_empty() {
                    return Err(SdJwtError::EmptyDisclosure { index });
                }
                let disclosure = Disclosure::parse(part)
                    .map_err(|source| SdJwtError::Disclosure { index, source })?;
                disclosures.push(disclosure);
            }
        }
        let kb = &text[last + 1..];
        let kb_jwt = if kb.is_empty() {
            None
        } else {
            Some(Jws::parse(kb).map_err(SdJwtError::KbJwt)?)
        };
        Ok(Self {
            text: text.to_owned(),
            issuer_jwt,
            disclosures,
            kb_jwt,
            kb_start: last + 1,
        })
    }

    /// The text exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The issuer-signed JWT (not verified yet).
    pub fn issuer_jwt(&self) -> &Jws {
        &self.issuer_jwt
    }

    /// The disclosures, in order.
    pub fn disclosures(&self) -> &[Disclosure] {
        &self.disclosures
    }

    /// The key-binding JWT, if there is one (not verified yet).
    pub fn kb_jwt(&self) -> Option<&Jws> {
        self.kb_jwt.as_ref()
    }

    /// The text up to and including the last `~`: what a key-binding JWT's `sd_hash` covers.
    pub fn without_kb(&self) -> &str {
        &self.text[..self.kb_start]
    }

    /// base64url SHA-256 of [`SdJwt::without_kb`], the expected `sd_hash`.
    pub fn sd_hash(&self) -> String {
        b64url(&sha256(self.without_kb().as_bytes()))
    }
}

impl fmt::Debug for SdJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdJwt")
            .field("issuer_jwt", &self.issuer_jwt)
            .field("disclosures", &self.disclosures)
            .field("kb_jwt", &self.kb_jwt)
            .finish()
    }
}

/// The result of [`process`]: the reconstructed claims and the paths of the disclosed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    claims: Map<String, Value>,
    disclosed: Vec<String>,
}

impl Processed {
    /// The claims: plain ones and disclosed ones, without `_sd`, `_sd_alg` and undisclosed
    /// array elements.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The claim path of every disclosure used, in the order processing met them (see the
    /// module documentation for the path syntax).
    pub fn disclosed(&self) -> &[String] {
        &self.disclosed
    }

    /// The claims, by value.
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }
}

/// Rebuilds the claims of an issuer-signed `payload` from `disclosures`, strictly (see the
/// module documentation). `never_disclosable` lists top-level claim names that must not come
/// from a disclosure ([`NEVER_DISCLOSABLE`] for SD-JWT VC).
///
/// Verify the issuer JWT's signature before trusting the result.
///
/// # Errors
///
/// [`SdJwtError::UnsupportedSdAlg`], [`SdJwtError::DuplicateDisclosure`],
/// [`SdJwtError::DuplicateDigest`], [`SdJwtError::UnreferencedDisclosure`],
/// [`SdJwtError::InvalidSdArray`], [`SdJwtError::InvalidEllipsis`],
/// [`SdJwtError::MisplacedSdAlg`], [`SdJwtError::WrongDisclosureKind`],
/// [`SdJwtError::ClaimExists`], [`SdJwtError::UndisclosableClaim`], [`SdJwtError::TooDeep`].
pub fn process(
    payload: &Map<String, Value>,
    disclosures: &[Disclosure],
    never_disclosable: &[&str],
) -> Result<Processed, SdJwtError> {
    let (claims, disclosed) = reconstruct(payload, disclosures, never_disclosable)?;
    Ok(Processed {
        claims,
        disclosed: disclosed.into_iter().map(|(path, _)| path).collect(),
    })
}

/// The claims, and the (path, disclosure index) of every disclosure used.
type Reconstructed = (Map<String, Value>, Vec<(String, usize)>);

fn reconstruct(
    payload: &Map<String, Value>,
    disclosures: &[Disclosure],
    never_disclosable: &[&str],
) -> Result<Reconstructed, SdJwtError> {
    match payload.get("_sd_alg") {
        None => {}
        Some(Value::String(alg)) if alg == SD_ALG => {}
        Some(other) => {
            return Err(SdJwtError::UnsupportedSdAlg {
                found: excerpt(&other.to_string()),
            });
        }
    }
    let mut by_digest = HashMap::with_capacity(disclosures.len());
    for (index, disclosure) in disclosures.iter().enumerate() {
        if let Some(first) = by_digest.insert(disclosure.digest(), index) {
            return Err(SdJwtError::DuplicateDisclosure { index, first });
        }
    }
    let mut walk = Walk {
        disclosures,
        by_digest,
        used: vec![false; disclosures.len()],
        seen: HashSet::new(),
        disclosed: Vec::new(),
        never_disclosable,
    };
    let claims = walk.object(payload, "", 0, true)?;
    if let Some(index) = walk.used.iter().position(|used| !used) {
        return Err(SdJwtError::UnreferencedDisclosure { index });
    }
    Ok((claims, walk.disclosed))
}

/// The state of one [`reconstruct`] pass.
struct Walk<'a> {
    disclosures: &'a [Disclosure],
    by_digest: HashMap<&'a str, usize>,
    used: Vec<bool>,
    seen: HashSet<&'a str>,
    disclosed: Vec<(String, usize)>,
    never_disclosable: &'a [&'a str],
}

impl<'a> Walk<'a> {
    fn object(
        &mut self,
        map: &'a Map<String, Value>,
        path: &str,
        depth: usize,
        top: bool,
    ) -> Result<Map<String, Value>, SdJwtError> {
        let depth = enter(depth)?;
        let mut out = Map::new();
        for (name, value) in map {
            match name.as_str() {
                "_sd" => {}
                "_sd_alg" if top => {}
                "_sd_alg" => {
                    return Err(SdJwtError::MisplacedSdAlg {
                        path: child(path, name),
                    });
                }
                "..." => {
                    return Err(SdJwtError::InvalidEllipsis {
                        path: child(path, name),
                        detail: "expected '...' only as the sole member of an array element",
                    });
                }
                _ => {
                    let value = self.value(value, &child(path, name), depth)?;
                    out.insert(name.clone(), value);
                }
            }
        }
        let Some(sd) = map.get("_sd") else {
            return Ok(out);
        };
        let sd_path = child(path, "_sd");
        let Value::Array(digests) = sd else {
            return Err(SdJwtError::InvalidSdArray {
                path: sd_path,
                found: json_type(sd).to_owned(),
            });
        };
        for digest in digests {
            let Value::String(digest) = digest else {
                return Err(SdJwtError::InvalidSdArray {
                    path: sd_path,
                    found: format!("an element that is {}", json_type(digest)),
                });
            };
            if b64url_hash(digest).is_err() {
                return Err(SdJwtError::InvalidSdArray {
                    path: sd_path,
                    found: format!("the element {:?}", excerpt(digest)),
                });
            }
            self.see(digest, &sd_path)?;
            let Some(&index) = self.by_digest.get(digest.as_str()) else {
                continue;
            };
            let disclosures = self.disclosures;
            let disclosure = &disclosures[index];
            let Some(name) = disclosure.name() else {
                return Err(SdJwtError::WrongDisclosureKind {
                    path: sd_path,
                    index,
                    expected: "a [salt, name, value] disclosure for a digest in _sd",
                });
            };
            let claim_path = child(path, name);
            if map.contains_key(name) || out.contains_key(name) {
                return Err(SdJwtError::ClaimExists { path: claim_path });
            }
            if top && self.never_disclosable.contains(&name) {
                return Err(SdJwtError::UndisclosableClaim {
                    name: name.to_owned(),
                });
            }
            self.used[index] = true;
            self.disclosed.push((claim_path.clone(), index));
            let value = self.value(disclosure.value(), &claim_path, depth)?;
            out.insert(name.to_owned(), value);
        }
        Ok(out)
    }

    fn array(
        &mut self,
        items: &'a [Value],
        path: &str,
        depth: usize,
    ) -> Result<Vec<Value>, SdJwtError> {
        let depth = enter(depth)?;
        let mut out = Vec::with_capacity(items.len());
        for (position, item) in items.iter().enumerate() {
            let item_path = child(path, &position.to_string());
            let placeholder = match item {
                Value::Object(map) if map.contains_key("...") => map,
                _ => {
                    out.push(self.value(item, &item_path, depth)?);
                    continue;
                }
            };
            if placeholder.len() != 1 {
                return Err(SdJwtError::InvalidEllipsis {
                    path: item_path,
                    detail: "expected an array element {\"...\": digest} with no other member",
                });
            }
            let digest = match placeholder.get("...") {
                Some(Value::String(digest)) if b64url_hash(digest).is_ok() => digest,
                _ => {
                    return Err(SdJwtError::InvalidEllipsis {
                        path: item_path,
                        detail: "expected '...' to hold a sha-256 digest",
                    });
                }
            };
            self.see(digest, &item_path)?;
            let Some(&index) = self.by_digest.get(digest.as_str()) else {
                continue;
            };
            let disclosures = self.disclosures;
            let disclosure = &disclosures[index];
            if disclosure.name().is_some() {
                return Err(SdJwtError::WrongDisclosureKind {
                    path: item_path,
                    index,
                    expected: "a [salt, value] disclosure for an array element",
                });
            }
            self.used[index] = true;
            self.disclosed.push((item_path.clone(), index));
            out.push(self.value(disclosure.value(), &item_path, depth)?);
        }
        Ok(out)
    }

    fn value(&mut self, value: &'a Value, path: &str, depth: usize) -> Result<Value, SdJwtError> {
        Ok(match value {
            Value::Object(map) => Value::Object(self.object(map, path, depth, false)?),
            Value::Array(items) => Value::Array(self.array(items, path, depth)?),
            other => other.clone(),
        })
    }

    fn see(&mut self, digest: &'a str, path: &str) -> Result<(), SdJwtError> {
        if self.seen.insert(digest) {
            Ok(())
        } else {
            Err(SdJwtError::DuplicateDigest {
                path: path.to_owned(),
            })
        }
    }
}

fn enter(depth: usize) -> Result<usize, SdJwtError> {
    if depth >= MAX_DEPTH {
        return Err(SdJwtError::TooDeep { max: MAX_DEPTH });
    }
    Ok(depth + 1)
}

/// Appends one segment, escaped, to a claim path.
fn child(path: &str, segment: &str) -> String {
    let segment = segment.replace('~', "~0").replace('/', "~1");
    if path.is_empty() {
        segment
    } else {
        format!("{path}/{segment}")
    }
}

/// Whether `path` lies strictly beneath `ancestor`.
fn is_below(path: &str, ancestor: &str) -> bool {
    path.len() > ancestor.len()
        && path.starts_with(ancestor)
        && path.as_bytes()[ancestor.len()] == b'/'
}

/// Whether `path` names a value in `claims` (array indices as positions in `claims`).
fn lookup(claims: &Map<String, Value>, path: &str) -> bool {
    let mut segments = path
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"));
    let Some(first) = segments.next() else {
        return false;
    };
    let Some(mut value) = claims.get(&first) else {
        return false;
    };
    for segment in segments {
        let next = match value {
            Value::Object(map) => map.get(&segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(next) => value = next,
            None => return false,
        }
    }
    true
}

/// Builds a presentation of `sd_jwt` disclosing the claims at `paths`:
/// `<issuer-jwt>~<d>~…~`, without a key-binding JWT. Each path selects the disclosure at it,
/// every disclosure beneath it and every disclosure above it; disclosures keep their order.
/// The credential is processed strictly first, so a holder never presents a credential a
/// strict verifier would refuse.
///
/// # Errors
///
/// [`SdJwtError::UnknownClaim`] for a path the credential does not have,
/// [`SdJwtError::NotDisclosable`] for a path with no disclosure at or beneath it, and the
/// errors of [`process`].
pub fn present(sd_jwt: &SdJwt, paths: &[&str]) -> Result<String, SdJwtError> {
    let disclosures = sd_jwt.disclosures();
    let (claims, disclosed) = reconstruct(sd_jwt.issuer_jwt().payload(), disclosures, &[])?;
    let mut selected = vec![false; disclosures.len()];
    for &path in paths {
        let mut found = false;
        for (claim, index) in &disclosed {
            if claim == path || is_below(claim, path) {
                found = true;
                selected[*index] = true;
            } else if is_below(path, claim) {
                selected[*index] = true;
            }
        }
        if !found {
            let path = path.to_owned();
            return Err(if lookup(&claims, &path) {
                SdJwtError::NotDisclosable { path }
            } else {
                SdJwtError::UnknownClaim { path }
            });
        }
    }
    let mut out = String::with_capacity(sd_jwt.without_kb().len());
    out.push_str(sd_jwt.issuer_jwt().as_str());
    out.push('~');
    for (disclosure, _) in disclosures.iter().zip(&selected).filter(|(_, s)| **s) {
        out.push_str(disclosure.as_str());
        out.push('~');
    }
    Ok(out)
}

/// Makes the key-binding JWT for `presentation` (`<issuer-jwt>~<d>~…~`): header
/// `{"alg":"EdDSA","typ":"kb+jwt"}`, payload `iat` (integer seconds), `aud`, `nonce` and
/// `sd_hash`. Append the result to the presentation.
///
/// # Errors
///
/// The errors of [`SdJwt::parse`], and [`SdJwtError::KbJwtPresent`] if `presentation` already
/// ends in a key-binding JWT.
pub fn create_kb_jwt(
    presentation: &str,
    aud: &str,
    nonce: &str,
    iat: i64,
    holder_key: &SecretKey,
) -> Result<String, SdJwtError> {
    let sd_jwt = SdJwt::parse(presentation)?;
    if sd_jwt.kb_jwt().is_some() {
        return Err(SdJwtError::KbJwtPresent);
    }
    let mut header = Map::new();
    header.insert("alg".to_owned(), jws::ALG_EDDSA.into());
    header.insert("typ".to_owned(), KB_JWT_TYP.into());
    let mut payload = Map::new();
    payload.insert("iat".to_owned(), iat.into());
    payload.insert("aud".to_owned(), aud.into());
    payload.insert("nonce".to_owned(), nonce.into());
    payload.insert("sd_hash".to_owned(), sd_jwt.sd_hash().into());
    jws::sign_compact(&header, &payload, holder_key).map_err(SdJwtError::KbJwt)
}

/// Checks everything about the key-binding JWT except its signature: `alg`, `typ`
/// `kb+jwt`, `sd_hash` over this presentation, `aud`, `nonce`, and `iat` within
/// `[now - max_age_secs, now + max_future_skew_secs]`. Cheap: run it before any lookup,
/// and [`verify_kb_jwt`] (or the signature check alone) once the `cnf` key is trusted.
///
/// # Errors
///
/// [`SdJwtError::KbJwtMissing`], [`SdJwtError::KbJwtAlg`], [`SdJwtError::KbJwtTyp`],
/// [`SdJwtError::KbJwtClaim`], [`SdJwtError::KbJwtSdHash`], [`SdJwtError::KbJwtAud`],
/// [`SdJwtError::KbJwtNonce`], [`SdJwtError::KbJwtStale`], [`SdJwtError::KbJwtFuture`].
pub fn check_kb_jwt(
    sd_jwt: &SdJwt,
    expected_aud: &str,
    expected_nonce: &str,
    now: i64,
    max_age_secs: i64,
    max_future_skew_secs: i64,
) -> Result<(), SdJwtError> {
    let kb = sd_jwt.kb_jwt().ok_or(SdJwtError::KbJwtMissing)?;
    check_kb_claims(
        kb,
        &sd_jwt.sd_hash(),
        expected_aud,
        expected_nonce,
        now,
        max_age_secs,
        max_future_skew_secs,
    )
}

/// [`check_kb_jwt`] for a key-binding JWT parsed apart from its SD-JWT, whose `sd_hash` the
/// caller knows (verifiers cache the parsed SD-JWT and its hash, and parse only the
/// per-request KB-JWT).
///
/// # Errors
///
/// As [`check_kb_jwt`], but never [`SdJwtError::KbJwtMissing`].
pub fn check_kb_claims(
    kb: &Jws,
    expected_sd_hash: &str,
    expected_aud: &str,
    expected_nonce: &str,
    now: i64,
    max_age_secs: i64,
    max_future_skew_secs: i64,
) -> Result<(), SdJwtError> {
    if kb.check_alg().is_err() {
        return Err(SdJwtError::KbJwtAlg {
            found: excerpt(kb.alg()),
        });
    }
    if !kb.has_typ(KB_JWT_TYP) {
        return Err(SdJwtError::KbJwtTyp {
            found: kb.typ().map(excerpt),
        });
    }
    let claims = kb.payload();
    let string = |name: &'static str| match claims.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        other => Err(SdJwtError::KbJwtClaim {
            name,
            expected: "a string",
            found: other.map_or("nothing", json_type),
        }),
    };
    let sd_hash = string("sd_hash")?;
    if sd_hash != expected_sd_hash {
        return Err(SdJwtError::KbJwtSdHash {
            expected: expected_sd_hash.to_owned(),
            found: excerpt(sd_hash),
        });
    }
    let aud = string("aud")?;
    if aud != expected_aud {
        return Err(SdJwtError::KbJwtAud {
            expected: expected_aud.to_owned(),
            found: excerpt(aud),
        });
    }
    let nonce = string("nonce")?;
    if nonce != expected_nonce {
        return Err(SdJwtError::KbJwtNonce {
            expected: expected_nonce.to_owned(),
            found: excerpt(nonce),
        });
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
    .ok_or_else(|| SdJwtError::KbJwtClaim {
        name: "iat",
        expected: "an integer number of seconds",
        found: claims.get("iat").map_or("nothing", json_type),
    })?;
    if iat > now.saturating_add(max_future_skew_secs) {
        return Err(SdJwtError::KbJwtFuture {
            iat,
            now,
            skew: max_future_skew_secs,
        });
    }
    if now.saturating_sub(iat) > max_age_secs {
        return Err(SdJwtError::KbJwtStale {
            iat,
            now,
            max_age: max_age_secs,
        });
    }
    Ok(())
}

/// [`check_kb_jwt`], then the key-binding JWT's signature under `cnf_key` (the holder key
/// from the verified credential's `cnf`, see [`cnf_key`]).
///
/// # Errors
///
/// The errors of [`check_kb_jwt`], and [`SdJwtError::KbJwtSignature`].
pub fn verify_kb_jwt(
    sd_jwt: &SdJwt,
    expected_aud: &str,
    expected_nonce: &str,
    now: i64,
    max_age_secs: i64,
    max_future_skew_secs: i64,
    cnf_key: &PublicKey,
) -> Result<(), SdJwtError> {
    check_kb_jwt(
        sd_jwt,
        expected_aud,
        expected_nonce,
        now,
        max_age_secs,
        max_future_skew_secs,
    )?;
    let kb = sd_jwt.kb_jwt().ok_or(SdJwtError::KbJwtMissing)?;
    kb.verify(cnf_key).map_err(SdJwtError::KbJwtSignature)
}

/// Reads the holder key from a payload's `cnf.jwk` (an OKP Ed25519 public JWK).
///
/// # Errors
///
/// [`SdJwtError::CnfMissing`], or [`SdJwtError::CnfInvalid`] for any other shape, another key
/// type, a weak key, or a JWK carrying the private member `d`.
pub fn cnf_key(payload: &Map<String, Value>) -> Result<PublicKey, SdJwtError> {
    let cnf = payload.get("cnf").ok_or(SdJwtError::CnfMissing)?;
    let invalid = |detail: String| SdJwtError::CnfInvalid { detail };
    let jwk = cnf
        .as_object()
        .and_then(|cnf| cnf.get("jwk"))
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("expected cnf to be an object with a jwk object".to_owned()))?;
    if jwk.contains_key("d") {
        return Err(invalid(
            "expected a public jwk, found the private member d".to_owned(),
        ));
    }
    let member = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("expected a string member {name}")))
    };
    let jwk = Jwk {
        kty: member("kty")?,
        crv: member("crv")?,
        x: member("x")?,
    };
    PublicKey::from_jwk(&jwk).map_err(|e| invalid(e.to_string()))
}

/// A claim tree for issuance: which claims are selectively disclosable.
///
/// Build one from JSON with [`SdValue::from_json`] and mark claims with
/// [`SdValue::make_disclosable`], or construct it directly. A disclosable object whose
/// members are disclosable too gives recursive disclosures; a plain object with disclosable
/// members gives structured ones (each member its own disclosure in the object's `_sd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdValue {
    /// A value taken as it is (it must contain no `null`, `_sd`, `...` or `_sd_alg`).
    Plain(Value),
    /// An object whose members may be disclosable.
    Object(Vec<(String, SdMember)>),
    /// An array whose elements may be disclosable.
    Array(Vec<SdMember>),
}

/// A member of an [`SdValue::Object`] or an element of an [`SdValue::Array`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdMember {
    /// The value.
    pub value: SdValue,
    /// Whether it gets its own disclosure.
    pub disclosable: bool,
}

impl SdMember {
    /// An always-visible member.
    pub fn plain(value: impl Into<SdValue>) -> Self {
        Self {
            value: value.into(),
            disclosable: false,
        }
    }

    /// A selectively disclosable member.
    pub fn disclosable(value: impl Into<SdValue>) -> Self {
        Self {
            value: value.into(),
            disclosable: true,
        }
    }
}

impl From<Value> for SdValue {
    fn from(value: Value) -> Self {
        Self::from_json(value)
    }
}

impl SdValue {
    /// The tree of a JSON value with nothing disclosable: objects and arrays become
    /// [`SdValue::Object`] and [`SdValue::Array`] so their members can be marked.
    pub fn from_json(value: Value) -> Self {
        match value {
            Value::Object(map) => Self::Object(
                map.into_iter()
                    .map(|(name, value)| (name, SdMember::plain(value)))
                    .collect(),
            ),
            Value::Array(items) => Self::Array(items.into_iter().map(SdMember::plain).collect()),
            other => Self::Plain(other),
        }
    }

    /// Marks the claim at `path` (see the module documentation for the syntax) selectively
    /// disclosable.
    ///
    /// # Errors
    ///
    /// [`ConcealError::NoSuchClaim`] if the tree has no member or element at `path`.
    pub fn make_disclosable(&mut self, path: &str) -> Result<(), ConcealError> {
        let not_found = || ConcealError::NoSuchClaim {
            path: path.to_owned(),
        };
        let mut node = self;
        let mut segments = path.split('/').peekable();
        while let Some(segment) = segments.next() {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            let member = match node {
                Self::Object(members) => members
                    .iter_mut()
                    .find(|(name, _)| *name == segment)
                    .map(|(_, member)| member),
                Self::Array(items) => segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get_mut(index)),
                Self::Plain(_) => None,
            }
            .ok_or_else(not_found)?;
            if segments.peek().is_none() {
                member.disclosable = true;
                return Ok(());
            }
            node = &mut member.value;
        }
        Err(not_found())
    }
}

/// Turns a claim tree into an issuer-signed payload and its disclosures.
///
/// Each disclosure gets a fresh 128-bit salt. Every `_sd` array gets 1 to 3 decoy digests
/// and is sorted; arrays get no decoy elements, so array indices stay those of the tree.
/// The payload carries `_sd_alg: sha-256`. Take `rng` from the operating system in
/// production; tests may pass a seeded generator.
///
/// # Errors
///
/// [`ConcealError::NotAnObject`], [`ConcealError::NullClaim`], [`ConcealError::ReservedName`],
/// [`ConcealError::DuplicateName`], [`ConcealError::TooDeep`].
pub fn conceal<R: RngCore + CryptoRng>(
    claims: &SdValue,
    rng: &mut R,
) -> Result<(Map<String, Value>, Vec<Disclosure>), ConcealError> {
    let members = match claims {
        SdValue::Object(members) => members,
        SdValue::Array(_) => return Err(ConcealError::NotAnObject { found: "an array" }),
        SdValue::Plain(value) => {
            return Err(ConcealError::NotAnObject {
                found: json_type(value),
            });
        }
    };
    let mut disclosures = Vec::new();
    let mut concealer = Concealer {
        rng,
        disclosures: &mut disclosures,
    };
    let mut payload = concealer.object(members, "", 0)?;
    payload.insert("_sd_alg".to_owned(), SD_ALG.into());
    Ok((payload, disclosures))
}

/// Conceals `claims` ([`conceal`]), signs the payload with `header` (which must carry
/// `alg: EdDSA`) and returns the issued SD-JWT `<issuer-jwt>~<d1>~…~<dN>~`.
///
/// # Errors
///
/// The errors of [`conceal`], and [`ConcealError::Sign`].
pub fn issue<R: RngCore + CryptoRng>(
    header: &Map<String, Value>,
    claims: &SdValue,
    key: &SecretKey,
    rng: &mut R,
) -> Result<String, ConcealError> {
    let (payload, disclosures) = conceal(claims, rng)?;
    let jwt = jws::sign_compact(header, &payload, key).map_err(ConcealError::Sign)?;
    let mut out = jwt;
    out.push('~');
    for disclosure in &disclosures {
        out.push_str(disclosure.as_str());
        out.push('~');
    }
    Ok(out)
}

struct Concealer<'r, R> {
    rng: &'r mut R,
    disclosures: &'r mut Vec<Disclosure>,
}

impl<R: RngCore + CryptoRng> Concealer<'_, R> {
    fn object(
        &mut self,
        members: &[(String, SdMember)],
        path: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, ConcealError> {
        let depth = enter_conceal(depth)?;
        let mut out = Map::new();
        let mut digests = Vec::new();
        let mut names = HashSet::new();
        for (name, member) in members {
            let member_path = child(path, name);
            if is_reserved(name) {
                return Err(ConcealError::ReservedName { path: member_path });
            }
            if !names.insert(name.as_str()) {
                return Err(ConcealError::DuplicateName { path: member_path });
            }
            let value = self.value(&member.value, &member_path, depth)?;
            if member.disclosable {
                let disclosure = Disclosure::new(self.salt(), Some(name), value);
                digests.push(Value::String(disclosure.digest().to_owned()));
                self.disclosures.push(disclosure);
            } else {
                out.insert(name.clone(), value);
            }
        }
        if !digests.is_empty() {
            for _ in 0..self.rng.gen_range(1..=3usize) {
                let mut random = [0u8; 32];
                self.rng.fill_bytes(&mut random);
                digests.push(Value::String(b64url(&sha256(&random))));
            }
            digests.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            out.insert("_sd".to_owned(), Value::Array(digests));
        }
        Ok(out)
    }

    fn value(&mut self, value: &SdValue, path: &str, depth: usize) -> Result<Value, ConcealError> {
        match value {
            SdValue::Plain(value) => {
                check_plain(value, path, depth)?;
                Ok(value.clone())
            }
            SdValue::Object(members) => Ok(Value::Object(self.object(members, path, depth)?)),
            SdValue::Array(items) => {
                let depth = enter_conceal(depth)?;
                let mut out = Vec::with_capacity(items.len());
                for (position, item) in items.iter().enumerate() {
                    let item_path = child(path, &position.to_string());
                    let value = self.value(&item.value, &item_path, depth)?;
                    if item.disclosable {
                        let disclosure = Disclosure::new(self.salt(), None, value);
                        let mut placeholder = Map::new();
                        placeholder.insert("...".to_owned(), disclosure.digest().into());
                        out.push(Value::Object(placeholder));
                        self.disclosures.push(disclosure);
                    } else {
                        out.push(value);
                    }
                }
                Ok(Value::Array(out))
            }
        }
    }

    fn salt(&mut self) -> String {
        let mut salt = [0u8; 16];
        self.rng.fill_bytes(&mut salt);
        b64url(&salt)
    }
}

fn is_reserved(name: &str) -> bool {
    matches!(name, "_sd" | "..." | "_sd_alg")
}

fn enter_conceal(depth: usize) -> Result<usize, ConcealError> {
    if depth >= MAX_DEPTH {
        return Err(ConcealError::TooDeep { max: MAX_DEPTH });
    }
    Ok(depth + 1)
}

/// Refuses nulls and reserved names inside a plain value.
fn check_plain(value: &Value, path: &str, depth: usize) -> Result<(), ConcealError> {
    match value {
        Value::Null => Err(ConcealError::NullClaim {
            path: path.to_owned(),
        }),
        Value::Array(items) => {
            let depth = enter_conceal(depth)?;
            for (position, item) in items.iter().enumerate() {
                check_plain(item, &child(path, &position.to_string()), depth)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let depth = enter_conceal(depth)?;
            for (name, item) in map {
                let item_path = child(path, name);
                if is_reserved(name) {
                    return Err(ConcealError::ReservedName { path: item_path });
                }
                check_plain(item, &item_path, depth)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
