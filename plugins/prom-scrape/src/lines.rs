//! Splitting a body into lines, either from memory ([`SliceLines`], no copy) or from an
//! `embedded_io::Read` ([`ReaderLines`], through a buffer that never grows past one line).
//!
//! Both sources apply the same limits with the same errors and line numbers, so a body parses
//! identically whichever way, and however a reader happens to chunk it.

use alloc::vec::Vec;

use embedded_io::{Error as _, ErrorKind, Read};

use crate::ParseError;
use crate::scan::find_newline;

/// One line, without its `\n`.
pub(crate) struct Line<'a> {
    pub(crate) bytes: &'a [u8],
    /// 1-based.
    pub(crate) number: u64,
}

/// A source of lines.
pub(crate) trait LineSource {
    fn next_line(&mut self) -> Result<Option<Line<'_>>, ParseError>;
    /// Lines returned so far.
    fn lines(&self) -> u64;
    /// The bytes at hand from the start of the next line on: none, part or all of it, and
    /// maybe lines after it.
    fn buffered(&self) -> &[u8];
    /// Takes the first `n` bytes of [`LineSource::buffered`] as the next line, read by the
    /// caller: they end with its `\n`, and the line is within the length limit.
    fn skip_line(&mut self, n: usize);
    /// Bytes consumed so far.
    fn bytes(&self) -> u64;
}

/// Lines of a body held in memory.
pub(crate) struct SliceLines<'a> {
    body: &'a [u8],
    /// The limit, if the body exceeds it.
    over_limit: Option<u64>,
    pos: usize,
    line: u64,
    max_line_len: usize,
}

impl<'a> SliceLines<'a> {
    pub(crate) fn new(body: &'a [u8], max_line_len: usize, body_size_limit: Option<u64>) -> Self {
        // Only the bytes within the limit are looked at, as a reader stops at the limit too.
        let over_limit = body_size_limit.filter(|&limit| body.len() as u64 > limit);
        SliceLines {
            // The limit is below `body.len()` here, so it fits in `usize`.
            body: over_limit.map_or(body, |limit| &body[..limit as usize]),
            over_limit,
            pos: 0,
            line: 0,
            max_line_len,
        }
    }
}

impl LineSource for SliceLines<'_> {
    fn next_line(&mut self) -> Result<Option<Line<'_>>, ParseError> {
        let rest = &self.body[self.pos..];
        let (bytes, terminated) = match find_newline(rest) {
            Some(i) => (&rest[..i], true),
            None => {
                if rest.len() > self.max_line_len {
                    return Err(ParseError::LineTooLong {
                        line: self.line + 1,
                        max: self.max_line_len,
                    });
                }
                if let Some(limit) = self.over_limit {
                    return Err(ParseError::BodySizeLimit { limit });
                }
                if rest.is_empty() {
                    return Ok(None);
                }
                (rest, false)
            }
        };
        self.line += 1;
        if bytes.len() > self.max_line_len {
            return Err(ParseError::LineTooLong {
                line: self.line,
                max: self.max_line_len,
            });
        }
        self.pos += bytes.len() + usize::from(terminated);
        Ok(Some(Line {
            bytes,
            number: self.line,
        }))
    }

    fn lines(&self) -> u64 {
        self.line
    }

    fn buffered(&self) -> &[u8] {
        &self.body[self.pos..]
    }

    fn skip_line(&mut self, n: usize) {
        self.line += 1;
        self.pos += n;
    }

    fn bytes(&self) -> u64 {
        self.pos as u64
    }
}

/// Smallest buffer worth reading into; most lines are far shorter, so a line-sized buffer would
/// mean one `read` call per line.
const MIN_BUFFER: usize = 8 * 1024;

/// Lines of a body read in chunks. The buffer holds at most one line and its `\n` (or
/// [`MIN_BUFFER`] bytes, whichever is larger), so memory is bounded whatever the body size.
pub(crate) struct ReaderLines<'b, R> {
    reader: R,
    buf: &'b mut Vec<u8>,
    /// Unconsumed data is `buf[start..end]`.
    start: usize,
    end: usize,
    /// `buf[start..scanned]` is known to hold no `\n`.
    scanned: usize,
    eof: bool,
    /// Set once the reader offered bytes beyond the body size limit; they are dropped.
    over_limit: bool,
    total: u64,
    consumed: u64,
    line: u64,
    max_line_len: usize,
    body_size_limit: Option<u64>,
}

impl<'b, R: Read> ReaderLines<'b, R> {
    pub(crate) fn new(
        reader: R,
        buf: &'b mut Vec<u8>,
        max_line_len: usize,
        body_size_limit: Option<u64>,
    ) -> Self {
        let cap = max_line_len.saturating_add(1).max(MIN_BUFFER);
        if buf.len() > cap {
            buf.truncate(cap);
            buf.shrink_to(cap);
        }
        ReaderLines {
            reader,
            buf,
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            over_limit: false,
            total: 0,
            consumed: 0,
            line: 0,
            max_line_len,
            body_size_limit,
        }
    }

    fn capacity_limit(&self) -> usize {
        self.max_line_len.saturating_add(1).max(MIN_BUFFER)
    }

    /// Makes room after `end` (moving the partial line to the front, growing up to the limit)
    /// and reads once.
    fn fill(&mut self) -> Result<(), ParseError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let limit = self.capacity_limit();
            let grown = (self.buf.len() * 2).clamp(MIN_BUFFER.min(limit), limit);
            // The pending partial line already fills the largest buffer allowed; the caller
            // reported it as too long before calling, so this is only a guard.
            if grown <= self.buf.len() {
                return Err(ParseError::LineTooLong {
                    line: self.line + 1,
                    max: self.max_line_len,
                });
            }
            self.buf.resize(grown, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(mut n) => {
                    if let Some(limit) = self.body_size_limit {
                        // Keep only the bytes within the limit, so lines before it parse as
                        // they would from a slice, whatever the chunking.
                        let allowed = limit - self.total;
                        if n as u64 > allowed {
                            n = allowed as usize;
                            self.over_limit = true;
                        }
                    }
                    self.end += n;
                    self.total += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ParseError::Io {
                        bytes: self.total,
                        kind: e.kind(),
                    });
                }
            }
        }
    }
}

impl<R: Read> LineSource for ReaderLines<'_, R> {
    fn next_line(&mut self) -> Result<Option<Line<'_>>, ParseError> {
        loop {
            if let Some(i) = find_newline(&self.buf[self.scanned..self.end]) {
                let nl = self.scanned + i;
                self.line += 1;
                if nl - self.start > self.max_line_len {
                    return Err(ParseError::LineTooLong {
                        line: self.line,
                        max: self.max_line_len,
                    });
                }
                let start = self.start;
                self.start = nl + 1;
                self.scanned = self.start;
                self.consumed += (nl + 1 - start) as u64;
                return Ok(Some(Line {
                    bytes: &self.buf[start..nl],
                    number: self.line,
                }));
            }
            self.scanned = self.end;
            if self.end - self.start > self.max_line_len {
                return Err(ParseError::LineTooLong {
                    line: self.line + 1,
                    max: self.max_line_len,
                });
            }
            if let (true, Some(limit)) = (self.over_limit, self.body_size_limit) {
                return Err(ParseError::BodySizeLimit { limit });
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                self.line += 1;
                let start = self.start;
                self.start = self.end;
                self.consumed += (self.end - start) as u64;
                return Ok(Some(Line {
                    bytes: &self.buf[start..self.end],
                    number: self.line,
                }));
            }
            self.fill()?;
        }
    }

    fn lines(&self) -> u64 {
        self.line
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn skip_line(&mut self, n: usize) {
        self.line += 1;
        self.start += n;
        self.scanned = self.scanned.max(self.start);
        self.consumed += n as u64;
    }

    fn bytes(&self) -> u64 {
        self.consumed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_newline_matches_position_everywhere() {
        let mut hay = [b'a'; 40];
        assert_eq!(find_newline(&hay), None);
        for i in 0..hay.len() {
            hay[i] = b'\n';
            assert_eq!(find_newline(&hay), Some(i), "newline at {i}");
            // A byte just above '\n' must not be mistaken for it.
            hay[i] = b'\x0b';
            assert_eq!(find_newline(&hay), None);
            hay[i] = b'a';
        }
        let tricky = b"\x0b\x0a\x09\x0b";
        assert_eq!(find_newline(tricky), Some(1));
        let high = [0x8au8, 0x0a];
        assert_eq!(find_newline(&high), Some(1));
    }
}
