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
use crate::status_list::{
    self, OpenedToken, Status, StatusClaim, StatusListError, StatusListTokenPayload,
};

/// The JOSE `typ` of a credential.
pub const CREDENTIAL_TYP: &str = "dc+sd-jwt";
/// The DID document service type naming a Credential Issuer Identifier (OpenID4VCI).
pub const ISSUER_SERVICE_TYPE: &str = "OID4VCI";
/// The OpenID4VCI pre-authorized code grant type.
pub const PRE_AUTHORIZED_GRANT: &str = "urn:ietf:params:oauth:grant-type:pre-authorized_code";
/// The JOSE `typ` of an OpenID4VCI key proof.
pub const PROOF_TYP: &str = "openid4vci-proof+jwt";
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
        let (aud, nonce) = match (expected, self.sd_jwt.kb_jwt()) {
            (Some(expected), _) => expected,
            (None, None) => return Ok(()),
            // Nothing to compare them with: the KB-JWT's own audience and nonce.
            (None, Some(kb)) => {
                let claim = |name| kb.payload().get(name).and_then(Value::as_str);
                (claim("aud").unwrap_or(""), claim("nonce").unwrap_or(""))
            }
        };
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
    if constraints.is_empty() {
        return Ok(());
    }
    check_constraints_on(constraints, &Value::Object(claims.clone()))
}

/// [`check_constraints`] over claims already held as a JSON object value.
pub fn check_constraints_on(
    constraints: &[Constraint],
    claims: &Value,
) -> Result<(), CredentialError> {
    for c in constraints {
        if c.evaluate(claims) == Outcome::Violated {
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
    status_in(&open_status_token(token, key)?, reference, now, max_age_s)
}

/// Verifies a status list token's signature with the issuer's `key` and opens it.
pub fn open_status_token(token: &str, key: &PublicKey) -> Result<OpenedToken, CredentialError> {
    let jws = Jws::parse(token).map_err(|e| CredentialError::StatusToken(e.to_string()))?;
    jws.verify(key)
        .map_err(|e| CredentialError::StatusToken(format!("not signed by the issuer key: {e}")))?;
    let payload: StatusListTokenPayload =
        serde_json::from_value(Value::Object(jws.payload().clone()))
            .map_err(|e| CredentialError::StatusToken(format!("payload: {e}")))?;
    Ok(OpenedToken::open(jws.typ(), &payload)?)
}

/// The credential's status in an opened token: valid, or the refusal.
pub fn status_in(
    token: &OpenedToken,
    reference: &status_list::StatusListReference,
    now: i64,
    max_age_s: u64,
) -> Result<(), CredentialError> {
    match token.status(&reference.uri, reference.idx, now, max_age_s)? {
        Status::Valid => Ok(()),
        Status::Invalid => Err(CredentialError::Revoked),
        Status::Suspended => Err(CredentialError::Suspended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use crate::sdjwt::{SdMember, SdValue};
    use crate::status_list::{StatusList, StatusListReference};
    use serde_json::json;

    const VCT: &str = "https://schemas.civitas.gov.example/vct/OfficialRole/v1";
    const NOW: i64 = 1_800_000_000;

    struct Issued {
        text: String,
        issuer: SecretKey,
        holder: SecretKey,
    }

    fn schemas() -> SchemaSet {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");
        let name = "OfficialRole.schema.json";
        let bytes = std::fs::read(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{e}"));
        SchemaSet::from_files([(name.to_owned(), bytes)]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A credential as the issuer makes it; `edit` changes the header and payload first.
    fn issue(edit: impl FnOnce(&mut Map<String, Value>, &mut Map<String, Value>)) -> Issued {
        let issuer = SecretKey::generate();
        let holder = SecretKey::generate();
        let iss = Did::key_from_public_key(&issuer.public_key());
        let integrity = schemas()
            .by_vct(VCT)
            .map(CredentialSchema::integrity)
            .unwrap_or_default();
        let claims = SdValue::Object(vec![
            (
                "role".to_owned(),
                SdMember::disclosable(json!("supervisor")),
            ),
            ("clearance".to_owned(), SdMember::disclosable(json!(3))),
            (
                "valid_from".to_owned(),
                SdMember::plain(json!("2026-01-01")),
            ),
        ]);
        let (mut payload, disclosures) =
            sdjwt::conceal(&claims, &mut rand::thread_rng()).unwrap_or_else(|e| panic!("{e}"));
        for (k, v) in [
            ("iss", json!(iss.as_str())),
            ("sub", json!("did:example:holder")),
            ("iat", json!(NOW - 10)),
            ("exp", json!(NOW + 1000)),
            ("vct", json!(VCT)),
            ("vct#integrity", json!(integrity)),
            ("cnf", json!({ "jwk": holder.public_key().to_jwk() })),
            (
                "status",
                json!({"status_list": {"idx": 5, "uri": "https://issuer.example/status/1"}}),
            ),
        ] {
            payload.insert(k.to_owned(), v);
        }
        let mut header = Map::new();
        header.insert("alg".to_owned(), json!("EdDSA"));
        header.insert("typ".to_owned(), json!(CREDENTIAL_TYP));
        header.insert("kid".to_owned(), json!(format!("{iss}#key-1")));
        edit(&mut header, &mut payload);
        let jwt =
            crate::jws::sign_compact(&header, &payload, &issuer).unwrap_or_else(|e| panic!("{e}"));
        let mut text = jwt;
        text.push('~');
        for d in &disclosures {
            text.push_str(d.as_str());
            text.push('~');
        }
        Issued {
            text,
            issuer,
            holder,
        }
    }

    /// A change to a credential's header and payload before it is signed.
    type Edit = Box<dyn FnOnce(&mut Map<String, Value>, &mut Map<String, Value>)>;

    fn slug(err: &CredentialError) -> &'static str {
        err.problem().slug()
    }

    #[test]
    fn a_well_formed_credential_passes_the_pure_checks() {
        let c = issue(|_, _| {});
        let u = Unverified::parse(&c.text).unwrap_or_else(|e| panic!("{e}"));
        let jwt = c.text.split('~').next().unwrap_or_default();
        assert_eq!(u.id(), credential_id(jwt));
        assert!(u.check_schema(&schemas()).is_ok());
        assert!(u.check_times(NOW).is_ok());
        assert!(u.verify_signature(&c.issuer.public_key()).is_ok());
        assert_eq!(u.processed().claims()["clearance"], json!(3));
        let wrong = u.verify_signature(&c.holder.public_key());
        assert_eq!(wrong.map_err(|e| slug(&e)), Err("invalid-signature"));
    }

    #[test]
    fn header_and_claim_defects_have_their_problem_types() {
        let cases: Vec<(&str, Edit)> = vec![
            (
                "invalid-typ",
                Box::new(|h, _| {
                    h.insert("typ".into(), json!("vc+sd-jwt"));
                }),
            ),
            (
                "invalid-issuer-key",
                Box::new(|h, _| {
                    h.insert(
                        "kid".into(),
                        json!("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK#k"),
                    );
                }),
            ),
            (
                "invalid-issuer-key",
                Box::new(|h, _| {
                    h.remove("kid");
                }),
            ),
            (
                "malformed-credential",
                Box::new(|_, p| {
                    p.insert("iat".into(), json!("yesterday"));
                }),
            ),
            (
                "malformed-credential",
                Box::new(|_, p| {
                    p.remove("status");
                }),
            ),
        ];
        for (expected, edit) in cases {
            let c = issue(edit);
            let err = Unverified::parse(&c.text).map(|_| ());
            assert_eq!(err.map_err(|e| slug(&e)), Err(expected));
        }
    }

    #[test]
    fn times_schema_and_constraints_are_checked() {
        let u = |edit: fn(&mut Map<String, Value>, &mut Map<String, Value>)| {
            Unverified::parse(&issue(edit).text).unwrap_or_else(|e| panic!("{e}"))
        };
        let future = u(|_, p| {
            p.insert("iat".into(), json!(NOW + 3600));
        });
        assert_eq!(
            future.check_times(NOW).map_err(|e| slug(&e)),
            Err("issued-in-future")
        );
        let expired = u(|_, p| {
            p.insert("exp".into(), json!(NOW));
        });
        assert_eq!(
            expired.check_times(NOW).map_err(|e| slug(&e)),
            Err("credential-expired")
        );
        let early = u(|_, p| {
            p.insert("nbf".into(), json!(NOW + 3600));
        });
        assert_eq!(
            early.check_times(NOW).map_err(|e| slug(&e)),
            Err("credential-not-yet-valid")
        );
        let tampered = u(|_, p| {
            p.insert(
                "vct#integrity".into(),
                json!("sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            );
        });
        assert_eq!(
            tampered
                .check_schema(&schemas())
                .map(|_| ())
                .map_err(|e| slug(&e)),
            Err("vct-integrity-mismatch")
        );
        let unknown = u(|_, p| {
            p.insert("vct".into(), json!("urn:unknown"));
        });
        assert_eq!(
            unknown
                .check_schema(&schemas())
                .map(|_| ())
                .map_err(|e| slug(&e)),
            Err("unknown-vct")
        );
        let fine = u(|_, _| {});
        let claims = fine.processed().claims();
        let c = |text: &str| vec![text.parse::<Constraint>().unwrap_or_else(|e| panic!("{e}"))];
        assert!(check_constraints(&c("clearance <= 3"), claims).is_ok());
        assert!(
            check_constraints(&c("jurisdiction == \"310000\""), claims).is_ok(),
            "undisclosed claims are not judged"
        );
        assert_eq!(
            check_constraints(&c("clearance < 3"), claims).map_err(|e| slug(&e)),
            Err("constraint-violated")
        );
    }

    #[test]
    fn key_binding_is_required_when_expected_and_checked_when_present() {
        let c = issue(|_, _| {});
        let u = Unverified::parse(&c.text).unwrap_or_else(|e| panic!("{e}"));
        let missing = u.check_kb_jwt(Some(("https://v", "n")), NOW, 300);
        assert_eq!(missing.map_err(|e| slug(&e)), Err("kb-jwt-missing"));
        assert!(u.check_kb_jwt(None, NOW, 300).is_ok());
        let kb = sdjwt::create_kb_jwt(&c.text, "https://v", "n", NOW, &c.holder)
            .unwrap_or_else(|e| panic!("{e}"));
        let bound = Unverified::parse(&format!("{}{kb}", c.text)).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            bound
                .check_kb_jwt(Some(("https://v", "n")), NOW, 300)
                .is_ok()
        );
        assert!(bound.check_kb_jwt(None, NOW, 300).is_ok());
        for (aud, nonce) in [("https://v", "other"), ("https://elsewhere", "n")] {
            let wrong = bound.check_kb_jwt(Some((aud, nonce)), NOW, 300);
            assert_eq!(wrong.map_err(|e| slug(&e)), Err("invalid-kb-jwt"));
        }
        let stale = bound.check_kb_jwt(Some(("https://v", "n")), NOW + 3600, 300);
        assert_eq!(stale.map_err(|e| slug(&e)), Err("invalid-kb-jwt"));
        let stolen = sdjwt::create_kb_jwt(&c.text, "https://v", "n", NOW, &c.issuer)
            .unwrap_or_else(|e| panic!("{e}"));
        let stolen =
            Unverified::parse(&format!("{}{stolen}", c.text)).unwrap_or_else(|e| panic!("{e}"));
        let refused = stolen.check_kb_jwt(Some(("https://v", "n")), NOW, 300);
        assert_eq!(refused.map_err(|e| slug(&e)), Err("invalid-kb-jwt"));
    }

    fn status_token(key: &SecretKey, typ: &str, sub: &str, value: u8) -> String {
        let mut list = StatusList::new(2, 64).unwrap_or_else(|e| panic!("{e}"));
        list.set(5, value).unwrap_or_else(|e| panic!("{e}"));
        let mut header = Map::new();
        header.insert("alg".to_owned(), json!("EdDSA"));
        header.insert("typ".to_owned(), json!(typ));
        let payload = json!({
            "sub": sub, "iat": NOW - 5, "exp": NOW + 60, "ttl": 30,
            "status_list": {"bits": 2, "lst": list.encode()},
        });
        let Value::Object(payload) = payload else {
            panic!("not an object")
        };
        crate::jws::sign_compact(&header, &payload, key).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn status_tokens_are_checked_and_read() {
        let key = SecretKey::generate();
        let uri = "https://issuer.example/status/1";
        let reference = StatusListReference {
            idx: 5,
            uri: uri.to_owned(),
        };
        let check = |token: &str, key: &SecretKey| {
            check_status(token, &reference, &key.public_key(), NOW, 300).map_err(|e| slug(&e))
        };
        let typ = "statuslist+jwt";
        assert_eq!(check(&status_token(&key, typ, uri, 0), &key), Ok(()));
        assert_eq!(
            check(&status_token(&key, typ, uri, 1), &key),
            Err("credential-revoked")
        );
        assert_eq!(
            check(&status_token(&key, typ, uri, 2), &key),
            Err("credential-suspended")
        );
        assert_eq!(
            check(&status_token(&key, typ, uri, 3), &key),
            Err("invalid-status-list")
        );
        assert_eq!(
            check(&status_token(&key, "jwt", uri, 0), &key),
            Err("invalid-status-list")
        );
        let elsewhere = status_token(&key, typ, "https://issuer.example/status/2", 0);
        assert_eq!(check(&elsewhere, &key), Err("invalid-status-list"));
        let other = SecretKey::generate();
        assert_eq!(
            check(&status_token(&other, typ, uri, 0), &key),
            Err("invalid-status-list")
        );
        let late = check_status(
            &status_token(&key, typ, uri, 0),
            &reference,
            &key.public_key(),
            NOW + 120,
            300,
        );
        assert_eq!(late.map_err(|e| slug(&e)), Err("invalid-status-list"));
    }
}
