//! Where a job's targets come from, with Prometheus' service discovery semantics so that
//! target files, HTTP SD endpoints and DNS records made for Prometheus work unchanged:
//!
//! - `file_sd_configs`: this module ([`FileSd`]), below.
//! - `http_sd_configs`: [`http`], an endpoint answering JSON target groups.
//! - `dns_sd_configs`: [`dns`], SRV, A and AAAA records.
//! - `kubernetes_sd_configs`: [`kubernetes`], roles `node`, `pod`, `service`; list and watch.
//!
//! Every mechanism produces [`TargetGroup`]s; the job's supervisor ([`crate::job`]) drives
//! each source through [`Discoverer`] on its own refresh interval, runs every target through
//! `relabel_configs` ([`crate::populate`]) and starts and stops target loops to match. A
//! source that fails keeps its last good groups. Plugins never see discovery: they are
//! handed a URL.
//!
//! # `file_sd_configs`
//! Target files written for Prometheus (by hand, Ansible, a provisioning script) work
//! unchanged:
//!
//! ```toml
//! [[scrape.file_sd_configs]]
//! files = ["/etc/magpie/targets/*.json", "/etc/magpie/targets/*.yml"]
//! refresh_interval = "1m"   # default 5m
//! ```
//!
//! Each file holds a list of target groups, in JSON (`.json`) or YAML (`.yml`, `.yaml`):
//!
//! ```json
//! [{ "targets": ["10.0.0.7:9100", "sensor-2:9100"], "labels": { "room": "attic" } }]
//! ```
//!
//! # Design
//! There is no file-watching dependency: the scheduler calls [`FileSd::refresh`] every
//! `refresh_interval`. A refresh lists the patterns' directories, then re-reads only the files
//! that appeared or whose stamp (modification and change times, size, inode) differs from the
//! last read; a file modified within two seconds of being read is read again next time too,
//! because a second write within the file system's timestamp granularity would keep its stamp.
//! Groups are compared after parsing, so touching a file is not a change.
//!
//! A file that cannot be read or parsed keeps the groups of its last good read (none if it
//! never had one) and is retried on every refresh; its error is reported once per distinct
//! error or stamp, naming the file and, for syntax errors, the line and column. A file that
//! disappears takes its groups with it. While a pattern's directory cannot be listed, no file
//! is dropped.
//!
//! # Labels
//! Each group gets `__meta_filepath` (the file's path) and the source `<path>:<index>`, as in
//! Prometheus. A group may set any of the special labels target relabeling reads
//! (`__scheme__`, `__metrics_path__`, `__param_*`, `__scrape_interval__`,
//! `__scrape_timeout__`); `__address__` comes from each target. Labels starting with `__`
//! are not attached to samples.

pub mod dns;
mod glob;
pub mod http;
pub mod kubernetes;
mod parse;
mod source;
#[cfg(test)]
mod tests;

pub use source::Discoverer;

use crate::units::Dur;
use glob::Glob;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often files are checked when the configuration does not say.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_mins(5);
/// The label naming the file a group came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";
/// A file modified this recently when read is read again on the next refresh.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// `file_sd`: where target files are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Files to read, ending in `.json`, `.yml` or `.yaml`. The file name (not the directories)
    /// may be a pattern: `*`, `?`, `[a-z]`. Relative paths are taken from the directory of the
    /// configuration file.
    pub files: Vec<String>,
    /// How often files are checked for changes. Default 5m.
    #[serde(default)]
    pub refresh_interval: Option<Dur>,
}

impl FileSdConfig {
    /// The refresh interval in effect.
    #[must_use]
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
            .map_or(DEFAULT_REFRESH_INTERVAL, |d| d.0)
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// Every problem found, each naming the key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.files.is_empty() {
            errors.push("files: must list at least one file or pattern".into());
        }
        for f in &self.files {
            if let Err(e) = Pattern::new(Path::new(f)) {
                errors.push(format!("files: {e}"));
            }
        }
        if self.refresh_interval.is_some_and(|d| d.0.is_zero()) {
            errors.push("refresh_interval: must be longer than 0s".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Targets sharing labels, from one entry of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// `host:port` of each target.
    pub targets: Vec<String>,
    /// The group's labels, `__meta_filepath` included.
    pub labels: BTreeMap<String, String>,
    /// `<path>:<index>`: which file and which entry of it.
    pub source: String,
}

impl TargetGroup {
    /// The URL to scrape `address` at: `__scheme__` and `__metrics_path__` from the group's
    /// labels when set, else the job's `scheme` and `metrics_path`.
    #[must_use]
    pub fn url(&self, address: &str, scheme: &str, metrics_path: &str) -> String {
        let label = |name: &str, default| self.labels.get(name).map_or(default, String::as_str);
        target_url(
            label("__scheme__", scheme),
            address,
            label("__metrics_path__", metrics_path),
        )
    }

    /// The labels to attach to the targets' samples: those not starting with `__`.
    pub fn public_labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels
            .iter()
            .filter(|(n, _)| !n.starts_with("__"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// `scheme://address/metrics_path`, as Prometheus builds a scrape URL: a missing leading `/`
/// is added, and characters that cannot stand in a URL path (space, `?`, `#`, `%`, non-ASCII)
/// are percent-encoded, so the path is always taken as a path.
#[must_use]
pub fn target_url(scheme: &str, address: &str, metrics_path: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut url = String::with_capacity(scheme.len() + 3 + address.len() + metrics_path.len() + 1);
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(address);
    if !metrics_path.is_empty() && !metrics_path.starts_with('/') {
        url.push('/');
    }
    for b in metrics_path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push('%');
            url.push(char::from(HEX[usize::from(b >> 4)]));
            url.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    url
}

/// A query string from `params` as Go's `url.Values.Encode` writes it (and Prometheus sends
/// it): keys sorted, each value in order, `application/x-www-form-urlencoded` escaping.
#[must_use]
pub fn query_string(params: &std::collections::BTreeMap<String, Vec<String>>) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let escape = |s: &str| {
        let mut o = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b' ' => o.push('+'),
                b if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) => o.push(char::from(b)),
                b => {
                    o.push('%');
                    o.push(char::from(HEX[usize::from(b >> 4)]));
                    o.push(char::from(HEX[usize::from(b & 15)]));
                }
            }
        }
        o
    };
    let mut parts = Vec::new();
    for (k, vs) in params {
        for v in vs {
            parts.push(format!("{}={}", escape(k), escape(v)));
        }
    }
    parts.join("&")
}

/// One entry of `files`, resolved.
#[derive(Debug, Clone)]
enum Pattern {
    File(PathBuf),
    Glob { dir: PathBuf, name: Glob },
}

impl Pattern {
    fn new(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("`{shown}` does not end in a file name"))?;
        let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        if !matches!(ext.as_deref(), Some("json" | "yml" | "yaml")) {
            return Err(format!("`{shown}` must end in .json, .yml or .yaml"));
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        if dir.to_str().is_some_and(glob::is_pattern) {
            return Err(format!(
                "`{shown}`: only the file name may be a pattern, not the directories"
            ));
        }
        if glob::is_pattern(name) {
            let name = Glob::new(name)?;
            Ok(Self::Glob {
                dir: dir.to_path_buf(),
                name,
            })
        } else {
            Ok(Self::File(path.to_path_buf()))
        }
    }
}

/// What identifies a version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    unix: (u64, i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Self {
            modified: m.modified().ok(),
            len: m.len(),
            #[cfg(unix)]
            unix: (m.ino(), m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether a write now could leave the stamp as it is.
    fn racy(&self, now: SystemTime) -> bool {
        self.modified
            .is_none_or(|m| now.duration_since(m).map_or(true, |age| age < RACY_WINDOW))
    }
}

/// What is known of one file.
#[derive(Debug, Default)]
struct FileState {
    /// At the last read, good or bad.
    stamp: Option<Stamp>,
    /// From the last good read.
    groups: Vec<TargetGroup>,
    /// Of the last read, if it failed.
    error: Option<String>,
    /// Read again even if the stamp stays.
    racy: bool,
}

/// Discovery from files; see the module documentation.
#[derive(Debug)]
pub struct FileSd {
    patterns: Vec<Pattern>,
    files: BTreeMap<PathBuf, FileState>,
    /// The groups changed since a caller last got them from `refresh`.
    pending: bool,
    /// Files read so far, to show that unchanged files are not read.
    reads: u64,
}

impl FileSd {
    /// Discovery for `config`; relative paths are taken from `base_dir` (the directory of the
    /// configuration file). Nothing is read until [`refresh`](Self::refresh).
    ///
    /// # Errors
    /// The problems [`FileSdConfig::validate`] finds.
    pub fn new(config: &FileSdConfig, base_dir: &Path) -> Result<Self, Vec<String>> {
        config.validate()?;
        let patterns = config
            .files
            .iter()
            .map(|f| Pattern::new(&base_dir.join(f)))
            .collect::<Result<_, _>>()
            .map_err(|e| vec![format!("files: {e}")])?;
        Ok(Self {
            patterns,
            files: BTreeMap::new(),
            // The first refresh always reports, so the caller learns the initial set.
            pending: true,
            reads: 0,
        })
    }

    /// Looks for new, changed and removed files. Returns every group (not only the changed
    /// ones) when anything changed since the last `Ok(Some(_))`, `Ok(None)` when nothing did.
    ///
    /// # Errors
    /// Problems found this time, each naming its file. Changes found alongside errors are not
    /// lost: the next call returns them, and [`groups`](Self::groups) has them already.
    pub fn refresh(&mut self) -> Result<Option<Vec<TargetGroup>>, Vec<String>> {
        let mut errors = Vec::new();
        let (found, complete) = self.list(&mut errors);
        let now = SystemTime::now();
        let mut changed = false;
        if complete {
            self.files.retain(|path, state| {
                let keep = found.contains(path);
                changed |= !keep && !state.groups.is_empty();
                keep
            });
        }
        for path in found {
            let stamp = match std::fs::metadata(&path) {
                Ok(m) => Stamp::of(&m),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // Removed since the listing.
                    changed |= self
                        .files
                        .remove(&path)
                        .is_some_and(|s| !s.groups.is_empty());
                    continue;
                }
                Err(e) => {
                    errors.push(format!("{}: cannot read: {e}", path.display()));
                    continue;
                }
            };
            let state = self.files.entry(path.clone()).or_default();
            let restamped = state.stamp != Some(stamp);
            if !restamped && state.error.is_none() && !state.racy {
                continue;
            }
            self.reads += 1;
            match parse::read_groups(&path) {
                Ok(groups) => {
                    changed |= groups != state.groups;
                    state.groups = groups;
                    state.error = None;
                }
                Err(e) => {
                    // Retried every time, reported when it is news.
                    if restamped || state.error.as_ref() != Some(&e) {
                        errors.push(e.clone());
                    }
                    state.error = Some(e);
                }
            }
            state.stamp = Some(stamp);
            state.racy = stamp.racy(now);
        }
        self.pending |= changed;
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(std::mem::take(&mut self.pending).then(|| self.groups()))
    }

    /// The groups of all files as of the last refresh, in file path order.
    #[must_use]
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|s| s.groups.iter().cloned())
            .collect()
    }

    /// The files the patterns match now; `false` when a directory could not be listed.
    fn list(&self, errors: &mut Vec<String>) -> (BTreeSet<PathBuf>, bool) {
        let mut found = BTreeSet::new();
        let mut complete = true;
        for p in &self.patterns {
            match p {
                Pattern::File(path) => {
                    if path.exists() {
                        found.insert(path.clone());
                    }
                }
                Pattern::Glob { dir, name } => {
                    let listing = if dir.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        dir.as_path()
                    };
                    match std::fs::read_dir(listing) {
                        Ok(entries) => {
                            found.extend(entries.filter_map(Result::ok).filter_map(|e| {
                                let n = e.file_name();
                                n.to_str()
                                    .is_some_and(|n| name.matches(n))
                                    .then(|| dir.join(n))
                            }));
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => {
                            complete = false;
                            errors.push(format!("{}: cannot list: {e}", listing.display()));
                        }
                    }
                }
            }
        }
        (found, complete)
    }
}
