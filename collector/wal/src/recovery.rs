//! Opening: registering the segments found on disk and recovering the tail.
//!
//! Only the tail segment (and any segment whose summary is missing, which a crash can leave
//! only in the tail) is read through; every other segment contributes its 72-byte header, so
//! opening takes the same time whatever the size of the ring.

use crate::error::Error;
use crate::options::RecoveryMode;
use crate::segment::{self, RecordStatus, SegmentDecoder, SegmentReader, Step, Summary};
use crate::wal::{Sealed, Wal};
use crate::{codec, exemplar};

impl Wal {
    /// Registers a segment found on disk. Only the tail (or a segment never sealed) is read
    /// through; others contribute their header.
    pub(crate) fn load_segment(&mut self, seq: u64, is_tail: bool) -> Result<(), Error> {
        let path = self.seg_path(seq);
        let mut file = self
            .storage
            .open(&path, true)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let mut raw = [0u8; crate::frame::SEGMENT_HEADER];
        let n = file
            .read_at(&mut raw, 0)
            .map_err(|e| Error::io("read", &path, e))?;
        let strict = self.opts.recovery == RecoveryMode::Strict;
        // A crash right after creating the segment leaves it preallocated but never written.
        let never_written = raw[..n].iter().all(|&b| b == 0);
        let header = match segment::decode_header(&raw[..n]) {
            Ok(h) if h.seq == seq => h,
            Ok(_) | Err(_) if is_tail && (never_written || (!strict && n < raw.len())) => {
                // Nothing in it was ever synced.
                log::warn!(
                    "Removing WAL segment without a valid header; it held no synced data. path={}",
                    path.display()
                );
                drop(file);
                self.storage
                    .remove(&path)
                    .map_err(|e| Error::io("remove", &path, e))?;
                return Ok(());
            }
            other => {
                let reason = other
                    .err()
                    .unwrap_or("sequence number differs from file name");
                if strict {
                    return Err(Error::corrupt(seq, 0, reason));
                }
                log::error!(
                    "WAL segment header is damaged; its samples are lost. path={} reason={reason}",
                    path.display()
                );
                self.counters.damaged_regions += 1;
                self.sealed.push_back(Sealed {
                    seq,
                    bytes: len,
                    page_bytes: self.opts.page_bytes,
                    version: segment::VERSION,
                    summary: None,
                });
                return Ok(());
            }
        };
        if let Some(s) = header.summary.filter(|s| s.data_len <= len) {
            if header.version == segment::VERSION {
                // Ids it names stay known, also to the scan of a later tail.
                self.series.reserve(s.series);
            }
            self.sealed.push_back(Sealed {
                seq,
                bytes: len,
                page_bytes: header.page_bytes,
                version: header.version,
                summary: Some(s),
            });
            return Ok(());
        }
        let (summary, valid_end) =
            self.scan_unsealed(seq, header.page_bytes, header.version, len)?;
        if summary.samples == 0 && summary.series == 0 && is_tail {
            drop(file);
            self.storage
                .remove(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
            return Ok(());
        }
        let summary = Summary {
            data_len: valid_end,
            ..summary
        };
        file.set_len(valid_end)
            .map_err(|e| Error::io("truncate", &path, e))?;
        file.write_all_at(&segment::encode_summary(&summary), segment::SUMMARY_OFFSET)
            .map_err(|e| Error::io("write", &path, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", &path, e))?;
        self.sealed.push_back(Sealed {
            seq,
            bytes: valid_end,
            page_bytes: header.page_bytes,
            version: header.version,
            summary: Some(summary),
        });
        Ok(())
    }

    /// Reads which series ids each version-2 segment names (the ids of its samples and
    /// exemplar records, without decoding values) and records the newest segment using each.
    /// Returns false when some segment could not be read whole (a damaged header or record,
    /// an I/O error): its ids are then unknown.
    pub(crate) fn scan_usage(&mut self) -> bool {
        let segments: Vec<(u64, u32, Option<u64>)> = self
            .sealed
            .iter()
            .filter(|s| s.version == segment::VERSION)
            .map(|s| (s.seq, s.page_bytes, s.summary.map(|m| m.data_len)))
            .collect();
        let mut exemplars = Vec::new();
        for (seq, page_bytes, data_len) in segments {
            let Some(data_len) = data_len else {
                return false;
            };
            let path = self.seg_path(seq);
            let Ok(file) = self.storage.open(&path, false) else {
                return false;
            };
            let mut reader = SegmentReader::new(file, page_bytes, data_len);
            loop {
                match reader.next() {
                    Ok(RecordStatus::Valid { .. }) => {}
                    Ok(RecordStatus::End { .. }) => break,
                    Ok(RecordStatus::Torn { .. } | RecordStatus::Corrupt { .. }) | Err(_) => {
                        return false;
                    }
                }
                let record = reader.record();
                let ok = match record.split_first() {
                    Some((&codec::REC_SAMPLES, p)) => codec::samples_ids(p, |first, count| {
                        self.series.touch_range(first, count, seq);
                    })
                    .is_ok(),
                    Some((&exemplar::REC_EXEMPLARS, p)) => {
                        exemplars.clear();
                        let ok = exemplar::decode(p, &mut exemplars).is_ok();
                        for e in &exemplars {
                            self.series.touch(e.id, seq);
                        }
                        ok
                    }
                    _ => true,
                };
                if !ok {
                    return false;
                }
            }
        }
        true
    }

    /// Reads an unsealed segment to its last valid record; returns what it holds and where the
    /// valid data ends.
    fn scan_unsealed(
        &mut self,
        seq: u64,
        page_bytes: u32,
        version: u16,
        len: u64,
    ) -> Result<(Summary, u64), Error> {
        let path = self.seg_path(seq);
        let reopened = self
            .storage
            .open(&path, false)
            .map_err(|e| Error::io("open", &path, e))?;
        let mut dec = SegmentDecoder::new(SegmentReader::new(reopened, page_bytes, len), version);
        let bound = self.series.id_bound();
        let mut max_id = None;
        let mut summary = Summary::default();
        let mut valid_end = crate::frame::SEGMENT_HEADER as u64;
        let mut out = Vec::new();
        loop {
            out.clear();
            match dec
                .next(&mut out, bound)
                .map_err(|e| Error::io("read", &path, e))?
            {
                Step::Series { end } | Step::Skipped { end, .. } => valid_end = end,
                Step::Exemplars { end, .. } => {
                    // Exemplars name ids too: the bound must cover them.
                    for e in &dec.exemplars {
                        max_id = max_id.max(Some(e.id));
                    }
                    valid_end = end;
                }
                Step::Samples { end, count, .. } => {
                    for s in &out {
                        max_id = max_id.max(Some(s.id));
                        summary.add_time(s.t_ms);
                        summary.samples += 1;
                    }
                    // Counting the record's own figure keeps positions consistent with it.
                    summary.samples += count - out.len() as u64;
                    valid_end = end;
                }
                Step::End { .. } => break,
                Step::Damaged { offset, reason, .. } => {
                    if self.opts.recovery == RecoveryMode::Strict {
                        return Err(Error::corrupt(seq, offset, reason));
                    }
                    log::warn!(
                        "Truncating torn WAL tail; data after the last sync is lost. path={} offset={offset} reason={reason}",
                        path.display()
                    );
                    break;
                }
            }
        }
        summary.series = if version == segment::VERSION {
            // Format 2: one more than the highest ring-wide id its samples name.
            max_id.map_or(0, |m| m.saturating_add(1))
        } else {
            u32::try_from(dec.series.len()).unwrap_or(u32::MAX)
        };
        Ok((summary, valid_end))
    }
}
