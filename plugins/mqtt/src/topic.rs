//! Topic templates: `magpie/{site}/{job}` expanded from a series' labels.
//!
//! A `{name}` placeholder takes the value of label `name` (external labels are already merged
//! into each series by the host). Values are made safe for one topic level: `/`, `+`, `#` and
//! NUL become `_`, so a label value can neither add levels nor act as a wildcard; an absent or
//! empty label gives `_`.

use magpie_sdk::abi::{ConfigError, Label};

use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Label(String),
}

/// A parsed topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f == '_' || f.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

impl Template {
    /// Parses `template`; `key` names the config key in errors.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty template, a wildcard, an unclosed or empty placeholder,
    /// or a placeholder that is not a label name.
    pub fn parse(key: &str, template: &str) -> Result<Self, Error> {
        let err = |reason: String| Error::Config(ConfigError::new(key, reason));
        if template.is_empty() {
            return Err(err("the topic is empty".into()));
        }
        if template.contains(['+', '#', '\0']) {
            return Err(err(format!(
                "`{template}`: a topic to publish to cannot hold the wildcards + or #"
            )));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].into()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| err(format!("`{template}`: unclosed `{{`")))?;
            let name = &after[..close];
            if !is_label_name(name) {
                return Err(err(format!(
                    "`{template}`: `{{{name}}}` is not a label name placeholder"
                )));
            }
            parts.push(Part::Label(name.into()));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(err(format!("`{template}`: `}}` without `{{`")));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.into()));
        }
        Ok(Self { parts })
    }

    /// Whether the template has no placeholder.
    #[must_use]
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The topic for a series with these labels, written into `out` (cleared first).
    pub fn expand_into(&self, labels: &[Label<'_>], out: &mut String) {
        out.clear();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Label(name) => {
                    let value = labels
                        .iter()
                        .find(|l| l.name == name.as_str())
                        .map_or("", |l| &*l.value);
                    if value.is_empty() {
                        out.push('_');
                    }
                    out.extend(value.chars().map(|c| match c {
                        '/' | '+' | '#' | '\0' => '_',
                        c => c,
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str, labels: &[(&str, &str)]) -> String {
        let labels: Vec<Label<'_>> = labels.iter().map(|(n, v)| Label::new(n, v)).collect();
        let mut out = String::new();
        Template::parse("topic", t)
            .unwrap()
            .expand_into(&labels, &mut out);
        out
    }

    #[test]
    fn placeholders_take_label_values() {
        assert_eq!(
            expand("magpie/{site}/{job}", &[("job", "node"), ("site", "pi-07")]),
            "magpie/pi-07/node"
        );
        assert_eq!(expand("fixed/topic", &[("job", "x")]), "fixed/topic");
        assert_eq!(expand("{job}", &[("job", "x")]), "x");
        assert_eq!(expand("a{job}b", &[("job", "x")]), "axb");
    }

    #[test]
    fn values_stay_within_one_level() {
        assert_eq!(expand("m/{job}", &[("job", "a/b+c#d")]), "m/a_b_c_d");
        assert_eq!(expand("m/{job}/x", &[]), "m/_/x");
        assert_eq!(expand("m/{job}", &[("job", "")]), "m/_");
    }

    #[test]
    fn bad_templates_are_refused() {
        for t in [
            "", "a/+", "a/#", "a/{job", "a/{}", "a/{1x}", "a/job}", "a/{j-b}",
        ] {
            let e = Template::parse("topic", t).unwrap_err();
            assert!(
                matches!(&e, Error::Config(c) if c.key == "topic"),
                "{t}: {e}"
            );
        }
        assert!(Template::parse("topic", "a/b").unwrap().is_fixed());
        assert!(!Template::parse("topic", "a/{b}").unwrap().is_fixed());
    }
}
