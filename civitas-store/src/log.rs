//! [`Log`]: the append-only, fdatasync'd record file, and [`LogReader`] / [`Records`] to read it.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use crate::error::StoreError;
use crate::frame::{self, FILE_HEADER, FRAME_HEADER_LEN, Header, MAX_RECORD_LEN};
use crate::recover;

/// Name of the log file inside the directory given to [`Log::open`].
const LOG_FILE_NAME: &str = "records.log";

/// How many bytes [`Records`] reads at a time (at least one whole record).
const READ_AHEAD: u64 = 1 << 20;

/// An append-only file of records, each acknowledged only after an fdatasync.
///
/// Records are byte strings of at most [`MAX_RECORD_LEN`] bytes, numbered from 0 in the order
/// they were appended. [`Log::append`] writes a batch of records with one `write` and one
/// `fdatasync`; reads go through a separate file handle and an in-memory index of record
/// offsets that is extended only after the fdatasync, so they never see unsynced data.
///
/// For async callers that want many appends to share one fdatasync, move the log into a
/// [`GroupCommitLog`](crate::GroupCommitLog).
///
/// ### Durability contract
///
/// - **Durable before return.** When `append` returns `Ok(first)`, the records are on stable
///   storage (`write` + `fdatasync` of the file; the directory entry was fsynced by
///   [`Log::open`]) with indices `first..first + n`, and a crash after that never loses them.
/// - **Append-only, no holes.** Indices are dense; a record, once acknowledged, never changes.
/// - **Atomic batches.** The records of one `append` survive a crash all together or not at
///   all, so a block (entries + seal) is never cut in half.
/// - **Unacknowledged means unknown.** Records whose `append` failed or did not return before
///   a crash may or may not be in the log after [`Log::open`].
/// - **Recovery.** [`Log::open`] verifies every frame's crc32. A damaged tail that a crash can
///   explain (a partial or failing frame in the last write) is truncated back to the last whole
///   batch and the truncation is synced before `open` returns. Damage that a crash cannot
///   explain (a bad frame followed by a valid frame of a later write) is
///   [`StoreError::Corrupt`]: the log refuses to open rather than drop records silently.
///   Bit rot inside the *last* write looks exactly like a torn write and is truncated too;
///   this is the one case where an acknowledged record can be dropped (after a `warn` event).
/// - **Fail-stop.** If a write or fdatasync fails, the batch fails and the log is poisoned:
///   every later append returns [`StoreError::Poisoned`] (see there for why). Reads of
///   acknowledged records keep working; they were synced before the failure.
/// - **One writer.** [`Log::open`] takes an exclusive advisory lock (`flock`) on the file, so
///   a second writer, in this process or another, gets [`StoreError::Locked`].
///
/// The same holds for [`GroupCommitLog`](crate::GroupCommitLog), which adds only batching.
pub struct Log {
    /// The write handle; holds the lock.
    file: File,
    shared: Arc<Shared>,
    len: u64,
    end: u64,
    poisoned: bool,
    #[cfg(test)]
    pub(crate) fail_next_sync: bool,
}

/// The part of a log that readers share with the writer.
pub(crate) struct Shared {
    path: PathBuf,
    /// A read-only handle of its own, so that readers never hold the writer's lock alive.
    file: File,
    index: RwLock<Index>,
    fsyncs: AtomicU64,
}

/// Where the synced records are.
struct Index {
    /// Byte offset of each record's frame.
    offsets: Vec<u64>,
    /// End of the last synced frame.
    end: u64,
}

/// One decoded record, as replay needs it.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) index: u64,
    pub(crate) payload: Vec<u8>,
    /// Whether the next record belongs to the same batch.
    pub(crate) continues: bool,
}

impl Log {
    /// Opens the log in `dir` (the file `dir/records.log`), creating the directory and the
    /// file if needed, and recovers from a crash: see the durability contract on [`Log`].
    ///
    /// Reads the whole file once to verify it and to build the in-memory offset index
    /// (8 bytes per record).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = dir.as_ref();
        let created_dir = !dir.exists();
        fs::create_dir_all(dir).map_err(|e| StoreError::io("creating directory", dir, e))?;
        if created_dir && let Some(parent) = dir.parent() {
            // `Path::new("log").parent()` is `Some("")`: the current directory.
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            sync_dir(parent)?;
        }
        let path = dir.join(LOG_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StoreError::io("opening", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(TryLockError::Error(e)) => return Err(StoreError::io("locking", &path, e)),
        }
        let mut file_len = file
            .metadata()
            .map_err(|e| StoreError::io("reading metadata of", &path, e))?
            .len();
        let header_len = FILE_HEADER.len() as u64;
        let mut found = vec![0; file_len.min(header_len) as usize];
        file.read_exact_at(&mut found, 0)
            .map_err(|e| StoreError::io("reading", &path, e))?;
        if !FILE_HEADER.starts_with(&found) {
            return Err(StoreError::NotALog {
                path,
                expected: FILE_HEADER.to_vec(),
                found,
            });
        }
        if file_len < header_len {
            // A new file, or one whose creation a crash interrupted: nothing in it was ever
            // acknowledged, so (re)write the header.
            file.write_all_at(&FILE_HEADER, 0)
                .map_err(|e| StoreError::io("writing", &path, e))?;
            file.sync_all()
                .map_err(|e| StoreError::io("fsyncing", &path, e))?;
            file_len = header_len;
        }
        // Always: a crash after an earlier open created the file may have left its directory
        // entry unsynced, and records acknowledged now must not vanish with it.
        sync_dir(dir)?;

        let recovered = recover::scan(&file, &path, file_len)?;
        if let Some(why) = &recovered.torn {
            tracing::warn!(
                path = %path.display(),
                kept_records = recovered.offsets.len(),
                dropped_bytes = file_len - recovered.end,
                why = %why,
                "truncating a torn log tail"
            );
            file.set_len(recovered.end)
                .map_err(|e| StoreError::io("truncating", &path, e))?;
            file.sync_all()
                .map_err(|e| StoreError::io("fsyncing", &path, e))?;
        }
        let reader = File::open(&path).map_err(|e| StoreError::io("opening", &path, e))?;
        let len = recovered.offsets.len() as u64;
        tracing::debug!(path = %path.display(), records = len, bytes = recovered.end, "opened log");
        Ok(Self {
            file,
            shared: Arc::new(Shared {
                path,
                file: reader,
                index: RwLock::new(Index {
                    offsets: recovered.offsets,
                    end: recovered.end,
                }),
                fsyncs: AtomicU64::new(0),
            }),
            len,
            end: recovered.end,
            poisoned: false,
            #[cfg(test)]
            fail_next_sync: false,
        })
    }

    /// Appends `records` as one batch with one `write` and one `fdatasync`, and returns the
    /// index of the first one (the current [`len`](Log::len) if `records` is empty, which
    /// writes nothing).
    ///
    /// Returns only after the records are durable; then [`len`](Log::len) and reads see them.
    /// The batch is atomic across crashes. A record over [`MAX_RECORD_LEN`] fails the whole
    /// batch before anything is written.
    pub fn append<R: AsRef<[u8]>>(&mut self, records: &[R]) -> Result<u64, StoreError> {
        self.append_batches(&[records])
    }

    /// Appends several batches with one `write` and one `fdatasync`; each batch stays atomic.
    /// Returns the index of the first record of the first batch.
    pub(crate) fn append_batches<R: AsRef<[u8]>>(
        &mut self,
        batches: &[&[R]],
    ) -> Result<u64, StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        let mut count = 0;
        let mut bytes = 0;
        for batch in batches {
            check_batch(batch)?;
            count += batch.len();
            bytes += batch
                .iter()
                .map(|r| FRAME_HEADER_LEN + r.as_ref().len())
                .sum::<usize>();
        }
        let first = self.len;
        if count == 0 {
            return Ok(first);
        }
        if u32::try_from(count).is_err() {
            return Err(StoreError::BatchTooLarge {
                records: count,
                max: u32::MAX as usize,
            });
        }
        let mut buf = Vec::with_capacity(bytes);
        let mut offsets = Vec::with_capacity(count);
        let mut index = first;
        // `count` fits in a u32, checked above.
        let mut write_pos = 0u32;
        for batch in batches {
            for (i, record) in batch.iter().enumerate() {
                offsets.push(self.end + buf.len() as u64);
                let continues = i + 1 < batch.len();
                frame::encode(&mut buf, index, write_pos, continues, record.as_ref());
                index += 1;
                write_pos += 1;
            }
        }
        if let Err(e) = self.write_and_sync(&buf) {
            self.poison();
            return Err(e);
        }
        self.len = index;
        self.end += buf.len() as u64;
        let mut shared = self
            .shared
            .index
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        shared.offsets.extend_from_slice(&offsets);
        shared.end = self.end;
        Ok(first)
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        let path = &self.shared.path;
        self.file
            .write_all_at(buf, self.end)
            .map_err(|e| StoreError::io("writing", path, e))?;
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            let injected = std::io::Error::other("injected fdatasync failure");
            return Err(StoreError::io("fdatasyncing", path, injected));
        }
        self.file
            .sync_data()
            .map_err(|e| StoreError::io("fdatasyncing", path, e))?;
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Refuses all further appends, and cuts the failed write off the file so that a process
    /// restart does not read it back from the page cache (best effort).
    fn poison(&mut self) {
        self.poisoned = true;
        let path = self.shared.path.display();
        tracing::error!(path = %path, "log write failed; the log is poisoned until reopened");
        if let Err(error) = self.file.set_len(self.end) {
            tracing::warn!(path = %path, %error, "could not cut the failed write off the log");
        }
    }

    /// Number of records in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the log has no records.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads record `index`. See [`LogReader::read`].
    pub fn read(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        self.shared.read(index)
    }

    /// Reads records `start..end`. See [`LogReader::read_range`].
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.shared.read_range(start, end)
    }

    /// Streams records from `start` on. See [`LogReader::iter_from`].
    pub fn iter_from(&self, start: u64) -> Result<Records, StoreError> {
        self.shared.iter_from(start)
    }

    /// A cheap, cloneable handle that reads this log from any thread.
    pub fn reader(&self) -> LogReader {
        LogReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Number of fdatasyncs that appends to this log have completed since it was opened.
    pub fn fsync_count(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Log")
            .field("path", &self.shared.path)
            .field("len", &self.len)
            .field("end", &self.end)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// Checks the record sizes of one batch.
pub(crate) fn check_batch<R: AsRef<[u8]>>(records: &[R]) -> Result<(), StoreError> {
    match records
        .iter()
        .enumerate()
        .find(|(_, r)| r.as_ref().len() > MAX_RECORD_LEN)
    {
        Some((position, record)) => Err(StoreError::RecordTooLarge {
            position,
            len: record.as_ref().len(),
            max: MAX_RECORD_LEN,
        }),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsyncing directory", dir, e))
}

/// A cloneable read handle on a [`Log`] or [`GroupCommitLog`](crate::GroupCommitLog).
///
/// It sees exactly the records whose fdatasync has completed, never unsynced data. Reads are
/// blocking `pread`s (usually served from the page cache); from async code, move large reads
/// to `tokio::task::spawn_blocking`. Every read re-verifies the records' crc32.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

impl LogReader {
    /// Number of durable records.
    pub fn len(&self) -> u64 {
        self.shared.len()
    }

    /// Whether the log has no durable records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads record `index`, or fails with [`StoreError::OutOfRange`] if `index >= len()`.
    pub fn read(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        self.shared.read(index)
    }

    /// Reads records `start..end` with one `pread`; fails with [`StoreError::OutOfRange`]
    /// unless `start <= end <= len()`.
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.shared.read_range(start, end)
    }

    /// Streams `(index, record)` pairs from `start` up to the length the log has now, reading
    /// about 1 MiB at a time: for replaying a log too big to hold in memory. Fails with
    /// [`StoreError::OutOfRange`] if `start > len()`.
    pub fn iter_from(&self, start: u64) -> Result<Records, StoreError> {
        self.shared.iter_from(start)
    }

    /// Number of fdatasyncs that appends to the log have completed since it was opened.
    pub fn fsync_count(&self) -> u64 {
        self.shared.fsyncs.load(Ordering::Relaxed)
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl fmt::Debug for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.shared.path)
            .field("len", &self.shared.len())
            .finish()
    }
}

impl Shared {
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        // The index is extended only after the new offsets are fully computed, so a panic
        // elsewhere cannot leave it half-updated.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> u64 {
        self.index().offsets.len() as u64
    }

    /// The byte span of records `start..end`, checked against the index.
    fn span(&self, start: u64, end: u64) -> Result<(u64, u64), StoreError> {
        let index = self.index();
        let len = index.offsets.len() as u64;
        if start > end || end > len {
            return Err(StoreError::OutOfRange { start, end, len });
        }
        let at = |i: u64| match index.offsets.get(i as usize) {
            Some(&offset) => offset,
            None => index.end,
        };
        Ok((at(start), at(end)))
    }

    fn read(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        let mut frames = VecDeque::new();
        self.read_frames(index, index.saturating_add(1), &mut frames)?;
        match frames.pop_front() {
            Some(frame) => Ok(frame.payload),
            // read_frames decoded the one frame the index points at, or failed.
            None => Err(StoreError::OutOfRange {
                start: index,
                end: index.saturating_add(1),
                len: self.len(),
            }),
        }
    }

    fn read_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut frames = VecDeque::new();
        self.read_frames(start, end, &mut frames)?;
        Ok(frames.into_iter().map(|f| f.payload).collect())
    }

    fn iter_from(self: &Arc<Self>, start: u64) -> Result<Records, StoreError> {
        let len = self.len();
        if start > len {
            return Err(StoreError::OutOfRange {
                start,
                end: len,
                len,
            });
        }
        Ok(Records {
            shared: Arc::clone(self),
            next: start,
            end: len,
            buffered: VecDeque::new(),
            failed: false,
        })
    }

    /// Reads and verifies records `start..end`, appending them to `out`.
    fn read_frames(
        &self,
        start: u64,
        end: u64,
        out: &mut VecDeque<Frame>,
    ) -> Result<(), StoreError> {
        let (from, to) = self.span(start, end)?;
        let mut buf = vec![0; (to - from) as usize];
        self.file
            .read_exact_at(&mut buf, from)
            .map_err(|e| StoreError::io("reading", &self.path, e))?;
        let mut at = 0;
        let mut index = start;
        while at < buf.len() {
            let offset = from + at as u64;
            let corrupt = |detail: String| StoreError::Corrupt {
                path: self.path.clone(),
                index,
                offset,
                detail,
            };
            let rest = &buf[at..];
            let Some(bytes) = frame::header_bytes(rest) else {
                return Err(corrupt(format!(
                    "expected a {FRAME_HEADER_LEN}-byte frame header, found {} bytes",
                    rest.len()
                )));
            };
            let Some(header) = Header::parse(bytes) else {
                return Err(corrupt(format!(
                    "expected a record length of at most {MAX_RECORD_LEN}, found a larger one"
                )));
            };
            if header.index != index {
                return Err(corrupt(format!(
                    "expected record index {index}, found {}",
                    header.index
                )));
            }
            let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + header.len) else {
                return Err(corrupt(format!(
                    "expected {} payload bytes, found {}",
                    header.len,
                    rest.len() - FRAME_HEADER_LEN
                )));
            };
            if let Err((expected, found)) = header.check(bytes, payload) {
                return Err(corrupt(format!(
                    "expected crc32 {expected:#010x}, found {found:#010x}"
                )));
            }
            out.push_back(Frame {
                index,
                payload: payload.to_vec(),
                continues: header.continues,
            });
            at += FRAME_HEADER_LEN + header.len;
            index += 1;
        }
        Ok(())
    }

    /// Picks the records to read next from `next`: as many as start within [`READ_AHEAD`]
    /// bytes, at least one, none at or past `end`.
    fn read_ahead_end(&self, next: u64, end: u64) -> u64 {
        let index = self.index();
        let window = index
            .offsets
            .get(next as usize..end as usize)
            .unwrap_or_default();
        let Some(&first) = window.first() else {
            return next;
        };
        let count = window.partition_point(|&offset| offset - first < READ_AHEAD);
        next + count.max(1) as u64
    }
}

/// Streams `(index, record)` pairs out of a log; made by `iter_from`.
///
/// It reads up to the log's length when it was made, about 1 MiB per `pread`, and stops after
/// the first error.
pub struct Records {
    shared: Arc<Shared>,
    next: u64,
    end: u64,
    buffered: VecDeque<Frame>,
    failed: bool,
}

impl Records {
    /// The next record with its batch boundary, for replay.
    pub(crate) fn next_frame(&mut self) -> Option<Result<Frame, StoreError>> {
        if let Some(frame) = self.buffered.pop_front() {
            return Some(Ok(frame));
        }
        if self.failed || self.next >= self.end {
            return None;
        }
        let stop = self.shared.read_ahead_end(self.next, self.end);
        if let Err(e) = self.shared.read_frames(self.next, stop, &mut self.buffered) {
            self.failed = true;
            return Some(Err(e));
        }
        self.next = stop;
        self.buffered.pop_front().map(Ok)
    }
}

impl Iterator for Records {
    type Item = Result<(u64, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
            .map(|frame| frame.map(|f| (f.index, f.payload)))
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("path", &self.shared.path)
            .field("next", &(self.next - self.buffered.len() as u64))
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("path", &self.path)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}
