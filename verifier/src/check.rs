//! The checks of one request, in DESIGN.md's order: cheapest first, nothing fetched for a
//! request whose signature has not verified, then the credential and the route's claim
//! policy. Every outcome feeds the audit record.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::request::Parts;
use civitas_client::credential::IssuerStanding;
use civitas_client::{ClientError, RegistryClient, Version};
use civitas_core::constraint::Constraint;
use civitas_core::credential::{self, CredentialError, Unverified};
use civitas_core::did::{Did, Method};
use civitas_core::document::{DidDocument, Relationship};
use civitas_core::encoding;
use civitas_core::httpsig::{self, HttpSigError, Requirements, Window};
use civitas_core::jws::Jws;
use civitas_core::ledger::Classification;
use civitas_core::problem;
use civitas_core::schema::SchemaSet;
use civitas_core::sdjwt::{self, SdJwtError};
use civitas_core::status_list::OpenedToken;
use moka::Expiry;
use serde_json::{Map, Value};

use crate::caller::{PresentedCredential, VerifiedCaller};
use crate::denial::Denial;
use crate::policy::{Matched, Policy, SubjectSource, check_path};
use crate::replay::ReplayCache;

/// How long a KB-JWT's `iat` may lie in the past.
const KB_MAX_AGE_S: i64 = 300;
/// How long a failed resolution is remembered (at most).
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// Entries per cache.
const CACHE_ENTRIES: u64 = 10_000;

pub use civitas_core::httpsig::CALLER_HEADER_PREFIX;
/// The free-text purpose note header.
pub const PURPOSE_NOTE_HEADER: &str = "civitas-purpose-note";

/// What a verifier is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The service's public origin (`https://data.example.gov`), the base of `@target-uri`
    /// and the KB-JWT audience.
    pub public_origin: String,
    /// How old a status list may be (0: fetched for every request).
    pub max_status_age: Duration,
    /// How long resolved DID documents and issuer verdicts are reused (0: never).
    pub max_registry_age: Duration,
    /// The signature time window.
    pub window: Window,
    /// Most (DID, nonce) pairs remembered; beyond it requests get 503.
    pub replay_capacity: usize,
}

impl Settings {
    /// Defaults for `public_origin`: status lists 300 s, registry answers 60 s, the
    /// profile's window, one million replay entries.
    pub fn new(public_origin: impl Into<String>) -> Self {
        Self {
            public_origin: public_origin.into().trim_end_matches('/').to_owned(),
            max_status_age: Duration::from_secs(300),
            max_registry_age: Duration::from_secs(60),
            window: Window::default(),
            replay_capacity: 1_000_000,
        }
    }
}

/// A resolved caller DID document (or why it is unusable).
type CallerEntry = Result<Arc<DidDocument>, Denial>;
/// The issuer-side verdict on a credential (by credential id).
type IssuerEntry = Result<Arc<IssuerVerdict>, Denial>;

/// What the ledger says about a credential's issuer, verified once per credential.
#[derive(Debug, Clone)]
struct IssuerVerdict {
    constraints: Vec<Constraint>,
    document: DidDocument,
}

/// Keeps failures shorter than successes.
struct ResultExpiry {
    ok: Duration,
}

impl<K, T> Expiry<K, Result<T, Denial>> for ResultExpiry {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Result<T, Denial>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(match value {
            Ok(_) => self.ok,
            Err(_) => self.ok.min(NEGATIVE_TTL),
        })
    }
}

fn cache<K, T>(ttl: Duration) -> moka::future::Cache<K, Result<Arc<T>, Denial>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    moka::future::Cache::builder()
        .max_capacity(CACHE_ENTRIES)
        .expire_after(ResultExpiry { ok: ttl })
        .build()
}

/// A presentation's SD-JWT (without its KB-JWT), parsed and strictly processed once per
/// distinct text: the holder key decompressed, the disclosures hashed, the id and `sd_hash`
/// computed.
#[derive(Debug)]
struct Parsed {
    unverified: Unverified,
    id: String,
    sd_hash: String,
    /// The claims as one JSON value, for constraints.
    claims: Value,
    /// The classification of each disclosed claim, in disclosure order (from the schema the
    /// credential pins, once it checked).
    levels: OnceLock<Vec<Classification>>,
    /// What a handler of each route (by policy index) gets, once the credential passed it.
    views: Box<[OnceLock<Arc<PresentedCredential>>]>,
}

/// A presentation of this request: the cached part and its own KB-JWT, if any.
#[derive(Debug)]
struct Presented {
    parsed: Arc<Parsed>,
    kb: Option<Jws>,
    /// The issuer verdict, when the cache already held it at the precheck.
    verdict: Option<Arc<IssuerVerdict>>,
}

impl Presented {
    fn registered(&self) -> &credential::Registered {
        self.parsed.unverified.registered()
    }
}

/// A cached, verified status list (or why it could not be had).
type StatusEntry = Result<Arc<OpenedToken>, Denial>;

/// Everything a check learned, for the audit record (also of a denial).
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// The matched route's name.
    pub route: Option<String>,
    /// The key id the signature claims (not verified).
    pub claimed_key_id: Option<String>,
    /// The caller, once the request signature verified.
    pub caller: Option<Did>,
    /// The credential id.
    pub credential: Option<String>,
    /// Its issuer.
    pub issuer: Option<String>,
    /// Its type.
    pub vct: Option<String>,
    /// The disclosed claim names.
    pub disclosed: Vec<String>,
    /// The purpose code.
    pub purpose: Option<String>,
    /// The data subject.
    pub subject: Option<String>,
    /// What an unauthenticated client must sign.
    pub requirements: Option<Requirements>,
}

/// The request checker: policy, schemas, caches and the replay store.
pub struct Checker {
    policy: Policy,
    schemas: SchemaSet,
    settings: Settings,
    /// `settings.public_origin`, parsed once (a malformed one refuses every request).
    origin: Result<httpsig::Origin, Denial>,
    registry: Arc<RegistryClient>,
    http: reqwest::Client,
    replay: ReplayCache,
    callers: moka::future::Cache<Did, CallerEntry>,
    issuers: moka::future::Cache<String, IssuerEntry>,
    statuses: moka::future::Cache<String, StatusEntry>,
    parsed: moka::sync::Cache<[u8; 32], Arc<Parsed>>,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker")
            .field("public_origin", &self.settings.public_origin)
            .finish_non_exhaustive()
    }
}

fn sig(e: &HttpSigError) -> Denial {
    Denial::new(e.problem(), e.to_string())
}

fn cred(e: &CredentialError) -> Denial {
    match e {
        CredentialError::SdJwt(SdJwtError::KbJwtAud { .. }) => {
            Denial::new(problem::WRONG_AUDIENCE, e.to_string())
        }
        _ => Denial::new(e.problem(), e.to_string()),
    }
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Checker {
    /// A checker for `policy` over `schemas`.
    pub fn new(
        policy: Policy,
        schemas: SchemaSet,
        settings: Settings,
        registry: Arc<RegistryClient>,
        http: reqwest::Client,
    ) -> Self {
        let ttl = settings.max_registry_age;
        let status_ttl = settings.max_status_age.max(Duration::from_millis(1));
        Self {
            replay: ReplayCache::new(settings.replay_capacity),
            callers: cache(ttl.max(Duration::from_millis(1))),
            issuers: cache(ttl.max(Duration::from_millis(1))),
            statuses: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(status_ttl)
                .build(),
            parsed: moka::sync::Cache::new(CACHE_ENTRIES),
            origin: httpsig::Origin::parse(&settings.public_origin).map_err(|e| sig(&e)),
            policy,
            schemas,
            settings,
            registry,
            http,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Checks a request (`parts` and its whole `body`), filling `facts` as it goes.
    pub async fn check(
        &self,
        parts: &Parts,
        body: &[u8],
        request_id: &str,
        facts: &mut Facts,
    ) -> Result<VerifiedCaller, Denial> {
        let now = now_s();
        // 1. Route: canonical path, listed method and path, no reserved headers.
        let path = parts.uri.path();
        check_path(path).map_err(|e| Denial::new(problem::NON_CANONICAL_PATH, e.to_string()))?;
        let matched = self
            .policy
            .route(parts.method.as_str(), path)
            .ok_or_else(|| {
                Denial::new(
                    problem::ROUTE_NOT_ALLOWED,
                    format!("{} {path} is not a route of this service", parts.method),
                )
            })?;
        let route = matched.route;
        facts.route = Some(route.name().to_owned());
        let requirements = Requirements {
            presentation: route.requires_credential(),
            purpose: route.requires_purpose(),
            body: !body.is_empty(),
        };
        facts.requirements = Some(requirements);
        if let Some(name) = parts
            .headers
            .keys()
            .find(|n| n.as_str().starts_with(CALLER_HEADER_PREFIX))
        {
            return Err(Denial::new(
                problem::FORBIDDEN_HEADER,
                format!("{name} is set by the gateway only"),
            ));
        }

        // 2. The signature: parsed, the profile, the time window, the digest.
        let fields: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
            .collect();
        let origin = self.origin.as_ref().map_err(Denial::clone)?;
        let request = httpsig::Request::at_origin(
            parts.method.as_str(),
            origin,
            parts
                .uri
                .path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str),
            &fields,
        )
        .map_err(|e| sig(&e))?;
        let signature = httpsig::SignatureSet::from_request(&request)
            .and_then(|set| set.into_tagged(httpsig::TAG))
            .map_err(|e| sig(&e))?;
        facts.claimed_key_id = signature.keyid().map(str::to_owned);
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let purpose = header(httpsig::PURPOSE_HEADER);
        if route.requires_purpose() {
            let code = purpose.ok_or_else(|| {
                Denial::new(
                    problem::PURPOSE_REQUIRED,
                    format!(
                        "{} needs a {} header naming one of its purposes",
                        route.name(),
                        httpsig::PURPOSE_HEADER
                    ),
                )
            })?;
            if !route.allows_purpose(code) {
                return Err(Denial::new(
                    problem::PURPOSE_NOT_ALLOWED,
                    format!(
                        "purpose {:?} is not one {} allows",
                        code.chars().take(64).collect::<String>(),
                        route.name()
                    ),
                ));
            }
            facts.purpose = Some(code.to_owned());
        }
        let presentation = header(httpsig::PRESENTATION_HEADER);
        if route.requires_credential() && presentation.is_none() {
            return Err(Denial::new(
                problem::PRESENTATION_REQUIRED,
                format!(
                    "{} needs a {} header with a presentation of {}",
                    route.name(),
                    httpsig::PRESENTATION_HEADER,
                    route.vcts().join(" or ")
                ),
            ));
        }
        let checked = httpsig::check_profile(&signature, requirements, now, self.settings.window)
            .map_err(|e| sig(&e))?;
        request.verify_content_digest(body).map_err(|e| sig(&e))?;
        let key_id = checked.key_id().clone();
        let caller_did = key_id.did().clone();
        let method = match caller_did.method() {
            Method::Civ => "civ",
            Method::Key => "key",
            Method::Jwk => "jwk",
            _ => "other",
        };
        if !route.allows_method(method) {
            return Err(Denial::new(
                problem::CALLER_METHOD_NOT_ALLOWED,
                format!("{} does not accept did:{method} callers", route.name()),
            ));
        }

        // 3. The presentation, unverified: type, schema, issuer standing cached, times,
        //    KB-JWT claims, holder = signer.
        let presented = match (presentation, route.requires_credential()) {
            (Some(text), true) => Some(self.precheck(text, &matched, &checked, now, facts).await?),
            _ => None,
        };

        // 4. The caller: resolved (cached), its key current, the request signature.
        let document = self.caller(&caller_did).await?;
        let key = document
            .key_for(&key_id, Relationship::Authentication)
            .ok_or_else(|| {
                Denial::new(
                    problem::CALLER_KEY_NOT_CURRENT,
                    format!("{key_id} is not a current authentication key of {caller_did}"),
                )
            })?;
        if let Some(p) = &presented
            && p.registered().cnf != key
        {
            return Err(Denial::new(
                problem::HOLDER_BINDING,
                format!("the credential is bound to another key than {key_id}"),
            ));
        }
        let base = httpsig::signature_base(&request, &signature).map_err(|e| sig(&e))?;
        httpsig::verify(&signature, &base, &key).map_err(|e| sig(&e))?;
        facts.caller = Some(caller_did.clone());
        if !route.allows_caller(&caller_did) {
            return Err(Denial::new(
                problem::NOT_AUTHORIZED,
                format!("{caller_did} may not use {}", route.name()),
            ));
        }

        // 5. Replay, only now that the signature verified.
        self.replay.insert(
            caller_did.as_str(),
            checked.nonce(),
            checked.replay_until(),
            now,
        )?;

        // 6. The credential: KB-JWT signature, issuer (cached), status, claim policy.
        let credential = match presented {
            Some(unverified) => Some(self.credential_checks(unverified, &matched, now).await?),
            None => None,
        };
        let subject = match route.subject() {
            Some(SubjectSource::Path(name)) => matched.param(name).map(str::to_owned),
            Some(SubjectSource::Header(name)) => header(name).map(str::to_owned),
            None => None,
        };
        facts.subject.clone_from(&subject);
        Ok(VerifiedCaller::new(
            caller_did,
            key_id,
            credential,
            facts.purpose.clone(),
            header(PURPOSE_NOTE_HEADER).map(str::to_owned),
            subject,
            request_id.to_owned(),
            route.name().to_owned(),
        ))
    }

    /// The checks of a presentation that need nothing fetched.
    async fn precheck(
        &self,
        text: &str,
        matched: &Matched<'_, '_>,
        checked: &httpsig::CheckedSignature,
        now: i64,
        facts: &mut Facts,
    ) -> Result<Presented, Denial> {
        let route = matched.route;
        let presented = self.parse_presentation(text)?;
        let parsed = &presented.parsed;
        let unverified = &parsed.unverified;
        let r = unverified.registered();
        facts.credential = Some(parsed.id.clone());
        facts.issuer = Some(r.iss.to_string());
        facts.vct = Some(r.vct.clone());
        facts.disclosed = unverified.processed().disclosed().to_vec();
        if !route.accepts_vct(&r.vct) {
            return Err(Denial::new(
                problem::VCT_NOT_ACCEPTED,
                format!(
                    "{} accepts {}, not {}",
                    route.name(),
                    route.vcts().join(" or "),
                    r.vct
                ),
            ));
        }
        unverified
            .check_schema(&self.schemas)
            .map_err(|e| cred(&e))?;
        // A verdict already known for this exact credential (issuer not accredited,
        // withdrawn, key not valid) refuses it before anything is fetched.
        let known = match self.issuers.get(&parsed.id).await {
            Some(Err(denial)) => return Err(denial),
            Some(Ok(verdict)) => Some(verdict),
            None => None,
        };
        unverified.check_times(now).map_err(|e| cred(&e))?;
        if let Some(kb) = &presented.kb {
            sdjwt::check_kb_claims(
                kb,
                &parsed.sd_hash,
                &self.settings.public_origin,
                checked.nonce(),
                now,
                KB_MAX_AGE_S,
                credential::MAX_CLOCK_SKEW_S,
            )
            .map_err(|e| cred(&CredentialError::SdJwt(e)))?;
        }
        if r.sub != checked.key_id().did().as_str() {
            return Err(Denial::new(
                problem::HOLDER_BINDING,
                format!(
                    "the credential's holder is {}, the request is signed by {}",
                    r.sub.chars().take(128).collect::<String>(),
                    checked.key_id().did()
                ),
            ));
        }
        Ok(Presented {
            verdict: known,
            ..presented
        })
    }

    /// Splits off the KB-JWT and parses the rest, once per distinct text.
    fn parse_presentation(&self, text: &str) -> Result<Presented, Denial> {
        let malformed = |detail: &str| Denial::new(problem::MALFORMED_CREDENTIAL, detail);
        if text.len() > sdjwt::MAX_SD_JWT_LEN {
            return Err(malformed("the presentation is too long"));
        }
        let cut = text
            .rfind('~')
            .ok_or_else(|| malformed("expected an SD-JWT: <jwt>~<disclosures>~[<kb-jwt>]"))?;
        let (prefix, kb_text) = text.split_at(cut + 1);
        let kb = if kb_text.is_empty() {
            None
        } else {
            Some(Jws::parse(kb_text).map_err(|e| {
                Denial::new(
                    problem::INVALID_KB_JWT,
                    format!("expected the key-binding JWT to be a compact JWS: {e}"),
                )
            })?)
        };
        let key = encoding::sha256(prefix.as_bytes());
        let parsed = match self.parsed.get(&key) {
            Some(p) => p,
            None => {
                let unverified = Unverified::parse(prefix).map_err(|e| cred(&e))?;
                let parsed = Arc::new(Parsed {
                    id: unverified.id(),
                    sd_hash: unverified.sd_jwt().sd_hash(),
                    claims: Value::Object(unverified.processed().claims().clone()),
                    unverified,
                    levels: OnceLock::new(),
                    views: self
                        .policy
                        .routes()
                        .iter()
                        .map(|_| OnceLock::new())
                        .collect(),
                });
                self.parsed.insert(key, Arc::clone(&parsed));
                parsed
            }
        };
        Ok(Presented {
            parsed,
            kb,
            verdict: None,
        })
    }

    async fn credential_checks(
        &self,
        presented: Presented,
        matched: &Matched<'_, '_>,
        now: i64,
    ) -> Result<Arc<PresentedCredential>, Denial> {
        let route = matched.route;
        let parsed = &presented.parsed;
        let unverified = &parsed.unverified;
        let r = unverified.registered();
        if let Some(kb) = &presented.kb {
            kb.verify(&r.cnf)
                .map_err(|e| cred(&CredentialError::SdJwt(SdJwtError::KbJwtSignature(e))))?;
        }
        if !route.allows_issuer(&r.iss) {
            return Err(Denial::new(
                problem::NOT_AUTHORIZED,
                format!(
                    "{} takes credentials of other issuers than {}",
                    route.name(),
                    r.iss
                ),
            ));
        }
        let verdict = match presented.verdict.clone() {
            Some(verdict) => verdict,
            None => self.issuer_verdict(parsed).await?,
        };
        let claims = unverified.processed().claims();
        credential::check_constraints_on(&verdict.constraints, &parsed.claims)
            .map_err(|e| cred(&e))?;
        let token = self.status(&verdict, r).await?;
        // A list reused from the cache is at most max_status_age old; with 0 it was fetched
        // for this request, and its own exp bounds it.
        let max_age = match self.settings.max_status_age.as_secs() {
            0 => u64::from(u32::MAX),
            age => age,
        };
        credential::status_in(&token, &r.status, now, max_age).map_err(|e| cred(&e))?;

        // The route's claim policy over what was disclosed.
        let disclosed = unverified.processed().disclosed();
        for required in route.required_claims() {
            if !disclosed.iter().any(|d| d == required) {
                return Err(Denial::new(
                    problem::CLAIM_NOT_DISCLOSED,
                    format!(
                        "{} needs {} disclosed",
                        route.name(),
                        required.replace('/', ".")
                    ),
                ));
            }
        }
        if let Some(c) = route.broken_constraint(&parsed.claims) {
            return Err(Denial::new(
                problem::POLICY_CONSTRAINT,
                format!("{} requires {c}", route.name()),
            ));
        }
        let schema = unverified
            .check_schema(&self.schemas)
            .map_err(|e| cred(&e))?;
        let levels = parsed.levels.get_or_init(|| {
            disclosed
                .iter()
                .map(|path| {
                    path.parse()
                        .ok()
                        .and_then(|p| schema.classification_of(&p))
                        .unwrap_or(Classification::Core)
                })
                .collect()
        });
        let max = route.max_classification();
        for (path, &level) in disclosed.iter().zip(levels) {
            if level > max {
                return Err(Denial::new(
                    problem::OVER_DISCLOSURE,
                    format!(
                        "{} is {level:?}; {} allows at most {max:?}: disclose only what the route needs",
                        path.replace('/', "."),
                        route.name()
                    ),
                ));
            }
        }
        let view = parsed.views.get(matched.index).map(|view| {
            Arc::clone(view.get_or_init(|| {
                Arc::new(PresentedCredential::new(
                    parsed.id.clone(),
                    r.vct.clone(),
                    r.iss.clone(),
                    disclosed_claims(claims, disclosed, route.required_claims()),
                    disclosed.to_vec(),
                ))
            }))
        });
        view.ok_or_else(|| {
            Denial::new(
                problem::INTERNAL,
                "the matched route is not one of the policy's routes",
            )
        })
    }

    /// The caller's current DID document (cached, failures briefly).
    async fn caller(&self, did: &Did) -> CallerEntry {
        if let Some(hit) = self.callers.get(did).await {
            return hit;
        }
        let load = resolve_caller(Arc::clone(&self.registry), did.clone());
        if self.settings.max_registry_age.is_zero() {
            load.await
        } else {
            self.callers.get_with(did.clone(), load).await
        }
    }

    /// The issuer side of a credential (cached per credential, failures briefly).
    async fn issuer_verdict(&self, parsed: &Arc<Parsed>) -> IssuerEntry {
        if let Some(hit) = self.issuers.get(&parsed.id).await {
            return hit;
        }
        let registry = Arc::clone(&self.registry);
        let copy = Arc::clone(parsed);
        let load = async move {
            civitas_client::credential::check_issuer(&registry, &copy.unverified)
                .await
                .map(
                    |IssuerStanding {
                         constraints,
                         document,
                     }| {
                        Arc::new(IssuerVerdict {
                            constraints,
                            document,
                        })
                    },
                )
                .map_err(|e| cred(&e))
        };
        if self.settings.max_registry_age.is_zero() {
            load.await
        } else {
            self.issuers.get_with(parsed.id.clone(), load).await
        }
    }

    /// The status list the credential points at (cached for `max_status_age`).
    async fn status(
        &self,
        verdict: &Arc<IssuerVerdict>,
        r: &credential::Registered,
    ) -> StatusEntry {
        let max_age = self.settings.max_status_age.as_secs();
        if max_age > 0
            && let Some(hit) = self.statuses.get(&r.status.uri).await
        {
            return hit;
        }
        // Fetched afresh (no-cache) when lists may not be reused; exp still applies.
        let fetch_age = if max_age == 0 { 0 } else { u64::from(u32::MAX) };
        let http = self.http.clone();
        let verdict = Arc::clone(verdict);
        let iss = r.iss.clone();
        let uri = r.status.uri.clone();
        let load = async move {
            civitas_client::credential::fetch_status(
                &http,
                &verdict.document,
                &iss,
                &uri,
                fetch_age,
            )
            .await
            .map(Arc::new)
            .map_err(|e| cred(&e))
        };
        if max_age == 0 {
            load.await
        } else {
            let entry = self.statuses.get_with(r.status.uri.clone(), load).await;
            if entry.is_err() {
                // A failed fetch is not kept: the next request tries again.
                self.statuses.invalidate(&r.status.uri).await;
            }
            entry
        }
    }
}

/// The disclosed claims, plus the plain ones the route names.
fn disclosed_claims(
    claims: &Map<String, Value>,
    disclosed: &[String],
    required: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    for path in disclosed.iter().chain(required) {
        let top = path.split('/').next().unwrap_or(path);
        if let Some(v) = claims.get(top) {
            out.insert(top.to_owned(), v.clone());
        }
    }
    out
}

async fn resolve_caller(registry: Arc<RegistryClient>, did: Did) -> CallerEntry {
    match registry.resolve(&did, &Version::Current).await {
        Ok(resolved) => {
            if resolved
                .ledger
                .as_ref()
                .is_some_and(|l| l.metadata.deactivated)
            {
                Err(Denial::new(
                    problem::CALLER_DEACTIVATED,
                    format!("{did} is deactivated"),
                ))
            } else {
                Ok(Arc::new(resolved.document))
            }
        }
        Err(ClientError::Resolution(p)) | Err(ClientError::Rejected(p))
            if p.kind.contains("deactivated") || p.status == 410 =>
        {
            Err(Denial::new(
                problem::CALLER_DEACTIVATED,
                format!("{did} is deactivated"),
            ))
        }
        Err(ClientError::Resolution(p)) | Err(ClientError::Rejected(p))
            if p.kind.contains("notFound") || p.kind.contains("not-found") || p.status == 404 =>
        {
            Err(Denial::new(
                problem::UNKNOWN_CALLER,
                format!("{did} does not resolve"),
            ))
        }
        Err(ClientError::Resolution(p)) => Err(Denial::new(
            problem::UNKNOWN_CALLER,
            format!("{did} does not resolve: {}", p.detail),
        )),
        Err(e) => {
            tracing::warn!(%did, error = %e, "resolving a caller failed");
            Err(Denial::new(
                problem::REGISTRY_UNAVAILABLE,
                "the registry could not be asked about the caller; try again",
            ))
        }
    }
}
