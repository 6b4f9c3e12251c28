//! The did:civ method rules, as a pure function:
//! `(state, operation, ledger time) -> new state | precise error`.
//!
//! A DID's state is its [`DidRecord`]: the canonical chain of operations (each with the
//! ledger time of the block that applied it and its log index) and the operations that a
//! recovery nullified. [`apply_operation`] checks one operation against it and returns the
//! record after it; it reads nothing but its arguments (no clock, no flags, no network), so
//! every replica reaches the same state.
//!
//! Rules (docs/did-civ.md has them in full):
//! - `create`: no `did`, no `prev`; signed by one of its own rotation keys; the DID is
//!   `did:civ:` + base32 of the first 20 bytes of SHA-256 over the signed operation's JCS.
//! - `update` / `deactivate`: `prev` names an operation of the DID's canonical chain, and the
//!   signer is a rotation key of the state at `prev` (by index), or a `capabilityInvocation`
//!   key of the controller named at `prev`.
//! - `prev` = the head: an ordinary step. Refused when the DID is deactivated, or while a
//!   controller operation at the head is still pending.
//! - `prev` earlier than the head (a fork): allowed only within the recovery window of the
//!   first operation it supersedes, and only when signed by a rotation key of strictly
//!   higher priority (lower index) than that operation's signer; controller operations have
//!   the lowest priority, so any rotation key cancels them. Everything after `prev` is
//!   nullified. This is the only fork the ledger allows.
//! - Controller operations take effect only once the recovery window after them has passed.
//! - Every key leaving the document (verification or rotation key) is listed in
//!   `retiredKeys` as `rotated` or `compromised`; retired keys never come back; a key marked
//!   compromised signs nothing valid.
//! - Deactivation is final once its recovery window has passed.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::did::{Did, DidUrl, Method};
use crate::document::{DidDocument, Relationship, Service, VerificationMethod};
use crate::encoding;
use crate::keys::PublicKey;
use crate::ledger::{KeyStatus, ObjectId, OpKind, OpSigner, Operation, ParseEntryError, Signed};

/// Most bytes an operation may have.
pub const MAX_OPERATION_BYTES: usize = 8 * 1024;
/// Most verification methods in a document.
pub const MAX_VERIFICATION_METHODS: usize = 10;
/// Most services in a document.
pub const MAX_SERVICES: usize = 5;
/// Most rotation keys.
pub const MAX_ROTATION_KEYS: usize = 5;
/// Service types a did:civ document may list. Services never carry personal data.
pub const SERVICE_TYPES: [&str; 6] = [
    "OID4VCI",
    "TokenStatusList",
    "CivitasRegistry",
    "CivitasVerifier",
    "CivitasAudit",
    "LinkedDomains",
];

/// The ledger-wide parameters of the method, from the genesis config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The recovery window, milliseconds of ledger time.
    pub recovery_window_ms: u64,
}

/// One applied operation of a DID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryOp {
    /// The operation body.
    pub op: Operation,
    /// Its signature, base64url.
    pub sig: String,
    /// Its object id.
    pub id: ObjectId,
    /// The ledger time it took effect in the log (the block's seal time), ms.
    pub time_ms: u64,
    /// Its log index.
    pub index: u64,
}

impl HistoryOp {
    /// The signed operation, rebuilt from body and signature.
    pub fn signed(&self) -> Result<Signed<Operation>, ParseEntryError> {
        let sig = encoding::b64url_decode(&self.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| ParseEntryError::Sig(self.sig.clone()))?;
        Ok(Signed::from_signature(self.op.clone(), sig))
    }

    fn is_controller_op(&self) -> bool {
        matches!(self.op.signer, OpSigner::ControllerKey(_))
    }
}

/// Everything the ledger knows about one did:civ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidRecord {
    /// The DID.
    pub did: Did,
    /// The canonical chain, create first.
    pub chain: Vec<HistoryOp>,
    /// Operations superseded by a recovery, with the id of the operation that did it.
    pub nullified: Vec<(HistoryOp, ObjectId)>,
}

/// What an accepted operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transition {
    /// A new DID.
    Created,
    /// An ordinary step at the head.
    Appended,
    /// A recovery that nullified these operations.
    Recovered(Vec<ObjectId>),
}

/// An accepted operation: the DID record after it.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The record after the operation.
    pub record: DidRecord,
    /// What happened.
    pub transition: Transition,
}

/// Why an operation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    /// Larger than [`MAX_OPERATION_BYTES`].
    #[error("expected an operation of at most {MAX_OPERATION_BYTES} bytes, found {0}")]
    TooLarge(usize),
    /// The state the operation carries is not a valid document.
    #[error("invalid document state: {0}")]
    InvalidState(String),
    /// `did`/`prev` present or absent against the operation kind.
    #[error("malformed operation: {0}")]
    Malformed(String),
    /// `create` for a DID that exists.
    #[error("{0} already exists")]
    AlreadyExists(Did),
    /// Not a did:civ or not on the ledger.
    #[error("{0} is not on the ledger")]
    NotFound(Did),
    /// `prev` names no operation of the DID's canonical chain.
    #[error("prev {prev} is not an operation of {did}'s current history")]
    UnknownPrev {
        /// The DID.
        did: Did,
        /// The `prev` given.
        prev: ObjectId,
    },
    /// The DID is deactivated.
    #[error("{0} is deactivated")]
    Deactivated(Did),
    /// A controller operation is pending at the head.
    #[error(
        "a controller operation of {0} is pending until its recovery window closes; a rotation key may cancel it by forking from its prev"
    )]
    ControllerPending(Did),
    /// The signer reference is not usable.
    #[error("invalid signer: {0}")]
    Signer(String),
    /// The signing key (multibase) is marked compromised.
    #[error("the signing key {0} is marked compromised")]
    CompromisedKey(String),
    /// The signature does not verify.
    #[error("the operation signature does not verify under {0}")]
    BadSignature(String),
    /// A fork the rules refuse.
    #[error("fork refused: {0}")]
    ForkRefused(String),
    /// The controller is not usable, or did not countersign.
    #[error("invalid controller: {0}")]
    Controller(String),
    /// `retiredKeys` does not list exactly the keys leaving, or a retired key returns.
    #[error("invalid key retirement: {0}")]
    Retirement(String),
}

/// Read access to other DIDs (for controllers).
pub trait DidLookup {
    /// The record of `did`, if it is on the ledger.
    fn did_record(&self, did: &Did) -> Option<DidRecord>;
}

fn valid_fragment(fragment: &str) -> bool {
    !fragment.is_empty()
        && fragment.len() <= 64
        && fragment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_endpoint(url: &str) -> bool {
    if url.len() > 512 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return !rest.is_empty() && !rest.starts_with('/');
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host
            .rsplit_once(':')
            .filter(|(h, port)| !h.is_empty() && port.chars().all(|c| c.is_ascii_digit()))
            .map_or(host, |(h, _)| h);
        return matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    }
    false
}

/// Checks the document state an operation carries (create and update).
fn check_state(op: &Operation) -> Result<(), OpError> {
    let bad = |msg: String| Err(OpError::InvalidState(msg));
    if op.rotation_keys.is_empty() || op.rotation_keys.len() > MAX_ROTATION_KEYS {
        return bad(format!(
            "expected 1 to {MAX_ROTATION_KEYS} rotation keys, found {}",
            op.rotation_keys.len()
        ));
    }
    if op.verification_methods.is_empty()
        || op.verification_methods.len() > MAX_VERIFICATION_METHODS
    {
        return bad(format!(
            "expected 1 to {MAX_VERIFICATION_METHODS} verification methods, found {}",
            op.verification_methods.len()
        ));
    }
    if op.services.len() > MAX_SERVICES {
        return bad(format!(
            "expected at most {MAX_SERVICES} services, found {}",
            op.services.len()
        ));
    }
    let mut keys = HashSet::new();
    for key in &op.rotation_keys {
        if !keys.insert(*key) {
            return bad(format!("rotation key {key} is listed twice"));
        }
    }
    let mut fragments = HashSet::new();
    for vm in &op.verification_methods {
        if !valid_fragment(&vm.id) {
            return bad(format!(
                "expected a verification method id of 1-64 letters, digits, '-' or '_', found {:?}",
                vm.id
            ));
        }
        if !fragments.insert(vm.id.as_str()) {
            return bad(format!("verification method id {:?} is used twice", vm.id));
        }
        if !keys.insert(vm.public_key_multibase) {
            return bad(format!(
                "key {} is used twice (rotation keys are never verification keys)",
                vm.public_key_multibase
            ));
        }
    }
    for (name, list) in [
        ("authentication", &op.authentication),
        ("assertionMethod", &op.assertion_method),
        ("capabilityInvocation", &op.capability_invocation),
        ("capabilityDelegation", &op.capability_delegation),
    ] {
        let mut seen = HashSet::new();
        for fragment in list {
            if !fragments.contains(fragment.as_str()) {
                return bad(format!(
                    "{name} names {fragment:?}, which is no verification method"
                ));
            }
            if !seen.insert(fragment) {
                return bad(format!("{name} names {fragment:?} twice"));
            }
        }
    }
    for service in &op.services {
        if !valid_fragment(&service.id) || !fragments.insert(service.id.as_str()) {
            return bad(format!(
                "expected a unique service id of 1-64 letters, digits, '-' or '_', found {:?}",
                service.id
            ));
        }
        if !SERVICE_TYPES.contains(&service.kind.as_str()) {
            return bad(format!(
                "expected a service type from {SERVICE_TYPES:?}, found {:?}",
                service.kind
            ));
        }
        if !valid_endpoint(&service.service_endpoint) {
            return bad(format!(
                "expected an https:// endpoint (http:// only on loopback), found {:?}",
                service.service_endpoint
            ));
        }
    }
    Ok(())
}

fn state_keys(op: &Operation) -> BTreeSet<PublicKey> {
    op.rotation_keys
        .iter()
        .copied()
        .chain(
            op.verification_methods
                .iter()
                .map(|vm| vm.public_key_multibase),
        )
        .collect()
}

/// The DID document a state-carrying operation describes for `did`; a deactivation
/// describes an empty document.
pub fn document_from_operation(did: &Did, op: &Operation) -> DidDocument {
    let mut doc = DidDocument::new(did.clone());
    if op.op == OpKind::Deactivate {
        return doc;
    }
    let url = |fragment: &str| did.with_fragment(fragment);
    doc.controller = op.controller.clone();
    doc.verification_method = op
        .verification_methods
        .iter()
        .map(|vm| VerificationMethod {
            id: url(&vm.id),
            kind: "Multikey".to_owned(),
            controller: did.clone(),
            public_key_multibase: vm.public_key_multibase,
        })
        .collect();
    doc.authentication = op.authentication.iter().map(|f| url(f)).collect();
    doc.assertion_method = op.assertion_method.iter().map(|f| url(f)).collect();
    doc.capability_invocation = op.capability_invocation.iter().map(|f| url(f)).collect();
    doc.capability_delegation = op.capability_delegation.iter().map(|f| url(f)).collect();
    doc.service = op
        .services
        .iter()
        .map(|s| Service {
            id: url(&s.id),
            kind: s.kind.clone(),
            service_endpoint: s.service_endpoint.clone(),
        })
        .collect();
    doc
}

impl DidRecord {
    /// The canonical head.
    pub fn head(&self) -> Option<&HistoryOp> {
        self.chain.last()
    }

    /// Whether the canonical head deactivates the DID.
    pub fn is_deactivated(&self) -> bool {
        self.head().is_some_and(|h| h.op.op == OpKind::Deactivate)
    }

    /// The number of canonical operations in effect at ledger time `now_ms`: a controller
    /// operation at the head counts only once its recovery window has passed.
    pub fn effective_len(&self, now_ms: u64, rules: &Rules) -> usize {
        match self.chain.last() {
            Some(head)
                if head.is_controller_op()
                    && now_ms < head.time_ms.saturating_add(rules.recovery_window_ms) =>
            {
                self.chain.len() - 1
            }
            _ => self.chain.len(),
        }
    }

    /// The last state-carrying operation at or before chain position `pos`.
    fn state_op(&self, pos: usize) -> Option<&HistoryOp> {
        self.chain[..=pos.min(self.chain.len().saturating_sub(1))]
            .iter()
            .rev()
            .find(|h| h.op.op != OpKind::Deactivate)
    }

    /// Keys marked compromised by the operations in `chain[..end]`.
    pub fn compromised_keys(&self, end: usize) -> BTreeSet<PublicKey> {
        self.chain[..end.min(self.chain.len())]
            .iter()
            .flat_map(|h| &h.op.retired_keys)
            .filter(|r| r.status == KeyStatus::Compromised)
            .map(|r| r.key)
            .collect()
    }

    /// Keys retired by the operations in `chain[..end]`.
    fn retired_keys(&self, end: usize) -> BTreeSet<PublicKey> {
        self.chain[..end.min(self.chain.len())]
            .iter()
            .flat_map(|h| &h.op.retired_keys)
            .map(|r| r.key)
            .collect()
    }

    /// Whether `key` was ever marked compromised in the canonical chain.
    pub fn is_compromised(&self, key: &PublicKey) -> bool {
        self.compromised_keys(self.chain.len()).contains(key)
    }

    /// The DID document after chain position `pos` (with the DID's deactivation shown as
    /// an empty document).
    pub fn document_at(&self, pos: usize) -> DidDocument {
        match self.chain.get(pos) {
            Some(h) => document_from_operation(&self.did, &h.op),
            None => DidDocument::new(self.did.clone()),
        }
    }

    /// The effective document at ledger time `now_ms`, and the chain position it comes from.
    pub fn current(&self, now_ms: u64, rules: &Rules) -> Option<(usize, DidDocument)> {
        let len = self.effective_len(now_ms, rules);
        let pos = len.checked_sub(1)?;
        Some((pos, self.document_at(pos)))
    }

    /// The key of `url` under `relationship` in the effective current document, if the DID
    /// is not deactivated and the key was never marked compromised.
    pub fn current_key(
        &self,
        url: &DidUrl,
        relationship: Relationship,
        now_ms: u64,
        rules: &Rules,
    ) -> Option<PublicKey> {
        let (pos, doc) = self.current(now_ms, rules)?;
        if self.chain[pos].op.op == OpKind::Deactivate {
            return None;
        }
        let key = doc.key_for(url, relationship)?;
        (!self.is_compromised(&key)).then_some(key)
    }

    /// The chain position of the operation with id `id`.
    pub fn position(&self, id: &ObjectId) -> Option<usize> {
        self.chain.iter().position(|h| &h.id == id)
    }

    /// The chain position in effect at ledger time `time_ms` (the last operation applied
    /// at or before it, ignoring controller operations still pending then).
    pub fn position_at(&self, time_ms: u64, rules: &Rules) -> Option<usize> {
        let mut found = None;
        for (pos, h) in self.chain.iter().enumerate() {
            if h.time_ms > time_ms {
                break;
            }
            if h.is_controller_op() && time_ms < h.time_ms.saturating_add(rules.recovery_window_ms)
            {
                break;
            }
            found = Some(pos);
        }
        found
    }
}

/// Checks `op` at ledger time `time_ms` (the closing seal's time) against the current
/// record of its DID and returns the record after it. `index` is the log index the
/// operation will have.
pub fn apply_operation(
    lookup: &dyn DidLookup,
    op: &Signed<Operation>,
    time_ms: u64,
    index: u64,
    rules: &Rules,
) -> Result<Applied, OpError> {
    if op.bytes().len() > MAX_OPERATION_BYTES {
        return Err(OpError::TooLarge(op.bytes().len()));
    }
    let body = op.body();
    let history = HistoryOp {
        op: body.clone(),
        sig: encoding::b64url(op.sig()),
        id: op.id(),
        time_ms,
        index,
    };
    match body.op {
        OpKind::Create => apply_create(lookup, op, history, rules),
        OpKind::Update | OpKind::Deactivate => apply_step(lookup, op, history, rules),
    }
}

fn apply_create(
    lookup: &dyn DidLookup,
    op: &Signed<Operation>,
    history: HistoryOp,
    rules: &Rules,
) -> Result<Applied, OpError> {
    let body = op.body();
    if body.did.is_some() || body.prev.is_some() {
        return Err(OpError::Malformed(
            "expected create without did and prev (the DID is derived from the operation)"
                .to_owned(),
        ));
    }
    if !body.retired_keys.is_empty() {
        return Err(OpError::Malformed(
            "expected create without retiredKeys".to_owned(),
        ));
    }
    check_state(body)?;
    let did = Did::civ_from_genesis_hash(op.id().digest());
    if lookup.did_record(&did).is_some() {
        return Err(OpError::AlreadyExists(did));
    }
    let OpSigner::RotationKey(i) = &body.signer else {
        return Err(OpError::Signer(
            "create must be signed by one of its rotation keys".to_owned(),
        ));
    };
    let key = body.rotation_keys.get(usize::from(*i)).ok_or_else(|| {
        OpError::Signer(format!(
            "rotation key index {i} is out of range for {} keys",
            body.rotation_keys.len()
        ))
    })?;
    op.verify(key)
        .map_err(|_| OpError::BadSignature(format!("rotation key {i}")))?;
    check_controller(lookup, &did, body, None, history.time_ms, rules)?;
    Ok(Applied {
        record: DidRecord {
            did,
            chain: vec![history],
            nullified: Vec::new(),
        },
        transition: Transition::Created,
    })
}

/// A newly named controller must be an existing, active did:civ other than the DID itself,
/// and must have countersigned with a current `capabilityInvocation` key.
fn check_controller(
    lookup: &dyn DidLookup,
    did: &Did,
    body: &Operation,
    previous: Option<&Did>,
    time_ms: u64,
    rules: &Rules,
) -> Result<(), OpError> {
    let Some(controller) = &body.controller else {
        return if body.controller_sig.is_some() {
            Err(OpError::Controller(
                "controllerSig without a controller".to_owned(),
            ))
        } else {
            Ok(())
        };
    };
    if previous == Some(controller) && body.controller_sig.is_none() {
        return Ok(());
    }
    if controller == did || controller.method() != Method::Civ {
        return Err(OpError::Controller(format!(
            "expected another did:civ as controller, found {controller}"
        )));
    }
    let record = lookup
        .did_record(controller)
        .ok_or_else(|| OpError::Controller(format!("{controller} is not on the ledger")))?;
    let countersig = body.controller_sig.as_ref().ok_or_else(|| {
        OpError::Controller(format!(
            "{controller} is named controller but did not countersign"
        ))
    })?;
    // The controller's state in effect at this operation's ledger time: a controller
    // operation of its own counts once its window has passed, not before.
    let key = record
        .current_key(
            &countersig.key,
            Relationship::CapabilityInvocation,
            time_ms,
            rules,
        )
        .filter(|_| countersig.key.did() == controller)
        .ok_or_else(|| {
            OpError::Controller(format!(
                "{} is not a current capabilityInvocation key of {controller}",
                countersig.key
            ))
        })?;
    let sig = encoding::b64url_decode(&countersig.sig).map_err(|_| {
        OpError::Controller("controllerSig.sig is not canonical base64url".to_owned())
    })?;
    key.verify(&body.controller_signing_input(), &sig)
        .map_err(|_| {
            OpError::Controller("the controller countersignature does not verify".to_owned())
        })
}

fn apply_step(
    lookup: &dyn DidLookup,
    op: &Signed<Operation>,
    history: HistoryOp,
    rules: &Rules,
) -> Result<Applied, OpError> {
    let body = op.body();
    let (Some(did), Some(prev)) = (&body.did, &body.prev) else {
        return Err(OpError::Malformed(format!(
            "expected {} with did and prev",
            if body.op == OpKind::Update {
                "update"
            } else {
                "deactivate"
            }
        )));
    };
    if did.method() != Method::Civ {
        return Err(OpError::NotFound(did.clone()));
    }
    let mut record = lookup
        .did_record(did)
        .ok_or_else(|| OpError::NotFound(did.clone()))?;
    let pos = record.position(prev).ok_or_else(|| OpError::UnknownPrev {
        did: did.clone(),
        prev: *prev,
    })?;
    let time_ms = history.time_ms;
    let is_head = pos + 1 == record.chain.len();
    // The state the signer is judged against: the one after `prev`.
    let prev_state =
        record
            .state_op(pos)
            .map(|h| h.op.clone())
            .ok_or_else(|| OpError::UnknownPrev {
                did: did.clone(),
                prev: *prev,
            })?;
    if record.chain[pos].op.op == OpKind::Deactivate {
        return Err(OpError::Deactivated(did.clone()));
    }
    // Compromise marks made by operations this one would supersede do not count: a thief
    // must not be able to lock the owner's recovery key out by marking it.
    let compromised = record.compromised_keys(pos + 1);
    let signer_key = match &body.signer {
        OpSigner::RotationKey(i) => {
            let key = *prev_state
                .rotation_keys
                .get(usize::from(*i))
                .ok_or_else(|| {
                    OpError::Signer(format!(
                        "rotation key index {i} is out of range for {} keys",
                        prev_state.rotation_keys.len()
                    ))
                })?;
            if compromised.contains(&key) {
                return Err(OpError::CompromisedKey(key.to_string()));
            }
            key
        }
        OpSigner::ControllerKey(url) => {
            let controller = prev_state
                .controller
                .as_ref()
                .ok_or_else(|| OpError::Signer(format!("{did} has no controller")))?;
            if url.did() != controller {
                return Err(OpError::Signer(format!(
                    "expected a key of the controller {controller}, found {url}"
                )));
            }
            let controller_record = lookup
                .did_record(controller)
                .ok_or_else(|| OpError::Controller(format!("{controller} is not on the ledger")))?;
            controller_record
                .current_key(url, Relationship::CapabilityInvocation, time_ms, rules)
                .ok_or_else(|| {
                    OpError::Signer(format!(
                        "{url} is not a current capabilityInvocation key of the controller"
                    ))
                })?
        }
    };
    op.verify(&signer_key)
        .map_err(|_| OpError::BadSignature(signer_key.to_string()))?;

    let transition = if is_head {
        if record.is_deactivated() {
            return Err(OpError::Deactivated(did.clone()));
        }
        if record.effective_len(time_ms, rules) < record.chain.len() {
            return Err(OpError::ControllerPending(did.clone()));
        }
        Transition::Appended
    } else {
        let superseded = &record.chain[pos + 1];
        let closes = superseded.time_ms.saturating_add(rules.recovery_window_ms);
        if time_ms >= closes {
            return Err(OpError::ForkRefused(format!(
                "the recovery window of {} closed at ledger time {closes}; it is now {time_ms}",
                superseded.id
            )));
        }
        let OpSigner::RotationKey(mine) = body.signer else {
            return Err(OpError::ForkRefused(
                "only a rotation key may supersede an operation".to_owned(),
            ));
        };
        if let OpSigner::RotationKey(theirs) = superseded.op.signer
            && mine >= theirs
        {
            {
                return Err(OpError::ForkRefused(format!(
                    "superseding an operation signed by rotation key {theirs} needs a key of higher priority (index below {theirs}), found {mine}"
                )));
            }
        }
        let removed: Vec<HistoryOp> = record.chain.drain(pos + 1..).collect();
        let ids = removed.iter().map(|h| h.id).collect();
        record
            .nullified
            .extend(removed.into_iter().map(|h| (h, op.id())));
        Transition::Recovered(ids)
    };

    if body.op == OpKind::Update {
        check_state(body)?;
        check_retirement(&record, &prev_state, body)?;
        check_controller(
            lookup,
            did,
            body,
            prev_state.controller.as_ref(),
            time_ms,
            rules,
        )?;
    } else if body.controller.is_some()
        || !body.verification_methods.is_empty()
        || !body.rotation_keys.is_empty()
        || !body.services.is_empty()
        || !body.retired_keys.is_empty()
        || body.controller_sig.is_some()
        || !body.authentication.is_empty()
        || !body.assertion_method.is_empty()
        || !body.capability_invocation.is_empty()
        || !body.capability_delegation.is_empty()
    {
        return Err(OpError::Malformed(
            "expected deactivate to carry no state".to_owned(),
        ));
    }
    record.chain.push(history);
    Ok(Applied { record, transition })
}

/// The keys leaving the document are exactly the ones listed as retired, and no retired
/// key comes back. `record.chain` already ends at `prev`.
fn check_retirement(
    record: &DidRecord,
    prev_state: &Operation,
    body: &Operation,
) -> Result<(), OpError> {
    let before = state_keys(prev_state);
    let after = state_keys(body);
    let leaving: BTreeSet<PublicKey> = before.difference(&after).copied().collect();
    let mut listed = BTreeSet::new();
    for retired in &body.retired_keys {
        if !listed.insert(retired.key) {
            return Err(OpError::Retirement(format!(
                "{} is listed twice",
                retired.key
            )));
        }
    }
    if leaving != listed {
        let missing: Vec<String> = leaving
            .difference(&listed)
            .map(ToString::to_string)
            .collect();
        let extra: Vec<String> = listed
            .difference(&leaving)
            .map(ToString::to_string)
            .collect();
        return Err(OpError::Retirement(format!(
            "retiredKeys must list exactly the keys leaving the document; not listed: {missing:?}; listed but not leaving: {extra:?}"
        )));
    }
    let retired_before = record.retired_keys(record.chain.len());
    if let Some(key) = after.iter().find(|k| retired_before.contains(k)) {
        return Err(OpError::Retirement(format!(
            "retired key {key} cannot come back"
        )));
    }
    Ok(())
}

/// An in-memory ledger for the rule tests of this crate (did:civ, trust, anchors).
#[cfg(test)]
pub(crate) mod testing {
    use std::collections::HashMap;

    use super::*;
    use crate::anchor::{AnchorLookup, StreamHead};
    use crate::keys::SecretKey;
    use crate::trust::{Roots, TrustLookup, TrustRecord};

    /// The rules of the tests: a one-second recovery window.
    pub(crate) const RULES: Rules = Rules {
        recovery_window_ms: 1_000,
    };

    /// DIDs, trust records, root authorities and anchor streams, in maps.
    #[derive(Default)]
    pub(crate) struct MemoryLedger {
        pub(crate) dids: HashMap<Did, DidRecord>,
        pub(crate) trust: HashMap<(Did, String), TrustRecord>,
        pub(crate) roots: Vec<Did>,
        pub(crate) root_history: TrustRecord,
        pub(crate) streams: HashMap<String, StreamHead>,
        next_index: u64,
    }

    impl DidLookup for MemoryLedger {
        fn did_record(&self, did: &Did) -> Option<DidRecord> {
            self.dids.get(did).cloned()
        }
    }

    impl TrustLookup for MemoryLedger {
        fn trust_record(&self, issuer: &Did, vct: &str) -> Option<TrustRecord> {
            self.trust.get(&(issuer.clone(), vct.to_owned())).cloned()
        }

        fn roots(&self) -> Roots {
            Roots {
                current: self.roots.clone(),
                history: self.root_history.clone(),
            }
        }
    }

    impl AnchorLookup for MemoryLedger {
        fn stream_head(&self, stream: &str) -> Option<StreamHead> {
            self.streams.get(stream).cloned()
        }
    }

    impl MemoryLedger {
        /// Applies a DID operation at ledger time `time`.
        pub(crate) fn apply_op(
            &mut self,
            op: &Signed<Operation>,
            time: u64,
        ) -> Result<Transition, OpError> {
            self.next_index += 1;
            let applied = apply_operation(self, op, time, self.next_index, &RULES)?;
            self.dids.insert(applied.record.did.clone(), applied.record);
            Ok(applied.transition)
        }

        /// Publishes a DID whose `#key-1` is `key`; returns the DID.
        pub(crate) fn publish(&mut self, key: &SecretKey) -> Did {
            let rotation = SecretKey::generate();
            let op = Operation::create(vec![rotation.public_key()], key.public_key(), 0);
            let signed = Signed::sign(op, &rotation);
            let did = Did::civ_from_genesis_hash(signed.id().digest());
            assert_eq!(self.apply_op(&signed, 1), Ok(Transition::Created));
            did
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{MemoryLedger as Ledger, RULES};
    use super::*;
    use crate::keys::SecretKey;
    use crate::ledger::{ControllerSig, RetiredKey};

    /// A DID's keys: rotation keys [recovery, everyday], and key-1.
    struct Keys {
        recovery: SecretKey,
        everyday: SecretKey,
        vm: SecretKey,
    }

    fn keys() -> Keys {
        Keys {
            recovery: SecretKey::generate(),
            everyday: SecretKey::generate(),
            vm: SecretKey::generate(),
        }
    }

    fn create(k: &Keys) -> Signed<Operation> {
        let op = Operation::create(
            vec![k.recovery.public_key(), k.everyday.public_key()],
            k.vm.public_key(),
            1,
        );
        Signed::sign(op, &k.everyday)
    }

    fn did_of(op: &Signed<Operation>) -> Did {
        Did::civ_from_genesis_hash(op.id().digest())
    }

    /// An update after `prev` replacing key-1 with `new_vm` (old key retired as `status`),
    /// signed by rotation key `index`.
    fn rotate(
        k: &Keys,
        did: &Did,
        prev: &Signed<Operation>,
        new_vm: &SecretKey,
        status: KeyStatus,
        index: u8,
    ) -> Signed<Operation> {
        let mut body = prev.body().clone();
        let old = body.verification_methods[0].public_key_multibase;
        body.op = OpKind::Update;
        body.did = Some(did.clone());
        body.prev = Some(prev.id());
        body.verification_methods[0].public_key_multibase = new_vm.public_key();
        body.retired_keys = vec![RetiredKey { key: old, status }];
        body.controller_sig = None;
        body.signer = OpSigner::RotationKey(index);
        Signed::sign(body, if index == 0 { &k.recovery } else { &k.everyday })
    }

    /// [`rotate`] to a fresh verification key.
    fn rotate_fresh(
        k: &Keys,
        did: &Did,
        prev: &Signed<Operation>,
        status: KeyStatus,
        index: u8,
    ) -> Signed<Operation> {
        rotate(k, did, prev, &SecretKey::generate(), status, index)
    }

    #[test]
    fn create_derives_the_did_and_refuses_duplicates() {
        let mut ledger = Ledger::default();
        let k = keys();
        let op = create(&k);
        assert_eq!(ledger.apply_op(&op, 10), Ok(Transition::Created));
        let did = did_of(&op);
        assert_eq!(ledger.did_record(&did).unwrap().chain.len(), 1);
        assert_eq!(ledger.apply_op(&op, 11), Err(OpError::AlreadyExists(did)));
    }

    #[test]
    fn state_rules_are_enforced() {
        let mut ledger = Ledger::default();
        let k = keys();
        let mut body = create(&k).body().clone();
        body.rotation_keys.push(k.vm.public_key());
        let reused = Signed::sign(body, &k.everyday);
        assert!(matches!(
            ledger.apply_op(&reused, 1),
            Err(OpError::InvalidState(_))
        ));

        let mut body = create(&k).body().clone();
        body.authentication = vec!["key-9".to_owned()];
        assert!(matches!(
            ledger.apply_op(&Signed::sign(body, &k.everyday), 1),
            Err(OpError::InvalidState(_))
        ));

        let mut body = create(&k).body().clone();
        body.services = vec![crate::ledger::OpService {
            id: "s".to_owned(),
            kind: "PersonalData".to_owned(),
            service_endpoint: "https://x.example".to_owned(),
        }];
        assert!(matches!(
            ledger.apply_op(&Signed::sign(body, &k.everyday), 1),
            Err(OpError::InvalidState(_))
        ));

        let mut body = create(&k).body().clone();
        body.services = vec![crate::ledger::OpService {
            id: "s".to_owned(),
            kind: "OID4VCI".to_owned(),
            service_endpoint: "http://issuer.example".to_owned(),
        }];
        assert!(matches!(
            ledger.apply_op(&Signed::sign(body, &k.everyday), 1),
            Err(OpError::InvalidState(_))
        ));

        let mut body = create(&k).body().clone();
        body.signer = OpSigner::RotationKey(0);
        assert!(matches!(
            ledger.apply_op(&Signed::sign(body, &k.everyday), 1),
            Err(OpError::BadSignature(_))
        ));
    }

    #[test]
    fn updates_chain_and_retire_keys_exactly() {
        let mut ledger = Ledger::default();
        let k = keys();
        let genesis = create(&k);
        let did = did_of(&genesis);
        ledger.apply_op(&genesis, 10).unwrap();
        let new_vm = SecretKey::generate();

        // The leaving key must be listed.
        let mut unlisted = rotate(&k, &did, &genesis, &new_vm, KeyStatus::Rotated, 1)
            .body()
            .clone();
        unlisted.retired_keys.clear();
        assert!(matches!(
            ledger.apply_op(&Signed::sign(unlisted, &k.everyday), 11),
            Err(OpError::Retirement(_))
        ));

        let step = rotate(&k, &did, &genesis, &new_vm, KeyStatus::Rotated, 1);
        assert_eq!(ledger.apply_op(&step, 12), Ok(Transition::Appended));
        let record = ledger.did_record(&did).unwrap();
        assert_eq!(
            record.document_at(1).verification_method[0].public_key_multibase,
            new_vm.public_key()
        );
        assert_eq!(
            record.document_at(0).verification_method[0].public_key_multibase,
            k.vm.public_key()
        );

        // A retired key never comes back.
        let back = rotate(&k, &did, &step, &k.vm, KeyStatus::Rotated, 1);
        assert!(matches!(
            ledger.apply_op(&back, 13),
            Err(OpError::Retirement(_))
        ));

        // An unknown prev.
        let mut orphan = step.body().clone();
        orphan.prev = Some(ObjectId::from_digest([1; 32]));
        assert!(matches!(
            ledger.apply_op(&Signed::sign(orphan, &k.everyday), 14),
            Err(OpError::UnknownPrev { .. })
        ));
    }

    #[test]
    fn recovery_supersedes_within_the_window_with_higher_priority_only() {
        let mut ledger = Ledger::default();
        let k = keys();
        let genesis = create(&k);
        let did = did_of(&genesis);
        ledger.apply_op(&genesis, 10).unwrap();
        let thief = rotate_fresh(&k, &did, &genesis, KeyStatus::Rotated, 1);
        ledger.apply_op(&thief, 100).unwrap();

        // Same priority: refused.
        let same = rotate_fresh(&k, &did, &genesis, KeyStatus::Rotated, 1);
        assert!(matches!(
            ledger.apply_op(&same, 200),
            Err(OpError::ForkRefused(_))
        ));
        // Higher priority, within the window: the thief's operation is nullified.
        let recovery = rotate_fresh(&k, &did, &genesis, KeyStatus::Compromised, 0);
        assert_eq!(
            ledger.apply_op(&recovery, 300),
            Ok(Transition::Recovered(vec![thief.id()]))
        );
        let record = ledger.did_record(&did).unwrap();
        assert_eq!(record.head().unwrap().id, recovery.id());
        assert_eq!(record.nullified[0].0.id, thief.id());
        assert!(record.is_compromised(&k.vm.public_key()));

        // After the window, even the recovery key cannot fork.
        let next = rotate_fresh(&k, &did, &recovery, KeyStatus::Rotated, 1);
        ledger.apply_op(&next, 400).unwrap();
        let late = rotate_fresh(&k, &did, &recovery, KeyStatus::Rotated, 0);
        assert!(matches!(
            ledger.apply_op(&late, 400 + RULES.recovery_window_ms),
            Err(OpError::ForkRefused(_))
        ));
    }

    #[test]
    fn a_thief_cannot_lock_out_the_recovery_key_by_marking_it() {
        let mut ledger = Ledger::default();
        let k = keys();
        let genesis = create(&k);
        let did = did_of(&genesis);
        ledger.apply_op(&genesis, 10).unwrap();
        // The thief replaces the recovery key and marks it compromised.
        let mut body = genesis.body().clone();
        let thief_key = SecretKey::generate();
        body.op = OpKind::Update;
        body.did = Some(did.clone());
        body.prev = Some(genesis.id());
        body.rotation_keys[0] = thief_key.public_key();
        body.retired_keys = vec![RetiredKey {
            key: k.recovery.public_key(),
            status: KeyStatus::Compromised,
        }];
        body.signer = OpSigner::RotationKey(1);
        let theft = Signed::sign(body, &k.everyday);
        ledger.apply_op(&theft, 100).unwrap();
        // The owner's recovery still supersedes it.
        let recovery = rotate_fresh(&k, &did, &genesis, KeyStatus::Compromised, 0);
        assert!(matches!(
            ledger.apply_op(&recovery, 200),
            Ok(Transition::Recovered(_))
        ));
    }

    #[test]
    fn deactivation_is_final_after_the_window() {
        let mut ledger = Ledger::default();
        let k = keys();
        let genesis = create(&k);
        let did = did_of(&genesis);
        ledger.apply_op(&genesis, 10).unwrap();
        let mut body = genesis.body().clone();
        body.op = OpKind::Deactivate;
        body.did = Some(did.clone());
        body.prev = Some(genesis.id());
        body.verification_methods.clear();
        body.authentication.clear();
        body.assertion_method.clear();
        body.capability_invocation.clear();
        body.rotation_keys.clear();
        body.signer = OpSigner::RotationKey(1);
        let end = Signed::sign(body, &k.everyday);
        ledger.apply_op(&end, 100).unwrap();
        assert!(ledger.did_record(&did).unwrap().is_deactivated());
        let mut after = rotate_fresh(&k, &did, &genesis, KeyStatus::Rotated, 1)
            .body()
            .clone();
        after.prev = Some(end.id());
        let after = Signed::sign(after, &k.everyday);
        assert!(matches!(
            ledger.apply_op(&after, 200),
            Err(OpError::Deactivated(_))
        ));
        let late = rotate_fresh(&k, &did, &genesis, KeyStatus::Rotated, 0);
        assert!(matches!(
            ledger.apply_op(&late, 100 + RULES.recovery_window_ms),
            Err(OpError::ForkRefused(_))
        ));
        // Within the window the recovery key could still have undone it.
        let mut ledger2 = Ledger::default();
        ledger2.apply_op(&genesis, 10).unwrap();
        ledger2.apply_op(&end, 100).unwrap();
        assert!(matches!(
            ledger2.apply_op(&late, 500),
            Ok(Transition::Recovered(_))
        ));
    }

    #[test]
    fn controller_operations_wait_for_the_window_and_can_be_cancelled() {
        let mut ledger = Ledger::default();
        let ck = keys();
        let controller_op = create(&ck);
        let controller = did_of(&controller_op);
        ledger.apply_op(&controller_op, 10).unwrap();

        let k = keys();
        let mut body = create(&k).body().clone();
        body.controller = Some(controller.clone());
        // Without a countersignature: refused.
        assert!(matches!(
            ledger.apply_op(&Signed::sign(body.clone(), &k.everyday), 11),
            Err(OpError::Controller(_))
        ));
        let url = controller.with_fragment("key-1");
        body.controller_sig = Some(ControllerSig {
            key: url.clone(),
            sig: encoding::b64url(&ck.vm.sign(&body.controller_signing_input())),
        });
        let genesis = Signed::sign(body, &k.everyday);
        let did = did_of(&genesis);
        ledger.apply_op(&genesis, 20).unwrap();

        // The controller rotates the DID's key: pending for one window.
        let mut step = rotate_fresh(&k, &did, &genesis, KeyStatus::Rotated, 1)
            .body()
            .clone();
        step.signer = OpSigner::ControllerKey(url);
        let by_controller = Signed::sign(step, &ck.vm);
        ledger.apply_op(&by_controller, 100).unwrap();
        let record = ledger.did_record(&did).unwrap();
        assert_eq!(
            record.effective_len(500, &RULES),
            1,
            "pending within the window"
        );
        assert_eq!(
            record.effective_len(100 + RULES.recovery_window_ms, &RULES),
            2
        );
        // Ordinary steps wait while it is pending.
        let blocked = rotate_fresh(&k, &did, &by_controller, KeyStatus::Rotated, 1);
        assert!(matches!(
            ledger.apply_op(&blocked, 200),
            Err(OpError::ControllerPending(_))
        ));
        // Any rotation key cancels it by forking from its prev.
        let cancel = rotate_fresh(&k, &did, &genesis, KeyStatus::Rotated, 1);
        assert_eq!(
            ledger.apply_op(&cancel, 300),
            Ok(Transition::Recovered(vec![by_controller.id()]))
        );
    }

    #[test]
    fn compromised_keys_sign_nothing() {
        let mut ledger = Ledger::default();
        let k = keys();
        let genesis = create(&k);
        let did = did_of(&genesis);
        ledger.apply_op(&genesis, 10).unwrap();
        // The everyday rotation key is replaced and marked compromised by the recovery key.
        let mut body = genesis.body().clone();
        let fresh = SecretKey::generate();
        body.op = OpKind::Update;
        body.did = Some(did.clone());
        body.prev = Some(genesis.id());
        body.rotation_keys[1] = fresh.public_key();
        body.retired_keys = vec![RetiredKey {
            key: k.everyday.public_key(),
            status: KeyStatus::Compromised,
        }];
        body.signer = OpSigner::RotationKey(0);
        let step = Signed::sign(body, &k.recovery);
        ledger.apply_op(&step, 100).unwrap();
        let record = ledger.did_record(&did).unwrap();
        assert!(record.is_compromised(&k.everyday.public_key()));
        // The old key can no longer sign at its old index (it is not a rotation key any more).
        let stale = rotate_fresh(&k, &did, &step, KeyStatus::Rotated, 1);
        assert!(matches!(
            ledger.apply_op(&stale, 200),
            Err(OpError::BadSignature(_))
        ));
    }
}
