//! The audit trail: every decision as a salted, hash-chained record (`civ.audit.v1`),
//! durable before an allowed response leaves; batches of records anchored on the ledger on a
//! fixed cadence (empty batches too, so gaps show), each record provable up to a ledger
//! checkpoint (see `civitas_core::audit`).
//!
//! Storage: `records/` is a group-committed log whose entry `i` is the record with sequence
//! number `i + 1`; `batches/` is a log of batch intents and receipts. Both are read back and
//! the chain checked when the store opens; queries use an in-memory index built then.
//!
//! Denials of requests whose signature was not verified name no caller: they are counted
//! per (claimed key id, reason, route) and written as aggregate records once per anchoring
//! round, at most [`MAX_AGGREGATES`] per round, so unauthenticated traffic cannot flood the
//! trail.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use civitas_client::RegistryClient;
use civitas_core::api::SubmitReceipt;
use civitas_core::audit::{
    AuditRecord, BatchProof, Decision, RECORD_TYPE, RecordProof, STREAM_NAME, Unplaced,
    batch_commitment,
};
use civitas_core::did::{Did, DidUrl};
use civitas_core::encoding;
use civitas_core::keys::SecretKey;
use civitas_core::ledger::{Anchor, AnchorKind, Digest, ObjectId, Signed};
use civitas_core::tlog::{self, MerkleTree};
use civitas_store::{GroupCommitLog, Log, StoreError};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// Most distinct unverified-denial aggregates written per round; the rest are counted in one.
pub const MAX_AGGREGATES: usize = 256;
/// How long the record writer gathers records before each fdatasync: one record per
/// request, each waited for, would otherwise mean an fdatasync every few records.
const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(1);
/// Longest path kept in a record.
const MAX_PATH_CHARS: usize = 512;

/// Why the audit store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditStoreError {
    /// The log failed (the store refuses further writes).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What was read back is not a valid chain.
    #[error("the audit log is damaged at record {seq}: {detail}")]
    Damaged {
        /// The record.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The registry refused or could not be reached.
    #[error("anchoring: {0}")]
    Registry(String),
}

/// What a record says, before the store gives it a place in the chain.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// The request id.
    pub request_id: String,
    /// The verified caller.
    pub caller: Option<String>,
    /// The credential id.
    pub credential: Option<String>,
    /// Its issuer.
    pub issuer: Option<String>,
    /// Its type.
    pub vct: Option<String>,
    /// Disclosed claim names.
    pub disclosed: Vec<String>,
    /// The method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The purpose code.
    pub purpose: Option<String>,
    /// The data subject.
    pub subject: Option<String>,
    /// The problem type URI of a denial; `None` for an allowed request.
    pub reason: Option<String>,
}

/// A batch: its range, commitment parts, the anchor and, once the ledger took it, the
/// receipt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Batch {
    first: u64,
    last: u64,
    tree_root: String,
    head: String,
    anchor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    receipt: Option<SubmitReceipt>,
}

/// The chain's tip, advanced under a lock in the order records are queued.
#[derive(Debug)]
struct Tip {
    next_seq: u64,
    head: Option<[u8; 32]>,
}

#[derive(Debug, Default)]
struct Index {
    by_caller: HashMap<String, Vec<u64>>,
    by_subject: HashMap<String, Vec<u64>>,
    times: Vec<u64>,
}

impl Index {
    fn add(&mut self, record: &AuditRecord) {
        if let Some(c) = &record.caller {
            self.by_caller
                .entry(c.clone())
                .or_default()
                .push(record.seq);
        }
        if let Some(s) = &record.subject {
            self.by_subject
                .entry(s.clone())
                .or_default()
                .push(record.seq);
        }
        self.times.push(record.time);
    }
}

type AggregateKey = (Option<String>, String, String, String);

/// The audit store of one service.
pub struct AuditLog {
    records: GroupCommitLog,
    batches: Mutex<Log>,
    batch_list: Mutex<Vec<Batch>>,
    tip: Mutex<Tip>,
    index: Mutex<Index>,
    unverified: Mutex<BTreeMap<AggregateKey, u64>>,
    service: Did,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("service", &self.service)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

/// One record as a query answers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listed {
    /// The record.
    pub record: AuditRecord,
    /// `anchored` or `pending`.
    pub state: String,
}

/// What a query asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Records with this caller.
    pub caller: Option<String>,
    /// Records with this data subject.
    pub subject: Option<String>,
    /// Records at or after this time, unix ms.
    pub since_ms: Option<u64>,
    /// At most this many (the newest).
    pub limit: usize,
}

fn now_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

fn damaged(seq: u64, detail: impl Into<String>) -> AuditStoreError {
    AuditStoreError::Damaged {
        seq,
        detail: detail.into(),
    }
}

impl AuditLog {
    /// Opens (or creates) the store in `dir` for the service `service`, checking the chain.
    pub fn open(dir: &Path, service: Did) -> Result<Self, AuditStoreError> {
        let records = Log::open(dir.join("records"))?;
        let batches = Log::open(dir.join("batches"))?;
        let mut index = Index::default();
        let mut head = None;
        let mut seq = 0;
        for item in records.iter_from(0)? {
            let (_, bytes) = item?;
            seq += 1;
            let record =
                AuditRecord::from_bytes(&bytes).map_err(|e| damaged(seq, e.to_string()))?;
            if record.seq != seq {
                return Err(damaged(seq, format!("found seq {}", record.seq)));
            }
            let expected_prev = head.map(|h: [u8; 32]| encoding::b64url(&h));
            if record.prev != expected_prev {
                return Err(damaged(seq, "prev is not the hash of the record before"));
            }
            head = Some(encoding::sha256(&bytes));
            index.add(&record);
        }
        let mut batch_list: Vec<Batch> = Vec::new();
        for item in batches.iter_from(0)? {
            let (_, bytes) = item?;
            let batch: Batch = serde_json::from_slice(&bytes)
                .map_err(|e| damaged(seq, format!("batch log: {e}")))?;
            // A receipt record follows its intent: it replaces it.
            match batch_list.last_mut() {
                Some(last) if last.first == batch.first && last.anchor == batch.anchor => {
                    *last = batch;
                }
                _ => batch_list.push(batch),
            }
        }
        Ok(Self {
            records: GroupCommitLog::with_linger(records, RECORD_LINGER)?,
            batches: Mutex::new(batches),
            batch_list: Mutex::new(batch_list),
            tip: Mutex::new(Tip {
                next_seq: seq + 1,
                head,
            }),
            index: Mutex::new(index),
            unverified: Mutex::new(BTreeMap::new()),
            service,
        })
    }

    /// The service DID whose stream anchors the batches.
    pub fn service(&self) -> &Did {
        &self.service
    }

    /// Durable records.
    pub fn len(&self) -> u64 {
        self.records.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// fdatasyncs of the record log so far.
    pub fn fsync_count(&self) -> u64 {
        self.records.fsync_count()
    }

    /// Writes a record and returns its sequence number once it is durable.
    pub async fn append(&self, draft: Draft) -> Result<u64, AuditStoreError> {
        self.append_record(draft, None, None).await
    }

    async fn append_record(
        &self,
        draft: Draft,
        claimed_key_id: Option<String>,
        count: Option<u64>,
    ) -> Result<u64, AuditStoreError> {
        let mut salt = [0u8; 16];
        // A CSPRNG seeded from the OS (ChaCha, reseeded): no system call per record.
        rand::thread_rng().fill_bytes(&mut salt);
        let decision = if draft.reason.is_some() {
            Decision::Deny
        } else {
            Decision::Allow
        };
        let mut path = draft.path;
        if path.chars().count() > MAX_PATH_CHARS {
            path = path.chars().take(MAX_PATH_CHARS).collect();
        }
        let mut record = AuditRecord {
            kind: RECORD_TYPE.to_owned(),
            seq: 0,
            prev: None,
            salt: encoding::b64url(&salt),
            time: now_ms(),
            request_id: draft.request_id,
            caller: draft.caller,
            claimed_key_id,
            count,
            credential: draft.credential,
            issuer: draft.issuer,
            vct: draft.vct,
            disclosed: draft.disclosed,
            method: draft.method,
            path,
            purpose: draft.purpose,
            subject: draft.subject,
            decision,
            reason: draft.reason,
        };
        // Serialized before the chain's lock is taken; under it only seq and prev go in.
        let unplaced = Unplaced::new(&record);
        let queued = loop {
            let attempt = {
                let mut tip = self.tip.lock().unwrap_or_else(|e| e.into_inner());
                let seq = tip.next_seq;
                let prev = tip.head.map(|h| encoding::b64url(&h));
                let bytes = unplaced.place(seq, prev.as_deref());
                let hash = encoding::sha256(&bytes);
                let queued = self.records.try_enqueue(vec![bytes])?;
                if queued.is_some() {
                    tip.next_seq += 1;
                    tip.head = Some(hash);
                    record.seq = seq;
                    record.prev = prev;
                }
                queued
            };
            match attempt {
                Some(queued) => break queued,
                // The writer's queue is full: let it drain, then take a place again.
                None => tokio::time::sleep(std::time::Duration::from_micros(200)).await,
            }
        };
        let index = queued.durable().await?;
        if index + 1 != record.seq {
            return Err(damaged(
                record.seq,
                format!("the log placed it at index {index}"),
            ));
        }
        self.index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&record);
        Ok(record.seq)
    }

    /// Counts a denial of a request whose signature was not verified (written, aggregated,
    /// at the next anchoring round).
    pub fn note_unverified(
        &self,
        claimed_key_id: Option<&str>,
        reason: &str,
        method: &str,
        route: &str,
    ) {
        let mut map = self.unverified.lock().unwrap_or_else(|e| e.into_inner());
        let mut key = (
            claimed_key_id.map(|k| k.chars().take(256).collect()),
            reason.to_owned(),
            method.chars().take(16).collect(),
            route.chars().take(MAX_PATH_CHARS).collect(),
        );
        if !map.contains_key(&key) && map.len() >= MAX_AGGREGATES {
            key = (
                None,
                "urn:civitas:problem:aggregate-overflow".to_owned(),
                "*".to_owned(),
                "*".to_owned(),
            );
        }
        *map.entry(key).or_insert(0) += 1;
    }

    /// Writes the aggregated unverified denials counted since the last call.
    pub async fn flush_unverified(&self) -> Result<(), AuditStoreError> {
        let taken = std::mem::take(&mut *self.unverified.lock().unwrap_or_else(|e| e.into_inner()));
        for ((claimed, reason, method, path), count) in taken {
            let draft = Draft {
                request_id: format!("aggregate-{}", now_ms()),
                method,
                path,
                reason: Some(reason),
                ..Draft::default()
            };
            self.append_record(draft, claimed, Some(count)).await?;
        }
        Ok(())
    }

    /// The records a query selects, oldest first, each `anchored` or `pending`.
    pub fn query(&self, query: &Query) -> Result<Vec<Listed>, AuditStoreError> {
        let seqs: Vec<u64> = {
            let index = self.index.lock().unwrap_or_else(|e| e.into_inner());
            let mut seqs: Vec<u64> = match (&query.caller, &query.subject) {
                (Some(c), Some(s)) => {
                    let by_subject = index.by_subject.get(s).cloned().unwrap_or_default();
                    index
                        .by_caller
                        .get(c)
                        .map(|v| {
                            v.iter()
                                .copied()
                                .filter(|q| by_subject.binary_search(q).is_ok())
                                .collect()
                        })
                        .unwrap_or_default()
                }
                (Some(c), None) => index.by_caller.get(c).cloned().unwrap_or_default(),
                (None, Some(s)) => index.by_subject.get(s).cloned().unwrap_or_default(),
                // Every record (for supervisors).
                (None, None) => (1..=self.records.len()).collect(),
            };
            if let Some(since) = query.since_ms {
                seqs.retain(|q| {
                    usize::try_from(*q - 1)
                        .ok()
                        .and_then(|i| index.times.get(i))
                        .is_some_and(|t| *t >= since)
                });
            }
            let skip = seqs.len().saturating_sub(query.limit.max(1));
            seqs.drain(..skip);
            seqs
        };
        let anchored_up_to = self.anchored_up_to();
        seqs.into_iter()
            .map(|seq| {
                let record = self.read(seq)?;
                Ok(Listed {
                    record,
                    state: if seq <= anchored_up_to {
                        "anchored"
                    } else {
                        "pending"
                    }
                    .to_owned(),
                })
            })
            .collect()
    }

    /// Record `seq`, if written.
    pub fn read(&self, seq: u64) -> Result<AuditRecord, AuditStoreError> {
        let bytes = self.records.read(seq.saturating_sub(1))?;
        AuditRecord::from_bytes(&bytes).map_err(|e| damaged(seq, e.to_string()))
    }

    /// The highest sequence number covered by an anchor the ledger took.
    fn anchored_up_to(&self) -> u64 {
        self.batch_list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find(|b| b.receipt.is_some())
            .map_or(0, |b| b.last)
    }

    /// The proof of record `seq`, or `None` while its batch is not anchored yet.
    pub fn proof(&self, seq: u64) -> Result<Option<RecordProof>, AuditStoreError> {
        let batch = {
            let list = self.batch_list.lock().unwrap_or_else(|e| e.into_inner());
            list.iter()
                .find(|b| b.first <= seq && seq <= b.last && b.receipt.is_some())
                .cloned()
        };
        let Some(batch) = batch else {
            return Ok(None);
        };
        let Some(receipt) = batch.receipt else {
            return Ok(None);
        };
        let records = self.records.read_range(batch.first - 1, batch.last)?;
        let mut tree = MerkleTree::new();
        for r in &records {
            tree.push(tlog::leaf_hash(r));
        }
        let inclusion = tree
            .inclusion_proof(seq - batch.first, tree.len())
            .map_err(|e| damaged(seq, e.to_string()))?;
        let record = records
            .get(usize::try_from(seq - batch.first).unwrap_or(usize::MAX))
            .ok_or_else(|| damaged(seq, "missing from its batch"))?;
        Ok(Some(RecordProof {
            record: String::from_utf8_lossy(record).into_owned(),
            batch: BatchProof {
                first: batch.first,
                last: batch.last,
                tree_root: batch.tree_root,
                head: batch.head,
                inclusion: inclusion.iter().map(|h| encoding::b64url(h)).collect(),
            },
            anchor: batch.anchor,
            receipt,
        }))
    }

    fn persist_batch(&self, batch: &Batch) -> Result<(), AuditStoreError> {
        let bytes = serde_json::to_vec(batch).map_err(|e| damaged(batch.first, e.to_string()))?;
        self.batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&[bytes])?;
        Ok(())
    }

    /// One anchoring round: writes the aggregated unverified denials, closes a batch of the
    /// records since the last one (possibly none), anchors its commitment in the stream
    /// `<service>/audit` signed with `key` (`kid`, an assertion key of the service DID),
    /// and keeps the receipt. A batch whose receipt was lost in a crash is finished first.
    pub async fn anchor_round(
        &self,
        registry: &RegistryClient,
        key: &SecretKey,
        kid: &DidUrl,
    ) -> Result<(), AuditStoreError> {
        self.flush_unverified().await?;
        let pending = {
            let list = self.batch_list.lock().unwrap_or_else(|e| e.into_inner());
            list.last().filter(|b| b.receipt.is_none()).cloned()
        };
        let batch = match pending {
            Some(b) => b,
            None => self.close_batch(registry, key, kid).await?,
        };
        let receipt = match registry.submit("/anchors", batch.anchor.as_bytes()).await {
            Ok(receipt) => receipt,
            Err(e) => {
                // Taken before a crash? Then the stream head is this very anchor.
                let id = ObjectId::of(batch.anchor.as_bytes());
                let stream = format!("{}/{STREAM_NAME}", self.service);
                match registry.anchor_head(&stream).await {
                    Ok(Some(head)) if head.id == id => registry
                        .receipt_for(head.index, batch.anchor.as_bytes())
                        .await
                        .map_err(|e| AuditStoreError::Registry(e.to_string()))?,
                    _ => return Err(AuditStoreError::Registry(e.to_string())),
                }
            }
        };
        let done = Batch {
            receipt: Some(receipt),
            ..batch
        };
        self.persist_batch(&done)?;
        let mut list = self.batch_list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = list.last_mut() {
            *last = done;
        }
        Ok(())
    }

    async fn close_batch(
        &self,
        registry: &RegistryClient,
        key: &SecretKey,
        kid: &DidUrl,
    ) -> Result<Batch, AuditStoreError> {
        let previous_last = {
            let list = self.batch_list.lock().unwrap_or_else(|e| e.into_inner());
            list.last().map_or(0, |b| b.last)
        };
        // Records queued but not yet durable are left for the next batch.
        let last = {
            let tip = self.tip.lock().unwrap_or_else(|e| e.into_inner());
            tip.next_seq - 1
        }
        .min(self.records.len());
        let first = previous_last + 1;
        let records = if last >= first {
            self.records.read_range(first - 1, last)?
        } else {
            Vec::new()
        };
        let mut tree = MerkleTree::new();
        for r in &records {
            tree.push(tlog::leaf_hash(r));
        }
        // The chain head when the batch closed: its last record, or for an empty batch the
        // record before it (all zeros before the first record).
        let head = match records.last() {
            Some(r) => encoding::sha256(r),
            None if last == 0 => [0u8; 32],
            None => encoding::sha256(&self.records.read(last - 1)?),
        };
        let tree_root = tree.root();
        let stream = format!("{}/{STREAM_NAME}", self.service);
        let (seq, prev) = match registry
            .anchor_head(&stream)
            .await
            .map_err(|e| AuditStoreError::Registry(e.to_string()))?
        {
            Some(h) => (h.seq + 1, Some(h.id)),
            None => (1, None),
        };
        let anchor = Anchor {
            kind: AnchorKind::AuditBatch,
            stream,
            seq,
            prev,
            root: Digest(batch_commitment(&tree_root, &head)),
            first: Some(first),
            last: Some(last),
            signer: kid.clone(),
        };
        let signed = Signed::sign(anchor, key);
        let batch = Batch {
            first,
            last,
            tree_root: encoding::b64url(&tree_root),
            head: encoding::b64url(&head),
            anchor: String::from_utf8_lossy(signed.bytes()).into_owned(),
            receipt: None,
        };
        // The intent is durable before the ledger sees the anchor, so that a crash in
        // between finds the batch and its receipt again instead of anchoring a fork.
        self.persist_batch(&batch)?;
        self.batch_list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(batch.clone());
        Ok(batch)
    }
}

/// Runs an anchoring round every `interval` until the task is dropped; a failed round is
/// logged and retried at the next.
pub async fn anchor_loop(
    audit: Arc<AuditLog>,
    registry: Arc<RegistryClient>,
    key: Arc<SecretKey>,
    kid: DidUrl,
    interval: std::time::Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = audit.anchor_round(&registry, &key, &kid).await {
            tracing::warn!(error = %e, "anchoring the audit batch failed; retrying next round");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Did {
        "did:civ:ajw3a3eajcu3tjwo4tjhffjexkgozuxi"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn draft(caller: &str, subject: Option<&str>, reason: Option<&str>) -> Draft {
        Draft {
            request_id: "r".to_owned(),
            caller: Some(caller.to_owned()),
            method: "GET".to_owned(),
            path: "/datasets/x".to_owned(),
            subject: subject.map(str::to_owned),
            reason: reason.map(str::to_owned),
            ..Draft::default()
        }
    }

    #[tokio::test]
    async fn records_chain_survive_a_restart_and_are_found_by_caller_and_subject() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            let log = AuditLog::open(dir.path(), service()).unwrap_or_else(|e| panic!("{e}"));
            let mut tasks = Vec::new();
            let log = Arc::new(log);
            for i in 0..20 {
                let log = Arc::clone(&log);
                tasks.push(tokio::spawn(async move {
                    let caller = if i % 2 == 0 { "did:civ:a" } else { "did:civ:b" };
                    log.append(draft(caller, (i % 5 == 0).then_some("did:civ:s"), None))
                        .await
                }));
            }
            for t in tasks {
                t.await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            log.note_unverified(Some("did:civ:x#k"), "urn:civitas:problem:x", "GET", "/a");
            log.note_unverified(Some("did:civ:x#k"), "urn:civitas:problem:x", "GET", "/a");
            log.flush_unverified()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(log.len(), 21);
        }
        // Reopened: the chain is checked and the index rebuilt.
        let log = AuditLog::open(dir.path(), service()).unwrap_or_else(|e| panic!("{e}"));
        let mut prev = None;
        for seq in 1..=21 {
            let record = log.read(seq).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(record.seq, seq);
            assert_eq!(record.prev, prev);
            prev = Some(civitas_core::audit::record_hash(&record.to_bytes()));
        }
        let aggregate = log.read(21).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(aggregate.count, Some(2));
        assert_eq!(aggregate.caller, None);
        assert_eq!(aggregate.claimed_key_id.as_deref(), Some("did:civ:x#k"));
        assert_eq!(aggregate.decision, Decision::Deny);
        let by_a = log
            .query(&Query {
                caller: Some("did:civ:a".to_owned()),
                limit: 100,
                ..Query::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(by_a.len(), 10);
        assert!(by_a.iter().all(|l| l.state == "pending"));
        let about_s = log
            .query(&Query {
                subject: Some("did:civ:s".to_owned()),
                limit: 100,
                ..Query::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(about_s.len(), 4);
        // A pending record has no proof yet.
        assert!(log.proof(1).unwrap_or_else(|e| panic!("{e}")).is_none());
    }

    #[tokio::test]
    async fn a_rewritten_record_is_found_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            let log = AuditLog::open(dir.path(), service()).unwrap_or_else(|e| panic!("{e}"));
            for caller in ["did:civ:a", "did:civ:b", "did:civ:c"] {
                log.append(draft(caller, None, None))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
        // Rewrite the middle record's caller in place (same length), as an intruder would.
        let path = std::fs::read_dir(dir.path().join("records"))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .unwrap_or_else(|| panic!("no log file"));
        let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let at = bytes
            .windows(9)
            .position(|w| w == b"did:civ:b")
            .unwrap_or_else(|| panic!("record 2 not found"));
        bytes[at + 8] = b'z';
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{e}"));
        // The frame checksum or the chain catches it: the store refuses to open.
        match AuditLog::open(dir.path(), service()) {
            Ok(log) => panic!("opened with {} records: {:?}", log.len(), log.read(2)),
            Err(e) => assert!(e.to_string().contains("record"), "{e}"),
        }
    }
}
