//! Validation of a claim set against its credential schema before the issuer signs: the
//! JSON Schema (draft 2020-12, with `format` asserted) through the `jsonschema` crate, then
//! the schema's `x-check` rules (check digits) from `civitas_core::schema`. Every
//! violation is reported, each with a JSON pointer into the claim set; messages never
//! carry claim values, so they can be logged and returned to the operator.
//!
//! Custom keywords (`vct`, `x-classification`, `x-display`, `x-derived`, `x-check`, …)
//! are unknown to the validator, which ignores them as draft 2020-12 requires.

use std::fmt;

use serde_json::Value;

use civitas_core::problem::{self, ProblemType};
use civitas_core::schema::{CredentialSchema, Violation, validate_claim_checks};

/// Why a schema cannot be compiled into a validator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The document breaks the draft 2020-12 meta-schema.
    #[error("schema {vct} does not match the draft 2020-12 meta-schema: {}", list(.violations))]
    MetaSchema {
        /// The schema's `vct`.
        vct: String,
        /// Every place it breaks the meta-schema (pointers into the schema document).
        violations: Vec<Violation>,
    },
    /// The validator refused to build it (an unknown format, a bad pattern).
    #[error("schema {vct} does not compile: {reason}")]
    Build {
        /// The schema's `vct`.
        vct: String,
        /// The validator's reason.
        reason: String,
    },
}

impl CompileError {
    /// The problem type of this error: schemas are configuration, so it is internal.
    pub fn problem(&self) -> ProblemType {
        problem::INTERNAL
    }
}

/// A claim set that does not validate, with every violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "claims do not match the schema of {vct}: {} violation{}: {}",
    .violations.len(),
    if .violations.len() == 1 { "" } else { "s" },
    list(.violations)
)]
pub struct InvalidClaims {
    /// The schema's `vct`.
    pub vct: String,
    /// Every violation, ordered by path.
    pub violations: Vec<Violation>,
}

impl InvalidClaims {
    /// The problem type of this error.
    pub fn problem(&self) -> ProblemType {
        problem::SCHEMA_VIOLATION
    }
}

fn list(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A compiled credential schema.
pub struct ClaimValidator {
    schema: CredentialSchema,
    validator: jsonschema::Validator,
}

impl fmt::Debug for ClaimValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimValidator")
            .field("vct", &self.schema.vct())
            .finish_non_exhaustive()
    }
}

impl ClaimValidator {
    /// Checks the schema document against the draft 2020-12 meta-schema and compiles it,
    /// with `format` validation on and unknown formats refused. Nothing is fetched: the
    /// crate is built without its network and file resolvers.
    pub fn new(schema: CredentialSchema) -> Result<Self, CompileError> {
        let document = schema.document();
        let meta = jsonschema::draft202012::meta::validator();
        let violations: Vec<Violation> = meta
            .iter_errors(document)
            .map(|e| Violation {
                path: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            })
            .collect();
        if !violations.is_empty() {
            return Err(CompileError::MetaSchema {
                vct: schema.vct().to_owned(),
                violations,
            });
        }
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .should_ignore_unknown_formats(false)
            .build(document)
            .map_err(|e| CompileError::Build {
                vct: schema.vct().to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self { schema, validator })
    }

    /// The schema.
    pub fn schema(&self) -> &CredentialSchema {
        &self.schema
    }

    /// Every violation of the claim set, ordered by path: JSON Schema violations, then
    /// check-digit violations. Messages show no claim values.
    pub fn violations(&self, claims: &Value) -> Vec<Violation> {
        let mut out: Vec<Violation> = self
            .validator
            .iter_errors(claims)
            .map(|e| Violation {
                path: e.instance_path().as_str().to_owned(),
                message: e.masked().to_string(),
            })
            .collect();
        if let Value::Object(map) = claims {
            out.extend(validate_claim_checks(&self.schema, map));
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Validates a claim set, refusing it with every violation.
    pub fn validate(&self, claims: &Value) -> Result<(), InvalidClaims> {
        let violations = self.violations(claims);
        if violations.is_empty() {
            Ok(())
        } else {
            Err(InvalidClaims {
                vct: self.schema.vct().to_owned(),
                violations,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde_json::{Map, json};

    use super::*;

    const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas");

    const TYPES: &[&str] = &[
        "BusinessLicense",
        "DataAccessAuthorization",
        "EducationCredential",
        "OfficialRole",
        "ResidentIdentity",
    ];

    fn validator(type_name: &str) -> ClaimValidator {
        let bytes = fs::read(format!("{SCHEMA_DIR}/{type_name}.schema.json")).unwrap();
        ClaimValidator::new(CredentialSchema::parse(&bytes).unwrap()).unwrap()
    }

    fn example(type_name: &str) -> Value {
        let bytes = fs::read(format!("{SCHEMA_DIR}/examples/{type_name}.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn paths(violations: &[Violation]) -> Vec<&str> {
        violations.iter().map(|v| v.path.as_str()).collect()
    }

    fn minimal(properties: Value) -> CredentialSchema {
        let doc = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "vct": "urn:example:vct:test",
            "x-display": [{"locale": "en-US", "name": "Test"}],
            "type": "object",
            "additionalProperties": false,
            "properties": properties,
        });
        CredentialSchema::parse(&serde_json::to_vec(&doc).unwrap()).unwrap()
    }

    #[test]
    fn every_schema_is_a_valid_2020_12_schema_and_every_example_validates() {
        let mut found = Vec::new();
        for entry in fs::read_dir(SCHEMA_DIR).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(stem) = name.strip_suffix(".schema.json") {
                found.push(stem.to_owned());
            }
        }
        found.sort();
        assert_eq!(found, TYPES);
        for type_name in TYPES {
            let v = validator(type_name);
            assert!(
                jsonschema::draft202012::meta::is_valid(v.schema().document()),
                "{type_name}"
            );
            assert_eq!(v.violations(&example(type_name)), [], "{type_name}");
            assert_eq!(v.validate(&example(type_name)), Ok(()));
        }
    }

    #[test]
    fn custom_keywords_are_ignored_and_formats_are_asserted() {
        // The schema is full of x-* keywords and a top-level vct; they change nothing.
        let v = ClaimValidator::new(minimal(json!({
            "born": {"type": "string", "format": "date", "x-classification": "core",
                     "x-display": [{"locale": "en-US", "name": "Born"}], "x-anything": {"type": "integer"}},
            "at": {"type": "string", "format": "date-time", "x-classification": "public"}
        })))
        .unwrap();
        assert_eq!(
            v.violations(&json!({"born": "2000-02-29", "at": "2026-03-01T09:00:00+08:00"})),
            []
        );
        let violations = v.violations(&json!({"born": "2001-02-29", "at": "2026-03-01"}));
        assert_eq!(paths(&violations), ["/at", "/born"]);
    }

    #[test]
    fn broken_examples_are_refused_with_every_violation() {
        let cases: [(&str, Value, &[&str]); 5] = [
            (
                "ResidentIdentity",
                json!({
                    "identity_number": "310115199003071238",
                    "birth_date": "1990-02-30",
                    "address": {"region_code": "31011", "province": "上海市", "city": "上海市",
                                "street": "世纪大道100号", "floor": 3},
                    "nationality": null,
                    "iss": "did:civ:x"
                }),
                &[
                    "",
                    "/address",
                    "/address/region_code",
                    "/birth_date",
                    "/identity_number",
                    "/nationality",
                ],
            ),
            (
                "BusinessLicense",
                json!({
                    "unified_social_credit_code": "91310115MA1H3K2P2Q",
                    "registered_capital": {"amount": -1, "currency": "CNY", "paid": true},
                    "scope": "",
                    "established_on": "2017-06-31"
                }),
                &[
                    "/established_on",
                    "/registered_capital",
                    "/registered_capital/amount",
                    "/scope",
                    "/unified_social_credit_code",
                ],
            ),
            (
                "OfficialRole",
                json!({
                    "department": null,
                    "role": "admin",
                    "clearance": 6,
                    "jurisdiction": "31000",
                    "valid_until": "2027-13-01"
                }),
                &[
                    "/clearance",
                    "/department",
                    "/jurisdiction",
                    "/role",
                    "/valid_until",
                ],
            ),
            (
                "DataAccessAuthorization",
                json!({
                    "grantor": "did:web:example.com",
                    "datasets": [],
                    "purpose": "Social Assistance",
                    "expires_at": "2026-12-31"
                }),
                &["/datasets", "/expires_at", "/grantor", "/purpose"],
            ),
            (
                "EducationCredential",
                json!({
                    "certificate_number": "10246120120500",
                    "programme": {"level": "phd"},
                    "honours": [""],
                    "courses": [{"title": "数据结构", "credits": 4, "grade": 92, "teacher": "x"},
                                {"title": "操作系统", "credits": 4, "grade": 101}]
                }),
                &[
                    "/certificate_number",
                    "/courses/0",
                    "/courses/1/grade",
                    "/honours/0",
                    "/programme/level",
                ],
            ),
        ];
        for (type_name, patch, expected) in cases {
            let v = validator(type_name);
            let mut broken = example(type_name);
            for (key, value) in patch.as_object().unwrap() {
                broken[key] = value.clone();
            }
            let err = v.validate(&broken).unwrap_err();
            assert_eq!(err.problem(), problem::SCHEMA_VIOLATION);
            assert_eq!(err.vct, v.schema().vct());
            let found = paths(&err.violations);
            for path in expected {
                assert!(
                    found.contains(path),
                    "{type_name}: {path} missing in {found:?}"
                );
            }
            assert!(found.len() >= expected.len(), "{type_name}: {found:?}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("{} violations", err.violations.len())),
                "{text}"
            );
            for path in expected.iter().filter(|p| !p.is_empty()) {
                assert!(text.contains(&format!("{path}: ")), "{text}");
            }
            // Messages do not echo claim values.
            for secret in [
                "310115199003071238",
                "91310115MA1H3K2P2Q",
                "Social Assistance",
            ] {
                assert!(!text.contains(secret), "{type_name}: {text}");
            }
        }
    }

    #[test]
    fn root_violations_name_missing_and_unexpected_claims() {
        let v = validator("OfficialRole");
        let mut claims: Map<String, Value> = example("OfficialRole").as_object().unwrap().clone();
        claims.remove("role");
        claims.insert("vct".into(), json!("x"));
        let violations = v.violations(&Value::Object(claims));
        assert_eq!(paths(&violations), ["", ""]);
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("role")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("vct")), "{text:?}");
        assert_eq!(paths(&v.violations(&json!([1]))), [""]);
    }

    #[test]
    fn schemas_that_break_the_meta_schema_are_refused_with_every_violation() {
        let err = ClaimValidator::new(minimal(json!({
            "a": {"type": "strin", "x-classification": "public"},
            "b": {"type": "string", "minLength": -1, "x-classification": "public"}
        })))
        .unwrap_err();
        let CompileError::MetaSchema { violations, .. } = &err else {
            panic!("expected a meta-schema error, found {err}");
        };
        let found = paths(violations);
        assert!(found.contains(&"/properties/a/type"), "{found:?}");
        assert!(found.contains(&"/properties/b/minLength"), "{found:?}");
        assert_eq!(err.problem(), problem::INTERNAL);
    }

    #[test]
    fn unknown_formats_and_bad_patterns_do_not_compile() {
        for definition in [
            json!({"type": "string", "format": "dat", "x-classification": "public"}),
            json!({"type": "string", "pattern": "([", "x-classification": "public"}),
        ] {
            let result = ClaimValidator::new(minimal(json!({"a": definition.clone()})));
            assert!(
                matches!(
                    result,
                    Err(CompileError::Build { .. } | CompileError::MetaSchema { .. })
                ),
                "{definition}"
            );
        }
    }
}
