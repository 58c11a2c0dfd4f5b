//! Exemplar records (kind 4): a scrape's exemplars, each naming its series by ring-wide id.
//!
//! An exemplar belongs to a sample, but is stored apart from it: samples records stay
//! compact and a reader that wants no exemplars skips the whole record by its length. The
//! record is framed before the pending samples record of the same scrape (which is framed
//! at the next flush), so a reader meets a scrape's exemplars and then its samples, and a
//! batch that holds one usually holds the other. They carry no samples: positions before
//! and after the record count the same samples, and acknowledging past the record
//! acknowledges its exemplars.

use crate::SeriesKey;
use crate::bits::{get_uvarint, put_uvarint, unzigzag, zigzag};
use crate::codec::Labels;

/// Record kind of an exemplar record.
pub(crate) const REC_EXEMPLARS: u8 = 4;

/// One exemplar to append: the series it was written on, its labels (sorted by name), value
/// and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedExemplar {
    /// The series (its samples of the same scrape are appended first).
    pub key: SeriesKey,
    /// `(name, value)` pairs, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// The value, bit-exact.
    pub value: f64,
}

/// An exemplar read back with a [`Batch`](crate::Batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// Index into [`Batch::series`](crate::Batch::series).
    pub series: u32,
    /// The exemplar's labels.
    pub labels: Labels,
    /// Milliseconds since the Unix epoch.
    pub t_ms: i64,
    /// The value, bit-exact.
    pub value: f64,
}

/// An exemplar as decoded from a record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawExemplar {
    pub(crate) id: u32,
    pub(crate) t_ms: i64,
    pub(crate) value: f64,
    pub(crate) labels: Labels,
}

/// Builds an exemplar record: `u8 4 | uvarint count | count × (uvarint id, uvarint
/// zigzag(t_ms), u64 LE value bits, label set)`.
pub(crate) fn encode(out: &mut Vec<u8>, exemplars: &[(u32, &OwnedExemplar)]) {
    out.push(REC_EXEMPLARS);
    put_uvarint(out, exemplars.len() as u64);
    let mut refs: Vec<(&str, &str)> = Vec::new();
    for (id, e) in exemplars {
        put_uvarint(out, u64::from(*id));
        put_uvarint(out, zigzag(e.t_ms));
        out.extend_from_slice(&e.value.to_bits().to_le_bytes());
        refs.clear();
        refs.extend(e.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        crate::labels::encode(out, &refs);
    }
}

/// Decodes an exemplar record (without its kind byte) into `out`.
pub(crate) fn decode(mut p: &[u8], out: &mut Vec<RawExemplar>) -> Result<(), &'static str> {
    const BAD: &str = "malformed exemplar record";
    let count = get_uvarint(&mut p).ok_or(BAD)?;
    // Each exemplar takes at least 11 bytes: a count beyond that is damage, not a reason to
    // reserve memory.
    if count > p.len() as u64 / 11 + 1 {
        return Err(BAD);
    }
    for _ in 0..count {
        let id = u32::try_from(get_uvarint(&mut p).ok_or(BAD)?).map_err(|_| BAD)?;
        let t_ms = unzigzag(get_uvarint(&mut p).ok_or(BAD)?);
        let bits = p.get(..8).ok_or(BAD)?;
        let value = f64::from_bits(u64::from_le_bytes(bits.try_into().map_err(|_| BAD)?));
        p = &p[8..];
        let labels = Labels::read(&mut p).ok_or(BAD)?;
        out.push(RawExemplar {
            id,
            t_ms,
            value,
            labels,
        });
    }
    if !p.is_empty() {
        return Err("trailing bytes in exemplar record");
    }
    Ok(())
}

/// Adds decoded exemplars to `batch`, naming their series by batch index (a series the batch
/// has no sample of yet joins it); an exemplar of an id without a definition is left out.
pub(crate) fn into_batch(
    batch: &mut crate::Batch,
    index: &mut crate::batch_index::BatchIndex,
    raw: &[RawExemplar],
    labels_of: impl Fn(u32) -> Option<crate::Labels>,
) {
    for e in raw {
        let i = match index.get(e.id) {
            Some(i) => i,
            None => {
                let Some(labels) = labels_of(e.id) else {
                    continue;
                };
                let i = batch.series.len() as u32;
                batch.series.push(labels);
                index.insert(e.id, i);
                i
            }
        };
        batch.exemplars.push(crate::Exemplar {
            series: i,
            labels: e.labels.clone(),
            t_ms: e.t_ms,
            value: e.value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(labels: &[(&str, &str)], t_ms: i64, value: f64) -> OwnedExemplar {
        OwnedExemplar {
            key: SeriesKey::new(&[("__name__", "x")]).unwrap(),
            labels: labels
                .iter()
                .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
                .collect(),
            t_ms,
            value,
        }
    }

    #[test]
    fn golden_bytes() {
        let e = ex(&[("trace_id", "ab")], -1, 0.5);
        let mut rec = Vec::new();
        encode(&mut rec, &[(3, &e)]);
        let want: Vec<u8> = [
            &[4, 1, 3, 1][..],
            &0.5f64.to_bits().to_le_bytes(),
            &[1, 8],
            b"trace_id",
            &[2],
            b"ab",
        ]
        .concat();
        assert_eq!(rec, want);
        assert_eq!(
            rec,
            [
                0x04, 0x01, 0x03, 0x01, 0, 0, 0, 0, 0, 0, 0xe0, 0x3f, 0x01, 0x08, b't', b'r', b'a',
                b'c', b'e', b'_', b'i', b'd', 0x02, b'a', b'b'
            ]
        );
        let mut out = Vec::new();
        decode(&rec[1..], &mut out).unwrap();
        assert_eq!(
            out,
            [RawExemplar {
                id: 3,
                t_ms: -1,
                value: 0.5,
                labels: Labels::new(&[("trace_id", "ab")]),
            }]
        );
    }

    #[test]
    fn round_trips_any_value_and_no_labels() {
        let a = ex(
            &[],
            1_700_000_000_123,
            f64::from_bits(0x7ff0_0000_0000_0002),
        );
        let b = ex(&[("a", "1"), ("span_id", "ü")], i64::MIN, -0.0);
        let mut rec = Vec::new();
        encode(&mut rec, &[(0, &a), (u32::MAX, &b)]);
        let mut out = Vec::new();
        decode(&rec[1..], &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].value.to_bits(), 0x7ff0_0000_0000_0002);
        assert_eq!((out[1].id, out[1].t_ms), (u32::MAX, i64::MIN));
        assert_eq!(out[1].value.to_bits(), (-0.0f64).to_bits());
        assert_eq!(out[1].labels.iter().nth(1).map(|p| p.1), Some("ü"));
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let e = ex(&[("trace_id", "abcdef")], 5, 1.0);
        let mut rec = Vec::new();
        encode(&mut rec, &[(1, &e), (2, &e)]);
        for cut in 1..rec.len() {
            let mut out = Vec::new();
            assert!(decode(&rec[1..cut], &mut out).is_err(), "cut at {cut}");
        }
        let mut longer = rec.clone();
        longer.push(0);
        assert!(decode(&longer[1..], &mut Vec::new()).is_err());
        let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        huge.extend_from_slice(&[0; 16]);
        assert!(decode(&huge, &mut Vec::new()).is_err());
    }
}
