//! The error type of every operation in this crate.

use std::error::Error as StdError;
use std::io;
use std::path::PathBuf;

/// Why a log or state operation failed.
///
/// Variants that wrap an error from the operating system or from sled say what was being done
/// and on which path; the wrapped error is the [`source`](StdError::source), so print the
/// whole chain (`{:#}` with anyhow) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file system operation failed.
    #[error("io error while {op} {}", path.display())]
    Io {
        /// What was being done, such as `"fdatasyncing"`.
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// A record in the log is damaged where a crash cannot explain it: in the middle of the
    /// log, or when read back after it was opened.
    #[error("corrupt log record {index} at byte offset {offset} in {}: {detail}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// The index the damaged record has (or should have).
        index: u64,
        /// Byte offset of the damaged frame in the file.
        offset: u64,
        /// What was expected and what was found.
        detail: String,
    },

    /// The file in the log directory is not a log this crate wrote.
    #[error("log file header of {}: expected {expected:?}, found {found:?}", path.display())]
    NotALog {
        /// The log file.
        path: PathBuf,
        /// The header this version writes.
        expected: Vec<u8>,
        /// The bytes found instead.
        found: Vec<u8>,
    },

    /// Another [`Log`](crate::Log) (in this process or another) holds the log file's lock.
    ///
    /// The lock is an `flock`, held by every copy of the writer's file descriptor: a child
    /// process between `fork` and `exec` holds it too, for that moment.
    #[error("log file {} is locked: expected no other writer, found one", path.display())]
    Locked {
        /// The log file.
        path: PathBuf,
    },

    /// A record exceeds [`MAX_RECORD_LEN`](crate::MAX_RECORD_LEN); nothing was written.
    #[error("record {position} of the batch is {len} bytes: expected at most {max}")]
    RecordTooLarge {
        /// Position of the record in the batch passed to `append`.
        position: usize,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// A batch has more records than one write can carry; nothing was written.
    #[error("batch of {records} records: expected at most {max}")]
    BatchTooLarge {
        /// Records in the batch.
        records: usize,
        /// The limit.
        max: usize,
    },

    /// A read asked for records the log does not have.
    #[error("records {start}..{end} requested: expected a range within 0..{len}")]
    OutOfRange {
        /// First requested index.
        start: u64,
        /// One past the last requested index.
        end: u64,
        /// Records in the log.
        len: u64,
    },

    /// An earlier write or fdatasync failed, so the log accepts no more appends.
    ///
    /// After a failed fdatasync, Linux may have dropped the dirty pages and marked them clean;
    /// a later fdatasync then succeeds without writing them ("fsyncgate", PostgreSQL 2018).
    /// Acknowledging anything after the failure could acknowledge a record that sits behind a
    /// hole. Reopen the log (which rescans the file) once the cause is fixed.
    #[error("log is poisoned by an earlier write failure: expected a healthy log; reopen it")]
    Poisoned,

    /// The group-commit writer thread is gone, so the append cannot be acknowledged.
    #[error("log writer thread stopped: expected it to be running")]
    WriterStopped,

    /// A sled operation failed.
    #[error("sled error while {op} in {}", path.display())]
    Sled {
        /// What was being done, such as `"applying a batch"`.
        op: &'static str,
        /// The sled directory.
        path: PathBuf,
        /// sled's error.
        #[source]
        source: sled::Error,
    },

    /// The derived state is damaged (its applied marker cannot be decoded).
    #[error("derived state in {}: {detail}", path.display())]
    CorruptState {
        /// The sled directory.
        path: PathBuf,
        /// What was expected and what was found.
        detail: String,
    },

    /// The derived state claims more records than the log has. Either the state belongs to
    /// another log, or the log lost acknowledged records: both need an operator.
    #[error("derived state applied {applied} records: expected at most the log's {log_len}")]
    StateAhead {
        /// Records the state says it applied.
        applied: u64,
        /// Records in the log.
        log_len: u64,
    },

    /// [`DerivedState::apply`](crate::DerivedState::apply) would not move the marker forward.
    #[error(
        "applied marker would move from {current} to {requested}: expected more than {current}"
    )]
    MarkerNotAdvanced {
        /// The marker before the call.
        current: u64,
        /// The marker the call asked for.
        requested: u64,
    },

    /// The tree name is reserved for this crate's bookkeeping (it starts with `__`).
    #[error("tree name {name:?}: expected a name not starting with \"__\"")]
    ReservedTreeName {
        /// The requested name.
        name: String,
    },

    /// The callback passed to [`DerivedState::catch_up`](crate::DerivedState::catch_up)
    /// failed on a record. Records before it stay applied.
    #[error("replaying log record {index}")]
    Replay {
        /// The record the callback failed on.
        index: u64,
        /// The callback's error.
        #[source]
        source: Box<dyn StdError + Send + Sync + 'static>,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A copy for the second and later callers whose records shared a failed write.
    /// `io::Error` is not `Clone`; its kind and message survive.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Io { op, path, source } => Self::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Self::RecordTooLarge { position, len, max } => Self::RecordTooLarge {
                position: *position,
                len: *len,
                max: *max,
            },
            Self::BatchTooLarge { records, max } => Self::BatchTooLarge {
                records: *records,
                max: *max,
            },
            // Appends fail only with the variants above; anything else is reported as the
            // poisoning it causes.
            _ => Self::Poisoned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<StoreError>();
        assert_send_sync::<crate::GroupCommitLog>();
        assert_send_sync::<crate::LogReader>();
        assert_send_sync::<crate::DerivedState>();
    }

    #[test]
    fn messages_say_what_was_expected() {
        let error = StoreError::io(
            "fdatasyncing",
            "/data/log/records.log",
            io::Error::other("eio"),
        );
        assert_eq!(
            error.to_string(),
            "io error while fdatasyncing /data/log/records.log"
        );
        let error = StoreError::StateAhead {
            applied: 9,
            log_len: 7,
        };
        assert_eq!(
            error.to_string(),
            "derived state applied 9 records: expected at most the log's 7"
        );
    }
}
