//! `wallet credential ...`: receiving credentials over OpenID4VCI (pre-authorized code
//! flow), keeping them in the encrypted keystore, presenting selected claims, verifying;
//! and, for an issuer's operators, making offers and changing statuses through the issuer's
//! admin API with RFC 9421 signed requests.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use civitas_client::credential::{Expectations, VerifiedCredential, acceptable_issuer_url};
use civitas_core::credential::{ISSUER_SERVICE_TYPE, PRE_AUTHORIZED_GRANT, PROOF_TYP};
use civitas_core::did::{Did, DidUrl};
use civitas_core::document::Relationship;
use civitas_core::httpsig;
use civitas_core::keys::SecretKey;
use civitas_core::schema::SchemaSet;
use civitas_core::sdjwt;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Ctx;
use super::did::{current, held_key};
use crate::ExitStatus;
use crate::cli::CredentialCommand;
use crate::store::{HeldCredential, Wallet};

pub(crate) async fn run(
    ctx: &mut Ctx<'_>,
    command: CredentialCommand,
) -> anyhow::Result<ExitStatus> {
    match command {
        CredentialCommand::Offer {
            issuer,
            vct,
            claims,
            holder,
            valid_for,
            signer,
            credential,
        } => {
            let signer = Signer::new(signer.as_deref(), credential.as_deref());
            offer(
                ctx,
                &issuer,
                &vct,
                &claims,
                holder.as_deref(),
                valid_for,
                &signer,
            )
            .await
        }
        CredentialCommand::Receive {
            offer,
            tx_code,
            holder,
        } => receive(ctx, &offer, tx_code.as_deref(), holder.as_deref()).await,
        CredentialCommand::List => list(ctx),
        CredentialCommand::Show { id, schemas } => show(ctx, &id, &schemas),
        CredentialCommand::Present {
            id,
            disclose,
            audience,
            nonce,
        } => present(ctx, &id, &disclose, &audience, &nonce),
        CredentialCommand::Verify {
            presentation,
            audience,
            nonce,
            schemas,
            max_status_age,
        } => {
            let key_binding = audience.zip(nonce);
            verify(ctx, &presentation, key_binding, &schemas, max_status_age).await
        }
        CredentialCommand::Revoke {
            issuer,
            id,
            suspend,
            reinstate,
            signer,
            credential,
        } => {
            let status = match (suspend, reinstate) {
                (true, _) => "suspended",
                (_, true) => "valid",
                _ => "revoked",
            };
            let signer = Signer::new(signer.as_deref(), credential.as_deref());
            revoke(ctx, &issuer, &id, status, &signer).await
        }
    }
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("making an HTTP client")
}

/// Loads the schemas of a directory (`*.schema.json` or `*.json`, examples excluded).
pub(crate) fn load_schemas(dir: &Path) -> anyhow::Result<SchemaSet> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "reading the schemas directory {}\n\nhint: pass --schemas DIR",
            dir.display()
        )
    })?;
    for entry in entries {
        let path = entry.context("listing schemas")?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_file() && name.ends_with(".json") {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((name.to_owned(), bytes));
        }
    }
    SchemaSet::from_files(files).with_context(|| format!("loading schemas from {}", dir.display()))
}

/// Who signs an admin request.
enum Signer<'a> {
    /// An operator DID of this wallet (the default DID when `None`).
    Did(Option<&'a str>),
    /// The holder of this `OfficialRole`, presenting its role.
    Credential(&'a str),
}

impl<'a> Signer<'a> {
    fn new(did: Option<&'a str>, credential: Option<&'a str>) -> Self {
        match credential {
            Some(id) => Self::Credential(id),
            None => Self::Did(did),
        }
    }
}

/// Signs and sends a JSON request to an admin route as `signer`.
async fn signed_request(
    ctx: &Ctx<'_>,
    wallet: &mut Wallet,
    signer: &Signer<'_>,
    url: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let signer = match signer {
        Signer::Did(did) => *did,
        Signer::Credential(id) => {
            let (key_id, key, presentation) = super::request::presenting(wallet, id, &["role"])?;
            return send_signed(
                url,
                body,
                &key_id,
                &key,
                &[(httpsig::PRESENTATION_HEADER, &presentation)],
            )
            .await;
        }
    };
    let held = wallet.secrets.pick(signer)?.clone();
    let did: Did = held
        .did
        .parse()
        .context("a DID in the wallet is malformed")?;
    let client = ctx.client(wallet).await?;
    let version = current(&client, &did).await?;
    ctx.remember(wallet, &client)?;
    let (key_id, key) = held_key(
        &held,
        &version.verified.document,
        Relationship::Authentication,
    )?;
    send_signed(url, body, &key_id, &key, &[]).await
}

async fn send_signed(
    url: &str,
    body: &Value,
    key_id: &DidUrl,
    key: &SecretKey,
    extra: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let bytes = serde_json::to_vec(body).context("encoding the request")?;
    let mut fields = vec![("content-type", "application/json")];
    fields.extend_from_slice(extra);
    let nonce = httpsig::generate_nonce();
    let created = chrono::Utc::now().timestamp();
    let signed = httpsig::sign_request(
        &httpsig::RequestToSign {
            method: "POST",
            target_uri: url,
            fields: &fields,
            body: &bytes,
            key_id,
            created,
            nonce: &nonce,
        },
        key,
    )
    .context("signing the request")?;
    let mut request = http()?.post(url).body(bytes);
    for (name, value) in fields.iter().copied().chain(signed.fields()) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    read_answer(url, response).await
}

async fn read_answer(url: &str, response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        json!({ "detail": String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>() })
    });
    if !status.is_success() {
        let kind = value
            .get("type")
            .or_else(|| value.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let detail = value
            .get("detail")
            .or_else(|| value.get("error_description"))
            .and_then(Value::as_str)
            .unwrap_or("");
        bail!("{url} refused (http {status}): {kind}: {detail}");
    }
    Ok(value)
}

fn issuer_base(issuer: &str) -> String {
    issuer.trim_end_matches('/').to_owned()
}

async fn offer(
    ctx: &mut Ctx<'_>,
    issuer: &str,
    vct: &str,
    claims: &Path,
    holder: Option<&str>,
    valid_for: Option<std::time::Duration>,
    signer: &Signer<'_>,
) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let text = std::fs::read(claims)
        .with_context(|| format!("reading the claims {}", claims.display()))?;
    let claims: Map<String, Value> = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a JSON object of claims", claims.display()))?;
    let mut body = json!({ "credential_type": vct, "claims": claims });
    if let Some(holder) = holder {
        body["holder"] = json!(holder);
    }
    if let Some(valid_for) = valid_for {
        body["valid_for_s"] = json!(valid_for.as_secs());
    }
    let url = format!("{}/admin/offers", issuer_base(issuer));
    let answer = signed_request(ctx, &mut wallet, signer, &url, &body).await?;
    let uri = answer
        .get("credential_offer_uri")
        .and_then(Value::as_str)
        .context("the issuer's answer has no credential_offer_uri")?
        .to_owned();
    let tx_code = answer.get("tx_code").and_then(Value::as_str);
    let mut text = format!("{uri}\n");
    if let Some(code) = tx_code {
        text.push_str(&format!("tx_code: {code}\n"));
    }
    ctx.print(&answer, &text)?;
    Ok(ExitStatus::Success)
}

async fn revoke(
    ctx: &mut Ctx<'_>,
    issuer: &str,
    id: &str,
    status: &str,
    signer: &Signer<'_>,
) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let url = format!(
        "{}/admin/credentials/{}/status",
        issuer_base(issuer),
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
    );
    let answer =
        signed_request(ctx, &mut wallet, signer, &url, &json!({ "status": status })).await?;
    let text = format!("credential {id} is now {status}\n");
    ctx.print(&answer, &text)?;
    Ok(ExitStatus::Success)
}

/// A parsed `openid-credential-offer://` URI.
struct CredentialOffer {
    issuer: String,
    config_id: String,
    code: String,
    tx_code: bool,
}

async fn parse_offer(uri: &str) -> anyhow::Result<CredentialOffer> {
    let query = uri
        .strip_prefix("openid-credential-offer://")
        .and_then(|rest| rest.split_once('?').map(|(_, q)| q))
        .context("expected an openid-credential-offer:// URI")?;
    let mut offer_json = None;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .context("the offer URI is not valid percent-encoded utf-8")?
            .into_owned();
        match name {
            "credential_offer" => offer_json = Some(value),
            "credential_offer_uri" => {
                if !acceptable_issuer_url(&value) {
                    bail!("the offer is at {value:?}: expected https (or http on loopback)");
                }
                let response = http()?
                    .get(&value)
                    .send()
                    .await
                    .with_context(|| format!("fetching the offer from {value}"))?;
                offer_json = Some(read_answer(&value, response).await?.to_string());
            }
            _ => {}
        }
    }
    let offer: Value =
        serde_json::from_str(&offer_json.context("the URI carries no credential offer")?)
            .context("the credential offer is not JSON")?;
    let issuer = offer
        .get("credential_issuer")
        .and_then(Value::as_str)
        .context("the offer has no credential_issuer")?
        .trim_end_matches('/')
        .to_owned();
    if !acceptable_issuer_url(&issuer) {
        bail!("the issuer {issuer:?} is not https (http is allowed only on loopback)");
    }
    let config_id = match offer
        .get("credential_configuration_ids")
        .and_then(Value::as_array)
    {
        Some(ids) if ids.len() == 1 => ids[0]
            .as_str()
            .context("a credential configuration id is not a string")?
            .to_owned(),
        _ => bail!("expected an offer of exactly one credential configuration"),
    };
    let grant = offer
        .get("grants")
        .and_then(|g| g.get(PRE_AUTHORIZED_GRANT))
        .context("the offer has no pre-authorized code grant")?;
    let code = grant
        .get("pre-authorized_code")
        .and_then(Value::as_str)
        .context("the offer has no pre-authorized_code")?
        .to_owned();
    Ok(CredentialOffer {
        issuer,
        config_id,
        code,
        tx_code: grant.get("tx_code").is_some(),
    })
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn receive(
    ctx: &mut Ctx<'_>,
    uri: &str,
    tx_code: Option<&str>,
    holder: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let offer = parse_offer(uri).await?;
    if offer.tx_code && tx_code.is_none() {
        bail!("this offer needs the tx code the issuer gave you\n\nhint: pass --tx-code CODE");
    }
    let mut wallet = ctx.open_wallet()?;
    let held = wallet.secrets.pick(holder)?.clone();
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
    let http = http()?;

    let metadata_url = format!("{}/.well-known/openid-credential-issuer", offer.issuer);
    let metadata = read_answer(&metadata_url, http.get(&metadata_url).send().await?).await?;
    if metadata
        .get("credential_issuer")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('/'))
        != Some(offer.issuer.as_str())
    {
        bail!("the issuer metadata names another credential_issuer than the offer");
    }
    let config = metadata
        .get("credential_configurations_supported")
        .and_then(|c| c.get(&offer.config_id))
        .with_context(|| format!("the issuer does not describe {}", offer.config_id))?;
    if config.get("format").and_then(Value::as_str) != Some("dc+sd-jwt") {
        bail!("expected a dc+sd-jwt credential configuration");
    }
    let endpoint = |name: &str| -> anyhow::Result<String> {
        metadata
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("the issuer metadata has no {name}"))
    };
    let credential_endpoint = endpoint("credential_endpoint")?;
    let nonce_endpoint = endpoint("nonce_endpoint")?;
    let as_url = format!("{}/.well-known/oauth-authorization-server", offer.issuer);
    let as_metadata = read_answer(&as_url, http.get(&as_url).send().await?).await?;
    let token_endpoint = as_metadata
        .get("token_endpoint")
        .and_then(Value::as_str)
        .context("the authorization server metadata has no token_endpoint")?
        .to_owned();
    for url in [&credential_endpoint, &nonce_endpoint, &token_endpoint] {
        if !acceptable_issuer_url(url) {
            bail!("the issuer endpoint {url:?} is not https (or http on loopback)");
        }
    }

    let mut form = vec![
        ("grant_type", PRE_AUTHORIZED_GRANT.to_owned()),
        ("pre-authorized_code", offer.code.clone()),
    ];
    if let Some(code) = tx_code {
        form.push(("tx_code", code.to_owned()));
    }
    let token = read_answer(
        &token_endpoint,
        http.post(&token_endpoint).form(&form).send().await?,
    )
    .await?;
    let access_token = token
        .get("access_token")
        .and_then(Value::as_str)
        .context("the token response has no access_token")?
        .to_owned();
    let nonce = read_answer(&nonce_endpoint, http.post(&nonce_endpoint).send().await?).await?;
    let c_nonce = nonce
        .get("c_nonce")
        .and_then(Value::as_str)
        .context("the nonce response has no c_nonce")?;

    let mut header = Map::new();
    header.insert("alg".to_owned(), json!("EdDSA"));
    header.insert("typ".to_owned(), json!(PROOF_TYP));
    header.insert("kid".to_owned(), json!(key_id.to_string()));
    let mut payload = Map::new();
    payload.insert("aud".to_owned(), json!(offer.issuer));
    payload.insert("iat".to_owned(), json!(now_s()));
    payload.insert("nonce".to_owned(), json!(c_nonce));
    let proof = civitas_core::jws::sign_compact(&header, &payload, &key)
        .context("signing the key proof")?;
    let answer = read_answer(
        &credential_endpoint,
        http.post(&credential_endpoint)
            .bearer_auth(&access_token)
            .json(&json!({
                "credential_configuration_id": offer.config_id,
                "proofs": { "jwt": [proof] },
            }))
            .send()
            .await?,
    )
    .await?;
    let sd_jwt = answer
        .get("credentials")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c.get("credential"))
        .and_then(Value::as_str)
        .context("the credential response has no credentials[0].credential")?
        .to_owned();

    // Check what arrived before keeping it: issued to us, by a DID that lists this issuer.
    let unverified = civitas_core::credential::Unverified::parse(&sd_jwt).map_err(|e| {
        anyhow::anyhow!("the credential is malformed ({}): {e}", e.problem().slug())
    })?;
    let r = unverified.registered();
    if r.sub != did.as_str() || r.cnf != key.public_key() {
        bail!("the credential is not bound to {did} and its key");
    }
    let issuer_doc = client
        .resolve(&r.iss, &civitas_client::Version::Current)
        .await
        .with_context(|| format!("resolving the issuer {}", r.iss))?;
    if !issuer_doc
        .document
        .service_endpoints(ISSUER_SERVICE_TYPE)
        .any(|e| e.trim_end_matches('/') == offer.issuer)
    {
        bail!(
            "{} does not list {} as its credential issuer service: refusing the credential",
            r.iss,
            offer.issuer
        );
    }
    let vct = r.vct.clone();
    let issuer = r.iss.to_string();
    ctx.remember(&mut wallet, &client)?;
    let id = unverified.id();
    if wallet.secrets.credentials.iter().any(|c| c.id == id) {
        bail!("this wallet already holds credential {id}");
    }
    wallet.secrets.credentials.push(HeldCredential {
        id: id.clone(),
        sd_jwt,
        vct: vct.clone(),
        issuer: issuer.clone(),
        issuer_url: offer.issuer.clone(),
        holder: did.to_string(),
        received_ms: u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0),
    });
    wallet.save_secrets()?;
    let summary = json!({ "id": id, "vct": vct, "issuer": issuer, "holder": did.to_string() });
    ctx.print(
        &summary,
        &format!("received credential {id}\n  type {vct}\n  issuer {issuer}\n"),
    )?;
    Ok(ExitStatus::Success)
}

#[derive(Serialize)]
struct ListedCredential<'a> {
    id: &'a str,
    vct: &'a str,
    issuer: &'a str,
    issuer_url: &'a str,
    holder: &'a str,
    received: String,
}

fn rfc3339_ms(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn list(ctx: &mut Ctx<'_>) -> anyhow::Result<ExitStatus> {
    let wallet = ctx.open_wallet()?;
    let items: Vec<ListedCredential<'_>> = wallet
        .secrets
        .credentials
        .iter()
        .map(|c| ListedCredential {
            id: &c.id,
            vct: &c.vct,
            issuer: &c.issuer,
            issuer_url: &c.issuer_url,
            holder: &c.holder,
            received: rfc3339_ms(c.received_ms),
        })
        .collect();
    let mut text = String::new();
    if items.is_empty() {
        text.push_str("no credentials\n");
    }
    for c in &items {
        text.push_str(&format!("{}  {}  from {}\n", c.id, c.vct, c.issuer));
    }
    ctx.print(&json!({ "credentials": items }), &text)?;
    Ok(ExitStatus::Success)
}

pub(crate) fn held<'a>(wallet: &'a Wallet, id: &str) -> anyhow::Result<&'a HeldCredential> {
    wallet
        .secrets
        .credentials
        .iter()
        .find(|c| c.id == id)
        .with_context(|| {
            format!(
                "no credential {id} in this wallet\n\nhint: 'wallet credential list' shows them"
            )
        })
}

fn show(ctx: &mut Ctx<'_>, id: &str, schemas: &Path) -> anyhow::Result<ExitStatus> {
    let wallet = ctx.open_wallet()?;
    let credential = held(&wallet, id)?;
    let schemas = load_schemas(schemas)?;
    let unverified = civitas_core::credential::Unverified::parse(&credential.sd_jwt)
        .map_err(|e| anyhow::anyhow!("the stored credential is damaged: {e}"))?;
    let schema = schemas.by_vct(&credential.vct);
    let disclosable: Vec<&String> = unverified.processed().disclosed().iter().collect();
    let mut claims = Vec::new();
    for (name, value) in unverified.processed().claims() {
        if sdjwt::NEVER_DISCLOSABLE.contains(&name.as_str()) {
            continue;
        }
        let classification = schema
            .and_then(|s| s.classification_of(&civitas_core::schema::ClaimPath::top(name)))
            .map(|c| format!("{c:?}").to_lowercase());
        let is_disclosable = disclosable
            .iter()
            .any(|p| *p == name || p.starts_with(&format!("{name}/")));
        claims.push(json!({
            "name": name,
            "value": value,
            "classification": classification,
            "disclosable": is_disclosable,
        }));
    }
    let r = unverified.registered();
    let mut text = format!(
        "credential {id}\n  type    {}\n  issuer  {}\n  holder  {}\n  issued  {}\n",
        r.vct,
        r.iss,
        r.sub,
        rfc3339_ms(u64::try_from(r.iat).unwrap_or(0) * 1000)
    );
    if let Some(exp) = r.exp {
        text.push_str(&format!(
            "  expires {}\n",
            rfc3339_ms(u64::try_from(exp).unwrap_or(0) * 1000)
        ));
    }
    text.push_str("  claims:\n");
    for c in &claims {
        text.push_str(&format!(
            "    {:<24} {:<10} {:<12} {}\n",
            c["name"].as_str().unwrap_or(""),
            c["classification"].as_str().unwrap_or("unknown"),
            if c["disclosable"] == json!(true) {
                "disclosable"
            } else {
                "always shown"
            },
            c["value"]
        ));
    }
    let value = json!({
        "id": id,
        "vct": r.vct,
        "issuer": r.iss.to_string(),
        "holder": r.sub,
        "iat": r.iat,
        "exp": r.exp,
        "claims": claims,
        "disclosable": disclosable,
    });
    ctx.print(&value, &text)?;
    Ok(ExitStatus::Success)
}

fn present(
    ctx: &mut Ctx<'_>,
    id: &str,
    disclose: &[String],
    audience: &str,
    nonce: &str,
) -> anyhow::Result<ExitStatus> {
    let wallet = ctx.open_wallet()?;
    let paths: Vec<&str> = disclose.iter().map(String::as_str).collect();
    let (_, key, presentation) = super::request::presenting(&wallet, id, &paths)?;
    let kb = sdjwt::create_kb_jwt(&presentation, audience, nonce, now_s(), &key)
        .map_err(|e| anyhow::anyhow!("making the key-binding jwt: {e}"))?;
    let out = format!("{presentation}{kb}");
    ctx.print(&json!({ "presentation": out }), &out)?;
    Ok(ExitStatus::Success)
}

async fn verify(
    ctx: &mut Ctx<'_>,
    presentation: &str,
    key_binding: Option<(String, String)>,
    schemas: &Path,
    max_status_age: std::time::Duration,
) -> anyhow::Result<ExitStatus> {
    let text = if presentation == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the presentation from stdin")?;
        s.trim().to_owned()
    } else {
        presentation.trim().to_owned()
    };
    let schemas = load_schemas(schemas)?;
    let mut wallet = ctx.open_wallet()?;
    let client = ctx.client(&mut wallet).await?;
    let expect = Expectations {
        key_binding,
        max_status_age_s: max_status_age.as_secs(),
        ..Expectations::default()
    };
    let result =
        civitas_client::credential::verify(&client, &http()?, &schemas, &text, &expect, now_s())
            .await;
    ctx.remember(&mut wallet, &client)?;
    match result {
        Ok(verified) => {
            print_verified(ctx, &verified)?;
            Ok(ExitStatus::Success)
        }
        Err(e) => {
            let value = json!({
                "valid": false,
                "type": e.problem().uri(),
                "detail": e.to_string(),
            });
            ctx.print(&value, &format!("invalid: {} ({})\n", e, e.problem().uri()))?;
            Ok(ExitStatus::Failure)
        }
    }
}

fn print_verified(ctx: &mut Ctx<'_>, v: &VerifiedCredential) -> anyhow::Result<()> {
    let r = &v.registered;
    let mut text = format!(
        "valid credential {}\n  type   {}\n  issuer {}\n  holder {}\n  disclosed:\n",
        v.id, r.vct, r.iss, r.sub
    );
    let mut disclosed = Map::new();
    for (path, level) in &v.classifications {
        let value = lookup(&v.claims, path).cloned().unwrap_or(Value::Null);
        let level = level.map(|l| format!("{l:?}").to_lowercase());
        text.push_str(&format!(
            "    {:<28} {:<10} {}\n",
            path,
            level.as_deref().unwrap_or("unknown"),
            value
        ));
        disclosed.insert(
            path.clone(),
            json!({ "value": value, "classification": level }),
        );
    }
    let value = json!({
        "valid": true,
        "id": v.id,
        "vct": r.vct,
        "issuer": r.iss.to_string(),
        "holder": r.sub,
        "disclosed": disclosed,
        "claims": v.claims,
    });
    ctx.print(&value, &text)
}

/// The value at a disclosed path (`a/b/0`).
fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('/');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = match current {
            Value::Object(m) => m.get(part)?,
            Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}
