//! The `verifier` service: the layer as a data gateway in front of an HTTP data service,
//! the verification API, the audit API and the anchoring of audit batches.
//!
//! - every route of the policy: checked by the layer, then forwarded to the upstream with
//!   the exact matched path and query, inbound `Civitas-*` and signature headers removed and
//!   the verified caller in `Civitas-Caller-*` headers, signed by the gateway's own service
//!   key (RFC 9421, tag `civitas-gateway/1`; see [`verify_forwarded`]);
//! - `POST /presentations/verify`: full verification of one presentation;
//! - `GET /audit?caller=&subject=&since=` and `GET /audit/{seq}/proof`: signed requests;
//!   records are served to their caller, their data subject, and supervisors (an
//!   `OfficialRole` with role `supervisor` from an accredited issuer);
//! - `GET /metrics`: counters, including Ed25519 verifications.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use civitas_client::RegistryClient;
use civitas_client::credential::Expectations;
use civitas_core::audit::RecordProof;
use civitas_core::did::{Did, DidUrl};
use civitas_core::encoding;
use civitas_core::httpsig::{self, GATEWAY_TAG, Window};
use civitas_core::keys::{PublicKey, SecretKey};
use civitas_core::ledger::{OpService, Operation, Signed};
use civitas_core::problem;
use civitas_core::schema::SchemaSet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditLog, Query};
use crate::caller::VerifiedCaller;
use crate::check::{CALLER_HEADER_PREFIX, Checker, Settings};
use crate::denial::Denial;
use crate::layer::{Verifier, VerifierLayer, request_id};
use crate::policy::Policy;

/// The service type under which the gateway's DID lists its public origin.
pub const SERVICE_TYPE: &str = "CivitasVerifier";
/// The file holding the service identity (mode 0600).
const IDENTITY_FILE: &str = "service-identity.json";
/// Largest upstream answer relayed.
const MAX_UPSTREAM_BYTES: usize = 16 * 1024 * 1024;
/// Most records one audit query returns.
const MAX_AUDIT_RECORDS: usize = 1000;

/// The gateway's own did:civ and keys.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityFile {
    did: String,
    recovery: String,
    rotation: String,
    key1: String,
    /// The create operation, kept until the ledger has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unpublished: Option<String>,
}

/// The service's identity: its DID and the key that signs anchors and forwarded requests.
pub struct Identity {
    did: Did,
    key: Arc<SecretKey>,
    kid: DidUrl,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The DID.
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// The public key that signs forwarded requests.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// Loads the identity from `dir`, or on first start makes a did:civ listing
    /// `public_origin` as its `CivitasVerifier` service and publishes it.
    pub async fn load_or_create(
        dir: &Path,
        public_origin: &str,
        registry: &RegistryClient,
    ) -> anyhow::Result<(Self, bool)> {
        use anyhow::Context as _;
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

        let path = dir.join(IDENTITY_FILE);
        let write = |file: &IdentityFile| -> anyhow::Result<()> {
            let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            out.write_all(&serde_json::to_vec_pretty(file)?)?;
            out.sync_all()?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let (mut file, created) = if path.exists() {
            let meta = std::fs::metadata(&path)?;
            anyhow::ensure!(
                meta.permissions().mode() & 0o077 == 0,
                "{} is readable by group or others; run 'chmod 600 {}'",
                path.display(),
                path.display()
            );
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path)?);
            let file: IdentityFile = serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged", path.display()))?;
            (file, false)
        } else {
            let recovery = SecretKey::generate();
            let rotation = SecretKey::generate();
            let key1 = SecretKey::generate();
            let mut op = Operation::create(
                vec![recovery.public_key(), rotation.public_key()],
                key1.public_key(),
                1,
            );
            op.services.push(OpService {
                id: "verifier".to_owned(),
                kind: SERVICE_TYPE.to_owned(),
                service_endpoint: public_origin.to_owned(),
            });
            let signed = Signed::sign(op, &rotation);
            let did = Did::civ_from_genesis_hash(signed.id().digest());
            let file = IdentityFile {
                did: did.to_string(),
                recovery: recovery.to_multibase_secret().to_string(),
                rotation: rotation.to_multibase_secret().to_string(),
                key1: key1.to_multibase_secret().to_string(),
                unpublished: Some(String::from_utf8_lossy(signed.bytes()).into_owned()),
            };
            // The keys are on disk before the ledger knows the DID.
            write(&file)?;
            (file, true)
        };
        if let Some(op) = &file.unpublished {
            let signed = Signed::<Operation>::parse(op.as_bytes())
                .context("the stored create operation is damaged")?;
            match registry.submit_operation(&signed).await {
                Ok(_) => {}
                Err(e) if e.problem_type().is_some_and(|t| t.ends_with("did-exists")) => {}
                Err(e) => return Err(e).context("publishing the service DID"),
            }
            file.unpublished = None;
            write(&file)?;
        }
        let did: Did = file.did.parse().context("the stored DID is malformed")?;
        let key = SecretKey::from_multibase_secret(&file.key1)
            .context("the stored service key is malformed")?;
        let kid = did.with_fragment("key-1");
        Ok((
            Self {
                did,
                key: Arc::new(key),
                kid,
            },
            created,
        ))
    }
}

/// What the service needs.
#[derive(Debug)]
pub struct GatewayOptions {
    /// The gateway policy.
    pub policy: Policy,
    /// The schemas.
    pub schemas: SchemaSet,
    /// Checker settings.
    pub settings: Settings,
    /// The registry.
    pub registry: Arc<RegistryClient>,
    /// The audit store.
    pub audit: Arc<AuditLog>,
    /// The service identity.
    pub identity: Arc<Identity>,
    /// The data service behind the gateway.
    pub upstream: Option<String>,
    /// Anchoring cadence.
    pub anchor_interval: Duration,
}

/// Shared state of the service.
#[derive(Debug, Clone)]
pub struct Gateway {
    verifier: Arc<Verifier>,
    audit_verifier: Arc<Verifier>,
    supervisor_verifier: Option<Arc<Verifier>>,
    identity: Arc<Identity>,
    registry: Arc<RegistryClient>,
    schemas: Arc<SchemaSet>,
    http: reqwest::Client,
    upstream: Option<String>,
    anchor_interval: Duration,
}

/// The audit API's own routes: any signed caller (who then sees only their records).
const AUDIT_POLICY: &str = r#"
[[route]]
method = "GET"
path = "/audit"
credential = "none"
caller_methods = ["civ", "key", "jwk"]

[[route]]
method = "GET"
path = "/audit/{seq}/proof"
credential = "none"
caller_methods = ["civ", "key", "jwk"]
"#;

/// The audit API for supervisors: an `OfficialRole` with role `supervisor`.
const SUPERVISOR_POLICY: &str = r#"
[[route]]
method = "GET"
path = "/audit"
credential = "OfficialRole"
disclose = ["role"]
constraints = ['role == "supervisor"']
max_classification = "internal"

[[route]]
method = "GET"
path = "/audit/{seq}/proof"
credential = "OfficialRole"
disclose = ["role"]
constraints = ['role == "supervisor"']
max_classification = "internal"
"#;

impl Gateway {
    /// Builds the service state.
    pub fn new(options: GatewayOptions) -> Result<Self, crate::policy::PolicyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        let make = |policy: Policy| {
            Verifier::new(
                Checker::new(
                    policy,
                    options.schemas.clone(),
                    options.settings.clone(),
                    Arc::clone(&options.registry),
                    http.clone(),
                ),
                Arc::clone(&options.audit),
            )
        };
        // Callers reading their own records: denials are recorded, reads are not (each read
        // would add a record to what the caller reads). Supervisors' reads are recorded.
        let own_records = Arc::new(
            make(Policy::from_toml(AUDIT_POLICY, &options.schemas)?).recording_denials_only(),
        );
        let supervisor_verifier = match Policy::from_toml(SUPERVISOR_POLICY, &options.schemas) {
            Ok(policy) => Some(Arc::new(make(policy))),
            Err(e) => {
                tracing::warn!(error = %e, "no OfficialRole schema: supervisors cannot read the audit trail");
                None
            }
        };
        Ok(Self {
            verifier: Arc::new(make(options.policy)),
            audit_verifier: own_records,
            supervisor_verifier,
            identity: options.identity,
            registry: options.registry,
            schemas: Arc::new(options.schemas),
            http,
            upstream: options.upstream.map(|u| u.trim_end_matches('/').to_owned()),
            anchor_interval: options.anchor_interval,
        })
    }

    /// The service DID.
    pub fn did(&self) -> &Did {
        &self.identity.did
    }

    /// The gateway's verifier (policy routes).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The router: the service's own routes, everything else through the layer to the
    /// upstream.
    pub fn router(&self) -> Router {
        let protected = Router::new()
            .fallback(forward)
            .layer(VerifierLayer::new(Arc::clone(&self.verifier)))
            .with_state(self.clone());
        Router::new()
            .route("/presentations/verify", post(verify_presentation))
            .route("/audit", get(audit_api))
            .route("/audit/{seq}/proof", get(audit_api))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
            .fallback_service(protected)
    }

    /// Anchors audit batches every `anchor_interval` until dropped.
    pub async fn anchor_loop(self) {
        crate::audit::anchor_loop(
            Arc::clone(self.verifier.audit()),
            self.registry,
            Arc::clone(&self.identity.key),
            self.identity.kid.clone(),
            self.anchor_interval,
        )
        .await;
    }
}

/// Headers never forwarded upstream: hop-by-hop ones, and those the gateway consumes.
fn forwardable(name: &HeaderName) -> bool {
    let n = name.as_str();
    !(matches!(
        n,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "signature"
            | "signature-input"
            | "accept-signature"
            | "content-digest"
    ) || n.starts_with("civitas-"))
}

/// The `Civitas-Caller-*` headers telling the upstream who is asking.
fn caller_headers(caller: &VerifiedCaller) -> Vec<(String, String)> {
    let mut out = vec![
        ("civitas-caller-did".to_owned(), caller.did().to_string()),
        (
            "civitas-caller-key-id".to_owned(),
            caller.key_id().to_string(),
        ),
        (
            "civitas-caller-request-id".to_owned(),
            caller.request_id().to_owned(),
        ),
        (
            "civitas-caller-audit-seq".to_owned(),
            caller.audit_seq().to_string(),
        ),
    ];
    if let Some(p) = caller.purpose() {
        out.push(("civitas-caller-purpose".to_owned(), p.to_owned()));
    }
    if let Some(s) = caller.subject() {
        out.push(("civitas-caller-subject".to_owned(), s.to_owned()));
    }
    if let Some(c) = caller.credential() {
        out.push(("civitas-caller-credential".to_owned(), c.id().to_owned()));
        out.push(("civitas-caller-vct".to_owned(), c.vct().to_owned()));
        out.push(("civitas-caller-issuer".to_owned(), c.issuer().to_string()));
        let claims = serde_json::to_vec(c.claims()).unwrap_or_default();
        out.push((
            "civitas-caller-claims".to_owned(),
            encoding::b64url(&claims),
        ));
    }
    out
}

fn upstream_error(detail: impl Into<String>) -> Response {
    Denial::new(problem::UPSTREAM_UNAVAILABLE, detail).into_response()
}

/// Forwards a verified request to the upstream.
async fn forward(State(gw): State<Gateway>, caller: VerifiedCaller, request: Request) -> Response {
    let Some(upstream) = &gw.upstream else {
        return upstream_error("this gateway has no upstream data service (--upstream)");
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return upstream_error("the request body could not be read");
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", axum::http::uri::PathAndQuery::as_str);
    let url = format!("{upstream}{path}");
    let mut fields: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| forwardable(name))
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    fields.extend(caller_headers(&caller));
    let borrowed: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let nonce = httpsig::generate_nonce();
    let signed = match httpsig::sign_forwarded(
        &httpsig::RequestToSign {
            method: parts.method.as_str(),
            target_uri: &url,
            fields: &borrowed,
            body: &body,
            key_id: &gw.identity.kid,
            created: chrono::Utc::now().timestamp(),
            nonce: &nonce,
        },
        &gw.identity.key,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "signing a forwarded request failed");
            return upstream_error("the gateway could not sign the forwarded request");
        }
    };
    let mut out = gw.http.request(parts.method.clone(), &url).body(body);
    for (name, value) in borrowed.iter().copied().chain(signed.fields()) {
        out = out.header(name, value);
    }
    let response = match out.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, %url, "upstream unreachable");
            return upstream_error("the upstream data service could not be reached");
        }
    };
    let status = response.status();
    let mut headers = HeaderMap::new();
    for (name, value) in response.headers() {
        if forwardable(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut bytes = Vec::new();
    let mut response = response;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_UPSTREAM_BYTES {
                    return upstream_error("the upstream answer is too large");
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "reading the upstream answer failed");
                return upstream_error("the upstream answer could not be read");
            }
        }
    }
    let mut answer = (status, Body::from(bytes)).into_response();
    *answer.headers_mut() = headers;
    answer
}

/// A request the gateway forwarded, as its upstream sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedCaller {
    /// The `civitas-caller-*` headers (name without the prefix → value).
    pub headers: BTreeMap<String, String>,
}

/// For an upstream: checks that a request came through the gateway whose key is
/// `gateway_key` — the `civitas-gateway/1` signature covers the method, the target URI (as
/// the upstream is reached: `origin` + path), the body digest and every `civitas-caller-*`
/// header — and returns those headers.
pub fn verify_forwarded(
    method: &str,
    origin: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    gateway_key: &PublicKey,
    now: i64,
) -> Result<ForwardedCaller, Denial> {
    let bad =
        |e: &dyn std::fmt::Display| Denial::new(problem::INVALID_REQUEST_SIGNATURE, e.to_string());
    let fields: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let target = httpsig::target_uri(origin, path_and_query).map_err(|e| bad(&e))?;
    let request = httpsig::Request::new(method, &target, &fields).map_err(|e| bad(&e))?;
    let signature = httpsig::SignatureSet::from_request(&request)
        .and_then(|set| set.into_tagged(GATEWAY_TAG))
        .map_err(|e| bad(&e))?;
    let covered: Vec<&str> = signature.components().collect();
    let mut caller = BTreeMap::new();
    for (name, value) in &fields {
        if let Some(rest) = name.strip_prefix(CALLER_HEADER_PREFIX) {
            if !covered.contains(name) {
                return Err(bad(&format!(
                    "{name} is not covered by the gateway signature"
                )));
            }
            caller.insert(rest.to_owned(), (*value).to_owned());
        }
    }
    for required in ["@method", "@target-uri", "content-digest"] {
        if !covered.contains(&required) {
            return Err(bad(&format!(
                "the gateway signature does not cover {required}"
            )));
        }
    }
    let created = signature.created().unwrap_or(i64::MIN);
    let window = Window::default();
    if created < now - i64::from(window.max_age) || created > now + i64::from(window.max_skew) {
        return Err(Denial::new(
            problem::SIGNATURE_EXPIRED,
            "the gateway signature is outside its window",
        ));
    }
    request.verify_content_digest(body).map_err(|e| bad(&e))?;
    let base = httpsig::signature_base(&request, &signature).map_err(|e| bad(&e))?;
    httpsig::verify(&signature, &base, gateway_key).map_err(|e| bad(&e))?;
    Ok(ForwardedCaller { headers: caller })
}

/// `POST /presentations/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    presentation: String,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

async fn verify_presentation(State(gw): State<Gateway>, body: Bytes) -> Response {
    let request: VerifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Denial::new(
                problem::MALFORMED_JSON,
                format!("expected {{\"presentation\", \"audience\"?, \"nonce\"?}}: {e}"),
            )
            .into_response();
        }
    };
    let key_binding = match (request.audience, request.nonce) {
        (Some(a), Some(n)) => Some((a, n)),
        (None, None) => None,
        _ => {
            return Denial::new(
                problem::INVALID_QUERY,
                "give both audience and nonce, or neither",
            )
            .into_response();
        }
    };
    let expect = Expectations {
        key_binding,
        max_status_age_s: gw.verifier.checker().settings().max_status_age.as_secs(),
        ..Expectations::default()
    };
    match civitas_client::credential::verify(
        &gw.registry,
        &gw.http,
        &gw.schemas,
        &request.presentation,
        &expect,
        chrono::Utc::now().timestamp(),
    )
    .await
    {
        Ok(v) => Json(json!({
            "valid": true,
            "id": v.id,
            "iss": v.registered.iss.to_string(),
            "sub": v.registered.sub,
            "vct": v.registered.vct,
            "claims": v.claims,
            "disclosed": v.disclosed,
        }))
        .into_response(),
        Err(e) => Denial::new(e.problem(), e.to_string()).into_response(),
    }
}

/// `GET /audit` and `GET /audit/{seq}/proof`, for signed callers.
async fn audit_api(State(gw): State<Gateway>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Denial::new(problem::PAYLOAD_TOO_LARGE, "expected no body").into_response();
    };
    let id = request_id(&parts);
    let supervisor = parts.headers.contains_key(httpsig::PRESENTATION_HEADER);
    let verifier = match (&gw.supervisor_verifier, supervisor) {
        (Some(v), true) => v,
        (None, true) => {
            return Denial::new(
                problem::NOT_AUTHORIZED,
                "this service has no OfficialRole schema; supervisors cannot be recognised",
            )
            .into_response();
        }
        (_, false) => &gw.audit_verifier,
    };
    let caller = match verifier.decide(&parts, &bytes, &id).await {
        Ok(c) => c,
        Err(denial) => return denial.into_response(),
    };
    let me = caller.did().to_string();
    let audit = gw.verifier.audit();
    let allowed = |record: &civitas_core::audit::AuditRecord| {
        supervisor
            || record.caller.as_deref() == Some(me.as_str())
            || record.subject.as_deref() == Some(me.as_str())
    };
    let path = parts.uri.path();
    if let Some(seq) = path
        .strip_prefix("/audit/")
        .and_then(|rest| rest.strip_suffix("/proof"))
    {
        let Ok(seq) = seq.parse::<u64>() else {
            return Denial::new(problem::INVALID_QUERY, "expected a record number").into_response();
        };
        let Ok(record) = audit.read(seq) else {
            return Denial::new(problem::NOT_FOUND, format!("no record {seq}")).into_response();
        };
        if !allowed(&record) {
            return Denial::new(
                problem::NOT_AUTHORIZED,
                "records are served to their caller, their data subject and supervisors",
            )
            .into_response();
        }
        return match audit.proof(seq) {
            Ok(Some(proof)) => Json::<RecordProof>(proof).into_response(),
            Ok(None) => (
                StatusCode::ACCEPTED,
                Json(json!({"state": "pending", "seq": seq})),
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "reading an audit proof failed");
                Denial::new(problem::INTERNAL, "the proof could not be read").into_response()
            }
        };
    }
    let params: BTreeMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            url_pairs(q)
                .into_iter()
                .collect::<BTreeMap<String, String>>()
        })
        .unwrap_or_default();
    for key in params.keys() {
        if !matches!(key.as_str(), "caller" | "subject" | "since" | "limit") {
            return Denial::new(
                problem::INVALID_QUERY,
                format!("unknown parameter {key:?}: expected caller, subject, since, limit"),
            )
            .into_response();
        }
    }
    let since_ms = match params.get("since") {
        None => None,
        Some(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => u64::try_from(t.timestamp_millis()).ok(),
            Err(_) => {
                return Denial::new(problem::INVALID_QUERY, "since: expected an RFC 3339 time")
                    .into_response();
            }
        },
    };
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(MAX_AUDIT_RECORDS)
        .min(MAX_AUDIT_RECORDS);
    let queries: Vec<Query> = match (params.get("caller"), params.get("subject")) {
        (None, None) if !supervisor => vec![
            Query {
                caller: Some(me.clone()),
                ..Query::default()
            },
            Query {
                subject: Some(me.clone()),
                ..Query::default()
            },
        ],
        (None, None) => vec![Query::default()],
        (caller, subject) => {
            if !supervisor && caller.is_none_or(|c| *c != me) && subject.is_none_or(|s| *s != me) {
                return Denial::new(
                    problem::NOT_AUTHORIZED,
                    "you may list records where you are the caller or the data subject",
                )
                .into_response();
            }
            vec![Query {
                caller: caller.cloned(),
                subject: subject.cloned(),
                ..Query::default()
            }]
        }
    };
    let mut listed = BTreeMap::new();
    for mut q in queries {
        q.since_ms = since_ms;
        q.limit = limit;
        match audit.query(&q) {
            Ok(records) => {
                for r in records {
                    if allowed(&r.record) {
                        listed.insert(r.record.seq, r);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reading audit records failed");
                return Denial::new(problem::INTERNAL, "the records could not be read")
                    .into_response();
            }
        }
    }
    let records: Vec<Value> = listed
        .into_values()
        .map(|l| json!({"seq": l.record.seq, "state": l.state, "record": l.record}))
        .collect();
    Json(json!({"service": gw.identity.did.to_string(), "records": records})).into_response()
}

/// Decodes `a=b&c=d` (percent-encoding and `+`).
fn url_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// `GET /metrics` (Prometheus text).
async fn metrics(State(gw): State<Gateway>) -> Response {
    let audit = gw.verifier.audit();
    let text = format!(
        "# TYPE civitas_ed25519_verifications_total counter\ncivitas_ed25519_verifications_total {}\n# TYPE civitas_audit_records gauge\ncivitas_audit_records {}\n# TYPE civitas_audit_fsyncs_total counter\ncivitas_audit_fsyncs_total {}\n",
        civitas_core::keys::verification_count(),
        audit.len(),
        audit.fsync_count(),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}
