//! Batches read where they lie, without decoding their strings.
//!
//! Decoding a [`SampleBatch`] or an [`ExportBatch`] builds a 48-byte [`Label`] per label and
//! checks every string's UTF-8. A reader that only copies the strings, or keys series by their
//! encoded bytes, needs neither: the host reads a scrape's samples with [`RawSampleBatch`]
//! (its series cache looks at the strings only for a series it has not seen), and an exporter
//! reads its batch with [`RawExportRequest`] (a remote write request carries the host's label
//! bytes as they are). Both check the framing and counts up front, as strictly as postcard's
//! decoding and `is_consistent` do, and hand out strings as bytes; [`RawSample::name`] and
//! [`RawLabels::decode`] check UTF-8 when asked.

use super::{ExportExemplar, Label, Point, SampleBatch};
use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[cfg(doc)]
use super::{ExportBatch, ExportRequest};

/// A postcard [`SampleBatch`] whose framing and label counts were checked; strings unchecked.
#[derive(Debug, Clone, Copy)]
pub struct RawSampleBatch<'a> {
    /// The whole encoding, for sinks that decode it.
    bytes: &'a [u8],
    /// The label list's pairs.
    labels: &'a [u8],
    /// The samples' encodings.
    samples: &'a [u8],
    len: usize,
}

/// A string that is not UTF-8 in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// One sample of a [`RawSampleBatch`].
#[derive(Debug, Clone, Copy)]
pub struct RawSample<'a> {
    name: &'a [u8],
    /// Its labels.
    pub labels: RawLabels<'a>,
    /// The value, bit-exact.
    pub value: f64,
    /// Unix ms from the exposition, `None` for "the scrape time".
    pub timestamp_ms: Option<i64>,
}

/// A sample's or series' label pairs as encoded: per label a varint length and the name, a varint length
/// and the value.
#[derive(Debug, Clone, Copy)]
pub struct RawLabels<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> RawSampleBatch<'a> {
    /// Checks the framing of an encoded [`SampleBatch`]: every length within the input, varints
    /// in range, option tags 0 or 1, and label counts that add up to the label list. Bytes
    /// after the batch are ignored, as postcard ignores them.
    ///
    /// # Errors
    /// What is wrong with the framing.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, &'static str> {
        let mut p = bytes;
        let label_count = varint(&mut p).ok_or("bad label count")?;
        if label_count > p.len() as u64 {
            return Err("more labels than bytes");
        }
        let labels =
            strings(&mut p, label_count * 2).ok_or("a label string runs past the batch")?;
        let len = varint(&mut p).ok_or("bad sample count")?;
        if len > p.len() as u64 {
            return Err("more samples than bytes");
        }
        let samples = p;
        let mut total = 0u64;
        for _ in 0..len {
            let s = sample(&mut p).ok_or("a sample runs past the batch")?;
            total += u64::from(s.0);
        }
        if total != label_count {
            return Err("label counts do not match the label list");
        }
        Ok(Self {
            bytes,
            labels,
            samples: &samples[..samples.len() - p.len()],
            #[allow(clippy::cast_possible_truncation)]
            len: len as usize,
        })
    }

    /// Number of samples.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no sample.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The batch decoded, every string checked.
    ///
    /// # Errors
    /// Postcard's, for a string that is not UTF-8.
    pub fn decode(&self) -> Result<SampleBatch<'a>, String> {
        super::decode(self.bytes).map_err(|e| e.to_string())
    }

    /// The samples in order, each with its labels.
    pub fn iter(&self) -> impl Iterator<Item = RawSample<'a>> + 'a {
        let (mut s, mut l) = (self.samples, self.labels);
        (0..self.len).map_while(move |_| {
            let (count, name, value, timestamp_ms) = sample(&mut s)?;
            Some(RawSample {
                name,
                labels: RawLabels {
                    count: u32::from(count),
                    bytes: strings(&mut l, u64::from(count) * 2)?,
                },
                value,
                timestamp_ms,
            })
        })
    }
}

impl<'a> RawSample<'a> {
    /// The metric name's bytes, unchecked.
    #[must_use]
    pub const fn name_bytes(&self) -> &'a [u8] {
        self.name
    }

    /// Whether this is a repeat record ([`Sample::is_repeat`](super::Sample::is_repeat)).
    #[must_use]
    pub const fn is_repeat(&self) -> bool {
        self.name.is_empty() && self.labels.count == 0
    }

    /// The metric name.
    ///
    /// # Errors
    /// The name is not UTF-8.
    pub fn name(&self) -> Result<&'a str, NotUtf8> {
        core::str::from_utf8(self.name).map_err(|_| NotUtf8)
    }
}

impl<'a> RawLabels<'a> {
    /// The pairs' encoding, unchecked.
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of labels.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// The pairs as `(name, value)` bytes, unchecked.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let mut p = self.bytes;
        // The framing was checked when the batch was read: no string runs past `bytes`.
        (0..self.count).map_while(move |_| Some((string(&mut p)?, string(&mut p)?)))
    }

    /// Whether there is no label.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The labels, borrowing their strings.
    ///
    /// # Errors
    /// A name or value is not UTF-8.
    pub fn decode(&self) -> Result<Vec<Label<'a>>, NotUtf8> {
        let mut p = self.bytes;
        let mut out = Vec::with_capacity(self.len());
        let mut text = || {
            let b = string(&mut p).ok_or(NotUtf8)?;
            core::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|_| NotUtf8)
        };
        for _ in 0..self.count {
            let name = text()?;
            let value = text()?;
            out.push(Label { name, value });
        }
        Ok(out)
    }
}

/// A postcard [`ExportBatch`] whose framing and counts were checked; label strings unchecked.
#[derive(Debug, Clone, Copy)]
pub struct RawExportBatch<'a> {
    /// The label list's pairs.
    labels: &'a [u8],
    /// The series heads' encodings.
    heads: &'a [u8],
    /// The points' encodings.
    points: &'a [u8],
    series: usize,
    point_count: usize,
}

/// One series of a [`RawExportBatch`].
#[derive(Debug, Clone, Copy)]
pub struct RawSeries<'a> {
    /// Its labels, sorted by name with `__name__` among them when the host wrote them.
    pub labels: RawLabels<'a>,
    /// Its points.
    pub points: RawPoints<'a>,
}

/// A series' points as encoded: per point a zigzag varint timestamp and the value's 8 bytes.
#[derive(Debug, Clone, Copy)]
pub struct RawPoints<'a> {
    count: u32,
    bytes: &'a [u8],
}

impl<'a> RawExportBatch<'a> {
    /// Reads an encoded [`ExportBatch`] from the front of `p` and leaves `p` after it. Checks
    /// every length against the input, varints in range (series heads are `u32`s), and series
    /// heads that add up to the label and point lists.
    ///
    /// # Errors
    /// What is wrong with the framing.
    pub fn take(p: &mut &'a [u8]) -> Result<Self, &'static str> {
        let label_count = varint(p).ok_or("bad label count")?;
        if label_count > p.len() as u64 {
            return Err("more labels than bytes");
        }
        let labels = strings(p, label_count * 2).ok_or("a label string runs past the batch")?;
        let series = varint(p).ok_or("bad series count")?;
        if series > p.len() as u64 {
            return Err("more series than bytes");
        }
        let (mut in_heads, mut points_in_heads) = (0u64, 0u64);
        let heads_at = *p;
        for _ in 0..series {
            let (l, n) = head(p).ok_or("a series head runs past the batch")?;
            in_heads += u64::from(l);
            points_in_heads += u64::from(n);
        }
        let heads = &heads_at[..heads_at.len() - p.len()];
        let point_count = varint(p).ok_or("bad point count")?;
        // A point is at least 9 bytes.
        if point_count > p.len() as u64 / 9 {
            return Err("more points than bytes");
        }
        let points = points(p, point_count).ok_or("a point runs past the batch")?;
        if in_heads != label_count || points_in_heads != point_count {
            return Err("series heads do not match the label and point lists");
        }
        #[allow(clippy::cast_possible_truncation)] // Both are below the input's length.
        Ok(Self {
            labels,
            heads,
            points,
            series: series as usize,
            point_count: point_count as usize,
        })
    }

    /// Reads an encoded [`ExportBatch`]; bytes after it are ignored, as postcard ignores them.
    ///
    /// # Errors
    /// As [`RawExportBatch::take`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, &'static str> {
        let mut p = bytes;
        Self::take(&mut p)
    }

    /// Number of series.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.series
    }

    /// Whether the batch holds no series.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.series == 0
    }

    /// Total points in the batch.
    #[must_use]
    pub const fn sample_count(&self) -> usize {
        self.point_count
    }

    /// The series in order.
    #[must_use]
    pub const fn series(&self) -> RawSeriesIter<'a> {
        RawSeriesIter {
            heads: self.heads,
            labels: self.labels,
            points: self.points,
            left: self.series,
        }
    }
}

/// The series of a [`RawExportBatch`], in order. Never panics: a batch's framing was checked
/// when it was read, and iteration stops where it would run out.
#[derive(Debug, Clone)]
pub struct RawSeriesIter<'a> {
    heads: &'a [u8],
    labels: &'a [u8],
    points: &'a [u8],
    left: usize,
}

impl<'a> RawSeriesIter<'a> {
    /// Reads the next series straight into `labels` (its pairs) and `points`, which are
    /// cleared first: one walk over its bytes where [`Iterator::next`] and then reading the
    /// [`RawSeries`] take two. `false` after the last series.
    pub fn next_into(
        &mut self,
        labels: &mut Vec<(&'a [u8], &'a [u8])>,
        points: &mut Vec<Point>,
    ) -> bool {
        labels.clear();
        points.clear();
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        let Some((label_count, point_count)) = head(&mut self.heads) else {
            return false;
        };
        for _ in 0..label_count {
            let (Some(name), Some(value)) = (string(&mut self.labels), string(&mut self.labels))
            else {
                return false;
            };
            labels.push((name, value));
        }
        for _ in 0..point_count {
            let Some(p) = point(&mut self.points) else {
                return false;
            };
            points.push(p);
        }
        true
    }
}

impl<'a> Iterator for RawSeriesIter<'a> {
    type Item = RawSeries<'a>;

    fn next(&mut self) -> Option<RawSeries<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (label_count, point_count) = head(&mut self.heads)?;
        let labels = RawLabels {
            count: label_count,
            bytes: strings(&mut self.labels, u64::from(label_count) * 2)?,
        };
        let points = RawPoints {
            count: point_count,
            bytes: points(&mut self.points, u64::from(point_count))?,
        };
        Some(RawSeries { labels, points })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

impl<'a> RawPoints<'a> {
    /// Number of points.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there is no point.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The points in order.
    pub fn iter(&self) -> impl Iterator<Item = Point> + 'a {
        let mut p = self.bytes;
        (0..self.count).map_while(move |_| point(&mut p))
    }
}

/// An [`ExportRequest`] read in place: its batch as a [`RawExportBatch`], its exemplars (rare,
/// and few) decoded.
#[derive(Debug, Clone)]
pub struct RawExportRequest<'a> {
    /// The samples to encode, grouped by series.
    pub batch: RawExportBatch<'a>,
    /// Whether the host asks for the fallback encoding.
    pub fallback: bool,
    /// Exemplars of the batch's series.
    pub exemplars: Vec<ExportExemplar<'a>>,
}

impl<'a> RawExportRequest<'a> {
    /// Reads an encoded [`ExportRequest`] of any version.
    ///
    /// # Errors
    /// What is wrong with it, as a message.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let mut p = bytes;
        let version = varint(&mut p).ok_or("bad request version")?;
        if version > 2 {
            return Err(alloc::format!("unknown export request version {version}"));
        }
        let batch = RawExportBatch::take(&mut p)?;
        let fallback = if version == 0 {
            false
        } else {
            let (&b, rest) = p
                .split_first()
                .ok_or("the request ends before `fallback`")?;
            p = rest;
            match b {
                0 => false,
                1 => true,
                _ => return Err("`fallback` is not a bool".into()),
            }
        };
        let exemplars = if version == 2 {
            super::decode(p).map_err(|e| alloc::format!("bad exemplars: {e}"))?
        } else {
            Vec::new()
        };
        Ok(Self {
            batch,
            fallback,
            exemplars,
        })
    }
}

/// Reads `n` items with `one` from the front of `p`; the bytes they take.
#[inline]
fn take_n<'a>(
    p: &mut &'a [u8],
    n: u64,
    mut one: impl FnMut(&mut &'a [u8]) -> Option<()>,
) -> Option<&'a [u8]> {
    let start = *p;
    for _ in 0..n {
        one(p)?;
    }
    Some(&start[..start.len() - p.len()])
}

/// Skips `n` length-prefixed strings at the front of `p`; the bytes they take.
#[inline]
fn strings<'a>(p: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    take_n(p, n, |p| string(p).map(drop))
}

/// Skips `n` encoded points at the front of `p`; the bytes they take.
#[inline]
fn points<'a>(p: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    take_n(p, n, |p| point(p).map(drop))
}

/// The varint continuation bit of each of a word's eight bytes.
const CONTINUATIONS: u64 = 0x8080_8080_8080_8080;

/// Length of the varint that starts a little-endian word, when it ends within the word's
/// eight bytes: one past its first byte below `0x80`.
#[inline]
const fn word_varint_len(w: u64) -> Option<usize> {
    let ends = !w & CONTINUATIONS;
    if ends == 0 {
        None
    } else {
        Some((ends.trailing_zeros() / 8) as usize + 1)
    }
}

/// The value of a varint of `len` bytes (1 to 8) at the start of a little-endian word: its
/// 7-bit groups gathered in three steps (pairs, then fours, then eights) instead of a
/// shift and a branch per byte. A point's timestamp in milliseconds is a 6-byte varint.
#[inline]
const fn word_varint(w: u64, len: usize) -> u64 {
    let x = if len >= 8 {
        w
    } else {
        w & ((1 << (8 * len)) - 1)
    } & !CONTINUATIONS;
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
    (x & 0x0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4)
}

/// A `u32` as postcard writes one: at most 5 bytes.
#[inline]
fn varint32(p: &mut &[u8]) -> Option<u32> {
    let before = p.len();
    let v = u32::try_from(varint(p)?).ok()?;
    (before - p.len() <= 5).then_some(v)
}

/// One encoded `SeriesHead`: its label and point counts.
#[inline]
fn head(p: &mut &[u8]) -> Option<(u32, u32)> {
    Some((varint32(p)?, varint32(p)?))
}

/// One encoded `Point`. Its timestamp varint is read from one 8-byte word when it ends
/// within it (a point is at least 9 bytes, so a well-formed one always has the word).
#[inline]
fn point(p: &mut &[u8]) -> Option<Point> {
    if let Some(w) = p.first_chunk::<8>() {
        let w = u64::from_le_bytes(*w);
        if let Some(len) = word_varint_len(w) {
            let (v, rest) = p.get(len..)?.split_first_chunk::<8>()?;
            *p = rest;
            return Some(Point {
                t: zigzag(word_varint(w, len)),
                v: f64::from_bits(u64::from_le_bytes(*v)),
            });
        }
    }
    point_long(p)
}

/// [`point`] byte by byte: a timestamp varint of 9 or 10 bytes, or too few bytes for a word.
fn point_long(p: &mut &[u8]) -> Option<Point> {
    let z = varint(p)?;
    let (v, rest) = p.split_first_chunk::<8>()?;
    *p = rest;
    Some(Point {
        t: zigzag(z),
        v: f64::from_bits(u64::from_le_bytes(*v)),
    })
}

/// A postcard varint of up to 64 bits, as postcard reads one: at most 10 bytes, no bits past
/// the 64th. Inlined for the one-byte case, which lengths and counts nearly always are: a call
/// per string costs a plugin under Cranelift more than the rest of reading it.
#[inline]
fn varint(p: &mut &[u8]) -> Option<u64> {
    if let Some((&b, rest)) = p.split_first()
        && b < 0x80
    {
        *p = rest;
        return Some(u64::from(b));
    }
    varint_long(p)
}

/// [`varint`] of more than one byte.
fn varint_long(p: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = p.split_first()?;
        *p = rest;
        if i == 9 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// An `i64` from its zigzag encoding.
#[allow(clippy::cast_possible_wrap)]
const fn zigzag(z: u64) -> i64 {
    (z >> 1) as i64 ^ -((z & 1) as i64)
}

/// A length-prefixed byte string.
#[inline]
fn string<'a>(p: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(varint(p)?).ok()?;
    let s = p.get(..len)?;
    *p = &p[len..];
    Some(s)
}

/// One encoded `Sample`: its label count, name, value and timestamp.
fn sample<'a>(p: &mut &'a [u8]) -> Option<(u16, &'a [u8], f64, Option<i64>)> {
    let name = string(p)?;
    // A u16 is at most 3 bytes in postcard's encoding.
    let before = p.len();
    let count = u16::try_from(varint(p)?).ok()?;
    if before - p.len() > 3 {
        return None;
    }
    let (v, rest) = p.split_first_chunk::<8>()?;
    *p = rest;
    let value = f64::from_bits(u64::from_le_bytes(*v));
    let (&tag, rest) = p.split_first()?;
    *p = rest;
    let timestamp_ms = match tag {
        0 => None,
        1 => Some(zigzag(varint(p)?)),
        _ => return None,
    };
    Some((count, name, value, timestamp_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{ExportBatchEncoder, ExportRequest, SampleEncoder};
    use alloc::vec;
    use proptest::strategy::Strategy as _;

    type Samples = Vec<(String, Vec<(String, String)>, f64, Option<i64>)>;

    fn encode(samples: &Samples) -> Vec<u8> {
        let mut enc = SampleEncoder::default();
        for (name, labels, v, t) in samples {
            enc.push(
                name,
                labels.iter().map(|(a, b)| (a.as_str(), b.as_str())),
                *v,
                *t,
            );
        }
        let mut out = Vec::new();
        enc.finish_into(&mut out);
        out
    }

    proptest::proptest! {
        #[test]
        fn reads_what_postcard_decodes(
            samples in proptest::collection::vec(
                (".{0,12}", proptest::collection::vec((".{1,5}", ".{0,140}"), 0..4),
                 proptest::num::f64::ANY, proptest::option::of(proptest::num::i64::ANY)),
                0..20),
            cut in proptest::num::usize::ANY,
        ) {
            let bytes = encode(&samples);
            let raw = RawSampleBatch::parse(&bytes).unwrap();
            let decoded = raw.decode().unwrap();
            proptest::prop_assert_eq!(raw.len(), decoded.samples.len());
            for (r, (s, labels)) in raw.iter().zip(decoded.iter()) {
                proptest::prop_assert_eq!(r.name().unwrap(), &*s.name);
                proptest::prop_assert_eq!(r.labels.decode().unwrap(), labels.to_vec());
                proptest::prop_assert_eq!(r.labels.len(), labels.len());
                proptest::prop_assert_eq!(r.value.to_bits(), s.value.to_bits());
                proptest::prop_assert_eq!(r.timestamp_ms, s.timestamp_ms);
            }
            proptest::prop_assert_eq!(raw.iter().count(), samples.len());
            // A batch cut short is refused by both readers alike.
            let cut = cut % (bytes.len() + 1);
            if cut < bytes.len() {
                let short = &bytes[..cut];
                proptest::prop_assert_eq!(
                    RawSampleBatch::parse(short).is_ok(),
                    crate::abi::decode::<SampleBatch<'_>>(short).is_ok_and(|b| b.is_consistent())
                );
            }
        }
    }

    #[test]
    fn refuses_what_postcard_refuses() {
        let samples: Samples = vec![(
            "up".into(),
            vec![("job".into(), "node".into())],
            1.0,
            Some(-7),
        )];
        let good = encode(&samples);
        // label count, "job", "node", sample count, "up", 1 label, 8 value bytes, tag 1, -7.
        assert_eq!(good.len(), 1 + 4 + 5 + 1 + 3 + 1 + 8 + 2);
        let mut bad_tag = good.clone();
        bad_tag[good.len() - 2] = 2;
        let mut bad_count = good.clone();
        bad_count[14] = 2;
        let mut overlong = good.clone();
        overlong[0] = 0xff; // the label count's varint runs on into the strings
        for bad in [&bad_tag, &bad_count, &overlong] {
            assert!(RawSampleBatch::parse(bad).is_err());
            assert!(!matches!(
                crate::abi::decode::<SampleBatch<'_>>(bad),
                Ok(b) if b.is_consistent()
            ));
        }
        // A label count beyond u16 is refused although its varint is well formed.
        assert!(varint(&mut &[0xff, 0xff, 0x04][..]).is_some());
        assert!(sample(&mut &[0, 0xff, 0xff, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]).is_none());
    }

    #[test]
    fn strings_are_checked_only_when_asked() {
        let samples: Samples = vec![("up".into(), vec![("a".into(), "b".into())], 1.0, None)];
        let mut bytes = encode(&samples);
        // The label value "b" becomes 0xff, which is not UTF-8.
        let at = bytes.iter().position(|&b| b == b'b').unwrap();
        bytes[at] = 0xff;
        assert!(crate::abi::decode::<SampleBatch<'_>>(&bytes).is_err());
        let raw = RawSampleBatch::parse(&bytes).unwrap();
        let s = raw.iter().next().unwrap();
        assert_eq!(s.name(), Ok("up"));
        assert_eq!(s.labels.bytes(), &[1, b'a', 1, 0xff]);
        assert_eq!(s.labels.decode(), Err(NotUtf8));
        assert!(raw.decode().is_err());
    }

    type Series = Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>;

    fn export_batch(series: &Series) -> ExportBatchEncoder {
        let mut enc = ExportBatchEncoder::default();
        for (labels, points) in series {
            enc.series(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            for &(t, v) in points {
                enc.point(t, v);
            }
        }
        enc
    }

    /// The request of `version` (0, 1, 2) around `batch`, as the host writes it.
    fn request(
        version: u8,
        batch: &ExportBatchEncoder,
        fallback: bool,
        ex: &[ExportExemplar<'_>],
    ) -> Vec<u8> {
        let mut out = vec![version];
        batch.write_to(&mut out);
        if version > 0 {
            out.push(u8::from(fallback));
        }
        if version == 2 {
            crate::abi::encode_into(&ex, &mut out).unwrap();
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn a_varint_read_from_one_word_is_the_varint_read_byte_by_byte(
            v in proptest::num::u64::ANY,
            shift in 0u32..64,
            after in proptest::num::u64::ANY,
        ) {
            let v = v >> shift;
            let mut bytes = postcard::to_allocvec(&v).unwrap();
            let len = bytes.len();
            bytes.extend_from_slice(&after.to_le_bytes());
            let w = u64::from_le_bytes(*bytes.first_chunk::<8>().unwrap());
            let mut p = &bytes[..];
            proptest::prop_assert_eq!(varint_long(&mut p), Some(v));
            if len <= 8 {
                proptest::prop_assert_eq!(word_varint_len(w), Some(len));
                proptest::prop_assert_eq!(word_varint(w, len), v);
            } else {
                proptest::prop_assert_eq!(word_varint_len(w), None);
            }
        }

        #[test]
        fn reads_export_requests_as_postcard_decodes_them(
            series in proptest::collection::vec(
                (proptest::collection::vec((".{1,5}", ".{0,140}"), 0..5),
                 proptest::collection::vec(
                     // Timestamps of every varint length, 1 to 10 bytes.
                     ((proptest::num::i64::ANY, 0u32..64).prop_map(|(t, s)| t >> s),
                      proptest::num::f64::ANY), 0..5)),
                0..12),
            version in 0u8..3,
            fallback in proptest::bool::ANY,
            exemplar_at in proptest::option::of(0u32..12),
            cut in proptest::num::usize::ANY,
        ) {
            let ex: Vec<_> = exemplar_at
                .map(|series| ExportExemplar {
                    series,
                    labels: vec![Label::new("trace_id", "4bf9")],
                    value: 0.5,
                    timestamp_ms: -3,
                })
                .into_iter()
                .collect();
            let bytes = request(version, &export_batch(&series), fallback, &ex);
            let decoded: ExportRequest<'_> = crate::abi::decode(&bytes).unwrap();
            let raw = RawExportRequest::parse(&bytes).unwrap();
            proptest::prop_assert_eq!(raw.fallback, decoded.fallback());
            proptest::prop_assert_eq!(&raw.exemplars[..], decoded.exemplars());
            let batch = decoded.batch();
            proptest::prop_assert_eq!(raw.batch.len(), batch.series.len());
            proptest::prop_assert_eq!(raw.batch.sample_count(), batch.sample_count());
            proptest::prop_assert_eq!(raw.batch.series().count(), series.len());
            for (r, d) in raw.batch.series().zip(batch.series()) {
                let pairs: Vec<_> = r.labels.pairs().collect();
                let want: Vec<_> =
                    d.labels.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes())).collect();
                proptest::prop_assert_eq!(pairs, want);
                proptest::prop_assert_eq!(r.labels.decode().unwrap(), d.labels.to_vec());
                proptest::prop_assert_eq!(r.points.len(), d.points.len());
                let points: Vec<_> = r.points.iter().map(|p| (p.t, p.v.to_bits())).collect();
                let want: Vec<_> = d.points.iter().map(|p| (p.t, p.v.to_bits())).collect();
                proptest::prop_assert_eq!(points, want);
            }
            // A request cut short is refused by both readers alike.
            let cut = cut % (bytes.len() + 1);
            if cut < bytes.len() {
                let short = &bytes[..cut];
                proptest::prop_assert_eq!(
                    RawExportRequest::parse(short).is_ok(),
                    crate::abi::decode::<ExportRequest<'_>>(short)
                        .is_ok_and(|r| r.batch().is_consistent())
                );
            }
        }
    }

    #[test]
    fn refuses_export_batches_postcard_refuses() {
        let series: Series = vec![(
            vec![("__name__".into(), "up".into())],
            vec![(1, 1.0), (2, 2.0)],
        )];
        let good = request(1, &export_batch(&series), true, &[]);
        // version, label count, "__name__", "up", series count, head (1, 2), point count,
        // two points of 1 + 8 bytes, fallback.
        assert_eq!(good.len(), 1 + 1 + 9 + 3 + 1 + 2 + 1 + 18 + 1);
        assert!(RawExportRequest::parse(&good).unwrap().fallback);
        let mut bad_fallback = good.clone();
        *bad_fallback.last_mut().unwrap() = 2;
        let mut bad_version = good.clone();
        bad_version[0] = 3;
        let mut bad_head = good.clone();
        bad_head[16] = 1; // one point in the head, two in the list
        let mut bad_points = good.clone();
        bad_points[17] = 3; // three points in the list, two written
        for bad in [&bad_fallback, &bad_version, &bad_head, &bad_points] {
            assert!(RawExportRequest::parse(bad).is_err(), "{bad:?}");
            assert!(!matches!(
                crate::abi::decode::<ExportRequest<'_>>(bad),
                Ok(r) if r.batch().is_consistent()
            ));
        }
        // A head count past u32 is refused although its varint is well formed.
        assert!(head(&mut &[0x80, 0x80, 0x80, 0x80, 0x10, 0][..]).is_none());
        assert_eq!(
            head(&mut &[0xff, 0xff, 0xff, 0xff, 0x0f, 0][..]),
            Some((u32::MAX, 0))
        );
    }

    #[test]
    fn export_strings_are_left_unchecked() {
        let series: Series = vec![(vec![("a".into(), "b".into())], vec![(0, 1.0)])];
        let mut bytes = request(0, &export_batch(&series), false, &[]);
        let at = bytes.iter().position(|&b| b == b'b').unwrap();
        bytes[at] = 0xff;
        assert!(crate::abi::decode::<ExportRequest<'_>>(&bytes).is_err());
        let raw = RawExportRequest::parse(&bytes).unwrap();
        let s = raw.batch.series().next().unwrap();
        assert_eq!(
            s.labels.pairs().collect::<Vec<_>>(),
            [(&b"a"[..], &[0xff][..])]
        );
        assert_eq!(s.labels.decode(), Err(NotUtf8));
    }
}
