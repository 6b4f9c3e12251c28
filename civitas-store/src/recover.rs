//! Opening a log file: verify every frame, find where the whole batches end, and tell a torn
//! tail (cut off by a crash; drop it) from corruption (refuse to open).
//!
//! Only the last write can be torn: every write is followed by an fdatasync before the next
//! one starts. A torn write may have persisted its pages in any order, so frames of that write
//! can be valid after a bad one. What proves corruption is a valid frame of a *later* write
//! after a bad frame: the later write started only after the bad frame's write was synced.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::StoreError;
use crate::frame::{self, FILE_HEADER, FRAME_HEADER_LEN, Header, MAX_RECORD_LEN};

/// How much of the file one read pulls in while scanning.
const CHUNK: usize = 1 << 20;

/// What a scan found.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Byte offset of every record of every whole batch.
    pub(crate) offsets: Vec<u64>,
    /// End of the last whole batch; the file is truncated here if it is longer.
    pub(crate) end: u64,
    /// Why the bytes after `end` are dropped, if there are any.
    pub(crate) torn: Option<String>,
}

/// Scans the frames of a log file of `file_len` bytes whose file header is already checked.
pub(crate) fn scan(file: &File, path: &Path, file_len: u64) -> Result<Recovered, StoreError> {
    let mut window = Window {
        file,
        path,
        file_len,
        start: 0,
        buf: Vec::new(),
    };
    let mut offsets = Vec::new();
    // Frames of a batch whose last record has not been seen yet.
    let mut pending: Vec<u64> = Vec::new();
    let mut end = FILE_HEADER.len() as u64;
    let mut pos = end;
    let mut prev_write_pos: Option<u32> = None;
    let mut torn = None;
    while pos < file_len {
        let index = (offsets.len() + pending.len()) as u64;
        match frame_at(&mut window, pos)? {
            Ok(header) => {
                let corrupt = |detail: String| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    index,
                    offset: pos,
                    detail,
                };
                if header.index != index {
                    return Err(corrupt(format!(
                        "expected record index {index}, found {}",
                        header.index
                    )));
                }
                // A write starts with position 0, only at a batch boundary; inside a write the
                // positions count up by one.
                let next_in_write = prev_write_pos.and_then(|prev| prev.checked_add(1));
                let in_order = match header.write_pos {
                    0 => pending.is_empty(),
                    found => Some(found) == next_in_write,
                };
                if !in_order {
                    return Err(corrupt(match (header.write_pos, next_in_write) {
                        (0, _) => "expected the open batch to continue, found the first frame \
                                   of a new write"
                            .to_owned(),
                        (found, expected) => format!(
                            "expected write position {}, found {found}",
                            expected.unwrap_or(0)
                        ),
                    }));
                }
                pending.push(pos);
                pos += header.frame_len();
                prev_write_pos = Some(header.write_pos);
                if !header.continues {
                    offsets.append(&mut pending);
                    end = pos;
                }
            }
            Err(detail) => {
                if let Some(later) = later_write_after(&mut window, pos, index)? {
                    return Err(StoreError::Corrupt {
                        path: path.to_path_buf(),
                        index,
                        offset: pos,
                        detail: format!(
                            "{detail}; expected a torn tail, found a synced frame of a later \
                             write at offset {later}"
                        ),
                    });
                }
                torn = Some(detail);
                break;
            }
        }
    }
    if torn.is_none() && !pending.is_empty() {
        torn = Some(format!(
            "expected the last batch to end, found end of file after {} of its records",
            pending.len()
        ));
    }
    Ok(Recovered { offsets, end, torn })
}

/// Reads the frame at `pos`: `Ok(Err(why))` if it is not a whole, valid frame.
fn frame_at(window: &mut Window<'_>, pos: u64) -> Result<Result<Header, String>, StoreError> {
    let left = window.file_len - pos;
    if left < FRAME_HEADER_LEN as u64 {
        return Ok(Err(format!(
            "expected a {FRAME_HEADER_LEN}-byte frame header, found {left} bytes before end of file"
        )));
    }
    let bytes = window.header(pos)?;
    let Some(header) = Header::parse(&bytes) else {
        return Ok(Err(format!(
            "expected a record length of at most {MAX_RECORD_LEN}, found a larger one"
        )));
    };
    if header.frame_len() > left {
        return Ok(Err(format!(
            "expected a {}-byte frame, found {left} bytes before end of file",
            header.frame_len()
        )));
    }
    let frame = window.get(pos, FRAME_HEADER_LEN + header.len)?;
    Ok(header
        .check(&bytes, &frame[FRAME_HEADER_LEN..])
        .map(|()| header)
        .map_err(|(expected, found)| {
            format!("expected crc32 {expected:#010x}, found {found:#010x}")
        }))
}

/// Looks for a valid frame after the bad one at `bad_pos` (which should hold record
/// `bad_index`) that belongs to a write later than the bad frame's. Frames of the bad frame's
/// own write are skipped: a torn write may persist them.
fn later_write_after(
    window: &mut Window<'_>,
    bad_pos: u64,
    bad_index: u64,
) -> Result<Option<u64>, StoreError> {
    let file_len = window.file_len;
    let mut pos = bad_pos + 1;
    while pos + FRAME_HEADER_LEN as u64 <= file_len {
        let bytes = window.header(pos)?;
        if let Some(header) = Header::parse(&bytes) {
            // Record bad_index + n starts at least n headers after the bad frame.
            let max_index = bad_index + (pos - bad_pos) / FRAME_HEADER_LEN as u64;
            let plausible = header.index > bad_index
                && header.index <= max_index
                && header.frame_len() <= file_len - pos;
            if let (true, Some(write_id)) = (plausible, header.write_id()) {
                let frame = window.get(pos, FRAME_HEADER_LEN + header.len)?;
                if header.check(&bytes, &frame[FRAME_HEADER_LEN..]).is_ok() {
                    if write_id > bad_index {
                        return Ok(Some(pos));
                    }
                    pos += header.frame_len();
                    continue;
                }
            }
        }
        pos += 1;
    }
    Ok(None)
}

/// A read-ahead buffer over part of the file, for scanning it once from front to back.
struct Window<'a> {
    file: &'a File,
    path: &'a Path,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl Window<'_> {
    /// The `len` bytes at `offset`; the caller keeps `offset + len` within the file.
    fn get(&mut self, offset: u64, len: usize) -> Result<&[u8], StoreError> {
        let buf_end = self.start + self.buf.len() as u64;
        if offset < self.start || offset + len as u64 > buf_end {
            let read_end = self.file_len.min(offset + len.max(CHUNK) as u64);
            self.buf.resize((read_end - offset) as usize, 0);
            self.file
                .read_exact_at(&mut self.buf, offset)
                .map_err(|e| StoreError::io("reading", self.path, e))?;
            self.start = offset;
        }
        let from = (offset - self.start) as usize;
        Ok(&self.buf[from..from + len])
    }

    /// The frame header at `offset`; the caller keeps it within the file.
    fn header(&mut self, offset: u64) -> Result<[u8; FRAME_HEADER_LEN], StoreError> {
        let path = self.path;
        let bytes = self.get(offset, FRAME_HEADER_LEN)?;
        // `get` returned exactly FRAME_HEADER_LEN bytes.
        frame::header_bytes(bytes)
            .copied()
            .ok_or_else(|| StoreError::Corrupt {
                path: path.to_path_buf(),
                index: 0,
                offset,
                detail: "expected a whole frame header in the read buffer".to_owned(),
            })
    }
}
