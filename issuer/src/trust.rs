//! The issuer's own standing on the ledger: accredited for a type (read fresh at offer
//! creation, as of `iat` before signing), within the accreditation's level and claim
//! constraints, and signing with a key that is in its DID's `assertionMethod` at `iat`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;

use civitas_client::Version;
use civitas_client::credential::rfc3339;
use civitas_core::constraint::Outcome;
use civitas_core::document::Relationship;
use civitas_core::ledger::{Classification, TrustEntry};
use civitas_core::problem;
use serde_json::Value;

use crate::{ApiError, AppState};

/// How long issuance waits for the ledger to seal past `iat` when the accreditation is in
/// force now but not yet at `iat` (never back-dating).
pub(crate) const SEAL_WAIT: Duration = Duration::from_secs(12);

/// Answers for one issuance second: the accreditation per type and the key check. Only
/// positive answers are kept, and only for the second they are about.
#[derive(Debug, Default)]
pub(crate) struct TrustCache {
    at: Mutex<HashMap<(String, i64), Answer>>,
}

/// One (vct, second)'s answer, asked once by whoever comes first.
type Answer = Arc<OnceCell<Option<TrustEntry>>>;

fn registry_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        problem::REGISTRY_UNAVAILABLE,
        format!("asking the registry failed: {e}"),
    )
}

/// The accreditation of this issuer for `vct`: current (`at` = None, read fresh), or the one
/// that makes a credential with `iat` = `at` valid.
pub(crate) async fn accreditation(
    app: &AppState,
    vct: &str,
    at: Option<i64>,
) -> Result<Option<TrustEntry>, ApiError> {
    let at_text = at.map(rfc3339);
    let entries = app
        .registry
        .accreditations(vct, at_text.as_deref())
        .await
        .map_err(registry_error)?;
    Ok(entries
        .into_iter()
        .map(|e| e.body().clone())
        .find(|e| e.issuer == app.did))
}

/// Checks the claims against the accreditation: the highest classification placed in the
/// credential, and every claim constraint over all claims (absent counts as violated).
pub(crate) fn check_against(
    entry: &TrustEntry,
    vct: &str,
    highest: Classification,
    claims: impl FnOnce() -> Value,
) -> Result<(), ApiError> {
    if let Some(max) = entry.max_level
        && highest > max
    {
        return Err(ApiError::new(
            problem::LEVEL_EXCEEDED,
            format!(
                "the accreditation for {vct} allows claims up to {max:?}, and this credential carries {highest:?} claims"
            ),
        ));
    }
    if entry.constraints.is_empty() {
        return Ok(());
    }
    let claims = claims();
    let mut violations = Vec::new();
    for c in &entry.constraints {
        match c.evaluate(&claims) {
            Outcome::Satisfied => {}
            Outcome::Violated => violations.push(format!("{c} does not hold")),
            Outcome::Absent => violations.push(format!("{c}: the claim {} is absent", c.claim)),
            _ => violations.push(format!("{c} cannot be judged")),
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            problem::CONSTRAINT_VIOLATED,
            format!(
                "the accreditation's claim constraints refuse these claims: {}",
                violations.join("; ")
            ),
        ))
    }
}

/// The current accreditation, read fresh; refused when there is none.
pub(crate) async fn current(app: &AppState, vct: &str) -> Result<TrustEntry, ApiError> {
    accreditation(app, vct, None).await?.ok_or_else(|| {
        ApiError::new(
            problem::ISSUER_NOT_ACCREDITED,
            format!("{} is not accredited for {vct}", app.did),
        )
    })
}

/// The accreditation as of `iat`, and the signing key checked at `iat`: what makes a
/// credential with this `iat` valid. `Ok(None)` when the accreditation is in force now
/// but the ledger has not yet sealed it at or before `iat` (the caller waits). Concurrent
/// issuances in the same second share one answer (asked once); a failure is not kept.
pub(crate) async fn at_issuance(
    app: &AppState,
    vct: &str,
    iat: i64,
) -> Result<Option<TrustEntry>, ApiError> {
    let cell = {
        let mut cache = app.trust.at.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|(_, t), _| *t >= iat);
        cache.entry((vct.to_owned(), iat)).or_default().clone()
    };
    let answer = cell
        .get_or_try_init(|| ask_at_issuance(app, vct, iat))
        .await?;
    if answer.is_none() {
        // Not sealed yet: ask again next time rather than keep a negative answer.
        app.trust
            .at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(vct.to_owned(), iat));
    }
    Ok(answer.clone())
}

async fn ask_at_issuance(
    app: &AppState,
    vct: &str,
    iat: i64,
) -> Result<Option<TrustEntry>, ApiError> {
    let Some(entry) = accreditation(app, vct, Some(iat)).await? else {
        // Not at iat: in force now (wait for a seal), or not at all (refuse).
        current(app, vct).await?;
        return Ok(None);
    };
    let resolved = app
        .registry
        .resolve(&app.did, &Version::Time(rfc3339(iat)))
        .await
        .map_err(registry_error)?;
    if resolved
        .document
        .key_for(&app.kid, Relationship::AssertionMethod)
        != Some(app.key.public_key())
    {
        return Err(ApiError::new(
            problem::INVALID_ISSUER_KEY,
            format!(
                "the issuer key {} is not in {}'s assertionMethod at {}",
                app.kid,
                app.did,
                rfc3339(iat)
            ),
        ));
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use civitas_core::constraint::Constraint;
    use civitas_core::did::Did;
    use civitas_core::keys::SecretKey;
    use civitas_core::ledger::TrustAction;
    use serde_json::json;

    fn entry(max: Option<Classification>, constraints: &[&str]) -> TrustEntry {
        let did = Did::key_from_public_key(&SecretKey::generate().public_key());
        TrustEntry {
            action: TrustAction::Accredit,
            issuer: did.clone(),
            vct: Some("urn:t".to_owned()),
            max_level: max,
            constraints: constraints
                .iter()
                .map(|c| {
                    c.parse::<Constraint>()
                        .unwrap_or_else(|e| panic!("{c}: {e}"))
                })
                .collect(),
            prospective: false,
            prev: None,
            signer: did.with_fragment("k"),
        }
    }

    #[test]
    fn levels_above_the_accreditation_are_refused() {
        let e = entry(Some(Classification::Internal), &[]);
        assert!(check_against(&e, "urn:t", Classification::Internal, || json!({})).is_ok());
        let err = check_against(&e, "urn:t", Classification::Sensitive, || json!({}));
        assert_eq!(err.map_err(|e| e.kind()), Err(problem::LEVEL_EXCEEDED));
    }

    #[test]
    fn every_constraint_is_enforced_and_absent_claims_fail() {
        let e = entry(None, &["jurisdiction in [\"310000\"]", "clearance <= 3"]);
        let ok = json!({"jurisdiction": "310000", "clearance": 3});
        assert!(check_against(&e, "urn:t", Classification::Public, || ok.clone()).is_ok());
        for bad in [
            json!({"jurisdiction": "110000", "clearance": 3}),
            json!({"jurisdiction": "310000", "clearance": 4}),
            json!({"jurisdiction": "310000"}),
        ] {
            let err = check_against(&e, "urn:t", Classification::Public, || bad.clone());
            assert_eq!(
                err.map_err(|e| e.kind()),
                Err(problem::CONSTRAINT_VIOLATED),
                "{bad}"
            );
        }
    }
}
