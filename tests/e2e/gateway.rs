//! The verifier gateway end to end: officials holding an `OfficialRole` read protected
//! datasets through the gateway; every tampered, replayed, unauthorized or over-disclosing
//! request is refused with its own problem type and leaves an audit record; allowed
//! records are provable up to a ledger checkpoint; a citizen sees the records about them.

use std::collections::BTreeSet;
use std::time::Duration;

use civitas_core::did::{Did, DidUrl};
use civitas_core::httpsig;
use civitas_core::keys::SecretKey;
use civitas_core::ledger::{OpService, Operation, Signed};
use civitas_core::sdjwt::{self, SdValue};
use serde_json::{Map, Value, json};

use crate::credentials::World;
use crate::harness::{Upstream, VerifierProcess, Wallet, reserve_port, schemas_dir};

const OFFICIAL: &str = "https://schemas.civitas.gov.example/vct/OfficialRole/v1";

/// The world of the credentials tests, plus officials, an upstream and a gateway.
struct Gateway {
    w: World,
    upstream: Upstream,
    verifier: VerifierProcess,
}

impl Gateway {
    async fn new(verifier_args: &[&str]) -> Self {
        let w = World::new().await;
        let upstream = Upstream::start().await;
        let port = reserve_port();
        let verifier = VerifierProcess::start(
            &w.tmp.path().join("verifier"),
            port,
            &w.registry.url,
            &upstream.url,
            verifier_args,
        );
        Self {
            w,
            upstream,
            verifier,
        }
    }

    /// A wallet with a DID holding an `OfficialRole` with `claims` over the example.
    async fn official(
        &self,
        name: &str,
        claims: Value,
        valid_for: Option<&str>,
    ) -> (Wallet, String, String) {
        let wallet = Wallet::init(&self.w.tmp.path().join(name), &self.w.registry.url).await;
        let did = wallet.create_did(&[]).await;
        let id = self.issue_to(&wallet, &did, claims, valid_for).await;
        (wallet, did, id)
    }

    async fn issue_to(
        &self,
        wallet: &Wallet,
        did: &str,
        claims: Value,
        valid_for: Option<&str>,
    ) -> String {
        let mut all: Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(World::example("OfficialRole")).unwrap())
                .unwrap();
        for (k, v) in claims.as_object().unwrap() {
            all.insert(k.clone(), v.clone());
        }
        let file = self.w.claims_file(
            &format!("claims-{}.json", rand_suffix()),
            &Value::Object(all),
        );
        let mut args = vec![
            "credential",
            "offer",
            "--issuer",
            &self.w.issuer.url,
            "--vct",
            "OfficialRole",
            "--claims",
            &file,
            "--holder",
            did,
        ];
        if let Some(v) = valid_for {
            args.extend(["--valid-for", v]);
        }
        let offer = self.w.operator.run(&args).await.ok().json();
        let uri = offer["credential_offer_uri"].as_str().unwrap();
        let received = wallet
            .run(&["credential", "receive", uri])
            .await
            .ok()
            .json();
        received["id"].as_str().unwrap().to_owned()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.verifier.url)
    }
}

fn rand_suffix() -> String {
    civitas_core::encoding::b64url(&rand::random::<[u8; 6]>())
}

/// `wallet request ... --print-request`, parsed back into (method, target, headers, body).
struct Printed {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Printed {
    fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\r\n\r\n").expect("a blank line");
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap();
        let mut parts = first.split(' ');
        let method = parts.next().unwrap().to_owned();
        let target = parts.next().unwrap().to_owned();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .filter(|(n, _)| *n != "host" && *n != "content-length")
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Self {
            method,
            target,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    async fn send(&self, origin: &str) -> (u16, Value) {
        send_raw(
            origin,
            &self.method,
            &self.target,
            &self.headers,
            self.body.clone(),
        )
        .await
    }

    /// Sends the request over a plain TCP connection, the target byte for byte (HTTP
    /// clients normalize dot segments, even percent-encoded ones, before sending).
    async fn send_verbatim(&self, origin: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let host = origin.strip_prefix("http://").unwrap();
        let mut text = format!(
            "{} {} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n",
            self.method, self.target
        );
        for (n, v) in &self.headers {
            text.push_str(&format!("{n}: {v}\r\n"));
        }
        text.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
        stream.write_all(text.as_bytes()).await.unwrap();
        stream.write_all(&self.body).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (
            status,
            serde_json::from_str(body).unwrap_or_else(|_| json!({ "raw": body })),
        )
    }
}

async fn send_raw(
    origin: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method.parse().unwrap(), format!("{origin}{target}"))
        .body(body);
    for (n, v) in headers {
        request = request.header(n.as_str(), v.as_str());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)})),
    )
}

/// A caller whose keys the test holds, for requests a wallet would never make.
pub(crate) struct Caller {
    pub(crate) did: Did,
    pub(crate) kid: DidUrl,
    pub(crate) key: SecretKey,
}

impl Caller {
    pub(crate) async fn publish(
        registry: &civitas_client::RegistryClient,
        assertion_service: Option<&str>,
    ) -> Self {
        let rotation = SecretKey::generate();
        let key = SecretKey::generate();
        let mut op = Operation::create(vec![rotation.public_key()], key.public_key(), 0);
        if let Some(url) = assertion_service {
            op.services.push(OpService {
                id: "oid4vci".to_owned(),
                kind: "OID4VCI".to_owned(),
                service_endpoint: url.to_owned(),
            });
        }
        let signed = Signed::sign(op, &rotation);
        let did = Did::civ_from_genesis_hash(signed.id().digest());
        registry.submit_operation(&signed).await.unwrap();
        Self {
            kid: did.with_fragment("key-1"),
            did,
            key,
        }
    }

    /// A signed request (the profile) with `presentation` and `purpose`.
    async fn send(
        &self,
        origin: &str,
        method: &str,
        target: &str,
        presentation: Option<&str>,
        purpose: Option<&str>,
    ) -> (u16, Value) {
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(p) = presentation {
            headers.push((httpsig::PRESENTATION_HEADER.to_owned(), p.to_owned()));
        }
        if let Some(p) = purpose {
            headers.push((httpsig::PURPOSE_HEADER.to_owned(), p.to_owned()));
        }
        let fields: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let nonce = httpsig::generate_nonce();
        let url = format!("{origin}{target}");
        let signed = httpsig::sign_request(
            &httpsig::RequestToSign {
                method,
                target_uri: &url,
                fields: &fields,
                body: b"",
                key_id: &self.kid,
                created: chrono_now(),
                nonce: &nonce,
            },
            &self.key,
        )
        .unwrap();
        let mut all = headers.clone();
        for (n, v) in signed.fields() {
            all.push((n.to_owned(), v.to_owned()));
        }
        send_raw(origin, method, target, &all, Vec::new()).await
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An `OfficialRole` SD-JWT VC signed by `issuer_key` as `kid`, for `holder`, disclosing
/// role, clearance and jurisdiction — made by hand, as a rogue or compromised issuer would.
fn forged_official(
    issuer: &Did,
    kid: &DidUrl,
    issuer_key: &SecretKey,
    holder: &Caller,
    status_uri: &str,
    jurisdiction: &str,
) -> String {
    let dir = schemas_dir();
    let bytes = std::fs::read(dir.join("OfficialRole.schema.json")).unwrap();
    let schema = civitas_core::schema::CredentialSchema::parse(&bytes).unwrap();
    // Issued a second after the issuer's DID was sealed (a real issuer waits for the seal).
    let now = chrono_now() + 1;
    let mut claims = SdValue::from_json(json!({
        "iss": issuer.to_string(),
        "sub": holder.did.to_string(),
        "iat": now,
        "exp": now + 3600,
        "vct": OFFICIAL,
        "vct#integrity": schema.integrity(),
        "cnf": {"jwk": holder.key.public_key().to_jwk()},
        "status": {"status_list": {"idx": 7, "uri": status_uri}},
        "department": issuer.to_string(),
        "role": "data-officer",
        "clearance": 5,
        "jurisdiction": jurisdiction,
        "valid_from": "2026-01-01",
        "valid_until": "2027-12-31",
    }));
    for claim in ["role", "clearance", "jurisdiction"] {
        claims.make_disclosable(claim).unwrap();
    }
    let header: Map<String, Value> = serde_json::from_value(json!({
        "alg": "EdDSA", "typ": "dc+sd-jwt", "kid": kid.to_string(),
    }))
    .unwrap();
    sdjwt::issue(&header, &claims, issuer_key, &mut rand::rngs::OsRng).unwrap()
}

fn problem(body: &Value) -> &str {
    body["type"].as_str().unwrap_or_default()
}

#[track_caller]
fn refused(outcome: (u16, Value), status: u16, slug: &str) {
    let (code, body) = outcome;
    assert_eq!(
        (code, problem(&body)),
        (status, format!("urn:civitas:problem:{slug}").as_str()),
        "{body}"
    );
}

async fn wallet_request(wallet: &Wallet, args: &[&str]) -> crate::harness::Outcome {
    let mut all = vec!["request"];
    all.extend_from_slice(args);
    wallet.run(&all).await
}

/// Waits until every record a wallet sees is anchored, then checks `wallet audit`.
async fn audited(wallet: &Wallet, verifier: &str, extra: &[&str]) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut args = vec!["audit", "--verifier", verifier];
        args.extend_from_slice(extra);
        let out = wallet.run(&args).await;
        let json = out.json();
        let pending = json["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["state"] == "pending");
        if !pending {
            assert_eq!(out.code, 0, "a proof failed: {json}");
            return json;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "records stay pending: {json}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn officials_read_datasets_and_every_tampering_is_refused_and_audited() {
    let g = Gateway::new(&["--max-status-age", "0", "--max-registry-age", "0"]).await;
    let origin = g.verifier.url.clone();
    // An official whose credential expires in two seconds (used last).
    let (official, official_did, role_id) =
        g.official("official", json!({"clearance": 4}), None).await;
    let short_id = g
        .issue_to(
            &official,
            &official_did,
            json!({"clearance": 4}),
            Some("2s"),
        )
        .await;

    // Allowed: the upstream gets the exact path, the caller in signed Civitas-Caller-*
    // headers, and none of the request's own Civitas or signature headers.
    let disclose = "role,clearance,jurisdiction";
    let out = wallet_request(
        &official,
        &[
            "GET",
            &g.url("/datasets/population?year=2025"),
            "--credential",
            &role_id,
            "--disclose",
            disclose,
            "--purpose",
            "statistics",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("/datasets/population?year=2025"),
        "{out:?}"
    );
    let seen = g.upstream.last();
    assert_eq!(seen.path_and_query, "/datasets/population?year=2025");
    assert!(seen.headers.get("civitas-presentation").is_none());
    assert!(seen.headers.get("civitas-purpose").is_none());
    let gateway_key =
        g.w.registry
            .client()
            .await
            .resolve(
                &g.verifier.did.parse().unwrap(),
                &civitas_client::Version::Current,
            )
            .await
            .unwrap()
            .document
            .key_for(
                &g.verifier
                    .did
                    .parse::<Did>()
                    .unwrap()
                    .with_fragment("key-1"),
                civitas_core::document::Relationship::Authentication,
            )
            .unwrap();
    let forwarded = ::verifier::gateway::verify_forwarded(
        &seen.method,
        &g.upstream.url,
        &seen.path_and_query,
        &seen.headers,
        &seen.body,
        &gateway_key,
        chrono_now(),
    )
    .unwrap();
    assert_eq!(forwarded.headers["did"], official_did);
    assert_eq!(forwarded.headers["purpose"], "statistics");
    assert_eq!(forwarded.headers["vct"], OFFICIAL);
    // The upstream can tell a forged caller header: the gateway signature no longer verifies.
    let mut forged_headers = seen.headers.clone();
    forged_headers.insert("civitas-caller-did", "did:civ:someoneelse".parse().unwrap());
    assert!(
        ::verifier::gateway::verify_forwarded(
            &seen.method,
            &g.upstream.url,
            &seen.path_and_query,
            &forged_headers,
            &seen.body,
            &gateway_key,
            chrono_now()
        )
        .is_err()
    );

    // Unsigned: 401 with Accept-Signature naming the profile.
    let response = reqwest::get(g.url("/datasets/population")).await.unwrap();
    assert_eq!(response.status(), 401);
    let accept = response.headers()["accept-signature"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(accept.contains("tag=\"civitas-request/1\""), "{accept}");
    assert!(accept.contains("\"civitas-presentation\""), "{accept}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(problem(&body), "urn:civitas:problem:signature-missing");

    // A signed request printed once, then replayed and tampered with.
    let printed = |args: Vec<String>| {
        let official = &official;
        async move {
            let mut all: Vec<&str> = vec!["request"];
            all.extend(args.iter().map(String::as_str));
            all.push("--print-request");
            let out = official.run(&all).await.ok();
            Printed::parse(&out.stdout)
        }
    };
    let get_args = |path: &str, purpose: Option<&str>, disclose: &str| {
        let mut v = vec![
            "GET".to_owned(),
            g.url(path),
            "--credential".to_owned(),
            role_id.clone(),
            "--disclose".to_owned(),
            disclose.to_owned(),
        ];
        if let Some(p) = purpose {
            v.extend(["--purpose".to_owned(), p.to_owned()]);
        }
        v
    };
    let request = printed(get_args(
        "/datasets/population",
        Some("statistics"),
        disclose,
    ))
    .await;
    let (code, body) = request.send(&origin).await;
    assert_eq!(code, 200, "{body}");
    refused(request.send(&origin).await, 401, "replayed-request");

    // From here to the next allowed request, nothing reaches the upstream.
    let served = g.upstream.count();
    // A changed path: the signature covers the target.
    let mut moved = printed(get_args(
        "/datasets/population",
        Some("statistics"),
        disclose,
    ))
    .await;
    moved.target = "/datasets/salaries".to_owned();
    refused(moved.send(&origin).await, 401, "invalid-request-signature");

    // A changed body: the digest no longer matches.
    let mut post = {
        let file = g.w.tmp.path().join("query.json");
        std::fs::write(&file, br#"{"select":"count"}"#).unwrap();
        let args = vec![
            "POST".to_owned(),
            g.url("/datasets/population/queries"),
            "--credential".to_owned(),
            role_id.clone(),
            "--disclose".to_owned(),
            "role,clearance".to_owned(),
            "--purpose".to_owned(),
            "statistics".to_owned(),
            "--data".to_owned(),
            file.display().to_string(),
        ];
        printed(args).await
    };
    post.body = br#"{"select":"*"}"#.to_vec();
    refused(post.send(&origin).await, 400, "content-digest-mismatch");

    // Another official's presentation in this official's request.
    let (other, _, other_id) = g.official("other", json!({"clearance": 4}), None).await;
    let theirs = {
        let out = other
            .run(&[
                "request",
                "GET",
                &g.url("/datasets/population"),
                "--credential",
                &other_id,
                "--disclose",
                disclose,
                "--purpose",
                "statistics",
                "--print-request",
            ])
            .await
            .ok();
        Printed::parse(&out.stdout)
    };
    let mut swapped = printed(get_args(
        "/datasets/population",
        Some("statistics"),
        disclose,
    ))
    .await;
    swapped.set(
        "civitas-presentation",
        theirs.header("civitas-presentation"),
    );
    refused(swapped.send(&origin).await, 403, "holder-binding");

    // Over-disclosure: name is sensitive, the route allows internal at most.
    refused(
        printed(get_args(
            "/datasets/population",
            Some("statistics"),
            "role,clearance,jurisdiction,name",
        ))
        .await
        .send(&origin)
        .await,
        403,
        "over-disclosure",
    );
    // A required claim withheld.
    refused(
        printed(get_args(
            "/datasets/population",
            Some("statistics"),
            "role,clearance",
        ))
        .await
        .send(&origin)
        .await,
        403,
        "claim-not-disclosed",
    );
    // Purpose missing, purpose not allowed.
    refused(
        printed(get_args("/datasets/population", None, disclose))
            .await
            .send(&origin)
            .await,
        403,
        "purpose-required",
    );
    refused(
        printed(get_args(
            "/datasets/population",
            Some("marketing"),
            disclose,
        ))
        .await
        .send(&origin)
        .await,
        403,
        "purpose-not-allowed",
    );
    // The route's own constraint: clearance >= 4 for queries; a clearance-3 official fails.
    let (junior, _, junior_id) = g.official("junior", json!({"clearance": 3}), None).await;
    let query = g.w.tmp.path().join("q2.json");
    std::fs::write(&query, b"{}").unwrap();
    let out = wallet_request(
        &junior,
        &[
            "POST",
            &g.url("/datasets/population/queries"),
            "--credential",
            &junior_id,
            "--disclose",
            "role,clearance",
            "--purpose",
            "statistics",
            "--data",
            &query.display().to_string(),
        ],
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["type"], "urn:civitas:problem:policy-constraint");

    // A KB-JWT addressed to another origin (localhost is not the configured origin).
    let port = origin.rsplit(':').next().unwrap();
    let out = wallet_request(
        &official,
        &[
            "GET",
            &format!("http://localhost:{port}/datasets/population"),
            "--credential",
            &role_id,
            "--disclose",
            disclose,
            "--purpose",
            "statistics",
            "--kb-jwt",
        ],
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["type"], "urn:civitas:problem:wrong-audience");
    assert_eq!(
        g.upstream.count(),
        served,
        "a refused request reached the upstream"
    );
    // With the right audience, a KB-JWT presentation is accepted.
    wallet_request(
        &official,
        &[
            "GET",
            &g.url("/datasets/population"),
            "--credential",
            &role_id,
            "--disclose",
            disclose,
            "--purpose",
            "statistics",
            "--kb-jwt",
        ],
    )
    .await
    .ok();

    let served = g.upstream.count();
    // A spoofed Civitas-Caller header is refused, even though it is not signed.
    let mut spoofed = printed(get_args(
        "/datasets/population",
        Some("statistics"),
        disclose,
    ))
    .await;
    spoofed.set("civitas-caller-did", "did:civ:someoneelse");
    refused(spoofed.send(&origin).await, 400, "forbidden-header");

    // Path normalization tricks and unlisted routes.
    let mut dotted = printed(get_args(
        "/datasets/population",
        Some("statistics"),
        disclose,
    ))
    .await;
    for trick in [
        "/datasets/%2e%2e",
        "/datasets/../datasets/population",
        "/datasets//population",
        "/datasets/a%2Fb",
        "/datasets/population;v=1",
    ] {
        dotted.target = trick.to_owned();
        refused(
            dotted.send_verbatim(&origin).await,
            400,
            "non-canonical-path",
        );
    }
    dotted.target = "/admin".to_owned();
    refused(
        dotted.send_verbatim(&origin).await,
        403,
        "route-not-allowed",
    );

    // Revoked.
    let revoked_id = g
        .issue_to(&official, &official_did, json!({"clearance": 4}), None)
        .await;
    g.w.operator
        .run(&[
            "credential",
            "revoke",
            "--issuer",
            &g.w.issuer.url,
            &revoked_id,
        ])
        .await
        .ok();
    let out = wallet_request(
        &official,
        &[
            "GET",
            &g.url("/datasets/population"),
            "--credential",
            &revoked_id,
            "--disclose",
            disclose,
            "--purpose",
            "statistics",
        ],
    )
    .await;
    assert_eq!(
        out.json()["type"],
        "urn:civitas:problem:credential-revoked",
        "{out:?}"
    );

    // Credentials made by hand: by an issuer never accredited, and by the department's
    // own key outside its accreditation's constraint (jurisdiction 310000 only).
    let client = g.w.registry.client().await;
    let rogue = Caller::publish(&client, Some("http://127.0.0.1:9")).await;
    let holder = Caller::publish(&client, None).await;
    let status_uri = format!("{}/status/1", g.w.issuer.url);
    let forged = forged_official(
        &rogue.did,
        &rogue.kid,
        &rogue.key,
        &holder,
        &status_uri,
        "310000",
    );
    refused(
        holder
            .send(
                &origin,
                "GET",
                "/datasets/population",
                Some(&forged),
                Some("statistics"),
            )
            .await,
        403,
        "issuer-not-accredited",
    );
    let department: Did = g.w.department.parse().unwrap();
    let department_key = SecretKey::from_multibase_secret(
        std::fs::read_to_string(g.w.tmp.path().join("issuer").join("issuer.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let outside = forged_official(
        &department,
        &department.with_fragment("key-2"),
        &department_key,
        &holder,
        &status_uri,
        "440000",
    );
    refused(
        holder
            .send(
                &origin,
                "GET",
                "/datasets/population",
                Some(&outside),
                Some("statistics"),
            )
            .await,
        403,
        "constraint-violated",
    );

    // A rotated-away key: a request signed before the rotation is refused after it.
    let (rotating, rotating_did, rotating_id) =
        g.official("rotating", json!({"clearance": 4}), None).await;
    let before = {
        let out = rotating
            .run(&[
                "request",
                "GET",
                &g.url("/datasets/population"),
                "--credential",
                &rotating_id,
                "--disclose",
                disclose,
                "--purpose",
                "statistics",
                "--print-request",
            ])
            .await
            .ok();
        Printed::parse(&out.stdout)
    };
    rotating.run(&["did", "rotate", &rotating_did]).await.ok();
    refused(before.send(&origin).await, 401, "caller-key-not-current");

    // A deactivated DID.
    let (leaving, leaving_did, leaving_id) =
        g.official("leaving", json!({"clearance": 4}), None).await;
    let before = {
        let out = leaving
            .run(&[
                "request",
                "GET",
                &g.url("/datasets/population"),
                "--credential",
                &leaving_id,
                "--disclose",
                disclose,
                "--purpose",
                "statistics",
                "--print-request",
            ])
            .await
            .ok();
        Printed::parse(&out.stdout)
    };
    leaving.run(&["did", "deactivate", &leaving_did]).await.ok();
    refused(before.send(&origin).await, 401, "caller-deactivated");

    // Expired (valid for two seconds from issuance, long past by now).
    let out = wallet_request(
        &official,
        &[
            "GET",
            &g.url("/datasets/population"),
            "--credential",
            &short_id,
            "--disclose",
            disclose,
            "--purpose",
            "statistics",
        ],
    )
    .await;
    assert_eq!(
        out.json()["type"],
        "urn:civitas:problem:credential-expired",
        "{out:?}"
    );

    assert_eq!(
        g.upstream.count(),
        served,
        "a refused request reached the upstream"
    );

    // A citizen's records: an official reads them; the citizen sees that access, and
    // nothing else.
    let citizen_path = format!("/residents/{}/records", g.w.citizen_did);
    wallet_request(
        &official,
        &[
            "GET",
            &g.url(&citizen_path),
            "--credential",
            &role_id,
            "--disclose",
            "role,jurisdiction",
            "--purpose",
            "case-handling",
        ],
    )
    .await
    .ok();
    let theirs = audited(&g.w.citizen, &origin, &[]).await;
    let records = theirs["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{theirs}");
    assert_eq!(records[0]["record"]["subject"], g.w.citizen_did.as_str());
    assert_eq!(records[0]["record"]["caller"], official_did.as_str());
    assert_eq!(records[0]["record"]["decision"], "allow");
    // ... and may not list the official's other records.
    let out =
        g.w.citizen
            .run(&["audit", "--verifier", &origin, "--caller", &official_did])
            .await;
    assert_eq!(out.code, 2, "{out:?}");

    // The official's trail: every allowed and denied decision after the signature
    // verified, each anchored record proven up to a checkpoint.
    let mine = audited(&official, &origin, &[]).await;
    let reasons: BTreeSet<&str> = mine["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["reason"].as_str().unwrap_or("allow"))
        .collect();
    for expected in [
        "allow",
        "urn:civitas:problem:replayed-request",
        "urn:civitas:problem:over-disclosure",
        "urn:civitas:problem:claim-not-disclosed",
        "urn:civitas:problem:credential-revoked",
    ] {
        assert!(
            reasons.contains(expected),
            "{expected} missing from {reasons:?}"
        );
    }
    for r in mine["records"].as_array().unwrap() {
        assert!(r["proof"].as_str().unwrap().starts_with("proven"), "{r}");
    }

    // A supervisor sees every record, including the aggregated unverified denials.
    let (supervisor, _, supervisor_id) = g
        .official(
            "supervisor",
            json!({"role": "supervisor", "clearance": 5}),
            None,
        )
        .await;
    let expected: Vec<String> = [
        "signature-missing",
        "holder-binding",
        "invalid-request-signature",
        "content-digest-mismatch",
        "purpose-required",
        "purpose-not-allowed",
        "policy-constraint",
        "wrong-audience",
        "forbidden-header",
        "non-canonical-path",
        "route-not-allowed",
        "issuer-not-accredited",
        "constraint-violated",
        "caller-key-not-current",
        "caller-deactivated",
        "credential-expired",
    ]
    .iter()
    .map(|slug| format!("urn:civitas:problem:{slug}"))
    .collect();
    // Aggregates are written at the next anchoring round: ask until every reason is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let reasons = loop {
        let out = supervisor
            .run(&[
                "request",
                "GET",
                &g.url("/audit?limit=1000"),
                "--credential",
                &supervisor_id,
                "--disclose",
                "role",
                "--print-request",
            ])
            .await
            .ok();
        let (status, all) = Printed::parse(&out.stdout).send(&origin).await;
        assert_eq!(status, 200, "{all}");
        let reasons: BTreeSet<String> = all["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["record"]["reason"].as_str().map(str::to_owned))
            .collect();
        if expected.iter().all(|uri| reasons.contains(uri)) || std::time::Instant::now() >= deadline
        {
            break reasons;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for uri in &expected {
        assert!(
            reasons.contains(uri),
            "{uri} has no audit record: {reasons:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_warm_path_verifies_one_signature_per_request_and_two_with_a_kb_jwt() {
    // Caches on, anchoring once an hour (its registry answers would count too).
    let g = Gateway::new(&["--anchor-interval", "3600"]).await;
    let (official, _, id) = g.official("official", json!({"clearance": 4}), None).await;
    let args = |kb: bool| {
        let mut v = vec![
            "GET".to_owned(),
            g.url("/datasets/population"),
            "--credential".to_owned(),
            id.clone(),
            "--disclose".to_owned(),
            "role,clearance,jurisdiction".to_owned(),
            "--purpose".to_owned(),
            "statistics".to_owned(),
        ];
        if kb {
            v.push("--kb-jwt".to_owned());
        }
        v
    };
    let run = |kb: bool| {
        let a = args(kb);
        let official = &official;
        async move {
            let mut all = vec!["request"];
            all.extend(a.iter().map(String::as_str));
            official.run(&all).await.ok();
        }
    };
    // Warm the caches (caller, issuer verdict, status list, parsed presentation).
    run(false).await;
    run(true).await;
    let counter = "civitas_ed25519_verifications_total";
    let before = g.verifier.metric(counter).await;
    for _ in 0..5 {
        run(false).await;
    }
    let after_plain = g.verifier.metric(counter).await;
    assert_eq!(after_plain - before, 5, "one verification per request");
    for _ in 0..5 {
        run(true).await;
    }
    let after_kb = g.verifier.metric(counter).await;
    assert_eq!(
        after_kb - after_plain,
        10,
        "two verifications per request with a KB-JWT"
    );

    // The verification API: one presentation verified in full, and a tampered one refused.
    let presentation = official
        .run(&[
            "credential",
            "present",
            &id,
            "--disclose",
            "role",
            "--audience",
            "https://a.example",
            "--nonce",
            "n-1",
        ])
        .await
        .ok()
        .json()["presentation"]
        .as_str()
        .unwrap()
        .to_owned();
    let verify = |p: String| {
        let url = g.url("/presentations/verify");
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&json!({"presentation": p, "audience": "https://a.example", "nonce": "n-1"}))
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = verify(presentation.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], true);
    assert_eq!(body["claims"]["role"], "data-officer");
    let (status, body) = verify(presentation.replacen("~", "~x", 1)).await;
    assert_ne!(status, 200, "{body}");
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:civitas:problem:"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_operators_use_the_admin_api_with_their_official_role() {
    let w = World::new().await;
    // The department issues its clerk an OfficialRole with role issuer-operator.
    let clerk = Wallet::init(&w.tmp.path().join("clerk"), &w.registry.url).await;
    let clerk_did = clerk.create_did(&[]).await;
    let mut claims: Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(World::example("OfficialRole")).unwrap())
            .unwrap();
    claims.insert("role".to_owned(), json!("issuer-operator"));
    let file = w.claims_file("clerk.json", &Value::Object(claims.clone()));
    let (uri, _) = w.offer_uri("OfficialRole", &file, Some(&clerk_did)).await;
    let role = clerk
        .run(&["credential", "receive", &uri])
        .await
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // With it, the clerk makes an offer and revokes what it issued.
    let offer = clerk
        .run(&[
            "credential",
            "offer",
            "--issuer",
            &w.issuer.url,
            "--vct",
            "ResidentIdentity",
            "--claims",
            &World::example("ResidentIdentity"),
            "--holder",
            &w.citizen_did,
            "--credential",
            &role,
        ])
        .await
        .ok()
        .json();
    let received = w
        .citizen
        .run(&[
            "credential",
            "receive",
            offer["credential_offer_uri"].as_str().unwrap(),
        ])
        .await
        .ok()
        .json();
    let id = received["id"].as_str().unwrap();
    clerk
        .run(&[
            "credential",
            "revoke",
            "--issuer",
            &w.issuer.url,
            id,
            "--credential",
            &role,
        ])
        .await
        .ok();

    // A data officer's OfficialRole is no admin credential; nor is the clerk's DID an
    // operator DID without it.
    let officer = Wallet::init(&w.tmp.path().join("officer"), &w.registry.url).await;
    let officer_did = officer.create_did(&[]).await;
    claims.insert("role".to_owned(), json!("data-officer"));
    let file = w.claims_file("officer.json", &Value::Object(claims));
    let (uri, _) = w.offer_uri("OfficialRole", &file, Some(&officer_did)).await;
    let officer_role = officer
        .run(&["credential", "receive", &uri])
        .await
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = officer
        .run(&[
            "credential",
            "offer",
            "--issuer",
            &w.issuer.url,
            "--vct",
            "ResidentIdentity",
            "--claims",
            &World::example("ResidentIdentity"),
            "--holder",
            &w.citizen_did,
            "--credential",
            &officer_role,
        ])
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.error.contains("policy-constraint"), "{refused:?}");
    let refused = clerk
        .run(&[
            "credential",
            "offer",
            "--issuer",
            &w.issuer.url,
            "--vct",
            "ResidentIdentity",
            "--claims",
            &World::example("ResidentIdentity"),
            "--holder",
            &w.citizen_did,
        ])
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.error.contains("not-authorized"), "{refused:?}");
}
