//! The open segment: series interning, record building and buffered writes.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::codec::{self, EncState, SamplesBuilder};
use crate::error::Error;
use crate::frame::FrameWriter;
use crate::segment::{self, Summary};
use crate::storage::StorageFile;

/// Largest encoded label set accepted, so one series always fits a segment.
pub(crate) const MAX_LABELS_BYTES: usize = 64 << 10;

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct OpenSegment {
    pub(crate) seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Box<dyn StorageFile>,
    pub(crate) frames: FrameWriter,
    pub(crate) synced: u64,
    pub(crate) dir_synced: bool,
    capacity: u64,
    record_target: usize,
    /// Encoded label sets of the segment's series, back to back; `ends[id]` is where one ends.
    arena: Vec<u8>,
    ends: Vec<u32>,
    index: HashMap<u64, u32>,
    collisions: Vec<(u64, u32)>,
    enc: Vec<EncState>,
    pending_series: Vec<u8>,
    pending_first: u32,
    samples: SamplesBuilder,
    record: Vec<u8>,
    pub(crate) summary: Summary,
}

/// Result of looking a label set up in the open segment.
pub(crate) enum Lookup {
    Known(u32),
    /// Not yet in this segment; the encoded labels are in the scratch buffer.
    New,
}

impl OpenSegment {
    pub(crate) fn new(
        seq: u64,
        path: PathBuf,
        file: Box<dyn StorageFile>,
        page_bytes: u32,
        capacity: u64,
    ) -> Self {
        OpenSegment {
            seq,
            path,
            file,
            frames: FrameWriter::new(page_bytes, &segment::encode_header(seq, page_bytes)),
            synced: 0,
            dir_synced: false,
            capacity,
            record_target: page_bytes as usize / 2,
            arena: Vec::new(),
            ends: Vec::new(),
            index: HashMap::new(),
            collisions: Vec::new(),
            enc: Vec::new(),
            pending_series: Vec::new(),
            pending_first: 0,
            samples: SamplesBuilder::default(),
            record: Vec::new(),
            summary: Summary::default(),
        }
    }

    fn labels_of(&self, id: u32) -> &[u8] {
        let end = self.ends[id as usize] as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id as usize - 1] as usize
        };
        &self.arena[start..end]
    }

    /// Finds the id of the label set encoded in `key` (hash `h`).
    pub(crate) fn lookup(&self, h: u64, key: &[u8]) -> Lookup {
        if let Some(&id) = self.index.get(&h) {
            if self.labels_of(id) == key {
                return Lookup::Known(id);
            }
            for &(ch, id) in &self.collisions {
                if ch == h && self.labels_of(id) == key {
                    return Lookup::Known(id);
                }
            }
        }
        Lookup::New
    }

    /// True when a new series of `key_len` encoded bytes plus one sample still fit.
    pub(crate) fn fits(&self, new_series_bytes: usize) -> bool {
        let series = if self.pending_series.is_empty() && new_series_bytes == 0 {
            0
        } else {
            1 + 10 + 5 + self.pending_series.len() + new_series_bytes
        };
        let samples = self.samples.encoded_len() + SamplesBuilder::MAX_SAMPLE_BYTES;
        let mut lens = [0usize; 2];
        lens[0] = series;
        lens[1] = samples;
        self.end_after(&lens) <= self.capacity
    }

    fn end_after(&self, lens: &[usize]) -> u64 {
        // Two records framed one after the other cost at most one extra header and one page's
        // padding more than one record of their combined length.
        let total: usize = lens.iter().sum();
        self.frames.end_after(total) + 2 * crate::frame::FRAGMENT_HEADER as u64 + 8
    }

    /// Adds a series (its labels encoded in `key`) and returns its id.
    pub(crate) fn insert(&mut self, h: u64, key: &[u8]) -> u32 {
        let id = self.ends.len() as u32;
        if self.pending_series.is_empty() {
            self.pending_first = id;
        }
        self.pending_series.extend_from_slice(key);
        self.arena.extend_from_slice(key);
        self.ends.push(self.arena.len() as u32);
        match self.index.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((h, id)),
        }
        self.enc.push(EncState::new(id));
        self.summary.series = self.ends.len() as u32;
        id
    }

    /// Adds one sample of series `id`.
    pub(crate) fn add_sample(&mut self, id: u32, t_ms: i64, value: f64) {
        let st = &mut self.enc[id as usize];
        self.samples.add(st, id, t_ms, value);
        self.summary.add_time(t_ms);
        self.summary.samples += 1;
    }

    /// True when the pending records are large enough to frame now.
    pub(crate) fn pending_full(&self) -> bool {
        self.pending_series.len() + self.samples.encoded_len() >= self.record_target
            || self.samples.is_full()
    }

    /// True when appended data is not yet synced.
    pub(crate) fn dirty(&self) -> bool {
        !self.pending_series.is_empty()
            || !self.samples.is_empty()
            || self.frames.end() > self.synced
    }

    /// Frames the pending series and samples records.
    pub(crate) fn emit_pending(&mut self) {
        if !self.pending_series.is_empty() {
            self.record.clear();
            let count = self.ends.len() as u32 - self.pending_first;
            codec::finish_series(
                &mut self.record,
                self.pending_first,
                count,
                &self.pending_series,
            );
            self.frames.push(&self.record);
            self.pending_series.clear();
        }
        if !self.samples.is_empty() {
            self.record.clear();
            self.samples.finish(&mut self.record);
            self.frames.push(&self.record);
        }
    }

    /// Writes the framed bytes not yet in the file.
    pub(crate) fn write_out(&mut self) -> Result<(), std::io::Error> {
        let (at, bytes) = self.frames.unflushed();
        if !bytes.is_empty() {
            self.file.write_all_at(bytes, at)?;
        }
        self.frames.mark_flushed();
        Ok(())
    }

    /// Makes written data durable.
    pub(crate) fn sync(&mut self) -> Result<(), Error> {
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))?;
        self.synced = self.frames.flushed();
        Ok(())
    }
}

/// Encodes `labels` into `out` after checking them; returns their hash.
pub(crate) fn encode_key(labels: &[(&str, &str)], out: &mut Vec<u8>) -> Result<u64, Error> {
    if labels.is_empty() {
        return Err(Error::InvalidLabels("empty label set"));
    }
    if labels.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::InvalidLabels(
            "label names must be unique and sorted",
        ));
    }
    out.clear();
    codec::put_labels(out, labels);
    if out.len() > MAX_LABELS_BYTES {
        return Err(Error::InvalidLabels("label set larger than 64 KiB"));
    }
    Ok(series_hash(out))
}

/// FxHash-style hash of encoded labels: fast on 32-bit ARM too, and collisions are handled.
pub(crate) fn series_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(a)).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    h
}
