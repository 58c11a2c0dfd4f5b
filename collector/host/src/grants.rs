//! What a plugin may reach: exact URLs, and files under path prefixes.
//!
//! A path is allowed when, after lexical normalisation (`..` is refused), it lies under a
//! granted prefix, and its real location (symlinks resolved) does too. sysfs is the one
//! exception to the second rule: its symlinks (`/sys/class/hwmon/hwmon0`) always point inside
//! `/sys`, so a path under `/sys` may resolve anywhere under `/sys`. Inside `/proc`, entries
//! of a process that expose its memory, environment or open files are refused whatever the
//! grant, so a plugin granted `/proc` cannot read the collector's secrets through
//! `/proc/self/environ`, `/proc/self/mem` or `/proc/self/fd/*`.

use magpie_sdk::abi::HostError;
use std::path::{Component, Path, PathBuf};

/// Per-process `/proc` entries that are never readable by plugins.
const PROC_DENIED: &[&str] = &[
    "auxv",
    "cwd",
    "environ",
    "exe",
    "fd",
    "fdinfo",
    "map_files",
    "maps",
    "mem",
    "pagemap",
    "personality",
    "root",
    "smaps",
    "smaps_rollup",
    "stack",
    "syscall",
    "timers",
];

/// A plugin's grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    urls: Vec<String>,
    prefixes: Vec<PathBuf>,
    real_prefixes: Vec<PathBuf>,
}

impl Grants {
    /// Grants exactly `urls` and the files under `prefixes` (absolute paths).
    ///
    /// # Errors
    /// When a prefix is not absolute or contains `..`.
    pub fn new(urls: Vec<String>, prefixes: &[PathBuf]) -> Result<Self, String> {
        let mut norm = Vec::with_capacity(prefixes.len());
        let mut real = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            let n = normalize(p).ok_or_else(|| {
                format!(
                    "file grant {}: must be an absolute path without `..`",
                    p.display()
                )
            })?;
            real.push(std::fs::canonicalize(&n).unwrap_or_else(|_| n.clone()));
            norm.push(n);
        }
        Ok(Self {
            urls,
            prefixes: norm,
            real_prefixes: real,
        })
    }

    /// The granted URLs.
    #[must_use]
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The granted path prefixes.
    #[must_use]
    pub fn prefixes(&self) -> &[PathBuf] {
        &self.prefixes
    }

    /// Whether `url` may be fetched.
    ///
    /// # Errors
    /// [`HostError::Denied`] when it is not one of the granted URLs.
    pub fn check_url(&self, url: &str) -> Result<(), HostError> {
        if self.urls.iter().any(|u| u == url) {
            Ok(())
        } else {
            Err(HostError::Denied)
        }
    }

    /// The path to open for `path`, if granted.
    ///
    /// # Errors
    /// [`HostError::Invalid`] for a relative path or one with `..`; [`HostError::Denied`]
    /// outside the grants; [`HostError::NotFound`] when it does not exist.
    pub fn check_path(&self, path: &str) -> Result<PathBuf, HostError> {
        let lexical = normalize(Path::new(path)).ok_or(HostError::Invalid)?;
        if !self.prefixes.iter().any(|p| lexical.starts_with(p)) || proc_denied(&lexical) {
            return Err(HostError::Denied);
        }
        let real = std::fs::canonicalize(&lexical).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HostError::NotFound,
            std::io::ErrorKind::PermissionDenied => HostError::Denied,
            _ => HostError::Io,
        })?;
        let inside = self.real_prefixes.iter().any(|p| real.starts_with(p))
            || (lexical.starts_with("/sys") && real.starts_with("/sys"));
        if !inside || proc_denied(&real) {
            return Err(HostError::Denied);
        }
        Ok(real)
    }
}

impl Grants {
    /// Whether `statvfs` may be asked of `path` although no grant covers it: the path is a
    /// mount point in the mount table, and the plugin may read that table (`/proc/self/mounts`)
    /// anyway. File system sizes of mount points it can already list reveal little, and
    /// granting every mount point as a read prefix would reveal far more.
    #[must_use]
    pub fn may_stat_mount_point(&self, path: &str) -> bool {
        if self.check_path("/proc/self/mounts").is_err() {
            return false;
        }
        let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
            return false;
        };
        table
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .any(|m| unescape_mount(m) == path)
    }
}

/// Mount points in `/proc/*/mounts` escape blanks and backslashes as octal (`\040`).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Absolute, without `.`, refusing `..`.
fn normalize(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// `/proc/<pid|self|thread-self>/<denied>` and the same under `task/<tid>/`.
fn proc_denied(path: &Path) -> bool {
    let parts: Vec<&str> = path.iter().filter_map(|c| c.to_str()).collect();
    let is_proc_entry = |s: &str| s == "self" || s == "thread-self" || s.parse::<u32>().is_ok();
    // parts[0] is "/".
    if parts.get(1) != Some(&"proc") || !parts.get(2).is_some_and(|p| is_proc_entry(p)) {
        return false;
    }
    let mut rest = &parts[3..];
    if rest.first() == Some(&"task") && rest.get(1).is_some_and(|p| p.parse::<u32>().is_ok()) {
        rest = &rest[2..];
    }
    rest.first().is_some_and(|e| PROC_DENIED.contains(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(prefixes: &[&str]) -> Grants {
        let p: Vec<PathBuf> = prefixes.iter().map(PathBuf::from).collect();
        Grants::new(vec!["http://127.0.0.1:9100/metrics".into()], &p).unwrap()
    }

    #[test]
    fn urls_are_matched_exactly() {
        let g = grants(&[]);
        assert_eq!(g.check_url("http://127.0.0.1:9100/metrics"), Ok(()));
        assert_eq!(
            g.check_url("http://127.0.0.1:9100/metrics?x"),
            Err(HostError::Denied)
        );
        assert_eq!(
            g.check_url("http://169.254.169.254/"),
            Err(HostError::Denied)
        );
    }

    #[test]
    fn paths_outside_or_escaping_are_refused() {
        let g = grants(&["/proc"]);
        assert!(g.check_path("/proc/stat").is_ok());
        assert_eq!(g.check_path("/etc/passwd"), Err(HostError::Denied));
        assert_eq!(g.check_path("/proc/../etc/passwd"), Err(HostError::Invalid));
        assert_eq!(g.check_path("proc/stat"), Err(HostError::Invalid));
        assert_eq!(g.check_path("/procfoo"), Err(HostError::Denied));
        // Symlinks out of /proc: the process root and working directory.
        assert_eq!(
            g.check_path("/proc/self/root/etc/passwd"),
            Err(HostError::Denied)
        );
        assert_eq!(g.check_path("/proc/self/cwd"), Err(HostError::Denied));
    }

    #[test]
    fn process_secrets_are_refused_even_when_granted() {
        let g = grants(&["/proc"]);
        for p in [
            "/proc/self/environ",
            "/proc/self/mem",
            "/proc/1/environ",
            "/proc/self/fd/0",
        ] {
            assert_eq!(g.check_path(p), Err(HostError::Denied), "{p}");
        }
        assert!(g.check_path("/proc/self/mounts").is_ok());
        assert!(g.check_path("/proc/1/mounts").is_ok());
    }

    #[test]
    fn symlinks_out_of_a_grant_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("granted");
        std::fs::create_dir(&granted).unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::fs::write(granted.join("ok"), "y").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), granted.join("link")).unwrap();
        let g = Grants::new(vec![], std::slice::from_ref(&granted)).unwrap();
        assert!(g.check_path(granted.join("ok").to_str().unwrap()).is_ok());
        let link = granted.join("link");
        assert_eq!(g.check_path(link.to_str().unwrap()), Err(HostError::Denied));
        let missing = granted.join("missing");
        assert_eq!(
            g.check_path(missing.to_str().unwrap()),
            Err(HostError::NotFound)
        );
    }

    #[test]
    fn mount_points_may_be_stated_by_plugins_that_read_the_mount_table() {
        let with_proc = grants(&["/proc"]);
        assert!(with_proc.may_stat_mount_point("/"));
        assert!(!with_proc.may_stat_mount_point("/etc"));
        let without = grants(&["/sys"]);
        assert!(!without.may_stat_mount_point("/"));
        assert_eq!(unescape_mount("/mnt/my\\040disk"), "/mnt/my disk");
    }

    #[test]
    fn relative_grants_are_rejected() {
        assert!(Grants::new(vec![], &[PathBuf::from("proc")]).is_err());
    }
}
