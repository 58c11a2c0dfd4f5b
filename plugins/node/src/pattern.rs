//! A tiny glob for device, mount-point and filesystem-type exclusion lists.
//!
//! node_exporter takes regular expressions; a regex engine would multiply the plugin's size, and
//! its default expressions are all simple alternations. Each alternative becomes one glob, and
//! a name is excluded when any glob matches it whole:
//!
//! | token   | matches                                  |
//! |---------|------------------------------------------|
//! | `*`     | any run of characters, possibly empty     |
//! | `?`     | exactly one character                    |
//! | `#`     | one or more ASCII digits                 |
//! | `[a-z]` | one character in the class (ranges, literals) |
//! | other   | itself                                   |

/// True if `pattern` matches all of `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match_all(pattern.as_bytes(), text.as_bytes())
}

/// True if any pattern in `patterns` matches all of `text`.
pub fn any_match<S: AsRef<str>>(patterns: &[S], text: &str) -> bool {
    patterns.iter().any(|p| glob_match(p.as_ref(), text))
}

enum Token<'a> {
    Star,
    Digits,
    AnyChar,
    Class(&'a [u8]),
    Byte(u8),
}

fn tokens(p: &[u8]) -> alloc::vec::Vec<Token<'_>> {
    let mut out = alloc::vec::Vec::new();
    let mut i = 0;
    while i < p.len() {
        let token = match p[i] {
            b'*' => Token::Star,
            b'#' => Token::Digits,
            b'?' => Token::AnyChar,
            b'[' => match class(&p[i + 1..]) {
                Some((members, _)) => {
                    i += members.len() + 1;
                    Token::Class(members)
                }
                // An unterminated class is a literal '['.
                None => Token::Byte(b'['),
            },
            c => Token::Byte(c),
        };
        out.push(token);
        i += 1;
    }
    out
}

/// Dynamic programming over (token, text position), from the last token backwards, so the cost
/// is bounded by `tokens × text²` whatever the pattern (no exponential backtracking on `*a*a*`).
fn match_all(p: &[u8], t: &[u8]) -> bool {
    let n = t.len();
    // next[j]: the tokens after the current one match t[j..].
    let mut next = alloc::vec![false; n + 1];
    next[n] = true;
    for token in tokens(p).iter().rev() {
        let mut cur = alloc::vec![false; n + 1];
        match token {
            Token::Star => {
                let mut any = false;
                for j in (0..=n).rev() {
                    any |= next[j];
                    cur[j] = any;
                }
            }
            Token::Digits => {
                for j in 0..n {
                    let digits = t[j..].iter().take_while(|c| c.is_ascii_digit()).count();
                    cur[j] = (1..=digits).any(|k| next[j + k]);
                }
            }
            Token::AnyChar => {
                for j in 0..n {
                    if t[j] & 0xC0 != 0x80 {
                        cur[j] = next[j + 1 + continuation_len(&t[j + 1..])];
                    }
                }
            }
            Token::Class(members) => {
                for j in 0..n {
                    cur[j] = in_class(members, t[j]) && next[j + 1];
                }
            }
            Token::Byte(c) => {
                for j in 0..n {
                    cur[j] = t[j] == *c && next[j + 1];
                }
            }
        }
        next = cur;
    }
    next[0]
}

/// Length of the UTF-8 continuation bytes at the start of `t`, so `?` means a character.
fn continuation_len(t: &[u8]) -> usize {
    t.iter().take_while(|&&b| b & 0xC0 == 0x80).count()
}

/// Splits `a-z]rest` into the class body and what follows the closing bracket.
fn class(p: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = p.iter().position(|&c| c == b']')?;
    Some((&p[..end], &p[end + 1..]))
}

fn in_class(members: &[u8], c: u8) -> bool {
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == b'-' {
            if (members[i]..=members[i + 2]).contains(&c) {
                return true;
            }
            i += 3;
        } else {
            if members[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(glob_match("lo", "lo"));
        assert!(!glob_match("lo", "lo0"));
        assert!(glob_match("/dev/*", "/dev/shm"));
        assert!(!glob_match("/dev/*", "/devices"));
        assert!(glob_match("/var/lib/docker/?*", "/var/lib/docker/x"));
        assert!(!glob_match("/var/lib/docker/?*", "/var/lib/docker/"));
        assert!(glob_match("nvme#n#p#", "nvme0n1p12"));
        assert!(!glob_match("nvme#n#p#", "nvme0n1"));
        assert!(glob_match("[hsv]d[a-z]#", "sda1"));
        assert!(!glob_match("[hsv]d[a-z]#", "sda"));
        assert!(glob_match("?", "é"));
        assert!(glob_match("a[", "a["));
    }

    #[test]
    fn pathological_patterns_terminate() {
        let p = "*".repeat(200) + "x";
        assert!(!glob_match(&p, "aaaaaaaaaaaaaaaaaaaa"));
    }
}
