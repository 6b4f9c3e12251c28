//! Civitas credentials: IETF SD-JWT VCs (`typ: dc+sd-jwt`) whose issuer key is found by
//! the `civ-did` mechanism (`kid` is a DID URL of `iss`), and the pure checks a verifier
//! runs on them. What needs the network (resolving `iss` at `iat`, the accreditation, the
//! status list) is fetched by `civitas-client` and handed to the functions here.
//!
//! Check order for a verifier (cheap first):
//! 1. [`Unverified::parse`]: SD-JWT syntax, `alg`, `typ`, the registered claims, `kid`'s DID
//!    equal to `iss`, disclosures processed strictly (never-disclosable claims refused);
//! 2. [`Unverified::check_schema`] (`vct` known, `vct#integrity` matches) and
//!    [`Unverified::check_times`];
//! 3. the KB-JWT when one is present or required ([`Unverified::check_kb_jwt`]);
//! 4. the issuer's key as of `iat` (resolved by the caller), [`Unverified::verify_signature`];
//! 5. the accreditation as of `iat` and its constraints over the disclosed claims
//!    ([`check_constraints`]);
//! 6. the status ([`check_status`]).

use serde_json::{Map, Value};

use crate::constraint::{Constraint, Outcome};
use crate::did::{Did, DidUrl};
use crate::encoding;
use crate::jws::{Jws, JwsError};
use crate::keys::PublicKey;
use crate::problem::{self, ProblemType};
use crate::schema::{CredentialSchema, IntegrityError, SchemaSet};
use crate::sdjwt::{self, NEVER_DISCLOSABLE, Processed, SdJwt, SdJwtError};
use crate::status_list::{self, Status, StatusClaim, StatusListError, StatusListTokenPayload};

/// The JOSE `typ` of a credential.
pub const CREDENTIAL_TYP: &str = "dc+sd-jwt";
/// Tolerated clock skew for `iat` and `nbf`, seconds.
pub const MAX_CLOCK_SKEW_S: i64 = 60;

/// A credential's id, the same for holder and issuer: base32 of SHA-256 over the
/// issuer-signed JWT.
pub fn credential_id(issuer_jwt: &str) -> String {
    encoding::b32(&encoding::sha256(issuer_jwt.as_bytes()))
}

/// Why a credential or presentation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The SD-JWT layer refused it.
    #[error(transparent)]
    SdJwt(#[from] SdJwtError),
    /// The issuer JWT refused it.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// A registered claim is missing or malformed.
    #[error("expected {expected}, found {found}")]
    Claim {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// Wrong `typ`.
    #[error("expected typ {CREDENTIAL_TYP:?}, found {0}")]
    Typ(String),
    /// `vct` unknown here.
    #[error("no schema for vct {0:?}")]
    UnknownVct(String),
    /// `vct#integrity` mismatch.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// The `kid` is not usable.
    #[error("{0}")]
    IssuerKey(String),
    /// The key was marked compromised.
    #[error("the issuer key {0} is marked compromised")]
    CompromisedKey(String),
    /// The issuer was not accredited at `iat`.
    #[error("{issuer} was not accredited for {vct} when the credential was issued")]
    NotAccredited {
        /// The issuer.
        issuer: String,
        /// The type.
        vct: String,
    },
    /// The accreditation was withdrawn retroactively.
    #[error("{issuer}'s accreditation for {vct} was withdrawn retroactively")]
    Withdrawn {
        /// The issuer.
        issuer: String,
        /// The type.
        vct: String,
    },
    /// A disclosed claim breaks an accreditation constraint.
    #[error("the disclosed claims break the accreditation's constraint {0}")]
    Constraint(String),
    /// `iat` in the future.
    #[error("expected iat at most {now} (+{MAX_CLOCK_SKEW_S} s), found {iat}")]
    IssuedInFuture {
        /// `iat`.
        iat: i64,
        /// Now.
        now: i64,
    },
    /// Expired.
    #[error("the credential expired at {exp} (now {now})")]
    Expired {
        /// `exp`.
        exp: i64,
        /// Now.
        now: i64,
    },
    /// Not yet valid.
    #[error("the credential is valid from {nbf} (now {now})")]
    NotYetValid {
        /// `nbf`.
        nbf: i64,
        /// Now.
        now: i64,
    },
    /// The status list token is invalid.
    #[error("status list: {0}")]
    StatusList(#[from] StatusListError),
    /// The status list token's signature or shape.
    #[error("status list token: {0}")]
    StatusToken(String),
    /// Revoked.
    #[error("the credential is revoked")]
    Revoked,
    /// Suspended.
    #[error("the credential is suspended")]
    Suspended,
    /// The status list could not be fetched.
    #[error("the status list could not be fetched: {0}")]
    StatusUnavailable(String),
    /// The registry could not be asked.
    #[error("the registry could not be asked: {0}")]
    Registry(String),
}

impl CredentialError {
    /// The stable problem type.
    pub fn problem(&self) -> ProblemType {
        match self {
            Self::SdJwt(e) => e.problem(),
            Self::Jws(e) => e.problem(),
            Self::Claim { .. } => problem::MALFORMED_CREDENTIAL,
            Self::Typ(_) => problem::INVALID_TYP,
            Self::UnknownVct(_) => problem::UNKNOWN_VCT,
            Self::Integrity(e) => e.problem(),
            Self::IssuerKey(_) => problem::INVALID_ISSUER_KEY,
            Self::CompromisedKey(_) => problem::COMPROMISED_KEY,
            Self::NotAccredited { .. } => problem::ISSUER_NOT_ACCREDITED,
            Self::Withdrawn { .. } => problem::ACCREDITATION_WITHDRAWN,
            Self::Constraint(_) => problem::CONSTRAINT_VIOLATED,
            Self::IssuedInFuture { .. } => problem::ISSUED_IN_FUTURE,
            Self::Expired { .. } => problem::CREDENTIAL_EXPIRED,
            Self::NotYetValid { .. } => problem::CREDENTIAL_NOT_YET_VALID,
            Self::StatusList(e) => e.problem(),
            Self::StatusToken(_) => problem::INVALID_STATUS_LIST,
            Self::Revoked => problem::CREDENTIAL_REVOKED,
            Self::Suspended => problem::CREDENTIAL_SUSPENDED,
            Self::StatusUnavailable(_) => problem::STATUS_UNAVAILABLE,
            Self::Registry(_) => problem::REGISTRY_UNAVAILABLE,
        }
    }
}

fn claim_error(expected: &'static str, found: Option<&Value>) -> CredentialError {
    CredentialError::Claim {
        expected,
        found: found.map_or_else(
            || "none".to_owned(),
            |v| v.to_string().chars().take(80).collect(),
        ),
    }
}

fn int_claim(
    payload: &Map<String, Value>,
    name: &str,
    expected: &'static str,
) -> Result<Option<i64>, CredentialError> {
    match payload.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| claim_error(expected, Some(v))),
    }
}

/// The registered claims of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `iss`.
    pub iss: Did,
    /// The header `kid`: a key of `iss`.
    pub kid: DidUrl,
    /// `sub`: the holder DID.
    pub sub: String,
    /// `iat`, unix seconds.
    pub iat: i64,
    /// `exp`, unix seconds.
    pub exp: Option<i64>,
    /// `nbf`, unix seconds.
    pub nbf: Option<i64>,
    /// `vct`.
    pub vct: String,
    /// `vct#integrity`.
    pub vct_integrity: String,
    /// `cnf.jwk`.
    pub cnf: PublicKey,
    /// `status.status_list`.
    pub status: status_list::StatusListReference,
}

/// A parsed credential or presentation whose signatures are not verified yet.
#[derive(Debug, Clone)]
pub struct Unverified {
    sd_jwt: SdJwt,
    registered: Registered,
    processed: Processed,
}

impl Unverified {
    /// Parses `text` (`<jwt>~<disclosures>~[<kb-jwt>]`), checking `alg`, `typ`, the
    /// registered claims, that `kid` is a key of `iss`, and the disclosures (strictly).
    pub fn parse(text: &str) -> Result<Self, CredentialError> {
        let sd_jwt = SdJwt::parse(text)?;
        let jwt = sd_jwt.issuer_jwt();
        jwt.check_alg()?;
        if !jwt.has_typ(CREDENTIAL_TYP) {
            return Err(CredentialError::Typ(
                jwt.typ()
                    .map_or_else(|| "none".to_owned(), |t| format!("{t:?}")),
            ));
        }
        let payload = jwt.payload();
        let iss: Did = payload
            .get("iss")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| claim_error("iss to be a DID", payload.get("iss")))?;
        let kid: DidUrl = jwt.kid().and_then(|k| k.parse().ok()).ok_or_else(|| {
            CredentialError::IssuerKey(format!(
                "expected kid to be a DID URL of {iss}, found {:?}",
                jwt.kid()
            ))
        })?;
        if kid.did() != &iss || kid.fragment().is_none() || kid.query().is_some() {
            return Err(CredentialError::IssuerKey(format!(
                "expected kid to be a DID URL with a fragment of {iss}, found {kid}"
            )));
        }
        let sub = payload
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| claim_error("sub to be a string", payload.get("sub")))?
            .to_owned();
        let iat = int_claim(payload, "iat", "iat to be an integer")?
            .ok_or_else(|| claim_error("an integer iat", None))?;
        let exp = int_claim(payload, "exp", "exp to be an integer")?;
        let nbf = int_claim(payload, "nbf", "nbf to be an integer")?;
        let vct = payload
            .get("vct")
            .and_then(Value::as_str)
            .ok_or_else(|| claim_error("vct to be a string", payload.get("vct")))?
            .to_owned();
        let vct_integrity = payload
            .get("vct#integrity")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                claim_error("vct#integrity to be a string", payload.get("vct#integrity"))
            })?
            .to_owned();
        let cnf = sdjwt::cnf_key(payload)?;
        let status: StatusClaim = payload
            .get("status")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                claim_error(
                    "status to be {\"status_list\": {\"idx\", \"uri\"}}",
                    payload.get("status"),
                )
            })?;
        let processed = sdjwt::process(payload, sd_jwt.disclosures(), &NEVER_DISCLOSABLE)?;
        Ok(Self {
            registered: Registered {
                iss,
                kid,
                sub,
                iat,
                exp,
                nbf,
                vct,
                vct_integrity,
                cnf,
                status: status.status_list,
            },
            sd_jwt,
            processed,
        })
    }

    /// The registered claims.
    pub fn registered(&self) -> &Registered {
        &self.registered
    }

    /// The SD-JWT.
    pub fn sd_jwt(&self) -> &SdJwt {
        &self.sd_jwt
    }

    /// The credential id.
    pub fn id(&self) -> String {
        credential_id(self.sd_jwt.issuer_jwt().as_str())
    }

    /// The claims with the disclosures applied, and which were disclosed.
    pub fn processed(&self) -> &Processed {
        &self.processed
    }

    /// The schema for `vct`, with `vct#integrity` checked against it.
    pub fn check_schema<'a>(
        &self,
        schemas: &'a SchemaSet,
    ) -> Result<&'a CredentialSchema, CredentialError> {
        let schema = schemas
            .by_vct(&self.registered.vct)
            .ok_or_else(|| CredentialError::UnknownVct(self.registered.vct.clone()))?;
        schema.check_integrity(&self.registered.vct_integrity)?;
        Ok(schema)
    }

    /// `iat` not in the future, not expired, valid already.
    pub fn check_times(&self, now: i64) -> Result<(), CredentialError> {
        let r = &self.registered;
        if r.iat > now.saturating_add(MAX_CLOCK_SKEW_S) {
            return Err(CredentialError::IssuedInFuture { iat: r.iat, now });
        }
        if let Some(exp) = r.exp
            && exp <= now
        {
            return Err(CredentialError::Expired { exp, now });
        }
        if let Some(nbf) = r.nbf
            && nbf > now.saturating_add(MAX_CLOCK_SKEW_S)
        {
            return Err(CredentialError::NotYetValid { nbf, now });
        }
        Ok(())
    }

    /// The KB-JWT: required when `expected` is given (audience, nonce), else checked when
    /// present only for what does not depend on them (typ, sd_hash, age, signature).
    pub fn check_kb_jwt(
        &self,
        expected: Option<(&str, &str)>,
        now: i64,
        max_age_s: i64,
    ) -> Result<(), CredentialError> {
        let kb = match (expected, self.sd_jwt.kb_jwt()) {
            (Some((aud, nonce)), _) => {
                sdjwt::verify_kb_jwt(
                    &self.sd_jwt,
                    aud,
                    nonce,
                    now,
                    max_age_s,
                    MAX_CLOCK_SKEW_S,
                    &self.registered.cnf,
                )?;
                return Ok(());
            }
            (None, None) => return Ok(()),
            (None, Some(kb)) => kb,
        };
        let aud = kb
            .payload()
            .get("aud")
            .and_then(Value::as_str)
            .unwrap_or("");
        let nonce = kb
            .payload()
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or("");
        sdjwt::verify_kb_jwt(
            &self.sd_jwt,
            aud,
            nonce,
            now,
            max_age_s,
            MAX_CLOCK_SKEW_S,
            &self.registered.cnf,
        )?;
        Ok(())
    }

    /// Verifies the issuer's signature with the key `kid` named, as resolved at `iat`.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), CredentialError> {
        self.sd_jwt.issuer_jwt().verify(key)?;
        Ok(())
    }
}

/// The accreditation's claim constraints over the claims a verifier sees: a disclosed
/// claim that breaks one is refused; an undisclosed one is not judged.
pub fn check_constraints(
    constraints: &[Constraint],
    claims: &Map<String, Value>,
) -> Result<(), CredentialError> {
    let claims = Value::Object(claims.clone());
    for c in constraints {
        if c.evaluate(&claims) == Outcome::Violated {
            return Err(CredentialError::Constraint(c.to_string()));
        }
    }
    Ok(())
}

/// Checks a fetched status list token (compact JWS) for the credential: signed by the
/// issuer's `key`, `typ statuslist+jwt`, `sub` equal to the URI, fresh enough (`max_age_s`),
/// the index in range; and the credential's status there.
pub fn check_status(
    token: &str,
    reference: &status_list::StatusListReference,
    key: &PublicKey,
    now: i64,
    max_age_s: u64,
) -> Result<(), CredentialError> {
    let jws = Jws::parse(token).map_err(|e| CredentialError::StatusToken(e.to_string()))?;
    jws.verify(key)
        .map_err(|e| CredentialError::StatusToken(format!("not signed by the issuer key: {e}")))?;
    let payload: StatusListTokenPayload =
        serde_json::from_value(Value::Object(jws.payload().clone()))
            .map_err(|e| CredentialError::StatusToken(format!("payload: {e}")))?;
    let status = status_list::check_token(
        jws.typ(),
        &payload,
        &reference.uri,
        reference.idx,
        now,
        max_age_s,
    )?;
    match status {
        Status::Valid => Ok(()),
        Status::Invalid => Err(CredentialError::Revoked),
        Status::Suspended => Err(CredentialError::Suspended),
    }
}
