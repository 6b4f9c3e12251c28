//! Model-based test of the did:civ rules as the ledger applies them (STYLE.md §7).
//!
//! Random sequences of creates, updates, recoveries (forks), controller operations,
//! deactivations, invalid operations, resubmissions, restarts and waits go to a real
//! [`Ledger`] in a temporary directory, and to a naive model of docs/did-civ.md §5 written
//! below, independently of `civitas_core::civ`. After every step the outcome (accepted, or
//! the problem type of the refusal) must be the one the model predicts, and every DID's
//! record must match the model. After every restart and at the end, the log root must equal
//! a recomputation from the leaves read back, and every DID's state proof must verify.
//!
//! Two fixed sequences pin down what §5.5 and §5.7 say about countersignatures by a
//! controller whose head is a controller operation already in effect.
//!
//! Ledger time comes from the node clock. An accepted operation's ledger time is read from
//! its receipt's checkpoint. A refused operation has no time: the model only knows that it
//! lies between the clock before and after the submission, so it judges the operation at
//! every millisecond of that interval. Where those judgements agree (nearly always: steps
//! take milliseconds and the window is hundreds) the outcome is asserted exactly; otherwise
//! it must be one of them.

use std::collections::HashMap;
use std::fs::TryLockError;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use civitas_core::did::{Did, DidUrl};
use civitas_core::encoding;
use civitas_core::keys::{PublicKey, SecretKey};
use civitas_core::ledger::{
    ControllerSig, Entry, KeyStatus, ObjectId, OpKind, OpSigner, OpVerificationMethod, Operation,
    RetiredKey, Signed,
};
use civitas_core::note::Checkpoint;
use civitas_core::{proof, smt, tlog};
use did_registry::{Ledger, LedgerOptions};
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use tempfile::TempDir;

/// The recovery window of the test ledger.
const WINDOW_MS: u64 = 300;
/// How long a `Sleep` step waits: a bit more than the window.
const SLEEP_MS: u64 = WINDOW_MS + 100;

// ---------------------------------------------------------------------------------------
// The model: a second, naive implementation of docs/did-civ.md §5.
// ---------------------------------------------------------------------------------------

/// An accepted operation as the model remembers it.
#[derive(Debug, Clone)]
struct MOp {
    id: ObjectId,
    body: Operation,
    time: u64,
    index: u64,
}

impl MOp {
    fn by_controller(&self) -> bool {
        matches!(self.body.signer, OpSigner::ControllerKey(_))
    }
}

/// One DID: its canonical chain, and the operations recoveries nullified (with the id of
/// the operation that did it).
#[derive(Debug, Default)]
struct MDid {
    chain: Vec<MOp>,
    nullified: Vec<(MOp, ObjectId)>,
}

impl MDid {
    /// The operations in effect at ledger time `t`: a controller operation at the head
    /// counts only once its window has passed.
    fn in_effect(&self, t: u64) -> &[MOp] {
        match self.chain.split_last() {
            Some((head, rest)) if head.by_controller() && t < head.time + WINDOW_MS => rest,
            _ => &self.chain,
        }
    }

    /// Keys that `chain[..end]` retired, all of them or only the compromised ones.
    fn retired(&self, end: usize, only_compromised: bool) -> Vec<PublicKey> {
        let mut keys = Vec::new();
        for op in &self.chain[..end] {
            for retired in &op.body.retired_keys {
                if !only_compromised || retired.status == KeyStatus::Compromised {
                    keys.push(retired.key);
                }
            }
        }
        keys
    }

    /// The key `url` names under `capabilityInvocation` in the last of `ops` (a prefix of
    /// the chain), unless that is a deactivation or the key was ever marked compromised.
    fn invocation_key(&self, ops: &[MOp], url: &DidUrl, did: &Did) -> Option<PublicKey> {
        let last = ops.last()?;
        if last.body.op == OpKind::Deactivate || url.did() != did {
            return None;
        }
        let fragment = url.fragment()?;
        if !last
            .body
            .capability_invocation
            .iter()
            .any(|f| f == fragment)
        {
            return None;
        }
        let key = last
            .body
            .verification_methods
            .iter()
            .find(|vm| vm.id == fragment)?
            .public_key_multibase;
        if self.retired(self.chain.len(), true).contains(&key) {
            return None;
        }
        Some(key)
    }
}

/// What an accepted operation does: the DID, how many operations of its chain stay, and
/// the ids it nullifies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    did: Did,
    keep: usize,
    nullified: Vec<ObjectId>,
}

type Judgement = Result<Verdict, &'static str>;

#[derive(Debug, Default)]
struct Model {
    /// DIDs in creation order.
    order: Vec<Did>,
    dids: HashMap<Did, MDid>,
}

/// §5.8, as far as the generated operations can break it: key counts, no key twice, unique
/// fragments, relationships naming verification methods.
fn valid_state(op: &Operation) -> bool {
    let mut keys: Vec<PublicKey> = op.rotation_keys.clone();
    keys.extend(
        op.verification_methods
            .iter()
            .map(|vm| vm.public_key_multibase),
    );
    let mut fragments: Vec<&str> = op
        .verification_methods
        .iter()
        .map(|vm| vm.id.as_str())
        .collect();
    let distinct_keys = keys.iter().enumerate().all(|(i, k)| !keys[..i].contains(k));
    let distinct_fragments = fragments
        .iter()
        .enumerate()
        .all(|(i, f)| !fragments[..i].contains(f));
    fragments.sort_unstable();
    let relationships_ok = [
        &op.authentication,
        &op.assertion_method,
        &op.capability_invocation,
        &op.capability_delegation,
    ]
    .iter()
    .all(|list| {
        list.iter()
            .enumerate()
            .all(|(i, f)| fragments.binary_search(&f.as_str()).is_ok() && !list[..i].contains(f))
    });
    (1..=5).contains(&op.rotation_keys.len())
        && (1..=10).contains(&op.verification_methods.len())
        && op.services.is_empty()
        && distinct_keys
        && distinct_fragments
        && relationships_ok
}

fn carries_state(op: &Operation) -> bool {
    !op.rotation_keys.is_empty()
        || !op.verification_methods.is_empty()
        || !op.retired_keys.is_empty()
        || !op.services.is_empty()
        || op.controller.is_some()
        || op.controller_sig.is_some()
        || !op.authentication.is_empty()
        || !op.assertion_method.is_empty()
        || !op.capability_invocation.is_empty()
        || !op.capability_delegation.is_empty()
}

impl Model {
    /// Accept or refuse `signed` at ledger time `t`; for a refusal, the problem slug.
    fn judge(&self, signed: &Signed<Operation>, t: u64) -> Judgement {
        match signed.body().op {
            OpKind::Create => self.judge_create(signed, t),
            _ => self.judge_step(signed, t),
        }
    }

    fn judge_create(&self, signed: &Signed<Operation>, t: u64) -> Judgement {
        let op = signed.body();
        if !valid_state(op) {
            return Err("invalid-operation");
        }
        let did = Did::civ_from_genesis_hash(signed.id().digest());
        if self.dids.contains_key(&did) {
            return Err("did-exists");
        }
        let OpSigner::RotationKey(i) = op.signer else {
            return Err("invalid-signer");
        };
        let key = op
            .rotation_keys
            .get(usize::from(i))
            .ok_or("invalid-signer")?;
        if signed.verify(key).is_err() {
            return Err("invalid-signature");
        }
        self.check_controller(&did, op, None, t)?;
        Ok(Verdict {
            did,
            keep: 0,
            nullified: Vec::new(),
        })
    }

    fn judge_step(&self, signed: &Signed<Operation>, t: u64) -> Judgement {
        let op = signed.body();
        let (Some(did), Some(prev)) = (&op.did, &op.prev) else {
            return Err("invalid-operation");
        };
        let record = self.dids.get(did).ok_or("did-not-found")?;
        // §5.1: prev is an operation of the canonical chain, and not a deactivation.
        let pos = record
            .chain
            .iter()
            .position(|h| h.id == *prev)
            .ok_or("unknown-prev")?;
        let at = &record.chain[pos];
        if at.body.op == OpKind::Deactivate {
            return Err("did-deactivated");
        }
        // §5.2: who may sign, judged against the state at prev.
        let key = match &op.signer {
            OpSigner::RotationKey(i) => {
                let key = *at
                    .body
                    .rotation_keys
                    .get(usize::from(*i))
                    .ok_or("invalid-signer")?;
                if record.retired(pos + 1, true).contains(&key) {
                    return Err("compromised-key");
                }
                key
            }
            OpSigner::ControllerKey(url) => {
                let controller = at.body.controller.as_ref().ok_or("invalid-signer")?;
                if url.did() != controller {
                    return Err("invalid-signer");
                }
                let theirs = self.dids.get(controller).ok_or("invalid-controller")?;
                theirs
                    .invocation_key(theirs.in_effect(t), url, controller)
                    .ok_or("invalid-signer")?
            }
            _ => return Err("invalid-signer"),
        };
        if signed.verify(&key).is_err() {
            return Err("invalid-signature");
        }
        if pos + 1 == record.chain.len() {
            // §5.3: an ordinary step, blocked while a controller operation is pending.
            if at.by_controller() && t < at.time + WINDOW_MS {
                return Err("controller-pending");
            }
        } else {
            // §5.4: the only fork.
            let superseded = &record.chain[pos + 1];
            if t >= superseded.time + WINDOW_MS {
                return Err("fork-refused");
            }
            let OpSigner::RotationKey(mine) = op.signer else {
                return Err("fork-refused");
            };
            if let OpSigner::RotationKey(theirs) = superseded.body.signer
                && mine >= theirs
            {
                return Err("fork-refused");
            }
        }
        if op.op == OpKind::Update {
            if !valid_state(op) {
                return Err("invalid-operation");
            }
            // §5.6: exactly the keys leaving are listed; retired keys never come back.
            let before: Vec<PublicKey> = state_keys(&at.body);
            let after: Vec<PublicKey> = state_keys(op);
            let mut leaving: Vec<PublicKey> = before
                .iter()
                .filter(|k| !after.contains(k))
                .copied()
                .collect();
            let mut listed: Vec<PublicKey> = op.retired_keys.iter().map(|r| r.key).collect();
            leaving.sort();
            listed.sort();
            if listed.windows(2).any(|w| w[0] == w[1]) || leaving != listed {
                return Err("invalid-key-retirement");
            }
            let retired_before = record.retired(pos + 1, false);
            if after.iter().any(|k| retired_before.contains(k)) {
                return Err("invalid-key-retirement");
            }
            self.check_controller(did, op, at.body.controller.as_ref(), t)?;
        } else if carries_state(op) {
            return Err("invalid-operation");
        }
        Ok(Verdict {
            did: did.clone(),
            keep: pos + 1,
            nullified: record.chain[pos + 1..].iter().map(|h| h.id).collect(),
        })
    }

    /// §5.5, naming a controller: a newly named controller (or an unchanged one that
    /// countersigns anyway) must be another DID on the ledger that countersigned with a
    /// `capabilityInvocation` key of its document at its head, a pending controller
    /// operation of its own not counted (one whose window has passed counts: it is in
    /// effect, and a deactivation in effect leaves no key, §5.7).
    fn check_controller(
        &self,
        did: &Did,
        op: &Operation,
        previous: Option<&Did>,
        t: u64,
    ) -> Result<(), &'static str> {
        let Some(controller) = &op.controller else {
            return match op.controller_sig {
                Some(_) => Err("invalid-controller"),
                None => Ok(()),
            };
        };
        if previous == Some(controller) && op.controller_sig.is_none() {
            return Ok(());
        }
        if controller == did {
            return Err("invalid-controller");
        }
        let theirs = self.dids.get(controller).ok_or("invalid-controller")?;
        let countersig = op.controller_sig.as_ref().ok_or("invalid-controller")?;
        let key = theirs
            .invocation_key(theirs.in_effect(t), &countersig.key, controller)
            .ok_or("invalid-controller")?;
        let sig = encoding::b64url_decode(&countersig.sig).map_err(|_| "invalid-controller")?;
        key.verify(&op.controller_signing_input(), &sig)
            .map_err(|_| "invalid-controller")
    }

    fn apply(&mut self, signed: &Signed<Operation>, time: u64, index: u64, verdict: Verdict) {
        if !self.dids.contains_key(&verdict.did) {
            self.order.push(verdict.did.clone());
        }
        let record = self.dids.entry(verdict.did).or_default();
        let removed = record.chain.split_off(verdict.keep);
        record
            .nullified
            .extend(removed.into_iter().map(|op| (op, signed.id())));
        record.chain.push(MOp {
            id: signed.id(),
            body: signed.body().clone(),
            time,
            index,
        });
    }
}

fn state_keys(op: &Operation) -> Vec<PublicKey> {
    let mut keys = op.rotation_keys.clone();
    keys.extend(
        op.verification_methods
            .iter()
            .map(|vm| vm.public_key_multibase),
    );
    keys
}

// ---------------------------------------------------------------------------------------
// The generated steps.
// ---------------------------------------------------------------------------------------

/// Which operation an update follows.
#[derive(Debug, Clone, Copy)]
enum Prev {
    /// The head: an ordinary step.
    Head,
    /// `n` operations before the head: a fork (a recovery, or a refused one).
    Back(usize),
    /// A nullified operation of the DID (the head if there is none).
    Nullified(usize),
    /// An id that is no operation at all.
    Unknown,
}

/// How an update changes the state at its prev.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// A new key for a verification method; the old one leaves.
    RotateVm(usize),
    /// A new rotation key 1 (the everyday key); the old one leaves.
    RotateEveryday,
    /// One more verification method (in every relationship).
    AddVm,
    /// One verification method less (when there are two or more).
    DropVm(usize),
    /// No controller any more.
    DropController,
}

/// What is wrong with an update.
#[derive(Debug, Clone, Copy)]
enum Defect {
    None,
    /// Signed by a key the DID never had.
    WrongKey,
    /// Signed by a key the DID marked compromised (a fresh key if there is none). A marked
    /// key has left the state and can never come back (§5.6), so no rotation index of a
    /// state names it: the refusal is `invalid-signature` at the head or `fork-refused`
    /// for a fork, never `compromised-key`.
    CompromisedKey(usize),
    /// `retiredKeys` without the keys leaving.
    OmitRetired,
    /// `retiredKeys` listing a key that stays.
    ExtraRetired,
    /// A key retired earlier in the chain comes back as a verification method.
    ReuseRetired(usize),
    /// Names a DID that is not on the ledger.
    UnknownDid,
}

/// How a controller countersigns.
#[derive(Debug, Clone, Copy)]
enum Countersig {
    Valid,
    WrongKey,
    Missing,
}

/// Which DID a step works on.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The DID of the previous operation, so that operations on one DID follow each other
    /// within its recovery windows.
    Recent,
    /// Any DID (for controller operations, preferably one that names a controller).
    Any(usize),
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        vms: usize,
        signer: u8,
        /// (controller, its key, head state or not, how it countersigns).
        controller: Option<(usize, usize, bool, Countersig)>,
    },
    /// A rotation-key update: an ordinary step, a recovery, or one of the invalid ones.
    Update {
        did: Target,
        prev: Prev,
        signer: u8,
        change: Change,
        compromised: bool,
        defect: Defect,
    },
    Deactivate {
        did: Target,
        prev: Prev,
        signer: u8,
    },
    /// An update of the head naming a controller, with its countersignature.
    NameController {
        did: Target,
        controller: usize,
        key: usize,
        head_key: bool,
        signer: u8,
        countersig: Countersig,
    },
    /// An update or deactivation signed by a `capabilityInvocation` key of the controller
    /// (of another DID when there is no controller).
    ControllerOp {
        did: Target,
        prev: Prev,
        key: usize,
        head_key: bool,
        change: Change,
        compromised: bool,
        deactivate: bool,
    },
    /// Any operation submitted before, again.
    Resubmit(usize),
    /// Waits a bit more than the recovery window.
    Sleep,
    /// Closes the ledger and opens it again; with `rebuild`, the sled state is deleted
    /// first, so the state is rebuilt by replaying the whole log.
    Restart {
        rebuild: bool,
    },
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![1 => Just(Target::Recent), 1 => any::<usize>().prop_map(Target::Any)]
}

/// Mostly the everyday key; sometimes the recovery key; rarely an index out of range.
fn ordinary_signer() -> impl Strategy<Value = u8> {
    prop_oneof![6 => Just(1u8), 2 => Just(0u8), 1 => Just(2u8)]
}

/// `prev` and the rotation key: forks are mostly signed by the recovery key.
fn prev_and_signer() -> impl Strategy<Value = (Prev, u8)> {
    prop_oneof![
        6 => (Just(Prev::Head), ordinary_signer()),
        3 => (Just(Prev::Back(1)), prop_oneof![4 => Just(0u8), 1 => Just(1u8)]),
        1 => ((2usize..=3).prop_map(Prev::Back), prop_oneof![4 => Just(0u8), 1 => Just(1u8)]),
        1 => (any::<usize>().prop_map(Prev::Nullified), ordinary_signer()),
        1 => (Just(Prev::Unknown), ordinary_signer()),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => any::<usize>().prop_map(Change::RotateVm),
        2 => Just(Change::RotateEveryday),
        1 => Just(Change::AddVm),
        1 => any::<usize>().prop_map(Change::DropVm),
        1 => Just(Change::DropController),
    ]
}

fn defect() -> impl Strategy<Value = Defect> {
    prop_oneof![
        12 => Just(Defect::None),
        1 => Just(Defect::WrongKey),
        1 => any::<usize>().prop_map(Defect::CompromisedKey),
        1 => Just(Defect::OmitRetired),
        1 => Just(Defect::ExtraRetired),
        1 => any::<usize>().prop_map(Defect::ReuseRetired),
        1 => Just(Defect::UnknownDid),
    ]
}

fn countersig() -> impl Strategy<Value = Countersig> {
    prop_oneof![
        6 => Just(Countersig::Valid),
        1 => Just(Countersig::WrongKey),
        1 => Just(Countersig::Missing),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let controller = (any::<usize>(), any::<usize>(), any::<bool>(), countersig());
    prop_oneof![
        3 => (1usize..=2, ordinary_signer(), prop::option::weighted(0.4, controller))
            .prop_map(|(vms, signer, controller)| Step::Create { vms, signer, controller }),
        8 => (target(), prev_and_signer(), change(), any::<bool>(), defect()).prop_map(
            |(did, (prev, signer), change, compromised, defect)| Step::Update {
                did,
                prev,
                signer,
                change,
                compromised,
                defect,
            }
        ),
        1 => (target(), prev_and_signer())
            .prop_map(|(did, (prev, signer))| Step::Deactivate { did, prev, signer }),
        2 => (target(), any::<usize>(), any::<usize>(), any::<bool>(), ordinary_signer(), countersig())
            .prop_map(|(did, controller, key, head_key, signer, countersig)| {
                Step::NameController { did, controller, key, head_key, signer, countersig }
            }),
        3 => (
            target(),
            prop_oneof![6 => Just(Prev::Head), 1 => prev_and_signer().prop_map(|(prev, _)| prev)],
            any::<usize>(),
            prop::bool::weighted(0.8),
            change(),
            any::<bool>(),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(did, prev, key, head_key, change, compromised, deactivate)| {
                Step::ControllerOp { did, prev, key, head_key, change, compromised, deactivate }
            }),
        1 => any::<usize>().prop_map(Step::Resubmit),
        1 => Just(Step::Sleep),
        1 => any::<bool>().prop_map(|rebuild| Step::Restart { rebuild }),
    ]
}

// ---------------------------------------------------------------------------------------
// Driving the ledger.
// ---------------------------------------------------------------------------------------

/// Deterministic keys (so a failing case replays with the same DIDs), with their secrets.
#[derive(Debug)]
struct Keyring {
    seed: u64,
    next: u64,
    secrets: HashMap<PublicKey, SecretKey>,
}

impl Keyring {
    fn fresh(&mut self) -> PublicKey {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        seed[8..16].copy_from_slice(&self.next.to_le_bytes());
        self.next += 1;
        let secret = SecretKey::from_bytes(&seed);
        let public = secret.public_key();
        self.secrets.insert(public, secret);
        public
    }

    fn secret(&self, key: &PublicKey) -> &SecretKey {
        &self.secrets[key]
    }
}

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(now.as_millis()).unwrap()
}

async fn open(dir: &Path) -> Arc<Ledger> {
    Ledger::open(LedgerOptions {
        data_dir: dir.to_path_buf(),
        origin: "civitas.test/model".to_owned(),
        authorities: None,
        recovery_window: Some(Duration::from_millis(WINDOW_MS)),
        idle_seal: Duration::from_millis(50),
    })
    .await
    .unwrap()
}

/// Waits until the sled state of the ledger just closed and dropped in `dir` has released its
/// directory lock, so that the ledger can be opened there again.
///
/// Dropping the last sled handle does not release the lock at once: sled's I/O threads (log
/// buffer writes, segment truncations with their fsync) hold clones of its locked `db` file
/// until their job ends. Under load that outlasts the drop, and an open in the meantime
/// fails with `sled error while opening in …/state` ("could not acquire lock on …/state/db:
/// WouldBlock"). sled takes an exclusive `flock` on `state/db`, which `File::try_lock` also
/// is on Linux: once we get it, the old instance is gone for good.
async fn wait_until_state_unlocked(dir: &Path) {
    let db = dir.join("state").join("db");
    let Ok(file) = std::fs::File::open(&db) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match file.try_lock() {
            // Dropping `file` on return releases our lock again.
            Ok(()) => return,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(TryLockError::WouldBlock) => {
                panic!(
                    "{} is still locked 30 s after the ledger closed",
                    db.display()
                )
            }
            Err(TryLockError::Error(err)) => panic!("locking {}: {err}", db.display()),
        }
    }
}

/// The RFC 9162 root of `leaves`, recomputed naively (§2.1.1).
fn naive_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    match hashes.len() {
        0 => encoding::sha256(b""),
        1 => hashes[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let mut node = vec![1u8];
            node.extend_from_slice(&naive_root(&hashes[..k]));
            node.extend_from_slice(&naive_root(&hashes[k..]));
            encoding::sha256(&node)
        }
    }
}

/// The last state-carrying operation of `ops`.
fn last_state(ops: &[MOp]) -> &Operation {
    &ops.iter()
        .rev()
        .find(|op| op.body.op != OpKind::Deactivate)
        .expect("a create starts every chain")
        .body
}

struct Run {
    dir: TempDir,
    ledger: Option<Arc<Ledger>>,
    model: Model,
    keys: Keyring,
    submitted: Vec<Signed<Operation>>,
    /// The DID of the last operation submitted.
    recent: Option<Did>,
    counter: u64,
}

impl Run {
    fn ledger(&self) -> Arc<Ledger> {
        self.ledger.clone().unwrap()
    }

    fn fragment(&mut self) -> String {
        self.counter += 1;
        format!("key-{}", self.counter)
    }

    fn unknown_id(&mut self) -> ObjectId {
        self.counter += 1;
        ObjectId::from_digest(encoding::sha256(&self.counter.to_le_bytes()))
    }

    fn pick_did(&self, sel: usize) -> Option<Did> {
        (!self.model.order.is_empty())
            .then(|| self.model.order[sel % self.model.order.len()].clone())
    }

    /// The DID `target` names; with `controlled`, `Any` prefers DIDs that name a controller.
    fn target(&self, target: Target, controlled: bool) -> Option<Did> {
        let sel = match target {
            Target::Recent if self.recent.is_some() => return self.recent.clone(),
            Target::Recent => 0,
            Target::Any(sel) => sel,
        };
        let with_controller: Vec<&Did> = self
            .model
            .order
            .iter()
            .filter(|did| {
                last_state(&self.model.dids[*did].chain)
                    .controller
                    .is_some()
            })
            .collect();
        if controlled && !with_controller.is_empty() {
            return Some(with_controller[sel % with_controller.len()].clone());
        }
        self.pick_did(sel)
    }

    /// A `capabilityInvocation` URL of `controller` and its key: from its last state, or
    /// (`head_key` false) from the last state not made by a controller operation at its head.
    fn controller_key(&self, controller: &Did, sel: usize, head_key: bool) -> (DidUrl, PublicKey) {
        let record = &self.model.dids[controller];
        let ops = match record.chain.split_last() {
            Some((head, rest)) if !head_key && head.by_controller() => rest,
            _ => &record.chain[..],
        };
        let state = last_state(ops);
        let fragment = &state.capability_invocation[sel % state.capability_invocation.len()];
        let key = state
            .verification_methods
            .iter()
            .find(|vm| &vm.id == fragment)
            .unwrap()
            .public_key_multibase;
        (controller.with_fragment(fragment), key)
    }

    /// Names `controller` in `op` (whose signer is set) with a countersignature.
    fn countersign(
        &mut self,
        op: &mut Operation,
        controller: &Did,
        key: usize,
        head_key: bool,
        how: Countersig,
    ) {
        op.controller = Some(controller.clone());
        op.controller_sig = None;
        let (url, public) = self.controller_key(controller, key, head_key);
        let secret = match how {
            Countersig::Missing => return,
            Countersig::Valid => self.keys.secret(&public),
            Countersig::WrongKey => {
                let wrong = self.keys.fresh();
                self.keys.secret(&wrong)
            }
        };
        let sig = secret.sign(&op.controller_signing_input());
        op.controller_sig = Some(ControllerSig {
            key: url,
            sig: encoding::b64url(&sig),
        });
    }

    fn new_vm(&mut self, op: &mut Operation, key: PublicKey) {
        let fragment = self.fragment();
        op.verification_methods.push(OpVerificationMethod {
            id: fragment.clone(),
            public_key_multibase: key,
        });
        op.authentication.push(fragment.clone());
        op.assertion_method.push(fragment.clone());
        op.capability_invocation.push(fragment);
    }

    /// The state after `from` with `change`; leaving keys are listed with `status`.
    fn next_state(&mut self, from: &Operation, change: Change, status: KeyStatus) -> Operation {
        let mut op = from.clone();
        op.op = OpKind::Update;
        op.retired_keys.clear();
        op.controller_sig = None;
        let retire = |key| RetiredKey { key, status };
        match change {
            Change::RotateVm(i) => {
                let i = i % op.verification_methods.len();
                let fresh = self.keys.fresh();
                let old =
                    std::mem::replace(&mut op.verification_methods[i].public_key_multibase, fresh);
                op.retired_keys.push(retire(old));
            }
            Change::RotateEveryday => {
                let fresh = self.keys.fresh();
                let old = std::mem::replace(&mut op.rotation_keys[1], fresh);
                op.retired_keys.push(retire(old));
            }
            Change::AddVm if op.verification_methods.len() < 10 => {
                let fresh = self.keys.fresh();
                self.new_vm(&mut op, fresh);
            }
            Change::DropVm(i) if op.verification_methods.len() > 1 => {
                let vm = op
                    .verification_methods
                    .remove(i % op.verification_methods.len());
                for list in [
                    &mut op.authentication,
                    &mut op.assertion_method,
                    &mut op.capability_invocation,
                ] {
                    list.retain(|f| *f != vm.id);
                }
                op.retired_keys.push(retire(vm.public_key_multibase));
            }
            Change::DropController => op.controller = None,
            Change::AddVm | Change::DropVm(_) => {
                return self.next_state(from, Change::RotateVm(0), status);
            }
        }
        op
    }

    /// `prev` for an update of `did`: the id, the state it carries (to build from), and its
    /// chain position when it is canonical.
    fn resolve_prev(&mut self, did: &Did, prev: Prev) -> (ObjectId, Operation, Option<usize>) {
        let unknown = self.unknown_id();
        let record = &self.model.dids[did];
        let head = record.chain.len() - 1;
        let canonical = |pos: usize| {
            (
                record.chain[pos].id,
                last_state(&record.chain[..=pos]).clone(),
                Some(pos),
            )
        };
        match prev {
            Prev::Back(n) => canonical(head.saturating_sub(n)),
            Prev::Nullified(i) if !record.nullified.is_empty() => {
                let (op, _) = &record.nullified[i % record.nullified.len()];
                let state = if op.body.op == OpKind::Deactivate {
                    last_state(&record.chain).clone()
                } else {
                    op.body.clone()
                };
                (op.id, state, None)
            }
            Prev::Unknown => (unknown, last_state(&record.chain).clone(), None),
            Prev::Head | Prev::Nullified(_) => canonical(head),
        }
    }

    fn sign_with_rotation(
        &mut self,
        op: Operation,
        from: &Operation,
        index: u8,
    ) -> Signed<Operation> {
        let key = match from.rotation_keys.get(usize::from(index)) {
            Some(key) => *key,
            // Out of range: any key, the ledger must refuse the index first.
            None => from.rotation_keys[0],
        };
        Signed::sign(op, self.keys.secret(&key))
    }

    fn build(&mut self, step: &Step) -> Option<Signed<Operation>> {
        let did_step = !matches!(step, Step::Create { .. } | Step::Resubmit(_));
        if did_step && self.model.order.is_empty() {
            return self.build(&Step::Create {
                vms: 1,
                signer: 1,
                controller: None,
            });
        }
        match *step {
            Step::Create {
                vms,
                signer,
                controller,
            } => {
                let rotation_keys = vec![self.keys.fresh(), self.keys.fresh()];
                let mut op = Operation {
                    op: OpKind::Create,
                    did: None,
                    prev: None,
                    verification_methods: Vec::new(),
                    authentication: Vec::new(),
                    assertion_method: Vec::new(),
                    capability_invocation: Vec::new(),
                    capability_delegation: Vec::new(),
                    services: Vec::new(),
                    controller: None,
                    controller_sig: None,
                    rotation_keys,
                    retired_keys: Vec::new(),
                    signer: OpSigner::RotationKey(signer),
                };
                for _ in 0..vms {
                    let key = self.keys.fresh();
                    self.new_vm(&mut op, key);
                }
                if let Some((c, key, head_key, how)) = controller
                    && let Some(c) = self.pick_did(c)
                {
                    self.countersign(&mut op, &c, key, head_key, how);
                }
                let from = op.clone();
                Some(self.sign_with_rotation(op, &from, signer))
            }
            Step::Update {
                did,
                prev,
                signer,
                change,
                compromised,
                defect,
            } => {
                let did = self.target(did, false)?;
                let (prev_id, from, pos) = self.resolve_prev(&did, prev);
                let status = if compromised {
                    KeyStatus::Compromised
                } else {
                    KeyStatus::Rotated
                };
                let mut op = self.next_state(&from, change, status);
                op.did = Some(did.clone());
                op.prev = Some(prev_id);
                op.signer = OpSigner::RotationKey(signer);
                let record = &self.model.dids[&did];
                let compromised_keys: Vec<PublicKey> = record
                    .chain
                    .iter()
                    .chain(record.nullified.iter().map(|(op, _)| op))
                    .flat_map(|op| &op.body.retired_keys)
                    .filter(|r| r.status == KeyStatus::Compromised)
                    .map(|r| r.key)
                    .collect();
                let retired_keys = record.retired(pos.unwrap_or(record.chain.len() - 1) + 1, false);
                let mut signing_key = None;
                match defect {
                    Defect::None => {}
                    Defect::WrongKey => signing_key = Some(self.keys.fresh()),
                    Defect::CompromisedKey(i) => {
                        signing_key = Some(if compromised_keys.is_empty() {
                            self.keys.fresh()
                        } else {
                            compromised_keys[i % compromised_keys.len()]
                        });
                    }
                    Defect::OmitRetired if !op.retired_keys.is_empty() => op.retired_keys.clear(),
                    Defect::OmitRetired | Defect::ExtraRetired => {
                        op.retired_keys.push(RetiredKey {
                            key: op.rotation_keys[0],
                            status: KeyStatus::Rotated,
                        })
                    }
                    Defect::ReuseRetired(i) => {
                        if !retired_keys.is_empty() {
                            self.new_vm(&mut op, retired_keys[i % retired_keys.len()]);
                        }
                    }
                    Defect::UnknownDid => {
                        let id = self.unknown_id();
                        op.did = Some(Did::civ_from_genesis_hash(id.digest()));
                    }
                }
                Some(match signing_key {
                    Some(key) => Signed::sign(op, self.keys.secret(&key)),
                    None => self.sign_with_rotation(op, &from, signer),
                })
            }
            Step::Deactivate { did, prev, signer } => {
                let did = self.target(did, false)?;
                let (prev_id, from, _) = self.resolve_prev(&did, prev);
                let op = deactivation(did, prev_id, OpSigner::RotationKey(signer));
                Some(self.sign_with_rotation(op, &from, signer))
            }
            Step::NameController {
                did,
                controller,
                key,
                head_key,
                signer,
                countersig,
            } => {
                let did = self.target(did, false)?;
                let mut controller = self.pick_did(controller)?;
                if controller == did && self.model.order.len() > 1 {
                    let i = self.model.order.iter().position(|d| *d == did).unwrap();
                    controller = self.model.order[(i + 1) % self.model.order.len()].clone();
                }
                let (prev_id, from, _) = self.resolve_prev(&did, Prev::Head);
                let mut op = from.clone();
                op.op = OpKind::Update;
                op.did = Some(did);
                op.prev = Some(prev_id);
                op.retired_keys.clear();
                op.signer = OpSigner::RotationKey(signer);
                self.countersign(&mut op, &controller, key, head_key, countersig);
                Some(self.sign_with_rotation(op, &from, signer))
            }
            Step::ControllerOp {
                did,
                prev,
                key,
                head_key,
                change,
                compromised,
                deactivate,
            } => {
                let did = self.target(did, true)?;
                let (prev_id, from, _) = self.resolve_prev(&did, prev);
                // No controller: use another DID's key; the ledger must refuse the signer.
                let controller = match &from.controller {
                    Some(c) if self.model.dids.contains_key(c) => c.clone(),
                    _ => self.pick_did(key)?,
                };
                let (url, public) = self.controller_key(&controller, key, head_key);
                let signer = OpSigner::ControllerKey(url);
                let op = if deactivate {
                    deactivation(did, prev_id, signer)
                } else {
                    let status = if compromised {
                        KeyStatus::Compromised
                    } else {
                        KeyStatus::Rotated
                    };
                    let mut op = self.next_state(&from, change, status);
                    op.did = Some(did);
                    op.prev = Some(prev_id);
                    op.signer = signer;
                    op
                };
                Some(Signed::sign(op, self.keys.secret(&public)))
            }
            Step::Resubmit(i) => (!self.submitted.is_empty())
                .then(|| self.submitted[i % self.submitted.len()].clone()),
            Step::Sleep | Step::Restart { .. } => None,
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Sleep => {
                tokio::time::sleep(Duration::from_millis(SLEEP_MS)).await;
                Ok(())
            }
            Step::Restart { rebuild } => self.restart(*rebuild).await,
            _ => match self.build(step) {
                Some(op) => self.submit(op).await,
                None => Ok(()),
            },
        }
    }

    async fn submit(&mut self, signed: Signed<Operation>) -> Result<(), TestCaseError> {
        let ledger = self.ledger();
        let lo = now_ms().max(ledger.head().await.time_ms() + 1);
        let result = ledger.submit(Entry::Operation(signed.clone())).await;
        let hi = now_ms().max(ledger.head().await.time_ms() + 1);
        match result {
            Ok(receipt) => {
                let opened = Checkpoint::open(
                    receipt.checkpoint.as_bytes(),
                    &[ledger.verifier().clone()],
                    1,
                )
                .unwrap();
                let checkpoint = opened.checkpoint();
                let t = checkpoint.time_ms().unwrap();
                prop_assert!(lo <= t && t <= hi, "ledger time {t} outside [{lo}, {hi}]");
                // The receipt proves the leaf.
                let leaf_hash = tlog::leaf_hash(signed.bytes());
                prop_assert_eq!(receipt.id, signed.id());
                prop_assert_eq!(&receipt.leaf_hash, &encoding::b64(&leaf_hash));
                let inclusion: Vec<[u8; 32]> = receipt
                    .inclusion
                    .iter()
                    .map(|h| encoding::b64_hash(h).unwrap())
                    .collect();
                tlog::verify_inclusion(
                    &leaf_hash,
                    receipt.index,
                    checkpoint.size(),
                    &inclusion,
                    checkpoint.root(),
                )
                .unwrap();
                let verdict = self.model.judge(&signed, t);
                prop_assert!(
                    verdict.is_ok(),
                    "the ledger accepted {:?} at {t}; the model refuses it: {verdict:?}",
                    signed.body()
                );
                let verdict = verdict.unwrap();
                prop_assert_eq!(receipt.did.as_deref(), Some(verdict.did.as_str()));
                prop_assert_eq!(&receipt.nullified, &verdict.nullified);
                self.model.apply(&signed, t, receipt.index, verdict);
            }
            Err(err) => {
                let slug = err.kind().slug();
                let mut judged: Vec<Judgement> = Vec::new();
                for t in lo..=hi {
                    let judgement = self.model.judge(&signed, t);
                    if !judged.contains(&judgement) {
                        judged.push(judgement);
                    }
                }
                prop_assert!(
                    judged.contains(&Err(slug)),
                    "the ledger refused {:?} with {slug} ({}); the model says {judged:?} for ledger times {lo}..={hi}",
                    signed.body(),
                    err.problem().detail
                );
            }
        }
        let did = match &signed.body().did {
            Some(did) => did.clone(),
            None => Did::civ_from_genesis_hash(signed.id().digest()),
        };
        if self.model.dids.contains_key(&did) {
            self.recent = Some(did);
        }
        self.submitted.push(signed);
        self.check_records(&ledger)
    }

    /// Every DID's chain and nullified operations are the model's.
    fn check_records(&self, ledger: &Ledger) -> Result<(), TestCaseError> {
        for did in &self.model.order {
            let record = ledger.did_record(did);
            prop_assert!(record.is_some(), "{did} is not on the ledger");
            let record = record.unwrap();
            let mine = &self.model.dids[did];
            let chain: Vec<(ObjectId, u64, u64)> = record
                .chain
                .iter()
                .map(|h| (h.id, h.time_ms, h.index))
                .collect();
            let expected: Vec<(ObjectId, u64, u64)> =
                mine.chain.iter().map(|h| (h.id, h.time, h.index)).collect();
            prop_assert_eq!(chain, expected, "canonical chain of {}", did);
            let nullified: Vec<(ObjectId, ObjectId)> =
                record.nullified.iter().map(|(h, by)| (h.id, *by)).collect();
            let expected: Vec<(ObjectId, ObjectId)> =
                mine.nullified.iter().map(|(h, by)| (h.id, *by)).collect();
            prop_assert_eq!(nullified, expected, "nullified operations of {}", did);
        }
        Ok(())
    }

    /// The records, the log root recomputed from every leaf, the checkpoint, and every
    /// DID's state proof.
    async fn check(&self, ledger: &Ledger) -> Result<(), TestCaseError> {
        self.check_records(ledger)?;
        let head = ledger.head().await;
        let size = head.size();
        prop_assert_eq!(ledger.log().len(), size);
        let leaves = ledger.log().read_range(0, size).unwrap();
        let hashes: Vec<[u8; 32]> = leaves.iter().map(|leaf| tlog::leaf_hash(leaf)).collect();
        let root = naive_root(&hashes);
        prop_assert_eq!(root, head.tree.root());
        prop_assert_eq!(leaves.last().map(Vec::as_slice), Some(head.seal.bytes()));
        let opened =
            Checkpoint::open(head.checkpoint.as_bytes(), &[ledger.verifier().clone()], 1).unwrap();
        prop_assert_eq!(opened.checkpoint().size(), size);
        prop_assert_eq!(*opened.checkpoint().root(), root);
        prop_assert_eq!(opened.checkpoint().time_ms(), Some(head.time_ms()));
        // Every operation the ledger accepted is the leaf at the index of its receipt.
        for record in self.model.dids.values() {
            let ops = record
                .chain
                .iter()
                .chain(record.nullified.iter().map(|(op, _)| op));
            for op in ops {
                prop_assert_eq!(ObjectId::of(&leaves[op.index as usize]), op.id);
            }
        }
        // State proofs: each DID maps to its head operation.
        prop_assert_eq!(head.map.len(), self.model.order.len());
        let state_root = head.seal.body().state_root.0;
        for did in &self.model.order {
            let key = proof::map_key_did(did);
            let value = *self.model.dids[did].chain.last().unwrap().id.digest();
            let map_proof = head.map.prove(&key);
            prop_assert!(map_proof.is_some(), "no state proof for {did}");
            let verified =
                smt::verify_map_inclusion(&state_root, &key, &value, &map_proof.unwrap());
            prop_assert!(verified.is_ok(), "state proof of {did}: {verified:?}");
        }
        Ok(())
    }

    async fn restart(&mut self, rebuild: bool) -> Result<(), TestCaseError> {
        let ledger = self.ledger.take().unwrap();
        ledger.close().await;
        self.check(&ledger).await?;
        let (size, root) = {
            let head = ledger.head().await;
            (head.size(), head.tree.root())
        };
        drop(ledger);
        wait_until_state_unlocked(self.dir.path()).await;
        if rebuild {
            std::fs::remove_dir_all(self.dir.path().join("state")).unwrap();
        }
        let ledger = open(self.dir.path()).await;
        {
            let head = ledger.head().await;
            prop_assert!(head.size() >= size);
            prop_assert_eq!(head.tree.root_at(size).unwrap(), root);
        }
        self.check(&ledger).await?;
        self.ledger = Some(ledger);
        Ok(())
    }
}

fn deactivation(did: Did, prev: ObjectId, signer: OpSigner) -> Operation {
    Operation {
        op: OpKind::Deactivate,
        did: Some(did),
        prev: Some(prev),
        verification_methods: Vec::new(),
        authentication: Vec::new(),
        assertion_method: Vec::new(),
        capability_invocation: Vec::new(),
        capability_delegation: Vec::new(),
        services: Vec::new(),
        controller: None,
        controller_sig: None,
        rotation_keys: Vec::new(),
        retired_keys: Vec::new(),
        signer,
    }
}

async fn run(seed: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = TempDir::new().unwrap();
    let ledger = open(dir.path()).await;
    let mut run = Run {
        dir,
        ledger: Some(ledger),
        model: Model::default(),
        keys: Keyring {
            seed,
            next: 0,
            secrets: HashMap::new(),
        },
        submitted: Vec::new(),
        recent: None,
        counter: 0,
    };
    for step in steps {
        run.step(step).await?;
    }
    let ledger = run.ledger();
    run.check(&ledger).await?;
    ledger.close().await;
    Ok(())
}

proptest! {
    // Each case runs a ledger with fsyncs and waits out recovery windows: few cases, short
    // sequences, and a bounded shrink.
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 32,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_ledger_applies_did_civ_operations_like_the_model(
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 1..=40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(seed, &steps))?;
    }
}

fn run_steps(steps: &[Step]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Err(failure) = runtime.block_on(run(0, steps)) {
        panic!("{failure}");
    }
}

/// A, then C controlled by A, then a controller operation of A on C, in effect after the
/// wait, then B, which names C as controller with C's key from before that operation
/// (`head_key: false`) or after it (`head_key: true`).
fn countersign_after_controller_operation(deactivate: bool, head_key: bool) -> Vec<Step> {
    vec![
        Step::Create {
            vms: 1,
            signer: 1,
            controller: None,
        },
        Step::Create {
            vms: 1,
            signer: 1,
            controller: Some((0, 0, true, Countersig::Valid)),
        },
        Step::ControllerOp {
            did: Target::Recent,
            prev: Prev::Head,
            key: 0,
            head_key: true,
            change: Change::RotateVm(0),
            compromised: false,
            deactivate,
        },
        Step::Sleep,
        Step::Create {
            vms: 1,
            signer: 1,
            controller: None,
        },
        Step::NameController {
            did: Target::Recent,
            controller: 1,
            key: 0,
            head_key,
            signer: 1,
            countersig: Countersig::Valid,
        },
    ]
}

/// §5.7: once deactivated (here by its controller, the window passed), a DID cannot
/// countersign. Regression: the countersignature check reads the controller's document
/// as if every controller operation at its head were still pending.
#[test]
fn a_did_deactivated_by_its_controller_cannot_countersign() {
    run_steps(&countersign_after_controller_operation(true, false));
}

/// §5.5: a controller operation in effect is part of the controller's document, so the key
/// it put in countersigns (and the one it replaced does not).
#[test]
fn a_controller_countersigns_with_the_keys_its_controller_gave_it() {
    run_steps(&countersign_after_controller_operation(false, true));
    run_steps(&countersign_after_controller_operation(false, false));
}
