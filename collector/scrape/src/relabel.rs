//! Metric relabeling with Prometheus' `metric_relabel_configs` semantics, so rules written for
//! Prometheus work unchanged:
//!
//! ```toml
//! [[scrape.metric_relabel_configs]]
//! source_labels = ["__name__"]
//! regex = "go_.*"
//! action = "drop"
//!
//! [[scrape.metric_relabel_configs]]
//! source_labels = ["instance"]
//! regex = "([^:]+):\\d+"
//! target_label = "host"   # replacement defaults to "$1", action to "replace"
//! ```
//!
//! Rules ([`RelabelConfig`]) are checked and compiled once by [`compile`] into a
//! [`Relabeler`]; [`Relabeler::apply`] runs them in order on one sample's label set.
//!
//! # Semantics
//! - Defaults as Prometheus: `separator = ";"`, `regex = "(.*)"`, `replacement = "$1"`,
//!   `action = "replace"`. Actions: `replace`, `keep`, `drop`, `keepequal`, `dropequal`,
//!   `hashmod`, `labelmap`, `labeldrop`, `labelkeep`, `lowercase`, `uppercase`; action names
//!   are case-insensitive.
//! - The value of a rule is its `source_labels`' values (missing ones are empty) joined with
//!   `separator`. The regex must match all of it (`^(?s:regex)$`); `.` matches a newline.
//! - `target_label` and `replacement` are expanded as Go's `Regexp.Expand` (`$1`, `${1}`,
//!   `$name`, `${name}`, `$$`; see the `template` module).
//! - Label names follow Prometheus' legacy rules, `[a-zA-Z_][a-zA-Z0-9_]*`, which every
//!   remote-write receiver accepts: names outside them are refused when rules are loaded, and a
//!   `replace` whose expanded `target_label` is not a valid name is skipped, as Prometheus does.
//!   A `labelmap` result that is not a valid name is skipped too (Prometheus would keep it).
//! - Setting a label to the empty string deletes it.
//!
//! # Cost
//! A sample with no rules costs one branch. A rule that does not match allocates nothing: a
//! single source label is borrowed rather than copied, several are joined in a per-thread
//! buffer (bounded: a buffer grown past 4 KiB is released), and the regex engine is asked a
//! yes/no question before any group positions are allocated. The shapes most rules use (the
//! default `(.*)`, plain text, `a|b`, `prefix.*`, `prefix(.+)`, `.*suffix`) are string
//! comparisons that never reach the engine. Allocation happens only for what a rule writes.
//! Nothing is cached between samples.

mod apply;
mod matcher;
mod md5;
mod template;
#[cfg(test)]
mod tests;

use matcher::Matcher;
use serde::{Deserialize, Deserializer};
use std::fmt;
use template::Template;

/// The separator Prometheus joins source label values with.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The regex Prometheus uses when a rule gives none.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The replacement Prometheus uses when a rule gives none.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabeling rule, as Prometheus' `relabel_config` (same keys, same defaults).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values, joined with `separator`, make the value the rule works on.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Put between source label values. Default `;`.
    #[serde(default = "RelabelConfig::default_separator")]
    pub separator: String,
    /// The label `replace`, `hashmod`, `lowercase` and `uppercase` write, and `keepequal` and
    /// `dropequal` compare with. `replace` may use `$1`-style references in it.
    #[serde(default)]
    pub target_label: String,
    /// RE2-style regex the value must match in full. Default `(.*)`.
    #[serde(default = "RelabelConfig::default_regex")]
    pub regex: String,
    /// Divisor of `hashmod`.
    #[serde(default)]
    pub modulus: u64,
    /// What `replace` writes and the label name `labelmap` makes, with `$1`-style references.
    /// Default `$1`.
    #[serde(default = "RelabelConfig::default_replacement")]
    pub replacement: String,
    /// What the rule does. Default `replace`.
    #[serde(default)]
    pub action: Action,
}

impl RelabelConfig {
    fn default_separator() -> String {
        DEFAULT_SEPARATOR.into()
    }

    fn default_regex() -> String {
        DEFAULT_REGEX.into()
    }

    fn default_replacement() -> String {
        DEFAULT_REPLACEMENT.into()
    }
}

impl Default for RelabelConfig {
    fn default() -> Self {
        Self {
            source_labels: Vec::new(),
            separator: Self::default_separator(),
            target_label: String::new(),
            regex: Self::default_regex(),
            modulus: 0,
            replacement: Self::default_replacement(),
            action: Action::default(),
        }
    }
}

/// What a rule does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    /// If the regex matches the value, set `target_label` to `replacement`, both expanded.
    #[default]
    Replace,
    /// Drop the sample unless the regex matches the value.
    Keep,
    /// Drop the sample if the regex matches the value.
    Drop,
    /// Drop the sample unless the value equals `target_label`'s value.
    KeepEqual,
    /// Drop the sample if the value equals `target_label`'s value.
    DropEqual,
    /// Set `target_label` to `md5(value) mod modulus` (the digest's last 8 bytes, big-endian).
    HashMod,
    /// For each label whose name matches the regex, copy its value to the label named by
    /// `replacement` expanded against the name.
    LabelMap,
    /// Remove the labels whose names match the regex.
    LabelDrop,
    /// Remove the labels whose names do not match the regex.
    LabelKeep,
    /// Set `target_label` to the value in lower case.
    Lowercase,
    /// Set `target_label` to the value in upper case.
    Uppercase,
}

impl Action {
    const ALL: [Self; 11] = [
        Self::Replace,
        Self::Keep,
        Self::Drop,
        Self::KeepEqual,
        Self::DropEqual,
        Self::HashMod,
        Self::LabelMap,
        Self::LabelDrop,
        Self::LabelKeep,
        Self::Lowercase,
        Self::Uppercase,
    ];

    /// The name used in configuration files.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Keep => "keep",
            Self::Drop => "drop",
            Self::KeepEqual => "keepequal",
            Self::DropEqual => "dropequal",
            Self::HashMod => "hashmod",
            Self::LabelMap => "labelmap",
            Self::LabelDrop => "labeldrop",
            Self::LabelKeep => "labelkeep",
            Self::Lowercase => "lowercase",
            Self::Uppercase => "uppercase",
        }
    }

    /// Parses a name, ignoring case as Prometheus does.
    ///
    /// # Errors
    /// A message listing the actions.
    pub fn parse(name: &str) -> Result<Self, String> {
        let lower = name.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| {
                let all: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
                format!(
                    "unknown relabel action `{name}` (expected one of {})",
                    all.join(", ")
                )
            })
    }

    /// Actions that write or compare with `target_label`.
    const fn needs_target(self) -> bool {
        matches!(
            self,
            Self::Replace
                | Self::HashMod
                | Self::Lowercase
                | Self::Uppercase
                | Self::KeepEqual
                | Self::DropEqual
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Compiled rules, ready to run on samples. Cheap to share between threads (`Send + Sync`).
#[derive(Debug, Clone, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    action: Action,
    sources: Vec<String>,
    separator: String,
    target: String,
    matcher: Matcher,
    modulus: u64,
    /// `target_label` parsed as a template (`replace` only).
    target_template: Template,
    /// A `replace` whose target always expands to an invalid name (such as `${3}` with two
    /// groups) never writes; Prometheus skips it at run time, this decides it once.
    inert: bool,
    /// `replacement` parsed as a template (`replace` and `labelmap`).
    replacement: Template,
}

/// Checks and compiles rules, in order.
///
/// # Errors
/// The first invalid rule, as `relabel rule #N (action A): problem`, numbered from 1.
pub fn compile(configs: &[RelabelConfig]) -> Result<Relabeler, String> {
    let rules = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            compile_rule(c)
                .map_err(|e| format!("relabel rule #{} (action {}): {e}", i + 1, c.action))
        })
        .collect::<Result<_, _>>()?;
    Ok(Relabeler { rules })
}

fn compile_rule(c: &RelabelConfig) -> Result<Rule, String> {
    let a = c.action;
    if a == Action::HashMod && c.modulus == 0 {
        return Err("`modulus` must be greater than 0".into());
    }
    if a.needs_target() && c.target_label.is_empty() {
        return Err("`target_label` is required".into());
    }
    if let Some(bad) = c.source_labels.iter().find(|n| !is_label_name(n)) {
        return Err(format!("source_labels: `{bad}` is not a valid label name"));
    }
    match a {
        Action::Replace if !is_label_name_template(&c.target_label) => {
            return Err(format!(
                "target_label: `{}` is not a valid label name (references such as `${{1}}` allowed)",
                c.target_label
            ));
        }
        Action::HashMod
        | Action::Lowercase
        | Action::Uppercase
        | Action::KeepEqual
        | Action::DropEqual
            if !is_label_name(&c.target_label) =>
        {
            return Err(format!(
                "target_label: `{}` is not a valid label name",
                c.target_label
            ));
        }
        Action::LabelMap if !is_label_name_template(&c.replacement) => {
            return Err(format!(
                "replacement: `{}` is not a valid label name (references such as `${{1}}` allowed)",
                c.replacement
            ));
        }
        _ => {}
    }
    let defaults = RelabelConfig::default();
    let only = |fields: &[(&str, bool)], allowed: &str| match fields.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(format!(
            "`{name}` cannot be set; this action takes only {allowed}"
        )),
        None => Ok(()),
    };
    match a {
        Action::Lowercase | Action::Uppercase => only(
            &[("replacement", c.replacement != defaults.replacement)],
            "`source_labels`, `separator`, `regex` and `target_label`",
        )?,
        Action::KeepEqual | Action::DropEqual => only(
            &[
                ("regex", c.regex != defaults.regex),
                ("modulus", c.modulus != defaults.modulus),
                ("separator", c.separator != defaults.separator),
                ("replacement", c.replacement != defaults.replacement),
            ],
            "`source_labels` and `target_label`",
        )?,
        Action::LabelDrop | Action::LabelKeep => only(
            &[
                ("source_labels", !c.source_labels.is_empty()),
                ("target_label", c.target_label != defaults.target_label),
                ("modulus", c.modulus != defaults.modulus),
                ("separator", c.separator != defaults.separator),
                ("replacement", c.replacement != defaults.replacement),
            ],
            "`regex`",
        )?,
        _ => {}
    }
    let matcher = Matcher::new(&c.regex)?;
    let template = |t: &str| Template::parse(t, matcher.groups(), matcher.names());
    let target_template = template(if a == Action::Replace {
        &c.target_label
    } else {
        ""
    });
    let inert = a == Action::Replace
        && target_template
            .constant()
            .is_some_and(|t| !is_label_name(t));
    Ok(Rule {
        action: a,
        sources: c.source_labels.clone(),
        separator: c.separator.clone(),
        target: c.target_label.clone(),
        modulus: c.modulus,
        target_template,
        inert,
        replacement: template(match a {
            Action::Replace | Action::LabelMap => &c.replacement,
            _ => "",
        }),
        matcher,
    })
}

/// Prometheus' legacy label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
#[must_use]
pub fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A label name that may contain references, as Prometheus checks `target_label` with
/// `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: word characters and `$ref`/`${ref}`, not
/// starting with a digit.
fn is_label_name_template(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = s.as_bytes();
    if b.first().is_none_or(u8::is_ascii_digit) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            i += 1;
            let braced = b.get(i) == Some(&b'{');
            if braced {
                i += 1;
            }
            let start = i;
            while b.get(i).copied().is_some_and(word) {
                i += 1;
            }
            if i == start || (braced && b.get(i) != Some(&b'}')) {
                return false;
            }
            if braced {
                i += 1;
            }
        } else if word(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}
