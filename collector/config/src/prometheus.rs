//! Reading an unchanged `prometheus.yml`, so that users of the Prometheus agent (or vmagent)
//! can switch with `magpie run --config prometheus.yml`, or keep the file and put magpie's own
//! settings beside it with `prometheus_config = "…"` under `[collector]`.
//!
//! A `prometheus.yml` is converted to magpie's TOML ([`convert`]) and that text is loaded as
//! any magpie configuration, so `magpie config convert` prints exactly what runs. Conversion
//! is in three steps:
//! 1. every key of the file is checked (`keys.rs`): a key magpie does not implement, or that
//!    agent mode refuses (`rule_files`, `alerting`, `remote_read`), is an error naming the key,
//!    its line and what to do; all such keys are reported at once. Lines come from `locate.rs`.
//! 2. the file is read into typed settings with Prometheus 2.42's defaults (`schema.rs`);
//!    errors there carry serde_norway's line and column.
//! 3. the settings are written as TOML (`render.rs`).
//!
//! Environment variables are expanded only where Prometheus 2.42 does it, in the values of
//! `global.external_labels` (with `--enable-feature=expand-external-labels`): `$VAR`,
//! `${VAR}`, `$$` for a `$`; an unset variable expands to nothing.

mod keys;
mod locate;
mod render;
mod schema;

/// Why `kubernetes_sd_configs` are refused by a build without Kubernetes discovery.
pub const NO_KUBERNETES: &str = "this build of magpie lacks Kubernetes discovery (it was built without the cargo feature `kubernetes`, as the device build is): list the targets in static_configs, file_sd_configs or http_sd_configs, or use a build with the feature";

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_scrape_client;
#[cfg(test)]
mod tests_sd;

use super::{ConfigError, Loaded};
use locate::Seg;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Whether `file` is a `prometheus.yml` rather than magpie's TOML: by its extension (`.yml`,
/// `.yaml`), else by its first key line (`name:` in YAML, `name =` or `[table]` in TOML).
#[must_use]
pub fn is_prometheus_yaml(file: &Path, text: &str) -> bool {
    match file.extension().and_then(|e| e.to_str()) {
        Some("yml" | "yaml") => true,
        Some("toml") => false,
        _ => text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#') && l != &"---")
            .is_some_and(|l| {
                l.split_once(':').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
            }),
    }
}

fn error(file: &Path, (line, col): (usize, usize), message: String) -> ConfigError {
    ConfigError {
        file: file.into(),
        line,
        col,
        message,
    }
}

/// Expands `$VAR`, `${VAR}` and `$$` as Go's `os.Expand` does for Prometheus.
fn expand_env(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let (name, used) = if let Some(stripped) = after.strip_prefix('{') {
            match stripped.find('}') {
                Some(end) => (&stripped[..end], end + 2),
                None => ("", 0),
            }
        } else if after.starts_with('$') {
            ("$", 1)
        } else {
            let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        match name {
            "" if used == 0 => out.push('$'),
            "$" => out.push('$'),
            "" => {}
            n => out.push_str(&std::env::var(n).unwrap_or_default()),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// The absolute directory of `file`, which relative paths in it are taken from (as Prometheus
/// does).
fn base_of(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new(""));
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(dir)
    }
}

/// Converts a `prometheus.yml` to magpie's TOML. Relative file paths in it (file_sd files,
/// secrets, certificates) are taken from its directory, as Prometheus does, and written out
/// absolute, so the TOML runs the same from anywhere.
///
/// # Errors
/// Every refused key with its line, or the first value that does not parse.
pub fn convert(file: &Path, text: &str) -> Result<String, Vec<ConfigError>> {
    convert_from(file, text, Some(&base_of(file)))
}

fn convert_from(file: &Path, text: &str, base: Option<&Path>) -> Result<String, Vec<ConfigError>> {
    let doc: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        let at = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        vec![error(file, at, format!("not valid YAML: {e}"))]
    })?;
    let refused = keys::check(&doc);
    if !refused.is_empty() {
        return Err(refused
            .into_iter()
            .map(|r| {
                let at = locate::line_col(text, &r.path);
                error(file, at, format!("{}: {}", locate::show(&r.path), r.why))
            })
            .collect());
    }
    let config: schema::PromConfig = if doc.is_null() {
        schema::PromConfig::default()
    } else {
        serde_norway::from_str(text).map_err(|e| {
            let at = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            // The position is shown in front, as for every error.
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_string();
            vec![error(file, at, message)]
        })?
    };
    let mut errs = Vec::new();
    let at = |path: &[Seg]| locate::line_col(text, path);
    let key = |k: &str| Seg::Key(k.into());
    let global = schema::global_times(&config.global).unwrap_or_else(|e| {
        errs.push(error(file, at(&[key("global"), key("scrape_timeout")]), e));
        (
            schema::DEFAULT_SCRAPE_INTERVAL,
            schema::DEFAULT_SCRAPE_TIMEOUT,
        )
    });
    let mut times = Vec::new();
    for (i, j) in config.scrape_configs.iter().enumerate() {
        let here = |k: &str| vec![key("scrape_configs"), Seg::Index(i), key(k)];
        times.push(schema::job_times(j, global).unwrap_or_else(|e| {
            errs.push(error(file, at(&here("scrape_timeout")), e));
            global
        }));
        if let Some(b) = &j.body_size_limit
            && let Err(e) = schema::base2_bytes(b)
        {
            errs.push(error(
                file,
                at(&here("body_size_limit")),
                format!("body_size_limit: {e}"),
            ));
        }
        if let Err(e) = magpie_scrape::relabel::compile(&j.metric_relabel_configs) {
            errs.push(error(
                file,
                at(&here("metric_relabel_configs")),
                format!("metric_relabel_configs: {e}"),
            ));
        }
    }
    for (i, rw) in config.remote_write.iter().enumerate() {
        let here = |k: &str| vec![key("remote_write"), Seg::Index(i), key(k)];
        if let Err(e) = magpie_scrape::relabel::compile(&rw.write_relabel_configs) {
            errs.push(error(
                file,
                at(&here("write_relabel_configs")),
                format!("write_relabel_configs: {e}"),
            ));
        }
        if rw
            .basic_auth
            .as_ref()
            .is_some_and(|b| b.password_file.is_none())
        {
            errs.push(error(
                file,
                at(&here("basic_auth")),
                "basic_auth: magpie needs the password in `password_file`".into(),
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let external: BTreeMap<String, String> = (config.global.external_labels.iter())
        .map(|(k, v)| (k.clone(), expand_env(v)))
        .collect();
    Ok(render::toml(&config, &times, &external, base))
}

/// The name converted TOML is shown under in errors found after conversion.
fn converted_name(file: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{} (as converted by `magpie config convert`)",
        file.display()
    ))
}

/// Loads a `prometheus.yml` as a magpie configuration (the built-in defaults for everything
/// the file does not say: WAL, listen address, plugin directory).
///
/// # Errors
/// Every problem found, each naming file, line and key.
pub fn load(file: &Path, text: &str) -> Result<Loaded, Vec<ConfigError>> {
    let toml = convert(file, text)?;
    let mut loaded = super::parse(&converted_name(file), &toml)?;
    loaded.file = file.into();
    Ok(loaded)
}

/// Adds the jobs, exporters and external labels of `[collector] prometheus_config` to a
/// loaded TOML configuration. The file is taken from the TOML file's directory when relative.
///
/// # Errors
/// The included file's problems, and names or labels it defines that the TOML file defines
/// too.
pub(super) fn include(mut loaded: Loaded) -> Result<Loaded, Vec<ConfigError>> {
    let Some(rel) = loaded.config.collector.prometheus_config.clone() else {
        return Ok(loaded);
    };
    let dir = loaded.file.parent().unwrap_or(Path::new("")).to_path_buf();
    let file = dir.join(rel.get_ref());
    let at = loaded.error_at(rel.span().start, "");
    let fail = |message: String| {
        vec![ConfigError {
            message: format!("collector.prometheus_config: {message}"),
            ..at.clone()
        }]
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| fail(format!("cannot read {}: {e}", file.display())))?;
    let toml = convert(&file, &text)?;
    let prom = super::parse(&converted_name(&file), &toml)?.config;
    let mut errs = Vec::new();
    for (k, v) in prom.collector.external_labels {
        if loaded.config.collector.external_labels.contains_key(&k) {
            errs.push(format!(
                "external label `{k}` is set both here and in {}; keep one",
                file.display()
            ));
        }
        loaded.config.collector.external_labels.insert(k, v);
    }
    for s in &prom.scrape {
        let job = s.get_ref().job.get_ref();
        if loaded
            .config
            .scrape
            .iter()
            .any(|t| t.get_ref().job.get_ref() == job)
        {
            errs.push(format!(
                "job `{job}` is defined both here and in {}",
                file.display()
            ));
        }
    }
    for e in &prom.export {
        let name = e.get_ref().name.get_ref();
        if loaded
            .config
            .export
            .iter()
            .any(|t| t.get_ref().name.get_ref() == name)
        {
            errs.push(format!(
                "exporter `{name}` is defined both here and in {}",
                file.display()
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs.into_iter().flat_map(fail).collect());
    }
    loaded.config.scrape.extend(prom.scrape);
    loaded.config.export.extend(prom.export);
    Ok(loaded)
}
