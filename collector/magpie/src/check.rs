//! Turning a configuration into loaded plugins: what `magpie check` reports and what
//! `magpie run` starts from. Every plugin is found, loaded (contract checked) and initialised
//! with its configuration table, so a plugin that rejects its config fails the check too.
//! Each plugin file is read once, checked against the `[trust]` policy (its signature) and
//! those same bytes loaded.

use crate::config::{ConfigError, Loaded};
use crate::trust::Policy;
use magpie_host::{Grants, Host, InstanceSpec, Limits, Plugin};
use magpie_sdk::abi::Role;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// Budget of one export or outcome call.
pub const EXPORT_LIMITS_WALL: Duration = Duration::from_secs(10);

/// A scrape job ready to run.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// Its index in the configuration.
    pub index: usize,
    /// The loaded plugin.
    pub plugin: Plugin,
    /// How to instantiate it.
    pub spec: InstanceSpec,
}

/// An exporter ready to run.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    /// Its index in the configuration.
    pub index: usize,
    /// The loaded plugin.
    pub plugin: Plugin,
    /// How to instantiate it.
    pub spec: InstanceSpec,
}

/// One decoder of an ingest source, ready to run.
#[derive(Debug, Clone)]
pub struct DecoderPlan {
    /// `mqtt`, `pushgateway`, `remote_write`, `influx` or `otlp`.
    pub route: &'static str,
    /// The loaded plugin.
    pub plugin: Plugin,
    /// How to instantiate it.
    pub spec: InstanceSpec,
}

/// An ingest source ready to run.
#[derive(Debug, Clone)]
pub struct IngestPlan {
    /// Its index in the configuration.
    pub index: usize,
    /// Its decoders.
    pub decoders: Vec<DecoderPlan>,
}

/// Everything a run needs besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One per `[[scrape]]`, in order.
    pub jobs: Vec<JobPlan>,
    /// One per `[[export]]`, in order.
    pub exports: Vec<ExportPlan>,
    /// One per `[[ingest]]`, in order.
    pub ingest: Vec<IngestPlan>,
}

struct Loader<'a> {
    host: &'a Host,
    loaded: &'a Loaded,
    policy: Policy,
    cache: HashMap<String, Result<Plugin, String>>,
}

impl Loader<'_> {
    async fn plugin(
        &mut self,
        name: &Spanned<String>,
        role: Role,
        owner: &str,
    ) -> Result<Plugin, ConfigError> {
        let at = name.span().start;
        let n = name.get_ref();
        if n.is_empty() || n.contains('/') || n.starts_with('.') {
            return Err(self
                .loaded
                .error_at(at, format!("plugin: `{n}` is not a plugin name")));
        }
        if !self.cache.contains_key(n) {
            let dir = self.loaded.config.collector.plugin_dir();
            let policy = &self.policy;
            let r = self
                .host
                .load_from_dir_checked(&dir, n, |path, bytes| policy.check(path, bytes))
                .await
                .map_err(|e| e.to_string());
            self.cache.insert(n.clone(), r);
        }
        let plugin = match &self.cache[n] {
            Ok(p) => p.clone(),
            Err(e) => return Err(self.loaded.error_at(at, format!("plugin: {owner}: {e}"))),
        };
        if plugin.info().role != role {
            return Err(self.loaded.error_at(
                at,
                format!(
                    "plugin: {owner}: `{n}` is a {}, not a {role}",
                    plugin.info().role
                ),
            ));
        }
        Ok(plugin)
    }
}

/// Loads and initialises every plugin of the configuration.
///
/// # Errors
/// Every problem found, each at a place in the file.
pub async fn prepare(loaded: &Loaded, host: &Host) -> Result<Plan, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let trust = &loaded.config.trust;
    let mut policy = Policy {
        keys: Vec::new(),
        require_signed: trust.require_signed_plugins,
    };
    for k in &trust.keys {
        match crate::trust::read_public(k.get_ref()) {
            Ok(key) => policy.keys.push(key),
            Err(e) => errors.push(loaded.error_at(k.span().start, format!("trust: {e}"))),
        }
    }
    let mut loader = Loader {
        host,
        loaded,
        policy,
        cache: HashMap::new(),
    };
    let mut plan = Plan::default();
    for (index, s) in loaded.config.scrape.iter().enumerate() {
        let at = s.span().start;
        let s = s.get_ref();
        let owner = format!("scrape job `{}`", s.job.get_ref());
        let plugin = match loader.plugin(&s.plugin, Role::Scraper, &owner).await {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let grants = match Grants::new(s.targets.clone(), &s.file_grants()) {
            Ok(g) => g,
            Err(e) => {
                errors.push(loaded.error_at(at, format!("{owner}: {e}")));
                continue;
            }
        };
        // Secrets and TLS files are read now, so a typo fails `check`, not the first scrape.
        if s.tls.is_some()
            && let Err(e) = magpie_transport::client_config(&s.tls_options())
        {
            errors.push(loaded.error_at(at, format!("{owner}: tls: {e}")));
        }
        if let Err(e) = s.auth() {
            errors.push(loaded.error_at(at, format!("{owner}: {e}")));
        }
        let spec = InstanceSpec {
            name: s.job.get_ref().clone(),
            config: s.plugin_config(),
            grants: Arc::new(grants),
            limits: Limits {
                memory_bytes: s.memory_limit.0,
                cpu: s.cpu_limit.0,
                wall: s.timeout(),
            },
        };
        match host.instantiate(&plugin, &spec).await {
            Ok(_) => plan.jobs.push(JobPlan {
                index,
                plugin,
                spec,
            }),
            Err(e) => errors.push(loaded.error_at(at, format!("{owner}: {e}"))),
        }
    }
    for (index, e) in loaded.config.export.iter().enumerate() {
        let at = e.span().start;
        let e = e.get_ref();
        let owner = format!("exporter `{}`", e.name.get_ref());
        let plugin = match loader.plugin(&e.plugin, Role::Exporter, &owner).await {
            Ok(p) => p,
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        // Secrets and TLS files are read now, so a typo fails `check`, not the first send.
        if e.tls.is_some()
            && let Err(err) =
                magpie_transport::client_config(&crate::config::Tls::options(e.tls.as_ref()))
        {
            errors.push(loaded.error_at(at, format!("{owner}: {err}")));
        }
        if let Err(err) = e.request_headers() {
            errors.push(loaded.error_at(at, format!("{owner}: {err}")));
        }
        let spec = InstanceSpec {
            name: e.name.get_ref().clone(),
            config: e.plugin_config(),
            grants: Arc::default(),
            limits: Limits {
                memory_bytes: e.memory_limit.0,
                cpu: e.cpu_limit.0,
                wall: EXPORT_LIMITS_WALL,
            },
        };
        match host.instantiate(&plugin, &spec).await {
            Ok(_) => plan.exports.push(ExportPlan {
                index,
                plugin,
                spec,
            }),
            Err(err) => errors.push(loaded.error_at(at, format!("{owner}: {err}"))),
        }
    }
    let mut names = std::collections::HashSet::new();
    let plugin_dir = loaded.config.collector.plugin_dir();
    for (index, i) in loaded.config.ingest.iter().enumerate() {
        let at = i.span().start;
        let i = i.get_ref();
        let owner = format!("ingest `{}`", i.name.get_ref());
        let problems = i.problems();
        if !names.insert(i.name.get_ref().clone()) {
            errors.push(loaded.error_at(at, format!("{owner} is defined twice")));
        }
        if !problems.is_empty() {
            errors.extend(problems.into_iter().map(|p| loaded.error_at(at, p)));
            continue;
        }
        if let Some(b) = &i.basic_auth
            && let Err(e) = magpie_transport::Auth::basic(&b.username, &b.password_file)
        {
            errors.push(loaded.error_at(at, format!("{owner}: basic_auth: {e}")));
        }
        if let Some(f) = &i.bearer_token_file
            && let Err(e) = magpie_transport::Auth::bearer(f)
        {
            errors.push(loaded.error_at(at, format!("{owner}: bearer_token_file: {e}")));
        }
        let mut decoders = Vec::new();
        for (route, name) in i.decoder_plugins() {
            if i.optional_decoder(route) && !installed(&plugin_dir, name.get_ref()) {
                continue;
            }
            let plugin = match loader.plugin(&name, Role::Decoder, &owner).await {
                Ok(p) => p,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let spec = InstanceSpec {
                name: i.name.get_ref().clone(),
                config: i.plugin_config(),
                grants: Arc::default(),
                limits: Limits {
                    memory_bytes: i.memory_limit.0,
                    cpu: i.cpu_limit.0,
                    wall: EXPORT_LIMITS_WALL,
                },
            };
            match host.instantiate(&plugin, &spec).await {
                Ok(_) => decoders.push(DecoderPlan {
                    route,
                    plugin,
                    spec,
                }),
                Err(err) => errors.push(loaded.error_at(at, format!("{owner}: {err}"))),
            }
        }
        plan.ingest.push(IngestPlan { index, decoders });
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// Whether `dir` holds plugin `name` (compiled or not).
fn installed(dir: &std::path::Path, name: &str) -> bool {
    ["cwasm", "wasm"]
        .iter()
        .any(|ext| dir.join(format!("{name}.{ext}")).is_file())
}
