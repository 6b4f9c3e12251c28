//! Integration tests of civitas-store: one conformance suite run over [`Log`] and
//! [`GroupCommitLog`], group commit under concurrency, and derived state. The kill -9 test is
//! its own binary, `tests/crash.rs`.
//!
//! [`Log`]: civitas_store::Log
//! [`GroupCommitLog`]: civitas_store::GroupCommitLog

mod group_commit;
mod state;
mod suite;
