//! The ledger: one write path (the writer task) that validates entries per block, appends
//! each block — entries, then its seal — to the fdatasync'd log in one batch, applies it to
//! the sled state, and signs the new checkpoint; and the read side that serves proofs.
//!
//! ### Write path
//! 1. A submission (already parsed from canonical bytes) waits in a bounded queue.
//! 2. The writer takes everything waiting (up to [`MAX_BLOCK_ENTRIES`]), fixes the block's
//!    seal time (after the previous seal's, from the node clock), and validates each entry
//!    against the state plus the entries before it in the block, with the seal time as
//!    ledger time. Refused entries are answered at once and never reach the log.
//! 3. The accepted entries and the seal (with the new `state_root`) go to the log as one
//!    batch: one write, one fdatasync, all or nothing across a crash.
//! 4. Only then: the sled state takes the block's changes and its applied-through marker in
//!    one atomic batch, the Merkle tree and the state map are updated, the checkpoint is
//!    signed, and every submitter gets its receipt.
//!
//! A replicated ledger (Raft, a later step) takes over exactly step 3: the block is
//! ordered and made durable by the cluster instead of the local log; steps 1, 2 and 4 stay.
//!
//! ### Architecture invariant
//! An entry is durable before any checkpoint covering it is signed or any client is told it
//! was accepted. Validation reads only the ledger (state and block), never the clock: the
//! seal time is fixed before validation and is part of the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use civitas_core::api::{LeafProof, SubmitReceipt};
use civitas_core::civ::{DidRecord, Rules};
use civitas_core::did::Did;
use civitas_core::encoding;
use civitas_core::ledger::{Config, Digest, Entry, Seal, Signed};
use civitas_core::note::{Checkpoint, NoteVerifier};
use civitas_core::smt::SparseMerkleMap;
use civitas_core::tlog::{self, MerkleTree};
use civitas_store::{DerivedState, Log, LogReader};
use tokio::sync::{RwLock, mpsc, oneshot};

use crate::error::ApiError;
use crate::node_keys::NodeKeys;
use crate::state::{Overlay, State};

/// Most entries in one block.
pub(crate) const MAX_BLOCK_ENTRIES: usize = 4096;
/// Scheduler turns without a new submission after which a block is closed.
const GATHER_TURNS: u32 = 2;
/// Most submissions waiting for the writer; more are refused with 503.
pub(crate) const QUEUE_CAPACITY: usize = 8192;

/// Why the ledger could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The node keys.
    #[error("node keys: {0}")]
    Keys(#[from] crate::node_keys::NodeKeyError),
    /// The log or the state store.
    #[error("storage: {0}")]
    Store(String),
    /// The flags disagree with the genesis config.
    #[error(
        "this ledger was created with {what} {genesis}, but {given} was given; a ledger's genesis cannot change (authorities change through trust entries signed by a root)"
    )]
    GenesisMismatch {
        /// What differs.
        what: &'static str,
        /// The genesis value.
        genesis: String,
        /// The flag value.
        given: String,
    },
    /// The log contains something the rules refuse.
    #[error("the log does not replay: {0}")]
    Replay(String),
}

/// What a node is started with.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The checkpoint origin (the note key name); used when the ledger is created.
    pub origin: String,
    /// Root authorities for a new ledger; when given on a later start they must match.
    pub authorities: Option<Vec<Did>>,
    /// The recovery window for a new ledger; when given later it must match.
    pub recovery_window: Option<Duration>,
    /// Seal at least this often when idle.
    pub idle_seal: Duration,
}

/// The default recovery window: 72 hours.
pub const DEFAULT_RECOVERY_WINDOW: Duration = Duration::from_secs(72 * 3600);

/// An accepted entry's outcome, or why it was refused.
type Reply = Result<SubmitReceipt, ApiError>;

struct Submission {
    entry: Entry,
    reply: oneshot::Sender<Reply>,
}

/// The published head: everything a reader needs to answer consistently.
#[derive(Debug)]
pub struct Head {
    /// Leaf hashes of the whole log.
    pub tree: MerkleTree,
    /// The verifiable map as of the last seal.
    pub map: SparseMerkleMap,
    /// The signed checkpoint text of the current tree.
    pub checkpoint: String,
    /// The last seal.
    pub seal: Signed<Seal>,
    /// Its log index (the tree size is this + 1).
    pub seal_index: u64,
    /// The seal with its inclusion proof, the same in every answer about this head.
    seal_proof: LeafProof,
}

impl Head {
    /// The tree size the checkpoint covers.
    pub fn size(&self) -> u64 {
        self.seal_index + 1
    }

    /// Ledger time of the last seal.
    pub fn time_ms(&self) -> u64 {
        self.seal.body().time
    }

    /// A leaf with its inclusion proof against the current checkpoint.
    pub fn leaf_proof(&self, index: u64, leaf: &[u8]) -> Result<LeafProof, ApiError> {
        let proof = self
            .tree
            .inclusion_proof(index, self.size())
            .map_err(ApiError::internal)?;
        Ok(LeafProof {
            index,
            leaf: encoding::b64(leaf),
            inclusion: proof.iter().map(|h| encoding::b64(h)).collect(),
        })
    }

    /// The seal with its inclusion proof.
    pub fn seal_proof(&self) -> LeafProof {
        self.seal_proof.clone()
    }

    /// Publishes a new seal: the tree already holds its leaf.
    fn publish(
        &mut self,
        seal: Signed<Seal>,
        seal_index: u64,
        checkpoint: String,
    ) -> Result<(), String> {
        self.seal = seal;
        self.seal_index = seal_index;
        self.checkpoint = checkpoint;
        self.seal_proof = self
            .leaf_proof(seal_index, self.seal.bytes())
            .map_err(|e| e.problem().detail)?;
        Ok(())
    }

    /// The state proof of a map key, standard base64 siblings.
    pub fn state_proof(&self, key: &[u8; 32]) -> Option<Vec<String>> {
        self.map
            .prove(key)
            .map(|p| p.siblings.iter().map(|h| encoding::b64(h)).collect())
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Entries accepted.
    pub accepted: AtomicU64,
    /// Entries refused by the rules.
    pub refused: AtomicU64,
    /// Blocks sealed.
    pub blocks: AtomicU64,
}

/// The ledger of one node.
#[derive(Debug)]
pub struct Ledger {
    head: RwLock<Head>,
    state: State,
    reader: LogReader,
    submit: mpsc::Sender<Submission>,
    genesis: Signed<Config>,
    rules: Rules,
    verifier: NoteVerifier,
    failed: AtomicBool,
    stop: Arc<tokio::sync::Notify>,
    writer: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Counters.
    pub metrics: Metrics,
}

/// A storage error with its whole chain of causes (sled's own reason included).
fn store_err(e: impl std::error::Error) -> OpenError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    OpenError::Store(text)
}

fn now_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

fn sign_checkpoint(
    keys: &NodeKeys,
    origin: &str,
    tree: &MerkleTree,
    time_ms: u64,
) -> Result<String, String> {
    let checkpoint = Checkpoint::with_time(origin, tree.len(), tree.root(), time_ms)
        .map_err(|e| e.to_string())?;
    let note = checkpoint.sign(&[&keys.note]).map_err(|e| e.to_string())?;
    Ok(note.to_string())
}

impl Ledger {
    /// Opens (or creates) the ledger in `options.data_dir` and starts its writer task.
    pub async fn open(options: LedgerOptions) -> Result<Arc<Self>, OpenError> {
        let dir = options.data_dir.clone();
        let (keys, _) = NodeKeys::load_or_create(&dir, &options.origin)?;
        let opened = tokio::task::spawn_blocking(move || open_blocking(&dir, keys, &options))
            .await
            .map_err(store_err)??;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let ledger = Arc::new(Self {
            head: RwLock::new(opened.head),
            state: opened.state,
            reader: opened.log.reader(),
            submit: tx,
            rules: Rules {
                recovery_window_ms: opened.genesis.body().recovery_window_ms,
            },
            genesis: opened.genesis,
            verifier: opened.keys.verifier(),
            failed: AtomicBool::new(false),
            stop: Arc::new(tokio::sync::Notify::new()),
            writer: std::sync::Mutex::new(None),
            metrics: Metrics::default(),
        });
        let writer = Writer {
            ledger: Arc::downgrade(&ledger),
            log: Some(opened.log),
            derived: opened.derived,
            keys: opened.keys,
            idle_seal: opened.idle_seal,
        };
        let handle = tokio::spawn(writer.run(rx, ledger.stop.clone()));
        if let Ok(mut slot) = ledger.writer.lock() {
            *slot = Some(handle);
        }
        Ok(ledger)
    }

    /// Submits an entry and waits until it is sealed (or refused).
    pub async fn submit(&self, entry: Entry) -> Reply {
        if self.failed.load(Ordering::Relaxed) {
            return Err(ApiError::new(
                civitas_core::problem::OVERLOADED,
                "the node stopped accepting writes after a storage failure",
            ));
        }
        let (reply, wait) = oneshot::channel();
        self.submit
            .try_send(Submission { entry, reply })
            .map_err(|_| {
                ApiError::new(
                    civitas_core::problem::OVERLOADED,
                    "the write queue is full; retry later",
                )
            })?;
        wait.await
            .unwrap_or_else(|_| Err(ApiError::internal("the writer stopped")))
    }

    /// Stops the writer after the block in progress and waits until the log is closed, so
    /// the data directory can be opened again. Submissions after this are refused.
    pub async fn close(&self) {
        self.failed.store(true, Ordering::Relaxed);
        self.stop.notify_one();
        let handle = self.writer.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// The published head, for reading.
    pub async fn head(&self) -> tokio::sync::RwLockReadGuard<'_, Head> {
        self.head.read().await
    }

    /// The committed state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Log reads.
    pub fn log(&self) -> &LogReader {
        &self.reader
    }

    /// The method rules from the genesis config.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The genesis config.
    pub fn genesis(&self) -> &Signed<Config> {
        &self.genesis
    }

    /// The note verifier key of this node.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// Whether the write path still works.
    pub fn is_healthy(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }

    /// The number of fdatasyncs of the log.
    pub fn fsync_count(&self) -> u64 {
        self.reader.fsync_count()
    }

    /// A DID's record as of the published head.
    pub fn did_record(&self, did: &Did) -> Option<DidRecord> {
        self.state.did(did)
    }
}

struct Opened {
    head: Head,
    state: State,
    derived: DerivedState,
    log: Log,
    genesis: Signed<Config>,
    keys: NodeKeys,
    idle_seal: Duration,
}

fn check_genesis(genesis: &Config, options: &LedgerOptions) -> Result<(), OpenError> {
    if let Some(roots) = &options.authorities {
        let mut given = roots.clone();
        given.sort();
        let mut have = genesis.roots.clone();
        have.sort();
        if given != have {
            let show = |v: &[Did]| {
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(OpenError::GenesisMismatch {
                what: "root authorities",
                genesis: show(&have),
                given: show(&given),
            });
        }
    }
    if let Some(window) = options.recovery_window {
        let given = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        if given != genesis.recovery_window_ms {
            return Err(OpenError::GenesisMismatch {
                what: "recovery window (ms)",
                genesis: genesis.recovery_window_ms.to_string(),
                given: given.to_string(),
            });
        }
    }
    Ok(())
}

fn open_blocking(dir: &Path, keys: NodeKeys, options: &LedgerOptions) -> Result<Opened, OpenError> {
    let mut log = Log::open(dir.join("log")).map_err(store_err)?;
    let derived = DerivedState::open(dir.join("state")).map_err(store_err)?;
    if log.is_empty() {
        let window = options.recovery_window.unwrap_or(DEFAULT_RECOVERY_WINDOW);
        let time = now_ms();
        let config = Signed::sign(
            Config {
                origin: keys.note.name().to_owned(),
                roots: options.authorities.clone().unwrap_or_default(),
                recovery_window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
                ledger_keys: vec![keys.ledger.public_key()],
                note_keys: vec![keys.verifier().to_string()],
                min_cosignatures: 1,
                time,
            },
            &keys.ledger,
        );
        let seal = Signed::sign(
            Seal {
                block: 1,
                time: time + 1,
                prev: None,
                entries: 1,
                state_root: Digest(SparseMerkleMap::new().root()),
                node: keys.ledger.public_key(),
            },
            &keys.ledger,
        );
        log.append(&[config.bytes(), seal.bytes()])
            .map_err(store_err)?;
    }
    let Ok(Entry::Config(genesis)) = Entry::parse(&log.read(0).map_err(store_err)?) else {
        return Err(OpenError::Replay(
            "leaf 0 is not a civ.config.v1 entry".to_owned(),
        ));
    };
    check_genesis(genesis.body(), options)?;
    let rules = Rules {
        recovery_window_ms: genesis.body().recovery_window_ms,
    };
    let first_key = genesis.body().ledger_keys.first();
    if first_key.is_none_or(|key| genesis.verify(key).is_err()) {
        return Err(OpenError::Replay(
            "the genesis config is not signed by its first ledger key".to_owned(),
        ));
    }
    if !genesis
        .body()
        .ledger_keys
        .contains(&keys.ledger.public_key())
    {
        return Err(OpenError::Replay(
            "this node's ledger key is not named in the genesis config".to_owned(),
        ));
    }
    let state = State::new(derived.state().clone());
    // The map as of the state's applied marker; replay brings both forward together and
    // checks every replayed block's stateRoot.
    let mut map: SparseMerkleMap = state.map_entries().into_iter().collect();
    replay(&log, &derived, &state, &mut map, &rules, genesis.body())?;

    // Audit the whole log once: the tree, and the seal chain (signatures by a genesis
    // ledger key, consecutive blocks, previous-seal links, strictly increasing times).
    let mut tree = MerkleTree::new();
    let mut last_seal: Option<(u64, Signed<Seal>)> = None;
    let mut entries_since_seal = 0u64;
    for record in log.iter_from(0).map_err(store_err)? {
        let (index, record) = record.map_err(store_err)?;
        tree.push(tlog::leaf_hash(&record));
        let Ok(Entry::Seal(seal)) = Entry::parse(&record) else {
            entries_since_seal += 1;
            continue;
        };
        check_seal(
            &seal,
            last_seal.as_ref().map(|(_, s)| s),
            entries_since_seal,
            genesis.body(),
        )
        .map_err(|e| OpenError::Replay(format!("seal at leaf {index}: {e}")))?;
        entries_since_seal = 0;
        last_seal = Some((index, seal));
    }
    let (seal_index, seal) =
        last_seal.ok_or_else(|| OpenError::Replay("the log has no seal".to_owned()))?;
    if map.root() != seal.body().state_root.0 {
        return Err(OpenError::Replay(format!(
            "the state rebuilt from sled has root {}, but the last seal says {}; move the state directory aside to rebuild it from the log",
            encoding::b64(&map.root()),
            encoding::b64(&seal.body().state_root.0)
        )));
    }
    let checkpoint = sign_checkpoint(&keys, keys.note.name(), &tree, seal.body().time)
        .map_err(OpenError::Store)?;
    let mut head = Head {
        tree,
        map,
        checkpoint: String::new(),
        seal: seal.clone(),
        seal_index,
        seal_proof: LeafProof {
            index: seal_index,
            leaf: String::new(),
            inclusion: Vec::new(),
        },
    };
    head.publish(seal, seal_index, checkpoint)
        .map_err(OpenError::Store)?;
    Ok(Opened {
        head,
        state,
        derived,
        log,
        genesis,
        keys,
        idle_seal: options.idle_seal,
    })
}

/// Applies to the sled state every block of the log it has not applied yet, validating each
/// entry again with its block's seal time.
/// Checks one seal against the one before it.
fn check_seal(
    seal: &Signed<Seal>,
    previous: Option<&Signed<Seal>>,
    entries: u64,
    genesis: &Config,
) -> Result<(), String> {
    let body = seal.body();
    if !genesis.ledger_keys.contains(&body.node) || seal.verify(&body.node).is_err() {
        return Err("not signed by a ledger key of the genesis config".to_owned());
    }
    let (block, prev, time) = match previous {
        Some(p) => (p.body().block + 1, Some(p.id()), p.body().time),
        None => (1, None, genesis.time),
    };
    if body.block != block || body.prev != prev || body.time <= time || body.entries != entries {
        return Err(format!(
            "expected block {block} after {prev:?}, later than {time}, closing {entries} entries; found block {} after {:?} at {} closing {}",
            body.block, body.prev, body.time, body.entries
        ));
    }
    Ok(())
}

fn replay(
    log: &Log,
    derived: &DerivedState,
    state: &State,
    map: &mut SparseMerkleMap,
    rules: &Rules,
    genesis: &Config,
) -> Result<(), OpenError> {
    let applied = derived.applied();
    if applied > log.len() {
        return Err(OpenError::Replay(format!(
            "the state has applied {applied} records but the log has only {}",
            log.len()
        )));
    }
    let mut block: Vec<(u64, Entry)> = Vec::new();
    for record in log.iter_from(applied).map_err(store_err)? {
        let (index, record) = record.map_err(store_err)?;
        let entry =
            Entry::parse(&record).map_err(|e| OpenError::Replay(format!("leaf {index}: {e}")))?;
        let Entry::Seal(seal) = &entry else {
            block.push((index, entry));
            continue;
        };
        let mut overlay = Overlay::new(state, *rules, genesis.roots.clone());
        for (entry_index, entry) in block.drain(..) {
            match &entry {
                Entry::Config(config) => overlay.record_node_entry(&config.id(), entry_index),
                _ => {
                    overlay
                        .apply(&entry, seal.body().time, entry_index)
                        .map_err(|e| OpenError::Replay(format!("leaf {entry_index}: {e}")))?;
                }
            }
        }
        overlay.record_node_entry(&seal.id(), index);
        map.extend(overlay.map_updates().iter().copied());
        if map.root() != seal.body().state_root.0 {
            return Err(OpenError::Replay(format!(
                "replaying the block sealed at leaf {index} gives state root {}, but the seal says {}",
                encoding::b64(&map.root()),
                encoding::b64(&seal.body().state_root.0)
            )));
        }
        let (batch, changed) = overlay.into_batch();
        derived.apply(batch, index + 1).map_err(store_err)?;
        state.refresh(changed);
    }
    if !block.is_empty() {
        return Err(OpenError::Replay(
            "the log ends with entries no seal closes".to_owned(),
        ));
    }
    Ok(())
}

struct Writer {
    ledger: std::sync::Weak<Ledger>,
    log: Option<Log>,
    derived: DerivedState,
    keys: NodeKeys,
    idle_seal: Duration,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Submission>, stop: Arc<tokio::sync::Notify>) {
        loop {
            let first = tokio::select! {
                () = stop.notified() => return,
                received = tokio::time::timeout(self.idle_seal, rx.recv()) => match received {
                    Ok(Some(submission)) => Some(submission),
                    Ok(None) => return,
                    Err(_) => None,
                },
            };
            let mut batch: Vec<Submission> = first.into_iter().collect();
            // Gather the block: take what waits, and while submissions keep arriving (the
            // clients answered by the last block are sending their next writes), let them
            // in for a few scheduler turns, so one fdatasync covers more entries.
            let mut quiet_turns = 0;
            while batch.len() < MAX_BLOCK_ENTRIES && quiet_turns < GATHER_TURNS && !batch.is_empty()
            {
                let before = batch.len();
                while batch.len() < MAX_BLOCK_ENTRIES {
                    match rx.try_recv() {
                        Ok(submission) => batch.push(submission),
                        Err(_) => break,
                    }
                }
                if batch.len() == before {
                    quiet_turns += 1;
                } else {
                    quiet_turns = 0;
                }
                tokio::task::yield_now().await;
            }
            let Some(ledger) = self.ledger.upgrade() else {
                return;
            };
            if let Err(e) = self.block(&ledger, batch).await {
                tracing::error!(error = %e, "storage failure: the node stops accepting writes");
                ledger.failed.store(true, Ordering::Relaxed);
                // Drain and refuse whatever waits, then stop writing.
                rx.close();
                while let Some(s) = rx.recv().await {
                    let _ = s.reply.send(Err(ApiError::internal("storage failure")));
                }
                return;
            }
        }
    }

    /// Validates, seals, persists, applies and publishes one block.
    async fn block(&mut self, ledger: &Ledger, batch: Vec<Submission>) -> Result<(), String> {
        let is_idle_seal = batch.is_empty();
        let mut head = ledger.head.write().await;
        let time = now_ms().max(head.time_ms() + 1);
        let first_index = head.size();
        let mut overlay = Overlay::new(
            &ledger.state,
            ledger.rules,
            ledger.genesis.body().roots.clone(),
        );
        let mut accepted = Vec::with_capacity(batch.len());
        for submission in batch {
            let index = first_index + accepted.len() as u64;
            match overlay.apply(&submission.entry, time, index) {
                Ok(outcome) => accepted.push((submission, outcome)),
                Err(err) => {
                    ledger.metrics.refused.fetch_add(1, Ordering::Relaxed);
                    let _ = submission.reply.send(Err(ApiError::from(err)));
                }
            }
        }
        if accepted.is_empty() && !is_idle_seal {
            return Ok(());
        }
        // The map is only touched here, under the write lock, and the lock is held until
        // the block is durable and published, so readers never see a root without its
        // checkpoint.
        let mut map_undo = Vec::new();
        for (key, value) in overlay.map_updates() {
            let old = head.map.insert(*key, *value);
            map_undo.push((*key, old));
        }
        let seal = Signed::sign(
            Seal {
                block: head.seal.body().block + 1,
                time,
                prev: Some(head.seal.id()),
                entries: accepted.len() as u64,
                state_root: Digest(head.map.root()),
                node: self.keys.ledger.public_key(),
            },
            &self.keys.ledger,
        );
        let seal_index = first_index + accepted.len() as u64;
        overlay.record_node_entry(&seal.id(), seal_index);
        let mut records: Vec<Vec<u8>> = accepted
            .iter()
            .map(|(s, _)| s.entry.bytes().to_vec())
            .collect();
        records.push(seal.bytes().to_vec());

        let Some(mut log) = self.log.take() else {
            return Err("the log is gone".to_owned());
        };
        let (log, appended) = tokio::task::spawn_blocking(move || {
            let result = log.append(&records);
            (log, result)
        })
        .await
        .map_err(|e| e.to_string())?;
        self.log = Some(log);
        if let Err(e) = appended {
            for (key, old) in map_undo.into_iter().rev() {
                match old {
                    Some(value) => {
                        head.map.insert(key, value);
                    }
                    None => {
                        head.map.remove(&key);
                    }
                }
            }
            for (submission, _) in accepted {
                let _ = submission
                    .reply
                    .send(Err(ApiError::internal("storage failure")));
            }
            return Err(e.to_string());
        }
        // Durable. Apply to the derived state, then publish.
        let (batch, changed) = overlay.into_batch();
        if let Err(e) = self.derived.apply(batch, seal_index + 1) {
            return Err(format!("applying block to the state store: {e}"));
        }
        ledger.state.refresh(changed);
        for (submission, _) in &accepted {
            head.tree.push(tlog::leaf_hash(submission.entry.bytes()));
        }
        head.tree.push(tlog::leaf_hash(seal.bytes()));
        let checkpoint = sign_checkpoint(&self.keys, self.keys.note.name(), &head.tree, time)?;
        head.publish(seal, seal_index, checkpoint)?;
        ledger.metrics.blocks.fetch_add(1, Ordering::Relaxed);
        ledger
            .metrics
            .accepted
            .fetch_add(accepted.len() as u64, Ordering::Relaxed);
        let head = head.downgrade();
        for (offset, (submission, outcome)) in accepted.into_iter().enumerate() {
            let index = first_index + offset as u64;
            let leaf = submission.entry.bytes();
            let receipt = head.leaf_proof(index, leaf).map(|proof| SubmitReceipt {
                id: submission.entry.id(),
                did: outcome.did.map(|d| d.to_string()),
                index,
                leaf_hash: encoding::b64(&tlog::leaf_hash(leaf)),
                checkpoint: head.checkpoint.clone(),
                inclusion: proof.inclusion,
                nullified: outcome.nullified,
            });
            let _ = submission.reply.send(receipt);
        }
        Ok(())
    }
}
