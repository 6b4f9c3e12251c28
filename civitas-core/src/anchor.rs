//! Anchor rules: hashes committed to the ledger in streams owned by their signer.
//!
//! A stream is `<signer DID>/<name>`; its anchors are numbered from 1 and chain through
//! `prev`; each is signed with a current `assertionMethod` key of the (non-deactivated)
//! did:civ that owns the stream.

use serde::{Deserialize, Serialize};

use crate::civ::{DidLookup, Rules};
use crate::did::Method;
use crate::document::Relationship;
use crate::ledger::{Anchor, ObjectId, Signed};

/// The latest anchor of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its id.
    pub id: ObjectId,
    /// Its log index.
    pub index: u64,
    /// Ledger time it was applied, ms.
    pub time_ms: u64,
}

/// Why an anchor is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorError {
    /// The stream name is not `<signer DID>/<name>`.
    #[error(
        "expected stream '<signer DID>/<name>' with a name of 1-64 letters, digits, '.', '-' or '_', found {0:?}"
    )]
    Stream(String),
    /// The signer key is not usable.
    #[error("{0} is not a current assertionMethod key of an active did:civ")]
    SignerKey(String),
    /// The signature does not verify.
    #[error("the anchor signature does not verify")]
    BadSignature,
    /// `seq`/`prev` do not continue the stream.
    #[error(
        "expected seq {expected_seq} with prev {expected_prev}, found seq {seq} with prev {prev}"
    )]
    Sequence {
        /// The next sequence number.
        expected_seq: u64,
        /// The stream head id (or "none").
        expected_prev: String,
        /// The seq given.
        seq: u64,
        /// The prev given.
        prev: String,
    },
    /// `first`/`last` inconsistent.
    #[error("expected both first and last, with first <= last + 1")]
    Range,
}

/// Read access to stream heads.
pub trait AnchorLookup: DidLookup {
    /// The head of `stream`.
    fn stream_head(&self, stream: &str) -> Option<StreamHead>;
}

/// Checks an anchor at ledger time `time_ms` and returns the new stream head.
pub fn apply_anchor(
    lookup: &dyn AnchorLookup,
    signed: &Signed<Anchor>,
    time_ms: u64,
    index: u64,
    rules: &Rules,
) -> Result<StreamHead, AnchorError> {
    let anchor = signed.body();
    let signer = anchor.signer.did();
    let name = anchor
        .stream
        .strip_prefix(signer.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|name| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        });
    if name.is_none() || signer.method() != Method::Civ {
        return Err(AnchorError::Stream(
            anchor.stream.chars().take(200).collect(),
        ));
    }
    let key = lookup
        .did_record(signer)
        .and_then(|r| {
            r.current_key(
                &anchor.signer,
                Relationship::AssertionMethod,
                time_ms,
                rules,
            )
        })
        .ok_or_else(|| AnchorError::SignerKey(anchor.signer.to_string()))?;
    signed.verify(&key).map_err(|_| AnchorError::BadSignature)?;
    let head = lookup.stream_head(&anchor.stream);
    let expected_seq = head.as_ref().map_or(1, |h| h.seq + 1);
    let expected_prev = head.as_ref().map(|h| h.id);
    if anchor.seq != expected_seq || anchor.prev != expected_prev {
        let show = |id: Option<ObjectId>| id.map_or_else(|| "none".to_owned(), |id| id.to_string());
        return Err(AnchorError::Sequence {
            expected_seq,
            expected_prev: show(expected_prev),
            seq: anchor.seq,
            prev: show(anchor.prev),
        });
    }
    match (anchor.first, anchor.last) {
        (None, None) => {}
        (Some(first), Some(last)) if first <= last.saturating_add(1) => {}
        _ => return Err(AnchorError::Range),
    }
    Ok(StreamHead {
        seq: anchor.seq,
        id: signed.id(),
        index,
        time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civ::testing::{MemoryLedger as Ledger, RULES};
    use crate::did::Did;
    use crate::keys::SecretKey;
    use crate::ledger::Digest;

    fn anchor(did: &Did, name: &str, seq: u64, prev: Option<ObjectId>) -> Anchor {
        Anchor {
            kind: crate::ledger::AnchorKind::StatusList,
            stream: format!("{did}/{name}"),
            seq,
            prev,
            root: Digest([7; 32]),
            first: None,
            last: None,
            signer: did.with_fragment("key-1"),
        }
    }

    #[test]
    fn a_stream_continues_by_seq_and_prev() {
        let mut ledger = Ledger::default();
        let key = SecretKey::generate();
        let did = ledger.publish(&key);
        let first = Signed::sign(anchor(&did, "status-1", 1, None), &key);
        let head = apply_anchor(&ledger, &first, 10, 5, &RULES).unwrap();
        assert_eq!(head.seq, 1);
        ledger.streams.insert(first.body().stream.clone(), head);
        // Replaying seq 1, skipping to 3, or a wrong prev: refused.
        assert!(matches!(
            apply_anchor(&ledger, &first, 11, 6, &RULES),
            Err(AnchorError::Sequence { .. })
        ));
        let skip = Signed::sign(anchor(&did, "status-1", 3, Some(first.id())), &key);
        assert!(matches!(
            apply_anchor(&ledger, &skip, 11, 6, &RULES),
            Err(AnchorError::Sequence { .. })
        ));
        let second = Signed::sign(anchor(&did, "status-1", 2, Some(first.id())), &key);
        assert_eq!(
            apply_anchor(&ledger, &second, 11, 6, &RULES).unwrap().seq,
            2
        );
    }

    #[test]
    fn only_the_owner_writes_its_streams() {
        let mut ledger = Ledger::default();
        let key = SecretKey::generate();
        let did = ledger.publish(&key);
        let other_key = SecretKey::generate();
        let other = ledger.publish(&other_key);
        // Another DID's stream name.
        let mut foreign = anchor(&other, "audit", 1, None);
        foreign.stream = format!("{did}/audit");
        let foreign = Signed::sign(foreign, &other_key);
        assert!(matches!(
            apply_anchor(&ledger, &foreign, 10, 1, &RULES),
            Err(AnchorError::Stream(_))
        ));
        // The owner's name, someone else's key.
        let forged = Signed::sign(anchor(&did, "audit", 1, None), &other_key);
        assert_eq!(
            apply_anchor(&ledger, &forged, 10, 1, &RULES),
            Err(AnchorError::BadSignature)
        );
        // Malformed stream names.
        for name in ["", "a/b", "x y"] {
            let bad = Signed::sign(anchor(&did, name, 1, None), &key);
            assert!(
                matches!(
                    apply_anchor(&ledger, &bad, 10, 1, &RULES),
                    Err(AnchorError::Stream(_))
                ),
                "{name:?}"
            );
        }
        // An inconsistent range.
        let mut range = anchor(&did, "audit", 1, None);
        range.first = Some(10);
        let range = Signed::sign(range, &key);
        assert_eq!(
            apply_anchor(&ledger, &range, 10, 1, &RULES),
            Err(AnchorError::Range)
        );
    }
}
