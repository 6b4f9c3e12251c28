//! The on-disk format of the log file.
//!
//! ```text
//! file   = file-header frame*
//! file-header = "civlog" version:u16le            (8 bytes)
//! frame  = index:u64le write-pos:u32le len-flags:u32le crc:u32le payload
//!          (20-byte header; crc32 covers the first 16 header bytes and the payload)
//! len-flags = payload length (bits 0..=30) | CONTINUES (bit 31)
//! ```
//!
//! - `index` is the record's position in the log. A frame whose checksum holds but whose index
//!   is not the expected one was written somewhere it does not belong: that is corruption.
//! - `write-pos` is the frame's position inside the `write(2)` that put it on disk (0 for the
//!   first frame of each write). `index - write-pos` names the write. Only the last write can
//!   be torn by a crash, and a torn write may have persisted its pages in any order, so a
//!   valid frame after a bad one proves mid-log corruption only if it belongs to a *later*
//!   write (see `recover.rs`).
//! - `CONTINUES` is set on every record of an `append` batch but the last. Recovery keeps
//!   a batch whole or drops it whole, which makes a batch (a block: entries + seal) atomic.
//! - Because `index` and the length are under the checksum, an all-zero region (a file that
//!   grew before its data reached the disk) never parses as a frame.

/// The first bytes of every log file: a magic string and the format version.
pub(crate) const FILE_HEADER: [u8; 8] = *b"civlog\x00\x01";

/// Length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 20;

/// Set in `len-flags` when the next frame belongs to the same batch.
const CONTINUES: u32 = 1 << 31;

/// The largest payload a record may have: 16 MiB.
pub const MAX_RECORD_LEN: usize = 16 << 20;

/// A decoded frame header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    /// The record's index in the log.
    pub(crate) index: u64,
    /// The frame's position inside the write that put it on disk.
    pub(crate) write_pos: u32,
    /// Payload length; at most [`MAX_RECORD_LEN`] once [`Header::parse`] accepted it.
    pub(crate) len: usize,
    /// Whether the next record belongs to the same batch.
    pub(crate) continues: bool,
    crc: u32,
}

impl Header {
    /// Decodes a header, or returns `None` if its length field cannot be one we wrote.
    pub(crate) fn parse(bytes: &[u8; FRAME_HEADER_LEN]) -> Option<Self> {
        let [
            i0,
            i1,
            i2,
            i3,
            i4,
            i5,
            i6,
            i7,
            p0,
            p1,
            p2,
            p3,
            l0,
            l1,
            l2,
            l3,
            c0,
            c1,
            c2,
            c3,
        ] = *bytes;
        let len_flags = u32::from_le_bytes([l0, l1, l2, l3]);
        let len = usize::try_from(len_flags & !CONTINUES).ok()?;
        if len > MAX_RECORD_LEN {
            return None;
        }
        Some(Self {
            index: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            write_pos: u32::from_le_bytes([p0, p1, p2, p3]),
            len,
            continues: len_flags & CONTINUES != 0,
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    /// The index of the first record of the write this frame belongs to.
    pub(crate) fn write_id(&self) -> Option<u64> {
        self.index.checked_sub(u64::from(self.write_pos))
    }

    /// Length of the whole frame.
    pub(crate) fn frame_len(&self) -> u64 {
        (FRAME_HEADER_LEN + self.len) as u64
    }

    /// Returns `Err((expected, found))` if the checksum does not cover `header` and `payload`.
    pub(crate) fn check(&self, header: &[u8], payload: &[u8]) -> Result<(), (u32, u32)> {
        let found = checksum(&header[..16], payload);
        if found == self.crc {
            Ok(())
        } else {
            Err((self.crc, found))
        }
    }
}

fn checksum(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one frame to `buf`. The caller has checked `payload.len() <= MAX_RECORD_LEN`.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    index: u64,
    write_pos: u32,
    continues: bool,
    payload: &[u8],
) {
    debug_assert!(payload.len() <= MAX_RECORD_LEN);
    // MAX_RECORD_LEN < 2^31, so the length never reaches the flag bit.
    let mut len_flags = payload.len() as u32;
    if continues {
        len_flags |= CONTINUES;
    }
    let start = buf.len();
    buf.extend_from_slice(&index.to_le_bytes());
    buf.extend_from_slice(&write_pos.to_le_bytes());
    buf.extend_from_slice(&len_flags.to_le_bytes());
    let crc = checksum(&buf[start..], payload);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Splits a header off the front of `bytes`, if there are enough of them.
pub(crate) fn header_bytes(bytes: &[u8]) -> Option<&[u8; FRAME_HEADER_LEN]> {
    bytes.get(..FRAME_HEADER_LEN)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_not_a_frame() {
        let zeros = [0u8; FRAME_HEADER_LEN];
        let header = Header::parse(&zeros).map(|h| h.check(&zeros, &[]));
        assert!(matches!(header, Some(Err(_))));
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, 2, true, b"payload");
        let header_bytes = header_bytes(&buf).copied();
        let Some(bytes) = header_bytes else {
            panic!("frame shorter than a header")
        };
        let Some(header) = Header::parse(&bytes) else {
            panic!("header rejected")
        };
        assert_eq!((header.index, header.write_pos, header.len), (7, 2, 7));
        assert!(header.continues);
        assert_eq!(header.write_id(), Some(5));
        assert_eq!(header.check(&bytes, &buf[FRAME_HEADER_LEN..]), Ok(()));
        assert!(header.check(&bytes, b"payloae").is_err());
    }
}
