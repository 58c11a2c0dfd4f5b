//! Newest-first delivery: a consumer split in two at a segment boundary, the backlog before
//! it and what comes after, and joined again once the backlog is delivered.

use crate::ConsumerId;
use crate::cursor::{self, Position};
use crate::error::Error;
use crate::reader::{NEWEST, SPLIT};
use crate::wal::Wal;

impl Wal {
    /// Splits consumer `id` for newest-first delivery: the open segment is closed, and what
    /// is appended from now on goes to a sub-consumer (returned), while `id` goes on with the
    /// backlog before that point. Both cursors and the boundary are persisted, so a restart
    /// resumes the split. Call [`Wal::join`] once `id` has read up to the boundary
    /// ([`Wal::caught_up`]). Splitting a split consumer returns its sub-consumer.
    ///
    /// # Errors
    /// [`Error::UnknownConsumer`]; I/O errors persisting the cursors.
    pub fn split(&mut self, id: ConsumerId) -> Result<ConsumerId, Error> {
        let c = self.consumer_mut(id)?;
        if let Some(n) = c.newest {
            return Ok(ConsumerId(n));
        }
        let name = c.name.clone();
        // The open segment is sealed, so the boundary is the start of the next one and the
        // backlog before it is complete (readable to its end) at once.
        let boundary = match &self.open {
            Some(o) if o.summary.samples > 0 => {
                self.seal_open()?;
                Position::segment_start(self.next_seq)
            }
            Some(o) => Position::segment_start(o.seq),
            None => Position::segment_start(self.next_seq),
        };
        let storage = std::sync::Arc::clone(&self.storage);
        let newest_name = format!("{name}{NEWEST}");
        cursor::store(storage.as_ref(), &self.cursor_dir, &newest_name, &boundary)?;
        cursor::store(
            storage.as_ref(),
            &self.cursor_dir,
            &format!("{name}{SPLIT}"),
            &boundary,
        )?;
        let n = self.register(&newest_name, boundary);
        let c = &mut self.consumers[id.0];
        c.limit = Some(boundary.segment);
        c.newest = Some(n.0);
        Ok(n)
    }

    /// The newest-first sub-consumer of `id`, while it is split.
    #[must_use]
    pub fn newest(&self, id: ConsumerId) -> Option<ConsumerId> {
        self.consumers.get(id.0)?.newest.map(ConsumerId)
    }

    /// True when split consumer `id` has read everything before its boundary.
    #[must_use]
    pub fn caught_up(&self, id: ConsumerId) -> bool {
        let Some(c) = self.consumers.get(id.0) else {
            return false;
        };
        c.limit.is_some_and(|l| {
            self.first_segment_from(c.read.segment)
                .is_none_or(|next| next >= l)
        })
    }

    /// Ends a split once the backlog before the boundary is delivered: `id` continues from the
    /// sub-consumer's acknowledged position and the sub-consumer goes away. The sub-consumer
    /// must have nothing in flight.
    ///
    /// # Errors
    /// [`Error::UnknownConsumer`]; I/O errors persisting the cursor.
    pub fn join(&mut self, id: ConsumerId) -> Result<(), Error> {
        let c = self.consumer_mut(id)?;
        let Some(n) = c.newest else {
            return Ok(());
        };
        let name = c.name.clone();
        let at = self.consumers[n].acked.max(self.consumers[id.0].acked);
        let storage = std::sync::Arc::clone(&self.storage);
        // Order matters for a crash in between: the main cursor first, then the boundary, then
        // the sub-consumer; each intermediate state resumes without loss.
        cursor::store(storage.as_ref(), &self.cursor_dir, &name, &at)?;
        let remove = |file: String| match storage.remove(&self.cursor_dir.join(&file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", self.cursor_dir.join(&file), e))
            }
            _ => Ok(()),
        };
        remove(cursor::file_name(&format!("{name}{SPLIT}")))?;
        remove(cursor::file_name(&format!("{name}{NEWEST}")))?;
        let sub = &mut self.consumers[n];
        sub.retired = true;
        sub.cur = None;
        sub.ends.remove(storage.as_ref());
        let sub_dropped =
            std::mem::take(&mut sub.dropped) + std::mem::take(&mut sub.in_flight_lost);
        let c = &mut self.consumers[id.0];
        c.acked = at;
        c.persisted = at;
        c.unsynced_since = None;
        c.read = at;
        c.cur = None;
        c.limit = None;
        c.newest = None;
        c.dropped += sub_dropped;
        c.ends.persisted(storage.as_ref(), at);
        Ok(())
    }
}
