//! Record payloads: series definitions and compressed samples. No I/O.
//!
//! Samples are compressed per record, against per-series state carried through the segment:
//! the previous value of each series (XOR or integer delta, Gorilla-style) and a record-wide
//! base timestamp. A scrape's samples share one timestamp and come in the order of the
//! previous scrape, so a record usually needs no per-sample id or time at all (the "dense"
//! flag), and otherwise one bit per sample; a value that did not change costs one bit.
//!
//! Value codes, per sample:
//!
//! ```text
//! 0                                 same bits as the series' previous value
//! 10    varint(zigzag(Δ))           both values are integers; Δ is their difference
//! 110   scale:4 varint(zigzag(Δ))   both values are n/10^scale exactly (scale 1..=9); Δ in
//!                                   units of 10^-scale
//! 1110  lead:5 len-1:6 bits:len     XOR with the previous value: `lead` leading zero bits,
//!                                   then `len` meaningful bits
//! 1111  0 scale:4 varint(zigzag(n)) a "key", decodable without history: the value is
//!                                   n/10^scale exactly (scale 0..=9)
//! 1111  1 bits:64                   a key holding the raw value
//! ```
//!
//! (Records without the [`SHORT_KEYS`] flag, written before it existed, hold every key as
//! `1111 bits:64`.)
//!
//! Each series writes a key every [`KEY_INTERVAL`] samples (and for its first sample in the
//! segment), so a reader that skipped a damaged page resynchronises within that many samples
//! instead of losing the rest of the segment. Parsing never depends on earlier records: only the
//! value a code denotes does, which is why a reader that lost history drops the sample rather
//! than decoding it wrong.

use crate::bits::{BitReader, BitWriter, get_uvarint, put_uvarint, unzigzag, zigzag};

/// Record kind: series definitions.
pub(crate) const REC_SERIES: u8 = 1;
/// Record kind: samples.
pub(crate) const REC_SAMPLES: u8 = 2;
/// Most samples in one record.
pub(crate) const MAX_RECORD_SAMPLES: u32 = 4096;
/// A series writes a raw ("key") value at least every this many samples.
pub(crate) const KEY_INTERVAL: u16 = 128;

pub use crate::labels::Labels;

/// Writer-side compression state of one series.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EncState {
    last: u64,
    since_key: u16,
    started: bool,
    /// Scale of the series' last decimal step or decimal key (0 after a raw key): what a short
    /// delta code means.
    scale: u8,
}

impl EncState {
    /// Staggers keys by series id so a scrape does not write all its keys at once.
    pub(crate) fn new(id: u32) -> Self {
        EncState {
            last: 0,
            since_key: (id % u32::from(KEY_INTERVAL)) as u16,
            started: false,
            scale: 0,
        }
    }
}

/// Builds one samples record.
///
/// Series ids and timestamps go to one bit stream, values to another, so that the common case
/// (ids consecutive, one timestamp for the whole record) drops the first stream entirely.
#[derive(Debug, Default)]
pub(crate) struct SamplesBuilder {
    meta: BitWriter,
    vals: BitWriter,
    count: u32,
    base_t: i64,
    first_id: u32,
    prev_id: i64,
    prev_t: i64,
    dense: bool,
}

/// Flag of a samples record: ids consecutive from `first_id`, every timestamp `base_t`.
const DENSE: u8 = 1;
/// Flag of a samples record: the short delta code `10` steps at the series' kept scale (the
/// scale of its last decimal step) instead of scale 0. Every record written now has it;
/// records without it are read as before.
const KEPT_SCALE: u8 = 2;
/// Flag of a samples record: a key is `1111 0 scale:4 varint(zigzag(n))` for a value that is
/// `n / 10^scale` exactly, which then becomes the kept scale, or `1111 1 bits:64`. Every
/// record written now has it; records without it hold every key as `1111 bits:64`.
const SHORT_KEYS: u8 = 4;
/// The flags every record written now carries.
const WRITTEN: u8 = KEPT_SCALE | SHORT_KEYS;

impl SamplesBuilder {
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bounds a reader's memory: a decoded record is held whole.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_RECORD_SAMPLES
    }

    /// Upper bound of the record's encoded size.
    pub(crate) fn encoded_len(&self) -> usize {
        2 + 10 + 5 + 5 + 5 + self.meta.len_bytes() + self.vals.len_bytes()
    }

    /// Worst-case bytes one more sample adds.
    pub(crate) const MAX_SAMPLE_BYTES: usize = 32;

    pub(crate) fn add(&mut self, st: &mut EncState, id: u32, t: i64, v: f64) {
        if self.count == 0 {
            self.base_t = t;
            self.prev_t = t;
            self.first_id = id;
            self.prev_id = i64::from(id) - 1;
            self.dense = true;
        }
        self.count += 1;
        let id = i64::from(id);
        if id == self.prev_id + 1 && t == self.prev_t {
            self.meta.bit(false);
        } else {
            self.meta.bit(true);
            self.meta.varint(zigzag(id - (self.prev_id + 1)));
            self.meta.varint(zigzag(t.wrapping_sub(self.prev_t)));
            self.dense = false;
        }
        self.prev_id = id;
        self.prev_t = t;
        encode_value(&mut self.vals, st, v.to_bits());
    }

    /// Appends the record to `out` and resets the builder.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        out.push(REC_SAMPLES);
        out.push(if self.dense { DENSE | WRITTEN } else { WRITTEN });
        put_uvarint(out, zigzag(self.base_t));
        put_uvarint(out, u64::from(self.count));
        put_uvarint(out, u64::from(self.first_id));
        if !self.dense {
            put_uvarint(out, self.meta.len_bytes() as u64);
            out.extend_from_slice(self.meta.as_bytes());
        }
        out.extend_from_slice(self.vals.as_bytes());
        self.meta.clear();
        self.vals.clear();
        self.count = 0;
    }
}

fn encode_value(w: &mut BitWriter, st: &mut EncState, bits: u64) {
    st.since_key = st.since_key.saturating_add(1);
    if st.started && bits == st.last {
        w.bit(false);
        return;
    }
    if !st.started || st.since_key >= KEY_INTERVAL {
        w.bits(0b1111, 4);
        match decimal_key(bits) {
            Some((scale, n)) => {
                w.bit(false);
                w.bits(u64::from(scale), 4);
                w.varint(zigzag(n));
                st.scale = scale as u8;
            }
            None => {
                w.bit(true);
                w.bits(bits, 64);
                st.scale = 0;
            }
        }
        st.since_key = 0;
    } else {
        let xor = bits ^ st.last;
        let lead = xor.leading_zeros().min(31);
        let len = 64 - lead - xor.trailing_zeros();
        let xor_cost = 4 + 5 + 6 + len as usize;
        // A step at the kept scale needs no scale field; the smallest scale both values
        // share gives the smallest step, so only scales below the kept one can beat it. The
        // cheapest of the three codes wins.
        let kept = decimal_step(st.last, bits, u32::from(st.scale))
            .map(|d| (2 + varint_bits(zigzag(d)), d));
        let below = if kept.is_some() {
            u32::from(st.scale)
        } else {
            POW10.len() as u32
        };
        let fresh = smallest_common_scale(st.last, bits, below)
            .map(|(scale, d)| (3 + 4 + varint_bits(zigzag(d)), scale, d));
        match (kept, fresh) {
            (Some((cost, d)), f) if cost < xor_cost && f.is_none_or(|f| cost <= f.0) => {
                w.bits(0b10, 2);
                w.varint(zigzag(d));
            }
            (_, Some((cost, scale, d))) if cost < xor_cost => {
                w.bits(0b110, 3);
                w.bits(u64::from(scale), 4);
                w.varint(zigzag(d));
                st.scale = scale as u8;
            }
            _ => {
                w.bits(0b1110, 4);
                w.bits(u64::from(lead), 5);
                w.bits(u64::from(len - 1), 6);
                w.bits(xor >> xor.trailing_zeros(), len);
            }
        }
    }
    st.started = true;
    st.last = bits;
}

fn varint_bits(v: u64) -> usize {
    let groups = (64 - v.leading_zeros() as usize).div_ceil(7).max(1);
    groups * 8
}

/// Powers of ten that are exact in `f64`.
const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// The step from `prev` to `cur` in units of 10^-scale, if both values are exactly
/// `n / 10^scale` for integers `n` of at most 53 bits: values printed with a few decimals
/// (CPU seconds, temperatures, nanosecond durations) then cost their change in those units
/// instead of an XOR of their mantissas. `-0.0`, NaN and infinities never qualify.
fn decimal_step(prev: u64, cur: u64, scale: u32) -> Option<i64> {
    if !f64::from_bits(prev).is_finite() || !f64::from_bits(cur).is_finite() {
        return None;
    }
    to_scaled(cur, scale)?.checked_sub(to_scaled(prev, scale)?)
}

/// The smallest scale at which the value is exact and the integer at it, if that key is shorter
/// than the raw one. Counters, integer gauges and values printed with a few decimals (most of
/// what a target exposes) then write their keys in a few bytes: at 100k series a 4 MiB segment
/// holds only about 15 samples per series, so its first key per series is a sizeable share.
fn decimal_key(bits: u64) -> Option<(u32, i64)> {
    if !f64::from_bits(bits).is_finite() {
        return None;
    }
    let (scale, n) = (0..POW10.len() as u32).find_map(|s| to_scaled(bits, s).map(|n| (s, n)))?;
    (4 + varint_bits(zigzag(n)) < 64).then_some((scale, n))
}

/// The smallest scale below `below` (at most 9) at which both values are exact, with the step
/// at it. A value printed with one decimal fewer than the one before (`1.25` after `1.125`)
/// still steps at the finer scale.
fn smallest_common_scale(prev: u64, cur: u64, below: u32) -> Option<(u32, i64)> {
    (0..below).find_map(|scale| decimal_step(prev, cur, scale).map(|d| (scale, d)))
}

/// `n` with `n / 10^scale` bit-identical to the value, if there is one.
fn to_scaled(bits: u64, scale: u32) -> Option<i64> {
    let f = f64::from_bits(bits);
    let m = POW10[scale as usize];
    let n = (f * m).round();
    if !n.is_finite() || n.abs() >= 9.007_199_254_740_992e15 {
        return None;
    }
    let n = n as i64;
    (from_scaled(n, scale).to_bits() == bits).then_some(n)
}

fn from_scaled(n: i64, scale: u32) -> f64 {
    n as f64 / POW10[scale as usize]
}

/// Builds a format-1 series record from `count` entries starting at id `first` (format 2
/// defines series in the series log; tests still write format-1 records).
#[cfg(test)]
pub(crate) fn finish_series(out: &mut Vec<u8>, first: u32, count: u32, body: &[u8]) {
    out.push(REC_SERIES);
    put_uvarint(out, u64::from(first));
    put_uvarint(out, u64::from(count));
    out.extend_from_slice(body);
}

/// A decoded series record.
#[derive(Debug)]
pub(crate) struct SeriesRecord {
    pub(crate) first: u32,
    pub(crate) labels: Vec<Labels>,
}

/// Decodes a series record (without its kind byte).
pub(crate) fn decode_series(mut p: &[u8]) -> Result<SeriesRecord, &'static str> {
    const BAD: &str = "malformed series record";
    let first = u32::try_from(get_uvarint(&mut p).ok_or(BAD)?).map_err(|_| BAD)?;
    let count = get_uvarint(&mut p).ok_or(BAD)?;
    if count > p.len() as u64 || u64::from(first) + count > u64::from(u32::MAX) {
        return Err(BAD);
    }
    let mut labels = Vec::with_capacity(count as usize);
    for _ in 0..count {
        labels.push(Labels::read(&mut p).ok_or(BAD)?);
    }
    if !p.is_empty() {
        return Err("trailing bytes in series record");
    }
    Ok(SeriesRecord { first, labels })
}

/// Reader-side state of one series: its last value, if known.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DecState {
    last: Option<u64>,
    /// The kept scale (see [`EncState`]).
    scale: u8,
}

impl DecState {
    /// Forgets the history after data was skipped: later non-key values are dropped.
    pub(crate) fn poison(&mut self) {
        self.last = None;
    }
}

/// A decoded sample with its segment-local series id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RawSample {
    pub(crate) id: u32,
    pub(crate) t_ms: i64,
    pub(crate) value: f64,
}

/// Decodes a samples record (without its kind byte) into `out`, updating `states` (indexed by
/// series id). Samples whose series or history is unknown are dropped and counted in the
/// return value when `lenient`; otherwise they make the record invalid.
pub(crate) fn decode_samples(
    mut p: &[u8],
    states: &mut [DecState],
    lenient: bool,
    out: &mut Vec<RawSample>,
) -> Result<u64, &'static str> {
    const BAD: &str = "malformed samples record";
    let (&flags, rest) = p.split_first().ok_or(BAD)?;
    p = rest;
    if flags & !(DENSE | KEPT_SCALE | SHORT_KEYS) != 0 {
        return Err("unknown samples record flags");
    }
    let kept_scale = flags & KEPT_SCALE != 0;
    let short_keys = flags & SHORT_KEYS != 0;
    let base_t = unzigzag(get_uvarint(&mut p).ok_or(BAD)?);
    let count = get_uvarint(&mut p).ok_or(BAD)?;
    let first_id = get_uvarint(&mut p).ok_or(BAD)?;
    let mut meta = None;
    if flags & DENSE == 0 {
        let len = usize::try_from(get_uvarint(&mut p).ok_or(BAD)?).map_err(|_| BAD)?;
        meta = Some(BitReader::new(p.get(..len).ok_or(BAD)?));
        p = &p[len..];
    }
    // Each value takes at least one bit.
    if count > p.len() as u64 * 8 {
        return Err(BAD);
    }
    let mut r = BitReader::new(p);
    let mut prev_id = i64::try_from(first_id).map_err(|_| BAD)? - 1;
    let mut prev_t = base_t;
    let mut dropped = 0;
    out.reserve(count as usize);
    for _ in 0..count {
        let escaped = match meta.as_mut() {
            Some(m) => m.bit().ok_or(BAD)?,
            None => false,
        };
        let (id, t_ms) = match meta.as_mut() {
            Some(m) if escaped => (
                prev_id
                    .wrapping_add(1)
                    .wrapping_add(unzigzag(m.varint().ok_or(BAD)?)),
                prev_t.wrapping_add(unzigzag(m.varint().ok_or(BAD)?)),
            ),
            _ => (prev_id + 1, prev_t),
        };
        let id = u32::try_from(id).map_err(|_| "series id out of range")?;
        prev_id = i64::from(id);
        prev_t = t_ms;
        let value = read_value(&mut r, kept_scale, short_keys).ok_or(BAD)?;
        let Some(st) = states.get_mut(id as usize) else {
            if lenient {
                dropped += 1;
                continue;
            }
            return Err("sample refers to an undefined series");
        };
        match value {
            Value::Raw(_) => st.scale = 0,
            Value::Delta(Some(scale), _) | Value::Key(scale, _) => st.scale = scale as u8,
            _ => {}
        }
        let bits = match (value, st.last) {
            (Value::Raw(b), _) => Some(b),
            (Value::Key(scale, n), _) => Some(from_scaled(n, scale).to_bits()),
            (Value::Same, Some(last)) => Some(last),
            (Value::Xor(x), Some(last)) => Some(last ^ x),
            (Value::Delta(scale, d), Some(last)) => {
                let scale = scale.unwrap_or(u32::from(st.scale));
                let base = to_scaled(last, scale).ok_or("decimal delta on an unscaled value")?;
                Some(from_scaled(base.wrapping_add(d), scale).to_bits())
            }
            (_, None) => None,
        };
        match bits {
            Some(b) => {
                st.last = Some(b);
                out.push(RawSample {
                    id,
                    t_ms,
                    value: f64::from_bits(b),
                });
            }
            None if lenient => dropped += 1,
            None => return Err("sample without history"),
        }
    }
    Ok(dropped)
}

/// Calls `f(first, count)` for each run of consecutive series ids a samples record (without
/// its kind byte) names, in the record's order, without decoding its values: what opening
/// needs to know which series each segment uses.
pub(crate) fn samples_ids(mut p: &[u8], mut f: impl FnMut(u32, u32)) -> Result<(), &'static str> {
    const BAD: &str = "malformed samples record";
    let (&flags, rest) = p.split_first().ok_or(BAD)?;
    p = rest;
    if flags & !(DENSE | KEPT_SCALE | SHORT_KEYS) != 0 {
        return Err("unknown samples record flags");
    }
    get_uvarint(&mut p).ok_or(BAD)?;
    let count = get_uvarint(&mut p).ok_or(BAD)?;
    let first = get_uvarint(&mut p).ok_or(BAD)?;
    let out_of_range = "series id out of range";
    if flags & DENSE != 0 {
        let first = u32::try_from(first).map_err(|_| out_of_range)?;
        let count = u32::try_from(count).map_err(|_| BAD)?;
        if count > 0 {
            first.checked_add(count - 1).ok_or(out_of_range)?;
            f(first, count);
        }
        return Ok(());
    }
    let len = usize::try_from(get_uvarint(&mut p).ok_or(BAD)?).map_err(|_| BAD)?;
    let mut meta = BitReader::new(p.get(..len).ok_or(BAD)?);
    // Each sample takes at least one bit of the meta stream.
    if count > len as u64 * 8 {
        return Err(BAD);
    }
    let mut prev = i64::try_from(first).map_err(|_| BAD)? - 1;
    let (mut start, mut run) = (0u32, 0u32);
    for _ in 0..count {
        let id = if meta.bit().ok_or(BAD)? {
            let d = unzigzag(meta.varint().ok_or(BAD)?);
            meta.varint().ok_or(BAD)?;
            prev.wrapping_add(1).wrapping_add(d)
        } else {
            prev + 1
        };
        let id = u32::try_from(id).map_err(|_| out_of_range)?;
        prev = i64::from(id);
        if run > 0 && u64::from(id) == u64::from(start) + u64::from(run) {
            run += 1;
        } else {
            if run > 0 {
                f(start, run);
            }
            (start, run) = (id, 1);
        }
    }
    if run > 0 {
        f(start, run);
    }
    Ok(())
}

enum Value {
    Same,
    /// A step at a scale, or at the series' kept scale (`None`).
    Delta(Option<u32>, i64),
    Xor(u64),
    Raw(u64),
    /// A key of `n / 10^scale`.
    Key(u32, i64),
}

fn read_value(r: &mut BitReader<'_>, kept_scale: bool, short_keys: bool) -> Option<Value> {
    if !r.bit()? {
        return Some(Value::Same);
    }
    if !r.bit()? {
        let scale = if kept_scale { None } else { Some(0) };
        return Some(Value::Delta(scale, unzigzag(r.varint()?)));
    }
    if !r.bit()? {
        let scale = r.bits(4)? as u32;
        if scale as usize >= POW10.len() {
            return None;
        }
        return Some(Value::Delta(Some(scale), unzigzag(r.varint()?)));
    }
    if !r.bit()? {
        let lead = r.bits(5)? as u32;
        let len = r.bits(6)? as u32 + 1;
        if lead + len > 64 {
            return None;
        }
        let m = r.bits(len)?;
        return Some(Value::Xor(m << (64 - lead - len)));
    }
    if short_keys && !r.bit()? {
        let scale = r.bits(4)? as u32;
        if scale as usize >= POW10.len() {
            return None;
        }
        return Some(Value::Key(scale, unzigzag(r.varint()?)));
    }
    Some(Value::Raw(r.bits(64)?))
}

/// Reads the number of samples a samples record holds without decoding them.
pub(crate) fn samples_count(p: &[u8]) -> Option<u64> {
    let mut p = p.get(1..)?;
    get_uvarint(&mut p)?;
    get_uvarint(&mut p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Vec<f64> {
        let mut st = EncState::new(0);
        let mut dec = [DecState::default()];
        let mut out = Vec::new();
        for chunk in values.chunks(3) {
            let mut b = SamplesBuilder::default();
            for &v in chunk {
                b.add(&mut st, 0, 1000, v);
            }
            let mut rec = Vec::new();
            b.finish(&mut rec);
            assert_eq!(rec[0], REC_SAMPLES);
            decode_samples(&rec[1..], &mut dec, false, &mut out).unwrap();
        }
        out.iter().map(|s| s.value).collect()
    }

    #[test]
    fn every_bit_pattern_survives() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let vals = [
            0.0,
            -0.0,
            1.0,
            2.0,
            stale,
            f64::NAN,
            f64::INFINITY,
            -1e300,
            f64::MIN_POSITIVE,
            5e-324,
            42.0,
            43.0,
            -43.0,
            9.007_199_254_740_993e15,
            stale,
            stale,
            1.5,
        ];
        let got = round_trip(&vals);
        let a: Vec<u64> = vals.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn samples_golden_bytes() {
        let mut st = [EncState::new(0), EncState::new(1)];
        let mut b = SamplesBuilder::default();
        b.add(&mut st[0], 0, 1000, 1.0);
        b.add(&mut st[1], 1, 1000, 1.0);
        b.add(&mut st[0], 0, 2000, 1.0);
        let mut rec = Vec::new();
        b.finish(&mut rec);
        // kind 2, flags 6 (kept scale, short keys), zigzag(1000)=2000 as LEB128 (d0 0f),
        // count 3, first id 0, meta length 4, then the meta stream (ids, times) and the value
        // stream:
        // meta  s0: 0 | s1: 0 | s2: 1, id varint(zigzag(0-2)=3) = 0 0000011,
        //       t varint(zigzag(2000-1000)=2000) = 1 1010000 0 0001111
        // vals  s0: 1111 0 scale 0000 varint(zigzag(1)=2) | s1: same | s2: 0 (unchanged)
        let key = "1111 0 0000 00000010";
        let meta = bits_to_bytes("001000000111101000000001111");
        let vals = bits_to_bytes(&format!("{key}{key}0").replace(' ', ""));
        let mut want = vec![2, 6, 0xd0, 0x0f, 3, 0, meta.len() as u8];
        want.extend_from_slice(&meta);
        want.extend_from_slice(&vals);
        assert_eq!(rec, want);

        // A scrape-shaped record: consecutive ids, one timestamp: no meta stream at all.
        b.add(&mut st[0], 0, 3000, 2.0);
        b.add(&mut st[1], 1, 3000, 1.0);
        let mut rec = Vec::new();
        b.finish(&mut rec);
        // s0: 2.0 after 1.0 is a step of +1 at the kept scale 0: 10 varint(zigzag(1)=2)
        // = 10 0 0000010; s1: unchanged: 0
        let vals = bits_to_bytes("10000000100");
        let mut want = vec![2, 7, 0xf0, 0x2e, 2, 0];
        want.extend_from_slice(&vals);
        assert_eq!(rec, want);

        // Thousandths: the first step names scale 3, the next ones step at it.
        for (t, v) in [(4000, 2.001), (5000, 2.003), (6000, 2.0)] {
            b.add(&mut st[0], 0, t, v);
        }
        let mut rec = Vec::new();
        b.finish(&mut rec);
        // meta: 0 | 1, id varint(zigzag(0-1)=1), t varint(zigzag(1000)=2000) | same for s2
        // vals: 110 0011 varint(zigzag(1)=2) | 10 varint(zigzag(2)=4) | 10 varint(zigzag(-3)=5)
        let step = "1 00000001 1101000000001111";
        let meta = bits_to_bytes(&format!("0{step}{step}").replace(' ', ""));
        let vals = bits_to_bytes(
            "110 0011 00000010 10 00000100 10 00000101"
                .replace(' ', "")
                .as_str(),
        );
        // zigzag(4000)=8000 as LEB128: c0 3e
        let mut want = vec![2, 6, 0xc0, 0x3e, 3, 0, meta.len() as u8];
        want.extend_from_slice(&meta);
        want.extend_from_slice(&vals);
        assert_eq!(rec, want);

        // Keys: 12.5 is 125 at scale 1, which becomes the kept scale (the next step, +0.1,
        // needs no scale field); the staleness marker is exact at no scale: a raw key.
        let mut st = [EncState::new(0), EncState::new(1)];
        b.add(&mut st[0], 0, 1000, 12.5);
        b.add(&mut st[1], 1, 1000, f64::from_bits(0x7ff0_0000_0000_0002));
        b.add(&mut st[0], 0, 1000, 12.6);
        let mut rec = Vec::new();
        b.finish(&mut rec);
        // meta: 0 | 0 | 1, id varint(zigzag(0-2)=3), t varint(0)
        // vals: 1111 0 0001 varint(zigzag(125)=250) = 1 1111010 0 0000001
        //       | 1111 1 0x7ff0000000000002 | 10 varint(zigzag(1)=2)
        let stale = "0111111111110000000000000000000000000000000000000000000000000010";
        let meta = bits_to_bytes("001000000110000000");
        let vals = bits_to_bytes(
            &format!("1111 0 0001 1 1111010 0 0000001 1111 1 {stale} 10 00000010").replace(' ', ""),
        );
        let mut want = vec![2, 6, 0xd0, 0x0f, 3, 0, meta.len() as u8];
        want.extend_from_slice(&meta);
        want.extend_from_slice(&vals);
        assert_eq!(rec, want);
    }

    /// The golden record of FORMAT.md's "2: samples".
    #[test]
    fn format_md_short_keys_golden() {
        let mut st = [EncState::new(0), EncState::new(1)];
        let mut b = SamplesBuilder::default();
        b.add(&mut st[0], 0, 1000, 12.5);
        b.add(&mut st[1], 1, 1000, 1.0);
        let mut rec = Vec::new();
        b.finish(&mut rec);
        let want = [
            0x02, 0x07, 0xd0, 0x0f, 0x02, 0x00, 0xf0, 0xfd, 0x00, 0xf8, 0x00, 0x80,
        ];
        assert_eq!(rec, want);
        let md = include_str!("../FORMAT.md");
        assert!(md.contains("02 07 d0 0f 02 00 f0 fd 00 f8 00 80"));
    }

    /// Records written before short keys (flag 2 without flag 4) hold every key as
    /// `1111 bits:64`, and read as they always did.
    #[test]
    fn records_with_raw_keys_still_read() {
        let one = "0011111111110000000000000000000000000000000000000000000000000000";
        // Dense records (flags 3, t 1000) of series 0 and 1: keys 1.0 and 1.0, then 2.0 (a
        // step of +1) and 1.0 (unchanged).
        let mut dec = [DecState::default(); 2];
        let mut out = Vec::new();
        for vals in [format!("1111{one}1111{one}"), "10000000100".to_owned()] {
            let mut rec = vec![3, 0xd0, 0x0f, 2, 0];
            rec.extend_from_slice(&bits_to_bytes(&vals));
            decode_samples(&rec, &mut dec, false, &mut out).unwrap();
        }
        let got: Vec<f64> = out.iter().map(|s| s.value).collect();
        assert_eq!(got, [1.0, 1.0, 2.0, 1.0]);
    }

    /// Records written before the kept scale (flags 0 and 1) read as they always did: `10`
    /// is a step at scale 0.
    #[test]
    fn records_without_kept_scale_still_read() {
        let one = "0011111111110000000000000000000000000000000000000000000000000000";
        // Dense single-sample records (flags 1, t 1000) of series 0: 1.0 (key), then twice
        // 110 0001 varint(zigzag(5)=10), a step of +0.5 at scale 1: 1.5, 2.0.
        let recs = [
            bits_to_bytes(&format!("1111{one}")),
            bits_to_bytes("1100001 0 0001010".replace(' ', "").as_str()),
            bits_to_bytes("1100001 0 0001010".replace(' ', "").as_str()),
        ];
        let mut dec = [DecState::default()];
        let mut out = Vec::new();
        for vals in &recs {
            let mut rec = vec![1, 0xd0, 0x0f, 1, 0];
            rec.extend_from_slice(vals);
            decode_samples(&rec, &mut dec, false, &mut out).unwrap();
        }
        let after_scale_1 = dec;
        // A `10` (varint(zigzag(1)=2)) after a scale-1 step is still scale 0 in such a
        // record: 2.0 + 1 = 3.0.
        let mut rec = vec![1, 0xd0, 0x0f, 1, 0];
        rec.extend_from_slice(&bits_to_bytes("100 0000010".replace(' ', "").as_str()));
        decode_samples(&rec, &mut dec, false, &mut out).unwrap();
        let got: Vec<f64> = out.iter().map(|s| s.value).collect();
        assert_eq!(got, [1.0, 1.5, 2.0, 3.0]);
        // The same `10` in a kept-scale record steps at scale 1: 2.0 + 0.1.
        let mut dec = after_scale_1;
        rec[0] = 3;
        decode_samples(&rec, &mut dec, false, &mut out).unwrap();
        assert_eq!(out.last().unwrap().value, 2.1);
    }

    /// A value printed with fewer decimals than the one before still costs a decimal step, not
    /// an XOR of mantissas.
    #[test]
    fn trailing_zero_keeps_the_decimal_step() {
        let bits_for = |vals: &[f64]| {
            let mut st = EncState::new(0);
            let mut b = SamplesBuilder::default();
            for (i, &v) in vals.iter().enumerate() {
                b.add(&mut st, 0, i as i64, v);
            }
            b.vals.len_bits()
        };
        // 12.345 → 12.35 (a step of +5 thousandths) → 12.351: the key 1111 0 0011
        // varint(zigzag(12345)) = 9 + 24 bits sets scale 3, then 10 varint(10) = 10 and
        // 10 varint(2) = 10.
        assert_eq!(bits_for(&[12.345, 12.35, 12.351]), 33 + 10 + 10);
        // The same after a key at scale 0 (1.0 is exact there): the first step names its
        // scale, 110 0011 varint(zigzag(1)=2) = 15, and the next steps at it.
        assert_eq!(bits_for(&[1.0, 1.001, 1.002]), 17 + 15 + 10);
    }

    fn value_strategy() -> impl Strategy<Value = f64> {
        prop_oneof![
            // Decimals at a random scale, near each other.
            (0i64..2000, 0u32..10).prop_map(|(n, s)| n as f64 / POW10[s as usize]),
            (-5i64..5).prop_map(|n| n as f64),
            any::<u64>().prop_map(f64::from_bits),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            Just(-0.0),
            (0i64..1 << 53).prop_map(|n| n as f64 / 1e9),
        ]
    }

    /// The ids of a record, as `samples_ids` reports them, one by one.
    fn ids_of(rec: &[u8]) -> Vec<u32> {
        let mut ids = Vec::new();
        samples_ids(&rec[1..], |first, count| {
            assert!(count > 0);
            let first = u64::from(first);
            ids.extend((first..first + u64::from(count)).map(|id| u32::try_from(id).unwrap()));
        })
        .unwrap();
        ids
    }

    #[test]
    fn ids_of_a_dense_record_come_as_one_run() {
        let mut b = SamplesBuilder::default();
        let mut st = [EncState::new(0); 4];
        for (i, st) in st.iter_mut().enumerate() {
            b.add(st, 7 + i as u32, 1000, 1.5);
        }
        let mut rec = Vec::new();
        b.finish(&mut rec);
        assert_eq!(rec[1] & DENSE, DENSE);
        let mut runs = Vec::new();
        samples_ids(&rec[1..], |first, count| runs.push((first, count))).unwrap();
        assert_eq!(runs, [(7, 4)]);
    }

    proptest::proptest! {
        /// Any values, in records of any size, come back bit for bit, and reading with the
        /// history of every series lost drops (never guesses) until the next key.
        #[test]
        fn values_round_trip(
            vals in proptest::collection::vec((0u32..3, value_strategy()), 1..400),
            cut in 1usize..50,
        ) {
            let mut st = [EncState::new(0), EncState::new(1), EncState::new(2)];
            let mut dec = [DecState::default(); 3];
            let mut out = Vec::new();
            for chunk in vals.chunks(cut) {
                let mut b = SamplesBuilder::default();
                for &(id, v) in chunk {
                    b.add(&mut st[id as usize], id, 1000, v);
                }
                let mut rec = Vec::new();
                b.finish(&mut rec);
                decode_samples(&rec[1..], &mut dec, false, &mut out).unwrap();
            }
            let want: Vec<(u32, u64)> = vals.iter().map(|&(id, v)| (id, v.to_bits())).collect();
            let got: Vec<(u32, u64)> = out.iter().map(|s| (s.id, s.value.to_bits())).collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// The ids read without the values are the ids the record was built with, in order,
        /// for ids in any order (up to `u32::MAX`) and timestamps that change anywhere.
        #[test]
        fn ids_read_alone_are_the_ids_written(
            samples in proptest::collection::vec(
                (proptest::prop_oneof![0u32..6, (u32::MAX - 3)..=u32::MAX], 0i64..3),
                1..300,
            ),
            cut in 1usize..60,
        ) {
            let mut st = std::collections::HashMap::new();
            for chunk in samples.chunks(cut) {
                let mut b = SamplesBuilder::default();
                for &(id, t) in chunk {
                    let e = st.entry(id).or_insert_with(|| EncState::new(id));
                    b.add(e, id, 1000 + t, f64::from(id % 7));
                }
                let mut rec = Vec::new();
                b.finish(&mut rec);
                let want: Vec<u32> = chunk.iter().map(|s| s.0).collect();
                proptest::prop_assert_eq!(ids_of(&rec), want);
            }
        }
    }

    fn bits_to_bytes(bits: &str) -> Vec<u8> {
        let mut bw = BitWriter::default();
        for c in bits.chars() {
            bw.bit(c == '1');
        }
        bw.as_bytes().to_vec()
    }

    #[test]
    fn unknown_history_is_dropped_not_guessed() {
        let mut st = EncState::new(0);
        let mut b = SamplesBuilder::default();
        b.add(&mut st, 0, 1, 10.0);
        let mut first = Vec::new();
        b.finish(&mut first);
        b.add(&mut st, 0, 2, 11.0);
        let mut second = Vec::new();
        b.finish(&mut second);
        let mut dec = [DecState::default()];
        let mut out = Vec::new();
        assert_eq!(
            decode_samples(&second[1..], &mut dec, true, &mut out),
            Ok(1)
        );
        assert!(out.is_empty());
        assert!(decode_samples(&second[1..], &mut dec, false, &mut out).is_err());
    }

    #[test]
    fn series_round_trip() {
        let mut body = Vec::new();
        crate::labels::encode(&mut body, &[("__name__", "up"), ("job", "node")]);
        crate::labels::encode(&mut body, &[("__name__", "x")]);
        let mut rec = Vec::new();
        finish_series(&mut rec, 7, 2, &body);
        let s = decode_series(&rec[1..]).unwrap();
        assert_eq!(s.first, 7);
        assert_eq!(s.labels.len(), 2);
        assert_eq!(s.labels[0].get("job"), Some("node"));
        assert!(decode_series(&rec[1..rec.len() - 1]).is_err());
    }
}
