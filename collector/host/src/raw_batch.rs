//! A scraper's sample batch read where it lies, without decoding its strings.
//!
//! Decoding a [`SampleBatch`] builds a 48-byte [`Label`] per label and checks every string's
//! UTF-8, although a scrape's label sets are the same scrape after scrape: a sink that keys
//! series by their encoded bytes (the scrape's series cache) needs the strings only for a
//! series it has not seen, and the check was made when it saw it first. [`RawSampleBatch`]
//! checks the batch's framing and counts up front, as strictly as postcard's decoding of a
//! [`SampleBatch`] does, and hands out each sample's name and label pairs as bytes;
//! [`RawSample::name`] and [`RawLabels::decode`] check UTF-8 when asked.

use magpie_sdk::abi::{Label, SampleBatch};
use std::borrow::Cow;

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

/// A sample's label pairs as encoded: per label a varint length and the name, a varint length
/// and the value.
#[derive(Debug, Clone, Copy)]
pub struct RawLabels<'a> {
    count: u16,
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
        let start = p;
        for _ in 0..label_count * 2 {
            string(&mut p).ok_or("a label string runs past the batch")?;
        }
        let labels = &start[..start.len() - p.len()];
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
        magpie_sdk::abi::decode(self.bytes).map_err(|e| e.to_string())
    }

    /// The samples in order, each with its labels.
    pub fn iter(&self) -> impl Iterator<Item = RawSample<'a>> + 'a {
        let (mut s, mut l) = (self.samples, self.labels);
        (0..self.len).map_while(move |_| {
            let (count, name, value, timestamp_ms) = sample(&mut s)?;
            let before = l;
            for _ in 0..u32::from(count) * 2 {
                string(&mut l)?;
            }
            Some(RawSample {
                name,
                labels: RawLabels {
                    count,
                    bytes: &before[..before.len() - l.len()],
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

    /// The metric name.
    ///
    /// # Errors
    /// The name is not UTF-8.
    pub fn name(&self) -> Result<&'a str, NotUtf8> {
        std::str::from_utf8(self.name).map_err(|_| NotUtf8)
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
            std::str::from_utf8(b)
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

/// A postcard varint of up to 64 bits, as postcard reads one: at most 10 bytes, no bits past
/// the 64th.
fn varint(p: &mut &[u8]) -> Option<u64> {
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

/// A length-prefixed byte string.
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
        1 => {
            let z = varint(p)?;
            #[allow(clippy::cast_possible_wrap)]
            Some((z >> 1) as i64 ^ -((z & 1) as i64))
        }
        _ => return None,
    };
    Some((count, name, value, timestamp_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_sdk::abi::SampleEncoder;

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
                    magpie_sdk::abi::decode::<SampleBatch<'_>>(short).is_ok_and(|b| b.is_consistent())
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
                magpie_sdk::abi::decode::<SampleBatch<'_>>(bad),
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
        assert!(magpie_sdk::abi::decode::<SampleBatch<'_>>(&bytes).is_err());
        let raw = RawSampleBatch::parse(&bytes).unwrap();
        let s = raw.iter().next().unwrap();
        assert_eq!(s.name(), Ok("up"));
        assert_eq!(s.labels.bytes(), &[1, b'a', 1, 0xff]);
        assert_eq!(s.labels.decode(), Err(NotUtf8));
        assert!(raw.decode().is_err());
    }
}
