//! The ledger state derived from the log, kept in one sled tree, and the per-block overlay
//! the writer validates against.
//!
//! Keys (one tree, so a block's changes and the applied-through marker commit in one
//! atomic batch):
//! - `d/<did>` → [`DidRecord`] (JSON)
//! - `t/<issuer>\n<vct>` → [`TrustRecord`] (JSON)
//! - `a/<stream>` → [`StreamHead`] (JSON)
//! - `m/roots` → [`Roots`] (JSON)
//! - `i/<object id digest>` → log index (u64 big-endian)
//!
//! Storage records are private to the registry; they are derived state and can be rebuilt
//! from the log at any time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use civitas_core::anchor::{AnchorError, AnchorLookup, StreamHead, apply_anchor};
use civitas_core::civ::{self, DidLookup, DidRecord, OpError, Rules, Transition};
use civitas_core::did::Did;
use civitas_core::ledger::{Entry, ObjectId};
pub(crate) use civitas_core::proof::{map_key_anchor, map_key_did, map_key_roots, map_key_trust};
use civitas_core::trust::{Roots, TrustChange, TrustError, TrustLookup, TrustRecord, apply_trust};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why an entry was refused by the ledger rules.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RuleError {
    /// A did:civ rule.
    #[error(transparent)]
    Operation(#[from] OpError),
    /// A trust-registry rule.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// An anchor rule.
    #[error(transparent)]
    Anchor(#[from] AnchorError),
    /// Seals and the config are written by the node only.
    #[error("{0} entries are written by the node, not submitted")]
    NodeEntry(&'static str),
}

pub(crate) fn did_key(did: &Did) -> Vec<u8> {
    format!("d/{did}").into_bytes()
}

fn trust_key(issuer: &Did, vct: &str) -> Vec<u8> {
    format!("t/{issuer}\n{vct}").into_bytes()
}

fn anchor_key(stream: &str) -> Vec<u8> {
    format!("a/{stream}").into_bytes()
}

const ROOTS_KEY: &[u8] = b"m/roots";

fn id_key(id: &ObjectId) -> Vec<u8> {
    let mut key = b"i/".to_vec();
    key.extend_from_slice(id.digest());
    key
}

/// Read access to the committed state.
#[derive(Debug, Clone)]
pub struct State {
    tree: sled::Tree,
    /// Decoded DID records: decoding one costs a point decompression per key, and popular
    /// DIDs (issuers, authorities) are resolved again and again. Filled by reads, updated by
    /// the writer under the head lock, so it never disagrees with sled.
    dids: Arc<Mutex<DidCache>>,
}

/// The decoded-record cache, with a generation the writer bumps on every block so that a
/// reader who read sled before the block cannot put the old record back.
#[derive(Debug, Default)]
struct DidCache {
    generation: u64,
    records: HashMap<Did, Arc<DidRecord>>,
}

/// Most decoded DID records kept; the cache is emptied when it would grow past this.
const DID_CACHE_ENTRIES: usize = 65_536;

fn decode<T: DeserializeOwned>(bytes: Option<sled::IVec>) -> Option<T> {
    // Records are written by this module from its own types; a record that does not
    // decode means the sled state is damaged, which `Ledger::open` detects by recomputing
    // the state root.
    bytes.and_then(|b| serde_json::from_slice(&b).ok())
}

impl State {
    /// Wraps the sled tree holding the state.
    pub fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            dids: Arc::new(Mutex::new(DidCache::default())),
        }
    }

    /// The record of a DID, shared.
    pub fn did_shared(&self, did: &Did) -> Option<Arc<DidRecord>> {
        let generation = {
            let cache = self.dids.lock().ok()?;
            if let Some(hit) = cache.records.get(did) {
                return Some(hit.clone());
            }
            cache.generation
        };
        let record = Arc::new(self.get::<DidRecord>(&did_key(did))?);
        if let Ok(mut cache) = self.dids.lock()
            && cache.generation == generation
        {
            if cache.records.len() >= DID_CACHE_ENTRIES {
                cache.records.clear();
            }
            cache.records.insert(record.did.clone(), record.clone());
        }
        Some(record)
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Option<T> {
        decode(self.tree.get(key).ok().flatten())
    }

    /// The record of a DID.
    pub fn did(&self, did: &Did) -> Option<DidRecord> {
        self.did_shared(did).map(|r| (*r).clone())
    }

    /// Takes the DID records a block changed, once the block is in sled.
    pub(crate) fn refresh(&self, records: Vec<DidRecord>) {
        if let Ok(mut cache) = self.dids.lock() {
            cache.generation += 1;
            if cache.records.len() + records.len() > DID_CACHE_ENTRIES {
                cache.records.clear();
            }
            for record in records {
                cache.records.insert(record.did.clone(), Arc::new(record));
            }
        }
    }

    /// The record of an (issuer, vct).
    pub fn trust(&self, issuer: &Did, vct: &str) -> Option<TrustRecord> {
        self.get(&trust_key(issuer, vct))
    }

    /// All (issuer, record) pairs for a vct.
    pub fn trust_for_vct(&self, vct: &str) -> Vec<(Did, TrustRecord)> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"t/").flatten() {
            let (key, value) = item;
            let Ok(text) = std::str::from_utf8(&key[2..]) else {
                continue;
            };
            let Some((issuer, entry_vct)) = text.split_once('\n') else {
                continue;
            };
            if entry_vct != vct {
                continue;
            }
            if let (Ok(issuer), Some(record)) =
                (issuer.parse::<Did>(), decode::<TrustRecord>(Some(value)))
            {
                out.push((issuer, record));
            }
        }
        out
    }

    /// The head of an anchor stream.
    pub fn stream(&self, stream: &str) -> Option<StreamHead> {
        self.get(&anchor_key(stream))
    }

    /// The root authorities.
    pub fn roots(&self) -> Option<Roots> {
        self.get(ROOTS_KEY)
    }

    /// The log index of an object.
    pub fn index_of(&self, id: &ObjectId) -> Option<u64> {
        let bytes = self.tree.get(id_key(id)).ok().flatten()?;
        let array: [u8; 8] = bytes.as_ref().try_into().ok()?;
        Some(u64::from_be_bytes(array))
    }

    /// Every (map key, value) of the verifiable map, to rebuild it on start.
    pub fn map_entries(&self) -> Vec<([u8; 32], [u8; 32])> {
        let mut out = Vec::new();
        for (key, value) in self.tree.iter().flatten() {
            let entry = match &key[..2] {
                b"d/" => decode::<DidRecord>(Some(value))
                    .and_then(|r| Some((map_key_did(&r.did), *r.head()?.id.digest()))),
                b"t/" => {
                    let Ok(text) = std::str::from_utf8(&key[2..]) else {
                        continue;
                    };
                    let Some((issuer, vct)) = text.split_once('\n') else {
                        continue;
                    };
                    let Ok(issuer) = issuer.parse::<Did>() else {
                        continue;
                    };
                    decode::<TrustRecord>(Some(value))
                        .and_then(|r| Some((map_key_trust(&issuer, vct), *r.head()?.id.digest())))
                }
                b"a/" => {
                    let Ok(stream) = std::str::from_utf8(&key[2..]) else {
                        continue;
                    };
                    decode::<StreamHead>(Some(value))
                        .map(|h| (map_key_anchor(stream), *h.id.digest()))
                }
                b"m/" if key.as_ref() == ROOTS_KEY => decode::<Roots>(Some(value))
                    .and_then(|r| Some((map_key_roots(), *r.history.head()?.id.digest()))),
                _ => None,
            };
            out.extend(entry);
        }
        out
    }
}

/// What one accepted entry changed, for the receipt.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// The DID an operation created or changed.
    pub did: Option<Did>,
    /// Operations a recovery nullified.
    pub nullified: Vec<ObjectId>,
}

/// A block in the making: changes on top of the committed state, visible to the entries
/// validated after them in the same block.
#[derive(Debug)]
pub(crate) struct Overlay<'a> {
    state: &'a State,
    rules: Rules,
    dids: HashMap<Did, DidRecord>,
    trust: HashMap<(Did, String), TrustRecord>,
    streams: HashMap<String, StreamHead>,
    roots: Option<Roots>,
    genesis_roots: Vec<Did>,
    writes: Vec<(Vec<u8>, Vec<u8>)>,
    map_updates: Vec<([u8; 32], [u8; 32])>,
}

impl DidLookup for Overlay<'_> {
    fn did_record(&self, did: &Did) -> Option<DidRecord> {
        self.dids.get(did).cloned().or_else(|| self.state.did(did))
    }
}

impl TrustLookup for Overlay<'_> {
    fn trust_record(&self, issuer: &Did, vct: &str) -> Option<TrustRecord> {
        self.trust
            .get(&(issuer.clone(), vct.to_owned()))
            .cloned()
            .or_else(|| self.state.trust(issuer, vct))
    }

    fn roots(&self) -> Roots {
        self.roots
            .clone()
            .or_else(|| self.state.roots())
            .unwrap_or_else(|| Roots {
                current: self.genesis_roots.clone(),
                history: TrustRecord::default(),
            })
    }
}

impl AnchorLookup for Overlay<'_> {
    fn stream_head(&self, stream: &str) -> Option<StreamHead> {
        self.streams
            .get(stream)
            .cloned()
            .or_else(|| self.state.stream(stream))
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own record types to JSON cannot fail (no non-string map keys).
    serde_json::to_vec(value).unwrap_or_default()
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `state`.
    pub(crate) fn new(state: &'a State, rules: Rules, genesis_roots: Vec<Did>) -> Self {
        Self {
            state,
            rules,
            dids: HashMap::new(),
            trust: HashMap::new(),
            streams: HashMap::new(),
            roots: None,
            genesis_roots,
            writes: Vec::new(),
            map_updates: Vec::new(),
        }
    }

    /// Validates `entry` at ledger time `time_ms` as log index `index`; when it is
    /// accepted, records its changes in the overlay.
    pub(crate) fn apply(
        &mut self,
        entry: &Entry,
        time_ms: u64,
        index: u64,
    ) -> Result<Outcome, RuleError> {
        let mut outcome = Outcome::default();
        match entry {
            Entry::Operation(op) => {
                let applied = civ::apply_operation(self, op, time_ms, index, &self.rules)?;
                let record = applied.record;
                if let Transition::Recovered(ids) = applied.transition {
                    outcome.nullified = ids;
                }
                outcome.did = Some(record.did.clone());
                self.writes.push((did_key(&record.did), json(&record)));
                self.map_updates
                    .push((map_key_did(&record.did), *op.id().digest()));
                self.dids.insert(record.did.clone(), record);
            }
            Entry::Trust(signed) => match apply_trust(self, signed, time_ms, index, &self.rules)? {
                TrustChange::Accreditation {
                    issuer,
                    vct,
                    record,
                } => {
                    self.writes.push((trust_key(&issuer, &vct), json(&record)));
                    self.map_updates
                        .push((map_key_trust(&issuer, &vct), *signed.id().digest()));
                    self.trust.insert((issuer, vct), record);
                }
                TrustChange::Roots(roots) => {
                    self.writes.push((ROOTS_KEY.to_vec(), json(&roots)));
                    self.map_updates
                        .push((map_key_roots(), *signed.id().digest()));
                    self.roots = Some(roots);
                }
                _ => {}
            },
            Entry::Anchor(signed) => {
                let head = apply_anchor(self, signed, time_ms, index, &self.rules)?;
                let stream = signed.body().stream.clone();
                self.writes.push((anchor_key(&stream), json(&head)));
                self.map_updates
                    .push((map_key_anchor(&stream), *signed.id().digest()));
                self.streams.insert(stream, head);
            }
            Entry::Seal(_) => return Err(RuleError::NodeEntry("civ.seal.v1")),
            Entry::Config(_) => return Err(RuleError::NodeEntry("civ.config.v1")),
            _ => return Err(RuleError::NodeEntry("unknown")),
        }
        self.writes
            .push((id_key(&entry.id()), index.to_be_bytes().to_vec()));
        Ok(outcome)
    }

    /// Records the index of a node entry (seal, config), which changes no state.
    pub(crate) fn record_node_entry(&mut self, id: &ObjectId, index: u64) {
        self.writes.push((id_key(id), index.to_be_bytes().to_vec()));
    }

    /// The verifiable-map updates of the block, in order.
    pub(crate) fn map_updates(&self) -> &[([u8; 32], [u8; 32])] {
        &self.map_updates
    }

    /// The sled batch of the block.
    pub(crate) fn into_batch(self) -> (sled::Batch, Vec<DidRecord>) {
        let mut batch = sled::Batch::default();
        for (key, value) in self.writes {
            batch.insert(key, value);
        }
        (batch, self.dids.into_values().collect())
    }
}
