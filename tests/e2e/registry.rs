//! The registry over HTTP: forks, bad input, crash safety, and auditing the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use civitas_client::{ClientError, Version};
use civitas_core::api::{ConsistencyProofBody, InclusionProofBody, LogEntries};
use civitas_core::did::Did;
use civitas_core::encoding;
use civitas_core::keys::SecretKey;
use civitas_core::ledger::{OpKind, OpSigner, Operation, Signed};
use civitas_core::tlog;
use tempfile::TempDir;

use crate::harness::{Registry, key};

/// A create operation with fresh keys: (recovery, everyday, vm) secrets and the op.
struct Made {
    everyday: SecretKey,
    recovery: SecretKey,
    op: Signed<Operation>,
}

fn make_create() -> Made {
    let (recovery, everyday, vm) = (key(), key(), key());
    let op = Operation::create(
        vec![recovery.public_key(), everyday.public_key()],
        vm.public_key(),
        1,
    );
    Made {
        op: Signed::sign(op, &everyday),
        everyday,
        recovery,
    }
}

fn did_of(op: &Signed<Operation>) -> Did {
    Did::civ_from_genesis_hash(op.id().digest())
}

/// An update of `made`'s DID after `prev` that only adds a service, signed by rotation key
/// `index`.
fn update(made: &Made, prev: &Signed<Operation>, index: u8, endpoint: &str) -> Signed<Operation> {
    let mut body = prev.body().clone();
    if body.op == OpKind::Create {
        body.did = Some(did_of(&made.op));
    }
    body.op = OpKind::Update;
    body.prev = Some(prev.id());
    body.services = vec![civitas_core::ledger::OpService {
        id: "svc".to_owned(),
        kind: "LinkedDomains".to_owned(),
        service_endpoint: endpoint.to_owned(),
    }];
    body.signer = OpSigner::RotationKey(index);
    let key = if index == 0 {
        &made.recovery
    } else {
        &made.everyday
    };
    Signed::sign(body, key)
}

fn problem_type(err: &ClientError) -> String {
    err.problem_type().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn forks_are_refused_unless_a_higher_priority_key_recovers_in_the_window() {
    let tmp = TempDir::new().unwrap();
    let registry = Registry::start(
        &tmp.path().join("node"),
        &["--recovery-window", "3s", "--idle-seal", "200ms"],
    );
    let client = registry.client().await;
    let made = make_create();
    client.submit_operation(&made.op).await.unwrap();
    let a = update(&made, &made.op, 1, "https://a.example");
    client.submit_operation(&a).await.unwrap();

    // Same prev, same priority: the fork is refused.
    let b = update(&made, &made.op, 1, "https://b.example");
    let err = client.submit_operation(&b).await.unwrap_err();
    assert_eq!(problem_type(&err), "urn:civitas:problem:fork-refused");

    // Same prev, higher priority, within the window: accepted, and `a` is nullified.
    let c = update(&made, &made.op, 0, "https://c.example");
    let receipt = client.submit_operation(&c).await.unwrap();
    assert_eq!(receipt.nullified, vec![a.id()]);
    let resolved = client
        .resolve(&did_of(&made.op), &Version::Current)
        .await
        .unwrap();
    assert_eq!(
        resolved.document.service[0].service_endpoint,
        "https://c.example"
    );

    // Once the window has passed, even the recovery key cannot fork.
    let d = update(&made, &c, 1, "https://d.example");
    client.submit_operation(&d).await.unwrap();
    // The rule under test is about ledger time: let the 3 s window pass (seals every
    // 200 ms keep ledger time moving).
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let e = update(&made, &c, 0, "https://e.example");
    let err = client.submit_operation(&e).await.unwrap_err();
    assert_eq!(problem_type(&err), "urn:civitas:problem:fork-refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_problem_and_changes_nothing() {
    let tmp = TempDir::new().unwrap();
    let registry = Registry::start(&tmp.path().join("node"), &[]);
    let http = reqwest::Client::new();
    let size_before = registry.client().await.checkpoint().await.unwrap().size();
    let post = |body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{}/operations", registry.url);
        async move {
            let response = http.post(url).body(body).send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body["type"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(
        post(b"{not json".to_vec()).await,
        (400, "urn:civitas:problem:malformed-json".to_owned())
    );
    let made = make_create();
    let spaced = String::from_utf8(made.op.bytes().to_vec())
        .unwrap()
        .replacen(',', ", ", 1);
    assert_eq!(
        post(spaced.into_bytes()).await,
        (400, "urn:civitas:problem:non-canonical-json".to_owned())
    );
    assert_eq!(
        post(vec![b' '; 9000]).await.1,
        "urn:civitas:problem:payload-too-large"
    );
    // A signature by the wrong key.
    let mut forged = made.op.body().clone();
    forged.signer = OpSigner::RotationKey(0);
    let forged = Signed::sign(forged, &made.everyday);
    assert_eq!(
        post(forged.bytes().to_vec()).await,
        (400, "urn:civitas:problem:invalid-signature".to_owned())
    );
    // An index out of range.
    let mut out_of_range = made.op.body().clone();
    out_of_range.signer = OpSigner::RotationKey(7);
    let out_of_range = Signed::sign(out_of_range, &made.everyday);
    assert_eq!(
        post(out_of_range.bytes().to_vec()).await.1,
        "urn:civitas:problem:invalid-signer"
    );
    // An update of a DID that does not exist.
    let ghost = update(&made, &made.op, 1, "https://x.example");
    assert_eq!(
        post(ghost.bytes().to_vec()).await,
        (404, "urn:civitas:problem:did-not-found".to_owned())
    );
    // A trust entry posted to /operations.
    assert_eq!(post(b"{\"type\":\"civ.seal.v1\"}".to_vec()).await.0, 400);

    // Resolution errors are DID Resolution results.
    let resolve = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", registry.url);
        async move {
            let response = http.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (
                status,
                body["didResolutionMetadata"]["error"]["type"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        }
    };
    assert_eq!(
        resolve("/1.0/identifiers/did:civ:nope".to_owned()).await,
        (400, "https://www.w3.org/ns/did#INVALID_DID".to_owned())
    );
    let unknown = did_of(&made.op);
    assert_eq!(
        resolve(format!("/1.0/identifiers/{unknown}")).await,
        (404, "https://www.w3.org/ns/did#NOT_FOUND".to_owned())
    );
    assert_eq!(
        resolve(format!(
            "/1.0/identifiers/{unknown}?versionId=a&versionTime=2026-01-01T00:00:00Z"
        ))
        .await
        .0,
        400
    );
    // Percent-encoded DIDs are accepted; did:key resolves without the ledger.
    let did_key = Did::key_from_public_key(&key().public_key());
    let encoded = did_key.as_str().replace(':', "%3A");
    assert_eq!(resolve(format!("/1.0/identifiers/{encoded}")).await.0, 200);

    // Nothing reached the log.
    let size_after = registry.client().await.checkpoint().await.unwrap().size();
    assert!(size_after >= size_before);
    let entries: LogEntries = http
        .get(format!(
            "{}/log/entries?start=0&end={size_after}",
            registry.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for entry in &entries.entries {
        let leaf = encoding::b64_decode(&entry.leaf).unwrap();
        assert!(
            !String::from_utf8_lossy(&leaf).contains("civ.op.v1"),
            "a refused operation is in the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_monitor_recomputes_the_root_and_checks_the_proofs() {
    let tmp = TempDir::new().unwrap();
    let registry = Registry::start(&tmp.path().join("node"), &[]);
    let client = registry.client().await;
    let first = client.checkpoint().await.unwrap();
    for _ in 0..5 {
        client.submit_operation(&make_create().op).await.unwrap();
    }
    let checkpoint = client.checkpoint().await.unwrap();
    let http = reqwest::Client::new();
    let entries: LogEntries = http
        .get(format!(
            "{}/log/entries?start=0&end={}",
            registry.url,
            checkpoint.size()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(entries.entries.len() as u64, checkpoint.size());
    let mut tree = tlog::MerkleTree::new();
    for entry in &entries.entries {
        let leaf = encoding::b64_decode(&entry.leaf).unwrap();
        civitas_core::ledger::Entry::parse(&leaf).unwrap();
        tree.push(tlog::leaf_hash(&leaf));
    }
    assert_eq!(tree.root(), *checkpoint.root());

    let inclusion: InclusionProofBody = http
        .get(format!(
            "{}/log/proof/inclusion?index=2&size={}",
            registry.url,
            checkpoint.size()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path: Vec<_> = inclusion
        .proof
        .iter()
        .map(|h| encoding::b64_hash(h).unwrap())
        .collect();
    tlog::verify_inclusion(
        &tree.leaf(2).unwrap(),
        2,
        checkpoint.size(),
        &path,
        checkpoint.root(),
    )
    .unwrap();

    let consistency: ConsistencyProofBody = http
        .get(format!(
            "{}/log/proof/consistency?from={}&to={}",
            registry.url,
            first.size(),
            checkpoint.size()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path: Vec<_> = consistency
        .proof
        .iter()
        .map(|h| encoding::b64_hash(h).unwrap())
        .collect();
    tlog::verify_consistency(
        first.size(),
        checkpoint.size(),
        first.root(),
        checkpoint.root(),
        &path,
    )
    .unwrap();
    // Out-of-range queries are refused with a problem.
    let response = http
        .get(format!(
            "{}/log/proof/consistency?from=0&to={}",
            registry.url,
            checkpoint.size()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_burst_loses_no_acknowledged_entry() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("node");
    let mut registry = Registry::start(&data, &["--rate-limit", "0"]);
    let client = Arc::new(registry.client().await);
    let before = client.checkpoint().await.unwrap();
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, acked, stop) = (client.clone(), acked.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let made = make_create();
                match client.submit_operation(&made.op).await {
                    Ok(receipt) => acked
                        .lock()
                        .unwrap()
                        .push((did_of(&made.op), receipt.index)),
                    Err(_) => break,
                }
            }
        }));
    }
    // Let the burst run until enough writes were acknowledged, then crash the node.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acked.lock().unwrap().len() < 200 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    registry.kill9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 200,
        "only {} writes were acknowledged",
        acked.len()
    );

    let registry = Registry::start(&data, &[]);
    let client = registry
        .client()
        .await
        .with_last_checkpoint(&client.last_checkpoint().unwrap())
        .unwrap();
    let after = client.checkpoint().await.unwrap();
    assert!(after.size() >= before.size());
    for (did, index) in &acked {
        let resolved = client.resolve(did, &Version::Current).await.unwrap();
        assert_eq!(resolved.ledger.unwrap().verified.index, *index);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_another_genesis_is_refused() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("node");
    let root = Did::civ_from_genesis_hash(&[9; 32]).to_string();
    let mut registry = Registry::start(&data, &["--authority", &root, "--recovery-window", "1h"]);
    registry.kill9();
    let other = Did::civ_from_genesis_hash(&[8; 32]).to_string();
    let refused = Registry::try_start(&data, &["--authority", &other]);
    assert!(refused.is_err(), "a different root authority was accepted");
    let refused = Registry::try_start(&data, &["--recovery-window", "2h"]);
    assert!(refused.is_err(), "a different recovery window was accepted");
    // The same values, or none, are fine.
    Registry::start(&data, &["--authority", &root]);
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_over_the_rate_limit_get_429() {
    let tmp = TempDir::new().unwrap();
    let registry = Registry::start(&tmp.path().join("node"), &["--rate-limit", "1/s"]);
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = http
            .post(format!("{}/operations", registry.url))
            .body(make_create().op.bytes().to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["type"], "urn:civitas:problem:rate-limited");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
}
