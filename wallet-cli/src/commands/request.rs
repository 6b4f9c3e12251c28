//! `wallet request`: a signed request (the Civitas RFC 9421 profile) to a protected
//! service, with a presentation of one held credential disclosing only the claims asked
//! for. Key binding is the request signature itself (made with the credential's `cnf` key,
//! covering the presentation, target and a fresh nonce); `--kb-jwt` adds a KB-JWT as well.

use std::io::Read as _;

use anyhow::{Context as _, bail};
use civitas_core::did::{Did, DidUrl};
use civitas_core::document::Relationship;
use civitas_core::httpsig;
use civitas_core::keys::SecretKey;
use civitas_core::sdjwt::{self, SdJwt};

use super::Ctx;
use super::credential::held;
use super::did::{current, held_key};
use crate::ExitStatus;
use crate::cli::RequestArgs;

pub(crate) async fn run(ctx: &mut Ctx<'_>, args: RequestArgs) -> anyhow::Result<ExitStatus> {
    let method = args.method.to_ascii_uppercase();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        bail!(
            "expected a method such as GET or POST, found {:?}",
            args.method
        );
    }
    let origin = civitas_client::credential::origin(&args.url)
        .with_context(|| format!("expected an http(s) URL, found {:?}", args.url))?
        .to_owned();
    let body = match &args.data {
        None => Vec::new(),
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading the body from stdin")?;
            bytes
        }
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected 'Name: value'"))?;
        let name = name.trim().to_ascii_lowercase();
        if name.starts_with("civitas-") || name.starts_with("signature") || name == "content-digest"
        {
            bail!("--header {name}: the wallet sets this header itself");
        }
        headers.push((name, value.trim().to_owned()));
    }
    if !body.is_empty() && !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }

    let mut wallet = ctx.open_wallet()?;
    let (key_id, key): (DidUrl, SecretKey) = match &args.credential {
        Some(id) => {
            let paths: Vec<&str> = args.disclose.iter().map(String::as_str).collect();
            let (key_id, key, presentation) = presenting(&wallet, id, &paths)?;
            headers.push((httpsig::PRESENTATION_HEADER.to_owned(), presentation));
            (key_id, key)
        }
        None => {
            if !args.disclose.is_empty() || args.kb_jwt {
                bail!("--disclose and --kb-jwt need --credential");
            }
            let held_did = wallet.secrets.pick(args.signer.as_deref())?.clone();
            let did: Did = held_did
                .did
                .parse()
                .context("a DID in the wallet is malformed")?;
            let client = ctx.client(&mut wallet).await?;
            let version = current(&client, &did).await?;
            ctx.remember(&mut wallet, &client)?;
            held_key(
                &held_did,
                &version.verified.document,
                Relationship::Authentication,
            )?
        }
    };
    if let Some(p) = &args.purpose {
        headers.push((httpsig::PURPOSE_HEADER.to_owned(), p.clone()));
    }
    if let Some(note) = &args.purpose_note {
        headers.push(("civitas-purpose-note".to_owned(), note.clone()));
    }
    let nonce = httpsig::generate_nonce();
    if args.kb_jwt
        && let Some((_, presentation)) = headers
            .iter_mut()
            .find(|(n, _)| n == httpsig::PRESENTATION_HEADER)
    {
        let kb = sdjwt::create_kb_jwt(presentation, &origin, &nonce, now_s(), &key)
            .map_err(|e| anyhow::anyhow!("making the key-binding jwt: {e}"))?;
        presentation.push_str(&kb);
    }
    let fields: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signed = httpsig::sign_request(
        &httpsig::RequestToSign {
            method: &method,
            target_uri: &args.url,
            fields: &fields,
            body: &body,
            key_id: &key_id,
            created: now_s(),
            nonce: &nonce,
        },
        &key,
    )
    .context("signing the request")?;

    if args.print_request {
        let rest = &args.url[origin.len()..];
        let target = if rest.is_empty() { "/" } else { rest };
        let host = origin.split_once("://").map_or(origin.as_str(), |(_, h)| h);
        let mut text = format!("{method} {target} HTTP/1.1\r\nhost: {host}\r\n");
        for (name, value) in fields.iter().copied().chain(signed.fields()) {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            text.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        text.push_str("\r\n");
        ctx.out
            .write_all(text.as_bytes())
            .context("writing output")?;
        ctx.out.write_all(&body).context("writing output")?;
        return Ok(ExitStatus::Success);
    }

    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .context("making the HTTP client")?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).context("the method")?;
    let mut request = http.request(method, &args.url).body(body);
    for (name, value) in fields.iter().copied().chain(signed.fields()) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("sending to {}", args.url))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {}", args.url))?;
    eprintln!("{status}");
    ctx.out.write_all(&bytes).context("writing output")?;
    if !bytes.ends_with(b"\n") && !bytes.is_empty() {
        writeln!(ctx.out).context("writing output")?;
    }
    Ok(if status.is_client_error() || status.is_server_error() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// A presentation of the held credential `id` disclosing `disclose`, and the key (with its
/// DID URL) it is bound to, which signs the request and so proves the binding.
pub(crate) fn presenting(
    wallet: &crate::store::Wallet,
    id: &str,
    disclose: &[&str],
) -> anyhow::Result<(DidUrl, SecretKey, String)> {
    let credential = held(wallet, id)?;
    let holder = wallet.secrets.pick(Some(&credential.holder))?;
    let sd_jwt = SdJwt::parse(&credential.sd_jwt).context("the stored credential is damaged")?;
    let paths: Vec<&str> = disclose
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let presentation = sdjwt::present(&sd_jwt, &paths).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cnf = sdjwt::cnf_key(sd_jwt.issuer_jwt().payload())
        .map_err(|e| anyhow::anyhow!("the stored credential is damaged: {e}"))?;
    let vm = holder
        .vms
        .iter()
        .find(|vm| vm.key.key().is_ok_and(|k| k.public_key() == cnf))
        .context(
            "this wallet no longer holds the key the credential is bound to (rotated away?)",
        )?;
    let did: Did = holder
        .did
        .parse()
        .context("a DID in the wallet is malformed")?;
    Ok((did.with_fragment(&vm.fragment), vm.key.key()?, presentation))
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}
