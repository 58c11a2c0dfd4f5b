//! A rule's regex, anchored as Prometheus anchors it (`^(?s:…)$`: the whole value must match,
//! and `.` also matches a newline).
//!
//! The engine is `regex-lite`: its `\d`, `\w`, `\s` and `\b` are ASCII-only, as in Go's RE2
//! dialect that Prometheus rules are written for, and it adds about 70 KB to a binary where the
//! `regex` crate adds about 780 KB. It has no Unicode classes (`\pL`) and folds only ASCII case
//! for `(?i)`; patterns it cannot parse are refused when rules are loaded. It is also slower
//! (microseconds rather than tens of nanoseconds per match), so the shapes most rules use are
//! recognised when compiling and never reach it:
//!
//! - `(.*)` (the default) and `.*`: every value;
//! - plain text (`up`), and alternatives of plain text (`Succeeded|Failed`): string equality;
//! - `text.*`, `text(.*)`, `text(.+)` (`go_.*`, `__meta_kubernetes_pod_label_(.+)`): a prefix,
//!   the group being the rest;
//! - `.*text` (`.*_total`): a suffix.

use regex_lite::{CaptureLocations, Regex, RegexBuilder};

/// Most bytes one compiled pattern may take; rules are short, a larger one is a mistake.
const SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// `(.*)` (`groups == 2`) or `.*` (`groups == 1`).
    Any {
        groups: usize,
    },
    /// Plain text, or alternatives of plain text.
    OneOf(Box<[Box<str>]>),
    /// `prefix.*` (`group == None`), `prefix(.*)` (`Some(false)`), `prefix(.+)` (`Some(true)`).
    Prefix {
        prefix: Box<str>,
        group: Option<bool>,
    },
    /// `.*suffix`.
    Suffix(Box<str>),
    Regex(Regex),
}

/// Where a match's groups are.
pub(super) enum Captures {
    /// Group 0 is the whole value; group 1, when `groups == 2`, is `one`.
    Spans {
        groups: usize,
        one: (usize, usize),
    },
    Regex(CaptureLocations),
}

impl Captures {
    /// The text of group `i` in `hay`, if it took part in the match.
    pub(super) fn get<'h>(&self, hay: &'h str, i: usize) -> Option<&'h str> {
        match self {
            Self::Spans { groups, one } => match i {
                0 => Some(hay),
                1 if *groups == 2 => hay.get(one.0..one.1),
                _ => None,
            },
            Self::Regex(locs) => locs.get(i).map(|(s, e)| &hay[s..e]),
        }
    }
}

/// Text without regex metacharacters.
fn is_plain(s: &str) -> bool {
    !s.contains(|c| r"\.+*?()|[]{}^$".contains(c))
}

impl Matcher {
    /// Compiles `pattern` anchored.
    pub(super) fn new(pattern: &str) -> Result<Self, String> {
        Ok(match Self::shortcut(pattern) {
            Some(m) => m,
            None => Self::regex(pattern)?,
        })
    }

    /// `pattern` as one of the shapes that need no engine, if it is one.
    fn shortcut(pattern: &str) -> Option<Self> {
        match pattern {
            "(.*)" => return Some(Self::Any { groups: 2 }),
            ".*" => return Some(Self::Any { groups: 1 }),
            _ => {}
        }
        if pattern.split('|').all(is_plain) {
            return Some(Self::OneOf(pattern.split('|').map(Into::into).collect()));
        }
        for (tail, group) in [(".*", None), ("(.*)", Some(false)), ("(.+)", Some(true))] {
            if let Some(prefix) = pattern.strip_suffix(tail)
                && is_plain(prefix)
            {
                let prefix = prefix.into();
                return Some(Self::Prefix { prefix, group });
            }
        }
        pattern
            .strip_prefix(".*")
            .filter(|s| is_plain(s))
            .map(|s| Self::Suffix(s.into()))
    }

    /// `pattern` compiled by the engine.
    fn regex(pattern: &str) -> Result<Self, String> {
        RegexBuilder::new(&format!("^(?s:{pattern})$"))
            .size_limit(SIZE_LIMIT)
            .build()
            .map(Self::Regex)
            .map_err(|e| format!("invalid regex `{pattern}`: {e}"))
    }

    /// Number of groups, the whole match (group 0) included.
    pub(super) fn groups(&self) -> usize {
        match self {
            Self::Any { groups } => *groups,
            Self::Prefix { group: Some(_), .. } => 2,
            Self::OneOf(_) | Self::Prefix { group: None, .. } | Self::Suffix(_) => 1,
            Self::Regex(r) => r.captures_len(),
        }
    }

    /// The name of each group, in order, `None` for unnamed ones.
    pub(super) fn names(&self) -> impl Iterator<Item = Option<&str>> + Clone {
        let named = match self {
            Self::Regex(r) => Some(r.capture_names()),
            _ => None,
        };
        let unnamed = std::iter::repeat_n(None, if named.is_some() { 0 } else { self.groups() });
        named.into_iter().flatten().chain(unnamed)
    }

    pub(super) fn is_match(&self, value: &str) -> bool {
        match self {
            Self::Regex(r) => r.is_match(value),
            _ => self.captures(value).is_some(),
        }
    }

    /// The groups of a match, or `None` when `value` does not match.
    pub(super) fn captures(&self, value: &str) -> Option<Captures> {
        let whole = |groups, one| Some(Captures::Spans { groups, one });
        let len = value.len();
        match self {
            Self::Any { groups } => whole(*groups, (0, len)),
            Self::OneOf(texts) => texts
                .iter()
                .any(|t| **t == *value)
                .then_some(Captures::Spans {
                    groups: 1,
                    one: (0, 0),
                }),
            Self::Prefix { prefix, group } => {
                let rest = value.strip_prefix(&**prefix)?;
                if *group == Some(true) && rest.is_empty() {
                    return None;
                }
                whole(self.groups(), (prefix.len(), len))
            }
            Self::Suffix(suffix) => value.ends_with(&**suffix).then_some(Captures::Spans {
                groups: 1,
                one: (0, 0),
            }),
            Self::Regex(r) => {
                // Most values do not match most rules: find that out without allocating the
                // group slots, and pay for a second, capturing pass only on a match.
                if !r.is_match(value) {
                    return None;
                }
                let mut locs = r.capture_locations();
                r.captures_read(&mut locs, value)?;
                Some(Captures::Regex(locs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Matcher;

    fn m(p: &str) -> Matcher {
        Matcher::new(p).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn patterns_are_anchored_and_dot_matches_newline() {
        assert!(m("f.*").is_match("foo"));
        assert!(!m("o").is_match("foo"), "a partial match is no match");
        assert!(
            !m("f|o").is_match("foo"),
            "each alternative is anchored too"
        );
        assert!(m("line1.*line2").is_match("line1\nline2"));
        assert!(m("(.*)").is_match("a\nb"));
        assert!(m(".*").is_match(""));
        assert!(m("").is_match(""));
        assert!(!m("").is_match("x"));
    }

    #[test]
    fn common_shapes_skip_the_engine() {
        for p in [
            "(.*)",
            ".*",
            "",
            "go_goroutines",
            "no-match:1",
            "Succeeded|Failed",
            "a|",
            "go_.*",
            "__meta_kubernetes_pod_label_(.+)",
            "f(.*)",
            ".*_total",
            ".*-metrics",
        ] {
            assert!(!matches!(m(p), Matcher::Regex(_)), "{p} needs no engine");
        }
        for p in [
            "f.*o",
            "(f)(.*)",
            ".*_(total)",
            "go_.+",
            r"a\.b",
            "^up$",
            "[ab]",
            "a.c",
        ] {
            assert!(matches!(m(p), Matcher::Regex(_)), "{p} needs the engine");
        }
    }

    #[test]
    fn shortcuts_agree_with_the_engine() {
        let patterns = [
            "(.*)",
            ".*",
            "",
            "up",
            "no-match:1",
            "Succeeded|Failed",
            "a|",
            "|",
            "go_.*",
            "go_(.*)",
            "go_(.+)",
            ".*_total",
            "",
        ];
        let values = [
            "",
            "up",
            "upx",
            "no-match:1",
            "Succeeded",
            "Failed",
            "Running",
            "a",
            "go_",
            "go_x",
            "go_\nx",
            "ago_x",
            "x_total",
            "_total",
            "x_total\n",
            "é_total",
            "go_é",
        ];
        for p in patterns {
            let fast = m(p);
            let slow = Matcher::regex(p).unwrap();
            assert_eq!(fast.groups(), slow.groups(), "{p}");
            assert!(fast.names().eq(slow.names()), "{p}");
            for v in values {
                assert_eq!(fast.is_match(v), slow.is_match(v), "{p} ~ {v:?}");
                let (f, s) = (fast.captures(v), slow.captures(v));
                assert_eq!(f.is_some(), s.is_some(), "{p} ~ {v:?}");
                if let (Some(f), Some(s)) = (f, s) {
                    for i in 0..=slow.groups() {
                        assert_eq!(f.get(v, i), s.get(v, i), "{p} ~ {v:?} group {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn perl_classes_are_ascii_as_in_re2() {
        assert!(m(r"\d+").is_match("0123456789"));
        assert!(
            !m(r"\d").is_match("٣"),
            "Arabic-Indic three is not \\d in RE2"
        );
        assert!(!m(r"\w").is_match("é"));
        assert!(m(r"(.+?)(\:\d+)?;(\d+)").is_match("10.0.0.1:80;9100"));
    }

    #[test]
    fn captures_and_names() {
        let r = m("(line1).*(?P<second>line2)");
        assert_eq!(r.groups(), 3);
        assert_eq!(r.names().collect::<Vec<_>>(), [None, None, Some("second")]);
        let hay = "line1\nline2";
        let c = r.captures(hay).unwrap();
        assert_eq!(c.get(hay, 1), Some("line1"));
        assert_eq!(c.get(hay, 2), Some("line2"));
        assert_eq!(c.get(hay, 3), None);
        assert!(r.captures("line2").is_none());
        let any = m("(.*)");
        assert_eq!(any.names().count(), 2);
        let c = any.captures("v").unwrap();
        assert_eq!(
            (c.get("v", 0), c.get("v", 1), c.get("v", 2)),
            (Some("v"), Some("v"), None)
        );
        let opt = m("a(b)?");
        let c = opt.captures("a").unwrap();
        assert_eq!(c.get("a", 1), None, "a group outside the match");
    }

    #[test]
    fn bad_patterns_are_errors_naming_the_pattern() {
        let e = Matcher::new("(unclosed").unwrap_err();
        assert!(e.starts_with("invalid regex `(unclosed`"), "{e}");
        assert!(Matcher::new("a{2").is_err());
    }
}
