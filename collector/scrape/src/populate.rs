//! Target relabeling (`relabel_configs`) with the semantics of Prometheus' `PopulateLabels`
//! (`scrape/target.go`, 2.42), so rules written for Prometheus pick, drop and rewrite targets
//! here the same way:
//!
//! ```toml
//! [[scrape.relabel_configs]]
//! source_labels = ["__meta_dns_name"]
//! regex = "test-.*"
//! action = "drop"
//!
//! [[scrape.relabel_configs]]
//! source_labels = ["__address__"]
//! regex = "([^:]+):\\d+"
//! target_label = "__address__"
//! replacement = "${1}:9100"
//! ```
//!
//! # From discovery to a scrape target
//! 1. The label set before relabeling: the target's `__address__`, its group's labels
//!    (`__meta_*` included), then `job`, `__scrape_interval__`, `__scrape_timeout__`,
//!    `__metrics_path__` and `__scheme__` from the job wherever the group left them unset or
//!    empty, and `__param_<name>` for the first value of each of the job's `params`.
//! 2. The rules run on it in order ([`crate::relabel`], every action). A rule that drops the
//!    set drops the target: it is never scraped.
//! 3. A set left without `__address__` is dropped with an error, as is an address holding a
//!    `/`, a scheme other than `http`/`https`, an interval or timeout that does not parse (as
//!    Prometheus' durations, `1m30s`), is zero, or a timeout longer than the interval.
//! 4. `instance` defaults to `__address__`. The URL is `__scheme__://__address__` with
//!    `__metrics_path__` and a query of the job's `params`, each `__param_<name>` replacing
//!    the first value of `<name>` (or adding it), keys sorted, as Go's `url.Values.Encode`.
//!    `__scrape_interval__` and `__scrape_timeout__` become the target's own interval and
//!    timeout.
//! 5. Labels starting with `__` (`__meta_*`, `__tmp*`, `__address__`, ...) are not attached
//!    to the target's samples.
//!
//! One deliberate difference: an address without a port is kept as it is (Prometheus 2.42
//! appended `:80` or `:443`; Prometheus 3 no longer does, and neither did magpie's
//! `file_sd`), so `instance` labels of existing targets do not change.
//!
//! Static targets are URLs in magpie's configuration; [`url_labels`] takes them apart into
//! `__scheme__`, `__address__`, `__metrics_path__` and `__param_*`, so the same rules apply
//! to them. When the rules leave those labels as they were, the URL is scraped exactly as
//! written.

use crate::discovery::target_url;
use crate::relabel::Relabeler;
use crate::target::Labels;
use std::collections::BTreeMap;
use std::time::Duration;

/// Schemes of field-device targets: a plugin given one may open exactly that socket or serial
/// line (`tcp://10.0.0.5:502`, `udp://10.0.0.9:161`, `rtu:///dev/ttyUSB0?baud=9600`). An
/// `rtu://` target has no address; its device path stands in `__metrics_path__`, and it is
/// the target's `instance`.
pub const DEVICE_SCHEMES: &[&str] = &["tcp", "udp", "rtu"];

/// Whether `scheme` is one a target may have.
#[must_use]
pub fn is_target_scheme(scheme: &str) -> bool {
    matches!(scheme, "http" | "https") || DEVICE_SCHEMES.contains(&scheme)
}

/// Whether a static target `url` starts with a scheme a target may have.
#[must_use]
pub fn has_target_scheme(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(s, _)| is_target_scheme(s))
}

/// The label holding a target's `host:port`.
pub const ADDRESS_LABEL: &str = "__address__";
/// The label holding a target's scheme.
pub const SCHEME_LABEL: &str = "__scheme__";
/// The label holding a target's metrics path.
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
/// The label holding a target's scrape interval.
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
/// The label holding a target's scrape timeout.
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
/// The prefix of labels holding URL query parameters.
pub const PARAM_PREFIX: &str = "__param_";

/// What a job contributes to its targets' labels, and its `relabel_configs`.
#[derive(Debug, Clone, Default)]
pub struct TargetRules {
    /// The job name.
    pub job: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The job's `metrics_path`.
    pub metrics_path: String,
    /// The job's scrape interval.
    pub interval: Duration,
    /// The job's scrape timeout.
    pub timeout: Duration,
    /// The job's `params`: query parameters of every target's URL.
    pub params: BTreeMap<String, Vec<String>>,
    /// `relabel_configs`, compiled.
    pub relabel: Relabeler,
}

/// A target after relabeling: what to scrape, how often, and the labels its samples get.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScrapeTarget {
    /// The URL to scrape.
    pub url: String,
    /// The labels attached to its samples (`job`, `instance` and the group's labels not
    /// starting with `__`), sorted by name.
    pub labels: Labels,
    /// Time between scrapes.
    pub interval: Duration,
    /// Longest a scrape may take.
    pub timeout: Duration,
}

impl TargetRules {
    /// Relabels one discovered target: `address` with its group's `labels`. `Ok(None)` when a
    /// rule dropped it.
    ///
    /// # Errors
    /// Why a target the rules kept cannot be scraped (no address, bad scheme, ...).
    pub fn populate(
        &self,
        address: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<ScrapeTarget>, String> {
        let mut set: BTreeMap<String, String> = labels.clone();
        set.insert(ADDRESS_LABEL.into(), address.into());
        self.finish(set, None)
    }

    /// Relabels a static target given as a URL; see [`url_labels`]. When the rules leave the
    /// URL's parts as they were, the URL is kept as written.
    ///
    /// # Errors
    /// As [`populate`](Self::populate), and for a URL that is not `http(s)://host...`.
    pub fn populate_url(&self, url: &str) -> Result<Option<ScrapeTarget>, String> {
        let set = url_labels(url)?;
        self.finish(set, Some(url))
    }

    fn finish(
        &self,
        mut set: BTreeMap<String, String>,
        written: Option<&str>,
    ) -> Result<Option<ScrapeTarget>, String> {
        // The URL's own parts, before the job's params join them.
        let before = written.map(|_| reserved(&set));
        let defaults = [
            ("job", self.job.clone()),
            (SCRAPE_INTERVAL_LABEL, format_duration(self.interval)),
            (SCRAPE_TIMEOUT_LABEL, format_duration(self.timeout)),
            (METRICS_PATH_LABEL, self.metrics_path.clone()),
            (SCHEME_LABEL, self.scheme.clone()),
        ];
        for (name, value) in defaults {
            let slot = set.entry(name.into()).or_default();
            if slot.is_empty() {
                *slot = value;
            }
        }
        for (name, values) in &self.params {
            if let Some(first) = values.first() {
                set.insert(format!("{PARAM_PREFIX}{name}"), first.clone());
            }
        }
        let mut labels: Labels = set.into_iter().collect();
        if !self.relabel.apply(&mut labels) {
            return Ok(None);
        }
        let get = |name: &str| {
            labels
                .binary_search_by(|(n, _)| n.as_str().cmp(name))
                .map_or("", |i| labels[i].1.as_str())
        };
        let scheme = get(SCHEME_LABEL);
        if !is_target_scheme(scheme) {
            return Err(format!("invalid scheme: \"{scheme}\""));
        }
        let device = scheme == "rtu";
        let address = if device {
            get(METRICS_PATH_LABEL)
        } else {
            get(ADDRESS_LABEL)
        };
        if address.is_empty() {
            return Err("no address".into());
        }
        if !device && address.contains('/') {
            return Err(format!("\"{address}\" is not a valid hostname"));
        }
        let interval_text = get(SCRAPE_INTERVAL_LABEL);
        let interval = parse_duration(interval_text)
            .map_err(|e| format!("error parsing scrape interval: {e}"))?;
        if interval.is_zero() {
            return Err("scrape interval cannot be 0".into());
        }
        let timeout_text = get(SCRAPE_TIMEOUT_LABEL);
        let timeout = parse_duration(timeout_text)
            .map_err(|e| format!("error parsing scrape timeout: {e}"))?;
        if timeout.is_zero() {
            return Err("scrape timeout cannot be 0".into());
        }
        if timeout > interval {
            return Err(format!(
                "scrape timeout cannot be greater than scrape interval (\"{timeout_text}\" > \"{interval_text}\")"
            ));
        }
        let url = match written {
            Some(w) if before.as_ref() == Some(&reserved_of(&labels)) => w.to_string(),
            _ => self.url_of(&labels),
        };
        let instance = if get("instance").is_empty() {
            Some(address.to_string())
        } else {
            None
        };
        let mut public: Labels = labels
            .into_iter()
            .filter(|(n, _)| !n.starts_with("__"))
            .collect();
        if let Some(i) = instance {
            public.push(("instance".into(), i));
            public.sort_unstable();
        }
        Ok(Some(ScrapeTarget {
            url,
            labels: public,
            interval,
            timeout,
        }))
    }

    fn url_of(&self, labels: &Labels) -> String {
        let mut params = self.params.clone();
        for (name, value) in labels {
            if let Some(key) = name.strip_prefix(PARAM_PREFIX) {
                match params.get_mut(key) {
                    Some(v) if !v.is_empty() => v[0].clone_from(value),
                    _ => {
                        params.insert(key.to_string(), vec![value.clone()]);
                    }
                }
            }
        }
        let get = |name: &str| {
            labels
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        let mut url = target_url(
            get(SCHEME_LABEL),
            get(ADDRESS_LABEL),
            get(METRICS_PATH_LABEL),
        );
        let mut sep = '?';
        for (k, values) in &params {
            for v in values {
                url.push(sep);
                sep = '&';
                query_escape(&mut url, k);
                url.push('=');
                query_escape(&mut url, v);
            }
        }
        url
    }
}

/// The labels that make the URL: scheme, address, path and parameters.
fn reserved(set: &BTreeMap<String, String>) -> Labels {
    set.iter()
        .filter(|(n, _)| is_url_label(n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

fn reserved_of(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| is_url_label(n))
        .cloned()
        .collect()
}

fn is_url_label(name: &str) -> bool {
    matches!(name, ADDRESS_LABEL | SCHEME_LABEL | METRICS_PATH_LABEL)
        || name.starts_with(PARAM_PREFIX)
}

/// A static target URL taken apart: `__scheme__`, `__address__` (the authority),
/// `__metrics_path__` (`/` when empty) and `__param_<name>` for the first value of each query
/// parameter (percent-decoded).
///
/// # Errors
/// A URL that is not `http://` or `https://` (or one of [`DEVICE_SCHEMES`]) followed by an
/// address (a device path for `rtu://`).
pub fn url_labels(url: &str) -> Result<BTreeMap<String, String>, String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| is_target_scheme(s))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let rest = rest.split('#').next().unwrap_or(rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (address, path) = before_query
        .find('/')
        .map_or((before_query, "/"), |i| before_query.split_at(i));
    if address.is_empty() && scheme != "rtu" {
        return Err(format!("`{url}` has no host"));
    }
    let mut set = BTreeMap::new();
    set.insert(SCHEME_LABEL.into(), scheme.into());
    set.insert(ADDRESS_LABEL.into(), address.into());
    set.insert(METRICS_PATH_LABEL.into(), percent_decode(path));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(&k.replace('+', " "));
        let v = percent_decode(&v.replace('+', " "));
        set.entry(format!("{PARAM_PREFIX}{k}")).or_insert(v);
    }
    Ok(set)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `url.QueryEscape`: unreserved characters stay, space becomes `+`, the rest `%XX`.
fn query_escape(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// A duration as Prometheus writes it (`model.Duration.String`): `15s`, `1m30s`, `500ms`,
/// `0s`.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        let n = ms / size;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
            ms -= n * size;
        }
    }
    out
}

/// A duration as Prometheus reads it (`model.ParseDuration`): units `y w d h m s ms`, each at
/// most once, largest first; `0` alone is zero.
///
/// # Errors
/// Text in any other form.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("not a valid duration string: \"{s}\"");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut next_unit = 0;
    let mut ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let after = &rest[digits..];
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let unit = &after[..unit_len];
        let i = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?
            + next_unit;
        ms = n
            .checked_mul(UNITS[i].1)
            .and_then(|v| ms.checked_add(v))
            .ok_or_else(bad)?;
        next_unit = i + 1;
        rest = &after[unit_len..];
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests;
