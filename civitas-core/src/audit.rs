//! Audit records of a verifier (`civ.audit.v1`) and the proof that one was committed to the
//! ledger: record → batch tree → audit-batch anchor → ledger checkpoint.
//!
//! Records are JSON in their RFC 8785 (JCS) form. Each names the hash of the one before it
//! (`prev`, base64url of SHA-256 over its bytes) and carries a sequence number, so the chain
//! shows any gap or rewrite. The service cuts the chain into batches on a fixed cadence (a
//! batch may be empty) and anchors, for each, a commitment
//!
//! ```text
//! root = SHA-256("civitas-audit-batch/1" || tree_root || head)
//! ```
//!
//! where `tree_root` is the RFC 9162 Merkle root over the batch's record bytes and `head` the
//! hash of the chain's last record when the batch closed (the previous head for an empty
//! batch). The anchor's `first`/`last` give the sequence range; consecutive anchors of the
//! stream `<service DID>/audit` cover consecutive ranges.

use serde::{Deserialize, Serialize};

use crate::api::SubmitReceipt;
use crate::encoding;
use crate::jcs;
use crate::ledger::{Anchor, AnchorKind, Signed};
use crate::note::Checkpoint;
use crate::proof::{PinnedKeys, open_checkpoint};
use crate::tlog::{self, Hash};

/// The `type` of an audit record.
pub const RECORD_TYPE: &str = "civ.audit.v1";
/// The name of a service's audit anchor stream (after `<DID>/`).
pub const STREAM_NAME: &str = "audit";
/// Domain separation of the anchored batch commitment.
const BATCH_DOMAIN: &[u8] = b"civitas-audit-batch/1";

/// Whether a request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Served.
    Allow,
    /// Refused.
    Deny,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditRecord {
    /// Always [`RECORD_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Hash of the previous record (absent for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// 128 random bits, base64url: the record's hash reveals nothing guessable.
    pub salt: String,
    /// When the decision was made, unix milliseconds.
    pub time: u64,
    /// The request id the service gave the request.
    pub request_id: String,
    /// The caller DID, present only when the request signature verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The key id a request claimed when its signature was not verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_key_id: Option<String>,
    /// How many denials this record stands for (unverified denials are aggregated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The presented credential's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Its issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Its type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vct: Option<String>,
    /// The names of the disclosed claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disclosed: Vec<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The purpose code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The data subject the route names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// The problem type URI of a denial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditRecord {
    /// The record's canonical bytes (what is hashed and stored).
    pub fn to_bytes(&self) -> Vec<u8> {
        Unplaced::new(self).place(self.seq, self.prev.as_deref())
    }

    /// Parses canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        let value = jcs::parse_canonical(bytes)
            .map_err(|e| AuditError::Record(format!("not canonical JSON: {e}")))?;
        let record: Self =
            serde_json::from_value(value).map_err(|e| AuditError::Record(e.to_string()))?;
        if record.kind != RECORD_TYPE {
            return Err(AuditError::Record(format!(
                "expected type {RECORD_TYPE:?}, found {:?}",
                record.kind
            )));
        }
        Ok(record)
    }
}

/// A record's canonical bytes cut around `prev` and `seq`, so that a store can serialize a
/// record before it knows its place in the chain and fill that in cheaply while it holds
/// the chain's lock.
///
/// The bytes are written directly in JCS form (RFC 8785): members in the order of their
/// names, strings escaped as JCS escapes them, integers below 2^53 as plain digits. A record
/// has no other kind of value, and the tests hold the result equal to canonicalizing the
/// record's JSON.
#[derive(Debug, Clone)]
pub struct Unplaced {
    before_prev: Vec<u8>,
    before_seq: Vec<u8>,
    after_seq: Vec<u8>,
}

/// Appends `,"name":` to `out`.
fn member(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn string_member(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    if let Some(value) = value {
        member(out, name);
        jcs::write_string(out, value);
    }
}

fn number_member(out: &mut Vec<u8>, name: &str, value: Option<u64>) {
    if let Some(value) = value {
        member(out, name);
        out.extend_from_slice(value.to_string().as_bytes());
    }
}

impl Unplaced {
    /// Cuts the canonical bytes of `record`, leaving out its `seq` and `prev`.
    pub fn new(record: &AuditRecord) -> Self {
        // Every field named: a field added to the record fails to compile here until it is
        // written.
        let AuditRecord {
            kind,
            seq: _,
            prev: _,
            salt,
            time,
            request_id,
            caller,
            claimed_key_id,
            count,
            credential,
            issuer,
            vct,
            disclosed,
            method,
            path,
            purpose,
            subject,
            decision,
            reason,
        } = record;
        // Member names in JCS order: caller, claimedKeyId, count, credential, decision,
        // disclosed, issuer, method, path | prev | purpose, reason, requestId, salt | seq |
        // subject, time, type, vct. `path` and `salt` are always present, so `prev` and `seq`
        // always follow a member.
        let mut before_prev = Vec::with_capacity(384);
        string_member(&mut before_prev, "caller", caller.as_deref());
        string_member(&mut before_prev, "claimedKeyId", claimed_key_id.as_deref());
        number_member(&mut before_prev, "count", *count);
        string_member(&mut before_prev, "credential", credential.as_deref());
        let decision = match decision {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        };
        string_member(&mut before_prev, "decision", Some(decision));
        if !disclosed.is_empty() {
            member(&mut before_prev, "disclosed");
            before_prev.push(b'[');
            for (i, name) in disclosed.iter().enumerate() {
                if i > 0 {
                    before_prev.push(b',');
                }
                jcs::write_string(&mut before_prev, name);
            }
            before_prev.push(b']');
        }
        string_member(&mut before_prev, "issuer", issuer.as_deref());
        string_member(&mut before_prev, "method", Some(method));
        string_member(&mut before_prev, "path", Some(path));
        // `decision` is always there: the first member's comma opens the object.
        if let Some(first) = before_prev.first_mut() {
            *first = b'{';
        }

        let mut before_seq = Vec::with_capacity(160);
        string_member(&mut before_seq, "purpose", purpose.as_deref());
        string_member(&mut before_seq, "reason", reason.as_deref());
        string_member(&mut before_seq, "requestId", Some(request_id));
        string_member(&mut before_seq, "salt", Some(salt));

        let mut after_seq = Vec::with_capacity(160);
        string_member(&mut after_seq, "subject", subject.as_deref());
        number_member(&mut after_seq, "time", Some(*time));
        string_member(&mut after_seq, "type", Some(kind));
        string_member(&mut after_seq, "vct", vct.as_deref());
        after_seq.push(b'}');
        Self {
            before_prev,
            before_seq,
            after_seq,
        }
    }

    /// The canonical bytes with `seq` and `prev` (a record hash, base64url) filled in.
    pub fn place(&self, seq: u64, prev: Option<&str>) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.before_prev.len() + self.before_seq.len() + self.after_seq.len() + 80,
        );
        out.extend_from_slice(&self.before_prev);
        if let Some(prev) = prev {
            out.extend_from_slice(b",\"prev\":");
            jcs::write_string(&mut out, prev);
        }
        out.extend_from_slice(&self.before_seq);
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(&self.after_seq);
        out
    }
}

/// The chain hash of record bytes: base64url of SHA-256.
pub fn record_hash(bytes: &[u8]) -> String {
    encoding::b64url(&encoding::sha256(bytes))
}

/// The anchored commitment of a batch.
pub fn batch_commitment(tree_root: &Hash, head: &[u8; 32]) -> [u8; 32] {
    let mut input = Vec::with_capacity(BATCH_DOMAIN.len() + 64);
    input.extend_from_slice(BATCH_DOMAIN);
    input.extend_from_slice(tree_root);
    input.extend_from_slice(head);
    encoding::sha256(&input)
}

/// Where a record sits in its batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchProof {
    /// First sequence number of the batch.
    pub first: u64,
    /// Last sequence number of the batch.
    pub last: u64,
    /// Merkle root over the batch's records, base64url.
    pub tree_root: String,
    /// Chain head when the batch closed, base64url.
    pub head: String,
    /// Inclusion proof of the record in the batch tree, base64url hashes.
    pub inclusion: Vec<String>,
}

/// The full proof of one record: `GET /audit/{id}/proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordProof {
    /// The record's canonical bytes, as a string.
    pub record: String,
    /// Its place in the batch.
    pub batch: BatchProof,
    /// The anchor entry's canonical bytes, as a string.
    pub anchor: String,
    /// The ledger's receipt of the anchor: its log index, inclusion and checkpoint.
    pub receipt: SubmitReceipt,
}

/// Why an audit record or proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The record is malformed.
    #[error("audit record: {0}")]
    Record(String),
    /// The record is not in the batch.
    #[error("batch: {0}")]
    Batch(String),
    /// The anchor does not commit to the batch.
    #[error("anchor: {0}")]
    Anchor(String),
    /// The anchor is not in the ledger.
    #[error("ledger: {0}")]
    Ledger(String),
}

fn hash_of(what: &str, text: &str) -> Result<Hash, AuditError> {
    encoding::b64url_hash(text).map_err(|e| AuditError::Batch(format!("{what}: {e}")))
}

/// Checks `proof` up to a checkpoint signed by the pinned keys, for a record of the service
/// `service_did` (the anchor stream's owner). Returns the record and the checkpoint (so
/// that the caller can check it is consistent with one it saw before).
pub fn verify_proof(
    proof: &RecordProof,
    service_did: &str,
    pins: &PinnedKeys,
) -> Result<(AuditRecord, Checkpoint), AuditError> {
    let bytes = proof.record.as_bytes();
    let record = AuditRecord::from_bytes(bytes)?;
    let batch = &proof.batch;
    if record.seq < batch.first || record.seq > batch.last {
        return Err(AuditError::Batch(format!(
            "expected a record in {}..={}, found seq {}",
            batch.first, batch.last, record.seq
        )));
    }
    let tree_root = hash_of("treeRoot", &batch.tree_root)?;
    let head = hash_of("head", &batch.head)?;
    let path = batch
        .inclusion
        .iter()
        .map(|h| hash_of("inclusion", h))
        .collect::<Result<Vec<_>, _>>()?;
    tlog::verify_inclusion(
        &tlog::leaf_hash(bytes),
        record.seq - batch.first,
        batch.last - batch.first + 1,
        &path,
        &tree_root,
    )
    .map_err(|e| AuditError::Batch(e.to_string()))?;
    if record.seq == batch.last && encoding::sha256(bytes) != head {
        return Err(AuditError::Batch(
            "the batch head is not the hash of its last record".to_owned(),
        ));
    }

    let anchor = Signed::<Anchor>::parse(proof.anchor.as_bytes())
        .map_err(|e| AuditError::Anchor(e.to_string()))?;
    let body = anchor.body();
    let stream = format!("{service_did}/{STREAM_NAME}");
    if body.kind != AnchorKind::AuditBatch || body.stream != stream {
        return Err(AuditError::Anchor(format!(
            "expected an audit-batch anchor of stream {stream}, found {:?} of {}",
            body.kind, body.stream
        )));
    }
    if body.first != Some(batch.first) || body.last != Some(batch.last) {
        return Err(AuditError::Anchor(format!(
            "expected the range {}..={}, found {:?}..={:?}",
            batch.first, batch.last, body.first, body.last
        )));
    }
    if body.root.0 != batch_commitment(&tree_root, &head) {
        return Err(AuditError::Anchor(
            "the anchored root does not commit to this batch".to_owned(),
        ));
    }

    let receipt = &proof.receipt;
    let checkpoint = open_checkpoint(&receipt.checkpoint, pins)
        .map_err(|e| AuditError::Ledger(e.to_string()))?;
    let leaf = tlog::leaf_hash(anchor.bytes());
    let leaf_hash = encoding::b64_hash(&receipt.leaf_hash)
        .map_err(|e| AuditError::Ledger(format!("leafHash: {e}")))?;
    if leaf != leaf_hash {
        return Err(AuditError::Ledger(
            "the receipt is for another entry".to_owned(),
        ));
    }
    let path = receipt
        .inclusion
        .iter()
        .map(|h| encoding::b64_hash(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AuditError::Ledger(format!("inclusion: {e}")))?;
    tlog::verify_inclusion(
        &leaf,
        receipt.index,
        checkpoint.size(),
        &path,
        checkpoint.root(),
    )
    .map_err(|e| AuditError::Ledger(e.to_string()))?;
    Ok((record, checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, prev: Option<String>) -> AuditRecord {
        AuditRecord {
            kind: RECORD_TYPE.to_owned(),
            seq,
            prev,
            salt: "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            time: 1_800_000_000_000,
            request_id: format!("req-{seq}"),
            caller: Some("did:civ:abc".to_owned()),
            claimed_key_id: None,
            count: None,
            credential: None,
            issuer: None,
            vct: None,
            disclosed: vec!["role".to_owned()],
            method: "GET".to_owned(),
            path: "/datasets/x".to_owned(),
            purpose: Some("statistics".to_owned()),
            subject: None,
            decision: Decision::Allow,
            reason: None,
        }
    }

    #[test]
    fn records_round_trip_in_canonical_form() {
        let r = record(1, None);
        let bytes = r.to_bytes();
        assert_eq!(AuditRecord::from_bytes(&bytes), Ok(r));
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert!(
            text.starts_with("{\"caller\":\"did:civ:abc\",\"decision\":\"allow\""),
            "{text}"
        );
        // Not canonical: refused.
        let spaced = text.replacen(':', ": ", 1);
        assert!(AuditRecord::from_bytes(spaced.as_bytes()).is_err());
        // Unknown member: refused.
        let extra = text.replacen('{', "{\"x\":1,", 1);
        assert!(AuditRecord::from_bytes(extra.as_bytes()).is_err());
    }

    /// The canonical form by the general route: the record's JSON through JCS.
    fn canonical_by_jcs(record: &AuditRecord) -> String {
        let value = serde_json::to_value(record).unwrap();
        String::from_utf8(jcs::canonicalize(&value).unwrap()).unwrap()
    }

    #[test]
    fn direct_serialization_equals_jcs_of_the_json() {
        let sparse = record(1, None);
        let mut full = record(7, Some("z-_".to_owned()));
        full.caller = None;
        full.claimed_key_id = Some("did:civ:x#key-1".to_owned());
        full.count = Some(9_007_199_254_740_991);
        full.credential = Some("ABC".to_owned());
        full.issuer = Some("did:civ:issuer".to_owned());
        full.vct = Some("https://schemas.example/vct/OfficialRole/v1".to_owned());
        full.disclosed = vec!["a".to_owned(), "\u{1f}\"\\".to_owned(), "名".to_owned()];
        full.path = "/x/\u{7f}\u{8}\u{c}\n\r\t\u{0}é😀".to_owned();
        full.subject = Some("did:civ:subject".to_owned());
        full.decision = Decision::Deny;
        full.reason = Some("urn:civitas:problem:over-disclosure".to_owned());
        full.purpose = None;
        for r in [sparse, full] {
            assert_eq!(
                String::from_utf8(r.to_bytes()).unwrap(),
                canonical_by_jcs(&r)
            );
        }
    }

    #[test]
    fn placing_an_unplaced_record_gives_its_canonical_bytes() {
        let mut r = record(1, None);
        // Values that look like members must stay inside their strings.
        r.path = r#"/x,"prev":"~","seq":0"#.to_owned();
        r.request_id = "\"seq\":0".to_owned();
        let unplaced = Unplaced::new(&r);
        for (seq, prev) in [
            (1, None),
            (2, Some("abc")),
            (9_007_199_254_740_991, Some("z-_")),
        ] {
            let mut placed = r.clone();
            placed.seq = seq;
            placed.prev = prev.map(str::to_owned);
            assert_eq!(
                String::from_utf8(unplaced.place(seq, prev)).unwrap(),
                canonical_by_jcs(&placed)
            );
        }
    }

    #[test]
    fn batch_commitment_binds_root_and_head() {
        let a = batch_commitment(&[1; 32], &[2; 32]);
        assert_ne!(a, batch_commitment(&[1; 32], &[3; 32]));
        assert_ne!(a, batch_commitment(&[3; 32], &[2; 32]));
    }
}
