//! rustls set-up shared by the transports: for clients, trusted roots (the system's or a CA
//! file) and an optional client certificate; for servers (the HTTP ingest listener), the
//! certificate, its key and optionally the CA that client certificates must chain to.
//! Verification cannot be turned off. Files given as a bare name are read from
//! `$CREDENTIALS_DIRECTORY` when it is set ([`crate::secret_path`]).

use crate::{Error, TlsOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
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
    let builder = rustls::ClientConfig::builder_with_provider(provider())
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

/// `name` as the name a server's certificate is verified against: a DNS name, or an IP
/// address (brackets around an IPv6 address are dropped, as in a URL).
///
/// # Errors
/// A name that is neither, naming it.
pub fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_string()).map_err(|e| Error::ServerName {
        name: name.into(),
        reason: e.to_string(),
    })
}

/// The files of a TLS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsOptions {
    /// PEM certificate chain, the server's own first.
    pub cert_file: PathBuf,
    /// Its PEM private key.
    pub key_file: PathBuf,
    /// PEM CA certificates client certificates must chain to; `None` asks for none.
    pub client_ca_file: Option<PathBuf>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration from `tls`, offering `http/1.1` over ALPN. With
/// `client_ca_file`, a client without a certificate signed by one of its CAs fails the
/// handshake.
///
/// # Errors
/// An unreadable file, one without PEM certificates or key, a key that does not match the
/// certificate; each names the file.
pub fn server_config(tls: &ServerTlsOptions) -> Result<rustls::ServerConfig, Error> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&tls.cert_file)(e.to_string()))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(path)? {
                roots.add(cert).map_err(|e| tls_err(path)(e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| tls_err(path)(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs(&tls.cert_file)?, key(&tls.key_file)?)
        .map_err(|e| tls_err(&tls.key_file)(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HttpClient;

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
    fn a_server_name_is_a_dns_name_or_an_ip_address() {
        assert!(matches!(
            server_name("metrics.example.org"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("10.0.0.7"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        let e = server_name("not a host").unwrap_err().to_string();
        assert!(e.contains("`not a host`"), "{e}");
        let e = HttpClient::new(&TlsOptions {
            server_name: Some("bad_name!".into()),
            ..TlsOptions::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("server_name `bad_name!`"), "{e}");
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

    #[test]
    fn a_server_config_names_the_file_at_fault() {
        let certs = magpie_testkit::TestCerts::generate();
        let ok = ServerTlsOptions {
            cert_file: certs.path("server.pem"),
            key_file: certs.path("server.key"),
            client_ca_file: Some(certs.path("ca.pem")),
        };
        assert!(server_config(&ok).is_ok());
        let mismatched = ServerTlsOptions {
            key_file: certs.path("client.key"),
            ..ok.clone()
        };
        let e = server_config(&mismatched).unwrap_err().to_string();
        assert!(e.contains("client.key"), "{e}");
        let missing = ServerTlsOptions {
            client_ca_file: Some(certs.path("nowhere.pem")),
            ..ok.clone()
        };
        let e = server_config(&missing).unwrap_err().to_string();
        assert!(e.contains("nowhere.pem"), "{e}");
        let not_a_key = ServerTlsOptions {
            key_file: certs.path("server.pem"),
            ..ok
        };
        let e = server_config(&not_a_key).unwrap_err().to_string();
        assert!(e.contains("no PEM private key"), "{e}");
    }
}
