//! RFC 9421 / RFC 9530 vectors and the generic parsing and base construction.

use serde::Deserialize;

use super::*;
use crate::keys::{Jwk, SecretKey};

macro_rules! vector {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/vectors/",
            $path
        ))
    };
}

/// An HTTP/1.1 request as written in the vector files.
struct Message {
    method: String,
    target_uri: String,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    /// Parses a request line, header lines (CRLF), a blank line and the body. The target URI is
    /// `https://` + `Host` + request target, as RFC 9421 Appendix B assumes.
    fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap().split(' ');
        let method = request_line.next().unwrap().to_owned();
        let request_target = request_line.next().unwrap().to_owned();
        let fields: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let host = fields
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("host"))
            .unwrap()
            .1
            .trim()
            .to_owned();
        Self {
            method,
            target_uri: format!("https://{host}{request_target}"),
            fields,
            body: body.as_bytes().to_vec(),
        }
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

fn test_key() -> (SecretKey, PublicKey) {
    #[derive(Deserialize)]
    struct PrivateJwk {
        kty: String,
        crv: String,
        x: String,
        d: String,
    }
    let jwk: PrivateJwk =
        serde_json::from_str(vector!("rfc9421/test-key-ed25519.jwk.json")).unwrap();
    let public = PublicKey::from_jwk(&Jwk {
        kty: jwk.kty,
        crv: jwk.crv,
        x: jwk.x,
    })
    .unwrap();
    let seed: [u8; 32] = encoding::b64url_decode(&jwk.d).unwrap().try_into().unwrap();
    let secret = SecretKey::from_bytes(&seed);
    assert_eq!(secret.public_key(), public);
    (secret, public)
}

/// The value of header line `name` in a file of `Name: value` lines.
fn header_line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .unwrap()
}

#[test]
fn rfc9421_b26_signature_base_is_reproduced_byte_for_byte() {
    let message = Message::parse(vector!("rfc9421/test-request.http"));
    let pairs = message.pairs();
    let request = Request::new(&message.method, &message.target_uri, &pairs).unwrap();
    let headers = vector!("rfc9421/b26-signature-headers.txt");
    let input = header_line(headers, "Signature-Input");
    let value = header_line(headers, "Signature");
    let set = SignatureSet::parse(input, value).unwrap();
    assert_eq!(set.labels().collect::<Vec<_>>(), ["sig-b26"]);
    let signature = set.by_label("sig-b26").unwrap();
    let base = signature_base(&request, &signature).unwrap();
    assert_eq!(base, vector!("rfc9421/b26-signature-base.txt"));
    assert_eq!(
        format!("sig-b26={}", signature.signature_params()),
        input,
        "@signature-params re-serializes to the sent Signature-Input"
    );
    assert_eq!(signature.created(), Some(1_618_884_473));
    assert_eq!(signature.keyid(), Some("test-key-ed25519"));
    assert_eq!(signature.alg(), None);

    let (secret, public) = test_key();
    verify(&signature, &base, &public).unwrap();
    assert_eq!(secret.sign(base.as_bytes()).as_slice(), signature.value());

    // The same signature over a base that differs in one byte does not verify.
    let mut tampered = base;
    tampered.replace_range(..1, "'");
    assert_eq!(
        verify(&signature, &tampered, &public),
        Err(HttpSigError::BadSignature)
    );
}

#[test]
fn rfc9421_b2_derived_components() {
    let message = Message::parse(vector!("rfc9421/test-request.http"));
    let pairs = message.pairs();
    let request = Request::new(&message.method, &message.target_uri, &pairs).unwrap();
    let value = |c| request.component(&c).unwrap();
    assert_eq!(value(Component::Method), "POST");
    assert_eq!(
        value(Component::TargetUri),
        "https://example.com/foo?param=Value&Pet=dog"
    );
    assert_eq!(value(Component::Authority), "example.com");
    assert_eq!(value(Component::Scheme), "https");
    assert_eq!(value(Component::RequestTarget), "/foo?param=Value&Pet=dog");
    assert_eq!(value(Component::Path), "/foo");
    assert_eq!(value(Component::Query), "?param=Value&Pet=dog");
    assert_eq!(value(Component::Field("content-length".into())), "18");

    // Its Content-Digest has only sha-512, which Civitas does not accept alone; the sha-256
    // of its body is the RFC 9530 example value.
    assert!(matches!(
        request.verify_content_digest(&message.body),
        Err(HttpSigError::InvalidContentDigest(_))
    ));
    assert_eq!(
        content_digest(&message.body),
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    );
}

#[derive(Deserialize)]
struct Rfc9421Vectors {
    cases: Vec<Rfc9421Case>,
}

#[derive(Deserialize)]
struct Rfc9421Case {
    id: String,
    label: String,
    message: String,
    signature_base: Option<String>,
    signature_input: String,
    signature: String,
    valid: bool,
}

#[test]
fn rfc9421_b26_and_b4_transformations() {
    let vectors: Rfc9421Vectors =
        serde_json::from_str(vector!("rfc9421/rfc9421-ed25519-vectors.json")).unwrap();
    let (_, public) = test_key();
    assert_eq!(vectors.cases.len(), 7);
    for case in &vectors.cases {
        let message = Message::parse(&case.message);
        let pairs = message.pairs();
        let request = Request::new(&message.method, &message.target_uri, &pairs).unwrap();
        // B.4 messages carry their signature fields; B.2.6 takes them from the case.
        let set = if request.field(SIGNATURE_INPUT).unwrap().is_some() {
            assert_eq!(
                request.field(SIGNATURE_INPUT).unwrap().as_deref(),
                Some(case.signature_input.as_str())
            );
            SignatureSet::from_request(&request).unwrap()
        } else {
            SignatureSet::parse(&case.signature_input, &case.signature).unwrap()
        };
        let signature = set.by_label(&case.label).unwrap();
        let base = signature_base(&request, &signature).unwrap();
        if let Some(expected) = &case.signature_base {
            assert_eq!(&base, expected, "{}", case.id);
        }
        assert_eq!(
            verify(&signature, &base, &public).is_ok(),
            case.valid,
            "{}",
            case.id
        );
    }
}

#[derive(Deserialize)]
struct DigestVectors {
    cases: Vec<DigestCase>,
}

#[derive(Deserialize)]
struct DigestCase {
    id: String,
    body: String,
    field: String,
    valid: bool,
}

#[test]
fn rfc9530_content_digest_vectors() {
    let vectors: DigestVectors =
        serde_json::from_str(vector!("rfc9530/content-digest.json")).unwrap();
    for case in &vectors.cases {
        let result = verify_content_digest(&case.field, case.body.as_bytes());
        assert_eq!(result.is_ok(), case.valid, "{}: {result:?}", case.id);
        if let Err(err) = result {
            assert_eq!(err.problem(), problem::CONTENT_DIGEST_MISMATCH);
        }
        if case.valid && !case.field.contains(',') {
            assert_eq!(
                content_digest(case.body.as_bytes()),
                case.field,
                "{}",
                case.id
            );
        }
    }
}

#[test]
fn content_digest_refusals() {
    let body = br#"{"hello": "world"}"#;
    let good = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:";
    verify_content_digest(good, body).unwrap();
    // Unknown algorithms are ignored.
    verify_content_digest(&format!("md5=:AAAA:, {good}, unixsum=1"), body).unwrap();
    assert_eq!(
        verify_content_digest(good, b"other"),
        Err(HttpSigError::ContentDigestMismatch)
    );
    for bad in [
        "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:;x=1, sha-256=:AAAA:",
        "sha-256=:AAAA:",
        "sha-256=\"X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\"",
        "sha-256=(:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:)",
        "",
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:,",
    ] {
        let err = verify_content_digest(bad, body).unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidContentDigest(_)),
            "{bad}: {err}"
        );
    }
    let long = format!("{good}, x=\"{}\"", "a".repeat(MAX_CONTENT_DIGEST_BYTES));
    assert!(matches!(
        verify_content_digest(&long, body),
        Err(HttpSigError::InvalidContentDigest(_))
    ));

    let fields = [("content-type", "text/plain")];
    let request = Request::new("POST", "https://example.com/", &fields).unwrap();
    assert_eq!(
        request.verify_content_digest(body),
        Err(HttpSigError::ContentDigestMissing)
    );
    let split = [("Content-Digest", "md5=:AAAA:"), ("content-digest", good)];
    let request = Request::new("POST", "https://example.com/", &split).unwrap();
    request.verify_content_digest(body).unwrap();
}

#[test]
fn header_fields_are_combined_trimmed_and_required() {
    let fields = [
        ("Accept", " application/json "),
        ("X-Empty", ""),
        ("accept", "\t*/*"),
        ("X-Bad", "a\r\nb: c"),
    ];
    let request = Request::new("GET", "https://example.com/", &fields).unwrap();
    assert_eq!(
        request.field("accept").unwrap().as_deref(),
        Some("application/json, */*")
    );
    assert_eq!(request.field("x-empty").unwrap().as_deref(), Some(""));
    assert_eq!(request.field("x-missing").unwrap(), None);
    assert_eq!(
        request.component(&Component::Field("x-missing".into())),
        Err(HttpSigError::MissingField("x-missing".into()))
    );
    assert_eq!(
        request.field("x-bad"),
        Err(HttpSigError::InvalidFieldValue("x-bad".into()))
    );
    // An empty field value still gets its line, with the space after the colon.
    let set = SignatureSet::parse(r#"s=("x-empty" "accept");created=1"#, "s=:AAAA:").unwrap();
    let base = signature_base(&request, &set.by_label("s").unwrap()).unwrap();
    assert_eq!(
        base,
        "\"x-empty\": \n\"accept\": application/json, */*\n\"@signature-params\": (\"x-empty\" \"accept\");created=1"
    );
    let huge = "a".repeat(MAX_FIELD_BYTES + 1);
    let fields = [("x-huge", huge.as_str())];
    let request = Request::new("GET", "https://example.com/", &fields).unwrap();
    assert!(matches!(
        request.field("x-huge"),
        Err(HttpSigError::FieldTooLarge { .. })
    ));
}

#[test]
fn target_uris_are_normalized() {
    let fields = [];
    let cases = [
        (
            "HTTPS://Example.COM:443/Path?Q=1",
            "https://example.com/Path?Q=1",
            "example.com",
            "/Path",
            "?Q=1",
        ),
        (
            "http://example.com:80",
            "http://example.com/",
            "example.com",
            "/",
            "?",
        ),
        (
            "https://example.com:8443/?",
            "https://example.com:8443/?",
            "example.com:8443",
            "/",
            "?",
        ),
        (
            "https://example.com:/a",
            "https://example.com/a",
            "example.com",
            "/a",
            "?",
        ),
        (
            "https://[2001:DB8::1]:443/a",
            "https://[2001:db8::1]/a",
            "[2001:db8::1]",
            "/a",
            "?",
        ),
        (
            "https://[::1]:8080/a?b",
            "https://[::1]:8080/a?b",
            "[::1]:8080",
            "/a",
            "?b",
        ),
        (
            "http://127.0.0.1:0080/",
            "http://127.0.0.1/",
            "127.0.0.1",
            "/",
            "?",
        ),
    ];
    for (uri, target, authority, path, query) in cases {
        let request = Request::new("GET", uri, &fields).unwrap();
        assert_eq!(request.target_uri(), target, "{uri}");
        assert_eq!(
            request.component(&Component::Authority).unwrap(),
            authority,
            "{uri}"
        );
        assert_eq!(request.component(&Component::Path).unwrap(), path, "{uri}");
        assert_eq!(
            request.component(&Component::Query).unwrap(),
            query,
            "{uri}"
        );
    }
    for uri in [
        "/relative",
        "example.com/x",
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https:///x",
        "https://example.com/x#f",
        "https://example.com/a b",
        "https://exa\u{e9}mple.com/",
        "https://example.com:99999/",
        "https://example.com:8a/",
        "https://[zz]/",
        "https://[::1/",
        "https://a:b:c/",
    ] {
        let err = Request::new("GET", uri, &fields).unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidTargetUri { .. }),
            "{uri}: {err}"
        );
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_TARGET_URI_BYTES));
    assert!(Request::new("GET", &long, &fields).is_err());
    for method in ["", "GE T", "GET\n", &"A".repeat(65)] {
        assert!(matches!(
            Request::new(method, "https://example.com/", &fields),
            Err(HttpSigError::InvalidMethod(_))
        ));
    }
}

#[test]
fn signature_fields_with_bad_syntax_are_refused() {
    for (input, signature) in [
        ("sig=(\"@method\"", "sig=:AAAA:"),
        ("sig=(\"@method\");created=1,", "sig=:AAAA:"),
        ("Sig=(\"@method\")", "Sig=:AAAA:"),
        ("sig=(\"@method\")", "sig=:AAAA"),
        ("sig=(\"@method\");created=@1618884473", "sig=:AAAA:"),
        ("sig=(\"@method\");keyid=%\"x\"", "sig=:AAAA:"),
    ] {
        let err = SignatureSet::parse(input, signature).unwrap_err();
        assert!(
            matches!(err, HttpSigError::Syntax { .. }),
            "{input} {signature}: {err}"
        );
        assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT);
    }
}

#[test]
fn repeated_labels_and_parameters_are_refused() {
    let cases = [
        (
            "a=(\"@method\"), a=(\"@path\")",
            "a=:AAAA:",
            SIGNATURE_INPUT,
            "a",
        ),
        ("a=(\"@method\")", "a=:AAAA:, a=:AAAA:", SIGNATURE, "a"),
        (
            "a=(\"@method\");created=1;created=2",
            "a=:AAAA:",
            SIGNATURE_INPUT,
            "created",
        ),
        ("a=(\"@method\";x;x)", "a=:AAAA:", SIGNATURE_INPUT, "x"),
        ("a=(\"@method\"), a", "a=:AAAA:", SIGNATURE_INPUT, "a"),
        ("a=(\"@method\")", "a=:AAAA:;p=1;p=2", SIGNATURE, "p"),
    ];
    for (input, signature, field, key) in cases {
        let err = SignatureSet::parse(input, signature).unwrap_err();
        assert_eq!(
            err,
            HttpSigError::DuplicateKey {
                field,
                key: key.to_owned()
            },
            "{input} {signature}"
        );
        assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT);
    }
}

#[test]
fn labels_must_match_between_the_two_fields() {
    let err = SignatureSet::parse("a=(\"@method\"), b=(\"@path\")", "a=:AAAA:").unwrap_err();
    assert_eq!(
        err,
        HttpSigError::UnmatchedLabel {
            label: "b".into(),
            present: SIGNATURE_INPUT,
            absent: SIGNATURE
        }
    );
    let err = SignatureSet::parse("a=(\"@method\")", "a=:AAAA:, b=:AAAA:").unwrap_err();
    assert_eq!(
        err,
        HttpSigError::UnmatchedLabel {
            label: "b".into(),
            present: SIGNATURE,
            absent: SIGNATURE_INPUT
        }
    );
    let err = SignatureSet::parse("", "a=:AAAA:").unwrap_err();
    assert!(matches!(err, HttpSigError::UnmatchedLabel { .. }));
    let empty = SignatureSet::parse("", "").unwrap();
    assert_eq!(empty.labels().count(), 0);
    let err = empty.by_label("a").unwrap_err();
    assert_eq!(err.problem(), problem::SIGNATURE_MISSING);
    let set = SignatureSet::parse("a=(\"@method\")", "a=:AAAA:").unwrap();
    assert!(matches!(
        set.by_label("b"),
        Err(HttpSigError::SignatureMissing(_))
    ));
}

#[test]
fn members_of_the_wrong_shape_are_refused() {
    for (input, signature, field) in [
        ("a=\"@method\"", "a=:AAAA:", SIGNATURE_INPUT),
        ("a=(\"@method\")", "a=(:AAAA:)", SIGNATURE),
        ("a=(\"@method\")", "a=\"AAAA\"", SIGNATURE),
        ("a=(\"@method\")", "a=:AAAA:;x=1", SIGNATURE),
    ] {
        let err = SignatureSet::parse(input, signature).unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidMember { field: f, .. } if f == field),
            "{input} {signature}: {err}"
        );
    }
}

#[test]
fn unsupported_or_malformed_components_are_refused() {
    for (component, reason) in [
        ("\"Content-Type\"", "field names must be lower case"),
        ("\"@method\" \"@method\"", "covered twice"),
        (
            "\"content-type\";sf",
            "component parameters are not supported",
        ),
        (
            "\"@query-param\";name=\"a\"",
            "component parameters are not supported",
        ),
        ("\"@query-param\"", "unsupported derived component"),
        ("\"@status\"", "unsupported derived component"),
        (
            "\"@signature-params\"",
            "@signature-params cannot be covered",
        ),
        ("\"a b\"", "field names are http tokens"),
        ("\"\"", "field names are http tokens"),
        ("method", "component identifiers are strings"),
    ] {
        let set = SignatureSet::parse(&format!("a=({component})"), "a=:AAAA:").unwrap();
        let err = set.by_label("a").unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidComponent { reason: r, .. } if r == reason),
            "{component}: {err}"
        );
    }
}

#[test]
fn parameters_are_typed_and_unknown_ones_kept_in_order() {
    let set = SignatureSet::parse(
        "a=(\"@method\");x-ext=?1;created=5;expires=9;nonce=\"n\";keyid=\"k\";alg=\"ed25519\";tag=\"t\";zz=tok",
        "a=:AAAA:",
    )
    .unwrap();
    let signature = set.by_label("a").unwrap();
    assert_eq!(signature.created(), Some(5));
    assert_eq!(signature.expires(), Some(9));
    assert_eq!(signature.nonce(), Some("n"));
    assert_eq!(signature.keyid(), Some("k"));
    assert_eq!(signature.alg(), Some("ed25519"));
    assert_eq!(signature.tag(), Some("t"));
    assert_eq!(
        signature.other_parameters().collect::<Vec<_>>(),
        ["x-ext", "zz"]
    );
    assert_eq!(signature.value(), [0u8, 0, 0]);
    assert_eq!(
        signature.signature_params(),
        "(\"@method\");x-ext;created=5;expires=9;nonce=\"n\";keyid=\"k\";alg=\"ed25519\";tag=\"t\";zz=tok"
    );
    for (param, name) in [
        ("created=\"5\"", "created"),
        ("expires=5.0", "expires"),
        ("nonce=5", "nonce"),
        ("keyid=k", "keyid"),
        ("alg=?1", "alg"),
        ("tag=:AAAA:", "tag"),
    ] {
        let set = SignatureSet::parse(&format!("a=(\"@method\");{param}"), "a=:AAAA:").unwrap();
        let err = set.by_label("a").unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidParameter { name: ref n, .. } if n == name),
            "{param}: {err}"
        );
    }
    // Whitespace the syntax allows does not change @signature-params.
    let set = SignatureSet::parse("a=( \"@method\"  \"@path\" );created=1", "a=:AAAA:").unwrap();
    assert_eq!(
        set.by_label("a").unwrap().signature_params(),
        "(\"@method\" \"@path\");created=1"
    );
}

#[test]
fn a_foreign_alg_is_refused_by_verify() {
    let (secret, public) = test_key();
    let set = SignatureSet::parse("a=(\"@method\");alg=\"rsa-pss-sha512\"", "a=:AAAA:").unwrap();
    let signature = set.by_label("a").unwrap();
    let fields = [];
    let request = Request::new("GET", "https://example.com/", &fields).unwrap();
    let base = signature_base(&request, &signature).unwrap();
    let _ = secret;
    assert_eq!(
        verify(&signature, &base, &public),
        Err(HttpSigError::UnsupportedAlg("rsa-pss-sha512".into()))
    );
}

#[test]
fn sizes_and_counts_are_bounded() {
    let many: Vec<String> = (0..=MAX_SIGNATURES)
        .map(|i| format!("s{i}=(\"@method\")"))
        .collect();
    let values: Vec<String> = (0..=MAX_SIGNATURES)
        .map(|i| format!("s{i}=:AAAA:"))
        .collect();
    let err = SignatureSet::parse(&many.join(", "), &values.join(", ")).unwrap_err();
    assert!(
        matches!(err, HttpSigError::TooMany { found: 9, .. }),
        "{err}"
    );
    SignatureSet::parse(
        &many[..MAX_SIGNATURES].join(", "),
        &values[..MAX_SIGNATURES].join(", "),
    )
    .unwrap();

    let components: Vec<String> = (0..=MAX_COMPONENTS).map(|i| format!("\"x-{i}\"")).collect();
    let set = SignatureSet::parse(&format!("a=({})", components.join(" ")), "a=:AAAA:").unwrap();
    assert!(matches!(
        set.by_label("a"),
        Err(HttpSigError::TooMany { found: 33, .. })
    ));
    let set = SignatureSet::parse(
        &format!("a=({})", components[..MAX_COMPONENTS].join(" ")),
        "a=:AAAA:",
    )
    .unwrap();
    set.by_label("a").unwrap();

    let params: String = (0..=MAX_PARAMETERS).map(|i| format!(";p{i}=1")).collect();
    let set = SignatureSet::parse(&format!("a=(\"@method\"){params}"), "a=:AAAA:").unwrap();
    assert!(matches!(
        set.by_label("a"),
        Err(HttpSigError::TooMany { found: 17, .. })
    ));

    let long = format!(
        "a=(\"@method\");nonce=\"{}\"",
        "n".repeat(MAX_SIGNATURE_FIELD_BYTES)
    );
    let err = SignatureSet::parse(&long, "a=:AAAA:").unwrap_err();
    assert!(matches!(err, HttpSigError::FieldTooLarge { .. }));
    assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT);
    let long = format!("a=:{}:", "A".repeat(MAX_SIGNATURE_FIELD_BYTES));
    assert!(matches!(
        SignatureSet::parse("a=(\"@method\")", &long),
        Err(HttpSigError::FieldTooLarge { .. })
    ));
}

#[test]
fn signature_fields_split_over_lines_are_combined() {
    let fields = [
        ("Signature-Input", "a=(\"@method\");created=1"),
        ("signature", "a=:AAAA:"),
        ("signature-input", "b=(\"@path\");tag=\"t\""),
        ("Signature", "b=:AAAA:"),
    ];
    let request = Request::new("GET", "https://example.com/x", &fields).unwrap();
    let set = SignatureSet::from_request(&request).unwrap();
    assert_eq!(set.labels().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(set.into_tagged("t").unwrap().label(), "b");
}

#[test]
fn every_error_maps_to_its_problem_type() {
    let cases = [
        (
            HttpSigError::SignatureMissing("x".into()),
            problem::SIGNATURE_MISSING,
        ),
        (
            HttpSigError::OutsideWindow {
                created: 0,
                oldest: 1,
                latest: 2,
            },
            problem::SIGNATURE_EXPIRED,
        ),
        (
            HttpSigError::Expired { expires: 1, now: 2 },
            problem::SIGNATURE_EXPIRED,
        ),
        (
            HttpSigError::ContentDigestMissing,
            problem::CONTENT_DIGEST_MISMATCH,
        ),
        (
            HttpSigError::InvalidContentDigest("x".into()),
            problem::CONTENT_DIGEST_MISMATCH,
        ),
        (
            HttpSigError::ContentDigestMismatch,
            problem::CONTENT_DIGEST_MISMATCH,
        ),
        (
            HttpSigError::BadSignature,
            problem::INVALID_REQUEST_SIGNATURE,
        ),
        (
            HttpSigError::DuplicateTag("t".into()),
            problem::INVALID_SIGNATURE_INPUT,
        ),
        (
            HttpSigError::MissingParameter("nonce"),
            problem::INVALID_SIGNATURE_INPUT,
        ),
        (
            HttpSigError::MissingField("date".into()),
            problem::INVALID_SIGNATURE_INPUT,
        ),
    ];
    for (err, expected) in cases {
        assert_eq!(err.problem(), expected, "{err}");
        let message = err.to_string();
        assert!(message.starts_with("expected"), "{message}");
        assert!(!message.ends_with('.'), "{message}");
    }
}

#[test]
fn the_strict_dictionary_parser_builds_what_sfv_builds() {
    for text in [
        "sig1=(\"@method\" \"@target-uri\" \"content-digest\");created=1618884473;keyid=\"k\";tag=\"t\"",
        "a=(\"@method\";x \"@path\");p=?0, b=:AAAA:;q=1.5, c, d=token;e=\"s\"",
        "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:, sha-512=:AAAA:",
        "",
    ] {
        let expected: Dictionary = Parser::new(text)
            .with_version(Version::Rfc8941)
            .parse()
            .unwrap();
        let built = parse_dictionary(SIGNATURE_INPUT, text, 1 << 16, 64).unwrap();
        assert_eq!(built, expected, "{text}");
    }
    let err = parse_dictionary(SIGNATURE_INPUT, "a=(", 1 << 16, 64).unwrap_err();
    assert!(
        matches!(
            err,
            HttpSigError::Syntax {
                field: SIGNATURE_INPUT,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_request_at_an_origin_is_the_request_for_the_joined_uri() {
    let fields = [("x-a", "1")];
    for origin in [
        "https://data.example.gov",
        "HTTPS://Data.Example.gov:443/",
        "http://127.0.0.1:8080",
        "https://[::1]:8443",
    ] {
        let parsed = Origin::parse(origin).unwrap();
        for path_and_query in [
            "/",
            "/records?page=2",
            "/a%2Fb?",
            "//evil.example/x",
            "/x?a?b",
        ] {
            let joined = format!("{}{path_and_query}", origin.trim_end_matches('/'));
            let expected = Request::new("GET", &joined, &fields).unwrap();
            let at = Request::at_origin("GET", &parsed, path_and_query, &fields).unwrap();
            assert_eq!(at.target_uri(), expected.target_uri(), "{joined}");
            for component in [
                Component::TargetUri,
                Component::Authority,
                Component::Scheme,
                Component::RequestTarget,
                Component::Path,
                Component::Query,
            ] {
                assert_eq!(
                    at.component(&component).unwrap(),
                    expected.component(&component).unwrap(),
                    "{joined} {component:?}"
                );
            }
        }
        for bad in ["records", "/a#frag", "/a b", ""] {
            assert!(
                matches!(
                    Request::at_origin("GET", &parsed, bad, &fields),
                    Err(HttpSigError::InvalidTargetUri { .. })
                ),
                "{bad}"
            );
        }
    }
    for origin in [
        "https://data.example.gov/api",
        "https://data.example.gov?x",
        "ftp://x",
    ] {
        assert!(Origin::parse(origin).is_err(), "{origin}");
    }
}
