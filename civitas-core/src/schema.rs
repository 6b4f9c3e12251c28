//! Credential type schemas: the classification of every claim, the derived (masked)
//! claims, the check-digit rules, and the `vct#integrity` pin.
//!
//! A credential type is described by one JSON Schema (draft 2020-12) document in
//! `schemas/<Type>.schema.json`. Besides the standard keywords that validate the claim set
//! (the issuer does that with the `jsonschema` crate; this module is pure and does not
//! depend on it), the document carries these custom keywords, which validators ignore:
//!
//! | keyword | where | meaning |
//! | --- | --- | --- |
//! | `vct` | top level | the credential type URI, stable, never fetched |
//! | `x-display` | top level, any claim, any derived claim | `[{"locale", "name", "description"?}]` |
//! | `x-classification` | every claim, array `items` included | `public`, `internal`, `sensitive` or `core` |
//! | `x-derived` | top level | derived claims computed at issuance (see [`CredentialSchema::plan`]) |
//! | `x-check` | a string claim | `gb11643` (identity number) or `gb32100` (unified social credit code) |
//! | `x-birth-date` | beside `"x-check": "gb11643"` | the claim (dotted path) that must equal the number's birth date |
//!
//! The schema describes only the subject claims an operator supplies: the claims of the
//! SD-JWT VC itself ([`REGISTERED_CLAIMS`]) are never in it. Every object is closed
//! (`additionalProperties: false`), so each claim that can occur has a classification.
//!
//! ```text
//!  bytes ──CredentialSchema::parse──▶ schema ──integrity()──▶ "sha256-…" (vct#integrity)
//!  claims ──(issuer: jsonschema + validate_claim_checks)──▶ valid claims
//!  valid claims ──plan(claims, issued_on)──▶ DisclosurePlan (core removed, derived added,
//!                                              each claim plain or disclosable) ──▶ SD-JWT
//! ```
//!
//! ```
//! use civitas_core::ledger::Classification;
//! use civitas_core::schema::{ClaimPath, CredentialSchema};
//!
//! let schema = CredentialSchema::parse(br#"{
//!   "$schema": "https://json-schema.org/draft/2020-12/schema",
//!   "vct": "https://schemas.example/vct/Member/v1",
//!   "x-display": [{"locale": "en-US", "name": "Member"}],
//!   "type": "object", "additionalProperties": false,
//!   "properties": {
//!     "name": {"type": "string", "x-classification": "sensitive"},
//!     "birth_date": {"type": "string", "format": "date", "x-classification": "core"}
//!   },
//!   "x-derived": {"age_over_18": {"from": "birth_date", "rule": "age-at-least", "years": 18,
//!                                  "x-classification": "internal"}}
//! }"#).unwrap();
//! let path: ClaimPath = "age_over_18".parse().unwrap();
//! assert_eq!(schema.classification_of(&path), Some(Classification::Internal));
//!
//! let claims = serde_json::json!({"name": "Li Hua", "birth_date": "2008-05-01"});
//! let issued_on = chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
//! let plan = schema.plan(claims.as_object().unwrap(), issued_on).unwrap();
//! assert_eq!(
//!     plan.to_claims(),
//!     *serde_json::json!({"name": "Li Hua", "age_over_18": true}).as_object().unwrap()
//! );
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike as _, NaiveDate};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::encoding;
use crate::ledger::Classification;
use crate::problem::{self, ProblemType};

/// The JSON Schema dialect every credential schema must declare in `$schema`.
pub const SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The claims of the SD-JWT VC itself. They are never selectively disclosable and never part
/// of a schema's claim set.
pub const REGISTERED_CLAIMS: &[&str] = &[
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

/// Keywords that would let claims exist without a classification of their own, or that
/// this module does not follow; a claim definition that uses one is refused.
const UNSUPPORTED_KEYWORDS: &[&str] = &["$ref", "$dynamicRef", "patternProperties", "prefixItems"];

/// The longest text of a `vct`, a claim name or a label that a schema may carry.
const MAX_TEXT: usize = 512;

/// The most characters a mask rule may keep at either end.
const MAX_MASK_KEEP: u64 = 64;

/// The highest age an `age-at-least` rule may ask about.
const MAX_AGE_YEARS: u64 = 150;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Why a schema document, or a set of them, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The bytes are not JSON.
    #[error("expected a JSON schema document, found invalid JSON: {0}")]
    Json(String),
    /// `$schema` is missing or names another dialect.
    #[error("expected \"$schema\": \"{SCHEMA_DIALECT}\", found {0}")]
    Dialect(String),
    /// `vct` is missing or not an absolute URI.
    #[error("expected a top-level \"vct\" holding an absolute URI, found {0}")]
    Vct(String),
    /// A keyword holds a value of the wrong form.
    #[error("at {at}: expected {expected}, found {found}")]
    Keyword {
        /// Where in the schema (a claim path, or `(schema)` for the top level).
        at: String,
        /// What the keyword must hold.
        expected: &'static str,
        /// What it holds.
        found: String,
    },
    /// A claim has no `x-classification`.
    #[error("claim {0} has no x-classification (expected public, internal, sensitive or core)")]
    MissingClassification(String),
    /// A claim name that is not snake_case or is a registered JWT claim.
    #[error("expected a snake_case claim name that is not a registered JWT claim, found {0:?}")]
    ClaimName(String),
    /// A claim definition uses a keyword this module does not follow.
    #[error("claim {claim} uses {keyword}, which credential schemas do not support")]
    Unsupported {
        /// The claim.
        claim: String,
        /// The keyword.
        keyword: &'static str,
    },
    /// An object claim is open to claims the schema does not list.
    #[error("object {0} must have \"additionalProperties\": false, so every claim is classified")]
    OpenObject(String),
    /// A member is classified below its container, which would disclose it at the
    /// container's level.
    #[error("claim {claim} is classified {member:?}, below its container's {container:?}")]
    BelowContainer {
        /// The member.
        claim: String,
        /// Its classification.
        member: Classification,
        /// Its container's classification.
        container: Classification,
    },
    /// A derived claim declaration is invalid.
    #[error("derived claim {name}: {reason}")]
    Derived {
        /// The derived claim.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A schema file name that is not `<Type>.schema.json`.
    #[error(
        "expected a schema file named <Type>.schema.json (Type in UpperCamelCase), found {0:?}"
    )]
    FileName(String),
    /// A schema in a set does not parse.
    #[error("{file}: {source}")]
    InFile {
        /// The file name.
        file: String,
        /// Why it is refused.
        source: Box<Self>,
    },
    /// Two schemas of a set declare the same `vct` or the same type name.
    #[error("expected each credential type once, found {0} twice")]
    Duplicate(String),
}

impl SchemaError {
    /// The problem type of this error: schemas are the operator's configuration, so a
    /// broken one is an internal error of the service that loads it.
    pub fn problem(&self) -> ProblemType {
        problem::INTERNAL
    }
}

/// Why a `vct#integrity` value does not pin this schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// Not a single `sha256-<base64>` integrity metadata value.
    #[error("expected vct#integrity as sha256-<base64 with padding>, found {0:?}")]
    Malformed(String),
    /// A well-formed value for other bytes.
    #[error("expected vct#integrity {expected}, found {found}")]
    Mismatch {
        /// The integrity of the schema held.
        expected: String,
        /// The value presented.
        found: String,
    },
}

impl IntegrityError {
    /// The problem type of this error.
    pub fn problem(&self) -> ProblemType {
        problem::VCT_INTEGRITY_MISMATCH
    }
}

/// Why a claim set does not fit a schema's claim tree, or a derived claim cannot be
/// computed. Messages never carry claim values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// A claim the schema does not define.
    #[error("claim {0} is not defined by the schema")]
    Unknown(String),
    /// A claim whose JSON type does not match its definition.
    #[error("claim {path}: expected {expected}, found another JSON type")]
    Shape {
        /// The claim.
        path: String,
        /// The JSON type required.
        expected: &'static str,
    },
    /// A core claim in a claim set that must not hold one (a credential, a presentation).
    #[error("claim {0} is core data and never leaves the issuer")]
    Core(String),
    /// A derived claim's source does not suit its rule.
    #[error("derived claim {name}: {reason}")]
    Derive {
        /// The derived claim.
        name: String,
        /// What is wrong (without the value).
        reason: &'static str,
    },
}

impl ClaimsError {
    /// The problem type of this error.
    pub fn problem(&self) -> ProblemType {
        problem::SCHEMA_VIOLATION
    }
}

/// Why an identifier fails its national standard's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckDigitError {
    /// The wrong number of characters.
    #[error("expected {expected} characters, found {found}")]
    Length {
        /// The length required.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A character outside the set allowed at its position (1-based).
    #[error("expected {expected} at position {position}, found another character")]
    Character {
        /// The 1-based position.
        position: usize,
        /// What is allowed there.
        expected: &'static str,
    },
    /// The birth date in an identity number is not a calendar date.
    #[error("expected a calendar date in positions 7 to 14 (GB 11643), found an impossible date")]
    BirthDate,
    /// The check character does not match.
    #[error("expected the check character computed by {standard}, found another character")]
    CheckCharacter {
        /// The standard and algorithm.
        standard: &'static str,
    },
}

impl CheckDigitError {
    /// The problem type of this error.
    pub fn problem(&self) -> ProblemType {
        problem::SCHEMA_VIOLATION
    }
}

/// A claim path that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a claim path such as \"address.region_code\" or \"courses[].grade\", found {0:?}"
)]
pub struct ParseClaimPathError(String);

// ---------------------------------------------------------------------------------------
// Claim paths, labels, violations
// ---------------------------------------------------------------------------------------

/// One step of a [`ClaimPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PathSegment {
    /// An object member.
    Name(String),
    /// One array element (0-based).
    Index(usize),
    /// Every element of an array (`null` in a claims path pointer).
    AllElements,
}

/// The path of a claim, as the SD-JWT VC and OpenID4VCI claims path pointer: it serializes
/// to a JSON array of names, indices and `null` (all elements), e.g.
/// `["courses", null, "grade"]`. Its text form, used in schemas and messages, is dotted:
/// `address.region_code`, `courses[].grade`, `courses[2].grade`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimPath(Vec<PathSegment>);

impl ClaimPath {
    /// The path of a top-level claim.
    pub fn top(name: &str) -> Self {
        Self(vec![PathSegment::Name(name.to_owned())])
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// The path extended by one segment.
    fn child(&self, segment: PathSegment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Name(name) if i == 0 => f.write_str(name)?,
                PathSegment::Name(name) => write!(f, ".{name}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::AllElements => f.write_str("[]")?,
            }
        }
        Ok(())
    }
}

impl FromStr for ClaimPath {
    type Err = ParseClaimPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseClaimPathError(s.chars().take(80).collect());
        let mut segments = Vec::new();
        for part in s.split('.') {
            let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
            if !is_claim_name(name) {
                return Err(err());
            }
            segments.push(PathSegment::Name(name.to_owned()));
            while let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']').ok_or_else(err)?;
                let inner = &after[..close];
                segments.push(if inner.is_empty() {
                    PathSegment::AllElements
                } else if inner.bytes().all(|b| b.is_ascii_digit())
                    && (inner == "0" || !inner.starts_with('0'))
                {
                    PathSegment::Index(inner.parse().map_err(|_| err())?)
                } else {
                    return Err(err());
                });
                rest = &after[close + 1..];
            }
            if !rest.is_empty() {
                return Err(err());
            }
        }
        Ok(Self(segments))
    }
}

impl Serialize for ClaimPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for segment in &self.0 {
            match segment {
                PathSegment::Name(name) => seq.serialize_element(name)?,
                PathSegment::Index(index) => seq.serialize_element(index)?,
                PathSegment::AllElements => seq.serialize_element(&Option::<()>::None)?,
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for ClaimPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathVisitor;

        impl<'de> Visitor<'de> for PathVisitor {
            type Value = ClaimPath;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-empty array of claim names, indices and null")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClaimPath, A::Error> {
                let mut segments = Vec::new();
                while let Some(item) = seq.next_element::<Value>()? {
                    let segment = match item {
                        Value::Null => PathSegment::AllElements,
                        Value::String(name) => PathSegment::Name(name),
                        Value::Number(n) => {
                            let index = n.as_u64().and_then(|i| usize::try_from(i).ok());
                            PathSegment::Index(index.ok_or_else(|| {
                                de::Error::custom("expected a non-negative array index")
                            })?)
                        }
                        _ => {
                            return Err(de::Error::custom(
                                "expected a claim name, an index or null",
                            ));
                        }
                    };
                    segments.push(segment);
                }
                match segments.first() {
                    Some(PathSegment::Name(_)) => Ok(ClaimPath(segments)),
                    _ => Err(de::Error::custom(
                        "expected a path starting with a claim name",
                    )),
                }
            }
        }

        deserializer.deserialize_seq(PathVisitor)
    }
}

/// A display label in one locale, as OpenID4VCI's `display` objects carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// A BCP 47 language tag, e.g. `zh-CN`.
    pub locale: String,
    /// The name shown.
    pub name: String,
    /// A longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One reason a claim set is refused: where (a JSON pointer into the claim set) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// A JSON pointer (RFC 6901) to the offending value; empty for the whole claim set.
    pub path: String,
    /// What was expected and what was found, without the value itself.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(claims): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A claim a schema defines, with what a wallet or an issuer's metadata shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimInfo {
    /// Where the claim sits (array elements as [`PathSegment::AllElements`]).
    pub path: ClaimPath,
    /// Its classification.
    pub classification: Classification,
    /// Its labels.
    pub display: Vec<Label>,
    /// Whether the issuer computes it (an `x-derived` claim) rather than receiving it.
    pub derived: bool,
}

impl ClaimInfo {
    /// Whether the claim can appear in a credential (it is not core data).
    pub fn issued(&self) -> bool {
        self.classification != Classification::Core
    }
}

// ---------------------------------------------------------------------------------------
// The schema
// ---------------------------------------------------------------------------------------

/// A national identifier check named by `x-check`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// GB 11643 citizen identity number, optionally tied to a birth date claim.
    Gb11643 { birth_date: Option<ClaimPath> },
    /// GB 32100 unified social credit code.
    Gb32100,
}

/// A claim definition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    classification: Classification,
    display: Vec<Label>,
    check: Option<Check>,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Leaf,
    Object(Vec<(String, Node)>),
    Array(Box<Node>),
}

/// The level of an administrative division code (GB/T 2260) a `division` rule keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DivisionLevel {
    /// `ab0000`.
    Province,
    /// `abcd00`.
    Prefecture,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `true` iff the person born on the source date is at least this old on the issuance
    /// date.
    AgeAtLeast(u32),
    /// The source string with all but the first and last characters replaced by `*`.
    Mask { keep_start: usize, keep_end: usize },
    /// The source value itself.
    Copy,
    /// The source division code cut to a higher level.
    Division(DivisionLevel),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Derived {
    name: String,
    from: ClaimPath,
    rule: Rule,
    classification: Classification,
    display: Vec<Label>,
}

/// A parsed credential type schema. It keeps the exact document bytes, which
/// [`integrity`](Self::integrity) pins.
#[derive(Debug, Clone)]
pub struct CredentialSchema {
    vct: String,
    title: Option<String>,
    display: Vec<Label>,
    properties: Vec<(String, Node)>,
    derived: Vec<Derived>,
    claims: Vec<ClaimInfo>,
    document: Value,
    bytes: Vec<u8>,
    /// `sha256-<base64>` of `bytes`, computed once: verifiers compare it on every request.
    integrity: String,
}

impl CredentialSchema {
    /// Parses a schema document: its `vct`, labels, every claim's classification (nested
    /// object members and array `items` included), checks and derived claims.
    pub fn parse(bytes: &[u8]) -> Result<Self, SchemaError> {
        let document: Value =
            serde_json::from_slice(bytes).map_err(|e| SchemaError::Json(e.to_string()))?;
        let top = document.as_object().ok_or_else(|| SchemaError::Keyword {
            at: "(schema)".into(),
            expected: "a JSON object",
            found: json_type(&document).into(),
        })?;
        match top.get("$schema") {
            Some(Value::String(s)) if s == SCHEMA_DIALECT => {}
            Some(other) => return Err(SchemaError::Dialect(shown(other))),
            None => return Err(SchemaError::Dialect("no $schema".into())),
        }
        let vct = match top.get("vct") {
            Some(Value::String(s)) if is_absolute_uri(s) => s.clone(),
            Some(other) => return Err(SchemaError::Vct(shown(other))),
            None => return Err(SchemaError::Vct("no vct".into())),
        };
        let title = match top.get("title") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => return Err(keyword_error("(schema)", "title", "a string", other)),
        };
        let display = labels("(schema)", top.get("x-display"))?;
        if display.is_empty() {
            return Err(SchemaError::Keyword {
                at: "(schema)".into(),
                expected: "x-display with at least one label",
                found: "none".into(),
            });
        }
        if top.get("type") != Some(&Value::String("object".into())) {
            return Err(keyword_error(
                "(schema)",
                "type",
                "\"object\"",
                top.get("type").unwrap_or(&Value::Null),
            ));
        }
        if top.contains_key("x-classification") {
            return Err(SchemaError::Keyword {
                at: "(schema)".into(),
                expected: "no x-classification on the claim set itself",
                found: "one".into(),
            });
        }
        for keyword in UNSUPPORTED_KEYWORDS {
            if top.contains_key(*keyword) {
                return Err(SchemaError::Unsupported {
                    claim: "(schema)".into(),
                    keyword,
                });
            }
        }
        let properties = object_members(&ClaimPath(Vec::new()), top, None)?;
        for (name, _) in &properties {
            if REGISTERED_CLAIMS.contains(&name.as_str()) {
                return Err(SchemaError::ClaimName(name.clone()));
            }
        }
        let mut schema = Self {
            vct,
            title,
            display,
            properties,
            derived: Vec::new(),
            claims: Vec::new(),
            document: Value::Null,
            bytes: bytes.to_vec(),
            integrity: format!("sha256-{}", encoding::b64(&encoding::sha256(bytes))),
        };
        schema.check_birth_date_links()?;
        schema.derived = schema.derived_claims(top.get("x-derived"))?;
        let mut claims = Vec::new();
        flatten(&ClaimPath(Vec::new()), &schema.properties, &mut claims);
        claims.extend(schema.derived.iter().map(|d| ClaimInfo {
            path: ClaimPath::top(&d.name),
            classification: d.classification,
            display: d.display.clone(),
            derived: true,
        }));
        schema.claims = claims;
        schema.document = document;
        Ok(schema)
    }

    /// The credential type URI (`vct`).
    pub fn vct(&self) -> &str {
        &self.vct
    }

    /// The schema's `title`, if it has one.
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// The credential type's labels (top-level `x-display`).
    pub fn display(&self) -> &[Label] {
        &self.display
    }

    /// The exact document bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The document as JSON, for a validator to compile.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Every claim the schema defines, in document order, derived claims last; containers
    /// come before their members, and array elements appear as `name[]`.
    pub fn claims(&self) -> &[ClaimInfo] {
        &self.claims
    }

    /// The highest classification a credential of this type can carry (core claims never
    /// appear in one): what the issuer's accreditation `maxLevel` must allow.
    pub fn credential_level(&self) -> Classification {
        self.claims
            .iter()
            .filter(|c| c.issued())
            .map(|c| c.classification)
            .max()
            .unwrap_or(Classification::Public)
    }

    /// The Subresource Integrity value of the document bytes, `sha256-<base64>`: what a
    /// credential's `vct#integrity` carries.
    pub fn integrity(&self) -> String {
        self.integrity.clone()
    }

    /// Checks a `vct#integrity` value against the document bytes. Only a single
    /// `sha256-<base64>` value is accepted, which is what Civitas issuers emit.
    pub fn check_integrity(&self, sri: &str) -> Result<(), IntegrityError> {
        let malformed = || IntegrityError::Malformed(sri.chars().take(100).collect());
        let digest = sri.strip_prefix("sha256-").ok_or_else(malformed)?;
        encoding::b64_hash(digest).map_err(|_| malformed())?;
        if sri == self.integrity {
            Ok(())
        } else {
            Err(IntegrityError::Mismatch {
                expected: self.integrity.clone(),
                found: sri.to_owned(),
            })
        }
    }

    /// The classification of the claim at `path` (indices and "all elements" alike reach
    /// array items), or `None` if the schema does not define it.
    pub fn classification_of(&self, path: &ClaimPath) -> Option<Classification> {
        if let [PathSegment::Name(name)] = path.segments()
            && let Some(d) = self.derived.iter().find(|d| &d.name == name)
        {
            return Some(d.classification);
        }
        self.node(path).map(|n| n.classification)
    }

    fn node(&self, path: &ClaimPath) -> Option<&Node> {
        let (first, rest) = path.segments().split_first()?;
        let PathSegment::Name(name) = first else {
            return None;
        };
        let mut node = member(&self.properties, name)?;
        for segment in rest {
            node = match (segment, &node.shape) {
                (PathSegment::Name(name), Shape::Object(members)) => member(members, name)?,
                (PathSegment::Index(_) | PathSegment::AllElements, Shape::Array(items)) => items,
                _ => return None,
            };
        }
        Some(node)
    }

    /// What the issuer puts in a credential for a validated claim set: core claims removed,
    /// derived claims computed for `issued_on` and added (each its own claim), every claim
    /// with its classification and whether it is plain (`public`) or selectively
    /// disclosable (everything else). Members and array elements are planned one by one.
    ///
    /// `issued_on` is the issuance date in the civil time zone of the claims' dates:
    /// [`civil_date`] of `iat` (China Standard Time). Age rules count whole years: a person reaches age N on the
    /// N-th anniversary of the birth date; for a birth on 29 February the anniversary in a
    /// common year is 1 March (the N years are complete only at the end of 28 February).
    pub fn plan(
        &self,
        claims: &Map<String, Value>,
        issued_on: NaiveDate,
    ) -> Result<DisclosurePlan, ClaimsError> {
        let mut planned = plan_members(&ClaimPath(Vec::new()), &self.properties, claims)?;
        for derived in &self.derived {
            let Some(source) = lookup(claims, &derived.from) else {
                continue;
            };
            let value = derive(derived, source, issued_on)?;
            planned.push((
                derived.name.clone(),
                PlannedClaim::leaf(value, derived.classification),
            ));
        }
        Ok(DisclosurePlan { claims: planned })
    }

    /// The highest classification among the claims present in `disclosed` (a credential's
    /// or a presentation's processed claim set; [`REGISTERED_CLAIMS`] are skipped), or
    /// `None` if it holds no subject claim. A claim the schema does not define, or a core
    /// claim, is refused.
    pub fn disclosed_level(
        &self,
        disclosed: &Map<String, Value>,
    ) -> Result<Option<Classification>, ClaimsError> {
        let mut level = None;
        for (name, value) in disclosed {
            if REGISTERED_CLAIMS.contains(&name.as_str()) {
                continue;
            }
            let path = ClaimPath::top(name);
            if let Some(d) = self.derived.iter().find(|d| &d.name == name) {
                level = level.max(Some(d.classification));
                continue;
            }
            let node = member(&self.properties, name)
                .ok_or_else(|| ClaimsError::Unknown(path.to_string()))?;
            level = level.max(Some(node_level(&path, node, value)?));
        }
        Ok(level)
    }

    fn check_birth_date_links(&self) -> Result<(), SchemaError> {
        for info in flattened(&self.properties) {
            let Some(node) = self.node(&info.path) else {
                continue;
            };
            if let Some(Check::Gb11643 {
                birth_date: Some(target),
            }) = &node.check
            {
                let ok = self
                    .node(target)
                    .is_some_and(|n| n.shape == Shape::Leaf && !in_array(target));
                if !ok {
                    return Err(SchemaError::Keyword {
                        at: info.path.to_string(),
                        expected: "x-birth-date naming a scalar claim outside arrays",
                        found: target.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn derived_claims(&self, declared: Option<&Value>) -> Result<Vec<Derived>, SchemaError> {
        let Some(declared) = declared else {
            return Ok(Vec::new());
        };
        let declared = declared.as_object().ok_or_else(|| {
            keyword_error(
                "(schema)",
                "x-derived",
                "an object of declarations",
                declared,
            )
        })?;
        let mut out = Vec::new();
        for (name, decl) in declared {
            let fail = |reason: String| SchemaError::Derived {
                name: name.clone(),
                reason,
            };
            if !is_claim_name(name) || REGISTERED_CLAIMS.contains(&name.as_str()) {
                return Err(SchemaError::ClaimName(name.clone()));
            }
            if member(&self.properties, name).is_some() {
                return Err(fail(
                    "expected a name no supplied claim has, found a clash".into(),
                ));
            }
            let decl = decl
                .as_object()
                .ok_or_else(|| fail(format!("expected an object, found {}", json_type(decl))))?;
            let text = |key: &str| -> Result<&str, SchemaError> {
                decl.get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail(format!("expected \"{key}\" holding a string")))
            };
            let count = |key: &str, max: u64| -> Result<u64, SchemaError> {
                decl.get(key)
                    .and_then(Value::as_u64)
                    .filter(|n| *n <= max)
                    .ok_or_else(|| fail(format!("expected \"{key}\" holding an integer 0..={max}")))
            };
            let from: ClaimPath = text("from")?
                .parse()
                .map_err(|e: ParseClaimPathError| fail(e.to_string()))?;
            let scalar = self
                .node(&from)
                .is_some_and(|n| n.shape == Shape::Leaf && !in_array(&from));
            if !scalar {
                return Err(fail(format!(
                    "expected \"from\" to name a scalar claim outside arrays, found {from}"
                )));
            }
            let (rule, params): (Rule, &[&str]) = match text("rule")? {
                "age-at-least" => {
                    let years = count("years", MAX_AGE_YEARS)?;
                    let years = u32::try_from(years)
                        .ok()
                        .filter(|y| *y > 0)
                        .ok_or_else(|| fail("expected \"years\" of at least 1".into()))?;
                    (Rule::AgeAtLeast(years), &["years"])
                }
                "mask" => {
                    let keep_start = count("keep-start", MAX_MASK_KEEP)?;
                    let keep_end = count("keep-end", MAX_MASK_KEEP)?;
                    (
                        Rule::Mask {
                            keep_start: usize::try_from(keep_start).unwrap_or(0),
                            keep_end: usize::try_from(keep_end).unwrap_or(0),
                        },
                        &["keep-start", "keep-end"],
                    )
                }
                "copy" => (Rule::Copy, &[]),
                "division" => {
                    let level = match text("level")? {
                        "province" => DivisionLevel::Province,
                        "prefecture" => DivisionLevel::Prefecture,
                        other => {
                            return Err(fail(format!(
                                "expected \"level\" province or prefecture, found {other:?}"
                            )));
                        }
                    };
                    (Rule::Division(level), &["level"])
                }
                other => {
                    return Err(fail(format!(
                        "expected rule age-at-least, mask, copy or division, found {other:?}"
                    )));
                }
            };
            for key in decl.keys() {
                let known = [
                    "from",
                    "rule",
                    "x-classification",
                    "x-display",
                    "description",
                ];
                if !known.contains(&key.as_str()) && !params.contains(&key.as_str()) {
                    return Err(fail(format!("unexpected member {key:?}")));
                }
            }
            let classification = classification(&ClaimPath::top(name), decl)?;
            if classification == Classification::Core {
                return Err(fail(
                    "expected a classification below core, found core".into(),
                ));
            }
            let display = labels(name, decl.get("x-display"))?;
            out.push(Derived {
                name: name.clone(),
                from,
                rule,
                classification,
                display,
            });
        }
        Ok(out)
    }
}

fn member<'a>(members: &'a [(String, Node)], name: &str) -> Option<&'a Node> {
    members
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, node)| node)
}

fn in_array(path: &ClaimPath) -> bool {
    path.segments()
        .iter()
        .any(|s| !matches!(s, PathSegment::Name(_)))
}

fn flattened(properties: &[(String, Node)]) -> Vec<ClaimInfo> {
    let mut out = Vec::new();
    flatten(&ClaimPath(Vec::new()), properties, &mut out);
    out
}

fn flatten(parent: &ClaimPath, members: &[(String, Node)], out: &mut Vec<ClaimInfo>) {
    for (name, node) in members {
        flatten_node(parent.child(PathSegment::Name(name.clone())), node, out);
    }
}

fn flatten_node(path: ClaimPath, node: &Node, out: &mut Vec<ClaimInfo>) {
    out.push(ClaimInfo {
        path: path.clone(),
        classification: node.classification,
        display: node.display.clone(),
        derived: false,
    });
    match &node.shape {
        Shape::Leaf => {}
        Shape::Object(members) => flatten(&path, members, out),
        Shape::Array(items) => flatten_node(path.child(PathSegment::AllElements), items, out),
    }
}

/// Parses the `properties` of an object schema (the claim set or an object claim).
fn object_members(
    path: &ClaimPath,
    schema: &Map<String, Value>,
    container: Option<Classification>,
) -> Result<Vec<(String, Node)>, SchemaError> {
    let at = at(path);
    if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
        return Err(SchemaError::OpenObject(at));
    }
    let properties = match schema.get("properties") {
        None => return Ok(Vec::new()),
        Some(Value::Object(p)) => p,
        Some(other) => return Err(keyword_error(&at, "properties", "an object", other)),
    };
    let mut out = Vec::with_capacity(properties.len());
    for (name, definition) in properties {
        if !is_claim_name(name) {
            return Err(SchemaError::ClaimName(name.clone()));
        }
        let child = path.child(PathSegment::Name(name.clone()));
        out.push((name.clone(), parse_node(&child, definition, container)?));
    }
    Ok(out)
}

fn parse_node(
    path: &ClaimPath,
    definition: &Value,
    container: Option<Classification>,
) -> Result<Node, SchemaError> {
    let at = at(path);
    let schema = definition
        .as_object()
        .ok_or_else(|| keyword_error(&at, "(definition)", "an object schema", definition))?;
    for keyword in UNSUPPORTED_KEYWORDS {
        if schema.contains_key(*keyword) {
            return Err(SchemaError::Unsupported { claim: at, keyword });
        }
    }
    let classification = classification(path, schema)?;
    if let Some(container) = container
        && classification < container
    {
        return Err(SchemaError::BelowContainer {
            claim: at,
            member: classification,
            container,
        });
    }
    let display = labels(&at, schema.get("x-display"))?;
    let check = match schema.get("x-check") {
        None => {
            if schema.contains_key("x-birth-date") {
                return Err(SchemaError::Keyword {
                    at,
                    expected: "x-birth-date only beside \"x-check\": \"gb11643\"",
                    found: "no x-check".into(),
                });
            }
            None
        }
        Some(Value::String(s)) if s == "gb11643" => {
            let birth_date = match schema.get("x-birth-date") {
                None => None,
                Some(Value::String(target)) => Some(target.parse().map_err(
                    |e: ParseClaimPathError| SchemaError::Keyword {
                        at: at.clone(),
                        expected: "x-birth-date holding a claim path",
                        found: e.to_string(),
                    },
                )?),
                Some(other) => {
                    return Err(keyword_error(&at, "x-birth-date", "a claim path", other));
                }
            };
            Some(Check::Gb11643 { birth_date })
        }
        Some(Value::String(s)) if s == "gb32100" && !schema.contains_key("x-birth-date") => {
            Some(Check::Gb32100)
        }
        Some(other) => {
            return Err(keyword_error(
                &at,
                "x-check",
                "\"gb11643\" or \"gb32100\"",
                other,
            ));
        }
    };
    let kind = schema.get("type").and_then(Value::as_str);
    let shape = match kind {
        Some("object") => Shape::Object(object_members(path, schema, Some(classification))?),
        Some("array") => {
            let items = schema.get("items").ok_or_else(|| SchemaError::Keyword {
                at: at.clone(),
                expected: "items defining the elements",
                found: "none".into(),
            })?;
            let items_path = path.child(PathSegment::AllElements);
            Shape::Array(Box::new(parse_node(
                &items_path,
                items,
                Some(classification),
            )?))
        }
        _ => {
            for keyword in ["properties", "items"] {
                if schema.contains_key(keyword) {
                    return Err(SchemaError::Keyword {
                        at,
                        expected: "\"type\": \"object\" or \"array\" beside properties or items",
                        found: kind.map_or_else(|| "no type".into(), |k| format!("{k:?}")),
                    });
                }
            }
            Shape::Leaf
        }
    };
    if check.is_some() && (shape != Shape::Leaf || kind != Some("string")) {
        return Err(SchemaError::Keyword {
            at,
            expected: "x-check only on a claim of \"type\": \"string\"",
            found: kind.map_or_else(|| "no type".into(), |k| format!("{k:?}")),
        });
    }
    Ok(Node {
        classification,
        display,
        check,
        shape,
    })
}

fn classification(
    path: &ClaimPath,
    schema: &Map<String, Value>,
) -> Result<Classification, SchemaError> {
    match schema.get("x-classification") {
        None => Err(SchemaError::MissingClassification(path.to_string())),
        Some(Value::String(s)) => s.parse().map_err(|e: String| SchemaError::Keyword {
            at: path.to_string(),
            expected: "x-classification public, internal, sensitive or core",
            found: e,
        }),
        Some(other) => Err(keyword_error(
            &path.to_string(),
            "x-classification",
            "a string",
            other,
        )),
    }
}

fn labels(at: &str, value: Option<&Value>) -> Result<Vec<Label>, SchemaError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let labels: Vec<Label> = serde_json::from_value(value.clone())
        .map_err(|_| keyword_error(at, "x-display", "[{locale, name, description?}]", value))?;
    for (i, label) in labels.iter().enumerate() {
        let locale_ok = !label.locale.is_empty()
            && label.locale.len() <= 35
            && label
                .locale
                .split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !locale_ok
            || label.name.trim().is_empty()
            || label.name.len() > MAX_TEXT
            || labels[..i].iter().any(|l| l.locale == label.locale)
        {
            return Err(SchemaError::Keyword {
                at: at.to_owned(),
                expected: "x-display labels with distinct BCP 47 locales and non-empty names",
                found: format!("{:?}", label.locale),
            });
        }
    }
    Ok(labels)
}

fn keyword_error(at: &str, keyword: &str, expected: &'static str, found: &Value) -> SchemaError {
    SchemaError::Keyword {
        at: format!("{at} {keyword}"),
        expected,
        found: shown(found),
    }
}

fn at(path: &ClaimPath) -> String {
    if path.segments().is_empty() {
        "(schema)".into()
    } else {
        path.to_string()
    }
}

fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `snake_case`: a lower-case ASCII letter, then lower-case letters, digits and `_`.
fn is_claim_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// An absolute URI (RFC 3986 scheme, then `:` and a non-empty rest) without whitespace.
fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    text.len() <= MAX_TEXT
        && scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && text.bytes().all(|b| b.is_ascii_graphic())
}

// ---------------------------------------------------------------------------------------
// Disclosure plan
// ---------------------------------------------------------------------------------------

/// The value of a planned claim.
#[derive(Debug, Clone, PartialEq)]
pub enum PlannedValue {
    /// A scalar, or a value the schema does not break down.
    Leaf(Value),
    /// An object whose members are planned one by one, in schema order.
    Object(Vec<(String, PlannedClaim)>),
    /// An array whose elements are planned one by one, in order.
    Array(Vec<PlannedClaim>),
}

/// One claim of a credential: its value, its classification, and whether it is a
/// selective disclosure (every classification but `public`) or a plain claim.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedClaim {
    /// The value.
    pub value: PlannedValue,
    /// The classification.
    pub classification: Classification,
    /// `true` for a selectively disclosable claim, `false` for a plain one.
    pub disclosable: bool,
}

impl PlannedClaim {
    fn new(value: PlannedValue, classification: Classification) -> Self {
        Self {
            value,
            classification,
            disclosable: classification != Classification::Public,
        }
    }

    fn leaf(value: Value, classification: Classification) -> Self {
        Self::new(PlannedValue::Leaf(value), classification)
    }

    /// The value as plain JSON, every member and element included.
    pub fn to_value(&self) -> Value {
        match &self.value {
            PlannedValue::Leaf(v) => v.clone(),
            PlannedValue::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(n, c)| (n.clone(), c.to_value()))
                    .collect(),
            ),
            PlannedValue::Array(items) => Value::Array(items.iter().map(Self::to_value).collect()),
        }
    }

    fn level(&self) -> Classification {
        let inner = match &self.value {
            PlannedValue::Leaf(_) => None,
            PlannedValue::Object(members) => members.iter().map(|(_, c)| c.level()).max(),
            PlannedValue::Array(items) => items.iter().map(Self::level).max(),
        };
        inner.map_or(self.classification, |i| i.max(self.classification))
    }
}

/// The claims of a credential, as the SD-JWT layer is to encode them.
#[derive(Debug, Clone, PartialEq)]
pub struct DisclosurePlan {
    claims: Vec<(String, PlannedClaim)>,
}

impl DisclosurePlan {
    /// The top-level claims: supplied claims in schema order, then derived claims.
    pub fn claims(&self) -> &[(String, PlannedClaim)] {
        &self.claims
    }

    /// The top-level claims, owned.
    pub fn into_claims(self) -> Vec<(String, PlannedClaim)> {
        self.claims
    }

    /// The full claim set as plain JSON, every claim disclosed: what the holder sees and
    /// what the issuer checks its accreditation constraints on.
    pub fn to_claims(&self) -> Map<String, Value> {
        self.claims
            .iter()
            .map(|(n, c)| (n.clone(), c.to_value()))
            .collect()
    }

    /// The highest classification in the plan, or `None` if it is empty.
    pub fn level(&self) -> Option<Classification> {
        self.claims.iter().map(|(_, c)| c.level()).max()
    }
}

fn plan_members(
    parent: &ClaimPath,
    members: &[(String, Node)],
    value: &Map<String, Value>,
) -> Result<Vec<(String, PlannedClaim)>, ClaimsError> {
    if let Some(unknown) = value.keys().find(|k| member(members, k).is_none()) {
        return Err(ClaimsError::Unknown(
            parent.child(PathSegment::Name(unknown.clone())).to_string(),
        ));
    }
    let mut out = Vec::new();
    for (name, node) in members {
        let Some(v) = value.get(name) else {
            continue;
        };
        if node.classification == Classification::Core {
            continue;
        }
        let path = parent.child(PathSegment::Name(name.clone()));
        out.push((name.clone(), plan_node(&path, node, v)?));
    }
    Ok(out)
}

fn plan_node(path: &ClaimPath, node: &Node, value: &Value) -> Result<PlannedClaim, ClaimsError> {
    let planned = match &node.shape {
        Shape::Leaf => PlannedValue::Leaf(value.clone()),
        Shape::Object(members) => {
            let map = value.as_object().ok_or_else(|| ClaimsError::Shape {
                path: path.to_string(),
                expected: "an object",
            })?;
            PlannedValue::Object(plan_members(path, members, map)?)
        }
        Shape::Array(items) => {
            let elements = value.as_array().ok_or_else(|| ClaimsError::Shape {
                path: path.to_string(),
                expected: "an array",
            })?;
            let mut out = Vec::with_capacity(elements.len());
            for (i, element) in elements.iter().enumerate() {
                out.push(plan_node(
                    &path.child(PathSegment::Index(i)),
                    items,
                    element,
                )?);
            }
            PlannedValue::Array(out)
        }
    };
    Ok(PlannedClaim::new(planned, node.classification))
}

fn node_level(path: &ClaimPath, node: &Node, value: &Value) -> Result<Classification, ClaimsError> {
    if node.classification == Classification::Core {
        return Err(ClaimsError::Core(path.to_string()));
    }
    let mut level = node.classification;
    match (&node.shape, value) {
        (Shape::Leaf, _) => {}
        (Shape::Object(members), Value::Object(map)) => {
            for (name, v) in map {
                let child = path.child(PathSegment::Name(name.clone()));
                let m =
                    member(members, name).ok_or_else(|| ClaimsError::Unknown(child.to_string()))?;
                level = level.max(node_level(&child, m, v)?);
            }
        }
        (Shape::Array(items), Value::Array(elements)) => {
            for (i, v) in elements.iter().enumerate() {
                level = level.max(node_level(&path.child(PathSegment::Index(i)), items, v)?);
            }
        }
        (Shape::Object(_), _) => {
            return Err(ClaimsError::Shape {
                path: path.to_string(),
                expected: "an object",
            });
        }
        (Shape::Array(_), _) => {
            return Err(ClaimsError::Shape {
                path: path.to_string(),
                expected: "an array",
            });
        }
    }
    Ok(level)
}

/// The value at a path of names (no array steps) in a claim set.
fn lookup<'a>(claims: &'a Map<String, Value>, path: &ClaimPath) -> Option<&'a Value> {
    let mut map = claims;
    let mut found = None;
    for segment in path.segments() {
        let PathSegment::Name(name) = segment else {
            return None;
        };
        let value = map.get(name)?;
        found = Some(value);
        if let Value::Object(inner) = value {
            map = inner;
        }
    }
    found
}

fn derive(derived: &Derived, source: &Value, issued_on: NaiveDate) -> Result<Value, ClaimsError> {
    let fail = |reason| ClaimsError::Derive {
        name: derived.name.clone(),
        reason,
    };
    match derived.rule {
        Rule::Copy => Ok(source.clone()),
        Rule::AgeAtLeast(years) => {
            let birth = source
                .as_str()
                .and_then(parse_date)
                .ok_or_else(|| fail("expected a birth date as YYYY-MM-DD"))?;
            let age = age_on(birth, issued_on)
                .ok_or_else(|| fail("expected a birth date on or before the issuance date"))?;
            Ok(Value::Bool(age >= years))
        }
        Rule::Mask {
            keep_start,
            keep_end,
        } => {
            let text = source
                .as_str()
                .ok_or_else(|| fail("expected a string to mask"))?;
            Ok(Value::String(mask(text, keep_start, keep_end)))
        }
        Rule::Division(level) => {
            let code = source
                .as_str()
                .filter(|s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| fail("expected a 6-digit administrative division code"))?;
            let kept = match level {
                DivisionLevel::Province => format!("{}0000", &code[..2]),
                DivisionLevel::Prefecture => format!("{}00", &code[..4]),
            };
            Ok(Value::String(kept))
        }
    }
}

/// The civil time zone of PRC dates (birth dates, validity dates): China Standard Time,
/// UTC+8, without daylight saving time.
pub const CIVIL_UTC_OFFSET_SECONDS: i32 = 8 * 3600;

/// The civil date (China Standard Time) at a Unix time in seconds, such as a credential's
/// `iat`: the `issued_on` that [`CredentialSchema::plan`] takes. `None` outside chrono's
/// range.
pub fn civil_date(unix_seconds: i64) -> Option<NaiveDate> {
    let offset = chrono::FixedOffset::east_opt(CIVIL_UTC_OFFSET_SECONDS)?;
    let instant = chrono::DateTime::from_timestamp(unix_seconds, 0)?;
    Some(instant.with_timezone(&offset).date_naive())
}

/// A strict `YYYY-MM-DD` calendar date.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::from_ymd_opt(
        text[..4].parse().ok()?,
        text[5..7].parse().ok()?,
        text[8..].parse().ok()?,
    )
}

/// Completed years of age on `on` of a person born on `birth`, or `None` if `on` is
/// before `birth`. The age grows on the anniversary of the birth date; a 29 February
/// birth has its anniversary on 1 March in common years.
fn age_on(birth: NaiveDate, on: NaiveDate) -> Option<u32> {
    if on < birth {
        return None;
    }
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// Keeps the first `keep_start` and last `keep_end` characters and replaces every other
/// character with `*` (one per character, so the length stays visible, as PRC masking
/// practice shows identity numbers: `310***********1239`). A text no longer than what
/// would be kept is masked whole.
fn mask(text: &str, keep_start: usize, keep_end: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    if n <= keep_start + keep_end {
        return "*".repeat(n);
    }
    let mut out = String::with_capacity(text.len());
    out.extend(&chars[..keep_start]);
    out.extend(std::iter::repeat_n('*', n - keep_start - keep_end));
    out.extend(&chars[n - keep_end..]);
    out
}

// ---------------------------------------------------------------------------------------
// Check digits
// ---------------------------------------------------------------------------------------

/// Checks a citizen identity number (GB 11643-1999): 17 digits (address code, birth date
/// `YYYYMMDD`, sequence) and an ISO 7064 MOD 11-2 check character (`0`–`9` or `X`).
/// The birth date must be a calendar date.
pub fn check_gb11643(number: &str) -> Result<(), CheckDigitError> {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() != 18 {
        return Err(CheckDigitError::Length {
            expected: 18,
            found: chars.len(),
        });
    }
    for (i, c) in chars[..17].iter().enumerate() {
        if !c.is_ascii_digit() {
            return Err(CheckDigitError::Character {
                position: i + 1,
                expected: "a digit",
            });
        }
    }
    if !(chars[17].is_ascii_digit() || chars[17] == 'X') {
        return Err(CheckDigitError::Character {
            position: 18,
            expected: "a digit or X",
        });
    }
    gb11643_birth_date(number).ok_or(CheckDigitError::BirthDate)?;
    if mod11_2_check(&number[..17]) != Some(chars[17]) {
        return Err(CheckDigitError::CheckCharacter {
            standard: "GB 11643 (ISO 7064 MOD 11-2)",
        });
    }
    Ok(())
}

/// The birth date in positions 7–14 of an identity number of the right shape.
fn gb11643_birth_date(number: &str) -> Option<NaiveDate> {
    let digits = number.get(6..14)?;
    parse_date(&format!(
        "{}-{}-{}",
        digits.get(..4)?,
        digits.get(4..6)?,
        digits.get(6..)?
    ))
}

/// ISO 7064 MOD 11-2 (pure system, recursive form): the check character of a digit string.
fn mod11_2_check(digits: &str) -> Option<char> {
    let mut p = 0u32;
    for c in digits.chars() {
        p = ((p + c.to_digit(10)?) * 2) % 11;
    }
    match (12 - p) % 11 {
        10 => Some('X'),
        d => char::from_digit(d, 10),
    }
}

/// The 31 characters of GB 32100, in value order (no I, O, S, V, Z).
const GB32100_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Checks a unified social credit code (GB 32100-2015): 18 characters from the code's
/// alphabet (digits and upper-case letters except I, O, S, V, Z), a division code of six
/// digits in positions 3–8, and a MOD 31 check character whose weights are 3^i mod 31.
pub fn check_gb32100(code: &str) -> Result<(), CheckDigitError> {
    let chars: Vec<char> = code.chars().collect();
    if chars.len() != 18 {
        return Err(CheckDigitError::Length {
            expected: 18,
            found: chars.len(),
        });
    }
    let mut values = Vec::with_capacity(18);
    for (i, c) in chars.iter().enumerate() {
        let value = GB32100_ALPHABET.find(*c).filter(|_| c.is_ascii());
        let value = value.ok_or(CheckDigitError::Character {
            position: i + 1,
            expected: "a digit or an upper-case letter other than I, O, S, V, Z",
        })?;
        if (2..8).contains(&i) && !c.is_ascii_digit() {
            return Err(CheckDigitError::Character {
                position: i + 1,
                expected: "a digit (administrative division code)",
            });
        }
        values.push(value);
    }
    if values[0] == 0 {
        return Err(CheckDigitError::Character {
            position: 1,
            expected: "a registration authority code other than 0",
        });
    }
    let mut weight = 1usize;
    let mut sum = 0usize;
    for value in &values[..17] {
        sum += value * weight;
        weight = weight * 3 % 31;
    }
    if (31 - sum % 31) % 31 != values[17] {
        return Err(CheckDigitError::CheckCharacter {
            standard: "GB 32100 (MOD 31)",
        });
    }
    Ok(())
}

/// Runs the `x-check` rules of `schema` on a claim set and returns every failure. Values
/// of the wrong JSON type are skipped: schema validation reports those.
pub fn validate_claim_checks(
    schema: &CredentialSchema,
    claims: &Map<String, Value>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for (name, node) in &schema.properties {
        if let Some(value) = claims.get(name) {
            check_node(
                &format!("/{}", pointer_escape(name)),
                node,
                value,
                claims,
                &mut out,
            );
        }
    }
    out
}

fn check_node(
    pointer: &str,
    node: &Node,
    value: &Value,
    claims: &Map<String, Value>,
    out: &mut Vec<Violation>,
) {
    match (&node.shape, value) {
        (Shape::Leaf, Value::String(text)) => {
            let result = match &node.check {
                None => Ok(()),
                Some(Check::Gb32100) => check_gb32100(text),
                Some(Check::Gb11643 { .. }) => check_gb11643(text),
            };
            if let Err(e) = result {
                out.push(Violation {
                    path: pointer.to_owned(),
                    message: e.to_string(),
                });
                return;
            }
            if let Some(Check::Gb11643 {
                birth_date: Some(target),
            }) = &node.check
                && let Some(stated) = lookup(claims, target)
                    .and_then(Value::as_str)
                    .and_then(parse_date)
                && gb11643_birth_date(text) != Some(stated)
            {
                out.push(Violation {
                    path: pointer.to_owned(),
                    message: format!(
                        "expected the birth date in the identity number to equal {target}, \
                         found another date"
                    ),
                });
            }
        }
        (Shape::Object(members), Value::Object(map)) => {
            for (name, member) in members {
                if let Some(v) = map.get(name) {
                    let child = format!("{pointer}/{}", pointer_escape(name));
                    check_node(&child, member, v, claims, out);
                }
            }
        }
        (Shape::Array(items), Value::Array(elements)) => {
            for (i, v) in elements.iter().enumerate() {
                check_node(&format!("{pointer}/{i}"), items, v, claims, out);
            }
        }
        _ => {}
    }
}

fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

// ---------------------------------------------------------------------------------------
// Schema sets
// ---------------------------------------------------------------------------------------

/// The credential types a service knows, looked up by `vct` or by type name (the file
/// stem of `<Type>.schema.json`). The binaries read the directory; this type only parses.
#[derive(Debug, Clone, Default)]
pub struct SchemaSet {
    schemas: Vec<(String, CredentialSchema)>,
}

impl SchemaSet {
    /// Builds a set from `(file name, bytes)` pairs. Every file must be named
    /// `<Type>.schema.json`; each type name and each `vct` may occur once.
    pub fn from_files<I, N, B>(files: I) -> Result<Self, SchemaError>
    where
        I: IntoIterator<Item = (N, B)>,
        N: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let mut schemas: Vec<(String, CredentialSchema)> = Vec::new();
        for (file, bytes) in files {
            let file = file.as_ref();
            let type_name = file
                .strip_suffix(".schema.json")
                .filter(|stem| is_type_name(stem))
                .ok_or_else(|| SchemaError::FileName(file.chars().take(100).collect()))?;
            let schema =
                CredentialSchema::parse(bytes.as_ref()).map_err(|e| SchemaError::InFile {
                    file: file.to_owned(),
                    source: Box::new(e),
                })?;
            if schemas.iter().any(|(t, _)| t == type_name) {
                return Err(SchemaError::Duplicate(format!("type {type_name}")));
            }
            if schemas.iter().any(|(_, s)| s.vct == schema.vct) {
                return Err(SchemaError::Duplicate(format!("vct {}", schema.vct)));
            }
            schemas.push((type_name.to_owned(), schema));
        }
        schemas.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { schemas })
    }

    /// The schema whose `vct` this is.
    pub fn by_vct(&self, vct: &str) -> Option<&CredentialSchema> {
        self.schemas.iter().map(|(_, s)| s).find(|s| s.vct == vct)
    }

    /// The schema of a type name (`ResidentIdentity`).
    pub fn by_type(&self, type_name: &str) -> Option<&CredentialSchema> {
        self.schemas
            .iter()
            .find(|(t, _)| t == type_name)
            .map(|(_, s)| s)
    }

    /// Every `(type name, schema)`, ordered by type name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &CredentialSchema)> {
        self.schemas.iter().map(|(t, s)| (t.as_str(), s))
    }

    /// The number of schemas.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }
}

/// `UpperCamelCase` ASCII.
fn is_type_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_uppercase())
        && bytes.all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests;
