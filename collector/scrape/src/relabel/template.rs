//! `target_label` and `replacement` templates, expanded as Go's `Regexp.Expand` does, because
//! that is what Prometheus users' rules are written against:
//!
//! - `$$` is a literal `$`;
//! - `$name` and `${name}` refer to a group by number (ASCII digits, no leading zero) or by name;
//!   a bare `$name` takes the longest run of letters, digits and `_`, so `$1x` means `${1x}`,
//!   not `${1}x`;
//! - a group that does not exist or did not take part in the match expands to nothing;
//! - a `$` that starts no valid reference (`$-`, `${`, `${}`, `${a`) is kept as text.
//!
//! Templates are parsed once when rules are compiled, resolving names to group indexes, so
//! expanding one on the hot path is a few string appends.

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Box<str>),
    Group(usize),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Template {
    pieces: Vec<Piece>,
    /// The whole template when it refers to no group.
    constant: Option<Box<str>>,
}

impl Template {
    /// Parses `text` against a regex with `groups` groups (group 0 included) whose names are
    /// given by `name_of(index)`.
    pub(super) fn parse<'n>(
        text: &str,
        groups: usize,
        names: impl Iterator<Item = Option<&'n str>> + Clone,
    ) -> Self {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            lit.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                lit.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                lit.push('$');
                continue;
            };
            rest = after;
            if let Some(group) = resolve(name, groups, names.clone()) {
                if !lit.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut lit).into()));
                }
                pieces.push(Piece::Group(group));
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit.into()));
        }
        // Text is only flushed before a group, so a template without groups (no references,
        // or only references that can never match) is at most one piece of text.
        let constant = match pieces.as_slice() {
            [] => Some("".into()),
            [Piece::Text(t)] => Some(t.clone()),
            _ => None,
        };
        Self { pieces, constant }
    }

    /// The expansion when it does not depend on the match.
    pub(super) fn constant(&self) -> Option<&str> {
        self.constant.as_deref()
    }

    /// Appends the expansion to `out`; `group(i)` is the text group `i` matched, if any.
    pub(super) fn expand_into<'h>(
        &self,
        out: &mut String,
        group: impl Fn(usize) -> Option<&'h str>,
    ) {
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Group(i) => out.push_str(group(*i).unwrap_or("")),
            }
        }
    }
}

/// Splits a reference off the text after a `$`: `{name}rest` or `namerest`, as Go's `extract`.
fn reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let (name, rest) = body.split_at(end);
    if braced {
        rest.strip_prefix('}').map(|rest| (name, rest))
    } else {
        Some((name, rest))
    }
}

/// The group a reference names, or `None` when it expands to nothing.
fn resolve<'n>(
    name: &str,
    groups: usize,
    mut names: impl Iterator<Item = Option<&'n str>>,
) -> Option<usize> {
    if name.bytes().all(|b| b.is_ascii_digit()) {
        // Go reads `01` as a name, not a number; no group can have that name.
        if name.len() > 1 && name.starts_with('0') {
            return None;
        }
        return name.parse::<usize>().ok().filter(|&i| i < groups);
    }
    names.position(|n| n == Some(name))
}

#[cfg(test)]
mod tests {
    use super::Template;

    /// Expands `template` against groups `caps` (index 0 is the whole match); group names are
    /// given as `names[i]`.
    fn expand(template: &str, caps: &[Option<&str>], names: &[Option<&str>]) -> String {
        let t = Template::parse(template, caps.len(), names.iter().copied());
        let mut out = String::new();
        t.expand_into(&mut out, |i| caps.get(i).copied().flatten());
        out
    }

    #[test]
    fn references_expand_as_go_regexp_expand() {
        let caps = [Some("whole"), Some("one"), Some("two"), None];
        let names = [None, None, Some("second"), Some("missing")];
        for (template, want) in [
            ("$1", "one"),
            ("${1}", "one"),
            ("ch${1}-ch${1}", "chone-chone"),
            ("$1$2", "onetwo"),
            ("$0", "whole"),
            // The longest run of word characters is the name: `$1x` is `${1x}`, no such group.
            ("$1x", ""),
            ("${1}x", "onex"),
            ("$second", "two"),
            ("${second}!", "two!"),
            ("$secondx", ""),
            // Out of range, not participating, unknown names: empty.
            ("[$4]", "[]"),
            ("[$3]", "[]"),
            ("[$missing]", "[]"),
            ("[$nope]", "[]"),
            // Leading zeros make a name, not a number.
            ("[$01]", "[]"),
            ("$$1", "$1"),
            ("a$$$1", "a$one"),
            // Malformed references stay text.
            ("$", "$"),
            ("a$-b", "a$-b"),
            ("${", "${"),
            ("${}", "${}"),
            ("${1", "${1"),
            ("${1x", "${1x"),
            ("$ 1", "$ 1"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(
                expand(template, &caps, &names),
                want,
                "template {template:?}"
            );
        }
    }

    #[test]
    fn constants_are_known_at_parse_time() {
        let none: [Option<&str>; 2] = [None, None];
        let parse = |t: &str| Template::parse(t, 2, none.iter().copied());
        assert_eq!(parse("static").constant(), Some("static"));
        assert_eq!(parse("a$$b").constant(), Some("a$b"));
        assert_eq!(parse("${").constant(), Some("${"));
        // A reference to a group that cannot exist expands to nothing, whatever matches.
        assert_eq!(parse("x$7y").constant(), Some("x"));
        assert_eq!(parse("$7").constant(), Some(""));
        assert_eq!(parse("$1").constant(), None);
        assert_eq!(parse("a$0").constant(), None);
    }
}
