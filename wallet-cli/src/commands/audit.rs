//! `wallet audit`: the records a verifier keeps where the signer is the caller or the data
//! subject, each anchored record's proof checked up to a checkpoint signed by the pinned
//! registry keys and consistent with the last checkpoint this wallet saw.

use anyhow::{Context as _, bail};
use civitas_core::audit::{self, RecordProof};
use civitas_core::did::{Did, DidUrl};
use civitas_core::document::Relationship;
use civitas_core::httpsig;
use civitas_core::keys::SecretKey;
use civitas_core::proof::PinnedKeys;
use serde_json::{Value, json};

use super::Ctx;
use super::did::{current, held_key};
use crate::ExitStatus;
use crate::cli::AuditArgs;

async fn signed_get(
    http: &reqwest::Client,
    url: &str,
    key_id: &DidUrl,
    key: &SecretKey,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let nonce = httpsig::generate_nonce();
    let signed = httpsig::sign_request(
        &httpsig::RequestToSign {
            method: "GET",
            target_uri: url,
            fields: &[],
            body: &[],
            key_id,
            created: chrono::Utc::now().timestamp(),
            nonce: &nonce,
        },
        key,
    )
    .context("signing the request")?;
    let mut request = http.get(url);
    for (name, value) in signed.fields() {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    let value = serde_json::from_slice(&bytes).unwrap_or_else(
        |_| json!({"detail": String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>()}),
    );
    Ok((status, value))
}

fn query_escape(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub(crate) async fn run(ctx: &mut Ctx<'_>, args: AuditArgs) -> anyhow::Result<ExitStatus> {
    let base = args.verifier.trim_end_matches('/').to_owned();
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(args.signer.as_deref())?.clone();
    let did: Did = held
        .did
        .parse()
        .context("a DID in the wallet is malformed")?;
    let client = ctx.client(&mut wallet).await?;
    let version = current(&client, &did).await?;
    let (key_id, key) = held_key(
        &held,
        &version.verified.document,
        Relationship::Authentication,
    )?;
    let latest = client.checkpoint().await?;
    ctx.remember(&mut wallet, &client)?;
    let pins = PinnedKeys {
        verifiers: wallet
            .config
            .log_keys
            .iter()
            .map(|k| k.parse())
            .collect::<Result<Vec<_>, _>>()
            .context("a pinned log key in config.json is malformed")?,
        min_signatures: wallet.config.min_signatures,
    };

    let mut query = Vec::new();
    if let Some(s) = &args.subject {
        query.push(format!("subject={}", query_escape(s)));
    }
    if let Some(c) = &args.caller {
        query.push(format!("caller={}", query_escape(c)));
    }
    let url = if query.is_empty() {
        format!("{base}/audit")
    } else {
        format!("{base}/audit?{}", query.join("&"))
    };
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("making the HTTP client")?;
    let (status, listing) = signed_get(&http, &url, &key_id, &key).await?;
    if !status.is_success() {
        bail!(
            "the verifier refused ({status}): {} ({})",
            listing.get("detail").and_then(Value::as_str).unwrap_or(""),
            listing.get("type").and_then(Value::as_str).unwrap_or("")
        );
    }
    let service = listing
        .get("service")
        .and_then(Value::as_str)
        .context("the verifier's answer names no service DID")?
        .to_owned();
    let records = listing
        .get("records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut failed = 0usize;
    let mut rows = Vec::new();
    let mut text = String::new();
    for item in &records {
        let seq = item.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let record = item.get("record").cloned().unwrap_or(Value::Null);
        let state = item.get("state").and_then(Value::as_str).unwrap_or("");
        let proof_state = if state == "anchored" {
            let (status, body) =
                signed_get(&http, &format!("{base}/audit/{seq}/proof"), &key_id, &key).await?;
            let checked = if status == reqwest::StatusCode::OK {
                serde_json::from_value::<RecordProof>(body)
                    .map_err(|e| e.to_string())
                    .and_then(|proof| {
                        audit::verify_proof(&proof, &service, &pins).map_err(|e| e.to_string())
                    })
            } else {
                Err(format!("the verifier answered {status} for the proof"))
            };
            match checked {
                Ok((proven, checkpoint)) => {
                    let listed: Result<audit::AuditRecord, _> =
                        serde_json::from_value(record.clone());
                    if listed.ok().as_ref() != Some(&proven) {
                        failed += 1;
                        "FAILED: the listed record differs from the proven one".to_owned()
                    } else if let Err(e) = client.check_consistency(&checkpoint, &latest).await {
                        failed += 1;
                        format!("FAILED: {e}")
                    } else {
                        format!("proven (checkpoint size {})", checkpoint.size())
                    }
                }
                Err(e) => {
                    failed += 1;
                    format!("FAILED: {e}")
                }
            }
        } else {
            "pending".to_owned()
        };
        let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or("-");
        text.push_str(&format!(
            "#{seq} {} {} {} {} caller={} subject={} purpose={} {}: {proof_state}\n",
            chrono::DateTime::from_timestamp_millis(
                i64::try_from(record.get("time").and_then(Value::as_u64).unwrap_or(0)).unwrap_or(0)
            )
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
            field("decision"),
            field("method"),
            field("path"),
            field("caller"),
            field("subject"),
            field("purpose"),
            record
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("allowed"),
        ));
        rows.push(json!({"seq": seq, "state": state, "proof": proof_state, "record": record}));
    }
    if records.is_empty() {
        text.push_str("no records\n");
    }
    ctx.print(
        &json!({"service": service, "records": rows, "failed": failed}),
        &text,
    )?;
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
