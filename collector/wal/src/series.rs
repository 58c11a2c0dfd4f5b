//! The ring-wide series table: label set ↔ series id, in memory.
//!
//! Format 2 writes a series' labels once per ring, in the series log (`serieslog.rs`), and
//! samples records name series by a ring-wide id. This table is what both sides use: the
//! writer looks an encoded label set up by hash to find its id, readers map ids back to label
//! sets and hand them out with a batch.
//!
//! Each id holds its label set as a shared [`Labels`]: a series appended by key keeps the
//! allocation of the scraper's [`SeriesKey`](crate::SeriesKey), so the label text exists
//! once in the process, and a batch takes a reference to it instead of a decoded copy. An
//! id costs a 24-byte entry and its hash index slot, plus the text when the table is the
//! only holder. An id's entry records the newest segment that used it, which is what a
//! checkpoint needs to drop series no live segment uses; opening reads it from the segments'
//! records. Ids freed by a checkpoint are reused; ids found without a definition when opening
//! are reused only once every segment that existed at open is gone, since one of them may
//! name an id whose definition was lost.

use crate::Labels;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

/// An id's entry; `labels: None` marks an id with no definition.
#[derive(Debug, Clone, Default)]
struct Entry {
    labels: Option<Labels>,
    last_seg: u64,
}

/// Label sets by id and ids by label set.
///
/// The index is keyed by the label set's unkeyed 64-bit hash (`series_hash`), which a crafted
/// exposition or push can collide at will. An id whose hash is already indexed goes to
/// `collisions` instead, keyed by a hash this process keys at random, so colliding label sets
/// cost a look-up each, never a scan of every collision.
#[derive(Debug, Default)]
pub(crate) struct SeriesTable {
    entries: Vec<Entry>,
    index: HashMap<u64, u32>,
    collisions: HashMap<u64, Vec<u32>>,
    keyed: RandomState,
    free: Vec<u32>,
    /// Ids without a definition when the WAL was opened, reusable once segment
    /// `holes_until` is dropped.
    holes: Vec<u32>,
    holes_until: u64,
    live: usize,
    /// Bytes of the live label sets' allocations.
    text_bytes: usize,
}

impl SeriesTable {
    /// The encoded label set of `id`, if defined.
    pub(crate) fn labels(&self, id: u32) -> Option<&[u8]> {
        self.shared(id).map(Labels::encoded)
    }

    /// The label set of `id`, if defined.
    pub(crate) fn shared(&self, id: u32) -> Option<&Labels> {
        self.entries.get(id as usize)?.labels.as_ref()
    }

    /// The id of the label set encoded in `key` (hash `h`).
    pub(crate) fn lookup(&self, h: u64, key: &[u8]) -> Option<u32> {
        if let Some(&id) = self.index.get(&h)
            && self.labels(id) == Some(key)
        {
            return Some(id);
        }
        if self.collisions.is_empty() {
            return None;
        }
        self.collisions
            .get(&self.keyed.hash_one(key))?
            .iter()
            .copied()
            .find(|&id| self.labels(id) == Some(key))
    }

    /// The id of `key` (hash `h`), as [`Self::lookup`]; a label set the table holds as a copy
    /// of its own is replaced by `key`'s, so that both share one allocation from then on.
    pub(crate) fn lookup_shared(&mut self, h: u64, key: &Labels) -> Option<u32> {
        if let Some(&id) = self.index.get(&h)
            && self.shared(id).is_some_and(|l| l.same(key))
        {
            return Some(id);
        }
        let id = self.lookup(h, key.encoded())?;
        if let Some(e) = self.entries.get_mut(id as usize) {
            e.labels = Some(key.clone());
        }
        Some(id)
    }

    /// Adds a label set used by segment `seg`; returns its new id.
    pub(crate) fn insert(&mut self, h: u64, key: Labels, seg: u64) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.entries.push(Entry::default());
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.define(id, h, key, seg);
        id
    }

    /// Sets the definition of `id` (growing the table to it), as read from the series log.
    pub(crate) fn define(&mut self, id: u32, h: u64, key: Labels, seg: u64) {
        let i = id as usize;
        if self.entries.len() <= i {
            self.entries.resize(i + 1, Entry::default());
        }
        if self.entries[i].labels.is_some() {
            self.unindex(id);
            self.live -= 1;
        }
        self.text_bytes += key.heap_bytes();
        self.entries[i] = Entry {
            labels: Some(key),
            last_seg: seg,
        };
        self.live += 1;
        if let std::collections::hash_map::Entry::Vacant(v) = self.index.entry(h) {
            v.insert(id);
        } else {
            let k = self.keyed.hash_one(self.labels(id).unwrap_or_default());
            self.collisions.entry(k).or_default().push(id);
        }
    }

    /// Takes `id` out of the hash index and the byte count (its entry stays as it is).
    fn unindex(&mut self, id: u32) {
        let Some(key) = self.shared(id) else { return };
        let (bytes, h) = (key.heap_bytes(), crate::writer::series_hash(key.encoded()));
        let indexed = self.index.get(&h) == Some(&id);
        let keyed = (!indexed).then(|| self.keyed.hash_one(key.encoded()));
        self.text_bytes -= bytes;
        if indexed {
            // Ids of the same hash stay in `collisions`, which a look-up reads whenever it
            // holds anything.
            self.index.remove(&h);
        } else if let Some(k) = keyed
            && let Some(ids) = self.collisions.get_mut(&k)
        {
            ids.retain(|&c| c != id);
            if ids.is_empty() {
                self.collisions.remove(&k);
            }
        }
    }

    /// Records that segment `seg` uses `id`.
    pub(crate) fn touch(&mut self, id: u32, seg: u64) {
        if let Some(e) = self.entries.get_mut(id as usize) {
            e.last_seg = e.last_seg.max(seg);
        }
    }

    /// One more than the highest id that has an entry.
    pub(crate) fn id_bound(&self) -> u32 {
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }

    /// Makes ids below `bound` known as used, so they are never handed out while a segment
    /// that existed at open may name them.
    pub(crate) fn reserve(&mut self, bound: u32) {
        if self.entries.len() < bound as usize {
            self.entries.resize(bound as usize, Entry::default());
        }
    }

    /// Records that segment `seg` uses ids `first..first + count`.
    pub(crate) fn touch_range(&mut self, first: u32, count: u32, seg: u64) {
        let start = (first as usize).min(self.entries.len());
        let end = (first as usize + count as usize).min(self.entries.len());
        for e in &mut self.entries[start..end] {
            e.last_seg = e.last_seg.max(seg);
        }
    }

    /// After loading. With `usage` (every segment's ids were read and touched), a defined id
    /// keeps the newest segment found to use it, and one no segment uses is dead. Without,
    /// every defined id counts as used by segment `newest`. Either way undefined ids are held
    /// back until `newest` is dropped: a segment may name an id whose definition was lost.
    pub(crate) fn loaded(&mut self, newest: u64, usage: bool) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            if e.labels.is_none() {
                self.holes.push(u32::try_from(i).unwrap_or(u32::MAX));
            } else if !usage {
                e.last_seg = newest;
            }
        }
        self.holes_until = newest;
    }

    /// Defined ids used by segment `oldest` or later, with their encoded label sets.
    pub(crate) fn live_since(&self, oldest: u64) -> impl Iterator<Item = (u32, &[u8])> {
        self.entries.iter().enumerate().filter_map(move |(i, e)| {
            let id = u32::try_from(i).ok()?;
            let labels = e.labels.as_ref().filter(|_| e.last_seg >= oldest)?;
            Some((id, labels.encoded()))
        })
    }

    /// True when some defined id is used by no segment from `oldest` on.
    pub(crate) fn has_dead(&self, oldest: u64) -> bool {
        self.live_since(oldest).count() < self.live
            || (!self.holes.is_empty() && oldest > self.holes_until)
    }

    /// Forgets ids used by no segment from `oldest` on (after the series log was rewritten
    /// without them). Their ids become reusable.
    pub(crate) fn retain_since(&mut self, oldest: u64) {
        for i in 0..self.entries.len() {
            let e = &self.entries[i];
            if e.labels.is_none() || e.last_seg >= oldest {
                continue;
            }
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            self.unindex(id);
            self.entries[i] = Entry::default();
            self.live -= 1;
            self.free.push(id);
        }
        if oldest > self.holes_until {
            self.free.append(&mut self.holes);
        }
        // Low ids first: the table stays dense.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Defined series.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Heap bytes the table holds: its entries, index and the label sets' allocations (which
    /// a scraper's series cache may share: it does not count them again).
    pub(crate) fn heap_bytes(&self) -> u64 {
        let index = self.index.capacity() * (8 + 4 + 1);
        let entries = self.entries.capacity() * std::mem::size_of::<Entry>();
        let collisions = self.collisions.capacity() * (8 + 24 + 1)
            + self.collisions.values().map(Vec::capacity).sum::<usize>() * 4;
        let others = collisions + (self.free.capacity() + self.holes.capacity()) * 4;
        (self.text_bytes + index + entries + others) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::series_hash;

    fn l(b: &[u8]) -> Labels {
        Labels::from_trusted(b.to_vec())
    }

    #[test]
    fn insert_lookup_retain_reuse() {
        let mut t = SeriesTable::default();
        let a = b"a".as_slice();
        let b = b"bb".as_slice();
        let ia = t.insert(series_hash(a), l(a), 1);
        let ib = t.insert(series_hash(b), l(b), 2);
        assert_eq!((ia, ib), (0, 1));
        assert_eq!(t.lookup(series_hash(b), b), Some(1));
        assert!(t.has_dead(2));
        t.retain_since(2);
        assert_eq!(t.labels(0), None);
        assert_eq!(t.labels(1), Some(b));
        assert_eq!(t.lookup(series_hash(a), a), None);
        assert_eq!(t.len(), 1);
        // The freed id is reused; the other keeps its bytes.
        let c = b"ccc".as_slice();
        assert_eq!(t.insert(series_hash(c), l(c), 3), 0);
        assert_eq!(t.labels(1), Some(b));
        assert_eq!(t.id_bound(), 2);
    }

    #[test]
    fn collisions_are_told_apart() {
        let mut t = SeriesTable::default();
        t.insert(7, l(b"x"), 1);
        t.insert(7, l(b"y"), 1);
        assert_eq!(t.lookup(7, b"x"), Some(0));
        assert_eq!(t.lookup(7, b"y"), Some(1));
        assert_eq!(t.lookup(7, b"z"), None);
    }

    /// A 16-byte key whose `series_hash` depends on `group` only: the hash is FxHash-style,
    /// so the second word can undo whatever the first did. This is what a crafted exposition
    /// can do to the unkeyed hash.
    fn colliding(n: u32, group: u8) -> Vec<u8> {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let first = |m: u64| ((16u64.rotate_left(5)) ^ m).wrapping_mul(K).rotate_left(5);
        let m1 = u64::from(n);
        let m2 = first(m1) ^ first(0) ^ u64::from(group);
        let mut key = m1.to_le_bytes().to_vec();
        key.extend_from_slice(&m2.to_le_bytes());
        key
    }

    #[test]
    fn crafted_collisions_are_each_found_in_one_probe() {
        let keys: Vec<Vec<u8>> = (0..2000).map(|n| colliding(n, 0)).collect();
        let h = series_hash(&keys[0]);
        assert!(keys.iter().all(|k| series_hash(k) == h), "the keys collide");
        // Each colliding label set lands in a bucket of its own in `collisions`, so a look-up
        // compares one label set, not all of them.
        let mut t = SeriesTable::default();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.insert(h, l(k), 1), i as u32);
        }
        assert_eq!(t.collisions.len(), keys.len() - 1);
        assert!(t.collisions.values().all(|ids| ids.len() == 1));
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.lookup(h, k), Some(i as u32));
        }
        assert_eq!(t.lookup(h, &colliding(5000, 0)), None);
    }

    proptest::proptest! {
        /// Inserts, look-ups and checkpoints over label sets of three groups whose hashes
        /// collide agree with a plain map of label sets to ids.
        #[test]
        fn the_table_agrees_with_a_map_under_collisions(
            ops in proptest::collection::vec((0u8..3, 0u32..12), 1..200),
        ) {
            let key = |n: u32| colliding(n, (n % 3) as u8);
            let mut t = SeriesTable::default();
            let mut model: HashMap<Vec<u8>, (u32, u64)> = HashMap::new();
            let mut seg = 1;
            for (op, n) in ops {
                let key = key(n);
                let h = series_hash(&key);
                match op {
                    0 => {
                        if t.lookup(h, &key).is_none() {
                            let id = t.insert(h, l(&key), seg);
                            model.insert(key.clone(), (id, seg));
                        }
                        if let Some(e) = model.get_mut(&key) {
                            t.touch(e.0, seg);
                            e.1 = seg;
                        }
                    }
                    1 => {
                        proptest::prop_assert_eq!(t.lookup(h, &key), model.get(&key).map(|e| e.0));
                    }
                    _ => {
                        // The segment ends: series none of its samples used are forgotten.
                        seg += 1;
                        t.retain_since(seg - 1);
                        model.retain(|_, e| e.1 >= seg - 1);
                    }
                }
            }
            for n in 0..12 {
                let key = key(n);
                proptest::prop_assert_eq!(
                    t.lookup(series_hash(&key), &key),
                    model.get(&key).map(|e| e.0)
                );
            }
            proptest::prop_assert_eq!(t.len(), model.len());
        }
    }

    #[test]
    fn holes_found_at_open_wait_for_their_segments() {
        let mut t = SeriesTable::default();
        t.define(2, series_hash(b"k"), l(b"k"), 0);
        t.loaded(5, false);
        assert_eq!(t.id_bound(), 3);
        t.retain_since(5);
        // Ids 0 and 1 may be named by segment 5 or older: not reused yet.
        assert_eq!(t.insert(1, l(b"n"), 6), 3);
        t.retain_since(6);
        let reused = t.insert(2, l(b"m"), 6);
        assert!(reused < 3, "hole {reused} reused once segment 5 is gone");
    }

    #[test]
    fn a_key_shares_its_labels_with_the_table() {
        let mut t = SeriesTable::default();
        let key = Labels::new(&[("__name__", "up")]);
        let h = series_hash(key.encoded());
        // Loaded from the series log: the table's own copy.
        t.define(
            0,
            h,
            Labels::from_encoded(key.encoded()).unwrap_or_else(|| l(b"")),
            0,
        );
        assert!(!t.shared(0).is_some_and(|x| x.same(&key)));
        let before = t.heap_bytes();
        // The first keyed look-up swaps the copy for the key's allocation.
        assert_eq!(t.lookup_shared(h, &key), Some(0));
        assert!(t.shared(0).is_some_and(|x| x.same(&key)));
        assert_eq!(t.heap_bytes(), before);
        assert_eq!(
            t.lookup_shared(h, &Labels::new(&[("__name__", "down")])),
            None
        );
        // Forgetting the series gives its bytes back.
        t.touch(0, 1);
        t.retain_since(2);
        assert_eq!(
            t.heap_bytes() as usize,
            t.entries.capacity() * std::mem::size_of::<Entry>()
                + t.index.capacity() * 13
                + t.free.capacity() * 4
        );
    }
}
