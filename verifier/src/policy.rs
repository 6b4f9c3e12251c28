//! Route policy: which requests a service accepts, from whom, disclosing what.
//!
//! A policy file (TOML) lists routes; a request whose method and path match none is denied.
//! Each route names the credential it needs (a type from `--schemas`, by name or `vct`, or
//! `"none"` for a signed request alone), the claims that must be disclosed, the route's
//! claim constraints (the `CLAIM OP VALUE` syntax of accreditations), the highest
//! classification a presentation may disclose, the purpose codes it accepts, the caller DID
//! methods it allows (default `civ`), where the data subject is named, and optionally the
//! only issuers whose credentials it takes (still accredited ones only) and callers it admits.
//!
//! ```toml
//! [[route]]
//! method = "GET"
//! path = "/datasets/{name}"
//! credential = "OfficialRole"
//! disclose = ["role", "clearance"]
//! constraints = ["clearance >= 3"]
//! max_classification = "internal"
//! purposes = ["statistics"]
//! subject = { path = "name" }
//! ```

use std::collections::BTreeSet;

use civitas_core::constraint::{Constraint, Outcome};
use civitas_core::did::Did;
use civitas_core::ledger::Classification;
use civitas_core::schema::{ClaimPath, SchemaSet};
use serde::Deserialize;
use serde_json::Value;

/// The caller DID methods a route allows when it does not say.
const DEFAULT_CALLER_METHODS: &[&str] = &["civ"];
/// The DID methods a caller may use at all.
const KNOWN_METHODS: &[&str] = &["civ", "key", "jwk"];
/// The longest purpose code.
const MAX_PURPOSE_LEN: usize = 64;

/// Why a policy file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file is not TOML of the expected shape.
    #[error("the policy file is not valid: {0}")]
    Syntax(String),
    /// The file lists no route.
    #[error("the policy lists no route: add at least one [[route]]")]
    Empty,
    /// One route is wrong.
    #[error("route {route}: {detail}")]
    Route {
        /// `METHOD PATH` of the route.
        route: String,
        /// What is wrong.
        detail: String,
    },
    /// Two routes can match the same request.
    #[error("routes {0} and {1} overlap: a request could match both")]
    Overlap(String, String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default, rename = "route")]
    routes: Vec<RouteFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    method: String,
    path: String,
    credential: CredentialField,
    #[serde(default)]
    disclose: Vec<String>,
    #[serde(default)]
    constraints: Vec<String>,
    #[serde(default)]
    max_classification: Option<String>,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    caller_methods: Option<Vec<String>>,
    #[serde(default)]
    subject: Option<SubjectFile>,
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default)]
    callers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CredentialField {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum SubjectFile {
    Path(String),
    Header(String),
}

/// Where a route names its data subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectSource {
    /// A path parameter, by name.
    Path(String),
    /// A request header (lower case), covered by the signature when present.
    Header(String),
}

/// One segment of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// A route of the policy.
#[derive(Debug, Clone)]
pub struct Route {
    name: String,
    method: String,
    segments: Vec<Segment>,
    vcts: Vec<String>,
    disclose: Vec<String>,
    constraints: Vec<Constraint>,
    max_classification: Classification,
    purposes: Vec<String>,
    caller_methods: Vec<String>,
    subject: Option<SubjectSource>,
    issuers: Vec<Did>,
    callers: Vec<Did>,
}

impl Route {
    /// `METHOD PATTERN`, as the policy wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a credential presentation is required.
    pub fn requires_credential(&self) -> bool {
        !self.vcts.is_empty()
    }

    /// Whether a purpose code is required.
    pub fn requires_purpose(&self) -> bool {
        !self.purposes.is_empty()
    }

    /// Whether `vct` is accepted.
    pub fn accepts_vct(&self, vct: &str) -> bool {
        self.vcts.iter().any(|v| v == vct)
    }

    /// The accepted types.
    pub fn vcts(&self) -> &[String] {
        &self.vcts
    }

    /// Whether `purpose` is one of the route's codes.
    pub fn allows_purpose(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }

    /// Whether a caller of DID method `method` may use the route.
    pub fn allows_method(&self, method: &str) -> bool {
        self.caller_methods.iter().any(|m| m == method)
    }

    /// The claims that must be disclosed.
    pub fn required_claims(&self) -> &[String] {
        &self.disclose
    }

    /// The highest classification a presentation may disclose.
    pub fn max_classification(&self) -> Classification {
        self.max_classification
    }

    /// Where the data subject is named.
    pub fn subject(&self) -> Option<&SubjectSource> {
        self.subject.as_ref()
    }

    /// Whether `caller` may use the route (when the route lists its callers).
    pub fn allows_caller(&self, caller: &Did) -> bool {
        self.callers.is_empty() || self.callers.contains(caller)
    }

    /// Whether a credential from `issuer` may be used here (besides being accredited).
    pub fn allows_issuer(&self, issuer: &Did) -> bool {
        self.issuers.is_empty() || self.issuers.contains(issuer)
    }

    /// The first route constraint the disclosed `claims` break.
    pub fn broken_constraint(&self, claims: &Value) -> Option<&Constraint> {
        self.constraints
            .iter()
            .find(|c| c.evaluate(claims) != Outcome::Satisfied)
    }

    /// The path parameters if `path` (canonical, see [`check_path`]) matches.
    fn matches<'p>(&self, method: &str, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        if method != self.method {
            return None;
        }
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.as_str(), part)),
            }
        }
        Some(params)
    }
}

/// A matched route with its path parameters.
#[derive(Debug)]
pub struct Matched<'a, 'p> {
    /// The route.
    pub route: &'a Route,
    /// Its position in the policy's [`routes`](Policy::routes).
    pub index: usize,
    /// The path parameters, by name.
    pub params: Vec<(&'a str, &'p str)>,
}

impl Matched<'_, '_> {
    /// A path parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
}

impl Policy {
    /// Parses and validates a policy file against the schemas it names types from.
    pub fn from_toml(text: &str, schemas: &SchemaSet) -> Result<Self, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        if file.routes.is_empty() {
            return Err(PolicyError::Empty);
        }
        let routes = file
            .routes
            .into_iter()
            .map(|r| build_route(r, schemas))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                if overlap(a, b) {
                    return Err(PolicyError::Overlap(a.name.clone(), b.name.clone()));
                }
            }
        }
        Ok(Self { routes })
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route `method` and the canonical `path` match, if any (at most one can).
    pub fn route<'a, 'p>(&'a self, method: &str, path: &'p str) -> Option<Matched<'a, 'p>> {
        self.routes.iter().enumerate().find_map(|(index, route)| {
            route.matches(method, path).map(|params| Matched {
                route,
                index,
                params,
            })
        })
    }

    /// Every `vct` some route accepts.
    pub fn vcts(&self) -> BTreeSet<&str> {
        self.routes
            .iter()
            .flat_map(|r| r.vcts.iter().map(String::as_str))
            .collect()
    }
}

/// Why a path is not canonical.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a canonical path ({0})")]
pub struct NonCanonicalPath(&'static str);

/// Refuses paths that different parsers could read differently: encoded `/`, `\` or `.`,
/// a raw `\`, `;` parameters, dot segments and empty segments (`//`, a trailing `/`).
pub fn check_path(path: &str) -> Result<(), NonCanonicalPath> {
    if !path.starts_with('/') {
        return Err(NonCanonicalPath("it must start with '/'"));
    }
    if path == "/" {
        return Ok(());
    }
    let lower = path.to_ascii_lowercase();
    if ["%2f", "%5c", "%2e", "%00", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err(NonCanonicalPath("no encoded '/', '\\', '.', '%' or NUL"));
    }
    if path.contains('\\') {
        return Err(NonCanonicalPath("no '\\'"));
    }
    if path.contains(';') {
        return Err(NonCanonicalPath("no ';' parameters"));
    }
    for segment in path[1..].split('/') {
        match segment {
            "" => return Err(NonCanonicalPath("no empty segments")),
            "." | ".." => return Err(NonCanonicalPath("no dot segments")),
            _ => {}
        }
    }
    Ok(())
}

fn build_route(file: RouteFile, schemas: &SchemaSet) -> Result<Route, PolicyError> {
    let name = format!("{} {}", file.method, file.path);
    let fail = |detail: String| PolicyError::Route {
        route: name.clone(),
        detail,
    };
    let method = file.method.clone();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(fail(format!(
            "expected an upper-case method such as GET, found {method:?}"
        )));
    }
    let segments = parse_pattern(&file.path).map_err(fail)?;

    let names = match file.credential {
        CredentialField::One(one) => vec![one],
        CredentialField::Many(many) => many,
    };
    let none = names.len() == 1 && names[0] == "none";
    let mut vcts = Vec::new();
    let mut type_schemas = Vec::new();
    if !none {
        if names.is_empty() {
            return Err(fail(
                "expected credential = a type name, a vct, a list of them, or \"none\"".to_owned(),
            ));
        }
        for n in &names {
            let schema = schemas
                .by_type(n)
                .or_else(|| schemas.by_vct(n))
                .ok_or_else(|| {
                    fail(format!(
                        "credential {n:?} is neither a type nor a vct of the loaded schemas"
                    ))
                })?;
            vcts.push(schema.vct().to_owned());
            type_schemas.push(schema);
        }
    }

    let max_classification = match (&file.max_classification, none) {
        (Some(text), _) => text
            .parse::<Classification>()
            .map_err(|e| fail(format!("max_classification: {e}")))?,
        (None, true) => Classification::Public,
        (None, false) => {
            return Err(fail(
                "expected max_classification (public, internal or sensitive): the highest classification a presentation may disclose".to_owned(),
            ));
        }
    };
    if max_classification == Classification::Core {
        return Err(fail(
            "max_classification core: core claims never leave their issuer".to_owned(),
        ));
    }

    let mut disclose = Vec::new();
    for claim in &file.disclose {
        let path: ClaimPath = claim
            .parse()
            .map_err(|e| fail(format!("disclose {claim:?}: {e}")))?;
        if none {
            return Err(fail(
                "disclose needs a credential: this route takes none".to_owned(),
            ));
        }
        for schema in &type_schemas {
            let level = schema.classification_of(&path).ok_or_else(|| {
                fail(format!(
                    "disclose {claim:?}: {} has no such claim",
                    schema.vct()
                ))
            })?;
            if level > max_classification {
                return Err(fail(format!(
                    "disclose {claim:?} is {level:?}, above max_classification {max_classification:?}"
                )));
            }
        }
        disclose.push(claim.replace('.', "/"));
    }

    let mut constraints = Vec::new();
    for text in &file.constraints {
        let c: Constraint = text
            .parse()
            .map_err(|e| fail(format!("constraint {text:?}: {e}")))?;
        if !file.disclose.contains(&c.claim) {
            return Err(fail(format!(
                "constraint {text:?} is on {:?}, which the route does not require disclosed: add it to disclose",
                c.claim
            )));
        }
        constraints.push(c);
    }

    let mut purposes = Vec::new();
    for p in file.purposes {
        let valid = !p.is_empty()
            && p.len() <= MAX_PURPOSE_LEN
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return Err(fail(format!(
                "purpose {p:?}: expected 1-{MAX_PURPOSE_LEN} letters, digits, '-', '_' or '.'"
            )));
        }
        purposes.push(p);
    }

    let caller_methods = match file.caller_methods {
        Some(methods) => {
            if methods.is_empty() {
                return Err(fail(
                    "caller_methods is empty: no one could call".to_owned(),
                ));
            }
            for m in &methods {
                if !KNOWN_METHODS.contains(&m.as_str()) {
                    return Err(fail(format!(
                        "caller_methods: expected civ, key or jwk, found {m:?}"
                    )));
                }
            }
            methods
        }
        None => DEFAULT_CALLER_METHODS
            .iter()
            .map(|m| (*m).to_owned())
            .collect(),
    };

    let subject = match file.subject {
        None => None,
        Some(SubjectFile::Path(param)) => {
            if !segments
                .iter()
                .any(|s| matches!(s, Segment::Param(p) if *p == param))
            {
                return Err(fail(format!(
                    "subject: the path has no parameter {{{param}}}"
                )));
            }
            Some(SubjectSource::Path(param))
        }
        Some(SubjectFile::Header(header)) => {
            let lower = header.to_ascii_lowercase();
            if lower.is_empty()
                || !lower
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                || lower.starts_with("civitas-caller")
            {
                return Err(fail(format!(
                    "subject: {header:?} is not a usable header name"
                )));
            }
            Some(SubjectSource::Header(lower))
        }
    };

    let mut issuers = Vec::new();
    for text in &file.issuers {
        if none {
            return Err(fail(
                "issuers needs a credential: this route takes none".to_owned(),
            ));
        }
        issuers.push(
            text.parse::<Did>()
                .map_err(|e| fail(format!("issuers: {text:?} is not a DID: {e}")))?,
        );
    }

    let callers = file
        .callers
        .iter()
        .map(|text| {
            text.parse::<Did>()
                .map_err(|e| fail(format!("callers: {text:?} is not a DID: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Route {
        name,
        method,
        segments,
        vcts,
        disclose,
        constraints,
        max_classification,
        purposes,
        caller_methods,
        subject,
        issuers,
        callers,
    })
}

fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    let rest = pattern
        .strip_prefix('/')
        .ok_or_else(|| format!("expected a path starting with '/', found {pattern:?}"))?;
    if rest.is_empty() {
        return Ok(vec![Segment::Literal(String::new())]);
    }
    let mut seen = BTreeSet::new();
    rest.split('/')
        .map(|part| {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid || !seen.insert(name.to_owned()) {
                    return Err(format!(
                        "expected distinct parameters {{name}} of letters, digits and '_', found {part:?}"
                    ));
                }
                Ok(Segment::Param(name.to_owned()))
            } else if part.is_empty()
                || part == "."
                || part == ".."
                || part.bytes().any(|b| {
                    matches!(b, b'{' | b'}' | b'%' | b';' | b'\\' | b'?' | b'#')
                        || !b.is_ascii_graphic()
                })
            {
                Err(format!(
                    "expected literal segments without braces, '%', ';', '\\', '?', '#' or dots only, found {part:?}"
                ))
            } else {
                Ok(Segment::Literal(part.to_owned()))
            }
        })
        .collect()
}

fn overlap(a: &Route, b: &Route) -> bool {
    a.method == b.method
        && a.segments.len() == b.segments.len()
        && a.segments.iter().zip(&b.segments).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            _ => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas() -> SchemaSet {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        crate::cli::load_schemas(&dir).unwrap_or_else(|e| panic!("{e}"))
    }

    const EXAMPLE: &str = include_str!("../examples/gateway-policy.toml");

    #[test]
    fn the_example_policy_loads_and_matches() {
        let policy = Policy::from_toml(EXAMPLE, &schemas()).unwrap_or_else(|e| panic!("{e}"));
        let m = policy
            .route("GET", "/datasets/population")
            .unwrap_or_else(|| panic!("no match"));
        assert_eq!(m.param("name"), Some("population"));
        assert!(m.route.requires_credential());
        assert!(m.route.requires_purpose());
        assert!(policy.route("POST", "/datasets/population").is_none());
        assert!(policy.route("GET", "/datasets/population/x").is_none());
        assert!(policy.route("GET", "/datasets").is_none());
    }

    fn refused(text: &str) -> PolicyError {
        match Policy::from_toml(text, &schemas()) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let route = |extra: &str| {
            format!(
                "[[route]]\nmethod = \"GET\"\npath = \"/a/{{x}}\"\ncredential = \"OfficialRole\"\nmax_classification = \"internal\"\n{extra}"
            )
        };
        assert_eq!(refused(""), PolicyError::Empty);
        assert!(matches!(
            refused("[[route]]\nmethod = 1"),
            PolicyError::Syntax(_)
        ));
        let overlap = format!(
            "{}\n[[route]]\nmethod = \"GET\"\npath = \"/a/b\"\ncredential = \"none\"\n",
            route("")
        );
        assert!(matches!(refused(&overlap), PolicyError::Overlap(..)));
        for (extra, needle) in [
            ("disclose = [\"nope\"]", "no such claim"),
            (
                "constraints = [\"clearance >= 3\"]",
                "does not require disclosed",
            ),
            ("constraints = [\"clearance >>= 3\"]", "constraint"),
            ("purposes = [\"a b\"]", "purpose"),
            ("caller_methods = [\"web\"]", "caller_methods"),
            ("subject = { path = \"y\" }", "no parameter"),
            ("subject = { header = \"civitas-caller-did\" }", "header"),
        ] {
            let e = refused(&route(extra)).to_string();
            assert!(e.contains(needle), "{extra}: {e}");
        }
        let e =
            refused("[[route]]\nmethod = \"GET\"\npath = \"/a\"\ncredential = \"OfficialRole\"\n");
        assert!(e.to_string().contains("max_classification"), "{e}");
        let e = refused("[[route]]\nmethod = \"GET\"\npath = \"/a/../b\"\ncredential = \"none\"\n");
        assert!(e.to_string().contains("literal"), "{e}");
        let e = refused(
            "[[route]]\nmethod = \"GET\"\npath = \"/a\"\ncredential = \"Passport\"\nmax_classification = \"public\"\n",
        );
        assert!(e.to_string().contains("neither a type"), "{e}");
        let e = refused(
            "[[route]]\nmethod = \"GET\"\npath = \"/a\"\ncredential = \"ResidentIdentity\"\nmax_classification = \"public\"\ndisclose = [\"age_over_18\"]\n",
        );
        assert!(e.to_string().contains("above max_classification"), "{e}");
    }

    #[test]
    fn non_canonical_paths_are_refused() {
        for ok in ["/", "/datasets/population", "/a/b-c_d.e"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/datasets/..",
            "/datasets/./x",
            "/datasets//x",
            "/datasets/x/",
            "/datasets/a%2Fb",
            "/datasets/a%2fb",
            "/datasets/a%5Cb",
            "/datasets/%2e%2e",
            "/datasets/a\\b",
            "/datasets/x;jsessionid=1",
            "/datasets/%252e",
            "datasets",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
