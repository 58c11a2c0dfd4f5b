//! Reading one target file: JSON or YAML by extension, checked as Prometheus checks it
//! (unknown keys and null groups are errors, label names must be valid), plus what Prometheus
//! only finds later, at scrape time: a target must be a `host:port`, not a URL, and
//! `__scheme__` must be `http` or `https`. Any problem makes the whole file bad, so a half-read
//! file never replaces a good one.

use super::{FILEPATH_LABEL, TargetGroup};
use crate::relabel::is_label_name;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One entry as written in a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    #[serde(default)]
    pub(super) targets: Vec<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
}

/// Reads the groups of the file at `path`.
///
/// # Errors
/// One message naming the file (and line and column when the parser knows them).
pub(super) fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let raw: Vec<RawGroup> = if ext.as_deref() == Some("json") {
        serde_json::from_str(&text).map_err(|e| {
            let (line, col) = (e.line(), e.column());
            located(path, line, col, &e.to_string())
        })?
    } else {
        serde_norway::from_str(&text).map_err(|e| {
            let (line, col) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            located(path, line, col, &e.to_string())
        })?
    };
    // Credentials would show in logs, errors and the status page: refused before anything
    // else, pointing at their line, and never shown.
    for (i, g) in raw.iter().enumerate() {
        if let Some(bad) = g.targets.iter().find(|t| t.contains('@')) {
            let (line, col) = text.find(bad.as_str()).map_or((0, 0), |at| {
                let before = &text[..at];
                let line = before.matches('\n').count() + 1;
                (line, at - before.rfind('\n').map_or(0, |nl| nl + 1) + 1)
            });
            let host = bad.rsplit_once('@').map_or("", |(_, h)| h);
            return Err(located(
                path,
                line,
                col,
                &format!(
                    "group {i}: targets: `<redacted>@{host}`: credentials do not belong in a target address, where they would show in logs, errors and the status page"
                ),
            ));
        }
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, g)| group(path, i, g).map_err(|e| format!("{shown}: group {i}: {e}")))
        .collect()
}

fn group(path: &Path, index: usize, raw: RawGroup) -> Result<TargetGroup, String> {
    check(&raw)?;
    let mut labels = raw.labels;
    let shown = path.display().to_string();
    labels.insert(FILEPATH_LABEL.into(), shown.clone());
    Ok(TargetGroup {
        targets: raw.targets,
        labels,
        source: format!("{shown}:{index}"),
    })
}

/// The checks every discovered group passes, whatever its source: valid label names, a
/// valid `__scheme__`, targets that are addresses without credentials.
pub(super) fn check(raw: &RawGroup) -> Result<(), String> {
    if let Some(bad) = raw.targets.iter().find(|t| t.contains('@')) {
        let host = bad.rsplit_once('@').map_or("", |(_, h)| h);
        return Err(format!(
            "targets: `<redacted>@{host}`: credentials do not belong in a target address, where they would show in logs, errors and the status page"
        ));
    }
    if let Some(bad) = raw.labels.keys().find(|n| !is_label_name(n)) {
        return Err(format!("labels: `{bad}` is not a valid label name"));
    }
    if let Some(s) = raw.labels.get("__scheme__")
        && !matches!(s.as_str(), "http" | "https")
    {
        return Err(format!("labels: __scheme__ `{s}` is not http or https"));
    }
    if let Some(bad) = raw.targets.iter().find(|t| !is_address(t)) {
        return Err(format!(
            "targets: `{bad}` is not a host:port (write the scheme and path as __scheme__ and __metrics_path__ labels)"
        ));
    }
    Ok(())
}

/// A target address: non-empty, no scheme, path, or white space (Prometheus refuses a `/`).
fn is_address(t: &str) -> bool {
    !t.is_empty() && !t.contains(|c: char| c == '/' || c.is_whitespace())
}

/// `path:line:col: message`, without the parser's own ` at line L column C`.
fn located(path: &Path, line: usize, col: usize, message: &str) -> String {
    if line == 0 {
        return format!("{}: {message}", path.display());
    }
    let suffix = format!(" at line {line} column {col}");
    let message = message.replacen(&suffix, "", 1);
    format!("{}:{line}:{col}: {message}", path.display())
}
