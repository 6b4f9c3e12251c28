//! `wallet trust ...`: accreditations, signed as a root authority.

use anyhow::{Context as _, bail};
use civitas_core::constraint::Constraint;
use civitas_core::did::Did;
use civitas_core::document::Relationship;
use civitas_core::ledger::{Classification, Signed, TrustAction, TrustEntry};
use serde_json::json;

use super::Ctx;
use crate::ExitStatus;
use crate::cli::TrustCommand;

pub(crate) async fn run(ctx: &mut Ctx<'_>, command: TrustCommand) -> anyhow::Result<ExitStatus> {
    match command {
        TrustCommand::Accredit {
            issuer,
            vct,
            max_level,
            constraints,
            signer,
        } => {
            let level: Classification = max_level
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--max-level: {e}"))?;
            let constraints = constraints
                .iter()
                .map(|c| {
                    c.parse::<Constraint>()
                        .with_context(|| format!("--constraint {c:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            submit(
                ctx,
                TrustAction::Accredit,
                &issuer,
                &vct,
                Some(level),
                constraints,
                false,
                signer.as_deref(),
            )
            .await
        }
        TrustCommand::Withdraw {
            issuer,
            vct,
            prospective,
            signer,
        } => {
            submit(
                ctx,
                TrustAction::Withdraw,
                &issuer,
                &vct,
                None,
                Vec::new(),
                prospective,
                signer.as_deref(),
            )
            .await
        }
        TrustCommand::List { vct, at } => list(ctx, &vct, at.as_deref()).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn submit(
    ctx: &mut Ctx<'_>,
    action: TrustAction,
    issuer: &str,
    vct: &str,
    max_level: Option<Classification>,
    constraints: Vec<Constraint>,
    prospective: bool,
    signer: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let issuer: Did = issuer
        .parse()
        .with_context(|| format!("--issuer {issuer:?} is not a DID"))?;
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(signer)?.clone();
    let root: Did = held.did.parse().context("a stored DID is damaged")?;
    let client = ctx.client(&mut wallet).await?;
    let resolved = client
        .resolve(&root, &civitas_client::Version::Current)
        .await?;
    let mut signing = None;
    for url in resolved
        .document
        .relationship(Relationship::CapabilityInvocation)
    {
        if let Some(vm) = held
            .vms
            .iter()
            .find(|vm| Some(vm.fragment.as_str()) == url.fragment())
        {
            let key = vm.key.key()?;
            if resolved
                .document
                .key_for(url, Relationship::CapabilityInvocation)
                == Some(key.public_key())
            {
                signing = Some((url.clone(), key));
                break;
            }
        }
    }
    let Some((url, key)) = signing else {
        bail!("this wallet holds no capabilityInvocation key of {root}");
    };
    let history = client.trust_history(&issuer, vct).await?;
    let prev = history.entries.last().map(|e| e.id);
    let entry = TrustEntry {
        action,
        issuer: issuer.clone(),
        vct: Some(vct.to_owned()),
        max_level,
        constraints,
        prospective,
        prev,
        signer: url,
    };
    let signed = Signed::sign(entry, &key);
    let receipt = client.submit_operation(&signed).await?;
    ctx.remember(&mut wallet, &client)?;
    let verb = if action == TrustAction::Accredit {
        "accredited"
    } else {
        "withdrew"
    };
    ctx.print(
        &json!({"id": receipt.id, "index": receipt.index, "issuer": issuer.to_string(), "vct": vct}),
        &format!("{verb} {issuer} for {vct} (entry {})", receipt.id),
    )?;
    Ok(ExitStatus::Success)
}

async fn list(ctx: &mut Ctx<'_>, vct: &str, at: Option<&str>) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let client = ctx.client(&mut wallet).await?;
    let entries = client.accreditations(vct, at).await?;
    ctx.remember(&mut wallet, &client)?;
    let items: Vec<_> = entries
        .iter()
        .map(|e| {
            let b = e.body();
            json!({
                "issuer": b.issuer.to_string(),
                "vct": vct,
                "maxLevel": b.max_level,
                "constraints": b.constraints.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "id": e.id(),
            })
        })
        .collect();
    let text: String = entries
        .iter()
        .map(|e| {
            let b = e.body();
            format!(
                "{} up to {}{}\n",
                b.issuer,
                b.max_level
                    .map_or_else(|| "?".to_owned(), |l| format!("{l:?}").to_lowercase()),
                b.constraints
                    .iter()
                    .map(|c| format!("; {c}"))
                    .collect::<String>()
            )
        })
        .collect();
    ctx.print(
        &json!({"vct": vct, "issuers": items}),
        if text.is_empty() {
            "no accredited issuers"
        } else {
            &text
        },
    )?;
    Ok(ExitStatus::Success)
}
