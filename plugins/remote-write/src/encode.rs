//! The request writer: an [`ExportBatch`] to uncompressed remote write 1.0 or 2.0 requests.
//!
//! # Design
//! Requests are written straight from the batch's borrowed label bytes: every message length is
//! computed before the message is written, so each series is written once, in place, with no
//! intermediate message structs (building [`crate::proto`] values would copy every label name
//! and value into its own `String`). The bytes are exactly what `prost` writes for the
//! equivalent [`crate::proto`] value (fields in tag order, proto3 defaults omitted, repeated
//! numbers packed), with one exception: a value of `-0.0` is written, where `prost` and Go's
//! gogo code omit it as equal to the default, so a decoder gets the sign back.
//!
//! The batch is read either decoded ([`encode_full`]) or where it lies ([`encode_raw`]): a
//! [`RawExportBatch`] hands out label names and values as the host encoded them, which saves
//! building a `Label` per label and checking its UTF-8 again (the host only stores UTF-8, and
//! a remote write receiver checks it).
//!
//! Splitting: with a size limit, the writer knows each series' encoded size (for 2.0 including
//! the symbols it adds) before writing it, and starts a new request when the series would
//! take the current one past the limit. A series is never split, so a series larger than the
//! limit travels alone. Each 2.0 request has its own symbol table.
//!
//! # Label sets
//! Remote write wants labels sorted by name, unique, with no empty names or values. The host
//! hands them that way; the writer checks it per series (one comparison per label) and:
//! - sorts labels that arrive out of order;
//! - drops labels with an empty value, which Prometheus treats as absent;
//! - refuses, with [`Error::InvalidSeries`], a repeated or empty label name, which has no
//!   faithful repair.
//!
//! Series without points are skipped unless they carry exemplars (a batch may hold a scrape's
//! exemplars and not its samples); Prometheus adds an exemplar to a series it holds.
//!
//! # Metadata (2.0)
//! With a [`MetadataIndex`] ([`encode_with`]), each 2.0 series whose family is known carries
//! `metadata` (type, and its help and unit as symbol references); a series of an unknown
//! family carries none, which a receiver reads as unspecified. 1.0 sends metadata apart.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroUsize;

use magpie_sdk::abi::raw::{RawExportBatch, RawSeriesIter};
use magpie_sdk::abi::{ExportBatch, ExportExemplar, Point, SeriesRef};
use prost::encoding::encoded_len_varint;

use crate::meta::{MetadataIndex, SeriesMeta};

mod exemplars;
use crate::{Config, Error, Protocol};
use exemplars::BySeries;

/// One request as written, before compression.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The protobuf message.
    pub body: Vec<u8>,
    /// Samples it carries; the requests of a batch carry its samples in order.
    pub samples: u32,
}

// Field keys, `(field number << 3) | wire type`; all fit one byte.
/// `WriteRequest.timeseries = 1`, length-delimited.
const V1_TIMESERIES: u8 = (1 << 3) | 2;
/// `TimeSeries.labels = 1`, length-delimited.
const V1_LABELS: u8 = (1 << 3) | 2;
/// `TimeSeries.samples = 2` (both versions), length-delimited.
const SAMPLES: u8 = (2 << 3) | 2;
/// `Label.name = 1`, length-delimited.
const LABEL_NAME: u8 = (1 << 3) | 2;
/// `Label.value = 2`, length-delimited.
const LABEL_VALUE: u8 = (2 << 3) | 2;
/// `Sample.value = 1`, 64-bit.
const SAMPLE_VALUE: u8 = (1 << 3) | 1;
/// `Sample.timestamp = 2`, varint.
const SAMPLE_TIMESTAMP: u8 = 2 << 3;
/// `Request.symbols = 4`, length-delimited.
const V2_SYMBOLS: u8 = (4 << 3) | 2;
/// `Request.timeseries = 5`, length-delimited.
const V2_TIMESERIES: u8 = (5 << 3) | 2;
/// `TimeSeries.labels_refs = 1`, packed (length-delimited).
const V2_LABELS_REFS: u8 = (1 << 3) | 2;
/// `TimeSeries.metadata = 5`, length-delimited.
const V2_METADATA: u8 = (5 << 3) | 2;
/// `Metadata.type = 1`, varint.
const V2_META_TYPE: u8 = 1 << 3;
/// `Metadata.help_ref = 3`, varint.
const V2_META_HELP: u8 = 3 << 3;
/// `Metadata.unit_ref = 4`, varint.
const V2_META_UNIT: u8 = 4 << 3;

/// Encodes `batch` into one request, or several when `config.max_payload_bytes` is set and
/// one would be larger. An empty batch gives no request.
///
/// # Errors
/// [`Error::InconsistentBatch`] when the series heads do not add up to the batch's lists,
/// [`Error::InvalidSeries`] for a repeated or empty label name, [`Error::TooLarge`] past the
/// `u32` counts of the wire format.
pub fn encode(batch: &ExportBatch<'_>, config: &Config) -> Result<Vec<Request>, Error> {
    encode_with(batch, config, &MetadataIndex::default())
}

/// As [`encode()`], and in 2.0 every series whose family `metadata` knows carries its type,
/// help and unit.
///
/// # Errors
/// As [`encode()`].
pub fn encode_with(
    batch: &ExportBatch<'_>,
    config: &Config,
    metadata: &MetadataIndex,
) -> Result<Vec<Request>, Error> {
    if !batch.is_consistent() {
        return Err(Error::InconsistentBatch {
            labels: batch.labels.len(),
            points: batch.points.len(),
        });
    }
    encode_full(batch, &[], config, metadata)
}

/// As [`encode_with`], with the batch's exemplars (each naming its series by index in the
/// batch). A series without samples is sent when it has exemplars.
///
/// # Errors
/// As [`encode`].
pub fn encode_full<'b>(
    batch: &'b ExportBatch<'_>,
    exemplars: &'b [ExportExemplar<'b>],
    config: &Config,
    metadata: &'b MetadataIndex,
) -> Result<Vec<Request>, Error> {
    if !batch.is_consistent() {
        return Err(Error::InconsistentBatch {
            labels: batch.labels.len(),
            points: batch.points.len(),
        });
    }
    write(Decoded(batch.series()), exemplars, config, metadata)
}

/// As [`encode_full`], for a batch read where it lies: the same requests, byte for byte, from
/// the label bytes as the host wrote them (the host's framing and counts are checked by
/// [`RawExportBatch`]; strings are not checked for UTF-8).
///
/// # Errors
/// As [`encode`], but for [`Error::InconsistentBatch`], which [`RawExportBatch`] has refused.
pub fn encode_raw<'b>(
    batch: &RawExportBatch<'b>,
    exemplars: &'b [ExportExemplar<'b>],
    config: &Config,
    metadata: &'b MetadataIndex,
) -> Result<Vec<Request>, Error> {
    write(batch.series(), exemplars, config, metadata)
}

fn write<'b>(
    source: impl Source<'b>,
    exemplars: &'b [ExportExemplar<'b>],
    config: &Config,
    metadata: &'b MetadataIndex,
) -> Result<Vec<Request>, Error> {
    let ex = if exemplars.is_empty() {
        BySeries::default()
    } else {
        BySeries::new(exemplars)
    };
    match config.protocol {
        Protocol::V1 => encode_v1(source, config.max_payload_bytes, &ex),
        Protocol::V2 => encode_v2(source, config.max_payload_bytes, metadata, &ex),
    }
}

/// A label pair's name and value as bytes.
type Pair<'b> = (&'b [u8], &'b [u8]);

/// Where the writer reads series from.
trait Source<'b> {
    /// Fills `labels` with the next series' label pairs as given and `points` with its points;
    /// `false` after the last series.
    fn next_series(&mut self, labels: &mut Vec<Pair<'b>>, points: &mut Vec<Point>) -> bool;
}

/// The series of a decoded batch.
struct Decoded<I>(I);

impl<'b, 'a: 'b, I: Iterator<Item = SeriesRef<'b, 'a>>> Source<'b> for Decoded<I> {
    fn next_series(&mut self, labels: &mut Vec<Pair<'b>>, points: &mut Vec<Point>) -> bool {
        let Some(series) = self.0.next() else {
            return false;
        };
        labels.clear();
        labels.extend(
            series
                .labels
                .iter()
                .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
        );
        points.clear();
        points.extend_from_slice(series.points);
        true
    }
}

impl<'b> Source<'b> for RawSeriesIter<'b> {
    fn next_series(&mut self, labels: &mut Vec<Pair<'b>>, points: &mut Vec<Point>) -> bool {
        self.next_into(labels, points)
    }
}

fn encode_v1<'b>(
    mut source: impl Source<'b>,
    max: Option<NonZeroUsize>,
    ex: &BySeries<'_>,
) -> Result<Vec<Request>, Error> {
    let mut requests = Vec::new();
    let mut current = Request::default();
    let mut labels = Vec::new();
    let mut points = Vec::new();
    for i in 0.. {
        if !source.next_series(&mut labels, &mut points) {
            break;
        }
        let ex = ex.of(i);
        if points.is_empty() && ex.is_empty() {
            continue;
        }
        normalize(i, &mut labels)?;
        let series_len = v1_series_len(&labels, &points) + exemplars::v1_len(ex);
        let added = field_len(series_len);
        if !current.body.is_empty() && over(current.body.len() + added, max) {
            requests.push(std::mem::take(&mut current));
        }
        let out = &mut current.body;
        out.reserve(added);
        out.push(V1_TIMESERIES);
        put_varint(out, series_len);
        for &(name, value) in &labels {
            out.push(V1_LABELS);
            put_varint(out, field_len(name.len()) + field_len(value.len()));
            put_str(out, LABEL_NAME, name);
            put_str(out, LABEL_VALUE, value);
        }
        put_samples(out, &points);
        exemplars::put_v1(out, ex);
        current.samples = add_samples(current.samples, points.len())?;
    }
    if !current.body.is_empty() {
        requests.push(current);
    }
    Ok(requests)
}

fn encode_v2<'b>(
    mut source: impl Source<'b>,
    max: Option<NonZeroUsize>,
    metadata: &'b MetadataIndex,
    ex: &BySeries<'b>,
) -> Result<Vec<Request>, Error> {
    let mut requests = Vec::new();
    let mut symbols = Symbols::new();
    // The current request's `timeseries` entries; its symbols are only complete at the end,
    // and they come first in the message.
    let mut series_out = Vec::new();
    let mut samples = 0u32;
    let mut labels = Vec::new();
    let mut points = Vec::new();
    let mut refs = Vec::new();
    for i in 0.. {
        if !source.next_series(&mut labels, &mut points) {
            break;
        }
        let ex = ex.of(i);
        if points.is_empty() && ex.is_empty() {
            continue;
        }
        normalize(i, &mut labels)?;
        let meta = if metadata.is_empty() {
            None
        } else {
            labels
                .iter()
                .find(|l| l.0 == b"__name__")
                .and_then(|l| std::str::from_utf8(l.1).ok())
                .and_then(|name| metadata.lookup(name))
        };
        let mark = symbols.mark();
        symbols.intern_all(&labels, &mut refs)?;
        let mut meta_refs = intern_meta(&mut symbols, meta)?;
        let mut ex_refs = exemplars::intern_v2(&mut symbols, ex)?;
        let mut series_len =
            v2_series_len(&refs, &points) + exemplars::v2_len(&ex_refs, ex) + meta_len(meta_refs);
        let size_after = symbols.bytes + series_out.len() + field_len(series_len);
        if !series_out.is_empty() && over(size_after, max) {
            symbols.rollback(mark);
            requests.push(Request {
                body: symbols.finish(&series_out),
                samples,
            });
            series_out.clear();
            samples = 0;
            symbols.rollback(1);
            symbols.intern_all(&labels, &mut refs)?;
            meta_refs = intern_meta(&mut symbols, meta)?;
            ex_refs = exemplars::intern_v2(&mut symbols, ex)?;
            series_len = v2_series_len(&refs, &points)
                + exemplars::v2_len(&ex_refs, ex)
                + meta_len(meta_refs);
        }
        series_out.reserve(field_len(series_len));
        series_out.push(V2_TIMESERIES);
        put_varint(&mut series_out, series_len);
        if !refs.is_empty() {
            series_out.push(V2_LABELS_REFS);
            put_varint(&mut series_out, packed_len(&refs));
            for &r in &refs {
                put_u64(&mut series_out, u64::from(r));
            }
        }
        put_samples(&mut series_out, &points);
        exemplars::put_v2(&mut series_out, &ex_refs, ex);
        put_meta(&mut series_out, meta_refs);
        samples = add_samples(samples, points.len())?;
    }
    if !series_out.is_empty() {
        requests.push(Request {
            body: symbols.finish(&series_out),
            samples,
        });
    }
    Ok(requests)
}

/// A series' `Metadata` as numbers: type, help ref, unit ref.
type MetaRefs = Option<(u64, u32, u32)>;

fn intern_meta<'b>(
    symbols: &mut Symbols<'b>,
    meta: Option<&'b SeriesMeta>,
) -> Result<MetaRefs, Error> {
    let Some(m) = meta else { return Ok(None) };
    let kind = crate::metric_type_v1(m.kind);
    let help = symbols.intern(m.help.as_bytes())?;
    let unit = symbols.intern(m.unit.as_bytes())?;
    #[allow(clippy::cast_sign_loss)] // The types are 0..=7.
    Ok(Some((kind as u64, help, unit)))
}

/// The `Metadata` message's fields, proto3 zeros omitted.
fn meta_fields(refs: (u64, u32, u32)) -> [(u8, u64); 3] {
    [
        (V2_META_TYPE, refs.0),
        (V2_META_HELP, u64::from(refs.1)),
        (V2_META_UNIT, u64::from(refs.2)),
    ]
}

fn meta_body_len(refs: (u64, u32, u32)) -> usize {
    meta_fields(refs)
        .iter()
        .filter(|f| f.1 != 0)
        .map(|f| 1 + encoded_len_varint(f.1))
        .sum()
}

/// Bytes the `metadata` field adds to a series; none when unknown or all zero.
fn meta_len(refs: MetaRefs) -> usize {
    match refs {
        Some(r) if meta_body_len(r) > 0 => field_len(meta_body_len(r)),
        _ => 0,
    }
}

fn put_meta(out: &mut Vec<u8>, refs: MetaRefs) {
    let Some(r) = refs else { return };
    let len = meta_body_len(r);
    if len == 0 {
        return;
    }
    out.push(V2_METADATA);
    put_varint(out, len);
    for (key, v) in meta_fields(r) {
        if v != 0 {
            out.push(key);
            put_u64(out, v);
        }
    }
}

/// Whether a request of `len` bytes is past the limit.
fn over(len: usize, max: Option<NonZeroUsize>) -> bool {
    max.is_some_and(|m| len > m.get())
}

fn add_samples(samples: u32, more: usize) -> Result<u32, Error> {
    u32::try_from(more)
        .ok()
        .and_then(|m| samples.checked_add(m))
        .ok_or(Error::TooLarge {
            what: "samples in one payload",
        })
}

/// Makes a series' labels ready to write: sorted by name (bytewise, as strings compare),
/// without empty values.
fn normalize(series: usize, labels: &mut Vec<Pair<'_>>) -> Result<(), Error> {
    if labels.iter().any(|l| l.1.is_empty()) {
        labels.retain(|l| !l.1.is_empty());
    }
    // Strictly increasing names are both sorted and unique: the common case costs one
    // comparison per label, nearly always of first bytes alone.
    if !labels.windows(2).all(|w| name_lt(w[0].0, w[1].0)) {
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if labels.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(invalid(series, labels, "repeated label name"));
        }
    }
    // An empty name sorts first.
    if labels.first().is_some_and(|l| l.0.is_empty()) {
        return Err(invalid(series, labels, "empty label name"));
    }
    Ok(())
}

/// `a < b` as byte strings, without a `memcmp` call when the first bytes differ.
#[inline]
fn name_lt(a: &[u8], b: &[u8]) -> bool {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

fn invalid(series: usize, labels: &[Pair<'_>], reason: &'static str) -> Error {
    let name = labels
        .iter()
        .find(|l| l.0 == b"__name__")
        .map(|l| String::from_utf8_lossy(l.1).into_owned())
        .unwrap_or_default();
    Error::InvalidSeries {
        series,
        name,
        reason,
    }
}

/// A 2.0 request's symbol table. Keys borrow from the batch, so a table lives for one call.
struct Symbols<'b> {
    index: HashMap<&'b [u8], u32, BuildHasherDefault<FxHasher>>,
    list: Vec<&'b [u8]>,
    /// Encoded size of the `symbols` field entries.
    bytes: usize,
    /// The previous series' strings and their indexes, position by position. Neighbouring
    /// series mostly share label names and many values (`instance`, `job`), and comparing
    /// with the string at the same position is cheaper than hashing it.
    last: Vec<(&'b [u8], u32)>,
}

impl<'b> Symbols<'b> {
    fn new() -> Self {
        let mut s = Self {
            index: HashMap::default(),
            list: Vec::new(),
            bytes: 0,
            last: Vec::new(),
        };
        // The spec reserves index 0 for the empty string.
        s.list.push(b"");
        s.index.insert(b"", 0);
        s.bytes = field_len(0);
        s
    }

    /// A point to roll back to.
    fn mark(&self) -> usize {
        self.list.len()
    }

    /// Forgets the symbols added since `mark` (1 forgets all but `""`).
    fn rollback(&mut self, mark: usize) {
        // The cache may name forgotten symbols.
        self.last.clear();
        for s in self.list.drain(mark..) {
            self.index.remove(s);
            self.bytes -= field_len(s.len());
        }
    }

    fn intern(&mut self, s: &'b [u8]) -> Result<u32, Error> {
        if let Some(&i) = self.index.get(s) {
            return Ok(i);
        }
        let i = u32::try_from(self.list.len()).map_err(|_| Error::TooLarge {
            what: "symbols in one request",
        })?;
        self.list.push(s);
        self.index.insert(s, i);
        self.bytes += field_len(s.len());
        Ok(i)
    }

    fn intern_all(&mut self, labels: &[Pair<'b>], refs: &mut Vec<u32>) -> Result<(), Error> {
        refs.clear();
        for (k, s) in labels.iter().flat_map(|&(n, v)| [n, v]).enumerate() {
            let r = match self.last.get(k) {
                Some(&(prev, r)) if prev == s => r,
                _ => {
                    let r = self.intern(s)?;
                    if k < self.last.len() {
                        self.last[k] = (s, r);
                    } else {
                        self.last.push((s, r));
                    }
                    r
                }
            };
            refs.push(r);
        }
        Ok(())
    }

    /// The request: the symbols, then the series written so far.
    fn finish(&self, series: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.bytes + series.len());
        for s in &self.list {
            put_str(&mut body, V2_SYMBOLS, s);
        }
        body.extend_from_slice(series);
        body
    }
}

/// FxHash (rustc's hasher). Fixed keys: wasm32-unknown-unknown has no entropy source for
/// std's `RandomState`, and a table lives for one batch, bounded by its size.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Size of a length-delimited field (one-byte key) whose content is `len` bytes.
fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

#[inline]
fn put_varint(out: &mut Vec<u8>, v: usize) {
    put_u64(out, v as u64);
}

/// Writes `v` as a protobuf varint. prost's `encode_varint` writes through `BufMut` and is
/// not inlined; this one is, and most varints here are one byte.
#[inline]
pub(crate) fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, key: u8, s: &[u8]) {
    out.push(key);
    put_varint(out, s.len());
    out.extend_from_slice(s);
}

/// Size of a `Sample` message: proto3 omits `+0.0` and a zero timestamp.
fn sample_len(p: &Point) -> usize {
    let value = if p.v.to_bits() == 0 { 0 } else { 9 };
    #[allow(clippy::cast_sign_loss)] // int64 is written as its two's complement, 10 bytes if < 0.
    let time = if p.t == 0 {
        0
    } else {
        1 + encoded_len_varint(p.t as u64)
    };
    value + time
}

fn samples_len(points: &[Point]) -> usize {
    points.iter().map(|p| field_len(sample_len(p))).sum()
}

fn put_samples(out: &mut Vec<u8>, points: &[Point]) {
    for p in points {
        out.push(SAMPLES);
        put_varint(out, sample_len(p));
        if p.v.to_bits() != 0 {
            out.push(SAMPLE_VALUE);
            out.extend_from_slice(&p.v.to_bits().to_le_bytes());
        }
        if p.t != 0 {
            out.push(SAMPLE_TIMESTAMP);
            #[allow(clippy::cast_sign_loss)]
            put_u64(out, p.t as u64);
        }
    }
}

fn v1_series_len(labels: &[Pair<'_>], points: &[Point]) -> usize {
    let labels: usize = labels
        .iter()
        .map(|(n, v)| field_len(field_len(n.len()) + field_len(v.len())))
        .sum();
    labels + samples_len(points)
}

fn packed_len(refs: &[u32]) -> usize {
    refs.iter().map(|&r| encoded_len_varint(u64::from(r))).sum()
}

fn v2_series_len(refs: &[u32], points: &[Point]) -> usize {
    let refs = if refs.is_empty() {
        0
    } else {
        field_len(packed_len(refs))
    };
    refs + samples_len(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<Pair<'a>> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn normalize_sorts_and_refuses_as_a_sort_would(
            pairs in proptest::collection::vec(("[_ab]{0,3}", "[x]{0,1}"), 0..6),
        ) {
            let mut l: Vec<Pair<'_>> =
                pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
            let mut want: Vec<Pair<'_>> = l.iter().copied().filter(|p| !p.1.is_empty()).collect();
            want.sort_by(|a, b| a.0.cmp(b.0));
            let refused = want.windows(2).any(|w| w[0].0 == w[1].0)
                || want.first().is_some_and(|p| p.0.is_empty());
            match normalize(0, &mut l) {
                Ok(()) => {
                    proptest::prop_assert!(!refused);
                    proptest::prop_assert_eq!(l, want);
                }
                Err(_) => proptest::prop_assert!(refused),
            }
        }
    }

    #[test]
    fn sorted_labels_pass_through() {
        let want = [("__name__", "up"), ("instance", "a"), ("job", "node")];
        let mut l = labels(&want);
        normalize(0, &mut l).unwrap();
        assert_eq!(l, labels(&want));
    }

    #[test]
    fn unsorted_labels_are_sorted_and_empty_values_dropped() {
        let mut l = labels(&[
            ("job", "node"),
            ("zone", ""),
            ("__name__", "up"),
            ("a", "1"),
        ]);
        normalize(0, &mut l).unwrap();
        assert_eq!(
            l,
            labels(&[("__name__", "up"), ("a", "1"), ("job", "node")])
        );
    }

    #[test]
    fn repeated_and_empty_names_are_refused_with_the_series_name() {
        let mut l = labels(&[("__name__", "up"), ("job", "a"), ("job", "b")]);
        assert_eq!(
            normalize(7, &mut l),
            Err(Error::InvalidSeries {
                series: 7,
                name: "up".into(),
                reason: "repeated label name"
            })
        );
        // Out of order as well as repeated.
        let mut l = labels(&[("job", "a"), ("__name__", "up"), ("job", "b")]);
        assert!(normalize(0, &mut l).is_err());
        let mut l = labels(&[("", "x"), ("__name__", "up")]);
        assert_eq!(
            normalize(1, &mut l),
            Err(Error::InvalidSeries {
                series: 1,
                name: "up".into(),
                reason: "empty label name"
            })
        );
    }

    #[test]
    fn symbols_roll_back_exactly() {
        let mut s = Symbols::new();
        let mut refs = Vec::new();
        s.intern_all(&labels(&[("__name__", "up")]), &mut refs)
            .unwrap();
        assert_eq!(refs, [1, 2]);
        let (mark, bytes) = (s.mark(), s.bytes);
        s.intern_all(&labels(&[("__name__", "down"), ("job", "up")]), &mut refs)
            .unwrap();
        assert_eq!(refs, [1, 3, 4, 2]);
        s.rollback(mark);
        assert_eq!((s.list.len(), s.bytes), (3, bytes));
        assert_eq!(s.index.len(), 3);
        s.rollback(1);
        assert_eq!((s.list.len(), s.bytes, s.index.len()), (1, 2, 1));
    }

    #[test]
    fn sizes_match_the_bytes_written() {
        for p in [
            Point { t: 0, v: 0.0 },
            Point { t: 1, v: -0.0 },
            Point { t: -1, v: 1.5 },
            Point {
                t: i64::MAX,
                v: f64::NAN,
            },
        ] {
            let mut out = Vec::new();
            put_samples(&mut out, &[p]);
            assert_eq!(out.len(), samples_len(&[p]), "{p:?}");
        }
    }
}
