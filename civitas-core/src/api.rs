//! Wire DTOs: the JSON bodies that cross process boundaries between the registry, its
//! clients, the wallet and the other services.

use serde::{Deserialize, Serialize};

use crate::document::DidDocument;
use crate::ledger::ObjectId;
use crate::problem::Problem;

/// The DID Resolution context.
pub const RESOLUTION_CONTEXT: &str = "https://w3id.org/did-resolution/v1";
/// The media type of a DID resolution result.
pub const RESOLUTION_CONTENT_TYPE: &str = "application/did-resolution";
/// The media type of a DID document.
pub const DID_CONTENT_TYPE: &str = "application/did+ld+json";

/// A DID Resolution result (W3C DID Resolution, HTTP binding), with the proofs that let a
/// client check it against a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionResult {
    /// `@context`.
    #[serde(rename = "@context")]
    pub context: String,
    /// The document (absent on error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did_document: Option<DidDocument>,
    /// Resolution metadata.
    pub did_resolution_metadata: ResolutionMetadata,
    /// Document metadata.
    pub did_document_metadata: DocumentMetadata,
    /// The proofs (did:civ only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ResolutionProof>,
}

/// DID resolution metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionMetadata {
    /// The media type of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The error, as a problem details object with a DID Resolution error `type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// DID document metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMetadata {
    /// When the DID was created (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// When this version took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// The object id of the operation of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Whether the DID is deactivated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deactivated: bool,
    /// For a historical version, the next version's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_version_id: Option<String>,
    /// For a historical version, when the next version took effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
    /// Keys of the DID marked compromised (their signatures are never valid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compromised_keys: Vec<String>,
    /// A controller operation waiting for its recovery window: its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_operation: Option<String>,
}

/// A log leaf with its inclusion proof against the checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeafProof {
    /// The leaf index.
    pub index: u64,
    /// The leaf bytes (the signed object's canonical JSON), standard base64.
    pub leaf: String,
    /// The RFC 9162 inclusion proof, standard base64 hashes.
    pub inclusion: Vec<String>,
}

/// The proofs behind a resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolutionProof {
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
    /// The checkpoint's closing seal (the last leaf of the tree it covers).
    pub seal: LeafProof,
    /// The operation of the resolved version.
    pub operation: LeafProof,
    /// The DID's latest operation, when it is not the resolved one (history, or a pending
    /// controller operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<LeafProof>,
    /// The proof, against the seal's `stateRoot`, that the latest operation is the DID's
    /// entry in the verifiable map: sibling hashes, standard base64.
    pub state: Vec<String>,
}

/// The answer to an accepted write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitReceipt {
    /// The entry's object id.
    pub id: ObjectId,
    /// The DID the operation created or changed (operations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// Its log index.
    pub index: u64,
    /// Its RFC 9162 leaf hash, standard base64.
    pub leaf_hash: String,
    /// The signed checkpoint of the block that sealed it.
    pub checkpoint: String,
    /// Its inclusion proof against that checkpoint.
    pub inclusion: Vec<String>,
    /// Operations a recovery nullified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nullified: Vec<ObjectId>,
}

/// `GET /log/entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntries {
    /// The first index.
    pub start: u64,
    /// The entries, in order.
    pub entries: Vec<LogEntry>,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Its index.
    pub index: u64,
    /// The leaf bytes, standard base64.
    pub leaf: String,
}

/// `GET /log/proof/inclusion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProofBody {
    /// The leaf index.
    pub index: u64,
    /// The tree size.
    pub tree_size: u64,
    /// The leaf hash, standard base64.
    pub leaf_hash: String,
    /// The proof, standard base64 hashes.
    pub proof: Vec<String>,
}

/// `GET /log/proof/consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProofBody {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof, standard base64 hashes.
    pub proof: Vec<String>,
}

/// One accreditation with its proofs (`GET /trust/issuers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accreditation {
    /// The issuer DID.
    pub issuer: String,
    /// The credential type.
    pub vct: String,
    /// The accrediting entry.
    pub entry: LeafProof,
    /// The state proof that it is the latest entry for (issuer, vct), standard base64.
    pub state: Vec<String>,
}

/// `GET /trust/issuers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accreditations {
    /// The credential type asked for.
    pub vct: String,
    /// The signed checkpoint the proofs are against.
    pub checkpoint: String,
    /// Its closing seal.
    pub seal: LeafProof,
    /// The accreditations in force (at `at`, when asked).
    pub issuers: Vec<Accreditation>,
}

/// One operation in `GET /history/{did}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// The operation id.
    pub id: ObjectId,
    /// create, update or deactivate.
    pub op: String,
    /// Its log index.
    pub index: u64,
    /// When it took effect (RFC 3339).
    pub time: String,
    /// Who signed it (`rotationKey N` or the controller key).
    pub signer: String,
    /// Whether it is in the canonical chain.
    pub canonical: bool,
    /// The recovery that nullified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nullified_by: Option<ObjectId>,
}

/// `GET /history/{did}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DidHistory {
    /// The DID.
    pub did: String,
    /// Its operations, canonical ones in order, then the nullified ones.
    pub operations: Vec<HistoryItem>,
}

/// One entry of `GET /trust/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustHistoryItem {
    /// The entry id.
    pub id: ObjectId,
    /// accredit or withdraw.
    pub action: String,
    /// When it took effect (RFC 3339).
    pub time: String,
    /// Its log index.
    pub index: u64,
}

/// `GET /trust/history?issuer=I&vct=T`: the entries of one (issuer, vct), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustHistory {
    /// The issuer.
    pub issuer: String,
    /// The credential type.
    pub vct: String,
    /// The entries.
    pub entries: Vec<TrustHistoryItem>,
}

/// `GET /anchors/head?stream=S`: the latest anchor of a stream (informational: its inclusion
/// can be checked with `GET /log/proof/inclusion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorHead {
    /// The stream.
    pub stream: String,
    /// Its sequence number.
    pub seq: u64,
    /// The anchor's object id.
    pub id: ObjectId,
    /// Its log index.
    pub index: u64,
    /// When it took effect (RFC 3339).
    pub time: String,
}
