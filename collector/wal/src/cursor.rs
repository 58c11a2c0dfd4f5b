//! Read positions and their persistence, one small file per consumer.

use std::fmt;
use std::path::Path;

use crate::error::Error;
use crate::storage::Storage;

/// A point in the WAL between two samples, as handed out with a [`crate::Batch`] and given back
/// to [`crate::Wal::ack`]. Positions order the way the data does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) skip: u32,
    pub(crate) seg_samples: u64,
}

impl Position {
    /// The start of segment `seq`.
    pub(crate) fn segment_start(segment: u64) -> Self {
        Position {
            segment,
            ..Position::default()
        }
    }

    /// Sequence number of the segment the position is in.
    #[must_use]
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// Byte offset in that segment of the record it refers to.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)?;
        if self.skip > 0 {
            write!(f, "+{}", self.skip)?;
        }
        Ok(())
    }
}

/// Bytes of a position as cursor files and the read journal store it: segment, offset,
/// samples before, skip, little-endian.
pub(crate) const POSITION_BYTES: usize = 28;

impl Position {
    /// Writes the position into `b[..POSITION_BYTES]`.
    pub(crate) fn put(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.segment.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.seg_samples.to_le_bytes());
        b[24..28].copy_from_slice(&self.skip.to_le_bytes());
    }

    /// Reads what [`Position::put`] wrote.
    pub(crate) fn get(b: &[u8]) -> Self {
        Position {
            segment: le64(b, 0),
            offset: le64(b, 8),
            seg_samples: le64(b, 16),
            skip: le32(b, 24),
        }
    }
}

const MAGIC: &[u8; 4] = b"MPCU";
/// Version 1: one 40-byte record, replaced by rename at every write (still read).
const VERSION_1: u16 = 1;
const LEN_1: usize = 40;
/// Version 2: two slots, overwritten in place in turn; the valid one with the higher sequence
/// number holds the position.
const VERSION: u16 = 2;
const SLOT: usize = 48;
/// The slots sit in different 512-byte sectors, so a torn write spoils at most one of them.
const SLOT_AT: [u64; 2] = [0, 512];
/// Length of a version-2 cursor file, and the most [`decode`] looks at.
pub(crate) const FILE_LEN: usize = 512 + SLOT;

/// A power cut re-delivers at most what was acknowledged this long before it (plus one
/// `fsync` interval): cursor files are written at every tick but synced this often, so that
/// a steady trickle of acknowledgements does not cost a synced page of flash a second.
pub(crate) const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Encodes one slot of a version-2 cursor file.
fn encode_slot(p: &Position, seq: u64) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[0..4].copy_from_slice(MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[8..16].copy_from_slice(&seq.to_le_bytes());
    p.put(&mut b[16..44]);
    let crc = crc32c::crc32c(&b[..44]);
    b[44..48].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A new version-2 cursor file: `p` in slot 0 with sequence number 1, slot 1 empty.
pub(crate) fn encode(p: &Position) -> [u8; FILE_LEN] {
    let mut b = [0u8; FILE_LEN];
    b[..SLOT].copy_from_slice(&encode_slot(p, 1));
    b
}

fn le64(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn decode_v1(b: &[u8]) -> Result<Position, &'static str> {
    if le32(b, 36) != crc32c::crc32c(&b[..36]) {
        return Err("cursor checksum mismatch");
    }
    Ok(Position::get(&b[8..36]))
}

/// A slot's sequence number and position, if it holds a valid one.
fn decode_slot(b: &[u8]) -> Option<(u64, Position)> {
    let b = b.get(..SLOT)?;
    if &b[0..4] != MAGIC || u16::from_le_bytes([b[4], b[5]]) != VERSION {
        return None;
    }
    (le32(b, 44) == crc32c::crc32c(&b[..44])).then(|| (le64(b, 8), Position::get(&b[16..44])))
}

/// Where a cursor file's position came from: a version-1 file, or a slot of a version-2 one
/// with its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    V1,
    Slot(usize, u64),
}

/// Decodes a cursor file of either version.
pub(crate) fn decode_with_source(b: &[u8]) -> Result<(Position, Source), &'static str> {
    if b.len() < 8 || &b[0..4] != MAGIC {
        return Err("not a cursor file");
    }
    if u16::from_le_bytes([b[4], b[5]]) == VERSION_1 {
        if b.len() != LEN_1 {
            return Err("not a cursor file");
        }
        return decode_v1(b).map(|p| (p, Source::V1));
    }
    let slots = SLOT_AT.map(|at| b.get(at as usize..).and_then(decode_slot));
    match slots {
        [None, None] if u16::from_le_bytes([b[4], b[5]]) != VERSION => {
            Err("unsupported cursor version")
        }
        [None, None] => Err("cursor checksum mismatch"),
        [Some((s, p)), None] => Ok((p, Source::Slot(0, s))),
        [None, Some((s, p))] => Ok((p, Source::Slot(1, s))),
        [Some((s0, p0)), Some((s1, p1))] => Ok(if s1 > s0 {
            (p1, Source::Slot(1, s1))
        } else {
            (p0, Source::Slot(0, s0))
        }),
    }
}

/// Decodes a cursor file of either version.
pub(crate) fn decode(b: &[u8]) -> Result<Position, &'static str> {
    decode_with_source(b).map(|(p, _)| p)
}

/// Checks that a consumer name is safe as a file name.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    let bad = |reason| {
        Err(Error::InvalidConsumer {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 bytes long");
    }
    if name.starts_with('.') {
        return bad("must not start with a dot");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return bad("may hold only ASCII letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

/// File name of a consumer's cursor.
pub(crate) fn file_name(name: &str) -> String {
    format!("{name}.cursor")
}

/// Loads a cursor; `Ok(None)` when there is none or it is unreadable (reading then restarts
/// from the oldest data, which keeps delivery at-least-once).
pub(crate) fn load(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
) -> Result<Option<Position>, Error> {
    let path = dir.join(file_name(name));
    let file = match storage.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut b = [0u8; FILE_LEN + 1];
    let n = file
        .read_at(&mut b, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    match decode(&b[..n]) {
        Ok(p) => Ok(Some(p)),
        Err(reason) => {
            log::warn!(
                "Ignoring damaged WAL cursor; the consumer restarts from the oldest data. path={} reason={reason}",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Persists a cursor atomically: temporary file, fdatasync, rename, directory fsync. Used to
/// create a cursor file and where a step must be durable before the next (split, join).
pub(crate) fn store(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    p: &Position,
) -> Result<(), Error> {
    let path = dir.join(file_name(name));
    let tmp = dir.join(format!("{}.tmp", file_name(name)));
    let mut f = storage
        .create(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all_at(&encode(p), 0)
        .map_err(|e| Error::io("write", &tmp, e))?;
    f.sync_data().map_err(|e| Error::io("fdatasync", &tmp, e))?;
    drop(f);
    storage
        .rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &path, e))?;
    storage
        .sync_dir(dir)
        .map_err(|e| Error::io("fsync", dir, e))
}

/// Writes `p` into the slot of the cursor file that does not hold the current position, and
/// `fdatasync`s it when `sync`. The write survives a crash of the process at once; a torn
/// write leaves the other slot. A missing, version-1 or damaged file is created anew with
/// [`store`] (synced).
pub(crate) fn update(
    storage: &dyn Storage,
    dir: &Path,
    name: &str,
    p: &Position,
    sync: bool,
) -> Result<(), Error> {
    let path = dir.join(file_name(name));
    let mut f = match storage.open(&path, true) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return store(storage, dir, name, p);
        }
        Err(e) => return Err(Error::io("open", path, e)),
    };
    let mut b = [0u8; FILE_LEN + 1];
    let n = f
        .read_at(&mut b, 0)
        .map_err(|e| Error::io("read", &path, e))?;
    let Ok((_, Source::Slot(slot, seq))) = decode_with_source(&b[..n]) else {
        drop(f);
        return store(storage, dir, name, p);
    };
    f.write_all_at(&encode_slot(p, seq + 1), SLOT_AT[1 - slot])
        .map_err(|e| Error::io("write", &path, e))?;
    if sync {
        f.sync_data()
            .map_err(|e| Error::io("fdatasync", &path, e))?;
    }
    Ok(())
}

/// `fdatasync`s a cursor file written by [`update`] without `sync`.
pub(crate) fn sync(storage: &dyn Storage, dir: &Path, name: &str) -> Result<(), Error> {
    let path = dir.join(file_name(name));
    let mut f = storage
        .open(&path, true)
        .map_err(|e| Error::io("open", &path, e))?;
    f.sync_data().map_err(|e| Error::io("fdatasync", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_golden_bytes() {
        let p = Position {
            segment: 3,
            offset: 0x1234,
            skip: 5,
            seg_samples: 9,
        };
        let b = encode(&p);
        assert_eq!(b.len(), 560);
        assert_eq!(&b[..16], b"MPCU\x02\0\0\0\x01\0\0\0\0\0\0\0");
        assert_eq!(&b[16..24], &3u64.to_le_bytes());
        assert_eq!(&b[24..32], &0x1234u64.to_le_bytes());
        assert_eq!(&b[32..40], &9u64.to_le_bytes());
        assert_eq!(&b[40..44], &5u32.to_le_bytes());
        assert_eq!(&b[44..48], &[0x33, 0x26, 0x6a, 0x16]);
        assert!(b[48..].iter().all(|&x| x == 0), "slot 1 starts empty");
        assert_eq!(decode(&b), Ok(p));
        let mut flipped = b;
        flipped[20] ^= 4;
        assert!(decode(&flipped).is_err());
    }

    /// A version-1 file as the previous release wrote it.
    fn v1_file(segment: u64, offset: u64, seg_samples: u64, skip: u32) -> [u8; LEN_1] {
        let mut b = [0u8; LEN_1];
        b[0..6].copy_from_slice(b"MPCU\x01\0");
        b[8..16].copy_from_slice(&segment.to_le_bytes());
        b[16..24].copy_from_slice(&offset.to_le_bytes());
        b[24..32].copy_from_slice(&seg_samples.to_le_bytes());
        b[32..36].copy_from_slice(&skip.to_le_bytes());
        let crc = crc32c::crc32c(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn version_1_files_still_read() {
        let mut b = v1_file(3, 0x1234, 9, 5);
        let p = Position {
            segment: 3,
            offset: 0x1234,
            skip: 5,
            seg_samples: 9,
        };
        assert_eq!(decode_with_source(&b), Ok((p, Source::V1)));
        b[37] ^= 1;
        assert!(decode(&b).is_err());
    }

    #[test]
    fn in_place_updates_alternate_and_survive_a_torn_slot() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let storage = crate::storage::OsStorage;
        let at = |segment| Position {
            segment,
            ..Position::default()
        };
        update(&storage, dir, "c", &at(1), false).unwrap();
        let path = dir.join("c.cursor");
        let read = || decode_with_source(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(read(), (at(1), Source::Slot(0, 1)));
        update(&storage, dir, "c", &at(2), false).unwrap();
        assert_eq!(read(), (at(2), Source::Slot(1, 2)));
        update(&storage, dir, "c", &at(3), true).unwrap();
        assert_eq!(read(), (at(3), Source::Slot(0, 3)));
        // A write torn in slot 0 leaves the position of slot 1.
        let mut b = std::fs::read(&path).unwrap();
        b[30] ^= 0xff;
        std::fs::write(&path, &b).unwrap();
        assert_eq!(read(), (at(2), Source::Slot(1, 2)));
        // The next update goes to the torn slot, not over the good one.
        update(&storage, dir, "c", &at(4), false).unwrap();
        assert_eq!(read(), (at(4), Source::Slot(0, 3)));
        // A version-1 file is replaced by a version-2 one at the first update.
        std::fs::write(&path, v1_file(0, 0, 0, 0)).unwrap();
        assert_eq!(read(), (at(0), Source::V1));
        update(&storage, dir, "c", &at(5), false).unwrap();
        assert_eq!(read(), (at(5), Source::Slot(0, 1)));
    }

    #[test]
    fn names() {
        check_name("central").unwrap();
        check_name("a.b-c_9").unwrap();
        for bad in ["", ".hidden", "a/b", "x y", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
