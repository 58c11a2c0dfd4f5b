//! Throw-away certificates for TLS tests, made with the `openssl` command: a CA, a server
//! certificate for 127.0.0.1 and localhost, and a client certificate, all signed by the CA.

use std::path::{Path, PathBuf};
use std::process::Command;

/// PEM files in a temporary directory.
#[derive(Debug)]
pub struct TestCerts {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian package `openssl`; ci/setup.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `{name}.key` and `{name}.pem` in `d`, signed by the CA there, with the extensions
/// `ext` (`subjectAltName=…` lines).
fn sign(d: &Path, name: &str, ext: &str) {
    std::fs::write(d.join(format!("{name}.ext")), ext).expect("write ext");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN=magpie test {name}"),
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

impl TestCerts {
    /// Makes a CA and two certificates signed by it.
    ///
    /// # Panics
    /// When `openssl` is missing or fails.
    #[must_use]
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=magpie test CA",
            ],
        );
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            sign(d, name, ext);
        }
        Self { dir }
    }

    /// A server certificate signed by the CA and valid for `dns_name` alone (not for
    /// 127.0.0.1): `{stem}.pem` and `{stem}.key` in the directory, for `server_name` tests.
    ///
    /// # Panics
    /// When `openssl` fails.
    pub fn server_named(&self, stem: &str, dns_name: &str) {
        sign(
            self.dir.path(),
            stem,
            &format!("subjectAltName=DNS:{dns_name}\nextendedKeyUsage=serverAuth\n"),
        );
    }

    /// A file in the directory: `ca.pem`, `server.pem`, `server.key`, `client.pem`,
    /// `client.key`.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
