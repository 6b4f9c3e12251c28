//! Checking what a registry serves: signed checkpoints, inclusion of leaves, the closing
//! seal, and state proofs — the same checks for the wallet, the verifier and auditors.
//!
//! ```text
//!  checkpoint note ──open with pinned note keys──▶ Checkpoint { size, root, time }
//!  seal leaf ──inclusion at size-1──▶ Seal { time == checkpoint time, stateRoot }
//!  operation leaf ──inclusion──▶ Operation ──document_from_operation──▶ DidDocument
//!  latest op id ──state proof against stateRoot──▶ "this is the DID's latest operation"
//! ```

use crate::api::{Accreditation, LeafProof, ResolutionResult};
use crate::civ::document_from_operation;
use crate::did::Did;
use crate::document::DidDocument;
use crate::encoding;
use crate::ledger::{
    Entry, ObjectId, OpKind, OpSigner, Operation, Seal, Signed, TrustAction, TrustEntry,
};
use crate::note::{Checkpoint, NoteVerifier};
use crate::smt::{self, MapProof};
use crate::tlog;

/// The verifiable-map key of a DID.
pub fn map_key_did(did: &Did) -> [u8; 32] {
    smt::map_key("did", did.as_str())
}

/// The verifiable-map key of an (issuer, vct).
pub fn map_key_trust(issuer: &Did, vct: &str) -> [u8; 32] {
    smt::map_key("trust", &format!("{issuer}\n{vct}"))
}

/// The verifiable-map key of an anchor stream.
pub fn map_key_anchor(stream: &str) -> [u8; 32] {
    smt::map_key("anchor", stream)
}

/// The verifiable-map key of the root-authority set.
pub fn map_key_roots() -> [u8; 32] {
    smt::map_key("roots", "")
}

/// Why served data does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The checkpoint is not signed by enough pinned keys, or malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A leaf is not in the checkpoint's tree.
    #[error("{what} is not included in the checkpoint's tree: {detail}")]
    Inclusion {
        /// Which leaf.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// The closing seal is not what the checkpoint commits to.
    #[error("seal: {0}")]
    Seal(String),
    /// The state proof fails.
    #[error("state proof: {0}")]
    State(String),
    /// The served data contradicts itself.
    #[error("inconsistent answer: {0}")]
    Mismatch(String),
    /// The answer carries no proof.
    #[error("the answer carries no proof")]
    NoProof,
}

/// The note keys a client trusts and how many of them must sign.
#[derive(Debug, Clone)]
pub struct PinnedKeys {
    /// The pinned note verifier keys.
    pub verifiers: Vec<NoteVerifier>,
    /// Signatures needed from distinct pinned keys.
    pub min_signatures: usize,
}

/// Opens a signed checkpoint with the pinned keys.
pub fn open_checkpoint(text: &str, pins: &PinnedKeys) -> Result<Checkpoint, VerifyError> {
    Checkpoint::open(text.as_bytes(), &pins.verifiers, pins.min_signatures)
        .map(|verified| verified.checkpoint().clone())
        .map_err(|e| VerifyError::Checkpoint(e.to_string()))
}

/// Checks that `proof`'s leaf is in `checkpoint`'s tree and returns the leaf bytes.
pub fn verify_leaf(
    what: &'static str,
    proof: &LeafProof,
    checkpoint: &Checkpoint,
) -> Result<Vec<u8>, VerifyError> {
    let fail = |detail: String| VerifyError::Inclusion { what, detail };
    let leaf = encoding::b64_decode(&proof.leaf).map_err(|e| fail(e.to_string()))?;
    let path = proof
        .inclusion
        .iter()
        .map(|h| encoding::b64_hash(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    tlog::verify_inclusion(
        &tlog::leaf_hash(&leaf),
        proof.index,
        checkpoint.size(),
        &path,
        checkpoint.root(),
    )
    .map_err(|e| fail(e.to_string()))?;
    Ok(leaf)
}

/// Checks the closing seal: the last leaf of the checkpoint's tree, with the
/// checkpoint's time.
pub fn verify_seal(
    proof: &LeafProof,
    checkpoint: &Checkpoint,
) -> Result<Signed<Seal>, VerifyError> {
    if checkpoint.size() == 0 || proof.index != checkpoint.size() - 1 {
        return Err(VerifyError::Seal(format!(
            "expected the seal at index {}, found index {}",
            checkpoint.size().saturating_sub(1),
            proof.index
        )));
    }
    let leaf = verify_leaf("the seal", proof, checkpoint)?;
    let Ok(Entry::Seal(seal)) = Entry::parse(&leaf) else {
        return Err(VerifyError::Seal(
            "the last leaf is not a civ.seal.v1 entry".to_owned(),
        ));
    };
    if checkpoint.time_ms() != Some(seal.body().time) {
        return Err(VerifyError::Seal(format!(
            "the checkpoint time {:?} is not the seal time {}",
            checkpoint.time_ms(),
            seal.body().time
        )));
    }
    Ok(seal)
}

fn state_proof(siblings: &[String]) -> Result<MapProof, VerifyError> {
    let siblings = siblings
        .iter()
        .map(|h| encoding::b64_hash(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| VerifyError::State(e.to_string()))?;
    Ok(MapProof { siblings })
}

/// Checks that `value` is the map entry of `key` under the seal's state root.
pub fn verify_state(
    seal: &Seal,
    key: &[u8; 32],
    value: &ObjectId,
    siblings: &[String],
) -> Result<(), VerifyError> {
    let proof = state_proof(siblings)?;
    smt::verify_map_inclusion(&seal.state_root.0, key, value.digest(), &proof)
        .map_err(|e| VerifyError::State(e.to_string()))
}

fn operation_of(did: &Did, leaf: &[u8], what: &str) -> Result<Signed<Operation>, VerifyError> {
    let Ok(Entry::Operation(op)) = Entry::parse(leaf) else {
        return Err(VerifyError::Mismatch(format!(
            "the {what} leaf is not a did operation"
        )));
    };
    let belongs = match &op.body().did {
        Some(named) => named == did,
        None => &Did::civ_from_genesis_hash(op.id().digest()) == did,
    };
    if !belongs {
        return Err(VerifyError::Mismatch(format!(
            "the {what} is not an operation of {did}"
        )));
    }
    Ok(op)
}

/// A resolution whose every part checked out.
#[derive(Debug, Clone)]
pub struct VerifiedResolution {
    /// The DID document, rebuilt from the verified operation (not taken from the answer).
    pub document: DidDocument,
    /// The operation of the resolved version.
    pub operation: Signed<Operation>,
    /// Its log index.
    pub index: u64,
    /// Whether this version is a deactivation.
    pub deactivated: bool,
    /// The checkpoint the proofs are against.
    pub checkpoint: Checkpoint,
    /// The signed checkpoint text.
    pub checkpoint_text: String,
    /// The DID's latest operation id (state-proven).
    pub latest: ObjectId,
}

/// Checks a did:civ resolution result against the pinned keys: checkpoint signatures, the
/// seal, the inclusion of the operation (and of the latest operation), the state proof
/// that the latest operation is the DID's entry, and that the document is the one the
/// operation describes. With `current`, the resolved version must be the DID's latest
/// operation, or the one before a controller operation still pending (whose `prev` it is):
/// an older version served as current is refused.
pub fn verify_resolution(
    did: &Did,
    result: &ResolutionResult,
    pins: &PinnedKeys,
    current: bool,
) -> Result<VerifiedResolution, VerifyError> {
    let proof = result.proof.as_ref().ok_or(VerifyError::NoProof)?;
    let checkpoint = open_checkpoint(&proof.checkpoint, pins)?;
    let seal = verify_seal(&proof.seal, &checkpoint)?;
    let leaf = verify_leaf("the operation", &proof.operation, &checkpoint)?;
    let operation = operation_of(did, &leaf, "resolved version")?;
    let latest = match &proof.latest {
        Some(latest_proof) => {
            let leaf = verify_leaf("the latest operation", latest_proof, &checkpoint)?;
            let latest = operation_of(did, &leaf, "latest operation")?;
            if latest_proof.index <= proof.operation.index {
                return Err(VerifyError::Mismatch(
                    "the latest operation precedes the resolved version".to_owned(),
                ));
            }
            if current
                && !(matches!(latest.body().signer, OpSigner::ControllerKey(_))
                    && latest.body().prev == Some(operation.id()))
            {
                return Err(VerifyError::Mismatch(
                    "an older version was served as the current one".to_owned(),
                ));
            }
            latest.id()
        }
        None => operation.id(),
    };
    verify_state(seal.body(), &map_key_did(did), &latest, &proof.state)?;
    let document = document_from_operation(did, operation.body());
    if result.did_document.as_ref() != Some(&document) {
        return Err(VerifyError::Mismatch(
            "the served document is not the one the operation describes".to_owned(),
        ));
    }
    let version = result.did_document_metadata.version_id.as_deref();
    if version != Some(operation.id().to_string().as_str()) {
        return Err(VerifyError::Mismatch(
            "versionId is not the operation's id".to_owned(),
        ));
    }
    Ok(VerifiedResolution {
        document,
        deactivated: operation.body().op == OpKind::Deactivate,
        index: proof.operation.index,
        operation,
        checkpoint,
        checkpoint_text: proof.checkpoint.clone(),
        latest,
    })
}

/// Checks one served accreditation against a verified seal: the entry is in the tree, it
/// accredits, and (for current answers) it is the latest entry for its (issuer, vct).
pub fn verify_accreditation(
    item: &Accreditation,
    checkpoint: &Checkpoint,
    seal: &Seal,
    current: bool,
) -> Result<Signed<TrustEntry>, VerifyError> {
    let leaf = verify_leaf("the trust entry", &item.entry, checkpoint)?;
    let Ok(Entry::Trust(entry)) = Entry::parse(&leaf) else {
        return Err(VerifyError::Mismatch(
            "the leaf is not a trust entry".to_owned(),
        ));
    };
    let body = entry.body();
    if body.action != TrustAction::Accredit
        || body.issuer.as_str() != item.issuer
        || body.vct.as_deref() != Some(item.vct.as_str())
    {
        return Err(VerifyError::Mismatch(
            "the entry is not the accreditation it is served as".to_owned(),
        ));
    }
    if current {
        let issuer = body.issuer.clone();
        verify_state(
            seal,
            &map_key_trust(&issuer, &item.vct),
            &entry.id(),
            &item.state,
        )?;
    }
    Ok(entry)
}
