//! Sample batches: flat layouts, so decoding a batch costs two or three allocations however
//! many samples it holds, and strings borrow from the encoded bytes.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A label pair. Metric names travel separately in [`Sample`], and as `__name__` in export
/// batches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Label<'a> {
    /// Label name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Label value.
    #[serde(borrow)]
    pub value: Cow<'a, str>,
}

impl<'a> Label<'a> {
    /// A label borrowing its strings.
    #[must_use]
    pub const fn new(name: &'a str, value: &'a str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            value: Cow::Borrowed(value),
        }
    }
}

/// One scraped sample. Its labels are the next `labels` entries of [`SampleBatch::labels`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample<'a> {
    /// Metric name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// How many labels follow in the batch's label list.
    pub labels: u16,
    /// The value; staleness markers are the NaN with bits `0x7ff0_0000_0000_0002`.
    pub value: f64,
    /// Unix ms from the exposition, `None` for "the scrape time".
    pub timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// Whether this is a repeat record: an empty name and no labels, standing for the series
    /// of the sample at the same position in the scrape [`Replay::order`](super::Replay)
    /// names. No series has an empty name, so no other sample looks like one.
    #[must_use]
    pub fn is_repeat(&self) -> bool {
        self.name.is_empty() && self.labels == 0
    }
}

/// A batch of samples a scraper hands the host through `emit`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleBatch<'a> {
    /// All samples' labels back to back.
    #[serde(borrow)]
    pub labels: Vec<Label<'a>>,
    /// The samples, in exposition order.
    #[serde(borrow)]
    pub samples: Vec<Sample<'a>>,
}

impl<'a> SampleBatch<'a> {
    /// Samples with their labels. Stops early (never panics) if a hostile encoder's label
    /// counts overrun the label list; [`SampleBatch::is_consistent`] tells whether it would.
    pub fn iter(&self) -> impl Iterator<Item = (&Sample<'a>, &[Label<'a>])> {
        let mut at = 0usize;
        self.samples.iter().map_while(move |s| {
            let end = at.checked_add(usize::from(s.labels))?;
            let labels = self.labels.get(at..end)?;
            at = end;
            Some((s, labels))
        })
    }

    /// Whether the label counts add up to the label list exactly.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        let total: usize = self.samples.iter().map(|s| usize::from(s.labels)).sum();
        total == self.labels.len()
    }
}

/// Encodes a [`SampleBatch`] as samples arrive, without holding their strings: labels and
/// samples are postcard-encoded into two byte runs that [`SampleEncoder::finish_into`] joins
/// behind their counts, which is exactly postcard's encoding of the batch.
#[derive(Debug, Default)]
pub struct SampleEncoder {
    labels: Vec<u8>,
    samples: Vec<u8>,
    label_count: usize,
    sample_count: usize,
}

impl SampleEncoder {
    /// Adds a sample. Labels past the first `u16::MAX` are dropped.
    pub fn push<'l, I>(&mut self, name: &str, labels: I, value: f64, timestamp_ms: Option<i64>)
    where
        I: IntoIterator<Item = (&'l str, &'l str)>,
    {
        let mut count: u16 = 0;
        for (n, v) in labels.into_iter().take(usize::from(u16::MAX)) {
            put_str(&mut self.labels, n);
            put_str(&mut self.labels, v);
            count += 1;
        }
        self.label_count += usize::from(count);
        put_str(&mut self.samples, name);
        put_varint(&mut self.samples, u64::from(count));
        self.samples
            .extend_from_slice(&value.to_bits().to_le_bytes());
        match timestamp_ms {
            None => self.samples.push(0),
            Some(t) => {
                self.samples.push(1);
                #[allow(clippy::cast_sign_loss)]
                put_varint(&mut self.samples, ((t << 1) ^ (t >> 63)) as u64);
            }
        }
        self.sample_count += 1;
    }

    /// Adds a repeat record ([`Sample::is_repeat`]): the series of the sample at this position
    /// in the scrape the request's [`Replay::order`](super::Replay) names.
    pub fn push_repeat(&mut self, value: f64, timestamp_ms: Option<i64>) {
        self.push("", core::iter::empty(), value, timestamp_ms);
    }

    /// Samples held.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.sample_count
    }

    /// Whether no sample is held.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.sample_count == 0
    }

    /// Encoded bytes held, a bound for batching.
    #[must_use]
    pub const fn encoded_len(&self) -> usize {
        self.labels.len() + self.samples.len() + 20
    }

    /// Appends the encoded [`SampleBatch`] to `out` and empties the encoder, keeping capacity.
    pub fn finish_into(&mut self, out: &mut Vec<u8>) {
        put_varint(out, self.label_count as u64);
        out.extend_from_slice(&self.labels);
        put_varint(out, self.sample_count as u64);
        out.extend_from_slice(&self.samples);
        self.labels.clear();
        self.samples.clear();
        self.label_count = 0;
        self.sample_count = 0;
    }
}

/// A varint, with the one-byte case (label lengths, label counts) inline: a guest built at
/// opt-level "s" would otherwise make a call per byte run.
#[inline]
fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        out.push(v as u8);
    } else {
        put_varint_long(out, v);
    }
}

fn put_varint_long(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        {
            buf[n] = (v as u8) | 0x80;
        }
        v >>= 7;
        n += 1;
    }
    #[allow(clippy::cast_possible_truncation)]
    {
        buf[n] = v as u8;
    }
    out.extend_from_slice(&buf[..=n]);
}

#[inline]
fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A timestamped value of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Unix ms.
    pub t: i64,
    /// Value, bit-exact (staleness NaN included).
    pub v: f64,
}

/// Shape of one series in an [`ExportBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesHead {
    /// How many labels (including `__name__`) follow in the label list.
    pub labels: u32,
    /// How many points follow in the point list.
    pub points: u32,
}

/// Samples grouped by series, as the host hands them to an exporter. Labels of a series are
/// sorted by name and include `__name__`; points of a series are in timestamp order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportBatch<'a> {
    /// All series' labels back to back.
    #[serde(borrow)]
    pub labels: Vec<Label<'a>>,
    /// The series.
    pub series: Vec<SeriesHead>,
    /// All series' points back to back.
    pub points: Vec<Point>,
}

/// A view of one series of an [`ExportBatch`].
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'b, 'a> {
    /// Labels sorted by name, `__name__` included.
    pub labels: &'b [Label<'a>],
    /// Points in timestamp order.
    pub points: &'b [Point],
}

impl<'a> ExportBatch<'a> {
    /// The series with their labels and points. Stops early (never panics) when the counts
    /// overrun the lists.
    pub fn series(&self) -> impl Iterator<Item = SeriesRef<'_, 'a>> {
        let (mut l, mut p) = (0usize, 0usize);
        self.series.iter().map_while(move |h| {
            let le = l.checked_add(usize::try_from(h.labels).ok()?)?;
            let pe = p.checked_add(usize::try_from(h.points).ok()?)?;
            let labels = self.labels.get(l..le)?;
            let points = self.points.get(p..pe)?;
            (l, p) = (le, pe);
            Some(SeriesRef { labels, points })
        })
    }

    /// Total points in the batch.
    #[must_use]
    pub fn sample_count(&self) -> usize {
        self.points.len()
    }

    /// Whether the counts add up to the lists exactly.
    #[must_use]
    pub fn is_consistent(&self) -> bool {
        let (l, p) = self.series.iter().fold((0u64, 0u64), |(l, p), h| {
            (l + u64::from(h.labels), p + u64::from(h.points))
        });
        l == self.labels.len() as u64 && p == self.points.len() as u64
    }
}

/// Encodes an [`ExportBatch`] as series arrive, without building it: labels, series heads and
/// points are postcard-encoded into three byte runs that [`ExportBatchEncoder::write_to`]
/// joins behind their counts, which is exactly postcard's encoding of the batch. A host that
/// keeps label sets in postcard's encoding of labels already copies them in one piece
/// ([`ExportBatchEncoder::series_encoded`]).
#[derive(Debug, Default, Clone)]
pub struct ExportBatchEncoder {
    labels: Vec<u8>,
    heads: Vec<u8>,
    points: Vec<u8>,
    label_count: usize,
    series_count: usize,
    point_count: usize,
    /// The open series' label and point counts; its head is written when the next series
    /// starts or the batch is written.
    open: Option<(u32, u32)>,
}

impl ExportBatchEncoder {
    /// Starts a series; the points pushed next belong to it.
    pub fn series<'l, I>(&mut self, labels: I)
    where
        I: IntoIterator<Item = (&'l str, &'l str)>,
    {
        let mut count: u32 = 0;
        for (n, v) in labels {
            put_str(&mut self.labels, n);
            put_str(&mut self.labels, v);
            count = count.saturating_add(1);
        }
        self.open_series(count);
    }

    /// Starts a series whose `count` labels are given encoded as postcard encodes a run of
    /// [`Label`]s: per label, a varint length and the name's UTF-8 bytes, then a varint length
    /// and the value's. The bytes are copied as they are; a run that is not such an encoding
    /// makes the whole batch undecodable for the plugin.
    pub fn series_encoded(&mut self, count: u32, pairs: &[u8]) {
        self.labels.extend_from_slice(pairs);
        self.open_series(count);
    }

    fn open_series(&mut self, labels: u32) {
        self.close_series();
        self.label_count += labels as usize;
        self.open = Some((labels, 0));
    }

    fn close_series(&mut self) {
        if let Some((labels, points)) = self.open.take() {
            put_varint(&mut self.heads, u64::from(labels));
            put_varint(&mut self.heads, u64::from(points));
            self.series_count += 1;
        }
    }

    /// Adds a point to the current series. Without a current series the point is ignored.
    pub fn point(&mut self, t: i64, v: f64) {
        let Some((_, points)) = self.open.as_mut() else {
            return;
        };
        *points = points.saturating_add(1);
        #[allow(clippy::cast_sign_loss)]
        put_varint(&mut self.points, ((t << 1) ^ (t >> 63)) as u64);
        self.points.extend_from_slice(&v.to_bits().to_le_bytes());
        self.point_count += 1;
    }

    /// Points held.
    #[must_use]
    pub const fn sample_count(&self) -> usize {
        self.point_count
    }

    /// Appends the encoded [`ExportBatch`] to `out`; the encoder keeps its series, so a batch
    /// can be written again (a retry).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.labels.len() + self.heads.len() + self.points.len() + 40);
        put_varint(out, self.label_count as u64);
        out.extend_from_slice(&self.labels);
        let series = self.series_count + usize::from(self.open.is_some());
        put_varint(out, series as u64);
        out.extend_from_slice(&self.heads);
        if let Some((labels, points)) = self.open {
            put_varint(out, u64::from(labels));
            put_varint(out, u64::from(points));
        }
        put_varint(out, self.point_count as u64);
        out.extend_from_slice(&self.points);
    }
}

/// Builds [`ExportBatch`]es.
#[derive(Debug, Default)]
pub struct ExportBatchBuilder<'a> {
    batch: ExportBatch<'a>,
}

impl<'a> ExportBatchBuilder<'a> {
    /// Starts a series; the points pushed next belong to it.
    pub fn series<I>(&mut self, labels: I)
    where
        I: IntoIterator<Item = Label<'a>>,
    {
        let before = self.batch.labels.len();
        self.batch.labels.extend(labels);
        let count = u32::try_from(self.batch.labels.len() - before).unwrap_or(u32::MAX);
        self.batch.series.push(SeriesHead {
            labels: count,
            points: 0,
        });
    }

    /// Adds a point to the current series. Without a current series the point is ignored.
    pub fn point(&mut self, t: i64, v: f64) {
        if let Some(head) = self.batch.series.last_mut() {
            head.points += 1;
            self.batch.points.push(Point { t, v });
        }
    }

    /// Points held.
    #[must_use]
    pub fn sample_count(&self) -> usize {
        self.batch.points.len()
    }

    /// The finished batch.
    #[must_use]
    pub fn finish(self) -> ExportBatch<'a> {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_batch_round_trips_and_borrows() {
        let mut b = SampleEncoder::default();
        b.push("up", [("job", "node")], 1.0, None);
        b.push("x", [], f64::from_bits(0x7ff0_0000_0000_0002), Some(-5));
        assert_eq!(b.len(), 2);
        let mut bytes = Vec::new();
        b.finish_into(&mut bytes);
        assert!(b.is_empty());
        let back: SampleBatch<'_> = crate::abi::decode(&bytes).unwrap();
        assert!(back.is_consistent());
        let all: Vec<_> = back.iter().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].1, &[Label::new("job", "node")]);
        assert!(matches!(all[0].0.name, Cow::Borrowed("up")));
        assert!(matches!(all[0].1[0].value, Cow::Borrowed("node")));
        assert_eq!(all[1].0.value.to_bits(), 0x7ff0_0000_0000_0002);
        assert_eq!(all[1].0.timestamp_ms, Some(-5));
    }

    #[test]
    fn a_repeat_record_is_an_empty_name_without_labels() {
        let mut b = SampleEncoder::default();
        b.push("up", [], 1.0, None);
        b.push_repeat(2.5, Some(7));
        b.push("x", [("a", "b")], 3.0, None);
        let mut bytes = Vec::new();
        b.finish_into(&mut bytes);
        let back: SampleBatch<'_> = crate::abi::decode(&bytes).unwrap();
        let repeats: Vec<bool> = back.samples.iter().map(Sample::is_repeat).collect();
        assert_eq!(repeats, [false, true, false]);
        assert_eq!(
            (back.samples[1].value, back.samples[1].timestamp_ms),
            (2.5, Some(7))
        );
        let raw = crate::abi::raw::RawSampleBatch::parse(&bytes).unwrap();
        let raw: Vec<bool> = raw.iter().map(|s| s.is_repeat()).collect();
        assert_eq!(raw, repeats);
    }

    proptest::proptest! {
        #[test]
        fn encoder_matches_postcard(
            samples in proptest::collection::vec(
                ("[a-z_]{0,12}", proptest::collection::vec(("[a-z]{1,5}", ".{0,8}"), 0..4),
                 proptest::num::f64::ANY, proptest::option::of(proptest::num::i64::ANY)),
                0..20)
        ) {
            let mut enc = SampleEncoder::default();
            let mut expected = SampleBatch::default();
            for (name, labels, v, t) in &samples {
                enc.push(name, labels.iter().map(|(a, b)| (a.as_str(), b.as_str())), *v, *t);
                expected.labels.extend(labels.iter().map(|(a, b)| Label::new(a, b)));
                expected.samples.push(Sample {
                    name: Cow::Borrowed(name),
                    labels: u16::try_from(labels.len()).unwrap(),
                    value: *v,
                    timestamp_ms: *t,
                });
            }
            let mut ours = Vec::new();
            enc.finish_into(&mut ours);
            proptest::prop_assert_eq!(ours, crate::abi::encode(&expected).unwrap());
        }
    }

    proptest::proptest! {
        #[test]
        fn export_encoder_matches_postcard(
            series in proptest::collection::vec(
                (proptest::collection::vec(("[a-z_]{1,6}", ".{0,8}"), 0..4),
                 proptest::collection::vec(
                     (proptest::num::i64::ANY, proptest::num::f64::ANY), 0..4),
                 proptest::bool::ANY),
                0..12),
            stray in proptest::option::of((proptest::num::i64::ANY, proptest::num::f64::ANY)),
        ) {
            let mut enc = ExportBatchEncoder::default();
            let mut expected = ExportBatchBuilder::default();
            // A point before any series is ignored by both.
            if let Some((t, v)) = stray {
                enc.point(t, v);
                expected.point(t, v);
            }
            for (labels, points, pre_encoded) in &series {
                if *pre_encoded {
                    let mut pairs = Vec::new();
                    for (n, v) in labels {
                        put_str(&mut pairs, n);
                        put_str(&mut pairs, v);
                    }
                    enc.series_encoded(u32::try_from(labels.len()).unwrap(), &pairs);
                } else {
                    enc.series(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                }
                expected.series(labels.iter().map(|(n, v)| Label::new(n, v)));
                for &(t, v) in points {
                    enc.point(t, v);
                    expected.point(t, v);
                }
            }
            proptest::prop_assert_eq!(enc.sample_count(), expected.sample_count());
            let expected = crate::abi::encode(&expected.finish()).unwrap();
            let mut ours = alloc::vec![0xAA];
            enc.write_to(&mut ours);
            proptest::prop_assert_eq!(&ours[1..], &expected[..]);
            // Written again (a retry), the bytes are the same.
            let mut again = Vec::new();
            enc.write_to(&mut again);
            proptest::prop_assert_eq!(again, expected);
        }
    }

    #[test]
    fn inconsistent_counts_stop_iteration_without_panic() {
        let batch = SampleBatch {
            labels: alloc::vec![Label::new("a", "b")],
            samples: alloc::vec![
                Sample {
                    name: "m".into(),
                    labels: 1,
                    value: 1.0,
                    timestamp_ms: None
                },
                Sample {
                    name: "n".into(),
                    labels: 9,
                    value: 1.0,
                    timestamp_ms: None
                },
            ],
        };
        assert!(!batch.is_consistent());
        assert_eq!(batch.iter().count(), 1);
    }

    #[test]
    fn export_batch_groups_points_by_series() {
        let mut b = ExportBatchBuilder::default();
        b.point(1, 1.0); // ignored: no series yet
        b.series([Label::new("__name__", "a")]);
        b.point(10, 1.0);
        b.point(20, 2.0);
        b.series([Label::new("__name__", "b"), Label::new("x", "y")]);
        b.point(10, 3.0);
        let batch = b.finish();
        assert!(batch.is_consistent());
        let s: Vec<_> = batch.series().collect();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].points,
            &[Point { t: 10, v: 1.0 }, Point { t: 20, v: 2.0 }]
        );
        assert_eq!(s[1].labels.len(), 2);
        assert_eq!(batch.sample_count(), 3);
        let bytes = crate::abi::encode(&batch).unwrap();
        let back: ExportBatch<'_> = crate::abi::decode(&bytes).unwrap();
        assert_eq!(back, batch);
    }

    #[test]
    fn hostile_export_batch_never_panics() {
        let batch = ExportBatch {
            labels: Vec::new(),
            series: alloc::vec![SeriesHead {
                labels: u32::MAX,
                points: u32::MAX
            }],
            points: Vec::new(),
        };
        assert!(!batch.is_consistent());
        assert_eq!(batch.series().count(), 0);
    }
}
