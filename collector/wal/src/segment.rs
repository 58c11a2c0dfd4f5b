//! Segment files: naming, the header, and reading records back.
//!
//! A segment starts with a 72-byte header in page 0, followed by framed records (see
//! `frame.rs`). The summary half of the header is written once, when the segment is sealed; it
//! lets the ring account for a segment (its samples, its time range) without reading it.

use std::ffi::OsStr;
use std::io;

use crate::codec::{self, DecState, Labels, RawSample};
use crate::frame::{Assembled, Assembler, Fragment, SEGMENT_HEADER, decode_fragment};
use crate::storage::StorageFile;

const MAGIC: &[u8; 8] = b"MAGPIEWL";
/// Version of the segments this crate writes: samples name ring-wide series ids.
pub(crate) const VERSION: u16 = 2;
/// Self-contained segments with their own series records, still read.
pub(crate) const VERSION_1: u16 = 1;
const SUMMARY_AT: usize = 32;

/// File name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

/// The sequence number of a segment file name, if it is one.
pub(crate) fn parse_segment_name(name: &OsStr) -> Option<u64> {
    let s = name.to_str()?.strip_suffix(".seg")?;
    if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What a sealed segment holds, as recorded in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Bytes of the file that hold data; the rest is unused.
    pub(crate) data_len: u64,
    pub(crate) samples: u64,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) series: u32,
}

impl Summary {
    pub(crate) fn add_time(&mut self, t: i64) {
        if self.samples == 0 {
            self.min_t = t;
            self.max_t = t;
        } else {
            self.min_t = self.min_t.min(t);
            self.max_t = self.max_t.max(t);
        }
    }
}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u16,
    pub(crate) seq: u64,
    pub(crate) page_bytes: u32,
    pub(crate) summary: Option<Summary>,
}

/// The header of a new, unsealed segment.
pub(crate) fn encode_header(seq: u64, page_bytes: u32) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&page_bytes.to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The summary bytes that go to offset 32 of the header when sealing.
pub(crate) fn encode_summary(s: &Summary) -> [u8; SEGMENT_HEADER - SUMMARY_AT] {
    let mut b = [0u8; SEGMENT_HEADER - SUMMARY_AT];
    b[0..8].copy_from_slice(&s.data_len.to_le_bytes());
    b[8..16].copy_from_slice(&s.samples.to_le_bytes());
    b[16..24].copy_from_slice(&s.min_t.to_le_bytes());
    b[24..32].copy_from_slice(&s.max_t.to_le_bytes());
    b[32..36].copy_from_slice(&s.series.to_le_bytes());
    let crc = crc32c::crc32c(&b[..36]);
    b[36..40].copy_from_slice(&crc.to_le_bytes());
    b
}

/// File offset of the summary.
pub(crate) const SUMMARY_OFFSET: u64 = SUMMARY_AT as u64;

/// Decodes a header; a damaged summary reads as "not sealed".
pub(crate) fn decode_header(h: &[u8]) -> Result<Header, &'static str> {
    if h.len() < SEGMENT_HEADER {
        return Err("segment shorter than its header");
    }
    if &h[..8] != MAGIC {
        return Err("bad segment magic");
    }
    let le32 = |r: std::ops::Range<usize>| u32::from_le_bytes(h[r].try_into().unwrap_or([0; 4]));
    let le64 = |r: std::ops::Range<usize>| u64::from_le_bytes(h[r].try_into().unwrap_or([0; 8]));
    if le32(24..28) != crc32c::crc32c(&h[..24]) {
        return Err("segment header checksum mismatch");
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION && version != VERSION_1 {
        return Err("unsupported segment version");
    }
    let page_bytes = le32(12..16);
    if !page_bytes.is_power_of_two() || !(4096..=65536).contains(&page_bytes) {
        return Err("invalid page size in segment header");
    }
    let s = &h[SUMMARY_AT..SEGMENT_HEADER];
    let summary =
        (le32(SUMMARY_AT + 36..SUMMARY_AT + 40) == crc32c::crc32c(&s[..36])).then(|| Summary {
            data_len: le64(32..40),
            samples: le64(40..48),
            min_t: le64(48..56) as i64,
            max_t: le64(56..64) as i64,
            series: le32(64..68),
        });
    Ok(Header {
        version,
        seq: le64(16..24),
        page_bytes,
        summary,
    })
}

/// Reads the header of a segment file.
pub(crate) fn read_header(file: &dyn StorageFile) -> io::Result<Result<Header, &'static str>> {
    let mut h = [0u8; SEGMENT_HEADER];
    let n = file.read_at(&mut h, 0)?;
    Ok(decode_header(&h[..n]))
}

/// Outcome of reading the next record of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordStatus {
    /// A record in `start..end`; its bytes are in [`SegmentReader::record`].
    Valid { start: u64, end: u64 },
    /// No more data at `offset` (an all-zero header or the read limit).
    End { offset: u64 },
    /// The data stops inside a record at `offset`: an interrupted write.
    Torn { offset: u64 },
    /// Bytes at `offset` that no writer produces.
    Corrupt { offset: u64, reason: &'static str },
}

/// Reads the records of one segment file, one page buffer at a time.
#[derive(Debug)]
pub(crate) struct SegmentReader {
    file: Box<dyn StorageFile>,
    page_bytes: usize,
    limit: u64,
    page: Vec<u8>,
    page_start: u64,
    loaded: usize,
    pos: u64,
    asm: Assembler,
    resync: bool,
}

impl SegmentReader {
    /// Reads `file` from the first record up to `limit` bytes.
    pub(crate) fn new(file: Box<dyn StorageFile>, page_bytes: u32, limit: u64) -> Self {
        SegmentReader {
            file,
            page_bytes: page_bytes as usize,
            limit,
            page: vec![0; page_bytes as usize],
            page_start: u64::MAX,
            loaded: 0,
            pos: SEGMENT_HEADER as u64,
            asm: Assembler::default(),
            resync: false,
        }
    }

    /// Raises the read limit (the writer flushed more).
    pub(crate) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }

    /// The last valid record's bytes.
    pub(crate) fn record(&self) -> &[u8] {
        self.asm.record()
    }

    /// Gives up on the current page after damage: continues at the next page with a record
    /// start, dropping fragments of records that began before it.
    pub(crate) fn skip_page(&mut self) {
        let p = self.page_bytes as u64;
        self.pos = (self.pos / p + 1) * p;
        self.asm.reset();
        self.resync = true;
    }

    pub(crate) fn next(&mut self) -> io::Result<RecordStatus> {
        let p = self.page_bytes as u64;
        loop {
            if self.pos >= self.limit {
                return Ok(if self.asm.in_record() {
                    RecordStatus::Torn { offset: self.pos }
                } else {
                    RecordStatus::End { offset: self.pos }
                });
            }
            let page_start = self.pos / p * p;
            let off = (self.pos - page_start) as usize;
            let want = (self.limit - page_start).min(p) as usize;
            if self.page_start != page_start || self.loaded < want {
                self.loaded = self.file.read_at(&mut self.page[..want], page_start)?;
                self.page_start = page_start;
            }
            let at = self.pos;
            match decode_fragment(&self.page[..self.loaded], self.page_bytes, off) {
                Fragment::Data {
                    kind,
                    payload,
                    next,
                } => {
                    self.pos = page_start + next as u64;
                    if self.resync {
                        if matches!(kind, crate::frame::Kind::Middle | crate::frame::Kind::Last) {
                            continue;
                        }
                        self.resync = false;
                    }
                    match self.asm.feed(kind, payload, at) {
                        Assembled::Partial => {}
                        Assembled::Record(start) => {
                            return Ok(RecordStatus::Valid {
                                start,
                                end: self.pos,
                            });
                        }
                        Assembled::OutOfOrder => {
                            return Ok(RecordStatus::Corrupt {
                                offset: at,
                                reason: "fragment out of order",
                            });
                        }
                    }
                }
                Fragment::PagePad => self.pos = page_start + p,
                Fragment::End if self.loaded < want => {
                    return Ok(RecordStatus::Torn { offset: at });
                }
                Fragment::End if self.asm.in_record() => {
                    return Ok(RecordStatus::Torn { offset: at });
                }
                Fragment::End => return Ok(RecordStatus::End { offset: at }),
                Fragment::Torn => return Ok(RecordStatus::Torn { offset: at }),
                Fragment::Corrupt(reason) => {
                    return Ok(RecordStatus::Corrupt { offset: at, reason });
                }
            }
        }
    }
}

/// One step of [`SegmentDecoder::next`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A series record ending at `end` was applied.
    Series { end: u64 },
    /// A samples record in `start..end` holding `count` samples; the decodable ones were
    /// appended to the output.
    Samples { start: u64, end: u64, count: u64 },
    /// An exemplar record in `start..end`; its exemplars are in
    /// [`SegmentDecoder::exemplars`].
    Exemplars { start: u64, end: u64 },
    /// A record of a later optional kind (5 and above) in `start..end`, skipped whole.
    Skipped { start: u64, end: u64 },
    /// End of the readable data at `offset`.
    End { offset: u64 },
    /// Damage at `offset`.
    Damaged {
        offset: u64,
        reason: &'static str,
        torn: bool,
    },
}

/// Decodes a segment's records into samples, keeping the per-series decompression state and,
/// in a format-1 segment, its own series table: memory in O(series).
#[derive(Debug)]
pub(crate) struct SegmentDecoder {
    pub(crate) reader: SegmentReader,
    pub(crate) version: u16,
    pub(crate) series: Vec<Option<Labels>>,
    states: Vec<DecState>,
    lenient: bool,
    /// Samples lost to damage (undecodable after a skip).
    pub(crate) lost: u64,
    /// The exemplars of the last [`Step::Exemplars`].
    pub(crate) exemplars: Vec<crate::exemplar::RawExemplar>,
}

impl SegmentDecoder {
    pub(crate) fn new(reader: SegmentReader, version: u16) -> Self {
        SegmentDecoder {
            reader,
            version,
            series: Vec::new(),
            states: Vec::new(),
            lenient: false,
            lost: 0,
            exemplars: Vec::new(),
        }
    }

    /// Skips the damaged page and forgets history, so nothing after it decodes wrong.
    pub(crate) fn skip_damage(&mut self) {
        self.reader.skip_page();
        self.states.iter_mut().for_each(DecState::poison);
        self.lenient = true;
    }

    /// Decodes the next record. Samples of a format-2 segment name ring-wide ids below
    /// `id_bound`; a higher id makes the record damaged.
    pub(crate) fn next(&mut self, out: &mut Vec<RawSample>, id_bound: u32) -> io::Result<Step> {
        let (start, end) = match self.reader.next()? {
            RecordStatus::Valid { start, end } => (start, end),
            RecordStatus::End { offset } => return Ok(Step::End { offset }),
            RecordStatus::Torn { offset } => {
                return Ok(Step::Damaged {
                    offset,
                    reason: "torn record",
                    torn: true,
                });
            }
            RecordStatus::Corrupt { offset, reason } => {
                return Ok(Step::Damaged {
                    offset,
                    reason,
                    torn: false,
                });
            }
        };
        let damaged = |reason| {
            Ok(Step::Damaged {
                offset: start,
                reason,
                torn: false,
            })
        };
        let rec = self.reader.record();
        match rec.first() {
            Some(&codec::REC_SERIES) if self.version == VERSION => {
                damaged("series record in a format-2 segment")
            }
            Some(&codec::REC_SERIES) => {
                let s = match codec::decode_series(&rec[1..]) {
                    Ok(s) => s,
                    Err(reason) => return damaged(reason),
                };
                let first = s.first as usize;
                if first != self.series.len() && !self.lenient {
                    return damaged("series ids out of sequence");
                }
                let end_id = first + s.labels.len();
                if self.series.len() < end_id {
                    self.series.resize(end_id, None);
                    self.states.resize(end_id, DecState::default());
                }
                for (i, l) in s.labels.into_iter().enumerate() {
                    self.series[first + i] = Some(l);
                }
                Ok(Step::Series { end })
            }
            Some(&codec::REC_SAMPLES) => {
                let count = codec::samples_count(&rec[1..]).unwrap_or(0);
                if self.version == VERSION && self.states.len() < id_bound as usize {
                    self.states.resize(id_bound as usize, DecState::default());
                }
                match codec::decode_samples(&rec[1..], &mut self.states, self.lenient, out) {
                    Ok(dropped) => {
                        self.lost += dropped;
                        Ok(Step::Samples { start, end, count })
                    }
                    Err(reason) => damaged(reason),
                }
            }
            Some(&crate::exemplar::REC_EXEMPLARS) if self.version == VERSION => {
                self.exemplars.clear();
                match crate::exemplar::decode(&rec[1..], &mut self.exemplars) {
                    Ok(()) => Ok(Step::Exemplars { start, end }),
                    Err(reason) => damaged(reason),
                }
            }
            // Kinds above the exemplar record are optional: whole records (their CRCs
            // checked) that a reader without use for them passes over.
            Some(&k) if self.version == VERSION && k > crate::exemplar::REC_EXEMPLARS => {
                Ok(Step::Skipped { start, end })
            }
            _ => damaged("unknown record kind"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(segment_name(42), "00000000000000000042.seg");
        assert_eq!(parse_segment_name(OsStr::new(&segment_name(42))), Some(42));
        for bad in [
            "42.seg",
            "0000000000000000004x.seg",
            "00000000000000000042.tmp",
        ] {
            assert_eq!(parse_segment_name(OsStr::new(bad)), None);
        }
    }

    #[test]
    fn header_golden_bytes() {
        let h = encode_header(7, 32768);
        let mut want = Vec::new();
        want.extend_from_slice(b"MAGPIEWL");
        want.extend_from_slice(&[2, 0, 0, 0]);
        want.extend_from_slice(&[0x00, 0x80, 0, 0]);
        want.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&crc32c::crc32c(&want).to_le_bytes());
        want.resize(SEGMENT_HEADER, 0);
        assert_eq!(h.as_slice(), want.as_slice());
        let d = decode_header(&h).unwrap();
        assert_eq!(
            (d.version, d.seq, d.page_bytes, d.summary),
            (2, 7, 32768, None)
        );
    }

    #[test]
    fn summary_round_trips_and_flip_unseals() {
        let mut h = encode_header(3, 4096);
        let s = Summary {
            data_len: 9000,
            samples: 77,
            min_t: -5,
            max_t: 1_700_000_000_000,
            series: 12,
        };
        h[32..].copy_from_slice(&encode_summary(&s));
        assert_eq!(decode_header(&h).unwrap().summary, Some(s));
        h[40] ^= 1;
        assert_eq!(decode_header(&h).unwrap().summary, None);
        h[17] ^= 1;
        assert!(decode_header(&h).is_err());
    }
}
