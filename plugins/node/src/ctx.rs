//! What every collector gets: the configuration, the filesystem with a reusable buffer, and
//! small parsing helpers that never panic.

use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::error::CollectError;
use crate::fs::{Fs, FsError};

pub(crate) struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    fs: &'a mut dyn Fs,
    buf: Vec<u8>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(cfg: &'a Config, fs: &'a mut dyn Fs) -> Self {
        Ctx {
            cfg,
            fs,
            buf: Vec::new(),
        }
    }

    /// Reads a file as text. Invalid UTF-8 is replaced rather than refused: kernel files are
    /// ASCII, and a stray byte in a sensor label must not cost the whole collector.
    pub(crate) fn read(&mut self, path: &str) -> Result<String, CollectError> {
        self.fs
            .read(path, &mut self.buf)
            .map_err(|e| CollectError::fs(path, e))?;
        Ok(String::from_utf8_lossy(&self.buf).into_owned())
    }

    /// Reads an optional file: `None` if it does not exist or is not granted.
    pub(crate) fn read_optional(&mut self, path: &str) -> Result<Option<String>, CollectError> {
        match self.read(path) {
            Ok(text) => Ok(Some(text)),
            Err(CollectError::Fs {
                error: FsError::NotFound | FsError::Denied,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads at most `limit` bytes of a file, as node_exporter's hwmon collector does with a
    /// single 128-byte `read(2)`.
    pub(crate) fn read_prefix(&mut self, path: &str, limit: usize) -> Result<String, FsError> {
        self.fs.read(path, &mut self.buf)?;
        let end = self.buf.len().min(limit);
        Ok(String::from_utf8_lossy(&self.buf[..end]).into_owned())
    }

    pub(crate) fn read_dir(&mut self, path: &str) -> Result<Vec<String>, CollectError> {
        self.fs
            .read_dir(path)
            .map_err(|e| CollectError::fs(path, e))
    }

    pub(crate) fn fs(&mut self) -> &mut dyn Fs {
        self.fs
    }
}

/// Parses an unsigned decimal integer field.
pub(crate) fn u64_field(s: &str, path: &str) -> Result<u64, CollectError> {
    s.parse()
        .map_err(|_| CollectError::parse(path, "expected an unsigned integer"))
}

/// Parses a decimal number field (integer or float).
pub(crate) fn f64_field(s: &str, path: &str) -> Result<f64, CollectError> {
    s.parse()
        .map_err(|_| CollectError::parse(path, "expected a number"))
}

/// Parses a whole sysfs file holding one integer, with surrounding whitespace.
pub(crate) fn int_file(text: &str, path: &str) -> Result<i64, CollectError> {
    text.trim()
        .parse()
        .map_err(|_| CollectError::parse(path, "expected an integer"))
}

/// Formats an unsigned integer for a label value.
pub(crate) fn itoa(n: u64) -> String {
    use core::fmt::Write;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = write!(s, "{n}");
    s
}
