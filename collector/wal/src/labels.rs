//! A label set as the WAL keeps it and hands it out: its encoded form, validated once, behind
//! one shared allocation.
//!
//! Why encoded and shared: the same label set is held by a scrape's series cache (in its
//! [`SeriesKey`](crate::SeriesKey)), by the WAL's series table and by every batch that names
//! the series. Holding the encoding behind an `Arc` lets all three share one copy of the text:
//! the series table keeps the key a scrape appended with, and a batch clones the table's
//! handle (a reference count) instead of decoding the labels into fresh strings. Reading the
//! pairs walks the encoding; that is a few nanoseconds per label, paid by the exporter that
//! encodes them anyway.
//!
//! The encoding is the one the series log and format-1 series records use: `uvarint n`, then
//! per pair `uvarint len | name bytes | uvarint len | value bytes`, UTF-8, sorted by name.

use crate::bits::{get_uvarint, put_uvarint};
use std::sync::Arc;

/// A label set: `(name, value)` pairs sorted by name, `__name__` included. Cloning shares it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Labels(Arc<[u8]>);

impl Labels {
    /// The label set of `pairs`, in the order given (the WAL's own label sets are sorted by
    /// name and unique).
    #[must_use]
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        let mut out = Vec::new();
        encode(&mut out, pairs);
        Labels(out.into())
    }

    /// Takes `bytes` as the encoding of one label set, checking that it is one.
    pub(crate) fn from_encoded(bytes: &[u8]) -> Option<Self> {
        let mut p = bytes;
        Self::read(&mut p).filter(|_| p.is_empty())
    }

    /// Reads one encoded label set from the front of `p` and advances past it; `None` when it
    /// is malformed (a length beyond the input, text that is not UTF-8).
    pub(crate) fn read(p: &mut &[u8]) -> Option<Self> {
        let start = *p;
        let n = get_uvarint(p)?;
        if n > p.len() as u64 {
            return None;
        }
        for _ in 0..n * 2 {
            let len = usize::try_from(get_uvarint(p)?).ok()?;
            let text = p.get(..len)?;
            std::str::from_utf8(text).ok()?;
            *p = &p[len..];
        }
        let used = start.len() - p.len();
        Some(Labels(Arc::from(&start[..used])))
    }

    /// Wraps bytes this crate encoded itself (with [`encode`]): no check.
    pub(crate) fn from_trusted(bytes: Vec<u8>) -> Self {
        Labels(bytes.into())
    }

    /// The encoding.
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.0
    }

    /// True when both are the same allocation (then they are equal without a comparison).
    pub(crate) fn same(&self, other: &Labels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The pairs, in order.
    #[must_use]
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        let mut p: &[u8] = &self.0;
        let left = get_uvarint(&mut p).unwrap_or(0);
        Iter { p, left }
    }

    /// The number of pairs and the pairs' encoding: per pair `uvarint len | name bytes |
    /// uvarint len | value bytes`, which is also how postcard encodes a run of name/value
    /// string pairs, so an encoder of such messages copies it in one piece.
    #[must_use]
    #[inline]
    pub fn encoded_pairs(&self) -> (u32, &[u8]) {
        let it = self.iter();
        (u32::try_from(it.left).unwrap_or(u32::MAX), it.p)
    }

    /// Each pair's name bytes and where the pair's encoding ends in the bytes of
    /// [`Labels::encoded_pairs`], in order: enough to merge other encoded pairs into the run by name without
    /// decoding text.
    #[must_use]
    #[inline]
    pub fn pair_ends(&self) -> PairEnds<'_> {
        let pairs = self.iter();
        PairEnds {
            total: pairs.p.len(),
            pairs,
        }
    }

    /// Number of pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.iter().left as usize
    }

    /// True for a set without pairs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of label `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|&(n, _)| n == name).map(|(_, v)| v)
    }

    /// Bytes of the shared allocation (encoding and reference counts).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.0.len() + 2 * std::mem::size_of::<usize>()
    }
}

/// Encodes `pairs` onto `out`.
pub(crate) fn encode(out: &mut Vec<u8>, pairs: &[(&str, &str)]) {
    put_uvarint(out, pairs.len() as u64);
    for (n, v) in pairs {
        put_uvarint(out, n.len() as u64);
        out.extend_from_slice(n.as_bytes());
        put_uvarint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
}

/// The pairs of a [`Labels`].
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    p: &'a [u8],
    left: u64,
}

impl<'a> Iter<'a> {
    #[inline]
    fn text(&mut self) -> &'a str {
        // Checked when the set was made.
        std::str::from_utf8(take_text(&mut self.p)).unwrap_or_default()
    }
}

/// Takes one `uvarint len | bytes` string off the front of `p`; a malformed one empties `p`.
#[inline]
fn take_text<'a>(p: &mut &'a [u8]) -> &'a [u8] {
    let len = get_uvarint(p).and_then(|l| usize::try_from(l).ok());
    let Some(bytes) = len.and_then(|l| p.get(..l)) else {
        *p = &[];
        return &[];
    };
    *p = &p[bytes.len()..];
    bytes
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let name = self.text();
        let value = self.text();
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.left).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// The pairs of a [`Labels`] as name bytes and the end offset of each pair's encoding
/// ([`Labels::pair_ends`]).
#[derive(Debug, Clone)]
pub struct PairEnds<'a> {
    pairs: Iter<'a>,
    /// Length of all the pairs' encoding.
    total: usize,
}

impl<'a> Iterator for PairEnds<'a> {
    type Item = (&'a [u8], usize);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let it = &mut self.pairs;
        if it.left == 0 {
            return None;
        }
        it.left -= 1;
        let name = take_text(&mut it.p);
        take_text(&mut it.p);
        Some((name, self.total - it.p.len()))
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let owned: Vec<(N, V)> = iter.into_iter().collect();
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        Labels::new(&refs)
    }
}

impl<N: AsRef<str>, V: AsRef<str>> From<Vec<(N, V)>> for Labels {
    fn from(pairs: Vec<(N, V)>) -> Self {
        pairs.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_share_one_allocation() {
        let l = Labels::new(&[("__name__", "up"), ("job", "nödé")]);
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [("__name__", "up"), ("job", "nödé")]
        );
        assert_eq!((l.len(), l.get("job"), l.get("x")), (2, Some("nödé"), None));
        let c = l.clone();
        assert!(c.same(&l));
        assert_eq!(Labels::from_encoded(l.encoded()), Some(l.clone()));
        assert!(!Labels::from_encoded(l.encoded()).is_some_and(|x| x.same(&l)));
        assert_eq!(format!("{l:?}"), r#"[("__name__", "up"), ("job", "nödé")]"#);
    }

    #[test]
    fn encoded_pairs_are_postcard_string_pairs() {
        let long = "v".repeat(300);
        let pairs = [("__name__", "up"), ("job", "nödé"), ("long", long.as_str())];
        let labels = Labels::new(&pairs);
        let (count, bytes) = labels.encoded_pairs();
        assert_eq!(count, 3);
        // Postcard writes a slice of pairs as its length (one byte here), then the pairs.
        let postcard = postcard::to_allocvec(&pairs[..]).unwrap();
        assert_eq!(postcard[0], 3);
        assert_eq!(bytes, &postcard[1..]);
    }

    #[test]
    fn pair_ends_split_the_encoding_at_each_pair() {
        let long = "v".repeat(300);
        let labels = Labels::new(&[("__name__", "up"), ("jöb", long.as_str()), ("z", "")]);
        let (_, bytes) = labels.encoded_pairs();
        let ends: Vec<(&[u8], usize)> = labels.pair_ends().collect();
        let names: Vec<&[u8]> = ends.iter().map(|e| e.0).collect();
        assert_eq!(names, [&b"__name__"[..], "jöb".as_bytes(), b"z"]);
        // Each span decodes as exactly its own pair.
        let mut from = 0;
        for ((n, v), (_, end)) in labels.iter().zip(&ends) {
            let pair: (&str, &str) = postcard::from_bytes(&bytes[from..*end]).unwrap();
            assert_eq!(pair, (n, v));
            from = *end;
        }
        assert_eq!(from, bytes.len());
    }

    #[test]
    fn malformed_encodings_are_refused() {
        let good = Labels::new(&[("a", "b")]);
        let bytes = good.encoded();
        // Cut short, a trailing byte, text that is not UTF-8, a count beyond the input.
        assert!(Labels::from_encoded(&bytes[..bytes.len() - 1]).is_none());
        assert!(Labels::from_encoded(&[bytes, &[0]].concat()).is_none());
        assert!(Labels::from_encoded(&[1, 1, b'a', 1, 0xff]).is_none());
        assert!(Labels::from_encoded(&[9, 0]).is_none());
        // `read` takes one set off the front.
        let two = [bytes, bytes].concat();
        let mut p = two.as_slice();
        assert_eq!(Labels::read(&mut p), Some(good.clone()));
        assert_eq!(p, bytes);
    }

    #[test]
    fn a_keyed_series_is_one_allocation_from_key_to_batch() {
        let tmp = tempfile::tempdir().unwrap();
        let mut wal = crate::Wal::open(tmp.path(), crate::Options::default()).unwrap();
        let key = crate::SeriesKey::new(&[("__name__", "up"), ("job", "node")]).unwrap();
        let c = wal.consumer("c").unwrap();
        for t in 0..3 {
            let s = crate::KeyedSample {
                key: &key,
                t_ms: t,
                value: 1.0,
            };
            wal.append_keyed([s]).unwrap();
        }
        let b = wal.read(c, 10).unwrap().unwrap();
        assert_eq!((b.samples.len(), b.series.len()), (3, 1));
        assert!(b.series[0].same(key.labels()), "the batch decoded a copy");
        // Appended by labels instead, the same series keeps the table's allocation.
        let labels = [("__name__", "up"), ("job", "node")];
        wal.append([crate::SampleRef {
            labels: &labels,
            t_ms: 3,
            value: 2.0,
        }])
        .unwrap();
        let b = wal.read(c, 10).unwrap().unwrap();
        assert!(b.series[0].same(key.labels()));
    }
}
