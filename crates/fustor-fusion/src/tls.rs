//! TLS for Fusion's listeners (a Rust addition: the reference speaks plain HTTP only).
//!
//! One top-level `tls:` section serves every port (main and receivers) with the same
//! certificate, because agents and browsers reach the same host name. The certificate, key and
//! client CA are files, re-read on SIGHUP: each listener reads the current [`ServerConfig`] at
//! every accept, so connections opened after a reload use the renewed certificate while open
//! ones keep theirs. Switching between HTTP and HTTPS needs a restart (a port cannot change
//! protocol under its clients).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `tls:` section. Relative paths are relative to `$FUSTOR_HOME` (the parent of the
/// configuration directory), so a home can be moved with its certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, server certificate first.
    pub cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of that certificate.
    pub key_file: Option<String>,
    /// PEM CA certificate(s) that sign agents' client certificates. When set, every
    /// agent-facing route answers 403 to a connection without a verified client certificate,
    /// and a certificate from another CA fails the handshake; query routes stay open to
    /// browsers without one.
    pub client_ca_file: Option<String>,
}

/// Keys of `tls:` (for `check-config`'s unknown-key report).
pub const KEYS: &[&str] = &["cert_file", "key_file", "client_ca_file"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("client_ca_file: {0}")]
    Verifier(String),
}

impl TlsSettings {
    /// Reads `tls` from the unknown top-level keys of the configuration; `None` when absent.
    pub fn from_extra(extra: &Map<String, Value>) -> Result<Option<TlsSettings>, TlsError> {
        let s: TlsSettings = match extra.get("tls") {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| TlsError::Config(format!("{e}")))?
            }
        };
        match (&s.cert_file, &s.key_file) {
            (Some(_), Some(_)) => Ok(Some(s)),
            (None, None) if s.client_ca_file.is_none() => Ok(None),
            _ => Err(TlsError::Config(
                "cert_file and key_file are both required to serve HTTPS".into(),
            )),
        }
    }

    /// Whether agents must present a client certificate.
    pub fn client_auth(&self) -> bool {
        self.client_ca_file.is_some()
    }
}

fn resolve(home: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        home.join(p)
    }
}

fn read(home: &Path, p: &str) -> Result<(Vec<u8>, String), TlsError> {
    let path = resolve(home, p);
    let shown = path.display().to_string();
    std::fs::read(&path)
        .map(|b| (b, shown.clone()))
        .map_err(|source| TlsError::Read {
            path: shown,
            source,
        })
}

fn certs(bytes: &[u8], path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_string(),
            message: "no CERTIFICATE block found".into(),
        });
    }
    Ok(certs)
}

/// Builds the server configuration from the files (blocking: run it off the async threads).
pub fn load(settings: &TlsSettings, home: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Err(TlsError::Config(
            "cert_file and key_file are both required to serve HTTPS".into(),
        ));
    };
    let (bytes, path) = read(home, cert_file)?;
    let chain = certs(&bytes, &path)?;
    let (bytes, path) = read(home, key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path,
        message: format!("no usable private key: {e}"),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let (bytes, path) = read(home, ca)?;
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(&bytes, &path)? {
                roots.add(c)?;
            }
            // Unauthenticated clients are let through the handshake so that browsers reach the
            // query routes; the agent routes refuse them (`http::client_cert`).
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder.with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The server configuration every listener reads at accept, and whether it asks for client
/// certificates; replaced on reload.
#[derive(Debug)]
pub struct TlsCell {
    current: RwLock<(Arc<ServerConfig>, bool)>,
}

impl TlsCell {
    pub fn new(cfg: Arc<ServerConfig>, client_auth: bool) -> Arc<TlsCell> {
        Arc::new(TlsCell {
            current: RwLock::new((cfg, client_auth)),
        })
    }

    /// The acceptor for a new connection and whether agent routes need a client certificate.
    pub fn acceptor(&self) -> (tokio_rustls::TlsAcceptor, bool) {
        let (cfg, client_auth) = &*self.current.read();
        (tokio_rustls::TlsAcceptor::from(cfg.clone()), *client_auth)
    }

    pub fn replace(&self, cfg: Arc<ServerConfig>, client_auth: bool) {
        *self.current.write() = (cfg, client_auth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_without_key_is_an_error() {
        let mut extra = Map::new();
        extra.insert("tls".into(), serde_json::json!({"cert_file": "a.pem"}));
        assert!(TlsSettings::from_extra(&extra).is_err());
        extra.insert("tls".into(), serde_json::json!({"cert": "a.pem"}));
        assert!(TlsSettings::from_extra(&extra).is_err(), "unknown key");
        extra.insert("tls".into(), serde_json::json!({}));
        assert_eq!(TlsSettings::from_extra(&extra).ok(), Some(None));
    }
}
