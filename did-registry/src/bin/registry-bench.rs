//! `registry-bench`: the registry's load harness. Prints each figure as `name: value`.
//!
//! - `durable_ops_per_s`: did:civ create operations per second from 64 concurrent HTTP
//!   clients (rate limits off), each signature-validated and acknowledged only after the
//!   fdatasync of its block; `fsyncs` and `ops_per_fsync` from the log's own counter.
//! - `resolve_per_s`, `plain_axum_per_s`, `resolve_ratio_vs_plain_axum`: resolutions with
//!   every proof, against a plain axum JSON handler on the same machine in the same run.
//! - `inclusion_proof_hashes_10k`, `inclusion_proof_json_bytes_10k`: the served inclusion
//!   proof of leaf 0 in a 10,000-leaf tree; `inclusion_proof_hashes_1m`: the same in a
//!   synthetic in-memory tree of 1,000,000 leaves.
//!
//! Run: `cargo run --release -p did-registry --bin registry-bench [-- --ops N --seconds S]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use civitas_core::did::Did;
use civitas_core::keys::SecretKey;
use civitas_core::ledger::{Operation, Signed};
use civitas_core::tlog::{self, MerkleTree};
use clap::Parser;
use did_registry::{AppState, Ledger, LedgerOptions};

#[derive(Debug, Parser)]
struct Args {
    /// Operations in the durable-write phase.
    #[arg(long, default_value_t = 20_000)]
    ops: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds of each resolve phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

fn create_op() -> Signed<Operation> {
    let (recovery, everyday, vm) = (
        SecretKey::generate(),
        SecretKey::generate(),
        SecretKey::generate(),
    );
    let op = Operation::create(
        vec![recovery.public_key(), everyday.public_key()],
        vm.public_key(),
        1,
    );
    Signed::sign(op, &everyday)
}

/// Runs `clients` loops of `request` for `duration`; returns completed requests per second.
async fn load<F, Fut>(clients: usize, duration: Duration, request: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let request = Arc::new(request);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (request, done) = (request.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while start.elapsed() < duration {
                request(client * 1_000_000 + n).await?;
                done.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    let ledger = Ledger::open(LedgerOptions {
        data_dir: dir.clone(),
        origin: "bench.civitas/log".to_owned(),
        authorities: None,
        recovery_window: None,
        idle_seal: Duration::from_secs(10),
    })
    .await
    .context("opening the ledger")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AppState {
        ledger: ledger.clone(),
        limits: None,
    };
    tokio::spawn(did_registry::serve(listener, state, std::future::pending()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    // Phase 1: durable writes.
    eprintln!("signing {} operations...", args.ops);
    let ops: Vec<Vec<u8>> = (0..args.ops)
        .map(|_| create_op().bytes().to_vec())
        .collect();
    let dids: Vec<Did> = ops
        .iter()
        .map(|b| Did::civ_from_genesis_hash(&civitas_core::encoding::sha256(b)))
        .collect();
    let ops = Arc::new(ops);
    let next = Arc::new(AtomicU64::new(0));
    let fsyncs_before = ledger.fsync_count();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (ops, next, http, base) = (ops.clone(), next.clone(), http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed))?;
                let Some(op) = ops.get(i) else {
                    return anyhow::Ok(());
                };
                let response = http
                    .post(format!("{base}/operations"))
                    .body(op.clone())
                    .send()
                    .await?;
                if response.status() != reqwest::StatusCode::CREATED {
                    bail!(
                        "operation {i} answered {}: {}",
                        response.status(),
                        response.text().await?
                    );
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let fsyncs = ledger.fsync_count() - fsyncs_before;
    println!("durable_ops: {}", args.ops);
    println!("durable_ops_per_s: {:.0}", args.ops as f64 / elapsed);
    println!("fsyncs: {fsyncs}");
    println!(
        "ops_per_fsync: {:.1}",
        args.ops as f64 / fsyncs.max(1) as f64
    );

    // Phase 2: resolution with proofs vs a plain axum handler.
    let dids = Arc::new(dids);
    let resolve_rate = {
        let (http, base, dids) = (http.clone(), base.clone(), dids.clone());
        load(args.clients, Duration::from_secs(args.seconds), move |n| {
            let (http, base, dids) = (http.clone(), base.clone(), dids.clone());
            async move {
                // Spread the clients over the DIDs (a multiplicative hash of the request number).
                let did = &dids[(n.wrapping_mul(2_654_435_761) >> 7) % dids.len()];
                let response = http
                    .get(format!("{base}/1.0/identifiers/{did}"))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("resolve answered {}", response.status());
                }
                response.bytes().await?;
                Ok(())
            }
        })
        .await?
    };
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let plain_base = format!("http://{}", plain.local_addr()?);
    let plain_app = axum::Router::new().route(
        "/plain/{id}",
        axum::routing::get(
            |axum::extract::Path(id): axum::extract::Path<String>| async move {
                axum::Json(serde_json::json!({"id": id, "ok": true}))
            },
        ),
    );
    tokio::spawn(async move { axum::serve(plain, plain_app).await });
    let plain_rate = {
        let (http, base) = (http.clone(), plain_base.clone());
        load(args.clients, Duration::from_secs(args.seconds), move |n| {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let response = http.get(format!("{base}/plain/{n}")).send().await?;
                response.bytes().await?;
                Ok(())
            }
        })
        .await?
    };
    println!("resolve_per_s: {resolve_rate:.0}");
    println!("plain_axum_per_s: {plain_rate:.0}");
    println!(
        "resolve_ratio_vs_plain_axum: {:.2}",
        resolve_rate / plain_rate
    );

    // Phase 3: proof sizes.
    let size = ledger.head().await.size();
    if size < 10_000 {
        bail!("the log has {size} leaves; run with --ops 10000 or more");
    }
    let body = http
        .get(format!("{base}/log/proof/inclusion?index=0&size=10000"))
        .send()
        .await?
        .bytes()
        .await?;
    let parsed: civitas_core::api::InclusionProofBody = serde_json::from_slice(&body)?;
    println!("inclusion_proof_hashes_10k: {}", parsed.proof.len());
    println!("inclusion_proof_json_bytes_10k: {}", body.len());
    let mut tree = MerkleTree::new();
    for i in 0u32..1_000_000 {
        tree.push(tlog::leaf_hash(&i.to_be_bytes()));
    }
    let proof = tree
        .inclusion_proof(0, 1_000_000)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("inclusion_proof_hashes_1m: {}", proof.len());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("registry-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
