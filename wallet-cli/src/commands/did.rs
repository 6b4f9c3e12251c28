//! `wallet did ...`: the did:civ lifecycle.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use civitas_client::{LedgerVersion, RegistryClient, Version};
use civitas_core::civ::document_from_operation;
use civitas_core::did::{Did, DidUrl, Method};
use civitas_core::document::{DidDocument, Relationship};
use civitas_core::encoding;
use civitas_core::keys::{PublicKey, SecretKey};
use civitas_core::ledger::{
    ControllerSig, KeyStatus, ObjectId, OpKind, OpService, OpSigner, OpVerificationMethod,
    Operation, RetiredKey, Signed,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use super::Ctx;
use crate::ExitStatus;
use crate::cli::{CreateArgs, DidCommand};
use crate::keystore::Keystore;
use crate::store::{HeldDid, HeldVm, StoredKey, Wallet};

pub(crate) async fn run(ctx: &mut Ctx<'_>, command: DidCommand) -> anyhow::Result<ExitStatus> {
    match command {
        DidCommand::Create(args) => create(ctx, args).await,
        DidCommand::Publish { did } => publish(ctx, did.as_deref()).await,
        DidCommand::Show { did } => show(ctx, did.as_deref()).await,
        DidCommand::Resolve {
            did,
            version_time,
            version_id,
        } => {
            let version = match (version_time, version_id) {
                (Some(t), _) => Version::Time(t),
                (None, Some(id)) => Version::Id(id),
                (None, None) => Version::Current,
            };
            resolve(ctx, &did, &version).await
        }
        DidCommand::Rotate { did, compromised } => rotate(ctx, did.as_deref(), compromised).await,
        DidCommand::Deactivate { did } => deactivate(ctx, did.as_deref()).await,
        DidCommand::ExportRecovery { did, file } => export_recovery(ctx, &did, &file),
        DidCommand::Recover { did, recovery_key } => recover(ctx, &did, &recovery_key).await,
        DidCommand::History { did } => history(ctx, &did).await,
        DidCommand::List => list(ctx),
    }
}

fn parse_did(text: &str) -> anyhow::Result<Did> {
    text.parse()
        .with_context(|| format!("{text:?} is not a DID"))
}

fn signed_from_text(text: &str) -> anyhow::Result<Signed<Operation>> {
    Signed::parse(text.as_bytes()).context("a stored operation is damaged")
}

/// Resolves the current version of a held DID and returns it with the proofs checked.
pub(crate) async fn current(client: &RegistryClient, did: &Did) -> anyhow::Result<LedgerVersion> {
    let resolved = client.resolve(did, &Version::Current).await?;
    resolved
        .ledger
        .context("a did:civ resolution without ledger proofs")
}

/// The first key of `held` listed under `relationship` in `doc`.
pub(crate) fn held_key(
    held: &HeldDid,
    doc: &DidDocument,
    relationship: Relationship,
) -> anyhow::Result<(DidUrl, SecretKey)> {
    for url in doc.relationship(relationship) {
        let Some(fragment) = url.fragment() else {
            continue;
        };
        if let Some(vm) = held.vms.iter().find(|vm| vm.fragment == fragment) {
            let key = vm.key.key()?;
            if doc.key_for(url, relationship) == Some(key.public_key()) {
                return Ok((url.clone(), key));
            }
        }
    }
    bail!(
        "this wallet holds no {} key of {}",
        relationship.as_str(),
        doc.id
    )
}

/// The index of `key` among the rotation keys of `state`.
fn rotation_index(state: &Operation, key: &PublicKey) -> anyhow::Result<u8> {
    let index = state
        .rotation_keys
        .iter()
        .position(|k| k == key)
        .context("the wallet's rotation key is not a rotation key of the DID any more\n\nhint: if it was taken over, use 'wallet did recover'")?;
    u8::try_from(index).context("rotation key index out of range")
}

/// The highest N of the `key-N` fragments in `state`.
fn last_key_number(state: &Operation) -> u32 {
    state
        .verification_methods
        .iter()
        .filter_map(|vm| vm.id.strip_prefix("key-")?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
}

async fn create(ctx: &mut Ctx<'_>, args: CreateArgs) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let recovery = SecretKey::generate();
    let rotation = SecretKey::generate();
    let key1 = SecretKey::generate();
    let mut op = Operation::create(
        vec![recovery.public_key(), rotation.public_key()],
        key1.public_key(),
        1,
    );
    if let Some(text) = &args.assertion_key {
        let key: PublicKey = text
            .parse()
            .with_context(|| format!("--assertion-key {text:?} is not an ed25519 multikey"))?;
        op.verification_methods.push(OpVerificationMethod {
            id: "key-2".to_owned(),
            public_key_multibase: key,
        });
        op.assertion_method = vec!["key-2".to_owned()];
    }
    for (n, service) in args.services.iter().enumerate() {
        let (kind, url) = service
            .split_once('=')
            .with_context(|| format!("--service {service:?}: expected TYPE=URL"))?;
        op.services.push(OpService {
            id: if n == 0 {
                "service".to_owned()
            } else {
                format!("service-{}", n + 1)
            },
            kind: kind.to_owned(),
            service_endpoint: url.to_owned(),
        });
    }
    let mut client = None;
    if let Some(controller) = &args.controller {
        let controller = parse_did(controller)?;
        let held = wallet
            .secrets
            .pick(Some(controller.as_str()))
            .context("--controller must be a DID of this wallet")?
            .clone();
        let c = ctx.client(&mut wallet).await?;
        let version = current(&c, &controller).await?;
        let (url, key) = held_key(
            &held,
            &version.verified.document,
            Relationship::CapabilityInvocation,
        )?;
        op.controller = Some(controller);
        let sig = key.sign(&op.controller_signing_input());
        op.controller_sig = Some(ControllerSig {
            key: url,
            sig: encoding::b64url(&sig),
        });
        client = Some(c);
    }
    let signed = Signed::sign(op, &rotation);
    let did = Did::civ_from_genesis_hash(signed.id().digest());
    let mut held = HeldDid {
        did: did.to_string(),
        recovery: Some(StoredKey::new(&recovery)),
        rotation: StoredKey::new(&rotation),
        vms: vec![HeldVm {
            fragment: "key-1".to_owned(),
            key: StoredKey::new(&key1),
        }],
        unpublished: Some(String::from_utf8_lossy(signed.bytes()).into_owned()),
        ops: vec![signed.id().to_string()],
    };
    let mut index = None;
    if !args.offline {
        let client = match client {
            Some(c) => c,
            None => ctx.client(&mut wallet).await?,
        };
        let receipt = client.submit_operation(&signed).await?;
        ctx.remember(&mut wallet, &client)?;
        held.unpublished = None;
        index = Some(receipt.index);
    }
    wallet
        .secrets
        .default_did
        .get_or_insert_with(|| did.to_string());
    wallet.secrets.dids.push(held);
    wallet.save_secrets()?;
    ctx.print(
        &json!({"did": did.to_string(), "published": !args.offline, "index": index}),
        did.as_str(),
    )?;
    Ok(ExitStatus::Success)
}

async fn publish(ctx: &mut Ctx<'_>, did: Option<&str>) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(did)?.clone();
    let Some(text) = &held.unpublished else {
        bail!("{} is already published", held.did);
    };
    let signed = signed_from_text(text)?;
    let client = ctx.client(&mut wallet).await?;
    let receipt = client.submit_operation(&signed).await?;
    ctx.remember(&mut wallet, &client)?;
    wallet.secrets.pick_mut(Some(&held.did))?.unpublished = None;
    wallet.save_secrets()?;
    ctx.print(&json!({"did": held.did, "index": receipt.index}), &held.did)?;
    Ok(ExitStatus::Success)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown<'a> {
    did_document: &'a DidDocument,
    did_document_metadata: &'a civitas_core::api::DocumentMetadata,
    log_index: Option<u64>,
}

fn describe(doc: &DidDocument, metadata: Option<&civitas_core::api::DocumentMetadata>) -> String {
    let mut text = format!("{}\n", doc.id);
    if let Some(m) = metadata {
        if m.deactivated {
            text.push_str("  DEACTIVATED\n");
        }
        if let Some(v) = &m.version_id {
            text.push_str(&format!("  version   {v}\n"));
        }
        if let Some(u) = &m.updated {
            text.push_str(&format!("  updated   {u}\n"));
        }
        if let Some(n) = &m.next_version_id {
            text.push_str(&format!(
                "  next      {n} ({})\n",
                m.next_update.as_deref().unwrap_or("")
            ));
        }
        if let Some(p) = &m.pending_operation {
            text.push_str(&format!("  pending   controller operation {p}\n"));
        }
    }
    if let Some(c) = &doc.controller {
        text.push_str(&format!("  controller {c}\n"));
    }
    for vm in &doc.verification_method {
        let rels: Vec<&str> = [
            Relationship::Authentication,
            Relationship::AssertionMethod,
            Relationship::CapabilityInvocation,
            Relationship::CapabilityDelegation,
        ]
        .into_iter()
        .filter(|r| doc.relationship(*r).contains(&vm.id))
        .map(Relationship::as_str)
        .collect();
        text.push_str(&format!(
            "  #{} {} [{}]\n",
            vm.id.fragment().unwrap_or(""),
            vm.public_key_multibase,
            rels.join(", ")
        ));
    }
    for s in &doc.service {
        text.push_str(&format!("  service {} {}\n", s.kind, s.service_endpoint));
    }
    if let Some(m) = metadata {
        for k in &m.compromised_keys {
            text.push_str(&format!("  compromised {k}\n"));
        }
    }
    text
}

async fn resolve(ctx: &mut Ctx<'_>, did: &str, version: &Version) -> anyhow::Result<ExitStatus> {
    let did = parse_did(did)?;
    let mut wallet = ctx.open_wallet()?;
    let client = ctx.client(&mut wallet).await?;
    let resolved = client.resolve(&did, version).await?;
    ctx.remember(&mut wallet, &client)?;
    let empty = civitas_core::api::DocumentMetadata::default();
    let metadata = resolved.ledger.as_ref().map_or(&empty, |l| &l.metadata);
    let shown = Shown {
        did_document: &resolved.document,
        did_document_metadata: metadata,
        log_index: resolved.ledger.as_ref().map(|l| l.verified.index),
    };
    let text = describe(&resolved.document, Some(metadata));
    ctx.print(&shown, &text)?;
    Ok(ExitStatus::Success)
}

async fn show(ctx: &mut Ctx<'_>, did: Option<&str>) -> anyhow::Result<ExitStatus> {
    let wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(did)?.clone();
    if let Some(text) = &held.unpublished {
        let signed = signed_from_text(text)?;
        let did = parse_did(&held.did)?;
        let doc = document_from_operation(&did, signed.body());
        let text = format!(
            "{}  (not published: run 'wallet did publish')\n",
            describe(&doc, None)
        );
        ctx.print(&json!({"didDocument": doc, "published": false}), &text)?;
        return Ok(ExitStatus::Success);
    }
    drop(wallet);
    resolve(ctx, &held.did, &Version::Current).await
}

/// Signs and submits a step (update or deactivate) and records it in the wallet.
async fn submit_step(
    ctx: &mut Ctx<'_>,
    wallet: &mut Wallet,
    client: &RegistryClient,
    held_did: &str,
    op: Operation,
    key: &SecretKey,
) -> anyhow::Result<civitas_core::api::SubmitReceipt> {
    let signed = Signed::sign(op, key);
    let receipt = client.submit_operation(&signed).await?;
    ctx.remember(wallet, client)?;
    wallet
        .secrets
        .pick_mut(Some(held_did))?
        .ops
        .push(signed.id().to_string());
    Ok(receipt)
}

fn head_for_step(version: &LedgerVersion) -> anyhow::Result<(ObjectId, Operation)> {
    let verified = &version.verified;
    if verified.deactivated {
        bail!("{} is deactivated", verified.document.id);
    }
    if verified.latest != verified.operation.id() {
        bail!(
            "a controller operation ({}) is pending on this DID\n\nhint: a rotation key can cancel it with 'wallet did recover'",
            verified.latest
        );
    }
    Ok((verified.operation.id(), verified.operation.body().clone()))
}

async fn rotate(
    ctx: &mut Ctx<'_>,
    did: Option<&str>,
    compromised: bool,
) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(did)?.clone();
    let did = parse_did(&held.did)?;
    let client = ctx.client(&mut wallet).await?;
    let version = current(&client, &did).await?;
    let (prev, mut state) = head_for_step(&version)?;
    let rotation = held.rotation.key()?;
    let index = rotation_index(&state, &rotation.public_key())?;
    let status = if compromised {
        KeyStatus::Compromised
    } else {
        KeyStatus::Rotated
    };
    let (new_vms, retired) = replace_held_vms(&held, &mut state, status)?;
    state.op = OpKind::Update;
    state.did = Some(did.clone());
    state.prev = Some(prev);
    state.retired_keys = retired;
    state.controller_sig = None;
    state.signer = OpSigner::RotationKey(index);
    let receipt = submit_step(ctx, &mut wallet, &client, &held.did, state, &rotation).await?;
    wallet.secrets.pick_mut(Some(&held.did))?.vms = new_vms;
    wallet.save_secrets()?;
    ctx.print(
        &json!({"did": held.did, "index": receipt.index, "version": receipt.id}),
        &format!(
            "rotated the keys of {} (old keys marked {})",
            held.did,
            if compromised {
                "compromised"
            } else {
                "rotated"
            }
        ),
    )?;
    Ok(ExitStatus::Success)
}

/// Replaces every verification key this wallet holds with a new one under a new fragment,
/// keeping its relationships; returns the new held keys and the retired list.
fn replace_held_vms(
    held: &HeldDid,
    state: &mut Operation,
    status: KeyStatus,
) -> anyhow::Result<(Vec<HeldVm>, Vec<RetiredKey>)> {
    let mut number = last_key_number(state);
    let mut new_vms = Vec::new();
    let mut retired = Vec::new();
    let held_fragments: BTreeSet<&str> = held.vms.iter().map(|v| v.fragment.as_str()).collect();
    for vm in &mut state.verification_methods {
        if !held_fragments.contains(vm.id.as_str()) {
            continue;
        }
        let key = SecretKey::generate();
        number += 1;
        let fragment = format!("key-{number}");
        retired.push(RetiredKey {
            key: vm.public_key_multibase,
            status,
        });
        for list in [
            &mut state.authentication,
            &mut state.assertion_method,
            &mut state.capability_invocation,
            &mut state.capability_delegation,
        ] {
            for f in list.iter_mut() {
                if *f == vm.id {
                    f.clone_from(&fragment);
                }
            }
        }
        vm.id.clone_from(&fragment);
        vm.public_key_multibase = key.public_key();
        new_vms.push(HeldVm {
            fragment,
            key: StoredKey::new(&key),
        });
    }
    if new_vms.is_empty() {
        bail!("this wallet holds none of the DID's verification keys");
    }
    Ok((new_vms, retired))
}

async fn deactivate(ctx: &mut Ctx<'_>, did: Option<&str>) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(did)?.clone();
    let did = parse_did(&held.did)?;
    let client = ctx.client(&mut wallet).await?;
    let version = current(&client, &did).await?;
    let (prev, state) = head_for_step(&version)?;
    let rotation = held.rotation.key()?;
    let index = rotation_index(&state, &rotation.public_key())?;
    let op = Operation {
        op: OpKind::Deactivate,
        did: Some(did.clone()),
        prev: Some(prev),
        verification_methods: Vec::new(),
        authentication: Vec::new(),
        assertion_method: Vec::new(),
        capability_invocation: Vec::new(),
        capability_delegation: Vec::new(),
        services: Vec::new(),
        controller: None,
        controller_sig: None,
        rotation_keys: Vec::new(),
        retired_keys: Vec::new(),
        signer: OpSigner::RotationKey(index),
    };
    let receipt = submit_step(ctx, &mut wallet, &client, &held.did, op, &rotation).await?;
    wallet.save_secrets()?;
    ctx.print(
        &json!({"did": held.did, "index": receipt.index, "deactivated": true}),
        &format!(
            "deactivated {} (final once the recovery window has passed)",
            held.did
        ),
    )?;
    Ok(ExitStatus::Success)
}

/// The content of a recovery key file (encrypted like the keystore).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecoveryFile {
    did: String,
    recovery_key: StoredKey,
}

fn export_recovery(
    ctx: &mut Ctx<'_>,
    did: &str,
    file: &std::path::Path,
) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick_mut(Some(did))?;
    let key = held
        .recovery
        .clone()
        .with_context(|| format!("the recovery key of {did} was already exported"))?;
    let content = Zeroizing::new(serde_json::to_vec(&RecoveryFile {
        did: did.to_owned(),
        recovery_key: key,
    })?);
    let passphrase = ctx.passphrase(false)?;
    Keystore::create_with_params(file, &passphrase, &content, wallet.kdf_params())
        .with_context(|| format!("writing {}", file.display()))?;
    wallet.secrets.pick_mut(Some(did))?.recovery = None;
    wallet.save_secrets()?;
    ctx.print(
        &json!({"did": did, "file": file.display().to_string()}),
        &format!(
            "moved the recovery key of {did} to {} (encrypted with the wallet passphrase); keep it offline",
            file.display()
        ),
    )?;
    Ok(ExitStatus::Success)
}

async fn recover(
    ctx: &mut Ctx<'_>,
    did_text: &str,
    file: &std::path::Path,
) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let passphrase = ctx.passphrase(false)?;
    let (_, content) =
        Keystore::open(file, &passphrase).with_context(|| format!("opening {}", file.display()))?;
    let recovery_file: RecoveryFile =
        serde_json::from_slice(&content).context("the recovery file is damaged")?;
    if recovery_file.did != did_text {
        bail!(
            "{} holds the recovery key of {}, not of {did_text}",
            file.display(),
            recovery_file.did
        );
    }
    let recovery = recovery_file.recovery_key.key()?;
    let held = wallet.secrets.pick(Some(did_text))?.clone();
    let did = parse_did(did_text)?;
    let client = ctx.client(&mut wallet).await?;
    // The fork point: the newest canonical operation this wallet made itself.
    let history = client.history(&did).await?;
    let prev_id = history
        .operations
        .iter()
        .filter(|o| o.canonical)
        .map(|o| o.id.to_string())
        .rfind(|id| held.ops.contains(id))
        .context("none of this wallet's operations is in the DID's history")?;
    let version = client
        .resolve(&did, &Version::Id(prev_id.clone()))
        .await?
        .ledger
        .context("a did:civ resolution without ledger proofs")?;
    ctx.remember(&mut wallet, &client)?;
    if version.verified.deactivated {
        bail!("the wallet's last operation deactivated {did}");
    }
    let mut state = version.verified.operation.body().clone();
    let index = rotation_index(&state, &recovery.public_key())?;
    let (new_vms, mut retired) = replace_held_vms(&held, &mut state, KeyStatus::Compromised)?;
    let old_rotation = held.rotation.key()?.public_key();
    let new_rotation = SecretKey::generate();
    for key in &mut state.rotation_keys {
        if *key == old_rotation {
            *key = new_rotation.public_key();
            retired.push(RetiredKey {
                key: old_rotation,
                status: KeyStatus::Compromised,
            });
        }
    }
    state.op = OpKind::Update;
    state.did = Some(did.clone());
    state.prev = Some(
        prev_id
            .parse()
            .context("a stored operation id is damaged")?,
    );
    state.retired_keys = retired;
    state.controller_sig = None;
    state.signer = OpSigner::RotationKey(index);
    let signed = Signed::sign(state, &recovery);
    let receipt = client.submit_operation(&signed).await?;
    ctx.remember(&mut wallet, &client)?;
    let entry = wallet.secrets.pick_mut(Some(did_text))?;
    entry.ops.push(signed.id().to_string());
    entry.vms = new_vms;
    entry.rotation = StoredKey::new(&new_rotation);
    wallet.save_secrets()?;
    let nullified: Vec<String> = receipt.nullified.iter().map(ToString::to_string).collect();
    ctx.print(
        &json!({"did": did_text, "index": receipt.index, "nullified": nullified}),
        &format!(
            "recovered {did_text}: new keys in place{}",
            if nullified.is_empty() {
                String::new()
            } else {
                format!("; nullified {}", nullified.join(", "))
            }
        ),
    )?;
    Ok(ExitStatus::Success)
}

async fn history(ctx: &mut Ctx<'_>, did: &str) -> anyhow::Result<ExitStatus> {
    let did = parse_did(did)?;
    if did.method() != Method::Civ {
        bail!("only did:civ DIDs have a history");
    }
    let mut wallet = ctx.open_wallet()?;
    let client = ctx.client(&mut wallet).await?;
    let history = client.history(&did).await?;
    let mut text = format!("{}\n", history.did);
    for op in &history.operations {
        text.push_str(&format!(
            "  {:<10} {} index {:<6} {} signed by {}{}\n",
            op.op,
            op.time,
            op.index,
            op.id,
            op.signer,
            op.nullified_by
                .map(|by| format!(" NULLIFIED by {by}"))
                .unwrap_or_default()
        ));
    }
    ctx.print(&history, &text)?;
    Ok(ExitStatus::Success)
}

fn list(ctx: &mut Ctx<'_>) -> anyhow::Result<ExitStatus> {
    let wallet = ctx.open_wallet()?;
    let dids: Vec<_> = wallet
        .secrets
        .dids
        .iter()
        .map(|d| {
            json!({
                "did": d.did,
                "published": d.unpublished.is_none(),
                "default": wallet.secrets.default_did.as_deref() == Some(d.did.as_str()),
                "recoveryKeyInWallet": d.recovery.is_some(),
            })
        })
        .collect();
    let text: String = wallet
        .secrets
        .dids
        .iter()
        .map(|d| {
            format!(
                "{}{}{}\n",
                d.did,
                if wallet.secrets.default_did.as_deref() == Some(d.did.as_str()) {
                    " (default)"
                } else {
                    ""
                },
                if d.unpublished.is_some() {
                    " (not published)"
                } else {
                    ""
                }
            )
        })
        .collect();
    ctx.print(&json!({"dids": dids}), &text)?;
    Ok(ExitStatus::Success)
}
