//! `issuer-bench`: the issuer's load harness. Prints each figure as `name: value`.
//!
//! A registry node runs in-process (rate limits off) with a root authority and a department
//! DID accredited for a benchmark credential type of 10 selectively disclosable claims.
//! The timed phase is cut into `--segments` (15). Before each, outside the clock, its offers,
//! access tokens and holder proofs are made through the issuer's own logic; then
//! `--clients` concurrent tasks run the credential endpoint's logic (`issue::issue`):
//! access token, holder proof (a `jwk` proof, verified), the issuer's standing as of `iat`,
//! the plan, concealment and signature, and the status index reservation and used-up token
//! written durably with group commit before the credential is returned.
//!
//! - `credentials_per_s`: credentials issued per second.
//! - `fsyncs`, `credentials_per_fsync`: from the store's log, in the segments.
//! - `cpu_us_per_credential`, `cpu_cores_used`: the process's CPU time (user + system) in
//!   the timed phase, per credential and per second of it.
//! - `sign_us`, `verify_us`: one Ed25519 signature over a message as long as a credential's
//!   signing input and one strict verification over one as long as a proof's (the
//!   `*_message_bytes` lines), measured single-threaded in the same run, just before and
//!   just after each segment (the medians);
//! - `ratio_segments`: each segment's rate × (`sign_us` + `verify_us`) / 10^6, with the
//!   baselines measured just before and just after that segment (the machine is shared, and
//!   its speed drifts within a run); `ratio_vs_sign_verify_limit` is their median.
//!
//! Run: `cargo run --release -p issuer --bin issuer-bench [-- --credentials N --clients C]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use civitas_client::RegistryClient;
use civitas_core::did::Did;
use civitas_core::keys::SecretKey;
use civitas_core::ledger::{
    Classification, OpService, OpVerificationMethod, Operation, Signed, TrustAction, TrustEntry,
};
use civitas_core::proof::PinnedKeys;
use civitas_core::schema::SchemaSet;
use clap::Parser;

/// Issuance allocates many small, short-lived buffers from several threads at once, where
/// mimalloc measured markedly faster than the system allocator (see ARCHITECTURE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use issuer::admin::OfferRequest;
use issuer::schemas::Schemas;
use issuer::store::Store;
use issuer::{AppState, IssuerOptions};
use serde_json::{Map, Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Credentials to issue in the timed phase.
    #[arg(long, default_value_t = 60_000)]
    credentials: usize,
    /// Concurrent requests.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Parts of the timed phase, each between two baseline measurements.
    #[arg(long, default_value_t = 15)]
    segments: usize,
}

const VCT: &str = "https://schemas.civitas.gov.example/vct/BenchRecord/v1";
const CLAIMS: usize = 10;

/// A credential type of 10 `internal` claims: all selectively disclosable.
fn bench_schema() -> Vec<u8> {
    let mut properties = Map::new();
    for i in 0..CLAIMS {
        properties.insert(
            format!("field_{i}"),
            json!({
                "type": "string",
                "maxLength": 64,
                "x-classification": "internal",
                "x-display": [
                    {"locale": "zh-CN", "name": format!("字段{i}")},
                    {"locale": "en-US", "name": format!("Field {i}")}
                ]
            }),
        );
    }
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "BenchRecord",
        "vct": VCT,
        "x-display": [
            {"locale": "zh-CN", "name": "基准记录"},
            {"locale": "en-US", "name": "Benchmark record"}
        ],
        "type": "object",
        "additionalProperties": false,
        "required": (0..CLAIMS).map(|i| format!("field_{i}")).collect::<Vec<_>>(),
        "properties": properties,
    });
    serde_json::to_vec_pretty(&schema).unwrap_or_default()
}

fn claims() -> Map<String, Value> {
    (0..CLAIMS)
        .map(|i| {
            (
                format!("field_{i}"),
                json!(format!("value number {i} of the record")),
            )
        })
        .collect()
}

fn now_s() -> i64 {
    issuer::now_s()
}

/// The median of `samples` (0 when empty).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

/// Issues the credentials of `prepared` through the credential endpoint's logic from
/// `clients` concurrent tasks; returns the seconds it took.
async fn issue_all(
    app: &AppState,
    prepared: &Arc<Vec<(String, String)>>,
    clients: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (app, prepared, next) = (app.clone(), prepared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((token, proof)) = prepared.get(i) else {
                    return anyhow::Ok(());
                };
                let issued = issuer::issue::issue(
                    &app,
                    token,
                    "BenchRecord",
                    std::slice::from_ref(proof),
                    now_s(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("credential {i}: {}", e.description))?;
                if issued.len() != 1 || issued[0].matches('~').count() < CLAIMS + 1 {
                    bail!("credential {i} does not have {CLAIMS} disclosures");
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Part `i` of `total` cut into `parts` parts whose sizes differ by at most one.
fn share(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

/// `n` offers prepared by `tasks` concurrent tasks (so that their writes share fdatasyncs,
/// as the timed phase's do).
async fn prepare(
    app: &AppState,
    department: &Did,
    public_url: &str,
    n: usize,
    tasks: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let tasks = tasks.clamp(1, n.max(1));
    let mut set = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let count = share(n, tasks, task);
        let (app, department, public_url) =
            (app.clone(), department.clone(), public_url.to_owned());
        set.spawn(async move {
            let mut prepared = Vec::with_capacity(count);
            for _ in 0..count {
                prepared.push(prepare_one(&app, &department, &public_url).await?);
            }
            anyhow::Ok(prepared)
        });
    }
    let mut prepared = Vec::with_capacity(n);
    while let Some(part) = set.join_next().await {
        prepared.extend(part??);
    }
    Ok(prepared)
}

/// One offer of the benchmark type made and redeemed through the issuer's own logic: its
/// access token, and a holder's `jwk` proof over a fresh `c_nonce`.
async fn prepare_one(
    app: &AppState,
    department: &Did,
    public_url: &str,
) -> anyhow::Result<(String, String)> {
    let offer = issuer::admin::make_offer(
        app,
        department,
        OfferRequest {
            credential_type: "BenchRecord".to_owned(),
            claims: claims(),
            holder: None,
            valid_for_s: None,
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (token, _) = issuer::oid4vci::redeem(app, &offer.pre_authorized_code, offer.tx_code)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.description))?;
    let holder = SecretKey::generate();
    let nonce = app
        .ephemeral
        .issue_nonce(issuer::now_ms())
        .context("the issuer has no c_nonce to give")?;
    let mut header = Map::new();
    header.insert("alg".to_owned(), json!("EdDSA"));
    header.insert("typ".to_owned(), json!("openid4vci-proof+jwt"));
    header.insert("jwk".to_owned(), json!(holder.public_key().to_jwk()));
    let mut payload = Map::new();
    payload.insert("aud".to_owned(), json!(public_url));
    payload.insert("iat".to_owned(), json!(now_s()));
    payload.insert("nonce".to_owned(), json!(nonce));
    let proof = civitas_core::jws::sign_compact(&header, &payload, &holder)?;
    Ok((token, proof))
}

/// Median time of `f` over `n` runs, microseconds.
fn time_us(n: usize, mut f: impl FnMut()) -> f64 {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f();
        samples.push(start.elapsed().as_secs_f64() * 1e6);
    }
    median(samples)
}

/// Median microseconds of one Ed25519 signature over `sign_len` bytes and one strict
/// verification over `verify_len` bytes, single-threaded.
fn baseline(key: &SecretKey, sign_len: usize, verify_len: usize) -> (f64, f64) {
    let to_sign = vec![0x5a_u8; sign_len];
    let to_verify = vec![0xa5_u8; verify_len];
    let signature = key.sign(&to_verify);
    let public = key.public_key();
    let sign_us = time_us(5_000, || {
        std::hint::black_box(key.sign(std::hint::black_box(&to_sign)));
    });
    let verify_us = time_us(5_000, || {
        let _ = std::hint::black_box(public.verify(&to_verify, &signature));
    });
    (sign_us, verify_us)
}

/// The length of a compact JWS's signing input (what its signature covers).
fn signing_input_len(jws: &str) -> usize {
    jws.rsplit_once('.')
        .map_or(jws.len(), |(input, _)| input.len())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A segment's proofs are all made before it starts, each with a c_nonce, and the issuer
    // keeps at most MAX_NONCES outstanding.
    let most = issuer::oid4vci::MAX_NONCES;
    if args.segments == 0 || args.credentials < args.segments {
        bail!(
            "expected at least one segment and at least one credential per segment, found \
             --segments {} and --credentials {}",
            args.segments,
            args.credentials
        );
    }
    if args.credentials.div_ceil(args.segments) > most {
        bail!(
            "expected at most {most} credentials per segment (each has a c_nonce outstanding \
             before its segment starts), found {} in {} segments",
            args.credentials,
            args.segments
        );
    }
    let dir = std::env::temp_dir().join(format!("issuer-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
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
    let root = Did::civ_from_genesis_hash(&civitas_core::encoding::sha256(root_op.bytes()));
    let ledger = did_registry::Ledger::open(did_registry::LedgerOptions {
        data_dir: dir.join("registry"),
        origin: "bench.civitas/log".to_owned(),
        authorities: Some(vec![root.clone()]),
        recovery_window: None,
        idle_seal: Duration::from_secs(10),
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

    // The department: its DID lists the issuer key and URL.
    let issuer_key = SecretKey::generate();
    let (dept_rotation, dept_key) = (SecretKey::generate(), SecretKey::generate());
    let public_url = "http://127.0.0.1:9".to_owned();
    let mut op = Operation::create(
        vec![
            SecretKey::generate().public_key(),
            dept_rotation.public_key(),
        ],
        dept_key.public_key(),
        1,
    );
    op.verification_methods.push(OpVerificationMethod {
        id: "key-2".to_owned(),
        public_key_multibase: issuer_key.public_key(),
    });
    op.assertion_method = vec!["key-2".to_owned()];
    op.services.push(OpService {
        id: "service".to_owned(),
        kind: "OID4VCI".to_owned(),
        service_endpoint: public_url.clone(),
    });
    let dept_op = Signed::sign(op, &dept_rotation);
    let department = Did::civ_from_genesis_hash(&civitas_core::encoding::sha256(dept_op.bytes()));
    registry.submit_operation(&dept_op).await?;
    let accreditation = TrustEntry {
        action: TrustAction::Accredit,
        issuer: department.clone(),
        vct: Some(VCT.to_owned()),
        max_level: Some(Classification::Sensitive),
        constraints: Vec::new(),
        prospective: false,
        prev: None,
        signer: root.with_fragment("key-1"),
    };
    registry
        .submit_operation(&Signed::sign(accreditation, &root_key))
        .await?;

    let schemas = Schemas::from_set(SchemaSet::from_files([(
        "BenchRecord.schema.json".to_owned(),
        bench_schema(),
    )])?)?;
    let store = Store::open(&dir.join("issuer"))?;
    let app = AppState::start(IssuerOptions {
        store: store.clone(),
        key: issuer_key.clone(),
        did: department.clone(),
        public_url: public_url.clone(),
        registry: client()?,
        schemas,
        operators: vec![department.clone()],
        status_interval: Duration::from_secs(3600),
        audit: Arc::new(verifier::audit::AuditLog::open(
            &dir.join("audit"),
            department.clone(),
        )?),
    })
    .await?;

    // One warm-up issuance outside the clock: the first one asks the registry.
    let (token, proof) = prepare_one(&app, &department, &public_url).await?;
    let proof_len = signing_input_len(&proof);
    let warm = issuer::issue::issue(&app, &token, "BenchRecord", &[proof], now_s())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.description))?;
    let credential_len = warm
        .first()
        .and_then(|c| c.split('~').next())
        .map_or(0, signing_input_len);

    let segments = args.segments;
    eprintln!(
        "issuing {} credentials in {segments} segments...",
        args.credentials
    );
    // The machine is shared and its speed drifts, so the timed phase is cut into segments,
    // each with its own baseline measured just before and just after it: one signature over a
    // message as long as a credential's signing input and one strict verification over one
    // as long as a proof's. So each segment's ratio compares figures taken within a second
    // or so of each other; the run reports their median.
    let mut fsyncs = 0;
    // The process's CPU time (user + system, every thread), where the platform reports it.
    let mut cpu = Some(Duration::ZERO);
    let mut elapsed = 0.0;
    let mut baselines = Vec::with_capacity(2 * segments);
    let mut ratios = Vec::with_capacity(segments);
    for segment in 0..segments {
        // The segment's offers, tokens, nonces and holder proofs, made just before it and
        // outside the clock (so within their lifetimes however long the run).
        let n = share(args.credentials, segments, segment);
        let prepared = Arc::new(prepare(&app, &department, &public_url, n, args.clients).await?);
        // sled writes the preparation's pages in the background: let it, before the clock.
        store.settle().await?;
        let before = baseline(&issuer_key, credential_len, proof_len);
        let fsyncs_before = store.fsync_count();
        let cpu_before = cpu_time::ProcessTime::try_now().ok();
        let seconds = issue_all(&app, &prepared, args.clients).await?;
        cpu = cpu
            .zip(cpu_before.and_then(|t| t.try_elapsed().ok()))
            .map(|(a, b)| a + b);
        fsyncs += store.fsync_count() - fsyncs_before;
        elapsed += seconds;
        let after = baseline(&issuer_key, credential_len, proof_len);
        let sign_verify_us = (before.0 + after.0 + before.1 + after.1) / 2.0;
        ratios.push(n as f64 / seconds * sign_verify_us / 1e6);
        baselines.extend([before, after]);
    }
    let cpu = cpu.map(|d| d.as_secs_f64());
    let issued = args.credentials;
    let per_s = issued as f64 / elapsed;
    let sign_us = median(baselines.iter().map(|b| b.0).collect());
    let verify_us = median(baselines.iter().map(|b| b.1).collect());
    let limit = 1e6 / (sign_us + verify_us);
    let ratio = median(ratios.clone());

    println!("credentials: {issued}");
    println!("clients: {}", args.clients);
    println!("seconds: {elapsed:.3}");
    println!("credentials_per_s: {per_s:.0}");
    println!("fsyncs: {fsyncs}");
    println!(
        "credentials_per_fsync: {:.1}",
        issued as f64 / fsyncs.max(1) as f64
    );
    if let Some(cpu) = cpu {
        // Whole-process CPU per credential: unlike the rate, it does not depend on how much
        // of the machine other processes take.
        println!("cpu_us_per_credential: {:.0}", cpu * 1e6 / issued as f64);
        println!("cpu_cores_used: {:.2}", cpu / elapsed);
    }
    println!("sign_message_bytes: {credential_len}");
    println!("verify_message_bytes: {proof_len}");
    println!("sign_us: {sign_us:.1}");
    println!("verify_us: {verify_us:.1}");
    println!("sign_verify_limit_per_s: {limit:.0}");
    println!(
        "ratio_segments: {}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("ratio_vs_sign_verify_limit: {ratio:.2}");
    Ok(())
}
