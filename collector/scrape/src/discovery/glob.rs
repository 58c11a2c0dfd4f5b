//! File name patterns, as Go's `filepath.Match` that Prometheus' `file_sd` uses, for the last
//! component of a path only: `*` (any run of characters), `?` (one character), `[abc]`,
//! `[a-z]`, `[^a-z]` (a class, `^` negates), and `\x` (a literal `x`). As in Go, `*` also
//! matches a leading dot.

/// A checked pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob(Box<str>);

/// Whether `s` uses any pattern syntax.
pub(super) fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

impl Glob {
    /// Checks `pattern`.
    pub(super) fn new(pattern: &str) -> Result<Self, String> {
        let p: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                '\\' => {
                    if i + 1 == p.len() {
                        return Err(format!("`{pattern}`: trailing `\\`"));
                    }
                    i += 2;
                }
                '[' => i = class(&p, i + 1, '\0').ok_or_else(|| bad(pattern))?.1,
                ']' => return Err(bad(pattern)),
                _ => i += 1,
            }
        }
        Ok(Self(pattern.into()))
    }

    /// Whether `name` matches the whole pattern.
    pub(super) fn matches(&self, name: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let n: Vec<char> = name.chars().collect();
        matches_at(&p, &n)
    }
}

fn bad(pattern: &str) -> String {
    format!("`{pattern}`: unbalanced `[` or `]` in the file name pattern")
}

/// Reads the class starting after its `[` at `p[i]`; returns whether `c` is in it and the
/// index after its `]`, or `None` when the class is malformed (as Go: empty, an unescaped `-`
/// or `]` where a character is expected, a reversed range).
fn class(p: &[char], mut i: usize, c: char) -> Option<(bool, usize)> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    // One character of a class: `\x` is `x`; a bare `-` or `]` is malformed.
    let char_at = |i: &mut usize| -> Option<char> {
        let ch = match *p.get(*i)? {
            '-' | ']' => return None,
            '\\' => {
                *i += 1;
                *p.get(*i)?
            }
            ch => ch,
        };
        *i += 1;
        Some(ch)
    };
    let mut found = false;
    let mut ranges = 0;
    loop {
        if ranges > 0 && p.get(i) == Some(&']') {
            break;
        }
        let lo = char_at(&mut i)?;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            i += 1;
            hi = char_at(&mut i)?;
            if hi < lo {
                return None;
            }
        }
        ranges += 1;
        found |= (lo..=hi).contains(&c);
    }
    Some((found != negated, i + 1))
}

fn matches_at(p: &[char], n: &[char]) -> bool {
    let Some((&head, rest)) = p.split_first() else {
        return n.is_empty();
    };
    match head {
        // Patterns are a file name or two: plain recursion is enough.
        '*' => (0..=n.len()).any(|skip| matches_at(rest, &n[skip..])),
        '?' => !n.is_empty() && matches_at(rest, &n[1..]),
        '[' => {
            let Some((&c, n_rest)) = n.split_first() else {
                return false;
            };
            match class(p, 1, c) {
                Some((true, next)) => matches_at(&p[next..], n_rest),
                _ => false,
            }
        }
        '\\' => match (rest.split_first(), n.split_first()) {
            (Some((want, p_rest)), Some((got, n_rest))) => {
                want == got && matches_at(p_rest, n_rest)
            }
            _ => false,
        },
        lit => n.first() == Some(&lit) && matches_at(rest, &n[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::{Glob, is_pattern};

    #[test]
    fn matches_as_go_filepath_match() {
        for (pattern, name, want) in [
            ("*.json", "a.json", true),
            ("*.json", ".hidden.json", true),
            ("*.json", "a.json.swp", false),
            ("*.json", "a.yml", false),
            ("node-*.yml", "node-1.yml", true),
            ("node-*.yml", "node-.yml", true),
            ("node-*.yml", "xnode-1.yml", false),
            ("?.json", "a.json", true),
            ("?.json", "ab.json", false),
            ("a.json?", "a.json", false),
            ("[ab].json", "b.json", true),
            ("[ab].json", "c.json", false),
            ("[^ab].json", "c.json", true),
            ("[^ab].json", "a.json", false),
            ("[a-c]*.yaml", "beta.yaml", true),
            ("[a-c]*.yaml", "delta.yaml", false),
            (r"\*.json", "*.json", true),
            (r"\*.json", "a.json", false),
            ("*a*b*.json", "xaybz.json", true),
            ("*a*b*.json", "xbyaz.json", false),
            ("t.json", "t.json", true),
        ] {
            let g = Glob::new(pattern).unwrap();
            assert_eq!(g.matches(name), want, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for p in [
            "[a.json",
            "a].json",
            "[].json",
            "[b-a].json",
            "[a-].json",
            "[-a].json",
            "a\\",
        ] {
            assert!(Glob::new(p).is_err(), "{p}");
        }
        assert!(is_pattern("*.json") && is_pattern("[ab].yml") && !is_pattern("t.json"));
    }
}
