//! The trust registry rules: which department may issue which credential type.
//!
//! A root authority (named in the genesis config, changed only by `add-root` /
//! `remove-root` entries signed by a root) accredits an issuer DID for one `vct` up to a
//! classification level, optionally with claim constraints, and may withdraw it. A
//! withdrawal is retroactive unless marked `prospective`: a retroactive withdrawal makes
//! every credential of that issuer and type invalid, whenever it was issued. Entries for one
//! (issuer, vct) chain through `prev`, like DID operations; root changes chain on their own.

use serde::{Deserialize, Serialize};

use crate::civ::{DidLookup, Rules};
use crate::did::{Did, Method};
use crate::document::Relationship;
use crate::encoding;
use crate::ledger::{ObjectId, Signed, TrustAction, TrustEntry};

/// One applied trust entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustHistoryEntry {
    /// The entry body.
    pub entry: TrustEntry,
    /// Its signature, base64url.
    pub sig: String,
    /// Its id.
    pub id: ObjectId,
    /// Ledger time it was applied, ms.
    pub time_ms: u64,
    /// Its log index.
    pub index: u64,
}

/// The history of one (issuer, vct), or of the root set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// Entries, oldest first.
    pub entries: Vec<TrustHistoryEntry>,
}

impl TrustRecord {
    /// The latest entry.
    pub fn head(&self) -> Option<&TrustHistoryEntry> {
        self.entries.last()
    }

    /// The accreditation in force now: the latest entry, if it accredits.
    pub fn current(&self) -> Option<&TrustHistoryEntry> {
        self.head()
            .filter(|h| h.entry.action == TrustAction::Accredit)
    }

    /// The accreditation that made a credential issued at ledger time `time_ms` valid: the
    /// last entry at or before that time, if it accredits, and no later retroactive
    /// withdrawal.
    pub fn accredited_at(&self, time_ms: u64) -> Option<&TrustHistoryEntry> {
        let at = self
            .entries
            .iter()
            .rev()
            .find(|h| h.time_ms <= time_ms)
            .filter(|h| h.entry.action == TrustAction::Accredit)?;
        let withdrawn_later = self.entries.iter().any(|h| {
            h.time_ms > at.time_ms
                && h.entry.action == TrustAction::Withdraw
                && !h.entry.prospective
        });
        (!withdrawn_later).then_some(at)
    }
}

/// The root authorities: the genesis set and the changes after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roots {
    /// The current roots.
    pub current: Vec<Did>,
    /// The changes since genesis.
    pub history: TrustRecord,
}

/// Why a trust entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The signer is not a root authority.
    #[error("{0} is not a root authority")]
    NotRoot(Did),
    /// The signer's key is not a current capabilityInvocation key.
    #[error("{0} is not a current capabilityInvocation key of a root authority on the ledger")]
    SignerKey(String),
    /// The signature does not verify.
    #[error("the trust entry signature does not verify")]
    BadSignature,
    /// `prev` is not the latest entry for the same subject.
    #[error("expected prev {expected}, found {found}")]
    Prev {
        /// The latest entry id (or "none").
        expected: String,
        /// What the entry named.
        found: String,
    },
    /// Members missing or present against the action.
    #[error("malformed trust entry: {0}")]
    Malformed(String),
    /// Withdrawal of something not accredited, or removal of a root that is not one.
    #[error("nothing to withdraw: {0}")]
    NothingToWithdraw(String),
}

/// What an accepted trust entry changes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TrustChange {
    /// The record of (issuer, vct) after the entry.
    Accreditation {
        /// The issuer.
        issuer: Did,
        /// The credential type.
        vct: String,
        /// The record after the entry.
        record: TrustRecord,
    },
    /// The roots after the entry.
    Roots(Roots),
}

/// Read access to the trust state.
pub trait TrustLookup: DidLookup {
    /// The record of (issuer, vct).
    fn trust_record(&self, issuer: &Did, vct: &str) -> Option<TrustRecord>;
    /// The root authorities.
    fn roots(&self) -> Roots;
}

/// The longest `vct` accepted.
pub const MAX_VCT_LEN: usize = 256;

/// Checks a trust entry at ledger time `time_ms` and returns what it changes.
pub fn apply_trust(
    lookup: &dyn TrustLookup,
    signed: &Signed<TrustEntry>,
    time_ms: u64,
    index: u64,
    rules: &Rules,
) -> Result<TrustChange, TrustError> {
    let entry = signed.body();
    let mut roots = lookup.roots();
    let signer = entry.signer.did();
    if !roots.current.contains(signer) {
        return Err(TrustError::NotRoot(signer.clone()));
    }
    let key = lookup
        .did_record(signer)
        .and_then(|r| {
            r.current_key(
                &entry.signer,
                Relationship::CapabilityInvocation,
                time_ms,
                rules,
            )
        })
        .ok_or_else(|| TrustError::SignerKey(entry.signer.to_string()))?;
    signed.verify(&key).map_err(|_| TrustError::BadSignature)?;
    let history = TrustHistoryEntry {
        entry: entry.clone(),
        sig: encoding::b64url(signed.sig()),
        id: signed.id(),
        time_ms,
        index,
    };
    let check_prev = |record: &TrustRecord| {
        let expected = record.head().map(|h| h.id);
        if expected != entry.prev {
            return Err(TrustError::Prev {
                expected: expected.map_or_else(|| "none".to_owned(), |id| id.to_string()),
                found: entry
                    .prev
                    .map_or_else(|| "none".to_owned(), |id| id.to_string()),
            });
        }
        Ok(())
    };
    match entry.action {
        TrustAction::Accredit | TrustAction::Withdraw => {
            let vct = entry
                .vct
                .as_deref()
                .filter(|v| !v.is_empty() && v.len() <= MAX_VCT_LEN)
                .ok_or_else(|| {
                    TrustError::Malformed(format!(
                        "expected a vct of 1 to {MAX_VCT_LEN} characters"
                    ))
                })?;
            if entry.issuer.method() != Method::Civ {
                return Err(TrustError::Malformed(format!(
                    "expected a did:civ issuer, found {}",
                    entry.issuer
                )));
            }
            let mut record = lookup.trust_record(&entry.issuer, vct).unwrap_or_default();
            check_prev(&record)?;
            if entry.action == TrustAction::Accredit {
                if entry.max_level.is_none() {
                    return Err(TrustError::Malformed("accredit needs maxLevel".to_owned()));
                }
                if entry.prospective {
                    return Err(TrustError::Malformed(
                        "prospective is for withdrawals".to_owned(),
                    ));
                }
                for constraint in &entry.constraints {
                    constraint
                        .check()
                        .map_err(|e| TrustError::Malformed(e.to_string()))?;
                }
            } else {
                if entry.max_level.is_some() || !entry.constraints.is_empty() {
                    return Err(TrustError::Malformed(
                        "withdraw carries no maxLevel or constraints".to_owned(),
                    ));
                }
                if record.current().is_none() {
                    return Err(TrustError::NothingToWithdraw(format!(
                        "{} is not accredited for {vct}",
                        entry.issuer
                    )));
                }
            }
            record.entries.push(history);
            Ok(TrustChange::Accreditation {
                issuer: entry.issuer.clone(),
                vct: vct.to_owned(),
                record,
            })
        }
        TrustAction::AddRoot | TrustAction::RemoveRoot => {
            if entry.vct.is_some()
                || entry.max_level.is_some()
                || !entry.constraints.is_empty()
                || entry.prospective
            {
                return Err(TrustError::Malformed(
                    "root changes carry only issuer, prev and signer".to_owned(),
                ));
            }
            check_prev(&roots.history)?;
            let present = roots.current.contains(&entry.issuer);
            if entry.action == TrustAction::AddRoot {
                if present || entry.issuer.method() != Method::Civ {
                    return Err(TrustError::Malformed(format!(
                        "{} is already a root or not a did:civ",
                        entry.issuer
                    )));
                }
                roots.current.push(entry.issuer.clone());
            } else {
                if !present {
                    return Err(TrustError::NothingToWithdraw(format!(
                        "{} is not a root",
                        entry.issuer
                    )));
                }
                if roots.current.len() == 1 {
                    return Err(TrustError::Malformed(
                        "the last root cannot be removed".to_owned(),
                    ));
                }
                roots.current.retain(|d| d != &entry.issuer);
            }
            roots.history.entries.push(history);
            Ok(TrustChange::Roots(roots))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civ::testing::{MemoryLedger as Ledger, RULES};
    use crate::constraint::Constraint;
    use crate::keys::SecretKey;
    use crate::ledger::Classification;

    impl Ledger {
        fn apply_trust(&mut self, entry: &Signed<TrustEntry>, time: u64) -> Result<(), TrustError> {
            match apply_trust(self, entry, time, 0, &RULES)? {
                TrustChange::Accreditation {
                    issuer,
                    vct,
                    record,
                } => {
                    self.trust.insert((issuer, vct), record);
                }
                TrustChange::Roots(roots) => {
                    self.roots = roots.current;
                    self.root_history = roots.history;
                }
            }
            Ok(())
        }

        fn head(&self, issuer: &Did, vct: &str) -> Option<ObjectId> {
            self.trust_record(issuer, vct)?.head().map(|h| h.id)
        }
    }

    fn entry(action: TrustAction, issuer: &Did, prev: Option<ObjectId>, root: &Did) -> TrustEntry {
        TrustEntry {
            action,
            issuer: issuer.clone(),
            vct: Some("ResidentIdentity".to_owned()),
            max_level: (action == TrustAction::Accredit).then_some(Classification::Sensitive),
            constraints: Vec::new(),
            prospective: false,
            prev,
            signer: root.with_fragment("key-1"),
        }
    }

    fn setup() -> (Ledger, SecretKey, Did, Did) {
        let mut ledger = Ledger::default();
        let root_key = SecretKey::generate();
        let root = ledger.publish(&root_key);
        ledger.roots = vec![root.clone()];
        let issuer = ledger.publish(&SecretKey::generate());
        (ledger, root_key, root, issuer)
    }

    #[test]
    fn a_root_accredits_and_a_retroactive_withdrawal_reaches_back() {
        let (mut ledger, key, root, issuer) = setup();
        let accredit = Signed::sign(entry(TrustAction::Accredit, &issuer, None, &root), &key);
        ledger.apply_trust(&accredit, 100).unwrap();
        let record = ledger.trust_record(&issuer, "ResidentIdentity").unwrap();
        assert!(record.current().is_some());
        assert!(record.accredited_at(150).is_some());
        assert!(
            record.accredited_at(50).is_none(),
            "not accredited before the entry"
        );

        let prev = ledger.head(&issuer, "ResidentIdentity");
        let withdraw = Signed::sign(entry(TrustAction::Withdraw, &issuer, prev, &root), &key);
        ledger.apply_trust(&withdraw, 200).unwrap();
        let record = ledger.trust_record(&issuer, "ResidentIdentity").unwrap();
        assert!(record.current().is_none());
        assert!(
            record.accredited_at(150).is_none(),
            "retroactive by default"
        );
    }

    #[test]
    fn a_prospective_withdrawal_keeps_the_past() {
        let (mut ledger, key, root, issuer) = setup();
        ledger
            .apply_trust(
                &Signed::sign(entry(TrustAction::Accredit, &issuer, None, &root), &key),
                100,
            )
            .unwrap();
        let mut withdraw = entry(
            TrustAction::Withdraw,
            &issuer,
            ledger.head(&issuer, "ResidentIdentity"),
            &root,
        );
        withdraw.prospective = true;
        ledger
            .apply_trust(&Signed::sign(withdraw, &key), 200)
            .unwrap();
        let record = ledger.trust_record(&issuer, "ResidentIdentity").unwrap();
        assert!(record.accredited_at(150).is_some());
        assert!(record.accredited_at(250).is_none());
    }

    #[test]
    fn refusals_are_precise() {
        let (mut ledger, key, root, issuer) = setup();
        // Not a root.
        let outsider_key = SecretKey::generate();
        let outsider = ledger.publish(&outsider_key);
        let by_outsider = Signed::sign(
            entry(TrustAction::Accredit, &issuer, None, &outsider),
            &outsider_key,
        );
        assert!(matches!(
            ledger.apply_trust(&by_outsider, 10),
            Err(TrustError::NotRoot(_))
        ));
        // A root's name with another key.
        let forged = Signed::sign(
            entry(TrustAction::Accredit, &issuer, None, &root),
            &outsider_key,
        );
        assert_eq!(
            ledger.apply_trust(&forged, 10),
            Err(TrustError::BadSignature)
        );
        // Nothing to withdraw yet.
        let early = Signed::sign(entry(TrustAction::Withdraw, &issuer, None, &root), &key);
        assert!(matches!(
            ledger.apply_trust(&early, 10),
            Err(TrustError::NothingToWithdraw(_))
        ));
        // Accredit needs maxLevel; constraints must be well-formed.
        let mut no_level = entry(TrustAction::Accredit, &issuer, None, &root);
        no_level.max_level = None;
        assert!(matches!(
            ledger.apply_trust(&Signed::sign(no_level, &key), 10),
            Err(TrustError::Malformed(_))
        ));
        let mut bad_constraint = entry(TrustAction::Accredit, &issuer, None, &root);
        bad_constraint.constraints = vec![Constraint {
            claim: "jurisdiction".to_owned(),
            op: crate::constraint::Op::In,
            value: serde_json::json!("310000"),
        }];
        assert!(matches!(
            ledger.apply_trust(&Signed::sign(bad_constraint, &key), 10),
            Err(TrustError::Malformed(_))
        ));
        // A stale prev.
        ledger
            .apply_trust(
                &Signed::sign(entry(TrustAction::Accredit, &issuer, None, &root), &key),
                10,
            )
            .unwrap();
        let stale = Signed::sign(entry(TrustAction::Accredit, &issuer, None, &root), &key);
        assert!(matches!(
            ledger.apply_trust(&stale, 20),
            Err(TrustError::Prev { .. })
        ));
    }

    #[test]
    fn roots_change_only_through_a_root_and_never_to_none() {
        let (mut ledger, key, root, issuer) = setup();
        let mut add = entry(TrustAction::AddRoot, &issuer, None, &root);
        add.vct = None;
        add.max_level = None;
        ledger.apply_trust(&Signed::sign(add, &key), 10).unwrap();
        assert_eq!(ledger.roots, vec![root.clone(), issuer.clone()]);
        let prev = ledger.root_history.head().map(|h| h.id);
        let mut remove = entry(TrustAction::RemoveRoot, &issuer, prev, &root);
        remove.vct = None;
        remove.max_level = None;
        ledger.apply_trust(&Signed::sign(remove, &key), 20).unwrap();
        assert_eq!(ledger.roots, vec![root.clone()]);
        let prev = ledger.root_history.head().map(|h| h.id);
        let mut last = entry(TrustAction::RemoveRoot, &root, prev, &root);
        last.vct = None;
        last.max_level = None;
        assert!(matches!(
            ledger.apply_trust(&Signed::sign(last, &key), 30),
            Err(TrustError::Malformed(_))
        ));
    }
}
