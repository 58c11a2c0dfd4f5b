//! Exemplars in a request: `TimeSeries.exemplars` (field 3) in 1.0, per-series exemplars
//! (field 4) with their labels as symbol references in 2.0.
//!
//! Written like the rest of the request, straight from borrowed strings with every length
//! computed first. Labels go out as the host gave them (sorted by name), without empty
//! values; a value of `+0.0` and a timestamp of 0 are omitted as proto3 defaults.

use std::collections::HashMap;

use magpie_sdk::abi::ExportExemplar;
use prost::encoding::encoded_len_varint;

use super::put_u64;

use super::{Error, LABEL_NAME, LABEL_VALUE, Symbols, field_len, packed_len, put_str, put_varint};

const V1_EXEMPLARS: u8 = (3 << 3) | 2;
const V2_EXEMPLARS: u8 = (4 << 3) | 2;
const EX_LABELS: u8 = (1 << 3) | 2;
const EX_VALUE: u8 = (2 << 3) | 1;
const EX_TIMESTAMP: u8 = 3 << 3;

/// A batch's exemplars by series index; empty (no allocation) for a batch without any.
#[derive(Debug, Default)]
pub(crate) struct BySeries<'b> {
    map: HashMap<u32, Vec<&'b ExportExemplar<'b>>>,
}

impl<'b> BySeries<'b> {
    pub(crate) fn new(exemplars: &'b [ExportExemplar<'b>]) -> Self {
        let mut map: HashMap<u32, Vec<&'b ExportExemplar<'b>>> = HashMap::new();
        for e in exemplars {
            map.entry(e.series).or_default().push(e);
        }
        Self { map }
    }

    /// The exemplars of series `i`, in batch order.
    pub(crate) fn of(&self, i: usize) -> &[&'b ExportExemplar<'b>] {
        u32::try_from(i)
            .ok()
            .and_then(|i| self.map.get(&i))
            .map_or(&[], Vec::as_slice)
    }
}

fn labels<'b>(e: &'b ExportExemplar<'b>) -> impl Iterator<Item = (&'b [u8], &'b [u8])> {
    e.labels
        .iter()
        .filter(|l| !l.value.is_empty())
        .map(|l| (l.name.as_bytes(), l.value.as_bytes()))
}

/// Bytes of the value and timestamp fields.
fn tail_len(e: &ExportExemplar<'_>) -> usize {
    let value = if e.value.to_bits() == 0 { 0 } else { 9 };
    #[allow(clippy::cast_sign_loss)] // int64 is written as its two's complement.
    let time = if e.timestamp_ms == 0 {
        0
    } else {
        1 + encoded_len_varint(e.timestamp_ms as u64)
    };
    value + time
}

fn put_tail(out: &mut Vec<u8>, e: &ExportExemplar<'_>) {
    if e.value.to_bits() != 0 {
        out.push(EX_VALUE);
        out.extend_from_slice(&e.value.to_bits().to_le_bytes());
    }
    if e.timestamp_ms != 0 {
        out.push(EX_TIMESTAMP);
        #[allow(clippy::cast_sign_loss)]
        put_u64(out, e.timestamp_ms as u64);
    }
}

fn v1_body_len(e: &ExportExemplar<'_>) -> usize {
    labels(e)
        .map(|(n, v)| field_len(field_len(n.len()) + field_len(v.len())))
        .sum::<usize>()
        + tail_len(e)
}

/// Bytes the 1.0 `exemplars` fields of a series take.
pub(crate) fn v1_len(ex: &[&ExportExemplar<'_>]) -> usize {
    ex.iter().map(|e| field_len(v1_body_len(e))).sum()
}

/// Writes the 1.0 `exemplars` fields of a series.
pub(crate) fn put_v1(out: &mut Vec<u8>, ex: &[&ExportExemplar<'_>]) {
    for e in ex {
        out.push(V1_EXEMPLARS);
        put_varint(out, v1_body_len(e));
        for (n, v) in labels(e) {
            out.push(EX_LABELS);
            put_varint(out, field_len(n.len()) + field_len(v.len()));
            put_str(out, LABEL_NAME, n);
            put_str(out, LABEL_VALUE, v);
        }
        put_tail(out, e);
    }
}

/// Interns the labels of a series' exemplars for 2.0; one list of references per exemplar.
pub(crate) fn intern_v2<'b>(
    symbols: &mut Symbols<'b>,
    ex: &[&'b ExportExemplar<'b>],
) -> Result<Vec<Vec<u32>>, Error> {
    ex.iter()
        .map(|e| {
            labels(e)
                .flat_map(|(n, v)| [n, v])
                .map(|s| symbols.intern(s))
                .collect()
        })
        .collect()
}

fn v2_body_len(refs: &[u32], e: &ExportExemplar<'_>) -> usize {
    let labels = if refs.is_empty() {
        0
    } else {
        field_len(packed_len(refs))
    };
    labels + tail_len(e)
}

/// Bytes the 2.0 `exemplars` fields of a series take.
pub(crate) fn v2_len(refs: &[Vec<u32>], ex: &[&ExportExemplar<'_>]) -> usize {
    refs.iter()
        .zip(ex)
        .map(|(r, e)| field_len(v2_body_len(r, e)))
        .sum()
}

/// Writes the 2.0 `exemplars` fields of a series.
pub(crate) fn put_v2(out: &mut Vec<u8>, refs: &[Vec<u32>], ex: &[&ExportExemplar<'_>]) {
    for (r, e) in refs.iter().zip(ex) {
        out.push(V2_EXEMPLARS);
        put_varint(out, v2_body_len(r, e));
        if !r.is_empty() {
            out.push(EX_LABELS);
            put_varint(out, packed_len(r));
            for &x in r {
                put_u64(out, u64::from(x));
            }
        }
        put_tail(out, e);
    }
}
