//! The series log: the file that defines each ring-wide series id once per ring.
//!
//! It is framed like a segment (pages, fragments, CRC32C) behind its own 72-byte header, and
//! holds definition records `(id, label set)`. Definitions are appended before the first
//! samples record that names their id is written, and synced before the segment that refers to
//! them, so a synced sample never names an unsynced definition.
//!
//! A checkpoint (Prometheus' WAL checkpoint is the model) replaces the log with one that holds
//! only the series a live segment uses: write `series-<generation+1>.log.tmp`, fdatasync, rename to
//! `series-<generation+1>.log`, fsync the directory, delete `series-<generation>.log`. Opening takes the
//! highest generation whose header is valid and deletes the others and any `.tmp`: a crash at
//! any step leaves either the old log (a superset of what live segments need) or the new
//! complete one. Opening also writes a checkpoint of what it loaded, so appends always go to a
//! log that ends cleanly.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::bits::{get_uvarint, put_uvarint};
use crate::error::Error;
use crate::frame::{FrameWriter, SEGMENT_HEADER};
use crate::options::RecoveryMode;
use crate::segment::{RecordStatus, SegmentReader};
use crate::series::SeriesTable;
use crate::storage::{Storage, StorageFile};
use crate::writer::write_unflushed;

const MAGIC: &[u8; 8] = b"MAGPIESR";
const VERSION: u16 = 2;
/// Record kind of a definitions record.
pub(crate) const REC_DEFINE: u8 = 3;
/// A definitions record is framed once its entries reach this many bytes.
const RECORD_TARGET: usize = 16 << 10;

/// File name of the series log of generation `generation`.
pub(crate) fn log_name(generation: u64) -> String {
    format!("series-{generation:020}.log")
}

/// `(generation, is_temporary)` of a series log file name.
pub(crate) fn parse_log_name(name: &OsStr) -> Option<(u64, bool)> {
    let s = name.to_str()?.strip_prefix("series-")?;
    let (s, tmp) = match s.strip_suffix(".log.tmp") {
        Some(s) => (s, true),
        None => (s.strip_suffix(".log")?, false),
    };
    if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((s.parse().ok()?, tmp))
}

/// A decoded series log header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogHeader {
    pub(crate) generation: u64,
    pub(crate) page_bytes: u32,
    /// No id at or above it was handed out when the log was written.
    pub(crate) id_bound: u32,
}

pub(crate) fn encode_header(h: &LogHeader) -> [u8; SEGMENT_HEADER] {
    let mut b = [0u8; SEGMENT_HEADER];
    b[..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&h.page_bytes.to_le_bytes());
    b[16..24].copy_from_slice(&h.generation.to_le_bytes());
    b[24..28].copy_from_slice(&h.id_bound.to_le_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

pub(crate) fn decode_header(b: &[u8]) -> Result<LogHeader, &'static str> {
    if b.len() < SEGMENT_HEADER {
        return Err("series log shorter than its header");
    }
    if &b[..8] != MAGIC {
        return Err("bad series log magic");
    }
    let le32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if le32(28) != crc32c::crc32c(&b[..28]) {
        return Err("series log header checksum mismatch");
    }
    if u16::from_le_bytes([b[8], b[9]]) != VERSION {
        return Err("unsupported series log version");
    }
    let page_bytes = le32(12);
    if !page_bytes.is_power_of_two() || !(4096..=65536).contains(&page_bytes) {
        return Err("invalid page size in series log header");
    }
    let mut generation = [0u8; 8];
    generation.copy_from_slice(&b[16..24]);
    Ok(LogHeader {
        generation: u64::from_le_bytes(generation),
        page_bytes,
        id_bound: le32(24),
    })
}

/// Appends one definition entry (`uvarint id`, encoded label set) to a record body.
pub(crate) fn put_entry(body: &mut Vec<u8>, id: u32, labels: &[u8]) {
    put_uvarint(body, u64::from(id));
    body.extend_from_slice(labels);
}

/// Builds a definitions record of `count` entries.
pub(crate) fn finish_record(out: &mut Vec<u8>, count: u32, body: &[u8]) {
    out.push(REC_DEFINE);
    put_uvarint(out, u64::from(count));
    out.extend_from_slice(body);
}

/// Decodes a definitions record into `(id, encoded label set)` pairs.
pub(crate) fn decode_record(rec: &[u8]) -> Result<Vec<(u32, &[u8])>, &'static str> {
    const BAD: &str = "malformed series definitions record";
    let (&kind, mut p) = rec.split_first().ok_or(BAD)?;
    if kind != REC_DEFINE {
        return Err("unknown series log record kind");
    }
    let count = get_uvarint(&mut p).ok_or(BAD)?;
    if count > p.len() as u64 {
        return Err(BAD);
    }
    let mut out = Vec::with_capacity(usize::try_from(count).map_err(|_| BAD)?);
    for _ in 0..count {
        let id = u32::try_from(get_uvarint(&mut p).ok_or(BAD)?).map_err(|_| BAD)?;
        let start = p;
        let n = get_uvarint(&mut p).ok_or(BAD)?;
        if n == 0 || n > p.len() as u64 {
            return Err(BAD);
        }
        for _ in 0..2 * n {
            let len = usize::try_from(get_uvarint(&mut p).ok_or(BAD)?).map_err(|_| BAD)?;
            let s = p.get(..len).ok_or(BAD)?;
            std::str::from_utf8(s).map_err(|_| BAD)?;
            p = &p[len..];
        }
        out.push((id, &start[..start.len() - p.len()]));
    }
    if !p.is_empty() {
        return Err("trailing bytes in series definitions record");
    }
    Ok(out)
}

/// The series log being appended to.
#[derive(Debug)]
pub(crate) struct SeriesLog {
    pub(crate) generation: u64,
    pub(crate) path: PathBuf,
    file: Box<dyn StorageFile>,
    frames: FrameWriter,
    pending: Vec<u8>,
    pending_count: u32,
    record: Vec<u8>,
    synced: u64,
    /// A write or sync failed: the file's unsynced state is unknown, so the next sync
    /// rewrites the log (a checkpoint) instead of appending to it.
    pub(crate) broken: bool,
}

impl SeriesLog {
    /// Queues the definition of `id`; it is framed before the next samples record.
    pub(crate) fn add(&mut self, id: u32, labels: &[u8]) {
        put_entry(&mut self.pending, id, labels);
        self.pending_count += 1;
        if self.pending.len() >= RECORD_TARGET {
            self.emit();
        }
    }

    /// Frames the queued definitions.
    pub(crate) fn emit(&mut self) {
        if self.pending_count == 0 {
            return;
        }
        self.record.clear();
        finish_record(&mut self.record, self.pending_count, &self.pending);
        self.frames.push(&self.record);
        self.pending.clear();
        self.pending_count = 0;
    }

    /// Frames and writes the queued definitions (no sync).
    pub(crate) fn write_out(&mut self) -> std::io::Result<()> {
        self.emit();
        write_unflushed(self.file.as_mut(), &mut self.frames)
    }

    /// Makes the written definitions durable.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        if self.synced == self.frames.flushed() {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))?;
        self.synced = self.frames.flushed();
        Ok(())
    }

    /// True when bytes written are not synced yet.
    pub(crate) fn unsynced(&self) -> bool {
        self.synced != self.frames.flushed()
    }

    /// What a sync on another thread needs: a handle to the file (`None` when the file gives
    /// none) and the bytes it covers.
    pub(crate) fn sync_handle(&self) -> (Option<Box<dyn crate::storage::FileSync>>, u64) {
        (self.file.syncer(), self.frames.flushed())
    }

    /// Takes a sync on another thread that covered the first `upto` bytes.
    pub(crate) fn synced_to(&mut self, upto: u64) {
        self.synced = self.synced.max(upto);
    }

    /// True when definitions are queued, written but not synced, or the log must be rewritten.
    pub(crate) fn dirty(&self) -> bool {
        self.pending_count > 0 || self.frames.end() > self.synced || self.broken
    }

    /// Bytes of the file once everything queued is written.
    pub(crate) fn bytes(&self) -> u64 {
        self.frames.end() + self.pending.len() as u64
    }
}

/// Writes a new series log of generation `generation` holding `entries`, replaces the log of an older
/// generation with it and returns it open for appending. See the module documentation for the
/// order of the steps.
pub(crate) fn checkpoint<'a>(
    storage: &dyn Storage,
    dir: &Path,
    header: &LogHeader,
    entries: impl Iterator<Item = (u32, &'a [u8])>,
    old: Option<u64>,
) -> Result<SeriesLog, Error> {
    let path = dir.join(log_name(header.generation));
    let tmp = dir.join(format!("{}.tmp", log_name(header.generation)));
    let mut file = storage
        .create(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let mut frames = FrameWriter::new(header.page_bytes, &encode_header(header));
    let (mut body, mut record, mut count) = (Vec::new(), Vec::new(), 0u32);
    let mut frame = |body: &mut Vec<u8>, count: &mut u32, frames: &mut FrameWriter| {
        if *count > 0 {
            record.clear();
            finish_record(&mut record, *count, body);
            frames.push(&record);
            body.clear();
            *count = 0;
        }
    };
    for (id, labels) in entries {
        put_entry(&mut body, id, labels);
        count += 1;
        if body.len() >= RECORD_TARGET {
            frame(&mut body, &mut count, &mut frames);
        }
        // Bounded memory: whole pages go to the file as they fill.
        if frames.end() - frames.flushed() >= 1 << 20 {
            write_unflushed(file.as_mut(), &mut frames).map_err(|e| Error::io("write", &tmp, e))?;
        }
    }
    frame(&mut body, &mut count, &mut frames);
    write_unflushed(file.as_mut(), &mut frames).map_err(|e| Error::io("write", &tmp, e))?;
    file.sync_data()
        .map_err(|e| Error::io("fdatasync", &tmp, e))?;
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync", dir, e))?;
    if let Some(old) = old.filter(|&o| o != header.generation) {
        let old = dir.join(log_name(old));
        match storage.remove(&old) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &old, e));
            }
            _ => {}
        }
    }
    let synced = frames.flushed();
    Ok(SeriesLog {
        generation: header.generation,
        path,
        file,
        frames,
        pending: Vec::new(),
        pending_count: 0,
        record: Vec::new(),
        synced,
        broken: false,
    })
}

/// What loading the series log found.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Generation of the log loaded, if any.
    pub(crate) generation: Option<u64>,
    /// The id bound its header records.
    pub(crate) id_bound: u32,
    /// Damaged areas met.
    pub(crate) damaged: u64,
    /// The highest generation found, valid or not: a new log must be numbered above it.
    pub(crate) max_gen: u64,
}

/// Deletes the series logs of `dir` older than generation `generation`.
pub(crate) fn remove_older(
    storage: &dyn Storage,
    dir: &Path,
    generation: u64,
) -> Result<(), Error> {
    for name in storage.list(dir).map_err(|e| Error::io("list", dir, e))? {
        if let Some((g, _)) = parse_log_name(&name).filter(|&(g, _)| g < generation) {
            let p = dir.join(log_name(g));
            match storage.remove(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove", &p, e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Loads the newest valid series log of `dir` into `table`, deleting temporary files.
///
/// # Errors
/// I/O errors; [`Error::CorruptSeriesLog`] for damage under [`RecoveryMode::Strict`].
pub(crate) fn load(
    storage: &dyn Storage,
    dir: &Path,
    recovery: RecoveryMode,
    table: &mut SeriesTable,
) -> Result<Loaded, Error> {
    let mut generations = Vec::new();
    for name in storage.list(dir).map_err(|e| Error::io("list", dir, e))? {
        match parse_log_name(&name) {
            Some((_, true)) => {
                let p = dir.join(&name);
                storage.remove(&p).map_err(|e| Error::io("remove", &p, e))?;
            }
            Some((generation, false)) => generations.push(generation),
            None => {}
        }
    }
    generations.sort_unstable();
    let mut loaded = Loaded {
        max_gen: generations.last().copied().unwrap_or(0),
        ..Loaded::default()
    };
    for &generation in generations.iter().rev() {
        if read_log(storage, dir, generation, recovery, table, &mut loaded)? {
            break;
        }
    }
    Ok(loaded)
}

/// Reads the series log of generation `generation` into `table`. False when its header is damaged
/// (nothing was read).
pub(crate) fn read_log(
    storage: &dyn Storage,
    dir: &Path,
    generation: u64,
    recovery: RecoveryMode,
    table: &mut SeriesTable,
    loaded: &mut Loaded,
) -> Result<bool, Error> {
    let strict = recovery == RecoveryMode::Strict;
    let path = dir.join(log_name(generation));
    let file = storage
        .open(&path, false)
        .map_err(|e| Error::io("open", &path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
    let mut raw = [0u8; SEGMENT_HEADER];
    let n = file
        .read_at(&mut raw, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    let header = match decode_header(&raw[..n]) {
        Ok(h) if h.generation == generation => h,
        other => {
            let reason = other.err().unwrap_or("generation differs from file name");
            if strict {
                return Err(Error::corrupt_log(&path, 0, reason));
            }
            log::error!(
                "WAL series log header is damaged; trying an older one. path={} reason={reason}",
                path.display()
            );
            loaded.damaged += 1;
            return Ok(false);
        }
    };
    loaded.generation = Some(generation);
    loaded.id_bound = header.id_bound;
    let mut reader = SegmentReader::new(file, header.page_bytes, len);
    loop {
        match reader.next().map_err(|e| Error::io("read", &path, e))? {
            RecordStatus::Valid { start, .. } => match decode_record(reader.record()) {
                Ok(entries) => {
                    for (id, bytes) in entries {
                        // A definition that is no label set leaves its id undefined: the
                        // samples naming it are counted lost, never given other labels.
                        if let Some(labels) = crate::Labels::from_encoded(bytes) {
                            let h = crate::writer::series_hash(bytes);
                            table.define(id, h, labels, 0);
                        }
                    }
                }
                Err(reason) => {
                    if !damage(&path, start, reason, recovery, loaded)? {
                        break;
                    }
                    reader.skip_page();
                }
            },
            RecordStatus::End { .. } => break,
            RecordStatus::Torn { offset } => {
                // An interrupted append: definitions after the last sync.
                if strict {
                    return Err(Error::corrupt_log(&path, offset, "torn record"));
                }
                log::warn!(
                    "Truncating torn WAL series log tail. path={} offset={offset}",
                    path.display()
                );
                break;
            }
            RecordStatus::Corrupt { offset, reason } => {
                if !damage(&path, offset, reason, recovery, loaded)? {
                    break;
                }
                reader.skip_page();
            }
        }
    }
    Ok(true)
}

/// Applies the recovery mode to damage in the series log; true to go on reading.
fn damage(
    path: &Path,
    offset: u64,
    reason: &'static str,
    recovery: RecoveryMode,
    loaded: &mut Loaded,
) -> Result<bool, Error> {
    loaded.damaged += 1;
    match recovery {
        RecoveryMode::Strict => Err(Error::corrupt_log(path, offset, reason)),
        RecoveryMode::SkipCorrupt => {
            log::error!(
                "Skipping a damaged page of the WAL series log; samples of the series defined there are lost. path={} offset={offset} reason={reason}",
                path.display()
            );
            Ok(true)
        }
        RecoveryMode::TruncateTail => {
            log::error!(
                "Damaged WAL series log; series defined after the damage are lost. path={} offset={offset} reason={reason}",
                path.display()
            );
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(log_name(3), "series-00000000000000000003.log");
        assert_eq!(
            parse_log_name(OsStr::new("series-00000000000000000003.log")),
            Some((3, false))
        );
        assert_eq!(
            parse_log_name(OsStr::new("series-00000000000000000004.log.tmp")),
            Some((4, true))
        );
        for bad in [
            "series-3.log",
            "series-0000000000000000000x.log",
            "00000000000000000003.seg",
        ] {
            assert_eq!(parse_log_name(OsStr::new(bad)), None);
        }
    }

    #[test]
    fn header_golden_bytes() {
        let h = LogHeader {
            generation: 5,
            page_bytes: 4096,
            id_bound: 0x0102_0304,
        };
        let b = encode_header(&h);
        let mut want = Vec::new();
        want.extend_from_slice(b"MAGPIESR");
        want.extend_from_slice(&[2, 0, 0, 0]);
        want.extend_from_slice(&[0x00, 0x10, 0, 0]);
        want.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[4, 3, 2, 1]);
        want.extend_from_slice(&crc32c::crc32c(&want).to_le_bytes());
        want.resize(SEGMENT_HEADER, 0);
        assert_eq!(b.as_slice(), want.as_slice());
        assert_eq!(decode_header(&b), Ok(h));
        let mut flipped = b;
        flipped[20] ^= 1;
        assert!(decode_header(&flipped).is_err());
    }

    #[test]
    fn record_golden_bytes() {
        let mut l = Vec::new();
        crate::labels::encode(&mut l, &[("__name__", "up")]);
        let mut body = Vec::new();
        put_entry(&mut body, 300, &l);
        let mut rec = Vec::new();
        finish_record(&mut rec, 1, &body);
        let want: &[u8] = &[
            3, 1, // kind, count
            0xac, 0x02, // id 300
            1, 8, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 2, b'u', b'p',
        ];
        assert_eq!(rec, want);
        assert_eq!(decode_record(&rec), Ok(vec![(300, &l[..])]));
        for cut in 1..rec.len() {
            assert!(decode_record(&rec[..cut]).is_err(), "cut at {cut}");
        }
    }
}
