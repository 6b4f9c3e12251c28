//! [`DerivedState`]: sled trees computed from the log, with the log position they reflect.

use std::error::Error as StdError;
use std::fmt;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::StoreError;
use crate::log::LogReader;

/// The tree that [`DerivedState::apply`] writes.
const STATE_TREE: &str = "state";

/// This crate's bookkeeping tree; names starting with `__` are reserved.
const META_TREE: &str = "__civitas_store_meta";

/// Key of the applied marker in [`META_TREE`] (where older versions kept it): a big-endian
/// `u64`.
const APPLIED_KEY: &[u8] = b"applied";

/// Key of the applied marker in the state tree: a big-endian `u64`, written in the same
/// `apply_batch` as the state it describes. It starts with a zero byte and a name of this
/// crate, so it sorts first and no prefix a user chooses (`d/`, `o/`, ...) covers it.
pub const MARKER_KEY: &[u8] = b"\0civitas-store/applied";

/// State derived from a log (indexes, the latest record per key, ...) kept in sled, together
/// with the number of log records it reflects.
///
/// The state is a function of a prefix of the log: the state tree ([`state`](Self::state))
/// plus an *applied marker* `n` meaning "records `0..n` are applied", kept in that tree under
/// [`MARKER_KEY`]. [`apply`](Self::apply) changes both in one atomic sled batch. On start, [`catch_up`](Self::catch_up) replays the
/// records the state is missing.
///
/// ### Durability contract
///
/// - **The log is the record; sled is a cache of it.** sled's `flush` is `sync_file_range`,
///   not fsync, and sled syncs on its own only every 500 ms, so a crash can take the state back
///   to an earlier point. Acknowledge a write only once it is in the log (see [`Log`]); never
///   because it reached sled. Delete the sled directory and `catch_up` rebuilds it.
/// - **The marker and the data move together.** [`apply`](Self::apply) writes the batch and
///   the new marker to the state tree with one `apply_batch`, which sled applies and recovers
///   atomically (cheaper than a transaction across two trees): after any crash, the state tree
///   holds exactly the effects of records `0..applied()`. [`apply_each`](Self::apply_each)
///   gives that up so that readers never wait: after a crash the state may also hold a part
///   of the effects of the records after the marker, and replay must tolerate it.
/// - **Behind is normal, ahead is an error.** After a crash the state may be behind the log;
///   [`catch_up`](Self::catch_up) applies exactly the missing records, in order. State ahead
///   of the log cannot happen if writes are acknowledged only from the log; `catch_up` reports
///   it as [`StoreError::StateAhead`].
/// - **The marker only moves forward**, so a record is never applied twice
///   ([`StoreError::MarkerNotAdvanced`]).
/// - **Deterministic replay.** Whatever computes a batch from records must depend only on the
///   records and the state, so that replay rebuilds the same state.
/// - Extra trees from [`tree`](Self::tree) are *not* covered by the marker: keep everything
///   that must be rebuilt from the log in the state tree (separate kinds by key prefix and use
///   `scan_prefix`).
///
/// [`Log`]: crate::Log
pub struct DerivedState {
    path: PathBuf,
    db: sled::Db,
    state: sled::Tree,
    applied: AtomicU64,
    /// Serializes `apply`: the check that the marker advances and the write are one step.
    apply_lock: std::sync::Mutex<()>,
}

impl DerivedState {
    /// Opens (or creates) the sled database in `dir` and reads its applied marker.
    ///
    /// sled locks its directory: a second `open` of the same directory fails while a first
    /// instance is alive (including trees from [`tree`](Self::tree)). Because sled lets go
    /// of the lock a few milliseconds after its last handle is dropped, `open` waits up to
    /// 5 s for it before failing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = dir.as_ref().to_path_buf();
        let sled_error = |op| {
            let path = path.clone();
            move |source| StoreError::Sled { op, path, source }
        };
        let db = open_sled(&path).map_err(sled_error("opening"))?;
        let state = db
            .open_tree(STATE_TREE)
            .map_err(sled_error("opening the state tree"))?;
        let meta = db
            .open_tree(META_TREE)
            .map_err(sled_error("opening the meta tree"))?;
        let marker = match state
            .get(MARKER_KEY)
            .map_err(sled_error("reading the applied marker"))?
        {
            Some(marker) => Some(marker),
            // A database written before the marker moved into the state tree.
            None => meta
                .get(APPLIED_KEY)
                .map_err(sled_error("reading the applied marker"))?,
        };
        let applied = decode_marker(&path, marker.as_deref())?;
        tracing::debug!(path = %path.display(), applied, "opened derived state");
        Ok(Self {
            path,
            db,
            state,
            applied: AtomicU64::new(applied),
            apply_lock: std::sync::Mutex::new(()),
        })
    }

    /// Number of log records applied: records `0..applied()` are reflected in the state.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// The state tree, to read the derived state. Write it only through
    /// [`apply`](Self::apply), or the marker no longer describes it. It also holds the marker
    /// itself under [`MARKER_KEY`]: read it by key prefixes, or skip that key.
    pub fn state(&self) -> &sled::Tree {
        &self.state
    }

    /// Opens an extra tree for data that is not derived from the log, or that its owner
    /// rebuilds by other means: the applied marker does not cover it. Names starting with
    /// `__` are reserved.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        if name.starts_with("__") {
            return Err(StoreError::ReservedTreeName {
                name: name.to_owned(),
            });
        }
        self.db.open_tree(name).map_err(|source| StoreError::Sled {
            op: "opening a tree",
            path: self.path.clone(),
            source,
        })
    }

    /// Applies `batch` to the state tree and sets the applied marker to `applied`, atomically.
    ///
    /// `applied` is the number of log records the state reflects afterwards, so after applying
    /// records `first..first + n` pass `first + n`. It must be greater than
    /// [`applied()`](Self::applied), else [`StoreError::MarkerNotAdvanced`] and nothing
    /// changes. Like sled, this does not sync: the log is what makes a record durable.
    pub fn apply(&self, mut batch: sled::Batch, applied: u64) -> Result<(), StoreError> {
        let _one_at_a_time = self.lock_to_advance(applied)?;
        batch.insert(MARKER_KEY, &applied.to_be_bytes()[..]);
        self.state
            .apply_batch(batch)
            .map_err(|source| StoreError::Sled {
                op: "applying a batch",
                path: self.path.clone(),
                source,
            })?;
        self.applied.store(applied, Ordering::Release);
        Ok(())
    }

    /// Writes `changes` (`None` removes the key) to the state tree one by one, in order, and
    /// then sets the applied marker to `applied`, for callers that must not stop readers.
    ///
    /// [`apply`](Self::apply) is atomic but holds sled's write lock for the whole batch, and
    /// every read of every tree in the database waits for it (sled's batches are isolated
    /// that way). This takes no such lock, at a price the caller pays:
    ///
    /// - **Readers may see a part of the changes.** Serve reads of keys being applied from
    ///   a copy of the changes until this returns.
    /// - **A crash may leave a part of the changes without the marker.** sled recovers its
    ///   writes in the order they were made (a prefix of them), and the marker is written last,
    ///   so the marker never runs ahead of the data; but on restart the records are replayed
    ///   over a state that may hold some of their effects already. Replay must then give the
    ///   same state: every record must write values that do not depend on its own earlier
    ///   effects (set a count, not add to it).
    ///
    /// The marker rules are [`apply`](Self::apply)'s: it must advance, else
    /// [`StoreError::MarkerNotAdvanced`] and nothing is written.
    pub fn apply_each<'c, I>(&self, changes: I, applied: u64) -> Result<(), StoreError>
    where
        I: IntoIterator<Item = (&'c [u8], Option<&'c [u8]>)>,
    {
        let _one_at_a_time = self.lock_to_advance(applied)?;
        let sled_error = |source| StoreError::Sled {
            op: "applying a change",
            path: self.path.clone(),
            source,
        };
        for (key, value) in changes {
            match value {
                Some(value) => self.state.insert(key, value).map(drop),
                None => self.state.remove(key).map(drop),
            }
            .map_err(sled_error)?;
        }
        self.state
            .insert(MARKER_KEY, &applied.to_be_bytes()[..])
            .map_err(sled_error)?;
        self.applied.store(applied, Ordering::Release);
        Ok(())
    }

    /// Takes the apply lock, once the marker would advance to `applied`.
    fn lock_to_advance(&self, applied: u64) -> Result<std::sync::MutexGuard<'_, ()>, StoreError> {
        let guard = self.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.applied();
        if applied <= current {
            return Err(StoreError::MarkerNotAdvanced {
                current,
                requested: applied,
            });
        }
        Ok(guard)
    }

    /// Replays the log records the state has not applied yet, `applied()..log.len()`, and
    /// returns how many it applied.
    ///
    /// `f(index, record, batch)` is called for each record in order and adds its effects to
    /// `batch`, a batch for the state tree. At the end of each log batch (the records of one
    /// `append`/`append_batch`) the batch is committed with [`apply`](Self::apply), so:
    /// through [`state`](Self::state), `f` sees the effects of every earlier log batch, but
    /// not those of earlier records of the same log batch (they are only in `batch`); and a
    /// callback may defer a block's effects until the block's last record. This is the same
    /// granularity as applying each appended block once it is durable.
    ///
    /// An error from `f` stops the replay with [`StoreError::Replay`]; the batches committed
    /// before stay applied. Fails with [`StoreError::StateAhead`] if the state claims more
    /// records than the log has. Call this before taking new appends.
    pub fn catch_up<F, E>(&self, log: &LogReader, mut f: F) -> Result<u64, StoreError>
    where
        F: FnMut(u64, &[u8], &mut sled::Batch) -> Result<(), E>,
        E: Into<Box<dyn StdError + Send + Sync + 'static>>,
    {
        let start = self.applied();
        let log_len = log.len();
        if start > log_len {
            return Err(StoreError::StateAhead {
                applied: start,
                log_len,
            });
        }
        let mut records = log.iter_from(start)?;
        let mut batch = sled::Batch::default();
        let mut pending = false;
        let mut next = start;
        while let Some(frame) = records.next_frame() {
            let frame = frame?;
            f(frame.index, &frame.payload, &mut batch).map_err(|e| StoreError::Replay {
                index: frame.index,
                source: e.into(),
            })?;
            next = frame.index + 1;
            pending = frame.continues;
            if !frame.continues {
                self.apply(mem::take(&mut batch), next)?;
            }
        }
        // The log indexes whole batches only, so it cannot end inside one; should it, apply
        // what was read rather than lose it.
        if pending {
            self.apply(batch, next)?;
        }
        let replayed = next - start;
        tracing::info!(path = %self.path.display(), from = start, replayed, "derived state caught up");
        Ok(replayed)
    }

    /// Asks sled to write its dirty state out (`flush_async`), to shorten the replay after
    /// the next start. This is *not* a durability point (sled flushes with
    /// `sync_file_range`); the log is.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush_async()
            .await
            .map(drop)
            .map_err(|source| StoreError::Sled {
                op: "flushing",
                path: self.path.clone(),
                source,
            })
    }
}

impl fmt::Debug for DerivedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DerivedState")
            .field("path", &self.path)
            .field("applied", &self.applied())
            .finish_non_exhaustive()
    }
}

fn decode_marker(path: &Path, marker: Option<&[u8]>) -> Result<u64, StoreError> {
    match marker {
        None => Ok(0),
        Some(bytes) => match <[u8; 8]>::try_from(bytes) {
            Ok(bytes) => Ok(u64::from_be_bytes(bytes)),
            Err(_) => Err(StoreError::CorruptState {
                path: path.to_path_buf(),
                detail: format!(
                    "expected an 8-byte applied marker, found {} bytes",
                    bytes.len()
                ),
            }),
        },
    }
}

/// How long [`DerivedState::open`] waits for a lock that a dropped instance still holds.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, waiting a short while if its directory lock is still held: sled's background
/// I/O jobs keep the locked file open for a few milliseconds after the last handle of an
/// instance is dropped, so a reopen in the same process can race them. A lock held by a live
/// instance (another process) still fails, after [`LOCK_WAIT`].
fn open_sled(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new().path(path).open() {
            // sled reports the lock as an `Other` error whose text names it.
            Err(sled::Error::Io(err))
                if err.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}
