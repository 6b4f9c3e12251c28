//! Issuing: the credential endpoint's logic. Key proofs are checked, the issuer's standing
//! is checked as of `iat`, claims are planned from the schema (core claims replaced by
//! derived ones), concealed, signed; the status indices and the used-up token are durable
//! before the credentials are returned.

use std::collections::HashSet;
use std::time::Duration;

use civitas_client::Version;
use civitas_core::did::{Did, DidUrl};
use civitas_core::document::Relationship;
use civitas_core::jws::Jws;
use civitas_core::keys::PublicKey;
use civitas_core::ledger::Classification;
use civitas_core::schema::DisclosurePlan;
use civitas_core::sdjwt;
use serde_json::{Map, Value, json};

use crate::error::{OAuthCode, OAuthError};
use crate::offers::{UseToken, offer_for_token};
use crate::oid4vci::PROOF_TYP;
use crate::schemas::TypeEntry;
use crate::status::{ListId, StatusCode};
use crate::store::{IssuedCredential, Offer, StorageError};
use crate::{ApiError, AppState, now_ms};

pub use civitas_core::credential::{CREDENTIAL_TYP, credential_id};
/// How far a proof's `iat` may lie in the past.
const PROOF_MAX_AGE_S: i64 = 300;
/// How far a proof's `iat` may lie in the future (clock skew).
const PROOF_MAX_SKEW_S: i64 = 60;

/// A holder whose key proof verified.
#[derive(Debug, Clone)]
pub struct Holder {
    /// `sub`: the holder DID (the proof's `kid` DID, or the did:jwk of its `jwk`).
    pub sub: Did,
    /// `cnf.jwk`: the key the proof was made with.
    pub key: PublicKey,
}

fn proof_error(detail: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthCode::InvalidProof, detail)
}

/// Checks one `openid4vci-proof+jwt` for `offer`. `nonces` holds the `c_nonce`s this
/// request already used (a batch may share one).
pub async fn check_proof(
    app: &AppState,
    offer: &Offer,
    jwt: &str,
    now: i64,
    nonces: &mut HashSet<String>,
) -> Result<Holder, OAuthError> {
    let jws = Jws::parse(jwt).map_err(|e| proof_error(format!("the proof is not a JWS: {e}")))?;
    let header = jws.header();
    if jws.typ() != Some(PROOF_TYP) {
        return Err(proof_error(format!(
            "expected proof typ {PROOF_TYP:?}, found {:?}",
            jws.typ()
        )));
    }
    for forbidden in ["x5c", "trust_chain", "key_attestation"] {
        if header.contains_key(forbidden) {
            return Err(proof_error(format!(
                "proofs with {forbidden} are not accepted; use kid (a DID URL) or jwk"
            )));
        }
    }
    let (sub, key) = match (jws.kid(), header.get("jwk")) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(proof_error(
                "expected exactly one of kid and jwk in the proof header",
            ));
        }
        (Some(kid), None) => {
            let url: DidUrl = kid
                .parse()
                .map_err(|e| proof_error(format!("kid {kid:?} is not a DID URL: {e}")))?;
            if url.fragment().is_none() || url.query().is_some() {
                return Err(proof_error(format!(
                    "expected kid to be a DID URL with a fragment and no query, found {kid:?}"
                )));
            }
            let resolved = app
                .registry
                .resolve(url.did(), &Version::Current)
                .await
                .map_err(|e| proof_error(format!("resolving {}: {e}", url.did())))?;
            let key = resolved
                .document
                .key_for(&url, Relationship::Authentication)
                .ok_or_else(|| {
                    proof_error(format!(
                        "{kid} is not an authentication key of {}",
                        url.did()
                    ))
                })?;
            (url.did().clone(), key)
        }
        (None, Some(jwk)) => {
            if offer.holder.is_some() {
                return Err(proof_error(
                    "this offer is bound to a holder DID: the proof must name one of its keys in kid",
                ));
            }
            let jwk: civitas_core::keys::Jwk = serde_json::from_value(jwk.clone())
                .map_err(|e| proof_error(format!("the proof's jwk is not an OKP key: {e}")))?;
            let key = PublicKey::from_jwk(&jwk)
                .map_err(|e| proof_error(format!("the proof's jwk is not usable: {e}")))?;
            (Did::jwk_from_public_key(&key), key)
        }
    };
    if let Some(holder) = &offer.holder
        && holder != sub.as_str()
    {
        return Err(proof_error(format!(
            "this offer is bound to {holder}; the proof is from {sub}"
        )));
    }
    jws.verify(&key)
        .map_err(|e| proof_error(format!("the proof's signature: {e}")))?;
    let payload = jws.payload();
    match payload.get("aud") {
        Some(Value::String(aud)) if aud == &app.public_url => {}
        other => {
            return Err(proof_error(format!(
                "expected aud {:?}, found {}",
                app.public_url,
                other.map_or_else(|| "none".to_owned(), Value::to_string)
            )));
        }
    }
    let iat = payload
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| proof_error("expected an integer iat in the proof"))?;
    if iat < now - PROOF_MAX_AGE_S || iat > now + PROOF_MAX_SKEW_S {
        return Err(proof_error(format!(
            "the proof's iat {iat} is not fresh (now {now}; at most {PROOF_MAX_AGE_S} s old)"
        )));
    }
    let nonce = payload
        .get("nonce")
        .and_then(Value::as_str)
        .ok_or_else(|| OAuthError::new(OAuthCode::InvalidNonce, "the proof carries no nonce"))?;
    if !nonces.contains(nonce) {
        if !app.ephemeral.take_nonce(nonce, now_ms()) {
            return Err(OAuthError::new(
                OAuthCode::InvalidNonce,
                "the proof's nonce is not a live c_nonce; get one from the nonce endpoint",
            ));
        }
        nonces.insert(nonce.to_owned());
    }
    Ok(Holder { sub, key })
}

/// Runs the credential endpoint for one request: returns the SD-JWT VCs in proof order.
pub async fn issue(
    app: &AppState,
    token: &str,
    config_id: &str,
    proofs: &[String],
    now: i64,
) -> Result<Vec<String>, OAuthError> {
    let (offer, read) = offer_for_token(&app.store, token, now_ms())?;
    if offer.config_id != config_id {
        return Err(OAuthError::new(
            OAuthCode::InvalidCredentialRequest,
            format!(
                "the access token is for {}, not {config_id}",
                offer.config_id
            ),
        ));
    }
    let entry = app.schemas.get(config_id).ok_or_else(|| {
        OAuthError::new(
            OAuthCode::UnknownCredentialConfiguration,
            format!("no credential configuration {config_id:?}"),
        )
    })?;
    let mut nonces = HashSet::new();
    let mut holders = Vec::with_capacity(proofs.len());
    for proof in proofs {
        holders.push(check_proof(app, &offer, proof, now, &mut nonces).await?);
    }
    let (iat, plan) = wait_for_standing(app, entry, &offer).await?;
    let exp = iat.saturating_add(i64::try_from(offer.valid_for_s).unwrap_or(i64::MAX));
    let mut issued = Vec::with_capacity(holders.len());
    let mut records = Vec::with_capacity(holders.len());
    for holder in &holders {
        let (list, idx) = app.store.allocate_index();
        let sd_jwt = build(app, entry, &plan, holder, list, idx, iat, exp)?;
        let jwt = sd_jwt.split('~').next().unwrap_or_default();
        let id = credential_id(jwt);
        records.push(IssuedCredential {
            id,
            offer: offer.id.clone(),
            vct: entry.schema.vct().to_owned(),
            sub: holder.sub.to_string(),
            iat,
            exp,
            list,
            idx,
            status: StatusCode::Valid,
        });
        issued.push(sd_jwt);
    }
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let indices: Vec<(ListId, u32)> = records.iter().map(|r| (r.list, r.idx)).collect();
    let offer_id = offer.id.clone();
    // The issued offer keeps no claims: they are dropped here, off the writer's path.
    let mut offer = offer;
    drop(std::mem::take(&mut offer.claims));
    app.store
        .run(UseToken {
            offer,
            read,
            credentials: records,
        })
        .await??;
    // The token is used up and the credentials recorded: from here on they are the holder's,
    // so nothing may fail the request. A list's first credential: serve the list at once
    // rather than at the publisher's next round; should that fail, the publisher is woken
    // to publish every list.
    for (list, _) in &indices {
        if !app.ephemeral.is_published(*list) {
            match publish_first(app, *list).await {
                Ok(()) => app.ephemeral.mark_published(*list),
                Err(e) => {
                    tracing::warn!(
                        list = list.0,
                        error = %e,
                        "publishing a new status list failed; left to the publisher"
                    );
                    app.changes.changed();
                }
            }
        }
    }
    tracing::info!(offer = %offer_id, credentials = ?ids, "credentials issued");
    Ok(issued)
}

/// Publishes `list`'s first version, unless it has one.
async fn publish_first(app: &AppState, list: ListId) -> Result<(), StorageError> {
    if crate::status::version_at(app, list, None).await?.is_none() {
        crate::status::publish(app, list).await?;
    }
    Ok(())
}

/// Checks the issuer's standing as of `iat` (waiting, without back-dating, for the ledger
/// to seal an accreditation made just now) and the claims against it; returns `iat` and
/// the credential's plan.
async fn wait_for_standing(
    app: &AppState,
    entry: &TypeEntry,
    offer: &Offer,
) -> Result<(i64, DisclosurePlan), OAuthError> {
    let vct = entry.schema.vct();
    let deadline = tokio::time::Instant::now() + crate::trust::SEAL_WAIT;
    loop {
        let iat = crate::now_s();
        if let Some(accreditation) = crate::trust::at_issuance(app, vct, iat).await? {
            let plan = entry.plan(&offer.claims, iat)?;
            let highest = plan.level().unwrap_or(Classification::Public);
            crate::trust::check_against(&accreditation, vct, highest, || {
                crate::schemas::all_claims(&plan, &offer.claims)
            })?;
            return Ok((iat, plan));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                civitas_core::problem::ISSUER_NOT_ACCREDITED,
                "the accreditation is not yet sealed on the ledger; try again shortly",
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Builds one SD-JWT VC (`<jwt>~<disclosure>~...~`).
#[allow(clippy::too_many_arguments)]
pub fn build(
    app: &AppState,
    entry: &TypeEntry,
    plan: &DisclosurePlan,
    holder: &Holder,
    list: ListId,
    idx: u32,
    iat: i64,
    exp: i64,
) -> Result<String, OAuthError> {
    let (mut payload, disclosures) =
        sdjwt::conceal(&crate::schemas::to_sd(plan), &mut rand::thread_rng())
            .map_err(|e| OAuthError::internal(format!("concealing claims: {e}")))?;
    payload.insert("iss".to_owned(), json!(app.did.as_str()));
    payload.insert("sub".to_owned(), json!(holder.sub.as_str()));
    payload.insert("iat".to_owned(), json!(iat));
    payload.insert("exp".to_owned(), json!(exp));
    payload.insert("vct".to_owned(), json!(entry.schema.vct()));
    payload.insert("vct#integrity".to_owned(), json!(entry.integrity));
    payload.insert("cnf".to_owned(), json!({ "jwk": holder.key.to_jwk() }));
    payload.insert(
        "status".to_owned(),
        json!({ "status_list": {
            "idx": idx,
            "uri": crate::status::list_uri(&app.public_url, list),
        }}),
    );
    let mut header = Map::new();
    header.insert("alg".to_owned(), json!("EdDSA"));
    header.insert("typ".to_owned(), json!(CREDENTIAL_TYP));
    header.insert("kid".to_owned(), json!(app.kid.to_string()));
    let mut out = civitas_core::jws::sign_compact(&header, &payload, &app.key)
        .map_err(|e| OAuthError::internal(format!("signing a credential: {e}")))?;
    out.push('~');
    for d in &disclosures {
        out.push_str(d.as_str());
        out.push('~');
    }
    Ok(out)
}
