//! The open segment: record building and buffered writes. Series ids come from the
//! ring-wide table (`series.rs`).

use std::path::PathBuf;

use crate::codec::{EncState, SamplesBuilder};
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
    /// Value compression state per ring-wide series id; it restarts in every segment.
    enc: Vec<EncState>,
    samples: SamplesBuilder,
    record: Vec<u8>,
    pub(crate) summary: Summary,
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
            enc: Vec::new(),
            samples: SamplesBuilder::default(),
            record: Vec::new(),
            summary: Summary::default(),
        }
    }

    /// True when one more sample still fits.
    pub(crate) fn fits(&self) -> bool {
        let samples = self.samples.encoded_len() + SamplesBuilder::MAX_SAMPLE_BYTES;
        self.frames.end_after(samples) + crate::frame::FRAGMENT_HEADER as u64 + 8 <= self.capacity
    }

    /// Adds one sample of series `id`.
    pub(crate) fn add_sample(&mut self, id: u32, t_ms: i64, value: f64) {
        let i = id as usize;
        if self.enc.len() <= i {
            let from = self.enc.len();
            self.enc
                .extend((from..=i).map(|j| EncState::new(u32::try_from(j).unwrap_or(0))));
        }
        self.summary.series = self.summary.series.max(id.saturating_add(1));
        let st = &mut self.enc[i];
        self.samples.add(st, id, t_ms, value);
        self.summary.add_time(t_ms);
        self.summary.samples += 1;
    }

    /// True when a record of up to `len` bytes, framed now, still leaves room for the pending
    /// samples and one more sample.
    pub(crate) fn fits_record(&self, len: usize) -> bool {
        let margin = 2 * (crate::frame::FRAGMENT_HEADER + 8);
        let bytes = len + self.samples.encoded_len() + SamplesBuilder::MAX_SAMPLE_BYTES + margin;
        self.frames.end_after(bytes) + crate::frame::FRAGMENT_HEADER as u64 + 8 <= self.capacity
    }

    /// Frames a record that names ring-wide series ids but holds no samples (exemplars),
    /// ahead of the pending samples record.
    pub(crate) fn push_record(&mut self, record: &[u8], max_id: u32) {
        self.summary.series = self.summary.series.max(max_id.saturating_add(1));
        self.frames.push(record);
    }

    /// True when the pending records are large enough to frame now.
    pub(crate) fn pending_full(&self) -> bool {
        self.samples.encoded_len() >= self.record_target || self.samples.is_full()
    }

    /// True when appended data is not yet synced.
    pub(crate) fn dirty(&self) -> bool {
        !self.samples.is_empty() || self.frames.end() > self.synced
    }

    /// Frames the pending samples record. The series log's pending definitions must be
    /// framed and written first.
    pub(crate) fn emit_pending(&mut self) {
        if !self.samples.is_empty() {
            self.record.clear();
            self.samples.finish(&mut self.record);
            self.frames.push(&self.record);
        }
    }

    /// Writes the framed bytes not yet in the file.
    pub(crate) fn write_out(&mut self) -> Result<(), std::io::Error> {
        write_unflushed(self.file.as_mut(), &mut self.frames)
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

/// Hands the bytes `frames` holds beyond what the file has to `file`, then lets `frames` drop
/// its full pages. The segments and the series log are framed alike, so both write this way;
/// `frames` stays sans-IO.
pub(crate) fn write_unflushed(
    file: &mut dyn StorageFile,
    frames: &mut FrameWriter,
) -> std::io::Result<()> {
    let (at, bytes) = frames.unflushed();
    if !bytes.is_empty() {
        file.write_all_at(bytes, at)?;
    }
    frames.mark_flushed();
    Ok(())
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
    crate::labels::encode(out, labels);
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
