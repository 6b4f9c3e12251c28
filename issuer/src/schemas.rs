//! The credential types this issuer serves: one schema file per type in `--schemas`, each
//! compiled for validation, with the plan from claims to a concealable SD-JWT tree.

use std::path::Path;

use civitas_core::ledger::Classification;
use civitas_core::problem;
use civitas_core::schema::{
    self, CredentialSchema, DisclosurePlan, PlannedClaim, PlannedValue, SchemaSet,
};
use civitas_core::sdjwt::{SdMember, SdValue};
use serde_json::{Map, Value};

use crate::ApiError;
use crate::validate::ClaimValidator;

/// One credential type.
#[derive(Debug)]
pub struct TypeEntry {
    /// Its name (the credential configuration id), e.g. `ResidentIdentity`.
    pub name: String,
    /// Its schema.
    pub schema: CredentialSchema,
    /// `vct#integrity` of the schema.
    pub integrity: String,
    validator: ClaimValidator,
}

impl TypeEntry {
    /// Whether offers must be bound to a holder DID (`"x-holder-binding": "required"`).
    pub fn holder_binding_required(&self) -> bool {
        self.schema
            .document()
            .get("x-holder-binding")
            .and_then(Value::as_str)
            == Some("required")
    }

    /// Validates claims against the schema: every violation listed.
    pub fn validate(&self, claims: &Map<String, Value>) -> Result<(), ApiError> {
        self.validator
            .validate(&Value::Object(claims.clone()))
            .map_err(|e| ApiError::new(e.problem(), e.to_string()))
    }

    /// The plan of a credential issued at `iat` (unix seconds): core claims replaced by
    /// derived ones, each claim plain or disclosable.
    pub fn plan(&self, claims: &Map<String, Value>, iat: i64) -> Result<DisclosurePlan, ApiError> {
        let date = schema::civil_date(iat).ok_or_else(|| {
            ApiError::new(
                problem::INTERNAL,
                format!("{iat} is not a representable time"),
            )
        })?;
        self.schema
            .plan(claims, date)
            .map_err(|e| ApiError::new(e.problem(), e.to_string()))
    }

    /// The highest classification a credential would carry, and every claim it would
    /// carry together with the offered ones (what accreditation constraints judge).
    pub fn planned_summary(
        &self,
        claims: &Map<String, Value>,
        iat: i64,
    ) -> Result<(Classification, Value), ApiError> {
        let plan = self.plan(claims, iat)?;
        Ok((
            plan.level().unwrap_or(Classification::Public),
            all_claims(&plan, claims),
        ))
    }
}

/// Every credential type of the issuer.
#[derive(Debug)]
pub struct Schemas {
    entries: Vec<TypeEntry>,
}

/// Why the schemas could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A schema is invalid.
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    /// A schema does not compile.
    #[error(transparent)]
    Compile(#[from] crate::validate::CompileError),
    /// The directory holds no schema.
    #[error("no *.schema.json in {0}")]
    Empty(String),
}

impl Schemas {
    /// Loads every `*.schema.json` of `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, LoadError> {
        let io = |source| LoadError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".schema.json") && path.is_file() {
                let bytes = std::fs::read(&path).map_err(|source| LoadError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                files.push((name.to_owned(), bytes));
            }
        }
        if files.is_empty() {
            return Err(LoadError::Empty(dir.display().to_string()));
        }
        Self::from_set(SchemaSet::from_files(files)?)
    }

    /// The schemas as a plain set (what verifiers load).
    pub fn to_set(&self) -> Result<SchemaSet, schema::SchemaError> {
        SchemaSet::from_files(
            self.entries
                .iter()
                .map(|e| (format!("{}.schema.json", e.name), e.schema.bytes().to_vec())),
        )
    }

    /// Compiles every schema of a set.
    pub fn from_set(set: SchemaSet) -> Result<Self, LoadError> {
        let mut entries = Vec::new();
        for (name, schema) in set.iter() {
            entries.push(TypeEntry {
                name: name.to_owned(),
                integrity: schema.integrity(),
                schema: schema.clone(),
                validator: ClaimValidator::new(schema.clone())?,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self { entries })
    }

    /// The types, by name.
    pub fn iter(&self) -> impl Iterator<Item = &TypeEntry> {
        self.entries.iter()
    }

    /// A type by its name.
    pub fn get(&self, name: &str) -> Option<&TypeEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// A type by its name or its vct.
    pub fn find(&self, name_or_vct: &str) -> Option<&TypeEntry> {
        self.entries
            .iter()
            .find(|e| e.name == name_or_vct || e.schema.vct() == name_or_vct)
    }
}

/// The offered claims together with the planned (derived) ones: what accreditation
/// constraints judge.
pub fn all_claims(plan: &DisclosurePlan, claims: &Map<String, Value>) -> Value {
    let mut all = claims.clone();
    for (name, value) in plan.to_claims() {
        all.entry(name).or_insert(value);
    }
    Value::Object(all)
}

/// The SD-JWT tree of a plan: public claims plain, the rest disclosable one by one.
pub fn to_sd(plan: &DisclosurePlan) -> SdValue {
    SdValue::Object(
        plan.claims()
            .iter()
            .map(|(name, claim)| (name.clone(), member(claim)))
            .collect(),
    )
}

fn member(claim: &PlannedClaim) -> SdMember {
    let value = match &claim.value {
        PlannedValue::Leaf(v) => SdValue::Plain(v.clone()),
        PlannedValue::Object(members) => SdValue::Object(
            members
                .iter()
                .map(|(n, c)| (n.clone(), member(c)))
                .collect(),
        ),
        PlannedValue::Array(items) => SdValue::Array(items.iter().map(member).collect()),
    };
    SdMember {
        value,
        disclosable: claim.disclosable,
    }
}
