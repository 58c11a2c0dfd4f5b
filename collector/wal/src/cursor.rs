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

const MAGIC: &[u8; 4] = b"MPCU";
const VERSION: u16 = 1;
const LEN: usize = 40;

/// Encodes a cursor file.
pub(crate) fn encode(p: &Position) -> [u8; LEN] {
    let mut b = [0u8; LEN];
    b[0..4].copy_from_slice(MAGIC);
    b[4..6].copy_from_slice(&VERSION.to_le_bytes());
    b[8..16].copy_from_slice(&p.segment.to_le_bytes());
    b[16..24].copy_from_slice(&p.offset.to_le_bytes());
    b[24..32].copy_from_slice(&p.seg_samples.to_le_bytes());
    b[32..36].copy_from_slice(&p.skip.to_le_bytes());
    let crc = crc32c::crc32c(&b[..36]);
    b[36..40].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Decodes a cursor file.
pub(crate) fn decode(b: &[u8]) -> Result<Position, &'static str> {
    if b.len() != LEN || &b[0..4] != MAGIC {
        return Err("not a cursor file");
    }
    let crc = u32::from_le_bytes([b[36], b[37], b[38], b[39]]);
    if crc != crc32c::crc32c(&b[..36]) {
        return Err("cursor checksum mismatch");
    }
    if u16::from_le_bytes([b[4], b[5]]) != VERSION {
        return Err("unsupported cursor version");
    }
    let le64 = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    Ok(Position {
        segment: le64(8),
        offset: le64(16),
        seg_samples: le64(24),
        skip: u32::from_le_bytes([b[32], b[33], b[34], b[35]]),
    })
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
    let mut b = [0u8; LEN + 1];
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

/// Persists a cursor atomically: temporary file, fdatasync, rename, directory fsync.
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
        assert_eq!(&b[..8], b"MPCU\x01\0\0\0");
        assert_eq!(&b[8..16], &3u64.to_le_bytes());
        assert_eq!(&b[16..24], &0x1234u64.to_le_bytes());
        assert_eq!(&b[24..32], &9u64.to_le_bytes());
        assert_eq!(&b[32..36], &5u32.to_le_bytes());
        assert_eq!(decode(&b), Ok(p));
        let mut flipped = b;
        flipped[20] ^= 4;
        assert!(decode(&flipped).is_err());
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
