//! The log conformance suite: every test is a generic function over [`Harness`], run once for
//! [`Log`] and once for [`GroupCommitLog`].

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use civitas_store::{GroupCommitLog, Log, LogReader, MAX_RECORD_LEN, StoreError};
use tempfile::TempDir;

/// What the suite needs from a log implementation.
pub(crate) trait Harness: Sized + std::fmt::Debug {
    fn open(dir: &Path) -> Result<Self, StoreError>;
    fn append(&mut self, records: &[&[u8]]) -> Result<u64, StoreError>;
    fn reader(&self) -> LogReader;
    fn close(self);
}

impl Harness for Log {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open(dir)
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<u64, StoreError> {
        Self::append(self, records)
    }

    fn reader(&self) -> LogReader {
        Self::reader(self)
    }

    fn close(self) {}
}

/// A [`GroupCommitLog`] driven from synchronous test code.
#[derive(Debug)]
pub(crate) struct Grouped {
    runtime: tokio::runtime::Runtime,
    log: GroupCommitLog,
}

impl Harness for Grouped {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let log = GroupCommitLog::new(Log::open(dir)?)?;
        Ok(Self { runtime, log })
    }

    fn append(&mut self, records: &[&[u8]]) -> Result<u64, StoreError> {
        let records = records.iter().map(|r| r.to_vec()).collect();
        self.runtime.block_on(self.log.append_batch(records))
    }

    fn reader(&self) -> LogReader {
        self.log.reader()
    }

    fn close(self) {
        self.runtime.block_on(self.log.close()).unwrap();
    }
}

macro_rules! suite {
    ($name:ident, $harness:ty) => {
        mod $name {
            #[test]
            fn append_read_len_reopen() {
                super::append_read_len_reopen::<$harness>();
            }
            #[test]
            fn batch_indices() {
                super::batch_indices::<$harness>();
            }
            #[test]
            fn iter_from_streams_in_chunks() {
                super::iter_from_streams_in_chunks::<$harness>();
            }
            #[test]
            fn record_size_limit() {
                super::record_size_limit::<$harness>();
            }
            #[test]
            fn torn_tail_at_every_offset_of_the_last_frame() {
                super::torn_tail_at_every_offset_of_the_last_frame::<$harness>();
            }
            #[test]
            fn torn_batch_is_dropped_whole() {
                super::torn_batch_is_dropped_whole::<$harness>();
            }
            #[test]
            fn flipped_byte_in_last_record_is_a_torn_tail() {
                super::flipped_byte_in_last_record_is_a_torn_tail::<$harness>();
            }
            #[test]
            fn flipped_byte_in_middle_record_is_an_error() {
                super::flipped_byte_in_middle_record_is_an_error::<$harness>();
            }
            #[test]
            fn out_of_order_writeback_of_the_last_write_is_a_torn_tail() {
                super::out_of_order_writeback_of_the_last_write_is_a_torn_tail::<$harness>();
            }
            #[test]
            fn zero_filled_tail_is_a_torn_tail() {
                super::zero_filled_tail_is_a_torn_tail::<$harness>();
            }
            #[test]
            fn second_writer_is_locked_out() {
                super::second_writer_is_locked_out::<$harness>();
            }
            #[test]
            fn foreign_file_is_not_a_log() {
                super::foreign_file_is_not_a_log::<$harness>();
            }
        }
    };
}

suite!(plain, civitas_store::Log);
suite!(grouped, super::Grouped);

/// A record whose content is derived from `i`, `len` bytes long.
fn record(i: u64, len: usize) -> Vec<u8> {
    let seed = format!("record {i}:");
    seed.bytes().cycle().take(len.max(seed.len())).collect()
}

fn all(reader: &LogReader) -> Vec<Vec<u8>> {
    reader.read_range(0, reader.len()).unwrap()
}

/// A log with `records` appended one per batch, and the log file size after each.
fn log_with<H: Harness>(dir: &TempDir, records: &[Vec<u8>]) -> (H, Vec<u64>) {
    let mut log = H::open(dir.path()).unwrap();
    let mut sizes = vec![file_len(&log.reader())];
    for (i, r) in records.iter().enumerate() {
        assert_eq!(log.append(&[r]).unwrap(), i as u64);
        sizes.push(file_len(&log.reader()));
    }
    (log, sizes)
}

fn file_len(reader: &LogReader) -> u64 {
    std::fs::metadata(reader.path()).unwrap().len()
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn flip(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, offset).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], offset).unwrap();
}

fn log_path<H: Harness>(log: &H) -> PathBuf {
    log.reader().path().to_path_buf()
}

fn append_read_len_reopen<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = H::open(dir.path()).unwrap();
    let reader = log.reader();
    assert!(reader.is_empty());
    assert_eq!(reader.len(), 0);
    assert_eq!(log.append(&[b"zero"]).unwrap(), 0);
    assert_eq!(log.append(&[b"one"]).unwrap(), 1);
    assert_eq!(log.append(&[b"", b"three"]).unwrap(), 2);
    let syncs = reader.fsync_count();
    assert_eq!(syncs, 3);
    // An empty batch writes nothing and names the next index.
    assert_eq!(log.append(&[]).unwrap(), 4);
    assert_eq!(reader.fsync_count(), syncs);

    assert_eq!(reader.len(), 4);
    assert_eq!(reader.read(0).unwrap(), b"zero");
    assert_eq!(reader.read(2).unwrap(), b"");
    assert_eq!(
        reader.read_range(1, 4).unwrap(),
        [&b"one"[..], b"", b"three"]
    );
    assert_eq!(reader.read_range(4, 4).unwrap(), Vec::<Vec<u8>>::new());
    assert!(matches!(
        reader.read(4),
        Err(StoreError::OutOfRange {
            start: 4,
            end: 5,
            len: 4
        })
    ));
    assert!(matches!(
        reader.read_range(3, 2),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        reader.read_range(0, 5),
        Err(StoreError::OutOfRange { .. })
    ));
    let expected = all(&reader);
    log.close();

    let mut log = H::open(dir.path()).unwrap();
    assert_eq!(all(&log.reader()), expected);
    assert_eq!(log.append(&[b"four"]).unwrap(), 4);
    log.close();
    let log = H::open(dir.path()).unwrap();
    assert_eq!(log.reader().read(4).unwrap(), b"four");
    // A reader made before reopening still reads what it saw.
    assert_eq!(reader.read(3).unwrap(), b"three");
}

fn batch_indices<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = H::open(dir.path()).unwrap();
    let firsts: Vec<u64> = [1, 3, 0, 2]
        .into_iter()
        .map(|n| {
            let records: Vec<Vec<u8>> = (0..n).map(|i| record(i, 10)).collect();
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            log.append(&refs).unwrap()
        })
        .collect();
    assert_eq!(firsts, [0, 1, 4, 4]);
    assert_eq!(log.reader().len(), 6);
    assert_eq!(log.reader().read(5).unwrap(), record(1, 10));
}

fn iter_from_streams_in_chunks<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    // Some records are large, so that streaming crosses several 1 MiB reads.
    let records: Vec<Vec<u8>> = (0..100)
        .map(|i| record(i, if i % 10 == 3 { 300_000 } else { i as usize * 7 }))
        .collect();
    let (log, _) = log_with::<H>(&dir, &records);
    let reader = log.reader();
    let streamed: Vec<(u64, Vec<u8>)> = reader.iter_from(0).unwrap().map(Result::unwrap).collect();
    let expected: Vec<(u64, Vec<u8>)> = (0..).zip(records.iter().cloned()).collect();
    assert_eq!(streamed, expected);
    let tail: Vec<(u64, Vec<u8>)> = reader.iter_from(37).unwrap().map(Result::unwrap).collect();
    assert_eq!(tail, expected[37..]);
    assert_eq!(reader.iter_from(100).unwrap().count(), 0);
    assert!(matches!(
        reader.iter_from(101),
        Err(StoreError::OutOfRange { .. })
    ));
}

fn record_size_limit<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = H::open(dir.path()).unwrap();
    let largest = vec![7; MAX_RECORD_LEN];
    assert_eq!(log.append(&[&largest]).unwrap(), 0);
    let too_large = vec![7; MAX_RECORD_LEN + 1];
    let error = log.append(&[b"fits", &too_large]).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::RecordTooLarge { position: 1, len, max: MAX_RECORD_LEN }
                if len == MAX_RECORD_LEN + 1
        ),
        "{error:?}"
    );
    // Nothing of the batch was written.
    assert_eq!(log.reader().len(), 1);
    assert_eq!(log.reader().fsync_count(), 1);
    assert_eq!(log.append(&[b"next"]).unwrap(), 1);
    log.close();
    let log = H::open(dir.path()).unwrap();
    assert_eq!(log.reader().read(0).unwrap(), largest);
}

fn torn_tail_at_every_offset_of_the_last_frame<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..6).map(|i| record(i, 40 + i as usize)).collect();
    let (log, sizes) = log_with::<H>(&dir, &records);
    let path = log_path(&log);
    log.close();
    let (before, after) = (sizes[5], sizes[6]);
    for cut in before..after {
        set_len(&path, cut);
        let mut log = H::open(dir.path()).unwrap();
        assert_eq!(all(&log.reader()), records[..5], "cut at {cut}");
        assert_eq!(file_len(&log.reader()), before, "cut at {cut}");
        // The log goes on where the whole records end.
        assert_eq!(log.append(&[&records[5]]).unwrap(), 5);
        log.close();
    }
    let log = H::open(dir.path()).unwrap();
    assert_eq!(all(&log.reader()), records);
}

fn torn_batch_is_dropped_whole<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, sizes) = log_with::<H>(&dir, &[record(0, 30), record(1, 30)]);
    let block = [record(2, 50), record(3, 50), record(4, 10)];
    assert_eq!(log.append(&[&block[0], &block[1], &block[2]]).unwrap(), 2);
    let (before, after) = (sizes[2], file_len(&log.reader()));
    let path = log_path(&log);
    log.close();
    for cut in before..after {
        set_len(&path, cut);
        let mut log = H::open(dir.path()).unwrap();
        assert_eq!(
            log.reader().len(),
            2,
            "cut at {cut}: a block must not lose only its seal"
        );
        assert_eq!(log.append(&[&block[0], &block[1], &block[2]]).unwrap(), 2);
        log.close();
    }
}

fn flipped_byte_in_last_record_is_a_torn_tail<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..4).map(|i| record(i, 25)).collect();
    let (log, sizes) = log_with::<H>(&dir, &records);
    let path = log_path(&log);
    log.close();
    for offset in sizes[3]..sizes[4] {
        flip(&path, offset);
        let mut log = H::open(dir.path()).unwrap();
        assert_eq!(all(&log.reader()), records[..3], "flip at {offset}");
        assert_eq!(log.append(&[&records[3]]).unwrap(), 3);
        log.close();
    }
}

fn flipped_byte_in_middle_record_is_an_error<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..4).map(|i| record(i, 25)).collect();
    let (log, sizes) = log_with::<H>(&dir, &records);
    let path = log_path(&log);
    log.close();
    // Every byte of record 1's frame, header included: a valid frame of a later write follows.
    for offset in sizes[1]..sizes[2] {
        flip(&path, offset);
        let error = H::open(dir.path()).unwrap_err();
        assert!(
            matches!(&error, StoreError::Corrupt { index: 1, offset: o, .. } if *o == sizes[1]),
            "flip at {offset}: {error:?}"
        );
        flip(&path, offset);
    }
    // Reads after opening re-verify too.
    let log = H::open(dir.path()).unwrap();
    flip(&path, sizes[2] - 1);
    let error = log.reader().read(1).unwrap_err();
    assert!(
        matches!(error, StoreError::Corrupt { index: 1, .. }),
        "{error:?}"
    );
    let error = log.reader().iter_from(0).unwrap().find_map(Result::err);
    assert!(
        matches!(error, Some(StoreError::Corrupt { index: 1, .. })),
        "{error:?}"
    );
}

fn out_of_order_writeback_of_the_last_write_is_a_torn_tail<H: Harness>() {
    // A crash can persist the later pages of the last write but not an earlier one: the frames
    // after the damage belong to the same write, so this is a torn tail, not corruption.
    let dir = tempfile::tempdir().unwrap();
    let (mut log, sizes) = log_with::<H>(&dir, &[record(0, 30)]);
    let block = [record(1, 5000), record(2, 5000), record(3, 5000)];
    assert_eq!(log.append(&[&block[0], &block[1], &block[2]]).unwrap(), 1);
    let path = log_path(&log);
    log.close();
    // Zero the first 4 KiB page of the write; later frames stay valid.
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0; 4096], sizes[1]).unwrap();
    drop(file);
    let log = H::open(dir.path()).unwrap();
    assert_eq!(all(&log.reader()), [record(0, 30)]);
    assert_eq!(file_len(&log.reader()), sizes[1]);
}

fn zero_filled_tail_is_a_torn_tail<H: Harness>() {
    // The file grew, but its data never reached the disk.
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..3).map(|i| record(i, 100)).collect();
    let (log, sizes) = log_with::<H>(&dir, &records);
    let path = log_path(&log);
    log.close();
    set_len(&path, sizes[3] + 8192);
    let log = H::open(dir.path()).unwrap();
    assert_eq!(all(&log.reader()), records);
    assert_eq!(file_len(&log.reader()), sizes[3]);
}

fn second_writer_is_locked_out<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let log = H::open(dir.path()).unwrap();
    assert!(matches!(
        Log::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    // A reader does not keep the lock once the writer is gone.
    let reader = log.reader();
    log.close();
    let log = H::open(dir.path()).unwrap();
    assert_eq!(reader.len(), log.reader().len());
}

fn foreign_file_is_not_a_log<H: Harness>() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let log = H::open(dir.path()).unwrap();
        let path = log_path(&log);
        log.close();
        path
    };
    std::fs::write(&path, b"{\"not\": \"a log\"}").unwrap();
    assert!(matches!(
        H::open(dir.path()),
        Err(StoreError::NotALog { .. })
    ));
    // A header cut short by a crash during creation is rewritten.
    std::fs::write(&path, b"civ").unwrap();
    let mut log = H::open(dir.path()).unwrap();
    assert_eq!(log.append(&[b"first"]).unwrap(), 0);
}
