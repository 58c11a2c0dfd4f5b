//! Credentials: read from files (never from the configuration or a URL), resolved against
//! systemd's credentials directory, and kept out of every message.
//!
//! A bare file name (`password_file = "remote-write.pass"`) is looked up in
//! `$CREDENTIALS_DIRECTORY` when that is set: systemd's `LoadCredential=` copies a secret
//! there, readable only by the service, so the secret file itself can stay root-only. A path
//! with a directory in it is used as written.

use crate::Error;
use std::borrow::Cow;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

/// The environment variable systemd sets to the directory of a unit's `LoadCredential=` files.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Where a secret file configured as `path` is read: under `$CREDENTIALS_DIRECTORY` when that
/// is set and `path` is a bare file name, else `path` itself.
#[must_use]
pub fn secret_path(path: &Path) -> PathBuf {
    resolve_secret_path(path, std::env::var_os(CREDENTIALS_DIRECTORY).as_deref())
}

fn resolve_secret_path(path: &Path, credentials_dir: Option<&OsStr>) -> PathBuf {
    let mut parts = path.components();
    let bare = matches!(
        (parts.next(), parts.next()),
        (Some(Component::Normal(_)), None)
    );
    match credentials_dir {
        Some(dir) if bare && !dir.is_empty() => Path::new(dir).join(path),
        _ => path.to_path_buf(),
    }
}

/// Whether `url` carries user info (`scheme://user[:password]@host…`).
#[must_use]
pub fn url_has_credentials(url: &str) -> bool {
    authority_range(url).is_some_and(|(start, end)| url[start..end].contains('@'))
}

/// `url` with any user info replaced by `<redacted>`, for messages and logs.
#[must_use]
pub fn redact_url(url: &str) -> Cow<'_, str> {
    match authority_range(url) {
        Some((start, end)) => match url[start..end].rfind('@') {
            Some(at) => Cow::Owned(format!("{}<redacted>{}", &url[..start], &url[start + at..])),
            None => Cow::Borrowed(url),
        },
        None => Cow::Borrowed(url),
    }
}

/// The byte range of the authority (`user:pass@host:port`) of `scheme://authority/…`.
fn authority_range(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    Some((start, end))
}

/// Credentials for a receiver, read from files so they never sit in the configuration.
/// `Debug` shows which kind is in use, never the secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP basic auth.
    Basic {
        /// The user name.
        username: String,
        /// The password, read from a file.
        password: String,
    },
    /// `Authorization: Bearer <token>`, the token read from a file.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "Auth::None",
            Self::Basic { .. } => "Auth::Basic(<redacted>)",
            Self::Bearer(_) => "Auth::Bearer(<redacted>)",
        })
    }
}

fn secret(configured: &Path) -> Result<String, Error> {
    let path = &secret_path(configured);
    let s = std::fs::read_to_string(path).map_err(|e| Error::Secret {
        path: path.into(),
        reason: format!("cannot read the secret file: {e}"),
    })?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(Error::Secret {
            path: path.into(),
            reason: "the secret file is empty".into(),
        });
    }
    Ok(s)
}

impl Auth {
    /// Basic auth with the password in `password_file` (see [`secret_path`]).
    ///
    /// # Errors
    /// An unreadable or empty file.
    pub fn basic(username: &str, password_file: &Path) -> Result<Self, Error> {
        Ok(Self::Basic {
            username: username.into(),
            password: secret(password_file)?,
        })
    }

    /// A bearer token from `token_file` (see [`secret_path`]).
    ///
    /// # Errors
    /// An unreadable or empty file.
    pub fn bearer(token_file: &Path) -> Result<Self, Error> {
        Ok(Self::Bearer(secret(token_file)?))
    }

    /// The `Authorization` header, if any.
    #[must_use]
    pub fn header(&self) -> Option<(String, String)> {
        match self {
            Self::None => None,
            Self::Basic { username, password } => Some((
                "authorization".into(),
                format!(
                    "Basic {}",
                    crate::base64::encode(format!("{username}:{password}").as_bytes())
                ),
            )),
            Self::Bearer(t) => Some(("authorization".into(), format!("Bearer {t}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_files_and_are_never_printed() {
        let dir = std::env::temp_dir().join(format!("magpie-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let a = Auth::basic("user", &pw).unwrap();
        assert_eq!(
            a.header(),
            Some(("authorization".into(), "Basic dXNlcjpzM2NyZXQ=".into()))
        );
        assert!(!format!("{a:?}").contains("s3cret"));
        let b = Auth::bearer(&pw).unwrap();
        assert_eq!(b.header().unwrap().1, "Bearer s3cret");
        assert!(!format!("{b:?}").contains("s3cret"));
        std::fs::write(&pw, "\n").unwrap();
        assert!(Auth::bearer(&pw).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bare_names_are_read_from_the_credentials_directory() {
        let creds = Some(OsStr::new("/run/credentials/magpie.service"));
        assert_eq!(
            resolve_secret_path(Path::new("rw.pass"), creds),
            Path::new("/run/credentials/magpie.service/rw.pass")
        );
        for kept in [
            "/etc/magpie/rw.pass",
            "secrets/rw.pass",
            "./rw.pass",
            "../rw.pass",
        ] {
            assert_eq!(resolve_secret_path(Path::new(kept), creds), Path::new(kept));
        }
        assert_eq!(
            resolve_secret_path(Path::new("rw.pass"), None),
            Path::new("rw.pass")
        );
        assert_eq!(
            resolve_secret_path(Path::new("rw.pass"), Some(OsStr::new(""))),
            Path::new("rw.pass")
        );
    }

    #[test]
    fn user_info_is_found_and_redacted() {
        for (url, creds, shown) in [
            (
                "https://u:p@h:9090/api/v1/write",
                true,
                "https://<redacted>@h:9090/api/v1/write",
            ),
            ("http://tok@h/metrics", true, "http://<redacted>@h/metrics"),
            ("mqtt://u:p@h", true, "mqtt://<redacted>@h"),
            ("http://u:p@ss@h/", true, "http://<redacted>@h/"),
            ("http://h/x?mail=a@b", false, "http://h/x?mail=a@b"),
            ("http://h/a@b", false, "http://h/a@b"),
            ("http://[::1]:9/", false, "http://[::1]:9/"),
            ("no-scheme@h", false, "no-scheme@h"),
        ] {
            assert_eq!(url_has_credentials(url), creds, "{url}");
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
