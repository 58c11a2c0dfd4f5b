//! A typed `prometheus.yml` written as magpie's TOML: `[[scrape]]` jobs with the
//! `prom-scrape` plugin and `[[export]]`s with the `remote-write` plugin, every value spelt
//! out (Prometheus' defaults differ from magpie's). Loading a `prometheus.yml` goes through
//! this text, so what `magpie config convert` prints is exactly what runs.

use super::schema::{self, PromConfig, PromDuration, RemoteWrite, ScrapeConfig, SdClient};
use magpie_scrape::relabel::RelabelConfig;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// A TOML basic string: a JSON string is one.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn dur(d: Duration) -> String {
    q(&PromDuration(d).to_toml())
}

fn inline(map: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{} = {}", q(k), q(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A path as written, or taken from `base` when it is relative and `base` is given.
fn path(p: &str, base: Option<&Path>) -> String {
    match base {
        Some(b) if Path::new(p).is_relative() => b.join(p).display().to_string(),
        _ => p.to_string(),
    }
}

fn relabel(out: &mut String, table: &str, rules: &[RelabelConfig]) {
    for r in rules {
        let _ = writeln!(out, "\n[[{table}]]");
        if !r.source_labels.is_empty() {
            let _ = writeln!(out, "source_labels = {}", list(&r.source_labels));
        }
        let d = RelabelConfig::default();
        if r.separator != d.separator {
            let _ = writeln!(out, "separator = {}", q(&r.separator));
        }
        if !r.target_label.is_empty() {
            let _ = writeln!(out, "target_label = {}", q(&r.target_label));
        }
        if r.regex != d.regex {
            let _ = writeln!(out, "regex = {}", q(&r.regex));
        }
        if r.modulus != 0 {
            let _ = writeln!(out, "modulus = {}", r.modulus);
        }
        if r.replacement != d.replacement {
            let _ = writeln!(out, "replacement = {}", q(&r.replacement));
        }
        let _ = writeln!(out, "action = {}", q(r.action.as_str()));
    }
}

/// The name of a remote write without one: stable while its URL stays, as the exporter's WAL
/// cursor is kept under it (Prometheus names it by a hash of its settings too).
pub(crate) fn default_name(url: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in url.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("remote-write-{h:08x}")
}

fn scrape(out: &mut String, j: &ScrapeConfig, times: (Duration, Duration), base: Option<&Path>) {
    let _ = writeln!(out, "\n[[scrape]]");
    let _ = writeln!(out, "job = {}", q(&j.job_name));
    let _ = writeln!(out, "plugin = \"prom-scrape\"");
    let _ = writeln!(out, "interval = {}", dur(times.0));
    let _ = writeln!(out, "timeout = {}", dur(times.1));
    let _ = writeln!(out, "scheme = {}", q(j.scheme.as_deref().unwrap_or("http")));
    let _ = writeln!(
        out,
        "metrics_path = {}",
        q(j.metrics_path.as_deref().unwrap_or("/metrics"))
    );
    if !j.params.is_empty() {
        let items: Vec<String> = (j.params.iter())
            .map(|(k, v)| format!("{} = {}", q(k), list(v)))
            .collect();
        let _ = writeln!(out, "params = {{ {} }}", items.join(", "));
    }
    if j.honor_labels {
        let _ = writeln!(out, "honor_labels = true");
    }
    if j.honor_timestamps == Some(false) {
        let _ = writeln!(out, "honor_timestamps = false");
    }
    scrape_client(out, j, base);
    if j.sample_limit != 0 {
        let _ = writeln!(out, "sample_limit = {}", j.sample_limit);
    }
    for (key, v) in [
        ("target_limit", j.target_limit),
        ("label_limit", j.label_limit),
        ("label_name_length_limit", j.label_name_length_limit),
        ("label_value_length_limit", j.label_value_length_limit),
    ] {
        if v != 0 {
            let _ = writeln!(out, "{key} = {v}");
        }
    }
    if let Some(b) = &j.body_size_limit {
        // Checked by the caller.
        let _ = writeln!(
            out,
            "body_size_limit = {}",
            schema::base2_bytes(b).unwrap_or(0)
        );
    }
    for g in &j.static_configs {
        let _ = writeln!(out, "\n[[scrape.static_configs]]");
        let _ = writeln!(out, "targets = {}", list(&g.targets));
        if !g.labels.is_empty() {
            let _ = writeln!(out, "labels = {}", inline(&g.labels));
        }
    }
    for f in &j.file_sd_configs {
        let files: Vec<String> = f.files.iter().map(|p| path(p, base)).collect();
        let _ = writeln!(out, "\n[[scrape.file_sd_configs]]");
        let _ = writeln!(out, "files = {}", list(&files));
        let every = f.refresh_interval.map_or(schema::DEFAULT_REFRESH, |d| d.0);
        let _ = writeln!(out, "refresh_interval = {}", dur(every));
    }
    for h in &j.http_sd_configs {
        let _ = writeln!(out, "\n[[scrape.http_sd_configs]]");
        let _ = writeln!(out, "url = {}", q(&h.url));
        let every = h
            .refresh_interval
            .map_or(schema::DEFAULT_HTTP_SD_REFRESH, |d| d.0);
        let _ = writeln!(out, "refresh_interval = {}", dur(every));
        sd_client(out, &h.client, base);
    }
    for d in &j.dns_sd_configs {
        let _ = writeln!(out, "\n[[scrape.dns_sd_configs]]");
        let _ = writeln!(out, "names = {}", list(&d.names));
        let kind = d.kind.as_deref().unwrap_or(schema::DEFAULT_DNS_SD_TYPE);
        let _ = writeln!(out, "type = {}", q(kind));
        if let Some(p) = d.port {
            let _ = writeln!(out, "port = {p}");
        }
        let every = d
            .refresh_interval
            .map_or(schema::DEFAULT_DNS_SD_REFRESH, |d| d.0);
        let _ = writeln!(out, "refresh_interval = {}", dur(every));
    }
    for k in &j.kubernetes_sd_configs {
        let _ = writeln!(out, "\n[[scrape.kubernetes_sd_configs]]");
        let _ = writeln!(out, "role = {}", q(&k.role));
        if let Some(a) = &k.api_server {
            let _ = writeln!(out, "api_server = {}", q(a));
        }
        // Prometheus ignores `namespaces` for nodes, which are not namespaced; magpie's TOML
        // refuses it there, so it is left out.
        let ns = &k.namespaces;
        if k.role != "node" && (ns.own_namespace || !ns.names.is_empty()) {
            let _ = writeln!(
                out,
                "namespaces = {{ own_namespace = {}, names = {} }}",
                ns.own_namespace,
                list(&ns.names)
            );
        }
        if !k.selectors.is_empty() {
            let items: Vec<String> = (k.selectors.iter())
                .map(|s| {
                    let mut m = BTreeMap::from([("role".to_string(), s.role.clone())]);
                    for (key, v) in [("label", &s.label), ("field", &s.field)] {
                        if let Some(v) = v {
                            m.insert(key.to_string(), v.clone());
                        }
                    }
                    inline(&m)
                })
                .collect();
            let _ = writeln!(out, "selectors = [{}]", items.join(", "));
        }
        sd_client(out, &k.client, base);
    }
    relabel(out, "scrape.relabel_configs", &j.relabel_configs);
    relabel(
        out,
        "scrape.metric_relabel_configs",
        &j.metric_relabel_configs,
    );
}

/// A scrape job's credentials and TLS files, under `[[scrape]]`'s keys (those of
/// `[[export]]`): `authorization.credentials_file` becomes `bearer_token_file`.
fn scrape_client(out: &mut String, j: &ScrapeConfig, base: Option<&Path>) {
    client_keys(
        out,
        j.basic_auth.as_ref(),
        j.authorization.as_ref(),
        j.bearer_token_file.as_deref(),
        j.tls_config.as_ref(),
        base,
    );
}

/// `basic_auth`, `bearer_token_file` and `tls` lines, shared by scrape jobs and remote writes:
/// both take the keys of `[[export]]`; `authorization.credentials_file` becomes
/// `bearer_token_file`.
fn client_keys(
    out: &mut String,
    basic_auth: Option<&schema::BasicAuth>,
    authorization: Option<&schema::Authorization>,
    bearer_token_file: Option<&str>,
    tls: Option<&schema::TlsConfig>,
    base: Option<&Path>,
) {
    let token = authorization
        .and_then(|a| a.credentials_file.as_deref())
        .or(bearer_token_file);
    if let Some(b) = basic_auth {
        let file = (b.password_file.as_deref()).map_or_else(String::new, |p| path(p, base));
        let _ = writeln!(
            out,
            "basic_auth = {{ username = {}, password_file = {} }}",
            q(&b.username),
            q(&file)
        );
    }
    if let Some(t) = token {
        let _ = writeln!(out, "bearer_token_file = {}", q(&path(t, base)));
    }
    if let Some(t) = tls {
        let _ = writeln!(out, "tls = {}", inline(&tls_files(t, base)));
    }
}

/// A discovery mechanism's credentials and TLS files, as inline tables.
fn sd_client(out: &mut String, c: &SdClient, base: Option<&Path>) {
    if let Some(b) = &c.basic_auth {
        let file = (b.password_file.as_deref()).map_or_else(String::new, |p| path(p, base));
        let _ = writeln!(
            out,
            "basic_auth = {{ username = {}, password_file = {} }}",
            q(&b.username),
            q(&file)
        );
    }
    if let Some(a) = &c.authorization {
        let mut m = BTreeMap::new();
        if let Some(k) = &a.kind {
            m.insert("type".to_string(), k.clone());
        }
        if let Some(f) = &a.credentials_file {
            m.insert("credentials_file".to_string(), path(f, base));
        }
        let _ = writeln!(out, "authorization = {}", inline(&m));
    }
    if let Some(t) = &c.tls_config {
        let _ = writeln!(out, "tls_config = {}", inline(&tls_files(t, base)));
    }
}

fn tls_files(t: &schema::TlsConfig, base: Option<&Path>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("ca_file", &t.ca_file),
        ("cert_file", &t.cert_file),
        ("key_file", &t.key_file),
    ] {
        if let Some(v) = v {
            m.insert(k.to_string(), path(v, base));
        }
    }
    if let Some(n) = &t.server_name {
        m.insert("server_name".to_string(), n.clone());
    }
    m
}

fn export(out: &mut String, rw: &RemoteWrite, base: Option<&Path>) {
    let name = rw.name.clone().unwrap_or_else(|| default_name(&rw.url));
    let qc = &rw.queue_config;
    let _ = writeln!(out, "\n[[export]]");
    let _ = writeln!(out, "name = {}", q(&name));
    let _ = writeln!(out, "plugin = \"remote-write\"");
    let _ = writeln!(out, "url = {}", q(&rw.url));
    let timeout = rw
        .remote_timeout
        .map_or(schema::DEFAULT_REMOTE_TIMEOUT, |d| d.0);
    let _ = writeln!(out, "timeout = {}", dur(timeout));
    let per_send = qc
        .max_samples_per_send
        .unwrap_or(schema::DEFAULT_MAX_SAMPLES_PER_SEND);
    let _ = writeln!(out, "max_samples_per_send = {per_send}");
    let min = qc.min_backoff.map_or(schema::DEFAULT_MIN_BACKOFF, |d| d.0);
    let max = qc.max_backoff.map_or(schema::DEFAULT_MAX_BACKOFF, |d| d.0);
    let _ = writeln!(out, "min_backoff = {}", dur(min));
    let _ = writeln!(out, "max_backoff = {}", dur(max));
    if rw.send_exemplars {
        let _ = writeln!(out, "send_exemplars = true");
    }
    let mc = &rw.metadata_config;
    if mc.send.unwrap_or(true) {
        let _ = writeln!(
            out,
            "metadata = {{ send = true, send_interval = {}, max_samples_per_send = {} }}",
            dur(mc
                .send_interval
                .map_or(schema::DEFAULT_METADATA_SEND_INTERVAL, |d| d.0)),
            mc.max_samples_per_send
                .unwrap_or(schema::DEFAULT_METADATA_PER_SEND)
        );
    }
    if !rw.headers.is_empty() {
        let _ = writeln!(out, "headers = {}", inline(&rw.headers));
    }
    client_keys(
        out,
        rw.basic_auth.as_ref(),
        rw.authorization.as_ref(),
        rw.bearer_token_file.as_deref(),
        rw.tls_config.as_ref(),
        base,
    );
    relabel(
        out,
        "export.write_relabel_configs",
        &rw.write_relabel_configs,
    );
    if rw.protobuf_message.as_deref() == Some(super::keys::PROTOBUF_V2) {
        // A receiver that refuses 2.0 gets 1.0 (the exporter falls back on a 415).
        let _ = writeln!(out, "[export.config]\nprotocol = \"2.0\"");
    }
}

/// The TOML text. `times[i]` are the checked interval and timeout of job `i`; `external` the
/// expanded external labels. Relative file paths are taken from `base` when it is given.
pub(crate) fn toml(
    c: &PromConfig,
    times: &[(Duration, Duration)],
    external: &BTreeMap<String, String>,
    base: Option<&Path>,
) -> String {
    let mut out = String::new();
    if !external.is_empty() {
        let _ = writeln!(out, "[collector]\nexternal_labels = {}", inline(external));
    }
    for (j, t) in c.scrape_configs.iter().zip(times) {
        scrape(&mut out, j, *t, base);
    }
    for rw in &c.remote_write {
        export(&mut out, rw, base);
    }
    out
}
