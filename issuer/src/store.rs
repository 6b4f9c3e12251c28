//! The issuer's durable state: every change is an [`Event`] appended to an fdatasync'd,
//! group-committed log before anyone relies on it; sled holds what the events imply (offers
//! with their codes' and tokens' states, the issued-credential index, status lists and their
//! versions) and is rebuilt from the log after a crash.
//!
//! ```text
//!  handlers ──Command──▶ writer task: while the last round's fdatasync runs, gathers the
//!                        │ next round of commands and decides each against sled + the
//!                        │ rounds sled lacks + the round's own changes; queues the round's
//!                        │ events on the group-commit log once that fdatasync has ended
//!                        ▼
//!                        acknowledger task: once a round is durable, makes its changes
//!                        │ readable and answers its handlers
//!                        ▼
//!                        applier thread: writes every acknowledged round waiting to sled,
//!                        then forgets their overlays
//! ```
//!
//! Deciding in one task against everything decided before makes every transition (a code
//! redeemed once, a token used once) atomic without locks in the handlers. Status indices
//! are the exception: a handler takes one from an in-memory allocator under a mutex before
//! signing, and it becomes durable in its credential's record, written with the token's use
//! (the allocator is rebuilt from those records at open).
//!
//! The writer does not wait for a round to be durable or applied before it gathers the
//! next, so while one round's fdatasync runs, the handlers of the others keep the cores
//! busy; and sled's writes are off every handler's path. Reads through [`Store`]
//! see every acknowledged round, from its overlay until sled has it; scans wait for sled.
//!
//! The applier writes sled key by key ([`DerivedState::apply_each`]): a sled batch would
//! hold off every reader while it is written. After a crash, sled may therefore hold a part
//! of the events past its applied marker, and replaying them must not change what they
//! already did: every event sets values, it never adds to them.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand::Rng as _;

use civitas_store::{DerivedState, GroupCommitLog, Log, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};

use crate::status::{LIST_FILL, LIST_LEN, ListId, StatusCode};

/// Most commands decided in one round.
const MAX_ROUND: usize = 512;
/// Queue of commands waiting for the writer.
const QUEUE: usize = 4096;
/// Rounds queued on the log and waiting to be acknowledged, or acknowledged and waiting for
/// sled: the writer waits when either queue is full.
const ROUNDS_IN_FLIGHT: usize = 256;

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
    /// The thread that writes acknowledged rounds to sled could not be started.
    #[error("cannot start the sled applier thread: {0}")]
    Applier(std::io::Error),
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
        /// Wrong tx codes so far, this one included. A count rather than "one more", so
        /// that replaying the event over a state that already has it changes nothing.
        /// Absent in logs written before it was recorded: one more then.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failures: Option<u8>,
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
        /// Base64url SHA-256 of the access token used up (a record: the offer's state says
        /// the token is used).
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
//   i/<credential id>       → IssuedCredential (and so its reserved status index)
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
pub(crate) fn credential_key(id: &str) -> Vec<u8> {
    key(b'i', &[id.as_bytes()])
}
pub(crate) fn list_key(list: ListId) -> Vec<u8> {
    key(b'l', &[&list.0.to_be_bytes()])
}
/// The prefix of every issued credential.
const CREDENTIAL_PREFIX: &[u8] = b"i/";
/// The prefix of the reserved-index keys of earlier versions, which kept one key per index
/// beside the credential record; removed at open.
const OLD_ALLOC_PREFIX: &[u8] = b"a/";
pub(crate) fn version_key(list: ListId, version: u64) -> Vec<u8> {
    key(b'v', &[&list.0.to_be_bytes(), &version.to_be_bytes()])
}
pub(crate) fn head_key(list: ListId) -> Vec<u8> {
    key(b'h', &[&list.0.to_be_bytes()])
}
pub(crate) fn anchor_key(list: ListId) -> Vec<u8> {
    key(b's', &[&list.0.to_be_bytes()])
}

/// Values a round or an event sets, by key (events set values; none removes a key).
type Overlay = BTreeMap<Vec<u8>, Vec<u8>>;

/// Reads sled through the rounds it does not have yet and the changes of the round being
/// decided, and collects one event's own changes (merged into the round only when the whole
/// event applied).
pub(crate) struct View<'a> {
    tree: &'a sled::Tree,
    /// Earlier rounds not yet in sled, oldest first.
    earlier: &'a [Arc<Overlay>],
    round: &'a Overlay,
    own: Overlay,
}

impl<'a> View<'a> {
    fn new(tree: &'a sled::Tree, earlier: &'a [Arc<Overlay>], round: &'a Overlay) -> Self {
        Self {
            tree,
            earlier,
            round,
            own: Overlay::new(),
        }
    }

    /// Calls `f` with the value of `key`: from this event's own changes, else the round's,
    /// else the newest earlier round that set it, else sled.
    fn read<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R, StorageError> {
        let newest_first = [&self.own, self.round]
            .into_iter()
            .chain(self.earlier.iter().rev().map(|o| &**o));
        for overlay in newest_first {
            if let Some(v) = overlay.get(key) {
                return Ok(f(Some(v)));
            }
        }
        Ok(f(self.tree.get(key)?.as_deref()))
    }

    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(key, |v| v.map(<[u8]>::to_vec))
    }

    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        decode_json(self.get(key)?, what)
    }

    /// Whether `key` holds exactly `expected` (read as [`get`](Self::get), without a copy).
    pub(crate) fn holds(&self, key: &[u8], expected: &[u8]) -> Result<bool, StorageError> {
        self.read(key, |v| v == Some(expected))
    }

    pub(crate) fn get_u64(&self, key: &[u8]) -> Result<Option<u64>, StorageError> {
        Ok(self
            .get(key)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.own.insert(key, value);
    }

    pub(crate) fn put_json<T: Serialize>(&mut self, key: Vec<u8>, value: &T) {
        // Serializing these plain data types cannot fail.
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.put(key, bytes);
    }
}

/// Decodes a stored JSON value, if there is one.
fn decode_json<T: serde::de::DeserializeOwned>(
    bytes: Option<Vec<u8>>,
    what: &'static str,
) -> Result<Option<T>, StorageError> {
    bytes.map(|bytes| decode(&bytes, what)).transpose()
}

/// Decodes a stored JSON value.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError::Damaged {
        what,
        detail: e.to_string(),
    })
}

impl Event {
    /// Applies the event to the state. Deterministic: replay gives the same state.
    pub(crate) fn apply(&self, view: &mut View<'_>) -> Result<(), StorageError> {
        match self {
            Self::OfferCreated { offer } => {
                view.put(code_key(&offer.code_hash), offer.id.as_bytes().to_vec());
                view.put_json(offer_key(&offer.id), offer);
            }
            Self::TxCodeFailed { offer, failures } => {
                let mut o = load_offer(view, offer)?;
                if let OfferState::Open { failures: before } = o.state {
                    let failures = failures.unwrap_or_else(|| before.saturating_add(1));
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
                view.put_json(offer_key(offer), &o);
            }
            Self::Issued {
                offer, credentials, ..
            } => {
                view.put_json(offer_key(&offer.id), offer);
                for c in credentials {
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
    log: GroupCommitLog,
    jobs: mpsc::Sender<Job>,
    alloc: Mutex<Allocator>,
    shared: Arc<Shared>,
}

/// What the acknowledger and the applier use too. They hold it weakly, and the log is not
/// in it: once the last [`Store`] handle is gone, the log closes at once (a store can be
/// opened again), and sled closes as soon as the applier has written what it holds.
struct Shared {
    state: DerivedState,
    /// Rounds decided but not yet in sled, oldest first.
    unapplied: RwLock<VecDeque<Unapplied>>,
    /// The last round acknowledged.
    acknowledged: AtomicU64,
    /// The last round in sled; closed once the applier has stopped.
    applied: watch::Receiver<u64>,
    /// Set when the log or sled failed: the writer decides nothing more.
    failed: AtomicBool,
}

/// A round's changes, until sled has them.
struct Unapplied {
    round: u64,
    overlay: Arc<Overlay>,
    /// Durable and answered: readers see it.
    acknowledged: bool,
}

/// Status indices of the current list: taken when recorded in sled or handed out since the
/// start (a bitmap built at open from the credential records). One handed out and never
/// recorded (its request failed) stays taken until restart, and was never seen outside the
/// process.
#[derive(Debug)]
struct Allocator {
    current: ListId,
    count: u32,
    taken: Vec<u64>,
}

/// Where an issued credential's status is, read from its record at open.
#[derive(Deserialize)]
struct Reserved {
    list: ListId,
    idx: u32,
}

impl Allocator {
    /// Builds the allocator from every credential record: the current list is the highest
    /// one that has a credential (or the first), and its taken indices are theirs. The
    /// records are the reservations: an index is recorded with its credential, in the same
    /// event, so no key of its own is written per credential. Open reads every record once.
    fn load(tree: &sled::Tree) -> Result<Self, StorageError> {
        let mut alloc = Self {
            current: ListId(1),
            count: 0,
            taken: vec![0u64; (LIST_LEN as usize).div_ceil(64)],
        };
        for item in tree.scan_prefix(CREDENTIAL_PREFIX) {
            let (_, value) = item?;
            let Reserved { list, idx } = decode(&value, "credential")?;
            if idx >= LIST_LEN {
                return Err(StorageError::Damaged {
                    what: "credential",
                    detail: format!("status index {idx} is outside a list of {LIST_LEN}"),
                });
            }
            if list > alloc.current {
                alloc.current = list;
                alloc.count = 0;
                alloc.taken.iter_mut().for_each(|w| *w = 0);
            }
            if list == alloc.current && alloc.take(idx) {
                alloc.count += 1;
            }
        }
        Ok(alloc)
    }

    /// Marks `idx` taken; `false` when it already was.
    fn take(&mut self, idx: u32) -> bool {
        let (word, bit) = (idx as usize / 64, 1u64 << (idx % 64));
        let free = self.taken[word] & bit == 0;
        self.taken[word] |= bit;
        free
    }

    /// The highest list with an index handed out (0 when none).
    fn highest_list(&self) -> u32 {
        if self.count == 0 {
            // Only the first list is ever current with nothing taken: a new list is
            // started by the allocation that takes its first index.
            self.current.0 - 1
        } else {
            self.current.0
        }
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
        remove_old_reservations(tree)?;
        let alloc = Mutex::new(Allocator::load(tree)?);
        let (applied_tx, applied) = watch::channel(0);
        let shared = Arc::new(Shared {
            state,
            unapplied: RwLock::new(VecDeque::new()),
            acknowledged: AtomicU64::new(0),
            applied,
            failed: AtomicBool::new(false),
        });
        let (to_acknowledger, acknowledger_rx) = mpsc::channel(ROUNDS_IN_FLIGHT);
        let (to_applier, applier_rx) = mpsc::channel(ROUNDS_IN_FLIGHT);
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("issuer-sled-applier".to_owned())
            .spawn(move || applier(weak, applier_rx, applied_tx))
            .map_err(StorageError::Applier)?;
        // The last round whose fdatasync has ended, for the writer to pace its rounds by.
        let (settled_tx, settled) = watch::channel(0);
        tokio::spawn(acknowledger(
            Arc::downgrade(&shared),
            acknowledger_rx,
            to_applier,
            settled_tx,
        ));
        let inner = Arc::new(Inner {
            log,
            jobs,
            alloc,
            shared,
        });
        tokio::spawn(writer(Arc::downgrade(&inner), rx, to_acknowledger, settled));
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

    /// Reads a value as acknowledged.
    pub(crate) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<T>, StorageError> {
        decode_json(self.get(key)?, what)
    }

    /// The highest list with an index handed out (0 when none).
    pub(crate) fn highest_list(&self) -> u32 {
        self.inner
            .alloc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .highest_list()
    }

    /// Reads raw bytes as acknowledged: from the newest acknowledged round sled does not
    /// have yet that changed the key, else from sled.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        {
            let unapplied = self
                .inner
                .shared
                .unapplied
                .read()
                .unwrap_or_else(|e| e.into_inner());
            let acknowledged = unapplied.iter().rev().filter(|u| u.acknowledged);
            for round in acknowledged {
                if let Some(value) = round.overlay.get(key) {
                    return Ok(Some(value.clone()));
                }
            }
        }
        // A round leaves the list only once sled has it.
        Ok(self
            .inner
            .shared
            .state
            .state()
            .get(key)?
            .map(|v| v.to_vec()))
    }

    /// Values under a key prefix, in key order, once sled holds every acknowledged change.
    pub(crate) async fn scan(
        &self,
        prefix: &[u8],
    ) -> Result<
        impl DoubleEndedIterator<Item = Result<(sled::IVec, sled::IVec), sled::Error>> + use<>,
        StorageError,
    > {
        self.settled().await?;
        Ok(self.inner.shared.state.state().scan_prefix(prefix))
    }

    /// Waits until sled holds every change acknowledged so far.
    async fn settled(&self) -> Result<(), StorageError> {
        let target = self.inner.shared.acknowledged.load(Ordering::Acquire);
        let mut applied = self.inner.shared.applied.clone();
        applied
            .wait_for(|applied| *applied >= target)
            .await
            .map(drop)
            .map_err(|_| StorageError::Stopped)
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

    /// Waits until sled holds every change acknowledged so far and has written its dirty
    /// pages out, so that sled's background work for earlier writes does not fall into what
    /// follows (for benchmarks; the log, not sled, is the durability point).
    pub async fn settle(&self) -> Result<(), StorageError> {
        self.settled().await?;
        self.inner.shared.state.flush().await?;
        Ok(())
    }

    /// fdatasyncs so far (for benchmarks).
    pub fn fsync_count(&self) -> u64 {
        self.inner.log.fsync_count()
    }
}

/// Removes the per-index reservation keys earlier versions wrote: the credential records
/// hold the same indices.
fn remove_old_reservations(tree: &sled::Tree) -> Result<(), StorageError> {
    let mut batch = sled::Batch::default();
    for item in tree.scan_prefix(OLD_ALLOC_PREFIX) {
        batch.remove(item?.0);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

fn replay(log: &Log, state: &DerivedState) -> Result<(), StorageError> {
    let start = state.applied();
    for item in log.iter_from(start)? {
        let (index, record) = item?;
        let event: Event = serde_json::from_slice(&record).map_err(|e| StorageError::Damaged {
            what: "log record",
            detail: format!("record {index}: {e}"),
        })?;
        let round = Overlay::new();
        let mut view = View::new(state.state(), &[], &round);
        event.apply(&mut view)?;
        state.apply(to_batch(view.own), index + 1)?;
    }
    Ok(())
}

fn to_batch(overlay: Overlay) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (k, v) in overlay {
        batch.insert(k, v);
    }
    batch
}

/// The round the writer is deciding: its overlay, its records and who waits for them.
struct Round<'a> {
    tree: &'a sled::Tree,
    earlier: Vec<Arc<Overlay>>,
    overlay: Overlay,
    records: Vec<Vec<u8>>,
    replies: Vec<Reply>,
}

type Reply = Box<dyn FnOnce(bool) + Send>;

impl<'a> Round<'a> {
    /// A round decided after every round not yet in sled.
    fn new(inner: &'a Inner) -> Self {
        let earlier = inner
            .shared
            .unapplied
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|u| u.overlay.clone())
            .collect();
        Self {
            tree: inner.shared.state.state(),
            earlier,
            overlay: Overlay::new(),
            records: Vec::new(),
            replies: Vec::new(),
        }
    }

    /// Decides `job` against sled, the earlier rounds and the events decided before it in
    /// this round.
    fn decide(&mut self, job: Job) {
        let (event, reply) = job(&View::new(self.tree, &self.earlier, &self.overlay));
        let Some(event) = event else {
            reply(true);
            return;
        };
        let mut view = View::new(self.tree, &self.earlier, &self.overlay);
        let applied = event.apply(&mut view).map(|()| view.own);
        match (applied, serde_json::to_vec(&event)) {
            (Ok(own), Ok(record)) => {
                self.overlay.extend(own);
                self.records.push(record);
                self.replies.push(reply);
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
}

/// A round queued on the log, waiting to be durable.
struct Queued {
    round: u64,
    overlay: Arc<Overlay>,
    /// Records in the round.
    len: u64,
    queued: civitas_store::Queued,
    replies: Vec<Reply>,
}

/// A round durable and answered, waiting for sled.
struct Acknowledged {
    round: u64,
    overlay: Arc<Overlay>,
    /// The applied marker once sled has it: the log records up to its last one.
    marker: u64,
}

/// Decides commands in rounds and queues each round's events on the log, without waiting
/// for earlier rounds to be applied.
///
/// A round stays open, deciding the commands that arrive, until the log has made the round
/// before it durable (or it holds [`MAX_ROUND`] commands): a round is what arrived during
/// the last fdatasync, and one fdatasync serves it. What closes a round is the log, never
/// how many handlers are ready to run: a round that waited for every ready handler would
/// gather all of them, and they would all wait on the same fdatasync while the cores idle.
async fn writer(
    inner: std::sync::Weak<Inner>,
    mut rx: mpsc::Receiver<Job>,
    acknowledger: mpsc::Sender<Queued>,
    mut settled: watch::Receiver<u64>,
) {
    let mut jobs = Vec::with_capacity(MAX_ROUND);
    let mut next_round = 0u64;
    loop {
        if rx.recv_many(&mut jobs, MAX_ROUND).await == 0 {
            return;
        }
        let Some(inner) = inner.upgrade() else { return };
        if inner.shared.failed.load(Ordering::Acquire) {
            // Nothing more is decided: the commands get "stopped".
            return;
        }
        let mut round = Round::new(&inner);
        let mut decided = 0;
        loop {
            for job in jobs.drain(..) {
                round.decide(job);
                decided += 1;
            }
            // Settled: durable, or failed (and the next write fails at once).
            if decided >= MAX_ROUND || *settled.borrow() >= next_round {
                break;
            }
            tokio::select! {
                received = rx.recv_many(&mut jobs, MAX_ROUND - decided) => {
                    if received == 0 {
                        break;
                    }
                }
                changed = settled.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        let Round {
            overlay,
            records,
            replies,
            ..
        } = round;
        if records.is_empty() {
            continue;
        }
        let len = records.len() as u64;
        let queued = match inner.log.enqueue(records).await {
            Ok(queued) => queued,
            Err(e) => {
                tracing::error!(error = %e, "the log refused a write; nothing was acknowledged");
                inner.shared.failed.store(true, Ordering::Release);
                replies.into_iter().for_each(|reply| reply(false));
                return;
            }
        };
        next_round += 1;
        let overlay = Arc::new(overlay);
        inner
            .shared
            .unapplied
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Unapplied {
                round: next_round,
                overlay: overlay.clone(),
                acknowledged: false,
            });
        let queued = Queued {
            round: next_round,
            overlay,
            len,
            queued,
            replies,
        };
        if acknowledger.send(queued).await.is_err() {
            return;
        }
    }
}

/// Answers each round's handlers, in order, once its events are durable.
async fn acknowledger(
    shared: std::sync::Weak<Shared>,
    mut rx: mpsc::Receiver<Queued>,
    applier: mpsc::Sender<Acknowledged>,
    settled: watch::Sender<u64>,
) {
    while let Some(Queued {
        round,
        overlay,
        len,
        queued,
        replies,
    }) = rx.recv().await
    {
        let durable = queued.durable().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let first = match durable {
            Ok(first) => first,
            Err(e) => {
                // The log is poisoned: it acknowledges nothing more, so every later round
                // fails too, and the writer decides no more.
                tracing::error!(error = %e, "the log refused a write; nothing was acknowledged");
                shared.failed.store(true, Ordering::Release);
                replies.into_iter().for_each(|reply| reply(false));
                settled.send_replace(round);
                continue;
            }
        };
        {
            let mut unapplied = shared.unapplied.write().unwrap_or_else(|e| e.into_inner());
            if let Some(u) = unapplied.iter_mut().find(|u| u.round == round) {
                u.acknowledged = true;
            }
        }
        shared.acknowledged.store(round, Ordering::Release);
        replies.into_iter().for_each(|reply| reply(true));
        settled.send_replace(round);
        let acknowledged = Acknowledged {
            round,
            overlay,
            marker: first + len,
        };
        // An applier that has stopped (sled failed; it said why) takes nothing more, but
        // the rounds queued behind this one are still answered as they become durable:
        // their events are in the log, and a restart applies them.
        let _ = applier.send(acknowledged).await;
    }
}

/// Writes acknowledged rounds to sled (every round waiting at once) and then forgets their
/// overlays.
fn applier(
    shared: std::sync::Weak<Shared>,
    mut rx: mpsc::Receiver<Acknowledged>,
    applied: watch::Sender<u64>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut rounds = vec![first];
        while let Ok(more) = rx.try_recv() {
            rounds.push(more);
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (last, marker) = rounds.last().map_or((0, 0), |r| (r.round, r.marker));
        // One by one rather than as one sled batch: a batch would hold off every reader
        // until it is written, and readers are served the rounds' overlays meanwhile.
        // Replay is idempotent, as `apply_each` asks.
        let changes = rounds.iter().flat_map(|round| {
            round
                .overlay
                .iter()
                .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
        });
        if let Err(e) = shared.state.apply_each(changes, marker) {
            // The events are durable but sled missed them: stop deciding, so that nothing
            // is decided against stale state (readers still see the rounds); a restart
            // replays them from the log.
            tracing::error!(error = %e, "applying to sled failed; the issuer's store stops");
            shared.failed.store(true, Ordering::Release);
            return;
        }
        shared
            .unapplied
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|u| u.round > last);
        applied.send_replace(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(state: OfferState) -> Offer {
        let mut claims = Map::new();
        claims.insert("given_name".to_owned(), Value::from("Ada"));
        Offer {
            id: "offer-1".to_owned(),
            code_hash: "code-hash".to_owned(),
            config_id: "ResidentIdentity".to_owned(),
            claims,
            holder: None,
            tx_code_hash: Some("tx-hash".to_owned()),
            created_by: "did:civ:operator".to_owned(),
            created_ms: 1_000,
            expires_ms: 601_000,
            valid_for_s: 3_600,
            state,
        }
    }

    /// Every kind of event, in an order the writer could have decided them.
    fn events() -> Vec<Event> {
        let credential = IssuedCredential {
            id: "credential-1".to_owned(),
            offer: "offer-1".to_owned(),
            vct: "https://vct.example/ResidentIdentity".to_owned(),
            sub: "did:civ:holder".to_owned(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            list: ListId(1),
            idx: 4_242,
            status: StatusCode::Valid,
        };
        let mut issued = offer(OfferState::Issued {
            credentials: vec![credential.id.clone()],
        });
        issued.claims = Map::new();
        let version = |version| ListVersion {
            list: ListId(1),
            version,
            iat: 1_700_000_000 + i64::try_from(version).unwrap_or(0),
            jws: format!("jws-{version}"),
        };
        vec![
            Event::OfferCreated {
                offer: offer(OfferState::Open { failures: 0 }),
            },
            Event::TxCodeFailed {
                offer: "offer-1".to_owned(),
                failures: Some(1),
            },
            Event::TxCodeFailed {
                offer: "offer-1".to_owned(),
                failures: Some(2),
            },
            Event::CodeRedeemed {
                offer: "offer-1".to_owned(),
                token_hash: "token-hash".to_owned(),
                token_expires_ms: 301_000,
            },
            Event::Issued {
                offer: issued,
                token_hash: "token-hash".to_owned(),
                credentials: vec![credential],
            },
            Event::ListPublished {
                version: version(1),
            },
            Event::StatusChanged {
                credential: "credential-1".to_owned(),
                status: StatusCode::Suspended,
                by: "did:civ:operator".to_owned(),
                at_ms: 2_000,
            },
            Event::ListPublished {
                version: version(2),
            },
            Event::StatusChanged {
                credential: "credential-1".to_owned(),
                status: StatusCode::Revoked,
                by: "did:civ:operator".to_owned(),
                at_ms: 3_000,
            },
            Event::ListAnchored {
                list: ListId(1),
                version: 2,
                anchor: "anchor-1".to_owned(),
                seq: 1,
            },
        ]
    }

    /// Applies `events` one by one to `tree`, as replay does.
    fn replay(tree: &sled::Tree, events: &[Event]) {
        let round = Overlay::new();
        for event in events {
            let mut view = View::new(tree, &[], &round);
            event.apply(&mut view).unwrap();
            tree.apply_batch(to_batch(view.own)).unwrap();
        }
    }

    fn contents(tree: &sled::Tree) -> Vec<(sled::IVec, sled::IVec)> {
        tree.iter().map(Result::unwrap).collect()
    }

    #[test]
    fn replay_over_a_part_of_its_own_effects_gives_the_same_state() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let events = events();
        let full = db.open_tree("full").unwrap();
        replay(&full, &events);
        let expected = contents(&full);
        assert_eq!(
            full.get(offer_key("offer-1"))
                .unwrap()
                .map(|v| { serde_json::from_slice::<Offer>(&v).unwrap().state }),
            Some(OfferState::Issued {
                credentials: vec!["credential-1".to_owned()]
            })
        );

        // A crash while the applier wrote the changes key by key leaves sled at a marker,
        // holding the effects of the events before it and any part of those after it; the
        // events from the marker on are then replayed.
        for marker in 0..events.len() {
            for keep in [1usize, 2, 3, 5] {
                let partial = db.open_tree(format!("partial-{marker}-{keep}")).unwrap();
                replay(&partial, &events[..marker]);
                for (i, (key, value)) in expected.iter().enumerate() {
                    if i % keep == 0 {
                        partial.insert(key, value).unwrap();
                    }
                }
                replay(&partial, &events[marker..]);
                assert_eq!(
                    contents(&partial),
                    expected,
                    "replaying from event {marker}, keeping every {keep}th key"
                );
            }
        }

        // Replaying the tx code failures alone over the final offer adds nothing.
        let failures = db.open_tree("failures").unwrap();
        replay(&failures, &events[..3]);
        let once = contents(&failures);
        replay(&failures, &events[1..3]);
        assert_eq!(contents(&failures), once);
    }

    /// An `Issued` event for one credential at `list`/`idx`.
    fn issued(id: &str, list: u32, idx: u32) -> Event {
        let credential = IssuedCredential {
            id: id.to_owned(),
            offer: format!("offer-{id}"),
            vct: "https://vct.example/ResidentIdentity".to_owned(),
            sub: "did:civ:holder".to_owned(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            list: ListId(list),
            idx,
            status: StatusCode::Valid,
        };
        let mut offer = offer(OfferState::Issued {
            credentials: vec![id.to_owned()],
        });
        offer.id = format!("offer-{id}");
        Event::Issued {
            offer,
            token_hash: "token-hash".to_owned(),
            credentials: vec![credential],
        }
    }

    #[test]
    fn the_allocator_takes_the_indices_of_the_credential_records_of_the_highest_list() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("state").unwrap();
        let empty = Allocator::load(&tree).unwrap();
        assert_eq!(
            (empty.current, empty.count, empty.highest_list()),
            (ListId(1), 0, 0)
        );

        replay(&tree, &[issued("c1", 1, 5), issued("c2", 1, 9)]);
        let mut first = Allocator::load(&tree).unwrap();
        assert_eq!(
            (first.current, first.count, first.highest_list()),
            (ListId(1), 2, 1)
        );
        assert!(
            !first.take(5) && !first.take(9),
            "recorded indices stay taken"
        );
        assert!(first.take(7));

        // Records of a later list, wherever they sort among the records: that list is
        // current, and only its indices are taken.
        replay(&tree, &[issued("a0", 3, 7), issued("zz", 2, 11)]);
        let mut third = Allocator::load(&tree).unwrap();
        assert_eq!(
            (third.current, third.count, third.highest_list()),
            (ListId(3), 1, 3)
        );
        assert!(!third.take(7));
        assert!(third.take(5) && third.take(11));
    }

    #[test]
    fn a_credential_record_with_an_index_outside_its_list_is_damage() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("state").unwrap();
        replay(&tree, &[issued("c1", 1, LIST_LEN)]);
        assert!(matches!(
            Allocator::load(&tree),
            Err(StorageError::Damaged {
                what: "credential",
                ..
            })
        ));
    }

    #[test]
    fn reservation_keys_of_earlier_versions_are_removed_and_nothing_else() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("state").unwrap();
        replay(&tree, &[issued("c1", 1, 5)]);
        let kept = contents(&tree);
        for idx in [5u32, 6] {
            let mut old = b"a/".to_vec();
            old.extend_from_slice(&1u32.to_be_bytes());
            old.extend_from_slice(&idx.to_be_bytes());
            tree.insert(old, b"c1".as_slice()).unwrap();
        }
        remove_old_reservations(&tree).unwrap();
        assert_eq!(contents(&tree), kept);
    }
}
