//! Ed25519 signatures over plugin files, and the `[trust]` policy that decides which plugins
//! load.
//!
//! A `.cwasm` plugin is native code that wasmtime maps and runs without validating it, so
//! whoever can write to the plugin directory can run anything as magpie. A detached signature
//! (`<file>.sig`) by a key the configuration trusts closes that: at load (`magpie check`,
//! `magpie run`, a reload) the file is read once, its signature checked against those bytes,
//! and the same bytes are compiled, so the file cannot change between the check and the load.
//!
//! The file formats are plain text, documented in the README:
//!
//! ```text
//! fleet          -----BEGIN PRIVATE KEY-----  PKCS#8 (RFC 5958) as PEM, mode 0600
//! fleet.pub      magpie ed25519 public key    then base64 of the raw 32-byte key
//! plugin.sig     magpie ed25519 signature     then `key <id>`, then base64 of the 64 bytes
//! ```
//!
//! A key's id is the hex of the first 8 bytes of SHA-256 over its 32 raw bytes; the signature
//! names it so that "signed by a key we do not trust" and "the file was changed" are told apart.
//! The signature covers the file's bytes exactly as they are on disk, nothing else.
//!
//! Signing and checking use `ring`, already linked for TLS (rustls).

use anyhow::{Context as _, Result, bail};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use magpie_transport::base64;

/// First line of a public key file.
pub const PUBLIC_HEADER: &str = "magpie ed25519 public key";
/// First line of a signature file.
pub const SIGNATURE_HEADER: &str = "magpie ed25519 signature";
const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// A public key trusted to sign plugins, and the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Its id: hex of the first 8 bytes of SHA-256 over the raw key.
    pub id: String,
    /// The raw 32-byte key.
    pub bytes: [u8; 32],
    /// Where it was read from.
    pub path: PathBuf,
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (key {})", self.path.display(), self.id)
    }
}

/// The id of a raw public key.
#[must_use]
pub fn key_id(raw: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, raw);
    digest.as_ref()[..8].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Where the detached signature of `file` is: `<file>.sig`.
#[must_use]
pub fn signature_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// The public key file beside a private key `NAME`: `NAME.pub`.
#[must_use]
pub fn public_path(private: &Path) -> PathBuf {
    let mut s = private.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Makes a key pair: `out` (the private key, PKCS#8 PEM, created with mode 0600, never
/// overwritten) and `out.pub`. Returns the public key.
///
/// # Errors
/// When either file exists or cannot be written.
pub fn generate(out: &Path) -> Result<PublicKey> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("cannot generate a key: no system randomness"))?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("generated key does not parse: {e}"))?;
    let public = public_path(out);
    if public.exists() {
        bail!("{} exists; not overwriting a key", public.display());
    }
    let mut pem = format!("{PEM_BEGIN}\n");
    let encoded = base64::encode(pkcs8.as_ref());
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("creating {} (a key is never overwritten)", out.display()))?;
    f.write_all(pem.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    let raw = pair.public_key().as_ref();
    std::fs::write(
        &public,
        format!("{PUBLIC_HEADER}\n{}\n", base64::encode(raw)),
    )
    .with_context(|| format!("writing {}", public.display()))?;
    let mut bytes = [0; 32];
    bytes.copy_from_slice(raw);
    Ok(PublicKey {
        id: key_id(raw),
        bytes,
        path: public,
    })
}

/// Reads a private key written by [`generate`] (or any Ed25519 PKCS#8 PEM).
///
/// # Errors
/// When the file cannot be read or holds no Ed25519 private key.
pub fn read_private(path: &Path) -> Result<Ed25519KeyPair> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let body = text
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|t| t.strip_suffix(PEM_END))
        .with_context(|| {
            format!(
                "{} is not a private key: no `{PEM_BEGIN}` ... `{PEM_END}` block",
                path.display()
            )
        })?;
    let der = base64::decode(&body.split_whitespace().collect::<String>())
        .map_err(|e| anyhow::anyhow!("{} is not a private key: {e}", path.display()))?;
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an Ed25519 PKCS#8 private key: {e}",
            path.display()
        )
    })
}

/// Reads a public key file.
///
/// # Errors
/// A reason naming the file: unreadable, or not a magpie public key.
pub fn read_public(path: &Path) -> Result<PublicKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    let bad = |why: &str| format!("{} is not a magpie public key: {why}", path.display());
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(PUBLIC_HEADER) {
        return Err(bad(&format!("its first line is not `{PUBLIC_HEADER}`")));
    }
    let raw = base64::decode(lines.next().unwrap_or_default().trim()).map_err(|e| bad(&e))?;
    let bytes: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| bad(&format!("{} bytes, not 32", raw.len())))?;
    Ok(PublicKey {
        id: key_id(&bytes),
        bytes,
        path: path.into(),
    })
}

/// The text of a detached signature of `bytes` by `key`.
#[must_use]
pub fn sign(key: &Ed25519KeyPair, bytes: &[u8]) -> String {
    let sig = key.sign(bytes);
    format!(
        "{SIGNATURE_HEADER}\nkey {}\n{}\n",
        key_id(key.public_key().as_ref()),
        base64::encode(sig.as_ref())
    )
}

/// Signs `file` with the private key at `key`, writing `<file>.sig`. Returns its path and the
/// key id.
///
/// # Errors
/// When the key or the file cannot be read, or the signature cannot be written.
pub fn sign_file(key: &Path, file: &Path) -> Result<(PathBuf, String)> {
    let pair = read_private(key)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sig = signature_path(file);
    std::fs::write(&sig, sign(&pair, &bytes))
        .with_context(|| format!("writing {}", sig.display()))?;
    Ok((sig, key_id(pair.public_key().as_ref())))
}

/// Checks the signature text `sig` (read from `sig_path`) over `bytes` against `keys`; returns
/// the key that made it.
///
/// # Errors
/// Why not, naming the signature file and the keys tried: not a signature, made by a key not
/// among `keys`, or not matching the bytes.
pub fn verify<'k>(
    keys: &'k [PublicKey],
    sig_path: &Path,
    sig: &str,
    bytes: &[u8],
) -> Result<&'k PublicKey, String> {
    let bad = |why: String| format!("{} is not a magpie signature: {why}", sig_path.display());
    let mut lines = sig.lines().map(str::trim);
    if lines.next() != Some(SIGNATURE_HEADER) {
        return Err(bad(format!("its first line is not `{SIGNATURE_HEADER}`")));
    }
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("key "))
        .ok_or_else(|| bad("its second line is not `key <id>`".into()))?;
    let raw = base64::decode(lines.next().unwrap_or_default()).map_err(bad)?;
    if raw.len() != 64 {
        return Err(bad(format!("{} bytes, not 64", raw.len())));
    }
    let Some(key) = keys.iter().find(|k| k.id == id) else {
        return Err(format!(
            "{} was made by key {id}, which is not a trusted key (tried {})",
            sig_path.display(),
            tried(keys)
        ));
    };
    UnparsedPublicKey::new(&ED25519, &key.bytes)
        .verify(bytes, &raw)
        .map_err(|_| {
            format!(
                "bad signature: {} does not match the file's bytes with {key} (the file changed \
                 after it was signed, or the signature is damaged)",
                sig_path.display()
            )
        })?;
    Ok(key)
}

/// The keys, for a message: `a.pub (key 0123…), b.pub (key …)`, or `no keys`.
#[must_use]
pub fn tried(keys: &[PublicKey]) -> String {
    if keys.is_empty() {
        return "no keys: [trust] keys names none that could be read".into();
    }
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the `[trust]` section asks of a plugin file.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The keys read from `[trust] keys` (those that could be read).
    pub keys: Vec<PublicKey>,
    /// `require_signed_plugins`, when set.
    pub require_signed: Option<bool>,
}

impl Policy {
    /// Whether the plugin file at `path`, whose bytes are `bytes`, may load: a file with a
    /// `.sig` must verify against a key; an unsigned `.cwasm` loads only with
    /// `require_signed_plugins = false`, an unsigned `.wasm` unless it is `true`.
    ///
    /// # Errors
    /// The reason, naming the files and the keys tried.
    pub fn check(&self, path: &Path, bytes: &[u8]) -> Result<(), String> {
        let sig_path = signature_path(path);
        match std::fs::read_to_string(&sig_path) {
            Ok(sig) => verify(&self.keys, &sig_path, &sig, bytes).map(|_| ()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let native = path
                    .extension()
                    .is_some_and(|x| x == magpie_host::PRECOMPILED_EXT);
                let required = self.require_signed.unwrap_or(native);
                if !required {
                    return Ok(());
                }
                let why = if native && self.require_signed.is_none() {
                    "a precompiled .cwasm is native code and loads only when signed, unless \
                     [trust] require_signed_plugins = false"
                } else {
                    "[trust] require_signed_plugins = true"
                };
                Err(format!(
                    "missing signature: no {} ({why}; sign it with `magpie plugin sign --key KEY \
                     {}`; keys tried: {})",
                    sig_path.display(),
                    path.display(),
                    tried(&self.keys)
                ))
            }
            Err(e) => Err(format!("cannot read {}: {e}", sig_path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Ed25519KeyPair, PublicKey) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let raw = pair.public_key().as_ref();
        let key = PublicKey {
            id: key_id(raw),
            bytes: raw.try_into().unwrap(),
            path: "k.pub".into(),
        };
        (pair, key)
    }

    #[test]
    fn a_signature_verifies_only_over_the_same_bytes_and_key() {
        let (a, ka) = pair();
        let (_, kb) = pair();
        let sig = sign(&a, b"module");
        let p = Path::new("m.sig");
        assert_eq!(
            verify(&[kb.clone(), ka.clone()], p, &sig, b"module"),
            Ok(&ka)
        );
        let e = verify(std::slice::from_ref(&ka), p, &sig, b"modulE").unwrap_err();
        assert!(e.starts_with("bad signature"), "{e}");
        let e = verify(std::slice::from_ref(&kb), p, &sig, b"module").unwrap_err();
        assert!(e.contains("not a trusted key") && e.contains(&kb.id), "{e}");
        let e = verify(&[ka], p, "magpie ed25519 signature\nkey 00\n!!\n", b"x").unwrap_err();
        assert!(e.contains("not a magpie signature"), "{e}");
    }

    #[test]
    fn key_ids_are_eight_bytes_of_sha256_in_hex() {
        // SHA-256 of 32 zero bytes begins 66687aadf862bd77.
        assert_eq!(key_id(&[0; 32]), "66687aadf862bd77");
    }
}
