//! Checks that need more than the schema: names, ranges, combinations.

use super::{ConfigError, Loaded};
use magpie_transport::{redact_url, url_has_credentials};
use std::collections::HashSet;

/// Why user info in a URL is refused, and what to use instead.
const URL_CREDENTIALS: &str =
    "credentials do not belong in a URL, where they would show in logs, errors and the status page";

/// Byte offset of the quoted `value` in `span` of the source, so an error can point at the
/// very line of one entry of a list; `span.start` when it cannot be found.
fn offset_of(text: &str, span: std::ops::Range<usize>, value: &str) -> usize {
    let quoted = [format!("\"{value}\""), format!("'{value}'")];
    text.get(span.clone())
        .and_then(|t| quoted.iter().filter_map(|q| t.find(q.as_str())).min())
        .map_or(span.start, |i| span.start + i)
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn validate(l: &Loaded) -> Vec<ConfigError> {
    let c = &l.config;
    let mut errs = Vec::new();
    for name in c.collector.external_labels.keys() {
        if !is_label_name(name) || name.starts_with("__") {
            errs.push(ConfigError {
                file: l.file.clone(),
                line: 0,
                col: 0,
                message: format!("collector.external_labels: `{name}` is not a valid label name"),
            });
        }
    }
    if c.collector.status_history_step.0 < std::time::Duration::from_millis(100) {
        errs.push(ConfigError {
            file: l.file.clone(),
            line: 0,
            col: 0,
            message: "collector.status_history_step: must be 100ms or longer".into(),
        });
    }
    let wal = c.wal.options();
    if let Err(e) = wal.validate() {
        errs.push(ConfigError {
            file: l.file.clone(),
            line: 0,
            col: 0,
            message: format!("wal: {e}"),
        });
    }
    if let Some(f) = &c.fleet {
        errs.extend(f.problems().into_iter().map(|(at, m)| l.error_at(at, m)));
    }
    let mut jobs = HashSet::new();
    // A `[[table]]`'s span is its header; its keys run up to the next one.
    let starts: Vec<usize> = (c.scrape.iter().map(toml::Spanned::span))
        .chain(c.export.iter().map(toml::Spanned::span))
        .map(|s| s.start)
        .collect();
    for s in &c.scrape {
        let at = s.span().start;
        let next = starts.iter().copied().filter(|&o| o > at).min();
        let span = at..next.unwrap_or(l.text.len());
        let s = s.get_ref();
        let job = s.job.get_ref();
        if job.is_empty() {
            errs.push(l.error_at(s.job.span().start, "job: must not be empty"));
        } else if !jobs.insert(job.clone()) {
            errs.push(l.error_at(s.job.span().start, format!("job: `{job}` is defined twice")));
        }
        if s.interval.0.is_zero() {
            errs.push(l.error_at(
                at,
                format!("scrape job `{job}`: interval must be longer than 0s"),
            ));
        }
        if s.timeout() > s.interval.0 {
            errs.push(l.error_at(
                at,
                format!(
                    "scrape job `{job}`: timeout ({:?}) must not exceed interval ({:?})",
                    s.timeout(),
                    s.interval.0
                ),
            ));
        }
        if let Err(e) = magpie_scrape::relabel::compile(&s.metric_relabel_configs) {
            errs.push(l.error_at(
                at,
                format!("scrape job `{job}`: metric_relabel_configs: {e}"),
            ));
        }
        for (i, g) in s.static_configs.iter().enumerate() {
            for name in g.labels.keys() {
                if !is_label_name(name) {
                    errs.push(l.error_at(
                        at,
                        format!("scrape job `{job}`: static_configs[{i}].labels: `{name}` is not a valid label name"),
                    ));
                }
            }
            for t in &g.targets {
                if t.is_empty() || t.contains('/') || t.contains('@') {
                    errs.push(l.error_at(
                        at,
                        format!("scrape job `{job}`: static_configs[{i}].targets: `{}` is not a host:port address", redact_url(t)),
                    ));
                }
            }
        }
        if let Err(e) = magpie_scrape::relabel::compile(&s.relabel_configs) {
            errs.push(l.error_at(at, format!("scrape job `{job}`: relabel_configs: {e}")));
        }
        if !s.kubernetes_sd_configs.is_empty() && !magpie_scrape::discovery::kubernetes::ENABLED {
            let k8s = (l.text.get(span.clone()))
                .and_then(|t| t.find("kubernetes_sd_configs"))
                .map_or(at, |i| span.start + i);
            errs.push(l.error_at(
                k8s,
                format!(
                    "scrape job `{job}`: kubernetes_sd_configs: {}",
                    crate::prometheus::NO_KUBERNETES
                ),
            ));
        }
        for sd in &s.kubernetes_sd_configs {
            if let Err(list) = sd.validate() {
                for e in list {
                    errs.push(l.error_at(
                        at,
                        format!("scrape job `{job}`: kubernetes_sd_configs: {e}"),
                    ));
                }
            }
        }
        for sd in &s.dns_sd_configs {
            if let Err(list) = sd.validate() {
                for e in list {
                    errs.push(l.error_at(at, format!("scrape job `{job}`: dns_sd_configs: {e}")));
                }
            }
        }
        for sd in &s.http_sd_configs {
            if let Err(list) = sd.validate() {
                for e in list {
                    errs.push(l.error_at(at, format!("scrape job `{job}`: http_sd_configs: {e}")));
                }
            }
        }
        for sd in &s.file_sd_configs {
            if let Err(list) = sd.validate() {
                for e in list {
                    errs.push(l.error_at(at, format!("scrape job `{job}`: file_sd_configs: {e}")));
                }
            }
        }
        if !matches!(s.scheme.as_str(), "http" | "https") {
            errs.push(l.error_at(
                at,
                format!(
                    "scrape job `{job}`: scheme: `{}` is not http or https",
                    s.scheme
                ),
            ));
        }
        let mut targets = HashSet::new();
        for t in &s.targets {
            let shown = redact_url(t);
            if url_has_credentials(t) {
                errs.push(l.error_at(
                    offset_of(&l.text, span.clone(), t),
                    format!(
                        "scrape job `{job}`: targets: `{shown}`: {URL_CREDENTIALS}; use basic_auth = {{ username = \"…\", password_file = \"…\" }} (or bearer_token_file) on the job"
                    ),
                ));
            }
            if !magpie_scrape::populate::has_target_scheme(t) {
                errs.push(l.error_at(
                    at,
                    format!(
                        "scrape job `{job}`: targets: `{shown}` is not an http://, https://, tcp://, udp:// or rtu:// URL"
                    ),
                ));
            }
            if !targets.insert(t) {
                errs.push(l.error_at(
                    at,
                    format!("scrape job `{job}`: targets: `{shown}` is listed twice"),
                ));
            }
        }
        errs.extend(s.client_problems().into_iter().map(|m| l.error_at(at, m)));
        for f in s.file_grants() {
            if !f.is_absolute() || f.components().any(|c| c == std::path::Component::ParentDir) {
                errs.push(l.error_at(
                    at,
                    format!(
                        "scrape job `{job}`: files: `{}` must be an absolute path without `..`",
                        f.display()
                    ),
                ));
            }
        }
    }
    let mut names = HashSet::new();
    for e in &c.export {
        let e = e.get_ref();
        let name = e.name.get_ref();
        let bad_name = name.is_empty()
            || name.len() > 64
            || name.starts_with('.')
            || name.ends_with(".newest")
            || name.ends_with(".split")
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if bad_name {
            errs.push(l.error_at(
                e.name.span().start,
                format!(
                    "name: exporter `{name}`: use 1 to 64 ASCII letters, digits, '_', '-' or '.', not starting with '.' nor ending in `.newest` or `.split` (it names the exporter's WAL cursor file)"
                ),
            ));
        }
        if !names.insert(name.clone()) {
            errs.push(l.error_at(
                e.name.span().start,
                format!("name: exporter `{name}` is defined twice"),
            ));
        }
        if e.max_samples_per_send == 0 {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: max_samples_per_send must be at least 1"),
            ));
        }
        if let Err(err) = magpie_scrape::relabel::compile(&e.write_relabel_configs) {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: write_relabel_configs: {err}"),
            ));
        }
        if let Some(m) = &e.metadata
            && m.send
            && (m.max_samples_per_send == 0 || m.send_interval.0.is_zero())
        {
            errs.push(l.error_at(
                e.name.span().start,
                format!(
                    "exporter `{name}`: metadata: send_interval and max_samples_per_send must be above 0"
                ),
            ));
        }
        if e.min_backoff.0 > e.max_backoff.0 {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: min_backoff must not exceed max_backoff"),
            ));
        }
        if e.basic_auth.is_some() && e.bearer_token_file.is_some() {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: basic_auth and bearer_token_file are exclusive"),
            ));
        }
        if let Some(t) = &e.tls
            && t.cert_file.is_some() != t.key_file.is_some()
        {
            errs.push(l.error_at(
                e.name.span().start,
                format!("exporter `{name}`: tls needs both cert_file and key_file, or neither"),
            ));
        }
        if let Some(m) = super::Tls::server_name_problem(
            e.tls.as_ref(),
            &format!("exporter `{name}`"),
            super::is_mqtt_url(e.url.get_ref()),
        ) {
            errs.push(l.error_at(e.name.span().start, m));
        }
        let url = e.url.get_ref();
        let shown = redact_url(url);
        if url_has_credentials(url) {
            errs.push(l.error_at(
                e.url.span().start,
                format!(
                    "url: exporter `{name}`: `{shown}`: {URL_CREDENTIALS}; use basic_auth = {{ username = \"…\", password_file = \"…\" }} (or bearer_token_file)"
                ),
            ));
        } else if !["http://", "https://", "mqtt://", "mqtts://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            errs.push(l.error_at(
                e.url.span().start,
                format!("url: `{shown}` is not an http(s):// or mqtt(s):// URL"),
            ));
        }
        let at = e.name.span().start;
        if super::is_mqtt_url(url) && !url_has_credentials(url) {
            validate_mqtt(e, &mut |m| errs.push(l.error_at(at, m)));
        } else if e.mqtt.is_some() || e.topic.is_some() {
            errs.push(l.error_at(
                at,
                format!("exporter `{name}`: topic and [export.mqtt] apply to mqtt:// and mqtts:// URLs only"),
            ));
        }
    }
    errs
}

/// The checks only an MQTT exporter needs.
fn validate_mqtt(e: &super::Export, err: &mut dyn FnMut(String)) {
    let name = e.name.get_ref();
    #[cfg(feature = "mqtt")]
    if let Err(reason) = magpie_transport::mqtt::BrokerUrl::parse(e.url.get_ref()) {
        err(format!("exporter `{name}`: {reason}"));
    }
    if e.bearer_token_file.is_some() || !e.headers.is_empty() {
        err(format!(
            "exporter `{name}`: bearer_token_file and headers are HTTP settings; an MQTT broker takes basic_auth"
        ));
    }
    if e.config.as_ref().is_some_and(|c| c.contains_key("topic")) {
        err(format!(
            "exporter `{name}`: set the topic as `topic` on the [[export]], not in [export.config]"
        ));
    }
    let m = e.mqtt_settings();
    if m.qos > 1 {
        err(format!(
            "exporter `{name}`: mqtt.qos must be 0 or 1, found {}",
            m.qos
        ));
    }
    let ka = m.keep_alive.0;
    if !ka.is_zero() && ka < std::time::Duration::from_secs(1) {
        err(format!(
            "exporter `{name}`: mqtt.keep_alive must be 0s or at least 1s"
        ));
    }
    if m.client_id.as_deref() == Some("") {
        err(format!("exporter `{name}`: mqtt.client_id is empty"));
    }
    for (key, t) in [
        ("topic", e.topic.as_deref()),
        ("mqtt.status_topic", m.status_topic.as_deref()),
    ] {
        if let Some(t) = t
            && (t.is_empty() || t.contains(['+', '#']))
        {
            err(format!(
                "exporter `{name}`: {key} `{t}` must be non-empty and without the wildcards + and #"
            ));
        }
    }
}
