//! Full verification of a credential or presentation: the pure checks of
//! `civitas_core::credential` plus what needs the network — the issuer's key as of `iat`
//! (resolved with proofs), compromise marks (current version), the accreditation as of `iat`
//! (and whether a withdrawal made it void), and the status list, fetched only from an origin
//! the issuer's DID document lists, with size and time limits.

use std::time::Duration;

use civitas_core::constraint::Constraint;
use civitas_core::credential::{self, CredentialError, ISSUER_SERVICE_TYPE, Unverified};
use civitas_core::did::{Did, DidUrl};
use civitas_core::document::{DidDocument, Relationship};
use civitas_core::jws::Jws;
use civitas_core::keys::PublicKey;
use civitas_core::ledger::Classification;
use civitas_core::schema::SchemaSet;
use civitas_core::status_list::OpenedToken;
use serde_json::{Map, Value};

use crate::{ClientError, RegistryClient, Version};

/// Largest status list token fetched.
pub const MAX_STATUS_BYTES: usize = 1024 * 1024;
/// How long a status list fetch may take.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the verifier expects.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The KB-JWT's audience and nonce: when set, a KB-JWT is required.
    pub key_binding: Option<(String, String)>,
    /// How old a KB-JWT's `iat` may be, seconds.
    pub kb_max_age_s: i64,
    /// How old a status list token may be, seconds (0: issued at or after now).
    pub max_status_age_s: u64,
}

impl Default for Expectations {
    fn default() -> Self {
        Self {
            key_binding: None,
            kb_max_age_s: 300,
            max_status_age_s: 300,
        }
    }
}

/// A credential that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedCredential {
    /// Its id.
    pub id: String,
    /// Its registered claims.
    pub registered: credential::Registered,
    /// The claims, disclosures applied.
    pub claims: Map<String, Value>,
    /// The paths of the disclosed claims.
    pub disclosed: Vec<String>,
    /// The classification of each disclosed claim, per the schema.
    pub classifications: Vec<(String, Option<Classification>)>,
}

/// RFC 3339 of a Unix time in seconds (what `Version::Time` and `at=` take).
pub fn rfc3339(unix_s: i64) -> String {
    chrono::DateTime::from_timestamp(unix_s, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether `url` may be a Credential Issuer Identifier or endpoint: https, or http on a
/// loopback host.
pub fn acceptable_issuer_url(url: &str) -> bool {
    let Some(origin) = origin(url) else {
        return false;
    };
    if origin.starts_with("https://") {
        return true;
    }
    let host = &origin["http://".len()..];
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn registry(e: impl std::fmt::Display) -> CredentialError {
    CredentialError::Registry(e.to_string())
}

/// The scheme, host and port of a URL (`None` unless http or https).
pub fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (end > 0).then(|| &url[..url.len() - rest.len() + end])
}

/// Verifies `text` fully at time `now` (unix seconds).
pub async fn verify(
    registry_client: &RegistryClient,
    http: &reqwest::Client,
    schemas: &SchemaSet,
    text: &str,
    expect: &Expectations,
    now: i64,
) -> Result<VerifiedCredential, CredentialError> {
    let unverified = Unverified::parse(text)?;
    let schema = unverified.check_schema(schemas)?;
    unverified.check_times(now)?;
    let kb = expect
        .key_binding
        .as_ref()
        .map(|(aud, nonce)| (aud.as_str(), nonce.as_str()));
    unverified.check_kb_jwt(kb, now, expect.kb_max_age_s)?;
    let standing = check_issuer(registry_client, &unverified).await?;
    let claims = unverified.processed().claims().clone();
    credential::check_constraints(&standing.constraints, &claims)?;
    let r = unverified.registered().clone();
    let token = fetch_status(
        http,
        &standing.document,
        &r.iss,
        &r.status.uri,
        expect.max_status_age_s,
    )
    .await?;
    credential::status_in(&token, &r.status, now, expect.max_status_age_s)?;

    let disclosed = unverified.processed().disclosed().to_vec();
    let classifications = disclosed
        .iter()
        .map(|p| {
            let level = p
                .parse()
                .ok()
                .and_then(|path| schema.classification_of(&path));
            (p.clone(), level)
        })
        .collect();
    Ok(VerifiedCredential {
        id: unverified.id(),
        registered: r,
        claims,
        disclosed,
        classifications,
    })
}

/// What the ledger says about a credential's issuer, once its signature verified.
#[derive(Debug, Clone)]
pub struct IssuerStanding {
    /// The accreditation's claim constraints (as of `iat`).
    pub constraints: Vec<Constraint>,
    /// The issuer's current DID document (status origins and keys).
    pub document: DidDocument,
}

/// Checks the issuer side of a credential: the `kid` key in `iss`'s `assertionMethod` as of
/// `iat` (resolved with proofs) and not marked compromised since, the issuer signature, and
/// the accreditation for `vct` as of `iat` (telling a retroactive withdrawal from never
/// accredited).
pub async fn check_issuer(
    registry_client: &RegistryClient,
    unverified: &Unverified,
) -> Result<IssuerStanding, CredentialError> {
    let r = unverified.registered();
    let at_iat = registry_client
        .resolve(&r.iss, &Version::Time(rfc3339(r.iat)))
        .await
        .map_err(|e| match e {
            // The issuer's DID did not exist (or not yet) when the credential says it was
            // issued: no key of it can have signed then.
            ClientError::Resolution(p) => CredentialError::IssuerKey(format!(
                "{} did not resolve at {}: {}",
                r.iss,
                rfc3339(r.iat),
                p.detail
            )),
            other => registry(other),
        })?;
    let key = at_iat
        .document
        .key_for(&r.kid, Relationship::AssertionMethod)
        .ok_or_else(|| {
            CredentialError::IssuerKey(format!(
                "{} was not in {}'s assertionMethod at {}",
                r.kid,
                r.iss,
                rfc3339(r.iat)
            ))
        })?;
    let current = registry_client
        .resolve(&r.iss, &Version::Current)
        .await
        .map_err(registry)?;
    if let Some(ledger) = &current.ledger
        && ledger
            .metadata
            .compromised_keys
            .iter()
            .any(|k| *k == key.to_multibase())
    {
        return Err(CredentialError::CompromisedKey(r.kid.to_string()));
    }
    unverified.verify_signature(&key)?;

    let accreditations = registry_client
        .accreditations(&r.vct, Some(&rfc3339(r.iat)))
        .await
        .map_err(registry)?;
    let Some(accreditation) = accreditations
        .iter()
        .map(|a| a.body())
        .find(|a| a.issuer == r.iss)
    else {
        let history = registry_client
            .trust_history(&r.iss, &r.vct)
            .await
            .map_err(registry)?;
        let was_accredited = history.entries.iter().any(|e| {
            e.action == "accredit"
                && chrono::DateTime::parse_from_rfc3339(&e.time)
                    .is_ok_and(|t| t.timestamp() <= r.iat)
        });
        return Err(if was_accredited {
            CredentialError::Withdrawn {
                issuer: r.iss.to_string(),
                vct: r.vct.clone(),
            }
        } else {
            CredentialError::NotAccredited {
                issuer: r.iss.to_string(),
                vct: r.vct.clone(),
            }
        });
    };
    Ok(IssuerStanding {
        constraints: accreditation.constraints.clone(),
        document: current.document,
    })
}

/// Fetches the status list token at `uri` — only from an origin the issuer's current
/// `document` lists as an OID4VCI service, at most [`MAX_STATUS_BYTES`] within
/// [`STATUS_TIMEOUT`] — checks it is signed by a current assertion key of `iss`, and opens it.
pub async fn fetch_status(
    http: &reqwest::Client,
    document: &DidDocument,
    iss: &Did,
    uri: &str,
    max_age_s: u64,
) -> Result<OpenedToken, CredentialError> {
    let allowed = origin(uri).is_some_and(|o| {
        document
            .service_endpoints(ISSUER_SERVICE_TYPE)
            .any(|e| origin(e) == Some(o))
    });
    if !allowed {
        return Err(CredentialError::StatusToken(format!(
            "the status list {uri} is not at an origin {iss}'s DID document lists"
        )));
    }
    let token = fetch_token(http, uri, max_age_s).await?;
    let key = status_key(&token, document, iss)?;
    credential::open_status_token(&token, &key)
}

/// The key a status list token names: a current `assertionMethod` key of the issuer.
fn status_key(
    token: &str,
    document: &DidDocument,
    iss: &Did,
) -> Result<PublicKey, CredentialError> {
    let jws = Jws::parse(token).map_err(|e| CredentialError::StatusToken(e.to_string()))?;
    let kid: DidUrl = jws
        .kid()
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| CredentialError::StatusToken("expected a DID URL kid".to_owned()))?;
    if kid.did() != iss {
        return Err(CredentialError::StatusToken(format!(
            "expected a key of {iss}, found {kid}"
        )));
    }
    document
        .key_for(&kid, Relationship::AssertionMethod)
        .ok_or_else(|| {
            CredentialError::StatusToken(format!("{kid} is not a current assertion key of {iss}"))
        })
}

async fn fetch_token(
    http: &reqwest::Client,
    uri: &str,
    max_age_s: u64,
) -> Result<String, CredentialError> {
    let unavailable =
        |e: &dyn std::fmt::Display| CredentialError::StatusUnavailable(format!("{uri}: {e}"));
    let mut request = http
        .get(uri)
        .timeout(STATUS_TIMEOUT)
        .header(reqwest::header::ACCEPT, "application/statuslist+jwt");
    if max_age_s == 0 {
        request = request.header(reqwest::header::CACHE_CONTROL, "no-cache");
    }
    let mut response = request.send().await.map_err(|e| unavailable(&e))?;
    if !response.status().is_success() {
        return Err(unavailable(&format!("http {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unavailable(&e))? {
        if body.len() + chunk.len() > MAX_STATUS_BYTES {
            return Err(unavailable(&format!(
                "expected at most {MAX_STATUS_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| unavailable(&"the token is not utf-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls_must_be_https_or_loopback_http() {
        assert!(acceptable_issuer_url("https://issuer.gov.example"));
        assert!(acceptable_issuer_url("http://127.0.0.1:8080"));
        assert!(acceptable_issuer_url("http://localhost:1/x"));
        assert!(acceptable_issuer_url("http://[::1]:9000"));
        assert!(!acceptable_issuer_url("http://issuer.gov.example"));
        assert!(!acceptable_issuer_url("http://127.0.0.1.evil.example"));
        assert!(!acceptable_issuer_url("ftp://127.0.0.1"));
        assert!(!acceptable_issuer_url("https://"));
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://a.example/status/1"),
            Some("https://a.example")
        );
        assert_eq!(
            origin("http://127.0.0.1:80/x?y"),
            Some("http://127.0.0.1:80")
        );
        assert_eq!(origin("http://127.0.0.1:80"), Some("http://127.0.0.1:80"));
        assert_eq!(origin("ftp://a"), None);
        assert_eq!(origin("https:///x"), None);
    }
}
