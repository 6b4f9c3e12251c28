//! W3C DID Core documents with `Multikey` verification methods.

use serde::{Deserialize, Serialize};

use crate::did::{Did, DidUrl};
use crate::keys::PublicKey;

/// The JSON-LD contexts of every document Civitas produces.
pub const DID_CONTEXTS: [&str; 2] = [
    "https://www.w3.org/ns/did/v1",
    "https://w3id.org/security/multikey/v1",
];

/// A verification relationship of DID Core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Relationship {
    /// `authentication`: signing requests and key-binding.
    Authentication,
    /// `assertionMethod`: issuing credentials and anchoring.
    AssertionMethod,
    /// `capabilityInvocation`: trust entries, controller operations.
    CapabilityInvocation,
    /// `capabilityDelegation`.
    CapabilityDelegation,
}

impl Relationship {
    /// The relationship's DID Core property name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::AssertionMethod => "assertionMethod",
            Self::CapabilityInvocation => "capabilityInvocation",
            Self::CapabilityDelegation => "capabilityDelegation",
        }
    }
}

/// A DID document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// `@context`.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The DID.
    pub id: Did,
    /// The controller, when another DID controls this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<Did>,
    /// Verification methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    /// `authentication` references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<DidUrl>,
    /// `assertionMethod` references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_method: Vec<DidUrl>,
    /// `capabilityInvocation` references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<DidUrl>,
    /// `capabilityDelegation` references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<DidUrl>,
    /// Services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
}

/// A `Multikey` verification method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// The method's DID URL (`did#fragment`).
    pub id: DidUrl,
    /// Always `Multikey`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The DID that controls the key.
    pub controller: Did,
    /// The key, base58btc multibase with the ed25519-pub prefix.
    pub public_key_multibase: PublicKey,
}

/// A service endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The service's DID URL.
    pub id: DidUrl,
    /// The service type (from the allow-list, e.g. `OID4VCI`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The endpoint URL.
    pub service_endpoint: String,
}

impl DidDocument {
    /// An empty document for `id` with the standard contexts.
    pub fn new(id: Did) -> Self {
        Self {
            context: DID_CONTEXTS.iter().map(|c| (*c).to_owned()).collect(),
            id,
            controller: None,
            verification_method: Vec::new(),
            authentication: Vec::new(),
            assertion_method: Vec::new(),
            capability_invocation: Vec::new(),
            capability_delegation: Vec::new(),
            service: Vec::new(),
        }
    }

    /// The references listed under `relationship`.
    pub fn relationship(&self, relationship: Relationship) -> &[DidUrl] {
        match relationship {
            Relationship::Authentication => &self.authentication,
            Relationship::AssertionMethod => &self.assertion_method,
            Relationship::CapabilityInvocation => &self.capability_invocation,
            Relationship::CapabilityDelegation => &self.capability_delegation,
        }
    }

    /// The key of the verification method `url`, if it is listed under `relationship`.
    pub fn key_for(&self, url: &DidUrl, relationship: Relationship) -> Option<PublicKey> {
        if url.did() != &self.id || !self.relationship(relationship).contains(url) {
            return None;
        }
        self.verification_method
            .iter()
            .find(|vm| &vm.id == url)
            .map(|vm| vm.public_key_multibase)
    }

    /// The endpoints of the services of type `kind`.
    pub fn service_endpoints<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.service
            .iter()
            .filter(move |s| s.kind == kind)
            .map(|s| s.service_endpoint.as_str())
    }

    /// A document for a DID that stands for one key (did:key, did:jwk): the key is the
    /// only verification method, in every relationship.
    pub fn for_single_key(did: &Did, key: PublicKey, fragment: &str) -> Self {
        let mut doc = Self::new(did.clone());
        let url = did.with_fragment(fragment);
        doc.verification_method.push(VerificationMethod {
            id: url.clone(),
            kind: "Multikey".to_owned(),
            controller: did.clone(),
            public_key_multibase: key,
        });
        doc.authentication.push(url.clone());
        doc.assertion_method.push(url.clone());
        doc.capability_invocation.push(url.clone());
        doc.capability_delegation.push(url);
        doc
    }
}
