//! A read-only report on a WAL directory, for `magpie wal inspect DIR`.
//!
//! It reads every segment through (unlike opening, which reads only the tail), never writes,
//! does not take the directory lock, and reports damage instead of failing on it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cursor::{self, Position};
use crate::error::Error;
use crate::options::RecoveryMode;
use crate::segment::{self, SegmentDecoder, SegmentReader, Step};
use crate::series::SeriesTable;
use crate::serieslog;
use crate::storage::{OsStorage, Storage};
use crate::wal::{CURSOR_DIR, LOCK_FILE};

/// What [`inspect`] found.
#[derive(Debug, Clone, Default)]
pub struct InspectReport {
    /// The directory.
    pub dir: PathBuf,
    /// Segments, oldest first.
    pub segments: Vec<SegmentReport>,
    /// Consumers' cursors: name and position, or why the file is unreadable.
    pub cursors: Vec<(String, Result<Position, String>)>,
    /// Files that are not part of the WAL.
    pub ignored: Vec<String>,
    /// Problems that concern the directory as a whole (missing segments, a damaged series
    /// log).
    pub problems: Vec<String>,
    /// The series log read (the newest), if any.
    pub series_log: Option<String>,
    /// Series it defines.
    pub series_defined: u64,
}

/// One segment as [`inspect`] saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReport {
    /// Sequence number.
    pub seq: u64,
    /// File size.
    pub bytes: u64,
    /// True when the header holds a valid summary (the segment was closed cleanly).
    pub sealed: bool,
    /// Series defined in it.
    pub series: u64,
    /// Samples decoded from it.
    pub samples: u64,
    /// Exemplars decoded from it.
    pub exemplars: u64,
    /// Earliest and latest sample timestamps (ms).
    pub time_range: Option<(i64, i64)>,
    /// Damage found, one line each.
    pub damage: Vec<String>,
}

/// Reads a WAL directory and reports its segments, cursors and any damage.
///
/// # Errors
/// Only when the directory itself cannot be listed; damaged contents are reported.
pub fn inspect(dir: &Path) -> Result<InspectReport, Error> {
    let storage = OsStorage;
    let mut report = InspectReport {
        dir: dir.to_owned(),
        ..InspectReport::default()
    };
    let mut names: Vec<String> = storage
        .list(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut seqs = Vec::new();
    let mut generations = Vec::new();
    for n in names {
        match segment::parse_segment_name(n.as_ref()) {
            Some(seq) => seqs.push(seq),
            None if n == CURSOR_DIR || n == LOCK_FILE => {}
            None if serieslog::parse_log_name(n.as_ref()).is_some_and(|(_, tmp)| !tmp) => {
                generations.extend(serieslog::parse_log_name(n.as_ref()).map(|(g, _)| g));
            }
            None => report.ignored.push(n),
        }
    }
    seqs.sort_unstable();
    for w in seqs.windows(2) {
        if w[1] != w[0] + 1 {
            report
                .problems
                .push(format!("segments {} to {} are missing", w[0] + 1, w[1] - 1));
        }
    }
    generations.sort_unstable();
    let mut table = SeriesTable::default();
    let mut loaded = serieslog::Loaded::default();
    for &generation in generations.iter().rev() {
        let before = loaded.damaged;
        match serieslog::read_log(
            &storage,
            dir,
            generation,
            RecoveryMode::SkipCorrupt,
            &mut table,
            &mut loaded,
        ) {
            Ok(read) => {
                if loaded.damaged > before {
                    report.problems.push(format!(
                        "series log {}: {} damaged areas",
                        serieslog::log_name(generation),
                        loaded.damaged - before
                    ));
                }
                if read {
                    report.series_log = Some(serieslog::log_name(generation));
                    break;
                }
            }
            Err(e) => report.problems.push(format!("series log: {e}")),
        }
    }
    report.series_defined = table.len() as u64;
    let id_bound = table.id_bound().max(loaded.id_bound);
    for seq in seqs {
        report
            .segments
            .push(inspect_segment(&storage, dir, seq, id_bound));
    }
    let cdir = dir.join(CURSOR_DIR);
    if let Ok(mut names) = storage.list(&cdir) {
        names.sort();
        for n in names {
            let n = n.to_string_lossy().into_owned();
            let Some(name) = n.strip_suffix(".cursor") else {
                report.ignored.push(format!("{CURSOR_DIR}/{n}"));
                continue;
            };
            let mut buf = [0u8; cursor::FILE_LEN + 1];
            let read = storage
                .open(&cdir.join(&n), false)
                .and_then(|f| f.read_at(&mut buf, 0));
            let entry = match read {
                Ok(len) => cursor::decode(&buf[..len]).map_err(str::to_owned),
                Err(e) => Err(e.to_string()),
            };
            report.cursors.push((name.to_owned(), entry));
        }
    }
    Ok(report)
}

fn inspect_segment(storage: &OsStorage, dir: &Path, seq: u64, id_bound: u32) -> SegmentReport {
    let mut r = SegmentReport {
        seq,
        ..SegmentReport::default()
    };
    let path = dir.join(segment::segment_name(seq));
    let file = match storage.open(&path, false) {
        Ok(f) => f,
        Err(e) => {
            r.damage.push(format!("cannot open: {e}"));
            return r;
        }
    };
    r.bytes = file.len().unwrap_or(0);
    let header = match segment::read_header(file.as_ref()) {
        Ok(Ok(h)) => h,
        Ok(Err(reason)) => {
            r.damage.push(format!("header: {reason}"));
            return r;
        }
        Err(e) => {
            r.damage.push(format!("cannot read header: {e}"));
            return r;
        }
    };
    if header.seq != seq {
        r.damage
            .push(format!("header names segment {}", header.seq));
    }
    r.sealed = header.summary.is_some();
    let limit = header.summary.map_or(r.bytes, |s| s.data_len);
    if limit > r.bytes {
        r.damage
            .push(format!("truncated: {} bytes, header says {limit}", r.bytes));
    }
    let mut dec = SegmentDecoder::new(
        SegmentReader::new(file, header.page_bytes, limit.min(r.bytes)),
        header.version,
    );
    let mut ids = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut steps = 0u64;
    loop {
        out.clear();
        steps += 1;
        match dec.next(&mut out, id_bound) {
            Ok(Step::Series { .. } | Step::Skipped { .. }) => {}
            Ok(Step::Exemplars { .. }) => r.exemplars += dec.exemplars.len() as u64,
            Ok(Step::Samples { .. }) => {
                for s in &out {
                    ids.insert(s.id);
                    r.samples += 1;
                    r.time_range = Some(match r.time_range {
                        None => (s.t_ms, s.t_ms),
                        Some((a, b)) => (a.min(s.t_ms), b.max(s.t_ms)),
                    });
                }
            }
            Ok(Step::End { offset }) => {
                if r.sealed && offset < limit.min(r.bytes) {
                    r.damage
                        .push(format!("offset {offset}: zeroed data before the end"));
                }
                break;
            }
            Ok(Step::Damaged {
                offset,
                reason,
                torn,
            }) => {
                let what = if torn && !r.sealed {
                    "torn tail"
                } else {
                    reason
                };
                r.damage.push(format!("offset {offset}: {what}"));
                dec.skip_damage();
            }
            Err(e) => {
                r.damage.push(format!("read error: {e}"));
                break;
            }
        }
        // A damaged file cannot loop forever: every step advances by at least a fragment.
        if steps > limit {
            break;
        }
    }
    if dec.lost > 0 {
        r.damage
            .push(format!("{} samples undecodable after damage", dec.lost));
    }
    r.series = if header.version == segment::VERSION {
        ids.len() as u64
    } else {
        dec.series.iter().filter(|s| s.is_some()).count() as u64
    };
    if let Some(s) = header.summary
        && s.samples != r.samples
        && r.damage.is_empty()
    {
        r.damage.push(format!(
            "header counts {} samples, {} decoded",
            s.samples, r.samples
        ));
    }
    r
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "WAL {}", self.dir.display())?;
        let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
        let samples: u64 = self.segments.iter().map(|s| s.samples).sum();
        writeln!(
            f,
            "{} segments, {total} bytes, {samples} samples",
            self.segments.len()
        )?;
        writeln!(
            f,
            "{:>8} {:>10} {:>6} {:>8} {:>10}  {:<41}  damage",
            "segment", "bytes", "sealed", "series", "samples", "time range (ms)"
        )?;
        for s in &self.segments {
            let range = s
                .time_range
                .map_or_else(|| "-".to_owned(), |(a, b)| format!("{a}..{b}"));
            let damage = if s.damage.is_empty() {
                "none".to_owned()
            } else {
                s.damage.join("; ")
            };
            writeln!(
                f,
                "{:>8} {:>10} {:>6} {:>8} {:>10}  {:<41}  {damage}",
                s.seq,
                s.bytes,
                if s.sealed { "yes" } else { "no" },
                s.series,
                s.samples,
                range
            )?;
        }
        match &self.series_log {
            Some(name) => writeln!(f, "series log {name}: {} series", self.series_defined)?,
            None => writeln!(f, "series log: none")?,
        }
        if self.cursors.is_empty() {
            writeln!(f, "cursors: none")?;
        }
        for (name, c) in &self.cursors {
            match c {
                Ok(p) => writeln!(f, "cursor {name}: acknowledged up to {p}")?,
                Err(e) => writeln!(f, "cursor {name}: unreadable ({e})")?,
            }
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        for i in &self.ignored {
            writeln!(f, "ignored: {i}")?;
        }
        Ok(())
    }
}
