//! [`GroupCommitLog`]: many concurrent appends, one `write` + one `fdatasync` per group.

use std::fmt;
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::log::{self, Log, LogReader, Records};

/// Appends waiting for the writer thread, counted in calls; more wait in `append` itself.
const QUEUE_DEPTH: usize = 1024;

/// Soft limit on the bytes one group write carries. A request that would cross it waits for
/// the next group; a single larger batch is written alone.
const GROUP_BYTES: usize = 16 << 20;

/// A [`Log`] owned by a dedicated writer thread that group-commits appends from async tasks.
///
/// The thread takes every append that is waiting, writes them all with one `write`, calls
/// `fdatasync` once, and only then answers each caller with the index of its first record.
/// Appends that arrive while an fdatasync is in flight wait in a queue and make up the next
/// group. fdatasync takes ~1 ms on the reference machine, so one append per fdatasync would cap
/// a log at ~1k durable appends per second; under load, a group carries many.
///
/// Reads ([`read`](Self::read), [`read_range`](Self::read_range), [`iter_from`](Self::iter_from),
/// [`reader`](Self::reader)) bypass the thread: they use the log's shared offset index, which
/// the thread extends only after the fdatasync, so they never see unsynced data.
///
/// ### Durability contract
///
/// Exactly [`Log`]'s: `append` and `append_batch` return `Ok` only after the fdatasync that
/// covers their records; indices are unique and dense; each `append_batch` is atomic across
/// crashes (records of *different* calls in the same group are not atomic together, and none
/// of them was acknowledged before the fdatasync). If a write or fdatasync fails, every caller
/// in that group gets the error and the log is poisoned: every later append fails with
/// [`StoreError::Poisoned`], so nothing written after a failed fdatasync is ever acknowledged
/// (see [`StoreError::Poisoned`] for why that matters). Dropping an `append` future does not
/// cancel the write: its records may or may not end up in the log.
pub struct GroupCommitLog {
    /// `None` once closing.
    requests: Option<mpsc::Sender<Request>>,
    reader: LogReader,
    writer: Option<JoinHandle<()>>,
}

/// A batch queued by [`GroupCommitLog::enqueue`].
#[derive(Debug)]
pub struct Queued {
    answer: oneshot::Receiver<Result<u64, StoreError>>,
}

impl Queued {
    /// Waits until the batch is durable and returns the index of its first record.
    pub async fn durable(self) -> Result<u64, StoreError> {
        self.answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// One caller's batch and where to send its first index.
struct Request {
    records: Vec<Vec<u8>>,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

impl Request {
    fn bytes(&self) -> usize {
        self.records.iter().map(Vec::len).sum()
    }
}

impl GroupCommitLog {
    /// Moves `log` onto a new writer thread named `civitas-log-writer`.
    pub fn new(log: Log) -> Result<Self, StoreError> {
        Self::with_linger(log, Duration::ZERO)
    }

    /// Like [`new`](Self::new), but once an append arrives the writer keeps gathering for up
    /// to `linger` before it writes and syncs. A log whose appends each wait for their own
    /// durability under steady load (an audit trail: one record per request) trades that
    /// much latency for fewer fdatasyncs, each of which costs CPU time as well as disk time.
    pub fn with_linger(log: Log, linger: Duration) -> Result<Self, StoreError> {
        let reader = log.reader();
        let (requests, queue) = mpsc::channel(QUEUE_DEPTH);
        let writer = thread::Builder::new()
            .name("civitas-log-writer".to_owned())
            .spawn(move || run(log, queue, linger))
            .map_err(|e| StoreError::io("starting the writer thread for", reader.path(), e))?;
        Ok(Self {
            requests: Some(requests),
            reader,
            writer: Some(writer),
        })
    }

    /// Appends one record and returns its index once it is durable.
    pub async fn append(&self, record: Vec<u8>) -> Result<u64, StoreError> {
        self.append_batch(vec![record]).await
    }

    /// Appends `records` as one atomic batch and returns the index of the first once all are
    /// durable (the current [`len`](Self::len) if `records` is empty, which writes nothing).
    ///
    /// A record over [`MAX_RECORD_LEN`](crate::MAX_RECORD_LEN) fails the call before anything
    /// is queued. The call waits (asynchronously) while the queue is full.
    pub async fn append_batch(&self, records: Vec<Vec<u8>>) -> Result<u64, StoreError> {
        if records.is_empty() {
            log::check_batch(&records)?;
            return Ok(self.len());
        }
        self.enqueue(records).await?.durable().await
    }

    /// Queues `records` as one atomic batch if the queue has room, without waiting: for a
    /// caller that queues under a lock of its own and must not hold it across an await.
    /// `Ok(None)` means the queue is full and nothing was queued.
    pub fn try_enqueue(&self, records: Vec<Vec<u8>>) -> Result<Option<Queued>, StoreError> {
        log::check_batch(&records)?;
        let requests = self.requests.as_ref().ok_or(StoreError::WriterStopped)?;
        let (reply, answer) = oneshot::channel();
        match requests.try_send(Request { records, reply }) {
            Ok(()) => Ok(Some(Queued { answer })),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(None),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::WriterStopped),
        }
    }

    /// Queues `records` as one atomic batch and returns once it is queued, without waiting
    /// for it to be durable: batches are written in the order they are queued, so a caller
    /// that must keep records in an order of its own (a hash chain) queues under its own
    /// lock and waits for [`Queued::durable`] after releasing it.
    pub async fn enqueue(&self, records: Vec<Vec<u8>>) -> Result<Queued, StoreError> {
        log::check_batch(&records)?;
        let requests = self.requests.as_ref().ok_or(StoreError::WriterStopped)?;
        let (reply, answer) = oneshot::channel();
        requests
            .send(Request { records, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Ok(Queued { answer })
    }

    /// Number of durable records.
    pub fn len(&self) -> u64 {
        self.reader.len()
    }

    /// Whether the log has no durable records.
    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    /// Reads record `index`. See [`LogReader::read`].
    pub fn read(&self, index: u64) -> Result<Vec<u8>, StoreError> {
        self.reader.read(index)
    }

    /// Reads records `start..end`. See [`LogReader::read_range`].
    pub fn read_range(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.reader.read_range(start, end)
    }

    /// Streams records from `start` on. See [`LogReader::iter_from`].
    pub fn iter_from(&self, start: u64) -> Result<Records, StoreError> {
        self.reader.iter_from(start)
    }

    /// A cheap, cloneable read handle, for tasks that only read.
    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }

    /// Number of fdatasyncs the writer has completed since the log was opened.
    pub fn fsync_count(&self) -> u64 {
        self.reader.fsync_count()
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    /// Stops the writer after the appends already queued, and waits until it has closed the
    /// file (and released its lock), so the log can be opened again.
    ///
    /// Dropping a `GroupCommitLog` does the same but blocks the current thread while waiting.
    pub async fn close(mut self) -> Result<(), StoreError> {
        self.requests = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || writer.join()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(StoreError::WriterStopped),
        }
    }
}

impl Drop for GroupCommitLog {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once the queue is empty; joining waits at
        // most for the group in flight.
        self.requests = None;
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(path = %self.reader.path().display(), "log writer thread panicked");
        }
    }
}

impl fmt::Debug for GroupCommitLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommitLog")
            .field("reader", &self.reader)
            .field("running", &self.requests.is_some())
            .finish_non_exhaustive()
    }
}

/// The writer thread: one group per loop, until every sender is gone.
fn run(mut log: Log, mut queue: mpsc::Receiver<Request>, linger: Duration) {
    let mut carried: Option<Request> = None;
    while let Some(first) = carried.take().or_else(|| queue.blocking_recv()) {
        let mut bytes = first.bytes();
        let mut group = vec![first];
        if !linger.is_zero() {
            // One sleep, not a poll loop: the writer wakes once per group.
            thread::sleep(linger);
        }
        while bytes < GROUP_BYTES {
            let Ok(request) = queue.try_recv() else {
                break;
            };
            if bytes + request.bytes() > GROUP_BYTES {
                carried = Some(request);
                break;
            }
            bytes += request.bytes();
            group.push(request);
        }
        let result = {
            let batches: Vec<&[Vec<u8>]> = group.iter().map(|r| r.records.as_slice()).collect();
            log.append_batches(&batches)
        };
        match result {
            Ok(mut first) => {
                for request in group {
                    let count = request.records.len() as u64;
                    // A caller that stopped waiting still got its records written.
                    let _ = request.reply.send(Ok(first));
                    first += count;
                }
            }
            Err(error) => {
                for request in group {
                    let _ = request.reply.send(Err(error.duplicate()));
                }
            }
        }
    }
    tracing::debug!(path = %log.path().display(), "log writer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_fdatasync_fails_the_group_and_poisons_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        log.append(&[b"before"]).unwrap();
        log.fail_next_sync = true;
        let group = GroupCommitLog::new(log).unwrap();

        let failed = group.append(b"lost".to_vec()).await;
        assert!(
            matches!(
                &failed,
                Err(StoreError::Io {
                    op: "fdatasyncing",
                    ..
                })
            ),
            "{failed:?}"
        );
        // The next fdatasync would succeed, but nothing may be acknowledged after a failure.
        let after = group.append(b"after".to_vec()).await;
        assert!(matches!(after, Err(StoreError::Poisoned)), "{after:?}");
        let batch = group.append_batch(vec![b"a".to_vec(), b"b".to_vec()]).await;
        assert!(matches!(batch, Err(StoreError::Poisoned)), "{batch:?}");
        // Acknowledged records stay readable.
        assert_eq!(group.len(), 1);
        assert_eq!(group.read(0).unwrap(), b"before");
        assert_eq!(group.fsync_count(), 1);
        group.close().await.unwrap();

        // Reopening recovers, and the failed write was cut off.
        let mut log = Log::open(dir.path()).unwrap();
        assert_eq!(
            log.read_range(0, log.len()).unwrap(),
            vec![b"before".to_vec()]
        );
        assert_eq!(log.append(&[b"again"]).unwrap(), 1);
    }

    #[tokio::test]
    async fn a_lingering_writer_puts_appends_that_arrive_while_it_waits_in_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let group =
            GroupCommitLog::with_linger(Log::open(dir.path()).unwrap(), Duration::from_millis(300))
                .unwrap();
        let first = group.enqueue(vec![b"first".to_vec()]).await.unwrap();
        // Well after a writer that does not linger would have written and synced `first`.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let second = group.enqueue(vec![b"second".to_vec()]).await.unwrap();
        assert_eq!(first.durable().await.unwrap(), 0);
        assert_eq!(second.durable().await.unwrap(), 1);
        assert_eq!(group.fsync_count(), 1);
        group.close().await.unwrap();
    }

    #[test]
    fn failed_fdatasync_poisons_a_plain_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path()).unwrap();
        log.fail_next_sync = true;
        assert!(log.append(&[b"lost"]).is_err());
        assert!(matches!(log.append(&[b"after"]), Err(StoreError::Poisoned)));
        assert_eq!(log.len(), 0);
        drop(log);
        assert_eq!(Log::open(dir.path()).unwrap().len(), 0);
    }
}
