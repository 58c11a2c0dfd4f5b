//! Repeat records: a sample line that starts with the same series text as the line at the same
//! position of the last parse is handed on as "the same series again", without its labels.
//!
//! A target writes its series in the same order scrape after scrape, so after the first parse
//! nearly every line repeats the series text of the line at its position. For each position
//! the last parse keeps one word: a 48-bit fingerprint of the series text (the bytes from the
//! line's start through the end of the metric name, or through the label set's `}`) and its
//! length. A line whose first `len` bytes have that fingerprint, followed by what may follow a
//! series text, is read from there on as a value and a timestamp only: the label set is not
//! parsed, checked, unescaped or copied, and the sink gets [`Sink::repeat`].
//!
//! This is sound because a series text decides how the parser reads the rest of a line: if a
//! line starts with bytes that were a whole, valid series text at this position last time, the
//! full parser would read those bytes the same way again (the same name, labels and checks,
//! ending at the same byte) and then the same value and timestamp code as here. Any doubt (the
//! line is shorter, the fingerprint differs, the value does not parse) sends the line through
//! the full parser, which reports errors as before. Two different series texts of the same
//! length at the same position share a fingerprint with probability 2^-48; the sample would
//! then be taken for the last scrape's series at that position, which the target could have
//! named itself.
//!
//! OpenMetrics checks more than a line's own text: which family the line belongs to, the
//! group it opens or continues, a bucket's bound. For its lines each position also keeps the
//! family the line was read in (name and type), the line's group and its `le`; a line is
//! repeated only in the same family as last time, and the checks of family order, grouping,
//! timestamps, values and histogram buckets run on the recorded group and bound as the full
//! parser would run them (`openmetrics::OmState::repeat`). 24 more bytes a position, kept only
//! while a target answers in OpenMetrics. A line with an exemplar is read in full.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::hash::Fingerprint;

/// Length bits of an entry; series texts longer than this are never repeated.
const LEN_BITS: u32 = 16;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;

/// Entries per chunk of [`Entries`]: 32 KiB of words.
const CHUNK: usize = 4096;

/// A growable array of entries in fixed chunks: growing never copies, so a target's first
/// scrape leaves no freed buffers behind in the guest's memory (which never shrinks), and
/// there is at most one chunk of slack. At 100k series: 800 KB of words, where a doubling
/// vector peaks at 1.5 MB.
#[derive(Debug)]
struct Entries<T> {
    chunks: Vec<Box<[T]>>,
    len: usize,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy + Default> Entries<T> {
    fn get(&self, i: usize) -> Option<T> {
        (i < self.len).then(|| self.chunks[i / CHUNK][i % CHUNK])
    }

    /// Sets entry `i`, which must exist or be the next one; `false` if it is neither.
    fn set(&mut self, i: usize, e: T) -> bool {
        if i > self.len {
            return false;
        }
        if i == self.len {
            if i / CHUNK == self.chunks.len() {
                self.chunks
                    .push(alloc::vec![T::default(); CHUNK].into_boxed_slice());
            }
            self.len += 1;
        }
        self.chunks[i / CHUNK][i % CHUNK] = e;
        true
    }

    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        self.chunks.truncate(self.len.div_ceil(CHUNK));
    }
}

/// What an OpenMetrics line's checks took from more than its own text, as the full parser
/// found it at a position (`openmetrics::OmState::repeat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OmEntry {
    /// The family the line was read in: a fingerprint of its name and type, whose low 16 bits
    /// are replaced by the length of the line's metric name.
    pub(crate) family: u64,
    /// The line's group (series, or histogram or summary instance).
    pub(crate) group: u64,
    /// A bucket's `le`, as bits; 0 for other lines.
    pub(crate) le: u64,
}

/// What a format's `repeat_buffered` made of the next line.
pub(crate) enum Buffered {
    /// Handed on as a repeat; the line took this many bytes with its `\n`.
    Repeated(usize),
    /// Its series text is not the last parse's at this position: for the full parser alone.
    Full,
    /// Something about it is not what this path reads: for the format's `repeat` on the
    /// split line, then the full parser.
    Split,
}

/// Per-position fingerprints of the last parse's series texts.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// Fingerprint (high 48 bits) and length (low 16 bits) of each sample line's series text,
    /// by position; 0 for a line that cannot be repeated.
    entries: Entries<u64>,
    /// For an OpenMetrics parse, what each position's line was read with.
    om: Entries<OmEntry>,
    /// The token of the parse `entries` describes, 0 for none.
    entries_token: u64,
    /// Whether `entries` describe an OpenMetrics parse.
    entries_om: bool,
    /// This parse's token; 0 while replay is off (nothing is fingerprinted).
    token: u64,
    /// Whether this parse reads OpenMetrics.
    parse_om: bool,
    /// Whether this parse may hand on repeats: its `order` is `entries_token`.
    usable: bool,
}

impl Replay {
    /// Starts a parse named `token` (0: replay off) that may repeat the series of parse
    /// `order`.
    pub(crate) fn begin(&mut self, token: u64, order: u64) {
        self.token = token;
        self.usable = token != 0 && order != 0 && order == self.entries_token;
    }

    /// Sets the format of the parse begun: positions of one format are never repeated in the
    /// other.
    pub(crate) fn set_openmetrics(&mut self, om: bool) {
        self.parse_om = om;
        if om != self.entries_om {
            self.usable = false;
        }
    }

    /// Ends a parse of `samples` samples: a successful one with replay on is what the next may
    /// repeat; anything else forgets every position.
    pub(crate) fn end(&mut self, ok: bool, samples: u64) {
        if ok && self.token != 0 {
            let samples = usize::try_from(samples).unwrap_or(usize::MAX);
            self.entries.truncate(samples);
            self.om.truncate(if self.parse_om { samples } else { 0 });
            self.entries_token = self.token;
            self.entries_om = self.parse_om;
        } else {
            self.entries.truncate(0);
            self.om.truncate(0);
            self.entries_token = 0;
        }
        self.token = 0;
        self.usable = false;
    }

    /// Whether this parse may hand on repeats.
    pub(crate) const fn usable(&self) -> bool {
        self.usable
    }

    /// Whether replay is on for this parse (series texts are fingerprinted).
    pub(crate) const fn on(&self) -> bool {
        self.token != 0
    }

    fn entry(series: &[u8]) -> u64 {
        let len = series.len() as u64;
        if len == 0 || len > LEN_MASK {
            return 0;
        }
        let mut f = Fingerprint::new(0);
        f.write(series);
        (f.finish() & !LEN_MASK) | len
    }

    /// The length of the series text that `line` shares with the line at position `i` of
    /// the last parse, when this parse may repeat it and there is something after it.
    pub(crate) fn matches(&self, i: u64, line: &[u8]) -> Option<usize> {
        let (e, len) = self.recorded(i)?;
        (len < line.len() && Self::entry(&line[..len]) == e).then_some(len)
    }

    /// The entry at position `i` and its series text's length, when this parse may repeat
    /// that position.
    fn recorded(&self, i: u64) -> Option<(u64, usize)> {
        if !self.usable {
            return None;
        }
        let e = self.entries.get(usize::try_from(i).ok()?)?;
        #[allow(clippy::cast_possible_truncation)]
        let len = (e & LEN_MASK) as usize;
        (len != 0).then_some((e, len))
    }

    /// [`Replay::matches`] on `rest`, bytes from the start of a line that may stop short of
    /// its end or go on past it, then `read(rest, len)` of what follows a matching series text
    /// of `len` bytes: what it read and the line's length without its `\n`, if `read` found
    /// the line's end and the line is within `max_line_len`. Otherwise what the line needs:
    /// [`Buffered::Full`] when its series text differs, [`Buffered::Split`] when the bytes end
    /// too soon to tell or `read` declined.
    pub(crate) fn read_buffered<T>(
        &self,
        i: u64,
        rest: &[u8],
        max_line_len: usize,
        read: impl FnOnce(&[u8], usize) -> Option<(T, usize)>,
    ) -> Result<(T, usize), Buffered> {
        let Some((e, len)) = self.recorded(i) else {
            return Err(Buffered::Full);
        };
        if len >= rest.len() {
            return Err(Buffered::Split);
        }
        if Self::entry(&rest[..len]) != e {
            return Err(Buffered::Full);
        }
        match read(rest, len) {
            Some((read, line_len)) if line_len <= max_line_len => Ok((read, line_len)),
            _ => Err(Buffered::Split),
        }
    }

    /// What the OpenMetrics line at position `i` of the last parse was read with.
    pub(crate) fn om(&self, i: u64) -> Option<OmEntry> {
        self.om.get(usize::try_from(i).ok()?)
    }

    /// Records the series text of the sample line at position `i`, read by the full parser.
    pub(crate) fn record(&mut self, i: u64, series: &[u8]) {
        if self.token == 0 {
            return;
        }
        let e = Self::entry(series);
        // Positions are recorded in order, so a gap cannot happen; if it did, nothing more of
        // this parse is repeated.
        if !usize::try_from(i).is_ok_and(|i| self.entries.set(i, e)) {
            self.usable = false;
        }
    }

    /// Records an OpenMetrics line at position `i`: its series text, and what it was read
    /// with.
    pub(crate) fn record_om(&mut self, i: u64, series: &[u8], om: OmEntry) {
        if self.token == 0 {
            return;
        }
        self.record(i, series);
        if !usize::try_from(i).is_ok_and(|i| self.om.set(i, om)) {
            self.usable = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_grow_and_shrink_by_chunk() {
        let mut e = Entries::<u64>::default();
        for i in 0..CHUNK + 2 {
            assert!(e.set(i, i as u64 + 1));
        }
        assert!(!e.set(CHUNK + 4, 1));
        assert!(e.set(3, 99));
        assert_eq!((e.len, e.chunks.len()), (CHUNK + 2, 2));
        assert_eq!(e.get(3), Some(99));
        assert_eq!(e.get(CHUNK + 1), Some(CHUNK as u64 + 2));
        assert_eq!(e.get(CHUNK + 2), None);
        e.truncate(CHUNK);
        assert_eq!((e.len, e.chunks.len()), (CHUNK, 1));
        assert_eq!(e.get(CHUNK), None);
        assert!(e.set(CHUNK, 7));
        assert_eq!(e.get(CHUNK), Some(7));
        e.truncate(0);
        assert_eq!((e.len, e.chunks.len()), (0, 0));
    }
}
