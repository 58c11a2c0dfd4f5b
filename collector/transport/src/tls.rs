//! rustls client set-up shared by the transports: trusted roots (the system's or a CA file)
//! and an optional client certificate. Verification cannot be turned off. Files given as a
//! bare name are read from `$CREDENTIALS_DIRECTORY` when it is set ([`crate::secret_path`]).

use crate::{Error, TlsOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

fn tls_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Tls {
        path: path.to_path_buf(),
        reason,
    }
}

fn certs(configured: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let path = &crate::secret_path(configured);
    let err = tls_err(path);
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificates in the file".into()));
    }
    Ok(certs)
}

fn key(configured: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let path = &crate::secret_path(configured);
    let err = tls_err(path);
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no PEM private key in the file".into()))
}

fn roots(tls: &TlsOptions) -> Result<rustls::RootCertStore, Error> {
    let mut store = rustls::RootCertStore::empty();
    if let Some(path) = &tls.ca_file {
        for cert in certs(path)? {
            store.add(cert).map_err(|e| tls_err(path)(e.to_string()))?;
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            log::warn!("reading a system CA certificate failed; error={e}");
        }
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            log::warn!("no system CA certificates found; TLS servers will fail verification");
        }
    }
    Ok(store)
}

/// A rustls client configuration from `tls`.
///
/// # Errors
/// An unreadable or empty CA, certificate or key file; a key that does not match the
/// certificate; only one of `cert_file` and `key_file`.
pub fn client_config(tls: &TlsOptions) -> Result<rustls::ClientConfig, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls {
        path: std::path::PathBuf::new(),
        reason: e.to_string(),
    })?
    .with_root_certificates(roots(tls)?);
    match (&tls.cert_file, &tls.key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key_file)) => builder
            .with_client_auth_cert(certs(cert)?, key(key_file)?)
            .map_err(|e| tls_err(key_file)(e.to_string())),
        (Some(path), None) | (None, Some(path)) => Err(tls_err(path)(
            "a client certificate needs both cert_file and key_file".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_client_certificate_is_refused_naming_the_file() {
        let tls = TlsOptions {
            cert_file: Some("/etc/magpie/client.pem".into()),
            ..TlsOptions::default()
        };
        let e = client_config(&tls).unwrap_err().to_string();
        assert!(e.contains("/etc/magpie/client.pem"), "{e}");
        assert!(e.contains("key_file"), "{e}");
    }

    #[test]
    fn a_file_without_pem_blocks_is_refused() {
        let dir = std::env::temp_dir().join(format!("magpie-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "not a certificate\n").unwrap();
        let tls = TlsOptions {
            ca_file: Some(ca.clone()),
            ..TlsOptions::default()
        };
        let e = client_config(&tls).unwrap_err().to_string();
        assert!(e.contains("no PEM certificates"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
