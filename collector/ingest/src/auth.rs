//! Who may push to an HTTP source: `Authorization` checked against the credentials of
//! `basic_auth` (one user with a password file, and/or a users file) and `bearer_token_file`.
//!
//! Secrets are read from files when the source starts (so a SIGHUP reload reads them again),
//! compared in time independent of where they differ, and never logged or shown by `Debug`.
//! Every configured credential is compared on every request, so the time of an answer does
//! not tell which user names exist either.

use std::path::Path;

/// The credentials an HTTP source accepts. Empty: every request is let in.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `user:password` pairs, as the decoded `Basic` value must read.
    basic: Vec<Vec<u8>>,
    /// Bearer tokens.
    bearer: Vec<Vec<u8>>,
    /// The realm named in `WWW-Authenticate`.
    realm: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("basic_users", &self.basic.len())
            .field("bearer_tokens", &self.bearer.len())
            .finish_non_exhaustive()
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

/// Reads a users file: one `user:password` a line; blank lines and `#` comments skipped.
///
/// # Errors
/// An unreadable file, a line without `:`, an empty user or password, a hashed password
/// (`$2y$…`, `$apr1$…`, `{SHA}…`), no user at all; the line number is named, never the
/// password.
pub fn read_users_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, pass)) = line.split_once(':') else {
            return Err(format!("line {}: not `user:password`", n + 1));
        };
        if user.is_empty() || pass.is_empty() {
            return Err(format!("line {}: empty user name or password", n + 1));
        }
        if pass.starts_with('$') || pass.starts_with("{SHA}") {
            return Err(format!(
                "line {}: user `{user}` has a hashed password; magpie compares plain \
                 passwords (htpasswd -p), so keep the file readable by magpie alone",
                n + 1
            ));
        }
        users.push((user.to_string(), pass.to_string()));
    }
    if users.is_empty() {
        return Err("no `user:password` line".into());
    }
    Ok(users)
}

impl Credentials {
    /// Credentials for the source named `source` (the realm).
    #[must_use]
    pub fn new(source: &str) -> Self {
        Self {
            realm: format!("magpie ingest {source}"),
            ..Self::default()
        }
    }

    /// Accepts `user` with `password` over basic auth.
    pub fn add_user(&mut self, user: &str, password: &str) {
        self.basic.push(format!("{user}:{password}").into_bytes());
    }

    /// Accepts `Authorization: Bearer <token>`.
    pub fn add_bearer(&mut self, token: &str) {
        self.bearer.push(token.as_bytes().to_vec());
    }

    /// Whether any credential is required.
    #[must_use]
    pub fn required(&self) -> bool {
        !self.basic.is_empty() || !self.bearer.is_empty()
    }

    /// Whether a request with this `Authorization` header value may push.
    #[must_use]
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(value) = authorization else {
            return false;
        };
        let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
            Some(i) => (&value[..i], trim(&value[i + 1..])),
            None => (value, &[][..]),
        };
        let (candidates, given) = if scheme.eq_ignore_ascii_case(b"basic") {
            match std::str::from_utf8(rest).map(magpie_transport::base64::decode) {
                Ok(Ok(d)) => (&self.basic, d),
                _ => return false,
            }
        } else if scheme.eq_ignore_ascii_case(b"bearer") {
            (&self.bearer, rest.to_vec())
        } else {
            return false;
        };
        // No early exit: every candidate is compared.
        candidates
            .iter()
            .fold(false, |found, c| same(c, &given) | found)
    }

    /// The `WWW-Authenticate` values of a 401, one per accepted scheme.
    #[must_use]
    pub fn challenges(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.basic.is_empty() {
            v.push(format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm));
        }
        if !self.bearer.is_empty() {
            v.push(format!("Bearer realm=\"{}\"", self.realm));
        }
        v
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    &b[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            magpie_transport::base64::encode(user_pass.as_bytes())
        )
    }

    #[test]
    fn only_a_configured_credential_is_admitted() {
        let mut c = Credentials::new("lan");
        assert!(c.admits(None), "no credentials configured: open");
        c.add_user("telegraf", "s3cret");
        c.add_user("batch", "other");
        c.add_bearer("tok");
        for ok in [
            basic("telegraf:s3cret"),
            basic("batch:other"),
            "basic ".to_string() + &basic("batch:other")[6..],
            "Bearer tok".into(),
        ] {
            assert!(c.admits(Some(ok.as_bytes())), "{ok}");
        }
        for bad in [
            basic("telegraf:s3cre"),
            basic("telegraf:s3cret2"),
            basic("batch:s3cret"),
            basic("telegraf"),
            "Basic !!!".into(),
            "Bearer tok2".into(),
            "Bearer".into(),
            "Digest tok".into(),
            String::new(),
        ] {
            assert!(!c.admits(Some(bad.as_bytes())), "{bad}");
        }
        assert!(!c.admits(None));
        assert_eq!(
            c.challenges(),
            [
                "Basic realm=\"magpie ingest lan\", charset=\"UTF-8\"",
                "Bearer realm=\"magpie ingest lan\""
            ]
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn users_files_are_read_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("users");
        std::fs::write(&f, "# pushers\n\ntelegraf:s3:cret\r\nbatch:x\n").unwrap();
        assert_eq!(
            read_users_file(&f).unwrap(),
            [
                ("telegraf".to_string(), "s3:cret".to_string()),
                ("batch".to_string(), "x".to_string())
            ]
        );
        for (text, want) in [
            ("a:b\nnocolon\n", "line 2: not `user:password`"),
            ("a:\n", "line 1: empty"),
            ("a:$2y$05$abc\n", "line 1: user `a` has a hashed password"),
            ("# nothing\n", "no `user:password` line"),
        ] {
            std::fs::write(&f, text).unwrap();
            let e = read_users_file(&f).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("abc"), "{e}");
        }
        let e = read_users_file(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn comparison_covers_every_byte() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"a"));
        assert!(same(b"", b""));
    }
}
