//! The Civitas request-signing profile of RFC 9421 (DESIGN.md § "Requests bound to an
//! accountable identity"): what the wallet signs and what the verifier requires.

use rand::RngCore as _;
use sfv::{BareItem, DictSerializer, InnerList, Item, KeyRef, Parameters, StringRef};

use super::{
    CONTENT_DIGEST, Component, HttpSigError, Request, Signature, build_base, content_digest, shown,
};
use crate::did::DidUrl;
use crate::encoding;
use crate::keys::SecretKey;

/// The `tag` of a Civitas request signature; the verifier uses the one signature with it.
pub const TAG: &str = "civitas-request/1";
/// The `alg` of a Civitas request signature.
pub const ALG: &str = "ed25519";
/// The label the wallet gives its signature.
pub const LABEL: &str = "sig";
/// The header carrying the SD-JWT presentation a route asks for.
pub const PRESENTATION_HEADER: &str = "civitas-presentation";
/// The header carrying the purpose code a route asks for.
pub const PURPOSE_HEADER: &str = "civitas-purpose";
/// Fewest random bytes in a nonce (128 bits).
pub const MIN_NONCE_BYTES: usize = 16;
/// Most bytes in a nonce: bounds what the replay cache holds per entry.
const MAX_NONCE_BYTES: usize = 64;
/// Random bytes in a nonce made by [`generate_nonce`].
const NONCE_BYTES: usize = 16;
/// The largest integer a structured field carries (RFC 8941 §3.3.1).
const MAX_SF_INTEGER: i64 = 999_999_999_999_999;

const CREATED: &KeyRef = KeyRef::constant("created");
const NONCE: &KeyRef = KeyRef::constant("nonce");
const KEYID: &KeyRef = KeyRef::constant("keyid");
const ALG_KEY: &KeyRef = KeyRef::constant("alg");
const TAG_KEY: &KeyRef = KeyRef::constant("tag");
const LABEL_KEY: &KeyRef = KeyRef::constant(LABEL);

/// The content type header, covered whenever there is a body.
const CONTENT_TYPE: &str = "content-type";

/// A request for the wallet to sign.
#[derive(Debug, Clone, Copy)]
pub struct RequestToSign<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The absolute target URI as requested, e.g. `https://data.example.gov/records?page=2`.
    pub target_uri: &'a str,
    /// The headers that will be sent, other than the three this signer makes. A
    /// `civitas-presentation` or `civitas-purpose` header here is covered; `content-type` is
    /// covered when present and required with a non-empty body.
    pub fields: &'a [(&'a str, &'a str)],
    /// The exact body bytes (empty for none).
    pub body: &'a [u8],
    /// The signing key as a DID URL with a fragment and neither path nor query.
    pub key_id: &'a DidUrl,
    /// Signing time, unix seconds.
    pub created: i64,
    /// A fresh nonce of at least 128 random bits in base64url (see [`generate_nonce`]).
    pub nonce: &'a str,
}

/// The three header values the wallet adds to a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The `Content-Digest` value.
    pub content_digest: String,
    /// The `Signature-Input` value.
    pub signature_input: String,
    /// The `Signature` value.
    pub signature: String,
}

impl SignedHeaders {
    /// The three headers as `(name, value)` pairs with lower-case names.
    pub fn fields(&self) -> [(&'static str, &str); 3] {
        [
            (CONTENT_DIGEST, &self.content_digest),
            (super::SIGNATURE_INPUT, &self.signature_input),
            (super::SIGNATURE, &self.signature),
        ]
    }
}

/// A fresh nonce: 128 bits from the operating system's random source, base64url.
pub fn generate_nonce() -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    encoding::b64url(&bytes)
}

/// Signs `request` with `key` under the Civitas profile, returning the headers to add.
///
/// Covered, in this order: `@method`, `@target-uri`, `content-digest`, then `content-type`
/// if the body is non-empty or a content type is given, `civitas-presentation` and
/// `civitas-purpose` if present. Parameters, in this order: `created`, `nonce`, `keyid`,
/// `alg`, `tag`. Label [`LABEL`].
pub fn sign_request(
    request: &RequestToSign<'_>,
    key: &SecretKey,
) -> Result<SignedHeaders, HttpSigError> {
    sign_with(request, &[PRESENTATION_HEADER, PURPOSE_HEADER], TAG, key)
}

/// The `tag` of the signature a Civitas gateway adds to a request it forwards.
pub const GATEWAY_TAG: &str = "civitas-gateway/1";
/// The prefix of the headers in which a gateway tells the upstream who the caller is.
pub const CALLER_HEADER_PREFIX: &str = "civitas-caller-";

/// Signs a request a gateway forwards to its upstream: like [`sign_request`], but covering
/// every `civitas-caller-*` header in `request.fields` (in their order) and tagged
/// [`GATEWAY_TAG`].
pub fn sign_forwarded(
    request: &RequestToSign<'_>,
    key: &SecretKey,
) -> Result<SignedHeaders, HttpSigError> {
    let covered: Vec<&str> = request
        .fields
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.to_ascii_lowercase().starts_with(CALLER_HEADER_PREFIX))
        .collect();
    sign_with(request, &covered, GATEWAY_TAG, key)
}

fn sign_with(
    request: &RequestToSign<'_>,
    optional: &[&str],
    tag: &str,
    key: &SecretKey,
) -> Result<SignedHeaders, HttpSigError> {
    check_nonce(request.nonce)?;
    let key_id = request.key_id.to_string();
    if !request.key_id.is_key_reference() {
        return Err(HttpSigError::InvalidKeyId(shown(&key_id)));
    }
    if !(0..=MAX_SF_INTEGER).contains(&request.created) {
        return Err(HttpSigError::InvalidParameter {
            name: "created".to_owned(),
            expected: "a non-negative integer of at most 15 digits",
        });
    }
    let has = |name: &str| {
        request
            .fields
            .iter()
            .any(|(field, _)| field.eq_ignore_ascii_case(name))
    };
    if has(CONTENT_DIGEST) {
        return Err(HttpSigError::ContentDigestSupplied);
    }
    let digest = content_digest(request.body);
    let mut fields = request.fields.to_vec();
    fields.push((CONTENT_DIGEST, &digest));
    let message = Request::new(request.method, request.target_uri, &fields)?;

    let mut components = vec![
        Component::Method,
        Component::TargetUri,
        Component::Field(CONTENT_DIGEST.to_owned()),
    ];
    if has(CONTENT_TYPE) {
        components.push(Component::Field(CONTENT_TYPE.to_owned()));
    } else if !request.body.is_empty() {
        return Err(HttpSigError::BodyWithoutContentType);
    }
    for header in optional {
        if has(header) {
            components.push(Component::Field(header.to_ascii_lowercase()));
        }
    }

    let string = |name: &str, value: &str| {
        StringRef::from_str(value)
            .map(|s| BareItem::String(s.to_owned()))
            .map_err(|_| HttpSigError::InvalidParameter {
                name: name.to_owned(),
                expected: "printable ascii",
            })
    };
    let mut params = Parameters::new();
    params.insert(
        CREATED.to_owned(),
        BareItem::Integer(request.created.try_into().map_err(|_| {
            HttpSigError::InvalidParameter {
                name: "created".to_owned(),
                expected: "a non-negative integer of at most 15 digits",
            }
        })?),
    );
    params.insert(NONCE.to_owned(), string("nonce", request.nonce)?);
    params.insert(KEYID.to_owned(), string("keyid", &key_id)?);
    params.insert(ALG_KEY.to_owned(), string("alg", ALG)?);
    params.insert(TAG_KEY.to_owned(), string("tag", tag)?);
    let items = components
        .iter()
        .map(|c| string("component", c.name()).map(Item::new))
        .collect::<Result<Vec<_>, _>>()?;
    let input = InnerList::with_params(items, params);

    let base = build_base(&message, &components, &input)?;
    let signature = key.sign(base.as_bytes());

    let mut signature_input = DictSerializer::new();
    {
        let mut inner = signature_input.inner_list(LABEL_KEY);
        inner.items(&input.items);
        let _ = inner.finish().parameters(&input.params);
    }
    let mut signature_field = DictSerializer::new();
    let _ = signature_field.bare_item(LABEL_KEY, &signature[..]);
    Ok(SignedHeaders {
        content_digest: digest.clone(),
        // Dictionaries with one member always serialize to Some.
        signature_input: signature_input.finish().unwrap_or_default(),
        signature: signature_field.finish().unwrap_or_default(),
    })
}

/// What a route requires of a request's signature.
///
/// Set `presentation` when the route requires a credential **or** the request carries a
/// `civitas-presentation` header, and likewise `purpose`, so that a header the handler acts
/// on is always covered. Set `body` when the body is non-empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requirements {
    /// `civitas-presentation` must be covered.
    pub presentation: bool,
    /// `civitas-purpose` must be covered.
    pub purpose: bool,
    /// `content-type` must be covered.
    pub body: bool,
}

impl Requirements {
    /// The covered components these requirements demand, in the signer's order.
    fn components(self) -> Vec<&'static str> {
        let mut names = vec!["@method", "@target-uri", CONTENT_DIGEST];
        if self.body {
            names.push(CONTENT_TYPE);
        }
        if self.presentation {
            names.push(PRESENTATION_HEADER);
        }
        if self.purpose {
            names.push(PURPOSE_HEADER);
        }
        names
    }
}

/// The accepted age of `created`, and the clock skew tolerated into the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Seconds `created` may lie in the past.
    pub max_age: u32,
    /// Seconds `created` may lie in the future.
    pub max_skew: u32,
}

impl Default for Window {
    /// Five minutes back, thirty seconds ahead.
    fn default() -> Self {
        Self {
            max_age: 300,
            max_skew: 30,
        }
    }
}

/// A signature that follows the profile and is within its time window; not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSignature {
    key_id: DidUrl,
    nonce: String,
    created: i64,
    replay_until: i64,
}

impl CheckedSignature {
    /// The signer's key, to resolve against the DID's current document.
    pub fn key_id(&self) -> &DidUrl {
        &self.key_id
    }

    /// The nonce, for the replay cache.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// `created`.
    pub fn created(&self) -> i64 {
        self.created
    }

    /// The last second at which this signature is still accepted: the replay cache must keep
    /// (DID, nonce) at least until then.
    pub fn replay_until(&self) -> i64 {
        self.replay_until
    }
}

/// Checks that `signature` follows the Civitas profile for `requirements` at time `now`
/// (unix seconds): `tag`, `alg`, `created`, `nonce`, `keyid` present and well formed and no
/// other parameter but `expires`; the required components covered and no others; `created`
/// within `[now - max_age, now + max_skew]` and `expires`, if present, not passed.
///
/// This does not verify the signature: resolve [`CheckedSignature::key_id`], then call
/// [`verify`](super::verify) over [`signature_base`](super::signature_base).
pub fn check_profile(
    signature: &Signature,
    requirements: Requirements,
    now: i64,
    window: Window,
) -> Result<CheckedSignature, HttpSigError> {
    if let Some(other) = signature.other_parameters().next() {
        return Err(HttpSigError::UnexpectedParameter(shown(other)));
    }
    let tag = signature
        .tag()
        .ok_or(HttpSigError::MissingParameter("tag"))?;
    if tag != TAG {
        return Err(HttpSigError::InvalidParameter {
            name: "tag".to_owned(),
            expected: "\"civitas-request/1\"",
        });
    }
    let alg = signature
        .alg()
        .ok_or(HttpSigError::MissingParameter("alg"))?;
    if alg != ALG {
        return Err(HttpSigError::UnsupportedAlg(shown(alg)));
    }
    let created = signature
        .created()
        .ok_or(HttpSigError::MissingParameter("created"))?;
    let nonce = signature
        .nonce()
        .ok_or(HttpSigError::MissingParameter("nonce"))?;
    let keyid = signature
        .keyid()
        .ok_or(HttpSigError::MissingParameter("keyid"))?;

    let allowed = Requirements {
        presentation: true,
        purpose: true,
        body: true,
    }
    .components();
    if let Some(other) = signature
        .components()
        .find(|name| !allowed.iter().any(|allowed| allowed == name))
    {
        return Err(HttpSigError::UnexpectedComponent(shown(other)));
    }
    if let Some(missing) = requirements
        .components()
        .into_iter()
        .find(|name| !signature.components().any(|covered| covered == *name))
    {
        return Err(HttpSigError::MissingComponent(missing));
    }

    check_nonce(nonce)?;
    let key_id: DidUrl = keyid
        .parse()
        .map_err(|_| HttpSigError::InvalidKeyId(shown(keyid)))?;
    if !key_id.is_key_reference() {
        return Err(HttpSigError::InvalidKeyId(shown(keyid)));
    }

    let oldest = now.saturating_sub(i64::from(window.max_age));
    let latest = now.saturating_add(i64::from(window.max_skew));
    if created < oldest || created > latest {
        return Err(HttpSigError::OutsideWindow {
            created,
            oldest,
            latest,
        });
    }
    let mut replay_until = created.saturating_add(i64::from(window.max_age));
    if let Some(expires) = signature.expires() {
        if expires < created {
            return Err(HttpSigError::InvalidParameter {
                name: "expires".to_owned(),
                expected: "not before created",
            });
        }
        if now >= expires {
            return Err(HttpSigError::Expired { expires, now });
        }
        replay_until = replay_until.min(expires - 1);
    }
    Ok(CheckedSignature {
        key_id,
        nonce: nonce.to_owned(),
        created,
        replay_until,
    })
}

/// Checks that `nonce` is canonical base64url of [`MIN_NONCE_BYTES`] to 64 bytes.
fn check_nonce(nonce: &str) -> Result<(), HttpSigError> {
    let invalid = || HttpSigError::InvalidNonce {
        min: MIN_NONCE_BYTES,
        max: MAX_NONCE_BYTES,
        found: shown(nonce),
    };
    // Check the length before decoding anything large.
    if nonce.len() > MAX_NONCE_BYTES.div_ceil(3) * 4 {
        return Err(invalid());
    }
    let bytes = encoding::b64url_decode(nonce).map_err(|_| invalid())?;
    if !(MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&bytes.len()) {
        return Err(invalid());
    }
    Ok(())
}

/// The `Accept-Signature` value (RFC 9421 §5.1) a 401 carries: the covered components
/// `requirements` demand, and `created`, `alg` and `tag` under label [`LABEL`].
pub fn accept_signature(requirements: Requirements) -> String {
    let mut dict = DictSerializer::new();
    {
        let mut inner = dict.inner_list(LABEL_KEY);
        for name in requirements.components() {
            // Component names are constants of printable ascii.
            if let Ok(name) = StringRef::from_str(name) {
                let _ = inner.bare_item(name);
            }
        }
        let _ = inner
            .finish()
            .parameter(CREATED, true)
            .parameter(ALG_KEY, StringRef::constant(ALG))
            .parameter(TAG_KEY, StringRef::constant(TAG));
    }
    // A dictionary with one member always serializes to Some.
    dict.finish().unwrap_or_default()
}

/// The `@target-uri` of a request the verifier received: its configured `public_origin`
/// (scheme and authority, e.g. `https://data.example.gov`) and the request's
/// `path_and_query` (starting with `/`), never `Host` or forwarding headers. The result is
/// normalized as [`Request::target_uri`] is.
pub fn target_uri(public_origin: &str, path_and_query: &str) -> Result<String, HttpSigError> {
    super::Origin::parse(public_origin)?.target_uri(path_and_query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did::Did;
    use crate::httpsig::{SignatureSet, signature_base, verify};
    use crate::problem;

    const NOW: i64 = 1_750_000_000;
    const NONCE_16: &str = "AAECAwQFBgcICQoLDA0ODw";
    const ORIGIN: &str = "https://data.example.gov";

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[7u8; 32])
    }

    fn key_id() -> DidUrl {
        Did::key_from_public_key(&key().public_key()).with_fragment("key-1")
    }

    #[derive(Debug)]
    struct Sent {
        fields: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn sign(
        method: &str,
        target: &str,
        fields: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Sent, HttpSigError> {
        let key_id = key_id();
        let signed = sign_request(
            &RequestToSign {
                method,
                target_uri: target,
                fields,
                body,
                key_id: &key_id,
                created: NOW,
                nonce: NONCE_16,
            },
            &key(),
        )?;
        let mut all: Vec<(String, String)> = fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        all.extend(
            signed
                .fields()
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        Ok(Sent {
            fields: all,
            body: body.to_vec(),
        })
    }

    /// The verifier's whole path, in the documented order.
    fn receive(
        method: &str,
        path_and_query: &str,
        sent: &Sent,
        requirements: Requirements,
        now: i64,
    ) -> Result<CheckedSignature, HttpSigError> {
        let pairs: Vec<(&str, &str)> = sent
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let target = target_uri(ORIGIN, path_and_query)?;
        let request = Request::new(method, &target, &pairs)?;
        let signature = SignatureSet::from_request(&request)?.into_tagged(TAG)?;
        let checked = check_profile(&signature, requirements, now, Window::default())?;
        request.verify_content_digest(&sent.body)?;
        let base = signature_base(&request, &signature)?;
        verify(&signature, &base, &key().public_key())?;
        Ok(checked)
    }

    fn json_post() -> Sent {
        sign(
            "POST",
            "https://data.example.gov/records?page=2",
            &[
                ("content-type", "application/json"),
                (PRESENTATION_HEADER, "eyJhbGciOiJFZERTQSJ9.e30.c2ln~"),
                (PURPOSE_HEADER, "benefit-eligibility"),
            ],
            br#"{"q":"310000"}"#,
        )
        .unwrap()
    }

    const ALL: Requirements = Requirements {
        presentation: true,
        purpose: true,
        body: true,
    };

    #[test]
    fn sign_then_verify_round_trip() {
        let sent = json_post();
        let checked = receive("POST", "/records?page=2", &sent, ALL, NOW + 10).unwrap();
        assert_eq!(checked.key_id(), &key_id());
        assert_eq!(checked.nonce(), NONCE_16);
        assert_eq!(checked.created(), NOW);
        assert_eq!(checked.replay_until(), NOW + 300);
    }

    #[test]
    fn get_without_body_covers_the_digest_of_empty_content() {
        let sent = sign("GET", "https://data.example.gov/records", &[], b"").unwrap();
        let digest = &sent.fields[0];
        assert_eq!(digest.0, "content-digest");
        assert_eq!(
            digest.1,
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
        receive("GET", "/records", &sent, Requirements::default(), NOW).unwrap();
    }

    #[test]
    fn signature_input_has_the_profile_shape() {
        let sent = json_post();
        let input = &sent
            .fields
            .iter()
            .find(|(n, _)| n == "signature-input")
            .unwrap()
            .1;
        assert_eq!(
            input,
            &format!(
                "sig=(\"@method\" \"@target-uri\" \"content-digest\" \"content-type\" \
                 \"civitas-presentation\" \"civitas-purpose\");created={NOW};\
                 nonce=\"{NONCE_16}\";keyid=\"{}\";alg=\"ed25519\";tag=\"civitas-request/1\"",
                key_id()
            )
        );
        let signature = &sent
            .fields
            .iter()
            .find(|(n, _)| n == "signature")
            .unwrap()
            .1;
        assert!(signature.starts_with("sig=:") && signature.ends_with(':'));
    }

    #[test]
    fn the_wallet_and_verifier_build_the_same_base() {
        // The verifier's base, rebuilt from the configured origin, verifies under the key:
        // the wallet signed exactly this text.
        let sent = json_post();
        let pairs: Vec<(&str, &str)> = sent
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let target = target_uri("https://DATA.example.gov:443/", "/records?page=2").unwrap();
        let request = Request::new("POST", &target, &pairs).unwrap();
        let signature = SignatureSet::from_request(&request)
            .unwrap()
            .into_tagged(TAG)
            .unwrap();
        let base = signature_base(&request, &signature).unwrap();
        let expected_start = "\"@method\": POST\n\"@target-uri\": https://data.example.gov/records?page=2\n\"content-digest\": sha-256=:";
        assert!(base.starts_with(expected_start), "{base}");
        assert!(base.ends_with(&format!(
            "\"@signature-params\": {}",
            signature.signature_params()
        )));
        assert!(base.contains("\n\"civitas-purpose\": benefit-eligibility\n"));
        key()
            .public_key()
            .verify(base.as_bytes(), signature.value())
            .unwrap();
    }

    #[test]
    fn changes_after_signing_are_refused() {
        let sent = json_post();
        let base_case = receive("POST", "/records?page=2", &sent, ALL, NOW);
        assert!(base_case.is_ok());

        let method = receive("PUT", "/records?page=2", &sent, ALL, NOW).unwrap_err();
        assert_eq!(method, HttpSigError::BadSignature);
        let path = receive("POST", "/records?page=3", &sent, ALL, NOW).unwrap_err();
        assert_eq!(path, HttpSigError::BadSignature);

        let mut body = json_post();
        body.body = br#"{"q":"310001"}"#.to_vec();
        let err = receive("POST", "/records?page=2", &body, ALL, NOW).unwrap_err();
        assert_eq!(err, HttpSigError::ContentDigestMismatch);
        assert_eq!(err.problem(), problem::CONTENT_DIGEST_MISMATCH);

        for header in ["content-type", PRESENTATION_HEADER, PURPOSE_HEADER] {
            let mut changed = json_post();
            for (name, value) in &mut changed.fields {
                if name == header {
                    value.push('x');
                }
            }
            let err = receive("POST", "/records?page=2", &changed, ALL, NOW).unwrap_err();
            assert_eq!(err, HttpSigError::BadSignature, "{header}");
            assert_eq!(err.problem(), problem::INVALID_REQUEST_SIGNATURE);

            let mut removed = json_post();
            removed.fields.retain(|(name, _)| name != header);
            let err = receive(
                "POST",
                "/records?page=2",
                &removed,
                Requirements::default(),
                NOW,
            )
            .unwrap_err();
            assert_eq!(err, HttpSigError::MissingField(header.to_owned()));
        }

        let mut other_key = json_post();
        let wrong = SecretKey::from_bytes(&[8u8; 32]);
        let key_id = key_id();
        let resigned = sign_request(
            &RequestToSign {
                method: "POST",
                target_uri: "https://data.example.gov/records?page=2",
                fields: &[
                    ("content-type", "application/json"),
                    (PRESENTATION_HEADER, "eyJhbGciOiJFZERTQSJ9.e30.c2ln~"),
                    (PURPOSE_HEADER, "benefit-eligibility"),
                ],
                body: &other_key.body,
                key_id: &key_id,
                created: NOW,
                nonce: NONCE_16,
            },
            &wrong,
        )
        .unwrap();
        for (name, value) in &mut other_key.fields {
            if name == "signature" {
                value.clone_from(&resigned.signature);
            }
        }
        let err = receive("POST", "/records?page=2", &other_key, ALL, NOW).unwrap_err();
        assert_eq!(err, HttpSigError::BadSignature);
    }

    /// Parses one hand-written `Signature-Input` member (label `sig`) for `check_profile`.
    fn signature_with(input: &str) -> Signature {
        SignatureSet::parse(&format!("sig={input}"), "sig=:AAAA:")
            .unwrap()
            .by_label("sig")
            .unwrap()
    }

    fn input(components: &str, params: &str) -> String {
        format!("({components}){params}")
    }

    const COMPONENTS: &str = r#""@method" "@target-uri" "content-digest""#;

    fn params(created: i64) -> String {
        format!(
            ";created={created};nonce=\"{NONCE_16}\";keyid=\"{}\";alg=\"ed25519\";tag=\"civitas-request/1\"",
            key_id()
        )
    }

    fn check(input: &str) -> Result<CheckedSignature, HttpSigError> {
        check_profile(
            &signature_with(input),
            Requirements::default(),
            NOW,
            Window::default(),
        )
    }

    #[test]
    fn hand_written_profile_input_passes() {
        let checked = check(&input(COMPONENTS, &params(NOW))).unwrap();
        assert_eq!(checked.key_id(), &key_id());
        // Components in another order are fine: the base follows the order given.
        check(&input(
            r#""content-digest" "@target-uri" "@method""#,
            &params(NOW),
        ))
        .unwrap();
    }

    #[test]
    fn each_missing_parameter_is_refused() {
        for name in ["created", "nonce", "keyid", "alg", "tag"] {
            let without: String = params(NOW)
                .split(';')
                .filter(|p| !p.is_empty() && !p.starts_with(name))
                .map(|p| format!(";{p}"))
                .collect();
            let err = check(&input(COMPONENTS, &without)).unwrap_err();
            assert_eq!(err, HttpSigError::MissingParameter(name), "{name}");
            assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT);
        }
    }

    #[test]
    fn wrong_alg_tag_and_unknown_parameters_are_refused() {
        let p = params(NOW);
        let err = check(&input(COMPONENTS, &p.replace("ed25519", "rsa-pss-sha512"))).unwrap_err();
        assert_eq!(
            err,
            HttpSigError::UnsupportedAlg("rsa-pss-sha512".to_owned())
        );
        let err = check(&input(COMPONENTS, &p.replace("civitas-request/1", "other"))).unwrap_err();
        assert!(matches!(err, HttpSigError::InvalidParameter { ref name, .. } if name == "tag"));
        let err = check(&input(COMPONENTS, &format!("{p};context=\"x\""))).unwrap_err();
        assert_eq!(err, HttpSigError::UnexpectedParameter("context".to_owned()));
        let quoted = p.replacen(&format!("created={NOW}"), &format!("created=\"{NOW}\""), 1);
        let err = SignatureSet::parse(&format!("sig={}", input(COMPONENTS, &quoted)), "sig=:AAAA:")
            .unwrap()
            .by_label("sig")
            .unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidParameter { ref name, .. } if name == "created")
        );
    }

    #[test]
    fn short_or_malformed_nonces_are_refused() {
        let p = params(NOW);
        for nonce in [
            "AAECAwQFBgcICQoLDA0O",     // 15 bytes
            "AAECAwQFBgcICQoLDA0ODw==", // padded
            "AAECAwQFBgcICQoLDA0ODx",   // not canonical
            "AAECAwQFBgcICQoLDA0OD+",   // base64, not base64url
            &"A".repeat(100),           // too long
        ] {
            let err = check(&input(COMPONENTS, &p.replace(NONCE_16, nonce))).unwrap_err();
            assert!(
                matches!(err, HttpSigError::InvalidNonce { .. }),
                "{nonce}: {err}"
            );
            assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT);
        }
        // Exactly 16 bytes passes; 64 bytes passes.
        let long = encoding::b64url(&[9u8; 64]);
        check(&input(COMPONENTS, &p.replace(NONCE_16, &long))).unwrap();
    }

    #[test]
    fn keyids_that_are_not_key_references_are_refused() {
        let did = key_id().did().to_string();
        let p = params(NOW);
        for keyid in [
            did.clone(),
            format!("{did}?versionId=1#key-1"),
            format!("{did}/path#key-1"),
            "test-key-ed25519".to_owned(),
            "did:web:example.com#key-1".to_owned(),
        ] {
            let err = check(&input(
                COMPONENTS,
                &p.replace(&key_id().to_string(), &keyid),
            ))
            .unwrap_err();
            assert_eq!(err, HttpSigError::InvalidKeyId(keyid.clone()), "{keyid}");
        }
    }

    #[test]
    fn created_outside_the_window_and_passed_expires_are_refused() {
        check(&input(COMPONENTS, &params(NOW - 300))).unwrap();
        check(&input(COMPONENTS, &params(NOW + 30))).unwrap();
        for created in [NOW - 301, NOW + 31] {
            let err = check(&input(COMPONENTS, &params(created))).unwrap_err();
            assert!(
                matches!(err, HttpSigError::OutsideWindow { .. }),
                "{created}"
            );
            assert_eq!(err.problem(), problem::SIGNATURE_EXPIRED);
        }
        let with_expires = |expires: i64| format!("{};expires={expires}", params(NOW - 10));
        let checked = check(&input(COMPONENTS, &with_expires(NOW + 5))).unwrap();
        assert_eq!(checked.replay_until(), NOW + 4);
        let err = check(&input(COMPONENTS, &with_expires(NOW))).unwrap_err();
        assert_eq!(
            err,
            HttpSigError::Expired {
                expires: NOW,
                now: NOW
            }
        );
        assert_eq!(err.problem(), problem::SIGNATURE_EXPIRED);
        let err = check(&input(COMPONENTS, &with_expires(NOW - 11))).unwrap_err();
        assert!(
            matches!(err, HttpSigError::InvalidParameter { ref name, .. } if name == "expires")
        );
    }

    #[test]
    fn required_components_must_be_covered_and_others_are_refused() {
        let p = params(NOW);
        for missing in [
            r#""@method" "@target-uri""#,
            r#""@method" "content-digest""#,
            r#""@target-uri" "content-digest""#,
        ] {
            let err = check(&input(missing, &p)).unwrap_err();
            assert!(
                matches!(err, HttpSigError::MissingComponent(_)),
                "{missing}"
            );
        }
        let cases = [
            (
                Requirements {
                    body: true,
                    ..Requirements::default()
                },
                "content-type",
            ),
            (
                Requirements {
                    presentation: true,
                    ..Requirements::default()
                },
                PRESENTATION_HEADER,
            ),
            (
                Requirements {
                    purpose: true,
                    ..Requirements::default()
                },
                PURPOSE_HEADER,
            ),
        ];
        for (requirements, component) in cases {
            let signature = signature_with(&input(COMPONENTS, &p));
            let err = check_profile(&signature, requirements, NOW, Window::default()).unwrap_err();
            assert_eq!(err, HttpSigError::MissingComponent(component));
            let covered = signature_with(&input(&format!("{COMPONENTS} \"{component}\""), &p));
            check_profile(&covered, requirements, NOW, Window::default()).unwrap();
        }
        for extra in ["@authority", "@path", "date", "civitas-purpose-note"] {
            let err = check(&input(&format!("{COMPONENTS} \"{extra}\""), &p)).unwrap_err();
            assert_eq!(err, HttpSigError::UnexpectedComponent(extra.to_owned()));
        }
    }

    #[test]
    fn the_tagged_signature_is_picked_and_a_second_one_is_refused() {
        let p = params(NOW);
        let tagged = input(COMPONENTS, &p);
        let other = input(COMPONENTS, ";created=1;tag=\"other\"");
        let set = SignatureSet::parse(
            &format!("proxy={other}, sig={tagged}"),
            "proxy=:AAAA:, sig=:AAAA:",
        )
        .unwrap();
        assert_eq!(set.into_tagged(TAG).unwrap().label(), "sig");
        let twice =
            SignatureSet::parse(&format!("a={tagged}, b={tagged}"), "a=:AAAA:, b=:AAAA:").unwrap();
        let err = twice.into_tagged(TAG).unwrap_err();
        assert_eq!(err, HttpSigError::DuplicateTag(TAG.to_owned()));
        assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT);
        let none = SignatureSet::parse(&format!("proxy={other}"), "proxy=:AAAA:").unwrap();
        let err = none.into_tagged(TAG).unwrap_err();
        assert!(matches!(err, HttpSigError::SignatureMissing(_)));
        assert_eq!(err.problem(), problem::SIGNATURE_MISSING);
        // A foreign signature with unsupported components does not spoil ours.
        let foreign = input(r#""@query-param";name="x" "@status""#, ";tag=\"other\"");
        let set = SignatureSet::parse(
            &format!("proxy={foreign}, sig={tagged}"),
            "proxy=:AAAA:, sig=:AAAA:",
        )
        .unwrap();
        assert_eq!(set.into_tagged(TAG).unwrap().label(), "sig");
    }

    #[test]
    fn an_unsigned_request_is_signature_missing() {
        let fields = [("content-type", "application/json")];
        let target = target_uri(ORIGIN, "/records").unwrap();
        let request = Request::new("GET", &target, &fields).unwrap();
        let err = SignatureSet::from_request(&request)
            .unwrap()
            .into_tagged(TAG)
            .unwrap_err();
        assert_eq!(err.problem(), problem::SIGNATURE_MISSING);
    }

    #[test]
    fn signer_refusals() {
        let err = sign("POST", "https://data.example.gov/x", &[], b"{}").unwrap_err();
        assert_eq!(err, HttpSigError::BodyWithoutContentType);
        let err = sign(
            "POST",
            "https://data.example.gov/x",
            &[
                ("content-type", "application/json"),
                ("Content-Digest", "sha-256=:AA==:"),
            ],
            b"{}",
        )
        .unwrap_err();
        assert_eq!(err, HttpSigError::ContentDigestSupplied);
        let err = sign("GET", "data.example.gov/x", &[], b"").unwrap_err();
        assert!(matches!(err, HttpSigError::InvalidTargetUri { .. }));

        let bare = key_id().did().clone().with_fragment("k");
        let with_query: DidUrl = format!("{}?versionId=3#k", key_id().did()).parse().unwrap();
        for (key_id, nonce, created) in [
            (&with_query, NONCE_16, NOW),
            (&bare, "short", NOW),
            (&bare, NONCE_16, -1),
        ] {
            let err = sign_request(
                &RequestToSign {
                    method: "GET",
                    target_uri: "https://data.example.gov/x",
                    fields: &[],
                    body: b"",
                    key_id,
                    created,
                    nonce,
                },
                &key(),
            )
            .unwrap_err();
            assert_eq!(err.problem(), problem::INVALID_SIGNATURE_INPUT, "{err}");
        }
    }

    #[test]
    fn a_content_type_without_body_is_covered_too() {
        let sent = sign(
            "DELETE",
            "https://data.example.gov/records/1",
            &[("content-type", "application/json")],
            b"",
        )
        .unwrap();
        let input = &sent
            .fields
            .iter()
            .find(|(n, _)| n == "signature-input")
            .unwrap()
            .1;
        assert!(input.contains("\"content-type\""));
        receive("DELETE", "/records/1", &sent, Requirements::default(), NOW).unwrap();
    }

    #[test]
    fn generated_nonces_are_fresh_and_pass_the_check() {
        let a = generate_nonce();
        let b = generate_nonce();
        assert_ne!(a, b);
        check_nonce(&a).unwrap();
        assert_eq!(encoding::b64url_decode(&a).unwrap().len(), MIN_NONCE_BYTES);
    }

    #[test]
    fn accept_signature_describes_the_route() {
        assert_eq!(
            accept_signature(Requirements::default()),
            r#"sig=("@method" "@target-uri" "content-digest");created;alg="ed25519";tag="civitas-request/1""#
        );
        assert_eq!(
            accept_signature(ALL),
            r#"sig=("@method" "@target-uri" "content-digest" "content-type" "civitas-presentation" "civitas-purpose");created;alg="ed25519";tag="civitas-request/1""#
        );
        // It parses back as a dictionary whose member has the required parameters.
        let dict: sfv::Dictionary = sfv::Parser::new(&accept_signature(ALL)).parse().unwrap();
        let Some(sfv::ListEntry::InnerList(inner)) = dict.get("sig") else {
            panic!("no inner list under sig");
        };
        assert_eq!(inner.items.len(), 6);
        assert_eq!(inner.params.get("created"), Some(&BareItem::Boolean(true)));
    }

    #[test]
    fn target_uri_comes_from_the_origin_and_the_path() {
        assert_eq!(
            target_uri("https://data.example.gov", "/records?page=2").unwrap(),
            "https://data.example.gov/records?page=2"
        );
        assert_eq!(
            target_uri("HTTPS://Data.Example.gov:443/", "/").unwrap(),
            "https://data.example.gov/"
        );
        assert_eq!(
            target_uri("http://127.0.0.1:8080", "/a%2Fb?x=%20").unwrap(),
            "http://127.0.0.1:8080/a%2Fb?x=%20"
        );
        // A path starting with `//` stays a path.
        assert_eq!(
            target_uri(ORIGIN, "//evil.example/x").unwrap(),
            "https://data.example.gov//evil.example/x"
        );
        for (origin, path) in [
            ("https://data.example.gov/api", "/x"),
            ("https://data.example.gov?x", "/x"),
            ("https://user@data.example.gov", "/x"),
            ("data.example.gov", "/x"),
            ("ftp://data.example.gov", "/x"),
            (ORIGIN, "x"),
            (ORIGIN, "*"),
            (ORIGIN, "/x#frag"),
            (ORIGIN, "/a b"),
        ] {
            let err = target_uri(origin, path).unwrap_err();
            assert!(
                matches!(err, HttpSigError::InvalidTargetUri { .. }),
                "{origin} {path}: {err}"
            );
        }
    }
}
