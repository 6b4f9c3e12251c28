//! Credentials end to end: a root authority accredits a department; the department's
//! issuer (its own process) issues over OpenID4VCI to citizens' wallets; presentations are
//! verified, revoked, refused.

use serde_json::Value;
use tempfile::TempDir;

use crate::harness::{Issuer, Outcome, Registry, Wallet, reserve_port, schemas_dir};

const RESIDENT: &str = "https://schemas.civitas.gov.example/vct/ResidentIdentity/v1";
const OFFICIAL: &str = "https://schemas.civitas.gov.example/vct/OfficialRole/v1";
const LICENSE: &str = "https://schemas.civitas.gov.example/vct/BusinessLicense/v1";

/// A ledger with a root authority, a department accredited for three types (OfficialRole
/// only for jurisdiction 310000) running its issuer, and a citizen.
pub(crate) struct World {
    pub(crate) tmp: TempDir,
    pub(crate) registry: Registry,
    pub(crate) root: Wallet,
    pub(crate) operator: Wallet,
    pub(crate) department: String,
    pub(crate) issuer: Issuer,
    pub(crate) citizen: Wallet,
    pub(crate) citizen_did: String,
}

impl World {
    pub(crate) async fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let offline = Wallet {
            dir: tmp.path().join("root"),
            registry: "http://127.0.0.1:9".to_owned(),
        };
        offline.run(&["init", "--kdf", "minimum"]).await.ok();
        let root_did = offline.create_did(&["--offline"]).await;
        let registry = Registry::start(&tmp.path().join("node"), &["--authority", &root_did]);
        let root = Wallet {
            dir: offline.dir.clone(),
            registry: registry.url.clone(),
        };
        root.run(&["did", "publish"]).await.ok();

        // The issuer host makes its key; the operator makes the department DID with it.
        let issuer_dir = tmp.path().join("issuer");
        let issuer_key = Issuer::init(&issuer_dir);
        let port = reserve_port();
        let operator = Wallet::init(&tmp.path().join("operator"), &registry.url).await;
        let department = operator
            .create_did(&[
                "--assertion-key",
                &issuer_key,
                "--service",
                &format!("OID4VCI=http://127.0.0.1:{port}"),
            ])
            .await;
        for (vct, constraint) in [
            (RESIDENT, None),
            (OFFICIAL, Some(r#"jurisdiction in ["310000"]"#)),
            (LICENSE, None),
        ] {
            let mut args = vec!["trust", "accredit", "--issuer", &department, "--vct", vct];
            if let Some(c) = constraint {
                args.extend(["--constraint", c]);
            }
            root.run(&args).await.ok();
        }
        let issuer = Issuer::start(
            &issuer_dir,
            port,
            &department,
            &registry.url,
            &["--operator", &department, "--status-interval", "2s"],
        );
        let citizen = Wallet::init(&tmp.path().join("citizen"), &registry.url).await;
        let citizen_did = citizen.create_did(&[]).await;
        Self {
            tmp,
            registry,
            root,
            operator,
            department,
            issuer,
            citizen,
            citizen_did,
        }
    }

    pub(crate) fn example(name: &str) -> String {
        schemas_dir()
            .join("examples")
            .join(format!("{name}.json"))
            .display()
            .to_string()
    }

    pub(crate) fn claims_file(&self, name: &str, value: &Value) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.display().to_string()
    }

    pub(crate) async fn offer(&self, vct: &str, claims: &str, holder: Option<&str>) -> Outcome {
        let mut args = vec![
            "credential",
            "offer",
            "--issuer",
            &self.issuer.url,
            "--vct",
            vct,
            "--claims",
            claims,
        ];
        if let Some(h) = holder {
            args.extend(["--holder", h]);
        }
        self.operator.run(&args).await
    }

    pub(crate) async fn offer_uri(
        &self,
        vct: &str,
        claims: &str,
        holder: Option<&str>,
    ) -> (String, Option<String>) {
        let out = self.offer(vct, claims, holder).await.ok().json();
        (
            out["credential_offer_uri"].as_str().unwrap().to_owned(),
            out["tx_code"].as_str().map(str::to_owned),
        )
    }
}

/// Every anchor on the ledger.
async fn anchors(registry: &str) -> Vec<Value> {
    let checkpoint = reqwest::get(format!("{registry}/checkpoint"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let size: u64 = checkpoint.lines().nth(1).unwrap().parse().unwrap();
    let body: Value = reqwest::get(format!("{registry}/log/entries?start=0&end={size}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let leaf = civitas_core::encoding::b64_decode(e["leaf"].as_str()?).ok()?;
            let value: Value = serde_json::from_slice(&leaf).ok()?;
            (value["type"] == "civ.anchor.v1").then_some(value)
        })
        .collect()
}

fn problem_of(outcome: &Outcome) -> String {
    outcome.json()["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_present_verify_revoke() {
    let w = World::new().await;
    let (uri, tx_code) = w
        .offer_uri(
            "ResidentIdentity",
            &World::example("ResidentIdentity"),
            Some(&w.citizen_did),
        )
        .await;
    assert!(uri.starts_with("openid-credential-offer://?credential_offer="));
    assert_eq!(tx_code, None, "an offer bound to a holder needs no tx code");

    let received = w
        .citizen
        .run(&["credential", "receive", &uri])
        .await
        .ok()
        .json();
    let id = received["id"].as_str().unwrap().to_owned();
    let listed = w.citizen.run(&["credential", "list"]).await.ok().json();
    assert_eq!(listed["credentials"][0]["id"], id.as_str());
    assert_eq!(listed["credentials"][0]["vct"], RESIDENT);

    // Core claims never leave the issuer; their derived claims do, each disclosable.
    let schemas = schemas_dir().display().to_string();
    let shown = w
        .citizen
        .run(&["credential", "show", &id, "--schemas", &schemas])
        .await
        .ok()
        .json();
    let names: Vec<&str> = shown["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for core in ["identity_number", "birth_date", "address"] {
        assert!(!names.contains(&core), "{core} is core: {names:?}");
    }
    for derived in ["age_over_18", "identity_number_masked", "region"] {
        assert!(names.contains(&derived), "{derived} missing: {names:?}");
    }

    let presentation = w
        .citizen
        .run(&[
            "credential",
            "present",
            &id,
            "--disclose",
            "age_over_18,region",
            "--audience",
            "https://verifier.example",
            "--nonce",
            "n-1",
        ])
        .await
        .ok()
        .json()["presentation"]
        .as_str()
        .unwrap()
        .to_owned();
    let verify = |nonce: &'static str| {
        let p = presentation.clone();
        let schemas = schemas.clone();
        let citizen = &w.citizen;
        async move {
            citizen
                .run(&[
                    "credential",
                    "verify",
                    &p,
                    "--audience",
                    "https://verifier.example",
                    "--nonce",
                    nonce,
                    "--schemas",
                    &schemas,
                ])
                .await
        }
    };
    let verified = verify("n-1").await.ok().json();
    assert_eq!(verified["valid"], true);
    assert_eq!(verified["disclosed"]["age_over_18"]["value"], true);
    assert_eq!(verified["disclosed"]["region"]["value"], "310115");
    assert!(
        verified["disclosed"].get("name").is_none(),
        "name was not disclosed"
    );
    assert_eq!(verified["holder"], w.citizen_did.as_str());

    // The KB-JWT binds the presentation to its verifier's nonce.
    let wrong = verify("n-2").await;
    assert_eq!(wrong.code, 1);
    assert_eq!(problem_of(&wrong), "urn:civitas:problem:invalid-kb-jwt");

    // The operator revokes; the list served right after says so.
    w.operator
        .run(&["credential", "revoke", "--issuer", &w.issuer.url, &id])
        .await
        .ok();
    let revoked = verify("n-1").await;
    assert_eq!(revoked.code, 1, "{revoked:?}");
    assert_eq!(
        problem_of(&revoked),
        "urn:civitas:problem:credential-revoked"
    );

    // The list version served now is anchored on the ledger (by hash, in the issuer's stream).
    let list_uri = format!("{}/status/1", w.issuer.url);
    let jws = reqwest::get(&list_uri).await.unwrap().text().await.unwrap();
    let root = civitas_core::encoding::b64url(&civitas_core::encoding::sha256(jws.as_bytes()));
    let stream = format!("{}/status-1", w.department);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let anchors = anchors(&w.registry.url).await;
        if anchors.iter().any(|a| {
            a["stream"] == stream.as_str()
                && a["kind"] == "status-list"
                && a["root"] == root.as_str()
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no anchor of the current status list version: {anchors:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // The registry says where the stream stands (the issuer continues from it after a crash).
    // The publisher keeps anchoring on its 2 s cadence, so the head is read on both sides of
    // the listing, and the two are compared only when no anchor came in between.
    let head_uri = format!(
        "{}/anchors/head?stream={}",
        w.registry.url,
        stream.replace(':', "%3A").replace('/', "%2F")
    );
    let head = async || -> Value { reqwest::get(&head_uri).await.unwrap().json().await.unwrap() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let before = head().await;
        let seqs = anchors(&w.registry.url)
            .await
            .iter()
            .filter(|a| a["stream"] == stream.as_str())
            .count();
        if head().await == before {
            assert_eq!(before["seq"], seqs, "{before}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stream's head never held still"
        );
    }

    // Revocation is final.
    let again = w
        .operator
        .run(&[
            "credential",
            "revoke",
            "--issuer",
            &w.issuer.url,
            "--reinstate",
            &id,
        ])
        .await;
    assert_eq!(again.code, 2);
    assert!(again.error.contains("credential-revoked"), "{again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retroactive_withdrawal_voids_credentials_issued_before_it() {
    let w = World::new().await;
    let (uri, _) = w
        .offer_uri(
            "ResidentIdentity",
            &World::example("ResidentIdentity"),
            Some(&w.citizen_did),
        )
        .await;
    let id = w
        .citizen
        .run(&["credential", "receive", &uri])
        .await
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let schemas = schemas_dir().display().to_string();
    let present = w
        .citizen
        .run(&[
            "credential",
            "present",
            &id,
            "--disclose",
            "nationality",
            "--audience",
            "https://v",
            "--nonce",
            "n",
        ])
        .await
        .ok()
        .json()["presentation"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = [
        "credential",
        "verify",
        present.as_str(),
        "--audience",
        "https://v",
        "--nonce",
        "n",
        "--schemas",
        schemas.as_str(),
    ];
    let verify = || w.citizen.run(&args);
    assert_eq!(verify().await.ok().json()["valid"], true);

    // A retroactive withdrawal (the default) makes what was issued before it invalid.
    w.root
        .run(&[
            "trust",
            "withdraw",
            "--issuer",
            &w.department,
            "--vct",
            RESIDENT,
        ])
        .await
        .ok();
    let withdrawn = verify().await;
    assert_eq!(withdrawn.code, 1);
    assert_eq!(
        problem_of(&withdrawn),
        "urn:civitas:problem:accreditation-withdrawn"
    );

    // And the issuer refuses new offers of that type.
    let refused = w
        .offer(
            "ResidentIdentity",
            &World::example("ResidentIdentity"),
            Some(&w.citizen_did),
        )
        .await;
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .error
            .contains("urn:civitas:problem:issuer-not-accredited"),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_are_single_use_bound_and_attempt_limited() {
    let w = World::new().await;
    let example = World::example("ResidentIdentity");
    let (uri, _) = w
        .offer_uri("ResidentIdentity", &example, Some(&w.citizen_did))
        .await;

    // Another DID cannot redeem an offer bound to the citizen.
    let other = Wallet::init(&w.tmp.path().join("other"), &w.citizen.registry).await;
    other.create_did(&[]).await;
    let stolen = other.run(&["credential", "receive", &uri]).await;
    assert_eq!(stolen.code, 2);
    assert!(stolen.error.contains("invalid_proof"), "{stolen:?}");

    // The code was used by that attempt's token exchange: single use, even for the citizen.
    let second = w.citizen.run(&["credential", "receive", &uri]).await;
    assert_eq!(second.code, 2);
    assert!(second.error.contains("invalid_grant"), "{second:?}");

    // A fresh offer is redeemed once; the second time is refused.
    let (uri, _) = w
        .offer_uri("ResidentIdentity", &example, Some(&w.citizen_did))
        .await;
    w.citizen.run(&["credential", "receive", &uri]).await.ok();
    let twice = w.citizen.run(&["credential", "receive", &uri]).await;
    assert_eq!(twice.code, 2);
    assert!(twice.error.contains("invalid_grant"), "{twice:?}");

    // Identity credentials must be bound to a holder.
    let unbound = w.offer("ResidentIdentity", &example, None).await;
    assert_eq!(unbound.code, 2);

    // An unbound offer needs its tx code; five wrong ones lock it for good.
    let (uri, tx_code) = w
        .offer_uri("BusinessLicense", &World::example("BusinessLicense"), None)
        .await;
    let tx_code = tx_code.expect("an unbound offer has a tx code");
    let wrong = if tx_code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for attempt in 1..=5 {
        let out = w
            .citizen
            .run(&["credential", "receive", &uri, "--tx-code", wrong])
            .await;
        assert_eq!(out.code, 2, "attempt {attempt}");
        assert!(out.error.contains("invalid_grant"), "{out:?}");
    }
    let locked = w
        .citizen
        .run(&["credential", "receive", &uri, "--tx-code", &tx_code])
        .await;
    assert_eq!(locked.code, 2);
    assert!(locked.error.contains("locked"), "{locked:?}");

    // With the right code at once, an unbound offer is received.
    let (uri, tx_code) = w
        .offer_uri("BusinessLicense", &World::example("BusinessLicense"), None)
        .await;
    let got = w
        .citizen
        .run(&[
            "credential",
            "receive",
            &uri,
            "--tx-code",
            &tx_code.unwrap(),
        ])
        .await
        .ok()
        .json();
    assert_eq!(got["vct"], LICENSE);
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_outside_the_accreditation_or_the_schema_are_refused() {
    let w = World::new().await;
    // Not accredited for this type at all.
    let education = w
        .offer(
            "EducationCredential",
            &World::example("EducationCredential"),
            Some(&w.citizen_did),
        )
        .await;
    assert_eq!(education.code, 2);
    assert!(
        education
            .error
            .contains("urn:civitas:problem:issuer-not-accredited"),
        "{education:?}"
    );

    // The accreditation's constraint: OfficialRole only for jurisdiction 310000.
    let mut role: Value =
        serde_json::from_str(&std::fs::read_to_string(World::example("OfficialRole")).unwrap())
            .unwrap();
    role["department"] = Value::String(w.department.clone());
    let ok = w.claims_file("role-ok.json", &role);
    w.offer("OfficialRole", &ok, Some(&w.citizen_did))
        .await
        .ok();
    role["jurisdiction"] = Value::String("110000".to_owned());
    let beijing = w.claims_file("role-110000.json", &role);
    let refused = w
        .offer("OfficialRole", &beijing, Some(&w.citizen_did))
        .await;
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .error
            .contains("urn:civitas:problem:constraint-violated"),
        "{refused:?}"
    );

    // Every schema violation is listed.
    let mut resident: Value =
        serde_json::from_str(&std::fs::read_to_string(World::example("ResidentIdentity")).unwrap())
            .unwrap();
    resident["identity_number"] = Value::String("310115199003071238".to_owned());
    resident.as_object_mut().unwrap().remove("nationality");
    resident["favourite_colour"] = Value::String("blue".to_owned());
    let bad = w.claims_file("resident-bad.json", &resident);
    let invalid = w
        .offer("ResidentIdentity", &bad, Some(&w.citizen_did))
        .await;
    assert_eq!(invalid.code, 2);
    assert!(
        invalid
            .error
            .contains("urn:civitas:problem:schema-violation"),
        "{invalid:?}"
    );
    for what in ["identity_number", "nationality", "favourite_colour"] {
        assert!(
            invalid.error.contains(what),
            "{what} not listed: {invalid:?}"
        );
    }
}
