//! `verifier-bench`: the verifier layer's load harness. Prints each figure as `name: value`.
//!
//! A registry node runs in-process; a department accredited for `OfficialRole` has issued
//! one to a caller DID (signed here with civitas-core, as the issuer does) and serves its
//! status list. An axum route `GET /datasets/{name}` sits behind the layer with the example
//! gateway policy; audit records are written durably with group commit.
//!
//! Two timed phases of pre-signed, unique requests (fresh nonces), warm caches, `--clients`
//! concurrent callers of the router (in-process, no sockets):
//! - wallet-style presentations (no KB-JWT: the request signature is the key binding),
//! - presentations with a KB-JWT (one per request, bound to the request's nonce).
//!
//! The phases alternate for `--rounds` rounds. Around each round, civitas-core's own Ed25519
//! verify function is timed single-threaded over a message as long as those the round's
//! verifications cover (the signature base; with a KB-JWT, the mean of the base and the
//! KB-JWT's signing input), and the round's ratio is `requests_per_s` ÷ (verify rate ÷
//! `verifies_per_request`), where `verifies_per_request` is counted by civitas-core. The
//! figures printed are the medians of the rounds (`ratio_rounds` lists each), so that a
//! round slowed by another tenant of this shared machine does not decide the result; p50
//! and p99 are over every request of the phase.
//!
//! Run: `cargo run --release -p verifier --bin verifier-bench [-- --requests N --clients C --rounds R]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use civitas_client::RegistryClient;
use civitas_core::did::{Did, DidUrl};
use civitas_core::keys::SecretKey;
use civitas_core::ledger::{
    Classification, OpService, OpVerificationMethod, Operation, Signed, TrustAction, TrustEntry,
};
use civitas_core::proof::PinnedKeys;
use civitas_core::{httpsig, sdjwt};
use clap::Parser;
use serde_json::json;
use tower::ServiceExt as _;
use verifier::audit::AuditLog;
use verifier::{Checker, Policy, Settings, VerifiedCaller, Verifier, VerifierLayer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// Requests per phase.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent callers.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Timed rounds of each phase, alternating; the figures are their medians.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

const OFFICIAL: &str = "https://schemas.civitas.gov.example/vct/OfficialRole/v1";
const ORIGIN: &str = "https://data.bench.example";
const DISCLOSE: [&str; 3] = ["role", "clearance", "jurisdiction"];

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Median microseconds of one strict Ed25519 verification of a message of `len` bytes.
fn verify_us(key: &SecretKey, len: usize) -> f64 {
    let message = vec![0x5a_u8; len];
    let signature = key.sign(&message);
    let public = key.public_key();
    let mut samples = Vec::with_capacity(5_000);
    for _ in 0..5_000 {
        let start = Instant::now();
        let _ = std::hint::black_box(public.verify(std::hint::black_box(&message), &signature));
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("verifier-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A status list token of 2^17 entries, all valid, signed by the issuer key.
fn status_token(key: &SecretKey, kid: &DidUrl, uri: &str) -> anyhow::Result<String> {
    let list = civitas_core::status_list::StatusList::new(2, 1 << 17)?;
    let iat = now_s();
    let payload = json!({
        "sub": uri,
        "iat": iat,
        "exp": iat + 3600,
        "ttl": 1800,
        "status_list": {"bits": 2, "lst": list.encode()},
    });
    let header = json!({
        "alg": "EdDSA",
        "typ": civitas_core::status_list::STATUS_LIST_TYP,
        "kid": kid.to_string(),
    });
    Ok(civitas_core::jws::sign_compact(
        &serde_json::from_value(header)?,
        &serde_json::from_value(payload)?,
        key,
    )?)
}

/// An `OfficialRole` SD-JWT VC as the department's issuer makes one: the schema's
/// `vct#integrity`, holder binding to `holder`, status, the non-public claims disclosable.
fn official_role(
    issuer: &Did,
    kid: &DidUrl,
    key: &SecretKey,
    holder: &Did,
    holder_key: &SecretKey,
    status_uri: &str,
) -> anyhow::Result<String> {
    let schema = civitas_core::schema::CredentialSchema::parse(&std::fs::read(
        schemas_dir().join("OfficialRole.schema.json"),
    )?)?;
    let iat = now_s();
    let mut claims = sdjwt::SdValue::from_json(json!({
        "iss": issuer.to_string(),
        "sub": holder.to_string(),
        "iat": iat,
        "exp": iat + 86_400,
        "vct": OFFICIAL,
        "vct#integrity": schema.integrity(),
        "cnf": {"jwk": holder_key.public_key().to_jwk()},
        "status": {"status_list": {"idx": 4242, "uri": status_uri}},
        "department": issuer.to_string(),
        "name": "陈明",
        "role": "data-officer",
        "clearance": 4,
        "jurisdiction": "310000",
        "valid_from": "2026-01-01",
        "valid_until": "2027-12-31",
    }));
    for claim in ["name", "role", "clearance", "jurisdiction"] {
        claims.make_disclosable(claim)?;
    }
    let header = json!({"alg": "EdDSA", "typ": "dc+sd-jwt", "kid": kid.to_string()});
    Ok(sdjwt::issue(
        &serde_json::from_value(header)?,
        &claims,
        key,
        &mut rand::rngs::OsRng,
    )?)
}

fn schemas_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// A did:civ made and published here: (DID, #key-1, its secret).
async fn publish(
    registry: &RegistryClient,
    extra: impl FnOnce(&mut Operation),
) -> anyhow::Result<(Did, DidUrl, SecretKey)> {
    let rotation = SecretKey::generate();
    let key = SecretKey::generate();
    let mut op = Operation::create(
        vec![SecretKey::generate().public_key(), rotation.public_key()],
        key.public_key(),
        1,
    );
    extra(&mut op);
    let signed = Signed::sign(op, &rotation);
    let did = Did::civ_from_genesis_hash(signed.id().digest());
    registry.submit_operation(&signed).await?;
    Ok((did.clone(), did.with_fragment("key-1"), key))
}

async fn run(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    // The registry, with a root authority known in advance.
    let root_rotation = SecretKey::generate();
    let root_key = SecretKey::generate();
    let root_op = Signed::sign(
        Operation::create(
            vec![
                SecretKey::generate().public_key(),
                root_rotation.public_key(),
            ],
            root_key.public_key(),
            1,
        ),
        &root_rotation,
    );
    let root = Did::civ_from_genesis_hash(root_op.id().digest());
    let ledger = did_registry::Ledger::open(did_registry::LedgerOptions {
        data_dir: dir.join("registry"),
        origin: "bench.civitas/log".to_owned(),
        authorities: Some(vec![root.clone()]),
        recovery_window: None,
        idle_seal: Duration::from_secs(1),
    })
    .await
    .context("opening the ledger")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let registry_url = format!("http://{}", listener.local_addr()?);
    let note_key = ledger.verifier().clone();
    tokio::spawn(did_registry::serve(
        listener,
        did_registry::AppState {
            ledger,
            limits: None,
        },
        std::future::pending(),
    ));
    let client = || {
        RegistryClient::new(
            &registry_url,
            PinnedKeys {
                verifiers: vec![note_key.clone()],
                min_signatures: 1,
            },
        )
    };
    let registry = client()?;
    registry.submit_operation(&root_op).await?;

    // The department: its DID lists the issuer key and the status list's origin, served
    // here (the issuer crate's own path is exercised by issuer-bench and the e2e tests).
    let status_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer_url = format!("http://{}", status_listener.local_addr()?);
    let issuer_key = SecretKey::generate();
    let issuer_public = issuer_key.public_key();
    let url_for_did = issuer_url.clone();
    let (department, _, _) = publish(&registry, move |op| {
        op.verification_methods.push(OpVerificationMethod {
            id: "key-2".to_owned(),
            public_key_multibase: issuer_public,
        });
        op.assertion_method = vec!["key-2".to_owned()];
        op.services.push(OpService {
            id: "service".to_owned(),
            kind: "OID4VCI".to_owned(),
            service_endpoint: url_for_did,
        });
    })
    .await?;
    let kid = department.with_fragment("key-2");
    registry
        .submit_operation(&Signed::sign(
            TrustEntry {
                action: TrustAction::Accredit,
                issuer: department.clone(),
                vct: Some(OFFICIAL.to_owned()),
                max_level: Some(Classification::Sensitive),
                constraints: Vec::new(),
                prospective: false,
                prev: None,
                signer: root.with_fragment("key-1"),
            },
            &root_key,
        ))
        .await?;
    let status_uri = format!("{issuer_url}/status/1");
    let token = status_token(&issuer_key, &kid, &status_uri)?;
    tokio::spawn(async move {
        let app = axum::Router::new().route("/status/1", get(move || async move { token }));
        let _ = axum::serve(status_listener, app).await;
    });
    // The issuer never back-dates: iat after the seal that shows the accreditation.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // The caller, and its OfficialRole (10 claims, three disclosed per request).
    let (caller, caller_kid, caller_key) = publish(&registry, |_| {}).await?;
    let credential = official_role(
        &department,
        &kid,
        &issuer_key,
        &caller,
        &caller_key,
        &status_uri,
    )?;
    let credential = sdjwt::SdJwt::parse(&credential)?;
    let presentation = sdjwt::present(&credential, &DISCLOSE)?;

    // The protected route.
    let schemas = verifier::cli::load_schemas(&schemas_dir())?;
    let policy = Policy::from_toml(include_str!("../../examples/gateway-policy.toml"), &schemas)?;
    let (service, _, _) = publish(&registry, |_| {}).await?;
    let audit = Arc::new(AuditLog::open(&dir.join("audit"), service)?);
    let checker = Checker::new(
        policy,
        schemas,
        Settings::new(ORIGIN),
        Arc::new(client()?),
        reqwest::Client::new(),
    );
    let verifier = Arc::new(Verifier::new(checker, Arc::clone(&audit)));
    let router = axum::Router::new()
        .route(
            "/datasets/{name}",
            get(|caller: VerifiedCaller| async move { caller.did().to_string() }),
        )
        .layer(VerifierLayer::new(verifier));

    // A request and, when `measure`, the lengths of the messages its verifications cover:
    // the signature base, and the KB-JWT's signing input when it has one.
    let make = |kb: bool, measure: bool| -> anyhow::Result<(Request<Body>, Vec<usize>)> {
        let nonce = httpsig::generate_nonce();
        let url = format!("{ORIGIN}/datasets/population");
        let mut shown = presentation.clone();
        if kb {
            shown.push_str(&sdjwt::create_kb_jwt(
                &presentation,
                ORIGIN,
                &nonce,
                now_s(),
                &caller_key,
            )?);
        }
        let fields = [
            (httpsig::PRESENTATION_HEADER, shown.as_str()),
            (httpsig::PURPOSE_HEADER, "statistics"),
        ];
        let signed = httpsig::sign_request(
            &httpsig::RequestToSign {
                method: "GET",
                target_uri: &url,
                fields: &fields,
                body: b"",
                key_id: &caller_kid,
                created: now_s(),
                nonce: &nonce,
            },
            &caller_key,
        )?;
        let mut request = Request::get("/datasets/population");
        let mut all = Vec::new();
        for (name, value) in fields.iter().copied().chain(signed.fields()) {
            request = request.header(name, value);
            all.push((name, value));
        }
        if !measure {
            return Ok((request.body(Body::empty())?, Vec::new()));
        }
        let received = httpsig::Request::new("GET", &url, &all)?;
        let signature =
            httpsig::SignatureSet::from_request(&received)?.into_tagged(httpsig::TAG)?;
        let mut lengths = vec![httpsig::signature_base(&received, &signature)?.len()];
        if kb {
            let kb_jwt = shown.rsplit('~').next().unwrap_or_default();
            lengths.push(kb_jwt.rsplit_once('.').map_or(0, |(input, _)| input.len()));
        }
        Ok((request.body(Body::empty())?, lengths))
    };

    // Warm the caches: caller document, issuer verdict, status list, parsed presentation.
    for kb in [false, true] {
        let response = router.clone().oneshot(make(kb, false)?.0).await?;
        if !response.status().is_success() {
            let body = axum::body::to_bytes(response.into_body(), 1 << 16).await?;
            bail!("warm-up refused: {}", String::from_utf8_lossy(&body));
        }
    }

    println!("requests: {}", args.requests);
    println!("clients: {}", args.clients);
    println!("rounds: {}", args.rounds);
    let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for round in 0..args.rounds.max(1) {
        for kb in [false, true] {
            eprintln!(
                "round {round}: signing {} requests (kb-jwt: {kb})...",
                args.requests
            );
            let mut requests = Vec::with_capacity(args.requests);
            let mut lengths = Vec::new();
            for i in 0..args.requests {
                let (request, covered) = make(kb, i == 0)?;
                requests.push(std::sync::Mutex::new(Some(request)));
                if i == 0 {
                    lengths = covered;
                }
            }
            let message_len = lengths.iter().sum::<usize>() / lengths.len().max(1);
            let result = timed(
                &router,
                requests,
                args.clients,
                &audit,
                &caller_key,
                message_len,
            )
            .await?;
            rounds[usize::from(kb)].push(result);
        }
    }
    for (kb, results) in [false, true].into_iter().zip(&mut rounds) {
        let prefix = if kb { "kb_" } else { "" };
        let mut latencies: Vec<Duration> = results
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.latencies))
            .collect();
        latencies.sort();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        let median = |f: fn(&Round) -> f64| {
            let mut values: Vec<f64> = results.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values.get(values.len() / 2).copied().unwrap_or(0.0)
        };
        let fsyncs: u64 = results.iter().map(|r| r.fsyncs).sum();
        let requests: usize = results.iter().map(|r| r.requests).sum();
        let ratios: Vec<String> = results
            .iter()
            .map(|r| format!("{:.2}", r.ratio()))
            .collect();
        println!("{prefix}requests_per_s: {:.0}", median(|r| r.per_s));
        println!("{prefix}p50_ms: {:.2}", pct(0.5));
        println!("{prefix}p99_ms: {:.2}", pct(0.99));
        println!(
            "{prefix}verifies_per_request: {:.2}",
            median(|r| r.per_request)
        );
        println!(
            "{prefix}verify_message_bytes: {}",
            results.first().map_or(0, |r| r.message_len)
        );
        println!("{prefix}verify_us: {:.1}", median(|r| r.verify_us));
        println!("{prefix}verify_per_s: {:.0}", 1e6 / median(|r| r.verify_us));
        println!("{prefix}cpu_cores_used: {:.2}", median(|r| r.cores));
        println!("{prefix}audit_fsyncs: {fsyncs}");
        println!(
            "{prefix}records_per_fsync: {:.1}",
            requests as f64 / fsyncs.max(1) as f64
        );
        println!("{prefix}ratio_rounds: {}", ratios.join(" "));
        println!("{prefix}ratio_vs_verify_limit: {:.2}", median(Round::ratio));
    }
    Ok(())
}

/// One timed phase.
struct Round {
    requests: usize,
    per_s: f64,
    per_request: f64,
    /// One verification over a message of the covered length, measured right before and
    /// right after the phase (averaged).
    verify_us: f64,
    message_len: usize,
    cores: f64,
    fsyncs: u64,
    latencies: Vec<Duration>,
}

impl Round {
    /// Requests per second ÷ (verifications per second ÷ verifications per request).
    fn ratio(&self) -> f64 {
        self.per_s / (1e6 / self.verify_us / self.per_request)
    }
}

/// Sends `requests` through `router` from `clients` concurrent tasks and measures them.
async fn timed(
    router: &axum::Router,
    requests: Vec<std::sync::Mutex<Option<Request<Body>>>>,
    clients: usize,
    audit: &AuditLog,
    caller_key: &SecretKey,
    message_len: usize,
) -> anyhow::Result<Round> {
    let total = requests.len();
    let requests = Arc::new(requests);
    let verify_before = verify_us(caller_key, message_len);
    let next = Arc::new(AtomicUsize::new(0));
    let verifications_before = civitas_core::keys::verification_count();
    let fsyncs_before = audit.fsync_count();
    // The process's CPU time (user + system, every thread), where the platform reports it.
    let cpu_before = cpu_time::ProcessTime::try_now().ok();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (router, requests, next) = (router.clone(), requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(slot) = requests.get(i) else {
                    return anyhow::Ok(latencies);
                };
                let request = slot
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take()
                    .context("request used twice")?;
                let sent = Instant::now();
                let response = router.clone().oneshot(request).await?;
                latencies.push(sent.elapsed());
                if !response.status().is_success() {
                    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await?;
                    bail!("request {i} refused: {}", String::from_utf8_lossy(&body));
                }
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_before
        .and_then(|t| t.try_elapsed().ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let verifications = civitas_core::keys::verification_count() - verifications_before;
    let fsyncs = audit.fsync_count() - fsyncs_before;
    let verify_after = verify_us(caller_key, message_len);
    Ok(Round {
        requests: total,
        per_s: total as f64 / elapsed,
        per_request: verifications as f64 / total as f64,
        verify_us: (verify_before + verify_after) / 2.0,
        message_len,
        cores: cpu / elapsed,
        fsyncs,
        latencies,
    })
}
