//! Interoperability with the IETF SD-JWT reference implementation (PyPI `sd-jwt`, driven
//! through `tests/interop/sdjwt_oracle.py` in the virtual environment `.ci/run` makes):
//! credentials from our issuer verify there, and presentations it makes from them verify
//! here.
//!
//! The holder is played by the test itself, with no DID: it redeems an unbound offer over
//! OpenID4VCI with a `jwk` proof, so the credential is bound to a did:jwk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use civitas_client::Version;
use civitas_client::credential::{self, Expectations};
use civitas_core::did::{Did, DidUrl};
use civitas_core::document::Relationship;
use civitas_core::encoding::b64url;
use civitas_core::jws::{self, Jws};
use civitas_core::keys::SecretKey;
use civitas_core::schema::SchemaSet;
use serde_json::{Map, Value, json};

use crate::credentials::World;
use crate::harness::schemas_dir;

/// The reference implementation's version `.ci/run` installs.
const REFERENCE_VERSION: &str = "0.10.4";
/// The environment variable naming another interpreter with `sd-jwt` installed.
const PYTHON_ENV: &str = "CIVITAS_INTEROP_PYTHON";
/// Prints the installed `sd-jwt` version, or `not installed`.
const VERSION_PROBE: &str = "import importlib.metadata as m
try:
    print(m.version('sd-jwt'))
except m.PackageNotFoundError:
    print('not installed')";
use civitas_core::credential::PRE_AUTHORIZED_GRANT;
const VERIFIER: &str = "https://verifier.example";
const NONCE: &str = "n-42";

/// The Python oracle: the venv's interpreter and the script, writing files into `dir`.
struct Oracle {
    python: PathBuf,
    script: PathBuf,
    dir: PathBuf,
}

impl Oracle {
    /// The oracle run by `python` (see [`interop_python`]), with its files in `dir`.
    fn new(python: PathBuf, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            python,
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/sdjwt_oracle.py"),
            dir: dir.to_owned(),
        }
    }

    /// The RFC 9421 oracle (`httpsig_oracle.py`) run by `python`, with its files in `dir`.
    fn httpsig(python: PathBuf, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            python,
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/httpsig_oracle.py"),
            dir: dir.to_owned(),
        }
    }

    /// Writes `text` to a file named `name` in the oracle's directory; returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.script.display()))
    }

    /// Runs the oracle; returns its stdout, panicking with its stderr unless it succeeded.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "sdjwt_oracle {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

/// The interpreter of the interop virtual environment (`target/interop-venv`, or
/// `$CIVITAS_INTEROP_PYTHON`), checked to have the pinned reference implementation. Fails,
/// never skips, when it is missing: CI must run these tests.
fn interop_python() -> PathBuf {
    let python = std::env::var_os(PYTHON_ENV).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/interop-venv/bin/python"),
        PathBuf::from,
    );
    let how = format!(
        "run `bash .ci/run`, or create the virtual environment yourself:\n  \
         python3 -m venv target/interop-venv && \
         target/interop-venv/bin/pip install sd-jwt=={REFERENCE_VERSION} http-message-signatures==3.0.0\n\
         (or set {PYTHON_ENV} to an interpreter that has sd-jwt {REFERENCE_VERSION})"
    );
    let probe = Command::new(&python)
        .args(["-c", VERSION_PROBE])
        .output()
        .unwrap_or_else(|e| panic!("no interop Python at {} ({e}): {how}", python.display()));
    let version = String::from_utf8_lossy(&probe.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&probe.stderr).trim().to_owned();
    assert!(
        probe.status.success() && version == REFERENCE_VERSION,
        "{} does not have sd-jwt {REFERENCE_VERSION} (found {version:?}{}{stderr}): {how}",
        python.display(),
        if stderr.is_empty() { "" } else { "; " },
    );
    python
}

/// Decodes the `%XX` escapes of a URI component.
fn percent_decode(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = std::str::from_utf8(tail.get(..2).expect("a truncated %-escape")).unwrap();
            out.push(u8::from_str_radix(hex, 16).expect("a %-escape that is not hex"));
            rest = &tail[2..];
        } else {
            out.push(first);
            rest = tail;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Changes the first character of a compact JWS's signature (to another base64url
/// character that keeps the encoding canonical).
fn tamper_signature(jws: &str) -> String {
    let dot = jws.rfind('.').unwrap();
    let first = jws.as_bytes()[dot + 1];
    let other = if first == b'A' { 'B' } else { 'A' };
    format!("{}{other}{}", &jws[..=dot], &jws[dot + 2..])
}

fn now_s() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// The workspace's schemas, as verifiers load them.
fn schema_set() -> SchemaSet {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(schemas_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".schema.json") {
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
    SchemaSet::from_files(files).unwrap()
}

/// Redeems `offer_uri` as a holder with no DID: OpenID4VCI pre-authorized code flow with a
/// `jwk` proof of `key`. Returns the issued SD-JWT VC.
async fn receive_with_jwk(offer_uri: &str, tx_code: &str, key: &SecretKey) -> String {
    let proof_key = json!({ "jwk": key.public_key().to_jwk() });
    receive(offer_uri, Some(tx_code), "BusinessLicense", proof_key, key).await
}

/// Redeems `offer_uri` (pre-authorized code flow, `tx_code` if the offer has one) for the
/// configuration `config`, proving `key` named in the proof header by `proof_key` (a `jwk`
/// or a `kid`). Returns the issued SD-JWT VC.
pub(crate) async fn receive(
    offer_uri: &str,
    tx_code: Option<&str>,
    config: &str,
    proof_key: Value,
    key: &SecretKey,
) -> String {
    let encoded = offer_uri
        .strip_prefix("openid-credential-offer://?credential_offer=")
        .expect("an offer by value");
    let offer: Value = serde_json::from_str(&percent_decode(encoded)).unwrap();
    let issuer = offer["credential_issuer"].as_str().unwrap().to_owned();
    assert_eq!(offer["credential_configuration_ids"], json!([config]));
    let code = offer["grants"][PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
        .as_str()
        .unwrap();

    let http = reqwest::Client::new();
    let answer = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        body
    };
    let token = answer(
        http.post(format!("{issuer}/token"))
            .form(
                &[
                    ("grant_type", PRE_AUTHORIZED_GRANT),
                    ("pre-authorized_code", code),
                ]
                .into_iter()
                .chain(tx_code.map(|t| ("tx_code", t)))
                .collect::<Vec<_>>(),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let access_token = token["access_token"].as_str().unwrap();
    let nonce = answer(http.post(format!("{issuer}/nonce")).send().await.unwrap()).await;

    let mut header = json!({
        "alg": "EdDSA",
        "typ": "openid4vci-proof+jwt",
    });
    for (name, value) in proof_key.as_object().unwrap() {
        header[name] = value.clone();
    }
    let payload = json!({ "aud": issuer, "iat": now_s(), "nonce": nonce["c_nonce"] });
    let as_map = |v: Value| -> Map<String, Value> { serde_json::from_value(v).unwrap() };
    let proof = jws::sign_compact(&as_map(header), &as_map(payload), key).unwrap();
    let issued = answer(
        http.post(format!("{issuer}/credential"))
            .bearer_auth(access_token)
            .json(&json!({
                "credential_configuration_id": config,
                "proofs": { "jwt": [proof] },
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    issued["credentials"][0]["credential"]
        .as_str()
        .expect("credentials[0].credential")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn reference_implementation_verifies_our_credentials_and_we_verify_its_presentations() {
    let python = interop_python();
    let w = World::new().await;
    let oracle = Oracle::new(python, &w.tmp.path().join("interop"));
    let example: Value =
        serde_json::from_slice(&std::fs::read(World::example("BusinessLicense")).unwrap()).unwrap();

    // An unbound offer, redeemed by a holder with only a key.
    let (uri, tx_code) = w
        .offer_uri("BusinessLicense", &World::example("BusinessLicense"), None)
        .await;
    let tx_code = tx_code.expect("an unbound offer has a tx code");
    let holder = SecretKey::generate();
    let sd_jwt = receive_with_jwk(&uri, &tx_code, &holder).await;
    let issuer_jwt = Jws::parse(sd_jwt.split('~').next().unwrap()).unwrap();
    let holder_did = Did::jwk_from_public_key(&holder.public_key());
    assert_eq!(issuer_jwt.payload()["sub"], holder_did.as_str());

    // The issuer's key, as the test's registry client resolves it.
    let kid: DidUrl = issuer_jwt.kid().expect("a kid").parse().unwrap();
    assert_eq!(kid.did().as_str(), w.department);
    let registry_client = w.registry.client().await;
    let issuer_key = registry_client
        .resolve(kid.did(), &Version::Current)
        .await
        .unwrap()
        .document
        .key_for(&kid, Relationship::AssertionMethod)
        .expect("the kid is an assertion key of the department");
    let issuer_jwk = oracle.file(
        "issuer.jwk",
        &serde_json::to_string(&issuer_key.to_jwk()).unwrap(),
    );

    // Our credential verifies with the reference implementation, every claim disclosed.
    let credential_file = oracle.file("credential.sd-jwt", &sd_jwt);
    let claims: Value = serde_json::from_str(&oracle.ok(&[
        "verify",
        "--issuer-jwk",
        &issuer_jwk,
        "--credential",
        &credential_file,
    ]))
    .unwrap();
    for name in ["name", "unified_social_credit_code", "legal_representative"] {
        assert_eq!(
            claims[name], example[name],
            "{name} as the reference read it"
        );
    }
    assert_eq!(claims["sub"], holder_did.as_str());

    // The reference implementation presents it, disclosing one claim, with a KB-JWT.
    let seed = holder.to_bytes();
    let mut holder_jwk = serde_json::to_value(holder.public_key().to_jwk()).unwrap();
    holder_jwk["d"] = json!(b64url(&seed[..]));
    let holder_jwk = oracle.file("holder.jwk", &holder_jwk.to_string());
    let presentation = oracle.ok(&[
        "present",
        "--credential",
        &credential_file,
        "--disclose",
        "legal_representative",
        "--holder-jwk",
        &holder_jwk,
        "--aud",
        VERIFIER,
        "--nonce",
        NONCE,
    ]);
    assert!(!presentation.ends_with('~'), "a presentation with a KB-JWT");

    // The reference implementation accepts its own presentation (a check on the oracle).
    let presentation_file = oracle.file("presentation.sd-jwt", &presentation);
    let shown: Value = serde_json::from_str(&oracle.ok(&[
        "verify",
        "--issuer-jwk",
        &issuer_jwk,
        "--credential",
        &presentation_file,
        "--aud",
        VERIFIER,
        "--nonce",
        NONCE,
    ]))
    .unwrap();
    assert_eq!(
        shown["legal_representative"],
        example["legal_representative"]
    );

    // Our verifier accepts it in full: issuer key, accreditation, status, KB-JWT.
    let schemas = schema_set();
    let http = reqwest::Client::new();
    let expect = Expectations {
        key_binding: Some((VERIFIER.into(), NONCE.into())),
        ..Default::default()
    };
    let verified = credential::verify(
        &registry_client,
        &http,
        &schemas,
        &presentation,
        &expect,
        now_s(),
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "our verifier refused the reference presentation ({}): {e}",
            e.problem().slug()
        )
    });
    assert_eq!(verified.disclosed, ["legal_representative"]);
    assert_eq!(
        verified.claims["legal_representative"],
        example["legal_representative"]
    );
    assert_eq!(verified.claims["name"], example["name"]);
    assert_eq!(verified.registered.iss.as_str(), w.department);

    // Negative controls: a KB-JWT with a broken signature is refused here, and an issuer
    // signature broken is refused there.
    let (disclosed_part, kb_jwt) = presentation.rsplit_once('~').unwrap();
    let tampered = format!("{disclosed_part}~{}", tamper_signature(kb_jwt));
    let refused = credential::verify(
        &registry_client,
        &http,
        &schemas,
        &tampered,
        &expect,
        now_s(),
    )
    .await
    .expect_err("a tampered KB-JWT signature must be refused");
    assert_eq!(refused.problem().slug(), "invalid-kb-jwt", "{refused}");

    let (jwt, disclosures) = sd_jwt.split_once('~').unwrap();
    let forged = oracle.file(
        "forged.sd-jwt",
        &format!("{}~{disclosures}", tamper_signature(jwt)),
    );
    let output = oracle.run(&[
        "verify",
        "--issuer-jwk",
        &issuer_jwk,
        "--credential",
        &forged,
    ]);
    assert!(
        !output.status.success(),
        "the reference implementation accepted a tampered issuer signature: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A request signed by an independent RFC 9421 implementation (PyPI
/// `http-message-signatures`), carrying a presentation the reference SD-JWT implementation
/// made (with a KB-JWT bound to the signature's nonce), passes the verifier gateway; the
/// same request tampered with does not.
#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_accepts_requests_signed_and_presented_by_independent_implementations() {
    let python = interop_python();
    let w = World::new().await;
    let upstream = crate::harness::Upstream::start().await;
    let gateway = crate::harness::VerifierProcess::start(
        &w.tmp.path().join("verifier"),
        crate::harness::reserve_port(),
        &w.registry.url,
        &upstream.url,
        &[],
    );
    // The holder: a did:civ whose key the test, and so the Python side, holds.
    let client = w.registry.client().await;
    let holder = crate::gateway::Caller::publish(&client, None).await;
    let mut claims: Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(World::example("OfficialRole")).unwrap())
            .unwrap();
    claims.insert("clearance".to_owned(), json!(4));
    let file = w.claims_file("official.json", &Value::Object(claims));
    let (uri, _) = w
        .offer_uri("OfficialRole", &file, Some(holder.did.as_str()))
        .await;
    let credential = receive(
        &uri,
        None,
        "OfficialRole",
        json!({ "kid": holder.kid.to_string() }),
        &holder.key,
    )
    .await;

    let sdjwt = Oracle::new(python.clone(), &w.tmp.path().join("oracle"));
    let mut holder_jwk = serde_json::to_value(holder.key.public_key().to_jwk()).unwrap();
    holder_jwk["d"] = json!(b64url(&holder.key.to_bytes()[..]));
    let holder_jwk = sdjwt.file("holder.jwk", &holder_jwk.to_string());
    let credential_file = sdjwt.file("credential.txt", &credential);
    let nonce = civitas_core::httpsig::generate_nonce();
    let presentation = sdjwt.ok(&[
        "present",
        "--credential",
        &credential_file,
        "--disclose",
        "role,clearance,jurisdiction",
        "--holder-jwk",
        &holder_jwk,
        "--aud",
        &gateway.url,
        "--nonce",
        &nonce,
    ]);

    let httpsig = Oracle::httpsig(python, &w.tmp.path().join("oracle"));
    let url = format!("{}/datasets/population", gateway.url);
    let signed = httpsig.ok(&[
        "sign",
        "--private-jwk",
        &holder_jwk,
        "--key-id",
        &holder.kid.to_string(),
        "--method",
        "GET",
        "--url",
        &url,
        "--header",
        &format!("civitas-presentation: {presentation}"),
        "--header",
        "civitas-purpose: statistics",
        "--nonce",
        &nonce,
        "--tag",
        civitas_core::httpsig::TAG,
    ]);
    let headers: Map<String, Value> = serde_json::from_str(&signed).unwrap();
    let send = |headers: Map<String, Value>| {
        let url = url.clone();
        async move {
            let mut request = reqwest::Client::new().get(&url);
            for (name, value) in &headers {
                request = request.header(name.as_str(), value.as_str().unwrap());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Tampered first (a replay of the genuine one would be refused): another purpose.
    let mut tampered = headers.clone();
    tampered.insert("civitas-purpose".to_owned(), json!("oversight"));
    let (status, body) = send(tampered).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["type"],
        "urn:civitas:problem:invalid-request-signature"
    );
    let (status, body) = send(headers).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["served"], "/datasets/population");
    assert_eq!(
        upstream.last().headers["civitas-caller-did"],
        holder.did.as_str()
    );
}
