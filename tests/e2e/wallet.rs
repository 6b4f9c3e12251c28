//! The DID lifecycle through the wallet, as a person runs it.

use tempfile::TempDir;

use crate::harness::{Registry, Wallet};

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_create_rotate_resolve_history_deactivate() {
    let tmp = TempDir::new().unwrap();
    let registry = Registry::start(&tmp.path().join("node"), &["--recovery-window", "2s"]);
    let wallet = Wallet::init(&tmp.path().join("w"), &registry.url).await;

    let did = wallet.create_did(&[]).await;
    assert!(did.starts_with("did:civ:"), "{did}");
    let first = wallet.run(&["did", "resolve", &did]).await.ok().json();
    let v1 = first["didDocumentMetadata"]["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let key1 = first["didDocument"]["verificationMethod"][0]["publicKeyMultibase"]
        .as_str()
        .unwrap()
        .to_owned();
    let t1 = first["didDocumentMetadata"]["updated"]
        .as_str()
        .unwrap()
        .to_owned();

    wallet.run(&["did", "rotate", &did]).await.ok();
    let second = wallet.run(&["did", "resolve", &did]).await.ok().json();
    let key2 = second["didDocument"]["verificationMethod"][0]["publicKeyMultibase"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(key1, key2, "rotation must change the key");
    assert_eq!(
        second["didDocument"]["verificationMethod"][0]["id"]
            .as_str()
            .unwrap(),
        format!("{did}#key-2")
    );

    // The old version is still resolvable, by id and by time, with its old key.
    let old = wallet
        .run(&["did", "resolve", &did, "--version-id", &v1])
        .await
        .ok()
        .json();
    assert_eq!(
        old["didDocument"]["verificationMethod"][0]["publicKeyMultibase"],
        key1.as_str()
    );
    assert!(old["didDocumentMetadata"]["nextVersionId"].is_string());
    let by_time = wallet
        .run(&["did", "resolve", &did, "--version-time", &t1])
        .await
        .ok()
        .json();
    assert_eq!(by_time["didDocumentMetadata"]["versionId"], v1.as_str());

    let history = wallet.run(&["did", "history", &did]).await.ok().json();
    let ops = history["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(ops[0]["op"], "create");
    assert_eq!(ops[1]["op"], "update");

    wallet.run(&["did", "deactivate", &did]).await.ok();
    let gone = wallet.run(&["did", "resolve", &did]).await.ok().json();
    assert_eq!(gone["didDocumentMetadata"]["deactivated"], true);
    // A deactivated DID takes no further ordinary operation.
    let again = wallet.run(&["did", "rotate", &did]).await;
    assert_eq!(again.code, 2, "{again:?}");

    let verified = wallet.run(&["log", "verify"]).await.ok().json();
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["consistentWithPrevious"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_supersedes_a_thiefs_rotation() {
    let tmp = TempDir::new().unwrap();
    let registry = Registry::start(&tmp.path().join("node"), &["--recovery-window", "1h"]);
    let owner = Wallet::init(&tmp.path().join("owner"), &registry.url).await;
    let did = owner.create_did(&[]).await;
    let recovery_file = tmp.path().join("recovery.key");
    owner
        .run(&[
            "did",
            "export-recovery",
            &did,
            recovery_file.to_str().unwrap(),
        ])
        .await
        .ok();

    // The thief has a copy of the wallet (everyday keys, no recovery key) and rotates.
    let thief_dir = tmp.path().join("thief");
    std::fs::create_dir_all(&thief_dir).unwrap();
    for file in ["keystore.json", "config.json"] {
        std::fs::copy(owner.dir.join(file), thief_dir.join(file)).unwrap();
    }
    let thief = Wallet {
        dir: thief_dir,
        registry: registry.url.clone(),
    };
    thief.run(&["did", "rotate", &did]).await.ok();
    let stolen = owner.run(&["did", "resolve", &did]).await.ok().json();
    let thief_version = stolen["didDocumentMetadata"]["versionId"]
        .as_str()
        .unwrap()
        .to_owned();

    let recovered = owner
        .run(&[
            "did",
            "recover",
            &did,
            "--recovery-key",
            recovery_file.to_str().unwrap(),
        ])
        .await
        .ok()
        .json();
    assert_eq!(recovered["nullified"][0], thief_version.as_str());

    let history = owner.run(&["did", "history", &did]).await.ok().json();
    let nullified: Vec<_> = history["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["canonical"] == false)
        .collect();
    assert_eq!(nullified.len(), 1);
    assert_eq!(nullified[0]["id"], thief_version.as_str());

    // The thief's everyday key is now marked compromised and replaced: it signs nothing.
    let denied = thief.run(&["did", "rotate", &did]).await;
    assert_eq!(denied.code, 2, "{denied:?}");
    // The owner carries on with the new keys.
    owner.run(&["did", "rotate", &did]).await.ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn root_authority_named_before_publication_accredits_and_withdraws() {
    let tmp = TempDir::new().unwrap();
    // The root's DID exists before the registry does: it is self-certifying.
    let offline = Wallet {
        dir: tmp.path().join("root"),
        registry: "http://127.0.0.1:9".to_owned(),
    };
    offline.run(&["init", "--kdf", "minimum"]).await.ok();
    let root = offline.create_did(&["--offline"]).await;
    let registry = Registry::start(&tmp.path().join("node"), &["--authority", &root]);
    let wallet = Wallet {
        dir: offline.dir.clone(),
        registry: registry.url.clone(),
    };
    wallet.run(&["did", "publish"]).await.ok();
    let issuer_wallet = Wallet::init(&tmp.path().join("issuer"), &registry.url).await;
    let issuer = issuer_wallet.create_did(&[]).await;

    wallet
        .run(&[
            "trust",
            "accredit",
            "--issuer",
            &issuer,
            "--vct",
            "https://civitas.example/vct/ResidentIdentity",
            "--constraint",
            r#"jurisdiction in ["310000"]"#,
        ])
        .await
        .ok();
    let listed = wallet
        .run(&[
            "trust",
            "list",
            "--vct",
            "https://civitas.example/vct/ResidentIdentity",
        ])
        .await
        .ok()
        .json();
    assert_eq!(listed["issuers"][0]["issuer"], issuer.as_str());
    assert_eq!(listed["issuers"][0]["maxLevel"], "sensitive");

    // Someone who is not a root cannot accredit.
    let refused = issuer_wallet
        .run(&["trust", "accredit", "--issuer", &issuer, "--vct", "x"])
        .await;
    assert_eq!(refused.code, 2);
    assert!(
        refused
            .error
            .contains("urn:civitas:problem:not-root-authority"),
        "{refused:?}"
    );

    wallet
        .run(&[
            "trust",
            "withdraw",
            "--issuer",
            &issuer,
            "--vct",
            "https://civitas.example/vct/ResidentIdentity",
        ])
        .await
        .ok();
    let after = wallet
        .run(&[
            "trust",
            "list",
            "--vct",
            "https://civitas.example/vct/ResidentIdentity",
        ])
        .await
        .ok()
        .json();
    assert_eq!(after["issuers"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn log_verify_fails_loudly_when_the_registry_rewrites_history() {
    let tmp = TempDir::new().unwrap();
    let honest_dir = tmp.path().join("honest");
    let mut honest = Registry::start(&honest_dir, &[]);
    let wallet = Wallet::init(&tmp.path().join("w"), &honest.url).await;
    wallet.create_did(&[]).await;
    let first = wallet.run(&["log", "verify"]).await.ok().json();
    honest.kill9();

    // The operator starts a new ledger under the same keys: same pinned note key, other
    // history. It grows past the size the wallet saw, so only consistency can tell.
    let forged_dir = tmp.path().join("forged");
    std::fs::create_dir_all(&forged_dir).unwrap();
    for file in ["note.key", "ledger.key"] {
        std::fs::copy(honest_dir.join(file), forged_dir.join(file)).unwrap();
    }
    let forged = Registry::start(&forged_dir, &[]);
    let other = Wallet::init(&tmp.path().join("other"), &forged.url).await;
    for _ in 0..3 {
        other.create_did(&[]).await;
    }
    let moved = Wallet {
        dir: wallet.dir.clone(),
        registry: forged.url.clone(),
    };
    let verdict = moved.run(&["log", "verify"]).await;
    assert_eq!(verdict.code, 1, "{verdict:?}");
    assert_eq!(verdict.json()["verified"], false);
    assert!(first["size"].as_u64().unwrap() > 0);

    // A registry that shrinks below what the wallet saw fails the same way.
    let fresh_dir = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    for file in ["note.key", "ledger.key"] {
        std::fs::copy(honest_dir.join(file), fresh_dir.join(file)).unwrap();
    }
    let fresh = Registry::start(&fresh_dir, &[]);
    let moved = Wallet {
        dir: wallet.dir.clone(),
        registry: fresh.url.clone(),
    };
    assert_eq!(moved.run(&["log", "verify"]).await.code, 1);
}
