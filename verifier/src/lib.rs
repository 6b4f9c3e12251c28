//! The Civitas verifier: every data request bound to an accountable identity.
//!
//! [`VerifierLayer`] is a tower layer for any axum app. For each request it checks, in
//! DESIGN.md's order, the route policy, the RFC 9421 request signature (the Civitas
//! profile), the SD-JWT VC presentation the route asks for (holder binding proven by the
//! request signature itself, or by a KB-JWT when one is sent), the issuer's accreditation
//! and the credential's status, and the route's claim policy; it writes an audit record of
//! the decision — durably before an allowed request reaches the handler — and hands the
//! handler a [`VerifiedCaller`]. Records are hash-chained and their batch roots anchored on
//! the ledger ([`audit`]).
//!
//! ```text
//!  request ─▶ route + path ─▶ signature profile, window, digest ─▶ presentation (unverified)
//!          ─▶ caller DID (cached) ─▶ request signature ─▶ replay ─▶ KB-JWT ─▶ issuer (cached)
//!          ─▶ status (cached) ─▶ claim policy ─▶ audit record (durable) ─▶ handler
//! ```
//!
//! The binary `verifier` runs the layer as a gateway in front of an HTTP data service
//! ([`gateway`]), with the audit API.

pub mod audit;
pub mod caller;
pub mod check;
pub mod cli;
pub mod denial;
pub mod gateway;
pub mod layer;
pub mod policy;
mod replay;

pub use crate::caller::{PresentedCredential, VerifiedCaller};
pub use crate::check::{Checker, Settings};
pub use crate::denial::Denial;
pub use crate::layer::{Verifier, VerifierLayer};
pub use crate::policy::Policy;
