//! The ring-wide series table: label set ↔ series id, in memory.
//!
//! Format 2 writes a series' labels once per ring, in the series log (`serieslog.rs`), and
//! samples records name series by a ring-wide id. This table is what both sides use: the
//! writer looks an encoded label set up by hash to find its id, readers map ids back to
//! encoded label sets and decode them per batch.
//!
//! Memory is kept compact: encoded label bytes sit back to back in one arena, and each id costs
//! a 16-byte entry plus its hash index slot. An id's entry records the newest segment that used
//! it, which is what a checkpoint needs to drop series no live segment uses. Ids freed by a
//! checkpoint are reused; ids found unused when opening are reused only once every segment that
//! existed at open is gone, since one of them may name an id whose definition was lost.

use std::collections::HashMap;

/// An id's entry. `len == VACANT` marks an id with no definition.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: u32,
    len: u32,
    last_seg: u64,
}

const VACANT: u32 = u32::MAX;

impl Entry {
    const EMPTY: Entry = Entry {
        start: 0,
        len: VACANT,
        last_seg: 0,
    };
}

/// Label sets by id and ids by label set.
#[derive(Debug, Default)]
pub(crate) struct SeriesTable {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    index: HashMap<u64, u32>,
    collisions: Vec<(u64, u32)>,
    free: Vec<u32>,
    /// Ids without a definition when the WAL was opened, reusable once segment
    /// `holes_until` is dropped.
    holes: Vec<u32>,
    holes_until: u64,
    live: usize,
}

impl SeriesTable {
    /// The encoded label set of `id`, if defined.
    pub(crate) fn labels(&self, id: u32) -> Option<&[u8]> {
        let e = self.entries.get(id as usize)?;
        if e.len == VACANT {
            return None;
        }
        let start = e.start as usize;
        self.arena.get(start..start + e.len as usize)
    }

    /// The id of the label set encoded in `key` (hash `h`).
    pub(crate) fn lookup(&self, h: u64, key: &[u8]) -> Option<u32> {
        let &id = self.index.get(&h)?;
        if self.labels(id) == Some(key) {
            return Some(id);
        }
        self.collisions
            .iter()
            .find(|&&(ch, id)| ch == h && self.labels(id) == Some(key))
            .map(|&(_, id)| id)
    }

    /// Adds a label set used by segment `seg`; returns its new id.
    pub(crate) fn insert(&mut self, h: u64, key: &[u8], seg: u64) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.entries.push(Entry::EMPTY);
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.define(id, h, key, seg);
        id
    }

    /// Sets the definition of `id` (growing the table to it), as read from the series log.
    pub(crate) fn define(&mut self, id: u32, h: u64, key: &[u8], seg: u64) {
        let i = id as usize;
        if self.entries.len() <= i {
            self.entries.resize(i + 1, Entry::EMPTY);
        }
        if self.entries[i].len != VACANT {
            self.unindex(id);
            self.live -= 1;
        }
        let start = u32::try_from(self.arena.len()).unwrap_or(u32::MAX);
        self.arena.extend_from_slice(key);
        self.entries[i] = Entry {
            start,
            len: u32::try_from(key.len()).unwrap_or(VACANT - 1),
            last_seg: seg,
        };
        self.live += 1;
        match self.index.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((h, id)),
        }
    }

    fn unindex(&mut self, id: u32) {
        let Some(key) = self.labels(id) else { return };
        let h = crate::writer::series_hash(key);
        if self.index.get(&h) == Some(&id) {
            self.index.remove(&h);
            // A colliding entry of the same hash takes the index slot.
            if let Some(p) = self.collisions.iter().position(|&(ch, _)| ch == h) {
                let (_, other) = self.collisions.swap_remove(p);
                self.index.insert(h, other);
            }
        } else {
            self.collisions.retain(|&(ch, c)| !(ch == h && c == id));
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
            self.entries.resize(bound as usize, Entry::EMPTY);
        }
    }

    /// After loading: every defined id counts as used by segment `newest` (which segments use
    /// which ids is not known without reading them all), and undefined ids are held back until
    /// that segment is dropped.
    pub(crate) fn loaded(&mut self, newest: u64) {
        for (i, e) in self.entries.iter_mut().enumerate() {
            if e.len == VACANT {
                self.holes.push(u32::try_from(i).unwrap_or(u32::MAX));
            } else {
                e.last_seg = newest;
            }
        }
        self.holes_until = newest;
    }

    /// Defined ids used by segment `oldest` or later, with their encoded label sets.
    pub(crate) fn live_since(&self, oldest: u64) -> impl Iterator<Item = (u32, &[u8])> {
        self.entries.iter().enumerate().filter_map(move |(i, e)| {
            let id = u32::try_from(i).ok()?;
            (e.len != VACANT && e.last_seg >= oldest).then(|| (id, self.labels(id).unwrap_or(&[])))
        })
    }

    /// True when some defined id is used by no segment from `oldest` on.
    pub(crate) fn has_dead(&self, oldest: u64) -> bool {
        self.live_since(oldest).count() < self.live
            || (!self.holes.is_empty() && oldest > self.holes_until)
    }

    /// Forgets ids used by no segment from `oldest` on (after the series log was rewritten
    /// without them) and compacts the arena. Their ids become reusable.
    pub(crate) fn retain_since(&mut self, oldest: u64) {
        let mut arena = Vec::with_capacity(self.arena.len());
        self.index.clear();
        self.collisions.clear();
        self.live = 0;
        for i in 0..self.entries.len() {
            let e = self.entries[i];
            if e.len == VACANT {
                continue;
            }
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            if e.last_seg < oldest {
                self.entries[i] = Entry::EMPTY;
                self.free.push(id);
                continue;
            }
            let key = &self.arena[e.start as usize..e.start as usize + e.len as usize];
            let h = crate::writer::series_hash(key);
            let start = u32::try_from(arena.len()).unwrap_or(u32::MAX);
            arena.extend_from_slice(key);
            self.entries[i].start = start;
            self.live += 1;
            match self.index.entry(h) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(id);
                }
                std::collections::hash_map::Entry::Occupied(_) => self.collisions.push((h, id)),
            }
        }
        arena.shrink_to_fit();
        self.arena = arena;
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

    /// Heap bytes the table holds.
    pub(crate) fn heap_bytes(&self) -> u64 {
        let index = self.index.capacity() * (8 + 4 + 1);
        let entries = self.entries.capacity() * std::mem::size_of::<Entry>();
        let others =
            (self.collisions.capacity() * 16) + (self.free.capacity() + self.holes.capacity()) * 4;
        (self.arena.capacity() + index + entries + others) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::series_hash;

    #[test]
    fn insert_lookup_retain_reuse() {
        let mut t = SeriesTable::default();
        let a = b"a".as_slice();
        let b = b"bb".as_slice();
        let ia = t.insert(series_hash(a), a, 1);
        let ib = t.insert(series_hash(b), b, 2);
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
        assert_eq!(t.insert(series_hash(c), c, 3), 0);
        assert_eq!(t.labels(1), Some(b));
        assert_eq!(t.id_bound(), 2);
    }

    #[test]
    fn collisions_are_told_apart() {
        let mut t = SeriesTable::default();
        t.insert(7, b"x", 1);
        t.insert(7, b"y", 1);
        assert_eq!(t.lookup(7, b"x"), Some(0));
        assert_eq!(t.lookup(7, b"y"), Some(1));
        assert_eq!(t.lookup(7, b"z"), None);
    }

    #[test]
    fn holes_found_at_open_wait_for_their_segments() {
        let mut t = SeriesTable::default();
        t.define(2, series_hash(b"k"), b"k", 0);
        t.loaded(5);
        assert_eq!(t.id_bound(), 3);
        t.retain_since(5);
        // Ids 0 and 1 may be named by segment 5 or older: not reused yet.
        assert_eq!(t.insert(1, b"n", 6), 3);
        t.retain_since(6);
        let reused = t.insert(2, b"m", 6);
        assert!(reused < 3, "hole {reused} reused once segment 5 is gone");
    }
}
