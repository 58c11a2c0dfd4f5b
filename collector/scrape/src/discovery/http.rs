//! HTTP service discovery with Prometheus' `http_sd_configs` semantics: an endpoint answers
//! a GET with a JSON list of target groups, the same shape as a `file_sd` JSON file.
//!
//! ```toml
//! [[scrape.http_sd_configs]]
//! url = "https://inventory.example/targets"
//! refresh_interval = "1m"                   # default 60s
//! basic_auth = { username = "magpie", password_file = "/etc/magpie/sd.pass" }
//! # or: authorization = { credentials_file = "/etc/magpie/sd.token" }   (type Bearer)
//! tls_config = { ca_file = "/etc/magpie/ca.pem" }  # also cert_file, key_file
//! ```
//!
//! As in Prometheus: the request carries `Accept: application/json` and
//! `X-Prometheus-Refresh-Interval-Seconds`; only a `200` whose `Content-Type` is
//! `application/json` (optionally with `charset=utf-8`) is accepted; a `null` group is an
//! error; each group gets `__meta_url` (the endpoint) and the source `<url>:<index>`; the
//! request may take at most the refresh interval. TLS certificates are always verified.
//!
//! A failed refresh (connection, status, content type, JSON, a bad group) keeps the groups
//! of the last good answer and is reported on every refresh while it lasts, naming the URL.
//! Groups are compared after parsing, so an unchanged answer is not a change.

use super::TargetGroup;
use super::parse::{RawGroup, check};
use crate::units::Dur;
use magpie_transport::{Auth, HttpClient, TlsOptions, redact_url, url_has_credentials};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// How often the endpoint is asked when the configuration does not say.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// The label naming the endpoint a group came from.
pub const URL_LABEL: &str = "__meta_url";
/// The largest answer read.
const BODY_LIMIT: u64 = 16 << 20;

/// `http_sd_configs`: an endpoint listing target groups.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    /// The endpoint, `http://` or `https://`.
    pub url: String,
    /// How often the endpoint is asked. Default 60s.
    #[serde(default)]
    pub refresh_interval: Option<Dur>,
    /// HTTP basic auth; the password is read from a file.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// An `Authorization` header; the credentials are read from a file.
    #[serde(default)]
    pub authorization: Option<Authorization>,
    /// CA and client certificate files.
    #[serde(default)]
    pub tls_config: Option<TlsConfig>,
}

/// Prometheus' `basic_auth`, with the password only from a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The file holding the password.
    pub password_file: PathBuf,
}

/// Prometheus' `authorization`, with the credentials only from a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme; only `Bearer` (the default) is supported.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The file holding the token.
    pub credentials_file: PathBuf,
}

/// Prometheus' `tls_config`: which CA to trust and which client certificate to present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificates to trust instead of the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

impl HttpSdConfig {
    /// The refresh interval in effect.
    #[must_use]
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
            .map_or(DEFAULT_REFRESH_INTERVAL, |d| d.0)
    }

    /// Checks the settings (files are read when discovery starts).
    ///
    /// # Errors
    /// Every problem found, each naming the key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        let shown = redact_url(&self.url);
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            errors.push(format!("url: `{shown}` is not an http:// or https:// URL"));
        }
        if url_has_credentials(&self.url) {
            errors.push(format!(
                "url: `{shown}`: credentials do not belong in the URL; use basic_auth with a password_file"
            ));
        }
        if self.refresh_interval.is_some_and(|d| d.0.is_zero()) {
            errors.push("refresh_interval: must be longer than 0s".into());
        }
        if self.basic_auth.is_some() && self.authorization.is_some() {
            errors.push("basic_auth and authorization cannot both be set".into());
        }
        if let Some(kind) = self.authorization.as_ref().and_then(|a| a.kind.as_deref())
            && kind != "Bearer"
        {
            errors.push(format!(
                "authorization: type `{kind}` is not supported (only Bearer)"
            ));
        }
        if let Some(t) = &self.tls_config
            && t.cert_file.is_some() != t.key_file.is_some()
        {
            errors.push("tls_config: cert_file and key_file go together".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Discovery from one HTTP endpoint; see the module documentation.
#[derive(Debug)]
pub struct HttpSd {
    url: String,
    interval: Duration,
    client: HttpClient,
    auth: Auth,
    groups: Vec<TargetGroup>,
    /// The groups changed since a caller last got them from `refresh`.
    pending: bool,
}

impl HttpSd {
    /// Discovery for `config`; reads the credential files and sets up TLS.
    ///
    /// # Errors
    /// What [`HttpSdConfig::validate`] finds, unreadable credential or certificate files.
    pub fn new(config: &HttpSdConfig) -> Result<Self, Vec<String>> {
        config.validate()?;
        let tls = config
            .tls_config
            .as_ref()
            .map_or_else(TlsOptions::default, |t| TlsOptions {
                ca_file: t.ca_file.clone(),
                cert_file: t.cert_file.clone(),
                key_file: t.key_file.clone(),
                server_name: None,
            });
        let client = HttpClient::new(&tls).map_err(|e| vec![format!("tls_config: {e}")])?;
        let auth = match (&config.basic_auth, &config.authorization) {
            (Some(b), _) => Auth::basic(&b.username, &b.password_file)
                .map_err(|e| vec![format!("basic_auth: {e}")])?,
            (None, Some(a)) => Auth::bearer(&a.credentials_file)
                .map_err(|e| vec![format!("authorization: {e}")])?,
            (None, None) => Auth::None,
        };
        Ok(Self {
            url: config.url.clone(),
            interval: config.refresh_interval(),
            client,
            auth,
            groups: Vec::new(),
            pending: true,
        })
    }

    /// Asks the endpoint. Returns every group when they changed since the last `Ok(Some(_))`,
    /// `Ok(None)` when they did not.
    ///
    /// # Errors
    /// Why this answer was not taken; the groups of the last good one stay.
    pub async fn refresh(&mut self) -> Result<Option<Vec<TargetGroup>>, Vec<String>> {
        let shown = redact_url(&self.url).into_owned();
        let groups = self
            .fetch()
            .await
            .map_err(|e| vec![format!("{shown}: {e}")])?;
        if groups != self.groups {
            self.groups = groups;
            self.pending = true;
        }
        Ok(std::mem::take(&mut self.pending).then(|| self.groups.clone()))
    }

    /// The groups of the last good answer.
    #[must_use]
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.groups.clone()
    }

    /// Time between refreshes.
    #[must_use]
    pub const fn refresh_interval(&self) -> Duration {
        self.interval
    }

    async fn fetch(&self) -> Result<Vec<TargetGroup>, String> {
        let mut headers = vec![
            ("accept".to_string(), "application/json".to_string()),
            (
                "x-prometheus-refresh-interval-seconds".to_string(),
                format_seconds(self.interval),
            ),
        ];
        headers.extend(self.auth.header());
        let read = async {
            let mut resp = self
                .client
                .get(&self.url, &headers, self.interval, BODY_LIMIT)
                .await
                .map_err(|e| e.to_string())?;
            if resp.status != 200 {
                return Err(format!("server returned HTTP status {}", resp.status));
            }
            if !is_json(&resp.content_type) {
                return Err(format!(
                    "unsupported content type \"{}\"",
                    resp.content_type
                ));
            }
            let mut body = Vec::new();
            let mut buf = vec![0; 16 << 10];
            loop {
                let n = resp.body.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            Ok(body)
        };
        let body = tokio::time::timeout(self.interval, read)
            .await
            .map_err(|_| format!("no complete answer within {:?}", self.interval))??;
        parse(&self.url, &body)
    }
}

/// Go's `strconv.FormatFloat(seconds, 'f', -1, 64)` for whole milliseconds.
fn format_seconds(d: Duration) -> String {
    let ms = d.as_millis();
    let mut s = format!("{}.{:03}", ms / 1000, ms % 1000);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s
}

/// Prometheus' `^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`, after trimming.
fn is_json(content_type: &str) -> bool {
    let t = content_type.trim().to_ascii_lowercase();
    let Some(rest) = t.strip_prefix("application/json") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    rest.strip_prefix(';')
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("charset="))
        .is_some_and(|c| c == "utf-8" || c == "\"utf-8\"")
}

/// The groups of one answer; any bad group makes the whole answer bad.
fn parse(url: &str, body: &[u8]) -> Result<Vec<TargetGroup>, String> {
    let raw: Vec<Option<RawGroup>> = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not target groups: {e}"))?;
    raw.into_iter()
        .enumerate()
        .map(|(i, g)| {
            let g = g.ok_or_else(|| format!("group {i}: nil target group item found"))?;
            check(&g).map_err(|e| format!("group {i}: {e}"))?;
            let mut labels = g.labels;
            labels.insert(URL_LABEL.into(), url.into());
            Ok(TargetGroup {
                targets: g.targets,
                labels,
                source: format!("{url}:{i}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            " Application/JSON ",
            "application/json; charset=utf-8",
            "application/json;charset=\"utf-8\"",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/json; charset=latin1",
            "application/jsonx",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn answers() {
        let g = parse(
            "http://sd/x",
            br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": []}]"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].targets, ["a:1", "b:2"]);
        assert_eq!(
            g[0].labels.get(URL_LABEL).map(String::as_str),
            Some("http://sd/x")
        );
        assert_eq!(g[0].labels.get("env").map(String::as_str), Some("prod"));
        assert_eq!(g[1].source, "http://sd/x:1");
        let err = |body: &[u8]| parse("u", body).err().unwrap_or_default();
        assert!(err(b"[null]").contains("group 0: nil target group"));
        assert!(err(b"{}").contains("not target groups"));
        assert!(err(br#"[{"targets": ["http://a:1/x"]}]"#).contains("not a host:port"));
        assert!(err(br#"[{"targets": ["a:1"], "labels": {"a-b": "x"}}]"#).contains("`a-b`"));
        assert!(err(br#"[{"targets": ["a:1"], "extra": 1}]"#).contains("unknown field"));
    }

    #[test]
    fn refresh_interval_header() {
        assert_eq!(format_seconds(Duration::from_secs(60)), "60");
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.5");
    }

    #[test]
    fn settings() {
        let c: HttpSdConfig = toml::from_str("url = \"ftp://x\"\nrefresh_interval = \"0s\"\nbasic_auth = { username = \"u\", password_file = \"/p\" }\nauthorization = { type = \"Basic\", credentials_file = \"/c\" }").unwrap_or_else(|e| panic!("{e}"));
        let errors = c.validate().err().unwrap_or_default();
        assert_eq!(errors.len(), 4, "{errors:?}");
        let c: HttpSdConfig =
            toml::from_str("url = \"http://sd/x\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.refresh_interval(), DEFAULT_REFRESH_INTERVAL);
        assert!(
            toml::from_str::<HttpSdConfig>(
                "url = \"http://x\"\nbasic_auth = { username = \"u\", password = \"p\" }"
            )
            .is_err()
        );
    }
}
