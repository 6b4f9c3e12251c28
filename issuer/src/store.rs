//! The issuer's durable state: every change is an [`Event`] appended to an fdatasync'd,
//! group-committed log before anyone relies on it; sled holds what the events imply (offers,
//! codes, tokens, the issued-credential index, status lists and their versions) and is
//! rebuilt from the log after a crash.
//!
//! ```text
//!  handlers ──Command──▶ writer task ──decide (reads sled + this batch's overlay)──▶ Event
//!                          │ one append_batch = one fdatasync for every event of the batch
//!                          ▼ apply the overlay to sled, then answer each handler
//! ```
//!
//! Deciding in one task against sled plus the batch's own pending changes makes every
//! transition (a code redeemed once, a token used once, an index reserved once) atomic
//! without locks in the handlers, while concurrent requests still share fdatasyncs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rand::Rng as _;

use civitas_store::{DerivedState, GroupCommitLog, Log, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::status::{LIST_FILL, LIST_LEN, ListId, StatusCode};

/// Most commands decided and written in one batch.
const MAX_BATCH: usize = 512;
/// Scheduler turns the writer waits for more commands before deciding a batch.
const GATHER_TURNS: usize = 8;
/// Queue of commands waiting for the writer.
const QUEUE: usize = 4096;

/// Why a storage step failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The log or sled failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value does not decode.
    #[error("stored {what} is damaged: {detail}")]
    Damaged {
        /// What.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The writer task has stopped.
    #[error("the issuer's storage writer has stopped")]
    Stopped,
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
}

/// A credential offer as the issuer keeps it (the codes only as hashes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// The offer's public id.
    pub id: String,
    /// Base64url SHA-256 of the pre-authorized code.
    pub code_hash: String,
    /// The credential configuration (type name).
    pub config_id: String,
    /// The claims to issue.
    pub claims: Map<String, Value>,
    /// The DID the offer is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Base64url SHA-256 over the offer id and the tx code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_code_hash: Option<String>,
    /// Who created it (the operator DID).
    pub created_by: String,
    /// Creation time, unix ms.
    pub created_ms: u64,
    /// The code dies at this time, unix ms.
    pub expires_ms: u64,
    /// Credential validity, seconds from issuance.
    pub valid_for_s: u64,
    /// What became of it.
    pub state: OfferState,
}

/// The life of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum OfferState {
    /// Waiting for the holder; `failures` wrong tx codes so far.
    Open {
        /// Wrong tx codes so far.
        failures: u8,
    },
    /// Five wrong tx codes: the code is dead.
    Locked,
    /// The code was exchanged for an access token.
    Redeemed {
        /// Base64url SHA-256 of the access token.
        token_hash: String,
        /// The token dies at this time, unix ms.
        token_expires_ms: u64,
    },
    /// The credentials were issued.
    Issued {
        /// Their ids.
        credentials: Vec<String>,
    },
}

/// One issued credential in the index (no salts, no claims: enough to manage its status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedCredential {
    /// The credential id (base32 SHA-256 of the issuer-signed JWT).
    pub id: String,
    /// The offer it came from.
    pub offer: String,
    /// Its type.
    pub vct: String,
    /// The holder DID (`sub`).
    pub sub: String,
    /// `iat`, unix seconds.
    pub iat: i64,
    /// `exp`, unix seconds.
    pub exp: i64,
    /// Its status list.
    pub list: ListId,
    /// Its index there.
    pub idx: u32,
    /// Its current status.
    pub status: StatusCode,
}

/// One published version of a status list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListVersion {
    /// The list.
    pub list: ListId,
    /// Version number, from 1.
    pub version: u64,
    /// Its `iat`, unix seconds.
    pub iat: i64,
    /// The compact JWS.
    pub jws: String,
}

/// A change to the issuer's state, as written to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum Event {
    /// An offer was made.
    OfferCreated {
        /// The offer.
        offer: Offer,
    },
    /// A wrong tx code was tried.
    TxCodeFailed {
        /// The offer.
        offer: String,
    },
    /// The code was exchanged for an access token.
    CodeRedeemed {
        /// The offer.
        offer: String,
        /// Base64url SHA-256 of the token.
        token_hash: String,
        /// Token expiry, unix ms.
        token_expires_ms: u64,
    },
    /// Credentials were issued (their status indices reserved) and the token used up.
    Issued {
        /// The offer as it now is (state `Issued`, claims dropped).
        offer: Offer,
        /// The access token used up.
        token_hash: String,
        /// The credentials.
        credentials: Vec<IssuedCredential>,
    },
    /// A credential's status changed.
    StatusChanged {
        /// The credential.
        credential: String,
        /// Its new status.
        status: StatusCode,
        /// The operator DID that changed it.
        by: String,
        /// When, unix ms.
        at_ms: u64,
    },
    /// A status list version was published.
    ListPublished {
        /// The version.
        version: ListVersion,
    },
    /// A status list version was anchored on the ledger.
    ListAnchored {
        /// The list.
        list: ListId,
        /// The version.
        version: u64,
        /// The anchor's object id.
        anchor: String,
        /// Its stream sequence number.
        seq: u64,
    },
}

// sled key layout (one tree, prefixed keys):
//   o/<offer id>            → Offer
//   c/<code hash>           → offer id
//   t/<token hash>          → offer id
//   i/<credential id>       → IssuedCredential
//   a/<list be32><idx be32> → credential id (reserved status index)
//   l/<list be32>           → status list bytes (2 bits per entry)
//   v/<list be32><ver be64> → ListVersion
//   h/<list be32>           → latest ListVersion number
//   s/<list be32>           → (anchor seq, anchor id) of the last anchored version
fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![prefix, b'/'];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

pub(crate) fn offer_key(id: &str) -> Vec<u8> {
    key(b'o', &[id.as_bytes()])
}
pub(crate) fn code_key(hash: &str) -> Vec<u8> {
    key(b'c', &[hash.as_bytes()])
}
pub(crate) fn token_key(hash: &str) -> Vec<u8> {
    key(b't', &[hash.as_bytes()])
}
pub(crate) fn credential_key(id: &str) -> Vec<u8> {
    key(b'i', &[id.as_bytes()])
}
pub(crate) fn alloc_key(list: ListId, idx: u32) -> Vec<u8> {
    key(b'a', &[&list.0.to_be_bytes(), &idx.to_be_bytes()])
}
pub(crate) fn list_key(list: ListId) -> Vec<u8> {
    key(b'l', &[&list.0.to_be_bytes()])
}
/// The prefix of every reserved index.
pub(crate) const ALLOC_PREFIX: &[u8] = b"a/";
/// The prefix of one list's reserved indices.
pub(crate) fn alloc_prefix(list: ListId) -> Vec<u8> {
    key(b'a', &[&list.0.to_be_bytes()])
}
pub(crate) fn version_key(list: ListId, version: u64) -> Vec<u8> {
    key(b'v', &[&list.0.to_be_bytes(), &version.to_be_bytes()])
}
pub(crate) fn head_key(list: ListId) -> Vec<u8> {
    key(b'h', &[&list.0.to_be_bytes()])
}
pub(crate) fn anchor_key(list: ListId) -> Vec<u8> {
    key(b's', &[&list.0.to_be_bytes()])
}

/// The highest list with a reserved index (0 when none).
pub(crate) fn highest_list(tree: &sled::Tree) -> Result<u32, StorageError> {
    Ok(match tree.scan_prefix(ALLOC_PREFIX).next_back() {
        Some(item) => {
            let (k, _) = item?;
            k.get(2..6)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(0, u32::from_be_bytes)
        }
        None => 0,
    })
}

type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Reads sled through the changes of the batch being decided, and collects one event's own
/// changes (merged into the batch only when the whole event applied).
pub(crate) struct View<'a> {
    tree: &'a sled::Tree,
    batch: &'a Overlay,
    own: Overlay,
}

impl<'a> View<'a> {
    fn new(tree: &'a sled::Tree, batch: &'a Overlay) -> Self {
        Self {
            tree,
            batch,
            own: Overlay::new(),
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(v) = self.own.get(key).or_else(|| self.batch.get(key)) {
            return Ok(v.clone());
        }
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        self.get(key)?
            .map(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| StorageError::Damaged {
                    what,
                    detail: e.to_string(),
                })
            })
            .transpose()
    }

    pub(crate) fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, StorageError> {
        Ok(self
            .get(key)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.own.insert(key, Some(value));
    }

    pub(crate) fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        // Serializing these plain data types cannot fail.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.put(key, bytes);
    }

    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.own.insert(key, None);
    }
}

impl Event {
    /// Applies the event to the state. Deterministic: replay gives the same state.
    pub(crate) fn apply(&self, view: &mut View<'_>) -> Result<(), StorageError> {
        match self {
            Self::OfferCreated { offer } => {
                view.put(code_key(&offer.code_hash), offer.id.as_bytes().to_vec());
                view.put_json(offer_key(&offer.id), offer);
            }
            Self::TxCodeFailed { offer } => {
                let mut o = load_offer(view, offer)?;
                if let OfferState::Open { failures } = o.state {
                    let failures = failures.saturating_add(1);
                    o.state = if failures >= crate::offers::MAX_TX_CODE_FAILURES {
                        OfferState::Locked
                    } else {
                        OfferState::Open { failures }
                    };
                }
                view.put_json(offer_key(offer), &o);
            }
            Self::CodeRedeemed {
                offer,
                token_hash,
                token_expires_ms,
            } => {
                let mut o = load_offer(view, offer)?;
                o.state = OfferState::Redeemed {
                    token_hash: token_hash.clone(),
                    token_expires_ms: *token_expires_ms,
                };
                view.put(token_key(token_hash), offer.as_bytes().to_vec());
                view.put_json(offer_key(offer), &o);
            }
            Self::Issued {
                offer,
                token_hash,
                credentials,
            } => {
                view.remove(token_key(token_hash));
                view.put_json(offer_key(&offer.id), offer);
                for c in credentials {
                    view.put(alloc_key(c.list, c.idx), c.id.as_bytes().to_vec());
                    view.put_json(credential_key(&c.id), c);
                }
            }
            Self::StatusChanged {
                credential, status, ..
            } => {
                let mut c: IssuedCredential = view
                    .get_json(&credential_key(credential), "credential")?
                    .ok_or_else(|| StorageError::Damaged {
                        what: "status change",
                        detail: format!("no credential {credential}"),
                    })?;
                c.status = *status;
                let mut list = crate::status::load_list(view.get(&list_key(c.list))?)?;
                list.set(c.idx as usize, status.bits())
                    .map_err(|e| StorageError::Damaged {
                        what: "status change",
                        detail: e.to_string(),
                    })?;
                view.put(list_key(c.list), list.as_bytes().to_vec());
                view.put_json(credential_key(credential), &c);
            }
            Self::ListPublished { version } => {
                view.put_json(version_key(version.list, version.version), version);
                view.put(
                    head_key(version.list),
                    version.version.to_be_bytes().to_vec(),
                );
            }
            Self::ListAnchored {
                list,
                version,
                anchor,
                seq,
            } => {
                view.put_json(anchor_key(*list), &(seq, anchor, version));
            }
        }
        Ok(())
    }
}

fn load_offer(view: &View<'_>, id: &str) -> Result<Offer, StorageError> {
    view.get_json(&offer_key(id), "offer")?
        .ok_or_else(|| StorageError::Damaged {
            what: "offer",
            detail: format!("an event names offer {id}, which does not exist"),
        })
}

/// A state transition asked of the writer: it decides, against the current state, which
/// event (if any) to write and what to answer.
pub(crate) trait Command: Send + 'static {
    /// What the caller gets back.
    type Output: Send + 'static;
    /// Decides. `Err` answers the caller without writing anything.
    fn decide(
        self: Box<Self>,
        view: &View<'_>,
    ) -> Result<(Option<Event>, Self::Output), Self::Output>;
}

type Job = Box<dyn FnOnce(&View<'_>) -> (Option<Event>, Box<dyn FnOnce(bool) + Send>) + Send>;

/// The issuer's store: the log, sled, and the writer task.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    state: DerivedState,
    log: GroupCommitLog,
    jobs: mpsc::Sender<Job>,
    alloc: Mutex<Allocator>,
}

/// Status indices of the current list: taken when recorded in sled or handed out since the
/// start (a bitmap loaded from sled at open). One handed out and never recorded (its request
/// failed) stays taken until restart, and was never seen outside the process.
#[derive(Debug)]
struct Allocator {
    current: ListId,
    count: u32,
    taken: Vec<u64>,
}

impl Allocator {
    fn load(tree: &sled::Tree, current: ListId) -> Result<Self, StorageError> {
        let mut taken = vec![0u64; (LIST_LEN as usize).div_ceil(64)];
        let mut count = 0;
        for item in tree.scan_prefix(alloc_prefix(current)) {
            let (k, _) = item?;
            let idx = k
                .get(6..10)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .filter(|i| *i < LIST_LEN)
                .ok_or_else(|| StorageError::Damaged {
                    what: "status index",
                    detail: format!("malformed key {k:?}"),
                })?;
            taken[idx as usize / 64] |= 1 << (idx % 64);
            count += 1;
        }
        Ok(Self {
            current,
            count,
            taken,
        })
    }

    /// Marks `idx` taken; `false` when it already was.
    fn take(&mut self, idx: u32) -> bool {
        let (word, bit) = (idx as usize / 64, 1u64 << (idx % 64));
        let free = self.taken[word] & bit == 0;
        self.taken[word] |= bit;
        free
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("log", &self.inner.log.path())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, replaying what sled lacks.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let log = Log::open(dir.join("log"))?;
        let state = DerivedState::open(dir.join("state"))?;
        replay(&log, &state)?;
        let log = GroupCommitLog::new(log)?;
        let (jobs, rx) = mpsc::channel(QUEUE);
        let tree = state.state();
        let alloc = Mutex::new(Allocator::load(tree, ListId(highest_list(tree)?.max(1)))?);
        let inner = Arc::new(Inner {
            state,
            log,
            jobs,
            alloc,
        });
        tokio::spawn(writer(Arc::downgrade(&inner), rx));
        Ok(Self { inner })
    }

    /// Decides `command` in the writer and, when it yields an event, makes the event durable
    /// and applies it before answering.
    pub(crate) async fn run<C: Command>(&self, command: C) -> Result<C::Output, StorageError> {
        let (tx, rx) = oneshot::channel::<Result<C::Output, StorageError>>();
        let job: Job = Box::new(
            move |view: &View<'_>| match Box::new(command).decide(view) {
                Ok((event, output)) => {
                    let reply: Box<dyn FnOnce(bool) + Send> = Box::new(move |written: bool| {
                        let _ = tx.send(if written {
                            Ok(output)
                        } else {
                            Err(StorageError::Stopped)
                        });
                    });
                    (event, reply)
                }
                Err(output) => {
                    let _ = tx.send(Ok(output));
                    (None, Box::new(|_| {}))
                }
            },
        );
        self.inner
            .jobs
            .send(job)
            .await
            .map_err(|_| StorageError::Stopped)?;
        rx.await.map_err(|_| StorageError::Stopped)?
    }

    /// Reads a value as stored (outside any batch).
    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        View::new(self.inner.state.state(), &Overlay::new()).get_json(key, what)
    }

    /// The highest list with a reserved index (0 when none).
    pub(crate) fn highest_list(&self) -> Result<u32, StorageError> {
        highest_list(self.inner.state.state())
    }

    /// Reads raw bytes as stored.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.inner.state.state().get(key)?.map(|v| v.to_vec()))
    }

    /// Values under a key prefix, in key order.
    pub(crate) fn scan(
        &self,
        prefix: &[u8],
    ) -> impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec), sled::Error>> + use<>
    {
        self.inner.state.state().scan_prefix(prefix)
    }

    /// Takes a random free status index in the current list (moving to a new list once this
    /// one is [`LIST_FILL`] full). Indices are never handed out twice.
    pub fn allocate_index(&self) -> (ListId, u32) {
        let mut alloc = self.inner.alloc.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = rand::thread_rng();
        if alloc.count >= LIST_FILL {
            // A new list has nothing reserved: lists only ever grow past the highest one.
            alloc.current = ListId(alloc.current.0.saturating_add(1));
            alloc.count = 0;
            alloc.taken.iter_mut().for_each(|w| *w = 0);
        }
        // At most half full, so a free index is found in two tries on average.
        loop {
            let idx = rng.gen_range(0..LIST_LEN);
            if alloc.take(idx) {
                alloc.count += 1;
                return (alloc.current, idx);
            }
        }
    }

    /// fdatasyncs so far (for benchmarks).
    pub fn fsync_count(&self) -> u64 {
        self.inner.log.fsync_count()
    }
}

fn replay(log: &Log, state: &DerivedState) -> Result<(), StorageError> {
    let start = state.applied();
    for item in log.iter_from(start)? {
        let (index, record) = item?;
        let event: Event = serde_json::from_slice(&record).map_err(|e| StorageError::Damaged {
            what: "log record",
            detail: format!("record {index}: {e}"),
        })?;
        let batch = Overlay::new();
        let mut view = View::new(state.state(), &batch);
        event.apply(&mut view)?;
        state.apply(to_batch(view.own), index + 1)?;
    }
    Ok(())
}

fn to_batch(overlay: Overlay) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (k, v) in overlay {
        match v {
            Some(v) => batch.insert(k, v),
            None => batch.remove(k),
        }
    }
    batch
}

async fn writer(inner: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            return;
        }
        // Give requests already under way a few turns to join this batch: one fdatasync and
        // one sled transaction then serve them all.
        for _ in 0..GATHER_TURNS {
            if jobs.len() >= MAX_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        let tree = inner.state.state();
        let mut batch = Overlay::new();
        let mut records = Vec::new();
        let mut replies = Vec::new();
        for job in jobs.drain(..) {
            let (event, reply) = job(&View::new(tree, &batch));
            let Some(event) = event else {
                reply(true);
                continue;
            };
            let mut view = View::new(tree, &batch);
            let applied = event.apply(&mut view).map(|()| view.own);
            match (applied, serde_json::to_vec(&event)) {
                (Ok(own), Ok(record)) => {
                    batch.extend(own);
                    records.push(record);
                    replies.push(reply);
                }
                (Err(e), _) => {
                    tracing::error!(error = %e, "an event does not apply; refused");
                    reply(false);
                }
                (_, Err(e)) => {
                    tracing::error!(error = %e, "an event does not encode; refused");
                    reply(false);
                }
            }
        }
        if records.is_empty() {
            continue;
        }
        let n = records.len() as u64;
        let first = match inner.log.append_batch(records).await {
            Ok(first) => first,
            Err(e) => {
                // The log is poisoned: it acknowledges nothing more.
                tracing::error!(error = %e, "the log refused a write; nothing was acknowledged");
                for reply in replies {
                    reply(false);
                }
                continue;
            }
        };
        if let Err(e) = inner.state.apply(to_batch(batch), first + n) {
            // The events are durable but sled missed them: stop, so that nothing is decided
            // against stale state; a restart replays them from the log.
            tracing::error!(error = %e, "applying to sled failed; the writer stops");
            for reply in replies {
                reply(false);
            }
            return;
        }
        for reply in replies {
            reply(true);
        }
    }
}
