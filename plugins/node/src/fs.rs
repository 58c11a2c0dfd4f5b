//! The filesystem the collectors read through, and an in-memory implementation.
//!
//! In the sandbox the plugin has no filesystem of its own: every read is a host call that the
//! host checks against the path prefixes it granted. The trait is therefore small and
//! path-based (absolute strings such as `/proc/stat`), and a refusal is an ordinary error value
//! ([`FsError::Denied`]) that collectors treat as "skip this", never as a reason to panic.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// Why a filesystem call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsError {
    /// The path does not exist (ENOENT, or a directory read as a file).
    NotFound,
    /// The host did not grant this path to the plugin.
    Denied,
    /// Any other failure (EIO, EAGAIN from a broken driver, ENODATA, ...).
    Io,
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsError::NotFound => "not found",
            FsError::Denied => "access denied by the host",
            FsError::Io => "I/O error",
        })
    }
}

impl core::error::Error for FsError {}

/// The result of `statvfs(2)` on a mount point, in the units the kernel reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatVfs {
    /// `f_bsize`. node_exporter multiplies block counts by this (not `f_frsize`); the two are
    /// equal on the filesystems that matter, and using the same field keeps sizes identical.
    pub block_size: u64,
    /// `f_blocks`: total data blocks.
    pub blocks: u64,
    /// `f_bfree`: free blocks, including those reserved for root.
    pub blocks_free: u64,
    /// `f_bavail`: blocks available to unprivileged users.
    pub blocks_avail: u64,
    /// `f_files`: total inodes.
    pub files: u64,
    /// `f_ffree`: free inodes.
    pub files_free: u64,
    /// `ST_RDONLY` in `f_flag`. Informational: `node_filesystem_readonly` follows node_exporter
    /// and is derived from the `ro` mount option instead.
    pub readonly: bool,
}

/// Read access to the host's `/proc`, `/sys` and mount points.
///
/// Paths are absolute strings. Implementations follow symlinks (sysfs is full of them:
/// `/sys/class/hwmon/hwmon0` points into `/sys/devices`).
pub trait Fs {
    /// Reads a whole (small) file into `buf`, which is cleared first.
    fn read(&mut self, path: &str, buf: &mut Vec<u8>) -> Result<(), FsError>;
    /// Names of the entries of a directory (not full paths), in any order.
    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, FsError>;
    /// `statvfs(2)` of a mount point.
    fn statvfs(&mut self, path: &str) -> Result<StatVfs, FsError>;
    /// The canonical path of `path` with every symlink resolved (`realpath(3)`).
    ///
    /// Only the hwmon collector uses it, to name chips after their device the way
    /// node_exporter does (`/sys/class/hwmon/hwmon0/device` → `.../platform/coretemp.0` gives
    /// chip `platform_coretemp_0`). Resolving a name reveals no file content, so a host may
    /// allow it more widely than reads; if it refuses, chips fall back to their `name` file.
    fn real_path(&mut self, path: &str) -> Result<String, FsError>;
}

/// An in-memory [`Fs`]: files, directories, symlinks, mount points and denied prefixes.
///
/// Used by the fixture tests, and handy for a host's own tests. Directories exist implicitly
/// as parents of files and links; [`MemFs::dir`] adds an empty one.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
    links: BTreeMap<String, String>,
    mounts: BTreeMap<String, StatVfs>,
    denied: Vec<String>,
    failing: BTreeSet<String>,
}

/// How many symlinks a path may pass through before resolution gives up (Linux uses 40).
const MAX_LINK_HOPS: usize = 40;

impl MemFs {
    /// An empty filesystem.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn file(&mut self, path: &str, content: impl AsRef<[u8]>) -> &mut Self {
        self.files
            .insert(path.to_string(), content.as_ref().to_vec());
        self
    }

    /// Adds an empty directory.
    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.dirs.insert(path.to_string());
        self
    }

    /// Adds a symlink at `path` pointing to the absolute path `target`.
    pub fn link(&mut self, path: &str, target: &str) -> &mut Self {
        self.links.insert(path.to_string(), target.to_string());
        self
    }

    /// Adds a mount point whose `statvfs` returns `stat`.
    pub fn mount(&mut self, path: &str, stat: StatVfs) -> &mut Self {
        self.mounts.insert(path.to_string(), stat);
        self
    }

    /// Makes every call on `prefix` and below fail with [`FsError::Denied`].
    pub fn deny(&mut self, prefix: &str) -> &mut Self {
        self.denied.push(prefix.to_string());
        self
    }

    /// Makes every call on exactly `path` fail with [`FsError::Io`].
    pub fn fail(&mut self, path: &str) -> &mut Self {
        self.failing.insert(path.to_string());
        self
    }

    fn check(&self, path: &str) -> Result<(), FsError> {
        if self.denied.iter().any(|p| under(path, p)) {
            return Err(FsError::Denied);
        }
        if self.failing.contains(path) {
            return Err(FsError::Io);
        }
        Ok(())
    }

    /// Resolves symlinks in any component of `path`.
    fn resolve(&self, path: &str) -> Result<String, FsError> {
        let mut current = path.to_string();
        for _ in 0..MAX_LINK_HOPS {
            let hit = self
                .links
                .iter()
                .filter(|(link, _)| under(&current, link))
                .max_by_key(|(link, _)| link.len());
            match hit {
                Some((link, target)) => {
                    let rest = &current[link.len()..];
                    current = alloc::format!("{target}{rest}");
                }
                None => return Ok(current),
            }
        }
        Err(FsError::Io)
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = alloc::format!("{}/", path.trim_end_matches('/'));
        path == "/"
            || self.dirs.contains(path)
            || self.files.keys().any(|f| f.starts_with(&prefix))
            || self.links.keys().any(|l| l.starts_with(&prefix))
            || self.dirs.iter().any(|d| d.starts_with(&prefix))
    }
}

/// True if `path` is `prefix` or lies below it.
fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
        || prefix.is_empty()
}

impl Fs for MemFs {
    fn read(&mut self, path: &str, buf: &mut Vec<u8>) -> Result<(), FsError> {
        self.check(path)?;
        let real = self.resolve(path)?;
        self.check(&real)?;
        buf.clear();
        let content = self.files.get(&real).ok_or(FsError::NotFound)?;
        buf.extend_from_slice(content);
        Ok(())
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, FsError> {
        self.check(path)?;
        let real = self.resolve(path)?;
        self.check(&real)?;
        if !self.is_dir(&real) {
            return Err(FsError::NotFound);
        }
        let prefix = alloc::format!("{}/", real.trim_end_matches('/'));
        let mut names = BTreeSet::new();
        let all = self
            .files
            .keys()
            .chain(self.links.keys())
            .chain(self.dirs.iter());
        for entry in all {
            if let Some(rest) = entry.strip_prefix(&prefix)
                && let Some(first) = rest.split('/').next().filter(|s| !s.is_empty())
            {
                names.insert(first.to_string());
            }
        }
        Ok(names.into_iter().collect())
    }

    fn statvfs(&mut self, path: &str) -> Result<StatVfs, FsError> {
        self.check(path)?;
        self.mounts.get(path).copied().ok_or(FsError::NotFound)
    }

    fn real_path(&mut self, path: &str) -> Result<String, FsError> {
        self.check(path)?;
        let real = self.resolve(path)?;
        if self.files.contains_key(&real) || self.is_dir(&real) {
            Ok(real)
        } else {
            Err(FsError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn symlinks_resolve_in_any_component() {
        let mut fs = MemFs::new();
        fs.file("/sys/devices/x/hwmon/hwmon0/temp1_input", "42000\n")
            .link("/sys/class/hwmon/hwmon0", "/sys/devices/x/hwmon/hwmon0");
        let mut buf = Vec::new();
        fs.read("/sys/class/hwmon/hwmon0/temp1_input", &mut buf)
            .unwrap();
        assert_eq!(buf, b"42000\n");
        assert_eq!(
            fs.read_dir("/sys/class/hwmon").unwrap(),
            vec!["hwmon0".to_string()]
        );
        assert_eq!(
            fs.read_dir("/sys/class/hwmon/hwmon0").unwrap(),
            vec!["temp1_input".to_string()]
        );
        assert_eq!(
            fs.real_path("/sys/class/hwmon/hwmon0").unwrap(),
            "/sys/devices/x/hwmon/hwmon0"
        );
    }

    #[test]
    fn denied_and_failing_paths_are_reported() {
        let mut fs = MemFs::new();
        fs.file("/proc/stat", "cpu 1").deny("/proc").fail("/sys/x");
        let mut buf = Vec::new();
        assert_eq!(fs.read("/proc/stat", &mut buf), Err(FsError::Denied));
        assert_eq!(fs.read("/sys/x", &mut buf), Err(FsError::Io));
        assert_eq!(fs.read("/nope", &mut buf), Err(FsError::NotFound));
        // A prefix is a whole path component: /procx is not under /proc.
        assert_eq!(fs.read("/procx", &mut buf), Err(FsError::NotFound));
    }

    #[test]
    fn link_loops_end_in_an_error() {
        let mut fs = MemFs::new();
        fs.link("/a", "/b").link("/b", "/a");
        assert_eq!(fs.real_path("/a"), Err(FsError::Io));
    }
}
