//! The per-target series cache: a label set seen in an earlier scrape costs a hash and two map
//! look-ups instead of owned copies of its labels, relabeling and encoding.

use crate::target::{Labels, Target, target_labels};
use magpie_sdk::abi::Label;
use magpie_wal::SeriesKey;
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
    #[allow(clippy::cast_possible_truncation)]
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
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
    fingerprint: u128,
    key: Key,
    /// The scrape that last wrote it; 0 for none yet.
    scrape: u64,
}

/// A label set as scraped, before target labels and relabeling.
struct Scraped {
    /// Its series in `Series::slots`; `None` when relabeling drops it.
    slot: Option<u32>,
    /// Why its final labels exceed the job's label limits, if they do.
    over: Option<Box<str>>,
    /// The last scrape that saw it.
    scrape: u64,
}

/// A target's series, kept across scrapes: a label set seen before costs a hash and two map
/// look-ups instead of owned copies of its labels, relabeling and encoding. Label sets are
/// known by 128-bit fingerprints (two randomly keyed SipHashes), so equal fingerprints are
/// taken as equal labels. Holds the series of the last scrape only, as staleness needs.
pub(crate) struct SeriesCache {
    keys: (RandomState, RandomState),
    scraped: HashMap<u128, Scraped, Prehash>,
    by_labels: HashMap<u128, u32, Prehash>,
    slots: Vec<Option<CachedSeries>>,
    free: Vec<u32>,
    /// Number of the scrape under way, from 1.
    pub(crate) scrape: u64,
}

impl SeriesCache {
    pub(crate) fn new() -> Self {
        Self {
            keys: (RandomState::new(), RandomState::new()),
            scraped: HashMap::default(),
            by_labels: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            scrape: 0,
        }
    }

    fn fingerprint(&self, feed: impl Fn(&mut std::hash::DefaultHasher)) -> u128 {
        let mut a = self.keys.0.build_hasher();
        let mut b = self.keys.1.build_hasher();
        feed(&mut a);
        feed(&mut b);
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
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
        let fp = self.fingerprint(|h| {
            name.hash(h);
            for l in labels {
                l.name.hash(h);
                l.value.hash(h);
            }
        });
        let scrape = self.scrape;
        if let Some(s) = self.scraped.get_mut(&fp) {
            s.scrape = scrape;
            return match &s.over {
                Some(why) => Err(why.to_string()),
                None => Ok(s.slot),
            };
        }
        let mut l: Labels = Vec::with_capacity(labels.len() + 1 + target.labels.len());
        l.push(("__name__".into(), name.to_string()));
        l.extend(
            labels
                .iter()
                .map(|x| (x.name.to_string(), x.value.to_string())),
        );
        target_labels(&mut l, &target.labels, target.def.honor_labels);
        if !target.def.relabel.apply(&mut l) {
            self.scraped.insert(
                fp,
                Scraped {
                    slot: None,
                    over: None,
                    scrape,
                },
            );
            return Ok(None);
        }
        if let Err(why) = target.def.label_limits.check(&l) {
            self.scraped.insert(
                fp,
                Scraped {
                    slot: None,
                    over: Some(why.clone().into()),
                    scrape,
                },
            );
            return Err(why);
        }
        let slot = Some(self.slot_of(&l));
        self.scraped.insert(
            fp,
            Scraped {
                slot,
                over: None,
                scrape,
            },
        );
        Ok(slot)
    }

    /// The slot of a label set this scrape already interned, without marking anything: an
    /// exemplar names the sample it was written on. `None` when the scrape did not see it or
    /// relabeling dropped it.
    pub(crate) fn find(&self, name: &str, labels: &[Label<'_>]) -> Option<u32> {
        let fp = self.fingerprint(|h| {
            name.hash(h);
            for l in labels {
                l.name.hash(h);
                l.value.hash(h);
            }
        });
        self.scraped
            .get(&fp)
            .filter(|s| s.scrape == self.scrape)
            .and_then(|s| s.slot)
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
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.as_ref().is_some_and(|w| w.scrape != now)
                && let Some(w) = s.take()
            {
                self.by_labels.remove(&w.fingerprint);
                self.free.push(u32::try_from(i).unwrap_or(u32::MAX));
                if w.scrape != 0 {
                    stale.push(w.key);
                }
            }
        }
        let slots = &self.slots;
        self.scraped.retain(|_, s| {
            s.scrape == now && s.slot.is_none_or(|i| ok && slots[i as usize].is_some())
        });
        if self.scraped.capacity() > 2 * self.scraped.len() + 64 {
            self.scraped.shrink_to_fit();
            self.by_labels.shrink_to_fit();
        }
        stale
    }
}
