//! Page framing, without I/O.
//!
//! A segment file is a sequence of pages of `page_bytes`. Records are cut into fragments that
//! never cross a page boundary; each fragment has an 8-byte header:
//!
//! ```text
//! 0..4  crc32c (LE) of bytes 4..8+len: the length, kind, reserved byte and payload
//! 4..6  len (LE), 1..=page_bytes-8
//! 6     kind: 1 full, 2 first, 3 middle, 4 last
//! 7     reserved, 0
//! ```
//!
//! When fewer than 9 bytes remain in a page the writer pads them with zeros, so a fragment header
//! is never split. An all-zero header where a fragment could start means "no more data": a
//! zero-filled area therefore never decodes as a record, and a torn write fails the CRC.

/// Bytes of a fragment header.
pub(crate) const FRAGMENT_HEADER: usize = 8;
/// Bytes reserved at the start of page 0 for the segment header (see `segment.rs`).
pub(crate) const SEGMENT_HEADER: usize = 72;

const FULL: u8 = 1;
const FIRST: u8 = 2;
const MIDDLE: u8 = 3;
const LAST: u8 = 4;

/// Appends records as framed fragments to an in-memory tail of a segment file.
///
/// `buf` holds the file's bytes from `base` (page-aligned) on: the bytes not yet handed to the
/// file plus the start of the current page, so the writer needs about one page of memory.
#[derive(Debug)]
pub(crate) struct FrameWriter {
    page: usize,
    base: u64,
    buf: Vec<u8>,
    flushed: u64,
}

impl FrameWriter {
    /// A writer for a new file whose first bytes are `header`.
    pub(crate) fn new(page_bytes: u32, header: &[u8]) -> Self {
        let page = page_bytes as usize;
        let mut buf = Vec::with_capacity(page);
        buf.extend_from_slice(header);
        FrameWriter {
            page,
            base: 0,
            buf,
            flushed: 0,
        }
    }

    /// File length once everything pushed is written.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// File offset up to which bytes were handed to the file.
    pub(crate) fn flushed(&self) -> u64 {
        self.flushed
    }

    /// File length after pushing a record of `len` bytes now.
    pub(crate) fn end_after(&self, len: usize) -> u64 {
        let page = self.page as u64;
        let mut end = self.end();
        let mut left = len as u64;
        loop {
            let remaining = page - end % page;
            if remaining <= FRAGMENT_HEADER as u64 {
                end += remaining;
                continue;
            }
            let chunk = left.min(remaining - FRAGMENT_HEADER as u64);
            end += FRAGMENT_HEADER as u64 + chunk;
            left -= chunk;
            if left == 0 {
                return end;
            }
        }
    }

    /// Frames `payload` (non-empty) as one record. Returns its start offset (where its first
    /// fragment header is).
    pub(crate) fn push(&mut self, payload: &[u8]) -> u64 {
        debug_assert!(!payload.is_empty());
        let mut start = None;
        let mut rest = payload;
        let mut first = true;
        loop {
            let remaining = self.page - (self.end() % self.page as u64) as usize;
            if remaining <= FRAGMENT_HEADER {
                self.buf.resize(self.buf.len() + remaining, 0);
                continue;
            }
            start.get_or_insert(self.end());
            let chunk = rest.len().min(remaining - FRAGMENT_HEADER);
            let last = chunk == rest.len();
            let kind = match (first, last) {
                (true, true) => FULL,
                (true, false) => FIRST,
                (false, false) => MIDDLE,
                (false, true) => LAST,
            };
            encode_fragment(&mut self.buf, kind, &rest[..chunk]);
            rest = &rest[chunk..];
            first = false;
            if last {
                return start.unwrap_or(0);
            }
        }
    }

    /// Bytes not yet handed to the file and the offset they go to.
    pub(crate) fn unflushed(&self) -> (u64, &[u8]) {
        let from = (self.flushed - self.base) as usize;
        (self.flushed, &self.buf[from..])
    }

    /// Records that everything pushed so far reached the file; keeps only the current partial
    /// page in memory.
    pub(crate) fn mark_flushed(&mut self) {
        self.flushed = self.end();
        let page = self.page as u64;
        let new_base = self.end() / page * page;
        let drop = (new_base - self.base) as usize;
        self.buf.drain(..drop);
        self.base = new_base;
    }
}

fn encode_fragment(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let at = out.len();
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[at + 4..]);
    out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

/// One step of decoding a page.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    /// A valid fragment; the next one starts at `next` (offset in the page).
    Data {
        kind: Kind,
        payload: &'a [u8],
        next: usize,
    },
    /// Zero padding to the end of the page.
    PagePad,
    /// No more data: an all-zero header, or the end of the loaded bytes.
    End,
    /// The loaded bytes stop inside a fragment.
    Torn,
    /// Bytes that no writer produces.
    Corrupt(&'static str),
}

/// Position of a fragment in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Full,
    First,
    Middle,
    Last,
}

/// Decodes the fragment at `off` of a page whose first `page.len()` bytes are loaded.
pub(crate) fn decode_fragment(page: &[u8], page_bytes: usize, off: usize) -> Fragment<'_> {
    let remaining = page_bytes.saturating_sub(off);
    let loaded = page.get(off..).unwrap_or(&[]);
    if remaining <= FRAGMENT_HEADER {
        return if loaded.iter().all(|&b| b == 0) {
            Fragment::PagePad
        } else {
            Fragment::Corrupt("non-zero page padding")
        };
    }
    if loaded.len() < FRAGMENT_HEADER {
        return if loaded.iter().all(|&b| b == 0) {
            Fragment::End
        } else {
            Fragment::Torn
        };
    }
    let hdr = &loaded[..FRAGMENT_HEADER];
    if hdr.iter().all(|&b| b == 0) {
        return Fragment::End;
    }
    let len = usize::from(u16::from_le_bytes([hdr[4], hdr[5]]));
    let kind = match hdr[6] {
        FULL => Kind::Full,
        FIRST => Kind::First,
        MIDDLE => Kind::Middle,
        LAST => Kind::Last,
        _ => return Fragment::Corrupt("unknown fragment kind"),
    };
    if hdr[7] != 0 {
        return Fragment::Corrupt("reserved fragment byte set");
    }
    if len == 0 || len > remaining - FRAGMENT_HEADER {
        return Fragment::Corrupt("fragment length out of range");
    }
    if loaded.len() < FRAGMENT_HEADER + len {
        return Fragment::Torn;
    }
    let stored = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    if crc32c::crc32c(&loaded[4..FRAGMENT_HEADER + len]) != stored {
        return Fragment::Corrupt("fragment checksum mismatch");
    }
    Fragment::Data {
        kind,
        payload: &loaded[FRAGMENT_HEADER..FRAGMENT_HEADER + len],
        next: off + FRAGMENT_HEADER + len,
    }
}

/// Joins fragments into records and checks that they come in a valid order.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    buf: Vec<u8>,
    start: Option<u64>,
}

/// Result of feeding one fragment to the [`Assembler`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Assembled {
    /// More fragments are needed.
    Partial,
    /// A record is complete; it started at the given file offset. Read it with
    /// [`Assembler::record`].
    Record(u64),
    /// The fragment does not fit the sequence.
    OutOfOrder,
}

impl Assembler {
    pub(crate) fn feed(&mut self, kind: Kind, payload: &[u8], at: u64) -> Assembled {
        match (kind, self.start) {
            (Kind::Full, None) => {
                self.buf.clear();
                self.buf.extend_from_slice(payload);
                Assembled::Record(at)
            }
            (Kind::First, None) => {
                self.buf.clear();
                self.buf.extend_from_slice(payload);
                self.start = Some(at);
                Assembled::Partial
            }
            (Kind::Middle, Some(_)) => {
                self.buf.extend_from_slice(payload);
                Assembled::Partial
            }
            (Kind::Last, Some(s)) => {
                self.buf.extend_from_slice(payload);
                self.start = None;
                Assembled::Record(s)
            }
            _ => {
                self.reset();
                Assembled::OutOfOrder
            }
        }
    }

    /// The last completed record.
    pub(crate) fn record(&self) -> &[u8] {
        &self.buf
    }

    /// True while a record is incomplete.
    pub(crate) fn in_record(&self) -> bool {
        self.start.is_some()
    }

    pub(crate) fn reset(&mut self) {
        self.start = None;
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn decode_all(file: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut asm = Assembler::default();
        let mut page_start = 0;
        let mut off = SEGMENT_HEADER;
        while page_start < file.len() {
            let page = &file[page_start..file.len().min(page_start + PAGE)];
            match decode_fragment(page, PAGE, off) {
                Fragment::Data {
                    kind,
                    payload,
                    next,
                } => {
                    if let Assembled::Record(_) = asm.feed(kind, payload, (page_start + off) as u64)
                    {
                        out.push(asm.record().to_vec());
                    }
                    off = next;
                }
                Fragment::PagePad => {
                    page_start += PAGE;
                    off = 0;
                }
                Fragment::End => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn records_round_trip_across_pages() {
        let mut w = FrameWriter::new(PAGE as u32, &[0xAA; SEGMENT_HEADER]);
        let records: Vec<Vec<u8>> = (0..50u32)
            .map(|i| vec![i as u8; 1 + (i as usize * 397) % 9000])
            .collect();
        for r in &records {
            let predicted = w.end_after(r.len());
            w.push(r);
            assert_eq!(w.end(), predicted);
        }
        let (at, bytes) = w.unflushed();
        assert_eq!(at, 0);
        assert_eq!(decode_all(bytes), records);
    }

    #[test]
    fn pads_page_tail_shorter_than_a_header() {
        let mut w = FrameWriter::new(PAGE as u32, &[0; SEGMENT_HEADER]);
        // Leave exactly 8 bytes in page 0.
        let fill = PAGE - SEGMENT_HEADER - FRAGMENT_HEADER - 8;
        w.push(&vec![7; fill]);
        assert_eq!(w.end(), (PAGE - 8) as u64);
        let start = w.push(b"x");
        assert_eq!(start, PAGE as u64);
        assert_eq!(w.end(), (PAGE + FRAGMENT_HEADER + 1) as u64);
    }

    #[test]
    fn flush_keeps_only_the_partial_page() {
        let mut w = FrameWriter::new(PAGE as u32, &[0; SEGMENT_HEADER]);
        w.push(&vec![1; 10_000]);
        w.mark_flushed();
        assert!(w.buf.len() < PAGE);
        w.push(b"abc");
        let (at, bytes) = w.unflushed();
        assert_eq!(at, w.end() - 11);
        assert_eq!(bytes.len(), 11);
    }

    #[test]
    fn zero_and_torn_areas_never_decode() {
        let page = vec![0u8; PAGE];
        assert_eq!(decode_fragment(&page, PAGE, 100), Fragment::End);
        let mut w = FrameWriter::new(PAGE as u32, &[]);
        w.push(b"hello world");
        let (_, bytes) = w.unflushed();
        for cut in 1..bytes.len() {
            let f = decode_fragment(&bytes[..cut], PAGE, 0);
            assert!(matches!(f, Fragment::Torn), "cut at {cut} decoded as {f:?}");
        }
        let mut flipped = bytes.to_vec();
        flipped[12] ^= 0x10;
        assert_eq!(
            decode_fragment(&flipped, PAGE, 0),
            Fragment::Corrupt("fragment checksum mismatch")
        );
    }

    #[test]
    fn fragment_golden_bytes() {
        let mut w = FrameWriter::new(PAGE as u32, &[]);
        w.push(b"hi");
        let (_, bytes) = w.unflushed();
        let crc = crc32c::crc32c(&[2, 0, 1, 0, b'h', b'i']).to_le_bytes();
        assert_eq!(
            bytes,
            &[crc[0], crc[1], crc[2], crc[3], 2, 0, 1, 0, b'h', b'i']
        );
    }

    #[test]
    fn assembler_rejects_orphans() {
        let mut a = Assembler::default();
        assert_eq!(a.feed(Kind::Middle, b"x", 0), Assembled::OutOfOrder);
        assert_eq!(a.feed(Kind::First, b"ab", 8), Assembled::Partial);
        assert_eq!(a.feed(Kind::First, b"ab", 8), Assembled::OutOfOrder);
        assert_eq!(a.feed(Kind::First, b"ab", 8), Assembled::Partial);
        assert_eq!(a.feed(Kind::Last, b"cd", 20), Assembled::Record(8));
        assert_eq!(a.record(), b"abcd");
    }
}
