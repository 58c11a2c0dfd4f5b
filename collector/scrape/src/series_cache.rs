//! The per-target series cache: a label set seen in an earlier scrape costs a hash and two map
//! look-ups instead of owned copies of its labels, relabeling and encoding.
//!
//! The cache also knows what it costs: [`SeriesCache::heap_bytes`] adds up its tables'
//! capacities and the key bytes it keeps a running sum of, without a walk over its series.
//! The label text of its keys is not in it: the WAL's series table holds the same allocation
//! and counts it.
//! Its tables shrink, and its slots are compacted, once less than a quarter of them is used
//! ([`SeriesCache::release`]), so a target whose series come and go gives the memory back.
//!
//! A target exposes its series in the same order scrape after scrape. While a scrape repeats
//! the last one, its samples are matched position by position against the last scrape's
//! fingerprints, read in order, instead of probing the map of every scraped label set: at
//! 100k series that probe missed the CPU caches on almost every sample. The first sample that
//! differs ends the replay for that scrape; from there on (and for the samples replayed so
//! far) the map is used and marked as before.

use crate::target::{Labels, Target, target_labels};
use magpie_host::{NotUtf8, RawSample};
use magpie_metrics::memory::{map_bytes, shrink_sparse};
use magpie_sdk::abi::{Label, Replay};
use magpie_wal::SeriesKey;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

/// Hasher for maps keyed by a fingerprint that is already a keyed hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// A 128-bit fingerprint as two words, so that a map keyed by it has 8-byte-aligned buckets:
/// 24 bytes with a `u32` or two as the value, where a `u128` key makes them 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fp(u64, u64);

impl Hash for Fp {
    fn hash<H: Hasher>(&self, h: &mut H) {
        // Already a keyed hash: one word is the map's hash.
        h.write_u64(self.0);
    }
}

/// A scrape's number as [`Scraped`] keeps it; a mark is compared only with the scrape under
/// way. It wraps after 2^32 scrapes: a mark left unchanged through that many scrapes that
/// repeat the last one (136 years at one a second) would read as current.
#[allow(clippy::cast_possible_truncation)]
const fn mark(scrape: u64) -> u32 {
    scrape as u32
}

type Prehash = BuildHasherDefault<Prehashed>;

/// A series' key for the WAL, or why its labels cannot be stored.
pub(crate) type Key = Result<SeriesKey, String>;

pub(crate) fn key_of(labels: &Labels) -> Key {
    let refs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    SeriesKey::new(&refs).map_err(|e| e.to_string())
}

/// A series a target wrote, by its final labels.
struct CachedSeries {
    fingerprint: Fp,
    key: Key,
    /// The scrape that last wrote it; 0 for none yet.
    scrape: u64,
}

/// A label set as scraped, before target labels and relabeling: 8 bytes, so that the map
/// of every scraped label set has 24-byte buckets.
struct Scraped {
    /// Its series in `SeriesCache::slots`, or [`DROPPED`] (by relabeling), or [`OVER`] (its
    /// final labels exceed the job's label limits: the reason is in `SeriesCache::over`).
    slot: u32,
    /// The last scrape that saw it ([`mark`]); while scrapes replay the last one's order,
    /// they do not mark it.
    scrape: u32,
}

/// [`Scraped::slot`] of a label set relabeling drops.
const DROPPED: u32 = u32::MAX;
/// [`Scraped::slot`] of a label set over the label limits.
const OVER: u32 = u32::MAX - 1;

impl Scraped {
    fn slot(&self) -> Option<u32> {
        (self.slot < OVER).then_some(self.slot)
    }
}

/// A target's series, kept across scrapes: a label set seen before costs a hash and two map
/// look-ups instead of owned copies of its labels, relabeling and encoding. Label sets are
/// known by 128-bit fingerprints (SipHash-1-3 with 128-bit output under a random key), so
/// equal fingerprints are taken as equal labels. Holds the series of the last scrape only, as
/// staleness needs.
pub(crate) struct SeriesCache {
    keys: (u64, u64),
    scraped: HashMap<Fp, Scraped, Prehash>,
    /// Why the label sets marked [`OVER`] exceed the label limits (rare: a map of their own).
    over: HashMap<Fp, Box<str>, Prehash>,
    by_labels: HashMap<Fp, u32, Prehash>,
    slots: Vec<Option<CachedSeries>>,
    free: Vec<u32>,
    /// Heap bytes the live slots' keys own.
    key_bytes: usize,
    /// Heap bytes of the reasons in `over`.
    over_bytes: usize,
    /// Number of the scrape under way, from 1.
    pub(crate) scrape: u64,
    /// The last scrape's label sets in scrape order, and what each came to (a slot,
    /// [`DROPPED`] or [`OVER`]); empty when the last scrape failed.
    order: Vec<Fp>,
    order_slots: Vec<u32>,
    /// Whether `order` is the last scrape's, every label set in it still held as it came to.
    order_known: bool,
    /// The scrape `order` is of, while `order_known`.
    order_scrape: u64,
    /// While `Some(n)`: this scrape's samples so far were `order[..n]`, and their entries in
    /// `scraped` are not marked with this scrape (the sweep knows them from `order`).
    replaying: Option<usize>,
    /// This scrape's label sets in order, once it stopped replaying `order`.
    next: Vec<Fp>,
    next_slots: Vec<u32>,
    /// Samples matched by position, over the cache's life.
    pub(crate) replayed: u64,
}

impl SeriesCache {
    pub(crate) fn new() -> Self {
        let random = RandomState::new();
        Self {
            keys: (random.hash_one(0u8), random.hash_one(1u8)),
            scraped: HashMap::default(),
            over: HashMap::default(),
            by_labels: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            key_bytes: 0,
            over_bytes: 0,
            scrape: 0,
            order: Vec::new(),
            order_slots: Vec::new(),
            order_known: false,
            order_scrape: 0,
            replaying: None,
            next: Vec::new(),
            next_slots: Vec::new(),
            replayed: 0,
        }
    }

    /// Starts the next scrape; its samples are matched against the last one's while they
    /// repeat it.
    pub(crate) fn begin(&mut self) {
        self.scrape += 1;
        self.replaying = self.order_known.then_some(0);
        self.next.clear();
        self.next_slots.clear();
    }

    /// The replay tokens of the scrape under way ([`Replay`]): its own, and that of the
    /// last scrape while `order` holds it, so that the plugin may send repeat records
    /// ([`SeriesCache::intern_repeat`]). Keyed like the fingerprints, so that a token names
    /// one scrape of this cache and no other.
    pub(crate) fn replay(&self) -> Replay {
        let token = |scrape: u64| self.fingerprint(|h| h.write_u64(scrape)).0 | 1;
        Replay {
            token: token(self.scrape),
            order: if self.order_known {
                token(self.order_scrape)
            } else {
                0
            },
        }
    }

    /// A repeat record at position `i` of this scrape: what the last scrape's sample at
    /// position `i` came to (the plugin vouches that its series is the same), marked as
    /// seen by this scrape.
    ///
    /// # Errors
    /// This scrape was offered no order, or the last scrape had no sample `i`: the scrape
    /// fails.
    pub(crate) fn intern_repeat(&mut self, i: usize) -> Result<Option<u32>, String> {
        let fp = (self.order_known)
            .then(|| self.order.get(i).copied())
            .flatten()
            .ok_or_else(|| {
                format!(
                    "the plugin sent sample {i} as a repeat of the last scrape's, which has {} samples the host holds",
                    if self.order_known { self.order.len() } else { 0 }
                )
            })?;
        self.seen(fp).unwrap_or_else(|| {
            Err(format!(
                "the plugin sent sample {i} as a repeat of a series the host no longer holds"
            ))
        })
    }

    /// Ends the replay of the last scrape: the samples replayed so far are marked in
    /// `scraped` and start this scrape's own order.
    fn stop_replay(&mut self) {
        let Some(n) = self.replaying.take() else {
            return;
        };
        let now = mark(self.scrape);
        self.next.reserve(self.order.len());
        self.next_slots.reserve(self.order.len());
        for (&fp, &slot) in self.order[..n].iter().zip(&self.order_slots[..n]) {
            if let Some(s) = self.scraped.get_mut(&fp) {
                s.scrape = now;
            }
            self.next.push(fp);
            self.next_slots.push(slot);
        }
    }

    /// What a label set that came to `slot` gives a scrape.
    fn came_to(&self, fp: Fp, slot: u32) -> Result<Option<u32>, String> {
        if slot == OVER {
            Err(self
                .over
                .get(&fp)
                .map_or_else(String::new, ToString::to_string))
        } else {
            Ok((slot < OVER).then_some(slot))
        }
    }

    /// One pass of a keyed 128-bit hash (it was two 64-bit SipHashes, twice the work).
    fn fingerprint(&self, feed: impl Fn(&mut SipHasher13)) -> Fp {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        feed(&mut h);
        let v = h.finish128();
        Fp(v.h1, v.h2)
    }

    /// A scraped label set's fingerprint: of the bytes the plugin encodes it as (postcard's
    /// varint length and bytes of the name, then of each label's name and value), so that a
    /// batch read in place ([`SeriesCache::intern_raw`]) and a decoded one agree.
    fn scraped_fingerprint(&self, name: &str, labels: &[Label<'_>]) -> Fp {
        self.fingerprint(|h| {
            put_str(h, name.as_bytes());
            for l in labels {
                put_str(h, l.name.as_bytes());
                put_str(h, l.value.as_bytes());
            }
        })
    }

    /// The slot of a scraped sample's series, `None` when relabeling drops it.
    ///
    /// # Errors
    /// The series' final labels exceed the job's label limits (the scrape fails).
    pub(crate) fn intern(
        &mut self,
        name: &str,
        labels: &[Label<'_>],
        target: &Target,
    ) -> Result<Option<u32>, String> {
        let fp = self.scraped_fingerprint(name, labels);
        self.seen(fp)
            .unwrap_or_else(|| self.insert(fp, name, labels, target))
    }

    /// As [`SeriesCache::intern`], for a sample read in place: its strings are decoded, and
    /// their UTF-8 checked, only when the cache has not seen its bytes.
    ///
    /// # Errors
    /// Outer: a string is not UTF-8. Inner: as [`SeriesCache::intern`].
    pub(crate) fn intern_raw(
        &mut self,
        sample: &RawSample<'_>,
        target: &Target,
    ) -> Result<Result<Option<u32>, String>, NotUtf8> {
        let fp = self.fingerprint(|h| {
            put_str(h, sample.name_bytes());
            h.write(sample.labels.bytes());
        });
        if let Some(r) = self.seen(fp) {
            return Ok(r);
        }
        let labels = sample.labels.decode()?;
        Ok(self.insert(fp, sample.name()?, &labels, target))
    }

    /// What a label set seen before came to, marked as seen by this scrape.
    fn seen(&mut self, fp: Fp) -> Option<Result<Option<u32>, String>> {
        if let Some(n) = self.replaying {
            if self.order.get(n) == Some(&fp) {
                self.replaying = Some(n + 1);
                self.replayed += 1;
                return Some(self.came_to(fp, self.order_slots[n]));
            }
            self.stop_replay();
        }
        let scrape = mark(self.scrape);
        let s = self.scraped.get_mut(&fp)?;
        s.scrape = scrape;
        let slot = s.slot;
        self.next.push(fp);
        self.next_slots.push(slot);
        Some(self.came_to(fp, slot))
    }

    /// Relabels a label set not seen before and records what it came to.
    fn insert(
        &mut self,
        fp: Fp,
        name: &str,
        labels: &[Label<'_>],
        target: &Target,
    ) -> Result<Option<u32>, String> {
        let scrape = mark(self.scrape);
        let mut l: Labels = Vec::with_capacity(labels.len() + 1 + target.labels.len());
        l.push(("__name__".into(), name.to_string()));
        l.extend(
            labels
                .iter()
                .map(|x| (x.name.to_string(), x.value.to_string())),
        );
        target_labels(&mut l, &target.labels, target.def.honor_labels);
        let (slot, result) = if !target.def.relabel.apply(&mut l) {
            (DROPPED, Ok(None))
        } else if let Err(why) = target.def.label_limits.check(&l) {
            self.over_bytes += why.len();
            self.over.insert(fp, why.clone().into());
            (OVER, Err(why))
        } else {
            let slot = self.slot_of(&l);
            (slot, Ok(Some(slot)))
        };
        self.scraped.insert(fp, Scraped { slot, scrape });
        self.next.push(fp);
        self.next_slots.push(slot);
        result
    }

    /// The slot of a label set this scrape already interned, without marking anything: an
    /// exemplar names the sample it was written on. `None` when the scrape did not see it or
    /// relabeling dropped it.
    pub(crate) fn find(&mut self, name: &str, labels: &[Label<'_>]) -> Option<u32> {
        // The marks tell what this scrape saw; a replay does not keep them.
        self.stop_replay();
        let fp = self.scraped_fingerprint(name, labels);
        self.scraped
            .get(&fp)
            .filter(|s| s.scrape == mark(self.scrape))
            .and_then(Scraped::slot)
    }

    /// The slot of the series with these final labels, made if new.
    fn slot_of(&mut self, labels: &Labels) -> u32 {
        let fp = self.fingerprint(|h| labels.hash(h));
        if let Some(&i) = self.by_labels.get(&fp) {
            return i;
        }
        let w = CachedSeries {
            fingerprint: fp,
            key: key_of(labels),
            scrape: 0,
        };
        self.key_bytes += key_heap(&w.key);
        let i = if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(w);
            i
        } else {
            self.slots.push(Some(w));
            u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
        };
        self.by_labels.insert(fp, i);
        i
    }

    pub(crate) fn key(&self, slot: u32) -> Option<&Key> {
        self.slots.get(slot as usize)?.as_ref().map(|w| &w.key)
    }

    /// Marks a series written by this scrape; `true` when no earlier scrape wrote it (it
    /// counts in `scrape_series_added`).
    pub(crate) fn written(&mut self, slot: u32) -> bool {
        if let Some(Some(w)) = self.slots.get_mut(slot as usize) {
            let new = w.scrape == 0;
            w.scrape = self.scrape;
            new
        } else {
            false
        }
    }

    /// Ends a scrape: forgets the series it did not write, returning the keys of those an
    /// earlier scrape wrote (they get staleness markers).
    pub(crate) fn sweep(&mut self, ok: bool) -> Vec<Key> {
        let now = self.scrape;
        let mut stale = Vec::new();
        let mut freed = false;
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.as_ref().is_some_and(|w| w.scrape != now)
                && let Some(w) = s.take()
            {
                freed = true;
                self.by_labels.remove(&w.fingerprint);
                self.key_bytes -= key_heap(&w.key);
                self.free.push(u32::try_from(i).unwrap_or(u32::MAX));
                if w.scrape != 0 {
                    stale.push(w.key);
                }
            }
        }
        if ok && !freed && self.replaying == Some(self.order.len()) {
            // The last scrape's label sets again, in its order: `scraped` holds exactly
            // them, and the order stays, now as this scrape's.
            self.replaying = None;
            self.order_scrape = now;
            return stale;
        }
        self.stop_replay();
        let slots = &self.slots;
        let (over, over_bytes) = (&mut self.over, &mut self.over_bytes);
        self.scraped.retain(|fp, s| {
            let keep =
                s.scrape == mark(now) && s.slot().is_none_or(|i| ok && slots[i as usize].is_some());
            if !keep
                && s.slot == OVER
                && let Some(why) = over.remove(fp)
            {
                *over_bytes -= why.len();
            }
            keep
        });
        // The next scrape replays this one if every label set it saw is still known as it
        // came to; a failed scrape's are not all kept.
        let kept = ok
            && (self.next_slots.iter())
                .all(|&i| i >= OVER || slots.get(i as usize).is_some_and(Option::is_some));
        if kept {
            std::mem::swap(&mut self.order, &mut self.next);
            std::mem::swap(&mut self.order_slots, &mut self.next_slots);
            self.order.shrink_to_fit();
            self.order_slots.shrink_to_fit();
        } else {
            self.order.clear();
            self.order_slots.clear();
        }
        self.order_known = kept;
        self.order_scrape = now;
        self.next = Vec::new();
        self.next_slots = Vec::new();
        stale
    }

    /// Gives memory back once less than a quarter of a table is used: shrinks the maps and
    /// moves the live slots to the front. Slot numbers change, so it runs only when none is
    /// held outside the cache (after a scrape's samples were handed on).
    pub(crate) fn release(&mut self) {
        shrink_sparse(&mut self.scraped);
        shrink_sparse(&mut self.by_labels);
        shrink_sparse(&mut self.over);
        let live = self.live();
        if self.slots.capacity() <= 64 || live >= self.slots.capacity() / 4 {
            return;
        }
        let mut moved = vec![u32::MAX; self.slots.len()];
        let mut slots = Vec::with_capacity(live);
        for (i, s) in self.slots.drain(..).enumerate() {
            if s.is_some() {
                moved[i] = u32::try_from(slots.len()).unwrap_or(u32::MAX);
                slots.push(s);
            }
        }
        for i in self.by_labels.values_mut() {
            *i = moved[*i as usize];
        }
        for s in self.scraped.values_mut() {
            if s.slot().is_some() {
                s.slot = moved[s.slot as usize];
            }
        }
        for s in &mut self.order_slots {
            if *s < OVER {
                *s = moved[*s as usize];
            }
        }
        self.slots = slots;
        self.free = Vec::new();
    }

    /// Series the cache holds: after a scrape's [`SeriesCache::sweep`], those it wrote.
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Heap bytes the cache holds: its tables by capacity and the bytes its keys own.
    pub(crate) fn heap_bytes(&self) -> usize {
        map_bytes(&self.scraped)
            + map_bytes(&self.by_labels)
            + map_bytes(&self.over)
            + self.slots.capacity() * size_of::<Option<CachedSeries>>()
            + self.free.capacity() * size_of::<u32>()
            + (self.order.capacity() + self.next.capacity()) * size_of::<Fp>()
            + (self.order_slots.capacity() + self.next_slots.capacity()) * size_of::<u32>()
            + self.key_bytes
            + self.over_bytes
    }
}

/// Feeds a string as postcard encodes it: its length as a varint, then its bytes.
fn put_str(h: &mut SipHasher13, bytes: &[u8]) {
    let (mut buf, mut n, mut v) = ([0u8; 10], 0, bytes.len() as u64);
    while v >= 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        let low = v as u8;
        buf[n] = low | 0x80;
        v >>= 7;
        n += 1;
    }
    #[allow(clippy::cast_possible_truncation)]
    let last = v as u8;
    buf[n] = last;
    h.write(&buf[..=n]);
    h.write(bytes);
}

/// Heap bytes a key holds that nothing else counts: the reason it cannot be stored. A valid
/// key's label text is shared with the WAL's series table once its first sample is appended,
/// and the table counts it (`magpie_wal_series_bytes`).
pub(crate) fn key_heap(key: &Key) -> usize {
    match key {
        Ok(_) => 0,
        Err(why) => why.capacity(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{JobDef, LabelLimits, target_set};
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::Duration;

    fn target() -> Target {
        let def = JobDef {
            job: "node".into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            honor_labels: false,
            honor_timestamps: true,
            sample_limit: 0,
            body_size_limit: 0,
            label_limits: LabelLimits::default(),
            target_limit: 0,
            file_prefixes: Vec::new(),
            relabel: crate::relabel::Relabeler::default(),
        };
        Target {
            def: Arc::new(def),
            labels: target_set("node", "10.0.0.7:9100", &[]),
        }
    }

    /// A batch of `samples` as the SDK encodes it.
    fn encoded(samples: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
        let mut enc = magpie_sdk::abi::SampleEncoder::default();
        for (name, labels) in samples {
            enc.push(name, labels.iter().copied(), 1.0, None);
        }
        let mut out = Vec::new();
        enc.finish_into(&mut out);
        out
    }

    #[test]
    fn a_batch_read_in_place_finds_what_a_decoded_one_interned() {
        let t = target();
        let mut c = SeriesCache::new();
        c.scrape = 1;
        let label = [Label::new("cpu", "0"), Label::new("mode", "idle")];
        let decoded = c.intern("node_cpu_seconds_total", &label, &t).unwrap();
        let bytes = encoded(&[
            ("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")]),
            ("node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]),
        ]);
        let batch = magpie_host::RawSampleBatch::parse(&bytes).unwrap();
        let raw: Vec<_> = (batch.iter())
            .map(|s| c.intern_raw(&s, &t).unwrap().unwrap())
            .collect();
        assert_eq!(raw[0], decoded);
        assert_ne!(raw[1], decoded);
        // Both raw samples are known now by the same fingerprints a decoded batch gets.
        assert_eq!(c.scraped.len(), 2);
        let user = [Label::new("cpu", "0"), Label::new("mode", "user")];
        assert_eq!(c.find("node_cpu_seconds_total", &user), raw[1]);
    }

    #[test]
    fn strings_of_a_series_not_seen_are_checked() {
        let t = target();
        let mut c = SeriesCache::new();
        c.scrape = 1;
        let mut bytes = encoded(&[("up", &[("job", "x")])]);
        let at = bytes.iter().position(|&b| b == b'x').unwrap();
        bytes[at] = 0xff;
        let batch = magpie_host::RawSampleBatch::parse(&bytes).unwrap();
        let s = batch.iter().next().unwrap();
        assert!(c.intern_raw(&s, &t).is_err());
        assert_eq!(c.live(), 0);
    }

    /// One successful scrape of `n` series; returns their slots.
    fn scrape(c: &mut SeriesCache, t: &Target, n: usize) -> Vec<u32> {
        c.begin();
        let mut slots = Vec::new();
        for i in 0..n {
            let cpu = i.to_string();
            let labels = [
                Label {
                    name: Cow::Borrowed("cpu"),
                    value: Cow::Borrowed(cpu.as_str()),
                },
                Label {
                    name: Cow::Borrowed("mode"),
                    value: Cow::Borrowed("idle"),
                },
            ];
            let slot = c
                .intern("node_cpu_seconds_total", &labels, t)
                .unwrap()
                .unwrap();
            c.written(slot);
            slots.push(slot);
        }
        c.sweep(true);
        slots
    }

    #[test]
    fn bytes_follow_the_series_and_fall_when_they_go() {
        let t = target();
        let mut c = SeriesCache::new();
        assert_eq!(c.heap_bytes(), 0);
        scrape(&mut c, &t, 100);
        c.release();
        let small = c.heap_bytes();
        assert_eq!(c.live(), 100);
        // At least the two maps' entries and the slots (the label text is the WAL's).
        assert!(small > 100 * (2 * 17 + 16), "{small}");
        scrape(&mut c, &t, 1000);
        c.release();
        let big = c.heap_bytes();
        assert_eq!(c.live(), 1000);
        assert!(big > 9 * small, "{small} then {big}");
        scrape(&mut c, &t, 100);
        let before = c.heap_bytes();
        c.release();
        let after = c.heap_bytes();
        assert_eq!(c.live(), 100);
        assert!(after < before / 3, "release kept {after} of {before}");
        assert!(
            after < 2 * small,
            "{small} at first, {after} after shrinking"
        );
    }

    #[test]
    fn key_bytes_are_counted_exactly() {
        let t = target();
        let mut c = SeriesCache::new();
        scrape(&mut c, &t, 10);
        // A label set the WAL cannot store (over 64 KiB) keeps its reason.
        let huge = "x".repeat(70_000);
        let big = [Label {
            name: Cow::Borrowed("v"),
            value: Cow::Borrowed(huge.as_str()),
        }];
        let slot = c.intern("big", &big, &t).unwrap().unwrap();
        c.written(slot);
        assert!(c.key(slot).is_some_and(Result::is_err));
        let sum: usize = c.slots.iter().flatten().map(|w| key_heap(&w.key)).sum();
        assert!(sum > 0);
        assert_eq!(c.key_bytes, sum);
        scrape(&mut c, &t, 3);
        let sum: usize = c.slots.iter().flatten().map(|w| key_heap(&w.key)).sum();
        assert_eq!(c.key_bytes, sum);
    }

    #[test]
    fn compacted_slots_still_name_their_series() {
        let t = target();
        let mut c = SeriesCache::new();
        let first = scrape(&mut c, &t, 1000);
        let key_of_first: Vec<Key> = first[..10]
            .iter()
            .map(|&s| c.key(s).unwrap().clone())
            .collect();
        scrape(&mut c, &t, 10);
        c.release();
        assert!(c.slots.len() == 10 && c.free.is_empty(), "compacted");
        // The same label sets resolve to slots whose keys are the same series as before.
        c.scrape += 1;
        let again = scrape(&mut c, &t, 10);
        for (i, s) in again.iter().enumerate() {
            assert!(*s < 10);
            assert_eq!(c.key(*s).unwrap(), &key_of_first[i]);
        }
        assert_eq!(c.live(), 10);
    }

    #[test]
    fn a_label_set_over_the_limits_keeps_its_reason_until_it_goes() {
        let mut t = target();
        let mut def = (*t.def).clone();
        def.label_limits.value_len = 3;
        t.def = Arc::new(def);
        let mut c = SeriesCache::new();
        let long = [Label {
            name: Cow::Borrowed("cpu"),
            value: Cow::Borrowed("12345"),
        }];
        c.scrape += 1;
        let first = c.intern("x", &long, &t).unwrap_err();
        assert!(first.contains("cpu"), "{first}");
        // Seen again: the same reason, from the cache.
        assert_eq!(c.intern("x", &long, &t).unwrap_err(), first);
        assert_eq!((c.over.len(), c.over_bytes), (1, first.len()));
        assert_eq!(c.find("x", &long), None);
        // A scrape without it forgets it.
        c.sweep(true);
        c.scrape += 1;
        c.sweep(true);
        assert_eq!((c.over.len(), c.over_bytes), (0, 0));
    }

    /// A scrape of `ids` (label sets `cpu=<id>`; ids from 100 on are written with 15 digits,
    /// over the test target's value length limit) with the exemplars of `find` looked up half-way, through a
    /// cache that replays (`begin`) and one that only counts scrapes: both must answer alike.
    fn scrape_both(
        replay: &mut SeriesCache,
        plain: &mut SeriesCache,
        t: &Target,
        ids: &[u16],
        find: &[u16],
        (ok, write): (bool, bool),
    ) {
        replay.begin();
        plain.scrape += 1;
        let labels = |id: u16| {
            [Label {
                name: Cow::Borrowed("cpu"),
                value: Cow::Owned(if id >= 100 {
                    format!("{id:015}")
                } else {
                    id.to_string()
                }),
            }]
        };
        for (k, &id) in ids.iter().enumerate() {
            if k == ids.len() / 2 {
                for &f in find {
                    let (a, b) = (
                        replay.find("cpu_total", &labels(f)),
                        plain.find("cpu_total", &labels(f)),
                    );
                    assert_eq!(a, b, "exemplar of {f} in {ids:?}");
                }
            }
            let (a, b) = (
                replay.intern("cpu_total", &labels(id), t),
                plain.intern("cpu_total", &labels(id), t),
            );
            assert_eq!(a, b, "sample {k} of {ids:?}");
            if let Ok(Some(slot)) = a
                && write
            {
                replay.written(slot);
                plain.written(slot);
            }
        }
        let (a, b) = (replay.sweep(ok), plain.sweep(ok));
        let keys = |k: Vec<Key>| -> Vec<String> { k.iter().map(|k| format!("{k:?}")).collect() };
        assert_eq!(keys(a), keys(b), "stale after {ids:?}");
        assert_eq!(replay.live(), plain.live());
        assert_eq!(replay.scraped.len(), plain.scraped.len());
        assert_eq!(replay.over.len(), plain.over.len());
    }

    fn limited_target() -> Target {
        let mut t = target();
        let mut def = (*t.def).clone();
        // As long as the target's `instance` value.
        def.label_limits.value_len = 13;
        t.def = Arc::new(def);
        t
    }

    #[test]
    fn a_repeated_scrape_is_matched_by_position() {
        let t = limited_target();
        let (mut replay, mut plain) = (SeriesCache::new(), SeriesCache::new());
        let ids: Vec<u16> = (0..90).chain([100, 101]).collect();
        for _ in 0..3 {
            scrape_both(&mut replay, &mut plain, &t, &ids, &[], (true, true));
        }
        // The second and third scrapes repeated the first one sample by sample.
        assert_eq!(replay.replayed, 2 * 92);
        // One series gone, one new, in the middle: replayed up to the change.
        let changed: Vec<u16> = (0..45).chain([95]).chain(46..90).collect();
        scrape_both(&mut replay, &mut plain, &t, &changed, &[], (true, true));
        assert_eq!(replay.replayed, 2 * 92 + 45);
        // Its order is the next scrape's, also after the slots are compacted.
        replay.release();
        plain.release();
        scrape_both(
            &mut replay,
            &mut plain,
            &t,
            &changed,
            &[3, 95, 200],
            (true, true),
        );
        assert_eq!(replay.replayed, 2 * 92 + 45 + 45);
        scrape_both(&mut replay, &mut plain, &t, &changed, &[], (true, true));
        assert_eq!(replay.replayed, 2 * 92 + 45 + 45 + 90);
    }

    #[test]
    fn map_buckets_are_24_bytes() {
        assert_eq!(size_of::<(Fp, Scraped)>(), 24);
        assert_eq!(size_of::<(Fp, u32)>(), 24);
    }

    #[test]
    fn compacted_slots_are_renumbered_in_the_replayed_order() {
        let t = limited_target();
        let (mut replay, mut plain) = (SeriesCache::new(), SeriesCache::new());
        let all: Vec<u16> = (0..100).collect();
        scrape_both(&mut replay, &mut plain, &t, &all, &[], (true, true));
        // The last ten stay; compaction moves their slots from 90.. to 0..
        let last: Vec<u16> = (90..100).collect();
        scrape_both(&mut replay, &mut plain, &t, &last, &[], (true, true));
        replay.release();
        plain.release();
        assert_eq!(replay.slots.len(), 10);
        let before = replay.replayed;
        scrape_both(&mut replay, &mut plain, &t, &last, &[], (true, true));
        assert_eq!(replay.replayed, before + 10);
    }

    proptest::proptest! {
        #[test]
        fn replaying_answers_as_the_map_does(
            scrapes in proptest::collection::vec(
                (
                    proptest::collection::vec(0u16..12, 0..12),
                    proptest::collection::vec(0u16..12, 0..3),
                    (proptest::bool::weighted(0.8), proptest::bool::weighted(0.9)),
                    proptest::bool::ANY,
                    proptest::bool::weighted(0.6),
                ),
                1..12,
            ),
        ) {
            let t = limited_target();
            let (mut replay, mut plain) = (SeriesCache::new(), SeriesCache::new());
            let mut last: Vec<u16> = Vec::new();
            // A scrape that is not ok writes nothing, as the target loop; one that is ok but
            // writes nothing stands for samples taken and then not written.
            for (ids, find, ok_write, release, repeat) in scrapes {
                // Most scrapes repeat the last one, as targets do; ids from 9 on are over
                // the limits.
                let ids: Vec<u16> = if repeat {
                    last.clone()
                } else {
                    ids.iter().map(|&i| if i >= 9 { 100 + i } else { i }).collect()
                };
                scrape_both(&mut replay, &mut plain, &t, &ids, &find, ok_write);
                if release {
                    replay.release();
                    plain.release();
                }
                last = ids;
            }
        }

        #[test]
        fn repeat_records_answer_as_whole_samples(
            scrapes in proptest::collection::vec(
                (
                    proptest::collection::vec(0u16..12, 0..12),
                    proptest::bool::weighted(0.6),
                    (proptest::bool::weighted(0.8), proptest::bool::weighted(0.9)),
                    proptest::bool::ANY,
                ),
                1..12,
            ),
        ) {
            let t = limited_target();
            let labels = |id: u16| {
                let value = if id >= 9 { format!("{id:015}") } else { id.to_string() };
                [Label { name: Cow::Borrowed("cpu"), value: Cow::Owned(value) }]
            };
            let (mut repeating, mut plain) = (SeriesCache::new(), SeriesCache::new());
            // The plugin's side: the token and the ids of the last scrape it made.
            let mut guest: Option<(u64, Vec<u16>)> = None;
            for (ids, again, (ok, write), release) in scrapes {
                let ids = match &guest {
                    Some((_, last)) if again => last.clone(),
                    _ => ids,
                };
                repeating.begin();
                plain.begin();
                let offer = repeating.replay();
                proptest::prop_assert_ne!(offer.token, 0);
                let known = guest
                    .as_ref()
                    .filter(|(token, _)| offer.order != 0 && *token == offer.order);
                for (k, &id) in ids.iter().enumerate() {
                    let b = plain.intern("cpu_total", &labels(id), &t);
                    let a = match known {
                        Some((_, last)) if last.get(k) == Some(&id) => {
                            repeating.intern_repeat(k)
                        }
                        _ => repeating.intern("cpu_total", &labels(id), &t),
                    };
                    proptest::prop_assert_eq!(&a, &b, "sample {} of {:?}", k, ids);
                    if let Ok(Some(slot)) = a
                        && write
                    {
                        repeating.written(slot);
                        plain.written(slot);
                    }
                }
                let keys = |k: Vec<Key>| -> Vec<String> { k.iter().map(|k| format!("{k:?}")).collect() };
                proptest::prop_assert_eq!(keys(repeating.sweep(ok)), keys(plain.sweep(ok)));
                proptest::prop_assert_eq!(repeating.live(), plain.live());
                if release {
                    repeating.release();
                    plain.release();
                }
                guest = Some((offer.token, ids));
            }
        }
    }

    #[test]
    fn a_repeat_needs_the_last_scrape_and_its_position() {
        let t = target();
        let mut c = SeriesCache::new();
        let cpu = |id: &'static str| [Label::new("cpu", id)];
        c.begin();
        assert_eq!(c.replay().order, 0);
        assert!(c.intern_repeat(0).unwrap_err().contains("sample 0"));
        c.begin();
        let slot = c.intern("cpu_total", &cpu("0"), &t).unwrap().unwrap();
        c.written(slot);
        c.sweep(true);
        let first = c.replay();
        c.begin();
        let offer = c.replay();
        assert_ne!(offer.token, first.token);
        assert_eq!(offer.order, first.token);
        assert_eq!(c.intern_repeat(0), Ok(Some(slot)));
        assert!(c.intern_repeat(1).unwrap_err().contains("has 1 samples"));
        c.written(slot);
        // A scrape that repeated the last one whole keeps the order, now as its own.
        c.sweep(true);
        c.begin();
        assert_eq!(c.replay().order, offer.token);
        assert_eq!(c.intern_repeat(0), Ok(Some(slot)));
        c.written(slot);
        // A failed scrape leaves no order to repeat.
        c.sweep(false);
        c.begin();
        assert_eq!(c.replay().order, 0);
        assert!(c.intern_repeat(0).is_err());
    }
}
