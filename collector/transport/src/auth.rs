use crate::Error;
use std::path::Path;

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

fn secret(path: &Path) -> Result<String, Error> {
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
    /// Basic auth with the password in `password_file`.
    ///
    /// # Errors
    /// An unreadable or empty file.
    pub fn basic(username: &str, password_file: &Path) -> Result<Self, Error> {
        Ok(Self::Basic {
            username: username.into(),
            password: secret(password_file)?,
        })
    }

    /// A bearer token from `token_file`.
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
                    base64(format!("{username}:{password}").as_bytes())
                ),
            )),
            Self::Bearer(t) => Some(("authorization".into(), format!("Bearer {t}"))),
        }
    }
}

/// Standard base64 with padding; a dozen lines rather than a dependency for one header.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

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
}
