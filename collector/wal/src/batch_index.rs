//! A batch's series by series id: which index of `Batch::series` an id already has.
//!
//! A read looks this up for every sample it hands out. A dense array stamped with a
//! generation makes that an array access, and starting a new batch (or a new format-1
//! segment, whose ids are its own) a counter increment; the array is kept from read to read
//! and grows to the highest id read, which is below the series table's bound (format 2) or
//! the segment's own series count (format 1): ids without a definition never get here.

/// Batch indexes by series id.
#[derive(Debug, Default)]
pub(crate) struct BatchIndex {
    /// Per id: the generation it was set in, and its index.
    slots: Vec<(u32, u32)>,
    generation: u32,
}

impl BatchIndex {
    /// Forgets every id.
    pub(crate) fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill((0, 0));
            self.generation = 1;
        }
    }

    /// The index `id` was given since the last clear.
    pub(crate) fn get(&self, id: u32) -> Option<u32> {
        let &(g, i) = self.slots.get(id as usize)?;
        (g == self.generation && g != 0).then_some(i)
    }

    /// Whether `id` was given an index since the last clear.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.get(id).is_some()
    }

    /// Gives `id` index `i`.
    pub(crate) fn insert(&mut self, id: u32, i: u32) {
        if self.generation == 0 {
            self.generation = 1;
        }
        let at = id as usize;
        if self.slots.len() <= at {
            self.slots.resize(at + 1, (0, 0));
        }
        self.slots[at] = (self.generation, i);
    }

    /// Heap bytes it holds.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<(u32, u32)>()
    }
}

#[cfg(test)]
mod tests {
    use super::BatchIndex;

    #[test]
    fn a_clear_forgets_everything_and_a_wrap_around_too() {
        let mut x = BatchIndex::default();
        assert_eq!(x.get(0), None);
        x.insert(5, 0);
        x.insert(2, 1);
        assert_eq!(
            (x.get(5), x.get(2), x.get(3), x.get(99)),
            (Some(0), Some(1), None, None)
        );
        x.clear();
        assert!(!x.contains(5) && !x.contains(2));
        x.insert(2, 7);
        assert_eq!((x.get(2), x.get(5)), (Some(7), None));
        // After 2^32 clears the stamps would repeat: the array is wiped instead.
        x.generation = u32::MAX;
        x.insert(4, 3);
        x.clear();
        assert_eq!((x.get(4), x.get(2)), (None, None));
        assert!(x.heap_bytes() >= 6 * 8);
    }
}
