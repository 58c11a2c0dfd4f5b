//! The YAML that snmp_exporter's generator writes (Go's yaml encoder): block mappings and
//! sequences (a sequence may sit at its key's indentation), plain scalars folded over several
//! lines, single- and double-quoted scalars, `|` and `>` block scalars, empty `[]` and `{}`,
//! and comments. Anchors, tags, multi-document streams and other flow collections are refused
//! with the line at fault. No YAML crate builds without `std`; this is the part of the
//! language the file uses, and no more.
//!
//! A filter on key paths skips subtrees unread (a module file holds dozens of modules; a job
//! uses one or two), so a 2 MB file costs the memory of the modules kept.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A parsed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// An empty value, or a subtree the filter skipped.
    Null,
    /// A scalar, unquoted.
    Str(String),
    /// A block or empty flow sequence.
    Seq(Vec<Node>),
    /// A block or empty flow mapping, in file order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value under `key` of a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A scalar's text.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A sequence's items (`Null` reads as empty).
    #[must_use]
    pub fn as_seq(&self) -> Option<&[Self]> {
        match self {
            Self::Seq(s) => Some(s),
            Self::Null => Some(&[]),
            _ => None,
        }
    }

    /// A mapping's entries (`Null` reads as empty).
    #[must_use]
    pub fn as_map(&self) -> Option<&[(String, Self)]> {
        match self {
            Self::Map(m) => Some(m),
            Self::Null => Some(&[]),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

struct Parser<'a, F> {
    lines: Vec<Line<'a>>,
    pos: usize,
    keep: F,
}

/// Parses `text`; `keep(path)` says whether the subtree under a key path is read (`["modules",
/// "if_mib"]`); subtrees it refuses are [`Node::Null`].
///
/// # Errors
/// `line N: why` for what this reader does not take.
pub fn parse(text: &str, keep: impl Fn(&[&str]) -> bool) -> Result<Node, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start_matches(' ');
        if trimmed.starts_with('\t') {
            return Err(format!("line {}: tabs do not indent YAML", i + 1));
        }
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if i == 0 && trimmed.starts_with("---") {
            continue;
        }
        lines.push(Line {
            no: i + 1,
            indent: raw.len() - trimmed.len(),
            text: trimmed.trim_end(),
        });
    }
    let mut p = Parser {
        lines,
        pos: 0,
        keep,
    };
    if p.lines.is_empty() {
        return Ok(Node::Null);
    }
    let indent = p.lines[0].indent;
    let mut path = Vec::new();
    let node = p.block(indent, &mut path)?;
    if let Some(l) = p.lines.get(p.pos) {
        return Err(format!("line {}: unexpected indentation", l.no));
    }
    Ok(node)
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Splits `key: value` (or `key:`) outside quotes.
fn split_key(text: &str) -> Option<(String, &str)> {
    if let Some(q @ ('\'' | '"')) = text.chars().next() {
        let end = text[1..].find(q)? + 1;
        let rest = text[end + 1..].strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ')) {
            return None;
        }
        return Some((text[1..end].to_string(), rest.trim_start()));
    }
    let mut from = 0;
    loop {
        let i = from + text[from..].find(':')?;
        let after = &text[i + 1..];
        if after.is_empty() || after.starts_with(' ') {
            return Some((text[..i].trim_end().to_string(), after.trim_start()));
        }
        from = i + 1;
    }
}

impl<'a, F: Fn(&[&str]) -> bool> Parser<'a, F> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    /// Skips every line indented deeper than `indent`.
    fn skip_deeper(&mut self, indent: usize) {
        while self.peek().is_some_and(|l| l.indent > indent) {
            self.pos += 1;
        }
    }

    fn block(&mut self, indent: usize, path: &mut Vec<&'a str>) -> Result<Node, String> {
        let Some(first) = self.peek() else {
            return Ok(Node::Null);
        };
        if is_item(first.text) {
            self.seq(indent, path)
        } else {
            self.map(indent, path)
        }
    }

    fn seq(&mut self, indent: usize, path: &mut Vec<&'a str>) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent != indent || !is_item(l.text) {
                break;
            }
            let rest = l.text[1..].trim_start();
            if rest.is_empty() {
                self.pos += 1;
                match self.peek() {
                    Some(n) if n.indent > indent => items.push(self.block(n.indent, path)?),
                    _ => items.push(Node::Null),
                }
            } else {
                // The item's content starts a node at its own column.
                let col = l.indent + (l.text.len() - rest.len());
                self.lines[self.pos] = Line {
                    no: l.no,
                    indent: col,
                    text: rest,
                };
                items.push(self.block(col, path)?);
            }
        }
        Ok(Node::Seq(items))
    }

    fn map(&mut self, indent: usize, path: &mut Vec<&'a str>) -> Result<Node, String> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent != indent || is_item(l.text) {
                if l.indent > indent {
                    return Err(format!("line {}: unexpected indentation", l.no));
                }
                break;
            }
            let Some((key, value)) = split_key(l.text) else {
                if entries.is_empty() {
                    // A lone scalar, possibly folded over several lines.
                    return self.scalar(l.text, indent);
                }
                return Err(format!("line {}: expected `key: value`", l.no));
            };
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(format!("line {}: key `{key}` appears twice", l.no));
            }
            let key_ref: &'a str = {
                // The key as it appears in the line (for the filter's path).
                let t = l.text;
                let end = t.find(':').unwrap_or(t.len());
                t[..end].trim_matches(|c| c == '\'' || c == '"')
            };
            path.push(key_ref);
            let wanted = (self.keep)(path);
            let node = if value.is_empty() {
                self.pos += 1;
                match self.peek() {
                    Some(n) if !wanted && (n.indent > indent || is_item(n.text)) => {
                        let same_level_seq = n.indent == indent;
                        if same_level_seq {
                            while self.peek().is_some_and(|n| {
                                n.indent > indent || (n.indent == indent && is_item(n.text))
                            }) {
                                self.pos += 1;
                            }
                        } else {
                            self.skip_deeper(indent);
                        }
                        Node::Null
                    }
                    Some(n) if n.indent > indent => self.block(n.indent, path)?,
                    Some(n) if n.indent == indent && is_item(n.text) => self.seq(indent, path)?,
                    _ => Node::Null,
                }
            } else if wanted {
                self.scalar(value, indent)?
            } else {
                self.pos += 1;
                self.skip_deeper(indent);
                Node::Null
            };
            path.pop();
            entries.push((key, node));
        }
        Ok(Node::Map(entries))
    }

    /// A scalar starting with `first` on the current line; continuation lines are those
    /// indented deeper than `indent`.
    fn scalar(&mut self, first: &str, indent: usize) -> Result<Node, String> {
        let no = self.lines[self.pos].no;
        self.pos += 1;
        let mut more = Vec::new();
        while let Some(l) = self.peek() {
            if l.indent <= indent {
                break;
            }
            more.push(l);
            self.pos += 1;
        }
        match first {
            "[]" | "{}" if more.is_empty() => {
                return Ok(if first == "[]" {
                    Node::Seq(Vec::new())
                } else {
                    Node::Map(Vec::new())
                });
            }
            "|" | "|-" | ">" | ">-" => {
                let sep = if first.starts_with('|') { "\n" } else { " " };
                let body: Vec<&str> = more.iter().map(|l| l.text).collect();
                return Ok(Node::Str(body.join(sep)));
            }
            _ => {}
        }
        let mut text = String::from(first);
        for l in &more {
            text.push(' ');
            text.push_str(l.text);
        }
        let bad = |why: &str| format!("line {no}: {why}");
        match text.chars().next() {
            Some('\'') => {
                let inner = text
                    .strip_prefix('\'')
                    .and_then(|t| t.strip_suffix('\''))
                    .ok_or_else(|| bad("unterminated single-quoted scalar"))?;
                Ok(Node::Str(inner.replace("''", "'")))
            }
            Some('"') => {
                let inner = text
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .ok_or_else(|| bad("unterminated double-quoted scalar"))?;
                unescape(inner).map(Node::Str).map_err(|e| bad(&e))
            }
            Some('&' | '*' | '!' | '[' | '{') => Err(bad(
                "anchors, aliases, tags and flow collections are not read here",
            )),
            _ => {
                let plain = match text.find(" #") {
                    Some(i) => text[..i].trim_end().to_string(),
                    None => text,
                };
                Ok(Node::Str(plain))
            }
        }
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(c @ ('\\' | '"' | '/' | ' ')) => out.push(c),
            Some(c @ ('x' | 'u' | 'U')) => {
                let n = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).collect();
                let v = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad escape \\{c}{hex}"))?;
                out.push(v);
            }
            other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &[&str]) -> bool {
        true
    }

    fn s(v: &str) -> Node {
        Node::Str(v.into())
    }

    #[test]
    fn the_generators_layout_reads() {
        let text = "\
# generated
auths:
  public_v2:
    community: public
    version: 2
modules:
  if_mib:
    walk:
    - 1.3.6.1.2.1.2
    - 1.3.6.1.2.1.31.1.1
    metrics:
    - name: ifNumber
      oid: 1.3.6.1.2.1.2.1
      type: gauge
      help: The number of network interfaces (regardless of their current state) present
        on this system. - 1.3.6.1.2.1.2.1
      indexes:
      - labelname: ifIndex
        type: gauge
      enum_values:
        1: up
        2: 'down: really'
      lookups: []
    max_repetitions: 25
";
        let n = parse(text, all).unwrap();
        let m = n.get("modules").unwrap().get("if_mib").unwrap();
        assert_eq!(
            m.get("walk").unwrap(),
            &Node::Seq(alloc::vec![s("1.3.6.1.2.1.2"), s("1.3.6.1.2.1.31.1.1")])
        );
        let metric = &m.get("metrics").unwrap().as_seq().unwrap()[0];
        assert_eq!(
            metric.get("help").unwrap(),
            &s(
                "The number of network interfaces (regardless of their current state) present on this system. - 1.3.6.1.2.1.2.1"
            )
        );
        assert_eq!(
            metric.get("indexes").unwrap().as_seq().unwrap()[0].get("labelname"),
            Some(&s("ifIndex"))
        );
        assert_eq!(
            metric.get("enum_values").unwrap().get("2"),
            Some(&s("down: really"))
        );
        assert_eq!(metric.get("lookups"), Some(&Node::Seq(Vec::new())));
        assert_eq!(m.get("max_repetitions"), Some(&s("25")));
        assert_eq!(
            n.get("auths")
                .unwrap()
                .get("public_v2")
                .unwrap()
                .get("community"),
            Some(&s("public"))
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "[ a-z0-9:#'\"|>\\\n\\-\\[\\]{}]{0,200}") {
            let _ = parse(&text, all);
            let _ = parse(&text, |p| p.len() < 2);
        }
    }

    #[test]
    fn skipped_subtrees_are_not_read() {
        let text = "modules:\n  a:\n    walk:\n    - 1.3\n  b:\n    walk: [bad\n";
        let n = parse(text, |p| p.len() < 2 || p[1] == "a").unwrap();
        assert_eq!(n.get("modules").unwrap().get("b"), Some(&Node::Null));
        assert!(parse(text, all).unwrap_err().contains("line 6"));
    }

    #[test]
    fn quoted_scalars_and_errors_name_the_line() {
        let n = parse("a: \"x\\ty\"\nb: 'it''s'\n'c d': e\n", all).unwrap();
        assert_eq!(n.get("a"), Some(&s("x\ty")));
        assert_eq!(n.get("b"), Some(&s("it's")));
        assert_eq!(n.get("c d"), Some(&s("e")));
        let e = parse("a:\n  b: 1\n c: 2\n", all).unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        let e = parse("a: &x 1\n", all).unwrap_err();
        assert!(e.contains("line 1") && e.contains("anchors"), "{e}");
        let e = parse("a: 1\na: 2\n", all).unwrap_err();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
    }
}
