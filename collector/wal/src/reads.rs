//! The read journal: where each batch a consumer read ended, so that after a restart (or a
//! rewind) the data is read again in the same batches.
//!
//! Acknowledgements are persisted in groups ([`crate::Wal::persist_cursors`]), so a crash makes
//! a consumer read again what it had already delivered. Reading that again in one larger batch
//! would mix delivered samples with new ones, and a receiver that refuses a whole request for
//! one sample it already holds (Prometheus answers 400 to samples older than the newest of
//! their series, and rolls the whole request back) would then drop the new samples with it.
//! Read again in the same batches, a delivered batch is refused or taken as a duplicate on its
//! own, and the new samples come in batches of their own.
//!
//! Each consumer has a file `<name>.reads` next to its cursor: fixed 32-byte records (the
//! position's segment, offset, samples before it in its segment, and skip, then a CRC32C of
//! those 28 bytes), appended as batches are read. It is written, never synced: it survives a
//! crash of the process, and a power cut at worst loses it, which reads the data again in
//! batches of any size, as without it. Only ends past the persisted cursor matter; the file is
//! rewritten with the ends still needed once it has grown.

use crate::cursor::{POSITION_BYTES, Position};
use crate::error::Error;
use crate::segment::Summary;
use crate::storage::{Storage, StorageFile};
use std::path::{Path, PathBuf};

const RECORD: usize = 32;
/// Records the file may hold before it is rewritten with the ends still needed.
pub(crate) const MAX_RECORDS: usize = 256;

/// File name of a consumer's read journal.
pub(crate) fn file_name(name: &str) -> String {
    format!("{name}.reads")
}

fn encode(p: &Position) -> [u8; RECORD] {
    let mut b = [0u8; RECORD];
    p.put(&mut b[..POSITION_BYTES]);
    let crc = crc32c::crc32c(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<Position> {
    if b.len() != RECORD || b[28..32] != crc32c::crc32c(&b[..28]).to_le_bytes() {
        return None;
    }
    Some(Position::get(b))
}

/// One consumer's read ends past its persisted cursor, in order, and its journal file.
#[derive(Debug, Default)]
pub(crate) struct Ends {
    pub(crate) ends: Vec<Position>,
    /// Records in the file.
    in_file: usize,
    path: PathBuf,
    /// The file, open once it has been written.
    file: Option<Box<dyn StorageFile>>,
}

impl Ends {
    /// Loads consumer `name`'s journal: the ends after `after` that name data still in the
    /// ring (`segs`: the segments and what they hold). A torn or damaged record ends the
    /// journal there.
    pub(crate) fn load(
        storage: &dyn Storage,
        dir: &Path,
        name: &str,
        after: Position,
        segs: &[(u64, Summary)],
    ) -> Self {
        let path = dir.join(file_name(name));
        let mut ends = Vec::new();
        let mut in_file = 0;
        if let Ok(f) = storage.open(&path, false) {
            let len = f.len().unwrap_or(0);
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0).min(RECORD * 4096)];
            let n = f.read_at(&mut buf, 0).unwrap_or(0);
            for rec in buf[..n].chunks_exact(RECORD) {
                let Some(p) = decode(rec) else { break };
                in_file += 1;
                let in_ring = segs.iter().any(|(seq, s)| {
                    *seq == p.segment && p.seg_samples <= s.samples && p.offset <= s.data_len
                });
                if p > after && in_ring {
                    ends.push(p);
                }
            }
        }
        ends.sort_unstable();
        ends.dedup();
        Self {
            ends,
            in_file,
            path,
            file: None,
        }
    }

    /// Where a read from `read` must stop: the first earlier batch end after it.
    pub(crate) fn cap(&self, read: Position) -> Option<Position> {
        self.ends.iter().copied().find(|&e| e > read)
    }

    /// Records a batch that ended at `end`, unless an earlier read ended there or beyond.
    /// A failed write only costs the exactness of a later re-read: logged, not returned.
    pub(crate) fn read_to(&mut self, storage: &dyn Storage, end: Position) {
        if self.ends.last().is_some_and(|&l| l >= end) {
            return;
        }
        self.ends.push(end);
        if self.in_file >= MAX_RECORDS {
            self.rewrite(storage);
            return;
        }
        let at = (self.in_file * RECORD) as u64;
        let written = self.file(storage).and_then(|(f, path)| {
            f.write_all_at(&encode(&end), at)
                .map_err(|e| Error::io("write", path, e))
        });
        match written {
            Ok(()) => self.in_file += 1,
            Err(e) => log::warn!(
                "cannot write the WAL read journal; after a crash this consumer may read delivered and new samples in one batch. path={} error={e}",
                self.path.display()
            ),
        }
    }

    /// Forgets the ends at or before `persisted`, the consumer's cursor on disk. The file
    /// keeps them (loading skips them) until it has [`MAX_RECORDS`] / 2 records, so a
    /// consumer that keeps up only appends to it.
    pub(crate) fn persisted(&mut self, storage: &dyn Storage, persisted: Position) {
        self.ends.retain(|&e| e > persisted);
        if self.in_file >= MAX_RECORDS / 2 {
            self.rewrite(storage);
        }
    }

    /// Rewrites the file with the ends still needed (in place: a crash in between loses them,
    /// which only costs exactness).
    fn rewrite(&mut self, storage: &dyn Storage) {
        let mut bytes = Vec::with_capacity(self.ends.len() * RECORD);
        for e in &self.ends {
            bytes.extend_from_slice(&encode(e));
        }
        let r = self.file(storage).and_then(|(f, path)| {
            f.set_len(0).map_err(|e| Error::io("truncate", path, e))?;
            if !bytes.is_empty() {
                f.write_all_at(&bytes, 0)
                    .map_err(|e| Error::io("write", path, e))?;
            }
            Ok(())
        });
        match r {
            Ok(()) => self.in_file = self.ends.len(),
            Err(e) => log::warn!("cannot rewrite the WAL read journal. error={e}"),
        }
    }

    /// The journal file, opened (or created) at its first write and kept open.
    fn file(&mut self, storage: &dyn Storage) -> Result<(&mut Box<dyn StorageFile>, &Path), Error> {
        if self.file.is_none() {
            let f = match storage.open(&self.path, true) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => storage
                    .create(&self.path)
                    .map_err(|e| Error::io("create", &self.path, e))?,
                Err(e) => return Err(Error::io("open", &self.path, e)),
            };
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened above");
        Ok((f, &self.path))
    }

    /// Removes the journal (a consumer that goes away).
    pub(crate) fn remove(&mut self, storage: &dyn Storage) {
        self.ends.clear();
        self.in_file = 0;
        self.file = None;
        let _ = storage.remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_golden_bytes() {
        let p = Position {
            segment: 7,
            offset: 0x40,
            skip: 3,
            seg_samples: 12,
        };
        let b = encode(&p);
        assert_eq!(&b[..8], &7u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x40u64.to_le_bytes());
        assert_eq!(&b[16..24], &12u64.to_le_bytes());
        assert_eq!(&b[24..28], &3u32.to_le_bytes());
        assert_eq!(&b[28..32], &[0x83, 0x16, 0xd1, 0x53]);
        assert_eq!(decode(&b), Some(p));
        let mut flipped = b;
        flipped[9] ^= 1;
        assert_eq!(decode(&flipped), None);
    }
}
