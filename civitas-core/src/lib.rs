//! Civitas protocol types and the pure functions that check them.
//!
//! Everything that crosses a process boundary is defined here — DIDs and DID documents,
//! Ed25519 keys, signed ledger objects, the did:civ rules, trust entries and anchors,
//! RFC 9162 Merkle proofs, the verifiable state map, C2SP checkpoints, problem types and
//! API bodies — so that the registry validates with the same code the wallet, the verifier
//! and auditors verify with. This crate does no IO: no network, no storage, no async
//! runtime.
//!
//! ```text
//!  wallet ──signs──▶ ledger::Signed<Operation> ──POST──▶ registry
//!                                                        │ civ::apply_operation (rules)
//!                                                        │ tlog / smt (log + state map)
//!                                                        ▼ note (signed checkpoint)
//!  client ◀──ResolutionResult + proofs── registry ; proof::verify_resolution checks them
//! ```
//!
//! ```
//! use civitas_core::keys::SecretKey;
//! use civitas_core::did::Did;
//! let key = SecretKey::generate().public_key();
//! let did = Did::key_from_public_key(&key);
//! assert_eq!(did.embedded_key(), Some(key));
//! ```

pub mod anchor;
pub mod api;
pub mod audit;
pub mod civ;
pub mod constraint;
pub mod credential;
pub mod did;
pub mod document;
pub mod encoding;
pub mod httpsig;
pub mod jcs;
pub mod jws;
pub mod keys;
pub mod ledger;
pub mod note;
pub mod problem;
pub mod proof;
pub mod resolve;
pub mod schema;
pub mod sdjwt;
pub mod smt;
pub mod status_list;
pub mod tlog;
pub mod trust;
