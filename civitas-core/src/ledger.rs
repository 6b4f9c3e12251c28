//! Signed ledger objects: the bytes that go into the log.
//!
//! Every entry is a JSON object with a `type` that separates signing domains
//! (`civ.op.v1`, `civ.trust.v1`, `civ.anchor.v1`, `civ.seal.v1`, `civ.config.v1`) and a
//! `sig`: base64url (no padding) of the Ed25519 signature over RFC 8785 (JCS) of the object
//! without `sig`. The object id is base32 (lower case, no padding) of SHA-256 over the JCS
//! of the whole signed object.
//!
//! Parsing is strict: the bytes must already be the JCS form of the object (which also
//! refuses duplicate member names), unknown members are refused, numbers must be integers
//! of at most 2^53 − 1, and every base64 text must be canonical. The leaf stored in the log
//! is exactly the parsed bytes.
//!
//! ```text
//!   body (typed) ──sign──▶ Signed<T> { body, sig, bytes, id } ──bytes──▶ log leaf
//!   bytes ──parse_entry──▶ Entry::{Operation, Trust, Anchor, Seal, Config}(Signed<T>)
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::constraint::Constraint;
use crate::did::{Did, DidUrl};
use crate::encoding;
use crate::jcs;
use crate::keys::{PublicKey, SecretKey, SignatureError};

/// The largest integer a ledger object may carry (2^53 − 1, exact in every JSON parser).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why bytes are not a valid signed ledger object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseEntryError {
    /// Not JSON, or not in its RFC 8785 canonical form (this includes duplicate names).
    #[error("expected the RFC 8785 (JCS) form of a JSON object: {0}")]
    NonCanonical(String),
    /// The JSON is not an object.
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    /// A number that is a float or beyond 2^53 − 1.
    #[error("expected integers between -(2^53-1) and 2^53-1, found {0}")]
    Number(String),
    /// `type` missing or unknown.
    #[error(
        "expected type civ.op.v1, civ.trust.v1, civ.anchor.v1, civ.seal.v1 or civ.config.v1, found {0}"
    )]
    Type(String),
    /// `sig` missing or malformed.
    #[error("expected sig: base64url of a 64-byte signature, found {0}")]
    Sig(String),
    /// The members do not match the object type.
    #[error("malformed {kind}: {detail}")]
    Shape {
        /// The object type.
        kind: &'static str,
        /// What serde found wrong (unknown member, missing member, wrong type).
        detail: String,
    },
}

/// An object id: base32 of the SHA-256 of the signed object's JCS bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// The id of the object whose canonical bytes are `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(encoding::sha256(bytes))
    }

    /// The 32-byte digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds an id from a digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encoding::b32(&self.0))
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The text is not an object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an object id (52 lower-case base32 characters), found {0:?}")]
pub struct ParseObjectIdError(String);

impl FromStr for ObjectId {
    type Err = ParseObjectIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = encoding::b32_decode(s)
            .map_err(|_| ParseObjectIdError(s.chars().take(80).collect()))?;
        let digest: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ParseObjectIdError(s.chars().take(80).collect()))?;
        Ok(Self(digest))
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A 32-byte hash carried in a ledger object as base64url without padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", encoding::b64url(&self.0))
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encoding::b64url(&self.0))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        encoding::b64url_hash(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A ledger object body: the members other than `type` and `sig`.
pub trait Body: Serialize + DeserializeOwned + Clone {
    /// The `type` member.
    const TYPE: &'static str;
}

/// A signed ledger object: the typed body, its signature and its exact canonical bytes.
///
/// The object remembers the one key its signature verified under, so a check done early
/// (a registry verifies in its request handlers, spread over every core) is not repeated
/// by the single writer; the answer for the same bytes and key cannot change.
#[derive(Clone)]
pub struct Signed<T> {
    body: T,
    sig: [u8; 64],
    bytes: Vec<u8>,
    id: ObjectId,
    signing_input: Vec<u8>,
    verified: OnceLock<PublicKey>,
}

impl<T> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T: fmt::Debug> fmt::Debug for Signed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("id", &self.id)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

fn body_value<T: Body>(body: &T) -> Map<String, Value> {
    // Bodies are plain structs of strings, integers, arrays and objects: serializing to a
    // Value cannot fail for them.
    let mut map = match serde_json::to_value(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    map.insert("type".to_owned(), Value::String(T::TYPE.to_owned()));
    map
}

fn canonical(map: Map<String, Value>) -> Vec<u8> {
    // JCS of a value made from our own types cannot fail: there are no floats in them.
    jcs::canonicalize(&Value::Object(map)).unwrap_or_default()
}

impl<T: Body> Signed<T> {
    /// Signs `body` with `key`.
    pub fn sign(body: T, key: &SecretKey) -> Self {
        let map = body_value(&body);
        let signing_input = canonical(map.clone());
        let sig = key.sign(&signing_input);
        Self::assemble(body, map, sig, signing_input)
    }

    /// Builds the signed object from a body and a signature made elsewhere (for example by
    /// a wallet holding the key).
    pub fn from_signature(body: T, sig: [u8; 64]) -> Self {
        let map = body_value(&body);
        let signing_input = canonical(map.clone());
        Self::assemble(body, map, sig, signing_input)
    }

    /// The bytes a signer signs for `body`.
    pub fn signing_input_of(body: &T) -> Vec<u8> {
        canonical(body_value(body))
    }

    fn assemble(
        body: T,
        mut map: Map<String, Value>,
        sig: [u8; 64],
        signing_input: Vec<u8>,
    ) -> Self {
        map.insert("sig".to_owned(), Value::String(encoding::b64url(&sig)));
        let bytes = canonical(map);
        let id = ObjectId::of(&bytes);
        Self {
            body,
            sig,
            bytes,
            id,
            signing_input,
            verified: OnceLock::new(),
        }
    }

    /// The typed body.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The signature.
    pub fn sig(&self) -> &[u8; 64] {
        &self.sig
    }

    /// The exact canonical bytes (the log leaf).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The object id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The bytes the signature covers: JCS of the object without `sig`.
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    /// Checks the signature under `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), SignatureError> {
        if self.verified.get() == Some(key) {
            return Ok(());
        }
        key.verify(&self.signing_input, &self.sig)?;
        let _ = self.verified.set(*key);
        Ok(())
    }

    fn parse_map(mut map: Map<String, Value>, bytes: &[u8]) -> Result<Self, ParseEntryError> {
        let sig_text = match map.remove("sig") {
            Some(Value::String(text)) => text,
            Some(other) => return Err(ParseEntryError::Sig(json_kind(&other).to_owned())),
            None => return Err(ParseEntryError::Sig("no sig member".to_owned())),
        };
        let sig_bytes =
            encoding::b64url_decode(&sig_text).map_err(|e| ParseEntryError::Sig(e.to_string()))?;
        let sig: [u8; 64] = sig_bytes
            .as_slice()
            .try_into()
            .map_err(|_| ParseEntryError::Sig(format!("{} bytes", sig_bytes.len())))?;
        let signing_input = canonical(map.clone());
        map.remove("type");
        let body: T =
            serde_json::from_value(Value::Object(map)).map_err(|e| ParseEntryError::Shape {
                kind: T::TYPE,
                detail: e.to_string(),
            })?;
        // The typed body must describe exactly the bytes: re-serializing it gives back the
        // same object (no members dropped by defaults, no aliases).
        if Self::signing_input_of(&body) != signing_input {
            return Err(ParseEntryError::Shape {
                kind: T::TYPE,
                detail: "members with default values must be omitted".to_owned(),
            });
        }
        Ok(Self {
            body,
            sig,
            bytes: bytes.to_vec(),
            id: ObjectId::of(bytes),
            signing_input,
            verified: OnceLock::new(),
        })
    }

    /// Parses canonical bytes as an object of this type.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseEntryError> {
        let map = parse_object(bytes)?;
        match map.get("type") {
            Some(Value::String(t)) if t == T::TYPE => Self::parse_map(map, bytes),
            Some(other) => Err(ParseEntryError::Type(other.to_string())),
            None => Err(ParseEntryError::Type("no type member".to_owned())),
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_numbers(value: &Value) -> Result<(), ParseEntryError> {
    match value {
        Value::Number(n) => {
            let ok = n.as_u64().is_some_and(|v| v <= MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|v| v.unsigned_abs() <= MAX_SAFE_INTEGER);
            if ok {
                Ok(())
            } else {
                Err(ParseEntryError::Number(n.to_string()))
            }
        }
        Value::Array(items) => items.iter().try_for_each(check_numbers),
        Value::Object(map) => map.values().try_for_each(check_numbers),
        _ => Ok(()),
    }
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ParseEntryError> {
    let value =
        jcs::parse_canonical(bytes).map_err(|e| ParseEntryError::NonCanonical(e.to_string()))?;
    check_numbers(&value)?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ParseEntryError::NotAnObject(json_kind(&other))),
    }
}

/// Any ledger entry.
// Entries are parsed, checked and dropped; boxing the larger variants would cost an
// allocation per entry for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Entry {
    /// A did:civ operation.
    Operation(Signed<Operation>),
    /// A trust-registry entry.
    Trust(Signed<TrustEntry>),
    /// An anchor.
    Anchor(Signed<Anchor>),
    /// A block seal.
    Seal(Signed<Seal>),
    /// The genesis configuration.
    Config(Signed<Config>),
}

impl Entry {
    /// Parses canonical bytes as any ledger entry.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseEntryError> {
        let map = parse_object(bytes)?;
        let kind = match map.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(other) => return Err(ParseEntryError::Type(other.to_string())),
            None => return Err(ParseEntryError::Type("no type member".to_owned())),
        };
        match kind.as_str() {
            Operation::TYPE => Signed::parse_map(map, bytes).map(Self::Operation),
            TrustEntry::TYPE => Signed::parse_map(map, bytes).map(Self::Trust),
            Anchor::TYPE => Signed::parse_map(map, bytes).map(Self::Anchor),
            Seal::TYPE => Signed::parse_map(map, bytes).map(Self::Seal),
            Config::TYPE => Signed::parse_map(map, bytes).map(Self::Config),
            other => Err(ParseEntryError::Type(format!("{other:?}"))),
        }
    }

    /// The canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Operation(s) => s.bytes(),
            Self::Trust(s) => s.bytes(),
            Self::Anchor(s) => s.bytes(),
            Self::Seal(s) => s.bytes(),
            Self::Config(s) => s.bytes(),
        }
    }

    /// The object id.
    pub fn id(&self) -> ObjectId {
        match self {
            Self::Operation(s) => s.id(),
            Self::Trust(s) => s.id(),
            Self::Anchor(s) => s.id(),
            Self::Seal(s) => s.id(),
            Self::Config(s) => s.id(),
        }
    }

    /// The `type` member.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Operation(_) => Operation::TYPE,
            Self::Trust(_) => TrustEntry::TYPE,
            Self::Anchor(_) => Anchor::TYPE,
            Self::Seal(_) => Seal::TYPE,
            Self::Config(_) => Config::TYPE,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The kind of a did:civ operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OpKind {
    /// The genesis operation; the DID is derived from it.
    Create,
    /// A new full state.
    Update,
    /// The end of the DID.
    Deactivate,
}

/// Who signed an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum OpSigner {
    /// The rotation key at this index of the previous state (0 = highest priority).
    RotationKey(u8),
    /// A `capabilityInvocation` key of the DID's controller; takes effect only after the
    /// recovery window.
    ControllerKey(DidUrl),
}

/// A verification method in an operation: a fragment and a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpVerificationMethod {
    /// The fragment, e.g. `key-1`.
    pub id: String,
    /// The Ed25519 key.
    pub public_key_multibase: PublicKey,
}

/// A service in an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpService {
    /// The fragment, e.g. `oid4vci`.
    pub id: String,
    /// The service type, from the allow-list.
    #[serde(rename = "type")]
    pub kind: String,
    /// The endpoint URL.
    pub service_endpoint: String,
}

/// Why a key left the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyStatus {
    /// Replaced in the ordinary course: signatures it made before still verify.
    Rotated,
    /// Lost or stolen: no signature by it is valid, whatever time it claims.
    Compromised,
}

/// A key that leaves the document with this operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetiredKey {
    /// The key.
    pub key: PublicKey,
    /// Why it leaves.
    pub status: KeyStatus,
}

/// A controller's countersignature accepting to be named as controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllerSig {
    /// The controller's `capabilityInvocation` key that signed.
    pub key: DidUrl,
    /// base64url signature over JCS of the operation without `sig` and `controllerSig`.
    pub sig: String,
}

/// A did:civ operation (`civ.op.v1`). `create` and `update` carry the full new state;
/// `deactivate` carries none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// create, update or deactivate.
    pub op: OpKind,
    /// The DID (absent for create: it is derived from the create operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<Did>,
    /// The id of the operation this one follows (absent for create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<ObjectId>,
    /// Verification methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_methods: Vec<OpVerificationMethod>,
    /// Fragments under `authentication`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<String>,
    /// Fragments under `assertionMethod`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_method: Vec<String>,
    /// Fragments under `capabilityInvocation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<String>,
    /// Fragments under `capabilityDelegation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<String>,
    /// Services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<OpService>,
    /// The controlling DID, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Did>,
    /// The controller's countersignature, required when a controller is newly named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_sig: Option<ControllerSig>,
    /// Rotation keys in priority order (index 0 highest); never also verification keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotation_keys: Vec<PublicKey>,
    /// Keys leaving the document with this operation, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_keys: Vec<RetiredKey>,
    /// Who signed.
    pub signer: OpSigner,
}

impl Body for Operation {
    const TYPE: &'static str = "civ.op.v1";
}

impl Operation {
    /// A create operation with one verification method, `#key-1`, under authentication,
    /// assertionMethod and capabilityInvocation, and the given rotation keys; to be signed
    /// by rotation key `signer`.
    pub fn create(rotation_keys: Vec<PublicKey>, key1: PublicKey, signer: u8) -> Self {
        let fragment = || vec!["key-1".to_owned()];
        Self {
            op: OpKind::Create,
            did: None,
            prev: None,
            verification_methods: vec![OpVerificationMethod {
                id: "key-1".to_owned(),
                public_key_multibase: key1,
            }],
            authentication: fragment(),
            assertion_method: fragment(),
            capability_invocation: fragment(),
            capability_delegation: Vec::new(),
            services: Vec::new(),
            controller: None,
            controller_sig: None,
            rotation_keys,
            retired_keys: Vec::new(),
            signer: OpSigner::RotationKey(signer),
        }
    }

    /// The bytes a controller countersigns: JCS of the operation without `sig` and
    /// `controllerSig`.
    pub fn controller_signing_input(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.controller_sig = None;
        Signed::signing_input_of(&copy)
    }
}

/// What a trust entry does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TrustAction {
    /// Accredit `issuer` for `vct` up to `maxLevel`, with `constraints`.
    Accredit,
    /// Withdraw the accreditation of `issuer` for `vct`.
    Withdraw,
    /// Name `issuer` as a root authority.
    AddRoot,
    /// Remove `issuer` from the root authorities.
    RemoveRoot,
}

/// The classification of a claim, after national data classification practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Classification {
    /// May be disclosed freely.
    Public,
    /// Internal to government.
    Internal,
    /// Personal or sensitive data.
    Sensitive,
    /// Core data: never leaves the issuer, only derived claims do.
    Core,
}

impl FromStr for Classification {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "public" => Ok(Self::Public),
            "internal" => Ok(Self::Internal),
            "sensitive" => Ok(Self::Sensitive),
            "core" => Ok(Self::Core),
            other => Err(format!(
                "expected public, internal, sensitive or core, found {other:?}"
            )),
        }
    }
}

/// A trust-registry entry (`civ.trust.v1`), signed with a root authority's
/// `capabilityInvocation` key. Entries for one (issuer, vct) chain through `prev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustEntry {
    /// What the entry does.
    pub action: TrustAction,
    /// The issuer accredited or withdrawn, or the authority added or removed.
    pub issuer: Did,
    /// The credential type (absent for root changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vct: Option<String>,
    /// The highest claim classification the issuer may put in a credential (accredit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<Classification>,
    /// Claim constraints the issuer must respect (accredit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
    /// For a withdrawal: `true` to keep credentials issued before it valid (the default,
    /// `false`, withdraws retroactively).
    #[serde(default, skip_serializing_if = "is_false")]
    pub prospective: bool,
    /// The previous entry for the same (issuer, vct), or for the root set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<ObjectId>,
    /// The root authority's key that signed.
    pub signer: DidUrl,
}

impl Body for TrustEntry {
    const TYPE: &'static str = "civ.trust.v1";
}

/// What an anchor commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum AnchorKind {
    /// The root of a batch of audit records.
    AuditBatch,
    /// The hash of a status list version.
    StatusList,
}

/// An anchor (`civ.anchor.v1`): a hash committed to the ledger in a stream owned by the
/// signer DID, signed with one of its `assertionMethod` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Anchor {
    /// What is anchored.
    pub kind: AnchorKind,
    /// The stream, `<signer DID>/<name>`.
    pub stream: String,
    /// Sequence number in the stream, starting at 1.
    pub seq: u64,
    /// The previous anchor of the stream (absent for seq 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<ObjectId>,
    /// The anchored hash.
    pub root: Digest,
    /// First sequence number covered (audit batches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// Last sequence number covered (audit batches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u64>,
    /// The `assertionMethod` key that signed.
    pub signer: DidUrl,
}

impl Body for Anchor {
    const TYPE: &'static str = "civ.anchor.v1";
}

/// A block seal (`civ.seal.v1`), signed by the writing node's ledger key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seal {
    /// Block number, from 1.
    pub block: u64,
    /// Ledger time of the block, unix milliseconds, strictly increasing.
    pub time: u64,
    /// The previous seal (absent for block 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<ObjectId>,
    /// Number of entries in the block, before the seal.
    pub entries: u64,
    /// Root of the verifiable map after the block.
    pub state_root: Digest,
    /// The ledger key that signed.
    pub node: PublicKey,
}

impl Body for Seal {
    const TYPE: &'static str = "civ.seal.v1";
}

/// The genesis configuration (`civ.config.v1`), leaf 0 of every ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The checkpoint origin.
    pub origin: String,
    /// Root authorities of the trust registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<Did>,
    /// The recovery window, milliseconds.
    pub recovery_window_ms: u64,
    /// The ledger keys of the nodes (seals, this config).
    pub ledger_keys: Vec<PublicKey>,
    /// The note verifier keys of the nodes (checkpoints).
    pub note_keys: Vec<String>,
    /// Node signatures needed on a checkpoint.
    pub min_cosignatures: u64,
    /// When the ledger was created, unix milliseconds.
    pub time: u64,
}

impl Body for Config {
    const TYPE: &'static str = "civ.config.v1";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &SecretKey) -> Signed<Seal> {
        Signed::sign(
            Seal {
                block: 1,
                time: 1_700_000_000_000,
                prev: None,
                entries: 0,
                state_root: Digest([0; 32]),
                node: key.public_key(),
            },
            key,
        )
    }

    #[test]
    fn signed_objects_round_trip_through_their_bytes() {
        let key = SecretKey::generate();
        let signed = seal(&key);
        let parsed = Signed::<Seal>::parse(signed.bytes()).unwrap();
        assert_eq!(parsed, signed);
        assert!(parsed.verify(&key.public_key()).is_ok());
        match Entry::parse(signed.bytes()).unwrap() {
            Entry::Seal(s) => assert_eq!(s.id(), signed.id()),
            other => panic!("expected a seal, found {other:?}"),
        }
    }

    #[test]
    fn strict_parsing_refuses_what_is_not_exactly_canonical() {
        let key = SecretKey::generate();
        let signed = seal(&key);
        let text = std::str::from_utf8(signed.bytes()).unwrap();
        // Whitespace: not JCS.
        let spaced = text.replacen(',', ", ", 1);
        assert!(matches!(
            Entry::parse(spaced.as_bytes()),
            Err(ParseEntryError::NonCanonical(_))
        ));
        // Unknown member (inserted in sorted position so the bytes stay canonical).
        let unknown = text.replacen("{\"block\"", "{\"aaa\":1,\"block\"", 1);
        assert!(matches!(
            Entry::parse(unknown.as_bytes()),
            Err(ParseEntryError::Shape { .. })
        ));
        // Float.
        let float = text.replacen("\"block\":1", "\"block\":1.5", 1);
        assert!(matches!(
            Entry::parse(float.as_bytes()),
            Err(ParseEntryError::Number(_))
        ));
        // Integer beyond 2^53 - 1.
        let big = text.replacen("\"block\":1", "\"block\":9007199254740992", 1);
        assert!(matches!(
            Entry::parse(big.as_bytes()),
            Err(ParseEntryError::Number(_))
        ));
        // Unknown type.
        let other = text.replacen("civ.seal.v1", "civ.seal.v2", 1);
        assert!(matches!(
            Entry::parse(other.as_bytes()),
            Err(ParseEntryError::Type(_))
        ));
        // Tampered body: parses, but the signature fails.
        let tampered = text.replacen("\"entries\":0", "\"entries\":1", 1);
        let parsed = Signed::<Seal>::parse(tampered.as_bytes()).unwrap();
        assert!(parsed.verify(&key.public_key()).is_err());
    }

    #[test]
    fn object_ids_are_base32_of_sha256() {
        let key = SecretKey::generate();
        let signed = seal(&key);
        let id = signed.id();
        assert_eq!(id.to_string().len(), 52);
        assert_eq!(id.to_string().parse::<ObjectId>().unwrap(), id);
        assert_eq!(id.digest(), &encoding::sha256(signed.bytes()));
    }
}
