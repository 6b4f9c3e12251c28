//! Durable storage for Civitas services: an fdatasync'd, group-committed, append-only log of
//! records, and sled state derived from it.
//!
//! The registry (and the issuer and verifier) acknowledge a write only once it is in the log.
//! sled holds what is computed from the log (the latest operation per DID, indexes) and can be
//! rebuilt from it, because sled's `flush` is `sync_file_range`, not an fsync: sled alone is
//! never the durable record.
//!
//! ```text
//!  async tasks ──append/append_batch──▶ GroupCommitLog ──queue──▶ writer thread
//!                                                                   │ one write(2)
//!                                                                   │ one fdatasync per group
//!                                                                   ▼
//!                                        records.log  [hdr][frame][frame]...
//!                                                                   │ index extended after sync
//!        ◀── Ok(index) ───────────────────────────────────────────┘
//!  caller ──DerivedState::apply(batch, n)──▶ sled: state tree + applied marker (one transaction)
//!  start  ──DerivedState::catch_up(log, f)──▶ replays records applied()..log.len()
//! ```
//!
//! - [`Log`]: the log file. `append` writes a batch with one `write` and one `fdatasync`;
//!   `open` recovers from a crash (truncates a torn tail, refuses mid-log corruption).
//! - [`GroupCommitLog`]: a `Log` on a writer thread; concurrent async appends share writes
//!   and fdatasyncs.
//! - [`LogReader`] / [`Records`]: read handles and streaming replay; they see only synced
//!   records.
//! - [`DerivedState`]: sled trees plus the number of log records they reflect, changed
//!   atomically; `catch_up` replays what a crash took from sled.
//! - [`StoreError`]: every failure.
//!
//! # Durability contract
//!
//! - An append returns `Ok` only after the fdatasync covering its records. Indices are dense
//!   and never change; each append (batch) survives a crash whole or not at all.
//! - After a failed write or fdatasync the log is poisoned and acknowledges nothing more
//!   ([`StoreError::Poisoned`] explains why).
//! - Crash recovery drops only what a crash can explain: the unsynced tail. Anything else is
//!   [`StoreError::Corrupt`].
//! - Derived state reflects exactly the records `0..applied()`; after a crash it may be behind
//!   the log, never ahead, and `catch_up` closes the gap.
//!
//! The details are on [`Log`], [`GroupCommitLog`] and [`DerivedState`]. The crate uses `pread`,
//! `pwrite` and directory fsync, so it supports Unix only.
//!
//! # Example
//!
//! ```
//! use civitas_store::{DerivedState, GroupCommitLog, Log};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let log = Log::open(dir.path().join("log"))?;
//! let state = DerivedState::open(dir.path().join("state"))?;
//!
//! // On start, apply what the state is missing (after a crash, sled may be behind).
//! let apply = |index: u64, record: &[u8], batch: &mut sled::Batch| {
//!     batch.insert(&index.to_be_bytes(), record);
//!     Ok::<(), std::convert::Infallible>(())
//! };
//! state.catch_up(&log.reader(), apply)?;
//!
//! // Then serve appends; each returns once its record is fdatasync'd.
//! let log = GroupCommitLog::new(log)?;
//! let first = log.append_batch(vec![b"entry".to_vec(), b"seal".to_vec()]).await?;
//! assert_eq!(log.read_range(first, first + 2)?, [b"entry".to_vec(), b"seal".to_vec()]);
//!
//! // Only now update the derived state.
//! let mut batch = sled::Batch::default();
//! batch.insert(&first.to_be_bytes(), &b"entry"[..]);
//! batch.insert(&(first + 1).to_be_bytes(), &b"seal"[..]);
//! state.apply(batch, first + 2)?;
//! assert_eq!(state.applied(), log.len());
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!("civitas-store uses pread, pwrite and directory fsync: Unix only");

mod error;
mod frame;
mod group;
mod log;
mod recover;
mod state;

// The public interface is:
pub use crate::error::StoreError;
pub use crate::frame::MAX_RECORD_LEN;
pub use crate::group::{GroupCommitLog, Queued};
pub use crate::log::{Log, LogReader, Records};
pub use crate::state::{DerivedState, MARKER_KEY};
