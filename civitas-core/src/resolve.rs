//! DID resolution: one trait for did:civ, did:key and did:jwk.
//!
//! did:key and did:jwk need no network: they are resolved here by ssi's method crates
//! (`did-method-key`, `did-jwk`, network-free) and the result is turned into a Civitas
//! [`DidDocument`] (Ed25519 only, every key as `Multikey`). did:civ needs the ledger: the
//! registry resolves it from its state, and `civitas-client` resolves it over HTTP with
//! every proof checked. [`StaticResolver`] is an ordinary resolver over fixed documents,
//! for tests and offline tools.

use std::collections::HashMap;

use serde_json::Value;
use ssi_dids_core::resolution::{DIDMethodResolver as _, Options};

use crate::did::{Did, Method};
use crate::document::{DidDocument, VerificationMethod};
use crate::keys::{Jwk, PublicKey};

/// Why a DID did not resolve. Each kind maps to a W3C DID Resolution error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolutionError {
    /// The DID is malformed.
    #[error("invalid did: {0}")]
    InvalidDid(String),
    /// The resolution options are malformed or contradict each other.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The method is not supported by this resolver.
    #[error("method not supported: {0}")]
    MethodNotSupported(String),
    /// The DID does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The DID document uses keys Civitas cannot use.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// The requested version does not exist.
    #[error("version not found: {0}")]
    VersionNotFound(String),
    /// The DID is deactivated.
    #[error("{0} is deactivated")]
    Deactivated(String),
    /// The answer could not be checked or fetched.
    #[error("resolution failed: {0}")]
    Internal(String),
}

impl ResolutionError {
    /// The W3C DID Resolution error type URI.
    pub fn type_uri(&self) -> &'static str {
        match self {
            Self::InvalidDid(_) => "https://www.w3.org/ns/did#INVALID_DID",
            Self::InvalidOptions(_) => "https://www.w3.org/ns/did#INVALID_OPTIONS",
            Self::MethodNotSupported(_) => "https://www.w3.org/ns/did#METHOD_NOT_SUPPORTED",
            Self::NotFound(_) | Self::VersionNotFound(_) => "https://www.w3.org/ns/did#NOT_FOUND",
            Self::InvalidPublicKey(_) => "https://www.w3.org/ns/did#INVALID_PUBLIC_KEY",
            Self::Deactivated(_) => "https://www.w3.org/ns/did#DEACTIVATED",
            Self::Internal(_) => "https://www.w3.org/ns/did#INTERNAL_ERROR",
        }
    }

    /// The HTTP status the DID Resolution HTTP binding gives this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidDid(_) | Self::InvalidOptions(_) => 400,
            Self::MethodNotSupported(_) => 501,
            Self::NotFound(_) | Self::VersionNotFound(_) => 404,
            Self::Deactivated(_) => 410,
            Self::InvalidPublicKey(_) | Self::Internal(_) => 500,
        }
    }
}

/// A resolver of DIDs to documents. Implemented by the registry (from its state), by
/// `civitas-client` (over HTTP, with proofs) and by [`StaticResolver`].
#[allow(async_fn_in_trait)]
pub trait DidResolver {
    /// Resolves the current document of `did`.
    async fn resolve(&self, did: &Did) -> Result<DidDocument, ResolutionError>;
}

/// Resolves a did:key or did:jwk (no network). Other methods are refused.
pub fn resolve_key_did(did: &Did) -> Result<DidDocument, ResolutionError> {
    let id = did.method_specific_id();
    let output = match did.method() {
        Method::Key => pollster::block_on(
            did_method_key::DIDKey.resolve_method_representation(id, Options::default()),
        ),
        Method::Jwk => pollster::block_on(
            did_jwk::DIDJWK.resolve_method_representation(id, Options::default()),
        ),
        _ => {
            return Err(ResolutionError::MethodNotSupported(format!(
                "{did} needs the ledger"
            )));
        }
    }
    .map_err(|e| ResolutionError::InvalidDid(e.to_string()))?;
    let value: Value = serde_json::from_slice(&output.document).map_err(|e| {
        ResolutionError::Internal(format!("the did:key/did:jwk document is not json: {e}"))
    })?;
    let mut doc = document_from_method_output(did, &value)?;
    if did.method() == Method::Key {
        // did-method-key lists the key under authentication and assertionMethod only; the
        // did:key spec (v0.7 §3.1.1 step 7) also lists it under capabilityInvocation and
        // capabilityDelegation, as did-jwk does for did:jwk.
        doc.capability_invocation.clone_from(&doc.authentication);
        doc.capability_delegation.clone_from(&doc.authentication);
    }
    Ok(doc)
}

/// Turns the JSON-LD document ssi produced into a Civitas document, keeping the
/// verification relationships and reading each key from `publicKeyMultibase` or
/// `publicKeyJwk`.
fn document_from_method_output(did: &Did, value: &Value) -> Result<DidDocument, ResolutionError> {
    let mut doc = DidDocument::new(did.clone());
    let methods = value
        .get("verificationMethod")
        .and_then(Value::as_array)
        .ok_or_else(|| ResolutionError::Internal("no verificationMethod".to_owned()))?;
    for vm in methods {
        let id = vm
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| match id.strip_prefix('#') {
                Some(fragment) => format!("{did}#{fragment}").parse().ok(),
                None => id.parse().ok(),
            })
            .ok_or_else(|| {
                ResolutionError::Internal("verification method without a valid id".to_owned())
            })?;
        let key = if let Some(text) = vm.get("publicKeyMultibase").and_then(Value::as_str) {
            PublicKey::from_multibase(text)
        } else if let Some(jwk) = vm.get("publicKeyJwk") {
            serde_json::from_value::<Jwk>(jwk.clone())
                .map_err(|_| crate::keys::KeyError::Jwk("a malformed jwk".to_owned()))
                .and_then(|jwk| PublicKey::from_jwk(&jwk))
        } else {
            return Err(ResolutionError::InvalidPublicKey(
                "no public key".to_owned(),
            ));
        }
        .map_err(|e| ResolutionError::InvalidPublicKey(e.to_string()))?;
        doc.verification_method.push(VerificationMethod {
            id,
            kind: "Multikey".to_owned(),
            controller: did.clone(),
            public_key_multibase: key,
        });
    }
    let refs = |name: &str| -> Vec<crate::did::DidUrl> {
        value
            .get(name)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|s| match s.strip_prefix('#') {
                        Some(fragment) => format!("{did}#{fragment}").parse().ok(),
                        None => s.parse().ok(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    doc.authentication = refs("authentication");
    doc.assertion_method = refs("assertionMethod");
    doc.capability_invocation = refs("capabilityInvocation");
    doc.capability_delegation = refs("capabilityDelegation");
    Ok(doc)
}

/// A resolver over fixed documents, that also resolves did:key and did:jwk.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    documents: HashMap<Did, DidDocument>,
}

impl StaticResolver {
    /// An empty resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a document.
    pub fn insert(&mut self, document: DidDocument) {
        self.documents.insert(document.id.clone(), document);
    }
}

impl DidResolver for StaticResolver {
    async fn resolve(&self, did: &Did) -> Result<DidDocument, ResolutionError> {
        match did.method() {
            Method::Civ => self
                .documents
                .get(did)
                .cloned()
                .ok_or_else(|| ResolutionError::NotFound(did.to_string())),
            _ => resolve_key_did(did),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use serde::Deserialize;

    use super::*;
    use crate::did::DidUrl;
    use crate::encoding;
    use crate::keys::SecretKey;

    /// w3c-ccg/did-method-key test-vectors/ed25519-x25519.json (copied from shared/vectors).
    const ED25519_VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/did-key/w3c-ccg-did-method-key.ed25519-x25519.json"
    );

    /// One vector: the seed and the expected document, keyed by the DID.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Vector {
        seed: String,
        did_document: VectorDocument,
    }

    /// The vector's document. Its formats differ from ours (`Ed25519VerificationKey2018`
    /// with `publicKeyBase58`, or `JsonWebKey2020`, plus an X25519 `keyAgreement` key), so
    /// only ids and key bytes are compared.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct VectorDocument {
        id: String,
        verification_method: Vec<VectorMethod>,
        authentication: Vec<String>,
        assertion_method: Vec<String>,
        capability_invocation: Vec<String>,
        capability_delegation: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct VectorMethod {
        id: String,
        #[serde(rename = "type")]
        kind: String,
        public_key_base58: Option<String>,
        public_key_jwk: Option<Jwk>,
    }

    fn unhex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// did:key v0.7 §3.2 (Read), by the §3.1.1 Document Creation Algorithm: each vector DID
    /// resolves to one verification method, `did#<multibase value>`, holding the vector's
    /// Ed25519 key and referenced by the four signing relationships. (The X25519
    /// `keyAgreement` key of the vectors is not derived: Civitas uses Ed25519 only.)
    #[test]
    fn did_key_v0_7_3_2_read_ed25519_vectors() {
        let vectors: BTreeMap<String, Vector> =
            serde_json::from_str(&fs::read_to_string(ED25519_VECTORS).unwrap()).unwrap();
        assert_eq!(vectors.len(), 5, "ed25519-x25519 vector count");
        for (text, v) in &vectors {
            let expected = &v.did_document;
            assert_eq!(expected.id, *text);
            let signing = &expected.authentication[0];
            let vector_vm = expected
                .verification_method
                .iter()
                .find(|vm| vm.id == *signing)
                .unwrap();
            let vector_key = match (&vector_vm.public_key_base58, &vector_vm.public_key_jwk) {
                (Some(base58), None) => {
                    assert_eq!(vector_vm.kind, "Ed25519VerificationKey2018", "{text}");
                    multibase::Base::Base58Btc.decode(base58).unwrap()
                }
                (None, Some(jwk)) => {
                    assert_eq!(vector_vm.kind, "JsonWebKey2020", "{text}");
                    assert_eq!(jwk.crv, "Ed25519", "{text}");
                    encoding::b64url_decode(&jwk.x).unwrap()
                }
                _ => panic!("{text}: expected exactly one public key form"),
            };

            let did: Did = text.parse().unwrap();
            let doc = resolve_key_did(&did).unwrap();
            assert_eq!(doc.id, did);
            assert_eq!(doc.verification_method.len(), 1, "{text}");
            let vm = &doc.verification_method[0];
            assert_eq!(
                vm.public_key_multibase.to_bytes().as_slice(),
                vector_key,
                "{text}"
            );
            assert_eq!(vm.controller, did);
            assert_eq!(vm.id.to_string(), *signing);
            assert_eq!(vm.id, did.with_fragment(did.method_specific_id()));

            let seed: [u8; 32] = unhex(&v.seed).try_into().unwrap();
            assert_eq!(
                vm.public_key_multibase,
                SecretKey::from_bytes(&seed).public_key()
            );
            assert_eq!(Some(vm.public_key_multibase), did.embedded_key());

            let refs = |urls: &[String]| -> Vec<DidUrl> {
                urls.iter().map(|url| url.parse().unwrap()).collect()
            };
            assert_eq!(doc.authentication, refs(&expected.authentication), "{text}");
            assert_eq!(
                doc.assertion_method,
                refs(&expected.assertion_method),
                "{text}"
            );
            assert_eq!(
                doc.capability_invocation,
                refs(&expected.capability_invocation),
                "{text}"
            );
            assert_eq!(
                doc.capability_delegation,
                refs(&expected.capability_delegation),
                "{text}"
            );
        }
    }

    #[test]
    fn did_key_and_did_jwk_resolve_to_their_key() {
        let key = SecretKey::generate().public_key();
        for did in [
            Did::key_from_public_key(&key),
            Did::jwk_from_public_key(&key),
        ] {
            let doc = resolve_key_did(&did).unwrap();
            assert_eq!(doc.id, did);
            assert_eq!(doc.verification_method.len(), 1);
            let vm = &doc.verification_method[0];
            assert_eq!(vm.public_key_multibase, key);
            assert!(doc.authentication.contains(&vm.id));
            assert!(doc.assertion_method.contains(&vm.id));
            assert!(doc.capability_invocation.contains(&vm.id));
            assert!(doc.capability_delegation.contains(&vm.id));
        }
    }

    #[test]
    fn did_civ_needs_the_ledger() {
        let did = Did::civ_from_genesis_hash(&[3; 32]);
        assert!(matches!(
            resolve_key_did(&did),
            Err(ResolutionError::MethodNotSupported(_))
        ));
    }
}
