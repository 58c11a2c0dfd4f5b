//! The Prometheus text format 0.0.4, as leniently as Prometheus reads it: blank lines and
//! ordinary comments are skipped, blanks may surround tokens, label sets may end with a comma,
//! families need not be grouped, timestamps are integer milliseconds, and there is no `# EOF`.
//! A `\r` before the `\n` is ignored as well.
//!
//! What is still rejected: bad metric or label names, duplicate label names, malformed label
//! values, values and timestamps that are not numbers, and unknown `TYPE`s.

use crate::ctx::{Ctx, SampleLine};
use crate::lex::{self, Cursor};
use crate::replay::Buffered;
use crate::{MetricType, ParseError, Reason, Sink};

/// Hands on a line whose series text repeats the last parse's at this position, before the
/// line's UTF-8 is checked: its series text is the bytes of one that was checked then (a
/// 48-bit fingerprint vouches for it), and the value and timestamp are read only if they are
/// ASCII. `false`: the line is for [`line`].
pub(crate) fn repeat<S: Sink + ?Sized>(
    ctx: &mut Ctx,
    bytes: &[u8],
    line_no: u64,
    sink: &mut S,
) -> Result<bool, ParseError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    if let Some(len) = ctx.replay.matches(ctx.samples, bytes)
        && let Some((value, timestamp_ms)) = repeated(bytes, len)
    {
        ctx.emit_repeat(line_no, value, timestamp_ms, sink)?;
        return Ok(true);
    }
    Ok(false)
}

/// [`repeat`] of the next line, read straight from the bytes buffered from its start on
/// (`rest`, which may end anywhere), so that a repeated line is never split ahead of time: its
/// series text is matched by fingerprint, and the one pass over the value and timestamp finds
/// the line's end. Only lines it reads exactly as [`repeat`] would, within `max_line_len` and
/// ended by a `\n` in `rest`, are handed on; anything else is left to the line's split.
pub(crate) fn repeat_buffered<S: Sink + ?Sized>(
    ctx: &mut Ctx,
    rest: &[u8],
    line_no: u64,
    max_line_len: usize,
    sink: &mut S,
) -> Result<Buffered, ParseError> {
    let ((value, timestamp_ms), line_len) =
        match ctx
            .replay
            .read_buffered(ctx.samples, rest, max_line_len, repeated_buffered)
        {
            Ok(read) => read,
            Err(other) => return Ok(other),
        };
    ctx.emit_repeat(line_no, value, timestamp_ms, sink)?;
    Ok(Buffered::Repeated(line_len + 1))
}

/// [`repeated`] on bytes that go on past the line: the value, the timestamp and the line's
/// length without its `\n` (a `\r` before it included), when the line ends as [`line`] reads
/// it: blanks, then `\n` or `\r\n`.
fn repeated_buffered(rest: &[u8], len: usize) -> Option<((f64, Option<i64>), usize)> {
    let blanks = |mut i: usize| {
        while let Some(b' ' | b'\t') = rest.get(i) {
            i += 1;
        }
        i
    };
    // The line's length if it ends at `i`.
    let end = |i: usize| match rest.get(i) {
        Some(b'\n') => Some(i),
        Some(b'\r') if rest.get(i + 1) == Some(&b'\n') => Some(i + 1),
        _ => None,
    };
    let mut i = blanks(len);
    if rest[len - 1] != b'}' && (i == len || rest.get(i) == Some(&b'{')) {
        return None;
    }
    let (value, n) = crate::decimal::prefix(&rest[i..])?;
    i += n;
    let after = blanks(i);
    if let Some(line_len) = end(after) {
        return Some(((value, None), line_len));
    }
    if after == i {
        // The value runs on into bytes that are not a blank or the line's end.
        return None;
    }
    let (timestamp, n) = crate::decimal::integer_prefix(&rest[after..])?;
    let after = blanks(after + n);
    Some(((value, Some(timestamp)), end(after)?))
}

pub(crate) fn line<S: Sink + ?Sized>(
    ctx: &mut Ctx,
    text: &str,
    line_no: u64,
    sink: &mut S,
) -> Result<(), ParseError> {
    // Exporters on Windows may end lines with CRLF; the `\r` is never meaningful here.
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut cur = Cursor::new(text);
    cur.skip_blanks();
    match cur.peek() {
        None => Ok(()),
        Some(b'#') => {
            cur.i += 1;
            comment(ctx, text, cur, line_no, sink)
        }
        Some(_) => {
            let position = ctx.samples;
            ctx.start_line();
            let (sample, end) =
                sample(ctx, cur).map_err(|r| ParseError::invalid(line_no, r, text))?;
            if ctx.replay.on() {
                ctx.replay.record(position, &text.as_bytes()[..end]);
            }
            ctx.emit(line_no, text, &sample, sink)
        }
    }
}

fn comment<S: Sink + ?Sized>(
    ctx: &mut Ctx,
    text: &str,
    mut cur: Cursor<'_>,
    line_no: u64,
    sink: &mut S,
) -> Result<(), ParseError> {
    let invalid = |r| ParseError::invalid(line_no, r, text);
    cur.skip_blanks();
    let (a, b) = cur.token_until(b" \t");
    let keyword = &text[a..b];
    // Anything but `HELP`/`TYPE` followed by a blank is an ordinary comment.
    if !(keyword == "HELP" || keyword == "TYPE") || !cur.skip_blanks() {
        return Ok(());
    }
    let (na, nb) = lex::metric_name(&mut cur);
    if na == nb || !matches!(cur.peek(), None | Some(b' ' | b'\t')) {
        return Err(invalid(Reason::InvalidMetricName));
    }
    let family = &text[na..nb];
    let sink_err = |source| ParseError::Sink {
        line: line_no,
        source,
    };
    if keyword == "HELP" {
        // Prometheus drops exactly one separating blank and keeps the rest of the line.
        let help = text.get(nb + 1..).unwrap_or("");
        lex::unescape_help(help, false, &mut ctx.help);
        return sink.help(family, &ctx.help).map_err(sink_err);
    }
    cur.skip_blanks();
    let (ta, tb) = cur.token_until(b" \t");
    let metric_type = match &text[ta..tb] {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Unknown,
        _ => return Err(invalid(Reason::InvalidType)),
    };
    cur.skip_blanks();
    if !cur.at_end() {
        return Err(invalid(Reason::TrailingCharacters));
    }
    sink.metric_type(family, metric_type).map_err(sink_err)
}

/// A sample line and where its series text (the name, or the name through the label set's
/// `}`) ends.
fn sample(ctx: &mut Ctx, mut cur: Cursor<'_>) -> Result<(SampleLine, usize), Reason> {
    let name = lex::metric_name(&mut cur);
    if name.0 == name.1 {
        return Err(Reason::InvalidMetricName);
    }
    let mut end = cur.i;
    let blank_after_name = cur.skip_blanks();
    if cur.eat(b'{') {
        lex::label_set(&mut cur, false, &mut ctx.spans, &mut ctx.unescaped)?;
        end = cur.i;
        cur.skip_blanks();
    } else if !blank_after_name {
        return Err(if cur.at_end() {
            Reason::InvalidValue
        } else {
            Reason::InvalidMetricName
        });
    }
    let (value, timestamp_ms) = value_and_timestamp(cur)?;
    Ok((
        SampleLine {
            name,
            labels: ctx.spans.len(),
            value,
            timestamp_ms,
        },
        end,
    ))
}

/// The value and timestamp of a line whose first `len` bytes are a series text the full
/// parser read at this position last time, read as [`sample`] reads them after it; `None`
/// when they do not parse (the full parser then reads the line and names the error).
fn repeated(line: &[u8], len: usize) -> Option<(f64, Option<i64>)> {
    let mut cur = Cursor { s: line, i: len };
    if line[len - 1] == b'}' {
        cur.skip_blanks();
    } else if !cur.skip_blanks() || cur.peek() == Some(b'{') {
        // After a bare name, [`sample`] needs a blank, and reads a label set if one follows.
        return None;
    }
    value_and_timestamp(cur).ok()
}

/// The next token up to a blank, as text; one that is not UTF-8 reads as `"\0"`, which is
/// not a timestamp.
fn token<'a>(cur: &mut Cursor<'a>) -> &'a str {
    let (a, b) = cur.token_until(b" \t");
    core::str::from_utf8(&cur.s[a..b]).unwrap_or("\0")
}

/// What follows the series text, from the value on.
fn value_and_timestamp(mut cur: Cursor<'_>) -> Result<(f64, Option<i64>), Reason> {
    let (a, b) = cur.token_until(b" \t");
    let value = lex::number_bytes(&cur.s[a..b]).ok_or(Reason::InvalidValue)?;
    cur.skip_blanks();
    let mut timestamp_ms = None;
    if !cur.at_end() {
        let token = token(&mut cur);
        if token.starts_with('#') {
            return Err(Reason::ExemplarNotAllowed);
        }
        timestamp_ms = Some(lex::text_timestamp(token).ok_or(Reason::InvalidTimestamp)?);
        cur.skip_blanks();
        if !cur.at_end() {
            return Err(Reason::TrailingCharacters);
        }
    }
    Ok((value, timestamp_ms))
}
